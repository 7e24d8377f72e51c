/*
 * queue — see queue.h. The enqueue script is the contract between every
 * process that makes jobs; keep it small, and keep every key it touches
 * listed in queue.h.
 */
#include "queue.h"
#include "clock.h"

#include <assert.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * KEYS: 1 seq, 2 stream, 3 index, then one delivery key per delivery
 * ARGV: 1 count, 2 ttl_s, then per delivery:
 *       now_ms, kind, target ("repo#number" or ""), sender, nrec, then nrec
 *       record field/value arguments (everything but the id, built in C)
 * Returns one {1, id} (a new job) or {0, id} (seen before) per delivery.
 *
 * The record arrives ready for HSET and goes in with unpack(), because Lua
 * table work per field cost more than the Redis commands themselves
 * (measured: ~38 us of a ~58 us job with a loop over the fields).
 *
 * "stop" cancels the queued jobs at once and asks running ones to stop
 * (cancel_requested + PUBLISH), so a stop is not stuck behind the jobs it
 * stops. A new job of a kind supersedes a still-queued job of the same kind on
 * the same issue: the newer instruction wins and no worker time is wasted.
 */
const char QUEUE_ENQUEUE_LUA[] =
    "local out = {}\n"
    "local a = 3\n"
    "for d = 1, tonumber(ARGV[1]) do\n"
    "  local now, kind, target, sender = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]\n"
    "  local first = a + 5\n"
    "  local last = first + tonumber(ARGV[a + 4]) - 1\n"
    "  a = last + 1\n"
    "  local id = redis.call('GET', KEYS[3 + d])\n"
    "  if id then\n"
    "    out[d] = {0, id}\n"
    "  else\n"
    "    id = tostring(redis.call('INCR', KEYS[1]))\n"
    "    local jk = 'patchbay:job:' .. id\n"
    "    redis.call('HSET', jk, 'id', id, unpack(ARGV, first, last))\n"
    "    redis.call('SET', KEYS[3 + d], id, 'EX', ARGV[2])\n"
    "    redis.call('ZADD', KEYS[3], now, id)\n"
    "    if target ~= '' then\n"
    "      local ak = 'patchbay:active:' .. target\n"
    "      if kind == 'stop' then\n"
    "        local active = redis.call('HGETALL', ak)\n"
    "        local stopped = {}\n"
    "        for i = 1, #active, 2 do\n"
    "          local other = 'patchbay:job:' .. active[i + 1]\n"
    "          local st = redis.call('HGET', other, 'status')\n"
    "          if st == 'queued' then\n"
    "            redis.call('HSET', other, 'status', 'cancelled', 'updated_at_ms', now, 'finished_at_ms', now,\n"
    "                       'error', 'stopped by ' .. sender .. ' (job ' .. id .. ')')\n"
    "            stopped[#stopped + 1] = active[i + 1]\n"
    "          elseif st == 'running' then\n"
    "            redis.call('HSET', other, 'cancel_requested', '1', 'updated_at_ms', now)\n"
    "            redis.call('PUBLISH', 'patchbay:cancel', active[i + 1])\n"
    "            stopped[#stopped + 1] = active[i + 1]\n"
    "          end\n"
    "        end\n"
    "        redis.call('HSET', jk, 'stops', table.concat(stopped, ','))\n"
    "      elseif kind == 'fix' or kind == 'followup' or kind == 'review' then\n"
    "        local prev = redis.call('HGET', ak, kind)\n"
    "        if prev and redis.call('HGET', 'patchbay:job:' .. prev, 'status') == 'queued' then\n"
    "          redis.call('HSET', 'patchbay:job:' .. prev, 'status', 'cancelled', 'updated_at_ms', now,\n"
    "                     'finished_at_ms', now, 'error', 'superseded by job ' .. id)\n"
    "          redis.call('HSET', jk, 'supersedes', prev)\n"
    "        end\n"
    "        redis.call('HSET', ak, kind, id)\n"
    "      end\n"
    "    end\n"
    "    redis.call('XADD', KEYS[2], '*', 'job', id)\n"
    "    out[d] = {1, id}\n"
    "  end\n"
    "end\n"
    "return out\n";

void queue_enqueue_sha(char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)QUEUE_ENQUEUE_LUA, strlen(QUEUE_ENQUEUE_LUA), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* What each delivery needs besides its argv slots: its keys, its numbers. */
typedef struct {
    char key[sizeof(QUEUE_DELIVERY_PREFIX) + QUEUE_DELIVERY_MAX_BYTES];
    char payload_key[sizeof(QUEUE_PAYLOAD_PREFIX) + QUEUE_DELIVERY_MAX_BYTES];
    char now_ms[24];
    char created_at[CLOCK_ISO_BYTES];
    char target[320];
    char nrec[8];
    char payload_bytes[24];
} delivery_scratch_t;

typedef struct {
    char count[8];
    char ttl_s[24];
    char nkeys[8];
} batch_scratch_t;

/* Fixed arguments per delivery in the script call: 5 header values, then the
 * record's 16 fixed ones (8 pairs); the job fields come on top. */
#define SCRIPT_ARGS_PER_DELIVERY (5 + 16)
#define RECORD_FIXED_ARGS 16

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

int queue_enqueue_cmd(queue_enqueue_cmd_t *cmd, const char *sha, const queue_delivery_t *const *ds, size_t n,
                      int64_t retention_s)
{
    assert(n >= 1 && n <= QUEUE_BATCH_MAX);
    /* MULTI (1) + SETs (6 each) + script + EXEC (1) */
    size_t script_args = 8;
    for (size_t i = 0; i < n; i++)
        script_args += 1 + SCRIPT_ARGS_PER_DELIVERY + 2 * ds[i]->fields->count;
    size_t total_args = 1 + 6 * n + script_args + 1;
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
    snprintf(b->nkeys, sizeof(b->nkeys), "%zu", 3 + n);

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
        assert(strlen(d->delivery) <= QUEUE_DELIVERY_MAX_BYTES);
        snprintf(per[i].key, sizeof(per[i].key), "%s%s", QUEUE_DELIVERY_PREFIX, d->delivery);
        snprintf(per[i].payload_key, sizeof(per[i].payload_key), "%s%s", QUEUE_PAYLOAD_PREFIX, d->delivery);
        /* NX: a redelivery leaves the first copy, which its job already names */
        push_str(&a, "SET");
        push_str(&a, per[i].payload_key);
        push(&a, d->payload, d->payload_len);
        push_str(&a, "NX");
        push_str(&a, "EX");
        push_str(&a, b->ttl_s);
        END_COMMAND();
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
    push_str(&a, QUEUE_INDEX);
    for (size_t i = 0; i < n; i++)
        push_str(&a, per[i].key);
    push_str(&a, b->count);
    push_str(&a, b->ttl_s);
    for (size_t i = 0; i < n; i++) {
        const queue_delivery_t *d = ds[i];
        const char *kind = job_fields_get(d->fields, JOB_F_KIND), *sender = job_fields_get(d->fields, JOB_F_SENDER);
        const char *repo = job_fields_get(d->fields, JOB_F_REPO), *number = job_fields_get(d->fields, JOB_F_NUMBER);
        snprintf(per[i].now_ms, sizeof(per[i].now_ms), "%" PRId64, d->received_ms);
        clock_format_iso(d->received_ms, per[i].created_at);
        per[i].target[0] = '\0';
        if (repo != NULL && number != NULL)
            snprintf(per[i].target, sizeof(per[i].target), "%.255s#%.20s", repo, number);
        snprintf(per[i].nrec, sizeof(per[i].nrec), "%zu", RECORD_FIXED_ARGS + 2 * d->fields->count);
        push_str(&a, per[i].now_ms);
        push_str(&a, kind ? kind : "");
        push_str(&a, per[i].target);
        push_str(&a, sender ? sender : "a user");
        push_str(&a, per[i].nrec);
        /* the record, ready for HSET */
        push_str(&a, "status");
        push_str(&a, "queued");
        push_str(&a, "attempts");
        push_str(&a, "0");
        push_str(&a, "delivery");
        push_str(&a, d->delivery);
        push_str(&a, "created_at_ms");
        push_str(&a, per[i].now_ms);
        push_str(&a, "created_at");
        push_str(&a, per[i].created_at);
        push_str(&a, "updated_at_ms");
        push_str(&a, per[i].now_ms);
        push_str(&a, "payload_key");
        push_str(&a, per[i].payload_key);
        snprintf(per[i].payload_bytes, sizeof(per[i].payload_bytes), "%zu", d->payload_len);
        push_str(&a, "payload_bytes");
        push_str(&a, per[i].payload_bytes);
        for (size_t k = 0; k < d->fields->count; k++) {
            push_str(&a, d->fields->items[k].name);
            push_str(&a, d->fields->items[k].value);
        }
    }
    END_COMMAND();
    push_str(&a, "EXEC");
    END_COMMAND();
#undef END_COMMAND
    assert((size_t)a.argc <= total_args);
    return 0;
}

void queue_enqueue_cmd_free(queue_enqueue_cmd_t *cmd)
{
    free(cmd->mem);
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n + 1)
        goto unexpected;
    const redisReply *script = r->element[n];
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
        for (size_t i = 0; i < cmd.ncmds; i++)
            redisAppendCommandArgv(c, cmd.argc[i], cmd.argv[i], cmd.argvlen[i]);
        queue_enqueue_cmd_free(&cmd);
        redisReply *last = NULL;
        rc = QUEUE_OK;
        for (size_t i = 0; i < 4 && rc == QUEUE_OK; i++) { /* MULTI, SET, script, EXEC */
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

/* Fields printed as numbers in JSON; everything else stays a string. */
static int is_numeric_field(const char *name)
{
    static const char *const numeric[] = {"number", "attempts", "installation", "comment_id", "line", "created_at_ms",
                                          "updated_at_ms", "started_at_ms", "finished_at_ms", "payload_bytes", NULL};
    for (int i = 0; numeric[i]; i++)
        if (strcmp(numeric[i], name) == 0)
            return 1;
    return 0;
}

static json_t *record_to_json(const redisReply *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *jv = NULL;
        char *end;
        long long n = strtoll(v->str, &end, 10);
        if (is_numeric_field(k->str) && v->len > 0 && *end == '\0')
            jv = json_integer(n);
        else if (strcmp(k->str, "is_pr") == 0 || strcmp(k->str, "auto") == 0 || strcmp(k->str, "draft") == 0)
            jv = json_boolean(strcmp(v->str, "1") == 0);
        else
            jv = json_stringn_nocheck(v->str, v->len);
        json_object_set_new(o, k->str, jv);
    }
    return o;
}

int queue_job_get(redisContext *c, const char *id, int with_payload, json_t **out, char *err, size_t err_len)
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
    const char *key = rc == QUEUE_OK ? json_string_value(json_object_get(*out, "payload_key")) : NULL;
    if (with_payload && key != NULL) {
        redisReply *p = redisCommand(c, "GET %s", key);
        if (p == NULL) {
            snprintf(err, err_len, "Redis: %s", c->errstr);
            json_decref(*out);
            *out = NULL;
            return QUEUE_ERR_REDIS;
        }
        /* null once the retention period is over */
        json_object_set_new(*out, "payload", p->type == REDIS_REPLY_STRING ? json_stringn(p->str, p->len) : json_null());
        freeReplyObject(p);
    }
    return rc;
}

/* Newest first; ids whose record has expired are skipped. Reads ids in pages
 * so a status filter over a long history still returns `limit` jobs. */
int queue_job_list(redisContext *c, const char *status, size_t limit, json_t **out, char *err, size_t err_len)
{
    enum { PAGE = 200 };
    json_t *arr = json_array();
    if (arr == NULL) {
        snprintf(err, err_len, "out of memory");
        return QUEUE_ERR_REDIS;
    }
    for (long long start = 0; json_array_size(arr) < limit; start += PAGE) {
        redisReply *ids = redisCommand(c, "ZREVRANGE %s %lld %lld", QUEUE_INDEX, start, start + PAGE - 1);
        if (ids == NULL || ids->type != REDIS_REPLY_ARRAY) {
            snprintf(err, err_len, "Redis: %s", ids == NULL ? c->errstr : ids->type == REDIS_REPLY_ERROR ? ids->str : "unexpected answer");
            if (ids)
                freeReplyObject(ids);
            json_decref(arr);
            return QUEUE_ERR_REDIS;
        }
        size_t n = ids->elements;
        for (size_t i = 0; i < n; i++)
            redisAppendCommand(c, "HGETALL %s%s", QUEUE_JOB_PREFIX, ids->element[i]->str);
        int failed = 0;
        for (size_t i = 0; i < n; i++) {
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
        freeReplyObject(ids);
        if (failed) {
            snprintf(err, err_len, "Redis: %s", c->errstr);
            json_decref(arr);
            return QUEUE_ERR_REDIS;
        }
        if (n < PAGE)
            break;
    }
    *out = arr;
    return QUEUE_OK;
}
