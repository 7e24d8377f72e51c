/*
 * ghjwt — who patchbay is to GitHub: the App's RSA private key and the RS256
 * JSON Web Tokens signed with it ("Generating a JSON Web Token (JWT) for a
 * GitHub App" in GitHub's docs).
 *
 * GitHub downloads App keys as PKCS#1 ("BEGIN RSA PRIVATE KEY"); tools often
 * convert them to PKCS#8 ("BEGIN PRIVATE KEY"): both load. A JWT carries
 * iat = now - 60 s, exp = now + 9 min and iss = the App ID. GitHub refuses an
 * iat in its future and an exp more than 10 minutes ahead of its own clock, so
 * backdating iat by a minute and stopping a minute short of the 10-minute cap
 * keeps tokens valid on a host whose clock is up to 60 s off either way.
 *
 * Memory: ghjwt_key_load gives the caller an EVP_PKEY (EVP_PKEY_free);
 * ghjwt_sign gives a malloc'd string (free). Nothing here keeps state; any
 * thread may call it (OpenSSL 3 signs with one EVP_PKEY from many threads).
 * Error messages never contain key material.
 */
#ifndef PATCHBAY_GHJWT_H
#define PATCHBAY_GHJWT_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define GHJWT_IAT_BACKDATE_S 60 /* GitHub's advice against clock drift */
#define GHJWT_LIFETIME_S 540    /* exp - now; GitHub's cap is 600 */
#define GHJWT_KEY_MAX_BYTES (64 * 1024)

typedef enum {
    GHJWT_OK = 0,
    GHJWT_ERR_KEY = -1,  /* no key, unreadable, not PEM, not RSA */
    GHJWT_ERR_SIGN = -2, /* OpenSSL failed to sign (out of memory, broken key) */
} ghjwt_err_t;

/* Loads the private key from `pem` (PEM text) or, when pem is NULL, from the
 * file at `path`. Returns GHJWT_OK, or GHJWT_ERR_KEY with a one-line reason. */
int ghjwt_key_load(EVP_PKEY **out, const char *pem, const char *path, char *err, size_t err_len);

/* header.claims.signature, base64url without padding, for App `app_id`
 * (digits: it goes out as a JSON integer) at wall-clock second now_s.
 * *exp_out (may be NULL) receives the exp claim. */
int ghjwt_sign(char **out, int64_t *exp_out, EVP_PKEY *key, const char *app_id, int64_t now_s, char *err,
               size_t err_len);

/* base64url without padding of n bytes into out (room for 4*ceil(n/3)+1);
 * returns the length written. Exposed for tests. */
size_t ghjwt_base64url(char *out, const unsigned char *in, size_t n);

#endif
