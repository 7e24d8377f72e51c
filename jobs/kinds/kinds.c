/* kinds — see kinds.h. */
#include "kinds.h"
#include "askjob.h"
#include "fixjob.h"
#include "reviewjob.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KINDS_NOOP_CHILD_DEFAULT_MS 3600000

static long long field_ll(job_ctx_t *ctx, const char *name, long long dflt)
{
    const char *v = job_ctx_field(ctx, name);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    long long n = strtoll(v, &end, 10);
    return *end == '\0' ? n : dflt;
}

static int field_is(job_ctx_t *ctx, const char *name, const char *value)
{
    const char *v = job_ctx_field(ctx, name);
    return v != NULL && strcmp(v, value) == 0;
}

/* An agent-like child: its own process group, registered, waited for. */
static job_result_t noop_child(job_ctx_t *ctx, long long ms, char *err, size_t err_len)
{
    char secs[32];
    snprintf(secs, sizeof(secs), "%.3f", (double)ms / 1000.0);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, err_len, "fork: %s", strerror(errno));
        return JOB_ERR_RETRY;
    }
    if (pid == 0) {
        job_ctx_child_setup();
        /* a shell with a grandchild, so killing the group is what it takes */
        execlp("sh", "sh", "-c", "sleep \"$1\" & wait", "sh", secs, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid); /* as the child does: whichever runs first, the group exists */
    job_ctx_pgid_add(ctx, pid);
    job_ctx_log(ctx, LOG_INFO, "noop: child process group %d started", (int)pid);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    job_ctx_pgid_remove(ctx, pid);
    if (WIFSIGNALED(status)) {
        snprintf(err, err_len, "noop: child killed by signal %d", WTERMSIG(status));
        return JOB_ERR_RETRY;
    }
    return JOB_OK;
}

static job_result_t noop_run(job_ctx_t *ctx, char *err, size_t err_len)
{
    int trace = field_is(ctx, "noop_trace", "1");
    redisContext *c = trace ? job_ctx_redis(ctx) : NULL;
    if (c != NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* microseconds: pickup latency is measured in them */
        redisReply *r = redisCommand(c, "HSET patchbay:job:%s noop_started_us %lld", job_ctx_id(ctx),
                                     (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
        if (r)
            freeReplyObject(r);
    }
    if (field_is(ctx, "noop_hang", "1")) {
        job_ctx_log(ctx, LOG_INFO, "noop: hanging, as asked");
        for (;;)
            sleep(1); /* deaf to every stop: only the watchdog can end this */
    }
    long long sleep_ms = field_ll(ctx, "noop_sleep_ms", 0);
    if (field_is(ctx, "noop_child", "1")) {
        job_result_t rc = noop_child(ctx, sleep_ms > 0 ? sleep_ms : KINDS_NOOP_CHILD_DEFAULT_MS, err, err_len);
        if (rc != JOB_OK)
            return rc;
    } else if (sleep_ms > 0 && job_ctx_sleep_ms(ctx, sleep_ms) != JOB_STOP_NONE) {
        snprintf(err, err_len, "noop: stopped while sleeping (%s)", job_stop_name(job_ctx_stop_reason(ctx)));
        return JOB_ERR_RETRY;
    }
    if (job_ctx_attempt(ctx) <= field_ll(ctx, "noop_fail_until", 0)) {
        snprintf(err, err_len, "noop: failing attempt %d, as asked", job_ctx_attempt(ctx));
        return JOB_ERR_RETRY;
    }
    if (field_is(ctx, "noop_fail", "retry")) {
        snprintf(err, err_len, "noop: failing (retryable), as asked");
        return JOB_ERR_RETRY;
    }
    if (field_is(ctx, "noop_fail", "permanent")) {
        snprintf(err, err_len, "noop: failing permanently, as asked");
        return JOB_ERR_PERMANENT;
    }
    if (trace) {
        /* what a real handler does with a side effect it could not record */
        c = job_ctx_redis(ctx);
        redisReply *r = c != NULL ? redisCommand(c, "HINCRBY patchbay:job:%s noop_done 1", job_ctx_id(ctx)) : NULL;
        int ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            snprintf(err, err_len, "noop: could not record noop_done");
            return JOB_ERR_RETRY;
        }
    }
    return JOB_OK;
}

/* The dead hook for noop: tests see it ran in the job's log. */
static void noop_on_dead(job_ctx_t *ctx, const char *why)
{
    job_ctx_log(ctx, LOG_WARN, "noop: on_dead hook: %s", why);
}

static const kinds_spec_t kinds[JOB_KIND__COUNT] = {
    [JOB_KIND_FIX] = {JOB_KIND_FIX, fixjob_run, fixjob_on_dead},
    [JOB_KIND_FOLLOWUP] = {JOB_KIND_FOLLOWUP, fixjob_run, fixjob_on_dead},
    [JOB_KIND_REVIEW] = {JOB_KIND_REVIEW, reviewjob_run, reviewjob_on_dead},
    [JOB_KIND_HELP] = {JOB_KIND_HELP, fixjob_help, NULL},
    [JOB_KIND_STOP] = {JOB_KIND_STOP, fixjob_stop, NULL},
    [JOB_KIND_NOOP] = {JOB_KIND_NOOP, noop_run, noop_on_dead},
    [JOB_KIND_ASK] = {JOB_KIND_ASK, askjob_run, askjob_on_dead},
};

const kinds_spec_t *kinds_get(job_kind_t kind)
{
    assert(kind >= 0 && kind < JOB_KIND__COUNT);
    assert(kinds[kind].run != NULL && kinds[kind].kind == kind);
    return &kinds[kind];
}
