/*
 * anchor — decides where on the pull request's diff a finding may be posted,
 * by GitHub's rules, so a review is never refused (one bad anchor makes GitHub
 * answer 422 and drop the whole review).
 *
 * GitHub's rules for a review comment (tests/fakes/ghfake_pulls.py enforces
 * the same): `path` is a file of the diff; `line` on `side` lies inside one of
 * that file's hunks (an added or context line for RIGHT, a removed or context
 * line for LEFT); a multi-line comment's `start_line` is < `line`, on the same
 * side, in the same hunk. A file without hunks (binary, patch omitted, pure
 * rename) takes no line comment at all.
 *
 * What this module does with a finding:
 *  - on a valid line: kept there (ANCHOR_EXACT). A range whose start lies
 *    outside the end line's hunk is cut to the hunk's first line on that side
 *    (range_clipped).
 *  - outside every hunk but within `nudge_lines` of one (on that side): moved
 *    to the nearest changed line of that hunk (added for RIGHT, removed for
 *    LEFT; a hunk with none on that side gives its nearest line), as a
 *    single-line comment (ANCHOR_MOVED). The nearest hunk wins; a tie goes to
 *    the earlier one, and so does a tie between two lines.
 *  - anything else: ANCHOR_UNANCHORED, with the reason; the review puts it in
 *    its summary with its file and line.
 * A ```suggestion replaces exactly the lines a comment spans, on the new
 * file: it is allowed (suggestion_ok) only on RIGHT, on an exact anchor whose
 * range was not cut. Otherwise suggestion_why says why it will be shown as a
 * plain code block instead.
 *
 * Memory: anchor_t points into the diff (file, path) and to static strings;
 * it lives as long as the diff. Pure functions; any thread.
 */
#ifndef PATCHBAY_ANCHOR_H
#define PATCHBAY_ANCHOR_H

#include <stdint.h>

#include "diff.h"
#include "findings.h"

#define ANCHOR_NUDGE_LINES 3 /* how far outside a hunk a finding may be moved from */

typedef struct {
    uint32_t nudge_lines; /* 0: never move a finding */
} anchor_options_t;

#define ANCHOR_OPTIONS_INIT {ANCHOR_NUDGE_LINES}

typedef enum {
    ANCHOR_EXACT = 0,  /* on the line the finding named */
    ANCHOR_MOVED,      /* moved onto the nearest changed line */
    ANCHOR_UNANCHORED, /* no valid place: into the summary */
} anchor_kind_t;

typedef enum {
    ANCHOR_MISS_NONE = 0,
    ANCHOR_MISS_NOT_IN_DIFF, /* the path is not a file of this pull request */
    ANCHOR_MISS_NO_PATCH,    /* the file has no lines to comment on (see file->patch) */
    ANCHOR_MISS_OUTSIDE,     /* the line is outside every hunk */
    ANCHOR_MISS_PATH,        /* the file's name is not valid UTF-8: GitHub's JSON cannot carry it */
} anchor_miss_t;

typedef struct {
    anchor_kind_t kind;
    anchor_miss_t miss;        /* why, when ANCHOR_UNANCHORED */
    const diff_file_t *file;   /* the file of the diff; NULL when not in it */
    const char *path;          /* file->path (a renamed file found by its old name gets its new one) */
    diff_side_t side;
    uint32_t line;             /* where the comment goes (unanchored: the finding's own line) */
    uint32_t start_line;       /* 0: single line */
    unsigned range_clipped : 1;
    unsigned suggestion_ok : 1;
    const char *suggestion_why; /* the finding has a suggestion that cannot be attached: why; else NULL */
} anchor_t;

void anchor_finding(anchor_t *out, const diff_t *d, const finding_t *f, const anchor_options_t *opt);

/* A short human sentence for ANCHOR_MISS_* (file->patch adds detail for NO_PATCH). */
const char *anchor_miss_reason(anchor_miss_t m);

#endif
