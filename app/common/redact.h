/*
 * redact — keeps credentials out of what patchbay posts on GitHub and pushes.
 *
 * An agent holds one secret of ours: its own API key (agent.env), which a
 * prompt injected through an issue could ask it to print or commit. So
 * patchbay knows the exact values it gave the agent (a redact_set_t): they
 * are replaced in everything the agent said before it is posted, and a
 * change that contains one is not pushed at all. On top, text the agent
 * wrote loses anything shaped like a well-known credential (GitHub tokens,
 * OpenAI/Anthropic-style "sk-" keys, AWS access key ids, Slack tokens, PEM
 * private keys), whoever's it is: ghmd_sanitize applies that to all agent
 * text it renders.
 *
 * Memory: a redact_set_t borrows its strings; results are the caller's.
 * Pure; any thread.
 */
#ifndef PATCHBAY_REDACT_H
#define PATCHBAY_REDACT_H

#include "strbuf.h"

#include <stddef.h>

#define REDACT_MAX 32
#define REDACT_MIN_VALUE 8 /* shorter values are too likely to occur by chance */

typedef struct {
    const char *name[REDACT_MAX];
    const char *value[REDACT_MAX];
    size_t count;
} redact_set_t;

/* Adds a secret (ignored when NULL, shorter than REDACT_MIN_VALUE, or the
 * set is full). */
void redact_set_add(redact_set_t *set, const char *name, const char *value);

/* Text with every credential-shaped run replaced ("ghs_[redacted]"). */
void redact_patterns(strbuf_t *out, const char *s, size_t n);

/* A new string: text with each value of the set replaced by "[NAME
 * redacted]". NULL only when text is NULL. */
char *redact_values(const char *text, const redact_set_t *set);

/* The name of the first value of the set found in s, or NULL. */
const char *redact_find(const char *s, size_t n, const redact_set_t *set);

#endif
