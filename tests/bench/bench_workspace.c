/*
 * bench_workspace — how fast is the second job's workspace, next to a fresh
 * clone? (issue 5, "Speed": ready in <= 20% of a fresh clone's time.)
 *
 *   bench_workspace [--commits N] [--files N] [--runs N] [--dir DIR] [--keep 1]
 *
 * Generates a repository of N commits (default 20,000) over N files
 * (default 5,000) with `git fast-import` straight into the fake GitHub's
 * bare repository (the first commit adds every file, each later one rewrites
 * one or two), repacks it with a bitmap as GitHub serves, and then times,
 * against the fake's git smart HTTP with a real installation token:
 *   fresh clone   git_clone of the whole repository with libgit2 — what a
 *                 job would pay every time without a mirror;
 *   first job     workspace_prepare with no mirror yet (clone into the
 *                 mirror + checkout);
 *   second job    workspace_prepare with the mirror there (one ref
 *                 advertisement + linked packs + checkout), median of --runs.
 * Prints the figures and second job / fresh clone. The fake is Python with
 * `git http-backend` behind it, so network-side figures are a floor for
 * what github.com costs, not a ceiling.
 */
#include <git2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakegh.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "jobs/workspace/workspace.h"

#define BENCH_INSTALLATION 5
#define BENCH_REPO "bench/big"
#define BENCH_MAX_RUNS 15

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_workspace: %s: %s\n", what, err);
    exit(1);
}

/* One file's text at a version: ~12 lines, different per file and version. */
static int file_text(char *out, size_t outlen, long file, long version)
{
    return snprintf(out, outlen,
                    "/* generated file %ld, version %ld */\n#include <stdio.h>\n\nint f%ld_value(void)\n{\n"
                    "    return %ld;\n}\n\nint f%ld_twice(int x)\n{\n    return 2 * x + %ld;\n}\n",
                    file, version, file, (file * 7919 + version) % 100003, file, version % 97);
}

static void file_path(char *out, size_t outlen, long file)
{
    snprintf(out, outlen, "src/mod%02ld/sub%02ld/file%05ld.c", file % 50, (file / 50) % 20, file);
}

static void generate(fakegh_t *fake, long commits, long files)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git --git-dir='%s/%s.git' fast-import --quiet", fake->git_root,
             BENCH_REPO);
    FILE *fi = popen(cmd, "w");
    if (fi == NULL)
        die("popen", cmd);
    char text[512], path[128];
    long t = 1700000000;
    unsigned long long rnd = 88172645463325252ULL;
    for (long c = 0; c < commits; c++) {
        fprintf(fi, "commit refs/heads/main\ncommitter Bench <bench@example.com> %ld +0000\n", t + c * 60);
        char msg[64];
        int ml = snprintf(msg, sizeof(msg), "change %ld\n", c);
        fprintf(fi, "data %d\n%s\n", ml, msg);
        if (c == 0) {
            for (long f = 0; f < files; f++) {
                file_path(path, sizeof(path), f);
                int n = file_text(text, sizeof(text), f, 0);
                fprintf(fi, "M 100644 inline %s\ndata %d\n%s\n", path, n, text);
            }
        } else {
            int k = 1 + (int)(c % 2);
            for (int j = 0; j < k; j++) {
                rnd ^= rnd << 13;
                rnd ^= rnd >> 7;
                rnd ^= rnd << 17;
                long f = (long)(rnd % (unsigned long long)files);
                file_path(path, sizeof(path), f);
                int n = file_text(text, sizeof(text), f, c);
                fprintf(fi, "M 100644 inline %s\ndata %d\n%s\n", path, n, text);
            }
        }
        fputc('\n', fi);
    }
    if (pclose(fi) != 0)
        die("git fast-import", "failed");
    int st = 0;
    char *out = fakegh_sh(&st,
                          "GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git --git-dir='%s/%s.git' repack -adq -b "
                          "&& du -sh '%s/%s.git' | cut -f1",
                          fake->git_root, BENCH_REPO, fake->git_root, BENCH_REPO);
    if (st != 0)
        die("git repack", out);
    printf("repository: %ld commits, %ld files, %s on the server\n", commits, files, out);
    free(out);
}

typedef struct {
    const char *token;
    int calls;
} cred_t;

static int creds(git_credential **out, const char *url, const char *user, unsigned int allowed, void *payload)
{
    cred_t *c = payload;
    if (c->calls++ > 0)
        return GIT_EAUTH;
    return git_credential_userpass_plaintext_new(out, "x-access-token", c->token);
}

static double fresh_clone_ms(const char *url, const char *token, const char *dir)
{
    git_clone_options o;
    git_clone_options_init(&o, GIT_CLONE_OPTIONS_VERSION);
    cred_t c = {token, 0};
    o.checkout_opts.disable_filters = 1; /* as workspace_prepare does: compare like with like */
    o.fetch_opts.callbacks.credentials = creds;
    o.fetch_opts.callbacks.payload = &c;
    git_repository *repo = NULL;
    int64_t t0 = clock_mono_ms();
    if (git_clone(&repo, url, dir, &o) != 0)
        die("git_clone", git_error_last() ? git_error_last()->message : "?");
    int64_t t1 = clock_mono_ms();
    git_repository_free(repo);
    return (double)(t1 - t0);
}

/* What any checkout pays on this filesystem: the same files and
 * directories written with plain syscalls. */
static double floor_ms(const char *dir, long files)
{
    char path[512], text[512], rel[128];
    int64_t t0 = clock_mono_ms();
    for (long f = 0; f < files; f++) {
        file_path(rel, sizeof(rel), f);
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        for (char *p = path + strlen(dir) + 1; *p; p++) {
            if (*p == '/') {
                *p = '\0';
                mkdir(path, 0755);
                *p = '/';
            }
        }
        int n = file_text(text, sizeof(text), f, 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, text, (size_t)n) != n)
            die("write", path);
        close(fd);
    }
    return (double)(clock_mono_ms() - t0);
}

static double prepare_ms(const workspace_config_t *cfg, const char *token, const char *job, int *created, double *fetch)
{
    workspace_spec_t spec = {.repo = BENCH_REPO, .token = token, .job_id = job, .branch = "patchbay/1-bench"};
    workspace_t *ws = NULL;
    char err[WORKSPACE_ERR_BYTES];
    int64_t t0 = clock_mono_ms();
    if (workspace_prepare(&ws, cfg, &spec, err, sizeof(err)) != 0)
        die("workspace_prepare", err);
    int64_t t1 = clock_mono_ms();
    *created = ws->mirror_created;
    *fetch = (double)ws->fetch_ms;
    workspace_free(ws); /* removed at the end, with everything: deleting thousands of files between runs
                           would slow the next run's inode allocation on some filesystems */
    return (double)(t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long commits = 20000, files = 5000;
    int runs = 5;
    const char *base = "/tmp";
    int keep = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--commits") == 0)
            commits = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--files") == 0)
            files = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            base = argv[i + 1];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = atoi(argv[i + 1]);
    }
    if (commits < 1 || files < 1 || runs < 1 || runs > BENCH_MAX_RUNS) {
        fprintf(stderr, "usage: bench_workspace [--commits N] [--files N] [--runs 1-%d]\n", BENCH_MAX_RUNS);
        return 2;
    }
    log_configure(getenv("LOG_LEVEL") ? getenv("LOG_LEVEL") : "warn", "text");
    char err[WORKSPACE_ERR_BYTES];
    if (workspace_init(err, sizeof(err)) != 0)
        die("workspace_init", err);

    fakegh_t fake;
    fakegh_start(&fake);
    json_decref(fakegh_control(&fake, "repos", "{\"full_name\":\"%s\",\"private\":true}", BENCH_REPO));
    json_decref(fakegh_control(&fake, "installations", "{\"id\":%d,\"account\":\"bench\",\"repositories\":\"all\"}",
                               BENCH_INSTALLATION));
    int64_t g0 = clock_mono_ms();
    generate(&fake, commits, files);
    printf("generated in %.1f s\n", (double)(clock_mono_ms() - g0) / 1000.0);
    char *token = fakegh_token(&fake, BENCH_INSTALLATION);

    char data_dir[256];
    snprintf(data_dir, sizeof(data_dir), "%s/pbbench-ws-XXXXXX", base);
    if (mkdtemp(data_dir) == NULL)
        die("mkdtemp", data_dir);
    char url[160], clone_dir[320];
    snprintf(url, sizeof(url), "%s/%s.git", fake.base_url, BENCH_REPO);

    /* Median of a few: the very first request to the fake pays for cold caches. */
    int clone_runs = runs < 3 ? runs : 3;
    double clones[BENCH_MAX_RUNS];
    for (int i = 0; i < clone_runs; i++) {
        snprintf(clone_dir, sizeof(clone_dir), "%s/fresh-clone-%d", data_dir, i);
        clones[i] = fresh_clone_ms(url, token, clone_dir);
    }
    qsort(clones, (size_t)clone_runs, sizeof(double), cmp_double);
    double clone = clones[clone_runs / 2];
    printf("fresh clone (libgit2 git_clone over HTTP), median of %d: %6.0f ms (min %.0f, max %.0f)\n", clone_runs, clone,
           clones[0], clones[clone_runs - 1]);

    workspace_config_t cfg = {.data_dir = data_dir, .git_url = fake.base_url};
    int created = 0;
    double fetch = 0;
    double first = prepare_ms(&cfg, token, "bench-1", &created, &fetch);
    printf("first job (new mirror + checkout):            %8.0f ms (fetch %.0f ms)%s\n", first, fetch,
           created ? "" : " (mirror existed?)");
    double second[BENCH_MAX_RUNS], fetches[BENCH_MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        char job[32];
        snprintf(job, sizeof(job), "bench-%d", i + 2);
        second[i] = prepare_ms(&cfg, token, job, &created, &fetches[i]);
        if (created)
            die("second job", "made a new mirror");
    }
    qsort(second, (size_t)runs, sizeof(double), cmp_double);
    qsort(fetches, (size_t)runs, sizeof(double), cmp_double);
    double med = second[runs / 2];
    printf("  of which mirror lock + fetch (median): %.0f ms\n", fetches[runs / 2]);
    printf("second job (mirror fetch + checkout), median of %d: %6.0f ms (min %.0f, max %.0f)\n", runs, med, second[0],
           second[runs - 1]);
    printf("second job / fresh clone: %.1f%% (target <= 20%%: %s)\n", 100.0 * med / clone,
           med <= 0.2 * clone ? "met" : "NOT met");
    char floor_dir[320];
    snprintf(floor_dir, sizeof(floor_dir), "%s/floor", data_dir);
    mkdir(floor_dir, 0755);
    printf("floor: writing the same %ld files with open/write/close in %s: %.0f ms\n", files, base, floor_ms(floor_dir, files));

    if (keep)
        printf("kept the data dir %s (mirror in mirrors/bench/big.git)\n", data_dir);
    else
        free(fakegh_sh(NULL, "rm -rf '%s'", data_dir));
    free(token);
    fakegh_stop(&fake);
    return 0;
}
