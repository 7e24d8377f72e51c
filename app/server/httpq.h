/*
 * httpq — what a request carries besides its path: one named value of the
 * query string or of a form-encoded body, raw or percent-decoded, and one
 * cookie. Shared by the status pages and the dashboard.
 *
 * Pure; any thread (the request's). Values point into the request.
 */
#ifndef PATCHBAY_HTTPQ_H
#define PATCHBAY_HTTPQ_H

#define H2O_USE_LIBUV 0
#include <h2o.h>

#include <stddef.h>

/* The ?name= value (raw, not decoded), or zero-length when absent. */
h2o_iovec_t httpq_value(h2o_req_t *req, const char *name);

/* The value percent-decoded ('+' is a space) into out (NUL-terminated).
 * 0; -1 when absent, malformed, holding a NUL, or longer than out. */
int httpq_decoded(h2o_req_t *req, const char *name, char *out, size_t out_len);

/* The same, from an application/x-www-form-urlencoded body (a form's POST). */
int httpq_form_decoded(h2o_req_t *req, const char *name, char *out, size_t out_len);

/* The value of one cookie from the Cookie headers, or a zero-length iovec. */
h2o_iovec_t httpq_cookie(h2o_req_t *req, const char *name);

#endif
