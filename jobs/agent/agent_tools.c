/* agent_tools — see agent_tools.h. */
#include "agent_tools.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 32
#define SEARCH_MAX_FILES 20000
#define LINE_SHOWN_MAX 300

/* ---- confinement ---- */

/* The next component of *p (advanced past it), or NULL at the end. */
static const char *next_component(const char **p, size_t *len)
{
    for (;;) {
        while (**p == '/')
            (*p)++;
        if (**p == '\0')
            return NULL;
        const char *start = *p;
        while (**p != '\0' && **p != '/')
            (*p)++;
        *len = (size_t)(*p - start);
        if (*len == 1 && start[0] == '.')
            continue;
        return start;
    }
}

/* What the tools create belongs to whoever owns the directory it is made in:
 * the job's own sandbox user when it has one (sandbox_user.h), so that the
 * agent's `run` commands and the repository's tests, which run as that user,
 * can change and extend what the tools wrote. Best effort: without the right
 * to chown (patchbay not root) everything is patchbay's anyway. */
static void own_like_parent(int parent_fd, int fd)
{
    struct stat dir, st;
    if (fstat(parent_fd, &dir) == 0 && fstat(fd, &st) == 0 && (st.st_uid != dir.st_uid || st.st_gid != dir.st_gid)) {
        if (fchown(fd, dir.st_uid, dir.st_gid) != 0) {
            /* not ours to give: patchbay is not root */
        }
    }
}

int agent_tool_open(int root_fd, const char *path, int flags, int create_dirs)
{
    if (path == NULL || path[0] == '/') {
        errno = EPERM;
        return -1;
    }
    /* the whole path first: a refusal never depends on what exists */
    size_t len = 0;
    const char *p = path;
    for (const char *c = next_component(&p, &len); c != NULL; c = next_component(&p, &len))
        if ((len == 2 && memcmp(c, "..", 2) == 0) || (len == 4 && memcmp(c, ".git", 4) == 0)) {
            errno = EPERM;
            return -1;
        }
    char comp[NAME_MAX + 1];
    p = path;
    const char *c = next_component(&p, &len);
    if (c == NULL)
        return openat(root_fd, ".", flags | O_CLOEXEC);
    int cur = root_fd;
    for (;;) {
        if (len > NAME_MAX || (len == 2 && memcmp(c, "..", 2) == 0) || (len == 4 && memcmp(c, ".git", 4) == 0)) {
            if (cur != root_fd)
                close(cur);
            errno = len > NAME_MAX ? ENAMETOOLONG : EPERM;
            return -1;
        }
        memcpy(comp, c, len);
        comp[len] = '\0';
        size_t clen = 0;
        const char *after = p;
        const char *nextc = next_component(&after, &clen);
        int fd;
        if (nextc == NULL) {
            /* O_NONBLOCK: a FIFO the agent made opens without waiting for a
             * writer, and the caller then refuses what is not a regular file */
            fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NONBLOCK), 0644);
            if (fd >= 0 && (flags & O_CREAT))
                own_like_parent(cur, fd);
        } else {
            fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT && create_dirs && mkdirat(cur, comp, 0755) == 0) {
                int made = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (made >= 0) {
                    own_like_parent(cur, made);
                    close(made);
                }
                fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
            if (fd < 0 && errno == ENOTDIR) {
                struct stat st;
                if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                    errno = ELOOP;
            }
        }
        int saved = errno;
        if (cur != root_fd)
            close(cur);
        if (fd < 0) {
            errno = saved;
            return -1;
        }
        if (nextc == NULL)
            return fd;
        cur = fd;
        p = after;
        c = nextc;
        len = clen;
    }
}

static const char *open_error(int e)
{
    switch (e) {
    case EPERM: return "refused: the path must stay inside the repository (no '..', no absolute path, not .git)";
    case ELOOP: return "refused: the path goes through a symbolic link, which the tools do not follow";
    case ENOENT: return "no such file or directory";
    case ENOTDIR: return "a part of the path is not a directory";
    case EISDIR: return "it is a directory";
    case ENAMETOOLONG: return "a name in the path is too long";
    default: return strerror(e);
    }
}

static int refuse(strbuf_t *a, const char *tool, const char *path, const char *why)
{
    strbuf_appendf(a, "%s %s: %s", tool, path ? path : "(no path)", why);
    return -1;
}

static const char *arg_str(const json_t *args, const char *name)
{
    return json_string_value(json_object_get(args, name));
}

/* Reads a whole regular file (at most AGENT_TOOL_FILE_MAX_BYTES); NULL with a reason. */
static char *slurp_fd(int fd, size_t *len, const char **why)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        return NULL;
    }
    if (st.st_size > AGENT_TOOL_FILE_MAX_BYTES) {
        *why = "the file is over 2 MiB";
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        *why = "out of memory";
        return NULL;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

/* A file the model named, read whole; NULL after the refusal was written to a. */
static char *read_named(strbuf_t *a, int root, const char *tool, const char *path, size_t *len)
{
    int fd = agent_tool_open(root, path, O_RDONLY, 0);
    if (fd < 0) {
        refuse(a, tool, path, open_error(errno));
        return NULL;
    }
    const char *why = NULL;
    char *text = slurp_fd(fd, len, &why);
    close(fd);
    if (text == NULL)
        refuse(a, tool, path, why);
    return text;
}

static int is_binary(const char *s, size_t len)
{
    return memchr(s, '\0', len < 8192 ? len : 8192) != NULL;
}

static int write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- walking the tree (list_files, search) ---- */

typedef struct {
    strbuf_t *out;
    size_t count, limit;
    int truncated;
    regex_t *re;    /* search: the pattern */
    size_t files;   /* search: files scanned */
} walk_t;

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void search_file(walk_t *w, int fd, const char *rel)
{
    size_t len = 0;
    const char *why = NULL;
    char *text = slurp_fd(fd, &len, &why);
    if (text == NULL || is_binary(text, len)) {
        free(text);
        return;
    }
    w->files++;
    size_t line = 1;
    for (char *s = text; s < text + len && !w->truncated; line++) {
        char *nl = memchr(s, '\n', (size_t)(text + len - s));
        char *end = nl ? nl : text + len;
        char saved = *end;
        *end = '\0';
        if (regexec(w->re, s, 0, NULL, 0) == 0) {
            if (w->count >= w->limit || w->out->len > AGENT_TOOL_OUTPUT_MAX_BYTES) {
                w->truncated = 1;
            } else {
                size_t n = (size_t)(end - s);
                strbuf_appendf(w->out, "%s:%zu: %.*s%s\n", rel, line, (int)(n > LINE_SHOWN_MAX ? LINE_SHOWN_MAX : n), s,
                               n > LINE_SHOWN_MAX ? "..." : "");
                w->count++;
            }
        }
        *end = saved;
        s = end + 1;
    }
    free(text);
}

static void walk(walk_t *w, int dir_fd, const char *rel, int depth)
{
    if (depth > MAX_DEPTH || w->truncated)
        return;
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, ".git") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof(*names));
            if (grown == NULL)
                break;
            names = grown;
        }
        if ((names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        struct stat st;
        if (w->truncated || fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (w->re == NULL) {
            if (w->count >= w->limit) {
                w->truncated = 1;
                continue;
            }
            strbuf_appendf(w->out, "%s%s\n", path, S_ISDIR(st.st_mode) ? "/" : S_ISLNK(st.st_mode) ? " (symlink)" : "");
            w->count++;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), names[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                walk(w, sub, path, depth + 1);
                close(sub);
            }
        } else if (w->re != NULL && S_ISREG(st.st_mode) && w->files < SEARCH_MAX_FILES) {
            int f = openat(dirfd(d), names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
            if (f >= 0) {
                search_file(w, f, path);
                close(f);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
}

/* The directory a walk starts from, and its name relative to the root ("" for the root). */
static int open_start(int root, const char *path, char *rel, size_t rel_len)
{
    const char *p = path ? path : "";
    size_t len = 0;
    strbuf_t r;
    strbuf_init_fixed(&r, rel, rel_len);
    for (const char *c = next_component(&p, &len); c != NULL; c = next_component(&p, &len))
        strbuf_appendf(&r, "%s%.*s", r.len ? "/" : "", (int)len, c);
    return agent_tool_open(root, path ? path : ".", O_PATH | O_DIRECTORY, 0);
}

/* ---- the tools ---- */

static int tool_list(strbuf_t *a, int root, const json_t *args)
{
    const char *path = arg_str(args, "path");
    char rel[4096];
    int fd = open_start(root, path, rel, sizeof(rel));
    if (fd < 0)
        return refuse(a, "list_files", path ? path : ".", open_error(errno));
    walk_t w = {.out = a, .limit = AGENT_TOOL_LIST_MAX};
    walk(&w, fd, rel, 0);
    close(fd);
    if (w.count == 0)
        strbuf_append(a, "(empty directory)\n");
    if (w.truncated)
        strbuf_appendf(a, "... (listing cut at %zu entries: list a subdirectory)\n", w.count);
    return 0;
}

static int tool_read(strbuf_t *a, int root, const json_t *args)
{
    const char *path = arg_str(args, "path");
    if (path == NULL)
        return refuse(a, "read_file", NULL, "the argument `path` is required");
    size_t len = 0;
    char *text = read_named(a, root, "read_file", path, &len);
    if (text == NULL)
        return -1;
    if (is_binary(text, len)) {
        free(text);
        strbuf_appendf(a, "%s is a binary file of %zu bytes", path, len);
        return 0;
    }
    json_int_t first = json_integer_value(json_object_get(args, "start_line"));
    json_int_t last = json_integer_value(json_object_get(args, "end_line"));
    if (first < 1)
        first = 1;
    if (last < first)
        last = first + AGENT_TOOL_READ_LINES - 1;
    size_t line = 1, shown_last = 0;
    int cut = 0;
    for (char *s = text; s < text + len; line++) {
        char *nl = memchr(s, '\n', (size_t)(text + len - s));
        char *end = nl ? nl : text + len;
        if ((json_int_t)line >= first && (json_int_t)line <= last) {
            if (a->len > AGENT_TOOL_OUTPUT_MAX_BYTES) {
                cut = 1;
                break;
            }
            strbuf_appendf(a, "%zu\t%.*s\n", line, (int)(end - s), s);
            shown_last = line;
        }
        s = end + 1;
    }
    size_t total = line - 1;
    free(text);
    if (shown_last == 0)
        strbuf_appendf(a, "(%s has %zu lines; nothing in %lld-%lld)\n", path, total, (long long)first, (long long)last);
    else
        strbuf_appendf(a, "(lines %lld-%zu of %zu%s)\n", (long long)first, shown_last, total,
                       cut ? "; cut to fit: ask for a smaller range" : "");
    return 0;
}

static int tool_search(strbuf_t *a, int root, const json_t *args)
{
    const char *pattern = arg_str(args, "pattern"), *path = arg_str(args, "path");
    if (pattern == NULL || pattern[0] == '\0')
        return refuse(a, "search", path ? path : ".", "the argument `pattern` (an extended regular expression) is required");
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
    if (rc != 0) {
        char msg[160];
        regerror(rc, &re, msg, sizeof(msg));
        strbuf_appendf(a, "search: the pattern is not a valid extended regular expression: %s", msg);
        return -1;
    }
    char rel[4096];
    int fd = open_start(root, path, rel, sizeof(rel));
    if (fd < 0) {
        regfree(&re);
        return refuse(a, "search", path ? path : ".", open_error(errno));
    }
    walk_t w = {.out = a, .limit = AGENT_TOOL_SEARCH_MAX, .re = &re};
    walk(&w, fd, rel, 0);
    close(fd);
    regfree(&re);
    if (w.count == 0)
        strbuf_appendf(a, "no match in %zu files\n", w.files);
    if (w.truncated)
        strbuf_appendf(a, "... (cut at %zu matches: narrow the pattern or the path)\n", w.count);
    return 0;
}

static int write_file_at(strbuf_t *a, int root, const char *tool, const char *path, const char *text, size_t len)
{
    int fd = agent_tool_open(root, path, O_WRONLY | O_CREAT | O_TRUNC, 1);
    if (fd < 0)
        return refuse(a, tool, path, open_error(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return refuse(a, tool, path, "not a regular file");
    }
    int rc = write_all(fd, text, len);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    return rc == 0 ? 0 : refuse(a, tool, path, strerror(saved));
}

static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n + (len > 0 && s[len - 1] != '\n');
}

static int tool_write(strbuf_t *a, int root, const json_t *args)
{
    const char *path = arg_str(args, "path");
    const json_t *content = json_object_get(args, "content");
    if (path == NULL || !json_is_string(content))
        return refuse(a, "write_file", path, "the arguments `path` and `content` (a string) are required");
    size_t len = json_string_length(content);
    if (len > AGENT_TOOL_FILE_MAX_BYTES)
        return refuse(a, "write_file", path, "the content is over 2 MiB");
    if (write_file_at(a, root, "write_file", path, json_string_value(content), len) != 0)
        return -1;
    strbuf_appendf(a, "wrote %s: %zu lines, %zu bytes", path, count_lines(json_string_value(content), len), len);
    return 0;
}

static int tool_edit(strbuf_t *a, int root, const json_t *args)
{
    const char *path = arg_str(args, "path");
    const json_t *jold = json_object_get(args, "old"), *jnew = json_object_get(args, "new");
    if (path == NULL || !json_is_string(jold) || !json_is_string(jnew))
        return refuse(a, "edit_file", path, "the arguments `path`, `old` and `new` (strings) are required");
    const char *old = json_string_value(jold), *new_ = json_string_value(jnew);
    size_t olen = json_string_length(jold), nlen = json_string_length(jnew);
    if (olen == 0)
        return refuse(a, "edit_file", path, "`old` is empty: use write_file to create a file");
    size_t len = 0;
    char *text = read_named(a, root, "edit_file", path, &len);
    if (text == NULL)
        return -1;
    const char *at = memmem(text, len, old, olen);
    size_t count = 0;
    for (const char *s = at; s != NULL && count < 2; s = memmem(s + 1, len - (size_t)(s + 1 - text), old, olen))
        count++;
    if (count != 1) {
        free(text);
        return refuse(a, "edit_file", path,
                      count == 0 ? "`old` does not occur in the file (it must match exactly, whitespace included)"
                                 : "`old` occurs more than once: include more lines around it so it matches once");
    }
    if (len - olen + nlen > AGENT_TOOL_FILE_MAX_BYTES) {
        free(text);
        return refuse(a, "edit_file", path, "the file would be over 2 MiB");
    }
    strbuf_t out = STRBUF_INIT;
    size_t pre = (size_t)(at - text);
    strbuf_appendn(&out, text, pre);
    strbuf_appendn(&out, new_, nlen);
    strbuf_appendn(&out, at + olen, len - pre - olen);
    size_t line = 1;
    for (size_t i = 0; i < pre; i++)
        line += text[i] == '\n';
    free(text);
    int rc = write_file_at(a, root, "edit_file", path, out.data ? out.data : "", out.len);
    strbuf_free(&out);
    if (rc != 0)
        return -1;
    strbuf_appendf(a, "edited %s at line %zu: %zu lines replaced by %zu", path, line, count_lines(old, olen),
                   count_lines(new_, nlen));
    return 0;
}

int agent_tool_call(strbuf_t *answer, const char *root, const char *name, const json_t *args)
{
    static const struct {
        const char *name;
        int (*fn)(strbuf_t *, int, const json_t *);
    } tools[] = {{"list_files", tool_list}, {"read_file", tool_read},   {"search", tool_search},
                 {"write_file", tool_write}, {"edit_file", tool_edit}};
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        if (strcmp(name, tools[i].name) != 0)
            continue;
        int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            strbuf_appendf(answer, "%s: the work tree is gone: %s", name, strerror(errno));
            return -1;
        }
        int rc = tools[i].fn(answer, fd, json_is_object(args) ? args : NULL);
        close(fd);
        return rc;
    }
    strbuf_appendf(answer, "there is no tool named %s", name);
    return -2;
}
