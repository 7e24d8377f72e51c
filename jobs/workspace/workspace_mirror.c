/*
 * workspace_mirror — one bare mirror per repository, fetched, never cloned
 * twice, evicted least recently used. See workspace.h for the layout.
 *
 * Why a mirror: libgit2 1.5 has no shallow clone, and a full clone per job
 * costs the whole history every time. A mirror costs it once; every later job
 * fetches only what changed (often nothing: one ref advertisement) and makes
 * its checkout from local packs.
 *
 * Fetching: an in-memory remote (nothing of it in the mirror's config) with
 * explicit refspecs:
 *   every branch, +refs/heads/<all> to the same names, pruned when deleted
 *   upstream; every tag likewise (some builds run `git describe`);
 *   +refs/pull/N/head:refs/pull/N/head  only for the pull requests a job
 *                                        asked for. Fork-safe: a PR's head
 *                                        lands in its own namespace and can
 *                                        never move a branch of the mirror.
 * Connect, read the advertised HEAD (GitHub's default branch, kept as the
 * mirror's symbolic HEAD), download, update tips, prune, disconnect — one
 * connection. No FETCH_HEAD, no reflog (bare repos log nothing by default).
 *
 * A first fetch goes into a temporary directory that is renamed into place
 * when complete, so a crash mid-clone leaves no half mirror behind; the next
 * attempt (holding the lock) deletes the leftover.
 *
 * Eviction: each mirror's last use is the mtime of patchbay-last-used in it;
 * its size is its disk use (st_blocks). Above the budget, the oldest go
 * first — each only if its lock can be taken without waiting, so a mirror
 * being fetched or linked from is never deleted under a job.
 */
#include "workspace_int.h"

#include "app/common/clock.h"
#include "app/common/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIRROR_TRASH_TRIES 100
/* Every fetch that brings something adds a pack; above this many, the small
 * ones are merged (see consolidate_packs). */
#define MIRROR_MAX_PACKS 16
#define PACK_IDX_MAX_OBJECTS (1u << 28) /* sanity bound on an .idx we read */

static int lock_wait(const workspace_config_t *cfg)
{
    return cfg->lock_wait_ms > 0 ? cfg->lock_wait_ms : WORKSPACE_LOCK_WAIT_MS;
}

/* ---------------------------------------------------------------------------
 * Fetch
 * ------------------------------------------------------------------------- */

static int fetch_into(git_repository *repo, const ws_names_t *n, const char *token, const int *pulls, size_t npulls,
                      const workspace_config_t *cfg, char *err, size_t err_len)
{
    int rc = 0;
    git_remote *remote = NULL;
    git_reference *head = NULL;
    git_buf defbranch = GIT_BUF_INIT;
    char **specs = NULL;
    ws_remote_t ctx;
    ws_remote_init(&ctx, token);
    int64_t t0 = clock_mono_ms();

    size_t nspecs = 2 + npulls;
    specs = calloc(nspecs, sizeof(*specs));
    if (specs == NULL) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
        goto done;
    }
    specs[0] = ws_strf("+refs/heads/*:refs/heads/*");
    specs[1] = ws_strf("+refs/tags/*:refs/tags/*");
    for (size_t i = 0; i < npulls; i++) {
        if (pulls[i] <= 0) {
            rc = ws_fail(WORKSPACE_EINVAL, err, err_len, "pull request number %d is not valid", pulls[i]);
            goto done;
        }
        specs[2 + i] = ws_strf("+refs/pull/%d/head:refs/pull/%d/head", pulls[i], pulls[i]);
    }
    git_strarray refspecs = {specs, nspecs};

    /* In memory only, and deaf to url.*.insteadOf: the URL we connect to and
     * send the token to is exactly GITHUB_URL's. */
    git_remote_create_options copts;
    git_remote_create_options_init(&copts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    copts.repository = repo;
    copts.name = NULL;
    copts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
    git_error_clear();
    int grc = git_remote_create_with_opts(&remote, n->url, &copts);
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "fetch %s/%s", n->owner, n->name);
        goto done;
    }

    git_remote_callbacks cb;
    ws_remote_callbacks(&cb, &ctx);
    git_error_clear();
    grc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
    if (grc < 0) {
        rc = ws_git_fail(grc, &ctx, 1, err, err_len, "fetch %s/%s", n->owner, n->name);
        goto done;
    }
    git_error_clear();
    grc = git_remote_default_branch(&defbranch, remote);
    if (grc == GIT_ENOTFOUND) {
        rc = ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "fetch %s/%s: the repository is empty (no default branch)", n->owner,
                     n->name);
        goto done;
    }
    if (grc < 0) {
        rc = ws_git_fail(grc, &ctx, 1, err, err_len, "fetch %s/%s", n->owner, n->name);
        goto done;
    }

    git_fetch_options fopts;
    git_fetch_options_init(&fopts, GIT_FETCH_OPTIONS_VERSION);
    fopts.callbacks = cb;
    fopts.prune = GIT_FETCH_PRUNE;
    fopts.update_fetchhead = 0;
    fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE; /* the tags refspec does it, without auto-following */
    git_error_clear();
    grc = git_remote_download(remote, &refspecs, &fopts);
    const git_indexer_progress *st = git_remote_stats(remote);
    unsigned int objects = st ? st->received_objects : 0;
    size_t bytes = st ? st->received_bytes : 0;
    if (grc == 0) {
        git_error_clear();
        grc = git_remote_update_tips(remote, &cb, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "patchbay fetch");
    }
    if (grc == 0) {
        git_error_clear();
        grc = git_remote_prune(remote, &cb);
    }
    if (grc < 0) {
        rc = ws_git_fail(grc, &ctx, 1, err, err_len, "fetch %s/%s", n->owner, n->name);
        goto done;
    }
    git_remote_disconnect(remote);

    /* The mirror's HEAD follows GitHub's default branch, like `git clone --mirror`. */
    git_error_clear();
    grc = git_reference_symbolic_create(&head, repo, "HEAD", defbranch.ptr, 1, NULL);
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "set HEAD of the mirror of %s/%s to %s", n->owner, n->name, defbranch.ptr);
        goto done;
    }

    log_info(cfg->delivery, cfg->job, "fetched %s/%s: %u objects, %zu bytes in %lld ms", n->owner, n->name, objects, bytes,
             (long long)(clock_mono_ms() - t0));

done:
    if (remote != NULL)
        git_remote_disconnect(remote);
    git_remote_free(remote);
    git_reference_free(head);
    git_buf_dispose(&defbranch);
    if (specs != NULL)
        for (size_t i = 0; i < nspecs; i++)
            free(specs[i]);
    free(specs);
    ws_remote_dispose(&ctx);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Pack consolidation
 *
 * libgit2 writes one pack per fetch and has no `git repack`. Hundreds of
 * small packs would slow every object lookup and make every checkout link
 * hundreds of files. So when there are more than MIRROR_MAX_PACKS, the
 * objects of all packs but the largest (the first clone, usually) are
 * written into one new pack and the small packs are deleted — git's
 * geometric repacking in its simplest form, costing the size of what was
 * fetched since, never the whole history. The mirror's lock is held;
 * checkouts made earlier hold their own links to the deleted packs.
 * ------------------------------------------------------------------------- */

typedef struct {
    char *base; /* .../pack-<sha> without the extension */
    off_t bytes;
} pack_entry_t;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Inserts every object named in a version-2 .idx into the pack builder. */
static int insert_idx_objects(git_packbuilder *pb, const char *idx_path)
{
    int rc = -1;
    FILE *f = fopen(idx_path, "rb");
    unsigned char head[8 + 256 * 4];
    unsigned char sha[GIT_OID_RAWSZ];
    if (f == NULL)
        return -1;
    if (fread(head, 1, sizeof(head), f) != sizeof(head) || memcmp(head, "\377tOc", 4) != 0 || be32(head + 4) != 2)
        goto done;
    uint32_t n = be32(head + 8 + 255 * 4);
    if (n > PACK_IDX_MAX_OBJECTS)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        if (fread(sha, 1, sizeof(sha), f) != sizeof(sha))
            goto done;
        git_oid oid;
        git_oid_fromraw(&oid, sha);
        if (git_packbuilder_insert(pb, &oid, NULL) < 0)
            goto done;
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

static void packs_free(pack_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].base);
    free(v);
}

static void consolidate_packs(git_repository *repo, const ws_names_t *n, const workspace_config_t *cfg)
{
    char *pack_dir = ws_strf("%s/objects/pack", git_repository_path(repo));
    pack_entry_t *packs = NULL;
    size_t count = 0, cap = 0, largest = 0;
    git_packbuilder *pb = NULL;
    DIR *d = opendir(pack_dir);
    if (d == NULL)
        goto done;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "pack-", 5) != 0 || len < 10 || strcmp(de->d_name + len - 5, ".pack") != 0)
            continue;
        char *path = ws_strf("%s/%s", pack_dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0) {
            free(path);
            continue;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            pack_entry_t *nv = realloc(packs, cap * sizeof(*packs));
            if (nv == NULL) {
                free(path);
                goto done;
            }
            packs = nv;
        }
        path[strlen(path) - 5] = '\0';
        packs[count].base = path;
        packs[count].bytes = st.st_size;
        if (packs[count].bytes > packs[largest].bytes)
            largest = count;
        count++;
    }
    closedir(d);
    d = NULL;
    if (count <= MIRROR_MAX_PACKS)
        goto done;

    int64_t t0 = clock_mono_ms();
    git_error_clear();
    if (git_packbuilder_new(&pb, repo) < 0)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        if (i == largest)
            continue;
        char *idx = ws_strf("%s.idx", packs[i].base);
        int r = insert_idx_objects(pb, idx);
        free(idx);
        if (r != 0)
            goto fail;
    }
    if (git_packbuilder_write(pb, pack_dir, 0, NULL, NULL) < 0)
        goto fail;
    const char *made = git_packbuilder_name(pb);
    size_t merged = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == largest || (made != NULL && strstr(packs[i].base, made) != NULL))
            continue;
        /* the index first: a reader never finds an index without its pack */
        static const char *const exts[] = {".idx", ".rev", ".pack", ".keep"};
        for (size_t e = 0; e < sizeof(exts) / sizeof(exts[0]); e++) {
            char *f = ws_strf("%s%s", packs[i].base, exts[e]);
            unlink(f);
            free(f);
        }
        merged++;
    }
    log_info(cfg->delivery, cfg->job, "merged %zu small packs of the mirror of %s/%s into one (%zu objects) in %lld ms", merged,
             n->owner, n->name, git_packbuilder_object_count(pb), (long long)(clock_mono_ms() - t0));
    goto done;

fail:
    /* Not fatal: the mirror is still complete, only slower. */
    log_warn(cfg->delivery, cfg->job, "could not merge the packs of the mirror of %s/%s: %s", n->owner, n->name,
             git_error_last() ? git_error_last()->message : "unreadable pack index");
done:
    if (d != NULL)
        closedir(d);
    git_packbuilder_free(pb);
    packs_free(packs, count);
    free(pack_dir);
}

int ws_mirror_sync_locked(const workspace_config_t *cfg, const ws_names_t *n, const char *token, const int *pulls,
                          size_t npulls, int *created, char *err, size_t err_len)
{
    int rc = 0;
    git_repository *repo = NULL;
    struct stat st;
    *created = 0;
    /* patchbay's alone, even in a data dir an older version made 0755 */
    char root[PATH_MAX];
    snprintf(root, sizeof(root), "%s/mirrors", cfg->data_dir);
    if (chmod(root, 0700) != 0 && errno != ENOENT)
        log_warn(cfg->delivery, cfg->job, "cannot make %s private: %s", root, strerror(errno));

    if (stat(n->git_dir, &st) == 0) {
        rc = ws_open_repo(&repo, n->git_dir, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, err, err_len,
                          "open the mirror");
        if (rc != 0)
            goto done;
        rc = fetch_into(repo, n, token, pulls, npulls, cfg, err, err_len);
        if (rc == 0)
            consolidate_packs(repo, n, cfg);
        goto done;
    }

    /* First use: fetch everything into a temporary directory, then rename. */
    int e = fstree_remove(n->tmp_dir); /* a crashed first fetch */
    if (e == 0)
        e = fstree_mkdirs(n->owner_dir, 0700);
    if (e != 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot prepare %s: %s", n->tmp_dir, strerror(-e));
        goto done;
    }
    git_repository_init_options iopts;
    git_repository_init_options_init(&iopts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    iopts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
    git_error_clear();
    int grc = git_repository_init_ext(&repo, n->tmp_dir, &iopts);
    if (grc < 0) {
        rc = ws_git_fail(grc, NULL, 0, err, err_len, "create the mirror %s", n->tmp_dir);
        goto done;
    }
    log_info(cfg->delivery, cfg->job, "first fetch of %s/%s into a new mirror", n->owner, n->name);
    rc = fetch_into(repo, n, token, pulls, npulls, cfg, err, err_len);
    git_repository_free(repo);
    repo = NULL;
    if (rc != 0) {
        fstree_remove(n->tmp_dir);
        goto done;
    }
    if (rename(n->tmp_dir, n->git_dir) != 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot move the new mirror into %s: %s", n->git_dir, strerror(errno));
        fstree_remove(n->tmp_dir);
        goto done;
    }
    *created = 1;

done:
    git_repository_free(repo);
    if (rc == 0)
        ws_mirror_touch(n->git_dir);
    return rc;
}

int workspace_mirror_sync(const workspace_config_t *cfg, const char *repo, const char *token, const int *pulls, size_t npulls,
                          char *err, size_t err_len)
{
    ws_names_t n;
    ws_lock_t lock = {-1};
    int created = 0;
    int rc = workspace_init(err, err_len);
    if (rc != 0)
        return rc;
    rc = ws_names_init(&n, cfg, repo, err, err_len);
    if (rc != 0)
        return rc;
    int e = fstree_mkdirs(n.owner_dir, 0700);
    if (e != 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot create %s: %s", n.owner_dir, strerror(-e));
        goto done;
    }
    rc = ws_lock(&lock, n.lock_path, lock_wait(cfg), err, err_len);
    if (rc != 0)
        goto done;
    rc = ws_mirror_sync_locked(cfg, &n, token, pulls, npulls, &created, err, err_len);

done:
    ws_unlock(&lock);
    ws_names_free(&n);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Eviction
 * ------------------------------------------------------------------------- */

typedef struct {
    char *owner_dir;
    char *git_dir;
    char *lock_path;
    char *label; /* owner/name as on disk */
    uint64_t bytes;
    int64_t last_used_ms;
} mirror_entry_t;

static int by_last_used(const void *a, const void *b)
{
    const mirror_entry_t *x = a, *y = b;
    return (x->last_used_ms > y->last_used_ms) - (x->last_used_ms < y->last_used_ms);
}

static int64_t mtime_ms(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

static void entries_free(mirror_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].owner_dir);
        free(v[i].git_dir);
        free(v[i].lock_path);
        free(v[i].label);
    }
    free(v);
}

/* Every <owner>/<name>.git under mirrors/, with its size and last use. */
static int scan_mirrors(mirror_entry_t **out, size_t *count, const char *root)
{
    *out = NULL;
    *count = 0;
    size_t cap = 0;
    DIR *top = opendir(root);
    if (top == NULL)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *od;
    while ((od = readdir(top)) != NULL) {
        if (od->d_name[0] == '.')
            continue;
        char *owner_dir = ws_strf("%s/%s", root, od->d_name);
        DIR *d = opendir(owner_dir);
        if (d == NULL) {
            free(owner_dir);
            continue;
        }
        struct dirent *md;
        while ((md = readdir(d)) != NULL) {
            size_t len = strlen(md->d_name);
            if (md->d_name[0] == '.' || len <= 4 || strcmp(md->d_name + len - 4, ".git") != 0)
                continue;
            char *git_dir = ws_strf("%s/%s", owner_dir, md->d_name);
            struct stat st;
            if (lstat(git_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
                free(git_dir);
                continue;
            }
            if (*count == cap) {
                cap = cap ? cap * 2 : 16;
                mirror_entry_t *nv = realloc(*out, cap * sizeof(**out));
                if (nv == NULL) {
                    fputs("patchbay: out of memory\n", stderr);
                    abort();
                }
                *out = nv;
            }
            mirror_entry_t *m = &(*out)[(*count)++];
            m->owner_dir = ws_strf("%s", owner_dir);
            m->git_dir = git_dir;
            m->lock_path = ws_strf("%.*s.lock", (int)(strlen(git_dir) - 4), git_dir);
            m->label = ws_strf("%s/%.*s", od->d_name, (int)(len - 4), md->d_name);
            m->bytes = fstree_disk_usage(git_dir, NULL);
            char *stamp = ws_strf("%s/patchbay-last-used", git_dir);
            struct stat ts;
            m->last_used_ms = stat(stamp, &ts) == 0 ? mtime_ms(&ts) : mtime_ms(&st);
            free(stamp);
        }
        closedir(d);
        free(owner_dir);
    }
    closedir(top);
    return 0;
}

/* Renames the mirror out of the way (atomic: no job can open half of it),
 * then deletes it. The caller holds its lock. */
static int delete_mirror(const mirror_entry_t *m)
{
    char *trash = NULL;
    for (int i = 0; i < MIRROR_TRASH_TRIES; i++) {
        free(trash);
        trash = ws_strf("%s/.evicted-%ld-%d", m->owner_dir, (long)getpid(), i);
        if (rename(m->git_dir, trash) == 0)
            break;
        if (errno != EEXIST && errno != ENOTEMPTY) {
            int e = errno;
            free(trash);
            return -e;
        }
    }
    int rc = fstree_remove(trash);
    free(trash);
    return rc;
}

int workspace_mirror_evict(const workspace_config_t *cfg, const char *keep, char *err, size_t err_len)
{
    if (cfg->mirror_budget_bytes == 0)
        return 0;
    char *root = ws_strf("%s/mirrors", cfg->data_dir);
    mirror_entry_t *v = NULL;
    size_t n = 0;
    int evicted = 0;
    int rc = scan_mirrors(&v, &n, root);
    if (rc != 0) {
        rc = ws_fail(WORKSPACE_EIO, err, err_len, "cannot list %s: %s", root, strerror(-rc));
        goto done;
    }
    char keep_label[WS_OWNER_MAX + WS_NAME_MAX + 2] = "";
    if (keep != NULL) {
        snprintf(keep_label, sizeof(keep_label), "%s", keep);
        for (char *p = keep_label; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].bytes;
    qsort(v, n, sizeof(*v), by_last_used);
    for (size_t i = 0; i < n && total > cfg->mirror_budget_bytes; i++) {
        if (strcmp(v[i].label, keep_label) == 0)
            continue;
        ws_lock_t lock;
        char lerr[WORKSPACE_ERR_BYTES];
        if (ws_lock(&lock, v[i].lock_path, -1, lerr, sizeof(lerr)) != 0)
            continue; /* in use right now: not the least recently used after all */
        struct stat st;
        int e = lstat(v[i].git_dir, &st) == 0 ? delete_mirror(&v[i]) : 0; /* gone already: someone else evicted it */
        if (e == 0) {
            /* Deleting the lock file while holding it is safe: ws_lock
             * re-checks the inode after flock. */
            unlink(v[i].lock_path);
            total -= v[i].bytes;
            evicted++;
            log_info(cfg->delivery, cfg->job, "evicted the mirror of %s (%llu bytes, over the %llu-byte budget)", v[i].label,
                     (unsigned long long)v[i].bytes, (unsigned long long)cfg->mirror_budget_bytes);
        } else {
            log_warn(cfg->delivery, cfg->job, "cannot evict the mirror %s: %s", v[i].git_dir, strerror(-e));
        }
        ws_unlock(&lock);
    }
    rc = evicted;

done:
    entries_free(v, n);
    free(root);
    return rc;
}
