/*
 * answer — see answer.h. The permalink pass reads the sanitized answer the
 * way GitHub renders it, one line at a time: fenced blocks are copied as
 * they are, and on other lines code spans, link text and targets, autolinks
 * and escapes are stepped over whole, so a reference is only ever rewritten
 * where a reader sees plain words.
 */
#include "answer.h"
#include "app/github/ghmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_BYTES 512 /* longer is not a path anyone cites */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Bytes a cited path is made of. ':' is not one (it starts the line). */
static int is_path_byte(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/' || c == '+';
}

/* May a reference start after c? Not inside a word, a path or a URL. */
static int opens_word(unsigned char c)
{
    return !(is_path_byte(c) || c == ':' || c == '@' || c == '#' || c == '\\' || c == '%' || c == '=' || c >= 0x80);
}

/* May a reference end before c (end of text: pass 0)? Punctuation closing a
 * sentence or a bracket, a space; not more of a word. */
static int closes_word(unsigned char c)
{
    return c == 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' || strchr(".,;:!?)]}'\"*_~>", c) != NULL;
}

typedef struct {
    size_t path_from, path_len; /* the path, "./" dropped */
    size_t end;                 /* just past the line or range */
    unsigned long start_line, end_line;
} ref_t;

static int parse_number(const char *s, size_t len, size_t *i, unsigned long *out)
{
    size_t k = *i;
    unsigned long v = 0;
    while (k < len && is_digit((unsigned char)s[k]) && k - *i < 9)
        v = v * 10 + (unsigned long)(s[k++] - '0');
    if (k == *i || (k < len && is_digit((unsigned char)s[k])))
        return -1;
    *i = k;
    *out = v;
    return 0;
}

/* A reference starting at s[i] and ending where a word may end (or at len,
 * for the whole of a code span): PATH:LINE or PATH:START-END. */
static int parse_ref(const char *s, size_t len, size_t i, ref_t *r)
{
    size_t p = i;
    while (p < len && is_path_byte((unsigned char)s[p]))
        p++;
    size_t from = i;
    while (p - from >= 2 && s[from] == '.' && s[from + 1] == '/')
        from += 2;
    if (p == from || p - from > PATH_MAX_BYTES || p >= len || s[p] != ':')
        return -1;
    size_t k = p + 1;
    if (parse_number(s, len, &k, &r->start_line) != 0)
        return -1;
    r->end_line = r->start_line;
    if (k + 1 < len && s[k] == '-' && is_digit((unsigned char)s[k + 1])) {
        k++;
        if (parse_number(s, len, &k, &r->end_line) != 0)
            return -1;
    }
    /* "a.c:10:5" is a line and a column: not a form the rule knows */
    if (k < len && s[k] == ':' && k + 1 < len && is_digit((unsigned char)s[k + 1]))
        return -1;
    if (!closes_word(k < len ? (unsigned char)s[k] : 0))
        return -1;
    if (r->start_line == 0 || r->end_line < r->start_line)
        return -1;
    /* relative to the root, inside it: no absolute path, no "..", no empty component */
    const char *path = s + from;
    size_t n = p - from;
    if (path[0] == '/' || path[n - 1] == '/' || memmem(path, n, "//", 2) != NULL)
        return -1;
    for (size_t c = 0; c < n;) {
        size_t e = c;
        while (e < n && path[e] != '/')
            e++;
        if ((e - c == 2 && path[c] == '.' && path[c + 1] == '.') || (e - c == 1 && path[c] == '.'))
            return -1;
        c = e + 1;
    }
    r->path_from = from;
    r->path_len = n;
    r->end = k;
    return 0;
}

/* Whether the file exists at the commit with the lines the reference names. */
static int ref_exists(const char *s, const ref_t *r, answer_lines_fn lines, void *arg)
{
    char path[PATH_MAX_BYTES + 1];
    memcpy(path, s + r->path_from, r->path_len);
    path[r->path_len] = '\0';
    size_t n = 0;
    return lines(arg, path, &n) == 0 && r->end_line <= n;
}

static void append_link(strbuf_t *out, const char *text, size_t text_len, const char *s, const ref_t *r,
                        const char *blob_url)
{
    strbuf_append(out, "[");
    strbuf_appendn(out, text, text_len);
    strbuf_appendf(out, "](%s/", blob_url);
    strbuf_appendn(out, s + r->path_from, r->path_len);
    if (r->end_line != r->start_line)
        strbuf_appendf(out, "#L%lu-L%lu)", r->start_line, r->end_line);
    else
        strbuf_appendf(out, "#L%lu)", r->start_line);
}

/* A CommonMark fence line: up to three spaces, then three or more ` or ~. */
static int fence_line(const char *s, size_t n, char *ch, size_t *run)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    if (i >= n || (s[i] != '`' && s[i] != '~'))
        return 0;
    size_t k = i;
    while (k < n && s[k] == s[i])
        k++;
    if (k - i < 3)
        return 0;
    *ch = s[i];
    *run = k - i;
    return 1;
}

/* The end of the bracketed text opening at s[i] ('[') on this line, just
 * past its ']' (and past a "(target)" or "[label]" right after it), or i + 1
 * when it does not close. */
static size_t skip_link(const char *s, size_t eol, size_t i)
{
    size_t depth = 0, k = i;
    for (; k < eol; k++) {
        if (s[k] == '\\' && k + 1 < eol) {
            k++;
        } else if (s[k] == '[') {
            depth++;
        } else if (s[k] == ']' && --depth == 0) {
            break;
        }
    }
    if (k >= eol)
        return i + 1;
    k++;
    char close = k < eol && s[k] == '(' ? ')' : k < eol && s[k] == '[' ? ']' : 0;
    if (close != 0) {
        const char *c = memchr(s + k, close, eol - k);
        if (c != NULL)
            k = (size_t)(c - s) + 1;
    }
    return k;
}

/* One line outside fenced code. */
static size_t line_links(strbuf_t *out, const char *s, size_t from, size_t eol, const char *blob_url,
                         answer_lines_fn lines, void *arg)
{
    size_t made = 0, i = from;
    while (i < eol) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < eol) {
            strbuf_appendn(out, s + i, 2);
            i += 2;
        } else if (c == '`') {
            size_t k = i;
            while (k < eol && s[k] == '`')
                k++;
            size_t ticks = k - i, close = 0;
            for (size_t j = k; j < eol;) {
                if (s[j] != '`') {
                    j++;
                    continue;
                }
                size_t m = j;
                while (m < eol && s[m] == '`')
                    m++;
                if (m - j == ticks) {
                    close = j;
                    break;
                }
                j = m;
            }
            if (close == 0) {
                strbuf_appendn(out, s + i, ticks);
                i = k;
                continue;
            }
            /* a code span that is exactly a reference becomes a link showing the span */
            size_t a = k, b = close;
            if (b - a >= 2 && s[a] == ' ' && s[b - 1] == ' ')
                a++, b--;
            ref_t r;
            if (parse_ref(s, b, a, &r) == 0 && r.end == b && ref_exists(s, &r, lines, arg)) {
                append_link(out, s + i, close + ticks - i, s, &r, blob_url);
                made++;
            } else {
                strbuf_appendn(out, s + i, close + ticks - i);
            }
            i = close + ticks;
        } else if (c == '[') {
            size_t k = skip_link(s, eol, i);
            strbuf_appendn(out, s + i, k - i);
            i = k;
        } else if (c == '<' && i + 1 < eol && (is_alnum((unsigned char)s[i + 1]) || s[i + 1] == '/')) {
            /* an autolink or an HTML tag: its insides are not words */
            const char *gt = memchr(s + i, '>', eol - i);
            size_t k = gt ? (size_t)(gt - s) + 1 : i + 1;
            strbuf_appendn(out, s + i, k - i);
            i = k;
        } else if (is_path_byte(c) && (i == from || opens_word((unsigned char)s[i - 1]))) {
            ref_t r;
            if (parse_ref(s, eol, i, &r) == 0 && ref_exists(s, &r, lines, arg)) {
                append_link(out, s + i, r.end - i, s, &r, blob_url);
                made++;
                i = r.end;
                continue;
            }
            /* not a reference: the whole word goes as it is, so no part of it
             * (a URL's path, an address) is taken for one */
            size_t k = i;
            while (k < eol && (is_path_byte((unsigned char)s[k]) || s[k] == ':' || s[k] == '@' || s[k] == '#' ||
                               s[k] == '%' || s[k] == '=' || s[k] == '?' || s[k] == '&'))
                k++;
            strbuf_appendn(out, s + i, k - i);
            i = k;
        } else {
            strbuf_appendn(out, s + i, 1);
            i++;
        }
    }
    return made;
}

size_t answer_permalinks(strbuf_t *out, const char *md, size_t len, const char *blob_url, answer_lines_fn lines,
                         void *arg)
{
    size_t made = 0, i = 0;
    int in_fence = 0;
    char fch = 0;
    size_t frun = 0;
    while (i < len) {
        const char *nl = memchr(md + i, '\n', len - i);
        size_t eol = nl ? (size_t)(nl - md) : len;
        size_t next = nl ? eol + 1 : len;
        char ch;
        size_t run;
        if (fence_line(md + i, eol - i, &ch, &run)) {
            if (!in_fence) {
                in_fence = 1;
                fch = ch;
                frun = run;
            } else if (ch == fch && run >= frun) {
                in_fence = 0;
            }
            strbuf_appendn(out, md + i, next - i);
        } else if (in_fence || blob_url == NULL || lines == NULL) {
            strbuf_appendn(out, md + i, next - i);
        } else {
            made += line_links(out, md, i, eol, blob_url, lines, arg);
            strbuf_appendn(out, md + eol, next - eol);
        }
        i = next;
    }
    return made;
}

/* The question's first line, bounded, as one quoted line a reader sees as
 * they wrote it (mentions inert, hidden text gone). */
static void quote_question(strbuf_t *out, const char *q)
{
    q += strspn(q, " \t\r\n");
    size_t n = strcspn(q, "\r\n");
    int cut = n > ANSWER_QUOTE_MAX_BYTES;
    if (cut) {
        n = ANSWER_QUOTE_MAX_BYTES;
        while (n > 0 && ((unsigned char)q[n] & 0xC0) == 0x80)
            n--; /* not in the middle of a character */
    }
    strbuf_t line = STRBUF_INIT;
    ghmd_sanitize(&line, q, n);
    strbuf_append(out, "> ");
    strbuf_appendn(out, line.data ? line.data : "", line.len);
    strbuf_append(out, cut ? " …\n\n" : "\n\n");
    strbuf_free(&line);
}

size_t answer_render(strbuf_t *out, const answer_t *in)
{
    if (in->question != NULL && in->question[strspn(in->question, " \t\r\n")] != '\0')
        quote_question(out, in->question);
    const char *text = in->text ? in->text : "";
    strbuf_t safe = STRBUF_INIT;
    ghmd_sanitize(&safe, text, strlen(text));
    size_t made = answer_permalinks(out, safe.data ? safe.data : "", safe.len, in->blob_url, in->lines, in->lines_arg);
    strbuf_free(&safe);
    if (out->len > 0 && out->data[out->len - 1] != '\n')
        strbuf_append(out, "\n");
    if (in->discarded > 0)
        strbuf_appendf(out, "\n**Note:** the agent changed %zu file%s while answering. An answer never changes the "
                            "repository, so patchbay threw %s away.\n",
                       in->discarded, in->discarded == 1 ? "" : "s", in->discarded == 1 ? "it" : "them");
    strbuf_append(out, "\n<sub>Answered by patchbay");
    if (in->where != NULL)
        strbuf_appendf(out, " from %s", in->where);
    strbuf_append(out, "; no change was made.");
    if (in->inferred && in->handle != NULL)
        strbuf_appendf(out, " Read as a question; for a change, write `@%s fix ...`.", in->handle);
    strbuf_append(out, "</sub>\n");
    if (in->job_id != NULL)
        answer_marker(out, in->job_id);
    return made;
}

void answer_marker(strbuf_t *out, const char *job_id)
{
    strbuf_appendf(out, "%s%s -->\n", ANSWER_MARKER_PREFIX, job_id);
}

int answer_marker_is(const char *body, const char *job_id)
{
    char want[128];
    snprintf(want, sizeof(want), "%s%s -->", ANSWER_MARKER_PREFIX, job_id);
    return body != NULL && strstr(body, want) != NULL;
}
