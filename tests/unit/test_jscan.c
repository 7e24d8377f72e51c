/*
 * test_jscan — the webhook scanner: extraction by path, full validation, the
 * string and integer helpers, and agreement with jansson on what is JSON.
 *
 * Documents are written with ' for " (see quoted()) so they stay readable, and
 * every scan runs on an exact-size heap copy so AddressSanitizer sees any read
 * past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook/jscan.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    char *buf;
    size_t len;
    int rc;
    size_t err;
    jscan_value_t v[JSCAN_MAX_PATHS];
} scan_t;

static char *memdup_exact(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return p;
}

/* An exact-size copy of s with every ' turned into " (no NUL after it). */
static char *quoted(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = memdup_exact(s, *len);
    for (size_t i = 0; i < *len; i++)
        if (p[i] == '\'')
            p[i] = '"';
    return p;
}

static void scan_raw(scan_t *s, const char *doc, size_t len, const char *const *paths, size_t n)
{
    s->buf = memdup_exact(doc, len);
    s->len = len;
    s->err = (size_t)-1;
    s->rc = jscan_scan(s->buf, s->len, paths, n, s->v, &s->err);
}

static void scan_q(scan_t *s, const char *doc, const char *const *paths, size_t n)
{
    s->buf = quoted(doc, &s->len);
    s->err = (size_t)-1;
    s->rc = jscan_scan(s->buf, s->len, paths, n, s->v, &s->err);
}

static void scan_done(scan_t *s)
{
    free(s->buf);
    s->buf = NULL;
}

/* The value's raw text, with ' for " so expectations read like the documents. */
static void assert_value(const jscan_value_t *v, jscan_type_t type, const char *raw)
{
    assert_int_equal(v->type, type);
    assert_int_equal(v->len, strlen(raw));
    for (size_t i = 0; i < v->len; i++)
        assert_int_equal(v->ptr[i] == '"' ? '\'' : v->ptr[i], raw[i]);
}

static int scan_rc_q(const char *doc)
{
    scan_t s;
    scan_q(&s, doc, NULL, 0);
    scan_done(&s);
    return s.rc;
}

/* A trimmed issue_comment delivery. */
static const char sample_doc[] =
    "{'action':'created',"
    "'issue':{'url':'https://api.github.com/repos/o/r/issues/7','number':7,'title':'Crash on \\'start\\'',"
    "'user':{'login':'alice','id':1,'type':'User'},"
    "'labels':[{'id':11,'name':'bug','color':'d73a4a'},{'id':12,'name':'p1'}],"
    "'state':'open','locked':false,'assignee':null,"
    "'pull_request':{'url':'https://api.github.com/repos/o/r/pulls/7','merged_at':null},"
    "'body':null},"
    "'comment':{'id':1234567890123,'body':'@patchbay fix it\\nplease \\u00e9\\ud83d\\ude00',"
    "'user':{'login':'bob','type':'User','site_admin':false},'author_association':'MEMBER',"
    "'reactions':{'+1':0,'-1':0,'total_count':0}},"
    "'repository':{'id':42,'full_name':'o/r','private':true,'owner':{'login':'o'},'topics':[],'score':-1.5e-3},"
    "'sender':{'login':'bob','type':'User'},"
    "'installation':{'id':99,'node_id':'MDIz'}}";

/* ------------------------------------------------------------------------- */
/* Extraction                                                                */
/* ------------------------------------------------------------------------- */

static void test_extract_nested(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "action",         "comment.user.login",   "issue.pull_request", "installation.id",
        "issue.number",   "comment.body",         "issue.user.login",   "comment",
        "comment.user",   "repository.full_name", "issue.labels",       "issue.locked",
        "issue.assignee", "repository.private",   "repository.score",   "repository.topics",
        "sender.type",    "issue.title",
    };
    scan_t s;
    scan_q(&s, sample_doc, paths, ARRAY_LEN(paths));
    assert_int_equal(s.rc, JSCAN_OK);
    assert_value(&s.v[0], JSCAN_STRING, "created");
    assert_value(&s.v[1], JSCAN_STRING, "bob");
    assert_value(&s.v[2], JSCAN_OBJECT, "{'url':'https://api.github.com/repos/o/r/pulls/7','merged_at':null}");
    assert_value(&s.v[3], JSCAN_NUMBER, "99");
    assert_value(&s.v[4], JSCAN_NUMBER, "7");
    assert_value(&s.v[5], JSCAN_STRING, "@patchbay fix it\\nplease \\u00e9\\ud83d\\ude00");
    assert_value(&s.v[6], JSCAN_STRING, "alice");
    assert_int_equal(s.v[7].type, JSCAN_OBJECT);
    assert_int_equal(s.v[7].ptr[0], '{');
    assert_int_equal(s.v[7].ptr[s.v[7].len - 1], '}');
    assert_true(memcmp(s.v[7].ptr, "{\"id\":1234567890123,", 20) == 0);
    assert_value(&s.v[8], JSCAN_OBJECT, "{'login':'bob','type':'User','site_admin':false}");
    assert_value(&s.v[9], JSCAN_STRING, "o/r");
    assert_value(&s.v[10], JSCAN_ARRAY, "[{'id':11,'name':'bug','color':'d73a4a'},{'id':12,'name':'p1'}]");
    assert_value(&s.v[11], JSCAN_FALSE, "false");
    assert_value(&s.v[12], JSCAN_NULL, "null");
    assert_value(&s.v[13], JSCAN_TRUE, "true");
    assert_value(&s.v[14], JSCAN_NUMBER, "-1.5e-3");
    assert_value(&s.v[15], JSCAN_ARRAY, "[]");
    assert_value(&s.v[16], JSCAN_STRING, "User");
    assert_value(&s.v[17], JSCAN_STRING, "Crash on \\'start\\'");

    /* spans point into the caller's buffer */
    assert_true(s.v[0].ptr > s.buf && s.v[0].ptr < s.buf + s.len);

    int64_t id = 0;
    assert_int_equal(jscan_int64(&s.v[3], &id), 0);
    assert_int_equal(id, 99);
    char body[128];
    long n = jscan_string_decode(&s.v[5], body, sizeof(body));
    assert_int_equal(n, (long)strlen("@patchbay fix it\nplease \xc3\xa9\xf0\x9f\x98\x80"));
    assert_string_equal(body, "@patchbay fix it\nplease \xc3\xa9\xf0\x9f\x98\x80");
    assert_true(jscan_string_equals(&s.v[1], "bob"));
    scan_done(&s);
}

static void test_absent_paths(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "label.name",               /* no such key */
        "action.name",              /* through a string */
        "issue.state.x",            /* through a string, deeper */
        "issue.assignee.login",     /* through null */
        "issue.labels.name",        /* arrays are not descended */
        "issue.labels.0",           /* not even by index */
        "comment.user.login.extra", /* below a leaf */
        "Action",                   /* keys are case-sensitive */
        "installation.id.x",
        "pull_request.head.sha",
    };
    scan_t s;
    scan_q(&s, sample_doc, paths, ARRAY_LEN(paths));
    assert_int_equal(s.rc, JSCAN_OK);
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        assert_int_equal(s.v[i].type, JSCAN_ABSENT);
        assert_null(s.v[i].ptr);
        assert_int_equal(s.v[i].len, 0);
    }
    scan_done(&s);
}

static void test_arrays_validated_not_matched(void **state)
{
    (void)state;
    static const char *const paths[] = {"a.b", "a", "c"};
    scan_t s;

    scan_q(&s, "{'a':[{'b':1},{'b':2}],'c':{'b':3}}", paths, 3);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_int_equal(s.v[0].type, JSCAN_ABSENT);
    assert_value(&s.v[1], JSCAN_ARRAY, "[{'b':1},{'b':2}]");
    assert_value(&s.v[2], JSCAN_OBJECT, "{'b':3}");
    scan_done(&s);

    /* errors deep inside arrays nobody asked about still fail the scan */
    static const char *const bad[] = {
        "{'a':[{'b':1},{'b':01}],'c':1}", "{'a':[[[1,]]],'c':1}",    "{'a':[{'b' 1}],'c':1}",
        "{'a':[{'b':'\\x'}],'c':1}",      "{'a':[{'b':tru}],'c':1}", "{'a':[{,}],'c':1}",
        "{'a':[{'b':1}}],'c':1}",         "{'a':[{'b':1]],'c':1}",   "{'a':[1 2],'c':1}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        scan_q(&s, bad[i], paths, 3);
        if (s.rc != JSCAN_ERR_SYNTAX)
            fail_msg("accepted %s", bad[i]);
        for (size_t k = 0; k < 3; k++)
            assert_int_equal(s.v[k].type, JSCAN_ABSENT); /* cleared on error */
        scan_done(&s);
    }
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    static const char *const paths[] = {"a", "x.y", "x.z", "x", "x.y.z"};
    scan_t s;

    scan_q(&s, "{'a':1,'a':'two'}", paths, 1);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_value(&s.v[0], JSCAN_STRING, "two");
    scan_done(&s);

    /* a later object replaces the earlier one wholesale, as in jansson */
    scan_q(&s, "{'x':{'y':1},'x':{'z':2}}", paths, 4);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_int_equal(s.v[1].type, JSCAN_ABSENT);
    assert_value(&s.v[2], JSCAN_NUMBER, "2");
    assert_value(&s.v[3], JSCAN_OBJECT, "{'z':2}");
    scan_done(&s);

    scan_q(&s, "{'x':{'y':1,'z':3},'x':5}", paths, 4);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_int_equal(s.v[1].type, JSCAN_ABSENT);
    assert_int_equal(s.v[2].type, JSCAN_ABSENT);
    assert_value(&s.v[3], JSCAN_NUMBER, "5");
    scan_done(&s);

    scan_q(&s, "{'x':{'y':{'z':1}},'x':{'y':{'w':2}}}", paths, 5);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_int_equal(s.v[4].type, JSCAN_ABSENT);
    assert_value(&s.v[1], JSCAN_OBJECT, "{'w':2}");
    scan_done(&s);

    scan_q(&s, "{'x':{'y':1,'y':[true]}}", paths, 2);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_value(&s.v[1], JSCAN_ARRAY, "[true]");
    scan_done(&s);
}

static void test_paths_overlap_and_repeat(void **state)
{
    (void)state;
    /* the same path twice, a path and its prefix, siblings: each gets its own value */
    static const char *const paths[] = {"a.b.c", "a.b", "a.b.c", "a", "a.b.d", "a.e"};
    scan_t s;
    scan_q(&s, "{'z':{'a':{'b':{'c':0}}},'a':{'e':[],'b':{'d':'D','c':'C'}}}", paths, ARRAY_LEN(paths));
    assert_int_equal(s.rc, JSCAN_OK);
    assert_value(&s.v[0], JSCAN_STRING, "C");
    assert_value(&s.v[1], JSCAN_OBJECT, "{'d':'D','c':'C'}");
    assert_value(&s.v[2], JSCAN_STRING, "C");
    assert_value(&s.v[3], JSCAN_OBJECT, "{'e':[],'b':{'d':'D','c':'C'}}");
    assert_value(&s.v[4], JSCAN_STRING, "D");
    assert_value(&s.v[5], JSCAN_ARRAY, "[]");
    scan_done(&s);
}

static void test_keys_compared_raw(void **state)
{
    (void)state;
    /* documented: a key spelled with escapes does not match */
    static const char *const paths[] = {"login", "a\\u0062"};
    scan_t s;
    scan_q(&s, "{'logi\\u006e':'x','a\\u0062':'y'}", paths, 2);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_int_equal(s.v[0].type, JSCAN_ABSENT);
    assert_value(&s.v[1], JSCAN_STRING, "y");
    scan_done(&s);
}

static void test_many_paths(void **state)
{
    (void)state;
    char names[JSCAN_MAX_PATHS][8];
    const char *paths[JSCAN_MAX_PATHS + 1];
    char doc[2048];
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "{");
    for (int i = 0; i < JSCAN_MAX_PATHS; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        paths[i] = names[i];
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%s'k%d':%d", i ? "," : "", JSCAN_MAX_PATHS - 1 - i, i);
    }
    n += (size_t)snprintf(doc + n, sizeof(doc) - n, "}");
    scan_t s;
    scan_q(&s, doc, paths, JSCAN_MAX_PATHS);
    assert_int_equal(s.rc, JSCAN_OK);
    for (int i = 0; i < JSCAN_MAX_PATHS; i++) {
        int64_t x;
        assert_int_equal(s.v[i].type, JSCAN_NUMBER);
        assert_int_equal(jscan_int64(&s.v[i], &x), 0);
        assert_int_equal(x, JSCAN_MAX_PATHS - 1 - i);
    }
    scan_done(&s);

    paths[JSCAN_MAX_PATHS] = "x";
    scan_q(&s, doc, paths, JSCAN_MAX_PATHS + 1);
    assert_int_equal(s.rc, JSCAN_ERR_USAGE);
    scan_done(&s);
}

static void test_usage_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {"", ".", "a.", ".a", "a..b", "a.b."};
    jscan_value_t v[2];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        const char *paths[] = {"ok", bad[i]};
        assert_int_equal(jscan_scan("{}", 2, paths, 2, v, NULL), JSCAN_ERR_USAGE);
        assert_int_equal(v[0].type, JSCAN_ABSENT);
    }
    const char *nullpath[] = {NULL};
    assert_int_equal(jscan_scan("{}", 2, nullpath, 1, v, NULL), JSCAN_ERR_USAGE);
    assert_int_equal(jscan_scan("{}", 2, NULL, 1, v, NULL), JSCAN_ERR_USAGE);
    assert_int_equal(jscan_scan("{}", 2, nullpath, 1, NULL, NULL), JSCAN_ERR_USAGE);
    /* no paths at all is a plain validation */
    assert_int_equal(jscan_scan("{}", 2, NULL, 0, NULL, NULL), JSCAN_OK);
    assert_int_equal(jscan_scan(NULL, 0, NULL, 0, NULL, NULL), JSCAN_ERR_SYNTAX);
}

static void test_whitespace_everywhere(void **state)
{
    (void)state;
    static const char *const paths[] = {"a.b", "c"};
    scan_t s;
    scan_q(&s, " \t\r\n{ \n  'a' :\t{\r\n 'b'\n:\n[ 1 , { } , [ ] ]\n } ,\n 'c' : -0.0E+0 \n}\n\t ", paths, 2);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_value(&s.v[0], JSCAN_ARRAY, "[ 1 , { } , [ ] ]");
    assert_value(&s.v[1], JSCAN_NUMBER, "-0.0E+0");
    scan_done(&s);

    /* only JSON's four whitespace characters */
    assert_int_equal(scan_rc_q("\f{}"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("{}\v"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("{\xc2\xa0}"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("\xef\xbb\xbf{}"), JSCAN_ERR_SYNTAX); /* no BOM */
}

/* ------------------------------------------------------------------------- */
/* Validation                                                                */
/* ------------------------------------------------------------------------- */

static void test_invalid_documents(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        size_t err_offset;
    } cases[] = {
        /* trailing garbage */
        {"{}x", 2},
        {"{} {}", 3},
        {"{}}", 2},
        {"{}]", 2},
        {"{},", 2},
        {"{'a':1}'", 7},
        /* trailing commas, missing or extra separators */
        {"{'a':1,}", 7},
        {"{'a':[1,2,]}", 10},
        {"{,}", 1},
        {"{'a':[,1]}", 6},
        {"{'a':1,,'b':2}", 7},
        {"{'a' 1}", 5},
        {"{'a'::1}", 5},
        {"{'a':1 'b':2}", 7},
        {"{'a'}", 4},
        {"{'a':}", 5},
        {"{1:1}", 1},
        {"{a:1}", 1},
        {"{'a':1]", 6},
        {"{'a':[1}", 7},
        /* numbers */
        {"{'a':01}", 6},
        {"{'a':-01}", 7},
        {"{'a':00}", 6},
        {"{'a':1.}", 7},
        {"{'a':.5}", 5},
        {"{'a':+1}", 5},
        {"{'a':-}", 6},
        {"{'a':1e}", 7},
        {"{'a':1e+}", 8},
        {"{'a':1.e5}", 7},
        {"{'a':0x10}", 6},
        {"{'a':1_000}", 6},
        {"{'a':NaN}", 5},
        {"{'a':Infinity}", 5},
        {"{'a':-Infinity}", 6},
        {"{'a':- 1}", 6},
        {"{'a':1.5.5}", 8},
        {"{'a':1e5e5}", 8},
        /* literals */
        {"{'a':tru}", 5},
        {"{'a':True}", 5},
        {"{'a':nul}", 5},
        {"{'a':falsey}", 10},
        {"{'a':nulll}", 9},
        {"{'a':undefined}", 5},
        /* strings and escapes */
        {"{'a':'\\x'}", 6},
        {"{'a':'\\u12'}", 6},
        {"{'a':'\\u12g4'}", 6},
        {"{'a':'\\U0041'}", 6},
        {"{'a':'\\'}", 9},
        {"{'a':'\\ud800'}", 6},
        {"{'a':'\\udc00'}", 6},
        {"{'a':'\\ud800\\u0041'}", 6},
        {"{'a':'\\ud800x\\udc00'}", 6},
        {"{'a':'\\udc00\\ud800'}", 6},
        {"{'a':'tab\there'}", 9},
        {"{'a':'nl\nhere'}", 8},
        {"{'a':'\x01'}", 6},
        {"{'a':'\x1f'}", 6},
        {"{'a\nb':1}", 3},
        {"{'a':'it''s'}", 9},
        {"{'a':'x", 7},
        {"{'a", 3},
        /* empty and odd */
        {"", 0},
        {"   ", 3},
        {"{", 1},
        {"}", 0},
        {"{'a':1", 6},
        {"{'a':{}", 7},
        {"{/*c*/}", 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        scan_t s;
        static const char *const paths[] = {"a"};
        scan_q(&s, cases[i].doc, paths, 1);
        if (s.rc != JSCAN_ERR_SYNTAX)
            fail_msg("case %zu (%s): rc %d, want syntax error", i, cases[i].doc, s.rc);
        if (s.err != cases[i].err_offset)
            fail_msg("case %zu (%s): error at %zu, want %zu", i, cases[i].doc, s.err, cases[i].err_offset);
        assert_int_equal(s.v[0].type, JSCAN_ABSENT);
        scan_done(&s);
    }
}

static void test_raw_control_chars(void **state)
{
    (void)state;
    /* every control character, raw, in a value and in a key; 0x7f and high bytes pass */
    for (int c = 0; c < 0x20; c++) {
        char doc[32];
        int n = snprintf(doc, sizeof(doc), "{\"a\":\"x%cy\"}", c == 0 ? '@' : c);
        if (c == 0)
            doc[7] = '\0';
        scan_t s;
        scan_raw(&s, doc, (size_t)n, NULL, 0);
        assert_int_equal(s.rc, JSCAN_ERR_SYNTAX);
        assert_int_equal(s.err, 7);
        scan_done(&s);
        n = snprintf(doc, sizeof(doc), "{\"k%c\":1}", c == 0 ? '@' : c);
        if (c == 0)
            doc[3] = '\0';
        scan_raw(&s, doc, (size_t)n, NULL, 0);
        assert_int_equal(s.rc, JSCAN_ERR_SYNTAX);
        scan_done(&s);
    }
    assert_int_equal(scan_rc_q("{'a':'\x7f\x80\xff'}"), JSCAN_OK); /* UTF-8 is the decoder's job */
}

/* Special bytes at every offset of strings of every length up to 80, so each
 * lands in every lane of the 16-byte scan and in the scalar tail, with the
 * string ending flush against the end of an exact-size buffer. */
static void test_string_lanes(void **state)
{
    (void)state;
    static const char *const paths[] = {"s"};
    char doc[128];
    for (size_t len = 0; len <= 80; len++) {
        for (size_t k = 0; k <= len; k++) {
            for (int kind = 0; kind < 4; kind++) {
                size_t n = 0;
                memcpy(doc, "{\"s\":\"", 6);
                n = 6;
                for (size_t i = 0; i < len; i++)
                    doc[n++] = (char)('a' + i % 26);
                size_t body = n - len;
                int want = JSCAN_OK;
                if (k < len) {
                    if (kind == 0) {
                        doc[body + k] = '\x1f';
                        want = JSCAN_ERR_SYNTAX;
                    } else if (kind == 1) {
                        doc[body + k] = '"'; /* ends the string early: the rest is garbage */
                        want = JSCAN_ERR_SYNTAX;
                    } else if (kind == 2) {
                        doc[body + k] = '\\'; /* escapes the next letter: invalid unless it is one of ours */
                        want = JSCAN_ERR_SYNTAX;
                        if (k + 1 < len && strchr("bfnrt", doc[body + k + 1]) != NULL)
                            want = JSCAN_OK;
                    } else {
                        doc[body + k] = '\xe9'; /* a high byte is not special to the scan */
                    }
                }
                int closed = kind != 3 || k != len; /* kind 3 at k == len: drop the closing quote */
                if (closed) {
                    doc[n++] = '"';
                    doc[n++] = '}';
                } else {
                    want = JSCAN_ERR_SYNTAX;
                }
                scan_t s;
                scan_raw(&s, doc, n, paths, 1);
                if (s.rc != want)
                    fail_msg("len %zu k %zu kind %d: rc %d want %d", len, k, kind, s.rc, want);
                if (want == JSCAN_OK) {
                    assert_int_equal(s.v[0].type, JSCAN_STRING);
                    assert_int_equal(s.v[0].len, len);
                    assert_ptr_equal(s.v[0].ptr, s.buf + 6);
                } else if (kind == 0) {
                    assert_int_equal(s.err, body + k);
                } else if (!closed) {
                    assert_int_equal(s.err, n);
                }
                scan_done(&s);
            }
        }
    }
}

static const char *const truncation_docs[] = {
    ("{'a':'value with \\n escape and \\u00e9 and \\ud83d\\ude00 pair','b':[1,-2.5e+3,true,false,null,{}],"
     "'c':{'d':{'e':'f'}},'g':-0,'h':'0123456789abcdefghijklmnop'}"),
    "{ 'a' : [ { } , [ ] , '' ] , 'b' : { 'c' : 12345678901234567890 } }",
    "{'\\\\':'\\\\','\\/':'\\b\\f\\n\\r\\t','\\u0041':1e-7,'x':{}}",
};

static void test_truncated_at_every_length(void **state)
{
    (void)state;
    static const char *const paths[] = {"a", "b", "c.d.e", "h"};
    for (size_t d = 0; d < ARRAY_LEN(truncation_docs); d++) {
        size_t len;
        char *full = quoted(truncation_docs[d], &len);
        scan_t s;
        scan_raw(&s, full, len, paths, 4);
        assert_int_equal(s.rc, JSCAN_OK);
        scan_done(&s);
        for (size_t cut = 0; cut < len; cut++) {
            scan_raw(&s, full, cut, paths, 4);
            if (s.rc != JSCAN_ERR_SYNTAX)
                fail_msg("doc %zu cut at %zu: rc %d", d, cut, s.rc);
            assert_true(s.err <= cut);
            for (size_t k = 0; k < 4; k++)
                assert_int_equal(s.v[k].type, JSCAN_ABSENT);
            scan_done(&s);
        }
        free(full);
    }
    /* the same for a top-level array: every prefix is a syntax error, the whole is NOT_OBJECT */
    size_t len;
    char *full = quoted("[1,'ab\\u0041',{'c':null},[]]", &len);
    for (size_t cut = 0; cut <= len; cut++) {
        scan_t s;
        scan_raw(&s, full, cut, NULL, 0);
        assert_int_equal(s.rc, cut == len ? JSCAN_ERR_NOT_OBJECT : JSCAN_ERR_SYNTAX);
        scan_done(&s);
    }
    free(full);
}

static char *nested(size_t depth, const char *open, const char *close, size_t *len)
{
    /* {"a": + depth-1 of open + close ... + } */
    size_t n = 0;
    char *p = malloc(2 * depth + 16);
    assert_non_null(p);
    n += (size_t)sprintf(p, "{\"a\":");
    for (size_t i = 1; i < depth; i++)
        p[n++] = open[i % strlen(open)];
    for (size_t i = depth - 1; i >= 1; i--)
        p[n++] = close[i % strlen(close)];
    p[n++] = '}';
    *len = n;
    return p;
}

static void test_depth_limit(void **state)
{
    (void)state;
    static const char *const paths[] = {"a"};
    size_t len;
    scan_t s;

    /* the root object counts: 128 open containers in all is fine, 129 is not */
    char *doc = nested(JSCAN_MAX_DEPTH, "[", "]", &len);
    scan_raw(&s, doc, len, paths, 1);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_int_equal(s.v[0].type, JSCAN_ARRAY);
    assert_int_equal(s.v[0].len, 2 * (JSCAN_MAX_DEPTH - 1));
    scan_done(&s);
    free(doc);

    doc = nested(JSCAN_MAX_DEPTH + 1, "[", "]", &len);
    scan_raw(&s, doc, len, paths, 1);
    assert_int_equal(s.rc, JSCAN_ERR_DEPTH);
    assert_int_equal(s.err, 5 + JSCAN_MAX_DEPTH - 1); /* at the bracket too many */
    assert_int_equal(s.v[0].type, JSCAN_ABSENT);
    scan_done(&s);
    free(doc);

    /* far too deep: a clean error, not a crash */
    doc = nested(1000000, "[", "]", &len);
    scan_raw(&s, doc, len, paths, 1);
    assert_int_equal(s.rc, JSCAN_ERR_DEPTH);
    scan_done(&s);
    free(doc);

    /* nested objects along a requested path */
    char path[2 * JSCAN_MAX_DEPTH + 1];
    char *q = malloc(16 * JSCAN_MAX_DEPTH);
    assert_non_null(q);
    size_t n = 0, pn = 0;
    for (int i = 0; i < JSCAN_MAX_DEPTH; i++) {
        n += (size_t)sprintf(q + n, "{\"k\":");
        pn += (size_t)sprintf(path + pn, "%sk", i ? "." : "");
    }
    n += (size_t)sprintf(q + n, "7");
    for (int i = 0; i < JSCAN_MAX_DEPTH; i++)
        q[n++] = '}';
    const char *deep[] = {path};
    scan_raw(&s, q, n, deep, 1);
    assert_int_equal(s.rc, JSCAN_OK);
    assert_value(&s.v[0], JSCAN_NUMBER, "7");
    scan_done(&s);
    free(q);

    /* top-level arrays obey the same limit */
    char arr[2 * JSCAN_MAX_DEPTH + 2];
    memset(arr, '[', JSCAN_MAX_DEPTH);
    memset(arr + JSCAN_MAX_DEPTH, ']', JSCAN_MAX_DEPTH);
    scan_raw(&s, arr, 2 * JSCAN_MAX_DEPTH, NULL, 0);
    assert_int_equal(s.rc, JSCAN_ERR_NOT_OBJECT);
    scan_done(&s);
    memset(arr, '[', JSCAN_MAX_DEPTH + 1);
    memset(arr + JSCAN_MAX_DEPTH + 1, ']', JSCAN_MAX_DEPTH + 1);
    scan_raw(&s, arr, 2 * JSCAN_MAX_DEPTH + 2, NULL, 0);
    assert_int_equal(s.rc, JSCAN_ERR_DEPTH);
    scan_done(&s);
}

static void test_top_level_not_object(void **state)
{
    (void)state;
    static const char *const paths[] = {"a"};
    static const char *const docs[] = {"[]", "[{'a':1}]", " 1 ", "-0.5e3", "'str'", "true", "false", "null", "''"};
    for (size_t i = 0; i < ARRAY_LEN(docs); i++) {
        scan_t s;
        scan_q(&s, docs[i], paths, 1);
        if (s.rc != JSCAN_ERR_NOT_OBJECT)
            fail_msg("%s: rc %d", docs[i], s.rc);
        assert_int_equal(s.v[0].type, JSCAN_ABSENT);
        scan_done(&s);
    }
    /* not JSON at all stays a syntax error */
    assert_int_equal(scan_rc_q("[1,]"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("01"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("1 2"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("'a"), JSCAN_ERR_SYNTAX);
    assert_int_equal(scan_rc_q("[] {}"), JSCAN_ERR_SYNTAX);
}

/* ------------------------------------------------------------------------- */
/* String decoding                                                           */
/* ------------------------------------------------------------------------- */

static jscan_value_t str(const char *raw)
{
    return (jscan_value_t){JSCAN_STRING, raw, strlen(raw)};
}

/* Decodes raw into a buffer of exactly its length + 1, guarded by canaries. */
static long decode(const char *raw, char *out, size_t cap)
{
    jscan_value_t v = str(raw);
    char *buf = malloc(cap + 16);
    assert_non_null(buf);
    memset(buf, 0xAA, cap + 16);
    long n = jscan_string_decode(&v, buf + 8, cap);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal((unsigned char)buf[i], 0xAA);
        assert_int_equal((unsigned char)buf[8 + cap + i], 0xAA);
    }
    if (cap > 0) {
        if (n >= 0) {
            assert_true((size_t)n < cap);
            assert_int_equal(buf[8 + n], '\0');
        } else {
            assert_int_equal(buf[8], '\0'); /* a failed decode leaves an empty string */
        }
    }
    if (out != NULL && n >= 0)
        memcpy(out, buf + 8, (size_t)n + 1);
    free(buf);
    return n;
}

static void test_decode_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *want;
    } ok[] = {
        {"", ""},
        {"plain", "plain"},
        {"\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t"},
        {"\\u0041\\u00e9\\u00E9", "A\xc3\xa9\xc3\xa9"},
        {"\\u007f\\u0080\\u07ff\\u0800", "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80"},
        {"\\u20ac\\uffff\\ud7ff\\ue000", "\xe2\x82\xac\xef\xbf\xbf\xed\x9f\xbf\xee\x80\x80"},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"},
        {"\\uD800\\uDC00", "\xf0\x90\x80\x80"},
        {"\\udbff\\udfff", "\xf4\x8f\xbf\xbf"},
        {"x\\ud83d\\ude00y", "x\xf0\x9f\x98\x80y"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"},
        {"\x7f", "\x7f"},
        {"a long plain ascii run that crosses several sixteen byte blocks \\n and then some more text after it",
         "a long plain ascii run that crosses several sixteen byte blocks \n and then some more text after it"},
    };
    char out[256];
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        size_t cap = strlen(ok[i].raw) + 1;
        long n = decode(ok[i].raw, out, cap);
        if (n < 0)
            fail_msg("case %zu: rejected %s", i, ok[i].raw);
        assert_int_equal(n, (long)strlen(ok[i].want));
        assert_memory_equal(out, ok[i].want, (size_t)n + 1);
        jscan_value_t v = str(ok[i].raw);
        assert_true(jscan_string_equals(&v, ok[i].want));
    }
}

static void test_decode_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* lone or misordered surrogates */
        "\\ud800",
        "\\udbff",
        "\\udc00",
        "\\udfff",
        "\\ud800x",
        "\\ud800\\u0041",
        "\\ud800\\ud800",
        "\\udc00\\ud800",
        "\\ud800\\n",
        "\\ud83d\\ude0",
        "\\ud83d\\",
        /* bad escapes */
        "\\",
        "\\x",
        "\\u",
        "\\u123",
        "\\u12G4",
        "\\U0041",
        "\\'",
        "\\0",
        /* U+0000: documented, a C string cannot carry it */
        "\\u0000",
        "a\\u0000b",
        /* raw characters a JSON string cannot hold */
        "\x01",
        "a\nb",
        "\x1f",
        "a\"b",
        /* invalid UTF-8: overlongs */
        "\xc0\x80",
        "\xc1\xbf",
        "\xe0\x80\x80",
        "\xe0\x9f\xbf",
        "\xf0\x80\x80\x80",
        "\xf0\x8f\xbf\xbf",
        /* surrogates encoded directly */
        "\xed\xa0\x80",
        "\xed\xbf\xbf",
        /* above U+10FFFF */
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xf7\xbf\xbf\xbf",
        "\xf8\x88\x80\x80\x80",
        "\xff",
        "\xfe",
        /* stray continuations and truncated sequences */
        "\x80",
        "\xbf",
        "a\x80",
        "\xc3",
        "\xc3x",
        "\xe2\x82",
        "\xe2\x82x",
        "\xf0\x9f\x98",
        "\xf0\x9f\x98x",
        "\xc3\xa9\xa9",
        /* long ASCII then a bad byte, past the 16-byte fast path */
        "0123456789abcdef0123456789abcdef\xff",
    };
    char out[64];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        long n = decode(bad[i], out, strlen(bad[i]) + 1);
        if (n != -1)
            fail_msg("case %zu accepted", i);
        jscan_value_t v = str(bad[i]);
        assert_false(jscan_string_equals(&v, ""));
        assert_false(jscan_string_equals(&v, bad[i]));
    }
    /* wrong type, no buffer */
    jscan_value_t num = {JSCAN_NUMBER, "1", 1};
    assert_int_equal(jscan_string_decode(&num, out, sizeof(out)), -1);
    assert_false(jscan_string_equals(&num, "1"));
    jscan_value_t s = str("x");
    assert_int_equal(jscan_string_decode(&s, NULL, 10), -1);
    assert_int_equal(jscan_string_decode(NULL, out, sizeof(out)), -1);
}

static void test_decode_capacity(void **state)
{
    (void)state;
    static const char *const raws[] = {
        "hello",
        "\\u00e9\\u00e9",
        "\\ud83d\\ude00",
        "\xf0\x9f\x98\x80",
        "0123456789abcdef0123456789abcdef0123456789",
        "0123456789abcdef\\n0123456789abcdef0123456789",
    };
    char want[128];
    for (size_t i = 0; i < ARRAY_LEN(raws); i++) {
        long n = decode(raws[i], want, strlen(raws[i]) + 1);
        assert_true(n >= 0);
        /* exactly n + 1 fits; anything less fails without writing past cap */
        for (size_t cap = 0; cap <= (size_t)n + 1; cap++) {
            char out[128];
            long m = decode(raws[i], out, cap);
            if (cap == (size_t)n + 1) {
                assert_int_equal(m, n);
                assert_memory_equal(out, want, (size_t)n + 1);
            } else {
                assert_int_equal(m, -1);
            }
        }
    }
}

static void test_string_equals(void **state)
{
    (void)state;
    jscan_value_t v = str("Bot");
    assert_true(jscan_string_equals(&v, "Bot"));
    assert_false(jscan_string_equals(&v, "Bo"));
    assert_false(jscan_string_equals(&v, "Bots"));
    assert_false(jscan_string_equals(&v, "bot"));
    assert_false(jscan_string_equals(&v, ""));
    v = str("");
    assert_true(jscan_string_equals(&v, ""));
    assert_false(jscan_string_equals(&v, "x"));
    v = str("\\u0042ot");
    assert_true(jscan_string_equals(&v, "Bot"));
    v = str("a\\/b");
    assert_true(jscan_string_equals(&v, "a/b"));
    assert_false(jscan_string_equals(&v, "a\\/b"));
    v = str("\\ud83d\\ude00!");
    assert_true(jscan_string_equals(&v, "\xf0\x9f\x98\x80!"));
    assert_false(jscan_string_equals(&v, "\xf0\x9f\x98"));
    /* an embedded U+0000 must not make "login\u0000x" equal "login" */
    v = str("login\\u0000x");
    assert_false(jscan_string_equals(&v, "login"));
    assert_false(jscan_string_equals(&v, NULL));
    assert_false(jscan_string_equals(NULL, "x"));
}

/* ------------------------------------------------------------------------- */
/* Integers                                                                  */
/* ------------------------------------------------------------------------- */

static void test_int64(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int ok;
        int64_t want;
    } cases[] = {
        {"0", 1, 0},
        {"7", 1, 7},
        {"1234567890123", 1, 1234567890123},
        {"9223372036854775807", 1, INT64_MAX},
        {"9223372036854775806", 1, INT64_MAX - 1},
        {"9223372036854775808", 0, 0},
        {"9223372036854775810", 0, 0},
        {"18446744073709551616", 0, 0},
        {"99999999999999999999999999", 0, 0},
        {"-1", 0, 0},
        {"-0", 0, 0},
        {"-9223372036854775808", 0, 0},
        {"1.0", 0, 0},
        {"0.5", 0, 0},
        {"1e3", 0, 0},
        {"1E3", 0, 0},
        {"01", 0, 0},
        {"00", 0, 0},
        {"", 0, 0},
        {"+1", 0, 0},
        {"1 ", 0, 0},
        {"x", 0, 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        jscan_value_t v = {JSCAN_NUMBER, cases[i].raw, strlen(cases[i].raw)};
        int64_t x = -42;
        int rc = jscan_int64(&v, &x);
        if (rc != (cases[i].ok ? 0 : -1))
            fail_msg("%s: rc %d", cases[i].raw, rc);
        if (cases[i].ok)
            assert_int_equal(x, cases[i].want);
        else
            assert_int_equal(x, -42); /* untouched on failure */
    }
    jscan_value_t s = {JSCAN_STRING, "5", 1};
    int64_t x;
    assert_int_equal(jscan_int64(&s, &x), -1);
    jscan_value_t absent = {JSCAN_ABSENT, NULL, 0};
    assert_int_equal(jscan_int64(&absent, &x), -1);

    /* and straight from a scan */
    static const char *const paths[] = {"id", "neg", "big"};
    scan_t sc;
    scan_q(&sc, "{'id':9223372036854775807,'neg':-3,'big':9223372036854775808}", paths, 3);
    assert_int_equal(sc.rc, JSCAN_OK);
    assert_int_equal(jscan_int64(&sc.v[0], &x), 0);
    assert_int_equal(x, INT64_MAX);
    assert_int_equal(jscan_int64(&sc.v[1], &x), -1);
    assert_int_equal(jscan_int64(&sc.v[2], &x), -1);
    scan_done(&sc);
}

/* ------------------------------------------------------------------------- */
/* jansson as the oracle                                                     */
/* ------------------------------------------------------------------------- */

/* What jansson refuses that jscan accepts, on purpose (see jscan.h). 0: none,
 * they must agree. Otherwise the json_error_code jansson must give. */
enum { AGREE = 0 };

static void test_agrees_with_jansson(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        int accept;       /* jscan: JSCAN_OK or NOT_OBJECT */
        int jansson_code; /* AGREE, or the code of jansson's documented refusal */
    } cases[] = {
        {"{}", 1, AGREE},
        {"{'a':{'b':[1,2,{'c':null}]},'d':'e'}", 1, AGREE},
        {"[1,2,3]", 1, AGREE},
        {"'top string'", 1, AGREE},
        {"-1.25e-7", 1, AGREE},
        {"{'a':-0}", 1, AGREE},
        {"{'a':1E+2,'b':1e-2,'c':0.0}", 1, AGREE},
        {"{'a':'\\u00e9\\ud83d\\ude00\\/\\b'}", 1, AGREE},
        {"{'a':'caf\xc3\xa9'}", 1, AGREE},
        {"{'':''}", 1, AGREE},
        {"{'a':1,'a':2}", 1, AGREE},
        {" \n{ 'a' : [ ] }\r\n\t", 1, AGREE},
        {"{'a':'\\u0000'}", 1, AGREE}, /* with JSON_ALLOW_NUL; see below */
        {"{'a':1e-400}", 1, AGREE},
        {"{'a':9223372036854775807}", 1, AGREE},
        {"{'a':'\x7f'}", 1, AGREE},
        {"{'a':1,}", 0, AGREE},
        {"{'a':[1,]}", 0, AGREE},
        {"{'a':01}", 0, AGREE},
        {"{'a':1.}", 0, AGREE},
        {"{'a':.1}", 0, AGREE},
        {"{'a':'\\x'}", 0, AGREE},
        {"{'a':'\\u12'}", 0, AGREE},
        {"{'a':'\\ud800'}", 0, AGREE},
        {"{'a':'\\udc00\\ud800'}", 0, AGREE},
        {"{'a':'\t'}", 0, AGREE},
        {"{}x", 0, AGREE},
        {"{} {}", 0, AGREE},
        {"", 0, AGREE},
        {"{'a':tru}", 0, AGREE},
        {"{'a' 1}", 0, AGREE},
        {"\xef\xbb\xbf{}", 0, AGREE},
        {"{'a':NaN}", 0, AGREE},
        {"{\xff:1}", 0, AGREE},
        /* documented differences: valid JSON that jansson cannot represent */
        {"{'a':1e400}", 1, json_error_numeric_overflow},
        {"{'a':99999999999999999999}", 1, json_error_numeric_overflow},
        {"{'a':-9223372036854775809}", 1, json_error_numeric_overflow},
        {"{'\\u0000':1}", 1, json_error_null_byte_in_key},
        /* and UTF-8 that only jscan_string_decode checks */
        {"{'a':'\xff'}", 1, json_error_invalid_utf8},
        {"{'a':'\xc0\x80'}", 1, json_error_invalid_utf8},
        {"{'a':'\xed\xa0\x80'}", 1, json_error_invalid_utf8},
        {"{'\xf5\x80\x80\x80':1}", 1, json_error_invalid_utf8},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        size_t len;
        char *doc = quoted(cases[i].doc, &len);
        int rc = jscan_scan(doc, len, NULL, 0, NULL, NULL);
        int jscan_ok = rc == JSCAN_OK || rc == JSCAN_ERR_NOT_OBJECT;
        json_error_t jerr;
        /* JSON_DECODE_ANY: scalars at the top are JSON (jscan says NOT_OBJECT);
         * JSON_ALLOW_NUL: "\u0000" in a value is valid JSON, and jscan accepts it */
        json_t *j = json_loadb(doc, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (jscan_ok != cases[i].accept)
            fail_msg("case %zu (%s): jscan rc %d", i, cases[i].doc, rc);
        if (cases[i].jansson_code == AGREE) {
            if ((j != NULL) != jscan_ok)
                fail_msg("case %zu (%s): jscan rc %d, jansson %s", i, cases[i].doc, rc, j ? "accepts" : jerr.text);
            if (j != NULL)
                assert_int_equal(rc == JSCAN_OK, json_is_object(j));
        } else {
            if (j != NULL || (int)json_error_code(&jerr) != cases[i].jansson_code)
                fail_msg("case %zu (%s): jansson should refuse with code %d", i, cases[i].doc, cases[i].jansson_code);
        }
        json_decref(j);
        free(doc);
    }
}

/* Between 129 and jansson's 2048 levels jscan refuses what jansson takes. */
static void test_depth_differs_from_jansson(void **state)
{
    (void)state;
    size_t len;
    json_error_t jerr;
    char *doc = nested(JSCAN_MAX_DEPTH + 1, "[", "]", &len);
    json_t *j = json_loadb(doc, len, 0, &jerr);
    assert_non_null(j);
    json_decref(j);
    assert_int_equal(jscan_scan(doc, len, NULL, 0, NULL, NULL), JSCAN_ERR_DEPTH);
    free(doc);
}

/* jansson 2.14 skips one raw NUL byte right after a number or literal; raw
 * NUL outside a string is not JSON, and jscan refuses it (documented). */
static void test_raw_nul_differs_from_jansson(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        size_t len;
    } cases[] = {
        {"{\"a\":1\0}", 8},
        {"{\"a\":true\0}", 11},
        {"[null\0]", 7},
        {"{\"a\":1.5\0,\"b\":2}", 16},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        scan_t s;
        scan_raw(&s, cases[i].doc, cases[i].len, NULL, 0);
        assert_int_equal(s.rc, JSCAN_ERR_SYNTAX);
        assert_int_equal(s.buf[s.err], '\0');
        json_error_t jerr;
        json_t *j = json_loadb(s.buf, s.len, JSON_DECODE_ANY, &jerr);
        assert_non_null(j); /* if this starts failing, jansson was fixed: drop the allowance in fuzz_jscan.c */
        json_decref(j);
        scan_done(&s);
    }
    /* elsewhere both refuse it */
    static const char *const elsewhere[] = {"{\"a\":\"x\0\"}", "{\"a\"\0:1}", "\0{}", "{}\0"};
    static const size_t lens[] = {10, 8, 3, 3};
    for (size_t i = 0; i < ARRAY_LEN(elsewhere); i++) {
        json_error_t jerr;
        assert_int_equal(jscan_scan(elsewhere[i], lens[i], NULL, 0, NULL, NULL), JSCAN_ERR_SYNTAX);
        assert_null(json_loadb(elsewhere[i], lens[i], JSON_DECODE_ANY, &jerr));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_nested),
        cmocka_unit_test(test_absent_paths),
        cmocka_unit_test(test_arrays_validated_not_matched),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_paths_overlap_and_repeat),
        cmocka_unit_test(test_keys_compared_raw),
        cmocka_unit_test(test_many_paths),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_whitespace_everywhere),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_raw_control_chars),
        cmocka_unit_test(test_string_lanes),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_top_level_not_object),
        cmocka_unit_test(test_decode_escapes),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_capacity),
        cmocka_unit_test(test_string_equals),
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_agrees_with_jansson),
        cmocka_unit_test(test_depth_differs_from_jansson),
        cmocka_unit_test(test_raw_nul_differs_from_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
