/* pathglob — see pathglob.h. */
#include "pathglob.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *segs[PATHGLOB_MAX_SEGMENTS];
    int n;
} segs_t;

/* Splits `s` (modified in place) at '/', dropping empty segments. -1 when too deep. */
static int split(segs_t *out, char *s)
{
    out->n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
        if (out->n == PATHGLOB_MAX_SEGMENTS)
            return -1;
        out->segs[out->n++] = tok;
    }
    return 0;
}

/* 1 match, 0 no match, -1 out of steps. */
static int match_segs(const segs_t *pat, int pi, const segs_t *path, int si, long *steps)
{
    while (pi < pat->n) {
        if (++*steps > PATHGLOB_MAX_STEPS)
            return -1;
        if (strcmp(pat->segs[pi], "**") == 0) {
            while (pi < pat->n && strcmp(pat->segs[pi], "**") == 0)
                pi++;
            if (pi == pat->n)
                return si < path->n; // a trailing `**`: everything below, not the directory itself
            for (int k = si; k < path->n; k++) {
                int r = match_segs(pat, pi, path, k, steps);
                if (r != 0)
                    return r;
            }
            return 0;
        }
        if (si == path->n || fnmatch(pat->segs[pi], path->segs[si], 0) != 0)
            return 0;
        pi++;
        si++;
    }
    return si == path->n;
}

int pathglob_match(const char *pattern, const char *path)
{
    int result = 0;
    char *pbuf = NULL, *sbuf = NULL;
    segs_t *pat = NULL, *segs = NULL;
    size_t plen = strlen(pattern);

    /* gitignore's shape rules, applied by rewriting the pattern:
     * no inner '/' -> any depth; trailing '/' -> everything below. */
    const char *body = pattern;
    if (body[0] == '/')
        body++;
    size_t blen = strlen(body);
    int dir_only = blen > 0 && body[blen - 1] == '/';
    size_t core = dir_only ? blen - 1 : blen;
    int anchored = pattern[0] == '/' || memchr(body, '/', core) != NULL;
    if (core == 0)
        return 0; /* an empty pattern names nothing */

    pbuf = malloc(plen + 8);
    sbuf = strdup(path);
    pat = malloc(sizeof(*pat));
    segs = malloc(sizeof(*segs));
    if (pbuf == NULL || sbuf == NULL || pat == NULL || segs == NULL) {
        result = 1; /* fail closed */
        goto done;
    }
    snprintf(pbuf, plen + 8, "%s%.*s%s", anchored ? "" : "**/", (int)core, body, dir_only ? "/**" : "");
    if (split(pat, pbuf) != 0 || split(segs, sbuf) != 0) {
        result = 1;
        goto done;
    }
    if (pat->n == 0)
        goto done; /* only slashes: nothing */
    long steps = 0;
    int r = match_segs(pat, 0, segs, 0, &steps);
    result = r != 0; /* -1 (out of steps) counts as a match */

done:
    free(pbuf);
    free(sbuf);
    free(pat);
    free(segs);
    return result;
}
