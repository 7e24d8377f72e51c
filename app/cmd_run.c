/*
 * cmd_run — `patchbay run` and `patchbay serve`: the long-running process.
 *
 * The main thread is the supervisor: it owns the private Redis (run, with no
 * REDIS_URL), starts the server threads, then waits for signals with
 * sigwaitinfo — every other thread has them blocked — so shutdown happens in
 * one place, in order: stop accepting, finish deliveries in flight, stop the
 * ingress thread, then Redis.
 */
#include "cmd.h"
#include "log.h"
#include "redisproc.h"
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

static int supervise(server_t *server, redisproc_t *rp, const config_t *cfg, sigset_t *set)
{
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(set, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            log_error(NULL, NULL, "sigwaitinfo: %s", strerror(errno));
            return CMD_FAIL;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            log_info(NULL, NULL, "received %s; finishing deliveries in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return CMD_OK;
        }
        if (sig == SIGCHLD && rp->pid > 0) {
            int status;
            if (waitpid(rp->pid, &status, WNOHANG) != rp->pid)
                continue;
            /* the spool holds deliveries meanwhile; the drain moves them in */
            log_error(NULL, NULL, "private Redis exited (status %d); restarting it",
                      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            rp->pid = 0;
            redisproc_stop(rp);
            char err[512];
            if (redisproc_start(rp, cfg->data_dir, cfg->redis.server_path, cfg->redis.appendfsync, err, sizeof(err)) !=
                0) {
                log_error(NULL, NULL, "cannot restart the private Redis: %s", err);
                return CMD_FAIL;
            }
        }
        (void)server;
    }
}

static int run_common(int argc, char **argv, int with_workers)
{
    (void)with_workers; /* the worker pool arrives with the queue */
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
    if (server_start(server, err, sizeof(err)) != 0) {
        log_error(NULL, NULL, "%s", err);
        goto done;
    }
    rc = supervise(server, &rp, cfg, &set);
done:
    if (server != NULL) {
        server_stop(server);
        server_free(server);
    }
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
