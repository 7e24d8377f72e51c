/*
 * cmd_jobs — `patchbay jobs list|show`: reads job records straight from
 * Redis, so it works from any machine that can reach the queue.
 */
#include "cmd.h"
#include "queue.h"
#include "redisconn.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_LIST_DEFAULT_LIMIT 50
#define JOBS_REDIS_TIMEOUT_MS 3000

static int usage(void)
{
    fprintf(stderr, "usage: patchbay jobs list [--json] [--status S] [--limit N]\n"
                    "       patchbay jobs show ID [--json]\n");
    return CMD_USAGE;
}

/* The private Redis of `patchbay run` when REDIS_URL is not set. */
static redisContext *connect_queue(const config_t *cfg)
{
    char url[4200], err[REDISCONN_ERR_BYTES];
    if (cfg->redis.url != NULL)
        snprintf(url, sizeof(url), "%s", cfg->redis.url);
    else {
        char *abs = realpath(cfg->data_dir, NULL);
        snprintf(url, sizeof(url), "unix://%s/redis/redis.sock", abs ? abs : cfg->data_dir);
        free(abs);
    }
    redisconn_url_t u;
    if (redisconn_url_parse(&u, url, err, sizeof(err)) != 0) {
        fprintf(stderr, "patchbay: %s\n", err);
        return NULL;
    }
    redisContext *c = redisconn_connect(&u, JOBS_REDIS_TIMEOUT_MS, JOBS_REDIS_TIMEOUT_MS, err, sizeof(err));
    if (c == NULL)
        fprintf(stderr, "patchbay: %s%s\n", err,
                cfg->redis.url == NULL ? " (no REDIS_URL: is `patchbay run` running with this data dir?)" : "");
    redisconn_url_free(&u);
    return c;
}

static const char *str(json_t *job, const char *key)
{
    const char *s = json_string_value(json_object_get(job, key));
    return s ? s : "";
}

static void print_row(json_t *job)
{
    char where[300];
    snprintf(where, sizeof(where), "%s#%lld", str(job, "repo"), (long long)json_integer_value(json_object_get(job, "number")));
    printf("%-8s %-9s %-10s %-40s %-3lld %s\n", str(job, "id"), str(job, "kind"), str(job, "status"), where,
           (long long)json_integer_value(json_object_get(job, "attempts")), str(job, "created_at"));
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
        printf("%-8s %-9s %-10s %-40s %-3s %s\n", "ID", "KIND", "STATUS", "WHERE", "TRY", "CREATED");
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
    int rc = queue_job_get(c, id, 0, &job, err, sizeof(err));
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
            if (json_is_string(v))
                printf("%-16s %s\n", key, json_string_value(v));
            else {
                char *s = json_dumps(v, JSON_ENCODE_ANY);
                printf("%-16s %s\n", key, s ? s : "");
                free(s);
            }
        }
    }
    json_decref(job);
    return CMD_OK;
}

int cmd_jobs(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *verb = argv[1];
    int json = 0;
    const char *status = NULL;
    long limit = JOBS_LIST_DEFAULT_LIMIT;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"status", required_argument, NULL, 's'}, {"limit", required_argument, NULL, 'n'}, {0}};
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
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
    config_t *cfg = NULL;
    int rc;
    if (strcmp(verb, "list") == 0 && optind == argc) {
        if ((rc = cmd_load_config(&cfg, NULL)) != CMD_OK)
            return rc;
        rc = jobs_list(cfg, json, status, (size_t)limit);
    } else if (strcmp(verb, "show") == 0 && optind == argc - 1 && status == NULL) {
        if ((rc = cmd_load_config(&cfg, NULL)) != CMD_OK)
            return rc;
        rc = jobs_show(cfg, argv[optind], json);
    } else {
        return usage();
    }
    config_free(cfg);
    return rc;
}
