/*
 * reconcile — asks GitHub to redeliver the webhooks patchbay missed.
 *
 * GitHub does not retry a failed delivery by itself. When patchbay was down,
 * unreachable, or answered an error (a 503 with no secret yet, a crash), the
 * delivery stays "failed" in the App's delivery log for three days. This
 * lists that log (the App's JWT), groups attempts by delivery GUID, and for
 * every GUID whose attempts all failed and that patchbay never queued (no
 * patchbay:delivery:<guid> key), asks for a redelivery of its newest attempt.
 * A GUID asked for is remembered (patchbay:reconcile:asked:<guid>, three
 * days) so a redelivery that fails again is not asked for in a loop; one
 * answered 2xx (queued, ignored, duplicate, spooled) is never touched.
 *
 * `patchbay reconcile` runs it once; `run` and `serve` run it every
 * github.reconcile_interval_s on a thread of their own, with a Redis lock so
 * one process of a deployment does it per interval.
 *
 * Memory: the report is plain data; reconcile_t owns its thread. The config
 * must outlive it.
 */
#ifndef PATCHBAY_RECONCILE_H
#define PATCHBAY_RECONCILE_H

#include "app/common/config.h"
#include "app/github/ghapi.h"

#include <hiredis/hiredis.h>
#include <stdint.h>

#define RECONCILE_WINDOW_S (3 * 86400) /* how long GitHub keeps deliveries */
#define RECONCILE_MAX_DELIVERIES 5000
#define RECONCILE_ASKED_PREFIX "patchbay:reconcile:asked:"
#define RECONCILE_LOCK "patchbay:reconcile:lock"

typedef struct {
    int seen;           /* distinct delivery GUIDs in the window */
    int ok;             /* answered 2xx at least once */
    int queued;         /* failed at GitHub's end but patchbay has the job */
    int asked_before;   /* already asked for by an earlier run */
    int redelivered;    /* asked for now */
    int failed_to_ask;  /* GitHub refused the redelivery */
} reconcile_report_t;

/* One pass. dry_run: count, ask nothing. Returns GHAPI_OK or a ghapi error
 * (with ghapi_error(gh)), or -100 for Redis (err says why). */
int reconcile_run(reconcile_report_t *out, ghapi_t *gh, redisContext *redis, int64_t now_s, int dry_run, char *err,
                  size_t err_len);

typedef struct reconcile_s reconcile_t;
/* Starts the periodic thread; NULL when the interval is 0 or it cannot start
 * (then it logs why). Without the App's credentials yet, it looks for them
 * each round (the set-up page may save them while patchbay runs). */
reconcile_t *reconcile_start(const config_t *cfg, const char *redis_url);
void reconcile_stop(reconcile_t *r);

#endif
