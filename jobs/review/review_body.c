/* review_body — see review_body.h. */
#include "review_body.h"
#include "app/github/ghmd.h"

#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUMMARY_FINDINGS_MAX_BYTES 40000 /* the findings list stops here; the coverage table gets the rest */
#define SUMMARY_FINDING_BODY_MAX_BYTES 1500
#define SUMMARY_RESERVE_BYTES 400   /* kept for the closing lines */

static const char *const severity_title[FINDING__SEVERITIES] = {"\xE2\x84\xB9\xEF\xB8\x8F Info",
                                                                "\xE2\x9A\xA0\xEF\xB8\x8F Warning",
                                                                "\xF0\x9F\x9B\x91 Error"};

/* Cuts b to at most max bytes at a character boundary. */
static void cut_utf8(strbuf_t *b, size_t max)
{
    if (b->len <= max || b->data == NULL)
        return;
    size_t n = max;
    while (n > 0 && ((unsigned char)b->data[n] & 0xC0) == 0x80)
        n--;
    b->len = n;
    b->data[n] = '\0';
}

/* ------------------------------------------------------------------------
 * Findings and their anchors
 * ------------------------------------------------------------------------ */
typedef struct {
    const finding_t *f;
    anchor_t a;
    int inline_ok;      /* goes inline */
    const char *why;    /* in the summary: why */
} placed_t;

static int by_severity_then_index(const void *x, const void *y)
{
    const placed_t *a = *(const placed_t *const *)x, *b = *(const placed_t *const *)y;
    if (a->f->severity != b->f->severity)
        return a->f->severity > b->f->severity ? -1 : 1;
    return a->f->index < b->f->index ? -1 : a->f->index > b->f->index;
}

static int by_position(const void *x, const void *y)
{
    const placed_t *a = *(const placed_t *const *)x, *b = *(const placed_t *const *)y;
    const char *pa = a->a.path ? a->a.path : a->f->path, *pb = b->a.path ? b->a.path : b->f->path;
    int c = strcmp(pa, pb);
    if (c != 0)
        return c;
    if (a->a.side != b->a.side)
        return a->a.side == DIFF_SIDE_LEFT ? -1 : 1;
    if (a->a.line != b->a.line)
        return a->a.line < b->a.line ? -1 : 1;
    return a->f->index < b->f->index ? -1 : a->f->index > b->f->index;
}

static void append_lines_label(strbuf_t *b, uint32_t start, uint32_t line, diff_side_t side)
{
    if (start != 0)
        strbuf_appendf(b, "lines %u\xE2\x80\x93%u", start, line);
    else
        strbuf_appendf(b, "line %u", line);
    strbuf_append(b, side == DIFF_SIDE_LEFT ? " of the old file" : "");
}

/* The demoted suggestion: a plain code block saying why it is not one. */
static void append_plain_suggestion(strbuf_t *b, const finding_t *f, const char *why, const char *prefix)
{
    int delete = f->suggestion[0] == '\0';
    strbuf_appendf(b, "%s%s ", prefix, delete ? "Suggested: delete" : "Suggested replacement for");
    append_lines_label(b, f->start_line, f->line, f->side);
    strbuf_appendf(b, " (not attached as a suggestion: %s)%s\n", why, delete ? "." : ":");
    if (!delete) {
        strbuf_appendf(b, "%s\n", prefix);
        ghmd_fence(b, "", f->suggestion, prefix);
    }
}

static void comment_body(strbuf_t *b, const placed_t *p)
{
    const finding_t *f = p->f;
    strbuf_appendf(b, "**%s**\n\n", severity_title[f->severity]);
    ghmd_sanitize(b, f->body, strlen(f->body));
    strbuf_append(b, "\n");
    if (f->suggestion != NULL) {
        strbuf_append(b, "\n");
        if (p->a.suggestion_ok)
            ghmd_fence(b, "suggestion", f->suggestion, "");
        else
            append_plain_suggestion(b, f, p->a.suggestion_why, "");
    }
    if (p->a.kind == ANCHOR_MOVED) {
        strbuf_append(b, "\n<sub>Moved here from ");
        append_lines_label(b, f->start_line, f->line, f->side);
        strbuf_append(b, " (outside the diff).</sub>\n");
    } else if (p->a.range_clipped) {
        strbuf_appendf(b, "\n<sub>The finding starts at line %u, outside this part of the diff.</sub>\n",
                       f->start_line);
    }
    cut_utf8(b, REVIEW_BODY_MAX_BYTES);
}

static void summary_item(strbuf_t *b, const placed_t *p)
{
    const finding_t *f = p->f;
    strbuf_appendf(b, "- **%s** ", severity_title[f->severity]);
    ghmd_code_span(b, f->path, 0);
    strbuf_append(b, " ");
    append_lines_label(b, f->start_line, f->line, f->side);
    strbuf_appendf(b, " \xE2\x80\x94 %s\n", p->why);
    strbuf_t body = STRBUF_INIT;
    ghmd_sanitize(&body, f->body, strlen(f->body));
    if (body.len > SUMMARY_FINDING_BODY_MAX_BYTES) {
        cut_utf8(&body, SUMMARY_FINDING_BODY_MAX_BYTES);
        strbuf_append(&body, " \xE2\x80\xA6");
    }
    /* quoted line by line, so the agent's markdown stays inside the item */
    const char *s = body.data ? body.data : "";
    for (size_t i = 0; i < body.len;) {
        const char *nl = memchr(s + i, '\n', body.len - i);
        size_t end = nl ? (size_t)(nl - s) : body.len;
        strbuf_append(b, "  > ");
        strbuf_appendn(b, s + i, end - i);
        strbuf_append(b, "\n");
        i = nl ? end + 1 : end;
    }
    strbuf_free(&body);
    if (f->suggestion != NULL && strlen(f->suggestion) <= SUMMARY_FINDING_BODY_MAX_BYTES) {
        strbuf_append(b, "  >\n");
        append_plain_suggestion(b, f, p->a.suggestion_why ? p->a.suggestion_why : "it is not on a line of the diff",
                                "  > ");
    }
}

/* ------------------------------------------------------------------------
 * Summary
 * ------------------------------------------------------------------------ */
static void coverage_row(strbuf_t *b, const coverage_entry_t *e)
{
    strbuf_append(b, "| ");
    ghmd_code_span(b, e->file->path, 1);
    strbuf_appendf(b, " | %s | ", coverage_state_name(e->state));
    if (e->state == COVERAGE_SKIPPED || e->total_lines == 0)
        strbuf_append(b, "\xE2\x80\x94");
    else
        strbuf_appendf(b, "%zu/%zu", e->lines, e->total_lines);
    strbuf_append(b, " | ");
    if (e->file->previous_path != NULL) {
        strbuf_append(b, "from ");
        ghmd_code_span(b, e->file->previous_path, 1);
        if (e->reason[0])
            strbuf_append(b, "; ");
    }
    for (const char *r = e->reason; *r; r++) { /* our own text, but it can quote a glob */
        if (*r == '|')
            strbuf_append(b, "\\|");
        else
            strbuf_appendn(b, (unsigned char)*r < 0x20 ? " " : r, 1);
    }
    strbuf_append(b, " |\n");
}

static void append_coverage(strbuf_t *b, const coverage_t *cov, size_t limit)
{
    size_t reviewed = coverage_count(cov, COVERAGE_REVIEWED), clipped = coverage_count(cov, COVERAGE_CLIPPED),
           skipped = coverage_count(cov, COVERAGE_SKIPPED);
    strbuf_appendf(b, "\n#### Coverage\n\n%zu file%s: %zu reviewed, %zu clipped, %zu skipped", cov->count,
                   cov->count == 1 ? "" : "s", reviewed, clipped, skipped);
    if (cov->files_dropped > 0)
        strbuf_appendf(b, "; %zu more not listed (over the file limit, not reviewed)", cov->files_dropped);
    strbuf_append(b, ".\n\n");
    if (cov->count == 0)
        return;
    strbuf_append(b, "| File | Status | Diff lines | Note |\n| --- | --- | --- | --- |\n");
    /* not-reviewed rows first: they are what a reader must not miss */
    static const coverage_state_t order[] = {COVERAGE_SKIPPED, COVERAGE_CLIPPED, COVERAGE_REVIEWED};
    size_t shown = 0;
    size_t left[3] = {0, 0, 0};
    int full = 0;
    for (size_t o = 0; o < 3; o++) {
        for (size_t i = 0; i < cov->count; i++) {
            const coverage_entry_t *e = &cov->entries[i];
            if (e->state != order[o])
                continue;
            if (!full) {
                strbuf_t row = STRBUF_INIT;
                coverage_row(&row, e);
                if (b->len + row.len > limit)
                    full = 1;
                else
                    strbuf_appendn(b, row.data, row.len);
                strbuf_free(&row);
            }
            if (full)
                left[o]++;
            else
                shown++;
        }
    }
    if (full)
        strbuf_appendf(b, "| \xE2\x80\xA6 | | | %zu more rows not shown: %zu skipped, %zu clipped, %zu reviewed |\n",
                       left[0] + left[1] + left[2], left[0], left[1], left[2]);
}

static void append_counts(strbuf_t *b, const review_stats_t *st, const size_t in_line[FINDING__SEVERITIES],
                          const size_t in_summary[FINDING__SEVERITIES])
{
    size_t total = st->by_severity[0] + st->by_severity[1] + st->by_severity[2];
    if (total == 0) {
        strbuf_append(b, "No findings.\n");
    } else {
        strbuf_appendf(b, "%zu finding%s: %zu inline, %zu in this summary.\n\n", total, total == 1 ? "" : "s",
                       st->inline_comments, st->in_summary);
        strbuf_append(b, "| Severity | Inline | In this summary |\n| --- | ---: | ---: |\n");
        for (int s = FINDING_ERROR; s >= FINDING_INFO; s--)
            strbuf_appendf(b, "| %s | %zu | %zu |\n", severity_title[s], in_line[s], in_summary[s]);
    }
    if (st->moved > 0)
        strbuf_appendf(b, "\n%zu comment%s moved to the nearest changed line.\n", st->moved,
                       st->moved == 1 ? " was" : "s were");
    if (st->dropped > 0)
        strbuf_appendf(b, "\n%zu finding%s from the agent did not follow the findings schema and %s dropped.\n",
                       st->dropped, st->dropped == 1 ? "" : "s", st->dropped == 1 ? "was" : "were");
}

/* ------------------------------------------------------------------------
 * The review
 * ------------------------------------------------------------------------ */
static int set_string(json_t *o, const char *key, const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v == NULL)
        return REVIEW_ERR_ENCODING;
    return json_object_set_new(o, key, v) == 0 ? 0 : REVIEW_ERR_NOMEM;
}

static int set_int(json_t *o, const char *key, json_int_t v)
{
    json_t *j = json_integer(v);
    return j != NULL && json_object_set_new(o, key, j) == 0 ? 0 : REVIEW_ERR_NOMEM;
}

int review_build(json_t **out, review_stats_t *stats, const diff_t *d, const findings_t *fs, const coverage_t *cov,
                 const review_options_t *opt)
{
    review_options_t defaults = REVIEW_OPTIONS_INIT;
    if (opt == NULL)
        opt = &defaults;
    review_stats_t st;
    memset(&st, 0, sizeof(st));
    *out = NULL;
    int rc = REVIEW_OK;
    size_t n = fs->count;
    placed_t *placed = calloc(n ? n : 1, sizeof(*placed));
    placed_t **order = calloc(n ? n : 1, sizeof(*order));
    json_t *review = json_object(), *comments = json_array();
    strbuf_t body = STRBUF_INIT;
    size_t in_line[FINDING__SEVERITIES] = {0}, in_summary[FINDING__SEVERITIES] = {0};
    if (placed == NULL || order == NULL || review == NULL || comments == NULL) {
        rc = REVIEW_ERR_NOMEM;
        goto done;
    }

    /* anchor every finding; the most severe get the inline places */
    size_t anchored = 0;
    for (size_t i = 0; i < n; i++) {
        placed_t *p = &placed[i];
        p->f = &fs->items[i];
        anchor_finding(&p->a, d, p->f, &opt->anchor);
        st.by_severity[p->f->severity]++;
        if (p->a.kind != ANCHOR_UNANCHORED)
            order[anchored++] = p;
        else if (p->a.miss == ANCHOR_MISS_NO_PATCH)
            p->why = diff_patch_reason(p->a.file->patch);
        else
            p->why = anchor_miss_reason(p->a.miss);
    }
    qsort(order, anchored, sizeof(*order), by_severity_then_index);
    for (size_t i = 0; i < anchored; i++) {
        if (i < opt->max_comments)
            order[i]->inline_ok = 1;
        else
            order[i]->why = "over the limit of inline comments per review";
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &placed[i];
    qsort(order, n, sizeof(*order), by_position);

    for (size_t i = 0; i < n; i++) {
        const placed_t *p = order[i];
        if (!p->inline_ok) {
            st.in_summary++;
            in_summary[p->f->severity]++;
            continue;
        }
        json_t *c = json_object();
        if (c == NULL || json_array_append_new(comments, c) != 0) {
            rc = REVIEW_ERR_NOMEM;
            goto done;
        }
        strbuf_t cb = STRBUF_INIT;
        comment_body(&cb, p);
        if (cb.truncated) {
            strbuf_free(&cb);
            rc = REVIEW_ERR_NOMEM;
            goto done;
        }
        const char *side = diff_side_name(p->a.side);
        if ((rc = set_string(c, "path", p->a.path, strlen(p->a.path))) != 0 || (rc = set_int(c, "line", p->a.line)) != 0 ||
            (rc = set_string(c, "side", side, strlen(side))) != 0 ||
            (p->a.start_line != 0 && ((rc = set_int(c, "start_line", p->a.start_line)) != 0 ||
                                      (rc = set_string(c, "start_side", side, strlen(side))) != 0)) ||
            (rc = set_string(c, "body", cb.data ? cb.data : "", cb.len)) != 0) {
            strbuf_free(&cb);
            goto done;
        }
        strbuf_free(&cb);
        st.inline_comments++;
        in_line[p->f->severity]++;
        st.moved += p->a.kind == ANCHOR_MOVED;
        st.suggestions += p->f->suggestion != NULL && p->a.suggestion_ok;
    }
    st.dropped = fs->dropped;
    st.event = opt->request_changes && !opt->self_authored && st.by_severity[FINDING_ERROR] > 0 ? "REQUEST_CHANGES"
                                                                                                : "COMMENT";

    /* the summary */
    if (opt->commit_id != NULL) {
        strbuf_append(&body, REVIEW_MARKER " commit=");
        for (const char *c = opt->commit_id; *c; c++) /* a SHA: letters and digits only, so the marker stays a comment */
            if (isalnum((unsigned char)*c)) /* the C locale: ASCII only */
                strbuf_appendn(&body, c, 1);
        strbuf_append(&body, " -->\n");
    }
    strbuf_append(&body, "### patchbay review\n\n");
    if (fs->summary != NULL) {
        ghmd_sanitize(&body, fs->summary, strlen(fs->summary));
        strbuf_append(&body, "\n\n");
    }
    append_counts(&body, &st, in_line, in_summary);
    if (st.in_summary > 0) {
        strbuf_append(&body, "\n#### Findings outside the diff\n\n");
        size_t omitted = 0;
        for (size_t i = 0; i < n; i++) {
            const placed_t *p = order[i];
            if (p->inline_ok)
                continue;
            strbuf_t item = STRBUF_INIT;
            summary_item(&item, p);
            if (omitted > 0 || body.len + item.len > SUMMARY_FINDINGS_MAX_BYTES)
                omitted++;
            else
                strbuf_appendn(&body, item.data, item.len);
            strbuf_free(&item);
        }
        if (omitted > 0)
            strbuf_appendf(&body, "- \xE2\x80\xA6 and %zu more (the job's log has them all)\n", omitted);
    }
    if (cov != NULL)
        append_coverage(&body, cov, REVIEW_BODY_MAX_BYTES - SUMMARY_RESERVE_BYTES);
    if (body.truncated) {
        rc = REVIEW_ERR_NOMEM;
        goto done;
    }
    assert(body.len <= REVIEW_BODY_MAX_BYTES);

    if (opt->commit_id != NULL && (rc = set_string(review, "commit_id", opt->commit_id, strlen(opt->commit_id))) != 0)
        goto done;
    if ((rc = set_string(review, "event", st.event, strlen(st.event))) != 0 ||
        (rc = set_string(review, "body", body.data, body.len)) != 0)
        goto done;
    if (json_object_set(review, "comments", comments) != 0) {
        rc = REVIEW_ERR_NOMEM;
        goto done;
    }
    *out = review;
    review = NULL;
    if (stats != NULL)
        *stats = st;
done:
    json_decref(review);
    json_decref(comments);
    strbuf_free(&body);
    free(placed);
    free(order);
    return rc;
}
