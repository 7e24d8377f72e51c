/*
 * patchbay — a self-hosted GitHub App that turns "@patchbay fix this" into
 * background coding work. main() picks a subcommand; everything else lives
 * in the library (cmd_*.c and below), so tests can reach it.
 */
#include "app/cli/cmd.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *out, int status)
{
    fprintf(out, "usage: patchbay COMMAND [ARGS]\n"
                 "\n"
                 "  run                      webhook server and workers (starts a private Redis without REDIS_URL)\n"
                 "  serve                    webhook server only\n"
                 "  work [--concurrency N]   workers only (N processes; REDIS_URL, or the Redis of `run`)\n"
                 "  check-config [--offline] [FILE]\n"
                 "                           validate config and credentials (and, online, prove them to GitHub)\n"
                 "  replay FILE... [--event NAME] [--url URL]\n"
                 "                           sign payload files with WEBHOOK_SECRET and post them\n"
                 "  jobs list [--json] [--status S] [--limit N]\n"
                 "  jobs show ID [--json]\n"
                 "  jobs logs ID [--follow] [--json]\n"
                 "  jobs retry ID            queue a failed, dead or cancelled job again\n"
                 "  jobs cancel ID           cancel a queued job now, a running one within 2 s\n"
                 "  token [--installation ID [--repo OWNER/NAME]]\n"
                 "                           print the App's JWT or an installation token (to a terminal only)\n"
                 "  reconcile [--dry-run]    ask GitHub to redeliver failed deliveries patchbay never queued\n"
                 "\n"
                 "Settings come from the environment and PATCHBAY_CONFIG (see config/patchbay.yml).\n");
    return status;
}

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
} command_t;

static const command_t commands[] = {
    {"run", cmd_run},       {"serve", cmd_serve}, {"check-config", cmd_check_config},
    {"replay", cmd_replay}, {"jobs", cmd_jobs},       {"work", cmd_work},
    {"token", cmd_token},   {"reconcile", cmd_reconcile},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr, CMD_USAGE);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)
        return usage(stdout, CMD_OK);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "patchbay: unknown command %s\n", argv[1]);
    return usage(stderr, CMD_USAGE);
}
