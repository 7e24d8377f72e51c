/* strbuf — see strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init_fixed(strbuf_t *b, char *mem, size_t cap)
{
    b->data = mem;
    b->len = 0;
    b->cap = cap;
    b->fixed = 1;
    b->truncated = 0;
    if (cap > 0)
        mem[0] = '\0';
}

void strbuf_free(strbuf_t *b)
{
    if (!b->fixed)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *strbuf_detach(strbuf_t *b, size_t *len)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/* Makes room for n more bytes plus the NUL; returns how many of the n fit. */
static size_t reserve(strbuf_t *b, size_t n)
{
    if (b->truncated)
        return 0;
    if (b->len + n + 1 <= b->cap)
        return n;
    if (b->fixed) {
        b->truncated = 1;
        return b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->truncated = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->truncated = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return n;
}

void strbuf_appendn(strbuf_t *b, const char *s, size_t n)
{
    size_t fit = reserve(b, n);
    if (fit == 0)
        return;
    memcpy(b->data + b->len, s, fit);
    b->len += fit;
    b->data[b->len] = '\0';
}

void strbuf_append(strbuf_t *b, const char *s)
{
    strbuf_appendn(b, s, strlen(s));
}

void strbuf_appendf(strbuf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        strbuf_appendn(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->truncated = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    strbuf_appendn(b, big, (size_t)n);
    free(big);
}

static const char hexdigits[] = "0123456789abcdef";

void strbuf_append_json_string(strbuf_t *b, const char *s, size_t n)
{
    strbuf_appendn(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        strbuf_appendn(b, s + run, i - run);
        run = i + 1;
        char esc[7];
        switch (c) {
        case '"': strbuf_appendn(b, "\\\"", 2); break;
        case '\\': strbuf_appendn(b, "\\\\", 2); break;
        case '\n': strbuf_appendn(b, "\\n", 2); break;
        case '\r': strbuf_appendn(b, "\\r", 2); break;
        case '\t': strbuf_appendn(b, "\\t", 2); break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hexdigits[c >> 4];
            esc[5] = hexdigits[c & 15];
            strbuf_appendn(b, esc, 6);
        }
    }
    strbuf_appendn(b, s + run, n - run);
    strbuf_appendn(b, "\"", 1);
}

/* The length of the well-formed UTF-8 sequence at s[0..n), or 0 when it is
 * not one (a stray continuation byte, an overlong form, a surrogate, beyond
 * U+10FFFF, or cut short). *cp is the code point. */
static size_t utf8_sequence(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n || c > 0xF4)
        return 0;
    unsigned v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const unsigned least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < least[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

void strbuf_append_printable(strbuf_t *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        unsigned c = u[i], cp = 0;
        size_t len = 1;
        char esc[8];
        size_t esc_len = 0;
        if (c < 0x20 || c == 0x7f) {
            esc_len = 4;
        } else if (c >= 0x80) {
            len = utf8_sequence(u + i, n - i, &cp);
            if (len == 0) { /* not text: the byte itself, which an 8-bit terminal might obey (0x9b is CSI) */
                len = 1;
                esc_len = 4;
            } else if (cp <= 0x9f) { /* C1 controls: U+0080..U+009F */
                memcpy(esc, "\\u00", 4);
                esc[4] = hexdigits[cp >> 4];
                esc[5] = hexdigits[cp & 15];
                esc_len = 6;
            }
        }
        if (esc_len == 4) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hexdigits[c >> 4];
            esc[3] = hexdigits[c & 15];
        }
        if (esc_len > 0) {
            strbuf_appendn(b, s + run, i - run);
            strbuf_appendn(b, esc, esc_len);
            run = i + len;
        }
        i += len;
    }
    strbuf_appendn(b, s + run, n - run);
}

void strbuf_append_html(strbuf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': strbuf_append(b, "&lt;"); break;
        case '>': strbuf_append(b, "&gt;"); break;
        case '&': strbuf_append(b, "&amp;"); break;
        case '"': strbuf_append(b, "&quot;"); break;
        case '\'': strbuf_append(b, "&#39;"); break;
        default: strbuf_appendn(b, s, 1);
        }
    }
}

void strbuf_format(char *dst, size_t len, const char *fmt, ...)
{
    if (dst == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, len, fmt, ap);
    va_end(ap);
}
