/*
 * test_redact — credential shapes are replaced wherever they stand, and only
 * they (words that merely look alike stay); known values are replaced by
 * their names and found in files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "app/common/redact.h"

static char *patterns(const char *s)
{
    strbuf_t b = STRBUF_INIT;
    redact_patterns(&b, s, strlen(s));
    char *r = strbuf_detach(&b, NULL);
    return r ? r : strdup("");
}

static void check(const char *in, const char *want)
{
    char *got = patterns(in);
    if (strcmp(got, want) != 0) {
        print_error("redact_patterns(\"%s\")\n  = \"%s\"\n  want \"%s\"\n", in, got, want);
        free(got);
        fail();
    }
    free(got);
}

static void test_shapes(void **state)
{
    (void)state;
    check("token ghs_16C7e42F292c6912E7710c838347Ae178B4a here", "token ghs_[redacted] here");
    check("(ghp_abcdefghijklmnopqrstuvwxyz0123456789AB)", "(ghp_[redacted])");
    check("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_[redacted]");
    check("key=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx-yz", "key=sk-[redacted]");
    check("sk-proj-0123456789abcdefghijKLMN.", "sk-[redacted].");
    check("AKIAIOSFODNN7EXAMPLE is the id", "AKIA[redacted] is the id");
    check("xoxb-123456789012-abcdefghij", "xoxb-[redacted]");
    check("before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nabc\n-----END RSA PRIVATE KEY-----\nafter",
          "before\n[private key redacted]\nafter");
    check("-----BEGIN OPENSSH PRIVATE KEY-----\ncut off", "[private key redacted]");
    /* look-alikes stay */
    check("ghp_short sk-1 task-force-unit-1234567890123456 AKIAshort", "ghp_short sk-1 task-force-unit-1234567890123456 AKIAshort");
    check("mask-0123456789012345678901234", "mask-0123456789012345678901234");
    check("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----");
    check("", "");
}

static void test_values(void **state)
{
    (void)state;
    redact_set_t set = {0};
    redact_set_add(&set, "ANTHROPIC_API_KEY", "team-key-0123456789");
    redact_set_add(&set, "SHORT", "abc"); /* too short to redact */
    redact_set_add(&set, "NONE", NULL);
    assert_int_equal(set.count, 1);
    char *r = redact_values("use team-key-0123456789, or team-key-0123456789!", &set);
    assert_string_equal(r, "use [ANTHROPIC_API_KEY redacted], or [ANTHROPIC_API_KEY redacted]!");
    free(r);
    assert_null(redact_values(NULL, &set));
    const char *file = "API_KEY = 'team-key-0123456789'\n";
    assert_string_equal(redact_find(file, strlen(file), &set), "ANTHROPIC_API_KEY");
    assert_null(redact_find("nothing here", 12, &set));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_shapes), cmocka_unit_test(test_values)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
