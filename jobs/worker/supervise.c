/* supervise — see supervise.h. */
#include "supervise.h"
#include "pool.h"
#include "app/common/log.h"
#include "jobs/queue/redisproc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define WORK_IDLE_WAIT_MS 60000

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
            return -1;
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
    return 0;
}

int supervise_run(const config_t *cfg, int concurrency, const char *program)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    char url[4200], err[512];
    int private_redis = redisproc_queue_url(url, sizeof(url), cfg->redis.url, cfg->data_dir);
    pool_t *pool = pool_new(cfg, url, concurrency, err, sizeof(err));
    int rc = -1;
    if (pool == NULL) {
        log_error(NULL, NULL, "%s", err);
        goto done;
    }
    if (program != NULL && pool_set_program(pool, program) != 0) {
        log_error(NULL, NULL, "the worker program's path is too long");
        goto done;
    }
    log_info(NULL, NULL, "starting %d workers on %s%s", concurrency,
             private_redis ? "the private Redis of `patchbay run` in " : "REDIS_URL", private_redis ? cfg->data_dir : "");
    if (pool_start(pool, err, sizeof(err)) != 0) {
        log_error(NULL, NULL, "cannot start the workers: %s", err);
        pool_stop(pool, 1);
    }
    rc = supervise(pool, &set);
done:
    pool_free(pool);
    log_info(NULL, NULL, "stopped");
    return rc;
}
