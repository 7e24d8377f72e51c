/*
 * fuzz_jslim — the slim copy against jansson. For every input jscan accepts:
 * the copy made in place equals the one made into another buffer, is no
 * longer than the input, is again accepted by jscan; and where jansson loads
 * the input too, jansson loads the copy to exactly the input's tree with the
 * link members taken out (json_equal). Any disagreement aborts.
 *
 * The tree comparison is skipped where the two readings legitimately differ:
 * inputs with a "\u" escape (jslim compares keys raw, so "ur\u006c" is kept)
 * and inputs with a key twice in one object (jansson keeps the last; jslim
 * judges each member on its own). GitHub sends neither in a key.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook/jscan.h"
#include "app/webhook/jslim.h"

static int link_key(const char *k)
{
    size_t n = strlen(k);
    if (strcmp(k, "url") == 0)
        return 1;
    return n >= 4 && strcmp(k + n - 4, "_url") == 0 && strcmp(k, "html_url") != 0;
}

/* What jslim should leave of a tree; the caller owns the result. */
static json_t *strip(json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, strip(json_array_get(v, i)));
        return a;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            if (link_key(k) && (json_is_string(m) || json_is_null(m)))
                continue;
            json_object_set_new(o, k, strip(m));
        }
        return o;
    }
    return json_incref(v);
}

static int has_unicode_escape(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (d[i] == '\\' && d[i + 1] == 'u')
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (jscan_scan((const char *)data, size, NULL, 0, NULL, NULL) != JSCAN_OK)
        return 0;
    char *in = malloc(size ? size : 1), *out = malloc(size ? size : 1);
    if (in == NULL || out == NULL)
        abort();
    memcpy(in, data, size);
    size_t n = jslim_payload((const char *)data, size, out);
    size_t m = jslim_payload(in, size, in);
    if (n > size || m != n || memcmp(in, out, n) != 0)
        abort();
    if (jscan_scan(out, n, NULL, 0, NULL, NULL) != JSCAN_OK)
        abort();

    json_error_t e;
    json_t *orig = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (orig != NULL && !has_unicode_escape(data, size)) {
        json_t *slim = json_loadb(out, n, JSON_ALLOW_NUL, &e);
        json_t *want = strip(orig);
        if (slim == NULL || !json_equal(slim, want))
            abort();
        json_decref(slim);
        json_decref(want);
    }
    json_decref(orig);
    free(in);
    free(out);
    return 0;
}
