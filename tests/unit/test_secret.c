/*
 * test_secret — set-up codes are 80 random bits a person can type back in
 * any case, with or without dashes; a secret file is created once, 0600, and
 * the first value in it wins over every later one; comparisons need the
 * whole value.
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

#include "app/common/secret.h"

static void test_codes(void **state)
{
    (void)state;
    char a[SECRET_CODE_BYTES + 1], b[SECRET_CODE_BYTES + 1], n[SECRET_CODE_BYTES + 1];
    assert_int_equal(secret_random_code(a), 0);
    assert_int_equal(secret_random_code(b), 0);
    assert_int_equal(strlen(a), SECRET_CODE_BYTES);
    assert_string_not_equal(a, b);
    assert_true(a[4] == '-' && a[9] == '-' && a[14] == '-');
    for (const char *p = a; *p; p++)
        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ-", *p));
    /* typed back as a person would */
    assert_int_equal(secret_code_normalize("7k3q m2xd-9pwf r4tb", 19, n), 0);
    assert_string_equal(n, "7K3Q-M2XD-9PWF-R4TB");
    assert_int_equal(secret_code_normalize("7K3QM2XD9PWFR4TB", 16, n), 0);
    assert_string_equal(n, "7K3Q-M2XD-9PWF-R4TB");
    assert_int_equal(secret_code_normalize("O0IL-1111-0000-AAAA", 19, n), 0); /* O reads as 0, I and L as 1 */
    assert_string_equal(n, "0011-1111-0000-AAAA");
    assert_int_equal(secret_code_normalize("7K3Q-M2XD-9PWF-R4T", 18, n), -1);     /* one short */
    assert_int_equal(secret_code_normalize("7K3Q-M2XD-9PWF-R4TBX", 20, n), -1);   /* one too many */
    assert_int_equal(secret_code_normalize("7K3Q-M2XD-9PWF-R4TU", 19, n), -1);    /* U is not in the alphabet */
    assert_int_equal(secret_code_normalize("7K3Q\0M2XD9PWFR4TB", 17, n), -1);
    assert_int_equal(secret_code_normalize("", 0, n), -1);
}

static void test_equals(void **state)
{
    (void)state;
    assert_true(secret_equals("abc123", "abc123", 6));
    assert_false(secret_equals("abc123", "abc12", 5));
    assert_false(secret_equals("abc123", "abc1234", 7));
    assert_false(secret_equals("abc123", "abc124", 6));
    assert_false(secret_equals("", "", 0));
    assert_false(secret_equals("abc", NULL, 3));
}

static void test_file_first_value_wins(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_secret.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[128], path[160], out[SECRET_TOKEN_BYTES + 1], hex[SECRET_TOKEN_BYTES + 1];
    snprintf(sub, sizeof(sub), "%s/data", dir);
    snprintf(path, sizeof(path), "%s/token", sub);
    assert_int_equal(secret_random_hex(hex, sizeof(hex), SECRET_TOKEN_BYTES / 2), 0);
    assert_int_equal(strlen(hex), SECRET_TOKEN_BYTES);
    assert_int_equal(strspn(hex, "0123456789abcdef"), SECRET_TOKEN_BYTES);

    umask(022);
    int created = 0;
    assert_int_equal(secret_file_ensure(sub, "token", hex, out, sizeof(out), &created), 0);
    assert_int_equal(created, 1);
    assert_string_equal(out, hex);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a later start, or a second process, gets the first value, not its own */
    assert_int_equal(secret_file_ensure(sub, "token", "another-value", out, sizeof(out), &created), 0);
    assert_int_equal(created, 0);
    assert_string_equal(out, hex);
    /* no temporary file left behind */
    DIR *d = opendir(sub);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        entries += e->d_name[0] != '.' || e->d_name[1] > '.';
    closedir(d);
    assert_int_equal(entries, 1);
    /* replaced whole; read back without its newline */
    assert_int_equal(secret_file_replace(sub, "token", "new-value"), 0);
    assert_int_equal(secret_file_read(sub, "token", out, sizeof(out)), 0);
    assert_string_equal(out, "new-value");
    assert_int_equal(secret_file_read(sub, "token", out, 5), -1); /* longer than the buffer: not cut short */
    assert_int_equal(secret_file_read(sub, "missing", out, sizeof(out)), -1);
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_equals),
        cmocka_unit_test(test_file_first_value_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
