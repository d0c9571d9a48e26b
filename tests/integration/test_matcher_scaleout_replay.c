/*
 * test_matcher_scaleout_replay.c -- how a matcher takes over a partition,
 * pinned deterministically: real hosts (embedded) running matcher.so over a
 * librdkafka mock cluster in this process, one partition per topic. The
 * situation a kill -9 leaves (a snapshot older than the output already in
 * Kafka) is built exactly: the snapshot topic gets an older snapshot record
 * appended again.
 *
 * Not here: processes and kill -9 (test_matcher_scaleout.c), the matching
 * rules (test_book*).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arb/wire.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "testhost.h"

#define MS 1000000LL
#define SNAP_TOPIC "matcher_snapshots"

static rd_kafka_t *reader, *writer;
static rd_kafka_mock_cluster_t *mock;
static char bootstrap[256];

static const char instruments[] =
    "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.01\nqty_decimals = 0\n"
    "lot_size = 1\nmin_qty = 1\nmax_qty = 1000\nref_price = 100.00\nband_bps = 5000\n"
    "[instrument XB:BTCUSD]\nprice_decimals = 2\ntick_size = 0.01\nqty_decimals = 0\n"
    "lot_size = 1\nmin_qty = 1\nmax_qty = 1000\nref_price = 100.00\nband_bps = 5000\n";

static const char all_topics[] =
    "order_commands,order_events,trade_executed,market_data," SNAP_TOPIC;

static testhost *kafka_host(const char *id, const char *group, const char *topics,
                            const char *plugins)
{
    char ini[4096];
    snprintf(ini, sizeof ini,
             "[host]\nid = %s\nlog_level = error\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\ngroup = %s\n"
             "kafka_topics = %s"
             "\ncommit_interval_ms = 20\n[kafka.consumer]\nsession.timeout.ms = 3100\n"
             "heartbeat.interval.ms = 300\nfetch.wait.max.ms = 20\n%s%s",
             id, bootstrap, group, topics, instruments, plugins);
    testhost *t = testhost_new(ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    return t;
}

static testhost *matcher_host(void)
{
    return kafka_host("matcher-1", "g-matcher", all_topics,
                      "[plugin matcher]\nload = matcher.so\nstamp = command\n"
                      "snapshot_interval_ms = 100\n");
}

static int64_t high(const char *topic)
{
    int64_t lo, hi;
    assert_int_equal(rd_kafka_query_watermark_offsets(reader, topic, 0, &lo, &hi, 5000), 0);
    return hi;
}

/* The record at `offset` of partition 0 (malloc'd). */
static void *record_at(const char *topic, int64_t offset, size_t *len)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = offset;
    rd_kafka_assign(reader, l);
    rd_kafka_topic_partition_list_destroy(l);
    void *bytes = NULL;
    for (int i = 0; i < 100 && !bytes; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 100);
        if (!m)
            continue;
        if (!m->err && m->offset == offset) {
            bytes = malloc(m->len);
            memcpy(bytes, m->payload, m->len);
            *len = m->len;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(reader, NULL);
    assert_non_null(bytes);
    return bytes;
}

/* The input offset the newest snapshot covers, -1 if none. */
static int64_t snapshot_covers(void)
{
    int64_t hi = high(SNAP_TOPIC);
    if (hi == 0)
        return -1;
    size_t len;
    uint8_t *p = record_at(SNAP_TOPIC, hi - 1, &len);
    int64_t off = len >= 24 ? arb_get_i64(p + 16) : -1;
    free(p);
    return off;
}

/* Runs the host until its newest snapshot covers the whole input. */
static void run_until_snapshot_covers_input(testhost *t)
{
    int64_t want = high("order_commands") - 1;
    for (int i = 0; i < 300 && snapshot_covers() != want; i++)
        testhost_run(t, 50 * MS);
    assert_int_equal(snapshot_covers(), want);
}

/* Appends a record to partition 0 of a topic, as a broken or older writer
 * would have. */
static void append(const char *topic, const void *bytes, size_t len)
{
    assert_int_equal(rd_kafka_producev(writer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE((void *)bytes, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(writer, 5000), 0);
}

/* Crossing orders: every pair trades once. Keyed by instrument as the bus
 * keys them (8 bytes, little-endian); one partition holds them all. */
static void publish_pairs(int first, int pairs)
{
    uint8_t buf[ARB_ORDER_CMD_LEN];
    for (int i = first; i < first + pairs; i++)
        for (int side = ARB_SIDE_SELL; side >= ARB_SIDE_BUY; side--) {
            arb_order_cmd c = {.action = ARB_CMD_NEW,
                               .side = (uint8_t)side,
                               .type = ARB_ORD_LIMIT,
                               .tif = ARB_TIF_GTC};
            arb_fixstr_set(c.venue, ARB_VENUE_LEN, i % 2 ? "XB" : "XA");
            arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
            c.order_id = (uint64_t)i * 2 + (uint64_t)side;
            c.account = (uint64_t)side;
            c.price = 10000 + i % 5;
            c.qty = 1 + i % 3;
            c.ts = i + 1;
            uint32_t len = arb_order_cmd_encode(&c, buf, sizeof buf);
            uint8_t key[8];
            arb_put_u64(key, arb_instrument_key(c.venue, c.symbol));
            assert_int_equal(rd_kafka_producev(writer, RD_KAFKA_V_TOPIC("order_commands"),
                                               RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(key, 8),
                                               RD_KAFKA_V_VALUE(buf, len),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             0);
        }
    assert_int_equal(rd_kafka_flush(writer, 5000), 0);
}

typedef struct outputs {
    int64_t trades, events, md;
} outputs;

static outputs output_highs(void)
{
    return (outputs){high("trade_executed"), high("order_events"), high("market_data")};
}

static arb_trade newest_trade(void)
{
    size_t len;
    void *p = record_at("trade_executed", high("trade_executed") - 1, &len);
    arb_trade t;
    assert_int_equal(arb_trade_decode(p, len, &t), ARB_OK);
    free(p);
    return t;
}

/* What a crash that lost a topic's last two records leaves: the log made
 * to end at an older record again (a copy of the third from the end). */
typedef struct lost_tail {
    const char *topic;
    int64_t hi; /* the high offset before the copy */
    void *lost[2];
    size_t len[2];
} lost_tail;

static lost_tail cut_back_two(const char *topic)
{
    lost_tail t = {.topic = topic, .hi = high(topic)};
    size_t len;
    void *old = record_at(topic, t.hi - 3, &len);
    t.lost[0] = record_at(topic, t.hi - 2, &t.len[0]);
    t.lost[1] = record_at(topic, t.hi - 1, &t.len[1]);
    append(topic, old, len);
    free(old);
    return t;
}

/* The two records came out again after the copy, byte for byte, and
 * nothing else did. */
static void expect_republished(lost_tail *t)
{
    assert_int_equal(high(t->topic), t->hi + 3);
    for (int i = 0; i < 2; i++) {
        size_t n;
        void *again = record_at(t->topic, t->hi + 1 + i, &n);
        assert_int_equal(n, t->len[i]);
        assert_memory_equal(again, t->lost[i], n);
        free(again);
        free(t->lost[i]);
    }
}

static void *snap_k;
static size_t snap_k_len;
static outputs after_all;

/* Input in two halves: a matcher takes the first and leaves with a
 * snapshot (kept aside); the next takes over from it and does the second. */
static void a_matcher_taking_over_continues_from_the_last_snapshot(void **state)
{
    (void)state;
    publish_pairs(0, 40);
    testhost *m = matcher_host();
    run_until_snapshot_covers_input(m);
    snap_k = record_at(SNAP_TOPIC, high(SNAP_TOPIC) - 1, &snap_k_len);
    testhost_free(m);
    outputs half = output_highs();
    assert_int_equal(half.trades, 40);

    publish_pairs(40, 40);
    m = matcher_host();
    run_until_snapshot_covers_input(m);
    testhost_free(m);
    after_all = output_highs();
    /* Nothing of the first half was produced again. */
    assert_int_equal(after_all.trades, 80);
    arb_trade t = newest_trade();
    assert_int_equal(t.seq, 40); /* the 40th trade of its book */
}

/* What a kill -9 leaves: the newest snapshot is older than the output in
 * Kafka. The next owner replays from it and publishes nothing twice, then
 * goes on where the output stopped. */
static void replay_from_an_older_snapshot_repeats_no_output(void **state)
{
    (void)state;
    append(SNAP_TOPIC, snap_k, snap_k_len);
    testhost *m = matcher_host();
    run_until_snapshot_covers_input(m);
    outputs now = output_highs();
    assert_int_equal(now.trades, after_all.trades);
    assert_int_equal(now.events, after_all.events);
    assert_int_equal(now.md, after_all.md);

    /* New input after the replay: published once, ids continuing. */
    arb_trade before = newest_trade();
    publish_pairs(80, 2);
    run_until_snapshot_covers_input(m);
    now = output_highs();
    assert_int_equal(now.trades, after_all.trades + 2);
    arb_trade t = newest_trade();
    assert_int_equal(t.seq, before.seq + 1);
    assert_int_equal(t.trade_id, before.trade_id + 1);
    after_all = now;
    testhost_free(m);
}

/* A snapshot that names another partition (the snapshot topic has a
 * different partition count) is refused loudly; the books are rebuilt from
 * the start of the input, still without repeating output. */
static void snapshot_of_another_partition_is_refused_and_the_books_rebuilt(void **state)
{
    (void)state;
    uint8_t *p = malloc(snap_k_len);
    memcpy(p, snap_k, snap_k_len);
    arb_put_u32(p + 8, 1); /* "order_commands partition 1" */
    append(SNAP_TOPIC, p, snap_k_len);
    free(p);
    testhost *m = matcher_host();
    run_until_snapshot_covers_input(m);
    arbh_instance *in = arbh_host_find(testhost_host(m), "matcher");
    assert_non_null(in);
    assert_int_equal(in->healthy, 0);
    assert_non_null(strstr(in->health, "snapshot"));
    outputs now = output_highs();
    assert_int_equal(now.trades, after_all.trades);
    assert_int_equal(now.events, after_all.events);
    assert_int_equal(now.md, after_all.md);
    testhost_free(m);
}

/* A snapshot ahead of the trades in Kafka (a crash lost trades it holds;
 * here the log is made to end at an older trade) is not used: the books are
 * rebuilt from the start and the trades after that one are published. */
static void snapshot_ahead_of_the_trades_in_kafka_is_not_used(void **state)
{
    (void)state;
    lost_tail t = cut_back_two("trade_executed");
    testhost *m = matcher_host();
    for (int i = 0; i < 300 && high("trade_executed") < t.hi + 3; i++)
        testhost_run(m, 50 * MS);
    testhost_run(m, 300 * MS);
    expect_republished(&t);
    /* Order events and market data were all out already. */
    outputs now = output_highs();
    assert_int_equal(now.events, after_all.events);
    assert_int_equal(now.md, after_all.md);
    testhost_free(m);
}

/* A kill -9 can leave a command's trade in Kafka and its order events not
 * (they go to other partitions, keyed by account): here order_events is
 * made to end at an older event of these books. The next owner publishes
 * the two events after it again, byte for byte, and nothing else. */
static void order_events_that_never_got_out_are_published_by_the_next_owner(void **state)
{
    (void)state;
    outputs before = output_highs();
    lost_tail t = cut_back_two("order_events");
    append(SNAP_TOPIC, snap_k, snap_k_len); /* the replay covers those commands */
    testhost *m = matcher_host();
    for (int i = 0; i < 300 && high("order_events") < t.hi + 3; i++)
        testhost_run(m, 50 * MS);
    run_until_snapshot_covers_input(m);
    expect_republished(&t);
    /* Trades and market data were all out already. */
    outputs now = output_highs();
    assert_int_equal(now.trades, before.trades);
    assert_int_equal(now.md, before.md);
    testhost_free(m);
}

/* Snapshots published to a topic that stays in process would be lost
 * without a word: the matcher says so at its first partition. */
static void snapshot_topic_outside_kafka_is_reported(void **state)
{
    (void)state;
    testhost *m = kafka_host("matcher-1", "g-matcher",
                             "order_commands,order_events,trade_executed,market_data",
                             "[plugin matcher]\nload = matcher.so\nstamp = command\n");
    arbh_instance *in = arbh_host_find(testhost_host(m), "matcher");
    assert_non_null(in);
    for (int i = 0; i < 200 && in->healthy; i++)
        testhost_run(m, 50 * MS);
    assert_int_equal(in->healthy, 0);
    assert_non_null(strstr(in->health, "kafka_topics"));
    testhost_free(m);
}

/* A hot reload hands the owned partitions' books to the new code: matching
 * goes on from where it was, nothing is replayed or repeated. */
static void hot_reload_keeps_the_owned_partitions(void **state)
{
    (void)state;
    testhost *m = matcher_host();
    publish_pairs(90, 2);
    run_until_snapshot_covers_input(m);
    outputs before = output_highs();
    arb_trade last = newest_trade();
    char err[512];
    assert_int_equal(testhost_reload(m, "matcher", NULL, err, sizeof err), ARB_OK);
    publish_pairs(92, 2);
    run_until_snapshot_covers_input(m);
    outputs now = output_highs();
    assert_int_equal(now.trades, before.trades + 2);
    arb_trade t = newest_trade();
    assert_int_equal(t.trade_id, last.trade_id + 1);
    testhost_free(m);
}

static int setup(void **state)
{
    (void)state;
    struct stat st;
    const char *so = testhost_plugin_path("matcher");
    if (!so || stat(so, &st))
        return -1;
    mock = testhost_mock_new(1, bootstrap, sizeof bootstrap);
    if (!mock)
        return -1;
    static const char *const topics[] = {"order_commands", "order_events", "trade_executed",
                                         "market_data", SNAP_TOPIC};
    for (int i = 0; i < 5; i++)
        rd_kafka_mock_topic_create(mock, topics[i], 1, 1);
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(c, "group.id", "test-reader", err, sizeof err);
    rd_kafka_conf_set(c, "fetch.wait.max.ms", "20", err, sizeof err);
    reader = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err);
    writer = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    return reader && writer ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(snap_k);
    rd_kafka_destroy(writer);
    rd_kafka_destroy(reader);
    testhost_mock_free(mock);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* In order: each builds on the log the one before left. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_matcher_taking_over_continues_from_the_last_snapshot),
        cmocka_unit_test(replay_from_an_older_snapshot_repeats_no_output),
        cmocka_unit_test(snapshot_of_another_partition_is_refused_and_the_books_rebuilt),
        cmocka_unit_test(snapshot_ahead_of_the_trades_in_kafka_is_not_used),
        cmocka_unit_test(order_events_that_never_got_out_are_published_by_the_next_owner),
        cmocka_unit_test(snapshot_topic_outside_kafka_is_reported),
        cmocka_unit_test(hot_reload_keeps_the_owned_partitions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
