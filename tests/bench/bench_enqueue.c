/*
 * bench_enqueue — Redis's share of a durable job, without HTTP: the exact
 * enqueue transaction the webhook server sends (queue_enqueue_cmd), against a
 * private redis-server started with production's settings (redisproc_start:
 * appendonly yes, appendfsync everysec, its rewrite thresholds), pipelined in
 * batches as the server's event loops batch them. Prints redis-server's CPU
 * (user + system of every thread, plus the AOF rewrite children it reaped)
 * per job, and INFO commandstats per job, for each batch size.
 *
 * bench_ingress.py measures the same thing end to end (HTTP, wrk sharing the
 * cores); this one isolates Redis so a change to the script can be weighed in
 * seconds, and compares batch sizes side by side in one run.
 *
 *   bench_enqueue [--jobs N] [--rounds R] [--batches 1,4,16] [--one-issue] [--issue-bytes N] [--redis-server PATH]
 *
 * Its Redis lives in a fresh directory under $TMPDIR and is stopped by PID.
 */
#include "app/common/clock.h"
#include "jobs/queue/job.h"
#include "jobs/queue/queue.h"
#include "jobs/queue/redisproc.h"

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ISSUE_BYTES 1000 /* an issue's body, as a person writes one */
#define WINDOW_TX 8         /* transactions in flight, as two event loops keep a few */
#define RETENTION_S (7 * 86400)

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long v[64] = {0};
    int i = 0;
    for (char *tok = strtok(p + 2, " "); tok && i < 64; tok = strtok(NULL, " "))
        v[i++] = strtoull(tok, NULL, 10);
    /* after the state field: utime 11, stime 12, cutime 13, cstime 14 (0-based from state) */
    return (double)(v[11] + v[12] + v[13] + v[14]) / (double)sysconf(_SC_CLK_TCK);
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "redis: %s\n", c->errstr);
        exit(1);
    }
    return r;
}

/* One line per command of INFO commandstats: calls and usec per job. */
static void commandstats(redisContext *c, long jobs)
{
    redisReply *r = cmd(c, "INFO commandstats");
    double total = 0;
    for (char *line = strtok(r->str, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        long long calls = 0;
        double usec = 0;
        char name[64];
        if (sscanf(line, "cmdstat_%63[^:]:calls=%lld,usec=%lf", name, &calls, &usec) != 3)
            continue;
        if (strcmp(name, "exec") == 0 || strcmp(name, "evalsha") == 0 || strcmp(name, "eval") == 0 ||
            strncmp(name, "config", 6) == 0)
            printf("    %-10s %5.2f calls/job %7.2f us/job (includes what it ran)\n", name, (double)calls / jobs,
                   usec / jobs);
        else {
            printf("    %-10s %5.2f calls/job %7.2f us/job\n", name, (double)calls / jobs, usec / jobs);
            total += usec;
        }
    }
    printf("    commands themselves: %.1f us/job\n", total / jobs);
    freeReplyObject(r);
}

static void wait_no_rewrite(redisContext *c)
{
    for (int i = 0; i < 1200; i++) {
        redisReply *r = cmd(c, "INFO persistence");
        int busy = strstr(r->str, "aof_rewrite_in_progress:1") != NULL;
        freeReplyObject(r);
        if (!busy)
            return;
        usleep(100000);
    }
}

typedef struct {
    char delivery[48], number[24], comment[24], event_id[160];
    job_fields_t fields;
    queue_delivery_t d;
} job_t;

static void make_job(job_t *j, const char *issue, size_t len, long seq, int one_issue, const char *run)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->delivery, sizeof(j->delivery), "%s-%08ld-4466-921c-76bb8d10ca26", run, seq);
    snprintf(j->number, sizeof(j->number), "%ld", one_issue ? 1L : 1000 + seq);
    snprintf(j->comment, sizeof(j->comment), "%ld", 492700400L + seq);
    snprintf(j->event_id, sizeof(j->event_id), "issue_comment.created:Codertocat/Hello-World:%s", j->comment);
    /* the fields the router gives an issue_comment fix job */
    job_fields_add(&j->fields, JOB_F_KIND, "fix");
    job_fields_add(&j->fields, JOB_F_EVENT, "issue_comment");
    job_fields_add(&j->fields, JOB_F_ACTION, "created");
    job_fields_add(&j->fields, JOB_F_REPO, "Codertocat/Hello-World");
    job_fields_add(&j->fields, JOB_F_NUMBER, j->number);
    job_fields_add(&j->fields, JOB_F_INSTALLATION, "1");
    job_fields_add(&j->fields, JOB_F_SENDER, "Codertocat");
    job_fields_add(&j->fields, JOB_F_IS_PR, "0");
    job_fields_add(&j->fields, JOB_F_COMMENT_ID, j->comment);
    job_fields_add(&j->fields, JOB_F_COMMENT_TYPE, "issue_comment");
    job_fields_add(&j->fields, JOB_F_EVENT_ID, j->event_id);
    job_fields_add(&j->fields, JOB_F_INSTRUCTION, "fix the flaky test");
    job_fields_add(&j->fields, JOB_F_TITLE, "Spelling error in the README file");
    /* what a job keeps of the webhook besides: the issue's text is the part that varies */
    job_fields_add(&j->fields, JOB_F_COMMENT_BODY, "@patchbay fix the flaky test");
    job_fields_add(&j->fields, JOB_F_ISSUE_BODY, issue);
    job_fields_add(&j->fields, JOB_F_ISSUE_COMMENTS, "0");
    job_fields_add(&j->fields, JOB_F_SENDER_ID, "21031067");
    job_fields_add(&j->fields, JOB_F_PRIVATE, "0");
    j->d.delivery = j->delivery;
    j->d.received_ms = clock_wall_ms();
    j->d.payload = issue; /* the spool's; the enqueue does not store it */
    j->d.payload_len = len;
    j->d.fields = &j->fields;
}

/* Sends `jobs` jobs in transactions of `batch`, WINDOW_TX in flight. */
static void run_load(redisContext *c, const char *sha, const char *issue, size_t len, long jobs, int batch,
                     int one_issue, const char *run)
{
    job_t *js = calloc((size_t)batch, sizeof(*js));
    long sent = 0, in_flight = 0, made = 0;
    while (sent < jobs || in_flight > 0) {
        while (sent < jobs && in_flight < WINDOW_TX) {
            int n = (int)(jobs - sent < batch ? jobs - sent : batch);
            const queue_delivery_t *ds[QUEUE_BATCH_MAX];
            for (int i = 0; i < n; i++) {
                make_job(&js[i], issue, len, sent + i, one_issue, run);
                ds[i] = &js[i].d;
            }
            queue_enqueue_cmd_t q;
            if (queue_enqueue_cmd(&q, sha, ds, (size_t)n, RETENTION_S) != 0)
                exit(1);
            for (size_t k = 0; k < q.ncmds; k++)
                redisAppendCommandArgv(c, q.argc[k], q.argv[k], q.argvlen[k]);
            queue_enqueue_cmd_free(&q);
            sent += n;
            in_flight++;
            /* remember the size with a marker reply count: each tx answers ncmds replies */
        }
        /* read one transaction's replies: MULTI, n SETs... its command count varies, so read
         * until an array reply (EXEC) arrives */
        for (;;) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
                fprintf(stderr, "redis: %s\n", c->errstr);
                exit(1);
            }
            int exec = r->type == REDIS_REPLY_ARRAY;
            if (r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "redis refused: %s\n", r->str);
                exit(1);
            }
            if (exec) {
                const redisReply *script = r->element[r->elements - 1];
                if (script->type == REDIS_REPLY_ERROR) {
                    fprintf(stderr, "script: %s\n", script->str);
                    exit(1);
                }
                for (size_t i = 0; i < script->elements; i++)
                    made += script->element[i]->element[0]->integer == 1;
            }
            freeReplyObject(r);
            if (exec)
                break;
        }
        in_flight--;
    }
    if (made != jobs) {
        fprintf(stderr, "made %ld jobs of %ld\n", made, jobs);
        exit(1);
    }
    free(js);
}

int main(int argc, char **argv)
{
    long jobs = 40000;
    int rounds = 3, one_issue = 0;
    size_t issue_bytes = ISSUE_BYTES;
    const char *batches = "1,4,16", *server = "redis-server", *socket_path = NULL;
    int socket_pid = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
            jobs = atol(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc)
            batches = argv[++i];
        else if (strcmp(argv[i], "--issue-bytes") == 0 && i + 1 < argc)
            issue_bytes = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--one-issue") == 0)
            one_issue = 1;
        else if (strcmp(argv[i], "--redis-server") == 0 && i + 1 < argc)
            server = argv[++i];
        else if (strcmp(argv[i], "--socket") == 0 && i + 2 < argc) { /* a Redis already running: socket, pid */
            socket_path = argv[++i];
            socket_pid = atoi(argv[++i]);
        }
        else {
            fprintf(stderr, "usage: bench_enqueue [--jobs N] [--rounds R] [--batches 1,4,16] [--one-issue] "
                            "[--issue-bytes N] [--redis-server PATH] [--socket PATH PID]\n");
            return 2;
        }
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/pbenq-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    redisproc_t rp = {0};
    char err[512];
    if (socket_path == NULL && redisproc_start(&rp, dir, server, "everysec", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (socket_path != NULL)
        rp.pid = socket_pid;
    redisContext *c = redisConnectUnix(socket_path ? socket_path : rp.socket_path);
    if (c == NULL || c->err) {
        fprintf(stderr, "cannot connect\n");
        redisproc_stop(&rp);
        return 1;
    }
    char *issue = malloc(issue_bytes + 1);
    /* JSON-ish text that compresses as a real issue body does: words, not one byte */
    static const char words[] = "{\"steps to reproduce\":\"and logs\",\"body\":\"the flaky test fails on CI\"}";
    for (size_t i = 0; i < issue_bytes; i++)
        issue[i] = words[i % (sizeof(words) - 1)];
    issue[issue_bytes] = '\0';

    redisReply *r = cmd(c, "SCRIPT LOAD %s", QUEUE_ENQUEUE_LUA);
    char sha[41];
    snprintf(sha, sizeof(sha), "%s", r->str);
    freeReplyObject(r);

    printf("bench_enqueue: %ld jobs a run, %s, window %d transactions, issue body %d bytes, AOF everysec\n", jobs,
           one_issue ? "all on one issue" : "an issue each", WINDOW_TX, (int)issue_bytes);
    int nb = 0, bs[16];
    for (const char *p = batches; *p && nb < 16; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
        bs[nb] = atoi(p);
        if (bs[nb] < 1 || bs[nb] > QUEUE_BATCH_MAX)
            bs[nb] = 1;
        nb++;
    }
    double *cpu = calloc((size_t)(nb * rounds), sizeof(double)), *rate = calloc((size_t)(nb * rounds), sizeof(double));
    for (int round = 0; round < rounds; round++) {
        for (int b = 0; b < nb; b++) {
            freeReplyObject(cmd(c, "FLUSHALL SYNC"));
            wait_no_rewrite(c);
            freeReplyObject(cmd(c, "CONFIG RESETSTAT"));
            char run[16];
            snprintf(run, sizeof(run), "r%02db%02d", round, bs[b]);
            double c0 = cpu_seconds(rp.pid);
            int64_t t0 = clock_mono_us();
            run_load(c, sha, issue, issue_bytes, jobs, bs[b], one_issue, run);
            int64_t t1 = clock_mono_us();
            double c1 = cpu_seconds(rp.pid);
            cpu[round * nb + b] = (c1 - c0) / (double)jobs * 1e6;
            rate[round * nb + b] = (double)jobs / ((double)(t1 - t0) / 1e6);
            printf("round %d, batch %2d: %7.1f us of redis-server CPU per job, %6.0f jobs/s\n", round + 1, bs[b],
                   cpu[round * nb + b], rate[round * nb + b]);
            if (round == rounds - 1)
                commandstats(c, jobs);
        }
    }
    printf("\nmedian of %d rounds (spread min-max), redis-server CPU per durable job:\n", rounds);
    for (int b = 0; b < nb; b++) {
        double xs[64];
        int n = 0;
        for (int round = 0; round < rounds && n < 64; round++)
            xs[n++] = cpu[round * nb + b];
        for (int i = 0; i < n; i++)
            for (int k = i + 1; k < n; k++)
                if (xs[k] < xs[i]) {
                    double t = xs[i];
                    xs[i] = xs[k];
                    xs[k] = t;
                }
        printf("  batch %2d: %6.1f us (%.1f-%.1f)\n", bs[b], xs[n / 2], xs[0], xs[n - 1]);
    }
    free(cpu);
    free(rate);
    free(issue);
    redisFree(c);
    if (socket_path == NULL)
        redisproc_stop(&rp);
    char rm[4200];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
