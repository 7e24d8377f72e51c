/* ghmd — see ghmd.h. */
#include "ghmd.h"
#include "app/common/redact.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define ZWSP "\xE2\x80\x8B"        /* zero-width space: "@\u200Bname" is shown as "@name" but pings nobody */
#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD for bytes that are not text */

static int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_ascii_punct(unsigned char c)
{
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        k = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        k = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        k = 4, cp = c & 0x07;
    else
        return 0;
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static size_t longest_run(const char *s, size_t n, char ch)
{
    size_t best = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        run = s[i] == ch ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

void ghmd_code_span(strbuf_t *out, const char *s, int in_table)
{
    size_t n = strlen(s);
    size_t ticks = longest_run(s, n, '`') + 1;
    for (size_t i = 0; i < ticks; i++)
        strbuf_append(out, "`");
    int pad = n == 0 || s[0] == '`' || s[n - 1] == '`' || s[0] == ' ';
    if (pad)
        strbuf_append(out, " ");
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = utf8_len((const unsigned char *)s + i, n - i);
        if (k == 0 || c < 0x20 || c == 0x7F) {
            strbuf_append(out, REPLACEMENT);
            i += k ? k : 1;
        } else if (c == '|' && in_table) {
            strbuf_append(out, "\\|");
            i++;
        } else {
            strbuf_appendn(out, s + i, k);
            i += k;
        }
    }
    if (pad)
        strbuf_append(out, " ");
    for (size_t i = 0; i < ticks; i++)
        strbuf_append(out, "`");
}

void ghmd_fence(strbuf_t *out, const char *info, const char *content, const char *prefix)
{
    size_t n = strlen(content);
    size_t ticks = longest_run(content, n, '`') + 1;
    if (ticks < 3)
        ticks = 3;
    strbuf_append(out, prefix);
    for (size_t i = 0; i < ticks; i++)
        strbuf_append(out, "`");
    strbuf_append(out, info);
    strbuf_append(out, "\n");
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(content + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - content) + 1 : n;
        strbuf_append(out, prefix);
        strbuf_appendn(out, content + i, end - i);
        i = end;
    }
    if (n > 0 && content[n - 1] != '\n')
        strbuf_append(out, "\n");
    strbuf_append(out, prefix);
    for (size_t i = 0; i < ticks; i++)
        strbuf_append(out, "`");
    strbuf_append(out, "\n");
}

/* A CommonMark fence line: up to 3 spaces, then 3+ '`' or '~'. */
static int fence_line(const char *s, size_t n, char *ch, size_t *len, size_t *info_at)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    if (i >= n || (s[i] != '`' && s[i] != '~'))
        return 0;
    char c = s[i];
    size_t start = i;
    while (i < n && s[i] == c)
        i++;
    if (i - start < 3)
        return 0;
    if (c == '`' && memchr(s + i, '`', n - i) != NULL)
        return 0; /* a backtick in the info string: inline code, not a fence */
    *ch = c;
    *len = i - start;
    *info_at = i;
    return 1;
}

static int only_blanks(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static void sanitize(strbuf_t *out, const char *s, size_t n)
{
    int in_fence = 0, line_start = 1;
    char fch = 0;
    size_t flen = 0;
    size_t i = 0;
    while (i < n) {
        if (line_start) {
            line_start = 0;
            const char *nl = memchr(s + i, '\n', n - i);
            size_t eol = nl ? (size_t)(nl - s) : n;
            size_t next = nl ? eol + 1 : n;
            char ch;
            size_t len, info;
            int fence = fence_line(s + i, eol - i, &ch, &len, &info);
            if (in_fence) {
                /* inside a code block nothing renders: mentions, comments are text */
                if (fence && ch == fch && len >= flen && only_blanks(s + i + info, eol - i - info))
                    in_fence = 0;
                strbuf_appendn(out, s + i, next - i);
                i = next;
                line_start = 1;
                continue;
            }
            if (fence) {
                in_fence = 1;
                fch = ch;
                flen = len;
                const char *is = s + i + info;
                size_t il = eol - i - info;
                while (il > 0 && (*is == ' ' || *is == '\t'))
                    is++, il--;
                /* only patchbay attaches suggestions, after checking the lines */
                if (il >= 10 && strncasecmp(is, "suggestion", 10) == 0)
                    strbuf_appendn(out, s + i, info);
                else
                    strbuf_appendn(out, s + i, eol - i);
                if (nl)
                    strbuf_append(out, "\n");
                i = next;
                line_start = 1;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            strbuf_append(out, "\n");
            i++;
            line_start = 1;
        } else if (c == '\\' && i + 1 < n && is_ascii_punct((unsigned char)s[i + 1])) {
            strbuf_appendn(out, s + i, 2); /* "\`" and "\@" are literal characters */
            i += 2;
        } else if (c == '`') {
            size_t k = 0;
            while (i + k < n && s[i + k] == '`')
                k++;
            /* a code span closes with a run of exactly k backticks on this line */
            size_t j = i + k, close = 0;
            while (j < n && s[j] != '\n') {
                if (s[j] == '`') {
                    size_t m = 0;
                    while (j + m < n && s[j + m] == '`')
                        m++;
                    if (m == k) {
                        close = j + m;
                        break;
                    }
                    j += m;
                } else {
                    j++;
                }
            }
            if (close) {
                strbuf_appendn(out, s + i, close - i);
                i = close;
            } else {
                strbuf_appendn(out, s + i, k);
                i += k;
            }
        } else if (c == '<' && n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
            const char *end = memmem(s + i + 4, n - i - 4, "-->", 3);
            if (end != NULL) {
                i = (size_t)(end - s) + 3; /* hidden text: dropped */
            } else {
                strbuf_append(out, "&lt;!--");
                i += 4;
            }
        } else if (c == '@' && i + 1 < n && is_alnum((unsigned char)s[i + 1]) &&
                   (i == 0 || !is_alnum((unsigned char)s[i - 1]))) {
            strbuf_append(out, "@" ZWSP);
            i++;
        } else {
            strbuf_appendn(out, s + i, 1);
            i++;
        }
    }
}

void ghmd_sanitize(strbuf_t *out, const char *s, size_t n)
{
    /* credentials first: whatever else the text is, it does not carry a key */
    strbuf_t clean = STRBUF_INIT;
    redact_patterns(&clean, s, n);
    sanitize(out, clean.data ? clean.data : "", clean.len);
    strbuf_free(&clean);
}
