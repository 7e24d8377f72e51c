/* ghjwt — see ghjwt.h. */
#include "ghjwt.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* OpenSSL's reason for the newest error on this thread's queue, which is then
 * cleared so a later, unrelated call does not report it. */
static void openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", reason ? reason : "unknown OpenSSL error");
    ERR_clear_error();
}

/* The file's bytes, NUL-terminated; NULL with the reason in err. */
static char *read_key_file(const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    struct stat st;
    if (f == NULL) {
        snprintf(err, err_len, "cannot read the private key %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "cannot read the private key %s: not a regular file", path);
        goto done;
    }
    if (st.st_size > GHJWT_KEY_MAX_BYTES) {
        snprintf(err, err_len, "the private key %s is larger than %d bytes: not a PEM key", path, GHJWT_KEY_MAX_BYTES);
        goto done;
    }
    if ((buf = calloc(1, (size_t)st.st_size + 1)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        snprintf(err, err_len, "cannot read the private key %s: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
    }
done:
    fclose(f);
    return buf;
}

int ghjwt_key_load(EVP_PKEY **out, const char *pem, const char *path, char *err, size_t err_len)
{
    char *owned = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    const char *what = pem ? "PRIVATE_KEY" : path;
    int rc = GHJWT_ERR_KEY;

    *out = NULL;
    if (pem == NULL && path == NULL) {
        snprintf(err, err_len, "no private key: set PRIVATE_KEY or PRIVATE_KEY_PATH");
        return GHJWT_ERR_KEY;
    }
    if (pem == NULL && (pem = owned = read_key_file(path, err, err_len)) == NULL)
        return GHJWT_ERR_KEY;
    if (strstr(pem, "-----BEGIN") == NULL) {
        snprintf(err, err_len, "%s is not a PEM private key (no -----BEGIN line)", what);
        goto done;
    }
    if ((bio = BIO_new_mem_buf(pem, -1)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    /* reads "RSA PRIVATE KEY" (PKCS#1) and "PRIVATE KEY" (PKCS#8) alike; the
     * empty passphrase callback keeps OpenSSL from prompting on a tty for an
     * encrypted key */
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    if (key == NULL) {
        char why[128];
        openssl_reason(why, sizeof(why));
        snprintf(err, err_len, "%s is not a usable PEM private key (%s)", what, why);
        goto done;
    }
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        snprintf(err, err_len, "%s is not an RSA key; GitHub Apps sign with RS256", what);
        goto done;
    }
    *out = key;
    key = NULL;
    rc = GHJWT_OK;
done:
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (owned != NULL) {
        OPENSSL_cleanse(owned, strlen(owned));
        free(owned);
    }
    return rc;
}

size_t ghjwt_base64url(char *out, const unsigned char *in, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

#define B64_LEN(n) (4 * (((n) + 2) / 3) + 1)

int ghjwt_sign(char **out, int64_t *exp_out, EVP_PKEY *key, const char *app_id, int64_t now_s, char *err,
               size_t err_len)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char claims[128];
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    char *jwt = NULL;
    size_t sig_len = 0;
    int rc = GHJWT_ERR_SIGN;

    *out = NULL;
    if (key == NULL || app_id == NULL || app_id[0] == '\0' || strspn(app_id, "0123456789") != strlen(app_id) ||
        strlen(app_id) > 20) {
        snprintf(err, err_len, "APP_ID must be the App's numeric ID");
        return GHJWT_ERR_KEY;
    }
    int64_t exp = now_s + GHJWT_LIFETIME_S;
    int n = snprintf(claims, sizeof(claims), "{\"iat\":%lld,\"exp\":%lld,\"iss\":%s}",
                     (long long)(now_s - GHJWT_IAT_BACKDATE_S), (long long)exp, app_id);
    if (n < 0 || (size_t)n >= sizeof(claims)) {
        snprintf(err, err_len, "JWT claims too long");
        return GHJWT_ERR_SIGN;
    }

    size_t hlen = sizeof(header) - 1, clen = (size_t)n;
    size_t key_bytes = (size_t)EVP_PKEY_get_size(key);
    size_t cap = B64_LEN(hlen) + 1 + B64_LEN(clen) + 1 + B64_LEN(key_bytes) + 1;
    if ((jwt = malloc(cap)) == NULL || (md = EVP_MD_CTX_new()) == NULL || (sig = malloc(key_bytes)) == NULL) {
        snprintf(err, err_len, "out of memory");
        goto done;
    }
    size_t len = ghjwt_base64url(jwt, (const unsigned char *)header, hlen);
    jwt[len++] = '.';
    len += ghjwt_base64url(jwt + len, (const unsigned char *)claims, clen);
    size_t signed_len = len;

    sig_len = key_bytes;
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)jwt, signed_len) != 1) {
        char why[128];
        openssl_reason(why, sizeof(why));
        snprintf(err, err_len, "cannot sign the App JWT: %s", why);
        goto done;
    }
    jwt[len++] = '.';
    ghjwt_base64url(jwt + len, sig, sig_len);
    *out = jwt;
    jwt = NULL;
    if (exp_out != NULL)
        *exp_out = exp;
    rc = GHJWT_OK;
done:
    free(jwt);
    free(sig);
    EVP_MD_CTX_free(md);
    return rc;
}
