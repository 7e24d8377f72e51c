/*
 * server — see server.h.
 *
 * A delivery's life on an event-loop thread:
 *
 *   on_req -> verify -> route -> ignored (200) | malformed (400)
 *                              -> job: joins this loop turn's batch; one EVALSHA per batch
 *                                   -> answer: 202 job / 200 duplicate
 *                                   -> error, lost connection, or no answer
 *                                      within redis_timeout_ms: spool it
 *                                         -> ingress thread fsyncs -> 202 spooled
 *                                         -> the disk refused -> 503
 *
 * The delivery_t that carries a delivery through the asynchronous part is
 * refcounted: one reference for the request (dropped when h2o disposes the
 * request's pool), one while a Redis command is in flight, one while a spool
 * write is in flight. Each callback checks `req` (NULL once the client is
 * gone) and `answered` before answering, so a late Redis reply after the
 * deadline, or after a hang-up, is harmless. The enqueue script makes the
 * double path (Redis answered late and the spool has it too) harmless as well:
 * the drain finds the delivery id and makes no second job.
 */
#include "server.h"
#include "app/common/clock.h"
#include "app/github/appsetup.h"
#include "dashboard.h"
#include "httpq.h"
#include "ingress.h"
#include "app/common/log.h"
#include "metrics.h"
#include "qstats.h"
#include "jobs/queue/queue.h"
#include "rasync.h"
#include "app/webhook/router.h"
#include "app/common/strbuf.h"
#include "app/webhook/verify.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SERVER_LOOP_WAIT_MS 100
#define SERVER_LISTEN_BACKLOG 4096
#define SERVER_WARN_INTERVAL_MS 1000
#define SERVER_EVENT_MAX_BYTES 63
#define SERVER_CLOSE_MS 1000

typedef struct server_thread_s server_thread_t;

struct server_s {
    const config_t *cfg;
    h2o_globalconf_t globalconf;
    redisconn_url_t redis_url;
    char *redis_desc;
    ingress_t *ingress;
    metrics_t metrics;
    qstats_t *qstats; /* the queue's metrics, read by a background thread */
    dashboard_t *dashboard;
    router_rules_t rules;
    char enqueue_sha[41];
    int64_t retention_s;
    int nthreads;
    server_thread_t *threads;
    atomic_int stopping;
    int port;
    int started;
    char missing[1024]; /* what stops us from talking to GitHub; empty when nothing */
};

struct server_thread_s {
    server_t *server;
    pthread_t tid;
    int listen_fd;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    rasync_t *redis;
    int redis_up; /* last state counted in metrics */
    h2o_multithread_queue_t *mtqueue;
    h2o_multithread_receiver_t spool_receiver;
    h2o_timeout_t redis_deadline;
    uint64_t last_warn_ms;
    unsigned suppressed_warns;
    h2o_linklist_t conns; /* conn_t: every open client connection */
    size_t nconns;
    struct batch_s *batch; /* deliveries of this loop turn, not sent yet */
    h2o_timeout_entry_t batch_flush;
    dashboard_loop_t dashboard;
    char *saved_secret;      /* the webhook secret set-up saved, once seen (appsetup.h) */
};

/* Deliveries sent to Redis in one script call; each holds a reference. */
typedef struct batch_s {
    server_thread_t *thread;
    size_t n;
    struct delivery_s *items[QUEUE_BATCH_MAX];
} batch_t;

/* h2o 2.2.5 keeps no list of HTTP/1 connections, and disposing a context
 * while one is still open trips an assert (its timeout entries are linked);
 * so we track them to close them at shutdown. */
typedef struct {
    h2o_linklist_t link;
    server_thread_t *thread;
    h2o_socket_t *sock;
} conn_t;

typedef struct {
    h2o_handler_t super;
    server_t *server;
} server_handler_t;

/* ---- answers ---- */

static void respond(h2o_req_t *req, int status, const char *reason, const char *content_type, const char *body,
                    size_t len)
{
    req->res.status = status;
    req->res.reason = reason;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    /* without a content length h2o closes the connection on non-200 answers */
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

/* {"key":"value"} — every webhook answer is one of these. */
static void respond_json(h2o_req_t *req, int status, const char *reason, const char *key, const char *value)
{
    char mem[512];
    strbuf_t b;
    strbuf_init_fixed(&b, mem, sizeof(mem));
    strbuf_append(&b, "{\"");
    strbuf_append(&b, key);
    strbuf_append(&b, "\":");
    strbuf_append_json_string(&b, value, strlen(value) > 400 ? 400 : strlen(value));
    strbuf_append(&b, "}\n");
    respond(req, status, reason, "application/json", b.data, b.len);
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    }
    return "Error";
}

/* ---- deliveries in flight ---- */

typedef struct delivery_s {
    ingress_request_t spool; /* first: the spool's reply message points here */
    server_thread_t *thread;
    h2o_req_t *req; /* NULL once h2o disposed the request */
    int refs;
    int answered;
    int spooling; /* handed to the spool: a late Redis answer changes nothing */
    uint64_t started_us;
    h2o_timeout_entry_t deadline;
    char event[SERVER_EVENT_MAX_BYTES + 1];
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
    atomic_fetch_sub_explicit(&p->thread->server->metrics.inflight, 1, memory_order_relaxed);
    spool_record_free(&p->spool.record);
    free(p);
}

static void delivery_answer(delivery_t *p, int status, metrics_outcome_t outcome, const char *key, const char *value)
{
    if (p->answered || p->req == NULL)
        return;
    p->answered = 1;
    metrics_t *m = &p->thread->server->metrics;
    metrics_delivery(m, p->event, outcome);
    if (status < 300)
        metrics_enqueue_latency(m, clock_mono_us() - p->started_us);
    respond_json(p->req, status, status_reason(status), key, value);
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
    server_thread_t *t = p->thread;
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
    p->spool.reply_to = &t->spool_receiver;
    p->refs++;
    ingress_submit(t->server->ingress, &p->spool);
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

static void batch_fail(batch_t *b, const char *why)
{
    for (size_t i = 0; i < b->n; i++)
        delivery_enqueued(b->items[i], QUEUE_ERR_REDIS, NULL, why);
    free(b);
}

static void on_batch_reply(redisReply *reply, void *arg);

/* Sends the batch's script call; use_sha 0 sends the script text (EVAL). */
static void batch_send(batch_t *b, int use_sha)
{
    server_thread_t *t = b->thread;
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
    if (queue_enqueue_cmd(&cmd, use_sha ? t->server->enqueue_sha : NULL, ds, b->n, t->server->retention_s) != 0) {
        batch_fail(b, "out of memory");
        return;
    }
    /* MULTI ... EXEC: only EXEC's answer matters; if the connection drops
     * before EXEC, Redis discards the transaction and the batch is spooled */
    int rc = 0;
    size_t sent = 0;
    for (; sent < cmd.ncmds && rc == 0; sent++)
        rc = rasync_command_argv(t->redis, sent + 1 == cmd.ncmds ? on_batch_reply : NULL, b, cmd.argc[sent],
                                 cmd.argv[sent], cmd.argvlen[sent]);
    queue_enqueue_cmd_free(&cmd); /* hiredis formatted its own copy */
    if (rc != 0 && sent > 1) {
        /* out of memory half-way: close the open transaction so the next
         * batch's MULTI is not nested in it */
        const char *discard = "DISCARD";
        size_t len = 7;
        rasync_command_argv(t->redis, NULL, NULL, 1, &discard, &len);
    }
    if (rc != 0)
        batch_fail(b, rasync_last_error(t->redis));
}

static void on_batch_reply(redisReply *reply, void *arg)
{
    batch_t *b = arg;
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

static void batch_flush(server_thread_t *t)
{
    batch_t *b = t->batch;
    t->batch = NULL;
    if (h2o_timeout_is_linked(&t->batch_flush))
        h2o_timeout_unlink(&t->batch_flush);
    if (b != NULL)
        batch_send(b, 1);
}

static void on_batch_flush(h2o_timeout_entry_t *entry)
{
    batch_flush(H2O_STRUCT_FROM_MEMBER(server_thread_t, batch_flush, entry));
}

/* Joins this loop turn's batch; the batch leaves at the end of the turn (the
 * zero timeout) or when full, whichever is first. */
static void batch_add(server_thread_t *t, delivery_t *p)
{
    if (t->batch == NULL && (t->batch = calloc(1, sizeof(*t->batch))) == NULL) {
        spool_delivery(p, "out of memory");
        return;
    }
    t->batch->thread = t;
    p->refs++;
    t->batch->items[t->batch->n++] = p;
    if (t->batch->n == QUEUE_BATCH_MAX)
        batch_flush(t);
    else if (!h2o_timeout_is_linked(&t->batch_flush))
        h2o_timeout_link(t->loop, &t->ctx.zero_timeout, &t->batch_flush);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    delivery_t *p = H2O_STRUCT_FROM_MEMBER(delivery_t, deadline, entry);
    char why[96];
    snprintf(why, sizeof(why), "no answer within %d ms", p->thread->server->cfg->server.redis_timeout_ms);
    spool_delivery(p, why);
}

static void enqueue(server_thread_t *t, h2o_req_t *req, const char *event, const char *delivery,
                    const router_result_t *route)
{
    delivery_t *p = calloc(1, sizeof(*p));
    delivery_guard_t *g = p ? h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_guard_dispose) : NULL;
    if (g == NULL) {
        free(p);
        respond_json(req, 503, "Service Unavailable", "error", "out of memory");
        return;
    }
    g->delivery = p;
    p->thread = t;
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
    atomic_fetch_add_explicit(&t->server->metrics.inflight, 1, memory_order_relaxed);

    if (!rasync_connected(t->redis)) {
        spool_delivery(p, rasync_last_error(t->redis));
        return;
    }
    h2o_timeout_link(t->loop, &t->redis_deadline, &p->deadline);
    batch_add(t, p);
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

static void warn_rate_limited(server_thread_t *t, const char *what, const char *detail)
{
    uint64_t now = h2o_now(t->loop);
    if (now - t->last_warn_ms < SERVER_WARN_INTERVAL_MS) {
        t->suppressed_warns++;
        return;
    }
    char more[64] = "";
    if (t->suppressed_warns > 0)
        snprintf(more, sizeof(more), " (%u similar suppressed)", t->suppressed_warns);
    log_warn(NULL, NULL, "%s: %s%s", what, detail, more);
    t->last_warn_ms = now;
    t->suppressed_warns = 0;
}

/* The secret deliveries are signed with: the config's, else the one the
 * set-up page saved, looked for until it appears (a running patchbay takes a
 * newly registered App without a restart; until then a look is one failed
 * open(2), and an unconfigured server has no other work). */
static const char *webhook_secret(server_thread_t *t)
{
    const config_t *cfg = t->server->cfg;
    if (cfg->github.webhook_secret != NULL)
        return cfg->github.webhook_secret;
    if (t->saved_secret == NULL) {
        appcreds_t c;
        if (appcreds_load(cfg->data_dir, &c) == 0) {
            t->saved_secret = strdup(c.webhook_secret);
            OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
            log_info(NULL, NULL, "using the GitHub App %s registered by the set-up page", c.slug);
        }
    }
    return t->saved_secret;
}

static void on_webhook(server_thread_t *t, h2o_req_t *req)
{
    server_t *s = t->server;
    char event[SERVER_EVENT_MAX_BYTES + 1] = "", delivery[QUEUE_DELIVERY_MAX_BYTES + 1] = "";
    h2o_iovec_t v;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        respond_json(req, 405, "Method Not Allowed", "error", "GitHub delivers webhooks with POST");
        return;
    }
    if (header_value(req, H2O_STRLIT("x-github-event"), &v) == 0)
        copy_token(event, sizeof(event), v, "_");

    const char *secret = webhook_secret(t);
    if (secret == NULL) {
        metrics_delivery(&s->metrics, event, METRICS_OUT_UNAVAILABLE);
        respond_json(req, 503, "Service Unavailable", "error",
                     "patchbay has no WEBHOOK_SECRET yet, so it cannot verify deliveries; open / for set-up");
        return;
    }
    int vr = header_value(req, H2O_STRLIT("x-hub-signature-256"), &v) == 0
                 ? verify_signature(secret, strlen(secret), req->entity.base, req->entity.len, v.base, v.len)
                 : VERIFY_MISSING;
    if (vr != VERIFY_OK) {
        metrics_signature_failure(&s->metrics, vr);
        metrics_delivery(&s->metrics, event, METRICS_OUT_UNAUTHORIZED);
        warn_rate_limited(t, "webhook refused", verify_result_name(vr));
        respond_json(req, 401, "Unauthorized", "error",
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
        metrics_delivery(&s->metrics, event, METRICS_OUT_BAD_REQUEST);
        respond_json(req, 400, "Bad Request", "error", bad);
        return;
    }

    size_t scratch_cap = req->entity.len + ROUTER_SCRATCH_EXTRA;
    char *scratch = h2o_mem_alloc_pool(&req->pool, scratch_cap);
    router_result_t *route = h2o_mem_alloc_pool(&req->pool, sizeof(*route));
    int rc = router_route(route, &s->rules, event, req->entity.base ? req->entity.base : "", req->entity.len, scratch,
                          scratch_cap);
    if (rc != ROUTER_OK) {
        metrics_delivery(&s->metrics, event, METRICS_OUT_BAD_REQUEST);
        log_warn(delivery, NULL, "malformed %s delivery: %s", event, route->reason);
        respond_json(req, 400, "Bad Request", "error", route->reason);
        return;
    }
    if (route->outcome == ROUTE_IGNORED) {
        metrics_delivery(&s->metrics, event, METRICS_OUT_IGNORED);
        log_debug(delivery, NULL, "ignored %s: %s", event, route->reason);
        respond_json(req, 200, "OK", "ignored", route->reason);
        return;
    }
    enqueue(t, req, event, delivery, route);
}

/* ---- status endpoints ---- */

static void on_healthz(h2o_req_t *req)
{
    respond(req, 200, "OK", "text/plain; charset=utf-8", H2O_STRLIT("ok\n"));
}

static void on_readyz(server_thread_t *t, h2o_req_t *req)
{
    /* the connection's own state: it notices a dead Redis on the next write
     * or within one reconnect attempt, without a round trip per probe */
    if (rasync_connected(t->redis)) {
        respond(req, 200, "OK", "text/plain; charset=utf-8", H2O_STRLIT("ready\n"));
        return;
    }
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "Redis unreachable: %s\n", rasync_last_error(t->redis));
    respond(req, 503, "Service Unavailable", "text/plain; charset=utf-8", msg, (size_t)n);
}

static void on_metrics(server_t *s, h2o_req_t *req)
{
    strbuf_t b = STRBUF_INIT;
    metrics_render(&s->metrics, &b);
    qstats_render(s->qstats, &b);
    respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
    strbuf_free(&b);
}

static void page_start(strbuf_t *b)
{
    strbuf_append(b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>patchbay</title>"
                     "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}"
                     "code,pre{background:#f3f3f3;padding:.1em .3em}.bad{color:#b00}.ok{color:#070}"
                     "button{font:inherit;padding:.3em 1em}</style></head><body><h1>patchbay</h1>");
}

static void page_send(server_t *s, h2o_req_t *req, int status, const char *reason, strbuf_t *b)
{
    strbuf_append(b, "</body></html>\n");
    /* the set-up forms post to GitHub; nothing else leaves this origin */
    strbuf_t csp = STRBUF_INIT;
    strbuf_append(&csp, "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'; "
                        "form-action 'self' ");
    strbuf_append(&csp, s->cfg->github.url);
    char *policy = h2o_mem_alloc_pool(&req->pool, csp.len + 1);
    memcpy(policy, csp.data, csp.len + 1);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL, policy,
                          csp.len);
    strbuf_free(&csp);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    respond(req, status, reason, "text/html; charset=utf-8", b->data ? b->data : "", b->len);
}

/* Where GitHub and browsers reach this server: server.public_url, else the
 * address this browser used. */
static void base_url(server_t *s, h2o_req_t *req, char *out, size_t len)
{
    const char *pub = s->cfg->server.public_url;
    if (pub != NULL && pub[0] != '\0') {
        size_t n = strlen(pub);
        while (n > 0 && pub[n - 1] == '/')
            n--;
        snprintf(out, len, "%.*s", (int)n, pub);
    } else {
        snprintf(out, len, "http://%.*s", (int)req->authority.len, req->authority.base);
    }
}

static void setup_forms(server_thread_t *t, h2o_req_t *req, strbuf_t *b, const char *org)
{
    server_t *s = t->server;
    char state[65], base[1024];
    if (appsetup_state(s->cfg->data_dir, state) != 0) {
        strbuf_append(b, "<p class=\"bad\">The data directory cannot be written, so the App cannot be registered "
                         "from here: ");
        strbuf_append_html(b, strerror(errno));
        strbuf_append(b, "</p>");
        return;
    }
    base_url(s, req, base, sizeof(base));
    appsetup_render(b, s->cfg->github.url, base, s->cfg->server.webhook_path, state, org);
}

static void on_status_page(server_thread_t *t, h2o_req_t *req)
{
    server_t *s = t->server;
    strbuf_t b = STRBUF_INIT;
    page_start(&b);
    appcreds_t saved;
    if (s->missing[0] != '\0' && appcreds_load(s->cfg->data_dir, &saved) == 0) {
        strbuf_append(&b, "<p class=\"ok\">GitHub App <strong>");
        strbuf_append_html(&b, saved.name[0] ? saved.name : saved.slug);
        strbuf_append(&b, "</strong> registered by this page. Install it on your repositories: <a href=\"");
        strbuf_append_html(&b, saved.html_url);
        strbuf_append(&b, "/installations/new\">");
        strbuf_append_html(&b, saved.html_url);
        strbuf_append(&b, "/installations/new</a></p>");
        OPENSSL_cleanse(saved.webhook_secret, sizeof(saved.webhook_secret));
    } else if (s->missing[0] != '\0') {
        strbuf_append(&b, "<h2 class=\"bad\">Not connected to GitHub yet</h2><p>Missing: ");
        strbuf_append_html(&b, s->missing);
        strbuf_append(&b, "</p>");
        setup_forms(t, req, &b, NULL);
        strbuf_append(&b, "<p>Or register it by hand with <code>config/app-manifest.yml</code> (README, “GitHub App "
                          "setup”) and set <code>APP_ID</code>, <code>PRIVATE_KEY_PATH</code> and "
                          "<code>WEBHOOK_SECRET</code>.</p>");
    } else {
        strbuf_append(&b, "<p class=\"ok\">GitHub App configured. Webhook path: <code>");
        strbuf_append_html(&b, s->cfg->server.webhook_path);
        strbuf_append(&b, "</code></p>");
    }
    strbuf_appendf(&b, "<p>Redis: <span class=\"%s\">%s</span></p>", rasync_connected(t->redis) ? "ok" : "bad",
                   rasync_connected(t->redis) ? "connected" : "unreachable");
    strbuf_appendf(&b, "<p>Deliveries waiting in the spool: %lld</p>",
                   (long long)atomic_load(&s->metrics.spool_depth));
    strbuf_append(&b, "<p><a href=\"/jobs\">jobs</a> · <a href=\"/metrics\">metrics</a> · <a href=\"/healthz\">"
                      "healthz</a> · <a href=\"/readyz\">readyz</a></p>");
    page_send(s, req, 200, "OK", &b);
    strbuf_free(&b);
}

/* Whether patchbay has an App already: set-up must not replace it. */
static int registered(server_t *s)
{
    appcreds_t c;
    if (s->missing[0] == '\0')
        return 1;
    int saved = appcreds_load(s->cfg->data_dir, &c) == 0;
    OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
    return saved;
}

static void on_setup(server_thread_t *t, h2o_req_t *req, int callback)
{
    server_t *s = t->server;
    strbuf_t b = STRBUF_INIT;
    page_start(&b);
    int status = 200;
    const char *reason = "OK";
    char org[64], code[256], state[80];
    if (registered(s)) {
        status = 409, reason = "Conflict";
        strbuf_append(&b, "<p class=\"bad\">patchbay already has a GitHub App; set-up does not replace it. To start "
                          "over, stop patchbay, remove its credentials and start it again.</p>");
    } else if (!callback) {
        if (httpq_decoded(req, "org", org, sizeof(org)) != 0 || org[0] == '\0') {
            status = 400, reason = "Bad Request";
            strbuf_append(&b, "<p class=\"bad\">Which organization? Go back to <a href=\"/\">the start</a>.</p>");
        } else {
            setup_forms(t, req, &b, org);
        }
    } else if (httpq_decoded(req, "state", state, sizeof(state)) != 0 ||
               appsetup_state_take(s->cfg->data_dir, state) != 0) {
        status = 400, reason = "Bad Request";
        log_warn(NULL, NULL, "set-up callback with an unknown or expired state: refused");
        strbuf_append(&b, "<p class=\"bad\">This set-up link is expired or was not made here. Start again from "
                          "<a href=\"/\">the start</a>.</p>");
    } else if (httpq_decoded(req, "code", code, sizeof(code)) != 0) {
        status = 400, reason = "Bad Request";
        strbuf_append(&b, "<p class=\"bad\">GitHub sent no code. Start again from <a href=\"/\">the start</a>.</p>");
    } else {
        /* Blocking, on purpose: this happens once, before any delivery can be
         * verified, and the answer is what the person is waiting for. */
        json_t *conv = NULL;
        appcreds_t c;
        char err[512];
        if (appsetup_exchange(&conv, s->cfg->github.api_url, code, s->cfg->github.timeout_ms, err, sizeof(err)) != 0 ||
            appcreds_save(s->cfg->data_dir, conv, &c, err, sizeof(err)) != 0) {
            status = 502, reason = "Bad Gateway";
            log_error(NULL, NULL, "GitHub App registration failed: %s", err);
            strbuf_append(&b, "<p class=\"bad\">The App could not be registered: ");
            strbuf_append_html(&b, err);
            strbuf_append(&b, "</p><p><a href=\"/\">Start again</a></p>");
        } else {
            log_info(NULL, NULL, "GitHub App %s (id %s) registered; credentials saved under %s/" APPSETUP_DIR, c.slug,
                     c.app_id, s->cfg->data_dir);
            strbuf_append(&b, "<p class=\"ok\">Registered the GitHub App <strong>");
            strbuf_append_html(&b, c.name[0] ? c.name : c.slug);
            strbuf_append(&b, "</strong>. patchbay uses it from now on.</p><p>Now install it on the repositories it "
                              "should work on: <a href=\"");
            strbuf_append_html(&b, c.html_url);
            strbuf_append(&b, "/installations/new\">");
            strbuf_append_html(&b, c.html_url);
            strbuf_append(&b, "/installations/new</a></p>");
            OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
        }
        if (conv != NULL) {
            json_t *pem = json_object_get(conv, "pem");
            if (json_is_string(pem))
                OPENSSL_cleanse((void *)json_string_value(pem), json_string_length(pem));
        }
        json_decref(conv);
    }
    page_send(s, req, status, reason, &b);
    strbuf_free(&b);
}

/* ---- dispatch ---- */

static int path_is(h2o_req_t *req, const char *path)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, strlen(path));
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    server_t *s = ((server_handler_t *)self)->server;
    server_thread_t *t = H2O_STRUCT_FROM_MEMBER(server_thread_t, ctx, req->conn->ctx);
    if (path_is(req, s->cfg->server.webhook_path))
        on_webhook(t, req);
    else if (path_is(req, "/healthz"))
        on_healthz(req);
    else if (path_is(req, "/readyz"))
        on_readyz(t, req);
    else if (path_is(req, "/metrics"))
        on_metrics(s, req);
    else if (path_is(req, "/"))
        on_status_page(t, req);
    else if (path_is(req, "/setup/org"))
        on_setup(t, req, 0);
    else if (path_is(req, "/setup/callback"))
        on_setup(t, req, 1);
    else if (!dashboard_handle(&t->dashboard, req))
        respond_json(req, 404, "Not Found", "error", "no such path");
    return 0;
}

/* ---- threads ---- */

static void on_conn_close(void *arg)
{
    conn_t *c = arg;
    h2o_linklist_unlink(&c->link);
    c->thread->nconns--;
    free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    server_thread_t *t = listener->data;
    if (err != NULL)
        return;
    /* accept a few per wake-up: fair to the other threads' listeners */
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        conn_t *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            h2o_socket_close(sock);
            continue;
        }
        c->thread = t;
        c->sock = sock;
        h2o_linklist_insert(&t->conns, &c->link);
        t->nconns++;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&t->accept_ctx, sock);
    }
}

/* Idle keep-alive connections would wait for their next request forever;
 * shutting their sockets down makes h2o see the end of the stream and close
 * them through its own path, which unlinks their timers. */
static void close_connections(server_thread_t *t)
{
    for (h2o_linklist_t *n = t->conns.next; n != &t->conns; n = n->next)
        shutdown(h2o_socket_get_fd(H2O_STRUCT_FROM_MEMBER(conn_t, link, n)->sock), SHUT_RDWR);
    uint64_t until = h2o_now(t->loop) + SERVER_CLOSE_MS;
    while (t->nconns > 0 && h2o_now(t->loop) < until)
        h2o_evloop_run(t->loop, 10);
}

static void track_redis_state(server_thread_t *t)
{
    int up = rasync_connected(t->redis);
    if (up != t->redis_up) {
        atomic_fetch_add(&t->server->metrics.redis_connections_up, up ? 1 : -1);
        t->redis_up = up;
    }
}

/* Everything h2o makes for a loop is made and disposed of on the loop's own
 * thread: an h2o socket's empty input buffer is a __thread prototype of the
 * thread that created it, so a socket created or closed on another thread
 * reads that thread's TLS (after the thread exited, unmapped memory). */
static void thread_init(server_thread_t *t)
{
    server_t *s = t->server;
    t->loop = h2o_evloop_create();
    h2o_context_init(&t->ctx, t->loop, &s->globalconf);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = s->globalconf.hosts;
    h2o_linklist_init_anchor(&t->conns);
    t->batch_flush.cb = on_batch_flush;
    t->mtqueue = h2o_multithread_create_queue(t->loop);
    h2o_multithread_register_receiver(t->mtqueue, &t->spool_receiver, on_spool_written);
    dashboard_loop_init(&t->dashboard, s->dashboard, t->mtqueue, &s->metrics.inflight);
    h2o_timeout_init(t->loop, &t->redis_deadline, (uint64_t)s->cfg->server.redis_timeout_ms);
    t->redis = rasync_new(t->loop, &s->redis_url);
    t->listener = h2o_evloop_socket_create(t->loop, t->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    t->listen_fd = -1; /* the socket owns it now */
    t->listener->data = t;
    h2o_socket_read_start(t->listener, on_accept);
}

static void thread_dispose(server_thread_t *t)
{
    rasync_free(t->redis);
    t->redis = NULL;
    h2o_timeout_dispose(t->loop, &t->redis_deadline);
    h2o_multithread_unregister_receiver(t->mtqueue, &t->spool_receiver);
    dashboard_loop_dispose(&t->dashboard);
    if (t->saved_secret != NULL) {
        OPENSSL_cleanse(t->saved_secret, strlen(t->saved_secret));
        free(t->saved_secret);
    }
    h2o_multithread_destroy_queue(t->mtqueue);
    /* h2o 2.2.5's evloop build closes the queue's pipe but never frees the
     * queue itself; it came from malloc (h2o_mem_alloc) */
    free(t->mtqueue);
    h2o_context_dispose(&t->ctx);
    free(t->ctx.queue); /* the same h2o 2.2.5 omission */
    /* let h2o run the closes it scheduled before the loop goes */
    h2o_evloop_run(t->loop, 0);
    h2o_evloop_destroy(t->loop);
    t->loop = NULL;
}

static void *thread_main(void *arg)
{
    server_thread_t *t = arg;
    server_t *s = t->server;

    thread_init(t);
    while (!atomic_load(&s->stopping)) {
        h2o_evloop_run(t->loop, SERVER_LOOP_WAIT_MS);
        track_redis_state(t);
    }
    /* stop taking connections; finish the deliveries already here */
    if (t->listener != NULL) {
        h2o_socket_read_stop(t->listener);
        h2o_socket_close(t->listener);
        t->listener = NULL;
    }
    uint64_t until = h2o_now(t->loop) + SERVER_DRAIN_MS;
    while (atomic_load(&s->metrics.inflight) > 0 && h2o_now(t->loop) < until)
        h2o_evloop_run(t->loop, 10);
    close_connections(t);
    if (t->nconns > 0 || atomic_load(&s->metrics.inflight) > 0) {
        /* something h2o or another thread still holds: disposing would abort
         * or free what they will touch, so leave it to the process's exit */
        log_warn(NULL, NULL, "%zu connections still open at exit", t->nconns);
        return NULL;
    }
    thread_dispose(t);
    return NULL;
}

static int bind_listener(const config_t *cfg, int port, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(cfg->server.host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "cannot resolve HOST %s: %s", cfg->server.host, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SERVER_LISTEN_BACKLOG) != 0) {
        snprintf(err, err_len, "cannot listen on %s:%d: %s", cfg->server.host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

static void describe_missing(server_t *s)
{
    config_errors_t errs = {0};
    config_check_credentials(s->cfg, &errs);
    strbuf_t b;
    strbuf_init_fixed(&b, s->missing, sizeof(s->missing));
    for (size_t i = 0; i < errs.count; i++) {
        if (i > 0)
            strbuf_append(&b, "; ");
        strbuf_append(&b, errs.items[i].message);
    }
    config_errors_free(&errs);
}

server_t *server_new(const config_t *cfg, const char *redis_url, char *err, size_t err_len)
{
    server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    metrics_init(&s->metrics);
    queue_enqueue_sha(s->enqueue_sha);
    s->retention_s = (int64_t)cfg->workers.retention_days * 86400;
    s->rules.handle = cfg->bot.handle;
    s->rules.labels = &cfg->triggers.labels;
    s->rules.associations = &cfg->triggers.associations;
    describe_missing(s);

    if (redisconn_url_parse(&s->redis_url, redis_url, err, err_len) != 0)
        goto fail;
    s->redis_desc = redisconn_url_describe(&s->redis_url);

    s->nthreads = cfg->server.threads > 0 ? cfg->server.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->nthreads < 1)
        s->nthreads = 1;
    s->threads = calloc((size_t)s->nthreads, sizeof(*s->threads));
    if (s->threads == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->nthreads; i++)
        s->threads[i].listen_fd = -1;
    s->port = cfg->server.port;
    for (int i = 0; i < s->nthreads; i++) {
        s->threads[i].server = s;
        if ((s->threads[i].listen_fd = bind_listener(cfg, s->port, err, err_len)) < 0)
            goto fail;
        if (s->port == 0) /* the first bind picked a port; the others share it */
            s->port = bound_port(s->threads[i].listen_fd);
    }

    s->ingress = ingress_start(cfg->data_dir, &s->redis_url, s->retention_s, &s->metrics, err, err_len);
    if (s->ingress == NULL)
        goto fail;
    s->qstats = qstats_start(&s->redis_url);
    if ((s->dashboard = dashboard_new(cfg, &s->redis_url, err, err_len)) == NULL)
        goto fail;

    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("patchbay"));
    s->globalconf.max_request_entity_size = cfg->server.body_limit_bytes;
    s->globalconf.http1.req_timeout = (uint64_t)cfg->server.request_timeout_ms;
    s->globalconf.http1.upgrade_to_http2 = 0;
    s->globalconf.http2.idle_timeout = (uint64_t)cfg->server.request_timeout_ms;
    h2o_hostconf_t *host = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    server_handler_t *handler = (server_handler_t *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->server = s;
    return s;
fail:
    server_free(s);
    return NULL;
}

int server_port(const server_t *s)
{
    return s->port;
}

int server_start(server_t *s, char *err, size_t err_len)
{
    for (int i = 0; i < s->nthreads; i++) {
        server_thread_t *t = &s->threads[i];
        if (pthread_create(&t->tid, NULL, thread_main, t) != 0) {
            snprintf(err, err_len, "cannot start event-loop thread %d", i);
            atomic_store(&s->stopping, 1);
            return -1;
        }
        s->started++;
    }
    log_info(NULL, NULL, "listening on %s:%d (%d event loops), webhook path %s, Redis at %s", s->cfg->server.host,
             s->port, s->nthreads, s->cfg->server.webhook_path, s->redis_desc);
    if (s->missing[0] != '\0')
        log_warn(NULL, NULL, "not connected to GitHub yet: %s. Open http://%s:%d/ for set-up.", s->missing,
                 strcmp(s->cfg->server.host, "0.0.0.0") == 0 ? "127.0.0.1" : s->cfg->server.host, s->port);
    return 0;
}

void server_stop(server_t *s)
{
    atomic_store(&s->stopping, 1);
    for (int i = 0; i < s->started; i++)
        pthread_join(s->threads[i].tid, NULL);
    s->started = 0;
    /* after the loops: the ingress thread may still be answering them */
    ingress_stop(s->ingress);
    s->ingress = NULL;
    qstats_stop(s->qstats);
    s->qstats = NULL;
    dashboard_free(s->dashboard);
    s->dashboard = NULL;
}

void server_free(server_t *s)
{
    if (s == NULL)
        return;
    if (s->started)
        server_stop(s);
    ingress_stop(s->ingress);
    qstats_stop(s->qstats);
    dashboard_free(s->dashboard);
    /* the loops disposed of themselves on their threads (thread_dispose);
     * only listeners of threads that never started are left */
    for (int i = 0; s->threads != NULL && i < s->nthreads; i++)
        if (s->threads[i].listen_fd >= 0)
            close(s->threads[i].listen_fd);
    free(s->threads);
    if (s->globalconf.hosts != NULL)
        h2o_config_dispose(&s->globalconf);
    redisconn_url_free(&s->redis_url);
    free(s->redis_desc);
    free(s);
}
