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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github_vector),    cmocka_unit_test(test_uppercase_hex_is_the_same_mac),
        cmocka_unit_test(test_wrong),            cmocka_unit_test(test_malformed_and_missing),
        cmocka_unit_test(test_empty_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
