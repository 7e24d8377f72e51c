/*
 * ghhttp — one HTTP exchange with GitHub's REST API, over one reused libcurl
 * easy handle (so consecutive calls keep their TCP/TLS connection alive).
 *
 * It sends what it is given and reports what came back: the status, the body,
 * and the headers the client above acts on (ETag, Link, x-ratelimit-*,
 * retry-after), with libcurl's failures sorted once into "worth retrying"
 * (connection refused, reset, timed out) and "not" (bad URL, certificate
 * refused). What a status means — retry, wait, give up — is ghapi's business.
 *
 * Memory: a ghhttp_t owns its handle; a ghhttp_response_t owns its body and
 * strings until ghhttp_response_clear. One ghhttp_t per thread: a libcurl
 * handle must not be used by two threads at once.
 */
#ifndef PATCHBAY_GHHTTP_H
#define PATCHBAY_GHHTTP_H

#include "app/common/strbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ghhttp_s ghhttp_t;

/* Diffs of big pull requests are the largest answers patchbay reads; GitHub
 * itself stops serving a diff well below this. */
#define GHHTTP_BODY_MAX_BYTES (64 * 1024 * 1024)
#define GHHTTP_ERR_BYTES 256

typedef enum {
    GHHTTP_TRANSPORT_OK = 0,        /* an HTTP answer arrived (any status) */
    GHHTTP_TRANSPORT_RETRYABLE = 1, /* no answer; trying again may work */
    GHHTTP_TRANSPORT_PERMANENT = 2, /* no answer, and trying again will not help */
} ghhttp_transport_t;

typedef struct {
    const char *method;        /* GET, POST, PATCH, PUT, DELETE */
    const char *url;           /* absolute */
    const char *authorization; /* the whole header value ("Bearer ..."), or NULL */
    const char *accept;        /* NULL: application/vnd.github+json */
    const char *body;          /* NULL: none */
    size_t body_len;
    const char *if_none_match; /* ETag of a cached answer, or NULL */
} ghhttp_request_t;

typedef struct {
    long status;                  /* 0 when no answer */
    ghhttp_transport_t transport;
    char error[GHHTTP_ERR_BYTES]; /* libcurl's words when transport != OK */
    strbuf_t body;
    char *etag;                   /* or NULL */
    char *link_next;              /* Link rel="next", or NULL */
    char *content_type;           /* or NULL */
    /* -1 when the header was absent or not a number */
    int64_t rl_limit, rl_remaining, rl_reset_s, rl_used;
    int64_t retry_after_s;
    int64_t elapsed_us;
} ghhttp_response_t;

/* user_agent is required by GitHub. NULL when libcurl cannot make a handle. */
ghhttp_t *ghhttp_new(const char *user_agent, int connect_timeout_ms, int timeout_ms);
void ghhttp_free(ghhttp_t *h);

/* Performs the exchange; *resp is reset first (start it zeroed). Returns
 * resp->transport. */
int ghhttp_perform(ghhttp_t *h, const ghhttp_request_t *req, ghhttp_response_t *resp);
void ghhttp_response_clear(ghhttp_response_t *resp);

/* The URL of rel="next" in a Link header value, malloc'd; NULL when none. */
char *ghhttp_link_next(const char *link);

#endif
