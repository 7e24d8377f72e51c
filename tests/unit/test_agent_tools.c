/*
 * test_agent_tools — the built-in agent's file tools stay inside the work
 * tree whatever the model asks (.., absolute paths, symbolic links planted in
 * the repository, .git), and do exactly what they say (edit_file matches
 * once or not at all; answers are bounded and numbered).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/agent/agent_tools.h"

static char root[64], outside[64];

static void put(const char *dir, const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get(const char *dir, const char *rel)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/test_agent_tools.XXXXXX");
    snprintf(outside, sizeof(outside), "/tmp/test_agent_tools_out.XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_non_null(mkdtemp(outside));
    put(outside, "secret", "the outside world\n");
    char p[256], q[256];
    snprintf(p, sizeof(p), "%s/src", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/.git", root);
    mkdir(p, 0755);
    put(root, ".git/config", "[core]\n");
    put(root, "src/calc.py", "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n");
    put(root, "README.md", "# calc\nadds numbers\n");
    char blob[256];
    snprintf(blob, sizeof(blob), "%s/blob.bin", root);
    FILE *b = fopen(blob, "w");
    assert_non_null(b);
    fwrite("ab\0cd", 1, 5, b);
    fclose(b);
    snprintf(p, sizeof(p), "%s/secret", outside);
    snprintf(q, sizeof(q), "%s/link", root);
    assert_int_equal(symlink(p, q), 0);
    snprintf(q, sizeof(q), "%s/src/linkdir", root);
    assert_int_equal(symlink(outside, q), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", root, outside);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int call(strbuf_t *a, const char *tool, const char *json)
{
    json_error_t e;
    json_t *args = json_loads(json, 0, &e);
    assert_non_null(args);
    strbuf_free(a);
    int rc = agent_tool_call(a, root, tool, args);
    json_decref(args);
    return rc;
}

static void test_paths_stay_inside(void **state)
{
    (void)state;
    strbuf_t a = STRBUF_INIT;
    char buf[512];
    /* climbing out, however spelled */
    assert_int_equal(call(&a, "read_file", "{\"path\":\"../../etc/passwd\"}"), -1);
    assert_non_null(strstr(a.data, "refused"));
    assert_int_equal(call(&a, "read_file", "{\"path\":\"src/../../x\"}"), -1);
    assert_int_equal(call(&a, "read_file", "{\"path\":\"/etc/passwd\"}"), -1);
    assert_non_null(strstr(a.data, "refused"));
    /* a symbolic link committed to the repository, to a file or a directory outside */
    assert_int_equal(call(&a, "read_file", "{\"path\":\"link\"}"), -1);
    assert_non_null(strstr(a.data, "symbolic link"));
    assert_null(strstr(a.data, "outside world"));
    assert_int_equal(call(&a, "read_file", "{\"path\":\"src/linkdir/secret\"}"), -1);
    assert_non_null(strstr(a.data, "symbolic link"));
    assert_int_equal(call(&a, "write_file", "{\"path\":\"src/linkdir/planted\",\"content\":\"x\"}"), -1);
    assert_null(get(outside, "planted"));
    assert_int_equal(call(&a, "write_file", "{\"path\":\"link\",\"content\":\"overwritten\"}"), -1);
    assert_string_equal(get(outside, "secret"), "the outside world\n");
    assert_int_equal(call(&a, "edit_file", "{\"path\":\"link\",\"old\":\"outside\",\"new\":\"x\"}"), -1);
    assert_int_equal(call(&a, "list_files", "{\"path\":\"src/linkdir\"}"), -1);
    assert_int_equal(call(&a, "search", "{\"pattern\":\"outside\",\"path\":\"src/linkdir\"}"), -1);
    /* .git is not the agent's */
    assert_int_equal(call(&a, "read_file", "{\"path\":\".git/config\"}"), -1);
    assert_int_equal(call(&a, "write_file", "{\"path\":\"src/../.git/hooks/pre-commit\",\"content\":\"x\"}"), -1);
    snprintf(buf, sizeof(buf), "%s/.git/hooks", root);
    assert_int_equal(access(buf, F_OK), -1);
    /* the same through the open primitive */
    int fd = open(root, O_PATH | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(agent_tool_open(fd, "link", O_RDONLY, 0), -1);
    assert_int_equal(errno, ELOOP);
    assert_int_equal(agent_tool_open(fd, "a/../../b", O_RDONLY, 0), -1);
    assert_int_equal(errno, EPERM);
    int ok = agent_tool_open(fd, "./src//calc.py", O_RDONLY, 0);
    assert_true(ok >= 0);
    close(ok);
    close(fd);
    strbuf_free(&a);
}

static void test_list_and_search(void **state)
{
    (void)state;
    strbuf_t a = STRBUF_INIT;
    assert_int_equal(call(&a, "list_files", "{}"), 0);
    assert_non_null(strstr(a.data, "README.md\n"));
    assert_non_null(strstr(a.data, "src/\n"));
    assert_non_null(strstr(a.data, "src/calc.py\n"));
    assert_non_null(strstr(a.data, "link (symlink)\n"));
    assert_null(strstr(a.data, ".git"));
    assert_null(strstr(a.data, "secret")); /* not followed */
    assert_int_equal(call(&a, "search", "{\"pattern\":\"return a [-+] b\"}"), 0);
    assert_non_null(strstr(a.data, "src/calc.py:2:     return a - b\n"));
    assert_non_null(strstr(a.data, "src/calc.py:6:     return a - b\n"));
    assert_int_equal(call(&a, "search", "{\"pattern\":\"core\"}"), 0);
    assert_non_null(strstr(a.data, "no match"));
    assert_int_equal(call(&a, "search", "{\"pattern\":\"(\"}"), -1);
    assert_non_null(strstr(a.data, "not a valid"));
    strbuf_free(&a);
}

static void test_read_write_edit(void **state)
{
    (void)state;
    strbuf_t a = STRBUF_INIT;
    assert_int_equal(call(&a, "read_file", "{\"path\":\"src/calc.py\",\"start_line\":2,\"end_line\":3}"), 0);
    assert_string_equal(a.data, "2\t    return a - b\n3\t\n(lines 2-3 of 6)\n");
    assert_int_equal(call(&a, "read_file", "{\"path\":\"blob.bin\"}"), 0);
    assert_non_null(strstr(a.data, "binary"));
    assert_int_equal(call(&a, "read_file", "{\"path\":\"nope.c\"}"), -1);
    assert_non_null(strstr(a.data, "no such file"));
    /* edit_file: exactly one match, or nothing changes */
    assert_int_equal(call(&a, "edit_file", "{\"path\":\"src/calc.py\",\"old\":\"return a - b\",\"new\":\"x\"}"), -1);
    assert_non_null(strstr(a.data, "more than once"));
    assert_int_equal(call(&a, "edit_file", "{\"path\":\"src/calc.py\",\"old\":\"return a * b\",\"new\":\"x\"}"), -1);
    assert_non_null(strstr(a.data, "does not occur"));
    assert_int_equal(call(&a, "edit_file",
                          "{\"path\":\"src/calc.py\",\"old\":\"add(a, b):\\n    return a - b\",\"new\":\"add(a, b):\\n    "
                          "return a + b\"}"),
                     0);
    assert_string_equal(a.data, "edited src/calc.py at line 1: 2 lines replaced by 2");
    assert_string_equal(get(root, "src/calc.py"),
                        "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n");
    /* write_file makes the directories on the way */
    assert_int_equal(call(&a, "write_file", "{\"path\":\"tests/unit/test_calc.py\",\"content\":\"assert True\\n\"}"), 0);
    assert_string_equal(get(root, "tests/unit/test_calc.py"), "assert True\n");
    assert_int_equal(call(&a, "write_file", "{\"path\":\"x.txt\"}"), -1);
    assert_int_equal(call(&a, "no_such_tool", "{}"), -2);
    strbuf_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_paths_stay_inside), cmocka_unit_test(test_list_and_search),
                                       cmocka_unit_test(test_read_write_edit)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
