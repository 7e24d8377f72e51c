/*
 * config — patchbay's settings: built-in defaults, then the YAML file, then the
 * environment (DESIGN.md names; Probot's where Probot has one).
 *
 * The file is read with libyaml into a small node tree that keeps line numbers,
 * then walked against one schema table (config.c), so every key has exactly one
 * type, one default and one place where it is documented. Unknown keys, wrong
 * types and out-of-range values are errors that name file:line; config_load
 * collects all of them instead of stopping at the first, so `patchbay
 * check-config` can print the whole list at once.
 *
 * Memory: a config_t owns every string and list in it; config_free releases
 * them all. The loaded config is the only process-wide state patchbay keeps,
 * and it is read-only once loaded, so any thread may read it.
 */
#ifndef PATCHBAY_CONFIG_H
#define PATCHBAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Of server.inflight_body_bytes, CONFIG_SMALL_BODY_RESERVE_BYTES are kept for
 * bodies of at most CONFIG_SMALL_BODY_BYTES, so that a few large uploads
 * (GitHub's are rare; a stranger's need not be) never starve the everyday,
 * kilobyte-sized deliveries. The budget must hold the largest body beside it. */
#define CONFIG_SMALL_BODY_BYTES (1024 * 1024)
#define CONFIG_SMALL_BODY_RESERVE_BYTES (8 * 1024 * 1024)

typedef struct {
    char **items; /* NULL-terminated */
    size_t count;
} config_list_t;

/* One named environment: the OCI image a job's commands run in. */
typedef struct {
    char *name;  /* what a repository writes: environment: node20 */
    char *image; /* any skopeo reference: docker://..., oci:/path:tag, ... */
} config_environment_t;

typedef struct {
    /* where the file came from, NULL when built-in defaults only */
    char *path;

    struct {
        char *host;          /* HOST, default "0.0.0.0" */
        int port;            /* PORT, default 3000 */
        char *webhook_path;  /* WEBHOOK_PATH, default "/api/github/webhooks" */
        int threads;         /* event loops; 0 = one per core */
        size_t body_limit_bytes;     /* default 25 MiB, GitHub's own cap */
        size_t inflight_body_bytes;  /* request bodies held at once, all connections together; default 48 MiB */
        int max_connections;         /* open client connections; 0 = what the open-file limit allows */
        int request_timeout_ms;      /* a request (head and body) must arrive within this */
        int redis_timeout_ms;        /* a delivery not queued by then is spooled */
        char *public_url;            /* how GitHub reaches us, and the one name besides loopback's that
                                        the pages and the dashboard answer to (PUBLIC_URL) */
        char *dashboard_token;       /* DASHBOARD_TOKEN; NULL: generated at first start under data_dir */
    } server;

    struct {
        char *auth;                  /* DASHBOARD_AUTH: token (default) | none, the operator's opt-out */
    } dashboard;

    struct {
        char *app_id;            /* APP_ID */
        char *private_key;       /* PRIVATE_KEY (PEM text) */
        char *private_key_path;  /* PRIVATE_KEY_PATH */
        char *webhook_secret;    /* WEBHOOK_SECRET */
        char *api_url;           /* GITHUB_API_URL, default https://api.github.com */
        char *url;               /* GITHUB_URL, default https://github.com */
        int timeout_ms;          /* one API exchange, start to finish */
        int max_wait_s;          /* longest rate-limit wait a call sits out before giving the job back */
        config_list_t content_limits; /* "CALLS/SECONDSs" each: content-generating calls per installation in
                                         any such window (config_parse_rate); default GitHub's 80/60s, 500/3600s */
        int max_inflight;        /* calls in flight per installation, all processes together; GitHub's is 100 */
        int reconcile_interval_s; /* how often run/serve ask GitHub to redeliver missed deliveries; 0: never */
    } github;

    struct {
        char *url;               /* REDIS_URL; NULL = patchbay runs its own */
        char *server_path;       /* redis-server binary for the private one */
        char *appendfsync;       /* private redis: always | everysec */
    } redis;

    char *data_dir;              /* PATCHBAY_DATA_DIR, default "./data" */

    struct {
        char *level;             /* LOG_LEVEL: debug | info | warn | error */
        char *format;            /* LOG_FORMAT: text | json */
    } log;

    struct {
        char *handle;            /* PATCHBAY_HANDLE, default "patchbay" */
    } bot;

    struct {
        config_list_t labels;        /* default [patchbay] */
        config_list_t associations;  /* default [OWNER, MEMBER, COLLABORATOR] */
        char *permission;            /* the least repository permission a requester needs, checked live; default write */
    } triggers;

    struct {
        int concurrency;             /* default 2 */
        int max_attempts;            /* default 3 */
        int retention_days;          /* finished jobs and delivery ids kept; default 7 */
        int grace_seconds;           /* SIGTERM: running jobs may finish within this; default 60 */
        int lease_seconds;           /* a silent worker's job is reclaimed after this; default 30 */
        int retry_delay_ms;          /* first retry's backoff; doubles per attempt; default 10000 */
        int retry_max_delay_ms;      /* the backoff's cap; default 600000 */
    } workers;

    struct {
        size_t mirror_budget_bytes;  /* repository mirrors above this are evicted, LRU; 0 = never; default 10 GiB */
    } workspaces;

    struct {
        /* What every sandboxed command of a job gets at most (a repository's
         * sandbox section can only lower these). Per process unless said. */
        size_t memory_bytes;       /* RLIMIT_DATA; default 4 GiB */
        int processes;             /* per job (its own host user, as root); default 1024 */
        size_t file_size_bytes;    /* RLIMIT_FSIZE; default 4 GiB */
        int open_files;            /* RLIMIT_NOFILE; default 4096 */
        int cpu_seconds;           /* RLIMIT_CPU; default 7200 */
        size_t tree_bytes;         /* the work tree and scratch, watched; default 10 GiB */
        config_list_t egress_allow; /* "ip:port" of the host or private networks the sandbox may reach */
        config_list_t path;        /* host directories in front of the sandbox's PATH, bound read-only */
        config_list_t read_only;   /* more host paths bound read-only at the same place */
        int user_base;             /* as root: jobs run as host users user_base.. user_base+users-1 */
        int users;
        char *bwrap_path;          /* NULL: the usual places */
        char *slirp4netns_path;    /* NULL: the usual places */
    } sandbox;

    struct {
        config_environment_t *items; /* the operator's named images, in file order */
        size_t count;
        int allow_registry_images;   /* a repository may name a docker:// image itself */
        size_t cache_bytes;          /* unpacked images above this are pruned, least recently used first */
        int refresh_seconds;         /* a registry image's reference is looked up again after this */
    } environments;
    char *default_environment;       /* the environment of repositories that name none; NULL: the host's /usr */

    struct {
        /* The agent for pull requests whose code is a stranger's (a fork, or an
         * author without write access): empty: the built-in agent when
         * agent.backend is openai, else none (no review, a note); [builtin]:
         * the built-in agent; any other list: this command agent (the
         * operator accepts that it reads the stranger's code with its key). */
        config_list_t untrusted_agent;
    } review;

    struct {
        /* What an ask (a question answered with one reply) may spend; 0: the
         * agent.* value. A repository's own ask section can only lower them. */
        int timeout;                 /* seconds of wall clock for the agent */
        int max_steps;               /* built-in agent: model calls */
        int max_tokens;              /* built-in agent: tokens */
    } ask;

    struct {
        char *backend;               /* command | openai */
        config_list_t command;       /* argv */
        int timeout;                 /* seconds of wall clock */
        int test_rounds;
        int attempts;                /* best of N: parallel attempts per fix */
        config_list_t backends;      /* best of N: attempt k uses backends[k % count]; empty: `backend` for all */
        struct {
            char *base_url;
            char *model;
            char *api_key_env;
            config_list_t models;   /* best of N: attempt k uses models[k % count]; empty: `model` for all */
            int max_steps;          /* model calls per run */
            int max_tokens;         /* tokens per job, as the endpoint reports them */
            int context_tokens;     /* the model's context window */
            int max_output_tokens;  /* per answer; 0: not sent */
            int request_timeout;    /* seconds per call */
            char *input_price;      /* USD per million prompt tokens, "0": unknown */
            char *output_price;     /* USD per million completion tokens */
            char *max_cost;         /* USD per job, "0": no limit */
        } openai;
        config_list_t env;  /* names of variables passed to the agent (its own API keys), when set */
        int network;        /* the agent, setup and test commands may reach the network */
        char *isolation;    /* bwrap | none ("auto": bwrap, its old name) */
    } agent;
} config_t;

/* The operator's environment called name, or NULL. */
const config_environment_t *config_environment(const config_t *cfg, const char *name);

/* "26214400", "25MiB", "25 MB", "64k": bytes, binary multiples, however
 * written. 0, or -1 when it is not a size. */
int config_parse_size(const char *s, unsigned long long *out);

#define CONFIG_RATE_WINDOWS_MAX 4 /* github.content_limits entries */

/* A rate "80/60s" (also "80/1m", "500/1h"): at most *calls in any
 * *window_ms. 0, or -1 when it is not one (calls 1-1000000, window 1 s-1 day). */
int config_parse_rate(const char *s, int *calls, int64_t *window_ms);

/* One problem found while loading; `line` is 0 when it has no place in a file
 * (an environment variable, a missing credential). */
typedef struct {
    char *file;   /* NULL for the environment */
    int line;
    char *message;
} config_error_t;

typedef struct {
    config_error_t *items;
    size_t count;
} config_errors_t;

/* Defaults, then the file (`path`, or PATCHBAY_CONFIG, or ./patchbay.yml when
 * it exists), then the environment. Returns 0 and a config in *out, or -1 with
 * every problem in *errors (and *out NULL). Both are the caller's to free.
 * `environ_` is the environment to read (NULL-terminated "NAME=value"; NULL
 * reads nothing). Problems are appended: start *errors as {0}.
 * An empty value (`key:`, ~, null, "" or an empty variable) means "not set".
 * A private key with no newline but literal "\n" sequences (a PEM pasted
 * into one env line) is stored with real newlines, as Probot does. */
int config_load(config_t **out, config_errors_t *errors, const char *path, char *const *environ_);

/* Problems that are not errors in the file but stop patchbay from talking to
 * GitHub (no APP_ID, no key, no secret). Appended to *errors; returns how many. */
int config_check_credentials(const config_t *cfg, config_errors_t *errors);

void config_free(config_t *cfg);
void config_errors_free(config_errors_t *errors);

/* "file:line: message" or "environment: message"; caller frees. */
char *config_error_format(const config_error_t *err);

/* Whether `s` (case-insensitive) is in `list`. */
int config_list_contains(const config_list_t *list, const char *s);

/* Whether the environment variable `name` may carry one of patchbay's secrets
 * or settings (a GitHub token, WEBHOOK_SECRET, PRIVATE_KEY*, APP_ID,
 * REDIS_URL, DASHBOARD_TOKEN, PATCHBAY_CONFIG, any variable patchbay reads): such
 * a variable is never passed to an agent or a repository's commands. */
int config_env_is_secret(const char *name);

#endif
