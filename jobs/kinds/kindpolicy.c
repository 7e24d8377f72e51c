/* kindpolicy — see kindpolicy.h. */
#include "kindpolicy.h"

#include <assert.h>
#include <stdlib.h>

static const kindpolicy_t policies[JOB_KIND__COUNT] = {
    [JOB_KIND_FIX] = {0, 1, KINDPOLICY_CLOCK_CODE, 0},
    [JOB_KIND_FOLLOWUP] = {0, 1, KINDPOLICY_CLOCK_CODE, 0},
    [JOB_KIND_REVIEW] = {0, 1, KINDPOLICY_CLOCK_CODE, 0},
    /* help and stop only answer: they never wait behind a long job on the same issue */
    [JOB_KIND_HELP] = {0, 0, KINDPOLICY_CLOCK_FIXED, 120},
    [JOB_KIND_STOP] = {0, 0, KINDPOLICY_CLOCK_FIXED, 120},
    [JOB_KIND_NOOP] = {0, 1, KINDPOLICY_CLOCK_FIXED, 60},
    /* an ask changes nothing it could share with another job (its own work
     * tree, no branch), so a question is never stuck behind a long fix */
    [JOB_KIND_ASK] = {0, 0, KINDPOLICY_CLOCK_ASK, 0},
};

const kindpolicy_t *kindpolicy_get(job_kind_t kind)
{
    assert(kind >= 0 && kind < JOB_KIND__COUNT);
    return &policies[kind];
}

int kindpolicy_max_attempts(job_kind_t kind, const config_t *cfg)
{
    const kindpolicy_t *k = kindpolicy_get(kind);
    return k->max_attempts > 0 ? k->max_attempts : cfg->workers.max_attempts;
}

int64_t kindpolicy_timeout_ms(job_kind_t kind, const config_t *cfg, const json_t *record)
{
    const kindpolicy_t *k = kindpolicy_get(kind);
    int64_t s = k->timeout_s;
    if (k->clock == KINDPOLICY_CLOCK_CODE) /* the agent runs once, then once more per round of failing tests */
        s = (int64_t)cfg->agent.timeout * (1 + cfg->agent.test_rounds) + KINDPOLICY_CODE_OVERHEAD_S;
    else if (k->clock == KINDPOLICY_CLOCK_ASK) /* one run of the agent, nothing to test */
        s = (int64_t)(cfg->ask.timeout > 0 ? cfg->ask.timeout : cfg->agent.timeout) + KINDPOLICY_CODE_OVERHEAD_S;
    int64_t ms = s * 1000;
    const char *v = json_string_value(json_object_get(record, "timeout_ms"));
    json_int_t n = json_integer_value(json_object_get(record, "timeout_ms"));
    if (v != NULL)
        n = strtoll(v, NULL, 10);
    if (n > 0 && n < ms)
        ms = n;
    return ms;
}
