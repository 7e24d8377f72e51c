/*
 * workspace_int — what workspace.c, workspace_mirror.c and workspace_tree.c share and nobody
 * else should use: libgit2 error conversion, the remote callbacks that carry
 * the token, repository names and paths, directory helpers and the mirror's
 * cross-process lock. See workspace.h for the module.
 *
 * Memory: ws_names_t and ws_remote_t live on the caller's stack; ws_remote_t
 * borrows the token (never copies it) and owns `remote_text`.
 */
#ifndef PATCHBAY_WORKSPACE_INT_H
#define PATCHBAY_WORKSPACE_INT_H

#include "workspace.h"
#include "app/common/fstree.h"
#include "app/common/strbuf.h"

#include <git2.h>
#include <git2/sys/repository.h>
#include <stddef.h>

/* GitHub: logins up to 39, repository names up to 100 characters. */
#define WS_OWNER_MAX 39
#define WS_NAME_MAX 100
#define WS_JOB_ID_MAX 64
#define WS_REMOTE_TEXT_MAX_BYTES 2048 /* "remote:" lines kept for an error message */
/* The credentials callback runs once per connection; being asked again means
 * the token was refused. libgit2 1.5 would otherwise ask up to 15 times
 * (GIT_HTTP_REPLAY_MAX), each one a request GitHub counts against us. */
#define WS_CRED_MAX_CALLS 1

/* "owner/name", validated, and the paths that follow from it. Directory names
 * are lowercased: GitHub names are case-insensitive and one repository must
 * have one mirror. */
typedef struct {
    char owner[WS_OWNER_MAX + 1];
    char name[WS_NAME_MAX + 1];
    char *url;       /* <git_url>/<owner>/<name>.git, no credential */
    char *owner_dir; /* <data_dir>/mirrors/<owner> */
    char *git_dir;   /* <owner_dir>/<name>.git */
    char *lock_path; /* <owner_dir>/<name>.lock */
    char *tmp_dir;   /* <owner_dir>/.<name>.git.tmp: a first fetch in progress */
} ws_names_t;

int ws_names_init(ws_names_t *n, const workspace_config_t *cfg, const char *repo, char *err, size_t err_len);
void ws_names_free(ws_names_t *n);

/* One conversation with GitHub: the credentials and progress callbacks'
 * state. */
typedef struct {
    const char *token; /* borrowed; NULL = anonymous */
    int cred_calls;
    int auth_refused;      /* asked for credentials again: the token was refused */
    int push_refused;      /* push_update_reference reported a status */
    char refused_ref[256]; /* "refs/heads/x: <status>" of the first refusal */
    strbuf_t remote_text;  /* sideband text ("remote: ..."), bounded */
} ws_remote_t;

void ws_remote_init(ws_remote_t *r, const char *token);
void ws_remote_dispose(ws_remote_t *r);
/* Fills callbacks (credentials, sideband, push status) pointing at r. */
void ws_remote_callbacks(git_remote_callbacks *cb, ws_remote_t *r);

/* Converts a failed libgit2 call (rc < 0, git_error_last() fresh) into a
 * workspace_err_t and writes "<what>: <why>" into err. `r` (may be NULL)
 * supplies what the callbacks saw, which wins over libgit2's message.
 * Callers clear libgit2's error (git_error_clear) before the call they
 * convert, so a message left over from an earlier call is never reported. */
int ws_git_fail(int rc, const ws_remote_t *r, int network, char *err, size_t err_len, const char *what, ...)
    __attribute__((format(printf, 6, 7)));

/* git_repository_open_ext on a repository we made, with one extra check:
 * libgit2 1.5.1 reports a repository owned by another user (as root) as
 * "config value 'safe.directory' was not found", GIT_ENOTFOUND; we say
 * what is actually wrong. `what` starts the error message. */
int ws_open_repo(git_repository **out, const char *path, unsigned int flags, char *err, size_t err_len, const char *what);

/* The job's repository as patchbay reads it after the agent ran: an empty
 * in-memory config, the work tree pinned to ws->path, and refused when .git
 * is not a plain directory or borrows objects (alternates, commondir). */
int ws_open_untrusted(git_repository **out, const workspace_t *ws, char *err, size_t err_len);

/* printf into err; returns code. */
int ws_fail(int code, char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Directories: app/common/fstree.h (mkdir -p, rm -rf, disk usage). */
/* malloc'd printf; aborts on out of memory (Redis's zmalloc habit). */
char *ws_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Cross-process lock on a file (flock). `wait_ms` < 0: do not wait. Survives
 * the file being deleted and re-created by an eviction: after flock it checks
 * that the path still names the locked file, else retries. Returns 0, or
 * WORKSPACE_ERETRY when the wait ran out, WORKSPACE_EIO on a system error. */
typedef struct {
    int fd;
} ws_lock_t;
int ws_lock(ws_lock_t *l, const char *path, int wait_ms, char *err, size_t err_len);
void ws_unlock(ws_lock_t *l);

/* Marks the mirror as just used (mtime of <git_dir>/patchbay-last-used). */
void ws_mirror_touch(const char *git_dir);

/* The fetch itself, the mirror lock held: create (into tmp_dir, then rename)
 * or open, fetch, set HEAD to GitHub's default branch. *created = 1 when this
 * call made the mirror. */
int ws_mirror_sync_locked(const workspace_config_t *cfg, const ws_names_t *n, const char *token, const int *pulls,
                          size_t npulls, int *created, char *err, size_t err_len);

#endif
