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
#include "log.h"
#include "pool.h"
#include "worker.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORK_IDLE_WAIT_MS 60000

static int usage(void)
{
    fprintf(stderr, "usage: patchbay work [--concurrency N]\n");
    return CMD_USAGE;
}

static int run_worker(const config_t *cfg, const char *name)
{
    char url[4200], consumer[256];
    cmd_queue_url(cfg, url, sizeof(url));
    snprintf(consumer, sizeof(consumer), "%s:%d", name, (int)getpid());
    return worker_run(cfg, url, consumer);
}

static int supervise(pool_t *pool, const sigset_t *set)
{
    while (!(pool_stopping(pool) && pool_alive(pool) == 0)) {
        int64_t wait = pool_next_wakeup_ms(pool);
        if (wait < 0 || wait > WORK_IDLE_WAIT_MS)
            wait = WORK_IDLE_WAIT_MS;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &ts);
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_error(NULL, NULL, "sigtimedwait: %s", strerror(errno));
            return CMD_FAIL;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log_info(NULL, NULL, "received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            pool_stop(pool, 0);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            pool_child_exited(pool, pid, status);
        pool_tick(pool);
    }
    return CMD_OK;
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

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char url[4200], err[512];
    int private_redis = cmd_queue_url(cfg, url, sizeof(url));
    pool_t *pool = pool_new(cfg, url, concurrency > 0 ? (int)concurrency : cfg->workers.concurrency, err, sizeof(err));
    rc = CMD_FAIL;
    if (pool == NULL) {
        log_error(NULL, NULL, "%s", err);
        goto done;
    }
    log_info(NULL, NULL, "starting %d workers on %s%s", concurrency > 0 ? (int)concurrency : cfg->workers.concurrency,
             private_redis ? "the private Redis of `patchbay run` in " : "REDIS_URL",
             private_redis ? cfg->data_dir : "");
    if (pool_start(pool, err, sizeof(err)) != 0) {
        log_error(NULL, NULL, "cannot start the workers: %s", err);
        pool_stop(pool, 1);
    }
    rc = supervise(pool, &set);
done:
    pool_free(pool);
    log_info(NULL, NULL, "stopped");
    config_free(cfg);
    return rc;
}
