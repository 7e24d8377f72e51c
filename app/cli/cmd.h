/*
 * cmd — patchbay's subcommands (DESIGN.md "Command line"). main() only picks
 * one; each returns the process exit status: 0 success, 2 bad usage or
 * config, 1 any other failure, and prints errors as one line that says what
 * and where.
 *
 * Main thread only; each command owns what it loads.
 */
#ifndef PATCHBAY_CMD_H
#define PATCHBAY_CMD_H

#include "app/common/config.h"

#include <stddef.h>

#define CMD_OK 0
#define CMD_FAIL 1
#define CMD_USAGE 2

/* `run` (server + workers + private Redis when no REDIS_URL) and `serve`
 * (server only). argv[0] is the subcommand. */
int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
/* `work [--concurrency N]`: the worker pool's supervisor and its workers. */
int cmd_work(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
/* check-config's GitHub half: GET /app with the credentials; prints the App's
 * slug and warns about events it is not subscribed to. */
int cmd_github_check(const config_t *cfg);

/* Loads the config (path NULL: PATCHBAY_CONFIG or ./patchbay.yml) and sets
 * up logging; on failure prints every problem to stderr and returns
 * CMD_USAGE. */
int cmd_load_config(config_t **out, const char *path);

#endif
