/*
 * cmd_run — `patchbay run` and `patchbay serve`: the long-running process.
 *
 * The main thread is the supervisor: it owns the private Redis (run, with no
 * REDIS_URL), starts the server threads and (run) the worker pool, then waits
 * for signals with sigtimedwait — every other thread has them blocked — so
 * shutdown happens in one place, in order: stop accepting, finish deliveries
 * in flight, stop the ingress thread; let the workers finish their jobs
 * within workers.grace_seconds (a second signal hands them back at once);
 * then Redis, last, because the workers write their results to it.
 * SIGCHLD tells it a worker died (the pool hands its job back and restarts
 * it) or the private Redis did (restarted; the spool holds deliveries
 * meanwhile).
 */
#include "cmd.h"
#include "app/common/log.h"
#include "app/server/reconcile.h"
#include "app/server/server.h"
#include "jobs/agent/agent_shell.h"
#include "jobs/queue/redisproc.h"
#include "jobs/worker/pool.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define RUN_IDLE_WAIT_MS 60000

/* Thousands of concurrent connections need thousands of descriptors; the
 * soft limit is often 1024 while the hard limit allows far more. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void restart_redis(redisproc_t *rp, const config_t *cfg, int status, int *failed)
{
    log_error(NULL, NULL, "private Redis exited (status %d); restarting it",
              WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    rp->pid = 0;
    redisproc_stop(rp);
    char err[512];
    if (redisproc_start(rp, cfg->data_dir, cfg->redis.server_path, cfg->redis.appendfsync, err, sizeof(err)) != 0) {
        log_error(NULL, NULL, "cannot restart the private Redis: %s", err);
        *failed = 1;
    }
}

static int supervise(server_t *server, redisproc_t *rp, pool_t *pool, const config_t *cfg, sigset_t *set)
{
    int stopping = 0, failed = 0;
    for (;;) {
        if (failed)
            return CMD_FAIL;
        if (stopping && (pool == NULL || pool_alive(pool) == 0))
            return CMD_OK;
        int64_t wait = pool != NULL ? pool_next_wakeup_ms(pool) : -1;
        if (wait < 0 || wait > RUN_IDLE_WAIT_MS)
            wait = RUN_IDLE_WAIT_MS;
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &ts);
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            log_error(NULL, NULL, "sigtimedwait: %s", strerror(errno));
            return CMD_FAIL;
        }
        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            log_info(NULL, NULL, "received %s; finishing deliveries in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            stopping = 1;
            if (pool != NULL)
                pool_stop(pool, 0);
            server_stop(server);
        } else if (sig == SIGTERM || sig == SIGINT) {
            if (pool != NULL)
                pool_stop(pool, 1);
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (rp->pid > 0 && pid == rp->pid)
                restart_redis(rp, cfg, status, &failed);
            else if (pool != NULL)
                pool_child_exited(pool, pid, status);
        }
        if (pool != NULL)
            pool_tick(pool);
    }
}

static int run_common(int argc, char **argv, int with_workers)
{
    if (argc > 1) {
        fprintf(stderr, "patchbay: %s takes no arguments (settings come from the environment and PATCHBAY_CONFIG)\n",
                argv[0]);
        return CMD_USAGE;
    }
    config_t *cfg = NULL;
    int rc = cmd_load_config(&cfg, NULL);
    if (rc != CMD_OK)
        return rc;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread we start */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    redisproc_t rp = {0};
    server_t *server = NULL;
    pool_t *pool = NULL;
    reconcile_t *reconcile = NULL;
    char err[SERVER_ERR_BYTES];
    rc = CMD_FAIL;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        log_error(NULL, NULL, "cannot create data dir %s: %s", cfg->data_dir, strerror(errno));
        goto done;
    }
    const char *redis_url = cfg->redis.url;
    if (redis_url == NULL) {
        if (redisproc_start(&rp, cfg->data_dir, cfg->redis.server_path, cfg->redis.appendfsync, err, sizeof(err)) != 0) {
            log_error(NULL, NULL, "cannot start the private Redis: %s", err);
            goto done;
        }
        redis_url = rp.url;
    }
    if ((server = server_new(cfg, redis_url, err, sizeof(err))) == NULL) {
        log_error(NULL, NULL, "%s", err);
        goto done;
    }
    if (with_workers) {
        /* the workers say it in their own log lines too; here it reaches the
         * status page and /readyz, where an operator looks */
        char why[512] = "";
        int off = strcmp(cfg->agent.isolation, "none") == 0;
        if (agent_probe(cfg, why, sizeof(why)) == 0)
            why[0] = '\0';
        server_set_sandbox(server, why, off);
    }
    if (server_start(server, err, sizeof(err)) != 0) {
        log_error(NULL, NULL, "%s", err);
        goto done;
    }
    if (with_workers) {
        if ((pool = pool_new(cfg, redis_url, cfg->workers.concurrency, err, sizeof(err))) == NULL) {
            log_error(NULL, NULL, "%s", err);
            goto done;
        }
        if (pool_start(pool, err, sizeof(err)) != 0) {
            log_error(NULL, NULL, "cannot start the workers: %s", err);
            goto done;
        }
    }
    reconcile = reconcile_start(cfg, redis_url);
    rc = supervise(server, &rp, pool, cfg, &set);
done:
    reconcile_stop(reconcile);
    if (server != NULL) {
        server_stop(server);
        server_free(server);
    }
    pool_free(pool); /* before Redis: hand-backs still need it */
    redisproc_stop(&rp);
    log_info(NULL, NULL, "stopped");
    config_free(cfg);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    return run_common(argc, argv, 1);
}

int cmd_serve(int argc, char **argv)
{
    return run_common(argc, argv, 0);
}
