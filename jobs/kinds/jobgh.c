/* jobgh — see jobgh.h. */
#include "jobgh.h"
#include "app/common/log.h"
#include "app/common/strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *jobgh_str(job_ctx_t *ctx, const char *name)
{
    const char *v = job_ctx_field(ctx, name);
    return v && v[0] ? v : NULL;
}

int64_t jobgh_int(job_ctx_t *ctx, const char *name)
{
    const char *v = job_ctx_field(ctx, name);
    return v ? strtoll(v, NULL, 10) : 0;
}

void jobgh_set(job_ctx_t *ctx, const char *name, const char *value)
{
    char err[256];
    if (job_ctx_set_field(ctx, name, value, err, sizeof(err)) != 0)
        job_ctx_log(ctx, LOG_WARN, "could not record %s: %s", name, err);
}

void jobgh_set_int(job_ctx_t *ctx, const char *name, int64_t value)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRId64, value);
    jobgh_set(ctx, name, buf);
}

job_result_t jobgh_result(int rc)
{
    return rc == GHAPI_ERR_RETRYABLE || rc == GHAPI_ERR_RATE_LIMITED ? JOB_ERR_RETRY : JOB_ERR_PERMANENT;
}

int jobgh_open(jobgh_t *j, job_ctx_t *ctx, char *err, size_t err_len)
{
    memset(j, 0, sizeof(*j));
    j->ctx = ctx;
    j->r.repo = jobgh_str(ctx, JOB_F_REPO);
    j->r.installation = jobgh_int(ctx, JOB_F_INSTALLATION);
    j->number = jobgh_int(ctx, JOB_F_NUMBER);
    if (j->r.repo == NULL || j->r.installation <= 0 || j->number <= 0) {
        snprintf(err, err_len, "the job record lacks repo, number or installation");
        return -1;
    }
    ghapi_options_t o;
    ghapi_options_from_config(&o, job_ctx_config(ctx), job_ctx_redis_url(ctx));
    char gerr[512];
    if (ghapi_app_new(&j->app, &o, gerr, sizeof(gerr)) != GHAPI_OK) {
        snprintf(err, err_len, "no GitHub client: %s", gerr);
        j->app = NULL;
        return -1;
    }
    if ((j->gh = ghapi_new(j->app)) == NULL) {
        snprintf(err, err_len, "no GitHub client: out of memory");
        ghapi_app_free(j->app);
        j->app = NULL;
        return -1;
    }
    ghapi_set_log_ids(j->gh, jobgh_str(ctx, JOB_F_DELIVERY), job_ctx_id(ctx));
    return 0;
}

void jobgh_close(jobgh_t *j)
{
    ghapi_free(j->gh);
    ghapi_app_free(j->app);
    j->gh = NULL;
    j->app = NULL;
}

static const char *const permission_order[] = {"none", "read", "triage", "write", "maintain", "admin"};

static int permission_rank(const char *p)
{
    for (int i = 0; i < 6; i++)
        if (p != NULL && strcmp(p, permission_order[i]) == 0)
            return i;
    return 0;
}

int jobgh_permission(jobgh_t *j, const char *login, const char *needed, char **perm)
{
    *perm = NULL;
    int rc = ghapi_collaborator_permission(perm, j->gh, &j->r, login);
    if (rc == GHAPI_ERR_NOT_FOUND) {
        if ((*perm = strdup("none")) == NULL)
            return GHAPI_ERR_PERMANENT;
        rc = GHAPI_OK;
    }
    if (rc != GHAPI_OK)
        return rc;
    int ok = permission_rank(*perm) >= permission_rank(needed);
    job_ctx_log(j->ctx, LOG_INFO, "%s has %s permission (%s needed)", login, *perm, needed);
    return ok;
}

int jobgh_pull_trust(jobgh_t *j, const json_t *pr, const char *needed, const char *bot, int *untrusted, char *why,
                     size_t why_len)
{
    *untrusted = 0;
    why[0] = '\0';
    json_t *head = json_object_get(json_object_get(pr, "head"), "repo");
    json_t *base = json_object_get(json_object_get(pr, "base"), "repo");
    const char *head_name = json_string_value(json_object_get(head, "full_name"));
    const char *base_name = json_string_value(json_object_get(base, "full_name"));
    if (head_name == NULL || base_name == NULL || strcasecmp(head_name, base_name) != 0) {
        *untrusted = 1;
        snprintf(why, why_len, "its code comes from %s%s", head_name ? "the fork " : "",
                 head_name ? head_name : "a repository that no longer exists");
        return 0;
    }
    const char *author = json_string_value(json_object_get(json_object_get(pr, "user"), "login"));
    if (author != NULL && bot != NULL && strcmp(author, bot) == 0)
        return 0;
    char *perm = NULL;
    int rc = author ? jobgh_permission(j, author, needed, &perm) : 0;
    if (rc < 0)
        return rc;
    if (rc == 0) {
        *untrusted = 1;
        snprintf(why, why_len, "its author @%s has %s permission here, not %s", author ? author : "(unknown)",
                 perm ? perm : "no", needed);
    }
    free(perm);
    return 0;
}

int jobgh_repo_config(jobgh_t *j, repoconfig_t *rc, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    int grc = ghapi_repo_config(&text, &len, j->gh, &j->r);
    if (grc != GHAPI_OK && grc != GHAPI_ERR_NOT_FOUND)
        return grc;
    repoconfig_free(rc); /* parse starts from fresh defaults of its own */
    int prc = repoconfig_parse(rc, text, text ? len : 0, err, err_len);
    free(text);
    return prc != 0 ? 1 : GHAPI_OK;
}

int jobgh_user_acquire(job_ctx_t *ctx, sandbox_user_t *u, char *err, size_t err_len)
{
    const config_t *cfg = job_ctx_config(ctx);
    if (sandbox_user_acquire(u, cfg->data_dir, (uid_t)cfg->sandbox.user_base, (unsigned)cfg->sandbox.users, err,
                             err_len) != 0)
        return -1;
    if (u->uid != 0)
        job_ctx_log(ctx, LOG_DEBUG, "sandboxed commands run as host user %d", (int)u->uid);
    return 0;
}

int jobgh_user_give(const sandbox_user_t *u, const char *work_tree, const char *scratch, char *err, size_t err_len)
{
    if (sandbox_user_give(u, work_tree, workspace_shared_paths, err, err_len) != 0)
        return -1;
    return scratch != NULL ? sandbox_user_give(u, scratch, NULL, err, err_len) : 0;
}

int jobgh_environment(job_ctx_t *ctx, const repoconfig_t *rc, image_t *img, agent_settings_t *s, const char **name,
                      char *err, size_t err_len)
{
    const config_t *cfg = job_ctx_config(ctx);
    const char *want = rc != NULL && rc->environment != NULL ? rc->environment : cfg->default_environment;
    *name = want;
    if (want == NULL)
        return 0;
    const config_environment_t *env = config_environment(cfg, want);
    const char *reference = env ? env->image : NULL;
    if (reference == NULL && image_reference_is_remote(want) && cfg->environments.allow_registry_images)
        reference = want;
    if (reference == NULL) {
        strbuf_t known = STRBUF_INIT;
        for (size_t i = 0; i < cfg->environments.count; i++)
            strbuf_appendf(&known, "%s%s", i ? ", " : "", cfg->environments.items[i].name);
        snprintf(err, err_len, "%s: environment '%s' is not one of this installation's (%s)%s", REPOCONFIG_PATH, want,
                 known.data ? known.data : "it has none",
                 image_reference_is_remote(want) ? "; it does not let repositories name registry images" : "");
        strbuf_free(&known);
        return -1;
    }
    if (s->isolation != SANDBOX_ISOLATE_BWRAP) {
        snprintf(err, err_len, "environment '%s' needs the sandbox (agent.isolation: bwrap)", want);
        return -1;
    }
    imagestore_opts_t o = {.data_dir = cfg->data_dir,
                           .refresh_seconds = cfg->environments.refresh_seconds,
                           .cache_bytes = cfg->environments.cache_bytes,
                           .job = job_ctx_id(ctx)};
    char why[IMAGESTORE_ERR_BYTES];
    if (image_prepare(img, &o, reference, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "environment '%s' (%s): %s", want, reference, why);
        return -1;
    }
    s->rootfs = img->rootfs;
    s->rootfs_env = (const char *const *)img->env;
    char what[256];
    snprintf(what, sizeof(what), "%s (%s)", want, img->digest);
    jobgh_set(ctx, JOB_F_ENVIRONMENT, what);
    job_ctx_log(ctx, LOG_INFO, "environment %s: %s, %s%s", want, img->digest,
                img->fetched ? "fetched" : "already fetched", img->unpacked ? " and unpacked" : "");
    return 0;
}

void jobgh_note_isolation(job_ctx_t *ctx, const agent_settings_t *s)
{
    if (s->isolation == SANDBOX_ISOLATE_NONE)
        job_ctx_log(ctx, LOG_WARN, "NO SANDBOX: agent.isolation is none, so the agent and the repository's commands "
                                   "run as patchbay, beside its secrets");
}

int jobgh_once(jobgh_t *j, const char *what)
{
    redisContext *c = job_ctx_redis(j->ctx);
    if (c == NULL)
        return 1;
    char key[512];
    snprintf(key, sizeof(key), "patchbay:once:%s:%s#%lld", what, j->r.repo, (long long)j->number);
    long long ttl = (long long)job_ctx_config(j->ctx)->workers.retention_days * 86400;
    redisReply *r = redisCommand(c, "SET %s 1 NX EX %lld", key, ttl);
    /* OK: we set it, first time; nil: it was there */
    int first = r == NULL || r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    return first;
}

void jobgh_react(jobgh_t *j, const char *content)
{
    ghapi_react_on_t on = GHAPI_REACT_ISSUE;
    int64_t id = j->number;
    int64_t comment = jobgh_int(j->ctx, JOB_F_COMMENT_ID);
    if (comment != 0) {
        const char *type = jobgh_str(j->ctx, JOB_F_COMMENT_TYPE);
        on = type && strcmp(type, "review_comment") == 0 ? GHAPI_REACT_REVIEW_COMMENT : GHAPI_REACT_ISSUE_COMMENT;
        id = comment;
    }
    if (ghapi_reaction_add(NULL, j->gh, &j->r, on, id, content) != GHAPI_OK)
        job_ctx_log(j->ctx, LOG_WARN, "no %s reaction: %s", content, ghapi_error(j->gh));
}

int jobgh_stopping(job_ctx_t *ctx)
{
    return job_ctx_stop_reason(ctx) != JOB_STOP_NONE;
}

static int hook_stop(void *ctx)
{
    return jobgh_stopping(ctx);
}

static void hook_pgid(void *ctx, pid_t pgid, int running)
{
    if (running)
        job_ctx_pgid_add(ctx, pgid);
    else
        job_ctx_pgid_remove(ctx, pgid);
}

agent_hooks_t jobgh_hooks(job_ctx_t *ctx)
{
    return (agent_hooks_t){hook_stop, hook_pgid, ctx};
}

void jobgh_drop_tree(job_ctx_t *ctx, const workspace_config_t *wcfg, const char *tree_id, workspace_t *ws)
{
    if (ws == NULL)
        return;
    char err[WORKSPACE_ERR_BYTES];
    if (workspace_remove(wcfg, tree_id, err, sizeof(err)) != WORKSPACE_OK)
        job_ctx_log(ctx, LOG_WARN, "workspace not removed: %s", err);
    workspace_free(ws);
}
