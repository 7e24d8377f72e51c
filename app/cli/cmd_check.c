/* cmd_check — `patchbay check-config [FILE]`: every problem, one per line. */
#include "cmd.h"
#include "app/common/log.h"
#include "jobs/agent/agent_shell.h"
#include "jobs/image/imagestore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern char **environ;

int cmd_check_config(int argc, char **argv)
{
    int offline = 0;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--offline") == 0)
            offline = 1;
        else if (file == NULL && argv[i][0] != '-')
            file = argv[i];
        else {
            fprintf(stderr, "usage: patchbay check-config [--offline] [FILE]\n");
            return CMD_USAGE;
        }
    }
    config_t *cfg = NULL;
    config_errors_t errs = {0};
    int rc = config_load(&cfg, &errs, file, environ);
    int credentials = rc == 0 ? config_check_credentials(cfg, &errs) : 0;
    for (size_t i = 0; i < errs.count; i++) {
        char *line = config_error_format(&errs.items[i]);
        printf("error: %s\n", line ? line : errs.items[i].message);
        free(line);
    }
    if (rc == 0 && errs.count == 0)
        printf("ok: %s is valid and the GitHub App credentials are set\n", cfg->path ? cfg->path : "the built-in defaults");
    else
        printf("%zu problem%s found\n", errs.count, errs.count == 1 ? "" : "s");
    if (credentials > 0)
        printf("hint: `patchbay run` registers the GitHub App from its page at / in two clicks, with the "
               "set-up code it prints at start, and saves what it gets\n");
    int status = errs.count == 0 ? CMD_OK : CMD_USAGE;
    /* the environments, and whether each image is here yet (fetched on first use) */
    for (size_t i = 0; rc == 0 && i < cfg->environments.count; i++) {
        const config_environment_t *e = &cfg->environments.items[i];
        char digest[80];
        if (image_status(cfg->data_dir, e->image, digest, sizeof(digest)))
            printf("environment %s: %s, ready (%s)%s\n", e->name, e->image, digest,
                   cfg->default_environment && strcmp(cfg->default_environment, e->name) == 0 ? ", the default" : "");
        else
            printf("environment %s: %s, not fetched yet (the first job that uses it fetches it)%s\n", e->name,
                   e->image,
                   cfg->default_environment && strcmp(cfg->default_environment, e->name) == 0 ? ", the default" : "");
    }
    /* the machine's part: what every job that runs code will meet */
    if (rc == 0) {
        char why[512];
        if (strcmp(cfg->agent.isolation, "none") == 0) {
            printf("warning: agent.isolation is none: agents and repositories' setup and test commands run WITHOUT a "
                   "sandbox, beside patchbay's secrets\n");
        } else if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
            printf("error: cannot create the data dir %s to try the sandbox: %s\n", cfg->data_dir, strerror(errno));
            status = status == CMD_OK ? CMD_FAIL : status;
        } else if (agent_probe(cfg, why, sizeof(why)) != 0) {
            printf("error: the sandbox cannot start here, so every job that runs code would fail: %s\n", why);
            status = status == CMD_OK ? CMD_FAIL : status;
        } else {
            printf("ok: the sandbox works (bubblewrap; network %s)\n", cfg->agent.network ? "on" : "off");
        }
    }
    /* the credentials are all there: prove them to GitHub */
    if (status == CMD_OK && !offline) {
        log_configure("warn", cfg->log.format);
        status = cmd_github_check(cfg);
    }
    config_errors_free(&errs);
    config_free(cfg);
    return status;
}
