/*
 * jscan — a validating JSON scanner that extracts a few fields by path without
 * building a tree.
 *
 * The webhook hot path needs maybe twenty fields (action, sender.login,
 * comment.body, ...) out of a 5–100 KB payload, within a CPU budget of ~30 µs
 * per delivery; jansson needs ~200 µs to parse a 14 KB payload, so jansson
 * lives on the worker side and the server uses this. One pass over the bytes:
 * the whole document is validated (RFC 8259 grammar, strings without raw
 * control characters and with valid escapes, numbers in JSON's form, a depth
 * limit, nothing but whitespace after the top value), string bodies are
 * skipped 16 bytes at a time (SSE2; 8-byte words elsewhere), and the value at
 * each requested path is recorded
 * as a span into the caller's buffer. UTF-8 inside strings is not validated
 * here; jscan_string_decode validates what it decodes.
 *
 * Paths are dot-separated object keys from the root ("comment.user.login");
 * arrays are never descended into for matching (their contents are still
 * validated). When a key repeats in one object, the last one wins wholesale,
 * as in jansson: after {"a":{"b":1},"a":{}} the path "a.b" is absent. Keys are
 * compared as raw bytes: a key written with escapes does not match.
 *
 * Where it differs from jansson's json_loadb (checked by the fuzz target):
 * a \u escape for a UTF-16 surrogate must be a high one followed by a low one
 * (jansson agrees; bare RFC grammar would allow lone ones); "\u0000" in a
 * string or key is accepted (jansson wants JSON_ALLOW_NUL, and refuses it in
 * keys always) but jscan_string_decode refuses it; invalid UTF-8 inside
 * strings and numbers beyond int64/double range are accepted (jansson refuses
 * both); nesting is limited to JSCAN_MAX_DEPTH (jansson: 2048); a raw NUL byte
 * after a number or literal is refused (jansson 2.14 silently skips it).
 *
 * Memory: nothing is allocated by jscan_scan (it takes ~4 KB of stack); spans
 * point into the input, which must outlive them. Reentrant; any thread.
 */
#ifndef PATCHBAY_JSCAN_H
#define PATCHBAY_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSCAN_MAX_PATHS 64
/* Open objects and arrays at once, the top-level object included. */
#define JSCAN_MAX_DEPTH 128

typedef enum {
    JSCAN_ABSENT = 0, /* the path was not in the document */
    JSCAN_STRING,
    JSCAN_NUMBER,
    JSCAN_TRUE,
    JSCAN_FALSE,
    JSCAN_NULL,
    JSCAN_OBJECT,
    JSCAN_ARRAY,
} jscan_type_t;

typedef struct {
    jscan_type_t type;
    /* STRING: the raw bytes between the quotes (escapes not decoded);
     * NUMBER/TRUE/FALSE/NULL: the literal; OBJECT/ARRAY: from the opening
     * bracket to the closing one inclusive. */
    const char *ptr;
    size_t len;
} jscan_value_t;

typedef enum {
    JSCAN_OK = 0,
    JSCAN_ERR_SYNTAX = -1,   /* not JSON */
    JSCAN_ERR_DEPTH = -2,    /* nested deeper than JSCAN_MAX_DEPTH */
    JSCAN_ERR_NOT_OBJECT = -3, /* valid JSON but the top value is not an object */
    JSCAN_ERR_USAGE = -4,    /* too many paths, or an empty path component */
} jscan_err_t;

/* Scans buf[0..len). `paths` has npaths entries (<= JSCAN_MAX_PATHS), each a
 * NUL-terminated dotted path; values[i] receives the value at paths[i] or
 * type JSCAN_ABSENT. On any error every values[i] is JSCAN_ABSENT, so nothing
 * read before the error can be routed on. On error, *err_offset (if not NULL)
 * is the byte offset where the input stopped making sense (len for a document
 * cut short; the top value for NOT_OBJECT; 0 for USAGE). npaths may be 0 (and
 * paths, values NULL) to validate only. Returns JSCAN_OK or a jscan_err_t. */
int jscan_scan(const char *buf, size_t len, const char *const *paths, size_t npaths, jscan_value_t *values,
               size_t *err_offset);

/* Whether buf[0..len), whitespace aside, starts with '{' and ends with '}':
 * what a JSON object must do, checked without scanning it. */
int jscan_braced(const char *buf, size_t len);

/* Decodes a STRING value's escapes into out (NUL-terminated). Returns the
 * decoded length, or -1 when the escapes or the UTF-8 (after decoding) are
 * invalid (lone surrogates, overlongs, encoded surrogates, > U+10FFFF, raw
 * control characters), when it contains U+0000 (a C string cannot carry it,
 * and a value cut short at an embedded NUL is how a check on one string ends
 * up passing another), or when it would not fit in out_cap - 1 bytes. Never
 * writes past out_cap; on failure out is "" (when out_cap > 0). The decoded
 * text is never longer than v->len, so out_cap = v->len + 1 always suffices
 * for a value that decodes. */
long jscan_string_decode(const jscan_value_t *v, char *out, size_t out_cap);

/* Compares a STRING value (decoded) with s; 1 when equal, 0 otherwise,
 * including when v does not decode (see jscan_string_decode). */
int jscan_string_equals(const jscan_value_t *v, const char *s);

/* Parses a NUMBER value that is a non-negative integer fitting int64 into
 * *out; returns 0, or -1 for anything else (any minus sign, "-0" included;
 * fraction or exponent, even "1.0" or "1e3"; overflow; not a number), leaving
 * *out untouched. */
int jscan_int64(const jscan_value_t *v, int64_t *out);

#endif
