/*
 * test_matcher_plugin.c -- matcher.so inside the real host (testhost): the
 * test publishes order commands on the bus and checks what comes back on
 * order_events, trade_executed and market_data; the admin book route over
 * HTTP; metrics; hot reload with the books carried across; the instrument
 * subset; config errors; and a full bus (output waits, in order, never
 * lost). The matching rules themselves are tested in test_book*.c.
 * Skipped while matcher.so is not built.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arb/wire.h>

#include "testhost.h"
#include "free_port.h"

#define MS 1000000ll

static const char instruments[] =
    "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.05\nqty_decimals = 3\n"
    "lot_size = 0.001\nmin_qty = 0.001\nmax_qty = 1000\nref_price = 100.00\nband_bps = 1000\n"
    "[instrument XB:BTCUSD]\nprice_decimals = 2\ntick_size = 0.01\nqty_decimals = 3\n"
    "lot_size = 0.001\nmin_qty = 0.001\nmax_qty = 1000\nref_price = 100.00\n";

/* ---- what the test sees on the bus ---- */

#define SINK_MAX 4096

typedef struct sink {
    arb_order_event ev[SINK_MAX];
    uint64_t ev_key[SINK_MAX];
    size_t n_ev;
    arb_trade tr[64];
    uint64_t tr_key[64];
    size_t n_tr;
    arb_market_data md[256];
    arb_md_level md_levels[256][8];
    size_t n_md;
    size_t bad;
} sink;

static sink out;

static void on_event(void *user, const arb_msg *m)
{
    sink *s = user;
    if (s->n_ev < SINK_MAX && !arb_order_event_decode(m->data, m->len, &s->ev[s->n_ev]))
        s->ev_key[s->n_ev++] = m->key;
    else
        s->bad++;
}

static void on_trade(void *user, const arb_msg *m)
{
    sink *s = user;
    if (s->n_tr < 64 && !arb_trade_decode(m->data, m->len, &s->tr[s->n_tr]))
        s->tr_key[s->n_tr++] = m->key;
    else
        s->bad++;
}

static void on_md(void *user, const arb_msg *m)
{
    sink *s = user;
    arb_market_data *md = &s->md[s->n_md];
    if (s->n_md < 256 && !arb_market_data_decode(m->data, m->len, md)) {
        for (uint32_t i = 0; i < md->n_levels && i < 8; i++)
            arb_md_get_level(md, i, &s->md_levels[s->n_md][i]);
        md->levels = NULL;
        s->n_md++;
    } else {
        s->bad++;
    }
}

static testhost *host;

static int skip_unless_built(void)
{
    struct stat st;
    const char *so = testhost_plugin_path("matcher");
    return so && stat(so, &st) == 0;
}

static testhost *start_host(const char *extra_host, const char *matcher_keys)
{
    char ini[4096];
    snprintf(ini, sizeof ini,
             "[host]\nlog_level = warn\n%s\n%s[plugin matcher]\nload = matcher.so\n%s\n",
             extra_host, instruments, matcher_keys);
    testhost *h = testhost_new(ini);
    assert_non_null(h);
    assert_int_equal(testhost_start(h), ARB_OK);
    memset(&out, 0, sizeof out);
    arb_ctx *ctx = testhost_ctx(h);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_ORDER_EVENTS, on_event, &out) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, &out) >= 0);
    assert_true(arb_subscribe(ctx, ARB_TOPIC_MARKET_DATA, on_md, &out) >= 0);
    return h;
}

static int setup(void **state)
{
    if (!skip_unless_built()) {
        *state = (void *)"skip";
        return 0;
    }
    *state = NULL;
    host = start_host("", "");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (host)
        testhost_free(host);
    host = NULL;
    return 0;
}

#define SKIP_IF_UNBUILT(state) \
    do {                       \
        if (*(state)) {        \
            skip();            \
            return;            \
        }                      \
    } while (0)

static arb_order_cmd cmd(uint8_t action, const char *venue, uint64_t id, uint64_t account,
                         uint8_t side, int64_t price, int64_t qty)
{
    arb_order_cmd c;
    memset(&c, 0, sizeof c);
    c.action = action;
    if (action == ARB_CMD_NEW) {
        c.side = side;
        c.type = ARB_ORD_LIMIT;
        c.tif = ARB_TIF_GTC;
    }
    arb_fixstr_set(c.venue, ARB_VENUE_LEN, venue);
    arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    c.order_id = id;
    c.account = account;
    c.price = price;
    c.qty = qty;
    c.ts = 12345;
    c.client_ref = id + 1000;
    return c;
}

static int send_cmd(testhost *h, const arb_order_cmd *c)
{
    uint8_t buf[ARB_ORDER_CMD_LEN];
    uint32_t len = arb_order_cmd_encode(c, buf, sizeof buf);
    return arb_publish(testhost_ctx(h), ARB_TOPIC_ORDER_COMMANDS,
                       arb_instrument_key(c->venue, c->symbol), buf, len);
}

static void submit(testhost *h, arb_order_cmd c)
{
    assert_int_equal(send_cmd(h, &c), ARB_OK);
    testhost_run(h, 5 * MS);
}

static const char *http_get(testhost *h, int port, const char *path)
{
    static char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
    const char *r = testhost_http(h, port, req, 5000 * MS);
    assert_non_null(r);
    return r;
}

/* The value of one metric line ("name{labels} value"), or -1. */
static long long metric(const char *body, const char *line_prefix)
{
    const char *p = strstr(body, line_prefix);
    return p ? atoll(p + strlen(line_prefix)) : -1;
}

/* ---- tests ---- */

static void resting_order_is_accepted_on_order_events_keyed_by_account(void **state)
{
    SKIP_IF_UNBUILT(state);
    submit(host, cmd(ARB_CMD_NEW, "XA", 1, 77, ARB_SIDE_BUY, 9950, 2000));
    assert_int_equal(out.n_ev, 1);
    assert_int_equal(out.ev[0].kind, ARB_EV_ACCEPTED);
    assert_int_equal(out.ev[0].order_id, 1);
    assert_int_equal(out.ev[0].leaves_qty, 2000);
    assert_int_equal(out.ev[0].client_ref, 1001);
    assert_int_equal(out.ev[0].flags, ARB_EVF_LAST); /* the command's only event */
    assert_int_equal(out.ev_key[0], 77);
    assert_int_equal(out.n_md, 1);
    assert_int_equal(out.md[0].kind, ARB_MD_LEVEL);
    assert_int_equal(out.md[0].bid_px, 9950);
    assert_int_equal(out.md[0].bid_qty, 2000);
    assert_int_equal(out.bad, 0);
}

static void crossing_order_trades_on_trade_executed_keyed_by_instrument(void **state)
{
    SKIP_IF_UNBUILT(state);
    submit(host, cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_SELL, 10000, 1500));
    submit(host, cmd(ARB_CMD_NEW, "XA", 2, 8, ARB_SIDE_BUY, 10010, 1500));
    assert_int_equal(out.n_tr, 1);
    assert_int_equal(out.tr[0].price, 10000);
    assert_int_equal(out.tr[0].qty, 1500);
    assert_int_equal(out.tr[0].buy_order_id, 2);
    assert_int_equal(out.tr[0].sell_order_id, 1);
    /* XA:BTCUSD is the first instrument of the table: book id 1. */
    assert_int_equal(out.tr[0].trade_id, (1ull << 40) | 1);
    assert_int_equal(out.tr[0].seq, 1);
    assert_int_equal(out.tr_key[0], arb_instrument_key(out.tr[0].venue, out.tr[0].symbol));
    assert_int_equal(out.ev[out.n_ev - 1].kind, ARB_EV_FILLED);
    assert_int_equal(out.ev_key[out.n_ev - 1], 8);
    /* Each command's last event for its own order is flagged, and only
     * that: order 1's acceptance (the first command), order 2's fill; not
     * order 2's acceptance, not order 1's fill by the second command. */
    for (uint32_t i = 0; i < out.n_ev; i++) {
        int last = (out.ev[i].order_id == 1 && out.ev[i].kind == ARB_EV_ACCEPTED) ||
                   (out.ev[i].order_id == 2 && out.ev[i].kind == ARB_EV_FILLED);
        assert_int_equal(out.ev[i].flags & ARB_EVF_LAST, last ? ARB_EVF_LAST : 0);
    }
}

static void outputs_carry_the_hosts_time_not_the_senders(void **state)
{
    SKIP_IF_UNBUILT(state);
    submit(host, cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_SELL, 10000, 1500));
    assert_int_equal(out.n_ev, 1);
    assert_true(out.ev[0].ts != 12345);
    assert_true(out.ev[0].ts > 0);
}

static void bad_command_is_rejected_with_its_reason(void **state)
{
    SKIP_IF_UNBUILT(state);
    submit(host, cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_SELL, 10002, 1500)); /* off the 0.05 tick */
    submit(host, cmd(ARB_CMD_CANCEL, "XA", 99, 7, 0, 0, 0));
    submit(host, cmd(ARB_CMD_NEW, "XC", 2, 7, ARB_SIDE_SELL, 10000, 1500));
    assert_int_equal(out.n_ev, 3);
    assert_int_equal(out.ev[0].reason, ARB_R_PRICE_OFF_TICK);
    assert_int_equal(out.ev[1].reason, ARB_R_UNKNOWN_ORDER);
    assert_int_equal(out.ev[2].reason, ARB_R_UNKNOWN_INSTRUMENT);
    assert_int_equal(out.n_md, 0);
}

static void undecodable_command_is_counted_and_changes_nothing(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    int port = test_free_port();
    char host_keys[64];
    snprintf(host_keys, sizeof host_keys, "admin = 127.0.0.1:%d", port);
    testhost *h = start_host(host_keys, "");
    uint8_t junk[ARB_ORDER_CMD_LEN];
    arb_order_cmd c = cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_SELL, 10000, 1500);
    arb_order_cmd_encode(&c, junk, sizeof junk);
    junk[ARB_WIRE_HDR] = 9; /* action out of range */
    assert_int_equal(arb_publish(testhost_ctx(h), ARB_TOPIC_ORDER_COMMANDS, 0, junk, sizeof junk),
                     ARB_OK);
    assert_int_equal(arb_publish(testhost_ctx(h), ARB_TOPIC_ORDER_COMMANDS, 0, junk, 10), ARB_OK);
    testhost_run(h, 5 * MS);
    assert_int_equal(out.n_ev, 0);
    const char *body = http_get(h, port, "/metrics");
    assert_int_equal(metric(body, "matcher_decode_errors_total{instance=\"matcher\"} "), 2);
    submit(h, c);
    assert_int_equal(out.n_ev, 1);
    body = http_get(h, port, "/metrics");
    assert_int_equal(metric(body, "matcher_commands_total{instance=\"matcher\"} "), 1);
    testhost_free(h);
}

static void rejects_are_counted_by_reason(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    int port = test_free_port();
    char host_keys[64];
    snprintf(host_keys, sizeof host_keys, "admin = 127.0.0.1:%d", port);
    testhost *h = start_host(host_keys, "");
    submit(h, cmd(ARB_CMD_CANCEL, "XA", 99, 7, 0, 0, 0));
    submit(h, cmd(ARB_CMD_CANCEL, "XA", 98, 7, 0, 0, 0));
    const char *body = http_get(h, port, "/metrics");
    assert_int_equal(
        metric(body, "matcher_rejects_total{instance=\"matcher\",reason=\"unknown_order\"} "), 2);
    assert_int_equal(
        metric(body, "matcher_book_orders{instance=\"matcher\",venue=\"XA\",symbol=\"BTCUSD\"} "),
        0);
    /* One command in 16 is timed: the first of the two. */
    assert_true(strstr(body, "matcher_command_ns_count{instance=\"matcher\"} 1") != NULL);
    testhost_free(h);
}

static void snapshot_command_publishes_the_full_depth(void **state)
{
    SKIP_IF_UNBUILT(state);
    submit(host, cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_BUY, 9950, 1000));
    submit(host, cmd(ARB_CMD_NEW, "XA", 2, 7, ARB_SIDE_BUY, 9900, 1000));
    submit(host, cmd(ARB_CMD_NEW, "XA", 3, 7, ARB_SIDE_SELL, 10050, 3000));
    out.n_md = 0;
    submit(host, cmd(ARB_CMD_SNAPSHOT, "XA", 0, 0, 0, 0, 0));
    assert_int_equal(out.n_md, 1);
    assert_int_equal(out.md[0].kind, ARB_MD_SNAPSHOT);
    assert_int_equal(out.md[0].book_seq, 3);
    assert_int_equal(out.md[0].n_levels, 3);
    assert_int_equal(out.md_levels[0][0].price, 9950);
    assert_int_equal(out.md_levels[0][1].price, 9900);
    assert_int_equal(out.md_levels[0][2].side, ARB_SIDE_SELL);
    assert_int_equal(out.md_levels[0][2].qty, 3000);
}

static void admin_book_route_serves_the_depth_as_json(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    int port = test_free_port();
    char host_keys[64];
    snprintf(host_keys, sizeof host_keys, "admin = 127.0.0.1:%d", port);
    testhost *h = start_host(host_keys, "");
    submit(h, cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_BUY, 9950, 1500));
    submit(h, cmd(ARB_CMD_NEW, "XA", 2, 8, ARB_SIDE_BUY, 9950, 500));
    submit(h, cmd(ARB_CMD_NEW, "XA", 3, 7, ARB_SIDE_SELL, 10050, 250));
    const char *body = http_get(h, port, "/plugins/matcher/book?venue=XA&symbol=BTCUSD");
    assert_non_null(strstr(body, "200 OK"));
    assert_non_null(
        strstr(body, "\"bids\":[{\"price\":\"99.50\",\"qty\":\"2.000\",\"orders\":2}]"));
    assert_non_null(
        strstr(body, "\"asks\":[{\"price\":\"100.50\",\"qty\":\"0.250\",\"orders\":1}]"));
    assert_non_null(strstr(body, "\"orders\":3"));
    body = http_get(h, port, "/plugins/matcher/book?venue=XZ&symbol=BTCUSD");
    assert_non_null(strstr(body, "404"));
    assert_non_null(strstr(body, "unknown_instrument"));
    body = http_get(h, port, "/plugins/matcher/book");
    assert_non_null(strstr(body, "400"));
    testhost_free(h);
}

static void hot_reload_keeps_the_books_and_matching_goes_on(void **state)
{
    SKIP_IF_UNBUILT(state);
    submit(host, cmd(ARB_CMD_NEW, "XA", 1, 7, ARB_SIDE_SELL, 10000, 1000));
    submit(host, cmd(ARB_CMD_NEW, "XA", 2, 7, ARB_SIDE_SELL, 10000, 1000));
    submit(host, cmd(ARB_CMD_NEW, "XA", 3, 8, ARB_SIDE_BUY, 10000, 500));
    assert_int_equal(out.n_tr, 1);
    uint64_t seq_before = out.ev[out.n_ev - 1].seq;
    char err[256];
    assert_int_equal(
        testhost_reload(host, "matcher", testhost_plugin_path("matcher"), err, sizeof err), ARB_OK);
    testhost_run(host, 5 * MS);
    size_t n_ev = out.n_ev;
    /* The rest of order 1, then order 2: time priority survived. */
    submit(host, cmd(ARB_CMD_NEW, "XA", 4, 9, ARB_SIDE_BUY, 10000, 1000));
    assert_int_equal(out.n_tr, 3);
    assert_int_equal(out.tr[1].sell_order_id, 1);
    assert_int_equal(out.tr[1].qty, 500);
    assert_int_equal(out.tr[2].sell_order_id, 2);
    assert_int_equal(out.tr[2].trade_id, (1ull << 40) | 3); /* ids continue */
    assert_int_equal(out.ev[n_ev].seq, seq_before + 1);
    /* The duplicate check knows the restored order ids. */
    submit(host, cmd(ARB_CMD_NEW, "XA", 2, 7, ARB_SIDE_SELL, 10000, 1000));
    assert_int_equal(out.ev[out.n_ev - 1].reason, ARB_R_DUPLICATE_ORDER_ID);
}

static void books_outside_the_served_subset_are_left_alone(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    testhost *h = start_host("", "instruments = XA:BTCUSD");
    submit(h, cmd(ARB_CMD_NEW, "XB", 1, 7, ARB_SIDE_SELL, 10000, 1000));
    assert_int_equal(out.n_ev, 0);
    submit(h, cmd(ARB_CMD_NEW, "XA", 2, 7, ARB_SIDE_SELL, 10000, 1000));
    assert_int_equal(out.n_ev, 1);
    submit(h, cmd(ARB_CMD_NEW, "XC", 3, 7, ARB_SIDE_SELL, 10000, 1000));
    assert_int_equal(out.ev[1].reason, ARB_R_UNKNOWN_INSTRUMENT);
    testhost_free(h);
}

static void trade_ids_name_the_book_by_its_place_in_the_instrument_table(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    /* A matcher serving only XB:BTCUSD (second in the table) numbers its
     * trades as a matcher serving everything would: ids never collide
     * across books or matchers. */
    testhost *h = start_host("", "instruments = XB:BTCUSD");
    submit(h, cmd(ARB_CMD_NEW, "XB", 1, 7, ARB_SIDE_SELL, 10000, 1000));
    submit(h, cmd(ARB_CMD_NEW, "XB", 2, 8, ARB_SIDE_BUY, 10000, 1000));
    assert_int_equal(out.n_tr, 1);
    assert_int_equal(out.tr[0].trade_id, (2ull << 40) | 1);
    testhost_free(h);
}

static void bad_settings_are_refused_with_the_key(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    const char *cases[][2] = {
        {"stp = sometimes", "stp"},
        {"instruments = XA:DOGEUSD", "instruments"},
        {"max_open_orders = -1", "max_open_orders"},
        {"stamp = never", "stamp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ini[2048];
        snprintf(ini, sizeof ini,
                 "[host]\nlog_level = error\n%s[plugin matcher]\nload = matcher.so\n%s\n",
                 instruments, cases[i][0]);
        testhost *h = testhost_new(ini);
        int rc = h ? testhost_start(h) : ARB_ERROR;
        assert_int_not_equal(rc, ARB_OK);
        assert_non_null(testhost_last_error());
        if (!strstr(testhost_last_error(), cases[i][1]))
            fail_msg("error for '%s' does not name %s: %s", cases[i][0], cases[i][1],
                     testhost_last_error());
        if (h)
            testhost_free(h);
    }
    testhost *h = testhost_new("[host]\nlog_level = error\n[plugin matcher]\nload = matcher.so\n");
    int rc = h ? testhost_start(h) : ARB_ERROR;
    assert_int_not_equal(rc, ARB_OK); /* no instruments at all */
    if (h)
        testhost_free(h);
}

typedef struct want_events {
    size_t n;
} want_events;

static int have_events(void *user) { return out.n_ev >= ((want_events *)user)->n; }

static void full_bus_delays_output_in_order_without_loss(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    /* The matcher on its own loop; loop 0 (the test) does not drain its ring
     * while the commands go in, so the matcher's output backs up. */
    int port = test_free_port();
    char host_keys[128];
    snprintf(host_keys, sizeof host_keys,
             "threads = 2\nadmin = 127.0.0.1:%d\n[bus]\nqueue_bytes = 65536\n", port);
    testhost *h = start_host(host_keys, "thread = 1");
    const size_t n = 1500;
    for (size_t i = 0; i < n;) {
        arb_order_cmd c =
            cmd(ARB_CMD_NEW, "XA", 1 + i, 7, ARB_SIDE_BUY, 5000 + 5 * (int64_t)(i % 400), 1);
        if (send_cmd(h, &c) == ARB_OK)
            i++;
        else
            usleep(1000); /* the command ring is full: let the matcher catch up */
    }
    want_events w = {n};
    assert_true(testhost_run_until(h, have_events, &w, 10000 * MS));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out.ev[i].order_id, 1 + i);
        assert_int_equal(out.ev[i].seq, 1 + i);
    }
    /* ... and the bus did refuse some of it on the way. */
    const char *body = http_get(h, port, "/metrics");
    assert_true(metric(body, "matcher_publish_refused_total{instance=\"matcher\"} ") > 0);
    assert_int_equal(metric(body, "matcher_output_dropped_total{instance=\"matcher\"} "), 0);
    testhost_free(h);
}

static void reload_while_output_waits_loses_nothing(void **state)
{
    (void)state;
    if (!skip_unless_built()) {
        skip();
        return;
    }
    int port = test_free_port();
    char host_keys[128];
    snprintf(host_keys, sizeof host_keys,
             "threads = 2\nadmin = 127.0.0.1:%d\n[bus]\nqueue_bytes = 65536\n", port);
    testhost *h = start_host(host_keys, "thread = 1");
    const size_t n = 1500;
    for (size_t i = 0; i < n;) {
        arb_order_cmd c =
            cmd(ARB_CMD_NEW, "XA", 1 + i, 7, ARB_SIDE_SELL, 20000 + 5 * (int64_t)(i % 400), 1);
        if (send_cmd(h, &c) == ARB_OK)
            i++;
        else
            usleep(1000);
    }
    usleep(20000); /* let the matcher take the last commands and back up */
    char err[256];
    assert_int_equal(
        testhost_reload(h, "matcher", testhost_plugin_path("matcher"), err, sizeof err), ARB_OK);
    want_events w = {n};
    assert_true(testhost_run_until(h, have_events, &w, 10000 * MS));
    testhost_run(h, 20 * MS);
    assert_int_equal(out.n_ev, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out.ev[i].order_id, 1 + i);
        assert_int_equal(out.ev[i].seq, 1 + i);
    }
    const char *body = http_get(h, port, "/metrics");
    assert_int_equal(metric(body, "matcher_output_dropped_total{instance=\"matcher\"} "), 0);
    testhost_free(h);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(resting_order_is_accepted_on_order_events_keyed_by_account),
        T(crossing_order_trades_on_trade_executed_keyed_by_instrument),
        T(outputs_carry_the_hosts_time_not_the_senders),
        T(bad_command_is_rejected_with_its_reason),
        cmocka_unit_test(undecodable_command_is_counted_and_changes_nothing),
        cmocka_unit_test(rejects_are_counted_by_reason),
        T(snapshot_command_publishes_the_full_depth),
        cmocka_unit_test(admin_book_route_serves_the_depth_as_json),
        T(hot_reload_keeps_the_books_and_matching_goes_on),
        cmocka_unit_test(books_outside_the_served_subset_are_left_alone),
        cmocka_unit_test(trade_ids_name_the_book_by_its_place_in_the_instrument_table),
        cmocka_unit_test(bad_settings_are_refused_with_the_key),
        cmocka_unit_test(full_bus_delays_output_in_order_without_loss),
        cmocka_unit_test(reload_while_output_waits_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
