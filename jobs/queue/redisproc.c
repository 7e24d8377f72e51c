/* redisproc — see redisproc.h. */
#include "redisproc.h"
#include "app/common/clock.h"
#include "app/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int ping(const char *socket_path)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectUnixWithTimeout(socket_path, tv);
    int ok = 0;
    if (c != NULL && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static int write_conf(const char *path, const redisproc_t *rp, const char *appendfsync, char *err, size_t err_len)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    /* Written by patchbay at every start; edits here are overwritten. */
    fprintf(f,
            "# patchbay's private Redis; rewritten at every start of patchbay run\n"
            "port 0\n"
            "unixsocket %s\n"
            "unixsocketperm 700\n"
            "dir %s\n"
            "daemonize no\n"
            "logfile %s/redis.log\n"
            "pidfile %s/redis.pid\n"
            "appendonly yes\n"
            "appendfilename patchbay.aof\n"
            "appendfsync %s\n"
            "save \"\"\n"
            /* the AOF is mostly webhook payloads; under a burst, rewriting it
             * at Redis's default 64 MB (LZF-compressing each time) took a
             * second core away from serving (measured in tests/bench) */
            "auto-aof-rewrite-min-size 256mb\n"
            "rdbcompression no\n"
            "maxmemory-policy noeviction\n",
            rp->socket_path, rp->dir, rp->dir, rp->dir, appendfsync);
    if (fclose(f) != 0) {
        snprintf(err, err_len, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int redisproc_queue_url(char *out, size_t out_len, const char *redis_url, const char *data_dir)
{
    if (redis_url != NULL) {
        snprintf(out, out_len, "%s", redis_url);
        return 0;
    }
    /* the same path redisproc_start makes */
    char *abs = realpath(data_dir, NULL);
    snprintf(out, out_len, "unix://%s/redis/redis.sock", abs ? abs : data_dir);
    free(abs);
    return 1;
}

int redisproc_start(redisproc_t *rp, const char *data_dir, const char *server_path, const char *appendfsync, char *err,
                    size_t err_len)
{
    char conf[4096];
    memset(rp, 0, sizeof(*rp));
    char *abs_data = realpath(data_dir, NULL);
    if (abs_data == NULL) {
        snprintf(err, err_len, "data dir %s: %s", data_dir, strerror(errno));
        return -1;
    }
    int rc = asprintf(&rp->dir, "%s/redis", abs_data);
    free(abs_data);
    if (rc < 0 || asprintf(&rp->socket_path, "%s/redis.sock", rp->dir) < 0 ||
        asprintf(&rp->url, "unix://%s", rp->socket_path) < 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    /* sun_path holds 108 bytes */
    if (strlen(rp->socket_path) >= 100) {
        snprintf(err, err_len, "the data dir path is too long for a unix socket (%s); use a shorter PATCHBAY_DATA_DIR",
                 rp->socket_path);
        goto fail;
    }
    if (mkdir(rp->dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", rp->dir, strerror(errno));
        goto fail;
    }
    if (ping(rp->socket_path)) {
        snprintf(err, err_len,
                 "another patchbay already runs a Redis in %s; stop it, or share one Redis with REDIS_URL=%s", rp->dir,
                 rp->url);
        goto fail;
    }
    unlink(rp->socket_path); /* stale, from a patchbay that died */
    snprintf(conf, sizeof(conf), "%s/redis.conf", rp->dir);
    if (write_conf(conf, rp, appendfsync, err, err_len) != 0)
        goto fail;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, err_len, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        /* patchbay blocks and ignores signals for its own threads; exec keeps
         * both, and a Redis that cannot see SIGTERM cannot shut down cleanly */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        setpgid(0, 0); /* a Ctrl-C meant for patchbay reaches Redis through us, in order */
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        execlp(server_path, server_path, conf, (char *)NULL);
        fprintf(stderr, "patchbay: cannot run %s: %s\n", server_path, strerror(errno));
        _exit(127);
    }
    rp->pid = pid;
    int64_t deadline = clock_mono_ms() + REDISPROC_START_TIMEOUT_MS;
    while (!ping(rp->socket_path)) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            rp->pid = 0;
            snprintf(err, err_len, "%s exited at start (status %d); see %s/redis.log", server_path,
                     WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), rp->dir);
            goto fail;
        }
        if (clock_mono_ms() > deadline) {
            snprintf(err, err_len, "%s did not answer within %d ms; see %s/redis.log", server_path,
                     REDISPROC_START_TIMEOUT_MS, rp->dir);
            goto fail;
        }
        usleep(20000);
    }
    log_info(NULL, NULL, "private Redis started (pid %d) on %s", (int)pid, rp->socket_path);
    return 0;
fail:
    redisproc_stop(rp);
    return -1;
}

void redisproc_stop(redisproc_t *rp)
{
    if (rp->pid > 0) {
        kill(rp->pid, SIGTERM);
        int64_t deadline = clock_mono_ms() + REDISPROC_STOP_TIMEOUT_MS;
        int status;
        while (waitpid(rp->pid, &status, WNOHANG) == 0) {
            if (clock_mono_ms() > deadline) {
                log_warn(NULL, NULL, "private Redis did not stop in time; killing it");
                kill(rp->pid, SIGKILL);
                waitpid(rp->pid, &status, 0);
                break;
            }
            usleep(20000);
        }
        log_info(NULL, NULL, "private Redis stopped");
    }
    free(rp->dir);
    free(rp->socket_path);
    free(rp->url);
    memset(rp, 0, sizeof(*rp));
}
