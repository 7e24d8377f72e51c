/*
 * answer — the reply an ask job posts: the agent's words made safe to post
 * (ghmd.h), its code references turned into permalinks at the exact commit,
 * the question's first line quoted, and what a reader must know besides (that
 * nothing was changed, and that what the agent changed anyway was thrown
 * away).
 *
 * The permalink rule, stated for people in the README too: where the text
 * names PATH:LINE or PATH:START-END as a word of its own (after a space, a
 * bracket or a quote; before a space or punctuation) or as a whole code span
 * (`calc.py:10-14`), and PATH is a regular file of the commit with at least
 * that many lines, the reference becomes a link to
 * <blob_url>/PATH#LSTART-LEND, its text as written. PATH is letters, digits
 * and . _ - + /, relative to the repository root ("./" allowed); "..", an
 * absolute path or a URL never is. Nothing changes inside fenced code, inside
 * code spans that hold more than the reference, or inside link text and
 * targets, so the result is still the Markdown the agent meant.
 *
 * Pure: the commit is read through the caller's callback. Memory: appends to
 * the caller's strbuf. Reentrant.
 */
#ifndef PATCHBAY_ANSWER_H
#define PATCHBAY_ANSWER_H

#include "app/common/strbuf.h"

#include <stddef.h>

#define ANSWER_QUOTE_MAX_BYTES 200 /* of the question's first line */
/* Every reply ends with this invisible marker and the job's id, so a retry
 * finds the reply it already posted. Not progress.h's: an answer is part of
 * the conversation a later job's agent reads, a checklist is not. */
#define ANSWER_MARKER_PREFIX "<!-- patchbay:answer="

/* How many lines the regular file `path` has at the commit: 0 with *lines
 * set, or -1 when it is not a regular file there. */
typedef int (*answer_lines_fn)(void *arg, const char *path, size_t *lines);

/* Appends md with its code references made permalinks (the rule above);
 * returns how many it made. blob_url is "<GITHUB_URL>/<owner>/<repo>/blob/
 * <sha>", without a trailing '/'. md is trusted to be safe already (the
 * output of ghmd_sanitize). */
size_t answer_permalinks(strbuf_t *out, const char *md, size_t len, const char *blob_url, answer_lines_fn lines,
                         void *arg);

typedef struct {
    const char *question;  /* quoted (its first line, bounded) when not NULL or empty: a reply in a thread has none */
    const char *text;      /* the agent's answer, untrusted (the values of its own keys already redacted) */
    const char *blob_url;  /* for the permalinks; NULL: none */
    answer_lines_fn lines;
    void *lines_arg;
    const char *where;     /* markdown, what the answer read: "`main` at `1a2b3c4`" */
    size_t discarded;      /* files the agent changed anyway, thrown away */
    int inferred;          /* the question rule, not the word "ask", made it a question */
    const char *handle;    /* who to mention for a change instead */
    const char *job_id;    /* for the invisible marker a retry finds the reply by */
} answer_t;

/* The whole reply. Returns how many permalinks it made. */
size_t answer_render(strbuf_t *out, const answer_t *in);

/* Appends the marker for job_id. */
void answer_marker(strbuf_t *out, const char *job_id);
/* Whether body carries the marker of job_id. */
int answer_marker_is(const char *body, const char *job_id);

#endif
