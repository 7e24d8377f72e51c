/*
 * jobgh — what every handler that talks to GitHub about one issue or pull
 * request needs: the job record's fields, a client for the job's
 * installation, the requester's live permission, the repository's own
 * .github/patchbay.yml, reactions, and how a GitHub failure becomes a job
 * result; and what they share besides GitHub: the agent's hooks into the
 * job (its stop flag, its process groups) and the removal of a work tree.
 * Shared by the fix and review handlers so they decide these the same way.
 *
 * Memory: jobgh_t owns its client (jobgh_close); strings from the record are
 * borrowed from the job context and live as long as it. Not thread-safe:
 * one job, one thread.
 */
#ifndef PATCHBAY_JOBGH_H
#define PATCHBAY_JOBGH_H

#include "jobctx.h"
#include "app/github/ghapi.h"
#include "jobs/agent/agent.h"
#include "jobs/agent/sandbox_user.h"
#include "jobs/image/imagestore.h"
#include "jobs/queue/job.h"
#include "jobs/workspace/repoconfig.h"
#include "jobs/workspace/workspace.h"

#include <stddef.h>
#include <stdint.h>

/* The record's fields: NULL for a missing or empty string, 0 for a missing number. */
const char *jobgh_str(job_ctx_t *ctx, const char *name);
int64_t jobgh_int(job_ctx_t *ctx, const char *name);
/* Writes a field of the record; a failure is only logged (it costs a retry
 * its shortcut, never correctness). */
void jobgh_set(job_ctx_t *ctx, const char *name, const char *value);
void jobgh_set_int(job_ctx_t *ctx, const char *name, int64_t value);

/* Rate limits and outages retry; everything else is final. */
job_result_t jobgh_result(int ghapi_rc);

typedef struct {
    job_ctx_t *ctx;
    ghapi_app_t *app;
    ghapi_t *gh;
    ghapi_repo_t r;   /* repo and installation from the record */
    int64_t number;   /* the issue or pull request */
} jobgh_t;

/* A client for the record's installation, its log lines tagged with the
 * delivery and job. 0, or -1 with the reason in err (no repo or
 * installation in the record, credentials missing). */
int jobgh_open(jobgh_t *j, job_ctx_t *ctx, char *err, size_t err_len);
void jobgh_close(jobgh_t *j);

/* The requester's permission, read live: 1 enough, 0 not enough (*perm
 * says what they have), or a negative GHAPI_ERR_*. *perm is malloc'd on 0
 * and 1. A user GitHub does not know as a collaborator has "none". */
int jobgh_permission(jobgh_t *j, const char *login, const char *needed, char **perm);

/* Whether a pull request's code (pr: the API's pull request) is a
 * stranger's, whoever asked about it: its head lives in another repository
 * (a fork: anyone can open one), or its author lacks `needed` here, read
 * live (an organization MEMBER may have read access only). patchbay's own
 * pull requests (author `bot`, "<slug>[bot]") are not. 0 with *untrusted set
 * and, when it is, why in why ("its code comes from the fork x/y"); a
 * negative GHAPI_ERR_* when the author's permission could not be read. Such
 * code never runs and never shares a process with a key:
 * agent_settings_untrusted. */
int jobgh_pull_trust(jobgh_t *j, const json_t *pr, const char *needed, const char *bot, int *untrusted, char *why,
                     size_t why_len);

/* .github/patchbay.yml from the default branch into *rc (freed and refilled;
 * the defaults when there is none). GHAPI_OK; a negative GHAPI_ERR_* when
 * GitHub failed; 1 when the file is invalid, with "line N: key 'x': why" in
 * err. */
int jobgh_repo_config(jobgh_t *j, repoconfig_t *rc, char *err, size_t err_len);

/* Whether this is the first time `what` happens on this issue or pull
 * request, remembered in Redis for the retention period: for notes a person
 * should read once, not on every push. 1 also when Redis cannot say (twice
 * is better than never). */
int jobgh_once(jobgh_t *j, const char *what);

/* A reaction on the comment that asked (comment_id and comment_type from the
 * record), else on the issue itself. Best effort: logged when it fails. */
void jobgh_react(jobgh_t *j, const char *content);

/* Whether the job must stop (cancelled, or its worker is stopping). */
int jobgh_stopping(job_ctx_t *ctx);

/* The job's own host user for its sandboxed commands (sandbox_user.h), from
 * the operator's sandbox.user_base and .users; uid 0 when patchbay is not
 * root. 0, or -1 with the reason in err (every user taken). */
int jobgh_user_acquire(job_ctx_t *ctx, sandbox_user_t *u, char *err, size_t err_len);

/* Gives a work tree (all but what it shares with the mirror) and its scratch
 * directory to the job's user. 0, or -1 with the reason in err. */
int jobgh_user_give(const sandbox_user_t *u, const char *work_tree, const char *scratch, char *err, size_t err_len);

/* The environment the job's commands run in: the repository's choice
 * (`environment:` in its .github/patchbay.yml), else the operator's
 * default_environment. With one, its image is fetched and unpacked
 * (imagestore.h) into *img, s runs in its root, and the record names it.
 * 0 when there is none (img untouched: the host's /usr) or it is ready;
 * -1 with a reason a person can act on in err: a name the operator does not
 * have (the ones it has are listed), a registry image the operator does not
 * allow, or skopeo's or umoci's own words when the image cannot be had.
 * *name (borrowed) is what the repository or operator wrote, or NULL. */
int jobgh_environment(job_ctx_t *ctx, const repoconfig_t *rc, image_t *img, agent_settings_t *s, const char **name,
                      char *err, size_t err_len);

/* Says in the job's log, at warn level, when its commands will run without a
 * sandbox (the operator's agent.isolation: none): every job's log shows it. */
void jobgh_note_isolation(job_ctx_t *ctx, const agent_settings_t *s);

/* The hooks an agent, a setup or a test command runs with: the job's stop
 * flag and its process-group registry, both safe from any thread (best of N
 * runs attempts on threads of their own). */
agent_hooks_t jobgh_hooks(job_ctx_t *ctx);

/* Removes the work tree workspaces/<tree_id>/ and frees ws (NULL: nothing
 * to do); a failure is logged, not returned: the job's outcome stands. */
void jobgh_drop_tree(job_ctx_t *ctx, const workspace_config_t *wcfg, const char *tree_id, workspace_t *ws);

#endif
