/*
 * router — see router.h. The shape of the work: one jscan pass over the body
 * for every path any handler might need, then a table lookup on the event name
 * and a handler of a dozen lines per event.
 */
#include "router.h"
#include "jscan.h"
#include "mention.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The routing paths, scanned once. Keep P_* and route_paths in the same order. */
enum {
    P_ACTION,
    P_SENDER_LOGIN,
    P_SENDER_TYPE,
    P_INSTALLATION_ID,
    P_REPO_FULL_NAME,
    P_ISSUE_NUMBER,
    P_ISSUE_TITLE,
    P_ISSUE_PULL_REQUEST,
    P_ISSUE_USER_LOGIN,
    P_ISSUE_UPDATED_AT,
    P_COMMENT_ID,
    P_COMMENT_BODY,
    P_COMMENT_ASSOCIATION,
    P_COMMENT_PATH,
    P_COMMENT_LINE,
    P_LABEL_NAME,
    P_PR_NUMBER,
    P_PR_TITLE,
    P_PR_DRAFT,
    P_PR_USER_LOGIN,
    P_PR_ASSOCIATION,
    P_PR_HEAD_REF,
    P_PR_HEAD_SHA,
    P_SENDER_ID,
    P_REPO_PRIVATE,
    P_ISSUE_BODY,
    P_ISSUE_COMMENTS,
    P__COUNT
};

static const char *const route_paths[P__COUNT] = {
    [P_ACTION] = "action",
    [P_SENDER_LOGIN] = "sender.login",
    [P_SENDER_TYPE] = "sender.type",
    [P_INSTALLATION_ID] = "installation.id",
    [P_REPO_FULL_NAME] = "repository.full_name",
    [P_ISSUE_NUMBER] = "issue.number",
    [P_ISSUE_TITLE] = "issue.title",
    [P_ISSUE_PULL_REQUEST] = "issue.pull_request",
    [P_ISSUE_USER_LOGIN] = "issue.user.login",
    [P_ISSUE_UPDATED_AT] = "issue.updated_at",
    [P_COMMENT_ID] = "comment.id",
    [P_COMMENT_BODY] = "comment.body",
    [P_COMMENT_ASSOCIATION] = "comment.author_association",
    [P_COMMENT_PATH] = "comment.path",
    [P_COMMENT_LINE] = "comment.line",
    [P_LABEL_NAME] = "label.name",
    [P_PR_NUMBER] = "pull_request.number",
    [P_PR_TITLE] = "pull_request.title",
    [P_PR_DRAFT] = "pull_request.draft",
    [P_PR_USER_LOGIN] = "pull_request.user.login",
    [P_PR_ASSOCIATION] = "pull_request.author_association",
    [P_PR_HEAD_REF] = "pull_request.head.ref",
    [P_PR_HEAD_SHA] = "pull_request.head.sha",
    [P_SENDER_ID] = "sender.id",
    [P_REPO_PRIVATE] = "repository.private",
    [P_ISSUE_BODY] = "issue.body",
    [P_ISSUE_COMMENTS] = "issue.comments",
};

typedef struct {
    router_result_t *out;
    const router_rules_t *rules;
    const char *event;
    jscan_value_t v[P__COUNT];
    char *scratch;
    size_t scratch_cap, scratch_used;
    const char *action; /* decoded */
    const char *sender;
    const char *comment_body; /* decoded by find_mention */
} route_ctx_t;

static void set_reason(router_result_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(router_result_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
}

static int ignore(route_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ignore(route_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->reason, sizeof(c->out->reason), fmt, ap);
    va_end(ap);
    c->out->outcome = ROUTE_IGNORED;
    return ROUTER_OK;
}

static int malformed(route_ctx_t *c, int path, const char *want)
{
    set_reason(c->out, "payload field %s is %s, expected %s", route_paths[path],
               c->v[path].type == JSCAN_ABSENT ? "missing" : "of the wrong type", want);
    return ROUTER_ERR_MALFORMED;
}

/* Decodes a string value into scratch; NULL when absent, not a string, or not
 * valid UTF-8 (the caller decides whether that is malformed). */
static const char *decode(route_ctx_t *c, int path)
{
    const jscan_value_t *v = &c->v[path];
    if (v->type != JSCAN_STRING)
        return NULL;
    size_t room = c->scratch_cap - c->scratch_used;
    if (room < v->len + 1)
        return NULL; /* cannot happen with the documented scratch size */
    char *dst = c->scratch + c->scratch_used;
    long n = jscan_string_decode(v, dst, room);
    if (n < 0)
        return NULL;
    c->scratch_used += (size_t)n + 1;
    return dst;
}

static const char *require_string(route_ctx_t *c, int path, int *err)
{
    const char *s = decode(c, path);
    if (s == NULL && *err == ROUTER_OK) {
        if (c->v[path].type == JSCAN_STRING) {
            set_reason(c->out, "payload field %s is not valid UTF-8 text (or holds a NUL character)",
                       route_paths[path]);
            *err = ROUTER_ERR_MALFORMED;
        } else {
            *err = malformed(c, path, "a string");
        }
    }
    return s;
}

/* Positive integers (ids, numbers) are kept as their decimal text, checked. */
static const char *require_uint(route_ctx_t *c, int path, int *err)
{
    int64_t n;
    if (c->v[path].type != JSCAN_NUMBER || jscan_int64(&c->v[path], &n) != 0) {
        if (*err == ROUTER_OK)
            *err = malformed(c, path, "a non-negative integer");
        return NULL;
    }
    size_t room = c->scratch_cap - c->scratch_used;
    int w = snprintf(c->scratch + c->scratch_used, room, "%" PRId64, n);
    assert(w > 0 && (size_t)w < room);
    const char *s = c->scratch + c->scratch_used;
    c->scratch_used += (size_t)w + 1;
    return s;
}

/* A non-negative integer kept as text when the payload has one; NULL otherwise. */
static const char *optional_uint(route_ctx_t *c, int path)
{
    int err = ROUTER_OK;
    if (c->v[path].type != JSCAN_NUMBER)
        return NULL;
    const char *s = require_uint(c, path, &err);
    return err == ROUTER_OK ? s : NULL;
}

static int is_bot_login(const route_ctx_t *c, const char *login)
{
    size_t hl = strlen(c->rules->handle), ll = strlen(login);
    return ll == hl + 5 && strncasecmp(login, c->rules->handle, hl) == 0 && strcmp(login + hl, "[bot]") == 0;
}

/* The sender rules every trigger shares: never a bot, never ourselves. */
static int sender_refused(route_ctx_t *c)
{
    if (is_bot_login(c, c->sender))
        return ignore(c, "sent by patchbay itself"), 1;
    if (jscan_string_equals(&c->v[P_SENDER_TYPE], "Bot"))
        return ignore(c, "sender %.60s is a bot", c->sender), 1;
    return 0;
}

static int association_refused(route_ctx_t *c, int path)
{
    const char *assoc = decode(c, path);
    if (assoc == NULL || !config_list_contains(c->rules->associations, assoc))
        return ignore(c, "author_association %.40s of %.60s is not allowed to trigger patchbay",
                      assoc ? assoc : "(none)", c->sender),
               1;
    return 0;
}

static void job(route_ctx_t *c, job_kind_t kind)
{
    c->out->outcome = ROUTE_JOB;
    c->out->kind = kind;
    job_fields_add(&c->out->fields, JOB_F_KIND, job_kind_name(kind));
}

static void add(route_ctx_t *c, const char *name, const char *value)
{
    if (value != NULL)
        job_fields_add(&c->out->fields, name, value);
}

/* Fields every job carries; fails when the payload lacks them. */
static int add_common(route_ctx_t *c, int number_path)
{
    if (c->v[P_INSTALLATION_ID].type == JSCAN_ABSENT) {
        /* a repository or organization webhook, not the App's: there is no
         * installation to act as, and nothing GitHub should retry */
        c->out->fields.count = 0;
        return ignore(c, "no installation in the payload: deliveries must come from the GitHub App's webhook, "
                         "not a repository webhook");
    }
    int err = ROUTER_OK;
    const char *repo = require_string(c, P_REPO_FULL_NAME, &err);
    const char *installation = require_uint(c, P_INSTALLATION_ID, &err);
    const char *number = require_uint(c, number_path, &err);
    if (err != ROUTER_OK)
        return err;
    add(c, JOB_F_EVENT, c->event);
    add(c, JOB_F_ACTION, c->action);
    add(c, JOB_F_REPO, repo);
    add(c, JOB_F_NUMBER, number);
    add(c, JOB_F_INSTALLATION, installation);
    add(c, JOB_F_SENDER, c->sender);
    add(c, JOB_F_SENDER_ID, optional_uint(c, P_SENDER_ID));
    if (c->v[P_REPO_PRIVATE].type == JSCAN_TRUE || c->v[P_REPO_PRIVATE].type == JSCAN_FALSE)
        add(c, JOB_F_PRIVATE, c->v[P_REPO_PRIVATE].type == JSCAN_TRUE ? "1" : "0");
    return ROUTER_OK;
}

/* The issue as the webhook showed it: what a fix job would otherwise read
 * from GitHub. A null body is an empty one. */
static void add_issue(route_ctx_t *c)
{
    add(c, JOB_F_ISSUE_BODY, c->v[P_ISSUE_BODY].type == JSCAN_NULL ? "" : decode(c, P_ISSUE_BODY));
    add(c, JOB_F_ISSUE_COMMENTS, optional_uint(c, P_ISSUE_COMMENTS));
}

/* The event's own identity (JOB_F_EVENT_ID), after the prefix
 * "<event>.<action>:<repo>": what GitHub would never send twice as two
 * events. Every part is bounded, so the whole fits JOB_EVENT_ID_MAX_BYTES;
 * free text (a label) goes last, where it cannot be mistaken for another
 * part. */
static void identify(route_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void identify(route_ctx_t *c, const char *fmt, ...)
{
    char *id = c->out->event_id;
    size_t cap = sizeof(c->out->event_id);
    int n = snprintf(id, cap, "%.63s.%.40s:%.140s", c->event, c->action,
                     job_fields_get(&c->out->fields, JOB_F_REPO));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(id + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    add(c, JOB_F_EVENT_ID, id);
}

static const char *span_dup(route_ctx_t *c, const char *p, size_t n)
{
    size_t room = c->scratch_cap - c->scratch_used;
    assert(room > n);
    char *dst = c->scratch + c->scratch_used;
    memcpy(dst, p, n);
    dst[n] = '\0';
    c->scratch_used += n + 1;
    return dst;
}

/* A copy of s in scratch; NULL when it does not fit (the job then reads it
 * from GitHub). */
static const char *copy_or_null(route_ctx_t *c, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return s != NULL && c->scratch_cap - c->scratch_used > n ? span_dup(c, s, n) : NULL;
}

/* The instruction as a string of its own. It is a span of the comment body
 * that decode() wrote into scratch, and the body is not read again: ending
 * the span in place costs nothing, where a copy could need as much scratch
 * again as the body took (a long comment with a short payload around it
 * would not fit). */
static const char *instruction_of(const mention_t *m)
{
    if (m->instruction_len == 0)
        return "";
    ((char *)m->instruction)[m->instruction_len] = '\0';
    return m->instruction;
}

/* A mention in a comment: shared by issue comments and review comments. The
 * comment body is only decoded once the cheaper rules have let it through. */
static int find_mention(route_ctx_t *c, mention_t *m, int *err)
{
    const char *body = require_string(c, P_COMMENT_BODY, err);
    if (body == NULL)
        return MENTION_NONE;
    c->comment_body = body;
    mention_find(body, strlen(body), c->rules->handle, m);
    return m->command;
}

/* What issue comments and review comments share: a new comment, from a
 * sender who may trigger patchbay, that mentions the handle. ROUTER_OK with
 * *go set and m, the comment id and the issue's or pull request's author
 * filled when the event goes on; ROUTER_OK with *go 0 when it is ignored (the
 * reason is set); ROUTER_ERR_MALFORMED when a field is missing. */
static int comment_trigger(route_ctx_t *c, const char *event, int author_path, mention_t *m, const char **comment_id,
                           const char **author, int *go)
{
    *go = 0;
    if (strcmp(c->action, "created") != 0)
        return ignore(c, "%s.%.40s is not a trigger", event, c->action);
    if (sender_refused(c))
        return ROUTER_OK;
    int err = ROUTER_OK;
    if (find_mention(c, m, &err) == MENTION_NONE)
        return err != ROUTER_OK ? err : ignore(c, "no mention of @%s", c->rules->handle);
    if (association_refused(c, P_COMMENT_ASSOCIATION))
        return ROUTER_OK;
    *comment_id = require_uint(c, P_COMMENT_ID, &err);
    *author = require_string(c, author_path, &err);
    *go = err == ROUTER_OK;
    return err;
}

/* A question asked: an ask job, or the usage when "ask" came without one. */
static void ask(route_ctx_t *c, const mention_t *m)
{
    if (m->instruction_len > 0) {
        job(c, JOB_KIND_ASK);
        /* the question rule chose the kind, not the person: the answer says how to ask for a change instead */
        if (m->command != MENTION_ASK)
            add(c, JOB_F_INFERRED, "1");
        return;
    }
    job(c, JOB_KIND_HELP);
    add(c, JOB_F_MESSAGE, "`ask` needs a question after it.");
}

/* A fix request that reads as a question (mention.h's rule) is an ask,
 * where the person did not say "fix" and the alternative is a fix of its
 * own (an issue, or a pull request patchbay did not open). On patchbay's
 * own pull requests every request is a follow-up unless "ask" is said:
 * "can you also handle floats?" there asks for more commits. */
static int reads_as_question(const mention_t *m)
{
    return m->command == MENTION_FIX && !m->worded && mention_is_question(m->instruction, m->instruction_len);
}

static int route_issue_comment(route_ctx_t *c)
{
    mention_t m;
    const char *comment_id, *author;
    int go, err = comment_trigger(c, "issue_comment", P_ISSUE_USER_LOGIN, &m, &comment_id, &author, &go);
    if (!go)
        return err;
    int is_pr = c->v[P_ISSUE_PULL_REQUEST].type == JSCAN_OBJECT;
    int ours = is_pr && is_bot_login(c, author);

    switch (m.command) {
    case MENTION_HELP: job(c, JOB_KIND_HELP); break;
    case MENTION_STOP: job(c, JOB_KIND_STOP); break;
    case MENTION_REVIEW:
        job(c, is_pr ? JOB_KIND_REVIEW : JOB_KIND_HELP);
        if (!is_pr)
            add(c, JOB_F_MESSAGE, "`review` works on pull requests; this is an issue.");
        break;
    case MENTION_ASK: ask(c, &m); break;
    default:
        if (!ours && reads_as_question(&m))
            ask(c, &m);
        else
            job(c, ours ? JOB_KIND_FOLLOWUP : JOB_KIND_FIX);
        break;
    }
    if ((err = add_common(c, P_ISSUE_NUMBER)) != ROUTER_OK)
        return err;
    add(c, JOB_F_IS_PR, is_pr ? "1" : "0");
    add(c, JOB_F_COMMENT_ID, comment_id);
    add(c, JOB_F_COMMENT_TYPE, "issue_comment");
    identify(c, ":%s", comment_id);
    /* copied before instruction_of ends the instruction inside it */
    add(c, JOB_F_COMMENT_BODY, copy_or_null(c, c->comment_body));
    add(c, JOB_F_INSTRUCTION, instruction_of(&m));
    add(c, JOB_F_TITLE, decode(c, P_ISSUE_TITLE));
    add_issue(c);
    return ROUTER_OK;
}

static int route_issues(route_ctx_t *c)
{
    if (strcmp(c->action, "labeled") != 0)
        return ignore(c, "issues.%.40s is not a trigger", c->action);
    if (sender_refused(c))
        return ROUTER_OK;
    int err = ROUTER_OK;
    const char *label = require_string(c, P_LABEL_NAME, &err);
    if (err != ROUTER_OK)
        return err;
    /* Only people with triage access or more can label, so the label itself
     * is the permission check; issues events carry no sender association. */
    if (!config_list_contains(c->rules->labels, label))
        return ignore(c, "label %.60s is not a trigger label", label);
    job(c, JOB_KIND_FIX);
    if ((err = add_common(c, P_ISSUE_NUMBER)) != ROUTER_OK)
        return err;
    add(c, JOB_F_IS_PR, "0");
    add(c, JOB_F_LABEL, label);
    add(c, JOB_F_TITLE, decode(c, P_ISSUE_TITLE));
    add_issue(c);
    /* the same label may come off and go on again: each time is its own event,
     * and the issue's updated_at is when it happened */
    const char *when = decode(c, P_ISSUE_UPDATED_AT);
    if (when != NULL)
        identify(c, "#%s:%.40s:%.100s", job_fields_get(&c->out->fields, JOB_F_NUMBER), when, label);
    return ROUTER_OK;
}

static int route_review_comment(route_ctx_t *c)
{
    mention_t m;
    const char *comment_id, *author;
    int go, err = comment_trigger(c, "pull_request_review_comment", P_PR_USER_LOGIN, &m, &comment_id, &author, &go);
    if (!go)
        return err;

    int ours = is_bot_login(c, author);
    switch (m.command) {
    case MENTION_HELP: job(c, JOB_KIND_HELP); break;
    case MENTION_STOP: job(c, JOB_KIND_STOP); break;
    case MENTION_REVIEW: job(c, JOB_KIND_REVIEW); break;
    case MENTION_ASK: ask(c, &m); break;
    default:
        if (!ours && reads_as_question(&m)) {
            ask(c, &m);
            break;
        }
        if (!ours)
            return ignore(c, "a review comment mention acts only on patchbay's own pull requests (or asks a "
                             "question: `ask`)");
        job(c, JOB_KIND_FOLLOWUP);
        break;
    }
    if ((err = add_common(c, P_PR_NUMBER)) != ROUTER_OK)
        return err;
    add(c, JOB_F_IS_PR, "1");
    add(c, JOB_F_COMMENT_ID, comment_id);
    add(c, JOB_F_COMMENT_TYPE, "review_comment");
    identify(c, ":%s", comment_id);
    add(c, JOB_F_INSTRUCTION, instruction_of(&m));
    add(c, JOB_F_PATH, decode(c, P_COMMENT_PATH));
    if (c->v[P_COMMENT_LINE].type == JSCAN_NUMBER) {
        int line_err = ROUTER_OK;
        add(c, JOB_F_LINE, require_uint(c, P_COMMENT_LINE, &line_err));
    }
    add(c, JOB_F_HEAD_SHA, decode(c, P_PR_HEAD_SHA));
    add(c, JOB_F_HEAD_REF, decode(c, P_PR_HEAD_REF));
    add(c, JOB_F_TITLE, decode(c, P_PR_TITLE));
    return ROUTER_OK;
}

static int route_pull_request(route_ctx_t *c)
{
    /* synchronize (a push) reviews again only where the repository asks for it */
    if (strcmp(c->action, "opened") != 0 && strcmp(c->action, "ready_for_review") != 0 &&
        strcmp(c->action, "synchronize") != 0)
        return ignore(c, "pull_request.%.40s is not a trigger", c->action);
    if (sender_refused(c))
        return ROUTER_OK;
    int err = ROUTER_OK;
    const char *author = require_string(c, P_PR_USER_LOGIN, &err);
    const char *head_sha = require_string(c, P_PR_HEAD_SHA, &err);
    if (err != ROUTER_OK)
        return err;
    if (is_bot_login(c, author))
        return ignore(c, "patchbay does not review its own pull requests");
    if (association_refused(c, P_PR_ASSOCIATION))
        return ROUTER_OK;
    /* Whether the repository wants automatic reviews lives in its own
     * .github/patchbay.yml, which only a worker reads; the job says "auto". */
    job(c, JOB_KIND_REVIEW);
    if ((err = add_common(c, P_PR_NUMBER)) != ROUTER_OK)
        return err;
    add(c, JOB_F_IS_PR, "1");
    add(c, JOB_F_AUTO, "1");
    add(c, JOB_F_DRAFT, c->v[P_PR_DRAFT].type == JSCAN_TRUE ? "1" : "0");
    add(c, JOB_F_HEAD_SHA, head_sha);
    add(c, JOB_F_HEAD_REF, decode(c, P_PR_HEAD_REF));
    add(c, JOB_F_TITLE, decode(c, P_PR_TITLE));
    identify(c, "#%s:%.64s", job_fields_get(&c->out->fields, JOB_F_NUMBER), head_sha);
    return ROUTER_OK;
}

typedef struct {
    const char *event;
    int (*route)(route_ctx_t *c);
} route_entry_t;

static const route_entry_t route_table[] = {
    {"issue_comment", route_issue_comment},
    {"issues", route_issues},
    {"pull_request_review_comment", route_review_comment},
    {"pull_request", route_pull_request},
};

/* Whether "@<handle>" appears anywhere in the raw body, in any case. A
 * comment can mention patchbay only if its body, and so the payload, holds
 * those bytes: JSON escapes only quotes, backslashes and control characters
 * (GitHub also "<", ">", "&"), never '@' or a handle's letters, digits and
 * hyphens. */
static int may_mention(const char *body, size_t len, const char *handle)
{
    size_t hl = strlen(handle);
    const char *p = body, *end = body + len;
    while (hl > 0 && (p = memchr(p, '@', (size_t)(end - p))) != NULL) {
        if ((size_t)(end - p - 1) >= hl && strncasecmp(p + 1, handle, hl) == 0)
            return 1;
        p++;
    }
    return 0;
}

int router_route(router_result_t *out, const router_rules_t *rules, const char *event, const char *body, size_t body_len,
                 char *scratch, size_t scratch_cap)
{
    assert(scratch_cap >= body_len + ROUTER_SCRATCH_EXTRA);
    memset(out, 0, sizeof(*out));
    route_ctx_t c = {.out = out, .rules = rules, .event = event, .scratch = scratch, .scratch_cap = scratch_cap};

    /* Most deliveries of a busy organization are comments that do not
     * mention patchbay, and a payload is some 15 KB of JSON that scanning
     * would cost a sixth of the delivery's CPU (the HMAC, the socket and
     * the answer the rest): such a comment is ignored without it. What it
     * cannot tell (a shape GitHub never sends) it could only have ignored;
     * a body that is not braced like an object keeps its 400. */
    if ((strcmp(event, "issue_comment") == 0 || strcmp(event, "pull_request_review_comment") == 0) &&
        jscan_braced(body, body_len) && !may_mention(body, body_len, rules->handle))
        return ignore(&c, "no mention of @%s", rules->handle);

    size_t err_at = 0;
    int rc = jscan_scan(body, body_len, route_paths, P__COUNT, c.v, &err_at);
    if (rc == JSCAN_ERR_NOT_OBJECT) {
        set_reason(out, "payload is not a JSON object");
        return ROUTER_ERR_MALFORMED;
    }
    if (rc != JSCAN_OK) {
        set_reason(out, "payload is not valid JSON (at byte %zu)", err_at);
        return ROUTER_ERR_MALFORMED;
    }

    const route_entry_t *entry = NULL;
    for (size_t i = 0; i < sizeof(route_table) / sizeof(route_table[0]); i++)
        if (strcmp(route_table[i].event, event) == 0)
            entry = &route_table[i];
    if (entry == NULL)
        return ignore(&c, "event %.60s is not a trigger", event);

    /* the event name comes from a header buffer the caller may not keep */
    c.event = span_dup(&c, event, strlen(event));
    int err = ROUTER_OK;
    c.action = require_string(&c, P_ACTION, &err);
    c.sender = require_string(&c, P_SENDER_LOGIN, &err);
    if (err != ROUTER_OK)
        return err;
    return entry->route(&c);
}
