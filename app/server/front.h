/*
 * front — the first reader of every connection on the webhook port.
 *
 * The port faces the internet, and h2o 2.2.5 alone would let a stranger
 * spend patchbay's memory and descriptors: it reads a request's whole body
 * before any handler sees it (streamed request bodies came in 2.3), so eight
 * unsigned 24 MiB uploads cost 250 MB before the signature could refuse
 * them; and it keeps no count of its connections, so where the open-file
 * limit is low, idle connections leave accept() failing with EMFILE in a busy
 * loop (its epoll is level-triggered) while deliveries time out. The front is
 * a small HTTP/1.1 reader of its own, on h2o's socket API, that bounds both:
 *
 * - Bodies. A request to the webhook path is read here. Its head is checked
 *   (framing, Content-Length against server.body_limit_bytes, then
 *   delivery_begin: method, secret, signature header), and its body admitted
 *   against one budget for the whole server, server.inflight_body_bytes,
 *   before a byte of it is read; "100 Continue" goes out only then. The body
 *   is read straight into a buffer of its size (or de-chunked), fed to the
 *   HMAC as it arrives, and stays counted until its delivery is answered.
 *   Past the budget the answer is 503 with Retry-After. Of the budget,
 *   CONFIG_SMALL_BODY_RESERVE_BYTES is kept for bodies of at most
 *   CONFIG_SMALL_BODY_BYTES, so large uploads never starve everyday ones.
 * - Connections. Each loop keeps at most its share of the connection cap
 *   (server.max_connections, by default the open-file limit less
 *   FRONT_FD_RESERVE). A connection past the cap closes the one idle longest
 *   (waiting for a request, or lingering after an answer), failing that the
 *   one slowest to send its request; only when every connection is waiting
 *   for its own answer is the newcomer refused (503). From 3/4 of the cap on,
 *   idle connections get FRONT_PRESSURE_IDLE_MS instead of request_timeout_ms.
 *   When accept() finds no descriptor free, a connection idle for at least
 *   FRONT_ACCEPT_PAUSE_MS is closed (the newcomer is unknown: one accepted a
 *   moment ago may be sending its request); failing that, the listener pauses
 *   FRONT_ACCEPT_PAUSE_MS instead of spinning (h2o's epoll is level-triggered).
 *
 * Any other path is h2o's, one request at a time: the front reads its head
 * and its body (at most FRONT_PAGE_BODY_MAX_BYTES, counted in the budget
 * too), then lends the socket to h2o with the request in sock->input
 * (h2o_accept). front_keep_alive, called by the server's handler for each
 * such request, makes its answer hand the socket back (h2o_http1_upgrade, the
 * one public way to take a socket from h2o's HTTP/1 layer; it marks the
 * answer "Connection: upgrade", which HTTP/1.1 clients read as keep-alive),
 * so the connection's next request comes to the front again and h2o never
 * reads a body itself. Paths are compared after h2o's own normalisation
 * (h2o_url_normalize_path), so no spelling of the webhook path
 * (/api/github/%77ebhooks, /api/github/./webhooks) reaches h2o.
 *
 * Memory: a front_conn_t per connection (freed with its socket), a request's
 * head in the socket's input buffer (at most FRONT_HEAD_MAX_BYTES), a body in
 * one malloc'd buffer. A front_conf_t is the server's, read-only once the
 * loops run; a front_loop_t belongs to one event-loop thread, which alone
 * calls the functions on it.
 */
#ifndef PATCHBAY_FRONT_H
#define PATCHBAY_FRONT_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "delivery.h"
#include "metrics.h"
#include "app/common/config.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* h2o's own limit on a request head (H2O_MAX_REQLEN): a longer one could not
 * be handed to it anyway. */
#define FRONT_HEAD_MAX_BYTES 8192
/* Bodies to paths other than the webhook's: the dashboard's actions carry
 * none; anything larger is not a request patchbay serves. */
#define FRONT_PAGE_BODY_MAX_BYTES (64 * 1024)
/* Descriptors the connection cap leaves for Redis connections, the spool,
 * the loops' pipes and epoll, the workers' pipes, outbound HTTPS. */
#define FRONT_FD_RESERVE 64
#define FRONT_PRESSURE_IDLE_MS 1000
#define FRONT_ACCEPT_PAUSE_MS 100
/* After an answer that closes a connection whose request body is still
 * arriving, read and drop it this long, so the client reads the answer
 * instead of a reset. */
#define FRONT_LINGER_MS 2000
/* An early refusal (401 before the body, 405, ...) still reads and drops a
 * body of at most this much, to keep the connection alive. */
#define FRONT_DISCARD_MAX_BYTES (64 * 1024)
#define FRONT_RETRY_AFTER_S 5

typedef struct {
    const config_t *cfg;
    metrics_t *metrics;
    size_t cap_per_loop;     /* connections */
    int64_t budget;          /* server.inflight_body_bytes */
    uint64_t idle_ms;        /* request_timeout_ms */
    uint64_t pressure_idle_ms;
    long nofile;             /* the open-file limit the cap was derived from */
    int clamped;             /* server.max_connections was above what nofile allows */
} front_conf_t;

typedef struct front_conn_s front_conn_t;

typedef struct {
    const front_conf_t *conf;
    h2o_context_t *ctx;
    h2o_accept_ctx_t *accept_ctx;
    delivery_loop_t *delivery;
    h2o_socket_t *listener;
    /* every connection is on one list, least recently active first: */
    h2o_linklist_t idle;    /* waiting for a request, or lingering after a closing answer */
    h2o_linklist_t reading; /* receiving a request: head, body, or a refused body being dropped */
    h2o_linklist_t busy;    /* waiting for their answer, writing it, or lent to h2o */
    size_t nconns;
    int pressure;
    h2o_timeout_t idle_timeout;    /* waiting for a request's first byte */
    h2o_timeout_t request_timeout; /* from a request's first byte to its last, and writing its answer */
    h2o_timeout_t linger_timeout;
    h2o_timeout_t pause_timeout;
    h2o_timeout_entry_t resume_listener;
    uint64_t last_warn_ms;
    unsigned suppressed_warns;
    time_t date_at;
    char date[40]; /* the Date header's value, once a second */
    char drop[16384]; /* where dropped bytes are read to */
} front_loop_t;

/* The cap from server.max_connections and the open-file limit (read now:
 * call after raising it), split over nloops; the budget's limits. */
void front_conf_init(front_conf_t *c, const config_t *cfg, metrics_t *metrics, int nloops);

/* Takes the listening socket (its fd is the loop's from now on) and starts
 * accepting. */
void front_loop_init(front_loop_t *f, const front_conf_t *c, h2o_context_t *ctx, h2o_accept_ctx_t *accept_ctx,
                     delivery_loop_t *delivery, int listen_fd);
/* Stops accepting; connections carry on. */
void front_loop_stop_accepting(front_loop_t *f);
/* Closes every connection: those the front holds at once (a delivery still
 * waiting for Redis is abandoned), those lent to h2o once h2o sees them end,
 * running the loop up to wait_ms for it. Returns how many are still open. */
size_t front_loop_close_all(front_loop_t *f, uint64_t wait_ms);
/* After close_all left none: releases the loop's timers. */
void front_loop_dispose(front_loop_t *f);

/* For the server's h2o handler, on every request (each came from the front):
 * its answer gives the connection back to the front. */
void front_keep_alive(front_loop_t *f, h2o_req_t *req);

#endif
