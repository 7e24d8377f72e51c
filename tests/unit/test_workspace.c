/*
 * test_workspace — mirrors, checkouts, changes, commits and pushes against
 * the fake GitHub's real git smart HTTP (git http-backend behind Basic auth
 * with installation tokens minted through the API).
 *
 * What a user would see is asserted where they would see it: the branch and
 * the bot's commit in the fake's bare repository (read with the git CLI, not
 * libgit2), the requests in the fake's call log (no second full clone, no
 * retry storm on a bad token), the files on disk (no token anywhere).
 *
 * One fake for the whole file (group setup); each test uses its own
 * repositories and its own data dir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakegh.h"
#include "jobs/workspace/workspace.h"

#define INSTALLATION 77

static fakegh_t fake;
static char data_dir[128];
static workspace_config_t cfg;
static char bot_name[128], bot_email[128];

/* ---------------------------------------------------------------------------
 * Harness
 * ------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    fakegh_start(&fake);
    workspace_bot_identity(bot_name, sizeof(bot_name), bot_email, sizeof(bot_email), FAKEGH_APP_SLUG, FAKEGH_BOT_ID);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fakegh_stop(&fake);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    strcpy(data_dir, "/tmp/pbws-XXXXXX");
    assert_non_null(mkdtemp(data_dir));
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = data_dir;
    cfg.git_url = fake.base_url;
    cfg.job = "test";
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(fakegh_sh(NULL, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", data_dir, data_dir));
    return 0;
}

static workspace_t *prepare_ok(const char *repo, const char *job, const char *branch, const char *token)
{
    workspace_spec_t spec = {.repo = repo, .token = token, .job_id = job, .branch = branch};
    workspace_t *ws = NULL;
    char err[WORKSPACE_ERR_BYTES] = "";
    int rc = workspace_prepare(&ws, &cfg, &spec, err, sizeof(err));
    if (rc != 0)
        fail_msg("workspace_prepare(%s, %s): %s (%s)", repo, job, workspace_err_name(rc), err);
    return ws;
}

static void write_file(const workspace_t *ws, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", ws->path, rel);
    for (char *p = path + strlen(ws->path) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *ws_git(const workspace_t *ws, const char *args)
{
    int st = 0;
    char *out = fakegh_sh(&st, "cd '%s' && GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git %s 2>&1", ws->path, args);
    if (st != 0)
        fail_msg("git %s in %s: %s", args, ws->path, out);
    return out;
}

static void assert_str_eq_free(char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        fail_msg("got '%s', want '%s'", got, want);
    free(got);
}

/* No file under dir contains the token (grep -r reads binary files too). */
static void assert_token_nowhere(const char *dir, const char *token)
{
    int st = 0;
    char *hits = fakegh_sh(&st, "grep -rlaF '%s' '%s'", token, dir);
    if (st != 1)
        fail_msg("the token was written to disk: %s", hits);
    free(hits);
}

static size_t upload_packs(void)
{
    return fakegh_count(&fake, "POST", "git-upload-pack$");
}

/* ---------------------------------------------------------------------------
 * Mirrors and checkouts
 * ------------------------------------------------------------------------- */

static void test_first_job_makes_mirror_and_checkout(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/app", "{\"README.md\":\"hello\\n\",\"src/main.c\":\"int main(void){return 0;}\\n\"}",
                INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    fakegh_reset_calls(&fake);

    workspace_t *ws = prepare_ok("acme/app", "101", "patchbay/7-fix-it", token);
    assert_int_equal(ws->mirror_created, 1);
    assert_string_equal(ws->default_branch, "main");
    assert_string_equal(ws->base_ref, "refs/heads/main");
    assert_string_equal(ws->remote_oid, "");
    char *main_sha = fakegh_git(&fake, "acme/app", "rev-parse main");
    assert_string_equal(ws->base_oid, main_sha);

    char path[512];
    snprintf(path, sizeof(path), "%s/workspaces/101/repo", data_dir);
    assert_string_equal(ws->path, path);
    snprintf(path, sizeof(path), "%s/src/main.c", ws->path);
    char *text = read_file(path);
    assert_non_null(text);
    assert_string_equal(text, "int main(void){return 0;}\n");
    free(text);

    /* on the job's branch, at the base, clean, with a plain origin */
    assert_str_eq_free(ws_git(ws, "rev-parse --abbrev-ref HEAD"), "patchbay/7-fix-it");
    assert_str_eq_free(ws_git(ws, "rev-parse HEAD"), main_sha);
    assert_str_eq_free(ws_git(ws, "status --porcelain"), "");
    char want_url[128];
    snprintf(want_url, sizeof(want_url), "%s/acme/app.git", fake.base_url);
    assert_str_eq_free(ws_git(ws, "remote get-url origin"), want_url);
    assert_str_eq_free(ws_git(ws, "rev-parse origin/main"), main_sha);

    /* one full fetch; the mirror is where the docs say */
    assert_int_equal(upload_packs(), 1);
    snprintf(path, sizeof(path), "%s/mirrors/acme/app.git/HEAD", data_dir);
    text = read_file(path);
    assert_non_null(text);
    assert_string_equal(text, "ref: refs/heads/main\n");
    free(text);

    assert_token_nowhere(data_dir, token);
    free(main_sha);
    free(token);
    workspace_free(ws);
}

static void test_second_job_reuses_the_mirror(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/reuse", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws1 = prepare_ok("acme/reuse", "201", "patchbay/1-one", token);
    assert_int_equal(ws1->mirror_created, 1);

    /* Nothing new upstream: the second job only reads the ref advertisement. */
    fakegh_reset_calls(&fake);
    workspace_t *ws2 = prepare_ok("acme/reuse", "202", "patchbay/2-two", token);
    assert_int_equal(ws2->mirror_created, 0);
    assert_int_equal(upload_packs(), 0);
    assert_true(fakegh_count(&fake, "GET", "info/refs$") >= 1);
    assert_string_equal(ws2->base_oid, ws1->base_oid);

    /* Something new upstream: one incremental fetch, and the checkout has it. */
    json_t *c =
        fakegh_control(&fake, "commits", "{\"repo\":\"acme/reuse\",\"branch\":\"main\",\"files\":{\"b.txt\":\"2\\n\"}}");
    const char *sha = json_string_value(json_object_get(c, "sha"));
    fakegh_reset_calls(&fake);
    workspace_t *ws3 = prepare_ok("acme/reuse", "203", "patchbay/3-three", token);
    assert_int_equal(ws3->mirror_created, 0);
    assert_int_equal(upload_packs(), 1);
    assert_string_equal(ws3->base_oid, sha);
    char path[512];
    snprintf(path, sizeof(path), "%s/b.txt", ws3->path);
    assert_int_equal(access(path, F_OK), 0);

    /* the checkouts are independent of each other */
    assert_string_not_equal(ws1->path, ws3->path);
    json_decref(c);
    workspace_free(ws1);
    workspace_free(ws2);
    workspace_free(ws3);
    free(token);
}

static void test_base_branch_and_missing_things(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/bases", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    json_t *c =
        fakegh_control(&fake, "commits", "{\"repo\":\"acme/bases\",\"branch\":\"release\",\"files\":{\"r.txt\":\"r\\n\"}}");
    char *token = fakegh_token(&fake, INSTALLATION);

    workspace_spec_t spec = {
        .repo = "acme/bases", .token = token, .job_id = "301", .branch = "patchbay/9-x", .base_branch = "release"};
    workspace_t *ws = NULL;
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), 0);
    assert_string_equal(ws->base_oid, json_string_value(json_object_get(c, "sha")));
    assert_string_equal(ws->base_ref, "refs/heads/release");
    workspace_free(ws);

    spec.base_branch = "no-such-branch";
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_ENOTFOUND);
    assert_null(ws);
    assert_non_null(strstr(err, "no-such-branch"));
    /* a failed prepare leaves no workspace behind */
    char path[512];
    snprintf(path, sizeof(path), "%s/workspaces/301", data_dir);
    assert_int_equal(access(path, F_OK), -1);

    spec.base_branch = NULL;
    spec.repo = "acme/no-such-repo";
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_ENOTFOUND);
    assert_non_null(strstr(err, "not found"));

    json_decref(fakegh_control(&fake, "repos", "{\"full_name\":\"acme/empty\",\"private\":true}"));
    spec.repo = "acme/empty";
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_ENOTFOUND);
    assert_non_null(strstr(err, "empty"));

    spec.repo = "acme/bases";
    spec.pull_number = 999;
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_ENOTFOUND);
    assert_non_null(strstr(err, "#999"));

    json_decref(c);
    free(token);
}

static void test_bad_names_are_refused(void **state)
{
    (void)state;
    workspace_t *ws = NULL;
    char err[WORKSPACE_ERR_BYTES];
    static const char *const repos[] = {"noslash", "../etc", "a/..", "a/b/c", "-x/y", "a/b c", "", NULL};
    for (int i = 0; repos[i] != NULL; i++) {
        workspace_spec_t spec = {.repo = repos[i], .job_id = "1", .branch = "patchbay/1-x"};
        assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_EINVAL);
    }
    static const char *const jobs[] = {"..", ".", "a/b", "", "x y", NULL};
    for (int i = 0; jobs[i] != NULL; i++) {
        workspace_spec_t spec = {.repo = "o/r", .job_id = jobs[i], .branch = "patchbay/1-x"};
        assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_EINVAL);
        assert_int_equal(workspace_remove(&cfg, jobs[i], err, sizeof(err)), WORKSPACE_EINVAL);
    }
    static const char *const branches[] = {"a..b", "x~1", "-", "a b", "end.lock", "", NULL};
    for (int i = 0; branches[i] != NULL; i++) {
        workspace_spec_t spec = {.repo = "o/r", .job_id = "1", .branch = branches[i]};
        assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_EINVAL);
    }
    assert_null(ws);
}

static void test_branch_names(void **state)
{
    (void)state;
    char b[64];
    assert_int_equal(workspace_branch_name(b, sizeof(b), 12, "Fix the NULL check in parser.c!"), 0);
    assert_string_equal(b, "patchbay/12-fix-the-null-check-in-parser-c");
    assert_int_equal(workspace_branch_name(b, sizeof(b), 3, "  --Ünïcödé ⚡ only  "), 0);
    assert_string_equal(b, "patchbay/3-n-c-d-only");
    assert_int_equal(workspace_branch_name(b, sizeof(b), 4, "!!!"), 0);
    assert_string_equal(b, "patchbay/4-issue");
    assert_int_equal(workspace_branch_name(b, sizeof(b), 5, NULL), 0);
    assert_string_equal(b, "patchbay/5-issue");
    assert_int_equal(workspace_branch_name(b, sizeof(b), 6, "a very long title that goes on and on well past forty characters"),
                     0);
    const char *slug = strchr(b, '-') + 1;
    assert_true(strlen(slug) <= WORKSPACE_SLUG_MAX_BYTES);
    assert_true(slug[strlen(slug) - 1] != '-');
    assert_string_equal(b, "patchbay/6-a-very-long-title-that-goes-on-and-on"); /* cut at a word */
    assert_int_equal(workspace_branch_name(b, 10, 6, "title"), -1);

    char name[128], email[128];
    assert_int_equal(workspace_bot_identity(name, sizeof(name), email, sizeof(email), "patchbay", 41898282), 0);
    assert_string_equal(name, "patchbay[bot]");
    assert_string_equal(email, "41898282+patchbay[bot]@users.noreply.github.com");
}

static void test_config_init(void **state)
{
    (void)state;
    config_t *c = NULL;
    config_errors_t errs = {0};
    char *const env[] = {"PATCHBAY_DATA_DIR=/srv/patchbay", "GITHUB_URL=https://ghe.example.com", NULL};
    assert_int_equal(config_load(&c, &errs, NULL, env), 0);
    workspace_config_t w;
    workspace_config_init(&w, c, "d-1", "42");
    assert_string_equal(w.data_dir, "/srv/patchbay");
    assert_string_equal(w.git_url, "https://ghe.example.com");
    assert_int_equal(w.mirror_budget_bytes, 10ULL << 30);
    assert_string_equal(w.delivery, "d-1");
    assert_string_equal(w.job, "42");
    assert_int_equal(w.lock_wait_ms, 0);
    config_free(c);
    config_errors_free(&errs);
}

/* A PR from a fork: its head is reachable only as refs/pull/N/head of the
 * base repository, and lands there in the mirror, never among its branches. */
static void test_pull_request_from_a_fork(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/lib", "{\"lib.c\":\"v1\\n\"}", INSTALLATION);
    json_decref(fakegh_control(&fake, "repos", "{\"full_name\":\"forker/lib\",\"files\":{\"lib.c\":\"v1\\n\"}}"));
    json_t *c = fakegh_control(&fake, "commits",
                               "{\"repo\":\"forker/lib\",\"branch\":\"main\",\"files\":{\"lib.c\":\"v2 from fork\\n\"}}");
    const char *fork_sha = json_string_value(json_object_get(c, "sha"));
    json_t *pr = fakegh_control(&fake, "pulls", "{\"repo\":\"acme/lib\",\"head\":\"main\",\"head_repo\":\"forker/lib\"}");
    int number = (int)json_integer_value(json_object_get(pr, "number"));
    assert_true(number > 0);
    char *token = fakegh_token(&fake, INSTALLATION);

    workspace_spec_t spec = {
        .repo = "acme/lib", .token = token, .job_id = "401", .branch = "patchbay/review", .pull_number = number};
    workspace_t *ws = NULL;
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), 0);
    assert_string_equal(ws->base_oid, fork_sha);
    char ref[64];
    snprintf(ref, sizeof(ref), "refs/pull/%d/head", number);
    assert_string_equal(ws->base_ref, ref);
    char path[512];
    snprintf(path, sizeof(path), "%s/lib.c", ws->path);
    char *text = read_file(path);
    assert_string_equal(text, "v2 from fork\n");
    free(text);

    /* the mirror: the fork's commit only under refs/pull/, main untouched */
    char *refs =
        fakegh_sh(NULL, "git --git-dir='%s/mirrors/acme/lib.git' for-each-ref --format='%%(refname) %%(objectname)'", data_dir);
    char *main_sha = fakegh_git(&fake, "acme/lib", "rev-parse main");
    char want_pull[160], want_main[160];
    snprintf(want_pull, sizeof(want_pull), "%s %s", ref, fork_sha);
    snprintf(want_main, sizeof(want_main), "refs/heads/main %s", main_sha);
    assert_non_null(strstr(refs, want_pull));
    assert_non_null(strstr(refs, want_main));
    assert_string_not_equal(main_sha, fork_sha);

    free(refs);
    free(main_sha);
    json_decref(c);
    json_decref(pr);
    workspace_free(ws);
    free(token);
}

/* ---------------------------------------------------------------------------
 * Reading a commit, not the work tree
 * ------------------------------------------------------------------------- */

static void test_reading_a_commit(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/docs",
                "{\"AGENTS.md\":\"root rules\\n\",\"src/AGENTS.md\":\"src rules\\nline 2\",\"src/a.c\":\"1\\n2\\n3\\n\","
                "\"src/deep/AGENTS.md\":\"deep\\n\",\"empty.txt\":\"\","
                "\"lib/AGENTS.md\":{\"content\":\"../AGENTS.md\",\"mode\":\"120000\"}}",
                INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/docs", "501", "patchbay/read", token);
    /* what the agent writes in the work tree is not what the commit says */
    write_file(ws, "AGENTS.md", "the agent's own rules\n");
    write_file(ws, "new/AGENTS.md", "made up\n");

    workspace_tree_t *t = NULL;
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_tree_open(&t, ws, ws->base_oid, err, sizeof(err)), WORKSPACE_OK);
    char *text = NULL;
    size_t len = 0, size = 0;
    assert_int_equal(workspace_tree_read(&text, &len, &size, t, "AGENTS.md", 1024), WORKSPACE_OK);
    assert_string_equal(text, "root rules\n");
    assert_int_equal(size, 11);
    free(text);
    /* clipped to max, the whole size still said */
    assert_int_equal(workspace_tree_read(&text, &len, &size, t, "src/AGENTS.md", 4), WORKSPACE_OK);
    assert_string_equal(text, "src ");
    assert_int_equal(len, 4);
    assert_int_equal(size, 16);
    free(text);
    /* directories, links, missing and written-later files are not files of the commit */
    assert_int_equal(workspace_tree_read(&text, &len, &size, t, "src", 1024), WORKSPACE_ENOTFOUND);
    assert_int_equal(workspace_tree_read(&text, &len, &size, t, "lib/AGENTS.md", 1024), WORKSPACE_ENOTFOUND);
    assert_int_equal(workspace_tree_read(&text, &len, &size, t, "new/AGENTS.md", 1024), WORKSPACE_ENOTFOUND);
    assert_int_equal(workspace_tree_read(&text, &len, &size, t, "/etc/passwd", 1024), WORKSPACE_ENOTFOUND);
    assert_null(text);

    size_t lines = 99;
    assert_int_equal(workspace_tree_lines(&lines, t, "src/a.c"), WORKSPACE_OK);
    assert_int_equal(lines, 3);
    assert_int_equal(workspace_tree_lines(&lines, t, "src/AGENTS.md"), WORKSPACE_OK);
    assert_int_equal(lines, 2); /* the last line has no newline */
    assert_int_equal(workspace_tree_lines(&lines, t, "empty.txt"), WORKSPACE_OK);
    assert_int_equal(lines, 0);
    assert_int_equal(workspace_tree_lines(&lines, t, "src/b.c"), WORKSPACE_ENOTFOUND);

    static const char *const names[] = {"AGENTS.md", NULL};
    char **paths = NULL;
    size_t n = 0;
    assert_int_equal(workspace_tree_find(&paths, &n, t, names, 10, err, sizeof(err)), WORKSPACE_OK);
    assert_int_equal(n, 3); /* the link is not a file */
    assert_string_equal(paths[0], "AGENTS.md");
    assert_string_equal(paths[1], "src/AGENTS.md");
    assert_string_equal(paths[2], "src/deep/AGENTS.md");
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    assert_int_equal(workspace_tree_find(&paths, &n, t, names, 1, err, sizeof(err)), WORKSPACE_OK);
    assert_int_equal(n, 1);
    free(paths[0]);
    free(paths);
    workspace_tree_close(t);

    assert_int_equal(workspace_tree_open(&t, ws, "0123456789012345678901234567890123456789", err, sizeof(err)),
                     WORKSPACE_ENOTFOUND);
    assert_null(t);
    assert_int_equal(workspace_tree_open(&t, ws, "main", err, sizeof(err)), WORKSPACE_EINVAL);
    workspace_free(ws);
    free(token);
}

/* ---------------------------------------------------------------------------
 * Changes, commit, push
 * ------------------------------------------------------------------------- */

static const workspace_change_t *find_change(const workspace_changes_t *c, const char *path)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->items[i].path, path) == 0)
            return &c->items[i];
    return NULL;
}

static void test_changes_forbidden_commit_push(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/work",
                "{\"README.md\":\"one\\ntwo\\nthree\\n\",\"old.txt\":\"bye\\n\",\".gitignore\":\"*.log\\n\","
                "\"keep/moved.txt\":\"some content that is long enough to be a rename\\nline two\\n\"}",
                INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/work", "501", "patchbay/5-work", token);

    /* what an agent does: edit, add, delete, rename, a binary, ignored noise, its own commit */
    write_file(ws, "README.md", "one\n2\nthree\nfour\n");
    write_file(ws, "src/new.c", "a\nb\n");
    write_file(ws, ".github/workflows/ci.yml", "on: push\n");
    write_file(ws, "debug.log", "ignored\n");
    char p[512];
    snprintf(p, sizeof(p), "%s/old.txt", ws->path);
    assert_int_equal(unlink(p), 0);
    char q[512];
    snprintf(p, sizeof(p), "%s/keep/moved.txt", ws->path);
    snprintf(q, sizeof(q), "%s/keep/renamed.txt", ws->path);
    assert_int_equal(rename(p, q), 0);
    snprintf(p, sizeof(p), "%s/blob.bin", ws->path);
    FILE *f = fopen(p, "wb");
    fwrite("\0\1\2\3binary\0", 1, 11, f);
    fclose(f);
    free(ws_git(ws, "-c user.name=agent -c user.email=agent@example.com commit -qam 'agent was here'"));
    /* and a repository of its own inside (a cloned dependency) */
    free(ws_git(ws, "init -q vendor/dep && cd vendor/dep && echo x > x.c && git add x.c && "
                    "git -c user.name=a -c user.email=a@b commit -qm dep"));

    workspace_changes_t ch;
    char err[WORKSPACE_ERR_BYTES];
    int rc = workspace_changes(&ch, ws, NULL, err, sizeof(err));
    if (rc != 0)
        fail_msg("workspace_changes: %s", err);
    assert_int_equal(ch.count, 6);
    const workspace_change_t *c;
    assert_non_null(c = find_change(&ch, "README.md"));
    assert_int_equal(c->status, 'M');
    assert_int_equal(c->additions, 2);
    assert_int_equal(c->deletions, 1);
    assert_non_null(c = find_change(&ch, "src/new.c"));
    assert_int_equal(c->status, 'A');
    assert_int_equal(c->additions, 2);
    assert_non_null(c = find_change(&ch, "old.txt"));
    assert_int_equal(c->status, 'D');
    assert_int_equal(c->deletions, 1);
    assert_non_null(c = find_change(&ch, "keep/renamed.txt"));
    assert_int_equal(c->status, 'R');
    assert_string_equal(c->old_path, "keep/moved.txt");
    assert_non_null(c = find_change(&ch, "blob.bin"));
    assert_true(c->binary);
    assert_int_equal(c->additions, 0);
    assert_non_null(find_change(&ch, ".github/workflows/ci.yml"));
    assert_null(find_change(&ch, "debug.log"));
    assert_int_equal(ch.additions, 5);
    assert_int_equal(ch.deletions, 2);

    static const char *const globs[] = {".github/**", "*.pem", "keep/moved.txt"};
    assert_int_equal(workspace_forbidden(&ch, globs, 3), 2);
    assert_string_equal(find_change(&ch, ".github/workflows/ci.yml")->forbidden, ".github/**");
    assert_string_equal(find_change(&ch, "keep/renamed.txt")->forbidden, "keep/moved.txt"); /* renamed away */
    assert_null(find_change(&ch, "README.md")->forbidden);
    workspace_changes_free(&ch);

    workspace_person_t bot = {bot_name, bot_email};
    workspace_person_t who = {"Octo Cat", "octocat@example.com"};
    char oid[WORKSPACE_OID_HEX];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "Fix the parser\n\nSummary here.\n\n", &who, err, sizeof(err)), 0);
    assert_int_equal(strlen(oid), 40);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);

    /* On GitHub: the branch, one commit on top of main, by the bot, with the trailer. */
    assert_str_eq_free(fakegh_git(&fake, "acme/work", "rev-parse patchbay/5-work"), oid);
    char *log = fakegh_git(&fake, "acme/work", "log -1 --format='%%an|%%ae|%%cn|%%ce|%%P' patchbay/5-work");
    char want[1024];
    snprintf(want, sizeof(want), "%s|%s|%s|%s|%s", bot_name, bot_email, bot_name, bot_email, ws->base_oid);
    assert_string_equal(log, want);
    free(log);
    assert_str_eq_free(fakegh_git(&fake, "acme/work", "log -1 --format=%%B patchbay/5-work"),
                       "Fix the parser\n\nSummary here.\n\nCo-authored-by: Octo Cat <octocat@example.com>");
    assert_str_eq_free(
        fakegh_git(&fake, "acme/work", "show --format= --name-status patchbay/5-work | sort | tr '\\t' ' ' | paste -sd'|'"),
        "A .github/workflows/ci.yml|A blob.bin|A src/new.c|D old.txt|M README.md|R100 keep/moved.txt keep/renamed.txt");
    /* locally: HEAD is the bot's commit on the job's branch; only the nested repository is left out */
    assert_str_eq_free(ws_git(ws, "rev-parse HEAD"), oid);
    assert_str_eq_free(ws_git(ws, "status --porcelain"), "?? vendor/");

    assert_token_nowhere(data_dir, token);
    workspace_free(ws);
    free(token);
}

static void test_no_change_makes_no_commit(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/same", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/same", "601", "patchbay/6-same", token);
    write_file(ws, "a.txt", "2\n");
    write_file(ws, "a.txt", "1\n"); /* changed and changed back */
    write_file(ws, "x.log", "noise\n");
    write_file(ws, ".gitignore", "");
    char p[512];
    snprintf(p, sizeof(p), "%s/.gitignore", ws->path);
    unlink(p); /* created and removed */

    workspace_changes_t ch;
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_changes(&ch, ws, NULL, err, sizeof(err)), 0);
    assert_int_equal(ch.count, 1); /* x.log: no .gitignore, so it counts */
    workspace_changes_free(&ch);
    snprintf(p, sizeof(p), "%s/x.log", ws->path);
    unlink(p);
    assert_int_equal(workspace_changes(&ch, ws, NULL, err, sizeof(err)), 0);
    assert_int_equal(ch.count, 0);
    workspace_changes_free(&ch);

    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "nothing", NULL, err, sizeof(err)), WORKSPACE_ENOCHANGE);
    assert_string_equal(oid, "");
    assert_str_eq_free(ws_git(ws, "rev-parse HEAD"), ws->base_oid);
    assert_str_eq_free(ws_git(ws, "rev-list --count HEAD"), "1");
    workspace_free(ws);
    free(token);
}

/* The attempt's bookkeeping: what setup wrote, what the agent changed, what
 * the tests left; only the agent's runs reach the commit. */
static void test_snapshots_carry_only_the_agent_s_change(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/snap", "{\"calc.py\":\"def add(a, b):\\n    return a - b\\n\",\"lock.json\":\"{}\\n\","
                "\"gone.txt\":\"x\\n\",\"dir\":\"a file for now\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/snap", "551", "patchbay/55-snap", token);
    char err[WORKSPACE_ERR_BYTES], before[WORKSPACE_OID_HEX], after[WORKSPACE_OID_HEX], change[WORKSPACE_OID_HEX] = "";
    char index_before[64], index_after[64];

    /* setup: installs, rewrites a tracked lock file */
    write_file(ws, "node_modules/dep/index.js", "module.exports = 1;\n");
    write_file(ws, "lock.json", "{\"resolved\": true}\n");
    char *st = ws_git(ws, "--version >/dev/null && md5sum .git/index");
    snprintf(index_before, sizeof(index_before), "%s", st);
    free(st);
    assert_int_equal(workspace_snapshot(before, ws, err, sizeof(err)), 0);
    /* the snapshot leaves the index the agent's git reads as it was */
    st = ws_git(ws, "--version >/dev/null && md5sum .git/index");
    snprintf(index_after, sizeof(index_after), "%s", st);
    free(st);
    assert_string_equal(index_before, index_after);

    /* the agent, round 1: a fix, a new file, a deletion, a file turned directory */
    write_file(ws, "calc.py", "def add(a, b):\n    return a * b\n");
    write_file(ws, "notes.md", "why\n");
    char p[512];
    snprintf(p, sizeof(p), "%s/gone.txt", ws->path);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/dir", ws->path);
    assert_int_equal(unlink(p), 0);
    write_file(ws, "dir/inside.txt", "now a directory\n");
    assert_int_equal(workspace_snapshot(after, ws, err, sizeof(err)), 0);
    assert_int_equal(workspace_carry(change, ws, change, before, after, err, sizeof(err)), 0);

    /* the tests: a report, a cache (hidden by .git/info/exclude), and they rewrite notes.md */
    write_file(ws, "report.xml", "<testsuite/>\n");
    write_file(ws, "__pycache__/calc.cpython-311.pyc", "\x01" "bytecode");
    write_file(ws, "notes.md", "rewritten by the tests\n");
    assert_int_equal(workspace_snapshot(before, ws, err, sizeof(err)), 0);
    /* the agent, round 2: the right fix */
    write_file(ws, "calc.py", "def add(a, b):\n    return a + b\n");
    assert_int_equal(workspace_snapshot(after, ws, err, sizeof(err)), 0);
    assert_int_equal(workspace_carry(change, ws, change, before, after, err, sizeof(err)), 0);

    workspace_changes_t ch;
    assert_int_equal(workspace_changes(&ch, ws, change, err, sizeof(err)), 0);
    assert_int_equal(ch.count, 5);
    assert_int_equal(find_change(&ch, "calc.py")->status, 'M');
    assert_int_equal(find_change(&ch, "notes.md")->status, 'A');
    assert_int_equal(find_change(&ch, "gone.txt")->status, 'D');
    assert_non_null(find_change(&ch, "dir"));
    assert_non_null(find_change(&ch, "dir/inside.txt"));
    assert_null(find_change(&ch, "lock.json"));
    assert_null(find_change(&ch, "node_modules/dep/index.js"));
    assert_null(find_change(&ch, "report.xml"));
    workspace_changes_free(&ch);
    /* the work tree as a whole would have had all of it (but the cache) */
    assert_int_equal(workspace_changes(&ch, ws, NULL, err, sizeof(err)), 0);
    assert_non_null(find_change(&ch, "report.xml"));
    assert_non_null(find_change(&ch, "lock.json"));
    assert_null(find_change(&ch, "__pycache__/calc.cpython-311.pyc"));
    workspace_changes_free(&ch);

    /* files as the change has them: the agent's notes, not the tests' rewrite */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(workspace_read(&text, &len, ws, change, "notes.md", 1024, err, sizeof(err)), 0);
    assert_string_equal(text, "why\n");
    free(text);
    assert_int_equal(workspace_read(&text, &len, ws, change, "calc.py", 10, err, sizeof(err)), 0);
    assert_int_equal(len, 10);
    free(text);
    assert_int_equal(workspace_read(&text, &len, ws, change, "report.xml", 1024, err, sizeof(err)), WORKSPACE_ENOTFOUND);
    assert_null(text);

    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX];
    assert_int_equal(workspace_commit(oid, ws, change, &bot, "Fix add()", NULL, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    assert_str_eq_free(
        fakegh_git(&fake, "acme/snap", "show --format= --name-status patchbay/55-snap | sort | tr '\\t' ' ' | paste -sd'|'"),
        "A dir/inside.txt|A notes.md|D dir|D gone.txt|M calc.py");
    assert_str_eq_free(fakegh_git(&fake, "acme/snap", "show patchbay/55-snap:notes.md"), "why");
    /* a change carried onto itself with nothing new is the same tree; nothing at all is the base */
    char same[WORKSPACE_OID_HEX], base[WORKSPACE_OID_HEX];
    assert_int_equal(workspace_carry(same, ws, change, after, after, err, sizeof(err)), 0);
    assert_string_equal(same, change);
    assert_int_equal(workspace_carry(base, ws, "", "", "", err, sizeof(err)), 0);
    assert_int_equal(workspace_commit(oid, ws, base, &bot, "nothing", NULL, err, sizeof(err)), WORKSPACE_ENOCHANGE);
    workspace_free(ws);
    free(token);
}

static void test_refused_push_is_an_error_with_the_hooks_words(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/guarded", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/guarded", "701", "patchbay/7-guarded", token);
    write_file(ws, "a.txt", "2\n");
    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX], err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "change", NULL, err, sizeof(err)), 0);

    json_decref(fakegh_control(&fake, "refuse_push",
                               "{\"repo\":\"acme/guarded\",\"message\":\"GH006: Protected branch update failed "
                               "for refs/heads/patchbay/7-guarded.\"}"));
    int rc = workspace_push(&cfg, ws, token, err, sizeof(err));
    assert_int_equal(rc, WORKSPACE_EREFUSED);
    assert_non_null(strstr(err, "GH006: Protected branch update failed"));
    assert_non_null(strstr(err, "refs/heads/patchbay/7-guarded"));
    int st = 0;
    free(fakegh_sh(&st, "git --git-dir='%s/acme/guarded.git' rev-parse --verify -q patchbay/7-guarded", fake.git_root));
    assert_int_not_equal(st, 0); /* nothing arrived */

    /* the refusal was for one push; the retry goes through */
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    assert_str_eq_free(fakegh_git(&fake, "acme/guarded", "rev-parse patchbay/7-guarded"), oid);
    workspace_free(ws);
    free(token);
}

/* A killed attempt's push can land while the retry pushes the same branch:
 * the server then refuses the retry's update as stale ("cannot lock ref").
 * The branch is the bot's and the refspec forced, so the push is made again
 * against the new tip, and the retry's commit is what GitHub ends up with. */
static void test_push_that_races_another_pushes_again(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/race", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/race", "811", "patchbay/81-race", token);
    assert_string_equal(ws->remote_oid, ""); /* the branch is new as far as this job can see */
    write_file(ws, "a.txt", "retry\n");
    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX], err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "retry", NULL, err, sizeof(err)), 0);
    int st = 0;
    free(fakegh_sh(&st, "echo 'refs/heads/patchbay/81-race %s' > '%s/acme/race.git/fake-race-push'", ws->base_oid,
                   fake.git_root));
    assert_int_equal(st, 0);
    int rc = workspace_push(&cfg, ws, token, err, sizeof(err));
    if (rc != 0)
        fail_msg("push: %s", err);
    assert_str_eq_free(fakegh_git(&fake, "acme/race", "rev-parse patchbay/81-race"), oid);
    free(fakegh_sh(&st, "test -e '%s/acme/race.git/fake-race-push'", fake.git_root));
    assert_int_not_equal(st, 0); /* the race was played */
    workspace_free(ws);
    free(token);
}

/* Same commit twice: fine. A retried job (crash after the push) makes a new
 * commit on the same branch: the '+' refspec replaces the old one. With
 * resume, a retry starts from what the previous attempt pushed. */
static void test_push_is_idempotent_and_retry_safe(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/retry", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_person_t bot = {bot_name, bot_email};
    char oid1[WORKSPACE_OID_HEX], oid2[WORKSPACE_OID_HEX], err[WORKSPACE_ERR_BYTES];

    workspace_t *ws = prepare_ok("acme/retry", "801", "patchbay/8-retry", token);
    write_file(ws, "a.txt", "first attempt\n");
    assert_int_equal(workspace_commit(oid1, ws, NULL, &bot, "attempt 1", NULL, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    assert_str_eq_free(fakegh_git(&fake, "acme/retry", "rev-parse patchbay/8-retry"), oid1);
    workspace_free(ws);

    /* the retry: same job id, same branch; it sees what is on GitHub */
    ws = prepare_ok("acme/retry", "801", "patchbay/8-retry", token);
    assert_string_equal(ws->remote_oid, oid1);
    assert_string_not_equal(ws->base_oid, oid1); /* not resuming: from main again */
    write_file(ws, "a.txt", "second attempt\n");
    assert_int_equal(workspace_commit(oid2, ws, NULL, &bot, "attempt 2", NULL, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    assert_str_eq_free(fakegh_git(&fake, "acme/retry", "rev-parse patchbay/8-retry"), oid2);
    workspace_free(ws);

    /* resume: start from the branch on GitHub and add to it */
    workspace_spec_t spec = {.repo = "acme/retry", .token = token, .job_id = "802", .branch = "patchbay/8-retry", .resume = 1};
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), 0);
    assert_string_equal(ws->base_oid, oid2);
    assert_string_equal(ws->base_ref, "refs/heads/patchbay/8-retry");
    char path[512];
    snprintf(path, sizeof(path), "%s/a.txt", ws->path);
    char *text = read_file(path);
    assert_string_equal(text, "second attempt\n");
    free(text);
    write_file(ws, "b.txt", "more\n");
    assert_int_equal(workspace_commit(oid1, ws, NULL, &bot, "follow-up", NULL, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    char *parent = fakegh_git(&fake, "acme/retry", "rev-parse patchbay/8-retry^");
    assert_string_equal(parent, oid2); /* a fast-forward on top of the previous attempt */
    free(parent);
    workspace_free(ws);
    free(token);
}

/* ---------------------------------------------------------------------------
 * Credentials and failures
 * ------------------------------------------------------------------------- */

static void test_bad_and_expired_tokens_fail_fast(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/private", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    json_decref(fakegh_control(&fake, "repos", "{\"full_name\":\"acme/secret\",\"private\":true,\"files\":{\"a\":\"1\"}}"));
    char err[WORKSPACE_ERR_BYTES];
    workspace_t *ws = NULL;

    /* a made-up token: one auth failure, no retry storm */
    fakegh_reset_calls(&fake);
    workspace_spec_t spec = {
        .repo = "acme/private", .token = "ghs_notARealTokenAtAll0000000000000000", .job_id = "901", .branch = "patchbay/9-x"};
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_EAUTH);
    assert_non_null(strstr(err, "refused the installation token"));
    size_t requests = fakegh_count(&fake, NULL, "acme/private");
    assert_true(requests >= 1);
    assert_true(requests <= 2); /* the challenge, then one try with the token */

    /* an expired one, on a repository already mirrored */
    char *token = fakegh_token(&fake, INSTALLATION);
    spec.token = token;
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), 0);
    write_file(ws, "a.txt", "2\n");
    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "change", NULL, err, sizeof(err)), 0);
    json_decref(fakegh_control(&fake, "expire_tokens", "{}"));
    fakegh_reset_calls(&fake);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), WORKSPACE_EAUTH);
    assert_true(fakegh_count(&fake, NULL, "acme/private") <= 2);
    workspace_t *ws2 = NULL;
    spec.job_id = "902";
    assert_int_equal(workspace_prepare(&ws2, &cfg, &spec, err, sizeof(err)), WORKSPACE_EAUTH);
    workspace_free(ws);

    /* no token at all: a private repository asks for one, a public one does not */
    spec.token = NULL;
    spec.repo = "acme/secret";
    assert_int_equal(workspace_prepare(&ws2, &cfg, &spec, err, sizeof(err)), WORKSPACE_EAUTH);
    assert_non_null(strstr(err, "no token"));
    json_decref(fakegh_control(&fake, "repos", "{\"full_name\":\"acme/open\",\"files\":{\"a\":\"1\"}}"));
    spec.repo = "acme/open";
    assert_int_equal(workspace_prepare(&ws2, &cfg, &spec, err, sizeof(err)), 0);
    workspace_free(ws2);
    free(token);
}

/* A token that may read but not write: the push is refused with 403, which
 * is an auth problem (the App's permissions), not a retry. */
static void test_push_without_write_permission(void **state)
{
    (void)state;
    json_decref(fakegh_control(&fake, "repos",
                               "{\"full_name\":\"readonly/repo\",\"private\":true,"
                               "\"files\":{\"a.txt\":\"1\\n\"}}"));
    json_decref(fakegh_control(&fake, "installations",
                               "{\"id\":88,\"account\":\"readonly\",\"repositories\":\"all\","
                               "\"permissions\":{\"contents\":\"read\",\"metadata\":\"read\"}}"));
    char *token = fakegh_token(&fake, 88);
    workspace_t *ws = prepare_ok("readonly/repo", "1501", "patchbay/15-ro", token);
    write_file(ws, "a.txt", "2\n");
    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX], err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "change", NULL, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), WORKSPACE_EAUTH);
    assert_non_null(strstr(err, "403"));
    assert_non_null(strstr(err, "contents: write"));
    workspace_free(ws);
    free(token);
}

/* As root, libgit2 refuses repositories owned by another user; the error
 * says what to do about it. */
static void test_foreign_owner_is_explained(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    fakegh_repo(&fake, "acme/owned", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_mirror_sync(&cfg, "acme/owned", token, NULL, 0, err, sizeof(err)), 0);
    int st = 0;
    free(fakegh_sh(&st, "chown -R 54321:54321 '%s/mirrors/acme/owned.git'", data_dir));
    assert_int_equal(st, 0);
    workspace_t *ws = NULL;
    workspace_spec_t spec = {.repo = "acme/owned", .token = token, .job_id = "1601", .branch = "patchbay/16-x"};
    int rc = workspace_prepare(&ws, &cfg, &spec, err, sizeof(err));
    if (rc != WORKSPACE_EIO || strstr(err, "another user") == NULL)
        fail_msg("%s: %s", workspace_err_name(rc), err);
    free(token);
}

static void test_network_failures_are_retryable(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/flaky", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    char err[WORKSPACE_ERR_BYTES];
    workspace_t *ws = NULL;
    workspace_spec_t spec = {.repo = "acme/flaky", .token = token, .job_id = "1001", .branch = "patchbay/10-x"};

    json_decref(fakegh_control(&fake, "faults", "{\"type\":\"status\",\"status\":502,\"target\":\"git\",\"count\":1}"));
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), WORKSPACE_ERETRY);
    assert_non_null(strstr(err, "502"));
    /* nothing half-made: the next attempt creates the mirror normally */
    assert_int_equal(workspace_prepare(&ws, &cfg, &spec, err, sizeof(err)), 0);
    assert_int_equal(ws->mirror_created, 1);
    workspace_free(ws);

    /* nobody listening */
    workspace_config_t down = cfg;
    down.git_url = "http://127.0.0.1:1";
    spec.job_id = "1002";
    assert_int_equal(workspace_prepare(&ws, &down, &spec, err, sizeof(err)), WORKSPACE_ERETRY);
    free(token);
}

/* The agent controls the checkout's .git. Whatever it writes there, the
 * push goes to GITHUB_URL with the token and nowhere else, and commits take
 * files from the work tree only. */
static void test_push_ignores_what_the_agent_wrote_in_git_config(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/sly", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/sly", "1101", "patchbay/11-sly", token);
    char *outside = fakegh_sh(NULL, "d=$(mktemp -d) && echo secret > $d/stolen.txt && echo $d");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "config url.http://127.0.0.1:1/.insteadOf %s/", fake.base_url);
    free(ws_git(ws, cmd));
    snprintf(cmd, sizeof(cmd), "config core.worktree %s", outside);
    free(ws_git(ws, cmd));
    free(ws_git(ws, "config http.proxy http://127.0.0.1:1"));
    write_file(ws, "a.txt", "2\n");

    workspace_person_t bot = {bot_name, bot_email};
    char oid[WORKSPACE_OID_HEX], err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_commit(oid, ws, NULL, &bot, "change", NULL, err, sizeof(err)), 0);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), 0);
    assert_str_eq_free(fakegh_git(&fake, "acme/sly", "ls-tree --name-only patchbay/11-sly"), "a.txt");

    /* borrowed objects: refused outright */
    char alt[512];
    snprintf(alt, sizeof(alt), "%s/.git/objects/info/alternates", ws->path);
    FILE *f = fopen(alt, "w");
    fprintf(f, "%s/mirrors/acme/app.git/objects\n", data_dir);
    fclose(f);
    assert_int_equal(workspace_push(&cfg, ws, token, err, sizeof(err)), WORKSPACE_EIO);
    assert_non_null(strstr(err, "alternates"));

    free(fakegh_sh(NULL, "rm -rf '%s'", outside));
    free(outside);
    workspace_free(ws);
    free(token);
}

/* ---------------------------------------------------------------------------
 * Concurrency, eviction, removal
 * ------------------------------------------------------------------------- */

/* Two processes fetch the same new repository at once: the lock makes the
 * second wait and then find the mirror complete, so GitHub sends the pack
 * once. The first request stalls a second to make the overlap certain. */
static void test_concurrent_fetches_are_serialized(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/busy", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    json_decref(fakegh_control(&fake, "faults",
                               "{\"type\":\"stall\",\"seconds\":1,\"target\":\"git\",\"path\":\"acme/busy\",\"count\":1}"));
    fakegh_reset_calls(&fake);

    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0)
                _exit(3);
            char err[WORKSPACE_ERR_BYTES];
            int rc = workspace_mirror_sync(&cfg, "acme/busy", token, NULL, 0, err, sizeof(err));
            if (rc != 0)
                fprintf(stderr, "child %d: %s\n", i, err);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]); /* both start now */
    for (int i = 0; i < 2; i++) {
        int st = 0;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    assert_int_equal(upload_packs(), 1);
    assert_int_equal(fakegh_count(&fake, "GET", "acme/busy.*info/refs"), 4); /* challenge + token, twice */
    char *mirrors = fakegh_sh(NULL, "ls -a '%s/mirrors/acme'", data_dir);
    assert_string_equal(mirrors, ".\n..\nbusy.git\nbusy.lock"); /* no temp dir left over */
    free(mirrors);
    free(token);
}

static void set_last_used(const char *repo_dir, time_t when)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/mirrors/%s.git/patchbay-last-used", data_dir, repo_dir);
    struct timespec ts[2] = {{when, 0}, {when, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static uint64_t du(const char *repo_dir)
{
    char *out = fakegh_sh(NULL, "du -sB1 '%s/mirrors/%s.git' | cut -f1", data_dir, repo_dir);
    uint64_t n = strtoull(out, NULL, 10);
    free(out);
    return n;
}

static int mirror_exists(const char *repo_dir)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/mirrors/%s.git", data_dir, repo_dir);
    return access(p, F_OK) == 0;
}

static void test_lru_eviction_over_budget(void **state)
{
    (void)state;
    char *token = fakegh_token(&fake, INSTALLATION);
    const char *names[] = {"acme/lru-a", "acme/lru-b", "acme/lru-c", "acme/lru-d"};
    char err[WORKSPACE_ERR_BYTES];
    for (int i = 0; i < 4; i++) {
        fakegh_repo(&fake, names[i], "{\"a.txt\":\"some text to take some room\\n\"}", INSTALLATION);
        assert_int_equal(workspace_mirror_sync(&cfg, names[i], token, NULL, 0, err, sizeof(err)), 0);
    }
    time_t now = time(NULL);
    set_last_used("acme/lru-a", now - 400); /* oldest */
    set_last_used("acme/lru-b", now - 300);
    set_last_used("acme/lru-c", now - 200);
    set_last_used("acme/lru-d", now - 100);

    /* no budget: nothing goes */
    assert_int_equal(workspace_mirror_evict(&cfg, NULL, err, sizeof(err)), 0);

    /* room for c and d: a and b go, oldest first; d is kept as in use even though... */
    workspace_config_t tight = cfg;
    tight.mirror_budget_bytes = du("acme/lru-c") + du("acme/lru-d");
    /* ... b is locked by another process right now: skipped, so c goes instead */
    char lockp[512];
    snprintf(lockp, sizeof(lockp), "%s/mirrors/acme/lru-b.lock", data_dir);
    int fd = open(lockp, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    pid_t holder = fork();
    if (holder == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion skips the kill below */
        int hfd = open(lockp, O_RDWR);
        flock(hfd, LOCK_EX);
        pause();
        _exit(0);
    }
    for (int i = 0; i < 500 && flock(fd, LOCK_EX | LOCK_NB) == 0; i++) {
        flock(fd, LOCK_UN);
        usleep(10000);
    }
    assert_int_equal(workspace_mirror_evict(&tight, NULL, err, sizeof(err)), 2);
    assert_false(mirror_exists("acme/lru-a"));
    assert_true(mirror_exists("acme/lru-b"));
    assert_false(mirror_exists("acme/lru-c"));
    assert_true(mirror_exists("acme/lru-d"));
    kill(holder, SIGTERM);
    waitpid(holder, NULL, 0);
    close(fd);

    /* `keep` is never evicted, even when it is the oldest */
    set_last_used("acme/lru-b", now - 50);
    set_last_used("acme/lru-d", now - 500);
    tight.mirror_budget_bytes = 1;
    assert_int_equal(workspace_mirror_evict(&tight, "acme/lru-d", err, sizeof(err)), 1);
    assert_true(mirror_exists("acme/lru-d"));
    assert_false(mirror_exists("acme/lru-b"));

    /* an evicted mirror comes back on next use, with a full fetch */
    fakegh_reset_calls(&fake);
    workspace_t *ws = prepare_ok("acme/lru-a", "1201", "patchbay/12-a", token);
    assert_int_equal(ws->mirror_created, 1);
    assert_int_equal(upload_packs(), 1);
    workspace_free(ws);

    /* workspace_prepare evicts with the configured budget, keeping its own */
    cfg.mirror_budget_bytes = 1;
    ws = prepare_ok("acme/lru-d", "1202", "patchbay/12-d", token);
    assert_true(mirror_exists("acme/lru-d"));
    assert_false(mirror_exists("acme/lru-a"));
    workspace_free(ws);
    free(token);
}

static int count_packs(const char *repo_dir)
{
    char *out = fakegh_sh(NULL, "ls '%s/mirrors/%s.git/objects/pack' | grep -c '\\.pack$'", data_dir, repo_dir);
    int n = atoi(out);
    free(out);
    return n;
}

/* libgit2 adds a pack per fetch; the mirror merges the small ones, and
 * nothing is lost on the way. */
static void test_mirror_packs_are_merged(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/busybee", "{\"f0.txt\":\"0\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_mirror_sync(&cfg, "acme/busybee", token, NULL, 0, err, sizeof(err)), 0);
    int most = 0;
    const char *sha = NULL;
    json_t *c = NULL;
    for (int i = 1; i <= 20; i++) {
        json_decref(c);
        c = fakegh_control(&fake, "commits",
                           "{\"repo\":\"acme/busybee\",\"branch\":\"main\",\"files\":{\"f%d.txt\":\"%d\\n\"}}", i, i);
        sha = json_string_value(json_object_get(c, "sha"));
        assert_int_equal(workspace_mirror_sync(&cfg, "acme/busybee", token, NULL, 0, err, sizeof(err)), 0);
        int n = count_packs("acme/busybee");
        most = n > most ? n : most;
    }
    assert_true(most <= 16);
    assert_true(count_packs("acme/busybee") < 16);
    int st = 0;
    char *fsck = fakegh_sh(&st, "git --git-dir='%s/mirrors/acme/busybee.git' fsck --no-dangling 2>&1", data_dir);
    if (st != 0)
        fail_msg("git fsck of the mirror: %s", fsck);
    free(fsck);

    workspace_t *ws = prepare_ok("acme/busybee", "1401", "patchbay/14-bee", token);
    assert_string_equal(ws->base_oid, sha);
    assert_str_eq_free(ws_git(ws, "rev-list --count HEAD"), "21");
    assert_str_eq_free(ws_git(ws, "ls-files | wc -l"), "21");
    workspace_free(ws);
    json_decref(c);
    free(token);
}

static void test_workspace_removal(void **state)
{
    (void)state;
    fakegh_repo(&fake, "acme/tidy", "{\"a.txt\":\"1\\n\"}", INSTALLATION);
    char *token = fakegh_token(&fake, INSTALLATION);
    workspace_t *ws = prepare_ok("acme/tidy", "1301", "patchbay/13-tidy", token);
    /* an agent leaves unreadable, unwritable directories behind */
    write_file(ws, "locked/inner/file.txt", "x\n");
    char p[512];
    snprintf(p, sizeof(p), "%s/locked/inner", ws->path);
    chmod(p, 0);
    snprintf(p, sizeof(p), "%s/locked", ws->path);
    chmod(p, 0500);
    char err[WORKSPACE_ERR_BYTES];
    assert_int_equal(workspace_remove(&cfg, "1301", err, sizeof(err)), 0);
    assert_int_equal(access(ws->dir, F_OK), -1);
    assert_int_equal(workspace_remove(&cfg, "1301", err, sizeof(err)), 0); /* gone already: fine */
    /* the mirror stays */
    assert_true(mirror_exists("acme/tidy"));

    /* a crashed attempt's leftovers are replaced by the next prepare */
    workspace_free(ws);
    ws = prepare_ok("acme/tidy", "1302", "patchbay/13-tidy", token);
    write_file(ws, "junk.txt", "left by a crash\n");
    workspace_free(ws);
    ws = prepare_ok("acme/tidy", "1302", "patchbay/13-tidy", token);
    snprintf(p, sizeof(p), "%s/junk.txt", ws->path);
    assert_int_equal(access(p, F_OK), -1);
    workspace_free(ws);
    free(token);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_branch_names),
        cmocka_unit_test(test_config_init),
        cmocka_unit_test_setup_teardown(test_bad_names_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_job_makes_mirror_and_checkout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_job_reuses_the_mirror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_branch_and_missing_things, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_request_from_a_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_forbidden_commit_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_change_makes_no_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_push_is_an_error_with_the_hooks_words, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_is_idempotent_and_retry_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_that_races_another_pushes_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_and_expired_tokens_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_without_write_permission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_owner_is_explained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_network_failures_are_retryable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_ignores_what_the_agent_wrote_in_git_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_fetches_are_serialized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lru_eviction_over_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_packs_are_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspace_removal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_carry_only_the_agent_s_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reading_a_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
