/*
 * worker — one worker process: takes jobs from the stream one at a time and
 * runs their kind's handler, with a watchdog thread beside it.
 *
 * Why one job per process, in-process handlers, and a watchdog thread
 * --------------------------------------------------------------------
 * A job handler is C that talks to GitHub (libcurl), clones and pushes
 * (libgit2) and runs an agent (a child process). Any of that can hang on a
 * dead network peer, and a bug in it can crash. The simplest design that
 * survives both in C:
 *   - a worker process runs one job at a time, on its main thread, so a crash
 *     loses one job's run and nothing else (the supervisor, pool.h, restarts
 *     the process and hands its job back at once);
 *   - a watchdog thread in the same process, with its own Redis connection,
 *     heartbeats the running job (so the reaper never takes a live job),
 *     polls for a cancel with the heartbeat, and enforces the kind's
 *     wall-clock limit. To stop a job it sets the job's stop reason and
 *     SIGKILLs the process groups the handler registered (the agent's), so a
 *     handler that waits on its agent returns at once. A handler stuck inside
 *     the process (libgit2 on a dead socket) cannot be interrupted safely, so
 *     after WORKER_STOP_GRACE_MS the watchdog records the outcome itself
 *     (cancelled; timed out -> retry or dead) and ends the whole process with
 *     WORKER_EXIT_RESTART; the supervisor starts a fresh one.
 * A fork per job would isolate handlers further but costs a fork per job;
 * threads inside one process would let a hang or a crash take its neighbours
 * down. Memory per idle worker stays small (see tests/bench/bench_queue.py).
 *
 * The loop
 * --------
 * Idle, the main thread blocks in XREADGROUP (BLOCK up to
 * WORKER_IDLE_BLOCK_MS, shorter when a delayed job is due sooner); between
 * blocks it moves due delayed jobs to the stream and, when it holds the
 * reaper's lease, reclaims the jobs of silent workers. A reaper must itself
 * have been connected for a whole lease before it judges anyone silent, so a
 * Redis restart (which cuts every heartbeat at once) never makes live jobs
 * look dead. After each (re)connection the worker first hands back anything
 * still pending under its own name: entries it read but whose answer the
 * broken connection swallowed.
 *
 * Signals: SIGTERM or SIGINT once: finish the running job, take no more,
 * exit 0. Twice: stop the running job now and hand it back to the queue
 * (its interrupted attempt does not count), exit 0.
 *
 * Process-wide: worker_run owns the process it runs in (signal mask, threads).
 */
#ifndef PATCHBAY_WORKER_H
#define PATCHBAY_WORKER_H

#include "app/common/config.h"

#define WORKER_EXIT_OK 0
#define WORKER_EXIT_FAIL 1
/* The watchdog ended a stuck handler with its process: restart at once. */
#define WORKER_EXIT_RESTART 3

/* How long a handler has to return after being told to stop. */
#define WORKER_STOP_GRACE_MS 800
/* Heartbeats (and cancel checks) at least this often; more often with a short lease. */
#define WORKER_HEARTBEAT_MAX_MS 500
/* Longest XREADGROUP BLOCK; maintenance runs between blocks. */
#define WORKER_IDLE_BLOCK_MS 1000
/* An idle worker refreshes its presence this often. */
#define WORKER_PRESENCE_MS 1000
/* Socket timeout of the worker's connections: longer than any BLOCK. */
#define WORKER_REDIS_IO_TIMEOUT_MS 5000
#define WORKER_REDIS_CONNECT_TIMEOUT_MS 2000
#define WORKER_RECONNECT_MIN_MS 100
#define WORKER_RECONNECT_MAX_MS 1000 /* with a beat, under the shortest lease (2 s) */

/* Runs until told to stop; returns the process exit status. consumer is the
 * name in the consumer group (unique: the supervisor makes it from host,
 * a random tag, slot and pid). */
int worker_run(const config_t *cfg, const char *redis_url, const char *consumer);

#endif
