/*
 * reviewjob — the review kind: one GitHub review of a pull request's head
 * commit, with inline comments GitHub cannot refuse.
 *
 * In order:
 *   eyes on "@patchbay review" (a person asked) and their permission checked
 *   live; .github/patchbay.yml from the default branch, which decides
 *   whether automatic reviews happen at all (review.auto, review.drafts,
 *   review.synchronize); the pull request as it is now (closed: nothing to
 *   do); no second review of a head commit already reviewed (found by the
 *   review's marker); a "patchbay review" check run on the head commit, in
 *   progress; the changed files from the API, parsed, planned within the
 *   coverage budget; the head checked out (refs/pull/N/head, fork-safe) so the
 *   agent can read around the diff; the agent, with the numbered diff in its
 *   task and its findings in PATCHBAY_REVIEW_FILE; every finding anchored on
 *   the diff (review_body); the review posted as COMMENT (REQUEST_CHANGES
 *   only when the repository asks, never APPROVE); the check run completed
 *   with the counts; rocket.
 *
 * What a run achieved (check_run_id, review_id, review_url) is kept in the
 * job record, so a retry neither posts a second review nor opens a second
 * check run. A newer head commit's review stops this one (queue.c); a push
 * with no newer review job leaves this one reviewing the commit it started
 * on, which GitHub shows as outdated comments.
 *
 * Handlers run on a worker's main thread; nothing is shared between jobs.
 */
#ifndef PATCHBAY_REVIEWJOB_H
#define PATCHBAY_REVIEWJOB_H

#include "jobctx.h"

#include <stddef.h>

#define REVIEWJOB_CHECK_NAME "patchbay review"

job_result_t reviewjob_run(job_ctx_t *ctx, char *err, size_t err_len);
void reviewjob_on_dead(job_ctx_t *ctx, const char *why);

#endif
