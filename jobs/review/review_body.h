/*
 * review_body — turns the parsed diff, the agent's findings and the coverage
 * plan into the exact JSON body of POST /repos/{o}/{r}/pulls/{n}/reviews:
 *
 *   {"commit_id": "<head sha>",             (when given: anchors were computed at it)
 *    "event": "COMMENT" | "REQUEST_CHANGES",
 *    "body": "<summary markdown>",
 *    "comments": [{"path", "line", "side", "start_line"?, "start_side"?, "body"}, ...]}
 *
 * The event is COMMENT, or REQUEST_CHANGES when the caller configured it, an
 * error-severity finding exists and the pull request is not the bot's own
 * (GitHub refuses that). Never APPROVE: there is no way to ask for it here.
 *
 * Every comment comes from anchor_finding, so each one is valid by GitHub's
 * rules; findings that found no anchor, and those over max_comments (least
 * severe first), go into the summary with their file and line. The summary
 * has the agent's own summary, counts by severity (inline and in the
 * summary), the findings outside the diff, and the coverage table (files
 * reviewed, clipped and skipped, with reasons; not-reviewed rows first). It
 * stays under GitHub's 65,536-character limit: long lists end in "... and N
 * more". A hidden marker `<!-- patchbay-review commit=<sha> -->` opens the
 * body, so a rerun can find the review it already posted for that commit.
 *
 * Agent text is untrusted markdown and goes through ghmd.h (credentials,
 * @mentions, HTML comments, the agent's own suggestion fences); paths are
 * shown in ghmd code spans. A ```suggestion block carries the agent's
 * replacement text verbatim, in a fence longer than any backtick run inside.
 *
 * Memory: review_build returns a new json_t the caller json_decref()s.
 * Pure; any thread.
 */
#ifndef PATCHBAY_REVIEW_BODY_H
#define PATCHBAY_REVIEW_BODY_H

#include <jansson.h>
#include <stddef.h>

#include "anchor.h"
#include "coverage.h"
#include "diff.h"
#include "findings.h"
#include "app/common/strbuf.h"

#define REVIEW_BODY_MAX_BYTES 60000 /* GitHub refuses bodies over 65,536 characters */
#define REVIEW_MAX_COMMENTS 50      /* inline comments per review; the rest go to the summary */
#define REVIEW_MARKER "<!-- patchbay-review"

typedef struct {
    const char *commit_id;   /* head SHA the diff belongs to; NULL leaves commit_id out */
    int request_changes;     /* configured: REQUEST_CHANGES when an error finding exists */
    int self_authored;       /* the pull request was opened by the bot itself */
    size_t max_comments;
    anchor_options_t anchor;
} review_options_t;

#define REVIEW_OPTIONS_INIT {NULL, 0, 0, REVIEW_MAX_COMMENTS, ANCHOR_OPTIONS_INIT}

typedef struct {
    const char *event;      /* "COMMENT" | "REQUEST_CHANGES" (static) */
    size_t inline_comments; /* comments in the review */
    size_t moved;           /* of those, moved to the nearest changed line */
    size_t suggestions;     /* of those, with a ```suggestion block */
    size_t in_summary;      /* findings listed in the summary instead */
    size_t dropped;         /* malformed findings the agent wrote (findings_t.dropped) */
    size_t by_severity[FINDING__SEVERITIES]; /* kept findings, inline or not */
} review_stats_t;

typedef enum {
    REVIEW_OK = 0,
    REVIEW_ERR_NOMEM = -1,
    REVIEW_ERR_ENCODING = -2, /* a string jansson would not take (not UTF-8): a bug of ours */
} review_error_t;

/* Builds the review. cov may be NULL (no coverage table); opt may be NULL
 * (defaults); stats may be NULL. *out is set on REVIEW_OK. */
int review_build(json_t **out, review_stats_t *stats, const diff_t *d, const findings_t *fs, const coverage_t *cov,
                 const review_options_t *opt);

#endif
