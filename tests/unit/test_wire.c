/*
 * test_wire.c -- the wire records of sdk/arb/wire.h and the exact decimals of
 * sdk/arb/fixed.h: round trips over random values, and every way a decoder
 * must refuse bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arb/fixed.h>
#include <arb/instrument.h>
#include <arb/wire.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void rnd_text(char *f, unsigned n, int required)
{
    memset(f, 0, n);
    unsigned len = (unsigned)(rnd() % (n + 1));
    if (required && len == 0)
        len = 1;
    for (unsigned i = 0; i < len; i++)
        f[i] = (char)(0x21 + rnd() % 94);
}

static void order_cmd_round_trips(void **state)
{
    (void)state;
    for (int k = 0; k < 10000; k++) {
        arb_order_cmd a = {0}, b;
        memset(&b, 0, sizeof b);
        a.action = (uint8_t)(1 + rnd() % 4);
        a.side = (uint8_t)(1 + rnd() % 2);
        a.type = (uint8_t)(1 + rnd() % 2);
        a.tif = (uint8_t)(1 + rnd() % 3);
        a.flags = (uint8_t)(rnd() % 2);
        a.stp = (uint8_t)(rnd() % 4);
        rnd_text(a.venue, ARB_VENUE_LEN, 1);
        rnd_text(a.symbol, ARB_SYMBOL_LEN, 1);
        a.order_id = rnd(), a.account = rnd(), a.price = (int64_t)rnd(), a.qty = (int64_t)rnd();
        a.ts = (int64_t)rnd(), a.client_ref = rnd();
        uint8_t buf[ARB_ORDER_CMD_LEN];
        assert_int_equal(arb_order_cmd_encode(&a, buf, sizeof buf), ARB_ORDER_CMD_LEN);
        assert_int_equal(arb_order_cmd_decode(buf, sizeof buf, &b), ARB_OK);
        assert_memory_equal(&a, &b, sizeof a);
        assert_int_equal(arb_wire_type(buf, sizeof buf), ARB_MSG_ORDER_CMD);
    }
}

static void order_event_round_trips(void **state)
{
    (void)state;
    for (int k = 0; k < 10000; k++) {
        arb_order_event a = {0}, b;
        memset(&b, 0, sizeof b);
        a.kind = (uint8_t)(1 + rnd() % ARB_EV_KIND_MAX);
        a.reason = (uint8_t)(rnd() % (ARB_R_REASON_MAX + 1));
        a.side = (uint8_t)(rnd() % 3), a.type = (uint8_t)(rnd() % 3), a.tif = (uint8_t)(rnd() % 4);
        a.flags = (uint8_t)(rnd() % 2);
        rnd_text(a.venue, ARB_VENUE_LEN, 0);
        rnd_text(a.symbol, ARB_SYMBOL_LEN, 0);
        a.order_id = rnd(), a.account = rnd(), a.price = (int64_t)rnd(), a.qty = (int64_t)rnd();
        a.leaves_qty = (int64_t)rnd(), a.filled_qty = (int64_t)rnd(), a.last_px = (int64_t)rnd();
        a.last_qty = (int64_t)rnd(), a.trade_id = rnd(), a.ts = (int64_t)rnd(), a.seq = rnd();
        a.client_ref = rnd();
        a.liquidity = (uint8_t)(1 + rnd() % 2), a.fee = (int64_t)rnd();
        uint8_t buf[ARB_ORDER_EVENT_LEN];
        assert_int_equal(arb_order_event_encode(&a, buf, sizeof buf), ARB_ORDER_EVENT_LEN);
        assert_int_equal(arb_order_event_decode(buf, sizeof buf, &b), ARB_OK);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static void trade_round_trips(void **state)
{
    (void)state;
    for (int k = 0; k < 10000; k++) {
        arb_trade a = {0}, b;
        memset(&b, 0, sizeof b);
        rnd_text(a.venue, ARB_VENUE_LEN, 1);
        rnd_text(a.symbol, ARB_SYMBOL_LEN, 1);
        a.trade_id = rnd(), a.price = (int64_t)(rnd() >> 2) + 1, a.qty = (int64_t)(rnd() >> 2) + 1;
        a.buy_order_id = rnd(), a.sell_order_id = rnd(), a.buy_account = rnd();
        a.sell_account = rnd(), a.ts = (int64_t)rnd(), a.seq = rnd();
        a.aggressor = (uint8_t)(1 + rnd() % 2);
        a.buy_fee = (int64_t)rnd(), a.sell_fee = -(int64_t)(rnd() >> 1);
        uint8_t buf[ARB_TRADE_LEN];
        assert_int_equal(arb_trade_encode(&a, buf, sizeof buf), ARB_TRADE_LEN);
        assert_int_equal(arb_trade_decode(buf, sizeof buf, &b), ARB_OK);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static void market_data_round_trips_with_levels(void **state)
{
    (void)state;
    static uint8_t buf[ARB_MD_LEN(64)];
    for (int k = 0; k < 2000; k++) {
        arb_market_data a = {0}, b;
        a.kind = (uint8_t)(1 + rnd() % 3);
        a.n_levels = (uint32_t)(rnd() % 65);
        rnd_text(a.venue, ARB_VENUE_LEN, 1);
        rnd_text(a.symbol, ARB_SYMBOL_LEN, 1);
        a.book_seq = rnd(), a.ts = (int64_t)rnd();
        a.bid_px = (int64_t)rnd(), a.bid_qty = (int64_t)(rnd() >> 1);
        a.ask_px = (int64_t)rnd(), a.ask_qty = (int64_t)(rnd() >> 1);
        arb_md_level lv[64];
        uint32_t len = arb_market_data_encode(&a, buf, sizeof buf);
        assert_int_equal(len, ARB_MD_LEN(a.n_levels));
        for (uint32_t i = 0; i < a.n_levels; i++) {
            lv[i] = (arb_md_level){(uint8_t)(1 + rnd() % 2), (uint32_t)rnd(), (int64_t)rnd(),
                                   (int64_t)(rnd() >> 1)};
            arb_md_put_level(buf, i, &lv[i]);
        }
        assert_int_equal(arb_market_data_decode(buf, len, &b), ARB_OK);
        assert_int_equal(b.n_levels, a.n_levels);
        assert_int_equal(b.bid_px, a.bid_px);
        assert_int_equal(b.ask_qty, a.ask_qty);
        assert_memory_equal(b.venue, a.venue, ARB_VENUE_LEN);
        for (uint32_t i = 0; i < a.n_levels; i++) {
            arb_md_level x;
            arb_md_get_level(&b, i, &x);
            assert_int_equal(x.side, lv[i].side);
            assert_int_equal(x.orders, lv[i].orders);
            assert_int_equal(x.price, lv[i].price);
            assert_int_equal(x.qty, lv[i].qty);
        }
    }
}

static void tick_and_market_event_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < 10000; k++) {
        arb_tick a = {rnd(), (int64_t)rnd(), (int64_t)rnd(), (uint32_t)rnd(),
                      (uint8_t)(1 + rnd() % 2)},
                 b;
        memset(&b, 0, sizeof b);
        uint8_t buf[ARB_MARKET_EVENT_LEN];
        assert_int_equal(arb_tick_encode(&a, buf, sizeof buf), ARB_TICK_LEN);
        assert_int_equal(arb_tick_decode(buf, ARB_TICK_LEN, &b), ARB_OK);
        assert_int_equal(a.seq, b.seq);
        assert_int_equal(a.sim_ns, b.sim_ns);
        assert_int_equal(a.wall_ns, b.wall_ns);
        assert_int_equal(a.speed, b.speed);
        assert_int_equal(a.mode, b.mode);
        arb_market_event c = {0}, d;
        memset(&d, 0, sizeof d);
        c.kind = (uint8_t)(1 + rnd() % 3);
        rnd_text(c.venue, ARB_VENUE_LEN, 0);
        rnd_text(c.symbol, ARB_SYMBOL_LEN, 1);
        c.value = (int64_t)rnd(), c.shock = (int64_t)rnd(), c.ts = (int64_t)rnd(), c.seq = rnd();
        assert_int_equal(arb_market_event_encode(&c, buf, sizeof buf), ARB_MARKET_EVENT_LEN);
        assert_int_equal(arb_market_event_decode(buf, ARB_MARKET_EVENT_LEN, &d), ARB_OK);
        assert_memory_equal(&c, &d, sizeof c);
    }
}

static void service_round_trips_with_plugins(void **state)
{
    (void)state;
    static uint8_t buf[ARB_SERVICE_LEN(8)];
    arb_service a = {0}, b = {0};
    a.status = ARB_SVC_ALIVE;
    a.n_plugins = 3;
    a.pid = 4242;
    arb_fixstr_set(a.host_id, ARB_SVC_ID_LEN, "matcher-1");
    arb_fixstr_set(a.admin, ARB_SVC_ADDR_LEN, "127.0.0.1:9100");
    a.started_at = 1, a.ts = 2;
    uint32_t len = arb_service_encode(&a, buf, sizeof buf);
    assert_int_equal(len, ARB_SERVICE_LEN(3));
    for (uint32_t i = 0; i < 3; i++) {
        arb_service_plugin p = {0};
        arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, i == 0 ? "matcher" : "agent");
        arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, "x");
        arb_fixstr_set(p.version, ARB_SVC_VER_LEN, "1.0.0");
        arb_service_put_plugin(buf, i, &p);
    }
    assert_int_equal(arb_service_decode(buf, len, &b), ARB_OK);
    assert_int_equal(b.n_plugins, 3);
    assert_int_equal(b.pid, 4242);
    arb_service_plugin p;
    arb_service_get_plugin(&b, 0, &p);
    assert_memory_equal(p.instance, "matcher", 7);
}

/* Version 2 carries each image's build id, version 3 each instance's
 * account; version 1 and 2 records (journals and Kafka logs written before)
 * still decode, with an empty build id and account 0, and each re-encodes
 * to its own bytes. */
static void service_records_of_both_versions_decode(void **state)
{
    (void)state;
    uint8_t buf[ARB_SERVICE_LEN(1)], again[ARB_SERVICE_LEN(1)];
    for (uint8_t v = 1; v <= 3; v++) {
        arb_service a = {0}, b = {0};
        a.version = v;
        a.status = ARB_SVC_ALIVE;
        a.n_plugins = 1;
        arb_fixstr_set(a.host_id, ARB_SVC_ID_LEN, "h");
        uint32_t len = arb_service_encode(&a, buf, sizeof buf);
        assert_int_equal(len, ARB_SERVICE_LEN_V(v, 1));
        arb_service_plugin p = {0}, q;
        arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, "matcher");
        arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, "matcher");
        arb_fixstr_set(p.version, ARB_SVC_VER_LEN, "1.2.0");
        arb_fixstr_set(p.build_id, ARB_SVC_BUILD_LEN, "0123456789abcdef0123456789abcdef01234567");
        p.account = 0x0102030405060708ull;
        p.config_digest = 0x1112131415161718ull;
        arb_service_put_plugin(buf, 0, &p);
        assert_int_equal(arb_service_decode(buf, len, &b), ARB_OK);
        assert_int_equal(b.version, v);
        arb_service_get_plugin(&b, 0, &q);
        assert_memory_equal(q.version, "1.2.0", 5);
        if (v == 1)
            assert_int_equal(q.build_id[0], 0);
        else
            assert_memory_equal(q.build_id, p.build_id, ARB_SVC_BUILD_LEN);
        assert_true(q.account == (v >= 3 ? p.account : 0));
        assert_true(q.config_digest == (v >= 3 ? p.config_digest : 0));
        assert_int_equal(arb_service_encode(&b, again, sizeof again), len);
        arb_service_put_plugin(again, 0, &q);
        assert_memory_equal(again, buf, len);
    }
    arb_service a = {0}, b = {0};
    a.version = 4; /* not a version this build writes or reads */
    a.status = ARB_SVC_ALIVE;
    assert_int_equal(arb_service_encode(&a, buf, sizeof buf), 0);
    a.version = 3;
    uint32_t len = arb_service_encode(&a, buf, sizeof buf);
    arb_put_u16(buf + 2, 4);
    assert_int_equal(arb_service_decode(buf, len, &b), ARB_EBADMSG);
}

static void decoders_refuse_malformed_records(void **state)
{
    (void)state;
    arb_order_cmd c = {0}, out;
    c.action = ARB_CMD_NEW, c.side = ARB_SIDE_BUY, c.type = ARB_ORD_LIMIT, c.tif = ARB_TIF_GTC;
    arb_fixstr_set(c.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    uint8_t good[ARB_ORDER_CMD_LEN], b[ARB_ORDER_CMD_LEN + 8];
    arb_order_cmd_encode(&c, good, sizeof good);
    assert_int_equal(arb_order_cmd_decode(good, sizeof good, &out), ARB_OK);
    /* Each mutation must be refused, with a reason. */
    struct {
        size_t at;
        uint8_t v;
        const char *why;
    } muts[] = {
        {0, 2, "wrong record type"},   {2, 9, "unsupported version"},
        {8, 0, "action out of range"}, {8, 5, "action out of range"},
        {9, 3, "enum out of range"},   {12, 2, "enum out of range"},
        {14, 1, "enum out of range"},  {16, 0, "required text field is empty"},
        {17, 0x01, "non-printable"},   {19, 'Z', "padding is not zero"},
    };
    for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
        memcpy(b, good, sizeof good);
        b[muts[i].at] = muts[i].v;
        assert_int_equal(arb_order_cmd_decode(b, sizeof good, &out), ARB_EBADMSG);
        if (!strstr(arb_wire_error(), muts[i].why))
            fail_msg("mutation %zu: '%s' lacks '%s'", i, arb_wire_error(), muts[i].why);
    }
    assert_int_equal(arb_order_cmd_decode(good, 7, &out), ARB_EBADMSG);
    assert_int_equal(arb_order_cmd_decode(good, sizeof good - 1, &out), ARB_EBADMSG);
    memcpy(b, good, sizeof good);
    memset(b + sizeof good, 0, 8);
    arb_put_u32(b + 4, sizeof good + 8);
    assert_int_equal(arb_order_cmd_decode(b, sizeof good + 8, &out), ARB_EBADMSG);
    /* Another type's record is not an order command. */
    arb_tick t = {1, 2, 3, 4, ARB_TICK_SIM};
    uint8_t tb[ARB_TICK_LEN];
    arb_tick_encode(&t, tb, sizeof tb);
    assert_int_equal(arb_order_cmd_decode(tb, sizeof tb, &out), ARB_EBADMSG);
    assert_int_equal(arb_wire_type(tb, sizeof tb), ARB_MSG_TICK);
    assert_int_equal(arb_wire_type(tb, sizeof tb - 1), 0);
}

/* The byte-by-byte reading of a text field that arb__wire_get_text reads
 * eight bytes at a time: its answer and its error. */
static const char *text_field_byte_by_byte(const uint8_t *p, unsigned n, int required)
{
    unsigned i = 0;
    while (i < n && p[i] != 0) {
        if (p[i] < 0x21 || p[i] > 0x7e)
            return "text field has a non-printable character";
        i++;
    }
    if (required && i == 0)
        return "required text field is empty";
    for (unsigned j = i; j < n; j++)
        if (p[j] != 0)
            return "text field padding is not zero";
    return NULL;
}

static void text_fields_read_word_by_word_as_byte_by_byte(void **state)
{
    (void)state;
    /* Every byte at each edge of the rules, in every place of 8- and
     * 16-byte fields, over many random fields made of them. */
    static const uint8_t edge[] = {0x00, 0x01, 0x20, 0x21, 0x41, 0x7e, 0x7f, 0x80, 0xa1, 0xff};
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 200000; round++) {
        unsigned n = round % 2 ? 16 : 8;
        uint8_t f[16];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned len = (unsigned)(x % (n + 1)); /* text, then mostly NUL */
        for (unsigned i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned r = (unsigned)(x >> 32);
            f[i] = i < len ? (r % 4 ? (uint8_t)(0x21 + r % 94) : edge[r % sizeof edge])
                           : (r % 8 ? 0 : edge[r % sizeof edge]);
        }
        for (int required = 0; required < 2; required++) {
            char out[16];
            const char *want = text_field_byte_by_byte(f, n, required);
            int rc = arb__wire_get_text(f, n, out, required);
            if (want == NULL) {
                assert_int_equal(rc, ARB_OK);
                assert_memory_equal(out, f, n);
            } else {
                assert_int_equal(rc, ARB_EBADMSG);
                assert_string_equal(arb_wire_error(), want);
            }
        }
    }
}

static void market_data_count_must_match_length(void **state)
{
    (void)state;
    arb_market_data m = {0}, out;
    m.kind = ARB_MD_SNAPSHOT;
    m.n_levels = 2;
    arb_fixstr_set(m.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(m.symbol, ARB_SYMBOL_LEN, "ETH");
    uint8_t buf[ARB_MD_LEN(2)];
    arb_market_data_encode(&m, buf, sizeof buf);
    arb_md_level l = {ARB_SIDE_BUY, 1, 100, 5};
    arb_md_put_level(buf, 0, &l);
    arb_md_put_level(buf, 1, &l);
    assert_int_equal(arb_market_data_decode(buf, sizeof buf, &out), ARB_OK);
    arb_put_u32(buf + ARB_WIRE_HDR + 4, 3);
    assert_int_equal(arb_market_data_decode(buf, sizeof buf, &out), ARB_EBADMSG);
    arb_put_u32(buf + ARB_WIRE_HDR + 4, 2);
    buf[ARB_MD_FIXED_LEN] = 7; /* level side */
    assert_int_equal(arb_market_data_decode(buf, sizeof buf, &out), ARB_EBADMSG);
    assert_int_equal(arb_market_data_encode(&m, buf, 10), 0);
}

static void trade_with_zero_quantity_is_refused(void **state)
{
    (void)state;
    arb_trade t = {0}, out;
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTC");
    t.price = 10, t.qty = 0, t.aggressor = ARB_SIDE_BUY;
    uint8_t buf[ARB_TRADE_LEN];
    arb_trade_encode(&t, buf, sizeof buf);
    assert_int_equal(arb_trade_decode(buf, sizeof buf, &out), ARB_EBADMSG);
}

static void decimals_convert_exactly_or_not_at_all(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(arb_dec_parse_cstr("101.25", 2, &v), ARB_OK);
    assert_int_equal(v, 10125);
    assert_int_equal(arb_dec_parse_cstr("101.250", 2, &v), ARB_OK);
    assert_int_equal(v, 10125);
    assert_int_equal(arb_dec_parse_cstr("-0.5", 3, &v), ARB_OK);
    assert_int_equal(v, -500);
    assert_int_equal(arb_dec_parse_cstr("7", 0, &v), ARB_OK);
    assert_int_equal(v, 7);
    assert_int_equal(arb_dec_parse_cstr("92233720368547758.07", 2, &v), ARB_OK);
    assert_int_equal(v, INT64_MAX);
    assert_int_equal(arb_dec_parse_cstr("-92233720368547758.08", 2, &v), ARB_OK);
    assert_int_equal(v, INT64_MIN);
    const char *bad[] = {"101.255",
                         "",
                         "-",
                         ".",
                         "5.",
                         ".5",
                         "1e3",
                         "+1",
                         " 1",
                         "1 ",
                         "1..2",
                         "0x10",
                         "92233720368547758.08",
                         "1.2.3",
                         "--1",
                         "9999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (arb_dec_parse_cstr(bad[i], 2, &v) != ARB_EINVAL)
            fail_msg("'%s' was accepted as %lld", bad[i], (long long)v);
    char buf[32];
    arb_dec_format(10125, 2, buf, sizeof buf);
    assert_string_equal(buf, "101.25");
    arb_dec_format(-5, 3, buf, sizeof buf);
    assert_string_equal(buf, "-0.005");
    arb_dec_format(INT64_MIN, 2, buf, sizeof buf);
    assert_string_equal(buf, "-92233720368547758.08");
    for (int k = 0; k < 100000; k++) {
        int64_t x = (int64_t)rnd();
        int d = (int)(rnd() % 9);
        arb_dec_format(x, d, buf, sizeof buf);
        assert_int_equal(arb_dec_parse_cstr(buf, d, &v), ARB_OK);
        assert_int_equal(v, x);
    }
}

/* Journals and Kafka logs written before fees hold version 1 order events
 * and trades: they still decode, with no fee; a version 1 record of the new
 * length, or a version 2 of the old, is refused. */
static void fee_records_of_both_versions_decode(void **state)
{
    (void)state;
    arb_order_event e = {.kind = ARB_EV_FILLED,
                         .side = ARB_SIDE_BUY,
                         .type = ARB_ORD_LIMIT,
                         .tif = ARB_TIF_GTC,
                         .venue = "XA",
                         .symbol = "BTCUSD",
                         .order_id = 9,
                         .account = 3,
                         .price = 100,
                         .qty = 5,
                         .filled_qty = 5,
                         .last_px = 100,
                         .last_qty = 5,
                         .trade_id = 77,
                         .fee = 12,
                         .liquidity = ARB_LIQ_TAKER};
    uint8_t buf[ARB_ORDER_EVENT_LEN], v1[ARB_ORDER_EVENT_LEN_V1];
    assert_int_equal(arb_order_event_encode(&e, buf, sizeof buf), ARB_ORDER_EVENT_LEN);
    assert_int_equal(arb_get_u16(buf + 2), 2);
    /* What a version 1 encoder wrote: the same bytes up to client_ref. */
    memcpy(v1, buf, sizeof v1);
    arb_put_u16(v1 + 2, 1);
    arb_put_u32(v1 + 4, ARB_ORDER_EVENT_LEN_V1);
    v1[ARB_WIRE_HDR + 6] = 0;
    arb_order_event d;
    assert_int_equal(arb_order_event_decode(v1, sizeof v1, &d), ARB_OK);
    assert_int_equal(d.fee, 0);
    assert_int_equal(d.liquidity, ARB_LIQ_NONE);
    assert_int_equal(d.trade_id, 77);
    assert_int_equal(arb_order_event_decode(buf, sizeof buf, &d), ARB_OK);
    assert_int_equal(d.fee, 12);
    arb_put_u16(buf + 2, 1);
    assert_int_equal(arb_order_event_decode(buf, sizeof buf, &d), ARB_EBADMSG);
    arb_put_u16(v1 + 2, 2);
    assert_int_equal(arb_order_event_decode(v1, sizeof v1, &d), ARB_EBADMSG);

    arb_trade t = {.venue = "XA",
                   .symbol = "BTCUSD",
                   .trade_id = 5,
                   .price = 100,
                   .qty = 2,
                   .aggressor = ARB_SIDE_SELL,
                   .buy_fee = -1,
                   .sell_fee = 3};
    uint8_t tb[ARB_TRADE_LEN], t1[ARB_TRADE_LEN_V1];
    assert_int_equal(arb_trade_encode(&t, tb, sizeof tb), ARB_TRADE_LEN);
    memcpy(t1, tb, sizeof t1);
    arb_put_u16(t1 + 2, 1);
    arb_put_u32(t1 + 4, ARB_TRADE_LEN_V1);
    arb_trade td;
    assert_int_equal(arb_trade_decode(t1, sizeof t1, &td), ARB_OK);
    assert_int_equal(td.buy_fee, 0);
    assert_int_equal(td.sell_fee, 0);
    assert_int_equal(td.qty, 2);
    assert_int_equal(arb_trade_decode(tb, sizeof tb, &td), ARB_OK);
    assert_int_equal(td.buy_fee, -1);
    assert_int_equal(td.sell_fee, 3);
}

static void fee_rounds_up_and_rebate_rounds_down(void **state)
{
    (void)state;
    /* 1 unit at price 1 (qty_decimals 0) and 1 bp: 1e-4 of a price unit. */
    assert_int_equal(arb_fee_of(1, 1, 0, 100), 1);
    assert_int_equal(arb_fee_of(1, 1, 0, -100), 0);
    /* Exactly 25 price units either way. */
    assert_int_equal(arb_fee_of(100000, 1000, 3, 250), 25);
    assert_int_equal(arb_fee_of(100000, 1000, 3, -250), -25);
    /* 25.001 -> 26 paid, 25 rebated. */
    assert_int_equal(arb_fee_of(100004, 1000, 3, 250), 26);
    assert_int_equal(arb_fee_of(100004, 1000, 3, -250), -25);
    assert_int_equal(arb_fee_of(100004, 1000, 3, 0), 0);
    /* Beyond 64 bits: exact while it fits, then saturated. */
    assert_int_equal(arb_fee_of(INT64_C(1) << 40, INT64_C(1) << 30, 0, 300),
                     (int64_t)((((__int128)1 << 70) * 300 + 999999) / 1000000));
    assert_int_equal(arb_fee_of(INT64_C(1) << 52, INT64_C(1) << 40, 0, ARB_FEE_MAX_CBPS),
                     INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_cmd_round_trips),
        cmocka_unit_test(order_event_round_trips),
        cmocka_unit_test(trade_round_trips),
        cmocka_unit_test(market_data_round_trips_with_levels),
        cmocka_unit_test(tick_and_market_event_round_trip),
        cmocka_unit_test(service_round_trips_with_plugins),
        cmocka_unit_test(service_records_of_both_versions_decode),
        cmocka_unit_test(decoders_refuse_malformed_records),
        cmocka_unit_test(text_fields_read_word_by_word_as_byte_by_byte),
        cmocka_unit_test(market_data_count_must_match_length),
        cmocka_unit_test(trade_with_zero_quantity_is_refused),
        cmocka_unit_test(decimals_convert_exactly_or_not_at_all),
        cmocka_unit_test(fee_records_of_both_versions_decode),
        cmocka_unit_test(fee_rounds_up_and_rebate_rounds_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
