/*
 * fixjob — see fixjob.h. One fix_t carries a job through its steps; each
 * step is a function that returns a job_result_t and, on failure, leaves the
 * reason (for the job record) and the words for the issue (for the person).
 */
#include "fixjob.h"
#include "attempt.h"
#include "jobgh.h"
#include "progress.h"
#include "progressgh.h"
#include "prompt.h"
#include "repoinstr.h"
#include "app/common/clock.h"
#include "app/common/fileio.h"
#include "app/common/log.h"
#include "app/common/redact.h"
#include "app/common/strbuf.h"
#include "app/github/ghapi.h"
#include "app/github/ghmd.h"
#include "jobs/agent/agent.h"
#include "jobs/agent/agent_summary.h"
#include "jobs/queue/queue.h"
#include "jobs/review/review_body.h"
#include "jobs/workspace/repoconfig.h"
#include "jobs/workspace/workspace.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

typedef struct {
    job_ctx_t *ctx;
    const config_t *cfg;
    const char *id, *repo, *kind, *sender, *instruction, *comment_type, *label, *head_ref, *path;
    int64_t number, comment_id, installation, line;
    int is_pr, followup;
    jobgh_t j;
    ghapi_t *gh;      /* j.gh */
    ghapi_repo_t r;   /* j.r */
    progress_t progress;
    int64_t progress_comment_id;
    int progress_made_on_retry; /* a killed run's comment may still land: look once more at the end */
    progressgh_t *pg;         /* edits the progress comment when a person would notice; NULL: inline */
    size_t s_prepare, s_checkout, s_env, s_setup, s_agent, s_tests, s_push, s_pr;
    image_t image;           /* the job's environment, when it has one (jobgh_environment) */
    const char *env_name;
    repoconfig_t rc;
    json_t *issue, *comments;
    char *token;
    workspace_config_t wcfg;
    workspace_t *ws;
    char scratch[4096];
    sandbox_user_t user;     /* the job's own host user for its sandboxed commands (as root) */
    char branch[160];
    char bot_name[160], bot_email[200];
    strbuf_t tests_md;  /* one line per test round, for the pull request */
    int tests_ran, tests_passed;
    agent_settings_t agent;
    agent_result_t result;   /* the chosen attempt's */
    char change[WORKSPACE_OID_HEX]; /* the chosen attempt's tree to commit; "": its work tree as it is */
    int attempts;            /* best of N: parallel attempts on parallel work trees */
    workspace_t *spare[FIXJOB_ATTEMPTS_MAX]; /* the other attempts' work trees, removed at the end */
    char spare_ids[FIXJOB_ATTEMPTS_MAX][96];
    size_t nspare;
    strbuf_t attempts_md;    /* best of N: how each attempt did, for the pull request */
    char *instruction_buf;   /* the instruction without "--attempts N" */
    char ws_id[96];          /* the name of ws's directory under workspaces/: the job id, or a chosen attempt's */
    int64_t started_ms;
    char pr_url[512];
    int64_t pr_number;
    repoinstr_t instr;       /* the repository's instructions, for the built-in agent */
    char *err;          /* the caller's buffer: the job's error */
    size_t err_len;
} fix_t;

/* ---- small things ---- */

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- the progress comment ---- */

static void progress_push(fix_t *f, int final)
{
    if (f->progress_comment_id == 0)
        return;
    strbuf_t body = STRBUF_INIT, same = STRBUF_INIT;
    progress_render(&body, &f->progress, clock_wall_ms());
    /* the checklist without its running clock: tells an edit from none */
    progress_render(&same, &f->progress, f->progress.started_ms);
    int rc = GHAPI_OK;
    if (f->pg != NULL && !final)
        progressgh_update(f->pg, body.data, same.data);
    else if (f->pg != NULL)
        rc = progressgh_finish(f->pg, f->gh, body.data, same.data);
    else /* intermediate edits give way to the budget; the last one does not */
        rc = ghapi_comment_update(NULL, f->gh, &f->r, f->progress_comment_id, body.data,
                                  final ? 0 : GHAPI_CALL_LOW_PRIORITY);
    if (rc != GHAPI_OK && rc != GHAPI_ERR_DEFERRED)
        job_ctx_log(f->ctx, LOG_WARN, "progress comment not updated: %s", ghapi_error(f->gh));
    strbuf_free(&body);
    strbuf_free(&same);
}

/* From now on the comment is edited by its own thread, at most every few seconds. */
static void progress_edit_by_thread(fix_t *f, const char *shown)
{
    f->pg = progressgh_open(f->j.app, &f->r, f->progress_comment_id, shown, PROGRESSGH_INTERVAL_MS,
                            jobgh_str(f->ctx, JOB_F_DELIVERY), f->id);
}

static void step_start(fix_t *f, size_t step)
{
    progress_start(&f->progress, step, clock_wall_ms());
    job_ctx_log(f->ctx, LOG_INFO, "%s", f->progress.steps[step].label);
    progress_push(f, 0);
}

static void step_done(fix_t *f, size_t step, progress_state_t state, const char *detail)
{
    progress_finish(&f->progress, step, state, clock_wall_ms());
    if (detail)
        progress_detail(&f->progress, step, detail);
}

/* Finds the comment a crashed earlier run of this job made, by its marker;
 * with `keep`, deletes every one of them but that one instead. */
static int64_t find_progress_comment(fix_t *f, int64_t keep)
{
    json_t *all = NULL;
    if (ghapi_issue_comments(&all, f->gh, &f->r, f->number, 0) != GHAPI_OK)
        return 0;
    int64_t found = 0;
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c)
    {
        char id[32];
        const char *body = json_string_value(json_object_get(c, "body"));
        if (progress_marker_find(body, id, sizeof(id)) != 0 || strcmp(id, f->id) != 0)
            continue;
        int64_t cid = json_integer_value(json_object_get(c, "id"));
        if (keep == 0)
            found = cid;
        else if (cid != keep && ghapi_comment_delete(f->gh, &f->r, cid) == GHAPI_OK)
            job_ctx_log(f->ctx, LOG_INFO, "deleted progress comment %" PRId64 ", which a killed run of this job made late",
                        cid);
    }
    json_decref(all);
    return found;
}

static int open_progress(fix_t *f)
{
    f->progress_comment_id = jobgh_int(f->ctx, JOB_F_PROGRESS_COMMENT_ID);
    /* only a run after the first can have made one that the record missed */
    if (f->progress_comment_id == 0 && jobgh_int(f->ctx, "run") > 1)
        f->progress_comment_id = find_progress_comment(f, 0);
    if (f->progress_comment_id != 0) {
        progress_edit_by_thread(f, "");
        progress_push(f, 0);
        return GHAPI_OK;
    }
    strbuf_t body = STRBUF_INIT, same = STRBUF_INIT;
    progress_render(&body, &f->progress, clock_wall_ms());
    progress_render(&same, &f->progress, f->progress.started_ms);
    json_t *c = NULL;
    int rc = ghapi_comment_create(&c, f->gh, &f->r, f->number, body.data);
    if (rc == GHAPI_OK) {
        f->progress_comment_id = json_integer_value(json_object_get(c, "id"));
        jobgh_set_int(f->ctx, JOB_F_PROGRESS_COMMENT_ID, f->progress_comment_id);
        /* the run before was killed, perhaps while GitHub was still making
         * its comment: the request can land after the look above */
        f->progress_made_on_retry = jobgh_int(f->ctx, "run") > 1;
        progress_edit_by_thread(f, same.data);
    }
    strbuf_free(&body);
    strbuf_free(&same);
    json_decref(c);
    return rc;
}

/* ---- reactions and labels (best effort: they decorate, they decide nothing) ---- */

static void react(fix_t *f, const char *content)
{
    jobgh_react(&f->j, content);
}

/* ---- the end ---- */

/* The person-facing end: the outcome in the progress comment, the reaction,
 * the label taken off. Returns `result` so callers can `return finish(...)`. */
static job_result_t finish(fix_t *f, progress_outcome_t outcome, job_result_t result, const char *markdown)
{
    progress_outcome(&f->progress, outcome, markdown);
    for (size_t i = 0; i < f->progress.nsteps; i++)
        if (f->progress.steps[i].state == PROGRESS_RUNNING)
            progress_finish(&f->progress, i, outcome == PROGRESS_SUCCEEDED ? PROGRESS_DONE : PROGRESS_FAILED,
                            clock_wall_ms());
    progress_push(f, 1);
    if (f->progress_made_on_retry) {
        f->progress_made_on_retry = 0;
        find_progress_comment(f, f->progress_comment_id);
    }
    /* a retry will come back: no final reaction yet */
    if (result != JOB_ERR_RETRY)
        react(f, result == JOB_OK ? "rocket" : "confused");
    if (f->label != NULL && result != JOB_ERR_RETRY &&
        ghapi_label_remove(f->gh, &f->r, f->number, FIXJOB_WORKING_LABEL) == GHAPI_ERR_RETRYABLE)
        job_ctx_log(f->ctx, LOG_WARN, "label %s not removed: %s", FIXJOB_WORKING_LABEL, ghapi_error(f->gh));
    return result;
}

/* A failure: the job's error (one line, err) and what the issue reads. */
static job_result_t fail(fix_t *f, job_result_t result, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static job_result_t fail(fix_t *f, job_result_t result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err, f->err_len, fmt, ap);
    va_end(ap);
    job_ctx_log(f->ctx, LOG_WARN, "%s", f->err);
    strbuf_t md = STRBUF_INIT;
    if (result == JOB_ERR_RETRY)
        strbuf_append(&md, "Something went wrong on the way; patchbay will try again shortly.\n\n> ");
    else
        strbuf_append(&md, "> ");
    ghmd_sanitize(&md, f->err, strlen(f->err));
    job_result_t r = finish(f, result == JOB_ERR_RETRY ? PROGRESS_WORKING : PROGRESS_FAILED_OUTCOME, result, md.data);
    strbuf_free(&md);
    return r;
}

/* The job was stopped: cancelled by a person, or handed back by the worker. */
static job_result_t stopped(fix_t *f)
{
    job_stop_t why = job_ctx_stop_reason(f->ctx);
    if (why == JOB_STOP_CANCEL) {
        snprintf(f->err, f->err_len, "stopped on request");
        return finish(f, PROGRESS_CANCELLED, JOB_ERR_PERMANENT, "Stopped on request. Nothing was pushed.");
    }
    snprintf(f->err, f->err_len, "interrupted (%s)", job_stop_name(why));
    return JOB_ERR_RETRY;
}

/* ---- the steps ---- */

static job_result_t check_permission(fix_t *f)
{
    char *perm = NULL;
    int rc = jobgh_permission(&f->j, f->sender, f->cfg->triggers.permission, &perm);
    if (rc < 0)
        return fail(f, jobgh_result(rc), "could not check @%s's permission: %s", f->sender, ghapi_error(f->gh));
    if (rc == 0) {
        snprintf(f->err, f->err_len, "refused: %s has %s permission on %s, %s is needed", f->sender, perm, f->repo,
                 f->cfg->triggers.permission);
        strbuf_t md = STRBUF_INIT;
        strbuf_appendf(&md,
                       "Sorry, I only take work from people with %s access to this repository, and GitHub says "
                       "your access is **%s**. A maintainer can ask me instead.",
                       f->cfg->triggers.permission, perm);
        free(perm);
        job_result_t r = finish(f, PROGRESS_FAILED_OUTCOME, JOB_ERR_PERMANENT, md.data);
        strbuf_free(&md);
        return r;
    }
    free(perm);
    return JOB_OK;
}

static job_result_t read_settings(fix_t *f)
{
    char err[REPOCONFIG_ERR_BYTES];
    int rc = jobgh_repo_config(&f->j, &f->rc, err, sizeof(err));
    if (rc < 0)
        return fail(f, jobgh_result(rc), "could not read %s: %s", REPOCONFIG_PATH, ghapi_error(f->gh));
    if (rc == 1) {
        snprintf(f->err, f->err_len, "%s: %s", REPOCONFIG_PATH, err);
        strbuf_t md = STRBUF_INIT;
        strbuf_appendf(&md, "`%s` on the default branch has a problem, so I did not start:\n\n> ", REPOCONFIG_PATH);
        ghmd_sanitize(&md, err, strlen(err));
        job_result_t r = finish(f, PROGRESS_FAILED_OUTCOME, JOB_ERR_PERMANENT, md.data);
        strbuf_free(&md);
        return r;
    }
    return JOB_OK;
}

/* The issue as the webhook showed it, and its conversation when the webhook
 * held all of it (no comment before the one that asked): the router kept
 * them in the record, so these reads cost no call. A record without them (a
 * job queued before they were kept) reads GitHub. */
static int issue_from_record(fix_t *f)
{
    const char *title = jobgh_str(f->ctx, JOB_F_TITLE), *body = jobgh_str(f->ctx, JOB_F_ISSUE_BODY);
    if (title == NULL || body == NULL)
        return 0;
    f->issue = json_pack("{s:s, s:s, s:I}", "title", title, "body", body, "number", (json_int_t)f->number);
    if (f->issue == NULL)
        return 0;
    const char *comments = jobgh_str(f->ctx, JOB_F_ISSUE_COMMENTS), *comment = jobgh_str(f->ctx, JOB_F_COMMENT_BODY);
    if (comments != NULL && strcmp(comments, "0") == 0 && jobgh_int(f->ctx, "run") <= 1 &&
        (comment != NULL || f->label != NULL)) {
        f->comments = json_array();
        if (comment != NULL)
            json_array_append_new(f->comments, json_pack("{s:{s:s}, s:s}", "user", "login", f->sender, "body", comment));
    }
    return 1;
}

static job_result_t read_issue(fix_t *f)
{
    int rc = GHAPI_OK;
    if (!issue_from_record(f))
        rc = ghapi_issue_get(&f->issue, f->gh, &f->r, f->number);
    if (rc == GHAPI_OK && f->comments == NULL)
        rc = ghapi_issue_comments(&f->comments, f->gh, &f->r, f->number, FIXJOB_COMMENTS_MAX);
    if (rc != GHAPI_OK)
        return fail(f, jobgh_result(rc), "could not read #%" PRId64 ": %s", f->number, ghapi_error(f->gh));
    return JOB_OK;
}

static job_result_t get_token_and_identity(fix_t *f)
{
    int rc = ghapi_installation_token(&f->token, NULL, f->gh, f->installation, f->repo);
    if (rc != GHAPI_OK)
        return fail(f, jobgh_result(rc), "no installation token for %s: %s", f->repo, ghapi_error(f->gh));
    char *name = NULL, *email = NULL;
    rc = ghapi_bot_identity(&name, &email, f->gh, &f->r, f->cfg->bot.handle);
    if (rc != GHAPI_OK)
        return fail(f, jobgh_result(rc), "could not look up the bot user %s[bot]: %s", f->cfg->bot.handle,
                    ghapi_error(f->gh));
    snprintf(f->bot_name, sizeof(f->bot_name), "%s", name);
    snprintf(f->bot_email, sizeof(f->bot_email), "%s", email);
    free(name);
    free(email);
    return JOB_OK;
}

/* A work tree for the job's branch, and its scratch directory. */
static job_result_t prepare_tree(fix_t *f, const char *tree_id, workspace_t **ws, char *scratch, size_t scratch_len)
{
    char err[WORKSPACE_ERR_BYTES];
    workspace_spec_t spec = {.repo = f->repo,
                             .token = f->token,
                             .job_id = tree_id,
                             .branch = f->branch,
                             .resume = f->followup || job_ctx_attempt(f->ctx) > 1,
                             .user_name = f->bot_name,
                             .user_email = f->bot_email};
    int rc = workspace_prepare(ws, &f->wcfg, &spec, err, sizeof(err));
    if (rc != WORKSPACE_OK)
        return fail(f, rc == WORKSPACE_ERETRY || rc == WORKSPACE_ECONFLICT ? JOB_ERR_RETRY : JOB_ERR_PERMANENT,
                    "could not check out %s: %s", f->repo, err);
    snprintf(scratch, scratch_len, "%s/scratch", (*ws)->dir);
    if (mkdir(scratch, 0700) != 0 && errno != EEXIST)
        return fail(f, JOB_ERR_RETRY, "cannot create %s: %s", scratch, strerror(errno));
    if (f->user.lock_fd < 0 && jobgh_user_acquire(f->ctx, &f->user, err, sizeof(err)) != 0)
        return fail(f, JOB_ERR_RETRY, "no sandbox user: %s", err);
    if (jobgh_user_give(&f->user, (*ws)->path, scratch, err, sizeof(err)) != 0)
        return fail(f, JOB_ERR_RETRY, "%s", err);
    return JOB_OK;
}

static job_result_t checkout(fix_t *f)
{
    if (f->followup) {
        /* patchbay's own branch, as the pull request has it now */
        if (f->head_ref == NULL) {
            json_t *pr = NULL;
            int rc = ghapi_pull_get(&pr, f->gh, &f->r, f->number);
            if (rc != GHAPI_OK)
                return fail(f, jobgh_result(rc), "could not read pull request #%" PRId64 ": %s", f->number,
                            ghapi_error(f->gh));
            snprintf(f->branch, sizeof(f->branch), "%s",
                     or_empty(json_string_value(json_object_get(json_object_get(pr, "head"), "ref"))));
            json_decref(pr);
        } else {
            snprintf(f->branch, sizeof(f->branch), "%s", f->head_ref);
        }
        if (strncmp(f->branch, f->rc.branch_prefix, strlen(f->rc.branch_prefix)) != 0 &&
            strncmp(f->branch, WORKSPACE_BRANCH_PREFIX, strlen(WORKSPACE_BRANCH_PREFIX)) != 0)
            return fail(f, JOB_ERR_PERMANENT, "pull request #%" PRId64 "'s branch %s is not one of patchbay's",
                        f->number, f->branch);
    } else {
        const char *title = json_string_value(json_object_get(f->issue, "title"));
        char name[160];
        workspace_branch_name(name, sizeof(name), (long long)f->number, title ? title : "");
        snprintf(f->branch, sizeof(f->branch), "%s%s", f->rc.branch_prefix, name + strlen(WORKSPACE_BRANCH_PREFIX));
    }
    snprintf(f->ws_id, sizeof(f->ws_id), "%s", f->id);
    job_result_t r = prepare_tree(f, f->id, &f->ws, f->scratch, sizeof(f->scratch));
    if (r != JOB_OK)
        return r;
    char detail[256];
    snprintf(detail, sizeof(detail), "%s from %s", f->branch, f->ws->base_ref);
    step_done(f, f->s_checkout, PROGRESS_DONE, detail);
    return JOB_OK;
}

/* How many attempts: the server's, the repository's, or "--attempts N" in
 * the request (taken out of the instruction the agent reads). */
static void choose_attempts(fix_t *f)
{
    long n = f->rc.agent.attempts > 0 ? f->rc.agent.attempts : f->cfg->agent.attempts;
    const char *in = f->instruction;
    const char *at = in ? strstr(in, "--attempts") : NULL;
    if (at != NULL && (at == in || isspace((unsigned char)at[-1]))) {
        const char *p = at + strlen("--attempts");
        if (*p == '=' || *p == ' ')
            p++;
        char *end = NULL;
        long asked = strtol(p, &end, 10);
        if (end != p && (*end == '\0' || isspace((unsigned char)*end))) {
            n = asked;
            strbuf_t b = STRBUF_INIT;
            size_t keep = (size_t)(at - in);
            if (keep > 0 && isspace((unsigned char)in[keep - 1]) && isspace((unsigned char)*end))
                keep--; /* one space where the flag was */
            strbuf_appendn(&b, in, keep);
            strbuf_append(&b, end);
            f->instruction_buf = strbuf_detach(&b, NULL);
            f->instruction = f->instruction_buf;
        }
    }
    if (n < 1 || f->followup)
        n = 1;
    if (n > FIXJOB_ATTEMPTS_MAX)
        n = FIXJOB_ATTEMPTS_MAX;
    f->attempts = (int)n;
}

/* ---- attempts: one inline, or best of N on threads ---- */

/* Progress of the one inline attempt (the handler's thread). */
static void on_event(void *arg, attempt_event_t ev, const char *detail)
{
    fix_t *f = arg;
    switch (ev) {
    case ATTEMPT_EV_SETUP: step_start(f, f->s_setup); break;
    case ATTEMPT_EV_AGENT:
        step_done(f, f->s_setup, f->progress.steps[f->s_setup].state == PROGRESS_RUNNING ? PROGRESS_DONE : PROGRESS_SKIPPED,
                  NULL);
        step_start(f, f->s_agent);
        break;
    case ATTEMPT_EV_AGENT_DONE: step_done(f, f->s_agent, PROGRESS_DONE, detail); break;
    case ATTEMPT_EV_TESTS: step_start(f, f->s_tests); break;
    case ATTEMPT_EV_ROUND:
        progress_detail(&f->progress, f->s_tests, detail);
        progress_push(f, 0);
        break;
    }
}

static void attempt_init(fix_t *f, attempt_t *a, const workspace_t *ws, const char *scratch, const char *task, size_t len)
{
    memset(a, 0, sizeof(*a));
    a->agent = &f->agent;
    a->ws = ws;
    a->workdir = ws->path;
    a->scratch = scratch;
    a->setup = f->rc.setup;
    a->test = f->rc.test;
    a->rounds = f->rc.agent.test_rounds >= 0 ? f->rc.agent.test_rounds : f->cfg->agent.test_rounds;
    a->task = task;
    a->task_len = len;
    a->hooks = jobgh_hooks(f->ctx);
}

/* The attempt's log lines into the job's log (the handler's thread). */
static void write_log(fix_t *f, const attempt_t *a, const char *prefix)
{
    const char *s = a->log.data;
    while (s != NULL && *s != '\0') {
        const char *nl = strchr(s, '\n');
        int n = nl ? (int)(nl - s) : (int)strlen(s);
        job_ctx_log(f->ctx, LOG_INFO, "%s%.*s", prefix, n, s);
        s = nl ? nl + 1 : NULL;
    }
}

/* The chosen attempt's results become the job's. */
static void take(fix_t *f, attempt_t *a)
{
    agent_result_free(&f->result);
    f->result = a->result;
    memset(&a->result, 0, sizeof(a->result));
    snprintf(f->change, sizeof(f->change), "%s", a->change);
    strbuf_free(&f->tests_md);
    f->tests_md = a->tests_md;
    strbuf_t empty = STRBUF_INIT;
    a->tests_md = empty;
    f->tests_ran = a->tests_ran;
    f->tests_passed = a->tests_passed;
    if (f->rc.test == NULL) {
        step_done(f, f->s_tests, PROGRESS_SKIPPED, "no test command in .github/patchbay.yml");
    } else {
        char detail[96];
        snprintf(detail, sizeof(detail), "%s after %d round%s", f->tests_passed ? "passed" : "failed", f->tests_ran,
                 f->tests_ran == 1 ? "" : "s");
        step_done(f, f->s_tests, f->tests_passed ? PROGRESS_DONE : PROGRESS_FAILED, detail);
    }
}

/* An attempt that did not get to a change: the job's end. */
static job_result_t attempt_failed(fix_t *f, const attempt_t *a)
{
    if (a->end == ATTEMPT_STOPPED)
        return stopped(f);
    snprintf(f->err, f->err_len, "%s", a->why);
    job_ctx_log(f->ctx, LOG_WARN, "%s", a->why);
    return finish(f, PROGRESS_FAILED_OUTCOME, JOB_ERR_PERMANENT, a->failure_md.data ? a->failure_md.data : a->why);
}

/* The agent's words lose the values of its own keys before anyone reads them. */
static void redact_attempt(attempt_t *a)
{
    redact_set_t set;
    agent_secrets(&set, a->agent);
    if (set.count == 0)
        return;
    char *r = redact_values(a->result.summary, &set);
    free(a->result.summary);
    a->result.summary = r;
    r = redact_values(a->result.output_tail, &set);
    free(a->result.output_tail);
    a->result.output_tail = r;
    if (a->failure_md.data != NULL) {
        r = redact_values(a->failure_md.data, &set);
        strbuf_free(&a->failure_md);
        strbuf_append(&a->failure_md, r ? r : "");
        free(r);
    }
}

static job_result_t one_attempt(fix_t *f, const char *task, size_t len)
{
    attempt_t a;
    attempt_init(f, &a, f->ws, f->scratch, task, len);
    a.event = on_event;
    a.event_arg = f;
    attempt_run(&a);
    redact_attempt(&a);
    write_log(f, &a, "");
    job_result_t r = a.end == ATTEMPT_DONE ? JOB_OK : attempt_failed(f, &a);
    if (r == JOB_OK)
        take(f, &a);
    attempt_free(&a);
    return r;
}

static void *attempt_thread(void *arg)
{
    attempt_run(arg);
    return NULL;
}

typedef struct {
    size_t files, lines, forbidden;
    int ok;   /* finished with a change and nothing forbidden */
} change_t;

static void describe_attempts(fix_t *f, const attempt_t *as, const change_t *ch, int n, int chosen)
{
    strbuf_appendf(&f->attempts_md, "### Best of %d\n\n| Attempt | Agent | Tests | Change |\n| --- | --- | --- | --- |\n",
                   n);
    for (int k = 0; k < n; k++) {
        const attempt_t *a = &as[k];
        strbuf_appendf(&f->attempts_md, "| %d%s | ", k + 1, k == chosen ? " (chosen)" : "");
        if (a->agent->backend != NULL && strcmp(a->agent->backend, "openai") == 0)
            ghmd_code_span(&f->attempts_md, a->agent->openai.model, 1);
        else if (a->agent->command != NULL && a->agent->command[0] != NULL)
            ghmd_code_span(&f->attempts_md, a->agent->command[0], 1);
        strbuf_append(&f->attempts_md, ": ");
        if (a->end == ATTEMPT_DONE)
            strbuf_append(&f->attempts_md, "finished");
        else
            ghmd_code_span(&f->attempts_md, a->why, 1);
        if (a->end != ATTEMPT_DONE || f->rc.test == NULL)
            strbuf_append(&f->attempts_md, " | — | ");
        else
            strbuf_appendf(&f->attempts_md, " | %s after %d round%s | ", a->tests_passed ? "passed" : "failed",
                           a->tests_ran, a->tests_ran == 1 ? "" : "s");
        if (a->end != ATTEMPT_DONE)
            strbuf_append(&f->attempts_md, "— |\n");
        else if (ch[k].files == 0)
            strbuf_append(&f->attempts_md, "none |\n");
        else
            strbuf_appendf(&f->attempts_md, "%zu file%s, %zu line%s%s |\n", ch[k].files, ch[k].files == 1 ? "" : "s",
                           ch[k].lines, ch[k].lines == 1 ? "" : "s", ch[k].forbidden ? ", touches a forbidden path" : "");
    }
    strbuf_append(&f->attempts_md, "\n");
}

/* Whether attempt x beats y: a usable change, then passing tests, then the smaller change. */
static int better(const fix_t *f, const attempt_t *as, const change_t *ch, int x, int y)
{
    if (ch[x].ok != ch[y].ok)
        return ch[x].ok;
    int px = f->rc.test == NULL || as[x].tests_passed, py = f->rc.test == NULL || as[y].tests_passed;
    if (px != py)
        return px;
    return ch[x].lines < ch[y].lines;
}

static job_result_t best_of(fix_t *f, const char *task, size_t len)
{
    int n = f->attempts;
    attempt_t as[FIXJOB_ATTEMPTS_MAX];
    change_t ch[FIXJOB_ATTEMPTS_MAX];
    workspace_t *ws[FIXJOB_ATTEMPTS_MAX] = {f->ws};
    char scratch[FIXJOB_ATTEMPTS_MAX][4096];
    snprintf(scratch[0], sizeof(scratch[0]), "%s", f->scratch);
    for (int k = 1; k < n; k++) {
        char *id = f->spare_ids[f->nspare];
        snprintf(id, sizeof(f->spare_ids[0]), "%s-a%d", f->id, k + 1);
        job_result_t r = prepare_tree(f, id, &ws[k], scratch[k], sizeof(scratch[k]));
        if (r != JOB_OK)
            return r; /* the trees made so far are in spare: removed at the end */
        f->spare[f->nspare++] = ws[k];
    }
    step_done(f, f->s_setup, f->rc.nsetup > 0 ? PROGRESS_DONE : PROGRESS_SKIPPED,
              f->rc.nsetup > 0 ? "in each attempt" : NULL);
    step_start(f, f->s_agent);
    char detail[64];
    snprintf(detail, sizeof(detail), "%d attempts at once", n);
    progress_detail(&f->progress, f->s_agent, detail);
    progress_push(f, 0);
    job_ctx_log(f->ctx, LOG_INFO, "best of %d: %d attempts at once", n, n);

    /* with agent.backends and agent.openai.models, attempts take turns with them */
    agent_settings_t settings[FIXJOB_ATTEMPTS_MAX];
    const config_list_t *models = &f->cfg->agent.openai.models, *backends = &f->cfg->agent.backends;
    pthread_t threads[FIXJOB_ATTEMPTS_MAX];
    int started[FIXJOB_ATTEMPTS_MAX] = {0};
    for (int k = 0; k < n; k++) {
        attempt_init(f, &as[k], ws[k], scratch[k], task, len);
        settings[k] = f->agent;
        if (backends->count > 0)
            settings[k].backend = backends->items[(size_t)k % backends->count];
        int own = settings[k].backend != NULL && strcmp(settings[k].backend, "openai") == 0;
        if (own && models->count > 0)
            settings[k].openai.model = models->items[(size_t)k % models->count];
        as[k].agent = &settings[k];
        started[k] = pthread_create(&threads[k], NULL, attempt_thread, &as[k]) == 0;
        if (!started[k])
            attempt_run(&as[k]); /* no thread to be had: this one runs here */
    }
    for (int k = 0; k < n; k++)
        if (started[k])
            pthread_join(threads[k], NULL);

    int winner = -1, any_done = 0, any_stopped = 0;
    for (int k = 0; k < n; k++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "attempt %d: ", k + 1);
        redact_attempt(&as[k]);
        write_log(f, &as[k], prefix);
        memset(&ch[k], 0, sizeof(ch[k]));
        any_stopped |= as[k].end == ATTEMPT_STOPPED;
        if (as[k].end != ATTEMPT_DONE)
            continue;
        any_done = 1;
        workspace_changes_t c;
        char err[WORKSPACE_ERR_BYTES];
        /* the agent's change only: what setup and the tests left does not count */
        if (workspace_changes(&c, ws[k], as[k].change[0] ? as[k].change : NULL, err, sizeof(err)) == WORKSPACE_OK) {
            ch[k].files = c.count;
            ch[k].lines = c.additions + c.deletions;
            ch[k].forbidden = workspace_forbidden(&c, (const char *const *)f->rc.forbidden, f->rc.nforbidden);
            ch[k].ok = c.count > 0 && ch[k].forbidden == 0;
            workspace_changes_free(&c);
        }
        if (winner < 0 || better(f, as, ch, k, winner))
            winner = k;
    }
    job_result_t r;
    if (any_stopped && (winner < 0 || jobgh_stopping(f->ctx))) {
        r = stopped(f);
    } else if (!any_done) {
        r = attempt_failed(f, &as[0]);
    } else {
        describe_attempts(f, as, ch, n, winner);
        job_ctx_log(f->ctx, LOG_INFO, "best of %d: attempt %d chosen", n, winner + 1);
        if (winner != 0) {
            /* the chosen tree becomes the job's; the main one joins the spares */
            for (size_t i = 0; i < f->nspare; i++)
                if (f->spare[i] == ws[winner]) {
                    char chosen[sizeof(f->ws_id)];
                    snprintf(chosen, sizeof(chosen), "%s", f->spare_ids[i]);
                    f->spare[i] = f->ws;
                    snprintf(f->spare_ids[i], sizeof(f->spare_ids[i]), "%s", f->ws_id);
                    snprintf(f->ws_id, sizeof(f->ws_id), "%s", chosen);
                }
            f->ws = ws[winner];
            snprintf(f->scratch, sizeof(f->scratch), "%s", scratch[winner]);
        }
        f->agent = settings[winner]; /* the pull request names the winner's agent */
        snprintf(detail, sizeof(detail), "attempt %d of %d chosen", winner + 1, n);
        step_done(f, f->s_agent, PROGRESS_DONE, detail);
        take(f, &as[winner]);
        r = JOB_OK;
    }
    for (int k = 0; k < n; k++)
        attempt_free(&as[k]);
    return r;
}

static job_result_t agent_and_tests(fix_t *f)
{
    prompt_comment_t *pc = calloc(json_array_size(f->comments) + 1, sizeof(*pc));
    if (pc == NULL)
        return fail(f, JOB_ERR_RETRY, "out of memory");
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(f->comments, i, c)
    {
        const char *body = json_string_value(json_object_get(c, "body"));
        char id[32];
        if (body == NULL || progress_marker_find(body, id, sizeof(id)) == 0)
            continue; /* patchbay's own progress comments tell the agent nothing */
        pc[n].author = json_string_value(json_object_get(json_object_get(c, "user"), "login"));
        pc[n].body = body;
        n++;
    }
    prompt_input_t in = {.kind = f->kind,
                         .instruction = f->instruction,
                         .repo = f->repo,
                         .number = f->number,
                         .is_pr = f->is_pr,
                         .title = json_string_value(json_object_get(f->issue, "title")),
                         .body = json_string_value(json_object_get(f->issue, "body")),
                         .comments = pc,
                         .ncomments = n,
                         .default_branch = f->ws->default_branch,
                         .branch = f->branch,
                         .test_command = f->rc.test,
                         .review_path = f->path,
                         .review_line = f->line,
                         .requester = f->sender};
    strbuf_t instructions = STRBUF_INIT;
    repoinstr_task(&instructions, &f->instr);
    in.instructions = instructions.data;
    strbuf_t task = STRBUF_INIT;
    prompt_build(&task, &in);
    strbuf_free(&instructions);
    free(pc);

    job_result_t r = f->attempts > 1 ? best_of(f, task.data, task.len) : one_attempt(f, task.data, task.len);
    strbuf_free(&task);
    return r;
}

/* The pull request's title and the commit's subject: the agent's, when a
 * line of its summary reads as one (agent_summary.h: never a banner, a log
 * line or an escape), else the issue's. */
static void title_from_summary(fix_t *f, char *out, size_t len)
{
    char picked[AGENT_TITLE_MAX_BYTES + 1];
    strbuf_t b;
    strbuf_init_fixed(&b, out, len);
    if (agent_summary_title(picked, sizeof(picked), f->result.summary) == 0) {
        ghmd_sanitize(&b, picked, strlen(picked));
    } else {
        const char *t = json_string_value(json_object_get(f->issue, "title"));
        strbuf_appendf(&b, "Fix #%" PRId64 ": %s", f->number, t ? t : "");
    }
}

/* The name of an agent key whose value a changed file holds (and the file), or NULL. */
static const char *find_secret(fix_t *f, const workspace_changes_t *ch, const char **path)
{
    redact_set_t set;
    agent_secrets(&set, &f->agent);
    for (size_t i = 0; set.count > 0 && i < ch->count; i++) {
        if (ch->items[i].status == 'D')
            continue;
        /* the file as it is pushed, not as the work tree has it now */
        size_t len = 0;
        char *text = NULL, err[WORKSPACE_ERR_BYTES];
        if (workspace_read(&text, &len, f->ws, f->change, ch->items[i].path, FIXJOB_SCAN_MAX_BYTES, err, sizeof(err)) !=
            WORKSPACE_OK)
            job_ctx_log(f->ctx, LOG_WARN, "secret scan: %s", err);
        const char *name = text ? redact_find(text, len, &set) : NULL;
        free(text);
        if (name != NULL) {
            *path = ch->items[i].path;
            return name;
        }
    }
    return NULL;
}

static job_result_t commit_and_push(fix_t *f)
{
    char err[WORKSPACE_ERR_BYTES];
    workspace_changes_t ch;
    /* one tree from here on: what is checked is what is committed */
    if (f->change[0] == '\0' && workspace_snapshot(f->change, f->ws, err, sizeof(err)) != WORKSPACE_OK)
        return fail(f, JOB_ERR_RETRY, "could not read the agent's changes: %s", err);
    if (workspace_changes(&ch, f->ws, f->change, err, sizeof(err)) != WORKSPACE_OK)
        return fail(f, JOB_ERR_RETRY, "could not read the agent's changes: %s", err);
    size_t bad = workspace_forbidden(&ch, (const char *const *)f->rc.forbidden, f->rc.nforbidden);
    /* a fix's branch on GitHub can only be an earlier attempt's, holding
     * the change already; a follow-up that changes nothing changed nothing */
    if (ch.count == 0 && (f->followup || f->ws->remote_oid[0] == '\0')) {
        workspace_changes_free(&ch);
        snprintf(f->err, f->err_len, "the agent made no change");
        strbuf_t md = STRBUF_INIT;
        strbuf_append(&md, "The agent finished without changing anything, so there is no pull request. It said:\n\n");
        const char *s = f->result.summary ? f->result.summary : "";
        ghmd_sanitize(&md, s, strlen(s));
        job_result_t r = finish(f, PROGRESS_NO_CHANGE, JOB_ERR_PERMANENT, md.data);
        strbuf_free(&md);
        return r;
    }
    if (bad > 0) {
        strbuf_t list = STRBUF_INIT;
        for (size_t i = 0; i < ch.count; i++)
            if (ch.items[i].forbidden)
                strbuf_appendf(&list, "- `%s` (forbidden by `%s`)\n", ch.items[i].path, ch.items[i].forbidden);
        workspace_changes_free(&ch);
        snprintf(f->err, f->err_len, "the agent changed %zu forbidden path%s", bad, bad == 1 ? "" : "s");
        strbuf_t md = STRBUF_INIT;
        strbuf_appendf(&md, "The agent changed paths this repository forbids (`forbidden_paths` in `%s`), so nothing "
                            "was pushed:\n\n%s",
                       REPOCONFIG_PATH, list.data ? list.data : "");
        job_result_t r = finish(f, PROGRESS_FAILED_OUTCOME, JOB_ERR_PERMANENT, md.data);
        strbuf_free(&md);
        strbuf_free(&list);
        return r;
    }
    const char *leaked_path = NULL, *leaked = find_secret(f, &ch, &leaked_path);
    if (leaked != NULL) {
        snprintf(f->err, f->err_len, "the agent's change contains the value of %s", leaked);
        strbuf_t md = STRBUF_INIT;
        strbuf_appendf(&md, "The agent's change writes the value of `%s`, the agent's own key, into ", leaked);
        ghmd_code_span(&md, leaked_path, 0);
        strbuf_append(&md, ", so nothing was pushed. Was the task asking for it? Read it before trying again.");
        workspace_changes_free(&ch);
        job_result_t r = finish(f, PROGRESS_FAILED_OUTCOME, JOB_ERR_PERMANENT, md.data);
        strbuf_free(&md);
        return r;
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "%zu file%s, +%zu -%zu", ch.count, ch.count == 1 ? "" : "s", ch.additions,
             ch.deletions);
    workspace_changes_free(&ch);

    step_start(f, f->s_push);
    char title[160];
    title_from_summary(f, title, sizeof(title));
    strbuf_t msg = STRBUF_INIT;
    strbuf_appendf(&msg, "%s\n\n", title);
    if (!f->followup && !f->is_pr)
        strbuf_appendf(&msg, "Fixes #%" PRId64 ".\n\n", f->number);
    strbuf_appendf(&msg, "patchbay job %s, requested by @%s.", f->id, f->sender);

    /* the requester as co-author, by the noreply address GitHub credits */
    char coname[160] = "", coemail[200] = "";
    int64_t sid = jobgh_int(f->ctx, JOB_F_SENDER_ID);
    workspace_person_t co = {NULL, NULL};
    if (sid > 0) {
        snprintf(coname, sizeof(coname), "%s", f->sender);
        snprintf(coemail, sizeof(coemail), "%" PRId64 "+%s@users.noreply.github.com", sid, f->sender);
        co.name = coname;
        co.email = coemail;
    }
    workspace_person_t bot = {f->bot_name, f->bot_email};
    char oid[WORKSPACE_OID_HEX];
    int rc = workspace_commit(oid, f->ws, f->change, &bot, msg.data, co.name ? &co : NULL, err, sizeof(err));
    strbuf_free(&msg);
    if (rc == WORKSPACE_ENOCHANGE) {
        /* a retry whose earlier run already pushed everything */
        snprintf(oid, sizeof(oid), "%s", f->ws->remote_oid);
    } else if (rc != WORKSPACE_OK) {
        return fail(f, JOB_ERR_RETRY, "could not commit: %s", err);
    }
    rc = workspace_push(&f->wcfg, f->ws, f->token, err, sizeof(err));
    if (rc != WORKSPACE_OK)
        return fail(f, rc == WORKSPACE_ERETRY ? JOB_ERR_RETRY : JOB_ERR_PERMANENT, "could not push %s: %s", f->branch, err);
    jobgh_set(f->ctx, JOB_F_PUSHED_SHA, oid);
    jobgh_set(f->ctx, JOB_F_BRANCH, f->branch);
    step_done(f, f->s_push, PROGRESS_DONE, detail);
    return JOB_OK;
}

/* The image the job's commands run in, when the repository or the operator
 * names one; the checklist shows the fetch. */
static job_result_t prepare_environment(fix_t *f)
{
    int shown = f->s_env != SIZE_MAX; /* a step only where there are environments to choose from */
    if (shown) {
        step_start(f, f->s_env);
        progress_push(f, 0);
    }
    char err[1024];
    if (jobgh_environment(f->ctx, &f->rc, &f->image, &f->agent, &f->env_name, err, sizeof(err)) != 0)
        return fail(f, JOB_ERR_PERMANENT, "%s", err);
    if (!shown)
        return JOB_OK;
    if (f->env_name == NULL) {
        step_done(f, f->s_env, PROGRESS_SKIPPED, "none named: the host's tools");
        return JOB_OK;
    }
    char detail[200];
    snprintf(detail, sizeof(detail), "%s, %.19s%s", f->env_name, f->image.digest,
             f->image.fetched ? " (fetched)" : "");
    step_done(f, f->s_env, PROGRESS_DONE, detail);
    return JOB_OK;
}

static void pr_body(fix_t *f, strbuf_t *b)
{
    const char *s = f->result.summary ? f->result.summary : "";
    ghmd_sanitize(b, s, strlen(s));
    strbuf_append(b, "\n\n");
    if (!f->is_pr)
        strbuf_appendf(b, "Fixes #%" PRId64 "\n\n", f->number);
    strbuf_append(b, "### Tests\n\n");
    if (f->rc.test == NULL)
        strbuf_appendf(b, "No test command is configured (`test:` in `%s`).\n\n", REPOCONFIG_PATH);
    else if (f->tests_md.data)
        strbuf_appendf(b, "%s\n%s\n\n", f->tests_md.data,
                       f->tests_passed ? "The tests pass." : "**The tests fail**: this pull request is a draft.");
    if (f->attempts_md.data)
        strbuf_append(b, f->attempts_md.data);
    char took[32];
    progress_format_duration(took, sizeof(took), clock_wall_ms() - f->started_ms);
    strbuf_appendf(b, "### How this was made\n\npatchbay job %s, requested by @%s. Agent: ", f->id, f->sender);
    if (f->agent.backend && strcmp(f->agent.backend, "openai") == 0) {
        strbuf_append(b, "patchbay's own, with the model ");
        ghmd_code_span(b, f->agent.openai.model, 0);
        strbuf_appendf(b, " (%s), %s.\n\n", f->result.usage, took);
    } else {
        strbuf_append(b, "`");
        for (size_t i = 0; f->agent.command && f->agent.command[i]; i++)
            strbuf_appendf(b, "%s%s", i ? " " : "", f->agent.command[i]);
        strbuf_appendf(b, "`%s, %s.\n\n", f->result.isolated ? " in bubblewrap" : "", took);
    }
    if (f->instr.family != NULL && f->agent.backend && strcmp(f->agent.backend, "openai") == 0) {
        strbuf_t used = STRBUF_INIT;
        repoinstr_used(&used, &f->instr, f->result.instructions_shown);
        if (used.len > 0)
            strbuf_appendf(b, "Repository instructions the agent followed: %s.\n\n", used.data);
        strbuf_free(&used);
    }
    if (f->env_name != NULL) {
        strbuf_append(b, "Environment: ");
        ghmd_code_span(b, f->env_name, 0);
        strbuf_append(b, ", image ");
        ghmd_code_span(b, f->image.digest, 0);
        strbuf_append(b, ".\n\n");
    }
    strbuf_appendf(b, "<!-- patchbay:job=%s -->\n", f->id);
}

static job_result_t open_pull_request(fix_t *f)
{
    step_start(f, f->s_pr);
    json_t *pr = NULL;
    /* a fix asks to create, and looks for the one an earlier run made only when
     * GitHub says it exists (422): no read on the way of every job */
    int rc = f->followup ? ghapi_pull_find_by_head(&pr, f->gh, &f->r, f->branch, "open") : GHAPI_ERR_NOT_FOUND;
    if (rc == GHAPI_ERR_NOT_FOUND && !f->followup) {
        char title[160];
        title_from_summary(f, title, sizeof(title));
        strbuf_t body = STRBUF_INIT;
        pr_body(f, &body);
        int draft = f->rc.draft || (f->rc.test != NULL && !f->tests_passed);
        rc = ghapi_pull_create(&pr, f->gh, &f->r, f->branch, f->ws->default_branch, title, body.data, draft);
        strbuf_free(&body);
        if (rc == GHAPI_ERR_VALIDATION) /* made between our look and our create */
            rc = ghapi_pull_find_by_head(&pr, f->gh, &f->r, f->branch, "open");
    }
    if (rc != GHAPI_OK)
        return fail(f, jobgh_result(rc), "could not open the pull request: %s", ghapi_error(f->gh));
    f->pr_number = json_integer_value(json_object_get(pr, "number"));
    snprintf(f->pr_url, sizeof(f->pr_url), "%s", or_empty(json_string_value(json_object_get(pr, "html_url"))));
    json_decref(pr);
    jobgh_set(f->ctx, JOB_F_PR_URL, f->pr_url);
    jobgh_set_int(f->ctx, JOB_F_PR_NUMBER, f->pr_number);
    char detail[64];
    snprintf(detail, sizeof(detail), "#%" PRId64, f->pr_number);
    step_done(f, f->s_pr, PROGRESS_DONE, detail);
    return JOB_OK;
}

static job_result_t succeed(fix_t *f)
{
    strbuf_t md = STRBUF_INIT;
    if (f->followup)
        strbuf_appendf(&md, "Pushed to %s: %s\n\n", f->branch, f->pr_url);
    else
        strbuf_appendf(&md, "Opened %s\n\n", f->pr_url);
    const char *s = f->result.summary ? f->result.summary : "";
    ghmd_sanitize(&md, s, strlen(s));
    if (f->rc.test != NULL && !f->tests_passed)
        strbuf_append(&md, "\n\n**The tests still fail** (see the pull request).");
    jobgh_set(f->ctx, JOB_F_OUTCOME, "pr");
    job_result_t r = finish(f, PROGRESS_SUCCEEDED, JOB_OK, md.data);
    if (f->followup && f->comment_type && strcmp(f->comment_type, "review_comment") == 0 &&
        ghapi_review_comment_reply(NULL, f->gh, &f->r, f->number, f->comment_id, md.data) != GHAPI_OK)
        job_ctx_log(f->ctx, LOG_WARN, "no reply in the review thread: %s", ghapi_error(f->gh));
    strbuf_free(&md);
    return r;
}

/* ---- answers ---- */

/* The agent changed nothing but said why (it wrote a summary): that is an
 * answer, not a failure and never an empty pull request. The issue reads it,
 * marked plainly, and the job ends well with outcome "answered". *done is 1
 * when that is how this job ends. A retry whose branch already holds an
 * earlier run's change goes on to push it instead. */
static job_result_t answer_if_unchanged(fix_t *f, int *done)
{
    *done = 0;
    if (!f->result.summary_written || (!f->followup && f->ws->remote_oid[0] != '\0'))
        return JOB_OK;
    char err[WORKSPACE_ERR_BYTES];
    workspace_changes_t ch;
    /* the agent's change alone: what setup: and test: wrote is no change */
    if (workspace_changes(&ch, f->ws, f->change, err, sizeof(err)) != WORKSPACE_OK)
        return JOB_OK; /* commit_and_push says it */
    size_t changed = ch.count;
    workspace_changes_free(&ch);
    if (changed > 0)
        return JOB_OK;
    *done = 1;
    job_ctx_log(f->ctx, LOG_INFO, "the agent made no change and answered instead");
    step_done(f, f->s_push, PROGRESS_SKIPPED, "nothing to commit");
    step_done(f, f->s_pr, PROGRESS_SKIPPED, NULL);
    strbuf_t md = STRBUF_INIT;
    strbuf_append(&md, "**No change was made**: the agent looked into it and answered instead.\n\n");
    ghmd_sanitize(&md, f->result.summary, strlen(f->result.summary));
    jobgh_set(f->ctx, JOB_F_OUTCOME, "answered");
    job_result_t r = finish(f, PROGRESS_ANSWERED, JOB_OK, md.data);
    if (f->followup && f->comment_type && strcmp(f->comment_type, "review_comment") == 0 &&
        ghapi_review_comment_reply(NULL, f->gh, &f->r, f->number, f->comment_id, md.data) != GHAPI_OK)
        job_ctx_log(f->ctx, LOG_WARN, "no reply in the review thread: %s", ghapi_error(f->gh));
    strbuf_free(&md);
    return r;
}

/* The repository's instructions, for the built-in agent (agent CLIs read
 * their own), from the commit the job works on. */
static void load_instructions(fix_t *f)
{
    int builtin = f->agent.backend != NULL && strcmp(f->agent.backend, "openai") == 0;
    for (size_t i = 0; i < f->cfg->agent.backends.count; i++)
        builtin |= strcmp(f->cfg->agent.backends.items[i], "openai") == 0;
    if (!builtin)
        return;
    char err[WORKSPACE_ERR_BYTES];
    if (repoinstr_load(&f->instr, f->ws, f->ws->base_oid, err, sizeof(err)) != 0)
        job_ctx_log(f->ctx, LOG_WARN, "no repository instructions: %s", err);
    else if (f->instr.family != NULL)
        job_ctx_log(f->ctx, LOG_INFO, "repository instructions: %s files", f->instr.family);
    repoinstr_give(&f->instr, &f->agent);
}

/* ---- the handler ---- */

static job_result_t run(fix_t *f)
{
    job_result_t r;
    if ((r = check_permission(f)) != JOB_OK)
        return r;
    if ((r = read_settings(f)) != JOB_OK || (r = read_issue(f)) != JOB_OK || (r = get_token_and_identity(f)) != JOB_OK)
        return r;
    step_done(f, f->s_prepare, PROGRESS_DONE, NULL);

    /* a retry after the pull request was made: only the words are left to say */
    const char *pr_url = jobgh_str(f->ctx, JOB_F_PR_URL);
    if (pr_url != NULL && !f->followup) {
        snprintf(f->pr_url, sizeof(f->pr_url), "%s", pr_url);
        f->result.summary = strdup("");
        return succeed(f);
    }

    step_start(f, f->s_checkout);
    if ((r = checkout(f)) != JOB_OK)
        return r;
    if (jobgh_stopping(f->ctx))
        return stopped(f);
    agent_settings_init(&f->agent, f->cfg, &f->rc, environ, f->id);
    f->agent.kind = f->kind;
    f->agent.uid = f->user.uid;
    f->agent.gid = f->user.gid;
    jobgh_note_isolation(f->ctx, &f->agent);
    if ((r = prepare_environment(f)) != JOB_OK)
        return r;
    load_instructions(f);
    choose_attempts(f);
    if ((r = agent_and_tests(f)) != JOB_OK)
        return r;
    if (jobgh_stopping(f->ctx))
        return stopped(f);
    int answered = 0;
    if ((r = answer_if_unchanged(f, &answered)) != JOB_OK || answered)
        return r;
    if ((r = commit_and_push(f)) != JOB_OK)
        return r;
    if ((r = open_pull_request(f)) != JOB_OK)
        return r;
    return succeed(f);
}

job_result_t fixjob_run(job_ctx_t *ctx, char *err, size_t err_len)
{
    fix_t f = {0};
    f.user = (sandbox_user_t)SANDBOX_USER_INIT;
    f.image = (image_t)IMAGE_INIT;
    f.ctx = ctx;
    f.cfg = job_ctx_config(ctx);
    f.err = err;
    f.err_len = err_len;
    f.id = job_ctx_id(ctx);
    f.repo = jobgh_str(ctx, JOB_F_REPO);
    f.kind = jobgh_str(ctx, JOB_F_KIND);
    f.sender = jobgh_str(ctx, JOB_F_SENDER);
    f.instruction = jobgh_str(ctx, JOB_F_INSTRUCTION);
    f.comment_type = jobgh_str(ctx, JOB_F_COMMENT_TYPE);
    f.label = jobgh_str(ctx, JOB_F_LABEL);
    f.head_ref = jobgh_str(ctx, JOB_F_HEAD_REF);
    f.path = jobgh_str(ctx, JOB_F_PATH);
    f.number = jobgh_int(ctx, JOB_F_NUMBER);
    f.comment_id = jobgh_int(ctx, JOB_F_COMMENT_ID);
    f.installation = jobgh_int(ctx, JOB_F_INSTALLATION);
    f.line = jobgh_int(ctx, JOB_F_LINE);
    const char *is_pr = jobgh_str(ctx, JOB_F_IS_PR);
    f.is_pr = is_pr && strcmp(is_pr, "1") == 0;
    f.followup = f.kind && strcmp(f.kind, "followup") == 0;
    f.started_ms = clock_wall_ms();
    if (f.sender == NULL) {
        snprintf(err, err_len, "the job record lacks its sender");
        return JOB_ERR_PERMANENT;
    }
    if (jobgh_open(&f.j, ctx, err, err_len) != 0)
        return JOB_ERR_PERMANENT;
    f.gh = f.j.gh;
    f.r = f.j.r;
    repoconfig_defaults(&f.rc);
    workspace_config_init(&f.wcfg, f.cfg, jobgh_str(ctx, JOB_F_DELIVERY), f.id);

    char heading[96];
    snprintf(heading, sizeof(heading), "%s #%" PRId64, f.followup ? "Following up on" : "Working on", f.number);
    progress_init(&f.progress, f.id, heading, f.cfg->server.public_url, f.started_ms);
    f.s_prepare = progress_add(&f.progress, "Check permission and read the issue");
    f.s_checkout = progress_add(&f.progress, "Check out the repository");
    /* only where there are environments to choose from */
    f.s_env = f.cfg->environments.count > 0 || f.cfg->default_environment || f.cfg->environments.allow_registry_images
                  ? progress_add(&f.progress, "Prepare the environment")
                  : SIZE_MAX;
    f.s_setup = progress_add(&f.progress, "Run the setup commands");
    f.s_agent = progress_add(&f.progress, "Run the agent");
    f.s_tests = progress_add(&f.progress, "Run the tests");
    f.s_push = progress_add(&f.progress, "Commit and push");
    f.s_pr = progress_add(&f.progress, f.followup ? "Update the pull request" : "Open a pull request");
    progress_start(&f.progress, f.s_prepare, f.started_ms);

    job_result_t r;
    if (job_ctx_attempt(ctx) <= 1)
        react(&f, "eyes");
    if (f.label != NULL) {
        const char *labels[] = {FIXJOB_WORKING_LABEL};
        if (ghapi_labels_add(f.gh, &f.r, f.number, labels, 1) != GHAPI_OK)
            job_ctx_log(ctx, LOG_WARN, "label %s not added: %s", FIXJOB_WORKING_LABEL, ghapi_error(f.gh));
    }
    int rc = open_progress(&f);
    if (rc != GHAPI_OK) {
        snprintf(err, err_len, "could not comment on #%" PRId64 ": %s", f.number, ghapi_error(f.gh));
        r = jobgh_result(rc);
    } else {
        r = run(&f);
    }

    progressgh_close(f.pg); /* before the client and App it edits with */
    jobgh_drop_tree(ctx, &f.wcfg, f.ws_id, f.ws);
    for (size_t i = 0; i < f.nspare; i++)
        jobgh_drop_tree(ctx, &f.wcfg, f.spare_ids[i], f.spare[i]);
    sandbox_user_release(&f.user); /* after the trees: nothing of the job's is left to that user */
    image_release(&f.image);
    if (f.token != NULL) {
        memset(f.token, 0, strlen(f.token));
        free(f.token);
    }
    strbuf_free(&f.attempts_md);
    repoinstr_free(&f.instr);
    free(f.instruction_buf);
    agent_result_free(&f.result);
    strbuf_free(&f.tests_md);
    json_decref(f.issue);
    json_decref(f.comments);
    progress_free(&f.progress);
    repoconfig_free(&f.rc);
    jobgh_close(&f.j);
    return r;
}

/* ---- given up, help, stop ---- */

void fixjob_on_dead(job_ctx_t *ctx, const char *why)
{
    jobgh_t j;
    char err[512];
    if (jobgh_open(&j, ctx, err, sizeof(err)) != 0) {
        log_warn(NULL, job_ctx_id(ctx), "could not tell the issue the job died: %s", err);
        return;
    }
    strbuf_t md = STRBUF_INIT;
    strbuf_appendf(&md, "%s%s -->\n❌ **patchbay gave up** on job %s after its attempts ran out:\n\n> ",
                   PROGRESS_MARKER_PREFIX, job_ctx_id(ctx), job_ctx_id(ctx));
    ghmd_sanitize(&md, why, strlen(why));
    strbuf_append(&md, "\n\nA maintainer can run it again with `patchbay jobs retry` or from the dashboard.");
    int64_t progress = jobgh_int(ctx, JOB_F_PROGRESS_COMMENT_ID);
    int rc = progress ? ghapi_comment_update(NULL, j.gh, &j.r, progress, md.data, 0)
                      : ghapi_comment_create(NULL, j.gh, &j.r, j.number, md.data);
    if (rc != GHAPI_OK)
        log_warn(NULL, job_ctx_id(ctx), "could not tell the issue the job died: %s", ghapi_error(j.gh));
    strbuf_free(&md);
    jobgh_close(&j);
}

/* A reaction on the command and one comment: all help and stop do. */
static job_result_t answer_with(jobgh_t *j, const char *reaction, const char *markdown, char *err, size_t err_len)
{
    if (jobgh_int(j->ctx, JOB_F_COMMENT_ID) != 0)
        jobgh_react(j, reaction);
    int rc = ghapi_comment_create(NULL, j->gh, &j->r, j->number, markdown);
    if (rc != GHAPI_OK) {
        snprintf(err, err_len, "could not answer: %s", ghapi_error(j->gh));
        return jobgh_result(rc);
    }
    return JOB_OK;
}

static job_result_t answer(job_ctx_t *ctx, const char *reaction, const char *markdown, char *err, size_t err_len)
{
    jobgh_t j;
    if (jobgh_open(&j, ctx, err, err_len) != 0)
        return JOB_ERR_PERMANENT;
    job_result_t res = answer_with(&j, reaction, markdown, err, err_len);
    jobgh_close(&j);
    return res;
}

job_result_t fixjob_help(job_ctx_t *ctx, char *err, size_t err_len)
{
    const char *handle = job_ctx_config(ctx)->bot.handle;
    const char *message = jobgh_str(ctx, JOB_F_MESSAGE);
    strbuf_t md = STRBUF_INIT;
    if (message)
        strbuf_appendf(&md, "%s\n\n", message);
    strbuf_appendf(&md,
                   "**How to use patchbay**\n\n"
                   "- `@%s <what to do>` on an issue: I work on it and open a pull request.\n"
                   "- `@%s` alone: I resolve the issue as it is written.\n"
                   "- `@%s ask <question>` on an issue, a pull request or in a review thread: I read the code and "
                   "answer there, with links to the lines; I change nothing. A mention whose first line ends with `?` "
                   "or starts with what, why, how, where, which, who, when, can, could, does, is, are, should or "
                   "explain is a question too, unless it says `fix`.\n"
                   "- `@%s <more>` on a pull request I opened: I push more commits to it.\n"
                   "- `@%s review` on a pull request: an inline review.\n"
                   "- `@%s stop`: stops my work on this issue (someone else's needs %s access).\n"
                   "- The label `%s` on an issue works like `@%s`.\n\n"
                   "Settings for this repository live in `%s`.",
                   handle, handle, handle, handle, handle, handle, job_ctx_config(ctx)->triggers.permission,
                   job_ctx_config(ctx)->triggers.labels.count ? job_ctx_config(ctx)->triggers.labels.items[0] : "patchbay",
                   handle, REPOCONFIG_PATH);
    job_result_t r = answer(ctx, "+1", md.data, err, err_len);
    strbuf_free(&md);
    return r;
}

/* Cancels each job in the comma-separated `ids` on behalf of the stop job;
 * the ids of those that were still queued or running go into `done`. */
static int cancel_claims(job_ctx_t *ctx, const char *ids, const char *sender, strbuf_t *done, char *err, size_t err_len)
{
    const config_t *cfg = job_ctx_config(ctx);
    redisContext *c = job_ctx_redis(ctx);
    if (c == NULL) {
        snprintf(err, err_len, "no connection to Redis");
        return -1;
    }
    queue_policy_t p;
    queue_policy_init(&p, (int64_t)cfg->workers.retention_days * 86400, (int64_t)cfg->workers.lease_seconds * 1000);
    char who[200], id[QUEUE_DELIVERY_MAX_BYTES + 1];
    snprintf(who, sizeof(who), "%s (job %s)", sender, job_ctx_id(ctx));
    for (const char *at = ids; *at != '\0';) {
        size_t n = strcspn(at, ",");
        snprintf(id, sizeof(id), "%.*s", (int)(n < sizeof(id) ? n : sizeof(id) - 1), at);
        at += n + (at[n] == ',');
        if (id[0] == '\0')
            continue;
        queue_cancel_outcome_t how;
        char why[512];
        int rc = queue_job_cancel(c, &p, id, who, &how, why, sizeof(why));
        if (rc == QUEUE_ERR_REDIS) {
            snprintf(err, err_len, "could not cancel job %s: %s", id, why);
            return -1;
        }
        if (rc == QUEUE_OK)
            strbuf_appendf(done, "%s%s", done->len ? ", " : "", id);
        else /* finished meanwhile: nothing left to stop */
            job_ctx_log(ctx, LOG_INFO, "job %s not stopped: %s", id, why);
    }
    return 0;
}

/*
 * "@patchbay stop". The enqueue script already stopped the sender's own jobs
 * on this issue (`stops`): withdrawing one's own request needs nobody's
 * leave, and it must not wait for a free worker. Other people's jobs
 * (`claims`) stop only now, after the sender's permission, read live, is at
 * least triggers.permission: author_association says how someone is related
 * to the repository, not what they may do in it. A refusal is said once.
 */
job_result_t fixjob_stop(job_ctx_t *ctx, char *err, size_t err_len)
{
    const config_t *cfg = job_ctx_config(ctx);
    const char *stops = jobgh_str(ctx, JOB_F_STOPS), *claims = jobgh_str(ctx, JOB_F_CLAIMS);
    const char *sender = jobgh_str(ctx, JOB_F_SENDER);
    const char *where = strcmp(or_empty(jobgh_str(ctx, JOB_F_IS_PR)), "1") == 0 ? "pull request" : "issue";
    jobgh_t j;
    if (jobgh_open(&j, ctx, err, err_len) != 0)
        return JOB_ERR_PERMANENT;
    strbuf_t md = STRBUF_INIT, done = STRBUF_INIT;
    const char *reaction = "+1";
    job_result_t r = JOB_OK;
    if (stops)
        strbuf_append(&done, stops);
    if (claims && sender) {
        char *perm = NULL;
        int rc = jobgh_permission(&j, sender, cfg->triggers.permission, &perm);
        if (rc < 0) {
            snprintf(err, err_len, "could not check @%s's permission: %s", sender, ghapi_error(j.gh));
            r = jobgh_result(rc);
            goto done;
        }
        if (rc == 0) {
            reaction = "confused";
            job_ctx_log(ctx, LOG_INFO, "refused: %s has %s permission on %s, %s is needed to stop job %s", sender,
                        perm, j.r.repo, cfg->triggers.permission, claims);
            strbuf_appendf(&md,
                           "Sorry, I stop other people's work only for people with %s access to this repository, "
                           "and GitHub says your access is **%s**. Job %s goes on; its author or a maintainer can "
                           "stop it.",
                           cfg->triggers.permission, perm, claims);
            if (stops)
                strbuf_appendf(&md, "\n\nYour own job %s on this %s is stopped.", stops, where);
        } else if (cancel_claims(ctx, claims, sender, &done, err, err_len) != 0) {
            r = JOB_ERR_RETRY;
        }
        free(perm);
        if (r != JOB_OK)
            goto done;
    }
    if (md.len == 0 && done.len > 0)
        strbuf_appendf(&md, "Stopping job %s on this %s.", done.data, where);
    else if (md.len == 0)
        strbuf_append(&md, "There was nothing to stop: no job of mine was queued or running here.");
    r = answer_with(&j, reaction, md.data, err, err_len);
done:
    strbuf_free(&md);
    strbuf_free(&done);
    jobgh_close(&j);
    return r;
}
