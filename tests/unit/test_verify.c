/* verify: GitHub's documented test vector and every way a signature is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "app/webhook/verify.h"

/* docs.github.com, "Validating webhook deliveries": the published example */
static const char gh_secret[] = "It's a Secret to Everybody";
static const char gh_body[] = "Hello, World!";
static const char gh_sig[] = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

static int check(const char *secret, const char *body, const char *header)
{
    return verify_signature(secret, secret ? strlen(secret) : 0, body, strlen(body), header,
                            header ? strlen(header) : 0);
}

static void test_github_vector(void **state)
{
    (void)state;
    assert_int_equal(check(gh_secret, gh_body, gh_sig), VERIFY_OK);
    char out[VERIFY_HEADER_LEN + 1];
    assert_int_equal(verify_sign(gh_secret, strlen(gh_secret), gh_body, strlen(gh_body), out), 0);
    assert_string_equal(out, gh_sig);
}

static void test_uppercase_hex_is_the_same_mac(void **state)
{
    (void)state;
    char upper[sizeof(gh_sig)];
    strcpy(upper, gh_sig);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    assert_int_equal(check(gh_secret, gh_body, upper), VERIFY_OK);
}

static void test_wrong(void **state)
{
    (void)state;
    assert_int_equal(check(gh_secret, "Hello, World?", gh_sig), VERIFY_MISMATCH);
    assert_int_equal(check("It's a secret to everybody", gh_body, gh_sig), VERIFY_MISMATCH);
    char flipped[sizeof(gh_sig)];
    strcpy(flipped, gh_sig);
    flipped[sizeof(gh_sig) - 2] = flipped[sizeof(gh_sig) - 2] == '7' ? '8' : '7';
    assert_int_equal(check(gh_secret, gh_body, flipped), VERIFY_MISMATCH);
}

static void test_malformed_and_missing(void **state)
{
    (void)state;
    assert_int_equal(check(gh_secret, gh_body, NULL), VERIFY_MISSING);
    assert_int_equal(check(NULL, gh_body, gh_sig), VERIFY_MISSING);
    assert_int_equal(check("", gh_body, gh_sig), VERIFY_MISSING);
    assert_int_equal(check(gh_secret, gh_body, ""), VERIFY_MALFORMED);
    assert_int_equal(check(gh_secret, gh_body, gh_sig + 7), VERIFY_MALFORMED); /* hex without prefix */
    assert_int_equal(check(gh_secret, gh_body, "sha1=0123456789abcdef0123456789abcdef01234567"), VERIFY_MALFORMED);
    char bad[sizeof(gh_sig)];
    strcpy(bad, gh_sig);
    bad[10] = 'g';
    assert_int_equal(check(gh_secret, gh_body, bad), VERIFY_MALFORMED);
    strcpy(bad, gh_sig);
    bad[sizeof(gh_sig) - 2] = '\0';
    assert_int_equal(check(gh_secret, gh_body, bad), VERIFY_MALFORMED);
    char longer[sizeof(gh_sig) + 2];
    strcpy(longer, gh_sig);
    strcat(longer, "00");
    assert_int_equal(check(gh_secret, gh_body, longer), VERIFY_MALFORMED);
}

static void test_empty_body(void **state)
{
    (void)state;
    char out[VERIFY_HEADER_LEN + 1];
    verify_sign(gh_secret, strlen(gh_secret), "", 0, out);
    assert_int_equal(verify_signature(gh_secret, strlen(gh_secret), NULL, 0, out, strlen(out)), VERIFY_OK);
}

/* ---- streaming: the same answers, whatever the reads look like ---- */

static int stream_check(const verify_key_t *key, const char *body, size_t len, const char *header, size_t step)
{
    verify_stream_t *s = NULL;
    int rc = verify_stream_begin(&s, key, header, header ? strlen(header) : 0);
    if (rc != VERIFY_OK) {
        assert_null(s);
        return rc;
    }
    for (size_t off = 0; off < len; off += step)
        verify_stream_update(s, body + off, len - off < step ? len - off : step);
    rc = verify_stream_finish(s);
    verify_stream_free(s);
    return rc;
}

static void test_stream_github_vector_in_every_split(void **state)
{
    (void)state;
    verify_key_t *key = NULL;
    assert_int_equal(verify_key_new(&key, gh_secret, strlen(gh_secret)), VERIFY_OK);
    for (size_t step = 1; step <= strlen(gh_body) + 1; step++) {
        assert_int_equal(stream_check(key, gh_body, strlen(gh_body), gh_sig, step), VERIFY_OK);
        assert_int_equal(stream_check(key, "Hello, World?", 13, gh_sig, step), VERIFY_MISMATCH);
    }
    verify_key_free(key);
}

/* One key serves any number of bodies: streams work on copies of its state. */
static void test_stream_key_is_reusable_and_agrees_with_one_shot(void **state)
{
    (void)state;
    static char body[70000];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)('a' + (i * 7919) % 26);
    char sig[VERIFY_HEADER_LEN + 1];
    verify_key_t *key = NULL;
    assert_int_equal(verify_key_new(&key, gh_secret, strlen(gh_secret)), VERIFY_OK);
    const size_t steps[] = {1, 63, 64, 65, 4096, 65536, sizeof(body)};
    for (size_t n = 0; n <= sizeof(body); n += n < 200 ? 1 : 9973) {
        verify_sign(gh_secret, strlen(gh_secret), body, n, sig);
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            if (n > 2000 && steps[i] == 1)
                continue;
            assert_int_equal(stream_check(key, body, n, sig, steps[i]), VERIFY_OK);
        }
        assert_int_equal(verify_signature(gh_secret, strlen(gh_secret), body, n, sig, strlen(sig)), VERIFY_OK);
    }
    verify_sign("another secret", 14, body, 100, sig);
    assert_int_equal(stream_check(key, body, 100, sig, 7), VERIFY_MISMATCH);
    verify_key_free(key);
}

static void test_stream_refuses_bad_headers_before_the_body(void **state)
{
    (void)state;
    verify_key_t *key = NULL;
    verify_stream_t *s = (verify_stream_t *)1;
    assert_int_equal(verify_key_new(&key, "", 0), VERIFY_MISSING);
    assert_null(key);
    assert_int_equal(verify_key_new(&key, gh_secret, strlen(gh_secret)), VERIFY_OK);
    assert_int_equal(verify_stream_begin(&s, key, NULL, 0), VERIFY_MISSING);
    assert_null(s);
    assert_int_equal(verify_stream_begin(&s, NULL, gh_sig, strlen(gh_sig)), VERIFY_MISSING);
    const char *bad[] = {"", gh_sig + 7, "sha1=0123456789abcdef0123456789abcdef01234567",
                         "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                         "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
                         "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(verify_stream_begin(&s, key, bad[i], strlen(bad[i])), VERIFY_MALFORMED);
        assert_null(s);
        /* and the one-shot form agrees */
        assert_int_equal(check(gh_secret, gh_body, bad[i]), VERIFY_MALFORMED);
    }
    /* an empty body has a MAC too */
    char sig[VERIFY_HEADER_LEN + 1];
    verify_sign(gh_secret, strlen(gh_secret), "", 0, sig);
    assert_int_equal(stream_check(key, "", 0, sig, 1), VERIFY_OK);
    verify_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github_vector),    cmocka_unit_test(test_uppercase_hex_is_the_same_mac),
        cmocka_unit_test(test_wrong),            cmocka_unit_test(test_malformed_and_missing),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_stream_github_vector_in_every_split),
        cmocka_unit_test(test_stream_key_is_reusable_and_agrees_with_one_shot),
        cmocka_unit_test(test_stream_refuses_bad_headers_before_the_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
