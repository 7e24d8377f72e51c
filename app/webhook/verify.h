/*
 * verify — checks a webhook's X-Hub-Signature-256 against the raw body.
 *
 * GitHub signs the exact bytes it sends with HMAC-SHA256 keyed by the App's
 * webhook secret and sends "sha256=<64 lowercase hex>". We recompute over the
 * raw body (never over re-serialised JSON) and compare in constant time, so
 * the answer's timing says nothing about how many bytes matched. The legacy
 * SHA-1 header (X-Hub-Signature) is not accepted.
 *
 * Stateless and reentrant; allocates nothing.
 */
#ifndef PATCHBAY_VERIFY_H
#define PATCHBAY_VERIFY_H

#include <stddef.h>

typedef enum {
    VERIFY_OK = 0,
    VERIFY_MISSING = -1,   /* no header, or no secret configured */
    VERIFY_MALFORMED = -2, /* not "sha256=" followed by 64 hex digits */
    VERIFY_MISMATCH = -3,
} verify_result_t;

#define VERIFY_HEADER_LEN (7 + 64) /* "sha256=" + hex */

/* header may be NULL (missing). Returns a verify_result_t. */
int verify_signature(const char *secret, size_t secret_len, const char *body, size_t body_len, const char *header,
                     size_t header_len);

/* Writes "sha256=<hex>" and a NUL into out (VERIFY_HEADER_LEN + 1 bytes):
 * what GitHub would send. Used by `patchbay replay` and tests. Returns 0. */
int verify_sign(const char *secret, size_t secret_len, const char *body, size_t body_len,
                char out[VERIFY_HEADER_LEN + 1]);

const char *verify_result_name(int result);

#endif
