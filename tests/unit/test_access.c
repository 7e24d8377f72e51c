/*
 * test_access — the Host rule: loopback names and PUBLIC_URL's host are
 * served, with or without a port, in any case, and so is the address the
 * connection arrived on; every other name, a name that merely starts or ends
 * like an allowed one, and no name at all are not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "app/server/access.h"

static int allowed(const access_t *a, const char *host)
{
    return access_host_allowed(a, host, strlen(host), NULL);
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
    assert_false(access_host_allowed(&a, NULL, 0, NULL));
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

static int allowed_on(const char *host, const struct sockaddr *local)
{
    config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    access_t a;
    access_init(&a, &cfg);
    return access_host_allowed(&a, host, strlen(host), local);
}

/* A probe, a health check or a scrape names the address it dialled; a
 * rebinding page cannot put an address literal in Host. */
static void test_the_address_dialled(void **state)
{
    (void)state;
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.0.0.5", &v4.sin_addr);
    const struct sockaddr *l4 = (const struct sockaddr *)&v4;
    assert_true(allowed_on("10.0.0.5:3000", l4));
    assert_true(allowed_on("10.0.0.5", l4));
    assert_false(allowed_on("10.0.0.6:3000", l4));     /* another address: not ours */
    assert_false(allowed_on("10.0.0.5.nip.io", l4));
    assert_false(allowed_on("[::ffff:10.0.0.5]", l4));
    assert_false(allowed_on("10.0.0.5:3000", NULL));  /* unknown local address */

    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6}; /* a dual-stack socket's IPv4 client */
    inet_pton(AF_INET6, "::ffff:10.0.0.5", &mapped.sin6_addr);
    assert_true(allowed_on("10.0.0.5:3000", (const struct sockaddr *)&mapped));
    assert_false(allowed_on("10.0.0.6:3000", (const struct sockaddr *)&mapped));

    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
    const struct sockaddr *l6 = (const struct sockaddr *)&v6;
    assert_true(allowed_on("[2001:db8::7]:3000", l6));
    assert_true(allowed_on("[2001:DB8:0::7]", l6));
    assert_false(allowed_on("[2001:db8::8]:3000", l6));
    assert_false(allowed_on("10.0.0.5:3000", l6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_names),
        cmocka_unit_test(test_public_url_host),
        cmocka_unit_test(test_the_address_dialled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
