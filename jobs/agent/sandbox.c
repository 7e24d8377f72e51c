/*
 * sandbox — see sandbox.h.
 *
 * One run, start to end
 * ---------------------
 * The parent prepares everything that allocates (the environment, bubblewrap's
 * argv, the resolved command path) before fork, because a multi-threaded
 * parent's child may only make async-signal-safe calls until exec. The child
 * starts its own session (setsid: a new process group and no controlling
 * terminal, so nothing it runs can push keystrokes into the operator's
 * terminal with TIOCSTI), asks to die with its parent, resets signal
 * masks and ignored dispositions (both survive exec: a server that ignores
 * SIGPIPE would hand that to `yes | head`), wires stdin/stdout/stderr, marks
 * every other descriptor close-on-exec (a worker's Redis socket must not reach
 * an agent), sets rlimits and execs. An exec failure travels back over a
 * close-on-exec pipe, so "not found" is an error, not an exit code 127.
 *
 * The parent then supervises with poll(2) over: the output pipe (drained into
 * the capped sink), a pidfd (wakes when the leader exits), and, under
 * bubblewrap, a "started" pipe. On exit it first confirms the exit without
 * reaping (waitid WNOWAIT), so the leader's zombie keeps the process-group id
 * reserved while it SIGKILLs the group's stragglers, and only then reaps.
 *
 * Knowing whether bubblewrap started
 * ----------------------------------
 * bwrap exits 1 both when it cannot set up (no user namespaces, a bind that
 * fails) and when the command exits 1, and its --info-fd is written before
 * the mounts are made (checked on bwrap 0.8: a missing bind source still
 * reports a child-pid). So the command is started through a one-line /bin/sh
 * trampoline inside the sandbox that writes one byte on fd 3 and execs the
 * real command: no byte and an exit means bubblewrap never got that far, and
 * the run fails closed with bwrap's own complaint as the reason.
 *
 * Root inside a user namespace
 * ----------------------------
 * As root, the command runs as SANDBOX_UID inside a user namespace mapped to
 * the real root outside, with every capability dropped: files it creates are
 * root's on the host, and it is the owner of every root-owned file it can
 * see. That is why /etc is never bound whole (/etc/ssl/private, /etc/shadow):
 * only the few files a program needs to start, resolve names and check TLS.
 */
#include "sandbox.h"
#include "netjail.h"
#include "app/common/clock.h"
#include "app/common/config.h"
#include "app/common/fdutil.h"
#include "app/common/fileio.h"
#include "app/common/fstree.h"
#include "app/common/log.h"
#include "app/common/strbuf.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define POLL_TICK_MS 100          /* how often should_stop is asked */
#define STRAGGLER_DRAIN_MS 1000   /* after the leader exits, how long output may still arrive */
#define RING_MAX_BYTES (64 * 1024) /* the kept tail of a truncated output */
#define FD_LOW_WATER 32           /* our descriptors live above those the child rewires (FD_CHILD_MAX) */
#define READ_CHUNK_BYTES 65536

/* Where patchbay-enter (app/enter_main.c) is bound inside: the sandbox's
 * first program, which waits for the go, says it started, becomes the job's
 * user and execs the command. */
#define ENTER_INSIDE "/.patchbay-enter"

/* Descriptors a bwrap child gets, by number (sandbox_run builds bwrap's argv
 * with these numbers before the fork). */
enum {
    FD_STARTED = 3,
    FD_INFO = 4,
    FD_BLOCK = 5,
    FD_GO = 6,
    FD_RESOLV = 7,
    /* The job's own places, bound by descriptor: bwrap may run as the job's
     * user (o->uid), who cannot walk the host path down to them (a data dir
     * under /root), and a descriptor cannot be swapped for a symlink. */
    FD_WORK = 8,
    FD_SCRATCH = 9,
    FD_PASSWD = 10,
    FD_GROUP = 11,
    FD_OVERLAY = 12, /* ... FD_OVERLAY + OVERLAYS_MAX - 1 */
    OVERLAYS_MAX = 4,
    FD_CHILD_MAX = FD_OVERLAY + OVERLAYS_MAX
};
/* A source below FD_CHILD_MAX could be its own target, which dup2 leaves
 * close-on-exec (bwrap then found no /proc/self/fd/12: seen in a CI run),
 * or a lower target that an earlier dup2 had already replaced. */
_Static_assert(FD_CHILD_MAX <= FD_LOW_WATER, "the child's sources must lie above its targets");

void sandbox_opts_init(sandbox_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->output_limit_bytes = SANDBOX_DEFAULT_OUTPUT_LIMIT_BYTES;
    o->kill_grace_ms = SANDBOX_DEFAULT_KILL_GRACE_MS;
    o->network = 1;
    o->isolation = SANDBOX_ISOLATE_BWRAP;
}

void sandbox_kill(pid_t pgid)
{
    if (pgid > 1)
        kill(-pgid, SIGKILL);
}

const char *sandbox_describe(const sandbox_result_t *r, char *buf, size_t len)
{
    switch (r->end) {
    case SANDBOX_EXITED: snprintf(buf, len, "exited %d", r->exit_code); break;
    case SANDBOX_SIGNALED: snprintf(buf, len, "killed by signal %d (%s)", r->signal, strsignal(r->signal)); break;
    case SANDBOX_TIMEOUT: snprintf(buf, len, "timed out after %lld ms", (long long)r->elapsed_ms); break;
    case SANDBOX_CANCELLED: snprintf(buf, len, "cancelled"); break;
    case SANDBOX_TOO_BIG: snprintf(buf, len, "stopped: its work tree grew past the size limit"); break;
    }
    return buf;
}

/* ---------------------------------------------------------------------------
 * Small vectors of owned strings (argv and envp)
 * ------------------------------------------------------------------------- */

typedef struct {
    char **v; /* NULL-terminated once anything was pushed */
    size_t n, cap;
    int oom;
} strvec_t;

static void sv_push_owned(strvec_t *s, char *str)
{
    if (s->oom || str == NULL) {
        s->oom = 1;
        free(str);
        return;
    }
    if (s->n + 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            s->oom = 1;
            free(str);
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    s->v[s->n] = NULL;
}

static void sv_push(strvec_t *s, const char *str)
{
    sv_push_owned(s, strdup(str));
}

static void sv_pushf(strvec_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sv_pushf(strvec_t *s, const char *fmt, ...)
{
    char *p = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    sv_push_owned(s, n < 0 ? NULL : p);
}

static void sv_free(strvec_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------------- */

/* Whether `path` is `dir` or inside it (both absolute, normalized). */
static int path_within(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (strncmp(path, dir, n) != 0)
        return 0;
    return path[n] == '\0' || path[n] == '/' || (n == 1 && dir[0] == '/');
}

/* argv[0] as an absolute path on the host: an absolute path as given, or a
 * name looked up in the operator's path_dirs, then SANDBOX_PATH, as the
 * sandbox's own PATH finds it. Never a path relative to the work tree: the
 * program that runs is the operator's, not a file the repository (or a pull
 * request) put in the checkout. */
static int resolve_command(char out[PATH_MAX], const char *cmd, const sandbox_opts_t *o)
{
    if (cmd[0] == '/') {
        int n = snprintf(out, PATH_MAX, "%s", cmd);
        return n > 0 && n < PATH_MAX && fdutil_is_executable(out) ? 0 : -1;
    }
    if (strchr(cmd, '/') != NULL)
        return -1;
    for (size_t i = 0; o->path_dirs != NULL && o->path_dirs[i] != NULL; i++) {
        int n = snprintf(out, PATH_MAX, "%s/%s", o->path_dirs[i], cmd);
        if (o->path_dirs[i][0] == '/' && n > 0 && n < PATH_MAX && fdutil_is_executable(out))
            return 0;
    }
    const char *p = SANDBOX_PATH;
    while (*p) {
        size_t len = strcspn(p, ":");
        int n = snprintf(out, PATH_MAX, "%.*s/%s", (int)len, p, cmd);
        if (n > 0 && n < PATH_MAX && fdutil_is_executable(out))
            return 0;
        p += len;
        if (*p == ':')
            p++;
    }
    return -1;
}

int sandbox_enter_find(char *path, size_t len, const char *configured)
{
    if (configured != NULL) {
        snprintf(path, len, "%s", configured);
        return fdutil_is_executable(path) ? 0 : -1;
    }
    /* next to the running program: patchbay, or a test binary one level down */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    snprintf(path, len, "%s/" SANDBOX_ENTER_PROGRAM, self);
    if (fdutil_is_executable(path))
        return 0;
    snprintf(path, len, "%s/../" SANDBOX_ENTER_PROGRAM, self);
    return fdutil_is_executable(path) ? 0 : -1;
}

int sandbox_bwrap_find(char *path, size_t len, const char *configured)
{
    static const char *const places[] = {"/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap", NULL};
    if (configured != NULL) {
        if (!fdutil_is_executable(configured))
            return -1;
        snprintf(path, len, "%s", configured);
        return 0;
    }
    for (size_t i = 0; places[i] != NULL; i++) {
        if (fdutil_is_executable(places[i])) {
            snprintf(path, len, "%s", places[i]);
            return 0;
        }
    }
    return -1;
}

static int mkdir_if_missing(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* ---------------------------------------------------------------------------
 * The environment
 * ------------------------------------------------------------------------- */

static int env_name_ok(const char *entry, size_t n)
{
    if (n == 0 || (entry[0] >= '0' && entry[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = entry[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* LANG passes through when it looks like a locale name; nothing else does. */
static const char *lang_value(void)
{
    const char *v = getenv("LANG");
    if (v == NULL || v[0] == '\0' || strlen(v) > 64)
        return "C.UTF-8";
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("_.-@", *p)))
            return "C.UTF-8";
    return v;
}

static int build_env(strvec_t *env, const sandbox_opts_t *o, char *err, size_t err_len)
{
    /* an image's own Env comes first (its PATH, its toolchain's variables);
     * patchbay's allowlist and the caller's variables win over it. On the
     * host, the operator's sandbox.path goes in front of PATH. */
    strbuf_t path = STRBUF_INIT;
    const char *base_path = SANDBOX_PATH;
    for (size_t i = 0; o->rootfs != NULL && o->rootfs_env != NULL && o->rootfs_env[i] != NULL; i++) {
        const char *e = o->rootfs_env[i];
        if (strncmp(e, "PATH=", 5) == 0)
            base_path = e + 5;
        else if (strncmp(e, "HOME=", 5) != 0 && strncmp(e, "TMPDIR=", 7) != 0 && strncmp(e, "TERM=", 5) != 0)
            sv_push(env, e);
    }
    for (size_t i = 0; o->rootfs == NULL && o->path_dirs != NULL && o->path_dirs[i] != NULL; i++)
        if (o->path_dirs[i][0] == '/' && strchr(o->path_dirs[i], ':') == NULL)
            strbuf_appendf(&path, "%s:", o->path_dirs[i]);
    strbuf_append(&path, base_path);
    sv_pushf(env, "PATH=%s", path.data);
    strbuf_free(&path);
    sv_pushf(env, "HOME=%s/home", o->scratch_dir);
    sv_pushf(env, "TMPDIR=%s/tmp", o->scratch_dir);
    sv_pushf(env, "LANG=%s", lang_value());
    sv_push(env, "TERM=dumb");
    for (size_t i = 0; o->env != NULL && o->env[i] != NULL; i++) {
        const char *e = o->env[i];
        const char *eq = strchr(e, '=');
        if (eq == NULL || !env_name_ok(e, (size_t)(eq - e))) {
            strbuf_format(err, err_len, "environment entry %zu is not NAME=value", i);
            return SANDBOX_ERR_ENV;
        }
        char name[256];
        size_t n = (size_t)(eq - e);
        if (n >= sizeof(name)) {
            strbuf_format(err, err_len, "environment variable name too long");
            return SANDBOX_ERR_ENV;
        }
        memcpy(name, e, n);
        name[n] = '\0';
        if (config_env_is_secret(name)) {
            strbuf_format(err, err_len, "refusing to pass %s to a sandboxed command: it may hold one of patchbay's secrets",
                    name);
            return SANDBOX_ERR_ENV;
        }
        /* an explicit value replaces the allowlist's */
        for (size_t j = 0; j < env->n; j++) {
            if (strncmp(env->v[j], e, n + 1) == 0) {
                free(env->v[j]);
                env->v[j] = strdup(e);
                if (env->v[j] == NULL)
                    env->oom = 1;
                goto next;
            }
        }
        sv_push(env, e);
    next:;
    }
    if (env->oom) {
        strbuf_format(err, err_len, "out of memory");
        return SANDBOX_ERR_START;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * bubblewrap's command line
 * ------------------------------------------------------------------------- */

/* Always: what dynamic linking, Debian's alternatives and the time zone need. */
static const char *const etc_base[] = {"/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
                                       "/etc/localtime", NULL};
/* With the network: name resolution and TLS trust (never /etc/ssl whole: /etc/ssl/private). */
static const char *const etc_net[] = {"/etc/resolv.conf", "/etc/hosts",        "/etc/nsswitch.conf",
                                      "/etc/host.conf",   "/etc/gai.conf",     "/etc/services",
                                      "/etc/protocols",   "/etc/ssl/certs",    "/etc/ssl/openssl.cnf",
                                      "/etc/ca-certificates", "/etc/ca-certificates.conf", "/etc/pki/tls/certs",
                                      NULL};
/* Top-level directories a merged-/usr system has as symlinks into /usr. */
static const char *const usr_links[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", NULL};

static void bwrap_mirror_top_dirs(strvec_t *a)
{
    for (size_t i = 0; usr_links[i] != NULL; i++) {
        struct stat st;
        if (lstat(usr_links[i], &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(usr_links[i], target, sizeof(target) - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            sv_push(a, "--symlink");
            sv_push(a, target);
            sv_push(a, usr_links[i]);
        } else if (S_ISDIR(st.st_mode)) {
            sv_push(a, "--ro-bind");
            sv_push(a, usr_links[i]);
            sv_push(a, usr_links[i]);
        }
    }
}

static void bwrap_ro_try(strvec_t *a, const char *path)
{
    sv_push(a, "--ro-bind-try");
    sv_push(a, path);
    sv_push(a, path);
}

/* --perms 0755 --dir for every directory above path (absolute), but /: a
 * directory that exists already inside keeps its mode (/tmp, /usr). */
static void bwrap_passable_parents(strvec_t *a, const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = strchr(buf + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        sv_push(a, "--perms");
        sv_push(a, "0755");
        sv_push(a, "--dir");
        sv_push(a, buf);
        *s = '/';
    }
}

/* An unpacked image (imagestore.h) as the sandbox's root: each of its
 * top-level entries bound read-only (a directory, a file) or copied (a
 * symlink), on bubblewrap's own tmpfs root, so that the mount points for the
 * work tree and scratch can still be made; /proc, /dev and /tmp are the
 * sandbox's own. */
static void bwrap_image_root(strvec_t *a, const char *rootfs)
{
    DIR *d = opendir(rootfs);
    if (d == NULL)
        return; /* bwrap then finds no /bin: the run fails and says so */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "proc") == 0 || strcmp(n, "dev") == 0 ||
            strcmp(n, "tmp") == 0)
            continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", rootfs, n);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t len = readlink(path, target, sizeof(target) - 1);
            if (len <= 0)
                continue;
            target[len] = '\0';
            sv_push(a, "--symlink");
            sv_push(a, target);
            sv_pushf(a, "/%s", n);
        } else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
            sv_push(a, "--ro-bind");
            sv_push(a, path);
            sv_pushf(a, "/%s", n);
        }
    }
    closedir(d);
}

/* Whether the host path is visible inside without an extra bind. */
static int visible_inside(const char *path, const sandbox_opts_t *o)
{
    if (path_within(path, "/usr") || path_within(path, o->workdir) || path_within(path, o->scratch_dir))
        return 1;
    for (size_t i = 0; o->ro_paths != NULL && o->ro_paths[i] != NULL; i++)
        if (path_within(path, o->ro_paths[i]))
            return 1;
    for (size_t i = 0; o->path_dirs != NULL && o->path_dirs[i] != NULL; i++)
        if (path_within(path, o->path_dirs[i]))
            return 1;
    return 0;
}

/* As root with a job user: bubblewrap runs as root (it must walk the host's
 * paths to bind them: a data dir under /root is no user's to pass) and
 * without a user namespace, and patchbay-enter makes the command the job's
 * user as its last step. The command's real uid is then that user's,
 * which is what RLIMIT_NPROC counts. */
static int sandbox_drops_to_user(const sandbox_opts_t *o)
{
    return geteuid() == 0 && o->uid != 0;
}

static void build_bwrap_argv(strvec_t *a, const char *bwrap, const char *enter, const sandbox_opts_t *o,
                             const char *command, const int fds[FD_CHILD_MAX])
{
    int drop = sandbox_drops_to_user(o);
    sv_push(a, bwrap);
    sv_push(a, "--die-with-parent");
    sv_push(a, "--new-session");
    /* the network namespace is always the sandbox's own: with the network on,
     * netjail gives it outbound NAT and nothing else (never --share-net) */
    if (drop) {
        /* no user namespace: the command becomes the job's host user itself */
        static const char *const ns[] = {"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
                                         "--unshare-net", NULL};
        for (size_t i = 0; ns[i] != NULL; i++)
            sv_push(a, ns[i]);
    } else {
        sv_push(a, "--unshare-all");
    }
    if (o->network) {
        sv_push(a, "--info-fd");
        sv_pushf(a, "%d", FD_INFO);
        sv_push(a, "--block-fd");
        sv_pushf(a, "%d", FD_BLOCK);
    }
    if (geteuid() == 0 && !drop) { /* root inside a user namespace: an unprivileged uid, no capability */
        sv_push(a, "--unshare-user");
        sv_push(a, "--uid");
        sv_pushf(a, "%d", SANDBOX_UID);
        sv_push(a, "--gid");
        sv_pushf(a, "%d", SANDBOX_GID);
        sv_push(a, "--cap-drop");
        sv_push(a, "ALL");
    }
    if (o->rootfs != NULL) {
        bwrap_image_root(a, o->rootfs);
    } else {
        sv_push(a, "--ro-bind");
        sv_push(a, "/usr");
        sv_push(a, "/usr");
        bwrap_mirror_top_dirs(a);
    }
    sv_push(a, "--proc");
    sv_push(a, "/proc");
    sv_push(a, "--dev");
    sv_push(a, "/dev");
    /* sticky and writable by all: the command may be an ordinary user */
    sv_push(a, "--perms");
    sv_push(a, "01777");
    sv_push(a, "--tmpfs");
    sv_push(a, "/tmp");
    /* an image has its own /etc. On the host, /etc and the directories in
     * it are made by bwrap for the binds below, and bwrap running as root
     * (as it does with a job user) makes them 0700: the job's user could then
     * read neither /etc/passwd nor the TLS certificates (Claude Code's first
     * line was an EACCES on /etc/claude-code/). Passable first, so they stay
     * that way. */
    if (o->rootfs == NULL) {
        sv_push(a, "--perms");
        sv_push(a, "0755");
        sv_push(a, "--dir");
        sv_push(a, "/etc");
    }
    for (size_t i = 0; o->rootfs == NULL && etc_base[i] != NULL; i++)
        bwrap_ro_try(a, etc_base[i]);
    if (o->network) {
        /* slirp's resolver: the host's is usually loopback or private, which the jail blocks */
        sv_push(a, "--perms"); /* a data file is 0600 otherwise: root's, as root */
        sv_push(a, "0644");
        sv_push(a, "--ro-bind-data");
        sv_pushf(a, "%d", FD_RESOLV);
        sv_push(a, "/etc/resolv.conf");
        for (size_t i = 1; o->rootfs == NULL && etc_net[i] != NULL; i++) { /* [0] is resolv.conf */
            bwrap_passable_parents(a, etc_net[i]);
            bwrap_ro_try(a, etc_net[i]);
        }
    }
    /* a passwd naming the sandbox's user, so tools that look themselves up work */
    sv_push(a, "--perms");
    sv_push(a, "0644");
    sv_push(a, "--ro-bind-data");
    sv_pushf(a, "%d", FD_PASSWD);
    sv_push(a, "/etc/passwd");
    sv_push(a, "--perms");
    sv_push(a, "0644");
    sv_push(a, "--ro-bind-data");
    sv_pushf(a, "%d", FD_GROUP);
    sv_push(a, "/etc/group");
    /* the operator's host paths (sandbox.read_only, sandbox.path): not in an
     * image, which is the whole root, with its own programs */
    for (size_t i = 0; o->rootfs == NULL && o->ro_paths != NULL && o->ro_paths[i] != NULL; i++) {
        bwrap_passable_parents(a, o->ro_paths[i]);
        bwrap_ro_try(a, o->ro_paths[i]);
    }
    for (size_t i = 0; o->rootfs == NULL && o->path_dirs != NULL && o->path_dirs[i] != NULL; i++) {
        bwrap_passable_parents(a, o->path_dirs[i]);
        bwrap_ro_try(a, o->path_dirs[i]);
    }
    /* a command installed outside /usr (~/.local/bin/claude): its own directory,
     * read-only; in an image, commands are the image's own */
    if (o->rootfs == NULL && !visible_inside(command, o)) {
        char *dir = strdup(command);
        if (dir != NULL) {
            char *slash = strrchr(dir, '/');
            if (slash != NULL && slash != dir)
                *slash = '\0';
            bwrap_passable_parents(a, dir);
            bwrap_ro_try(a, dir);
        }
        free(dir);
    }
    /* the directories leading to them, passable: bwrap would make them like
     * the host's (a data dir in /root: 0700 root's), and the command may be
     * an ordinary user */
    bwrap_passable_parents(a, o->scratch_dir);
    bwrap_passable_parents(a, o->workdir);
    sv_push(a, "--bind-fd");
    sv_pushf(a, "%d", FD_SCRATCH);
    sv_push(a, o->scratch_dir);
    sv_push(a, "--bind-fd");
    sv_pushf(a, "%d", FD_WORK);
    sv_push(a, o->workdir);
    /* after the work tree's bind, so these win: what the job shares with
     * others (the objects hard-linked from the mirror) stays unchangeable */
    for (int i = 0; i < OVERLAYS_MAX && o->ro_overlays != NULL && o->ro_overlays[i] != NULL; i++) {
        if (fds[FD_OVERLAY + i] < 0)
            continue; /* not in this work tree */
        sv_push(a, "--ro-bind-fd");
        sv_pushf(a, "%d", FD_OVERLAY + i);
        sv_pushf(a, "%s/%s", o->workdir, o->ro_overlays[i]);
    }
    sv_push(a, "--ro-bind");
    sv_push(a, enter);
    sv_push(a, ENTER_INSIDE);
    sv_push(a, "--chdir");
    sv_push(a, o->workdir);
    sv_push(a, "--");
    sv_push(a, ENTER_INSIDE);
    sv_push(a, "--started");
    sv_pushf(a, "%d", FD_STARTED);
    if (o->network) {
        sv_push(a, "--gate");
        sv_pushf(a, "%d", FD_GO);
    }
    if (drop) {
        /* the last step as root: the job's user, with no capability left
         * and no new privileges (a setuid program stays the user's) */
        sv_push(a, "--uid");
        sv_pushf(a, "%u", (unsigned)o->uid);
        sv_push(a, "--gid");
        sv_pushf(a, "%u", (unsigned)o->gid);
    }
    sv_push(a, "--");
    sv_push(a, command);
    for (size_t i = 1; o->argv[i] != NULL; i++)
        sv_push(a, o->argv[i]);
}

/* ---------------------------------------------------------------------------
 * The work tree's size, watched
 * ------------------------------------------------------------------------- */

#define TREE_CHECK_MIN_MS 500   /* a writer at 300 MB/s overshoots by ~150 MB between checks */
#define TREE_CHECK_MAX_MS 5000  /* for huge trees: a walk costs ~3 ms per 1,000 files here */

/* The work tree (less what it shares read-only) and the scratch directory. */
static uint64_t tree_size(const sandbox_opts_t *o)
{
    return fstree_disk_usage(o->workdir, o->ro_overlays) + fstree_disk_usage(o->scratch_dir, NULL);
}

/* ---------------------------------------------------------------------------
 * The output sink: the head straight to the file, the tail in a ring
 * ------------------------------------------------------------------------- */

typedef struct {
    int fd;
    size_t head_limit;
    size_t head_written;
    uint64_t total;
    char *ring;
    size_t ring_cap, ring_start, ring_len;
    int io_error;
} sink_t;

static int sink_init(sink_t *s, int fd, size_t limit)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->ring_cap = limit / 2 < RING_MAX_BYTES ? limit / 2 : RING_MAX_BYTES;
    if (s->ring_cap == 0)
        s->ring_cap = 1;
    s->head_limit = limit > s->ring_cap ? limit - s->ring_cap : 0;
    s->ring = malloc(s->ring_cap);
    return s->ring ? 0 : -1;
}

static void sink_free(sink_t *s)
{
    free(s->ring);
    s->ring = NULL;
}

static void write_all(sink_t *s, const char *p, size_t n)
{
    while (n > 0 && !s->io_error) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->io_error = 1;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void sink_put(sink_t *s, const char *p, size_t n)
{
    s->total += n;
    if (s->head_written < s->head_limit) {
        size_t take = s->head_limit - s->head_written;
        if (take > n)
            take = n;
        write_all(s, p, take);
        s->head_written += take;
        p += take;
        n -= take;
    }
    if (n >= s->ring_cap) {
        memcpy(s->ring, p + n - s->ring_cap, s->ring_cap);
        s->ring_start = 0;
        s->ring_len = s->ring_cap;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = (s->ring_start + s->ring_len) % s->ring_cap;
        s->ring[at] = p[i];
        if (s->ring_len < s->ring_cap)
            s->ring_len++;
        else
            s->ring_start = (s->ring_start + 1) % s->ring_cap;
    }
}

/* Writes the tail (after a marker when bytes were dropped); returns whether it truncated. */
static int sink_finish(sink_t *s)
{
    uint64_t omitted = s->total - s->head_written - s->ring_len;
    if (omitted > 0) {
        char marker[160];
        int n = snprintf(marker, sizeof(marker), "\n[patchbay: output truncated: %llu of %llu bytes omitted]\n",
                         (unsigned long long)omitted, (unsigned long long)s->total);
        write_all(s, marker, (size_t)n);
    }
    size_t first = s->ring_cap - s->ring_start < s->ring_len ? s->ring_cap - s->ring_start : s->ring_len;
    write_all(s, s->ring + s->ring_start, first);
    write_all(s, s->ring, s->ring_len - first);
    return omitted > 0;
}

/* ---------------------------------------------------------------------------
 * The child
 * ------------------------------------------------------------------------- */

typedef struct {
    const char *exec_path;
    char *const *argv;
    char *const *envp;
    const char *workdir;
    int stdin_fd, out_fd, err_fd; /* all >= FD_LOW_WATER, close-on-exec */
    int extra[FD_CHILD_MAX];      /* extra[n] >= 0 becomes descriptor n (n >= 3) */
    pid_t parent;
    sandbox_limits_t limits;
} child_plan_t;

typedef struct {
    int stage; /* 1 chdir, 2 rlimit, 3 exec, 4 fds */
    int err;
} child_report_t;

static void child_fail(int fd, int stage) __attribute__((noreturn));
static void child_fail(int fd, int stage)
{
    child_report_t r = {stage, errno};
    ssize_t w = write(fd, &r, sizeof(r));
    (void)w;
    _exit(127);
}

static int child_limit(int resource, uint64_t value, uint64_t hard_extra)
{
    struct rlimit cur, want;
    if (value == 0)
        return 0;
    if (getrlimit(resource, &cur) != 0)
        return -1;
    want.rlim_cur = (rlim_t)value;
    want.rlim_max = (rlim_t)(value + hard_extra);
    if (cur.rlim_max != RLIM_INFINITY && want.rlim_max > cur.rlim_max)
        want.rlim_max = cur.rlim_max;
    if (want.rlim_cur > want.rlim_max)
        want.rlim_cur = want.rlim_max;
    return setrlimit(resource, &want);
}

static void child_run(const child_plan_t *p) __attribute__((noreturn));
static void child_run(const child_plan_t *p)
{
    struct sigaction dfl;
    sigset_t none;

    setsid(); /* a new session: a new process group, and no controlling terminal */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL); /* SIGKILL/SIGSTOP and the RT ones glibc keeps just fail */

    if (dup2(p->stdin_fd, 0) < 0 || dup2(p->out_fd, 1) < 0 || dup2(p->out_fd, 2) < 0)
        child_fail(p->err_fd, 4);
    int first_closed = 3;
    for (int n = 3; n < FD_CHILD_MAX; n++) {
        if (p->extra[n] < 0)
            continue;
        /* dup2 onto itself would keep close-on-exec; FD_LOW_WATER rules it out */
        if (p->extra[n] == n || dup2(p->extra[n], n) < 0)
            child_fail(p->err_fd, 4);
        first_closed = n + 1;
    }
    /* everything else (sockets, files the worker has open) closes at exec */
    if (syscall(SYS_close_range, (unsigned)first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        struct rlimit nofile;
        long max = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536 ? (long)nofile.rlim_cur : 65536;
        for (long fd = first_closed; fd < max; fd++)
            if (fd != p->err_fd)
                fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    }

    if (chdir(p->workdir) != 0)
        child_fail(p->err_fd, 1);
    umask(022);
    /* the CPU limit's hard value a little above the soft one: SIGXCPU first, then SIGKILL */
    if (child_limit(RLIMIT_CPU, p->limits.cpu_seconds, 5) != 0 || child_limit(RLIMIT_DATA, p->limits.memory_bytes, 0) != 0 ||
        child_limit(RLIMIT_AS, p->limits.address_space_bytes, 0) != 0 ||
        child_limit(RLIMIT_FSIZE, p->limits.file_size_bytes, 0) != 0 ||
        child_limit(RLIMIT_NPROC, p->limits.processes, 0) != 0 || child_limit(RLIMIT_NOFILE, p->limits.open_files, 0) != 0)
        child_fail(p->err_fd, 2);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != p->parent)
        _exit(127); /* the parent died before the line above */
    execve(p->exec_path, p->argv, p->envp);
    child_fail(p->err_fd, 3);
}

/* ---------------------------------------------------------------------------
 * The parent
 * ------------------------------------------------------------------------- */

typedef struct {
    int bwrap_failed; /* under bubblewrap, it exited before the command started */
} supervise_t;

/* One attempt: fork, exec, supervise until the group is gone. */
/* bwrap's --info-fd JSON, read to its end: {"child-pid": N, ...}. The pid,
 * or -1 when bwrap said nothing (it failed before making the sandbox). */
static pid_t read_child_pid(int fd, int64_t timeout_ms)
{
    char buf[1024];
    size_t len = 0;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (len += (size_t)r) == sizeof(buf) - 1)
            break;
    }
    buf[len] = '\0';
    const char *k = strstr(buf, "\"child-pid\"");
    if (k == NULL || (k = strchr(k, ':')) == NULL)
        return -1;
    long pid = strtol(k + 1, NULL, 10);
    return pid > 1 ? (pid_t)pid : -1;
}

/* What a bubblewrap that exited before its command said last (one line, on
 * the output pipe), waiting a little for it: "" when nothing. */
static void read_last_words(int fd, char *said, size_t len)
{
    said[0] = '\0';
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (fd < 0 || poll(&pf, 1, 500) <= 0)
        return;
    ssize_t k = read(fd, said, len - 1);
    said[k > 0 ? k : 0] = '\0';
    said[strcspn(said, "\n")] = '\0';
}

/* How long bwrap may take to make the namespaces and report them. */
#define BWRAP_INFO_TIMEOUT_MS 10000

/* One attempt: fork, exec, supervise until the group is gone. Under
 * bubblewrap (bind_fds: what it binds by descriptor) the trampoline's byte says the command started;
 * with the network on, the sandbox's namespace is jailed (netjail) before
 * the command may start, and the jail stops with the run. */
static int run_once(sandbox_result_t *out, supervise_t *sv, const sandbox_opts_t *o, const char *exec_path,
                    char *const *argv, char *const *envp, const int *bind_fds, sink_t *sink, char *err, size_t err_len)
{
    int use_bwrap = bind_fds != NULL;
    int rc = SANDBOX_ERR_START;
    int stdin_fd = -1, out_r = -1, out_w = -1, st_r = -1, st_w = -1, err_r = -1, err_w = -1, pidfd = -1;
    int info_r = -1, info_w = -1, block_r = -1, block_w = -1, go_r = -1, go_w = -1, resolv = -1;
    int jailed = use_bwrap && o->network;
    netjail_t *jail = NULL;
    int p[2];
    pid_t pid = -1;
    int64_t start = clock_mono_ms();

    memset(sv, 0, sizeof(*sv));
    stdin_fd = fdutil_raise(open(o->stdin_path ? o->stdin_path : "/dev/null", O_RDONLY | O_CLOEXEC), FD_LOW_WATER);
    if (stdin_fd < 0) {
        strbuf_format(err, err_len, "cannot open the command's input %s: %s", o->stdin_path ? o->stdin_path : "/dev/null",
                strerror(errno));
        goto done;
    }
    if (pipe2(p, O_CLOEXEC) != 0)
        goto pipe_fail;
    out_r = fdutil_raise(p[0], FD_LOW_WATER);
    out_w = fdutil_raise(p[1], FD_LOW_WATER);
    if (pipe2(p, O_CLOEXEC) != 0)
        goto pipe_fail;
    err_r = fdutil_raise(p[0], FD_LOW_WATER);
    err_w = fdutil_raise(p[1], FD_LOW_WATER);
    if (out_r < 0 || out_w < 0 || err_r < 0 || err_w < 0)
        goto pipe_fail;
    if (use_bwrap) {
        if (pipe2(p, O_CLOEXEC) != 0)
            goto pipe_fail;
        st_r = fdutil_raise(p[0], FD_LOW_WATER);
        st_w = fdutil_raise(p[1], FD_LOW_WATER);
        if (st_r < 0 || st_w < 0)
            goto pipe_fail;
    }
    if (jailed) {
        if (pipe2(p, O_CLOEXEC) != 0)
            goto pipe_fail;
        info_r = fdutil_raise(p[0], FD_LOW_WATER);
        info_w = fdutil_raise(p[1], FD_LOW_WATER);
        if (pipe2(p, O_CLOEXEC) != 0)
            goto pipe_fail;
        block_r = fdutil_raise(p[0], FD_LOW_WATER);
        block_w = fdutil_raise(p[1], FD_LOW_WATER);
        if (pipe2(p, O_CLOEXEC) != 0)
            goto pipe_fail;
        go_r = fdutil_raise(p[0], FD_LOW_WATER);
        go_w = fdutil_raise(p[1], FD_LOW_WATER);
        const char *rc_text = netjail_resolv_conf();
        resolv = fdutil_raise(memfd_create("resolv.conf", MFD_CLOEXEC), FD_LOW_WATER);
        if (info_r < 0 || info_w < 0 || block_r < 0 || block_w < 0 || go_r < 0 || go_w < 0 || resolv < 0 ||
            write(resolv, rc_text, strlen(rc_text)) != (ssize_t)strlen(rc_text) || lseek(resolv, 0, SEEK_SET) != 0)
            goto pipe_fail;
    }

    child_plan_t plan = {exec_path, argv, envp, o->workdir, stdin_fd, out_w, err_w,
                         {0}, getpid(), o->limits};
    for (int i = 0; i < FD_CHILD_MAX; i++)
        plan.extra[i] = -1;
    plan.extra[FD_STARTED] = st_w;
    plan.extra[FD_INFO] = info_w;
    plan.extra[FD_BLOCK] = block_r;
    plan.extra[FD_GO] = go_r;
    plan.extra[FD_RESOLV] = resolv;
    for (int i = FD_WORK; bind_fds != NULL && i < FD_CHILD_MAX; i++)
        plan.extra[i] = bind_fds[i];
    pid = fork();
    if (pid < 0) {
        strbuf_format(err, err_len, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0)
        child_run(&plan);

    fdutil_close(&out_w);
    fdutil_close(&err_w);
    fdutil_close(&st_w);
    fdutil_close(&stdin_fd);
    fdutil_close(&info_w);
    fdutil_close(&block_r);
    fdutil_close(&go_r);
    fdutil_close(&resolv);

    child_report_t report;
    ssize_t got;
    do
        got = read(err_r, &report, sizeof(report));
    while (got < 0 && errno == EINTR);
    fdutil_close(&err_r);
    if (got == (ssize_t)sizeof(report)) {
        static const char *const stages[] = {"",
                                             "cannot enter the working directory",
                                             "cannot set resource limits",
                                             "cannot execute",
                                             "cannot set up its input and output"};
        strbuf_format(err, err_len, "%s %s: %s", stages[report.stage >= 1 && report.stage <= 4 ? report.stage : 0],
                report.stage == 1 ? o->workdir : exec_path, strerror(report.err));
        rc = report.stage == 3 ? SANDBOX_ERR_NOT_FOUND : SANDBOX_ERR_START;
        waitpid(pid, NULL, 0);
        pid = -1;
        goto done;
    }
    if (o->pgid != NULL)
        o->pgid(o->hook_arg, pid, 1);

    int stopped_early = 0; /* the job was stopped while the jail was being made */
    if (jailed) {
        /* the namespace exists and the command waits at the gate: jail it,
         * then let it go; any failure kills the sandbox with nothing run.
         * A bwrap that said nothing failed to start, or was killed because
         * the job stopped: the loop below collects it and tells which. */
        pid_t inner = read_child_pid(info_r, BWRAP_INFO_TIMEOUT_MS);
        fdutil_close(&info_r);
        if (inner >= 0) {
            netjail_opts_t no = {.allow = o->egress_allow, .slirp4netns_path = o->slirp4netns_path};
            int released = 0;
            if (netjail_start(&jail, inner, &no, err, err_len) == 0) {
                ssize_t w1 = write(go_w, "go\n", 3), w2 = write(block_w, "g", 1);
                released = w1 == 3 && w2 == 1;
                if (!released) {
                    /* bubblewrap is gone before the command started: unless the
                     * job was stopped under it, its last words are on the
                     * output pipe, and they are the reason */
                    int why = errno;
                    char said[240] = "";
                    if (!(o->should_stop != NULL && o->should_stop(o->hook_arg)))
                        read_last_words(out_r, said, sizeof(said));
                    strbuf_format(err, err_len, "cannot release the sandbox: %s%s%s%s", strerror(why),
                                  said[0] ? " (" : "", said, said[0] ? ")" : "");
                }
            }
            if (!released) {
                kill(-pid, SIGKILL);
                if (!(o->should_stop != NULL && o->should_stop(o->hook_arg))) {
                    rc = SANDBOX_ERR_ISOLATION;
                    if (o->pgid != NULL)
                        o->pgid(o->hook_arg, pid, 0);
                    goto done; /* done: reaps bwrap */
                }
                stopped_early = 1; /* not the jail's fault: the job was stopped under it */
            }
        }
        fdutil_close(&go_w);
        fdutil_close(&block_w);
    }

    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int exited = 0, status = 0, timed_out = 0, cancelled = stopped_early, started = 0, too_big = 0;
    int64_t next_tree_check = o->limits.tree_bytes ? clock_mono_ms() + TREE_CHECK_MIN_MS : 0;
    int64_t deadline = o->timeout_ms > 0 ? start + o->timeout_ms : 0;
    int64_t grace = o->kill_grace_ms >= 0 ? o->kill_grace_ms : SANDBOX_DEFAULT_KILL_GRACE_MS;
    int64_t kill_at = 0, exit_at = 0;
    char buf[READ_CHUNK_BYTES];

    for (;;) {
        int64_t now = clock_mono_ms();
        if (!exited) {
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
                /* the zombie keeps the group id ours while its stragglers die */
                kill(-pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                    ;
                exited = 1;
                exit_at = now;
                fdutil_close(&pidfd);
                if (o->pgid != NULL)
                    o->pgid(o->hook_arg, pid, 0);
            }
        }
        if (exited && out_r < 0)
            break;
        if (exited && now - exit_at >= STRAGGLER_DRAIN_MS)
            break; /* something outside the group still holds the pipe */
        if (!exited && !cancelled && o->should_stop != NULL && o->should_stop(o->hook_arg)) {
            cancelled = 1;
            kill(-pid, SIGKILL);
        }
        if (!exited && deadline && now >= deadline && !timed_out) {
            timed_out = 1;
            kill(-pid, SIGTERM);
            kill_at = now + grace;
        }
        if (!exited && timed_out && now >= kill_at)
            kill(-pid, SIGKILL);
        if (!exited && !too_big && next_tree_check && now >= next_tree_check) {
            uint64_t used = tree_size(o);
            int64_t took = clock_mono_ms() - now;
            int64_t every = took * 10 < TREE_CHECK_MIN_MS ? TREE_CHECK_MIN_MS
                            : took * 10 > TREE_CHECK_MAX_MS ? TREE_CHECK_MAX_MS
                                                            : took * 10;
            next_tree_check = clock_mono_ms() + every;
            if (used > o->limits.tree_bytes) {
                too_big = 1;
                kill(-pid, SIGKILL);
            }
        }

        int64_t wait = POLL_TICK_MS;
        if (!exited && deadline && !timed_out && deadline - now < wait)
            wait = deadline - now;
        if (!exited && timed_out && kill_at - now < wait)
            wait = kill_at - now;
        if (wait < 0)
            wait = 0;
        struct pollfd pfd[3];
        nfds_t n = 0;
        if (out_r >= 0)
            pfd[n++] = (struct pollfd){out_r, POLLIN, 0};
        if (st_r >= 0)
            pfd[n++] = (struct pollfd){st_r, POLLIN, 0};
        if (pidfd >= 0)
            pfd[n++] = (struct pollfd){pidfd, POLLIN, 0};
        int pr = poll(pfd, n, (int)wait);
        if (pr < 0 && errno != EINTR) {
            strbuf_format(err, err_len, "poll: %s", strerror(errno));
            kill(-pid, SIGKILL);
        }
        for (nfds_t i = 0; pr > 0 && i < n; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (pfd[i].fd == out_r) {
                ssize_t r = read(out_r, buf, sizeof(buf));
                if (r > 0)
                    sink_put(sink, buf, (size_t)r);
                else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                    fdutil_close(&out_r);
            } else if (pfd[i].fd == st_r) {
                char c;
                ssize_t r = read(st_r, &c, 1);
                if (r == 1)
                    started = 1;
                if (r == 0 || r == 1 || (errno != EINTR && errno != EAGAIN))
                    fdutil_close(&st_r);
            }
        }
    }

    memset(out, 0, sizeof(*out));
    out->elapsed_ms = clock_mono_ms() - start;
    if (o->should_stop != NULL && !cancelled && !timed_out && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
        o->should_stop(o->hook_arg))
        cancelled = 1; /* the job's watchdog got there first */
    if (cancelled) {
        out->end = SANDBOX_CANCELLED;
    } else if (too_big) {
        out->end = SANDBOX_TOO_BIG;
    } else if (timed_out) {
        out->end = SANDBOX_TIMEOUT;
    } else if (WIFEXITED(status)) {
        out->end = SANDBOX_EXITED;
        out->exit_code = WEXITSTATUS(status);
    } else {
        out->end = SANDBOX_SIGNALED;
        out->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    if (use_bwrap && !started && !cancelled && !timed_out && !too_big)
        sv->bwrap_failed = 1;
    pid = -1;
    rc = 0;
    goto done;

pipe_fail:
    strbuf_format(err, err_len, "pipe: %s", strerror(errno));
done:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    fdutil_close(&stdin_fd);
    fdutil_close(&out_r);
    fdutil_close(&out_w);
    fdutil_close(&st_r);
    fdutil_close(&st_w);
    fdutil_close(&err_r);
    fdutil_close(&err_w);
    fdutil_close(&pidfd);
    fdutil_close(&info_r);
    fdutil_close(&info_w);
    fdutil_close(&block_r);
    fdutil_close(&block_w);
    fdutil_close(&go_r);
    fdutil_close(&go_w);
    fdutil_close(&resolv);
    netjail_stop(jail);
    return rc;
}

/* The scratch directory's home and tmp, the job user's when it has one. */
static int prepare_scratch(const sandbox_opts_t *o, char *err, size_t err_len)
{
    char path[PATH_MAX];
    static const char *const dirs[] = {"home", "tmp", NULL};
    for (size_t i = 0; dirs[i] != NULL; i++) {
        snprintf(path, sizeof(path), "%s/%s", o->scratch_dir, dirs[i]);
        if (mkdir_if_missing(path, 0700) != 0) {
            strbuf_format(err, err_len, "cannot create %s: %s", path, strerror(errno));
            return SANDBOX_ERR_START;
        }
    }
    /* the job's own user writes its summary, HOME and TMPDIR here */
    if (o->uid != 0) {
        static const char *const mine[] = {"", "/home", "/tmp", NULL};
        for (size_t i = 0; mine[i] != NULL; i++) {
            snprintf(path, sizeof(path), "%s%s", o->scratch_dir, mine[i]);
            if (chown(path, o->uid, o->gid) != 0) {
                strbuf_format(err, err_len, "cannot give %s to the sandbox's user %d: %s", path, (int)o->uid, strerror(errno));
                return SANDBOX_ERR_START;
            }
        }
    }
    return 0;
}

/* A sealed-enough copy of text for --ro-bind-data: bwrap copies it in. */
static int memfd_with(const char *name, const char *text)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    size_t n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fdutil_raise(fd, FD_LOW_WATER);
}

/* What bwrap binds by descriptor (FD_WORK...): -1 where nothing. */
static int open_bind_fds(int fds[FD_CHILD_MAX], const sandbox_opts_t *o, char *err, size_t err_len)
{
    char text[PATH_MAX + 128];
    fds[FD_WORK] = fdutil_raise(open(o->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC), FD_LOW_WATER);
    fds[FD_SCRATCH] = fdutil_raise(open(o->scratch_dir, O_PATH | O_DIRECTORY | O_CLOEXEC), FD_LOW_WATER);
    int drop = sandbox_drops_to_user(o);
    unsigned uid = drop ? (unsigned)o->uid : (unsigned)SANDBOX_UID, gid = drop ? (unsigned)o->gid : (unsigned)SANDBOX_GID;
    snprintf(text, sizeof(text), "patchbay:x:%u:%u:patchbay agent:%s/home:/bin/sh\n", uid, gid, o->scratch_dir);
    fds[FD_PASSWD] = memfd_with("passwd", text);
    snprintf(text, sizeof(text), "patchbay:x:%u:\n", gid);
    fds[FD_GROUP] = memfd_with("group", text);
    if (fds[FD_WORK] < 0 || fds[FD_SCRATCH] < 0 || fds[FD_PASSWD] < 0 || fds[FD_GROUP] < 0) {
        strbuf_format(err, err_len, "cannot open the work tree or scratch directory for the sandbox: %s", strerror(errno));
        return SANDBOX_ERR_START;
    }
    for (int i = 0; i < OVERLAYS_MAX && o->ro_overlays != NULL && o->ro_overlays[i] != NULL; i++)
        fds[FD_OVERLAY + i] =
            fdutil_raise(openat(fds[FD_WORK], o->ro_overlays[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), FD_LOW_WATER);
    return 0;
}

/* The first line of what bubblewrap said, for the warn line. */
static void first_line_of(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    if (n <= 0) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

int sandbox_run(sandbox_result_t *out, const sandbox_opts_t *o, char *err, size_t err_len)
{
    int rc = SANDBOX_ERR_ARGS;
    strvec_t env = {0}, bargv = {0};
    sink_t sink = {0};
    int out_fd = -1;
    char command[PATH_MAX], bwrap[PATH_MAX], enter[PATH_MAX];
    int bind_fds[FD_CHILD_MAX];
    for (int i = 0; i < FD_CHILD_MAX; i++)
        bind_fds[i] = -1;

    assert(out != NULL && o != NULL);
    memset(out, 0, sizeof(*out));
    if (o->argv == NULL || o->argv[0] == NULL || o->argv[0][0] == '\0') {
        strbuf_format(err, err_len, "no command to run");
        goto done;
    }
    if (o->workdir == NULL || o->workdir[0] != '/' || o->scratch_dir == NULL || o->scratch_dir[0] != '/' ||
        o->output_path == NULL) {
        strbuf_format(err, err_len, "the working directory and the scratch directory must be absolute paths, and the output "
                              "must go to a file");
        goto done;
    }
    for (size_t i = 0; o->ro_overlays != NULL && o->ro_overlays[i] != NULL; i++) {
        const char *rel = o->ro_overlays[i];
        size_t n = strlen(rel);
        if (rel[0] == '/' || strcmp(rel, "..") == 0 || strncmp(rel, "../", 3) == 0 || strstr(rel, "/../") != NULL ||
            (n >= 3 && strcmp(rel + n - 3, "/..") == 0)) {
            strbuf_format(err, err_len, "read-only overlay %s is not a path inside the work tree", rel);
            goto done;
        }
    }
    if ((rc = prepare_scratch(o, err, err_len)) != 0)
        goto done;
    if ((rc = build_env(&env, o, err, err_len)) != 0)
        goto done;
    if (o->rootfs != NULL) {
        /* the image's program, found in the image's PATH by patchbay-enter */
        if (strchr(o->argv[0], '/') != NULL && o->argv[0][0] != '/') {
            strbuf_format(err, err_len, "command %s: a relative path is refused", o->argv[0]);
            rc = SANDBOX_ERR_NOT_FOUND;
            goto done;
        }
        snprintf(command, sizeof(command), "%s", o->argv[0]);
    } else if (resolve_command(command, o->argv[0], o) != 0) {
        if (o->argv[0][0] != '/' && strchr(o->argv[0], '/') != NULL)
            strbuf_format(err, err_len, "command %s: a relative path is refused (name a program on the sandbox's PATH, %s, "
                                  "or give an absolute path in the operator's config)", o->argv[0], SANDBOX_PATH);
        else
            strbuf_format(err, err_len, "command not found or not executable: %s", o->argv[0]);
        rc = SANDBOX_ERR_NOT_FOUND;
        goto done;
    }

    if (o->isolation == SANDBOX_ISOLATE_BWRAP) {
        if (sandbox_bwrap_find(bwrap, sizeof(bwrap), o->bwrap_path) != 0) {
            strbuf_format(err, err_len, "bubblewrap is not installed (%s; Debian package bubblewrap): refusing to run "
                                  "without the sandbox", o->bwrap_path ? o->bwrap_path : "bwrap");
            rc = SANDBOX_ERR_ISOLATION;
            goto done;
        }
        if (sandbox_enter_find(enter, sizeof(enter), o->enter_path) != 0) {
            strbuf_format(err, err_len, "%s is missing (it is built and installed with patchbay, next to it): refusing to "
                                  "run without the sandbox", o->enter_path ? o->enter_path : SANDBOX_ENTER_PROGRAM);
            rc = SANDBOX_ERR_ISOLATION;
            goto done;
        }
        if ((rc = open_bind_fds(bind_fds, o, err, err_len)) != 0)
            goto done;
        char real[PATH_MAX];
        /* inside, the command is reached by its real path: its directory is what gets bound */
        build_bwrap_argv(&bargv, bwrap, enter, o, o->rootfs == NULL && realpath(command, real) ? real : command,
                         bind_fds);
        if (bargv.oom) {
            strbuf_format(err, err_len, "out of memory");
            rc = SANDBOX_ERR_START;
            goto done;
        }
    }

    out_fd = fileio_open_regular(o->output_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out_fd < 0) {
        strbuf_format(err, err_len, "cannot write the output file %s: %s", o->output_path, strerror(errno));
        rc = SANDBOX_ERR_START;
        goto done;
    }
    if (sink_init(&sink, out_fd, o->output_limit_bytes ? o->output_limit_bytes : SANDBOX_DEFAULT_OUTPUT_LIMIT_BYTES) != 0) {
        strbuf_format(err, err_len, "out of memory");
        rc = SANDBOX_ERR_START;
        goto done;
    }

    supervise_t sv;
    if (o->isolation == SANDBOX_ISOLATE_BWRAP) {
        rc = run_once(out, &sv, o, bwrap, bargv.v, env.v, bind_fds, &sink, err, err_len);
        if (rc == 0 && sv.bwrap_failed) {
            /* nothing of the command ran: what bwrap said is the reason */
            char said[200];
            sink_finish(&sink);
            first_line_of(o->output_path, said, sizeof(said));
            strbuf_format(err, err_len, "bubblewrap could not start the sandbox (%s): refusing to run without it",
                    said[0] ? said : "no message");
            rc = SANDBOX_ERR_ISOLATION;
            goto done;
        }
        if (rc != 0)
            goto done;
        out->isolated = 1;
    } else {
        rc = run_once(out, &sv, o, command, (char *const *)o->argv, env.v, NULL, &sink, err, err_len);
        if (rc != 0)
            goto done;
    }

    out->output_truncated = sink_finish(&sink);
    out->output_bytes = sink.total;
    if (sink.io_error)
        log_warn(NULL, o->log_job, "sandbox: could not write all output to %s", o->output_path);
done:
    sink_free(&sink);
    if (out_fd >= 0)
        close(out_fd);
    sv_free(&env);
    sv_free(&bargv);
    for (int i = 0; i < FD_CHILD_MAX; i++)
        fdutil_close(&bind_fds[i]);
    return rc;
}
