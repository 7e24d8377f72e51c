/* coverage — see coverage.h. */
#include "coverage.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *coverage_state_name(coverage_state_t s)
{
    switch (s) {
    case COVERAGE_REVIEWED: return "reviewed";
    case COVERAGE_CLIPPED: return "clipped";
    case COVERAGE_SKIPPED: return "skipped";
    }
    return "?";
}

static int skipped_by_glob(const char *path, const char *const *globs, const char **which)
{
    for (size_t i = 0; globs != NULL && globs[i] != NULL; i++) {
        /* no FNM_PATHNAME, so a "*" after "vendor/" covers the whole tree, as people expect */
        if (fnmatch(globs[i], path, 0) == 0) {
            *which = globs[i];
            return 1;
        }
    }
    return 0;
}

/* Lines of f's patch that fit in `room`: whole hunks while they fit, or the
 * first `room` lines when not even the first hunk does. */
static size_t fit_lines(const diff_file_t *f, size_t room, size_t *hunks)
{
    size_t used = 0;
    *hunks = 0;
    for (size_t k = 0; k < f->nhunks; k++) {
        if (used + f->hunks[k].count > room)
            break;
        used += f->hunks[k].count;
        (*hunks)++;
    }
    if (*hunks == 0)
        used = room < f->nlines ? room : f->nlines;
    return used;
}

int coverage_plan(coverage_t *out, const diff_t *d, const coverage_budget_t *budget)
{
    coverage_budget_t b = COVERAGE_BUDGET_INIT;
    if (budget != NULL)
        b = *budget;
    memset(out, 0, sizeof(*out));
    out->files_dropped = d->files_dropped;
    if (d->nfiles == 0)
        return 0;
    out->entries = calloc(d->nfiles, sizeof(*out->entries));
    if (out->entries == NULL)
        return -1;
    out->count = d->nfiles;
    size_t files = 0, total = 0;
    for (size_t i = 0; i < d->nfiles; i++) {
        const diff_file_t *f = &d->files[i];
        coverage_entry_t *e = &out->entries[i];
        const char *glob = NULL;
        e->file = f;
        e->total_lines = f->nlines;
        e->state = COVERAGE_SKIPPED;
        if (f->patch != DIFF_PATCH_OK || f->nlines == 0) {
            snprintf(e->reason, sizeof(e->reason), "%s", diff_patch_reason(f->patch));
        } else if (f->status == DIFF_FILE_REMOVED) {
            snprintf(e->reason, sizeof(e->reason), "deleted file");
        } else if (skipped_by_glob(f->path, b.skip_globs, &glob)) {
            snprintf(e->reason, sizeof(e->reason), "matches %.80s", glob);
        } else if (files >= b.max_files || total >= b.max_total_lines) {
            snprintf(e->reason, sizeof(e->reason), "review budget used up (%zu files, %zu diff lines)", files, total);
        } else {
            size_t room = b.max_total_lines - total;
            if (room > b.max_file_lines)
                room = b.max_file_lines;
            if (f->nlines <= room) {
                e->state = COVERAGE_REVIEWED;
                e->lines = f->nlines;
            } else {
                size_t hunks;
                e->state = COVERAGE_CLIPPED;
                e->lines = fit_lines(f, room, &hunks);
                if (hunks > 0)
                    snprintf(e->reason, sizeof(e->reason), "first %zu of %zu hunks (%zu of %zu diff lines)", hunks,
                             f->nhunks, e->lines, f->nlines);
                else
                    snprintf(e->reason, sizeof(e->reason), "first %zu of %zu diff lines", e->lines, f->nlines);
            }
            files++;
            total += e->lines;
        }
    }
    return 0;
}

int coverage_mark(coverage_t *c, const char *path, coverage_state_t state, const char *reason)
{
    for (size_t i = 0; i < c->count; i++) {
        coverage_entry_t *e = &c->entries[i];
        if (strcmp(e->file->path, path) != 0)
            continue;
        e->state = state;
        if (state == COVERAGE_SKIPPED)
            e->lines = 0;
        else if (state == COVERAGE_REVIEWED)
            e->lines = e->total_lines;
        snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
        return 0;
    }
    return -1;
}

size_t coverage_count(const coverage_t *c, coverage_state_t state)
{
    size_t n = 0;
    for (size_t i = 0; i < c->count; i++)
        n += c->entries[i].state == state;
    return n;
}

void coverage_free(coverage_t *c)
{
    free(c->entries);
    memset(c, 0, sizeof(*c));
}
