/*
 * patchbay-supervisor — the worker pool's supervisor as a small executable
 * of its own (supervise.h): `patchbay work` becomes it with exec when it is
 * installed next to the patchbay binary, so the one process that stays up
 * as long as the pool links only the C library, libyaml, jansson, hiredis
 * and libcrypto, not the HTTP, git and agent code the workers need.
 *
 *   patchbay-supervisor --program /path/to/patchbay [--concurrency N]
 *
 * Configuration and environment are patchbay's own (PATCHBAY_CONFIG,
 * REDIS_URL, ...), read the same way.
 */
#include "app/cli/cmd.h"
#include "jobs/worker/pool.h"
#include "jobs/worker/supervise.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"program", required_argument, NULL, 'p'}, {"concurrency", required_argument, NULL, 'c'}, {0}};
    const char *program = NULL;
    long concurrency = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': program = optarg; break;
        case 'c': {
            char *end;
            concurrency = strtol(optarg, &end, 10);
            if (*end != '\0' || concurrency < 1 || concurrency > POOL_MAX_WORKERS) {
                fprintf(stderr, "patchbay-supervisor: --concurrency must be a number from 1 to %d\n",
                        POOL_MAX_WORKERS);
                return CMD_USAGE;
            }
            break;
        }
        default: goto usage;
        }
    }
    if (program == NULL || optind != argc)
        goto usage;
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    rc = supervise_run(cfg, concurrency > 0 ? (int)concurrency : cfg->workers.concurrency, program) == 0 ? CMD_OK
                                                                                                      : CMD_FAIL;
    config_free(cfg);
    return rc;
usage:
    fprintf(stderr, "usage: patchbay-supervisor --program PATCHBAY [--concurrency N] (started by `patchbay work`)\n");
    return CMD_USAGE;
}
