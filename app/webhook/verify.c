/* verify — see verify.h. One-shot HMAC() is not deprecated in OpenSSL 3. */
#include "verify.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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

int verify_signature(const char *secret, size_t secret_len, const char *body, size_t body_len, const char *header,
                     size_t header_len)
{
    if (header == NULL || secret == NULL || secret_len == 0)
        return VERIFY_MISSING;
    if (header_len != VERIFY_HEADER_LEN || memcmp(header, "sha256=", 7) != 0)
        return VERIFY_MALFORMED;

    unsigned char given[32];
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_value(header[7 + 2 * i]), lo = hex_value(header[7 + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return VERIFY_MALFORMED;
        given[i] = (unsigned char)(hi << 4 | lo);
    }

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
    }
    return "unknown";
}
