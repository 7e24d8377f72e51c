/*
 * findings — what a reviewing agent says about a pull request, read from the
 * JSON it writes (the `command` backend writes $PATCHBAY_REVIEW_FILE; the
 * `openai` backend's report_finding tool hands over one object at a time) and
 * checked against the documented schema (docs/review.md) before anything
 * else looks at it.
 *
 * Accepted documents: {"summary": "...", "findings": [ ... ]}, a bare array of
 * findings, a single finding object, or any sequence of those (JSON Lines, or
 * objects appended one after another), so an agent may write all at once or
 * one finding per line as it goes. A finding:
 *   path        string, the file's path in the head commit (GitHub's filename);
 *               a leading "./" is dropped
 *   line        integer >= 1: the (last) line the finding is about
 *   side        "RIGHT" (default: the new file's numbering) or "LEFT" (the
 *               old file's, for removed lines); any case
 *   start_line  optional integer <= line: the first line of a range
 *   severity    "info" (default) | "warning" | "error"; any case
 *   body        non-empty markdown
 *   suggestion  optional string: the exact text that replaces lines
 *               start_line..line (or line alone) in the new file
 * A finding that breaks the schema is dropped, never the whole document: the
 * reason goes to the log (with the job id) and into `drops`, so the review
 * summary can say how many were dropped. Oversized bodies are cut at a UTF-8
 * boundary, not dropped; an oversized suggestion is dropped from its finding.
 * Identical findings (same path, side, lines and body) are kept once. jansson
 * has already refused invalid UTF-8, so every string here is valid UTF-8
 * without NUL bytes.
 *
 * Memory: a findings_t owns every string in it; findings_free releases it
 * (and leaves it empty, ready for reuse). Any thread; no global state.
 */
#ifndef PATCHBAY_FINDINGS_H
#define PATCHBAY_FINDINGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "diff.h"

#define FINDINGS_MAX 500                      /* findings kept from one review; the rest dropped */
#define FINDINGS_FILE_MAX_BYTES (4u << 20)    /* PATCHBAY_REVIEW_FILE read at most this much */
#define FINDINGS_BODY_MAX_BYTES 8000u         /* a finding's body is cut here */
#define FINDINGS_SUMMARY_MAX_BYTES 8000u      /* the agent's summary is cut here */
#define FINDINGS_SUGGESTION_MAX_BYTES 16000u  /* a longer suggestion is dropped */
#define FINDINGS_PATH_MAX_BYTES 4096u
#define FINDINGS_MAX_LINE DIFF_MAX_LINE_NO
#define FINDINGS_MAX_DROPS_KEPT 64            /* drop reasons remembered (all are counted and logged) */

typedef enum {
    FINDINGS_OK = 0,
    FINDINGS_ERR_IO = -1,     /* the file could not be read */
    FINDINGS_ERR_SYNTAX = -2, /* not JSON at all (nothing kept from it) */
    FINDINGS_ERR_NOMEM = -3,
} findings_error_t;

typedef enum { FINDING_INFO = 0, FINDING_WARNING, FINDING_ERROR, FINDING__SEVERITIES } finding_severity_t;

typedef struct {
    char *path;
    uint32_t line;
    uint32_t start_line; /* 0: a single-line finding */
    diff_side_t side;
    finding_severity_t severity;
    char *body;
    char *suggestion; /* NULL when none; "" deletes the lines */
    size_t index;     /* position among the findings the agent wrote, from 0 */
} finding_t;

typedef struct {
    size_t index;
    char reason[120];
} finding_drop_t;

typedef struct {
    finding_t *items;
    size_t count, cap;
    char *summary;          /* the agent's overall summary; NULL when none */
    size_t seen;            /* findings offered, kept or not */
    size_t dropped;         /* findings dropped */
    finding_drop_t drops[FINDINGS_MAX_DROPS_KEPT];
    size_t ndrops;          /* entries used in drops */
    const char *job;        /* job id for log lines; not owned, may be NULL */
} findings_t;

#define FINDINGS_INIT {NULL, 0, 0, NULL, 0, 0, {{0, {0}}}, 0, NULL}

/* Reads every finding from JSON text into f (which may already hold some).
 * FINDINGS_ERR_SYNTAX when the text holds no JSON value at all (an empty text
 * is not an error: no findings); findings parsed before a syntax error later
 * in the text are kept, and the rest of the text counts as one drop. */
int findings_parse(findings_t *f, const char *text, size_t len);

/* Reads the file at path (at most FINDINGS_FILE_MAX_BYTES; a longer file is
 * read that far and its tail dropped with a log line). A missing file is
 * FINDINGS_ERR_IO: the caller decides whether "no review file" is an error. */
int findings_load_file(findings_t *f, const char *path);

/* Validates one finding object (e.g. the arguments of a report_finding tool
 * call) and adds it. 0 when kept; -1 when dropped, with the reason in
 * reason[0..reason_size) when given. */
int findings_add_json(findings_t *f, const json_t *obj, char *reason, size_t reason_size);

void findings_free(findings_t *f);

const char *finding_severity_name(finding_severity_t s); /* "info" | "warning" | "error" */
/* -1 when unknown; case-insensitive */
int finding_severity_parse(const char *s);

#endif
