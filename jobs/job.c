/* job — see job.h. */
#include "job.h"

#include <assert.h>
#include <string.h>

static const char *const kind_names[JOB_KIND__COUNT] = {"fix", "followup", "review", "help", "stop", "noop"};
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
