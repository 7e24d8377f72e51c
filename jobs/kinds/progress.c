/* progress — see progress.h. */
#include "progress.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void progress_init(progress_t *p, const char *job_id, const char *title, const char *dashboard_url, int64_t now_ms)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->job_id, sizeof(p->job_id), "%s", job_id);
    p->title = title;
    p->dashboard_url = dashboard_url;
    p->started_ms = now_ms;
}

void progress_free(progress_t *p)
{
    free(p->outcome_md);
    p->outcome_md = NULL;
}

size_t progress_add(progress_t *p, const char *label)
{
    assert(p->nsteps < PROGRESS_MAX_STEPS);
    p->steps[p->nsteps].label = label;
    return p->nsteps++;
}

void progress_start(progress_t *p, size_t step, int64_t now_ms)
{
    assert(step < p->nsteps);
    p->steps[step].state = PROGRESS_RUNNING;
    p->steps[step].started_ms = now_ms;
}

void progress_finish(progress_t *p, size_t step, progress_state_t state, int64_t now_ms)
{
    assert(step < p->nsteps);
    p->steps[step].state = state;
    p->steps[step].finished_ms = now_ms;
}

void progress_detail(progress_t *p, size_t step, const char *text)
{
    assert(step < p->nsteps);
    char *d = p->steps[step].detail;
    size_t n = 0;
    for (const char *s = text; *s && n + 4 < PROGRESS_DETAIL_BYTES; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
        else if (c < 0x20 || c == 0x7f)
            continue;
        /* HTML and links are not ours to render, and an @ would ping someone */
        if (c == '<' || c == '>' || c == '`')
            c = '\'';
        d[n++] = (char)c;
        if (c == '@') /* a zero-width space after it: shown, but not a mention */
            d[n++] = (char)0xe2, d[n++] = (char)0x80, d[n++] = (char)0x8b;
    }
    /* never leave a cut UTF-8 sequence at the end */
    while (n > 0 && ((unsigned char)d[n - 1] & 0xc0) == 0x80) {
        size_t k = n - 1;
        while (k > 0 && ((unsigned char)d[k] & 0xc0) == 0x80)
            k--;
        unsigned char lead = (unsigned char)d[k];
        size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (n - k == want)
            break;
        n = k;
    }
    d[n] = '\0';
}

void progress_outcome(progress_t *p, progress_outcome_t outcome, const char *markdown)
{
    free(p->outcome_md);
    p->outcome = outcome;
    p->outcome_md = markdown ? strdup(markdown) : NULL;
}

void progress_format_duration(char *out, size_t out_len, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 10000)
        snprintf(out, out_len, "%.1f s", (double)ms / 1000.0);
    else if (s < 3600)
        snprintf(out, out_len, "%lldm %02llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, out_len, "%lldh %02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
}

static const char *state_mark(progress_state_t s)
{
    switch (s) {
    case PROGRESS_DONE: return "- [x] ";
    case PROGRESS_RUNNING: return "- [ ] ⏳ ";
    case PROGRESS_FAILED: return "- [ ] ❌ ";
    case PROGRESS_SKIPPED: return "- [x] ~~";
    case PROGRESS_PENDING: break;
    }
    return "- [ ] ";
}

void progress_render(strbuf_t *out, const progress_t *p, int64_t now_ms)
{
    static const char *const heading[] = {
        [PROGRESS_WORKING] = "🛠️ **patchbay is working on this**",
        [PROGRESS_SUCCEEDED] = "✅ **patchbay finished**",
        [PROGRESS_NO_CHANGE] = "🤷 **patchbay made no change**",
        [PROGRESS_ANSWERED] = "💬 **patchbay answered; no change was made**",
        [PROGRESS_FAILED_OUTCOME] = "❌ **patchbay could not finish**",
        [PROGRESS_CANCELLED] = "⏹️ **patchbay stopped**",
    };
    strbuf_appendf(out, "%s%s -->\n", PROGRESS_MARKER_PREFIX, p->job_id);
    strbuf_append(out, heading[p->outcome]);
    if (p->title != NULL) {
        strbuf_append(out, " · ");
        strbuf_append(out, p->title);
    }
    strbuf_append(out, "\n\n");
    for (size_t i = 0; i < p->nsteps; i++) {
        const progress_step_t *st = &p->steps[i];
        strbuf_append(out, state_mark(st->state));
        strbuf_append(out, st->label);
        if (st->state == PROGRESS_SKIPPED)
            strbuf_append(out, "~~");
        char d[32];
        if (st->state == PROGRESS_RUNNING) {
            progress_format_duration(d, sizeof(d), now_ms - st->started_ms);
            strbuf_appendf(out, " (%s so far)", d);
        } else if ((st->state == PROGRESS_DONE || st->state == PROGRESS_FAILED) && st->started_ms > 0) {
            progress_format_duration(d, sizeof(d), st->finished_ms - st->started_ms);
            strbuf_appendf(out, " (%s)", d);
        }
        if (st->detail[0] != '\0') {
            strbuf_append(out, ": ");
            strbuf_append(out, st->detail);
        }
        strbuf_append(out, "\n");
    }
    char elapsed[32];
    progress_format_duration(elapsed, sizeof(elapsed), now_ms - p->started_ms);
    strbuf_appendf(out, "\n%s %s · job %s", p->outcome == PROGRESS_WORKING ? "Elapsed" : "Took", elapsed, p->job_id);
    if (p->dashboard_url != NULL && p->dashboard_url[0] != '\0') {
        size_t n = strlen(p->dashboard_url);
        strbuf_appendf(out, " · [log](%.*s/jobs/%s)", (int)(p->dashboard_url[n - 1] == '/' ? n - 1 : n),
                       p->dashboard_url, p->job_id);
    }
    strbuf_append(out, "\n");
    if (p->outcome_md != NULL) {
        strbuf_append(out, "\n");
        strbuf_append(out, p->outcome_md);
        strbuf_append(out, "\n");
    }
}

int progress_marker_find(const char *body, char *job_id, size_t job_id_len)
{
    const char *m = body ? strstr(body, PROGRESS_MARKER_PREFIX) : NULL;
    if (m == NULL || job_id_len == 0)
        return -1;
    m += strlen(PROGRESS_MARKER_PREFIX);
    size_t n = 0;
    while (m[n] >= '0' && m[n] <= '9' && n + 1 < job_id_len)
        n++;
    if (n == 0 || strncmp(m + n, " -->", 4) != 0)
        return -1;
    memcpy(job_id, m, n);
    job_id[n] = '\0';
    return 0;
}
