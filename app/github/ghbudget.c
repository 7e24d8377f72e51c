/* ghbudget — see ghbudget.h. */
#include "ghbudget.h"
#include "app/common/log.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 96

/* ---------------------------------------------------------------------------
 * The two scripts. Both run on the caller's clock (ARGV[1]): x-ratelimit-reset
 * is wall-clock time too, and tests drive the clock. Neither loops over more
 * than the configured windows, so each costs a handful of commands.
 * ------------------------------------------------------------------------- */

/* KEYS: 1 state, 2 content, 3 inflight, 4 waits
 * ARGV: 1 now, 2 installation, 3 content (0|1), 4 low (0|1), 5 ticket,
 *       6 lease_ms, 7 max_inflight, 8 low share %, 9 poll_ms, 10 n windows,
 *       then calls, window_ms for each
 * Returns {verdict (0 go, 1 wait, 2 defer), wait_ms, why}. */
static const char ADMIT_LUA[] =
    "local now, low = tonumber(ARGV[1]), ARGV[4] == '1'\n"
    "local s = redis.call('HMGET', KEYS[1], 'until', 'why')\n"
    "local untl = tonumber(s[1])\n"
    "if untl and untl > now then return {low and 2 or 1, untl - now, s[2] or 'secondary'} end\n"
    "local maxin = tonumber(ARGV[7])\n"
    "if maxin > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)\n"
    "  if redis.call('ZCARD', KEYS[3]) >= maxin then return {low and 2 or 1, tonumber(ARGV[9]), 'concurrency'} end\n"
    "end\n"
    "if ARGV[3] == '1' then\n"
    "  local n, widest, wait = tonumber(ARGV[10]), 0, 0\n"
    "  for i = 1, n do widest = math.max(widest, tonumber(ARGV[11 + 2 * i - 1])) end\n"
    "  if widest > 0 then\n"
    "    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - widest)\n"
    "    for i = 1, n do\n"
    "      local calls, win = tonumber(ARGV[10 + 2 * i - 1]), tonumber(ARGV[10 + 2 * i])\n"
    "      local limit = low and math.floor(calls * tonumber(ARGV[8]) / 100) or calls\n"
    "      local used = redis.call('ZCOUNT', KEYS[2], '(' .. (now - win), '+inf')\n"
    "      if used >= limit then\n"
    "        if low then return {2, 0, 'content'} end\n"
    "        -- the oldest calls of the window age out until limit - 1 are left\n"
    "        local e = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. (now - win), '+inf', 'WITHSCORES', 'LIMIT',\n"
    "                             used - limit, 1)\n"
    "        wait = math.max(wait, tonumber(e[2]) + win - now)\n"
    "      end\n"
    "    end\n"
    "    if wait > 0 then\n"
    "      redis.call('HSET', KEYS[4], ARGV[2], (now + wait) .. ' content')\n"
    "      return {1, wait, 'content'}\n"
    "    end\n"
    "    redis.call('ZADD', KEYS[2], now, ARGV[5])\n"
    "    redis.call('PEXPIRE', KEYS[2], widest)\n"
    "  end\n"
    "end\n"
    "if maxin > 0 then\n"
    "  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[5])\n"
    "  redis.call('PEXPIRE', KEYS[3], ARGV[6])\n"
    "end\n"
    "return {0, 0, ''}\n";

/* KEYS: 1 state, 2 inflight, 3 waits
 * ARGV: 1 now, 2 installation, 3 ticket, 4 answer (ok|primary|secondary|other),
 *       5 reset_ms (-1), 6 retry_after_ms (-1), 7 remaining (-1),
 *       8 admitted_ms, 9 secondary base ms, 10 secondary cap ms,
 *       11 primary minimum ms, 12 state ttl ms
 * Returns {wait_ms from now, why}. A secondary limit met by a call sent
 * before the last wait was imposed is the same limit seen late, not a new
 * one: it does not lengthen the streak. */
static const char DONE_LUA[] =
    "local now, a = tonumber(ARGV[1]), ARGV[4]\n"
    "local reset, ra, rem = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end\n"
    "local s = redis.call('HMGET', KEYS[1], 'until', 'why', 'set', 'streak')\n"
    "local untl, why = tonumber(s[1]) or 0, s[2] or ''\n"
    "local new, nwhy = 0, ''\n"
    "if a == 'primary' or (rem == 0 and reset > now) then\n"
    "  if reset >= 0 then new = math.max(reset, now + tonumber(ARGV[11])) else new = now + tonumber(ARGV[9]) end\n"
    "  nwhy = 'primary'\n"
    "elseif a == 'secondary' and (tonumber(s[4]) == nil or tonumber(ARGV[8]) >= (tonumber(s[3]) or 0)) then\n"
    "  local streak = (tonumber(s[4]) or 0) + 1\n"
    "  redis.call('HSET', KEYS[1], 'streak', streak)\n"
    "  local base = ra >= 0 and math.max(ra, 1000) or tonumber(ARGV[9])\n"
    "  local w = base * 2 ^ (streak - 1)\n"
    "  if w > tonumber(ARGV[10]) then w = math.max(tonumber(ARGV[10]), base) end\n"
    "  new, nwhy = now + w, 'secondary'\n"
    "elseif a == 'ok' and s[4] then\n"
    "  redis.call('HDEL', KEYS[1], 'streak')\n"
    "end\n"
    "if new > untl then\n"
    "  redis.call('HSET', KEYS[1], 'until', new, 'why', nwhy, 'set', now)\n"
    "  redis.call('PEXPIRE', KEYS[1], new - now + tonumber(ARGV[12]))\n"
    "  redis.call('HSET', KEYS[3], ARGV[2], new .. ' ' .. nwhy)\n"
    "  untl, why = new, nwhy\n"
    "end\n"
    "if untl > now then return {untl - now, why} end\n"
    "return {0, ''}\n";

static char admit_sha[41], done_sha[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void sha_hex(char out[41], const char *text)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, strlen(text), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void sha_init(void)
{
    sha_hex(admit_sha, ADMIT_LUA);
    sha_hex(done_sha, DONE_LUA);
}

/* ---------------------------------------------------------------------------
 * Names and limits
 * ------------------------------------------------------------------------- */

static const char *const why_names[] = {
    [GHBUDGET_WHY_NONE] = "none",           [GHBUDGET_WHY_PRIMARY] = "primary",
    [GHBUDGET_WHY_SECONDARY] = "secondary", [GHBUDGET_WHY_CONTENT] = "content",
    [GHBUDGET_WHY_CONCURRENCY] = "concurrency",
};

const char *ghbudget_why_name(ghbudget_why_t why)
{
    return (size_t)why < sizeof(why_names) / sizeof(why_names[0]) ? why_names[why] : "none";
}

static ghbudget_why_t why_parse(const char *s, size_t n)
{
    for (size_t i = 1; i < sizeof(why_names) / sizeof(why_names[0]); i++)
        if (strlen(why_names[i]) == n && strncmp(why_names[i], s, n) == 0)
            return (ghbudget_why_t)i;
    return GHBUDGET_WHY_SECONDARY; /* an unknown reason still means: wait */
}

void ghbudget_limits_default(ghbudget_limits_t *l)
{
    memset(l, 0, sizeof(*l));
    l->n = 2;
    l->w[0] = (ghbudget_window_t){80, 60000};
    l->w[1] = (ghbudget_window_t){500, 3600000};
    l->max_inflight = 100;
}

void ghbudget_limits_from_config(ghbudget_limits_t *l, const config_t *cfg)
{
    memset(l, 0, sizeof(*l));
    for (size_t i = 0; i < cfg->github.content_limits.count && l->n < GHBUDGET_WINDOWS_MAX; i++) {
        int calls;
        int64_t ms;
        if (config_parse_rate(cfg->github.content_limits.items[i], &calls, &ms) == 0)
            l->w[l->n++] = (ghbudget_window_t){calls, ms};
    }
    l->max_inflight = cfg->github.max_inflight;
}

/* The window as counted: a little wider than configured (see the margin). */
static int64_t counted(int64_t window_ms)
{
    return window_ms + window_ms / GHBUDGET_WINDOW_MARGIN_DIV + GHBUDGET_WINDOW_MARGIN_MS;
}

static int64_t widest(const ghbudget_limits_t *l)
{
    int64_t w = 0;
    for (size_t i = 0; i < l->n; i++)
        if (counted(l->w[i].window_ms) > w)
            w = counted(l->w[i].window_ms);
    return w;
}

/* ---------------------------------------------------------------------------
 * This process's own books, for when Redis cannot keep them
 * ------------------------------------------------------------------------- */

typedef struct {
    int64_t installation;
    int in_use;
    int64_t until_ms, set_ms;
    ghbudget_why_t why;
    int streak;
    int inflight;
    int64_t *stamps; /* content calls, a ring, oldest at head */
    size_t cap, head, count;
    uint64_t used;
} local_inst_t;

struct ghbudget_local_s {
    pthread_mutex_t mu;
    local_inst_t slots[GHBUDGET_LOCAL_SLOTS];
    uint64_t tick;
};

ghbudget_local_t *ghbudget_local_new(void)
{
    ghbudget_local_t *l = calloc(1, sizeof(*l));
    if (l != NULL)
        pthread_mutex_init(&l->mu, NULL);
    return l;
}

void ghbudget_local_free(ghbudget_local_t *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < GHBUDGET_LOCAL_SLOTS; i++)
        free(l->slots[i].stamps);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* The slot of an installation (the least recently used one is reused). Under mu. */
static local_inst_t *local_slot(ghbudget_local_t *l, int64_t installation)
{
    local_inst_t *free_slot = NULL, *oldest = &l->slots[0];
    for (size_t i = 0; i < GHBUDGET_LOCAL_SLOTS; i++) {
        local_inst_t *s = &l->slots[i];
        if (s->in_use && s->installation == installation) {
            s->used = ++l->tick;
            return s;
        }
        if (!s->in_use && free_slot == NULL)
            free_slot = s;
        if (s->used < oldest->used)
            oldest = s;
    }
    local_inst_t *s = free_slot ? free_slot : oldest;
    int64_t *keep = s->stamps;
    size_t cap = s->cap;
    memset(s, 0, sizeof(*s));
    s->stamps = keep;
    s->cap = cap;
    s->installation = installation;
    s->in_use = 1;
    s->used = ++l->tick;
    return s;
}

static int64_t stamp_at(const local_inst_t *s, size_t i)
{
    return s->stamps[(s->head + i) % s->cap];
}

static ghbudget_verdict_t local_admit(ghbudget_local_t *l, const ghbudget_limits_t *lim, int64_t installation,
                                      int content, int low, int64_t now, int64_t *wait_ms, ghbudget_why_t *why)
{
    ghbudget_verdict_t v = GHBUDGET_GO;
    pthread_mutex_lock(&l->mu);
    local_inst_t *s = local_slot(l, installation);
    if (s->until_ms > now) {
        *wait_ms = s->until_ms - now;
        *why = s->why;
        v = low ? GHBUDGET_DEFER : GHBUDGET_WAIT;
        goto done;
    }
    if (lim->max_inflight > 0 && s->inflight >= lim->max_inflight) {
        *wait_ms = GHBUDGET_CONCURRENCY_POLL_MS;
        *why = GHBUDGET_WHY_CONCURRENCY;
        v = low ? GHBUDGET_DEFER : GHBUDGET_WAIT;
        goto done;
    }
    if (content && lim->n > 0) {
        int64_t w = widest(lim), wait = 0;
        while (s->count > 0 && stamp_at(s, 0) <= now - w) {
            s->head = (s->head + 1) % s->cap;
            s->count--;
        }
        for (size_t i = 0; i < lim->n; i++) {
            int limit = low ? lim->w[i].calls * GHBUDGET_LOW_SHARE_PCT / 100 : lim->w[i].calls;
            int64_t win = counted(lim->w[i].window_ms);
            size_t first = s->count; /* the oldest stamp inside this window */
            while (first > 0 && stamp_at(s, first - 1) > now - win)
                first--;
            size_t used = s->count - first;
            if (used < (size_t)limit)
                continue;
            if (low) {
                v = GHBUDGET_DEFER;
                goto done;
            }
            int64_t until = stamp_at(s, first + used - (size_t)limit) + win;
            if (until - now > wait)
                wait = until - now;
        }
        if (wait > 0) {
            *wait_ms = wait;
            *why = GHBUDGET_WHY_CONTENT;
            v = GHBUDGET_WAIT;
            goto done;
        }
        if (s->count == s->cap) { /* grow, or forget the oldest past the cap */
            size_t cap = s->cap ? s->cap * 2 : 64;
            int64_t *n = cap <= GHBUDGET_LOCAL_STAMPS_MAX ? malloc(cap * sizeof(*n)) : NULL;
            if (n != NULL) {
                for (size_t i = 0; i < s->count; i++)
                    n[i] = stamp_at(s, i);
                free(s->stamps);
                s->stamps = n;
                s->cap = cap;
                s->head = 0;
            } else if (s->cap > 0) {
                s->head = (s->head + 1) % s->cap;
                s->count--;
            }
        }
        if (s->cap > 0) {
            s->stamps[(s->head + s->count) % s->cap] = now;
            s->count++;
        }
    }
    s->inflight++;
done:
    pthread_mutex_unlock(&l->mu);
    return v;
}

static int64_t local_done(ghbudget_local_t *l, const ghbudget_ticket_t *t, ghbudget_answer_t a, int64_t reset_ms,
                          int64_t retry_after_ms, int64_t remaining, int64_t now, ghbudget_why_t *why)
{
    pthread_mutex_lock(&l->mu);
    local_inst_t *s = local_slot(l, t->installation);
    if (t->admitted && !t->in_redis && s->inflight > 0)
        s->inflight--;
    int64_t until = 0;
    ghbudget_why_t nwhy = GHBUDGET_WHY_NONE;
    if (a == GHBUDGET_ANSWER_PRIMARY || (remaining == 0 && reset_ms > now)) {
        until = reset_ms >= 0 ? (reset_ms > now + GHBUDGET_PRIMARY_MIN_WAIT_MS ? reset_ms
                                                                              : now + GHBUDGET_PRIMARY_MIN_WAIT_MS)
                              : now + GHBUDGET_SECONDARY_WAIT_MS;
        nwhy = GHBUDGET_WHY_PRIMARY;
    } else if (a == GHBUDGET_ANSWER_SECONDARY && (s->streak == 0 || t->admitted_ms >= s->set_ms)) {
        /* a call sent before the last wait was imposed met that same limit: no new one */
        s->streak++;
        int64_t base = retry_after_ms >= 0 ? (retry_after_ms > 1000 ? retry_after_ms : 1000)
                                           : GHBUDGET_SECONDARY_WAIT_MS;
        int64_t w = base;
        for (int i = 1; i < s->streak && w < GHBUDGET_SECONDARY_CAP_MS; i++)
            w *= 2;
        if (w > GHBUDGET_SECONDARY_CAP_MS)
            w = base > GHBUDGET_SECONDARY_CAP_MS ? base : GHBUDGET_SECONDARY_CAP_MS;
        until = now + w;
        nwhy = GHBUDGET_WHY_SECONDARY;
    } else if (a == GHBUDGET_ANSWER_OK) {
        s->streak = 0;
    }
    if (until > s->until_ms) {
        s->until_ms = until;
        s->why = nwhy;
        s->set_ms = now;
    }
    int64_t wait = s->until_ms > now ? s->until_ms - now : 0;
    if (wait > 0)
        *why = s->why;
    pthread_mutex_unlock(&l->mu);
    return wait;
}

/* ---------------------------------------------------------------------------
 * The per-thread side
 * ------------------------------------------------------------------------- */

struct ghbudget_s {
    ghshare_t *share;
    ghbudget_local_t *local;
    const ghbudget_limits_t *limits;
};

ghbudget_t *ghbudget_new(ghshare_t *share, ghbudget_local_t *local, const ghbudget_limits_t *limits)
{
    pthread_once(&sha_once, sha_init);
    ghbudget_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->share = share;
    b->local = local;
    b->limits = limits;
    return b;
}

void ghbudget_free(ghbudget_t *b)
{
    free(b);
}

static void keys_of(int64_t installation, char state[KEY_BYTES], char content[KEY_BYTES], char inflight[KEY_BYTES])
{
    snprintf(state, KEY_BYTES, GHBUDGET_KEY_PREFIX "%" PRId64, installation);
    snprintf(content, KEY_BYTES, GHBUDGET_KEY_PREFIX "%" PRId64 ":content", installation);
    snprintf(inflight, KEY_BYTES, GHBUDGET_KEY_PREFIX "%" PRId64 ":inflight", installation);
}

/* EVALSHA, and EVAL once when Redis lost its script cache. NULL when the
 * connection failed (then dropped) or Redis refused (logged). */
static redisReply *run_script(ghbudget_t *b, const char *sha, const char *text, int argc, const char **argv)
{
    redisContext *c = ghshare_redis(b->share);
    if (c == NULL)
        return NULL;
    argv[0] = "EVALSHA";
    argv[1] = sha;
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = text;
        r = redisCommandArgv(c, argc, argv, NULL);
    }
    if (r == NULL) {
        log_warn(NULL, NULL, "GitHub budget: Redis connection lost (%s); this process keeps its own books", c->errstr);
        ghshare_redis_drop(b->share);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        log_warn(NULL, NULL, "GitHub budget: Redis refused the script: %.*s", (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int64_t reply_int(const redisReply *e)
{
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

ghbudget_verdict_t ghbudget_admit(ghbudget_t *b, ghbudget_ticket_t *t, int64_t *wait_ms, ghbudget_why_t *why,
                                  int64_t installation, int content, int low_priority, int64_t lease_ms,
                                  int64_t now_ms)
{
    const ghbudget_limits_t *lim = b->limits;
    memset(t, 0, sizeof(*t));
    *wait_ms = 0;
    *why = GHBUDGET_WHY_NONE;
    t->installation = installation;
    t->admitted_ms = now_ms;
    unsigned char raw[12];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        memset(raw, 0, sizeof(raw));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(t->id + 2 * i, 3, "%02x", raw[i]);

    char state[KEY_BYTES], ckey[KEY_BYTES], ikey[KEY_BYTES], nums[10 + 2 * GHBUDGET_WINDOWS_MAX][24];
    keys_of(installation, state, ckey, ikey);
    const char *argv[6 + 10 + 2 * GHBUDGET_WINDOWS_MAX];
    int argc = 2;
    argv[argc++] = "4";
    argv[argc++] = state;
    argv[argc++] = ckey;
    argv[argc++] = ikey;
    argv[argc++] = GHBUDGET_WAITS_KEY;
    int k = 0;
#define NUM(v) (snprintf(nums[k], sizeof(nums[k]), "%" PRId64, (int64_t)(v)), argv[argc++] = nums[k++])
    NUM(now_ms);
    NUM(installation);
    argv[argc++] = content ? "1" : "0";
    argv[argc++] = low_priority ? "1" : "0";
    argv[argc++] = t->id;
    NUM(lease_ms);
    NUM(lim->max_inflight);
    NUM(GHBUDGET_LOW_SHARE_PCT);
    NUM(GHBUDGET_CONCURRENCY_POLL_MS);
    NUM(lim->n);
    for (size_t i = 0; i < lim->n; i++) {
        NUM(lim->w[i].calls);
        NUM(counted(lim->w[i].window_ms));
    }
#undef NUM
    redisReply *r = run_script(b, admit_sha, ADMIT_LUA, argc, argv);
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        int64_t verdict = reply_int(r->element[0]);
        *wait_ms = reply_int(r->element[1]);
        if (verdict != GHBUDGET_GO && r->element[2]->type == REDIS_REPLY_STRING)
            *why = why_parse(r->element[2]->str, r->element[2]->len);
        freeReplyObject(r);
        if (verdict == GHBUDGET_GO) {
            t->in_redis = 1;
            t->admitted = 1;
            return GHBUDGET_GO;
        }
        if (verdict == GHBUDGET_WAIT && *wait_ms <= 0)
            *wait_ms = 1;
        return verdict == GHBUDGET_DEFER ? GHBUDGET_DEFER : GHBUDGET_WAIT;
    }
    if (r != NULL)
        freeReplyObject(r);
    ghbudget_verdict_t v = local_admit(b->local, lim, installation, content, low_priority, now_ms, wait_ms, why);
    t->admitted = v == GHBUDGET_GO;
    return v;
}

int64_t ghbudget_done(ghbudget_t *b, const ghbudget_ticket_t *t, ghbudget_answer_t answer, int64_t reset_s,
                      int64_t retry_after_s, int64_t remaining, int64_t now_ms, ghbudget_why_t *why)
{
    static const char *const answers[] = {[GHBUDGET_ANSWER_OK] = "ok", [GHBUDGET_ANSWER_PRIMARY] = "primary",
                                          [GHBUDGET_ANSWER_SECONDARY] = "secondary", [GHBUDGET_ANSWER_OTHER] = "other"};
    int64_t reset_ms = reset_s >= 0 ? reset_s * 1000 : -1, retry_ms = retry_after_s >= 0 ? retry_after_s * 1000 : -1;
    *why = GHBUDGET_WHY_NONE;
    /* nothing to tell anyone: a plain answer to a call that held no shared slot */
    int shared_news = answer == GHBUDGET_ANSWER_PRIMARY || answer == GHBUDGET_ANSWER_SECONDARY ||
                      (remaining == 0 && reset_ms > now_ms) || answer == GHBUDGET_ANSWER_OK;
    if ((t->in_redis && t->admitted) || shared_news) {
        char state[KEY_BYTES], ckey[KEY_BYTES], ikey[KEY_BYTES], nums[12][24];
        keys_of(t->installation, state, ckey, ikey);
        const char *argv[2 + 4 + 12];
        int argc = 2, k = 0;
        argv[argc++] = "3";
        argv[argc++] = state;
        argv[argc++] = ikey;
        argv[argc++] = GHBUDGET_WAITS_KEY;
#define NUM(v) (snprintf(nums[k], sizeof(nums[k]), "%" PRId64, (int64_t)(v)), argv[argc++] = nums[k++])
        NUM(now_ms);
        NUM(t->installation);
        argv[argc++] = t->in_redis && t->admitted ? t->id : "";
        argv[argc++] = answers[answer];
        NUM(reset_ms);
        NUM(retry_ms);
        NUM(remaining);
        NUM(t->admitted_ms);
        NUM(GHBUDGET_SECONDARY_WAIT_MS);
        NUM(GHBUDGET_SECONDARY_CAP_MS);
        NUM(GHBUDGET_PRIMARY_MIN_WAIT_MS);
        NUM(GHBUDGET_STATE_TTL_MS);
#undef NUM
        redisReply *r = run_script(b, done_sha, DONE_LUA, argc, argv);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
            int64_t wait = reply_int(r->element[0]);
            if (wait > 0 && r->element[1]->type == REDIS_REPLY_STRING)
                *why = why_parse(r->element[1]->str, r->element[1]->len);
            freeReplyObject(r);
            /* this process's books hear it too: they decide when Redis cannot */
            ghbudget_why_t lwhy = GHBUDGET_WHY_NONE;
            ghbudget_ticket_t shared = *t;
            shared.admitted = 0;
            local_done(b->local, &shared, answer, reset_ms, retry_ms, remaining, now_ms, &lwhy);
            return wait > 0 ? wait : 0;
        }
        if (r != NULL)
            freeReplyObject(r);
    }
    return local_done(b->local, t, answer, reset_ms, retry_ms, remaining, now_ms, why);
}

/* ---------------------------------------------------------------------------
 * Reading the waits back
 * ------------------------------------------------------------------------- */

int ghbudget_waits(redisContext *c, ghbudget_wait_t *out, size_t max, size_t *n, int64_t now_ms)
{
    *n = 0;
    redisReply *r = redisCommand(c, "HGETALL %s", GHBUDGET_WAITS_KEY);
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i + 1 < r->elements && *n < max; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        char *end = NULL;
        long long until = strtoll(v->str, &end, 10);
        if (end == v->str || *end != ' ' || until <= now_ms)
            continue;
        out[*n].installation = strtoll(k->str, NULL, 10);
        out[*n].until_ms = until;
        out[*n].why = why_parse(end + 1, strlen(end + 1));
        (*n)++;
    }
    freeReplyObject(r);
    return 0;
}
