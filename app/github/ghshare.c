/* ghshare — see ghshare.h. */
#include "ghshare.h"
#include "app/common/clock.h"
#include "app/common/log.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_TOKEN_SLOTS 256
#define KEY_BYTES 640

/* ---------------------------------------------------------------------------
 * Lua: two compare-and-delete scripts, so a process only ever removes what it
 * put there (its own lock; the token it saw fail).
 * ------------------------------------------------------------------------- */

static const char UNLOCK_LUA[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                                 "return 0";
static const char INVALIDATE_LUA[] = "local v = redis.call('GET', KEYS[1]) "
                                     "if not v then return 0 end "
                                     "local s = string.find(v, ' ', 1, true) "
                                     "if s and string.sub(v, s + 1) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                                     "return 0";

/* ---------------------------------------------------------------------------
 * The process-wide memory
 * ------------------------------------------------------------------------- */

typedef struct {
    char *key; /* "<installation>:<repo>" */
    char *token;
    int64_t expires_at_s;
    uint64_t used;
} local_token_t;

struct ghshare_local_s {
    pthread_mutex_t mu;
    local_token_t tokens[LOCAL_TOKEN_SLOTS];
    uint64_t tick;
    /* without Redis, threads of this process mint one at a time */
    pthread_mutex_t mint_mu;
};

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

ghshare_local_t *ghshare_local_new(void)
{
    ghshare_local_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->mint_mu, NULL);
    return l;
}

void ghshare_local_free(ghshare_local_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < LOCAL_TOKEN_SLOTS; i++) {
        free(l->tokens[i].key);
        wipe_free(l->tokens[i].token);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->mint_mu);
    free(l);
}

/* A copy of the token stored under key if it has more than the margin left. */
static char *local_get(ghshare_local_t *l, const char *key, int64_t now_s, int64_t *exp)
{
    char *out = NULL;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < LOCAL_TOKEN_SLOTS; i++) {
        local_token_t *e = &l->tokens[i];
        if (e->key != NULL && strcmp(e->key, key) == 0) {
            if (e->expires_at_s - now_s > GHSHARE_REFRESH_MARGIN_S) {
                out = strdup(e->token);
                *exp = e->expires_at_s;
                e->used = ++l->tick;
            }
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return out;
}

static void local_put(ghshare_local_t *l, const char *key, const char *token, int64_t exp)
{
    char *k = strdup(key), *t = strdup(token);
    if (k == NULL || t == NULL) {
        free(k);
        wipe_free(t);
        return; /* memory is only a shortcut: Redis or a mint still answers */
    }
    pthread_mutex_lock(&l->mu);
    local_token_t *slot = NULL;
    for (size_t i = 0; i < LOCAL_TOKEN_SLOTS && slot == NULL; i++)
        if (l->tokens[i].key != NULL && strcmp(l->tokens[i].key, key) == 0)
            slot = &l->tokens[i];
    for (size_t i = 0; i < LOCAL_TOKEN_SLOTS && slot == NULL; i++)
        if (l->tokens[i].key == NULL)
            slot = &l->tokens[i];
    if (slot == NULL) { /* full: evict the least recently used */
        slot = &l->tokens[0];
        for (size_t i = 1; i < LOCAL_TOKEN_SLOTS; i++)
            if (l->tokens[i].used < slot->used)
                slot = &l->tokens[i];
    }
    free(slot->key);
    wipe_free(slot->token);
    slot->key = k;
    slot->token = t;
    slot->expires_at_s = exp;
    slot->used = ++l->tick;
    pthread_mutex_unlock(&l->mu);
}

static void local_drop(ghshare_local_t *l, const char *key, const char *token)
{
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < LOCAL_TOKEN_SLOTS; i++) {
        local_token_t *e = &l->tokens[i];
        if (e->key != NULL && strcmp(e->key, key) == 0) {
            if (token == NULL || strcmp(e->token, token) == 0) {
                free(e->key);
                wipe_free(e->token);
                memset(e, 0, sizeof(*e));
            }
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---------------------------------------------------------------------------
 * The per-thread side and its Redis connection
 * ------------------------------------------------------------------------- */

struct ghshare_s {
    ghshare_local_t *local;
    const redisconn_url_t *url;
    redisContext *c;
    int64_t down_until_mono_ms;
    int warned_down;
    ghshare_now_fn now;
    void *now_ctx;
};

ghshare_t *ghshare_new(ghshare_local_t *local, const redisconn_url_t *url, ghshare_now_fn now, void *now_ctx)
{
    ghshare_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->local = local;
    s->url = url;
    s->now = now;
    s->now_ctx = now_ctx;
    return s;
}

void ghshare_free(ghshare_t *s)
{
    if (s == NULL)
        return;
    if (s->c != NULL)
        redisFree(s->c);
    free(s);
}

static redisContext *conn(ghshare_t *s)
{
    if (s->url == NULL)
        return NULL;
    if (s->c != NULL && s->c->err == 0)
        return s->c;
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
    int64_t mono = clock_mono_ms();
    if (mono < s->down_until_mono_ms)
        return NULL;
    char err[REDISCONN_ERR_BYTES];
    s->c = redisconn_connect(s->url, GHSHARE_REDIS_TIMEOUT_MS, GHSHARE_REDIS_TIMEOUT_MS, err, sizeof(err));
    if (s->c == NULL) {
        s->down_until_mono_ms = mono + GHSHARE_REDIS_RETRY_MS;
        if (!s->warned_down)
            log_warn(NULL, NULL, "GitHub tokens: Redis unreachable (%s); this process mints and keeps its own", err);
        s->warned_down = 1;
        return NULL;
    }
    if (s->warned_down)
        log_info(NULL, NULL, "GitHub tokens: Redis reachable again; sharing tokens");
    s->warned_down = 0;
    return s->c;
}

/* One command; NULL when the connection failed (then dropped) or Redis
 * answered an error (then logged). The caller frees the reply. */
static redisReply *command(ghshare_t *s, const char *fmt, ...)
{
    redisContext *c = conn(s);
    if (c == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        log_warn(NULL, NULL, "GitHub tokens: Redis connection lost: %s", c->errstr);
        redisFree(s->c);
        s->c = NULL;
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn(NULL, NULL, "GitHub tokens: Redis refused a command: %.*s", (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static void sleep_real_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------------------
 * Tokens
 * ------------------------------------------------------------------------- */

/* "<exp> <token>" -> a copy of the token if it has more than the margin left. */
static char *parse_stored(const redisReply *r, int64_t now_s, int64_t *exp)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return NULL;
    char *end = NULL;
    long long e = strtoll(r->str, &end, 10);
    if (end == r->str || *end != ' ' || end[1] == '\0')
        return NULL;
    if (e - now_s <= GHSHARE_REFRESH_MARGIN_S)
        return NULL;
    *exp = e;
    return strdup(end + 1);
}

static char *redis_get_token(ghshare_t *s, const char *rkey, int64_t now_s, int64_t *exp)
{
    redisReply *r = command(s, "GET %s", rkey);
    char *t = parse_stored(r, now_s, exp);
    if (r != NULL)
        freeReplyObject(r);
    return t;
}

static int mint_and_remember(char **token, int64_t *exp, ghshare_t *s, const char *lkey, const char *rkey,
                             ghshare_mint_fn mint, void *mint_ctx, int store_in_redis, char *err, size_t err_len)
{
    int rc = mint(mint_ctx, token, exp, err, err_len);
    if (rc != 0)
        return rc;
    int64_t ttl_ms = (*exp - s->now(s->now_ctx) / 1000) * 1000;
    if (store_in_redis && ttl_ms > 0) {
        /* one value, "<expires_at> <token>": hiredis would split a format's spaces into arguments */
        char *value = NULL;
        if (asprintf(&value, "%lld %s", (long long)*exp, *token) < 0)
            value = NULL;
        redisReply *r = value ? command(s, "SET %s %s PX %lld", rkey, value, (long long)ttl_ms) : NULL;
        if (value != NULL) {
            memset(value, 0, strlen(value));
            free(value);
        }
        if (r != NULL)
            freeReplyObject(r);
    }
    local_put(s->local, lkey, *token, *exp);
    return 0;
}

int ghshare_token_get(char **token, int64_t *expires_at_s, int *minted, ghshare_t *s, int64_t installation,
                      const char *repo, ghshare_mint_fn mint, void *mint_ctx, char *err, size_t err_len)
{
    char lkey[KEY_BYTES], rkey[KEY_BYTES + 32], lock[KEY_BYTES + 48];
    int64_t exp = 0;
    int rc = 0;

    *token = NULL;
    *minted = 0;
    snprintf(lkey, sizeof(lkey), "%" PRId64 ":%s", installation, repo ? repo : "*");
    snprintf(rkey, sizeof(rkey), GHSHARE_TOKEN_KEY_PREFIX "%s", lkey);
    snprintf(lock, sizeof(lock), "%s:lock", rkey);

    if ((*token = local_get(s->local, lkey, s->now(s->now_ctx) / 1000, &exp)) != NULL)
        goto found;
    if (conn(s) == NULL) {
        /* no Redis: the threads of this process take turns */
        pthread_mutex_lock(&s->local->mint_mu);
        if ((*token = local_get(s->local, lkey, s->now(s->now_ctx) / 1000, &exp)) == NULL) {
            rc = mint_and_remember(token, &exp, s, lkey, rkey, mint, mint_ctx, 0, err, err_len);
            *minted = rc == 0;
        }
        pthread_mutex_unlock(&s->local->mint_mu);
        if (rc != 0)
            return rc;
        goto found;
    }

    /* The nonce marks our lock, so we release only our own. */
    unsigned char raw[12];
    char nonce[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        memset(raw, 0, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(nonce + 2 * i, 3, "%02x", raw[i]);

    int64_t deadline = clock_mono_ms() + GHSHARE_LOCK_WAIT_MS;
    for (;;) {
        if ((*token = redis_get_token(s, rkey, s->now(s->now_ctx) / 1000, &exp)) != NULL) {
            local_put(s->local, lkey, *token, exp);
            goto found;
        }
        if (conn(s) == NULL)
            break; /* lost Redis midway: mint on our own */
        redisReply *r = command(s, "SET %s %s NX PX %d", lock, nonce, GHSHARE_LOCK_TTL_MS);
        int got = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r != NULL)
            freeReplyObject(r);
        if (got) {
            /* someone may have stored one between our GET and our lock */
            if ((*token = redis_get_token(s, rkey, s->now(s->now_ctx) / 1000, &exp)) != NULL) {
                local_put(s->local, lkey, *token, exp);
            } else {
                rc = mint_and_remember(token, &exp, s, lkey, rkey, mint, mint_ctx, 1, err, err_len);
                *minted = rc == 0;
            }
            r = command(s, "EVAL %s 1 %s %s", UNLOCK_LUA, lock, nonce);
            if (r != NULL)
                freeReplyObject(r);
            if (rc != 0)
                return rc;
            goto found;
        }
        if (clock_mono_ms() >= deadline) {
            log_warn(NULL, NULL, "GitHub tokens: another process held the mint lock of installation %" PRId64
                                 " for %d ms; minting here", installation, GHSHARE_LOCK_WAIT_MS);
            break;
        }
        /* Real time, not the client's clock: this waits for another process,
         * which no test clock can hurry. */
        sleep_real_ms(GHSHARE_LOCK_POLL_MS);
    }
    rc = mint_and_remember(token, &exp, s, lkey, rkey, mint, mint_ctx, conn(s) != NULL, err, err_len);
    *minted = rc == 0;
    if (rc != 0)
        return rc;
found:
    if (*token == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    if (expires_at_s != NULL)
        *expires_at_s = exp;
    return 0;
}

void ghshare_token_invalidate(ghshare_t *s, int64_t installation, const char *repo, const char *token)
{
    char lkey[KEY_BYTES], rkey[KEY_BYTES + 32];
    snprintf(lkey, sizeof(lkey), "%" PRId64 ":%s", installation, repo ? repo : "*");
    snprintf(rkey, sizeof(rkey), GHSHARE_TOKEN_KEY_PREFIX "%s", lkey);
    local_drop(s->local, lkey, token);
    redisReply *r = command(s, "EVAL %s 1 %s %s", INVALIDATE_LUA, rkey, token);
    if (r != NULL)
        freeReplyObject(r);
}

/* ---------------------------------------------------------------------------
 * The connection, for ghbudget
 * ------------------------------------------------------------------------- */

redisContext *ghshare_redis(ghshare_t *s)
{
    return conn(s);
}

void ghshare_redis_drop(ghshare_t *s)
{
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
}

/* ---------------------------------------------------------------------------
 * Facts
 * ------------------------------------------------------------------------- */

int ghshare_fact_get(ghshare_t *s, const char *name, char *out, size_t out_len)
{
    redisReply *r = command(s, "GET %s%s", GHSHARE_FACT_PREFIX, name);
    int rc = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING && r->len < out_len) {
        memcpy(out, r->str, r->len);
        out[r->len] = '\0';
        rc = 0;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

void ghshare_fact_set(ghshare_t *s, const char *name, const char *value, int64_t ttl_s)
{
    redisReply *r = command(s, "SET %s%s %s EX %lld", GHSHARE_FACT_PREFIX, name, value, (long long)ttl_s);
    if (r != NULL)
        freeReplyObject(r);
}
