/* delivery — see delivery.h. */
#include "delivery.h"
#include "respond.h"
#include "app/common/appcreds.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/webhook/verify.h"
#include "jobs/queue/queue.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELIVERY_EVENT_MAX_BYTES 63

/* Deliveries sent to Redis in one script call; each holds a reference. */
typedef struct delivery_batch_s {
    delivery_loop_t *loop;
    size_t n;
    struct delivery_s *items[QUEUE_BATCH_MAX];
} delivery_batch_t;

/* ---- deliveries in flight ---- */

typedef struct delivery_s {
    ingress_request_t spool; /* first: the spool's reply message points here */
    delivery_loop_t *loop;
    h2o_req_t *req; /* NULL once h2o disposed the request */
    int refs;
    int answered;
    int spooling; /* handed to the spool: a late Redis answer changes nothing */
    uint64_t started_us;
    h2o_timeout_entry_t deadline;
    char event[DELIVERY_EVENT_MAX_BYTES + 1];
    char delivery[QUEUE_DELIVERY_MAX_BYTES + 1];
    queue_delivery_t d; /* points into the request's pool: valid while req != NULL */
} delivery_t;

typedef struct {
    delivery_t *delivery;
} delivery_guard_t;

static void delivery_release(delivery_t *p)
{
    assert(p->refs > 0);
    if (--p->refs > 0)
        return;
    atomic_fetch_sub_explicit(&p->loop->conf->metrics->inflight, 1, memory_order_relaxed);
    spool_record_free(&p->spool.record);
    free(p);
}

static void delivery_answer(delivery_t *p, int status, metrics_outcome_t outcome, const char *key, const char *value)
{
    if (p->answered || p->req == NULL)
        return;
    p->answered = 1;
    metrics_t *m = p->loop->conf->metrics;
    metrics_delivery(m, p->event, outcome);
    if (status < 300)
        metrics_enqueue_latency(m, clock_mono_us() - p->started_us);
    respond_json(p->req, status, key, value);
}

static void on_guard_dispose(void *arg)
{
    delivery_guard_t *g = arg;
    delivery_t *p = g->delivery;
    p->req = NULL;
    if (h2o_timeout_is_linked(&p->deadline))
        h2o_timeout_unlink(&p->deadline);
    delivery_release(p);
}

static void spool_delivery(delivery_t *p, const char *why)
{
    delivery_loop_t *l = p->loop;
    if (p->spooling || p->answered || p->req == NULL)
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
    if (!(p->answered || p->spooling || p->req == NULL)) {
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

/* Sends the batch's script call; use_sha 0 sends the script text (EVAL). */
static void batch_send(delivery_batch_t *b, int use_sha)
{
    delivery_loop_t *l = b->loop;
    /* deliveries already spooled (their deadline passed) leave the batch:
     * their request data may not be read after they were answered */
    size_t live = 0;
    for (size_t i = 0; i < b->n; i++) {
        delivery_t *p = b->items[i];
        if (p->answered || p->spooling || p->req == NULL)
            delivery_release(p);
        else
            b->items[live++] = p;
    }
    b->n = live;
    if (b->n == 0) {
        free(b);
        return;
    }
    const queue_delivery_t *ds[QUEUE_BATCH_MAX];
    for (size_t i = 0; i < b->n; i++)
        ds[i] = &b->items[i]->d;
    queue_enqueue_cmd_t cmd;
    if (queue_enqueue_cmd(&cmd, use_sha ? l->conf->enqueue_sha : NULL, ds, b->n, l->conf->retention_s) != 0) {
        batch_fail(b, "out of memory");
        return;
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
    if (rc != 0)
        batch_fail(b, rasync_last_error(l->redis));
}

static void on_batch_reply(redisReply *reply, void *arg)
{
    delivery_batch_t *b = arg;
    queue_enqueue_result_t results[QUEUE_BATCH_MAX];
    char err[256] = "";
    int rc = queue_enqueue_parse(reply, b->n, results, err, sizeof(err));
    if (rc == QUEUE_ERR_NOSCRIPT) {
        /* Redis restarted and lost its script cache: EVAL loads it again */
        batch_send(b, 0);
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        delivery_enqueued(b->items[i], rc, &results[i], err);
    free(b);
}

static void batch_flush(delivery_loop_t *l)
{
    delivery_batch_t *b = l->batch;
    l->batch = NULL;
    if (h2o_timeout_is_linked(&l->batch_flush))
        h2o_timeout_unlink(&l->batch_flush);
    if (b != NULL)
        batch_send(b, 1);
}

static void on_batch_flush(h2o_timeout_entry_t *entry)
{
    batch_flush(H2O_STRUCT_FROM_MEMBER(delivery_loop_t, batch_flush, entry));
}

/* Joins this loop turn's batch; the batch leaves at the end of the turn (the
 * zero timeout) or when full, whichever is first. */
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
        batch_flush(l);
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

static void enqueue(delivery_loop_t *l, h2o_req_t *req, const char *event, const char *delivery,
                    const router_result_t *route)
{
    delivery_t *p = calloc(1, sizeof(*p));
    delivery_guard_t *g = p ? h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_guard_dispose) : NULL;
    if (g == NULL) {
        free(p);
        respond_json(req, 503, "error", "out of memory");
        return;
    }
    g->delivery = p;
    p->loop = l;
    p->req = req;
    p->refs = 1;
    p->started_us = clock_mono_us();
    p->deadline.cb = on_deadline;
    snprintf(p->event, sizeof(p->event), "%s", event);
    snprintf(p->delivery, sizeof(p->delivery), "%s", delivery);
    p->d.delivery = p->delivery;
    p->d.received_ms = clock_wall_ms();
    p->d.payload = req->entity.base != NULL ? req->entity.base : "";
    p->d.payload_len = req->entity.len;
    p->d.fields = &route->fields;
    atomic_fetch_add_explicit(&l->conf->metrics->inflight, 1, memory_order_relaxed);

    if (!rasync_connected(l->redis)) {
        spool_delivery(p, rasync_last_error(l->redis));
        return;
    }
    h2o_timeout_link(l->ctx->loop, &l->redis_deadline, &p->deadline);
    batch_add(l, p);
}

/* ---- the webhook endpoint ---- */

static int header_value(h2o_req_t *req, const char *name, size_t name_len, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, name_len, -1);
    if (i < 0)
        return -1;
    *out = req->headers.entries[i].value;
    return 0;
}

/* Header values end up in Redis keys, logs and JSON: allow only what GitHub
 * sends (GUIDs, event names), so a crafted value can inject nothing. */
static int copy_token(char *dst, size_t cap, h2o_iovec_t v, const char *extra)
{
    if (v.len == 0 || v.len >= cap)
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

/* The secret deliveries are signed with: the config's, else the one the
 * set-up page saved, looked for until it appears (a running patchbay takes a
 * newly registered App without a restart; until then a look is one failed
 * open(2), and an unconfigured server has no other work). */
static const char *webhook_secret(delivery_loop_t *l)
{
    const config_t *cfg = l->conf->cfg;
    if (cfg->github.webhook_secret != NULL)
        return cfg->github.webhook_secret;
    if (l->saved_secret == NULL) {
        appcreds_t c;
        if (appcreds_load(cfg->data_dir, &c) == 0) {
            l->saved_secret = strdup(c.webhook_secret);
            OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
            log_info(NULL, NULL, "using the GitHub App %s registered by the set-up page", c.slug);
        }
    }
    return l->saved_secret;
}

void delivery_handle(delivery_loop_t *l, h2o_req_t *req)
{
    const delivery_conf_t *c = l->conf;
    char event[DELIVERY_EVENT_MAX_BYTES + 1] = "", delivery[QUEUE_DELIVERY_MAX_BYTES + 1] = "";
    h2o_iovec_t v;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        respond_json(req, 405, "error", "GitHub delivers webhooks with POST");
        return;
    }
    if (header_value(req, H2O_STRLIT("x-github-event"), &v) == 0)
        copy_token(event, sizeof(event), v, "_");

    const char *secret = webhook_secret(l);
    if (secret == NULL) {
        metrics_delivery(c->metrics, event, METRICS_OUT_UNAVAILABLE);
        respond_json(req, 503, "error",
                     "patchbay has no WEBHOOK_SECRET yet, so it cannot verify deliveries; open / for set-up");
        return;
    }
    int vr = header_value(req, H2O_STRLIT("x-hub-signature-256"), &v) == 0
                 ? verify_signature(secret, strlen(secret), req->entity.base, req->entity.len, v.base, v.len)
                 : VERIFY_MISSING;
    if (vr != VERIFY_OK) {
        metrics_signature_failure(c->metrics, vr);
        metrics_delivery(c->metrics, event, METRICS_OUT_UNAUTHORIZED);
        warn_rate_limited(l, "webhook refused", verify_result_name(vr));
        respond_json(req, 401, "error",
                     vr == VERIFY_MISSING ? "missing X-Hub-Signature-256" : "X-Hub-Signature-256 does not match the body");
        return;
    }

    const char *bad = NULL;
    if (event[0] == '\0')
        bad = "missing or invalid X-GitHub-Event";
    else if (header_value(req, H2O_STRLIT("x-github-delivery"), &v) != 0 ||
             copy_token(delivery, sizeof(delivery), v, "-_.") != 0)
        bad = "missing or invalid X-GitHub-Delivery";
    if (bad != NULL) {
        metrics_delivery(c->metrics, event, METRICS_OUT_BAD_REQUEST);
        respond_json(req, 400, "error", bad);
        return;
    }

    size_t scratch_cap = req->entity.len + ROUTER_SCRATCH_EXTRA;
    char *scratch = h2o_mem_alloc_pool(&req->pool, scratch_cap);
    router_result_t *route = h2o_mem_alloc_pool(&req->pool, sizeof(*route));
    int rc = router_route(route, &c->rules, event, req->entity.base ? req->entity.base : "", req->entity.len, scratch,
                          scratch_cap);
    if (rc != ROUTER_OK) {
        metrics_delivery(c->metrics, event, METRICS_OUT_BAD_REQUEST);
        log_warn(delivery, NULL, "malformed %s delivery: %s", event, route->reason);
        respond_json(req, 400, "error", route->reason);
        return;
    }
    if (route->outcome == ROUTE_IGNORED) {
        metrics_delivery(c->metrics, event, METRICS_OUT_IGNORED);
        log_debug(delivery, NULL, "ignored %s: %s", event, route->reason);
        respond_json(req, 200, "ignored", route->reason);
        return;
    }
    enqueue(l, req, event, delivery, route);
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
    if (l->saved_secret != NULL) {
        OPENSSL_cleanse(l->saved_secret, strlen(l->saved_secret));
        free(l->saved_secret);
        l->saved_secret = NULL;
    }
}
