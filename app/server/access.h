/*
 * access — which name the HTTP port answers to. Everything but the webhook
 * (the status and set-up pages, the dashboard and its API, health, readiness
 * and metrics) is served only when the request's Host names PUBLIC_URL's
 * host, a loopback name (localhost, 127.0.0.0/8, ::1), or, as an address
 * literal, the very address the connection arrived on; any other Host is
 * answered 421 Misdirected Request.
 *
 * Why: a page on another site that rebinds its own DNS name to 127.0.0.1
 * reaches a loopback-only patchbay with same-origin requests, which no CORS
 * rule and no custom header stops; its requests still carry its own name in
 * Host. Behind a reverse proxy that passes Host on (as the documented nginx
 * and Caddy set-ups do), a request for a name the proxy was not set up for
 * is refused the same way. The webhook is exempt: it is authenticated by its
 * signature, and GitHub must reach it whatever a proxy does to Host.
 *
 * The address the client dialled is allowed for the reason loopback is: no
 * rebinding page can put an address literal in Host (a browser names the
 * page's origin, its DNS name), and Kubernetes probes, load balancers' health
 * checks and Prometheus scrapes name the pod's or host's address they dial.
 *
 * The Host rule is not authentication: any client can send any Host. The
 * set-up code (pages, appsetup) and the dashboard token (dashboard) are.
 *
 * Memory: access_t is plain data, the server's, read-only once made; any
 * event-loop thread may call these.
 */
#ifndef PATCHBAY_ACCESS_H
#define PATCHBAY_ACCESS_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "app/common/config.h"

#include <stddef.h>
#include <sys/socket.h>

#define ACCESS_HOST_MAX_BYTES 256

typedef struct {
    char public_host[ACCESS_HOST_MAX_BYTES]; /* lowercased, without port or brackets; "" without PUBLIC_URL */
} access_t;

void access_init(access_t *a, const config_t *cfg);

/* Whether host[0..len) (a Host header's value, port and all) may be served
 * on a connection whose local address is `local` (NULL: unknown). */
int access_host_allowed(const access_t *a, const char *host, size_t len, const struct sockaddr *local);

/* Whether name[0..len) (no port, no brackets) is localhost, 127.0.0.0/8 or ::1. */
int access_name_is_loopback(const char *name, size_t len);

/* Answers 421 when the request's Host may not be served; 1 when it did so. */
int access_refuse_host(const access_t *a, h2o_req_t *req);

#endif
