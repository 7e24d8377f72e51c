/*
 * ghapi — everything patchbay says to GitHub's REST API: the App's identity
 * (JWTs), installation tokens, and a client that survives rate limits,
 * outages and expired tokens, with one small typed function per call patchbay
 * makes.
 *
 * Two objects. A ghapi_app_t is the App as one process knows it: App ID,
 * private key, the cached JWT, what the x-ratelimit-* headers last said about
 * each installation, and the tokens seen so far; threads share it. A ghapi_t
 * is one thread's client: a keep-alive libcurl handle, a Redis connection for
 * the shared token cache and content budget (ghshare.h), a small ETag cache,
 * and the last error. Make one per thread; never share one between threads.
 *
 * Every call goes through ghapi_request, which
 *   - authenticates as the App (a JWT, re-signed a minute before it expires)
 *     or as an installation (a token narrowed to one repository and to the
 *     permissions jobs need, GHAPI_TOKEN_PERMISSIONS, shared through Redis);
 *   - on a 401 drops that token or JWT and tries once more with a fresh one;
 *   - sends If-None-Match for GETs it has an answer for (a 304 costs no rate
 *     limit) and follows Link rel="next" in ghapi_get_all;
 *   - waits when GitHub says so, as GitHub documents it (ghapi_decide):
 *       403/429 with x-ratelimit-remaining: 0  until x-ratelimit-reset;
 *       a secondary rate limit                  retry-after, else 60 s, 120 s, 240 s...;
 *       5xx, connection failures, timeouts      jittered exponential backoff from 1 s;
 *     at most GHAPI_MAX_ATTEMPTS tries, and never one wait longer than
 *     max_wait_ms: beyond that it returns GHAPI_ERR_RATE_LIMITED and
 *     ghapi_retry_after_ms() tells the caller (a worker re-queues the job);
 *   - before sending, honours the installation's budget: it waits when the
 *     last answer said remaining 0, keeps content-creating calls (POST, PATCH,
 *     PUT, DELETE) under 80 a minute per installation across all processes,
 *     and refuses low-priority calls (GHAPI_CALL_LOW_PRIORITY: progress-comment
 *     edits) with GHAPI_ERR_DEFERRED once the budget runs short, so they are
 *     the first to give way; the caller sends its newest state later, which
 *     coalesces the edits it skipped.
 * All waiting and all time go through the injectable clock in the options, so
 * tests can assert the wait chosen without sleeping.
 *
 * A 5xx answer to a POST may hide a request GitHub did carry out; retrying it
 * can repeat it. Job steps are idempotent for that reason (they look for the
 * comment, branch or PR they made before making one).
 *
 * Memory: functions returning json_t give the caller a reference
 * (json_decref); char * results are malloc'd (free). ghapi_error() points into
 * the client and lives until its next call. Nothing here logs a token, a JWT
 * or the private key.
 */
#ifndef PATCHBAY_GHAPI_H
#define PATCHBAY_GHAPI_H

#include "app/common/config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    GHAPI_OK = 0,
    GHAPI_ERR_NOT_FOUND = -1,    /* 404/410: absent, or invisible to this token */
    GHAPI_ERR_UNAUTHORIZED = -2, /* 401 even with a fresh token or JWT: wrong App ID or key, uninstalled */
    GHAPI_ERR_FORBIDDEN = -3,    /* 403 that is not a rate limit: a permission the App lacks */
    GHAPI_ERR_VALIDATION = -4,   /* 422: GitHub's own message in ghapi_error() */
    GHAPI_ERR_RATE_LIMITED = -5, /* the wait GitHub asks for exceeds max_wait_ms (see ghapi_retry_after_ms) */
    GHAPI_ERR_RETRYABLE = -6,    /* 5xx, connection failures, timeouts: still failing after every attempt */
    GHAPI_ERR_PERMANENT = -7,    /* anything else: a bad request or URL, an answer we cannot read, no key */
    GHAPI_ERR_DEFERRED = -8,     /* a low-priority call not sent, to save the budget */
} ghapi_err_t;

/* What a call may use: injectable so tests control time. now_ms is the wall
 * clock in epoch milliseconds (JWT claims, token expiry, x-ratelimit-reset).
 * sleep_ms waits; it returns 0, or -1 when interrupted (shutting down: the
 * call then fails with GHAPI_ERR_RETRYABLE). NULL members take the defaults
 * (clock_wall_ms, nanosleep). */
typedef struct {
    int64_t (*now_ms)(void *ctx);
    int (*sleep_ms)(void *ctx, int64_t ms);
    void *ctx;
} ghapi_clock_t;

#define GHAPI_MAX_ATTEMPTS 5
#define GHAPI_BACKOFF_BASE_MS 1000        /* 5xx / connection: 1 s, 2 s, 4 s... */
#define GHAPI_BACKOFF_CAP_MS 60000
#define GHAPI_SECONDARY_WAIT_MS 60000     /* GitHub: "wait at least one minute" */
#define GHAPI_SECONDARY_CAP_MS (15 * 60000)
#define GHAPI_LOW_PRIORITY_RESERVE 200    /* x-ratelimit-remaining kept for real work */
#define GHAPI_ETAG_SLOTS 64
#define GHAPI_ETAG_MAX_BYTES (256 * 1024) /* larger answers are not cached */
#define GHAPI_ERR_BYTES 512
/* What an installation token is narrowed to: what fix, follow-up and review
 * jobs need (metadata: read comes with any token). */
#define GHAPI_TOKEN_PERMISSIONS \
    "{\"contents\":\"write\",\"issues\":\"write\",\"pull_requests\":\"write\",\"checks\":\"write\",\"metadata\":\"read\"}"

typedef struct {
    const char *api_url;          /* GITHUB_API_URL */
    const char *app_id;           /* APP_ID */
    const char *private_key;      /* PEM text; NULL: read private_key_path */
    const char *private_key_path;
    const char *redis_url;        /* where tokens and the budget are shared; NULL: this process only */
    const char *user_agent;       /* NULL: "patchbay" */
    int connect_timeout_ms;
    int timeout_ms;               /* one exchange, start to finish */
    int max_attempts;
    int64_t max_wait_ms;          /* the longest single wait before giving up with RATE_LIMITED */
    ghapi_clock_t clock;
    int anonymous;                /* no App yet (the manifest flow): only GHAPI_AUTH_NONE calls work */
    char saved_app_id[32];        /* ghapi_options_from_config: an App the set-up page registered */
    char saved_key_path[4096];
} ghapi_options_t;

#define GHAPI_OPTIONS_INIT {"https://api.github.com", NULL, NULL, NULL, NULL, NULL, 10000, 30000, GHAPI_MAX_ATTEMPTS, 15 * 60000, {NULL, NULL, NULL}, 0, "", ""}

/* The options for cfg (github.* keys), sharing through redis_url (which may
 * differ from cfg's: the private Redis of `patchbay run`). Points into cfg. */
void ghapi_options_from_config(ghapi_options_t *o, const config_t *cfg, const char *redis_url);

typedef struct ghapi_app_s ghapi_app_t;
typedef struct ghapi_s ghapi_t;

/* Loads the key and checks the options. GHAPI_OK, or GHAPI_ERR_PERMANENT with
 * a one-line reason in err (no APP_ID, an unreadable or non-RSA key). The
 * options' strings are copied. Main thread, before the clients are made. */
int ghapi_app_new(ghapi_app_t **out, const ghapi_options_t *opts, char *err, size_t err_len);
/* After every ghapi_t made from it is freed. */
void ghapi_app_free(ghapi_app_t *app);

/* A client for this thread. NULL when out of memory or libcurl fails. */
ghapi_t *ghapi_new(ghapi_app_t *app);
void ghapi_free(ghapi_t *gh);

/* The last failure, one line ("422 Validation Failed: A pull request already
 * exists for o:b."), its HTTP status (0: none), and for RATE_LIMITED how long
 * GitHub asked to wait. */
const char *ghapi_error(const ghapi_t *gh);
int ghapi_status(const ghapi_t *gh);
int64_t ghapi_retry_after_ms(const ghapi_t *gh);
/* Log lines of this client carry these ids (either may be NULL); copied. */
void ghapi_set_log_ids(ghapi_t *gh, const char *delivery, const char *job);

typedef struct {
    uint64_t requests;   /* HTTP exchanges */
    uint64_t mints;      /* installation tokens this client minted */
    uint64_t not_modified;
    uint64_t waits;
    int64_t waited_ms;
} ghapi_stats_t;
void ghapi_stats(const ghapi_t *gh, ghapi_stats_t *out);

/* ---------------------------------------------------------------------------
 * The retry policy, one table and one function, exported so tests can check
 * every mode without a network.
 * ------------------------------------------------------------------------- */

typedef enum { GHAPI_WAIT_NONE = 0, GHAPI_WAIT_PRIMARY, GHAPI_WAIT_SECONDARY, GHAPI_WAIT_BACKOFF } ghapi_wait_kind_t;

typedef struct {
    long status;           /* 0: no answer */
    int transport;         /* ghhttp_transport_t */
    int64_t rl_remaining;  /* -1: header absent */
    int64_t rl_reset_s;
    int64_t retry_after_s;
    int secondary_message; /* the body speaks of a secondary rate limit */
} ghapi_answer_t;

typedef struct {
    ghapi_err_t err;        /* what the answer means if no retry happens */
    ghapi_wait_kind_t kind; /* NONE: final */
    int64_t wait_ms;
} ghapi_decision_t;

/* secondary_hits and failures: how many secondary limits and 5xx/connection
 * failures this call met before this answer; random: any 64-bit value (the
 * jitter). */
void ghapi_decide(ghapi_decision_t *out, const ghapi_answer_t *a, int secondary_hits, int failures, int64_t now_ms,
                  uint64_t random);

const char *ghapi_err_name(int err);

/* "2026-11-23T21:21:50Z" (GitHub's timestamps) into epoch seconds; 0, or -1
 * when it is not that form. */
int ghapi_time_parse(int64_t *out_s, const char *iso);

/* ---------------------------------------------------------------------------
 * Raw calls
 * ------------------------------------------------------------------------- */

typedef enum {
    GHAPI_AUTH_INSTALLATION = 0, /* an installation token (installation, repo) */
    GHAPI_AUTH_APP,              /* the App's JWT (/app/... endpoints) */
    GHAPI_AUTH_NONE,
} ghapi_auth_t;

#define GHAPI_CALL_LOW_PRIORITY 0x1u /* may be deferred to save budget */
#define GHAPI_CALL_RAW 0x2u          /* the answer is not JSON (diffs, raw file contents) */
#define GHAPI_CALL_NO_ETAG 0x4u      /* do not cache or revalidate */

typedef struct {
    const char *method;   /* GET, POST, PATCH, PUT, DELETE */
    const char *path;     /* "/repos/o/r/issues/1?x=y", or an absolute URL under api_url (Link) */
    json_t *body;         /* borrowed; NULL: none */
    ghapi_auth_t auth;
    int64_t installation; /* GHAPI_AUTH_INSTALLATION */
    const char *repo;     /* "owner/name" the token is narrowed to; NULL: the whole installation */
    const char *accept;   /* NULL: application/vnd.github+json */
    unsigned flags;
} ghapi_call_t;

typedef struct {
    int status;
    json_t *json;   /* the parsed answer; NULL for empty answers and RAW calls */
    char *raw;      /* RAW calls: the bytes, NUL-terminated */
    size_t raw_len;
    char *next;     /* Link rel="next", or NULL */
} ghapi_response_t;

/* GHAPI_OK with the answer in *out (ghapi_response_free), or an error code
 * (then *out holds nothing to free, though freeing it is harmless). */
int ghapi_request(ghapi_response_t *out, ghapi_t *gh, const ghapi_call_t *call);
void ghapi_response_free(ghapi_response_t *r);

/* Every page of a list: the items of each page's array, in order, into a new
 * array *out, following Link rel="next" until no next or max_items. */
int ghapi_get_all(json_t **out, ghapi_t *gh, const ghapi_call_t *call, size_t max_items);

/* ---------------------------------------------------------------------------
 * Identity
 * ------------------------------------------------------------------------- */

/* The App's JWT (cached; re-signed a minute before expiry). */
int ghapi_app_jwt(char **out, ghapi_t *gh);
/* An installation token narrowed to repo (NULL: the whole installation), for
 * git's credential callback. *expires_at_s may be NULL. */
int ghapi_installation_token(char **out, int64_t *expires_at_s, ghapi_t *gh, int64_t installation, const char *repo);

/* ---------------------------------------------------------------------------
 * The calls patchbay makes. `repo` is "owner/name"; calls on a repository
 * authenticate as `installation` with a token narrowed to that repository.
 * ------------------------------------------------------------------------- */

typedef struct {
    int64_t installation;
    const char *repo;
} ghapi_repo_t;

/* GET /app (JWT): id, slug, name, permissions, events. */
int ghapi_app_get(json_t **out, ghapi_t *gh);
/* GET /repos/{repo}/installation (JWT): the installation that covers repo. */
int ghapi_repo_installation(int64_t *out, ghapi_t *gh, const char *repo);
/* GET /users/{slug}[bot]; and the commit identity built from it:
 * "<slug>[bot]" and "<id>+<slug>[bot]@users.noreply.github.com". */
int ghapi_bot_user(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *slug);
int ghapi_bot_identity(char **name, char **email, ghapi_t *gh, const ghapi_repo_t *r, const char *slug);

int ghapi_repo_get(json_t **out, ghapi_t *gh, const ghapi_repo_t *r);
int ghapi_issue_get(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number);
/* Every comment, oldest first (pages of 100), at most max (0: GHAPI_LIST_MAX). */
#define GHAPI_LIST_MAX 10000
int ghapi_issue_comments(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, size_t max);
/* "admin", "write", "read" or "none" (malloc'd). */
int ghapi_collaborator_permission(char **out, ghapi_t *gh, const ghapi_repo_t *r, const char *login);

int ghapi_comment_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, const char *body);
/* flags: GHAPI_CALL_LOW_PRIORITY for progress edits (may answer DEFERRED). */
int ghapi_comment_update(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t comment_id, const char *body,
                         unsigned flags);

typedef enum { GHAPI_REACT_ISSUE, GHAPI_REACT_ISSUE_COMMENT, GHAPI_REACT_REVIEW_COMMENT } ghapi_react_on_t;
/* content: +1, -1, laugh, confused, heart, hooray, rocket, eyes. Adding one
 * that is already there answers OK (GitHub's 200). out may be NULL. */
int ghapi_reaction_add(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, ghapi_react_on_t on, int64_t id,
                       const char *content);

int ghapi_labels_add(ghapi_t *gh, const ghapi_repo_t *r, int64_t number, const char *const *labels, size_t n);
/* A label the issue does not have answers GHAPI_ERR_NOT_FOUND. */
int ghapi_label_remove(ghapi_t *gh, const ghapi_repo_t *r, int64_t number, const char *label);

/* A file's bytes at ref (NULL: the default branch); NOT_FOUND when absent. */
int ghapi_contents_get(char **out, size_t *len, ghapi_t *gh, const ghapi_repo_t *r, const char *path, const char *ref);
#define GHAPI_REPO_CONFIG_PATH ".github/patchbay.yml"
/* .github/patchbay.yml on the default branch; NOT_FOUND when there is none. */
int ghapi_repo_config(char **out, size_t *len, ghapi_t *gh, const ghapi_repo_t *r);

/* POST /pulls. A PR for the same head and base answers VALIDATION ("A pull
 * request already exists for ..."). */
int ghapi_pull_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *head, const char *base,
                      const char *title, const char *body, int draft);
int ghapi_pull_get(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number);
/* The newest PR from branch `head` of the repository itself (state "open",
 * "closed" or "all"); NOT_FOUND when none. */
int ghapi_pull_find_by_head(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, const char *head, const char *state);
int ghapi_pull_files(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number);
int ghapi_pull_diff(char **out, size_t *len, ghapi_t *gh, const ghapi_repo_t *r, int64_t number);
/* A reply in a review comment's thread (POST /pulls/{n}/comments/{id}/replies). */
int ghapi_review_comment_reply(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, int64_t comment_id,
                               const char *body);
/* The pull request's review comments, oldest first (GET /pulls/{n}/comments, paginated). */
int ghapi_review_comments(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number);
/* review: {"commit_id", "body", "event": COMMENT|APPROVE|REQUEST_CHANGES, "comments": [...]} (borrowed). */
int ghapi_review_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number, json_t *review);
/* The pull request's reviews, oldest first (paginated). */
int ghapi_reviews_list(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t number);

/* fields: name, head_sha, status, conclusion, output... (borrowed). */
int ghapi_check_run_create(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, json_t *fields);
int ghapi_check_run_update(json_t **out, ghapi_t *gh, const ghapi_repo_t *r, int64_t id, json_t *fields);

/* The manifest flow's last step (no authentication): the new App with its
 * id, slug, pem and webhook_secret. A code works once, within an hour. */
int ghapi_manifest_conversion(json_t **out, ghapi_t *gh, const char *code);

/* The App's webhook deliveries (JWT), newest first, back to since_s (epoch
 * seconds), at most max. */
int ghapi_deliveries_list(json_t **out, ghapi_t *gh, int64_t since_s, size_t max);
int ghapi_delivery_redeliver(ghapi_t *gh, int64_t delivery_id);

#endif
