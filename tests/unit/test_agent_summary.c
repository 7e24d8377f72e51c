/*
 * test_agent_summary — the summary and title a pull request gets from what
 * an agent CLI printed. The outputs in tests/unit/data/agent_output/ are the
 * real CLIs' (Codex 0.171.0, opencode 1.18.33, Gemini CLI 0.61.0, Qwen Code
 * 0.24.4, Claude Code 2.1.332; stdout and stderr merged, as patchbay keeps
 * them), captured with tests/tools/try_agent_cli.py under bubblewrap: each
 * CLI fixed add() and answered "Make add() return a + b" with a body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/common/fileio.h"
#include "jobs/agent/agent_summary.h"

#define ANSWER_TITLE "Make add() return a + b"
#define ANSWER                                                                                                         \
    "Make add() return a + b\n\nadd() in calc.py returned the wrong value; it now returns a + b.\n\nTests: `python3 " \
    "-m unittest` passes."

static char *captured(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/unit/data/agent_output/%s.log", TESTS_DIR, name);
    char *text = fileio_read(path, 1 << 20, len);
    if (text == NULL)
        fail_msg("cannot read %s", path);
    return text;
}

static char *title_of(const char *summary)
{
    static char t[AGENT_TITLE_MAX_BYTES + 1];
    return agent_summary_title(t, sizeof(t), summary) == 0 ? t : NULL;
}

/* The whole output as the tail (these runs were short), and the answer picked from it. */
static void check_output(const char *name)
{
    size_t len = 0;
    char *out = captured(name, &len);
    char *s = agent_summary_from_output(out, len, 0);
    assert_non_null(s);
    if (strcmp(s, ANSWER) != 0)
        fail_msg("%s: summary from the output is\n---\n%s\n---", name, s);
    assert_string_equal(title_of(s), ANSWER_TITLE);
    free(s);
    free(out);
}

static void test_codex_banner_is_never_the_title(void **state)
{
    (void)state;
    size_t len = 0;
    char *out = captured("codex", &len);
    /* what an output-tail fallback took before: the first line, the banner */
    assert_true(strncmp(out, "OpenAI Codex v0.171.0\n", 22) == 0);
    free(out);
    check_output("codex");
}

static void test_codex_without_a_last_message(void **state)
{
    (void)state;
    /* Codex ends with "tokens used", the count, then its last message; an
     * empty last message leaves the count last: no answer, no title (the
     * caller names the change after the issue) */
    size_t len = 0;
    char *out = captured("codex", &len);
    char *count = strstr(out, "tokens used\n76,049\n");
    assert_non_null(count);
    count[strlen("tokens used\n76,049\n")] = '\0';
    char *s = agent_summary_from_output(out, strlen(out), 0);
    assert_string_equal(s, "");
    assert_null(title_of(s));
    /* nor does the transcript before it give one: the prompt, commands, a diff */
    assert_null(title_of("OpenAI Codex v0.171.0\n--------\nworkdir: /tmp/x\nmodel: gpt\n--------\nuser\n"));
    free(s);
    free(out);
}

static void test_codex_tail_cut_mid_line(void **state)
{
    (void)state;
    size_t len = 0;
    char *out = captured("codex", &len);
    /* a 4 KiB tail of a long run starts inside a line: that line is dropped */
    const char *from = strstr(out, "/bin/sh -lc 'python3") + 5;
    char *s = agent_summary_from_output(from, strlen(from), 1);
    assert_string_equal(s, ANSWER);
    free(s);
    free(out);
}

static void test_opencode_ansi_is_never_the_title(void **state)
{
    (void)state;
    size_t len = 0;
    char *out = captured("opencode", &len);
    assert_true(strncmp(out, "\x1b[0m\n", 5) == 0); /* its output opens with an escape */
    free(out);
    check_output("opencode");
}

static void test_warnings_before_the_answer(void **state)
{
    (void)state;
    check_output("gemini-cli"); /* Warning: ..., YOLO mode is enabled ..., Ripgrep is not available ... */
    check_output("qwen-code");  /* Ripgrep not available: spawn ... EACCES ..., Warning: running headless ... */
    check_output("claude-code"); /* the answer and nothing else */
}

static void test_summary_file_with_escapes(void **state)
{
    (void)state;
    /* opencode's stdout kept as the summary file, coloured */
    const char *raw = "\x1b[0m\n\x1b[1mMake add() return a + b\x1b[0m\r\n\r\nadd() was wrong.\x1b]8;;https://x.test\x1b\\link"
                      "\x1b]8;;\x1b\\\x07\n";
    char *s = agent_summary_clean(raw, strlen(raw));
    assert_string_equal(s, "\nMake add() return a + b\n\nadd() was wrong.link\n");
    assert_string_equal(title_of(s), ANSWER_TITLE);
    free(s);
    /* a progress line rewritten with carriage returns, backspaces, C1 controls */
    const char *progress = "Working 10%\rWorking 99%\rDone: fixed\b\b it\n\xc2\x9b" "31mred\x1b(B\x1b" "7x";
    s = agent_summary_clean(progress, strlen(progress));
    assert_string_equal(s, "Done: fixed it\n31mredx");
    free(s);
    /* a cut escape at the very end is dropped, not shown */
    s = agent_summary_clean("ok\x1b[3", 6);
    assert_string_equal(s, "ok");
    free(s);
}

static void test_titles(void **state)
{
    (void)state;
    /* what the agent wrote first, less markdown */
    assert_string_equal(title_of("## Fix the parser\n\nbody"), "Fix the parser");
    assert_string_equal(title_of("**Make `add()` add**\n"), "Make `add()` add");
    assert_string_equal(title_of("- Handle empty input\n- and more"), "Handle empty input");
    assert_string_equal(title_of("`parse()` no longer crashes"), "`parse()` no longer crashes");
    /* titles about the change stay, even when they look a little like noise */
    assert_string_equal(title_of("Bump lodash to v4.17.21"), "Bump lodash to v4.17.21");
    assert_string_equal(title_of("fix: handle empty input"), "fix: handle empty input");
    assert_string_equal(title_of("修复加法函数"), "修复加法函数");
    assert_string_equal(title_of("Done"), "Done");
    /* what never is one */
    assert_string_equal(title_of("OpenAI Codex v0.171.0\nFix it"), "Fix it");
    assert_string_equal(title_of("Aider v0.86.1\nFix it"), "Fix it");
    assert_string_equal(title_of("2026-12-05T09:54:35.549548Z ERROR codex_api: failed\nFix it"), "Fix it");
    assert_string_equal(title_of("[WARN] deprecated\nINFO: starting\n12:01:02 tick\nFix it"), "Fix it");
    assert_string_equal(title_of("Warning: Basic terminal detected (TERM=dumb).\nFix it"), "Fix it");
    assert_string_equal(title_of("(node:12) [DEP0040] DeprecationWarning: punycode\nFix it"), "Fix it");
    assert_string_equal(title_of("--------\n═════════\n...\n42\nFix it"), "Fix it");
    assert_string_equal(title_of("Here is what I changed:\nFix it"), "Fix it");
    assert_string_equal(title_of("```diff\n-    return a - b\n+    return a + b\n```\nFix it"), "Fix it");
    assert_string_equal(title_of("    indented code\n\tmore\n$ python3 -m unittest\n-    return a\nFix it"), "Fix it");
    assert_string_equal(title_of("\xe2\x86\x92 Read calc.py\nFix it"), "Fix it");
    assert_null(title_of(""));
    assert_null(title_of(NULL));
    assert_null(title_of("\n\n  \n```\nMake add() add\n```\n"));
}

static void test_long_titles_are_cut_on_a_word(void **state)
{
    (void)state;
    char long_line[400] = "";
    for (int i = 0; i < 30; i++)
        strcat(long_line, "word€ ");
    const char *t = title_of(long_line);
    assert_non_null(t);
    size_t n = strlen(t);
    assert_true(n <= AGENT_TITLE_MAX_BYTES);
    assert_true(n > AGENT_TITLE_MAX_BYTES * 2 / 3);
    assert_true(strncmp(t + n - 3, "€", 3) == 0); /* ends on a word, a whole character */
    /* a small buffer still gets whole characters */
    char small[6];
    assert_int_equal(agent_summary_title(small, sizeof(small), "€€€€"), 0);
    assert_string_equal(small, "€");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codex_banner_is_never_the_title),
        cmocka_unit_test(test_codex_without_a_last_message),
        cmocka_unit_test(test_codex_tail_cut_mid_line),
        cmocka_unit_test(test_opencode_ansi_is_never_the_title),
        cmocka_unit_test(test_warnings_before_the_answer),
        cmocka_unit_test(test_summary_file_with_escapes),
        cmocka_unit_test(test_titles),
        cmocka_unit_test(test_long_titles_are_cut_on_a_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
