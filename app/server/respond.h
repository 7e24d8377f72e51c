/*
 * respond — how every route of the server answers: the status line, the
 * content length set before the body (without it h2o 2.2.5 closes the
 * connection on every non-200 answer and sends 200s chunked), no caching,
 * and the browser-hardening headers of the pages people open.
 *
 * Any event-loop thread, on its own request; strings are copied into the
 * request's pool or sent before the call returns.
 */
#ifndef PATCHBAY_RESPOND_H
#define PATCHBAY_RESPOND_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include "app/common/strbuf.h"

#include <stddef.h>

/* "OK", "Not Found", ... for the statuses patchbay sends; "Error" otherwise. */
const char *respond_reason(int status);

/* Sends body as the whole answer, with Cache-Control: no-store. */
void respond_send(h2o_req_t *req, int status, const char *content_type, const void *body, size_t len);

/* {"key":"value"}: every webhook answer and every API error is one of these
 * (the value is clipped to 400 bytes). */
void respond_json(h2o_req_t *req, int status, const char *key, const char *value);
/* The same body, appended to out: for answers written without h2o (front.h). */
void respond_json_body(strbuf_t *out, const char *key, const char *value);

/* For pages a browser renders: this Content-Security-Policy, no MIME
 * sniffing, no referrer, never in a frame. Call before respond_send. */
void respond_page_headers(h2o_req_t *req, const char *csp);

#endif
