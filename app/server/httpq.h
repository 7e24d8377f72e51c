/*
 * httpq — the query string of an h2o request: one named value, raw or
 * percent-decoded. Shared by the status pages and the dashboard.
 *
 * Pure; any thread (the request's).
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

#endif
