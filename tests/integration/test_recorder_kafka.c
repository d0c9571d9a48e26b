/*
 * test_recorder_kafka.c -- the recorder resuming from its stored Kafka
 * positions: recorder.so in the real host with the Kafka transport over
 * librdkafka's mock cluster, PostgreSQL from a throwaway server
 * (scripts/with-pg.sh; the binary re-runs itself under it when started
 * plainly). Each test gets its own database, topic and consumer group.
 *
 * The crash: a recorder host takes records from Kafka while the database
 * will not finish its flushes (a lock held by the test), and goes away with
 * those rows only in memory. The transport has committed the group's offsets
 * past them (it commits what the recorder handled), so a recorder that
 * started from the group's offsets would never see them again. A new
 * recorder host in the same group must seek each partition to its stored
 * offset + 1: the table then holds exactly what was produced (count and
 * digest), and it read exactly the records the database lacked.
 * Not for the recorder's SQL or outage handling (test_recorder_pg.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <time.h>

#include "timing.h"
#include "../../plugins/recorder/pg_writer.h"
#include "arb/instrument.h"
#include "arb/wire.h"
#include "host.h"
#include "test_recorder_support.h"
#include "testhost.h"

#define MS 1000000LL
#define SEC 1000000000LL

static rd_kafka_mock_cluster_t *mock;
/* The run every host of a test belongs to (kafka_host). */
static char bootstrap[256];

static const char *const symbols[] = {"BTCUSD", "ETHUSD", "SOLUSD"};

static arb_trade make_trade(uint64_t i) { return rec_test_trade(i, symbols); }

static rec_scale scale_of(const arb_trade *t)
{
    (void)t;
    return (rec_scale){2, 3};
}

static const char instruments_ini[] =
    "[instrument XA:BTCUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XA:ETHUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XA:SOLUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XB:BTCUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XB:ETHUSD]\nprice_decimals = 2\nqty_decimals = 3\n"
    "[instrument XB:SOLUSD]\nprice_decimals = 2\nqty_decimals = 3\n";

static void assert_trades_exactly(PGconn *c, uint64_t n)
{
    arb_trade *t = malloc(n * sizeof *t);
    for (uint64_t i = 0; i < n; i++)
        t[i] = make_trade(i);
    assert_trades_table_holds(c, t, n, scale_of);
    free(t);
}

/* ---- hosts ---- */

static void ignore(void *user, const arb_msg *msg) { (void)user, (void)msg; }

static testhost *kafka_host(const char *id, const char *group, const char *prefix,
                            const char *plugin)
{
    char ini[4096];
    snprintf(ini, sizeof ini,
             "[host]\nid = %s\nlog_level = warn\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\nkafka_topics = trade_executed\n"
             "topic_prefix = %s\ngroup = %s\ncommit_interval_ms = 20\n"
             "[kafka.consumer]\nsession.timeout.ms = 3100\nheartbeat.interval.ms = 300\n%s%s",
             id, bootstrap, prefix, group, plugin, instruments_ini);
    testhost *t = testhost_new(ini);
    assert_non_null(t);
    /* Every host on this cluster (and prefix) agrees on one run through
     * arb_runs, also after a restart: these tests resume within it. */
    assert_int_equal(testhost_start(t), ARB_OK);
    return t;
}

/* A recorder that holds what the database will not take and writes nothing
 * at stop: its host going away is a crash as far as the rows are concerned. */
static testhost *recorder_host(const char *id, const char *db, const char *prefix,
                               const char *extra)
{
    char plugin[768], group[64];
    snprintf(group, sizeof group, "g-%srecorder", prefix);
    snprintf(plugin, sizeof plugin,
             "[plugin recorder]\nload = recorder.so\ndsn = dbname=%s\nbatch_rows = 100\n"
             "flush_interval_ms = 20\nbackoff_min_ms = 50\nbackoff_max_ms = 300\n"
             "drain_timeout_ms = 0\nrecord_order_events = false\n%s",
             db, extra);
    return kafka_host(id, group, prefix, plugin);
}

static void publish_trades(testhost *prod, uint64_t from, uint64_t to)
{
    arb_ctx *c = testhost_ctx(prod);
    uint8_t buf[ARB_TRADE_LEN];
    for (uint64_t i = from; i < to; i++) {
        arb_trade t = make_trade(i);
        uint32_t len = arb_trade_encode(&t, buf, sizeof buf);
        int rc;
        while ((rc = arb_publish(c, ARB_TOPIC_TRADE_EXECUTED, arb_instrument_key(t.venue, t.symbol),
                                 buf, len)) == ARB_EFULL)
            testhost_run(prod, 1 * MS);
        assert_int_equal(rc, ARB_OK);
    }
}

static uint64_t metric_value(testhost *t, int kind, const char *name, const char *labels)
{
    arbh_metric *m = arbh_metric_get(testhost_host(t), "recorder", kind, name, labels, NULL);
    assert_non_null(m);
    return kind == 'c' ? atomic_load(&m->u.counter.value)
                       : (uint64_t)atomic_load(&m->u.gauge.value);
}

static uint64_t received(testhost *t)
{
    return metric_value(t, 'c', "recorder_received_total", "topic=\"trade_executed\"");
}

typedef struct until {
    testhost *rec;
    uint64_t received, committed;
} until;

static int reached(void *user)
{
    until *u = user;
    return received(u->rec) >= u->received &&
           metric_value(u->rec, 'c', "recorder_rows_committed_total", "table=\"trades\"") >=
               u->committed;
}

/* Runs the producer's and the recorder's loops in turn until the recorder
 * received and committed that many rows. */
static int run_both(testhost *prod, testhost *rec, uint64_t want_received, uint64_t want_committed,
                    int64_t max_ns)
{
    until u = {rec, want_received, want_committed};
    int64_t deadline = rec_clock_ns() + max_ns;
    while (!reached(&u) && rec_clock_ns() < deadline) {
        testhost_run(prod, 2 * MS);
        testhost_run_until(rec, reached, &u, 50 * MS);
    }
    return reached(&u);
}

static void run_both_for(testhost *prod, testhost *rec, int64_t ns)
{
    int64_t deadline = rec_clock_ns() + ns;
    while (rec_clock_ns() < deadline) {
        testhost_run(prod, 2 * MS);
        testhost_run(rec, 20 * MS);
    }
}

/* ---- the crash and the resume ---- */

/* How the database keeps the first recorder's rows from being stored: its
 * flushes hang on a lock (one may complete on the server after the crash),
 * or they fail (a trigger refuses every insert). */
enum db_trouble { DB_STALLS, DB_REFUSES };

static void wait_db_up(testhost *rec)
{
    int64_t deadline = rec_clock_ns() + 20 * SEC;
    while (metric_value(rec, 'g', "recorder_db_up", NULL) != 1 && rec_clock_ns() < deadline)
        testhost_run(rec, 5 * MS);
    if (metric_value(rec, 'g', "recorder_db_up", NULL) != 1)
        timing_fail("the recorder's database was not up in 20 s");
}

static int paused(void *user) { return metric_value(user, 'g', "recorder_paused", NULL) == 1; }

static uint64_t inserted(testhost *t)
{
    return metric_value(t, 'c', "recorder_rows_inserted_total", "table=\"trades\"");
}

/* The second recorder starts while the database is down: its partitions are
 * assigned before it knows the stored positions, so it reads them from the
 * beginning, and pauses at its (small) high-water mark. When the database
 * answers it skips forward to the stored positions; rows it took twice are
 * stored once. */
static void resume_with_the_database_down(PGconn *c, testhost *prod, const char *db,
                                          const char *prefix, uint64_t n, uint64_t stored)
{
    PQfinish(c);
    pid_t stopper = pg_ctl_spawn("stop");
    while (!child_done(stopper))
        testhost_run(prod, 5 * MS);
    testhost *r2 =
        recorder_host("rk-rec-2", db, prefix, "high_water_rows = 100\nlow_water_rows = 50\n");
    int64_t deadline = rec_clock_ns() + 30 * SEC;
    while (!paused(r2) && rec_clock_ns() < deadline) {
        testhost_run(prod, 2 * MS);
        testhost_run_until(r2, paused, r2, 50 * MS);
    }
    assert_true(paused(r2));
    assert_int_equal(received(r2), 100);
    assert_true(stored > 100); /* so some partition is behind its stored position */
    pid_t starter = pg_ctl_spawn("start");
    while (!child_done(starter))
        run_both_for(prod, r2, 5 * MS);
    deadline = rec_clock_ns() + 60 * SEC;
    while (inserted(r2) < n - stored && rec_clock_ns() < deadline)
        run_both_for(prod, r2, 20 * MS);
    run_both_for(prod, r2, 200 * MS);
    assert_int_equal(inserted(r2), n - stored);
    assert_true(received(r2) >= n - stored);
    /* Three partitions from the beginning, then at least one forward. */
    assert_true(metric_value(r2, 'c', "recorder_kafka_seeks_total", NULL) >= 4);
    assert_int_equal(metric_value(r2, 'c', "recorder_kafka_missing_total", NULL), 0);
    assert_int_equal(metric_value(r2, 'g', "recorder_paused", NULL), 0);
    testhost_free(r2);
    testhost_free(prod);

    c = connect_db(db);
    assert_trades_exactly(c, n);
    assert_int_equal(q_int(c, "SELECT coalesce(sum(last_offset + 1), 0) FROM "
                              "recorder_kafka_offsets WHERE topic = 'trade_executed'"),
                     (long long)n);
    PQfinish(c);
}

/* One run: the first recorder stores `stored_before` rows of the first half
 * (0: none), then the database gives trouble while it takes the rest of the
 * half, and it goes away holding those rows. The second half is produced
 * and a second recorder of the same group finishes the job. */
static void crash_then_resume(const char *db, const char *prefix, uint64_t n,
                              uint64_t stored_before, enum db_trouble trouble, int down_at_restart)
{
    fresh_db(db);
    PGconn *c = connect_db(db);
    testhost *prod = kafka_host("rk-prod", "g-prod", prefix, "");
    /* The producer host reads the topic too (and ignores it): a Kafka host
     * that never had a record injected trips UBSan at stop (memmove from a
     * NULL in-flight array in host/bus.c arbh_bus_poll_done; reported). */
    assert_true(arb_subscribe(testhost_ctx(prod), ARB_TOPIC_TRADE_EXECUTED, ignore, NULL) > 0);
    testhost *r1 = recorder_host("rk-rec-1", db, prefix, "");
    wait_db_up(r1); /* the schema is there */
    PGconn *block = connect_db(db);
    /* The stored part first, all of it committed before the trouble starts
     * and before the rest is produced. */
    publish_trades(prod, 0, stored_before);
    if (stored_before)
        assert_true(run_both(prod, r1, stored_before, stored_before, 30 * SEC));
    if (trouble == DB_STALLS) {
        exec_ok(block, "BEGIN");
        exec_ok(block, "LOCK TABLE trades IN ACCESS EXCLUSIVE MODE");
    } else {
        exec_ok(block, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$; "
                       "CREATE TRIGGER refuse BEFORE INSERT ON trades "
                       "FOR EACH STATEMENT EXECUTE FUNCTION refuse()");
    }
    publish_trades(prod, stored_before, n / 2);
    assert_true(run_both(prod, r1, n / 2, 0, 30 * SEC));
    /* Long enough for the transport to commit the group's offsets. */
    run_both_for(prod, r1, 300 * MS);
    assert_int_equal(received(r1), n / 2);
    assert_true(metric_value(r1, 'g', "recorder_buffered_rows", NULL) > 0);
    testhost_free(r1); /* the crash: held rows are gone */
    if (trouble == DB_STALLS)
        exec_ok(block, "COMMIT");
    else
        exec_ok(block, "DROP TRIGGER refuse ON trades");
    PQfinish(block);
    wait_sessions_gone(c);
    uint64_t stored = (uint64_t)q_int(c, "SELECT count(*) FROM trades");
    assert_true(stored >= stored_before);
    assert_true(stored < n / 2);
    if (trouble == DB_REFUSES)
        assert_int_equal(stored, stored_before);
    /* The positions stored describe exactly the rows stored. */
    assert_int_equal(q_int(c, "SELECT coalesce(sum(last_offset + 1), 0) FROM "
                              "recorder_kafka_offsets WHERE topic = 'trade_executed'"),
                     (long long)stored);

    publish_trades(prod, n / 2, n);
    if (down_at_restart) {
        resume_with_the_database_down(c, prod, db, prefix, n, stored);
        return;
    }
    testhost *r2 = recorder_host("rk-rec-2", db, prefix, "");
    assert_true(run_both(prod, r2, n - stored, n - stored, 60 * SEC));
    run_both_for(prod, r2, 200 * MS);
    /* Exactly what the database lacked: not from the group's committed
     * offsets (fewer), not from the beginning (more). */
    assert_int_equal(received(r2), n - stored);
    assert_int_equal(metric_value(r2, 'c', "recorder_kafka_skipped_total", NULL), 0);
    assert_int_equal(metric_value(r2, 'c', "recorder_kafka_missing_total", NULL), 0);
    assert_true(metric_value(r2, 'c', "recorder_kafka_seeks_total", NULL) > 0);
    testhost_free(r2);
    testhost_free(prod);

    assert_trades_exactly(c, n);
    assert_int_equal(q_int(c, "SELECT coalesce(sum(last_offset + 1), 0) FROM "
                              "recorder_kafka_offsets WHERE topic = 'trade_executed'"),
                     (long long)n);
    PQfinish(c);
}

static uint64_t test_rows(void) { return 4000 / (uint64_t)scale_down(); }

static void crash_with_flushes_hanging_resumes_from_the_stored_offsets(void **state)
{
    (void)state;
    uint64_t n = test_rows();
    crash_then_resume("rec_kafka_stall", "stall.", n, n / 8, DB_STALLS, 0);
}

static void crash_with_flushes_failing_resumes_from_the_stored_offsets(void **state)
{
    (void)state;
    uint64_t n = test_rows();
    crash_then_resume("rec_kafka_fail", "fail.", n, n / 8, DB_REFUSES, 0);
}

static void crash_before_anything_was_stored_resumes_from_the_beginning(void **state)
{
    (void)state;
    crash_then_resume("rec_kafka_none", "none.", test_rows(), 0, DB_REFUSES, 0);
}

static void assigned_while_the_database_is_down_skips_forward_when_it_answers(void **state)
{
    (void)state;
    uint64_t n = test_rows();
    crash_then_resume("rec_kafka_down", "down.", n, n / 8, DB_REFUSES, 1);
}

/* A real crash: the first recorder is an arb-host process, killed with
 * SIGKILL while it takes the first half (whatever it held, mid-flush or
 * not, is gone, and the group's offsets are wherever its last commit left
 * them). What the database kept must be self-consistent (the stored offsets
 * cover exactly the stored rows), and the next recorder reads exactly the
 * rest. */
static void recorder_process_killed_mid_run_is_resumed_exactly(void **state)
{
    (void)state;
    const uint64_t n = test_rows();
    const char *db = "rec_kafka_kill", *prefix = "kill.";
    fresh_db(db);
    PGconn *c = connect_db(db);
    testhost *prod = kafka_host("rk-prod", "g-prod", prefix, "");
    assert_true(arb_subscribe(testhost_ctx(prod), ARB_TOPIC_TRADE_EXECUTED, ignore, NULL) > 0);

    char ini_path[] = "/tmp/test_recorder_kafka_XXXXXX";
    int fd = mkstemp(ini_path);
    assert_true(fd >= 0);
    FILE *ini = fdopen(fd, "w");
    fprintf(ini,
            "[host]\nid = rk-killed\nlog_level = error\nannounce_ms = 0\n"
            "[bus]\ntransport = kafka\nbrokers = %s\nkafka_topics = trade_executed\n"
            "topic_prefix = %s\ngroup = g-%srecorder\ncommit_interval_ms = 20\n"
            "[kafka.consumer]\nsession.timeout.ms = 3100\nheartbeat.interval.ms = 300\n"
            "[plugin recorder]\nload = recorder.so\ndsn = dbname=%s\nbatch_rows = 100\n"
            "flush_interval_ms = 20\nrecord_order_events = false\n%s",
            bootstrap, prefix, prefix, db, instruments_ini);
    fclose(ini);
    const char *b = getenv("ARB_BUILD");
    char exe[512];
    snprintf(exe, sizeof exe, "%s/arb-host", b && *b ? b : "build");
    char *argv[] = {exe, "-c", ini_path, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, exe, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    /* Produce while it records; kill it once a few batches are in. */
    uint64_t sent = 0;
    int64_t deadline = rec_clock_ns() + 30 * SEC;
    while (q_int(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'trades'") == 0 ||
           (uint64_t)q_int(c, "SELECT count(*) FROM trades") < n / 8) {
        assert_true(rec_clock_ns() < deadline);
        if (sent < n / 2) {
            publish_trades(prod, sent, sent + 50);
            sent += 50;
        }
        testhost_run(prod, 5 * MS);
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    unlink(ini_path);
    wait_sessions_gone(c);
    uint64_t stored = (uint64_t)q_int(c, "SELECT count(*) FROM trades");
    assert_int_equal(q_int(c, "SELECT coalesce(sum(last_offset + 1), 0) FROM "
                              "recorder_kafka_offsets WHERE topic = 'trade_executed'"),
                     (long long)stored);

    publish_trades(prod, sent, n);
    /* The new recorder resumes the killed one's run: both read it from the
     * cluster's arb_runs. */
    testhost *r2 = recorder_host("rk-rec-2", db, prefix, "");
    assert_true(run_both(prod, r2, n - stored, n - stored, 60 * SEC));
    run_both_for(prod, r2, 200 * MS);
    assert_int_equal(received(r2), n - stored);
    assert_int_equal(metric_value(r2, 'c', "recorder_kafka_skipped_total", NULL), 0);
    testhost_free(r2);
    testhost_free(prod);
    assert_trades_exactly(c, n);
    PQfinish(c);
}

static int setup(void **state)
{
    (void)state;
    mock = testhost_mock_new(1, bootstrap, sizeof bootstrap);
    if (!mock)
        return -1;
    /* Three partitions per run, each run under its own prefix. */
    rd_kafka_mock_topic_create(mock, "stall.trade_executed", 3, 1);
    rd_kafka_mock_topic_create(mock, "fail.trade_executed", 3, 1);
    rd_kafka_mock_topic_create(mock, "none.trade_executed", 3, 1);
    rd_kafka_mock_topic_create(mock, "down.trade_executed", 3, 1);
    rd_kafka_mock_topic_create(mock, "kill.trade_executed", 3, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testhost_mock_free(mock);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    rec_test_reexec_under_pg(argv[0]);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crash_with_flushes_hanging_resumes_from_the_stored_offsets),
        cmocka_unit_test(crash_with_flushes_failing_resumes_from_the_stored_offsets),
        cmocka_unit_test(crash_before_anything_was_stored_resumes_from_the_beginning),
        cmocka_unit_test(assigned_while_the_database_is_down_skips_forward_when_it_answers),
        cmocka_unit_test(recorder_process_killed_mid_run_is_resumed_exactly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
