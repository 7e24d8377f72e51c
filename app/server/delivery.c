/* delivery — see delivery.h. */
#include "delivery.h"
#include "app/common/appcreds.h"
#include "app/common/clock.h"
#include "app/common/log.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deliveries sent to Redis in one script call; each holds a reference. */
typedef struct delivery_batch_s {
    delivery_loop_t *loop;
    size_t n;
    struct delivery_s *items[QUEUE_BATCH_MAX];
} delivery_batch_t;

/* ---- deliveries in flight ---- */

struct delivery_s {
    ingress_request_t spool; /* first: the spool's reply message points here */
    delivery_loop_t *loop;
    delivery_answer_cb answer;
    void *owner; /* the caller's connection; NULL once answered or abandoned */
    int refs;
    int answered;
    int spooling; /* handed to the spool: a late Redis answer changes nothing */
    uint64_t started_us;
    h2o_timeout_entry_t deadline;
    char event[DELIVERY_EVENT_MAX_BYTES + 1];
    char delivery[QUEUE_DELIVERY_MAX_BYTES + 1];
    queue_delivery_t d; /* the payload is the owner's body (for the spool): valid while owner != NULL */
    router_result_t route;
    char scratch[]; /* the router's: body_len + ROUTER_SCRATCH_EXTRA; route.fields point here */
};

static void delivery_release(delivery_t *p)
{
    assert(p->refs > 0);
    if (--p->refs > 0)
        return;
    atomic_fetch_sub_explicit(&p->loop->conf->metrics->inflight, 1, memory_order_relaxed);
    spool_record_free(&p->spool.record);
    free(p);
}

/* The answer ends the owner's part: its reference goes with it. The caller
 * of this function holds a reference of its own, so p outlives the call. */
static void delivery_answer(delivery_t *p, int status, metrics_outcome_t outcome, const char *key, const char *value)
{
    if (p->answered || p->owner == NULL)
        return;
    p->answered = 1;
    metrics_t *m = p->loop->conf->metrics;
    metrics_delivery(m, p->event, outcome);
    if (status < 300)
        metrics_enqueue_latency(m, clock_mono_us() - p->started_us);
    void *owner = p->owner;
    p->owner = NULL;
    p->answer(owner, status, key, value);
    delivery_release(p);
}

void delivery_abandon(delivery_t *p)
{
    assert(p->owner != NULL);
    p->owner = NULL;
    if (h2o_timeout_is_linked(&p->deadline))
        h2o_timeout_unlink(&p->deadline);
    delivery_release(p);
}

static void spool_delivery(delivery_t *p, const char *why)
{
    delivery_loop_t *l = p->loop;
    if (p->spooling || p->answered || p->owner == NULL)
        return;
    p->spooling = 1;
    if (h2o_timeout_is_linked(&p->deadline))
        h2o_timeout_unlink(&p->deadline);
    if (spool_record_encode(&p->spool.record, &p->d) != 0) {
        log_error(p->delivery, NULL, "cannot spool delivery (out of memory) after: %s", why);
        delivery_answer(p, 503, METRICS_OUT_UNAVAILABLE, "error", "patchbay cannot queue this delivery now");
        return;
    }
    log_warn(p->delivery, NULL, "Redis: %s; spooling the delivery to disk", why);
    p->spool.reply_to = &l->spool_receiver;
    p->refs++;
    ingress_submit(l->conf->ingress, &p->spool);
}

static void on_spool_written(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        delivery_t *p = (delivery_t *)msg;
        if (p->spool.result == 0)
            delivery_answer(p, 202, METRICS_OUT_SPOOLED, "spooled", p->delivery);
        else
            delivery_answer(p, 503, METRICS_OUT_UNAVAILABLE, "error",
                            "patchbay can reach neither Redis nor its spool; GitHub will show this delivery as failed");
        delivery_release(p);
    }
}

/* What Redis said about one delivery of a batch. */
static void delivery_enqueued(delivery_t *p, int rc, const queue_enqueue_result_t *res, const char *err)
{
    if (!(p->answered || p->spooling || p->owner == NULL)) {
        if (h2o_timeout_is_linked(&p->deadline))
            h2o_timeout_unlink(&p->deadline);
        if (rc == QUEUE_OK && res->created) {
            log_info(p->delivery, res->id, "job queued");
            delivery_answer(p, 202, METRICS_OUT_QUEUED, "job", res->id);
        } else if (rc == QUEUE_OK) {
            log_info(p->delivery, res->id, "redelivery of a delivery already queued");
            delivery_answer(p, 200, METRICS_OUT_DUPLICATE, "duplicate", res->id);
        } else {
            spool_delivery(p, err);
        }
    }
    delivery_release(p); /* the batch's reference */
}

static void batch_fail(delivery_batch_t *b, const char *why)
{
    for (size_t i = 0; i < b->n; i++)
        delivery_enqueued(b->items[i], QUEUE_ERR_REDIS, NULL, why);
    free(b);
}

static void on_batch_reply(redisReply *reply, void *arg);

/* Sends the batch's script call; use_sha 0 sends the script text (EVAL).
 * Returns 1 when a transaction went out (on_batch_reply will answer it), 0
 * when the batch was settled here (emptied by deadlines, or failed). */
static int batch_send(delivery_batch_t *b, int use_sha)
{
    delivery_loop_t *l = b->loop;
    /* deliveries already spooled (their deadline passed) leave the batch:
     * their request data may not be read after they were answered */
    size_t live = 0;
    for (size_t i = 0; i < b->n; i++) {
        delivery_t *p = b->items[i];
        if (p->answered || p->spooling || p->owner == NULL)
            delivery_release(p);
        else
            b->items[live++] = p;
    }
    b->n = live;
    if (b->n == 0) {
        free(b);
        return 0;
    }
    const queue_delivery_t *ds[QUEUE_BATCH_MAX];
    for (size_t i = 0; i < b->n; i++)
        ds[i] = &b->items[i]->d;
    queue_enqueue_cmd_t cmd;
    if (queue_enqueue_cmd(&cmd, use_sha ? l->conf->enqueue_sha : NULL, ds, b->n, l->conf->retention_s) != 0) {
        batch_fail(b, "out of memory");
        return 0;
    }
    /* MULTI ... EXEC: only EXEC's answer matters; if the connection drops
     * before EXEC, Redis discards the transaction and the batch is spooled */
    int rc = 0;
    size_t sent = 0;
    for (; sent < cmd.ncmds && rc == 0; sent++)
        rc = rasync_command_argv(l->redis, sent + 1 == cmd.ncmds ? on_batch_reply : NULL, b, cmd.argc[sent],
                                 cmd.argv[sent], cmd.argvlen[sent]);
    queue_enqueue_cmd_free(&cmd); /* hiredis formatted its own copy */
    if (rc != 0 && sent > 1) {
        /* out of memory half-way: close the open transaction so the next
         * batch's MULTI is not nested in it */
        const char *discard = "DISCARD";
        size_t len = 7;
        rasync_command_argv(l->redis, NULL, NULL, 1, &discard, &len);
    }
    if (rc != 0) {
        batch_fail(b, rasync_last_error(l->redis));
        return 0;
    }
    return 1;
}

static void batch_flush(delivery_loop_t *l, int force);

static void on_batch_reply(redisReply *reply, void *arg)
{
    delivery_batch_t *b = arg;
    delivery_loop_t *l = b->loop;
    queue_enqueue_result_t results[QUEUE_BATCH_MAX];
    char err[256] = "";
    int rc = queue_enqueue_parse(reply, b->n, results, err, sizeof(err));
    if (rc == QUEUE_ERR_NOSCRIPT) {
        /* Redis restarted and lost its script cache: EVAL loads it again */
        if (batch_send(b, 0))
            return; /* the same transaction, still in flight */
    } else {
        for (size_t i = 0; i < b->n; i++)
            delivery_enqueued(b->items[i], rc, &results[i], err);
        free(b);
    }
    l->tx_inflight--;
    if (l->batch != NULL)
        batch_flush(l, 0);
}

/* Group commit: while a transaction of this loop is in flight, new
 * deliveries gather into the next batch, which leaves when the answer comes
 * (or when it is full, or with force). An idle Redis gets each loop turn's
 * deliveries at once; a busy one gets them in fewer, larger transactions,
 * and Redis pays per transaction (the script call, MULTI/EXEC, the socket):
 * 86 us of its CPU per job in batches of one, 70 in batches of four
 * (tests/bench/bench_enqueue.c). A delivery waits at most for one answer
 * more, and its deadline spools it if that never comes. */
static void batch_flush(delivery_loop_t *l, int force)
{
    delivery_batch_t *b = l->batch;
    if (h2o_timeout_is_linked(&l->batch_flush))
        h2o_timeout_unlink(&l->batch_flush);
    if (b == NULL || (!force && l->tx_inflight > 0))
        return;
    l->batch = NULL;
    if (batch_send(b, 1))
        l->tx_inflight++;
}

static void on_batch_flush(h2o_timeout_entry_t *entry)
{
    batch_flush(H2O_STRUCT_FROM_MEMBER(delivery_loop_t, batch_flush, entry), 0);
}

/* Joins the next batch; it leaves at the end of the turn (the zero timeout)
 * unless a transaction is in flight (batch_flush), or when full. */
static void batch_add(delivery_loop_t *l, delivery_t *p)
{
    if (l->batch == NULL && (l->batch = calloc(1, sizeof(*l->batch))) == NULL) {
        spool_delivery(p, "out of memory");
        return;
    }
    l->batch->loop = l;
    p->refs++;
    l->batch->items[l->batch->n++] = p;
    if (l->batch->n == QUEUE_BATCH_MAX)
        batch_flush(l, 1);
    else if (!h2o_timeout_is_linked(&l->batch_flush))
        h2o_timeout_link(l->ctx->loop, &l->ctx->zero_timeout, &l->batch_flush);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    delivery_t *p = H2O_STRUCT_FROM_MEMBER(delivery_t, deadline, entry);
    char why[96];
    snprintf(why, sizeof(why), "no answer within %d ms", p->loop->conf->cfg->server.redis_timeout_ms);
    spool_delivery(p, why);
}

/* p holds the routed delivery; the caller's reference is taken here. */
static delivery_t *enqueue(delivery_loop_t *l, delivery_t *p, const delivery_head_t *h, const char *body, size_t len,
                           delivery_answer_cb cb, void *owner)
{
    p->loop = l;
    p->answer = cb;
    p->owner = owner;
    p->refs = 2; /* the owner's, and this function's until it returns */
    p->answered = p->spooling = 0;
    p->started_us = clock_mono_us();
    memset(&p->deadline, 0, sizeof(p->deadline));
    memset(&p->spool, 0, sizeof(p->spool));
    p->deadline.cb = on_deadline;
    snprintf(p->event, sizeof(p->event), "%s", h->event);
    snprintf(p->delivery, sizeof(p->delivery), "%s", h->delivery);
    memset(&p->d, 0, sizeof(p->d));
    p->d.delivery = p->delivery;
    p->d.received_ms = clock_wall_ms();
    p->d.payload = body;
    p->d.payload_len = len;
    p->d.fields = &p->route.fields;
    atomic_fetch_add_explicit(&l->conf->metrics->inflight, 1, memory_order_relaxed);

    if (!rasync_connected(l->redis)) {
        spool_delivery(p, rasync_last_error(l->redis));
    } else {
        h2o_timeout_link(l->ctx->loop, &l->redis_deadline, &p->deadline);
        batch_add(l, p);
    }
    /* answered already (out of memory on the way) means the owner's
     * reference is gone; otherwise it keeps p alive past this release */
    delivery_t *pending = p->owner != NULL ? p : NULL;
    delivery_release(p);
    return pending;
}

/* ---- the webhook endpoint ---- */

/* Header values end up in Redis keys, logs and JSON: allow only what GitHub
 * sends (GUIDs, event names), so a crafted value can inject nothing. */
static int copy_token(char *dst, size_t cap, h2o_iovec_t v, const char *extra)
{
    if (v.base == NULL || v.len == 0 || v.len >= cap)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c) != NULL) ||
            c == '\0')
            return -1;
    }
    memcpy(dst, v.base, v.len);
    dst[v.len] = '\0';
    return 0;
}

static void warn_rate_limited(delivery_loop_t *l, const char *what, const char *detail)
{
    uint64_t now = h2o_now(l->ctx->loop);
    if (now - l->last_warn_ms < DELIVERY_WARN_INTERVAL_MS) {
        l->suppressed_warns++;
        return;
    }
    char more[64] = "";
    if (l->suppressed_warns > 0)
        snprintf(more, sizeof(more), " (%u similar suppressed)", l->suppressed_warns);
    log_warn(NULL, NULL, "%s: %s%s", what, detail, more);
    l->last_warn_ms = now;
    l->suppressed_warns = 0;
}

/* The key deliveries are checked with: the config's secret, else the one the
 * set-up page saved, looked for until it appears (a running patchbay takes a
 * newly registered App without a restart; until then a look is one failed
 * open(2), and an unconfigured server has no other work). NULL with *rc
 * VERIFY_MISSING (no secret yet) or VERIFY_ERROR. */
static const verify_key_t *webhook_key(delivery_loop_t *l, int *rc)
{
    const config_t *cfg = l->conf->cfg;
    *rc = VERIFY_OK;
    if (l->key != NULL)
        return l->key;
    if (cfg->github.webhook_secret != NULL) {
        *rc = verify_key_new(&l->key, cfg->github.webhook_secret, strlen(cfg->github.webhook_secret));
        return l->key;
    }
    appcreds_t c;
    if (appcreds_load(cfg->data_dir, &c) != 0) {
        *rc = VERIFY_MISSING;
        return NULL;
    }
    *rc = verify_key_new(&l->key, c.webhook_secret, strlen(c.webhook_secret));
    OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
    if (l->key != NULL)
        log_info(NULL, NULL, "using the GitHub App %s registered by the set-up page", c.slug);
    return l->key;
}

static void refuse_signature(delivery_loop_t *l, const char *event, int vr, delivery_answer_cb cb, void *owner)
{
    metrics_signature_failure(l->conf->metrics, vr);
    metrics_delivery(l->conf->metrics, event, METRICS_OUT_UNAUTHORIZED);
    warn_rate_limited(l, "webhook refused", verify_result_name(vr));
    cb(owner, 401, "error",
       vr == VERIFY_MISSING ? "missing X-Hub-Signature-256" : "X-Hub-Signature-256 does not match the body");
}

int delivery_begin(delivery_loop_t *l, delivery_head_t *h, const delivery_request_t *r, delivery_answer_cb cb,
                   void *owner)
{
    const delivery_conf_t *c = l->conf;
    memset(h, 0, sizeof(*h));
    if (!h2o_memis(r->method.base, r->method.len, H2O_STRLIT("POST"))) {
        cb(owner, 405, "error", "GitHub delivers webhooks with POST");
        return -1;
    }
    copy_token(h->event, sizeof(h->event), r->event, "_");
    /* invalid stays "": refused with 400 once the signature holds */
    copy_token(h->delivery, sizeof(h->delivery), r->delivery, "-_.");

    int rc;
    const verify_key_t *key = webhook_key(l, &rc);
    if (key == NULL) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_UNAVAILABLE);
        cb(owner, 503, "error",
           rc == VERIFY_MISSING
               ? "patchbay has no WEBHOOK_SECRET yet, so it cannot verify deliveries; open / for set-up"
               : "patchbay cannot verify deliveries right now (out of memory)");
        return -1;
    }
    rc = verify_stream_begin(&h->mac, key, r->signature.base, r->signature.len);
    if (rc == VERIFY_ERROR) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_UNAVAILABLE);
        cb(owner, 503, "error", "patchbay cannot verify deliveries right now (out of memory)");
        return -1;
    }
    if (rc != VERIFY_OK) {
        /* nothing to verify the body against: no byte of it needs reading */
        refuse_signature(l, h->event, rc, cb, owner);
        return -1;
    }
    return 0;
}

void delivery_feed(delivery_head_t *h, const void *data, size_t len)
{
    verify_stream_update(h->mac, data, len);
}

void delivery_head_clear(delivery_head_t *h)
{
    verify_stream_free(h->mac);
    h->mac = NULL;
}

delivery_t *delivery_finish(delivery_loop_t *l, delivery_head_t *h, const char *body, size_t len,
                            delivery_answer_cb cb, void *owner)
{
    const delivery_conf_t *c = l->conf;
    delivery_t *p = NULL;
    int vr = verify_stream_finish(h->mac);
    delivery_head_clear(h);
    if (body == NULL)
        body = "";

    if (vr == VERIFY_ERROR) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_UNAVAILABLE);
        cb(owner, 503, "error", "patchbay cannot verify deliveries right now (out of memory)");
        return NULL;
    }
    if (vr != VERIFY_OK) {
        refuse_signature(l, h->event, vr, cb, owner);
        return NULL;
    }
    const char *bad = NULL;
    if (h->event[0] == '\0')
        bad = "missing or invalid X-GitHub-Event";
    else if (h->delivery[0] == '\0')
        bad = "missing or invalid X-GitHub-Delivery";
    if (bad != NULL) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_BAD_REQUEST);
        cb(owner, 400, "error", bad);
        return NULL;
    }

    size_t scratch_cap = len + ROUTER_SCRATCH_EXTRA;
    if ((p = malloc(sizeof(*p) + scratch_cap)) == NULL) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_UNAVAILABLE);
        cb(owner, 503, "error", "out of memory");
        return NULL;
    }
    int rc = router_route(&p->route, &c->rules, h->event, body, len, p->scratch, scratch_cap);
    if (rc != ROUTER_OK) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_BAD_REQUEST);
        log_warn(h->delivery, NULL, "malformed %s delivery: %s", h->event, p->route.reason);
        cb(owner, 400, "error", p->route.reason);
        free(p);
        return NULL;
    }
    if (p->route.outcome == ROUTE_IGNORED) {
        metrics_delivery(c->metrics, h->event, METRICS_OUT_IGNORED);
        log_debug(h->delivery, NULL, "ignored %s: %s", h->event, p->route.reason);
        cb(owner, 200, "ignored", p->route.reason);
        free(p);
        return NULL;
    }
    return enqueue(l, p, h, body, len, cb, owner);
}

/* ---- the loop's part ---- */

void delivery_conf_init(delivery_conf_t *c, const config_t *cfg, metrics_t *metrics, ingress_t *ingress)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->metrics = metrics;
    c->ingress = ingress;
    c->rules.handle = cfg->bot.handle;
    c->rules.labels = &cfg->triggers.labels;
    c->rules.associations = &cfg->triggers.associations;
    queue_enqueue_sha(c->enqueue_sha);
    c->retention_s = (int64_t)cfg->workers.retention_days * 86400;
}

void delivery_loop_init(delivery_loop_t *l, const delivery_conf_t *c, h2o_context_t *ctx,
                        h2o_multithread_queue_t *queue, rasync_t *redis)
{
    memset(l, 0, sizeof(*l));
    l->conf = c;
    l->ctx = ctx;
    l->redis = redis;
    l->batch_flush.cb = on_batch_flush;
    h2o_multithread_register_receiver(queue, &l->spool_receiver, on_spool_written);
    h2o_timeout_init(ctx->loop, &l->redis_deadline, (uint64_t)c->cfg->server.redis_timeout_ms);
}

void delivery_loop_dispose(delivery_loop_t *l)
{
    h2o_timeout_dispose(l->ctx->loop, &l->redis_deadline);
    h2o_multithread_unregister_receiver(l->spool_receiver.queue, &l->spool_receiver);
    verify_key_free(l->key); /* OpenSSL cleanses the key material it frees */
    l->key = NULL;
}
