/*
 * cmd_work — `patchbay work [--concurrency N]`: the worker pool alone, for
 * adding workers on any machine that reaches the shared Redis (REDIS_URL, or
 * the private Redis of a `patchbay run` on the same data dir).
 *
 * The main thread is the pool's supervisor, as in cmd_run: every signal is
 * blocked and taken with sigtimedwait, so worker deaths (SIGCHLD), stop
 * requests and the pool's timers are handled in one place, in order.
 *
 * `patchbay work --worker NAME` is how the supervisor starts each worker
 * process (pool.h); NAME becomes its consumer name with its pid appended.
 */
#include "cmd.h"
#include "app/common/log.h"
#include "jobs/queue/redisproc.h"
#include "jobs/worker/pool.h"
#include "jobs/worker/supervise.h"
#include "jobs/worker/worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: patchbay work [--concurrency N]\n");
    return CMD_USAGE;
}

static int run_worker(const config_t *cfg, const char *name)
{
    char url[4200], consumer[256];
    redisproc_queue_url(url, sizeof(url), cfg->redis.url, cfg->data_dir);
    snprintf(consumer, sizeof(consumer), "%s:%d", name, (int)getpid());
    return worker_run(cfg, url, consumer);
}

int cmd_work(int argc, char **argv)
{
    static const struct option opts[] = {
        {"concurrency", required_argument, NULL, 'c'}, {"worker", required_argument, NULL, 'w'}, {0}};
    long concurrency = 0;
    const char *worker = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': {
            char *end;
            concurrency = strtol(optarg, &end, 10);
            if (*end != '\0' || concurrency < 1 || concurrency > POOL_MAX_WORKERS) {
                fprintf(stderr, "patchbay: --concurrency must be a number from 1 to %d\n", POOL_MAX_WORKERS);
                return CMD_USAGE;
            }
            break;
        }
        case 'w': worker = optarg; break;
        default: return usage();
        }
    }
    if (optind != argc)
        return usage();
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;
    if (worker != NULL) {
        rc = run_worker(cfg, worker);
        config_free(cfg);
        return rc;
    }

    /* a small supervisor, when it was built and installed next to this
     * binary, keeps the process that lives longest small (supervise.h) */
    char self[4096], small[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        snprintf(small, sizeof(small), "%s", self);
        char *slash = strrchr(small, '/');
        if (slash != NULL && (size_t)(slash - small) + sizeof("/" SUPERVISE_PROGRAM) < sizeof(small)) {
            strcpy(slash + 1, SUPERVISE_PROGRAM);
            char count[32];
            snprintf(count, sizeof(count), "%ld", concurrency);
            char *args[] = {SUPERVISE_PROGRAM, "--program", self, "--concurrency", count, NULL};
            if (concurrency <= 0)
                args[3] = NULL;
            if (access(small, X_OK) == 0) {
                execv(small, args);
                log_warn(NULL, NULL, "cannot run %s (%s); supervising in this process", small, strerror(errno));
            }
        }
    }
    rc = supervise_run(cfg, concurrency > 0 ? (int)concurrency : cfg->workers.concurrency, NULL) == 0 ? CMD_OK : CMD_FAIL;
    config_free(cfg);
    return rc;
}
