/*
 * pool — the supervisor of N worker processes (`patchbay work`, and the
 * worker half of `patchbay run`).
 *
 * Each worker is the patchbay binary itself, started with fork and exec of
 * /proc/self/exe, or the path pool_set_program gave (`patchbay work --worker
 * NAME`): exec because `run` forks
 * while its server threads run, and a child of a threaded process may only
 * call async-signal-safe functions before exec; and because a fresh image
 * keeps each worker small. Workers get their own process group (a Ctrl-C in
 * the terminal reaches only the supervisor, which then stops them in order)
 * and PR_SET_PDEATHSIG, so they never outlive it.
 *
 * When a worker exits, the supervisor hands its pending jobs back to the
 * queue at once (a crash: the attempt counts; a shutdown: it does not), so
 * another worker takes them without waiting for the reaper's lease, and
 * starts a new worker: at once after a run that lasted, with a doubling
 * delay (POOL_RESTART_MIN_MS to POOL_RESTART_MAX_MS) when workers keep dying
 * right after they start.
 *
 * Stopping: pool_stop once sends SIGTERM (workers finish their running job
 * and exit); a second pool_stop, or workers.grace_seconds later, sends it
 * again (workers hand their job back now); POOL_KILL_AFTER_MS after that,
 * SIGKILL, and the supervisor hands back what they held.
 *
 * The caller owns the signal loop (cmd_work, cmd_run): it reaps children
 * with waitpid and passes each to pool_child_exited, calls pool_tick when
 * pool_next_wakeup_ms says so. Main thread only. The config must outlive the
 * pool; the pool owns everything else it holds.
 */
#ifndef PATCHBAY_POOL_H
#define PATCHBAY_POOL_H

#include "app/common/config.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct pool_s pool_t;

#define POOL_RESTART_MIN_MS 100
#define POOL_RESTART_MAX_MS 30000
/* A worker that ran this long before dying was not crash-looping. */
#define POOL_STABLE_MS 10000
#define POOL_KILL_AFTER_MS 5000
#define POOL_MAX_WORKERS 1024

/* redis_url: where the workers connect (passed to them as REDIS_URL).
 * NULL with a reason in err. */
pool_t *pool_new(const config_t *cfg, const char *redis_url, int concurrency, char *err, size_t err_len);
/* The executable workers run (`<path> work --worker NAME`): by default
 * /proc/self/exe, this very binary; a separate supervisor names patchbay.
 * 0, or -1 when the path is too long. Before pool_start. */
int pool_set_program(pool_t *p, const char *path);
/* Starts every worker. Returns 0, or -1 with a reason (fork failed). */
int pool_start(pool_t *p, char *err, size_t err_len);
/* Returns 1 when pid was one of the pool's workers (now handled), else 0. */
int pool_child_exited(pool_t *p, pid_t pid, int status);
/* Starts due restarts, escalates a stop whose time is up, retries hand-backs
 * that Redis refused. */
void pool_tick(pool_t *p);
/* Milliseconds until pool_tick has something to do; -1 for nothing. */
int64_t pool_next_wakeup_ms(const pool_t *p);
/* First call: stop gracefully; second call (or hurry): hand jobs back now. */
void pool_stop(pool_t *p, int hurry);
int pool_stopping(const pool_t *p);
/* Workers still running. */
int pool_alive(const pool_t *p);
void pool_free(pool_t *p);

#endif
