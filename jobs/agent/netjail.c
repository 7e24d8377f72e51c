/*
 * netjail — see netjail.h.
 *
 * Why a forked helper and not a thread that setns()es
 * ----------------------------------------------------
 * As root a thread can join the sandbox's network namespace (CLONE_NEWNET
 * may be joined per thread) whoever owns it. Not as an unprivileged user:
 * setns(CLONE_NEWNET) wants CAP_SYS_ADMIN in the user namespace that owns the
 * network namespace *and* in the caller's own, so the caller must first join
 * that user namespace, which a multi-threaded process may not do (EINVAL).
 * A forked, single-threaded helper can do both, so one code path serves root
 * and non-root. The helper only makes raw syscalls (it may be the child of a
 * multi-threaded worker) and sends its listening sockets back with
 * SCM_RIGHTS: sockets stay in the namespace they were created in.
 *
 * Which user namespace
 * --------------------
 * /proc/PID/ns/user of bwrap's child changes under our feet: with --dev and a
 * --uid, bwrap later unshares a second, nested user namespace, and a process
 * that joins that one has no capability over the network namespace (owned by
 * the first). The owner is read race-free from the network namespace itself
 * with ioctl(NS_GET_USERNS), and slirp4netns is handed both as
 * /proc/self/fd/N paths (--netns-type=path, --userns-path), never the pid.
 */
#include "netjail.h"
#include "app/common/clock.h"
#include "app/common/fdutil.h"
#include "app/common/strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BLOCKS 256
#define RELAY_BUF_BYTES (64 * 1024)
#define NETJAIL_FD_LOW 10 /* above the descriptors slirp4netns gets by number */

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned char plen;
} prefix_t;

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[64]; /* as the operator wrote it, for error messages */
} endpoint_t;

typedef struct conn {
    int in_fd;  /* accepted inside the sandbox's namespace */
    int out_fd; /* connected from the host's namespace */
    int connecting;
    int64_t deadline_us;
    char *buf[2];     /* 0: in -> out, 1: out -> in */
    size_t len[2], off[2];
    int eof[2];       /* 0: in gave EOF, 1: out gave EOF */
    int shut[2];      /* 0: out was shut for writing, 1: in was */
    unsigned ep;      /* which endpoint */
    struct conn *next;
} conn_t;

struct netjail {
    pid_t slirp_pid;
    int slirp_pidfd;
    int slirp_ready;
    int exit_w;      /* closing it (POLLHUP at slirp's --exit-fd) stops slirp4netns */
    int log_fd;      /* memfd with slirp4netns' output */
    endpoint_t ep[NETJAIL_MAX_ALLOW];
    int lfd[NETJAIL_MAX_ALLOW];
    unsigned nep;
    int wake[2];
    pthread_t relay;
    int relay_started;
    unsigned max_conns;
    int connect_timeout_ms;
    netjail_stats_t stats;
};

static int64_t now_us(void)
{
    return (int64_t)clock_mono_us();
}

const char *netjail_resolv_conf(void)
{
    return "nameserver " NETJAIL_DNS "\noptions edns0\n";
}

/* ---------------------------------------------------------------------------
 * The allowlist
 * ------------------------------------------------------------------------- */

static int parse_endpoint(const char *s, endpoint_t *ep)
{
    char host[64];
    const char *port;
    memset(ep, 0, sizeof(*ep));
    if (strlen(s) >= sizeof(ep->text))
        return -1;
    snprintf(ep->text, sizeof(ep->text), "%s", s);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *end;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (errno != 0 || end == port || *end != '\0' || p < 1 || p > 65535)
        return -1;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ep->sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ep->sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        ep->len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 && !IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr)) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        ep->len = sizeof(*s6);
        return 0;
    }
    return -1;
}

static int endpoint_blocked(const endpoint_t *ep);

int netjail_check_allow(const char *const *allow, char *err, size_t err_len)
{
    endpoint_t seen[NETJAIL_MAX_ALLOW];
    size_t n = 0;
    for (; allow != NULL && allow[n] != NULL; n++) {
        if (n >= NETJAIL_MAX_ALLOW) {
            strbuf_format(err, err_len, "sandbox.egress_allow: more than %d entries", NETJAIL_MAX_ALLOW);
            return -1;
        }
        endpoint_t *ep = &seen[n];
        if (parse_endpoint(allow[n], ep) != 0) {
            strbuf_format(err, err_len, "sandbox.egress_allow: \"%s\" is not an IP literal and port (1.2.3.4:80 or [::1]:80)",
                    allow[n]);
            return -1;
        }
        /* an allowed address becomes local inside the sandbox: a public one
         * is reachable anyway, and would lose its other ports */
        if (!endpoint_blocked(ep)) {
            strbuf_format(err, err_len,
                    "sandbox.egress_allow: \"%s\" is a public address, which the sandbox reaches without it; list "
                    "only loopback, private or link-local destinations",
                    allow[n]);
            return -1;
        }
        for (size_t k = 0; k < n; k++)
            if (seen[k].len == ep->len && memcmp(&seen[k].sa, &ep->sa, ep->len) == 0) {
                strbuf_format(err, err_len, "sandbox.egress_allow: \"%s\" is listed twice", allow[n]);
                return -1;
            }
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * What gets blocked
 * ------------------------------------------------------------------------- */

static const struct {
    int family;
    const char *addr;
    unsigned plen;
} fixed_blocks[] = {
    {AF_INET, "0.0.0.0", 8},        {AF_INET, "10.0.0.0", 8},      {AF_INET, "100.64.0.0", 10},
    {AF_INET, "127.0.0.0", 8},      {AF_INET, "169.254.0.0", 16},  {AF_INET, "172.16.0.0", 12},
    {AF_INET, "192.0.0.0", 24},     {AF_INET, "192.168.0.0", 16},  {AF_INET, "198.18.0.0", 15},
    {AF_INET, "224.0.0.0", 4},      {AF_INET, "240.0.0.0", 4},     {AF_INET6, "fc00::", 7},
    {AF_INET6, "fe80::", 10},       {AF_INET6, "ff00::", 8},       {AF_INET6, "::ffff:0:0", 96},
    {AF_INET6, "64:ff9b::", 96},
};

static void prefix_mask(prefix_t *p)
{
    size_t bytes = p->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned bit = (unsigned)i * 8;
        if (bit >= p->plen)
            p->addr[i] = 0;
        else if (p->plen - bit < 8)
            p->addr[i] &= (unsigned char)(0xff << (8 - (p->plen - bit)));
    }
}

static void add_block(prefix_t *v, unsigned *n, int family, const void *addr, unsigned plen)
{
    prefix_t p;
    memset(&p, 0, sizeof(p));
    p.family = family;
    memcpy(p.addr, addr, family == AF_INET ? 4 : 16);
    p.plen = (unsigned char)plen;
    prefix_mask(&p);
    for (unsigned i = 0; i < *n; i++)
        if (v[i].family == p.family && v[i].plen == p.plen && memcmp(v[i].addr, p.addr, 16) == 0)
            return;
    if (*n < MAX_BLOCKS)
        v[(*n)++] = p;
}

/* Whether the endpoint's address lies in one of the fixed blocked ranges. */
static int endpoint_blocked(const endpoint_t *ep)
{
    int fam = ep->sa.ss_family;
    const unsigned char *a = fam == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)&ep->sa)->sin_addr
                                            : (const unsigned char *)&((const struct sockaddr_in6 *)&ep->sa)->sin6_addr;
    for (size_t i = 0; i < sizeof(fixed_blocks) / sizeof(fixed_blocks[0]); i++) {
        if (fixed_blocks[i].family != fam)
            continue;
        prefix_t want, got;
        memset(&want, 0, sizeof(want));
        memset(&got, 0, sizeof(got));
        want.family = got.family = fam;
        want.plen = got.plen = (unsigned char)fixed_blocks[i].plen;
        if (inet_pton(fam, fixed_blocks[i].addr, want.addr) != 1)
            abort();
        memcpy(got.addr, a, fam == AF_INET ? 4 : 16);
        prefix_mask(&want);
        prefix_mask(&got);
        if (memcmp(want.addr, got.addr, 16) == 0)
            return 1;
    }
    return fam == AF_INET6 && IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a);
}

static unsigned mask_len(const struct sockaddr *m)
{
    const unsigned char *b;
    size_t n;
    if (m == NULL)
        return 0;
    if (m->sa_family == AF_INET) {
        b = (const unsigned char *)&((const struct sockaddr_in *)m)->sin_addr;
        n = 4;
    } else if (m->sa_family == AF_INET6) {
        b = (const unsigned char *)&((const struct sockaddr_in6 *)m)->sin6_addr;
        n = 16;
    } else {
        return 0;
    }
    unsigned len = 0;
    for (size_t i = 0; i < n; i++)
        for (int bit = 7; bit >= 0; bit--) {
            if (!(b[i] & (1u << bit)))
                return len;
            len++;
        }
    return len;
}

/* The fixed ranges plus the host's own addresses (and on-link prefixes). */
static int build_blocks(prefix_t *v, unsigned *n, int keep_subnets, char *err, size_t err_len)
{
    *n = 0;
    for (size_t i = 0; i < sizeof(fixed_blocks) / sizeof(fixed_blocks[0]); i++) {
        unsigned char a[16];
        if (inet_pton(fixed_blocks[i].family, fixed_blocks[i].addr, a) != 1)
            abort();
        add_block(v, n, fixed_blocks[i].family, a, fixed_blocks[i].plen);
    }
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0) {
        strbuf_format(err, err_len, "netjail: cannot list the host's interface addresses (getifaddrs): %s", strerror(errno));
        return -1;
    }
    for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL)
            continue;
        const void *a;
        int fam = i->ifa_addr->sa_family;
        if (fam == AF_INET)
            a = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        else if (fam == AF_INET6)
            a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        else
            continue;
        if (fam == AF_INET6 && (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a)))
            continue; /* local inside anyway / covered by fe80::/10 */
        add_block(v, n, fam, a, fam == AF_INET ? 32 : 128);
        unsigned plen = mask_len(i->ifa_netmask);
        if (!keep_subnets && plen > 0 && plen < (fam == AF_INET ? 32u : 128u))
            add_block(v, n, fam, a, plen);
    }
    freeifaddrs(ifa);
    return 0;
}

/* ---------------------------------------------------------------------------
 * The helper: joins the namespace, routes, addresses, listeners
 * (async-signal-safe only: it may be the child of a multi-threaded process)
 * ------------------------------------------------------------------------- */

enum {
    ST_OK = 0,
    ST_SETNS_USER,
    ST_SETNS_NET,
    ST_NETLINK,
    ST_ROUTE,
    ST_ADDR,
    ST_LO,
    ST_LISTEN,
};

typedef struct {
    int stage;
    int err;
    int index;
    unsigned routes, addresses, listeners;
} helper_report_t;

typedef struct {
    int netns_fd, userns_fd, sock;
    const prefix_t *blocks;
    unsigned nblocks;
    const endpoint_t *ep;
    unsigned nep;
} helper_plan_t;

static int nl_request(int fd, struct nlmsghdr *h, uint32_t seq)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    h->nlmsg_seq = seq;
    h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    union {
        char b[1024];
        struct nlmsghdr h;
    } ans;
    for (;;) {
        ssize_t r = recv(fd, ans.b, sizeof(ans.b), 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (struct nlmsghdr *m = &ans.h; NLMSG_OK(m, (unsigned)r); m = NLMSG_NEXT(m, r)) {
            if (m->nlmsg_seq != seq)
                continue;
            if (m->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(m);
                return e->error; /* 0 is the ACK */
            }
        }
    }
}

static void nl_attr(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static int add_prohibit_route(int fd, const prefix_t *p, uint32_t seq)
{
    union {
        char b[256];
        struct nlmsghdr h;
    } req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.h.nlmsg_type = RTM_NEWROUTE;
    req.h.nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    struct rtmsg *rt = NLMSG_DATA(&req.h);
    rt->rtm_family = (unsigned char)p->family;
    rt->rtm_dst_len = p->plen;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_STATIC;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_PROHIBIT;
    nl_attr(&req.h, RTA_DST, p->addr, p->family == AF_INET ? 4 : 16);
    return nl_request(fd, &req.h, seq);
}

static int add_lo_address(int fd, int lo, const endpoint_t *ep, uint32_t seq)
{
    union {
        char b[256];
        struct nlmsghdr h;
    } req;
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    req.h.nlmsg_type = RTM_NEWADDR;
    req.h.nlmsg_flags = NLM_F_CREATE | NLM_F_REPLACE;
    struct ifaddrmsg *ifa = NLMSG_DATA(&req.h);
    const void *a;
    size_t alen;
    if (ep->sa.ss_family == AF_INET) {
        a = &((const struct sockaddr_in *)&ep->sa)->sin_addr;
        alen = 4;
        ifa->ifa_prefixlen = 32;
    } else {
        a = &((const struct sockaddr_in6 *)&ep->sa)->sin6_addr;
        alen = 16;
        ifa->ifa_prefixlen = 128;
        ifa->ifa_flags = IFA_F_NODAD;
    }
    ifa->ifa_family = (unsigned char)ep->sa.ss_family;
    ifa->ifa_scope = RT_SCOPE_HOST;
    ifa->ifa_index = (unsigned)lo;
    nl_attr(&req.h, IFA_LOCAL, a, alen);
    nl_attr(&req.h, IFA_ADDRESS, a, alen);
    return nl_request(fd, &req.h, seq);
}

/* Whether the namespace's lo already answers for the address. */
static int already_local(const endpoint_t *ep)
{
    if (ep->sa.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&ep->sa)->sin_addr.s_addr) >> 24) == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&ep->sa)->sin6_addr);
}

static void helper_send(int sock, helper_report_t *rep, const int *fds, unsigned nfds)
{
    struct iovec iov = {rep, sizeof(*rep)};
    union {
        char b[CMSG_SPACE(sizeof(int) * NETJAIL_MAX_ALLOW)];
        struct cmsghdr align;
    } cbuf;
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&cbuf, 0, sizeof(cbuf));
        msg.msg_control = cbuf.b;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    (void)w;
}

static void helper_run(const helper_plan_t *p) __attribute__((noreturn));
static void helper_run(const helper_plan_t *p)
{
    helper_report_t rep;
    int fds[NETJAIL_MAX_ALLOW];
    unsigned nfds = 0;
    memset(&rep, 0, sizeof(rep));
    rep.index = -1;

    /* As root this works directly; otherwise join the owning user namespace first. */
    if (setns(p->netns_fd, CLONE_NEWNET) != 0) {
        if (errno != EPERM || p->userns_fd < 0) {
            rep.stage = ST_SETNS_NET;
            goto fail;
        }
        if (setns(p->userns_fd, CLONE_NEWUSER) != 0) {
            rep.stage = ST_SETNS_USER;
            goto fail;
        }
        if (setns(p->netns_fd, CLONE_NEWNET) != 0) {
            rep.stage = ST_SETNS_NET;
            goto fail;
        }
    }
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (nl < 0) {
        rep.stage = ST_NETLINK;
        goto fail;
    }
    uint32_t seq = 1;
    for (unsigned i = 0; i < p->nblocks; i++) {
        int r = add_prohibit_route(nl, &p->blocks[i], seq++);
        if (r == -EEXIST)
            continue;
        if (r == -EAFNOSUPPORT && p->blocks[i].family == AF_INET6)
            continue; /* IPv6 off in this namespace: nothing to block */
        if (r != 0) {
            errno = -r;
            rep.stage = ST_ROUTE;
            rep.index = (int)i;
            goto fail;
        }
        rep.routes++;
    }
    int lo = -1;
    for (unsigned i = 0; i < p->nep; i++) {
        if (already_local(&p->ep[i]))
            continue;
        if (lo < 0) {
            struct ifreq ifr;
            memset(&ifr, 0, sizeof(ifr));
            memcpy(ifr.ifr_name, "lo", 3);
            int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (s < 0 || ioctl(s, SIOCGIFINDEX, &ifr) != 0) {
                rep.stage = ST_LO;
                goto fail;
            }
            close(s);
            lo = ifr.ifr_ifindex;
        }
        int r = add_lo_address(nl, lo, &p->ep[i], seq++);
        if (r != 0 && r != -EEXIST) {
            errno = -r;
            rep.stage = ST_ADDR;
            rep.index = (int)i;
            goto fail;
        }
        rep.addresses++;
    }
    close(nl);
    for (unsigned i = 0; i < p->nep; i++) {
        int one = 1;
        int s = socket(p->ep[i].sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            (p->ep[i].sa.ss_family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
            bind(s, (const struct sockaddr *)&p->ep[i].sa, p->ep[i].len) != 0 || listen(s, 64) != 0) {
            rep.stage = ST_LISTEN;
            rep.index = (int)i;
            goto fail;
        }
        fds[nfds++] = s;
    }
    rep.listeners = nfds;
    rep.stage = ST_OK;
    helper_send(p->sock, &rep, fds, nfds);
    _exit(0);
fail:
    rep.err = errno;
    helper_send(p->sock, &rep, NULL, 0);
    _exit(1);
}

static void prefix_text(const prefix_t *p, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(p->family, p->addr, a, sizeof(a));
    snprintf(buf, len, "%s/%u", a, p->plen);
}

/* Runs the helper; fills nj->lfd. */
static int configure_namespace(netjail_t *nj, int netns_fd, int userns_fd, const prefix_t *blocks, unsigned nblocks,
                               char *err, size_t err_len)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        strbuf_format(err, err_len, "netjail: socketpair: %s", strerror(errno));
        return -1;
    }
    helper_plan_t plan = {netns_fd, userns_fd, sv[1], blocks, nblocks, nj->ep, nj->nep};
    pid_t pid = fork();
    if (pid < 0) {
        strbuf_format(err, err_len, "netjail: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        helper_run(&plan);
    }
    close(sv[1]);

    helper_report_t rep;
    union {
        char b[CMSG_SPACE(sizeof(int) * NETJAIL_MAX_ALLOW)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {&rep, sizeof(rep)};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    memset(&rep, 0, sizeof(rep));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.b;
    msg.msg_controllen = sizeof(cbuf.b);
    ssize_t r;
    do
        r = recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    int saved = errno;
    close(sv[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    unsigned got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); r > 0 && c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            unsigned n = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (unsigned i = 0; i < n && got < NETJAIL_MAX_ALLOW; i++)
                memcpy(&nj->lfd[got++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    }
    if (r != (ssize_t)sizeof(rep)) {
        strbuf_format(err, err_len, "netjail: the namespace helper died without a report (%s)",
                r < 0 ? strerror(saved) : "short read");
        return -1;
    }
    if (rep.stage != ST_OK || got != nj->nep) {
        char what[160] = "";
        switch (rep.stage) {
        case ST_SETNS_USER:
            snprintf(what, sizeof(what), "joining the sandbox's user namespace (setns CLONE_NEWUSER)");
            break;
        case ST_SETNS_NET:
            snprintf(what, sizeof(what), "joining the sandbox's network namespace (setns CLONE_NEWNET)");
            break;
        case ST_NETLINK:
            snprintf(what, sizeof(what), "opening an rtnetlink socket");
            break;
        case ST_ROUTE: {
            char t[64] = "?";
            if (rep.index >= 0 && (unsigned)rep.index < nblocks)
                prefix_text(&blocks[rep.index], t, sizeof(t));
            snprintf(what, sizeof(what), "adding the prohibit route %s", t);
            break;
        }
        case ST_ADDR:
            snprintf(what, sizeof(what), "adding %s to the sandbox's lo",
                     rep.index >= 0 && (unsigned)rep.index < nj->nep ? nj->ep[rep.index].text : "?");
            break;
        case ST_LO:
            snprintf(what, sizeof(what), "finding the sandbox's lo");
            break;
        case ST_LISTEN:
            snprintf(what, sizeof(what), "listening on %s inside the sandbox",
                     rep.index >= 0 && (unsigned)rep.index < nj->nep ? nj->ep[rep.index].text : "?");
            break;
        default:
            snprintf(what, sizeof(what), "receiving the listening sockets (%u of %u)", got, nj->nep);
            break;
        }
        strbuf_format(err, err_len, "netjail: %s failed: %s", what, rep.err ? strerror(rep.err) : "no detail");
        for (unsigned i = 0; i < got; i++)
            fdutil_close(&nj->lfd[i]);
        return -1;
    }
    nj->stats.routes = rep.routes;
    nj->stats.addresses = rep.addresses;
    nj->stats.listeners = rep.listeners;
    return 0;
}

/* ---------------------------------------------------------------------------
 * slirp4netns
 * ------------------------------------------------------------------------- */

int netjail_find_slirp(char *path, size_t len, const char *configured, char *err, size_t err_len)
{
    static const char *const places[] = {"/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", "/bin/slirp4netns", NULL};
    if (configured != NULL) {
        if (fdutil_is_executable(configured)) {
            snprintf(path, len, "%s", configured);
            return 0;
        }
        strbuf_format(err, err_len, "network isolation needs slirp4netns, but %s is not an executable file", configured);
        return -1;
    }
    for (size_t i = 0; places[i] != NULL; i++)
        if (fdutil_is_executable(places[i])) {
            snprintf(path, len, "%s", places[i]);
            return 0;
        }
    strbuf_format(err, err_len,
            "network isolation needs slirp4netns, which is not installed (Debian/Ubuntu package slirp4netns); "
            "refusing to run with the network on");
    return -1;
}

/* The last two lines slirp4netns wrote ("open(\"/dev/net/tun\"): Permission
 * denied; child failed(1)"), for error messages. */
static void slirp_said(int log_fd, char *out, size_t len)
{
    char buf[4096];
    out[0] = '\0';
    off_t size = lseek(log_fd, 0, SEEK_END);
    if (size <= 0 || len < 2)
        return;
    off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, from);
    if (n <= 0)
        return;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *last = strrchr(buf, '\n');
    const char *start = buf;
    if (last != NULL) {
        *last = '\0';
        char *prev = strrchr(buf, '\n');
        *last = ';';
        start = prev ? prev + 1 : buf;
    }
    size_t k = 0;
    for (const char *c = start; *c && k + 2 < len; c++) {
        out[k++] = *c == '\n' ? ' ' : *c;
        if (*c == ';' && k + 2 < len)
            out[k++] = ' ';
    }
    out[k] = '\0';
}

typedef struct {
    const char *path;
    char *const *argv;
    int ready_w, exit_r, netns_fd, userns_fd, log_fd, err_w; /* all >= 10, close-on-exec */
    pid_t parent;
} slirp_plan_t;

static void slirp_child(const slirp_plan_t *p) __attribute__((noreturn));
static void slirp_child(const slirp_plan_t *p)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0); /* its own group: stop_slirp kills whatever it forked too */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != p->parent)
        _exit(127);
    int dev_null = open("/dev/null", O_RDONLY);
    if (dev_null < 0 || dup2(dev_null, 0) < 0 || dup2(p->log_fd, 1) < 0 || dup2(p->log_fd, 2) < 0 ||
        dup2(p->ready_w, 3) < 0 || dup2(p->exit_r, 4) < 0 || dup2(p->netns_fd, 5) < 0 ||
        (p->userns_fd >= 0 && dup2(p->userns_fd, 6) < 0))
        goto fail;
    if (syscall(SYS_close_range, 7u, ~0U, 4u /* CLOSE_RANGE_CLOEXEC */) != 0)
        goto fail;
    execv(p->path, p->argv);
fail:;
    int e = errno;
    ssize_t w = write(p->err_w, &e, sizeof(e));
    (void)w;
    _exit(127);
}

static int start_slirp(netjail_t *nj, const char *path, int netns_fd, int userns_fd, int timeout_ms, char *err,
                       size_t err_len)
{
    int rc = -1, ready_r = -1, ready_w = -1, exit_r = -1, err_r = -1, err_w = -1, hi_netns = -1, hi_userns = -1;
    int p[2];
    int root = geteuid() == 0;
    int64_t t0 = now_us();

    nj->log_fd = memfd_create("slirp4netns-log", MFD_CLOEXEC);
    if (nj->log_fd >= 0)
        nj->log_fd = fdutil_raise(nj->log_fd, NETJAIL_FD_LOW);
    if (pipe2(p, O_CLOEXEC) != 0)
        goto sys_fail;
    ready_r = fdutil_raise(p[0], NETJAIL_FD_LOW);
    ready_w = fdutil_raise(p[1], NETJAIL_FD_LOW);
    if (pipe2(p, O_CLOEXEC) != 0)
        goto sys_fail;
    exit_r = fdutil_raise(p[0], NETJAIL_FD_LOW);
    nj->exit_w = fdutil_raise(p[1], NETJAIL_FD_LOW);
    if (pipe2(p, O_CLOEXEC) != 0)
        goto sys_fail;
    err_r = fdutil_raise(p[0], NETJAIL_FD_LOW);
    err_w = fdutil_raise(p[1], NETJAIL_FD_LOW);
    hi_netns = fcntl(netns_fd, F_DUPFD_CLOEXEC, NETJAIL_FD_LOW);
    hi_userns = userns_fd >= 0 && !root ? fcntl(userns_fd, F_DUPFD_CLOEXEC, NETJAIL_FD_LOW) : -1;
    if (nj->log_fd < 0 || ready_r < 0 || ready_w < 0 || exit_r < 0 || nj->exit_w < 0 || err_r < 0 || err_w < 0 ||
        hi_netns < 0 || (!root && userns_fd >= 0 && hi_userns < 0))
        goto sys_fail;

    /* As root: no user namespace to join, and slirp4netns may sandbox itself
     * (mount namespace, capabilities dropped) and filter its syscalls. As a
     * user, --enable-sandbox needs the target's pid, which we do not pass. */
    const char *argv[16];
    int n = 0;
    argv[n++] = "slirp4netns";
    argv[n++] = "--configure";
    argv[n++] = "--mtu=65520";
    argv[n++] = "--disable-host-loopback";
    argv[n++] = "--ready-fd=3";
    argv[n++] = "--exit-fd=4";
    argv[n++] = "--netns-type=path";
    if (root) {
        argv[n++] = "--enable-sandbox";
        argv[n++] = "--enable-seccomp";
    } else if (hi_userns >= 0) {
        argv[n++] = "--userns-path=/proc/self/fd/6";
    }
    argv[n++] = "/proc/self/fd/5";
    argv[n++] = "tap0";
    argv[n] = NULL;

    slirp_plan_t plan = {path, (char *const *)argv, ready_w, exit_r, hi_netns, hi_userns, nj->log_fd, err_w, getpid()};
    pid_t pid = fork();
    if (pid < 0)
        goto sys_fail;
    if (pid == 0)
        slirp_child(&plan);
    setpgid(pid, pid);
    nj->slirp_pid = pid;
    nj->slirp_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    fdutil_close(&ready_w);
    fdutil_close(&exit_r);
    fdutil_close(&err_w);
    fdutil_close(&hi_netns);
    fdutil_close(&hi_userns);

    int e = 0;
    ssize_t r = read(err_r, &e, sizeof(e));
    if (r == (ssize_t)sizeof(e)) {
        strbuf_format(err, err_len, "netjail: cannot execute %s: %s", path, strerror(e));
        goto done;
    }

    /* the ready byte, slirp4netns' death, or the timeout */
    int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int64_t left = (deadline - now_us()) / 1000;
        if (left <= 0) {
            char said[200];
            slirp_said(nj->log_fd, said, sizeof(said));
            strbuf_format(err, err_len, "netjail: slirp4netns was not ready within %d ms (%s)", timeout_ms,
                    said[0] ? said : "no message");
            goto done;
        }
        struct pollfd pfd[2] = {{ready_r, POLLIN, 0}, {nj->slirp_pidfd, POLLIN, 0}};
        int pr = poll(pfd, nj->slirp_pidfd >= 0 ? 2 : 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            goto sys_fail;
        if (pfd[0].revents) {
            char c = 0;
            r = read(ready_r, &c, 1);
            if (r == 1 && c == '1')
                break;
        }
        if (pfd[0].revents || (pr > 0 && pfd[1].revents)) {
            char said[200];
            slirp_said(nj->log_fd, said, sizeof(said));
            strbuf_format(err, err_len, "netjail: slirp4netns failed to start (%s)", said[0] ? said : "no message");
            goto done;
        }
    }
    nj->stats.slirp_ready_us = now_us() - t0;
    nj->slirp_ready = 1;
    rc = 0;
    goto done;
sys_fail:
    strbuf_format(err, err_len, "netjail: starting slirp4netns: %s", strerror(errno));
done:
    fdutil_close(&ready_r);
    fdutil_close(&ready_w);
    fdutil_close(&exit_r);
    fdutil_close(&err_r);
    fdutil_close(&err_w);
    fdutil_close(&hi_netns);
    fdutil_close(&hi_userns);
    return rc;
}

static void stop_slirp(netjail_t *nj)
{
    fdutil_close(&nj->exit_w); /* POLLHUP at its --exit-fd: it exits by itself */
    if (nj->slirp_pid > 0) {
        /* It has nothing to save, and on its exit-fd it takes ~20 ms to
         * notice: its whole group goes now (forked children included). */
        kill(-nj->slirp_pid, SIGKILL);
        while (waitpid(nj->slirp_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        nj->slirp_pid = -1;
    }
    fdutil_close(&nj->slirp_pidfd);
    fdutil_close(&nj->log_fd);
}

/* ---------------------------------------------------------------------------
 * The relay: accepts inside, connects from the host's namespace
 * ------------------------------------------------------------------------- */

static void conn_free(conn_t *c, int reset_inside)
{
    if (reset_inside && c->in_fd >= 0) {
        struct linger l = {1, 0}; /* RST: the client sees ECONNRESET at once, not a hang */
        setsockopt(c->in_fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    fdutil_close(&c->in_fd);
    fdutil_close(&c->out_fd);
    free(c->buf[0]);
    free(c->buf[1]);
    free(c);
}

static void relay_accept(netjail_t *nj, unsigned ep, conn_t **list, unsigned *nconns)
{
    for (;;) {
        if (*nconns >= nj->max_conns)
            return;
        int in = accept4(nj->lfd[ep], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (in < 0)
            return;
        conn_t *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(in);
            continue;
        }
        c->in_fd = in;
        c->ep = ep;
        c->out_fd = socket(nj->ep[ep].sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        c->buf[0] = malloc(RELAY_BUF_BYTES);
        c->buf[1] = malloc(RELAY_BUF_BYTES);
        if (c->out_fd < 0 || c->buf[0] == NULL || c->buf[1] == NULL) {
            conn_free(c, 1);
            continue;
        }
        int one = 1;
        setsockopt(c->out_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(c->in_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->out_fd, (const struct sockaddr *)&nj->ep[ep].sa, nj->ep[ep].len) != 0) {
            if (errno != EINPROGRESS) {
                conn_free(c, 1);
                continue;
            }
            c->connecting = 1;
            c->deadline_us = now_us() + (int64_t)nj->connect_timeout_ms * 1000;
        }
        c->next = *list;
        *list = c;
        (*nconns)++;
    }
}

/* Moves bytes for one direction d (0: in -> out, 1: out -> in); -1 when the pair must close. */
static int relay_dir(conn_t *c, int d, short rev_src)
{
    int src = d == 0 ? c->in_fd : c->out_fd;
    int dst = d == 0 ? c->out_fd : c->in_fd;
    if (c->len[d] == 0 && !c->eof[d] && (rev_src & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = recv(src, c->buf[d], RELAY_BUF_BYTES, 0);
        if (r > 0) {
            c->len[d] = (size_t)r;
            c->off[d] = 0;
        } else if (r == 0) {
            c->eof[d] = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (c->len[d] > 0) { /* try at once; EAGAIN just waits for POLLOUT */
        ssize_t w = send(dst, c->buf[d] + c->off[d], c->len[d] - c->off[d], MSG_NOSIGNAL);
        if (w > 0) {
            c->off[d] += (size_t)w;
            if (c->off[d] == c->len[d])
                c->len[d] = c->off[d] = 0;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        }
    }
    if (c->eof[d] && c->len[d] == 0 && !c->shut[d]) {
        shutdown(dst, SHUT_WR);
        c->shut[d] = 1;
    }
    return 0;
}

static void *relay_main(void *arg)
{
    netjail_t *nj = arg;
    conn_t *list = NULL;
    unsigned nconns = 0;
    size_t cap = 1 + NETJAIL_MAX_ALLOW + 2 * (size_t)nj->max_conns;
    struct pollfd *pfd = calloc(cap, sizeof(*pfd));
    conn_t **owner = calloc(cap, sizeof(*owner));
    if (pfd == NULL || owner == NULL)
        goto out; /* the listeners stay open: connections queue and time out inside */

    for (;;) {
        nfds_t n = 0;
        int64_t now = now_us(), next_deadline = 0;
        pfd[n++] = (struct pollfd){nj->wake[0], POLLIN, 0};
        for (unsigned i = 0; i < nj->nep; i++) {
            owner[n] = NULL;
            pfd[n++] = (struct pollfd){nj->lfd[i], (short)(nconns < nj->max_conns ? POLLIN : 0), 0};
        }
        for (conn_t *c = list; c != NULL; c = c->next) {
            short ein = 0, eout = 0;
            if (c->connecting) {
                eout = POLLOUT;
                if (next_deadline == 0 || c->deadline_us < next_deadline)
                    next_deadline = c->deadline_us;
            } else {
                if (c->len[0] == 0 && !c->eof[0])
                    ein |= POLLIN;
                if (c->len[0] > 0)
                    eout |= POLLOUT;
                if (c->len[1] == 0 && !c->eof[1])
                    eout |= POLLIN;
                if (c->len[1] > 0)
                    ein |= POLLOUT;
            }
            owner[n] = c;
            pfd[n++] = (struct pollfd){c->in_fd, ein, 0};
            owner[n] = c;
            pfd[n++] = (struct pollfd){c->out_fd, eout, 0};
        }
        int timeout = -1;
        if (next_deadline) {
            int64_t ms = (next_deadline - now) / 1000 + 1;
            timeout = ms < 0 ? 0 : (int)ms;
        }
        int pr = poll(pfd, n, timeout);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0 && pfd[0].revents)
            break; /* netjail_stop */
        now = now_us();
        for (unsigned i = 0; pr > 0 && i < nj->nep; i++)
            if (pfd[1 + i].revents & POLLIN)
                relay_accept(nj, i, &list, &nconns);
        /* connections: walk the pollfd pairs made above */
        for (nfds_t k = 1 + nj->nep; k + 1 < n; k += 2) {
            conn_t *c = owner[k];
            short rin = pr > 0 ? pfd[k].revents : 0, rout = pr > 0 ? pfd[k + 1].revents : 0;
            int drop = 0, reset = 0;
            if (c->connecting) {
                if (rout) {
                    int soerr = 0;
                    socklen_t sl = sizeof(soerr);
                    getsockopt(c->out_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                    if (soerr != 0)
                        drop = reset = 1; /* destination down: RST inside, at once */
                    else
                        c->connecting = 0;
                } else if (now >= c->deadline_us) {
                    drop = reset = 1;
                } else if (rin & (POLLHUP | POLLERR)) {
                    drop = 1;
                }
            } else if (relay_dir(c, 0, rin) != 0 || relay_dir(c, 1, rout) != 0) {
                drop = reset = 1;
            } else if (c->shut[0] && c->shut[1]) {
                drop = 1;
            }
            if (drop) {
                for (conn_t **pp = &list; *pp != NULL; pp = &(*pp)->next)
                    if (*pp == c) {
                        *pp = c->next;
                        break;
                    }
                conn_free(c, reset);
                nconns--;
            }
        }
    }
out:
    while (list != NULL) {
        conn_t *c = list;
        list = c->next;
        conn_free(c, 1);
    }
    free(pfd);
    free(owner);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------- */

/* bwrap reports its child before that child has set up the new namespace's
 * lo (an RTM_NEWADDR of 127.0.0.1/8 with NLM_F_EXCL). slirp4netns
 * --configure brings lo up, and the kernel then gives lo 127.0.0.1 itself:
 * a slirp that came first made bwrap's request fail ("loopback: Failed
 * RTM_NEWADDR") and the sandbox die before its command, seen as "cannot
 * release the sandbox" on a loaded machine. So slirp waits for the address:
 * its local route in the namespace's own /proc/PID/net/fib_trie. Bounded;
 * when the file cannot be read, or bwrap never gets there (it died: the
 * release says so), netjail goes on as before. */
static void wait_for_loopback(pid_t pid, int timeout_ms)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/net/fib_trie", (int)pid);
    int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;
    do {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
            return;
        buf[n] = '\0';
        if (strstr(buf, "127.0.0.1") != NULL)
            return;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    } while (now_us() < deadline);
}

int netjail_start(netjail_t **out, pid_t sandbox_pid, const netjail_opts_t *o, char *err, size_t err_len)
{
    int64_t t0 = now_us();
    char slirp[PATH_MAX], path[64];
    int netns_fd = -1, userns_fd = -1;
    prefix_t *blocks = NULL;
    unsigned nblocks = 0;
    netjail_t *nj = NULL;

    *out = NULL;
    if (sandbox_pid <= 1) {
        strbuf_format(err, err_len, "netjail: no sandbox process");
        return -1;
    }
    if (netjail_check_allow(o->allow, err, err_len) != 0)
        return -1;
    if (netjail_find_slirp(slirp, sizeof(slirp), o->slirp4netns_path, err, err_len) != 0)
        return -1;
    nj = calloc(1, sizeof(*nj));
    blocks = calloc(MAX_BLOCKS, sizeof(*blocks));
    if (nj == NULL || blocks == NULL) {
        strbuf_format(err, err_len, "netjail: out of memory");
        goto fail;
    }
    nj->slirp_pid = -1;
    nj->slirp_pidfd = nj->exit_w = nj->log_fd = nj->wake[0] = nj->wake[1] = -1;
    for (unsigned i = 0; i < NETJAIL_MAX_ALLOW; i++)
        nj->lfd[i] = -1;
    nj->max_conns = o->max_conns ? o->max_conns : NETJAIL_DEFAULT_MAX_CONNS;
    nj->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : NETJAIL_DEFAULT_CONNECT_TIMEOUT_MS;
    for (; o->allow != NULL && o->allow[nj->nep] != NULL; nj->nep++)
        parse_endpoint(o->allow[nj->nep], &nj->ep[nj->nep]);

    if (build_blocks(blocks, &nblocks, o->keep_host_subnets, err, err_len) != 0)
        goto fail;

    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)sandbox_pid);
    netns_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
        strbuf_format(err, err_len, "netjail: cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat mine, theirs;
    if (stat("/proc/self/ns/net", &mine) == 0 && fstat(netns_fd, &theirs) == 0 && mine.st_ino == theirs.st_ino &&
        mine.st_dev == theirs.st_dev) {
        strbuf_format(err, err_len, "netjail: the sandbox shares the host's network namespace (bwrap needs --unshare-net)");
        goto fail;
    }
    userns_fd = ioctl(netns_fd, NS_GET_USERNS);
    if (userns_fd >= 0)
        fcntl(userns_fd, F_SETFD, FD_CLOEXEC);
    else if (geteuid() != 0) {
        strbuf_format(err, err_len, "netjail: cannot find the user namespace owning %s (NS_GET_USERNS): %s", path,
                strerror(errno));
        goto fail;
    }

    int timeout = o->ready_timeout_ms > 0 ? o->ready_timeout_ms : NETJAIL_DEFAULT_READY_TIMEOUT_MS;
    wait_for_loopback(sandbox_pid, timeout);
    if (start_slirp(nj, slirp, netns_fd, userns_fd, timeout, err, err_len) != 0)
        goto fail;
    int64_t t1 = now_us();
    if (configure_namespace(nj, netns_fd, userns_fd, blocks, nblocks, err, err_len) != 0)
        goto fail;
    nj->stats.configure_us = now_us() - t1;

    if (pipe2(nj->wake, O_CLOEXEC) != 0) {
        strbuf_format(err, err_len, "netjail: pipe: %s", strerror(errno));
        goto fail;
    }
    if (nj->nep > 0) {
        int e = pthread_create(&nj->relay, NULL, relay_main, nj);
        if (e != 0) {
            strbuf_format(err, err_len, "netjail: cannot start the relay thread: %s", strerror(e));
            goto fail;
        }
        nj->relay_started = 1;
    }
    close(netns_fd);
    fdutil_close(&userns_fd);
    free(blocks);
    nj->stats.total_us = now_us() - t0;
    *out = nj;
    return 0;
fail:
    if (netns_fd >= 0)
        close(netns_fd);
    fdutil_close(&userns_fd);
    free(blocks);
    netjail_stop(nj);
    return -1;
}

void netjail_get_stats(const netjail_t *nj, netjail_stats_t *st)
{
    *st = nj->stats;
}

void netjail_stop(netjail_t *nj)
{
    if (nj == NULL)
        return;
    if (nj->relay_started) {
        char c = 'x';
        ssize_t w = write(nj->wake[1], &c, 1);
        (void)w;
        pthread_join(nj->relay, NULL);
    }
    fdutil_close(&nj->wake[0]);
    fdutil_close(&nj->wake[1]);
    for (unsigned i = 0; i < NETJAIL_MAX_ALLOW; i++)
        fdutil_close(&nj->lfd[i]);
    stop_slirp(nj);
    free(nj);
}
