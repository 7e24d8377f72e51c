/*
 * test_jobctx — what a handler relies on: the first stop reason wins, a stop
 * kills every registered process group (also one registered after it), a
 * sleep wakes on a stop from another thread, and record fields read the
 * same whether jansson holds them as strings, numbers or booleans.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/common/clock.h"
#include "jobs/kinds/jobctx.h"

/* A child in its own process group, with a grandchild, as an agent would be. */
static pid_t spawn_group(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        job_ctx_child_setup();
        execlp("sh", "sh", "-c", "sleep 60 & wait", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static int group_gone(pid_t pgid)
{
    for (int i = 0; i < 200; i++) {
        if (kill(-pgid, 0) != 0 && errno == ESRCH)
            return 1;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static job_ctx_t *new_ctx(job_watch_t *watch)
{
    json_t *rec = json_pack("{s:s, s:s, s:I, s:b, s:s}", "id", "42", "kind", "noop", "attempts", (json_int_t)2, "is_pr",
                            1, "repo", "o/r");
    return job_ctx_new(NULL, rec, "3", watch, NULL, NULL, clock_mono_ms() + 1000);
}

static void test_first_reason_wins(void **state)
{
    (void)state;
    job_watch_t w;
    job_watch_init(&w);
    job_ctx_t *ctx = new_ctx(&w);
    assert_int_equal(job_ctx_stop_reason(ctx), JOB_STOP_NONE);
    assert_int_equal(job_watch_stop(&w, JOB_STOP_TIMEOUT), 1);
    assert_int_equal(job_watch_stop(&w, JOB_STOP_CANCEL), 0);
    assert_int_equal(job_ctx_stop_reason(ctx), JOB_STOP_TIMEOUT);
    assert_string_equal(job_stop_name(JOB_STOP_TIMEOUT), "timed out");
    job_watch_reset(&w);
    assert_int_equal(job_ctx_stop_reason(ctx), JOB_STOP_NONE);
    job_ctx_free(ctx);
    job_watch_destroy(&w);
}

static void test_stop_kills_process_groups(void **state)
{
    (void)state;
    job_watch_t w;
    job_watch_init(&w);
    job_ctx_t *ctx = new_ctx(&w);
    pid_t a = spawn_group(), b = spawn_group();
    assert_int_equal(job_ctx_pgid_add(ctx, a), 0);
    assert_int_equal(job_ctx_pgid_add(ctx, b), 0);
    job_ctx_pgid_remove(ctx, b); /* done with b: a stop leaves it alone */
    job_watch_stop(&w, JOB_STOP_CANCEL);
    int status;
    assert_int_equal(waitpid(a, &status, 0), a);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(group_gone(a)); /* the grandchild too */
    assert_int_equal(kill(-b, 0), 0);
    /* registered after the stop: killed at once */
    assert_int_equal(job_ctx_pgid_add(ctx, b), 0);
    assert_int_equal(waitpid(b, &status, 0), b);
    assert_true(group_gone(b));
    job_ctx_free(ctx);
    job_watch_destroy(&w);
}

static void test_pgid_table_is_bounded(void **state)
{
    (void)state;
    job_watch_t w;
    job_watch_init(&w);
    job_ctx_t *ctx = new_ctx(&w);
    for (int i = 0; i < JOB_CTX_PGIDS_MAX; i++)
        assert_int_equal(job_ctx_pgid_add(ctx, 999990 + i), 0);
    assert_int_equal(job_ctx_pgid_add(ctx, 1), -1);
    job_watch_reset(&w);
    job_ctx_free(ctx);
    job_watch_destroy(&w);
    /* a context without a watch (on_dead) has nothing to register with */
    ctx = new_ctx(NULL);
    assert_int_equal(job_ctx_pgid_add(ctx, 1), -1);
    assert_int_equal(job_ctx_stop_reason(ctx), JOB_STOP_NONE);
    job_ctx_free(ctx);
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    job_watch_stop(arg, JOB_STOP_SHUTDOWN);
    return NULL;
}

static void test_sleep_wakes_on_stop(void **state)
{
    (void)state;
    job_watch_t w;
    job_watch_init(&w);
    job_ctx_t *ctx = new_ctx(&w);
    assert_int_equal(job_ctx_sleep_ms(ctx, 30), JOB_STOP_NONE);
    pthread_t t;
    pthread_create(&t, NULL, stop_later, &w);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(job_ctx_sleep_ms(ctx, 60000), JOB_STOP_SHUTDOWN);
    assert_true(clock_mono_ms() - t0 < 30000);
    pthread_join(t, NULL);
    job_ctx_free(ctx);
    job_watch_destroy(&w);
}

static void test_fields(void **state)
{
    (void)state;
    job_ctx_t *ctx = new_ctx(NULL);
    assert_string_equal(job_ctx_id(ctx), "42");
    assert_string_equal(job_ctx_field(ctx, "kind"), "noop");
    assert_string_equal(job_ctx_field(ctx, "attempts"), "2");
    assert_string_equal(job_ctx_field(ctx, "is_pr"), "1");
    assert_null(job_ctx_field(ctx, "nope"));
    assert_int_equal(job_ctx_attempt(ctx), 2);
    job_ctx_log(ctx, LOG_DEBUG, "a line with no Redis to go to");
    job_ctx_free(ctx);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_reason_wins),   cmocka_unit_test(test_stop_kills_process_groups),
        cmocka_unit_test(test_pgid_table_is_bounded), cmocka_unit_test(test_sleep_wakes_on_stop),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
