/*
 * test_strbuf — text made printable: what a terminal or a log reader would
 * obey (C0, DEL, C1, bytes that are not UTF-8) is shown escaped, and every
 * other character, in any script, is kept as it was.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "app/common/strbuf.h"

static void check(const char *in, size_t n, const char *want)
{
    strbuf_t b = STRBUF_INIT;
    strbuf_append_printable(&b, in, n);
    char *got = strbuf_detach(&b, NULL);
    if (strcmp(got ? got : "", want) != 0) {
        print_error("printable(%zu bytes)\n  = \"%s\"\n  want \"%s\"\n", n, got ? got : "", want);
        free(got);
        fail();
    }
    free(got);
}

#define CHECK(in, want) check(in, sizeof(in) - 1, want)

static void test_controls_are_shown(void **state)
{
    (void)state;
    CHECK("plain text", "plain text");
    CHECK("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07");
    CHECK("line\nnext\r\tend\x7f", "line\\x0anext\\x0d\\x09end\\x7f");
    CHECK("a\0b", "a\\x00b");
    /* C1 as UTF-8: CSI (U+009B), NEL (U+0085), and the edges of the range */
    CHECK("\xc2\x9b" "31m\xc2\x85", "\\u009b31m\\u0085");
    CHECK("\xc2\x80\xc2\x9f\xc2\xa0", "\\u0080\\u009f\xc2\xa0");
    /* raw C1 bytes and other bytes that are not UTF-8 */
    CHECK("\x9b" "2J", "\\x9b2J");
    CHECK("\xc0\xaf", "\\xc0\\xaf");             /* overlong '/' */
    CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");    /* a surrogate */
    CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* beyond U+10FFFF */
    CHECK("cut \xe2\x82", "cut \\xe2\\x82");
}

static void test_text_in_any_script_is_kept(void **state)
{
    (void)state;
    CHECK("Grüße, 日本語, emoji 🚀, Ω", "Grüße, 日本語, emoji 🚀, Ω");
    CHECK("\xf0\x9f\x9a\x80\x1b", "\xf0\x9f\x9a\x80\\x1b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controls_are_shown),
        cmocka_unit_test(test_text_in_any_script_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
