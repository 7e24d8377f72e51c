/* pool — see pool.h. */
#include "pool.h"
#include "worker.h"
#include "app/common/clock.h"
#include "app/common/log.h"
#include "app/common/redisconn.h"
#include "jobs/kinds/kindpolicy.h"
#include "jobs/queue/queue.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define POOL_REDIS_TIMEOUT_MS 2000
#define POOL_HANDBACK_RETRY_MS 1000
#define POOL_NAME_BYTES 160

enum { STAGE_RUNNING = 0, STAGE_DRAINING, STAGE_ABORTING, STAGE_KILLING };

typedef struct {
    int index;
    pid_t pid;          /* 0: not running */
    int64_t started_at; /* mono ms */
    int restart;        /* a restart is due at restart_at */
    int64_t restart_at;
    int crashes;        /* deaths in a row right after starting */
    char name[POOL_NAME_BYTES];     /* what the worker is told: prefix/index */
    char consumer[POOL_NAME_BYTES + 16]; /* name:pid, its name in the consumer group */
} slot_t;

typedef struct {
    char consumer[POOL_NAME_BYTES + 16];
    queue_handback_t why;
    char detail[96];
} pending_t;

struct pool_s {
    const config_t *cfg;
    char program[4096]; /* what workers run: this binary, or the patchbay a small supervisor was given */
    redisconn_url_t url;
    char **envp;
    char prefix[128];
    int n;
    slot_t *slots;
    int stage;
    int64_t grace_end, kill_at;
    redisContext *redis; /* for hand-backs; connected when needed */
    queue_policy_t policy;
    pending_t *pending; /* hand-backs Redis did not take yet */
    size_t npending, cap_pending;
    int64_t next_retry;
};

/* ---- hand-backs ---- */

static redisContext *pool_redis(pool_t *p)
{
    if (p->redis != NULL && !p->redis->err)
        return p->redis;
    if (p->redis != NULL)
        redisFree(p->redis);
    char err[REDISCONN_ERR_BYTES];
    p->redis = redisconn_connect(&p->url, POOL_REDIS_TIMEOUT_MS, POOL_REDIS_TIMEOUT_MS, err, sizeof(err));
    return p->redis;
}

/* Returns how many entries went back, or -1 when Redis did not answer. */
static long handback(pool_t *p, const char *consumer, queue_handback_t why, const char *detail)
{
    char err[512];
    size_t n = 0;
    redisContext *c = pool_redis(p);
    if (c == NULL || queue_handback(c, &p->policy, consumer, why, detail, 1, &n, err, sizeof(err)) != QUEUE_OK)
        return -1;
    return (long)n;
}

static void remember(pool_t *p, const char *consumer, queue_handback_t why, const char *detail)
{
    if (p->npending == p->cap_pending) {
        size_t cap = p->cap_pending ? 2 * p->cap_pending : 8;
        pending_t *np = realloc(p->pending, cap * sizeof(*np));
        if (np == NULL)
            return; /* the reaper will find the entries after the lease */
        p->pending = np;
        p->cap_pending = cap;
    }
    pending_t *x = &p->pending[p->npending++];
    snprintf(x->consumer, sizeof(x->consumer), "%s", consumer);
    snprintf(x->detail, sizeof(x->detail), "%s", detail);
    x->why = why;
}

static void retry_pending(pool_t *p)
{
    size_t kept = 0;
    for (size_t i = 0; i < p->npending; i++) {
        long n = handback(p, p->pending[i].consumer, p->pending[i].why, p->pending[i].detail);
        if (n < 0)
            p->pending[kept++] = p->pending[i];
        else if (n > 0)
            log_info(NULL, NULL, "handed %ld jobs of %s back to the queue", n, p->pending[i].consumer);
    }
    p->npending = kept;
    p->next_retry = clock_mono_ms() + POOL_HANDBACK_RETRY_MS;
}

/* ---- workers ---- */

static int spawn(pool_t *p, slot_t *s, char *err, size_t err_len)
{
    char *argv[] = {"patchbay", "work", "--worker", s->name, NULL};
    sigset_t child_mask;
    sigemptyset(&child_mask);
    /* kept blocked across exec, so a SIGTERM before the worker is ready waits for it */
    sigaddset(&child_mask, SIGTERM);
    sigaddset(&child_mask, SIGINT);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, err_len, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* only async-signal-safe calls until exec: the parent may have threads */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(WORKER_EXIT_FAIL);
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &child_mask, NULL);
        execve(p->program, argv, p->envp);
        _exit(127);
    }
    s->pid = pid;
    s->started_at = clock_mono_ms();
    s->restart = 0;
    snprintf(s->consumer, sizeof(s->consumer), "%s:%d", s->name, (int)pid);
    log_info(NULL, NULL, "worker %d started (pid %d, consumer %s)", s->index, (int)pid, s->consumer);
    return 0;
}

static void signal_all(pool_t *p, int sig)
{
    for (int i = 0; i < p->n; i++)
        if (p->slots[i].pid > 0)
            kill(p->slots[i].pid, sig);
}

/* Builds the workers' environment: ours, with REDIS_URL pointing where we do. */
static char **make_envp(const char *redis_url)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **envp = calloc(n + 2, sizeof(char *));
    if (envp == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "REDIS_URL=", 10) != 0)
            envp[k++] = strdup(environ[i]);
    if (asprintf(&envp[k], "REDIS_URL=%s", redis_url) < 0)
        envp[k] = NULL;
    for (size_t i = 0; i <= k; i++) {
        if (envp[i] == NULL) {
            for (size_t j = 0; j <= k; j++)
                free(envp[j]);
            free(envp);
            return NULL;
        }
    }
    return envp;
}

pool_t *pool_new(const config_t *cfg, const char *redis_url, int concurrency, char *err, size_t err_len)
{
    if (concurrency < 1 || concurrency > POOL_MAX_WORKERS) {
        snprintf(err, err_len, "concurrency must be between 1 and %d", POOL_MAX_WORKERS);
        return NULL;
    }
    pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->n = concurrency;
    snprintf(p->program, sizeof(p->program), "/proc/self/exe");
    if (redisconn_url_parse(&p->url, redis_url, err, err_len) != 0)
        goto fail;
    if ((p->slots = calloc((size_t)concurrency, sizeof(slot_t))) == NULL || (p->envp = make_envp(redis_url)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    /* host and a random tag: unique among every pool sharing this Redis,
     * even two on one host or hosts with the same name */
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    unsigned tag = (unsigned)(clock_wall_ms() ^ ((int64_t)getpid() << 16)) & 0xffffu;
    snprintf(p->prefix, sizeof(p->prefix), "%s-%04x", host, tag);
    for (int i = 0; i < concurrency; i++) {
        p->slots[i].index = i + 1;
        snprintf(p->slots[i].name, sizeof(p->slots[i].name), "%s/%d", p->prefix, i + 1);
    }
    queue_policy_init(&p->policy, (int64_t)cfg->workers.retention_days * 86400,
                      (int64_t)cfg->workers.lease_seconds * 1000);
    for (int k = 0; k < JOB_KIND__COUNT; k++) {
        queue_policy_kind(&p->policy, (job_kind_t)k, kindpolicy_max_attempts((job_kind_t)k, cfg),
                          kindpolicy_get((job_kind_t)k)->exclusive);
    }
    return p;
fail:
    pool_free(p);
    return NULL;
}

int pool_set_program(pool_t *p, const char *path)
{
    int n = snprintf(p->program, sizeof(p->program), "%s", path);
    return n > 0 && (size_t)n < sizeof(p->program) ? 0 : -1;
}

int pool_start(pool_t *p, char *err, size_t err_len)
{
    for (int i = 0; i < p->n; i++)
        if (spawn(p, &p->slots[i], err, err_len) != 0)
            return -1;
    return 0;
}

int pool_child_exited(pool_t *p, pid_t pid, int status)
{
    slot_t *s = NULL;
    for (int i = 0; i < p->n && s == NULL; i++)
        if (p->slots[i].pid == pid)
            s = &p->slots[i];
    if (s == NULL)
        return 0;
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int planned = p->stage != STAGE_RUNNING || code == WORKER_EXIT_OK;
    queue_handback_t why = planned ? QUEUE_HANDBACK_SHUTDOWN : QUEUE_HANDBACK_CRASH;
    char detail[96];
    snprintf(detail, sizeof(detail), "%s", how);
    long n = handback(p, s->consumer, why, detail);
    if (n < 0)
        remember(p, s->consumer, why, detail);
    if (planned || code == WORKER_EXIT_RESTART)
        log_info(NULL, NULL, "worker %d (pid %d) %s", s->index, (int)pid, how);
    else
        log_warn(NULL, NULL, "worker %d (pid %d) %s; %s", s->index, (int)pid, how,
                 n < 0 ? "its jobs go back to the queue when Redis answers" : n > 0 ? "its job went back to the queue"
                                                                                    : "it held no job");
    s->pid = 0;
    if (p->stage != STAGE_RUNNING)
        return 1;
    int64_t now = clock_mono_ms(), delay = 0;
    if (code == WORKER_EXIT_RESTART || code == WORKER_EXIT_OK || now - s->started_at >= POOL_STABLE_MS) {
        s->crashes = 0;
    } else {
        s->crashes++;
        delay = POOL_RESTART_MIN_MS;
        for (int i = 1; i < s->crashes && delay < POOL_RESTART_MAX_MS; i++)
            delay *= 2;
        if (delay > POOL_RESTART_MAX_MS)
            delay = POOL_RESTART_MAX_MS;
        log_warn(NULL, NULL, "worker %d died %d times in a row right after starting; restarting it in %lld ms",
                 s->index, s->crashes, (long long)delay);
    }
    s->restart = 1;
    s->restart_at = now + delay;
    return 1;
}

static void escalate(pool_t *p)
{
    int64_t now = clock_mono_ms();
    if (p->stage == STAGE_DRAINING) {
        p->stage = STAGE_ABORTING;
        p->kill_at = now + POOL_KILL_AFTER_MS;
        if (pool_alive(p) > 0)
            log_info(NULL, NULL, "handing the running jobs back to the queue");
        signal_all(p, SIGTERM);
    } else if (p->stage == STAGE_ABORTING) {
        p->stage = STAGE_KILLING;
        if (pool_alive(p) > 0)
            log_warn(NULL, NULL, "workers did not stop within %d ms; killing them", POOL_KILL_AFTER_MS);
        signal_all(p, SIGKILL);
    }
}

void pool_tick(pool_t *p)
{
    int64_t now = clock_mono_ms();
    char err[256];
    for (int i = 0; i < p->n; i++) {
        slot_t *s = &p->slots[i];
        if (p->stage == STAGE_RUNNING && s->pid == 0 && s->restart && now >= s->restart_at &&
            spawn(p, s, err, sizeof(err)) != 0) {
            log_error(NULL, NULL, "cannot restart worker %d: %s", s->index, err);
            s->restart_at = now + POOL_RESTART_MAX_MS;
        }
    }
    if ((p->stage == STAGE_DRAINING && now >= p->grace_end) || (p->stage == STAGE_ABORTING && now >= p->kill_at)) {
        if (p->stage == STAGE_DRAINING && pool_alive(p) > 0)
            log_info(NULL, NULL, "grace period of %d s is over", p->cfg->workers.grace_seconds);
        escalate(p);
    }
    if (p->npending > 0 && now >= p->next_retry)
        retry_pending(p);
}

int64_t pool_next_wakeup_ms(const pool_t *p)
{
    int64_t now = clock_mono_ms(), next = -1;
#define CONSIDER(t)                                                                                                     \
    do {                                                                                                                \
        int64_t d_ = (t) - now;                                                                                         \
        if (d_ < 0)                                                                                                     \
            d_ = 0;                                                                                                     \
        if (next < 0 || d_ < next)                                                                                      \
            next = d_;                                                                                                  \
    } while (0)
    for (int i = 0; i < p->n; i++)
        if (p->stage == STAGE_RUNNING && p->slots[i].pid == 0 && p->slots[i].restart)
            CONSIDER(p->slots[i].restart_at);
    if (p->stage == STAGE_DRAINING)
        CONSIDER(p->grace_end);
    if (p->stage == STAGE_ABORTING)
        CONSIDER(p->kill_at);
    if (p->npending > 0)
        CONSIDER(p->next_retry);
#undef CONSIDER
    return next;
}

void pool_stop(pool_t *p, int hurry)
{
    if (p->stage == STAGE_RUNNING) {
        p->stage = STAGE_DRAINING;
        p->grace_end = clock_mono_ms() + (int64_t)p->cfg->workers.grace_seconds * 1000;
        log_info(NULL, NULL, "stopping %d workers; running jobs have %d s to finish (signal again to hand them back now)",
                 pool_alive(p), p->cfg->workers.grace_seconds);
        signal_all(p, SIGTERM);
        if (hurry || p->cfg->workers.grace_seconds == 0)
            escalate(p);
    } else {
        escalate(p);
    }
}

int pool_stopping(const pool_t *p)
{
    return p->stage != STAGE_RUNNING;
}

int pool_alive(const pool_t *p)
{
    int n = 0;
    for (int i = 0; i < p->n; i++)
        n += p->slots[i].pid > 0;
    return n;
}

void pool_free(pool_t *p)
{
    if (p == NULL)
        return;
    /* a worker still here would be orphaned: it dies with us anyway (PDEATHSIG) */
    for (int i = 0; p->slots != NULL && i < p->n; i++) {
        if (p->slots[i].pid > 0) {
            int status;
            kill(p->slots[i].pid, SIGKILL);
            if (waitpid(p->slots[i].pid, &status, 0) == p->slots[i].pid)
                pool_child_exited(p, p->slots[i].pid, status);
        }
    }
    if (p->npending > 0)
        retry_pending(p);
    if (p->npending > 0)
        log_warn(NULL, NULL, "%zu workers' jobs could not be handed back; the reaper will queue them after the lease",
                 p->npending);
    free(p->pending);
    for (size_t i = 0; p->envp != NULL && p->envp[i] != NULL; i++)
        free(p->envp[i]);
    free(p->envp);
    free(p->slots);
    if (p->redis != NULL)
        redisFree(p->redis);
    redisconn_url_free(&p->url);
    free(p);
}
