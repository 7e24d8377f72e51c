/*
 * jscan — see jscan.h. One forward pass driven by a small goto state machine
 * over an explicit stack of open containers (no recursion, so a hostile
 * payload cannot exhaust the C stack). Each open object carries a bitmask of
 * the requested paths that can still match below it; in the common case it is
 * zero and the object's keys are validated but never compared.
 */
#include "jscan.h"

#include <limits.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------------- */
/* Bytes                                                                     */
/* ------------------------------------------------------------------------- */

static inline unsigned lowest_bit(uint64_t m)
{
    return (unsigned)__builtin_ctzll(m);
}

/* Compact payloads have no whitespace at all; pretty ones have runs of
 * indentation. One compare settles the first case. */
static inline int is_ws(uint8_t c)
{
    return c <= ' ' && (c == ' ' || c == '\n' || c == '\r' || c == '\t');
}

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static inline int hex_digit(uint8_t c)
{
    if ((unsigned)(c - '0') < 10u)
        return c - '0';
    c |= 0x20;
    if ((unsigned)(c - 'a') < 6u)
        return c - 'a' + 10;
    return -1;
}

/* Four hex digits at p (the caller checked they are there); -1 when not hex. */
static inline long hex4(const uint8_t *p)
{
    int a = hex_digit(p[0]), b = hex_digit(p[1]), c = hex_digit(p[2]), d = hex_digit(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return (long)((a << 12) | (b << 8) | (c << 4) | d);
}

/* Reads the escape at p (a backslash) into *cp; returns the byte after it, or
 * NULL when it is not a JSON escape. A \u escape for a UTF-16 surrogate must be
 * a high one followed at once by a low one: a lone surrogate names no
 * character, could not be decoded later, and jansson refuses it too. */
static const uint8_t *escape_read(const uint8_t *p, const uint8_t *end, uint32_t *cp)
{
    if (end - p < 2)
        return NULL;
    switch (p[1]) {
    case '"':
        *cp = '"';
        return p + 2;
    case '\\':
        *cp = '\\';
        return p + 2;
    case '/':
        *cp = '/';
        return p + 2;
    case 'b':
        *cp = '\b';
        return p + 2;
    case 'f':
        *cp = '\f';
        return p + 2;
    case 'n':
        *cp = '\n';
        return p + 2;
    case 'r':
        *cp = '\r';
        return p + 2;
    case 't':
        *cp = '\t';
        return p + 2;
    case 'u':
        break;
    default:
        return NULL;
    }
    if (end - p < 6)
        return NULL;
    long hi = hex4(p + 2);
    if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return NULL;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = (uint32_t)hi;
        return p + 6;
    }
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
        return NULL;
    long lo = hex4(p + 8);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return NULL;
    *cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
    return p + 12;
}

static inline int string_special(uint8_t c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

#ifdef __SSE2__
/* Bit i set when p[i] is '"', '\\' or a control character. */
static inline unsigned string_special16(const uint8_t *p)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), ctl = _mm_set1_epi8(0x1f);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* No unsigned compare in SSE2: v <= 0x1f exactly when max(v, 0x1f) == 0x1f. */
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                             _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
    return (unsigned)_mm_movemask_epi8(m);
}
#else
/* Nonzero when any of the 8 bytes in w is '"', '\\' or a control character
 * (the classic has-zero-byte/has-less-than tricks: exact as a yes/no, which is
 * all we ask; the scalar loop then finds the byte). */
static inline uint64_t string_special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & highs;
}
#endif

/* Moves *pp from just past an opening quote to the closing quote, validating
 * escapes and refusing raw control characters. On failure returns -1 with *pp
 * at the offending byte (or at end when the string is unterminated). */
static inline int string_end(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint32_t cp;

    for (;;) {
#ifdef __SSE2__
        while (end - p >= 16) {
            unsigned m = string_special16(p);
            if (m != 0) {
                p += __builtin_ctz(m);
                goto special;
            }
            p += 16;
        }
#else
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (string_special8(w))
                break;
            p += 8;
        }
#endif
        while (p < end && !string_special(*p))
            p++;
        if (p == end)
            goto fail;
#ifdef __SSE2__
    special:
#endif
        if (*p == '"') {
            *pp = p;
            return 0;
        }
        if (*p != '\\')
            goto fail;
        const uint8_t *next = escape_read(p, end, &cp);
        if (next == NULL)
            goto fail;
        p = next;
    }
fail:
    *pp = p;
    return -1;
}

/* Moves p past a number in JSON's form: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Returns NULL with *errp at the offending byte when it is not one. Whatever
 * follows is for the caller to judge ("01" is "0" followed by garbage). */
static inline const uint8_t *number_end(const uint8_t *p, const uint8_t *end, const uint8_t **errp)
{
    if (*p == '-')
        p++;
    if (p == end)
        goto fail;
    if (*p == '0') {
        p++;
    } else if ((unsigned)(*p - '1') < 9u) {
        p++;
        while (p < end && (unsigned)(*p - '0') < 10u)
            p++;
    } else {
        goto fail;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || (unsigned)(*p - '0') >= 10u)
            goto fail;
        while (p < end && (unsigned)(*p - '0') < 10u)
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || (unsigned)(*p - '0') >= 10u)
            goto fail;
        while (p < end && (unsigned)(*p - '0') < 10u)
            p++;
    }
    return p;
fail:
    *errp = p;
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Paths                                                                     */
/* ------------------------------------------------------------------------- */

/* Where each requested path stands: comp[i] is its component for the keys of
 * the deepest open object in which it is still a candidate. Components move
 * forward when a matching key's value opens an object and back when it closes;
 * both are rare (a few objects per payload lie on requested paths). */
struct matcher {
    const char *path[JSCAN_MAX_PATHS];
    const char *comp[JSCAN_MAX_PATHS];
    size_t len[JSCAN_MAX_PATHS];
};

/* -1 when a path is empty or has an empty component ("a..b", ".a", "a."). */
static int matcher_add(struct matcher *mt, size_t i, const char *path)
{
    if (path == NULL)
        return -1;
    const char *s = path;
    for (;;) {
        size_t n = strcspn(s, ".");
        if (n == 0)
            return -1;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    mt->path[i] = path;
    mt->comp[i] = path;
    mt->len[i] = strcspn(path, ".");
    return 0;
}

/* Splits the candidates m by key: *ends gets the paths whose last component
 * the key is (the value is theirs), *through the paths that continue below. */
static inline void matcher_match(const struct matcher *mt, uint64_t m, const uint8_t *key, size_t klen, uint64_t *ends,
                                 uint64_t *through)
{
    uint64_t e = 0, t = 0;
    while (m != 0) {
        unsigned i = lowest_bit(m);
        uint64_t bit = m & (~m + 1);
        m &= m - 1;
        if (mt->len[i] == klen && memcmp(mt->comp[i], key, klen) == 0) {
            if (mt->comp[i][klen] == '\0')
                e |= bit;
            else
                t |= bit;
        }
    }
    *ends = e;
    *through = t;
}

static void matcher_descend(struct matcher *mt, uint64_t m)
{
    while (m != 0) {
        unsigned i = lowest_bit(m);
        m &= m - 1;
        const char *c = mt->comp[i] + mt->len[i] + 1;
        mt->comp[i] = c;
        mt->len[i] = strcspn(c, ".");
    }
}

static void matcher_ascend(struct matcher *mt, uint64_t m)
{
    while (m != 0) {
        unsigned i = lowest_bit(m);
        m &= m - 1;
        const char *dot = mt->comp[i] - 1, *s = dot;
        while (s > mt->path[i] && s[-1] != '.')
            s--;
        mt->comp[i] = s;
        mt->len[i] = (size_t)(dot - s);
    }
}

static void values_set(jscan_value_t *values, uint64_t m, jscan_type_t type, const uint8_t *ptr, size_t len)
{
    while (m != 0) {
        unsigned i = lowest_bit(m);
        m &= m - 1;
        values[i].type = type;
        values[i].ptr = (const char *)ptr;
        values[i].len = len;
    }
}

/* ------------------------------------------------------------------------- */
/* The scan                                                                  */
/* ------------------------------------------------------------------------- */

static const char *const literal_words[] = {[JSCAN_TRUE] = "true", [JSCAN_FALSE] = "false", [JSCAN_NULL] = "null"};

/* An open container. `mask` is only ever nonzero for objects: arrays are not
 * descended for matching. */
struct frame {
    uint64_t mask; /* paths still candidates for this object's keys */
    uint64_t rec;  /* paths whose value is this container: their len is set at its close */
};

int jscan_scan(const char *buf, size_t len, const char *const *paths, size_t npaths, jscan_value_t *values, size_t *err_offset)
{
    struct frame stack[JSCAN_MAX_DEPTH];
    uint8_t is_array[JSCAN_MAX_DEPTH];
    struct matcher mt;
    size_t depth = 0;
    uint64_t ends = 0, through = 0; /* paths the value about to be read ends, or passes through */
    const uint8_t *p, *end, *top, *s, *errp;
    jscan_type_t lit;
    size_t litlen;
    int rc;

    if (err_offset != NULL)
        *err_offset = 0;
    if (npaths > JSCAN_MAX_PATHS || (npaths > 0 && (paths == NULL || values == NULL)))
        return JSCAN_ERR_USAGE;
    for (size_t i = 0; i < npaths; i++)
        values[i] = (jscan_value_t){JSCAN_ABSENT, NULL, 0};
    for (size_t i = 0; i < npaths; i++)
        if (matcher_add(&mt, i, paths[i]) < 0)
            return JSCAN_ERR_USAGE;
    if (buf == NULL)
        return JSCAN_ERR_SYNTAX;

    p = (const uint8_t *)buf;
    end = p + len;
    p = skip_ws(p, end);
    if (p == end)
        goto syntax;
    top = p;
    if (*p == '{') {
        stack[0].mask = npaths == 64 ? ~(uint64_t)0 : ((uint64_t)1 << npaths) - 1;
        stack[0].rec = 0;
        is_array[0] = 0;
        depth = 1;
        p++;
        goto object_open;
    }
    goto value;

value: /* p at the first byte of a value, whitespace skipped */
    if (p == end)
        goto syntax;
    switch (*p) {
    case '"':
        s = ++p;
        if (string_end(&p, end) < 0)
            goto syntax;
        if (ends != 0)
            values_set(values, ends, JSCAN_STRING, s, (size_t)(p - s));
        p++;
        goto after_value;
    case '{':
    case '[':
        if (depth == JSCAN_MAX_DEPTH) {
            rc = JSCAN_ERR_DEPTH;
            goto fail;
        }
        is_array[depth] = *p == '[';
        stack[depth].rec = ends;
        stack[depth].mask = 0;
        if (ends != 0)
            values_set(values, ends, is_array[depth] ? JSCAN_ARRAY : JSCAN_OBJECT, p, 0);
        if (through != 0 && !is_array[depth]) {
            stack[depth].mask = through;
            matcher_descend(&mt, through);
        }
        depth++;
        if (*p++ == '{')
            goto object_open;
        ends = through = 0;
        p = skip_ws(p, end);
        if (p < end && *p == ']') {
            p++;
            goto close;
        }
        goto value;
    case 't':
        lit = JSCAN_TRUE, litlen = 4;
        goto literal;
    case 'f':
        lit = JSCAN_FALSE, litlen = 5;
        goto literal;
    case 'n':
        lit = JSCAN_NULL, litlen = 4;
        goto literal;
    default:
        s = p;
        p = number_end(p, end, &errp);
        if (p == NULL) {
            p = errp;
            goto syntax;
        }
        if (ends != 0)
            values_set(values, ends, JSCAN_NUMBER, s, (size_t)(p - s));
        goto after_value;
    }

literal:
    if ((size_t)(end - p) < litlen || memcmp(p, literal_words[lit], litlen) != 0)
        goto syntax;
    if (ends != 0)
        values_set(values, ends, lit, p, litlen);
    p += litlen;
    goto after_value;

object_open: /* just past '{' */
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        p++;
        goto close;
    }
    /* fall through */
key: /* p where a key must start */
    if (p == end || *p != '"')
        goto syntax;
    s = ++p;
    if (string_end(&p, end) < 0)
        goto syntax;
    if (stack[depth - 1].mask != 0) {
        matcher_match(&mt, stack[depth - 1].mask, s, (size_t)(p - s), &ends, &through);
        /* The last duplicate wins wholesale, as in jansson: what an earlier
         * "issue": {...} held must not survive a later "issue" that lacks it. */
        if (through != 0)
            values_set(values, through, JSCAN_ABSENT, NULL, 0);
    } else {
        ends = through = 0;
    }
    p = skip_ws(p + 1, end);
    if (p == end || *p != ':')
        goto syntax;
    p = skip_ws(p + 1, end);
    goto value;

after_value:
    if (depth == 0)
        goto top_done;
    p = skip_ws(p, end);
    if (p == end)
        goto syntax;
    if (*p == ',') {
        p = skip_ws(p + 1, end);
        if (!is_array[depth - 1])
            goto key;
        ends = through = 0;
        goto value;
    }
    if (*p != (is_array[depth - 1] ? ']' : '}'))
        goto syntax;
    p++;
    /* fall through */
close: /* just past the bracket closing stack[depth - 1] */
    depth--;
    if (stack[depth].mask != 0)
        matcher_ascend(&mt, stack[depth].mask);
    if (stack[depth].rec != 0) {
        uint64_t m = stack[depth].rec;
        while (m != 0) {
            unsigned i = lowest_bit(m);
            m &= m - 1;
            values[i].len = (size_t)(p - (const uint8_t *)values[i].ptr);
        }
    }
    goto after_value;

top_done:
    p = skip_ws(p, end);
    if (p != end)
        goto syntax;
    if (*top != '{') {
        p = top;
        rc = JSCAN_ERR_NOT_OBJECT;
        goto fail;
    }
    return JSCAN_OK;

syntax:
    rc = JSCAN_ERR_SYNTAX;
fail:
    /* Half a scan is worse than none: a caller that ignores rc must not route
     * on fields read before the error. */
    for (size_t i = 0; i < npaths; i++)
        values[i] = (jscan_value_t){JSCAN_ABSENT, NULL, 0};
    if (err_offset != NULL)
        *err_offset = (size_t)(p - (const uint8_t *)buf);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Values                                                                    */
/* ------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7: no
 * overlongs, no surrogates, nothing above U+10FFFF), or -1. */
static int utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xBF;
    ptrdiff_t n;

    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return -1;
    if (c < 0xE0)
        n = 2;
    else if (c < 0xF0)
        n = 3;
    else if (c < 0xF5)
        n = 4;
    else
        return -1;
    if (end - p < n)
        return -1;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return -1;
    for (ptrdiff_t k = 2; k < n; k++)
        if ((p[k] & 0xC0) != 0x80)
            return -1;
    return (int)n;
}

static int utf8_put(uint8_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the character at *pp into o (4 bytes of room); returns its length
 * and advances *pp, or -1. Values may be built by hand rather than come from
 * jscan_scan, so the raw bytes are checked again here. U+0000 is refused: the
 * result is used as a C string, and a value cut short at an embedded NUL is how
 * a check on one string ends up passing another. */
static inline int char_decode(const uint8_t **pp, const uint8_t *end, uint8_t *o)
{
    const uint8_t *p = *pp;
    uint32_t cp;
    int n;

    if (*p == '\\') {
        const uint8_t *next = escape_read(p, end, &cp);
        if (next == NULL || cp == 0)
            return -1;
        *pp = next;
        return utf8_put(o, cp);
    }
    if (*p < 0x20 || *p == '"')
        return -1;
    n = utf8_len(p, end);
    if (n < 0)
        return -1;
    memcpy(o, p, (size_t)n);
    *pp = p + n;
    return n;
}

long jscan_string_decode(const jscan_value_t *v, char *out, size_t out_cap)
{
    const uint8_t *p, *end;
    uint8_t *o, *room_end, tmp[4];
    int n;

    if (out == NULL || out_cap == 0)
        return -1;
    out[0] = '\0';
    if (v == NULL || v->type != JSCAN_STRING || (v->ptr == NULL && v->len > 0) || v->len > LONG_MAX)
        return -1;
    p = (const uint8_t *)v->ptr;
    end = p + v->len;
    o = (uint8_t *)out;
    room_end = o + out_cap - 1; /* the NUL's place */
    while (p < end) {
#ifdef __SSE2__
        /* Bodies are mostly plain ASCII: copy it 16 bytes at a time. */
        while (end - p >= 16 && room_end - o >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
            if ((string_special16(p) | (unsigned)_mm_movemask_epi8(x)) != 0)
                break;
            _mm_storeu_si128((__m128i *)(void *)o, x);
            p += 16;
            o += 16;
        }
        if (p == end)
            break;
#endif
        if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            if (o == room_end)
                goto fail;
            *o++ = *p++;
            continue;
        }
        n = char_decode(&p, end, tmp);
        if (n < 0 || room_end - o < n)
            goto fail;
        memcpy(o, tmp, (size_t)n);
        o += n;
    }
    *o = '\0';
    return (long)(o - (uint8_t *)out);
fail:
    out[0] = '\0';
    return -1;
}

int jscan_string_equals(const jscan_value_t *v, const char *s)
{
    const uint8_t *p, *end, *q = (const uint8_t *)s;
    uint8_t tmp[4];

    if (v == NULL || v->type != JSCAN_STRING || s == NULL || (v->ptr == NULL && v->len > 0))
        return 0;
    p = (const uint8_t *)v->ptr;
    end = p + v->len;
    while (p < end) {
        int n = char_decode(&p, end, tmp);
        if (n < 0)
            return 0;
        /* tmp holds no NUL, so s's terminator stops the compare in time */
        for (int k = 0; k < n; k++)
            if (*q++ != tmp[k])
                return 0;
    }
    return *q == '\0';
}

int jscan_int64(const jscan_value_t *v, int64_t *out)
{
    const uint8_t *p, *end;
    int64_t x = 0;

    if (v == NULL || out == NULL || v->type != JSCAN_NUMBER || v->ptr == NULL || v->len == 0)
        return -1;
    p = (const uint8_t *)v->ptr;
    end = p + v->len;
    if (*p == '0' && v->len > 1)
        return -1;
    for (; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d >= 10u)
            return -1;
        if (x > (INT64_MAX - (int64_t)d) / 10)
            return -1;
        x = x * 10 + (int64_t)d;
    }
    *out = x;
    return 0;
}

int jscan_braced(const char *buf, size_t len)
{
    const uint8_t *p = skip_ws((const uint8_t *)buf, (const uint8_t *)buf + len), *z = (const uint8_t *)buf + len;
    while (z > p && is_ws(z[-1]))
        z--;
    return z - p >= 2 && *p == '{' && z[-1] == '}';
}
