/*
 * bench_review — what a large review costs on the worker: parsing a PR diff of
 * 300 files and 120,000 diff lines, planning coverage, and anchoring 500
 * findings into the review JSON. Prints figures; asserts nothing.
 *
 *   build/tests/bench_review
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/common/strbuf.h"
#include "jobs/review/coverage.h"
#include "jobs/review/diff.h"
#include "jobs/review/findings.h"
#include "jobs/review/review_body.h"

#define FILES 300
#define HUNKS_PER_FILE 20
#define ROUNDS 10

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(void)
{
    strbuf_t text = STRBUF_INIT;
    for (int f = 0; f < FILES; f++) {
        strbuf_appendf(&text, "diff --git a/src/file%03d.c b/src/file%03d.c\nindex 1..2 100644\n--- a/src/file%03d.c\n"
                              "+++ b/src/file%03d.c\n", f, f, f, f);
        for (int h = 0; h < HUNKS_PER_FILE; h++) {
            int at = 1 + h * 40;
            strbuf_appendf(&text, "@@ -%d,17 +%d,19 @@ static int function_%d(void)\n", at, at + h * 2, h);
            for (int i = 0; i < 7; i++)
                strbuf_appendf(&text, "     context line %d of the hunk\n", i);
            for (int i = 0; i < 3; i++)
                strbuf_appendf(&text, "-    removed line %d\n", i);
            for (int i = 0; i < 5; i++)
                strbuf_appendf(&text, "+    added line %d with some more text\n", i);
            for (int i = 0; i < 7; i++)
                strbuf_appendf(&text, "     trailing context %d\n", i);
        }
    }
    strbuf_t doc = STRBUF_INIT;
    strbuf_append(&doc, "[");
    for (int i = 0; i < FINDINGS_MAX; i++)
        strbuf_appendf(&doc, "%s{\"path\":\"src/file%03d.c\",\"line\":%d,\"severity\":\"warning\",\"body\":\"finding "
                             "%d: @someone look at this\",\"suggestion\":\"fixed();\\n\"}",
                       i ? "," : "", (i * 7) % FILES, 1 + (i * 13) % 900, i);
    strbuf_append(&doc, "]");

    double parse = 0, findings = 0, plan = 0, build = 0;
    size_t lines = 0, out_bytes = 0, inl = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ms();
        diff_t *d = NULL;
        if (diff_parse_unified(&d, text.data, text.len, NULL) != DIFF_OK)
            return 1;
        double t1 = now_ms();
        findings_t fs = FINDINGS_INIT;
        findings_parse(&fs, doc.data, doc.len);
        double t2 = now_ms();
        coverage_t cov = COVERAGE_INIT;
        coverage_plan(&cov, d, NULL);
        double t3 = now_ms();
        json_t *rv = NULL;
        review_stats_t st;
        if (review_build(&rv, &st, d, &fs, &cov, NULL) != REVIEW_OK)
            return 1;
        char *json = json_dumps(rv, JSON_COMPACT);
        double t4 = now_ms();
        parse += t1 - t0;
        findings += t2 - t1;
        plan += t3 - t2;
        build += t4 - t3;
        lines = 0;
        for (size_t i = 0; i < d->nfiles; i++)
            lines += d->files[i].nlines;
        out_bytes = strlen(json);
        inl = st.inline_comments;
        free(json);
        json_decref(rv);
        coverage_free(&cov);
        findings_free(&fs);
        diff_free(d);
    }
    printf("diff: %d files, %zu diff lines, %.1f MB\n", FILES, lines, text.len / 1e6);
    printf("parse diff          %8.2f ms\n", parse / ROUNDS);
    printf("parse %d findings  %8.2f ms\n", FINDINGS_MAX, findings / ROUNDS);
    printf("coverage plan       %8.2f ms\n", plan / ROUNDS);
    printf("anchor + review JSON%8.2f ms (%zu inline comments, %zu bytes)\n", build / ROUNDS, inl, out_bytes);
    strbuf_free(&text);
    strbuf_free(&doc);
    return 0;
}
