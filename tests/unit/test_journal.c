/*
 * test_journal.c -- the monolith's journal (host/journal.c) on its own:
 * records read back as written, a torn tail and a flipped byte cut at the
 * last good record with a log line, segments rolling, the latest-only topic
 * keeping one segment, delivery of written records in order on an event
 * loop, seeks, and delivery positions kept across a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arb/plugin.h>

#include "config.h"
#include "journal.h"

static char dir[256];
static char logbuf[8192];

static void capture(void *user, int level, const char *msg)
{
    (void)user, (void)level;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof logbuf - n, "%s\n", msg);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-test-journal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    logbuf[0] = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A journal in dir/var/j (neither exists yet: the journal makes its parents,
 * as a fresh clone's var/journal needs) with extra [bus] lines; opened,
 * writer running. */
static arbh_journal *open_journal(arbh_config *cfg, const char *extra, bool fresh)
{
    char text[1024];
    snprintf(text, sizeof text, "[bus]\njournal = %s/var/j\njournal_topics = t, snap\n%s", dir,
             extra ? extra : "");
    assert_int_equal(arbh_config_load_string(cfg, "test.ini", text, NULL, 0), 0);
    arbh_journal *j = NULL;
    char err[512] = "";
    assert_int_equal(arbh_journal_new(cfg, capture, NULL, &j, err, sizeof err), ARB_OK);
    assert_non_null(j);
    assert_int_equal(arbh_journal_open(j, fresh, err, sizeof err), ARB_OK);
    return j;
}

static void close_journal(arbh_journal *j, arbh_config *cfg)
{
    arbh_journal_free(j);
    arbh_config_free(cfg);
}

static void put(arbh_journal *j, const char *topic, int i)
{
    char rec[64];
    int n = snprintf(rec, sizeof rec, "record %d of %s", i, topic);
    assert_int_equal(arbh_journal_produce(j, topic, (uint64_t)i * 7, rec, (size_t)n), ARB_OK);
}

typedef struct seen {
    int n;
    int64_t first, last;
    int bad;
} seen;

static int check_rec(void *user, const void *bytes, size_t len, uint64_t key, int64_t offset)
{
    seen *s = user;
    char want[64];
    int n = snprintf(want, sizeof want, "record %lld of t", (long long)offset);
    if ((size_t)n != len || memcmp(want, bytes, len) || key != (uint64_t)offset * 7)
        s->bad++;
    if (!s->n)
        s->first = offset;
    s->last = offset;
    s->n++;
    return ARB_OK;
}

/* Stop writes and syncs everything appended. */
static void fill(int n, const char *extra)
{
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, extra, true);
    for (int i = 0; i < n; i++)
        put(j, "t", i);
    arbh_journal_stop(j);
    close_journal(j, &cfg);
}

static void segment_path(char *out, size_t n, int64_t base)
{
    snprintf(out, n, "%s/var/j/t/%020lld.log", dir, (long long)base);
}

static void records_read_back_as_written(void **state)
{
    (void)state;
    fill(1000, NULL);
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, NULL, false);
    int64_t lo, hi;
    assert_int_equal(arbh_journal_watermarks(j, "t", 0, &lo, &hi), ARB_OK);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 1000);
    seen s = {0};
    assert_int_equal(arbh_journal_read_range(j, "t", 0, 250, 260, check_rec, &s), ARB_OK);
    assert_int_equal(s.n, 10);
    assert_int_equal(s.first, 250);
    assert_int_equal(s.bad, 0);
    void *b;
    size_t len;
    int64_t off;
    assert_int_equal(arbh_journal_read_last(j, "t", 0, &b, &len, &off), ARB_OK);
    assert_int_equal(off, 999);
    assert_memory_equal(b, "record 999 of t", len);
    free(b);
    assert_int_equal(arbh_journal_read_last(j, "snap", 0, &b, &len, &off), ARB_ENOENT);
    assert_int_equal(arbh_journal_watermarks(j, "t", 1, &lo, &hi), ARB_ENOENT);
    assert_int_equal(arbh_journal_watermarks(j, "nope", 0, &lo, &hi), ARB_ENOENT);
    assert_null(strstr(logbuf, "cut"));
    close_journal(j, &cfg);
}

static void torn_tail_is_cut_at_the_last_whole_record(void **state)
{
    (void)state;
    fill(100, NULL);
    char path[512];
    segment_path(path, sizeof path, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* kill -9 in the middle of a write: the last record is half there */
    assert_int_equal(truncate(path, st.st_size - 5), 0);
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, NULL, false);
    int64_t lo, hi;
    assert_int_equal(arbh_journal_watermarks(j, "t", 0, &lo, &hi), ARB_OK);
    assert_int_equal(hi, 99);
    assert_non_null(strstr(logbuf, "a torn record at offset 99"));
    /* the record is 24 + len("record 99 of t") = 38 bytes; 33 were there */
    assert_non_null(strstr(logbuf, "cut 33 bytes"));
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, st.st_size - 38);
    /* appending continues at the cut */
    put(j, "t", 99);
    arbh_journal_stop(j);
    close_journal(j, &cfg);
    logbuf[0] = 0;
    j = open_journal(&cfg, NULL, false);
    seen s = {0};
    assert_int_equal(arbh_journal_read_range(j, "t", 0, 0, -1, check_rec, &s), ARB_OK);
    assert_int_equal(s.n, 100);
    assert_int_equal(s.bad, 0);
    assert_null(strstr(logbuf, "cut"));
    close_journal(j, &cfg);
}

static void flipped_byte_cuts_at_the_damaged_record(void **state)
{
    (void)state;
    fill(100, NULL);
    char path[512];
    segment_path(path, sizeof path, 0);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    /* records 0..9 are 37 bytes each ("record N of t"), 10.. are 38: byte
     * 30 of record 40 is in its data */
    long at = 10 * 37 + 30 * 38 + 30;
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, at, SEEK_SET), 0);
    fputc(c ^ 0x10, f);
    fclose(f);
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, NULL, false);
    int64_t lo, hi;
    assert_int_equal(arbh_journal_watermarks(j, "t", 0, &lo, &hi), ARB_OK);
    assert_int_equal(hi, 40);
    assert_non_null(strstr(logbuf, "a checksum mismatch at offset 40"));
    assert_non_null(strstr(logbuf, "cut 2280 bytes")); /* records 40..99, 38 each */
    close_journal(j, &cfg);
}

static void damage_in_an_early_segment_removes_the_later_ones(void **state)
{
    (void)state;
    /* Each open starts a new segment: five of 1000 records. */
    for (int round = 0; round < 5; round++) {
        arbh_config cfg;
        arbh_journal *j = open_journal(&cfg, NULL, round == 0);
        for (int i = 0; i < 1000; i++)
            put(j, "t", round * 1000 + i);
        arbh_journal_stop(j);
        close_journal(j, &cfg);
    }
    char first[512], later[512];
    segment_path(first, sizeof first, 0);
    segment_path(later, sizeof later, 3000);
    assert_int_equal(access(later, F_OK), 0);
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, NULL, false);
    int64_t lo, hi;
    assert_int_equal(arbh_journal_watermarks(j, "t", 0, &lo, &hi), ARB_OK);
    assert_int_equal(hi, 5000);
    seen s = {0};
    assert_int_equal(arbh_journal_read_range(j, "t", 0, 0, -1, check_rec, &s), ARB_OK);
    assert_int_equal(s.n, 5000);
    assert_int_equal(s.bad, 0);
    close_journal(j, &cfg);
    struct stat st;
    assert_int_equal(stat(first, &st), 0);
    assert_int_equal(truncate(first, st.st_size - 1), 0);
    logbuf[0] = 0;
    j = open_journal(&cfg, NULL, false);
    assert_int_equal(arbh_journal_watermarks(j, "t", 0, &lo, &hi), ARB_OK);
    assert_int_equal(hi, 999);
    assert_non_null(strstr(logbuf, "a torn record at offset 999"));
    assert_int_not_equal(access(later, F_OK), 0);
    close_journal(j, &cfg);
}

static void latest_only_topic_keeps_one_segment(void **state)
{
    (void)state;
    arbh_config cfg;
    arbh_journal *j =
        open_journal(&cfg, "journal_segment_bytes = 64K\njournal_latest_only = snap\n", true);
    char big[8192];
    memset(big, 's', sizeof big);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(arbh_journal_produce(j, "snap", 1, big, sizeof big), ARB_OK);
        if (i % 10 == 9) /* let the writer take each batch: segments roll between them */
            arbh_journal_stop(j), close_journal(j, &cfg),
                j = open_journal(&cfg, "journal_segment_bytes = 64K\njournal_latest_only = snap\n",
                                 false);
    }
    arbh_journal_stop(j);
    int64_t lo, hi;
    assert_int_equal(arbh_journal_watermarks(j, "snap", 0, &lo, &hi), ARB_OK);
    assert_int_equal(hi, 100);
    assert_true(lo > 0);
    void *b;
    size_t len;
    int64_t off;
    assert_int_equal(arbh_journal_read_last(j, "snap", 0, &b, &len, &off), ARB_OK);
    assert_int_equal(off, 99);
    assert_int_equal(len, sizeof big);
    free(b);
    close_journal(j, &cfg);
}

/* ---- delivery ---- */

typedef struct sink {
    int64_t next; /* the offset expected next */
    int n, bad, refuse_at;
    void (*pending[64])(void *);
    void *tokens[64];
} sink;

static int deliver(void *user, const char *topic, int32_t partition, int64_t offset, uint64_t key,
                   const void *data, size_t len, void (*done)(void *token), void *token)
{
    sink *s = user;
    (void)key, (void)data, (void)len;
    if (strcmp(topic, "t") || partition != 0)
        s->bad++;
    if (s->refuse_at && s->n == s->refuse_at) {
        s->refuse_at = 0;
        return ARB_EFULL; /* offered again, in order */
    }
    if (offset != s->next)
        s->bad++;
    s->next = offset + 1;
    s->n++;
    done(token);
    return ARB_OK;
}

static void run_until(struct event_base *base, sink *s, int n)
{
    for (int spins = 0; s->n < n && spins < 20000; spins++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(100);
}

static void written_records_are_delivered_in_order_and_positions_kept(void **state)
{
    (void)state;
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, NULL, true);
    struct event_base *base = event_base_new();
    sink s = {.refuse_at = 37};
    assert_int_equal(arbh_journal_want(j, "t"), ARB_OK);
    assert_int_equal(arbh_journal_start(j, base, deliver, &s), ARB_OK);
    for (int i = 0; i < 300; i++)
        put(j, "t", i);
    run_until(base, &s, 300);
    assert_int_equal(s.n, 300);
    assert_int_equal(s.bad, 0);
    arbh_journal_stop(j);
    close_journal(j, &cfg);
    event_base_free(base);

    /* reopened: delivery resumes after what was handled */
    base = event_base_new();
    j = open_journal(&cfg, NULL, false);
    for (int i = 300; i < 310; i++)
        put(j, "t", i);
    sink again = {.next = 300};
    assert_int_equal(arbh_journal_want(j, "t"), ARB_OK);
    assert_int_equal(arbh_journal_start(j, base, deliver, &again), ARB_OK);
    run_until(base, &again, 10);
    assert_int_equal(again.n, 10);
    assert_int_equal(again.bad, 0);
    /* a seek back replays from there */
    again.next = 5;
    assert_int_equal(arbh_journal_seek(j, "t", 0, 5), ARB_OK);
    run_until(base, &again, 10 + 305);
    assert_int_equal(again.n, 315);
    assert_int_equal(again.bad, 0);
    assert_int_equal(arbh_journal_seek(j, "t", 1, 5), ARB_EINVAL);
    assert_int_equal(arbh_journal_seek(j, "nope", 0, 5), ARB_ENOENT);
    arbh_journal_stop(j);
    assert_int_equal(arbh_journal_produce(j, "t", 0, "x", 1), ARB_ESTATE);
    close_journal(j, &cfg);
    event_base_free(base);
}

/* Delivery for `ms` milliseconds of loop 0 (the commit timer applies trims). */
static void spin(struct event_base *base, int ms)
{
    for (int i = 0; i < ms * 10; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(100);
}

static int64_t low_mark(arbh_journal *j)
{
    int64_t lo, hi;
    assert_int_equal(arbh_journal_watermarks(j, "t", 0, &lo, &hi), ARB_OK);
    return lo;
}

/* Waits up to 5 s for the low watermark to pass `above`. */
static int64_t wait_low_mark(arbh_journal *j, struct event_base *base, int64_t above)
{
    for (int i = 0; i < 500 && low_mark(j) <= above; i++)
        spin(base, 10);
    return low_mark(j);
}

static void trimmed_topic_loses_only_what_every_trimmer_covered(void **state)
{
    (void)state;
    const char *extra = "journal_segment_bytes = 64K\njournal_trim = t\n";
    arbh_config cfg;
    arbh_journal *j = open_journal(&cfg, extra, true);
    struct event_base *base = event_base_new();
    sink s = {0};
    assert_int_equal(arbh_journal_want(j, "t"), ARB_OK);
    assert_int_equal(arbh_journal_start(j, base, deliver, &s), ARB_OK);
    /* batches the writer takes one by one: the segment rolls between them */
    for (int b = 0; b < 8; b++) {
        for (int i = 0; i < 1000; i++)
            put(j, "t", b * 1000 + i);
        run_until(base, &s, (b + 1) * 1000);
    }
    assert_int_equal(s.n, 8000);
    assert_int_equal(s.bad, 0);

    /* two trimmers: the lower mark holds */
    assert_int_equal(arbh_journal_trim(j, "t", 0, "a", 6000), ARB_OK);
    assert_int_equal(arbh_journal_trim(j, "t", 0, "b", 2500), ARB_OK);
    int64_t lo = wait_low_mark(j, base, 0);
    assert_true(lo > 0 && lo <= 2500);
    assert_non_null(strstr(logbuf, "journal: t: "));
    assert_non_null(strstr(logbuf, "below offset"));
    assert_int_equal(arbh_journal_trim(j, "t", 0, "b", 7000), ARB_OK);
    lo = wait_low_mark(j, base, lo);
    assert_true(lo > 2500 && lo <= 6000);
    /* what is left reads back whole and in sequence */
    seen r = {0};
    assert_int_equal(arbh_journal_read_range(j, "t", 0, lo, -1, check_rec, &r), ARB_OK);
    assert_int_equal(r.first, lo);
    assert_int_equal(r.last, 7999);
    assert_int_equal(r.n, 8000 - lo);
    assert_int_equal(r.bad, 0);
    assert_int_equal(arbh_journal_trim(j, "nope", 0, "a", 1), ARB_ENOENT);
    assert_int_equal(arbh_journal_trim(j, "snap", 0, "a", 1), ARB_OK); /* not trimmable */
    arbh_journal_stop(j);
    close_journal(j, &cfg);
    event_base_free(base);

    /* reopened: it starts where the trim left it, and nothing is cut */
    logbuf[0] = 0;
    j = open_journal(&cfg, extra, false);
    assert_int_equal(low_mark(j), lo);
    assert_null(strstr(logbuf, "cut"));
    seen again = {0};
    assert_int_equal(arbh_journal_read_range(j, "t", 0, lo, -1, check_rec, &again), ARB_OK);
    assert_int_equal(again.n, 8000 - lo);
    assert_int_equal(again.bad, 0);
    arbh_journal_stop(j);
    close_journal(j, &cfg);
}

static void bad_settings_name_file_and_line(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "x.ini",
                                             "[bus]\njournal = /tmp/x\njournal_fsync = maybe\n",
                                             NULL, 0),
                     0);
    arbh_journal *j = NULL;
    char err[512] = "";
    assert_int_equal(arbh_journal_new(&cfg, capture, NULL, &j, err, sizeof err), ARB_EINVAL);
    assert_null(j);
    assert_non_null(strstr(err, "x.ini:3: [bus] journal_fsync: 'maybe'"));
    arbh_config_free(&cfg);
}

static void crc32c_matches_the_standard_check_value(void **state)
{
    (void)state;
    /* RFC 3720 B.4 and every CRC-32C implementation: "123456789" -> e3069283 */
    assert_int_equal(arbh_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(arbh_crc32c(arbh_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_matches_the_standard_check_value),
        cmocka_unit_test(bad_settings_name_file_and_line),
        cmocka_unit_test_setup_teardown(records_read_back_as_written, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_is_cut_at_the_last_whole_record, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_byte_cuts_at_the_damaged_record, setup, teardown),
        cmocka_unit_test_setup_teardown(damage_in_an_early_segment_removes_the_later_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(latest_only_topic_keeps_one_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(trimmed_topic_loses_only_what_every_trimmer_covered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(written_records_are_delivered_in_order_and_positions_kept,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
