/* progressgh — see progressgh.h. */
#include "progressgh.h"
#include "app/common/clock.h"
#include "app/common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct progressgh_s {
    ghapi_app_t *app;
    ghapi_repo_t r;
    int64_t comment_id;
    int64_t interval_ms;
    char *delivery, *job;

    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cond;
    char *body, *same;  /* the newest state not yet sent, or NULL */
    char *shown;        /* the clock-free text GitHub shows now */
    int64_t sent_ms;    /* monotonic time of the last edit (or of the comment) */
    int sending;        /* the thread is in an exchange */
    int stopping;
    int edits;
};

/* The clock-free text GitHub shows, updated after a good edit. Under mu. */
static void set_shown(progressgh_t *p, const char *same)
{
    char *s = strdup(same);
    if (s != NULL) {
        free(p->shown);
        p->shown = s;
    }
}

static void *edit_thread(void *arg)
{
    progressgh_t *p = arg;
    ghapi_t *gh = ghapi_new(p->app);
    if (gh != NULL)
        ghapi_set_log_ids(gh, p->delivery, p->job);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        if (p->body == NULL) {
            pthread_cond_wait(&p->cond, &p->mu);
            continue;
        }
        int64_t due = p->sent_ms + p->interval_ms, now = clock_mono_ms();
        if (now < due) {
            /* the condition variable waits on the monotonic clock (see progressgh_open) */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t left = due - now;
            ts.tv_sec += (time_t)(left / 1000);
            ts.tv_nsec += (long)(left % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cond, &p->mu, &ts);
            continue;
        }
        char *body = p->body, *same = p->same;
        p->body = p->same = NULL;
        p->sending = 1;
        pthread_mutex_unlock(&p->mu);

        int rc = gh ? ghapi_comment_update(NULL, gh, &p->r, p->comment_id, body, GHAPI_CALL_LOW_PRIORITY)
                    : GHAPI_ERR_PERMANENT;
        if (rc != GHAPI_OK && rc != GHAPI_ERR_DEFERRED)
            log_warn(p->delivery, p->job, "progress comment not updated: %s", gh ? ghapi_error(gh) : "out of memory");

        pthread_mutex_lock(&p->mu);
        p->sending = 0;
        p->sent_ms = clock_mono_ms();
        if (rc == GHAPI_OK) {
            p->edits++;
            set_shown(p, same);
            free(body);
            free(same);
        } else if (p->body == NULL && rc == GHAPI_ERR_DEFERRED) {
            /* the budget said not now: this state goes again after the interval */
            p->body = body;
            p->same = same;
        } else {
            free(body);
            free(same);
        }
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
    ghapi_free(gh);
    return NULL;
}

progressgh_t *progressgh_open(ghapi_app_t *app, const ghapi_repo_t *r, int64_t comment_id, const char *shown,
                              int64_t interval_ms, const char *delivery, const char *job)
{
    progressgh_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->app = app;
    p->r = *r;
    p->comment_id = comment_id;
    p->interval_ms = interval_ms;
    p->sent_ms = clock_mono_ms();
    p->shown = strdup(shown ? shown : "");
    p->delivery = delivery ? strdup(delivery) : NULL;
    p->job = job ? strdup(job) : NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->mu, NULL);
    if (p->shown == NULL || (delivery && p->delivery == NULL) || (job && p->job == NULL) ||
        pthread_create(&p->thread, NULL, edit_thread, p) != 0) {
        progressgh_close(p);
        return NULL;
    }
    p->started = 1;
    return p;
}

void progressgh_update(progressgh_t *p, const char *body, const char *same)
{
    pthread_mutex_lock(&p->mu);
    int unchanged = p->shown != NULL && strcmp(p->shown, same) == 0;
    if (!p->stopping) {
        free(p->body);
        free(p->same);
        p->body = p->same = NULL;
        /* the same checklist as GitHub shows (a step went back and forth): nothing to send */
        if (!unchanged) {
            p->body = strdup(body);
            p->same = strdup(same);
            if (p->body == NULL || p->same == NULL) {
                free(p->body);
                free(p->same);
                p->body = p->same = NULL;
            }
        }
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Stops the thread; an edit under way is waited for. */
static void stop_thread(progressgh_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    free(p->body);
    free(p->same);
    p->body = p->same = NULL;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (p->started) {
        pthread_join(p->thread, NULL);
        p->started = 0;
    }
}

int progressgh_finish(progressgh_t *p, ghapi_t *gh, const char *body, const char *same)
{
    stop_thread(p);
    if (p->shown != NULL && strcmp(p->shown, same) == 0)
        return GHAPI_OK;
    int rc = ghapi_comment_update(NULL, gh, &p->r, p->comment_id, body, 0);
    if (rc == GHAPI_OK) {
        p->edits++;
        set_shown(p, same);
    }
    return rc;
}

int progressgh_edits(const progressgh_t *p)
{
    return p->edits;
}

void progressgh_close(progressgh_t *p)
{
    if (p == NULL)
        return;
    stop_thread(p);
    free(p->body);
    free(p->same);
    free(p->shown);
    free(p->delivery);
    free(p->job);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
