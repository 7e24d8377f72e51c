/*
 * bgthread — the one background thread a module keeps beside the event loops
 * or the worker (the spool's ingress, reconciliation, the dashboard's Redis
 * reads, the queue metrics): a thread, the mutex and condition variable that
 * guard the module's own state and wake the thread, and a stop that asks,
 * wakes and joins.
 *
 *     bgthread_start(&m->bg, main, m);      // main: lock, loop until stopping, unlock
 *     ...  bgthread_lock(&m->bg); put work; bgthread_wake(&m->bg); bgthread_unlock(&m->bg);
 *     bgthread_stop(&m->bg);                // after it, m's state is the caller's alone
 *
 * Inside main, bgthread_wait and bgthread_sleep are called with the lock
 * held, like pthread_cond_wait. Memory: none of its own; the struct lives in
 * its module's object. Any thread may wake; one thread starts and stops.
 */
#ifndef PATCHBAY_BGTHREAD_H
#define PATCHBAY_BGTHREAD_H

#include <pthread.h>
#include <stdint.h>

typedef struct {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stopping; /* guarded by mu */
    int started;  /* the starter's own: whether stop must join */
} bgthread_t;

#define BGTHREAD_TIMEOUT 1

/* Initialises t and starts main(arg). 0, or -1 when no thread could be
 * created (t is then left as if stopped: nothing to free). */
int bgthread_start(bgthread_t *t, void *(*main_fn)(void *), void *arg);

/* Asks the thread to stop, wakes it, joins it and frees the mutex and
 * condition variable. Harmless on a thread that never started. */
void bgthread_stop(bgthread_t *t);

void bgthread_lock(bgthread_t *t);
void bgthread_unlock(bgthread_t *t);

/* Wakes the thread from bgthread_wait (call with the lock held, after
 * changing what it waits for, so the wake-up cannot be lost). */
void bgthread_wake(bgthread_t *t);

/* Whether stop was asked (lock held). */
int bgthread_stopping(const bgthread_t *t);

/* Lock held: waits once, for a wake-up or ms milliseconds (ms < 0: no
 * limit). BGTHREAD_TIMEOUT when the time ran out, else 0 (woken, or woken
 * spuriously: the caller looks at its state either way). */
int bgthread_wait(bgthread_t *t, int64_t ms);

/* Lock held: waits the whole ms, returning early only when asked to stop. */
void bgthread_sleep(bgthread_t *t, int64_t ms);

#endif
