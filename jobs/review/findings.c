/* findings — see findings.h. */
#include "findings.h"
#include "app/common/fileio.h"
#include "app/common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const severity_names[FINDING__SEVERITIES] = {"info", "warning", "error"};

const char *finding_severity_name(finding_severity_t s)
{
    return (unsigned)s < FINDING__SEVERITIES ? severity_names[s] : "info";
}

int finding_severity_parse(const char *s)
{
    for (int i = 0; s != NULL && i < FINDING__SEVERITIES; i++)
        if (strcasecmp(s, severity_names[i]) == 0)
            return i;
    return -1;
}

static void finding_clear(finding_t *x)
{
    free(x->path);
    free(x->body);
    free(x->suggestion);
    memset(x, 0, sizeof(*x));
}

void findings_free(findings_t *f)
{
    for (size_t i = 0; i < f->count; i++)
        finding_clear(&f->items[i]);
    free(f->items);
    free(f->summary);
    const char *job = f->job;
    memset(f, 0, sizeof(*f));
    f->job = job;
}

/* Records and logs why finding `index` was dropped. Reasons never quote the
 * agent's text: they go to logs. */
static void drop(findings_t *f, size_t index, char *reason_out, size_t reason_size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void drop(findings_t *f, size_t index, char *reason_out, size_t reason_size, const char *fmt, ...)
{
    char reason[sizeof(f->drops[0].reason)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    f->dropped++;
    if (f->ndrops < FINDINGS_MAX_DROPS_KEPT) {
        f->drops[f->ndrops].index = index;
        memcpy(f->drops[f->ndrops].reason, reason, sizeof(reason));
        f->ndrops++;
    }
    if (reason_out != NULL && reason_size > 0)
        snprintf(reason_out, reason_size, "%s", reason);
    log_warn(NULL, f->job, "review finding %zu dropped: %s", index, reason);
}

/* A copy of s[0..n) with surrounding whitespace trimmed and cut to at most
 * max bytes at a UTF-8 character boundary (marked with an ellipsis). */
static char *copy_trimmed(const char *s, size_t n, size_t max, int *cut)
{
    while (n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    *cut = 0;
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* s[n] continues a character: back off to its start */
        *cut = 1;
    }
    static const char ellipsis[] = " \xE2\x80\xA6";
    char *p = malloc(n + sizeof(ellipsis));
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    if (*cut)
        memcpy(p + n, ellipsis, sizeof(ellipsis));
    else
        p[n] = '\0';
    return p;
}

static int json_line_number(const json_t *v, json_int_t *out)
{
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int same_finding(const finding_t *a, const finding_t *b)
{
    return a->line == b->line && a->start_line == b->start_line && a->side == b->side && strcmp(a->path, b->path) == 0 &&
           strcmp(a->body, b->body) == 0 &&
           ((a->suggestion == NULL && b->suggestion == NULL) ||
            (a->suggestion != NULL && b->suggestion != NULL && strcmp(a->suggestion, b->suggestion) == 0));
}

int findings_add_json(findings_t *f, const json_t *obj, char *reason, size_t reason_size)
{
    size_t index = f->seen++;
    finding_t x;
    memset(&x, 0, sizeof(x));
    x.index = index;
    if (f->count >= FINDINGS_MAX) {
        drop(f, index, reason, reason_size, "more than %d findings", FINDINGS_MAX);
        return -1;
    }
    if (!json_is_object(obj)) {
        drop(f, index, reason, reason_size, "not a JSON object");
        return -1;
    }

    json_t *path = json_object_get(obj, "path");
    if (!json_is_string(path)) {
        drop(f, index, reason, reason_size, "path is missing or not a string");
        return -1;
    }
    const char *p = json_string_value(path);
    size_t plen = json_string_length(path);
    if (strlen(p) != plen) {
        drop(f, index, reason, reason_size, "path contains a NUL character");
        return -1;
    }
    while (plen >= 2 && p[0] == '.' && p[1] == '/')
        p += 2, plen -= 2;
    if (plen == 0) {
        drop(f, index, reason, reason_size, "path is empty");
        return -1;
    }
    if (plen > FINDINGS_PATH_MAX_BYTES) {
        drop(f, index, reason, reason_size, "path is longer than %u bytes", FINDINGS_PATH_MAX_BYTES);
        return -1;
    }

    json_int_t line, start = 0;
    if (json_line_number(json_object_get(obj, "line"), &line) < 0) {
        drop(f, index, reason, reason_size, "line is missing or not an integer");
        return -1;
    }
    if (line < 1 || line > (json_int_t)FINDINGS_MAX_LINE) {
        drop(f, index, reason, reason_size, "line %lld is out of range", (long long)line);
        return -1;
    }

    json_t *side = json_object_get(obj, "side");
    x.side = DIFF_SIDE_RIGHT;
    if (side != NULL && !json_is_null(side)) {
        const char *sv = json_string_value(side);
        if (sv != NULL && strcasecmp(sv, "RIGHT") == 0)
            x.side = DIFF_SIDE_RIGHT;
        else if (sv != NULL && strcasecmp(sv, "LEFT") == 0)
            x.side = DIFF_SIDE_LEFT;
        else {
            drop(f, index, reason, reason_size, "side must be RIGHT or LEFT");
            return -1;
        }
    }

    json_t *sl = json_object_get(obj, "start_line");
    if (sl != NULL && !json_is_null(sl)) {
        if (json_line_number(sl, &start) < 0) {
            drop(f, index, reason, reason_size, "start_line is not an integer");
            return -1;
        }
        if (start < 1 || start > line) {
            drop(f, index, reason, reason_size, "start_line %lld is not between 1 and line %lld", (long long)start,
                 (long long)line);
            return -1;
        }
        if (start == line)
            start = 0;
    }
    json_t *ss = json_object_get(obj, "start_side");
    if (ss != NULL && !json_is_null(ss)) {
        const char *sv = json_string_value(ss);
        if (sv == NULL || strcasecmp(sv, diff_side_name(x.side)) != 0) {
            drop(f, index, reason, reason_size, "start_side must equal side (GitHub keeps a range on one side)");
            return -1;
        }
    }

    json_t *sev = json_object_get(obj, "severity");
    x.severity = FINDING_INFO;
    if (sev != NULL && !json_is_null(sev)) {
        int s = finding_severity_parse(json_string_value(sev));
        if (s < 0) {
            drop(f, index, reason, reason_size, "severity must be info, warning or error");
            return -1;
        }
        x.severity = (finding_severity_t)s;
    }

    json_t *body = json_object_get(obj, "body");
    if (!json_is_string(body)) {
        drop(f, index, reason, reason_size, "body is missing or not a string");
        return -1;
    }
    json_t *sug = json_object_get(obj, "suggestion");
    if (sug != NULL && !json_is_null(sug) && !json_is_string(sug)) {
        drop(f, index, reason, reason_size, "suggestion is not a string");
        return -1;
    }

    int cut = 0;
    x.line = (uint32_t)line;
    x.start_line = (uint32_t)start;
    x.path = malloc(plen + 1);
    x.body = copy_trimmed(json_string_value(body), json_string_length(body), FINDINGS_BODY_MAX_BYTES, &cut);
    if (x.path == NULL || x.body == NULL)
        goto nomem;
    memcpy(x.path, p, plen);
    x.path[plen] = '\0';
    if (x.body[0] == '\0') {
        finding_clear(&x);
        drop(f, index, reason, reason_size, "body is empty");
        return -1;
    }
    if (cut)
        log_warn(NULL, f->job, "review finding %zu: body cut to %u bytes", index, FINDINGS_BODY_MAX_BYTES);
    if (json_is_string(sug)) {
        if (json_string_length(sug) > FINDINGS_SUGGESTION_MAX_BYTES) {
            log_warn(NULL, f->job, "review finding %zu: suggestion over %u bytes left out", index,
                     FINDINGS_SUGGESTION_MAX_BYTES);
        } else if (strlen(json_string_value(sug)) != json_string_length(sug)) {
            log_warn(NULL, f->job, "review finding %zu: suggestion with a NUL character left out", index);
        } else {
            x.suggestion = strdup(json_string_value(sug));
            if (x.suggestion == NULL)
                goto nomem;
        }
    }

    for (size_t i = 0; i < f->count; i++)
        if (same_finding(&f->items[i], &x)) {
            size_t first = f->items[i].index;
            finding_clear(&x);
            drop(f, index, reason, reason_size, "duplicate of finding %zu", first);
            return -1;
        }
    if (f->count == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        finding_t *items = realloc(f->items, cap * sizeof(*items));
        if (items == NULL)
            goto nomem;
        f->items = items;
        f->cap = cap;
    }
    f->items[f->count++] = x;
    return 0;
nomem:
    finding_clear(&x);
    drop(f, index, reason, reason_size, "out of memory");
    return -1;
}

/* One top-level value: an envelope, an array of findings, or one finding. */
static void take_value(findings_t *f, const json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            findings_add_json(f, json_array_get(v, i), NULL, 0);
        return;
    }
    json_t *list = json_object_get(v, "findings");
    json_t *summary = json_object_get(v, "summary");
    if (json_object_get(v, "path") == NULL && (list != NULL || summary != NULL)) {
        if (json_is_string(summary)) {
            int cut = 0;
            char *s = copy_trimmed(json_string_value(summary), json_string_length(summary), FINDINGS_SUMMARY_MAX_BYTES,
                                   &cut);
            if (s != NULL && s[0] != '\0') {
                free(f->summary);
                f->summary = s;
            } else {
                free(s);
            }
        } else if (summary != NULL && !json_is_null(summary)) {
            log_warn(NULL, f->job, "review file: summary is not a string; ignored");
        }
        if (json_is_array(list)) {
            take_value(f, list);
        } else if (list != NULL && !json_is_null(list)) {
            drop(f, f->seen++, NULL, 0, "findings is not an array");
        }
        return;
    }
    findings_add_json(f, v, NULL, 0);
}

int findings_parse(findings_t *f, const char *text, size_t len)
{
    size_t pos = 0;
    int values = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* a byte-order mark some editors write */
    for (;;) {
        while (pos < len && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
            pos++;
        if (pos >= len)
            break;
        json_error_t err;
        json_t *v = NULL;
        if (text[pos] == '{' || text[pos] == '[')
            v = json_loadb(text + pos, len - pos, JSON_DISABLE_EOF_CHECK, &err);
        if (v == NULL) {
            if (values == 0)
                return FINDINGS_ERR_SYNTAX;
            drop(f, f->seen++, NULL, 0, "not JSON after byte %zu", pos);
            break;
        }
        /* with JSON_DISABLE_EOF_CHECK jansson reports how far it read */
        size_t used = err.position > 0 ? (size_t)err.position : len - pos;
        take_value(f, v);
        json_decref(v);
        values++;
        pos += used;
    }
    return FINDINGS_OK;
}

int findings_load_file(findings_t *f, const char *path)
{
    /* the agent writes this file: it may have made it a FIFO, which must not block the job */
    size_t n = 0;
    char *buf = fileio_read(path, FINDINGS_FILE_MAX_BYTES + 1, &n);
    if (buf == NULL)
        return errno == ENOMEM ? FINDINGS_ERR_NOMEM : FINDINGS_ERR_IO;
    if (n > FINDINGS_FILE_MAX_BYTES) {
        log_warn(NULL, f->job, "review file is over %u bytes; the rest is ignored", FINDINGS_FILE_MAX_BYTES);
        n = FINDINGS_FILE_MAX_BYTES;
    }
    int rc = findings_parse(f, buf, n);
    free(buf);
    return rc;
}
