/*
 * metrics — the webhook server's counters, rendered as Prometheus text at
 * GET /metrics.
 *
 * Event-loop threads bump relaxed atomics (no locks on the hot path); the
 * scrape reads them without stopping anyone, so a scrape may see one counter
 * a request ahead of another, which Prometheus tolerates. Label values come
 * from fixed tables, never from the request, so a hostile X-GitHub-Event
 * cannot grow the series count.
 *
 * One metrics_t per server, owned by it; any thread may update or render.
 */
#ifndef PATCHBAY_METRICS_H
#define PATCHBAY_METRICS_H

#include "app/common/strbuf.h"

#include <stdatomic.h>
#include <stdint.h>

typedef enum {
    METRICS_OUT_QUEUED = 0,  /* 202, a new job */
    METRICS_OUT_DUPLICATE,   /* 200, a redelivery */
    METRICS_OUT_SPOOLED,     /* 202, Redis unreachable, on disk */
    METRICS_OUT_IGNORED,     /* 200, not a trigger */
    METRICS_OUT_UNAUTHORIZED,/* 401 */
    METRICS_OUT_BAD_REQUEST, /* 400 */
    METRICS_OUT_UNAVAILABLE, /* 503, neither Redis nor the spool took it */
    METRICS_OUT__COUNT
} metrics_outcome_t;

/* Requests the front (front.h) refused before a delivery could be read. */
typedef enum {
    METRICS_REFUSED_BODY_BUDGET = 0, /* 503: the body would take server.inflight_body_bytes past its limit */
    METRICS_REFUSED_CONNECTIONS,     /* 503: every connection was busy with a request */
    METRICS_REFUSED_TOO_LARGE,       /* 413 */
    METRICS_REFUSED_BAD_REQUEST,     /* 400, 411, 417, 431, 501: framing the server will not read */
    METRICS_REFUSED_TIMEOUT,         /* 408: the request did not arrive within request_timeout_ms */
    METRICS_REFUSED__COUNT
} metrics_refused_t;

#define METRICS_EVENTS 7 /* the trigger events, ping, and "other" */
#define METRICS_LATENCY_BUCKETS 12

typedef struct {
    _Atomic uint64_t deliveries[METRICS_EVENTS][METRICS_OUT__COUNT];
    _Atomic uint64_t signature_failures[3]; /* missing, malformed, mismatch */
    _Atomic uint64_t enqueue_buckets[METRICS_LATENCY_BUCKETS + 1];
    _Atomic uint64_t enqueue_sum_us;
    _Atomic uint64_t enqueue_count;
    _Atomic int64_t spool_depth;
    _Atomic uint64_t spool_drained;
    _Atomic int64_t redis_connections_up;
    _Atomic int64_t inflight;
    /* the front's: the body budget in use (the front takes and gives it with
     * compare-and-swap on this counter), connections and what it refused */
    _Atomic int64_t body_bytes;
    int64_t body_bytes_limit;
    _Atomic int64_t connections;
    int64_t connections_limit;
    _Atomic uint64_t connections_evicted;
    _Atomic uint64_t accept_paused;
    _Atomic uint64_t refused[METRICS_REFUSED__COUNT];
    int64_t started_at_s;
} metrics_t;

void metrics_init(metrics_t *m);
void metrics_delivery(metrics_t *m, const char *event, metrics_outcome_t outcome);
/* result: a verify_result_t other than VERIFY_OK */
void metrics_signature_failure(metrics_t *m, int result);
/* From the request's arrival to Redis's answer (or the spool's fsync). */
void metrics_enqueue_latency(metrics_t *m, uint64_t us);
void metrics_refused(metrics_t *m, metrics_refused_t reason);
void metrics_render(metrics_t *m, strbuf_t *out);

#endif
