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
 * KEYS: 1 delivery key, 2 seq, 3 stream, 4 index
 * ARGV: 1 delivery, 2 now_ms, 3 created_at, 4 ttl_s, 5 payload, 6.. name/value pairs
 * Returns {1, id} for a new job, {0, id} when the delivery was seen before.
 *
 * "stop" cancels the queued jobs at once and asks running ones to stop
 * (cancel_requested + PUBLISH), so a stop is not stuck behind the jobs it
 * stops. A new job of a kind supersedes a still-queued job of the same kind on
 * the same issue: the newer instruction wins and no worker time is wasted.
 */
const char QUEUE_ENQUEUE_LUA[] =
    "local id = redis.call('GET', KEYS[1])\n"
    "if id then return {0, id} end\n"
    "id = tostring(redis.call('INCR', KEYS[2]))\n"
    "local jk = 'patchbay:job:' .. id\n"
    "local rec = {'id', id, 'status', 'queued', 'attempts', '0', 'delivery', ARGV[1],\n"
    "             'created_at_ms', ARGV[2], 'created_at', ARGV[3], 'updated_at_ms', ARGV[2], 'payload', ARGV[5]}\n"
    "local f = {}\n"
    "for i = 6, #ARGV - 1, 2 do rec[#rec + 1] = ARGV[i]; rec[#rec + 1] = ARGV[i + 1]; f[ARGV[i]] = ARGV[i + 1] end\n"
    "redis.call('HSET', jk, unpack(rec))\n"
    "redis.call('SET', KEYS[1], id, 'EX', ARGV[4])\n"
    "redis.call('ZADD', KEYS[4], ARGV[2], id)\n"
    "if f.repo and f.number then\n"
    "  local ak = 'patchbay:active:' .. f.repo .. '#' .. f.number\n"
    "  if f.kind == 'stop' then\n"
    "    local active = redis.call('HGETALL', ak)\n"
    "    local stopped = {}\n"
    "    for i = 1, #active, 2 do\n"
    "      local other = 'patchbay:job:' .. active[i + 1]\n"
    "      local st = redis.call('HGET', other, 'status')\n"
    "      if st == 'queued' then\n"
    "        redis.call('HSET', other, 'status', 'cancelled', 'updated_at_ms', ARGV[2], 'finished_at_ms', ARGV[2],\n"
    "                   'error', 'stopped by ' .. (f.sender or 'a user') .. ' (job ' .. id .. ')')\n"
    "        stopped[#stopped + 1] = active[i + 1]\n"
    "      elseif st == 'running' then\n"
    "        redis.call('HSET', other, 'cancel_requested', '1', 'updated_at_ms', ARGV[2])\n"
    "        redis.call('PUBLISH', 'patchbay:cancel', active[i + 1])\n"
    "        stopped[#stopped + 1] = active[i + 1]\n"
    "      end\n"
    "    end\n"
    "    redis.call('HSET', jk, 'stops', table.concat(stopped, ','))\n"
    "  elseif f.kind == 'fix' or f.kind == 'followup' or f.kind == 'review' then\n"
    "    local prev = redis.call('HGET', ak, f.kind)\n"
    "    if prev and redis.call('HGET', 'patchbay:job:' .. prev, 'status') == 'queued' then\n"
    "      redis.call('HSET', 'patchbay:job:' .. prev, 'status', 'cancelled', 'updated_at_ms', ARGV[2],\n"
    "                 'finished_at_ms', ARGV[2], 'error', 'superseded by job ' .. id)\n"
    "      redis.call('HSET', jk, 'supersedes', prev)\n"
    "    end\n"
    "    redis.call('HSET', ak, f.kind, id)\n"
    "  end\n"
    "end\n"
    "redis.call('XADD', KEYS[3], '*', 'job', id)\n"
    "return {1, id}\n";

void queue_enqueue_sha(char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)QUEUE_ENQUEUE_LUA, strlen(QUEUE_ENQUEUE_LUA), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void push(queue_enqueue_cmd_t *cmd, const char *s, size_t n)
{
    assert(cmd->argc < QUEUE_ENQUEUE_MAX_ARGS);
    cmd->argv[cmd->argc] = s;
    cmd->argvlen[cmd->argc] = n;
    cmd->argc++;
}

static void push_str(queue_enqueue_cmd_t *cmd, const char *s)
{
    push(cmd, s, strlen(s));
}

void queue_enqueue_cmd(queue_enqueue_cmd_t *cmd, const char *sha, const queue_delivery_t *d, int64_t retention_s)
{
    cmd->argc = 0;
    assert(strlen(d->delivery) <= QUEUE_DELIVERY_MAX_BYTES);
    snprintf(cmd->key_delivery, sizeof(cmd->key_delivery), "%s%s", QUEUE_DELIVERY_PREFIX, d->delivery);
    snprintf(cmd->now_ms, sizeof(cmd->now_ms), "%" PRId64, d->received_ms);
    clock_format_iso(d->received_ms, cmd->created_at);
    snprintf(cmd->ttl_s, sizeof(cmd->ttl_s), "%" PRId64, retention_s);

    if (sha != NULL) {
        push_str(cmd, "EVALSHA");
        push(cmd, sha, 40);
    } else {
        push_str(cmd, "EVAL");
        push_str(cmd, QUEUE_ENQUEUE_LUA);
    }
    push_str(cmd, "4");
    push_str(cmd, cmd->key_delivery);
    push_str(cmd, QUEUE_SEQ);
    push_str(cmd, QUEUE_STREAM);
    push_str(cmd, QUEUE_INDEX);
    push_str(cmd, d->delivery);
    push_str(cmd, cmd->now_ms);
    push_str(cmd, cmd->created_at);
    push_str(cmd, cmd->ttl_s);
    push(cmd, d->payload, d->payload_len);
    for (size_t i = 0; i < d->fields->count; i++) {
        push_str(cmd, d->fields->items[i].name);
        push_str(cmd, d->fields->items[i].value);
    }
}

int queue_enqueue_parse(const redisReply *r, int *created, char id[32], char *err, size_t err_len)
{
    if (r == NULL) {
        if (err_len)
            snprintf(err, err_len, "no answer from Redis (connection lost)");
        return QUEUE_ERR_REDIS;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (strncmp(r->str, "NOSCRIPT", 8) == 0)
            return QUEUE_ERR_NOSCRIPT;
        if (err_len)
            snprintf(err, err_len, "Redis: %.200s", r->str);
        return QUEUE_ERR_REDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        (r->element[1]->type != REDIS_REPLY_STRING && r->element[1]->type != REDIS_REPLY_INTEGER)) {
        if (err_len)
            snprintf(err, err_len, "unexpected answer to the enqueue script");
        return QUEUE_ERR_REDIS;
    }
    *created = r->element[0]->integer == 1;
    if (r->element[1]->type == REDIS_REPLY_INTEGER)
        snprintf(id, 32, "%lld", r->element[1]->integer);
    else
        snprintf(id, 32, "%.*s", (int)r->element[1]->len, r->element[1]->str);
    return QUEUE_OK;
}

int queue_enqueue_blocking(redisContext *c, const queue_delivery_t *d, int64_t retention_s, int *created, char id[32],
                           char *err, size_t err_len)
{
    char sha[41];
    queue_enqueue_sha(sha);
    queue_enqueue_cmd_t cmd;
    int rc = QUEUE_ERR_NOSCRIPT;
    for (int attempt = 0; attempt < 2 && rc == QUEUE_ERR_NOSCRIPT; attempt++) {
        queue_enqueue_cmd(&cmd, attempt == 0 ? sha : NULL, d, retention_s);
        redisReply *r = redisCommandArgv(c, cmd.argc, cmd.argv, cmd.argvlen);
        if (r == NULL && err_len)
            snprintf(err, err_len, "Redis: %s", c->errstr);
        rc = r == NULL ? QUEUE_ERR_REDIS : queue_enqueue_parse(r, created, id, err, err_len);
        if (r)
            freeReplyObject(r);
    }
    return rc;
}

/* ---- reading jobs back (CLI, dashboard) ---- */

/* Fields printed as numbers in JSON; everything else stays a string. */
static int is_numeric_field(const char *name)
{
    static const char *const numeric[] = {"number", "attempts", "installation", "comment_id", "line", "created_at_ms",
                                          "updated_at_ms", "started_at_ms", "finished_at_ms", NULL};
    for (int i = 0; numeric[i]; i++)
        if (strcmp(numeric[i], name) == 0)
            return 1;
    return 0;
}

static json_t *record_to_json(const redisReply *r, int with_payload)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (!with_payload && strcmp(k->str, "payload") == 0)
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
    } else if ((*out = record_to_json(r, with_payload)) == NULL) {
        snprintf(err, err_len, "out of memory");
        rc = QUEUE_ERR_REDIS;
    }
    freeReplyObject(r);
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
                json_t *job = record_to_json(r, 0);
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
