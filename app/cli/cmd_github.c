/*
 * cmd_github — the commands that talk to GitHub as the App:
 *   patchbay token [--installation ID [--repo OWNER/NAME]]
 *   patchbay reconcile [--dry-run]
 * and the GitHub half of check-config (cmd_github_check).
 */
#include "cmd.h"
#include "app/common/clock.h"
#include "app/common/redisconn.h"
#include "app/github/ghapi.h"
#include "app/server/reconcile.h"
#include "jobs/queue/redisproc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The events patchbay acts on; an App not subscribed to one never sends it. */
static const char *const needed_events[] = {"issue_comment", "issues", "pull_request", "pull_request_review_comment",
                                            NULL};

static int make_client(ghapi_app_t **app, ghapi_t **gh, const config_t *cfg, const char *redis_url)
{
    ghapi_options_t o;
    char err[512];
    ghapi_options_from_config(&o, cfg, redis_url);
    if (ghapi_app_new(app, &o, err, sizeof(err)) != GHAPI_OK) {
        fprintf(stderr, "patchbay: %s\n", err);
        return CMD_USAGE;
    }
    if ((*gh = ghapi_new(*app)) == NULL) {
        fprintf(stderr, "patchbay: cannot make a GitHub client\n");
        ghapi_app_free(*app);
        return CMD_FAIL;
    }
    return CMD_OK;
}

int cmd_github_check(const config_t *cfg)
{
    ghapi_app_t *app = NULL;
    ghapi_t *gh = NULL;
    int rc = make_client(&app, &gh, cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    json_t *me = NULL;
    if (ghapi_app_get(&me, gh) != GHAPI_OK) {
        printf("error: GitHub refused the App's credentials (GET %s/app): %s\n", cfg->github.api_url, ghapi_error(gh));
        rc = CMD_USAGE;
    } else {
        const char *slug = json_string_value(json_object_get(me, "slug"));
        printf("GitHub App: %s (id %lld)\n", slug ? slug : "?", (long long)json_integer_value(json_object_get(me, "id")));
        json_t *events = json_object_get(me, "events");
        for (int i = 0; needed_events[i] != NULL; i++) {
            int found = 0;
            size_t k;
            json_t *e;
            json_array_foreach(events, k, e) found |= json_is_string(e) && strcmp(json_string_value(e), needed_events[i]) == 0;
            if (!found)
                printf("warning: the App is not subscribed to the %s event; patchbay never hears of those\n",
                       needed_events[i]);
        }
        if (slug != NULL && strcmp(slug, cfg->bot.handle) != 0)
            printf("warning: people mention @%s (PATCHBAY_HANDLE) but the App's slug is %s\n", cfg->bot.handle, slug);
    }
    json_decref(me);
    ghapi_free(gh);
    ghapi_app_free(app);
    return rc;
}

int cmd_token(int argc, char **argv)
{
    static const struct option opts[] = {
        {"installation", required_argument, NULL, 'i'}, {"repo", required_argument, NULL, 'r'}, {0}};
    long long installation = 0;
    const char *repo = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'i':
            installation = strtoll(optarg, &end, 10);
            if (*end != '\0' || installation <= 0) {
                fprintf(stderr, "patchbay: --installation takes a number\n");
                return CMD_USAGE;
            }
            break;
        case 'r': repo = optarg; break;
        default: goto usage;
        }
    }
    if (optind != argc || (repo != NULL && installation == 0))
        goto usage;
    /* a credential printed into a pipe or a file outlives the terminal
     * session it was meant for; debugging needs it on screen only */
    if (!isatty(STDOUT_FILENO)) {
        fprintf(stderr, "patchbay: token prints a credential only to a terminal\n");
        return CMD_USAGE;
    }
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    /* The JWT is signed here from the key alone. An installation token is
     * shared through Redis when there is one (REDIS_URL, or the private Redis
     * of a running `patchbay run`), and minted for this call alone when there
     * is none: debugging a fresh machine needs neither Redis nor a data dir. */
    char url[4200];
    const char *share = NULL;
    struct stat st;
    if (installation && (!redisproc_queue_url(url, sizeof(url), cfg->redis.url, cfg->data_dir) ||
                         (stat(url + strlen("unix://"), &st) == 0 && S_ISSOCK(st.st_mode))))
        share = url;
    ghapi_app_t *app = NULL;
    ghapi_t *gh = NULL;
    if ((rc = make_client(&app, &gh, cfg, share)) == CMD_OK) {
        char *tok = NULL;
        int64_t exp = 0;
        int grc = installation ? ghapi_installation_token(&tok, &exp, gh, installation, repo) : ghapi_app_jwt(&tok, gh);
        if (grc == GHAPI_OK) {
            printf("%s\n", tok);
            if (installation) {
                char when[CLOCK_ISO_BYTES];
                clock_format_iso(exp * 1000, when);
                fprintf(stderr, "expires %s\n", when);
            }
        } else {
            fprintf(stderr, "patchbay: %s\n", ghapi_error(gh));
            rc = CMD_FAIL;
        }
        if (tok != NULL) {
            memset(tok, 0, strlen(tok));
            free(tok);
        }
        ghapi_free(gh);
        ghapi_app_free(app);
    }
    config_free(cfg);
    return rc;
usage:
    fprintf(stderr, "usage: patchbay token [--installation ID [--repo OWNER/NAME]]\n");
    return CMD_USAGE;
}

int cmd_reconcile(int argc, char **argv)
{
    int dry = 0;
    if (argc == 2 && strcmp(argv[1], "--dry-run") == 0)
        dry = 1;
    else if (argc != 1) {
        fprintf(stderr, "usage: patchbay reconcile [--dry-run]\n");
        return CMD_USAGE;
    }
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    char url[4200], err[512];
    redisproc_queue_url(url, sizeof(url), cfg->redis.url, cfg->data_dir);
    redisconn_url_t u;
    redisContext *c = NULL;
    ghapi_app_t *app = NULL;
    ghapi_t *gh = NULL;
    if (redisconn_url_parse(&u, url, err, sizeof(err)) != 0) {
        fprintf(stderr, "patchbay: %s\n", err);
        config_free(cfg);
        return CMD_USAGE;
    }
    if ((c = redisconn_connect(&u, 3000, 30000, err, sizeof(err))) == NULL) {
        fprintf(stderr, "patchbay: %s\n", err);
        rc = CMD_FAIL;
    } else if ((rc = make_client(&app, &gh, cfg, url)) == CMD_OK) {
        reconcile_report_t rep;
        if (reconcile_run(&rep, gh, c, clock_wall_ms() / 1000, dry, err, sizeof(err)) != GHAPI_OK) {
            fprintf(stderr, "patchbay: %s\n", err);
            rc = CMD_FAIL;
        } else {
            printf("%d deliveries in the last 3 days: %d answered, %d failed but queued, %d asked for before, "
                   "%d %s, %d refused by GitHub\n",
                   rep.seen, rep.ok, rep.queued, rep.asked_before, rep.redelivered,
                   dry ? "would be redelivered" : "redelivered now", rep.failed_to_ask);
            rc = rep.failed_to_ask > 0 ? CMD_FAIL : CMD_OK;
        }
        ghapi_free(gh);
        ghapi_app_free(app);
    }
    if (c != NULL)
        redisFree(c);
    redisconn_url_free(&u);
    config_free(cfg);
    return rc;
}
