/*
 * qstats — the webhook server's copy of the queue's metrics: a background
 * thread reads them from Redis every QSTATS_INTERVAL_MS (qmetrics) and keeps
 * the rendered text; GET /metrics appends the latest copy under a mutex held
 * for a memcpy. So a scrape never waits on Redis and never blocks an event
 * loop, and the figures are at most one interval old (their age is exported
 * too). When Redis does not answer, the copy is dropped rather than shown
 * stale, and patchbay_queue_metrics_up says 0. The same read lists the
 * installations GitHub's limits hold (ghbudget.h) and until when.
 *
 * Memory: a qstats_t owns its thread, connection and text; the URL must
 * outlive it. qstats_start/stop: main thread; qstats_render: any thread.
 */
#ifndef PATCHBAY_QSTATS_H
#define PATCHBAY_QSTATS_H

#include "app/common/redisconn.h"
#include "app/common/strbuf.h"

typedef struct qstats_s qstats_t;

#define QSTATS_INTERVAL_MS 2000
#define QSTATS_REDIS_TIMEOUT_MS 1000
#define QSTATS_GITHUB_WAITS_MAX 256 /* installations listed waiting for GitHub */

/* NULL when out of memory or the thread cannot start (metrics then lack the
 * queue section; nothing else depends on it). */
qstats_t *qstats_start(const redisconn_url_t *url);
void qstats_render(qstats_t *q, strbuf_t *out);
void qstats_stop(qstats_t *q);

#endif
