/*
 * kindpolicy — each job kind's limits, apart from its handler: how many
 * attempts it gets, whether it takes its issue's lock, its wall clock. The
 * queue's policy and the worker pool's supervisor need these without linking
 * the handlers (and, through them, libgit2, libcurl and the agents): the
 * supervisor stays a small process.
 *
 * Static table, read-only: any thread.
 */
#ifndef PATCHBAY_KINDPOLICY_H
#define PATCHBAY_KINDPOLICY_H

#include "app/common/config.h"
#include "jobs/queue/job.h"

#include <jansson.h>
#include <stdint.h>

/* Time around the agent that a code job needs: clone, setup, push, comments. */
#define KINDPOLICY_CODE_OVERHEAD_S 900

/* Where a kind's wall clock comes from. */
typedef enum {
    KINDPOLICY_CLOCK_FIXED = 0, /* timeout_s */
    KINDPOLICY_CLOCK_CODE,      /* agent.timeout, once more per test round, plus the overhead */
    KINDPOLICY_CLOCK_ASK,       /* ask.timeout (else agent.timeout), one run, plus the overhead */
} kindpolicy_clock_t;

typedef struct {
    int max_attempts; /* 0: workers.max_attempts */
    int exclusive;    /* one job per issue/PR at a time: takes patchbay:lock:<repo>#<n> */
    kindpolicy_clock_t clock;
    int timeout_s;    /* KINDPOLICY_CLOCK_FIXED: the wall clock */
} kindpolicy_t;

const kindpolicy_t *kindpolicy_get(job_kind_t kind);
int kindpolicy_max_attempts(job_kind_t kind, const config_t *cfg);
/* The kind's limit, or the record's timeout_ms when that is lower. */
int64_t kindpolicy_timeout_ms(job_kind_t kind, const config_t *cfg, const json_t *record);

#endif
