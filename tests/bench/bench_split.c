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
 *   split_raw_hop_*    the baseline, same broker and run: one record from a
 *                      bare librdkafka producer to a bare consumer with the
 *                      split system's settings (conf.d/split/common.ini), at
 *                      the same rate; an order's trade makes two such hops.
 *                      Measured after the split system's latency phase (the
 *                      broker otherwise idle), and split_loaded_hop_* during
 *                      it, from a thread of this process: the dev broker
 *                      serves every client from one thread, and at 10k
 *                      orders/s the split system's other records (commands,
 *                      order events, market data, the recorder's fetches)
 *                      wait with a hop's in that thread. That is the bound
 *                      the dev broker sets, measured in the same run.
 *   *_cpu_us_per_order the CPU time of the whole system per order in the
 *                      throughput phase, summed over its processes (this one,
 *                      and for the split the broker, matcher and recorder
 *                      hosts) and the PostgreSQL backends of its database,
 *                      from /proc; split_cpu_us_per_order_<part> each part
 *   *_cpu_bound_orders_per_s  what the machine's cores allow at that cost
 *                      (cores x 1 s / CPU time per order), and
 *                      *_orders_vs_cpu_bound the measured rate against it: on
 *                      two cores the split system's processes and PostgreSQL
 *                      share them, and that is the bound the cores set,
 *                      measured in the same run
 * Runs under a throwaway PostgreSQL (re-runs itself under scripts/with-pg.sh)
 * with a database per system. ARB_BENCH_ORDERS sets N (default 200000).
 * Not a test: `make bench` only.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "splitrig.h"

#define LAT_RATE 10000 /* orders/s in the latency phase */
#define LAT_SECONDS 3
/* Orders published and not yet recorded, at most: the dev broker keeps only
 * about 5 MiB per partition and evicts older records silently, so the
 * recorder must never fall that far behind. order_events is keyed by
 * account, and both accounts of these pairs land on partition 2: ~33k
 * events of ~160 bytes with their Kafka overhead, ~22k orders at 1.5 events
 * per order. A sustained rate, not a burst into the broker's memory; the
 * end of the run checks that no order's events were lost. */
#define WINDOW 20000

/* PostgreSQL's counts, read sparingly: count(*) of a table of a
 * few hundred thousand rows takes 5-20 ms of a backend, and read every
 * millisecond (as this benchmark once did) it kept a third of one of the two
 * cores counting. Read every 50 ms while more than NEAR trades are missing,
 * every 5 ms near the end, where the end time of the figure is taken.
 * Progress is read without counting (PROGRESS_SQL): count(*) every 5-50 ms
 * still cost the database 2-3 us of CPU per order, on the cores the system
 * under test shares, and more for the slower system (a longer phase). */
#define NEAR 5000

/* The trades so far without counting them: a book's trade ids are its id
 * << 40 plus 1, 2, 3, ... in the order it made them, and the recorder
 * commits a book's trades in that order (one partition of trade_executed),
 * so the largest id of each book, less its base, is that book's count. A few
 * index probes (a loose index scan over the books of the run) however many
 * rows: 0.6 ms against count(*)'s 17 ms at 230k rows. The run id goes in as
 * a literal, or the planner gives up the index. db_has_all confirms the end
 * with count(*). */
#define PROGRESS_SQL                                                                               \
    "WITH RECURSIVE b(hi) AS (SELECT (SELECT min(trade_id) >> 40 FROM trades WHERE run_id = %lld)" \
    " UNION ALL SELECT (SELECT min(trade_id) >> 40 FROM trades WHERE run_id = %lld"                \
    "  AND trade_id >= (b.hi + 1) << 40) FROM b WHERE b.hi IS NOT NULL)"                           \
    " SELECT coalesce(sum((SELECT max(trade_id) FROM trades WHERE run_id = %lld"                   \
    "  AND trade_id >= b.hi << 40 AND trade_id < (b.hi + 1) << 40) & 1099511627775), 0)"           \
    " FROM b WHERE b.hi IS NOT NULL"

/* A count PostgreSQL is waited on for: `sql` returns one integer. */
typedef struct wait_db {
    PGconn *db;
    const char *sql;
    long long want, have;
    int64_t next_poll;
    char progress[1024]; /* PROGRESS_SQL of the run, once sql points here */
} wait_db;

/* Reads progress with PROGRESS_SQL from here on (the run has a trade). */
static void use_progress(wait_db *w)
{
    long long run = rig_int(w->db, "SELECT max(run_id) FROM trades");
    snprintf(w->progress, sizeof w->progress, PROGRESS_SQL, run, run, run);
    w->sql = w->progress;
}

#define TRADES_SQL "SELECT count(*) FROM trades"
#define FILLED_SQL "SELECT count(DISTINCT order_id) FROM order_events WHERE kind = 'filled'"

static long long db_count(wait_db *w)
{
    int64_t now = rig_mono_ns();
    if (now >= w->next_poll) {
        w->have = rig_int(w->db, w->sql);
        w->next_poll = now + (w->want - w->have > NEAR ? 20 : 5) * RIG_MS;
    }
    return w->have;
}

static int db_has_all(void *user)
{
    wait_db *w = user;
    if (db_count(w) < w->want)
        return 0;
    if (w->sql != w->progress)
        return 1;
    /* The end, counted: should the ids ever have a gap, count from here on. */
    w->have = rig_int(w->db, TRADES_SQL);
    if (w->have >= w->want)
        return 1;
    w->sql = TRADES_SQL;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double last_p50_us, last_rate; /* of the last run_workload */

/* ---- CPU time of the system under test ---- */

/* The processes of the system besides this one (the split's hosts and
 * broker), and a name for each. */
enum { MAX_PARTS = 8 };
static struct part {
    const char *name;
    pid_t pid;
} parts[MAX_PARTS];
static int nparts;

/* A process's CPU time so far (user + system), in seconds; 0 if it is gone. */
static double proc_cpu(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* after ") ": state, then fields 4..13; utime and stime are 14 and 15 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU time of every part of the system: this process, the parts, and
 * the PostgreSQL backends of `db`'s database (their pids read once, at the
 * start: the recorder's connection is made in the warm-up). */
typedef struct cpu_mark {
    double self, part[MAX_PARTS], pg;
    pid_t pg_pid[16];
    int npg;
} cpu_mark;

static double self_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cpu_take(cpu_mark *m, PGconn *db, const cpu_mark *pids_from)
{
    if (pids_from) {
        memcpy(m->pg_pid, pids_from->pg_pid, sizeof m->pg_pid);
        m->npg = pids_from->npg;
    } else {
        PGresult *r = PQexec(db, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                 "current_database()");
        m->npg = 0;
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && i < 16; i++)
            m->pg_pid[m->npg++] = (pid_t)atoi(PQgetvalue(r, i, 0));
        PQclear(r);
    }
    m->self = self_cpu();
    for (int i = 0; i < nparts; i++)
        m->part[i] = proc_cpu(parts[i].pid);
    m->pg = 0;
    for (int i = 0; i < m->npg; i++)
        m->pg += proc_cpu(m->pg_pid[i]);
}

/* Prints the CPU figures of a throughput phase of n orders at `rate`. */
static void cpu_report(const char *name, const cpu_mark *a, const cpu_mark *b, size_t n,
                       double rate)
{
    double us = 1e6 / (double)n, total = (b->self - a->self) + (b->pg - a->pg);
    for (int i = 0; i < nparts; i++)
        total += b->part[i] - a->part[i];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double bound = (double)cores * (double)n / total;
    printf("bench: %s_cpu_us_per_order %.1f us\n", name, total * us);
    if (nparts) {
        printf("bench: %s_cpu_us_per_order_gateway_side %.1f us\n", name, (b->self - a->self) * us);
        for (int i = 0; i < nparts; i++)
            printf("bench: %s_cpu_us_per_order_%s %.1f us\n", name, parts[i].name,
                   (b->part[i] - a->part[i]) * us);
    }
    printf("bench: %s_cpu_us_per_order_postgres %.1f us\n", name, (b->pg - a->pg) * us);
    printf("bench: %s_cpu_bound_orders_per_s %.0f orders/s\n", name, bound);
    printf("bench: %s_orders_vs_cpu_bound %.2f ratio\n", name, rate / bound);
}

/* Outside the timed parts: every order's fill is in PostgreSQL. A figure
 * from a run where the dev broker evicted records before the recorder read
 * them (see WINDOW) would measure less work than it claims. */
static void check_nothing_lost(rig_side *s, const char *name, PGconn *db, size_t orders)
{
    wait_db w = {.db = db, .sql = FILLED_SQL, .want = (long long)orders};
    if (!testhost_run_until(s->h, db_has_all, &w, 30 * RIG_SEC)) {
        fprintf(stderr, "%s: %lld of %zu orders have their fill in PostgreSQL\n", name, w.have,
                orders);
        rig_die(name, "order events were lost (evicted by the dev broker before the recorder "
                      "read them?): no figure from this run");
    }
}

/* Throughput then latency on one system; prints its bench: lines. */
/* One raw-hop measurement: after its warm-up it says ready and waits for go. */
typedef struct hop_run {
    const char *brokers, *name;
    atomic_int ready, go;
    double p50;
} hop_run;

static double raw_hop(hop_run *r);

static void *raw_hop_thread(void *arg)
{
    raw_hop(arg);
    return NULL;
}

/* loaded: a raw hop measured on a thread of its own during the latency
 * phase (NULL: none). */
static void run_workload(rig_side *s, const char *name, PGconn *db, size_t n, hop_run *loaded)
{
    /* Warm up: the first group join and the recorder's schema. */
    wait_db w = {.db = db, .sql = TRADES_SQL, .want = 1};
    rig_publish(s, 0);
    rig_publish(s, 1);
    if (!testhost_run_until(s->h, db_has_all, &w, 60 * RIG_SEC))
        rig_die(name, "the first trade never reached PostgreSQL");
    use_progress(&w);
    long long before = rig_int(db, TRADES_SQL);
    w.want = before + (long long)n / 2;

    cpu_mark c0, c1;
    cpu_take(&c0, db, NULL);
    int64_t t0 = rig_mono_ns();
    for (size_t i = 2; i < 2 + n; i++) {
        rig_publish(s, i);
        if ((i & 1023) == 0)
            testhost_run(s->h, 0);
        while ((long long)(i / 2) - (db_count(&w) - before) > WINDOW / 2)
            testhost_run(s->h, RIG_MS);
    }
    if (!testhost_run_until(s->h, db_has_all, &w, 300 * RIG_SEC))
        rig_die(name, "not every trade reached PostgreSQL within 300 s");
    double secs = (double)(rig_mono_ns() - t0) / RIG_SEC;
    cpu_take(&c1, db, &c0);
    printf("bench: %s_orders_per_s %.0f orders/s\n", name, (double)n / secs);
    cpu_report(name, &c0, &c1, n, (double)n / secs);
    last_rate = (double)n / secs;

    /* Latency at a fixed rate: one order every 100 us, paced by the clock. */
    size_t base = 2 + n, m = (size_t)LAT_RATE * LAT_SECONDS;
    pthread_t hop_thread;
    if (loaded) {
        if (pthread_create(&hop_thread, NULL, raw_hop_thread, loaded))
            rig_die(name, "no thread for the loaded hop");
        while (!atomic_load(&loaded->ready))
            testhost_run(s->h, RIG_MS);
        atomic_store(&loaded->go, 1);
    }
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
    if (loaded)
        pthread_join(hop_thread, NULL);
    check_nothing_lost(s, name, db, 2 + n + m);
    if (s->nlat < m / 4)
        rig_die(name, "too few trades came back in the latency phase");
    qsort(s->lat, s->nlat, sizeof *s->lat, cmp_i64);
    last_p50_us = (double)s->lat[s->nlat / 2] / 1e3;
    printf("bench: %s_trade_p50 %.1f us\n", name, last_p50_us);
    printf("bench: %s_trade_p99 %.1f us\n", name, (double)s->lat[s->nlat * 99 / 100] / 1e3);
}

static void conf_or_die(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        rig_die(k, err);
}

static int pass_one(void *conf, const arbh_cfg_entry *e)
{
    conf_or_die(conf, e->key, e->value);
    return 0;
}

/* conf.d/split/common.ini's [kafka] section, then [kafka.<role>], into c. */
static void split_settings(rd_kafka_conf_t *c, const char *role)
{
    static const char *const files[] = {"conf.d/split/common.ini"};
    arbh_config cfg = {0};
    if (arbh_config_load(&cfg, files, 1, NULL, 0))
        rig_die("conf.d/split/common.ini", cfg.err);
    char section[32];
    snprintf(section, sizeof section, "kafka.%s", role);
    arbh_config_each(&cfg, "kafka", pass_one, c);
    arbh_config_each(&cfg, section, pass_one, c);
    arbh_config_free(&cfg);
}

/* One hop through the dev broker without any of our code, at LAT_RATE for
 * LAT_SECONDS: an idempotent producer and a group-less consumer with the
 * split system's own librdkafka settings (conf.d/split/common.ini).
 * Prints the p50/p99 and returns the p50 (us). */
static double raw_hop(hop_run *r)
{
    const char *brokers = r->brokers, *name = r->name;
    /* A topic of the dev broker's (4 partitions over its brokers, like
     * order_commands) that nothing in this benchmark reads or writes. */
    static const char topic[] = "market_events";
    rd_kafka_conf_t *pc = rd_kafka_conf_new(), *cc = rd_kafka_conf_new();
    conf_or_die(pc, "bootstrap.servers", brokers);
    conf_or_die(cc, "bootstrap.servers", brokers);
    split_settings(pc, "producer");
    split_settings(cc, "consumer");
    conf_or_die(pc, "enable.idempotence", "true");
    conf_or_die(cc, "group.id", name);
    char err[256];
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err);
    if (!p || !c)
        rig_die("raw hop", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int i = 0; i < 4; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(c, topic, i, &lo, &hi, 10000))
            rig_die("raw hop", "no offsets for market_events");
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = hi;
    }
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    /* Warm up: one record through each partition (connections, the
     * producer id, the consumer's first fetches). */
    int warm = 0;
    for (int i = 0; i < 4; i++) {
        int64_t none = -1;
        rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i),
                          RD_KAFKA_V_VALUE(&none, sizeof none),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    }
    for (int64_t until = rig_mono_ns() + 30 * RIG_SEC; warm < 4 && rig_mono_ns() < until;) {
        rd_kafka_poll(p, 0);
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 10);
        if (msg) {
            warm += !msg->err;
            rd_kafka_message_destroy(msg);
        }
    }
    if (warm < 4)
        rig_die("raw hop", "the warm-up records did not come back");
    atomic_store(&r->ready, 1);
    while (!atomic_load(&r->go)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    size_t m = (size_t)LAT_RATE * LAT_SECONDS, got = 0;
    int64_t *lat = calloc(m, sizeof *lat);
    if (!lat)
        rig_die("raw hop", "out of memory");
    int64_t start = rig_mono_ns();
    for (size_t k = 0; k < m || got < m;) {
        int64_t now = rig_mono_ns();
        if (k < m && now >= start + (int64_t)k * (RIG_SEC / LAT_RATE)) {
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(k % 4)),
                              RD_KAFKA_V_VALUE(&now, sizeof now),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            k++;
            continue;
        }
        if (k == m && now > start + (int64_t)(LAT_SECONDS + 10) * RIG_SEC)
            break;
        rd_kafka_poll(p, 0);
        rd_kafka_message_t *msg;
        while ((msg = rd_kafka_consumer_poll(c, 0))) { /* everything that is in */
            int64_t sent = -1;
            if (!msg->err && msg->len == sizeof sent)
                memcpy(&sent, msg->payload, sizeof sent);
            if (sent >= 0 && got < m)
                lat[got++] = rig_mono_ns() - sent;
            rd_kafka_message_destroy(msg);
        }
        /* Then sleep until the next send (the machine is shared: no spinning). */
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_flush(p, 5000);
    rd_kafka_destroy(p);
    if (got < m / 4)
        rig_die("raw hop", "too few records came back");
    qsort(lat, got, sizeof *lat, cmp_i64);
    double p50 = (double)lat[got / 2] / 1e3;
    printf("bench: %s_p50 %.1f us\n", name, p50);
    printf("bench: %s_p99 %.1f us\n", name, (double)lat[got * 99 / 100] / 1e3);
    free(lat);
    r->p50 = p50;
    return p50;
}

static void run_system(const char *name, const char *ini, const char *db, size_t n, size_t total,
                       uint64_t id_base, hop_run *loaded)
{
    testhost *h = testhost_new(ini);
    if (!h || testhost_start(h) != ARB_OK)
        rig_die(name, "the gateway-side host did not start");
    rig_side s;
    rig_side_init(&s, h, total, id_base);
    PGconn *c = rig_db(db);
    run_workload(&s, name, c, n, loaded);
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
               "bench_mono", n, total, 1ull << 40, NULL);

    double mono_rate = last_rate;

    /* The split system: broker, matcher and recorder processes. */
    if (system("mkdir -p var/bench-split && rm -f var/bench-split/*.log") != 0)
        rig_die("mkdir", "var/bench-split");
    pid_t broker = rig_devbroker("var/bench-split", 4, NULL);
    setenv("ARB_PG_DSN", "dbname=bench_split", 1);
    const char *const sets[] = {"host.log_level=warn", "host.admin=127.0.0.1:0", NULL};
    pid_t matcher = rig_host("conf.d/split/matcher.ini", "var/bench-split/matcher.log", sets);
    pid_t recorder = rig_host("conf.d/split/recorder.ini", "var/bench-split/recorder.log", sets);
    parts[nparts++] = (struct part){"broker", broker};
    parts[nparts++] = (struct part){"matcher", matcher};
    parts[nparts++] = (struct part){"recorder", recorder};
    hop_run loaded = {.brokers = getenv("ARB_BROKERS"), .name = "split_loaded_hop"};
    run_system("split",
               "include = conf.d/split/common.ini\n[host]\nid = bench-gateway\n"
               "log_level = warn\nannounce_ms = 0\n[bus]\ngroup = arb-bench-gateway\n"
               "kafka_topics = order_commands,trade_executed\n",
               "bench_split", n, total, 2ull << 40, &loaded);
    double split_p50 = last_p50_us;
    printf("bench: split_vs_monolith_orders %.2f ratio\n", last_rate / mono_rate);
    /* The baseline on the same broker, the split hosts still connected. */
    hop_run idle = {.brokers = getenv("ARB_BROKERS"), .name = "split_raw_hop", .go = 1};
    double hop = raw_hop(&idle);
    printf("bench: split_trade_p50_vs_two_raw_hops %.2f ratio\n", split_p50 / (2 * hop));
    printf("bench: split_trade_p50_vs_two_loaded_hops %.2f ratio\n", split_p50 / (2 * loaded.p50));
    rig_stop(matcher, SIGTERM);
    rig_stop(recorder, SIGTERM);
    rig_stop(broker, SIGTERM);
    PQfinish(admin);
    return 0;
}
