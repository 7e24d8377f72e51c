/*
 * test_mention — the rules of mention.h as one table of comment bodies a
 * person might post, run by one loop, plus hostile inputs of a mebibyte each
 * that must come back in linear time (run them; a quadratic reader would
 * take minutes, not milliseconds).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook/mention.h"

#define NONE MENTION_NONE
#define FIX MENTION_FIX
#define HELP MENTION_HELP
#define STOP MENTION_STOP
#define REVIEW MENTION_REVIEW
#define ASK MENTION_ASK

typedef struct {
    const char *text;
    const char *handle; /* NULL: "patchbay" */
    mention_command_t command;
    const char *instruction;
} mention_case_t;

static const mention_case_t cases[] = {
    /* plain mentions, start and end of text, whitespace, case */
    {"@patchbay", NULL, FIX, ""},
    {"@patchbay fix the typo in README", NULL, FIX, "fix the typo in README"},
    {"  @patchbay   fix the typo  \n\n", NULL, FIX, "fix the typo"},
    {"Thanks! @patchbay", NULL, FIX, ""},
    {"@PatchBay fix it", NULL, FIX, "fix it"},
    {"@patchbay\tfix it", NULL, FIX, "fix it"},
    {"", NULL, NONE, ""},
    {"@", NULL, NONE, ""},
    {"@patch", NULL, NONE, ""},
    {"patchbay fix it", NULL, NONE, ""},

    /* punctuation around the mention */
    {"Hey @patchbay, please fix this", NULL, FIX, "please fix this"},
    {"@patchbay: add a test for the parser", NULL, FIX, "add a test for the parser"},
    {"cc @patchbay.", NULL, FIX, ""},
    {"@patchbay! fix it", NULL, FIX, "fix it"},
    {"@patchbay... fix it", NULL, FIX, "fix it"},
    {"(@patchbay) fix it", NULL, FIX, "fix it"},
    {"[@patchbay] fix it", NULL, FIX, "fix it"},
    {"\"@patchbay\" fix it", NULL, FIX, "\" fix it"},
    {"**@patchbay** fix the tests", NULL, FIX, "fix the tests"},
    {"a;@patchbay fix", NULL, FIX, "fix"},
    {"\xE2\x80\x94@patchbay fix", NULL, FIX, "fix"}, /* em dash before */

    /* not a mention: addresses, longer handles, teams, paths, escapes */
    {"mail foo@patchbay.com about it", NULL, NONE, ""},
    {"x@patchbay fix", NULL, NONE, ""},
    {"@patchbay.com is our domain", NULL, NONE, ""},
    {"@patchbay-dev fix", NULL, NONE, ""},
    {"@patchbay_x fix", NULL, NONE, ""},
    {"@patchbay2 fix", NULL, NONE, ""},
    {"@patchbay/core fix", NULL, NONE, ""},
    {"@patchbay@example fix", NULL, NONE, ""},
    {"@@patchbay fix", NULL, NONE, ""},
    {"see a.@patchbay", NULL, NONE, ""},
    {"https://github.com/@patchbay fix", NULL, NONE, ""},
    {"_@patchbay fix", NULL, NONE, ""},
    {"-@patchbay fix", NULL, NONE, ""},
    {"\\@patchbay fix", NULL, NONE, ""},
    {"jos\xC3\xA9@patchbay fix", NULL, NONE, ""},
    {"@patchbay\xC3\xA9 fix", NULL, NONE, ""},
    {"@patchbay-dev is not it but @patchbay is", NULL, FIX, "is"},

    /* inline code spans */
    {"`@patchbay fix`", NULL, NONE, ""},
    {"use `@patchbay` then @patchbay fix", NULL, FIX, "fix"},
    {"``code with ` @patchbay``", NULL, NONE, ""},
    {"`` @patchbay ` `` @patchbay go", NULL, FIX, "go"},
    {"` unmatched @patchbay fix", NULL, FIX, "fix"},
    {"``unmatched `@patchbay` @patchbay go", NULL, FIX, "go"},
    {"it's `@patchbay", NULL, NONE, ""}, /* a backtick glued to it */
    {"`x`@patchbay", NULL, NONE, ""},
    {"`a span\nover lines @patchbay`", NULL, NONE, ""},
    {"`not across\n\n@patchbay fix`", NULL, FIX, "fix`"},
    {"\\` @patchbay fix `", NULL, FIX, "fix `"}, /* escaped: no span */
    {"```inline``` @patchbay go", NULL, FIX, "go"},

    /* fenced code blocks */
    {"```\n@patchbay fix\n```\n", NULL, NONE, ""},
    {"```\n@patchbay no\n```\n@patchbay yes", NULL, FIX, "yes"},
    {"```c\n@patchbay no\n```\n@patchbay yes", NULL, FIX, "yes"},
    {"~~~\n@patchbay no\n~~~\n@patchbay yes", NULL, FIX, "yes"},
    {"~~~\n@patchbay no\n```\n@patchbay still code\n", NULL, NONE, ""},
    {"```\n@patchbay no\n~~~\n@patchbay still code\n", NULL, NONE, ""},
    {"```\n@patchbay no\n``\n@patchbay still code\n", NULL, NONE, ""},
    {"````\n```\n@patchbay no\n````\n@patchbay yes", NULL, FIX, "yes"},
    {"```\n@patchbay no\n`````\n@patchbay yes", NULL, FIX, "yes"},
    {"   ```\n@patchbay no\n   ```\n@patchbay yes", NULL, FIX, "yes"},
    {"    ```\n@patchbay yes", NULL, FIX, "yes"}, /* four spaces: no fence */
    {"```\n@patchbay no\n``` not a close\n@patchbay no\n", NULL, NONE, ""},
    {"```sh\nmake\n@patchbay no", NULL, NONE, ""},  /* unclosed */
    {"``` x ```\n@patchbay yes", NULL, FIX, "yes"}, /* backtick in info: inline code */
    {"text\n```\n@patchbay no\n```", NULL, NONE, ""},

    /* quoted lines */
    {"> @patchbay fix", NULL, NONE, ""},
    {"> > @patchbay fix", NULL, NONE, ""},
    {">> @patchbay fix", NULL, NONE, ""},
    {"   > @patchbay fix", NULL, NONE, ""},
    {"> @patchbay old\n\n@patchbay new", NULL, FIX, "new"},
    {"> @patchbay old\n@patchbay new", NULL, FIX, "new"},
    {"> > @patchbay old\n> reply\nmine: @patchbay stop", NULL, STOP, ""},
    {"a > @patchbay fix", NULL, FIX, "fix"},
    {"> ```\n@patchbay yes", NULL, FIX, "yes"}, /* a fence in a quote ends with it */

    /* HTML comments */
    {"<!-- @patchbay fix -->", NULL, NONE, ""},
    {"<!--\n@patchbay fix\n-->\n@patchbay real", NULL, FIX, "real"},
    {"<!-- unclosed\n\n@patchbay fix", NULL, NONE, ""},
    {"<!-- x --> @patchbay go", NULL, FIX, "go"},
    {"<!--> @patchbay go", NULL, FIX, "go"},
    {"<!---> @patchbay go", NULL, FIX, "go"},
    {"`<!--` @patchbay go", NULL, FIX, "go"},
    {"<!-- `x --> @patchbay go", NULL, FIX, "go"},
    {"<!--\n> quoted\n```\n-->\n@patchbay go", NULL, FIX, "go"},
    {"`\n<!--\nx\n-->\n@patchbay go`", NULL, FIX, "go`"}, /* a comment block ends the paragraph */
    {"<!-- c --> ` @patchbay go`", NULL, FIX, "go`"},     /* the rest of an HTML block's line is not Markdown */
    {"x <!-- c --> ` @patchbay go`", NULL, NONE, ""},     /* but after an inline comment it is */
    {"<!--\nc\n--> ` @patchbay go`", NULL, FIX, "go`"},
    {"x <!-- a\n```\n--> @patchbay no\n```", NULL, NONE, ""}, /* an inline comment closes in its paragraph */
    {"x <!-- a\nb --> @patchbay go", NULL, FIX, "go"},
    {"<!-- a\n\n```\n--> @patchbay go\n```", NULL, FIX, "go\n```"}, /* a comment block does not */

    /* CRLF and lone CR */
    {"@patchbay fix\r\nthe build\r\n", NULL, FIX, "fix\r\nthe build"},
    {"```\r\n@patchbay no\r\n```\r\n@patchbay help\r\n", NULL, HELP, ""},
    {"> quoted\r\n@patchbay stop\r\n", NULL, STOP, ""},
    {"`span\r\n@patchbay`", NULL, NONE, ""},
    {"`not\r\n\r\n@patchbay go", NULL, FIX, "go"},
    {"```\r@patchbay no\r```\r@patchbay yes", NULL, FIX, "yes"},

    /* commands */
    {"@patchbay help", NULL, HELP, ""},
    {"@PATCHBAY HELP", NULL, HELP, ""},
    {"@patchbay stop", NULL, STOP, ""},
    {"@patchbay review", NULL, REVIEW, ""},
    {"@patchbay Review please focus on auth", NULL, REVIEW, "please focus on auth"},
    {"@patchbay stop it now\n", NULL, STOP, "it now"},
    {"@patchbay review: focus on the parser", NULL, REVIEW, "focus on the parser"},
    {"@patchbay review.", NULL, REVIEW, ""},
    {"@patchbay stop!", NULL, STOP, ""},
    {"@patchbay: review", NULL, REVIEW, ""},
    {"@patchbay, help?", NULL, HELP, ""},
    {"@patchbay\n\nreview the locking", NULL, REVIEW, "the locking"},
    {"@patchbay reviewer needed", NULL, FIX, "reviewer needed"},
    {"@patchbay helpful hint: x", NULL, FIX, "helpful hint: x"},
    {"@patchbay stopwatch is broken", NULL, FIX, "stopwatch is broken"},
    {"@patchbay stop-gap fix please", NULL, FIX, "stop-gap fix please"},
    {"@patchbay review.md is stale", NULL, FIX, "review.md is stale"},
    {"@patchbay please review", NULL, FIX, "please review"},
    {"@patchbay `review`", NULL, FIX, "`review`"},

    /* instructions */
    {"@patchbay please:\n- fix A\n- fix B\n", NULL, FIX, "please:\n- fix A\n- fix B"},
    {"@patchbay fix A\n@patchbay stop", NULL, FIX, "fix A\n@patchbay stop"},
    {"```\n@patchbay help\n```\n@patchbay fix it like\n```\ncode\n```", NULL, FIX, "fix it like\n```\ncode\n```"},
    {"@patchbay \n\t \r\n", NULL, FIX, ""},

    /* a custom handle */
    {"@my-bot fix", "my-bot", FIX, "fix"},
    {"@MY-BOT review", "my-bot", REVIEW, ""},
    {"@my-bot-dev fix", "my-bot", NONE, ""},
    {"@my fix", "my-bot", NONE, ""},
    {"@patchbay fix", "my-bot", NONE, ""},
    {"@patchbay and @my-bot: stop", "my-bot", STOP, ""},
};

/* Newlines and tabs shown escaped, so a failing case reads on one line. */
static const char *show(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *s != '\0' && o + 5 < cap; s++) {
        if (*s == '\n' || *s == '\r' || *s == '\t') {
            buf[o++] = '\\';
            buf[o++] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
        } else {
            buf[o++] = *s;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Runs mention_find on a heap copy of exactly len bytes, so ASan catches a
 * read past the end, and checks what must hold for every answer. */
static mention_command_t run(const char *text, size_t len, const char *handle, mention_t *m)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    mention_command_t c = mention_find(copy, len, handle, m);
    assert_int_equal(c, m->command);
    if (c != MENTION_NONE) {
        assert_true(m->at < len && copy[m->at] == '@');
        assert_true(m->instruction >= copy && m->instruction_len <= len &&
                    (size_t)(m->instruction - copy) <= len - m->instruction_len);
        /* point back into the caller's text, not the copy, for comparisons */
        m->instruction = text + (m->instruction - copy);
    }
    free(copy);
    return c;
}

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const mention_case_t *t = &cases[i];
        mention_t m;
        mention_command_t c = run(t->text, strlen(t->text), t->handle ? t->handle : "patchbay", &m);
        if (c != t->command || m.instruction_len != strlen(t->instruction) ||
            memcmp(m.instruction, t->instruction, m.instruction_len) != 0) {
            char a[512], b[512], d[512];
            char got[512];
            snprintf(got, sizeof(got), "%.*s", (int)m.instruction_len, m.instruction);
            print_error("case %zu: \"%s\" (handle %s): want %s \"%s\", got %s \"%s\"\n", i, show(t->text, a, sizeof(a)),
                        t->handle ? t->handle : "patchbay", mention_command_name(t->command),
                        show(t->instruction, b, sizeof(b)), mention_command_name(c), show(got, d, sizeof(d)));
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_offsets(void **state)
{
    (void)state;
    mention_t m;
    const char *text = "> @patchbay old\n`@patchbay` x@patchbay @patchbay review now";
    assert_int_equal(mention_find(text, strlen(text), "patchbay", &m), MENTION_REVIEW);
    assert_int_equal(m.at, strlen("> @patchbay old\n`@patchbay` x@patchbay "));
    assert_ptr_equal(m.instruction, text + strlen(text) - 3);
    assert_int_equal(m.instruction_len, 3);

    /* the empty instruction still points into the text, at its end */
    assert_int_equal(mention_find("@patchbay", 9, "patchbay", &m), MENTION_FIX);
    assert_int_equal(m.instruction_len, 0);

    /* nothing found: at 0 and an empty instruction */
    assert_int_equal(mention_find("nothing here", 12, "patchbay", &m), MENTION_NONE);
    assert_int_equal(m.at, 0);
    assert_non_null(m.instruction);
    assert_int_equal(m.instruction_len, 0);
}

static void test_length_is_respected(void **state)
{
    (void)state;
    mention_t m;
    /* what lies past len is not part of the comment */
    assert_int_equal(run("@patchbay2 fix", 9, "patchbay", &m), MENTION_FIX);
    assert_int_equal(m.instruction_len, 0);
    assert_int_equal(run("@patchbay helpful", 14, "patchbay", &m), MENTION_HELP);
    assert_int_equal(run("@patchba", 8, "patchbay", &m), MENTION_NONE);
    assert_int_equal(run("`x @patchbay go`", 15, "patchbay", &m), MENTION_FIX);
    assert_int_equal(run("<!-- x -", 8, "patchbay", &m), MENTION_NONE);
    assert_int_equal(mention_find(NULL, 0, "patchbay", &m), MENTION_NONE);
    assert_int_equal(mention_find("@patchbay", 9, "", &m), MENTION_NONE);
}

/* "ask" and "fix" as words: ask's question is what follows the word; fix
 * keeps its word (the agent reads "fix the test"), and both say the person
 * chose the kind. */
static void test_ask_and_fix_words(void **state)
{
    (void)state;
    mention_t m;
    assert_int_equal(run("@patchbay ask why does add() return -1?", 39, "patchbay", &m), ASK);
    assert_int_equal(m.instruction_len, 25);
    assert_memory_equal(m.instruction, "why does add() return -1?", 25);
    assert_true(m.worded);
    assert_int_equal(run("@patchbay: Ask, is this thread-safe", 35, "patchbay", &m), ASK);
    assert_memory_equal(m.instruction, "is this thread-safe", 19);
    assert_int_equal(run("@patchbay ask", 13, "patchbay", &m), ASK);
    assert_int_equal(m.instruction_len, 0);
    assert_int_equal(run("@patchbay fix why the test flakes", 33, "patchbay", &m), FIX);
    assert_true(m.worded);
    assert_memory_equal(m.instruction, "fix why the test flakes", 23);
    /* not the words: a longer word, or a request that merely starts like one */
    assert_int_equal(run("@patchbay asking around: is it safe?", 36, "patchbay", &m), FIX);
    assert_false(m.worded);
    assert_int_equal(run("@patchbay fixes #3 please", 25, "patchbay", &m), FIX);
    assert_false(m.worded);
    assert_int_equal(run("@patchbay why?", 14, "patchbay", &m), FIX);
    assert_false(m.worded);
}

/* The question rule of mention.h, as README states it. */
static void test_question_rule(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int question;
    } rule[] = {
        /* ends with '?' */
        {"does add() handle overflow?", 1},
        {"the parser: thread-safe?  \n", 1},
        {"add() returns -1 for 2 and 3?", 1},
        /* starts with a question word, whatever its case and what follows it */
        {"why does add() return -1", 1},
        {"What's the retry policy", 1},
        {"HOW are tokens refreshed", 1},
        {"where is the config read", 1},
        {"which module owns the queue", 1},
        {"who calls jscan_scan", 1},
        {"when does the spool drain", 1},
        {"can the reaper lose a job", 1},
        {"could this deadlock", 1},
        {"is this thread-safe", 1},
        {"are retries jittered", 1},
        {"should we cache this", 1},
        {"explain the retry logic", 1},
        {"why: the test flakes", 1},
        /* the word fix, anywhere on the first line, makes it a fix */
        {"fix the parser", 0},
        {"how do I fix the flaky test?", 0},
        {"can you fix this?", 0},
        {"Fix: why does it crash?", 0},
        {"is the fix(es) right?", 0},
        /* not questions: orders, and words that only start like question words */
        {"make add() add", 0},
        {"do the rename", 0},
        {"issue a warning when it fails", 0},
        {"however you like, rename it", 0},
        {"whatever, add a test", 0},
        {"canonicalize the paths", 0},
        {"", 0},
        {"   ", 0},
        /* only the first line counts */
        {"add a test\nwhy? because it broke twice", 0},
        {"why does it crash\nfix it if you can", 1},
        /* fix glued into a longer word is not the word */
        {"is prefix handling right", 1},
        {"are fixtures shared?", 1},
    };
    for (size_t i = 0; i < sizeof(rule) / sizeof(rule[0]); i++)
        if (mention_is_question(rule[i].text, strlen(rule[i].text)) != rule[i].question)
            fail_msg("case %zu \"%s\": want %s", i, rule[i].text, rule[i].question ? "a question" : "not one");
    assert_false(mention_is_question(NULL, 0));
    /* the length is respected: the '?' past it is not seen */
    assert_false(mention_is_question("add it?", 6));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(mention_command_name(MENTION_NONE), "none");
    assert_string_equal(mention_command_name(MENTION_FIX), "fix");
    assert_string_equal(mention_command_name(MENTION_HELP), "help");
    assert_string_equal(mention_command_name(MENTION_STOP), "stop");
    assert_string_equal(mention_command_name(MENTION_REVIEW), "review");
    assert_string_equal(mention_command_name(MENTION_ASK), "ask");
}

/* ------------------------------------------------------------------------- */
/* Hostile input: a mebibyte of the worst we could think of                  */
/* ------------------------------------------------------------------------- */

#define HOSTILE_BYTES (1024 * 1024)

typedef struct {
    char *p;
    size_t len;
} big_t;

static void big_add(big_t *b, const char *s, size_t n)
{
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* prefix, then unit repeated to fill a mebibyte, then suffix */
static big_t big_make(const char *prefix, const char *unit, const char *suffix)
{
    size_t up = strlen(unit), sp = strlen(suffix);
    big_t b = {malloc(HOSTILE_BYTES + strlen(prefix) + sp + up), 0};
    assert_non_null(b.p);
    big_add(&b, prefix, strlen(prefix));
    while (b.len + up <= HOSTILE_BYTES)
        big_add(&b, unit, up);
    big_add(&b, suffix, sp);
    return b;
}

/* Every hostile case that finds a mention ends in "@patchbay go". */
static mention_command_t big_run(const char *prefix, const char *unit, const char *suffix, mention_t *m)
{
    big_t b = big_make(prefix, unit, suffix);
    mention_command_t c = run(b.p, b.len, "patchbay", m);
    if (c != MENTION_NONE) {
        assert_int_equal(m->instruction_len, 2);
        assert_memory_equal(m->instruction, "go", 2);
    }
    free(b.p);
    return c;
}

static void test_hostile(void **state)
{
    (void)state;
    mention_t m;
    assert_int_equal(big_run("", "@", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "@", " @patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "`", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "`", " @patchbay go", &m), MENTION_NONE); /* a fence line */
    assert_int_equal(big_run("x", "`", " @patchbay go", &m), MENTION_FIX); /* too long to open a span */
    assert_int_equal(big_run("```\n", "@patchbay fix\n", "", &m), MENTION_NONE);
    assert_int_equal(big_run("```\n", "@patchbay ", "\n```\n@patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "<!--", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "<!--", "--> @patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "> @patchbay\r\n", "@patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "x@patchbay ", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "@patchbay-", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "` ", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "`a\n", "@patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "`a\n\n", "@patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "\\", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "\n", "", &m), MENTION_NONE);
    assert_int_equal(big_run("", "\r", "@patchbay go", &m), MENTION_FIX);
    assert_int_equal(big_run("", "```x`\n", "", &m), MENTION_NONE);
    assert_int_equal(big_run("~~~\n", "~~\n", "", &m), MENTION_NONE);

    /* Backtick runs of every length, each once: no run finds its closer, so
     * a reader that searched afresh for each would read the paragraph once
     * per run. */
    char *p = malloc(HOSTILE_BYTES + 64);
    assert_non_null(p);
    size_t len = 0;
    for (size_t k = 1; len + k + 1 + 32 < HOSTILE_BYTES; k++) {
        memset(p + len, '`', k);
        len += k;
        p[len++] = 'x';
    }
    memcpy(p + len, " @patchbay go", 13);
    len += 13;
    assert_int_equal(run(p, len, "patchbay", &m), MENTION_FIX);
    /* runs short enough to open spans, lengths 1..80 over and over: every
     * closer is a whole cycle away */
    len = 0;
    while (len + 2 * 81 * 82 + 64 < HOSTILE_BYTES) {
        for (size_t k = 1; k <= 80; k++) {
            memset(p + len, '`', k);
            len += k;
            p[len++] = ' ';
        }
    }
    memcpy(p + len, "@patchbay go", 12);
    len += 12;
    run(p, len, "patchbay", &m);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table), cmocka_unit_test(test_offsets), cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_names), cmocka_unit_test(test_hostile), cmocka_unit_test(test_ask_and_fix_words),
        cmocka_unit_test(test_question_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
