/* pathglob: gitignore's rules for forbidden_paths, failing closed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/workspace/pathglob.h"

typedef struct {
    const char *pattern;
    const char *path;
    int match;
} case_t;

static void check(const case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int got = pathglob_match(cases[i].pattern, cases[i].path);
        if (got != cases[i].match)
            fail_msg("pathglob_match(\"%s\", \"%s\") = %d, want %d", cases[i].pattern, cases[i].path, got, cases[i].match);
    }
}

static void test_double_star(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {".github/workflows/**", ".github/workflows/ci.yml", 1},
        {".github/workflows/**", ".github/workflows/sub/deep.yml", 1},
        {".github/workflows/**", ".github/workflows", 0}, /* the directory itself is no file */
        {".github/workflows/**", ".github/CODEOWNERS", 0},
        {".github/**", ".github/workflows/ci.yml", 1},
        {"**", "anything/at/all.c", 1},
        {"**", "top", 1},
        {"src/**/secret.h", "src/secret.h", 1},
        {"src/**/secret.h", "src/a/b/c/secret.h", 1},
        {"src/**/secret.h", "lib/src/secret.h", 0},
        {"**/migrations/*.sql", "db/migrations/001.sql", 1},
        {"**/migrations/*.sql", "migrations/001.sql", 1},
        {"**/migrations/*.sql", "db/migrations/old/001.sql", 0},
        {"a/**/b/**/c", "a/x/b/y/z/c", 1},
        {"a/**/b/**/c", "a/b/c", 1},
    };
    check(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_single_segment_wildcards(void **state)
{
    (void)state;
    static const case_t cases[] = {
        {"src/*.c", "src/main.c", 1},  {"src/*.c", "src/sub/main.c", 0}, /* '*' stays within a segment */
        {"src/?.c", "src/a.c", 1},     {"src/?.c", "src/ab.c", 0},       {"src/[ab].c", "src/b.c", 1},
        {"src/[!ab].c", "src/b.c", 0}, {"config/*", "config/.env", 1}, /* dotfiles are not spared */
        {"Makefile", "Makefile", 1},   {"Makefile", "makefile", 0},    /* git paths are case-sensitive */
    };
    check(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_gitignore_shapes(void **state)
{
    (void)state;
    static const case_t cases[] = {
        /* no slash: any depth */
        {"*.pem", "key.pem", 1},
        {"*.pem", "deploy/keys/prod.pem", 1},
        {".env", "services/api/.env", 1},
        {"*.pem", "key.pem.txt", 0},
        /* leading slash: anchored at the root */
        {"/secrets.yml", "secrets.yml", 1},
        {"/secrets.yml", "config/secrets.yml", 0},
        /* a slash inside: anchored too */
        {"deploy/prod.yml", "deploy/prod.yml", 1},
        {"deploy/prod.yml", "x/deploy/prod.yml", 0},
        /* trailing slash: a directory and everything under it, at any depth */
        {"vendor/", "vendor/lib/a.c", 1},
        {"vendor/", "third_party/vendor/x.c", 1},
        {"vendor/", "vendor", 0},
        {"vendor/", "vendors/x.c", 0},
        {"/build/", "build/out.o", 1},
        {"/build/", "src/build/out.o", 0},
        /* nothing names nothing */
        {"", "a", 0},
        {"/", "a", 0},
    };
    check(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A pattern that would take exponential time counts as a match (fails
 * closed) and returns quickly. */
static void test_pathological_pattern_fails_closed(void **state)
{
    (void)state;
    char pattern[512] = "";
    for (int i = 0; i < 40; i++)
        strcat(pattern, "**/a/");
    strcat(pattern, "zzz");
    char path[4096] = "";
    for (int i = 0; i < 200; i++)
        strcat(path, "a/");
    strcat(path, "b");
    assert_int_equal(pathglob_match(pattern, path), 1);

    /* deeper than PATHGLOB_MAX_SEGMENTS: also a match */
    char deep[PATHGLOB_MAX_SEGMENTS * 2 + 8] = "";
    for (int i = 0; i <= PATHGLOB_MAX_SEGMENTS; i++)
        strcat(deep, "d/");
    strcat(deep, "f");
    assert_int_equal(pathglob_match("nothing-like-it", deep), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_double_star),
        cmocka_unit_test(test_single_segment_wildcards),
        cmocka_unit_test(test_gitignore_shapes),
        cmocka_unit_test(test_pathological_pattern_fails_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
