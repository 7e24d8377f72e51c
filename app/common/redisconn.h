/*
 * redisconn — where Redis is (REDIS_URL) and a blocking connection to it.
 *
 * Accepted forms: redis://[[user]:password@]host[:port][/db] and
 * unix:///absolute/path[?db=N] (a password for a unix socket:
 * unix://:password@/path). The CLI, the spool flusher and the workers use the
 * blocking connection; the webhook server's event loops use the same parsed
 * URL for their asynchronous connections (rasync).
 *
 * Memory: redisconn_url_t owns its strings (redisconn_url_free). Connections
 * are plain hiredis contexts; free them with redisFree.
 */
#ifndef PATCHBAY_REDISCONN_H
#define PATCHBAY_REDISCONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct {
    char *host;     /* TCP, or NULL */
    int port;
    char *path;     /* unix socket, or NULL */
    int db;
    char *username; /* Redis 6 ACL user, or NULL */
    char *password; /* or NULL */
} redisconn_url_t;

#define REDISCONN_ERR_BYTES 256

/* Returns 0, or -1 with a one-line reason in err. */
int redisconn_url_parse(redisconn_url_t *out, const char *url, char *err, size_t err_len);
void redisconn_url_free(redisconn_url_t *u);
/* "host:port" or the socket path, for logs (never the password); caller frees. */
char *redisconn_url_describe(const redisconn_url_t *u);

/* Connects within timeout_ms, authenticates, selects the db, and sets the
 * socket timeout to io_timeout_ms (0: none). NULL with a reason in err. */
redisContext *redisconn_connect(const redisconn_url_t *u, int timeout_ms, int io_timeout_ms, char *err, size_t err_len);

/* Runs AUTH and SELECT on a fresh connection (blocking or, through the
 * caller, asynchronous): the argv for each step. Returns the number of
 * commands (0..2) written to argv/argc. */
int redisconn_setup_commands(const redisconn_url_t *u, const char *argv[2][3], size_t argvlen[2][3], int argc[2],
                             char dbbuf[16]);

#endif
