/*
 * ghbudget — GitHub's limits as GitHub states them, kept per installation
 * and shared by every thread, process and machine through Redis.
 *
 * GitHub's REST docs ("Rate limits for the REST API") ask three things of a
 * client, besides the hourly primary budget it reports in x-ratelimit-*:
 *   - content-generating requests (POST, PATCH, PUT, DELETE): no more than
 *     80 a minute and 500 an hour (configurable: github.content_limits, for
 *     GitHub Enterprise, whose administrators set their own);
 *   - no more than 100 requests in flight (github.max_inflight);
 *   - after a primary limit (403/429 with x-ratelimit-remaining: 0), no
 *     request before x-ratelimit-reset; after a secondary limit, none before
 *     retry-after, or a minute when it is absent, and exponentially longer
 *     while it persists.
 * Every worker of an installation spends the same budgets, so they are
 * counted in one place. Before each call, ghbudget_admit asks Redis (one
 * script, one round trip) whether the call may go now; after it,
 * ghbudget_done tells Redis what GitHub answered, which is how one worker's
 * 403 stops every other worker of the installation until the reset.
 *
 * Keys (installation 0 is the App itself, for JWT calls):
 *   patchbay:gh:<inst>           hash: until (epoch ms: no call before), why,
 *                                set (when the wait was imposed), streak
 *                                (secondary limits in a row)
 *   patchbay:gh:<inst>:content   sorted set: one member per content call,
 *                                scored by when it was sent; trimmed to the
 *                                widest window, so it holds at most ~500
 *   patchbay:gh:<inst>:inflight  sorted set: calls in flight, scored by when
 *                                their lease ends (a process that died
 *                                mid-call frees its slot by then)
 *   patchbay:gh:waits            hash: inst -> "<until_ms> <why>", the last
 *                                wait imposed, for /metrics and the dashboard
 * Windows slide: a call is counted against the calls of the past minute and
 * the past hour at the moment it is sent, whichever way GitHub's own
 * counters are aligned. Low-priority calls (progress edits) may use only
 * GHBUDGET_LOW_SHARE_PCT of each window and are deferred, never delayed,
 * beyond it or while a wait is in force.
 *
 * Without Redis (no URL, or unreachable) the same rules hold for the threads
 * of this process (ghbudget_local_t), so a CLI call or a worker cut off from
 * Redis still behaves.
 *
 * Times are the caller's wall clock in epoch ms (the client's injectable
 * clock), like x-ratelimit-reset. Memory: a ghbudget_local_t is one per
 * process (its own mutex); a ghbudget_t is one per thread and borrows the
 * thread's ghshare_t (its Redis connection) and the limits.
 */
#ifndef PATCHBAY_GHBUDGET_H
#define PATCHBAY_GHBUDGET_H

#include "ghshare.h"
#include "app/common/config.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define GHBUDGET_WINDOWS_MAX CONFIG_RATE_WINDOWS_MAX
#define GHBUDGET_LOW_SHARE_PCT 75            /* of each window, for calls that can give way */
#define GHBUDGET_SECONDARY_WAIT_MS 60000     /* GitHub: "wait for at least one minute" */
#define GHBUDGET_SECONDARY_CAP_MS (15 * 60000)
#define GHBUDGET_PRIMARY_MIN_WAIT_MS 1000    /* a reset already past: our clock is behind GitHub's */
#define GHBUDGET_CONCURRENCY_POLL_MS 100     /* a full in-flight set: look again this soon */
/* A window is kept a little wider than configured: GitHub counts a call when
 * it arrives, we when we send it, and one call's way can be slower than the
 * next one's. 2% of the window and 50 ms more (61.25 s for a minute). */
#define GHBUDGET_WINDOW_MARGIN_DIV 50
#define GHBUDGET_WINDOW_MARGIN_MS 50
#define GHBUDGET_STATE_TTL_MS 3600000        /* a streak is forgotten an hour after its last wait */
#define GHBUDGET_LOCAL_SLOTS 64
#define GHBUDGET_LOCAL_STAMPS_MAX 4096
#define GHBUDGET_KEY_PREFIX "patchbay:gh:"
#define GHBUDGET_WAITS_KEY "patchbay:gh:waits"

typedef struct {
    int calls;
    int64_t window_ms;
} ghbudget_window_t;

typedef struct {
    size_t n;
    ghbudget_window_t w[GHBUDGET_WINDOWS_MAX];
    int max_inflight; /* 0: no limit */
} ghbudget_limits_t;

/* GitHub's: 80/60 s, 500/3600 s, 100 in flight. */
void ghbudget_limits_default(ghbudget_limits_t *l);
/* From github.content_limits and github.max_inflight (already validated). */
void ghbudget_limits_from_config(ghbudget_limits_t *l, const config_t *cfg);

typedef enum {
    GHBUDGET_WHY_NONE = 0,
    GHBUDGET_WHY_PRIMARY,     /* GitHub's hourly budget is spent until x-ratelimit-reset */
    GHBUDGET_WHY_SECONDARY,   /* GitHub's secondary limit: retry-after, or backoff */
    GHBUDGET_WHY_CONTENT,     /* our count of content-generating calls is at a window's limit */
    GHBUDGET_WHY_CONCURRENCY, /* max_inflight calls in flight */
} ghbudget_why_t;

/* "primary", "secondary", "content", "concurrency" (metric labels). */
const char *ghbudget_why_name(ghbudget_why_t why);

typedef enum {
    GHBUDGET_GO = 0,    /* send it: a slot is taken (ghbudget_done frees it) */
    GHBUDGET_WAIT = 1,  /* not before *wait_ms from now; then ask again */
    GHBUDGET_DEFER = 2, /* low priority: do not send it at all */
} ghbudget_verdict_t;

/* What GitHub's answer means for everyone, as ghapi_decide sorted it. */
typedef enum {
    GHBUDGET_ANSWER_OK = 0,    /* 2xx/3xx: a secondary streak ends */
    GHBUDGET_ANSWER_PRIMARY,   /* 403/429, x-ratelimit-remaining: 0 */
    GHBUDGET_ANSWER_SECONDARY, /* a secondary limit */
    GHBUDGET_ANSWER_OTHER,     /* anything else (4xx, 5xx, no answer) */
} ghbudget_answer_t;

typedef struct ghbudget_local_s ghbudget_local_t;
typedef struct ghbudget_s ghbudget_t;

/* One admitted call, between admit and done. */
typedef struct {
    char id[32];
    int64_t installation;
    int64_t admitted_ms;
    int in_redis; /* counted in Redis (else in this process) */
    int admitted;
} ghbudget_ticket_t;

ghbudget_local_t *ghbudget_local_new(void);
void ghbudget_local_free(ghbudget_local_t *l);

/* share and limits must outlive it. NULL when out of memory. */
ghbudget_t *ghbudget_new(ghshare_t *share, ghbudget_local_t *local, const ghbudget_limits_t *limits);
void ghbudget_free(ghbudget_t *b);

/* May a call for installation go now? content: a content-generating call;
 * lease_ms: how long it may take at most (its slot is freed by then even if
 * this process dies). GO fills *t; WAIT sets *wait_ms (> 0) and *why. */
ghbudget_verdict_t ghbudget_admit(ghbudget_t *b, ghbudget_ticket_t *t, int64_t *wait_ms, ghbudget_why_t *why,
                                  int64_t installation, int content, int low_priority, int64_t lease_ms,
                                  int64_t now_ms);

/* The call is over: frees its slot and shares what GitHub said. reset_s,
 * retry_after_s and remaining are the headers (-1: absent); remaining 0 with
 * a reset ahead imposes the wait even on a 2xx (the next call would fail).
 * Returns how long, from now, no call of the installation may go (0: none),
 * setting *why when it is not 0. */
int64_t ghbudget_done(ghbudget_t *b, const ghbudget_ticket_t *t, ghbudget_answer_t answer, int64_t reset_s,
                      int64_t retry_after_s, int64_t remaining, int64_t now_ms, ghbudget_why_t *why);

/* ---- for /metrics and the dashboard ---- */

typedef struct {
    int64_t installation;
    int64_t until_ms;
    ghbudget_why_t why;
} ghbudget_wait_t;

/* The installations waiting at now_ms (until_ms > now_ms), at most max, into
 * out; *n says how many. 0, or -1 when Redis failed (c->errstr). */
int ghbudget_waits(redisContext *c, ghbudget_wait_t *out, size_t max, size_t *n, int64_t now_ms);

#endif
