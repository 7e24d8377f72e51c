/*
 * test_diff — the diff parser on real-world diffs (made with git: renames
 * with and without changes, deletions, new files, mode changes, binary files
 * both ways git shows them, "\ No newline at end of file", CRLF files, hunk
 * headers with function context, quoted and spaced names, content lines that
 * look like headers), GitHub's files JSON (patch present, omitted, binary),
 * huge hunks, limits, and malformed input. Each case is compared as a
 * canonical dump of everything parsed, so a wrong number anywhere fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/common/strbuf.h"
#include "jobs/review/diff.h"

/* Canonical dump: one "F" line per file, "H" per hunk, one line per diff
 * line: kind, old number (or .), new number (or .), text, then "$" for
 * "\ No newline at end of file" and "^M" for a CRLF line. */
static char *dump(const diff_t *d)
{
    strbuf_t b = STRBUF_INIT;
    strbuf_appendf(&b, "files=%zu dropped=%zu garbage=%zu\n", d->nfiles, d->files_dropped, d->garbage);
    for (size_t i = 0; i < d->nfiles; i++) {
        const diff_file_t *f = &d->files[i];
        strbuf_appendf(&b, "F %s %s %s", f->path, diff_status_name(f->status), diff_patch_name(f->patch));
        if (f->previous_path)
            strbuf_appendf(&b, " from=%s", f->previous_path);
        if (f->old_mode || f->new_mode)
            strbuf_appendf(&b, " mode=%o>%o", f->old_mode, f->new_mode);
        strbuf_appendf(&b, " +%u -%u\n", f->additions, f->deletions);
        for (size_t k = 0; k < f->nhunks; k++) {
            const diff_hunk_t *h = &f->hunks[k];
            strbuf_appendf(&b, "H -%u,%u +%u,%u [%.*s]\n", h->old_start, h->old_count, h->new_start, h->new_count,
                           (int)h->section_len, h->section);
            for (size_t j = h->first; j < h->first + h->count; j++) {
                const diff_line_t *l = &f->lines[j];
                assert_int_equal(l->hunk, k);
                strbuf_append(&b, l->kind == DIFF_LINE_ADDED ? "+" : l->kind == DIFF_LINE_REMOVED ? "-" : "=");
                if (l->old_line)
                    strbuf_appendf(&b, " %u", l->old_line);
                else
                    strbuf_append(&b, " .");
                if (l->new_line)
                    strbuf_appendf(&b, " %u ", l->new_line);
                else
                    strbuf_append(&b, " . ");
                strbuf_appendn(&b, l->text, l->text_len);
                if (l->no_newline)
                    strbuf_append(&b, "$");
                if (l->crlf)
                    strbuf_append(&b, "^M");
                strbuf_append(&b, "\n");
            }
        }
    }
    return strbuf_detach(&b, NULL);
}

typedef struct {
    const char *name;
    const char *text; /* unified diff, or the files JSON when json is set */
    int json;
    const char *want; /* dump(); NULL: print it (to write a new case) */
} diff_case_t;

static const diff_case_t cases[] = {
    {"git: new, binary, crlf, deleted, function context, renames, no newline, mode, header-like content",
    "diff --git a/added.txt b/added.txt\n"
    "new file mode 100644\n"
    "index 0000000..5786b13\n"
    "--- /dev/null\n"
    "+++ b/added.txt\n"
    "@@ -0,0 +1,2 @@\n"
    "+brand\n"
    "+new\n"
    "diff --git a/blob.bin b/blob.bin\n"
    "index 8352675..1592e5c 100644\n"
    "Binary files a/blob.bin and b/blob.bin differ\n"
    "diff --git a/crlf.txt b/crlf.txt\n"
    "index e1587ff..103b2f6 100644\n"
    "--- a/crlf.txt\n"
    "+++ b/crlf.txt\n"
    "@@ -1,3 +1,3 @@\n"
    " one\r\n"
    "-two\r\n"
    "+TWO\r\n"
    " three\r\n"
    "diff --git a/gone.txt b/gone.txt\n"
    "deleted file mode 100644\n"
    "index b9d4267..0000000\n"
    "--- a/gone.txt\n"
    "+++ /dev/null\n"
    "@@ -1,2 +0,0 @@\n"
    "-bye\n"
    "-bye\n"
    "diff --git a/main.c b/main.c\n"
    "index 0566114..f1700c5 100644\n"
    "--- a/main.c\n"
    "+++ b/main.c\n"
    "@@ -3,6 +3,7 @@ int a;\n"
    " int main(void)\n"
    " {\n"
    "     int x = 1;\n"
    "-    int y = 2;\n"
    "+    int y = 3;\n"
    "+    int z = 4;\n"
    "     return x + y;\n"
    " }\n"
    "diff --git a/moved.txt b/moved2.txt\n"
    "similarity index 100%\n"
    "rename from moved.txt\n"
    "rename to moved2.txt\n"
    "diff --git a/old_name.txt b/new_name.txt\n"
    "similarity index 94%\n"
    "rename from old_name.txt\n"
    "rename to new_name.txt\n"
    "index c4352f8..be8344c 100644\n"
    "--- a/old_name.txt\n"
    "+++ b/new_name.txt\n"
    "@@ -7,7 +7,7 @@ line 6\n"
    " line 7\n"
    " line 8\n"
    " line 9\n"
    "-line 10\n"
    "+line ten\n"
    " line 11\n"
    " line 12\n"
    " line 13\n"
    "diff --git a/nonl.txt b/nonl.txt\n"
    "index 0a207c0..817f660 100644\n"
    "--- a/nonl.txt\n"
    "+++ b/nonl.txt\n"
    "@@ -1,2 +1,2 @@\n"
    " a\n"
    "-b\n"
    "\\ No newline at end of file\n"
    "+c\n"
    "\\ No newline at end of file\n"
    "diff --git a/script.sh b/script.sh\n"
    "old mode 100644\n"
    "new mode 100755\n"
    "diff --git a/tricky.sql b/tricky.sql\n"
    "index 8db8ab3..d0f4dbe 100644\n"
    "--- a/tricky.sql\n"
    "+++ b/tricky.sql\n"
    "@@ -1,3 +1,3 @@\n"
    "--- sql comment\n"
    "-++ counter\n"
    "+--- sql comment\n"
    "++++ counter\n"
    " plain\n"    , 0, 
     "files=10 dropped=0 garbage=0\n"
     "F added.txt added ok mode=0>100644 +2 -0\n"
     "H -0,0 +1,2 []\n"
     "+ . 1 brand\n"
     "+ . 2 new\n"
     "F blob.bin modified binary +0 -0\n"
     "F crlf.txt modified ok +1 -1\n"
     "H -1,3 +1,3 []\n"
     "= 1 1 one^M\n"
     "- 2 . two^M\n"
     "+ . 2 TWO^M\n"
     "= 3 3 three^M\n"
     "F gone.txt removed ok mode=100644>0 +0 -2\n"
     "H -1,2 +0,0 []\n"
     "- 1 . bye\n"
     "- 2 . bye\n"
     "F main.c modified ok +2 -1\n"
     "H -3,6 +3,7 [int a;]\n"
     "= 3 3 int main(void)\n"
     "= 4 4 {\n"
     "= 5 5     int x = 1;\n"
     "- 6 .     int y = 2;\n"
     "+ . 6     int y = 3;\n"
     "+ . 7     int z = 4;\n"
     "= 7 8     return x + y;\n"
     "= 8 9 }\n"
     "F moved2.txt renamed none from=moved.txt +0 -0\n"
     "F new_name.txt renamed ok from=old_name.txt +1 -1\n"
     "H -7,7 +7,7 [line 6]\n"
     "= 7 7 line 7\n"
     "= 8 8 line 8\n"
     "= 9 9 line 9\n"
     "- 10 . line 10\n"
     "+ . 10 line ten\n"
     "= 11 11 line 11\n"
     "= 12 12 line 12\n"
     "= 13 13 line 13\n"
     "F nonl.txt modified ok +1 -1\n"
     "H -1,2 +1,2 []\n"
     "= 1 1 a\n"
     "- 2 . b$\n"
     "+ . 2 c$\n"
     "F script.sh modified none mode=100644>100755 +0 -0\n"
     "F tricky.sql modified ok +2 -2\n"
     "H -1,3 +1,3 []\n"
     "- 1 . -- sql comment\n"
     "- 2 . ++ counter\n"
     "+ . 1 --- sql comment\n"
     "+ . 2 +++ counter\n"
     "= 3 3 plain\n"},
    {"git: GIT binary patch, quoted and octal names, two hunks, a name with a space and a tab",
    "diff --git a/blob.bin b/blob.bin\n"
    "index 1592e5c60f1a460928916dc5681fee1a9bd10868..00ffac900d2cff292237a83e04efac71be67fa29 100644\n"
    "GIT binary patch\n"
    "literal 2\n"
    "JcmZQz1pojC00sa6\n"
    "\n"
    "literal 3\n"
    "KcmZQzWCj2L2ml2D\n"
    "\n"
    "diff --git \"a/caf\\303\\251.txt\" \"b/caf\\303\\251.txt\"\n"
    "index b680253..67d0c15 100644\n"
    "--- \"a/caf\\303\\251.txt\"\n"
    "+++ \"b/caf\\303\\251.txt\"\n"
    "@@ -1 +1 @@\n"
    "-z\n"
    "+z2\n"
    "diff --git a/multi.txt b/multi.txt\n"
    "index 1c99002..515da32 100644\n"
    "--- a/multi.txt\n"
    "+++ b/multi.txt\n"
    "@@ -2,7 +2,7 @@\n"
    " 2\n"
    " 3\n"
    " 4\n"
    "-5\n"
    "+five\n"
    " 6\n"
    " 7\n"
    " 8\n"
    "@@ -32,7 +32,7 @@\n"
    " 32\n"
    " 33\n"
    " 34\n"
    "-35\n"
    "+thirty-five\n"
    " 36\n"
    " 37\n"
    " 38\n"
    "diff --git a/sp ace.txt b/sp ace.txt\n"
    "index 587be6b..d735d34 100644\n"
    "--- a/sp ace.txt\t\n"
    "+++ b/sp ace.txt\t\n"
    "@@ -1 +1 @@\n"
    "-x\n"
    "+x2\n"
    "diff --git \"a/tab\\there.txt\" \"b/tab\\there.txt\"\n"
    "index 975fbec..1a78173 100644\n"
    "--- \"a/tab\\there.txt\"\n"
    "+++ \"b/tab\\there.txt\"\n"
    "@@ -1 +1 @@\n"
    "-y\n"
    "+y2\n"    , 0, 
     "files=5 dropped=0 garbage=0\n"
     "F blob.bin modified binary +0 -0\n"
     "F caf\303\251.txt modified ok +1 -1\n"
     "H -1,1 +1,1 []\n"
     "- 1 . z\n"
     "+ . 1 z2\n"
     "F multi.txt modified ok +2 -2\n"
     "H -2,7 +2,7 []\n"
     "= 2 2 2\n"
     "= 3 3 3\n"
     "= 4 4 4\n"
     "- 5 . 5\n"
     "+ . 5 five\n"
     "= 6 6 6\n"
     "= 7 7 7\n"
     "= 8 8 8\n"
     "H -32,7 +32,7 []\n"
     "= 32 32 32\n"
     "= 33 33 33\n"
     "= 34 34 34\n"
     "- 35 . 35\n"
     "+ . 35 thirty-five\n"
     "= 36 36 36\n"
     "= 37 37 37\n"
     "= 38 38 38\n"
     "F sp ace.txt modified ok +1 -1\n"
     "H -1,1 +1,1 []\n"
     "- 1 . x\n"
     "+ . 1 x2\n"
     "F tab\there.txt modified ok +1 -1\n"
     "H -1,1 +1,1 []\n"
     "- 1 . y\n"
     "+ . 1 y2\n"},
    {"plain diff -u with timestamps and a/ b/ prefixes",
     "--- a/src/util.c\t2024-01-01 10:00:00.000000000 +0000\n"
     "+++ b/src/util.c\t2024-01-02 10:00:00.000000000 +0000\n"
     "@@ -10,3 +10,5 @@ static int helper(int x)\n"
     " {\n"
     "-    return x;\n"
     "+    if (x < 0)\n"
     "+        return 0;\n"
     "+    return x;\n"
     " }\n"
     "--- /dev/null\t1970-01-01 00:00:00.000000000 +0000\n"
     "+++ new.txt\t2024-01-02 10:00:00.000000000 +0000\n"
     "@@ -0,0 +1 @@\n"
     "+hello\n",
     0, 
     "files=2 dropped=0 garbage=0\n"
     "F src/util.c modified ok +3 -1\n"
     "H -10,3 +10,5 [static int helper(int x)]\n"
     "= 10 10 {\n"
     "- 11 .     return x;\n"
     "+ . 11     if (x < 0)\n"
     "+ . 12         return 0;\n"
     "+ . 13     return x;\n"
     "= 12 14 }\n"
     "F new.txt added ok +1 -0\n"
     "H -0,0 +1,1 []\n"
     "+ . 1 hello\n"},
    {"the whole diff in CRLF line endings",
     "diff --git a/w.txt b/w.txt\r\n"
     "index 1..2 100644\r\n"
     "--- a/w.txt\r\n"
     "+++ b/w.txt\r\n"
     "@@ -1,2 +1,2 @@ ctx\r\n"
     " a\r\n"
     "-b\r\n"
     "+c\r\n",
     0, 
     "files=1 dropped=0 garbage=0\n"
     "F w.txt modified ok +1 -1\n"
     "H -1,2 +1,2 [ctx]\n"
     "= 1 1 a^M\n"
     "- 2 . b^M\n"
     "+ . 2 c^M\n"},
    {"an empty line inside a hunk is a context line whose space was stripped",
     "diff --git a/e.txt b/e.txt\n"
     "--- a/e.txt\n"
     "+++ b/e.txt\n"
     "@@ -1,3 +1,3 @@\n"
     " a\n"
     "\n"
     "-b\n"
     "+c\n",
     0, 
     "files=1 dropped=0 garbage=0\n"
     "F e.txt modified ok +1 -1\n"
     "H -1,3 +1,3 []\n"
     "= 1 1 a\n"
     "= 2 2 \n"
     "- 3 . b\n"
     "+ . 3 c\n"},
    {"no input at all", "", 0, 
     "files=0 dropped=0 garbage=0\n"},
    {"text that is no diff", "hello\nworld\n@@ -1 +1 @@\n+x\n", 0, 
     "files=0 dropped=0 garbage=0\n"},
    {"format-patch mail around the diff",
     "From 123 Mon Sep 17 00:00:00 2001\n"
     "Subject: [PATCH] x\n"
     "\n"
     "---\n"
     " a.txt | 2 +-\n"
     "\n"
     "diff --git a/a.txt b/a.txt\n"
     "--- a/a.txt\n"
     "+++ b/a.txt\n"
     "@@ -1 +1 @@\n"
     "-a\n"
     "+b\n"
     "-- \n"
     "2.39.2\n",
     0, 
     "files=1 dropped=0 garbage=0\n"
     "F a.txt modified ok +1 -1\n"
     "H -1,1 +1,1 []\n"
     "- 1 . a\n"
     "+ . 1 b\n"},
    /* malformed: each file loses its hunks, the next file still parses */
    {"hunk header without its closing @@",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -1,2 +1,2\n a\n-b\n+c\n"
     "diff --git a/ok.txt b/ok.txt\n--- a/ok.txt\n+++ b/ok.txt\n@@ -1 +1 @@\n-x\n+y\n",
     0, 
     "files=2 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"
     "F ok.txt modified ok +1 -1\n"
     "H -1,1 +1,1 []\n"
     "- 1 . x\n"
     "+ . 1 y\n"},
    {"hunk header with letters and a number too large",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -a,2 +1,2 @@\n a\n"
     "diff --git a/n.txt b/n.txt\n--- a/n.txt\n+++ b/n.txt\n@@ -1,99999999999 +1 @@\n a\n"
     "diff --git a/o.txt b/o.txt\n--- a/o.txt\n+++ b/o.txt\n@@ -100000000,5 +1 @@\n a\n",
     0, 
     "files=3 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"
     "F n.txt modified malformed +0 -0\n"
     "F o.txt modified malformed +0 -0\n"},
    {"counts that run past the next file header",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -1,5 +1,5 @@\n a\n-b\n+c\n"
     "diff --git a/ok.txt b/ok.txt\n--- a/ok.txt\n+++ b/ok.txt\n@@ -1 +1 @@\n-x\n+y\n",
     0, 
     "files=2 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"
     "F ok.txt modified ok +1 -1\n"
     "H -1,1 +1,1 []\n"
     "- 1 . x\n"
     "+ . 1 y\n"},
    {"counts that run past the end of the input",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -1,3 +1,3 @@\n a\n-b\n", 0, 
     "files=1 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"},
    {"a line that is no diff line inside a hunk",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -1,2 +1,2 @@\n a\n*b\n", 0, 
     "files=1 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"},
    {"more removed lines than the header counts",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -1,1 +1,2 @@\n-a\n-b\n+c\n+d\n", 0, 
     "files=1 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"},
    {"overlapping and out-of-order hunks",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -5,2 +5,2 @@\n a\n b\n@@ -6,1 +6,1 @@\n c\n"
     "diff --git a/n.txt b/n.txt\n--- a/n.txt\n+++ b/n.txt\n@@ -9 +9 @@\n a\n@@ -1 +1 @@\n b\n",
     0, 
     "files=2 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"
     "F n.txt modified malformed +0 -0\n"},
    {"an empty hunk and a line 0 that holds lines",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -0,0 +0,0 @@\n"
     "diff --git a/n.txt b/n.txt\n--- a/n.txt\n+++ b/n.txt\n@@ -0,1 +1 @@\n a\n",
     0, 
     "files=2 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"
     "F n.txt modified malformed +0 -0\n"},
    {"a no-newline marker before any line",
     "diff --git a/m.txt b/m.txt\n--- a/m.txt\n+++ b/m.txt\n@@ -1 +1 @@\n\\ No newline at end of file\n-a\n+b\n",
     0, 
     "files=1 dropped=0 garbage=0\n"
     "F m.txt modified malformed +0 -0\n"},
    {"a git header with nothing after it, and one with no name",
     "diff --git \ndiff --git a/x b/x\n", 0, 
     "files=1 dropped=0 garbage=1\n"
     "F x modified none +0 -0\n"},
    /* GitHub's files JSON */
    {"files JSON: patch, pure rename, binary, omitted, removed, garbage",
     "[{\"filename\":\"src/a.c\",\"status\":\"modified\",\"additions\":1,\"deletions\":1,\"changes\":2,"
     "\"patch\":\"@@ -1,3 +1,3 @@ void f(void)\\n a\\n-b\\n+B\\n c\"},"
     "{\"filename\":\"docs/new.md\",\"status\":\"renamed\",\"previous_filename\":\"docs/old.md\",\"additions\":0,"
     "\"deletions\":0,\"changes\":0},"
     "{\"filename\":\"logo.png\",\"status\":\"modified\",\"additions\":0,\"deletions\":0,\"changes\":0},"
     "{\"filename\":\"big.json\",\"status\":\"modified\",\"additions\":90000,\"deletions\":3,\"changes\":90003},"
     "{\"filename\":\"old.txt\",\"status\":\"removed\",\"additions\":0,\"deletions\":2,\"changes\":2,"
     "\"patch\":\"@@ -1,2 +0,0 @@\\n-x\\n-y\\n\\\\ No newline at end of file\"},"
     "{\"filename\":\"r.c\",\"status\":\"renamed\",\"previous_filename\":\"q.c\",\"additions\":1,\"deletions\":0,"
     "\"changes\":1,\"patch\":\"@@ -1 +1,2 @@\\n a\\n+b\\n\"},"
     "{\"status\":\"added\"}, 42, {\"filename\":\"\"}]",
     1, 
     "files=6 dropped=0 garbage=3\n"
     "F src/a.c modified ok +1 -1\n"
     "H -1,3 +1,3 [void f(void)]\n"
     "= 1 1 a\n"
     "- 2 . b\n"
     "+ . 2 B\n"
     "= 3 3 c\n"
     "F docs/new.md renamed none from=docs/old.md +0 -0\n"
     "F logo.png modified none +0 -0\n"
     "F big.json modified omitted +90000 -3\n"
     "F old.txt removed ok +0 -2\n"
     "H -1,2 +0,0 []\n"
     "- 1 . x\n"
     "- 2 . y$\n"
     "F r.c renamed ok from=q.c +1 -0\n"
     "H -1,1 +1,2 []\n"
     "= 1 1 a\n"
     "+ . 2 b\n"},
    {"files JSON: a patch with text after its hunks, one that is no patch, CRLF",
     "[{\"filename\":\"t.c\",\"status\":\"modified\",\"patch\":\"@@ -1 +1 @@\\n-a\\n+b\\ngarbage\"},"
     "{\"filename\":\"u.c\",\"status\":\"modified\",\"patch\":\"not a patch\"},"
     "{\"filename\":\"w.c\",\"status\":\"added\",\"patch\":\"@@ -0,0 +1,2 @@\\r\\n+a\\r\\n+b\\r\\n\"}]",
     1, 
     "files=3 dropped=0 garbage=0\n"
     "F t.c modified malformed +0 -0\n"
     "F u.c modified malformed +0 -0\n"
     "F w.c added ok +2 -0\n"
     "H -0,0 +1,2 []\n"
     "+ . 1 a^M\n"
     "+ . 2 b^M\n"},
};

static diff_t *parse_case(const diff_case_t *c)
{
    diff_t *d = NULL;
    int rc = c->json ? diff_parse_files_text(&d, c->text, strlen(c->text), NULL)
                     : diff_parse_unified(&d, c->text, strlen(c->text), NULL);
    assert_int_equal(rc, DIFF_OK);
    assert_non_null(d);
    return d;
}

static void test_table(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const diff_case_t *c = &cases[i];
        diff_t *d = parse_case(c);
        char *got = dump(d);
        if (c->want == NULL) {
            printf("=== %s\n%s", c->name, got);
            failed++;
        } else if (strcmp(got, c->want) != 0) {
            printf("=== %s\n--- want\n%s--- got\n%s", c->name, c->want, got);
            failed++;
        }
        free(got);
        diff_free(d);
    }
    assert_int_equal(failed, 0);
}

/* The parser must not depend on a terminating NUL: every case again from
 * an exact-size heap copy (ASan sees a read past its end), and every prefix
 * of each case must parse without error. */
static void test_exact_buffers_and_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].json)
            continue;
        size_t n = strlen(cases[i].text);
        for (size_t cut = 0; cut <= n; cut++) {
            char *copy = malloc(cut ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, cases[i].text, cut);
            diff_t *d = NULL;
            assert_int_equal(diff_parse_unified(&d, copy, cut, NULL), DIFF_OK);
            for (size_t f = 0; f < d->nfiles; f++)
                for (size_t l = 0; l < d->files[f].nlines; l++) {
                    const diff_line_t *ln = &d->files[f].lines[l];
                    assert_true(ln->text >= d->files[f].patch_text);
                    assert_true(ln->text + ln->text_len <= d->files[f].patch_text + d->files[f].patch_len);
                }
            diff_free(d);
            free(copy);
        }
    }
}

static void test_huge_hunk(void **state)
{
    (void)state;
    enum { N = 50000 };
    strbuf_t b = STRBUF_INIT;
    strbuf_appendf(&b, "diff --git a/big.txt b/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/big.txt\n"
                       "@@ -0,0 +1,%d @@\n", N);
    for (int i = 1; i <= N; i++)
        strbuf_appendf(&b, "+line %d\n", i);
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, b.data, b.len, NULL), DIFF_OK);
    assert_int_equal(d->nfiles, 1);
    const diff_file_t *f = &d->files[0];
    assert_int_equal(f->patch, DIFF_PATCH_OK);
    assert_int_equal(f->status, DIFF_FILE_ADDED);
    assert_int_equal(f->nlines, N);
    assert_int_equal(f->additions, N);
    assert_int_equal(f->lines[N - 1].new_line, N);
    assert_int_equal(diff_line_find(f, DIFF_SIDE_RIGHT, N), N - 1);
    assert_int_equal(diff_line_find(f, DIFF_SIDE_RIGHT, N + 1), -1);
    assert_int_equal(diff_line_find(f, DIFF_SIDE_LEFT, 1), -1);
    diff_free(d);

    /* over the per-file limit: the file stays, its lines go */
    diff_limits_t lim = DIFF_LIMITS_INIT;
    lim.max_file_lines = 1000;
    assert_int_equal(diff_parse_unified(&d, b.data, b.len, &lim), DIFF_OK);
    assert_int_equal(d->nfiles, 1);
    assert_int_equal(d->files[0].patch, DIFF_PATCH_TOO_LARGE);
    assert_int_equal(d->files[0].nlines, 0);
    assert_string_equal(d->files[0].path, "big.txt");
    diff_free(d);

    /* over the byte limit: refused */
    lim = (diff_limits_t)DIFF_LIMITS_INIT;
    lim.max_bytes = b.len - 1;
    d = (diff_t *)&lim;
    assert_int_equal(diff_parse_unified(&d, b.data, b.len, &lim), DIFF_ERR_TOO_LARGE);
    assert_null(d);
    strbuf_free(&b);
}

static void test_max_files(void **state)
{
    (void)state;
    strbuf_t b = STRBUF_INIT;
    for (int i = 0; i < 10; i++)
        strbuf_appendf(&b, "diff --git a/f%d b/f%d\n--- a/f%d\n+++ b/f%d\n@@ -1 +1 @@\n-a\n+b\n", i, i, i, i);
    diff_limits_t lim = DIFF_LIMITS_INIT;
    lim.max_files = 4;
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, b.data, b.len, &lim), DIFF_OK);
    assert_int_equal(d->nfiles, 4);
    assert_int_equal(d->files_dropped, 6);
    assert_string_equal(d->files[3].path, "f3");
    diff_free(d);
    strbuf_free(&b);

    json_t *arr = json_array();
    for (int i = 0; i < 10; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "filename", "x", "status", "modified"));
    assert_int_equal(diff_parse_files_json(&d, arr, &lim), DIFF_OK);
    assert_int_equal(d->nfiles, 4);
    assert_int_equal(d->files_dropped, 6);
    diff_free(d);
    json_decref(arr);
}

static void test_bad_json(void **state)
{
    (void)state;
    diff_t *d = NULL;
    assert_int_equal(diff_parse_files_text(&d, "{\"filename\":\"a\"}", 16, NULL), DIFF_ERR_FORMAT);
    assert_int_equal(diff_parse_files_text(&d, "[{\"filename\":", 13, NULL), DIFF_ERR_FORMAT);
    assert_null(d);
    assert_int_equal(diff_parse_unified(&d, NULL, 0, NULL), DIFF_OK);
    assert_int_equal(d->nfiles, 0);
    diff_free(d);
}

/* Which lines take a comment: GitHub's rule, on both sides. */
static void test_line_find(void **state)
{
    (void)state;
    const char *text = "diff --git a/m b/m\n--- a/m\n+++ b/m\n"
                       "@@ -2,4 +2,5 @@\n 2\n-3\n+3a\n+3b\n 4\n 5\n"
                       "@@ -20,3 +21,2 @@\n 20\n-21\n 22\n"
                       "@@ -30,0 +31,2 @@\n+x\n+y\n";
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, text, strlen(text), NULL), DIFF_OK);
    const diff_file_t *f = diff_file_find(d, "m");
    assert_non_null(f);
    assert_int_equal(f->nhunks, 3);
    static const struct {
        diff_side_t side;
        uint32_t line;
        long idx;
    } want[] = {
        {DIFF_SIDE_RIGHT, 1, -1}, {DIFF_SIDE_RIGHT, 2, 0},   {DIFF_SIDE_RIGHT, 3, 2},   {DIFF_SIDE_RIGHT, 4, 3},
        {DIFF_SIDE_RIGHT, 6, 5},  {DIFF_SIDE_RIGHT, 7, -1},  {DIFF_SIDE_RIGHT, 21, 6},  {DIFF_SIDE_RIGHT, 22, 8},
        {DIFF_SIDE_RIGHT, 23, -1}, {DIFF_SIDE_RIGHT, 31, 9}, {DIFF_SIDE_RIGHT, 32, 10}, {DIFF_SIDE_RIGHT, 33, -1},
        {DIFF_SIDE_LEFT, 2, 0},   {DIFF_SIDE_LEFT, 3, 1},    {DIFF_SIDE_LEFT, 5, 5},    {DIFF_SIDE_LEFT, 6, -1},
        {DIFF_SIDE_LEFT, 21, 7},  {DIFF_SIDE_LEFT, 22, 8},   {DIFF_SIDE_LEFT, 30, -1},  {DIFF_SIDE_LEFT, 31, -1},
        {DIFF_SIDE_LEFT, 0, -1},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        long got = diff_line_find(f, want[i].side, want[i].line);
        if (got != want[i].idx)
            fail_msg("%s line %u: want %ld got %ld", diff_side_name(want[i].side), want[i].line, want[i].idx, got);
    }
    uint32_t first, last;
    assert_int_equal(diff_hunk_range(&f->hunks[2], DIFF_SIDE_LEFT, &first, &last), -1);
    assert_int_equal(diff_hunk_range(&f->hunks[2], DIFF_SIDE_RIGHT, &first, &last), 0);
    assert_int_equal(first, 31);
    assert_int_equal(last, 32);
    assert_null(diff_file_find(d, "nope"));
    diff_free(d);
}

static void test_file_find_by_previous_name(void **state)
{
    (void)state;
    const char *text = "diff --git a/old.c b/new.c\nsimilarity index 90%\nrename from old.c\nrename to new.c\n"
                       "--- a/old.c\n+++ b/new.c\n@@ -1 +1 @@\n-a\n+b\n";
    diff_t *d = NULL;
    assert_int_equal(diff_parse_unified(&d, text, strlen(text), NULL), DIFF_OK);
    assert_ptr_equal(diff_file_find(d, "old.c"), &d->files[0]);
    assert_ptr_equal(diff_file_find(d, "new.c"), &d->files[0]);
    diff_free(d);
}

/* What diff_file_write_patch writes parses back to the same lines, and a
 * line budget cuts it. */
static void test_write_patch(void **state)
{
    (void)state;
    diff_t *d = parse_case(&cases[0]);
    for (size_t i = 0; i < d->nfiles; i++) {
        const diff_file_t *f = &d->files[i];
        if (f->patch != DIFF_PATCH_OK)
            continue;
        strbuf_t b = STRBUF_INIT;
        strbuf_appendf(&b, "diff --git a/%s b/%s\n--- a/%s\n+++ b/%s\n", f->path, f->path, f->path, f->path);
        diff_file_write_patch(f, SIZE_MAX, &b);
        diff_t *again = NULL;
        assert_int_equal(diff_parse_unified(&again, b.data, b.len, NULL), DIFF_OK);
        assert_int_equal(again->nfiles, 1);
        assert_int_equal(again->files[0].nlines, f->nlines);
        for (size_t l = 0; l < f->nlines; l++) {
            const diff_line_t *x = &f->lines[l], *y = &again->files[0].lines[l];
            assert_int_equal(x->kind, y->kind);
            assert_int_equal(x->old_line, y->old_line);
            assert_int_equal(x->new_line, y->new_line);
            assert_int_equal(x->no_newline, y->no_newline);
            assert_int_equal(x->crlf, y->crlf);
            assert_int_equal(x->text_len, y->text_len);
            assert_memory_equal(x->text, y->text, x->text_len);
        }
        diff_free(again);
        strbuf_free(&b);
    }
    const diff_file_t *m = diff_file_find(d, "main.c");
    strbuf_t b = STRBUF_INIT;
    diff_file_write_patch(m, 2, &b);
    assert_string_equal(b.data, "@@ -3,6 +3,7 @@ int a;\n int main(void)\n {\n");
    strbuf_free(&b);
    diff_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_exact_buffers_and_prefixes),
        cmocka_unit_test(test_huge_hunk),
        cmocka_unit_test(test_max_files),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_line_find),
        cmocka_unit_test(test_file_find_by_previous_name),
        cmocka_unit_test(test_write_patch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
