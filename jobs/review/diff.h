/*
 * diff — the pull request's diff as GitHub numbers it: files, hunks, and every
 * added, removed and context line with its old (LEFT) and new (RIGHT) line
 * number. The anchoring engine checks review comments against this, so it
 * must agree with GitHub on every line GitHub would accept and refuse.
 *
 * Two inputs, one result:
 *  - diff_parse_unified: the text GitHub serves for a pull request with
 *    `Accept: application/vnd.github.diff` (git's format: "diff --git"
 *    headers, extended headers for renames, copies, modes, new and deleted
 *    files, "Binary files ... differ" and "GIT binary patch"), or a plain
 *    `diff -u` (files introduced by "--- " / "+++ ").
 *  - diff_parse_files_json: the array of GET /repos/{o}/{r}/pulls/{n}/files
 *    (all pages concatenated): `filename`, `status`, `previous_filename`,
 *    `additions`/`deletions`/`changes`, and `patch`, which GitHub leaves out
 *    for binary files, for pure renames and mode changes, and for diffs too
 *    large to show.
 *
 * Hunks are read by their counts ("@@ -a,b +c,d @@"), as git apply does, so a
 * removed line that reads "-- x" or an added "diff --git" line is content, not
 * a header. A file whose hunks do not add up (a count that runs past the end,
 * a line that is none of ' ', '+', '-', '\', hunks out of order or
 * overlapping, numbers beyond DIFF_MAX_LINE_NO) keeps its name and status but
 * loses its hunks: patch = DIFF_PATCH_MALFORMED, so nothing is ever anchored
 * on a diff we only half understood. "\ No newline at end of file" marks the
 * line before it. CRLF: header lines lose a trailing '\r'; content lines lose
 * it from `text` and keep it in `crlf`. An empty line inside a hunk is a
 * context line whose trailing space was stripped (GNU patch and GitHub's
 * numbering both read it so).
 *
 * Hostile input is bounded by diff_limits_t: total bytes (an error), files
 * (the rest counted in files_dropped), lines per file (the file becomes
 * DIFF_PATCH_TOO_LARGE). Every read stays inside text[0..len); the text need
 * not be NUL-terminated and may contain NUL bytes.
 *
 * Memory: a diff_t owns everything in it (diff_free). Each file keeps its own
 * copy of its patch (from the first "@@", as GitHub's `patch` field), and the
 * `text`/`section` pointers of its lines and hunks point into that copy. No
 * global state; any thread, one diff_t per thread at a time.
 */
#ifndef PATCHBAY_DIFF_H
#define PATCHBAY_DIFF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "app/common/strbuf.h"

/* Line numbers above this are refused (malformed): far beyond any real file,
 * and small enough that start + count never overflows an int. */
#define DIFF_MAX_LINE_NO 100000000u

#define DIFF_MAX_BYTES (64u * 1024 * 1024) /* whole input; GitHub stops serving diffs long before */
#define DIFF_MAX_FILES 3000u               /* GitHub's own cap on a PR's files list */
#define DIFF_MAX_FILE_LINES 200000u        /* diff lines (and hunk headers) kept per file */

typedef struct {
    size_t max_bytes;
    size_t max_files;
    size_t max_file_lines;
} diff_limits_t;

#define DIFF_LIMITS_INIT {DIFF_MAX_BYTES, DIFF_MAX_FILES, DIFF_MAX_FILE_LINES}

typedef enum {
    DIFF_OK = 0,
    DIFF_ERR_TOO_LARGE = -1, /* input over limits.max_bytes */
    DIFF_ERR_NOMEM = -2,
    DIFF_ERR_FORMAT = -3, /* files JSON that is not an array of objects */
} diff_error_t;

/* GitHub's names: RIGHT is the head (new) file, LEFT the base (old) file. */
typedef enum { DIFF_SIDE_RIGHT = 0, DIFF_SIDE_LEFT = 1 } diff_side_t;

typedef enum { DIFF_LINE_CONTEXT = 0, DIFF_LINE_ADDED, DIFF_LINE_REMOVED } diff_line_kind_t;

typedef struct {
    diff_line_kind_t kind;
    uint32_t old_line;       /* LEFT number; 0 for an added line */
    uint32_t new_line;       /* RIGHT number; 0 for a removed line */
    uint32_t hunk;           /* index into the file's hunks */
    unsigned no_newline : 1; /* "\ No newline at end of file" follows it */
    unsigned crlf : 1;       /* the line ended in "\r\n" */
    const char *text;        /* without the prefix and the line end; not NUL-terminated */
    uint32_t text_len;
} diff_line_t;

typedef struct {
    uint32_t old_start, old_count; /* "-old_start,old_count" */
    uint32_t new_start, new_count; /* "+new_start,new_count" */
    const char *section;           /* text after the closing "@@ " (function context); not NUL-terminated */
    uint32_t section_len;
    size_t first, count; /* lines[first .. first + count) */
    uint32_t additions, deletions;
} diff_hunk_t;

typedef enum {
    DIFF_FILE_MODIFIED = 0,
    DIFF_FILE_ADDED,
    DIFF_FILE_REMOVED,
    DIFF_FILE_RENAMED,
    DIFF_FILE_COPIED,
    DIFF_FILE_CHANGED,   /* GitHub's "changed": a type change */
    DIFF_FILE_UNCHANGED, /* GitHub's "unchanged" */
} diff_status_t;

typedef enum {
    DIFF_PATCH_OK = 0,    /* hunks parsed; there may be none (an empty new file) */
    DIFF_PATCH_BINARY,    /* binary file: no lines to comment on */
    DIFF_PATCH_NONE,      /* no textual change: pure rename, copy, mode change, empty file */
    DIFF_PATCH_OMITTED,   /* GitHub left the patch out although lines changed (too large) */
    DIFF_PATCH_MALFORMED, /* the hunks did not parse; dropped */
    DIFF_PATCH_TOO_LARGE, /* over limits.max_file_lines; dropped */
} diff_patch_t;

typedef struct {
    char *path;          /* GitHub's `filename`: the new path, the old one for a removed file */
    char *previous_path; /* renamed or copied: the old path; else NULL */
    diff_status_t status;
    diff_patch_t patch;
    uint32_t old_mode, new_mode; /* from the git header (octal); 0 when not given */
    uint32_t additions, deletions;
    diff_hunk_t *hunks;
    size_t nhunks;
    diff_line_t *lines;
    size_t nlines;
    char *patch_text; /* the file's patch from its first "@@"; NULL when no hunks */
    size_t patch_len;
} diff_file_t;

typedef struct {
    diff_file_t *files;
    size_t nfiles;
    size_t files_dropped; /* file sections beyond limits.max_files, not parsed */
    size_t garbage;       /* sections or elements skipped because no file could be made of them */
} diff_t;

/* Parses a unified diff (git's format or plain diff -u). *out is set on 0
 * and owned by the caller (diff_free). Malformed files do not fail the parse
 * (see above); only size and memory do. limits may be NULL (defaults). */
int diff_parse_unified(diff_t **out, const char *text, size_t len, const diff_limits_t *limits);

/* Parses GitHub's PR files array (a JSON array of file objects; elements
 * without a string `filename` are skipped and counted in `garbage`). */
int diff_parse_files_json(diff_t **out, const json_t *files, const diff_limits_t *limits);

/* The same from JSON text. */
int diff_parse_files_text(diff_t **out, const char *json, size_t len, const diff_limits_t *limits);

void diff_free(diff_t *d);

/* The file whose path (or, failing that, previous path) is `path`; NULL if none. */
const diff_file_t *diff_file_find(const diff_t *d, const char *path);

/* Index into f->lines of the line numbered `line` on `side` (an added or
 * context line for RIGHT, a removed or context line for LEFT): exactly the
 * lines GitHub accepts a review comment on. -1 when there is none. */
long diff_line_find(const diff_file_t *f, diff_side_t side, uint32_t line);

/* The line's number on `side`, 0 when it has none there. */
uint32_t diff_line_no(const diff_line_t *l, diff_side_t side);

/* The first and last line number of hunk h on `side`; 0 when the hunk has no
 * line on that side (a pure addition has none on LEFT). */
int diff_hunk_range(const diff_hunk_t *h, diff_side_t side, uint32_t *first, uint32_t *last);

/* Appends f's patch as text (hunk headers and lines, '\n' ends, "\ No
 * newline at end of file" kept), stopping after max_lines diff lines
 * (SIZE_MAX: all), e.g. for an agent's prompt (coverage_entry_t.lines). */
void diff_file_write_patch(const diff_file_t *f, size_t max_lines, strbuf_t *out);

const char *diff_status_name(diff_status_t s);  /* GitHub's word: "modified", "added", ... */
const char *diff_patch_name(diff_patch_t p);    /* "ok", "binary", "none", "omitted", "malformed", "too_large" */
const char *diff_patch_reason(diff_patch_t p);  /* a human sentence for summaries and logs */
const char *diff_side_name(diff_side_t s);      /* "RIGHT" | "LEFT" */

#endif
