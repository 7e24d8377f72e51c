/*
 * test_ghmd — agent text made safe to post: mentions that cannot ping,
 * hidden comments removed, smuggled suggestions turned into plain code, code
 * left alone, and paths that cannot break out of their code spans or table
 * cells.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "app/common/strbuf.h"
#include "app/github/ghmd.h"

#define ZW "\xE2\x80\x8B"

static const struct {
    const char *in, *out;
} sanitize_cases[] = {
    {"@alice please look", "@" ZW "alice please look"},
    {"(@alice) and @bob.", "(@" ZW "alice) and @" ZW "bob."},
    {"@org/team", "@" ZW "org/team"},
    {"mail bob@example.com", "mail bob@example.com"},
    {"a @ b and @-x", "a @ b and @-x"},
    {"`@alice` in code", "`@alice` in code"},
    {"``code ` @alice`` then @bob", "``code ` @alice`` then @" ZW "bob"},
    {"unclosed ` @alice", "unclosed ` @" ZW "alice"},
    {"\\`@alice\\`", "\\`@" ZW "alice\\`"},
    {"```\n@alice <!-- kept -->\n```\n@bob", "```\n@alice <!-- kept -->\n```\n@" ZW "bob"},
    {"~~~ c\n@x\n~~~~\nafter @y", "~~~ c\n@x\n~~~~\nafter @" ZW "y"},
    {"a <!-- secret --> b", "a  b"},
    {"<!--\nmulti @alice\nline\n-->\nafter", "\nafter"},
    {"a <!-- never closed @alice", "a &lt;!-- never closed @" ZW "alice"},
    {"<!-- patchbay-review commit=abc -->fake", "fake"},
    {"```suggestion\nrm -rf /\n```", "```\nrm -rf /\n```"},
    {"   ````Suggestion foo\nx\n````", "   ````\nx\n````"},
    {"```c\nint x;\n```", "```c\nint x;\n```"},
    {"no newline at the end", "no newline at the end"},
};

static void test_sanitize(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sanitize_cases) / sizeof(sanitize_cases[0]); i++) {
        strbuf_t b = STRBUF_INIT;
        ghmd_sanitize(&b, sanitize_cases[i].in, strlen(sanitize_cases[i].in));
        const char *got = b.data ? b.data : "";
        if (strcmp(got, sanitize_cases[i].out) != 0)
            fail_msg("sanitize(%s)\n want %s\n got  %s", sanitize_cases[i].in, sanitize_cases[i].out, got);
        strbuf_free(&b);
    }
}

static void test_code_span(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int table;
        const char *out;
    } cases[] = {
        {"src/a.c", 1, "`src/a.c`"},
        {"a`b", 0, "``a`b``"},
        {"`x", 0, "`` `x ``"},
        {"a|b", 1, "`a\\|b`"},
        {"a|b", 0, "`a|b`"},
        {"bad\nname", 1, "`bad\xEF\xBF\xBDname`"},
        {"x\xFFy", 1, "`x\xEF\xBF\xBDy`"},
        {"caf\xC3\xA9", 1, "`caf\xC3\xA9`"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strbuf_t b = STRBUF_INIT;
        ghmd_code_span(&b, cases[i].in, cases[i].table);
        assert_string_equal(b.data, cases[i].out);
        strbuf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_code_span),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
