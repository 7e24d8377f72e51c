/*
 * fixjob — the fix and followup kinds: from "@patchbay fix this" (or the
 * trigger label) to a pull request, and from a comment on patchbay's own pull
 * request to new commits on it. Also the two small answering kinds, help and
 * stop.
 *
 * A fix job, in order (each step shown in the one progress comment, which is
 * edited in place when a person would notice, progressgh.h):
 *   eyes on the trigger; the progress comment (found again by its marker on a
 *   retry); the requester's permission, checked live (write or more);
 *   .github/patchbay.yml from the default branch; the issue and its
 *   conversation; an installation token narrowed to the repository; the
 *   workspace from the cached mirror; the setup commands; the agent; the test
 *   command, its failures sent back to the agent for agent.test_rounds rounds;
 *   the change checked (not empty, no forbidden path, none of the agent's own
 *   keys written into it); one commit as the App's
 *   bot with a Co-authored-by trailer for the requester; a '+' push; the pull
 *   request (reused when one exists for the branch; a draft when configured
 *   or when tests fail); the final summary; rocket, or confused and the error.
 *
 * Best of N (agent.attempts, the repository's, or "--attempts N" in the
 * request): N attempts (setup, agent, test rounds) at once on N work trees of
 * the same branch, each on its own thread; the pull request is made from the
 * one whose tests pass with the smallest change, and lists every attempt.
 *
 * Idempotent: what a run achieved is written to the job's record
 * (progress_comment_id, pushed_sha, pr_number, pr_url), so a retry after a
 * crash continues instead of doing anything twice, and the comment and the
 * pull request are found by their marker and branch when the record missed
 * them.
 *
 * The installation token goes to the workspace's push and fetch only; the
 * agent, the setup and the test commands never see it.
 *
 * Handlers run on a worker's main thread; nothing here is shared between jobs.
 */
#ifndef PATCHBAY_FIXJOB_H
#define PATCHBAY_FIXJOB_H

#include "jobctx.h"

#include <stddef.h>

#define FIXJOB_WORKING_LABEL "patchbay:working"
#define FIXJOB_COMMENTS_MAX 200
#define FIXJOB_ATTEMPTS_MAX 8 /* best of N: attempts at once, whatever is asked */
#define FIXJOB_SCAN_MAX_BYTES (16u * 1024 * 1024) /* of a changed file, searched for the agent's keys */

job_result_t fixjob_run(job_ctx_t *ctx, char *err, size_t err_len);
void fixjob_on_dead(job_ctx_t *ctx, const char *why);
job_result_t fixjob_help(job_ctx_t *ctx, char *err, size_t err_len);
job_result_t fixjob_stop(job_ctx_t *ctx, char *err, size_t err_len);

#endif
