/*
 * test_review_body — what people see: the review JSON and its markdown.
 * The event rules
 * (never APPROVE; REQUEST_CHANGES only when configured and not on the bot's
 * own PR), the comment cap, GitHub's body size limit on huge reviews, and
 * the coverage plan (reviewed, clipped, skipped, with reasons).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/common/strbuf.h"
#include "jobs/review/coverage.h"
#include "jobs/review/diff.h"
#include "jobs/review/findings.h"
#include "jobs/review/review_body.h"

#define ZW "\xE2\x80\x8B" /* the zero-width space after a neutralised @ */

static const char *DIFF = "diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n+C\n c\n"
                          "diff --git a/img.png b/img.png\nBinary files a/img.png and b/img.png differ\n";

static json_t *build(const char *findings_json, review_options_t *opt, review_stats_t *st, diff_t **dout)
{
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, DIFF, strlen(DIFF), NULL), DIFF_OK);
    findings_t fs = FINDINGS_INIT;
    assert_int_equal(findings_parse(&fs, findings_json, strlen(findings_json)), FINDINGS_OK);
    coverage_t cov = COVERAGE_INIT;
    assert_int_equal(coverage_plan(&cov, d, NULL), 0);
    json_t *r = NULL;
    assert_int_equal(review_build(&r, st, d, &fs, &cov, opt), REVIEW_OK);
    coverage_free(&cov);
    findings_free(&fs);
    if (dout)
        *dout = d;
    else
        diff_free(d);
    return r;
}

static const char *event_of(json_t *r)
{
    return json_string_value(json_object_get(r, "event"));
}

static void test_events(void **state)
{
    (void)state;
    const char *err = "[{\"path\":\"a.c\",\"line\":2,\"severity\":\"error\",\"body\":\"bug\"}]";
    const char *warn = "[{\"path\":\"a.c\",\"line\":2,\"severity\":\"warning\",\"body\":\"hmm\"}]";
    review_options_t opt = REVIEW_OPTIONS_INIT;
    review_stats_t st;
    json_t *r = build(err, &opt, &st, NULL);
    assert_string_equal(event_of(r), "COMMENT");
    json_decref(r);
    opt.request_changes = 1;
    r = build(err, &opt, &st, NULL);
    assert_string_equal(event_of(r), "REQUEST_CHANGES");
    assert_string_equal(st.event, "REQUEST_CHANGES");
    json_decref(r);
    r = build(warn, &opt, &st, NULL);
    assert_string_equal(event_of(r), "COMMENT");
    json_decref(r);
    opt.self_authored = 1; /* GitHub refuses REQUEST_CHANGES on one's own PR */
    r = build(err, &opt, &st, NULL);
    assert_string_equal(event_of(r), "COMMENT");
    json_decref(r);
}

static void test_no_findings_and_marker(void **state)
{
    (void)state;
    review_options_t opt = REVIEW_OPTIONS_INIT;
    opt.commit_id = "0123abcd -->@alice";
    review_stats_t st;
    json_t *r = build("{\"summary\":\"All good, @alice.\",\"findings\":[]}", &opt, &st, NULL);
    const char *body = json_string_value(json_object_get(r, "body"));
    assert_string_equal(json_string_value(json_object_get(r, "commit_id")), "0123abcd -->@alice");
    /* the marker keeps only the SHA's characters, so it cannot be closed early */
    assert_true(strncmp(body, REVIEW_MARKER " commit=0123abcdalice -->\n", strlen(REVIEW_MARKER) + 26) == 0);
    assert_non_null(strstr(body, "All good, @" ZW "alice."));
    assert_non_null(strstr(body, "No findings."));
    assert_non_null(strstr(body, "| `img.png` | skipped | \xE2\x80\x94 | binary file |"));
    assert_non_null(strstr(body, "| `a.c` | reviewed | 5/5 |"));
    assert_int_equal(json_array_size(json_object_get(r, "comments")), 0);
    assert_null(json_object_get(r, "approve"));
    json_decref(r);
}

static void test_comments(void **state)
{
    (void)state;
    review_options_t opt = REVIEW_OPTIONS_INIT;
    review_stats_t st;
    json_t *r = build("[{\"path\":\"a.c\",\"line\":3,\"start_line\":2,\"body\":\"two lines\",\"suggestion\":"
                      "\"```\\nfenced\\n```\\n\"},"
                      "{\"path\":\"a.c\",\"line\":2,\"side\":\"LEFT\",\"body\":\"old\",\"suggestion\":\"\"},"
                      "{\"path\":\"img.png\",\"line\":1,\"severity\":\"error\",\"body\":\"binary!\"}]",
                      &opt, &st, NULL);
    json_t *cs = json_object_get(r, "comments");
    assert_int_equal(json_array_size(cs), 2);
    assert_int_equal(st.inline_comments, 2);
    assert_int_equal(st.suggestions, 1);
    assert_int_equal(st.in_summary, 1);
    /* sorted by path, LEFT before RIGHT */
    json_t *left = json_array_get(cs, 0), *right = json_array_get(cs, 1);
    assert_string_equal(json_string_value(json_object_get(left, "side")), "LEFT");
    assert_null(json_object_get(left, "start_line"));
    assert_non_null(strstr(json_string_value(json_object_get(left, "body")), "Suggested: delete line 2 of the old file"));
    assert_int_equal(json_integer_value(json_object_get(right, "start_line")), 2);
    assert_string_equal(json_string_value(json_object_get(right, "start_side")), "RIGHT");
    /* a fence longer than any backtick run in the suggestion */
    assert_non_null(strstr(json_string_value(json_object_get(right, "body")), "````suggestion\n```\nfenced\n```\n````"));
    const char *body = json_string_value(json_object_get(r, "body"));
    assert_non_null(strstr(body, "- **\xF0\x9F\x9B\x91 Error** `img.png` line 1 \xE2\x80\x94 binary file\n  > binary!"));
    json_decref(r);
}

static void test_comment_cap(void **state)
{
    (void)state;
    review_options_t opt = REVIEW_OPTIONS_INIT;
    opt.max_comments = 2;
    review_stats_t st;
    json_t *r = build("[{\"path\":\"a.c\",\"line\":1,\"body\":\"i1\"},"
                      "{\"path\":\"a.c\",\"line\":2,\"severity\":\"error\",\"body\":\"e1\"},"
                      "{\"path\":\"a.c\",\"line\":3,\"severity\":\"warning\",\"body\":\"w1\"},"
                      "{\"path\":\"a.c\",\"line\":4,\"severity\":\"info\",\"body\":\"i2\"}]",
                      &opt, &st, NULL);
    json_t *cs = json_object_get(r, "comments");
    assert_int_equal(json_array_size(cs), 2);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(cs, 0), "body")), "e1"));
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(cs, 1), "body")), "w1"));
    const char *body = json_string_value(json_object_get(r, "body"));
    assert_non_null(strstr(body, "`a.c` line 1 \xE2\x80\x94 over the limit of inline comments per review"));
    assert_int_equal(st.in_summary, 2);
    json_decref(r);
}

/* 3000 files and 500 findings outside the diff: still under GitHub's limit,
 * with the rest counted, not lost. */
static void test_huge_review_fits(void **state)
{
    (void)state;
    strbuf_t text = STRBUF_INIT;
    for (int i = 0; i < 3000; i++)
        strbuf_appendf(&text, "diff --git a/some/rather/long/directory/name/file%04d.c b/some/rather/long/directory/"
                              "name/file%04d.c\n--- a/x\n+++ b/some/rather/long/directory/name/file%04d.c\n"
                              "@@ -1 +1 @@\n-a\n+b\n",
                       i, i, i);
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, text.data, text.len, NULL), DIFF_OK);
    assert_int_equal(d->nfiles, 3000);
    findings_t fs = FINDINGS_INIT;
    strbuf_t doc = STRBUF_INIT;
    strbuf_append(&doc, "[");
    for (int i = 0; i < FINDINGS_MAX; i++)
        strbuf_appendf(&doc, "%s{\"path\":\"gone%d.c\",\"line\":%d,\"body\":\"%0400d\"}", i ? "," : "", i, i + 1, i);
    strbuf_append(&doc, "]");
    assert_int_equal(findings_parse(&fs, doc.data, doc.len), FINDINGS_OK);
    coverage_t cov = COVERAGE_INIT;
    assert_int_equal(coverage_plan(&cov, d, NULL), 0);
    json_t *r = NULL;
    review_stats_t st;
    assert_int_equal(review_build(&r, &st, d, &fs, &cov, NULL), REVIEW_OK);
    const char *body = json_string_value(json_object_get(r, "body"));
    assert_true(strlen(body) <= REVIEW_BODY_MAX_BYTES);
    assert_non_null(strstr(body, "more (the job's log has them all)"));
    assert_non_null(strstr(body, "more rows not shown"));
    assert_non_null(strstr(body, "3000 files: 300 reviewed, 0 clipped, 2700 skipped."));
    /* not-reviewed rows come first */
    assert_non_null(strstr(body, "| skipped | \xE2\x80\x94 | review budget used up"));
    json_decref(r);
    coverage_free(&cov);
    findings_free(&fs);
    diff_free(d);
    strbuf_free(&doc);
    strbuf_free(&text);
}

static void test_coverage_plan(void **state)
{
    (void)state;
    strbuf_t text = STRBUF_INIT;
    /* small.c: 3 lines; two.c: hunks of 4 and 6 lines; one.c: one 12-line hunk */
    strbuf_append(&text, "diff --git a/small.c b/small.c\n--- a/small.c\n+++ b/small.c\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n");
    strbuf_append(&text, "diff --git a/two.c b/two.c\n--- a/two.c\n+++ b/two.c\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n d\n"
                         "@@ -20,5 +20,5 @@\n a\n b\n-c\n+d\n e\n f\n");
    strbuf_append(&text, "diff --git a/one.c b/one.c\n--- a/one.c\n+++ b/one.c\n@@ -0,0 +1,12 @@\n");
    for (int i = 0; i < 12; i++)
        strbuf_append(&text, "+x\n");
    strbuf_append(&text, "diff --git a/package-lock.json b/package-lock.json\n--- a/package-lock.json\n"
                         "+++ b/package-lock.json\n@@ -1 +1 @@\n-a\n+b\n");
    strbuf_append(&text, "diff --git a/old.c b/old.c\ndeleted file mode 100644\n--- a/old.c\n+++ /dev/null\n"
                         "@@ -1 +0,0 @@\n-a\n");
    strbuf_append(&text, "diff --git a/late.c b/late.c\n--- a/late.c\n+++ b/late.c\n@@ -1 +1 @@\n-a\n+b\n");
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, text.data, text.len, NULL), DIFF_OK);
    static const char *const globs[] = {"*.json", NULL};
    coverage_budget_t b = {10, 19, 8, globs};
    coverage_t cov = COVERAGE_INIT;
    assert_int_equal(coverage_plan(&cov, d, &b), 0);
    assert_int_equal(cov.count, 6);
    static const struct {
        coverage_state_t state;
        size_t lines;
        const char *reason;
    } want[] = {
        {COVERAGE_REVIEWED, 3, ""},
        {COVERAGE_CLIPPED, 4, "first 1 of 2 hunks (4 of 10 diff lines)"},
        {COVERAGE_CLIPPED, 8, "first 8 of 12 diff lines"},
        {COVERAGE_SKIPPED, 0, "matches *.json"},
        {COVERAGE_SKIPPED, 0, "deleted file"},
        {COVERAGE_REVIEWED, 2, ""}, /* 15 of 19 lines used: late.c's 2 still fit */
    };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(cov.entries[i].state, want[i].state);
        assert_int_equal(cov.entries[i].lines, want[i].lines);
        assert_string_equal(cov.entries[i].reason, want[i].reason);
    }
    assert_int_equal(coverage_count(&cov, COVERAGE_CLIPPED), 2);
    /* the job learns later that the agent never got to late.c */
    assert_int_equal(coverage_mark(&cov, "late.c", COVERAGE_SKIPPED, "agent timed out"), 0);
    assert_int_equal(cov.entries[5].lines, 0);
    assert_int_equal(coverage_mark(&cov, "nope.c", COVERAGE_SKIPPED, "x"), -1);
    coverage_free(&cov);

    /* a spent budget skips the rest */
    coverage_budget_t tight = {1, 100, 100, NULL};
    assert_int_equal(coverage_plan(&cov, d, &tight), 0);
    assert_int_equal(cov.entries[0].state, COVERAGE_REVIEWED);
    assert_int_equal(cov.entries[1].state, COVERAGE_SKIPPED);
    assert_string_equal(cov.entries[1].reason, "review budget used up (1 files, 3 diff lines)");
    coverage_free(&cov);
    diff_free(d);
    strbuf_free(&text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events),          cmocka_unit_test(test_no_findings_and_marker),
        cmocka_unit_test(test_comments),        cmocka_unit_test(test_comment_cap),
        cmocka_unit_test(test_huge_review_fits), cmocka_unit_test(test_coverage_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
