/*
 * test_job — the job state machine and the retry backoff: every legal move
 * and no other, the same table in the queue's Lua, names that round-trip,
 * and delays that double, cap and stay inside their jitter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "jobs/queue/job.h"
#include "jobs/queue/queue.h"

/* The moves DESIGN.md and job.h describe, written out independently of the macro. */
static const char *const expected_moves[] = {
    "queued>running",   "queued>cancelled",  "queued>dead",       "running>succeeded", "running>failed",
    "running>queued",   "running>cancelled", "running>dead",      "failed>queued",     "dead>queued",
    "cancelled>queued", NULL};

static int expected(job_status_t from, job_status_t to)
{
    char move[64];
    snprintf(move, sizeof(move), "%s>%s", job_status_name(from), job_status_name(to));
    for (size_t i = 0; expected_moves[i] != NULL; i++)
        if (strcmp(expected_moves[i], move) == 0)
            return 1;
    return 0;
}

static void test_transitions(void **state)
{
    (void)state;
    int allowed = 0;
    for (int f = 0; f < JOB_STATUS__COUNT; f++) {
        for (int t = 0; t < JOB_STATUS__COUNT; t++) {
            int ok = job_transition_allowed((job_status_t)f, (job_status_t)t);
            if (ok != expected((job_status_t)f, (job_status_t)t))
                fail_msg("%s -> %s: allowed=%d", job_status_name((job_status_t)f), job_status_name((job_status_t)t), ok);
            allowed += ok;
        }
    }
    assert_int_equal(allowed, 11);
    /* nothing leaves succeeded; nothing moves to itself */
    for (int t = 0; t < JOB_STATUS__COUNT; t++) {
        assert_false(job_transition_allowed(JOB_SUCCEEDED, (job_status_t)t));
        assert_false(job_transition_allowed((job_status_t)t, (job_status_t)t));
    }
}

/* Both scripts carry the same table, generated from JOB_TRANSITIONS. */
static void test_lua_has_the_same_table(void **state)
{
    (void)state;
    const char *scripts[] = {QUEUE_ENQUEUE_LUA, QUEUE_WORK_LUA};
    for (size_t s = 0; s < 2; s++) {
        int lines = 0;
        for (const char *p = strstr(scripts[s], "ALLOWED."); p != NULL; p = strstr(p + 1, "ALLOWED.")) {
            char from[16], to[16];
            assert_int_equal(sscanf(p, "ALLOWED.%15[a-z].%15[a-z] = true", from, to), 2);
            assert_true(job_transition_allowed((job_status_t)job_status_parse(from), (job_status_t)job_status_parse(to)));
            lines++;
        }
        assert_int_equal(lines, 11);
    }
}

static void test_final_states(void **state)
{
    (void)state;
    assert_false(job_status_is_final(JOB_QUEUED));
    assert_false(job_status_is_final(JOB_RUNNING));
    assert_true(job_status_is_final(JOB_SUCCEEDED));
    assert_true(job_status_is_final(JOB_FAILED));
    assert_true(job_status_is_final(JOB_CANCELLED));
    assert_true(job_status_is_final(JOB_DEAD));
    /* a final state is left only by a manual retry, back to queued */
    for (int f = 0; f < JOB_STATUS__COUNT; f++)
        for (int t = 0; t < JOB_STATUS__COUNT; t++)
            if (job_status_is_final((job_status_t)f) && job_transition_allowed((job_status_t)f, (job_status_t)t))
                assert_int_equal(t, JOB_QUEUED);
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < JOB_STATUS__COUNT; i++)
        assert_int_equal(job_status_parse(job_status_name((job_status_t)i)), i);
    for (int i = 0; i < JOB_KIND__COUNT; i++)
        assert_int_equal(job_kind_parse(job_kind_name((job_kind_t)i)), i);
    assert_int_equal(job_status_parse("Queued"), -1);
    assert_int_equal(job_kind_parse(""), -1);
}

static void test_backoff_doubles_and_caps(void **state)
{
    (void)state;
    /* random = spread: the top of the jitter range; 0: its bottom */
    int64_t base = 1000, max = 60000;
    for (int attempt = 1; attempt <= 12; attempt++) {
        int64_t nominal = base << (attempt - 1);
        if (nominal > max)
            nominal = max;
        int64_t spread = nominal * JOB_RETRY_JITTER_PCT / 100;
        assert_int_equal(job_retry_delay_ms(attempt, base, max, 0), nominal - spread);
        assert_int_equal(job_retry_delay_ms(attempt, base, max, (uint64_t)(2 * spread)), nominal + spread);
        assert_int_equal(job_retry_delay_ms(attempt, base, max, (uint64_t)spread), nominal);
    }
    /* huge attempt counts never overflow */
    assert_int_equal(job_retry_delay_ms(1000000, base, max, 60000 * JOB_RETRY_JITTER_PCT / 100), max);
}

static void test_backoff_jitter_stays_in_range(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t d = job_retry_delay_ms(3, 100, 100000, x);
        assert_in_range(d, 300, 500); /* 400 +-25% */
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 320 && hi > 480); /* it does spread */
}

static void test_backoff_odd_inputs(void **state)
{
    (void)state;
    assert_int_equal(job_retry_delay_ms(0, 1000, 60000, 250), 1000); /* no failures yet: the base */
    assert_int_equal(job_retry_delay_ms(-5, 1000, 60000, 250), 1000);
    assert_int_equal(job_retry_delay_ms(3, 5000, 1000, 1250), 5000); /* a cap below the base: the base */
    assert_int_equal(job_retry_delay_ms(1, 0, 0, 12345), 1);         /* never 0 */
    assert_int_equal(job_retry_delay_ms(1, 2, 2, 99), 2);            /* no room for jitter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions),          cmocka_unit_test(test_lua_has_the_same_table),
        cmocka_unit_test(test_final_states),         cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_backoff_doubles_and_caps), cmocka_unit_test(test_backoff_jitter_stays_in_range),
        cmocka_unit_test(test_backoff_odd_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
