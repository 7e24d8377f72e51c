/*
 * test_ghbudget — GitHub's limits kept per installation through a real
 * redis-server (a private one, started here and stopped by PID), as two
 * processes of one deployment see them: two ghshare_t/ghbudget_t pairs with
 * books of their own, one Redis between them. Time is passed in, so every
 * wait is asserted to the millisecond without sleeping. The same rules
 * without Redis, for the threads of one process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/common/redisconn.h"
#include "app/github/ghbudget.h"
#include "jobs/queue/redisproc.h"

static redisproc_t rp;
static redisconn_url_t url;
static char dir[4096];

static int64_t never_now(void *ctx)
{
    (void)ctx;
    return 0; /* tokens are not used here */
}

/* One process of the deployment: its own books, its own connection. */
typedef struct {
    ghbudget_local_t *local;
    ghshare_local_t *slocal;
    ghshare_t *share;
    ghbudget_t *b;
    ghbudget_limits_t limits;
} proc_t;

static void proc_open(proc_t *p, const ghbudget_limits_t *limits, int with_redis)
{
    memset(p, 0, sizeof(*p));
    p->limits = *limits;
    assert_non_null(p->local = ghbudget_local_new());
    assert_non_null(p->slocal = ghshare_local_new());
    assert_non_null(p->share = ghshare_new(p->slocal, with_redis ? &url : NULL, never_now, NULL));
    assert_non_null(p->b = ghbudget_new(p->share, p->local, &p->limits));
}

static void proc_close(proc_t *p)
{
    ghbudget_free(p->b);
    ghshare_free(p->share);
    ghshare_local_free(p->slocal);
    ghbudget_local_free(p->local);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/test_ghbudget-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    char err[512];
    if (redisproc_start(&rp, dir, "redis-server", "everysec", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return redisconn_url_parse(&url, rp.url, err, sizeof(err));
}

static int group_teardown(void **state)
{
    (void)state;
    redisconn_url_free(&url);
    redisproc_stop(&rp);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ghbudget_verdict_t admit(proc_t *p, ghbudget_ticket_t *t, int64_t inst, int content, int low, int64_t now,
                                int64_t *wait, ghbudget_why_t *why)
{
    return ghbudget_admit(p->b, t, wait, why, inst, content, low, 35000, now);
}

/* A content call admitted and answered 201 at `now`. */
static void content_call(proc_t *p, int64_t inst, int64_t now)
{
    ghbudget_ticket_t t;
    int64_t wait;
    ghbudget_why_t why;
    assert_int_equal(admit(p, &t, inst, 1, 0, now, &wait, &why), GHBUDGET_GO);
    ghbudget_done(p->b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4000, now, &why);
}

static const ghbudget_limits_t SMALL = {2, {{3, 1000}, {5, 10000}}, 0};

static void windows_shared(int with_redis, int64_t inst)
{
    proc_t a, b;
    proc_open(&a, &SMALL, with_redis);
    proc_open(&b, &SMALL, with_redis);
    proc_t *second = with_redis ? &b : &a; /* without Redis, one process's threads share */
    ghbudget_ticket_t t;
    int64_t wait;
    ghbudget_why_t why;

    /* windows are counted 2% + 50 ms wider than configured: 1070 ms and 10250 ms */
    content_call(&a, inst, 1000);
    content_call(second, inst, 1001);
    content_call(&a, inst, 1002);
    /* the 4th within the second waits for the 1st to age out of it */
    assert_int_equal(admit(second, &t, inst, 1, 0, 1003, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(wait, 1000 + 1070 - 1003);
    assert_int_equal(why, GHBUDGET_WHY_CONTENT);
    assert_int_equal(admit(second, &t, inst, 1, 0, 2069, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(wait, 1);
    /* reads are not content: they go */
    assert_int_equal(admit(second, &t, inst, 0, 0, 1003, &wait, &why), GHBUDGET_GO);
    ghbudget_done(second->b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4000, 1003, &why);
    /* another installation has budgets of its own */
    assert_int_equal(admit(second, &t, inst + 1, 1, 0, 1003, &wait, &why), GHBUDGET_GO);
    ghbudget_done(second->b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4000, 1003, &why);
    /* the window slides: at 2070 the call of 1000 no longer counts */
    content_call(second, inst, 2070);
    content_call(&a, inst, 2071);
    /* five in ten seconds: the wider window holds the 6th until 1000 + 10.25 s */
    assert_int_equal(admit(&a, &t, inst, 1, 0, 2600, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(wait, 11250 - 2600);
    /* a low-priority call gives way instead of waiting */
    assert_int_equal(admit(&a, &t, inst, 1, 1, 2600, &wait, &why), GHBUDGET_DEFER);
    content_call(&a, inst, 11250);
    proc_close(&a);
    proc_close(&b);
}

static void test_content_windows_across_processes(void **state)
{
    (void)state;
    windows_shared(1, 101);
}

static void test_content_windows_without_redis(void **state)
{
    (void)state;
    windows_shared(0, 201);
}

static void test_low_priority_share(void **state)
{
    (void)state;
    const ghbudget_limits_t lim = {1, {{8, 60000}}, 0};
    proc_t a;
    proc_open(&a, &lim, 1);
    ghbudget_ticket_t t;
    int64_t wait;
    ghbudget_why_t why;
    for (int i = 0; i < 6; i++)
        content_call(&a, 102, 5000 + i);
    /* 75% of 8 is 6: a progress edit now gives way, real work still goes */
    assert_int_equal(admit(&a, &t, 102, 1, 1, 5010, &wait, &why), GHBUDGET_DEFER);
    assert_int_equal(admit(&a, &t, 102, 1, 0, 5010, &wait, &why), GHBUDGET_GO);
    ghbudget_done(a.b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4000, 5010, &why);
    proc_close(&a);
}

static void primary_shared(int with_redis, int64_t inst)
{
    ghbudget_limits_t lim;
    ghbudget_limits_default(&lim);
    proc_t a, b;
    proc_open(&a, &lim, with_redis);
    proc_open(&b, &lim, with_redis);
    proc_t *second = with_redis ? &b : &a;
    ghbudget_ticket_t t, late;
    int64_t wait, now = 1796000000000LL;
    ghbudget_why_t why;

    assert_int_equal(admit(second, &late, inst, 1, 0, now - 10, &wait, &why), GHBUDGET_GO);
    assert_int_equal(admit(&a, &t, inst, 1, 0, now, &wait, &why), GHBUDGET_GO);
    /* 403, x-ratelimit-remaining: 0, reset two seconds away */
    wait = ghbudget_done(a.b, &t, GHBUDGET_ANSWER_PRIMARY, now / 1000 + 2, -1, 0, now + 40, &why);
    assert_int_equal(wait, 2000 - 40);
    assert_int_equal(why, GHBUDGET_WHY_PRIMARY);
    /* every caller of the installation now waits for the reset, reads too */
    assert_int_equal(admit(second, &t, inst, 0, 0, now + 80, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(wait, 2000 - 80);
    assert_int_equal(why, GHBUDGET_WHY_PRIMARY);
    /* a call that was already in flight comes back with the same 403 */
    wait = ghbudget_done(second->b, &late, GHBUDGET_ANSWER_PRIMARY, now / 1000 + 2, -1, 0, now + 100, &why);
    assert_int_equal(wait, 1900);
    assert_int_equal(admit(second, &t, inst, 1, 0, now + 1999, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(wait, 1);
    assert_int_equal(admit(second, &t, inst, 1, 0, now + 2000, &wait, &why), GHBUDGET_GO);
    ghbudget_done(second->b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4999, now + 2100, &why);
    /* a 2xx that spent the last call (remaining 0) imposes the reset too */
    assert_int_equal(admit(&a, &t, inst, 0, 0, now + 3000, &wait, &why), GHBUDGET_GO);
    wait = ghbudget_done(a.b, &t, GHBUDGET_ANSWER_OK, now / 1000 + 10, -1, 0, now + 3000, &why);
    assert_int_equal(wait, 7000);
    assert_int_equal(admit(second, &t, inst, 0, 0, now + 3000, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(admit(second, &t, inst, 0, 0, now + 10000, &wait, &why), GHBUDGET_GO);
    ghbudget_done(second->b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4999, now + 10000, &why);
    proc_close(&a);
    proc_close(&b);
}

static void test_primary_limit_stops_everyone(void **state)
{
    (void)state;
    primary_shared(1, 103);
}

static void test_primary_limit_without_redis(void **state)
{
    (void)state;
    primary_shared(0, 203);
}

static void test_secondary_limit_backs_off(void **state)
{
    (void)state;
    ghbudget_limits_t lim;
    ghbudget_limits_default(&lim);
    proc_t a, b;
    proc_open(&a, &lim, 1);
    proc_open(&b, &lim, 1);
    ghbudget_ticket_t t, late;
    int64_t wait, now = 1796000000000LL;
    ghbudget_why_t why;

    assert_int_equal(admit(&b, &late, 104, 1, 0, now, &wait, &why), GHBUDGET_GO);
    assert_int_equal(admit(&a, &t, 104, 1, 0, now, &wait, &why), GHBUDGET_GO);
    /* retry-after: 3 -> nobody for 3 s */
    assert_int_equal(ghbudget_done(a.b, &t, GHBUDGET_ANSWER_SECONDARY, -1, 3, 4000, now + 10, &why), 3000);
    assert_int_equal(why, GHBUDGET_WHY_SECONDARY);
    /* the other process's call, sent before the limit was known, met the same limit: not a new one */
    assert_int_equal(ghbudget_done(b.b, &late, GHBUDGET_ANSWER_SECONDARY, -1, 3, 4000, now + 20, &why), 3000 - 10);
    assert_int_equal(admit(&b, &t, 104, 0, 0, now + 1000, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(wait, 2010);
    /* after the wait it persists: twice as long */
    assert_int_equal(admit(&b, &t, 104, 1, 0, now + 3010, &wait, &why), GHBUDGET_GO);
    assert_int_equal(ghbudget_done(b.b, &t, GHBUDGET_ANSWER_SECONDARY, -1, 3, 4000, now + 3010, &why), 6000);
    /* without retry-after: at least a minute, doubled while the streak lasts */
    assert_int_equal(admit(&a, &t, 104, 1, 0, now + 9010, &wait, &why), GHBUDGET_GO);
    assert_int_equal(ghbudget_done(a.b, &t, GHBUDGET_ANSWER_SECONDARY, -1, -1, 4000, now + 9010, &why), 240000);
    /* a success ends the streak: the next limit starts from retry-after again */
    assert_int_equal(admit(&a, &t, 104, 1, 0, now + 249010, &wait, &why), GHBUDGET_GO);
    ghbudget_done(a.b, &t, GHBUDGET_ANSWER_OK, -1, -1, 4000, now + 249010, &why);
    assert_int_equal(admit(&a, &t, 104, 1, 0, now + 249020, &wait, &why), GHBUDGET_GO);
    assert_int_equal(ghbudget_done(a.b, &t, GHBUDGET_ANSWER_SECONDARY, -1, 3, 4000, now + 249020, &why), 3000);
    proc_close(&a);
    proc_close(&b);
}

static void test_calls_in_flight(void **state)
{
    (void)state;
    const ghbudget_limits_t lim = {0, {{0, 0}}, 2};
    proc_t a, b;
    proc_open(&a, &lim, 1);
    proc_open(&b, &lim, 1);
    ghbudget_ticket_t t1, t2, t3;
    int64_t wait;
    ghbudget_why_t why;
    assert_int_equal(admit(&a, &t1, 105, 0, 0, 1000, &wait, &why), GHBUDGET_GO);
    assert_int_equal(admit(&b, &t2, 105, 0, 0, 1000, &wait, &why), GHBUDGET_GO);
    assert_int_equal(admit(&b, &t3, 105, 0, 0, 1001, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(why, GHBUDGET_WHY_CONCURRENCY);
    assert_int_equal(wait, GHBUDGET_CONCURRENCY_POLL_MS);
    ghbudget_done(a.b, &t1, GHBUDGET_ANSWER_OK, -1, -1, 4000, 1002, &why);
    assert_int_equal(admit(&b, &t3, 105, 0, 0, 1003, &wait, &why), GHBUDGET_GO);
    /* a process that died mid-call frees its slot when the lease ends */
    assert_int_equal(admit(&a, &t1, 105, 0, 0, 1004, &wait, &why), GHBUDGET_WAIT);
    assert_int_equal(admit(&a, &t1, 105, 0, 0, 1000 + 35001, &wait, &why), GHBUDGET_GO);
    proc_close(&a);
    proc_close(&b);
}

static void test_waits_for_the_dashboard(void **state)
{
    (void)state;
    ghbudget_limits_t lim;
    ghbudget_limits_default(&lim);
    proc_t a;
    proc_open(&a, &lim, 1);
    ghbudget_ticket_t t;
    int64_t wait, now = 1796000000000LL;
    ghbudget_why_t why;
    assert_int_equal(admit(&a, &t, 106, 1, 0, now, &wait, &why), GHBUDGET_GO);
    ghbudget_done(a.b, &t, GHBUDGET_ANSWER_PRIMARY, now / 1000 + 60, -1, 0, now, &why);
    char err[256];
    redisContext *c = redisconn_connect(&url, 2000, 2000, err, sizeof(err));
    assert_non_null(c);
    ghbudget_wait_t w[16];
    size_t n = 0;
    assert_int_equal(ghbudget_waits(c, w, 16, &n, now + 1), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (w[i].installation == 106) {
            found = 1;
            assert_int_equal(w[i].until_ms, now + 60000);
            assert_int_equal(w[i].why, GHBUDGET_WHY_PRIMARY);
        }
    assert_true(found);
    /* past its end, a wait is no longer shown */
    assert_int_equal(ghbudget_waits(c, w, 16, &n, now + 60000), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(w[i].installation, 106);
    redisFree(c);
    proc_close(&a);
}

static void test_limits_from_config(void **state)
{
    (void)state;
    int calls;
    int64_t ms;
    assert_int_equal(config_parse_rate("80/60s", &calls, &ms), 0);
    assert_int_equal(calls, 80);
    assert_int_equal(ms, 60000);
    assert_int_equal(config_parse_rate("500/1h", &calls, &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(config_parse_rate("80/1m", &calls, &ms), 0);
    assert_int_equal(ms, 60000);
    const char *bad[] = {"80", "80/", "/60s", "0/60s", "80/60", "80/0s", "80/2d", "-1/60s", "80/60s ", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(config_parse_rate(bad[i], &calls, &ms), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_windows_across_processes),
        cmocka_unit_test(test_content_windows_without_redis),
        cmocka_unit_test(test_low_priority_share),
        cmocka_unit_test(test_primary_limit_stops_everyone),
        cmocka_unit_test(test_primary_limit_without_redis),
        cmocka_unit_test(test_secondary_limit_backs_off),
        cmocka_unit_test(test_calls_in_flight),
        cmocka_unit_test(test_waits_for_the_dashboard),
        cmocka_unit_test(test_limits_from_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
