/*
 * progressgh — a job's progress comment on GitHub, edited only when a person
 * would notice: at most once every PROGRESSGH_INTERVAL_MS while the job runs,
 * never with a text that changes nothing but the clock, and always at the end.
 *
 * Every edit is a content-generating call, and GitHub allows an installation
 * 80 a minute and 500 an hour (ghbudget.h). A fast fix job used to edit its
 * checklist six times in a second, which nobody could read and which cost
 * more than half the job's content calls; now a job that is done within the
 * interval edits it once, at the end, and a long one shows each step within
 * the interval of its start.
 *
 * The handler renders the checklist (progress.h) and hands the text over; a
 * thread of its own, with its own GitHub client made from the job's App,
 * sends the newest text once the interval since the last edit has passed, so
 * a step that starts during a long agent run or in the middle of best of N
 * still shows. Intermediate edits are low priority (they give way to the
 * budget). progressgh_finish stops the thread, so the last edit always lands
 * after every earlier one, and sends the final text itself.
 *
 * Memory: a progressgh_t owns its thread, its client and copies of the texts;
 * the App and the repository must outlive it. One per job; its functions are
 * for the handler's thread.
 */
#ifndef PATCHBAY_PROGRESSGH_H
#define PATCHBAY_PROGRESSGH_H

#include "app/github/ghapi.h"

#include <stdint.h>

#define PROGRESSGH_INTERVAL_MS 5000

typedef struct progressgh_s progressgh_t;

/* Comment comment_id on r, whose text is now `shown` (its clock-free
 * rendering, see progressgh_update). Log lines carry delivery and job. NULL
 * when out of memory or no thread can be had (the caller edits inline). */
progressgh_t *progressgh_open(ghapi_app_t *app, const ghapi_repo_t *r, int64_t comment_id, const char *shown,
                              int64_t interval_ms, const char *delivery, const char *job);

/* A new state: body is the comment; same is the same checklist rendered
 * without the running clock, so that a state differing only in elapsed time
 * is no edit. Copied. */
void progressgh_update(progressgh_t *p, const char *body, const char *same);

/* The last edit: waits for an edit under way, drops a pending one, and sends
 * body through gh unless nothing changed. Returns a GHAPI_* code (GHAPI_OK
 * when nothing had to be sent). The thread is gone afterwards; further
 * updates are ignored. */
int progressgh_finish(progressgh_t *p, ghapi_t *gh, const char *body, const char *same);

/* Edits sent so far (intermediate and final). */
int progressgh_edits(const progressgh_t *p);

/* Stops the thread (a pending edit is dropped) and frees p. NULL is fine. */
void progressgh_close(progressgh_t *p);

#endif
