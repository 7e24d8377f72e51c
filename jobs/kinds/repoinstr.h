/*
 * repoinstr — a repository's own instructions for coding agents, for
 * patchbay's built-in agent (agent CLIs read theirs themselves: docs/agents.md
 * says which reads which). Which files:
 *
 *   AGENTS.md at the root and in any directory; where the repository has
 *   none, CLAUDE.md the same way; where it has neither,
 *   .github/copilot-instructions.md. For a file, the nearest one above it
 *   wins (a nested file takes precedence in its subtree, as the AGENTS.md
 *   convention has it).
 *
 * They are read from one commit, never a work tree: the commit the job works
 * on, and for a stranger's pull request its base, never its head (a fork
 * would otherwise write its own rules). All of them together are bounded to
 * REPOINSTR_MAX_BYTES, the root file first, each clipped with a note, and
 * fenced like issue text (prompt.h): data that may ask for a code style or a
 * test command and can never change patchbay's rules (secrets, forbidden
 * paths, budgets).
 *
 * The root file goes into the task (repoinstr_task); the nested ones to the
 * built-in agent (repoinstr_give), which shows each the first time the model
 * reads or writes a file it is the nearest for; repoinstr_used says which
 * were used, for the pull request.
 *
 * Memory: repoinstr_t owns its strings (repoinstr_free); the settings that
 * repoinstr_give fills point into it. Not thread-safe; one per job.
 */
#ifndef PATCHBAY_REPOINSTR_H
#define PATCHBAY_REPOINSTR_H

#include "app/common/strbuf.h"
#include "jobs/agent/agent.h"
#include "jobs/workspace/workspace.h"

#include <stddef.h>
#include <stdint.h>

#define REPOINSTR_MAX_BYTES (32 * 1024)
#define REPOINSTR_COPILOT_PATH ".github/copilot-instructions.md"

/* Where the files come from: a commit (repoinstr_load), or a test's table. */
typedef struct {
    /* The paths of regular files named one of names, shallower first;
     * malloc'd (the array and each path). 0 or -1. */
    int (*find)(void *arg, const char *const *names, size_t max, char ***paths, size_t *count);
    /* A regular file's first max bytes (malloc'd, NUL-terminated) and its
     * whole size. 0, or -1 when it is not one. */
    int (*read)(void *arg, const char *path, size_t max, char **text, size_t *len, size_t *size);
    void *arg;
} repoinstr_reader_t;

typedef struct {
    char *path;  /* "src/AGENTS.md" */
    char *dir;   /* "src/"; "" at the root */
    char *text;  /* as the model reads it: fenced, and the clipping said */
} repoinstr_file_t;

typedef struct {
    const char *family;        /* "AGENTS.md", "CLAUDE.md", REPOINSTR_COPILOT_PATH, or NULL: none */
    repoinstr_file_t root;     /* path NULL: no root file */
    repoinstr_file_t nested[AGENT_INSTRUCTIONS_MAX];
    size_t nnested;
    size_t left_out;           /* files past the byte budget or the count, not given */
    agent_instructions_t table[AGENT_INSTRUCTIONS_MAX];
} repoinstr_t;

#define REPOINSTR_INIT {0}

/* Finds and reads the instruction files through `r`. 0 (also when there are
 * none), or -1 with the reason in err (the repository could not be read). */
int repoinstr_read(repoinstr_t *ri, const repoinstr_reader_t *r, char *err, size_t err_len);

/* The same from commit `commit_hex` of the job's repository. */
int repoinstr_load(repoinstr_t *ri, const workspace_t *ws, const char *commit_hex, char *err, size_t err_len);

void repoinstr_free(repoinstr_t *ri);

/* The task's section: the root file, fenced, and a word on the nested ones.
 * Nothing when there are none. */
void repoinstr_task(strbuf_t *out, const repoinstr_t *ri);

/* Hands the nested files to the built-in agent's settings. */
void repoinstr_give(const repoinstr_t *ri, agent_settings_t *s);

/* "`AGENTS.md`, `src/AGENTS.md`": the root file and the nested ones the
 * agent was shown (agent_result_t.instructions_shown). Nothing when none. */
void repoinstr_used(strbuf_t *out, const repoinstr_t *ri, uint64_t shown);

#endif
