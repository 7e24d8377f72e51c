/*
 * test_kinds — the kind table: every kind has a handler, the right ones take
 * their issue's lock, limits come from config and can only be lowered by a
 * record, a record that names no issue fails at once, and the noop knobs
 * do what tests rely on (here without Redis: tracing off).
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

#include "app/common/clock.h"
#include "jobs/kinds/kinds.h"

static config_t *load_defaults(void)
{
    char path[] = "/tmp/test_kinds.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    config_t *cfg = NULL;
    config_errors_t errs = {0};
    assert_int_equal(config_load(&cfg, &errs, path, NULL), 0);
    config_errors_free(&errs);
    unlink(path);
    return cfg;
}

static job_ctx_t *ctx_for(const config_t *cfg, job_watch_t *watch, const char *kind, ...)
{
    json_t *rec = json_pack("{s:s, s:s, s:i}", "id", "7", "kind", kind, "attempts", 1);
    va_list ap;
    va_start(ap, kind);
    for (const char *k = va_arg(ap, const char *); k != NULL; k = va_arg(ap, const char *))
        json_object_set_new(rec, k, json_string(va_arg(ap, const char *)));
    va_end(ap);
    return job_ctx_new(cfg, rec, "1", watch, NULL, NULL, clock_mono_ms() + 60000);
}

static void test_every_kind_has_a_row(void **state)
{
    (void)state;
    for (int k = 0; k < JOB_KIND__COUNT; k++) {
        const kinds_spec_t *s = kinds_get((job_kind_t)k);
        assert_int_equal(s->kind, k);
        assert_non_null(s->run);
    }
    /* code work takes the issue's lock; answering does not wait behind it */
    assert_true(kindpolicy_get(JOB_KIND_FIX)->exclusive);
    assert_true(kindpolicy_get(JOB_KIND_FOLLOWUP)->exclusive);
    assert_true(kindpolicy_get(JOB_KIND_REVIEW)->exclusive);
    assert_false(kindpolicy_get(JOB_KIND_HELP)->exclusive);
    assert_false(kindpolicy_get(JOB_KIND_STOP)->exclusive);
    /* a question never waits behind a fix on the same issue */
    assert_false(kindpolicy_get(JOB_KIND_ASK)->exclusive);
}

static void test_limits(void **state)
{
    (void)state;
    config_t *cfg = load_defaults();
    const job_kind_t fix = JOB_KIND_FIX, noop = JOB_KIND_NOOP;
    assert_int_equal(kindpolicy_max_attempts(fix, cfg), 3);
    cfg->workers.max_attempts = 5;
    assert_int_equal(kindpolicy_max_attempts(fix, cfg), 5);
    /* the agent's time, once plus once per test round, and room around it */
    json_t *rec = json_object();
    assert_int_equal(kindpolicy_timeout_ms(fix, cfg, rec), (1800LL * 3 + 900) * 1000);
    cfg->agent.test_rounds = 0;
    assert_int_equal(kindpolicy_timeout_ms(fix, cfg, rec), (1800LL + 900) * 1000);
    assert_int_equal(kindpolicy_timeout_ms(noop, cfg, rec), 60000);
    /* an ask: one run of the agent, on ask.timeout when the operator set one */
    assert_int_equal(kindpolicy_timeout_ms(JOB_KIND_ASK, cfg, rec), (1800LL + 900) * 1000);
    cfg->ask.timeout = 300;
    assert_int_equal(kindpolicy_timeout_ms(JOB_KIND_ASK, cfg, rec), (300LL + 900) * 1000);
    /* a record may lower a limit, never raise it */
    json_object_set_new(rec, "timeout_ms", json_integer(500));
    assert_int_equal(kindpolicy_timeout_ms(noop, cfg, rec), 500);
    json_object_set_new(rec, "timeout_ms", json_string("700"));
    assert_int_equal(kindpolicy_timeout_ms(noop, cfg, rec), 700);
    json_object_set_new(rec, "timeout_ms", json_integer(999999999));
    assert_int_equal(kindpolicy_timeout_ms(noop, cfg, rec), 60000);
    json_object_set_new(rec, "timeout_ms", json_string("-3"));
    assert_int_equal(kindpolicy_timeout_ms(noop, cfg, rec), 60000);
    json_decref(rec);
    config_free(cfg);
}

/* A record that cannot name its issue is not worth retrying: fail at once, say so. */
static void test_records_without_an_issue_fail_permanently(void **state)
{
    (void)state;
    config_t *cfg = load_defaults();
    const job_kind_t kinds_[] = {JOB_KIND_FIX, JOB_KIND_FOLLOWUP, JOB_KIND_REVIEW, JOB_KIND_HELP, JOB_KIND_STOP,
                                 JOB_KIND_ASK};
    for (size_t i = 0; i < sizeof(kinds_) / sizeof(kinds_[0]); i++) {
        job_ctx_t *ctx = ctx_for(cfg, NULL, job_kind_name(kinds_[i]), NULL);
        char err[512] = "";
        assert_int_equal(kinds_get(kinds_[i])->run(ctx, err, sizeof(err)), JOB_ERR_PERMANENT);
        assert_true(err[0] != '\0');
        job_ctx_free(ctx);
    }
    config_free(cfg);
}

static void test_noop_knobs(void **state)
{
    (void)state;
    config_t *cfg = load_defaults();
    const kinds_spec_t *noop = kinds_get(JOB_KIND_NOOP);
    char err[256];
    job_ctx_t *ctx = ctx_for(cfg, NULL, "noop", NULL);
    assert_int_equal(noop->run(ctx, err, sizeof(err)), JOB_OK);
    job_ctx_free(ctx);
    ctx = ctx_for(cfg, NULL, "noop", "noop_fail", "permanent", NULL);
    assert_int_equal(noop->run(ctx, err, sizeof(err)), JOB_ERR_PERMANENT);
    job_ctx_free(ctx);
    ctx = ctx_for(cfg, NULL, "noop", "noop_fail", "retry", NULL);
    assert_int_equal(noop->run(ctx, err, sizeof(err)), JOB_ERR_RETRY);
    job_ctx_free(ctx);
    ctx = ctx_for(cfg, NULL, "noop", "noop_fail_until", "1", NULL); /* attempt 1 fails, 2 would not */
    assert_int_equal(noop->run(ctx, err, sizeof(err)), JOB_ERR_RETRY);
    job_ctx_free(ctx);

    /* a sleeping noop wakes up when the job is told to stop */
    job_watch_t watch;
    job_watch_init(&watch);
    ctx = ctx_for(cfg, &watch, "noop", "noop_sleep_ms", "60000", NULL);
    job_watch_stop(&watch, JOB_STOP_CANCEL);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(noop->run(ctx, err, sizeof(err)), JOB_ERR_RETRY);
    assert_true(clock_mono_ms() - t0 < 30000);
    assert_non_null(strstr(err, "stopped while sleeping (cancelled)"));
    job_ctx_free(ctx);
    job_watch_destroy(&watch);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_has_a_row),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_records_without_an_issue_fail_permanently),
        cmocka_unit_test(test_noop_knobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
