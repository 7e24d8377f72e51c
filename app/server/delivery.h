/*
 * delivery — what the webhook endpoint means, on an event loop: a POST from
 * GitHub is verified (X-Hub-Signature-256, computed as the body streams in),
 * its headers checked, routed (router.h), and, when actionable, joins the
 * loop's next batch of enqueues: one MULTI/EXEC of the enqueue script per
 * batch on the loop's asynchronous Redis connection, sent at the end of the
 * loop turn, or, while one is in flight, when its answer comes (group
 * commit: a busy Redis gets fewer, larger transactions). It is answered 202 only
 * once its job is durable: Redis answered, or, when Redis is down or slower
 * than server.redis_timeout_ms, the ingress thread fsync'd it to the spool.
 *
 * The connection's side (reading the request, holding the body, writing the
 * answer) is the front's (front.h). Delivery sees a request in three steps:
 *
 *   begin  (the head)  not POST -> 405 | no secret -> 503
 *                      | signature header missing or malformed -> 401
 *                      | else: read the body
 *   feed   (each chunk of the body, as it arrives): the HMAC
 *   finish (the body)  signature -> 401 | headers -> 400 | route -> ignored (200) | malformed (400)
 *                      -> job: joins the batch; one EVALSHA per batch
 *                           -> answer: 202 job / 200 duplicate
 *                           -> error, lost connection, or no answer
 *                              within redis_timeout_ms: spool it
 *                                 -> ingress thread fsyncs -> 202 spooled
 *                                 -> the disk refused -> 503
 *
 * Every answer goes through the caller's delivery_answer_cb, exactly once per
 * request that begin let through (and once for a request begin refused),
 * possibly before the call that caused it returns. After the callback, or
 * after delivery_abandon, delivery never touches the caller's connection or
 * body again: from then on the body may be freed.
 *
 * The block that carries a delivery through the asynchronous part is
 * refcounted: one reference for the caller (dropped when it is answered or
 * abandoned), one while a Redis command is in flight, one while a spool write
 * is in flight. A late Redis reply after the deadline, or after a hang-up, is
 * harmless; the enqueue script makes the double path (Redis answered late and
 * the spool has it too) harmless as well: the drain finds the delivery id and
 * makes no second job.
 *
 * A delivery_conf_t is the server's, shared read-only by its loops; a
 * delivery_loop_t belongs to one event-loop thread, which alone calls the
 * functions on it and on its delivery_head_t's.
 */
#ifndef PATCHBAY_DELIVERY_H
#define PATCHBAY_DELIVERY_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>

#include "ingress.h"
#include "metrics.h"
#include "rasync.h"
#include "app/common/config.h"
#include "app/webhook/router.h"
#include "app/webhook/verify.h"
#include "jobs/queue/queue.h"

#include <stdint.h>

#define DELIVERY_WARN_INTERVAL_MS 1000
#define DELIVERY_EVENT_MAX_BYTES 63

/* What every loop's deliveries share; set up before the loops start. */
typedef struct {
    const config_t *cfg;
    metrics_t *metrics;
    ingress_t *ingress;
    router_rules_t rules;
    char enqueue_sha[41];
    int64_t retention_s;
} delivery_conf_t;

typedef struct {
    const delivery_conf_t *conf;
    h2o_context_t *ctx;
    rasync_t *redis; /* the loop's own connection, shared with readiness */
    h2o_multithread_receiver_t spool_receiver;
    h2o_timeout_t redis_deadline;
    struct delivery_batch_s *batch; /* deliveries not sent yet */
    h2o_timeout_entry_t batch_flush;
    int tx_inflight;                /* enqueue transactions sent, not answered */
    uint64_t last_warn_ms;
    unsigned suppressed_warns;
    verify_key_t *key; /* the webhook secret, keyed once it is known */
} delivery_loop_t;

/* A request in flight, from the head to its answer (opaque). */
typedef struct delivery_s delivery_t;

/* The headers of a request to the webhook path, as they arrived; a base of
 * NULL is a header that is absent. Read during delivery_begin only. */
typedef struct {
    h2o_iovec_t method;
    h2o_iovec_t event;     /* X-GitHub-Event */
    h2o_iovec_t delivery;  /* X-GitHub-Delivery */
    h2o_iovec_t signature; /* X-Hub-Signature-256 */
} delivery_request_t;

/* What a request's head leaves for its body's steps; lives in the caller's
 * connection (the head's bytes are gone by then). Zero it before begin;
 * delivery_head_clear releases what begin left in it. */
typedef struct {
    char event[DELIVERY_EVENT_MAX_BYTES + 1];    /* "" when missing or invalid */
    char delivery[QUEUE_DELIVERY_MAX_BYTES + 1]; /* "" when missing or invalid */
    verify_stream_t *mac;
} delivery_head_t;

/* An answer: status, and the one-key JSON object {key: value} to send. The
 * strings are valid during the call only. */
typedef void (*delivery_answer_cb)(void *owner, int status, const char *key, const char *value);

void delivery_conf_init(delivery_conf_t *c, const config_t *cfg, metrics_t *metrics, ingress_t *ingress);

void delivery_loop_init(delivery_loop_t *l, const delivery_conf_t *c, h2o_context_t *ctx,
                        h2o_multithread_queue_t *queue, rasync_t *redis);
void delivery_loop_dispose(delivery_loop_t *l);

/* The head of a request to the webhook path. 0: read the body, feeding it
 * to delivery_feed, then call delivery_finish. -1: answered already (cb was
 * called), and h holds nothing. */
int delivery_begin(delivery_loop_t *l, delivery_head_t *h, const delivery_request_t *r, delivery_answer_cb cb,
                   void *owner);

/* The next bytes of the body, in order. */
void delivery_feed(delivery_head_t *h, const void *data, size_t len);

/* The whole body is in. Answers through cb, now or later; body must stay
 * valid and unchanged until then or until delivery_abandon. Returns the
 * delivery when its answer is still to come (hand it to delivery_abandon if
 * the connection goes first), NULL when answered already. Clears h. */
delivery_t *delivery_finish(delivery_loop_t *l, delivery_head_t *h, const char *body, size_t len,
                            delivery_answer_cb cb, void *owner);

/* The connection went before the answer: forget it. */
void delivery_abandon(delivery_t *p);

/* Releases what delivery_begin left in h (a request given up half-way). */
void delivery_head_clear(delivery_head_t *h);

#endif
