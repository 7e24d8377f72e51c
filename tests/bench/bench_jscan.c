/*
 * bench_jscan — time per payload of jscan_scan with the ~25 paths webhook
 * routing reads, next to jansson's json_loadb on the same bytes.
 *
 *   bench_jscan [payload.json [max_iterations]]
 *
 * Without a file it builds a ~14 KB issue_comment-like delivery shaped like
 * GitHub's (full repository, issue, comment and sender objects, compact as
 * GitHub sends it). Each timer runs until max_iterations (default 200000 for
 * jscan, a tenth of that for jansson) or BENCH_MAX_SECONDS, whichever comes
 * first, after a short warm-up; figures are the mean over the timed run.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/webhook/jscan.h"

#define BENCH_MAX_SECONDS 2.0
#define BENCH_DEFAULT_ITERATIONS 200000L
#define BENCH_PAYLOAD_CAP_BYTES (64 * 1024)

static const char *const routing_paths[] = {
    "action",
    "sender.login",
    "sender.type",
    "sender.id",
    "installation.id",
    "repository.full_name",
    "repository.id",
    "repository.private",
    "repository.default_branch",
    "repository.owner.login",
    "issue.number",
    "issue.pull_request",
    "issue.user.login",
    "issue.state",
    "comment.body",
    "comment.id",
    "comment.author_association",
    "comment.user.login",
    "comment.user.type",
    "label.name",
    "pull_request.number",
    "pull_request.draft",
    "pull_request.head.ref",
    "pull_request.head.sha",
    "pull_request.user.login",
    "pull_request.base.ref",
};
#define NPATHS (sizeof(routing_paths) / sizeof(routing_paths[0]))

typedef struct {
    char *data;
    size_t len;
} payload_t;

static void add(payload_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->data + p->len, BENCH_PAYLOAD_CAP_BYTES - p->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= BENCH_PAYLOAD_CAP_BYTES - p->len) {
        fprintf(stderr, "bench payload too large\n");
        exit(1);
    }
    p->len += (size_t)n;
}

static void add_user(payload_t *p, const char *login, long id, const char *type)
{
    static const char *const links[] = {
        "followers", "following{/other_user}", "gists{/gist_id}", "starred{/owner}{/repo}", "subscriptions", "orgs",
        "repos",     "events{/privacy}",       "received_events"};
    add(p,
        "{\"login\":\"%s\",\"id\":%ld,\"node_id\":\"MDQ6VXNlcjU4MzIzMQ==\","
        "\"avatar_url\":\"https://avatars.githubusercontent.com/u/%ld?v=4\",\"gravatar_id\":\"\","
        "\"url\":\"https://api.github.com/users/%s\",\"html_url\":\"https://github.com/%s\"",
        login, id, id, login, login);
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(links[i], "{"), links[i]);
        add(p, ",\"%s_url\":\"https://api.github.com/users/%s/%s\"", name, login, links[i]);
    }
    add(p, ",\"type\":\"%s\",\"site_admin\":false}", type);
}

static void add_reactions(payload_t *p, const char *url)
{
    add(p,
        "{\"url\":\"%s/reactions\",\"total_count\":3,\"+1\":2,\"-1\":0,\"laugh\":0,\"hooray\":1,"
        "\"confused\":0,\"heart\":0,\"rocket\":0,\"eyes\":0}",
        url);
}

static payload_t build_issue_comment(void)
{
    static const char *const repo_links[] = {
        "forks",
        "keys{/key_id}",
        "collaborators{/collaborator}",
        "teams",
        "hooks",
        "issues/events{/number}",
        "events",
        "assignees{/user}",
        "branches{/branch}",
        "tags",
        "git/blobs{/sha}",
        "git/tags{/sha}",
        "git/refs{/sha}",
        "git/trees{/sha}",
        "statuses/{sha}",
        "languages",
        "stargazers",
        "contributors",
        "subscribers",
        "subscription",
        "commits{/sha}",
        "git/commits{/sha}",
        "comments{/number}",
        "issues/comments{/number}",
        "contents/{+path}",
        "compare/{base}...{head}",
        "merges",
        "{archive_format}{/ref}",
        "downloads",
        "issues{/number}",
        "pulls{/number}",
        "milestones{/number}",
        "notifications{?since,all,participating}",
        "labels{/name}",
        "releases{/id}",
        "deployments",
    };
    const char *api = "https://api.github.com/repos/octo-org/hello-world";
    payload_t p = {malloc(BENCH_PAYLOAD_CAP_BYTES), 0};
    if (p.data == NULL)
        exit(1);

    add(&p,
        "{\"action\":\"created\",\"issue\":{\"url\":\"%s/issues/1347\",\"repository_url\":\"%s\","
        "\"labels_url\":\"%s/issues/1347/labels{/name}\",\"comments_url\":\"%s/issues/1347/comments\","
        "\"events_url\":\"%s/issues/1347/events\",\"html_url\":\"https://github.com/octo-org/hello-world/pull/1347\","
        "\"id\":1990412345,\"node_id\":\"PR_kwDOABCD5M5bCDEF\",\"number\":1347,"
        "\"title\":\"Worker crashes when the queue is empty \\u2014 \\\"fix\\\" needed\",\"user\":",
        api, api, api, api, api);
    add_user(&p, "octocat", 583231, "User");
    add(&p,
        ",\"labels\":[{\"id\":208045946,\"node_id\":\"MDU6TGFiZWwyMDgwNDU5NDY=\",\"url\":\"%s/labels/bug\","
        "\"name\":\"bug\",\"color\":\"d73a4a\",\"default\":true,\"description\":\"Something isn't working\"},"
        "{\"id\":208045947,\"node_id\":\"MDU6TGFiZWwyMDgwNDU5NDc=\",\"url\":\"%s/labels/p1\","
        "\"name\":\"p1\",\"color\":\"b60205\",\"default\":false,\"description\":null}],"
        "\"state\":\"open\",\"locked\":false,\"assignee\":",
        api, api);
    add_user(&p, "hubot", 2345678, "User");
    add(&p, ",\"assignees\":[");
    add_user(&p, "hubot", 2345678, "User");
    add(&p, ",");
    add_user(&p, "octocat", 583231, "User");
    add(&p,
        "],\"milestone\":null,"
        "\"comments\":4,\"created_at\":\"2024-05-01T09:12:44Z\",\"updated_at\":\"2024-05-02T17:03:12Z\","
        "\"closed_at\":null,\"author_association\":\"CONTRIBUTOR\",\"active_lock_reason\":null,\"draft\":false,"
        "\"pull_request\":{\"url\":\"%s/pulls/1347\",\"html_url\":\"https://github.com/octo-org/hello-world/pull/1347\","
        "\"diff_url\":\"https://github.com/octo-org/hello-world/pull/1347.diff\","
        "\"patch_url\":\"https://github.com/octo-org/hello-world/pull/1347.patch\",\"merged_at\":null},"
        "\"body\":\"When the queue is empty the worker spins.\\r\\n\\r\\n### Steps\\r\\n1. start it\\r\\n"
        "2. wait\\r\\n\\r\\n```\\r\\nworker: XREADGROUP timed out\\r\\n```\\r\\n\",\"reactions\":",
        api);
    add_reactions(&p, "https://api.github.com/repos/octo-org/hello-world/issues/1347");
    add(&p, ",\"timeline_url\":\"%s/issues/1347/timeline\",\"performed_via_github_app\":null,\"state_reason\":null},", api);

    add(&p,
        "\"comment\":{\"url\":\"%s/issues/comments/2089123456\","
        "\"html_url\":\"https://github.com/octo-org/hello-world/pull/1347#issuecomment-2089123456\","
        "\"issue_url\":\"%s/issues/1347\",\"id\":2089123456,\"node_id\":\"IC_kwDOABCD5M58hXYZ\",\"user\":",
        api, api);
    add_user(&p, "monalisa", 1234567, "User");
    add(&p, ",\"created_at\":\"2024-05-02T17:03:11Z\",\"updated_at\":\"2024-05-02T17:03:11Z\","
            "\"author_association\":\"MEMBER\",\"body\":\"@patchbay please fix the empty-queue spin: the "
            "`XREADGROUP ... BLOCK` call needs a socket timeout longer than the block, or the context dies. "
            "See the logs above \\ud83d\\ude00\\n\\n- [ ] reproduce\\n- [ ] fix\\n- [ ] add a test\",\"reactions\":");
    add_reactions(&p, "https://api.github.com/repos/octo-org/hello-world/issues/comments/2089123456");
    add(&p, ",\"performed_via_github_app\":null},");

    add(&p, "\"repository\":{\"id\":1296269,\"node_id\":\"MDEwOlJlcG9zaXRvcnkxMjk2MjY5\",\"name\":\"hello-world\","
            "\"full_name\":\"octo-org/hello-world\",\"private\":false,\"owner\":");
    add_user(&p, "octo-org", 6811672, "Organization");
    add(&p,
        ",\"html_url\":\"https://github.com/octo-org/hello-world\",\"description\":\"My first repo\","
        "\"fork\":false,\"url\":\"%s\"",
        api);
    for (size_t i = 0; i < sizeof(repo_links) / sizeof(repo_links[0]); i++) {
        char name[32];
        const char *l = repo_links[i];
        if (l[0] == '{') {
            snprintf(name, sizeof(name), "archive");
        } else {
            const char *slash = strrchr(l, '/');
            const char *base = slash && slash < l + strcspn(l, "{") ? slash + 1 : l;
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(base, "{/"), base);
            if (strncmp(l, "git/", 4) == 0)
                snprintf(name, sizeof(name), "git_%.*s", (int)strcspn(l + 4, "{/"), l + 4);
            else if (strncmp(l, "issues/", 7) == 0)
                snprintf(name, sizeof(name), "issue_%.*s", (int)strcspn(l + 7, "{/"), l + 7);
        }
        add(&p, ",\"%s_url\":\"%s/%s\"", name, api, l);
    }
    add(&p, ",\"created_at\":\"2011-01-26T19:01:12Z\",\"updated_at\":\"2024-05-02T16:59:40Z\","
            "\"pushed_at\":\"2024-05-02T16:59:38Z\",\"git_url\":\"git://github.com/octo-org/hello-world.git\","
            "\"ssh_url\":\"git@github.com:octo-org/hello-world.git\","
            "\"clone_url\":\"https://github.com/octo-org/hello-world.git\","
            "\"svn_url\":\"https://github.com/octo-org/hello-world\",\"homepage\":\"https://example.org\","
            "\"size\":108,\"stargazers_count\":80,\"watchers_count\":80,\"language\":\"C\",\"has_issues\":true,"
            "\"has_projects\":true,\"has_downloads\":true,\"has_wiki\":true,\"has_pages\":false,"
            "\"has_discussions\":false,\"forks_count\":9,\"mirror_url\":null,\"archived\":false,\"disabled\":false,"
            "\"open_issues_count\":2,\"license\":{\"key\":\"mit\",\"name\":\"MIT License\",\"spdx_id\":\"MIT\","
            "\"url\":\"https://api.github.com/licenses/mit\",\"node_id\":\"MDc6TGljZW5zZTEz\"},"
            "\"allow_forking\":true,\"is_template\":false,\"web_commit_signoff_required\":false,"
            "\"topics\":[\"c\",\"github-app\",\"webhooks\"],\"visibility\":\"public\",\"forks\":9,"
            "\"open_issues\":2,\"watchers\":80,\"default_branch\":\"main\"},");

    add(&p, "\"organization\":{\"login\":\"octo-org\",\"id\":6811672,\"node_id\":\"MDEyOk9yZ2FuaXphdGlvbjY4MTE2NzI=\","
            "\"url\":\"https://api.github.com/orgs/octo-org\",\"repos_url\":\"https://api.github.com/orgs/octo-org/repos\","
            "\"events_url\":\"https://api.github.com/orgs/octo-org/events\","
            "\"hooks_url\":\"https://api.github.com/orgs/octo-org/hooks\","
            "\"issues_url\":\"https://api.github.com/orgs/octo-org/issues\","
            "\"members_url\":\"https://api.github.com/orgs/octo-org/members{/member}\","
            "\"public_members_url\":\"https://api.github.com/orgs/octo-org/public_members{/member}\","
            "\"avatar_url\":\"https://avatars.githubusercontent.com/u/6811672?v=4\",\"description\":null},");
    add(&p, "\"sender\":");
    add_user(&p, "monalisa", 1234567, "User");
    add(&p, ",\"installation\":{\"id\":2311213,\"node_id\":\"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMjMxMTIxMw==\"}}");
    return p;
}

static payload_t read_file(const char *path)
{
    payload_t p = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    size_t cap = 0;
    for (;;) {
        if (p.len == cap) {
            cap = cap ? 2 * cap : 65536;
            p.data = realloc(p.data, cap);
            if (p.data == NULL)
                exit(1);
        }
        size_t n = fread(p.data + p.len, 1, cap - p.len, f);
        if (n == 0)
            break;
        p.len += n;
    }
    fclose(f);
    return p;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    long iterations;
    double seconds;
} timing_t;

static volatile size_t sink;

static int run_jscan(const payload_t *p)
{
    jscan_value_t v[NPATHS];
    int rc = jscan_scan(p->data, p->len, routing_paths, NPATHS, v, NULL);
    sink += v[0].len + (size_t)rc;
    return rc;
}

static int run_jansson(const payload_t *p)
{
    json_error_t err;
    json_t *j = json_loadb(p->data, p->len, 0, &err);
    sink += j != NULL;
    json_decref(j);
    return j != NULL ? 0 : -1;
}

/* Checked in batches so the clock is read rarely next to a ~µs operation. */
static timing_t time_loop(int (*fn)(const payload_t *), const payload_t *p, long max_iterations)
{
    const long batch = 64;
    timing_t t = {0, 0};
    for (long i = 0; i < batch && i < max_iterations / 10 + 1; i++) /* warm-up */
        fn(p);
    double start = now_seconds();
    while (t.iterations < max_iterations) {
        for (long i = 0; i < batch && t.iterations < max_iterations; i++, t.iterations++)
            fn(p);
        t.seconds = now_seconds() - start;
        if (t.seconds >= BENCH_MAX_SECONDS)
            break;
    }
    return t;
}

int main(int argc, char **argv)
{
    payload_t p = argc > 1 ? read_file(argv[1]) : build_issue_comment();
    long max_iterations = argc > 2 ? strtol(argv[2], NULL, 10) : BENCH_DEFAULT_ITERATIONS;
    if (max_iterations <= 0)
        max_iterations = BENCH_DEFAULT_ITERATIONS;

    /* refuse to time an input that fails: a quick error is not a benchmark */
    size_t err_offset = 0;
    jscan_value_t v[NPATHS];
    int rc = jscan_scan(p.data, p.len, routing_paths, NPATHS, v, &err_offset);
    json_error_t jerr;
    json_t *j = json_loadb(p.data, p.len, 0, &jerr);
    if (rc != JSCAN_OK || j == NULL) {
        fprintf(stderr, "payload rejected: jscan %d at byte %zu; jansson: %s\n", rc, err_offset, j ? "ok" : jerr.text);
        return 1;
    }
    json_decref(j);
    size_t found = 0;
    for (size_t i = 0; i < NPATHS; i++)
        found += v[i].type != JSCAN_ABSENT;

    timing_t ts = time_loop(run_jscan, &p, max_iterations);
    timing_t tj = time_loop(run_jansson, &p, max_iterations / 10 > 0 ? max_iterations / 10 : 1);
    double us_scan = ts.seconds * 1e6 / (double)ts.iterations;
    double us_jansson = tj.seconds * 1e6 / (double)tj.iterations;

    printf("payload: %s, %zu bytes; %zu paths, %zu found\n", argc > 1 ? argv[1] : "built-in issue_comment", p.len, NPATHS,
           found);
    printf("jscan_scan:  %9.3f us/payload  (%ld iterations, %.2f s, %.0f MB/s)\n", us_scan, ts.iterations, ts.seconds,
           (double)p.len / us_scan);
    printf("json_loadb:  %9.3f us/payload  (%ld iterations, %.2f s, %.0f MB/s)\n", us_jansson, tj.iterations, tj.seconds,
           (double)p.len / us_jansson);
    printf("ratio:       %9.1fx\n", us_jansson / us_scan);
    free(p.data);
    return 0;
}
