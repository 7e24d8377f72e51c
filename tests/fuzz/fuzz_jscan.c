/*
 * fuzz_jscan — jscan against jansson. Every input is scanned with a handful of
 * webhook-like paths and parsed by json_loadb; the two must agree on whether it
 * is JSON, and where both accept, every extracted value must be what jansson
 * holds at that path (strings decoded byte for byte, integers, the spans of
 * objects and arrays reparsed and compared). Any disagreement aborts.
 *
 * The differences jscan.h documents, and only those, are allowed:
 *   - jansson refuses invalid UTF-8 inside strings (jscan leaves UTF-8 to
 *     jscan_string_decode), numbers beyond its int64/double range, and
 *     "\u0000" in a key; jscan accepts all three, being valid JSON.
 *   - jscan refuses nesting deeper than JSCAN_MAX_DEPTH (jansson allows 2048).
 *   - jscan_string_decode refuses "\u0000" (jansson, given JSON_ALLOW_NUL as
 *     here, keeps it).
 *   - keys are compared raw, so values are only compared when no \u escape in
 *     the input could spell a path character.
 * And one jansson quirk (2.14): a single raw NUL byte right after a number or
 * a literal is swallowed ("[null\0]", "{"a":1\0}" load). jscan refuses raw
 * NUL outside strings, as RFC 8259 says; the check then runs on the input with
 * those bytes removed, which is the document jansson saw.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook/jscan.h"

static const char *const fuzz_paths[] = {
    "action",
    "a",
    "a.b",
    "a.b.c",
    "b",
    "comment.body",
    "comment.user.login",
    "issue.pull_request",
    "issue.number",
    "installation.id",
    "sender.login",
    "x_y",
};
#define FUZZ_NPATHS (sizeof(fuzz_paths) / sizeof(fuzz_paths[0]))

#define CHECK(cond)                                                                                                            \
    do {                                                                                                                       \
        if (!(cond))                                                                                                           \
            abort();                                                                                                           \
    } while (0)

static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
            return 0;
        for (size_t k = 2; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* A \u escape anywhere that spells a character our paths use: then a key
 * could mean a path to jansson but not to jscan (documented). */
static int may_spell_path_char(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++) {
        if (p[i] != '\\' || p[i + 1] != 'u')
            continue;
        char hex[5] = {(char)p[i + 2], (char)p[i + 3], (char)p[i + 4], (char)p[i + 5], 0};
        char *end;
        long c = strtol(hex, &end, 16);
        if (end == hex + 4 && ((c >= 'a' && c <= 'z') || c == '_'))
            return 1;
    }
    return 0;
}

static size_t tree_depth(const json_t *j)
{
    size_t d = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            size_t c = tree_depth(v);
            if (c > d)
                d = c;
        }
        return d + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            size_t c = tree_depth(v);
            if (c > d)
                d = c;
        }
        return d + 1;
    }
    return 0;
}

static json_t *lookup(json_t *root, const char *path)
{
    char buf[64];
    size_t n = strlen(path);
    CHECK(n < sizeof(buf));
    memcpy(buf, path, n + 1);
    json_t *j = root;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k != NULL; k = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(j))
            return NULL;
        j = json_object_get(j, k);
    }
    return j;
}

static void check_value(const jscan_value_t *v, json_t *want)
{
    int64_t x;
    if (want == NULL) {
        CHECK(v->type == JSCAN_ABSENT);
        return;
    }
    switch (json_typeof(want)) {
    case JSON_STRING: {
        CHECK(v->type == JSCAN_STRING);
        char *out = malloc(v->len + 1);
        CHECK(out != NULL);
        long n = jscan_string_decode(v, out, v->len + 1);
        if (memchr(json_string_value(want), '\0', json_string_length(want)) != NULL) {
            CHECK(n == -1); /* documented: U+0000 is not decoded */
        } else {
            CHECK(n >= 0 && (size_t)n == json_string_length(want));
            CHECK(memcmp(out, json_string_value(want), (size_t)n) == 0);
            CHECK(jscan_string_equals(v, out));
        }
        free(out);
        break;
    }
    case JSON_INTEGER:
        CHECK(v->type == JSCAN_NUMBER);
        if (json_integer_value(want) >= 0 && v->ptr[0] != '-') {
            CHECK(jscan_int64(v, &x) == 0 && x == json_integer_value(want));
        } else {
            CHECK(jscan_int64(v, &x) == -1);
        }
        break;
    case JSON_REAL:
        CHECK(v->type == JSCAN_NUMBER);
        CHECK(jscan_int64(v, &x) == -1);
        break;
    case JSON_TRUE:
        CHECK(v->type == JSCAN_TRUE && v->len == 4);
        break;
    case JSON_FALSE:
        CHECK(v->type == JSCAN_FALSE && v->len == 5);
        break;
    case JSON_NULL:
        CHECK(v->type == JSCAN_NULL && v->len == 4);
        break;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        CHECK(v->type == (json_is_object(want) ? JSCAN_OBJECT : JSCAN_ARRAY));
        json_error_t err;
        json_t *again = json_loadb(v->ptr, v->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        CHECK(again != NULL && json_equal(again, want));
        json_decref(again);
        break;
    }
    }
}

/* The input as jansson reads it: without a NUL that directly follows the
 * last byte of a number or literal. NULL when there is none. */
static uint8_t *strip_swallowed_nul(const uint8_t *data, size_t size, size_t *out_size)
{
    uint8_t *out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        int swallowed = data[i] == '\0' && i > 0 &&
                        ((data[i - 1] >= '0' && data[i - 1] <= '9') || (data[i - 1] >= 'a' && data[i - 1] <= 'z'));
        if (swallowed && out == NULL) {
            out = malloc(size);
            CHECK(out != NULL);
            memcpy(out, data, i);
            n = i;
        }
        if (out != NULL && !swallowed)
            out[n++] = data[i];
    }
    *out_size = n;
    return out;
}

/* Scans data with the fuzz paths, checks what jscan promises on its own, and
 * returns the verdict with the values in v. */
static int scan_checked(const uint8_t *data, size_t size, jscan_value_t *v, size_t *err_offset)
{
    *err_offset = (size_t)-1;
    int rc = jscan_scan((const char *)data, size, fuzz_paths, FUZZ_NPATHS, v, err_offset);
    CHECK(rc == JSCAN_OK || rc == JSCAN_ERR_SYNTAX || rc == JSCAN_ERR_DEPTH || rc == JSCAN_ERR_NOT_OBJECT);
    CHECK(*err_offset <= size);
    CHECK(jscan_scan((const char *)data, size, NULL, 0, NULL, NULL) == rc); /* paths never change the verdict */

    for (size_t i = 0; i < FUZZ_NPATHS; i++) {
        if (rc != JSCAN_OK) {
            CHECK(v[i].type == JSCAN_ABSENT);
            continue;
        }
        if (v[i].type == JSCAN_ABSENT)
            continue;
        CHECK(v[i].ptr >= (const char *)data && v[i].len <= size && v[i].ptr + v[i].len <= (const char *)data + size);
        if (v[i].type == JSCAN_STRING) {
            /* the documented bound: len + 1 always suffices for what decodes */
            char *out = malloc(v[i].len + 1);
            CHECK(out != NULL);
            long n = jscan_string_decode(&v[i], out, v[i].len + 1);
            CHECK(n == -1 || (size_t)n <= v[i].len);
            if (n >= 0) {
                /* what decodes is well-formed UTF-8 without NUL, by our own check */
                CHECK(out[n] == '\0' && memchr(out, '\0', (size_t)n) == NULL && utf8_valid((uint8_t *)out, (size_t)n));
                /* one byte short must fail, and (exact-size heap buffer) not write past it */
                char *tight = malloc((size_t)n + 1);
                CHECK(tight != NULL);
                CHECK(jscan_string_decode(&v[i], tight, (size_t)n) == -1);
                CHECK(jscan_string_decode(&v[i], tight, (size_t)n + 1) == n && memcmp(tight, out, (size_t)n + 1) == 0);
                free(tight);
            }
            free(out);
        }
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jscan_value_t v[FUZZ_NPATHS];
    size_t err_offset;
    uint8_t *stripped = NULL;
    int rc = scan_checked(data, size, v, &err_offset);

    json_error_t err;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j != NULL && rc == JSCAN_ERR_SYNTAX && err_offset < size && data[err_offset] == '\0') {
        size_t n;
        stripped = strip_swallowed_nul(data, size, &n);
        CHECK(stripped != NULL);
        data = stripped;
        size = n;
        rc = scan_checked(data, size, v, &err_offset);
    }
    int accepted = rc == JSCAN_OK || rc == JSCAN_ERR_NOT_OBJECT;

    if (j != NULL && !accepted) {
        /* only the depth limit may refuse what jansson takes */
        CHECK(rc == JSCAN_ERR_DEPTH && tree_depth(j) > JSCAN_MAX_DEPTH);
    } else if (j == NULL && accepted) {
        switch (json_error_code(&err)) {
        case json_error_invalid_utf8:
            CHECK(!utf8_valid(data, size));
            break;
        case json_error_null_byte_in_key:
            CHECK(memmem(data, size, "\\u0000", 6) != NULL);
            break;
        case json_error_numeric_overflow:
            break;
        default:
            abort();
        }
    } else if (j != NULL) {
        CHECK((rc == JSCAN_OK) == json_is_object(j));
        CHECK(tree_depth(j) <= JSCAN_MAX_DEPTH);
        if (rc == JSCAN_OK && !may_spell_path_char(data, size))
            for (size_t i = 0; i < FUZZ_NPATHS; i++)
                check_value(&v[i], lookup(j, fuzz_paths[i]));
    }
    json_decref(j);
    free(stripped);
    return 0;
}
