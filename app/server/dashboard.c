/*
 * dashboard — see dashboard.h. The HTTP side runs on the event loops; the
 * Redis side on one background thread (dash_main) that takes requests from a
 * list, does the blocking calls, and sends each answer back to the loop the
 * request came from.
 */
#include "dashboard.h"
#include "httpq.h"
#include "respond.h"
#include "app/common/bgthread.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/secret.h"
#include "app/common/strbuf.h"
#include "app/github/ghbudget.h"
#include "jobs/queue/queue.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* from the build's generated/dashboard_assets.c (cmake/embed.cmake) */
extern const unsigned char dashboard_index_html[], dashboard_css[], dashboard_js[];
extern const size_t dashboard_index_html_len, dashboard_css_len, dashboard_js_len;

/* No inline script or style anywhere, nothing from another origin. */
#define DASHBOARD_CSP                                                                                                  \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "                   \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

typedef enum { OP_LIST, OP_SHOW, OP_LOG, OP_CANCEL, OP_RETRY, OP_GITHUB } dash_op_t;

struct dashboard_s {
    const config_t *cfg;
    const redisconn_url_t *url;
    int open;                        /* dashboard.auth: none, the operator's choice */
    char token[257];                 /* DASHBOARD_TOKEN, or the one kept under the data dir; "" when none */
    int token_created;               /* made by this start: dashboard_announce prints it, once */
    char token_problem[256];         /* why there is no token (the dashboard then refuses everything) */
    bgthread_t bg;
    h2o_linklist_t pending; /* dash_request_t, guarded by bg's lock */
    redisContext *redis; /* the thread's */
};

typedef struct {
    h2o_multithread_message_t super; /* first: the answer comes back as this message */
    h2o_multithread_receiver_t *reply_to;
    h2o_req_t *req; /* NULL once h2o disposed the request */
    int refs;       /* the request's guard, and the thread while it holds it */
    dash_op_t op;
    char id[24];
    char status[16];
    char after[48];
    size_t limit;
    int http_status;
    char *body; /* JSON answer, malloc'ed by the thread */
    size_t body_len;
} dash_request_t;

typedef struct {
    dash_request_t *r;
} dash_guard_t;

/* ---- answers ---- */

static void send_body(h2o_req_t *req, int status, const char *type, const void *body, size_t len)
{
    respond_page_headers(req, DASHBOARD_CSP);
    respond_send(req, status, type, body, len);
}

static void send_error(h2o_req_t *req, int status, const char *message)
{
    respond_page_headers(req, DASHBOARD_CSP);
    respond_json(req, status, "error", message);
}

/* ---- access ---- */

typedef enum { ACCESS_OK, ACCESS_DENIED, ACCESS_DISABLED, ACCESS_SET_COOKIE } access_t;

static access_t check_access(dashboard_t *d, h2o_req_t *req, int is_page)
{
    if (d->open)
        return ACCESS_OK;
    if (d->token[0] == '\0')
        return ACCESS_DISABLED;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0 && secret_equals(d->token, v.base + 7, v.len - 7))
            return ACCESS_OK;
        return ACCESS_DENIED;
    }
    h2o_iovec_t c = httpq_cookie(req, DASHBOARD_COOKIE);
    if (c.base != NULL && secret_equals(d->token, c.base, c.len))
        return ACCESS_OK;
    h2o_iovec_t q = httpq_value(req, "token");
    if (is_page && q.base != NULL && secret_equals(d->token, q.base, q.len))
        return ACCESS_SET_COOKIE;
    return ACCESS_DENIED;
}

/* ---- the Redis thread ---- */

static void json_answer(dash_request_t *r, int status, json_t *v)
{
    r->http_status = status;
    r->body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    r->body_len = r->body ? strlen(r->body) : 0;
}

static void error_answer(dash_request_t *r, int status, const char *message)
{
    json_t *o = json_pack("{s:s}", "error", message);
    json_answer(r, status, o);
    json_decref(o);
}

/* Where a job's issue or pull request lives on GitHub (it redirects an
 * issue URL to the pull request when the number is one). */
static void add_links(dashboard_t *d, json_t *job)
{
    const char *repo = json_string_value(json_object_get(job, "repo"));
    json_t *number = json_object_get(job, "number");
    const char *base = d->cfg->github.url;
    if (repo == NULL || !json_is_integer(number) || base == NULL)
        return;
    size_t bl = strlen(base);
    char url[1024];
    snprintf(url, sizeof(url), "%.*s/%s/issues/%lld", (int)(base[bl - 1] == '/' ? bl - 1 : bl), base, repo,
             (long long)json_integer_value(number));
    json_object_set_new(job, "html_url", json_string(url));
}

static int connect_redis(dashboard_t *d, char *err, size_t err_len)
{
    if (d->redis != NULL && !d->redis->err)
        return 0;
    if (d->redis != NULL)
        redisFree(d->redis);
    d->redis = redisconn_connect(d->url, DASHBOARD_REDIS_TIMEOUT_MS, DASHBOARD_REDIS_TIMEOUT_MS, err, err_len);
    return d->redis != NULL ? 0 : -1;
}

static void run_op(dashboard_t *d, dash_request_t *r)
{
    char err[512];
    if (connect_redis(d, err, sizeof(err)) != 0) {
        error_answer(r, 503, err);
        return;
    }
    json_t *v = NULL;
    int rc;
    queue_policy_t policy;
    queue_policy_init(&policy, (int64_t)d->cfg->workers.retention_days * 86400,
                      (int64_t)d->cfg->workers.lease_seconds * 1000);
    switch (r->op) {
    case OP_LIST:
        rc = queue_job_list(d->redis, r->status[0] ? r->status : NULL, r->limit, &v, err, sizeof(err));
        if (rc == QUEUE_OK) {
            size_t i;
            json_t *job;
            json_array_foreach(v, i, job) add_links(d, job);
        }
        break;
    case OP_SHOW:
        rc = queue_job_get(d->redis, r->id, &v, err, sizeof(err));
        if (rc == QUEUE_OK)
            add_links(d, v);
        break;
    case OP_LOG:
        rc = queue_job_log_read(d->redis, r->id, r->after[0] ? r->after : "0", 500, 0, &v, err, sizeof(err));
        break;
    case OP_CANCEL: {
        queue_cancel_outcome_t how;
        rc = queue_job_cancel(d->redis, &policy, r->id, "the dashboard", &how, err, sizeof(err));
        if (rc == QUEUE_OK)
            v = json_pack("{s:s}", "result",
                          how == QUEUE_CANCEL_DONE ? "cancelled" : "asked its worker to stop it (within 2 s)");
        break;
    }
    case OP_RETRY:
        rc = queue_job_retry(d->redis, &policy, r->id, "the dashboard", err, sizeof(err));
        if (rc == QUEUE_OK)
            v = json_pack("{s:s}", "result", "queued again");
        break;
    case OP_GITHUB: {
        /* the installations GitHub's limits (or our budget of them) hold now */
        ghbudget_wait_t w[DASHBOARD_WAITS_MAX];
        size_t n = 0;
        int64_t now = clock_wall_ms();
        rc = ghbudget_waits(d->redis, w, DASHBOARD_WAITS_MAX, &n, now) == 0 ? QUEUE_OK : QUEUE_ERR_REDIS;
        if (rc != QUEUE_OK)
            snprintf(err, sizeof(err), "Redis: %s", d->redis->errstr[0] ? d->redis->errstr : "cannot read the waits");
        json_t *waits = json_array();
        for (size_t i = 0; rc == QUEUE_OK && i < n; i++) {
            char iso[CLOCK_ISO_BYTES];
            clock_format_iso(w[i].until_ms, iso);
            json_array_append_new(waits, json_pack("{s:I, s:s, s:I, s:s, s:I}", "installation",
                                                   (json_int_t)w[i].installation, "until", iso, "until_ms",
                                                   (json_int_t)w[i].until_ms, "reason", ghbudget_why_name(w[i].why),
                                                   "seconds_left", (json_int_t)((w[i].until_ms - now + 999) / 1000)));
        }
        v = json_pack("{s:o}", "waits", waits);
        break;
    }
    default: rc = QUEUE_ERR_REDIS; snprintf(err, sizeof(err), "unknown operation"); break;
    }
    if (rc == QUEUE_OK)
        json_answer(r, 200, v);
    else if (rc == QUEUE_ERR_NOT_FOUND)
        error_answer(r, 404, err);
    else if (rc == QUEUE_ERR_REDIS)
        error_answer(r, 503, err);
    else
        error_answer(r, 409, err); /* refused: the job is in a state where that cannot be done */
    json_decref(v);
}

static void *dash_main(void *arg)
{
    dashboard_t *d = arg;
    bgthread_lock(&d->bg);
    for (;;) {
        while (h2o_linklist_is_empty(&d->pending) && !bgthread_stopping(&d->bg))
            bgthread_wait(&d->bg, -1);
        if (h2o_linklist_is_empty(&d->pending))
            break;
        dash_request_t *r = H2O_STRUCT_FROM_MEMBER(dash_request_t, super.link, d->pending.next);
        h2o_linklist_unlink(&r->super.link);
        int stopping = bgthread_stopping(&d->bg);
        bgthread_unlock(&d->bg);
        if (stopping)
            error_answer(r, 503, "patchbay is stopping");
        else
            run_op(d, r);
        h2o_multithread_send_message(r->reply_to, &r->super);
        bgthread_lock(&d->bg);
    }
    bgthread_unlock(&d->bg);
    return NULL;
}

dashboard_t *dashboard_new(const config_t *cfg, const redisconn_url_t *url, char *err, size_t err_len)
{
    dashboard_t *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->url = url;
    d->open = strcmp(cfg->dashboard.auth, "none") == 0;
    if (!d->open && cfg->server.dashboard_token != NULL) {
        snprintf(d->token, sizeof(d->token), "%s", cfg->server.dashboard_token);
    } else if (!d->open) {
        /* closed by default, wherever patchbay listens: behind a reverse proxy
         * every visitor comes from loopback */
        char fresh[SECRET_TOKEN_BYTES + 1];
        if (secret_random_hex(fresh, sizeof(fresh), SECRET_TOKEN_BYTES / 2) != 0 ||
            secret_file_ensure(cfg->data_dir, DASHBOARD_TOKEN_FILE, fresh, d->token, sizeof(d->token),
                               &d->token_created) != 0) {
            snprintf(d->token_problem, sizeof(d->token_problem), "cannot keep a token in %s/%s: %s", cfg->data_dir,
                     DASHBOARD_TOKEN_FILE, strerror(errno));
            d->token[0] = '\0';
        }
        OPENSSL_cleanse(fresh, sizeof(fresh));
    }
    h2o_linklist_init_anchor(&d->pending);
    if (bgthread_start(&d->bg, dash_main, d) != 0) {
        snprintf(err, err_len, "cannot start the dashboard thread");
        free(d);
        return NULL;
    }
    return d;
}

void dashboard_announce(dashboard_t *d, const char *base_url)
{
    if (d->open) {
        log_warn(NULL, NULL, "the jobs dashboard and its API are open to anyone who reaches %s/jobs: "
                 "dashboard.auth is none", base_url);
    } else if (d->token[0] == '\0') {
        log_error(NULL, NULL, "the jobs dashboard refuses everyone: %s", d->token_problem);
    } else if (d->token_created) {
        /* the one time the token is printed: the operator needs it, and it
         * stays in the file for the next time */
        log_info(NULL, NULL, "jobs dashboard: %s/jobs?token=%s (the token is kept in %s/%s; this is the only "
                 "time it is printed)", base_url, d->token, d->cfg->data_dir, DASHBOARD_TOKEN_FILE);
        d->token_created = 0;
    } else {
        log_info(NULL, NULL, "jobs dashboard: %s/jobs (its token is %s)", base_url,
                 d->cfg->server.dashboard_token != NULL ? "DASHBOARD_TOKEN" : "in the data dir's " DASHBOARD_TOKEN_FILE);
    }
}

void dashboard_free(dashboard_t *d)
{
    if (d == NULL)
        return;
    bgthread_stop(&d->bg);
    if (d->redis != NULL)
        redisFree(d->redis);
    OPENSSL_cleanse(d->token, sizeof(d->token));
    free(d);
}

/* ---- the loop side ---- */

static void request_release(dash_request_t *r)
{
    if (--r->refs > 0)
        return;
    free(r->body);
    free(r);
}

static void on_guard_dispose(void *arg)
{
    dash_guard_t *g = arg;
    g->r->req = NULL;
    request_release(g->r);
}

static void on_answer(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *msg = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&msg->link);
        dash_request_t *r = (dash_request_t *)msg;
        dashboard_loop_t *l = H2O_STRUCT_FROM_MEMBER(dashboard_loop_t, receiver, receiver);
        atomic_fetch_sub_explicit(l->inflight, 1, memory_order_relaxed);
        if (r->req != NULL) {
            if (r->body != NULL)
                send_body(r->req, r->http_status, "application/json", r->body, r->body_len);
            else
                send_error(r->req, 500, "out of memory");
        }
        request_release(r);
    }
}

void dashboard_loop_init(dashboard_loop_t *l, dashboard_t *d, h2o_multithread_queue_t *queue, _Atomic int64_t *inflight)
{
    l->dashboard = d;
    l->inflight = inflight;
    h2o_multithread_register_receiver(queue, &l->receiver, on_answer);
}

void dashboard_loop_dispose(dashboard_loop_t *l)
{
    h2o_multithread_unregister_receiver(l->receiver.queue, &l->receiver);
}

static void submit(dashboard_loop_t *l, h2o_req_t *req, dash_op_t op, const char *id)
{
    dash_request_t *r = calloc(1, sizeof(*r));
    dash_guard_t *g = r ? h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_guard_dispose) : NULL;
    if (g == NULL) {
        free(r);
        send_error(req, 503, "out of memory");
        return;
    }
    g->r = r;
    r->refs = 2;
    r->req = req;
    r->reply_to = &l->receiver;
    r->op = op;
    r->limit = DASHBOARD_LIST_MAX;
    if (id != NULL)
        snprintf(r->id, sizeof(r->id), "%s", id);
    h2o_iovec_t v = httpq_value(req, "status");
    if (v.base != NULL && v.len < sizeof(r->status)) {
        memcpy(r->status, v.base, v.len);
        if (job_status_parse(r->status) < 0) {
            r->refs = 1; /* the guard's; it frees r with the request */
            send_error(req, 400, "unknown status");
            return;
        }
    }
    v = httpq_value(req, "after");
    /* stream ids: digits and one dash */
    if (v.base != NULL && v.len < sizeof(r->after) && v.len == strspn(v.base, "0123456789-") && v.len > 0)
        memcpy(r->after, v.base, v.len);
    v = httpq_value(req, "limit");
    if (v.base != NULL && v.len > 0 && v.len < 6 && v.len == strspn(v.base, "0123456789")) {
        char n[8];
        memcpy(n, v.base, v.len);
        n[v.len] = '\0';
        size_t lim = (size_t)atol(n);
        r->limit = lim >= 1 && lim <= DASHBOARD_LIST_MAX ? lim : DASHBOARD_LIST_MAX;
    }
    dashboard_t *d = l->dashboard;
    atomic_fetch_add_explicit(l->inflight, 1, memory_order_relaxed);
    bgthread_lock(&d->bg);
    h2o_linklist_insert(&d->pending, &r->super.link);
    bgthread_wake(&d->bg);
    bgthread_unlock(&d->bg);
}

/* "/prefix<digits>suffix": the digits (<= 20) into id. */
static int match_id(h2o_iovec_t path, const char *prefix, const char *suffix, char *id, size_t id_len)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (path.len <= pl + sl || memcmp(path.base, prefix, pl) != 0 || memcmp(path.base + path.len - sl, suffix, sl) != 0)
        return 0;
    size_t n = path.len - pl - sl;
    if (n == 0 || n >= id_len || n > 20)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (path.base[pl + i] < '0' || path.base[pl + i] > '9')
            return 0;
    memcpy(id, path.base + pl, n);
    id[n] = '\0';
    return 1;
}

static int is(h2o_iovec_t path, const char *s)
{
    return h2o_memis(path.base, path.len, s, strlen(s));
}

int dashboard_handle(dashboard_loop_t *l, h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;
    char id[24];
    int get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
              h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    int post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));

    /* the static files are public: they hold no data */
    if (is(path, "/assets/dashboard.js")) {
        send_body(req, 200, "text/javascript; charset=utf-8", dashboard_js, dashboard_js_len);
        return 1;
    }
    if (is(path, "/favicon.ico")) { /* browsers ask; there is none */
        send_body(req, 204, "image/x-icon", "", 0);
        return 1;
    }
    if (is(path, "/assets/dashboard.css")) {
        send_body(req, 200, "text/css; charset=utf-8", dashboard_css, dashboard_css_len);
        return 1;
    }
    int page = is(path, "/jobs") || match_id(path, "/jobs/", "", id, sizeof(id));
    int api = (path.len >= 9 && memcmp(path.base, "/api/jobs", 9) == 0) || is(path, "/api/github");
    if (!page && !api)
        return 0;

    switch (check_access(l->dashboard, req, page)) {
    case ACCESS_DISABLED:
        send_error(req, 503, "the dashboard has no token to check: see patchbay's log");
        return 1;
    case ACCESS_DENIED:
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer"));
        send_error(req, 401, "a valid dashboard token is needed: open the link patchbay printed at its first "
                             "start, or /jobs?token=<the token in its data dir's " DASHBOARD_TOKEN_FILE
                             " or DASHBOARD_TOKEN>");
        return 1;
    case ACCESS_SET_COOKIE: {
        /* swap the token in the URL for a cookie, and drop it from the address bar */
        const char *token = l->dashboard->token;
        char *cookie = h2o_mem_alloc_pool(&req->pool, strlen(token) + 128);
        int n = sprintf(cookie, "%s=%s; Path=/; HttpOnly; SameSite=Strict", DASHBOARD_COOKIE, token);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, cookie, (size_t)n);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, path.base, path.len);
        send_body(req, 303, "text/plain; charset=utf-8", "", 0);
        return 1;
    }
    case ACCESS_OK: break;
    }

    if (page) {
        if (!get) {
            send_error(req, 405, "pages are read with GET");
            return 1;
        }
        send_body(req, 200, "text/html; charset=utf-8", dashboard_index_html, dashboard_index_html_len);
        return 1;
    }
    if (get && is(path, "/api/jobs"))
        submit(l, req, OP_LIST, NULL);
    else if (get && is(path, "/api/github"))
        submit(l, req, OP_GITHUB, NULL);
    else if (get && match_id(path, "/api/jobs/", "/log", id, sizeof(id)))
        submit(l, req, OP_LOG, id);
    else if (get && match_id(path, "/api/jobs/", "", id, sizeof(id)))
        submit(l, req, OP_SHOW, id);
    else if (post && (match_id(path, "/api/jobs/", "/cancel", id, sizeof(id)) ||
                      match_id(path, "/api/jobs/", "/retry", id, sizeof(id)))) {
        /* a cross-site form cannot set a custom header; a fetch from another
         * origin would need CORS, which patchbay never grants */
        if (h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-patchbay-action"), -1) < 0) {
            send_error(req, 403, "actions need the X-Patchbay-Action header");
            return 1;
        }
        int cancel = path.base[path.len - 1] == 'l';
        submit(l, req, cancel ? OP_CANCEL : OP_RETRY, id);
    } else
        send_error(req, 404, "no such dashboard path");
    return 1;
}
