/*
 * ghmd — GitHub-flavoured markdown that patchbay posts from text it did not
 * write (an agent's summary or findings, a test's output, an error message).
 * What GitHub would act on is made inert, what a reader would not see is
 * removed, and nothing can break out of the code spans and fences we wrap
 * around it:
 *
 *   - anything shaped like a credential is replaced first (redact.h);
 *   - @mentions get a zero-width space after the '@' (outside code spans and
 *     fences), so the bot never pings anyone;
 *   - HTML comments are dropped (hidden text, or a fake patchbay marker);
 *   - ```suggestion fences become plain code blocks: only the review engine
 *     attaches suggestions, after checking the lines they replace.
 *
 * Used by every job kind that posts (fix, follow-up, review). Pure; any
 * thread; appends to the caller's buffer.
 */
#ifndef PATCHBAY_GHMD_H
#define PATCHBAY_GHMD_H

#include "app/common/strbuf.h"

#include <stddef.h>

/* Appends untrusted markdown made safe to post (see above). */
void ghmd_sanitize(strbuf_t *out, const char *text, size_t len);

/* Appends `s` as a code span that nothing inside can end early; in_table
 * also escapes '|' (GFM splits cells on it even inside code). Bytes that are
 * not text become U+FFFD. */
void ghmd_code_span(strbuf_t *out, const char *s, int in_table);

/* Appends a fenced code block holding `content` verbatim, in a fence longer
 * than any backtick run inside it; `info` follows the opening fence, and
 * every line starts with `prefix` ("> " inside a quote). */
void ghmd_fence(strbuf_t *out, const char *info, const char *content, const char *prefix);

#endif
