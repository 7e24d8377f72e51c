/* redact — see redact.h. */
#include "redact.h"

#include <stdlib.h>
#include <string.h>

void redact_set_add(redact_set_t *set, const char *name, const char *value)
{
    if (value == NULL || strlen(value) < REDACT_MIN_VALUE || set->count >= REDACT_MAX)
        return;
    set->name[set->count] = name;
    set->value[set->count] = value;
    set->count++;
}

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int upper_digit(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The length of the run of characters from `extra` or alnum at s. */
static size_t run(const char *s, size_t n, const char *extra)
{
    size_t i = 0;
    while (i < n && (alnum(s[i]) || (extra && s[i] != '\0' && strchr(extra, s[i]))))
        i++;
    return i;
}

/* A credential starting at s[i] (after a non-word character): its length,
 * and how many of its first characters to keep as a hint. 0 when none. */
static size_t credential(const char *s, size_t n, size_t *keep)
{
    /* GitHub: ghp_ gho_ ghu_ ghs_ ghr_ + 36 or more; fine-grained github_pat_ */
    if (n > 4 && s[0] == 'g' && s[1] == 'h' && strchr("pousr", s[2]) && s[2] != '\0' && s[3] == '_') {
        size_t r = run(s + 4, n - 4, NULL);
        if (r >= 36)
            return *keep = 4, 4 + r;
    }
    if (n > 11 && memcmp(s, "github_pat_", 11) == 0) {
        size_t r = run(s + 11, n - 11, "_");
        if (r >= 22)
            return *keep = 11, 11 + r;
    }
    /* OpenAI, Anthropic (sk-ant-...) and the many that copied the shape */
    if (n > 3 && memcmp(s, "sk-", 3) == 0) {
        size_t r = run(s + 3, n - 3, "-_");
        if (r >= 20)
            return *keep = 3, 3 + r;
    }
    /* AWS access key ids */
    if (n >= 20 && (memcmp(s, "AKIA", 4) == 0 || memcmp(s, "ASIA", 4) == 0)) {
        size_t r = 0;
        while (4 + r < n && upper_digit(s[4 + r]))
            r++;
        if (r == 16)
            return *keep = 4, 20;
    }
    /* Slack */
    if (n > 5 && memcmp(s, "xox", 3) == 0 && strchr("abprs", s[3]) && s[3] != '\0' && s[4] == '-') {
        size_t r = run(s + 5, n - 5, "-");
        if (r >= 10)
            return *keep = 5, 5 + r;
    }
    return 0;
}

static const char *find_str(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle));
}

void redact_patterns(strbuf_t *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* a PEM private key, armour to armour (or to the end: a cut one is still a key) */
        if (n - i >= 11 && memcmp(s + i, "-----BEGIN ", 11) == 0) {
            const char *eol = memchr(s + i, '\n', n - i);
            size_t hl = eol ? (size_t)(eol - (s + i)) : n - i;
            if (find_str(s + i, hl, "PRIVATE KEY-----") != NULL) {
                const char *end = find_str(s + i, n - i, "-----END ");
                const char *close = end ? find_str(end, n - (size_t)(end - s), "KEY-----") : NULL;
                i = close ? (size_t)(close - s) + 8 : n;
                strbuf_append(out, "[private key redacted]");
                continue;
            }
        }
        size_t keep = 0, len = (i == 0 || !alnum(s[i - 1])) ? credential(s + i, n - i, &keep) : 0;
        if (len > 0 && (i + len == n || !alnum(s[i + len]))) {
            strbuf_appendn(out, s + i, keep);
            strbuf_append(out, "[redacted]");
            i += len;
            continue;
        }
        strbuf_appendn(out, s + i, 1);
        i++;
    }
}

const char *redact_find(const char *s, size_t n, const redact_set_t *set)
{
    for (size_t k = 0; s != NULL && k < set->count; k++)
        if (memmem(s, n, set->value[k], strlen(set->value[k])) != NULL)
            return set->name[k];
    return NULL;
}

char *redact_values(const char *text, const redact_set_t *set)
{
    if (text == NULL)
        return NULL;
    strbuf_t out = STRBUF_INIT;
    size_t n = strlen(text), i = 0;
    while (i < n) {
        size_t k = 0;
        for (; k < set->count; k++) {
            size_t vl = strlen(set->value[k]);
            if (vl <= n - i && memcmp(text + i, set->value[k], vl) == 0)
                break;
        }
        if (k < set->count) {
            strbuf_appendf(&out, "[%s redacted]", set->name[k] ? set->name[k] : "secret");
            i += strlen(set->value[k]);
        } else {
            strbuf_appendn(&out, text + i, 1);
            i++;
        }
    }
    char *r = strbuf_detach(&out, NULL);
    return r ? r : strdup("");
}
