/*
 * ghcalls — the typed calls of ghapi.h: one small function per REST call
 * patchbay makes, each building the path and body, sending it through
 * ghapi_request (which owns authentication, retries and rate limits), and
 * handing back the answer. Paths put every caller-supplied segment through
 * path_segment, so an owner, branch or login cannot add a path or a query.
 */
#include "ghapi.h"
#include "app/common/strbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Percent-encodes what is not unreserved (RFC 3986), keeping '/' when
 * keep_slash (repository "owner/name", file paths). */
static void path_segment(strbuf_t *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~' || (keep_slash && c == '/'))
            strbuf_appendn(b, (const char *)p, 1);
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            strbuf_appendn(b, e, 3);
        }
    }
}

/* "/repos/<owner/name>" + suffix (printf-formatted) into b. */
static void repo_path(strbuf_t *b, const ghapi_repo_t *r)
{
    strbuf_append(b, "/repos/");
    path_segment(b, r->repo, 1);
}

static ghapi_call_t call_on(const ghapi_repo_t *r, const char *method, const char *path)
{
    ghapi_call_t c = {.method = method, .path = path, .auth = GHAPI_AUTH_INSTALLATION,
                      .installation = r->installation, .repo = r->repo};
    return c;
}

/* Sends c and hands the JSON answer to *out (may be NULL: dropped). */
static int json_call(json_t **out, ghapi_t *gh, const ghapi_call_t *c)
{
    ghapi_response_t resp;
    if (out != NULL)
        *out = NULL;
    int rc = ghapi_request(&resp, gh, c);
    if (rc == GHAPI_OK && out != NULL) {
        *out = resp.json;
        resp.json = NULL;
    }
    ghapi_response_free(&resp);
    return rc;
}

static int raw_call(char **out, size_t *len, ghapi_t *gh, ghapi_call_t *c)
{
    ghapi_response_t resp;
    c->flags |= GHAPI_CALL_RAW;
    *out = NULL;
    if (len)
        *len = 0;
    int rc = ghapi_request(&resp, gh, c);
    if (rc == GHAPI_OK) {
        *out = resp.raw;
        if (len)
            *len = resp.raw_len;
        resp.raw = NULL;
    }
    ghapi_response_free(&resp);
    return rc;
}

#define PATH_OR_FAIL(b)                                                                                                 \
    do {                                                                                                                \
        if ((b).truncated) {                                                                                            \
            strbuf_free(&(b));                                                                                          \
            return GHAPI_ERR_PERMANENT;                                                                                 \
        }                                                                                                               \
    } while (0)

/* ---- identity ---- */

int ghapi_app_get(json_t **out, ghapi_t *gh)
{
    ghapi_call_t c = {.method = "GET", .path = "/app", .auth = GHAPI_AUTH_APP};
    return json_call(out, gh, &c);
}

int ghapi_repo_installation(int64_t *out, ghapi_t *gh, const char *repo)
{
    strbuf_t p = STRBUF_INIT;
    strbuf_append(&p, "/repos/");
    path_segment(&p, repo, 1);
    strbuf_append(&p, "/installation");
    PATH_OR_FAIL(p);
    ghapi_call_t c = {.method = "GET", .path = p.data, .auth = GHAPI_AUTH_APP};
    json_t *j = NULL;
    int rc = json_call(&j, gh, &c);
    strbuf_free(&p);
    if (rc == GHAPI_OK) {
        json_t *id = json_object_get(j, "id");
        rc = json_is_integer(id) ? GHAPI_OK : GHAPI_ERR_PERMANENT;
        *out = json_integer_value(id);
    }
    json_decref(j);
    return rc;
}

int ghapi_bot_user(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *slug)
{
    strbuf_t p = STRBUF_INIT;
    strbuf_append(&p, "/users/");
    path_segment(&p, slug, 0);
    strbuf_append(&p, "%5Bbot%5D");
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    int rc = json_call(out, gh, &c);
    strbuf_free(&p);
    return rc;
}

int ghapi_bot_identity(char **name, char **email, ghapi_t *gh, const ghapi_repo_t *r, const char *slug)
{
    json_t *u = NULL;
    *name = *email = NULL;
    int rc = ghapi_bot_user(&u, gh, r, slug);
    if (rc != GHAPI_OK)
        return rc;
    json_t *id = json_object_get(u, "id");
    if (!json_is_integer(id)) {
        json_decref(u);
        return GHAPI_ERR_PERMANENT;
    }
    /* GitHub attributes commits to the bot by this noreply address */
    if (asprintf(name, "%s[bot]", slug) < 0)
        *name = NULL;
    if (asprintf(email, "%" PRId64 "+%s[bot]@users.noreply.github.com", (int64_t)json_integer_value(id), slug) < 0)
        *email = NULL;
    json_decref(u);
    if (*name == NULL || *email == NULL) {
        free(*name);
        free(*email);
        *name = *email = NULL;
        return GHAPI_ERR_PERMANENT;
    }
    return GHAPI_OK;
}

/* ---- repository, issues, comments ---- */

static int get_simple(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *suffix)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_append(&p, suffix);
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    int rc = json_call(out, gh, &c);
    strbuf_free(&p);
    return rc;
}

int ghapi_repo_get(json_t **out, ghapi_t *gh, const ghapi_repo_t *r)
{
    return get_simple(out, gh, r, "");
}

int ghapi_issue_get(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number)
{
    char suffix[48];
    snprintf(suffix, sizeof(suffix), "/issues/%" PRId64, number);
    return get_simple(out, gh, r, suffix);
}

int ghapi_issue_comments(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, size_t max)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/issues/%" PRId64 "/comments?per_page=100", number);
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    int rc = ghapi_get_all(out, gh, &c, max ? max : GHAPI_LIST_MAX);
    strbuf_free(&p);
    return rc;
}

int ghapi_collaborator_permission(char **out, ghapi_t *gh, const ghapi_repo_t *r, const char *login)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_append(&p, "/collaborators/");
    path_segment(&p, login, 0);
    strbuf_append(&p, "/permission");
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    json_t *j = NULL;
    *out = NULL;
    int rc = json_call(&j, gh, &c);
    strbuf_free(&p);
    if (rc == GHAPI_OK) {
        const char *perm = json_string_value(json_object_get(j, "permission"));
        if (perm == NULL || (*out = strdup(perm)) == NULL)
            rc = GHAPI_ERR_PERMANENT;
    }
    json_decref(j);
    return rc;
}

static int send_json(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *method, const char *path,
                     json_t *body, unsigned flags)
{
    ghapi_call_t c = call_on(r, method, path);
    c.body = body;
    c.flags = flags;
    return json_call(out, gh, &c);
}

int ghapi_comment_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, const char *body)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/issues/%" PRId64 "/comments", number);
    PATH_OR_FAIL(p);
    json_t *b = json_pack("{s:s}", "body", body);
    int rc = b ? send_json(out, gh, r, "POST", p.data, b, 0) : GHAPI_ERR_PERMANENT;
    json_decref(b);
    strbuf_free(&p);
    return rc;
}

int ghapi_comment_update(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t comment_id, const char *body,
                         unsigned flags)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/issues/comments/%" PRId64, comment_id);
    PATH_OR_FAIL(p);
    json_t *b = json_pack("{s:s}", "body", body);
    int rc = b ? send_json(out, gh, r, "PATCH", p.data, b, flags) : GHAPI_ERR_PERMANENT;
    json_decref(b);
    strbuf_free(&p);
    return rc;
}

int ghapi_reaction_add(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, ghapi_react_on_t on, int64_t id,
                       const char *content)
{
    static const char *const kinds[] = {[GHAPI_REACT_ISSUE] = "/issues/%" PRId64 "/reactions",
                                        [GHAPI_REACT_ISSUE_COMMENT] = "/issues/comments/%" PRId64 "/reactions",
                                        [GHAPI_REACT_REVIEW_COMMENT] = "/pulls/comments/%" PRId64 "/reactions"};
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    char suffix[80];
    snprintf(suffix, sizeof(suffix), kinds[on], id);
    strbuf_append(&p, suffix);
    PATH_OR_FAIL(p);
    json_t *b = json_pack("{s:s}", "content", content);
    int rc = b ? send_json(out, gh, r, "POST", p.data, b, 0) : GHAPI_ERR_PERMANENT;
    json_decref(b);
    strbuf_free(&p);
    return rc;
}

int ghapi_labels_add(ghapi_t *gh, const ghapi_repo_t *r, int64_t number, const char *const *labels, size_t n)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/issues/%" PRId64 "/labels", number);
    PATH_OR_FAIL(p);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, json_string(labels[i]));
    json_t *b = arr ? json_pack("{s:o}", "labels", arr) : NULL;
    int rc = b ? send_json(NULL, gh, r, "POST", p.data, b, 0) : GHAPI_ERR_PERMANENT;
    json_decref(b);
    strbuf_free(&p);
    return rc;
}

int ghapi_label_remove(ghapi_t *gh, const ghapi_repo_t *r, int64_t number, const char *label)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/issues/%" PRId64 "/labels/", number);
    path_segment(&p, label, 0);
    PATH_OR_FAIL(p);
    int rc = send_json(NULL, gh, r, "DELETE", p.data, NULL, 0);
    strbuf_free(&p);
    return rc;
}

/* ---- contents ---- */

int ghapi_contents_get(char **out, size_t *len, ghapi_t *gh, const ghapi_repo_t *r, const char *path, const char *ref)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_append(&p, "/contents/");
    path_segment(&p, path, 1);
    if (ref != NULL) {
        strbuf_append(&p, "?ref=");
        path_segment(&p, ref, 0);
    }
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    /* the raw media type: the file's bytes, not base64 inside JSON */
    c.accept = "application/vnd.github.raw+json";
    int rc = raw_call(out, len, gh, &c);
    strbuf_free(&p);
    return rc;
}

int ghapi_repo_config(char **out, size_t *len, ghapi_t *gh, const ghapi_repo_t *r)
{
    /* the default branch, never a pull request's branch an outsider controls */
    return ghapi_contents_get(out, len, gh, r, GHAPI_REPO_CONFIG_PATH, NULL);
}

/* ---- pull requests, reviews, checks ---- */

int ghapi_pull_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *head, const char *base,
                      const char *title, const char *body, int draft)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_append(&p, "/pulls");
    PATH_OR_FAIL(p);
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:b}", "head", head, "base", base, "title", title, "body", body,
                          "draft", draft);
    int rc = b ? send_json(out, gh, r, "POST", p.data, b, 0) : GHAPI_ERR_PERMANENT;
    json_decref(b);
    strbuf_free(&p);
    return rc;
}

int ghapi_pull_get(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number)
{
    char suffix[48];
    snprintf(suffix, sizeof(suffix), "/pulls/%" PRId64, number);
    return get_simple(out, gh, r, suffix);
}

int ghapi_pull_find_by_head(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *head, const char *state)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_append(&p, "/pulls?state=");
    path_segment(&p, state ? state : "open", 0);
    strbuf_append(&p, "&head=");
    /* head is "owner:branch", owner being the repository's own */
    const char *slash = strchr(r->repo, '/');
    char owner[128];
    snprintf(owner, sizeof(owner), "%.*s", slash ? (int)(slash - r->repo) : 0, r->repo);
    path_segment(&p, owner, 0);
    strbuf_append(&p, ":");
    path_segment(&p, head, 0);
    strbuf_append(&p, "&per_page=100");
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    c.flags = GHAPI_CALL_NO_ETAG; /* asked right after creating one: never a stale list */
    json_t *list = NULL;
    *out = NULL;
    int rc = json_call(&list, gh, &c);
    strbuf_free(&p);
    if (rc == GHAPI_OK) {
        if (!json_is_array(list))
            rc = GHAPI_ERR_PERMANENT;
        else if (json_array_size(list) == 0)
            rc = GHAPI_ERR_NOT_FOUND;
        else
            *out = json_incref(json_array_get(list, 0)); /* newest first */
    }
    json_decref(list);
    return rc;
}

int ghapi_pull_files(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/pulls/%" PRId64 "/files?per_page=100", number);
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    /* GitHub lists at most 3000 files of a pull request */
    int rc = ghapi_get_all(out, gh, &c, 3000);
    strbuf_free(&p);
    return rc;
}

int ghapi_pull_diff(char **out, size_t *len, ghapi_t *gh, const ghapi_repo_t *r, int64_t number)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/pulls/%" PRId64, number);
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    c.accept = "application/vnd.github.diff";
    int rc = raw_call(out, len, gh, &c);
    strbuf_free(&p);
    return rc;
}

int ghapi_review_comment_reply(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, int64_t comment_id,
                               const char *body)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/pulls/%" PRId64 "/comments/%" PRId64 "/replies", number, comment_id);
    PATH_OR_FAIL(p);
    json_t *b = json_pack("{s:s}", "body", body);
    int rc = b ? send_json(out, gh, r, "POST", p.data, b, 0) : GHAPI_ERR_PERMANENT;
    json_decref(b);
    strbuf_free(&p);
    return rc;
}

int ghapi_review_comments(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/pulls/%" PRId64 "/comments?per_page=100", number);
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    int rc = ghapi_get_all(out, gh, &c, GHAPI_LIST_MAX);
    strbuf_free(&p);
    return rc;
}

int ghapi_review_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, json_t *review)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/pulls/%" PRId64 "/reviews", number);
    PATH_OR_FAIL(p);
    int rc = send_json(out, gh, r, "POST", p.data, review, 0);
    strbuf_free(&p);
    return rc;
}

int ghapi_reviews_list(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/pulls/%" PRId64 "/reviews?per_page=100", number);
    PATH_OR_FAIL(p);
    ghapi_call_t c = call_on(r, "GET", p.data);
    int rc = ghapi_get_all(out, gh, &c, GHAPI_LIST_MAX);
    strbuf_free(&p);
    return rc;
}

int ghapi_check_run_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, json_t *fields)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_append(&p, "/check-runs");
    PATH_OR_FAIL(p);
    int rc = send_json(out, gh, r, "POST", p.data, fields, 0);
    strbuf_free(&p);
    return rc;
}

int ghapi_check_run_update(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t id, json_t *fields)
{
    strbuf_t p = STRBUF_INIT;
    repo_path(&p, r);
    strbuf_appendf(&p, "/check-runs/%" PRId64, id);
    PATH_OR_FAIL(p);
    int rc = send_json(out, gh, r, "PATCH", p.data, fields, 0);
    strbuf_free(&p);
    return rc;
}

int ghapi_manifest_conversion(json_t **out, ghapi_t *gh, const char *code)
{
    strbuf_t p = STRBUF_INIT;
    strbuf_append(&p, "/app-manifests/");
    path_segment(&p, code, 0);
    strbuf_append(&p, "/conversions");
    PATH_OR_FAIL(p);
    ghapi_call_t c = {.method = "POST", .path = p.data, .auth = GHAPI_AUTH_NONE, .flags = GHAPI_CALL_NO_ETAG};
    int rc = json_call(out, gh, &c);
    strbuf_free(&p);
    return rc;
}

/* ---- the App's webhook deliveries ---- */

int ghapi_deliveries_list(json_t **out, ghapi_t *gh, int64_t since_s, size_t max)
{
    json_t *all = json_array();
    char *next = NULL;
    int rc = GHAPI_OK;
    *out = NULL;
    if (all == NULL)
        return GHAPI_ERR_PERMANENT;
    ghapi_call_t c = {.method = "GET", .path = "/app/hook/deliveries?per_page=100", .auth = GHAPI_AUTH_APP,
                      .flags = GHAPI_CALL_NO_ETAG};
    /* newest first, cursor pagination: stop at the first one older than since */
    for (int done = 0; !done;) {
        ghapi_response_t r;
        if ((rc = ghapi_request(&r, gh, &c)) != GHAPI_OK)
            break;
        size_t i;
        json_t *d;
        json_array_foreach(r.json, i, d)
        {
            int64_t when = 0;
            const char *at = json_string_value(json_object_get(d, "delivered_at"));
            if (at != NULL && ghapi_time_parse(&when, at) == 0 && when < since_s) {
                done = 1;
                break;
            }
            if (json_array_size(all) >= max) {
                done = 1;
                break;
            }
            json_array_append(all, d);
        }
        free(next);
        next = r.next;
        r.next = NULL;
        ghapi_response_free(&r);
        if (next == NULL)
            break;
        c.path = next;
    }
    free(next);
    if (rc != GHAPI_OK) {
        json_decref(all);
        return rc;
    }
    *out = all;
    return GHAPI_OK;
}

int ghapi_delivery_redeliver(ghapi_t *gh, int64_t delivery_id)
{
    char path[96];
    snprintf(path, sizeof(path), "/app/hook/deliveries/%" PRId64 "/attempts", delivery_id);
    ghapi_call_t c = {.method = "POST", .path = path, .auth = GHAPI_AUTH_APP};
    return json_call(NULL, gh, &c);
}
