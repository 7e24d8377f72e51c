/* router: DESIGN.md's trigger and sender rules as a table of deliveries. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook/router.h"

static char *labels_items[] = {"patchbay", "ai-fix", NULL};
static char *assoc_items[] = {"OWNER", "MEMBER", "COLLABORATOR", NULL};
static const config_list_t labels = {labels_items, 2};
static const config_list_t assocs = {assoc_items, 3};
static const router_rules_t rules = {"patchbay", &labels, &assocs};

/* A compact issue_comment with the fields routing reads. */
#define IC(action, body, assoc, sender, stype, extra)                                                                  \
    "{\"action\":\"" action "\",\"issue\":{\"number\":42,\"title\":\"T\",\"user\":{\"login\":\"alice\"}" extra "},"     \
    "\"comment\":{\"id\":7,\"body\":\"" body "\",\"author_association\":\"" assoc "\"},"                               \
    "\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":3},"                                               \
    "\"sender\":{\"login\":\"" sender "\",\"type\":\"" stype "\"}}"
#define PR_ISSUE ",\"pull_request\":{\"url\":\"u\"}"
/* A review comment on a pull request by `author`, on a.c line 3. */
#define RC(body, author)                                                                                               \
    "{\"action\":\"created\",\"comment\":{\"id\":8,\"body\":\"" body "\",\"author_association\":\"OWNER\","         \
    "\"path\":\"a.c\",\"line\":3},\"pull_request\":{\"number\":9,\"user\":{\"login\":\"" author "\"},\"head\":{"   \
    "\"ref\":\"f\",\"sha\":\"abc\"}},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":3},"           \
    "\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}"
#define BOT_PR ",\"pull_request\":{\"url\":\"u\"},\"user\":{\"login\":\"patchbay[bot]\"}"

typedef struct {
    const char *name;
    const char *event;
    const char *body;
    int rc;            /* ROUTER_OK or ROUTER_ERR_MALFORMED */
    int outcome;       /* ROUTE_JOB / ROUTE_IGNORED */
    const char *kind;  /* for jobs */
    const char *field; /* a field to check, "name=value", or a reason substring */
} route_case_t;

static const route_case_t cases[] = {
    {"mention", "issue_comment", IC("created", "@patchbay fix it", "OWNER", "bob", "User", ""), ROUTER_OK, ROUTE_JOB, "fix",
     "instruction=fix it"},
    {"member", "issue_comment", IC("created", "@patchbay go", "MEMBER", "bob", "User", ""), ROUTER_OK, ROUTE_JOB, "fix",
     "number=42"},
    {"collaborator", "issue_comment", IC("created", "@patchbay go", "COLLABORATOR", "bob", "User", ""), ROUTER_OK,
     ROUTE_JOB, "fix", "installation=3"},
    {"contributor", "issue_comment", IC("created", "@patchbay go", "CONTRIBUTOR", "bob", "User", ""), ROUTER_OK,
     ROUTE_IGNORED, NULL, "author_association CONTRIBUTOR"},
    {"none", "issue_comment", IC("created", "@patchbay go", "NONE", "bob", "User", ""), ROUTER_OK, ROUTE_IGNORED, NULL,
     "not allowed"},
    {"edited", "issue_comment", IC("edited", "@patchbay go", "OWNER", "bob", "User", ""), ROUTER_OK, ROUTE_IGNORED, NULL,
     "issue_comment.edited"},
    {"deleted", "issue_comment", IC("deleted", "@patchbay go", "OWNER", "bob", "User", ""), ROUTER_OK, ROUTE_IGNORED, NULL,
     "issue_comment.deleted"},
    {"bot", "issue_comment", IC("created", "@patchbay go", "OWNER", "ci[bot]", "Bot", ""), ROUTER_OK, ROUTE_IGNORED, NULL,
     "is a bot"},
    {"itself", "issue_comment", IC("created", "@patchbay go", "OWNER", "patchbay[bot]", "Bot", ""), ROUTER_OK,
     ROUTE_IGNORED, NULL, "patchbay itself"},
    {"itself, case", "issue_comment", IC("created", "@patchbay go", "OWNER", "PatchBay[bot]", "Bot", ""), ROUTER_OK,
     ROUTE_IGNORED, NULL, "patchbay itself"},
    {"no mention", "issue_comment", IC("created", "please fix", "OWNER", "bob", "User", ""), ROUTER_OK, ROUTE_IGNORED,
     NULL, "no mention of @patchbay"},
    {"help", "issue_comment", IC("created", "@patchbay help", "OWNER", "bob", "User", ""), ROUTER_OK, ROUTE_JOB, "help",
     "comment_id=7"},
    {"stop", "issue_comment", IC("created", "@patchbay stop", "OWNER", "bob", "User", ""), ROUTER_OK, ROUTE_JOB, "stop",
     "repo=o/r"},
    {"review on an issue", "issue_comment", IC("created", "@patchbay review", "OWNER", "bob", "User", ""), ROUTER_OK,
     ROUTE_JOB, "help", "message=`review` works on pull requests; this is an issue."},
    {"review on a PR", "issue_comment", IC("created", "@patchbay review", "OWNER", "bob", "User", PR_ISSUE), ROUTER_OK,
     ROUTE_JOB, "review", "is_pr=1"},
    {"fix on a human PR", "issue_comment", IC("created", "@patchbay fix", "OWNER", "bob", "User", PR_ISSUE), ROUTER_OK,
     ROUTE_JOB, "fix", "is_pr=1"},
    {"follow-up on patchbay's PR", "issue_comment", IC("created", "@patchbay more", "OWNER", "bob", "User", BOT_PR),
     ROUTER_OK, ROUTE_JOB, "followup", "instruction=more"},
    /* questions: said with "ask", or shaped like one where the alternative is a fix */
    {"ask", "issue_comment", IC("created", "@patchbay ask why does add() fail?", "OWNER", "bob", "User", ""), ROUTER_OK,
     ROUTE_JOB, "ask", "instruction=why does add() fail?"},
    {"ask is not inferred", "issue_comment", IC("created", "@patchbay ask why", "OWNER", "bob", "User", ""), ROUTER_OK,
     ROUTE_JOB, "ask", "!inferred"},
    {"question shape", "issue_comment", IC("created", "@patchbay why does add() return -1?", "MEMBER", "bob", "User", ""),
     ROUTER_OK, ROUTE_JOB, "ask", "inferred=1"},
    {"question shape keeps the words", "issue_comment", IC("created", "@patchbay how are tokens cached", "OWNER", "bob",
     "User", ""), ROUTER_OK, ROUTE_JOB, "ask", "instruction=how are tokens cached"},
    {"fix overrides the shape", "issue_comment", IC("created", "@patchbay fix why the test flakes?", "OWNER", "bob",
     "User", ""), ROUTER_OK, ROUTE_JOB, "fix", "instruction=fix why the test flakes?"},
    {"the word fix in a question", "issue_comment", IC("created", "@patchbay can you fix this?", "OWNER", "bob", "User",
     ""), ROUTER_OK, ROUTE_JOB, "fix", "instruction=can you fix this?"},
    {"ask without a question", "issue_comment", IC("created", "@patchbay ask", "OWNER", "bob", "User", ""), ROUTER_OK,
     ROUTE_JOB, "help", "message=`ask` needs a question after it."},
    {"question on a human PR", "issue_comment", IC("created", "@patchbay is this safe?", "OWNER", "bob", "User", PR_ISSUE),
     ROUTER_OK, ROUTE_JOB, "ask", "is_pr=1"},
    {"question on patchbay's PR is a follow-up", "issue_comment",
     IC("created", "@patchbay can you also handle floats?", "OWNER", "bob", "User", BOT_PR), ROUTER_OK, ROUTE_JOB,
     "followup", "instruction=can you also handle floats?"},
    {"ask on patchbay's PR", "issue_comment", IC("created", "@patchbay ask why floats?", "OWNER", "bob", "User", BOT_PR),
     ROUTER_OK, ROUTE_JOB, "ask", "comment_type=issue_comment"},
    {"ask needs an allowed sender", "issue_comment", IC("created", "@patchbay ask why?", "NONE", "bob", "User", ""),
     ROUTER_OK, ROUTE_IGNORED, NULL, "not allowed"},
    {"escaped body", "issue_comment", IC("created", "hi\\n@patchbay fix \\u00e9t\\u00e9", "OWNER", "bob", "User", ""),
     ROUTER_OK, ROUTE_JOB, "fix", "instruction=fix \xc3\xa9t\xc3\xa9"},
    {"nul in body", "issue_comment", IC("created", "@patchbay \\u0000", "OWNER", "bob", "User", ""), ROUTER_ERR_MALFORMED,
     0, NULL, "comment.body is not valid UTF-8 text"},
    {"label", "issues",
     "{\"action\":\"labeled\",\"label\":{\"name\":\"ai-fix\"},\"issue\":{\"number\":5},\"repository\":{\"full_name\":\"o/"
     "r\"},\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "fix", "label=ai-fix"},
    {"label by a bot", "issues",
     "{\"action\":\"labeled\",\"label\":{\"name\":\"patchbay\"},\"issue\":{\"number\":5},\"repository\":{\"full_name\":"
     "\"o/r\"},\"installation\":{\"id\":3},\"sender\":{\"login\":\"triage[bot]\",\"type\":\"Bot\"}}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "is a bot"},
    {"other label", "issues",
     "{\"action\":\"labeled\",\"label\":{\"name\":\"bug\"},\"issue\":{\"number\":5},\"repository\":{\"full_name\":\"o/"
     "r\"},\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "label bug is not a trigger label"},
    {"label without a name", "issues",
     "{\"action\":\"labeled\",\"issue\":{\"number\":5},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":"
     "3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_ERR_MALFORMED, 0, NULL, "label.name is missing"},
    {"unlabeled", "issues",
     "{\"action\":\"unlabeled\",\"label\":{\"name\":\"patchbay\"},\"issue\":{\"number\":5},\"repository\":{\"full_name\":"
     "\"o/r\"},\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "issues.unlabeled"},
    {"PR opened", "pull_request",
     "{\"action\":\"opened\",\"pull_request\":{\"number\":9,\"draft\":true,\"author_association\":\"MEMBER\",\"user\":{"
     "\"login\":\"bob\"},\"head\":{\"ref\":\"f\",\"sha\":\"abc\"}},\"repository\":{\"full_name\":\"o/r\"},"
     "\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "review", "draft=1"},
    {"PR by an outsider", "pull_request",
     "{\"action\":\"opened\",\"pull_request\":{\"number\":9,\"author_association\":\"FIRST_TIME_CONTRIBUTOR\",\"user\":{"
     "\"login\":\"eve\"},\"head\":{\"ref\":\"f\",\"sha\":\"abc\"}},\"repository\":{\"full_name\":\"o/r\"},"
     "\"installation\":{\"id\":3},\"sender\":{\"login\":\"eve\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "FIRST_TIME_CONTRIBUTOR"},
    {"PR synchronize", "pull_request",
     "{\"action\":\"synchronize\",\"pull_request\":{\"number\":9,\"author_association\":\"MEMBER\",\"user\":{"
     "\"login\":\"bob\"},\"head\":{\"ref\":\"f\",\"sha\":\"def\"}},\"repository\":{\"full_name\":\"o/r\"},"
     "\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "review", "action=synchronize"},
    {"PR closed", "pull_request",
     "{\"action\":\"closed\",\"pull_request\":{\"number\":9},\"repository\":{\"full_name\":\"o/r\"},"
     "\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "pull_request.closed"},
    {"review comment on patchbay's PR", "pull_request_review_comment",
     "{\"action\":\"created\",\"comment\":{\"id\":8,\"body\":\"@patchbay rename\",\"author_association\":\"OWNER\","
     "\"path\":\"a.c\",\"line\":3},\"pull_request\":{\"number\":9,\"user\":{\"login\":\"patchbay[bot]\"},\"head\":{"
     "\"ref\":\"patchbay/9-x\",\"sha\":\"abc\"}},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":3},"
     "\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "followup", "path=a.c"},
    /* questions in a review thread: on anyone's pull request, answered in the thread */
    {"ask in a review thread", "pull_request_review_comment", RC("@patchbay ask why is this a loop?", "alice"), ROUTER_OK,
     ROUTE_JOB, "ask", "comment_type=review_comment"},
    {"ask in a review thread keeps the line", "pull_request_review_comment", RC("@patchbay ask why?", "alice"),
     ROUTER_OK, ROUTE_JOB, "ask", "line=3"},
    {"question shape in a review thread", "pull_request_review_comment", RC("@patchbay why a loop?", "alice"),
     ROUTER_OK, ROUTE_JOB, "ask", "inferred=1"},
    {"order in someone's review thread", "pull_request_review_comment", RC("@patchbay rename it", "alice"), ROUTER_OK,
     ROUTE_IGNORED, NULL, "acts only on patchbay's own pull requests"},
    {"question in patchbay's review thread is a follow-up", "pull_request_review_comment",
     RC("@patchbay can you rename it?", "patchbay[bot]"), ROUTER_OK, ROUTE_JOB, "followup", "path=a.c"},
    /* the event's own identity, whatever delivery carries it */
    {"comment identity", "issue_comment", IC("created", "@patchbay fix it", "OWNER", "bob", "User", ""), ROUTER_OK,
     ROUTE_JOB, "fix", "event_id=issue_comment.created:o/r:7"},
    {"label identity", "issues",
     "{\"action\":\"labeled\",\"label\":{\"name\":\"ai-fix\"},\"issue\":{\"number\":5,\"updated_at\":"
     "\"2026-11-23T10:00:00Z\"},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":3},\"sender\":{"
     "\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "fix", "event_id=issues.labeled:o/r#5:2026-11-23T10:00:00Z:ai-fix"},
    {"PR identity", "pull_request",
     "{\"action\":\"synchronize\",\"pull_request\":{\"number\":9,\"author_association\":\"MEMBER\",\"user\":{"
     "\"login\":\"bob\"},\"head\":{\"ref\":\"f\",\"sha\":\"def\"}},\"repository\":{\"full_name\":\"o/r\"},"
     "\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "review", "event_id=pull_request.synchronize:o/r#9:def"},
    {"review comment identity", "pull_request_review_comment",
     "{\"action\":\"created\",\"comment\":{\"id\":8,\"body\":\"@patchbay rename\",\"author_association\":\"OWNER\","
     "\"path\":\"a.c\",\"line\":3},\"pull_request\":{\"number\":9,\"user\":{\"login\":\"patchbay[bot]\"},\"head\":{"
     "\"ref\":\"patchbay/9-x\",\"sha\":\"abc\"}},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":3},"
     "\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_JOB, "followup", "event_id=pull_request_review_comment.created:o/r:8"},
    {"ping", "ping", "{\"zen\":\"Keep it logically awesome.\"}", ROUTER_OK, ROUTE_IGNORED, NULL,
     "event ping is not a trigger"},
    {"not json", "issue_comment", "{\"action\":", ROUTER_ERR_MALFORMED, 0, NULL, "not valid JSON"},
    /* a comment payload without "@patchbay" in any case is ignored unread: even one
     * broken inside (a shape GitHub never sends; it could only be ignored) */
    {"no mention, not scanned", "issue_comment", "{\"action\":\"created\",\"comment\":{\"body\":\"thanks\"} ,, }",
     ROUTER_OK, ROUTE_IGNORED, NULL, "no mention of @patchbay"},
    {"no mention, review comment", "pull_request_review_comment", "{\"comment\":{\"body\":\"nit\"}, oops}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "no mention of @patchbay"},
    {"no mention, not an object", "issue_comment", "[1, 2]", ROUTER_ERR_MALFORMED, 0, NULL, "not a JSON object"},
    {"no mention, no closing brace", "issue_comment", "{\"action\":\"created\"", ROUTER_ERR_MALFORMED, 0, NULL,
     "not valid JSON"},
    {"a mention in another case is read", "issue_comment", "{\"action\":\"created\",\"comment\":{\"body\":"
     "\"@PatchBay fix it\"} ,, }", ROUTER_ERR_MALFORMED, 0, NULL, "not valid JSON"},
    {"the handle elsewhere: read, and no mention", "issue_comment",
     "{\"action\":\"created\",\"issue\":{\"number\":4,\"title\":\"ask @patchbay\",\"user\":{\"login\":\"a\"}},"
     "\"comment\":{\"id\":7,\"body\":\"me too\",\"author_association\":\"OWNER\"},\"repository\":{\"full_name\":"
     "\"o/r\"},\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_OK, ROUTE_IGNORED, NULL, "no mention of @patchbay"},
    {"not an object", "ping", "\"hello\"", ROUTER_ERR_MALFORMED, 0, NULL, "not a JSON object"},
    {"number as string", "issue_comment",
     "{\"action\":\"created\",\"issue\":{\"number\":\"42\",\"user\":{\"login\":\"a\"}},\"comment\":{\"id\":7,\"body\":"
     "\"@patchbay x\",\"author_association\":\"OWNER\"},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":"
     "3},\"sender\":{\"login\":\"bob\",\"type\":\"User\"}}",
     ROUTER_ERR_MALFORMED, 0, NULL, "issue.number is of the wrong type"},
};

/* "name=value", or "!name": the field is absent */
static void check_field(const router_result_t *r, const char *spec, const char *name)
{
    if (spec[0] == '!') {
        if (job_fields_get(&r->fields, spec + 1) != NULL) {
            print_error("case '%s': field %s is set\n", name, spec + 1);
            fail();
        }
        return;
    }
    const char *eq = strchr(spec, '=');
    assert_non_null(eq);
    char key[64];
    snprintf(key, sizeof(key), "%.*s", (int)(eq - spec), spec);
    const char *v = job_fields_get(&r->fields, key);
    if (v == NULL || strcmp(v, eq + 1) != 0) {
        print_error("case '%s': field %s is '%s', expected '%s'\n", name, key, v ? v : "(absent)", eq + 1);
        fail();
    }
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const route_case_t *c = &cases[i];
        size_t len = strlen(c->body);
        char *scratch = malloc(len + ROUTER_SCRATCH_EXTRA);
        char *body = malloc(len); /* exact size: ASan sees any read past the end */
        memcpy(body, c->body, len);
        router_result_t r;
        int rc = router_route(&r, &rules, c->event, body, len, scratch, len + ROUTER_SCRATCH_EXTRA);
        if (rc != c->rc || (rc == ROUTER_OK && (int)r.outcome != c->outcome)) {
            print_error("case '%s': rc %d outcome %d reason '%s'\n", c->name, rc, r.outcome, r.reason);
            fail();
        }
        if (rc == ROUTER_OK && r.outcome == ROUTE_JOB) {
            assert_string_equal(job_kind_name(r.kind), c->kind);
            assert_string_equal(job_fields_get(&r.fields, JOB_F_KIND), c->kind);
            assert_string_equal(job_fields_get(&r.fields, JOB_F_EVENT), c->event);
            check_field(&r, c->field, c->name);
        } else if (strstr(r.reason, c->field) == NULL) {
            print_error("case '%s': reason '%s' lacks '%s'\n", c->name, r.reason, c->field);
            fail();
        }
        free(scratch);
        free(body);
    }
}

static void test_custom_handle(void **state)
{
    (void)state;
    const router_rules_t mine = {"my-bot", &labels, &assocs};
    const char *body = IC("created", "@patchbay fix and @my-bot do it", "OWNER", "bob", "User", "");
    size_t len = strlen(body);
    char *scratch = malloc(len + ROUTER_SCRATCH_EXTRA);
    router_result_t r;
    assert_int_equal(router_route(&r, &mine, "issue_comment", body, len, scratch, len + ROUTER_SCRATCH_EXTRA), ROUTER_OK);
    assert_int_equal(r.outcome, ROUTE_JOB);
    assert_string_equal(job_fields_get(&r.fields, JOB_F_INSTRUCTION), "do it");
    free(scratch);
}

/* A long instruction in a payload with little else around it: its copy once
 * needed as much scratch again as the comment, and the server aborted. */
static void test_long_instruction_in_a_small_payload(void **state)
{
    (void)state;
    const size_t n = 64 * 1024;
    const char *head = "{\"action\":\"created\",\"issue\":{\"number\":1,\"title\":\"T\",\"user\":{\"login\":\"a\"}},"
                       "\"comment\":{\"id\":7,\"author_association\":\"OWNER\",\"body\":\"@patchbay ";
    const char *tail = "\"},\"repository\":{\"full_name\":\"o/r\"},\"installation\":{\"id\":3},"
                       "\"sender\":{\"login\":\"a\",\"type\":\"User\"}}";
    size_t len = strlen(head) + n + strlen(tail);
    char *body = malloc(len);
    memcpy(body, head, strlen(head));
    memset(body + strlen(head), 'x', n);
    memcpy(body + strlen(head) + n, tail, strlen(tail));
    char *scratch = malloc(len + ROUTER_SCRATCH_EXTRA);
    router_result_t r;
    assert_int_equal(router_route(&r, &rules, "issue_comment", body, len, scratch, len + ROUTER_SCRATCH_EXTRA), ROUTER_OK);
    assert_int_equal(r.outcome, ROUTE_JOB);
    assert_int_equal(strlen(job_fields_get(&r.fields, JOB_F_INSTRUCTION)), n);
    assert_string_equal(job_fields_get(&r.fields, JOB_F_TITLE), "T");
    /* no room for a copy of the whole comment: the job reads it from GitHub */
    assert_null(job_fields_get(&r.fields, JOB_F_COMMENT_BODY));
    free(scratch);
    free(body);
}

static const router_result_t *route_json(router_result_t *r, const char *event, const char *body, char **scratch)
{
    size_t len = strlen(body);
    *scratch = malloc(len + ROUTER_SCRATCH_EXTRA);
    assert_int_equal(router_route(r, &rules, event, body, len, *scratch, len + ROUTER_SCRATCH_EXTRA), ROUTER_OK);
    assert_int_equal(r->outcome, ROUTE_JOB);
    return r;
}

/* What a job reads of the webhook beyond routing is kept in its record, so
 * the payload itself need not be stored: the issue's body and comment count,
 * the whole comment, the sender's id, whether the repository is private. */
static void test_what_a_job_reads_is_in_the_record(void **state)
{
    (void)state;
    router_result_t r;
    char *scratch;
    route_json(&r, "issue_comment",
               "{\"action\":\"created\",\"issue\":{\"number\":42,\"title\":\"T\",\"body\":\"It \\u00e9crit -1.\","
               "\"comments\":3,\"user\":{\"login\":\"alice\"}},\"comment\":{\"id\":7,\"author_association\":\"OWNER\","
               "\"body\":\"Thanks.\\n\\n@patchbay fix it\\nplease\"},\"repository\":{\"full_name\":\"o/r\","
               "\"private\":true},\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"id\":583231,"
               "\"type\":\"User\"}}",
               &scratch);
    assert_string_equal(job_fields_get(&r.fields, JOB_F_ISSUE_BODY), "It \xc3\xa9" "crit -1.");
    assert_string_equal(job_fields_get(&r.fields, JOB_F_ISSUE_COMMENTS), "3");
    assert_string_equal(job_fields_get(&r.fields, JOB_F_COMMENT_BODY), "Thanks.\n\n@patchbay fix it\nplease");
    assert_string_equal(job_fields_get(&r.fields, JOB_F_INSTRUCTION), "fix it\nplease");
    assert_string_equal(job_fields_get(&r.fields, JOB_F_SENDER_ID), "583231");
    assert_string_equal(job_fields_get(&r.fields, JOB_F_PRIVATE), "1");
    free(scratch);

    /* a label: no comment; a null body is an empty one; a public repository */
    route_json(&r, "issues",
               "{\"action\":\"labeled\",\"label\":{\"name\":\"patchbay\"},\"issue\":{\"number\":5,\"title\":\"T\","
               "\"body\":null,\"comments\":0,\"updated_at\":\"2026-12-05T10:00:00Z\"},\"repository\":{\"full_name\":"
               "\"o/r\",\"private\":false},\"installation\":{\"id\":3},\"sender\":{\"login\":\"bob\",\"id\":9,"
               "\"type\":\"User\"}}",
               &scratch);
    assert_string_equal(job_fields_get(&r.fields, JOB_F_ISSUE_BODY), "");
    assert_string_equal(job_fields_get(&r.fields, JOB_F_ISSUE_COMMENTS), "0");
    assert_null(job_fields_get(&r.fields, JOB_F_COMMENT_BODY));
    assert_string_equal(job_fields_get(&r.fields, JOB_F_PRIVATE), "0");
    free(scratch);

    /* what the payload does not say is left out, never guessed */
    route_json(&r, "issue_comment", IC("created", "@patchbay fix it", "OWNER", "bob", "User", ""), &scratch);
    assert_null(job_fields_get(&r.fields, JOB_F_PRIVATE));
    assert_null(job_fields_get(&r.fields, JOB_F_SENDER_ID));
    assert_null(job_fields_get(&r.fields, JOB_F_ISSUE_BODY));
    free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table), cmocka_unit_test(test_custom_handle),
                                       cmocka_unit_test(test_long_instruction_in_a_small_payload),
                                       cmocka_unit_test(test_what_a_job_reads_is_in_the_record)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
