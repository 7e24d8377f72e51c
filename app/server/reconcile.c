/* reconcile — see reconcile.h. */
#include "reconcile.h"
#include "app/common/bgthread.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/redisconn.h"
#include "jobs/queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECONCILE_ERR_REDIS (-100)

typedef struct {
    const char *guid;
    int64_t newest_id;
    int64_t newest_at;
    int ok;
} guid_t;

static int by_guid(const void *a, const void *b)
{
    return strcmp(((const guid_t *)a)->guid, ((const guid_t *)b)->guid);
}

/* EXISTS for a batch of keys, pipelined. */
static int exists_all(redisContext *c, const char *prefix, guid_t *g, size_t n, int *out, char *err, size_t err_len)
{
    for (size_t i = 0; i < n; i++)
        redisAppendCommand(c, "EXISTS %s%s", prefix, g[i].guid);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL || r->type != REDIS_REPLY_INTEGER) {
            snprintf(err, err_len, "Redis: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            return -1;
        }
        out[i] = r->integer > 0;
        freeReplyObject(r);
    }
    return 0;
}

int reconcile_run(reconcile_report_t *out, ghapi_t *gh, redisContext *redis, int64_t now_s, int dry_run, char *err,
                  size_t err_len)
{
    memset(out, 0, sizeof(*out));
    json_t *list = NULL;
    guid_t *g = NULL;
    int *queued = NULL, *asked = NULL;
    int rc = ghapi_deliveries_list(&list, gh, now_s - RECONCILE_WINDOW_S, RECONCILE_MAX_DELIVERIES);
    if (rc != GHAPI_OK) {
        snprintf(err, err_len, "listing the App's deliveries: %s", ghapi_error(gh));
        return rc;
    }
    size_t n = 0, total = json_array_size(list);
    g = calloc(total ? total : 1, sizeof(*g));
    if (g == NULL)
        goto oom;
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        const char *guid = json_string_value(json_object_get(d, "guid"));
        json_t *id = json_object_get(d, "id");
        if (guid == NULL || !json_is_integer(id) || strlen(guid) > QUEUE_DELIVERY_MAX_BYTES)
            continue;
        int64_t at = 0;
        const char *when = json_string_value(json_object_get(d, "delivered_at"));
        if (when != NULL)
            ghapi_time_parse(&at, when);
        json_int_t code = json_integer_value(json_object_get(d, "status_code"));
        g[n].guid = guid;
        g[n].newest_id = json_integer_value(id);
        g[n].newest_at = at;
        g[n].ok = code >= 200 && code < 300;
        n++;
    }
    /* one entry per GUID: ok if any attempt was, newest attempt's id */
    qsort(g, n, sizeof(*g), by_guid);
    size_t m = 0;
    for (i = 0; i < n; i++) {
        if (m > 0 && strcmp(g[m - 1].guid, g[i].guid) == 0) {
            g[m - 1].ok |= g[i].ok;
            if (g[i].newest_at > g[m - 1].newest_at || (g[i].newest_at == g[m - 1].newest_at && g[i].newest_id > g[m - 1].newest_id)) {
                g[m - 1].newest_at = g[i].newest_at;
                g[m - 1].newest_id = g[i].newest_id;
            }
        } else {
            g[m++] = g[i];
        }
    }
    out->seen = (int)m;
    queued = calloc(m ? m : 1, sizeof(int));
    asked = calloc(m ? m : 1, sizeof(int));
    if (queued == NULL || asked == NULL)
        goto oom;
    if (m > 0 && (exists_all(redis, QUEUE_DELIVERY_PREFIX, g, m, queued, err, err_len) != 0 ||
                  exists_all(redis, RECONCILE_ASKED_PREFIX, g, m, asked, err, err_len) != 0)) {
        rc = RECONCILE_ERR_REDIS;
        goto done;
    }
    for (i = 0; i < m; i++) {
        if (g[i].ok) {
            out->ok++;
        } else if (queued[i]) {
            out->queued++;
        } else if (asked[i]) {
            out->asked_before++;
        } else if (dry_run) {
            out->redelivered++;
        } else {
            /* remember first: a crash after asking must not ask twice */
            redisReply *r = redisCommand(redis, "SET %s%s %lld NX EX %d", RECONCILE_ASKED_PREFIX, g[i].guid,
                                         (long long)now_s, RECONCILE_WINDOW_S);
            int took = r != NULL && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            if (!took) {
                out->asked_before++;
                continue;
            }
            if (ghapi_delivery_redeliver(gh, g[i].newest_id) == GHAPI_OK) {
                out->redelivered++;
                log_info(g[i].guid, NULL, "asked GitHub to redeliver a delivery patchbay missed");
            } else {
                out->failed_to_ask++;
                log_warn(g[i].guid, NULL, "GitHub refused to redeliver: %s", ghapi_error(gh));
            }
        }
    }
    rc = GHAPI_OK;
    goto done;
oom:
    snprintf(err, err_len, "out of memory");
    rc = GHAPI_ERR_PERMANENT;
done:
    free(queued);
    free(asked);
    free(g);
    json_decref(list);
    return rc;
}

/* ---- the periodic thread ---- */

struct reconcile_s {
    const config_t *cfg;
    char *redis_url;
    bgthread_t bg;
};

static void pass(reconcile_t *r, ghapi_t *gh, const redisconn_url_t *url)
{
    char err[512];
    redisContext *c = redisconn_connect(url, 2000, 10000, err, sizeof(err));
    if (c == NULL) {
        log_warn(NULL, NULL, "reconcile skipped: %s", err);
        return;
    }
    int64_t interval_ms = (int64_t)r->cfg->github.reconcile_interval_s * 1000;
    char host[128] = "";
    snprintf(host, sizeof(host), "%d", (int)getpid());
    redisReply *lock = redisCommand(c, "SET %s %s NX PX %lld", RECONCILE_LOCK, host, (long long)interval_ms);
    int mine = lock != NULL && lock->type == REDIS_REPLY_STATUS;
    if (lock)
        freeReplyObject(lock);
    if (mine) {
        reconcile_report_t rep;
        int rc = reconcile_run(&rep, gh, c, clock_wall_ms() / 1000, 0, err, sizeof(err));
        if (rc != GHAPI_OK)
            log_warn(NULL, NULL, "reconcile: %s", err);
        else if (rep.redelivered > 0 || rep.failed_to_ask > 0)
            log_info(NULL, NULL, "reconcile: %d missed deliveries redelivered, %d refused (of %d in 3 days)",
                     rep.redelivered, rep.failed_to_ask, rep.seen);
    }
    redisFree(c);
}

static void *reconcile_main(void *arg)
{
    reconcile_t *r = arg;
    ghapi_app_t *app = NULL;
    ghapi_t *gh = NULL;
    redisconn_url_t url;
    char err[512];
    int told = 0;
    if (redisconn_url_parse(&url, r->redis_url, err, sizeof(err)) != 0) {
        log_warn(NULL, NULL, "reconcile off: %s", err);
        return NULL;
    }
    bgthread_lock(&r->bg);
    while (!bgthread_stopping(&r->bg)) {
        bgthread_unlock(&r->bg);
        /* the App may arrive while we run (the set-up page): look for it each round */
        if (gh == NULL) {
            ghapi_options_t o;
            ghapi_options_from_config(&o, r->cfg, r->redis_url);
            if (ghapi_app_new(&app, &o, err, sizeof(err)) == GHAPI_OK && (gh = ghapi_new(app)) != NULL) {
                if (told)
                    log_info(NULL, NULL, "reconcile: the App's credentials are here; looking for missed deliveries");
            } else {
                ghapi_app_free(app);
                app = NULL;
                if (!told++)
                    log_info(NULL, NULL, "reconcile waits for the App's credentials: %s", err);
            }
        }
        if (gh != NULL)
            pass(r, gh, &url);
        bgthread_lock(&r->bg);
        bgthread_sleep(&r->bg, (int64_t)r->cfg->github.reconcile_interval_s * 1000);
    }
    bgthread_unlock(&r->bg);
    ghapi_free(gh);
    ghapi_app_free(app);
    redisconn_url_free(&url);
    return NULL;
}

reconcile_t *reconcile_start(const config_t *cfg, const char *redis_url)
{
    if (cfg->github.reconcile_interval_s <= 0)
        return NULL;
    reconcile_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->redis_url = strdup(redis_url)) == NULL) {
        free(r);
        return NULL;
    }
    r->cfg = cfg;
    if (bgthread_start(&r->bg, reconcile_main, r) != 0) {
        log_warn(NULL, NULL, "reconcile off: cannot start its thread");
        free(r->redis_url);
        free(r);
        return NULL;
    }
    return r;
}

void reconcile_stop(reconcile_t *r)
{
    if (r == NULL)
        return;
    bgthread_stop(&r->bg);
    free(r->redis_url);
    free(r);
}
