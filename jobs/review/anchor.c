/* anchor — see anchor.h. */
#include "anchor.h"

#include <assert.h>
#include <string.h>

/* GitHub's API speaks UTF-8 JSON; a path that is not UTF-8 cannot be named in it. */
static int utf8_valid(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s;
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

static int is_changed(const diff_line_t *l, diff_side_t side)
{
    return side == DIFF_SIDE_RIGHT ? l->kind == DIFF_LINE_ADDED : l->kind == DIFF_LINE_REMOVED;
}

static uint32_t distance(uint32_t a, uint32_t b)
{
    return a > b ? a - b : b - a;
}

/* The nearest hunk within `limit` lines of `line` on `side` (line lies in
 * none): its index, or -1. */
static long nearest_hunk(const diff_file_t *f, diff_side_t side, uint32_t line, uint32_t limit)
{
    long best = -1;
    uint32_t best_d = 0;
    for (size_t k = 0; k < f->nhunks; k++) {
        uint32_t first, last;
        if (diff_hunk_range(&f->hunks[k], side, &first, &last) < 0)
            continue;
        uint32_t d = line < first ? first - line : line > last ? line - last : 0;
        assert(d > 0);
        if (d <= limit && (best < 0 || d < best_d)) {
            best = (long)k;
            best_d = d;
        }
    }
    return best;
}

/* The changed line of hunk k nearest to `line` on `side`, or its nearest
 * line on that side when it changed nothing there. */
static uint32_t nearest_line(const diff_file_t *f, size_t k, diff_side_t side, uint32_t line)
{
    const diff_hunk_t *h = &f->hunks[k];
    uint32_t best = 0, any = 0;
    for (size_t i = h->first; i < h->first + h->count; i++) {
        const diff_line_t *l = &f->lines[i];
        uint32_t no = diff_line_no(l, side);
        if (no == 0)
            continue;
        if (any == 0 || distance(no, line) < distance(any, line))
            any = no;
        if (is_changed(l, side) && (best == 0 || distance(no, line) < distance(best, line)))
            best = no;
    }
    assert(any != 0);
    return best ? best : any;
}

void anchor_finding(anchor_t *out, const diff_t *d, const finding_t *fd, const anchor_options_t *opt)
{
    anchor_options_t defaults = ANCHOR_OPTIONS_INIT;
    if (opt == NULL)
        opt = &defaults;
    memset(out, 0, sizeof(*out));
    out->kind = ANCHOR_UNANCHORED;
    out->side = fd->side;
    out->line = fd->line;
    out->start_line = fd->start_line;

    const diff_file_t *f = diff_file_find(d, fd->path);
    out->file = f;
    if (f == NULL) {
        out->miss = ANCHOR_MISS_NOT_IN_DIFF;
        goto suggestion;
    }
    out->path = f->path;
    if (f->patch != DIFF_PATCH_OK || f->nhunks == 0) {
        out->miss = ANCHOR_MISS_NO_PATCH;
        goto suggestion;
    }
    if (!utf8_valid((const unsigned char *)f->path)) {
        out->miss = ANCHOR_MISS_PATH;
        goto suggestion;
    }

    long idx = diff_line_find(f, fd->side, fd->line);
    if (idx >= 0) {
        out->kind = ANCHOR_EXACT;
        if (fd->start_line != 0) {
            assert(fd->start_line < fd->line);
            long sidx = diff_line_find(f, fd->side, fd->start_line);
            if (sidx < 0 || f->lines[sidx].hunk != f->lines[idx].hunk) {
                uint32_t first, last;
                int rc = diff_hunk_range(&f->hunks[f->lines[idx].hunk], fd->side, &first, &last);
                assert(rc == 0 && first <= fd->line && first > fd->start_line);
                (void)rc;
                out->start_line = first < fd->line ? first : 0;
                out->range_clipped = 1;
            }
        }
    } else {
        long k = nearest_hunk(f, fd->side, fd->line, opt->nudge_lines);
        if (k < 0) {
            out->miss = ANCHOR_MISS_OUTSIDE;
            goto suggestion;
        }
        out->kind = ANCHOR_MOVED;
        out->line = nearest_line(f, (size_t)k, fd->side, fd->line);
        out->start_line = 0;
    }

suggestion:
    if (fd->suggestion != NULL) {
        if (out->kind == ANCHOR_UNANCHORED)
            out->suggestion_why = "the lines are not part of the diff";
        else if (fd->side != DIFF_SIDE_RIGHT)
            out->suggestion_why = "a suggestion can only change the new version of the file (RIGHT side)";
        else if (out->kind == ANCHOR_MOVED)
            out->suggestion_why = "the comment was moved, so it no longer spans the lines the suggestion replaces";
        else if (out->range_clipped)
            out->suggestion_why = "the lines it replaces are not all in one hunk of the diff";
        else
            out->suggestion_ok = 1;
    }
}

const char *anchor_miss_reason(anchor_miss_t m)
{
    switch (m) {
    case ANCHOR_MISS_NONE: return "anchored";
    case ANCHOR_MISS_NOT_IN_DIFF: return "the file is not part of this pull request";
    case ANCHOR_MISS_NO_PATCH: return "the file has no diff lines to comment on";
    case ANCHOR_MISS_OUTSIDE: return "the line is outside the diff";
    case ANCHOR_MISS_PATH: return "the file name is not valid UTF-8";
    }
    return "?";
}
