/* agent_summary — see agent_summary.h. */
#include "agent_summary.h"
#include "app/common/strbuf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Terminal output to text
 * ------------------------------------------------------------------------- */

#define ESC 0x1b
#define BEL 0x07

/* Appends what a terminal shows of s[0..n): escapes and controls out, a
 * carriage return restarting the current line (from line_start). */
static void clean_into(strbuf_t *b, const char *s, size_t n)
{
    size_t line_start = b->len;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == ESC && i + 1 < n) {
            unsigned char k = (unsigned char)s[i + 1];
            if (k == '[') { /* CSI: parameters, intermediates, one final byte */
                i += 2;
                while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x3f)
                    i++;
                while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x2f)
                    i++;
                if (i < n && (unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)
                    i++;
            } else if (k == ']' || k == 'P' || k == 'X' || k == '^' || k == '_') {
                /* OSC, DCS, SOS, PM, APC: a string up to BEL or ESC \ (an OSC 8
                 * hyperlink's text is outside its two strings, so it stays) */
                i += 2;
                while (i < n && (unsigned char)s[i] != BEL && !((unsigned char)s[i] == ESC && i + 1 < n && s[i + 1] == '\\'))
                    i++;
                i += i < n && (unsigned char)s[i] == BEL ? 1 : i < n ? 2 : 0;
            } else if (k >= 0x20 && k <= 0x2f) { /* charset and the like: ESC ( B */
                i += 2;
                while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x2f)
                    i++;
                if (i < n)
                    i++;
            } else { /* ESC 7, ESC M, ESC =: two bytes */
                i += 2;
            }
            continue;
        }
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
            i += 2; /* a C1 control in UTF-8 (U+0080..U+009F, among them the 8-bit CSI) */
            continue;
        }
        if (c == '\r') {
            if (i + 1 < n && s[i + 1] == '\n') { /* CRLF: a newline */
                i++;
                continue;
            }
            /* a lone CR rewrites the line (progress bars): what comes last
             * stays, unless nothing follows on this line */
            if (i + 1 < n && s[i + 1] != '\n')
                b->len = line_start;
            i++;
            continue;
        }
        if (c == '\n') {
            strbuf_appendn(b, "\n", 1);
            line_start = b->len;
            i++;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            i++;
            continue;
        }
        strbuf_appendn(b, s + i, 1);
        i++;
    }
    if (b->data != NULL && !b->fixed)
        b->data[b->len] = '\0';
}

char *agent_summary_clean(const char *text, size_t len)
{
    strbuf_t b = STRBUF_INIT;
    clean_into(&b, text ? text : "", text ? len : 0);
    if (b.truncated) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_detach(&b, NULL);
}

/* ---------------------------------------------------------------------------
 * What kind of line: the CLI talking, or possibly the answer
 * ------------------------------------------------------------------------- */

typedef enum {
    LINE_TEXT = 0, /* possibly the answer */
    LINE_BLANK,
    LINE_NOISE,    /* log, warning, banner, a known notice: never the answer */
    LINE_RULE,     /* a separator the CLI draws */
    LINE_MARKER,   /* a transcript's role or section word (Codex: user, codex, exec, tokens used), a count */
    LINE_ECHO,     /* a tool call or command echoed, a diff line */
} line_kind_t;

/* Notices real CLIs print around their answers, seen in their output
 * (tests/unit/data/agent_output/): prefixes of a whole line. */
static const char *const notices[] = {
    "YOLO mode is enabled",       /* Gemini CLI */
    "Ripgrep is not available",   /* Gemini CLI */
    "Ripgrep not available",      /* Qwen Code */
    "Loaded cached credentials",  /* Gemini CLI */
    "Data collection is disabled", /* Gemini CLI */
    "(node:",                     /* Node.js's own warnings: "(node:123) [DEP0040] ..." */
    NULL,
};

static const char *const log_levels[] = {"ERROR", "WARN", "WARNING", "INFO", "DEBUG", "TRACE", "FATAL", NULL};

static int starts(const char *s, size_t n, const char *prefix)
{
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

static int digits(const char *s, size_t n, size_t at, size_t count)
{
    if (at + count > n)
        return 0;
    for (size_t i = at; i < at + count; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* 2026-12-05T09:54:35.5Z ERROR ..., [2026-12-05 09:54] ..., 09:54:35 ...,
 * ERROR: ..., [warn] ... */
static int is_log_line(const char *s, size_t n)
{
    size_t at = n > 0 && s[0] == '[' ? 1 : 0;
    if (n > at + 13 && digits(s, n, at, 4) && s[at + 4] == '-' && digits(s, n, at + 5, 2) && s[at + 7] == '-' &&
        digits(s, n, at + 8, 2) && (s[at + 10] == 'T' || s[at + 10] == ' ') && digits(s, n, at + 11, 2) &&
        s[at + 13] == ':')
        return 1;
    if (digits(s, n, at, 2) && at + 5 < n && s[at + 2] == ':' && digits(s, n, at + 3, 2) && s[at + 5] == ':')
        return 1;
    for (size_t i = 0; log_levels[i] != NULL; i++) {
        size_t l = strlen(log_levels[i]);
        if (starts(s, n, log_levels[i]) && n > l && (s[l] == ' ' || s[l] == ':' || s[l] == ']'))
            return 1;
        if (n > l + 1 && s[0] == '[' && strncasecmp(s + 1, log_levels[i], l) == 0 && s[l + 1] == ']')
            return 1;
    }
    return 0;
}

/* "OpenAI Codex v0.171.0", "Aider v0.86.1": up to three capitalised words
 * and a v-version, nothing else. "Bump lodash to v4.17.21" is not one. */
static int is_banner(const char *s, size_t n)
{
    size_t words = 0, i = 0;
    while (i < n) {
        size_t w = i;
        while (i < n && s[i] != ' ')
            i++;
        const char *word = s + w;
        size_t wl = i - w;
        while (i < n && s[i] == ' ')
            i++;
        words++;
        if (i >= n) { /* the last word: the version */
            if (words < 2 || wl < 4 || word[0] != 'v' || !isdigit((unsigned char)word[1]))
                return 0;
            int dots = 0;
            for (size_t k = 1; k < wl; k++) {
                if (word[k] == '.')
                    dots++;
                else if (!isdigit((unsigned char)word[k]) && word[k] != '-' && !isalpha((unsigned char)word[k]))
                    return 0;
            }
            return dots >= 1;
        }
        if (words > 3 || !isupper((unsigned char)word[0]))
            return 0;
    }
    return 0;
}

/* Eight or more of one drawing character: Codex's "--------", unittest's
 * dashes, opencode's "=====". Markdown's "---" and tables are not. */
static int is_rule(const char *s, size_t n)
{
    if (n < 8)
        return 0;
    if (strchr("-=*_~#", s[0]) != NULL) {
        for (size_t i = 1; i < n; i++)
            if (s[i] != s[0])
                return 0;
        return 1;
    }
    /* box drawing, U+2500..U+257F: E2 94 xx / E2 95 xx */
    for (size_t i = 0; i < n; i += 3)
        if (i + 2 >= n || (unsigned char)s[i] != 0xe2 || ((unsigned char)s[i + 1] != 0x94 && (unsigned char)s[i + 1] != 0x95))
            return 0;
    return 1;
}

/* The words that open the sections of Codex's transcript, whole lines. */
static const char *const markers[] = {"user", "codex", "exec", "thinking", "apply patch", "tokens used", NULL};

/* A transcript's section word, or a bare count (Codex's "76,049" tokens). */
static int is_marker(const char *s, size_t n)
{
    for (size_t i = 0; markers[i] != NULL; i++)
        if (n == strlen(markers[i]) && memcmp(s, markers[i], n) == 0)
            return 1;
    size_t d = 0;
    while (d < n && (isdigit((unsigned char)s[d]) || s[d] == ','))
        d++;
    return n > 0 && d == n && isdigit((unsigned char)s[0]);
}

/* A tool call or command echoed (opencode's "→ Read", "$ cmd"), a diff. */
static int is_echo(const char *s, size_t n)
{
    static const char *const prefixes[] = {"$ ", "\xe2\x86\x92 " /* → */, "\xe2\x86\x90 " /* ← */, "+++ ", "--- ",
                                           "@@ ", "diff --git ", "Index: ", NULL};
    for (size_t i = 0; prefixes[i] != NULL; i++)
        if (starts(s, n, prefixes[i]))
            return 1;
    /* a diff's line: + or - then code, never "- a list item" */
    if (n >= 2 && (s[0] == '+' || s[0] == '-') && (s[1] == '\t' || (s[1] != ' ' && s[1] != s[0]) ||
                                                   (n >= 3 && s[1] == ' ' && s[2] == ' ')))
        return 1;
    return 0;
}

static line_kind_t classify(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t lead = 0;
    while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
        lead++;
    if (lead == n)
        return LINE_BLANK;
    if (is_echo(s, n))
        return LINE_ECHO;
    s += lead;
    n -= lead;
    if (is_rule(s, n))
        return LINE_RULE;
    if (is_log_line(s, n) || is_banner(s, n) || starts(s, n, "Warning: ") || starts(s, n, "warning: ") ||
        starts(s, n, "WARNING: "))
        return LINE_NOISE;
    for (size_t i = 0; notices[i] != NULL; i++)
        if (starts(s, n, notices[i]))
            return LINE_NOISE;
    if (is_marker(s, n))
        return LINE_MARKER;
    return LINE_TEXT;
}

/* ---------------------------------------------------------------------------
 * The answer at the end of an output
 * ------------------------------------------------------------------------- */

typedef struct {
    char *text;        /* cleaned */
    size_t len;
    int escapes_only;  /* the raw line held escapes and nothing a terminal shows */
} out_line_t;

static void lines_free(out_line_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].text);
    free(v);
}

char *agent_summary_from_output(const char *tail, size_t len, int cut)
{
    if (tail == NULL)
        len = 0;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += tail[i] == '\n';
    out_line_t *lines = calloc(cap, sizeof(*lines));
    if (lines == NULL)
        return NULL;
    size_t n = 0, at = 0;
    if (cut) { /* the first line is the end of one we never saw */
        const char *nl = memchr(tail, '\n', len);
        at = nl ? (size_t)(nl - tail) + 1 : len;
    }
    while (at < len && n < cap) {
        const char *nl = memchr(tail + at, '\n', len - at);
        size_t l = nl ? (size_t)(nl - (tail + at)) : len - at;
        strbuf_t b = STRBUF_INIT;
        clean_into(&b, tail + at, l);
        if (b.truncated) {
            strbuf_free(&b);
            lines_free(lines, n);
            return NULL;
        }
        lines[n].text = strbuf_detach(&b, &lines[n].len);
        lines[n].escapes_only = memchr(tail + at, ESC, l) != NULL && classify(lines[n].text, lines[n].len) == LINE_BLANK;
        n++;
        at += l + 1;
    }

    /* from the end: past trailing blanks and notices, then back while the
     * lines can be the answer (blank lines are its paragraphs) */
    size_t end = n;
    while (end > 0) {
        line_kind_t k = classify(lines[end - 1].text, lines[end - 1].len);
        if (lines[end - 1].escapes_only || (k != LINE_BLANK && k != LINE_NOISE))
            break;
        end--;
    }
    size_t start = end;
    while (start > 0) {
        const out_line_t *l = &lines[start - 1];
        line_kind_t k = classify(l->text, l->len);
        if (l->escapes_only || (k != LINE_TEXT && k != LINE_BLANK))
            break;
        start--;
    }
    while (start < end && classify(lines[start].text, lines[start].len) == LINE_BLANK)
        start++;

    strbuf_t out = STRBUF_INIT;
    for (size_t i = start; i < end; i++) {
        strbuf_appendn(&out, lines[i].text, lines[i].len);
        if (i + 1 < end)
            strbuf_appendn(&out, "\n", 1);
    }
    lines_free(lines, n);
    if (out.truncated) {
        strbuf_free(&out);
        return NULL;
    }
    return strbuf_detach(&out, NULL);
}

/* ---------------------------------------------------------------------------
 * The title
 * ------------------------------------------------------------------------- */

/* Whether a line opens or closes a fenced code block (``` or ~~~). */
static int is_fence(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    return starts(s, n, "```") || starts(s, n, "~~~");
}

/* The line without markdown's heading, quote and list marks, and without
 * the emphasis around it ("**Fix the parser**"). */
static void strip_marks(const char **s, size_t *n)
{
    const char *p = *s;
    size_t l = *n;
    for (;;) {
        size_t before = l;
        while (l > 0 && (*p == ' ' || *p == '#' || *p == '>'))
            p++, l--;
        if (l >= 2 && (*p == '-' || *p == '+' || *p == '*') && p[1] == ' ')
            p += 2, l -= 2;
        /* "1. " and "1) " */
        size_t d = 0;
        while (d < l && isdigit((unsigned char)p[d]))
            d++;
        if (d > 0 && d + 1 < l && (p[d] == '.' || p[d] == ')') && p[d + 1] == ' ')
            p += d + 2, l -= d + 2;
        if (l == before)
            break;
    }
    while (l > 0 && (p[l - 1] == ' ' || p[l - 1] == '\t'))
        l--;
    size_t em = 0;
    while (em < l && (p[em] == '*' || p[em] == '_') && em < 3)
        em++;
    if (em > 0 && l > 2 * em && memcmp(p, p + l - em, em) == 0) {
        p += em;
        l -= 2 * em;
    }
    *s = p;
    *n = l;
}

/* The longest prefix of s[0..n) within max bytes: at a space when one is in
 * its last third, always on a UTF-8 boundary. */
static size_t cut_title(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t c = max;
    while (c > 0 && ((unsigned char)s[c] & 0xc0) == 0x80)
        c--;
    for (size_t i = c; i > max * 2 / 3; i--)
        if (s[i] == ' ') {
            c = i;
            break;
        }
    while (c > 0 && (s[c - 1] == ' ' || s[c - 1] == ',' || s[c - 1] == ';'))
        c--;
    return c;
}

int agent_summary_title(char *out, size_t len, const char *summary)
{
    if (len == 0)
        return -1;
    out[0] = '\0';
    /* in_header: between the two rules under a banner (Codex's workdir:,
     * model:, session id: ...) */
    int in_code = 0, in_header = 0, after_banner = 0;
    for (const char *p = summary ? summary : ""; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *line = p;
        p = nl ? nl + 1 : p + n;
        if (is_fence(line, n)) {
            in_code = !in_code;
            continue;
        }
        if (in_code || (n > 0 && line[0] == '\t') || starts(line, n, "    "))
            continue;
        line_kind_t k = classify(line, n);
        if (k == LINE_RULE && (after_banner || in_header))
            in_header = !in_header;
        after_banner = k == LINE_NOISE && is_banner(line, n);
        if (k != LINE_TEXT || in_header)
            continue;
        const char *s = line;
        size_t l = n;
        strip_marks(&s, &l);
        if (l == 0 || s[l - 1] == ':')
            continue;
        int letters = 0;
        for (size_t i = 0; i < l && !letters; i++)
            letters = isalpha((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80;
        if (!letters)
            continue;
        size_t c = cut_title(s, l, AGENT_TITLE_MAX_BYTES < len - 1 ? AGENT_TITLE_MAX_BYTES : len - 1);
        while (c > 0 && ((unsigned char)s[c] & 0xc0) == 0x80 && c < l)
            c--; /* never half a character, whatever len is */
        memcpy(out, s, c);
        out[c] = '\0';
        return 0;
    }
    return -1;
}
