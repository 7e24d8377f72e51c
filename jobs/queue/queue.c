/*
 * queue — see queue.h. The enqueue script is the contract between every
 * process that makes jobs; keep it small, and keep every key it touches
 * listed in queue.h.
 */
#include "queue.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/strbuf.h"

#include <assert.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The prelude both scripts share: the one place where a job changes state.
 *
 * transition() checks the move against JOB_TRANSITIONS (the ALLOWED table is
 * generated from job.h at compile time, so C and Lua cannot disagree), writes
 * status and timestamps, keeps the per-kind index of queued jobs, the metrics
 * hash and the job's log stream in step, applies retention to finished jobs
 * (EXPIRE of record, log and payload; PERSIST when a finished job is retried)
 * and notes the move in MOVES, which the work script returns so that one C
 * function logs every move of every job. It checks before it writes: a
 * refused move leaves nothing half done (Redis does not roll scripts back).
 *
 * load() reads the fields transition() and the operations need, and refuses a
 * key that is not a hash, so a hand-written string at patchbay:job:<id> is a
 * malformed record rather than a WRONGTYPE error that aborts the script and
 * leaves the stream entry to be delivered again and again.
 */
#define QUEUE_LUA_ALLOW(F, T, f, t) "ALLOWED." #f "." #t " = true\n"
#define QUEUE_LUA_PRELUDE                                                                                               \
    "local P = 'patchbay:'\n"                                                                                           \
    "local FINAL = {succeeded = true, failed = true, cancelled = true, dead = true}\n"                                  \
    "local KNOWN = {queued = true, running = true, succeeded = true, failed = true, cancelled = true, dead = true}\n"   \
    "local ALLOWED\n"                                                                                                   \
    "-- built on first use: most enqueues move no job, and a script's top level runs at every call\n"                  \
    "local function allowed()\n"                                                                                       \
    "  if ALLOWED then return ALLOWED end\n"                                                                           \
    "  ALLOWED = {queued = {}, running = {}, succeeded = {}, failed = {}, cancelled = {}, dead = {}}\n"                \
    JOB_TRANSITIONS(QUEUE_LUA_ALLOW)                                                                                    \
    "  return ALLOWED\n"                                                                                               \
    "end\n"                                                                                                            \
    "local MOVES = {}\n"                                                                                                \
    "local FIELDS = {'status', 'kind', 'repo', 'number', 'payload_key', 'delivery', 'attempts', 'runs', 'run',\n"      \
    "                'entry', 'cancel_requested', 'started_at_ms', 'worker', 'error', 'sender'}\n"                      \
    "local function job_log(id, now, msg)\n"                                                                            \
    "  redis.call('XADD', P .. 'log:' .. id, 'MAXLEN', '~', '" QUEUE_LOG_MAX_LINES_STR "', '*', 'ts', now,\n"           \
    "             'level', 'info', 'msg', msg)\n"                                                                       \
    "end\n"                                                                                                             \
    "local function load(id)\n"                                                                                         \
    "  local jk = P .. 'job:' .. id\n"                                                                                  \
    "  local ty = redis.call('TYPE', jk)['ok']\n"                                                                       \
    "  if ty == 'none' then return nil, 'no record ' .. jk end\n"                                                       \
    "  if ty ~= 'hash' then return nil, jk .. ' is a ' .. ty .. ', not a hash' end\n"                                   \
    "  local v = redis.call('HMGET', jk, unpack(FIELDS))\n"                                                             \
    "  local rec = {id = id}\n"                                                                                         \
    "  for i = 1, #FIELDS do rec[FIELDS[i]] = v[i] end\n"                                                               \
    "  return rec\n"                                                                                                    \
    "end\n"                                                                                                             \
    "local function transition(rec, to, now, ttl, why, fields)\n"                                                       \
    "  local from, ALLOWED = rec.status, allowed()\n"                                                                   \
    "  if not (ALLOWED[from] and ALLOWED[from][to]) then\n"                                                             \
    "    error('illegal job transition ' .. tostring(from) .. ' -> ' .. to .. ' (job ' .. rec.id .. ')')\n"             \
    "  end\n"                                                                                                           \
    "  why = why or ''\n"                                                                                               \
    "  local jk, lk, kind = P .. 'job:' .. rec.id, P .. 'log:' .. rec.id, rec.kind or ''\n"                             \
    "  local args = {'status', to, 'updated_at_ms', now}\n"                                                             \
    "  if FINAL[to] then args[#args + 1] = 'finished_at_ms'; args[#args + 1] = now end\n"                               \
    "  for i = 1, #(fields or {}) do args[#args + 1] = fields[i] end\n"                                                 \
    "  redis.call('HSET', jk, unpack(args))\n"                                                                          \
    "  if from == 'queued' then redis.call('ZREM', P .. 'queued:' .. kind, rec.id) end\n"                               \
    "  if to == 'queued' then redis.call('ZADD', P .. 'queued:' .. kind, now, rec.id) end\n"                            \
    "  job_log(rec.id, now, from .. ' -> ' .. to .. (why ~= '' and (': ' .. why) or ''))\n"                             \
    "  if FINAL[to] then\n"                                                                                             \
    "    redis.call('HINCRBY', P .. 'metrics', 'jobs:' .. kind .. ':' .. to, 1)\n"                                      \
    "    redis.call('EXPIRE', jk, ttl)\n"                                                                               \
    "    redis.call('EXPIRE', lk, ttl)\n"                                                                               \
    "    if rec.payload_key then redis.call('EXPIRE', rec.payload_key, ttl) end\n"                                      \
    "    if rec.repo and rec.number then\n"                                                                             \
    "      local ak, slot = P .. 'active:' .. rec.repo .. '#' .. rec.number, kind .. ':' .. (rec.sender or '')\n"       \
    "      if redis.call('HGET', ak, slot) == rec.id then redis.call('HDEL', ak, slot) end\n"                           \
    "    end\n"                                                                                                         \
    "  elseif FINAL[from] then\n"                                                                                       \
    "    redis.call('PERSIST', jk)\n"                                                                                   \
    "    redis.call('PERSIST', lk)\n"                                                                                   \
    "    if rec.payload_key then redis.call('PERSIST', rec.payload_key) end\n"                                          \
    "  end\n"                                                                                                           \
    "  MOVES[#MOVES + 1] = {rec.id, from, to, why, rec.delivery or '', kind}\n"                                         \
    "  rec.status = to\n"                                                                                               \
    "end\n"

/*
 * The enqueue script.
 *
 * KEYS: 1 seq, 2 stream, then two per delivery: "patchbay:delivery:<guid>"
 *       and "patchbay:event:<identity>" (job.h JOB_F_EVENT_ID; the delivery
 *       key again for an event without one)
 * ARGV: 1 count, 2 ttl_s, then per delivery:
 *       now_ms, kind, repo, number, sender, head_sha, delivery, and the
 *       record's QUEUE_F_WEBHOOK value ("" where a value is absent); the
 *       record's other fields are the script's own constants
 * Returns one {1, id} (a new job) or {0, id} (seen before) per delivery.
 *
 * Seen before: the delivery id, or the event under another delivery id
 * (GitHub signs the body only, so a captured delivery replayed with a fresh
 * X-GitHub-Delivery is still the same comment, label or push). Each is
 * claimed with one SET NX GET for the id the job would get, which both checks
 * and records it; the counter is read and written once per batch rather than
 * INCRed per job.
 *
 * Redis's CPU per job is what bounds jobs per second
 * (tests/bench/bench_enqueue.c measures it without HTTP). Most of the
 * instructions it runs for a job are paid per argument and per command, not
 * per byte: each argument is parsed, made a Lua string, made a Redis object
 * again by redis.call, stored, and written to the append-only file
 * (callgrind: ~300k instructions a job with one command per key and a field
 * per value, about 1,000 of them per argument in the AOF alone; ~205k now).
 * So a job is seven commands: the two dedup keys, the record, the per-kind
 * queued index, the active slot (read and written), the stream
 * entry; the record is some ten fields, and its constant ones are the
 * script's own strings. There is no list of all jobs: ids are the counter's
 * values, so listing walks them down from seq (queue_job_list). The webhook
 * body is not stored either: what a job reads of it is in the record
 * (job.h); the bytes that are stored cost the rest (the AOF, memory).
 *
 * Nothing here can ask GitHub who may do what, so nothing here changes
 * another person's job. The active hash of an issue holds the newest queued
 * or running job per kind and sender ("fix:alice" -> id):
 *  - "stop" cancels the sender's own queued jobs at once and asks their
 *    running ones to stop (cancel_requested + PUBLISH), so stopping one's own
 *    request is never stuck behind it. Other people's jobs it only names in
 *    the stop job's `claims`; the stop job cancels them on a worker once the
 *    sender's permission, checked live, allows it (fixjob_stop).
 *  - A new job of a kind supersedes the same sender's still-queued job of
 *    that kind on the same issue: the newer instruction wins and no worker
 *    time is wasted. A review of a newer head commit also stops the same
 *    sender's running review of an older one: its comments would land on
 *    lines the push may have moved. Someone else's job is never superseded:
 *    it runs in its turn (one job per issue at a time).
 * Both cancel through transition(), like every other change of state.
 */
const char QUEUE_ENQUEUE_LUA[] = QUEUE_LUA_PRELUDE
    "local out = {}\n"
    "local a = 3\n"
    "local seq = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local issued = seq\n"
    "for d = 1, tonumber(ARGV[1]) do\n"
    "  local now, kind, repo, number = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]\n"
    "  local sender, sha, delivery, webhook = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]\n"
    "  a = a + 8\n"
    "  -- claim the delivery and the event for the id this job would get; either\n"
    "  -- one claimed before names the job it made\n"
    "  local id = tostring(seq + 1)\n"
    "  local dk, ek = KEYS[1 + 2 * d], KEYS[2 + 2 * d]\n"
    "  local seen = redis.call('SET', dk, id, 'NX', 'GET', 'EX', ARGV[2])\n"
    "  if not seen and ek ~= dk then\n"
    "    seen = redis.call('SET', ek, id, 'NX', 'GET', 'EX', ARGV[2])\n"
    "    if seen then redis.call('SET', dk, seen, 'EX', ARGV[2]) end\n"
    "  end\n"
    "  if seen then\n"
    "    out[d] = {0, seen}\n"
    "  else\n"
    "    seq = seq + 1\n"
    "    local jk = 'patchbay:job:' .. id\n"
    "    -- created_at, updated_at_ms: absent until the first move (record_to_json)\n"
    "    local rec = {'id', id, 'status', 'queued', 'attempts', '0', 'delivery', delivery, 'created_at_ms', now,\n"
    "                 'kind', kind, 'sender', sender, '" QUEUE_F_WEBHOOK "', webhook}\n"
    "    local target = repo ~= '' and number ~= ''\n"
    "    if target then\n"
    "      rec[17], rec[18], rec[19], rec[20] = 'repo', repo, 'number', number\n"
    "    end\n"
    "    if sha ~= '' then rec[#rec + 1] = 'head_sha'; rec[#rec + 1] = sha end\n"
    "    redis.call('HSET', jk, unpack(rec))\n"
    "    redis.call('ZADD', 'patchbay:queued:' .. kind, now, id)\n"
    "    if target then\n"
    "      local ak = 'patchbay:active:' .. repo .. '#' .. number\n"
    "      if kind == 'stop' then\n"
    "        local active = redis.call('HGETALL', ak)\n"
    "        local stopped, claims = {}, {}\n"
    "        for i = 1, #active, 2 do\n"
    "          local other = load(active[i + 1])\n"
    "          local why = 'stopped by ' .. sender .. ' (job ' .. id .. ')'\n"
    "          local live = other and (other.status == 'queued' or other.status == 'running')\n"
    "          if live and other.sender ~= sender then\n"
    "            claims[#claims + 1] = other.id\n"
    "          elseif live and other.status == 'queued' then\n"
    "            redis.call('ZREM', 'patchbay:delayed', other.id)\n"
    "            transition(other, 'cancelled', now, ARGV[2], why, {'error', why})\n"
    "            stopped[#stopped + 1] = other.id\n"
    "          elseif live then\n"
    "            redis.call('HSET', 'patchbay:job:' .. other.id, 'cancel_requested', '1', 'updated_at_ms', now)\n"
    "            redis.call('PUBLISH', 'patchbay:cancel', other.id)\n"
    "            job_log(other.id, now, 'cancel requested: ' .. why)\n"
    "            stopped[#stopped + 1] = other.id\n"
    "          end\n"
    "        end\n"
    "        redis.call('HSET', jk, 'stops', table.concat(stopped, ','), 'claims', table.concat(claims, ','))\n"
    "      elseif kind == 'fix' or kind == 'followup' or kind == 'review' then\n"
    "        local slot = kind .. ':' .. sender\n"
    "        local prev = redis.call('HGET', ak, slot)\n"
    "        local other = prev and load(prev)\n"
    "        if other and other.sender ~= sender then\n"
    "          other = nil\n"
    "        end\n"
    "        if other and other.status == 'queued' then\n"
    "          local why = 'superseded by job ' .. id\n"
    "          redis.call('ZREM', 'patchbay:delayed', other.id)\n"
    "          transition(other, 'cancelled', now, ARGV[2], why, {'error', why})\n"
    "          redis.call('HSET', jk, 'supersedes', prev)\n"
    "        elseif other and other.status == 'running' and kind == 'review' then\n"
    "          local was = redis.call('HGET', 'patchbay:job:' .. other.id, 'head_sha')\n"
    "          if sha ~= '' and was and was ~= sha then\n"
    "            local why = 'superseded by job ' .. id .. ' (a newer head commit)'\n"
    "            redis.call('HSET', 'patchbay:job:' .. other.id, 'cancel_requested', '1', 'updated_at_ms', now)\n"
    "            redis.call('PUBLISH', 'patchbay:cancel', other.id)\n"
    "            job_log(other.id, now, 'cancel requested: ' .. why)\n"
    "            redis.call('HSET', jk, 'supersedes', prev)\n"
    "          end\n"
    "        end\n"
    "        redis.call('HSET', ak, slot, id)\n"
    "      end\n"
    "    end\n"
    "    redis.call('XADD', KEYS[2], '*', 'job', id)\n"
    "    out[d] = {1, id}\n"
    "  end\n"
    "end\n"
    "-- one write of the counter for the batch, instead of an INCR per job\n"
    "if seq ~= issued then redis.call('SET', KEYS[1], seq) end\n"
    "return out\n";

void queue_enqueue_sha(char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)QUEUE_ENQUEUE_LUA, strlen(QUEUE_ENQUEUE_LUA), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* What each delivery needs besides its argv slots: its keys, its number. */
typedef struct {
    char key[sizeof(QUEUE_DELIVERY_PREFIX) + QUEUE_DELIVERY_MAX_BYTES];
    char event_key[sizeof(QUEUE_EVENT_PREFIX) + JOB_EVENT_ID_MAX_BYTES];
    char now_ms[24];
    size_t packed_at, packed_len; /* its QUEUE_F_WEBHOOK value in cmd->packed */
} delivery_scratch_t;

typedef struct {
    char count[8];
    char ttl_s[24];
    char nkeys[8];
} batch_scratch_t;

/* Arguments per delivery in the script call: its two keys and 8 values. */
#define SCRIPT_ARGS_PER_DELIVERY (2 + 8)

typedef struct {
    const char **argv;
    size_t *argvlen;
    int argc;
} args_t;

static void push(args_t *a, const char *s, size_t n)
{
    a->argv[a->argc] = s;
    a->argvlen[a->argc] = n;
    a->argc++;
}

static void push_str(args_t *a, const char *s)
{
    push(a, s, strlen(s));
}

/* The fields the script does not take one apiece, as one flat JSON object
 * of strings. The event's identity is not kept: it names the dedup key,
 * and no reader wants it again. */
static void pack_fields(strbuf_t *b, const job_fields_t *f)
{
    static const char *const apart[] = {JOB_F_KIND,   JOB_F_REPO,     JOB_F_NUMBER,
                                        JOB_F_SENDER, JOB_F_HEAD_SHA, JOB_F_EVENT_ID, NULL};
    int first = 1;
    strbuf_append(b, "{");
    for (size_t k = 0; k < f->count; k++) {
        int skip = 0;
        for (int i = 0; apart[i] && !skip; i++)
            skip = strcmp(apart[i], f->items[k].name) == 0;
        if (skip)
            continue;
        if (!first)
            strbuf_append(b, ",");
        first = 0;
        strbuf_append_json_string(b, f->items[k].name, strlen(f->items[k].name));
        strbuf_append(b, ":");
        strbuf_append_json_string(b, f->items[k].value, strlen(f->items[k].value));
    }
    strbuf_append(b, "}");
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

int queue_enqueue_cmd(queue_enqueue_cmd_t *cmd, const char *sha, const queue_delivery_t *const *ds, size_t n,
                      int64_t retention_s)
{
    assert(n >= 1 && n <= QUEUE_BATCH_MAX);
    /* MULTI (1) + script + EXEC (1) */
    size_t total_args = 1 + 7 + n * SCRIPT_ARGS_PER_DELIVERY + 1;
    size_t bytes = total_args * (sizeof(const char *) + sizeof(size_t)) + sizeof(batch_scratch_t) +
                   n * sizeof(delivery_scratch_t);
    memset(cmd, 0, sizeof(*cmd));
    if ((cmd->mem = malloc(bytes)) == NULL)
        return -1;
    const char **argv = cmd->mem;
    size_t *argvlen = (size_t *)(argv + total_args);
    batch_scratch_t *b = (batch_scratch_t *)(argvlen + total_args);
    delivery_scratch_t *per = (delivery_scratch_t *)(b + 1);
    snprintf(b->count, sizeof(b->count), "%zu", n);
    snprintf(b->ttl_s, sizeof(b->ttl_s), "%" PRId64, retention_s);
    snprintf(b->nkeys, sizeof(b->nkeys), "%zu", 2 + 2 * n);

    /* the packed fields first: the buffer may move while it grows */
    strbuf_t packed = STRBUF_INIT;
    for (size_t i = 0; i < n; i++) {
        per[i].packed_at = packed.len;
        pack_fields(&packed, ds[i]->fields);
        per[i].packed_len = packed.len - per[i].packed_at;
    }
    if (packed.truncated) {
        strbuf_free(&packed);
        free(cmd->mem);
        memset(cmd, 0, sizeof(*cmd));
        return -1;
    }
    cmd->packed = packed.data;

    args_t a = {argv, argvlen, 0};
    int start = 0;
#define END_COMMAND()                                                                                                   \
    do {                                                                                                                \
        cmd->argv[cmd->ncmds] = argv + start;                                                                          \
        cmd->argvlen[cmd->ncmds] = argvlen + start;                                                                    \
        cmd->argc[cmd->ncmds] = a.argc - start;                                                                        \
        cmd->ncmds++;                                                                                                   \
        start = a.argc;                                                                                                 \
    } while (0)

    push_str(&a, "MULTI");
    END_COMMAND();
    for (size_t i = 0; i < n; i++) {
        const queue_delivery_t *d = ds[i];
        const char *event_id = job_fields_get(d->fields, JOB_F_EVENT_ID);
        assert(strlen(d->delivery) <= QUEUE_DELIVERY_MAX_BYTES);
        snprintf(per[i].key, sizeof(per[i].key), "%s%s", QUEUE_DELIVERY_PREFIX, d->delivery);
        if (event_id != NULL && event_id[0] != '\0')
            snprintf(per[i].event_key, sizeof(per[i].event_key), "%s%.*s", QUEUE_EVENT_PREFIX,
                     JOB_EVENT_ID_MAX_BYTES, event_id);
        else
            snprintf(per[i].event_key, sizeof(per[i].event_key), "%s", per[i].key);
        snprintf(per[i].now_ms, sizeof(per[i].now_ms), "%" PRId64, d->received_ms);
    }

    if (sha != NULL) {
        push_str(&a, "EVALSHA");
        push(&a, sha, 40);
    } else {
        push_str(&a, "EVAL");
        push_str(&a, QUEUE_ENQUEUE_LUA);
    }
    push_str(&a, b->nkeys);
    push_str(&a, QUEUE_SEQ);
    push_str(&a, QUEUE_STREAM);
    for (size_t i = 0; i < n; i++) {
        push_str(&a, per[i].key);
        push_str(&a, per[i].event_key);
    }
    push_str(&a, b->count);
    push_str(&a, b->ttl_s);
    for (size_t i = 0; i < n; i++) {
        const job_fields_t *f = ds[i]->fields;
        const char *sender = job_fields_get(f, JOB_F_SENDER);
        push_str(&a, per[i].now_ms);
        push_str(&a, or_empty(job_fields_get(f, JOB_F_KIND)));
        push_str(&a, or_empty(job_fields_get(f, JOB_F_REPO)));
        push_str(&a, or_empty(job_fields_get(f, JOB_F_NUMBER)));
        push_str(&a, sender != NULL ? sender : "a user");
        push_str(&a, or_empty(job_fields_get(f, JOB_F_HEAD_SHA)));
        push_str(&a, ds[i]->delivery);
        push(&a, cmd->packed + per[i].packed_at, per[i].packed_len);
    }
    END_COMMAND();
    push_str(&a, "EXEC");
    END_COMMAND();
#undef END_COMMAND
    assert((size_t)a.argc == total_args);
    return 0;
}

void queue_enqueue_cmd_free(queue_enqueue_cmd_t *cmd)
{
    free(cmd->mem);
    free(cmd->packed);
    memset(cmd, 0, sizeof(*cmd));
}

int queue_enqueue_parse(const redisReply *r, size_t n, queue_enqueue_result_t *results, char *err, size_t err_len)
{
    if (r == NULL) {
        if (err_len)
            snprintf(err, err_len, "no answer from Redis (connection lost)");
        return QUEUE_ERR_REDIS;
    }
    if (r->type == REDIS_REPLY_ERROR) { /* EXECABORT: a command was refused, nothing ran */
        if (err_len)
            snprintf(err, err_len, "Redis: %.200s", r->str);
        return QUEUE_ERR_REDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        goto unexpected;
    const redisReply *script = r->element[0];
    if (script->type == REDIS_REPLY_ERROR) {
        if (strncmp(script->str, "NOSCRIPT", 8) == 0)
            return QUEUE_ERR_NOSCRIPT;
        if (err_len)
            snprintf(err, err_len, "Redis: %.200s", script->str);
        return QUEUE_ERR_REDIS;
    }
    if (script->type != REDIS_REPLY_ARRAY || script->elements != n)
        goto unexpected;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = script->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            (e->element[1]->type != REDIS_REPLY_STRING && e->element[1]->type != REDIS_REPLY_INTEGER))
            goto unexpected;
        results[i].created = e->element[0]->integer == 1;
        if (e->element[1]->type == REDIS_REPLY_INTEGER)
            snprintf(results[i].id, sizeof(results[i].id), "%lld", e->element[1]->integer);
        else
            snprintf(results[i].id, sizeof(results[i].id), "%.*s", (int)e->element[1]->len, e->element[1]->str);
    }
    return QUEUE_OK;
unexpected:
    if (err_len)
        snprintf(err, err_len, "unexpected answer to the enqueue transaction");
    return QUEUE_ERR_REDIS;
}

int queue_enqueue_blocking(redisContext *c, const queue_delivery_t *d, int64_t retention_s,
                           queue_enqueue_result_t *result, char *err, size_t err_len)
{
    char sha[41];
    queue_enqueue_sha(sha);
    int rc = QUEUE_ERR_NOSCRIPT;
    for (int attempt = 0; attempt < 2 && rc == QUEUE_ERR_NOSCRIPT; attempt++) {
        queue_enqueue_cmd_t cmd;
        if (queue_enqueue_cmd(&cmd, attempt == 0 ? sha : NULL, &d, 1, retention_s) != 0) {
            snprintf(err, err_len, "out of memory");
            return QUEUE_ERR_REDIS;
        }
        size_t ncmds = cmd.ncmds;
        for (size_t i = 0; i < ncmds; i++)
            redisAppendCommandArgv(c, cmd.argc[i], cmd.argv[i], cmd.argvlen[i]);
        queue_enqueue_cmd_free(&cmd);
        redisReply *last = NULL;
        rc = QUEUE_OK;
        for (size_t i = 0; i < ncmds && rc == QUEUE_OK; i++) { /* MULTI, script, EXEC: the last answers */
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
                snprintf(err, err_len, "Redis: %s", c->errstr);
                rc = QUEUE_ERR_REDIS;
                break;
            }
            if (last)
                freeReplyObject(last);
            last = r;
        }
        if (rc == QUEUE_OK)
            rc = queue_enqueue_parse(last, 1, result, err, err_len);
        if (last)
            freeReplyObject(last);
    }
    return rc;
}

/* ---- reading jobs back (CLI, dashboard) ---- */

static int redis_error(redisContext *c, const redisReply *r, char *err, size_t err_len);

/* Fields printed as numbers in JSON; everything else stays a string. */
static int is_numeric_field(const char *name)
{
    static const char *const numeric[] = {"number",         "attempts",       "installation",    "comment_id",
                                          "line",           "created_at_ms",  "updated_at_ms",   "started_at_ms",
                                          "finished_at_ms", "payload_bytes",  "runs",            "duration_ms",
                                          "retry_at_ms",    "heartbeat_at_ms", "timeout_ms",     NULL};
    for (int i = 0; numeric[i]; i++)
        if (strcmp(numeric[i], name) == 0)
            return 1;
    return 0;
}

static json_t *field_to_json(const char *name, const char *v, size_t len)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (is_numeric_field(name) && len > 0 && *end == '\0')
        return json_integer(n);
    if (strcmp(name, "is_pr") == 0 || strcmp(name, "auto") == 0 || strcmp(name, "draft") == 0)
        return json_boolean(strcmp(v, "1") == 0);
    return json_stringn_nocheck(v, len);
}

/* The fields packed in QUEUE_F_WEBHOOK, under any field of the same name
 * kept apart (a job that sets a field later wins). Not JSON text that
 * parses: the record is as good as its other fields. */
static void unpack_webhook(json_t *o, const char *text, size_t len)
{
    json_t *packed = json_loadb(text, len, 0, NULL);
    const char *name;
    json_t *v;
    json_object_foreach(packed, name, v) {
        if (json_is_string(v) && json_object_get(o, name) == NULL)
            json_object_set_new(o, name, field_to_json(name, json_string_value(v), json_string_length(v)));
    }
    json_decref(packed);
}

static json_t *record_to_json(const redisReply *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const redisReply *webhook = NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, QUEUE_F_WEBHOOK) == 0)
            webhook = v;
        else
            json_object_set_new(o, k->str, field_to_json(k->str, v->str, v->len));
    }
    if (webhook != NULL)
        unpack_webhook(o, webhook->str, webhook->len);
    /* what a record made before its first move leaves to its creation time */
    json_t *created = json_object_get(o, "created_at_ms");
    if (json_is_integer(created)) {
        if (json_object_get(o, "created_at") == NULL) {
            char iso[CLOCK_ISO_BYTES];
            clock_format_iso(json_integer_value(created), iso);
            json_object_set_new(o, "created_at", json_string(iso));
        }
        if (json_object_get(o, "updated_at_ms") == NULL)
            json_object_set_new(o, "updated_at_ms", json_integer(json_integer_value(created)));
    }
    return o;
}

int queue_job_get(redisContext *c, const char *id, json_t **out, char *err, size_t err_len)
{
    *out = NULL;
    redisReply *r = redisCommand(c, "HGETALL %s%s", QUEUE_JOB_PREFIX, id);
    if (r == NULL) {
        snprintf(err, err_len, "Redis: %s", c->errstr);
        return QUEUE_ERR_REDIS;
    }
    int rc = QUEUE_OK;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, err_len, "Redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        rc = QUEUE_ERR_REDIS;
    } else if (r->elements == 0) {
        snprintf(err, err_len, "no job %s", id);
        rc = QUEUE_ERR_NOT_FOUND;
    } else if ((*out = record_to_json(r)) == NULL) {
        snprintf(err, err_len, "out of memory");
        rc = QUEUE_ERR_REDIS;
    }
    freeReplyObject(r);
    return rc;
}

/* Newest first; ids whose record has expired are skipped. Ids are the
 * counter's values, so the walk goes down from it, a page of HGETALLs per
 * round trip. */
int queue_job_list(redisContext *c, const char *status, size_t limit, json_t **out, char *err, size_t err_len)
{
    enum { PAGE = 200 };
    json_t *arr = json_array();
    if (arr == NULL) {
        snprintf(err, err_len, "out of memory");
        return QUEUE_ERR_REDIS;
    }
    redisReply *seq = redisCommand(c, "GET %s", QUEUE_SEQ);
    if (seq == NULL || (seq->type != REDIS_REPLY_STRING && seq->type != REDIS_REPLY_NIL)) {
        int rc = redis_error(c, seq, err, err_len);
        if (seq)
            freeReplyObject(seq);
        json_decref(arr);
        return rc;
    }
    long long next = seq->type == REDIS_REPLY_STRING ? strtoll(seq->str, NULL, 10) : 0;
    freeReplyObject(seq);
    while (next >= 1 && json_array_size(arr) < limit) {
        long long n = next < PAGE ? next : PAGE;
        for (long long i = 0; i < n; i++)
            redisAppendCommand(c, "HGETALL %s%lld", QUEUE_JOB_PREFIX, next - i);
        next -= n;
        int failed = 0;
        for (long long i = 0; i < n; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
                failed = 1;
                break;
            }
            if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && json_array_size(arr) < limit) {
                json_t *job = record_to_json(r);
                const char *st = job ? json_string_value(json_object_get(job, "status")) : NULL;
                if (job != NULL && (status == NULL || (st != NULL && strcmp(st, status) == 0)))
                    json_array_append_new(arr, job);
                else
                    json_decref(job);
            }
            freeReplyObject(r);
        }
        if (failed) {
            snprintf(err, err_len, "Redis: %s", c->errstr);
            json_decref(arr);
            return QUEUE_ERR_REDIS;
        }
    }
    *out = arr;
    return QUEUE_OK;
}

/* ------------------------------------------------------------------------
 * The work side: one script, one operation per call
 * ------------------------------------------------------------------------ */

const int64_t QUEUE_DURATION_BUCKETS_MS[QUEUE_DURATION_BUCKETS] = {
#define QUEUE_C_BUCKET(ms) ms,
    QUEUE_DURATION_BUCKETS_LIST(QUEUE_C_BUCKET)
#undef QUEUE_C_BUCKET
};

/*
 * Every operation answers {outcome, detail, extra, record, moves}: record is
 * a flat HGETALL (start), moves the transitions it made ({id, from, to, why,
 * delivery, kind} each), logged by log_moves(). See queue.h for what each
 * operation means; requeue() is the one way a pending entry goes back to the
 * stream, and bury() the one way an unreadable record becomes dead.
 */
#define QUEUE_LUA_BUCKET(ms) #ms ", "
const char QUEUE_WORK_LUA[] = QUEUE_LUA_PRELUDE
    "local DEAD_MAX = '" QUEUE_DEAD_MAX_ENTRIES_STR "'\n"
    "local BUCKETS = {" QUEUE_DURATION_BUCKETS_LIST(QUEUE_LUA_BUCKET) "}\n"
    "-- ARGV: 1 op, 2 ttl_s, 3 kinds (name:max_attempts:exclusive ...), then the operation's own\n"
    "local op, ttl = ARGV[1], ARGV[2]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local STREAM, GROUP, METRICS = P .. 'queue', 'workers', P .. 'metrics'\n"
    "local KINDS = {}\n"
    "for name, max, excl in string.gmatch(ARGV[3], '(%w+):(%d+):(%d)') do\n"
    "  KINDS[name] = {max = tonumber(max), exclusive = excl == '1'}\n"
    "end\n"
    "local function ack(entry)\n"
    "  redis.call('XACK', STREAM, GROUP, entry)\n"
    "  redis.call('XDEL', STREAM, entry)\n"
    "end\n"
    "local function dead_letter(id, kind, entry, why)\n"
    "  redis.call('XADD', P .. 'dead', 'MAXLEN', '~', DEAD_MAX, '*', 'job', id, 'kind', kind or '', 'entry', entry or '',\n"
    "             'error', why, 'at_ms', now)\n"
    "end\n"
    "local function lock_key(rec)\n"
    "  if rec.repo and rec.number then return P .. 'lock:' .. rec.repo .. '#' .. rec.number end\n"
    "end\n"
    "-- jobs that found the issue locked wait in the delayed set; the release\n"
    "-- sends them back to the stream at once instead of at their next try\n"
    "local function release(rec, token)\n"
    "  local lk = lock_key(rec)\n"
    "  if lk and redis.call('GET', lk) == token then\n"
    "    redis.call('DEL', lk)\n"
    "    local wk = P .. 'waiters:' .. rec.repo .. '#' .. rec.number\n"
    "    local waiters = redis.call('SMEMBERS', wk)\n"
    "    for i = 1, #waiters do\n"
    "      if redis.call('ZREM', P .. 'delayed', waiters[i]) == 1 then redis.call('XADD', STREAM, '*', 'job', waiters[i]) end\n"
    "    end\n"
    "    redis.call('DEL', wk)\n"
    "  end\n"
    "end\n"
    "-- a record we cannot read has no state to move from: it goes straight to dead\n"
    "local function bury(rec, entry, why)\n"
    "  local jk = P .. 'job:' .. rec.id\n"
    "  redis.call('HSET', jk, 'status', 'dead', 'updated_at_ms', now, 'finished_at_ms', now, 'error', why)\n"
    "  if rec.kind then redis.call('ZREM', P .. 'queued:' .. rec.kind, rec.id) end\n"
    "  redis.call('ZREM', P .. 'delayed', rec.id)\n"
    "  redis.call('EXPIRE', jk, ttl)\n"
    "  job_log(rec.id, now, tostring(rec.status or '?') .. ' -> dead: ' .. why)\n"
    "  MOVES[#MOVES + 1] = {rec.id, tostring(rec.status or '?'), 'dead', why, rec.delivery or '', tostring(rec.kind or '?')}\n"
    "end\n"
    "local function requeue(entry, reason, detail)\n"
    "  local e = redis.call('XRANGE', STREAM, entry, entry)\n"
    "  ack(entry)\n"
    "  if #e == 0 then return 0 end\n"
    "  local f, id = e[1][2], nil\n"
    "  for i = 1, #f, 2 do if f[i] == 'job' then id = f[i + 1] end end\n"
    "  if not id then return 0 end\n"
    "  local rec = load(id)\n"
    "  if rec and FINAL[rec.status] then return 0 end\n"
    "  if rec and rec.status == 'running' then\n"
    "    local jk = P .. 'job:' .. id\n"
    "    release(rec, id .. '/' .. tostring(rec.run))\n"
    "    local who = tostring(rec.worker or '?')\n"
    "    redis.call('HDEL', jk, 'run', 'worker', 'entry')\n"
    "    if rec.cancel_requested == '1' then\n"
    "      transition(rec, 'cancelled', now, ttl, 'cancel requested; its worker ' .. who .. ' stopped', {'error', 'cancelled'})\n"
    "      return 1\n"
    "    end\n"
    "    local fields, why\n"
    "    if reason == 'shutdown' or reason == 'reconnect' then\n"
    "      why = 'handed back by ' .. who .. ' (' .. detail .. '); the interrupted attempt does not count'\n"
    "      fields = {'attempts', math.max(0, (tonumber(rec.attempts) or 1) - 1)}\n"
    "    else\n"
    "      why = 'its worker ' .. who .. ' ' .. detail\n"
    "      fields = {'error', why}\n"
    "      redis.call('HINCRBY', jk, 'reclaims', 1)\n"
    "    end\n"
    "    transition(rec, 'queued', now, ttl, why, fields)\n"
    "  end\n"
    "  -- queued (read but never started), running (now queued again), or a record\n"
    "  -- the next start will find unreadable and bury\n"
    "  redis.call('XADD', STREAM, '*', 'job', id)\n"
    "  return 1\n"
    "end\n"
    "local function reply(outcome, detail, extra, record)\n"
    "  return {outcome, detail or '', extra or '', record or {}, MOVES}\n"
    "end\n"
    "\n"
    "if op == 'start' then\n"
    "  local entry, id, consumer, lease, wait = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]\n"
    "  if id == '' then\n"
    "    ack(entry)\n"
    "    local why = 'stream entry ' .. entry .. ' has no usable job field (' .. ARGV[9] .. ')'\n"
    "    dead_letter('', '', entry, why)\n"
    "    redis.call('HINCRBY', METRICS, 'malformed', 1)\n"
    "    return reply('malformed', why)\n"
    "  end\n"
    "  local rec, why = load(id)\n"
    "  if not rec then\n"
    "    ack(entry)\n"
    "    dead_letter(id, '', entry, why)\n"
    "    redis.call('HINCRBY', METRICS, 'malformed', 1)\n"
    "    return reply('malformed', why)\n"
    "  end\n"
    "  local kind = KINDS[rec.kind or '']\n"
    "  local bad = nil\n"
    "  if not KNOWN[rec.status or ''] then bad = 'unknown status ' .. tostring(rec.status or '(none)')\n"
    "  elseif not kind then bad = 'unknown kind ' .. tostring(rec.kind or '(none)')\n"
    "  elseif rec.attempts and not string.match(rec.attempts, '^%d+$') then bad = 'attempts is not a whole number'\n"
    "  elseif rec.runs and not string.match(rec.runs, '^%d+$') then bad = 'runs is not a whole number'\n"
    "  end\n"
    "  if bad then\n"
    "    ack(entry)\n"
    "    bury(rec, entry, 'malformed record: ' .. bad)\n"
    "    dead_letter(id, rec.kind, entry, 'malformed record: ' .. bad)\n"
    "    redis.call('HINCRBY', METRICS, 'malformed', 1)\n"
    "    return reply('malformed', 'malformed record: ' .. bad)\n"
    "  end\n"
    "  if rec.status ~= 'queued' then\n"
    "    ack(entry)\n"
    "    return reply('skip', rec.status)\n"
    "  end\n"
    "  local jk = P .. 'job:' .. id\n"
    "  local lk = kind.exclusive and lock_key(rec)\n"
    "  if lk then\n"
    "    local holder = redis.call('GET', lk)\n"
    "    if holder and string.sub(holder, 1, #id + 1) ~= id .. '/' then\n"
    "      ack(entry)\n"
    "      local other = string.match(holder, '^([^/]*)')\n"
    "      redis.call('ZADD', P .. 'delayed', now + tonumber(wait), id)\n"
    "      redis.call('SADD', P .. 'waiters:' .. rec.repo .. '#' .. rec.number, id)\n"
    "      if redis.call('HGET', jk, 'waiting_for') ~= other then\n"
    "        job_log(id, now, 'waiting: job ' .. other .. ' is running on ' .. rec.repo .. '#' .. rec.number)\n"
    "      end\n"
    "      redis.call('HSET', jk, 'waiting_for', other, 'retry_at_ms', now + tonumber(wait), 'updated_at_ms', now)\n"
    "      redis.call('HINCRBY', METRICS, 'waits:' .. rec.kind, 1)\n"
    "      return reply('locked', other)\n"
    "    end\n"
    "  end\n"
    "  local attempts = redis.call('HINCRBY', jk, 'attempts', 1)\n"
    "  if attempts > kind.max then\n"
    "    ack(entry)\n"
    "    local why = 'gave up after ' .. (attempts - 1) .. ' attempts'\n"
    "    if rec.error then why = why .. '; last: ' .. rec.error end\n"
    "    transition(rec, 'dead', now, ttl, why, {'error', why, 'attempts', attempts - 1})\n"
    "    dead_letter(id, rec.kind, entry, why)\n"
    "    return reply('dead', why, '', redis.call('HGETALL', jk))\n"
    "  end\n"
    "  local run = tostring(redis.call('HINCRBY', jk, 'runs', 1))\n"
    "  if lk then redis.call('SET', lk, id .. '/' .. run, 'PX', lease) end\n"
    "  redis.call('HDEL', jk, 'retry_at_ms', 'waiting_for', 'cancel_requested')\n"
    "  transition(rec, 'running', now, ttl, 'attempt ' .. attempts .. ' of ' .. kind.max .. ' on ' .. consumer,\n"
    "             {'started_at_ms', now, 'heartbeat_at_ms', now, 'worker', consumer, 'run', run, 'entry', entry})\n"
    "  redis.call('HINCRBY', METRICS, 'started:' .. rec.kind, 1)\n"
    "  redis.call('HSET', P .. 'workers', consumer, 'busy ' .. now .. ' ' .. id)\n"
    "  return reply('run', run, '', redis.call('HGETALL', jk))\n"
    "\n"
    "elseif op == 'finish' then\n"
    "  local id, run, consumer, how, err, delay = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]\n"
    "  local rec = load(id)\n"
    "  if not rec or rec.run ~= run then return reply('lost', rec and rec.status or 'gone') end\n"
    "  if rec.status ~= 'running' then return reply('already', rec.status) end\n"
    "  local kind = KINDS[rec.kind] or {max = 1}\n"
    "  local dur = now - (tonumber(rec.started_at_ms) or now)\n"
    "  local fields, to, why = {'duration_ms', dur}, how, err\n"
    "  if how == 'retry' then\n"
    "    local attempts = tonumber(rec.attempts) or 0\n"
    "    if attempts >= kind.max then\n"
    "      to, why = 'dead', 'gave up after ' .. attempts .. ' attempts; last: ' .. err\n"
    "    else\n"
    "      to = 'queued'\n"
    "      local due = now + tonumber(delay)\n"
    "      fields[#fields + 1] = 'retry_at_ms'; fields[#fields + 1] = due\n"
    "      redis.call('ZADD', P .. 'delayed', due, id)\n"
    "      redis.call('HINCRBY', METRICS, 'retries:' .. rec.kind, 1)\n"
    "      why = err .. ' (attempt ' .. attempts .. ' of ' .. kind.max .. '; next in ' .. delay .. ' ms)'\n"
    "    end\n"
    "  elseif how == 'wait' then\n"
    "    -- waiting for GitHub is no failure: the attempt is given back\n"
    "    local due = now + tonumber(delay)\n"
    "    to = 'queued'\n"
    "    fields[#fields + 1] = 'retry_at_ms'; fields[#fields + 1] = due\n"
    "    fields[#fields + 1] = 'attempts'; fields[#fields + 1] = math.max(0, (tonumber(rec.attempts) or 1) - 1)\n"
    "    redis.call('ZADD', P .. 'delayed', due, id)\n"
    "    redis.call('HINCRBY', METRICS, 'github_waits:' .. rec.kind, 1)\n"
    "    why = err .. ' (again in ' .. delay .. ' ms; this attempt does not count)'\n"
    "  end\n"
    "  if to == 'succeeded' then redis.call('HDEL', P .. 'job:' .. id, 'error')\n"
    "  else fields[#fields + 1] = 'error'; fields[#fields + 1] = (to == 'dead') and why or err end\n"
    "  if rec.entry then ack(rec.entry) end\n"
    "  release(rec, id .. '/' .. run)\n"
    "  transition(rec, to, now, ttl, why, fields)\n"
    "  if to == 'dead' then dead_letter(id, rec.kind, rec.entry, why) end\n"
    "  local b = 1\n"
    "  while b <= #BUCKETS and dur > BUCKETS[b] do b = b + 1 end\n"
    "  redis.call('HINCRBY', METRICS, 'duration_bucket:' .. rec.kind .. ':' .. b, 1)\n"
    "  redis.call('HINCRBY', METRICS, 'duration_sum_ms:' .. rec.kind, dur)\n"
    "  redis.call('HINCRBY', METRICS, 'duration_count:' .. rec.kind, 1)\n"
    "  redis.call('HSET', P .. 'workers', consumer, 'idle ' .. now)\n"
    "  return reply(to, why)\n"
    "\n"
    "elseif op == 'heartbeat' then\n"
    "  local id, run, consumer, lease = ARGV[4], ARGV[5], ARGV[6], ARGV[7]\n"
    "  local rec = load(id)\n"
    "  if not rec or rec.status ~= 'running' or rec.run ~= run then return reply('lost', rec and rec.status or 'gone') end\n"
    "  if rec.entry then redis.call('XCLAIM', STREAM, GROUP, consumer, 0, rec.entry, 'JUSTID') end\n"
    "  local lk = lock_key(rec)\n"
    "  if lk and redis.call('GET', lk) == id .. '/' .. run then redis.call('PEXPIRE', lk, lease) end\n"
    "  redis.call('HSET', P .. 'job:' .. id, 'heartbeat_at_ms', now)\n"
    "  redis.call('HSET', P .. 'workers', consumer, 'busy ' .. now .. ' ' .. id)\n"
    "  return reply('ok', rec.cancel_requested or '0')\n"
    "\n"
    "elseif op == 'setfields' then\n"
    "  local id, run = ARGV[4], ARGV[5]\n"
    "  local rec = load(id)\n"
    "  if not rec or rec.status ~= 'running' or rec.run ~= run then return reply('lost', rec and rec.status or 'gone') end\n"
    "  redis.call('HSET', P .. 'job:' .. id, 'updated_at_ms', now, unpack(ARGV, 6))\n"
    "  return reply('ok')\n"
    "\n"
    "elseif op == 'handback' then\n"
    "  local consumer, reason, detail, forget = ARGV[4], ARGV[5], ARGV[6], ARGV[7]\n"
    "  local pend = redis.pcall('XPENDING', STREAM, GROUP, '-', '+', 1000, consumer)\n"
    "  local n = 0\n"
    "  if not pend.err then\n"
    "    for i = 1, #pend do n = n + requeue(pend[i][1], reason, detail) end\n"
    "    if forget == '1' then redis.call('XGROUP', 'DELCONSUMER', STREAM, GROUP, consumer) end\n"
    "  end\n"
    "  if forget == '1' then redis.call('HDEL', P .. 'workers', consumer) end\n"
    "  if n > 0 then redis.call('HINCRBY', METRICS, 'requeued:' .. reason, n) end\n"
    "  return reply('ok', tostring(n))\n"
    "\n"
    "elseif op == 'reap' then\n"
    "  local consumer, lease = ARGV[4], tonumber(ARGV[5])\n"
    "  local n, cursor = 0, '0-0'\n"
    "  for page = 1, 10 do\n"
    "    local res = redis.pcall('XAUTOCLAIM', STREAM, GROUP, consumer, lease, cursor, 'COUNT', 100, 'JUSTID')\n"
    "    if res.err then break end\n"
    "    for i = 1, #res[2] do\n"
    "      n = n + requeue(res[2][i], 'reclaim', 'went silent for more than ' .. lease .. ' ms')\n"
    "    end\n"
    "    cursor = res[1]\n"
    "    if cursor == '0-0' then break end\n"
    "  end\n"
    "  if n > 0 then redis.call('HINCRBY', METRICS, 'requeued:reclaim', n) end\n"
    "  local consumers = redis.pcall('XINFO', 'CONSUMERS', STREAM, GROUP)\n"
    "  if not consumers.err then\n"
    "    for i = 1, #consumers do\n"
    "      local c = consumers[i]\n"
    "      local info = {}\n"
    "      for j = 1, #c, 2 do info[c[j]] = c[j + 1] end\n"
    "      if info.pending == 0 and info.idle > 10 * lease then\n"
    "        redis.call('XGROUP', 'DELCONSUMER', STREAM, GROUP, info.name)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  local w = redis.call('HGETALL', P .. 'workers')\n"
    "  for i = 1, #w, 2 do\n"
    "    local ts = tonumber(string.match(w[i + 1], '^%a+ (%d+)'))\n"
    "    if not ts or now - ts > 3 * lease then redis.call('HDEL', P .. 'workers', w[i]) end\n"
    "  end\n"
    "  redis.call('ZREMRANGEBYSCORE', P .. 'jobs', '-inf', now - tonumber(ttl) * 1000)\n"
    "  return reply('ok', tostring(n))\n"
    "\n"
    "elseif op == 'promote' then\n"
    "  local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))\n"
    "  for i = 1, #due do\n"
    "    local id = due[i]\n"
    "    redis.call('ZREM', P .. 'delayed', id)\n"
    "    local rec = load(id)\n"
    "    if rec and rec.status == 'queued' then redis.call('XADD', STREAM, '*', 'job', id) end\n"
    "  end\n"
    "  local nxt = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')\n"
    "  local wait = -1\n"
    "  if nxt[2] then wait = math.max(0, tonumber(nxt[2]) - now) end\n"
    "  return reply('ok', tostring(#due), tostring(wait))\n"
    "\n"
    "elseif op == 'idle' then\n"
    "  redis.call('HSET', P .. 'workers', ARGV[4], 'idle ' .. now)\n"
    "  return reply('ok')\n"
    "\n"
    "elseif op == 'cancel' then\n"
    "  local id, who = ARGV[4], ARGV[5]\n"
    "  local rec, why = load(id)\n"
    "  if not rec then return reply('missing', why) end\n"
    "  if rec.status == 'queued' then\n"
    "    redis.call('ZREM', P .. 'delayed', id)\n"
    "    transition(rec, 'cancelled', now, ttl, 'cancelled by ' .. who, {'error', 'cancelled by ' .. who})\n"
    "    return reply('cancelled')\n"
    "  elseif rec.status == 'running' then\n"
    "    redis.call('HSET', P .. 'job:' .. id, 'cancel_requested', '1', 'updated_at_ms', now)\n"
    "    redis.call('PUBLISH', P .. 'cancel', id)\n"
    "    job_log(id, now, 'cancel requested by ' .. who)\n"
    "    return reply('requested', tostring(rec.worker or ''))\n"
    "  end\n"
    "  return reply('refused', tostring(rec.status or '?'))\n"
    "\n"
    "elseif op == 'retry' then\n"
    "  local id, who = ARGV[4], ARGV[5]\n"
    "  local rec, why = load(id)\n"
    "  if not rec then return reply('missing', why) end\n"
    "  if rec.status ~= 'failed' and rec.status ~= 'dead' and rec.status ~= 'cancelled' then\n"
    "    return reply('refused', tostring(rec.status or '?'))\n"
    "  end\n"
    "  redis.call('HDEL', P .. 'job:' .. id, 'finished_at_ms', 'retry_at_ms', 'cancel_requested', 'waiting_for', 'run',\n"
    "             'worker', 'entry', 'duration_ms')\n"
    "  transition(rec, 'queued', now, ttl, 'retried by ' .. who, {'attempts', 0})\n"
    "  redis.call('XADD', STREAM, '*', 'job', id)\n"
    "  return reply('queued')\n"
    "end\n"
    "return redis.error_reply('ERR patchbay: unknown queue operation ' .. tostring(op))\n";

/* The work script's SHA1, as Redis computed it (SCRIPT LOAD). Not computed
 * here: the first SHA1() of a process initialises OpenSSL 3's providers, 2 MB
 * of resident memory in a worker that otherwise never touches OpenSSL
 * (measured in tests/bench/bench_queue.py). Shared by a worker's threads. */
static pthread_mutex_t work_sha_mu = PTHREAD_MUTEX_INITIALIZER;
static char work_sha[41];

static int work_sha_load(redisContext *c, char out[41])
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", QUEUE_WORK_LUA);
    int ok = r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40;
    if (ok) {
        memcpy(out, r->str, 41);
        pthread_mutex_lock(&work_sha_mu);
        memcpy(work_sha, out, 41);
        pthread_mutex_unlock(&work_sha_mu);
    } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
        log_error(NULL, NULL, "Redis refused the work script: %.300s", r->str);
    }
    if (r)
        freeReplyObject(r);
    return ok;
}

void queue_policy_init(queue_policy_t *p, int64_t retention_s, int64_t lease_ms)
{
    memset(p, 0, sizeof(*p));
    p->retention_s = retention_s > 0 ? retention_s : 1;
    p->lease_ms = lease_ms;
    p->lock_wait_ms = QUEUE_LOCK_WAIT_MS;
}

void queue_policy_kind(queue_policy_t *p, job_kind_t kind, int max_attempts, int exclusive)
{
    size_t n = strlen(p->kinds);
    int w = snprintf(p->kinds + n, sizeof(p->kinds) - n, "%s%s:%d:%d", n ? " " : "", job_kind_name(kind),
                     max_attempts, exclusive ? 1 : 0);
    assert(w > 0 && (size_t)w < sizeof(p->kinds) - n);
}

static int redis_error(redisContext *c, const redisReply *r, char *err, size_t err_len)
{
    if (r == NULL)
        snprintf(err, err_len, "Redis: %s", c->err ? c->errstr : "no answer");
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, err_len, "Redis: %.300s", r->str);
    else
        snprintf(err, err_len, "Redis: unexpected answer");
    return QUEUE_ERR_REDIS;
}

/* The one C function that logs job transitions, whichever operation made them. */
static void log_moves(const redisReply *moves)
{
    if (moves == NULL || moves->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < moves->elements; i++) {
        const redisReply *m = moves->element[i];
        if (m->type != REDIS_REPLY_ARRAY || m->elements < 6)
            continue;
        int strings = 1;
        for (size_t k = 0; k < 6; k++)
            strings &= m->element[k]->type == REDIS_REPLY_STRING;
        if (!strings)
            continue;
        const char *id = m->element[0]->str, *from = m->element[1]->str, *to = m->element[2]->str;
        const char *why = m->element[3]->str, *delivery = m->element[4]->str, *kind = m->element[5]->str;
        int st = job_status_parse(to);
        log_level_t level = st == JOB_DEAD || st == JOB_FAILED ? LOG_WARN : LOG_INFO;
        const char *fields[] = {"kind", kind, "from", from, "to", to, NULL};
        log_emit(level, delivery[0] ? delivery : NULL, id, fields, "job %s: %s -> %s%s%s", id, from, to,
                 why[0] ? ": " : "", why);
    }
}

/*
 * Runs one operation of the work script (EVALSHA, EVAL after NOSCRIPT) with
 * the policy's common arguments, logs its moves, and hands back the reply
 * ({outcome, detail, extra, record, moves}; the caller frees it).
 */
static int work_op(redisContext *c, const queue_policy_t *p, const char *const *args, int nargs, redisReply **out,
                   char *err, size_t err_len)
{
    enum { MAX_ARGS = 40 };
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    char ttl[24], sha[41];
    assert(nargs + 6 <= MAX_ARGS);
    snprintf(ttl, sizeof(ttl), "%" PRId64, p->retention_s);
    *out = NULL;
    pthread_mutex_lock(&work_sha_mu);
    memcpy(sha, work_sha, sizeof(sha));
    pthread_mutex_unlock(&work_sha_mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        /* not loaded yet, or Redis restarted and forgot it (NOSCRIPT) */
        if ((sha[0] == '\0' || attempt == 1) && !work_sha_load(c, sha))
            break;
        int n = 0;
        argv[n++] = "EVALSHA";
        argv[n++] = sha;
        argv[n++] = "0";
        argv[n++] = args[0]; /* the operation */
        argv[n++] = ttl;
        argv[n++] = p->kinds;
        for (int i = 1; i < nargs; i++)
            argv[n++] = args[i];
        for (int i = 0; i < n; i++)
            argvlen[i] = strlen(argv[i]);
        redisReply *r = redisCommandArgv(c, n, argv, argvlen);
        if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && attempt == 0) {
            freeReplyObject(r);
            continue;
        }
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 5 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING) {
            int rc = redis_error(c, r, err, err_len);
            if (r != NULL && r->type == REDIS_REPLY_ERROR)
                log_error(NULL, NULL, "queue operation %s refused by Redis: %.300s", args[0], r->str);
            if (r)
                freeReplyObject(r);
            return rc;
        }
        log_moves(r->element[4]);
        *out = r;
        return QUEUE_OK;
    }
    if (c->err)
        snprintf(err, err_len, "Redis: %s", c->errstr);
    else
        snprintf(err, err_len, "Redis: the work script could not be loaded");
    return QUEUE_ERR_REDIS;
}

static const char *outcome_of(const redisReply *r)
{
    return r->element[0]->str;
}

static const char *detail_of(const redisReply *r)
{
    return r->element[1]->str;
}

int queue_group_create(redisContext *c, char *err, size_t err_len)
{
    redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", QUEUE_STREAM, QUEUE_GROUP);
    int rc = QUEUE_OK;
    if (r == NULL || (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0))
        rc = redis_error(c, r, err, err_len);
    if (r)
        freeReplyObject(r);
    /* versions before listing walked the ids kept an index of every job
     * ever made, never trimmed; nothing reads it now */
    if (rc == QUEUE_OK && (r = redisCommand(c, "UNLINK %s", QUEUE_LEGACY_INDEX)) != NULL)
        freeReplyObject(r);
    return rc;
}

/* Printable "field=value ..." of an entry, for the dead-letter stream. */
static void describe_fields(const redisReply *f, char *out, size_t len)
{
    strbuf_t b;
    strbuf_init_fixed(&b, out, len);
    strbuf_append(&b, "");
    for (size_t i = 0; f != NULL && f->type == REDIS_REPLY_ARRAY && i < f->elements; i++) {
        const redisReply *x = f->element[i];
        if (i > 0)
            strbuf_append(&b, i % 2 ? "=" : " ");
        if (x->type == REDIS_REPLY_STRING)
            strbuf_append_printable(&b, x->str, x->len > 60 ? 60 : x->len);
    }
    if (f == NULL || f->type != REDIS_REPLY_ARRAY || f->elements == 0)
        strbuf_append(&b, "no fields");
}

/* A job id as the enqueue script makes them: short, printable, no spaces. */
static int plausible_id(const char *s, size_t n)
{
    if (n == 0 || n > QUEUE_DELIVERY_MAX_BYTES)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '/')
            return 0;
    return 1;
}

int queue_read(redisContext *c, const char *consumer, int block_ms, queue_entry_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = redisCommand(c, "XREADGROUP GROUP %s %s COUNT 1 BLOCK %d STREAMS %s >", QUEUE_GROUP, consumer,
                                     block_ms, QUEUE_STREAM);
        if (r == NULL)
            return redis_error(c, r, err, err_len);
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            return 0;
        }
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0 && attempt == 0) {
            freeReplyObject(r);
            if (queue_group_create(c, err, err_len) != QUEUE_OK)
                return QUEUE_ERR_REDIS;
            continue;
        }
        /* [[stream, [[id, [field, value, ...]]]]] */
        const redisReply *entries = NULL, *e = NULL;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
            r->element[0]->elements == 2)
            entries = r->element[0]->element[1];
        if (entries != NULL && entries->type == REDIS_REPLY_ARRAY && entries->elements == 1)
            e = entries->element[0];
        if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= sizeof(out->entry)) {
            int rc = redis_error(c, r, err, err_len);
            freeReplyObject(r);
            return rc;
        }
        memcpy(out->entry, e->element[0]->str, e->element[0]->len);
        const redisReply *f = e->element[1];
        for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
            const redisReply *k = f->element[i], *v = f->element[i + 1];
            if (k->type == REDIS_REPLY_STRING && strcmp(k->str, "job") == 0 && v->type == REDIS_REPLY_STRING &&
                plausible_id(v->str, v->len)) {
                memcpy(out->job, v->str, v->len);
                out->job[v->len] = '\0';
            }
        }
        if (out->job[0] == '\0')
            describe_fields(f, out->fields, sizeof(out->fields));
        freeReplyObject(r);
        return 1;
    }
    snprintf(err, err_len, "Redis: the consumer group could not be created");
    return QUEUE_ERR_REDIS;
}

int queue_job_start(redisContext *c, const queue_policy_t *p, const queue_entry_t *e, const char *consumer,
                    queue_start_t *out, char *err, size_t err_len)
{
    char lease[24], wait[24];
    snprintf(lease, sizeof(lease), "%" PRId64, p->lease_ms);
    snprintf(wait, sizeof(wait), "%" PRId64, p->lock_wait_ms);
    const char *args[] = {"start", e->entry, e->job, consumer, lease, wait, e->fields};
    memset(out, 0, sizeof(*out));
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 7, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    const char *o = outcome_of(r);
    snprintf(out->detail, sizeof(out->detail), "%s", detail_of(r));
    if (strcmp(o, "run") == 0) {
        out->outcome = QUEUE_START_RUN;
        snprintf(out->run, sizeof(out->run), "%s", detail_of(r));
    } else if (strcmp(o, "skip") == 0) {
        out->outcome = QUEUE_START_SKIP;
    } else if (strcmp(o, "locked") == 0) {
        out->outcome = QUEUE_START_LOCKED;
    } else if (strcmp(o, "dead") == 0) {
        out->outcome = QUEUE_START_DEAD;
    } else if (strcmp(o, "malformed") == 0) {
        out->outcome = QUEUE_START_MALFORMED;
    } else {
        freeReplyObject(r);
        snprintf(err, err_len, "unexpected answer to start: %s", o);
        return QUEUE_ERR_REDIS;
    }
    if ((out->outcome == QUEUE_START_RUN || out->outcome == QUEUE_START_DEAD) &&
        (out->record = record_to_json(r->element[3])) == NULL) {
        freeReplyObject(r);
        snprintf(err, err_len, "out of memory");
        return QUEUE_ERR_REDIS;
    }
    freeReplyObject(r);
    return QUEUE_OK;
}

int queue_job_finish(redisContext *c, const queue_policy_t *p, const char *id, const char *run, const char *consumer,
                     queue_run_end_t end, const char *error, int64_t retry_delay_ms, job_status_t *status, char *err,
                     size_t err_len)
{
    static const char *const how[] = {"succeeded", "failed", "retry", "cancelled", "wait"};
    char delay[24];
    assert(end >= QUEUE_RUN_SUCCEEDED && end <= QUEUE_RUN_WAIT);
    snprintf(delay, sizeof(delay), "%" PRId64, retry_delay_ms > 0 ? retry_delay_ms : 1);
    const char *args[] = {"finish", id, run, consumer, how[end], error ? error : "", delay};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 7, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    const char *o = outcome_of(r);
    if (strcmp(o, "lost") == 0) {
        snprintf(err, err_len, "job %s is no longer this run's (now %s)", id, detail_of(r));
        rc = QUEUE_ERR_LOST;
    } else {
        int st = job_status_parse(strcmp(o, "already") == 0 ? detail_of(r) : o);
        if (st < 0) {
            snprintf(err, err_len, "unexpected answer to finish: %s", o);
            rc = QUEUE_ERR_REDIS;
        } else if (status != NULL) {
            *status = (job_status_t)st;
        }
    }
    freeReplyObject(r);
    return rc;
}

int queue_job_heartbeat(redisContext *c, const queue_policy_t *p, const char *id, const char *run,
                        const char *consumer, int *cancel, char *err, size_t err_len)
{
    char lease[24];
    snprintf(lease, sizeof(lease), "%" PRId64, p->lease_ms);
    const char *args[] = {"heartbeat", id, run, consumer, lease};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 5, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    if (strcmp(outcome_of(r), "lost") == 0) {
        snprintf(err, err_len, "job %s is no longer this run's (now %s)", id, detail_of(r));
        rc = QUEUE_ERR_LOST;
    } else if (cancel != NULL) {
        *cancel = strcmp(detail_of(r), "1") == 0;
    }
    freeReplyObject(r);
    return rc;
}

int queue_job_set_fields(redisContext *c, const char *id, const char *run, const char *const *fields, char *err,
                         size_t err_len)
{
    enum { MAX = 32 };
    const char *args[MAX];
    int n = 0;
    args[n++] = "setfields";
    args[n++] = id;
    args[n++] = run;
    for (size_t i = 0; fields[i] != NULL && fields[i + 1] != NULL; i += 2) {
        assert(n + 2 <= MAX);
        args[n++] = fields[i];
        args[n++] = fields[i + 1];
    }
    if (n == 3)
        return QUEUE_OK;
    queue_policy_t p;
    queue_policy_init(&p, 1, 0);
    redisReply *r = NULL;
    int rc = work_op(c, &p, args, n, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    if (strcmp(outcome_of(r), "lost") == 0) {
        snprintf(err, err_len, "job %s is no longer this run's (now %s)", id, detail_of(r));
        rc = QUEUE_ERR_LOST;
    }
    freeReplyObject(r);
    return rc;
}

int queue_handback(redisContext *c, const queue_policy_t *p, const char *consumer, queue_handback_t why,
                   const char *detail, int forget, size_t *count, char *err, size_t err_len)
{
    static const char *const reasons[] = {"shutdown", "reconnect", "crash"};
    assert(why >= QUEUE_HANDBACK_SHUTDOWN && why <= QUEUE_HANDBACK_CRASH);
    const char *args[] = {"handback", consumer, reasons[why], detail ? detail : "", forget ? "1" : "0"};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 5, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    if (count != NULL)
        *count = (size_t)strtoul(detail_of(r), NULL, 10);
    freeReplyObject(r);
    return QUEUE_OK;
}

int queue_reaper_lock(redisContext *c, const char *consumer, int64_t ttl_ms, char *err, size_t err_len)
{
    redisReply *r = redisCommand(c, "SET %s %s NX PX %lld", QUEUE_REAPER_LOCK, consumer, (long long)ttl_ms);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        int rc = redis_error(c, r, err, err_len);
        if (r)
            freeReplyObject(r);
        return rc;
    }
    int taken = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return taken;
}

int queue_reap(redisContext *c, const queue_policy_t *p, const char *consumer, size_t *reclaimed, char *err,
               size_t err_len)
{
    char lease[24];
    snprintf(lease, sizeof(lease), "%" PRId64, p->lease_ms);
    const char *args[] = {"reap", consumer, lease};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 3, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    if (reclaimed != NULL)
        *reclaimed = (size_t)strtoul(detail_of(r), NULL, 10);
    freeReplyObject(r);
    return QUEUE_OK;
}

int queue_promote(redisContext *c, const queue_policy_t *p, size_t max, size_t *moved, int64_t *next_due_ms,
                  char *err, size_t err_len)
{
    char n[24];
    snprintf(n, sizeof(n), "%zu", max);
    const char *args[] = {"promote", n};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 2, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    if (moved != NULL)
        *moved = (size_t)strtoul(detail_of(r), NULL, 10);
    if (next_due_ms != NULL)
        *next_due_ms = strtoll(r->element[2]->str, NULL, 10);
    freeReplyObject(r);
    return QUEUE_OK;
}

int queue_presence_idle(redisContext *c, const queue_policy_t *p, const char *consumer, char *err, size_t err_len)
{
    const char *args[] = {"idle", consumer};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 2, &r, err, err_len);
    if (r)
        freeReplyObject(r);
    return rc;
}

int queue_job_cancel(redisContext *c, const queue_policy_t *p, const char *id, const char *who,
                     queue_cancel_outcome_t *outcome, char *err, size_t err_len)
{
    const char *args[] = {"cancel", id, who};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 3, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    const char *o = outcome_of(r);
    if (strcmp(o, "cancelled") == 0) {
        *outcome = QUEUE_CANCEL_DONE;
    } else if (strcmp(o, "requested") == 0) {
        *outcome = QUEUE_CANCEL_REQUESTED;
    } else if (strcmp(o, "missing") == 0) {
        snprintf(err, err_len, "no job %s", id);
        rc = QUEUE_ERR_NOT_FOUND;
    } else {
        snprintf(err, err_len, "job %s is already %s", id, detail_of(r));
        rc = QUEUE_ERR_REFUSED;
    }
    freeReplyObject(r);
    return rc;
}

int queue_job_retry(redisContext *c, const queue_policy_t *p, const char *id, const char *who, char *err,
                    size_t err_len)
{
    const char *args[] = {"retry", id, who};
    redisReply *r = NULL;
    int rc = work_op(c, p, args, 3, &r, err, err_len);
    if (rc != QUEUE_OK)
        return rc;
    const char *o = outcome_of(r);
    if (strcmp(o, "missing") == 0) {
        snprintf(err, err_len, "no job %s", id);
        rc = QUEUE_ERR_NOT_FOUND;
    } else if (strcmp(o, "refused") == 0) {
        const char *st = detail_of(r);
        snprintf(err, err_len, "job %s is %s; only failed, dead or cancelled jobs can be retried", id, st);
        rc = QUEUE_ERR_REFUSED;
    }
    freeReplyObject(r);
    return rc;
}

int queue_job_log_append(redisContext *c, const char *id, const char *level, const char *msg, char *err,
                         size_t err_len)
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, clock_wall_ms());
    redisReply *r = redisCommand(c, "XADD %s%s MAXLEN ~ %d * ts %s level %s msg %s", QUEUE_LOG_PREFIX, id,
                                 QUEUE_LOG_MAX_LINES, ts, level, msg);
    int rc = QUEUE_OK;
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        rc = redis_error(c, r, err, err_len);
    if (r)
        freeReplyObject(r);
    return rc;
}

static json_t *log_entry_to_json(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    json_t *o = json_pack("{s:s}", "id", e->element[0]->str);
    const redisReply *f = e->element[1];
    for (size_t i = 0; o != NULL && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "ts") == 0)
            json_object_set_new(o, "ts", json_integer(strtoll(v->str, NULL, 10)));
        else
            json_object_set_new(o, k->str, json_stringn_nocheck(v->str, v->len));
    }
    return o;
}

int queue_job_log_read(redisContext *c, const char *id, const char *after, size_t count, int block_ms, json_t **out,
                       char *err, size_t err_len)
{
    *out = NULL;
    redisReply *r;
    if (block_ms > 0)
        r = redisCommand(c, "XREAD COUNT %lld BLOCK %d STREAMS %s%s %s", (long long)count, block_ms, QUEUE_LOG_PREFIX,
                         id, after);
    else
        r = redisCommand(c, "XREAD COUNT %lld STREAMS %s%s %s", (long long)count, QUEUE_LOG_PREFIX, id, after);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        int rc = redis_error(c, r, err, err_len);
        if (r)
            freeReplyObject(r);
        return rc;
    }
    json_t *arr = json_array();
    if (arr == NULL) {
        freeReplyObject(r);
        snprintf(err, err_len, "out of memory");
        return QUEUE_ERR_REDIS;
    }
    /* NIL: nothing new; else [[key, [entries]]] */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2) {
        const redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            json_t *line = log_entry_to_json(entries->element[i]);
            if (line != NULL)
                json_array_append_new(arr, line);
        }
    }
    freeReplyObject(r);
    *out = arr;
    return QUEUE_OK;
}
