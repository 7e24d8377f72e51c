/*
 * config — see config.h.
 *
 * How a value gets into config_t
 * ------------------------------
 * Every setting is one row of `schema` below: its dotted key, its type, where
 * it lives in config_t, its default, and the environment variable that
 * overrides it. Defaults are written as text and go through the very parser
 * that reads the file and the environment, so a default can never be a value
 * the file would refuse. config_free walks the same table, so a new key is
 * freed the moment it is added.
 *
 * Loading runs in three passes over one config_t: defaults, then the YAML
 * file, then the environment. The file is read with libyaml's event parser
 * into a small node tree (scalars, mappings, sequences, each with its 1-based
 * line), and the tree is walked against the schema: a mapping key is either a
 * row (a leaf), a prefix of rows (a section, which must be a mapping), or
 * unknown. Problems never stop the walk; each becomes one config_error_t and
 * loading fails at the end if there was any, so `patchbay check-config`
 * prints the whole list in one go.
 *
 * Conventions a user meets
 * ------------------------
 * - `key:` with no value, `~`, `null` or "" mean "not set": the default (or
 *   the environment) applies. The same holds for an empty environment
 *   variable. So the example config can list every secret without a value.
 * - Integers may be written quoted ("3000"); sizes accept KiB/MiB/GiB (also
 *   k, KB, M, MB, G, GB: all powers of 1024). Enum values match without regard
 *   to case and are stored in their canonical spelling.
 * - Secrets (and REDIS_URL, which may carry a password, and api_key_env, where
 *   people paste the key itself) are never echoed in a message; other bad
 *   values are, cut short and with control bytes escaped.
 *
 * libyaml pitfalls: the parser stops at its first syntax error, so a syntax
 * error is the one problem we cannot collect past; a reader error (bad UTF-8,
 * a NUL byte in the file) has no line mark, only a byte offset, so its line is
 * counted from the buffer. Aliases (*name) are refused rather than expanded:
 * nothing in this schema needs them and expanding them invites billion-laughs
 * inputs.
 */
#include "config.h"
#include "appcreds.h"
#include "log.h"
#include "strbuf.h"

#include <openssl/crypto.h>
#include <yaml.h>

#include <assert.h>
#include <errno.h>
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define CONFIG_DEFAULT_FILE "patchbay.yml"
#define CONFIG_FILE_MAX_BYTES (1024 * 1024) /* a config file is a page of text; more is a mistake */
#define NODE_MAX_DEPTH 32                   /* the schema is 3 deep; this only stops runaway input */
#define QUOTE_MAX_BYTES 64                  /* how much of a bad value a message echoes */
#define NAME_MAX_BYTES 64                   /* longer names get no "did you mean" */
#define GITHUB_LOGIN_MAX 39                 /* GitHub's limit on user and organisation names */

/* ---------------------------------------------------------------------------
 * Allocation: running out of memory while reading the config is not something
 * to recover from, so these abort with a message (Redis's zmalloc habit).
 * ------------------------------------------------------------------------- */

static void oom(void)
{
    fputs("patchbay: out of memory while loading the config\n", stderr);
    abort();
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

static void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        oom();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

static char *sb_take(strbuf_t *b)
{
    if (b->truncated)
        oom();
    return strbuf_detach(b, NULL);
}

/* ---------------------------------------------------------------------------
 * The schema
 * ------------------------------------------------------------------------- */

typedef enum {
    KEY_STRING, /* char *; NULL when unset */
    KEY_INT,    /* int within [min, max] */
    KEY_SIZE,   /* size_t bytes within [min, max]; KiB/MiB/GiB suffixes */
    KEY_BOOL,   /* int 0/1; true/false, yes/no, on/off */
    KEY_LIST,   /* config_list_t of strings */
    KEY_ENUM,   /* char *, one of `allowed`, stored in its canonical spelling */
} key_type_t;

/* Extra rule for one string (a KEY_STRING value or each KEY_LIST item):
 * NULL when fine, else a phrase that follows the key's name. */
typedef const char *(*key_check_fn)(const char *value);

typedef struct {
    const char *key; /* dotted path: "server.port" */
    key_type_t type;
    size_t offset; /* into config_t */
    long long min, max;
    const char *def;             /* default as text, NULL for none (KEY_LIST: def_list) */
    const char *const *def_list; /* KEY_LIST default, NULL-terminated */
    const char *const *allowed;  /* KEY_ENUM values, NULL-terminated */
    const char *env;             /* overriding environment variable, or NULL */
    int secret;                  /* never echo the value */
    key_check_fn check;
} key_spec_t;

static const char *check_webhook_path(const char *v)
{
    return v[0] == '/' ? NULL : "must start with '/'";
}

/* GitHub logins: ASCII letters, digits and single hyphens, not at either end,
 * at most 39 characters. Apps' slugs follow the same rule. */
static const char *check_handle(const char *v)
{
    static const char why[] = "must be a GitHub login: letters, digits and '-', not starting with '-', at most 39 characters";
    size_t n = strlen(v);
    if (v[0] == '@')
        return "must be the login without the '@' people type before it";
    if (n == 0 || n > GITHUB_LOGIN_MAX || v[0] == '-')
        return why;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return why;
    }
    return NULL;
}

static const char *check_redis_url(const char *v)
{
    if ((strncmp(v, "redis://", 8) == 0 && v[8] != '\0') || (strncmp(v, "unix://", 7) == 0 && v[7] != '\0'))
        return NULL;
    return "must start with redis:// (redis://host:port/db) or unix:// (unix:///path/to/redis.sock)";
}

static const char *check_http_url(const char *v)
{
    if ((strncmp(v, "http://", 7) == 0 && v[7] != '\0') || (strncmp(v, "https://", 8) == 0 && v[8] != '\0'))
        return NULL;
    return "must be an http:// or https:// URL";
}

/* A price or a cost in US dollars: digits with an optional fraction. */
static const char *check_dollars(const char *v)
{
    const char *why = "must be a non-negative number of US dollars, like 2.5";
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (v[0] == '\0' || !(v[0] >= '0' && v[0] <= '9') || *end != '\0' || errno != 0 || d < 0 || d > 1e9)
        return why;
    return NULL;
}

static const char *check_rate(const char *v)
{
    int calls;
    int64_t window_ms;
    return config_parse_rate(v, &calls, &window_ms) == 0
               ? NULL
               : "must be CALLS/WINDOW, like 80/60s, 80/1m or 500/1h (1-1000000 calls in 1 s to 1 day)";
}

static const char *check_app_id(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 20)
        return "must be the App's numeric ID (digits only)";
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return "must be the App's numeric ID (digits only)";
    return NULL;
}

/* A token people paste into a URL, a header and (traded) a cookie: printable
 * ASCII without the characters that end or split one of those. */
static const char *check_dashboard_token(const char *v)
{
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == ';' || *p == ',' || *p == '"' || *p == '\\' || *p == '&' || *p == '#')
            return "may hold only printable ASCII without spaces and ; , \" \\ & # (openssl rand -hex 32 makes a "
                   "good one)";
    return NULL;
}

static const char *check_log_level(const char *v)
{
    return log_level_parse(v) < 0 ? "must be one of debug, info, warn, error" : NULL;
}

static const char *check_env_name(const char *v)
{
    static const char why[] = "must be the NAME of the environment variable that holds the key (letters, digits and "
                              "'_', not starting with a digit), not the key itself";
    if (v[0] == '\0' || (v[0] >= '0' && v[0] <= '9'))
        return why;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return why;
    return NULL;
}

/* "127.0.0.1:11434", "[::1]:8080": which ranges make sense is the sandbox's
 * to say (netjail); here only the shape. */
static const char *check_endpoint(const char *v)
{
    const char *colon = v[0] == '[' ? strstr(v, "]:") : strrchr(v, ':');
    const char *port = colon ? colon + (v[0] == '[' ? 2 : 1) : NULL;
    char host[64];
    size_t hl = colon ? (size_t)(colon - v) - (v[0] == '[') : 0;
    unsigned char buf[16];
    if (port == NULL || hl == 0 || hl >= sizeof(host) || strspn(port, "0123456789") != strlen(port) || atoi(port) < 1 ||
        atoi(port) > 65535)
        return "must be an IP address and a port, like 127.0.0.1:11434 or [::1]:11434";
    memcpy(host, v + (v[0] == '['), hl);
    host[hl] = '\0';
    if (inet_pton(v[0] == '[' ? AF_INET6 : AF_INET, host, buf) != 1)
        return "must be an IP address and a port, like 127.0.0.1:11434 or [::1]:11434 (no host names)";
    return NULL;
}

/* A host path the operator makes visible in the sandbox: absolute, not /
 * (the whole host), no ".." (what is bound is what is written). */
static const char *check_host_path(const char *v)
{
    size_t n = strlen(v);
    if (v[0] != '/' || strspn(v, "/") == n)
        return "must be an absolute path, not / itself (like /opt/agents)";
    if (strcmp(v, "..") == 0 || strncmp(v, "../", 3) == 0 || strstr(v, "/../") != NULL ||
        (n >= 3 && strcmp(v + n - 3, "/..") == 0))
        return "must not contain \"..\"";
    return NULL;
}

static const char *check_backend(const char *v)
{
    return strcmp(v, "command") == 0 || strcmp(v, "openai") == 0 ? NULL : "must be command or openai";
}

/* The values GitHub puts in `author_association`. */
static const char *check_association(const char *v)
{
    static const char *const known[] = {"OWNER",       "MEMBER",    "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR",
                                        "FIRST_TIMER", "MANNEQUIN", "NONE",         NULL};
    for (size_t i = 0; known[i] != NULL; i++)
        if (strcasecmp(v, known[i]) == 0)
            return NULL;
    return "must be a GitHub author_association: OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, "
           "FIRST_TIMER, MANNEQUIN or NONE";
}

static const char *const appendfsync_values[] = {"always", "everysec", NULL};
static const char *const log_format_values[] = {"text", "json", NULL};
static const char *const backend_values[] = {"command", "openai", NULL};
static const char *const default_labels[] = {"patchbay", NULL};
static const char *const default_associations[] = {"OWNER", "MEMBER", "COLLABORATOR", NULL};
static const char *const default_command[] = {"claude", "-p", NULL};
/* the keys agent CLIs read; only these pass into the sandbox, and only when set */
static const char *const default_agent_env[] = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", NULL};
static const char *const isolation_values[] = {"auto", "bwrap", "none", NULL};
static const char *const no_items[] = {NULL};
static const char *const permission_values[] = {"admin", "maintain", "write", "triage", "read", NULL};
static const char *const dashboard_auth_values[] = {"token", "none", NULL};
/* GitHub's documented limits on content-generating requests ("About secondary
 * rate limits"): 80 a minute and 500 an hour, per installation */
static const char *const default_content_limits[] = {"80/60s", "500/3600s", NULL};

#define OFF(field) offsetof(config_t, field)
#define MIB (1024LL * 1024LL)

static const key_spec_t schema[] = {
    {"server.host", KEY_STRING, OFF(server.host), .def = "0.0.0.0", .env = "HOST"},
    {"server.port", KEY_INT, OFF(server.port), 0, 65535, .def = "3000", .env = "PORT"},
    {"server.webhook_path", KEY_STRING, OFF(server.webhook_path), .def = "/api/github/webhooks", .env = "WEBHOOK_PATH",
     .check = check_webhook_path},
    {"server.threads", KEY_INT, OFF(server.threads), 0, 1024, .def = "0"},
    {"server.body_limit_bytes", KEY_SIZE, OFF(server.body_limit_bytes), 1024, 1024 * MIB, .def = "26214400"},
    {"server.inflight_body_bytes", KEY_SIZE, OFF(server.inflight_body_bytes), 1024 + CONFIG_SMALL_BODY_RESERVE_BYTES,
     64 * 1024 * MIB, .def = "48MiB"},
    {"server.max_connections", KEY_INT, OFF(server.max_connections), 0, 10000000, .def = "0"},
    {"server.request_timeout_ms", KEY_INT, OFF(server.request_timeout_ms), 1, 3600000, .def = "10000"},
    {"server.redis_timeout_ms", KEY_INT, OFF(server.redis_timeout_ms), 1, 600000, .def = "1000"},
    {"server.public_url", KEY_STRING, OFF(server.public_url), .env = "PUBLIC_URL", .check = check_http_url},
    {"server.dashboard_token", KEY_STRING, OFF(server.dashboard_token), .env = "DASHBOARD_TOKEN", .secret = 1,
     .check = check_dashboard_token},
    {"dashboard.auth", KEY_ENUM, OFF(dashboard.auth), .def = "token", .env = "DASHBOARD_AUTH",
     .allowed = dashboard_auth_values},

    {"github.app_id", KEY_STRING, OFF(github.app_id), .env = "APP_ID", .check = check_app_id},
    {"github.private_key", KEY_STRING, OFF(github.private_key), .env = "PRIVATE_KEY", .secret = 1},
    {"github.private_key_path", KEY_STRING, OFF(github.private_key_path), .env = "PRIVATE_KEY_PATH"},
    {"github.webhook_secret", KEY_STRING, OFF(github.webhook_secret), .env = "WEBHOOK_SECRET", .secret = 1},
    {"github.api_url", KEY_STRING, OFF(github.api_url), .def = "https://api.github.com", .env = "GITHUB_API_URL",
     .check = check_http_url},
    {"github.url", KEY_STRING, OFF(github.url), .def = "https://github.com", .env = "GITHUB_URL", .check = check_http_url},
    {"github.timeout_ms", KEY_INT, OFF(github.timeout_ms), 1000, 600000, .def = "30000"},
    {"github.max_wait_s", KEY_INT, OFF(github.max_wait_s), 0, 86400, .def = "900"},
    {"github.content_limits", KEY_LIST, OFF(github.content_limits), .def_list = default_content_limits,
     .check = check_rate},
    /* GitHub: "No more than 100 concurrent requests are allowed" */
    {"github.max_inflight", KEY_INT, OFF(github.max_inflight), 1, 100000, .def = "100"},
    {"github.reconcile_interval_s", KEY_INT, OFF(github.reconcile_interval_s), 0, 86400, .def = "600"},

    /* a redis:// URL may carry a password, so it is treated as a secret */
    {"redis.url", KEY_STRING, OFF(redis.url), .env = "REDIS_URL", .secret = 1, .check = check_redis_url},
    {"redis.server_path", KEY_STRING, OFF(redis.server_path), .def = "redis-server"},
    {"redis.appendfsync", KEY_ENUM, OFF(redis.appendfsync), .def = "everysec", .allowed = appendfsync_values},

    {"data_dir", KEY_STRING, OFF(data_dir), .def = "./data", .env = "PATCHBAY_DATA_DIR"},

    {"log.level", KEY_STRING, OFF(log.level), .def = "info", .env = "LOG_LEVEL", .check = check_log_level},
    {"log.format", KEY_ENUM, OFF(log.format), .def = "text", .env = "LOG_FORMAT", .allowed = log_format_values},

    {"bot.handle", KEY_STRING, OFF(bot.handle), .def = "patchbay", .env = "PATCHBAY_HANDLE", .check = check_handle},

    {"triggers.labels", KEY_LIST, OFF(triggers.labels), .def_list = default_labels},
    {"triggers.permission", KEY_ENUM, OFF(triggers.permission), .def = "write", .allowed = permission_values},
    {"triggers.associations", KEY_LIST, OFF(triggers.associations), .def_list = default_associations,
     .check = check_association},

    {"workers.concurrency", KEY_INT, OFF(workers.concurrency), 1, 1024, .def = "2"},
    {"workers.max_attempts", KEY_INT, OFF(workers.max_attempts), 1, 100, .def = "3"},
    {"workers.retention_days", KEY_INT, OFF(workers.retention_days), 1, 3650, .def = "7"},
    {"workers.grace_seconds", KEY_INT, OFF(workers.grace_seconds), 0, 86400, .def = "60"},
    {"workers.lease_seconds", KEY_INT, OFF(workers.lease_seconds), 2, 3600, .def = "30"},
    {"workers.retry_delay_ms", KEY_INT, OFF(workers.retry_delay_ms), 1, 86400000, .def = "10000"},
    {"workers.retry_max_delay_ms", KEY_INT, OFF(workers.retry_max_delay_ms), 1, 86400000, .def = "600000"},

    {"environments.allow_registry_images", KEY_BOOL, OFF(environments.allow_registry_images), .def = "false"},
    {"environments.cache_bytes", KEY_SIZE, OFF(environments.cache_bytes), 64 * MIB, 1024 * 1024 * 1024 * MIB,
     .def = "20GiB"},
    {"environments.refresh_seconds", KEY_INT, OFF(environments.refresh_seconds), 0, 30 * 86400, .def = "3600"},
    {"default_environment", KEY_STRING, OFF(default_environment), .def = NULL},

    {"review.untrusted_agent", KEY_LIST, OFF(review.untrusted_agent), .def_list = no_items},

    /* 0: agent.timeout, agent.openai.max_steps, agent.openai.max_tokens */
    {"ask.timeout", KEY_INT, OFF(ask.timeout), 0, 7 * 86400, .def = "0"},
    {"ask.max_steps", KEY_INT, OFF(ask.max_steps), 0, 10000, .def = "0"},
    {"ask.max_tokens", KEY_INT, OFF(ask.max_tokens), 0, 2000000000, .def = "0"},

    {"sandbox.memory_bytes", KEY_SIZE, OFF(sandbox.memory_bytes), 64 * MIB, 1024 * 1024 * MIB, .def = "4GiB"},
    {"sandbox.processes", KEY_INT, OFF(sandbox.processes), 16, 1000000, .def = "1024"},
    {"sandbox.file_size_bytes", KEY_SIZE, OFF(sandbox.file_size_bytes), 1 * MIB, 1024 * 1024 * MIB, .def = "4GiB"},
    {"sandbox.open_files", KEY_INT, OFF(sandbox.open_files), 64, 1048576, .def = "4096"},
    {"sandbox.cpu_seconds", KEY_INT, OFF(sandbox.cpu_seconds), 1, 7 * 86400, .def = "7200"},
    {"sandbox.tree_bytes", KEY_SIZE, OFF(sandbox.tree_bytes), 1 * MIB, 1024 * 1024 * MIB, .def = "10GiB"},
    {"sandbox.egress_allow", KEY_LIST, OFF(sandbox.egress_allow), .def_list = no_items, .check = check_endpoint},
    {"sandbox.path", KEY_LIST, OFF(sandbox.path), .def_list = no_items, .check = check_host_path},
    {"sandbox.read_only", KEY_LIST, OFF(sandbox.read_only), .def_list = no_items, .check = check_host_path},
    {"sandbox.user_base", KEY_INT, OFF(sandbox.user_base), 1000, 2000000000, .def = "1879048192"},
    {"sandbox.users", KEY_INT, OFF(sandbox.users), 1, 65536, .def = "256"},
    {"sandbox.bwrap_path", KEY_STRING, OFF(sandbox.bwrap_path), .def = NULL},
    {"sandbox.slirp4netns_path", KEY_STRING, OFF(sandbox.slirp4netns_path), .def = NULL},

    {"workspaces.mirror_budget_bytes", KEY_SIZE, OFF(workspaces.mirror_budget_bytes), 0, 1024 * 1024 * 1024 * MIB,
     .def = "10GiB"},

    {"agent.backend", KEY_ENUM, OFF(agent.backend), .def = "command", .allowed = backend_values},
    {"agent.command", KEY_LIST, OFF(agent.command), .def_list = default_command},
    {"agent.timeout", KEY_INT, OFF(agent.timeout), 1, 7 * 86400, .def = "1800"},
    {"agent.test_rounds", KEY_INT, OFF(agent.test_rounds), 0, 100, .def = "2"},
    {"agent.attempts", KEY_INT, OFF(agent.attempts), 1, 8, .def = "1"},
    {"agent.backends", KEY_LIST, OFF(agent.backends), .def_list = no_items, .check = check_backend},
    {"agent.openai.base_url", KEY_STRING, OFF(agent.openai.base_url), .def = "http://127.0.0.1:11434/v1",
     .check = check_http_url},
    {"agent.openai.model", KEY_STRING, OFF(agent.openai.model), .def = "qwen2.5-coder"},
    /* a name, but the usual mistake is to paste the key itself here: never echo it */
    {"agent.openai.api_key_env", KEY_STRING, OFF(agent.openai.api_key_env), .def = "OPENAI_API_KEY", .secret = 1,
     .check = check_env_name},
    {"agent.openai.models", KEY_LIST, OFF(agent.openai.models), .def_list = no_items},
    {"agent.openai.max_steps", KEY_INT, OFF(agent.openai.max_steps), 1, 10000, .def = "60"},
    {"agent.openai.max_tokens", KEY_INT, OFF(agent.openai.max_tokens), 1000, 2000000000, .def = "2000000"},
    {"agent.openai.context_tokens", KEY_INT, OFF(agent.openai.context_tokens), 2048, 100000000, .def = "32768"},
    {"agent.openai.max_output_tokens", KEY_INT, OFF(agent.openai.max_output_tokens), 0, 10000000, .def = "4096"},
    {"agent.openai.request_timeout", KEY_INT, OFF(agent.openai.request_timeout), 1, 3600, .def = "300"},
    {"agent.openai.input_price", KEY_STRING, OFF(agent.openai.input_price), .def = "0", .check = check_dollars},
    {"agent.openai.output_price", KEY_STRING, OFF(agent.openai.output_price), .def = "0", .check = check_dollars},
    {"agent.openai.max_cost", KEY_STRING, OFF(agent.openai.max_cost), .def = "0", .check = check_dollars},
    {"agent.env", KEY_LIST, OFF(agent.env), .def_list = default_agent_env},
    {"agent.network", KEY_BOOL, OFF(agent.network), .def = "true"},
    {"agent.isolation", KEY_ENUM, OFF(agent.isolation), .def = "bwrap", .allowed = isolation_values},
};

#define SCHEMA_LEN (sizeof(schema) / sizeof(schema[0]))

static const key_spec_t *find_spec(const char *key)
{
    for (size_t i = 0; i < SCHEMA_LEN; i++)
        if (strcmp(schema[i].key, key) == 0)
            return &schema[i];
    return NULL;
}

/* Whether `key` is a section: some row's key starts with "key.". */
static int is_section(const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < SCHEMA_LEN; i++)
        if (strncmp(schema[i].key, key, n) == 0 && schema[i].key[n] == '.')
            return 1;
    return 0;
}

static const char *leaf_name(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

static void list_clear(config_list_t *list)
{
    if (list->items != NULL)
        for (size_t i = 0; i < list->count; i++)
            free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* ---------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */

static void errors_push(config_errors_t *errors, const char *file, int line, char *message)
{
    errors->items = xrealloc(errors->items, (errors->count + 1) * sizeof(*errors->items));
    config_error_t *e = &errors->items[errors->count++];
    e->file = file ? xstrdup(file) : NULL;
    e->line = line;
    e->message = message;
}

static void errors_addf(config_errors_t *errors, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void errors_addf(config_errors_t *errors, const char *file, int line, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom();
    errors_push(errors, file, line, msg);
}

/* 'value', cut at QUOTE_MAX_BYTES (on a UTF-8 boundary), control bytes escaped. */
static void append_quoted(strbuf_t *b, const char *s, size_t n)
{
    int cut = 0;
    if (n > QUOTE_MAX_BYTES) {
        n = QUOTE_MAX_BYTES;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = 1;
    }
    strbuf_append(b, "'");
    strbuf_append_printable(b, s, n);
    strbuf_append(b, cut ? "...'" : "'");
}

/* ---------------------------------------------------------------------------
 * Values: one parser for defaults, file and environment
 * ------------------------------------------------------------------------- */

static int parse_ll(const char *s, long long *out)
{
    if (!((s[0] >= '0' && s[0] <= '9') || ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* "26214400", "25MiB", "25 MB", "64k": binary multiples, whatever the spelling. */
int config_parse_size(const char *s, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        unsigned long long mult;
    } units[] = {
        {"", 1ULL},         {"b", 1ULL},         {"k", 1ULL << 10}, {"kb", 1ULL << 10}, {"kib", 1ULL << 10}, {"m", 1ULL << 20},
        {"mb", 1ULL << 20}, {"mib", 1ULL << 20}, {"g", 1ULL << 30}, {"gb", 1ULL << 30}, {"gib", 1ULL << 30},
    };
    if (!(s[0] >= '0' && s[0] <= '9'))
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(end, units[i].suffix) != 0)
            continue;
        if (v > ULLONG_MAX / units[i].mult)
            return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

int config_parse_rate(const char *s, int *calls, int64_t *window_ms)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"s", 1000}, {"m", 60000}, {"h", 3600000}};
    char *end = NULL;
    if (!(s[0] >= '0' && s[0] <= '9'))
        return -1;
    errno = 0;
    long c = strtol(s, &end, 10);
    if (errno != 0 || c < 1 || c > 1000000 || *end != '/' || !(end[1] >= '0' && end[1] <= '9'))
        return -1;
    const char *w = end + 1;
    long n = strtol(w, &end, 10);
    if (errno != 0 || n < 1)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        int64_t ms = (int64_t)n * units[i].ms;
        if (ms < 1000 || ms > 86400000)
            return -1;
        *calls = (int)c;
        *window_ms = ms;
        return 0;
    }
    return -1;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1", NULL}, *const no[] = {"false", "no", "off", "0", NULL};
    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
    }
    for (size_t i = 0; no[i] != NULL; i++) {
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/*
 * Parses `text` (len bytes, NUL-terminated after them, maybe holding NULs of
 * its own) as k's type and stores it in cfg. Returns NULL, or the problem as a
 * malloc'd phrase that follows the key's name ("must be an integer between 1
 * and 65535 (got 'abc')"). An empty text leaves the value as it was.
 */
static char *set_scalar(config_t *cfg, const key_spec_t *k, const char *text, size_t len)
{
    void *field = (char *)cfg + k->offset;
    strbuf_t why = STRBUF_INIT;
    int echo = !k->secret;

    if (len == 0)
        return NULL;
    if (memchr(text, '\0', len) != NULL)
        return xstrdup("must not contain a NUL character");

    switch (k->type) {
    case KEY_STRING: {
        const char *problem = k->check ? k->check(text) : NULL;
        if (problem != NULL) {
            strbuf_append(&why, problem);
            break;
        }
        char **slot = field;
        free(*slot);
        *slot = xstrndup(text, len);
        return NULL;
    }
    case KEY_ENUM: {
        for (size_t i = 0; k->allowed[i] != NULL; i++) {
            if (strcasecmp(text, k->allowed[i]) == 0) {
                char **slot = field;
                free(*slot);
                *slot = xstrdup(k->allowed[i]);
                return NULL;
            }
        }
        strbuf_append(&why, "must be one of ");
        for (size_t i = 0; k->allowed[i] != NULL; i++)
            strbuf_appendf(&why, "%s%s", i ? ", " : "", k->allowed[i]);
        break;
    }
    case KEY_INT: {
        long long v = 0;
        if (parse_ll(text, &v) != 0) {
            strbuf_appendf(&why, "must be an integer between %lld and %lld", k->min, k->max);
            break;
        }
        if (v < k->min || v > k->max) {
            strbuf_appendf(&why, "must be between %lld and %lld", k->min, k->max);
            break;
        }
        *(int *)field = (int)v;
        return NULL;
    }
    case KEY_SIZE: {
        unsigned long long v = 0;
        if (config_parse_size(text, &v) != 0) {
            strbuf_appendf(&why, "must be a size in bytes between %lld and %lld, like 26214400 or 25MiB", k->min, k->max);
            break;
        }
        if (v < (unsigned long long)k->min || v > (unsigned long long)k->max || v > SIZE_MAX) {
            strbuf_appendf(&why, "must be between %lld and %lld bytes", k->min, k->max);
            break;
        }
        *(size_t *)field = (size_t)v;
        return NULL;
    }
    case KEY_BOOL: {
        int v = 0;
        if (parse_bool(text, &v) != 0) {
            strbuf_append(&why, "must be true or false");
            break;
        }
        *(int *)field = v;
        return NULL;
    }
    case KEY_LIST:
        assert(!"lists are set by set_list");
        abort();
    }

    if (echo) {
        strbuf_append(&why, " (got ");
        append_quoted(&why, text, len);
        strbuf_append(&why, ")");
    }
    return sb_take(&why);
}

static void set_list_default(config_t *cfg, const key_spec_t *k)
{
    config_list_t *list = (config_list_t *)((char *)cfg + k->offset);
    size_t n = 0;
    while (k->def_list[n] != NULL)
        n++;
    list_clear(list);
    list->items = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        list->items[i] = xstrdup(k->def_list[i]);
    list->count = n;
}

/* ---------------------------------------------------------------------------
 * The YAML node tree
 * ------------------------------------------------------------------------- */

typedef enum { NODE_SCALAR, NODE_MAP, NODE_SEQ } node_kind_t;

typedef struct node {
    node_kind_t kind;
    int line;  /* 1-based */
    int plain; /* scalar written without quotes or tag, so ~ and null mean "not set" */
    char *text;
    size_t len;
    struct node **kids; /* NODE_MAP: key, value, key, value...; NODE_SEQ: items */
    size_t count;
} node_t;

static void node_free(node_t *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->count; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static const char *node_kind_name(const node_t *n)
{
    switch (n->kind) {
    case NODE_MAP:
        return "a mapping";
    case NODE_SEQ:
        return "a list";
    case NODE_SCALAR:
        break;
    }
    return "a single value";
}

static int node_is_null(const node_t *n)
{
    if (n->kind != NODE_SCALAR)
        return 0;
    if (n->len == 0)
        return 1; /* quoted "" too: empty means "not set", as in the environment */
    return n->plain && (strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 || strcmp(n->text, "Null") == 0 ||
                        strcmp(n->text, "NULL") == 0);
}

typedef struct {
    yaml_parser_t parser;
    const unsigned char *buf;
    size_t len;
    const char *file;
    config_errors_t *errors;
} reader_t;

static int line_at_offset(const unsigned char *buf, size_t len, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        if (buf[i] == '\n')
            line++;
    return line;
}

/* libyaml's own words for what is wrong, with the line it points at. */
static void syntax_error(reader_t *R)
{
    yaml_parser_t *p = &R->parser;
    strbuf_t msg = STRBUF_INIT;
    int line;

    if (p->error == YAML_MEMORY_ERROR)
        oom();
    strbuf_appendf(&msg, "YAML syntax error: %s", p->problem ? p->problem : "cannot parse the file");
    if (p->error == YAML_READER_ERROR) {
        line = line_at_offset(R->buf, R->len, p->problem_offset);
        if (p->problem_value != -1)
            strbuf_appendf(&msg, " (byte 0x%02x)", (unsigned)p->problem_value & 0xff);
    } else {
        line = (int)p->problem_mark.line + 1;
        if (p->context != NULL)
            strbuf_appendf(&msg, " (%s at line %d)", p->context, (int)p->context_mark.line + 1);
    }
    errors_push(R->errors, R->file, line, sb_take(&msg));
}

static int next_event(reader_t *R, yaml_event_t *ev)
{
    if (yaml_parser_parse(&R->parser, ev))
        return 0;
    syntax_error(R);
    return -1;
}

static node_t *node_new(node_kind_t kind, const yaml_event_t *ev)
{
    node_t *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    return n;
}

/* Builds the node that `ev` opens, reading events up to its end. Takes `ev`
 * (deletes it). NULL after an error, which is already recorded. */
static node_t *build_node(reader_t *R, yaml_event_t *ev, int depth)
{
    node_t *n = NULL;
    yaml_event_type_t end_type;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = node_new(NODE_SCALAR, ev);
        n->text = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        yaml_event_delete(ev);
        return n;
    case YAML_ALIAS_EVENT: {
        strbuf_t msg = STRBUF_INIT;
        const char *anchor = (const char *)ev->data.alias.anchor;
        strbuf_append(&msg, "YAML aliases (*");
        strbuf_append_printable(&msg, anchor, strlen(anchor));
        strbuf_append(&msg, ") are not supported; write the value out");
        errors_push(R->errors, R->file, (int)ev->start_mark.line + 1, sb_take(&msg));
        yaml_event_delete(ev);
        return NULL;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        break;
    default:
        /* libyaml only sends these events where a node may start */
        errors_addf(R->errors, R->file, (int)ev->start_mark.line + 1, "YAML syntax error: unexpected event %d", (int)ev->type);
        yaml_event_delete(ev);
        return NULL;
    }

    if (depth >= NODE_MAX_DEPTH) {
        errors_addf(R->errors, R->file, (int)ev->start_mark.line + 1, "nested more than %d levels deep", NODE_MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    if (ev->type == YAML_MAPPING_START_EVENT) {
        n = node_new(NODE_MAP, ev);
        end_type = YAML_MAPPING_END_EVENT;
    } else {
        n = node_new(NODE_SEQ, ev);
        end_type = YAML_SEQUENCE_END_EVENT;
    }
    yaml_event_delete(ev);

    for (;;) {
        yaml_event_t kid_ev;
        if (next_event(R, &kid_ev) != 0)
            goto fail;
        if (kid_ev.type == end_type) {
            yaml_event_delete(&kid_ev);
            return n;
        }
        node_t *kid = build_node(R, &kid_ev, depth + 1);
        if (kid == NULL)
            goto fail;
        n->kids = xrealloc(n->kids, (n->count + 1) * sizeof(*n->kids));
        n->kids[n->count++] = kid;
    }
fail:
    node_free(n);
    return NULL;
}

/* The file's one document as a tree: 0 with *root (NULL for an empty file),
 * or -1 with the error recorded. */
static int read_document(reader_t *R, node_t **root)
{
    yaml_event_t ev;
    node_t *doc = NULL;
    int rc = -1;

    *root = NULL;
    if (next_event(R, &ev) != 0) /* STREAM-START */
        return -1;
    yaml_event_delete(&ev);
    if (next_event(R, &ev) != 0)
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(R, &ev) != 0)
        return -1;
    if ((doc = build_node(R, &ev, 0)) == NULL)
        return -1;
    if (next_event(R, &ev) != 0) /* DOCUMENT-END */
        goto done;
    yaml_event_delete(&ev);
    if (next_event(R, &ev) != 0)
        goto done;
    if (ev.type != YAML_STREAM_END_EVENT) {
        errors_addf(R->errors, R->file, (int)ev.start_mark.line + 1,
                    "a second YAML document ('---'): the config file holds one");
        yaml_event_delete(&ev);
        goto done;
    }
    yaml_event_delete(&ev);
    *root = doc;
    doc = NULL;
    rc = 0;
done:
    node_free(doc);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Walking the tree against the schema
 * ------------------------------------------------------------------------- */

typedef struct {
    config_t *cfg;
    config_errors_t *errors;
    const char *file;     /* cfg->path */
    int line[SCHEMA_LEN]; /* where each key was set in the file; 0 = default or environment */
} load_t;

static size_t levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[NAME_MAX_BYTES + 1];
    if (la > NAME_MAX_BYTES || lb > NAME_MAX_BYTES)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/*
 * "unknown key 'concurency' in 'workers'; did you mean 'concurrency'?"
 * First the closest sibling, when it is a typo away; else the same name
 * elsewhere in the schema ("did you mean 'server.port'?" for a top-level
 * `port:`), the usual mistake with nested YAML.
 */
static void unknown_key(load_t *L, const node_t *key, const char *prefix)
{
    strbuf_t msg = STRBUF_INIT;
    char best[NAME_MAX_BYTES + 1] = "";
    size_t best_d = (size_t)-1, plen = strlen(prefix);
    const char *name = key->text;
    int has_nul = memchr(key->text, '\0', key->len) != NULL;

    for (size_t i = 0; !has_nul && i < SCHEMA_LEN; i++) {
        const char *k = schema[i].key;
        if (plen > 0) {
            if (strncmp(k, prefix, plen) != 0 || k[plen] != '.')
                continue;
            k += plen + 1;
        }
        size_t seg = strcspn(k, ".");
        if (seg > NAME_MAX_BYTES)
            continue;
        char cand[NAME_MAX_BYTES + 1];
        memcpy(cand, k, seg);
        cand[seg] = '\0';
        size_t d = levenshtein(name, cand);
        if (d < best_d) {
            best_d = d;
            memcpy(best, cand, seg + 1);
        }
    }

    strbuf_append(&msg, "unknown key ");
    append_quoted(&msg, key->text, key->len);
    if (plen > 0)
        strbuf_appendf(&msg, " in '%s'", prefix);

    /* a typo: at most 2 edits, and fewer than half the name's letters */
    if (best[0] != '\0' && best_d <= 2 && best_d * 2 < strlen(best) + 1) {
        strbuf_appendf(&msg, "; did you mean '%s'?", best);
    } else if (!has_nul && key->len <= NAME_MAX_BYTES) {
        /* the right name in the wrong place: the shortest key path with a segment called `name` */
        const char *where = NULL;
        size_t where_len = 0;
        for (size_t i = 0; i < SCHEMA_LEN; i++) {
            const char *k = schema[i].key;
            for (const char *seg = k; seg != NULL; seg = strchr(seg, '.') ? strchr(seg, '.') + 1 : NULL) {
                size_t n = strcspn(seg, ".");
                if (n == key->len && memcmp(seg, name, n) == 0) {
                    size_t upto = (size_t)(seg - k) + n;
                    if (where == NULL || upto < where_len)
                        where = k, where_len = upto;
                    break;
                }
            }
        }
        if (where != NULL)
            strbuf_appendf(&msg, "; did you mean '%.*s'?", (int)where_len, where);
    }
    errors_push(L->errors, L->file, key->line, sb_take(&msg));
}

static void apply_list(load_t *L, const key_spec_t *k, const node_t *val)
{
    config_list_t list = {NULL, 0};
    int ok = 1;

    list.items = xcalloc(val->count + 1, sizeof(char *));
    for (size_t i = 0; i < val->count; i++) {
        const node_t *item = val->kids[i];
        const char *problem = NULL;
        if (item->kind != NODE_SCALAR)
            problem =
                item->kind == NODE_MAP ? "items must be single values, not mappings" : "items must be single values, not lists";
        else if (node_is_null(item))
            problem = "items must not be empty";
        else if (memchr(item->text, '\0', item->len) != NULL)
            problem = "items must not contain a NUL character";
        else if (k->check != NULL)
            problem = k->check(item->text);
        if (problem != NULL) {
            strbuf_t msg = STRBUF_INIT;
            strbuf_appendf(&msg, "'%s' %s", leaf_name(k->key), problem);
            if (item->kind == NODE_SCALAR && item->len > 0 && !k->secret) {
                strbuf_append(&msg, " (got ");
                append_quoted(&msg, item->text, item->len);
                strbuf_append(&msg, ")");
            }
            errors_push(L->errors, L->file, item->line, sb_take(&msg));
            ok = 0;
            continue;
        }
        list.items[list.count++] = xstrndup(item->text, item->len);
    }
    if (!ok) {
        list_clear(&list);
        return;
    }
    config_list_t *slot = (config_list_t *)((char *)L->cfg + k->offset);
    list_clear(slot);
    *slot = list;
}

static void apply_node(load_t *L, const key_spec_t *k, const node_t *val)
{
    const char *name = leaf_name(k->key);

    if (node_is_null(val))
        return;
    if (k->type == KEY_LIST) {
        if (val->kind != NODE_SEQ) {
            errors_addf(L->errors, L->file, val->line, "'%s' must be a list, like [a, b], not %s", name, node_kind_name(val));
            return;
        }
        apply_list(L, k, val);
    } else {
        if (val->kind != NODE_SCALAR) {
            errors_addf(L->errors, L->file, val->line, "'%s' must be a single value, not %s", name, node_kind_name(val));
            return;
        }
        char *problem = set_scalar(L->cfg, k, val->text, val->len);
        if (problem != NULL) {
            errors_addf(L->errors, L->file, val->line, "'%s' %s", name, problem);
            free(problem);
            return;
        }
    }
    L->line[k - schema] = val->line;
}

/* environments: { NAME: { image: REF }, ... }: the names are the operator's,
 * beside the section's own settings (allow_registry_images, cache_bytes). */
static void add_environment(load_t *L, const node_t *key, const node_t *val)
{
    config_t *cfg = L->cfg;
    const char *name = key->text;
    if (key->len == 0 || key->len > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                                             key->len) {
        errors_addf(L->errors, L->file, key->line,
                    "environment name '%.64s' must be 1-64 letters, digits, '.', '_' or '-'", name);
        return;
    }
    const char *image = NULL;
    int image_line = val->line;
    for (size_t i = 0; i + 1 < val->count; i += 2) {
        const node_t *k = val->kids[i], *v = val->kids[i + 1];
        if (k->kind == NODE_SCALAR && strcmp(k->text, "image") == 0 && v->kind == NODE_SCALAR && v->len > 0) {
            image = v->text;
            image_line = v->line;
        } else {
            errors_addf(L->errors, L->file, k->line,
                        "environment '%s': only 'image' is known here (an OCI image reference, like "
                        "docker://docker.io/library/node:20-bookworm)",
                        name);
            return;
        }
    }
    if (image == NULL || strchr(image, ':') == NULL || strncmp(image, "docker-daemon:", 14) == 0) {
        errors_addf(L->errors, L->file, image_line,
                    "environment '%s' needs 'image': an image reference skopeo understands, like "
                    "docker://docker.io/library/node:20-bookworm or oci:/srv/images/layout:tag",
                    name);
        return;
    }
    config_environment_t *items = realloc(cfg->environments.items,
                                          (cfg->environments.count + 1) * sizeof(*items));
    if (items == NULL)
        oom();
    cfg->environments.items = items;
    items[cfg->environments.count].name = strdup(name);
    items[cfg->environments.count].image = strdup(image);
    if (items[cfg->environments.count].name == NULL || items[cfg->environments.count].image == NULL)
        oom();
    cfg->environments.count++;
}

const config_environment_t *config_environment(const config_t *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < cfg->environments.count; i++)
        if (strcmp(cfg->environments.items[i].name, name) == 0)
            return &cfg->environments.items[i];
    return NULL;
}

static void walk_map(load_t *L, const node_t *map, const char *prefix)
{
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const node_t *key = map->kids[i], *val = map->kids[i + 1];

        if (key->kind != NODE_SCALAR) {
            errors_addf(L->errors, L->file, key->line, "keys must be plain names, not %s", node_kind_name(key));
            continue;
        }
        int dup_line = 0;
        for (size_t j = 0; j < i && !dup_line; j += 2) {
            const node_t *prev = map->kids[j];
            if (prev->kind == NODE_SCALAR && prev->len == key->len && memcmp(prev->text, key->text, key->len) == 0)
                dup_line = prev->line;
        }
        if (dup_line) {
            strbuf_t msg = STRBUF_INIT;
            strbuf_append(&msg, "duplicate key ");
            append_quoted(&msg, key->text, key->len);
            if (prefix[0] != '\0')
                strbuf_appendf(&msg, " in '%s'", prefix);
            strbuf_appendf(&msg, " (first at line %d)", dup_line);
            errors_push(L->errors, L->file, key->line, sb_take(&msg));
            continue;
        }

        /* dots inside a name are not a shortcut for nesting, and NULs hide nothing */
        const key_spec_t *k = NULL;
        int section = 0;
        char *full = NULL;
        if (memchr(key->text, '\0', key->len) == NULL && strchr(key->text, '.') == NULL && key->len > 0) {
            strbuf_t b = STRBUF_INIT;
            strbuf_appendf(&b, "%s%s%s", prefix, prefix[0] ? "." : "", key->text);
            full = sb_take(&b);
            k = find_spec(full);
            section = k == NULL && is_section(full);
        }
        if (k != NULL) {
            apply_node(L, k, val);
        } else if (strcmp(prefix, "environments") == 0 && val->kind == NODE_MAP && full != NULL) {
            add_environment(L, key, val);
        } else if (section) {
            if (val->kind == NODE_MAP)
                walk_map(L, val, full);
            else if (!node_is_null(val))
                errors_addf(L->errors, L->file, val->line, "'%s' must be a mapping of settings, not %s", key->text,
                            node_kind_name(val));
        } else {
            unknown_key(L, key, prefix);
        }
        free(full);
    }
}

/* ---------------------------------------------------------------------------
 * Files and the environment
 * ------------------------------------------------------------------------- */

static const char *env_get(char *const *environ_, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; environ_ != NULL && environ_[i] != NULL; i++)
        if (strncmp(environ_[i], name, n) == 0 && environ_[i][n] == '=')
            return environ_[i][n + 1] != '\0' ? environ_[i] + n + 1 : NULL;
    return NULL;
}

/* The whole file, NUL-terminated; NULL with the error recorded. */
static char *read_file(load_t *L, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    struct stat st;

    if (f == NULL) {
        errors_addf(L->errors, path, 0, "cannot read the config file: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0) {
        errors_addf(L->errors, path, 0, "cannot read the config file: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        errors_addf(L->errors, path, 0, "cannot read the config file: %s",
                    S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file");
        goto fail;
    }
    buf = xcalloc(1, CONFIG_FILE_MAX_BYTES + 2);
    *len = fread(buf, 1, CONFIG_FILE_MAX_BYTES + 1, f);
    if (ferror(f)) {
        errors_addf(L->errors, path, 0, "cannot read the config file: %s", strerror(errno));
        goto fail;
    }
    if (*len > CONFIG_FILE_MAX_BYTES) {
        errors_addf(L->errors, path, 0, "the config file is larger than %d bytes", CONFIG_FILE_MAX_BYTES);
        goto fail;
    }
    fclose(f);
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

static void load_file(load_t *L, const char *path)
{
    reader_t R;
    node_t *root = NULL;
    size_t len = 0;
    char *buf = read_file(L, path, &len);

    if (buf == NULL)
        return;
    memset(&R, 0, sizeof(R));
    if (!yaml_parser_initialize(&R.parser))
        oom();
    R.buf = (const unsigned char *)buf;
    R.len = len;
    R.file = path;
    R.errors = L->errors;
    yaml_parser_set_input_string(&R.parser, R.buf, len);

    if (read_document(&R, &root) != 0 || root == NULL)
        goto done;
    if (root->kind == NODE_MAP)
        walk_map(L, root, "");
    else if (!node_is_null(root))
        errors_addf(L->errors, path, root->line,
                    "the config file must be a mapping of settings (like 'server:' with 'port: 3000' under it), not %s",
                    node_kind_name(root));
done:
    node_free(root);
    yaml_parser_delete(&R.parser);
    free(buf);
}

static void apply_env(load_t *L, char *const *environ_)
{
    for (size_t i = 0; i < SCHEMA_LEN; i++) {
        const key_spec_t *k = &schema[i];
        const char *v = k->env ? env_get(environ_, k->env) : NULL;
        if (v == NULL)
            continue;
        assert(k->type != KEY_LIST);
        char *problem = set_scalar(L->cfg, k, v, strlen(v));
        if (problem != NULL) {
            errors_addf(L->errors, NULL, 0, "%s: %s", k->env, problem);
            free(problem);
            continue;
        }
        L->line[i] = 0;
    }
}

/* A PEM key pasted into an environment variable often arrives with its line
 * breaks written as the two characters \n (docker env files, CI secrets);
 * Probot accepts that, so we do too: with no real newline in it, every \n
 * becomes one. */
static void unescape_private_key(config_t *cfg)
{
    char *key = cfg->github.private_key;
    if (key == NULL || strchr(key, '\n') != NULL || strstr(key, "\\n") == NULL)
        return;
    char *w = key;
    for (const char *r = key; *r; r++) {
        if (r[0] == '\\' && r[1] == 'n') {
            *w++ = '\n';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Rules that tie keys together. */
static void cross_check(load_t *L)
{
    const config_t *cfg = L->cfg;
    if (strcmp(cfg->agent.backend, "command") == 0 &&
        (cfg->agent.command.count == 0 || cfg->agent.command.items[0][0] == '\0')) {
        int line = L->line[find_spec("agent.command") - schema];
        if (line == 0)
            line = L->line[find_spec("agent.backend") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'command' must name the agent to run when 'backend' is command, like [claude, -p]");
    }
    if (cfg->server.inflight_body_bytes < cfg->server.body_limit_bytes + CONFIG_SMALL_BODY_RESERVE_BYTES) {
        int line = L->line[find_spec("server.inflight_body_bytes") - schema];
        if (line == 0)
            line = L->line[find_spec("server.body_limit_bytes") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'inflight_body_bytes' (%zu) must be at least 'body_limit_bytes' + 8 MiB (%zu): the largest body "
                    "must fit beside the 8 MiB kept for everyday deliveries",
                    cfg->server.inflight_body_bytes, cfg->server.body_limit_bytes + CONFIG_SMALL_BODY_RESERVE_BYTES);
    }
    /* a relative path would resolve inside the checkout, which is not the operator's */
    const char *prog = cfg->agent.command.count > 0 ? cfg->agent.command.items[0] : "";
    if (prog[0] != '/' && strchr(prog, '/') != NULL) {
        int line = L->line[find_spec("agent.command") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'command' runs %s, a relative path: give an absolute path, or a name on the sandbox's PATH "
                    "(/usr/local/bin, /usr/bin, /bin)",
                    prog);
    }
    if (cfg->default_environment != NULL && config_environment(cfg, cfg->default_environment) == NULL) {
        int line = L->line[find_spec("default_environment") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'default_environment' names '%s', which is not one of 'environments'", cfg->default_environment);
    }
    const char *uprog = cfg->review.untrusted_agent.count > 0 ? cfg->review.untrusted_agent.items[0] : "";
    if (uprog[0] != '/' && strchr(uprog, '/') != NULL) {
        int line = L->line[find_spec("review.untrusted_agent") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'untrusted_agent' runs %s, a relative path: give an absolute path, or a name on the sandbox's PATH",
                    uprog);
    }
    if (cfg->github.content_limits.count > CONFIG_RATE_WINDOWS_MAX) {
        int line = L->line[find_spec("github.content_limits") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line, "'content_limits' has %zu windows; at most %d",
                    cfg->github.content_limits.count, CONFIG_RATE_WINDOWS_MAX);
    }
    /* the same floor as agent.openai.max_tokens: below it one model call would end the question */
    if (cfg->ask.max_tokens > 0 && cfg->ask.max_tokens < 1000) {
        int line = L->line[find_spec("ask.max_tokens") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'max_tokens' (%d) must be 0 (agent.openai.max_tokens) or at least 1000", cfg->ask.max_tokens);
    }
    if (cfg->workers.retry_max_delay_ms < cfg->workers.retry_delay_ms) {
        int line = L->line[find_spec("workers.retry_max_delay_ms") - schema];
        if (line == 0)
            line = L->line[find_spec("workers.retry_delay_ms") - schema];
        errors_addf(L->errors, line ? L->file : NULL, line,
                    "'retry_max_delay_ms' (%d) must not be below 'retry_delay_ms' (%d)", cfg->workers.retry_max_delay_ms,
                    cfg->workers.retry_delay_ms);
    }
}

/* ---------------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------------- */

/* The App the set-up page registered (appsetup.h), when neither the file
 * nor the environment names one: its id, key file and webhook secret, each
 * unless set explicitly. */
static void apply_saved_credentials(config_t *cfg)
{
    appcreds_t c;
    if (cfg->github.app_id != NULL || appcreds_load(cfg->data_dir, &c) != 0)
        return;
    cfg->github.app_id = strdup(c.app_id);
    if (cfg->github.private_key == NULL && cfg->github.private_key_path == NULL)
        cfg->github.private_key_path = strdup(c.key_path);
    if (cfg->github.webhook_secret == NULL)
        cfg->github.webhook_secret = strdup(c.webhook_secret);
    OPENSSL_cleanse(c.webhook_secret, sizeof(c.webhook_secret));
    if (cfg->github.app_id == NULL)
        oom();
}

int config_load(config_t **out, config_errors_t *errors, const char *path, char *const *environ_)
{
    assert(out != NULL && errors != NULL);
    load_t *L = xcalloc(1, sizeof(*L));
    size_t first = errors->count;
    struct stat st;

    *out = NULL;
    L->cfg = xcalloc(1, sizeof(config_t));
    L->errors = errors;

    for (size_t i = 0; i < SCHEMA_LEN; i++) {
        const key_spec_t *k = &schema[i];
        if (k->type == KEY_LIST) {
            set_list_default(L->cfg, k);
        } else if (k->def != NULL) {
            char *problem = set_scalar(L->cfg, k, k->def, strlen(k->def));
            assert(problem == NULL && "a default the parser refuses");
            free(problem);
        }
    }

    if (path == NULL)
        path = env_get(environ_, "PATCHBAY_CONFIG");
    if (path == NULL && stat(CONFIG_DEFAULT_FILE, &st) == 0)
        path = CONFIG_DEFAULT_FILE;
    if (path != NULL) {
        L->cfg->path = xstrdup(path);
        L->file = L->cfg->path;
        load_file(L, L->cfg->path);
    }

    apply_env(L, environ_);
    unescape_private_key(L->cfg);
    apply_saved_credentials(L->cfg);
    cross_check(L);

    if (errors->count > first) {
        config_free(L->cfg);
        free(L);
        return -1;
    }
    *out = L->cfg;
    free(L);
    return 0;
}


int config_check_credentials(const config_t *cfg, config_errors_t *errors)
{
    size_t first = errors->count;

    if (cfg == NULL)
        return 0;
    /* one line each, what to set and where it comes from: the status page
     * and the log at start list them as they are */
    if (cfg->github.app_id == NULL)
        errors_addf(errors, NULL, 0, "APP_ID is not set: the App's ID, from its settings page on GitHub (or "
                                     "github.app_id in the config file)");
    if (cfg->github.private_key == NULL && cfg->github.private_key_path == NULL) {
        errors_addf(errors, NULL, 0, "no private key: PRIVATE_KEY_PATH, the .pem file GitHub generated for the App, "
                                     "or PRIVATE_KEY, its text (github.private_key_path or github.private_key in the "
                                     "config file)");
    } else if (cfg->github.private_key == NULL) {
        /* PRIVATE_KEY wins when both are set, so the path only matters without it */
        const char *p = cfg->github.private_key_path;
        FILE *f = fopen(p, "rb");
        struct stat st;
        const char *why = NULL;
        if (f == NULL)
            why = strerror(errno);
        else if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
            why = "not a regular file";
        else if (st.st_size == 0)
            why = "the file is empty";
        if (f != NULL)
            fclose(f);
        if (why != NULL) {
            strbuf_t msg = STRBUF_INIT;
            strbuf_append(&msg, "PRIVATE_KEY_PATH (github.private_key_path) ");
            append_quoted(&msg, p, strlen(p));
            strbuf_appendf(&msg, " cannot be read: %s; point it at the App's .pem private key", why);
            errors_push(errors, NULL, 0, sb_take(&msg));
        }
    }
    if (cfg->github.webhook_secret == NULL)
        errors_addf(errors, NULL, 0, "WEBHOOK_SECRET is not set: the webhook secret typed when the App was registered "
                                     "(or github.webhook_secret in the config file)");
    return (int)(errors->count - first);
}

void config_free(config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < SCHEMA_LEN; i++) {
        void *field = (char *)cfg + schema[i].offset;
        if (schema[i].type == KEY_STRING || schema[i].type == KEY_ENUM)
            free(*(char **)field);
        else if (schema[i].type == KEY_LIST)
            list_clear(field);
    }
    for (size_t i = 0; i < cfg->environments.count; i++) {
        free(cfg->environments.items[i].name);
        free(cfg->environments.items[i].image);
    }
    free(cfg->environments.items);
    free(cfg->path);
    free(cfg);
}

void config_errors_free(config_errors_t *errors)
{
    if (errors == NULL)
        return;
    for (size_t i = 0; i < errors->count; i++) {
        free(errors->items[i].file);
        free(errors->items[i].message);
    }
    free(errors->items);
    errors->items = NULL;
    errors->count = 0;
}

char *config_error_format(const config_error_t *err)
{
    strbuf_t b = STRBUF_INIT;
    if (err->file == NULL)
        strbuf_appendf(&b, "environment: %s", err->message);
    else if (err->line > 0)
        strbuf_appendf(&b, "%s:%d: %s", err->file, err->line, err->message);
    else
        strbuf_appendf(&b, "%s: %s", err->file, err->message);
    return sb_take(&b);
}

int config_list_contains(const config_list_t *list, const char *s)
{
    if (list == NULL || list->items == NULL || s == NULL)
        return 0;
    for (size_t i = 0; i < list->count; i++)
        if (strcasecmp(list->items[i], s) == 0)
            return 1;
    return 0;
}

int config_env_is_secret(const char *name)
{
    /* tokens other tools read, which an operator may have in patchbay's environment */
    static const char *const tokens[] = {"GITHUB_TOKEN", "GH_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN",
                                         "GITHUB_PAT", "INSTALLATION_TOKEN", "PATCHBAY_CONFIG", NULL};
    static const char *const prefixes[] = {"PRIVATE_KEY", "GITHUB_APP_", NULL};

    if (name == NULL)
        return 1;
    for (size_t i = 0; tokens[i] != NULL; i++)
        if (strcasecmp(name, tokens[i]) == 0)
            return 1;
    for (size_t i = 0; prefixes[i] != NULL; i++)
        if (strncasecmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    /* every variable patchbay itself reads: its secrets, and settings nobody else needs */
    for (size_t i = 0; i < SCHEMA_LEN; i++)
        if (schema[i].env != NULL && strcasecmp(name, schema[i].env) == 0)
            return 1;
    return 0;
}
