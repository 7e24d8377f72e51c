/* attempt — see attempt.h. */
#include "attempt.h"
#include "prompt.h"
#include "app/common/fileio.h"
#include "app/github/ghmd.h"
#include "jobs/agent/agent_shell.h"
#include "jobs/review/review_body.h"
#include "jobs/workspace/workspace.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void event(attempt_t *a, attempt_event_t ev, const char *detail)
{
    if (a->event != NULL)
        a->event(a->event_arg, ev, detail);
}

static void logf_(attempt_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(attempt_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    strbuf_appendf(&a->log, "%s\n", line);
}

/* The end of an output file, fenced for the issue. */
static void append_tail(strbuf_t *md, const char *path, size_t max)
{
    size_t tl = 0;
    char *tail = fileio_read_tail(path, max, &tl);
    strbuf_append(md, "```text\n");
    ghmd_sanitize(md, tail ? tail : "", tl);
    strbuf_append(md, "\n```");
    free(tail);
}

/* Whether the job is being stopped: a run that could not start then was
 * most likely killed while its sandbox was set up, and the stop is the news. */
static int stopping(const attempt_t *a)
{
    return a->hooks.should_stop != NULL && a->hooks.should_stop(a->hooks.arg);
}

static int run_setup(attempt_t *a)
{
    for (size_t i = 0; a->setup != NULL && a->setup[i] != NULL; i++) {
        const char *cmd = a->setup[i];
        char out[4200], err[512];
        snprintf(out, sizeof(out), "%s/setup-%zu.log", a->scratch, i + 1);
        sandbox_result_t r;
        if (agent_shell_run(&r, a->agent, a->workdir, a->scratch, cmd, out, a->agent->timeout_ms, &a->hooks, err,
                        sizeof(err)) != 0) {
            if (stopping(a))
                return ATTEMPT_STOPPED;
            snprintf(a->why, sizeof(a->why), "setup command `%.200s` could not run: %.200s", cmd, err);
            strbuf_appendf(&a->failure_md, "> %s", a->why);
            return ATTEMPT_SETUP_FAILED;
        }
        if (r.end == SANDBOX_CANCELLED)
            return ATTEMPT_STOPPED;
        if (!(r.end == SANDBOX_EXITED && r.exit_code == 0)) {
            char how[96];
            sandbox_describe(&r, how, sizeof(how));
            snprintf(a->why, sizeof(a->why), "setup command `%.300s` %s", cmd, how);
            strbuf_appendf(&a->failure_md,
                           "The setup command `%s` %s, so I did not run the agent. Its output ends with:\n\n", cmd, how);
            append_tail(&a->failure_md, out, 1500);
            return ATTEMPT_SETUP_FAILED;
        }
        logf_(a, "setup command %zu: passed", i + 1);
    }
    return ATTEMPT_DONE;
}

static int run_agent(attempt_t *a, const char *task, size_t len)
{
    char err[512];
    agent_result_free(&a->result);
    if (agent_run(&a->result, a->agent, a->workdir, a->scratch, task, len, &a->hooks, &a->session, err,
                  sizeof(err)) != 0) {
        if (stopping(a))
            return ATTEMPT_STOPPED;
        snprintf(a->why, sizeof(a->why), "the agent could not start: %.400s", err);
        strbuf_appendf(&a->failure_md, "> %s", a->why);
        return ATTEMPT_AGENT_FAILED;
    }
    logf_(a, "agent: %s after %lld ms%s%s", a->result.describe, (long long)a->result.elapsed_ms,
          a->result.usage[0] ? "; " : "", a->result.usage);
    if (a->result.end == AGENT_CANCELLED)
        return ATTEMPT_STOPPED;
    if (a->result.end != AGENT_DONE) {
        snprintf(a->why, sizeof(a->why), "the agent %s", a->result.describe);
        strbuf_appendf(&a->failure_md, "The agent %s%s. Its output ends with:\n\n```text\n", a->result.describe,
                       a->result.end == AGENT_TIMEOUT ? " (agent.timeout)" : "");
        const char *t = a->result.output_tail ? a->result.output_tail : "";
        ghmd_sanitize(&a->failure_md, t, strlen(t));
        strbuf_append(&a->failure_md, "\n```");
        return ATTEMPT_AGENT_FAILED;
    }
    return ATTEMPT_DONE;
}

/* Runs the test command once; 1 passed, 0 failed, -1 stopped. */
static int run_tests_once(attempt_t *a, int round, char **tail, size_t *tail_len)
{
    char out[4200], err[512];
    snprintf(out, sizeof(out), "%s/tests-%d.log", a->scratch, round);
    sandbox_result_t r;
    if (agent_shell_run(&r, a->agent, a->workdir, a->scratch, a->test, out, a->agent->timeout_ms, &a->hooks, err,
                    sizeof(err)) != 0) {
        strbuf_appendf(&a->tests_md, "- round %d: `%s` could not run: %s\n", round, a->test, err);
        logf_(a, "tests, round %d: could not run: %s", round, err);
        return 0;
    }
    if (r.end == SANDBOX_CANCELLED)
        return -1;
    char how[96];
    sandbox_describe(&r, how, sizeof(how));
    int passed = r.end == SANDBOX_EXITED && r.exit_code == 0;
    strbuf_appendf(&a->tests_md, "- round %d: `%s` %s (%.1f s)\n", round, a->test, passed ? "passed" : how,
                   (double)r.elapsed_ms / 1000.0);
    logf_(a, "tests, round %d: %s", round, passed ? "passed" : how);
    *tail = fileio_read_tail(out, PROMPT_TEST_OUTPUT_MAX_BYTES, tail_len);
    return passed;
}

/* The work tree now, into tree; ATTEMPT_DONE or the attempt's failure. */
static int snapshot(attempt_t *a, char tree[WORKSPACE_OID_HEX])
{
    char err[WORKSPACE_ERR_BYTES];
    if (workspace_snapshot(tree, a->ws, err, sizeof(err)) == WORKSPACE_OK)
        return ATTEMPT_DONE;
    snprintf(a->why, sizeof(a->why), "could not record the work tree: %.400s", err);
    strbuf_appendf(&a->failure_md, "> %s", a->why);
    return ATTEMPT_AGENT_FAILED;
}

/* One run of the agent; with commands around it, its difference (from the
 * tree `before`, "" for the base) is carried onto the change. */
static int agent_round(attempt_t *a, int track, const char *before, const char *task, size_t len)
{
    int end = run_agent(a, task, len);
    if (end != ATTEMPT_DONE || !track)
        return end;
    char after[WORKSPACE_OID_HEX], err[WORKSPACE_ERR_BYTES];
    if ((end = snapshot(a, after)) != ATTEMPT_DONE)
        return end;
    if (workspace_carry(a->change, a->ws, a->change, before, after, err, sizeof(err)) != WORKSPACE_OK) {
        snprintf(a->why, sizeof(a->why), "could not record the agent's change: %.400s", err);
        strbuf_appendf(&a->failure_md, "> %s", a->why);
        return ATTEMPT_AGENT_FAILED;
    }
    return ATTEMPT_DONE;
}

void attempt_run(attempt_t *a)
{
    /* with no command besides the agent, the work tree is its change */
    int track = a->ws != NULL && ((a->setup != NULL && a->setup[0] != NULL) || a->test != NULL);
    char before[WORKSPACE_OID_HEX] = ""; /* a fresh checkout is the base */
    a->change[0] = '\0';
    if (a->setup != NULL && a->setup[0] != NULL) {
        event(a, ATTEMPT_EV_SETUP, NULL);
        if ((a->end = run_setup(a)) != ATTEMPT_DONE || (a->end = snapshot(a, before)) != ATTEMPT_DONE)
            return;
    }
    event(a, ATTEMPT_EV_AGENT, NULL);
    if ((a->end = agent_round(a, track, before, a->task, a->task_len)) != ATTEMPT_DONE)
        return;
    event(a, ATTEMPT_EV_AGENT_DONE, a->result.isolated ? "in bubblewrap" : "without bubblewrap");
    if (a->test == NULL)
        return;
    event(a, ATTEMPT_EV_TESTS, NULL);
    for (int round = 1;; round++) {
        char *tail = NULL;
        size_t tail_len = 0;
        int passed = run_tests_once(a, round, &tail, &tail_len);
        a->tests_ran = round;
        if (passed < 0) {
            free(tail);
            a->end = ATTEMPT_STOPPED;
            return;
        }
        if (passed || round > a->rounds) {
            a->tests_passed = passed;
            free(tail);
            return;
        }
        /* the failure goes back to the agent, with its earlier work in place */
        strbuf_t follow = STRBUF_INIT;
        prompt_test_followup(&follow, a->test, tail ? tail : "", tail_len, round, a->rounds);
        free(tail);
        char detail[64];
        snprintf(detail, sizeof(detail), "round %d failed; the agent is on it", round);
        event(a, ATTEMPT_EV_ROUND, detail);
        /* what the tests left is in the work tree the agent goes on with,
         * but it is not the agent's: this round starts from it */
        a->end = snapshot(a, before);
        if (a->end == ATTEMPT_DONE)
            a->end = agent_round(a, track, before, follow.data, follow.len);
        strbuf_free(&follow);
        if (a->end != ATTEMPT_DONE)
            return;
    }
}

void attempt_free(attempt_t *a)
{
    agent_session_free(&a->session);
    agent_result_free(&a->result);
    strbuf_free(&a->tests_md);
    strbuf_free(&a->failure_md);
    strbuf_free(&a->log);
}
