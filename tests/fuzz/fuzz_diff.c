/*
 * fuzz_diff — the diff parser on arbitrary bytes, read both as a unified diff
 * and as the `patch` field of GitHub's files JSON. Beyond not crashing, what
 * it keeps must hold up: every line's text lies inside its file's patch copy;
 * each hunk's lines add up to the counts of its header with consecutive
 * numbers on both sides; the numbers only grow from hunk to hunk; every line
 * is found again by diff_line_find on each side it has, and numbers between
 * hunks are not; and what diff_file_write_patch writes parses back to the
 * same lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/common/strbuf.h"
#include "jobs/review/diff.h"

static void check_file(const diff_file_t *f, int roundtrip);

static void check_diff(const diff_t *d, int roundtrip)
{
    for (size_t i = 0; i < d->nfiles; i++)
        check_file(&d->files[i], roundtrip);
}

static void check_file(const diff_file_t *f, int roundtrip)
{
    if (f->path == NULL)
        abort();
    if (f->patch != DIFF_PATCH_OK) {
        if (f->nhunks != 0 || f->nlines != 0)
            abort();
        return;
    }
    uint32_t last_old = 0, last_new = 0;
    for (size_t k = 0; k < f->nhunks; k++) {
        const diff_hunk_t *h = &f->hunks[k];
        if (h->first + h->count > f->nlines || (k + 1 < f->nhunks && h->first + h->count != f->hunks[k + 1].first))
            abort();
        uint32_t olds = 0, news = 0;
        for (size_t i = h->first; i < h->first + h->count; i++) {
            const diff_line_t *l = &f->lines[i];
            if (l->hunk != k || l->text < f->patch_text || l->text + l->text_len > f->patch_text + f->patch_len)
                abort();
            if (l->old_line) {
                if (l->old_line != h->old_start + olds++ || l->old_line <= last_old)
                    abort();
                last_old = l->old_line;
                if (diff_line_find(f, DIFF_SIDE_LEFT, l->old_line) != (long)i)
                    abort();
            }
            if (l->new_line) {
                if (l->new_line != h->new_start + news++ || l->new_line <= last_new)
                    abort();
                last_new = l->new_line;
                if (diff_line_find(f, DIFF_SIDE_RIGHT, l->new_line) != (long)i)
                    abort();
            }
            if ((l->kind == DIFF_LINE_ADDED) != (l->old_line == 0) || (l->kind == DIFF_LINE_REMOVED) != (l->new_line == 0))
                abort();
        }
        if (olds != h->old_count || news != h->new_count)
            abort();
        /* just past the hunk on each side there is nothing, unless the next hunk starts there */
        if (h->new_count && diff_line_find(f, DIFF_SIDE_RIGHT, h->new_start + h->new_count) >= 0 &&
            (k + 1 >= f->nhunks || f->hunks[k + 1].new_start != h->new_start + h->new_count))
            abort();
    }
    if (!roundtrip)
        return;
    strbuf_t b = STRBUF_INIT;
    diff_file_write_patch(f, SIZE_MAX, &b);
    json_t *one = json_object(), *arr = json_array();
    json_object_set_new(one, "filename", json_string("x"));
    json_object_set_new(one, "patch", json_stringn_nocheck(b.data ? b.data : "", b.len));
    json_array_append_new(arr, one);
    diff_t *again = NULL;
    if (arr == NULL || diff_parse_files_json(&again, arr, NULL) != DIFF_OK || again->nfiles != 1)
        abort();
    const diff_file_t *g = &again->files[0];
    if (g->nlines != f->nlines || g->nhunks != f->nhunks)
        abort();
    for (size_t i = 0; i < f->nlines; i++) {
        const diff_line_t *x = &f->lines[i], *y = &g->lines[i];
        if (x->kind != y->kind || x->old_line != y->old_line || x->new_line != y->new_line ||
            x->text_len != y->text_len || memcmp(x->text, y->text, x->text_len) != 0)
            abort();
    }
    check_file(g, 0);
    diff_free(again);
    json_decref(arr);
    strbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    diff_t *d = NULL;
    if (diff_parse_unified(&d, (const char *)data, size, NULL) != DIFF_OK)
        abort();
    check_diff(d, 1);
    diff_free(d);

    /* the same bytes as GitHub's `patch` field (jansson's _nocheck: any bytes) */
    json_t *file = json_object();
    json_object_set_new(file, "filename", json_string("f.c"));
    json_object_set_new(file, "patch", json_stringn_nocheck((const char *)data, size));
    json_object_set_new(file, "additions", json_integer(1));
    json_t *arr = json_array();
    json_array_append_new(arr, file);
    if (diff_parse_files_json(&d, arr, NULL) != DIFF_OK || d->nfiles != 1)
        abort();
    check_diff(d, 0);
    diff_free(d);
    json_decref(arr);
    return 0;
}
