/*
 * test_bus_keys.c -- subscriptions by key (arb_subscribe_keys), through the
 * real host: a participant (tests/plugins/tp_reader.c) that reads some books'
 * market data, or some accounts' order events, gets exactly those records,
 * all of them and in order, and nothing else, with link latency off and on;
 * under latency they arrive when they would without the keys (the records it
 * does not read still take their place on its link); a participant with two
 * subscriptions gets each record once per subscription that reads it.
 *
 * Also the links' delay quantiles, against the delays the reader got.
 *
 * The test's own instance plays the venue: it publishes the records and moves
 * the simulated time (arb_set_time), and reads what the reader republishes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arb/wire.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h" /* the links' metrics */
#include "testhost.h"
#include "../plugins/tp_reader.h"

#define MS 1000000ll
#define T0 (1000 * MS) /* the simulated time the records start at */

typedef struct seen_log {
    tp_seen rec[4096];
    size_t n;
} seen_log;

static void on_seen(void *user, const arb_msg *m)
{
    seen_log *l = user;
    assert_int_equal(m->len, sizeof(tp_seen));
    assert_true(l->n < sizeof l->rec / sizeof l->rec[0]);
    memcpy(&l->rec[l->n++], m->data, sizeof(tp_seen));
}

static uint64_t book_key(const char *venue, const char *symbol)
{
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    arb_fixstr_set(v, ARB_VENUE_LEN, venue);
    arb_fixstr_set(s, ARB_SYMBOL_LEN, symbol);
    return arb_instrument_key(v, s);
}

/* A host with one reader, `reader_keys` its settings, and `extra` sections;
 * the test's instance subscribes to what the reader tells. */
static testhost *start(const char *reader_keys, const char *extra, seen_log *log)
{
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[host]\nid = keys\nlog_level = warn\n[plugin reader]\nload = tp_reader.so\n%s\n%s",
             reader_keys, extra);
    testhost *h = testhost_new(ini);
    if (!h)
        fail_msg("%s", testhost_last_error());
    arb_ctx *ctx = testhost_ctx(h);
    memset(log, 0, sizeof *log);
    assert_true(arb_subscribe(ctx, arb_topic(ctx, "tp.seen"), on_seen, log) >= 0);
    arb_set_time(ctx, T0);
    assert_int_equal(testhost_start(h), ARB_OK);
    return h;
}

static void publish_md(testhost *h, const char *venue, const char *symbol, uint64_t seq)
{
    arb_market_data md = {.kind = ARB_MD_TOP, .book_seq = seq, .bid_px = 100, .bid_qty = 1};
    arb_fixstr_set(md.venue, ARB_VENUE_LEN, venue);
    arb_fixstr_set(md.symbol, ARB_SYMBOL_LEN, symbol);
    uint8_t buf[ARB_MD_LEN(0)];
    assert_int_equal(arb_market_data_encode(&md, buf, sizeof buf), sizeof buf);
    assert_int_equal(arb_publish(testhost_ctx(h), ARB_TOPIC_MARKET_DATA, book_key(venue, symbol),
                                 buf, sizeof buf),
                     ARB_OK);
}

static void publish_event(testhost *h, const char *venue, uint64_t account, uint64_t order_id)
{
    arb_order_event ev = {.kind = ARB_EV_ACCEPTED,
                          .side = ARB_SIDE_BUY,
                          .type = ARB_ORD_LIMIT,
                          .tif = ARB_TIF_GTC,
                          .order_id = order_id,
                          .account = account,
                          .price = 100,
                          .qty = 1,
                          .leaves_qty = 1};
    arb_fixstr_set(ev.venue, ARB_VENUE_LEN, venue);
    arb_fixstr_set(ev.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    uint8_t buf[ARB_ORDER_EVENT_LEN];
    assert_int_equal(arb_order_event_encode(&ev, buf, sizeof buf), sizeof buf);
    assert_int_equal(arb_publish(testhost_ctx(h), ARB_TOPIC_ORDER_EVENTS, account, buf, sizeof buf),
                     ARB_OK);
}

static uint64_t link_delayed(testhost *h, const char *venue)
{
    char labels[128];
    snprintf(labels, sizeof labels, "participant=\"reader\",venue=\"%s\",direction=\"down\"",
             venue);
    arbh_metric *m =
        arbh_metric_get(testhost_host(h), NULL, 'c', "bus_link_delayed_total", labels, NULL);
    assert_non_null(m);
    return atomic_load(&m->u.counter.value);
}

/* Three books' market data, interleaved, `n` of each, 100 us apart: XA:BTCUSD
 * seq 1..n, XB:BTCUSD 1001.., XA:ETHUSD 2001... Then time moves on until
 * everything held is delivered. */
static void three_books(testhost *h, int n)
{
    for (int i = 1; i <= n; i++) {
        arb_set_time(testhost_ctx(h), T0 + i * MS / 10);
        publish_md(h, "XA", "BTCUSD", (uint64_t)i);
        publish_md(h, "XB", "BTCUSD", 1000u + (uint64_t)i);
        publish_md(h, "XA", "ETHUSD", 2000u + (uint64_t)i);
    }
    arb_set_time(testhost_ctx(h), T0 + 1000 * MS);
}

/* The records one subscription got (`which`), in the order it got them. */
static size_t of_sub(const seen_log *l, uint32_t which, tp_seen *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->rec[i].which == which && k < cap)
            out[k++] = l->rec[i];
    return k;
}

#define LAT_XA_1_XB_2 "[latency]\nseed = 42\nXA = constant 1ms\nXB = constant 2ms\n"

static void a_book_reader_gets_all_of_its_book_in_order_and_nothing_else(void **state)
{
    (void)state;
    static const char *const latency[] = {"", LAT_XA_1_XB_2};
    for (int run = 0; run < 2; run++) {
        static seen_log log;
        testhost *h = start("md_keys = XA:BTCUSD", latency[run], &log);
        three_books(h, 50);
        assert_int_equal(log.n, 50);
        for (size_t i = 0; i < log.n; i++) {
            assert_int_equal(log.rec[i].which, 1);
            assert_int_equal(log.rec[i].key, book_key("XA", "BTCUSD"));
            assert_int_equal(log.rec[i].id, i + 1);
            /* Published at T0 + (i+1) x 100 us; XA's link takes 1 ms. */
            int64_t sent = T0 + (int64_t)(i + 1) * MS / 10;
            assert_int_equal(log.rec[i].at, run ? sent + MS : sent);
        }
        if (run) {
            /* Held on XA's link only what it reads; nothing on XB's. */
            assert_int_equal(link_delayed(h, "XA"), 50);
            assert_int_equal(link_delayed(h, "XB"), 0);
        }
        testhost_free(h);
    }
}

/* XA's link draws a delay per record (lognormal) and keeps them in order:
 * a reader of XA:BTCUSD alone gets each of its records at the very time a
 * reader of everything gets it, the ETHUSD records between them passed over
 * but still drawn and waited behind. */
static void records_a_reader_skips_keep_their_place_on_its_link(void **state)
{
    (void)state;
    static seen_log all, btc;
    const char *lat = "[latency]\nseed = 7\nXA = lognormal 1ms 5ms\nXB = constant 1ms\n";
    testhost *h = start("md_keys = *", lat, &all);
    three_books(h, 200);
    testhost_free(h);
    h = start("md_keys = XA:BTCUSD", lat, &btc);
    three_books(h, 200);
    testhost_free(h);
    static tp_seen want[4096];
    size_t n = 0;
    for (size_t i = 0; i < all.n; i++)
        if (all.rec[i].key == book_key("XA", "BTCUSD"))
            want[n++] = all.rec[i];
    assert_int_equal(all.n, 600);
    assert_int_equal(n, 200);
    assert_int_equal(btc.n, n);
    int64_t spread = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(btc.rec[i].id, want[i].id);
        assert_int_equal(btc.rec[i].at, want[i].at);
        spread |= want[i].at - (T0 + (int64_t)(i + 1) * MS / 10) - MS;
    }
    assert_true(spread != 0); /* the delays did vary */
}

/* Two market data subscriptions of one participant, overlapping: each gets
 * the records of its own keys, once; the participant's link holds each
 * record once. */
static void each_subscription_of_a_participant_gets_its_keys_once(void **state)
{
    (void)state;
    static const char *const latency[] = {"", LAT_XA_1_XB_2};
    for (int run = 0; run < 2; run++) {
        static seen_log log;
        testhost *h =
            start("md_keys = XA:BTCUSD\nmd_keys2 = XB:BTCUSD XA:BTCUSD", latency[run], &log);
        three_books(h, 30);
        static tp_seen one[256], two[256];
        size_t n1 = of_sub(&log, 1, one, 256), n2 = of_sub(&log, 2, two, 256);
        assert_int_equal(n1, 30);
        assert_int_equal(n2, 60);
        assert_int_equal(log.n, 90);
        for (size_t i = 0; i < n1; i++)
            assert_int_equal(one[i].id, i + 1);
        uint64_t next_xa = 1, next_xb = 1001;
        for (size_t i = 0; i < n2; i++) {
            if (two[i].key == book_key("XA", "BTCUSD"))
                assert_int_equal(two[i].id, next_xa++);
            else
                assert_int_equal(two[i].id, next_xb++);
        }
        assert_int_equal(next_xa, 31);
        assert_int_equal(next_xb, 1031);
        if (run) {
            assert_int_equal(link_delayed(h, "XA"), 30);
            assert_int_equal(link_delayed(h, "XB"), 30);
        }
        testhost_free(h);
    }
}

/* The reader's second subscription is made after another participant's
 * (an instance of its own plugin, reading everything), so the bus's list
 * has reader, other, reader: the reader's link still holds each record
 * once, and each subscription gets it once. */
static void a_participant_s_subscriptions_apart_in_the_list_get_a_record_once(void **state)
{
    (void)state;
    static seen_log log;
    testhost *h = start("md_keys = XA:BTCUSD\nmd_keys2 = XA:BTCUSD\nmd_keys2_later = true",
                        LAT_XA_1_XB_2 "[plugin other]\nload = tp_reader.so\nmd_keys = *\n"
                                      "out_topic = tp.other\n",
                        &log);
    three_books(h, 20);
    static tp_seen one[64], two[64];
    size_t n1 = of_sub(&log, 1, one, 64), n2 = of_sub(&log, 2, two, 64);
    assert_int_equal(n1, 20);
    assert_int_equal(n2, 19); /* made by the first record's callback: from the second on */
    for (size_t i = 0; i < n2; i++)
        assert_int_equal(two[i].id, i + 2);
    assert_int_equal(link_delayed(h, "XA"), 20);
    testhost_free(h);
}

/* Order events by account: the reader reads accounts 100-109 and sent a
 * command for 100. Under latency 100's events travel its link (1 ms), 105's
 * (read, never commanded: another participant's) arrive at once as ever,
 * and 200's (not read) never. */
static void an_account_reader_gets_its_accounts_events_only(void **state)
{
    (void)state;
    static const char *const latency[] = {"", "[latency]\nseed = 1\nXA = constant 1ms\n"};
    for (int run = 0; run < 2; run++) {
        static seen_log log;
        testhost *h = start("accounts = 100-109\ncommand_account = 100", latency[run], &log);
        for (int i = 1; i <= 20; i++) {
            arb_set_time(testhost_ctx(h), T0 + i * MS / 10);
            publish_event(h, "XA", 100, (uint64_t)i);
            publish_event(h, "XA", 200, 1000u + (uint64_t)i);
            publish_event(h, "XA", 105, 2000u + (uint64_t)i);
        }
        arb_set_time(testhost_ctx(h), T0 + 1000 * MS);
        assert_int_equal(log.n, 40);
        uint64_t next100 = 1, next105 = 2001;
        for (size_t i = 0; i < log.n; i++) {
            const tp_seen *s = &log.rec[i];
            assert_int_equal(s->which, 3);
            assert_true(s->key == 100 || s->key == 105);
            uint64_t seq = s->key == 100 ? next100++ : next105++;
            assert_int_equal(s->id, seq);
            int64_t sent = T0 + (int64_t)(seq % 1000) * MS / 10;
            assert_int_equal(s->at, run && s->key == 100 ? sent + MS : sent);
        }
        assert_int_equal(next100, 21);
        assert_int_equal(next105, 2021);
        testhost_free(h);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t link_gauge(testhost *h, const char *name)
{
    arbh_metric *m =
        arbh_metric_get(testhost_host(h), NULL, 'g', name,
                        "participant=\"reader\",venue=\"XA\",direction=\"down\"", NULL);
    assert_non_null(m);
    return atomic_load(&m->u.gauge.value);
}

/* The link's p50 and p99 gauges are the delays the reader got (FIFO waits
 * included), to within the histogram's 1/16 of an octave below: here after
 * 2,816 records (they are recomputed every 256th). */
static void link_quantiles_are_those_of_the_delays_delivered(void **state)
{
    (void)state;
    enum { N = 11 * 256 };
    static seen_log log;
    testhost *h = start("md_keys = *", "[latency]\nseed = 3\nXA = uniform 1ms 9ms\n", &log);
    for (int i = 1; i <= N; i++) {
        arb_set_time(testhost_ctx(h), T0 + i * MS);
        publish_md(h, "XA", "BTCUSD", (uint64_t)i);
    }
    arb_set_time(testhost_ctx(h), T0 + (N + 100) * MS);
    assert_int_equal(log.n, N);
    static int64_t delay[N];
    for (size_t i = 0; i < N; i++)
        delay[i] = log.rec[i].at - (T0 + (int64_t)log.rec[i].id * MS);
    qsort(delay, N, sizeof delay[0], cmp_i64);
    int64_t p50 = delay[(N + 1) / 2 - 1], p99 = delay[(99 * N + 99) / 100 - 1];
    int64_t g50 = link_gauge(h, "bus_link_delay_p50_ns"),
            g99 = link_gauge(h, "bus_link_delay_p99_ns");
    assert_true(g50 <= p50 && p50 < g50 + g50 / 16 + 1);
    assert_true(g99 <= p99 && p99 < g99 + g99 / 16 + 1);
    assert_true(p99 > p50 + MS);
    testhost_free(h);
}

static void bad_key_ranges_are_refused(void **state)
{
    (void)state;
    static seen_log log;
    testhost *h = start("", "", &log);
    arb_ctx *ctx = testhost_ctx(h);
    arb_key_range backwards = {5, 4}, ok[2] = {{7, 9}, {1, 3}};
    assert_int_equal(arb_subscribe_keys(ctx, ARB_TOPIC_MARKET_DATA, NULL, 0, on_seen, &log),
                     ARB_EINVAL);
    assert_int_equal(arb_subscribe_keys(ctx, ARB_TOPIC_MARKET_DATA, ok, 0, on_seen, &log),
                     ARB_EINVAL);
    assert_int_equal(arb_subscribe_keys(ctx, ARB_TOPIC_MARKET_DATA, &backwards, 1, on_seen, &log),
                     ARB_EINVAL);
    assert_int_equal(arb_subscribe_keys(ctx, ARB_TOPIC_MAX, ok, 2, on_seen, &log), ARB_EINVAL);
    assert_true(arb_subscribe_keys(ctx, ARB_TOPIC_MARKET_DATA, ok, 2, on_seen, &log) >= 0);
    testhost_free(h);
}

/* The host's key sets: sorted, merged where ranges touch or overlap, and
 * answered the same by the short scan and the binary search. */
static void key_sets_answer_membership_exactly(void **state)
{
    (void)state;
    static seen_log log;
    testhost *h = start("", "", &log);
    arbh_instance *in = (arbh_instance *)testhost_ctx(h);
    arb_key_range few[] = {{50, 60}, {10, 20}, {21, 30}, {UINT64_MAX - 1, UINT64_MAX}, {55, 70}};
    arb_key_range many[40];
    for (int i = 0; i < 40; i++) /* 0-1, 10-11, ..., 390-391, given backwards */
        many[i] = (arb_key_range){(uint64_t)(39 - i) * 10, (uint64_t)(39 - i) * 10 + 1};
    assert_true(arbh_bus_subscribe_keys(in, ARB_TOPIC_MARKET_DATA, few, 5, on_seen, &log) >= 0);
    assert_true(arbh_bus_subscribe_keys(in, ARB_TOPIC_MARKET_DATA, many, 40, on_seen, &log) >= 0);
    const arbh_keys *kf = in->subs[in->nsubs - 2]->keys, *km = in->subs[in->nsubs - 1]->keys;
    assert_int_equal(kf->n, 3); /* 10-30, 50-70, the top two */
    assert_int_equal(km->n, 40);
    for (uint64_t k = 0; k < 500; k++) {
        assert_int_equal(arbh_keys_want(kf, k), (k >= 10 && k <= 30) || (k >= 50 && k <= 70));
        assert_int_equal(arbh_keys_want(km, k), k < 400 && k % 10 <= 1);
    }
    assert_true(arbh_keys_want(kf, UINT64_MAX));
    assert_false(arbh_keys_want(kf, UINT64_MAX - 2));
    assert_true(arbh_keys_want(NULL, 12345));
    testhost_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_book_reader_gets_all_of_its_book_in_order_and_nothing_else),
        cmocka_unit_test(records_a_reader_skips_keep_their_place_on_its_link),
        cmocka_unit_test(each_subscription_of_a_participant_gets_its_keys_once),
        cmocka_unit_test(a_participant_s_subscriptions_apart_in_the_list_get_a_record_once),
        cmocka_unit_test(an_account_reader_gets_its_accounts_events_only),
        cmocka_unit_test(link_quantiles_are_those_of_the_delays_delivered),
        cmocka_unit_test(bad_key_ranges_are_refused),
        cmocka_unit_test(key_sets_answer_membership_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
