/*
 * test_anchor — where findings land on a pull request's diff.
 *
 *  - A table of findings on one real-shaped diff: exact lines on both sides,
 *    ranges inside and across hunks, findings a few lines off (moved to the
 *    nearest changed line), far off (summary), on files without lines, on a
 *    renamed file's old name, and the suggestion rules.
 *  - A randomized property test (fixed seed, bounded iterations): random
 *    diffs are generated as a model and rendered as text, random findings are
 *    thrown at them, and the review JSON that review_build produces is checked
 *    against the model by an independent validator written here from GitHub's
 *    rules (not by calling anchor.c): every comment is a valid anchor, every
 *    ```suggestion is on RIGHT and spans exactly the lines it replaces, a
 *    finding on a valid line is never moved, and every finding is either an
 *    inline comment or listed in the summary, with no @mention that pings and
 *    no hidden HTML comment from the agent.
 *  - An export mode for tests/integration/test_review_anchors.py, which posts
 *    what this produces to the fake GitHub (real git computes the diff there):
 *      PATCHBAY_REVIEW_EXPORT_DIR=DIR PATCHBAY_REVIEW_EXPORT_STAGE=cases
 *          writes DIR/case-NN/{base,head}.json (files before and after)
 *      PATCHBAY_REVIEW_EXPORT_DIR=DIR PATCHBAY_REVIEW_EXPORT_STAGE=reviews
 *          reads DIR/case-NN/{diff.txt,files.json,head_sha} (what the fake
 *          served), writes review-diff.json and review-files.json (the POST
 *          bodies built from each input) and expect.json.
 *    In export mode only the export runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/common/strbuf.h"
#include "jobs/review/anchor.h"
#include "jobs/review/coverage.h"
#include "jobs/review/diff.h"
#include "jobs/review/findings.h"
#include "jobs/review/review_body.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(uint32_t n) /* 0 .. n-1 */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng % n) : 0;
}

static diff_t *parse(const char *text)
{
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, text, strlen(text), NULL), DIFF_OK);
    return d;
}

static finding_t make(const char *path, uint32_t line, uint32_t start, diff_side_t side, const char *suggestion)
{
    finding_t f;
    memset(&f, 0, sizeof(f));
    f.path = (char *)path;
    f.line = line;
    f.start_line = start;
    f.side = side;
    f.body = (char *)"x";
    f.suggestion = (char *)suggestion;
    return f;
}

/* ------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------ */
/* main.c: hunk 1 is old 1-8 / new 1-9 (line 4 replaced by two), hunk 2 is
 * old 20-26 / new 21-26 (line 23 removed); gone.txt was deleted; logo.png
 * is binary; b.c was renamed from a.c with a change; only.txt lost lines
 * 10-11 (a hunk whose RIGHT side is all context). */
static const char *table_diff =
    "diff --git a/main.c b/main.c\n--- a/main.c\n+++ b/main.c\n"
    "@@ -1,8 +1,9 @@\n 1\n 2\n 3\n-4\n+4a\n+4b\n 5\n 6\n 7\n 8\n"
    "@@ -20,7 +21,6 @@ int f(void)\n 20\n 21\n 22\n-23\n 24\n 25\n 26\n"
    "diff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n"
    "@@ -1,2 +0,0 @@\n-a\n-b\n"
    "diff --git a/logo.png b/logo.png\nBinary files a/logo.png and b/logo.png differ\n"
    "diff --git a/a.c b/b.c\nsimilarity index 80%\nrename from a.c\nrename to b.c\n--- a/a.c\n+++ b/b.c\n"
    "@@ -1,2 +1,2 @@\n x\n-y\n+z\n"
    "diff --git a/only.txt b/only.txt\n--- a/only.txt\n+++ b/only.txt\n"
    "@@ -7,7 +7,5 @@\n 7\n 8\n 9\n-10\n-11\n 12\n 13\n 14\n";

typedef struct {
    const char *what;
    const char *path;
    uint32_t line, start;
    diff_side_t side;
    const char *suggestion;
    /* want */
    anchor_kind_t kind;
    anchor_miss_t miss;
    const char *at_path;
    uint32_t at_line, at_start;
    int clipped, suggestion_ok;
} anchor_case_t;

#define R DIFF_SIDE_RIGHT
#define L DIFF_SIDE_LEFT
static const anchor_case_t anchor_cases[] = {
    {"added line", "main.c", 4, 0, R, NULL, ANCHOR_EXACT, 0, "main.c", 4, 0, 0, 0},
    {"context line, RIGHT", "main.c", 1, 0, R, NULL, ANCHOR_EXACT, 0, "main.c", 1, 0, 0, 0},
    {"context line, LEFT numbering", "main.c", 25, 0, L, NULL, ANCHOR_EXACT, 0, "main.c", 25, 0, 0, 0},
    {"removed line, LEFT", "main.c", 23, 0, L, NULL, ANCHOR_EXACT, 0, "main.c", 23, 0, 0, 0},
    {"range in one hunk", "main.c", 6, 3, R, NULL, ANCHOR_EXACT, 0, "main.c", 6, 3, 0, 0},
    {"range with a suggestion", "main.c", 5, 4, R, "four\n", ANCHOR_EXACT, 0, "main.c", 5, 4, 0, 1},
    {"one line with a suggestion", "main.c", 4, 0, R, "4c\n", ANCHOR_EXACT, 0, "main.c", 4, 0, 0, 1},
    {"suggestion on LEFT: plain code", "main.c", 23, 0, L, "x\n", ANCHOR_EXACT, 0, "main.c", 23, 0, 0, 0},
    {"range starting in the gap: cut", "main.c", 22, 12, R, NULL, ANCHOR_EXACT, 0, "main.c", 22, 21, 1, 0},
    {"range from the previous hunk: cut", "main.c", 23, 2, R, "s\n", ANCHOR_EXACT, 0, "main.c", 23, 21, 1, 0},
    {"range cut down to one line", "main.c", 21, 15, R, NULL, ANCHOR_EXACT, 0, "main.c", 21, 0, 1, 0},
    {"two past the hunk: moved to the change", "main.c", 11, 0, R, "s\n", ANCHOR_MOVED, 0, "main.c", 5, 0, 0, 0},
    {"three before hunk 2, which changed nothing on RIGHT: its nearest line", "main.c", 18, 0, R, NULL, ANCHOR_MOVED,
     0, "main.c", 21, 0, 0, 0},
    {"LEFT, just after hunk 2: moved to the removal", "main.c", 27, 0, L, NULL, ANCHOR_MOVED, 0, "main.c", 23, 0, 0, 0},
    {"range moved loses its start", "main.c", 12, 10, R, NULL, ANCHOR_MOVED, 0, "main.c", 5, 0, 0, 0},
    {"four off: summary", "main.c", 13, 0, R, NULL, ANCHOR_UNANCHORED, ANCHOR_MISS_OUTSIDE, "main.c", 13, 0, 0, 0},
    {"far beyond the file", "main.c", 500, 0, R, NULL, ANCHOR_UNANCHORED, ANCHOR_MISS_OUTSIDE, "main.c", 500, 0, 0, 0},
    {"not in the diff", "other.c", 1, 0, R, NULL, ANCHOR_UNANCHORED, ANCHOR_MISS_NOT_IN_DIFF, NULL, 1, 0, 0, 0},
    {"binary file", "logo.png", 1, 0, R, NULL, ANCHOR_UNANCHORED, ANCHOR_MISS_NO_PATCH, "logo.png", 1, 0, 0, 0},
    {"deleted file, LEFT", "gone.txt", 2, 0, L, NULL, ANCHOR_EXACT, 0, "gone.txt", 2, 0, 0, 0},
    {"deleted file, RIGHT: no lines", "gone.txt", 1, 0, R, NULL, ANCHOR_UNANCHORED, ANCHOR_MISS_OUTSIDE, "gone.txt",
     1, 0, 0, 0},
    {"renamed file by its old name", "a.c", 2, 0, R, NULL, ANCHOR_EXACT, 0, "b.c", 2, 0, 0, 0},
    {"a hunk with no change on RIGHT: its nearest line", "only.txt", 14, 0, R, NULL, ANCHOR_MOVED, 0, "only.txt", 11,
     0, 0, 0},
};

static void test_anchor_table(void **state)
{
    (void)state;
    diff_t *d = parse(table_diff);
    for (size_t i = 0; i < sizeof(anchor_cases) / sizeof(anchor_cases[0]); i++) {
        const anchor_case_t *c = &anchor_cases[i];
        finding_t f = make(c->path, c->line, c->start, c->side, c->suggestion);
        anchor_t a;
        anchor_finding(&a, d, &f, NULL);
        int ok = a.kind == c->kind && a.miss == c->miss && a.line == c->at_line && a.start_line == c->at_start &&
                 (int)a.range_clipped == c->clipped && (int)a.suggestion_ok == c->suggestion_ok &&
                 (c->at_path == NULL ? a.path == NULL : a.path != NULL && strcmp(a.path, c->at_path) == 0) &&
                 (c->suggestion == NULL || c->suggestion_ok || a.suggestion_why != NULL);
        if (!ok)
            fail_msg("%s: got kind %d miss %d %s:%u start %u clipped %d suggestion %d", c->what, a.kind, a.miss,
                     a.path ? a.path : "-", a.line, a.start_line, a.range_clipped, a.suggestion_ok);
    }
    /* nudge 0: nothing moves */
    anchor_options_t none = {0};
    finding_t f = make("main.c", 10, 0, R, NULL);
    anchor_t a;
    anchor_finding(&a, d, &f, &none);
    assert_int_equal(a.kind, ANCHOR_UNANCHORED);
    anchor_options_t wide = {10};
    f.line = 15;
    anchor_finding(&a, d, &f, &wide);
    assert_int_equal(a.kind, ANCHOR_MOVED);
    assert_int_equal(a.line, 5); /* 6 after hunk 1, 6 before hunk 2: the tie goes to the earlier */
    diff_free(d);
}

/* ------------------------------------------------------------------------
 * The model: a diff generated line by line, with GitHub's rules over it
 * ------------------------------------------------------------------------ */
#define MODEL_MAX_FILES 6
#define MODEL_MAX_LINES 400

typedef struct {
    char kind;          /* ' ' '+' '-' */
    uint32_t old_no, new_no;
    int hunk;
} model_line_t;

typedef struct {
    char path[32];
    char old_path[32]; /* renamed: the old name; else "" */
    int lines_ok;      /* has hunks GitHub accepts comments on */
    model_line_t lines[MODEL_MAX_LINES];
    int nlines;
    int nhunks;
    uint32_t max_line;
} model_file_t;

typedef struct {
    model_file_t files[MODEL_MAX_FILES];
    int nfiles;
} model_t;

/* GitHub's rule, from the model: the hunk holding `line` on `side`, or -1. */
static int model_hunk_of(const model_file_t *f, diff_side_t side, uint32_t line)
{
    for (int i = 0; i < f->nlines; i++) {
        const model_line_t *l = &f->lines[i];
        if (side == DIFF_SIDE_RIGHT && l->kind != '-' && l->new_no == line)
            return l->hunk;
        if (side == DIFF_SIDE_LEFT && l->kind != '+' && l->old_no == line)
            return l->hunk;
    }
    return -1;
}

static const model_file_t *model_file(const model_t *m, const char *path)
{
    for (int i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].path, path) == 0)
            return &m->files[i];
    return NULL;
}

/* Renders the model as git would and fills it in. */
static void model_generate(model_t *m, strbuf_t *text)
{
    memset(m, 0, sizeof(*m));
    m->nfiles = 1 + (int)rnd(MODEL_MAX_FILES);
    for (int fi = 0; fi < m->nfiles; fi++) {
        model_file_t *f = &m->files[fi];
        snprintf(f->path, sizeof(f->path), "d%d/f%d.c", (int)rnd(3), fi);
        int kind = (int)rnd(10); /* 0-4 modified, 5 added, 6 removed, 7 renamed, 8 binary, 9 mode only */
        if (kind == 7)
            snprintf(f->old_path, sizeof(f->old_path), "old/f%d.c", fi);
        strbuf_appendf(text, "diff --git a/%s b/%s\n", f->old_path[0] ? f->old_path : f->path, f->path);
        if (kind == 8) {
            strbuf_appendf(text, "index 1..2 100644\nBinary files a/%s and b/%s differ\n", f->path, f->path);
            continue;
        }
        if (kind == 9) {
            strbuf_append(text, "old mode 100644\nnew mode 100755\n");
            continue;
        }
        if (kind == 7)
            strbuf_appendf(text, "similarity index 90%%\nrename from %s\nrename to %s\n", f->old_path, f->path);
        if (kind == 5)
            strbuf_appendf(text, "new file mode 100644\n--- /dev/null\n+++ b/%s\n", f->path);
        else if (kind == 6)
            strbuf_appendf(text, "deleted file mode 100644\n--- a/%s\n+++ /dev/null\n", f->path);
        else
            strbuf_appendf(text, "--- a/%s\n+++ b/%s\n", f->old_path[0] ? f->old_path : f->path, f->path);
        f->lines_ok = 1;
        int crlf = rnd(8) == 0;
        if (kind == 5 || kind == 6) {
            uint32_t n = 1 + rnd(40);
            strbuf_appendf(text, kind == 5 ? "@@ -0,0 +1,%u @@\n" : "@@ -1,%u +0,0 @@\n", n);
            for (uint32_t i = 1; i <= n; i++) {
                model_line_t *l = &f->lines[f->nlines++];
                l->kind = kind == 5 ? '+' : '-';
                l->new_no = kind == 5 ? i : 0;
                l->old_no = kind == 5 ? 0 : i;
                strbuf_appendf(text, "%cline %u%s\n", l->kind, i, crlf ? "\r" : "");
            }
            f->nhunks = 1;
            f->max_line = n;
            if (rnd(3) == 0)
                strbuf_append(text, "\\ No newline at end of file\n");
            continue;
        }
        uint32_t old_no = 1 + rnd(30), new_no = old_no + rnd(5);
        int hunks = 1 + (int)rnd(4);
        for (int h = 0; h < hunks && f->nlines < MODEL_MAX_LINES - 40; h++) {
            if (h > 0) {
                uint32_t gap = rnd(4) == 0 ? 0 : 1 + rnd(20); /* 0: hunks that touch */
                old_no += gap;
                new_no += gap;
            }
            model_line_t ops[40];
            int nops = 1 + (int)rnd(30);
            uint32_t oc = 0, nc = 0;
            for (int i = 0; i < nops; i++) {
                int r = (int)rnd(10);
                ops[i].kind = r < 5 ? ' ' : r < 8 ? '+' : '-';
                oc += ops[i].kind != '+';
                nc += ops[i].kind != '-';
            }
            /* git's header: an empty side names the line before it */
            strbuf_appendf(text, "@@ -%u,%u +%u,%u @@%s\n", oc ? old_no : old_no - 1, oc, nc ? new_no : new_no - 1, nc,
                           rnd(2) ? " static int f(void)" : "");
            for (int i = 0; i < nops; i++) {
                model_line_t *l = &f->lines[f->nlines++];
                l->kind = ops[i].kind;
                l->hunk = h;
                l->old_no = l->kind != '+' ? old_no++ : 0;
                l->new_no = l->kind != '-' ? new_no++ : 0;
                strbuf_appendf(text, "%ctext %d%s\n", l->kind, i, crlf ? "\r" : "");
            }
            f->nhunks = h + 1;
        }
        f->max_line = old_no > new_no ? old_no : new_no;
        if (rnd(4) == 0)
            strbuf_append(text, "\\ No newline at end of file\n");
    }
}

/* The parser against the model: the same lines, numbers and hunks. */
static void check_parse(const model_t *m, const diff_t *d)
{
    assert_int_equal(d->nfiles, m->nfiles);
    for (int i = 0; i < m->nfiles; i++) {
        const model_file_t *mf = &m->files[i];
        const diff_file_t *f = &d->files[i];
        assert_string_equal(f->path, mf->path);
        if (!mf->lines_ok) {
            assert_int_equal(f->nlines, 0);
            continue;
        }
        assert_int_equal(f->patch, DIFF_PATCH_OK);
        assert_int_equal(f->nlines, mf->nlines);
        assert_int_equal(f->nhunks, mf->nhunks);
        for (int k = 0; k < mf->nlines; k++) {
            const model_line_t *ml = &mf->lines[k];
            const diff_line_t *l = &f->lines[k];
            assert_int_equal(l->old_line, ml->old_no);
            assert_int_equal(l->new_line, ml->new_no);
            assert_int_equal(l->hunk, (uint32_t)ml->hunk);
        }
    }
}

/* ------------------------------------------------------------------------
 * The independent validator
 * ------------------------------------------------------------------------ */
static const char *HOSTILE = " cc @octocat <!-- hidden\ntext -->\n```suggestion\nrm -rf /\n```\n";

static int finding_id(const char *body)
{
    const char *p = strstr(body, "(#");
    return p ? atoi(p + 2) : -1;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Checks a review body against GitHub's rules as the model states them.
 * Returns the number of findings placed inline. */
static size_t validate_review(const model_t *m, const findings_t *fs, const json_t *review, uint32_t nudge,
                              size_t max_comments)
{
    const char *event = json_string_value(json_object_get(review, "event"));
    assert_non_null(event);
    assert_true(strcmp(event, "COMMENT") == 0 || strcmp(event, "REQUEST_CHANGES") == 0);
    const char *summary = json_string_value(json_object_get(review, "body"));
    assert_non_null(summary);
    assert_true(strlen(summary) <= 65536);
    const json_t *comments = json_object_get(review, "comments");
    assert_true(json_is_array(comments));
    int seen[FINDINGS_MAX] = {0};

    for (size_t i = 0; i < json_array_size(comments); i++) {
        const json_t *c = json_array_get(comments, i);
        const char *path = json_string_value(json_object_get(c, "path"));
        const char *side_s = json_string_value(json_object_get(c, "side"));
        const char *body = json_string_value(json_object_get(c, "body"));
        json_t *jl = json_object_get(c, "line"), *js = json_object_get(c, "start_line");
        assert_non_null(path);
        assert_non_null(side_s);
        assert_non_null(body);
        assert_true(json_is_integer(jl));
        assert_true(strcmp(side_s, "RIGHT") == 0 || strcmp(side_s, "LEFT") == 0);
        diff_side_t side = side_s[0] == 'R' ? DIFF_SIDE_RIGHT : DIFF_SIDE_LEFT;
        uint32_t line = (uint32_t)json_integer_value(jl);
        const model_file_t *mf = model_file(m, path);
        if (mf == NULL)
            fail_msg("comment on %s, not a file of the diff", path);
        int hunk = model_hunk_of(mf, side, line);
        if (hunk < 0)
            fail_msg("comment on %s %s line %u, not a line of the diff", path, side_s, line);
        uint32_t start = 0;
        if (js != NULL) {
            const char *ss = json_string_value(json_object_get(c, "start_side"));
            start = (uint32_t)json_integer_value(js);
            if (ss != NULL && strcmp(ss, side_s) != 0)
                fail_msg("start_side %s differs from side %s", ss, side_s);
            if (start >= line || model_hunk_of(mf, side, start) != hunk)
                fail_msg("range %u-%u on %s %s is not within one hunk", start, line, path, side_s);
        }
        int id = finding_id(body);
        assert_true(id >= 0 && (size_t)id < fs->count);
        const finding_t *f = &fs->items[id];
        assert_int_equal(seen[id], 0);
        seen[id] = 1;
        /* nothing the agent wrote may ping someone, hide text or smuggle a suggestion */
        assert_null(strstr(body, "@octocat"));
        assert_null(strstr(body, "hidden"));
        int fences = count(body, "\n```suggestion");
        if (fences > 0) {
            if (f->suggestion == NULL || fences != 1)
                fail_msg("finding %d: a suggestion fence it did not ask for", id);
            if (f->side != DIFF_SIDE_RIGHT || side != DIFF_SIDE_RIGHT || line != f->line || start != f->start_line)
                fail_msg("finding %d: suggestion for %u-%u attached to %s %u-%u", id, f->start_line, f->line,
                         side_s, start, line);
        }
        /* a finding on a valid line stays there */
        if (model_hunk_of(mf, f->side, f->line) >= 0 && strcmp(f->path, path) == 0)
            assert_int_equal(line, f->line);
    }

    /* every other finding is in the summary, with its file and line */
    size_t placed = json_array_size(comments);
    for (size_t id = 0; id < fs->count; id++) {
        if (seen[id])
            continue;
        const finding_t *f = &fs->items[id];
        char tag[32];
        snprintf(tag, sizeof(tag), "(#%zu)", id);
        if (strstr(summary, tag) == NULL)
            fail_msg("finding %zu (%s:%u) is neither inline nor in the summary", id, f->path, f->line);
        char where[64];
        if (f->start_line)
            snprintf(where, sizeof(where), "lines %u\xE2\x80\x93%u", f->start_line, f->line);
        else
            snprintf(where, sizeof(where), "line %u", f->line);
        assert_non_null(strstr(summary, f->path));
        assert_non_null(strstr(summary, where));
        /* it is there for a reason: no place within reach, or the comment cap */
        const model_file_t *mf = model_file(m, f->path);
        if (mf == NULL) {
            for (int k = 0; k < m->nfiles; k++)
                if (strcmp(m->files[k].old_path, f->path) == 0)
                    mf = &m->files[k];
        }
        if (placed < max_comments && mf != NULL && mf->lines_ok) {
            for (uint32_t dl = 0; dl <= nudge; dl++) {
                if (model_hunk_of(mf, f->side, f->line + dl) >= 0 ||
                    (f->line > dl && model_hunk_of(mf, f->side, f->line - dl) >= 0))
                    fail_msg("finding %zu (%s %s:%u) could have been anchored", id, diff_side_name(f->side), f->path,
                             f->line);
            }
        }
    }
    assert_null(strstr(summary, "@octocat"));
    assert_null(strstr(summary, "hidden"));
    assert_int_equal(count(summary, "```suggestion"), 0);
    return placed;
}

static void random_findings(findings_t *fs, const model_t *m, int n)
{
    strbuf_t doc = STRBUF_INIT;
    strbuf_append(&doc, "[");
    for (int i = 0; i < n; i++) {
        const model_file_t *mf = &m->files[rnd((uint32_t)m->nfiles)];
        const char *path = mf->path;
        int r = (int)rnd(10);
        if (r == 0)
            path = "not/in/diff.c";
        else if (r == 1 && mf->old_path[0])
            path = mf->old_path;
        uint32_t line = 1 + rnd(mf->max_line + 8);
        const char *side = rnd(4) == 0 ? "LEFT" : "RIGHT";
        strbuf_appendf(&doc, "%s{\"path\":\"%s\",\"line\":%u,\"side\":\"%s\",\"severity\":\"%s\",", i ? "," : "", path,
                       line, side, finding_severity_name((finding_severity_t)rnd(3)));
        if (rnd(3) == 0 && line > 1)
            strbuf_appendf(&doc, "\"start_line\":%u,", line - 1 - rnd(line - 1 < 8 ? line - 1 : 8));
        if (rnd(2) == 0)
            strbuf_append(&doc, "\"suggestion\":\"fixed();\\nmore();\\n\",");
        strbuf_appendf(&doc, "\"body\":");
        strbuf_t body = STRBUF_INIT;
        strbuf_appendf(&body, "finding (#%d)%s", i, rnd(2) ? HOSTILE : "");
        strbuf_append_json_string(&doc, body.data, body.len);
        strbuf_free(&body);
        strbuf_append(&doc, "}");
    }
    strbuf_append(&doc, "]");
    assert_int_equal(findings_parse(fs, doc.data, doc.len), FINDINGS_OK);
    strbuf_free(&doc);
}

#define PROPERTY_ITERATIONS 3000

static void test_property(void **state)
{
    (void)state;
    size_t inline_total = 0, summary_total = 0, moved = 0, suggestions = 0;
    for (int it = 0; it < PROPERTY_ITERATIONS; it++) {
        model_t m;
        strbuf_t text = STRBUF_INIT;
        model_generate(&m, &text);
        diff_t *d = parse(text.data);
        check_parse(&m, d);
        findings_t fs = FINDINGS_INIT;
        random_findings(&fs, &m, 1 + (int)rnd(14));
        assert_int_equal(fs.dropped, 0); /* so items[i] is the agent's finding (#i) */
        review_options_t opt = REVIEW_OPTIONS_INIT;
        opt.anchor.nudge_lines = rnd(5);
        opt.max_comments = rnd(4) == 0 ? rnd(4) : REVIEW_MAX_COMMENTS;
        opt.request_changes = (int)rnd(2);
        coverage_t cov = COVERAGE_INIT;
        assert_int_equal(coverage_plan(&cov, d, NULL), 0);
        json_t *review = NULL;
        review_stats_t st;
        assert_int_equal(review_build(&review, &st, d, &fs, &cov, &opt), REVIEW_OK);
        size_t placed = validate_review(&m, &fs, review, opt.anchor.nudge_lines, opt.max_comments);
        assert_int_equal(placed, st.inline_comments);
        assert_int_equal(st.inline_comments + st.in_summary, fs.count);
        assert_true(st.inline_comments <= opt.max_comments);
        inline_total += st.inline_comments;
        summary_total += st.in_summary;
        moved += st.moved;
        suggestions += st.suggestions;
        json_decref(review);
        coverage_free(&cov);
        findings_free(&fs);
        diff_free(d);
        strbuf_free(&text);
    }
    printf("property: %d diffs, %zu inline (%zu moved, %zu suggestions), %zu in summaries\n", PROPERTY_ITERATIONS,
           inline_total, moved, suggestions, summary_total);
    /* the generator must reach every outcome, or the test proves little */
    assert_true(inline_total > 1000 && summary_total > 1000 && moved > 100 && suggestions > 100);
}

/* ------------------------------------------------------------------------
 * Export for the integration test
 * ------------------------------------------------------------------------ */
#define EXPORT_CASES 10
#define EXPORT_FINDINGS 24

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    strbuf_t b = STRBUF_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_appendn(&b, buf, n);
    fclose(f);
    return strbuf_detach(&b, len);
}

static void write_json(const char *dir, const char *name, json_t *v)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(json_dump_file(v, path, JSON_INDENT(1) | JSON_SORT_KEYS), 0);
}

/* A text file's lines, some changed, some gone, some new. */
static void file_text(strbuf_t *b, int file, int nlines, int edit, int crlf, int final_newline)
{
    for (int i = 1; i <= nlines; i++) {
        int r = edit ? (int)rnd(100) : 100;
        const char *eol = (i == nlines && !final_newline) ? "" : crlf ? "\r\n" : "\n";
        if (r < 6)
            continue; /* deleted */
        if (r < 14)
            strbuf_appendf(b, "changed line %d of file %d%s", i, file, eol);
        else
            strbuf_appendf(b, "line %d of file %d: the quick brown fox%s", i, file, eol);
        if (r >= 14 && r < 19)
            strbuf_appendf(b, "inserted after %d in file %d%s", i, file, crlf ? "\r\n" : "\n");
    }
}

static void export_cases(const char *dir)
{
    rng = 0x9E3779B97F4A7C15ull;
    for (int c = 0; c < EXPORT_CASES; c++) {
        char cdir[4096];
        snprintf(cdir, sizeof(cdir), "%s/case-%02d", dir, c);
        mkdir(cdir, 0755);
        json_t *base = json_object(), *head = json_object();
        json_object_set_new(base, "README.md", json_string("# a test repository\n"));
        int nfiles = 3 + (int)rnd(6);
        for (int i = 0; i < nfiles; i++) {
            char path[128], other[256];
            int kind = (c * 7 + i) % 11; /* every kind in every few cases */
            int n = 5 + (int)rnd(120);
            snprintf(path, sizeof(path), "%s/file%d.txt", i % 2 ? "src" : "lib", i);
            if (kind == 9)
                snprintf(path, sizeof(path), "docs/with space %d.md", i);
            if (kind == 10)
                snprintf(path, sizeof(path), "caf\xC3\xA9-%d.txt", i);
            strbuf_t before = STRBUF_INIT, after = STRBUF_INIT;
            uint64_t keep = rng;
            int crlf = kind == 1, nl = kind != 2;
            file_text(&before, i, n, 0, crlf, nl);
            rng = keep;
            file_text(&after, i, n, 1, crlf, kind == 2 ? (int)rnd(2) : 1);
            switch (kind) {
            case 3: /* added */
                json_object_set_new(head, path, json_stringn(after.data, after.len));
                break;
            case 4: /* removed */
                json_object_set_new(base, path, json_stringn(before.data, before.len));
                json_object_set_new(head, path, json_null());
                break;
            case 5: /* renamed with changes */
            case 6: /* renamed as is */
                snprintf(other, sizeof(other), "moved/%d-%s", i, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
                json_object_set_new(base, path, json_stringn(before.data, before.len));
                json_object_set_new(head, path, json_null());
                if (kind == 5) {
                    /* few enough changes that git still sees a rename */
                    strbuf_t light = STRBUF_INIT;
                    strbuf_appendn(&light, before.data, before.len);
                    strbuf_appendf(&light, "one more line for file %d\n", i);
                    json_object_set_new(head, other, json_stringn(light.data, light.len));
                    strbuf_free(&light);
                } else {
                    json_object_set_new(head, other, json_stringn(before.data, before.len));
                }
                break;
            case 7: { /* binary: a NUL makes git call it binary */
                char bin[64];
                int bn = snprintf(bin, sizeof(bin), "PNG%c%cbinary %d", 0, 1, i);
                json_object_set_new(base, path, json_stringn(bin, (size_t)bn));
                bin[4] = 2;
                json_object_set_new(head, path, json_stringn(bin, (size_t)bn));
                break;
            }
            case 8: /* mode change only */
                json_object_set_new(base, path, json_stringn(before.data, before.len));
                json_object_set_new(head, path,
                                    json_pack("{s:s%, s:s}", "content", before.data, before.len, "mode", "100755"));
                break;
            default: /* modified, CRLF, no newline at the end, odd names */
                json_object_set_new(base, path, json_stringn(before.data, before.len));
                json_object_set_new(head, path, json_stringn(after.data, after.len));
                break;
            }
            strbuf_free(&before);
            strbuf_free(&after);
        }
        write_json(cdir, "base.json", base);
        write_json(cdir, "head.json", head);
        json_decref(base);
        json_decref(head);
    }
}

/* Findings aimed around the hunks of what was parsed, and anywhere. */
static void export_findings(findings_t *fs, const diff_t *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < EXPORT_FINDINGS; i++) {
        const diff_file_t *f = d->nfiles ? &d->files[rnd((uint32_t)d->nfiles)] : NULL;
        const char *path = f ? f->path : "none.txt";
        diff_side_t side = rnd(4) == 0 ? DIFF_SIDE_LEFT : DIFF_SIDE_RIGHT;
        uint32_t line = 1 + rnd(150);
        if (f != NULL && f->nhunks > 0 && rnd(4) != 0) {
            uint32_t first, last;
            if (diff_hunk_range(&f->hunks[rnd((uint32_t)f->nhunks)], side, &first, &last) == 0) {
                uint32_t lo = first > 4 ? first - 4 : 1;
                line = lo + rnd(last + 5 - lo);
            }
        }
        if (rnd(12) == 0)
            path = "not/in/this/pr.c";
        else if (f != NULL && f->previous_path != NULL && rnd(3) == 0)
            path = f->previous_path;
        char body[256];
        snprintf(body, sizeof(body), "finding (#%d) on %s line %u.%s", i, diff_side_name(side), line,
                 rnd(2) ? " @octocat <!-- hidden -->\n```suggestion\nx\n```\n" : "");
        json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:s}", "path", path, "line", (json_int_t)line, "side",
                              diff_side_name(side), "severity", finding_severity_name((finding_severity_t)rnd(3)),
                              "body", body);
        if (rnd(3) == 0 && line > 1)
            json_object_set_new(o, "start_line", json_integer(line - 1 - rnd(line - 1 < 6 ? line - 1 : 6)));
        if (rnd(2) == 0)
            json_object_set_new(o, "suggestion", json_string(rnd(4) ? "replacement line\n" : ""));
        json_array_append_new(arr, o);
    }
    char *text = json_dumps(arr, 0);
    assert_int_equal(findings_parse(fs, text, strlen(text)), FINDINGS_OK);
    free(text);
    json_decref(arr);
}

/* The two ways GitHub serves a diff must read the same. */
static void cross_check(const diff_t *a, const diff_t *b)
{
    assert_int_equal(a->nfiles, b->nfiles);
    for (size_t i = 0; i < a->nfiles; i++) {
        const diff_file_t *x = &a->files[i], *y = diff_file_find(b, a->files[i].path);
        assert_non_null(y);
        assert_int_equal(x->status, y->status);
        if (x->patch != DIFF_PATCH_OK || y->patch != DIFF_PATCH_OK)
            continue;
        assert_int_equal(x->nlines, y->nlines);
        for (size_t k = 0; k < x->nlines; k++) {
            assert_int_equal(x->lines[k].old_line, y->lines[k].old_line);
            assert_int_equal(x->lines[k].new_line, y->lines[k].new_line);
        }
    }
}

static json_t *export_review(const diff_t *d, const findings_t *fs, const char *sha, int request_changes,
                             review_stats_t *st)
{
    coverage_t cov = COVERAGE_INIT;
    coverage_budget_t budget = COVERAGE_BUDGET_INIT;
    budget.max_file_lines = 60; /* small, so some files are clipped */
    assert_int_equal(coverage_plan(&cov, d, &budget), 0);
    review_options_t opt = REVIEW_OPTIONS_INIT;
    opt.commit_id = sha;
    opt.request_changes = request_changes;
    json_t *review = NULL;
    assert_int_equal(review_build(&review, st, d, fs, &cov, &opt), REVIEW_OK);
    coverage_free(&cov);
    return review;
}

static void export_reviews(const char *dir)
{
    rng = 0xD1B54A32D192ED03ull;
    for (int c = 0; c < EXPORT_CASES; c++) {
        char cdir[4096], path[8192];
        snprintf(cdir, sizeof(cdir), "%s/case-%02d", dir, c);
        size_t dlen, flen, slen;
        snprintf(path, sizeof(path), "%s/diff.txt", cdir);
        char *dtext = read_all(path, &dlen);
        snprintf(path, sizeof(path), "%s/files.json", cdir);
        char *ftext = read_all(path, &flen);
        snprintf(path, sizeof(path), "%s/head_sha", cdir);
        char *sha = read_all(path, &slen);
        if (dtext == NULL || ftext == NULL || sha == NULL)
            fail_msg("%s: diff.txt, files.json and head_sha are needed", cdir);
        while (slen > 0 && (sha[slen - 1] == '\n' || sha[slen - 1] == '\r'))
            sha[--slen] = '\0';
        diff_t *from_diff = NULL, *from_files = NULL;
        assert_int_equal(diff_parse_unified(&from_diff, dtext, dlen, NULL), DIFF_OK);
        assert_int_equal(diff_parse_files_text(&from_files, ftext, flen, NULL), DIFF_OK);
        cross_check(from_diff, from_files);
        findings_t fs = FINDINGS_INIT;
        export_findings(&fs, from_diff);
        review_stats_t st_diff, st_files;
        json_t *r1 = export_review(from_diff, &fs, sha, c % 3 == 1, &st_diff);
        json_t *r2 = export_review(from_files, &fs, sha, 0, &st_files);
        write_json(cdir, "review-diff.json", r1);
        write_json(cdir, "review-files.json", r2);
        json_t *expect = json_pack("{s:i, s:i, s:i, s:i, s:i}", "findings", (json_int_t)fs.count, "inline_diff",
                                   (json_int_t)st_diff.inline_comments, "inline_files",
                                   (json_int_t)st_files.inline_comments, "summary_diff", (json_int_t)st_diff.in_summary,
                                   "moved_diff", (json_int_t)st_diff.moved);
        write_json(cdir, "expect.json", expect);
        printf("%s: %zu files, %zu findings: %zu inline (%zu moved), %zu in the summary\n", cdir, from_diff->nfiles,
               fs.count, st_diff.inline_comments, st_diff.moved, st_diff.in_summary);
        json_decref(expect);
        json_decref(r1);
        json_decref(r2);
        findings_free(&fs);
        diff_free(from_diff);
        diff_free(from_files);
        free(dtext);
        free(ftext);
        free(sha);
    }
}

int main(void)
{
    const char *dir = getenv("PATCHBAY_REVIEW_EXPORT_DIR");
    if (dir != NULL && dir[0] != '\0') {
        const char *stage = getenv("PATCHBAY_REVIEW_EXPORT_STAGE");
        /* outside a test, a failed cmocka assert prints and exits non-zero */
        if (stage != NULL && strcmp(stage, "reviews") == 0)
            export_reviews(dir);
        else
            export_cases(dir);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anchor_table),
        cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
