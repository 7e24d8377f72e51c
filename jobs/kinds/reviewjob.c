/*
 * reviewjob — see reviewjob.h. One review_t carries a job through its steps;
 * a step returns JOB_OK or the job's result, having said on GitHub what a
 * person needs to know (the check run, and a comment when a person asked).
 */
#include "reviewjob.h"
#include "jobgh.h"
#include "prompt.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/redact.h"
#include "app/common/strbuf.h"
#include "app/github/ghapi.h"
#include "app/github/ghmd.h"
#include "jobs/agent/agent.h"
#include "jobs/review/coverage.h"
#include "jobs/review/diff.h"
#include "jobs/review/findings.h"
#include "jobs/review/review_body.h"
#include "jobs/workspace/repoconfig.h"
#include "jobs/workspace/workspace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

extern char **environ;

typedef struct {
    job_ctx_t *ctx;
    const config_t *cfg;
    jobgh_t j;
    const char *id, *sender, *instruction, *action;
    int manual;       /* a person asked ("@patchbay review"); else the repository's auto review */
    repoconfig_t rc;
    json_t *pr;
    const char *head_sha, *base_branch;
    int self_authored;
    int untrusted;       /* the code is a stranger's: a fork, or an author who cannot write here */
    char trust_why[256]; /* why, for the log and the note */
    int64_t check_run_id;
    diff_t *diff;
    coverage_t cov;
    findings_t fs;
    char *token;
    workspace_config_t wcfg;
    workspace_t *ws;
    char scratch[4096];
    sandbox_user_t user; /* the job's own host user for the agent (as root) */
    image_t image;       /* the environment the agent runs in, when one is named */
    agent_settings_t agent;
    agent_result_t result;
    char review_url[512];
    char *err;
    size_t err_len;
} review_t;

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- the check run: where an automatic review reports ---- */

static void check_run(review_t *v, const char *status, const char *conclusion, const char *title,
                      const char *summary)
{
    if (v->head_sha == NULL)
        return;
    json_t *fields = json_pack("{s:s, s:s}", "name", REVIEWJOB_CHECK_NAME, "status", status);
    char now[CLOCK_ISO_BYTES];
    clock_format_iso(clock_wall_ms(), now);
    if (conclusion != NULL) {
        json_object_set_new(fields, "conclusion", json_string(conclusion));
        json_object_set_new(fields, "completed_at", json_string(now));
    }
    if (title != NULL)
        json_object_set_new(fields, "output", json_pack("{s:s, s:s}", "title", title, "summary", or_empty(summary)));
    if (v->cfg->server.public_url != NULL && v->cfg->server.public_url[0] != '\0') {
        char url[1024];
        snprintf(url, sizeof(url), "%s/jobs/%s", v->cfg->server.public_url, v->id);
        json_object_set_new(fields, "details_url", json_string(url));
    }
    json_t *out = NULL;
    int rc;
    if (v->check_run_id == 0) {
        json_object_set_new(fields, "head_sha", json_string(v->head_sha));
        json_object_set_new(fields, "started_at", json_string(now));
        json_object_set_new(fields, "external_id", json_string(v->id));
        rc = ghapi_check_run_create(&out, v->j.gh, &v->j.r, fields);
        if (rc == GHAPI_OK) {
            v->check_run_id = json_integer_value(json_object_get(out, "id"));
            jobgh_set_int(v->ctx, JOB_F_CHECK_RUN_ID, v->check_run_id);
        }
    } else {
        rc = ghapi_check_run_update(&out, v->j.gh, &v->j.r, v->check_run_id, fields);
    }
    /* the review is what matters; an App without the checks permission still reviews */
    if (rc != GHAPI_OK)
        job_ctx_log(v->ctx, LOG_WARN, "check run not %s: %s", v->check_run_id ? "updated" : "created",
                    ghapi_error(v->j.gh));
    json_decref(out);
    json_decref(fields);
}

/* ---- the end ---- */

/* Says how it ended: the check run, a comment when a person asked, the
 * reaction. Returns `result`, so steps can `return finish(...)`. */
static job_result_t finish(review_t *v, job_result_t result, const char *conclusion, const char *title,
                           const char *markdown)
{
    if (result == JOB_ERR_RETRY)
        return result; /* it comes back; the check run stays in progress */
    check_run(v, "completed", conclusion, title, markdown);
    if (v->manual && result != JOB_OK && markdown != NULL &&
        ghapi_comment_create(NULL, v->j.gh, &v->j.r, v->j.number, markdown) != GHAPI_OK)
        job_ctx_log(v->ctx, LOG_WARN, "could not answer on #%" PRId64 ": %s", v->j.number, ghapi_error(v->j.gh));
    if (v->manual)
        jobgh_react(&v->j, result == JOB_OK ? "rocket" : "confused");
    return result;
}

static job_result_t fail(review_t *v, job_result_t result, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static job_result_t fail(review_t *v, job_result_t result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->err, v->err_len, fmt, ap);
    va_end(ap);
    job_ctx_log(v->ctx, LOG_WARN, "%s", v->err);
    strbuf_t md = STRBUF_INIT;
    strbuf_append(&md, "patchbay could not review this pull request:\n\n> ");
    ghmd_sanitize(&md, v->err, strlen(v->err));
    job_result_t r = finish(v, result, "failure", "The review failed", md.data);
    strbuf_free(&md);
    return r;
}

/* Nothing to do, by the repository's choice or the pull request's state. */
static job_result_t skip(review_t *v, const char *why)
{
    job_ctx_log(v->ctx, LOG_INFO, "no review: %s", why);
    jobgh_set(v->ctx, JOB_F_OUTCOME, why);
    if (v->manual) {
        char md[512];
        snprintf(md, sizeof(md), "No review: %s.", why);
        if (ghapi_comment_create(NULL, v->j.gh, &v->j.r, v->j.number, md) != GHAPI_OK)
            job_ctx_log(v->ctx, LOG_WARN, "could not answer: %s", ghapi_error(v->j.gh));
        jobgh_react(&v->j, "+1");
    }
    return JOB_OK;
}

static job_result_t stopped(review_t *v)
{
    job_stop_t why = job_ctx_stop_reason(v->ctx);
    if (why == JOB_STOP_CANCEL) {
        snprintf(v->err, v->err_len, "stopped (a newer review, or a stop request)");
        check_run(v, "completed", "cancelled", "Stopped",
                  "This review was stopped: a newer commit is being reviewed, or someone asked patchbay to stop.");
        return JOB_ERR_PERMANENT;
    }
    snprintf(v->err, v->err_len, "interrupted (%s)", job_stop_name(why));
    return JOB_ERR_RETRY;
}

/* ---- the steps ---- */

static job_result_t check_permission(review_t *v)
{
    char *perm = NULL;
    int rc = jobgh_permission(&v->j, v->sender, v->cfg->triggers.permission, &perm);
    if (rc < 0)
        return fail(v, jobgh_result(rc), "could not check @%s's permission: %s", v->sender, ghapi_error(v->j.gh));
    if (rc == 0) {
        snprintf(v->err, v->err_len, "refused: %s has %s permission, %s is needed", v->sender, perm,
                 v->cfg->triggers.permission);
        char md[512];
        snprintf(md, sizeof(md),
                 "Sorry, I only review for people with %s access to this repository, and GitHub says your access "
                 "is **%s**.",
                 v->cfg->triggers.permission, perm);
        free(perm);
        return finish(v, JOB_ERR_PERMANENT, NULL, NULL, md);
    }
    free(perm);
    return JOB_OK;
}

static job_result_t read_settings(review_t *v)
{
    char err[REPOCONFIG_ERR_BYTES];
    int rc = jobgh_repo_config(&v->j, &v->rc, err, sizeof(err));
    if (rc < 0)
        return fail(v, jobgh_result(rc), "could not read %s: %s", REPOCONFIG_PATH, ghapi_error(v->j.gh));
    if (rc == 1)
        return fail(v, JOB_ERR_PERMANENT, "%s on the default branch: %s", REPOCONFIG_PATH, err);
    return JOB_OK;
}

/* The pull request as it is now, and whether this job should review it. 1: skip (said). */
static job_result_t read_pull(review_t *v, int *skipped)
{
    int rc = ghapi_pull_get(&v->pr, v->j.gh, &v->j.r, v->j.number);
    if (rc != GHAPI_OK)
        return fail(v, jobgh_result(rc), "could not read pull request #%" PRId64 ": %s", v->j.number,
                    ghapi_error(v->j.gh));
    json_t *head = json_object_get(v->pr, "head");
    v->head_sha = json_string_value(json_object_get(head, "sha"));
    v->base_branch = json_string_value(json_object_get(json_object_get(v->pr, "base"), "ref"));
    if (v->head_sha == NULL || strlen(v->head_sha) != 40)
        return fail(v, JOB_ERR_PERMANENT, "pull request #%" PRId64 " has no head commit", v->j.number);
    char bot[200];
    snprintf(bot, sizeof(bot), "%s[bot]", v->cfg->bot.handle);
    const char *author = json_string_value(json_object_get(json_object_get(v->pr, "user"), "login"));
    v->self_authored = author != NULL && strcmp(author, bot) == 0;
    const char *state = json_string_value(json_object_get(v->pr, "state"));
    *skipped = 1;
    if (state != NULL && strcmp(state, "open") != 0)
        return skip(v, "the pull request is closed");
    if (!v->manual && json_is_true(json_object_get(v->pr, "draft")) && !v->rc.review.drafts)
        return skip(v, "the pull request is a draft (review.drafts is off)");
    *skipped = 0;
    return JOB_OK;
}

/* Whether the pull request's code is a stranger's, whoever asked for the
 * review: its head lives in another repository (a fork: anyone can open
 * one), or its author lacks triggers.permission here, read live (an
 * organization MEMBER may have read access only). Such code never runs, and
 * never shares a process with a key: see agent_settings_untrusted. */
static job_result_t decide_trust(review_t *v)
{
    char bot[200];
    snprintf(bot, sizeof(bot), "%s[bot]", v->cfg->bot.handle);
    int rc = jobgh_pull_trust(&v->j, v->pr, v->cfg->triggers.permission, bot, &v->untrusted, v->trust_why,
                              sizeof(v->trust_why));
    if (rc < 0)
        return fail(v, jobgh_result(rc), "could not check the author's permission: %s", ghapi_error(v->j.gh));
    return JOB_OK;
}

/* The agent this review runs: the repository's choice for its own people's
 * code; for a stranger's, the operator's untrusted agent or none (then a
 * one-line note on the pull request, once, and no review). 1: skipped. */
static job_result_t choose_agent(review_t *v, int *skipped)
{
    *skipped = 0;
    if (!v->untrusted) {
        agent_settings_init(&v->agent, v->cfg, &v->rc, environ, v->id);
        return JOB_OK;
    }
    job_ctx_log(v->ctx, LOG_INFO, "untrusted pull request: %s", v->trust_why);
    if (agent_settings_untrusted(&v->agent, v->cfg, environ, v->id) == 0) {
        job_ctx_log(v->ctx, LOG_INFO, "reviewing it with the operator's %s agent%s", v->agent.backend,
                    v->agent.no_run ? ", which runs nothing of it" : " (review.untrusted_agent)");
        return JOB_OK;
    }
    *skipped = 1;
    char why[512];
    snprintf(why, sizeof(why), "%s, and this installation runs no agent on code from outside (its operator can allow "
                               "one with `review.untrusted_agent`)",
             v->trust_why);
    /* a person who asked gets skip's answer; an automatic review a note, once per pull request */
    if (!v->manual && jobgh_once(&v->j, "untrusted-review")) {
        strbuf_t md = STRBUF_INIT, safe = STRBUF_INIT;
        strbuf_appendf(&md, "patchbay does not review this pull request: %s.", why);
        ghmd_sanitize(&safe, md.data, md.len);
        if (ghapi_comment_create(NULL, v->j.gh, &v->j.r, v->j.number, safe.data) != GHAPI_OK)
            job_ctx_log(v->ctx, LOG_WARN, "could not leave the note: %s", ghapi_error(v->j.gh));
        strbuf_free(&safe);
        strbuf_free(&md);
    }
    return skip(v, why);
}

/* A review of this head commit by patchbay already exists (a rerun, a
 * redelivery, an auto review and a request for the same commit). */
static int find_review(review_t *v, char *url, size_t url_len)
{
    json_t *all = NULL;
    if (ghapi_reviews_list(&all, v->j.gh, &v->j.r, v->j.number) != GHAPI_OK)
        return 0;
    char bot[200], marker[128];
    snprintf(bot, sizeof(bot), "%s[bot]", v->cfg->bot.handle);
    snprintf(marker, sizeof(marker), "%s commit=%s", REVIEW_MARKER, v->head_sha);
    int found = 0;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *login = json_string_value(json_object_get(json_object_get(r, "user"), "login"));
        const char *body = json_string_value(json_object_get(r, "body"));
        if (login && strcmp(login, bot) == 0 && body && strstr(body, marker) != NULL) {
            snprintf(url, url_len, "%s", or_empty(json_string_value(json_object_get(r, "html_url"))));
            found = 1;
        }
    }
    json_decref(all);
    return found;
}

/* The diff the agent reads: every line numbered on both sides, so a finding
 * names the line GitHub will anchor on without counting hunk offsets. */
static void render_diff(review_t *v, strbuf_t *diff, strbuf_t *left_out)
{
    for (size_t e = 0; e < v->cov.count; e++) {
        const coverage_entry_t *ce = &v->cov.entries[e];
        const diff_file_t *f = ce->file;
        if (ce->state != COVERAGE_REVIEWED)
            strbuf_appendf(left_out, "- %s: %s\n", f->path, ce->reason);
        if (ce->state == COVERAGE_SKIPPED)
            continue;
        strbuf_appendf(diff, "=== %s (%s", f->path, diff_status_name(f->status));
        if (f->previous_path)
            strbuf_appendf(diff, " from %s", f->previous_path);
        strbuf_append(diff, ") ===\n  LEFT RIGHT\n");
        size_t written = 0;
        for (size_t k = 0; k < f->nhunks && written < ce->lines; k++) {
            const diff_hunk_t *h = &f->hunks[k];
            strbuf_appendf(diff, "@@ -%u,%u +%u,%u @@\n", h->old_start, h->old_count, h->new_start, h->new_count);
            for (size_t i = h->first; i < h->first + h->count && written < ce->lines; i++, written++) {
                const diff_line_t *l = &f->lines[i];
                char left[16] = "", right[16] = "";
                if (l->old_line)
                    snprintf(left, sizeof(left), "%u", l->old_line);
                if (l->new_line)
                    snprintf(right, sizeof(right), "%u", l->new_line);
                strbuf_appendf(diff, "%6s %5s %c", left, right,
                               l->kind == DIFF_LINE_ADDED ? '+' : l->kind == DIFF_LINE_REMOVED ? '-' : ' ');
                strbuf_appendn(diff, l->text, l->text_len);
                strbuf_append(diff, "\n");
            }
        }
        strbuf_append(diff, "\n");
    }
}

static job_result_t read_diff(review_t *v)
{
    json_t *files = NULL;
    int rc = ghapi_pull_files(&files, v->j.gh, &v->j.r, v->j.number);
    if (rc != GHAPI_OK)
        return fail(v, jobgh_result(rc), "could not read the pull request's files: %s", ghapi_error(v->j.gh));
    int drc = diff_parse_files_json(&v->diff, files, NULL);
    json_decref(files);
    if (drc != DIFF_OK)
        return fail(v, JOB_ERR_PERMANENT, "could not parse the pull request's diff (%s)",
                    drc == DIFF_ERR_TOO_LARGE ? "too large" : drc == DIFF_ERR_NOMEM ? "out of memory" : "not a file list");
    if (coverage_plan(&v->cov, v->diff, NULL) != 0)
        return fail(v, JOB_ERR_RETRY, "out of memory planning the review");
    job_ctx_log(v->ctx, LOG_INFO, "%zu files: %zu to review, %zu clipped, %zu skipped", v->cov.count,
                coverage_count(&v->cov, COVERAGE_REVIEWED), coverage_count(&v->cov, COVERAGE_CLIPPED),
                coverage_count(&v->cov, COVERAGE_SKIPPED));
    return JOB_OK;
}

static job_result_t checkout(review_t *v)
{
    int rc = ghapi_installation_token(&v->token, NULL, v->j.gh, v->j.r.installation, v->j.r.repo);
    if (rc != GHAPI_OK)
        return fail(v, jobgh_result(rc), "no installation token for %s: %s", v->j.r.repo, ghapi_error(v->j.gh));
    char branch[64], err[WORKSPACE_ERR_BYTES];
    snprintf(branch, sizeof(branch), "patchbay-review/%" PRId64, v->j.number);
    workspace_spec_t spec = {.repo = v->j.r.repo,
                             .token = v->token,
                             .job_id = v->id,
                             .branch = branch,
                             .pull_number = (int)v->j.number};
    rc = workspace_prepare(&v->ws, &v->wcfg, &spec, err, sizeof(err));
    if (rc != WORKSPACE_OK)
        return fail(v, rc == WORKSPACE_ERETRY || rc == WORKSPACE_ECONFLICT ? JOB_ERR_RETRY : JOB_ERR_PERMANENT,
                    "could not check out %s: %s", v->j.r.repo, err);
    if (strcmp(v->ws->base_oid, v->head_sha) != 0)
        job_ctx_log(v->ctx, LOG_INFO, "the pull request moved to %.12s since it was read; reviewing %.12s",
                    v->ws->base_oid, v->head_sha);
    snprintf(v->scratch, sizeof(v->scratch), "%s/scratch", v->ws->dir);
    if (mkdir(v->scratch, 0700) != 0 && errno != EEXIST)
        return fail(v, JOB_ERR_RETRY, "cannot create %s: %s", v->scratch, strerror(errno));
    if (jobgh_user_acquire(v->ctx, &v->user, err, sizeof(err)) != 0)
        return fail(v, JOB_ERR_RETRY, "no sandbox user: %s", err);
    if (jobgh_user_give(&v->user, v->ws->path, v->scratch, err, sizeof(err)) != 0)
        return fail(v, JOB_ERR_RETRY, "%s", err);
    v->agent.uid = v->user.uid;
    v->agent.gid = v->user.gid;
    /* a stranger's pull request reads the base branch's settings, so its
     * environment is the repository's choice, not the pull request's */
    const char *env_name = NULL;
    char why[1024];
    if (!v->agent.no_run && /* nothing of it runs: no environment to run in */
        jobgh_environment(v->ctx, &v->rc, &v->image, &v->agent, &env_name, why, sizeof(why)) != 0)
        return fail(v, JOB_ERR_PERMANENT, "%s", why);
    return JOB_OK;
}

static job_result_t run_agent(review_t *v)
{
    strbuf_t diff = STRBUF_INIT, left_out = STRBUF_INIT, task = STRBUF_INIT;
    render_diff(v, &diff, &left_out);
    prompt_review_t in = {.repo = v->j.r.repo,
                          .number = v->j.number,
                          .title = json_string_value(json_object_get(v->pr, "title")),
                          .body = json_string_value(json_object_get(v->pr, "body")),
                          .instruction = v->instruction,
                          .requester = v->manual ? v->sender : NULL,
                          .head_sha = v->head_sha,
                          .base_branch = v->base_branch,
                          .diff = diff.data,
                          .left_out = left_out.data};
    prompt_review(&task, &in);
    strbuf_free(&diff);
    strbuf_free(&left_out);

    v->agent.review = 1;
    v->agent.kind = "review";
    jobgh_note_isolation(v->ctx, &v->agent);
    agent_hooks_t hooks = jobgh_hooks(v->ctx);
    char err[512];
    job_ctx_log(v->ctx, LOG_INFO, "running the agent on %zu bytes of task", task.len);
    int rc = agent_run(&v->result, &v->agent, v->ws->path, v->scratch, task.data, task.len, &hooks, NULL, err,
                       sizeof(err));
    strbuf_free(&task);
    /* a stop that lands while the sandbox is being set up kills it there:
     * that is the stop, not a failure of the agent */
    if (rc != 0 && jobgh_stopping(v->ctx))
        return stopped(v);
    if (rc != 0)
        return fail(v, JOB_ERR_PERMANENT, "the agent could not start: %s", err);
    if (v->result.end == AGENT_CANCELLED)
        return stopped(v);

    char path[4200];
    snprintf(path, sizeof(path), "%s/findings.json", v->scratch);
    v->fs.job = v->id;
    int frc = findings_load_file(&v->fs, path);
    job_ctx_log(v->ctx, LOG_INFO, "the agent %s; %zu findings kept, %zu dropped", v->result.describe, v->fs.count,
                v->fs.dropped);
    if (v->result.end != AGENT_DONE && v->fs.count == 0)
        return fail(v, JOB_ERR_PERMANENT, "the agent %s before it reported anything", v->result.describe);
    if (frc == FINDINGS_ERR_IO && v->result.end == AGENT_DONE)
        job_ctx_log(v->ctx, LOG_INFO, "no findings file: the agent found nothing to say");
    /* the agent's words when it wrote no summary into the findings: the
     * built-in agent's finish, or a command agent's output when it wrote no
     * findings file at all */
    int own = v->agent.backend != NULL && strcmp(v->agent.backend, "openai") == 0;
    if (v->fs.summary == NULL && (own || frc == FINDINGS_ERR_IO) && v->result.summary != NULL &&
        v->result.summary[0] != '\0')
        v->fs.summary = strdup(v->result.summary);
    /* the agent's own keys never reach the review, whatever it was asked */
    redact_set_t set;
    agent_secrets(&set, &v->agent);
    for (size_t i = 0; set.count > 0 && i < v->fs.count; i++) {
        char *r = redact_values(v->fs.items[i].body, &set);
        free(v->fs.items[i].body);
        v->fs.items[i].body = r;
        if (v->fs.items[i].suggestion != NULL) {
            r = redact_values(v->fs.items[i].suggestion, &set);
            free(v->fs.items[i].suggestion);
            v->fs.items[i].suggestion = r;
        }
    }
    if (set.count > 0 && v->fs.summary != NULL) {
        char *r = redact_values(v->fs.summary, &set);
        free(v->fs.summary);
        v->fs.summary = r;
    }
    if (v->result.end != AGENT_DONE) {
        /* what it found before it stopped is worth posting, said as such */
        strbuf_t s = STRBUF_INIT;
        strbuf_appendf(&s, "**The agent %s**, so this review may be incomplete.\n\n%s", v->result.describe,
                       or_empty(v->fs.summary));
        free(v->fs.summary);
        v->fs.summary = s.data;
    }
    return JOB_OK;
}

static void counts_line(char *out, size_t len, const review_stats_t *st)
{
    size_t total = st->inline_comments + st->in_summary;
    if (total == 0) {
        snprintf(out, len, "No findings");
        return;
    }
    snprintf(out, len, "%zu finding%s: %zu error%s, %zu warning%s, %zu note%s", total, total == 1 ? "" : "s",
             st->by_severity[FINDING_ERROR], st->by_severity[FINDING_ERROR] == 1 ? "" : "s",
             st->by_severity[FINDING_WARNING], st->by_severity[FINDING_WARNING] == 1 ? "" : "s",
             st->by_severity[FINDING_INFO], st->by_severity[FINDING_INFO] == 1 ? "" : "s");
}

static job_result_t post_review(review_t *v)
{
    review_options_t opt = REVIEW_OPTIONS_INIT;
    opt.commit_id = v->head_sha;
    opt.request_changes = v->rc.review.request_changes;
    opt.self_authored = v->self_authored;
    review_stats_t st;
    json_t *body = NULL;
    if (review_build(&body, &st, v->diff, &v->fs, &v->cov, &opt) != REVIEW_OK)
        return fail(v, JOB_ERR_PERMANENT, "could not build the review");
    if (jobgh_stopping(v->ctx)) {
        json_decref(body);
        return stopped(v);
    }
    json_t *out = NULL;
    int rc = ghapi_review_create(&out, v->j.gh, &v->j.r, v->j.number, body);
    json_decref(body);
    if (rc == GHAPI_ERR_VALIDATION) {
        /* anchoring should make this impossible; if GitHub still refuses a
         * comment, the review goes out with every finding in its summary */
        job_ctx_log(v->ctx, LOG_ERROR, "GitHub refused the review (%s); posting it with no inline comments",
                    ghapi_error(v->j.gh));
        opt.max_comments = 0;
        if (review_build(&body, &st, v->diff, &v->fs, &v->cov, &opt) != REVIEW_OK)
            return fail(v, JOB_ERR_PERMANENT, "could not build the review");
        rc = ghapi_review_create(&out, v->j.gh, &v->j.r, v->j.number, body);
        json_decref(body);
    }
    if (rc != GHAPI_OK)
        return fail(v, jobgh_result(rc), "could not post the review: %s", ghapi_error(v->j.gh));
    snprintf(v->review_url, sizeof(v->review_url), "%s", or_empty(json_string_value(json_object_get(out, "html_url"))));
    jobgh_set_int(v->ctx, JOB_F_REVIEW_ID, json_integer_value(json_object_get(out, "id")));
    jobgh_set(v->ctx, JOB_F_REVIEW_URL, v->review_url);
    jobgh_set(v->ctx, JOB_F_REVIEWED_SHA, v->head_sha);
    jobgh_set(v->ctx, JOB_F_OUTCOME, "review");
    json_decref(out);

    char title[160];
    counts_line(title, sizeof(title), &st);
    strbuf_t summary = STRBUF_INIT;
    strbuf_appendf(&summary, "%s; %zu inline, %zu in the review's summary.\n\n", title, st.inline_comments,
                   st.in_summary);
    strbuf_appendf(&summary, "Files: %zu reviewed, %zu clipped, %zu skipped.\n\n",
                   coverage_count(&v->cov, COVERAGE_REVIEWED), coverage_count(&v->cov, COVERAGE_CLIPPED),
                   coverage_count(&v->cov, COVERAGE_SKIPPED) + v->cov.files_dropped);
    if (v->review_url[0])
        strbuf_appendf(&summary, "The review: %s\n", v->review_url);
    job_ctx_log(v->ctx, LOG_INFO, "review posted: %s, event %s", title, st.event);
    /* a review informs; it does not block a merge unless changes were requested */
    job_result_t r = finish(v, JOB_OK, strcmp(st.event, "REQUEST_CHANGES") == 0 ? "failure" : "neutral", title,
                            summary.data);
    strbuf_free(&summary);
    return r;
}

static job_result_t run(review_t *v)
{
    job_result_t r;
    if (v->manual && (r = check_permission(v)) != JOB_OK)
        return r;
    if ((r = read_settings(v)) != JOB_OK)
        return r;
    if (!v->manual && !v->rc.review.auto_review)
        return skip(v, "automatic reviews are off for this repository (review.auto)");
    if (!v->manual && v->action && strcmp(v->action, "synchronize") == 0 && !v->rc.review.synchronize)
        return skip(v, "reviews on every push are off for this repository (review.synchronize)");
    int skipped = 0;
    if ((r = read_pull(v, &skipped)) != JOB_OK || skipped)
        return r;
    if ((r = decide_trust(v)) != JOB_OK || (r = choose_agent(v, &skipped)) != JOB_OK || skipped)
        return r;

    char url[512] = "";
    const char *done_sha = jobgh_str(v->ctx, JOB_F_REVIEWED_SHA);
    if ((done_sha && strcmp(done_sha, v->head_sha) == 0) || find_review(v, url, sizeof(url))) {
        char why[700];
        snprintf(why, sizeof(why), "commit %.12s is already reviewed%s%s", v->head_sha, url[0] ? ": " : "", url);
        return skip(v, why);
    }

    v->check_run_id = jobgh_int(v->ctx, JOB_F_CHECK_RUN_ID);
    check_run(v, "in_progress", NULL, NULL, NULL);
    if ((r = read_diff(v)) != JOB_OK || (r = checkout(v)) != JOB_OK)
        return r;
    if (jobgh_stopping(v->ctx))
        return stopped(v);
    if ((r = run_agent(v)) != JOB_OK)
        return r;
    return post_review(v);
}

job_result_t reviewjob_run(job_ctx_t *ctx, char *err, size_t err_len)
{
    review_t v = {0};
    v.user = (sandbox_user_t)SANDBOX_USER_INIT;
    v.image = (image_t)IMAGE_INIT;
    v.ctx = ctx;
    v.cfg = job_ctx_config(ctx);
    v.err = err;
    v.err_len = err_len;
    v.id = job_ctx_id(ctx);
    v.sender = jobgh_str(ctx, JOB_F_SENDER);
    v.instruction = jobgh_str(ctx, JOB_F_INSTRUCTION);
    v.action = jobgh_str(ctx, JOB_F_ACTION);
    v.manual = jobgh_int(ctx, JOB_F_COMMENT_ID) != 0;
    if (v.sender == NULL) {
        snprintf(err, err_len, "the job record lacks its sender");
        return JOB_ERR_PERMANENT;
    }
    if (jobgh_open(&v.j, ctx, err, err_len) != 0)
        return JOB_ERR_PERMANENT;
    repoconfig_defaults(&v.rc);
    findings_t empty = FINDINGS_INIT;
    v.fs = empty;
    workspace_config_init(&v.wcfg, v.cfg, jobgh_str(ctx, JOB_F_DELIVERY), v.id);
    if (v.manual && job_ctx_attempt(ctx) <= 1)
        jobgh_react(&v.j, "eyes");

    job_result_t r = run(&v);

    jobgh_drop_tree(ctx, &v.wcfg, v.id, v.ws);
    sandbox_user_release(&v.user);
    image_release(&v.image);
    if (v.token != NULL) {
        memset(v.token, 0, strlen(v.token));
        free(v.token);
    }
    agent_result_free(&v.result);
    findings_free(&v.fs);
    coverage_free(&v.cov);
    diff_free(v.diff);
    json_decref(v.pr);
    repoconfig_free(&v.rc);
    jobgh_close(&v.j);
    return r;
}

void reviewjob_on_dead(job_ctx_t *ctx, const char *why)
{
    jobgh_t j;
    char err[512];
    if (jobgh_open(&j, ctx, err, sizeof(err)) != 0) {
        log_warn(NULL, job_ctx_id(ctx), "could not report the dead review: %s", err);
        return;
    }
    strbuf_t md = STRBUF_INIT;
    strbuf_appendf(&md, "patchbay gave up on this review (job %s) after its attempts ran out:\n\n> ", job_ctx_id(ctx));
    ghmd_sanitize(&md, why, strlen(why));
    int64_t check = jobgh_int(ctx, JOB_F_CHECK_RUN_ID);
    if (check != 0) {
        char now[CLOCK_ISO_BYTES];
        clock_format_iso(clock_wall_ms(), now);
        json_t *fields = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "status", "completed", "conclusion", "failure",
                                   "completed_at", now, "output", "title", "The review failed", "summary", md.data);
        if (ghapi_check_run_update(NULL, j.gh, &j.r, check, fields) != GHAPI_OK)
            log_warn(NULL, job_ctx_id(ctx), "check run not completed: %s", ghapi_error(j.gh));
        json_decref(fields);
    }
    if (jobgh_int(ctx, JOB_F_COMMENT_ID) != 0 && ghapi_comment_create(NULL, j.gh, &j.r, j.number, md.data) != GHAPI_OK)
        log_warn(NULL, job_ctx_id(ctx), "could not tell the pull request the review died: %s", ghapi_error(j.gh));
    strbuf_free(&md);
    jobgh_close(&j);
}
