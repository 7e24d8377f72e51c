/* cmd_check — `patchbay check-config [FILE]`: every problem, one per line. */
#include "cmd.h"
#include "app/common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (rc == 0)
        config_check_credentials(cfg, &errs);
    for (size_t i = 0; i < errs.count; i++) {
        char *line = config_error_format(&errs.items[i]);
        printf("error: %s\n", line ? line : errs.items[i].message);
        free(line);
    }
    if (rc == 0 && errs.count == 0)
        printf("ok: %s is valid and the GitHub App credentials are set\n", cfg->path ? cfg->path : "the built-in defaults");
    else
        printf("%zu problem%s found\n", errs.count, errs.count == 1 ? "" : "s");
    int status = errs.count == 0 ? CMD_OK : CMD_USAGE;
    /* the credentials are all there: prove them to GitHub */
    if (status == CMD_OK && !offline) {
        log_configure("warn", cfg->log.format);
        status = cmd_github_check(cfg);
    }
    config_errors_free(&errs);
    config_free(cfg);
    return status;
}
