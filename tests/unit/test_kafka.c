/*
 * test_kafka.c -- the bus's Kafka transport (host/kafka.c) against
 * librdkafka's mock cluster in this process: wire records round trip byte for
 * byte, keys pick partitions as Java's murmur2 does, offsets are committed
 * only after done, rebalances wait for outstanding records, the host's
 * ARB_EFULL and a full window redeliver in order, seeks, and produce errors
 * are retried without duplicates.
 *
 * Every test uses its own topic and consumer group. The mock cluster makes
 * the first member of a group wait about 3 s, which is most of the run time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arb/wire.h>
#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"
#include "config.h"
#include "kafka.h"

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *waker;
static char bootstrap[512];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a fake host: records what the transport delivers ---- */

typedef struct got {
    char topic[64];
    int32_t partition;
    int64_t offset;
    uint64_t key;
    uint8_t data[1024];
    size_t len;
    void (*done)(void *);
    void *token;
    bool is_done;
} got;

typedef struct sink {
    got *recs;
    size_t n, cap;
    bool auto_done;
    int refuse_left;  /* answer ARB_EFULL this many times... */
    size_t refuse_at; /* ...when offered record number refuse_at */
    int refused;
    int64_t refuse_until_ms; /* answer ARB_EFULL to everything until then */
    /* A consumer that keeps its own positions seeks from inside delivery. */
    arbh_kafka *seek_k;
    size_t seek_at_n; /* after this many records... */
    int64_t seek_to;  /* ...seek partition 0 of the record's topic here */
} sink;

static int on_record(void *user, const char *topic, int32_t partition, int64_t offset, uint64_t key,
                     const void *data, size_t len, void (*done)(void *), void *token)
{
    sink *s = user;
    if (s->refuse_until_ms && now_ms() < s->refuse_until_ms) {
        s->refused++;
        return ARB_EFULL;
    }
    if (s->refuse_left > 0 && s->n == s->refuse_at) {
        s->refuse_left--;
        s->refused++;
        return ARB_EFULL;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->recs = realloc(s->recs, s->cap * sizeof *s->recs);
    }
    got *g = &s->recs[s->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->topic, sizeof g->topic, "%s", topic);
    g->partition = partition;
    g->offset = offset;
    g->key = key;
    assert_true(len <= sizeof g->data);
    memcpy(g->data, data, len);
    g->len = len;
    g->done = done;
    g->token = token;
    if (s->auto_done) {
        g->is_done = true;
        done(token);
    }
    if (s->seek_k && s->n == s->seek_at_n)
        assert_int_equal(arbh_kafka_seek(s->seek_k, topic, 0, s->seek_to), ARB_OK);
    return ARB_OK;
}

static void mark_done(sink *s, size_t i)
{
    assert_true(i < s->n);
    if (!s->recs[i].is_done) {
        s->recs[i].is_done = true;
        s->recs[i].done(s->recs[i].token);
    }
}

static void done_all(sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        mark_done(s, i);
}

static void sink_free(sink *s)
{
    free(s->recs);
    memset(s, 0, sizeof *s);
}

/* Runs the loop until cond or the time is up; returns cond's last answer. */
static int pump(struct event_base *base, int (*cond)(void *), void *arg, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (cond && cond(arg))
            return 1;
        if (now_ms() >= end)
            return cond ? cond(arg) : 0;
        usleep(1000);
    }
}

typedef struct want_n {
    sink *s;
    size_t n;
} want_n;

static int has_n(void *arg)
{
    want_n *w = arg;
    return w->s->n >= w->n;
}

static arbh_kafka *kafka_new(const char *extra)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[bus]\nbrokers = %s\n%s\n"
             "[kafka.consumer]\nheartbeat.interval.ms = 100\nsession.timeout.ms = 4000\n"
             "topic.metadata.refresh.interval.ms = 500\n%s",
             bootstrap, extra, getenv("KDEBUG") ? getenv("KDEBUG") : "");
    arbh_config cfg;
    assert_int_equal(arbh_config_load_string(&cfg, "test.ini", ini, NULL, 0), 0);
    arbh_kafka *k = NULL;
    char err[512] = "";
    int rc = arbh_kafka_new(&cfg, "test", &k, err, sizeof err);
    if (rc)
        fprintf(stderr, "arbh_kafka_new: %s\n", err);
    assert_int_equal(rc, ARB_OK);
    arbh_config_free(&cfg);
    return k;
}

static uint32_t trade_bytes(uint8_t *buf, uint64_t id, const char *symbol)
{
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, symbol);
    t.trade_id = id;
    t.price = 10000 + (int64_t)id;
    t.qty = 1;
    t.aggressor = ARB_SIDE_BUY;
    t.seq = id;
    return arb_trade_encode(&t, buf, ARB_TRADE_LEN);
}

static uint64_t trade_id_of(const got *g)
{
    arb_trade t = {0};
    assert_int_equal(arb_trade_decode(g->data, g->len, &t), ARB_OK);
    return t.trade_id;
}

static void produce_trades(arbh_kafka *k, const char *topic, uint64_t first, int n, uint64_t key)
{
    uint8_t buf[ARB_TRADE_LEN];
    for (int i = 0; i < n; i++) {
        uint32_t len = trade_bytes(buf, first + (uint64_t)i, "BTCUSD");
        assert_int_equal(arbh_kafka_produce(k, topic, key, buf, len), ARB_OK);
    }
}

/* Committed offset of a group for topic/partition, read with a fresh client. */
static int64_t committed_offset(const char *group, const char *topic, int partition)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", group, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    assert_int_equal(rd_kafka_committed(rk, l, 5000), 0);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

/* ---- the shared consumer ----
 * Tests that need no group of their own share one consumer (group g-shared,
 * max_inflight 8), so the mock's ~3 s first join is paid once. Each test
 * hands its records to its own sink, chosen by topic. */

static const char *const shared_topics[] = {"order_commands",   "order_events", "trade_executed",
                                            "market_data",      "system_ticks", "market_events",
                                            "service_registry", "t_efull",      "t_window",
                                            "t_errors",         "t_long"};
#define NSHARED (sizeof shared_topics / sizeof shared_topics[0])
static struct event_base *shared_base;
static arbh_kafka *shared;
static sink *shared_sink[NSHARED];
static sink stray = {.auto_done = true};

static int shared_record(void *user, const char *topic, int32_t partition, int64_t offset,
                         uint64_t key, const void *data, size_t len, void (*done)(void *),
                         void *token)
{
    (void)user;
    for (size_t i = 0; i < NSHARED; i++)
        if (!strcmp(topic, shared_topics[i]) && shared_sink[i])
            return on_record(shared_sink[i], topic, partition, offset, key, data, len, done, token);
    return on_record(&stray, topic, partition, offset, key, data, len, done, token);
}

/* The shared consumer, with `s` receiving `topic` from now on. */
static arbh_kafka *shared_for(const char *topic, sink *s)
{
    if (!shared) {
        /* One Produce request in flight per connection: the mock cluster does
         * not check a non-transactional idempotent producer's sequence
         * numbers, so with more, a later batch can succeed after an injected
         * error on an earlier one, which librdkafka then counts as written
         * (a real broker refuses the later batch). See t_errors. */
        shared = kafka_new("group = g-shared\nmax_inflight = 8\n"
                           "kafka_topics = order_commands, order_events, trade_executed, "
                           "market_data, system_ticks, market_events, service_registry, "
                           "t_efull, t_window, t_errors, t_long\n"
                           "[kafka.producer]\nmax.in.flight.requests.per.connection = 1");
        shared_base = event_base_new();
        for (size_t i = 0; i < NSHARED; i++)
            assert_int_equal(arbh_kafka_want(shared, shared_topics[i]), ARB_OK);
        assert_int_equal(arbh_kafka_start(shared, shared_base, shared_record, NULL), ARB_OK);
    }
    for (size_t i = 0; i < NSHARED; i++)
        if (!strcmp(topic, shared_topics[i]))
            shared_sink[i] = s;
    return shared;
}

/* Ends a test's use of the shared consumer: whatever it held is done. */
static void shared_release(sink *s)
{
    done_all(s);
    for (size_t i = 0; i < NSHARED; i++)
        if (shared_sink[i] == s)
            shared_sink[i] = NULL;
    sink_free(s);
}

/* ---- setup: one mock cluster for the whole binary ---- */

static int setup(void **state)
{
    (void)state;
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "log_level", "3", err, sizeof err);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    mock = rd_kafka_mock_cluster_new(mock_rk, 3);
    if (!mock)
        return -1;
    snprintf(bootstrap, sizeof bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(mock));
    /* The mock serves calls made on it only when its thread wakes for
     * traffic: a client refreshing metadata every 20 ms keeps it awake (as
     * arb-devbroker does), else each call may wait up to a second. */
    rd_kafka_mock_topic_create(mock, "order_commands", 4, 3);
    c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "topic.metadata.refresh.interval.ms", "20", err, sizeof err);
    rd_kafka_conf_set(c, "log_level", "0", err, sizeof err);
    waker = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    rd_kafka_topic_destroy(rd_kafka_topic_new(waker, "order_commands", NULL));
    static const char *const topics[] = {"order_commands",  "order_events", "trade_executed",
                                         "market_data",     "system_ticks", "market_events",
                                         "service_registry"};
    for (size_t i = 1; i < sizeof topics / sizeof topics[0]; i++)
        rd_kafka_mock_topic_create(mock, topics[i], 4, 3);
    static const struct {
        const char *name;
        int parts;
    } own[] = {{"t_keys", 4}, {"t_resume", 1}, {"t_rebalance", 4}, {"t_efull", 1},  {"t_window", 1},
               {"t_seek", 1}, {"t_errors", 4}, {"t_long", 1},      {"t_behind", 1}, {"t_owned", 1}};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        rd_kafka_mock_topic_create(mock, own[i].name, own[i].parts, 3);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arbh_kafka_free(shared);
    if (shared_base)
        event_base_free(shared_base);
    done_all(&stray);
    sink_free(&stray);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(waker);
    rd_kafka_destroy(mock_rk);
    return 0;
}

/* ---- tests ---- */

static void every_record_type_round_trips_byte_identical(void **state)
{
    (void)state;
    uint8_t recs[7][ARB_SERVICE_LEN(1)];
    uint32_t lens[7];
    const char *topics[7] = {"order_commands", "order_events",  "trade_executed",  "market_data",
                             "system_ticks",   "market_events", "service_registry"};
    arb_order_cmd cmd = {.action = ARB_CMD_NEW,
                         .side = ARB_SIDE_BUY,
                         .type = ARB_ORD_LIMIT,
                         .tif = ARB_TIF_GTC,
                         .order_id = 1,
                         .account = 2,
                         .price = 3,
                         .qty = 4,
                         .ts = 5,
                         .client_ref = 6};
    arb_fixstr_set(cmd.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(cmd.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    lens[0] = arb_order_cmd_encode(&cmd, recs[0], sizeof recs[0]);
    arb_order_event ev = {.kind = ARB_EV_FILLED,
                          .side = ARB_SIDE_SELL,
                          .order_id = 9,
                          .qty = 2,
                          .filled_qty = 2,
                          .last_px = 77,
                          .last_qty = 2,
                          .trade_id = 1234567890123ull};
    arb_fixstr_set(ev.venue, ARB_VENUE_LEN, "XB");
    arb_fixstr_set(ev.symbol, ARB_SYMBOL_LEN, "ETHUSD");
    lens[1] = arb_order_event_encode(&ev, recs[1], sizeof recs[1]);
    lens[2] = trade_bytes(recs[2], 42, "BTCUSD");
    arb_market_data md = {.kind = ARB_MD_TOP,
                          .n_levels = 0,
                          .book_seq = 7,
                          .bid_px = 99,
                          .bid_qty = 1,
                          .ask_px = 101,
                          .ask_qty = 2};
    arb_fixstr_set(md.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(md.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    lens[3] = arb_market_data_encode(&md, recs[3], sizeof recs[3]);
    arb_tick tk = {.seq = 3, .sim_ns = 1000, .wall_ns = 2000, .speed = 10, .mode = ARB_TICK_SIM};
    lens[4] = arb_tick_encode(&tk, recs[4], sizeof recs[4]);
    arb_market_event me = {.kind = ARB_MEV_SHOCK, .value = 5, .shock = -3, .seq = 1};
    arb_fixstr_set(me.symbol, ARB_SYMBOL_LEN, "BTC");
    lens[5] = arb_market_event_encode(&me, recs[5], sizeof recs[5]);
    arb_service sv = {.status = ARB_SVC_ALIVE, .n_plugins = 1, .pid = 77};
    arb_fixstr_set(sv.host_id, ARB_SVC_ID_LEN, "matcher-1");
    lens[6] = arb_service_encode(&sv, recs[6], sizeof recs[6]);
    arb_service_plugin sp;
    memset(&sp, 0, sizeof sp);
    arb_fixstr_set(sp.instance, ARB_SVC_NAME_LEN, "matcher");
    arb_fixstr_set(sp.plugin, ARB_SVC_NAME_LEN, "matcher");
    arb_service_put_plugin(recs[6], 0, &sp);
    for (int i = 0; i < 7; i++)
        assert_true(lens[i] > 0);

    static sink s;
    s = (sink){.auto_done = true};
    arbh_kafka *k = NULL;
    for (int i = 0; i < 7; i++)
        k = shared_for(topics[i], &s);
    for (int i = 0; i < 7; i++)
        assert_true(arbh_kafka_routes(k, topics[i]));
    assert_false(arbh_kafka_routes(k, "not_a_bus_topic"));
    arbh_kafka_stats before, after;
    arbh_kafka_get_stats(k, &before);
    for (int i = 0; i < 7; i++)
        assert_int_equal(arbh_kafka_produce(k, topics[i], 1000 + (uint64_t)i, recs[i], lens[i]),
                         ARB_OK);
    want_n w = {&s, 7};
    assert_true(pump(shared_base, has_n, &w, 20000));
    for (int i = 0; i < 7; i++) {
        const got *g = NULL;
        for (size_t j = 0; j < s.n; j++)
            if (!strcmp(s.recs[j].topic, topics[i]))
                g = &s.recs[j];
        assert_non_null(g);
        assert_int_equal(g->key, 1000 + (uint64_t)i);
        assert_int_equal(g->len, lens[i]);
        assert_memory_equal(g->data, recs[i], lens[i]);
    }
    arbh_kafka_get_stats(k, &after);
    assert_int_equal(after.produced - before.produced, 7);
    assert_int_equal(after.delivered - before.delivered, 7);
    assert_int_equal(after.done - before.done, 7);
    assert_true(after.healthy);
    shared_release(&s);
}

/* Kafka's Java client: murmur2 of the key bytes, positive, modulo. */
static uint32_t java_murmur2(const uint8_t *data, int length)
{
    const uint32_t seed = 0x9747b28c, m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = seed ^ (uint32_t)length;
    int i = 0;
    for (; i + 4 <= length; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length - i) {
    case 3:
        h ^= (uint32_t)data[i + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[i + 1] << 8;
        /* fall through */
    case 1: h ^= data[i]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static void same_key_lands_in_the_partition_java_clients_pick(void **state)
{
    (void)state;
    arbh_kafka *k = kafka_new("kafka_topics = t_keys");
    const int nkeys = 16, per_key = 5;
    for (int r = 0; r < per_key; r++)
        for (int i = 0; i < nkeys; i++)
            produce_trades(k, "t_keys", (uint64_t)(r * nkeys + i), 1,
                           0x0123456789abcdefull * (uint64_t)(i + 1));
    arbh_kafka_stop(k);
    arbh_kafka_stats st;
    arbh_kafka_get_stats(k, &st);
    assert_int_equal(st.produce_failed, 0);
    arbh_kafka_free(k);

    /* Read every partition with a plain client: no group, so no join wait. */
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "unused", err, sizeof err);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int p = 0; p < 4; p++)
        rd_kafka_topic_partition_list_add(l, "t_keys", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int seen = 0, eofs = 0, used[4] = {0};
    int64_t end = now_ms() + 10000;
    while ((seen < nkeys * per_key || eofs < 4) && now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            assert_int_equal(m->key_len, 8);
            uint32_t want = (java_murmur2(m->key, 8) & 0x7fffffff) % 4;
            assert_int_equal(m->partition, want);
            used[m->partition]++;
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(rk);
    assert_int_equal(seen, nkeys * per_key);
    /* 16 keys spread over more than one partition: the key really decides. */
    int nonempty = 0;
    for (int p = 0; p < 4; p++)
        nonempty += used[p] > 0;
    assert_true(nonempty > 1);
}

/* Done out of order (subscribers on several loops finish in any order): the
 * commit stops at the first record not done, and a restarted consumer of the
 * group resumes exactly there. */
static void restart_resumes_at_the_first_record_not_done(void **state)
{
    (void)state;
    const char *extra = "kafka_topics = t_resume\ngroup = g-resume";
    arbh_kafka *k = kafka_new(extra);
    struct event_base *base = event_base_new();
    sink s = {0};
    assert_int_equal(arbh_kafka_want(k, "t_resume"), ARB_OK);
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s), ARB_OK);
    produce_trades(k, "t_resume", 0, 10, 7);
    want_n w = {&s, 10};
    assert_true(pump(base, has_n, &w, 20000));
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), i);
    /* Nothing done: the group may at most note that it starts at 0. */
    pump(base, NULL, NULL, 400);
    assert_true(committed_offset("g-resume", "t_resume", 0) <= 0);
    mark_done(&s, 0);
    mark_done(&s, 1);
    mark_done(&s, 3);
    mark_done(&s, 5);
    pump(base, NULL, NULL, 400);
    assert_int_equal(committed_offset("g-resume", "t_resume", 0), 2);
    mark_done(&s, 2);
    pump(base, NULL, NULL, 400);
    assert_int_equal(committed_offset("g-resume", "t_resume", 0), 4);
    arbh_kafka_stop(k);
    done_all(&s); /* late dones after stop change nothing */
    arbh_kafka_free(k);
    assert_int_equal(committed_offset("g-resume", "t_resume", 0), 4);
    sink_free(&s);

    k = kafka_new(extra);
    s = (sink){.auto_done = true};
    assert_int_equal(arbh_kafka_want(k, "t_resume"), ARB_OK);
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s), ARB_OK);
    w = (want_n){&s, 6};
    assert_true(pump(base, has_n, &w, 20000));
    pump(base, NULL, NULL, 300);
    /* Records 4..9 again, in order, and nothing before them: record 5 was
     * done but sat behind 4, so it comes again (at least once). */
    assert_int_equal(s.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), 4 + i);
    arbh_kafka_free(k);
    assert_int_equal(committed_offset("g-resume", "t_resume", 0), 10);
    event_base_free(base);
    sink_free(&s);
}

typedef struct two {
    arbh_kafka *a, *b;
} two;

static int assigned_is(arbh_kafka *k, int n)
{
    arbh_kafka_stats st;
    arbh_kafka_get_stats(k, &st);
    return st.assigned == n;
}

static int b_assigned(void *arg) { return assigned_is(((two *)arg)->b, 2); }

static int both_assigned(void *arg)
{
    two *t = arg;
    return assigned_is(t->a, 2) && assigned_is(t->b, 2);
}

/* A second member joins while the first holds records not done. The first
 * commits nothing for them until they are done; afterwards the group splits
 * 2 + 2 and no record is lost. Only records that were not done when the
 * revoke began may be seen twice. (A real broker keeps the newcomer waiting
 * until the first member rejoins; librdkafka's mock cluster hands it
 * partitions after its rebalance timer, so here the newcomer may see those
 * records too.) */
static void rebalance_commits_only_done_records_and_loses_none(void **state)
{
    (void)state;
    const char *extra =
        "kafka_topics = t_rebalance\ngroup = g-rebalance\nrevoke_timeout_ms = 20000";
    sink ss[2] = {{0}, {0}};
    arbh_kafka *a = kafka_new(extra);
    struct event_base *base = event_base_new();
    arbh_kafka_want(a, "t_rebalance");
    assert_int_equal(arbh_kafka_start(a, base, on_record, &ss[0]), ARB_OK);
    /* Records on several keys, so every partition gets some. */
    for (uint64_t key = 1; key <= 8; key++)
        produce_trades(a, "t_rebalance", key * 100, 5, key);
    want_n w = {&ss[0], 40};
    assert_true(pump(base, has_n, &w, 20000));
    assert_true(assigned_is(a, 4));

    arbh_kafka *b = kafka_new(extra);
    arbh_kafka_want(b, "t_rebalance");
    assert_int_equal(arbh_kafka_start(b, base, on_record, &ss[1]), ARB_OK);
    two t = {a, b};
    pump(base, b_assigned, &t, 8000);
    /* Nobody has finished anything yet: nothing beyond 0 may be committed. */
    for (int p = 0; p < 4; p++)
        assert_true(committed_offset("g-rebalance", "t_rebalance", p) <= 0);

    done_all(&ss[0]);
    done_all(&ss[1]);
    ss[0].auto_done = ss[1].auto_done = true;
    /* The group settling on two members is the mock's timing, not data. */
    if (!pump(base, both_assigned, &t, 20000))
        timing_fail("the rebalance to two members did not finish in 20 s");
    for (uint64_t key = 1; key <= 8; key++)
        produce_trades(b, "t_rebalance", key * 100 + 50, 5, key);
    int seen[900] = {0};
    int64_t end = now_ms() + 15000;
    int missing = 80;
    while (missing && now_ms() < end) {
        pump(base, NULL, NULL, 50);
        memset(seen, 0, sizeof seen);
        for (int c = 0; c < 2; c++)
            for (size_t i = 0; i < ss[c].n; i++)
                seen[trade_id_of(&ss[c].recs[i])]++;
        missing = 0;
        for (uint64_t key = 1; key <= 8; key++)
            for (int i = 0; i < 5; i++)
                missing += !seen[key * 100 + (uint64_t)i] + !seen[key * 100 + 50 + (uint64_t)i];
    }
    pump(base, NULL, NULL, 300);
    memset(seen, 0, sizeof seen);
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < ss[c].n; i++)
            seen[trade_id_of(&ss[c].recs[i])]++;
    for (uint64_t key = 1; key <= 8; key++)
        for (int i = 0; i < 5; i++) {
            assert_true(seen[key * 100 + (uint64_t)i] >= 1);
            /* Produced after the rebalance, handled and done: exactly once. */
            assert_int_equal(seen[key * 100 + 50 + (uint64_t)i], 1);
        }
    assert_true(ss[1].n > 0);
    arbh_kafka_free(b);
    arbh_kafka_free(a);
    for (int p = 0; p < 4; p++)
        assert_true(committed_offset("g-rebalance", "t_rebalance", p) > 0);
    event_base_free(base);
    sink_free(&ss[0]);
    sink_free(&ss[1]);
}

static void host_refusal_offers_the_same_record_again_in_order(void **state)
{
    (void)state;
    static sink s;
    s = (sink){.auto_done = true, .refuse_left = 3, .refuse_at = 4};
    arbh_kafka *k = shared_for("t_efull", &s);
    produce_trades(k, "t_efull", 0, 20, 3);
    want_n w = {&s, 20};
    assert_true(pump(shared_base, has_n, &w, 20000));
    pump(shared_base, NULL, NULL, 200);
    assert_int_equal(s.refused, 3);
    assert_int_equal(s.n, 20);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), i);
    shared_release(&s);
}

/* The host refuses everything for a while: records pile up behind the
 * first, the partition is paused (librdkafka drops what it prefetched), and
 * after the host recovers every record still comes once, in order. */
static void long_refusal_pauses_the_partition_and_loses_nothing(void **state)
{
    (void)state;
    static sink s;
    s = (sink){.auto_done = true};
    arbh_kafka *k = shared_for("t_long", &s);
    arbh_kafka_stats before, after;
    arbh_kafka_get_stats(k, &before);
    const int n = 3000;
    produce_trades(k, "t_long", 0, n, 11);
    s.refuse_until_ms = now_ms() + 1500;
    want_n w = {&s, (size_t)n};
    assert_true(pump(shared_base, has_n, &w, 20000));
    pump(shared_base, NULL, NULL, 200);
    assert_true(s.refused > 0);
    arbh_kafka_get_stats(k, &after);
    assert_true(after.pauses > before.pauses);
    assert_int_equal(s.n, n);
    for (size_t i = 0; i < (size_t)n; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), i);
    shared_release(&s);
}

/* A group-less consumer ([bus] consume = all) gets the partition with no
 * group, and one taking records made a minute ago while more wait says it is
 * behind (degraded) until it has caught up; its commits still land under
 * its group. */
static void groupless_consumer_behind_is_degraded_until_it_catches_up(void **state)
{
    (void)state;
    const int n = 20;
    uint8_t buf[ARB_TRADE_LEN];
    int64_t old_ms = now_ms() - 60000;
    for (int i = 0; i < n; i++) {
        uint32_t len = trade_bytes(buf, (uint64_t)i, "BTCUSD");
        assert_int_equal(rd_kafka_producev(waker, RD_KAFKA_V_TOPIC("t_behind"),
                                           RD_KAFKA_V_VALUE(buf, len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_TIMESTAMP(old_ms), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(waker, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    static sink s;
    s = (sink){.auto_done = true, .refuse_left = 1000000, .refuse_at = 1};
    arbh_kafka *k = kafka_new("group = g-behind\nconsume = all\nkafka_topics = t_behind");
    struct event_base *base = event_base_new();
    assert_int_equal(arbh_kafka_want(k, "t_behind"), ARB_OK);
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s), ARB_OK);
    want_n one = {&s, 1};
    assert_true(pump(base, has_n, &one, 20000));
    pump(base, NULL, NULL, 300);
    arbh_kafka_stats st;
    arbh_kafka_get_stats(k, &st);
    assert_int_equal(st.assigned, 1);
    if (!strstr(st.reasons, "consumer behind: t_behind [0]"))
        fail_msg("not behind: \"%s\"", st.reasons);
    assert_true(st.degraded);
    s.refuse_left = 0;
    want_n all = {&s, (size_t)n};
    assert_true(pump(base, has_n, &all, 20000));
    pump(base, NULL, NULL, 300);
    arbh_kafka_get_stats(k, &st);
    assert_null(strstr(st.reasons, "behind"));
    for (int i = 0; i < n; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), i);
    arbh_kafka_stop_consuming(k);
    assert_int_equal(committed_offset("g-behind", "t_behind", 0), n);
    arbh_kafka_free(k);
    event_base_free(base);
    sink_free(&s);
}

static void count_stop(void *user, const char *why)
{
    (void)why;
    ++*(int *)user;
}

static int unhealthy(void *arg)
{
    arbh_kafka_stats st;
    arbh_kafka_get_stats(arg, &st);
    return !st.healthy;
}

/* A group-less host ([bus] consume = all) promises to be its group's only
 * consumer. A member joining that group (a host started in group mode by
 * mistake) gets its commits refused by the coordinator; the group-less host
 * then stops taking records and producing, reports itself failed with the
 * reason and asks its host to exit, rather than consuming the members'
 * partitions beside them. */
static void groupless_consumer_stops_when_its_group_has_members(void **state)
{
    (void)state;
    char err[256];
    /* An offset committed while the group had no members (as a group-less
     * host's would be): what a later group-less start probes with. */
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(c, "group.id", "g-owned", err, sizeof err), 0);
    rd_kafka_t *simple = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(simple);
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(at, "t_owned", 0)->offset = 0;
    assert_int_equal(rd_kafka_commit(simple, at, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(at);
    rd_kafka_destroy(simple);

    c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err), 0);
    assert_int_equal(rd_kafka_conf_set(c, "group.id", "g-owned", err, sizeof err), 0);
    rd_kafka_t *member = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    assert_non_null(member);
    rd_kafka_poll_set_consumer(member);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, "t_owned", RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(member, topics), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(topics);

    static sink s;
    s = (sink){.auto_done = true};
    arbh_kafka *k = kafka_new("group = g-owned\nconsume = all\nkafka_topics = t_owned");
    int stops = 0;
    arbh_kafka_set_stop(k, count_stop, &stops);
    struct event_base *base = event_base_new();
    assert_int_equal(arbh_kafka_want(k, "t_owned"), ARB_OK);
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s), ARB_OK);
    /* Records until a commit reaches the coordinator after the member's
     * join (the member's JoinGroup is not observable from here). */
    uint64_t id = 0;
    int64_t end = now_ms() + 20000;
    while (!unhealthy(k) && now_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(member, 0);
        if (m)
            rd_kafka_message_destroy(m);
        produce_trades(k, "t_owned", id++, 1, 1);
        want_n w = {&s, (size_t)id};
        pump(base, has_n, &w, 2000);
        pump(base, unhealthy, k, 300);
    }
    arbh_kafka_stats st;
    arbh_kafka_get_stats(k, &st);
    assert_int_equal(st.healthy, 0);
    if (!strstr(st.detail, "group g-owned has members") ||
        !strstr(st.detail, "only consumer; stopped"))
        fail_msg("detail: \"%s\"", st.detail);
    assert_true(st.commit_failed > 0);
    assert_int_equal(stops, 1); /* the host is asked to exit */
    /* Stopped: nothing more is taken, and nothing is produced. */
    size_t had = s.n;
    uint8_t buf[ARB_TRADE_LEN];
    uint32_t len = trade_bytes(buf, 999, "BTCUSD");
    assert_int_equal(rd_kafka_producev(waker, RD_KAFKA_V_TOPIC("t_owned"),
                                       RD_KAFKA_V_VALUE(buf, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(waker, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    pump(base, NULL, NULL, 500);
    assert_int_equal(s.n, had);
    assert_int_not_equal(arbh_kafka_produce(k, "t_owned", 1, buf, len), ARB_OK);
    arbh_kafka_free(k);

    /* A group-less host started while the group has members is refused
     * before it delivers a record: it commits the group's committed offset
     * again, and the coordinator refuses that. */
    static sink s2;
    s2 = (sink){.auto_done = true};
    assert_true(committed_offset("g-owned", "t_owned", 0) >= 0);
    k = kafka_new("group = g-owned\nconsume = all\nkafka_topics = t_owned");
    stops = 0;
    arbh_kafka_set_stop(k, count_stop, &stops);
    assert_int_equal(arbh_kafka_want(k, "t_owned"), ARB_OK);
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s2), ARB_OK);
    pump(base, unhealthy, k, 20000);
    arbh_kafka_get_stats(k, &st);
    assert_int_equal(st.healthy, 0);
    assert_non_null(strstr(st.detail, "group g-owned has members"));
    assert_int_equal(stops, 1);
    pump(base, NULL, NULL, 300);
    assert_int_equal(s2.n, 0);
    assert_int_equal(st.assigned, 0);
    arbh_kafka_free(k);
    sink_free(&s2);
    event_base_free(base);
    rd_kafka_consumer_close(member);
    rd_kafka_destroy(member);
    sink_free(&s);
}

typedef struct ranges_seen {
    int n;
    int64_t last[4];
    unsigned char id_seen[400];
    int bad;
} ranges_seen;

static int take_range_record(void *user, const void *bytes, size_t len, uint64_t key, int partition,
                             int64_t offset)
{
    (void)key;
    ranges_seen *r = user;
    arb_trade t;
    if (partition < 0 || partition > 3 || offset <= r->last[partition] ||
        arb_trade_decode(bytes, len, &t) || t.trade_id >= 400 || r->id_seen[t.trade_id]++)
        r->bad++;
    else
        r->last[partition] = offset;
    r->n++;
    return 0;
}

/* Every partition of a topic read at once: each record once, each
 * partition in offset order. */
static void read_ranges_takes_every_partition_at_once_in_order(void **state)
{
    (void)state;
    arbh_kafka *k = kafka_new("group = g-ranges\nkafka_topics = t_ranges");
    for (uint64_t i = 0; i < 400; i++)
        produce_trades(k, "t_ranges", i, 1, i * 2654435761u);
    assert_int_equal(arbh_kafka_flush(k, 10000), ARB_OK);
    int64_t from[4] = {0, 0, 0, 0}, to[4] = {-1, -1, -1, -1};
    ranges_seen r = {.last = {-1, -1, -1, -1}};
    assert_int_equal(
        arbh_kafka_read_ranges(k, "t_ranges", 4, from, to, 10000000000ll, take_range_record, &r),
        ARB_OK);
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.n, 400);
    int parts_used = 0;
    for (int p = 0; p < 4; p++)
        parts_used += r.last[p] >= 0;
    assert_true(parts_used > 1);
    arbh_kafka_free(k);
}

static void full_window_pauses_the_partition_until_records_are_done(void **state)
{
    (void)state;
    static sink s;
    s = (sink){0};
    arbh_kafka *k = shared_for("t_window", &s); /* max_inflight = 8 */
    produce_trades(k, "t_window", 0, 30, 5);
    want_n w = {&s, 8};
    assert_true(pump(shared_base, has_n, &w, 20000));
    pump(shared_base, NULL, NULL, 300);
    assert_int_equal(s.n, 8); /* the window: no more until some are done */
    done_all(&s);
    s.auto_done = true;
    w.n = 30;
    assert_true(pump(shared_base, has_n, &w, 10000));
    pump(shared_base, NULL, NULL, 200);
    assert_int_equal(s.n, 30);
    for (size_t i = 0; i < 30; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), i);
    shared_release(&s);
}

static void seek_before_assignment_and_from_inside_a_delivery(void **state)
{
    (void)state;
    arbh_kafka *k = kafka_new("kafka_topics = t_seek\ngroup = g-seek");
    struct event_base *base = event_base_new();
    sink s = {.auto_done = true};
    produce_trades(k, "t_seek", 0, 10, 9);
    assert_int_equal(arbh_kafka_seek(k, "t_seek", 0, 6), ARB_OK);
    assert_int_equal(arbh_kafka_seek(k, "order_commands", 0, 6), ARB_EINVAL);
    arbh_kafka_want(k, "t_seek");
    assert_int_equal(arbh_kafka_start(k, base, on_record, &s), ARB_OK);
    want_n w = {&s, 4};
    assert_true(pump(base, has_n, &w, 20000));
    pump(base, NULL, NULL, 200);
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), 6 + i);
    /* And a seek while assigned, from inside a delivery, goes back. */
    s.seek_k = k;
    s.seek_at_n = 6;
    s.seek_to = 2;
    produce_trades(k, "t_seek", 10, 2, 9);
    w.n = 4 + 2 + 10;
    assert_true(pump(base, has_n, &w, 10000));
    pump(base, NULL, NULL, 200);
    assert_int_equal(s.n, 16);
    static const uint64_t want[16] = {6, 7, 8, 9, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(trade_id_of(&s.recs[i]), want[i]);
    arbh_kafka_free(k);
    event_base_free(base);
    sink_free(&s);
}

static void produce_errors_are_retried_without_loss_or_duplicates(void **state)
{
    (void)state;
    static sink s;
    s = (sink){.auto_done = true};
    arbh_kafka *k = shared_for("t_errors", &s);
    arbh_kafka_stats before;
    arbh_kafka_get_stats(k, &before);
    /* Produce requests fail with retriable errors first. */
    rd_kafka_mock_push_request_errors(
        mock, 0 /* Produce */, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    for (int i = 0; i < 200; i++)
        produce_trades(k, "t_errors", (uint64_t)i, 1, (uint64_t)(i % 4));
    want_n w = {&s, 200};
    assert_true(pump(shared_base, has_n, &w, 30000));
    pump(shared_base, NULL, NULL, 500);
    assert_int_equal(s.n, 200);
    int seen[200] = {0};
    uint64_t last[4] = {0};
    bool any[4] = {false};
    for (size_t i = 0; i < s.n; i++) {
        uint64_t id = trade_id_of(&s.recs[i]);
        seen[id]++;
        /* Per key (one partition each), the order of production holds. */
        uint64_t key = s.recs[i].key;
        assert_true(key < 4);
        if (any[key])
            assert_true(id > last[key]);
        last[key] = id;
        any[key] = true;
    }
    for (int i = 0; i < 200; i++)
        assert_int_equal(seen[i], 1);
    arbh_kafka_stats st;
    arbh_kafka_get_stats(k, &st);
    assert_int_equal(st.produce_failed, before.produce_failed);
    shared_release(&s);
}

static void missing_brokers_is_reported_with_file_and_line(void **state)
{
    (void)state;
    arbh_config cfg;
    assert_int_equal(
        arbh_config_load_string(&cfg, "split.ini", "[bus]\ntransport = kafka\n", NULL, 0), 0);
    arbh_kafka *k = NULL;
    char err[512] = "";
    assert_int_equal(arbh_kafka_new(&cfg, "h", &k, err, sizeof err), ARB_EINVAL);
    assert_null(k);
    assert_non_null(strstr(err, "brokers"));
    arbh_config_free(&cfg);

    assert_int_equal(arbh_config_load_string(&cfg, "split.ini",
                                             "[bus]\nbrokers = 127.0.0.1:1\n"
                                             "[kafka]\nno.such.property = 1\n",
                                             NULL, 0),
                     0);
    assert_int_equal(arbh_kafka_new(&cfg, "h", &k, err, sizeof err), ARB_EINVAL);
    assert_non_null(strstr(err, "split.ini:4: [kafka] no.such.property"));
    arbh_config_free(&cfg);

    assert_int_equal(arbh_config_load_string(&cfg, "split.ini",
                                             "[bus]\nbrokers = 127.0.0.1:1\n"
                                             "kafka_topics = order_commands, bad/name\n",
                                             NULL, 0),
                     0);
    assert_int_equal(arbh_kafka_new(&cfg, "h", &k, err, sizeof err), ARB_EINVAL);
    assert_non_null(strstr(err, "split.ini:3: [bus] kafka_topics"));
    arbh_config_free(&cfg);
}

static void routes_follow_kafka_topics_and_produce_after_stop_is_refused(void **state)
{
    (void)state;
    arbh_kafka *k = kafka_new("kafka_topics = order_commands, trade_executed");
    assert_true(arbh_kafka_routes(k, "order_commands"));
    assert_true(arbh_kafka_routes(k, "trade_executed"));
    assert_false(arbh_kafka_routes(k, "system_ticks"));
    uint8_t buf[ARB_TRADE_LEN];
    uint32_t len = trade_bytes(buf, 1, "X");
    assert_int_equal(arbh_kafka_produce(k, "system_ticks", 0, buf, len), ARB_EINVAL);
    assert_int_equal(arbh_kafka_want(k, "system_ticks"), ARB_EINVAL);
    arbh_kafka_stop(k);
    assert_int_equal(arbh_kafka_produce(k, "trade_executed", 0, buf, len), ARB_ESTATE);
    arbh_kafka_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(missing_brokers_is_reported_with_file_and_line),
        cmocka_unit_test(routes_follow_kafka_topics_and_produce_after_stop_is_refused),
        cmocka_unit_test(same_key_lands_in_the_partition_java_clients_pick),
        cmocka_unit_test(every_record_type_round_trips_byte_identical),
        cmocka_unit_test(restart_resumes_at_the_first_record_not_done),
        cmocka_unit_test(rebalance_commits_only_done_records_and_loses_none),
        cmocka_unit_test(host_refusal_offers_the_same_record_again_in_order),
        cmocka_unit_test(full_window_pauses_the_partition_until_records_are_done),
        cmocka_unit_test(long_refusal_pauses_the_partition_and_loses_nothing),
        cmocka_unit_test(groupless_consumer_behind_is_degraded_until_it_catches_up),
        cmocka_unit_test(groupless_consumer_stops_when_its_group_has_members),
        cmocka_unit_test(read_ranges_takes_every_partition_at_once_in_order),
        cmocka_unit_test(seek_before_assignment_and_from_inside_a_delivery),
        cmocka_unit_test(produce_errors_are_retried_without_loss_or_duplicates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
