/* jobctx — see jobctx.h. */
#include "jobctx.h"
#include "app/common/clock.h"
#include "jobs/queue/queue.h"

#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define JOB_CTX_SLEEP_SLICE_MS 20

struct job_ctx_s {
    const config_t *cfg;
    json_t *record;
    char id[QUEUE_DELIVERY_MAX_BYTES + 1];
    char run[24];
    job_watch_t *watch;
    job_ctx_redis_fn redis;
    void *redis_arg;
    int64_t deadline_ms;
    char numbuf[32]; /* job_ctx_field of a number */
    const char *redis_url;
    _Atomic int64_t deferred_until_mono_ms; /* job_ctx_defer: any thread (a progress edit's too) */
};

void job_ctx_set_redis_url(job_ctx_t *ctx, const char *url)
{
    ctx->redis_url = url;
}

const char *job_ctx_redis_url(const job_ctx_t *ctx)
{
    return ctx->redis_url;
}

const char *job_stop_name(job_stop_t why)
{
    static const char *const names[] = {"none", "cancelled", "timed out", "shutdown", "lost"};
    assert(why >= JOB_STOP_NONE && why <= JOB_STOP_LOST);
    return names[why];
}

/* ---- the watch ---- */

void job_watch_init(job_watch_t *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    atomic_store(&w->stop, JOB_STOP_NONE);
}

void job_watch_destroy(job_watch_t *w)
{
    pthread_mutex_destroy(&w->mu);
}

void job_watch_reset(job_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->npgids = 0;
    atomic_store(&w->stop, JOB_STOP_NONE);
    pthread_mutex_unlock(&w->mu);
}

void job_watch_kill(job_watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->npgids; i++)
        kill(-w->pgids[i], SIGKILL);
    pthread_mutex_unlock(&w->mu);
}

int job_watch_stop(job_watch_t *w, job_stop_t why)
{
    int expected = JOB_STOP_NONE;
    int set = atomic_compare_exchange_strong(&w->stop, &expected, (int)why);
    job_watch_kill(w);
    return set;
}

/* ---- the context ---- */

job_ctx_t *job_ctx_new(const config_t *cfg, json_t *record, const char *run, job_watch_t *watch,
                       job_ctx_redis_fn redis, void *redis_arg, int64_t deadline_ms)
{
    job_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        json_decref(record);
        return NULL;
    }
    ctx->cfg = cfg;
    ctx->record = record;
    const char *id = json_string_value(json_object_get(record, "id"));
    snprintf(ctx->id, sizeof(ctx->id), "%s", id ? id : "?");
    snprintf(ctx->run, sizeof(ctx->run), "%s", run ? run : "");
    ctx->watch = watch;
    ctx->redis = redis;
    ctx->redis_arg = redis_arg;
    ctx->deadline_ms = deadline_ms;
    return ctx;
}

void job_ctx_free(job_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    json_decref(ctx->record);
    free(ctx);
}

const char *job_ctx_id(const job_ctx_t *ctx)
{
    return ctx->id;
}

const char *job_ctx_field(const job_ctx_t *ctx, const char *name)
{
    json_t *v = json_object_get(ctx->record, name);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        job_ctx_t *m = (job_ctx_t *)ctx; /* a scratch buffer, not state */
        snprintf(m->numbuf, sizeof(m->numbuf), "%lld", (long long)json_integer_value(v));
        return m->numbuf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "1" : "0";
    return NULL;
}

json_t *job_ctx_record(const job_ctx_t *ctx)
{
    return ctx->record;
}

int job_ctx_attempt(const job_ctx_t *ctx)
{
    return (int)json_integer_value(json_object_get(ctx->record, "attempts"));
}

const config_t *job_ctx_config(const job_ctx_t *ctx)
{
    return ctx->cfg;
}

redisContext *job_ctx_redis(job_ctx_t *ctx)
{
    return ctx->redis != NULL ? ctx->redis(ctx->redis_arg) : NULL;
}

void job_ctx_log(job_ctx_t *ctx, log_level_t level, const char *fmt, ...)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *delivery = json_string_value(json_object_get(ctx->record, JOB_F_DELIVERY));
    log_emit(level, delivery, ctx->id, NULL, "job %s: %s", ctx->id, msg);
    redisContext *c = job_ctx_redis(ctx);
    char err[256];
    /* best effort: a job's log must never fail the job */
    if (c != NULL)
        queue_job_log_append(c, ctx->id, levels[level], msg, err, sizeof(err));
}

int job_ctx_set_field(job_ctx_t *ctx, const char *name, const char *value, char *err, size_t err_len)
{
    static const char *const reserved[] = {"id",       "status",   "attempts", "runs",        "run",
                                           "worker",   "entry",    "kind",     "created_at_ms", "updated_at_ms",
                                           "started_at_ms", "finished_at_ms", "cancel_requested", "delivery",
                                           "payload_key", NULL};
    for (size_t i = 0; reserved[i] != NULL; i++)
        assert(strcmp(name, reserved[i]) != 0 && "a handler set one of the queue's own fields");
    redisContext *c = job_ctx_redis(ctx);
    if (c == NULL) {
        snprintf(err, err_len, "Redis is unreachable");
        return -1;
    }
    const char *fields[] = {name, value, NULL};
    if (queue_job_set_fields(c, ctx->id, ctx->run, fields, err, err_len) != QUEUE_OK)
        return -1;
    json_object_set_new(ctx->record, name, json_string(value));
    return 0;
}

job_stop_t job_ctx_stop_reason(const job_ctx_t *ctx)
{
    return ctx->watch != NULL ? (job_stop_t)atomic_load(&ctx->watch->stop) : JOB_STOP_NONE;
}

int64_t job_ctx_deadline_ms(const job_ctx_t *ctx)
{
    return ctx->deadline_ms;
}

void job_ctx_defer(job_ctx_t *ctx, int64_t delay_ms)
{
    int64_t until = clock_mono_ms() + delay_ms;
    int64_t was = atomic_load(&ctx->deferred_until_mono_ms);
    while (until > was && !atomic_compare_exchange_weak(&ctx->deferred_until_mono_ms, &was, until))
        ;
}

int64_t job_ctx_deferred_ms(const job_ctx_t *ctx)
{
    int64_t left = atomic_load(&((job_ctx_t *)ctx)->deferred_until_mono_ms) - clock_mono_ms();
    return left > 0 ? left : 0;
}

job_stop_t job_ctx_sleep_ms(const job_ctx_t *ctx, int64_t ms)
{
    int64_t until = clock_mono_ms() + ms;
    for (;;) {
        job_stop_t why = job_ctx_stop_reason(ctx);
        int64_t left = until - clock_mono_ms();
        if (why != JOB_STOP_NONE || left <= 0)
            return why;
        int64_t slice = left < JOB_CTX_SLEEP_SLICE_MS ? left : JOB_CTX_SLEEP_SLICE_MS;
        struct timespec ts = {0, (long)slice * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int job_ctx_pgid_add(job_ctx_t *ctx, pid_t pgid)
{
    job_watch_t *w = ctx->watch;
    if (w == NULL)
        return -1;
    pthread_mutex_lock(&w->mu);
    int rc = -1;
    if (w->npgids < JOB_CTX_PGIDS_MAX) {
        w->pgids[w->npgids++] = pgid;
        rc = 0;
    }
    pthread_mutex_unlock(&w->mu);
    /* a stop that came first must not miss this group */
    if (atomic_load(&w->stop) != JOB_STOP_NONE)
        kill(-pgid, SIGKILL);
    return rc;
}

void job_ctx_pgid_remove(job_ctx_t *ctx, pid_t pgid)
{
    job_watch_t *w = ctx->watch;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->npgids; i++) {
        if (w->pgids[i] == pgid) {
            w->pgids[i] = w->pgids[--w->npgids];
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
}

void job_ctx_child_setup(void)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
}
