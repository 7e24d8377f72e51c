/* verify — see verify.h. One-shot HMAC() is not deprecated in OpenSSL 3;
 * the streaming form uses EVP_MAC, whose keyed context can be duplicated:
 * a copy of the state after the key's two blocks, no provider look-up and
 * no key schedule per body. */
#include "verify.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>

static int hmac_sha256(const char *secret, size_t secret_len, const char *body, size_t body_len, unsigned char mac[32])
{
    unsigned int mac_len = 0;
    /* HMAC() takes an int key length */
    if (secret_len > (size_t)0x7fffffff)
        return -1;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)body, body_len, mac, &mac_len) == NULL ||
        mac_len != 32)
        return -1;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "sha256=" + 64 hex digits (either case) into the 32 bytes they spell. */
static int parse_header(const char *header, size_t header_len, unsigned char given[32])
{
    if (header == NULL)
        return VERIFY_MISSING;
    if (header_len != VERIFY_HEADER_LEN || memcmp(header, "sha256=", 7) != 0)
        return VERIFY_MALFORMED;
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_value(header[7 + 2 * i]), lo = hex_value(header[7 + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return VERIFY_MALFORMED;
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    return VERIFY_OK;
}

int verify_signature(const char *secret, size_t secret_len, const char *body, size_t body_len, const char *header,
                     size_t header_len)
{
    if (header == NULL || secret == NULL || secret_len == 0)
        return VERIFY_MISSING;
    unsigned char given[32];
    int rc = parse_header(header, header_len, given);
    if (rc != VERIFY_OK)
        return rc;

    unsigned char expected[32];
    if (hmac_sha256(secret, secret_len, body, body_len, expected) != 0)
        return VERIFY_MISMATCH;
    return CRYPTO_memcmp(given, expected, 32) == 0 ? VERIFY_OK : VERIFY_MISMATCH;
}

int verify_sign(const char *secret, size_t secret_len, const char *body, size_t body_len,
                char out[VERIFY_HEADER_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    if (hmac_sha256(secret, secret_len, body, body_len, mac) != 0)
        return -1;
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[VERIFY_HEADER_LEN] = '\0';
    return 0;
}

const char *verify_result_name(int result)
{
    switch (result) {
    case VERIFY_OK: return "ok";
    case VERIFY_MISSING: return "missing signature";
    case VERIFY_MALFORMED: return "malformed signature";
    case VERIFY_MISMATCH: return "signature mismatch";
    case VERIFY_ERROR: return "signature not computed";
    }
    return "unknown";
}

/* ---- streaming ---- */

struct verify_key_s {
    EVP_MAC_CTX *ctx; /* keyed, never updated: each stream works on a copy */
};

struct verify_stream_s {
    EVP_MAC_CTX *ctx;
    unsigned char given[32];
    int failed;
};

int verify_key_new(verify_key_t **out, const char *secret, size_t secret_len)
{
    *out = NULL;
    if (secret == NULL || secret_len == 0)
        return VERIFY_MISSING;
    int rc = VERIFY_ERROR;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    verify_key_t *k = calloc(1, sizeof(*k));
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (mac == NULL || k == NULL || (k->ctx = EVP_MAC_CTX_new(mac)) == NULL ||
        !EVP_MAC_init(k->ctx, (const unsigned char *)secret, secret_len, params))
        goto done;
    *out = k;
    k = NULL;
    rc = VERIFY_OK;
done:
    verify_key_free(k);
    EVP_MAC_free(mac);
    return rc;
}

void verify_key_free(verify_key_t *key)
{
    if (key == NULL)
        return;
    EVP_MAC_CTX_free(key->ctx);
    free(key);
}

int verify_stream_begin(verify_stream_t **out, const verify_key_t *key, const char *header, size_t header_len)
{
    *out = NULL;
    if (key == NULL)
        return VERIFY_MISSING;
    unsigned char given[32];
    int rc = parse_header(header, header_len, given);
    if (rc != VERIFY_OK)
        return rc;
    verify_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->ctx = EVP_MAC_CTX_dup(key->ctx)) == NULL) {
        free(s);
        return VERIFY_ERROR;
    }
    memcpy(s->given, given, sizeof(given));
    *out = s;
    return VERIFY_OK;
}

void verify_stream_update(verify_stream_t *s, const void *data, size_t len)
{
    if (len > 0 && !s->failed && !EVP_MAC_update(s->ctx, data, len))
        s->failed = 1;
}

int verify_stream_finish(verify_stream_t *s)
{
    unsigned char expected[32];
    size_t n = 0;
    if (s->failed || !EVP_MAC_final(s->ctx, expected, &n, sizeof(expected)) || n != sizeof(expected))
        return VERIFY_ERROR;
    return CRYPTO_memcmp(s->given, expected, sizeof(expected)) == 0 ? VERIFY_OK : VERIFY_MISMATCH;
}

void verify_stream_free(verify_stream_t *s)
{
    if (s == NULL)
        return;
    EVP_MAC_CTX_free(s->ctx);
    free(s);
}
