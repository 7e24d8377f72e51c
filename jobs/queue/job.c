/* job — see job.h. */
#include "job.h"

#include <assert.h>
#include <string.h>

static const char *const kind_names[JOB_KIND__COUNT] = {"fix", "followup", "review", "help", "stop", "noop", "ask"};
static const char *const status_names[JOB_STATUS__COUNT] = {"queued",    "running",   "succeeded",
                                                            "failed",    "cancelled", "dead"};

const char *job_kind_name(job_kind_t kind)
{
    assert(kind >= 0 && kind < JOB_KIND__COUNT);
    return kind_names[kind];
}

int job_kind_parse(const char *name)
{
    for (int i = 0; i < JOB_KIND__COUNT; i++)
        if (strcmp(kind_names[i], name) == 0)
            return i;
    return -1;
}

const char *job_status_name(job_status_t status)
{
    assert(status >= 0 && status < JOB_STATUS__COUNT);
    return status_names[status];
}

int job_status_parse(const char *name)
{
    for (int i = 0; i < JOB_STATUS__COUNT; i++)
        if (strcmp(status_names[i], name) == 0)
            return i;
    return -1;
}

void job_fields_add(job_fields_t *f, const char *name, const char *value)
{
    assert(f->count < JOB_MAX_FIELDS);
    f->items[f->count].name = name;
    f->items[f->count].value = value;
    f->count++;
}

const char *job_fields_get(const job_fields_t *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->items[i].name, name) == 0)
            return f->items[i].value;
    return NULL;
}

int job_transition_allowed(job_status_t from, job_status_t to)
{
#define JOB_ALLOW(F, T, f, t)                                                                                           \
    if (from == JOB_##F && to == JOB_##T)                                                                               \
        return 1;
    JOB_TRANSITIONS(JOB_ALLOW)
#undef JOB_ALLOW
    return 0;
}

int job_status_is_final(job_status_t status)
{
    return status == JOB_SUCCEEDED || status == JOB_FAILED || status == JOB_CANCELLED || status == JOB_DEAD;
}

int64_t job_retry_delay_ms(int attempts, int64_t base_ms, int64_t max_ms, uint64_t random)
{
    if (base_ms < 1)
        base_ms = 1;
    if (max_ms < base_ms)
        max_ms = base_ms;
    int64_t d = base_ms;
    for (int i = 1; i < attempts && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    if (d > max_ms)
        d = max_ms;
    /* uniform in [d - d*J/100, d + d*J/100] */
    int64_t spread = d * JOB_RETRY_JITTER_PCT / 100;
    if (spread > 0)
        d += (int64_t)(random % (uint64_t)(2 * spread + 1)) - spread;
    return d < 1 ? 1 : d;
}
