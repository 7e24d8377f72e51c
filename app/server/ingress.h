/*
 * ingress — the webhook server's thread for the disk: it writes deliveries
 * that Redis could not take to the spool, and moves spooled deliveries into
 * Redis when Redis is back.
 *
 * fdatasync takes milliseconds, which an event loop must never wait for, so
 * event-loop threads hand spool records to this thread and get the result
 * back as an h2o multithread message on their own loop. Records that arrive
 * while a write is in progress are written and synced together (group
 * commit), so an outage costs one fsync per batch, not per delivery.
 *
 * The drain runs at start-up (deliveries spooled before a restart) and then
 * every INGRESS_DRAIN_INTERVAL_MS while the spool is not empty, over its own
 * blocking Redis connection, through the same enqueue script as the webhook
 * path, in spool order.
 *
 * Memory: an ingress_request_t belongs to the caller until its reply message
 * arrives; the ingress thread frees the record inside it once written.
 */
#ifndef PATCHBAY_INGRESS_H
#define PATCHBAY_INGRESS_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>

#include "metrics.h"
#include "spool.h"
#include "app/common/redisconn.h"

typedef struct ingress_s ingress_t;

#define INGRESS_DRAIN_INTERVAL_MS 500

typedef struct {
    h2o_multithread_message_t super; /* first: the reply arrives as this message */
    h2o_multithread_receiver_t *reply_to;
    spool_record_t record; /* in: the delivery; freed by the ingress thread */
    int result;            /* out: 0 when on disk */
    char error[SPOOL_ERR_BYTES];
} ingress_request_t;

/* Opens the spool under data_dir and starts the thread. url may be NULL (no
 * Redis known yet: nothing is drained). NULL with a reason in err. */
ingress_t *ingress_start(const char *data_dir, const redisconn_url_t *url, int64_t retention_s, metrics_t *metrics,
                         char *err, size_t err_len);
/* Writes what is still waiting, replies to it, and joins the thread. */
void ingress_stop(ingress_t *in);

/* From an event-loop thread: write req->record to the spool; the reply
 * message goes to req->reply_to. */
void ingress_submit(ingress_t *in, ingress_request_t *req);

#endif
