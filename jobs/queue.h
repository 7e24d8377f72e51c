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
 *   patchbay:active:<repo>#<n> Hash; kind -> id of the newest queued or running
 *                             job of that kind on issue/PR n.
 *   patchbay:seq              Counter; job ids are its values (1, 2, 3, ...).
 *
 * Enqueueing is one Lua script (QUEUE_ENQUEUE_LUA), so dedup, record, index,
 * supersede, stop and XADD happen atomically in one round trip: a delivery
 * either made exactly one job or none, whatever fails when. The webhook server
 * runs it asynchronously from its event loops (EVALSHA, EVAL on NOSCRIPT after
 * a Redis restart); the spool flusher runs it blocking, through
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

#define QUEUE_ENQUEUE_MAX_ARGS (10 + 2 * JOB_MAX_FIELDS)

typedef struct {
    int argc;
    const char *argv[QUEUE_ENQUEUE_MAX_ARGS];
    size_t argvlen[QUEUE_ENQUEUE_MAX_ARGS];
    char key_delivery[sizeof(QUEUE_DELIVERY_PREFIX) + QUEUE_DELIVERY_MAX_BYTES];
    char now_ms[24];
    char created_at[32];
    char ttl_s[24];
} queue_enqueue_cmd_t;

/* The script's SHA1 in hex, computed once by the caller and kept. */
void queue_enqueue_sha(char out[41]);

/* Builds EVALSHA (sha != NULL) or EVAL (sha == NULL) for d. retention_s is how
 * long the record and the delivery id are kept. */
void queue_enqueue_cmd(queue_enqueue_cmd_t *cmd, const char *sha, const queue_delivery_t *d, int64_t retention_s);

typedef enum {
    QUEUE_OK = 0,
    QUEUE_ERR_NOSCRIPT = -1, /* EVALSHA before the script was loaded: send EVAL */
    QUEUE_ERR_REDIS = -2,    /* connection lost or Redis refused: try again later */
    QUEUE_ERR_NOT_FOUND = -3,
} queue_err_t;

/* Reads the script's answer: *created 1 for a new job, 0 for a duplicate
 * delivery; the job id in id. Returns QUEUE_OK or a queue_err_t with a reason
 * in err (when err_len > 0). */
int queue_enqueue_parse(const redisReply *r, int *created, char id[32], char *err, size_t err_len);

/* EVALSHA, falling back to EVAL; for the spool flusher and tests. */
int queue_enqueue_blocking(redisContext *c, const queue_delivery_t *d, int64_t retention_s, int *created, char id[32],
                           char *err, size_t err_len);

/* The job record as a JSON object with DESIGN.md's fields (id, kind, repo,
 * number, status, attempts, delivery, created_at, pr_url...), numbers as
 * numbers; the payload is left out unless with_payload. */
int queue_job_get(redisContext *c, const char *id, int with_payload, json_t **out, char *err, size_t err_len);

/* Newest first, at most limit jobs, only those with status (NULL: any). */
int queue_job_list(redisContext *c, const char *status, size_t limit, json_t **out, char *err, size_t err_len);

#endif
