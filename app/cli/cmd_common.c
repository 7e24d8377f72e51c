/* cmd_common — what every subcommand does first: config and logging. */
#include "cmd.h"
#include "app/common/log.h"

#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int cmd_load_config(config_t **out, const char *path)
{
    config_errors_t errs = {0};
    *out = NULL;
    if (config_load(out, &errs, path, environ) != 0) {
        for (size_t i = 0; i < errs.count; i++) {
            char *line = config_error_format(&errs.items[i]);
            fprintf(stderr, "patchbay: %s\n", line ? line : errs.items[i].message);
            free(line);
        }
        config_errors_free(&errs);
        return CMD_USAGE;
    }
    config_errors_free(&errs);
    if (log_configure((*out)->log.level, (*out)->log.format) != 0) {
        /* config_load validated both; this only guards a mismatch between them */
        fprintf(stderr, "patchbay: invalid log level or format\n");
        config_free(*out);
        *out = NULL;
        return CMD_USAGE;
    }
    return CMD_OK;
}
