/*
 * rasync — see rasync.h. The adapter part (ev_*) is the glue hiredis's
 * redisAsyncContext.ev expects; the rest is the reconnect state machine:
 * DISCONNECTED --(timer)--> CONNECTING --(onConnect ok)--> CONNECTED
 * CONNECTING --(onConnect err)--> DISCONNECTED; CONNECTED --(onDisconnect)--> DISCONNECTED.
 */
#include "rasync.h"
#include "app/common/log.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { RASYNC_DISCONNECTED, RASYNC_CONNECTING, RASYNC_CONNECTED } rasync_state_t;

struct rasync_s {
    h2o_evloop_t *loop;
    const redisconn_url_t *url;
    redisAsyncContext *ac;
    h2o_socket_t *sock; /* polls a dup of ac's fd */
    int reading, writing;
    rasync_state_t state;
    /* a fixed tick: h2o timeouts have one duration each, so backoff counts ticks */
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
    unsigned ticks_to_wait, backoff_ticks;
    int freeing;
    char error[160];
};

#define RASYNC_TICK_MS RASYNC_RETRY_MIN_MS

static void start_connect(rasync_t *r);

static void on_sock_read(h2o_socket_t *sock, const char *err)
{
    rasync_t *r = sock->data;
    if (r->ac != NULL)
        redisAsyncHandleRead(r->ac);
}

static void on_sock_write(h2o_socket_t *sock, const char *err)
{
    rasync_t *r = sock->data;
    r->writing = 0;
    if (r->ac != NULL)
        redisAsyncHandleWrite(r->ac);
}

static void ev_add_read(void *privdata)
{
    rasync_t *r = privdata;
    if (!r->reading && r->sock != NULL) {
        r->reading = 1;
        h2o_socket_read_start(r->sock, on_sock_read);
    }
}

static void ev_del_read(void *privdata)
{
    rasync_t *r = privdata;
    if (r->reading && r->sock != NULL) {
        r->reading = 0;
        h2o_socket_read_stop(r->sock);
    }
}

static void ev_add_write(void *privdata)
{
    rasync_t *r = privdata;
    /* h2o_socket_notify_write is one-shot and asserts when armed twice */
    if (!r->writing && r->sock != NULL) {
        r->writing = 1;
        h2o_socket_notify_write(r->sock, on_sock_write);
    }
}

static void ev_del_write(void *privdata)
{
    /* nothing to cancel: a spare write notification finds nothing to send */
}

static void ev_cleanup(void *privdata)
{
    rasync_t *r = privdata;
    if (r->sock != NULL) {
        h2o_socket_close(r->sock); /* closes our dup, not hiredis's fd */
        r->sock = NULL;
    }
    r->reading = r->writing = 0;
}

static void schedule_retry(rasync_t *r)
{
    r->state = RASYNC_DISCONNECTED;
    r->ac = NULL;
    if (r->freeing)
        return;
    r->ticks_to_wait = r->backoff_ticks;
    if (r->backoff_ticks < RASYNC_RETRY_MAX_MS / RASYNC_TICK_MS)
        r->backoff_ticks *= 2;
    if (!h2o_timeout_is_linked(&r->tick_entry))
        h2o_timeout_link(r->loop, &r->tick, &r->tick_entry);
}

static void on_tick(h2o_timeout_entry_t *entry)
{
    rasync_t *r = H2O_STRUCT_FROM_MEMBER(rasync_t, tick_entry, entry);
    if (r->state != RASYNC_DISCONNECTED)
        return;
    if (r->ticks_to_wait > 1) {
        r->ticks_to_wait--;
        h2o_timeout_link(r->loop, &r->tick, &r->tick_entry);
        return;
    }
    start_connect(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    rasync_t *r = ac->data;
    if (status != REDIS_OK) {
        snprintf(r->error, sizeof(r->error), "%s", ac->errstr);
        log_debug(NULL, NULL, "redis connect failed: %s", r->error);
        schedule_retry(r); /* hiredis frees ac after this returns */
        return;
    }
    r->state = RASYNC_CONNECTED;
    r->backoff_ticks = 1;
    r->error[0] = '\0';
    log_info(NULL, NULL, "redis connected");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    rasync_t *r = ac->data;
    if (status != REDIS_OK) {
        snprintf(r->error, sizeof(r->error), "%s", ac->errstr[0] ? ac->errstr : "connection lost");
        log_warn(NULL, NULL, "redis connection lost: %s", r->error);
    }
    schedule_retry(r);
}

/* AUTH and SELECT answers only matter when they fail, which shows in the
 * next command's error as well; log them. */
static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rep = reply;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
        log_error(NULL, NULL, "redis refused %s: %s", (const char *)privdata, rep->str);
}

static void start_connect(rasync_t *r)
{
    redisAsyncContext *ac = r->url->path != NULL ? redisAsyncConnectUnix(r->url->path)
                                                 : redisAsyncConnect(r->url->host, r->url->port);
    if (ac == NULL || ac->err) {
        snprintf(r->error, sizeof(r->error), "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    int fd = dup(ac->c.fd);
    if (fd < 0) {
        snprintf(r->error, sizeof(r->error), "dup: out of file descriptors");
        redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    r->ac = ac;
    r->state = RASYNC_CONNECTING;
    r->sock = h2o_evloop_socket_create(r->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    r->sock->data = r;
    ac->data = r;
    ac->ev.data = r;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect); /* arms the first write notification */
    redisAsyncSetDisconnectCallback(ac, on_disconnect);

    const char *argv[2][3];
    size_t argvlen[2][3];
    int argc[2];
    char dbbuf[16];
    int n = redisconn_setup_commands(r->url, argv, argvlen, argc, dbbuf);
    for (int i = 0; i < n; i++)
        redisAsyncCommandArgv(ac, on_setup_reply, (void *)(i == 0 && r->url->password ? "AUTH" : "SELECT"), argc[i],
                              argv[i], argvlen[i]);
}

rasync_t *rasync_new(h2o_evloop_t *loop, const redisconn_url_t *url)
{
    rasync_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->url = url;
    r->backoff_ticks = 1;
    h2o_timeout_init(loop, &r->tick, RASYNC_TICK_MS);
    r->tick_entry.cb = on_tick;
    start_connect(r);
    return r;
}

void rasync_free(rasync_t *r)
{
    if (r == NULL)
        return;
    r->freeing = 1;
    if (h2o_timeout_is_linked(&r->tick_entry))
        h2o_timeout_unlink(&r->tick_entry);
    if (r->ac != NULL)
        redisAsyncFree(r->ac);
    r->ac = NULL;
    if (r->sock != NULL)
        h2o_socket_close(r->sock);
    h2o_timeout_dispose(r->loop, &r->tick);
    free(r);
}

int rasync_connected(const rasync_t *r)
{
    return r->state == RASYNC_CONNECTED;
}

int rasync_connecting(const rasync_t *r)
{
    return r->state == RASYNC_CONNECTING;
}

const char *rasync_last_error(const rasync_t *r)
{
    return r->error[0] ? r->error : "not connected";
}

typedef struct {
    rasync_reply_cb cb;
    void *privdata;
} rasync_call_t;

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rasync_call_t call = *(rasync_call_t *)privdata;
    free(privdata);
    call.cb(reply, call.privdata);
}

int rasync_command_argv(rasync_t *r, rasync_reply_cb cb, void *privdata, int argc, const char **argv,
                        const size_t *argvlen)
{
    if (r->state != RASYNC_CONNECTED || r->ac == NULL)
        return -1;
    if (cb == NULL) /* the reply is not wanted: hiredis drops it */
        return redisAsyncCommandArgv(r->ac, NULL, NULL, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
    rasync_call_t *call = malloc(sizeof(*call));
    if (call == NULL)
        return -1;
    call->cb = cb;
    call->privdata = privdata;
    if (redisAsyncCommandArgv(r->ac, on_reply, call, argc, argv, argvlen) != REDIS_OK) {
        free(call);
        return -1;
    }
    return 0;
}
