/*
 * qmetrics — the queue's metrics, read from Redis and rendered as Prometheus
 * text: queue depth and oldest job age per kind, jobs by kind and outcome,
 * run durations, retries, reclaims, lock waits, dead and malformed jobs,
 * workers busy and idle. docs/operations-queue.md says what each one means.
 *
 * Workers are separate processes, often on other machines, so their counters
 * live in Redis (the patchbay:metrics hash the work script adds to) and any
 * process that can reach Redis can render them: the webhook server does, from
 * a background thread (qstats), never from its event loops.
 *
 * Blocking (a handful of pipelined commands); any thread with its own
 * connection. Appends to the caller's buffer.
 */
#ifndef PATCHBAY_QMETRICS_H
#define PATCHBAY_QMETRICS_H

#include "app/common/strbuf.h"

#include <hiredis/hiredis.h>
#include <stddef.h>

/* Returns 0, or -1 with a reason in err (then nothing was appended). */
int qmetrics_render(redisContext *c, strbuf_t *out, char *err, size_t err_len);

#endif
