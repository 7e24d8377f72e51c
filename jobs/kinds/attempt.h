/*
 * attempt — one agent attempt on one work tree: the repository's setup
 * commands, the agent, then the test command with its failures sent back to
 * the agent for up to `rounds` more rounds (the same conversation for the
 * openai backend, a follow-up task for a command agent).
 *
 * A fix job makes one attempt inline, or several at once on parallel work
 * trees (best of N), each on its own thread: so an attempt touches nothing
 * but its own struct, the sandbox and the thread-safe parts of the job (the
 * stop flag and the process-group registry, through the hooks). What the job
 * log and the progress comment should say comes back through `event`, on the
 * attempt's thread, and in `log` for the handler to write afterwards.
 *
 * The change an attempt hands back is the agent's alone: when the repository
 * has setup or test commands, the work tree is recorded before and after
 * each run of the agent (workspace_snapshot), and only what each run changed
 * is carried onto the base (workspace_carry). A file the setup wrote, a
 * cache or report the tests left, is not part of it unless the agent changed
 * it afterwards; what the agent changed and a command then rewrote is kept
 * as the agent left it.
 *
 * Memory: attempt_t owns its outputs (attempt_free); the inputs are borrowed.
 */
#ifndef PATCHBAY_ATTEMPT_H
#define PATCHBAY_ATTEMPT_H

#include "app/common/strbuf.h"
#include "jobs/agent/agent.h"
#include "jobs/workspace/workspace.h"

#include <stddef.h>

typedef enum {
    ATTEMPT_DONE = 0,      /* the agent finished; the tests (if any) passed or not: see tests_passed */
    ATTEMPT_SETUP_FAILED,  /* a setup command failed or could not run */
    ATTEMPT_AGENT_FAILED,  /* the agent could not start, failed, or ran out of time or budget */
    ATTEMPT_STOPPED,       /* the job was stopped */
} attempt_end_t;

typedef enum {
    ATTEMPT_EV_SETUP,      /* the setup commands start */
    ATTEMPT_EV_AGENT,      /* the agent starts (round 1) */
    ATTEMPT_EV_AGENT_DONE, /* detail: "in bubblewrap" or not */
    ATTEMPT_EV_TESTS,      /* the test command's first round starts */
    ATTEMPT_EV_ROUND,      /* a round failed and goes back to the agent; detail says so */
} attempt_event_t;

typedef struct {
    /* in */
    const agent_settings_t *agent;
    const workspace_t *ws;  /* the work tree the attempt runs in */
    const char *workdir, *scratch;
    char *const *setup;   /* NULL-terminated; may be NULL */
    const char *test;     /* or NULL */
    int rounds;           /* test rounds after the first */
    const char *task;
    size_t task_len;
    agent_hooks_t hooks;
    void (*event)(void *arg, attempt_event_t ev, const char *detail); /* may be NULL */
    void *event_arg;

    /* out */
    attempt_end_t end;
    agent_session_t session;
    agent_result_t result;
    /* the tree to commit: the agent's runs' differences carried onto the
     * base; "" when nothing but the agent ran (the work tree is its change) */
    char change[WORKSPACE_OID_HEX];
    strbuf_t tests_md;    /* "- round N: `cmd` passed (1.2 s)" lines */
    int tests_ran, tests_passed;
    char why[512];        /* the job's one-line error when end is not DONE */
    strbuf_t failure_md;  /* what the issue reads when this attempt's failure is the job's */
    strbuf_t log;         /* lines for the job log, one per '\n' */
} attempt_t;

/* Runs the attempt (blocking). */
void attempt_run(attempt_t *a);
void attempt_free(attempt_t *a);

#endif
