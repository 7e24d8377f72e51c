/*
 * kinds — the table of job kinds: for each kind, the handler that runs it and
 * what happens when it is given up on. Its limits (attempts, the issue's
 * lock, the wall clock) are kindpolicy.h, which the supervisor reads without
 * linking any handler. The queue and the workers know kinds only through
 * these two tables, so the fix and review work plugs in by replacing a row's
 * handler, without touching the queue.
 *
 * fix and followup run fixjob_run, review reviewjob_run, ask askjob_run,
 * help and stop the two small answering handlers of fixjob.
 *
 * noop is for tests and benchmarks. It does nothing unless its record says so
 * (fields written by whoever enqueues it, never by a webhook):
 *   noop_sleep_ms   N: sleep N ms (waking early on a stop)
 *   noop_fail       retry | permanent: fail that way
 *   noop_fail_until N: fail (retryably) while the attempt is <= N
 *   noop_hang       1: ignore every stop and never return (the watchdog ends
 *                   the worker)
 *   noop_child      1: run `sleep` in its own process group for noop_sleep_ms
 *                   (default an hour) and wait for it, as an agent would
 *   noop_trace      1: record noop_started_us (wall clock, microseconds) and
 *                   count noop_done on success, for tests and benchmarks
 *   timeout_ms      (any kind) a wall-clock limit below the kind's own
 *
 * Static table, read-only: any thread.
 */
#ifndef PATCHBAY_KINDS_H
#define PATCHBAY_KINDS_H

#include "jobctx.h"
#include "kindpolicy.h"
#include "app/common/config.h"
#include "jobs/queue/job.h"

/* Runs the job. On failure, a one-line reason in err (stored as the job's
 * error and shown by `jobs show`; never a secret). */
typedef job_result_t (*kinds_run_fn)(job_ctx_t *ctx, char *err, size_t err_len);
/* The job was given up on (dead: attempts used up, or its last run hung or
 * crashed): tell the people who asked, e.g. a comment on the issue saying it
 * failed and why. Best effort, bounded in time; may be NULL. */
typedef void (*kinds_on_dead_fn)(job_ctx_t *ctx, const char *why);

typedef struct {
    job_kind_t kind;
    kinds_run_fn run;
    kinds_on_dead_fn on_dead;
} kinds_spec_t;

/* The row for a kind (asserts it is one). */
const kinds_spec_t *kinds_get(job_kind_t kind);

#endif
