/*
 * test_kafka_host.c -- the bus's Kafka transport through the real host: two
 * hosts in this process, joined only by a librdkafka mock cluster (real Kafka
 * protocol on loopback TCP). A producer plugin in one, a consumer plugin in
 * the other; every record must arrive once, in order, through a hot reload
 * of the consumer and a restart of its whole host (committed offsets).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "testhost.h"

#define MS 1000000LL

static rd_kafka_mock_cluster_t *mock;
static char bootstrap[256];

typedef struct seq_sink {
    uint64_t next, errors, count;
    uint64_t first; /* the first number received */
} seq_sink;

static void on_seq(void *user, const arb_msg *m)
{
    seq_sink *s = user;
    uint64_t n;
    assert_int_equal(m->len, sizeof n);
    memcpy(&n, m->data, sizeof n);
    if (s->count == 0)
        s->first = n;
    else if (n != s->next)
        s->errors++;
    s->next = n + 1;
    s->count++;
}

static testhost *host(const char *id, const char *group, const char *plugin)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[host]\nid = %s\nlog_level = warn\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\nkafka_topics = test.seq\ngroup = %s\n"
             "commit_interval_ms = 20\n[kafka.consumer]\nsession.timeout.ms = 3100\n"
             "heartbeat.interval.ms = 300\n%s",
             id, bootstrap, group, plugin);
    testhost *t = testhost_new(ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    return t;
}

/* Runs both hosts' main loops in turn until the sink has `want` records. */
static void run_both(testhost *a, testhost *b, seq_sink *s, uint64_t want, int64_t max_ns)
{
    int64_t spent = 0;
    while (s->count < want && spent < max_ns) {
        testhost_run(a, 2 * MS);
        testhost_run(b, 2 * MS);
        spent += 4 * MS;
    }
}

static int setup(void **state)
{
    (void)state;
    mock = testhost_mock_new(1, bootstrap, sizeof bootstrap);
    if (!mock)
        return -1;
    /* One partition: the sequence must come out in the order it went in. */
    rd_kafka_mock_topic_create(mock, "test.seq", 1, 1);
    rd_kafka_mock_topic_create(mock, "test.pos", 2, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testhost_mock_free(mock);
    return 0;
}

static void records_cross_hosts_once_in_order_through_reload_and_restart(void **state)
{
    (void)state;
    testhost *prod = host("producer-1", "g-producer",
                          "[plugin p]\nload = tp_seq.so\nrole = producer\nburst = 50\n"
                          "interval_us = 1000\n");
    testhost *cons =
        host("consumer-1", "g-consumer", "[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    arbh_host *ch = testhost_host(cons);
    assert_true(ch->topics[arbh_bus_topic(ch, "test.seq")]->remote);
    seq_sink s = {0};
    arb_ctx *ctx = testhost_ctx(cons);
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &s);
    run_both(prod, cons, &s, 2000, 20000 * MS);
    assert_true(s.count >= 2000);
    assert_int_equal(s.errors, 0);

    /* Hot reload of the consumer while records flow through Kafka. */
    char err[512];
    assert_int_equal(testhost_reload(cons, "c", NULL, err, sizeof err), ARB_OK);
    run_both(prod, cons, &s, s.count + 2000, 20000 * MS);
    assert_int_equal(s.errors, 0);

    /* The consumer's host goes away and comes back in the same group: it
     * resumes after what it committed, so at most the uncommitted tail
     * repeats and nothing is skipped. */
    uint64_t last = s.next;
    testhost_free(cons);
    testhost_run(prod, 50 * MS);
    cons = host("consumer-1", "g-consumer", "[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    seq_sink r = {0};
    ctx = testhost_ctx(cons);
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &r);
    run_both(prod, cons, &r, 1000, 45000 * MS);
    if (r.count < 1000)
        fail_msg("after restart: %llu records (first %llu, last seen before %llu)",
                 (unsigned long long)r.count, (unsigned long long)r.first,
                 (unsigned long long)last);
    /* It starts at or before the first record we had not seen (nothing
     * skipped), and runs on without a gap or a repeat from there. */
    assert_true(r.first <= last);
    assert_int_equal(r.errors, 0);
    assert_true(r.next > last);
    testhost_free(cons);
    testhost_free(prod);
}

/* ---- positions: what a consumer keeping its own offsets relies on ---- */

typedef struct pos_sink {
    arb_ctx *ctx;
    int topic;
    int assigned[2];  /* assignment callbacks per partition */
    int64_t seek_p0;  /* seek partition 0 here when it is assigned */
    int64_t first[2]; /* first offset delivered per partition */
    int64_t last[2];  /* last offset delivered per partition */
    uint64_t last_value[2];
    int gaps, count;
} pos_sink;

static void on_pos_partitions(void *user, int topic, int partition, int assigned)
{
    pos_sink *s = user;
    if (topic != s->topic || partition < 0 || partition > 1)
        return;
    s->assigned[partition] += assigned ? 1 : -1;
    if (assigned && partition == 0)
        assert_int_equal(arb_seek(s->ctx, topic, 0, s->seek_p0), ARB_OK);
}

static void on_pos(void *user, const arb_msg *m)
{
    pos_sink *s = user;
    assert_true(m->partition == 0 || m->partition == 1);
    int p = m->partition;
    if (s->first[p] < 0)
        s->first[p] = m->offset;
    else if (m->offset != s->last[p] + 1)
        s->gaps++;
    s->last[p] = m->offset;
    memcpy(&s->last_value[p], m->data, sizeof s->last_value[p]);
    s->count++;
}

static int pos_done(void *user)
{
    const pos_sink *s = user;
    return s->last[0] == 39 && s->last[1] == 39;
}

/* What arb_read_range() handed over: records from `from` on, in order, each
 * the value published at its offset. */
typedef struct range_sink {
    int64_t from;
    int partition;
    uint64_t key;
    int n, bad, stop_after;
} range_sink;

static int on_range(void *user, const arb_msg *m)
{
    range_sink *r = user;
    uint64_t v = 0;
    if (m->len == sizeof v)
        memcpy(&v, m->data, sizeof v);
    if (m->partition != r->partition || m->offset != r->from + r->n || m->key != r->key ||
        v != (uint64_t)r->partition * 1000 + (uint64_t)m->offset)
        r->bad++;
    r->n++;
    return r->stop_after && r->n == r->stop_after ? 1 : ARB_OK;
}

static void records_carry_offsets_and_owners_seek_on_assignment(void **state)
{
    (void)state;
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[host]\nid = pos-1\nlog_level = warn\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\nkafka_topics = test.pos\n"
             "group = g-pos\ncommit_interval_ms = 20\n[kafka.consumer]\n"
             "session.timeout.ms = 3100\nheartbeat.interval.ms = 300\n",
             bootstrap);
    testhost *prod = testhost_new(ini);
    assert_non_null(prod);
    assert_int_equal(testhost_start(prod), ARB_OK);
    arb_ctx *pc = testhost_ctx(prod);
    int pt = arb_topic(pc, "test.pos");
    /* 40 records on each partition: one key per partition. */
    uint64_t keys[2] = {0, 0};
    int found = 0;
    for (uint64_t k = 1; found < 2 && k < 1000; k++) {
        /* Probe: the transport partitions by murmur2 of the 8-byte key. */
        uint8_t kb[8];
        for (int i = 0; i < 8; i++)
            kb[i] = (uint8_t)(k >> (8 * i));
        int32_t part = rd_kafka_msg_partitioner_murmur2(NULL, kb, 8, 2, NULL, NULL);
        if (keys[part] == 0) {
            keys[part] = k;
            found++;
        }
    }
    assert_int_equal(found, 2);
    for (uint64_t i = 0; i < 40; i++)
        for (int p = 0; p < 2; p++) {
            uint64_t v = (uint64_t)p * 1000 + i;
            assert_int_equal(arb_publish(pc, pt, keys[p], &v, sizeof v), ARB_OK);
        }
    testhost_run(prod, 200 * MS);

    pos_sink s = {.seek_p0 = 25, .first = {-1, -1}, .last = {-1, -1}};
    char ini2[2048];
    snprintf(ini2, sizeof ini2,
             "[host]\nid = pos-2\nlog_level = warn\nannounce_ms = 0\n"
             "[bus]\ntransport = kafka\nbrokers = %s\nkafka_topics = test.pos\n"
             "group = g-pos-consumer\ncommit_interval_ms = 20\n[kafka.consumer]\n"
             "session.timeout.ms = 3100\nheartbeat.interval.ms = 300\n",
             bootstrap);
    testhost *cons = testhost_new(ini2);
    assert_non_null(cons);
    s.ctx = testhost_ctx(cons);
    s.topic = arb_topic(s.ctx, "test.pos");
    assert_int_equal(arb_on_partitions(s.ctx, on_pos_partitions, &s), ARB_OK);
    assert_true(arb_subscribe(s.ctx, s.topic, on_pos, &s) > 0);
    assert_int_equal(testhost_start(cons), ARB_OK);
    for (int i = 0; i < 200 && !pos_done(&s); i++) {
        testhost_run(prod, 2 * MS);
        testhost_run_until(cons, pos_done, &s, 100 * MS);
    }
    assert_int_equal(s.assigned[0], 1);
    assert_int_equal(s.assigned[1], 1);
    /* Partition 0 starts where the owner sought; partition 1 at the start. */
    assert_int_equal(s.first[0], 25);
    assert_int_equal(s.first[1], 0);
    assert_int_equal(s.last[0], 39);
    assert_int_equal(s.last[1], 39);
    assert_int_equal(s.last_value[0], 39);
    assert_int_equal(s.last_value[1], 1039);
    assert_int_equal(s.gaps, 0);
    assert_int_equal(s.count, 15 + 40);

    /* The last record of each partition, read without the group. */
    for (int p = 0; p < 2; p++) {
        void *bytes = NULL;
        size_t len = 0;
        int64_t off = -1;
        assert_int_equal(arb_read_last(s.ctx, s.topic, p, 10000 * MS, &bytes, &len, &off), ARB_OK);
        assert_int_equal(off, 39);
        assert_int_equal(len, sizeof(uint64_t));
        uint64_t v;
        memcpy(&v, bytes, sizeof v);
        assert_int_equal(v, (uint64_t)p * 1000 + 39);
        free(bytes);
    }
    /* Watermarks, a range of records in order, and the producer's
     * partition of a key, with the same reader. */
    for (int p = 0; p < 2; p++) {
        int64_t lo = -1, hi = -1;
        assert_int_equal(arb_watermarks(s.ctx, s.topic, p, 10000 * MS, &lo, &hi), ARB_OK);
        assert_int_equal(lo, 0);
        assert_int_equal(hi, 40);
        range_sink r = {.from = 30, .partition = p, .key = keys[p]};
        assert_int_equal(
            arb_read_range(s.ctx, s.topic, p, 30, ARB_OFFSET_END, 10000 * MS, on_range, &r),
            ARB_OK);
        assert_int_equal(r.n, 10);
        assert_int_equal(r.bad, 0);
        int32_t part = -1;
        assert_int_equal(arb_partition_of(s.ctx, s.topic, keys[p], 10000 * MS, &part), ARB_OK);
        assert_int_equal(part, p);
    }
    /* A range ending before the high offset, one starting below the low one,
     * and a stop asked for by the callback. */
    range_sink r = {.from = 0, .partition = 1, .key = keys[1]};
    assert_int_equal(arb_read_range(s.ctx, s.topic, 1, 0, 5, 10000 * MS, on_range, &r), ARB_OK);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.bad, 0);
    r = (range_sink){.from = 0, .partition = 1, .key = keys[1], .stop_after = 3};
    assert_int_equal(arb_read_range(s.ctx, s.topic, 1, 0, ARB_OFFSET_END, 10000 * MS, on_range, &r),
                     1);
    assert_int_equal(r.n, 3);
    int64_t lo, hi;
    assert_int_equal(arb_watermarks(s.ctx, s.topic, 7, 10000 * MS, &lo, &hi), ARB_ENOENT);
    /* A topic that does not come through Kafka has no positions. */
    int local = arb_topic(s.ctx, "test.local");
    assert_int_equal(arb_seek(s.ctx, local, 0, 0), ARB_ENOENT);
    assert_int_equal(arb_watermarks(s.ctx, local, 0, MS, &lo, &hi), ARB_ENOENT);
    testhost_free(cons);
    testhost_free(prod);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_cross_hosts_once_in_order_through_reload_and_restart),
        cmocka_unit_test(records_carry_offsets_and_owners_seek_on_assignment),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
