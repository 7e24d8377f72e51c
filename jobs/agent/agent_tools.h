/*
 * agent_tools — the file tools of patchbay's built-in agent, confined to the
 * job's work tree: list_files, read_file, search, write_file, edit_file.
 *
 * A path from the model is relative to the work tree. It is walked one
 * component at a time from a descriptor of the work tree with O_NOFOLLOW:
 * "..", absolute paths and every symbolic link are refused, so nothing the
 * model names (or a symlink committed to the repository) can reach a file
 * outside, and nothing is resolved twice (no check-then-use race). .git is
 * invisible: never listed, searched, read or written.
 *
 * Each tool answers with text for the model, success or not: a failure is a
 * sentence the model can act on ("no such file: src/x.c"), never a crash of
 * the job. Answers are bounded (AGENT_TOOL_OUTPUT_MAX_BYTES) and say when
 * they were cut.
 *
 * Memory: the answer goes to the caller's strbuf. Reentrant; blocking (disk).
 */
#ifndef PATCHBAY_AGENT_TOOLS_H
#define PATCHBAY_AGENT_TOOLS_H

#include "app/common/strbuf.h"

#include <jansson.h>
#include <stddef.h>

#define AGENT_TOOL_OUTPUT_MAX_BYTES (24 * 1024)
#define AGENT_TOOL_FILE_MAX_BYTES (2 * 1024 * 1024) /* largest file read, searched or written */
#define AGENT_TOOL_LIST_MAX 2000                   /* entries listed */
#define AGENT_TOOL_SEARCH_MAX 200                  /* matching lines reported */
#define AGENT_TOOL_READ_LINES 400                  /* lines read when no range is given */

/* Runs the named tool with its JSON arguments on the work tree at root.
 * 0 when the tool did its job, -1 when it refused or failed (the answer
 * says why); -2 for a tool it does not know. */
int agent_tool_call(strbuf_t *answer, const char *root, const char *name, const json_t *args);

/* Opens `path` (relative to the work tree `root_fd`) as agent_tools
 * confines it: flags as for openat, plus O_NOFOLLOW on every component;
 * with `create_dirs`, missing directories on the way are made (0755).
 * Returns a descriptor, or -1 with errno (EPERM for a refused path, ELOOP
 * for a symbolic link). */
int agent_tool_open(int root_fd, const char *path, int flags, int create_dirs);

#endif
