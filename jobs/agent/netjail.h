/*
 * netjail — outbound-only networking for one bubblewrap sandbox.
 *
 * The sandbox is started with its own network namespace (bwrap --unshare-net,
 * or --unshare-all without --share-net) and held before exec with --block-fd;
 * bwrap's --info-fd tells its "child-pid". netjail_start then, before the
 * caller releases the block:
 *
 *   1. runs slirp4netns on that namespace (user-mode NAT: tap0 = 10.0.2.100,
 *      gateway 10.0.2.2, DNS 10.0.2.3, --disable-host-loopback) and waits for
 *      its ready byte;
 *   2. forks a short-lived helper that joins the namespace (and, when patchbay
 *      is not root, the user namespace that owns it) and, over rtnetlink:
 *        - adds `prohibit` routes for the loopback/link-local/private/CGNAT/
 *          multicast/reserved ranges, for every address of the host's own
 *          interfaces (/32, /128) and, unless told not to, for the host's
 *          on-link prefixes; 10.0.2.0/24 (slirp's own) stays reachable
 *          because its link route is more specific;
 *        - puts every allowed private destination address on the
 *          namespace's `lo` (127.x and ::1 already are);
 *        - creates one listening TCP socket per allowed ip:port inside the
 *          namespace, and hands them back over SCM_RIGHTS;
 *   3. starts a relay thread that accepts on those listeners (still in the
 *      sandbox's namespace) and connects to the same ip:port from the host's
 *      namespace, copying bytes both ways through bounded buffers.
 *
 * Inside, a connection to an allowed ip:port reaches the host-side service;
 * any other port of that address is refused (RST, the address is local);
 * every other address of those ranges fails at once (EACCES from the
 * prohibit route). The sandboxed command has no CAP_NET_ADMIN in the user
 * namespace that owns its network namespace, so it cannot change any of it.
 *
 * The sandbox must see a resolv.conf that names slirp's DNS (nameserver
 * 10.0.2.3): the host's own resolver is usually a private or loopback
 * address, which the routes above block. netjail_resolv_conf() gives the text.
 *
 * Not root: slirp4netns needs /dev/net/tun readable and writable by
 * patchbay's user (Debian makes it 0666; some hosts 0600), and the helper
 * joins the owning user namespace first (below).
 *
 * Threads: netjail_start and netjail_stop are called from one thread per
 * jail; many jails may run at once; the relay is a thread of its own. netjail_start forks twice (slirp4netns,
 * the helper); both children make only async-signal-safe calls before exec
 * or _exit, so the caller may be multi-threaded.
 */
#ifndef PATCHBAY_NETJAIL_H
#define PATCHBAY_NETJAIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NETJAIL_MAX_ALLOW 32
#define NETJAIL_DEFAULT_READY_TIMEOUT_MS 5000
#define NETJAIL_DEFAULT_MAX_CONNS 64
#define NETJAIL_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define NETJAIL_DNS "10.0.2.3"

typedef struct {
    const char *const *allow;      /* "1.2.3.4:80", "[::1]:11434"; NULL-terminated, may be NULL */
    const char *slirp4netns_path;  /* NULL: /usr/bin, /usr/local/bin, /bin */
    int keep_host_subnets;         /* 1: block only the host's addresses, not their on-link prefixes */
    int ready_timeout_ms;          /* 0: NETJAIL_DEFAULT_READY_TIMEOUT_MS */
    int connect_timeout_ms;        /* relay's connect to the real destination; 0: default */
    unsigned max_conns;            /* relayed connections at once; 0: NETJAIL_DEFAULT_MAX_CONNS */
} netjail_opts_t;

typedef struct {
    int64_t slirp_ready_us;   /* spawn to ready byte */
    int64_t configure_us;     /* helper: routes, addresses, listeners */
    int64_t total_us;         /* all of netjail_start */
    unsigned routes;          /* prohibit routes added */
    unsigned addresses;       /* addresses added to lo */
    unsigned listeners;
} netjail_stats_t;

typedef struct netjail netjail_t;

/* Validates the allowlist entries without starting anything: IP literal and
 * port, in one of the blocked ranges (a public address needs no entry), no
 * duplicates. 0, or -1 with the offending entry named in err. */
int netjail_check_allow(const char *const *allow, char *err, size_t err_len);

/* slirp4netns' path into path (configured, or the default places): 0, or -1
 * with "slirp4netns is not installed (Debian package slirp4netns)..." in err. */
int netjail_find_slirp(char *path, size_t len, const char *configured, char *err, size_t err_len);

/* Jails the network namespace of sandbox_pid (bwrap's child-pid, still
 * blocked). 0 and *out, or -1 with a one-line reason in err and everything
 * that was started stopped again. On failure the caller must kill the
 * sandbox, not release it. */
int netjail_start(netjail_t **out, pid_t sandbox_pid, const netjail_opts_t *o, char *err, size_t err_len);

void netjail_get_stats(const netjail_t *nj, netjail_stats_t *st);

/* Stops the relay (closing every relayed connection) and slirp4netns, frees
 * everything. NULL is fine. */
void netjail_stop(netjail_t *nj);

/* "nameserver 10.0.2.3\n..." for the sandbox's /etc/resolv.conf. */
const char *netjail_resolv_conf(void);

#endif
