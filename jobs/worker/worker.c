/*
 * worker — see worker.h.
 *
 * Who touches what: the main thread owns `main` (its connection), the
 * maintenance timers and the job context; the watchdog owns `wd` (its own
 * connection) and its timers. They share, under job_mu, the identity of the
 * running job (id, run, deadline), and through atomics the phase, the
 * draining/aborting flags, the job's stop reason (job_watch_t) and
 * `finalizing`, which decides who writes the job's outcome when both could:
 * the main thread when the handler returned, the watchdog when it did not.
 */
#include "worker.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/redisconn.h"
#include "jobs/agent/agent_shell.h"
#include "jobs/kinds/jobctx.h"
#include "jobs/kinds/kinds.h"
#include "jobs/queue/queue.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { PHASE_IDLE = 0, PHASE_BUSY = 1 };           /* BUSY: holding a stream entry */
enum { FINAL_NONE = 0, FINAL_MAIN, FINAL_WATCHDOG }; /* who records the running job's outcome */

#define WORKER_PROMOTE_BATCH 100
#define WORKER_FINISH_GIVE_UP_MS 10000 /* aborting with Redis down: leave the job to the reaper */

typedef struct {
    const config_t *cfg;
    redisconn_url_t url;
    const char *redis_url; /* as given: handlers share GitHub tokens through it */
    char consumer[160];
    queue_policy_t policy;
    int64_t heartbeat_ms, reap_interval_ms;

    /* main thread */
    redisContext *main;
    int64_t main_up_since, main_retry_at, main_delay;
    int main_was_down;
    int64_t next_promote, next_reap;
    uint64_t rng;

    /* shared */
    _Atomic int main_fd;
    atomic_int phase, draining, aborting, quit, finalizing;
    job_watch_t watch;
    pthread_mutex_t job_mu; /* guards the job_* fields */
    char job_id[QUEUE_DELIVERY_MAX_BYTES + 1];
    char job_run[24];
    int64_t job_deadline, job_timeout_ms, job_attempts;
    int job_kind;

    /* watchdog thread */
    pthread_t wd_tid;
    int wd_started;
    redisContext *wd;
    int64_t wd_retry_at, wd_delay;
    sigset_t sigs;
} worker_t;

typedef redisContext *(*conn_fn)(worker_t *w);

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static uint64_t rand64(uint64_t *s)
{
    /* xorshift64*: enough to spread retries apart */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- connections ---- */

/* hiredis notices a connection Redis closed only at its next read or write,
 * so a handler that slept through a Redis restart would be handed the dead
 * one. With no reply outstanding, a readable socket can only be saying EOF or
 * an error: poll, without a round trip. */
static int conn_stale(const redisContext *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static redisContext *open_conn(worker_t *w, char *err, size_t err_len)
{
    redisContext *c =
        redisconn_connect(&w->url, WORKER_REDIS_CONNECT_TIMEOUT_MS, WORKER_REDIS_IO_TIMEOUT_MS, err, err_len);
    if (c != NULL && queue_group_create(c, err, err_len) != QUEUE_OK) {
        redisFree(c);
        c = NULL;
    }
    return c;
}

static void main_drop(worker_t *w)
{
    if (w->main != NULL) {
        atomic_store(&w->main_fd, -1);
        redisFree(w->main);
        w->main = NULL;
    }
}

/* A live main connection, or NULL (then retried after a backoff). handback:
 * after connecting, queue again whatever is still pending under our name
 * (only when the worker holds no job). */
static redisContext *main_conn_ex(worker_t *w, int handback)
{
    if (w->main != NULL && !w->main->err && !conn_stale(w->main))
        return w->main;
    main_drop(w);
    int64_t now = clock_mono_ms();
    if (now < w->main_retry_at)
        return NULL;
    char err[REDISCONN_ERR_BYTES + 64];
    redisContext *c = open_conn(w, err, sizeof(err));
    if (c == NULL) {
        if (!w->main_was_down)
            log_warn(NULL, NULL, "worker %s: Redis unreachable (%s); retrying", w->consumer, err);
        w->main_was_down = 1;
        w->main_retry_at = now + w->main_delay;
        w->main_delay = w->main_delay * 2 > WORKER_RECONNECT_MAX_MS ? WORKER_RECONNECT_MAX_MS : w->main_delay * 2;
        return NULL;
    }
    if (w->main_was_down)
        log_info(NULL, NULL, "worker %s: connected to Redis again", w->consumer);
    w->main_was_down = 0;
    w->main = c;
    w->main_delay = WORKER_RECONNECT_MIN_MS;
    w->main_up_since = now;
    atomic_store(&w->main_fd, c->fd);
    if (handback) {
        size_t n = 0;
        if (queue_handback(c, &w->policy, w->consumer, QUEUE_HANDBACK_RECONNECT, "its connection to Redis was reset", 0,
                           &n, err, sizeof(err)) != QUEUE_OK)
            log_warn(NULL, NULL, "worker %s: cannot hand back its pending entries: %s", w->consumer, err);
        else if (n > 0)
            log_info(NULL, NULL, "worker %s: handed back %zu entries read before its connection broke", w->consumer, n);
    }
    return w->main;
}

static redisContext *main_conn(worker_t *w)
{
    return main_conn_ex(w, 0);
}

static redisContext *ctx_main_conn(void *arg)
{
    return main_conn(arg);
}

static redisContext *wd_conn(worker_t *w)
{
    if (w->wd != NULL && !w->wd->err && !conn_stale(w->wd))
        return w->wd;
    if (w->wd != NULL) {
        redisFree(w->wd);
        w->wd = NULL;
    }
    int64_t now = clock_mono_ms();
    if (now < w->wd_retry_at)
        return NULL;
    char err[REDISCONN_ERR_BYTES + 64];
    if ((w->wd = open_conn(w, err, sizeof(err))) == NULL) {
        w->wd_retry_at = now + w->wd_delay;
        w->wd_delay = w->wd_delay * 2 > WORKER_RECONNECT_MAX_MS ? WORKER_RECONNECT_MAX_MS : w->wd_delay * 2;
        return NULL;
    }
    w->wd_delay = WORKER_RECONNECT_MIN_MS;
    return w->wd;
}

static redisContext *ctx_wd_conn(void *arg)
{
    return wd_conn(arg);
}

/* ---- ending a run: the same path for the main thread and the watchdog ---- */

static void call_on_dead(worker_t *w, json_t *record, redisContext *(*conn)(void *), const char *why)
{
    int kind = job_kind_parse(str_or_empty(json_string_value(json_object_get(record, "kind"))));
    if (kind < 0 || kinds_get((job_kind_t)kind)->on_dead == NULL) {
        json_decref(record);
        return;
    }
    job_ctx_t *ctx = job_ctx_new(w->cfg, record, NULL, NULL, conn, w, clock_mono_ms());
    if (ctx != NULL) {
        job_ctx_set_redis_url(ctx, w->redis_url);
        kinds_get((job_kind_t)kind)->on_dead(ctx, why);
        job_ctx_free(ctx);
    }
}

/*
 * Writes the run's outcome, retrying while Redis is unreachable (a job's
 * result is worth waiting for) until it lands, the run turns out lost, or the
 * worker is aborting and WORKER_FINISH_GIVE_UP_MS passed (the job stays
 * pending; the supervisor or the reaper queues it again; the watchdog, whose
 * process ends next, always gives up then). Returns 0 with the
 * state the job ended in, or -1.
 */
static int finish_until_done(worker_t *w, conn_fn conn, const char *id, const char *run, queue_run_end_t end,
                             const char *msg, int64_t delay_ms, job_status_t *status)
{
    int64_t delay = WORKER_RECONNECT_MIN_MS, began = clock_mono_ms();
    for (;;) {
        char err[512];
        redisContext *c = conn(w);
        if (c != NULL) {
            int rc = queue_job_finish(c, &w->policy, id, run, w->consumer, end, msg, delay_ms, status, err, sizeof(err));
            if (rc == QUEUE_OK)
                return 0;
            if (rc == QUEUE_ERR_LOST) {
                log_warn(NULL, id, "job %s: its result is dropped: %s", id, err);
                return -1;
            }
            log_warn(NULL, id, "job %s: cannot record its outcome yet: %s", id, err);
        }
        /* the watchdog's process is about to end anyway: it cannot wait forever */
        if ((atomic_load(&w->aborting) || conn == wd_conn) && clock_mono_ms() - began > WORKER_FINISH_GIVE_UP_MS) {
            log_error(NULL, id, "job %s: giving up recording its outcome; it will run again", id);
            return -1;
        }
        nap_ms(delay);
        delay = delay * 2 > WORKER_RECONNECT_MAX_MS ? WORKER_RECONNECT_MAX_MS : delay * 2;
    }
}

/* Hands every pending entry of this worker back, for a shutdown. */
static void handback_self(worker_t *w, conn_fn conn, const char *detail)
{
    for (int tries = 0; tries < 20; tries++) {
        char err[512];
        size_t n = 0;
        redisContext *c = conn(w);
        if (c != NULL &&
            queue_handback(c, &w->policy, w->consumer, QUEUE_HANDBACK_SHUTDOWN, detail, 0, &n, err, sizeof(err)) ==
                QUEUE_OK) {
            if (n > 0)
                log_info(NULL, NULL, "worker %s: handed %zu jobs back to the queue", w->consumer, n);
            return;
        }
        nap_ms(250);
    }
    log_warn(NULL, NULL, "worker %s: could not hand its job back; the supervisor or the reaper will", w->consumer);
}

/*
 * Decides and records how a run ended, from the handler's result and the
 * stop reason. `conn` is the calling thread's connection; ctx may be NULL
 * (the watchdog, whose handler never returned).
 */
static void end_run(worker_t *w, conn_fn conn, redisContext *(*ctx_conn)(void *), const char *id, const char *run,
                    int64_t attempts, int64_t timeout_ms, job_stop_t why, job_result_t res, const char *handler_err,
                    int64_t deferred_ms, uint64_t *rng)
{
    char msg[1200];
    queue_run_end_t end;
    switch (why) {
    case JOB_STOP_LOST:
        log_warn(NULL, id, "job %s: another worker has it now; this run's result is dropped", id);
        return;
    case JOB_STOP_SHUTDOWN:
        handback_self(w, conn, "the worker stopped before the job was done");
        return;
    case JOB_STOP_CANCEL:
        end = QUEUE_RUN_CANCELLED;
        snprintf(msg, sizeof(msg), "cancelled while running");
        break;
    case JOB_STOP_TIMEOUT:
        end = QUEUE_RUN_RETRY;
        snprintf(msg, sizeof(msg), "timed out: the wall-clock limit of %.1f s was reached", (double)timeout_ms / 1000.0);
        break;
    case JOB_STOP_NONE:
    default:
        end = res == JOB_OK ? QUEUE_RUN_SUCCEEDED : res == JOB_ERR_PERMANENT ? QUEUE_RUN_FAILED : QUEUE_RUN_RETRY;
        snprintf(msg, sizeof(msg), "%s", res == JOB_OK ? "" : handler_err && handler_err[0] ? handler_err : "failed");
        break;
    }
    if (conn == wd_conn) /* the handler never returned: say so */
        snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "; the handler did not stop within %d ms, so its worker "
                 "was restarted", WORKER_STOP_GRACE_MS);
    int64_t delay = job_retry_delay_ms((int)attempts, w->cfg->workers.retry_delay_ms, w->cfg->workers.retry_max_delay_ms,
                                       rand64(rng));
    if (end == QUEUE_RUN_RETRY && why == JOB_STOP_NONE && deferred_ms > 0) {
        /* GitHub asked to wait: the job waits in the delayed set, holding no worker */
        end = QUEUE_RUN_WAIT;
        delay = deferred_ms;
    }
    job_status_t status;
    if (finish_until_done(w, conn, id, run, end, msg, delay, &status) != 0)
        return;
    if (status == JOB_QUEUED && conn == main_conn && clock_mono_ms() + delay < w->next_promote)
        w->next_promote = clock_mono_ms() + delay;
    if (status == JOB_DEAD) {
        json_t *record = NULL;
        char err[256];
        redisContext *c = conn(w);
        if (c != NULL && queue_job_get(c, id, &record, err, sizeof(err)) == QUEUE_OK)
            call_on_dead(w, record, ctx_conn, msg);
    }
}

/* ---- the main thread ---- */

/* Makes a job the running one, for the watchdog. Its watch is reset first,
 * so whatever the watchdog finds under job_mu belongs to the job it sees. */
static void job_publish(worker_t *w, const char *id, const char *run, int64_t deadline, int64_t timeout_ms,
                        int64_t attempts, int kind)
{
    job_watch_reset(&w->watch);
    pthread_mutex_lock(&w->job_mu);
    atomic_store(&w->finalizing, FINAL_NONE);
    snprintf(w->job_id, sizeof(w->job_id), "%s", id);
    snprintf(w->job_run, sizeof(w->job_run), "%s", run);
    w->job_deadline = deadline;
    w->job_timeout_ms = timeout_ms;
    w->job_attempts = attempts;
    w->job_kind = kind;
    pthread_mutex_unlock(&w->job_mu);
}

static void job_clear(worker_t *w)
{
    pthread_mutex_lock(&w->job_mu);
    w->job_id[0] = '\0';
    w->job_run[0] = '\0';
    pthread_mutex_unlock(&w->job_mu);
}

static void run_job(worker_t *w, queue_start_t *st)
{
    json_t *record = st->record;
    st->record = NULL;
    const char *id_s = json_string_value(json_object_get(record, "id"));
    char id[QUEUE_DELIVERY_MAX_BYTES + 1];
    snprintf(id, sizeof(id), "%s", id_s ? id_s : "?");
    /* the start script checked the kind against the same table */
    int kind = job_kind_parse(str_or_empty(json_string_value(json_object_get(record, "kind"))));
    assert(kind >= 0);
    const kinds_spec_t *k = kinds_get((job_kind_t)kind);
    int64_t timeout = kindpolicy_timeout_ms((job_kind_t)kind, w->cfg, record);
    int64_t attempts = json_integer_value(json_object_get(record, "attempts"));
    int64_t began = clock_mono_ms();

    job_publish(w, id, st->run, began + timeout, timeout, attempts, kind);
    if (atomic_load(&w->aborting)) /* a second signal landed just before this job started */
        job_watch_stop(&w->watch, JOB_STOP_SHUTDOWN);
    job_ctx_t *ctx = job_ctx_new(w->cfg, record, st->run, &w->watch, ctx_main_conn, w, began + timeout);
    if (ctx != NULL)
        job_ctx_set_redis_url(ctx, w->redis_url);
    char err[1024] = "";
    job_result_t res = JOB_ERR_RETRY;
    if (ctx != NULL)
        res = k->run(ctx, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "out of memory");

    int expected = FINAL_NONE;
    if (!atomic_compare_exchange_strong(&w->finalizing, &expected, FINAL_MAIN)) {
        /* the watchdog gave up on this handler and is ending the job and this process */
        for (;;)
            pause();
    }
    job_stop_t why = (job_stop_t)atomic_load(&w->watch.stop);
    end_run(w, main_conn, ctx_main_conn, id, st->run, attempts, timeout, why, res, err,
            ctx != NULL ? job_ctx_deferred_ms(ctx) : 0, &w->rng);
    job_clear(w);
    job_ctx_free(ctx);
}

static void handle_entry(worker_t *w, const queue_entry_t *e)
{
    queue_start_t st;
    char err[512];
    redisContext *c = main_conn(w);
    if (c == NULL)
        return; /* the reconnection hands the entry back */
    if (queue_job_start(c, &w->policy, e, w->consumer, &st, err, sizeof(err)) != QUEUE_OK) {
        log_warn(NULL, e->job[0] ? e->job : NULL, "worker %s: cannot start job %s: %s", w->consumer, e->job, err);
        main_drop(w);
        return;
    }
    const char *job = e->job[0] ? e->job : NULL;
    switch (st.outcome) {
    case QUEUE_START_RUN:
        run_job(w, &st);
        break;
    case QUEUE_START_DEAD:
        call_on_dead(w, st.record, ctx_main_conn, st.detail);
        st.record = NULL;
        break;
    case QUEUE_START_SKIP:
        log_debug(NULL, job, "job %s: nothing to do (%s)", e->job, st.detail);
        break;
    case QUEUE_START_LOCKED:
        log_debug(NULL, job, "job %s: waits while job %s runs on the same issue", e->job, st.detail);
        if (clock_mono_ms() + w->policy.lock_wait_ms < w->next_promote)
            w->next_promote = clock_mono_ms() + w->policy.lock_wait_ms;
        break;
    case QUEUE_START_MALFORMED:
        log_warn(NULL, job, "stream entry %s dead-lettered: %s", e->entry, st.detail);
        break;
    }
    json_decref(st.record);
}

/* Between blocks: promote due delayed jobs; reap when it is our turn. */
static void maintain(worker_t *w)
{
    char err[512];
    int64_t now = clock_mono_ms();
    if (now >= w->next_promote) {
        size_t moved = 0;
        int64_t next = -1;
        if (queue_promote(w->main, &w->policy, WORKER_PROMOTE_BATCH, &moved, &next, err, sizeof(err)) != QUEUE_OK)
            return;
        if (moved == WORKER_PROMOTE_BATCH)
            next = 0;
        w->next_promote = now + (next >= 0 && next < WORKER_IDLE_BLOCK_MS ? next : WORKER_IDLE_BLOCK_MS);
    }
    if (now >= w->next_reap) {
        w->next_reap = now + w->reap_interval_ms + (int64_t)(rand64(&w->rng) % (uint64_t)(w->reap_interval_ms / 4 + 1));
        /* connected for less than a lease, we cannot tell a silent worker
         * from one that is reconnecting after the same outage as us */
        if (now - w->main_up_since < w->policy.lease_ms)
            return;
        int got = queue_reaper_lock(w->main, w->consumer, w->reap_interval_ms, err, sizeof(err));
        size_t n = 0;
        if (got == 1 && queue_reap(w->main, &w->policy, w->consumer, &n, err, sizeof(err)) == QUEUE_OK && n > 0)
            log_info(NULL, NULL, "reaper: %zu jobs of silent workers queued again", n);
    }
}

static void main_loop(worker_t *w)
{
    while (!atomic_load(&w->draining)) {
        redisContext *c = main_conn_ex(w, 1);
        if (c == NULL) {
            nap_ms(50);
            continue;
        }
        maintain(w);
        if (w->main == NULL || w->main->err)
            continue;
        int64_t block = w->next_promote - clock_mono_ms();
        block = block < 1 ? 1 : block > WORKER_IDLE_BLOCK_MS ? WORKER_IDLE_BLOCK_MS : block;
        queue_entry_t e;
        char err[512];
        int rc = queue_read(w->main, w->consumer, (int)block, &e, err, sizeof(err));
        if (rc < 0) {
            if (!atomic_load(&w->draining) && !w->main_was_down)
                log_warn(NULL, NULL, "worker %s: %s; reconnecting", w->consumer, err);
            main_drop(w);
            continue;
        }
        if (rc == 0)
            continue;
        atomic_store(&w->phase, PHASE_BUSY);
        if (atomic_load(&w->draining)) /* read just as we were told to stop */
            handback_self(w, main_conn, "the worker stopped");
        else
            handle_entry(w, &e);
        atomic_store(&w->phase, PHASE_IDLE);
    }
}

/* ---- the watchdog ---- */

/* The running job as the watchdog last looked at it. */
typedef struct {
    char id[QUEUE_DELIVERY_MAX_BYTES + 1];
    char run[24];
    int64_t deadline, attempts, timeout_ms;
} snapshot_t;

static int snapshot(worker_t *w, snapshot_t *s)
{
    pthread_mutex_lock(&w->job_mu);
    memcpy(s->id, w->job_id, sizeof(s->id));
    memcpy(s->run, w->job_run, sizeof(s->run));
    s->deadline = w->job_deadline;
    s->attempts = w->job_attempts;
    s->timeout_ms = w->job_timeout_ms;
    pthread_mutex_unlock(&w->job_mu);
    return s->id[0] != '\0';
}

/* Caller holds job_mu: is the snapshot's job still the one running? A fast
 * worker finishes one job and starts the next between two ticks; a stop or a
 * verdict meant for the old one must not land on the new one. */
static int is_current(const worker_t *w, const snapshot_t *s)
{
    return w->job_id[0] != '\0' && strcmp(w->job_id, s->id) == 0 && strcmp(w->job_run, s->run) == 0;
}

/* Stops the snapshot's job if it is still running here and its handler has
 * not returned yet; 1 when this set the reason. */
static int stop_current(worker_t *w, const snapshot_t *s, job_stop_t why)
{
    pthread_mutex_lock(&w->job_mu);
    int set = is_current(w, s) && atomic_load(&w->finalizing) == FINAL_NONE && job_watch_stop(&w->watch, why);
    pthread_mutex_unlock(&w->job_mu);
    return set;
}

/* The stop reason of the snapshot's job, if it is still current and its
 * handler has not returned; JOB_STOP_NONE otherwise. A stopped job's process
 * groups are killed again: one may have been registered after the stop. */
static job_stop_t stop_reason_current(worker_t *w, const snapshot_t *s)
{
    pthread_mutex_lock(&w->job_mu);
    job_stop_t why = JOB_STOP_NONE;
    if (is_current(w, s) && atomic_load(&w->finalizing) == FINAL_NONE)
        why = (job_stop_t)atomic_load(&w->watch.stop);
    if (why != JOB_STOP_NONE)
        job_watch_kill(&w->watch);
    pthread_mutex_unlock(&w->job_mu);
    return why;
}

/* Takes the right to record the snapshot's job's outcome from the main thread. */
static int claim_current(worker_t *w, const snapshot_t *s)
{
    pthread_mutex_lock(&w->job_mu);
    int expected = FINAL_NONE;
    int claimed = is_current(w, s) && atomic_compare_exchange_strong(&w->finalizing, &expected, FINAL_WATCHDOG);
    pthread_mutex_unlock(&w->job_mu);
    return claimed;
}

static void on_signal(worker_t *w)
{
    int busy = atomic_load(&w->phase) == PHASE_BUSY;
    if (!atomic_load(&w->draining)) {
        atomic_store(&w->draining, 1);
        log_info(NULL, NULL, "worker %s: stopping%s", w->consumer, busy ? " after its running job" : "");
    } else if (!atomic_load(&w->aborting)) {
        atomic_store(&w->aborting, 1);
        log_info(NULL, NULL, "worker %s: stopping now%s", w->consumer, busy ? "; its job goes back to the queue" : "");
        snapshot_t s;
        if (snapshot(w, &s))
            stop_current(w, &s, JOB_STOP_SHUTDOWN); /* run_job checks `aborting` for one that starts meanwhile */
    }
    /* idle in XREADGROUP: cut the socket so the main thread notices now */
    int fd = atomic_load(&w->main_fd);
    if (atomic_load(&w->phase) == PHASE_IDLE && fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* The handler did not return in time: record the outcome here and end the
 * process. Never returns. */
static void give_up_on_handler(worker_t *w, const snapshot_t *s, job_stop_t why, uint64_t *rng)
{
    log_error(NULL, s->id, "job %s: the handler did not stop within %d ms of being told to (%s); restarting the worker",
              s->id, WORKER_STOP_GRACE_MS, job_stop_name(why));
    job_watch_kill(&w->watch);
    end_run(w, wd_conn, ctx_wd_conn, s->id, s->run, s->attempts, s->timeout_ms, why, JOB_ERR_RETRY, "", 0, rng);
    _exit(why == JOB_STOP_SHUTDOWN ? WORKER_EXIT_OK : WORKER_EXIT_RESTART);
}

static void heartbeat(worker_t *w, const snapshot_t *s)
{
    char err[512];
    int cancel = 0;
    redisContext *c = wd_conn(w);
    int rc = c != NULL ? queue_job_heartbeat(c, &w->policy, s->id, s->run, w->consumer, &cancel, err, sizeof(err))
                       : QUEUE_ERR_REDIS;
    if (rc == QUEUE_ERR_LOST && stop_current(w, s, JOB_STOP_LOST))
        log_warn(NULL, s->id, "job %s: %s; stopping this run", s->id, err);
    else if (rc == QUEUE_OK && cancel && stop_current(w, s, JOB_STOP_CANCEL))
        log_info(NULL, s->id, "job %s: cancel requested; stopping it", s->id);
}

static void *watchdog_main(void *arg)
{
    worker_t *w = arg;
    uint64_t rng = w->rng ^ 0x9e3779b97f4a7c15ULL;
    int64_t next_beat = 0, next_presence = 0, stop_at = 0;
    snapshot_t s, stopped = {.id = ""};
    for (;;) {
        int64_t now = clock_mono_ms();
        int64_t wake = snapshot(w, &s) ? next_beat : next_presence;
        if (s.id[0] != '\0' && s.deadline < wake)
            wake = s.deadline;
        if (stop_at > 0 && stop_at + WORKER_STOP_GRACE_MS < wake)
            wake = stop_at + WORKER_STOP_GRACE_MS;
        int64_t wait = wake - now;
        wait = wait < 1 ? 1 : wait > WORKER_PRESENCE_MS ? WORKER_PRESENCE_MS : wait;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(&w->sigs, &info, &ts);
        if (atomic_load(&w->quit))
            break;
        if (sig == SIGTERM || sig == SIGINT)
            on_signal(w);

        now = clock_mono_ms();
        if (!snapshot(w, &s)) {
            stop_at = 0;
            if (now >= next_presence) {
                char err[256];
                redisContext *c = wd_conn(w);
                if (c != NULL)
                    queue_presence_idle(c, &w->policy, w->consumer, err, sizeof(err));
                next_presence = now + WORKER_PRESENCE_MS;
            }
            continue;
        }
        if (strcmp(stopped.id, s.id) != 0 || strcmp(stopped.run, s.run) != 0)
            stop_at = 0; /* another job since the last stop */
        if (now >= next_beat) {
            next_beat = now + w->heartbeat_ms;
            heartbeat(w, &s);
        }
        if (now >= s.deadline && stop_current(w, &s, JOB_STOP_TIMEOUT))
            log_warn(NULL, s.id, "job %s: wall-clock limit of %.1f s reached; stopping it", s.id,
                     (double)s.timeout_ms / 1000.0);
        job_stop_t why = stop_reason_current(w, &s);
        if (why == JOB_STOP_NONE)
            continue;
        if (stop_at == 0) {
            stop_at = now;
            stopped = s;
        }
        if (now - stop_at >= WORKER_STOP_GRACE_MS && claim_current(w, &s))
            give_up_on_handler(w, &s, why, &rng);
    }
    return NULL;
}

/* ---- the process ---- */

int worker_run(const config_t *cfg, const char *redis_url, const char *consumer)
{
    worker_t *w = calloc(1, sizeof(*w));
    char err[REDISCONN_ERR_BYTES];
    if (w == NULL)
        return WORKER_EXIT_FAIL;
    w->cfg = cfg;
    w->redis_url = redis_url;
    if (redisconn_url_parse(&w->url, redis_url, err, sizeof(err)) != 0) {
        log_error(NULL, NULL, "%s", err);
        free(w);
        return WORKER_EXIT_FAIL;
    }
    snprintf(w->consumer, sizeof(w->consumer), "%s", consumer);
    int64_t lease_ms = (int64_t)cfg->workers.lease_seconds * 1000;
    queue_policy_init(&w->policy, (int64_t)cfg->workers.retention_days * 86400, lease_ms);
    for (int k = 0; k < JOB_KIND__COUNT; k++) {
        queue_policy_kind(&w->policy, (job_kind_t)k, kindpolicy_max_attempts((job_kind_t)k, cfg),
                          kindpolicy_get((job_kind_t)k)->exclusive);
    }
    /* several beats per lease, so one lost beat never costs a live job */
    w->heartbeat_ms = lease_ms / 4 < WORKER_HEARTBEAT_MAX_MS ? lease_ms / 4 : WORKER_HEARTBEAT_MAX_MS;
    w->reap_interval_ms = lease_ms / 4 > 500 ? lease_ms / 4 : 500;
    w->main_delay = w->wd_delay = WORKER_RECONNECT_MIN_MS;
    w->rng = (uint64_t)getpid() * 0x2545F4914F6CDD1DULL ^ (uint64_t)clock_wall_ms();
    if (w->rng == 0)
        w->rng = 1;
    atomic_store(&w->main_fd, -1);
    job_watch_init(&w->watch);
    pthread_mutex_init(&w->job_mu, NULL);

    /* the watchdog takes every signal meant for the process; SIGUSR1 wakes it to quit */
    sigemptyset(&w->sigs);
    sigaddset(&w->sigs, SIGTERM);
    sigaddset(&w->sigs, SIGINT);
    sigaddset(&w->sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &w->sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = WORKER_EXIT_OK;
    if (pthread_create(&w->wd_tid, NULL, watchdog_main, w) != 0) {
        log_error(NULL, NULL, "worker %s: cannot start its watchdog thread", consumer);
        rc = WORKER_EXIT_FAIL;
        goto done;
    }
    w->wd_started = 1;
    /* said once per worker, before any job: a job would fail the same way */
    char why[512];
    if (agent_probe(cfg, why, sizeof(why)) != 0)
        log_error(NULL, NULL, "worker %s: the sandbox does not work here, so every job that runs code will fail "
                              "until it does: %s", consumer, why);
    else if (strcmp(cfg->agent.isolation, "none") == 0)
        log_warn(NULL, NULL, "worker %s: agent.isolation is none: agents and repositories' commands run WITHOUT a "
                             "sandbox, beside patchbay's secrets", consumer);
    log_info(NULL, NULL, "worker %s ready (lease %d s, heartbeat %" PRId64 " ms)", consumer,
             cfg->workers.lease_seconds, w->heartbeat_ms);

    main_loop(w);

    /* leave the group tidy: nothing pending under our name, no presence */
    redisContext *c = main_conn(w);
    size_t n = 0;
    if (c != NULL)
        queue_handback(c, &w->policy, w->consumer, QUEUE_HANDBACK_SHUTDOWN, "the worker stopped", 1, &n, err,
                       sizeof(err));
    log_info(NULL, NULL, "worker %s stopped", consumer);
done:
    if (w->wd_started) {
        atomic_store(&w->quit, 1);
        pthread_kill(w->wd_tid, SIGUSR1);
        pthread_join(w->wd_tid, NULL);
    }
    main_drop(w);
    if (w->wd != NULL)
        redisFree(w->wd);
    job_watch_destroy(&w->watch);
    pthread_mutex_destroy(&w->job_mu);
    redisconn_url_free(&w->url);
    free(w);
    return rc;
}
