/* progress: the comment a user watches, and the marker a retried job finds it by. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "jobs/kinds/progress.h"

static void test_render_working_and_done(void **state)
{
    (void)state;
    progress_t p;
    progress_init(&p, "42", "Fixing #7", "https://pb.example.com/", 1000);
    size_t a = progress_add(&p, "Check out the repository");
    size_t b = progress_add(&p, "Run the agent");
    size_t c = progress_add(&p, "Open a pull request");
    progress_start(&p, a, 1000);
    progress_finish(&p, a, PROGRESS_DONE, 1300);
    progress_start(&p, b, 1300);
    strbuf_t out = STRBUF_INIT;
    progress_render(&out, &p, 66300);
    assert_non_null(strstr(out.data, "<!-- patchbay:job=42 -->\n"));
    assert_non_null(strstr(out.data, "patchbay is working on this** · Fixing #7"));
    assert_non_null(strstr(out.data, "- [x] Check out the repository (0.3 s)\n"));
    assert_non_null(strstr(out.data, "- [ ] ⏳ Run the agent (1m 05s so far)\n"));
    assert_non_null(strstr(out.data, "- [ ] Open a pull request\n"));
    assert_non_null(strstr(out.data, "Elapsed 1m 05s · job 42 · [log](https://pb.example.com/jobs/42)"));
    strbuf_free(&out);

    progress_finish(&p, b, PROGRESS_DONE, 70000);
    progress_finish(&p, c, PROGRESS_DONE, 71000);
    progress_outcome(&p, PROGRESS_SUCCEEDED, "Opened #8.");
    progress_render(&out, &p, 71000);
    assert_non_null(strstr(out.data, "✅ **patchbay finished**"));
    assert_non_null(strstr(out.data, "Took 1m 10s"));
    assert_non_null(strstr(out.data, "\n\nOpened #8.\n"));
    char id[16];
    assert_int_equal(progress_marker_find(out.data, id, sizeof(id)), 0);
    assert_string_equal(id, "42");
    strbuf_free(&out);
    progress_free(&p);
}

static void test_detail_is_defused(void **state)
{
    (void)state;
    progress_t p;
    progress_init(&p, "1", NULL, NULL, 0);
    size_t s = progress_add(&p, "Run tests");
    progress_detail(&p, s, "3 failed\n<img src=x> ping @octocat `rm`");
    assert_null(strchr(p.steps[s].detail, '\n'));
    assert_null(strchr(p.steps[s].detail, '<'));
    assert_null(strchr(p.steps[s].detail, '`'));
    assert_non_null(strstr(p.steps[s].detail, "@\xe2\x80\x8bocto")); /* shown, but no ping */
    char longtext[1000];
    memset(longtext, 'x', sizeof(longtext));
    memcpy(longtext + 230, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 12);
    longtext[sizeof(longtext) - 1] = '\0';
    progress_detail(&p, s, longtext);
    size_t n = strlen(p.steps[s].detail);
    assert_true(n < PROGRESS_DETAIL_BYTES);
    /* no cut UTF-8 sequence at the end */
    assert_true(((unsigned char)p.steps[s].detail[n - 1] & 0xc0) != 0xc0);
    strbuf_t out = STRBUF_INIT;
    progress_render(&out, &p, 5);
    assert_null(strstr(out.data, "[log]")); /* no dashboard configured */
    strbuf_free(&out);
    progress_free(&p);
}

static void test_marker(void **state)
{
    (void)state;
    char id[8];
    assert_int_equal(progress_marker_find("hello", id, sizeof(id)), -1);
    assert_int_equal(progress_marker_find("<!-- patchbay:job= -->", id, sizeof(id)), -1);
    assert_int_equal(progress_marker_find("<!-- patchbay:job=12x -->", id, sizeof(id)), -1);
    assert_int_equal(progress_marker_find("a\n<!-- patchbay:job=123 -->\nb", id, sizeof(id)), 0);
    assert_string_equal(id, "123");
    assert_int_equal(progress_marker_find("<!-- patchbay:job=123456789 -->", id, sizeof(id)), -1); /* too long */
}

static void test_durations(void **state)
{
    (void)state;
    char d[32];
    progress_format_duration(d, sizeof(d), 999);
    assert_string_equal(d, "1.0 s");
    progress_format_duration(d, sizeof(d), 61000);
    assert_string_equal(d, "1m 01s");
    progress_format_duration(d, sizeof(d), 3 * 3600 * 1000 + 60000);
    assert_string_equal(d, "3h 01m");
    progress_format_duration(d, sizeof(d), -5);
    assert_string_equal(d, "0.0 s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_working_and_done),
        cmocka_unit_test(test_detail_is_defused),
        cmocka_unit_test(test_marker),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
