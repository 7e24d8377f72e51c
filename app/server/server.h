/*
 * server — the webhook server: h2o event loops that verify, route and queue
 * GitHub deliveries, and answer the health, readiness, metrics and status
 * endpoints of DESIGN.md's HTTP table.
 *
 * One h2o context, event loop and SO_REUSEPORT listener per thread (the
 * kernel spreads connections over them), each with its own asynchronous Redis
 * connection; nothing on a request's path takes a lock or waits on disk. A
 * delivery is answered 202 only once its job is durable: Redis answered the
 * enqueue script, or, when Redis is slow or down, the ingress thread has
 * fsync'd it to the spool.
 *
 * Memory: per-request data comes from h2o's request pool; the state of a
 * delivery waiting for Redis or the spool is a small refcounted block that
 * outlives a client that hung up (see server.c). A server_t owns its threads,
 * listeners, ingress thread and metrics; the config must outlive it.
 * server_new/start/stop/free are for the main thread only.
 */
#ifndef PATCHBAY_SERVER_H
#define PATCHBAY_SERVER_H

#include "app/common/config.h"

#include <stddef.h>

typedef struct server_s server_t;

#define SERVER_ERR_BYTES 512
/* How long stop waits for deliveries in flight before closing anyway. */
#define SERVER_DRAIN_MS 5000

/* Binds the listeners (so "address in use" is reported here, synchronously)
 * and opens the spool. redis_url may differ from cfg->redis.url (the private
 * Redis of `patchbay run`). NULL with a one-line reason in err. */
server_t *server_new(const config_t *cfg, const char *redis_url, char *err, size_t err_len);
/* What this process's workers found when they tried the sandbox: problem
 * NULL or "" when it works; off when the operator turned it off. Shown on
 * the status page and by /readyz. Before server_start. */
void server_set_sandbox(server_t *s, const char *problem, int off);
/* The bound port (useful when configured as 0). */
int server_port(const server_t *s);
int server_start(server_t *s, char *err, size_t err_len);
/* Stops accepting, waits up to SERVER_DRAIN_MS for deliveries in flight,
 * then joins the threads. */
void server_stop(server_t *s);
void server_free(server_t *s);

#endif
