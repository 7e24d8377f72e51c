/*
 * agent — runs a coding agent on a job's workspace and reports what it did.
 *
 * The `openai` backend (agent_openai.h) is patchbay's own tool-calling loop
 * over any OpenAI-compatible /chat/completions endpoint, with the file tools
 * of agent_tools.c, `run` in the same sandbox, and budgets.
 *
 * The `command` backend (agent_cmd.h) runs any agent CLI (Claude Code,
 * Codex, aider...) in the sandbox: the task in a file named by
 * PATCHBAY_PROMPT_FILE and on stdin, PATCHBAY_SUMMARY_FILE for its summary
 * (else the tail of its output is the summary), PATCHBAY_REVIEW_FILE for a
 * review's findings, PATCHBAY_JOB_KIND (fix, followup, review, ask) so one
 * script can serve every kind, its own process group killed on timeout or
 * cancel, and an environment with nothing of patchbay's but the agent's own
 * API keys.
 *
 * Three kinds of run: a change (fix, follow-up: every tool), a review
 * (report_finding instead of the editing tools) and an ask (the reading
 * tools only; the answer is the summary, and nothing of the work tree is
 * kept).
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

#include "sandbox.h"
#include "app/common/config.h"
#include "app/common/redact.h"
#include "jobs/workspace/repoconfig.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_SUMMARY_MAX_BYTES (16 * 1024)
#define AGENT_TAIL_BYTES 4096
#define AGENT_OUTPUT_LIMIT_BYTES (8u * 1024 * 1024)

/* A repository's instructions for agents that apply under one directory
 * only (a nested AGENTS.md): the built-in agent is given `text` when it first
 * reads or writes a file under `dir` for which this is the nearest one. The
 * text is the caller's, fenced as untrusted data already. */
typedef struct {
    const char *dir;  /* "src/legacy/": relative to the work tree, ending in '/' */
    const char *path; /* "src/legacy/AGENTS.md", for the note around it */
    const char *text;
} agent_instructions_t;

#define AGENT_INSTRUCTIONS_MAX 64 /* nested instruction files one run is given (a bit each in a session) */

typedef struct {
    const char *backend;        /* "command" or "openai" */
    const char *kind;           /* the job's kind, for PATCHBAY_JOB_KIND; NULL: not set */
    char *const *command;       /* argv, NULL-terminated */
    int64_t timeout_ms;
    int network;
    sandbox_isolation_t isolation;
    sandbox_limits_t limits;              /* the operator's sandbox.*, lowered by the repository's */
    const char *const *egress_allow;      /* sandbox.egress_allow (the operator's only) */
    const char *const *path_dirs;         /* sandbox.path: agent CLIs installed outside /usr (the operator's only) */
    const char *const *read_only;         /* sandbox.read_only: what those need (the operator's only) */
    const char *bwrap_path, *slirp4netns_path;
    uid_t uid;                            /* the job's host user (sandbox_user.h); 0: patchbay's */
    const char *rootfs;                   /* the job's environment (imagestore.h): its root, or NULL: the host's */
    const char *const *rootfs_env;        /* and its Env */
    gid_t gid;
    const char *const *pass_env; /* names to pass when set (the agent's API keys), NULL-terminated; may be NULL */
    char *const *environ_;      /* where to read them from (patchbay's environment) */
    const char *job;            /* for log lines */
    int review;                 /* a review: openai offers report_finding and no editing tools */
    int ask;                    /* a question: openai offers the reading tools only; finish's text is the answer */
    int no_run;                 /* openai offers no `run`: nothing in the work tree may execute */
    const agent_instructions_t *instructions; /* openai: nested instruction files, at most AGENT_INSTRUCTIONS_MAX */
    size_t ninstructions;
    struct {
        const char *base_url;   /* ".../v1"; /chat/completions is appended */
        const char *model;
        const char *api_key;    /* the value (from patchbay's environment), or NULL: none sent */
        int max_steps, max_tokens, context_tokens, max_output_tokens, request_timeout_s;
        double input_price, output_price, max_cost; /* USD per million tokens; USD per job (0: none) */
    } openai;
} agent_settings_t;

/* Fills settings from the config, overridden by a repository's own choices
 * (rc may be NULL). Strings stay borrowed from cfg and rc. The server's API
 * key goes only to the server's endpoint: a repository that names another
 * base_url gets no key. */
void agent_settings_init(agent_settings_t *s, const config_t *cfg, const repoconfig_t *rc, char *const *environ_,
                         const char *job);

/* Settings for work on code from someone without write access (a fork's pull
 * request): the operator's agent only, never a repository's choice, and
 * nothing of the work tree executed. The built-in agent qualifies (its key
 * stays in patchbay's process; no `run`); a command agent only when the
 * operator named it in review.untrusted_agent. 0 when an agent qualifies,
 * -1 (with s zeroed) when none does. */
int agent_settings_untrusted(agent_settings_t *s, const config_t *cfg, char *const *environ_, const char *job);

/* Makes settings (from either function above) an ask's: the reading tools
 * only, PATCHBAY_JOB_KIND=ask, and the operator's ask.* budgets (else
 * agent.*), lowered by the repository's ask.* or agent.timeout (rc may be
 * NULL). */
void agent_settings_ask(agent_settings_t *s, const config_t *cfg, const repoconfig_t *rc);

/* What a job's runs of one agent share: the openai backend's conversation
 * (a test round continues it) and what it has used. The command backend
 * starts afresh each run. */
typedef struct {
    json_t *messages;       /* NULL before the first run */
    int64_t steps;          /* model calls, all runs */
    int64_t prompt_tokens, completion_tokens;
    double cost;            /* USD, from the configured prices */
    uint64_t instructions_shown; /* bit i: settings.instructions[i] was given to the model */
} agent_session_t;

#define AGENT_SESSION_INIT {NULL, 0, 0, 0, 0.0, 0}
void agent_session_free(agent_session_t *session);

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
    int summary_written; /* the agent gave the summary itself (the file, finish, its last words), not its output's tail */
    uint64_t instructions_shown; /* openai: which settings.instructions it was given, in this session so far */
    char *output_tail; /* the last AGENT_TAIL_BYTES of its output */
    char describe[96]; /* "exited 3", "timed out", ... */
    int64_t elapsed_ms;
    int isolated;      /* ran under bubblewrap */
    char usage[192];   /* openai: "12 model calls, 34,567 tokens, about $0.05" (the job so far); else "" */
} agent_result_t;

/* Runs the agent on `workdir` with `task` (with a session that has a
 * conversation, the task continues it). 0 with *out filled whatever the
 * agent did; a negative SANDBOX_ERR_* with a reason in err when it could not
 * be started (not found, bubblewrap required but unusable, no endpoint...).
 * session may be NULL. */
int agent_run(agent_result_t *out, const agent_settings_t *s, const char *workdir, const char *scratch,
              const char *task, size_t task_len, const agent_hooks_t *hooks, agent_session_t *session, char *err,
              size_t err_len);
void agent_result_free(agent_result_t *r);

/* The secrets these settings hand an agent (the values of agent.env that are
 * set, the model endpoint's key), for redaction (redact.h). Borrowed from
 * the settings' environment. */
void agent_secrets(redact_set_t *set, const agent_settings_t *s);

#endif
