/*
 * test_bgthread — the background-thread helper the server's modules share:
 * a wake-up reaches a waiting thread, a long sleep ends at once when stop is
 * asked (a server must not take its reconcile interval to shut down), and
 * stopping a thread that never started is harmless.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "app/common/bgthread.h"
#include "app/common/clock.h"

typedef struct {
    bgthread_t bg;
    int items;   /* guarded by bg's lock */
    int handled; /* guarded by bg's lock */
    int timeouts;
} waiter_t;

static void *waiter_main(void *arg)
{
    waiter_t *w = arg;
    bgthread_lock(&w->bg);
    while (!bgthread_stopping(&w->bg)) {
        if (w->items > 0) {
            w->items--;
            w->handled++;
            continue;
        }
        if (bgthread_wait(&w->bg, 50) == BGTHREAD_TIMEOUT)
            w->timeouts++;
    }
    bgthread_unlock(&w->bg);
    return NULL;
}

static void test_wake_and_stop(void **state)
{
    (void)state;
    waiter_t w = {0};
    assert_int_equal(bgthread_start(&w.bg, waiter_main, &w), 0);
    for (int i = 0; i < 3; i++) {
        bgthread_lock(&w.bg);
        w.items++;
        bgthread_wake(&w.bg);
        bgthread_unlock(&w.bg);
    }
    int64_t until = clock_mono_ms() + 5000;
    int handled = 0;
    while (handled < 3 && clock_mono_ms() < until) {
        bgthread_lock(&w.bg);
        handled = w.handled;
        bgthread_unlock(&w.bg);
    }
    assert_int_equal(handled, 3);
    bgthread_stop(&w.bg);
    assert_int_equal(w.items, 0);
    bgthread_stop(&w.bg); /* a second stop is harmless */
}

static void *sleeper_main(void *arg)
{
    bgthread_t *bg = arg;
    bgthread_lock(bg);
    while (!bgthread_stopping(bg))
        bgthread_sleep(bg, 3600 * 1000);
    bgthread_unlock(bg);
    return NULL;
}

static void test_stop_ends_a_long_sleep(void **state)
{
    (void)state;
    bgthread_t bg;
    assert_int_equal(bgthread_start(&bg, sleeper_main, &bg), 0);
    int64_t t0 = clock_mono_ms();
    bgthread_stop(&bg);
    assert_true(clock_mono_ms() - t0 < 5000); /* not the hour it asked for */
}

static void test_stop_without_start(void **state)
{
    (void)state;
    bgthread_t bg = {0};
    bgthread_stop(&bg);
    assert_int_equal(bg.started, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_and_stop),
        cmocka_unit_test(test_stop_ends_a_long_sleep),
        cmocka_unit_test(test_stop_without_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
