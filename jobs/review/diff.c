/* diff — see diff.h. */
#include "diff.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Reading lines
 * ------------------------------------------------------------------------ */
typedef struct {
    const char *p;
    size_t len;
    size_t pos;
} cursor_t;

/* The line at the cursor without its '\n' (it may lack one at the end of the
 * input); *next is where the following line starts. 0 at the end. */
static int cursor_line(const cursor_t *c, const char **s, size_t *n, size_t *next)
{
    if (c->pos >= c->len)
        return 0;
    const char *start = c->p + c->pos;
    size_t rest = c->len - c->pos;
    const char *nl = memchr(start, '\n', rest);
    size_t l = nl ? (size_t)(nl - start) : rest;
    *s = start;
    *n = l;
    *next = c->pos + l + (nl ? 1 : 0);
    return 1;
}

static size_t chomp_cr(const char *s, size_t n)
{
    return n > 0 && s[n - 1] == '\r' ? n - 1 : n;
}

static int has_prefix(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n >= k && memcmp(s, lit, k) == 0;
}

/* ------------------------------------------------------------------------
 * Growable arrays
 * ------------------------------------------------------------------------ */
static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > ((size_t)-1) / 2 / elem)
            return -1;
        n *= 2;
    }
    void *p = realloc(*arr, n * elem);
    if (p == NULL)
        return -1;
    *arr = p;
    *cap = n;
    return 0;
}

/* ------------------------------------------------------------------------
 * Hunks
 * ------------------------------------------------------------------------ */
static int parse_number(const char *s, size_t n, size_t *i, uint32_t *out)
{
    size_t k = *i, digits = 0;
    uint64_t v = 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') {
        if (++digits > 10)
            return -1;
        v = v * 10 + (uint64_t)(s[k] - '0');
        k++;
    }
    if (digits == 0 || v > DIFF_MAX_LINE_NO)
        return -1;
    *out = (uint32_t)v;
    *i = k;
    return 0;
}

/* "@@ -a[,b] +c[,d] @@[ section]" (the '\r' already chomped). */
static int parse_hunk_header(const char *s, size_t n, diff_hunk_t *h)
{
    size_t i = 4;
    if (!has_prefix(s, n, "@@ -") || parse_number(s, n, &i, &h->old_start) < 0)
        return -1;
    h->old_count = 1;
    if (i < n && s[i] == ',') {
        i++;
        if (parse_number(s, n, &i, &h->old_count) < 0)
            return -1;
    }
    if (!has_prefix(s + i, n - i, " +"))
        return -1;
    i += 2;
    if (parse_number(s, n, &i, &h->new_start) < 0)
        return -1;
    h->new_count = 1;
    if (i < n && s[i] == ',') {
        i++;
        if (parse_number(s, n, &i, &h->new_count) < 0)
            return -1;
    }
    if (!has_prefix(s + i, n - i, " @@"))
        return -1;
    i += 3;
    if (i < n && s[i] == ' ')
        i++;
    h->section = s + i;
    h->section_len = (uint32_t)(n - i);
    /* git never writes an empty hunk, nor a line 0 that holds lines */
    if (h->old_count == 0 && h->new_count == 0)
        return -1;
    if ((h->old_count > 0 && h->old_start == 0) || (h->new_count > 0 && h->new_start == 0))
        return -1;
    if ((uint64_t)h->old_start + h->old_count > (uint64_t)DIFF_MAX_LINE_NO + 1 ||
        (uint64_t)h->new_start + h->new_count > (uint64_t)DIFF_MAX_LINE_NO + 1)
        return -1;
    return 0;
}

typedef struct {
    size_t cap_hunks, cap_lines;
    int store;     /* 0 once over the per-file limit: keep reading, stop keeping */
    int too_large; /* set when that happened */
} hunk_state_t;

/* Reads every hunk from the cursor (which is at an "@@ " line) through the
 * end of the last one, including trailing "\" lines. 0 when they all add up,
 * -1 when malformed (the cursor left at the offending line), -2 out of
 * memory. Lines and sections point into c->p. */
static int parse_hunks(diff_file_t *f, cursor_t *c, size_t max_lines, hunk_state_t *st)
{
    uint32_t last_old = 0, last_new = 0;
    const char *s;
    size_t n, next;
    while (cursor_line(c, &s, &n, &next)) {
        size_t hn = chomp_cr(s, n);
        if (!has_prefix(s, hn, "@@ "))
            break;
        diff_hunk_t h;
        memset(&h, 0, sizeof(h));
        if (parse_hunk_header(s, hn, &h) < 0)
            return -1;
        c->pos = next;
        if (st->store && f->nlines + f->nhunks + 1 > max_lines) {
            st->store = 0;
            st->too_large = 1;
        }
        h.first = f->nlines;
        uint32_t old_no = h.old_start, new_no = h.new_start;
        uint32_t old_rem = h.old_count, new_rem = h.new_count;
        size_t in_hunk = 0;
        while (old_rem > 0 || new_rem > 0) {
            if (!cursor_line(c, &s, &n, &next))
                return -1; /* the counts run past the end */
            diff_line_t l;
            memset(&l, 0, sizeof(l));
            char k = n > 0 ? s[0] : ' ';
            if (n == 1 && s[0] == '\r')
                k = ' ';
            if (k == '\\') {
                if (in_hunk == 0)
                    return -1;
                if (st->store)
                    f->lines[f->nlines - 1].no_newline = 1;
                c->pos = next;
                continue;
            }
            if (k == ' ') {
                if (old_rem == 0 || new_rem == 0)
                    return -1;
                l.kind = DIFF_LINE_CONTEXT;
                l.old_line = old_no++;
                l.new_line = new_no++;
                old_rem--;
                new_rem--;
            } else if (k == '+') {
                if (new_rem == 0)
                    return -1;
                l.kind = DIFF_LINE_ADDED;
                l.new_line = new_no++;
                new_rem--;
                h.additions++;
            } else if (k == '-') {
                if (old_rem == 0)
                    return -1;
                l.kind = DIFF_LINE_REMOVED;
                l.old_line = old_no++;
                old_rem--;
                h.deletions++;
            } else {
                return -1;
            }
            /* hunks in order, never overlapping: each side's numbers only grow */
            if ((l.old_line && l.old_line <= last_old) || (l.new_line && l.new_line <= last_new))
                return -1;
            if (l.old_line)
                last_old = l.old_line;
            if (l.new_line)
                last_new = l.new_line;
            size_t tn = n > 0 ? n - 1 : 0;
            l.text = n > 0 ? s + 1 : s;
            if (tn > 0 && l.text[tn - 1] == '\r') {
                tn--;
                l.crlf = 1;
            }
            l.text_len = (uint32_t)(tn > UINT32_MAX ? UINT32_MAX : tn);
            l.hunk = (uint32_t)f->nhunks;
            if (st->store) {
                if (f->nlines + f->nhunks + 1 > max_lines) {
                    st->store = 0;
                    st->too_large = 1;
                } else {
                    if (grow((void **)&f->lines, &st->cap_lines, f->nlines + 1, sizeof(diff_line_t)) < 0)
                        return -2;
                    f->lines[f->nlines++] = l;
                }
            }
            in_hunk++;
            c->pos = next;
        }
        /* "\ No newline at end of file" after the last line of the hunk */
        while (cursor_line(c, &s, &n, &next) && n > 0 && s[0] == '\\') {
            if (st->store && f->nlines > h.first)
                f->lines[f->nlines - 1].no_newline = 1;
            c->pos = next;
        }
        if (st->store) {
            h.count = f->nlines - h.first;
            if (grow((void **)&f->hunks, &st->cap_hunks, f->nhunks + 1, sizeof(diff_hunk_t)) < 0)
                return -2;
            f->hunks[f->nhunks++] = h;
        }
        f->additions += h.additions;
        f->deletions += h.deletions;
    }
    return 0;
}

static void drop_hunks(diff_file_t *f)
{
    free(f->hunks);
    free(f->lines);
    free(f->patch_text);
    f->hunks = NULL;
    f->lines = NULL;
    f->patch_text = NULL;
    f->nhunks = f->nlines = f->patch_len = 0;
}

/* Copies text[start, end) as the file's patch and moves every pointer into it. */
static int keep_patch(diff_file_t *f, const char *base, size_t start, size_t end)
{
    size_t n = end - start;
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, base + start, n);
    copy[n] = '\0';
    const char *from = base + start;
    for (size_t i = 0; i < f->nlines; i++)
        f->lines[i].text = copy + (f->lines[i].text - from);
    for (size_t i = 0; i < f->nhunks; i++)
        f->hunks[i].section = copy + (f->hunks[i].section - from);
    f->patch_text = copy;
    f->patch_len = n;
    return 0;
}

/* Parses the hunks at the cursor into f, setting f->patch. Returns 0 (also
 * for a malformed or too large patch, which is recorded in f) or -2 (memory). */
static int read_patch(diff_file_t *f, cursor_t *c, const diff_limits_t *lim)
{
    hunk_state_t st = {0, 0, 1, 0};
    size_t start = c->pos;
    int rc = parse_hunks(f, c, lim->max_file_lines, &st);
    if (rc == -2)
        return -2;
    if (rc == -1) {
        drop_hunks(f);
        f->patch = DIFF_PATCH_MALFORMED;
        return 0;
    }
    if (st.too_large) {
        drop_hunks(f);
        f->patch = DIFF_PATCH_TOO_LARGE;
        return 0;
    }
    if (keep_patch(f, c->p, start, c->pos) < 0)
        return -2;
    f->patch = DIFF_PATCH_OK;
    return 0;
}

/* ------------------------------------------------------------------------
 * Paths
 * ------------------------------------------------------------------------ */
static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* A C-style quoted name as git writes it ("a/tab\there", octal escapes for
 * bytes). s[0] is the opening quote. Returns the unquoted bytes (malloc) and
 * *used = bytes consumed, or NULL when it never closes. */
static char *unquote_c(const char *s, size_t n, size_t *used, size_t *outlen)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (ch == '"') {
            out[o] = '\0';
            *used = i + 1;
            *outlen = o;
            return out;
        }
        if (ch != '\\') {
            out[o++] = ch;
            continue;
        }
        if (++i >= n)
            break;
        switch (s[i]) {
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 't': out[o++] = '\t'; break;
        case 'n': out[o++] = '\n'; break;
        case 'v': out[o++] = '\v'; break;
        case 'f': out[o++] = '\f'; break;
        case 'r': out[o++] = '\r'; break;
        case '0': case '1': case '2': case '3': {
            unsigned v = 0;
            int k = 0;
            while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') {
                v = v * 8 + (unsigned)(s[i] - '0');
                i++;
                k++;
            }
            i--;
            if (k != 3)
                goto bad;
            out[o++] = (char)v;
            break;
        }
        default: out[o++] = s[i]; break; /* \" \\ and anything else as itself */
        }
    }
bad:
    free(out);
    return NULL;
}

/* One path operand: quoted, or raw up to a TAB (GNU diff's timestamp; git
 * adds a TAB after names with spaces). NULL when it is /dev/null or bad;
 * *is_null tells which. */
static char *path_operand(const char *s, size_t n, int *is_null, size_t *outlen)
{
    *is_null = 0;
    if (n > 0 && s[0] == '"') {
        size_t used;
        return unquote_c(s, n, &used, outlen);
    }
    const char *tab = memchr(s, '\t', n);
    if (tab != NULL)
        n = (size_t)(tab - s);
    if (n == 9 && memcmp(s, "/dev/null", 9) == 0) {
        *is_null = 1;
        return NULL;
    }
    *outlen = n;
    return dup_n(s, n);
}

/* Drops git's "a/" or "b/" prefix in place. */
static void strip_prefix(char *p, size_t *len, char which)
{
    if (p != NULL && *len >= 2 && p[0] == which && p[1] == '/') {
        memmove(p, p + 2, *len - 2 + 1);
        *len -= 2;
    }
}

typedef struct {
    char *path;
    size_t len;
} pathbuf_t;

static void path_set(pathbuf_t *pb, char *p, size_t len)
{
    free(pb->path);
    pb->path = p;
    pb->len = len;
}

/* "diff --git a/X b/Y": only a fallback for sections without "---"/"+++"
 * or rename lines (binary files, mode changes, empty files). For an
 * unquoted name with spaces the two halves are equal, so split in the middle. */
static void parse_git_header(const char *s, size_t n, pathbuf_t *a, pathbuf_t *b)
{
    size_t alen = 0, blen = 0;
    if (n > 0 && s[0] == '"') {
        size_t used;
        char *pa = unquote_c(s, n, &used, &alen);
        if (pa == NULL)
            return;
        if (used < n && s[used] == ' ')
            used++;
        int isnull;
        char *pb = path_operand(s + used, n - used, &isnull, &blen);
        if (pb == NULL) {
            free(pa);
            return;
        }
        path_set(a, pa, alen);
        path_set(b, pb, blen);
    } else {
        const char *quote = NULL;
        for (size_t i = 0; i + 1 < n; i++)
            if (s[i] == ' ' && s[i + 1] == '"') {
                quote = s + i;
                break;
            }
        size_t cut;
        if (quote != NULL) {
            cut = (size_t)(quote - s);
        } else if (n % 2 == 1 && s[n / 2] == ' ' && n / 2 >= 2 && memcmp(s + 2, s + n / 2 + 3, n / 2 - 2) == 0) {
            cut = n / 2;
        } else {
            const char *sp = NULL;
            for (size_t i = 0; i + 2 < n; i++)
                if (s[i] == ' ' && s[i + 1] == 'b' && s[i + 2] == '/') {
                    sp = s + i;
                    break;
                }
            if (sp == NULL)
                return;
            cut = (size_t)(sp - s);
        }
        int isnull;
        char *pa = dup_n(s, cut);
        char *pb = path_operand(s + cut + 1, n - cut - 1, &isnull, &blen);
        if (pa == NULL || pb == NULL) {
            free(pa);
            free(pb);
            return;
        }
        path_set(a, pa, cut);
        path_set(b, pb, blen);
    }
    strip_prefix(a->path, &a->len, 'a');
    strip_prefix(b->path, &b->len, 'b');
}

/* ------------------------------------------------------------------------
 * Unified diff
 * ------------------------------------------------------------------------ */
typedef struct {
    int active;
    int git;          /* began with "diff --git" */
    int done;         /* its hunks were read */
    int ignored;      /* over max_files: only counted */
    int skip_binary;  /* inside "GIT binary patch" data */
    int is_new, is_deleted, is_rename, is_copy, binary;
    int minus_null, plus_null;
    uint32_t old_mode, new_mode;
    pathbuf_t git_a, git_b, minus, plus, from, to;
    diff_file_t file; /* hunks and lines so far */
} section_t;

static void section_reset(section_t *sec)
{
    pathbuf_t *all[] = {&sec->git_a, &sec->git_b, &sec->minus, &sec->plus, &sec->from, &sec->to};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        path_set(all[i], NULL, 0);
    drop_hunks(&sec->file);
    memset(sec, 0, sizeof(*sec));
}

static int parse_mode(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    size_t i = 0;
    for (; i < n && i < 8 && s[i] >= '0' && s[i] <= '7'; i++)
        v = v * 8 + (uint32_t)(s[i] - '0');
    if (i == 0)
        return -1;
    *out = v;
    return 0;
}

static int push_file(diff_t *d, size_t *cap, diff_file_t *f)
{
    if (grow((void **)&d->files, cap, d->nfiles + 1, sizeof(diff_file_t)) < 0)
        return -1;
    d->files[d->nfiles++] = *f;
    memset(f, 0, sizeof(*f));
    return 0;
}

static int has_nul(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

/* Turns a finished section into a file of d. 0, or -2 on memory. */
static int section_finish(diff_t *d, size_t *cap, section_t *sec)
{
    if (!sec->active || sec->ignored) {
        section_reset(sec);
        return 0;
    }
    diff_file_t *f = &sec->file;
    pathbuf_t *oldp = sec->from.path ? &sec->from : sec->minus.path ? &sec->minus : &sec->git_a;
    pathbuf_t *newp = sec->to.path ? &sec->to : sec->plus.path ? &sec->plus : &sec->git_b;
    if (sec->is_deleted || sec->plus_null)
        f->status = DIFF_FILE_REMOVED;
    else if (sec->is_new || sec->minus_null)
        f->status = DIFF_FILE_ADDED;
    else if (sec->is_rename)
        f->status = DIFF_FILE_RENAMED;
    else if (sec->is_copy)
        f->status = DIFF_FILE_COPIED;
    else
        f->status = DIFF_FILE_MODIFIED;
    pathbuf_t *name = f->status == DIFF_FILE_REMOVED ? oldp : newp;
    if (name->path == NULL || name->len == 0) {
        d->garbage++;
        section_reset(sec);
        return 0;
    }
    f->path = name->path;
    int bad_name = has_nul(name->path, name->len);
    name->path = NULL;
    if ((f->status == DIFF_FILE_RENAMED || f->status == DIFF_FILE_COPIED) && oldp->path != NULL) {
        bad_name |= has_nul(oldp->path, oldp->len);
        f->previous_path = oldp->path;
        oldp->path = NULL;
    }
    f->old_mode = sec->old_mode;
    f->new_mode = sec->new_mode;
    if (sec->binary) {
        drop_hunks(f);
        f->patch = DIFF_PATCH_BINARY;
    } else if (bad_name) {
        drop_hunks(f); /* a name with a NUL cannot be the one GitHub shows */
        f->patch = DIFF_PATCH_MALFORMED;
    } else if (f->patch == DIFF_PATCH_OK && f->nhunks == 0) {
        f->patch = DIFF_PATCH_NONE;
    }
    int rc = push_file(d, cap, f);
    section_reset(sec);
    return rc < 0 ? -2 : 0;
}

static int section_path(pathbuf_t *pb, const char *v, size_t vn, char prefix, int *is_null)
{
    size_t len = 0;
    int isnull = 0;
    char *p = path_operand(v, vn, &isnull, &len);
    if (is_null != NULL)
        *is_null = isnull;
    if (p == NULL)
        return 0;
    if (prefix)
        strip_prefix(p, &len, prefix);
    path_set(pb, p, len);
    return 0;
}

int diff_parse_unified(diff_t **out, const char *text, size_t len, const diff_limits_t *limits)
{
    diff_limits_t lim = DIFF_LIMITS_INIT;
    if (limits != NULL)
        lim = *limits;
    *out = NULL;
    if (len > lim.max_bytes)
        return DIFF_ERR_TOO_LARGE;
    diff_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return DIFF_ERR_NOMEM;
    int rc = DIFF_OK;
    size_t cap = 0;
    section_t sec;
    memset(&sec, 0, sizeof(sec));
    cursor_t c = {text ? text : "", text ? len : 0, 0};
    const char *s;
    size_t n, next;
    int full = 0; /* max_files reached: only count what follows */

    while (cursor_line(&c, &s, &n, &next)) {
        size_t hn = chomp_cr(s, n);
        int git_start = has_prefix(s, hn, "diff --git ");
        int plain_start = 0;
        if (!git_start && has_prefix(s, hn, "--- ") && !(sec.active && sec.git && (!sec.done || sec.ignored))) {
            cursor_t peek = c;
            const char *s2;
            size_t n2, next2;
            peek.pos = next;
            plain_start = cursor_line(&peek, &s2, &n2, &next2) && has_prefix(s2, n2, "+++ ");
        }
        if (git_start || plain_start) {
            if (section_finish(d, &cap, &sec) < 0) {
                rc = DIFF_ERR_NOMEM;
                goto done;
            }
            sec.active = 1;
            if (full || d->nfiles >= lim.max_files) {
                /* counted, not parsed; its lines are skipped like a finished file's */
                full = 1;
                d->files_dropped++;
                sec.ignored = 1;
                sec.done = 1;
                sec.git = git_start;
                c.pos = next;
                if (plain_start) /* skip the "+++" too, so it cannot start anything */
                    cursor_line(&c, &s, &n, &c.pos);
                continue;
            }
            sec.git = git_start;
            if (git_start) {
                parse_git_header(s + 11, hn - 11, &sec.git_a, &sec.git_b);
                c.pos = next;
                continue;
            }
            /* a plain diff's "---" line is its first header line: read on */
        }
        if (!sec.active || sec.done || sec.skip_binary) {
            c.pos = next; /* between files: commit messages, "Only in", binary data */
            continue;
        }
        if (has_prefix(s, hn, "@@ ")) {
            if (read_patch(&sec.file, &c, &lim) < 0) {
                rc = DIFF_ERR_NOMEM;
                goto done;
            }
            sec.done = 1;
            /* after a malformed hunk the lines up to the next file header
             * are skipped (sec.done), which resynchronises the parse */
            continue;
        }
        const char *v;
        size_t vn;
#define VALUE(lit) (has_prefix(s, hn, lit) ? (v = s + strlen(lit), vn = hn - strlen(lit), 1) : 0)
        if (VALUE("--- ")) {
            section_path(&sec.minus, v, vn, 'a', &sec.minus_null);
        } else if (VALUE("+++ ")) {
            section_path(&sec.plus, v, vn, 'b', &sec.plus_null);
        } else if (VALUE("rename from ")) {
            sec.is_rename = 1;
            section_path(&sec.from, v, vn, 0, NULL);
        } else if (VALUE("rename to ")) {
            sec.is_rename = 1;
            section_path(&sec.to, v, vn, 0, NULL);
        } else if (VALUE("copy from ")) {
            sec.is_copy = 1;
            section_path(&sec.from, v, vn, 0, NULL);
        } else if (VALUE("copy to ")) {
            sec.is_copy = 1;
            section_path(&sec.to, v, vn, 0, NULL);
        } else if (VALUE("new file mode ")) {
            sec.is_new = 1;
            parse_mode(v, vn, &sec.new_mode);
        } else if (VALUE("deleted file mode ")) {
            sec.is_deleted = 1;
            parse_mode(v, vn, &sec.old_mode);
        } else if (VALUE("old mode ")) {
            parse_mode(v, vn, &sec.old_mode);
        } else if (VALUE("new mode ")) {
            parse_mode(v, vn, &sec.new_mode);
        } else if (has_prefix(s, hn, "Binary files ")) {
            sec.binary = 1;
        } else if (has_prefix(s, hn, "GIT binary patch")) {
            sec.binary = 1;
            sec.skip_binary = 1;
        }
#undef VALUE
        /* index, similarity index, dissimilarity index and anything else: ignored */
        c.pos = next;
    }
    if (section_finish(d, &cap, &sec) < 0)
        rc = DIFF_ERR_NOMEM;
done:
    section_reset(&sec);
    if (rc != DIFF_OK) {
        diff_free(d);
        return rc;
    }
    *out = d;
    return DIFF_OK;
}

/* ------------------------------------------------------------------------
 * GitHub's files JSON
 * ------------------------------------------------------------------------ */
static const struct {
    const char *name;
    diff_status_t status;
} status_names[] = {
    {"modified", DIFF_FILE_MODIFIED}, {"added", DIFF_FILE_ADDED},         {"removed", DIFF_FILE_REMOVED},
    {"renamed", DIFF_FILE_RENAMED},   {"copied", DIFF_FILE_COPIED},       {"changed", DIFF_FILE_CHANGED},
    {"unchanged", DIFF_FILE_UNCHANGED},
};

const char *diff_status_name(diff_status_t s)
{
    for (size_t i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (status_names[i].status == s)
            return status_names[i].name;
    return "modified";
}

static uint32_t json_u32(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    json_int_t x = json_integer_value(v);
    return x > (json_int_t)UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

static int file_from_json(diff_t *d, size_t *cap, const json_t *o, const diff_limits_t *lim, size_t *bytes)
{
    diff_file_t f;
    memset(&f, 0, sizeof(f));
    json_t *name = json_object_get(o, "filename");
    if (!json_is_string(name) || json_string_length(name) == 0) {
        d->garbage++;
        return 0;
    }
    int bad_name = has_nul(json_string_value(name), json_string_length(name));
    f.path = dup_n(json_string_value(name), json_string_length(name));
    if (f.path == NULL)
        goto nomem;
    const char *st = json_string_value(json_object_get(o, "status"));
    f.status = DIFF_FILE_MODIFIED;
    for (size_t i = 0; st != NULL && i < sizeof(status_names) / sizeof(status_names[0]); i++)
        if (strcmp(st, status_names[i].name) == 0)
            f.status = status_names[i].status;
    json_t *prev = json_object_get(o, "previous_filename");
    if (json_is_string(prev) && json_string_length(prev) > 0) {
        bad_name |= has_nul(json_string_value(prev), json_string_length(prev));
        f.previous_path = dup_n(json_string_value(prev), json_string_length(prev));
        if (f.previous_path == NULL)
            goto nomem;
    }
    uint32_t additions = json_u32(o, "additions"), deletions = json_u32(o, "deletions");
    uint32_t changes = json_u32(o, "changes");
    json_t *patch = json_object_get(o, "patch");
    if (json_is_string(patch) && json_string_length(patch) > 0) {
        size_t plen = json_string_length(patch);
        *bytes += plen;
        if (*bytes > lim->max_bytes) {
            free(f.path);
            free(f.previous_path);
            return DIFF_ERR_TOO_LARGE;
        }
        cursor_t c = {json_string_value(patch), plen, 0};
        const char *s;
        size_t n, next;
        if (cursor_line(&c, &s, &n, &next) && has_prefix(s, chomp_cr(s, n), "@@ ")) {
            if (read_patch(&f, &c, lim) < 0)
                goto nomem;
            /* the whole field must be hunks; a trailing newline is fine */
            if (f.patch == DIFF_PATCH_OK && c.pos < c.len) {
                drop_hunks(&f);
                f.patch = DIFF_PATCH_MALFORMED;
            }
        } else {
            f.patch = DIFF_PATCH_MALFORMED;
        }
        if (f.patch == DIFF_PATCH_OK && f.nhunks == 0)
            f.patch = DIFF_PATCH_NONE;
    } else {
        f.patch = (additions > 0 || deletions > 0 || changes > 0) ? DIFF_PATCH_OMITTED : DIFF_PATCH_NONE;
    }
    if (bad_name) {
        drop_hunks(&f);
        f.patch = DIFF_PATCH_MALFORMED;
    }
    /* GitHub's counts win where it gave them (an omitted patch still has them) */
    if (f.patch != DIFF_PATCH_OK) {
        f.additions = additions;
        f.deletions = deletions;
    }
    if (push_file(d, cap, &f) < 0)
        goto nomem;
    return 0;
nomem:
    drop_hunks(&f);
    free(f.path);
    free(f.previous_path);
    return DIFF_ERR_NOMEM;
}

int diff_parse_files_json(diff_t **out, const json_t *files, const diff_limits_t *limits)
{
    diff_limits_t lim = DIFF_LIMITS_INIT;
    if (limits != NULL)
        lim = *limits;
    *out = NULL;
    if (!json_is_array(files))
        return DIFF_ERR_FORMAT;
    diff_t *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return DIFF_ERR_NOMEM;
    size_t cap = 0, bytes = 0;
    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *o = json_array_get(files, i);
        if (!json_is_object(o)) {
            d->garbage++;
            continue;
        }
        if (d->nfiles >= lim.max_files) {
            d->files_dropped++;
            continue;
        }
        int rc = file_from_json(d, &cap, o, &lim, &bytes);
        if (rc < 0) {
            diff_free(d);
            return rc;
        }
    }
    *out = d;
    return DIFF_OK;
}

int diff_parse_files_text(diff_t **out, const char *json, size_t len, const diff_limits_t *limits)
{
    diff_limits_t lim = DIFF_LIMITS_INIT;
    if (limits != NULL)
        lim = *limits;
    *out = NULL;
    if (len > lim.max_bytes)
        return DIFF_ERR_TOO_LARGE;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (root == NULL)
        return DIFF_ERR_FORMAT;
    int rc = diff_parse_files_json(out, root, &lim);
    json_decref(root);
    return rc;
}

void diff_free(diff_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nfiles; i++) {
        diff_file_t *f = &d->files[i];
        drop_hunks(f);
        free(f->path);
        free(f->previous_path);
    }
    free(d->files);
    free(d);
}

/* ------------------------------------------------------------------------
 * Queries
 * ------------------------------------------------------------------------ */
const diff_file_t *diff_file_find(const diff_t *d, const char *path)
{
    if (d == NULL || path == NULL)
        return NULL;
    for (size_t i = 0; i < d->nfiles; i++)
        if (strcmp(d->files[i].path, path) == 0)
            return &d->files[i];
    for (size_t i = 0; i < d->nfiles; i++)
        if (d->files[i].previous_path != NULL && strcmp(d->files[i].previous_path, path) == 0)
            return &d->files[i];
    return NULL;
}

uint32_t diff_line_no(const diff_line_t *l, diff_side_t side)
{
    return side == DIFF_SIDE_RIGHT ? l->new_line : l->old_line;
}

int diff_hunk_range(const diff_hunk_t *h, diff_side_t side, uint32_t *first, uint32_t *last)
{
    uint32_t start = side == DIFF_SIDE_RIGHT ? h->new_start : h->old_start;
    uint32_t count = side == DIFF_SIDE_RIGHT ? h->new_count : h->old_count;
    if (count == 0) {
        *first = *last = 0;
        return -1;
    }
    *first = start;
    *last = start + count - 1;
    return 0;
}

long diff_line_find(const diff_file_t *f, diff_side_t side, uint32_t line)
{
    if (f == NULL || f->patch != DIFF_PATCH_OK || line == 0)
        return -1;
    /* hunks are ordered on both sides: binary search for the last hunk that
     * starts at or before `line`, then walk it */
    size_t lo = 0, hi = f->nhunks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t first, last;
        /* a hunk with no line on this side still sits in order: its start is
         * the line before the gap */
        if (diff_hunk_range(&f->hunks[mid], side, &first, &last) < 0)
            first = side == DIFF_SIDE_RIGHT ? f->hunks[mid].new_start : f->hunks[mid].old_start;
        if (first <= line)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k-- > 0;) {
        const diff_hunk_t *h = &f->hunks[k];
        uint32_t first, last;
        if (diff_hunk_range(h, side, &first, &last) < 0)
            continue;
        if (line < first || line > last)
            return -1;
        for (size_t i = h->first; i < h->first + h->count; i++)
            if (diff_line_no(&f->lines[i], side) == line)
                return (long)i;
        assert(0 && "a hunk's range holds every number on its side");
        return -1;
    }
    return -1;
}

void diff_file_write_patch(const diff_file_t *f, size_t max_lines, strbuf_t *out)
{
    if (f->patch != DIFF_PATCH_OK)
        return;
    size_t written = 0;
    for (size_t k = 0; k < f->nhunks && written < max_lines; k++) {
        const diff_hunk_t *h = &f->hunks[k];
        strbuf_appendf(out, "@@ -%u,%u +%u,%u @@", h->old_start, h->old_count, h->new_start, h->new_count);
        if (h->section_len > 0) {
            strbuf_append(out, " ");
            strbuf_appendn(out, h->section, h->section_len);
        }
        strbuf_append(out, "\n");
        for (size_t i = h->first; i < h->first + h->count && written < max_lines; i++, written++) {
            const diff_line_t *l = &f->lines[i];
            strbuf_append(out, l->kind == DIFF_LINE_ADDED ? "+" : l->kind == DIFF_LINE_REMOVED ? "-" : " ");
            strbuf_appendn(out, l->text, l->text_len);
            strbuf_append(out, l->crlf ? "\r\n" : "\n");
            if (l->no_newline)
                strbuf_append(out, "\\ No newline at end of file\n");
        }
    }
}

const char *diff_patch_name(diff_patch_t p)
{
    switch (p) {
    case DIFF_PATCH_OK: return "ok";
    case DIFF_PATCH_BINARY: return "binary";
    case DIFF_PATCH_NONE: return "none";
    case DIFF_PATCH_OMITTED: return "omitted";
    case DIFF_PATCH_MALFORMED: return "malformed";
    case DIFF_PATCH_TOO_LARGE: return "too_large";
    }
    return "?";
}

const char *diff_patch_reason(diff_patch_t p)
{
    switch (p) {
    case DIFF_PATCH_OK: return "diff parsed";
    case DIFF_PATCH_BINARY: return "binary file";
    case DIFF_PATCH_NONE: return "no text changes (rename, mode change, binary or empty file)";
    case DIFF_PATCH_OMITTED: return "GitHub did not include the diff (too large)";
    case DIFF_PATCH_MALFORMED: return "the diff could not be parsed";
    case DIFF_PATCH_TOO_LARGE: return "the diff is too large";
    }
    return "?";
}

const char *diff_side_name(diff_side_t s)
{
    return s == DIFF_SIDE_LEFT ? "LEFT" : "RIGHT";
}
