/*
 * queue — patchbay's jobs in Redis: the key layout, the enqueue script, and
 * reading job records back.
 *
 * Keys (all under "patchbay:"):
 *   patchbay:queue            Stream; one entry {job: <id>} per job to run.
 *                             Workers read it through the consumer group
 *                             "workers" (the queue/worker issue builds on it).
 *   patchbay:job:<id>         Hash; the job record (job.h names its fields).
 *   patchbay:jobs             Sorted set; every job id scored by created_at_ms,
 *                             for listing newest first.
 *   patchbay:delivery:<guid>  String; the job id made from X-GitHub-Delivery
 *                             <guid>, kept for the retention period, so a
 *                             redelivery answers "duplicate" instead of making
 *                             a second job.
 *   patchbay:payload:<guid>   String; the raw webhook body, for the retention
 *                             period; the record's payload_key names it.
 *   patchbay:active:<repo>#<n> Hash; kind -> id of the newest queued or running
 *                             job of that kind on issue/PR n.
 *   patchbay:seq              Counter; job ids are its values (1, 2, 3, ...).
 *
 * Enqueueing is one transaction in one round trip:
 *   MULTI; SET payload:<guid> NX EX (per delivery); EVALSHA enqueue; EXEC
 * The script (QUEUE_ENQUEUE_LUA) does dedup, record, index, supersede, stop
 * and XADD, so a delivery either made exactly one job or none, whatever fails
 * when. The payload stays out of the script because Lua handling a 14 KB
 * argument costs ~28 us inside Redis against ~1.5 us for a plain SET (Redis
 * keeps the argument's object; measured here), and out of the record's hash,
 * which then stays a compact listpack. One transaction carries a batch of up
 * to QUEUE_BATCH_MAX deliveries: the webhook server gathers the deliveries of
 * one event-loop turn and sends them together, since Redis, single-threaded,
 * is what bounds jobs per second and every call has a fixed cost. The webhook
 * server sends it asynchronously (EVAL instead of EVALSHA after a Redis
 * restart lost the script cache); the spool drain sends it blocking through
 * queue_enqueue_blocking. Ids from INCR are short and human ("jobs show 42").
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
#define QUEUE_INDEX "patchbay:jobs"
#define QUEUE_DELIVERY_PREFIX "patchbay:delivery:"
#define QUEUE_SEQ "patchbay:seq"
#define QUEUE_PAYLOAD_PREFIX "patchbay:payload:"

/* X-GitHub-Delivery is a GUID; we accept [A-Za-z0-9-_.] up to this length. */
#define QUEUE_DELIVERY_MAX_BYTES 64

extern const char QUEUE_ENQUEUE_LUA[];

/* A verified, actionable delivery on its way into Redis. */
typedef struct {
    const char *delivery;   /* X-GitHub-Delivery */
    int64_t received_ms;    /* when the webhook arrived (wall clock, ms) */
    const char *payload;    /* the raw body */
    size_t payload_len;
    const job_fields_t *fields;
} queue_delivery_t;

#define QUEUE_BATCH_MAX 64

/* The commands of one batch's transaction: MULTI, a SET per delivery, the
 * script, EXEC. Heap-allocated (queue_enqueue_cmd_free). */
typedef struct {
    size_t ncmds;
    int argc[QUEUE_BATCH_MAX + 3];
    const char **argv[QUEUE_BATCH_MAX + 3];
    size_t *argvlen[QUEUE_BATCH_MAX + 3];
    void *mem; /* every array and number above points into this */
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
 * numbers; the payload (a string, from its own key) only with with_payload. */
int queue_job_get(redisContext *c, const char *id, int with_payload, json_t **out, char *err, size_t err_len);

/* Newest first, at most limit jobs, only those with status (NULL: any). */
int queue_job_list(redisContext *c, const char *status, size_t limit, json_t **out, char *err, size_t err_len);

#endif
