/*
 * mention — see mention.h. Decides whether a comment is addressed to patchbay
 * by reading it the way GitHub renders it: one forward pass, line by line,
 * stepping over what a reader sees as code, as someone else's words, or not at
 * all (fenced blocks, ">" quoted lines, inline code spans, HTML comments), and
 * stopping at the first "@handle" left standing.
 *
 * The comment comes from anyone who can post on a public issue, so the pass
 * is linear on any input. The one place a naive reader goes quadratic is
 * matching code spans: each unmatched backtick run would rescan the rest of
 * the paragraph. Like cmark (whose GFM fork renders GitHub comments) we keep,
 * per run length, where the last run of that length in the paragraph is; it
 * is filled by the first search that fails, so no later search in the same
 * paragraph can fail, and a search that succeeds is stepped over for good.
 *
 * HTML comments cost one search each: one that closes is stepped over, one
 * that does not hides everything after it.
 *
 * This is a reader, not a Markdown parser: where the two differ the comments
 * below say which way we lean, and why.
 */
#include "mention.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

/* cmark-gfm's MAXBACKTICKS: a longer run never opens a code span on GitHub. */
#define MENTION_MAX_TICKS 80

/* ------------------------------------------------------------------------- */
/* Characters                                                                */
/* ------------------------------------------------------------------------- */

static inline unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static inline int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline int is_alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'z');
}

/* GitHub logins are [A-Za-z0-9-]; '_' joins words in Markdown and in most
 * people's eyes, so it continues a handle too. */
static inline int is_handle_byte(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

static inline int is_ascii_punct(unsigned char c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

/* Code points a reader takes as a gap between words rather than part of one:
 * no-break space and Latin-1 signs, general punctuation (dashes, curly quotes,
 * ellipsis, zero-width spaces), arrows and symbols, CJK and fullwidth
 * punctuation, emoji. Anything else outside ASCII (letters of any script,
 * combining marks) glues to the handle: "josé@patchbay" is an address. */
static const struct {
    uint32_t lo, hi;
} gap_ranges[] = {
    {0x00A0, 0x00BF}, {0x00D7, 0x00D7}, {0x00F7, 0x00F7},   {0x2000, 0x206F}, {0x2190, 0x2BFF},
    {0x3000, 0x303F}, {0xFE00, 0xFE0F}, {0xFE30, 0xFE6F},   {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20},
    {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0x1F000, 0x1FAFF},
};

static int is_gap_code_point(uint32_t cp)
{
    for (size_t k = 0; k < sizeof(gap_ranges) / sizeof(gap_ranges[0]); k++)
        if (cp >= gap_ranges[k].lo && cp <= gap_ranges[k].hi)
            return 1;
    return 0;
}

/* Decodes the UTF-8 sequence starting at s[i]; returns its length, 0 when it
 * is not well formed (then the caller treats the bytes as a word). */
static size_t utf8_decode(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    unsigned char c = s[i];
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len - i < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* May the byte before an '@' at s[i] (i > 0) precede a mention? Whitespace
 * and most punctuation may; a letter, digit, '_' or '-' makes it an
 * address or part of a word, '.', '/' and '@' a path, URL or address, '`' the
 * edge of code, and '\' an escape written to keep the mention from firing. */
static int before_ok(const unsigned char *s, size_t i)
{
    unsigned char c = s[i - 1];
    if (c < 0x80) {
        if (is_handle_byte(c))
            return 0;
        return !(c == '.' || c == '/' || c == '@' || c == '`' || c == '\\');
    }
    size_t b = i - 1, back = 0;
    while (b > 0 && back < 3 && (s[b] & 0xC0) == 0x80)
        b--, back++;
    uint32_t cp;
    return utf8_decode(s, i, b, &cp) == i - b && is_gap_code_point(cp);
}

/* Does a word (a handle or a command) end at s[e]? Not when a handle byte
 * follows (a longer handle: "@patchbay-dev", "@patchbay2"), nor '/' (a team:
 * "@patchbay/core"), nor '@' (an address), nor dots followed by a word (a
 * domain: "@patchbay.com"). Dots closing a sentence are fine. */
static int word_ends(const unsigned char *s, size_t len, size_t e)
{
    while (e < len && s[e] == '.')
        e++;
    if (e >= len)
        return 1;
    unsigned char c = s[e];
    if (c < 0x80)
        return !is_handle_byte(c) && c != '/' && c != '@';
    uint32_t cp;
    return utf8_decode(s, len, e, &cp) != 0 && is_gap_code_point(cp);
}

/* ------------------------------------------------------------------------- */
/* Lines                                                                     */
/* ------------------------------------------------------------------------- */

/* CommonMark line endings: "\n", "\r\n", and a lone "\r". */
static size_t line_end(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

static size_t next_line(const unsigned char *s, size_t len, size_t eol)
{
    if (eol >= len)
        return len;
    if (s[eol] == '\r' && eol + 1 < len && s[eol + 1] == '\n')
        return eol + 2;
    return eol + 1;
}

/* Block markers may be indented by up to three spaces; four make the line
 * indented code in CommonMark, which we read as text (see mention.h). */
static size_t indent(const unsigned char *s, size_t i, size_t eol)
{
    size_t n = 0;
    while (n < 3 && i + n < eol && s[i + n] == ' ')
        n++;
    return i + n;
}

static int is_blank(const unsigned char *s, size_t i, size_t eol)
{
    while (i < eol && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == eol;
}

/* Any depth of quoting starts with the outer '>', so one test covers nesting. */
static int is_quote(const unsigned char *s, size_t i, size_t eol)
{
    i = indent(s, i, eol);
    return i < eol && s[i] == '>';
}

typedef struct {
    unsigned char ch; /* '`' or '~' */
    size_t n;         /* length of the opening run */
} fence_t;

static size_t run_of(const unsigned char *s, size_t i, size_t eol, unsigned char ch)
{
    size_t k = i;
    while (k < eol && s[k] == ch)
        k++;
    return k - i;
}

static int fence_opens(const unsigned char *s, size_t i, size_t eol, fence_t *f)
{
    i = indent(s, i, eol);
    if (i >= eol || (s[i] != '`' && s[i] != '~'))
        return 0;
    size_t n = run_of(s, i, eol, s[i]);
    if (n < 3)
        return 0;
    /* a backtick in a backtick fence's info string makes the line inline code */
    if (s[i] == '`' && memchr(s + i + n, '`', eol - i - n) != NULL)
        return 0;
    f->ch = s[i];
    f->n = n;
    return 1;
}

static int fence_closes(const unsigned char *s, size_t i, size_t eol, const fence_t *f)
{
    i = indent(s, i, eol);
    size_t n = run_of(s, i, eol, f->ch);
    return n >= f->n && is_blank(s, i + n, eol);
}

/* An HTML comment starting a line is an HTML block to CommonMark, and, like
 * a fence or a quote, interrupts the paragraph above. */
static int is_comment_block(const unsigned char *s, size_t i, size_t eol)
{
    i = indent(s, i, eol);
    return eol - i >= 4 && memcmp(s + i, "<!--", 4) == 0;
}

/* Lines that end a paragraph, and with it any code span still looking for its
 * closing run. Headings and list items would too in CommonMark; a span
 * running on past one is rare enough not to model. */
static int ends_paragraph(const unsigned char *s, size_t len, size_t i)
{
    size_t eol = line_end(s, len, i);
    fence_t f;
    return is_blank(s, i, eol) || is_quote(s, i, eol) || is_comment_block(s, i, eol) || fence_opens(s, i, eol, &f);
}

/* ------------------------------------------------------------------------- */
/* Code spans                                                                */
/* ------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t len;
    const unsigned char *handle;
    size_t handle_len;
    /* Where the last failed search for a closing run stopped (a paragraph's
     * end), and where the last run of each length seen by any search is. */
    size_t scanned_until;
    size_t last_run[MENTION_MAX_TICKS + 1];
} reader_t;

/* The offset of the first run of exactly n backticks at or after p within
 * p's paragraph, or SIZE_MAX when there is none. */
static size_t closing_run(reader_t *r, size_t p, size_t n)
{
    const unsigned char *s = r->s;
    if (n > MENTION_MAX_TICKS)
        return SIZE_MAX;
    /* p < scanned_until means a search from earlier in this paragraph already
     * ran to its end, so the table knows every run after p */
    if (p < r->scanned_until && r->last_run[n] < p)
        return SIZE_MAX;
    size_t i = p;
    while (i < r->len) {
        if (s[i] == '`') {
            size_t k = run_of(s, i, r->len, '`');
            if (k <= MENTION_MAX_TICKS)
                r->last_run[k] = i;
            if (k == n)
                return i;
            i += k;
        } else if (s[i] == '\n' || s[i] == '\r') {
            i = next_line(s, r->len, i);
            if (i < r->len && ends_paragraph(s, r->len, i))
                break;
        } else {
            i++;
        }
    }
    r->scanned_until = i;
    return SIZE_MAX;
}

/* ------------------------------------------------------------------------- */
/* Finding the mention                                                       */
/* ------------------------------------------------------------------------- */

static int mention_at(const reader_t *r, size_t i)
{
    const unsigned char *s = r->s;
    if (i > 0 && !before_ok(s, i))
        return 0;
    if (r->len - i - 1 < r->handle_len)
        return 0;
    for (size_t k = 0; k < r->handle_len; k++)
        if (lower(s[i + 1 + k]) != lower(r->handle[k]))
            return 0;
    return word_ends(s, r->len, i + 1 + r->handle_len);
}

/* The offset just past the "-->" closing the comment that opens at i, or
 * SIZE_MAX when it never closes. Searching from the opener's own "--" makes
 * "<!-->" and "<!--->" complete, empty comments, as CommonMark 0.31 has it.
 * An HTML block (a comment starting a line) runs to its "-->" across
 * anything; a comment inside a paragraph must close within it. */
static size_t comment_end(reader_t *r, size_t i, int block)
{
    const unsigned char *s = r->s;
    size_t len = r->len;
    if (block) {
        const unsigned char *end = memmem(s + i + 2, len - i - 2, "-->", 3);
        return end == NULL ? SIZE_MAX : (size_t)(end - s) + 3;
    }
    for (i += 2; i < len;) {
        if (s[i] == '\n' || s[i] == '\r') {
            i = next_line(s, len, i);
            if (i < len && ends_paragraph(s, len, i))
                break;
        } else if (s[i] == '-' && len - i >= 3 && s[i + 1] == '-' && s[i + 2] == '>') {
            return i + 3;
        } else {
            i++;
        }
    }
    return SIZE_MAX;
}

static int opens_comment(const reader_t *r, size_t i)
{
    return r->len - i >= 4 && memcmp(r->s + i, "<!--", 4) == 0;
}

enum { TEXT_MARKDOWN, TEXT_RAW };

/* Reads text from i up to the end of its line (further when a code span or an
 * HTML comment carries on past it). TEXT_RAW is the rest of the line that
 * closes an HTML block: shown as it is, with no code spans or escapes.
 * Returns 1 with *at set on a mention; else 0 with *next at the start of the
 * following line, or at len when an unclosed HTML comment hides the rest. */
static int text_scan(reader_t *r, size_t i, int mode, size_t *at, size_t *next)
{
    const unsigned char *s = r->s;
    size_t len = r->len;
    while (i < len) {
        unsigned char c = s[i];
        if (c == '\n' || c == '\r') {
            *next = next_line(s, len, i);
            return 0;
        } else if (c == '\\' && mode == TEXT_MARKDOWN && i + 1 < len && is_ascii_punct(s[i + 1])) {
            /* "\`" is a literal backtick, "\@" a mention its writer defused */
            i += 2;
        } else if (c == '`' && mode == TEXT_MARKDOWN) {
            size_t n = run_of(s, i, len, '`');
            size_t close = closing_run(r, i + n, n);
            i = close == SIZE_MAX ? i + n : close + n;
        } else if (c == '<' && opens_comment(r, i)) {
            /* Left open, CommonMark shows it as text; we take it as hiding
             * the rest, since its writer meant none of that to be read. */
            if ((i = comment_end(r, i, 0)) == SIZE_MAX) {
                *next = len;
                return 0;
            }
        } else if (c == '@' && mention_at(r, i)) {
            *at = i;
            return 1;
        } else {
            i++;
        }
    }
    *next = len;
    return 0;
}

static int locate(reader_t *r, size_t *at)
{
    const unsigned char *s = r->s;
    size_t len = r->len;
    size_t i = 0;
    while (i < len) {
        size_t eol = line_end(s, len, i);
        fence_t f;
        if (is_quote(s, i, eol)) {
            /* Only the lines that start with '>': a reply typed right under a
             * quote is, to CommonMark, a lazy continuation of the quote, but
             * its writer means it as their own words. */
            i = next_line(s, len, eol);
        } else if (fence_opens(s, i, eol, &f)) {
            /* an unclosed fence runs to the end, as it renders */
            i = next_line(s, len, eol);
            while (i < len) {
                size_t line = i;
                eol = line_end(s, len, line);
                i = next_line(s, len, eol);
                if (fence_closes(s, line, eol, &f))
                    break;
            }
        } else if (is_comment_block(s, i, eol)) {
            /* an HTML block: it runs through the line holding "-->", and what
             * follows on that line is raw HTML, visible but not Markdown */
            size_t end = comment_end(r, indent(s, i, eol), 1);
            if (end == SIZE_MAX)
                return 0;
            if (text_scan(r, end, TEXT_RAW, at, &i))
                return 1;
        } else if (text_scan(r, i, TEXT_MARKDOWN, at, &i)) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* What follows the mention                                                  */
/* ------------------------------------------------------------------------- */

/* keeps_word: the word is part of the instruction ("fix the test" is what
 * the agent reads), not only the choice of the command. */
static const struct {
    const char *word;
    mention_command_t command;
    int keeps_word;
} command_words[] = {
    {"help", MENTION_HELP, 0},
    {"stop", MENTION_STOP, 0},
    {"review", MENTION_REVIEW, 0},
    {"ask", MENTION_ASK, 0},
    {"fix", MENTION_FIX, 1},
};

static const char *const command_names[] = {
    [MENTION_NONE] = "none", [MENTION_FIX] = "fix",       [MENTION_HELP] = "help",
    [MENTION_STOP] = "stop", [MENTION_REVIEW] = "review", [MENTION_ASK] = "ask",
};

/* Steps over what closes the word just read before the next one starts:
 * punctuation glued to it ("@patchbay:", "@patchbay,", "**@patchbay**",
 * "(@patchbay)", "review.") and then whitespace, so that "@patchbay: review"
 * is a command and "@patchbay, fix the test" asks to "fix the test". */
static size_t skip_separators(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && s[i] != '\0' && strchr(":,;.!?*~)]", s[i]) != NULL)
        i++;
    while (i < len && is_space(s[i]))
        i++;
    return i;
}

static void set_instruction(mention_t *out, const unsigned char *s, size_t from, size_t to)
{
    while (from < to && is_space(s[from]))
        from++;
    while (to > from && is_space(s[to - 1]))
        to--;
    out->instruction = (const char *)s + from;
    out->instruction_len = to - from;
}

mention_command_t mention_find(const char *text, size_t len, const char *handle, mention_t *out)
{
    assert(out != NULL && handle != NULL);
    out->command = MENTION_NONE;
    out->at = 0;
    out->instruction = "";
    out->instruction_len = 0;
    out->worded = 0;
    if (text == NULL || len == 0 || handle[0] == '\0')
        return MENTION_NONE;

    reader_t r = {
        /* the rest, last_run included, starts at zero */
        .s = (const unsigned char *)text,
        .len = len,
        .handle = (const unsigned char *)handle,
        .handle_len = strlen(handle),
    };
    size_t at;
    if (!locate(&r, &at))
        return MENTION_NONE;

    const unsigned char *s = r.s;
    size_t word = skip_separators(s, len, at + 1 + r.handle_len);
    out->at = at;
    out->command = MENTION_FIX;
    set_instruction(out, s, word, len);
    for (size_t k = 0; k < sizeof(command_words) / sizeof(command_words[0]); k++) {
        size_t n = strlen(command_words[k].word);
        if (len - word < n || !word_ends(s, len, word + n))
            continue;
        size_t j = 0;
        while (j < n && lower(s[word + j]) == (unsigned char)command_words[k].word[j])
            j++;
        if (j == n) {
            out->command = command_words[k].command;
            out->worded = 1;
            if (!command_words[k].keeps_word)
                set_instruction(out, s, skip_separators(s, len, word + n), len);
            break;
        }
    }
    return out->command;
}

/* ------------------------------------------------------------------------- */
/* The question rule                                                         */
/* ------------------------------------------------------------------------- */

/* The words a question starts with. "do" is not one: "@patchbay do the
 * rename" is an order. "explain" is: it asks for words, never for a change. */
static const char *const question_words[] = {"what", "why", "how", "where", "which", "who", "when", "can",
                                             "could", "does", "is", "are", "should", "explain"};

static int is_letter(unsigned char c)
{
    return lower(c) >= 'a' && lower(c) <= 'z';
}

/* Whether the ASCII word w (lowercase) is at s[i..] as a whole word. */
static int word_at(const unsigned char *s, size_t len, size_t i, const char *w)
{
    size_t n = strlen(w);
    if (len - i < n || (i > 0 && is_alnum(s[i - 1])))
        return 0;
    for (size_t k = 0; k < n; k++)
        if (lower(s[i + k]) != (unsigned char)w[k])
            return 0;
    return i + n == len || !is_alnum(s[i + n]);
}

int mention_is_question(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    if (s == NULL)
        return 0;
    size_t from = 0;
    while (from < len && is_space(s[from]))
        from++;
    size_t eol = line_end(s, len, from);
    /* the person's own word for it wins over any shape: "how do I fix this?" asks for a fix */
    for (size_t i = from; i < eol; i++)
        if (lower(s[i]) == 'f' && word_at(s, eol, i, "fix"))
            return 0;
    size_t last = eol;
    while (last > from && is_space(s[last - 1]))
        last--;
    if (last > from && s[last - 1] == '?')
        return 1;
    size_t w = from;
    while (w < eol && is_letter(s[w]))
        w++;
    for (size_t k = 0; k < sizeof(question_words) / sizeof(question_words[0]); k++)
        if (w - from == strlen(question_words[k]) && word_at(s, eol, from, question_words[k]))
            return 1;
    return 0;
}

const char *mention_command_name(mention_command_t c)
{
    if ((size_t)c >= sizeof(command_names) / sizeof(command_names[0]) || command_names[c] == NULL)
        return "none";
    return command_names[c];
}
