/*
 * test_jslim — the payload copy a job keeps: link members and whitespace go,
 * everything else stays byte for byte, in place or into another buffer; and a
 * real GitHub payload shrinks to what a person would expect.
 *
 * Documents are written with ' for " so they read like the JSON they are;
 * every run works on an exact-size heap copy so AddressSanitizer sees any
 * access past the end.
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
#include "app/webhook/jslim.h"

static char *quoted(const char *s, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = s[i] == '\'' ? '"' : s[i];
    return p;
}

/* Slims doc both ways and checks the two agree and equal want. */
static void check(const char *doc, const char *want)
{
    size_t len = strlen(doc);
    char *in = quoted(doc, len), *out = malloc(len ? len : 1);
    assert_non_null(out);
    assert_int_equal(jscan_scan(in, len, NULL, 0, NULL, NULL), JSCAN_OK);
    size_t n = jslim_payload(in, len, out);
    size_t m = jslim_payload(in, len, in); /* in place */
    assert_int_equal(n, m);
    assert_memory_equal(in, out, n);
    char *w = quoted(want, strlen(want));
    if (n != strlen(want) || memcmp(out, w, n) != 0)
        fail_msg("slim of %s\n  is %.*s\n  want %s", doc, (int)n, out, want);
    free(w);
    free(in);
    free(out);
}

static void test_links_go(void **state)
{
    (void)state;
    check("{'url':'https://api.github.com/x','id':1}", "{'id':1}");
    check("{'id':1,'url':'x'}", "{'id':1}");
    check("{'id':1,'forks_url':'x','name':'n'}", "{'id':1,'name':'n'}");
    check("{'a_url':'x','b_url':null,'c_url':'y'}", "{}");
    check("{'user':{'login':'o','avatar_url':'x','followers_url':'y'},'n':[{'url':'z'}]}",
          "{'user':{'login':'o'},'n':[{}]}");
}

static void test_what_stays(void **state)
{
    (void)state;
    /* a person's link, values that are not strings, names that only look like it */
    check("{'html_url':'https://github.com/o/r/issues/1'}", "{'html_url':'https://github.com/o/r/issues/1'}");
    check("{'pull_request':{'url':'x','html_url':'h'}}", "{'pull_request':{'html_url':'h'}}");
    check("{'x_url':{'url':'inner'},'y_url':[1],'z_url':3,'t_url':true}", "{'x_url':{},'y_url':[1],'z_url':3,'t_url':true}");
    check("{'urls':'a','_url':'b','URL':'c','url_x':'d'}", "{'urls':'a','URL':'c','url_x':'d'}");
    /* only keys are judged: a string value that reads like a link key stays */
    check("{'a':'url','b':['x_url','url'],'c':{'k':'_url'}}", "{'a':'url','b':['x_url','url'],'c':{'k':'_url'}}");
    /* a key spelt with an escape is compared raw, and kept */
    check("{'ur\\u006c':'x'}", "{'ur\\u006c':'x'}");
    /* escaped quotes inside strings do not end them */
    check("{'body':'say \\'url\\': here','url':'x'}", "{'body':'say \\'url\\': here'}");
}

static void test_whitespace_goes(void **state)
{
    (void)state;
    check(" {\n  'a' : [ 1 , 2 ] ,\n  'url' : 'x' ,\n  'b' : 'in side'\n}\n", "{'a':[1,2],'b':'in side'}");
    check("{ 'a' : 1 , 'url' : null }", "{'a':1}");
    check("{ 'l' : [ { 'url' : 'x' } , 'url' ] }", "{'l':[{},'url']}");
}

/* The payload GitHub sent for an issue comment in @octokit/webhooks-examples
 * (trimmed to the objects a job reads): the links are most of it. */
static void test_real_payload(void **state)
{
    (void)state;
    const char *doc =
        "{\"action\":\"created\",\"issue\":{\"url\":\"https://api.github.com/repos/Codertocat/Hello-World/issues/1\","
        "\"repository_url\":\"https://api.github.com/repos/Codertocat/Hello-World\","
        "\"labels_url\":\"https://api.github.com/repos/Codertocat/Hello-World/issues/1/labels{/name}\","
        "\"comments_url\":\"https://api.github.com/repos/Codertocat/Hello-World/issues/1/comments\","
        "\"events_url\":\"https://api.github.com/repos/Codertocat/Hello-World/issues/1/events\","
        "\"html_url\":\"https://github.com/Codertocat/Hello-World/issues/1\",\"id\":444500041,\"number\":1,"
        "\"title\":\"Spelling error in the README file\",\"user\":{\"login\":\"Codertocat\",\"id\":21031067,"
        "\"avatar_url\":\"https://avatars1.githubusercontent.com/u/21031067?v=4\",\"gravatar_id\":\"\","
        "\"url\":\"https://api.github.com/users/Codertocat\",\"html_url\":\"https://github.com/Codertocat\","
        "\"followers_url\":\"https://api.github.com/users/Codertocat/followers\",\"type\":\"User\"},"
        "\"comments\":0,\"body\":\"It looks like you accidently spelled 'commit' with two 't's.\"},"
        "\"comment\":{\"id\":492700400,\"body\":\"@patchbay fix the spelling\",\"author_association\":\"OWNER\"},"
        "\"installation\":{\"id\":1}}";
    size_t len = strlen(doc);
    char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, doc, len);
    size_t n = jslim_payload(buf, len, buf);
    assert_true(n < len * 2 / 3);
    json_error_t e;
    json_t *j = json_loadb(buf, n, 0, &e);
    assert_non_null(j);
    json_t *issue = json_object_get(j, "issue");
    assert_string_equal(json_string_value(json_object_get(issue, "title")), "Spelling error in the README file");
    assert_string_equal(json_string_value(json_object_get(issue, "html_url")),
                        "https://github.com/Codertocat/Hello-World/issues/1");
    assert_int_equal(json_integer_value(json_object_get(issue, "number")), 1);
    assert_null(json_object_get(issue, "url"));
    assert_null(json_object_get(issue, "comments_url"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(issue, "user"), "login")), "Codertocat");
    assert_null(json_object_get(json_object_get(issue, "user"), "avatar_url"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "comment"), "body")),
                        "@patchbay fix the spelling");
    json_decref(j);
    free(buf);
}

/* Not JSON (the router never passes it on): no read or write out of bounds,
 * and never longer than the input. */
static void test_cut_short(void **state)
{
    (void)state;
    const char *bad[] = {"{\"url\":\"x", "{\"url\"", "{\"url\":", "{\"a_url\": nul", "\"abc\\", "{\"x\":[", ",,,", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        char *in = malloc(len ? len : 1), *out = malloc(len ? len : 1);
        assert_non_null(in);
        assert_non_null(out);
        memcpy(in, bad[i], len);
        assert_true(jslim_payload(in, len, out) <= len);
        free(in);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_links_go),       cmocka_unit_test(test_what_stays), cmocka_unit_test(test_whitespace_goes),
        cmocka_unit_test(test_real_payload),   cmocka_unit_test(test_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
