/*
 * verify — checks a webhook's X-Hub-Signature-256 against the raw body.
 *
 * GitHub signs the exact bytes it sends with HMAC-SHA256 keyed by the App's
 * webhook secret and sends "sha256=<64 lowercase hex>". We recompute over the
 * raw body (never over re-serialised JSON) and compare in constant time, so
 * the answer's timing says nothing about how many bytes matched. The legacy
 * SHA-1 header (X-Hub-Signature) is not accepted.
 *
 * Two forms with one meaning. verify_signature checks a body held whole; it
 * is stateless, reentrant and allocates nothing of ours. The streaming form
 * checks a body as it arrives, so the server never has to hold bytes it has
 * not authenticated longer than it takes to read them: a verify_key_t is the
 * secret made ready once (per event loop; read-only afterwards), and each
 * body gets a verify_stream_t from it, whose header is parsed up front (a
 * missing or malformed signature is refused before any body byte is read),
 * fed with every read, and finished with the same constant-time compare.
 * Keys and streams hold OpenSSL contexts: the caller frees them with
 * verify_key_free / verify_stream_free. A stream belongs to one thread at a
 * time; a key may be shared by the threads that only read it.
 */
#ifndef PATCHBAY_VERIFY_H
#define PATCHBAY_VERIFY_H

#include <stddef.h>

typedef enum {
    VERIFY_OK = 0,
    VERIFY_MISSING = -1,   /* no header, or no secret configured */
    VERIFY_MALFORMED = -2, /* not "sha256=" followed by 64 hex digits */
    VERIFY_MISMATCH = -3,
    VERIFY_ERROR = -4,     /* OpenSSL could not compute (out of memory): nothing was decided */
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

/* ---- streaming ---- */

typedef struct verify_key_s verify_key_t;
typedef struct verify_stream_s verify_stream_t;

/* The secret keyed into an HMAC-SHA256 context once. VERIFY_OK and *out
 * (the caller's, verify_key_free), VERIFY_MISSING for an empty secret, or
 * VERIFY_ERROR. */
int verify_key_new(verify_key_t **out, const char *secret, size_t secret_len);
void verify_key_free(verify_key_t *key);

/* Starts checking one body against header (NULL: missing). VERIFY_OK and
 * *out (the caller's, verify_stream_free), or VERIFY_MISSING /
 * VERIFY_MALFORMED / VERIFY_ERROR and *out NULL: no body byte needs reading
 * to know the answer. */
int verify_stream_begin(verify_stream_t **out, const verify_key_t *key, const char *header, size_t header_len);
/* Feeds the next bytes of the body, in order. */
void verify_stream_update(verify_stream_t *s, const void *data, size_t len);
/* After the last byte: VERIFY_OK or VERIFY_MISMATCH (VERIFY_ERROR if an
 * update failed). Call once. */
int verify_stream_finish(verify_stream_t *s);
void verify_stream_free(verify_stream_t *s);

#endif
