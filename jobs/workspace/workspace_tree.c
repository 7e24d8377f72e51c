/*
 * workspace_tree — see workspace.h ("Reading one commit"). A thin layer on
 * libgit2's object database: a commit looked up by id, its tree, blobs by
 * path. Only regular files (modes 100644 and 100755) are files here: a
 * symbolic link's blob is the text of its target, and a link would let a
 * repository point its instruction file at something else.
 */
#include "workspace.h"
#include "workspace_int.h"

#include <stdlib.h>
#include <string.h>

struct workspace_tree {
    git_repository *repo;
    git_tree *tree;
};

int workspace_tree_open(workspace_tree_t **out, const workspace_t *ws, const char *commit_hex, char *err,
                        size_t err_len)
{
    git_repository *repo = NULL;
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    git_oid oid;
    *out = NULL;
    int rc = workspace_init(err, err_len);
    if (rc != 0)
        return rc;
    if (commit_hex == NULL || strlen(commit_hex) != 40 || git_oid_fromstr(&oid, commit_hex) != 0)
        return ws_fail(WORKSPACE_EINVAL, err, err_len, "not a commit id: %.60s", commit_hex ? commit_hex : "(none)");
    if ((rc = ws_open_untrusted(&repo, ws, err, err_len)) != 0)
        return rc;
    git_error_clear();
    int grc = git_commit_lookup(&commit, repo, &oid);
    if (grc == 0)
        grc = git_commit_tree(&tree, commit);
    git_commit_free(commit);
    if (grc == GIT_ENOTFOUND) {
        git_repository_free(repo);
        return ws_fail(WORKSPACE_ENOTFOUND, err, err_len, "%s has no commit %.12s", ws->repo, commit_hex);
    }
    if (grc < 0) {
        git_repository_free(repo);
        return ws_git_fail(grc, NULL, 0, err, err_len, "read commit %.12s of %s", commit_hex, ws->repo);
    }
    workspace_tree_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        git_tree_free(tree);
        git_repository_free(repo);
        return ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
    }
    t->repo = repo;
    t->tree = tree;
    *out = t;
    return WORKSPACE_OK;
}

void workspace_tree_close(workspace_tree_t *t)
{
    if (t == NULL)
        return;
    git_tree_free(t->tree);
    git_repository_free(t->repo);
    free(t);
}

static int is_regular(git_filemode_t mode)
{
    return mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE;
}

/* The blob of a regular file at path, or NULL. */
static git_blob *blob_at(workspace_tree_t *t, const char *path)
{
    git_tree_entry *e = NULL;
    git_blob *b = NULL;
    if (path == NULL || path[0] == '\0' || path[0] == '/')
        return NULL;
    git_error_clear();
    if (git_tree_entry_bypath(&e, t->tree, path) != 0)
        return NULL;
    if (is_regular(git_tree_entry_filemode(e)) && git_blob_lookup(&b, t->repo, git_tree_entry_id(e)) != 0)
        b = NULL;
    git_tree_entry_free(e);
    return b;
}

int workspace_tree_read(char **out, size_t *len, size_t *size, workspace_tree_t *t, const char *path, size_t max)
{
    *out = NULL;
    *len = *size = 0;
    git_blob *b = blob_at(t, path);
    if (b == NULL)
        return WORKSPACE_ENOTFOUND;
    size_t n = (size_t)git_blob_rawsize(b);
    size_t take = n < max ? n : max;
    char *text = malloc(take + 1);
    if (text == NULL) {
        git_blob_free(b);
        return WORKSPACE_EIO;
    }
    memcpy(text, git_blob_rawcontent(b), take);
    text[take] = '\0';
    git_blob_free(b);
    *out = text;
    *len = take;
    *size = n;
    return WORKSPACE_OK;
}

int workspace_tree_lines(size_t *lines, workspace_tree_t *t, const char *path)
{
    *lines = 0;
    git_blob *b = blob_at(t, path);
    if (b == NULL)
        return WORKSPACE_ENOTFOUND;
    const char *p = git_blob_rawcontent(b), *end = p + git_blob_rawsize(b);
    size_t n = 0;
    for (const char *nl; p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1)
        n++;
    if (p < end)
        n++; /* the last line, without its newline */
    git_blob_free(b);
    *lines = n;
    return WORKSPACE_OK;
}

typedef struct {
    const char *const *names;
    char **paths;
    size_t count, max;
} find_t;

static int find_cb(const char *root, const git_tree_entry *e, void *arg)
{
    find_t *f = arg;
    if (f->count >= f->max)
        return GIT_EUSER; /* enough: stops the walk, which returns it */
    if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
        return 0;
    const char *name = git_tree_entry_name(e);
    if (!is_regular(git_tree_entry_filemode(e)))
        return 0;
    for (size_t i = 0; f->names[i] != NULL; i++)
        if (strcmp(name, f->names[i]) == 0) {
            char *p = ws_strf("%s%s", root, name);
            f->paths[f->count++] = p;
            return 0;
        }
    return 0;
}

static size_t depth(const char *p)
{
    size_t d = 0;
    for (; *p; p++)
        d += *p == '/';
    return d;
}

static int by_depth_then_path(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t dx = depth(x), dy = depth(y);
    return dx != dy ? (dx < dy ? -1 : 1) : strcmp(x, y);
}

int workspace_tree_find(char ***out, size_t *count, workspace_tree_t *t, const char *const *names, size_t max,
                        char *err, size_t err_len)
{
    *out = NULL;
    *count = 0;
    find_t f = {names, calloc(max + 1, sizeof(char *)), 0, max};
    if (f.paths == NULL)
        return ws_fail(WORKSPACE_EIO, err, err_len, "out of memory");
    git_error_clear();
    int grc = max > 0 ? git_tree_walk(t->tree, GIT_TREEWALK_PRE, find_cb, &f) : 0;
    if (grc < 0 && grc != GIT_EUSER) {
        for (size_t i = 0; i < f.count; i++)
            free(f.paths[i]);
        free(f.paths);
        return ws_git_fail(grc, NULL, 0, err, err_len, "list the files of a commit");
    }
    qsort(f.paths, f.count, sizeof(char *), by_depth_then_path);
    *out = f.paths;
    *count = f.count;
    return WORKSPACE_OK;
}
