/*
 * test_gateway_matcher.c -- the gateway with the real matcher (matcher.so)
 * in the real host: orders go through HTTP, the bus and the matching engine,
 * and every read comes back from the gateway's read models.
 *
 * Both plugins run on worker loops (the gateway on its own loop in one
 * fixture, on the matcher's loop in the other), so the test's thread can
 * use a plain blocking HTTP client. Skipped while matcher.so is not built.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testhost.h"
#include "free_port.h"

#define KEY_A "alice-key-0123456789"
#define KEY_B "bob-key-abcdefghijkl"

static testhost *host;
static int port;

/* ---- a blocking HTTP client ---- */

typedef struct reply {
    int status;
    json_t *body;
} reply;

static reply call(const char *method, const char *path, const char *key, const char *body)
{
    reply r = {-1, NULL};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return r;
    }
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, key ? "Authorization: Bearer " : "", key ? key : "",
                     key ? "\r\n" : "", blen, body ? body : "");
    send(fd, req, (size_t)n, MSG_NOSIGNAL);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t got;
    while ((got = recv(fd, buf + len, cap - len, 0)) > 0) {
        len += (size_t)got;
        if (len == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[len] = 0;
    close(fd);
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep && sscanf(buf, "HTTP/1.1 %d", &r.status) == 1)
        r.body = json_loads(sep + 4, 0, NULL);
    free(buf);
    return r;
}

static const char *jstr(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static char *order(const char *side, const char *price, const char *qty, const char *tif)
{
    static char b[256];
    snprintf(b, sizeof b,
             "{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"%s\",\"price\":\"%s\","
             "\"qty\":\"%s\",\"tif\":\"%s\"}",
             side, price, qty, tif);
    return b;
}

/* Polls a read endpoint until pred holds (the read models are eventually
 * consistent with the matcher's output topics). */
static json_t *poll_get(const char *path, int (*pred)(json_t *))
{
    for (int i = 0; i < 200; i++) {
        reply r = call("GET", path, KEY_A, NULL);
        if (r.status == 200 && r.body && pred(r.body))
            return r.body;
        json_decref(r.body);
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static int start(int gateway_thread)
{
    struct stat st;
    const char *so = testhost_plugin_path("matcher");
    if (!so || stat(so, &st) != 0)
        return 1; /* not built yet: the tests skip */
    port = test_free_port();
    char ini[2048];
    snprintf(ini, sizeof ini,
             "[host]\nthreads = 3\n"
             "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.05\nqty_decimals = 3\n"
             "lot_size = 0.001\nmin_qty = 0.001\nmax_qty = 1000\nref_price = 100.00\n"
             "band_bps = 1000\nmaker_fee_bps = -1\ntaker_fee_bps = 2.5\n"
             "[plugin matcher]\nload = matcher.so\nthread = 1\n"
             "[plugin gateway]\nload = gateway.so\nthread = %d\nlisten = 127.0.0.1:%d\n"
             "api_key.alice = " KEY_A ":1001\napi_key.bob = " KEY_B ":1002\n"
             "timeout_ms = 2000\n",
             gateway_thread, port);
    host = testhost_new(ini);
    if (!host || testhost_start(host))
        return -1;
    return 0;
}

static int setup_own_loop(void **state)
{
    int rc = start(2);
    *state = rc == 1 ? (void *)"skip" : NULL;
    return rc < 0 ? -1 : 0;
}

static int setup_shared_loop(void **state)
{
    int rc = start(1);
    *state = rc == 1 ? (void *)"skip" : NULL;
    return rc < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    testhost_free(host);
    host = NULL;
    return 0;
}

#define SKIP_WITHOUT_MATCHER(state)                        \
    do {                                                   \
        if (*(state)) {                                    \
            printf("matcher.so is not built: skipping\n"); \
            skip();                                        \
        }                                                  \
    } while (0)

/* ---- tests ---- */

static int is_filled(json_t *o)
{
    return jstr(o, "status") && !strcmp(jstr(o, "status"), "filled");
}

static void crossing_orders_trade_and_both_sides_see_it(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    reply rest = call("POST", "/v1/orders", KEY_A, order("sell", "100.00", "1.5", "gtc"));
    assert_int_equal(rest.status, 200);
    assert_string_equal(jstr(rest.body, "status"), "open");
    char path[64];
    snprintf(path, sizeof path, "/v1/orders/%s", jstr(rest.body, "order_id"));

    reply take = call("POST", "/v1/orders", KEY_B, order("buy", "100.05", "1.5", "gtc"));
    assert_int_equal(take.status, 200);
    assert_string_equal(jstr(take.body, "status"), "filled");
    assert_string_equal(jstr(take.body, "filled_qty"), "1.500");
    json_t *fills = json_object_get(take.body, "fills");
    assert_int_equal(json_array_size(fills), 1);
    assert_string_equal(jstr(json_array_get(fills, 0), "price"), "100.00");
    /* 150.00 at 2.5 bps is 3.75 cents, a fee: 4; the maker's 1 bp rebate,
     * 1.5 cents, 1. */
    assert_string_equal(jstr(json_array_get(fills, 0), "fee"), "0.04");
    assert_string_equal(jstr(json_array_get(fills, 0), "liquidity"), "taker");
    assert_string_equal(jstr(take.body, "fees"), "0.04");

    json_t *maker = poll_get(path, is_filled);
    json_t *mfill = json_array_get(json_object_get(maker, "fills"), 0);
    assert_string_equal(jstr(mfill, "fee"), "-0.01");
    assert_string_equal(jstr(mfill, "liquidity"), "maker");
    assert_non_null(maker);
    json_decref(maker);
    json_decref(rest.body);
    json_decref(take.body);
}

static void sweep_of_two_levels_is_answered_with_both_fills(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    reply a = call("POST", "/v1/orders", KEY_A, order("sell", "100.00", "1", "gtc"));
    reply b = call("POST", "/v1/orders", KEY_A, order("sell", "100.10", "1", "gtc"));
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    reply take = call("POST", "/v1/orders", KEY_B, order("buy", "100.10", "2", "ioc"));
    assert_int_equal(take.status, 200);
    assert_string_equal(jstr(take.body, "status"), "filled");
    json_t *fills = json_object_get(take.body, "fills");
    assert_int_equal(json_array_size(fills), 2);
    assert_string_equal(jstr(json_array_get(fills, 0), "price"), "100.00");
    assert_string_equal(jstr(json_array_get(fills, 1), "price"), "100.10");
    json_decref(a.body);
    json_decref(b.body);
    json_decref(take.body);
}

static int has_bid_level(json_t *b) { return json_array_size(json_object_get(b, "bids")) == 1; }

static void resting_order_shows_in_the_book_and_cancel_removes_it(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    reply r = call("POST", "/v1/orders", KEY_A, order("buy", "99.50", "2", "gtc"));
    assert_int_equal(r.status, 200);
    json_t *book = poll_get("/v1/book/XA/BTCUSD", has_bid_level);
    assert_non_null(book);
    json_t *lvl = json_array_get(json_object_get(book, "bids"), 0);
    assert_string_equal(jstr(lvl, "price"), "99.50");
    assert_string_equal(jstr(lvl, "qty"), "2.000");
    json_decref(book);

    char path[64];
    snprintf(path, sizeof path, "/v1/orders/%s", jstr(r.body, "order_id"));
    reply c = call("DELETE", path, KEY_A, NULL);
    assert_int_equal(c.status, 200);
    assert_string_equal(jstr(c.body, "status"), "cancelled");
    reply again = call("DELETE", path, KEY_A, NULL);
    assert_int_equal(again.status, 409);
    json_decref(r.body);
    json_decref(c.body);
    json_decref(again.body);
}

static void ioc_without_liquidity_expires(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    reply r = call("POST", "/v1/orders", KEY_A, order("buy", "100.00", "1", "ioc"));
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "status"), "expired");
    assert_string_equal(jstr(r.body, "filled_qty"), "0.000");
    json_decref(r.body);
}

static void price_outside_the_band_is_rejected_by_the_matcher(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    /* 120.00 is 20% above the 100.00 reference; the band is 10%. */
    reply r = call("POST", "/v1/orders", KEY_A, order("buy", "120.00", "1", "gtc"));
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.body, "status"), "rejected");
    assert_string_equal(jstr(r.body, "reason"), "price_band");
    json_decref(r.body);
}

static int has_trade(json_t *t) { return json_array_size(json_object_get(t, "trades")) >= 1; }

static void trades_and_positions_come_from_trade_executed(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    json_decref(call("POST", "/v1/orders", KEY_A, order("sell", "100.00", "1", "gtc")).body);
    json_decref(call("POST", "/v1/orders", KEY_B, order("buy", "100.00", "1", "gtc")).body);
    json_t *t = poll_get("/v1/trades?venue=XA&symbol=BTCUSD", has_trade);
    assert_non_null(t);
    json_t *tr = json_array_get(json_object_get(t, "trades"), 0);
    assert_string_equal(jstr(tr, "price"), "100.00");
    assert_string_equal(jstr(tr, "qty"), "1.000");
    assert_string_equal(jstr(tr, "aggressor"), "buy");
    json_decref(t);
    /* Each key sees its own account (no account is public here). */
    reply acc = call("GET", "/v1/accounts", KEY_A, NULL);
    json_t *list = json_object_get(acc.body, "accounts");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "account"), "1001");
    /* The seller rested: a 1 bp rebate on 100.00, one cent, in its cash. */
    json_t *pos = json_array_get(json_object_get(json_array_get(list, 0), "positions"), 0);
    assert_string_equal(jstr(pos, "fees"), "-0.01000");
    assert_string_equal(jstr(pos, "cash"), "100.01000");
    json_decref(acc.body);
}

static int has_two_fills(json_t *b) { return json_array_size(json_object_get(b, "fills")) == 2; }

/* GET /v1/fills: each key its own fills, newest first, a page at a time. */
static void fills_are_the_keys_own_and_come_in_pages(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    reply a = call("POST", "/v1/orders", KEY_A, order("sell", "100.00", "1", "gtc"));
    reply b = call("POST", "/v1/orders", KEY_A, order("sell", "100.10", "1", "gtc"));
    reply take = call("POST", "/v1/orders", KEY_B, order("buy", "100.10", "2", "ioc"));
    assert_int_equal(take.status, 200);
    reply mine = call("GET", "/v1/fills", KEY_B, NULL);
    assert_int_equal(mine.status, 200);
    json_t *f = json_object_get(mine.body, "fills");
    assert_int_equal(json_array_size(f), 2);
    assert_string_equal(jstr(json_array_get(f, 0), "side"), "buy");
    assert_string_equal(jstr(json_array_get(f, 0), "order_id"), jstr(take.body, "order_id"));
    assert_non_null(strchr(jstr(json_array_get(f, 0), "time"), 'T'));
    assert_true(json_is_null(json_object_get(mine.body, "next")));
    /* One per page: the cursor leads to the other, then to nothing. */
    reply p1 = call("GET", "/v1/fills?limit=1", KEY_B, NULL);
    assert_int_equal(json_array_size(json_object_get(p1.body, "fills")), 1);
    char path[128];
    snprintf(path, sizeof path, "/v1/fills?limit=1&before=%s", jstr(p1.body, "next"));
    reply p2 = call("GET", path, KEY_B, NULL);
    assert_int_equal(json_array_size(json_object_get(p2.body, "fills")), 1);
    assert_string_not_equal(jstr(json_array_get(json_object_get(p1.body, "fills"), 0), "trade_id"),
                            jstr(json_array_get(json_object_get(p2.body, "fills"), 0), "trade_id"));
    assert_true(json_is_null(json_object_get(p2.body, "next")));
    /* The maker sees its own two, as sells, and never the taker's. */
    json_t *theirs = poll_get("/v1/fills", has_two_fills);
    assert_non_null(theirs);
    assert_string_equal(jstr(json_array_get(json_object_get(theirs, "fills"), 0), "side"), "sell");
    reply anon = call("GET", "/v1/fills", NULL, NULL);
    assert_int_equal(anon.status, 401);
    reply bad = call("GET", "/v1/fills?before=x", KEY_B, NULL);
    assert_int_equal(bad.status, 400);
    json_decref(theirs);
    json_decref(a.body), json_decref(b.body), json_decref(take.body), json_decref(mine.body);
    json_decref(p1.body), json_decref(p2.body), json_decref(anon.body), json_decref(bad.body);
}

/* /v1/stream?topics=orders,fills: the key's own order events and fills,
 * nothing of another account's; without a key, 401. */
static void private_stream_carries_the_keys_own_orders_and_fills(void **state)
{
    SKIP_WITHOUT_MATCHER(state);
    reply anon = call("GET", "/v1/stream?topics=orders", NULL, NULL);
    assert_int_equal(anon.status, 401);
    json_decref(anon.body);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *req = "GET /v1/stream?topics=orders,fills HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer " KEY_A "\r\n\r\n";
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    static char buf[1 << 16];
    size_t len = 0;
    /* The stream is open once its headers came. */
    for (int i = 0; i < 50 && !strstr(buf, "\r\n\r\n"); i++) {
        ssize_t got = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (got > 0)
            len += (size_t)got, buf[len] = 0;
    }
    assert_non_null(strstr(buf, "200 OK"));
    reply rest = call("POST", "/v1/orders", KEY_A, order("sell", "100.00", "1", "gtc"));
    reply take = call("POST", "/v1/orders", KEY_B, order("buy", "100.00", "1", "ioc"));
    assert_int_equal(take.status, 200);
    char want[96];
    snprintf(want, sizeof want, "\"order_id\":\"%s\"", jstr(rest.body, "order_id"));
    for (int i = 0; i < 50 && !strstr(buf, "event: fill"); i++) {
        ssize_t got = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (got > 0)
            len += (size_t)got, buf[len] = 0;
    }
    close(fd);
    assert_non_null(strstr(buf, "event: order"));
    char *fill = strstr(buf, "event: fill");
    assert_non_null(fill);
    assert_non_null(strstr(fill, want));
    assert_non_null(strstr(fill, "\"side\":\"sell\""));
    snprintf(want, sizeof want, "\"order_id\":\"%s\"", jstr(take.body, "order_id"));
    assert_null(strstr(buf, want));
    json_decref(rest.body);
    json_decref(take.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(crossing_orders_trade_and_both_sides_see_it, setup_own_loop,
                                        teardown),
        cmocka_unit_test_setup_teardown(crossing_orders_trade_and_both_sides_see_it,
                                        setup_shared_loop, teardown),
        cmocka_unit_test_setup_teardown(sweep_of_two_levels_is_answered_with_both_fills,
                                        setup_own_loop, teardown),
        cmocka_unit_test_setup_teardown(sweep_of_two_levels_is_answered_with_both_fills,
                                        setup_shared_loop, teardown),
        cmocka_unit_test_setup_teardown(resting_order_shows_in_the_book_and_cancel_removes_it,
                                        setup_own_loop, teardown),
        cmocka_unit_test_setup_teardown(ioc_without_liquidity_expires, setup_own_loop, teardown),
        cmocka_unit_test_setup_teardown(price_outside_the_band_is_rejected_by_the_matcher,
                                        setup_own_loop, teardown),
        cmocka_unit_test_setup_teardown(fills_are_the_keys_own_and_come_in_pages, setup_own_loop,
                                        teardown),
        cmocka_unit_test_setup_teardown(private_stream_carries_the_keys_own_orders_and_fills,
                                        setup_own_loop, teardown),
        cmocka_unit_test_setup_teardown(trades_and_positions_come_from_trade_executed,
                                        setup_own_loop, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
