/* imagestore — see imagestore.h. */
#include "imagestore.h"
#include "app/common/fileio.h"
#include "app/common/fstree.h"
#include "app/common/log.h"
#include "jobs/agent/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#define TAG "patchbay"
#define TOOL_OUTPUT_BYTES (64 * 1024)

/* ---------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------- */

/* snprintf for paths: a path that does not fit is cut, and then names a
 * file that is not there (every use fails cleanly); -1 tells. */
static int pathf(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = futimens(fd, NULL);
    close(fd);
    return rc;
}

static int64_t age_seconds(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (int64_t)time(NULL) - (int64_t)st.st_mtime;
}

/* flock on <store>/locks/<name>.lock: 0 and *fd, or -1 (errno). */
static int lock_take(int *fd, const char *store, const char *name, int how)
{
    char path[PATH_MAX];
    pathf(path, sizeof(path), "%s/locks/%s.lock", store, name);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return -1;
    int rc;
    while ((rc = flock(*fd, how)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        int saved = errno;
        close(*fd);
        *fd = -1;
        errno = saved;
        return -1;
    }
    return 0;
}

static void sha256_hex(const char *text, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int image_reference_is_remote(const char *reference)
{
    return reference != NULL && strncmp(reference, "docker://", 9) == 0 && reference[9] != '\0' &&
           strchr(reference + 9, ' ') == NULL;
}

/* ---------------------------------------------------------------------------
 * Running skopeo and umoci (patchbay's own tools, not the job's: no sandbox
 * around them, but a session of their own, a scrubbed environment and a
 * wall clock, through the sandbox's process runner)
 * ------------------------------------------------------------------------- */

/* The tool's last complaint: skopeo writes `level=fatal msg="..."`. */
static void tool_complaint(const char *output, char *out, size_t len)
{
    const char *msg = strstr(output, "msg=\"");
    if (msg != NULL) {
        msg += 5;
        const char *end = strrchr(msg, '"');
        size_t n = end && end > msg ? (size_t)(end - msg) : strcspn(msg, "\n");
        snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), msg);
        return;
    }
    /* else its last non-empty line */
    size_t n = strlen(output);
    while (n > 0 && (output[n - 1] == '\n' || output[n - 1] == ' '))
        n--;
    size_t start = n;
    while (start > 0 && output[start - 1] != '\n')
        start--;
    snprintf(out, len, "%.*s", (int)(n - start), output + start);
}

static int run_tool(const char *store, const char *const *argv, int64_t timeout_ms, const char *job, char *err,
                    size_t err_len)
{
    char scratch[PATH_MAX], output[PATH_MAX + 16];
    pathf(scratch, sizeof(scratch), "%s/tmp/run-%d", store, (int)getpid());
    int e = fstree_mkdirs(scratch, 0700);
    if (e != 0) {
        snprintf(err, err_len, "cannot make %s: %s", scratch, strerror(-e));
        return -1;
    }
    pathf(output, sizeof(output), "%s/output", scratch);
    /* what a registry may need of the operator's environment, and nothing else */
    static const char *const pass[] = {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
                                       "no_proxy",    "REGISTRY_AUTH_FILE", NULL};
    char *env[16];
    size_t n = 0;
    for (size_t i = 0; pass[i] != NULL; i++) {
        const char *v = getenv(pass[i]);
        if (v != NULL && asprintf(&env[n], "%s=%s", pass[i], v) >= 0)
            n++;
    }
    env[n] = NULL;
    sandbox_opts_t o;
    sandbox_opts_init(&o);
    o.argv = argv;
    o.workdir = store;
    o.scratch_dir = scratch;
    o.env = (const char *const *)env;
    o.output_path = output;
    o.output_limit_bytes = TOOL_OUTPUT_BYTES;
    o.timeout_ms = timeout_ms;
    o.isolation = SANDBOX_ISOLATE_NONE; /* patchbay's own tool on patchbay's own files */
    o.log_job = job;
    sandbox_result_t r;
    int rc = sandbox_run(&r, &o, err, err_len);
    for (size_t i = 0; i < n; i++)
        free(env[i]);
    if (rc == 0 && !(r.end == SANDBOX_EXITED && r.exit_code == 0)) {
        char *text = fileio_read(output, TOOL_OUTPUT_BYTES, NULL);
        char said[600], how[96];
        tool_complaint(text ? text : "", said, sizeof(said));
        free(text);
        snprintf(err, err_len, "%s %s: %s", argv[0], sandbox_describe(&r, how, sizeof(how)),
                 said[0] ? said : "no message");
        rc = -1;
    } else if (rc != 0) {
        rc = -1;
    }
    fstree_remove(scratch);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The layout (fetch) and the root (unpack)
 * ------------------------------------------------------------------------- */

/* The manifest digest tagged TAG in the layout's index.json. */
static int layout_digest(const char *layout, char *digest, size_t len)
{
    char path[PATH_MAX];
    pathf(path, sizeof(path), "%s/index.json", layout);
    json_error_t jerr;
    json_t *index = json_load_file(path, 0, &jerr);
    json_t *m;
    size_t i;
    int rc = -1;
    json_array_foreach(json_object_get(index, "manifests"), i, m)
    {
        const char *ref = json_string_value(json_object_get(json_object_get(m, "annotations"),
                                                            "org.opencontainers.image.ref.name"));
        const char *d = json_string_value(json_object_get(m, "digest"));
        if (ref != NULL && strcmp(ref, TAG) == 0 && d != NULL && strncmp(d, "sha256:", 7) == 0 &&
            strlen(d) == 71 && strspn(d + 7, "0123456789abcdef") == 64) {
            snprintf(digest, len, "%s", d);
            rc = 0;
        }
    }
    json_decref(index);
    return rc;
}

/* What the sandbox binds over, in a root that stays read-only. */
static int prepare_mount_points(const char *rootfs)
{
    static const char *const dirs[] = {"etc", "tmp", "proc", "dev", NULL};
    static const char *const files[] = {"etc/passwd", "etc/group", "etc/resolv.conf", NULL};
    char path[PATH_MAX];
    for (size_t i = 0; dirs[i] != NULL; i++) {
        pathf(path, sizeof(path), "%s/%s", rootfs, dirs[i]);
        struct stat st;
        if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
            return -1; /* /etc as a symlink: the image is not one we can bind into */
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
    }
    for (size_t i = 0; files[i] != NULL; i++) {
        pathf(path, sizeof(path), "%s/%s", rootfs, files[i]);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && unlink(path) != 0)
            return -1; /* a dangling /etc/resolv.conf -> /run/... link */
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
            return -1;
        close(fd);
    }
    return 0;
}

/* The image's Env, from umoci's runtime config. */
static char **read_env(const char *bundle)
{
    char path[PATH_MAX];
    pathf(path, sizeof(path), "%s/config.json", bundle);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    json_t *env = json_object_get(json_object_get(cfg, "process"), "env");
    size_t n = json_array_size(env), k = 0;
    char **out = calloc(n + 1, sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++) {
        const char *e = json_string_value(json_array_get(env, i));
        const char *eq = e ? strchr(e, '=') : NULL;
        if (eq != NULL && eq != e && (out[k] = strdup(e)) != NULL)
            k++;
    }
    json_decref(cfg);
    return out;
}

/* ---------------------------------------------------------------------------
 * Pruning
 * ------------------------------------------------------------------------- */

typedef struct {
    char hex[65];
    int64_t age;
    uint64_t bytes;
} root_info_t;

static int by_age_desc(const void *a, const void *b)
{
    const root_info_t *x = a, *y = b;
    return x->age < y->age ? 1 : x->age > y->age ? -1 : 0;
}

static void prune(const char *store, const char *keep_hex, uint64_t cache_bytes, const char *job)
{
    char roots[PATH_MAX];
    pathf(roots, sizeof(roots), "%s/roots", store);
    DIR *d = opendir(roots);
    if (d == NULL)
        return;
    root_info_t *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 64 || strspn(e->d_name, "0123456789abcdef") != 64)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            root_info_t *nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL)
                break;
            v = nv;
        }
        char path[PATH_MAX];
        pathf(path, sizeof(path), "%s/%s/.last-used", roots, e->d_name);
        memcpy(v[n].hex, e->d_name, 64); /* length checked above */
        v[n].hex[64] = '\0';
        v[n].age = age_seconds(path);
        pathf(path, sizeof(path), "%s/%s", roots, e->d_name);
        v[n].bytes = fstree_disk_usage(path, NULL);
        total += v[n].bytes;
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof(*v), by_age_desc);
    for (size_t i = 0; i < n; i++) {
        int too_old = v[i].age > (int64_t)IMAGESTORE_MAX_AGE_DAYS * 86400;
        if (!(too_old || (cache_bytes > 0 && total > cache_bytes)) || strcmp(v[i].hex, keep_hex) == 0)
            continue;
        char name[80];
        snprintf(name, sizeof(name), "root-%s", v[i].hex);
        int fd;
        /* in use (a shared lock) or being unpacked: not now */
        if (lock_take(&fd, store, name, LOCK_EX | LOCK_NB) != 0)
            continue;
        char path[PATH_MAX];
        pathf(path, sizeof(path), "%s/%s", roots, v[i].hex);
        if (fstree_remove(path) == 0) {
            total -= v[i].bytes;
            log_info(NULL, job, "images: removed the unpacked image %.12s (%llu MB, unused for %lld days)", v[i].hex,
                     (unsigned long long)(v[i].bytes >> 20), (long long)(v[i].age / 86400));
        }
        close(fd);
    }
    free(v);
}

/* ---------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------- */

int image_prepare(image_t *out, const imagestore_opts_t *o, const char *reference, char *err, size_t err_len)
{
    *out = (image_t)IMAGE_INIT;
    char store[PATH_MAX], key[65], layout[PATH_MAX + 96], bundle[PATH_MAX + 96], tmp[PATH_MAX + 112];
    char path[PATH_MAX], dest[PATH_MAX + 160];
    int ref_lock = -1, root_lock = -1;
    int rc = -1;

    char *abs = realpath(o->data_dir, NULL);
    pathf(store, sizeof(store), "%s/" IMAGESTORE_DIR, abs ? abs : o->data_dir);
    free(abs);
    static const char *const subdirs[] = {"layouts", "roots", "locks", "tmp", NULL};
    for (size_t i = 0; subdirs[i] != NULL; i++) {
        pathf(path, sizeof(path), "%s/%s", store, subdirs[i]);
        int e = fstree_mkdirs(path, 0700);
        if (e != 0) {
            snprintf(err, err_len, "cannot make %s: %s", path, strerror(-e));
            return -1;
        }
    }
    chmod(store, 0700);
    sha256_hex(reference, key);
    pathf(layout, sizeof(layout), "%s/layouts/%s", store, key);

    /* fetch: one process per reference at a time; the others wait and then
     * find it fresh */
    pathf(path, sizeof(path), "ref-%s", key);
    if (lock_take(&ref_lock, store, path, LOCK_EX) != 0) {
        snprintf(err, err_len, "cannot lock the image store: %s", strerror(errno));
        goto done;
    }
    pathf(path, sizeof(path), "%s/fetched-at", layout);
    int64_t age = age_seconds(path);
    if (age < 0 || age >= o->refresh_seconds || layout_digest(layout, out->digest, sizeof(out->digest)) != 0) {
        int e = fstree_mkdirs(layout, 0700);
        if (e != 0) {
            snprintf(err, err_len, "cannot make %s: %s", layout, strerror(-e));
            goto done;
        }
        pathf(dest, sizeof(dest), "oci:%s:" TAG, layout);
        const char *argv[] = {"skopeo", "copy", "--quiet", reference, dest, NULL};
        log_info(NULL, o->job, "images: fetching %s", reference);
        if (run_tool(store, argv, IMAGESTORE_FETCH_TIMEOUT_MS, o->job, err, err_len) != 0)
            goto done;
        if (layout_digest(layout, out->digest, sizeof(out->digest)) != 0) {
            snprintf(err, err_len, "skopeo copied %s but its layout names no image", reference);
            goto done;
        }
        touch(path);
        pathf(path, sizeof(path), "%s/digest", layout);
        fileio_write_private(layout, "digest", out->digest, strlen(out->digest));
        out->fetched = 1;
    }
    const char *hex = out->digest + 7;

    /* unpack: once per digest */
    pathf(path, sizeof(path), "root-%s", hex);
    if (lock_take(&root_lock, store, path, LOCK_EX) != 0) {
        snprintf(err, err_len, "cannot lock the image store: %s", strerror(errno));
        goto done;
    }
    pathf(bundle, sizeof(bundle), "%s/roots/%s", store, hex);
    pathf(path, sizeof(path), "%s/.complete", bundle);
    if (access(path, F_OK) != 0) {
        pathf(tmp, sizeof(tmp), "%s/tmp/unpack-%s", store, hex);
        fstree_remove(tmp);
        fstree_remove(bundle); /* a half-made one from a crash */
        pathf(dest, sizeof(dest), "%s:" TAG, layout);
        const char *argv[] = {"umoci", "unpack", "--rootless", "--image", dest, tmp, NULL};
        log_info(NULL, o->job, "images: unpacking %s (%.19s)", reference, out->digest);
        if (run_tool(store, argv, IMAGESTORE_FETCH_TIMEOUT_MS, o->job, err, err_len) != 0)
            goto done;
        pathf(path, sizeof(path), "%s/rootfs", tmp);
        if (prepare_mount_points(path) != 0) {
            snprintf(err, err_len, "the image %s has no usable /etc (%s)", reference, strerror(errno));
            goto done;
        }
        pathf(path, sizeof(path), "%s/.complete", tmp);
        if (touch(path) != 0 || rename(tmp, bundle) != 0) {
            snprintf(err, err_len, "cannot keep the unpacked image in %s: %s", bundle, strerror(errno));
            goto done;
        }
        out->unpacked = 1;
    }
    /* in use from here: a shared lock that pruning respects */
    if (flock(root_lock, LOCK_SH) != 0) {
        snprintf(err, err_len, "cannot lock the image store: %s", strerror(errno));
        goto done;
    }
    out->lock_fd = root_lock;
    root_lock = -1;
    pathf(path, sizeof(path), "%s/.last-used", bundle);
    touch(path);
    out->bundle = strdup(bundle);
    if (asprintf(&out->rootfs, "%s/rootfs", bundle) < 0)
        out->rootfs = NULL;
    out->env = read_env(bundle);
    if (out->bundle == NULL || out->rootfs == NULL || out->env == NULL) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    close(ref_lock);
    ref_lock = -1;
    prune(store, hex, o->cache_bytes, o->job);
    rc = 0;
done:
    if (ref_lock >= 0)
        close(ref_lock);
    if (root_lock >= 0)
        close(root_lock);
    if (rc != 0)
        image_release(out);
    return rc;
}

void image_release(image_t *img)
{
    if (img->lock_fd >= 0)
        close(img->lock_fd);
    for (size_t i = 0; img->env != NULL && img->env[i] != NULL; i++)
        free(img->env[i]);
    free(img->env);
    free(img->bundle);
    free(img->rootfs);
    *img = (image_t)IMAGE_INIT;
}

int image_status(const char *data_dir, const char *reference, char *digest, size_t digest_len)
{
    char key[65], path[PATH_MAX + 200];
    sha256_hex(reference, key);
    pathf(path, sizeof(path), "%s/" IMAGESTORE_DIR "/layouts/%s/digest", data_dir, key);
    char *d = fileio_read(path, 128, NULL);
    int ready = 0;
    if (d != NULL && strncmp(d, "sha256:", 7) == 0 && strlen(d) == 71) {
        snprintf(digest, digest_len, "%s", d);
        pathf(path, sizeof(path), "%s/" IMAGESTORE_DIR "/roots/%s/.complete", data_dir, d + 7);
        ready = access(path, F_OK) == 0;
    }
    free(d);
    return ready;
}
