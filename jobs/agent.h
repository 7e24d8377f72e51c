/*
 * agent — runs a coding agent on a job's workspace and reports what it did.
 *
 * The `command` backend (agent_cmd.c) runs any agent CLI (Claude Code,
 * Codex, aider...) in the sandbox: the task in a file named by
 * PATCHBAY_PROMPT_FILE and on stdin, PATCHBAY_SUMMARY_FILE for its summary
 * (else the tail of its output is the summary), PATCHBAY_REVIEW_FILE for a
 * review's findings, its own process group killed on timeout or cancel, and
 * an environment with nothing of patchbay's but the agent's own API keys.
 * The job's installation token is never given to an agent: the worker pushes
 * after it is done.
 *
 * The scratch directory (the caller's, outside the work tree) holds the
 * prompt, the summary and the output log; it is writable inside the sandbox.
 *
 * Memory: agent_result_t owns its strings (agent_result_free). Blocking; any
 * thread (a worker's).
 */
#ifndef PATCHBAY_AGENT_H
#define PATCHBAY_AGENT_H

#include "config.h"
#include "sandbox.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_SUMMARY_MAX_BYTES (16 * 1024)
#define AGENT_TAIL_BYTES 4096
#define AGENT_OUTPUT_LIMIT_BYTES (8u * 1024 * 1024)

typedef struct {
    const char *backend;        /* "command" (openai: not in this build yet) */
    char *const *command;       /* argv, NULL-terminated */
    int64_t timeout_ms;
    int network;
    sandbox_isolation_t isolation;
    const char *const *pass_env; /* names to pass when set (the agent's API keys), NULL-terminated; may be NULL */
    char *const *environ_;      /* where to read them from (patchbay's environment) */
    const char *job;            /* for log lines */
} agent_settings_t;

/* Fills settings from the config, overridden by a repository's own choices
 * (repo_command may be NULL, repo_timeout_s 0 and repo_network -1 for "the
 * server's"). The strings stay borrowed. */
void agent_settings_init(agent_settings_t *s, const config_t *cfg, char *const *repo_command, int repo_timeout_s,
                         int repo_network, char *const *environ_, const char *job);

/* Cancel and kill hooks from the job (both optional). */
typedef struct {
    int (*should_stop)(void *arg);
    void (*pgid)(void *arg, pid_t pgid, int running);
    void *arg;
} agent_hooks_t;

typedef enum {
    AGENT_DONE = 0,      /* it exited 0 */
    AGENT_FAILED,        /* it exited non-zero or died of a signal */
    AGENT_TIMEOUT,       /* the wall-clock limit ended it */
    AGENT_CANCELLED,     /* the job was stopped */
} agent_end_t;

typedef struct {
    agent_end_t end;
    char *summary;     /* from PATCHBAY_SUMMARY_FILE, else the tail of the output; never NULL after agent_run */
    char *output_tail; /* the last AGENT_TAIL_BYTES of its output */
    char describe[96]; /* "exited 3", "timed out", ... */
    int64_t elapsed_ms;
    int isolated;      /* ran under bubblewrap */
} agent_result_t;

/* Runs the agent on `workdir` with `task`. 0 with *out filled whatever the
 * agent did; a negative SANDBOX_ERR_* with a reason in err when it could not
 * be started (not found, bubblewrap required but unusable...). */
int agent_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
              const char *task, size_t task_len, const agent_hooks_t *hooks, char *err, size_t err_len);
void agent_result_free(agent_result_t *r);

/* A repository's setup or test command (`sh -c cmd`) in the same sandbox.
 * The output file gets its output; *out as from sandbox_run. */
int agent_shell(sandbox_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
                const char *cmd, const char *output_path, int64_t timeout_ms, const agent_hooks_t *hooks, char *err,
                size_t err_len);

/* The last `max` bytes of a file (on a UTF-8 boundary), malloc'd; NULL when unreadable. */
char *agent_file_tail(const char *path, size_t max, size_t *len);

#endif
