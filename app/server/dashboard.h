/*
 * dashboard — the jobs dashboard at /jobs and its JSON at /api/jobs, served
 * by the webhook server itself: plain HTML, CSS and a little JavaScript
 * embedded in the binary (app/server/dashboard/, no build step, no external asset),
 * every page under a strict Content-Security-Policy, and every text from
 * GitHub put on the page as text, never as HTML.
 *
 *   GET  /jobs, /jobs/<id>               the page (the script fetches the API)
 *   GET  /assets/dashboard.{js,css}
 *   GET  /api/jobs[?status=S&limit=N]    a JSON array, newest first
 *   GET  /api/jobs/<id>                  one job
 *   GET  /api/jobs/<id>/log?after=ID     log lines after a stream id
 *   POST /api/jobs/<id>/cancel|retry     with header X-Patchbay-Action
 *
 * Access: closed by default, wherever patchbay listens (behind a reverse
 * proxy every visitor arrives from loopback). Every page and API request
 * needs the token, as "Authorization: Bearer <token>" or the cookie a visit
 * to any page with ?token=<token> sets (HttpOnly, SameSite=Strict), compared
 * in constant time. The token is DASHBOARD_TOKEN, else one generated at the
 * first start and kept in <data_dir>/dashboard-token (0600), whose link is
 * printed that once. Only the operator's `dashboard.auth: none` opens it, with
 * a warning at every start. POSTs also need the custom X-Patchbay-Action
 * header, which a cross-site form cannot send; a same-origin page of a
 * rebound DNS name could, and the server's Host rule (access.h) refuses it
 * before it gets here.
 *
 * Redis is read by one background thread with a blocking connection, never
 * on an event loop: a request is handed over and answered from its loop when
 * the thread's reply message arrives (the same pattern as the spool).
 *
 * Memory: a dashboard_t owns its thread and connection; the config and the
 * URL must outlive it. dashboard_new/free: main thread; dashboard_handle and
 * the loop functions: the event-loop thread that owns the dashboard_loop_t.
 */
#ifndef PATCHBAY_DASHBOARD_H
#define PATCHBAY_DASHBOARD_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <h2o/multithread.h>

#include <stdatomic.h>

#include "app/common/config.h"
#include "app/common/redisconn.h"

typedef struct dashboard_s dashboard_t;

typedef struct {
    h2o_multithread_receiver_t receiver;
    dashboard_t *dashboard;
    _Atomic int64_t *inflight; /* the server's count of requests waiting on a thread */
} dashboard_loop_t;

#define DASHBOARD_REDIS_TIMEOUT_MS 2000
#define DASHBOARD_LIST_MAX 500
#define DASHBOARD_COOKIE "patchbay_dashboard"
#define DASHBOARD_TOKEN_FILE "dashboard-token"

/* Finds or makes the token (a token that cannot be kept leaves the dashboard
 * refusing everything, said by dashboard_announce). NULL with a reason in err
 * when the thread cannot start. */
dashboard_t *dashboard_new(const config_t *cfg, const redisconn_url_t *url, char *err, size_t err_len);
/* Logs where the dashboard is (base_url: how a browser reaches the server):
 * with its token when this start made it, the only time the token is ever
 * printed; a warning when it is open. */
void dashboard_announce(dashboard_t *d, const char *base_url);
/* Answers what is still waiting (503) and joins the thread. */
void dashboard_free(dashboard_t *d);

/* inflight is raised while a request waits for the Redis thread, so the
 * server's shutdown waits for the answer before it disposes its loop. */
void dashboard_loop_init(dashboard_loop_t *l, dashboard_t *d, h2o_multithread_queue_t *queue, _Atomic int64_t *inflight);
void dashboard_loop_dispose(dashboard_loop_t *l);

/* 1 when the request was the dashboard's (answered now or later), 0 when
 * not its path. */
int dashboard_handle(dashboard_loop_t *l, h2o_req_t *req);

#endif
