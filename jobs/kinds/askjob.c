/*
 * askjob — see askjob.h. One ask_t carries a question through its steps; a
 * step returns JOB_OK or the job's result, having said on GitHub what the
 * person who asked needs to know.
 */
#include "askjob.h"
#include "answer.h"
#include "jobgh.h"
#include "progress.h"
#include "prompt.h"
#include "repoinstr.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/redact.h"
#include "app/common/strbuf.h"
#include "app/github/ghapi.h"
#include "app/github/ghmd.h"
#include "jobs/agent/agent.h"
#include "jobs/workspace/repoconfig.h"
#include "jobs/workspace/workspace.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

typedef struct {
    job_ctx_t *ctx;
    const config_t *cfg;
    jobgh_t j;
    const char *id, *sender, *question;
    int64_t comment_id, line;
    const char *path;
    int is_pr, in_thread, inferred;
    char bot[200];
    repoconfig_t rc;
    json_t *issue, *comments, *pr; /* the issue (or the pull request's issue), its comments, the pull request */
    int untrusted;
    char trust_why[256];
    char instructions_commit[WORKSPACE_OID_HEX]; /* where the instruction files are read: the checkout, or a base */
    char *token;
    workspace_config_t wcfg;
    workspace_t *ws;
    char scratch[4096];
    sandbox_user_t user;
    image_t image;
    agent_settings_t agent;
    agent_result_t result;
    repoinstr_t instr;
    size_t discarded;
    char *err;
    size_t err_len;
} ask_t;

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static int builtin(const ask_t *a)
{
    return a->agent.backend != NULL && strcmp(a->agent.backend, "openai") == 0;
}

/* ---- the reply ---- */

/* The one reply: in the review thread where the question was asked, else a
 * comment on the issue or pull request. */
static int post_reply(ask_t *a, const char *md, json_t **out)
{
    if (a->in_thread)
        return ghapi_review_comment_reply(out, a->j.gh, &a->j.r, a->j.number, a->comment_id, md);
    return ghapi_comment_create(out, a->j.gh, &a->j.r, a->j.number, md);
}

/* The reply an earlier run of this job posted (found by its marker), or NULL. */
static json_t *find_reply(ask_t *a)
{
    json_t *all = NULL, *found = NULL;
    int rc = a->in_thread ? ghapi_review_comments(&all, a->j.gh, &a->j.r, a->j.number)
                          : ghapi_issue_comments(&all, a->j.gh, &a->j.r, a->j.number, 0);
    if (rc != GHAPI_OK)
        return NULL;
    size_t i;
    json_t *c;
    json_array_foreach(all, i, c)
    {
        const char *login = json_string_value(json_object_get(json_object_get(c, "user"), "login"));
        if (login != NULL && strcmp(login, a->bot) == 0 &&
            answer_marker_is(json_string_value(json_object_get(c, "body")), a->id))
            found = json_incref(c);
    }
    json_decref(all);
    return found;
}

/* Says md (already safe to post) as the job's end, with the reaction. */
static job_result_t end_with(ask_t *a, job_result_t result, const char *reaction, const char *md)
{
    strbuf_t body = STRBUF_INIT;
    strbuf_append(&body, md);
    strbuf_append(&body, "\n\n");
    answer_marker(&body, a->id);
    json_t *prior = find_reply(a); /* a crashed run that got this far said it already */
    if (prior == NULL && post_reply(a, body.data, NULL) != GHAPI_OK)
        job_ctx_log(a->ctx, LOG_WARN, "could not reply: %s", ghapi_error(a->j.gh));
    json_decref(prior);
    strbuf_free(&body);
    jobgh_react(&a->j, reaction);
    return result;
}

/* A failure: the job's error (one line) and, unless it comes back, a reply
 * that says it. */
static job_result_t fail(ask_t *a, job_result_t result, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static job_result_t fail(ask_t *a, job_result_t result, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, a->err_len, fmt, ap);
    va_end(ap);
    job_ctx_log(a->ctx, LOG_WARN, "%s", a->err);
    if (result == JOB_ERR_RETRY)
        return result; /* it comes back; nothing to say yet */
    strbuf_t md = STRBUF_INIT;
    strbuf_append(&md, "I could not answer this:\n\n> ");
    ghmd_sanitize(&md, a->err, strlen(a->err));
    job_result_t r = end_with(a, result, "confused", md.data);
    strbuf_free(&md);
    return r;
}

static job_result_t stopped(ask_t *a)
{
    job_stop_t why = job_ctx_stop_reason(a->ctx);
    if (why == JOB_STOP_CANCEL) {
        snprintf(a->err, a->err_len, "stopped on request");
        return end_with(a, JOB_ERR_PERMANENT, "confused", "Stopped on request, before I had an answer.");
    }
    snprintf(a->err, a->err_len, "interrupted (%s)", job_stop_name(why));
    return JOB_ERR_RETRY;
}

/* ---- the steps ---- */

static job_result_t read_settings(ask_t *a)
{
    char err[REPOCONFIG_ERR_BYTES];
    int rc = jobgh_repo_config(&a->j, &a->rc, err, sizeof(err));
    if (rc < 0)
        return fail(a, jobgh_result(rc), "could not read %s: %s", REPOCONFIG_PATH, ghapi_error(a->j.gh));
    if (rc == 1)
        return fail(a, JOB_ERR_PERMANENT, "%s on the default branch: %s", REPOCONFIG_PATH, err);
    return JOB_OK;
}

/* On a public repository anyone triggers.associations lets in may ask. On a
 * private one the answer quotes code only people who can read it may see,
 * so the asker's access is read live: a collaborator removed since, or an
 * association GitHub reports for an organization member without access to
 * this repository, gets no answer. */
static job_result_t check_access(ask_t *a)
{
    /* "0" only when the webhook said public; absent: the careful side */
    const char *priv = jobgh_str(a->ctx, JOB_F_PRIVATE);
    int private_repo = priv == NULL || strcmp(priv, "0") != 0;
    if (!private_repo)
        return JOB_OK;
    char *perm = NULL;
    int rc = jobgh_permission(&a->j, a->sender, "read", &perm);
    if (rc < 0)
        return fail(a, jobgh_result(rc), "could not check @%s's permission: %s", a->sender, ghapi_error(a->j.gh));
    if (rc == 0) {
        snprintf(a->err, a->err_len, "refused: %s has %s permission on the private %s", a->sender, perm,
                 a->j.r.repo);
        strbuf_t md = STRBUF_INIT;
        strbuf_appendf(&md, "Sorry, on this private repository I answer only people who can read it, and GitHub says "
                            "your access is **%s**.",
                       perm);
        free(perm);
        job_result_t r = end_with(a, JOB_ERR_PERMANENT, "confused", md.data);
        strbuf_free(&md);
        return r;
    }
    free(perm);
    return JOB_OK;
}

static job_result_t read_issue(ask_t *a)
{
    int rc = ghapi_issue_get(&a->issue, a->j.gh, &a->j.r, a->j.number);
    if (rc == GHAPI_OK)
        rc = ghapi_issue_comments(&a->comments, a->j.gh, &a->j.r, a->j.number, ASKJOB_COMMENTS_MAX);
    if (rc != GHAPI_OK)
        return fail(a, jobgh_result(rc), "could not read #%" PRId64 ": %s", a->j.number, ghapi_error(a->j.gh));
    return JOB_OK;
}

/* The pull request, and whose code it is: the agent follows from that. */
static job_result_t read_pull(ask_t *a)
{
    int rc = ghapi_pull_get(&a->pr, a->j.gh, &a->j.r, a->j.number);
    if (rc != GHAPI_OK)
        return fail(a, jobgh_result(rc), "could not read pull request #%" PRId64 ": %s", a->j.number,
                    ghapi_error(a->j.gh));
    rc = jobgh_pull_trust(&a->j, a->pr, a->cfg->triggers.permission, a->bot, &a->untrusted, a->trust_why,
                          sizeof(a->trust_why));
    if (rc < 0)
        return fail(a, jobgh_result(rc), "could not check the pull request author's permission: %s",
                    ghapi_error(a->j.gh));
    return JOB_OK;
}

/* The repository's agent for its own people's code; for a stranger's, the
 * operator's untrusted agent or none (then the answer says why). */
static job_result_t choose_agent(ask_t *a)
{
    if (!a->untrusted) {
        agent_settings_init(&a->agent, a->cfg, &a->rc, environ, a->id);
    } else {
        job_ctx_log(a->ctx, LOG_INFO, "untrusted pull request: %s", a->trust_why);
        if (agent_settings_untrusted(&a->agent, a->cfg, environ, a->id) != 0) {
            snprintf(a->err, a->err_len, "no agent for code from outside: %s", a->trust_why);
            strbuf_t md = STRBUF_INIT, safe = STRBUF_INIT;
            strbuf_appendf(&md, "I cannot answer questions about this pull request: %s, and this installation runs no "
                                "agent on code from outside (its operator can allow one with `review.untrusted_agent`).",
                           a->trust_why);
            ghmd_sanitize(&safe, md.data, md.len);
            job_result_t r = end_with(a, JOB_ERR_PERMANENT, "confused", safe.data);
            strbuf_free(&safe);
            strbuf_free(&md);
            return r;
        }
    }
    agent_settings_ask(&a->agent, a->cfg, &a->rc);
    return JOB_OK;
}

static job_result_t checkout(ask_t *a)
{
    int rc = ghapi_installation_token(&a->token, NULL, a->j.gh, a->j.r.installation, a->j.r.repo);
    if (rc != GHAPI_OK)
        return fail(a, jobgh_result(rc), "no installation token for %s: %s", a->j.r.repo, ghapi_error(a->j.gh));
    /* a local branch only: nothing of an ask is ever pushed */
    char branch[96], err[WORKSPACE_ERR_BYTES];
    snprintf(branch, sizeof(branch), "patchbay-ask/%s", a->id);
    workspace_spec_t spec = {.repo = a->j.r.repo,
                             .token = a->token,
                             .job_id = a->id,
                             .branch = branch,
                             .pull_number = a->is_pr ? (int)a->j.number : 0};
    rc = workspace_prepare(&a->ws, &a->wcfg, &spec, err, sizeof(err));
    if (rc != WORKSPACE_OK)
        return fail(a, rc == WORKSPACE_ERETRY || rc == WORKSPACE_ECONFLICT ? JOB_ERR_RETRY : JOB_ERR_PERMANENT,
                    "could not check out %s: %s", a->j.r.repo, err);
    job_ctx_log(a->ctx, LOG_INFO, "reading %s at %.12s", a->ws->base_ref, a->ws->base_oid);
    snprintf(a->scratch, sizeof(a->scratch), "%s/scratch", a->ws->dir);
    if (mkdir(a->scratch, 0700) != 0 && errno != EEXIST)
        return fail(a, JOB_ERR_RETRY, "cannot create %s: %s", a->scratch, strerror(errno));
    if (jobgh_user_acquire(a->ctx, &a->user, err, sizeof(err)) != 0)
        return fail(a, JOB_ERR_RETRY, "no sandbox user: %s", err);
    if (jobgh_user_give(&a->user, a->ws->path, a->scratch, err, sizeof(err)) != 0)
        return fail(a, JOB_ERR_RETRY, "%s", err);
    a->agent.uid = a->user.uid;
    a->agent.gid = a->user.gid;
    /* a command agent runs in the repository's environment; the built-in one runs nothing */
    const char *env_name = NULL;
    char why[1024];
    if (!builtin(a) && jobgh_environment(a->ctx, &a->rc, &a->image, &a->agent, &env_name, why, sizeof(why)) != 0)
        return fail(a, JOB_ERR_PERMANENT, "%s", why);
    return JOB_OK;
}

/* The built-in agent reads the repository's instructions; agent CLIs read
 * their own files themselves. A stranger's pull request gets its base's. */
static void load_instructions(ask_t *a)
{
    if (!builtin(a))
        return;
    const char *base_sha = json_string_value(json_object_get(json_object_get(a->pr, "base"), "sha"));
    snprintf(a->instructions_commit, sizeof(a->instructions_commit), "%s",
             a->untrusted ? or_empty(base_sha) : a->ws->base_oid);
    char err[WORKSPACE_ERR_BYTES];
    if (repoinstr_load(&a->instr, a->ws, a->instructions_commit, err, sizeof(err)) != 0) {
        job_ctx_log(a->ctx, LOG_WARN, "no repository instructions: %s", err);
        return;
    }
    if (a->instr.family != NULL)
        job_ctx_log(a->ctx, LOG_INFO, "repository instructions: %s files at %.12s%s", a->instr.family,
                    a->instructions_commit, a->untrusted ? " (the base: the pull request's own are not used)" : "");
    repoinstr_give(&a->instr, &a->agent);
}

/* A pull request's patches for the task, bounded; the files left out, said. */
static void render_diff(ask_t *a, strbuf_t *diff, strbuf_t *left_out)
{
    json_t *files = NULL;
    if (ghapi_pull_files(&files, a->j.gh, &a->j.r, a->j.number) != GHAPI_OK) {
        job_ctx_log(a->ctx, LOG_WARN, "no diff for the task: %s", ghapi_error(a->j.gh));
        return;
    }
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *name = or_empty(json_string_value(json_object_get(f, "filename")));
        const char *patch = json_string_value(json_object_get(f, "patch"));
        if (patch == NULL) {
            strbuf_appendf(left_out, "- %s: no patch (binary, or too large for GitHub to show)\n", name);
        } else if (diff->len + strlen(patch) + strlen(name) + 64 > ASKJOB_DIFF_MAX_BYTES) {
            strbuf_appendf(left_out, "- %s: left out (the diff is over %d KiB; the file is in the checkout)\n", name,
                           ASKJOB_DIFF_MAX_BYTES / 1024);
        } else {
            strbuf_appendf(diff, "--- %s (%s)\n%s\n\n", name, or_empty(json_string_value(json_object_get(f, "status"))),
                           patch);
        }
    }
    if (diff->data == NULL)
        strbuf_append(diff, "");
    json_decref(files);
}

static job_result_t run_agent(ask_t *a)
{
    prompt_comment_t *pc = calloc(json_array_size(a->comments) + 1, sizeof(*pc));
    if (pc == NULL)
        return fail(a, JOB_ERR_RETRY, "out of memory");
    size_t n = 0, i;
    json_t *c;
    json_array_foreach(a->comments, i, c)
    {
        const char *body = json_string_value(json_object_get(c, "body"));
        char id[32];
        if (body == NULL || progress_marker_find(body, id, sizeof(id)) == 0)
            continue; /* patchbay's own checklists tell the agent nothing */
        pc[n].author = json_string_value(json_object_get(json_object_get(c, "user"), "login"));
        pc[n].body = body;
        n++;
    }
    strbuf_t diff = STRBUF_INIT, left_out = STRBUF_INIT, instructions = STRBUF_INIT, task = STRBUF_INIT;
    if (a->is_pr)
        render_diff(a, &diff, &left_out);
    repoinstr_task(&instructions, &a->instr);
    const json_t *about = a->is_pr ? a->pr : a->issue;
    prompt_ask_t in = {.repo = a->j.r.repo,
                       .number = a->j.number,
                       .is_pr = a->is_pr,
                       .question = a->question,
                       .requester = a->sender,
                       .title = json_string_value(json_object_get(about, "title")),
                       .body = json_string_value(json_object_get(about, "body")),
                       .comments = pc,
                       .ncomments = n,
                       .ref = a->is_pr ? "the pull request's head" : a->ws->default_branch,
                       .sha = a->ws->base_oid,
                       .base_branch = json_string_value(json_object_get(json_object_get(a->pr, "base"), "ref")),
                       .diff = diff.data,
                       .left_out = left_out.data,
                       .review_path = a->in_thread ? a->path : NULL,
                       .review_line = a->line,
                       .instructions = instructions.data};
    prompt_ask(&task, &in);
    free(pc);
    strbuf_free(&diff);
    strbuf_free(&left_out);
    strbuf_free(&instructions);

    jobgh_note_isolation(a->ctx, &a->agent);
    agent_hooks_t hooks = jobgh_hooks(a->ctx);
    char err[512];
    job_ctx_log(a->ctx, LOG_INFO, "asking the %s agent (%zu bytes of task)", a->agent.backend, task.len);
    int rc = agent_run(&a->result, &a->agent, a->ws->path, a->scratch, task.data, task.len, &hooks, NULL, err,
                       sizeof(err));
    strbuf_free(&task);
    if (rc != 0)
        return fail(a, JOB_ERR_PERMANENT, "the agent could not start: %s", err);
    job_ctx_log(a->ctx, LOG_INFO, "the agent %s after %lld ms%s%s", a->result.describe,
                (long long)a->result.elapsed_ms, a->result.usage[0] ? "; " : "", a->result.usage);
    /* the agent's own keys never reach the reply, whatever it was asked */
    redact_set_t set;
    agent_secrets(&set, &a->agent);
    if (set.count > 0) {
        char *r = redact_values(a->result.summary, &set);
        free(a->result.summary);
        a->result.summary = r;
        r = redact_values(a->result.output_tail, &set);
        free(a->result.output_tail);
        a->result.output_tail = r;
    }
    if (a->result.end == AGENT_CANCELLED)
        return stopped(a);
    if (a->result.end != AGENT_DONE) {
        snprintf(a->err, a->err_len, "the agent %s before it had an answer", a->result.describe);
        job_ctx_log(a->ctx, LOG_WARN, "%s", a->err);
        strbuf_t md = STRBUF_INIT;
        strbuf_appendf(&md, "I could not answer this: the agent %s%s before it had an answer. Its output ends with:\n\n",
                       a->result.describe, a->result.end == AGENT_TIMEOUT ? " (ask.timeout)" : "");
        const char *tail = or_empty(a->result.output_tail);
        size_t tl = strlen(tail);
        const char *from = tl > 1500 ? tail + tl - 1500 : tail;
        while (*from != '\0' && ((unsigned char)*from & 0xC0) == 0x80)
            from++;
        strbuf_t safe = STRBUF_INIT;
        ghmd_sanitize(&safe, from, strlen(from));
        ghmd_fence(&md, "text", or_empty(safe.data), "");
        strbuf_free(&safe);
        job_result_t r = end_with(a, JOB_ERR_PERMANENT, "confused", md.data);
        strbuf_free(&md);
        return r;
    }
    if (a->result.summary == NULL || a->result.summary[strspn(a->result.summary, " \t\r\n")] == '\0')
        return fail(a, JOB_ERR_PERMANENT, "the agent finished without an answer");
    /* an answer never changes the repository: what it changed goes with the work tree */
    workspace_changes_t ch;
    char werr[WORKSPACE_ERR_BYTES];
    if (workspace_changes(&ch, a->ws, NULL, werr, sizeof(werr)) == WORKSPACE_OK) {
        a->discarded = ch.count;
        workspace_changes_free(&ch);
    } else {
        job_ctx_log(a->ctx, LOG_WARN, "could not tell what the agent changed: %s", werr);
    }
    if (a->discarded > 0)
        job_ctx_log(a->ctx, LOG_INFO, "the agent changed %zu files while answering; they are thrown away",
                    a->discarded);
    return JOB_OK;
}

/* The commit the answer's links point at: the one the agent read. */
static int lines_at(void *arg, const char *path, size_t *lines)
{
    return workspace_tree_lines(lines, arg, path) == WORKSPACE_OK ? 0 : -1;
}

static job_result_t post_answer(ask_t *a)
{
    char blob_url[1024], where[256], err[WORKSPACE_ERR_BYTES];
    const char *web = a->cfg->github.url;
    size_t wl = strlen(web);
    while (wl > 0 && web[wl - 1] == '/')
        wl--;
    snprintf(blob_url, sizeof(blob_url), "%.*s/%s/blob/%s", (int)wl, web, a->j.r.repo, a->ws->base_oid);
    if (a->is_pr)
        snprintf(where, sizeof(where), "the pull request's head `%.7s`", a->ws->base_oid);
    else
        snprintf(where, sizeof(where), "`%s` at `%.7s`", a->ws->default_branch, a->ws->base_oid);
    workspace_tree_t *t = NULL;
    if (workspace_tree_open(&t, a->ws, a->ws->base_oid, err, sizeof(err)) != WORKSPACE_OK)
        job_ctx_log(a->ctx, LOG_WARN, "no permalinks: %s", err);
    answer_t in = {.question = a->in_thread ? NULL : a->question,
                   .text = a->result.summary,
                   .blob_url = t ? blob_url : NULL,
                   .lines = lines_at,
                   .lines_arg = t,
                   .where = where,
                   .discarded = a->discarded,
                   .inferred = a->inferred,
                   .handle = a->cfg->bot.handle,
                   .job_id = a->id};
    strbuf_t md = STRBUF_INIT;
    size_t links = answer_render(&md, &in);
    workspace_tree_close(t);
    if (jobgh_stopping(a->ctx)) {
        strbuf_free(&md);
        return stopped(a);
    }
    json_t *posted = find_reply(a); /* a crashed run that got this far posted it already */
    int rc = posted != NULL ? GHAPI_OK : post_reply(a, md.data, &posted);
    strbuf_free(&md);
    if (rc != GHAPI_OK) {
        json_decref(posted);
        return fail(a, jobgh_result(rc), "could not post the answer: %s", ghapi_error(a->j.gh));
    }
    const char *url = or_empty(json_string_value(json_object_get(posted, "html_url")));
    jobgh_set(a->ctx, JOB_F_ANSWER_URL, url);
    jobgh_set(a->ctx, JOB_F_OUTCOME, "answered");
    job_ctx_log(a->ctx, LOG_INFO, "answered: %s (%zu permalink%s)", url, links, links == 1 ? "" : "s");
    json_decref(posted);
    jobgh_react(&a->j, "rocket");
    return JOB_OK;
}

static job_result_t run(ask_t *a)
{
    job_result_t r;
    const char *done = jobgh_str(a->ctx, JOB_F_ANSWER_URL);
    if (done != NULL) {
        /* a retry after the answer went out: nothing left to say */
        job_ctx_log(a->ctx, LOG_INFO, "already answered: %s", done);
        return JOB_OK;
    }
    if ((r = read_settings(a)) != JOB_OK || (r = check_access(a)) != JOB_OK || (r = read_issue(a)) != JOB_OK)
        return r;
    if (a->is_pr && (r = read_pull(a)) != JOB_OK)
        return r;
    if ((r = choose_agent(a)) != JOB_OK || (r = checkout(a)) != JOB_OK)
        return r;
    if (jobgh_stopping(a->ctx))
        return stopped(a);
    load_instructions(a);
    if ((r = run_agent(a)) != JOB_OK)
        return r;
    return post_answer(a);
}

job_result_t askjob_run(job_ctx_t *ctx, char *err, size_t err_len)
{
    ask_t a = {0};
    a.user = (sandbox_user_t)SANDBOX_USER_INIT;
    a.image = (image_t)IMAGE_INIT;
    a.ctx = ctx;
    a.cfg = job_ctx_config(ctx);
    a.err = err;
    a.err_len = err_len;
    a.id = job_ctx_id(ctx);
    a.sender = jobgh_str(ctx, JOB_F_SENDER);
    a.question = jobgh_str(ctx, JOB_F_INSTRUCTION);
    a.comment_id = jobgh_int(ctx, JOB_F_COMMENT_ID);
    a.path = jobgh_str(ctx, JOB_F_PATH);
    a.line = jobgh_int(ctx, JOB_F_LINE);
    a.is_pr = strcmp(or_empty(jobgh_str(ctx, JOB_F_IS_PR)), "1") == 0;
    a.in_thread = strcmp(or_empty(jobgh_str(ctx, JOB_F_COMMENT_TYPE)), "review_comment") == 0 && a.comment_id != 0;
    a.inferred = strcmp(or_empty(jobgh_str(ctx, JOB_F_INFERRED)), "1") == 0;
    snprintf(a.bot, sizeof(a.bot), "%s[bot]", a.cfg->bot.handle);
    if (a.sender == NULL || a.question == NULL) {
        snprintf(err, err_len, "the job record lacks its sender or its question");
        return JOB_ERR_PERMANENT;
    }
    if (jobgh_open(&a.j, ctx, err, err_len) != 0)
        return JOB_ERR_PERMANENT;
    repoconfig_defaults(&a.rc);
    workspace_config_init(&a.wcfg, a.cfg, jobgh_str(ctx, JOB_F_DELIVERY), a.id);
    if (job_ctx_attempt(ctx) <= 1)
        jobgh_react(&a.j, "eyes");

    job_result_t r = run(&a);

    jobgh_drop_tree(ctx, &a.wcfg, a.id, a.ws); /* and with it whatever the agent changed */
    sandbox_user_release(&a.user);
    image_release(&a.image);
    if (a.token != NULL) {
        memset(a.token, 0, strlen(a.token));
        free(a.token);
    }
    repoinstr_free(&a.instr);
    agent_result_free(&a.result);
    json_decref(a.issue);
    json_decref(a.comments);
    json_decref(a.pr);
    repoconfig_free(&a.rc);
    jobgh_close(&a.j);
    return r;
}

void askjob_on_dead(job_ctx_t *ctx, const char *why)
{
    ask_t a = {0};
    char err[512];
    a.ctx = ctx;
    a.id = job_ctx_id(ctx);
    a.comment_id = jobgh_int(ctx, JOB_F_COMMENT_ID);
    a.in_thread = strcmp(or_empty(jobgh_str(ctx, JOB_F_COMMENT_TYPE)), "review_comment") == 0 && a.comment_id != 0;
    snprintf(a.bot, sizeof(a.bot), "%s[bot]", job_ctx_config(ctx)->bot.handle);
    if (jobgh_open(&a.j, ctx, err, sizeof(err)) != 0) {
        log_warn(NULL, a.id, "could not say the question went unanswered: %s", err);
        return;
    }
    strbuf_t md = STRBUF_INIT;
    strbuf_appendf(&md, "I gave up on this question (job %s) after its attempts ran out:\n\n> ", a.id);
    ghmd_sanitize(&md, why, strlen(why));
    end_with(&a, JOB_ERR_PERMANENT, "confused", md.data);
    strbuf_free(&md);
    jobgh_close(&a.j);
}
