/*
 * test_imagestore — the image store with real skopeo and umoci on local OCI
 * layouts (no registry): an image is fetched and unpacked once and then
 * reused, a broken reference fails with skopeo's words, the image's Env is
 * read, and pruning removes the least recently used root beyond the budget
 * but never one a job still holds. Skipped where umoci or skopeo is missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/common/log.h"
#include "jobs/image/imagestore.h"

static char root[64];

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* An OCI layout at dir:t whose root holds one file, text: one digest per text. */
static void make_layout(const char *dir, const char *text)
{
    assert_int_equal(sh("umoci init --layout %s && umoci new --image %s:t && "
                        "umoci unpack --rootless --image %s:t %s.b && mkdir -p %s.b/rootfs/etc && "
                        "echo '%s' > %s.b/rootfs/etc/what && umoci repack --image %s:t %s.b && "
                        "umoci config --image %s:t --config.env PATH=/bin --config.env WHAT=%s && rm -rf %s.b",
                        dir, dir, dir, dir, dir, text, dir, dir, dir, dir, text, dir),
                     0);
}

static size_t count_roots(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/data/images/roots", root);
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strlen(e->d_name) == 64;
    if (d != NULL)
        closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    if (system("command -v umoci >/dev/null && command -v skopeo >/dev/null") != 0)
        return 0;
    strcpy(root, "/tmp/pbimages-XXXXXX");
    if (mkdtemp(root) == NULL)
        return -1;
    return sh("mkdir -p %s/data", root) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (root[0] != '\0')
        sh("rm -rf %s", root);
    return 0;
}

static void test_prepare_reuse_env_and_errors(void **state)
{
    (void)state;
    if (root[0] == '\0')
        skip();
    char layout[128], ref[160], data[128], err[IMAGESTORE_ERR_BYTES];
    snprintf(layout, sizeof(layout), "%s/a", root);
    snprintf(ref, sizeof(ref), "oci:%s:t", layout);
    snprintf(data, sizeof(data), "%s/data", root);
    make_layout(layout, "first");
    imagestore_opts_t o = {.data_dir = data, .refresh_seconds = 3600, .cache_bytes = 1ULL << 40};

    image_t img = IMAGE_INIT;
    assert_int_equal(image_prepare(&img, &o, ref, err, sizeof(err)), 0);
    assert_true(img.fetched && img.unpacked);
    assert_int_equal(strncmp(img.digest, "sha256:", 7), 0);
    char what[256];
    snprintf(what, sizeof(what), "%s/etc/what", img.rootfs);
    assert_int_equal(access(what, F_OK), 0);
    snprintf(what, sizeof(what), "%s/etc/resolv.conf", img.rootfs); /* made for the sandbox's bind */
    assert_int_equal(access(what, F_OK), 0);
    int saw = 0;
    for (size_t i = 0; img.env[i] != NULL; i++)
        saw |= strcmp(img.env[i], "WHAT=first") == 0;
    assert_true(saw);
    char digest[80];
    strcpy(digest, img.digest);
    image_release(&img);

    /* fresh: neither fetched nor unpacked again */
    assert_int_equal(image_prepare(&img, &o, ref, err, sizeof(err)), 0);
    assert_false(img.fetched);
    assert_false(img.unpacked);
    assert_string_equal(img.digest, digest);
    image_release(&img);
    char got[80];
    assert_int_equal(image_status(data, ref, got, sizeof(got)), 1);
    assert_string_equal(got, digest);

    /* refresh 0: fetched again (the same digest), not unpacked again */
    o.refresh_seconds = 0;
    assert_int_equal(image_prepare(&img, &o, ref, err, sizeof(err)), 0);
    assert_true(img.fetched);
    assert_false(img.unpacked);
    image_release(&img);

    /* a reference that does not exist: skopeo's words */
    char bad[200];
    snprintf(bad, sizeof(bad), "oci:%s/missing:t", root);
    assert_int_equal(image_prepare(&img, &o, bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "skopeo"));
    assert_non_null(strstr(err, "missing"));
    assert_int_equal(image_status(data, bad, got, sizeof(got)), 0);
}

static void test_prune_spares_what_is_in_use(void **state)
{
    (void)state;
    if (root[0] == '\0')
        skip();
    char a[128], b[128], c[128], ra[160], rb[160], rc[160], data[128], err[IMAGESTORE_ERR_BYTES];
    snprintf(a, sizeof(a), "%s/pa", root);
    snprintf(b, sizeof(b), "%s/pb", root);
    snprintf(c, sizeof(c), "%s/pc", root);
    make_layout(a, "alpha");
    make_layout(b, "beta");
    make_layout(c, "gamma");
    snprintf(ra, sizeof(ra), "oci:%s:t", a);
    snprintf(rb, sizeof(rb), "oci:%s:t", b);
    snprintf(rc, sizeof(rc), "oci:%s:t", c);
    snprintf(data, sizeof(data), "%s/data", root);
    sh("rm -rf %s/images", data);
    imagestore_opts_t o = {.data_dir = data, .refresh_seconds = 3600, .cache_bytes = 1ULL << 40};

    image_t ia = IMAGE_INIT, ib = IMAGE_INIT, ic = IMAGE_INIT;
    assert_int_equal(image_prepare(&ia, &o, ra, err, sizeof(err)), 0); /* held: in use */
    assert_int_equal(image_prepare(&ib, &o, rb, err, sizeof(err)), 0);
    image_release(&ib);                                                 /* not in use */
    assert_int_equal(count_roots(), 2);

    /* a budget of one byte: everything that can go goes, but a and the new c */
    o.cache_bytes = 1;
    assert_int_equal(image_prepare(&ic, &o, rc, err, sizeof(err)), 0);
    assert_int_equal(count_roots(), 2);
    assert_int_equal(access(ia.rootfs, F_OK), 0);
    assert_int_equal(access(ic.rootfs, F_OK), 0);
    char broot[80];
    assert_int_equal(image_status(data, rb, broot, sizeof(broot)), 0); /* b's root is gone */
    image_release(&ia);
    image_release(&ic);
}

static void test_only_registry_images_from_repositories(void **state)
{
    (void)state;
    assert_true(image_reference_is_remote("docker://docker.io/library/node:20"));
    assert_false(image_reference_is_remote("oci:/etc:x"));
    assert_false(image_reference_is_remote("dir:/"));
    assert_false(image_reference_is_remote("docker://"));
    assert_false(image_reference_is_remote("docker://a b"));
    assert_false(image_reference_is_remote(NULL));
}

int main(void)
{
    log_configure("error", "text");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prepare_reuse_env_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_spares_what_is_in_use, setup, teardown),
        cmocka_unit_test(test_only_registry_images_from_repositories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
