/*
 * sandbox_user — a host user of its own for each job's sandboxed commands,
 * when patchbay runs as root.
 *
 * Why: under bubblewrap as root, a command's uid inside maps to root outside.
 * Then RLIMIT_NPROC is not enforced at all (the kernel exempts uid 0), and
 * the command owns every root-owned file it can see, so it may chmod and
 * rewrite whatever is bound into the sandbox (the mirror's pack files, which
 * work trees hard-link). With a user of its own, unprivileged and unknown to
 * the host, processes are counted per job and nothing of root's is the
 * command's.
 *
 * A job takes one of `count` users from base (base + slot) with a lease: an
 * flock on <data_dir>/sandbox/users/<slot>.lock, held while the job runs and
 * dropped when it ends, however it ends (the kernel releases the lock of a
 * process that died). Two jobs on the machine never share a user, whatever
 * the number of workers and processes.
 *
 * The job's work tree and scratch directory are then given to that user
 * (sandbox_user_give), except the paths it must only read (the mirror's hard
 * links, workspace_shared_paths): those stay root's and read-only.
 *
 * Not root: there is nothing to switch to; acquire returns a lease with uid 0
 * ("run as patchbay"), and RLIMIT_NPROC then counts patchbay's own user.
 *
 * Memory: a lease holds one descriptor (release closes it). Any thread;
 * blocking (the tree walk).
 */
#ifndef PATCHBAY_SANDBOX_USER_H
#define PATCHBAY_SANDBOX_USER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct {
    uid_t uid; /* 0: run as patchbay */
    gid_t gid;
    int lock_fd;
} sandbox_user_t;

#define SANDBOX_USER_INIT {0, 0, -1}

/* Takes a free user base .. base+count-1 (as root), else uid 0. 0, or -1
 * with a reason in err (all `count` users busy, the lock directory cannot be
 * made). */
int sandbox_user_acquire(sandbox_user_t *u, const char *data_dir, uid_t base, unsigned count, char *err,
                         size_t err_len);
void sandbox_user_release(sandbox_user_t *u);

/* Gives dir and everything under it to u (lchown, not following links, not
 * leaving the filesystem), except the subtrees in keep (relative paths, may
 * be NULL). Nothing to do for uid 0. 0, or -1 with the path in err. */
int sandbox_user_give(const sandbox_user_t *u, const char *dir, const char *const *keep, char *err, size_t err_len);

#endif
