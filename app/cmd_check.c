/* cmd_check — `patchbay check-config [FILE]`: every problem, one per line. */
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int cmd_check_config(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: patchbay check-config [FILE]\n");
        return CMD_USAGE;
    }
    config_t *cfg = NULL;
    config_errors_t errs = {0};
    int rc = config_load(&cfg, &errs, argc == 2 ? argv[1] : NULL, environ);
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
    config_errors_free(&errs);
    config_free(cfg);
    return status;
}
