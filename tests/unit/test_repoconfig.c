/* repoconfig: .github/patchbay.yml, and errors that tell a repository owner what to fix. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jobs/workspace/repoconfig.h"

static int parse(repoconfig_t *c, const char *text, char *err)
{
    return repoconfig_parse(c, text, text ? strlen(text) : 0, err, REPOCONFIG_ERR_BYTES);
}

static void test_defaults(void **state)
{
    (void)state;
    repoconfig_t c;
    char err[REPOCONFIG_ERR_BYTES];
    assert_int_equal(parse(&c, NULL, err), 0);
    assert_null(c.setup[0]);
    assert_null(c.test);
    assert_string_equal(c.forbidden[0], ".github/workflows/**");
    assert_string_equal(c.branch_prefix, "patchbay/");
    assert_int_equal(c.draft, 0);
    assert_int_equal(c.review.auto_review, 0);
    assert_null(c.agent.command);
    assert_int_equal(c.agent.test_rounds, -1);
    repoconfig_free(&c);
    assert_int_equal(parse(&c, "# nothing set\n", err), 0);
    repoconfig_free(&c);
}

static void test_everything(void **state)
{
    (void)state;
    repoconfig_t c;
    char err[REPOCONFIG_ERR_BYTES];
    const char *yml = "setup:\n  - npm ci\n  - npm run build\n"
                      "test: npm test -- --ci\n"
                      "forbidden_paths: [secrets/**, \"*.pem\"]\n"
                      "branch_prefix: bot/\n"
                      "draft: yes\n"
                      "review: { auto: true, drafts: false, request_changes: true, synchronize: true }\n"
                      "agent:\n  backend: openai\n  command: aider --yes\n  timeout: 600\n  test_rounds: 3\n"
                      "  network: false\n  openai: { model: gpt-4.1, base_url: \"http://127.0.0.1:8000/v1\" }\n"
                      "ask: { timeout: 300, max_steps: 30 }\n";
    assert_int_equal(parse(&c, yml, err), 0);
    assert_int_equal(c.nsetup, 2);
    assert_string_equal(c.setup[1], "npm run build");
    assert_string_equal(c.test, "npm test -- --ci");
    assert_int_equal(c.nforbidden, 2);
    assert_string_equal(c.forbidden[1], "*.pem");
    assert_string_equal(c.branch_prefix, "bot/");
    assert_int_equal(c.draft, 1);
    assert_int_equal(c.review.auto_review, 1);
    assert_int_equal(c.review.request_changes, 1);
    assert_int_equal(c.review.synchronize, 1);
    assert_string_equal(c.agent.backend, "openai");
    assert_string_equal(c.agent.command[0], "aider");
    assert_string_equal(c.agent.command[1], "--yes");
    assert_null(c.agent.command[2]);
    assert_int_equal(c.agent.timeout, 600);
    assert_int_equal(c.agent.test_rounds, 3);
    assert_int_equal(c.agent.network, 0);
    assert_string_equal(c.agent.model, "gpt-4.1");
    assert_int_equal(c.ask.timeout, 300);
    assert_int_equal(c.ask.max_steps, 30);
    repoconfig_free(&c);
}

static void test_errors_name_the_key_and_line(void **state)
{
    (void)state;
    static const struct {
        const char *yml, *want;
    } cases[] = {
        {"tests: make\n", "line 1: key 'tests': is not a patchbay setting here (known: setup, test,"},
        {"test: make\ndraft: maybe\n", "line 2: key 'draft': must be true or false"},
        {"review:\n  auto: true\n  autoo: true\n", "line 3: key 'autoo': is not a patchbay setting here (known: auto,"},
        {"agent:\n  timeout: forever\n", "line 2: key 'timeout': must be a whole number from 1 to 604800"},
        {"agent:\n  test_rounds: 99\n", "key 'test_rounds': must be a whole number from 0 to 10"},
        {"agent: { backend: magic }\n", "key 'backend': must be command or openai"},
        /* a repository names a program; it never brings one */
        {"agent:\n  command: [./.patchbay-agent.py]\n", "line 2: key 'command': must start with the name of a program"},
        {"agent:\n  command: ../../usr/bin/env sh\n", "key 'command': must start with the name of a program"},
        {"agent:\n  command: [/tmp/evil]\n", "key 'command': must start with the name of a program"},
        {"setup: { a: b }\n", "key 'setup': must be a list of texts"},
        {"setup: [ok, [nested]]\n", "key 'setup': must be a list of texts"},
        {"review: true\n", "key 'review': must be a mapping of keys"},
        {"branch_prefix: ../main\n", "key 'branch_prefix': must be a branch prefix"},
        {"branch_prefix: x\n", "key 'branch_prefix': must be a branch prefix"},
        {"agent: { openai: { base_url: file:///etc } }\n", "key 'base_url': must be an http:// or https:// URL"},
        {"ask:\n  timeout: 0\n", "line 2: key 'timeout': must be a whole number from 1 to 604800"},
        {"ask: { max_tokens: 5 }\n", "key 'max_tokens': is not a patchbay setting here (known: timeout, max_steps)"},
        {"test: [a\n", "not valid YAML"},
        {"- just\n- a list\n", "key '(top level)': must be a mapping of keys"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        repoconfig_t c;
        char err[REPOCONFIG_ERR_BYTES];
        assert_int_equal(parse(&c, cases[i].yml, err), -1);
        if (strstr(err, cases[i].want) == NULL) {
            print_error("case %zu: got \"%s\", want \"%s\"\n", i, err, cases[i].want);
            fail();
        }
        /* defaults after an error: nothing half-applied */
        assert_string_equal(c.branch_prefix, "patchbay/");
        repoconfig_free(&c);
    }
}

static void test_too_big(void **state)
{
    (void)state;
    static char big[REPOCONFIG_MAX_BYTES + 10];
    memset(big, '#', sizeof(big) - 1);
    repoconfig_t c;
    char err[REPOCONFIG_ERR_BYTES];
    assert_int_equal(repoconfig_parse(&c, big, sizeof(big) - 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "over 64 KiB"));
    repoconfig_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults), cmocka_unit_test(test_everything),
                                       cmocka_unit_test(test_errors_name_the_key_and_line),
                                       cmocka_unit_test(test_too_big)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
