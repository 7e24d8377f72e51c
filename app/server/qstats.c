/* qstats — see qstats.h. */
#include "qstats.h"
#include "app/common/bgthread.h"
#include "app/common/clock.h"
#include "app/github/ghbudget.h"
#include "jobs/queue/qmetrics.h"

#include <stdlib.h>
#include <string.h>

struct qstats_s {
    const redisconn_url_t *url;
    bgthread_t bg;
    char *text;      /* guarded by bg's lock; NULL when the last read failed */
    size_t len;      /* guarded by bg's lock */
    int64_t read_ms; /* guarded by bg's lock; wall clock of the last good read */
};

/* Which installations GitHub's limits hold now, and until when: read from
 * the waits every process records (ghbudget.h). */
static int github_waits(redisContext *c, strbuf_t *out)
{
    ghbudget_wait_t w[QSTATS_GITHUB_WAITS_MAX];
    size_t n = 0;
    if (ghbudget_waits(c, w, QSTATS_GITHUB_WAITS_MAX, &n, clock_wall_ms()) != 0)
        return -1;
    strbuf_append(out, "# HELP patchbay_github_waiting Installations that make no GitHub call until a wait ends, by "
                       "reason: primary (rate limit spent), secondary (secondary limit), content (content budget).\n"
                       "# TYPE patchbay_github_waiting gauge\n");
    for (size_t i = 0; i < n; i++)
        strbuf_appendf(out, "patchbay_github_waiting{installation=\"%lld\",reason=\"%s\"} 1\n",
                       (long long)w[i].installation, ghbudget_why_name(w[i].why));
    strbuf_append(out, "# HELP patchbay_github_wait_until_seconds When that wait ends (Unix time).\n"
                       "# TYPE patchbay_github_wait_until_seconds gauge\n");
    for (size_t i = 0; i < n; i++)
        strbuf_appendf(out, "patchbay_github_wait_until_seconds{installation=\"%lld\",reason=\"%s\"} %.3f\n",
                       (long long)w[i].installation, ghbudget_why_name(w[i].why), (double)w[i].until_ms / 1000.0);
    return 0;
}

static void *qstats_main(void *arg)
{
    qstats_t *q = arg;
    redisContext *c = NULL;
    bgthread_lock(&q->bg);
    while (!bgthread_stopping(&q->bg)) {
        bgthread_unlock(&q->bg);
        char err[REDISCONN_ERR_BYTES];
        if (c == NULL || c->err) {
            if (c != NULL)
                redisFree(c);
            c = redisconn_connect(q->url, QSTATS_REDIS_TIMEOUT_MS, QSTATS_REDIS_TIMEOUT_MS, err, sizeof(err));
        }
        strbuf_t b = STRBUF_INIT;
        int ok = c != NULL && qmetrics_render(c, &b, err, sizeof(err)) == 0 && github_waits(c, &b) == 0 &&
                 !b.truncated;
        size_t len = 0;
        char *text = ok ? strbuf_detach(&b, &len) : NULL;
        strbuf_free(&b);

        bgthread_lock(&q->bg);
        free(q->text);
        q->text = text;
        q->len = len;
        if (ok)
            q->read_ms = clock_wall_ms();
        bgthread_sleep(&q->bg, QSTATS_INTERVAL_MS);
    }
    bgthread_unlock(&q->bg);
    if (c != NULL)
        redisFree(c);
    return NULL;
}

qstats_t *qstats_start(const redisconn_url_t *url)
{
    qstats_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->url = url;
    if (bgthread_start(&q->bg, qstats_main, q) != 0) {
        free(q);
        return NULL;
    }
    return q;
}

void qstats_render(qstats_t *q, strbuf_t *out)
{
    if (q == NULL)
        return;
    bgthread_lock(&q->bg);
    int up = q->text != NULL;
    if (up)
        strbuf_appendn(out, q->text, q->len);
    double age = up ? (double)(clock_wall_ms() - q->read_ms) / 1000.0 : 0;
    bgthread_unlock(&q->bg);
    strbuf_appendf(out,
                   "# HELP patchbay_queue_metrics_up Whether the queue metrics above could be read from Redis.\n"
                   "# TYPE patchbay_queue_metrics_up gauge\npatchbay_queue_metrics_up %d\n"
                   "# HELP patchbay_queue_metrics_age_seconds How old the queue metrics above are.\n"
                   "# TYPE patchbay_queue_metrics_age_seconds gauge\npatchbay_queue_metrics_age_seconds %.3f\n",
                   up, age);
}

void qstats_stop(qstats_t *q)
{
    if (q == NULL)
        return;
    bgthread_stop(&q->bg);
    free(q->text);
    free(q);
}
