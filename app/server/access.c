/* access — see access.h. */
#include "access.h"
#include "respond.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

/* The name of a Host value: "[::1]:3000" -> "::1", "Example.COM:443" ->
 * "Example.COM", "localhost." -> "localhost". 0 when it is not one. */
static int host_name(const char *host, size_t len, const char **name, size_t *name_len)
{
    const char *end = host + len;
    if (len > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (close == NULL || (close + 1 != end && close[1] != ':'))
            return 0;
        *name = host + 1;
        *name_len = (size_t)(close - host - 1);
        return *name_len > 0;
    }
    const char *colon = memchr(host, ':', len);
    *name = host;
    *name_len = colon ? (size_t)(colon - host) : len;
    if (*name_len > 1 && host[*name_len - 1] == '.') /* the absolute form of the same name */
        (*name_len)--;
    return *name_len > 0 && *name_len < ACCESS_HOST_MAX_BYTES;
}

int access_name_is_loopback(const char *name, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Whether name[0..len) is the address literal `local` is (an IPv4 client of
 * a dual-stack socket arrives on ::ffff:a.b.c.d and names a.b.c.d). */
static int name_is_address(const char *name, size_t len, const struct sockaddr *local)
{
    char buf[64];
    if (local == NULL || len == 0 || len >= sizeof(buf))
        return 0;
    memcpy(buf, name, len);
    buf[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        if (local->sa_family == AF_INET)
            return memcmp(&((const struct sockaddr_in *)local)->sin_addr, &a4, sizeof(a4)) == 0;
        if (local->sa_family != AF_INET6)
            return 0;
        const struct in6_addr *l6 = &((const struct sockaddr_in6 *)local)->sin6_addr;
        return IN6_IS_ADDR_V4MAPPED(l6) && memcmp(&l6->s6_addr[12], &a4, sizeof(a4)) == 0;
    }
    return local->sa_family == AF_INET6 && inet_pton(AF_INET6, buf, &a6) == 1 &&
           memcmp(&((const struct sockaddr_in6 *)local)->sin6_addr, &a6, sizeof(a6)) == 0;
}

void access_init(access_t *a, const config_t *cfg)
{
    memset(a, 0, sizeof(*a));
    const char *url = cfg->server.public_url;
    if (url == NULL)
        return;
    const char *p = strstr(url, "://"); /* config.c checked it is http(s):// */
    if (p == NULL)
        return;
    p += 3;
    size_t len = strcspn(p, "/?#");
    const char *at = memchr(p, '@', len); /* user info is no part of the name */
    if (at != NULL) {
        len -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    const char *name;
    size_t n;
    if (!host_name(p, len, &name, &n))
        return;
    for (size_t i = 0; i < n; i++)
        a->public_host[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    a->public_host[n] = '\0';
}

int access_host_allowed(const access_t *a, const char *host, size_t len, const struct sockaddr *local)
{
    const char *name;
    size_t n;
    if (host == NULL || !host_name(host, len, &name, &n))
        return 0;
    if (access_name_is_loopback(name, n) || name_is_address(name, n, local))
        return 1;
    return a->public_host[0] != '\0' && n == strlen(a->public_host) && strncasecmp(name, a->public_host, n) == 0;
}

int access_refuse_host(const access_t *a, h2o_req_t *req)
{
    struct sockaddr_storage local;
    socklen_t local_len = 0;
    if (req->conn->callbacks->get_sockname != NULL)
        local_len = req->conn->callbacks->get_sockname(req->conn, (struct sockaddr *)&local);
    if (access_host_allowed(a, req->input.authority.base, req->input.authority.len,
                            local_len > 0 ? (struct sockaddr *)&local : NULL))
        return 0;
    respond_json(req, 421, "error",
                 "patchbay answers here only to its PUBLIC_URL's host name and to localhost; set PUBLIC_URL to "
                 "the address you use");
    return 1;
}
