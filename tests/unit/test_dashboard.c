/* dashboard: which HOST values count as loopback (the dashboard is open there without a token). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "app/server/dashboard.h"

static void test_loopback(void **state)
{
    (void)state;
    assert_true(dashboard_host_is_loopback("127.0.0.1"));
    assert_true(dashboard_host_is_loopback("127.1.2.3"));
    assert_true(dashboard_host_is_loopback("::1"));
    assert_true(dashboard_host_is_loopback("localhost"));
    assert_true(dashboard_host_is_loopback("LOCALHOST"));
    assert_false(dashboard_host_is_loopback("0.0.0.0"));
    assert_false(dashboard_host_is_loopback("::"));
    assert_false(dashboard_host_is_loopback("10.0.0.5"));
    assert_false(dashboard_host_is_loopback("128.0.0.1"));
    assert_false(dashboard_host_is_loopback("localhost.example.com"));
    assert_false(dashboard_host_is_loopback("127.0.0.1.nip.io"));
    assert_false(dashboard_host_is_loopback(""));
    assert_false(dashboard_host_is_loopback(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_loopback)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
