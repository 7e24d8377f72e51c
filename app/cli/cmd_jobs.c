/*
 * cmd_jobs — `patchbay jobs list|show|logs|retry|cancel`: reads and changes
 * jobs straight in Redis (through the queue's own operations), so it works
 * from any machine that can reach the queue.
 */
#include "cmd.h"
#include "app/common/clock.h"
#include "app/common/redisconn.h"
#include "app/common/strbuf.h"
#include "jobs/queue/queue.h"
#include "jobs/queue/redisproc.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBS_LIST_DEFAULT_LIMIT 50
#define JOBS_REDIS_TIMEOUT_MS 3000
#define JOBS_LOG_PAGE 500
#define JOBS_FOLLOW_BLOCK_MS 1000

static int usage(void)
{
    fprintf(stderr, "usage: patchbay jobs list [--json] [--status S] [--limit N]\n"
                    "       patchbay jobs show ID [--json]\n"
                    "       patchbay jobs logs ID [--follow] [--json]\n"
                    "       patchbay jobs retry ID\n"
                    "       patchbay jobs cancel ID\n");
    return CMD_USAGE;
}

/* REDIS_URL, or the private Redis of `patchbay run` when it is not set. */
static redisContext *connect_queue(const config_t *cfg)
{
    char url[4200], err[REDISCONN_ERR_BYTES];
    int private_redis = redisproc_queue_url(url, sizeof(url), cfg->redis.url, cfg->data_dir);
    redisconn_url_t u;
    if (redisconn_url_parse(&u, url, err, sizeof(err)) != 0) {
        fprintf(stderr, "patchbay: %s\n", err);
        return NULL;
    }
    /* --follow blocks up to JOBS_FOLLOW_BLOCK_MS: the socket waits longer */
    redisContext *c = redisconn_connect(&u, JOBS_REDIS_TIMEOUT_MS, JOBS_REDIS_TIMEOUT_MS + JOBS_FOLLOW_BLOCK_MS, err,
                                        sizeof(err));
    if (c == NULL)
        fprintf(stderr, "patchbay: %s%s\n", err,
                private_redis ? " (no REDIS_URL: is `patchbay run` running with this data dir?)" : "");
    redisconn_url_free(&u);
    return c;
}

static const char *str(json_t *job, const char *key)
{
    const char *s = json_string_value(json_object_get(job, key));
    return s ? s : "";
}

/* Every string of a job record may have come from GitHub (a title, an
 * instruction, a login, a branch) and every log line may quote one: they are
 * shown with their control characters escaped, never passed to the terminal
 * to obey. At most max bytes of the text (cut on a character), padded to
 * width. */
static void put(const char *s, size_t n, size_t max, int width)
{
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    strbuf_t b = STRBUF_INIT;
    strbuf_append_printable(&b, s, n);
    printf("%-*s", width, b.data ? b.data : "");
    strbuf_free(&b);
}

static void put_field(json_t *job, const char *key, size_t max, int width)
{
    json_t *v = json_object_get(job, key);
    put(json_is_string(v) ? json_string_value(v) : "", json_is_string(v) ? json_string_length(v) : 0, max, width);
}

#define JOBS_TITLE_MAX_BYTES 60

static void print_row(json_t *job)
{
    char where[300] = "-";
    if (str(job, "repo")[0] != '\0')
        snprintf(where, sizeof(where), "%s#%lld", str(job, "repo"),
                 (long long)json_integer_value(json_object_get(job, "number")));
    put_field(job, "id", 64, 8);
    printf(" ");
    put_field(job, "kind", 64, 9);
    printf(" ");
    put_field(job, "status", 64, 10);
    printf(" ");
    put(where, strlen(where), sizeof(where), 40);
    printf(" %-3lld ", (long long)json_integer_value(json_object_get(job, "attempts")));
    put_field(job, "created_at", 64, 24);
    printf(" ");
    put_field(job, "title", JOBS_TITLE_MAX_BYTES, 0);
    printf("\n");
}

static int jobs_list(const config_t *cfg, int json, const char *status, size_t limit)
{
    redisContext *c = connect_queue(cfg);
    if (c == NULL)
        return CMD_FAIL;
    json_t *jobs = NULL;
    char err[256];
    int rc = queue_job_list(c, status, limit, &jobs, err, sizeof(err));
    redisFree(c);
    if (rc != QUEUE_OK) {
        fprintf(stderr, "patchbay: %s\n", err);
        return CMD_FAIL;
    }
    if (json) {
        char *s = json_dumps(jobs, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
    } else {
        printf("%-8s %-9s %-10s %-40s %-3s %-24s %s\n", "ID", "KIND", "STATUS", "WHERE", "TRY", "CREATED", "TITLE");
        size_t i;
        json_t *job;
        json_array_foreach(jobs, i, job) print_row(job);
    }
    json_decref(jobs);
    return CMD_OK;
}

static int jobs_show(const config_t *cfg, const char *id, int json)
{
    redisContext *c = connect_queue(cfg);
    if (c == NULL)
        return CMD_FAIL;
    json_t *job = NULL;
    char err[256];
    int rc = queue_job_get(c, id, &job, err, sizeof(err));
    redisFree(c);
    if (rc != QUEUE_OK) {
        fprintf(stderr, "patchbay: %s\n", err);
        return CMD_FAIL;
    }
    if (json) {
        char *s = json_dumps(job, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(job, key, v)
        {
            put(key, strlen(key), 256, 16);
            printf(" ");
            if (json_is_string(v)) {
                put(json_string_value(v), json_string_length(v), SIZE_MAX, 0);
            } else {
                char *s = json_dumps(v, JSON_ENCODE_ANY);
                put(s ? s : "", s ? strlen(s) : 0, SIZE_MAX, 0);
                free(s);
            }
            printf("\n");
        }
    }
    json_decref(job);
    return CMD_OK;
}

/* Prints log lines; returns how many, and the last stream id in last. */
static size_t print_lines(json_t *lines, int json, char *last, size_t last_len)
{
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        if (json) {
            char *s = json_dumps(line, JSON_COMPACT);
            printf("%s\n", s ? s : "{}");
            free(s);
        } else {
            char when[CLOCK_ISO_BYTES];
            clock_format_iso((int64_t)json_integer_value(json_object_get(line, "ts")), when);
            printf("%s ", when);
            put_field(line, "level", 16, 5);
            printf(" ");
            put_field(line, "msg", SIZE_MAX, 0);
            printf("\n");
        }
        snprintf(last, last_len, "%s", str(line, "id"));
    }
    fflush(stdout);
    return json_array_size(lines);
}

static int job_status(redisContext *c, const char *id, char *status, size_t len)
{
    redisReply *r = redisCommand(c, "HGET %s%s status", QUEUE_JOB_PREFIX, id);
    if (r == NULL)
        return -1;
    int found = r->type == REDIS_REPLY_STRING;
    snprintf(status, len, "%s", found ? r->str : "");
    freeReplyObject(r);
    return found;
}

static int jobs_logs(const config_t *cfg, const char *id, int follow, int json)
{
    redisContext *c = connect_queue(cfg);
    if (c == NULL)
        return CMD_FAIL;
    char last[64] = "0", status[32], err[256];
    int rc = CMD_OK;
    if (job_status(c, id, status, sizeof(status)) != 1) {
        fprintf(stderr, "patchbay: %s\n", c->err ? c->errstr : "no such job");
        redisFree(c);
        return CMD_FAIL;
    }
    for (;;) {
        json_t *lines = NULL;
        /* what is there now, page by page; then, following, wait for more */
        int block = follow && strcmp(last, "0") != 0 ? JOBS_FOLLOW_BLOCK_MS : 0;
        if (queue_job_log_read(c, id, last, JOBS_LOG_PAGE, block, &lines, err, sizeof(err)) != QUEUE_OK) {
            fprintf(stderr, "patchbay: %s\n", err);
            rc = CMD_FAIL;
            break;
        }
        size_t n = print_lines(lines, json, last, sizeof(last));
        json_decref(lines);
        if (n == JOBS_LOG_PAGE)
            continue;
        if (!follow)
            break;
        if (strcmp(last, "0") == 0)
            snprintf(last, sizeof(last), "0-1"); /* nothing yet: block from the start */
        if (n > 0)
            continue;
        /* nothing new within the block: done once the job is */
        int found = job_status(c, id, status, sizeof(status));
        if (found < 0) {
            fprintf(stderr, "patchbay: Redis: %s\n", c->errstr);
            rc = CMD_FAIL;
            break;
        }
        int st = job_status_parse(status);
        if (found == 0 || (st >= 0 && job_status_is_final((job_status_t)st)))
            break;
    }
    redisFree(c);
    return rc;
}

static void who_am_i(char *out, size_t len)
{
    const char *user = getenv("USER");
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(out, len, "`patchbay jobs` (%s@%s)", user ? user : "someone", host);
}

static int jobs_change(const config_t *cfg, const char *verb, const char *id)
{
    redisContext *c = connect_queue(cfg);
    if (c == NULL)
        return CMD_FAIL;
    queue_policy_t p;
    queue_policy_init(&p, (int64_t)cfg->workers.retention_days * 86400, (int64_t)cfg->workers.lease_seconds * 1000);
    char who[160], err[512];
    who_am_i(who, sizeof(who));
    int rc;
    if (strcmp(verb, "cancel") == 0) {
        queue_cancel_outcome_t how;
        rc = queue_job_cancel(c, &p, id, who, &how, err, sizeof(err));
        if (rc == QUEUE_OK && how == QUEUE_CANCEL_DONE)
            printf("job %s cancelled\n", id);
        else if (rc == QUEUE_OK)
            printf("job %s is running; asked its worker to stop it (within 2 s)\n", id);
    } else {
        rc = queue_job_retry(c, &p, id, who, err, sizeof(err));
        if (rc == QUEUE_OK)
            printf("job %s queued again\n", id);
    }
    redisFree(c);
    if (rc != QUEUE_OK) {
        fprintf(stderr, "patchbay: %s\n", err);
        return CMD_FAIL;
    }
    return CMD_OK;
}

int cmd_jobs(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *verb = argv[1];
    int json = 0, follow = 0;
    const char *status = NULL;
    long limit = JOBS_LIST_DEFAULT_LIMIT;
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"status", required_argument, NULL, 's'},
                                         {"limit", required_argument, NULL, 'n'},
                                         {"follow", no_argument, NULL, 'f'},
                                         {0}};
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 'f': follow = 1; break;
        case 's':
            if (job_status_parse(optarg) < 0) {
                fprintf(stderr, "patchbay: unknown status %s (queued, running, succeeded, failed, cancelled, dead)\n",
                        optarg);
                return CMD_USAGE;
            }
            status = optarg;
            break;
        case 'n': {
            char *end;
            limit = strtol(optarg, &end, 10);
            if (*end != '\0' || limit < 1 || limit > 100000) {
                fprintf(stderr, "patchbay: --limit must be a number from 1 to 100000\n");
                return CMD_USAGE;
            }
            break;
        }
        default: return usage();
        }
    }
    int list = strcmp(verb, "list") == 0, one_id = optind == argc - 1 && status == NULL;
    int logs = strcmp(verb, "logs") == 0, change = strcmp(verb, "retry") == 0 || strcmp(verb, "cancel") == 0;
    if (!(list && optind == argc && !follow) && !(strcmp(verb, "show") == 0 && one_id && !follow) &&
        !(logs && one_id) && !(change && one_id && !follow && !json))
        return usage();
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    if (list)
        rc = jobs_list(cfg, json, status, (size_t)limit);
    else if (logs)
        rc = jobs_logs(cfg, argv[optind], follow, json);
    else if (change)
        rc = jobs_change(cfg, verb, argv[optind]);
    else
        rc = jobs_show(cfg, argv[optind], json);
    config_free(cfg);
    return rc;
}
