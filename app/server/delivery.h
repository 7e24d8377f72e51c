/*
 * delivery — the webhook endpoint on an event loop: a POST from GitHub is
 * verified (X-Hub-Signature-256 over the body), its headers checked, routed
 * (router.h), and, when actionable, joins this loop turn's batch of enqueues:
 * one MULTI/EXEC of the enqueue script per batch on the loop's asynchronous
 * Redis connection. It is answered 202 only once its job is durable: Redis
 * answered, or, when Redis is down or slower than server.redis_timeout_ms,
 * the ingress thread fsync'd it to the spool.
 *
 *   handle -> verify -> route -> ignored (200) | malformed (400)
 *                              -> job: joins the batch; one EVALSHA per batch
 *                                   -> answer: 202 job / 200 duplicate
 *                                   -> error, lost connection, or no answer
 *                                      within redis_timeout_ms: spool it
 *                                         -> ingress thread fsyncs -> 202 spooled
 *                                         -> the disk refused -> 503
 *
 * The block that carries a delivery through the asynchronous part is
 * refcounted: one reference for the request (dropped when h2o disposes the
 * request's pool), one while a Redis command is in flight, one while a spool
 * write is in flight. Each callback checks that the request is still there
 * and unanswered before answering, so a late Redis reply after the deadline,
 * or after a hang-up, is harmless. The enqueue script makes the double path
 * (Redis answered late and the spool has it too) harmless as well: the drain
 * finds the delivery id and makes no second job.
 *
 * A delivery_conf_t is the server's, shared read-only by its loops; a
 * delivery_loop_t belongs to one event-loop thread, which alone calls the
 * functions on it.
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

#include <stdint.h>

#define DELIVERY_WARN_INTERVAL_MS 1000

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
    struct delivery_batch_s *batch; /* deliveries of this loop turn, not sent yet */
    h2o_timeout_entry_t batch_flush;
    uint64_t last_warn_ms;
    unsigned suppressed_warns;
    char *saved_secret; /* the webhook secret set-up saved, once seen (appsetup.h) */
} delivery_loop_t;

void delivery_conf_init(delivery_conf_t *c, const config_t *cfg, metrics_t *metrics, ingress_t *ingress);

void delivery_loop_init(delivery_loop_t *l, const delivery_conf_t *c, h2o_context_t *ctx,
                        h2o_multithread_queue_t *queue, rasync_t *redis);
void delivery_loop_dispose(delivery_loop_t *l);

/* Answers (now or once Redis or the spool has it) a request to the webhook path. */
void delivery_handle(delivery_loop_t *l, h2o_req_t *req);

#endif
