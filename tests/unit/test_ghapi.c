/*
 * ghapi against the local fake GitHub (tests/fakes/github.py): every typed
 * call, pagination, ETags, the retry policy with the wait it chose (through
 * an injectable clock, never sleeping), one re-mint on 401, and one mint for
 * many threads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakegh.h"
#include "app/common/clock.h"
#include "app/github/ghapi.h"

static fakegh_t fake;
static char *pem;      /* the App's key, PKCS#8 */
static char *pem_rsa;  /* the same key, PKCS#1 (GitHub's download format) */

/* A clock the test controls: real time plus an offset that every "sleep"
 * advances, so waits are recorded instead of slept. */
typedef struct {
    int64_t offset_ms;
    int64_t slept[32];
    int nslept;
} tclock_t;

static int64_t t_now(void *ctx)
{
    return clock_wall_ms() + ((tclock_t *)ctx)->offset_ms;
}

static int t_sleep(void *ctx, int64_t ms)
{
    tclock_t *c = ctx;
    if (c->nslept < 32)
        c->slept[c->nslept++] = ms;
    c->offset_ms += ms;
    return 0;
}

static char *key_pem(int traditional)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (traditional)
        PEM_write_bio_PrivateKey_traditional(b, fake.key, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PrivateKey(b, fake.key, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)n);
    BIO_free(b);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    fakegh_start(&fake);
    fakegh_repo(&fake, "octo/hello", "{\"README.md\":\"hello\\n\",\".github/patchbay.yml\":\"test: make check\\n\"}", 7);
    pem = key_pem(0);
    pem_rsa = key_pem(1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(pem);
    free(pem_rsa);
    fakegh_stop(&fake);
    return 0;
}

typedef struct {
    ghapi_app_t *app;
    ghapi_t *gh;
    tclock_t clock;
} client_t;

static void client_open(client_t *c, const char *key, int64_t max_wait_ms)
{
    memset(c, 0, sizeof(*c));
    ghapi_options_t o = GHAPI_OPTIONS_INIT;
    o.api_url = fake.base_url;
    o.app_id = "1234";
    o.private_key = key;
    o.max_wait_ms = max_wait_ms;
    o.clock.now_ms = t_now;
    o.clock.sleep_ms = t_sleep;
    o.clock.ctx = &c->clock;
    char err[256];
    assert_int_equal(ghapi_app_new(&c->app, &o, err, sizeof(err)), GHAPI_OK);
    assert_non_null(c->gh = ghapi_new(c->app));
}

static void client_close(client_t *c)
{
    ghapi_free(c->gh);
    ghapi_app_free(c->app);
}

static long mint_count(void)
{
    long status;
    json_t *st = fakegh_http(&fake, "GET", "/_fake/state", NULL, NULL, &status);
    long n = (long)json_integer_value(json_object_get(st, "mint_count"));
    json_decref(st);
    return n;
}

static const ghapi_repo_t HELLO = {7, "octo/hello"};

/* ---- identity ---- */

static void test_jwt_from_both_key_formats(void **state)
{
    (void)state;
    const char *keys[] = {pem, pem_rsa};
    for (int i = 0; i < 2; i++) {
        client_t c;
        client_open(&c, keys[i], 60000);
        json_t *app = NULL;
        assert_int_equal(ghapi_app_get(&app, c.gh), GHAPI_OK);
        assert_string_equal(json_string_value(json_object_get(app, "slug")), "patchbay");
        json_decref(app);
        char *jwt1 = NULL, *jwt2 = NULL;
        assert_int_equal(ghapi_app_jwt(&jwt1, c.gh), GHAPI_OK);
        assert_int_equal(ghapi_app_jwt(&jwt2, c.gh), GHAPI_OK);
        assert_string_equal(jwt1, jwt2); /* reused until a minute before it expires */
        c.clock.offset_ms += 9 * 60 * 1000;
        free(jwt2);
        assert_int_equal(ghapi_app_jwt(&jwt2, c.gh), GHAPI_OK);
        assert_string_not_equal(jwt1, jwt2);
        free(jwt1);
        free(jwt2);
        client_close(&c);
    }
}

static void test_bad_key_is_a_clear_error(void **state)
{
    (void)state;
    ghapi_options_t o = GHAPI_OPTIONS_INIT;
    o.api_url = fake.base_url;
    o.app_id = "1234";
    o.private_key = "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n";
    ghapi_app_t *app = NULL;
    char err[256];
    assert_int_equal(ghapi_app_new(&app, &o, err, sizeof(err)), GHAPI_ERR_PERMANENT);
    assert_null(strstr(err, "not a key")); /* never echo key material */
    o.private_key = NULL;
    o.private_key_path = "/nonexistent/app.pem";
    assert_int_equal(ghapi_app_new(&app, &o, err, sizeof(err)), GHAPI_ERR_PERMANENT);
    assert_non_null(strstr(err, "/nonexistent/app.pem"));
}

/* ---- the calls ---- */

static void test_typed_calls(void **state)
{
    (void)state;
    client_t c;
    client_open(&c, pem, 60000);
    json_t *j = NULL;

    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    assert_string_equal(json_string_value(json_object_get(j, "full_name")), "octo/hello");
    json_decref(j);

    char *name = NULL, *email = NULL;
    assert_int_equal(ghapi_bot_identity(&name, &email, c.gh, &HELLO, "patchbay"), GHAPI_OK);
    assert_string_equal(name, "patchbay[bot]");
    char want[96];
    snprintf(want, sizeof(want), "%d+patchbay[bot]@users.noreply.github.com", FAKEGH_BOT_ID);
    assert_string_equal(email, want);
    free(name);
    free(email);

    json_t *issue = fakegh_control(&fake, "issues", "{\"repo\":\"octo/hello\",\"title\":\"Crash\",\"body\":\"b\"}");
    int64_t number = json_integer_value(json_object_get(issue, "number"));
    json_decref(issue);
    assert_int_equal(ghapi_issue_get(&j, c.gh, &HELLO, number), GHAPI_OK);
    assert_string_equal(json_string_value(json_object_get(j, "title")), "Crash");
    json_decref(j);

    json_t *comment = NULL;
    assert_int_equal(ghapi_comment_create(&comment, c.gh, &HELLO, number, "working on it"), GHAPI_OK);
    int64_t cid = json_integer_value(json_object_get(comment, "id"));
    json_decref(comment);
    assert_int_equal(ghapi_comment_update(&j, c.gh, &HELLO, cid, "done", 0), GHAPI_OK);
    assert_string_equal(json_string_value(json_object_get(j, "body")), "done");
    json_decref(j);
    assert_int_equal(ghapi_reaction_add(NULL, c.gh, &HELLO, GHAPI_REACT_ISSUE_COMMENT, cid, "eyes"), GHAPI_OK);
    assert_int_equal(ghapi_reaction_add(NULL, c.gh, &HELLO, GHAPI_REACT_ISSUE_COMMENT, cid, "eyes"), GHAPI_OK);
    assert_int_equal(ghapi_reaction_add(NULL, c.gh, &HELLO, GHAPI_REACT_ISSUE, number, "rocket"), GHAPI_OK);
    assert_int_equal(ghapi_reaction_add(NULL, c.gh, &HELLO, GHAPI_REACT_ISSUE, number, "nonsense"),
                     GHAPI_ERR_VALIDATION);

    const char *labels[] = {"patchbay:working"};
    assert_int_equal(ghapi_labels_add(c.gh, &HELLO, number, labels, 1), GHAPI_OK);
    assert_int_equal(ghapi_label_remove(c.gh, &HELLO, number, "patchbay:working"), GHAPI_OK);
    assert_int_equal(ghapi_label_remove(c.gh, &HELLO, number, "patchbay:working"), GHAPI_ERR_NOT_FOUND);

    char *cfg = NULL;
    size_t len = 0;
    assert_int_equal(ghapi_repo_config(&cfg, &len, c.gh, &HELLO), GHAPI_OK);
    assert_string_equal(cfg, "test: make check\n");
    free(cfg);
    assert_int_equal(ghapi_contents_get(&cfg, &len, c.gh, &HELLO, "nope.txt", NULL), GHAPI_ERR_NOT_FOUND);

    json_decref(fakegh_control(&fake, "collaborators", "{\"repo\":\"octo/hello\",\"user\":\"alice\",\"permission\":\"write\"}"));
    char *perm = NULL;
    assert_int_equal(ghapi_collaborator_permission(&perm, c.gh, &HELLO, "alice"), GHAPI_OK);
    assert_string_equal(perm, "write");
    free(perm);

    /* a branch with a commit, a pull request from it, found again by its head */
    json_t *commit = fakegh_control(&fake, "commits",
                                    "{\"repo\":\"octo/hello\",\"branch\":\"patchbay/1-crash\",\"files\":{\"a.c\":\"int x;\\n\"}}");
    char sha[41];
    snprintf(sha, sizeof(sha), "%s", json_string_value(json_object_get(commit, "sha")));
    json_decref(commit);
    json_t *pr = NULL;
    assert_int_equal(ghapi_pull_create(&pr, c.gh, &HELLO, "patchbay/1-crash", "main", "Fix crash", "Fixes #1", 0),
                     GHAPI_OK);
    int64_t prn = json_integer_value(json_object_get(pr, "number"));
    json_decref(pr);
    assert_int_equal(ghapi_pull_create(&pr, c.gh, &HELLO, "patchbay/1-crash", "main", "again", "", 0),
                     GHAPI_ERR_VALIDATION);
    assert_non_null(strstr(ghapi_error(c.gh), "A pull request already exists"));
    assert_int_equal(ghapi_pull_find_by_head(&pr, c.gh, &HELLO, "patchbay/1-crash", "open"), GHAPI_OK);
    assert_int_equal(json_integer_value(json_object_get(pr, "number")), prn);
    json_decref(pr);
    assert_int_equal(ghapi_pull_find_by_head(&pr, c.gh, &HELLO, "no-such-branch", "all"), GHAPI_ERR_NOT_FOUND);
    assert_int_equal(ghapi_pull_files(&j, c.gh, &HELLO, prn), GHAPI_OK);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "filename")), "a.c");
    json_decref(j);
    char *diff = NULL;
    assert_int_equal(ghapi_pull_diff(&diff, &len, c.gh, &HELLO, prn), GHAPI_OK);
    assert_non_null(strstr(diff, "+int x;"));
    free(diff);

    json_t *review = json_pack("{s:s, s:s, s:[{s:s, s:i, s:s, s:s}]}", "event", "COMMENT", "body", "Looks fine",
                               "comments", "path", "a.c", "line", 1, "side", "RIGHT", "body", "a nit");
    assert_int_equal(ghapi_review_create(&j, c.gh, &HELLO, prn, review), GHAPI_OK);
    json_decref(j);
    json_decref(review);
    review = json_pack("{s:s, s:s, s:[{s:s, s:i, s:s, s:s}]}", "event", "COMMENT", "body", "x", "comments", "path",
                       "a.c", "line", 99, "side", "RIGHT", "body", "off the diff");
    assert_int_equal(ghapi_review_create(&j, c.gh, &HELLO, prn, review), GHAPI_ERR_VALIDATION);
    json_decref(review);

    json_t *fields = json_pack("{s:s, s:s, s:s}", "name", "patchbay review", "head_sha", sha, "status", "in_progress");
    json_t *run = NULL;
    assert_int_equal(ghapi_check_run_create(&run, c.gh, &HELLO, fields), GHAPI_OK);
    json_decref(fields);
    fields = json_pack("{s:s, s:s}", "status", "completed", "conclusion", "success");
    assert_int_equal(ghapi_check_run_update(&j, c.gh, &HELLO, json_integer_value(json_object_get(run, "id")), fields),
                     GHAPI_OK);
    assert_string_equal(json_string_value(json_object_get(j, "conclusion")), "success");
    json_decref(j);
    json_decref(fields);
    json_decref(run);

    /* what a token cannot see looks absent, as GitHub makes it */
    const ghapi_repo_t other = {7, "someone/private"};
    assert_int_equal(ghapi_repo_get(&j, c.gh, &other), GHAPI_ERR_NOT_FOUND);
    client_close(&c);
}

static void test_pagination_and_etags(void **state)
{
    (void)state;
    json_t *issue = fakegh_control(&fake, "issues", "{\"repo\":\"octo/hello\",\"title\":\"Long thread\"}");
    int64_t number = json_integer_value(json_object_get(issue, "number"));
    json_decref(issue);
    for (int i = 0; i < 250; i++)
        json_decref(fakegh_control(&fake, "comments", "{\"repo\":\"octo/hello\",\"number\":%lld,\"body\":\"c%d\"}",
                                   (long long)number, i));
    client_t c;
    client_open(&c, pem, 60000);
    json_t *all = NULL;
    fakegh_reset_calls(&fake);
    assert_int_equal(ghapi_issue_comments(&all, c.gh, &HELLO, number, 0), GHAPI_OK);
    assert_int_equal(json_array_size(all), 250);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "body")), "c0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 249), "body")), "c249");
    assert_int_equal(fakegh_count(&fake, "GET", "/issues/[0-9]+/comments"), 3); /* pages of 100 */
    json_decref(all);
    assert_int_equal(ghapi_issue_comments(&all, c.gh, &HELLO, number, 120), GHAPI_OK);
    assert_int_equal(json_array_size(all), 120);
    json_decref(all);

    /* the second read of the same thing is a conditional GET: 304, no rate limit spent */
    json_t *j = NULL;
    ghapi_stats_t before, after;
    assert_int_equal(ghapi_issue_get(&j, c.gh, &HELLO, number), GHAPI_OK);
    json_decref(j);
    ghapi_stats(c.gh, &before);
    assert_int_equal(ghapi_issue_get(&j, c.gh, &HELLO, number), GHAPI_OK);
    assert_string_equal(json_string_value(json_object_get(j, "title")), "Long thread");
    json_decref(j);
    ghapi_stats(c.gh, &after);
    assert_int_equal(after.not_modified, before.not_modified + 1);
    client_close(&c);
}

/* ---- faults and the waits chosen ---- */

static void fault(const char *json)
{
    json_decref(fakegh_control(&fake, "faults", "%s", json));
}

static void test_rate_limits_and_faults(void **state)
{
    (void)state;
    client_t c;
    client_open(&c, pem, 15 * 60000);
    json_t *j = NULL;
    /* warm the token so the faults hit the call, not the mint */
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);

    /* primary: wait until x-ratelimit-reset */
    int64_t reset = clock_wall_ms() / 1000 + 40;
    char f[256];
    snprintf(f, sizeof(f), "{\"type\":\"primary\",\"path\":\"/repos/octo/hello$\",\"reset\":%lld}", (long long)reset);
    fault(f);
    c.clock.nslept = 0;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(c.clock.nslept, 1);
    assert_in_range(c.clock.slept[0], 38000, 42000);

    /* secondary with retry-after: exactly that */
    fault("{\"type\":\"secondary\",\"path\":\"/repos/octo/hello$\",\"retry_after\":7}");
    c.clock.nslept = 0;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(c.clock.nslept, 1);
    /* the wait is kept as a deadline (shared through Redis), so the
     * milliseconds spent getting here come off it */
    assert_in_range(c.clock.slept[0], 6000, 7000);

    /* secondary without: at least a minute, then longer */
    fault("{\"type\":\"secondary\",\"path\":\"/repos/octo/hello$\",\"count\":2}");
    c.clock.nslept = 0;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(c.clock.nslept, 2);
    /* a minute from when GitHub answered, kept as a deadline: the
     * milliseconds spent since come off it (a sanitizer build spends many) */
    assert_true(c.clock.slept[0] >= 59000);
    assert_true(c.clock.slept[1] > c.clock.slept[0]);

    /* 429 with retry-after */
    fault("{\"type\":\"429\",\"path\":\"/repos/octo/hello$\",\"retry_after\":3}");
    c.clock.nslept = 0;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_in_range(c.clock.slept[0], 2000, 3000);

    /* 502 twice: jittered backoff, growing */
    fault("{\"type\":\"status\",\"status\":502,\"path\":\"/repos/octo/hello$\",\"count\":2}");
    c.clock.nslept = 0;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(c.clock.nslept, 2);
    assert_in_range(c.clock.slept[0], 500, 1500);
    assert_in_range(c.clock.slept[1], 1000, 3000);

    /* 502 forever: gives up after the attempts, as retryable */
    fault("{\"type\":\"status\",\"status\":502,\"path\":\"/repos/octo/hello$\",\"count\":-1}");
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_ERR_RETRYABLE);
    fault("{\"clear\":true}");

    /* a wait longer than max_wait: the job gets it back to retry later */
    client_t impatient;
    client_open(&impatient, pem, 10000);
    assert_int_equal(ghapi_repo_get(&j, impatient.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    snprintf(f, sizeof(f), "{\"type\":\"primary\",\"path\":\"/repos/octo/hello$\",\"reset\":%lld}",
             (long long)(clock_wall_ms() / 1000 + 600));
    fault(f);
    assert_int_equal(ghapi_repo_get(&j, impatient.gh, &HELLO), GHAPI_ERR_RATE_LIMITED);
    assert_true(ghapi_retry_after_ms(impatient.gh) > 500000);
    assert_int_equal(impatient.clock.nslept, 0);
    fault("{\"clear\":true}");
    client_close(&impatient);

    /* a low-priority edit while the hour's limit is nearly spent is deferred, not sent */
    client_close(&c);
}

static void test_401_remints_once(void **state)
{
    (void)state;
    client_t c;
    client_open(&c, pem, 60000);
    json_t *j = NULL;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    long before = mint_count();
    json_decref(fakegh_control(&fake, "expire_tokens", "{}"));
    fakegh_reset_calls(&fake);
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(mint_count(), before + 1);
    assert_int_equal(fakegh_count(&fake, "GET", "^/repos/octo/hello$"), 2); /* the 401, then the retry */

    /* a token that keeps failing: one re-mint, then the error */
    fault("{\"type\":\"status\",\"status\":401,\"path\":\"^/repos/octo/hello$\",\"count\":2}");
    before = mint_count();
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_ERR_UNAUTHORIZED);
    assert_int_equal(mint_count(), before + 1);
    fault("{\"clear\":true}");
    client_close(&c);
}

static void test_refresh_before_expiry(void **state)
{
    (void)state;
    client_t c;
    client_open(&c, pem, 60000);
    json_t *j = NULL;
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    long before = mint_count();
    /* 54 minutes later: 6 left, more than the 5-minute margin, same token */
    c.clock.offset_ms += 54 * 60000;
    json_decref(fakegh_control(&fake, "config", "{\"clock_offset\":%d}", 54 * 60));
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(mint_count(), before);
    /* 56 minutes: inside the margin, a fresh one before the old one dies */
    c.clock.offset_ms += 2 * 60000;
    json_decref(fakegh_control(&fake, "config", "{\"clock_offset\":%d}", 56 * 60));
    assert_int_equal(ghapi_repo_get(&j, c.gh, &HELLO), GHAPI_OK);
    json_decref(j);
    assert_int_equal(mint_count(), before + 1);
    json_decref(fakegh_control(&fake, "config", "{\"clock_offset\":0}"));
    client_close(&c);
}

typedef struct {
    ghapi_app_t *app;
    int calls;
    int failures;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    ghapi_t *gh = ghapi_new(a->app);
    for (int i = 0; i < a->calls; i++) {
        char *tok = NULL;
        if (ghapi_installation_token(&tok, NULL, gh, 7, "octo/hello") != GHAPI_OK)
            a->failures++;
        free(tok);
    }
    ghapi_free(gh);
    return NULL;
}

static void test_one_mint_for_many_threads(void **state)
{
    (void)state;
    ghapi_options_t o = GHAPI_OPTIONS_INIT;
    o.api_url = fake.base_url;
    o.app_id = "1234";
    o.private_key = pem;
    ghapi_app_t *app = NULL;
    char err[256];
    assert_int_equal(ghapi_app_new(&app, &o, err, sizeof(err)), GHAPI_OK);
    long before = mint_count();
    pthread_t t[8];
    worker_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (worker_arg_t){app, 125, 0};
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(mint_count(), before + 1);
    ghapi_app_free(app);
}

static void test_decide_table(void **state)
{
    (void)state;
    ghapi_decision_t d;
    ghapi_answer_t a = {.status = 422, .rl_remaining = 10, .retry_after_s = -1, .rl_reset_s = -1};
    ghapi_decide(&d, &a, 0, 0, 1000000, 42);
    assert_int_equal(d.kind, GHAPI_WAIT_NONE);
    assert_int_equal(d.err, GHAPI_ERR_VALIDATION);
    a.status = 404;
    ghapi_decide(&d, &a, 0, 0, 1000000, 42);
    assert_int_equal(d.err, GHAPI_ERR_NOT_FOUND);
    a.status = 403; /* a 403 that is no rate limit: a missing permission, final */
    ghapi_decide(&d, &a, 0, 0, 1000000, 42);
    assert_int_equal(d.kind, GHAPI_WAIT_NONE);
    assert_int_equal(d.err, GHAPI_ERR_FORBIDDEN);
    a.status = 503;
    ghapi_decide(&d, &a, 0, 3, 1000000, 42);
    assert_int_equal(d.kind, GHAPI_WAIT_BACKOFF);
    assert_in_range(d.wait_ms, 4000, 12000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_from_both_key_formats),
        cmocka_unit_test(test_bad_key_is_a_clear_error),
        cmocka_unit_test(test_typed_calls),
        cmocka_unit_test(test_pagination_and_etags),
        cmocka_unit_test(test_rate_limits_and_faults),
        cmocka_unit_test(test_401_remints_once),
        cmocka_unit_test(test_refresh_before_expiry),
        cmocka_unit_test(test_one_mint_for_many_threads),
        cmocka_unit_test(test_decide_table),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
