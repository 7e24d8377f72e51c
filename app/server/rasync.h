/*
 * rasync — an asynchronous Redis connection driven by an h2o event loop, that
 * reconnects by itself.
 *
 * hiredis ships no adapter for h2o's evloop, so this is one: the connection's
 * fd is dup'ed into an h2o socket created with H2O_SOCKET_FLAG_DONT_READ, so
 * h2o only tells us when it is readable or writable and hiredis does the
 * reading and writing itself. h2o polls level-triggered, so a reply larger
 * than one hiredis read is picked up on the next loop turn.
 *
 * hiredis 0.14 has no command timeouts; callers keep their own deadlines and
 * must cope with a reply arriving after they gave up (the privdata they pass
 * must stay valid until their callback has run, which it always does exactly
 * once for an accepted command, with NULL if the connection is lost).
 *
 * One rasync per event-loop thread; only that thread may touch it.
 */
#ifndef PATCHBAY_RASYNC_H
#define PATCHBAY_RASYNC_H

#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <hiredis/hiredis.h>

#include "app/common/redisconn.h"

typedef struct rasync_s rasync_t;

/* reply is NULL when the connection was lost before the answer came; it is
 * freed by hiredis after the callback returns. */
typedef void (*rasync_reply_cb)(redisReply *reply, void *privdata);

/* Starts connecting at once; never fails for an unreachable Redis (it keeps
 * trying, backing off to RASYNC_RETRY_MAX_MS). url must outlive the rasync. */
rasync_t *rasync_new(h2o_evloop_t *loop, const redisconn_url_t *url);
/* Closes the connection; pending callbacks run with NULL first. */
void rasync_free(rasync_t *r);

int rasync_connected(const rasync_t *r);
/* Whether an attempt to connect is under way (neither connected nor failed yet). */
int rasync_connecting(const rasync_t *r);
/* Why the last connection attempt failed or the connection dropped. */
const char *rasync_last_error(const rasync_t *r);

/* Sends a command. Returns 0 when it was sent (cb will run exactly once), or
 * -1 when not connected (cb will never run). cb may be NULL for a reply that
 * does not matter (the +QUEUED of a command inside MULTI). */
int rasync_command_argv(rasync_t *r, rasync_reply_cb cb, void *privdata, int argc, const char **argv,
                        const size_t *argvlen);

#define RASYNC_RETRY_MIN_MS 100
#define RASYNC_RETRY_MAX_MS 2000

#endif
