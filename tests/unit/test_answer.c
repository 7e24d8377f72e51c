/*
 * test_answer — the permalink rule of answer.h as a table of answers an
 * agent might write, against a commit of three files; and the reply around
 * the answer: the quoted question, mentions made inert, the marker, the
 * notes a reader needs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/kinds/answer.h"

#define BLOB "https://github.com/o/r/blob/0123456789abcdef0123456789abcdef01234567"

/* The commit: calc.py (20 lines), src/parse_x.c (5), docs/a+b.md (1). */
static int asked;

static int lines_of(void *arg, const char *path, size_t *lines)
{
    (void)arg;
    asked++;
    static const struct {
        const char *path;
        size_t lines;
    } files[] = {{"calc.py", 20}, {"src/parse_x.c", 5}, {"docs/a+b.md", 1}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (strcmp(path, files[i].path) == 0) {
            *lines = files[i].lines;
            return 0;
        }
    return -1;
}

static char *links(const char *md, size_t *made)
{
    strbuf_t out = STRBUF_INIT;
    *made = answer_permalinks(&out, md, strlen(md), BLOB, lines_of, NULL);
    return strbuf_detach(&out, NULL);
}

static const struct {
    const char *in, *want;
} cases[] = {
    /* the two forms, as words of their own */
    {"See calc.py:10.", "See [calc.py:10](" BLOB "/calc.py#L10)."},
    {"calc.py:10-14 does it", "[calc.py:10-14](" BLOB "/calc.py#L10-L14) does it"},
    {"(src/parse_x.c:2), and", "([src/parse_x.c:2](" BLOB "/src/parse_x.c#L2)), and"},
    {"in **calc.py:3**", "in **[calc.py:3](" BLOB "/calc.py#L3)**"},
    {"./calc.py:4", "[./calc.py:4](" BLOB "/calc.py#L4)"},
    {"docs/a+b.md:1", "[docs/a+b.md:1](" BLOB "/docs/a+b.md#L1)"},
    {"- calc.py:1\n- calc.py:2\n", "- [calc.py:1](" BLOB "/calc.py#L1)\n- [calc.py:2](" BLOB "/calc.py#L2)\n"},
    /* a code span that is exactly a reference shows as code, linked */
    {"`calc.py:5`", "[`calc.py:5`](" BLOB "/calc.py#L5)"},
    {"`` calc.py:5-6 ``", "[`` calc.py:5-6 ``](" BLOB "/calc.py#L5-L6)"},
    /* files the commit does not have, or lines it does not have */
    {"nope.py:3", "nope.py:3"},
    {"calc.py:21", "calc.py:21"},
    {"calc.py:19-21", "calc.py:19-21"},
    {"calc.py:0", "calc.py:0"},
    {"calc.py:9-3", "calc.py:9-3"},
    /* not references: a line and column, glued words, no line */
    {"calc.py:10:5", "calc.py:10:5"},
    {"calc.py:10x", "calc.py:10x"},
    {"xcalc.py:10", "xcalc.py:10"},
    {"calc.py", "calc.py"},
    {"calc.py:", "calc.py:"},
    /* never a URL, an address, a path out of the repository */
    {"https://example.com/calc.py:10", "https://example.com/calc.py:10"},
    {"see http://h/x calc.py:1", "see http://h/x [calc.py:1](" BLOB "/calc.py#L1)"},
    {"me@calc.py:1", "me@calc.py:1"},
    {"../calc.py:1", "../calc.py:1"},
    {"/calc.py:1", "/calc.py:1"},
    {"src//parse_x.c:1", "src//parse_x.c:1"},
    {"src/../calc.py:1", "src/../calc.py:1"},
    /* left alone: code blocks, spans with more in them, links, autolinks */
    {"```\ncalc.py:1\n```\ncalc.py:2", "```\ncalc.py:1\n```\n[calc.py:2](" BLOB "/calc.py#L2)"},
    {"~~~~c\ncalc.py:1\n~~~\n~~~~\n", "~~~~c\ncalc.py:1\n~~~\n~~~~\n"},
    {"`open calc.py:1`", "`open calc.py:1`"},
    {"[calc.py:1](https://x)", "[calc.py:1](https://x)"},
    {"[see calc.py:1]", "[see calc.py:1]"},
    {"<https://x/calc.py:1>", "<https://x/calc.py:1>"},
    {"\\`calc.py:1`", "\\`calc.py:1`"},
    {"", ""},
};

static void test_permalink_rule(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t made;
        char *got = links(cases[i].in, &made);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu: %s\n  got  %s\n  want %s", i, cases[i].in, got, cases[i].want);
        assert_int_equal(made > 0, strstr(cases[i].want, BLOB) != NULL);
        free(got);
    }
}

/* A path that leaves the repository is refused before the commit is asked. */
static void test_bad_paths_never_reach_the_commit(void **state)
{
    (void)state;
    size_t made;
    asked = 0;
    free(links("../../etc/passwd:1 /etc/passwd:1 a//b:1 ./../x:1", &made));
    assert_int_equal(asked, 0);
    assert_int_equal(made, 0);
}

static void test_without_a_commit_nothing_is_linked(void **state)
{
    (void)state;
    strbuf_t out = STRBUF_INIT;
    assert_int_equal(answer_permalinks(&out, "calc.py:1", 9, NULL, lines_of, NULL), 0);
    assert_string_equal(out.data, "calc.py:1");
    strbuf_free(&out);
}

static void test_the_reply(void **state)
{
    (void)state;
    strbuf_t out = STRBUF_INIT;
    answer_t a = {.question = "why does add() return -1? cc @bob\nmore details here",
                  .text = "Because calc.py:2 subtracts. <!-- hidden --> Ping @carol.\n",
                  .blob_url = BLOB,
                  .lines = lines_of,
                  .where = "`main` at `0123456`",
                  .handle = "patchbay",
                  .job_id = "42"};
    assert_int_equal(answer_render(&out, &a), 1);
    const char *s = out.data;
    /* the question's first line, quoted, pinging nobody */
    static const char quoted[] = "> why does add() return -1? cc @\xE2\x80\x8B" "bob\n\n";
    assert_true(strncmp(s, quoted, sizeof(quoted) - 1) == 0);
    assert_null(strstr(s, "more details"));
    assert_non_null(strstr(s, "Because [calc.py:2](" BLOB "/calc.py#L2) subtracts."));
    assert_null(strstr(s, "hidden"));
    assert_non_null(strstr(s, "@\xE2\x80\x8B" "carol"));
    assert_non_null(strstr(s, "Answered by patchbay from `main` at `0123456`; no change was made."));
    assert_null(strstr(s, "threw"));
    assert_null(strstr(s, "Read as a question"));
    assert_non_null(strstr(s, "<!-- patchbay:answer=42 -->\n"));
    assert_true(answer_marker_is(s, "42"));
    assert_false(answer_marker_is(s, "4"));
    assert_false(answer_marker_is("<!-- patchbay:job=42 -->", "42"));
    strbuf_free(&out);

    /* in a thread: no quote; changes thrown away; the kind was inferred */
    a.question = NULL;
    a.discarded = 2;
    a.inferred = 1;
    assert_int_equal(answer_render(&out, &a), 1);
    assert_true(strncmp(out.data, "Because", 7) == 0);
    assert_non_null(strstr(out.data, "the agent changed 2 files while answering"));
    assert_non_null(strstr(out.data, "threw them away"));
    assert_non_null(strstr(out.data, "for a change, write `@patchbay fix ...`"));
    strbuf_free(&out);

    /* a long first line is cut on a character boundary, and says so */
    char q[600];
    memset(q, 'a', 199);
    strcpy(q + 199, "\xC3\xA9 and the rest");
    a.question = q;
    a.discarded = 0;
    answer_render(&out, &a);
    const char *nl = strchr(out.data, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - out.data, 2 + 199 + 4); /* "> ", 199 a's, " …" */
    assert_non_null(strstr(out.data, "a …\n"));
    strbuf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permalink_rule),
        cmocka_unit_test(test_bad_paths_never_reach_the_commit),
        cmocka_unit_test(test_without_a_commit_nothing_is_linked),
        cmocka_unit_test(test_the_reply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
