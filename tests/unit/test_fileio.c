/*
 * test_fileio — whole-file reads are bounded and refuse a symbolic link at
 * the end of the path; private writes are 0600, replace the file whole, and
 * leave no temporary file behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/common/fileio.h"

static void test_write_then_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_fileio.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128], path[160], tmp[170], link[160];
    snprintf(sub, sizeof(sub), "%s/creds", dir);
    snprintf(path, sizeof(path), "%s/app.json", sub);
    snprintf(tmp, sizeof(tmp), "%s/app.json.tmp", sub);
    snprintf(link, sizeof(link), "%s/link", sub);

    umask(022);
    assert_int_equal(fileio_write_private(sub, "app.json", "first version", 13), 0);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fileio_write_private(sub, "app.json", "second", 6), 0);
    assert_int_equal(access(tmp, F_OK), -1);

    size_t len = 0;
    char *text = fileio_read(path, 1024, &len);
    assert_string_equal(text, "second");
    assert_int_equal(len, 6);
    free(text);
    text = fileio_read(path, 3, &len); /* bounded */
    assert_string_equal(text, "sec");
    free(text);

    assert_int_equal(symlink(path, link), 0);
    assert_null(fileio_read(link, 1024, NULL));
    assert_int_equal(errno, ELOOP);
    assert_null(fileio_read("/nonexistent/file", 10, NULL));

    unlink(link);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_write_then_read)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
