/*
 * imagestore — the OCI images jobs run in ("environments"): fetched with
 * skopeo, unpacked once per manifest digest with umoci (rootless), shared
 * read-only by every job on the machine that uses them.
 *
 * Under <data_dir>/images/ (0700):
 *
 *   layouts/<sha256 of the reference>/   an OCI layout skopeo copies the
 *                                        image into (tag "patchbay"), with
 *                                        fetched-at (its mtime: when) and
 *                                        digest (the manifest's)
 *   roots/<manifest digest hex>/         umoci's bundle: rootfs/ and
 *                                        config.json, complete once
 *                                        .complete exists; .last-used's mtime
 *                                        is its last use
 *   locks/ref-<sha>.lock, root-<hex>.lock
 *
 * A reference is fetched again only once refresh_seconds have passed since
 * the last fetch (a registry tag can move; a layout's blobs are reused). One
 * process fetches a reference at a time and one unpacks a digest at a time
 * (flock): a job that finds another fetching waits for it, and the second
 * finds the root ready. A job holds a shared lock on its root while it runs,
 * so pruning (least recently used first, above cache_bytes, and anything
 * unused for IMAGESTORE_MAX_AGE_DAYS) never removes a root in use.
 *
 * skopeo runs with an environment of its own: nothing of patchbay's but
 * PATH, the proxy settings and REGISTRY_AUTH_FILE when the operator set
 * them. Its own error is the job's error: a job never falls back to the
 * host when its image cannot be had.
 *
 * Each unpacked root gets the empty files and directories the sandbox binds
 * over (etc/passwd, etc/group, etc/resolv.conf, tmp, proc, dev) so that
 * it can stay read-only.
 *
 * Memory: an image_t owns its strings and its lock (image_release).
 * Blocking (network, disk); any thread.
 */
#ifndef PATCHBAY_IMAGESTORE_H
#define PATCHBAY_IMAGESTORE_H

#include <stddef.h>
#include <stdint.h>

#define IMAGESTORE_DIR "images"
#define IMAGESTORE_MAX_AGE_DAYS 14
#define IMAGESTORE_FETCH_TIMEOUT_MS (30 * 60 * 1000)
#define IMAGESTORE_ERR_BYTES 1024

typedef struct {
    char digest[80];   /* "sha256:<hex>" of the manifest */
    char *bundle;      /* <store>/roots/<hex> */
    char *rootfs;      /* <bundle>/rootfs */
    char **env;        /* the image's Env ("NAME=value"), NULL-terminated; never NULL after prepare */
    int fetched;       /* this call ran skopeo */
    int unpacked;      /* this call ran umoci */
    int lock_fd;       /* shared lock on the root, held while the job uses it */
} image_t;

#define IMAGE_INIT {"", NULL, NULL, NULL, 0, 0, -1}

typedef struct {
    const char *data_dir;
    int refresh_seconds;   /* fetch a reference again after this; 0: every time */
    uint64_t cache_bytes;  /* unpacked roots above this are pruned, least recently used first */
    const char *job;       /* for log lines; may be NULL */
} imagestore_opts_t;

/* Makes reference's image ready to run in: fetched (when not fresh) and
 * unpacked (when not already). 0 with *out filled (image_release it), or -1
 * with the reason in err (skopeo's or umoci's own words when they failed). */
int image_prepare(image_t *out, const imagestore_opts_t *o, const char *reference, char *err, size_t err_len);
void image_release(image_t *img);

/* What the store knows of reference without fetching: 1 and its digest when
 * it is unpacked and ready, 0 when not (yet). */
int image_status(const char *data_dir, const char *reference, char *digest, size_t digest_len);

/* Whether a repository may name this reference itself: only registry images
 * (docker://), never a path on this machine. */
int image_reference_is_remote(const char *reference);

#endif
