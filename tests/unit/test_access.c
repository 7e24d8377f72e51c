/*
 * test_access — the Host rule: loopback names and PUBLIC_URL's host are
 * served, with or without a port, in any case; every other name, a name that
 * merely starts or ends like an allowed one, and no name at all are not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "app/server/access.h"

static int allowed(const access_t *a, const char *host)
{
    return access_host_allowed(a, host, strlen(host));
}

static void test_loopback_names(void **state)
{
    (void)state;
    config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    access_t a;
    access_init(&a, &cfg);
    assert_true(allowed(&a, "127.0.0.1"));
    assert_true(allowed(&a, "127.0.0.1:3000"));
    assert_true(allowed(&a, "127.1.2.3:80"));
    assert_true(allowed(&a, "localhost"));
    assert_true(allowed(&a, "LocalHost:3000"));
    assert_true(allowed(&a, "localhost.:3000"));
    assert_true(allowed(&a, "[::1]:3000"));
    assert_true(allowed(&a, "[::1]"));
    /* what a rebinding page, a proxy for another site, or a stray client sends */
    assert_false(allowed(&a, "attacker.example"));
    assert_false(allowed(&a, "attacker.example:3000"));
    assert_false(allowed(&a, "localhost.attacker.example"));
    assert_false(allowed(&a, "127.0.0.1.nip.io"));
    assert_false(allowed(&a, "10.0.0.5:3000"));
    assert_false(allowed(&a, "0.0.0.0:3000"));
    assert_false(allowed(&a, "[::]:3000"));
    assert_false(allowed(&a, "::1"));        /* an IPv6 address needs its brackets in Host */
    assert_false(allowed(&a, "[::1"));
    assert_false(allowed(&a, ""));
    assert_false(access_host_allowed(&a, NULL, 0));
    assert_true(access_name_is_loopback("::1", 3));
    assert_false(access_name_is_loopback("128.0.0.1", 9));
}

static void test_public_url_host(void **state)
{
    (void)state;
    config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    char url[] = "https://Patchbay.Example.com:8443/base/";
    cfg.server.public_url = url;
    access_t a;
    access_init(&a, &cfg);
    assert_string_equal(a.public_host, "patchbay.example.com");
    assert_true(allowed(&a, "patchbay.example.com"));
    assert_true(allowed(&a, "PATCHBAY.example.com:443"));
    assert_true(allowed(&a, "patchbay.example.com."));
    assert_true(allowed(&a, "localhost:3000")); /* the machine itself, still */
    assert_false(allowed(&a, "patchbay.example.com.attacker.example"));
    assert_false(allowed(&a, "xpatchbay.example.com"));
    assert_false(allowed(&a, "example.com"));

    char v6[] = "http://[2001:db8::7]:3000";
    cfg.server.public_url = v6;
    access_init(&a, &cfg);
    assert_string_equal(a.public_host, "2001:db8::7");
    assert_true(allowed(&a, "[2001:db8::7]:3000"));
    assert_false(allowed(&a, "[2001:db8::8]:3000"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_names),
        cmocka_unit_test(test_public_url_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
