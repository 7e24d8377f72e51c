/*
 * repoconfig — see repoconfig.h. libyaml's document API: the file is small
 * (capped), so the whole tree is loaded and walked with one small table of
 * keys per mapping.
 */
#include "repoconfig.h"
#include "app/common/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

static void oom(void)
{
    fputs("patchbay: out of memory\n", stderr);
    abort();
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        oom();
    return p;
}

static char **list_new(const char *const *items)
{
    size_t n = 0;
    while (items != NULL && items[n] != NULL)
        n++;
    char **l = calloc(n + 1, sizeof(*l));
    if (l == NULL)
        oom();
    for (size_t i = 0; i < n; i++)
        l[i] = xstrdup(items[i]);
    return l;
}

static void list_free(char **l)
{
    for (size_t i = 0; l != NULL && l[i] != NULL; i++)
        free(l[i]);
    free(l);
}

static const char *const default_forbidden[] = {".github/workflows/**", NULL};

void repoconfig_defaults(repoconfig_t *c)
{
    memset(c, 0, sizeof(*c));
    c->setup = list_new(NULL);
    c->forbidden = list_new(default_forbidden);
    c->nforbidden = 1;
    c->branch_prefix = xstrdup("patchbay/");
    c->agent.test_rounds = -1;
    c->agent.network = -1;
}

void repoconfig_free(repoconfig_t *c)
{
    list_free(c->setup);
    list_free(c->forbidden);
    list_free(c->agent.command);
    free(c->test);
    free(c->branch_prefix);
    free(c->environment);
    free(c->agent.backend);
    free(c->agent.model);
    free(c->agent.base_url);
    memset(c, 0, sizeof(*c));
}

typedef struct {
    yaml_document_t *doc;
    char *err;
    size_t err_len;
    int failed;
} walk_t;

static int fail(walk_t *w, const yaml_node_t *n, const char *key, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(walk_t *w, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
    if (w->failed)
        return -1;
    w->failed = 1;
    int off = snprintf(w->err, w->err_len, "line %zu: key '%s': ", n ? n->start_mark.line + 1 : 0, key);
    va_list ap;
    va_start(ap, fmt);
    if (off >= 0 && (size_t)off < w->err_len)
        vsnprintf(w->err + off, w->err_len - (size_t)off, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_string(walk_t *w, const yaml_node_t *n, const char *key, char **out)
{
    const char *s = scalar(n);
    if (s == NULL || strlen(s) != n->data.scalar.length)
        return fail(w, n, key, "must be a text");
    free(*out);
    *out = s[0] ? xstrdup(s) : NULL;
    return 0;
}

static int get_bool(walk_t *w, const yaml_node_t *n, const char *key, int *out)
{
    const char *s = scalar(n);
    if (s != NULL && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0))
        return *out = 1, 0;
    if (s != NULL && (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcasecmp(s, "off") == 0))
        return *out = 0, 0;
    return fail(w, n, key, "must be true or false");
}

static int get_int(walk_t *w, const yaml_node_t *n, const char *key, int min, int max, int *out)
{
    const char *s = scalar(n);
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || v < min || v > max)
        return fail(w, n, key, "must be a whole number from %d to %d", min, max);
    *out = (int)v;
    return 0;
}

/* A list of texts; a single text is a list of one. */
static int get_list(walk_t *w, const yaml_node_t *n, const char *key, char ***out, size_t *count)
{
    const char *items[REPOCONFIG_MAX_ITEMS + 1];
    size_t k = 0;
    if (n->type == YAML_SCALAR_NODE) {
        items[k++] = scalar(n);
    } else if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *e = yaml_document_get_node(w->doc, *it);
            if (e == NULL || scalar(e) == NULL || strlen(scalar(e)) != e->data.scalar.length)
                return fail(w, e ? e : n, key, "must be a list of texts");
            if (k >= REPOCONFIG_MAX_ITEMS)
                return fail(w, n, key, "has more than %d items", REPOCONFIG_MAX_ITEMS);
            items[k++] = scalar(e);
        }
    } else {
        return fail(w, n, key, "must be a list of texts");
    }
    items[k] = NULL;
    list_free(*out);
    *out = list_new(items);
    if (count)
        *count = k;
    return 0;
}

typedef int (*key_fn)(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c);

typedef struct {
    const char *name;
    key_fn fn;
} repo_key_t;

static int walk_map(walk_t *w, const yaml_node_t *map, const char *where, const repo_key_t *keys, repoconfig_t *c);

static int k_setup(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_list(w, v, key, &c->setup, &c->nsetup);
}
static int k_test(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_string(w, v, key, &c->test);
}
static int k_forbidden(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_list(w, v, key, &c->forbidden, &c->nforbidden);
}
static int k_prefix(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    if (get_string(w, v, key, &c->branch_prefix) != 0)
        return -1;
    /* a branch name git and GitHub accept, ending in '/' or '-' */
    const char *p = c->branch_prefix;
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > 40 || strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_/.") != n ||
        p[0] == '/' || p[0] == '.' || p[0] == '-' || strstr(p, "..") || strstr(p, "//") ||
        (p[n - 1] != '/' && p[n - 1] != '-')) {
        free(c->branch_prefix);
        c->branch_prefix = xstrdup("patchbay/");
        return fail(w, v, key, "must be a branch prefix such as \"patchbay/\" (letters, digits, - _ . /, ending in / or -)");
    }
    return 0;
}
static int k_environment(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    if (get_string(w, v, key, &c->environment) != 0)
        return -1;
    /* a name of the operator's, or a registry image; never a path here */
    const char *e = c->environment;
    size_t n = e ? strlen(e) : 0;
    int name = n > 0 && n <= 64 && strspn(e, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
    int registry = n > 9 && strncmp(e, "docker://", 9) == 0 && strcspn(e, " \t") == n;
    if (!name && !registry) {
        free(c->environment);
        c->environment = NULL;
        return fail(w, v, key, "must name one of this installation's environments (like node20), never a path");
    }
    return 0;
}
static int k_draft(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_bool(w, v, key, &c->draft);
}
static int k_auto(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_bool(w, v, key, &c->review.auto_review);
}
static int k_drafts(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_bool(w, v, key, &c->review.drafts);
}
static int k_request_changes(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_bool(w, v, key, &c->review.request_changes);
}
static int k_synchronize(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_bool(w, v, key, &c->review.synchronize);
}
static int k_backend(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    if (get_string(w, v, key, &c->agent.backend) != 0)
        return -1;
    if (c->agent.backend != NULL && strcmp(c->agent.backend, "command") != 0 && strcmp(c->agent.backend, "openai") != 0)
        return fail(w, v, key, "must be command or openai");
    return 0;
}
static int k_command(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    /* "aider --yes" as one text means its words, as a shell would split them
     * without quotes; a list is taken word for word */
    if (v->type == YAML_SCALAR_NODE && scalar(v) != NULL) {
        char *copy = xstrdup(scalar(v)), *save = NULL;
        const char *words[REPOCONFIG_MAX_ITEMS + 1];
        size_t n = 0;
        for (char *t = strtok_r(copy, " \t", &save); t != NULL && n < REPOCONFIG_MAX_ITEMS; t = strtok_r(NULL, " \t", &save))
            words[n++] = t;
        words[n] = NULL;
        list_free(c->agent.command);
        c->agent.command = list_new(words);
        free(copy);
    } else if (get_list(w, v, key, &c->agent.command, NULL) != 0)
        return -1;
    if (c->agent.command[0] == NULL)
        return fail(w, v, key, "must not be empty");
    /* The repository picks among the programs the operator installed; a path
     * would run a file of the checkout (or of the host) with the operator's
     * model key in its environment. */
    if (strchr(c->agent.command[0], '/') != NULL) {
        list_free(c->agent.command);
        c->agent.command = NULL;
        return fail(w, v, key, "must start with the name of a program on the sandbox's PATH (like claude), not a path");
    }
    return 0;
}
static int k_timeout(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 1, 604800, &c->agent.timeout);
}
static int k_rounds(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 0, 10, &c->agent.test_rounds);
}
static int k_network(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_bool(w, v, key, &c->agent.network);
}
static int k_attempts(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 1, REPOCONFIG_ATTEMPTS_MAX, &c->agent.attempts);
}
static int k_model(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_string(w, v, key, &c->agent.model);
}
static int k_base_url(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    if (get_string(w, v, key, &c->agent.base_url) != 0)
        return -1;
    if (c->agent.base_url && strncmp(c->agent.base_url, "http://", 7) != 0 &&
        strncmp(c->agent.base_url, "https://", 8) != 0)
        return fail(w, v, key, "must be an http:// or https:// URL");
    return 0;
}

static int get_size(walk_t *w, const yaml_node_t *v, const char *key, unsigned long long *out)
{
    const char *s = scalar(v);
    if (s == NULL || config_parse_size(s, out) != 0 || *out == 0)
        return fail(w, v, key, "must be a size in bytes, like 2147483648 or 2GiB");
    return 0;
}
static int k_memory(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_size(w, v, key, &c->sandbox.memory_bytes);
}
static int k_file_size(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_size(w, v, key, &c->sandbox.file_size_bytes);
}
static int k_tree(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_size(w, v, key, &c->sandbox.tree_bytes);
}
static int k_processes(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 1, 1000000, &c->sandbox.processes);
}
static int k_open_files(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 16, 1048576, &c->sandbox.open_files);
}
static int k_cpu(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 1, 604800, &c->sandbox.cpu_seconds);
}

static const repo_key_t sandbox_keys[] = {{"memory_bytes", k_memory},     {"processes", k_processes},
                                          {"file_size_bytes", k_file_size}, {"open_files", k_open_files},
                                          {"cpu_seconds", k_cpu},          {"tree_bytes", k_tree},
                                          {NULL, NULL}};

static int k_sandbox(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return walk_map(w, v, key, sandbox_keys, c);
}

static int k_ask_timeout(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 1, 604800, &c->ask.timeout);
}
static int k_ask_steps(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return get_int(w, v, key, 1, 10000, &c->ask.max_steps);
}

static const repo_key_t ask_keys[] = {{"timeout", k_ask_timeout}, {"max_steps", k_ask_steps}, {NULL, NULL}};

static int k_ask(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return walk_map(w, v, key, ask_keys, c);
}

static const repo_key_t review_keys[] = {{"auto", k_auto}, {"drafts", k_drafts}, {"request_changes", k_request_changes},
                                         {"synchronize", k_synchronize}, {NULL, NULL}};
static const repo_key_t openai_keys[] = {{"model", k_model}, {"base_url", k_base_url}, {NULL, NULL}};

static int k_review(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return walk_map(w, v, key, review_keys, c);
}
static int k_openai(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return walk_map(w, v, key, openai_keys, c);
}

static const repo_key_t agent_keys[] = {{"backend", k_backend}, {"command", k_command},     {"timeout", k_timeout},
                                    {"test_rounds", k_rounds}, {"network", k_network}, {"openai", k_openai},
                                    {"attempts", k_attempts}, {NULL, NULL}};

static int k_agent(walk_t *w, const yaml_node_t *v, const char *key, repoconfig_t *c)
{
    return walk_map(w, v, key, agent_keys, c);
}

static const repo_key_t top_keys[] = {{"setup", k_setup},       {"test", k_test},   {"forbidden_paths", k_forbidden},
                                  {"branch_prefix", k_prefix}, {"draft", k_draft}, {"review", k_review},
                                  {"agent", k_agent},       {"sandbox", k_sandbox}, {"environment", k_environment},
                                  {"ask", k_ask},           {NULL, NULL}};

static int walk_map(walk_t *w, const yaml_node_t *map, const char *where, const repo_key_t *keys, repoconfig_t *c)
{
    if (map->type == YAML_SCALAR_NODE && map->data.scalar.length == 0)
        return 0; /* "review:" with nothing under it */
    if (map->type != YAML_MAPPING_NODE)
        return fail(w, map, where, "must be a mapping of keys");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
        const char *name = k ? scalar(k) : NULL;
        if (name == NULL || v == NULL)
            return fail(w, k, where, "has a key that is not a text");
        const repo_key_t *e = keys;
        while (e->name != NULL && strcmp(e->name, name) != 0)
            e++;
        if (e->name == NULL) {
            char list[256] = "";
            for (const repo_key_t *x = keys; x->name != NULL; x++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", list[0] ? ", " : "", x->name);
            return fail(w, k, name, "is not a patchbay setting here (known: %s)", list);
        }
        if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0 && e->fn != k_review && e->fn != k_agent &&
            e->fn != k_openai)
            continue; /* "test:" with no value: the default */
        if (e->fn(w, v, name, c) != 0)
            return -1;
    }
    return 0;
}

int repoconfig_parse(repoconfig_t *out, const char *text, size_t len, char *err, size_t err_len)
{
    repoconfig_defaults(out);
    err[0] = '\0';
    if (text == NULL)
        return 0;
    if (len > REPOCONFIG_MAX_BYTES) {
        snprintf(err, err_len, "the file is over %d KiB", REPOCONFIG_MAX_BYTES / 1024);
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        oom();
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, err_len, "line %zu: not valid YAML: %s", parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return -1;
    }
    walk_t w = {&doc, err, err_len, 0};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (root != NULL && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        rc = walk_map(&w, root, "(top level)", top_keys, out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc != 0) {
        repoconfig_free(out);
        repoconfig_defaults(out);
        return -1;
    }
    return 0;
}
