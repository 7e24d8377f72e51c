/* httpq — see httpq.h. */
#include "httpq.h"

#include <string.h>

/* The raw value of name in "a=1&b=2" form text, or zero-length. */
static h2o_iovec_t form_value(const char *p, const char *end, const char *name)
{
    size_t nl = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) >= nl + 1 && memcmp(p, name, nl) == 0 && p[nl] == '=')
            return h2o_iovec_init(p + nl + 1, (size_t)(stop - p - nl - 1));
        p = amp ? amp + 1 : end;
    }
    return h2o_iovec_init(NULL, 0);
}

h2o_iovec_t httpq_value(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init(NULL, 0);
    return form_value(req->path.base + req->query_at + 1, req->path.base + req->path.len, name);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int decode(h2o_iovec_t v, char *out, size_t out_len)
{
    if (v.base == NULL || out_len == 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= v.len)
                return -1;
            int a = hexval(v.base[i + 1]), b = hexval(v.base[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            c = (char)(a * 16 + b);
            i += 2;
        }
        if (c == '\0' || o + 1 >= out_len)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int httpq_decoded(h2o_req_t *req, const char *name, char *out, size_t out_len)
{
    return decode(httpq_value(req, name), out, out_len);
}

int httpq_form_decoded(h2o_req_t *req, const char *name, char *out, size_t out_len)
{
    if (req->entity.base == NULL)
        return -1;
    return decode(form_value(req->entity.base, req->entity.base + req->entity.len, name), out, out_len);
}

h2o_iovec_t httpq_cookie(h2o_req_t *req, const char *name)
{
    size_t nl = strlen(name);
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        const char *p = v.base, *end = v.base + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi ? semi : end;
            if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
                return h2o_iovec_init(p + nl + 1, (size_t)(stop - p - nl - 1));
            p = stop;
        }
    }
    return h2o_iovec_init(NULL, 0);
}
