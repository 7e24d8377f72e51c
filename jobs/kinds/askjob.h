/*
 * askjob — the ask kind: a question answered with one reply, never a
 * branch, a commit or a pull request.
 *
 * In order:
 *   eyes on the question; .github/patchbay.yml from the default branch (the
 *   agent, the ask.* budgets, the environment); on a private repository, the
 *   asker's permission read live, at least read (the answer quotes its code;
 *   on a public one anyone triggers.associations lets in may ask); the issue
 *   and its conversation, or the pull request, whose code decides the agent
 *   (jobgh_pull_trust: a stranger's code gets the built-in agent, which runs
 *   and changes nothing, or the operator's review.untrusted_agent, or no
 *   answer but why) and whose diff goes into the task; a checkout of the
 *   default branch (an issue) or of the pull request's head
 *   (refs/pull/N/head) on a branch that exists only there; for the built-in
 *   agent, the repository's instructions (repoinstr.h) from that commit, or
 *   from a stranger's pull request's base; the agent, asked to read and
 *   answer (the built-in one offered no tool that edits or runs); whatever it
 *   changed anyway counted and thrown away with the work tree; the answer,
 *   its code references made permalinks at the commit it read (answer.h),
 *   posted as one reply: a comment on the issue or pull request quoting the
 *   question, or a reply in the review thread where it was asked; rocket,
 *   or confused and a reply that says what went wrong.
 *
 * Idempotent: every reply carries the job's answer marker and the answer's
 * URL goes into the record (answer_url), so a retry that finds either posts
 * nothing twice. The installation token fetches the mirror only: an ask
 * never pushes anything.
 *
 * Handlers run on a worker's main thread; nothing here is shared between jobs.
 */
#ifndef PATCHBAY_ASKJOB_H
#define PATCHBAY_ASKJOB_H

#include "jobctx.h"

#include <stddef.h>

#define ASKJOB_DIFF_MAX_BYTES (48 * 1024) /* of a pull request's patches in the task */
#define ASKJOB_COMMENTS_MAX 200

job_result_t askjob_run(job_ctx_t *ctx, char *err, size_t err_len);
void askjob_on_dead(job_ctx_t *ctx, const char *why);

#endif
