/*
 * test_findings — the findings schema of docs/review.md: what an agent may
 * write to $PATCHBAY_REVIEW_FILE, what is kept (with defaults filled in), and
 * what is dropped with which reason, one finding at a time, never the whole
 * file. Also the document shapes (envelope, bare array, JSON Lines, appended
 * objects), size limits, and reading the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/review/findings.h"

/* One finding object per case: kept (with what it became) or dropped (why). */
typedef struct {
    const char *json;
    const char *drop; /* substring of the reason; NULL = kept */
    const char *path;
    uint32_t line, start_line;
    diff_side_t side;
    finding_severity_t severity;
    const char *body, *suggestion;
} finding_case_t;

#define KEPT(j, p, l, s, side, sev, b, sug) {j, NULL, p, l, s, side, sev, b, sug}
#define DROPPED(j, why) {j, why, NULL, 0, 0, 0, 0, NULL, NULL}

static const finding_case_t cases[] = {
    KEPT("{\"path\":\"src/a.c\",\"line\":3,\"severity\":\"error\",\"body\":\"Null deref\"}", "src/a.c", 3, 0,
         DIFF_SIDE_RIGHT, FINDING_ERROR, "Null deref", NULL),
    KEPT("{\"path\":\"./src/a.c\",\"line\":9,\"start_line\":7,\"side\":\"left\",\"severity\":\"Warning\",\"body\":"
         "\"  removed check  \\n\"}",
         "src/a.c", 9, 7, DIFF_SIDE_LEFT, FINDING_WARNING, "removed check", NULL),
    KEPT("{\"path\":\"a.c\",\"line\":5,\"start_line\":5,\"body\":\"x\",\"side\":null,\"severity\":null}", "a.c", 5, 0,
         DIFF_SIDE_RIGHT, FINDING_INFO, "x", NULL),
    KEPT("{\"path\":\"a.c\",\"line\":5,\"body\":\"use size_t\",\"suggestion\":\"size_t n = 0;\\n\",\"extra\":[1]}",
         "a.c", 5, 0, DIFF_SIDE_RIGHT, FINDING_INFO, "use size_t", "size_t n = 0;\n"),
    KEPT("{\"path\":\"a.c\",\"line\":5,\"body\":\"delete these\",\"suggestion\":\"\",\"start_line\":4,"
         "\"start_side\":\"RIGHT\"}",
         "a.c", 5, 4, DIFF_SIDE_RIGHT, FINDING_INFO, "delete these", ""),
    KEPT("{\"path\":\"a.c\",\"line\":100000000,\"body\":\"far\"}", "a.c", 100000000, 0, DIFF_SIDE_RIGHT, FINDING_INFO,
         "far", NULL),

    DROPPED("[1]", "not a JSON object"),
    DROPPED("{\"line\":3,\"body\":\"x\"}", "path is missing"),
    DROPPED("{\"path\":7,\"line\":3,\"body\":\"x\"}", "path is missing or not a string"),
    DROPPED("{\"path\":\"\",\"line\":3,\"body\":\"x\"}", "path is empty"),
    DROPPED("{\"path\":\"./\",\"line\":3,\"body\":\"x\"}", "path is empty"),
    DROPPED("{\"path\":\"a\\u0000b\",\"line\":3,\"body\":\"x\"}", "NUL"),
    DROPPED("{\"path\":\"a.c\",\"body\":\"x\"}", "line is missing"),
    DROPPED("{\"path\":\"a.c\",\"line\":\"3\",\"body\":\"x\"}", "line is missing or not an integer"),
    DROPPED("{\"path\":\"a.c\",\"line\":3.0,\"body\":\"x\"}", "line is missing or not an integer"),
    DROPPED("{\"path\":\"a.c\",\"line\":0,\"body\":\"x\"}", "line 0 is out of range"),
    DROPPED("{\"path\":\"a.c\",\"line\":-4,\"body\":\"x\"}", "line -4 is out of range"),
    DROPPED("{\"path\":\"a.c\",\"line\":100000001,\"body\":\"x\"}", "out of range"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"side\":\"BOTH\",\"body\":\"x\"}", "side must be RIGHT or LEFT"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"side\":1,\"body\":\"x\"}", "side must be RIGHT or LEFT"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"start_line\":4,\"body\":\"x\"}", "start_line 4 is not between 1 and line 3"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"start_line\":0,\"body\":\"x\"}", "start_line 0"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"start_line\":\"1\",\"body\":\"x\"}", "start_line is not an integer"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"start_line\":1,\"start_side\":\"LEFT\",\"body\":\"x\"}",
            "start_side must equal side"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"severity\":\"critical\",\"body\":\"x\"}", "severity must be"),
    DROPPED("{\"path\":\"a.c\",\"line\":3}", "body is missing"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"body\":[\"x\"]}", "body is missing or not a string"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"body\":\" \\n\\t \"}", "body is empty"),
    DROPPED("{\"path\":\"a.c\",\"line\":3,\"body\":\"x\",\"suggestion\":42}", "suggestion is not a string"),
};

static void test_one_finding_at_a_time(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const finding_case_t *c = &cases[i];
        findings_t f = FINDINGS_INIT;
        json_error_t err;
        json_t *v = json_loads(c->json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        assert_non_null(v);
        char reason[128] = "";
        int rc = findings_add_json(&f, v, reason, sizeof(reason));
        json_decref(v);
        if (c->drop != NULL) {
            if (rc != -1 || strstr(reason, c->drop) == NULL)
                fail_msg("case %zu %s: want dropped (%s), got rc %d reason '%s'", i, c->json, c->drop, rc, reason);
            assert_int_equal(f.count, 0);
            assert_int_equal(f.dropped, 1);
            assert_int_equal(f.ndrops, 1);
            assert_string_equal(f.drops[0].reason, reason);
        } else {
            if (rc != 0)
                fail_msg("case %zu %s: dropped: %s", i, c->json, reason);
            assert_int_equal(f.count, 1);
            const finding_t *x = &f.items[0];
            assert_string_equal(x->path, c->path);
            assert_int_equal(x->line, c->line);
            assert_int_equal(x->start_line, c->start_line);
            assert_int_equal(x->side, c->side);
            assert_int_equal(x->severity, c->severity);
            assert_string_equal(x->body, c->body);
            if (c->suggestion == NULL)
                assert_null(x->suggestion);
            else
                assert_string_equal(x->suggestion, c->suggestion);
        }
        findings_free(&f);
    }
}

static findings_t parse(const char *text, int want_rc)
{
    findings_t f = FINDINGS_INIT;
    assert_int_equal(findings_parse(&f, text, strlen(text)), want_rc);
    return f;
}

static void test_document_shapes(void **state)
{
    (void)state;
    /* the envelope: summary and findings; the bad one dropped, the rest kept */
    findings_t f = parse("{\"summary\":\"Looks fine overall.\",\"findings\":["
                         "{\"path\":\"a.c\",\"line\":1,\"body\":\"one\"},"
                         "{\"path\":\"a.c\",\"line\":\"two\",\"body\":\"bad\"},"
                         "{\"path\":\"b.c\",\"line\":2,\"body\":\"three\",\"severity\":\"error\"}]}",
                         FINDINGS_OK);
    assert_int_equal(f.count, 2);
    assert_int_equal(f.seen, 3);
    assert_int_equal(f.dropped, 1);
    assert_int_equal(f.drops[0].index, 1);
    assert_string_equal(f.summary, "Looks fine overall.");
    assert_int_equal(f.items[1].index, 2);
    findings_free(&f);

    /* a bare array, with a byte-order mark */
    f = parse("\xEF\xBB\xBF[{\"path\":\"a.c\",\"line\":1,\"body\":\"one\"}]", FINDINGS_OK);
    assert_int_equal(f.count, 1);
    findings_free(&f);

    /* JSON Lines, and objects appended without newlines, and a lone finding */
    f = parse("{\"path\":\"a.c\",\"line\":1,\"body\":\"one\"}\n"
              "{\"path\":\"a.c\",\"line\":2,\"body\":\"two\"}{\"path\":\"a.c\",\"line\":3,\"body\":\"three\"}\n"
              "\n{\"summary\":\"done\"}\n",
              FINDINGS_OK);
    assert_int_equal(f.count, 3);
    assert_int_equal(f.items[2].line, 3);
    assert_string_equal(f.summary, "done");
    findings_free(&f);

    /* a file cut off in the middle: what came before is kept */
    f = parse("{\"path\":\"a.c\",\"line\":1,\"body\":\"one\"}\n{\"path\":\"a.c\",\"li", FINDINGS_OK);
    assert_int_equal(f.count, 1);
    assert_int_equal(f.dropped, 1);
    assert_non_null(strstr(f.drops[0].reason, "not JSON after byte"));
    findings_free(&f);

    /* findings that is not an array; summary that is not a string */
    f = parse("{\"summary\":5,\"findings\":{\"path\":\"a.c\"}}", FINDINGS_OK);
    assert_int_equal(f.count, 0);
    assert_int_equal(f.dropped, 1);
    assert_null(f.summary);
    findings_free(&f);

    /* nothing at all is no error; text that is no JSON is */
    f = parse("  \n", FINDINGS_OK);
    assert_int_equal(f.count, 0);
    findings_free(&f);
    f = parse("I found 3 bugs!", FINDINGS_ERR_SYNTAX);
    findings_free(&f);
    f = parse("\"just a string\"", FINDINGS_ERR_SYNTAX);
    findings_free(&f);
}

static void test_duplicates_and_limits(void **state)
{
    (void)state;
    findings_t f = parse("[{\"path\":\"a.c\",\"line\":1,\"body\":\"same\"},{\"path\":\"a.c\",\"line\":1,\"body\":\"same\"},"
                         "{\"path\":\"a.c\",\"line\":1,\"body\":\"same\",\"side\":\"LEFT\"}]",
                         FINDINGS_OK);
    assert_int_equal(f.count, 2);
    assert_string_equal(f.drops[0].reason, "duplicate of finding 0");
    findings_free(&f);

    /* more than FINDINGS_MAX: the rest dropped, and counted */
    strbuf_t b = STRBUF_INIT;
    strbuf_append(&b, "[");
    for (int i = 0; i < FINDINGS_MAX + 25; i++)
        strbuf_appendf(&b, "%s{\"path\":\"a.c\",\"line\":%d,\"body\":\"n\"}", i ? "," : "", i + 1);
    strbuf_append(&b, "]");
    f = parse(b.data, FINDINGS_OK);
    assert_int_equal(f.count, FINDINGS_MAX);
    assert_int_equal(f.dropped, 25);
    assert_int_equal(f.ndrops, 25);
    findings_free(&f);
    strbuf_free(&b);

    /* a huge body is cut at a character boundary; a huge suggestion is left out */
    b = (strbuf_t)STRBUF_INIT;
    strbuf_append(&b, "{\"path\":\"a.c\",\"line\":1,\"body\":\"");
    for (unsigned i = 0; i < FINDINGS_BODY_MAX_BYTES; i++)
        strbuf_append(&b, "\xC3\xA9"); /* two bytes each: the cut lands mid-character half the time */
    strbuf_append(&b, "\",\"suggestion\":\"");
    for (unsigned i = 0; i < FINDINGS_SUGGESTION_MAX_BYTES + 1; i++)
        strbuf_append(&b, "x");
    strbuf_append(&b, "\"}");
    f = parse(b.data, FINDINGS_OK);
    assert_int_equal(f.count, 1);
    size_t n = strlen(f.items[0].body);
    assert_true(n <= FINDINGS_BODY_MAX_BYTES + 4);
    assert_string_equal(f.items[0].body + n - 4, " \xE2\x80\xA6");
    assert_memory_equal(f.items[0].body + n - 6, "\xC3\xA9", 2);
    assert_null(f.items[0].suggestion);
    findings_free(&f);
    strbuf_free(&b);

    /* invalid UTF-8 is not JSON (jansson refuses it) */
    f = parse("[{\"path\":\"a\xFF.c\",\"line\":1,\"body\":\"x\"}]", FINDINGS_ERR_SYNTAX);
    findings_free(&f);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_findings_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"findings\":[{\"path\":\"a.c\",\"line\":4,\"body\":\"b\",\"severity\":\"warning\"}]}";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    findings_t f = FINDINGS_INIT;
    f.job = "job-1";
    assert_int_equal(findings_load_file(&f, path), FINDINGS_OK);
    assert_int_equal(f.count, 1);
    assert_int_equal(f.items[0].severity, FINDING_WARNING);
    findings_free(&f);
    assert_string_equal(f.job, "job-1");
    unlink(path);
    assert_int_equal(findings_load_file(&f, path), FINDINGS_ERR_IO);
    findings_free(&f);
}

static void test_severity_names(void **state)
{
    (void)state;
    assert_int_equal(finding_severity_parse("ERROR"), FINDING_ERROR);
    assert_int_equal(finding_severity_parse("info"), FINDING_INFO);
    assert_int_equal(finding_severity_parse("fatal"), -1);
    assert_int_equal(finding_severity_parse(NULL), -1);
    assert_string_equal(finding_severity_name(FINDING_WARNING), "warning");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_finding_at_a_time),
        cmocka_unit_test(test_document_shapes),
        cmocka_unit_test(test_duplicates_and_limits),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_severity_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
