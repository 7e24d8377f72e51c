/*
 * test_sandbox — what a sandboxed command can and cannot do: exit codes and
 * output, the scrubbed environment (with patchbay's secrets set in this very
 * process), the output cap, stdin, the wall-clock limit reaching grandchildren,
 * cancel, descriptors that must not leak; and under bubblewrap: no writes
 * outside the workspace, no reads of files planted outside it, no network when
 * it is off, and the fallback when bubblewrap cannot start.
 *
 * Each test gets a fresh directory /tmp/pbsandbox-XXXXXX with ws/ (the
 * workspace), scratch/ and data/ (a stand-in for patchbay's data dir, never
 * bound into the sandbox).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/common/log.h"
#include "jobs/agent/netjail.h"
#include "jobs/agent/sandbox.h"
#include "jobs/agent/sandbox_user.h"

typedef struct {
    char root[64];
    char ws[96], scratch[96], data[96], out[128];
} dirs_t;

static dirs_t D;

static int setup(void **state)
{
    (void)state;
    strcpy(D.root, "/tmp/pbsandbox-XXXXXX");
    if (mkdtemp(D.root) == NULL)
        return -1;
    snprintf(D.ws, sizeof(D.ws), "%s/ws", D.root);
    snprintf(D.scratch, sizeof(D.scratch), "%s/scratch", D.root);
    snprintf(D.data, sizeof(D.data), "%s/data", D.root);
    snprintf(D.out, sizeof(D.out), "%s/out.log", D.root);
    if (mkdir(D.ws, 0755) != 0 || mkdir(D.scratch, 0700) != 0 || mkdir(D.data, 0700) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", D.root);
    return system(cmd) == 0 ? 0 : -1;
}

static void opts_for(sandbox_opts_t *o, const char *const *argv, sandbox_isolation_t iso)
{
    sandbox_opts_init(o);
    o->argv = argv;
    o->workdir = D.ws;
    o->scratch_dir = D.scratch;
    o->output_path = D.out;
    o->isolation = iso;
    o->timeout_ms = 60000;
    o->kill_grace_ms = 200;
}

/* The whole output file, NUL-terminated; caller frees. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int have_bwrap(void)
{
    char p[PATH_MAX];
    return sandbox_bwrap_find(p, sizeof(p), NULL) == 0;
}

/* Runs `sh -c script` and returns the output (caller frees). */
static char *run_sh(sandbox_result_t *r, sandbox_isolation_t iso, const char *script, int network, int expect_rc)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, iso);
    o.network = network;
    char err[256] = "";
    int rc = sandbox_run(r, &o, err, sizeof(err));
    if (rc != expect_rc)
        print_message("sandbox_run: %d %s\n", rc, err);
    assert_int_equal(rc, expect_rc);
    return slurp(D.out, NULL);
}

/* ---------------------------------------------------------------------------
 * Everywhere (isolation none, and again under bubblewrap where it matters)
 * ------------------------------------------------------------------------- */

static void test_exit_code_and_output(void **state)
{
    (void)state;
    sandbox_result_t r;
    char *out = run_sh(&r, SANDBOX_ISOLATE_NONE, "echo hello; echo oops >&2; pwd; exit 3", 1, 0);
    assert_int_equal(r.end, SANDBOX_EXITED);
    assert_int_equal(r.exit_code, 3);
    assert_non_null(strstr(out, "hello\n"));
    assert_non_null(strstr(out, "oops\n"));
    assert_non_null(strstr(out, D.ws));
    assert_int_equal(r.isolated, 0);
    assert_int_equal(r.output_truncated, 0);
    free(out);

    out = run_sh(&r, SANDBOX_ISOLATE_NONE, "kill -USR1 $$", 1, 0);
    assert_int_equal(r.end, SANDBOX_SIGNALED);
    assert_int_equal(r.signal, SIGUSR1);
    free(out);
}

static void check_env_scrubbed(sandbox_isolation_t iso)
{
    static const char *const secrets[] = {"GITHUB_TOKEN", "GH_TOKEN",        "WEBHOOK_SECRET", "PRIVATE_KEY",
                                          "PRIVATE_KEY_PATH", "APP_ID",      "REDIS_URL",      "DASHBOARD_TOKEN",
                                          "PATCHBAY_CONFIG",  "GIT_DIR",     NULL};
    for (size_t i = 0; secrets[i] != NULL; i++)
        setenv(secrets[i], "hunter2-secret-value", 1);
    const char *argv[] = {"env", NULL};
    const char *env[] = {"MY_AGENT_API_KEY=sk-agent", "PATCHBAY_PROMPT_FILE=/x/prompt.md", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, iso);
    o.env = env;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    char *out = slurp(D.out, NULL);
    assert_null(strstr(out, "hunter2"));
    for (size_t i = 0; secrets[i] != NULL; i++) {
        char needle[64];
        snprintf(needle, sizeof(needle), "\n%s=", secrets[i]);
        assert_null(strstr(out, needle));
    }
    assert_non_null(strstr(out, "MY_AGENT_API_KEY=sk-agent\n"));
    assert_non_null(strstr(out, "PATCHBAY_PROMPT_FILE=/x/prompt.md\n"));
    assert_non_null(strstr(out, "TERM=dumb\n"));
    char home[160];
    snprintf(home, sizeof(home), "HOME=%s/home\n", D.scratch);
    assert_non_null(strstr(out, home));
    free(out);

    /* asking for a secret by name is refused outright */
    const char *bad[] = {"GITHUB_TOKEN=ghs_x", NULL};
    o.env = bad;
    err[0] = '\0';
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ENV);
    assert_non_null(strstr(err, "GITHUB_TOKEN"));
    const char *bad2[] = {"PRIVATE_KEY_FILE=/k.pem", NULL};
    o.env = bad2;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ENV);
    const char *bad3[] = {"NOEQUALS", NULL};
    o.env = bad3;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ENV);

    for (size_t i = 0; secrets[i] != NULL; i++)
        unsetenv(secrets[i]);
}

static void test_env_scrubbed(void **state)
{
    (void)state;
    check_env_scrubbed(SANDBOX_ISOLATE_NONE);
    if (have_bwrap())
        check_env_scrubbed(SANDBOX_ISOLATE_BWRAP);
}

static void test_output_cap_keeps_head_and_tail(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "echo BEGIN; head -c 1000000 /dev/zero | tr '\\0' a; echo; echo END", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_NONE);
    o.output_limit_bytes = 10000;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    assert_int_equal(r.end, SANDBOX_EXITED);
    assert_int_equal(r.exit_code, 0);
    assert_true(r.output_truncated);
    assert_int_equal(r.output_bytes, 6 + 1000000 + 1 + 4);
    size_t len;
    char *out = slurp(D.out, &len);
    assert_true(len <= 10000 + 100);
    assert_true(len >= 10000);
    assert_memory_equal(out, "BEGIN\n", 6);
    assert_non_null(strstr(out, "[patchbay: output truncated: "));
    assert_string_equal(out + len - 4, "END\n");
    free(out);

    /* under the cap: untouched */
    const char *small[] = {"sh", "-c", "printf 'abc'", NULL};
    o.argv = small;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    out = slurp(D.out, &len);
    assert_string_equal(out, "abc");
    assert_false(r.output_truncated);
    free(out);
}

static void test_stdin_from_file(void **state)
{
    (void)state;
    char in[160];
    snprintf(in, sizeof(in), "%s/input.txt", D.root);
    write_text(in, "the task\nline two\n");
    const char *argv[] = {"cat", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_NONE);
    o.stdin_path = in;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    char *out = slurp(D.out, NULL);
    assert_string_equal(out, "the task\nline two\n");
    free(out);

    /* without one, stdin is empty rather than the worker's */
    o.stdin_path = NULL;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    out = slurp(D.out, NULL);
    assert_string_equal(out, "");
    free(out);
}

static void test_not_found_is_an_error(void **state)
{
    (void)state;
    const char *argv[] = {"no-such-agent-cli", "-p", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_NONE);
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "no-such-agent-cli"));

    const char *rel[] = {"./missing.sh", NULL};
    o.argv = rel;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_NOT_FOUND);

    /* a program in the checkout never runs, even when it is there and executable */
    char planted[192];
    snprintf(planted, sizeof(planted), "%s/agent.sh", D.ws);
    write_text(planted, "#!/bin/sh\necho PLANTED-RAN\n");
    assert_int_equal(chmod(planted, 0755), 0);
    const char *inside[] = {"./agent.sh", NULL};
    o.argv = inside;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "relative path is refused"));
    const char *updir[] = {"../ws/agent.sh", NULL};
    o.argv = updir;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_NOT_FOUND);
    assert_int_equal(access(D.out, F_OK), -1); /* refused before anything ran */

    const char *empty[] = {NULL};
    o.argv = empty;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ARGS);

    o.argv = rel;
    o.workdir = "relative/dir";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ARGS);
}

/* Orphans are re-parented to us (a subreaper), so their death is observable. */
static void test_timeout_kills_grandchildren(void **state)
{
    (void)state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char pidfile[160];
    snprintf(pidfile, sizeof(pidfile), "%s/grandchild.pid", D.ws);
    char script[512];
    /* the grandchild ignores SIGTERM, so only the escalation to SIGKILL stops it */
    snprintf(script, sizeof(script), "(trap '' TERM; exec sleep 300) & echo $! > %s; sleep 300", pidfile);
    const char *argv[] = {"sh", "-c", script, NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_NONE);
    o.timeout_ms = 300;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    assert_int_equal(r.end, SANDBOX_TIMEOUT);
    char *pidtext = slurp(pidfile, NULL);
    pid_t gc = (pid_t)atoi(pidtext);
    free(pidtext);
    assert_true(gc > 1);
    /* it was ours to reap: it must be dead (or die within a few seconds), by a signal */
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 100 && got == 0; i++) {
        got = waitpid(gc, &status, WNOHANG);
        if (got == 0)
            usleep(50 * 1000);
    }
    if (got == gc) {
        assert_true(WIFSIGNALED(status));
    } else {
        /* the shell may have reaped it before it died itself; then it must be gone */
        assert_int_equal(got, -1);
        assert_int_equal(errno, ECHILD);
        assert_int_equal(kill(gc, 0), -1);
        assert_int_equal(errno, ESRCH);
    }
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

/* Under bubblewrap the grandchild lives in a pid namespace: watch it stop writing. */
static void test_timeout_kills_grandchildren_bwrap(void **state)
{
    (void)state;
    if (!have_bwrap())
        skip();
    const char *argv[] = {"sh", "-c", "(while :; do echo tick >> ticks; sleep 0.02; done) & sleep 300", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_BWRAP);
    o.timeout_ms = 500;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    assert_int_equal(r.end, SANDBOX_TIMEOUT);
    assert_true(r.isolated);
    char ticks[160];
    snprintf(ticks, sizeof(ticks), "%s/ticks", D.ws);
    struct stat a, b;
    assert_int_equal(stat(ticks, &a), 0);
    assert_true(a.st_size > 0);
    usleep(300 * 1000);
    assert_int_equal(stat(ticks, &b), 0);
    assert_int_equal(a.st_size, b.st_size);
}

typedef struct {
    int calls;
    int stop_after;
    pid_t added, removed;
} hooks_t;

static int stop_hook(void *arg)
{
    hooks_t *h = arg;
    return ++h->calls > h->stop_after;
}

static void pgid_hook(void *arg, pid_t pgid, int running)
{
    hooks_t *h = arg;
    if (running)
        h->added = pgid;
    else
        h->removed = pgid;
}

/* Whether a process that is not a zombie is still in group pgid. Zombies
 * reparented to a PID 1 that does not reap (a container's) still answer
 * kill(-pgid, 0), so /proc is the honest witness. */
static int group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int alive = 0;
    while (d != NULL && (e = readdir(d)) != NULL && !alive) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp != NULL && sscanf(rp + 2, "%c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid && state != 'Z')
            alive = 1;
    }
    if (d != NULL)
        closedir(d);
    return alive;
}

static void test_cancel(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "echo started; sleep 300", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, have_bwrap() ? SANDBOX_ISOLATE_BWRAP : SANDBOX_ISOLATE_NONE);
    hooks_t h = {0, 3, 0, 0};
    o.should_stop = stop_hook;
    o.pgid = pgid_hook;
    o.hook_arg = &h;
    sandbox_result_t r;
    char err[256] = "";
    int rc = sandbox_run(&r, &o, err, sizeof(err));
    if (rc != 0)
        print_error("sandbox_run: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.end, SANDBOX_CANCELLED);
    assert_true(h.added > 1);
    assert_int_equal(h.added, h.removed);
    /* the group is gone (its last members may take a moment to be killed) */
    int alive = 1;
    for (int i = 0; i < 100 && alive; i++) {
        if ((alive = group_alive(h.added)))
            usleep(20 * 1000);
    }
    assert_false(alive);
}

static void test_descriptors_do_not_leak(void **state)
{
    (void)state;
    /* a descriptor the worker holds without O_CLOEXEC (a Redis socket, say) */
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    sandbox_result_t r;
    char *out = run_sh(&r, SANDBOX_ISOLATE_NONE, "ls /proc/$$/fd", 1, 0);
    /* 0, 1, 2 and nothing else */
    assert_string_equal(out, "0\n1\n2\n");
    free(out);
    close(fd);
}

static void test_rlimits(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "ulimit -t; ulimit -n; ulimit -f; ulimit -v", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_NONE);
    o.limits.cpu_seconds = 77;
    o.limits.open_files = 123;
    o.limits.file_size_bytes = 1024 * 1024;
    o.limits.address_space_bytes = 2048ULL * 1024 * 1024;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    char *out = slurp(D.out, NULL);
    /* dash prints -f in 512-byte blocks and -v in KiB */
    assert_string_equal(out, "77\n123\n2048\n2097152\n");
    free(out);

    /* the file-size limit bites */
    const char *big[] = {"sh", "-c", "head -c 2000000 /dev/zero > big.bin", NULL};
    o.argv = big;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    assert_false(r.end == SANDBOX_EXITED && r.exit_code == 0);
}

/* ---------------------------------------------------------------------------
 * Under bubblewrap
 * ------------------------------------------------------------------------- */

static void test_bwrap_filesystem(void **state)
{
    (void)state;
    if (!have_bwrap())
        skip();
    char planted[160], outside[160], script[1024];
    snprintf(planted, sizeof(planted), "%s/secret.txt", D.data);
    write_text(planted, "TOPSECRET-planted\n");
    snprintf(outside, sizeof(outside), "%s/escaped.txt", D.data);
    snprintf(script, sizeof(script),
             "echo inside > made-here.txt && echo WROTE-WS;"
             "cat %s && echo READ-PLANTED;"
             "echo x > %s && echo WROTE-OUTSIDE;"
             "echo x > /usr/escaped.txt && echo WROTE-USR;"
             "echo x > %s/../escaped-root.txt && echo WROTE-ROOT;"
             "cat /etc/shadow && echo READ-SHADOW;"
             "ls /root && echo LISTED-ROOT;"
             "echo x > /tmp/private.txt && echo WROTE-TMP;"
             "id -u",
             planted, outside, D.ws);
    sandbox_result_t r;
    char *out = run_sh(&r, SANDBOX_ISOLATE_BWRAP, script, 0, 0);
    assert_true(r.isolated);
    assert_non_null(strstr(out, "WROTE-WS"));
    assert_null(strstr(out, "TOPSECRET"));
    assert_null(strstr(out, "READ-PLANTED"));
    assert_null(strstr(out, "WROTE-OUTSIDE"));
    assert_null(strstr(out, "WROTE-USR"));
    /* the workspace's parent inside the sandbox is bubblewrap's own tmpfs:
     * writing there may succeed, but nothing reaches the host's directory */
    char escaped[200];
    snprintf(escaped, sizeof(escaped), "%s/../escaped-root.txt", D.ws);
    assert_int_equal(access(escaped, F_OK), -1);
    assert_null(strstr(out, "READ-SHADOW"));
    assert_null(strstr(out, "LISTED-ROOT"));
    /* /tmp is private and writable, and gone afterwards */
    assert_non_null(strstr(out, "WROTE-TMP"));
    if (geteuid() == 0) {
        char uid[16];
        snprintf(uid, sizeof(uid), "\n%d\n", SANDBOX_UID);
        assert_non_null(strstr(out, uid));
    }
    free(out);

    char p[192];
    snprintf(p, sizeof(p), "%s/made-here.txt", D.ws);
    assert_int_equal(access(p, F_OK), 0);
    assert_int_equal(access(outside, F_OK), -1);
    assert_int_equal(access("/usr/escaped.txt", F_OK), -1);
    snprintf(p, sizeof(p), "%s/escaped-root.txt", D.root);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(access("/tmp/private.txt", F_OK), -1);
}

static int listen_loopback(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 8), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

/* Whether a connection reached the listener: accepts what is queued, without waiting. */
static int accepted(int s)
{
    int n = 0;
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return n;
        close(c);
        n++;
    }
}

static int have_slirp(void)
{
    return access("/usr/bin/slirp4netns", X_OK) == 0 || access("/usr/local/bin/slirp4netns", X_OK) == 0;
}

static void test_bwrap_network(void **state)
{
    (void)state;
    if (!have_bwrap())
        skip();
    int port = 0;
    int s = listen_loopback(&port);
    fcntl(s, F_SETFL, O_NONBLOCK);
    char script[1024];
    snprintf(script, sizeof(script),
             "/usr/bin/python3 -c '\n"
             "import socket, time\n"
             "for host, port in ((\"127.0.0.1\", %d), (\"169.254.169.254\", 80), (\"10.0.2.2\", %d)):\n"
             "    try:\n"
             "        c = socket.create_connection((host, port), timeout=3); time.sleep(0.3); c.close(); print(\"CONNECTED\", host)\n"
             "    except OSError as e:\n"
             "        print(\"REFUSED\", host, e.errno)\n"
             "'",
             port, port);
    sandbox_result_t r;
    /* network off: loopback only, its own */
    char *out = run_sh(&r, SANDBOX_ISOLATE_BWRAP, script, 0, 0);
    assert_true(r.isolated);
    assert_null(strstr(out, "CONNECTED"));
    free(out);
    assert_int_equal(accepted(s), 0);
    if (!have_slirp()) {
        close(s);
        skip();
    }

    /* network on: outbound only; neither the host's loopback (directly or
     * through slirp's gateway) nor the cloud metadata address */
    out = run_sh(&r, SANDBOX_ISOLATE_BWRAP, script, 1, 0);
    assert_true(r.isolated);
    assert_null(strstr(out, "CONNECTED"));
    assert_non_null(strstr(out, "REFUSED 169.254.169.254"));
    free(out);
    assert_int_equal(accepted(s), 0);

    /* unless the operator allows exactly that destination */
    char allow[64];
    snprintf(allow, sizeof(allow), "127.0.0.1:%d", port);
    const char *allowed[] = {allow, NULL};
    const char *argv[] = {"sh", "-c", script, NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_BWRAP);
    o.network = 1;
    o.egress_allow = allowed;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    out = slurp(D.out, NULL);
    assert_non_null(strstr(out, "CONNECTED 127.0.0.1"));
    assert_null(strstr(out, "CONNECTED 10.0.2.2"));
    free(out);
    assert_int_equal(accepted(s), 1);

    /* a broken allowlist entry fails closed, naming it */
    const char *bad[] = {"8.8.8.8:53", NULL};
    o.egress_allow = bad;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ISOLATION);
    assert_non_null(strstr(err, "8.8.8.8:53"));
    close(s);
}

static void test_bwrap_missing_or_broken(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "echo ran", NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_BWRAP);
    o.bwrap_path = "/nonexistent/bwrap";
    sandbox_result_t r;
    char err[256] = "";
    /* required and missing: refused, nothing ran */
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ISOLATION);
    assert_non_null(strstr(err, "not installed"));

    assert_int_equal(access(D.out, F_OK), -1); /* refused before anything was started */

    /* a bwrap that fails to start (as in a container without user namespaces):
     * refused with bwrap's own words, and the command never ran */
    char fake[160];
    snprintf(fake, sizeof(fake), "%s/fake-bwrap", D.root);
    write_text(fake, "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n");
    assert_int_equal(chmod(fake, 0755), 0);
    o.bwrap_path = fake;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ISOLATION);
    assert_non_null(strstr(err, "could not start the sandbox"));
    assert_non_null(strstr(err, "No permissions"));
    char *out = slurp(D.out, NULL);
    assert_null(strstr(out, "ran\n"));
    free(out);

    /* the command's own exit 1 under a working bwrap is not a failure to start */
    if (have_bwrap()) {
        const char *one[] = {"sh", "-c", "echo x; exit 1", NULL};
        o.argv = one;
        o.bwrap_path = NULL;
        assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
        assert_true(r.isolated);
        assert_int_equal(r.exit_code, 1);
    }
}

/* What the job shares with others (the pack files hard-linked from the
 * repository's mirror) stays unchangeable inside, while the rest of the work
 * tree is writable. */
static void test_bwrap_read_only_overlays(void **state)
{
    (void)state;
    if (!have_bwrap())
        skip();
    char dir[192], pack[256], overlay[192];
    snprintf(dir, sizeof(dir), "%s/.git", D.ws);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(dir, sizeof(dir), "%s/.git/objects", D.ws);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(overlay, sizeof(overlay), "%s/.git/objects/pack", D.ws);
    assert_int_equal(mkdir(overlay, 0755), 0);
    snprintf(pack, sizeof(pack), "%s/pack-1.pack", overlay);
    write_text(pack, "PACKDATA");
    assert_int_equal(chmod(pack, 0444), 0);
    const char *argv[] = {"sh", "-c",
                          "chmod 644 .git/objects/pack/pack-1.pack && echo CHMOD-OK;"
                          "echo x >> .git/objects/pack/pack-1.pack && echo WRITE-OK;"
                          "rm -f .git/objects/pack/pack-1.pack && echo RM-OK;"
                          "ln .git/objects/pack/pack-1.pack other && echo LINK-OK;"
                          "echo y > elsewhere.txt && echo TREE-OK",
                          NULL};
    sandbox_opts_t o;
    opts_for(&o, argv, SANDBOX_ISOLATE_BWRAP);
    const char *outside[] = {"/etc", NULL};
    o.ro_overlays = outside;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ARGS);
    const char *up[] = {"a/../../x", NULL};
    o.ro_overlays = up;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_ARGS);
    const char *ro[] = {".git/objects/pack", "no/such/dir", NULL};
    o.ro_overlays = ro;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    char *out = slurp(D.out, NULL);
    assert_null(strstr(out, "CHMOD-OK"));
    assert_null(strstr(out, "WRITE-OK"));
    assert_null(strstr(out, "RM-OK"));
    assert_null(strstr(out, "LINK-OK"));
    assert_non_null(strstr(out, "TREE-OK"));
    free(out);
    char *kept = slurp(pack, NULL);
    assert_string_equal(kept, "PACKDATA");
    free(kept);
    struct stat st;
    assert_int_equal(stat(pack, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
}

/* Whatever descriptors the worker's other threads open and close meanwhile
 * (a best-of-N job runs attempts side by side), each bound place reaches
 * bwrap. A source that landed on its own target number stayed close-on-exec
 * before, and bwrap found no /proc/self/fd/12 (seen once in CI). */
typedef struct {
    volatile int stop;
} churn_t;

static void *churn_thread(void *arg)
{
    churn_t *c = arg;
    while (!c->stop) {
        int held[4];
        for (int i = 0; i < 4; i++) {
            int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            held[i] = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 10);
            if (fd >= 0)
                close(fd);
        }
        for (int i = 3; i >= 0; i--)
            if (held[i] >= 0 && (i % 2 == 0 || c->stop))
                close(held[i]);
        for (int i = 1; i < 4; i += 2)
            if (held[i] >= 0 && !(c->stop))
                close(held[i]);
    }
    return NULL;
}

static void test_bwrap_binds_while_other_threads_churn_fds(void **state)
{
    (void)state;
    if (!have_bwrap())
        skip();
    char dir[192];
    snprintf(dir, sizeof(dir), "%s/.git", D.ws);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/.git/objects", D.ws);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/.git/objects/pack", D.ws);
    mkdir(dir, 0755);
    const char *argv[] = {"sh", "-c", "test -d .git/objects/pack && echo BOUND", NULL};
    const char *ro[] = {".git/objects/pack", NULL};
    signal(SIGPIPE, SIG_IGN); /* as the worker: a sandbox that died is an error, not the end */
    churn_t c = {0};
    pthread_t churner;
    assert_int_equal(pthread_create(&churner, NULL, churn_thread, &c), 0);
    int failures = 0;
    char why[512] = "";
    for (int i = 0; i < 60; i++) {
        sandbox_opts_t o;
        opts_for(&o, argv, SANDBOX_ISOLATE_BWRAP);
        o.ro_overlays = ro;
        sandbox_result_t r;
        char err[256] = "";
        int rc = sandbox_run(&r, &o, err, sizeof(err));
        char *out = slurp(D.out, NULL);
        if (rc != 0 || strstr(out, "BOUND") == NULL) {
            failures++;
            snprintf(why, sizeof(why), "rc %d, %s, output: %.300s", rc, err, out);
        }
        free(out);
    }
    c.stop = 1;
    pthread_join(churner, NULL);
    if (failures > 0)
        fail_msg("%d of 60 runs failed; the last: %s", failures, why);
}

/* The operator's CLIs outside /usr (sandbox.path, sandbox.read_only), laid
 * out as npm does it: a bin directory of symbolic links into the packages.
 * Found by name as argv[0] and from a wrapper script's PATH; read-only. */
static void test_operator_path_dirs(void **state)
{
    (void)state;
    char bin[160], lib[160], real[200], link[200];
    snprintf(bin, sizeof(bin), "%s/agents/bin", D.root);
    snprintf(lib, sizeof(lib), "%s/agents/lib/tool", D.root);
    snprintf(real, sizeof(real), "%s/real.sh", lib);
    snprintf(link, sizeof(link), "%s/mytool", bin);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s %s", bin, lib);
    assert_int_equal(system(cmd), 0);
    write_text(real, "#!/bin/sh\necho \"agent-tool $*\"\n");
    assert_int_equal(chmod(real, 0755), 0);
    assert_int_equal(symlink("../lib/tool/real.sh", link), 0);
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "%s/agents", D.root);
    const char *path_dirs[] = {bin, NULL}, *read_only[] = {prefix, NULL};

    sandbox_isolation_t isos[] = {SANDBOX_ISOLATE_NONE, SANDBOX_ISOLATE_BWRAP};
    for (size_t i = 0; i < 2; i++) {
        if (isos[i] == SANDBOX_ISOLATE_BWRAP && !have_bwrap())
            continue;
        sandbox_opts_t o;
        sandbox_result_t r;
        char err[256] = "";
        /* not on the sandbox's own PATH */
        const char *by_name[] = {"mytool", "one", NULL};
        opts_for(&o, by_name, isos[i]);
        o.network = 0;
        assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), SANDBOX_ERR_NOT_FOUND);
        /* argv[0] by name */
        o.path_dirs = path_dirs;
        o.ro_paths = read_only;
        assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
        char *out = slurp(D.out, NULL);
        assert_string_equal(out, "agent-tool one\n");
        free(out);
        /* a wrapper finds it on PATH; nothing of it is writable */
        snprintf(cmd, sizeof(cmd), "mytool two; echo \"PATH=$PATH\"; echo x > %s/new 2>/dev/null && echo WRITE-OK; true", bin);
        const char *wrapper[] = {"sh", "-c", cmd, NULL};
        o.argv = wrapper;
        assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
        out = slurp(D.out, NULL);
        char want[512];
        snprintf(want, sizeof(want), "agent-tool two\nPATH=%s:%s\n", bin, SANDBOX_PATH);
        assert_true(strncmp(out, want, strlen(want)) == 0);
        if (isos[i] == SANDBOX_ISOLATE_BWRAP) { /* without the sandbox, root may write there */
            assert_non_null(strstr(out, "Read-only file system"));
            assert_null(strstr(out, "WRITE-OK"));
        }
        free(out);
        if (isos[i] == SANDBOX_ISOLATE_BWRAP) {
            /* without read_only, the links point at nothing inside */
            o.ro_paths = NULL;
            o.argv = (const char *const[]){"sh", "-c", "mytool three || echo MISSING", NULL};
            assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
            out = slurp(D.out, NULL);
            assert_non_null(strstr(out, "MISSING"));
            assert_null(strstr(out, "agent-tool"));
            free(out);
        }
    }
}

/* Network-on runs started at once: slirp4netns brings the sandbox's lo up,
 * and the kernel then gives it 127.0.0.1 itself; a bwrap that had not set up
 * its loopback yet died on its own RTM_NEWADDR ("loopback: Failed
 * RTM_NEWADDR"): a job failing with "cannot release the sandbox". */
#define RACE_THREADS 4
#define RACE_RUNS 12

typedef struct {
    int index;
    uid_t uid; /* as root, a job's user: bwrap then runs without a user namespace */
    int failures;
    char why[256];
} race_t;

static void *race_thread(void *arg)
{
    race_t *t = arg;
    char scratch[160], out[160];
    snprintf(scratch, sizeof(scratch), "%s/scratch-%d", D.root, t->index);
    snprintf(out, sizeof(out), "%s/out-%d.log", D.root, t->index);
    mkdir(scratch, 0700);
    const char *argv[] = {"sh", "-c", "echo ran", NULL};
    for (int i = 0; i < RACE_RUNS; i++) {
        sandbox_opts_t o;
        opts_for(&o, argv, SANDBOX_ISOLATE_BWRAP);
        o.scratch_dir = scratch;
        o.output_path = out;
        o.network = 1;
        o.uid = t->uid;
        o.gid = (gid_t)t->uid;
        sandbox_result_t r;
        char err[256] = "";
        int rc = sandbox_run(&r, &o, err, sizeof(err));
        if (rc != 0 || r.end != SANDBOX_EXITED || r.exit_code != 0) {
            t->failures++;
            snprintf(t->why, sizeof(t->why), "%d %s", rc, err);
        }
    }
    return NULL;
}

static void test_bwrap_network_runs_at_once(void **state)
{
    (void)state;
    char path[PATH_MAX], err[256];
    if (!have_bwrap() || netjail_find_slirp(path, sizeof(path), NULL, err, sizeof(err)) != 0)
        skip();
    pthread_t threads[RACE_THREADS];
    race_t races[RACE_THREADS];
    sandbox_user_t u = SANDBOX_USER_INIT;
    if (geteuid() == 0) {
        assert_int_equal(sandbox_user_acquire(&u, D.data, 1879048192, 16, err, sizeof(err)), 0);
        assert_int_equal(sandbox_user_give(&u, D.ws, NULL, err, sizeof(err)), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        races[i] = (race_t){.index = i, .uid = geteuid() == 0 ? u.uid : 0};
        assert_int_equal(pthread_create(&threads[i], NULL, race_thread, &races[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += races[i].failures;
        if (races[i].failures > 0)
            print_message("thread %d: %d failed, last: %s\n", i, races[i].failures, races[i].why);
    }
    sandbox_user_release(&u);
    assert_int_equal(failures, 0);
}

/* A run is its own session: the leader of a new session, with no terminal
 * to open, under bubblewrap and without it. */
static void test_new_session(void **state)
{
    (void)state;
    const char *script = "read -r pid _ _ _ _ sid _ < /proc/$$/stat; [ \"$pid\" = \"$sid\" ] && echo LEADER;"
                         "(exec 3</dev/tty) 2>/dev/null && echo HAS-TTY || echo NO-TTY";
    for (int iso = 0; iso < 2; iso++) {
        if (iso == 0 && !have_bwrap())
            continue;
        sandbox_result_t r;
        char *out = run_sh(&r, iso == 0 ? SANDBOX_ISOLATE_BWRAP : SANDBOX_ISOLATE_NONE, script, 0, 0);
        assert_non_null(strstr(out, "NO-TTY"));
        if (iso == 1) /* under bubblewrap the leader is bwrap's child, before the trampoline */
            assert_non_null(strstr(out, "LEADER"));
        free(out);
    }
}

/* Each limit bites, under bubblewrap as a job runs: memory (RLIMIT_DATA),
 * the work tree's size (watched), and, as root with a job user of its own,
 * processes. */
static void test_limits_bite(void **state)
{
    (void)state;
    sandbox_isolation_t iso = have_bwrap() ? SANDBOX_ISOLATE_BWRAP : SANDBOX_ISOLATE_NONE;
    const char *mem[] = {"sh", "-c",
                         "/usr/bin/python3 -c 'x = bytearray(300 * 1024 * 1024); print(\"ALLOCATED\")' 2>&1 | tail -1",
                         NULL};
    sandbox_opts_t o;
    opts_for(&o, mem, iso);
    o.network = 0;
    o.limits.memory_bytes = 128ULL * 1024 * 1024;
    sandbox_result_t r;
    char err[256] = "";
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    char *out = slurp(D.out, NULL);
    assert_null(strstr(out, "ALLOCATED"));
    assert_non_null(strstr(out, "MemoryError"));
    free(out);

    const char *big[] = {"sh", "-c", "for i in $(seq 200); do head -c 1048576 /dev/zero > f$i; sleep 0.02; done; "
                                     "echo WROTE-ALL", NULL};
    opts_for(&o, big, iso);
    o.network = 0;
    o.limits.tree_bytes = 20ULL * 1024 * 1024;
    assert_int_equal(sandbox_run(&r, &o, err, sizeof(err)), 0);
    assert_int_equal(r.end, SANDBOX_TOO_BIG);
    out = slurp(D.out, NULL);
    assert_null(strstr(out, "WROTE-ALL"));
    free(out);
    char desc[96];
    assert_non_null(strstr(sandbox_describe(&r, desc, sizeof(desc)), "size limit"));

    if (geteuid() != 0 || !have_bwrap())
        return;
    sandbox_user_t u = SANDBOX_USER_INIT;
    assert_int_equal(sandbox_user_acquire(&u, D.data, 1879048192, 16, err, sizeof(err)), 0);
    assert_true(u.uid >= 1879048192);
    /* a second lease gets another user */
    sandbox_user_t u2 = SANDBOX_USER_INIT;
    assert_int_equal(sandbox_user_acquire(&u2, D.data, 1879048192, 16, err, sizeof(err)), 0);
    assert_true(u2.uid != u.uid);
    sandbox_user_release(&u2);
    assert_int_equal(sandbox_user_give(&u, D.ws, NULL, err, sizeof(err)), 0);
    const char *forks[] = {"sh", "-c", "touch mine.txt && echo OWNS-TREE; n=0; for i in $(seq 60); do "
                                       "sleep 5 & n=$((n+1)); done 2>/dev/null; echo STARTED $n", NULL};
    opts_for(&o, forks, SANDBOX_ISOLATE_BWRAP);
    o.network = 0;
    o.uid = u.uid;
    o.gid = u.gid;
    o.limits.processes = 20;
    int urc = sandbox_run(&r, &o, err, sizeof(err));
    if (urc != 0)
        fail_msg("%d %s", urc, err);
    out = slurp(D.out, NULL);
    assert_null(strstr(out, "STARTED 60"));
    assert_non_null(strstr(out, "OWNS-TREE"));
    free(out);
    char mine[192];
    struct stat st;
    snprintf(mine, sizeof(mine), "%s/mine.txt", D.ws);
    assert_int_equal(stat(mine, &st), 0);
    assert_int_equal(st.st_uid, u.uid);

    /* what the job's user reads of /etc: bwrap, as root, makes /etc 0700
     * unless told otherwise, and then nothing in it is readable */
    char who[64];
    snprintf(who, sizeof(who), "patchbay:x:%u:", (unsigned)u.uid);
    const char *etc[] = {"sh", "-c", "ls -ld /etc | cut -c1-10; cat /etc/passwd; test -r /etc/ld.so.cache && echo CACHE-OK;"
                                     "ls /etc/ssl/certs >/dev/null 2>&1 && echo CERTS-OK; grep -q nameserver "
                                     "/etc/resolv.conf 2>/dev/null && echo RESOLV-OK; true", NULL};
    for (int network = 0; network < 2; network++) {
        char path[PATH_MAX];
        if (network && netjail_find_slirp(path, sizeof(path), NULL, err, sizeof(err)) != 0)
            break;
        opts_for(&o, etc, SANDBOX_ISOLATE_BWRAP);
        o.network = network;
        o.uid = u.uid;
        o.gid = u.gid;
        urc = sandbox_run(&r, &o, err, sizeof(err));
        if (urc != 0)
            fail_msg("%d %s", urc, err);
        out = slurp(D.out, NULL);
        if (strncmp(out, "drwxr-xr-x\n", 11) != 0 || strstr(out, who) == NULL || strstr(out, "CACHE-OK") == NULL ||
            (network && (strstr(out, "CERTS-OK") == NULL || strstr(out, "RESOLV-OK") == NULL)))
            fail_msg("network %d: %s", network, out);
        free(out);
    }
    sandbox_user_release(&u);
}

int main(void)
{
    /* the fallback's warn lines are expected here */
    log_configure("error", "text");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exit_code_and_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_scrubbed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_cap_keeps_head_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_grandchildren, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_grandchildren_bwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptors_do_not_leak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlimits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwrap_filesystem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwrap_network, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwrap_missing_or_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwrap_read_only_overlays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwrap_binds_while_other_threads_churn_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_path_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bwrap_network_runs_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_bite, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
