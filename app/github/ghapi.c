/*
 * ghapi — see ghapi.h. This file: the App and client objects, the retry
 * policy, the budget, ETags and the request loop. The typed calls are in
 * ghapi_calls.c.
 */
#include "ghapi.h"
#include "ghbudget.h"
#include "ghhttp.h"
#include "ghjwt.h"
#include "ghshare.h"
#include "app/common/appcreds.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/redisconn.h"
#include "app/common/strbuf.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RATE_SLOTS 64
#define JWT_REFRESH_S 60 /* re-sign a minute before the JWT expires */

/* What the x-ratelimit-* headers last said about one budget (an installation,
 * or the App itself as installation 0). */
typedef struct {
    int64_t installation;
    int64_t limit, remaining, reset_s; /* -1: unknown */
    int64_t seen_ms;
} rate_t;

struct ghapi_app_s {
    char *api_url; /* without a trailing '/' */
    size_t api_url_len;
    char *app_id;
    char *user_agent;
    int have_redis;
    redisconn_url_t redis;
    EVP_PKEY *key;
    int connect_timeout_ms, timeout_ms, max_attempts;
    int64_t max_wait_ms;
    ghapi_clock_t clock;
    ghshare_local_t *local;
    ghbudget_local_t *budget_local;
    ghbudget_limits_t limits;
    void (*on_rate_limited)(void *ctx, int64_t retry_after_ms);
    void *on_rate_limited_ctx;

    pthread_mutex_t mu; /* guards what follows */
    char *jwt;
    int64_t jwt_exp_s;
    rate_t rates[RATE_SLOTS];
};

typedef struct {
    char *key;
    char *etag;
    char *body;
    size_t len;
    uint64_t used;
} etag_entry_t;

struct ghapi_s {
    ghapi_app_t *app;
    ghhttp_t *http;
    ghshare_t *share;
    ghbudget_t *budget;
    etag_entry_t etags[GHAPI_ETAG_SLOTS];
    uint64_t tick;
    char err[GHAPI_ERR_BYTES];
    int status;
    int64_t retry_after_ms;
    char *delivery, *job;
    ghapi_stats_t stats;
    uint64_t rng;
};

/* ---------------------------------------------------------------------------
 * Clock
 * ------------------------------------------------------------------------- */

static int64_t default_now_ms(void *ctx)
{
    (void)ctx;
    return clock_wall_ms();
}

static int default_sleep_ms(void *ctx, int64_t ms)
{
    (void)ctx;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

static int64_t now_ms(const ghapi_app_t *app)
{
    return app->clock.now_ms(app->clock.ctx);
}

static int64_t share_now(void *ctx)
{
    return now_ms(ctx);
}

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */

const char *ghapi_err_name(int err)
{
    switch (err) {
    case GHAPI_OK:
        return "ok";
    case GHAPI_ERR_NOT_FOUND:
        return "not found";
    case GHAPI_ERR_UNAUTHORIZED:
        return "unauthorized";
    case GHAPI_ERR_FORBIDDEN:
        return "forbidden";
    case GHAPI_ERR_VALIDATION:
        return "validation failed";
    case GHAPI_ERR_RATE_LIMITED:
        return "rate limited";
    case GHAPI_ERR_RETRYABLE:
        return "retryable";
    case GHAPI_ERR_PERMANENT:
        return "permanent";
    case GHAPI_ERR_DEFERRED:
        return "deferred";
    }
    return "unknown";
}

static int fail(ghapi_t *gh, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(ghapi_t *gh, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gh->err, sizeof(gh->err), fmt, ap);
    va_end(ap);
    return err;
}

const char *ghapi_error(const ghapi_t *gh)
{
    return gh->err;
}

int ghapi_status(const ghapi_t *gh)
{
    return gh->status;
}

int64_t ghapi_retry_after_ms(const ghapi_t *gh)
{
    return gh->retry_after_ms;
}

void ghapi_stats(const ghapi_t *gh, ghapi_stats_t *out)
{
    *out = gh->stats;
}

void ghapi_set_log_ids(ghapi_t *gh, const char *delivery, const char *job)
{
    free(gh->delivery);
    free(gh->job);
    gh->delivery = delivery ? strdup(delivery) : NULL;
    gh->job = job ? strdup(job) : NULL;
}

/* "422 Validation Failed: A pull request already exists for o:b." — GitHub's
 * message and, for validation failures, each error's own words. */
static void describe_answer(ghapi_t *gh, long status, const strbuf_t *body)
{
    strbuf_t b = STRBUF_INIT;
    json_t *doc = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(doc, "message"));
    strbuf_appendf(&b, "%ld", status);
    if (msg != NULL) {
        strbuf_append(&b, " ");
        strbuf_append_printable(&b, msg, strlen(msg));
    } else if (body->len > 0) {
        strbuf_append(&b, " ");
        strbuf_append_printable(&b, body->data, body->len < 200 ? body->len : 200);
    }
    json_t *errors = json_object_get(doc, "errors");
    size_t i;
    json_t *e;
    int first = 1;
    json_array_foreach(errors, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "message"));
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *code = json_string_value(json_object_get(e, "code"));
        if (json_is_string(e))
            m = json_string_value(e);
        strbuf_append(&b, first ? ": " : "; ");
        first = 0;
        if (m != NULL)
            strbuf_append_printable(&b, m, strlen(m));
        else
            strbuf_appendf(&b, "%s %s", field ? field : "?", code ? code : "invalid");
    }
    json_decref(doc);
    snprintf(gh->err, sizeof(gh->err), "%s", b.data ? b.data : "");
    strbuf_free(&b);
}

/* ---------------------------------------------------------------------------
 * The retry policy
 * ------------------------------------------------------------------------- */

/* What each status means when it is final; rate limits (403/429 with their
 * headers) are told apart before this table is read. */
static const struct {
    long lo, hi;
    ghapi_err_t err;
    int backoff; /* retried with jittered backoff */
} status_table[] = {
    {200, 299, GHAPI_OK, 0},
    {304, 304, GHAPI_OK, 0},
    {401, 401, GHAPI_ERR_UNAUTHORIZED, 0},
    {403, 403, GHAPI_ERR_FORBIDDEN, 0},
    {404, 404, GHAPI_ERR_NOT_FOUND, 0},
    {410, 410, GHAPI_ERR_NOT_FOUND, 0},
    {422, 422, GHAPI_ERR_VALIDATION, 0},
    {500, 599, GHAPI_ERR_RETRYABLE, 1},
};

static int64_t backoff_ms(int failures, uint64_t random)
{
    int64_t d = GHAPI_BACKOFF_BASE_MS;
    for (int i = 0; i < failures && d < GHAPI_BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > GHAPI_BACKOFF_CAP_MS)
        d = GHAPI_BACKOFF_CAP_MS;
    /* "equal jitter": half fixed, half random, so workers that failed together
     * do not come back together, yet each waits at least d/2 */
    return d / 2 + (int64_t)(random % (uint64_t)(d / 2 + 1));
}

void ghapi_decide(ghapi_decision_t *out, const ghapi_answer_t *a, int secondary_hits, int failures, int64_t now,
                  uint64_t random)
{
    out->kind = GHAPI_WAIT_NONE;
    out->wait_ms = 0;
    if (a->transport == 1) { /* GHHTTP_TRANSPORT_RETRYABLE */
        out->err = GHAPI_ERR_RETRYABLE;
        out->kind = GHAPI_WAIT_BACKOFF;
        out->wait_ms = backoff_ms(failures, random);
        return;
    }
    if (a->transport != 0) {
        out->err = GHAPI_ERR_PERMANENT;
        return;
    }
    long s = a->status;
    /* primary: the hourly budget is spent; it comes back at x-ratelimit-reset */
    if ((s == 403 || s == 429) && a->rl_remaining == 0) {
        out->err = GHAPI_ERR_RATE_LIMITED;
        out->kind = GHAPI_WAIT_PRIMARY;
        out->wait_ms = a->rl_reset_s >= 0 ? a->rl_reset_s * 1000 - now : GHAPI_SECONDARY_WAIT_MS;
        if (out->wait_ms < 1000)
            out->wait_ms = 1000; /* a reset already past: our clock is behind GitHub's */
        return;
    }
    /* secondary: too much at once; retry-after when GitHub says, else at
     * least a minute, doubling while it persists */
    if (s == 429 || (s == 403 && (a->secondary_message || a->retry_after_s >= 0))) {
        out->err = GHAPI_ERR_RATE_LIMITED;
        out->kind = GHAPI_WAIT_SECONDARY;
        if (a->retry_after_s >= 0) {
            out->wait_ms = a->retry_after_s * 1000;
            if (out->wait_ms < 1000)
                out->wait_ms = 1000;
        } else {
            int64_t w = GHAPI_SECONDARY_WAIT_MS;
            for (int i = 0; i < secondary_hits && w < GHAPI_SECONDARY_CAP_MS; i++)
                w *= 2;
            out->wait_ms = w > GHAPI_SECONDARY_CAP_MS ? GHAPI_SECONDARY_CAP_MS : w;
        }
        return;
    }
    out->err = GHAPI_ERR_PERMANENT;
    for (size_t i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++) {
        if (s < status_table[i].lo || s > status_table[i].hi)
            continue;
        out->err = status_table[i].err;
        if (status_table[i].backoff) {
            out->kind = GHAPI_WAIT_BACKOFF;
            out->wait_ms = a->retry_after_s >= 0 ? a->retry_after_s * 1000 : backoff_ms(failures, random);
        }
        break;
    }
}

/* ---------------------------------------------------------------------------
 * The App
 * ------------------------------------------------------------------------- */

void ghapi_options_from_config(ghapi_options_t *o, const config_t *cfg, const char *redis_url)
{
    ghapi_options_t d = GHAPI_OPTIONS_INIT;
    *o = d;
    o->api_url = cfg->github.api_url;
    o->app_id = cfg->github.app_id;
    o->private_key = cfg->github.private_key;
    o->private_key_path = cfg->github.private_key_path;
    /* registered by the set-up page while this process ran: take it now */
    appcreds_t c;
    if (o->app_id == NULL && appcreds_load(cfg->data_dir, &c) == 0) {
        snprintf(o->saved_app_id, sizeof(o->saved_app_id), "%s", c.app_id);
        snprintf(o->saved_key_path, sizeof(o->saved_key_path), "%s", c.key_path);
        OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
        o->app_id = o->saved_app_id;
        o->private_key = NULL;
        o->private_key_path = o->saved_key_path;
    }
    o->redis_url = redis_url;
    o->timeout_ms = cfg->github.timeout_ms;
    o->max_wait_ms = (int64_t)cfg->github.max_wait_s * 1000;
    ghbudget_limits_from_config(&o->limits, cfg);
    o->limits_set = 1;
}

int ghapi_app_new(ghapi_app_t **out, const ghapi_options_t *o, char *err, size_t err_len)
{
    ghapi_app_t *app = NULL;
    int rc = GHAPI_ERR_PERMANENT;

    *out = NULL;
    if (o->api_url == NULL || (strncmp(o->api_url, "http://", 7) != 0 && strncmp(o->api_url, "https://", 8) != 0)) {
        snprintf(err, err_len, "GITHUB_API_URL must be an http:// or https:// URL");
        return rc;
    }
    if (o->app_id == NULL && !o->anonymous) {
        snprintf(err, err_len, "APP_ID is not set");
        return rc;
    }
    if ((app = calloc(1, sizeof(*app))) == NULL)
        goto oom;
    pthread_mutex_init(&app->mu, NULL);
    app->api_url = strdup(o->api_url);
    app->app_id = strdup(o->app_id ? o->app_id : "");
    app->user_agent = strdup(o->user_agent ? o->user_agent : "patchbay");
    app->local = ghshare_local_new();
    app->budget_local = ghbudget_local_new();
    if (app->api_url == NULL || app->app_id == NULL || app->user_agent == NULL || app->local == NULL ||
        app->budget_local == NULL)
        goto oom;
    app->on_rate_limited = o->on_rate_limited;
    app->on_rate_limited_ctx = o->on_rate_limited_ctx;
    if (o->limits_set)
        app->limits = o->limits;
    else
        ghbudget_limits_default(&app->limits);
    app->api_url_len = strlen(app->api_url);
    while (app->api_url_len > 0 && app->api_url[app->api_url_len - 1] == '/')
        app->api_url[--app->api_url_len] = '\0';
    if (!o->anonymous && ghjwt_key_load(&app->key, o->private_key, o->private_key_path, err, err_len) != GHJWT_OK)
        goto done;
    if (o->redis_url != NULL) {
        char rerr[REDISCONN_ERR_BYTES];
        if (redisconn_url_parse(&app->redis, o->redis_url, rerr, sizeof(rerr)) != 0) {
            snprintf(err, err_len, "%s", rerr);
            goto done;
        }
        app->have_redis = 1;
    }
    app->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    app->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    app->max_attempts = o->max_attempts > 0 ? o->max_attempts : GHAPI_MAX_ATTEMPTS;
    app->max_wait_ms = o->max_wait_ms >= 0 ? o->max_wait_ms : 0;
    app->clock.now_ms = o->clock.now_ms ? o->clock.now_ms : default_now_ms;
    app->clock.sleep_ms = o->clock.sleep_ms ? o->clock.sleep_ms : default_sleep_ms;
    app->clock.ctx = o->clock.ctx;
    for (size_t i = 0; i < RATE_SLOTS; i++)
        app->rates[i].installation = -1;
    *out = app;
    return GHAPI_OK;
oom:
    snprintf(err, err_len, "out of memory");
done:
    ghapi_app_free(app);
    return rc;
}

void ghapi_app_free(ghapi_app_t *app)
{
    if (app == NULL)
        return;
    free(app->api_url);
    free(app->app_id);
    free(app->user_agent);
    if (app->have_redis)
        redisconn_url_free(&app->redis);
    EVP_PKEY_free(app->key);
    ghshare_local_free(app->local);
    ghbudget_local_free(app->budget_local);
    if (app->jwt != NULL) {
        OPENSSL_cleanse(app->jwt, strlen(app->jwt));
        free(app->jwt);
    }
    pthread_mutex_destroy(&app->mu);
    free(app);
}

static int app_jwt(char **out, ghapi_t *gh)
{
    ghapi_app_t *app = gh->app;
    int64_t now_s = now_ms(app) / 1000;
    int rc = GHAPI_OK;
    *out = NULL;
    if (app->key == NULL)
        return fail(gh, GHAPI_ERR_PERMANENT, "no App credentials (an anonymous client)");
    pthread_mutex_lock(&app->mu);
    if (app->jwt == NULL || now_s >= app->jwt_exp_s - JWT_REFRESH_S) {
        char *jwt = NULL;
        int64_t exp = 0;
        char err[256];
        if (ghjwt_sign(&jwt, &exp, app->key, app->app_id, now_s, err, sizeof(err)) != GHJWT_OK) {
            rc = fail(gh, GHAPI_ERR_PERMANENT, "%s", err);
        } else {
            if (app->jwt != NULL) {
                OPENSSL_cleanse(app->jwt, strlen(app->jwt));
                free(app->jwt);
            }
            app->jwt = jwt;
            app->jwt_exp_s = exp;
        }
    }
    if (rc == GHAPI_OK && (*out = strdup(app->jwt)) == NULL)
        rc = fail(gh, GHAPI_ERR_PERMANENT, "out of memory");
    pthread_mutex_unlock(&app->mu);
    return rc;
}

/* A 401 to this JWT: sign a new one next time (the clock may have moved). */
static void app_jwt_drop(ghapi_app_t *app, const char *jwt)
{
    pthread_mutex_lock(&app->mu);
    if (app->jwt != NULL && strcmp(app->jwt, jwt) == 0) {
        OPENSSL_cleanse(app->jwt, strlen(app->jwt));
        free(app->jwt);
        app->jwt = NULL;
    }
    pthread_mutex_unlock(&app->mu);
}

int ghapi_app_jwt(char **out, ghapi_t *gh)
{
    gh->err[0] = '\0';
    return app_jwt(out, gh);
}

/* ---------------------------------------------------------------------------
 * What x-ratelimit-* said, per installation
 * ------------------------------------------------------------------------- */

static void rate_note(ghapi_app_t *app, int64_t installation, const ghhttp_response_t *r, int64_t now)
{
    if (r->rl_remaining < 0)
        return;
    pthread_mutex_lock(&app->mu);
    rate_t *slot = NULL, *oldest = &app->rates[0];
    for (size_t i = 0; i < RATE_SLOTS && slot == NULL; i++) {
        if (app->rates[i].installation == installation)
            slot = &app->rates[i];
        else if (app->rates[i].seen_ms < oldest->seen_ms)
            oldest = &app->rates[i];
    }
    if (slot == NULL)
        slot = oldest;
    slot->installation = installation;
    slot->limit = r->rl_limit;
    slot->remaining = r->rl_remaining;
    slot->reset_s = r->rl_reset_s;
    slot->seen_ms = now;
    pthread_mutex_unlock(&app->mu);
}

static rate_t rate_get(ghapi_app_t *app, int64_t installation)
{
    rate_t out = {installation, -1, -1, -1, 0};
    pthread_mutex_lock(&app->mu);
    for (size_t i = 0; i < RATE_SLOTS; i++)
        if (app->rates[i].installation == installation)
            out = app->rates[i];
    pthread_mutex_unlock(&app->mu);
    return out;
}

/* ---------------------------------------------------------------------------
 * The client
 * ------------------------------------------------------------------------- */

ghapi_t *ghapi_new(ghapi_app_t *app)
{
    ghapi_t *gh = calloc(1, sizeof(*gh));
    if (gh == NULL)
        return NULL;
    gh->app = app;
    gh->http = ghhttp_new(app->user_agent, app->connect_timeout_ms, app->timeout_ms);
    gh->share = ghshare_new(app->local, app->have_redis ? &app->redis : NULL, share_now, app);
    gh->budget = gh->share ? ghbudget_new(gh->share, app->budget_local, &app->limits) : NULL;
    if (gh->http == NULL || gh->share == NULL || gh->budget == NULL) {
        ghapi_free(gh);
        return NULL;
    }
    if (RAND_bytes((unsigned char *)&gh->rng, sizeof(gh->rng)) != 1 || gh->rng == 0)
        gh->rng = (uint64_t)clock_mono_us() | 1;
    return gh;
}

static void etag_clear(etag_entry_t *e)
{
    free(e->key);
    free(e->etag);
    free(e->body);
    memset(e, 0, sizeof(*e));
}

void ghapi_free(ghapi_t *gh)
{
    if (gh == NULL)
        return;
    ghhttp_free(gh->http);
    ghbudget_free(gh->budget);
    ghshare_free(gh->share);
    for (size_t i = 0; i < GHAPI_ETAG_SLOTS; i++)
        etag_clear(&gh->etags[i]);
    free(gh->delivery);
    free(gh->job);
    free(gh);
}

int ghapi_fact_get(ghapi_t *gh, const char *name, char *out, size_t out_len)
{
    return ghshare_fact_get(gh->share, name, out, out_len);
}

void ghapi_fact_set(ghapi_t *gh, const char *name, const char *value)
{
    ghshare_fact_set(gh->share, name, value, GHAPI_FACT_TTL_S);
}

static uint64_t next_random(ghapi_t *gh)
{
    /* xorshift64*: jitter needs spread, not secrecy */
    gh->rng ^= gh->rng >> 12;
    gh->rng ^= gh->rng << 25;
    gh->rng ^= gh->rng >> 27;
    return gh->rng * 2685821657736338717ULL;
}

void ghapi_response_free(ghapi_response_t *r)
{
    if (r == NULL)
        return;
    json_decref(r->json);
    free(r->raw);
    free(r->next);
    memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------------------
 * ETags: a few recent GET answers per client, revalidated with If-None-Match
 * ------------------------------------------------------------------------- */

static etag_entry_t *etag_find(ghapi_t *gh, const char *key)
{
    for (size_t i = 0; i < GHAPI_ETAG_SLOTS; i++)
        if (gh->etags[i].key != NULL && strcmp(gh->etags[i].key, key) == 0)
            return &gh->etags[i];
    return NULL;
}

static void etag_store(ghapi_t *gh, const char *key, const char *etag, const strbuf_t *body)
{
    if (etag == NULL || body->len > GHAPI_ETAG_MAX_BYTES)
        return;
    etag_entry_t *e = etag_find(gh, key);
    if (e == NULL) {
        e = &gh->etags[0];
        for (size_t i = 0; i < GHAPI_ETAG_SLOTS; i++) {
            if (gh->etags[i].key == NULL) {
                e = &gh->etags[i];
                break;
            }
            if (gh->etags[i].used < e->used)
                e = &gh->etags[i];
        }
    }
    etag_clear(e);
    e->key = strdup(key);
    e->etag = strdup(etag);
    e->body = malloc(body->len + 1);
    if (e->key == NULL || e->etag == NULL || e->body == NULL) {
        etag_clear(e);
        return;
    }
    memcpy(e->body, body->data ? body->data : "", body->len);
    e->body[body->len] = '\0';
    e->len = body->len;
    e->used = ++gh->tick;
}

/* ---------------------------------------------------------------------------
 * Installation tokens
 * ------------------------------------------------------------------------- */

typedef struct {
    ghapi_t *gh;
    int64_t installation;
    const char *repo;
} mint_ctx_t;

int ghapi_time_parse(int64_t *out_s, const char *iso)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (iso == NULL)
        return -1;
    const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.') /* fractions of a second */
        end += 1 + strspn(end + 1, "0123456789");
    int64_t t = (int64_t)timegm(&tm);
    if (*end == 'Z' && end[1] == '\0') {
        *out_s = t;
        return 0;
    }
    int sh, sm;
    if ((*end == '+' || *end == '-') && sscanf(end + 1, "%2d:%2d", &sh, &sm) == 2) {
        int64_t off = sh * 3600 + sm * 60;
        *out_s = *end == '+' ? t - off : t + off;
        return 0;
    }
    return -1;
}

static const char *repo_name(const char *repo)
{
    const char *slash = repo ? strchr(repo, '/') : NULL;
    return slash ? slash + 1 : NULL;
}

/* Our permissions, lowered to what the installation was granted. */
static json_t *permissions_within(json_t *wanted, json_t *granted)
{
    static const char *const levels[] = {"none", "read", "write", "admin"};
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(wanted, k, v)
    {
        const char *have = json_string_value(json_object_get(granted, k));
        int w = 0, h = 0;
        for (int i = 0; i < 4; i++) {
            if (strcmp(json_string_value(v), levels[i]) == 0)
                w = i;
            if (have && strcmp(have, levels[i]) == 0)
                h = i;
        }
        int lvl = w < h ? w : h;
        if (lvl > 0)
            json_object_set_new(out, k, json_string(levels[lvl]));
    }
    return out;
}

static int mint(void *vctx, char **token, int64_t *exp, char *err, size_t err_len)
{
    mint_ctx_t *m = vctx;
    ghapi_t *gh = m->gh;
    char path[96];
    ghapi_response_t resp = {0};
    json_t *body = json_object();
    int rc;

    *token = NULL;
    snprintf(path, sizeof(path), "/app/installations/%" PRId64 "/access_tokens", m->installation);
    if (m->repo != NULL)
        json_object_set_new(body, "repositories", json_pack("[s]", repo_name(m->repo)));
    json_object_set_new(body, "permissions", json_loads(GHAPI_TOKEN_PERMISSIONS, 0, NULL));
    ghapi_call_t call = {.method = "POST", .path = path, .body = body, .auth = GHAPI_AUTH_APP, .flags = GHAPI_CALL_NO_ETAG};
    rc = ghapi_request(&resp, gh, &call);
    if (rc == GHAPI_ERR_VALIDATION && strstr(gh->err, "permissions") != NULL) {
        /* the installation was granted less than jobs would like (an owner may
         * approve only some of the App's permissions): ask for what it has */
        ghapi_response_t inst = {0};
        snprintf(path, sizeof(path), "/app/installations/%" PRId64, m->installation);
        ghapi_call_t get = {.method = "GET", .path = path, .auth = GHAPI_AUTH_APP};
        if (ghapi_request(&inst, gh, &get) == GHAPI_OK) {
            json_object_set_new(body, "permissions",
                                permissions_within(json_object_get(body, "permissions"),
                                                   json_object_get(inst.json, "permissions")));
            ghapi_response_free(&inst);
            snprintf(path, sizeof(path), "/app/installations/%" PRId64 "/access_tokens", m->installation);
            rc = ghapi_request(&resp, gh, &call);
        }
    }
    json_decref(body);
    /* a repository the installation does not cover is, to the job, a
     * repository that is not there: GitHub answers 422 where it means 404 */
    if (rc == GHAPI_ERR_VALIDATION && strstr(gh->err, "not accessible") != NULL)
        rc = GHAPI_ERR_NOT_FOUND;
    if (rc != GHAPI_OK) {
        snprintf(err, err_len, "cannot get a token for installation %" PRId64 ": %s", m->installation, gh->err);
        snprintf(gh->err, sizeof(gh->err), "%s", err);
        return rc;
    }
    const char *t = json_string_value(json_object_get(resp.json, "token"));
    const char *e = json_string_value(json_object_get(resp.json, "expires_at"));
    if (t == NULL || ghapi_time_parse(exp, e) != 0) {
        ghapi_response_free(&resp);
        snprintf(err, err_len, "GitHub's token answer for installation %" PRId64 " has no token or expires_at",
                 m->installation);
        snprintf(gh->err, sizeof(gh->err), "%s", err);
        return GHAPI_ERR_PERMANENT;
    }
    *token = strdup(t);
    gh->stats.mints++;
    log_info(gh->delivery, gh->job, "minted an installation token for installation %" PRId64 " (%s), expires %s",
             m->installation, m->repo ? m->repo : "all repositories", e);
    ghapi_response_free(&resp); /* json_decref does not wipe; the token lived only in this answer */
    if (*token == NULL) {
        snprintf(err, err_len, "out of memory");
        return GHAPI_ERR_PERMANENT;
    }
    return GHAPI_OK;
}

static int valid_repo(const char *repo)
{
    if (repo == NULL)
        return 1;
    const char *slash = strchr(repo, '/');
    return slash != NULL && slash != repo && slash[1] != '\0' && strchr(slash + 1, '/') == NULL &&
           strlen(repo) < 200 && strpbrk(repo, " :?#%\r\n") == NULL;
}

static int installation_token(char **out, int64_t *exp, ghapi_t *gh, int64_t installation, const char *repo)
{
    char err[GHAPI_ERR_BYTES];
    int minted = 0;
    *out = NULL;
    if (installation <= 0)
        return fail(gh, GHAPI_ERR_PERMANENT, "no installation id for an installation-token call");
    if (!valid_repo(repo))
        return fail(gh, GHAPI_ERR_PERMANENT, "not a repository name (owner/name)");
    mint_ctx_t m = {gh, installation, repo};
    int rc = ghshare_token_get(out, exp, &minted, gh->share, installation, repo, mint, &m, err, sizeof(err));
    if (rc != 0) {
        if (gh->err[0] == '\0')
            snprintf(gh->err, sizeof(gh->err), "%s", err);
        return rc < 0 ? rc : GHAPI_ERR_PERMANENT;
    }
    return GHAPI_OK;
}

int ghapi_installation_token(char **out, int64_t *expires_at_s, ghapi_t *gh, int64_t installation, const char *repo)
{
    gh->err[0] = '\0';
    int64_t exp = 0;
    int rc = installation_token(out, &exp, gh, installation, repo);
    if (rc == GHAPI_OK && expires_at_s != NULL)
        *expires_at_s = exp;
    return rc;
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---------------------------------------------------------------------------
 * The request loop
 * ------------------------------------------------------------------------- */

/* Waits ms, unless that is longer than we may: then the call ends with
 * give_up (and retry_after tells the caller how long GitHub asked for). */
static int wait_for(ghapi_t *gh, int64_t ms, int give_up, const char *why, const ghapi_call_t *call)
{
    ghapi_app_t *app = gh->app;
    if (ms > app->max_wait_ms) {
        gh->retry_after_ms = ms;
        return fail(gh, give_up, "%s: GitHub asks to wait %" PRId64 " s, longer than the %" PRId64 " s allowed (%s %s)",
                    why, (ms + 999) / 1000, app->max_wait_ms / 1000, call->method, call->path);
    }
    log_warn(gh->delivery, gh->job, "GitHub %s: waiting %" PRId64 " ms before %s %s", why, ms, call->method,
             call->path);
    gh->stats.waits++;
    gh->stats.waited_ms += ms;
    if (app->clock.sleep_ms(app->clock.ctx, ms) != 0)
        return fail(gh, GHAPI_ERR_RETRYABLE, "interrupted while waiting (%s)", why);
    return GHAPI_OK;
}

static int build_url(strbuf_t *url, ghapi_t *gh, const char *path)
{
    ghapi_app_t *app = gh->app;
    if (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0) {
        /* a Link from GitHub: only ever to GitHub, or the token would follow it elsewhere */
        char c = path[app->api_url_len];
        if (strncmp(path, app->api_url, app->api_url_len) != 0 || (c != '/' && c != '?' && c != '\0'))
            return fail(gh, GHAPI_ERR_PERMANENT, "refusing to follow a link outside GITHUB_API_URL");
        strbuf_append(url, path);
    } else if (path[0] == '/') {
        strbuf_append(url, app->api_url);
        strbuf_append(url, path);
    } else {
        return fail(gh, GHAPI_ERR_PERMANENT, "an API path must start with '/'");
    }
    for (const char *p = url->data; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return fail(gh, GHAPI_ERR_PERMANENT, "an API path must not contain spaces or control characters");
    return url->truncated ? fail(gh, GHAPI_ERR_PERMANENT, "out of memory") : GHAPI_OK;
}

static int is_content_call(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

/* Turns a 2xx (or a 304 with the cached answer) into *out. */
static int take_answer(ghapi_response_t *out, ghapi_t *gh, const ghapi_call_t *call, const char *data, size_t len)
{
    if (call->flags & GHAPI_CALL_RAW) {
        if ((out->raw = malloc(len + 1)) == NULL)
            return fail(gh, GHAPI_ERR_PERMANENT, "out of memory");
        memcpy(out->raw, data ? data : "", len);
        out->raw[len] = '\0';
        out->raw_len = len;
        return GHAPI_OK;
    }
    if (len == 0)
        return GHAPI_OK;
    json_error_t jerr;
    out->json = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (out->json == NULL)
        return fail(gh, GHAPI_ERR_PERMANENT, "GitHub's answer to %s %s is not JSON: %s", call->method, call->path,
                    jerr.text);
    return GHAPI_OK;
}

/* Words for a wait, in the log and in the error a job keeps. */
static const char *wait_words(ghbudget_why_t why)
{
    static const char *const words[] = {
        [GHBUDGET_WHY_NONE] = "budget",
        [GHBUDGET_WHY_PRIMARY] = "primary rate limit (until x-ratelimit-reset)",
        [GHBUDGET_WHY_SECONDARY] = "secondary rate limit",
        [GHBUDGET_WHY_CONTENT] = "content budget (github.content_limits)",
        [GHBUDGET_WHY_CONCURRENCY] = "calls in flight (github.max_inflight)",
    };
    return (size_t)why < sizeof(words) / sizeof(words[0]) ? words[why] : "budget";
}

/* What an answer means for everyone who calls for the same installation. */
static ghbudget_answer_t shared_meaning(const ghhttp_response_t *resp, const ghapi_decision_t *d)
{
    if (resp->transport == GHHTTP_TRANSPORT_OK && resp->status >= 200 && resp->status < 400)
        return GHBUDGET_ANSWER_OK;
    if (d->kind == GHAPI_WAIT_PRIMARY)
        return GHBUDGET_ANSWER_PRIMARY;
    if (d->kind == GHAPI_WAIT_SECONDARY)
        return GHBUDGET_ANSWER_SECONDARY;
    return GHBUDGET_ANSWER_OTHER;
}

int ghapi_request(ghapi_response_t *out, ghapi_t *gh, const ghapi_call_t *call)
{
    ghapi_app_t *app = gh->app;
    strbuf_t url = STRBUF_INIT, etag_key = STRBUF_INIT;
    ghhttp_response_t resp;
    ghbudget_ticket_t ticket;
    char *body = NULL, *cred = NULL, *authz = NULL;
    size_t body_len = 0;
    int attempts = 0, failures = 0, secondary = 0, reauthed = 0, holding = 0;
    int rc;

    assert(call != NULL && call->method != NULL && call->path != NULL);
    memset(out, 0, sizeof(*out));
    memset(&resp, 0, sizeof(resp));
    memset(&ticket, 0, sizeof(ticket));
    gh->err[0] = '\0';
    gh->status = 0;
    gh->retry_after_ms = 0;

    if ((rc = build_url(&url, gh, call->path)) != GHAPI_OK)
        goto done;
    if (call->body != NULL) {
        if ((body = json_dumps(call->body, JSON_COMPACT)) == NULL) {
            rc = fail(gh, GHAPI_ERR_PERMANENT, "cannot encode the request body");
            goto done;
        }
        body_len = strlen(body);
    }
    int content = is_content_call(call->method) && call->auth == GHAPI_AUTH_INSTALLATION;
    int low = (call->flags & GHAPI_CALL_LOW_PRIORITY) != 0;
    int64_t budget_of = call->auth == GHAPI_AUTH_INSTALLATION ? call->installation : 0;
    int use_etag = !is_content_call(call->method) && !(call->flags & GHAPI_CALL_NO_ETAG);
    if (use_etag)
        strbuf_appendf(&etag_key, "%d:%" PRId64 ":%s:%s:%s", (int)call->auth, call->installation,
                       call->repo ? call->repo : "", call->accept ? call->accept : "", url.data);

    for (;;) {
        /* 1. credentials (a mint is a call of its own, on the App's budget) */
        if (cred == NULL && call->auth != GHAPI_AUTH_NONE) {
            rc = call->auth == GHAPI_AUTH_APP ? app_jwt(&cred, gh)
                                              : installation_token(&cred, NULL, gh, call->installation, call->repo);
            if (rc != GHAPI_OK)
                goto done;
            wipe_free(authz);
            size_t n = strlen(cred) + 16;
            if ((authz = malloc(n)) == NULL) {
                rc = fail(gh, GHAPI_ERR_PERMANENT, "out of memory");
                goto done;
            }
            snprintf(authz, n, "%s %s", call->auth == GHAPI_AUTH_APP ? "Bearer" : "token", cred);
        }

        /* 2. GitHub's limits and ours, before spending any of them */
        if (call->auth != GHAPI_AUTH_NONE) {
            int64_t now = now_ms(app), wait = 0;
            rate_t rt = rate_get(app, budget_of);
            if (low && rt.remaining >= 0 && rt.remaining < GHAPI_LOW_PRIORITY_RESERVE && rt.reset_s * 1000 > now) {
                rc = fail(gh, GHAPI_ERR_DEFERRED, "low-priority %s %s deferred: %" PRId64 " calls left this hour",
                          call->method, call->path, rt.remaining);
                goto done;
            }
            ghbudget_why_t why;
            ghbudget_verdict_t v = ghbudget_admit(gh->budget, &ticket, &wait, &why, budget_of, content, low,
                                                  (int64_t)app->timeout_ms + GHAPI_LEASE_MARGIN_MS, now);
            if (v == GHBUDGET_DEFER) {
                rc = fail(gh, GHAPI_ERR_DEFERRED, "low-priority %s %s deferred: %s of installation %" PRId64,
                          call->method, call->path, wait_words(why), budget_of);
                goto done;
            }
            if (v == GHBUDGET_WAIT) {
                if ((rc = wait_for(gh, wait, GHAPI_ERR_RATE_LIMITED, wait_words(why), call)) != GHAPI_OK)
                    goto done;
                continue;
            }
            holding = 1;
        }

        /* 3. the exchange */
        etag_entry_t *cached = use_etag ? etag_find(gh, etag_key.data) : NULL;
        ghhttp_request_t req = {.method = call->method,
                                .url = url.data,
                                .authorization = authz,
                                .accept = call->accept,
                                .body = body,
                                .body_len = body_len,
                                .if_none_match = cached ? cached->etag : NULL};
        attempts++;
        ghhttp_perform(gh->http, &req, &resp);
        gh->stats.requests++;
        gh->status = (int)resp.status;
        int64_t now = now_ms(app);
        if (call->auth != GHAPI_AUTH_NONE)
            rate_note(app, budget_of, &resp, now);
        log_debug(gh->delivery, gh->job, "GitHub %s %s -> %ld (%" PRId64 " ms)", call->method, call->path, resp.status,
                  resp.elapsed_us / 1000);

        /* 4. what the answer means, for this call and for everyone's */
        ghapi_answer_t a = {.status = resp.status,
                            .transport = resp.transport,
                            .rl_remaining = resp.rl_remaining,
                            .rl_reset_s = resp.rl_reset_s,
                            .retry_after_s = resp.retry_after_s,
                            .secondary_message = resp.body.data != NULL &&
                                                 strcasestr(resp.body.data, "secondary rate limit") != NULL};
        ghapi_decision_t d;
        ghapi_decide(&d, &a, secondary, failures, now, next_random(gh));
        int64_t shared_wait = 0;
        ghbudget_why_t shared_why = GHBUDGET_WHY_NONE;
        if (holding || call->auth != GHAPI_AUTH_NONE) {
            shared_wait = ghbudget_done(gh->budget, &ticket, shared_meaning(&resp, &d), resp.rl_reset_s,
                                        resp.retry_after_s, resp.rl_remaining, now, &shared_why);
            holding = 0;
        }

        if (resp.transport == GHHTTP_TRANSPORT_OK && resp.status >= 200 && resp.status < 300) {
            if (use_etag)
                etag_store(gh, etag_key.data, resp.etag, &resp.body);
            rc = take_answer(out, gh, call, resp.body.data, resp.body.len);
            out->status = (int)resp.status;
            out->next = resp.link_next;
            resp.link_next = NULL;
            goto done;
        }
        if (resp.transport == GHHTTP_TRANSPORT_OK && resp.status == 304 && cached != NULL) {
            gh->stats.not_modified++;
            cached->used = ++gh->tick;
            rc = take_answer(out, gh, call, cached->body, cached->len);
            out->status = 200;
            out->next = resp.link_next;
            resp.link_next = NULL;
            goto done;
        }
        if (resp.transport == GHHTTP_TRANSPORT_OK && resp.status == 401 && call->auth != GHAPI_AUTH_NONE && !reauthed) {
            /* revoked, expired early, or our clock moved: one fresh credential */
            reauthed = 1;
            if (call->auth == GHAPI_AUTH_APP)
                app_jwt_drop(app, cred);
            else
                ghshare_token_invalidate(gh->share, call->installation, call->repo, cred);
            log_info(gh->delivery, gh->job, "GitHub answered 401 to %s %s; retrying once with a fresh %s", call->method,
                     call->path, call->auth == GHAPI_AUTH_APP ? "JWT" : "installation token");
            wipe_free(cred);
            cred = NULL;
            continue;
        }
        if (resp.transport != GHHTTP_TRANSPORT_OK)
            fail(gh, d.err, "%s %s: %s", call->method, call->path, resp.error);
        else
            describe_answer(gh, resp.status, &resp.body);
        if (d.kind == GHAPI_WAIT_NONE) {
            rc = d.err;
            goto done;
        }
        if (d.kind == GHAPI_WAIT_SECONDARY)
            secondary++;
        if (d.kind == GHAPI_WAIT_BACKOFF)
            failures++;
        /* a rate limit: the wait is everyone's now (shared_wait); without
         * Redis or a shared answer, the one this answer asks for */
        int64_t wait = d.kind == GHAPI_WAIT_BACKOFF ? d.wait_ms : shared_wait > 0 ? shared_wait : d.wait_ms;
        if (attempts >= app->max_attempts) {
            if (d.err == GHAPI_ERR_RATE_LIMITED)
                gh->retry_after_ms = wait;
            char last[GHAPI_ERR_BYTES];
            snprintf(last, sizeof(last), "%s", gh->err);
            rc = fail(gh, d.err, "%s %s failed %d times; last: %s", call->method, call->path, attempts, last);
            goto done;
        }
        if (d.kind == GHAPI_WAIT_BACKOFF) {
            const char *why = resp.transport != GHHTTP_TRANSPORT_OK ? "connection failure" : "server error";
            if ((rc = wait_for(gh, wait, d.err, why, call)) != GHAPI_OK)
                goto done;
        } else if (shared_wait <= 0) {
            /* nobody keeps the wait for us (it could not be shared): keep it here */
            if ((rc = wait_for(gh, wait, d.err,
                               d.kind == GHAPI_WAIT_PRIMARY ? "primary rate limit" : "secondary rate limit", call)) !=
                GHAPI_OK)
                goto done;
        } else if (wait > app->max_wait_ms) {
            gh->retry_after_ms = wait;
            rc = fail(gh, GHAPI_ERR_RATE_LIMITED, "%s: GitHub asks to wait %" PRId64 " s, longer than the %" PRId64
                      " s allowed (%s %s)", wait_words(shared_why), (wait + 999) / 1000, app->max_wait_ms / 1000,
                      call->method, call->path);
            goto done;
        }
        /* else step 2 of the next round waits for the shared reset, as every other caller does */
    }
done:
    if (rc == GHAPI_ERR_RATE_LIMITED && app->on_rate_limited != NULL)
        app->on_rate_limited(app->on_rate_limited_ctx, gh->retry_after_ms);
    if (holding)
        ghbudget_done(gh->budget, &ticket, GHBUDGET_ANSWER_OTHER, -1, -1, -1, now_ms(app), &(ghbudget_why_t){0});
    if (rc != GHAPI_OK)
        ghapi_response_free(out);
    ghhttp_response_clear(&resp);
    strbuf_free(&url);
    strbuf_free(&etag_key);
    free(body);
    wipe_free(cred);
    wipe_free(authz);
    return rc;
}

int ghapi_get_all(json_t **out, ghapi_t *gh, const ghapi_call_t *call, size_t max_items)
{
    json_t *all = json_array();
    ghapi_call_t c = *call;
    char *next = NULL;
    int rc = GHAPI_OK;

    *out = NULL;
    if (all == NULL)
        return fail(gh, GHAPI_ERR_PERMANENT, "out of memory");
    for (;;) {
        ghapi_response_t r;
        if ((rc = ghapi_request(&r, gh, &c)) != GHAPI_OK)
            break;
        if (!json_is_array(r.json)) {
            ghapi_response_free(&r);
            rc = fail(gh, GHAPI_ERR_PERMANENT, "GitHub's answer to %s %s is not a list", c.method, c.path);
            break;
        }
        size_t i;
        json_t *item;
        json_array_foreach(r.json, i, item)
        {
            if (json_array_size(all) >= max_items)
                break;
            json_array_append(all, item);
        }
        free(next);
        next = r.next;
        r.next = NULL;
        ghapi_response_free(&r);
        if (next == NULL || json_array_size(all) >= max_items)
            break;
        c.path = next;
    }
    free(next);
    if (rc != GHAPI_OK) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return GHAPI_OK;
}
