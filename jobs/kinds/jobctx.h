/*
 * jobctx — what a job handler is given: the job's record, its webhook payload
 * on demand, its log, whether it must stop, a place to register the process
 * groups it starts, and the config. A job kind (fix, review...) needs this
 * header and kinds.h, nothing of the queue.
 *
 * A handler runs on its worker process's main thread, one job per process at
 * a time (worker.h says why). The worker's watchdog thread watches the job
 * meanwhile: when the job is cancelled, runs past its wall-clock limit, is
 * taken away, or the worker must stop, the watchdog sets the stop reason and
 * SIGKILLs every process group the handler registered, so a handler that
 * waits for its agent returns as soon as the agent is gone. A handler that
 * does long work in-process should call job_ctx_stop_reason() between steps
 * (or sleep with job_ctx_sleep_ms) and return once it is not JOB_STOP_NONE;
 * one that does not return within WORKER_STOP_GRACE_MS is ended with its
 * whole worker process (the supervisor starts a new one).
 *
 * Thread safety: job_ctx_stop_reason, job_ctx_sleep_ms, job_ctx_defer, the
 * pgid functions and the job_watch_t calls may be used from any thread;
 * everything else from the handler's thread only.
 *
 * Memory: the context owns the record, the payload and every string it
 * returns; they stay valid until the handler returns. Handlers free nothing
 * they get from here.
 */
#ifndef PATCHBAY_JOBCTX_H
#define PATCHBAY_JOBCTX_H

#include "app/common/config.h"
#include "app/common/log.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct job_ctx_s job_ctx_t;

/* What a handler returns. */
typedef enum {
    JOB_OK = 0,             /* done: the job succeeded */
    JOB_ERR_RETRY = -1,     /* failed, may work later (network, GitHub 5xx, rate limit): retried with backoff */
    JOB_ERR_PERMANENT = -2, /* failed, and trying again cannot help (bad input, not implemented): failed at once */
} job_result_t;

/* Why a job must stop before it is done; the first reason wins. */
typedef enum {
    JOB_STOP_NONE = 0,
    JOB_STOP_CANCEL,   /* "@patchbay stop" or `patchbay jobs cancel` */
    JOB_STOP_TIMEOUT,  /* the kind's wall-clock limit passed */
    JOB_STOP_SHUTDOWN, /* the worker is stopping and the grace period is over: the job goes back to the queue */
    JOB_STOP_LOST,     /* the job was given to another worker (this one went silent too long) */
} job_stop_t;

const char *job_stop_name(job_stop_t why);

/* ---- for handlers ---- */

const char *job_ctx_id(const job_ctx_t *ctx);
/* A field of the record as text (job.h names them), or NULL. */
const char *job_ctx_field(const job_ctx_t *ctx, const char *name);
/* The whole record as queue_job_get gives it (numbers as numbers); borrowed. */
json_t *job_ctx_record(const job_ctx_t *ctx);
/* 1 for the first attempt. */
int job_ctx_attempt(const job_ctx_t *ctx);
const config_t *job_ctx_config(const job_ctx_t *ctx);

/* A line in the job's log (patchbay:log:<id>, `patchbay jobs logs`) and in
 * the worker's own log. Never a secret. */
void job_ctx_log(job_ctx_t *ctx, log_level_t level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records a field for `jobs show` (pr_url, comment_id...), only while this
 * run still owns the job. The queue's own fields (status, attempts, run...)
 * are not a handler's to set. Returns 0, or -1 with a reason. */
int job_ctx_set_field(job_ctx_t *ctx, const char *name, const char *value, char *err, size_t err_len);

/* Why the job must stop, or JOB_STOP_NONE. Any thread. */
job_stop_t job_ctx_stop_reason(const job_ctx_t *ctx);
/* Monotonic ms (clock_mono_ms) at which the wall-clock limit ends the job. */
int64_t job_ctx_deadline_ms(const job_ctx_t *ctx);
/* Sleeps up to ms, waking early when the job must stop; returns the reason. */
job_stop_t job_ctx_sleep_ms(const job_ctx_t *ctx, int64_t ms);

/* The job cannot go on for delay_ms: GitHub asked patchbay to wait longer
 * than github.max_wait_s. If the handler then fails retryably, the job is
 * queued again once the wait is over, and the attempt does not count (a job
 * waits for GitHub's budget; it does not fail for it). The longest of
 * several calls wins. */
void job_ctx_defer(job_ctx_t *ctx, int64_t delay_ms);
/* How much of that wait is left now (0: none); for the worker. */
int64_t job_ctx_deferred_ms(const job_ctx_t *ctx);

/* Process groups the job started (each child's own, from setpgid): killed
 * with SIGKILL when the job must stop. Adding one after the stop kills it at
 * once. -1 when JOB_CTX_PGIDS_MAX are registered. */
#define JOB_CTX_PGIDS_MAX 16
int job_ctx_pgid_add(job_ctx_t *ctx, pid_t pgid);
void job_ctx_pgid_remove(job_ctx_t *ctx, pid_t pgid);
/* Call in a child between fork and exec: its own process group (so one kill
 * reaches everything it starts), death with the worker (PR_SET_PDEATHSIG),
 * and the signals the worker blocks unblocked again. Async-signal-safe. */
void job_ctx_child_setup(void);

/* The worker's Redis connection on this thread (for handlers that keep state
 * in Redis, like a token cache); NULL when Redis is unreachable. */
redisContext *job_ctx_redis(job_ctx_t *ctx);
/* The Redis URL the worker uses (for clients that share state through Redis,
 * such as GitHub tokens), or NULL. Borrowed from the worker. */
const char *job_ctx_redis_url(const job_ctx_t *ctx);
void job_ctx_set_redis_url(job_ctx_t *ctx, const char *url);

/* ---- for the worker ---- */

/* What the worker's main thread and its watchdog share about the running job. */
typedef struct {
    pthread_mutex_t mu;
    pid_t pgids[JOB_CTX_PGIDS_MAX]; /* guarded by mu */
    size_t npgids;                  /* guarded by mu */
    _Atomic int stop;               /* job_stop_t */
} job_watch_t;

void job_watch_init(job_watch_t *w);
void job_watch_destroy(job_watch_t *w);
/* A new job: no stop reason, no process groups. */
void job_watch_reset(job_watch_t *w);
/* Sets the reason if none is set yet (1 then) and kills the registered
 * process groups either way. */
int job_watch_stop(job_watch_t *w, job_stop_t why);
/* Kills the registered process groups again (one may have been added late). */
void job_watch_kill(job_watch_t *w);

/* Gives a live connection for the calling thread, or NULL. */
typedef redisContext *(*job_ctx_redis_fn)(void *arg);

/* record: the job's record (the context takes the reference). run: this
 * run's token. watch may be NULL (a context made only for on_dead). */
job_ctx_t *job_ctx_new(const config_t *cfg, json_t *record, const char *run, job_watch_t *watch,
                       job_ctx_redis_fn redis, void *redis_arg, int64_t deadline_ms);
void job_ctx_free(job_ctx_t *ctx);

#endif
