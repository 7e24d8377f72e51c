/*
 * sandbox — runs one untrusted command (an agent CLI, a repository's setup or
 * test command, the built-in agent's `run` tool) so that it can change the
 * job's workspace and nothing else, cannot see patchbay's secrets, and cannot
 * outlive its welcome.
 *
 * Every run gets:
 *   - its own session and process group (setsid), so it has no controlling
 *     terminal to push keystrokes into, killed as a whole on timeout, on
 *     cancel and when the command's leader exits (stragglers do not survive);
 *   - a scrubbed environment: an allowlist (PATH, HOME and TMPDIR in the run's
 *     scratch directory, LANG, TERM=dumb) plus the variables the caller passes
 *     by name, of which none may be a secret (config_env_is_secret: GitHub
 *     tokens, WEBHOOK_SECRET, PRIVATE_KEY*, APP_ID, REDIS_URL...);
 *   - rlimits: CPU seconds, file size, address space, processes, open files;
 *   - a wall-clock limit: SIGTERM to the group, SIGKILL after a grace period,
 *     reported as SANDBOX_TIMEOUT, never confused with an exit code;
 *   - stdout and stderr captured, merged, to a file with a byte cap: the head
 *     and the tail are kept around a "[patchbay: output truncated ...]"
 *     marker, through a bounded ring buffer, never in unbounded memory;
 *   - stdin from a file, or /dev/null.
 * And, unless the operator chose SANDBOX_ISOLATE_NONE, bubblewrap (`bwrap`):
 * new mount, pid, ipc, uts, cgroup and net namespaces, a new session
 * (--new-session) and --die-with-parent, so nothing of the run outlives it; a
 * root with /usr read-only (plus the merged-/usr symlinks /bin, /lib...), a
 * few read-only files of /etc (and the DNS and TLS ones when the network is
 * on), a private /tmp, and only the workspace and the scratch directory
 * writable, less the paths in ro_overlays; as root, a user namespace with an
 * unprivileged uid and every capability dropped. It fails closed: when
 * bubblewrap is missing or cannot start (no user namespaces in a container),
 * the run is refused with SANDBOX_ERR_ISOLATION and a reason, and nothing of
 * the command ran.
 *
 * The scratch directory belongs to the caller (it holds the prompt, the
 * summary file...); the sandbox creates scratch/home and scratch/tmp in it
 * and removes nothing.
 *
 * Threads: sandbox_run blocks the calling thread until the command is over
 * and may be called from several threads at once (it keeps no state). It
 * forks; between fork and exec the child only makes async-signal-safe calls,
 * so the caller may be multi-threaded. Memory: the options are borrowed for
 * the call; the result owns nothing.
 */
#ifndef PATCHBAY_SANDBOX_H
#define PATCHBAY_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum {
    SANDBOX_ISOLATE_BWRAP = 0, /* bubblewrap or refuse to run */
    SANDBOX_ISOLATE_NONE,      /* session, environment and rlimits only: the operator's explicit choice */
} sandbox_isolation_t;

/* Limits; 0 leaves that limit as patchbay's own. All but tree_bytes are
 * rlimits, so per process (processes: per host user, see uid). */
typedef struct {
    uint64_t cpu_seconds;
    uint64_t memory_bytes;        /* RLIMIT_DATA: heap and private writable mappings. Not RLIMIT_AS:
                                   * V8 and Go reserve gigabytes they never touch (Node needs >= 768 MiB
                                   * of address space to start; each WebAssembly memory reserves ~10 GiB) */
    uint64_t address_space_bytes; /* RLIMIT_AS, for operators who want it anyway */
    uint64_t file_size_bytes;
    uint64_t processes;           /* RLIMIT_NPROC: counted per real user id, never for root */
    uint64_t open_files;
    uint64_t tree_bytes;          /* the work tree and scratch directory together, watched while it runs */
} sandbox_limits_t;

#define SANDBOX_DEFAULT_OUTPUT_LIMIT_BYTES (10u * 1024 * 1024)
#define SANDBOX_DEFAULT_KILL_GRACE_MS 2000
/* The uid and gid a command has inside bubblewrap when patchbay runs as root. */
#define SANDBOX_UID 1000
#define SANDBOX_GID 1000
/* PATH inside, after the operator's path_dirs; the directories of extra
 * read-only paths are not added. */
#define SANDBOX_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* The sandbox's first program (app/enter_main.c), built and installed next
 * to patchbay: static, so it runs in any image. */
#define SANDBOX_ENTER_PROGRAM "patchbay-enter"

typedef struct {
    const char *const *argv;      /* argv[0]: absolute, or a name looked up in path_dirs, then SANDBOX_PATH;
                                   * NULL-terminated */
    const char *workdir;          /* absolute; the working directory, writable */
    const char *scratch_dir;      /* absolute; writable; HOME = scratch/home, TMPDIR = scratch/tmp */
    const char *const *env;       /* extra "NAME=value" entries (NULL-terminated, may be NULL); override the allowlist */
    const char *stdin_path;       /* NULL: /dev/null */
    const char *output_path;      /* stdout+stderr go here (created or truncated, 0600) */
    size_t output_limit_bytes;    /* 0: SANDBOX_DEFAULT_OUTPUT_LIMIT_BYTES */
    int64_t timeout_ms;           /* wall clock; 0 = none */
    int64_t kill_grace_ms;        /* SIGTERM to SIGKILL on timeout; <0: SANDBOX_DEFAULT_KILL_GRACE_MS */
    int network;                  /* 1: outbound only, through user-mode NAT; 0: loopback only
                                   * (under SANDBOX_ISOLATE_NONE: 1 is the host's network) */
    sandbox_isolation_t isolation;
    sandbox_limits_t limits;
    const char *bwrap_path;       /* NULL: bwrap in /usr/bin, /usr/local/bin, /bin */
    const char *enter_path;       /* NULL: patchbay-enter next to this program (sandbox_enter_find) */
    /* network on, under bubblewrap: outbound only (netjail.h), plus these
     * "ip:port" destinations of the host's or private networks */
    const char *const *egress_allow;
    const char *slirp4netns_path; /* NULL: the default places */
    /* The host user the command runs as (0: patchbay's own). As root,
     * patchbay gives each job one (sandbox_user.h), so that RLIMIT_NPROC
     * binds and nothing the job runs owns a file of root's. */
    uid_t uid;
    gid_t gid;
    const char *const *ro_paths;  /* extra host paths bound read-only at the same place (may be NULL; not with
                                   * rootfs) */
    /* host directories (absolute) bound read-only and put in front of PATH,
     * in this order: agent CLIs installed outside /usr, found by name inside
     * a wrapper script as well as in argv[0] (may be NULL). Like ro_paths,
     * not used with rootfs: an image is the whole root. */
    const char *const *path_dirs;
    /* An unpacked OCI image (imagestore.h) to run in, read-only, instead of
     * the host's /usr; its Env ("NAME=value", NULL-terminated) applied.
     * bubblewrap only; argv[0] is then looked up in the image's PATH. */
    const char *rootfs;
    const char *const *rootfs_env;
    const char *const *ro_overlays; /* paths relative to workdir made read-only inside (may be NULL; missing
                                     * ones skipped; absolute paths and ".." refused) */

    /* Hooks, all optional. should_stop is polled a few times a second; a
     * non-zero answer kills the group and the run ends SANDBOX_CANCELLED.
     * pgid is told the group once it exists (running 1) and once it is gone
     * (running 0), so a job's watchdog can kill it too. */
    int (*should_stop)(void *arg);
    void (*pgid)(void *arg, pid_t pgid, int running);
    void *hook_arg;
    const char *log_job;          /* job id on log lines, may be NULL */
} sandbox_opts_t;

/* Defaults: no limits, no timeout, network on, bubblewrap, default output cap. */
void sandbox_opts_init(sandbox_opts_t *o);

typedef enum {
    SANDBOX_EXITED = 0, /* exit_code is valid */
    SANDBOX_SIGNALED,   /* signal is valid (killed from inside, CPU limit, ...) */
    SANDBOX_TIMEOUT,    /* the wall-clock limit ended it */
    SANDBOX_TOO_BIG,    /* the work tree grew past limits.tree_bytes */
    SANDBOX_CANCELLED,  /* should_stop said so, or the job's watchdog killed the group */
} sandbox_end_t;

typedef struct {
    sandbox_end_t end;
    int exit_code;
    int signal;
    int64_t elapsed_ms;
    uint64_t output_bytes;  /* everything the command wrote, kept or not */
    int output_truncated;
    int isolated;           /* ran under bubblewrap */
} sandbox_result_t;

enum {
    SANDBOX_OK = 0,
    SANDBOX_ERR_ARGS = -1,      /* bad options (relative paths, empty argv) */
    SANDBOX_ERR_ENV = -2,       /* an explicit variable is a secret or malformed */
    SANDBOX_ERR_NOT_FOUND = -3, /* argv[0] not found, not executable, or a relative path */
    SANDBOX_ERR_START = -4,     /* fork, exec, pipes, files */
    SANDBOX_ERR_ISOLATION = -5, /* bubblewrap is missing or cannot start: nothing ran */
};

/* Runs opts->argv to its end. 0 with *out filled whatever the command did
 * (non-zero exits, signals and timeouts are results, not errors); a negative
 * SANDBOX_ERR_* with a one-line reason in err when it could not be run. */
int sandbox_run(sandbox_result_t *out, const sandbox_opts_t *opts, char *err, size_t err_len);

/* SIGKILL to a whole process group (from a pgid hook, any thread). */
void sandbox_kill(pid_t pgid);

/* "exited 3", "killed by signal 9", "timed out", "cancelled" into buf. */
const char *sandbox_describe(const sandbox_result_t *r, char *buf, size_t len);

/* patchbay-enter: configured, else next to the running program (or one
 * directory up, for test binaries in build/tests/). 0 when found. */
int sandbox_enter_find(char *path, size_t len, const char *configured);

/* The bubblewrap binary that would be used (opts->bwrap_path or the default
 * places) into path; 0 when found, -1 when not. */
int sandbox_bwrap_find(char *path, size_t len, const char *configured);

#endif
