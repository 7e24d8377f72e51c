/*
 * mention — finds "@<handle>" in a GitHub comment the way a reader would, and
 * splits what follows into a command and an instruction.
 *
 * A mention counts only when it is written to patchbay: word-bounded on both
 * sides (not part of an e-mail address, a longer handle such as
 * "@patchbay-dev", or a team "@patchbay/core"), matched case-insensitively,
 * outside inline code spans (backtick runs of equal length), outside fenced
 * code blocks (``` or ~~~, up to three spaces of indent, closed by a fence of
 * the same character at least as long), outside ">" quoted lines (a quoted
 * reply repeats someone else's mention), and outside HTML comments
 * ("<!-- ... -->", invisible on GitHub). The first mention that counts wins.
 *
 * The finer rules, where a reader's eye and CommonMark part ways:
 *  - Before the '@': start of text, whitespace or punctuation. A letter, digit
 *    (of any script), '_', '-', '.', '/', '@', '`' or '\' joins it to
 *    something else: an address, a path, code, or an escape ("\@patchbay")
 *    written to keep it from firing.
 *  - After the handle: anything but a letter or digit (of any script), '_',
 *    '-', '/', '@', or dots followed by a word ("@patchbay.com").
 *  - Quoting is by line: a line typed right under a quote, which CommonMark
 *    folds into the quote, counts as the writer's own.
 *  - Lines indented by four spaces or more are read as text, not as code.
 *  - A comment that starts a line runs to its "-->" wherever that is; one
 *    inside a paragraph must close within it. A comment that never closes
 *    hides the rest of the text.
 *  - Runs of more than 80 backticks never open a code span (as on GitHub).
 *
 * After it, the first word decides the command: "help", "stop", "review"
 * and "ask" (case-insensitive, followed by the end, whitespace or
 * punctuation, but not by '-' or a word: "reviewer" and "stop-gap" are not
 * commands) are commands, and their instruction is what follows the word;
 * anything else is a fix request whose instruction is the rest of the
 * comment after the mention, with surrounding whitespace trimmed (it may be
 * empty: "@patchbay" alone asks to fix the issue as written). "fix" is a
 * fix request said in words: its instruction keeps the word ("fix the
 * test"), and `worded` tells the router the person chose the kind, so no
 * question rule may turn it into an ask. Punctuation glued to the handle or
 * the command word (one or more of ":,;.!?*~)]") is dropped first:
 * "@patchbay: review", "**@patchbay**, fix the test".
 *
 * mention_is_question is the rule that makes a fix request that reads as a
 * question an ask, stated so that a reader can predict it (the README says
 * the same): the instruction's first line is a question when it does not
 * contain the word "fix" and either ends with '?' or starts with one of
 * what, why, how, where, which, who, when, can, could, does, is, are,
 * should, explain.
 *
 * Linear time and no reads outside text[0..len) on any input; the text need
 * not be NUL-terminated.
 *
 * Memory: mention_find allocates nothing; the instruction is a span into the
 * caller's text. Reentrant; any thread.
 */
#ifndef PATCHBAY_MENTION_H
#define PATCHBAY_MENTION_H

#include <stddef.h>

typedef enum {
    MENTION_NONE = 0, /* no mention that counts */
    MENTION_FIX,      /* a request; the instruction says what */
    MENTION_HELP,
    MENTION_STOP,
    MENTION_REVIEW,
    MENTION_ASK,      /* a question; the instruction is the question */
} mention_command_t;

typedef struct {
    mention_command_t command;
    size_t at;               /* offset of the '@' of the mention that counted; 0 for MENTION_NONE */
    const char *instruction; /* MENTION_FIX: the text after the mention, trimmed; else the text after the command
                                word, trimmed. Points into text (at its end when empty); "" for MENTION_NONE */
    size_t instruction_len;
    int worded;              /* the command was said in words ("fix", "ask", "help", ...), not inferred */
} mention_t;

/* Looks for "@handle" (handle without the '@', e.g. "patchbay") in
 * text[0..len). Returns the command (also in out->command); MENTION_NONE for
 * an empty handle or text. */
mention_command_t mention_find(const char *text, size_t len, const char *handle, mention_t *out);

/* "fix", "help", "stop", "review", "ask" or "none". */
const char *mention_command_name(mention_command_t c);

/* Whether an instruction (text[0..len), need not be NUL-terminated) reads as
 * a question by the rule above. Linear; reads nothing outside the text. */
int mention_is_question(const char *text, size_t len);

#endif
