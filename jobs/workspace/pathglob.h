// pathglob — does a repository path match a glob like `.github/workflows/**`?
// (Line comments here: the globs' "/*" would end a block comment.)
//
// Used for the per-repository `forbidden_paths`: files an agent must not
// change. The rules are gitignore's, which is what people who write such
// lists already know:
//   - `*`, `?` and `[...]` match within one path segment (fnmatch(3) with
//     FNM_PATHNAME); they do match a leading dot (`*` matches `.env`), because
//     a forbidden list that misses dotfiles fails open;
//   - a segment `**` matches zero or more whole segments (one or more at the
//     end of a pattern, as in gitignore): `**` alone matches everything,
//     `docs/**` everything under docs/, `a/**/b` any depth in between;
//   - a pattern with no `/` (other than a trailing one) matches at any depth
//     (`*.pem` is `**/*.pem`);
//   - a leading `/` anchors the pattern at the repository root and is
//     otherwise ignored;
//   - a trailing `/` means a directory: `vendor/` matches everything under
//     any `vendor` directory.
// Paths are repository-relative with `/` separators, as git writes them.
//
// Matching is bounded: a pattern whose matching would take more than
// PATHGLOB_MAX_STEPS segment comparisons counts as a match, so a hostile or
// careless pattern can slow nothing down and can only forbid more.
//
// Stateless; any thread.
#ifndef PATCHBAY_PATHGLOB_H
#define PATCHBAY_PATHGLOB_H

#define PATHGLOB_MAX_STEPS 100000
#define PATHGLOB_MAX_SEGMENTS 256 /* deeper paths or patterns count as a match */

/* 1 when `path` matches `pattern`, else 0. */
int pathglob_match(const char *pattern, const char *path);

#endif
