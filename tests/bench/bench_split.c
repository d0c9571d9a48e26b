/*
 * bench_split.c -- the split system end to end, beside the monolith on the
 * same workload: orders published on order_commands where the gateway would
 * publish them, matched, and their trades committed to PostgreSQL.
 *
 *   split:    build/arb-devbroker, a matcher host and a recorder host
 *             (conf.d/split/matcher.ini, recorder.ini) as processes; this
 *             process is the gateway side: a host with the Kafka transport
 *             that publishes order_commands and consumes trade_executed.
 *   monolith: matcher.so and recorder.so in this process (testhost), the
 *             same orders on the in-process bus.
 *
 * Workload: tests/support/splitrig.h's crossing pairs (one trade per pair).
 * Figures:
 *   *_orders_per_s     N orders from the first publish until every trade is
 *                      committed in PostgreSQL (count(*) of the trades table),
 *                      with at most WINDOW orders published and not recorded
 *   *_trade_p50/p99    order-to-trade latency at 10k orders/s: from the
 *                      publish of the crossing order to its trade arriving
 *                      back here on trade_executed
 * Runs under a throwaway PostgreSQL (re-runs itself under scripts/with-pg.sh)
 * with a database per system. ARB_BENCH_ORDERS sets N (default 200000).
 * Not a test: `make bench` only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "splitrig.h"

#define LAT_RATE 10000 /* orders/s in the latency phase */
#define LAT_SECONDS 3
/* Orders published and not yet recorded, at most: the dev broker keeps only
 * about 5 MiB per partition, so a consumer further behind would lose records
 * to eviction. A sustained rate, not a burst into the broker's memory. */
#define WINDOW 20000

typedef struct wait_db {
    PGconn *db;
    long long want;
    int64_t next_poll;
} wait_db;

static int db_has_all(void *user)
{
    wait_db *w = user;
    int64_t now = rig_mono_ns();
    if (now < w->next_poll)
        return 0;
    w->next_poll = now + 5 * RIG_MS;
    return rig_trades(w->db) >= w->want;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Throughput then latency on one system; prints its bench: lines. */
static void run_workload(rig_side *s, const char *name, PGconn *db, size_t n)
{
    /* Warm up: the first group join and the recorder's schema. */
    wait_db w = {db, 1, 0};
    rig_publish(s, 0);
    rig_publish(s, 1);
    if (!testhost_run_until(s->h, db_has_all, &w, 60 * RIG_SEC))
        rig_die(name, "the first trade never reached PostgreSQL");
    w.want = rig_trades(db);

    int64_t t0 = rig_mono_ns();
    long long recorded = w.want;
    for (size_t i = 2; i < 2 + n; i++) {
        rig_publish(s, i);
        if ((i & 1023) == 0)
            testhost_run(s->h, 0);
        while ((long long)(i / 2) - recorded > WINDOW / 2) {
            testhost_run(s->h, RIG_MS);
            recorded = rig_trades(db);
        }
    }
    w.want += (long long)n / 2;
    if (!testhost_run_until(s->h, db_has_all, &w, 300 * RIG_SEC))
        rig_die(name, "not every trade reached PostgreSQL within 300 s");
    double secs = (double)(rig_mono_ns() - t0) / RIG_SEC;
    printf("bench: %s_orders_per_s %.0f orders/s\n", name, (double)n / secs);

    /* Latency at a fixed rate: one order every 100 us, paced by the clock. */
    size_t base = 2 + n, m = (size_t)LAT_RATE * LAT_SECONDS;
    s->measuring = 1;
    s->nlat = 0;
    int64_t start = rig_mono_ns();
    for (size_t k = 0; k < m; k++) {
        int64_t due = start + (int64_t)k * (RIG_SEC / LAT_RATE);
        int64_t left = due - rig_mono_ns();
        if (left > 0) /* wait in the loop, not spinning: the machine is shared */
            testhost_run(s->h, left);
        rig_publish(s, base + k);
    }
    w.want += (long long)m / 2;
    testhost_run_until(s->h, db_has_all, &w, 60 * RIG_SEC);
    testhost_run(s->h, 50 * RIG_MS);
    s->measuring = 0;
    if (s->nlat < m / 4)
        rig_die(name, "too few trades came back in the latency phase");
    qsort(s->lat, s->nlat, sizeof *s->lat, cmp_i64);
    printf("bench: %s_trade_p50 %.1f us\n", name, (double)s->lat[s->nlat / 2] / 1e3);
    printf("bench: %s_trade_p99 %.1f us\n", name, (double)s->lat[s->nlat * 99 / 100] / 1e3);
}

static void run_system(const char *name, const char *ini, const char *db, size_t n, size_t total,
                       uint64_t id_base)
{
    testhost *h = testhost_new(ini);
    if (!h || testhost_start(h) != ARB_OK)
        rig_die(name, "the gateway-side host did not start");
    rig_side s;
    rig_side_init(&s, h, total, id_base);
    PGconn *c = rig_db(db);
    run_workload(&s, name, c, n);
    PQfinish(c);
    testhost_free(h);
    rig_side_free(&s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rig_with_pg();
    size_t n = 200000;
    if (getenv("ARB_BENCH_ORDERS"))
        n = strtoull(getenv("ARB_BENCH_ORDERS"), NULL, 10) & ~(size_t)1;
    size_t total = 2 + n + (size_t)LAT_RATE * LAT_SECONDS;

    PGconn *admin = rig_db(getenv("PGDATABASE") ? getenv("PGDATABASE") : "postgres");
    rig_sql(admin, "DROP DATABASE IF EXISTS bench_split");
    rig_sql(admin, "DROP DATABASE IF EXISTS bench_mono");
    rig_sql(admin, "CREATE DATABASE bench_split");
    rig_sql(admin, "CREATE DATABASE bench_mono");

    /* The monolith: everything in this process. */
    run_system("split_monolith",
               "include = conf.d/instruments.ini\n[host]\nlog_level = warn\nannounce_ms = 0\n"
               "[plugin matcher]\nload = matcher.so\n"
               "[plugin recorder]\nload = recorder.so\ndsn = dbname=bench_mono\nthread = 1\n",
               "bench_mono", n, total, 1ull << 40);

    /* The split system: broker, matcher and recorder processes. */
    if (system("mkdir -p var/bench-split && rm -f var/bench-split/*.log") != 0)
        rig_die("mkdir", "var/bench-split");
    pid_t broker = rig_devbroker("var/bench-split", NULL);
    setenv("ARB_PG_DSN", "dbname=bench_split", 1);
    const char *const sets[] = {"host.log_level=warn", "host.admin=127.0.0.1:0", NULL};
    pid_t matcher = rig_host("conf.d/split/matcher.ini", "var/bench-split/matcher.log", sets);
    pid_t recorder = rig_host("conf.d/split/recorder.ini", "var/bench-split/recorder.log", sets);
    run_system("split",
               "include = conf.d/split/common.ini\n[host]\nid = bench-gateway\n"
               "log_level = warn\nannounce_ms = 0\n[bus]\ngroup = arb-bench-gateway\n"
               "kafka_topics = order_commands,trade_executed\n",
               "bench_split", n, total, 2ull << 40);
    rig_stop(matcher, SIGTERM);
    rig_stop(recorder, SIGTERM);
    rig_stop(broker, SIGTERM);
    PQfinish(admin);
    return 0;
}
