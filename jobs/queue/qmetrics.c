/* qmetrics — see qmetrics.h. */
#include "qmetrics.h"
#include "job.h"
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcomes[] = {"succeeded", "failed", "cancelled", "dead"};
static const char *const requeue_reasons[] = {"crash", "reclaim", "shutdown", "reconnect"};

/* Reads one counter from HGETALL's flat reply; 0 when absent. */
static long long counter(const redisReply *h, const char *name)
{
    for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0 &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return strtoll(h->element[i + 1]->str, NULL, 10);
    return 0;
}

static long long counterf(const redisReply *h, const char *fmt, const char *a, int b)
{
    char name[128];
    snprintf(name, sizeof(name), fmt, a, b);
    return counter(h, name);
}

int qmetrics_render(redisContext *c, strbuf_t *out, char *err, size_t err_len)
{
    enum { FIXED = 5 };
    /* TIME, metrics, workers, delayed, stream, dead; then per kind ZCARD + oldest */
    redisAppendCommand(c, "TIME");
    redisAppendCommand(c, "HGETALL %s", QUEUE_METRICS);
    redisAppendCommand(c, "HGETALL %s", QUEUE_WORKERS);
    redisAppendCommand(c, "ZCARD %s", QUEUE_DELAYED);
    redisAppendCommand(c, "XLEN %s", QUEUE_STREAM);
    redisAppendCommand(c, "XLEN %s", QUEUE_DEAD);
    for (int k = 0; k < JOB_KIND__COUNT; k++) {
        redisAppendCommand(c, "ZCARD %s%s", QUEUE_QUEUED_PREFIX, job_kind_name((job_kind_t)k));
        redisAppendCommand(c, "ZRANGE %s%s 0 0 WITHSCORES", QUEUE_QUEUED_PREFIX, job_kind_name((job_kind_t)k));
    }
    size_t n = FIXED + 1 + 2 * JOB_KIND__COUNT;
    redisReply *r[FIXED + 1 + 2 * JOB_KIND__COUNT] = {0};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (redisGetReply(c, (void **)&r[i]) != REDIS_OK || r[i] == NULL) {
            snprintf(err, err_len, "Redis: %s", c->errstr);
            rc = -1;
            break;
        }
        if (r[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, err_len, "Redis: %.200s", r[i]->str);
            rc = -1;
        }
    }
    if (rc != 0)
        goto done;
    redisReply *time_r = r[0], *m = r[1], *workers = r[2];
    double now_s = 0;
    if (time_r->type == REDIS_REPLY_ARRAY && time_r->elements == 2)
        now_s = strtod(time_r->element[0]->str, NULL) + strtod(time_r->element[1]->str, NULL) / 1e6;

    strbuf_append(out, "# HELP patchbay_queue_depth Jobs queued and not yet running (retries and jobs waiting for "
                       "their issue's lock included), by kind.\n# TYPE patchbay_queue_depth gauge\n");
    for (int k = 0; k < JOB_KIND__COUNT; k++)
        strbuf_appendf(out, "patchbay_queue_depth{kind=\"%s\"} %lld\n", job_kind_name((job_kind_t)k),
                       r[FIXED + 1 + 2 * k]->integer);
    strbuf_append(out, "# HELP patchbay_queue_oldest_age_seconds How long the longest-waiting queued job of a kind "
                       "has waited (0 when none).\n# TYPE patchbay_queue_oldest_age_seconds gauge\n");
    for (int k = 0; k < JOB_KIND__COUNT; k++) {
        const redisReply *z = r[FIXED + 2 + 2 * k];
        double age = 0;
        if (z->type == REDIS_REPLY_ARRAY && z->elements == 2 && now_s > 0) {
            age = now_s - strtod(z->element[1]->str, NULL) / 1000.0;
            if (age < 0)
                age = 0;
        }
        strbuf_appendf(out, "patchbay_queue_oldest_age_seconds{kind=\"%s\"} %.3f\n", job_kind_name((job_kind_t)k), age);
    }
    strbuf_appendf(out,
                   "# HELP patchbay_queue_delayed Queued jobs waiting for a retry's backoff or their issue's lock.\n"
                   "# TYPE patchbay_queue_delayed gauge\npatchbay_queue_delayed %lld\n"
                   "# HELP patchbay_queue_stream_entries Entries in the queue stream: not yet taken, or running.\n"
                   "# TYPE patchbay_queue_stream_entries gauge\npatchbay_queue_stream_entries %lld\n"
                   "# HELP patchbay_dead_letter_entries Entries in the dead-letter stream (capped at %d).\n"
                   "# TYPE patchbay_dead_letter_entries gauge\npatchbay_dead_letter_entries %lld\n",
                   r[3]->integer, r[4]->integer, QUEUE_DEAD_MAX_ENTRIES, r[5]->integer);

    strbuf_append(out, "# HELP patchbay_jobs_total Jobs that reached a final state, by kind and outcome.\n"
                       "# TYPE patchbay_jobs_total counter\n");
    for (int k = 0; k < JOB_KIND__COUNT; k++)
        for (size_t o = 0; o < sizeof(outcomes) / sizeof(outcomes[0]); o++) {
            char name[64];
            snprintf(name, sizeof(name), "jobs:%s:%s", job_kind_name((job_kind_t)k), outcomes[o]);
            strbuf_appendf(out, "patchbay_jobs_total{kind=\"%s\",outcome=\"%s\"} %lld\n", job_kind_name((job_kind_t)k),
                           outcomes[o], counter(m, name));
        }
    static const struct {
        const char *metric, *help, *field;
    } per_kind[] = {
        {"patchbay_job_runs_started_total", "Runs started (attempts), by kind.", "started:%s"},
        {"patchbay_job_retries_total", "Runs that failed and were scheduled to run again, by kind.", "retries:%s"},
        {"patchbay_job_lock_waits_total", "Times a job found its issue locked by another job and waited, by kind.",
         "waits:%s"},
        {"patchbay_job_github_waits_total",
         "Runs handed back to the queue to wait for GitHub (a rate limit or the content budget), by kind; the "
         "attempt does not count.",
         "github_waits:%s"},
    };
    for (size_t i = 0; i < sizeof(per_kind) / sizeof(per_kind[0]); i++) {
        strbuf_appendf(out, "# HELP %s %s\n# TYPE %s counter\n", per_kind[i].metric, per_kind[i].help,
                       per_kind[i].metric);
        for (int k = 0; k < JOB_KIND__COUNT; k++)
            strbuf_appendf(out, "%s{kind=\"%s\"} %lld\n", per_kind[i].metric, job_kind_name((job_kind_t)k),
                           counterf(m, per_kind[i].field, job_kind_name((job_kind_t)k), 0));
    }
    strbuf_append(out, "# HELP patchbay_jobs_requeued_total Running jobs put back in the queue: their worker crashed "
                       "(crash), went silent past the lease (reclaim), stopped (shutdown) or lost its connection "
                       "(reconnect).\n# TYPE patchbay_jobs_requeued_total counter\n");
    for (size_t i = 0; i < sizeof(requeue_reasons) / sizeof(requeue_reasons[0]); i++)
        strbuf_appendf(out, "patchbay_jobs_requeued_total{reason=\"%s\"} %lld\n", requeue_reasons[i],
                       counterf(m, "requeued:%s", requeue_reasons[i], 0));
    strbuf_appendf(out,
                   "# HELP patchbay_jobs_malformed_total Stream entries or job records that could not be read; "
                   "dead-lettered.\n# TYPE patchbay_jobs_malformed_total counter\npatchbay_jobs_malformed_total %lld\n",
                   counter(m, "malformed"));

    strbuf_append(out, "# HELP patchbay_job_duration_seconds How long runs took, from start to outcome, by kind.\n"
                       "# TYPE patchbay_job_duration_seconds histogram\n");
    for (int k = 0; k < JOB_KIND__COUNT; k++) {
        const char *kind = job_kind_name((job_kind_t)k);
        long long cum = 0;
        for (int b = 0; b <= QUEUE_DURATION_BUCKETS; b++) {
            cum += counterf(m, "duration_bucket:%s:%d", kind, b + 1);
            if (b < QUEUE_DURATION_BUCKETS)
                strbuf_appendf(out, "patchbay_job_duration_seconds_bucket{kind=\"%s\",le=\"%g\"} %lld\n", kind,
                               (double)QUEUE_DURATION_BUCKETS_MS[b] / 1000.0, cum);
            else
                strbuf_appendf(out, "patchbay_job_duration_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %lld\n", kind, cum);
        }
        strbuf_appendf(out, "patchbay_job_duration_seconds_sum{kind=\"%s\"} %.3f\n", kind,
                       (double)counterf(m, "duration_sum_ms:%s", kind, 0) / 1000.0);
        strbuf_appendf(out, "patchbay_job_duration_seconds_count{kind=\"%s\"} %lld\n", kind,
                       counterf(m, "duration_count:%s", kind, 0));
    }

    long long busy = 0, idle = 0;
    for (size_t i = 1; workers->type == REDIS_REPLY_ARRAY && i < workers->elements; i += 2) {
        const char *v = workers->element[i]->str;
        if (v != NULL && strncmp(v, "busy", 4) == 0)
            busy++;
        else if (v != NULL)
            idle++;
    }
    strbuf_appendf(out,
                   "# HELP patchbay_workers Worker processes seen recently, on every machine, by state.\n"
                   "# TYPE patchbay_workers gauge\npatchbay_workers{state=\"busy\"} %lld\n"
                   "patchbay_workers{state=\"idle\"} %lld\n",
                   busy, idle);
done:
    for (size_t i = 0; i < n; i++)
        if (r[i] != NULL)
            freeReplyObject(r[i]);
    return rc;
}
