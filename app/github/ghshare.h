/*
 * ghshare — what the GitHub clients of every patchbay process share through
 * Redis: installation access tokens, and the connection that ghbudget keeps
 * each installation's budgets over.
 *
 * Tokens. An installation token lives an hour and GitHub limits how fast they
 * may be minted, so patchbay mints one per (installation, repository) and
 * every worker on every machine uses it:
 *   patchbay:token:<installation>:<owner/name>       "<expires_at_s> <token>"
 *   patchbay:token:<installation>:<owner/name>:lock  set NX while one process mints
 * ("*" instead of owner/name for a token not narrowed to one repository).
 * A token is handed out only while it has more than GHSHARE_REFRESH_MARGIN_S
 * left, so whoever receives one can use it for a push or a long agent step;
 * past that the next caller mints a fresh one. When many callers miss at
 * once, one takes the lock (SET NX PX) and mints; the others poll the key
 * until the token appears, so a stampede of workers costs one mint. A caller
 * that got a 401 drops the token only if it is still the one it used
 * (compare-and-delete), so N workers seeing the same dead token cause one
 * re-mint, not N. Each process also keeps the tokens it has seen in memory
 * (ghshare_local_t), so a cached-token call costs no Redis round trip.
 * Without Redis (no URL, or Redis down) tokens are shared by the threads of
 * this process only.
 *
 * Each thread's ghshare_t also lends its Redis connection to the thread's
 * ghbudget_t (ghbudget.h), which keeps GitHub's limits per installation.
 *
 * Tokens are secrets: they are stored in Redis (which must be private to
 * patchbay, as its queue already is) and never logged.
 *
 * Memory: ghshare_local_t is one per process, shared by threads (its own
 * mutex); ghshare_t is one per thread (it owns a blocking Redis connection).
 * Strings returned are malloc'd and the caller's to free.
 */
#ifndef PATCHBAY_GHSHARE_H
#define PATCHBAY_GHSHARE_H

#include "app/common/redisconn.h"

#include <stddef.h>
#include <stdint.h>

#define GHSHARE_REFRESH_MARGIN_S 300      /* refresh 5 minutes before expiry */
#define GHSHARE_LOCK_TTL_MS 15000         /* a minting process that died frees the lock by then */
#define GHSHARE_LOCK_WAIT_MS 20000        /* then the waiters mint themselves */
#define GHSHARE_LOCK_POLL_MS 20
#define GHSHARE_REDIS_TIMEOUT_MS 2000
#define GHSHARE_REDIS_RETRY_MS 5000       /* after a failed connect, work locally this long */
#define GHSHARE_TOKEN_KEY_PREFIX "patchbay:token:"

typedef struct ghshare_local_s ghshare_local_t;
typedef struct ghshare_s ghshare_t;

/* Wall-clock milliseconds (the client's injectable clock). */
typedef int64_t (*ghshare_now_fn)(void *ctx);
/* Mints a token: 0 and a malloc'd token with its expiry (epoch seconds), or a
 * negative code (the caller's error enum), passed back unchanged. */
typedef int (*ghshare_mint_fn)(void *ctx, char **token, int64_t *expires_at_s, char *err, size_t err_len);

ghshare_local_t *ghshare_local_new(void);
void ghshare_local_free(ghshare_local_t *local);

/* url may be NULL (this process only); it and local must outlive the ghshare_t. */
ghshare_t *ghshare_new(ghshare_local_t *local, const redisconn_url_t *url, ghshare_now_fn now, void *now_ctx);
void ghshare_free(ghshare_t *s);

/* A token for installation (narrowed to repo "owner/name", or NULL) with more
 * than GHSHARE_REFRESH_MARGIN_S to live: from memory, from Redis, or minted
 * through mint (under the lock). *minted tells whether this call minted.
 * Returns 0, or mint's negative code with its message in err. */
int ghshare_token_get(char **token, int64_t *expires_at_s, int *minted, ghshare_t *s, int64_t installation,
                      const char *repo, ghshare_mint_fn mint, void *mint_ctx, char *err, size_t err_len);

/* Forgets `token` for (installation, repo) here and in Redis, but only if it
 * is still the token stored there (someone may have minted a new one). */
void ghshare_token_invalidate(ghshare_t *s, int64_t installation, const char *repo, const char *token);

/* Facts about GitHub that do not change (a bot user's id), shared so that
 * no process asks GitHub twice: patchbay:gh:fact:<name>. get: 0 and the
 * value in out, or -1 when unknown (or no Redis). */
#define GHSHARE_FACT_PREFIX "patchbay:gh:fact:"
int ghshare_fact_get(ghshare_t *s, const char *name, char *out, size_t out_len);
void ghshare_fact_set(ghshare_t *s, const char *name, const char *value, int64_t ttl_s);

/* This thread's Redis connection, reconnecting when it broke (but not more
 * often than every GHSHARE_REDIS_RETRY_MS), or NULL: without Redis, or while
 * it is unreachable. For ghbudget, which shares the connection. */
redisContext *ghshare_redis(ghshare_t *s);
/* Drops the connection after a failed exchange on it. */
void ghshare_redis_drop(ghshare_t *s);

#endif
