/* ingress — see ingress.h. */
#include "ingress.h"
#include "app/common/bgthread.h"
#include "app/common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INGRESS_BATCH_MAX 256
#define INGRESS_REDIS_TIMEOUT_MS 1000

struct ingress_s {
    spool_t *spool;
    const redisconn_url_t *url;
    int64_t retention_s;
    metrics_t *metrics;
    bgthread_t bg;
    h2o_linklist_t pending; /* ingress_request_t, guarded by bg's lock */
    redisContext *redis;    /* the drain's connection; ingress thread only */
};

void ingress_submit(ingress_t *in, ingress_request_t *req)
{
    bgthread_lock(&in->bg);
    h2o_linklist_insert(&in->pending, &req->super.link);
    bgthread_wake(&in->bg);
    bgthread_unlock(&in->bg);
}

static void write_batch(ingress_t *in, h2o_linklist_t *batch)
{
    spool_record_t records[INGRESS_BATCH_MAX];
    ingress_request_t *reqs[INGRESS_BATCH_MAX];
    size_t n = 0;
    while (!h2o_linklist_is_empty(batch) && n < INGRESS_BATCH_MAX) {
        ingress_request_t *req = H2O_STRUCT_FROM_MEMBER(ingress_request_t, super.link, batch->next);
        h2o_linklist_unlink(&req->super.link);
        reqs[n] = req;
        records[n] = req->record;
        n++;
    }
    char err[SPOOL_ERR_BYTES] = "";
    int rc = spool_append(in->spool, records, n, err, sizeof(err));
    if (rc != 0)
        log_error(NULL, NULL, "spool write failed, answering 503 to %zu deliveries: %s", n, err);
    else
        atomic_store(&in->metrics->spool_depth, (int64_t)spool_depth(in->spool));
    for (size_t i = 0; i < n; i++) {
        spool_record_free(&reqs[i]->record);
        reqs[i]->result = rc;
        snprintf(reqs[i]->error, sizeof(reqs[i]->error), "%s", err);
        h2o_multithread_send_message(reqs[i]->reply_to, &reqs[i]->super);
    }
}

/* ---- drain ---- */

static int drain_one(const queue_delivery_t *d, void *ctx)
{
    ingress_t *in = ctx;
    queue_enqueue_result_t res;
    char err[256];
    int rc = queue_enqueue_blocking(in->redis, d, in->retention_s, &res, err, sizeof(err));
    if (rc != QUEUE_OK) {
        log_warn(d->delivery, NULL, "spool drain paused: %s", err);
        return 1;
    }
    atomic_fetch_add(&in->metrics->spool_drained, 1);
    log_info(d->delivery, res.id, res.created ? "spooled delivery queued" : "spooled delivery was already queued");
    return 0;
}

static void drain(ingress_t *in)
{
    if (in->url == NULL || spool_depth(in->spool) == 0)
        return;
    if (in->redis == NULL || in->redis->err) {
        if (in->redis != NULL)
            redisFree(in->redis);
        char err[REDISCONN_ERR_BYTES];
        in->redis = redisconn_connect(in->url, INGRESS_REDIS_TIMEOUT_MS, INGRESS_REDIS_TIMEOUT_MS, err, sizeof(err));
        if (in->redis == NULL) {
            log_debug(NULL, NULL, "spool drain waits for Redis: %s", err);
            return;
        }
    }
    char err[SPOOL_ERR_BYTES];
    size_t before = spool_depth(in->spool);
    long taken = spool_drain(in->spool, drain_one, in, err, sizeof(err));
    if (taken < 0)
        log_error(NULL, NULL, "spool drain failed: %s", err);
    else if (spool_depth(in->spool) == 0)
        log_info(NULL, NULL, "spool drained: %zu deliveries moved into Redis", before);
    atomic_store(&in->metrics->spool_depth, (int64_t)spool_depth(in->spool));
}

static void *ingress_main(void *arg)
{
    ingress_t *in = arg;
    drain(in);
    bgthread_lock(&in->bg);
    for (;;) {
        if (!h2o_linklist_is_empty(&in->pending)) {
            h2o_linklist_t batch;
            h2o_linklist_init_anchor(&batch);
            /* take everything queued so far: one fsync for all of it */
            while (!h2o_linklist_is_empty(&in->pending)) {
                h2o_linklist_t *node = in->pending.next;
                h2o_linklist_unlink(node);
                h2o_linklist_insert(&batch, node);
            }
            bgthread_unlock(&in->bg);
            while (!h2o_linklist_is_empty(&batch))
                write_batch(in, &batch);
            bgthread_lock(&in->bg);
            continue;
        }
        if (bgthread_stopping(&in->bg))
            break;
        if (bgthread_wait(&in->bg, INGRESS_DRAIN_INTERVAL_MS) == BGTHREAD_TIMEOUT && !bgthread_stopping(&in->bg)) {
            bgthread_unlock(&in->bg);
            drain(in);
            bgthread_lock(&in->bg);
        }
    }
    bgthread_unlock(&in->bg);
    return NULL;
}

ingress_t *ingress_start(const char *data_dir, const redisconn_url_t *url, int64_t retention_s, metrics_t *metrics,
                         char *err, size_t err_len)
{
    ingress_t *in = calloc(1, sizeof(*in));
    if (in == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    in->spool = spool_open(data_dir, err, err_len);
    if (in->spool == NULL) {
        free(in);
        return NULL;
    }
    in->url = url;
    in->retention_s = retention_s;
    in->metrics = metrics;
    h2o_linklist_init_anchor(&in->pending);
    atomic_store(&metrics->spool_depth, (int64_t)spool_depth(in->spool));
    if (spool_depth(in->spool) > 0)
        log_info(NULL, NULL, "spool holds %zu deliveries from before; moving them into Redis",
                 spool_depth(in->spool));
    if (bgthread_start(&in->bg, ingress_main, in) != 0) {
        snprintf(err, err_len, "cannot start the ingress thread");
        spool_close(in->spool);
        free(in);
        return NULL;
    }
    return in;
}

void ingress_stop(ingress_t *in)
{
    if (in == NULL)
        return;
    bgthread_stop(&in->bg);
    if (in->redis != NULL)
        redisFree(in->redis);
    spool_close(in->spool);
    free(in);
}
