/*
 * router — decides what a verified delivery means: a job, or nothing (and
 * why), using only the routing fields the JSON scanner extracts.
 *
 * One table maps event to a handler; each handler applies DESIGN.md's trigger
 * and sender rules (trusted author_association, never a Bot, never patchbay
 * itself) and, for comments, the mention parser. A payload that is not JSON,
 * or lacks a field a trigger event must have, is malformed (HTTP 400); an
 * event or action we do not act on is ignored with a reason (HTTP 200), so a
 * GitHub App owner reading "Recent Deliveries" sees why nothing happened.
 * Every job also carries the event's own identity (JOB_F_EVENT_ID), which the
 * queue dedups on besides the delivery id.
 *
 * Memory: decoded strings (repository name, instruction, ...) are written to
 * the caller's scratch buffer, which must be at least body_len +
 * ROUTER_SCRATCH_EXTRA bytes and outlive the result. Nothing is allocated.
 * Reentrant; called on the event-loop threads.
 */
#ifndef PATCHBAY_ROUTER_H
#define PATCHBAY_ROUTER_H

#include "app/common/config.h"
#include "jobs/queue/job.h"

#include <stddef.h>

#define ROUTER_SCRATCH_EXTRA 512
#define ROUTER_REASON_BYTES 200

typedef struct {
    const char *handle;                /* who people mention, without '@' */
    const config_list_t *labels;       /* labels that start a fix */
    const config_list_t *associations; /* author_association values allowed to trigger */
} router_rules_t;

typedef enum {
    ROUTE_IGNORED = 0,
    ROUTE_JOB = 1,
} route_outcome_t;

typedef struct {
    route_outcome_t outcome;
    char reason[ROUTER_REASON_BYTES]; /* ignored or malformed: why, one line */
    job_kind_t kind;                  /* ROUTE_JOB */
    job_fields_t fields;              /* ROUTE_JOB: the record's routing fields */
    char event_id[JOB_EVENT_ID_MAX_BYTES + 1]; /* what fields' JOB_F_EVENT_ID points to */
} router_result_t;

typedef enum {
    ROUTER_OK = 0,
    ROUTER_ERR_MALFORMED = -1, /* answer 400; reason says what */
} router_err_t;

int router_route(router_result_t *out, const router_rules_t *rules, const char *event, const char *body, size_t body_len,
                 char *scratch, size_t scratch_cap);

#endif
