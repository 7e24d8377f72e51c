/*
 * prompt — the task an agent gets: what to do, the issue it is about, the
 * conversation so far, facts about the repository, and the rules.
 *
 * Everything that came from GitHub (titles, bodies, comments, the
 * instruction itself) is text anyone may have written, so it goes in fenced
 * and labelled as untrusted data that cannot change the rules: the fence is
 * longer than any backtick run inside it, so nothing inside can close it.
 * Before that it is cleaned of what a reader on GitHub never sees but a model
 * reads: HTML comments, zero-width and bidirectional-control characters, and
 * Unicode tag characters (an invisible second alphabet). The conversation is
 * bounded, newest comments kept.
 *
 * Memory: output goes to the caller's strbuf. Reentrant.
 */
#ifndef PATCHBAY_PROMPT_H
#define PATCHBAY_PROMPT_H

#include "app/common/strbuf.h"

#include <stddef.h>
#include <stdint.h>

#define PROMPT_CONVERSATION_MAX_BYTES (48 * 1024)
#define PROMPT_FIELD_MAX_BYTES (32 * 1024)
#define PROMPT_TEST_OUTPUT_MAX_BYTES (16 * 1024)

typedef struct {
    const char *author;
    const char *body;
} prompt_comment_t;

typedef struct {
    const char *kind;        /* "fix" or "followup" */
    const char *instruction; /* the words after the mention; may be empty */
    const char *repo;
    int64_t number;
    int is_pr;
    const char *title;
    const char *body;
    const prompt_comment_t *comments; /* oldest first */
    size_t ncomments;
    const char *default_branch;
    const char *branch;
    const char *test_command; /* or NULL */
    const char *review_path;  /* follow-up from a review comment: its file and line, or NULL */
    int64_t review_line;
    const char *requester;
    const char *instructions; /* the repository's instructions, rendered (repoinstr_task), or NULL */
} prompt_input_t;

/* The whole task text. */
void prompt_build(strbuf_t *out, const prompt_input_t *in);

/* A review's task: the pull request, the part of its diff the coverage plan
 * gives the agent (already rendered, one file after another), the files left
 * out or clipped, and the findings file's schema. */
typedef struct {
    const char *repo;
    int64_t number;
    const char *title;
    const char *body;
    const char *instruction; /* the words after "@patchbay review"; may be NULL */
    const char *requester;   /* NULL for an automatic review */
    const char *head_sha;
    const char *base_branch;
    const char *diff;        /* the patches given to the agent */
    const char *left_out;    /* one "- path: reason" line per clipped or skipped file; may be NULL */
} prompt_review_t;

void prompt_review(strbuf_t *out, const prompt_review_t *in);

/* An ask's task: the question, where it was asked (an issue and its
 * conversation; a pull request and its diff; a review thread's file and
 * line), what the checkout is, and the rules of a question: read, change
 * nothing, cite code as path:line, write the answer to PATCHBAY_SUMMARY_FILE
 * (the built-in agent: finish). */
typedef struct {
    const char *repo;
    int64_t number;
    int is_pr;
    const char *question;
    const char *requester;
    const char *title;
    const char *body;
    const prompt_comment_t *comments; /* an issue's conversation, oldest first; may be none */
    size_t ncomments;
    const char *ref;          /* what the checkout is: "main", "the pull request's head" */
    const char *sha;          /* its commit */
    const char *base_branch;  /* a pull request's base, or NULL */
    const char *diff;         /* a pull request's patches, or NULL */
    const char *left_out;     /* "- path: reason" lines for files not in the diff, or NULL */
    const char *review_path;  /* asked in a review thread: its file and line, or NULL */
    int64_t review_line;
    const char *instructions; /* the repository's instructions, rendered (repoinstr_task), or NULL */
} prompt_ask_t;

void prompt_ask(strbuf_t *out, const prompt_ask_t *in);

/* The follow-up after a failed test run: the command, the round, and the
 * tail of its output (bounded), fenced like everything untrusted. */
void prompt_test_followup(strbuf_t *out, const char *test_command, const char *output, size_t output_len, int round,
                          int rounds);

/* What a reader on GitHub sees: HTML comments, zero-width and bidi controls,
 * Unicode tag characters and other invisible format characters removed;
 * control characters other than newline and tab dropped; invalid UTF-8
 * replaced by U+FFFD. */
void prompt_clean(strbuf_t *out, const char *text, size_t len);

/* Text fenced as untrusted data, with a label above it. */
void prompt_fence(strbuf_t *out, const char *label, const char *text, size_t len);

#endif
