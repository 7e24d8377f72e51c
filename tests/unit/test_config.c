/*
 * test_config — loading patchbay's settings: defaults, the example file,
 * environment overrides, file selection, and the errors a user sees (each
 * with its file and line, all of them at once, never a secret's value).
 *
 * Every test runs inside a private mkdtemp directory (the current directory
 * too, since ./patchbay.yml is one of the places a config is looked for), and
 * writes its YAML there. Environments are explicit arrays, never the process's.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/common/config.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char tmp_dir[] = "/tmp/test_config.XXXXXX";
static char old_cwd[PATH_MAX];
static char example_path[PATH_MAX];

/* ---------------------------------------------------------------------------
 * Harness
 * ------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    char rel[PATH_MAX];
#ifdef TESTS_DIR
    snprintf(rel, sizeof(rel), "%s/../config/patchbay.yml", TESTS_DIR);
#else
    /* built by hand: find the example from this file's own path */
    const char *here = __FILE__;
    const char *cut = strstr(here, "unit/test_config.c");
    snprintf(rel, sizeof(rel), "%.*s../config/patchbay.yml", cut ? (int)(cut - here) : 0, here);
#endif
    if (realpath(rel, example_path) == NULL) {
        fprintf(stderr, "cannot find the example config at %s\n", rel);
        return -1;
    }
    if (getcwd(old_cwd, sizeof(old_cwd)) == NULL || mkdtemp(tmp_dir) == NULL || chdir(tmp_dir) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    /* tests remove what they write; only the fixed names may be left */
    unlink("t.yml");
    unlink("patchbay.yml");
    unlink("key.pem");
    rmdir("adir");
    if (chdir(old_cwd) != 0)
        return -1;
    return rmdir(tmp_dir);
}

static void write_file_n(const char *name, const char *text, size_t len)
{
    FILE *f = fopen(name, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_file(const char *name, const char *text)
{
    write_file_n(name, text, strlen(text));
}

typedef struct {
    int rc;
    config_t *cfg;
    config_errors_t errs;
} loaded_t;

static char *const no_env[] = {NULL};

static void print_errors(const config_errors_t *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        char *s = config_error_format(&errs->items[i]);
        print_message("  error %zu: %s\n", i, s);
        free(s);
    }
}

static void load_path(loaded_t *l, const char *path, char *const *env)
{
    memset(l, 0, sizeof(*l));
    l->rc = config_load(&l->cfg, &l->errs, path, env);
    if (l->rc == 0)
        assert_non_null(l->cfg);
    else
        assert_null(l->cfg);
}

/* Writes t.yml and loads it. */
static void load_yaml(loaded_t *l, const char *yaml, char *const *env)
{
    write_file("t.yml", yaml);
    load_path(l, "t.yml", env);
    unlink("t.yml");
}

static void unload(loaded_t *l)
{
    config_free(l->cfg);
    config_errors_free(&l->errs);
    l->cfg = NULL;
}

static void assert_clean(loaded_t *l)
{
    if (l->rc != 0 || l->errs.count != 0)
        print_errors(&l->errs);
    assert_int_equal(l->rc, 0);
    assert_int_equal(l->errs.count, 0);
}

/* The one error a file was expected to produce. */
static const config_error_t *only_error(loaded_t *l)
{
    if (l->errs.count != 1)
        print_errors(&l->errs);
    assert_int_equal(l->rc, -1);
    assert_int_equal(l->errs.count, 1);
    return &l->errs.items[0];
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (haystack == NULL || strstr(haystack, needle) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack ? haystack : "(null)");
}

static void assert_lacks(const char *haystack, const char *needle)
{
    if (haystack != NULL && strstr(haystack, needle) != NULL)
        fail_msg("did not expect \"%s\" in \"%s\"", needle, haystack);
}

static void assert_error(const config_error_t *e, const char *file, int line, const char *needle)
{
    if (file == NULL)
        assert_null(e->file);
    else
        assert_string_equal(e->file, file);
    assert_int_equal(e->line, line);
    assert_contains(e->message, needle);
}

/* A YAML file with one setting in it yields exactly this one error. */
static void assert_yaml_error(const char *yaml, int line, const char *needle)
{
    loaded_t l;
    load_yaml(&l, yaml, no_env);
    assert_error(only_error(&l), "t.yml", line, needle);
    unload(&l);
}

static void assert_list(const config_list_t *list, const char *const *want)
{
    size_t n = 0;
    while (want[n] != NULL)
        n++;
    assert_int_equal(list->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list->items[i], want[i]);
    assert_null(list->items[n]);
}

/* Every default, as config/patchbay.yml documents it. */
static void assert_documented_defaults(const config_t *c)
{
    static const char *const labels[] = {"patchbay", NULL};
    static const char *const associations[] = {"OWNER", "MEMBER", "COLLABORATOR", NULL};
    static const char *const command[] = {"claude", "-p", NULL};

    assert_string_equal(c->server.host, "0.0.0.0");
    assert_int_equal(c->server.port, 3000);
    assert_string_equal(c->server.webhook_path, "/api/github/webhooks");
    assert_int_equal(c->server.threads, 0);
    assert_int_equal(c->server.body_limit_bytes, 25 * 1024 * 1024);
    assert_int_equal(c->server.inflight_body_bytes, 48 * 1024 * 1024);
    assert_int_equal(c->server.max_connections, 0);
    assert_int_equal(c->server.request_timeout_ms, 10000);
    assert_int_equal(c->server.redis_timeout_ms, 1000);
    assert_null(c->server.public_url);
    assert_null(c->server.dashboard_token);

    assert_null(c->github.app_id);
    assert_null(c->github.private_key);
    assert_null(c->github.private_key_path);
    assert_null(c->github.webhook_secret);
    assert_string_equal(c->github.api_url, "https://api.github.com");
    assert_string_equal(c->github.url, "https://github.com");

    assert_null(c->redis.url);
    assert_string_equal(c->redis.server_path, "redis-server");
    assert_string_equal(c->redis.appendfsync, "everysec");

    assert_string_equal(c->data_dir, "./data");
    assert_string_equal(c->log.level, "info");
    assert_string_equal(c->log.format, "text");
    assert_string_equal(c->bot.handle, "patchbay");

    assert_list(&c->triggers.labels, labels);
    assert_list(&c->triggers.associations, associations);

    assert_int_equal(c->workers.concurrency, 2);
    assert_int_equal(c->workers.max_attempts, 3);
    assert_int_equal(c->workers.retention_days, 7);
    assert_int_equal(c->workers.grace_seconds, 60);
    assert_int_equal(c->workers.lease_seconds, 30);
    assert_int_equal(c->workers.retry_delay_ms, 10000);
    assert_int_equal(c->workers.retry_max_delay_ms, 600000);
    assert_int_equal(c->workspaces.mirror_budget_bytes, 10ULL << 30);
    assert_int_equal(c->github.timeout_ms, 30000);
    assert_int_equal(c->github.max_wait_s, 900);
    assert_int_equal(c->github.reconcile_interval_s, 600);
    static const char *const content_limits[] = {"80/60s", "500/3600s", NULL};
    assert_list(&c->github.content_limits, content_limits);
    assert_int_equal(c->github.max_inflight, 100);
    assert_int_equal(c->agent.network, 1);
    assert_string_equal(c->triggers.permission, "write");
    assert_string_equal(c->agent.isolation, "bwrap");
    assert_string_equal(c->agent.env.items[0], "ANTHROPIC_API_KEY");

    assert_string_equal(c->agent.backend, "command");
    assert_list(&c->agent.command, command);
    assert_int_equal(c->agent.timeout, 1800);
    assert_int_equal(c->agent.test_rounds, 2);
    assert_string_equal(c->agent.openai.base_url, "http://127.0.0.1:11434/v1");
    assert_string_equal(c->agent.openai.model, "qwen2.5-coder");
    assert_string_equal(c->agent.openai.api_key_env, "OPENAI_API_KEY");
    /* an ask spends what agent.* allows unless the operator says less */
    assert_int_equal(c->ask.timeout, 0);
    assert_int_equal(c->ask.max_steps, 0);
    assert_int_equal(c->ask.max_tokens, 0);
}

/* ---------------------------------------------------------------------------
 * Defaults, the example, file selection
 * ------------------------------------------------------------------------- */

static void test_defaults_without_file(void **state)
{
    (void)state;
    loaded_t l;
    load_path(&l, NULL, no_env);
    assert_clean(&l);
    assert_null(l.cfg->path);
    assert_documented_defaults(l.cfg);
    unload(&l);

    /* a NULL environment is an empty one */
    load_path(&l, NULL, NULL);
    assert_clean(&l);
    assert_documented_defaults(l.cfg);
    unload(&l);
}

static void test_example_loads_clean(void **state)
{
    (void)state;
    loaded_t l;
    load_path(&l, example_path, no_env);
    assert_clean(&l);
    assert_string_equal(l.cfg->path, example_path);
    assert_documented_defaults(l.cfg);
    unload(&l);
}

/* The example is the reference users copy from: it must set every key (with
 * its comment), not only load cleanly. */
static void test_example_mentions_every_key(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "host:",
        "port:",
        "webhook_path:",
        "threads:",
        "body_limit_bytes:",
        "inflight_body_bytes:",
        "max_connections:",
        "request_timeout_ms:",
        "redis_timeout_ms:",
        "public_url:",
        "dashboard_token:",
        "app_id:",
        "private_key:",
        "private_key_path:",
        "webhook_secret:",
        "api_url:",
        "url:",
        "server_path:",
        "appendfsync:",
        "data_dir:",
        "level:",
        "format:",
        "handle:",
        "labels:",
        "associations:",
        "concurrency:",
        "max_attempts:",
        "retention_days:",
        "grace_seconds:",
        "lease_seconds:",
        "retry_delay_ms:",
        "retry_max_delay_ms:",
        "mirror_budget_bytes:",
        "timeout_ms:",
        "max_wait_s:",
        "content_limits:",
        "max_inflight:",
        "reconcile_interval_s:",
        "env:",
        "network:",
        "isolation:",
        "permission:",
        "backend:",
        "command:",
        "timeout:",
        "test_rounds:",
        "base_url:",
        "model:",
        "api_key_env:",
        "max_steps:",
        "max_tokens:",
        "untrusted_agent:",
        "ask:",
    };
    FILE *f = fopen(example_path, "rb");
    assert_non_null(f);
    char text[32768];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        char want[64];
        snprintf(want, sizeof(want), "\n  %s", keys[i]);
        if (strstr(text, want) == NULL) {
            snprintf(want, sizeof(want), "\n    %s", keys[i]);
            if (strstr(text, want) == NULL) {
                snprintf(want, sizeof(want), "\n%s", keys[i]);
                if (strstr(text, want) == NULL)
                    fail_msg("config/patchbay.yml does not set %s", keys[i]);
            }
        }
    }
}

static void test_default_file_in_cwd(void **state)
{
    (void)state;
    loaded_t l;
    write_file("patchbay.yml", "server:\n  port: 4000\n");
    load_path(&l, NULL, no_env);
    unlink("patchbay.yml");
    assert_clean(&l);
    assert_string_equal(l.cfg->path, "patchbay.yml");
    assert_int_equal(l.cfg->server.port, 4000);
    unload(&l);
}

static void test_patchbay_config_env(void **state)
{
    (void)state;
    loaded_t l;
    write_file("patchbay.yml", "server: { port: 4000 }\n");
    write_file("t.yml", "server: { port: 4001 }\n");

    /* PATCHBAY_CONFIG beats ./patchbay.yml */
    char *const env[] = {"PATCHBAY_CONFIG=t.yml", NULL};
    load_path(&l, NULL, env);
    assert_clean(&l);
    assert_string_equal(l.cfg->path, "t.yml");
    assert_int_equal(l.cfg->server.port, 4001);
    unload(&l);

    /* the path argument beats PATCHBAY_CONFIG */
    load_path(&l, "patchbay.yml", env);
    assert_clean(&l);
    assert_int_equal(l.cfg->server.port, 4000);
    unload(&l);

    /* an empty PATCHBAY_CONFIG is unset: ./patchbay.yml again */
    char *const empty[] = {"PATCHBAY_CONFIG=", NULL};
    load_path(&l, NULL, empty);
    assert_clean(&l);
    assert_string_equal(l.cfg->path, "patchbay.yml");
    unload(&l);

    unlink("patchbay.yml");
    unlink("t.yml");
}

static void test_missing_named_file(void **state)
{
    (void)state;
    loaded_t l;
    load_path(&l, "/nonexistent/patchbay.yml", no_env);
    const config_error_t *e = only_error(&l);
    assert_error(e, "/nonexistent/patchbay.yml", 0, "cannot read");
    assert_contains(e->message, "No such file");
    char *s = config_error_format(e);
    assert_string_equal(s, "/nonexistent/patchbay.yml: cannot read the config file: No such file or directory");
    free(s);
    unload(&l);

    char *const env[] = {"PATCHBAY_CONFIG=missing.yml", NULL};
    load_path(&l, NULL, env);
    assert_error(only_error(&l), "missing.yml", 0, "cannot read");
    unload(&l);

    assert_int_equal(mkdir("adir", 0700), 0);
    load_path(&l, "adir", no_env);
    assert_error(only_error(&l), "adir", 0, "directory");
    unload(&l);
    rmdir("adir");
}

static void test_empty_and_null(void **state)
{
    (void)state;
    loaded_t l;
    static const char *const files[] = {
        "",
        "# nothing but a comment\n",
        "---\n",
        "server:\nbot:\n",
        "server:\n  host:\n  port: ~\n  public_url: null\n  dashboard_token: \"\"\nbot: {}\n",
        "triggers:\n  labels:\n",
    };
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        load_yaml(&l, files[i], no_env);
        assert_clean(&l);
        assert_documented_defaults(l.cfg);
        unload(&l);
    }

    /* [] is an empty list, not "not set" */
    load_yaml(&l, "triggers:\n  labels: []\n", no_env);
    assert_clean(&l);
    assert_int_equal(l.cfg->triggers.labels.count, 0);
    assert_null(l.cfg->triggers.labels.items[0]);
    assert_int_equal(config_list_contains(&l.cfg->triggers.labels, "patchbay"), 0);
    unload(&l);
}

/* ---------------------------------------------------------------------------
 * The environment
 * ------------------------------------------------------------------------- */

static void test_env_overrides_file(void **state)
{
    (void)state;
    loaded_t l;
    static const char yaml[] = "server:\n"
                               "  host: 127.0.0.1\n"
                               "  port: 4000\n"
                               "  webhook_path: /file\n"
                               "  public_url: https://file.example\n"
                               "  dashboard_token: file-token\n"
                               "github:\n"
                               "  app_id: 1\n"
                               "  private_key: file-key\n"
                               "  private_key_path: /file.pem\n"
                               "  webhook_secret: file-secret\n"
                               "  api_url: https://file-api.example\n"
                               "  url: https://file.example\n"
                               "redis: { url: redis://file:6379/0 }\n"
                               "data_dir: /file-data\n"
                               "log: { level: error, format: text }\n"
                               "bot: { handle: file-bot }\n"
                               "workers: { concurrency: 9 }\n";
    char *const env[] = {
        "PATH=/usr/bin",
        "APP_ID=12345",
        "PRIVATE_KEY=-----BEGIN RSA PRIVATE KEY-----\nenv\n-----END RSA PRIVATE KEY-----\n",
        "PRIVATE_KEY_PATH=/env.pem",
        "WEBHOOK_SECRET=env-secret",
        "WEBHOOK_PATH=/env/hooks",
        "HOST=::1",
        "PORT=5000",
        "REDIS_URL=unix:///run/redis.sock",
        "GITHUB_API_URL=http://127.0.0.1:9999",
        "GITHUB_URL=http://127.0.0.1:9998",
        "LOG_LEVEL=debug",
        "LOG_FORMAT=JSON",
        "PATCHBAY_DATA_DIR=/env-data",
        "PATCHBAY_HANDLE=env-bot",
        "DASHBOARD_TOKEN=env-token",
        "PUBLIC_URL=https://env.example",
        "PORTABLE=1", /* a longer name with PORT's prefix is not PORT */
        NULL,
    };
    load_yaml(&l, yaml, env);
    assert_clean(&l);
    const config_t *c = l.cfg;
    assert_string_equal(c->github.app_id, "12345");
    assert_string_equal(c->github.private_key, "-----BEGIN RSA PRIVATE KEY-----\nenv\n-----END RSA PRIVATE KEY-----\n");
    assert_string_equal(c->github.private_key_path, "/env.pem");
    assert_string_equal(c->github.webhook_secret, "env-secret");
    assert_string_equal(c->server.webhook_path, "/env/hooks");
    assert_string_equal(c->server.host, "::1");
    assert_int_equal(c->server.port, 5000);
    assert_string_equal(c->redis.url, "unix:///run/redis.sock");
    assert_string_equal(c->github.api_url, "http://127.0.0.1:9999");
    assert_string_equal(c->github.url, "http://127.0.0.1:9998");
    assert_string_equal(c->log.level, "debug");
    assert_string_equal(c->log.format, "json"); /* canonical spelling */
    assert_string_equal(c->data_dir, "/env-data");
    assert_string_equal(c->bot.handle, "env-bot");
    assert_string_equal(c->server.dashboard_token, "env-token");
    assert_string_equal(c->server.public_url, "https://env.example");
    /* what the environment does not name keeps the file's value */
    assert_int_equal(c->workers.concurrency, 9);
    unload(&l);

    /* and without a file, over the defaults */
    char *const port_only[] = {"PORT=8080", NULL};
    load_path(&l, NULL, port_only);
    assert_clean(&l);
    assert_int_equal(l.cfg->server.port, 8080);
    unload(&l);
}

static void test_empty_env_ignored(void **state)
{
    (void)state;
    loaded_t l;
    char *const env[] = {"PORT=", "HOST=", "APP_ID=", "WEBHOOK_SECRET=", "LOG_LEVEL=", "PATCHBAY_HANDLE=", NULL};
    load_yaml(&l, "server: { port: 4000 }\n", env);
    assert_clean(&l);
    assert_int_equal(l.cfg->server.port, 4000);
    assert_string_equal(l.cfg->server.host, "0.0.0.0");
    assert_null(l.cfg->github.app_id);
    assert_null(l.cfg->github.webhook_secret);
    assert_string_equal(l.cfg->log.level, "info");
    assert_string_equal(l.cfg->bot.handle, "patchbay");
    unload(&l);
}

static void test_env_errors(void **state)
{
    (void)state;
    loaded_t l;
    char *const env[] = {
        "PORT=abc", "LOG_LEVEL=loud", "REDIS_URL=http://:hunter2@redis.example", "PATCHBAY_HANDLE=-bot", "APP_ID=12x", NULL,
    };
    load_yaml(&l, "server: { port: 4000 }\n", env);
    assert_int_equal(l.rc, -1);
    assert_int_equal(l.errs.count, 5);
    for (size_t i = 0; i < l.errs.count; i++) {
        assert_null(l.errs.items[i].file);
        assert_int_equal(l.errs.items[i].line, 0);
        assert_lacks(l.errs.items[i].message, "hunter2");
    }
    /* in schema order */
    char *s = config_error_format(&l.errs.items[0]);
    assert_string_equal(s, "environment: PORT: must be an integer between 0 and 65535 (got 'abc')");
    free(s);
    assert_contains(l.errs.items[1].message, "APP_ID: must be the App's numeric ID");
    assert_contains(l.errs.items[2].message, "REDIS_URL: must start with redis://");
    assert_contains(l.errs.items[3].message, "LOG_LEVEL: must be one of debug, info, warn, error (got 'loud')");
    assert_contains(l.errs.items[4].message, "PATCHBAY_HANDLE: must be a GitHub login");
    unload(&l);

    char *const range[] = {"PORT=70000", NULL};
    load_path(&l, NULL, range);
    assert_error(only_error(&l), NULL, 0, "PORT: must be between 0 and 65535 (got '70000')");
    unload(&l);
}

/* ---------------------------------------------------------------------------
 * Errors in the file
 * ------------------------------------------------------------------------- */

static void test_unknown_key(void **state)
{
    (void)state;
    assert_yaml_error("workers:\n  max_attempts: 3\n  concurency: 4\n", 3,
                      "unknown key 'concurency' in 'workers'; did you mean 'concurrency'?");
    assert_yaml_error("sever:\n  port: 1\n", 1, "unknown key 'sever'; did you mean 'server'?");
    assert_yaml_error("agent:\n  openai:\n    modle: x\n", 3, "unknown key 'modle' in 'agent.openai'; did you mean 'model'?");
    /* the right name in the wrong place */
    assert_yaml_error("port: 3000\n", 1, "unknown key 'port'; did you mean 'server.port'?");
    assert_yaml_error("agent:\n  base_url: http://x\n", 2,
                      "unknown key 'base_url' in 'agent'; did you mean 'agent.openai.base_url'?");
    /* nothing close: no guess */
    loaded_t l;
    load_yaml(&l, "server:\n  zzzzzzzz: 1\n", no_env);
    const config_error_t *e = only_error(&l);
    assert_error(e, "t.yml", 2, "unknown key 'zzzzzzzz' in 'server'");
    assert_lacks(e->message, "did you mean");
    unload(&l);
    /* dots are not a shortcut for nesting */
    assert_yaml_error("server.port: 1\n", 1, "unknown key 'server.port'");
}

static void test_several_errors_together(void **state)
{
    (void)state;
    loaded_t l;
    static const char yaml[] = "server:\n"                        /* 1 */
                               "  port: abc\n"                    /* 2: type */
                               "  threads: 5000\n"                /* 3: range */
                               "  webhook_path: hooks\n"          /* 4: rule */
                               "workers:\n"                       /* 5 */
                               "  concurency: 4\n"                /* 6: unknown */
                               "  max_attempts: 3\n"              /* 7 */
                               "  max_attempts: 4\n"              /* 8: duplicate */
                               "agent:\n"                         /* 9 */
                               "  backend: opnai\n"               /* 10: enum */
                               "  command: claude\n"              /* 11: not a list */
                               "triggers: { labels: [a, [b]] }\n" /* 12: item not a scalar */
                               "bot: { handle: 'a b' }\n";        /* 13: not a login */
    static const struct {
        int line;
        const char *needle;
    } want[] = {
        {2, "'port' must be an integer"},
        {3, "'threads' must be between 0 and 1024 (got '5000')"},
        {4, "'webhook_path' must start with '/'"},
        {6, "unknown key 'concurency' in 'workers'; did you mean 'concurrency'?"},
        {8, "duplicate key 'max_attempts' in 'workers' (first at line 7)"},
        {10, "'backend' must be one of command, openai (got 'opnai')"},
        {11, "'command' must be a list"},
        {12, "'labels' items must be single values"},
        {13, "'handle' must be a GitHub login"},
    };
    char *const env[] = {"PORT=x", NULL};
    load_yaml(&l, yaml, env);
    if (l.errs.count != ARRAY_LEN(want) + 1)
        print_errors(&l.errs);
    assert_int_equal(l.rc, -1);
    assert_int_equal(l.errs.count, ARRAY_LEN(want) + 1);
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        assert_error(&l.errs.items[i], "t.yml", want[i].line, want[i].needle);
    /* file errors first, then the environment's */
    assert_error(&l.errs.items[ARRAY_LEN(want)], NULL, 0, "PORT: must be an integer");
    char *s = config_error_format(&l.errs.items[0]);
    assert_string_equal(s, "t.yml:2: 'port' must be an integer between 0 and 65535 (got 'abc')");
    free(s);
    unload(&l);
}

static void test_wrong_types(void **state)
{
    (void)state;
    assert_yaml_error("server:\n  port: abc\n", 2, "'port' must be an integer between 0 and 65535 (got 'abc')");
    assert_yaml_error("server:\n  port: 3000.5\n", 2, "'port' must be an integer");
    assert_yaml_error("server:\n  port: [3000]\n", 2, "'port' must be a single value, not a list");
    assert_yaml_error("server:\n  host:\n    name: x\n", 3, "'host' must be a single value, not a mapping");
    assert_yaml_error("server: 3000\n", 1, "'server' must be a mapping of settings, not a single value");
    assert_yaml_error("agent:\n  openai: [a]\n", 2, "'openai' must be a mapping of settings, not a list");
    assert_yaml_error("triggers:\n  labels: patchbay\n", 2, "'labels' must be a list, like [a, b], not a single value");
    assert_yaml_error("triggers:\n  labels: { a: b }\n", 2, "'labels' must be a list, like [a, b], not a mapping");
    assert_yaml_error("triggers:\n  labels:\n    - ok\n    - ~\n", 4, "'labels' items must not be empty");
    assert_yaml_error("server:\n  body_limit_bytes: lots\n", 2, "'body_limit_bytes' must be a size in bytes");
    assert_yaml_error("server:\n  body_limit_bytes: -5\n", 2, "'body_limit_bytes' must be a size in bytes");
    assert_yaml_error("- a\n- b\n", 1, "the config file must be a mapping of settings");
    assert_yaml_error("just words\n", 1, "the config file must be a mapping of settings");
    assert_yaml_error("[a]: 1\n", 1, "keys must be plain names, not a list");
    assert_yaml_error("github:\n  app_id: 12ab\n", 2, "'app_id' must be the App's numeric ID (digits only)");
    assert_yaml_error("server:\n  host: \"a\\0b\"\n", 2, "'host' must not contain a NUL character");
    assert_yaml_error("triggers:\n  labels: [\"a\\0b\"]\n", 2, "'labels' items must not contain a NUL character");
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_yaml_error("server:\n  port: 70000\n", 2, "'port' must be between 0 and 65535 (got '70000')");
    assert_yaml_error("server:\n  port: 99999999999999999999999\n", 2, "'port' must be an integer");
    assert_yaml_error("workers:\n  concurrency: 0\n", 2, "'concurrency' must be between 1 and 1024");
    assert_yaml_error("agent:\n  test_rounds: -1\n", 2, "'test_rounds' must be between 0 and 100");
    assert_yaml_error("server:\n  body_limit_bytes: 2GiB\n", 2,
                      "'body_limit_bytes' must be between 1024 and 1073741824 bytes (got '2GiB')");
    assert_yaml_error("server:\n  body_limit_bytes: 100\n", 2, "'body_limit_bytes' must be between 1024");
    assert_yaml_error("server:\n  body_limit_bytes: 99999999999999999999G\n", 2, "'body_limit_bytes' must be a size");
}

static void test_sizes_and_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t bytes;
    } sizes[] = {
        {"26214400", 26214400}, {"25MiB", 25u << 20}, {"25 MB", 25u << 20}, {"64k", 64u << 10},
        {"64 KiB", 64u << 10},  {"1g", 1u << 30},     {"\"2048\"", 2048},
    };
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        char yaml[128];
        loaded_t l;
        /* a 1 GiB body needs a budget that can hold it */
        snprintf(yaml, sizeof(yaml), "server:\n  body_limit_bytes: %s\n  inflight_body_bytes: 2GiB\n", sizes[i].text);
        load_yaml(&l, yaml, no_env);
        assert_clean(&l);
        assert_int_equal(l.cfg->server.body_limit_bytes, sizes[i].bytes);
        unload(&l);
    }

    /* app_id as a YAML integer or a string; ints quoted or not */
    loaded_t l;
    load_yaml(&l, "github:\n  app_id: 123456\nserver:\n  port: \"8080\"\n", no_env);
    assert_clean(&l);
    assert_string_equal(l.cfg->github.app_id, "123456");
    assert_int_equal(l.cfg->server.port, 8080);
    unload(&l);
    load_yaml(&l, "github: { app_id: '654321' }\n", no_env);
    assert_clean(&l);
    assert_string_equal(l.cfg->github.app_id, "654321");
    unload(&l);
}

/* The mirrors' disk budget: sizes up to a PiB, 0 meaning no limit. */
static void test_workspaces_budget(void **state)
{
    (void)state;
    loaded_t l;
    load_yaml(&l, "workspaces:\n  mirror_budget_bytes: 250GiB\n", no_env);
    assert_clean(&l);
    assert_int_equal(l.cfg->workspaces.mirror_budget_bytes, 250ULL << 30);
    unload(&l);
    load_yaml(&l, "workspaces: { mirror_budget_bytes: 0 }\n", no_env);
    assert_clean(&l);
    assert_int_equal(l.cfg->workspaces.mirror_budget_bytes, 0);
    unload(&l);
    assert_yaml_error("workspaces:\n  mirror_budget_bytes: plenty\n", 2, "'mirror_budget_bytes' must be a size in bytes");
    assert_yaml_error("workspaces:\n  mirror_budget_bytes: 2000000GiB\n", 2,
                      "'mirror_budget_bytes' must be between 0 and 1125899906842624 bytes");
    assert_yaml_error("workspaces:\n  mirror_budget: 1GiB\n", 2, "unknown key 'mirror_budget' in 'workspaces'");
}

static void test_enum(void **state)
{
    (void)state;
    assert_yaml_error("agent:\n  backend: opnai\n", 2, "'backend' must be one of command, openai (got 'opnai')");
    assert_yaml_error("agent:\n  isolation: maybe\n", 2, "'isolation' must be one of auto, bwrap, none (got 'maybe')");
    assert_yaml_error("agent:\n  command: [bin/agent, -p]\n", 2, "'command' runs bin/agent, a relative path");
    assert_yaml_error("redis:\n  appendfsync: no\n", 2, "'appendfsync' must be one of always, everysec (got 'no')");
    assert_yaml_error("log:\n  format: xml\n", 2, "'format' must be one of text, json (got 'xml')");
    assert_yaml_error("log:\n  level: loud\n", 2, "'level' must be one of debug, info, warn, error (got 'loud')");

    /* any case in, the canonical spelling out */
    loaded_t l;
    load_yaml(&l, "redis: { appendfsync: ALWAYS }\nagent: { backend: OpenAI }\nlog: { level: warn, format: Json }\n", no_env);
    assert_clean(&l);
    assert_string_equal(l.cfg->redis.appendfsync, "always");
    assert_string_equal(l.cfg->agent.backend, "openai");
    assert_string_equal(l.cfg->log.format, "json");
    assert_string_equal(l.cfg->log.level, "warn");
    unload(&l);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    assert_yaml_error("server:\n  port: 1\n  host: x\n  port: 2\n", 4, "duplicate key 'port' in 'server' (first at line 2)");
    assert_yaml_error("bot: { handle: a }\nserver: {}\nbot: { handle: b }\n", 3, "duplicate key 'bot' (first at line 1)");
}

static void test_syntax_error(void **state)
{
    (void)state;
    loaded_t l;
    load_yaml(&l, "server:\n  port: 3000\n  host: [unclosed\nbot:\n  handle: x\n", no_env);
    const config_error_t *e = only_error(&l);
    assert_string_equal(e->file, "t.yml");
    assert_contains(e->message, "YAML syntax error: ");
    assert_true(e->line >= 3 && e->line <= 5);
    unload(&l);

    assert_yaml_error("server:\n  port: 3000\n   host: x\n", 3, "YAML syntax error: mapping values are not allowed");
    assert_yaml_error("server:\n\tport: 3000\n", 2, "YAML syntax error: found character that cannot start any token");
    assert_yaml_error("a: 1\n---\nb: 2\n", 2, "a second YAML document");
    assert_yaml_error("x: &anchor 1\nserver:\n  port: *anchor\n", 3, "YAML aliases (*anchor) are not supported");

    /* a NUL byte in the file: a reader error, whose line we count ourselves */
    static const char with_nul[] = "server:\n  port: 1\n  host: a\0b\n";
    write_file_n("t.yml", with_nul, sizeof(with_nul) - 1);
    load_path(&l, "t.yml", no_env);
    unlink("t.yml");
    e = only_error(&l);
    assert_string_equal(e->file, "t.yml");
    assert_int_equal(e->line, 3);
    assert_contains(e->message, "YAML syntax error: control characters are not allowed");
    unload(&l);

    /* deep nesting stops cleanly */
    char deep[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    assert_yaml_error(deep, 1, "nested more than");
}

static void test_flow_style(void **state)
{
    (void)state;
    static const char yaml[] = "bot:      { handle: patchbot }\n"
                               "triggers: { labels: [patchbay, ai-fix], associations: [OWNER, member] }\n"
                               "workers:  { concurrency: 4 }\n"
                               "agent:\n"
                               "  backend: openai\n"
                               "  command: [aider, --yes-always, \"--message-file\", '$PATCHBAY_PROMPT_FILE']\n"
                               "  timeout: 600\n"
                               "  test_rounds: 0\n"
                               "  openai: { base_url: \"http://127.0.0.1:8000/v1\", model: \"qwen2.5-coder\", api_key_env: "
                               "VLLM_KEY }\n";
    static const char *const labels[] = {"patchbay", "ai-fix", NULL};
    static const char *const associations[] = {"OWNER", "member", NULL};
    static const char *const command[] = {"aider", "--yes-always", "--message-file", "$PATCHBAY_PROMPT_FILE", NULL};
    loaded_t l;
    load_yaml(&l, yaml, no_env);
    assert_clean(&l);
    assert_string_equal(l.cfg->bot.handle, "patchbot");
    assert_list(&l.cfg->triggers.labels, labels);
    assert_list(&l.cfg->triggers.associations, associations);
    assert_int_equal(l.cfg->workers.concurrency, 4);
    assert_string_equal(l.cfg->agent.backend, "openai");
    assert_list(&l.cfg->agent.command, command);
    assert_int_equal(l.cfg->agent.timeout, 600);
    assert_int_equal(l.cfg->agent.test_rounds, 0);
    assert_string_equal(l.cfg->agent.openai.base_url, "http://127.0.0.1:8000/v1");
    assert_string_equal(l.cfg->agent.openai.api_key_env, "VLLM_KEY");
    assert_true(config_list_contains(&l.cfg->triggers.associations, "MEMBER"));
    unload(&l);

    /* the same in block style */
    load_yaml(&l, "triggers:\n  labels:\n    - patchbay\n    - ai-fix\n", no_env);
    assert_clean(&l);
    assert_list(&l.cfg->triggers.labels, labels);
    unload(&l);
}

static void test_rules_across_values(void **state)
{
    (void)state;
    assert_yaml_error("bot:\n  handle: -patchbay\n", 2, "'handle' must be a GitHub login");
    assert_yaml_error("bot:\n  handle: patch_bay\n", 2, "'handle' must be a GitHub login");
    assert_yaml_error("bot:\n  handle: aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd\n", 2, "'handle' must be a GitHub login");
    assert_yaml_error("redis:\n  url: http://localhost:6379\n", 2, "'url' must start with redis://");
    assert_yaml_error("github:\n  api_url: ftp://api.example\n", 2, "'api_url' must be an http:// or https:// URL");
    assert_yaml_error("github:\n  url: github.com\n", 2, "'url' must be an http:// or https:// URL");
    assert_yaml_error("triggers:\n  associations: [OWNER, ADMIN]\n", 2, "'associations' must be a GitHub author_association");
    assert_yaml_error("bot:\n  handle: '@patchbay'\n", 2, "'handle' must be the login without the '@'");
    assert_yaml_error("agent:\n  openai: { api_key_env: 'my key' }\n", 2,
                      "'api_key_env' must be the NAME of the environment variable that holds the key");
    assert_yaml_error("agent:\n  command: []\n", 2, "'command' must name the agent to run when 'backend' is command");
    assert_yaml_error("agent:\n  backend: command\n  command: ['']\n", 3, "'command' items must not be empty");
    assert_yaml_error("server:\n  inflight_body_bytes: 30MiB\n", 2,
                      "'inflight_body_bytes' (31457280) must be at least 'body_limit_bytes' + 8 MiB (34603008)");
    assert_yaml_error("server:\n  body_limit_bytes: 64MiB\n", 2,
                      "'inflight_body_bytes' (50331648) must be at least 'body_limit_bytes' + 8 MiB (75497472)");
    assert_yaml_error("server:\n  inflight_body_bytes: 1MiB\n", 2, "'inflight_body_bytes' must be between");
    assert_yaml_error("server:\n  max_connections: -1\n", 2, "'max_connections' must be between 0 and 10000000");
    assert_yaml_error("workers:\n  retry_delay_ms: 5000\n  retry_max_delay_ms: 1000\n", 3,
                      "'retry_max_delay_ms' (1000) must not be below 'retry_delay_ms' (5000)");
    assert_yaml_error("workers:\n  retry_delay_ms: 700000\n", 2,
                      "'retry_max_delay_ms' (600000) must not be below 'retry_delay_ms' (700000)");
    assert_yaml_error("workers:\n  lease_seconds: 1\n", 2, "'lease_seconds' must be between 2 and 3600");
    assert_yaml_error("github:\n  content_limits: [80/60s, 80 a minute]\n", 2,
                      "'content_limits' must be CALLS/WINDOW, like 80/60s");
    assert_yaml_error("github:\n  content_limits: [1/1s, 2/2s, 3/3s, 4/4s, 5/5s]\n", 2,
                      "'content_limits' has 5 windows; at most 4");
    assert_yaml_error("github:\n  max_inflight: 0\n", 2, "'max_inflight' must be between 1 and 100000");
    assert_yaml_error("workers:\n  grace_seconds: -1\n", 2, "'grace_seconds' must be between 0 and 86400");
    assert_yaml_error("sandbox:\n  path: [node_modules/.bin]\n", 2, "'path' must be an absolute path");
    assert_yaml_error("sandbox:\n  read_only: [/]\n", 2, "'read_only' must be an absolute path, not / itself");
    assert_yaml_error("sandbox:\n  read_only: [/opt/../etc]\n", 2, "'read_only' must not contain \"..\"");

    loaded_t l;
    static const char *const bins[] = {"/opt/agents/bin", NULL};
    load_yaml(&l, "sandbox: { path: [/opt/agents/bin], read_only: [/opt/agents] }\n", no_env);
    assert_clean(&l);
    assert_list(&l.cfg->sandbox.path, bins);
    assert_string_equal(l.cfg->sandbox.read_only.items[0], "/opt/agents");
    unload(&l);

    assert_yaml_error("ask:\n  timeout: -5\n", 2, "'timeout' must be between 0 and 604800");
    assert_yaml_error("ask:\n  max_steps: 20000\n", 2, "'max_steps' must be between 0 and 10000");
    assert_yaml_error("ask:\n  max_tokens: 500\n", 2,
                      "'max_tokens' (500) must be 0 (agent.openai.max_tokens) or at least 1000");
    assert_yaml_error("ask:\n  budget: 3\n", 2, "unknown key 'budget' in 'ask'");

    load_yaml(&l, "ask: { timeout: 300, max_steps: 30 }\n", no_env);
    assert_clean(&l);
    assert_int_equal(l.cfg->ask.timeout, 300);
    assert_int_equal(l.cfg->ask.max_steps, 30);
    unload(&l);
    /* an empty command is fine when the openai backend does the work */
    load_yaml(&l, "agent:\n  backend: openai\n  command: []\n", no_env);
    assert_clean(&l);
    assert_int_equal(l.cfg->agent.command.count, 0);
    unload(&l);

    /* a 39-character login is the longest GitHub allows */
    load_yaml(&l, "bot:\n  handle: aaaaaaaaaabbbbbbbbbbccccccccccddddddddd\nredis: { url: 'redis://127.0.0.1:6380/2' }\n",
              no_env);
    assert_clean(&l);
    assert_string_equal(l.cfg->redis.url, "redis://127.0.0.1:6380/2");
    unload(&l);
}

/* Secret values stay out of every message, from the file or the environment. */
static void test_secrets_never_echoed(void **state)
{
    (void)state;
    loaded_t l;
    /* the last one: the API key pasted where its variable's name belongs */
    load_yaml(&l,
              "github:\n  webhook_secret: [hunter2]\n  private_key: { pem: hunter2 }\n"
              "server:\n  dashboard_token: \"hunter2\\0x\"\nredis:\n  url: http://:hunter2@x\n"
              "agent:\n  openai:\n    api_key_env: sk-hunter2\n",
              no_env);
    assert_int_equal(l.rc, -1);
    assert_int_equal(l.errs.count, 5);
    for (size_t i = 0; i < l.errs.count; i++) {
        char *s = config_error_format(&l.errs.items[i]);
        assert_lacks(s, "hunter2");
        free(s);
    }
    unload(&l);
}

/* ---------------------------------------------------------------------------
 * Credentials
 * ------------------------------------------------------------------------- */

static void test_credentials_missing(void **state)
{
    (void)state;
    loaded_t l;
    load_path(&l, NULL, no_env);
    assert_clean(&l);
    assert_int_equal(config_check_credentials(l.cfg, &l.errs), 3);
    assert_int_equal(l.errs.count, 3);
    assert_contains(l.errs.items[0].message, "APP_ID");
    assert_contains(l.errs.items[1].message, "PRIVATE_KEY");
    assert_contains(l.errs.items[1].message, "PRIVATE_KEY_PATH");
    assert_contains(l.errs.items[2].message, "WEBHOOK_SECRET");
    for (size_t i = 0; i < 3; i++) {
        assert_null(l.errs.items[i].file);
        assert_int_equal(l.errs.items[i].line, 0);
        /* one line each, no pointer to the page that shows them */
        assert_lacks(l.errs.items[i].message, "\n");
        assert_lacks(l.errs.items[i].message, "patchbay run");
        assert_contains(l.errs.items[i].message, "config file");
    }
    unload(&l);
}

static void test_credentials_never_show_secrets(void **state)
{
    (void)state;
    loaded_t l;
    static const char key[] = "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n";
    char key_env[256];
    snprintf(key_env, sizeof(key_env), "PRIVATE_KEY=%s", key);

    /* everything set: nothing to say */
    char *const all[] = {"APP_ID=42", key_env, "WEBHOOK_SECRET=s3cr3t-hook", "DASHBOARD_TOKEN=tok-XYZ", NULL};
    load_path(&l, NULL, all);
    assert_clean(&l);
    assert_int_equal(config_check_credentials(l.cfg, &l.errs), 0);
    assert_int_equal(l.errs.count, 0);
    unload(&l);

    /* secrets set, the rest missing: the messages name what to set, never the values */
    char *const some[] = {"WEBHOOK_SECRET=s3cr3t-hook", "PRIVATE_KEY_PATH=/nonexistent/app.pem", "DASHBOARD_TOKEN=tok-XYZ",
                          NULL};
    load_path(&l, NULL, some);
    assert_clean(&l);
    assert_int_equal(config_check_credentials(l.cfg, &l.errs), 2);
    assert_contains(l.errs.items[0].message, "APP_ID is not set");
    assert_contains(l.errs.items[1].message, "PRIVATE_KEY_PATH");
    assert_contains(l.errs.items[1].message, "/nonexistent/app.pem");
    assert_contains(l.errs.items[1].message, "No such file");
    for (size_t i = 0; i < l.errs.count; i++) {
        char *s = config_error_format(&l.errs.items[i]);
        assert_lacks(s, "s3cr3t-hook");
        assert_lacks(s, "tok-XYZ");
        free(s);
    }
    unload(&l);

    /* key text set, secret missing */
    char *const no_secret[] = {"APP_ID=42", key_env, NULL};
    load_path(&l, NULL, no_secret);
    assert_clean(&l);
    assert_int_equal(config_check_credentials(l.cfg, &l.errs), 1);
    assert_contains(l.errs.items[0].message, "WEBHOOK_SECRET is not set");
    assert_lacks(l.errs.items[0].message, "SECRETKEYMATERIAL");
    unload(&l);

    /* a readable key file passes; an empty one does not */
    write_file("key.pem", key);
    char *const path_ok[] = {"APP_ID=42", "PRIVATE_KEY_PATH=key.pem", "WEBHOOK_SECRET=s3cr3t-hook", NULL};
    load_path(&l, NULL, path_ok);
    assert_clean(&l);
    assert_int_equal(config_check_credentials(l.cfg, &l.errs), 0);
    unload(&l);
    write_file("key.pem", "");
    load_path(&l, NULL, path_ok);
    assert_int_equal(config_check_credentials(l.cfg, &l.errs), 1);
    assert_contains(l.errs.items[0].message, "empty");
    unload(&l);
    unlink("key.pem");

    /* a PEM pasted into one line with literal \n, as Probot allows */
    char *const escaped[] = {"PRIVATE_KEY=-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n", NULL};
    load_path(&l, NULL, escaped);
    assert_clean(&l);
    assert_string_equal(l.cfg->github.private_key, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    unload(&l);

    /* NULL config: nothing checked */
    config_errors_t errs = {0};
    assert_int_equal(config_check_credentials(NULL, &errs), 0);
    config_errors_free(&errs);
}

/* ---------------------------------------------------------------------------
 * Small API
 * ------------------------------------------------------------------------- */

static void test_error_format(void **state)
{
    (void)state;
    config_error_t with_line = {"cfg.yml", 7, "bad thing"};
    config_error_t no_line = {"cfg.yml", 0, "cannot read"};
    config_error_t env = {NULL, 0, "PORT: bad"};
    char *s = config_error_format(&with_line);
    assert_string_equal(s, "cfg.yml:7: bad thing");
    free(s);
    s = config_error_format(&no_line);
    assert_string_equal(s, "cfg.yml: cannot read");
    free(s);
    s = config_error_format(&env);
    assert_string_equal(s, "environment: PORT: bad");
    free(s);
}

static void test_list_contains(void **state)
{
    (void)state;
    char *items[] = {"OWNER", "Member", NULL};
    config_list_t list = {items, 2};
    config_list_t empty = {NULL, 0};
    assert_true(config_list_contains(&list, "owner"));
    assert_true(config_list_contains(&list, "MEMBER"));
    assert_false(config_list_contains(&list, "COLLABORATOR"));
    assert_false(config_list_contains(&list, NULL));
    assert_false(config_list_contains(&empty, "OWNER"));
    assert_false(config_list_contains(NULL, "OWNER"));
}

static void test_free_is_null_safe(void **state)
{
    (void)state;
    config_errors_t errs = {0};
    config_free(NULL);
    config_errors_free(NULL);
    config_errors_free(&errs);

    /* errors append to what the caller already has */
    loaded_t l;
    load_path(&l, "/nonexistent/a.yml", no_env);
    assert_int_equal(config_load(&l.cfg, &l.errs, "/nonexistent/b.yml", no_env), -1);
    assert_int_equal(l.errs.count, 2);
    assert_string_equal(l.errs.items[1].file, "/nonexistent/b.yml");
    unload(&l);
    assert_null(l.errs.items);
    assert_int_equal(l.errs.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_without_file),
        cmocka_unit_test(test_example_loads_clean),
        cmocka_unit_test(test_example_mentions_every_key),
        cmocka_unit_test(test_default_file_in_cwd),
        cmocka_unit_test(test_patchbay_config_env),
        cmocka_unit_test(test_missing_named_file),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_env_overrides_file),
        cmocka_unit_test(test_empty_env_ignored),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_several_errors_together),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_sizes_and_numbers),
        cmocka_unit_test(test_workspaces_budget),
        cmocka_unit_test(test_enum),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_flow_style),
        cmocka_unit_test(test_rules_across_values),
        cmocka_unit_test(test_secrets_never_echoed),
        cmocka_unit_test(test_credentials_missing),
        cmocka_unit_test(test_credentials_never_show_secrets),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_list_contains),
        cmocka_unit_test(test_free_is_null_safe),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
