/*
 * patchbay-enter — the first program in every sandbox, and the last step of
 * patchbay's inside it (jobs/agent/sandbox.h):
 *
 *   patchbay-enter [--gate FD] [--started FD] [--uid UID --gid GID] -- COMMAND [ARG...]
 *
 *   --gate FD     wait for "go" on FD before anything else: the parent sends
 *                 it once the sandbox's network is jailed (an end of file, a
 *                 parent that died, is not a go: exit 125);
 *   --started FD  write one byte to FD: the sandbox is up, whatever the
 *                 command then does (a bubblewrap that failed never gets here);
 *   --uid/--gid   become that user, with no capability left (bounding,
 *                 effective, permitted, inheritable, ambient), no
 *                 supplementary groups and no new privileges (a setuid
 *                 program stays the user's);
 *   then exec COMMAND, looked up in the PATH of the sandbox's environment.
 *
 * Statically linked and self-contained, so it runs in any image a job uses
 * (a busybox image has no setpriv, a distroless one no shell). Exits 125
 * when its own step failed, 127 when the command cannot be run, with one
 * line on stderr.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_SETUP 125
#define EXIT_EXEC 127

static void die(int code, const char *what, int err)
{
    fprintf(stderr, "patchbay-enter: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
    _exit(code);
}

static long number(const char *s, const char *what)
{
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (s == NULL || errno != 0 || end == s || *end != '\0' || v < 0)
        die(EXIT_SETUP, what, EINVAL);
    return v;
}

static void wait_for_go(int fd)
{
    char buf[4];
    size_t got = 0;
    while (got < 3) {
        ssize_t n = read(fd, buf + got, 3 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die(EXIT_SETUP, "no go from patchbay (it stopped before the sandbox was ready)", 0);
        got += (size_t)n;
    }
    if (memcmp(buf, "go\n", 3) != 0)
        die(EXIT_SETUP, "no go from patchbay", 0);
    close(fd);
}

static void become(uid_t uid, gid_t gid)
{
    /* while still root: nothing this process or its children exec can gain back */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            die(EXIT_SETUP, "cannot drop the capability bounding set", errno);
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (setgroups(0, NULL) != 0)
        die(EXIT_SETUP, "cannot drop supplementary groups", errno);
    if (setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
        die(EXIT_SETUP, "cannot become the sandbox's user", errno);
    /* setuid away from root cleared the effective and permitted sets; the
     * inheritable one goes too */
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) != 0)
        die(EXIT_SETUP, "cannot clear capabilities", errno);
    if (getuid() != uid || geteuid() != uid || getgid() != gid)
        die(EXIT_SETUP, "still not the sandbox's user", 0);
}

int main(int argc, char **argv)
{
    int gate = -1, started = -1;
    long uid = -1, gid = -1;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc)
            die(EXIT_SETUP, "usage: patchbay-enter [--gate FD] [--started FD] [--uid UID --gid GID] -- COMMAND...", 0);
        if (strcmp(argv[i], "--gate") == 0)
            gate = (int)number(argv[++i], "--gate");
        else if (strcmp(argv[i], "--started") == 0)
            started = (int)number(argv[++i], "--started");
        else if (strcmp(argv[i], "--uid") == 0)
            uid = number(argv[++i], "--uid");
        else if (strcmp(argv[i], "--gid") == 0)
            gid = number(argv[++i], "--gid");
        else
            die(EXIT_SETUP, "unknown option", EINVAL);
    }
    if (i >= argc || (uid < 0) != (gid < 0))
        die(EXIT_SETUP, "usage: patchbay-enter [--gate FD] [--started FD] [--uid UID --gid GID] -- COMMAND...", 0);
    if (gate >= 0)
        wait_for_go(gate);
    if (started >= 0) {
        if (write(started, "x", 1) != 1)
            die(EXIT_SETUP, "cannot tell patchbay the sandbox started", errno);
        close(started);
    }
    if (uid >= 0)
        become((uid_t)uid, (gid_t)gid);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die(EXIT_SETUP, "cannot forbid new privileges", errno);
    execvp(argv[i], argv + i);
    int e = errno;
    fprintf(stderr, "patchbay-enter: %s: %s\n", argv[i], strerror(e));
    _exit(EXIT_EXEC);
}
