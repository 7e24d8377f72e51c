/*
 * progress — the one comment a job keeps on its issue, edited in place as its
 * steps complete: a checklist with the step running now, the elapsed time, a
 * link to the job's log on the dashboard when one is configured, and at the
 * end the outcome (the pull request, the summary, or what went wrong).
 *
 * The comment opens with an invisible marker, <!-- patchbay:job=<id> -->, so a
 * job retried after a crash finds the comment it already made (by marker)
 * instead of posting a second one; progress_marker_find reads it back.
 *
 * Pure rendering: no I/O. Memory: a progress_t holds pointers it does not
 * own (labels are string literals; details are copied into fixed buffers).
 * Not thread-safe; one per job.
 */
#ifndef PATCHBAY_PROGRESS_H
#define PATCHBAY_PROGRESS_H

#include "app/common/strbuf.h"

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_MAX_STEPS 12
#define PROGRESS_DETAIL_BYTES 240
#define PROGRESS_MARKER_PREFIX "<!-- patchbay:job="

typedef enum {
    PROGRESS_PENDING = 0,
    PROGRESS_RUNNING,
    PROGRESS_DONE,
    PROGRESS_FAILED,
    PROGRESS_SKIPPED,
} progress_state_t;

typedef struct {
    const char *label; /* "Run the agent" */
    progress_state_t state;
    int64_t started_ms, finished_ms;
    char detail[PROGRESS_DETAIL_BYTES]; /* one line, markdown-safe text (set with progress_detail) */
} progress_step_t;

typedef enum {
    PROGRESS_WORKING = 0,
    PROGRESS_SUCCEEDED,
    PROGRESS_NO_CHANGE,
    PROGRESS_ANSWERED,  /* the agent changed nothing and answered instead: a success */
    PROGRESS_FAILED_OUTCOME,
    PROGRESS_CANCELLED,
} progress_outcome_t;

typedef struct {
    char job_id[32];
    const char *dashboard_url; /* base URL, or NULL: no link */
    const char *title;         /* "Fixing #42" */
    int64_t started_ms;
    progress_step_t steps[PROGRESS_MAX_STEPS];
    size_t nsteps;
    progress_outcome_t outcome;
    char *outcome_md; /* owned: the final words (PR link, summary, error); progress_free */
} progress_t;

void progress_init(progress_t *p, const char *job_id, const char *title, const char *dashboard_url, int64_t now_ms);
void progress_free(progress_t *p);
/* Adds a step; returns its index. Asserts there is room (the step list is fixed per job kind). */
size_t progress_add(progress_t *p, const char *label);
void progress_start(progress_t *p, size_t step, int64_t now_ms);
void progress_finish(progress_t *p, size_t step, progress_state_t state, int64_t now_ms);
/* Sets a step's detail from untrusted text: one line, mentions neutralised, cut to fit. */
void progress_detail(progress_t *p, size_t step, const char *text);
/* The final words, markdown the caller built (already sanitised); copied. */
void progress_outcome(progress_t *p, progress_outcome_t outcome, const char *markdown);

/* The whole comment body. */
void progress_render(strbuf_t *out, const progress_t *p, int64_t now_ms);

/* Finds the marker in a comment body; writes the job id (NUL-terminated) and
 * returns 0, or -1 when the body has none. */
int progress_marker_find(const char *body, char *job_id, size_t job_id_len);

/* "1m 05s", "3.2 s", "2h 01m" */
void progress_format_duration(char *out, size_t out_len, int64_t ms);

#endif
