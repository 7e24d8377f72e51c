/* bgthread — see bgthread.h. */
#include "bgthread.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int bgthread_start(bgthread_t *t, void *(*main_fn)(void *), void *arg)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->tid, NULL, main_fn, arg) != 0) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cond);
        return -1;
    }
    t->started = 1;
    return 0;
}

void bgthread_stop(bgthread_t *t)
{
    if (!t->started)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->tid, NULL);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    t->started = 0;
}

void bgthread_lock(bgthread_t *t)
{
    pthread_mutex_lock(&t->mu);
}

void bgthread_unlock(bgthread_t *t)
{
    pthread_mutex_unlock(&t->mu);
}

void bgthread_wake(bgthread_t *t)
{
    pthread_cond_signal(&t->cond);
}

int bgthread_stopping(const bgthread_t *t)
{
    return t->stopping;
}

/* CLOCK_REALTIME: the clock pthread_cond_timedwait measures by default. */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int bgthread_wait(bgthread_t *t, int64_t ms)
{
    if (ms < 0) {
        pthread_cond_wait(&t->cond, &t->mu);
        return 0;
    }
    struct timespec until = deadline_in(ms);
    return pthread_cond_timedwait(&t->cond, &t->mu, &until) == ETIMEDOUT ? BGTHREAD_TIMEOUT : 0;
}

void bgthread_sleep(bgthread_t *t, int64_t ms)
{
    struct timespec until = deadline_in(ms);
    while (!t->stopping && pthread_cond_timedwait(&t->cond, &t->mu, &until) != ETIMEDOUT)
        ;
}
