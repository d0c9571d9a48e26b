/*
 * test_split_runs.c -- two runs of the split system into one database, each
 * on a fresh dev broker, as `make run-split` twice would do: arb-devbroker,
 * a matcher host and a recorder host as processes (conf.d/split/), the
 * gateway side in this process (tests/support/splitrig.h: crossing pairs,
 * one trade per pair, the same order ids in both runs).
 *
 * A broker that lost its history is a new run (the hosts agree on it through
 * arb_runs), so the second run's rows, whose trade and order ids repeat the
 * first run's, are stored beside them under their own run, nothing dropped;
 * the runs table has both, the first ended when the second began. Nothing
 * here is retried: a failure is lost or doubled data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "splitrig.h"

#define ORDERS 400
#define ID_BASE (5ull << 40)

static char dir[64];

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

static pid_t start_service(const char *conf, const char *id, int run)
{
    char log[128], idset[64];
    snprintf(log, sizeof log, "%s/%s-%d.log", dir, id, run);
    snprintf(idset, sizeof idset, "host.id=%s", id);
    const char *const sets[] = {idset, "host.admin=127.0.0.1:0", "host.log_level=info", NULL};
    return rig_host(conf, log, sets);
}

typedef struct wait_run {
    PGconn *db;
    int64_t next;
    long long runs; /* rows of the runs table with trades when done */
} wait_run;

/* As many runs as w->runs have every pair's trade and every order's fill. */
static int run_recorded(void *user)
{
    wait_run *w = user;
    if (rig_mono_ns() < w->next)
        return 0;
    w->next = rig_mono_ns() + 100 * RIG_MS;
    char trades[256], fills[256];
    snprintf(trades, sizeof trades,
             "SELECT count(*) FROM (SELECT run_id FROM trades GROUP BY run_id HAVING count(*) "
             ">= %d) x",
             ORDERS / 2);
    snprintf(fills, sizeof fills,
             "SELECT count(*) FROM (SELECT run_id FROM order_events WHERE kind = 'filled' GROUP "
             "BY run_id HAVING count(DISTINCT order_id) >= %d) x",
             ORDERS);
    return rig_int(w->db, trades) >= w->runs && rig_int(w->db, fills) >= w->runs;
}

static void one_run(PGconn *db, int run)
{
    char bdir[128];
    snprintf(bdir, sizeof bdir, "%s/broker-%d", dir, run);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", bdir);
    assert_int_equal(system(cmd), 0);
    pid_t broker = rig_devbroker(bdir, 4, NULL); /* a fresh broker: no history */
    pid_t matcher = start_service("conf.d/split/matcher.ini", "matcher", run);
    pid_t recorder = start_service("conf.d/split/recorder.ini", "recorder", run);
    testhost *h = testhost_new("include = conf.d/split/common.ini\n[host]\nid = runs-gateway\n"
                               "log_level = error\nannounce_ms = 0\n[bus]\n"
                               "group = arb-runs-gateway\n"
                               "kafka_topics = order_commands,trade_executed\n");
    assert_non_null(h);
    assert_int_equal(testhost_start(h), ARB_OK);
    rig_side side;
    rig_side_init(&side, h, ORDERS, ID_BASE); /* the same ids in both runs */
    for (size_t i = 0; i < ORDERS; i++)
        rig_publish(&side, i);
    wait_run w = {db, 0, run};
    if (!testhost_run_until(h, run_recorded, &w, 120 * RIG_SEC))
        fprintf(stderr, "runs: run %d not recorded in 120 s (logs in %s)\n", run, dir);
    rig_side_free(&side);
    testhost_free(h);
    /* Each host stops cleanly: drains, commits, leaves its group. */
    int st = rig_stop(recorder, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    st = rig_stop(matcher, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rig_stop(broker, SIGTERM);
}

static void two_runs_on_fresh_brokers_keep_both_whole(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-runs-XXXXXX");
    assert_non_null(mkdtemp(dir));
    PGconn *admin = rig_db(getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres");
    rig_sql(admin, "DROP DATABASE IF EXISTS arb_runs");
    rig_sql(admin, "CREATE DATABASE arb_runs");
    PQfinish(admin);
    setenv("ARB_PG_DSN", "dbname=arb_runs", 1);
    PGconn *db = rig_db("arb_runs");

    one_run(db, 1);
    one_run(db, 2);

    /* Two runs, each whole: every pair's trade and every order's fill once. */
    assert_int_equal(rig_int(db, "SELECT count(DISTINCT run_id) FROM trades"), 2);
    assert_int_equal(rig_int(db, "SELECT count(*) FROM (SELECT run_id FROM trades GROUP BY "
                                 "run_id HAVING count(*) = 200 AND count(DISTINCT trade_id) = "
                                 "200) x"),
                     2);
    assert_int_equal(rig_int(db, "SELECT count(*) FROM (SELECT run_id FROM order_events WHERE "
                                 "kind = 'filled' GROUP BY run_id HAVING count(*) = 400 AND "
                                 "count(DISTINCT order_id) = 400) x"),
                     2);
    /* The same trade ids in both runs (ids are unique within a run only). */
    assert_int_equal(rig_int(db, "SELECT count(*) FROM (SELECT trade_id FROM trades GROUP BY "
                                 "trade_id HAVING count(DISTINCT run_id) = 2) x"),
                     200);
    /* The runs table: both, the first ended when the second began. */
    assert_int_equal(rig_int(db, "SELECT count(*) FROM runs WHERE run_id <> 0"), 2);
    assert_int_equal(rig_int(db, "SELECT count(*) FROM runs WHERE run_id <> 0 AND ended_at IS "
                                 "NULL"),
                     1);
    assert_int_equal(rig_int(db, "SELECT count(*) FROM runs r WHERE ended_at IS NULL AND "
                                 "started_at = (SELECT max(started_at) FROM runs)"),
                     1);
    assert_int_equal(rig_int(db, "SELECT count(*) FROM runs WHERE run_id <> 0 AND "
                                 "config_digest IS NULL"),
                     0);
    /* Nothing skipped as a replay of the old run, nothing in conflict. */
    PQfinish(db);
    rig_clean_dir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rig_with_pg();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(two_runs_on_fresh_brokers_keep_both_whole, kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
