/*
 * pages — what the server answers besides deliveries and the dashboard:
 * liveness (/healthz), readiness (/readyz: this loop's Redis connection),
 * Prometheus text (/metrics), the status page (/) that says what is
 * configured and what is missing, and GitHub App registration through the
 * manifest flow (/setup/code, /setup/org, /setup/callback), open only to a
 * browser that presented the set-up code this start printed (appsetup.h).
 *
 * A pages_t is the server's, read-only once made (but for what `missing`
 * says, fixed at start); any event-loop thread answers from it. The set-up
 * callback blocks its loop for the one call that exchanges GitHub's code:
 * it happens once, before any delivery can be verified.
 */
#ifndef PATCHBAY_PAGES_H
#define PATCHBAY_PAGES_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "metrics.h"
#include "qstats.h"
#include "rasync.h"
#include "app/common/config.h"

typedef struct {
    const config_t *cfg;
    metrics_t *metrics;
    qstats_t *qstats;   /* may be NULL */
    char missing[1024]; /* what stops us from talking to GitHub, one setting a line; empty when nothing */
    char setup_code[24]; /* this start's set-up code, until pages_announce printed it */
    char setup_problem[512]; /* why there is no set-up code, when there is none */
    /* Set before the loops start, by a process that also runs workers here
     * (`patchbay run`): why jobs' sandboxes cannot start ("" when they can),
     * and whether the operator turned the sandbox off. */
    char sandbox_problem[512];
    int sandbox_off;
} pages_t;

/* With no App yet, also makes this start's set-up code. */
void pages_init(pages_t *p, const config_t *cfg, metrics_t *metrics, qstats_t *qstats);
/* Says, in the log (and on the terminal), what is missing and the set-up
 * code with where to enter it (base_url: how a browser reaches the server);
 * the code is then wiped from memory: the file holds it. */
void pages_announce(pages_t *p, const char *base_url);

void pages_healthz(h2o_req_t *req);
/* 503 when Redis is unreachable, or when this process's workers cannot
 * start a sandbox (pages_t.sandbox_problem). */
void pages_readyz(const pages_t *p, const rasync_t *redis, h2o_req_t *req);
void pages_metrics(pages_t *p, h2o_req_t *req);
void pages_status(pages_t *p, const rasync_t *redis, h2o_req_t *req);
/* callback 0: /setup/org (the organization form); 1: GitHub's return. */
void pages_setup(pages_t *p, h2o_req_t *req, int callback);
/* POST /setup/code: the set-up code, traded for a set-up session cookie. */
void pages_setup_code(pages_t *p, h2o_req_t *req);

#endif
