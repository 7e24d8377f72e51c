/*
 * jslim — see jslim.h. One forward pass that trusts the grammar jscan has
 * already checked: it only needs to know where strings end and whether the
 * next string is a key, so a byte stack of open containers and one flag do.
 * The write position never passes the read position, which lets the output
 * overwrite the input.
 */
#include "jslim.h"

#include <string.h>

/* jscan refuses deeper documents; past this, keys are simply all kept */
#define JSLIM_MAX_DEPTH 256

static size_t skip_ws(const char *buf, size_t len, size_t i)
{
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
        i++;
    return i;
}

/* buf[i] is an opening quote: the index after the closing one (len when the
 * string is cut short). */
static size_t string_end(const char *buf, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (buf[i] == '\\')
            i++;
        else if (buf[i] == '"')
            return i + 1;
    }
    return len;
}

/* k[0..n) is a key's raw bytes between its quotes */
static int link_key(const char *k, size_t n)
{
    if (n == 3)
        return memcmp(k, "url", 3) == 0;
    if (n < 4 || memcmp(k + n - 4, "_url", 4) != 0)
        return 0;
    return !(n == 8 && memcmp(k, "html_url", 8) == 0);
}

/* The key string at buf[r..key_end) in an object: where its member ends
 * (after its value), or 0 when the member is kept. */
static size_t dropped_member_end(const char *buf, size_t len, size_t r, size_t key_end)
{
    if (key_end - r < 2 || buf[key_end - 1] != '"' || !link_key(buf + r + 1, key_end - r - 2))
        return 0;
    size_t i = skip_ws(buf, len, key_end);
    if (i >= len || buf[i] != ':')
        return 0;
    i = skip_ws(buf, len, i + 1);
    if (i < len && buf[i] == '"')
        return string_end(buf, len, i);
    if (len - i >= 4 && memcmp(buf + i, "null", 4) == 0)
        return i + 4;
    return 0;
}

size_t jslim_payload(const char *buf, size_t len, char *out)
{
    unsigned char is_object[JSLIM_MAX_DEPTH];
    size_t depth = 0, r = 0, w = 0;
    int want_key = 0;
#define TOP_IS_OBJECT() (depth > 0 && depth <= JSLIM_MAX_DEPTH && is_object[depth - 1])
    while (r < len) {
        char c = buf[r];
        switch (c) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            r++;
            continue;
        case '{':
        case '[':
            if (depth < JSLIM_MAX_DEPTH)
                is_object[depth] = c == '{';
            depth++;
            want_key = c == '{';
            break;
        case '}':
        case ']':
            if (depth > 0)
                depth--;
            want_key = 0;
            break;
        case ',':
            want_key = TOP_IS_OBJECT();
            break;
        case '"': {
            size_t end = string_end(buf, len, r);
            if (want_key) {
                want_key = 0;
                size_t member_end = dropped_member_end(buf, len, r, end);
                if (member_end != 0) {
                    size_t next = skip_ws(buf, len, member_end);
                    if (next < len && buf[next] == ',') {
                        r = next + 1; /* the next member takes this one's place */
                        want_key = 1;
                    } else {
                        if (w > 0 && out[w - 1] == ',')
                            w--; /* it was the last member */
                        r = next;
                    }
                    continue;
                }
            }
            memmove(out + w, buf + r, end - r);
            w += end - r;
            r = end;
            continue;
        }
        default:
            break;
        }
        out[w++] = c;
        r++;
    }
#undef TOP_IS_OBJECT
    return w;
}
