/*
 * workspace — see workspace.h. The mirror side is in workspace_mirror.c, the
 * libgit2 plumbing in workspace_util.c.
 *
 * How a checkout is made from the mirror
 * --------------------------------------
 * Three ways were weighed (figures from tests/bench/bench_workspace on a
 * 20,000-commit, 5,000-file repository; docs/workspaces.md has them):
 *   - git_clone from the mirror's path: copies or links the objects, then
 *     runs a local fetch that writes a remote-tracking ref per branch and
 *     checks out the default branch — a second checkout for any other base;
 *   - a fresh repository borrowing the mirror's objects through
 *     objects/info/alternates: nothing copied, but the checkout then depends
 *     on the mirror for its whole life — an eviction, or a sandbox that
 *     cannot see the mirror's path, breaks the agent's `git diff`;
 *   - a fresh repository whose objects/pack holds hard links to the
 *     mirror's packs (a copy when the data dir spans filesystems).
 * We take the third. A pack is immutable once written — git and libgit2 add
 * new packs and delete old ones, never rewrite one in place — so a link is
 * as good as a copy, costs one directory entry per pack, and keeps the
 * checkout whole when the mirror is fetched, evicted or deleted under it.
 * Links are made with the mirror locked, so no eviction deletes a pack
 * half-linked. Then the job's branch is created at the base and checked out
 * (one checkout, straight to the right commit).
 *
 * After the agent: the work tree is not trusted
 * ---------------------------------------------
 * The agent could have rewritten .git: core.worktree pointing at /, an
 * url.*.insteadOf sending our push (and its token) elsewhere, alternates
 * borrowing another repository's objects, a .git that is a symlink. So
 * workspace_changes, _commit and _push reopen the repository with an empty
 * in-memory config, the work tree pinned to ws->path, and refuse a .git that
 * is not a plain directory or that borrows objects (alternates, commondir).
 * The push URL is rebuilt from GITHUB_URL, never read from the checkout.
 */
#include "workspace.h"
#include "workspace_int.h"

#include "pathglob.h"
#include "app/common/clock.h"
#include "app/common/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const workspace_shared_paths[] = {".git/objects/pack", NULL};

#define COPY_CHUNK_BYTES (256 * 1024)

/* ---------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------- */

void workspace_config_init(workspace_config_t *out, const config_t *cfg, const char *delivery, const char *job)
{
    memset(out, 0, sizeof(*out));
    out->data_dir = cfg->data_dir;
    out->git_url = cfg->github.url;
    out->mirror_budget_bytes = cfg->workspaces.mirror_budget_bytes;
    out->delivery = delivery;
    out->job = job;
}

int workspace_branch_name(char *out, size_t outlen, long long number, const char *title)
{
    char slug[WORKSPACE_SLUG_MAX_BYTES + 1];
    size_t n = 0;
    int dash = 0, cut = 0;
    for (const char *p = title ? title : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) && c < 0x80)) {
            dash = 1;
            continue;
        }
        if (n + (dash && n > 0) >= WORKSPACE_SLUG_MAX_BYTES) {
            cut = 1;
            break;
        }
        if (dash && n > 0)
            slug[n++] = '-';
        dash = 0;
        slug[n++] = (char)tolower(c);
    }
    slug[n] = '\0';
    /* Cut inside a word: end at the previous word instead, when there is one. */
    char *last = strrchr(slug, '-');
    if (cut && !dash && last != NULL)
        *last = '\0';
    int w = snprintf(out, outlen, WORKSPACE_BRANCH_PREFIX "%lld-%s", number, n ? slug : "issue");
    return (w < 0 || (size_t)w >= outlen) ? -1 : 0;
}

int workspace_bot_identity(char *name, size_t namelen, char *email, size_t emaillen, const char *app_slug,
                           long long bot_user_id)
{
    int a = snprintf(name, namelen, "%s[bot]", app_slug);
    int b = snprintf(email, emaillen, "%lld+%s[bot]@users.noreply.github.com", bot_user_id, app_slug);
    return (a < 0 || (size_t)a >= namelen || b < 0 || (size_t)b >= emaillen) ? -1 : 0;
}

static int valid_job_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > WS_JOB_ID_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

static int valid_branch(const char *b)
{
    if (b == NULL || *b == '\0' || *b == '-' || strlen(b) > 200)
        return 0; /* git refuses branches that look like options */
    char *ref = ws_strf("refs/heads/%s", b);
    int valid = 0;
    int rc = git_reference_name_is_valid(&valid, ref);
    free(ref);
    return rc == 0 && valid;
}

/* ---------------------------------------------------------------------------
 * Objects: link the mirror's packs (copy across filesystems)
 * ------------------------------------------------------------------------- */

static int copy_file(const char *src, const char *dst)
{
    int rc = 0;
    char *buf = NULL;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = -1;
    if (in < 0)
        return -errno;
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (out < 0) {
        rc = -errno;
        goto done;
    }
    buf = malloc(COPY_CHUNK_BYTES);
    if (buf == NULL) {
        rc = -ENOMEM;
        goto done;
    }
    for (;;) {
        ssize_t r = read(in, buf, COPY_CHUNK_BYTES);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto done;
        }
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                goto done;
            }
            off += w;
        }
    }
done:
    free(buf);
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = -errno;
    close(in);
    return rc;
}

static int link_or_copy(const char *src, const char *dst, int *copied)
{
    if (link(src, dst) == 0)
        return 0;
    if (errno == EEXIST)
        return 0;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP && errno != EACCES)
        return -errno;
    (*copied)++;
    return copy_file(src, dst);
}

/* Every regular file of src_dir whose name passes `keep` into dst_dir. */
static int link_dir(const char *src_dir, const char *dst_dir, int (*keep)(const char *), int *linked, int *copied)
{
    DIR *d = opendir(src_dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    int made = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !keep(de->d_name))
            continue;
        char *src = ws_strf("%s/%s", src_dir, de->d_name);
        struct stat st;
        if (lstat(src, &st) == 0 && S_ISREG(st.st_mode)) {
            if (!made) {
                rc = fstree_mkdirs(dst_dir, 0755);
                made = 1;
            }
            if (rc == 0) {
                char *dst = ws_strf("%s/%s", dst_dir, de->d_name);
                rc = link_or_copy(src, dst, copied);
                (*linked)++;
                free(dst);
            }
        }
        free(src);
    }
    closedir(d);
    return rc;
}

static int is_pack_file(const char *name)
{
    /* pack-<sha>.pack/.idx/.rev; never tmp_pack_* files of a fetch in flight */
    size_t n = strlen(name);
    if (strncmp(name, "pack-", 5) != 0)
        return 0;
    return (n > 5 && (strcmp(name + n - 5, ".pack") == 0)) || (n > 4 && strcmp(name + n - 4, ".idx") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".rev") == 0);
}

static int is_loose_object(const char *name)
{
    size_t n = strlen(name);
    if (n != 38)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)name[i]))
            return 0;
    return 1;
}

static int link_objects(const char *mirror_git_dir, const char *repo_git_dir, char *err, size_t err_len)
{
    int linked = 0, copied = 0;
    char *src = ws_strf("%s/objects/pack", mirror_git_dir);
    char *dst = ws_strf("%s/objects/pack", repo_git_dir);
    int rc = link_dir(src, dst, is_pack_file, &linked, &copied);
    free(src);
    free(dst);
    /* Loose objects: libgit2's fetch writes packs, but a mirror touched by
     * git itself may hold some. */
    for (int i = 0; rc == 0 && i < 256; i++) {
        src = ws_strf("%s/objects/%02x", mirror_git_dir, i);
        dst = ws_strf("%s/objects/%02x", repo_git_dir, i);
        rc = link_dir(src, dst, is_loose_object, &linked, &copied);
        free(src);
        free(dst);
    }
    if (rc != 0)
        return ws_fail(WORKSPACE_EIO, err, err_len, "cannot link the mirror's objects into %s: %s", repo_git_dir, strerror(-rc));
    return 0;
}

/* ---------------------------------------------------------------------------
 * Prepare
 * ------------------------------------------------------------------------- */

void workspace_free(workspace_t *ws)
{
    if (ws == NULL)
        return;
    free(ws->dir);
    free(ws->path);
    free(ws->repo);
    free(ws->branch);
    free(ws->base_ref);
    free(ws->default_branch);
    free(ws);
}

/* The commit a full ref name points at. Not git_revparse_single: in libgit2
 * 1.5.1 its describe-style matching leaks pcre2 match data on every miss. */
static int ref_oid(git_oid *out, git_repository *repo, const char *refname)
{
    git_reference *ref = NULL;
    git_object *peeled = NULL;
    int rc = git_reference_lookup(&ref, repo, refname);
    if (rc == 0)
        rc = git_reference_peel(&peeled, ref, GIT_OBJECT_COMMIT);
    if (rc == 0)
        git_oid_cpy(out, git_object_id(peeled));
    git_reference_free(ref);
    git_object_free(peeled);
    return rc;
}

/* What the mirror says, read while it is locked. */
typedef struct {
    git_oid base;
    git_oid default_tip;
    git_oid remote;
    int has_remote;
} bases_t;

static int read_bases(bases_t *b, workspace_t *ws, git_repository *mirror, const workspace_spec_t *spec, char *err,
                      size_t err_len)
{
    int rc = 0;
    git_reference *head = NULL;
    memset(b, 0, sizeof(*b));

    git_error_clear();
    int grc = git_reference_lookup(&head, mirror, "HEAD");
    if (grc < 0 || git_reference_type(head) != GIT_REFERENCE_SYMBOLIC ||
        strncmp(git_reference_symbolic_target(head), "refs/heads/", 11) != 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "the mirror of %s has no default branch", ws->repo);
        goto done;
    }
    ws->default_branch = ws_strf("%s", git_reference_symbolic_target(head) + 11);
    if (ref_oid(&b->default_tip, mirror, git_reference_symbolic_target(head)) != 0) {
        rc = ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "%s: the default branch %s has no commit", ws->repo, ws->default_branch);
        goto done;
    }

    char *remote_ref = ws_strf("refs/heads/%s", ws->branch);
    b->has_remote = ref_oid(&b->remote, mirror, remote_ref) == 0;
    free(remote_ref);
    if (b->has_remote)
        git_oid_tostr(ws->remote_oid, sizeof(ws->remote_oid), &b->remote);

    if (spec->pull_number > 0)
        ws->base_ref = ws_strf("refs/pull/%d/head", spec->pull_number);
    else if (spec->resume && b->has_remote)
        ws->base_ref = ws_strf("refs/heads/%s", ws->branch);
    else
        ws->base_ref = ws_strf("refs/heads/%s", spec->base_branch ? spec->base_branch : ws->default_branch);
    git_error_clear();
    grc = ref_oid(&b->base, mirror, ws->base_ref);
    if (grc == GIT_ENOTFOUND) {
        if (spec->pull_number > 0)
            rc = ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "%s: pull request #%d has no head on GitHub", ws->repo,
                         spec->pull_number);
        else
            rc = ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "%s: branch %s does not exist on GitHub", ws->repo,
                         ws->base_ref + 11);
        goto done;
    }
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "%s: resolve %s in the mirror", ws->repo, ws->base_ref);
        goto done;
    }
    git_oid_tostr(ws->base_oid, sizeof(ws->base_oid), &b->base);

done:
    git_reference_free(head);
    return rc;
}

/* Caches that running code leaves in the work tree: an agent that runs the
 * tests itself makes them (Python writes __pycache__/ next to every module
 * it imports), and a repository without a .gitignore would otherwise see
 * them in every pull request. .git/info/exclude hides them from the change
 * (and from the agent's own `git status`) without touching the repository;
 * tracked files are never affected. What the repository's setup and test
 * commands leave is kept out by the attempt (workspace_snapshot). */
static const char excludes[] = "# patchbay: caches that running code writes, never part of a change\n"
                               "__pycache__/\n*.py[cod]\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\n";

static int write_excludes(const workspace_t *ws, char *err, size_t err_len)
{
    char *dir = ws_strf("%s/.git/info", ws->path);
    char *path = ws_strf("%s/exclude", dir);
    int rc = 0;
    FILE *f = NULL;
    if (fstree_mkdirs(dir, 0755) != 0 || (f = fopen(path, "w")) == NULL || fputs(excludes, f) == EOF)
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot write %s: %s", path, strerror(errno));
    if (f != NULL && fclose(f) != 0 && rc == 0)
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot write %s: %s", path, strerror(errno));
    free(dir);
    free(path);
    return rc;
}

/* The job's repository: refs, origin (a plain URL), identity, checkout. */
static int finish_checkout(workspace_t *ws, const ws_names_t *n, const bases_t *b, const workspace_spec_t *spec, char *err,
                           size_t err_len)
{
    int rc = 0;
    git_repository *repo = NULL;
    git_reference *ref = NULL;
    git_config *cfg = NULL;
    char *name = NULL;
    int grc;

    rc = ws_open_repo(&repo, ws->path, GIT_REPOSITORY_OPEN_NO_SEARCH, err, err_len, "open the checkout");
    if (rc != 0)
        goto done;

    name = ws_strf("refs/heads/%s", ws->branch);
    git_error_clear();
    if ((grc = git_reference_create(&ref, repo, name, &b->base, 1, NULL)) < 0)
        goto git_fail;
    git_reference_free(ref);
    ref = NULL;
    free(name);
    /* origin/<default> and origin/<branch>, as a clone would have them, so an
     * agent can diff against the default branch or see a previous attempt. */
    name = ws_strf("refs/remotes/origin/%s", ws->default_branch);
    git_error_clear();
    if ((grc = git_reference_create(&ref, repo, name, &b->default_tip, 1, NULL)) < 0)
        goto git_fail;
    git_reference_free(ref);
    ref = NULL;
    if (b->has_remote && strcmp(ws->branch, ws->default_branch) != 0) {
        free(name);
        name = ws_strf("refs/remotes/origin/%s", ws->branch);
        git_error_clear();
        if ((grc = git_reference_create(&ref, repo, name, &b->remote, 1, NULL)) < 0)
            goto git_fail;
        git_reference_free(ref);
        ref = NULL;
    }

    /* origin: the URL without any credential, since this config is the
     * agent's to read. Written as the two keys git_remote_create would
     * write: in libgit2 1.5.1 that function leaks pcre2 match data. */
    git_error_clear();
    if ((grc = git_repository_config(&cfg, repo)) < 0 || (grc = git_config_set_string(cfg, "remote.origin.url", n->url)) < 0 ||
        (grc = git_config_set_string(cfg, "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")) < 0)
        goto git_fail;
    if (spec->user_name != NULL && spec->user_email != NULL) {
        git_error_clear();
        if ((grc = git_config_set_string(cfg, "user.name", spec->user_name)) < 0 ||
            (grc = git_config_set_string(cfg, "user.email", spec->user_email)) < 0)
            goto git_fail;
    }

    git_checkout_options copts;
    git_checkout_options_init(&copts, GIT_CHECKOUT_OPTIONS_VERSION);
    copts.checkout_strategy = GIT_CHECKOUT_FORCE; /* an empty directory: nothing to protect */
    /* Files are written byte for byte as stored. With filters on, libgit2
     * 1.5 looks up .gitattributes for every file (a realpath(3) and a probe
     * per directory level): half the checkout time of a 5,000-file tree
     * here, for conversions (eol=crlf, ident) that matter on Windows. The
     * commit's staging still applies the clean side, so what is stored
     * round-trips. */
    copts.disable_filters = 1;
    git_error_clear();
    if ((grc = git_checkout_head(repo, &copts)) < 0)
        goto git_fail;
    rc = write_excludes(ws, err, err_len);
    goto done;

git_fail:
    rc = ws_git_fail(grc, NULL, 0, err, err_len, "make the checkout %s", ws->path);
done:
    free(name);
    git_reference_free(ref);
    git_config_free(cfg);
    git_repository_free(repo);
    return rc;
}

int workspace_prepare(workspace_t **out, const workspace_config_t *cfg, const workspace_spec_t *spec, char *err, size_t err_len)
{
    ws_names_t n;
    ws_lock_t lock = {-1};
    workspace_t *ws = NULL;
    git_repository *mirror = NULL;
    git_repository *repo = NULL;
    char *repo_git_dir = NULL;
    bases_t b;
    int created = 0;
    int64_t t0 = clock_mono_ms();
    *out = NULL;

    int rc = workspace_init(err, err_len);
    if (rc != 0)
        return rc;
    rc = ws_names_init(&n, cfg, spec->repo, err, err_len);
    if (rc != 0)
        return rc;
    if (!valid_job_id(spec->job_id)) {
        rc = ws_fail(WORKSPACE_EINVAL, err, err_len, "'%.80s' is not a valid job id for a workspace",
                     spec->job_id ? spec->job_id : "(null)");
        goto done;
    }
    if (!valid_branch(spec->branch) || (spec->base_branch != NULL && !valid_branch(spec->base_branch))) {
        rc = ws_fail(WORKSPACE_EINVAL, err, err_len, "'%.200s' is not a valid branch name",
                     valid_branch(spec->branch) ? spec->base_branch : (spec->branch ? spec->branch : "(null)"));
        goto done;
    }

    ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
        goto done;
    }
    ws->dir = ws_strf("%s/workspaces/%s", cfg->data_dir, spec->job_id);
    ws->path = ws_strf("%s/repo", ws->dir);
    ws->repo = ws_strf("%s/%s", n.owner, n.name);
    ws->branch = ws_strf("%s", spec->branch);
    repo_git_dir = ws_strf("%s/.git", ws->path);

    /* A workspace left by a crashed attempt of this job is replaced whole. */
    int e = fstree_remove(ws->dir);
    if (e == 0)
        e = fstree_mkdirs(ws->dir, 0700);
    if (e == 0)
        e = fstree_mkdirs(n.owner_dir, 0700);
    if (e != 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot create %s: %s", ws->dir, strerror(-e));
        goto done;
    }

    rc = ws_lock(&lock, n.lock_path, cfg->lock_wait_ms > 0 ? cfg->lock_wait_ms : WORKSPACE_LOCK_WAIT_MS, err, err_len);
    if (rc != 0)
        goto done;
    int pull = spec->pull_number;
    rc = ws_mirror_sync_locked(cfg, &n, spec->token, pull > 0 ? &pull : NULL, pull > 0 ? 1 : 0, &created, err, err_len);
    if (rc != 0)
        goto done;
    ws->mirror_created = created;
    int64_t t1 = clock_mono_ms();
    ws->fetch_ms = t1 - t0;
    rc = ws_open_repo(&mirror, n.git_dir, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, err, err_len,
                      "open the mirror");
    if (rc != 0)
        goto done;
    rc = read_bases(&b, ws, mirror, spec, err, err_len);
    if (rc != 0)
        goto done;

    git_repository_init_options iopts;
    git_repository_init_options_init(&iopts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    iopts.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
    iopts.initial_head = ws->branch;
    git_error_clear();
    int grc = git_repository_init_ext(&repo, ws->path, &iopts);
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "create the checkout %s", ws->path);
        goto done;
    }
    git_repository_free(repo); /* reopened once its objects are in place */
    repo = NULL;
    rc = link_objects(n.git_dir, repo_git_dir, err, err_len);
    if (rc != 0)
        goto done;
    git_repository_free(mirror);
    mirror = NULL;
    ws_unlock(&lock); /* the checkout has its own links now: the mirror may move on */

    int64_t t2 = clock_mono_ms();
    rc = finish_checkout(ws, &n, &b, spec, err, err_len);
    if (rc != 0)
        goto done;
    ws->checkout_ms = clock_mono_ms() - t1;
    log_debug(cfg->delivery, cfg->job, "workspace %s: fetch %lld ms, link %lld ms, checkout %lld ms", ws->path,
              (long long)ws->fetch_ms, (long long)(t2 - t1), (long long)(clock_mono_ms() - t2));

    log_info(cfg->delivery, cfg->job, "workspace for %s ready on %s at %.12s (%s) in %lld ms%s", ws->repo, ws->branch,
             ws->base_oid, ws->base_ref, (long long)(clock_mono_ms() - t0), created ? " (new mirror)" : "");

    char eerr[WORKSPACE_ERR_BYTES];
    if (workspace_mirror_evict(cfg, ws->repo, eerr, sizeof(eerr)) < 0)
        log_warn(cfg->delivery, cfg->job, "mirror eviction: %s", eerr);
    *out = ws;
    ws = NULL;

done:
    ws_unlock(&lock);
    git_repository_free(mirror);
    git_repository_free(repo);
    if (ws != NULL) {
        fstree_remove(ws->dir);
        workspace_free(ws);
    }
    free(repo_git_dir);
    ws_names_free(&n);
    return rc;
}

int workspace_remove(const workspace_config_t *cfg, const char *job_id, char *err, size_t err_len)
{
    if (!valid_job_id(job_id))
        return ws_fail(WORKSPACE_EINVAL, err, err_len, "'%.80s' is not a valid job id for a workspace",
                       job_id ? job_id : "(null)");
    char *dir = ws_strf("%s/workspaces/%s", cfg->data_dir, job_id);
    int e = fstree_remove(dir);
    int rc = e == 0 ? 0 : ws_fail(WORKSPACE_EIO, err, err_len, "cannot remove %s: %s", dir, strerror(-e));
    free(dir);
    return rc;
}

/* ---------------------------------------------------------------------------
 * After the agent: open without trusting what it may have written
 * ------------------------------------------------------------------------- */

int ws_open_untrusted(git_repository **out, const workspace_t *ws, char *err, size_t err_len)
{
    int rc = 0;
    git_config *empty = NULL;
    char *gitdir = ws_strf("%s/.git", ws->path);
    char *objects = ws_strf("%s/objects", gitdir);
    char *alternates = ws_strf("%s/info/alternates", objects);
    char *commondir = ws_strf("%s/commondir", gitdir);
    struct stat st;
    *out = NULL;

    if (lstat(gitdir, &st) != 0 || !S_ISDIR(st.st_mode) || lstat(objects, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "%s/.git or its objects is no longer a plain directory", ws->path);
        goto done;
    }
    if (lstat(alternates, &st) == 0 || lstat(commondir, &st) == 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len,
                     "%s borrows objects from elsewhere (objects/info/alternates or commondir), which patchbay "
                     "never writes: refusing to commit or push from it",
                     ws->path);
        goto done;
    }
    rc = ws_open_repo(out, ws->path, GIT_REPOSITORY_OPEN_NO_SEARCH, err, err_len, "open the checkout");
    if (rc != 0)
        goto done;
    git_error_clear();
    int grc = git_config_new(&empty);
    if (grc == 0)
        grc = git_repository_set_config(*out, empty);
    /* Pin the work tree (core.worktree may point anywhere now). libgit2
     * 1.5.1 leaks when it is set to the value it already has: skip that. */
    char real[PATH_MAX];
    const char *wd = grc == 0 ? git_repository_workdir(*out) : NULL;
    if (grc == 0 && realpath(ws->path, real) == NULL)
        snprintf(real, sizeof(real), "%s", ws->path);
    size_t rl = strlen(real);
    if (grc == 0 && !(wd != NULL && strncmp(wd, real, rl) == 0 && wd[rl] == '/' && wd[rl + 1] == '\0'))
        grc = git_repository_set_workdir(*out, ws->path, 0);
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "open %s", ws->path);
        goto done;
    }

done:
    if (rc != 0) {
        git_repository_free(*out);
        *out = NULL;
    }
    git_config_free(empty);
    free(gitdir);
    free(objects);
    free(alternates);
    free(commondir);
    return rc;
}

/* add_all's filter: a directory reported as a path of its own is a git
 * repository inside the work tree (an agent's clone of a dependency).
 * libgit2 would fail on it ("invalid path"); git would commit a gitlink to
 * a commit GitHub does not have. Leave it out. */
static int skip_nested_repos(const char *path, const char *matched_pathspec, void *payload)
{
    (void)matched_pathspec;
    (void)payload;
    size_t n = strlen(path);
    return (n > 0 && path[n - 1] == '/') ? 1 : 0;
}

/* The whole work tree into the index (new files, deletions; .gitignore
 * respected; nested repositories left out) and the index into a tree. With
 * keep_index 0 the index file stays as it was (a snapshot between runs must
 * not change what the agent's own git sees). */
static int stage_all(git_oid *tree_out, git_repository *repo, const workspace_t *ws, int keep_index, char *err,
                     size_t err_len)
{
    git_index *idx = NULL;
    git_error_clear();
    int grc = git_repository_index(&idx, repo);
    if (grc == 0)
        grc = git_index_read(idx, 1);
    if (grc == 0)
        grc = git_index_add_all(idx, NULL, GIT_INDEX_ADD_DEFAULT, skip_nested_repos, NULL);
    if (grc == 0)
        grc = git_index_update_all(idx, NULL, NULL, NULL);
    if (grc == 0 && keep_index)
        grc = git_index_write(idx);
    if (grc == 0)
        grc = git_index_write_tree(tree_out, idx);
    git_index_free(idx);
    if (grc < 0)
        return ws_git_fail(grc, NULL, 0, err, err_len, "stage the changes in %s", ws->path);
    return 0;
}

/* The tree a change is read from: `tree` (hex) when given, else the work
 * tree as it is now (staged, the index written). */
static int change_tree(git_oid *out, git_repository *repo, const workspace_t *ws, const char *tree, char *err,
                       size_t err_len)
{
    if (tree == NULL || tree[0] == '\0')
        return stage_all(out, repo, ws, 1, err, err_len);
    git_tree *t = NULL;
    git_error_clear();
    int grc = git_oid_fromstr(out, tree);
    if (grc == 0)
        grc = git_tree_lookup(&t, repo, out);
    git_tree_free(t);
    if (grc < 0)
        return ws_git_fail(grc, NULL, 0, err, err_len, "find the tree %.12s in %s", tree, ws->path);
    return 0;
}

static int base_commit(git_commit **out, git_repository *repo, const workspace_t *ws, char *err, size_t err_len)
{
    git_oid oid;
    git_error_clear();
    int grc = git_oid_fromstr(&oid, ws->base_oid);
    if (grc == 0)
        grc = git_commit_lookup(out, repo, &oid);
    if (grc < 0)
        return ws_git_fail(grc, NULL, 0, err, err_len, "find the base commit %.12s in %s", ws->base_oid, ws->path);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Changes
 * ------------------------------------------------------------------------- */

void workspace_changes_free(workspace_changes_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->count; i++) {
        free(c->items[i].path);
        free(c->items[i].old_path);
    }
    free(c->items);
    memset(c, 0, sizeof(*c));
}

static char status_letter(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
        return 'A';
    case GIT_DELTA_DELETED:
        return 'D';
    case GIT_DELTA_RENAMED:
        return 'R';
    case GIT_DELTA_TYPECHANGE:
        return 'T';
    case GIT_DELTA_COPIED:
        return 'A'; /* the copy is a new file */
    default:
        return 'M';
    }
}

int workspace_changes(workspace_changes_t *out, const workspace_t *ws, const char *tree, char *err, size_t err_len)
{
    git_repository *repo = NULL;
    git_commit *base = NULL;
    git_tree *base_tree = NULL, *new_tree = NULL;
    git_diff *diff = NULL;
    git_patch *patch = NULL;
    git_oid tree_oid;
    int grc = 0;
    memset(out, 0, sizeof(*out));

    int rc = workspace_init(err, err_len);
    if (rc == 0)
        rc = ws_open_untrusted(&repo, ws, err, err_len);
    if (rc == 0)
        rc = change_tree(&tree_oid, repo, ws, tree, err, err_len);
    if (rc == 0)
        rc = base_commit(&base, repo, ws, err, err_len);
    if (rc != 0)
        goto done;

    git_diff_options dopts;
    git_diff_options_init(&dopts, GIT_DIFF_OPTIONS_VERSION);
    dopts.flags = GIT_DIFF_INCLUDE_TYPECHANGE;
    git_diff_find_options fopts;
    git_diff_find_options_init(&fopts, GIT_DIFF_FIND_OPTIONS_VERSION);
    fopts.flags = GIT_DIFF_FIND_RENAMES;
    git_error_clear();
    if ((grc = git_commit_tree(&base_tree, base)) < 0 || (grc = git_tree_lookup(&new_tree, repo, &tree_oid)) < 0 ||
        (grc = git_diff_tree_to_tree(&diff, repo, base_tree, new_tree, &dopts)) < 0 ||
        (grc = git_diff_find_similar(diff, &fopts)) < 0)
        goto git_fail;

    size_t n = git_diff_num_deltas(diff);
    out->items = calloc(n ? n : 1, sizeof(*out->items));
    if (out->items == NULL) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        git_error_clear();
        if ((grc = git_patch_from_diff(&patch, diff, i)) < 0)
            goto git_fail;
        const git_diff_delta *d = git_patch_get_delta(patch);
        workspace_change_t *c = &out->items[out->count++];
        c->status = status_letter(d->status);
        c->path = ws_strf("%s", d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path);
        if (d->status == GIT_DELTA_RENAMED)
            c->old_path = ws_strf("%s", d->old_file.path);
        c->binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
        if (!c->binary) {
            size_t adds = 0, dels = 0;
            git_patch_line_stats(NULL, &adds, &dels, patch);
            c->additions = adds;
            c->deletions = dels;
            out->additions += adds;
            out->deletions += dels;
        }
        git_patch_free(patch);
        patch = NULL;
    }
    goto done;

git_fail:
    rc = ws_git_fail(grc, NULL, 0, err, err_len, "diff %s against %.12s", ws->path, ws->base_oid);
done:
    if (rc != 0)
        workspace_changes_free(out);
    git_patch_free(patch);
    git_diff_free(diff);
    git_tree_free(base_tree);
    git_tree_free(new_tree);
    git_commit_free(base);
    git_repository_free(repo);
    return rc;
}

size_t workspace_forbidden(workspace_changes_t *c, const char *const *globs, size_t nglobs)
{
    size_t marked = 0;
    for (size_t i = 0; i < c->count; i++) {
        workspace_change_t *ch = &c->items[i];
        ch->forbidden = NULL;
        for (size_t g = 0; g < nglobs && ch->forbidden == NULL; g++) {
            if (pathglob_match(globs[g], ch->path) || (ch->old_path && pathglob_match(globs[g], ch->old_path)))
                ch->forbidden = globs[g];
        }
        if (ch->forbidden != NULL)
            marked++;
    }
    return marked;
}

/* ---------------------------------------------------------------------------
 * Snapshots: which run changed what
 * ------------------------------------------------------------------------- */

int workspace_snapshot(char tree_out[WORKSPACE_OID_HEX], const workspace_t *ws, char *err, size_t err_len)
{
    git_repository *repo = NULL;
    git_oid oid;
    tree_out[0] = '\0';
    int rc = workspace_init(err, err_len);
    if (rc == 0)
        rc = ws_open_untrusted(&repo, ws, err, err_len);
    if (rc == 0)
        rc = stage_all(&oid, repo, ws, 0, err, err_len);
    if (rc == 0)
        git_oid_tostr(tree_out, WORKSPACE_OID_HEX, &oid);
    git_repository_free(repo);
    return rc;
}

/* A tree by hex id, or the base commit's for NULL or "". */
static int tree_or_base(git_tree **out, git_repository *repo, const workspace_t *ws, const char *hex, char *err,
                        size_t err_len)
{
    git_oid oid;
    git_commit *base = NULL;
    int rc = 0, grc = 0;
    git_error_clear();
    if (hex != NULL && hex[0] != '\0') {
        if ((grc = git_oid_fromstr(&oid, hex)) == 0)
            grc = git_tree_lookup(out, repo, &oid);
    } else if ((rc = base_commit(&base, repo, ws, err, err_len)) == 0) {
        grc = git_commit_tree(out, base);
    }
    git_commit_free(base);
    if (rc == 0 && grc < 0)
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "find the tree %.12s in %s", hex && *hex ? hex : ws->base_oid,
                         ws->path);
    return rc;
}

int workspace_carry(char out[WORKSPACE_OID_HEX], const workspace_t *ws, const char *onto, const char *before,
                    const char *after, char *err, size_t err_len)
{
    git_repository *repo = NULL;
    git_tree *t_onto = NULL, *t_before = NULL, *t_after = NULL;
    git_index *idx = NULL;
    git_diff *diff = NULL;
    git_oid oid;
    int grc = 0;

    /* out may be onto (a change carried onto itself): read before written */
    int rc = workspace_init(err, err_len);
    if (rc == 0)
        rc = ws_open_untrusted(&repo, ws, err, err_len);
    if (rc == 0)
        rc = tree_or_base(&t_onto, repo, ws, onto, err, err_len);
    if (rc == 0)
        rc = tree_or_base(&t_before, repo, ws, before, err, err_len);
    if (rc == 0)
        rc = tree_or_base(&t_after, repo, ws, after, err, err_len);
    if (rc != 0)
        goto done;

    /* path by path, no rename detection: a rename is a deletion and an
     * addition, both carried */
    git_diff_options dopts;
    git_diff_options_init(&dopts, GIT_DIFF_OPTIONS_VERSION);
    git_error_clear();
    if ((grc = git_diff_tree_to_tree(&diff, repo, t_before, t_after, &dopts)) < 0 || (grc = git_index_new(&idx)) < 0 ||
        (grc = git_index_read_tree(idx, t_onto)) < 0)
        goto git_fail;
    size_t n = git_diff_num_deltas(diff);
    /* removals first: a file that became a directory (or back) must leave
     * its old entry before the new one goes in */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const git_diff_delta *d = git_diff_get_delta(diff, i);
            int removed = d->status == GIT_DELTA_DELETED;
            if (pass == 0 && (removed || d->status == GIT_DELTA_TYPECHANGE)) {
                git_error_clear();
                grc = git_index_remove(idx, d->old_file.path, 0);
                if (grc < 0 && grc != GIT_ENOTFOUND)
                    goto git_fail;
            } else if (pass == 1 && !removed) {
                git_index_entry e;
                memset(&e, 0, sizeof(e));
                e.mode = d->new_file.mode;
                e.id = d->new_file.id;
                e.path = d->new_file.path;
                git_error_clear();
                if ((grc = git_index_add(idx, &e)) < 0)
                    goto git_fail;
            }
        }
    }
    git_error_clear();
    if ((grc = git_index_write_tree_to(&oid, idx, repo)) < 0)
        goto git_fail;
    git_oid_tostr(out, WORKSPACE_OID_HEX, &oid);
    goto done;

git_fail:
    rc = ws_git_fail(grc, NULL, 0, err, err_len, "carry a change over in %s", ws->path);
done:
    git_diff_free(diff);
    git_index_free(idx);
    git_tree_free(t_onto);
    git_tree_free(t_before);
    git_tree_free(t_after);
    git_repository_free(repo);
    return rc;
}

int workspace_read(char **out, size_t *len, const workspace_t *ws, const char *tree, const char *path, size_t max,
                   char *err, size_t err_len)
{
    git_repository *repo = NULL;
    git_tree *t = NULL;
    git_tree_entry *e = NULL;
    git_blob *blob = NULL;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    int rc = workspace_init(err, err_len);
    if (rc == 0)
        rc = ws_open_untrusted(&repo, ws, err, err_len);
    if (rc == 0)
        rc = tree_or_base(&t, repo, ws, tree, err, err_len);
    if (rc != 0)
        goto done;
    git_error_clear();
    int grc = git_tree_entry_bypath(&e, t, path);
    if (grc == GIT_ENOTFOUND || (grc == 0 && git_tree_entry_type(e) != GIT_OBJECT_BLOB)) {
        rc = ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "%s is not a file of %.12s", path, tree ? tree : ws->base_oid);
        goto done;
    }
    if (grc == 0)
        grc = git_blob_lookup(&blob, repo, git_tree_entry_id(e));
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "read %s in %s", path, ws->path);
        goto done;
    }
    size_t n = (size_t)git_blob_rawsize(blob);
    if (n > max)
        n = max;
    *out = malloc(n + 1);
    if (*out == NULL) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
        goto done;
    }
    memcpy(*out, git_blob_rawcontent(blob), n);
    (*out)[n] = '\0';
    if (len != NULL)
        *len = n;

done:
    git_blob_free(blob);
    git_tree_entry_free(e);
    git_tree_free(t);
    git_repository_free(repo);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Commit
 * ------------------------------------------------------------------------- */

/* A name or email from GitHub, made safe for a trailer line: no newlines,
 * no angle brackets. */
static void append_clean(strbuf_t *b, const char *s)
{
    for (; s && *s; s++)
        if (*s != '\n' && *s != '\r' && *s != '<' && *s != '>' && (unsigned char)*s >= 0x20)
            strbuf_appendn(b, s, 1);
}

int workspace_commit(char oid_out[WORKSPACE_OID_HEX], workspace_t *ws, const char *tree, const workspace_person_t *bot,
                     const char *message, const workspace_person_t *coauthor, char *err, size_t err_len)
{
    git_repository *repo = NULL;
    git_commit *base = NULL;
    git_tree *committed = NULL;
    git_signature *sig = NULL;
    git_reference *ref = NULL;
    git_oid tree_oid, commit_oid;
    strbuf_t msg = STRBUF_INIT;
    char *refname = NULL;
    int grc = 0;
    oid_out[0] = '\0';

    int rc = workspace_init(err, err_len);
    if (rc == 0)
        rc = ws_open_untrusted(&repo, ws, err, err_len);
    if (rc == 0)
        rc = change_tree(&tree_oid, repo, ws, tree, err, err_len);
    if (rc == 0)
        rc = base_commit(&base, repo, ws, err, err_len);
    if (rc != 0)
        goto done;
    if (git_oid_equal(&tree_oid, git_commit_tree_id(base))) {
        rc =
            ws_fail(WORKSPACE_ENOCHANGE, err, err_len, "nothing to commit in %s: the files equal %.12s", ws->path, ws->base_oid);
        goto done;
    }

    /* The message: trailing blank lines trimmed, then the trailer. */
    const char *m = message && *message ? message : "patchbay: changes";
    size_t mlen = strlen(m);
    while (mlen > 0 && (m[mlen - 1] == '\n' || m[mlen - 1] == ' ' || m[mlen - 1] == '\r'))
        mlen--;
    strbuf_appendn(&msg, m, mlen);
    strbuf_append(&msg, "\n");
    if (coauthor != NULL && coauthor->name != NULL && coauthor->email != NULL) {
        strbuf_append(&msg, "\nCo-authored-by: ");
        append_clean(&msg, coauthor->name);
        strbuf_append(&msg, " <");
        append_clean(&msg, coauthor->email);
        strbuf_append(&msg, ">\n");
    }
    if (msg.truncated) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
        goto done;
    }

    refname = ws_strf("refs/heads/%s", ws->branch);
    git_error_clear();
    if ((grc = git_signature_now(&sig, bot->name, bot->email)) < 0 || (grc = git_tree_lookup(&committed, repo, &tree_oid)) < 0)
        goto git_fail;
    const git_commit *parents[1] = {base};
    git_error_clear();
    if ((grc = git_commit_create(&commit_oid, repo, NULL, sig, sig, NULL, msg.data, committed, 1, parents)) < 0)
        goto git_fail;
    /* The branch and HEAD point at it whatever the agent did with them
     * (its own commits are folded into this one). */
    git_error_clear();
    if ((grc = git_reference_create(&ref, repo, refname, &commit_oid, 1, NULL)) < 0 ||
        (grc = git_repository_set_head(repo, refname)) < 0)
        goto git_fail;
    git_oid_tostr(oid_out, WORKSPACE_OID_HEX, &commit_oid);
    goto done;

git_fail:
    rc = ws_git_fail(grc, NULL, 0, err, err_len, "commit in %s", ws->path);
done:
    strbuf_free(&msg);
    free(refname);
    git_reference_free(ref);
    git_signature_free(sig);
    git_tree_free(committed);
    git_commit_free(base);
    git_repository_free(repo);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Push
 * ------------------------------------------------------------------------- */

/* A refusal that says the ref changed under the update, not that it may not
 * change: git's receive-pack reports a stale old value this way. */
static int push_raced(const char *refused)
{
    return strstr(refused, "cannot lock ref") != NULL || strstr(refused, "failed to update ref") != NULL ||
           strstr(refused, "stale info") != NULL;
}

int workspace_push(const workspace_config_t *cfg, const workspace_t *ws, const char *token, char *err, size_t err_len)
{
    ws_names_t n;
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    git_reference *ref = NULL;
    char *spec = NULL;
    ws_remote_t ctx;
    int grc = 0;
    int64_t t0 = clock_mono_ms();
    ws_remote_init(&ctx, token);

    int rc = workspace_init(err, err_len);
    if (rc != 0)
        goto out;
    rc = ws_names_init(&n, cfg, ws->repo, err, err_len);
    if (rc != 0)
        goto out;
    rc = ws_open_untrusted(&repo, ws, err, err_len);
    if (rc != 0)
        goto done;

    char *refname = ws_strf("refs/heads/%s", ws->branch);
    git_error_clear();
    grc = git_reference_lookup(&ref, repo, refname);
    free(refname);
    if (grc == GIT_ENOTFOUND) {
        rc = ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "push %s: branch %s does not exist in %s", ws->repo, ws->branch,
                     ws->path);
        goto done;
    }
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "push %s", ws->repo);
        goto done;
    }

    git_remote_create_options copts;
    git_remote_create_options_init(&copts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    copts.repository = repo;
    copts.name = NULL;
    copts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
    git_error_clear();
    if ((grc = git_remote_create_with_opts(&remote, n.url, &copts)) < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "push %s", ws->repo);
        goto done;
    }
    /* '+': the branch is the bot's; a retried job replaces what a crashed
     * attempt pushed instead of failing as a non-fast-forward. */
    spec = ws_strf("+refs/heads/%s:refs/heads/%s", ws->branch, ws->branch);
    git_strarray refspecs = {&spec, 1};
    git_push_options popts;
    git_push_options_init(&popts, GIT_PUSH_OPTIONS_VERSION);
    ws_remote_callbacks(&popts.callbacks, &ctx);
    git_error_clear();
    grc = git_remote_push(remote, &refspecs, &popts);
    if (grc >= 0 && ctx.push_refused && push_raced(ctx.refused_ref)) {
        /* The branch moved between the server's advertisement and our
         * update: another push of the same branch was still landing (a
         * killed attempt's, whose request outlived its worker). The refspec
         * is forced, so a second push, told the branch's new tip, wins. */
        log_info(cfg->delivery, cfg->job, "push of %s raced another update of it (%s); pushing again", ws->branch,
                 ctx.refused_ref);
        ws_remote_dispose(&ctx); /* a new conversation: credentials asked afresh */
        ws_remote_init(&ctx, token);
        git_error_clear();
        grc = git_remote_push(remote, &refspecs, &popts);
    }
    if (grc < 0) {
        rc = ws_git_fail(grc, &ctx, 1, err, err_len, "push %s to %s", ws->branch, ws->repo);
        goto done;
    }
    if (ctx.push_refused) {
        /* libgit2 said 0; the server said no. */
        rc = ws_git_fail(GIT_ERROR, &ctx, 1, err, err_len, "push %s to %s", ws->branch, ws->repo);
        goto done;
    }
    const git_oid *pushed = git_reference_target(ref);
    log_info(cfg->delivery, cfg->job, "pushed %s to %s at %.12s in %lld ms", ws->branch, ws->repo,
             pushed ? git_oid_tostr_s(pushed) : "?", (long long)(clock_mono_ms() - t0));

done:
    ws_names_free(&n);
out:
    free(spec);
    git_remote_free(remote);
    git_reference_free(ref);
    git_repository_free(repo);
    ws_remote_dispose(&ctx);
    return rc;
}
