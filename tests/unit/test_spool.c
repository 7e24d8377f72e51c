/* spool: what is acknowledged survives, in order; what is torn is dropped;
 * a drain that stops keeps everything; a failed write leaves nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/server/spool.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/pbspool-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/spool/spool.log", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void append(spool_t *s, const char *delivery, const char *body)
{
    job_fields_t f = {0};
    job_fields_add(&f, JOB_F_KIND, "fix");
    job_fields_add(&f, JOB_F_REPO, "o/r");
    queue_delivery_t d = {delivery, 1795470000123, body, strlen(body), &f};
    spool_record_t rec;
    assert_int_equal(spool_record_encode(&rec, &d), 0);
    char err[SPOOL_ERR_BYTES];
    assert_int_equal(spool_append(s, &rec, 1, err, sizeof(err)), 0);
    spool_record_free(&rec);
}

typedef struct {
    char seen[16][64];
    int n;
    int stop_after;
} collect_t;

static int collect(const queue_delivery_t *d, void *arg)
{
    collect_t *c = arg;
    if (c->stop_after >= 0 && c->n >= c->stop_after)
        return 1;
    snprintf(c->seen[c->n], sizeof(c->seen[0]), "%s:%.*s:%s", d->delivery, (int)d->payload_len, d->payload,
             job_fields_get(d->fields, JOB_F_REPO));
    assert_int_equal(d->received_ms, 1795470000123);
    c->n++;
    return 0;
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_roundtrip_in_order_across_reopen(void **state)
{
    (void)state;
    char err[SPOOL_ERR_BYTES];
    spool_t *s = spool_open(dir, err, sizeof(err));
    assert_non_null(s);
    append(s, "d1", "{\"a\":1}");
    append(s, "d2", "");
    append(s, "d3", "{\"b\":2}");
    spool_close(s);

    s = spool_open(dir, err, sizeof(err)); /* a restart of patchbay */
    assert_int_equal(spool_depth(s), 3);
    collect_t c = {.stop_after = -1};
    assert_int_equal(spool_drain(s, collect, &c, err, sizeof(err)), 3);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.seen[0], "d1:{\"a\":1}:o/r");
    assert_string_equal(c.seen[1], "d2::o/r");
    assert_string_equal(c.seen[2], "d3:{\"b\":2}:o/r");
    assert_int_equal(spool_depth(s), 0);
    assert_int_equal(file_size(), 0);
    spool_close(s);
}

static void test_torn_tail_is_dropped(void **state)
{
    (void)state;
    char err[SPOOL_ERR_BYTES];
    spool_t *s = spool_open(dir, err, sizeof(err));
    append(s, "d1", "one");
    append(s, "d2", "two");
    off_t whole = file_size();
    spool_close(s);
    /* a crash half-way through the second record's write */
    assert_int_equal(truncate(path, whole - 3), 0);
    s = spool_open(dir, err, sizeof(err));
    assert_int_equal(spool_depth(s), 1);
    collect_t c = {.stop_after = -1};
    assert_int_equal(spool_drain(s, collect, &c, err, sizeof(err)), 1);
    assert_string_equal(c.seen[0], "d1:one:o/r");
    spool_close(s);
}

static void test_corrupt_record_stops_the_valid_prefix(void **state)
{
    (void)state;
    char err[SPOOL_ERR_BYTES];
    spool_t *s = spool_open(dir, err, sizeof(err));
    append(s, "d1", "one");
    off_t first = file_size();
    append(s, "d2", "two");
    spool_close(s);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, first + 20), 1); /* a flipped byte fails the CRC */
    close(fd);
    s = spool_open(dir, err, sizeof(err));
    assert_int_equal(spool_depth(s), 1);
    spool_close(s);
}

static void test_drain_that_stops_keeps_everything(void **state)
{
    (void)state;
    char err[SPOOL_ERR_BYTES];
    spool_t *s = spool_open(dir, err, sizeof(err));
    append(s, "d1", "one");
    append(s, "d2", "two");
    append(s, "d3", "three");
    collect_t c = {.stop_after = 1}; /* Redis went away after the first */
    assert_int_equal(spool_drain(s, collect, &c, err, sizeof(err)), 1);
    assert_int_equal(spool_depth(s), 3);
    collect_t again = {.stop_after = -1};
    assert_int_equal(spool_drain(s, collect, &again, err, sizeof(err)), 3);
    assert_string_equal(again.seen[0], "d1:one:o/r"); /* replayed: dedup makes it harmless */
    assert_int_equal(spool_depth(s), 0);
    spool_close(s);
}

static void test_full_disk_is_an_error_and_leaves_nothing(void **state)
{
    (void)state;
    char spooldir[128];
    snprintf(spooldir, sizeof(spooldir), "%s/spool", dir);
    mkdir(spooldir, 0700);
    assert_int_equal(symlink("/dev/full", path), 0);
    char err[SPOOL_ERR_BYTES];
    spool_t *s = spool_open(dir, err, sizeof(err));
    assert_non_null(s);
    job_fields_t f = {0};
    queue_delivery_t d = {"d1", 1, "x", 1, &f};
    spool_record_t rec;
    assert_int_equal(spool_record_encode(&rec, &d), 0);
    assert_int_equal(spool_append(s, &rec, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No space left on device"));
    assert_int_equal(spool_depth(s), 0);
    spool_record_free(&rec);
    spool_close(s);
}

static void test_unwritable_dir(void **state)
{
    (void)state;
    char err[SPOOL_ERR_BYTES];
    assert_null(spool_open("/proc/patchbay-cannot-exist", err, sizeof(err)));
    assert_non_null(strstr(err, "cannot create"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_in_order_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_stops_the_valid_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_that_stops_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_is_an_error_and_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
