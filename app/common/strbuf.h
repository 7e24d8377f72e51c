/*
 * strbuf — an append-only byte buffer, growable (heap) or fixed (caller's
 * memory, silently truncating and flagging it).
 *
 * Used to build log lines, HTTP answers, Redis arguments and JSON by hand where
 * jansson would be too slow (the webhook hot path) or too much.
 *
 * Memory: a growable buffer owns `data`; free it with strbuf_free or take it
 * with strbuf_detach. A fixed buffer never allocates. `data` is always
 * NUL-terminated once anything was appended (fixed buffers keep one byte for
 * it). An allocation failure is treated like a fixed buffer's overflow: the
 * buffer stops growing and `truncated` is set, so callers check once at the end.
 */
#ifndef PATCHBAY_STRBUF_H
#define PATCHBAY_STRBUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    unsigned fixed : 1;
    unsigned truncated : 1;
} strbuf_t;

#define STRBUF_INIT {NULL, 0, 0, 0, 0}

void strbuf_init_fixed(strbuf_t *b, char *mem, size_t cap);
void strbuf_free(strbuf_t *b);
/* Hands the bytes (NUL-terminated, never NULL) to the caller, who frees them. */
char *strbuf_detach(strbuf_t *b, size_t *len);

void strbuf_appendn(strbuf_t *b, const char *s, size_t n);
void strbuf_append(strbuf_t *b, const char *s);
void strbuf_appendf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* printf into a caller's fixed buffer (an error message, cut to fit); does
 * nothing when dst is NULL or len 0, so "no message wanted" is allowed. */
void strbuf_format(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A JSON string literal, quotes included; control characters escaped. */
void strbuf_append_json_string(strbuf_t *b, const char *s, size_t n);
/* Text for HTML, in an element or a quoted attribute: < > & " ' escaped. */
void strbuf_append_html(strbuf_t *b, const char *s);
/* Text with control characters shown, not obeyed, so a hostile value cannot
 * start a new log line, ring the bell or move a terminal's cursor: C0 and
 * DEL as \xNN, C1 (U+0080..U+009F) as \u00NN, and bytes that are not
 * well-formed UTF-8 as \xNN. Everything else is kept as it is. */
void strbuf_append_printable(strbuf_t *b, const char *s, size_t n);

#endif
