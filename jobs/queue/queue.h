/*
 * queue — patchbay's jobs in Redis: the key layout, the enqueue script, the
 * operations workers and the CLI apply to jobs, and reading job records back.
 *
 * Keys (all under "patchbay:"):
 *   patchbay:queue            Stream; one entry {job: <id>} per job to run.
 *                             Workers read it through the consumer group
 *                             "workers" (the queue/worker issue builds on it).
 *   patchbay:job:<id>         Hash; the job record (job.h names its fields).
 *                             The fields the scripts read are one apiece;
 *                             the rest of what the router found is one JSON
 *                             object of strings under "webhook"
 *                             (QUEUE_F_WEBHOOK), which queue_job_get and
 *                             queue_job_list unpack: a field per value cost
 *                             Redis more than the value (queue.c).
 *   patchbay:delivery:<guid>  String; the job id made from X-GitHub-Delivery
 *                             <guid>, kept for the retention period, so a
 *                             redelivery answers "duplicate" instead of making
 *                             a second job.
 *   patchbay:event:<identity> String; the job id made from that event
 *                             (job.h, JOB_F_EVENT_ID: the comment, the label
 *                             at that time, the push), kept as long as the
 *                             delivery key, so a body replayed under a fresh
 *                             delivery id answers "duplicate" too.
 *   patchbay:payload:<guid>   String; the raw webhook body, written only by
 *                             versions before the record kept what a job
 *                             reads of it; the record's payload_key names
 *                             it, and it expires with the record.
 *   patchbay:active:<repo>#<n> Hash; "<kind>:<sender>" -> id of that sender's
 *                             newest queued or running job of that kind on
 *                             issue/PR n.
 *   patchbay:seq              Counter; job ids are its values (1, 2, 3, ...): the
 *                             enqueue script reads it once and writes it once per
 *                             batch, and a delivery seen before takes no id.
 *                             Listing walks the ids down from it (there is no
 *                             index of every job: it would grow without end).
 *   patchbay:queued:<kind>    Sorted set; ids of queued jobs of that kind, by
 *                             when they became queued (depth, oldest age).
 *   patchbay:delayed          Sorted set; queued jobs waiting for a retry or
 *                             for their issue's lock, scored by when they are
 *                             due; moved back to the stream when due.
 *   patchbay:dead             Stream; the dead-letter stream: one entry per
 *                             job given up on, and per malformed entry.
 *   patchbay:log:<id>         Stream; the job's log lines, capped.
 *   patchbay:lock:<repo>#<n>  String; "<id>/<run>" of the job running on that
 *                             issue/PR, with a lease its heartbeat renews.
 *   patchbay:waiters:<repo>#<n> Set; jobs waiting for that lock (in the
 *                             delayed set); its release sends them back.
 *   patchbay:metrics          Hash; counters every worker adds to.
 *   patchbay:workers          Hash; consumer -> "idle <ms>" | "busy <ms> <id>".
 *   patchbay:reaper           String; who runs the reaper now (a lease).
 *   patchbay:cancel           Pub/sub channel; ids of running jobs to cancel.
 *
 * Enqueueing is one transaction in one round trip: MULTI; EVALSHA enqueue;
 * EXEC. The script (QUEUE_ENQUEUE_LUA) does dedup, record, index, supersede,
 * stop and XADD, so a delivery either made exactly one job or none, whatever
 * fails when. One transaction carries a batch of up to QUEUE_BATCH_MAX
 * deliveries: the webhook server sends each event-loop turn's deliveries
 * together, and while one of its transactions is in flight gathers the next
 * until the answer comes (group commit, delivery.c), since Redis,
 * single-threaded, is what bounds jobs per second and every call has a
 * fixed cost. The webhook
 * server sends it asynchronously (EVAL instead of EVALSHA after a Redis
 * restart lost the script cache); the spool drain sends it blocking through
 * queue_enqueue_blocking. Ids, the counter's values, are short and human
 * ("jobs show 42").
 *
 * The work side (workers, the pool's supervisor, `patchbay jobs`) changes jobs
 * only through one more script, QUEUE_WORK_LUA, one operation per call: start,
 * finish, heartbeat, hand back, reap, promote, cancel, retry, set a field.
 * Both scripts share one Lua function, transition(), that every change of a
 * job's status goes through (see queue.c); each operation returns the moves it
 * made and queue.c logs them in one place. Times inside the work script come
 * from Redis (TIME), so workers on machines with skewed clocks agree on
 * leases and due times.
 *
 * The stream entry is acknowledged (XACK, then XDEL so XLEN is the backlog)
 * only when the job leaves `running` or is found not to need running: a
 * worker that dies leaves its entry pending, where the pool's supervisor (at
 * once) or the reaper (after the lease, XAUTOCLAIM) finds it and queues the
 * job again. Each start increments the record's attempts and runs, so
 * attempts survive any number of reclaims, and a run that was taken away
 * (its token `run` no longer matches) can no longer finish the job: a job
 * reaches a final state exactly once however often it was started.
 *
 * Memory: queue_enqueue_cmd_t points into the queue_delivery_t it was built
 * from and owns only its small number buffers. Functions returning json_t
 * give the caller a reference to release with json_decref.
 */
#ifndef PATCHBAY_QUEUE_H
#define PATCHBAY_QUEUE_H

#include "job.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_STREAM "patchbay:queue"
#define QUEUE_GROUP "workers"
#define QUEUE_JOB_PREFIX "patchbay:job:"
/* The record field holding what is not kept one apiece (see the key list). */
#define QUEUE_F_WEBHOOK "webhook"
#define QUEUE_DELIVERY_PREFIX "patchbay:delivery:"
#define QUEUE_EVENT_PREFIX "patchbay:event:"
#define QUEUE_SEQ "patchbay:seq"
#define QUEUE_LEGACY_INDEX "patchbay:jobs" /* written by versions before; removed at start */
#define QUEUE_QUEUED_PREFIX "patchbay:queued:"
#define QUEUE_DELAYED "patchbay:delayed"
#define QUEUE_DEAD "patchbay:dead"
#define QUEUE_LOG_PREFIX "patchbay:log:"
#define QUEUE_LOCK_PREFIX "patchbay:lock:"
#define QUEUE_METRICS "patchbay:metrics"
#define QUEUE_WORKERS "patchbay:workers"
#define QUEUE_REAPER_LOCK "patchbay:reaper"
#define QUEUE_CANCEL_CHANNEL "patchbay:cancel"

/* A job's log keeps about this many lines (XADD MAXLEN ~). */
#define QUEUE_LOG_MAX_LINES 1000
#define QUEUE_LOG_MAX_LINES_STR "1000"
/* The dead-letter stream keeps about this many entries. */
#define QUEUE_DEAD_MAX_ENTRIES 10000
#define QUEUE_DEAD_MAX_ENTRIES_STR "10000"

/* X-GitHub-Delivery is a GUID; we accept [A-Za-z0-9-_.] up to this length. */
#define QUEUE_DELIVERY_MAX_BYTES 64

extern const char QUEUE_ENQUEUE_LUA[];
extern const char QUEUE_WORK_LUA[];

/* A verified, actionable delivery on its way into Redis. */
typedef struct {
    const char *delivery;   /* X-GitHub-Delivery */
    int64_t received_ms;    /* when the webhook arrived (wall clock, ms) */
    const char *payload;    /* the raw body: kept by the spool, not stored in Redis */
    size_t payload_len;
    const job_fields_t *fields;
} queue_delivery_t;

#define QUEUE_BATCH_MAX 64

/* The commands of one batch's transaction: MULTI, the script, EXEC (the
 * transaction keeps a NOSCRIPT answer in the same shape as any other).
 * Heap-allocated (queue_enqueue_cmd_free). */
#define QUEUE_ENQUEUE_CMDS 3
typedef struct {
    size_t ncmds;
    int argc[QUEUE_ENQUEUE_CMDS];
    const char **argv[QUEUE_ENQUEUE_CMDS];
    size_t *argvlen[QUEUE_ENQUEUE_CMDS];
    void *mem;    /* every array and number above points into this */
    char *packed; /* the records' QUEUE_F_WEBHOOK values, pointed into by argv */
} queue_enqueue_cmd_t;

/* The script's SHA1 in hex, computed once by the caller and kept. */
void queue_enqueue_sha(char out[41]);

/* Builds the transaction with EVALSHA (sha != NULL) or EVAL (sha == NULL) for
 * n (1..QUEUE_BATCH_MAX) deliveries. retention_s is how long records and delivery ids are kept.
 * Returns 0, or -1 when out of memory. */
int queue_enqueue_cmd(queue_enqueue_cmd_t *cmd, const char *sha, const queue_delivery_t *const *ds, size_t n,
                      int64_t retention_s);
void queue_enqueue_cmd_free(queue_enqueue_cmd_t *cmd);

typedef enum {
    QUEUE_OK = 0,
    QUEUE_ERR_NOSCRIPT = -1, /* EVALSHA before the script was loaded: send EVAL */
    QUEUE_ERR_REDIS = -2,    /* connection lost or Redis refused: try again later */
    QUEUE_ERR_NOT_FOUND = -3,
    QUEUE_ERR_LOST = -4,     /* the job is no longer this run's: it was handed to someone else */
    QUEUE_ERR_REFUSED = -5,  /* the job is not in a state that allows it (cancel a finished job...) */
} queue_err_t;

typedef struct {
    int created; /* 1: a new job; 0: the delivery was seen before */
    char id[32];
} queue_enqueue_result_t;

/* Reads EXEC's answer for a batch of n into results[0..n). Returns QUEUE_OK
 * or a queue_err_t (then for the whole batch) with a reason in err (when
 * err_len > 0). Only EXEC's reply matters: the others are +OK and +QUEUED. */
int queue_enqueue_parse(const redisReply *r, size_t n, queue_enqueue_result_t *results, char *err, size_t err_len);

/* The transaction for one delivery, EVAL after NOSCRIPT; for the spool drain. */
int queue_enqueue_blocking(redisContext *c, const queue_delivery_t *d, int64_t retention_s,
                           queue_enqueue_result_t *result, char *err, size_t err_len);

/* The job record as a JSON object with DESIGN.md's fields (id, kind, repo,
 * number, status, attempts, delivery, created_at, pr_url...), numbers as
 * numbers. */
int queue_job_get(redisContext *c, const char *id, json_t **out, char *err, size_t err_len);

/* Newest first, at most limit jobs, only those with status (NULL: any). */
int queue_job_list(redisContext *c, const char *status, size_t limit, json_t **out, char *err, size_t err_len);

/* ------------------------------------------------------------------------
 * The work side
 * ------------------------------------------------------------------------ */

/* What every operation needs to know besides its own arguments: retention,
 * the lease, and each kind's attempt limit and exclusivity (an exclusive
 * kind takes its issue's lock). Built once per process. */
#define QUEUE_KINDS_SPEC_BYTES 256
typedef struct {
    int64_t retention_s;
    int64_t lease_ms;
    int64_t lock_wait_ms; /* how long a job whose issue is locked waits before trying again */
    char kinds[QUEUE_KINDS_SPEC_BYTES];
} queue_policy_t;

/* Run durations are counted in these buckets (ms), per kind. */
#define QUEUE_DURATION_BUCKETS_LIST(X) X(10) X(100) X(1000) X(10000) X(60000) X(300000) X(900000) X(1800000) X(3600000)
#define QUEUE_DURATION_BUCKETS 9
extern const int64_t QUEUE_DURATION_BUCKETS_MS[QUEUE_DURATION_BUCKETS];

/* A job whose issue is locked tries again after this long. */
#define QUEUE_LOCK_WAIT_MS 1000

void queue_policy_init(queue_policy_t *p, int64_t retention_s, int64_t lease_ms);
void queue_policy_kind(queue_policy_t *p, job_kind_t kind, int max_attempts, int exclusive);

/* XGROUP CREATE ... 0 MKSTREAM; an existing group (BUSYGROUP) is fine. From
 * 0, not $: jobs queued before any worker ever ran are work too (entries are
 * deleted once acknowledged, so the stream holds nothing else). */
int queue_group_create(redisContext *c, char *err, size_t err_len);

/* One stream entry read by a worker. */
typedef struct {
    char entry[48];  /* stream id */
    char job[QUEUE_DELIVERY_MAX_BYTES + 1]; /* "" when the entry has no usable job field */
    char fields[256]; /* the entry's fields, printable, for a malformed one */
} queue_entry_t;

/* XREADGROUP ... COUNT 1 BLOCK block_ms STREAMS queue >. Returns 1 with an
 * entry, 0 when the block timed out, or QUEUE_ERR_REDIS. Recreates the group
 * when Redis lost it (NOGROUP: a Redis without persistence restarted). The
 * connection's socket timeout must be longer than block_ms. */
int queue_read(redisContext *c, const char *consumer, int block_ms, queue_entry_t *out, char *err, size_t err_len);

typedef enum {
    QUEUE_START_RUN = 0,   /* now running: run it (record, run) */
    QUEUE_START_SKIP,      /* nothing to do (cancelled, superseded, finished): detail says its status */
    QUEUE_START_LOCKED,    /* its issue is locked by another job: it waits in the delayed set; detail = holder */
    QUEUE_START_DEAD,      /* its attempts were used up by runs that never finished: dead now (record) */
    QUEUE_START_MALFORMED, /* entry or record unreadable: dead-lettered; detail says why */
} queue_start_outcome_t;

typedef struct {
    queue_start_outcome_t outcome;
    char run[24];     /* RUN: this run's token */
    char detail[512];
    json_t *record;   /* RUN and DEAD: the record as queue_job_get gives it; the caller releases it */
} queue_start_t;

/* queued -> running (or why not), acknowledging the entry when the job needs
 * no run. */
int queue_job_start(redisContext *c, const queue_policy_t *p, const queue_entry_t *e, const char *consumer,
                    queue_start_t *out, char *err, size_t err_len);

typedef enum {
    QUEUE_RUN_SUCCEEDED = 0,
    QUEUE_RUN_FAILED,    /* permanently */
    QUEUE_RUN_RETRY,     /* retryable: queued again after retry_delay_ms, or dead on the last attempt */
    QUEUE_RUN_CANCELLED,
    QUEUE_RUN_WAIT,      /* cannot go on before retry_delay_ms (GitHub asked to wait): queued again then,
                            and this attempt does not count */
} queue_run_end_t;

/* Ends a run: running -> succeeded | failed | queued (delayed) | dead |
 * cancelled, acknowledges the entry, releases the lock. *status is the
 * state it ended in. Applying it twice (a lost reply, sent again) is harmless:
 * the second answers QUEUE_OK with the state the first made. QUEUE_ERR_LOST
 * when the run was taken away (reclaimed after a silence longer than the lease). */
int queue_job_finish(redisContext *c, const queue_policy_t *p, const char *id, const char *run, const char *consumer,
                     queue_run_end_t end, const char *error, int64_t retry_delay_ms, job_status_t *status, char *err,
                     size_t err_len);

/* Tells Redis the run is alive: refreshes the entry's idle time (XCLAIM
 * JUSTID to itself, so XAUTOCLAIM leaves it alone), the issue lock's lease and
 * the worker's presence. *cancel is 1 when a cancel was requested.
 * QUEUE_ERR_LOST when the run is no longer this one. */
int queue_job_heartbeat(redisContext *c, const queue_policy_t *p, const char *id, const char *run,
                        const char *consumer, int *cancel, char *err, size_t err_len);

/* Sets fields of a running job's record (pr_url, comment ids...), only while
 * the run is this one. fields: name, value, name, value..., NULL. */
int queue_job_set_fields(redisContext *c, const char *id, const char *run, const char *const *fields, char *err,
                         size_t err_len);

typedef enum {
    QUEUE_HANDBACK_SHUTDOWN = 0, /* a worker stopping on purpose: the interrupted attempt does not count */
    QUEUE_HANDBACK_RECONNECT,    /* a worker that lost track of what it read (its connection died) */
    QUEUE_HANDBACK_CRASH,        /* a worker that died: the attempt counts */
} queue_handback_t;

/* Every entry pending for `consumer` goes back to the stream at once: a
 * running job becomes queued (or cancelled, if a cancel was waiting for it).
 * forget: also delete the consumer from the group and the presence hash.
 * *count: how many entries. */
int queue_handback(redisContext *c, const queue_policy_t *p, const char *consumer, queue_handback_t why,
                   const char *detail, int forget, size_t *count, char *err, size_t err_len);

/* Takes the reaper's lease (SET NX PX ttl_ms) for consumer; 1 when taken. */
int queue_reaper_lock(redisContext *c, const char *consumer, int64_t ttl_ms, char *err, size_t err_len);

/* One reaper pass: XAUTOCLAIM entries idle longer than the lease (their
 * workers went silent) and queue their jobs again; forget consumers and
 * presence entries long gone; drop ids past retention from the index.
 * *reclaimed: how many entries. Only the holder of the reaper lock. */
int queue_reap(redisContext *c, const queue_policy_t *p, const char *consumer, size_t *reclaimed, char *err,
               size_t err_len);

/* Moves due jobs from the delayed set to the stream (at most `max`).
 * *next_due_ms: ms until the next one is due, or -1 when none waits. */
int queue_promote(redisContext *c, const queue_policy_t *p, size_t max, size_t *moved, int64_t *next_due_ms,
                  char *err, size_t err_len);

/* A worker's presence for the busy/idle gauges: "idle" (busy is written by
 * start and heartbeat). */
int queue_presence_idle(redisContext *c, const queue_policy_t *p, const char *consumer, char *err, size_t err_len);

typedef enum {
    QUEUE_CANCEL_DONE = 0,   /* it was queued: cancelled now */
    QUEUE_CANCEL_REQUESTED,  /* it is running: its worker stops it (within 2 s) */
} queue_cancel_outcome_t;

/* Cancels a job: at once when queued, by request when running.
 * QUEUE_ERR_NOT_FOUND, or QUEUE_ERR_REFUSED (already final; err says which). */
int queue_job_cancel(redisContext *c, const queue_policy_t *p, const char *id, const char *who,
                     queue_cancel_outcome_t *outcome, char *err, size_t err_len);

/* Queues a failed, dead or cancelled job again with fresh attempts.
 * QUEUE_ERR_NOT_FOUND, or QUEUE_ERR_REFUSED (queued, running or succeeded). */
int queue_job_retry(redisContext *c, const queue_policy_t *p, const char *id, const char *who, char *err,
                    size_t err_len);

/* Appends a line to the job's log stream. */
int queue_job_log_append(redisContext *c, const char *id, const char *level, const char *msg, char *err,
                         size_t err_len);

/* Log lines after stream id `after` ("0" from the start), at most count, as
 * an array of {id, ts (ms), level, msg}; block_ms > 0 waits that long for
 * new lines (XREAD BLOCK). */
int queue_job_log_read(redisContext *c, const char *id, const char *after, size_t count, int block_ms, json_t **out,
                       char *err, size_t err_len);

#endif
