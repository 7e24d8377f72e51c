/*
 * workspace_util — the plumbing under workspace.c and workspace_mirror.c:
 * libgit2 setup and error conversion, the callbacks that hand libgit2 the
 * token, names and paths, directory helpers and the mirror lock.
 */
#include "workspace_int.h"

#include "app/common/log.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Small things
 * ------------------------------------------------------------------------- */

static const char *const err_names[] = {
    "ok", "not_found", "auth", "refused", "retry", "conflict", "io", "no_change", "invalid",
};

const char *workspace_err_name(int rc)
{
    if (rc > 0 || -rc >= (int)(sizeof(err_names) / sizeof(err_names[0])))
        return "unknown";
    return err_names[-rc];
}

char *ws_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fputs("patchbay: out of memory\n", stderr);
        abort();
    }
    return s;
}

int ws_fail(int code, char *err, size_t err_len, const char *fmt, ...)
{
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---------------------------------------------------------------------------
 * libgit2 setup
 * ------------------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;
static char init_err[WORKSPACE_ERR_BYTES];

static void init_libgit2(void)
{
    if (git_libgit2_init() < 0) {
        const git_error *e = git_error_last();
        snprintf(init_err, sizeof(init_err), "libgit2 did not initialise: %s", e ? e->message : "unknown error");
        init_rc = WORKSPACE_EIO;
        return;
    }
    /* Owner validation is off: as root, a job's work tree belongs to the
     * job's own sandbox user (sandbox_user.h), so it is "foreign" by design,
     * and what the check protects against (a repository's own config running
     * programs) is already handled: a work tree's config is never read after
     * the agent (workspace.h), and libgit2 runs no hooks. Strict hash
     * verification (also the default) re-hashes every object read, so a pack
     * damaged on disk is an error, never a silently wrong file. */
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
    /* Mirrors are caches: a fetch interrupted by a crash is re-done, so
     * fsync on every object write would only slow the first clone down. */
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
}

int workspace_init(char *err, size_t err_len)
{
    pthread_once(&init_once, init_libgit2);
    if (init_rc != 0)
        return ws_fail(init_rc, err, err_len, "%s", init_err);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Names and paths
 * ------------------------------------------------------------------------- */

static int valid_owner(const char *s, size_t n)
{
    if (n == 0 || n > WS_OWNER_MAX || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > WS_NAME_MAX || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

int ws_names_init(ws_names_t *n, const workspace_config_t *cfg, const char *repo, char *err, size_t err_len)
{
    memset(n, 0, sizeof(*n));
    const char *slash = repo ? strchr(repo, '/') : NULL;
    if (slash == NULL || !valid_owner(repo, (size_t)(slash - repo)) || !valid_name(slash + 1, strlen(slash + 1)))
        return ws_fail(WORKSPACE_EINVAL, err, err_len, "'%.140s' is not a GitHub repository name (owner/name)",
                       repo ? repo : "(null)");
    if (cfg->data_dir == NULL || cfg->git_url == NULL)
        return ws_fail(WORKSPACE_EINVAL, err, err_len, "workspace: data_dir and git_url must be set");
    size_t olen = (size_t)(slash - repo);
    memcpy(n->owner, repo, olen);
    n->owner[olen] = '\0';
    snprintf(n->name, sizeof(n->name), "%s", slash + 1);

    char lo_owner[WS_OWNER_MAX + 1], lo_name[WS_NAME_MAX + 1];
    for (size_t i = 0; i <= strlen(n->owner); i++)
        lo_owner[i] = (char)tolower((unsigned char)n->owner[i]);
    for (size_t i = 0; i <= strlen(n->name); i++)
        lo_name[i] = (char)tolower((unsigned char)n->name[i]);

    size_t ul = strlen(cfg->git_url);
    while (ul > 0 && cfg->git_url[ul - 1] == '/')
        ul--;
    n->url = ws_strf("%.*s/%s/%s.git", (int)ul, cfg->git_url, n->owner, n->name);
    n->owner_dir = ws_strf("%s/mirrors/%s", cfg->data_dir, lo_owner);
    n->git_dir = ws_strf("%s/%s.git", n->owner_dir, lo_name);
    n->lock_path = ws_strf("%s/%s.lock", n->owner_dir, lo_name);
    n->tmp_dir = ws_strf("%s/.%s.git.tmp", n->owner_dir, lo_name);
    return 0;
}

void ws_names_free(ws_names_t *n)
{
    free(n->url);
    free(n->owner_dir);
    free(n->git_dir);
    free(n->lock_path);
    free(n->tmp_dir);
    memset(n, 0, sizeof(*n));
}

/* ---------------------------------------------------------------------------
 * Remote callbacks: the only place the token meets libgit2
 * ------------------------------------------------------------------------- */

void ws_remote_init(ws_remote_t *r, const char *token)
{
    memset(r, 0, sizeof(*r));
    r->token = token;
    strbuf_t empty = STRBUF_INIT;
    r->remote_text = empty;
}

void ws_remote_dispose(ws_remote_t *r)
{
    strbuf_free(&r->remote_text);
    r->token = NULL;
}

static int cb_credentials(git_credential **out, const char *url, const char *username_from_url, unsigned int allowed_types,
                          void *payload)
{
    ws_remote_t *r = payload;
    if (r->token == NULL || !(allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
        return GIT_PASSTHROUGH; /* libgit2: "authentication required" -> GIT_EAUTH */
    if (r->cred_calls >= WS_CRED_MAX_CALLS) {
        r->auth_refused = 1;
        return GIT_EAUTH;
    }
    r->cred_calls++;
    /* GitHub's rule for installation tokens over git: any user name, the
     * token as the password; x-access-token by convention. */
    return git_credential_userpass_plaintext_new(out, "x-access-token", r->token);
}

/* "remote: ..." text from the server (a pre-receive hook's words arrive
 * here, not in push_update_reference's status). Kept printable and bounded. */
static int cb_sideband(const char *str, int len, void *payload)
{
    ws_remote_t *r = payload;
    if (len <= 0 || r->remote_text.len >= WS_REMOTE_TEXT_MAX_BYTES)
        return 0;
    size_t room = WS_REMOTE_TEXT_MAX_BYTES - r->remote_text.len;
    size_t n = (size_t)len < room ? (size_t)len : room;
    for (size_t i = 0; i < n; i++) {
        char c = str[i];
        if (c == '\r')
            c = '\n'; /* progress lines rewrite themselves with \r */
        if (c == '\n' || (c >= 0x20 && c < 0x7f) || (unsigned char)c >= 0x80)
            strbuf_appendn(&r->remote_text, &c, 1);
    }
    return 0;
}

/* libgit2 1.5 returns 0 from git_remote_push even when the server rejected
 * the ref; this callback is the only place the rejection shows. */
static int cb_push_update_reference(const char *refname, const char *status, void *payload)
{
    ws_remote_t *r = payload;
    if (status != NULL && !r->push_refused) {
        r->push_refused = 1;
        snprintf(r->refused_ref, sizeof(r->refused_ref), "%s: %s", refname, status);
    }
    return 0;
}

/* Present only so libgit2 counts received_bytes (it does not without one). */
static int cb_transfer(const git_indexer_progress *stats, void *payload)
{
    (void)stats;
    (void)payload;
    return 0;
}

void ws_remote_callbacks(git_remote_callbacks *cb, ws_remote_t *r)
{
    git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
    cb->credentials = cb_credentials;
    cb->sideband_progress = cb_sideband;
    cb->push_update_reference = cb_push_update_reference;
    cb->transfer_progress = cb_transfer;
    cb->payload = r;
}

/* ---------------------------------------------------------------------------
 * Error conversion
 * ------------------------------------------------------------------------- */

/* The last "remote:" line that says something (hooks print the reason last),
 * without git's "remote: " prefixes and progress noise. */
static void remote_reason(const ws_remote_t *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r == NULL || r->remote_text.len == 0)
        return;
    strbuf_t b = STRBUF_INIT;
    const char *s = r->remote_text.data;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        /* skip pack progress lines ("Resolving deltas: 50% ...") */
        if (n > 0 && memmem(s, n, "% (", 3) == NULL && memmem(s, n, "done.", 5) == NULL) {
            if (b.len > 0)
                strbuf_append(&b, " / ");
            strbuf_appendn(&b, s, n);
        }
        s = e ? e + 1 : s + n;
    }
    if (b.data != NULL)
        snprintf(out, outlen, "%s", b.data);
    strbuf_free(&b);
}

/* libgit2 1.5 reports a non-200 answer only as "unexpected http status code:
 * N" (class GIT_ERROR_HTTP); the status is the one fact worth keeping. */
static int http_status_of(const git_error *e)
{
    if (e == NULL || e->klass != GIT_ERROR_HTTP || e->message == NULL)
        return 0;
    const char *p = strstr(e->message, "status code: ");
    return p ? atoi(p + 13) : 0;
}

/* HTTP status -> what a caller does about it. */
static int code_for_http(int status)
{
    if (status == 401 || status == 403)
        return WORKSPACE_EAUTH;
    if (status == 404)
        return WORKSPACE_ENOTFOUND;
    if (status == 408 || status == 429 || status >= 500)
        return WORKSPACE_ERETRY;
    return WORKSPACE_EIO;
}

int ws_git_fail(int rc, const ws_remote_t *r, int network, char *err, size_t err_len, const char *what, ...)
{
    char head[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(head, sizeof(head), what, ap);
    va_end(ap);

    const git_error *e = git_error_last();
    const char *msg = e && e->message ? e->message : "unknown libgit2 error";
    char reason[WS_REMOTE_TEXT_MAX_BYTES];
    remote_reason(r, reason, sizeof(reason));

    /* What our callbacks saw is the truth; libgit2's message may be a
     * generic consequence of it. */
    if (r != NULL && r->auth_refused)
        return ws_fail(WORKSPACE_EAUTH, err, err_len, "%s: GitHub refused the installation token (bad or expired)", head);
    if (r != NULL && r->push_refused)
        return ws_fail(WORKSPACE_EREFUSED, err, err_len, "%s: push refused: %s%s%s", head, r->refused_ref, reason[0] ? ": " : "",
                       reason);
    if (rc == GIT_EAUTH && r != NULL && r->token == NULL)
        return ws_fail(WORKSPACE_EAUTH, err, err_len, "%s: GitHub asks for credentials and no token was given", head);

    int status = http_status_of(e);
    int code;
    switch (rc) {
    case GIT_EAUTH:
        code = WORKSPACE_EAUTH;
        break;
    case GIT_ENOTFOUND:
        code = WORKSPACE_ENOTFOUND;
        break;
    case GIT_ELOCKED:
    case GIT_EMODIFIED:
    case GIT_ENONFASTFORWARD:
    case GIT_ECONFLICT:
    case GIT_EEXISTS:
        code = WORKSPACE_ECONFLICT;
        break;
    case GIT_EOWNER:
        return ws_fail(WORKSPACE_EIO, err, err_len,
                       "%s: %s (the data dir belongs to another user: run patchbay as its owner, or chown it)", head, msg);
    case GIT_ECERTIFICATE:
        code = WORKSPACE_EIO; /* a certificate problem is configuration, not a passing fault */
        break;
    case GIT_EEOF:
        code = network ? WORKSPACE_ERETRY : WORKSPACE_EIO;
        break;
    default:
        if (status != 0)
            code = code_for_http(status);
        else if (network && e != NULL &&
                 (e->klass == GIT_ERROR_NET || e->klass == GIT_ERROR_SSL || e->klass == GIT_ERROR_HTTP ||
                  e->klass == GIT_ERROR_OS || e->klass == GIT_ERROR_INDEXER || e->klass == GIT_ERROR_ZLIB))
            code = WORKSPACE_ERETRY; /* the connection or the data on it broke */
        else
            code = WORKSPACE_EIO;
        break;
    }
    if (status == 404)
        return ws_fail(code, err, err_len, "%s: repository not found, or the installation token cannot see it", head);
    if (status == 403)
        return ws_fail(code, err, err_len, "%s: GitHub answered 403: the App lacks the permission (contents: write for a push)",
                       head);
    return ws_fail(code, err, err_len, "%s: %s%s%s", head, msg, reason[0] ? ": " : "", reason);
}

int ws_open_repo(git_repository **out, const char *path, unsigned int flags, char *err, size_t err_len, const char *what)
{
    *out = NULL;
    git_error_clear();
    struct stat st;
    /* libgit2's owner validation is off (work trees are the job's user's);
     * a mirror must still be ours: another owner means a copied or shared
     * data dir */
    int foreign = stat(path, &st) == 0 && st.st_uid != geteuid();
    int grc = foreign && (flags & GIT_REPOSITORY_OPEN_BARE) ? GIT_EOWNER : git_repository_open_ext(out, path, flags, NULL);
    if (grc == 0)
        return 0;
    if (foreign)
        return ws_fail(WORKSPACE_EIO, err, err_len,
                       "%s: %s belongs to another user (uid %u, patchbay runs as uid %u): run patchbay as the data "
                       "dir's owner, or chown -R the data dir",
                       what, path, (unsigned)st.st_uid, (unsigned)geteuid());
    return ws_git_fail(grc, NULL, 0, err, err_len, "%s", what);
}

/* ---------------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------------- */

/* ---------------------------------------------------------------------------
 * The mirror lock
 * ------------------------------------------------------------------------- */

int ws_lock(ws_lock_t *l, const char *path, int wait_ms, char *err, size_t err_len)
{
    l->fd = -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long sleep_ms = 10;
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return ws_fail(WORKSPACE_EIO, err, err_len, "cannot open the lock file %s: %s", path, strerror(errno));
        /* Polling rather than a blocking flock: the wait is bounded, and no
         * signal is needed to interrupt it in a threaded worker. */
        for (;;) {
            if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                break;
            if (errno != EWOULDBLOCK && errno != EINTR) {
                int e = errno;
                close(fd);
                return ws_fail(WORKSPACE_EIO, err, err_len, "cannot lock %s: %s", path, strerror(e));
            }
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (wait_ms < 0 || waited >= wait_ms) {
                close(fd);
                return ws_fail(WORKSPACE_ERETRY, err, err_len,
                               "another process has held %s for %ld ms (a long first fetch?); try again later", path, waited);
            }
            struct timespec ts = {0, sleep_ms * 1000000L};
            nanosleep(&ts, NULL);
            if (sleep_ms < 200)
                sleep_ms *= 2;
        }
        /* An eviction deletes the lock file while holding it; whoever was
         * waiting on the old inode must not believe it holds the new one. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            l->fd = fd;
            return 0;
        }
        close(fd);
    }
}

void ws_unlock(ws_lock_t *l)
{
    if (l->fd >= 0) {
        flock(l->fd, LOCK_UN);
        close(l->fd);
    }
    l->fd = -1;
}

void ws_mirror_touch(const char *git_dir)
{
    char *p = ws_strf("%s/patchbay-last-used", git_dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        futimens(fd, NULL);
        close(fd);
    }
    free(p);
}
