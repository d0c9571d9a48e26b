/*
 * test_split_health.c -- the recorder host of the split system
 * (conf.d/split/recorder.ini, a process over the dev broker, with a matcher
 * host) while its database goes away under an order flow and comes back:
 * its /readyz says so within seconds, with the reason, and is ready again
 * once the database is; PostgreSQL then holds every trade exactly once.
 * The gateway side is in this process (tests/support/splitrig.h: crossing
 * pairs, one trade per pair). PostgreSQL from scripts/with-pg.sh (the binary
 * re-runs itself under it).
 *
 * The wait for the recorder host to be ready (the mock's consumer groups
 * settling) is the only TIMING wait; the trades arriving, catching up after
 * the outage, the health answers (within a bound) and the table's contents
 * are plain assertions, never retried.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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
#include "timing.h"

#define ORDERS 2000
#define FIRST 400
#define ID_BASE (7ull << 40)
#define SHOWS_WITHIN_NS (10 * RIG_SEC)

static char dir[64];

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

static pid_t start_service(const char *conf, const char *id, int admin_port)
{
    char log[128], idset[64], admin[64];
    snprintf(log, sizeof log, "%s/%s.log", dir, id);
    snprintf(idset, sizeof idset, "host.id=%s", id);
    snprintf(admin, sizeof admin, "host.admin=127.0.0.1:%d", admin_port);
    const char *const sets[] = {idset,
                                admin,
                                "host.announce_ms=0",
                                "recorder.batch_rows=100",
                                "recorder.high_water_rows=200",
                                "recorder.low_water_rows=50",
                                NULL};
    if (strcmp(id, "recorder")) {
        const char *const plain[] = {idset, admin, "host.announce_ms=0", NULL};
        return rig_host(conf, log, plain);
    }
    return rig_host(conf, log, sets);
}

static void pg_ctl(const char *action)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "pg_ctlcluster %s %s %s > /dev/null", getenv("ARB_PG_VERSION"),
             getenv("ARB_PG_CLUSTER"), action);
    assert_int_equal(system(cmd), 0);
}

typedef struct trades_wait {
    PGconn *db;
    long long want;
    int64_t next;
} trades_wait;

static int trades_stored(void *user)
{
    trades_wait *w = user;
    if (rig_mono_ns() < w->next)
        return 0;
    w->next = rig_mono_ns() + 100 * RIG_MS;
    return rig_trades(w->db) >= w->want;
}

/* Polls /readyz until `ready` (200) or not (503 whose body holds `what`),
 * pumping the gateway side, up to deadline: the last status. */
static int wait_readyz(testhost *h, int port, bool ready, const char *what, char *body, size_t cap,
                       int64_t deadline)
{
    int status = 0;
    for (;;) {
        status = rig_http_get(port, "/readyz", body, cap);
        if (ready ? status == 200 : status == 503 && strstr(body, what))
            return status;
        if (rig_mono_ns() >= deadline)
            return status;
        testhost_run(h, 50 * RIG_MS);
    }
}

static void recorder_is_not_ready_while_its_database_is_down_and_ready_after(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-health-XXXXXX");
    assert_non_null(mkdtemp(dir));
    PGconn *admin = rig_db(getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres");
    rig_sql(admin, "DROP DATABASE IF EXISTS arb_health");
    rig_sql(admin, "CREATE DATABASE arb_health");
    PQfinish(admin);
    setenv("ARB_PG_DSN", "dbname=arb_health", 1);
    PGconn *db = rig_db("arb_health");

    rig_devbroker(dir, 4, NULL);
    start_service("conf.d/split/matcher.ini", "matcher", rig_free_port());
    int rport = rig_free_port();
    start_service("conf.d/split/recorder.ini", "recorder", rport);
    testhost *h = testhost_new("include = conf.d/split/common.ini\n[host]\nid = health-gateway\n"
                               "log_level = error\nannounce_ms = 0\n[bus]\n"
                               "group = arb-health-gateway\n"
                               "kafka_topics = order_commands,trade_executed\n");
    assert_non_null(h);
    assert_int_equal(testhost_start(h), ARB_OK);
    rig_side side;
    rig_side_init(&side, h, ORDERS, ID_BASE);

    /* Recording. */
    for (size_t i = 0; i < FIRST; i++)
        rig_publish(&side, i);
    /* The groups settling is the TIMING wait; once the recorder host is
     * ready, trades that never arrive are lost trades: a plain failure. */
    char body[8192];
    if (wait_readyz(h, rport, true, NULL, body, sizeof body, rig_mono_ns() + 120 * RIG_SEC) != 200)
        timing_fail("health: the recorder host never ready: %s\n", body);
    trades_wait w = {db, FIRST / 2, 0};
    if (!testhost_run_until(h, trades_stored, &w, 120 * RIG_SEC))
        fail_msg("health: %lld of %d first trades stored in 120 s (logs in %s)", rig_trades(db),
                 FIRST / 2, dir);
    PQfinish(db);

    /* The database goes away while orders flow: not ready, saying why. */
    pg_ctl("stop -m immediate");
    int64_t t0 = rig_mono_ns();
    for (size_t i = FIRST; i < ORDERS; i++)
        rig_publish(&side, i);
    int status =
        wait_readyz(h, rport, false, "instance recorder", body, sizeof body, t0 + SHOWS_WITHIN_NS);
    fprintf(stderr, "health: database stopped, /readyz %d after %.1f s: %s\n", status,
            (double)(rig_mono_ns() - t0) / 1e9, body);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "\"state\":\"degraded\""));
    assert_non_null(strstr(body, "instance recorder"));

    /* Back: ready again, and every trade stored once. */
    pg_ctl("start");
    t0 = rig_mono_ns();
    db = rig_db("arb_health");
    w = (trades_wait){db, ORDERS / 2, 0};
    /* Not a TIMING wait: the group has long settled, and trades that never
     * arrive are lost trades, which must fail the run the first time. */
    if (!testhost_run_until(h, trades_stored, &w, 120 * RIG_SEC))
        fail_msg("health: %lld of %d trades stored 120 s after the database came back (logs in "
                 "%s)",
                 rig_trades(db), ORDERS / 2, dir);
    status = wait_readyz(h, rport, true, NULL, body, sizeof body, rig_mono_ns() + 30 * RIG_SEC);
    fprintf(stderr, "health: database started, ready %.1f s later\n",
            (double)(rig_mono_ns() - t0) / 1e9);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "\"state\":\"ready\""));
    assert_int_equal(rig_trades(db), ORDERS / 2);
    assert_int_equal(rig_int(db, "SELECT count(DISTINCT trade_id) FROM trades"), ORDERS / 2);

    PQfinish(db);
    rig_side_free(&side);
    testhost_free(h);
    rig_stop_all();
    rig_clean_dir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rig_with_pg();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(recorder_is_not_ready_while_its_database_is_down_and_ready_after,
                                  kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
