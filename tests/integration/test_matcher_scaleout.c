/*
 * test_matcher_scaleout.c -- matcher scale-out end to end: real arb-host
 * processes running matcher.so against a real arb-devbroker (librdkafka's
 * mock cluster over loopback TCP), killed with SIGKILL and restarted while
 * input flows. The trades in Kafka must then equal exactly those of a
 * single-matcher run of the same input: same count, same digest, no trade
 * id twice; market data and order events too. The recorder
 * (as-is, into a throwaway PostgreSQL via scripts/with-pg.sh) must hold
 * exactly those trades.
 *
 * Not here: the matching rules (test_book*), the transport's own guarantees
 * (test_kafka*), PostgreSQL (the recorder's tests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arb/wire.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "splitrig.h"

#define PARTITIONS 4
#define INSTRUMENTS 8
#define GROUP "arb-matcher"
#define SNAP_TOPIC "matcher_snapshots"

#if defined(__SANITIZE_ADDRESS__)
#define COMMANDS 6000
#else
#define COMMANDS 16000
#endif
#define CHUNKS 80

static const char *B;
static char tmpdir[256];
static char instruments_ini[4096];
static char names[INSTRUMENTS][24]; /* "XA:S07" */
static int n_logs;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- processes (tests/support/splitrig: every child is reaped by teardown) ---- */

typedef struct devbroker {
    pid_t pid;
    char bootstrap[1024];
} devbroker;

static void devbroker_start(devbroker *d)
{
    const char *const topics[] = {"--topics", SNAP_TOPIC, NULL};
    d->pid = rig_devbroker(tmpdir, PARTITIONS, topics);
    snprintf(d->bootstrap, sizeof d->bootstrap, "%s", getenv("ARB_BROKERS"));
}

static void devbroker_stop(devbroker *d) { rig_stop(d->pid, SIGTERM); }

/* One matcher: an arb-host process with matcher.so in group GROUP. */
static pid_t matcher_start(const char *bootstrap, const char *id)
{
    char ini[8192], path[512], log[512], bin[1024];
    snprintf(ini, sizeof ini,
             "[host]\nid = %s\nlog_level = info\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\ngroup = " GROUP "\n"
             "kafka_topics = order_commands,order_events,trade_executed,market_data," SNAP_TOPIC
             "\ncommit_interval_ms = 50\n"
             "[kafka.consumer]\nsession.timeout.ms = 3000\nheartbeat.interval.ms = 300\n"
             "fetch.wait.max.ms = 20\n"
             "[plugin matcher]\nload = matcher.so\nstamp = command\nsnapshot_interval_ms = 300\n"
             "%s",
             id, bootstrap, instruments_ini);
    snprintf(path, sizeof path, "%s/%s.ini", tmpdir, id);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(ini, f);
    fclose(f);
    snprintf(log, sizeof log, "%s/%s.log", tmpdir, id);
    snprintf(bin, sizeof bin, "%s/arb-host", B);
    const char *argv[] = {bin, "-c", path, NULL};
    n_logs++;
    return rig_spawn(argv, log);
}

/* The recorder, as-is, into database `db`: it must end up holding exactly
 * the trades of the single-matcher run. */
static pid_t recorder_start(const char *bootstrap, const char *db)
{
    char ini[8192], path[512], log[512], bin[1024];
    snprintf(ini, sizeof ini,
             "[host]\nid = recorder\nlog_level = info\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\ngroup = arb-recorder\n"
             "kafka_topics = order_commands,order_events,trade_executed,market_data\n"
             "commit_interval_ms = 50\n[kafka.consumer]\nfetch.wait.max.ms = 20\n"
             "[plugin recorder]\nload = recorder.so\ndsn = dbname=%s\n%s",
             bootstrap, db, instruments_ini);
    snprintf(path, sizeof path, "%s/recorder.ini", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(ini, f);
    fclose(f);
    snprintf(log, sizeof log, "%s/recorder.log", tmpdir);
    snprintf(bin, sizeof bin, "%s/arb-host", B);
    const char *argv[] = {bin, "-c", path, NULL};
    return rig_spawn(argv, log);
}

static void matcher_kill(pid_t pid, int sig)
{
    int st = rig_stop(pid, sig);
    if (sig == SIGKILL)
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* ---- the input: crossing orders on INSTRUMENTS books over all partitions ---- */

static int partition_of(uint64_t key)
{
    uint8_t kb[8];
    for (int i = 0; i < 8; i++)
        kb[i] = (uint8_t)(key >> (8 * i));
    return rd_kafka_msg_partitioner_murmur2(NULL, kb, 8, PARTITIONS, NULL, NULL);
}

static uint64_t instrument_key(int i)
{
    char v[ARB_VENUE_LEN] = {0}, s[ARB_SYMBOL_LEN] = {0};
    memcpy(v, names[i], 2);
    snprintf(s, sizeof s, "%s", names[i] + 3);
    return arb_instrument_key(v, s);
}

/* Picks INSTRUMENTS names so that every partition has at least one book. */
static void choose_instruments(void)
{
    int per[PARTITIONS] = {0}, n = 0;
    for (int pass = 0; pass < 2 && n < INSTRUMENTS; pass++)
        for (int c = 0; c < 100 && n < INSTRUMENTS; c++) {
            char name[24];
            snprintf(name, sizeof name, "XA:S%02d", c);
            int dup = 0;
            for (int k = 0; k < n; k++)
                dup |= !strcmp(names[k], name);
            snprintf(names[n], sizeof names[n], "%s", name);
            int p = partition_of(instrument_key(n));
            /* First pass: fill the partitions evenly; second: anything. */
            if (!dup && (pass == 1 || per[p] < INSTRUMENTS / PARTITIONS)) {
                per[p]++;
                n++;
            }
        }
    assert_int_equal(n, INSTRUMENTS);
    for (int p = 0; p < PARTITIONS; p++)
        assert_true(per[p] > 0);
    size_t off = 0;
    for (int i = 0; i < INSTRUMENTS; i++)
        off += (size_t)snprintf(instruments_ini + off, sizeof instruments_ini - off,
                                "[instrument %s]\nprice_decimals = 2\ntick_size = 0.01\n"
                                "qty_decimals = 0\nlot_size = 1\nmin_qty = 1\nmax_qty = 1000\n"
                                "ref_price = 100.00\nband_bps = 5000\n",
                                names[i]);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static arb_order_cmd *make_input(void)
{
    arb_order_cmd *cmds = calloc(COMMANDS, sizeof *cmds);
    assert_non_null(cmds);
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < COMMANDS; i++) {
        arb_order_cmd *c = &cmds[i];
        int in = (int)(rnd() % INSTRUMENTS);
        memcpy(c->venue, names[in], 2);
        snprintf(c->symbol, sizeof c->symbol, "%s", names[in] + 3);
        c->account = 1 + rnd() % 40;
        c->ts = i + 1;
        c->client_ref = (uint64_t)i;
        if (i > 100 && rnd() % 10 == 0) { /* cancel an earlier order (maybe filled) */
            c->action = ARB_CMD_CANCEL;
            const arb_order_cmd *old = &cmds[rnd() % (uint64_t)i];
            c->order_id = old->order_id;
            c->account = old->account;
            memcpy(c->venue, old->venue, ARB_VENUE_LEN);
            memcpy(c->symbol, old->symbol, ARB_SYMBOL_LEN);
            continue;
        }
        c->action = ARB_CMD_NEW;
        c->order_id = (uint64_t)i + 1;
        c->side = rnd() % 2 ? ARB_SIDE_BUY : ARB_SIDE_SELL;
        c->type = ARB_ORD_LIMIT;
        c->tif = rnd() % 8 ? ARB_TIF_GTC : ARB_TIF_IOC;
        c->price = 10000 + (int64_t)(rnd() % 7) - 3; /* 99.97 .. 100.03: they cross */
        c->qty = 1 + (int64_t)(rnd() % 20);
    }
    return cmds;
}

static arbh_kafka *producer_new(const char *bootstrap)
{
    char ini[1024];
    snprintf(ini, sizeof ini, "[bus]\nbrokers = %s\nkafka_topics = order_commands\n", bootstrap);
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "test.ini", ini, NULL, 0), 0);
    arbh_kafka *k = NULL;
    char err[512] = "";
    int rc = arbh_kafka_new(&cfg, "scaleout-input", &k, err, sizeof err);
    if (rc)
        fprintf(stderr, "arbh_kafka_new: %s\n", err);
    assert_int_equal(rc, ARB_OK);
    arbh_config_free(&cfg);
    return k;
}

static void produce(arbh_kafka *k, const arb_order_cmd *cmds, int from, int to)
{
    uint8_t buf[ARB_ORDER_CMD_LEN];
    for (int i = from; i < to; i++) {
        uint32_t len = arb_order_cmd_encode(&cmds[i], buf, sizeof buf);
        assert_int_equal(arbh_kafka_produce(k, "order_commands",
                                            arb_instrument_key(cmds[i].venue, cmds[i].symbol), buf,
                                            len),
                         ARB_OK);
    }
}

/* Partitions of order_commands a matcher owns now, as its log tells. */
static int owned(const char *id)
{
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s.log", tmpdir, id);
    FILE *f = fopen(path, "r");
    int own[PARTITIONS] = {0}, n = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "] partition ");
        int part;
        char what[16];
        if (p && sscanf(p, "] partition %d %15s", &part, what) == 2 && part >= 0 &&
            part < PARTITIONS && (!strcmp(what, "assigned:") || !strcmp(what, "revoked")))
            own[part] = !strcmp(what, "assigned:");
    }
    if (f)
        fclose(f);
    for (int i = 0; i < PARTITIONS; i++)
        n += own[i];
    return n;
}

/* True when the live matchers `ids` own every partition, each some. */
static int settled(const char *const *ids)
{
    int sum = 0;
    for (; *ids; ids++) {
        int n = owned(*ids);
        if (n == 0)
            return 0;
        sum += n;
    }
    return sum == PARTITIONS;
}

/* The input, handed to Kafka one chunk at a time. */
typedef struct feeder {
    arbh_kafka *k;
    const arb_order_cmd *cmds;
    int next_chunk;
} feeder;

static void feed_chunk(feeder *f)
{
    if (f->next_chunk >= CHUNKS)
        return;
    int per = COMMANDS / CHUNKS, c = f->next_chunk++;
    produce(f->k, f->cmds, c * per, c == CHUNKS - 1 ? COMMANDS : (c + 1) * per);
}

static int64_t t0_ms;

/* Feeds up to `chunks` more chunks, one every 100 ms, and waits until the
 * live matchers `ids` (NULL: no condition) share all partitions. */
static void feed_until(feeder *f, const char *const *ids, int chunks, const char *step)
{
    int until = f->next_chunk + chunks;
    int64_t end = now_ms() + 45000;
    while ((ids && !settled(ids)) || (f->next_chunk < until && f->next_chunk < CHUNKS)) {
        if (now_ms() > end)
            fail_msg("the matchers did not settle in time (logs in %s)", tmpdir);
        if (f->next_chunk < until)
            feed_chunk(f);
        sleep_ms(100);
    }
    print_message("%6.1f s: %s (%d of %d chunks out)\n", (double)(now_ms() - t0_ms) / 1000, step,
                  f->next_chunk, CHUNKS);
}

/* ---- reading the outcome back from Kafka ---- */

/* The input offset the newest snapshot of a partition covers (the
 * matcher's snapshot record: "MSNP" | u32 | i32 partition | u32 | i64
 * offset ...), -1 if there is none yet. */
static int64_t snapshot_offset(rd_kafka_t *rk, int p)
{
    int64_t lo, hi, covered = -1;
    if (rd_kafka_query_watermark_offsets(rk, SNAP_TOPIC, p, &lo, &hi, 5000) || hi <= lo)
        return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, SNAP_TOPIC, p)->offset = hi - 1;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int64_t end = now_ms() + 5000;
    while (covered < 0 && now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err && m->len >= 24 && !memcmp(m->payload, "MSNP", 4))
            covered = arb_get_i64((const uint8_t *)m->payload + 16);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk, NULL);
    return covered;
}

static int64_t output_records(rd_kafka_t *rk)
{
    static const char *const topics[] = {"trade_executed", "order_events", "market_data"};
    int64_t n = 0;
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < PARTITIONS; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, topics[t], p, &lo, &hi, 5000))
                return -1;
            n += hi;
        }
    return n;
}

/* True once every partition's newest snapshot covers its last command (the
 * matchers applied the whole input and captured it after its output was
 * handed to the producer; snapshots go out one interval later) and no
 * output record was added for a second. Committed offsets would not do: a
 * partition sought to its end by a new owner delivers nothing to commit. */
static int input_all_done(rd_kafka_t *rk)
{
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(rk, "order_commands", p, &lo, &hi, 5000) ||
            snapshot_offset(rk, p) != hi - 1)
            return 0;
    }
    int64_t before = output_records(rk);
    sleep_ms(1000);
    return before >= 0 && output_records(rk) == before;
}

static void wait_input_done(const char *bootstrap, int max_ms)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "scaleout-watch", err, sizeof err);
    rd_kafka_conf_set(c, "fetch.wait.max.ms", "20", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    int64_t end = now_ms() + max_ms;
    int done = 0;
    while (!(done = input_all_done(rk)) && now_ms() < end)
        sleep_ms(200);
    rd_kafka_destroy(rk);
    if (!done)
        fail_msg("the matchers did not finish the input in %d ms (logs in %s)", max_ms, tmpdir);
}

/* One output record, identified as its consumers would dedupe it. */
typedef struct row {
    uint64_t k1, k2, k3;
    uint64_t hash; /* FNV-1a of the record's bytes */
} row;

typedef struct rows {
    row *v;
    size_t n, cap;
} rows;

typedef struct outcome {
    rows trades, events, md;
} outcome;

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void rows_add(rows *r, uint64_t k1, uint64_t k2, uint64_t k3, const void *bytes, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4096;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        assert_non_null(r->v);
    }
    r->v[r->n++] = (row){k1, k2, k3, fnv1a(bytes, len)};
}

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->k1 != y->k1)
        return x->k1 < y->k1 ? -1 : 1;
    if (x->k2 != y->k2)
        return x->k2 < y->k2 ? -1 : 1;
    if (x->k3 != y->k3)
        return x->k3 < y->k3 ? -1 : 1;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* Writes the rows to tmpdir/name (kept with the logs of a failed run). */
static void rows_dump(const rows *r, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    for (size_t i = 0; i < r->n; i++)
        fprintf(f, "%016llx %llu %llu %016llx\n", (unsigned long long)r->v[i].k1,
                (unsigned long long)r->v[i].k2, (unsigned long long)r->v[i].k3,
                (unsigned long long)r->v[i].hash);
    fclose(f);
}

typedef struct summary {
    size_t count;    /* records */
    size_t repeated; /* records whose identity came before */
    size_t distinct;
    uint64_t digest;          /* over every record, sorted */
    uint64_t distinct_digest; /* over the distinct ones */
} summary;

static summary summarize(rows *r)
{
    qsort(r->v, r->n, sizeof *r->v, row_cmp);
    summary s = {.count = r->n, .digest = 1469598103934665603ull};
    s.distinct_digest = s.digest;
    for (size_t i = 0; i < r->n; i++) {
        s.digest = fnv1a(&r->v[i], sizeof r->v[i]) ^ (s.digest * 1099511628211ull);
        if (i && !row_cmp(&r->v[i], &r->v[i - 1])) {
            s.repeated++;
            continue;
        }
        s.distinct++;
        s.distinct_digest =
            fnv1a(&r->v[i], sizeof r->v[i]) ^ (s.distinct_digest * 1099511628211ull);
    }
    return s;
}

/* A trade as a row: the fields the recorder stores, hashed the same way
 * whether they come from Kafka or from PostgreSQL. */
static void trade_row(rows *r, const arb_trade *t)
{
    int64_t f[10] = {(int64_t)t->trade_id,
                     t->price,
                     t->qty,
                     (int64_t)t->buy_order_id,
                     (int64_t)t->sell_order_id,
                     (int64_t)t->buy_account,
                     (int64_t)t->sell_account,
                     t->ts,
                     (int64_t)t->seq,
                     t->aggressor};
    rows_add(r, t->trade_id, arb_instrument_key(t->venue, t->symbol), 0, f, sizeof f);
}

/* The recorder's trades table as rows; -1 while it does not exist yet. */
static long long db_trades(PGconn *c, rows *out)
{
    PGresult *r = PQexec(c, "SELECT trade_id, venue, symbol, price, qty, buy_order_id, "
                            "sell_order_id, buy_account, sell_account, ts_ns, book_seq, "
                            "aggressor FROM trades");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return -1;
    }
    long long n = PQntuples(r);
    for (int i = 0; out && i < PQntuples(r); i++) {
        arb_trade t = {0};
        t.trade_id = strtoull(PQgetvalue(r, i, 0), NULL, 10);
        arb_fixstr_set(t.venue, ARB_VENUE_LEN, PQgetvalue(r, i, 1));
        arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, PQgetvalue(r, i, 2));
        t.price = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        t.qty = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        t.buy_order_id = strtoull(PQgetvalue(r, i, 5), NULL, 10);
        t.sell_order_id = strtoull(PQgetvalue(r, i, 6), NULL, 10);
        t.buy_account = strtoull(PQgetvalue(r, i, 7), NULL, 10);
        t.sell_account = strtoull(PQgetvalue(r, i, 8), NULL, 10);
        t.ts = strtoll(PQgetvalue(r, i, 9), NULL, 10);
        t.seq = strtoull(PQgetvalue(r, i, 10), NULL, 10);
        t.aggressor = !strcmp(PQgetvalue(r, i, 11), "buy") ? ARB_SIDE_BUY : ARB_SIDE_SELL;
        trade_row(out, &t);
    }
    PQclear(r);
    return n;
}

static void read_topic(const char *bootstrap, const char *topic, outcome *o)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "scaleout-reader", err, sizeof err);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int eofs = 0;
    int64_t end = now_ms() + 30000;
    while (eofs < PARTITIONS && now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            arb_trade t = {0};
            arb_order_event ev = {0};
            arb_market_data md = {0};
            if (!strcmp(topic, "trade_executed")) {
                assert_int_equal(arb_trade_decode(m->payload, m->len, &t), ARB_OK);
                trade_row(&o->trades, &t);
            } else if (!strcmp(topic, "order_events")) {
                assert_int_equal(arb_order_event_decode(m->payload, m->len, &ev), ARB_OK);
                rows_add(&o->events, arb_instrument_key(ev.venue, ev.symbol), ev.order_id, ev.seq,
                         m->payload, m->len);
            } else {
                assert_int_equal(arb_market_data_decode(m->payload, m->len, &md), ARB_OK);
                rows_add(&o->md, arb_instrument_key(md.venue, md.symbol), md.book_seq, md.kind,
                         m->payload, m->len);
            }
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, PARTITIONS);
    /* The dev broker keeps about 5 MiB per partition and evicts older
     * records silently: the comparison needs every record still there. */
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t lo = -1, hi = -1;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000), 0);
        if (lo != 0)
            fail_msg("%s [%d] starts at offset %lld: the dev broker evicted records", topic, p,
                     (long long)lo);
    }
    rd_kafka_destroy(rk);
}

static void read_outcome(const char *bootstrap, outcome *o)
{
    memset(o, 0, sizeof *o);
    read_topic(bootstrap, "trade_executed", o);
    read_topic(bootstrap, "order_events", o);
    read_topic(bootstrap, "market_data", o);
}

static void outcome_free(outcome *o)
{
    free(o->trades.v);
    free(o->events.v);
    free(o->md.v);
}

/* Lines of the matchers' logs containing `what`. */
static int count_in_logs(const char *what)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cat %s/m*.log | grep -c '%s'", tmpdir, what);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = 0;
        pclose(p);
    }
    return n;
}

/* ---- the test ---- */

static int built(void)
{
    char p[3][512];
    snprintf(p[0], sizeof p[0], "%s/arb-host", B);
    snprintf(p[1], sizeof p[1], "%s/arb-devbroker", B);
    snprintf(p[2], sizeof p[2], "%s/plugins/matcher.so", B);
    struct stat st;
    for (int i = 0; i < 3; i++)
        if (stat(p[i], &st))
            return 0;
    return 1;
}

static void killed_and_added_matchers_yield_the_trades_of_a_single_matcher(void **state)
{
    (void)state;
    if (!built()) {
        print_message("skipped: build arb-host, arb-devbroker and plugins/matcher.so first\n");
        skip();
    }
    choose_instruments();
    arb_order_cmd *cmds = make_input();

    /* The reference: one matcher, all the input at once. */
    t0_ms = now_ms();
    devbroker d;
    devbroker_start(&d);
    arbh_kafka *k = producer_new(d.bootstrap);
    produce(k, cmds, 0, COMMANDS);
    arbh_kafka_stop(k);
    arbh_kafka_free(k);
    pid_t solo = matcher_start(d.bootstrap, "m-solo");
    wait_input_done(d.bootstrap, 60000);
    print_message("%6.1f s: the single matcher is done\n", (double)(now_ms() - t0_ms) / 1000);
    outcome ref;
    read_outcome(d.bootstrap, &ref);
    matcher_kill(solo, SIGTERM);
    devbroker_stop(&d);
    summary ref_t = summarize(&ref.trades), ref_e = summarize(&ref.events),
            ref_m = summarize(&ref.md);
    rows_dump(&ref.events, "ref_events.txt");
    print_message("reference: %zu trades, %zu order events, %zu market data records\n", ref_t.count,
                  ref_e.count, ref_m.count);
    assert_true(ref_t.count > (size_t)COMMANDS / 4);
    assert_int_equal(ref_t.repeated, 0);

    /* Scale-out: two matchers share the partitions; input flows in chunks
     * while one is killed, comes back, a third joins and the second is
     * killed too. Each step waits until the group has settled around it
     * (partitions of a killed member move after session.timeout.ms). */
    devbroker_start(&d);
    PGconn *db = NULL;
    pid_t rec = -1;
    if (getenv("ARB_WITH_PG")) {
        db = rig_db("postgres");
        PQclear(PQexec(db, "DROP DATABASE IF EXISTS scaleout"));
        PGresult *r = PQexec(db, "CREATE DATABASE scaleout");
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        PQclear(r);
        PQfinish(db);
        db = rig_db("scaleout");
        rec = recorder_start(d.bootstrap, "scaleout");
    }
    feeder f = {producer_new(d.bootstrap), cmds, 0};
    pid_t a = matcher_start(d.bootstrap, "m-a");
    pid_t b = matcher_start(d.bootstrap, "m-b");
    feed_until(&f, (const char *const[]){"m-a", "m-b", NULL}, 8, "m-a and m-b share the input");
    feed_until(&f, NULL, 15, "input flows");
    matcher_kill(a, SIGKILL);
    feed_until(&f, (const char *const[]){"m-b", NULL}, 8, "m-a killed; m-b took its partitions");
    a = matcher_start(d.bootstrap, "m-a2");
    feed_until(&f, (const char *const[]){"m-b", "m-a2", NULL}, 8, "m-a came back");
    pid_t c = matcher_start(d.bootstrap, "m-c");
    feed_until(&f, (const char *const[]){"m-b", "m-a2", "m-c", NULL}, 8, "m-c joined");
    feed_until(&f, NULL, 8, "input flows");
    matcher_kill(b, SIGKILL);
    feed_until(&f, (const char *const[]){"m-a2", "m-c", NULL}, CHUNKS,
               "m-b killed; m-a2 and m-c took its partitions");
    k = f.k;
    arbh_kafka_stop(k);
    arbh_kafka_free(k);
    wait_input_done(d.bootstrap, 90000);
    print_message("%6.1f s: the matchers are done\n", (double)(now_ms() - t0_ms) / 1000);
    outcome got;
    read_outcome(d.bootstrap, &got);
    /* The recorder has stored every trade once it holds as many as Kafka. */
    rows stored = {0};
    long long n_stored = -1;
    for (int i = 0; db && i < 600 && n_stored < (long long)got.trades.n; i++) {
        n_stored = db_trades(db, NULL);
        if (n_stored < (long long)got.trades.n)
            sleep_ms(100);
    }
    if (db) {
        db_trades(db, &stored);
        PQfinish(db);
        matcher_kill(rec, SIGTERM);
    }
    matcher_kill(a, SIGTERM);
    matcher_kill(c, SIGTERM);
    assert_int_equal(f.next_chunk, CHUNKS);
    devbroker_stop(&d);
    summary t = summarize(&got.trades), e = summarize(&got.events), m = summarize(&got.md);
    rows_dump(&got.events, "got_events.txt");
    int restored = count_in_logs("books from its snapshot");
    int fenced = count_in_logs("not repeated");
    print_message("scale-out: %zu trades (%zu repeated), %zu order events (%zu repeated), "
                  "%zu market data (%zu repeated); %d partitions restored from a snapshot, %d "
                  "replays held back output already in Kafka; logs in %s\n",
                  t.count, t.repeated, e.count, e.repeated, m.count, m.repeated, restored, fenced,
                  tmpdir);

    /* Trades: exactly the reference. */
    assert_int_equal(t.repeated, 0);
    assert_int_equal(t.count, ref_t.count);
    assert_true(t.digest == ref_t.digest);
    /* The recorder's trades: exactly the reference too. */
    if (getenv("ARB_WITH_PG")) {
        summary st = summarize(&stored);
        print_message("recorder: %zu trades in PostgreSQL\n", st.count);
        assert_int_equal(st.count, ref_t.count);
        assert_true(st.digest == ref_t.digest);
    } else {
        print_message("no PostgreSQL (scripts/with-pg.sh): the recorder's table is not checked\n");
    }
    free(stored.v);
    /* Market data: exactly the reference. */
    assert_int_equal(m.repeated, 0);
    assert_int_equal(m.count, ref_m.count);
    assert_true(m.digest == ref_m.digest);
    /* Order events: exactly the reference as well (the event fence). */
    assert_int_equal(e.repeated, 0);
    assert_int_equal(e.count, ref_e.count);
    assert_true(e.digest == ref_e.digest);
    assert_true(e.distinct_digest == ref_e.distinct_digest);
    /* Moved partitions were rebuilt from snapshots, not only from the log. */
    assert_true(restored > 0);
    outcome_free(&ref);
    outcome_free(&got);
    free(cmds);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/arb-test-scaleout-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

/* Runs this binary again under a throwaway PostgreSQL (scripts/with-pg.sh,
 * from the repo root) for the recorder and exits with its status; without a
 * server (status 77) or the script, goes on here and checks Kafka only. */
static void rerun_under_pg(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (getenv("ARB_WITH_PG") || n <= 0 || access("scripts/with-pg.sh", X_OK))
        return;
    self[n] = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"scripts/with-pg.sh", self, NULL};
        execv(args[0], args);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
        return;
    exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}

int main(void)
{
    rerun_under_pg();
    B = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(killed_and_added_matchers_yield_the_trades_of_a_single_matcher),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    /* The logs stay for a failed run (or with ARB_TEST_KEEP=1). */
    if (rc == 0 && rig_clean_dir(tmpdir))
        rc = 1;
    return rc;
}
