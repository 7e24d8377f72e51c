/*
 * coverage — which files of a pull request get reviewed, as data, so a large
 * pull request is never silently half-reviewed: every file of the diff ends
 * up reviewed, clipped (only its first lines were given to the agent) or
 * skipped, with the reason, and the review summary shows the table.
 *
 * coverage_plan splits the diff by file within a budget, in the diff's
 * order (GitHub's: by path): files without diff lines (binary, omitted by
 * GitHub, pure renames, unparsable), deleted files and files matching a skip
 * glob are skipped; a file longer than max_file_lines, or than what is left of
 * max_total_lines, is clipped to its first lines (whole hunks where they fit);
 * once max_files files are in, or the total is spent, the rest are skipped.
 * The job builds the agent's prompt from the plan (diff_file_write_patch with
 * entry.lines) and may mark files afterwards (coverage_mark: an agent that
 * timed out before a file), and review_body renders the table.
 *
 * Memory: a coverage_t owns its entries; entries point at the diff's files,
 * so the diff must outlive it. coverage_free releases it. Any thread.
 */
#ifndef PATCHBAY_COVERAGE_H
#define PATCHBAY_COVERAGE_H

#include <stddef.h>

#include "diff.h"

#define COVERAGE_MAX_FILES 300        /* files given to the agent */
#define COVERAGE_MAX_TOTAL_LINES 6000 /* diff lines over all files (~ 60k tokens of patch) */
#define COVERAGE_MAX_FILE_LINES 2000  /* diff lines of one file before it is clipped */

typedef enum { COVERAGE_REVIEWED = 0, COVERAGE_CLIPPED, COVERAGE_SKIPPED } coverage_state_t;

typedef struct {
    size_t max_files;
    size_t max_total_lines;
    size_t max_file_lines;
    const char *const *skip_globs; /* NULL-terminated fnmatch(3) patterns on the path; NULL = none */
} coverage_budget_t;

#define COVERAGE_BUDGET_INIT {COVERAGE_MAX_FILES, COVERAGE_MAX_TOTAL_LINES, COVERAGE_MAX_FILE_LINES, NULL}

typedef struct {
    const diff_file_t *file; /* not owned */
    coverage_state_t state;
    size_t lines;            /* diff lines given to the agent, from the top of the file's patch */
    size_t total_lines;      /* diff lines in the file's patch */
    char reason[112];        /* why clipped or skipped; "" when reviewed */
} coverage_entry_t;

typedef struct {
    coverage_entry_t *entries; /* one per file of the diff, in its order */
    size_t count;
    size_t files_dropped;      /* files beyond the parser's limit, never seen (diff->files_dropped) */
} coverage_t;

#define COVERAGE_INIT {NULL, 0, 0}

/* budget may be NULL (defaults). 0, or -1 when out of memory. */
int coverage_plan(coverage_t *out, const diff_t *d, const coverage_budget_t *budget);

/* Sets the state and reason of the entry for `path` (clipped: `lines` is
 * kept as planned). 0, or -1 when no entry has that path. */
int coverage_mark(coverage_t *c, const char *path, coverage_state_t state, const char *reason);

size_t coverage_count(const coverage_t *c, coverage_state_t state);
const char *coverage_state_name(coverage_state_t s); /* "reviewed" | "clipped" | "skipped" */
void coverage_free(coverage_t *c);

#endif
