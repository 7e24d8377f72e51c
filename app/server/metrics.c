/* metrics — see metrics.h. */
#include "metrics.h"
#include "app/webhook/verify.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const event_names[METRICS_EVENTS] = {
    "issue_comment", "issues", "pull_request", "pull_request_review_comment", "installation", "ping", "other"};
static const char *const outcome_names[METRICS_OUT__COUNT] = {"queued",       "duplicate",   "spooled",    "ignored",
                                                              "unauthorized", "bad_request", "unavailable"};
/* microseconds; a delivery answered within 10 ms is far inside GitHub's 10 s */
static const uint64_t bucket_us[METRICS_LATENCY_BUCKETS] = {100,   250,   500,    1000,   2500,   5000,
                                                            10000, 25000, 100000, 250000, 1000000, 5000000};

void metrics_init(metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    m->started_at_s = (int64_t)time(NULL);
}

static int event_index(const char *event)
{
    for (int i = 0; i < METRICS_EVENTS - 1; i++)
        if (event != NULL && strcmp(event, event_names[i]) == 0)
            return i;
    return METRICS_EVENTS - 1;
}

void metrics_delivery(metrics_t *m, const char *event, metrics_outcome_t outcome)
{
    atomic_fetch_add_explicit(&m->deliveries[event_index(event)][outcome], 1, memory_order_relaxed);
}

void metrics_signature_failure(metrics_t *m, int result)
{
    int i = result == VERIFY_MISSING ? 0 : result == VERIFY_MALFORMED ? 1 : 2;
    atomic_fetch_add_explicit(&m->signature_failures[i], 1, memory_order_relaxed);
}

void metrics_enqueue_latency(metrics_t *m, uint64_t us)
{
    int b = 0;
    while (b < METRICS_LATENCY_BUCKETS && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&m->enqueue_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->enqueue_sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->enqueue_count, 1, memory_order_relaxed);
}

void metrics_refused(metrics_t *m, metrics_refused_t reason)
{
    atomic_fetch_add_explicit(&m->refused[reason], 1, memory_order_relaxed);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

void metrics_render(metrics_t *m, strbuf_t *out)
{
    strbuf_append(out, "# HELP patchbay_webhook_deliveries_total Webhook deliveries by event and outcome.\n"
                       "# TYPE patchbay_webhook_deliveries_total counter\n");
    for (int e = 0; e < METRICS_EVENTS; e++)
        for (int o = 0; o < METRICS_OUT__COUNT; o++)
            strbuf_appendf(out, "patchbay_webhook_deliveries_total{event=\"%s\",outcome=\"%s\"} %llu\n", event_names[e],
                           outcome_names[o], (unsigned long long)LOAD(m->deliveries[e][o]));

    static const char *const sig[3] = {"missing", "malformed", "mismatch"};
    strbuf_append(out, "# HELP patchbay_webhook_signature_failures_total Deliveries refused for their signature.\n"
                       "# TYPE patchbay_webhook_signature_failures_total counter\n");
    for (int i = 0; i < 3; i++)
        strbuf_appendf(out, "patchbay_webhook_signature_failures_total{reason=\"%s\"} %llu\n", sig[i],
                       (unsigned long long)LOAD(m->signature_failures[i]));

    strbuf_append(out, "# HELP patchbay_enqueue_duration_seconds From a delivery's arrival to its job being durable.\n"
                       "# TYPE patchbay_enqueue_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
        cum += LOAD(m->enqueue_buckets[b]);
        if (b < METRICS_LATENCY_BUCKETS)
            strbuf_appendf(out, "patchbay_enqueue_duration_seconds_bucket{le=\"%g\"} %llu\n", (double)bucket_us[b] / 1e6,
                           (unsigned long long)cum);
        else
            strbuf_appendf(out, "patchbay_enqueue_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    strbuf_appendf(out, "patchbay_enqueue_duration_seconds_sum %.6f\n", (double)LOAD(m->enqueue_sum_us) / 1e6);
    strbuf_appendf(out, "patchbay_enqueue_duration_seconds_count %llu\n", (unsigned long long)LOAD(m->enqueue_count));

    strbuf_appendf(out,
                   "# HELP patchbay_webhook_inflight_body_bytes Request bodies held in memory right now.\n"
                   "# TYPE patchbay_webhook_inflight_body_bytes gauge\npatchbay_webhook_inflight_body_bytes %lld\n"
                   "# HELP patchbay_webhook_inflight_body_limit_bytes server.inflight_body_bytes: what they may add up to.\n"
                   "# TYPE patchbay_webhook_inflight_body_limit_bytes gauge\n"
                   "patchbay_webhook_inflight_body_limit_bytes %lld\n"
                   "# HELP patchbay_http_connections Open client connections.\n"
                   "# TYPE patchbay_http_connections gauge\npatchbay_http_connections %lld\n"
                   "# HELP patchbay_http_connections_limit Connections kept at most, all event loops together.\n"
                   "# TYPE patchbay_http_connections_limit gauge\npatchbay_http_connections_limit %lld\n"
                   "# HELP patchbay_http_connections_evicted_total Connections closed to make room for a new one.\n"
                   "# TYPE patchbay_http_connections_evicted_total counter\npatchbay_http_connections_evicted_total %llu\n"
                   "# HELP patchbay_http_accept_paused_total Times accepting paused because no file descriptor was free.\n"
                   "# TYPE patchbay_http_accept_paused_total counter\npatchbay_http_accept_paused_total %llu\n",
                   (long long)LOAD(m->body_bytes), (long long)m->body_bytes_limit, (long long)LOAD(m->connections),
                   (long long)m->connections_limit, (unsigned long long)LOAD(m->connections_evicted),
                   (unsigned long long)LOAD(m->accept_paused));
    static const char *const refused[METRICS_REFUSED__COUNT] = {"body_budget", "connections", "too_large",
                                                                "bad_request", "timeout"};
    strbuf_append(out, "# HELP patchbay_http_refused_total Requests refused before they could be read, by reason.\n"
                       "# TYPE patchbay_http_refused_total counter\n");
    for (int i = 0; i < METRICS_REFUSED__COUNT; i++)
        strbuf_appendf(out, "patchbay_http_refused_total{reason=\"%s\"} %llu\n", refused[i],
                       (unsigned long long)LOAD(m->refused[i]));

    strbuf_appendf(out,
                   "# HELP patchbay_spool_depth Deliveries on disk waiting for Redis.\n"
                   "# TYPE patchbay_spool_depth gauge\npatchbay_spool_depth %lld\n"
                   "# HELP patchbay_spool_drained_total Spooled deliveries moved into Redis.\n"
                   "# TYPE patchbay_spool_drained_total counter\npatchbay_spool_drained_total %llu\n"
                   "# HELP patchbay_redis_up Event loops with a live Redis connection.\n"
                   "# TYPE patchbay_redis_up gauge\npatchbay_redis_up %lld\n"
                   "# HELP patchbay_webhook_inflight Deliveries being verified or queued right now.\n"
                   "# TYPE patchbay_webhook_inflight gauge\npatchbay_webhook_inflight %lld\n"
                   "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                   "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
                   "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
                   "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %lld\n",
                   (long long)LOAD(m->spool_depth), (unsigned long long)LOAD(m->spool_drained),
                   (long long)LOAD(m->redis_connections_up), (long long)LOAD(m->inflight), resident_bytes(),
                   (long long)m->started_at_s);
}
