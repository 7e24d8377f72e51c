/* redisconn — see redisconn.h. */
#include "redisconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

void redisconn_url_free(redisconn_url_t *u)
{
    free(u->host);
    free(u->path);
    free(u->username);
    free(u->password);
    memset(u, 0, sizeof(*u));
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 10000)
        return -1;
    *db = (int)v;
    return 0;
}

/* "[user]:password@" at the front of rest; advances past it. */
static int parse_userinfo(redisconn_url_t *u, const char **rest, const char *stop)
{
    const char *at = memchr(*rest, '@', (size_t)(stop - *rest));
    if (at == NULL)
        return 0;
    const char *colon = memchr(*rest, ':', (size_t)(at - *rest));
    if (colon == NULL)
        return -1;
    if (colon > *rest && (u->username = dup_n(*rest, (size_t)(colon - *rest))) == NULL)
        return -1;
    if ((u->password = dup_n(colon + 1, (size_t)(at - colon - 1))) == NULL)
        return -1;
    *rest = at + 1;
    return 0;
}

int redisconn_url_parse(redisconn_url_t *out, const char *url, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    const char *rest;
    if (strncmp(url, "unix://", 7) == 0) {
        rest = url + 7;
        const char *q = strchr(rest, '?');
        const char *end = q ? q : rest + strlen(rest);
        if (parse_userinfo(out, &rest, end) != 0)
            goto bad;
        if (*rest != '/' || rest == end)
            goto bad;
        if ((out->path = dup_n(rest, (size_t)(end - rest))) == NULL)
            goto bad;
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &out->db) != 0)
                goto bad;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
        const char *slash = strchr(rest, '/');
        const char *end = slash ? slash : rest + strlen(rest);
        if (parse_userinfo(out, &rest, end) != 0)
            goto bad;
        const char *colon = NULL;
        const char *hostend = end;
        if (*rest == '[') { /* [::1]:6379 */
            const char *close = memchr(rest, ']', (size_t)(end - rest));
            if (close == NULL)
                goto bad;
            out->host = dup_n(rest + 1, (size_t)(close - rest - 1));
            colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        } else {
            colon = memchr(rest, ':', (size_t)(end - rest));
            hostend = colon ? colon : end;
            out->host = dup_n(rest, (size_t)(hostend - rest));
        }
        if (out->host == NULL || out->host[0] == '\0')
            goto bad;
        out->port = 6379;
        if (colon != NULL) {
            char portbuf[8];
            size_t n = (size_t)(end - colon - 1);
            if (n == 0 || n >= sizeof(portbuf))
                goto bad;
            memcpy(portbuf, colon + 1, n);
            portbuf[n] = '\0';
            char *pe;
            long p = strtol(portbuf, &pe, 10);
            if (*pe != '\0' || p < 1 || p > 65535)
                goto bad;
            out->port = (int)p;
        }
        if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &out->db) != 0)
            goto bad;
        return 0;
    }
bad:
    redisconn_url_free(out);
    snprintf(err, err_len, "REDIS_URL must look like redis://host:port/db or unix:///path/to/socket");
    return -1;
}

char *redisconn_url_describe(const redisconn_url_t *u)
{
    char buf[512];
    if (u->path != NULL)
        snprintf(buf, sizeof(buf), "%s", u->path);
    else
        snprintf(buf, sizeof(buf), "%s:%d", u->host, u->port);
    return strdup(buf);
}

int redisconn_setup_commands(const redisconn_url_t *u, const char *argv[2][3], size_t argvlen[2][3], int argc[2],
                             char dbbuf[16])
{
    int n = 0;
    if (u->password != NULL) {
        int k = 0;
        argv[n][k] = "AUTH", argvlen[n][k++] = 4;
        if (u->username != NULL)
            argv[n][k] = u->username, argvlen[n][k++] = strlen(u->username);
        argv[n][k] = u->password, argvlen[n][k++] = strlen(u->password);
        argc[n++] = k;
    }
    if (u->db != 0) {
        snprintf(dbbuf, 16, "%d", u->db);
        argv[n][0] = "SELECT", argvlen[n][0] = 6;
        argv[n][1] = dbbuf, argvlen[n][1] = strlen(dbbuf);
        argc[n++] = 2;
    }
    return n;
}

redisContext *redisconn_connect(const redisconn_url_t *u, int timeout_ms, int io_timeout_ms, char *err, size_t err_len)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = u->path != NULL ? redisConnectUnixWithTimeout(u->path, tv) : redisConnectWithTimeout(u->host, u->port, tv);
    if (c == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(err, err_len, "cannot connect to Redis: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (io_timeout_ms > 0) {
        struct timeval io = {io_timeout_ms / 1000, (io_timeout_ms % 1000) * 1000};
        redisSetTimeout(c, io);
    }
    const char *argv[2][3];
    size_t argvlen[2][3];
    int argc[2];
    char dbbuf[16];
    int n = redisconn_setup_commands(u, argv, argvlen, argc, dbbuf);
    for (int i = 0; i < n; i++) {
        redisReply *r = redisCommandArgv(c, argc[i], argv[i], argvlen[i]);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            /* the reply to AUTH never echoes the password */
            snprintf(err, err_len, "Redis refused %s: %s", argv[i][0], r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}
