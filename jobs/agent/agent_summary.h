/*
 * agent_summary — what a person reads of an agent's run: its summary as
 * text (no terminal escapes, no control characters), and a pull request
 * title that is about the change.
 *
 * A command agent's summary is the file it wrote ($PATCHBAY_SUMMARY_FILE),
 * or else the tail of its output. Real CLIs fill that output with more than
 * their answer: Codex opens with a version banner and a header block and
 * ends with "tokens used" and its answer; opencode colours every block;
 * Gemini CLI and Qwen Code print warnings first. The rules below come from
 * those outputs (tests/unit/data/agent_output/ holds them as captured):
 *
 *   - agent_summary_clean makes terminal output text: what a terminal would
 *     show, without its colours or cursor moves;
 *   - agent_summary_from_output keeps, from an output, the answer at its
 *     end: the last run of lines before anything that is the CLI talking
 *     (a log or warning line, a banner, a separator, a transcript marker such
 *     as Codex's "tokens used", a tool echo, a line made only of escapes);
 *   - agent_summary_title picks the first line of a summary that reads as a
 *     title, skipping the same kinds of lines and code; none qualifying
 *     means the caller names the change after the issue instead.
 *
 * Pure functions of their input; any thread. Returned strings are the
 * caller's (free).
 */
#ifndef PATCHBAY_AGENT_SUMMARY_H
#define PATCHBAY_AGENT_SUMMARY_H

#include <stddef.h>

/* A pull request title's most bytes (GitHub allows 256; a list shows ~70). */
#define AGENT_TITLE_MAX_BYTES 100

/* Terminal output as the text a terminal shows: ANSI escape sequences (CSI,
 * OSC with its hyperlinks' text kept, DCS and the other strings, two- and
 * three-byte escapes) and C1 controls removed; a carriage return starts its
 * line over, as on a terminal (CRLF is a newline); backspaces and the other
 * control characters dropped, tabs and newlines kept. NULL only when out of
 * memory. */
char *agent_summary_clean(const char *text, size_t len);

/* The summary of a run that wrote no summary file: the answer at the end of
 * its output tail, cleaned (see above). `cut` says the tail begins in the
 * middle of the output, so its first line is partial and dropped. "" when
 * the output ends with no answer (Codex with an empty last message, a
 * transcript cut off); NULL only when out of memory. */
char *agent_summary_from_output(const char *tail, size_t len, int cut);

/* The first line of `summary` that reads as a title: not blank, not a
 * banner, log, warning or transcript line, not a separator, a tool echo, a
 * diff or code (indented, or in a fenced block), not an introduction ending
 * with ':'; markdown heading, list and emphasis marks taken off. Cut at a
 * word boundary (and always on a UTF-8 boundary) to AGENT_TITLE_MAX_BYTES.
 * 0 with the title in out; -1 when no line qualifies (out is ""). */
int agent_summary_title(char *out, size_t len, const char *summary);

#endif
