/* qstats — see qstats.h. */
#include "qstats.h"
#include "app/common/clock.h"
#include "jobs/queue/qmetrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct qstats_s {
    const redisconn_url_t *url;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stopping;    /* guarded by mu */
    char *text;      /* guarded by mu; NULL when the last read failed */
    size_t len;      /* guarded by mu */
    int64_t read_ms; /* guarded by mu; wall clock of the last good read */
};

static void *qstats_main(void *arg)
{
    qstats_t *q = arg;
    redisContext *c = NULL;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping) {
        pthread_mutex_unlock(&q->mu);
        char err[REDISCONN_ERR_BYTES];
        if (c == NULL || c->err) {
            if (c != NULL)
                redisFree(c);
            c = redisconn_connect(q->url, QSTATS_REDIS_TIMEOUT_MS, QSTATS_REDIS_TIMEOUT_MS, err, sizeof(err));
        }
        strbuf_t b = STRBUF_INIT;
        int ok = c != NULL && qmetrics_render(c, &b, err, sizeof(err)) == 0 && !b.truncated;
        size_t len = 0;
        char *text = ok ? strbuf_detach(&b, &len) : NULL;
        strbuf_free(&b);

        pthread_mutex_lock(&q->mu);
        free(q->text);
        q->text = text;
        q->len = len;
        if (ok)
            q->read_ms = clock_wall_ms();
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += QSTATS_INTERVAL_MS / 1000;
        until.tv_nsec += (long)(QSTATS_INTERVAL_MS % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!q->stopping && pthread_cond_timedwait(&q->cond, &q->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&q->mu);
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
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    if (pthread_create(&q->tid, NULL, qstats_main, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cond);
        free(q);
        return NULL;
    }
    return q;
}

void qstats_render(qstats_t *q, strbuf_t *out)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->mu);
    int up = q->text != NULL;
    if (up)
        strbuf_appendn(out, q->text, q->len);
    double age = up ? (double)(clock_wall_ms() - q->read_ms) / 1000.0 : 0;
    pthread_mutex_unlock(&q->mu);
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
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->tid, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    free(q->text);
    free(q);
}
