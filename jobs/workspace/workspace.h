/*
 * workspace — git for a job: a cached mirror per repository, a checkout per
 * job made from it, the job's changes, its commit and its push (libgit2).
 *
 * Layout under the data dir (docs/workspaces.md says the same for users):
 *   mirrors/<owner>/<repo>.git    bare mirror: every branch and tag, and
 *                                 refs/pull/N/head when a job asked for PR N
 *   mirrors/<owner>/<repo>.lock   flock(2) held while the mirror is fetched
 *                                 and while a checkout links its packs
 *   mirrors/<owner>/<repo>.git/patchbay-last-used   mtime = last use (LRU)
 *   workspaces/<job id>/repo/     the job's checkout on its own branch
 *   workspaces/<job id>/          the rest is the caller's (prompt, logs)
 *
 * A job calls, in order:
 *   workspace_prepare   lock the mirror, create it on first use or fetch it
 *                       (one fetch per repository at a time across every
 *                       process sharing the data dir), then make the checkout
 *                       from it without talking to GitHub, then evict the
 *                       least recently used other mirrors above the budget;
 *   workspace_snapshot  the work tree as a tree object, between the runs of
 *                       the agent and the repository's commands;
 *   workspace_carry     a run's difference between two snapshots carried
 *                       onto a tree: the agent's change, without what
 *                       `setup:` and `test:` left;
 *   workspace_changes   what the agent changed: files, lines, binary;
 *   workspace_forbidden which of those paths match forbidden globs;
 *   workspace_read      a file as the change has it (the secret scan);
 *   workspace_commit    one commit of that change (or of the whole work
 *                       tree), as the bot;
 *   workspace_push      '+refs/heads/<branch>' to GitHub;
 *   workspace_remove    delete workspaces/<job id>/.
 *
 * Tokens: the installation token is an argument of the two calls that talk to
 * GitHub and goes to libgit2 only through the credentials callback (Basic
 * auth, user `x-access-token`). It is never part of a URL, never written to a
 * repository's config, FETCH_HEAD, reflog or any other file, and never
 * logged. The checkout's `origin` is the plain https URL, so an agent working
 * in it finds no credential.
 *
 * Errors: every function that can fail returns 0 or a negative
 * workspace_err_t and writes one human line into `err` (WORKSPACE_ERR_BYTES is
 * enough). libgit2's errors are converted once, where we call it, from return
 * codes and the HTTP status, never from a message left over by an earlier call.
 *
 * Memory: workspace_t and workspace_changes_t are owned by the caller and
 * freed with workspace_free / workspace_changes_free. Strings passed in are
 * borrowed for the call only.
 *
 * Threads: any thread may call any function; calls on one workspace_t must
 * not overlap. libgit2 is initialised on first use (workspace_init is
 * idempotent and thread-safe). Blocking: every call does disk and possibly
 * network I/O — workers only, never the webhook event loop.
 */
#ifndef PATCHBAY_WORKSPACE_H
#define PATCHBAY_WORKSPACE_H

#include "app/common/config.h"

#include <stddef.h>
#include <stdint.h>

#define WORKSPACE_ERR_BYTES 512
#define WORKSPACE_OID_HEX 41        /* 40 hex digits and the NUL */
#define WORKSPACE_SLUG_MAX_BYTES 40 /* the slug part of patchbay/<n>-<slug> */
#define WORKSPACE_BRANCH_PREFIX "patchbay/"

/* What a caller acts on. */
typedef enum {
    WORKSPACE_OK = 0,
    WORKSPACE_ENOTFOUND = -1, /* no such repository (or the token cannot see it), branch, PR or empty repo */
    WORKSPACE_EAUTH = -2,     /* the token was refused (401) or lacks the permission (403): new token, not retry */
    WORKSPACE_EREFUSED = -3,  /* GitHub refused the push (hook, protected branch); err has its message */
    WORKSPACE_ERETRY = -4,    /* network, timeout, 5xx, another process held the mirror too long: retry later */
    WORKSPACE_ECONFLICT = -5, /* a ref moved under us or a git lock file is held */
    WORKSPACE_EIO = -6,       /* local disk, a corrupt repository, a foreign owner: permanent here */
    WORKSPACE_ENOCHANGE = -7, /* workspace_commit: the work tree equals the base; nothing committed */
    WORKSPACE_EINVAL = -8,    /* a bad name from the world: repository, branch or job id */
} workspace_err_t;

/* "not_found", "auth", ... for logs and job records. */
const char *workspace_err_name(int rc);

/* Where and how; usually filled from config_t (data_dir, github.url,
 * workspaces.mirror_budget_bytes). */
typedef struct {
    const char *data_dir;
    const char *git_url;          /* GITHUB_URL: "https://github.com" or a test server */
    uint64_t mirror_budget_bytes; /* evict LRU mirrors above this; 0 = never */
    int lock_wait_ms;             /* wait this long for another process's fetch; 0 = WORKSPACE_LOCK_WAIT_MS */
    const char *delivery;         /* for log lines; may be NULL */
    const char *job;              /* for log lines; may be NULL */
} workspace_config_t;

#define WORKSPACE_LOCK_WAIT_MS (15 * 60 * 1000) /* a first clone of a big repository takes minutes */

/* Fills `out` from the loaded config: data_dir, github.url,
 * workspaces.mirror_budget_bytes (strings borrowed from `cfg`). */
void workspace_config_init(workspace_config_t *out, const config_t *cfg, const char *delivery, const char *job);

/* What to check out. */
typedef struct {
    const char *repo;        /* "owner/name" */
    const char *token;       /* installation token; NULL = anonymous (public repositories) */
    const char *job_id;      /* workspaces/<job_id>/ ([A-Za-z0-9._-], not . or ..) */
    const char *branch;      /* the job's branch, e.g. from workspace_branch_name() */
    const char *base_branch; /* start from this branch; NULL = the repository's default branch */
    int pull_number;         /* > 0: start from refs/pull/N/head instead (follow-ups, reviews); fork-safe */
    int resume;              /* start from `branch` on GitHub when it exists (a retried job continues) */
    const char *user_name;   /* optional: user.name/user.email in the checkout's config, */
    const char *user_email;  /*   so an agent's own `git commit` works; no secret */
} workspace_spec_t;

typedef struct {
    char *dir;                          /* <data_dir>/workspaces/<job id> */
    char *path;                         /* <dir>/repo: the work tree */
    char *repo;                         /* owner/name */
    char *branch;                       /* the checked-out local branch */
    char *base_ref;                     /* where it started: refs/heads/main, refs/pull/7/head, refs/heads/<branch> */
    char *default_branch;               /* the repository's default branch, e.g. "main" */
    char base_oid[WORKSPACE_OID_HEX];   /* the commit the branch started from */
    char remote_oid[WORKSPACE_OID_HEX]; /* `branch` on GitHub at fetch time; "" when it does not exist */
    int mirror_created;                 /* 1 when this call made the mirror (a first, full fetch) */
    int64_t fetch_ms;                   /* time spent waiting for the lock and fetching the mirror */
    int64_t checkout_ms;                /* time spent making the checkout from the mirror */
} workspace_t;

/* libgit2's global state and options. Idempotent; every other function calls it. */
int workspace_init(char *err, size_t err_len);

/* "patchbay/<number>-<slug>" with the slug from `title`: lowercase ASCII
 * letters and digits, runs of anything else as one '-', trimmed, at most
 * WORKSPACE_SLUG_MAX_BYTES, "issue" when nothing is left. Returns 0, or -1
 * when `out` is too small (64 bytes always suffices). */
int workspace_branch_name(char *out, size_t outlen, long long number, const char *title);

/* Locks the mirror, creates or fetches it (every branch and tag, and
 * refs/pull/<pull_number>/head when asked), and makes workspaces/<job id>/repo
 * on a new branch `spec->branch` at the base, with `origin` = the plain
 * https URL. An existing workspaces/<job id>/ (a crashed attempt) is replaced.
 * Then evicts least recently used mirrors above the budget. *out is the
 * caller's (workspace_free). */
int workspace_prepare(workspace_t **out, const workspace_config_t *cfg, const workspace_spec_t *spec, char *err, size_t err_len);
void workspace_free(workspace_t *ws);

/* Paths, relative to a work tree, that are hard links into the repository's
 * mirror and so shared with every other job on that repository: what runs in
 * the work tree (the agent, the repository's commands) may read them but
 * never change them, or every later job on the repository breaks. The
 * sandbox binds them read-only. NULL-terminated. */
extern const char *const workspace_shared_paths[];

/* Deletes <data_dir>/workspaces/<job_id>/. A missing directory is fine. */
int workspace_remove(const workspace_config_t *cfg, const char *job_id, char *err, size_t err_len);

/* ---------------------------------------------------------------------------
 * Snapshots. A pull request should hold the agent's change and nothing else,
 * but the repository's `setup:` (npm ci) and `test:` (Python's __pycache__,
 * reports) commands write into the same work tree. So an attempt records the
 * work tree before and after each run of the agent, and carries only each
 * run's difference onto the base: files that appeared or changed because a
 * command ran, and that the agent did not touch afterwards, are left out.
 * A tree is named by its hex id ("" or NULL: the base commit's tree); its
 * objects are written to the checkout's own store, which lives as long as
 * the checkout.
 * ------------------------------------------------------------------------- */

/* The work tree as it is now, as workspace_changes would see it (.gitignore
 * and .git/info/exclude respected, nested repositories left out), written as
 * a tree; the checkout's index file is left as it was. */
int workspace_snapshot(char tree_out[WORKSPACE_OID_HEX], const workspace_t *ws, char *err, size_t err_len);

/* out = `onto` with every path that differs between `before` and `after`
 * (added, changed, removed, a file turned directory) as `after` has it. The
 * other paths keep `onto`'s entries. Any of the three may be "" or NULL:
 * the base commit's tree. */
int workspace_carry(char out[WORKSPACE_OID_HEX], const workspace_t *ws, const char *onto, const char *before,
                    const char *after, char *err, size_t err_len);

/* The first `max` bytes of `path` as `tree` holds it (a symbolic link: its
 * target), NUL-terminated, in *out (the caller's). WORKSPACE_ENOTFOUND when
 * the tree has no file there. */
int workspace_read(char **out, size_t *len, const workspace_t *ws, const char *tree, const char *path, size_t max,
                   char *err, size_t err_len);

/* ---------------------------------------------------------------------------
 * What changed: `tree` (a snapshot or a carried change; NULL: the work tree
 * as it is now, tracked and untracked files, .gitignore respected) against
 * the base commit, renames detected. An agent's own commits are included:
 * only the base and the files count.
 * ------------------------------------------------------------------------- */

typedef struct {
    char *path;     /* new path (old path for deletions) */
    char *old_path; /* renames: where it came from; else NULL */
    char status;    /* 'A' added, 'M' modified, 'D' deleted, 'R' renamed, 'T' type changed */
    int binary;
    size_t additions; /* lines; 0 for binaries */
    size_t deletions;
    const char *forbidden; /* set by workspace_forbidden: the glob it matched, or NULL */
} workspace_change_t;

typedef struct {
    workspace_change_t *items;
    size_t count;
    size_t additions;
    size_t deletions;
} workspace_changes_t;

int workspace_changes(workspace_changes_t *out, const workspace_t *ws, const char *tree, char *err, size_t err_len);
void workspace_changes_free(workspace_changes_t *c);

/* Marks each change whose path (or old path) matches one of `globs`
 * (pathglob.h rules) and returns how many were marked. */
size_t workspace_forbidden(workspace_changes_t *c, const char *const *globs, size_t nglobs);

/* ---------------------------------------------------------------------------
 * Commit and push
 * ------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *email;
} workspace_person_t;

/* The App's bot identity as GitHub shows it:
 * name "<slug>[bot]", email "<id>+<slug>[bot]@users.noreply.github.com".
 * Returns 0, or -1 when a buffer is too small (128 bytes each suffice). */
int workspace_bot_identity(char *name, size_t namelen, char *email, size_t emaillen, const char *app_slug,
                           long long bot_user_id);

/* Commits `tree` (NULL: the whole work tree, as workspace_changes sees it)
 * on `ws->branch` with the base commit as parent (an agent's own commits
 * are folded in), as author and committer `bot`. `coauthor`, when given,
 * adds the trailer "Co-authored-by: Name <email>". Writes the commit's hex
 * id into oid_out. WORKSPACE_ENOCHANGE when the tree equals the base: no
 * commit is made. */
int workspace_commit(char oid_out[WORKSPACE_OID_HEX], workspace_t *ws, const char *tree, const workspace_person_t *bot,
                     const char *message, const workspace_person_t *coauthor, char *err, size_t err_len);

/* Pushes '+refs/heads/<branch>:refs/heads/<branch>' to GitHub with `token`.
 * Pushing the same commit again succeeds. A push GitHub refuses is
 * WORKSPACE_EREFUSED with the server's words (the hook's "remote:" lines and
 * the ref status) in err, never success. */
int workspace_push(const workspace_config_t *cfg, const workspace_t *ws, const char *token, char *err, size_t err_len);

/* ---------------------------------------------------------------------------
 * Reading one commit (workspace_tree.c): the files of a commit of the job's
 * repository, never its work tree, which the agent may have changed. For
 * what patchbay reads on its own account after the checkout: a repository's
 * instruction files, the paths an answer links to. Objects are read by id
 * with libgit2's hash check on, from the repository opened as
 * workspace_changes opens it, so nothing the agent wrote can pass for them.
 * ------------------------------------------------------------------------- */

typedef struct workspace_tree workspace_tree_t;

/* Opens commit `commit_hex` (40 hex digits: ws->base_oid, or another commit
 * the mirror had, such as a pull request's base). WORKSPACE_ENOTFOUND when
 * the repository does not have it. *out is the caller's (workspace_tree_close). */
int workspace_tree_open(workspace_tree_t **out, const workspace_t *ws, const char *commit_hex, char *err,
                        size_t err_len);
void workspace_tree_close(workspace_tree_t *t);

/* A regular file's first `max` bytes (malloc'd, NUL-terminated; *len of
 * them) and its whole size in *size. WORKSPACE_ENOTFOUND for no such path,
 * a directory, a symbolic link or a submodule. */
int workspace_tree_read(char **out, size_t *len, size_t *size, workspace_tree_t *t, const char *path, size_t max);

/* The number of lines of a regular file (a last line without '\n' counts;
 * an empty file has 0). WORKSPACE_ENOTFOUND as workspace_tree_read. */
int workspace_tree_lines(size_t *lines, workspace_tree_t *t, const char *path);

/* The paths of the regular files whose name (last component) is one of
 * `names` (NULL-terminated), shallower first, then by path; at most `max`
 * (the first found by a walk in git's order when there are more); each
 * malloc'd, in *out (malloc'd; the caller frees both). */
int workspace_tree_find(char ***out, size_t *count, workspace_tree_t *t, const char *const *names, size_t max,
                        char *err, size_t err_len);

/* ---------------------------------------------------------------------------
 * Mirrors (workspace_prepare uses these; exposed for maintenance and tests)
 * ------------------------------------------------------------------------- */

/* Locks, creates or fetches the mirror of `repo`, unlocks. `pulls` are PR
 * numbers whose refs/pull/N/head to fetch too. */
int workspace_mirror_sync(const workspace_config_t *cfg, const char *repo, const char *token, const int *pulls, size_t npulls,
                          char *err, size_t err_len);

/* Deletes least recently used mirrors until their total size is at most the
 * budget, skipping `keep` ("owner/name" or NULL) and any mirror another
 * process holds locked. Returns how many it deleted, or a negative code. */
int workspace_mirror_evict(const workspace_config_t *cfg, const char *keep, char *err, size_t err_len);

#endif
