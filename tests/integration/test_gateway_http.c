/*
 * test_gateway_http.c -- the gateway plugin inside the real host (testhost),
 * spoken to over real HTTP on loopback.
 *
 * The gateway runs on its own loop thread (as in the monolith); the test's
 * own context on loop 0 plays the matcher with a script keyed by the limit
 * price, so every answer the gateway can get is reproducible:
 *   100.00 rests (accepted)          101.00 fills in two trades
 *   102.00 is rejected (price_band)  103.00 is never answered
 * and a cancel of a resting order is cancelled, of anything else rejected.
 * HTTP calls run on a client thread while the main thread drives loop 0.
 * The real matcher is exercised by test_gateway_matcher.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arb/wire.h"
#include "host.h"
#include "testhost.h"
#include "free_port.h"

#define MS 1000000LL
#define KEY_A "alice-key-0123456789"
#define KEY_B "bob-key-abcdefghijkl"
#define KEY_S "slow-key-0123456789x"

static testhost *host;
static int port, slow_port, tight_port;

/* ---- the scripted matcher on loop 0 ---- */

typedef struct resting {
    uint64_t order_id, account;
    int64_t price, qty;
    uint8_t side;
} resting;

static resting book[256];
static size_t n_book;
static uint64_t out_seq, trade_seq, commands_seen;

/* An event of c's order; last: ARB_EVF_LAST (the command's last event for
 * it) or 0. */
static void publish_event(const arb_order_cmd *c, int kind, int reason, int64_t leaves,
                          int64_t filled, int64_t last_px, int64_t last_qty, unsigned last)
{
    arb_order_event e;
    memset(&e, 0, sizeof e);
    e.flags = (uint8_t)last;
    e.kind = (uint8_t)kind;
    e.reason = (uint8_t)reason;
    e.side = c->side;
    e.type = c->type;
    e.tif = c->tif;
    memcpy(e.venue, c->venue, ARB_VENUE_LEN);
    memcpy(e.symbol, c->symbol, ARB_SYMBOL_LEN);
    e.order_id = c->order_id;
    e.account = c->account;
    e.price = c->price;
    e.qty = c->qty;
    e.leaves_qty = leaves;
    e.filled_qty = filled;
    e.last_px = last_px;
    e.last_qty = last_qty;
    e.trade_id = last_qty ? trade_seq : 0;
    e.seq = ++out_seq;
    e.ts = 1000 + (int64_t)out_seq;
    e.client_ref = c->client_ref;
    uint8_t buf[ARB_ORDER_EVENT_LEN];
    arb_order_event_encode(&e, buf, sizeof buf);
    assert_int_equal(
        arb_publish(testhost_ctx(host), ARB_TOPIC_ORDER_EVENTS, e.account, buf, sizeof buf),
        ARB_OK);
}

static void publish_trade(const char *venue, int64_t px, int64_t qty, uint64_t buyer,
                          uint64_t seller)
{
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, venue);
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = ++trade_seq;
    t.price = px;
    t.qty = qty;
    t.buy_account = buyer;
    t.sell_account = seller;
    t.ts = 5000 + (int64_t)trade_seq;
    t.seq = trade_seq;
    t.aggressor = ARB_SIDE_BUY;
    uint8_t buf[ARB_TRADE_LEN];
    arb_trade_encode(&t, buf, sizeof buf);
    arb_publish(testhost_ctx(host), ARB_TOPIC_TRADE_EXECUTED, 0, buf, sizeof buf);
}

static void publish_snapshot(const arb_order_cmd *c)
{
    uint8_t buf[ARB_MD_LEN(2)];
    arb_market_data m;
    memset(&m, 0, sizeof m);
    m.kind = ARB_MD_SNAPSHOT;
    m.n_levels = 2;
    memcpy(m.venue, c->venue, ARB_VENUE_LEN);
    memcpy(m.symbol, c->symbol, ARB_SYMBOL_LEN);
    m.book_seq = 1;
    m.bid_px = 9900;
    m.bid_qty = 1000;
    m.ask_px = 10500;
    m.ask_qty = 2000;
    uint32_t len = arb_market_data_encode(&m, buf, sizeof buf);
    arb_md_level bid = {ARB_SIDE_BUY, 1, 9900, 1000}, ask = {ARB_SIDE_SELL, 2, 10500, 2000};
    arb_md_put_level(buf, 0, &bid);
    arb_md_put_level(buf, 1, &ask);
    arb_publish(testhost_ctx(host), ARB_TOPIC_MARKET_DATA, 0, buf, len);
}

static arb_order_cmd split_cmd; /* an order whose events are split (price 101.50) */
static int split_held;

static void on_command(void *user, const arb_msg *msg)
{
    (void)user;
    arb_order_cmd c;
    if (arb_order_cmd_decode(msg->data, msg->len, &c))
        return;
    commands_seen++;
    if (c.action == ARB_CMD_SNAPSHOT) {
        publish_snapshot(&c);
        return;
    }
    if (c.action == ARB_CMD_CANCEL) {
        for (size_t i = 0; i < n_book; i++)
            if (book[i].order_id == c.order_id) {
                c.price = book[i].price;
                c.qty = book[i].qty;
                publish_event(&c, ARB_EV_CANCELLED, ARB_R_USER_CANCEL, 0, 0, 0, 0, ARB_EVF_LAST);
                book[i] = book[--n_book];
                return;
            }
        publish_event(&c, ARB_EV_REJECTED, ARB_R_UNKNOWN_ORDER, 0, 0, 0, 0, ARB_EVF_LAST);
        return;
    }
    if (split_held) { /* the held order's last event, in a later delivery */
        int64_t half = split_cmd.qty / 2;
        publish_event(&split_cmd, ARB_EV_PARTIAL, 0, split_cmd.qty - half, half, 10150, half,
                      ARB_EVF_LAST);
        split_held = 0;
    }
    switch (c.price) {
    case 10000:
        publish_event(&c, ARB_EV_ACCEPTED, 0, c.qty, 0, 0, 0, ARB_EVF_LAST);
        if (n_book < 256)
            book[n_book++] = (resting){c.order_id, c.account, c.price, c.qty, c.side};
        break;
    case 10100: {
        int64_t half = c.qty / 2;
        publish_event(&c, ARB_EV_ACCEPTED, 0, c.qty, 0, 0, 0, 0);
        publish_trade("XA", 10050, half, c.account, 999);
        publish_event(&c, ARB_EV_PARTIAL, 0, c.qty - half, half, 10050, half, 0);
        publish_trade("XA", 10100, c.qty - half, c.account, 999);
        publish_event(&c, ARB_EV_FILLED, 0, 0, c.qty, 10100, c.qty - half, ARB_EVF_LAST);
        break;
    }
    case 10150: /* accepted now; the rest of this command comes with the next one */
        publish_event(&c, ARB_EV_ACCEPTED, 0, c.qty, 0, 0, 0, 0);
        split_cmd = c;
        split_held = 1;
        break;
    case 10200:
        publish_event(&c, ARB_EV_REJECTED, ARB_R_PRICE_BAND, 0, 0, 0, 0, ARB_EVF_LAST);
        break;
    default: /* 103.00 and anything else: silence */ break;
    }
}

/* ---- a tiny blocking HTTP client, run on a helper thread ---- */

typedef struct http_call {
    int port;
    const char *method, *path, *key, *body;
    size_t body_len; /* 0: strlen(body) */
    const char *extra_headers;
    /* results */
    int status;
    char head[4096];
    char *resp; /* body, NUL-terminated */
    size_t resp_len;
    volatile int done;
} http_call;

static int connect_to(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void *http_thread(void *arg)
{
    http_call *c = arg;
    c->status = -1;
    int fd = connect_to(c->port);
    if (fd < 0) {
        c->done = 1;
        return NULL;
    }
    size_t blen = c->body ? (c->body_len ? c->body_len : strlen(c->body)) : 0;
    char req[2048];
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%s%s"
                 "Content-Length: %zu\r\n\r\n",
                 c->method, c->path, c->key ? "Authorization: Bearer " : "", c->key ? c->key : "",
                 c->key ? "\r\n" : "", c->extra_headers ? c->extra_headers : "", blen);
    if (send_all(fd, req, (size_t)n) == 0 && blen)
        send_all(fd, c->body, blen);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = 0;
    close(fd);
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep && sscanf(buf, "HTTP/1.1 %d", &c->status) == 1) {
        size_t hl = (size_t)(sep - buf);
        if (hl >= sizeof c->head)
            hl = sizeof c->head - 1;
        memcpy(c->head, buf, hl);
        c->head[hl] = 0;
        c->resp_len = len - (size_t)(sep + 4 - buf);
        c->resp = malloc(c->resp_len + 1);
        memcpy(c->resp, sep + 4, c->resp_len);
        c->resp[c->resp_len] = 0;
    }
    free(buf);
    c->done = 1;
    return NULL;
}

static int call_done(void *user) { return ((http_call *)user)->done; }

/* Runs the call on a thread while loop 0 (the scripted matcher) runs here. */
static void run_call(http_call *c)
{
    pthread_t th;
    c->done = 0;
    pthread_create(&th, NULL, http_thread, c);
    testhost_run_until(host, call_done, c, 10000 * MS);
    pthread_join(th, NULL);
}

static http_call *http(const char *method, const char *path, const char *key, const char *body)
{
    http_call *c = calloc(1, sizeof *c);
    c->port = port;
    c->method = method;
    c->path = path;
    c->key = key;
    c->body = body;
    run_call(c);
    return c;
}

static void call_free(http_call *c)
{
    free(c->resp);
    free(c);
}

static json_t *body_json(http_call *c)
{
    json_error_t e;
    json_t *j = c->resp ? json_loads(c->resp, 0, &e) : NULL;
    if (!j)
        fail_msg("status %d, body is not JSON: %s", c->status, c->resp ? c->resp : "(none)");
    return j;
}

static const char *jstr(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static const char *error_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static void expect_error(http_call *c, int status, const char *code)
{
    if (c->status != status)
        fail_msg("expected %d %s, got %d: %s", status, code, c->status, c->resp ? c->resp : "");
    json_t *j = body_json(c);
    assert_string_equal(error_code(j), code);
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    assert_non_null(strstr(c->head, "Content-Type: application/json"));
    json_decref(j);
}

static void expect_gone(http_call *c, int status, const char *code)
{
    expect_error(c, status, code);
    call_free(c);
}

/* An order with a client_order_id of its own ("t-1", "t-2", ...): a repeated
 * one would be answered with the first order. */
static char *order_body(const char *side, const char *price, const char *qty)
{
    static char b[256];
    static unsigned n;
    snprintf(b, sizeof b,
             "{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"%s\",\"price\":\"%s\","
             "\"qty\":\"%s\",\"client_order_id\":\"t-%u\"}",
             side, price, qty, ++n);
    return b;
}

/* An order with the client_order_id given. */
static char *order_body_id(const char *side, const char *price, const char *qty, const char *id)
{
    static char b[256];
    snprintf(b, sizeof b,
             "{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"%s\",\"price\":\"%s\","
             "\"qty\":\"%s\",\"client_order_id\":\"%s\"}",
             side, price, qty, id);
    return b;
}

static int setup(void **state)
{
    (void)state;
    port = test_free_port();
    slow_port = test_free_port();
    tight_port = test_free_port();
    char ini[4096];
    snprintf(ini, sizeof ini,
             "[host]\nthreads = 2\nadmin = 127.0.0.1:0\n"
             "[bus]\nqueue_bytes = 65536\n"
             "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.05\nqty_decimals = 3\n"
             "lot_size = 0.001\nmin_qty = 0.001\nmax_qty = 1000\n"
             "[instrument XB:BTCUSD]\nprice_decimals = 2\ntick_size = 0.01\nqty_decimals = 3\n"
             "[plugin gateway]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n"
             "api_key.alice = " KEY_A ":1001\napi_key.bob = " KEY_B ":1002\n"
             "account_name.999 = market-maker\npublic_accounts = 999\n"
             "timeout_ms = 300\nmax_body = 1024\nheartbeat_ms = 100\nstream_interval_ms = 20\n"
             "idle_timeout_s = 1\nstream_buffer_limit = 8192\nmax_streams = 4\n"
             "[plugin gw_slow]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n"
             "api_key.slow = " KEY_S ":1003\nrate_limit = 1\nrate_burst = 2\n"
             "max_open_orders = 2\nrequest_timeout_ms = 300\nmax_streams_per_addr = 3\n"
             "max_streams_per_key = 1\nstream_stall_ms = 300\nstream_buffer_limit = 67108864\n"
             "[plugin gw_tight]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n"
             "api_key.slow = " KEY_S ":1003\nmax_connections_per_addr = 3\n"
             "anon_rate_limit = 1\nanon_rate_burst = 3\n",
             port, slow_port, tight_port);
    host = testhost_new(ini);
    if (!host)
        return -1;
    n_book = 0;
    commands_seen = 0;
    if (arb_subscribe(testhost_ctx(host), ARB_TOPIC_ORDER_COMMANDS, on_command, NULL) < 0)
        return -1;
    if (testhost_start(host))
        return -1;
    /* Let both gateways ask for their snapshots and get them. */
    testhost_run(host, 50 * MS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testhost_free(host);
    host = NULL;
    return 0;
}

/* ---- orders ---- */

static void resting_order_is_answered_open(void **state)
{
    (void)state;
    http_call *c = http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "1.5"));
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "status"), "open");
    assert_string_equal(jstr(j, "qty"), "1.500");
    assert_string_equal(jstr(j, "leaves_qty"), "1.500");
    assert_string_equal(jstr(j, "account"), "1001");
    assert_string_equal(jstr(j, "client_order_id"), "t-1");
    assert_true(strlen(jstr(j, "order_id")) > 0);
    json_decref(j);
    call_free(c);
}

static void crossing_order_is_answered_with_all_its_fills(void **state)
{
    (void)state;
    http_call *c = http("POST", "/v1/orders", KEY_A, order_body("buy", "101.00", "2"));
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "status"), "filled");
    assert_string_equal(jstr(j, "filled_qty"), "2.000");
    json_t *fills = json_object_get(j, "fills");
    assert_int_equal(json_array_size(fills), 2);
    assert_string_equal(jstr(json_array_get(fills, 0), "price"), "100.50");
    assert_string_equal(jstr(json_array_get(fills, 1), "qty"), "1.000");
    json_decref(j);
    call_free(c);
}

static void rejected_order_is_answered_with_the_reason(void **state)
{
    (void)state;
    http_call *c = http("POST", "/v1/orders", KEY_A, order_body("buy", "102.00", "1"));
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "status"), "rejected");
    assert_string_equal(jstr(j, "reason"), "price_band");
    json_decref(j);
    call_free(c);
}

static void silent_matcher_gives_504_naming_the_order(void **state)
{
    (void)state;
    http_call *c = http("POST", "/v1/orders", KEY_A, order_body("buy", "103.00", "1"));
    expect_error(c, 504, "matcher_timeout");
    json_t *j = body_json(c);
    const char *id = jstr(json_object_get(j, "error"), "order_id");
    assert_non_null(id);
    char path[64];
    snprintf(path, sizeof path, "/v1/orders/%s", id);
    http_call *g = http("GET", path, KEY_A, NULL);
    assert_int_equal(g->status, 200);
    json_t *o = body_json(g);
    assert_string_equal(jstr(o, "status"), "pending");
    json_decref(o);
    json_decref(j);
    call_free(g);
    call_free(c);
}

typedef struct call_set {
    http_call *calls;
    size_t n;
} call_set;

static int all_done(void *user)
{
    call_set *cs = user;
    for (size_t i = 0; i < cs->n; i++)
        if (!cs->calls[i].done)
            return 0;
    return 1;
}

/* Requests that reach the gateway in the same loop turn are published
 * together; each must still get its own order's answer. */
static void orders_sent_at_once_are_each_answered_with_their_own_result(void **state)
{
    (void)state;
    enum { N = 12 };
    static const char *const prices[3] = {"100.00", "101.00", "102.00"};
    static const char *const want[3] = {"open", "filled", "rejected"};
    static char bodies[N][256];
    http_call calls[N];
    pthread_t th[N];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof bodies[i], "%s", order_body("buy", prices[i % 3], "1"));
        calls[i] = (http_call){
            .port = port, .method = "POST", .path = "/v1/orders", .key = KEY_A, .body = bodies[i]};
    }
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, http_thread, &calls[i]);
    call_set cs = {calls, N};
    testhost_run_until(host, all_done, &cs, 10000 * MS);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(calls[i].status, 200);
        json_t *j = body_json(&calls[i]);
        assert_string_equal(jstr(j, "status"), want[i % 3]);
        assert_string_equal(jstr(j, "price"), prices[i % 3]);
        json_decref(j);
        free(calls[i].resp);
    }
}

static int command_count_passed(void *arg) { return commands_seen > *(uint64_t *)arg; }

/* One command's events in two deliveries (the fake matcher sends the fill of
 * a 101.50 order with the next command): the answer waits for the event
 * flagged last and carries the fill, instead of the "open" of the first. */
static void answer_waits_for_the_commands_last_event(void **state)
{
    (void)state;
    static char body[256];
    snprintf(body, sizeof body, "%s", order_body("buy", "101.50", "1"));
    http_call a = {
        .port = port, .method = "POST", .path = "/v1/orders", .key = KEY_A, .body = body};
    pthread_t th;
    uint64_t before = commands_seen;
    pthread_create(&th, NULL, http_thread, &a);
    testhost_run_until(host, command_count_passed, &before, 5000 * MS);
    assert_true(split_held);
    http_call *b = http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "1"));
    assert_int_equal(b->status, 200);
    call_set cs = {&a, 1};
    testhost_run_until(host, all_done, &cs, 5000 * MS);
    pthread_join(th, NULL);
    assert_int_equal(a.status, 200);
    json_t *j = body_json(&a);
    assert_string_equal(jstr(j, "status"), "partially_filled");
    assert_string_equal(jstr(j, "filled_qty"), "0.500");
    json_decref(j);
    free(a.resp);
    call_free(b);
}

static void async_order_is_accepted_at_once(void **state)
{
    (void)state;
    http_call *c = http("POST", "/v1/orders?async=1", KEY_A, order_body("buy", "103.00", "1"));
    assert_int_equal(c->status, 202);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "status"), "pending");
    json_decref(j);
    call_free(c);
}

static void order_ids_increase_and_are_strings(void **state)
{
    (void)state;
    http_call *a = http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "1"));
    http_call *b = http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "1"));
    json_t *ja = body_json(a), *jb = body_json(b);
    assert_true(json_is_string(json_object_get(ja, "order_id")));
    assert_true(strtoull(jstr(jb, "order_id"), NULL, 10) >
                strtoull(jstr(ja, "order_id"), NULL, 10));
    json_decref(ja);
    json_decref(jb);
    call_free(a);
    call_free(b);
}

static char *place_resting(const char *key)
{
    http_call *c = http("POST", "/v1/orders", key, order_body("sell", "100.00", "1"));
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    char *path = malloc(64);
    snprintf(path, 64, "/v1/orders/%s", jstr(j, "order_id"));
    json_decref(j);
    call_free(c);
    return path;
}

static void account_sees_its_order_but_not_anothers(void **state)
{
    (void)state;
    char *path = place_resting(KEY_A);
    http_call *mine = http("GET", path, KEY_A, NULL);
    assert_int_equal(mine->status, 200);
    expect_gone(http("GET", path, KEY_B, NULL), 404, "order_not_found");
    expect_gone(http("DELETE", path, KEY_B, NULL), 404, "order_not_found");
    expect_gone(http("GET", "/v1/orders/123", KEY_A, NULL), 404, "order_not_found");
    expect_gone(http("GET", "/v1/orders/12x", KEY_A, NULL), 400, "invalid_order_id");
    call_free(mine);
    free(path);
}

static void cancel_answers_cancelled_then_not_open(void **state)
{
    (void)state;
    char *path = place_resting(KEY_A);
    http_call *c = http("DELETE", path, KEY_A, NULL);
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_string_equal(jstr(j, "status"), "cancelled");
    assert_string_equal(jstr(j, "reason"), "user_cancel");
    json_decref(j);
    expect_gone(http("DELETE", path, KEY_A, NULL), 409, "order_not_open");
    call_free(c);
    free(path);
}

static void cancel_refused_by_the_matcher_is_409(void **state)
{
    (void)state;
    char *path = place_resting(KEY_A);
    n_book = 0; /* the scripted matcher forgets it: the cancel is refused */
    expect_gone(http("DELETE", path, KEY_A, NULL), 409, "order_not_open");
    http_call *g = http("GET", path, KEY_A, NULL);
    json_t *j = body_json(g);
    assert_string_equal(jstr(j, "status"), "open");
    json_decref(j);
    call_free(g);
    free(path);
}

static void open_orders_list_only_the_callers_live_orders(void **state)
{
    (void)state;
    free(place_resting(KEY_A));
    free(place_resting(KEY_B));
    http_call *f = http("POST", "/v1/orders", KEY_A, order_body("buy", "101.00", "1"));
    assert_int_equal(f->status, 200);
    http_call *c = http("GET", "/v1/orders?status=open", KEY_A, NULL);
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    json_t *orders = json_object_get(j, "orders");
    assert_int_equal(json_array_size(orders), 1);
    assert_string_equal(jstr(json_array_get(orders, 0), "account"), "1001");
    assert_string_equal(jstr(json_array_get(orders, 0), "status"), "open");
    json_decref(j);
    expect_gone(http("GET", "/v1/orders?status=done", KEY_A, NULL), 400, "invalid_status");
    call_free(c);
    call_free(f);
}

/* ---- errors and safety ---- */

static void missing_or_bad_key_is_401(void **state)
{
    (void)state;
    http_call *c = http("POST", "/v1/orders", NULL, order_body("buy", "100.00", "1"));
    expect_error(c, 401, "unauthorized");
    assert_non_null(strstr(c->head, "WWW-Authenticate: Bearer"));
    expect_gone(http("GET", "/v1/orders", "not-a-real-key-at-all", NULL), 401, "unauthorized");
    call_free(c);
}

static void validation_failure_is_400_with_its_code(void **state)
{
    (void)state;
    uint64_t before = commands_seen;
    expect_gone(http("POST", "/v1/orders", KEY_A, order_body("buy", "100.03", "1")), 400,
                "price_off_tick");
    expect_gone(http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "0.0001")), 400,
                "qty_off_lot");
    expect_gone(http("POST", "/v1/orders", KEY_A, "{not json"), 400, "invalid_json");
    assert_int_equal(commands_seen, before); /* nothing reached the matcher */
}

static void body_over_the_limit_is_413(void **state)
{
    (void)state;
    char *big = malloc(2001);
    memset(big, ' ', 2000);
    big[0] = '{';
    big[1999] = '}';
    big[2000] = 0;
    expect_gone(http("POST", "/v1/orders", KEY_A, big), 413, "body_too_large");
    free(big);
    /* Far past the limit evhttp refuses the body before reading it: still 413. */
    http_call *c = calloc(1, sizeof *c);
    c->port = port;
    c->method = "POST";
    c->path = "/v1/orders";
    c->key = KEY_A;
    c->body = "";
    c->extra_headers = "Content-Length: 100000000\r\n";
    run_call(c);
    assert_int_equal(c->status, 413);
    call_free(c);
}

static void rate_limited_key_gets_429_with_retry_after(void **state)
{
    (void)state;
    http_call *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = calloc(1, sizeof *c[i]);
        c[i]->port = slow_port;
        c[i]->method = "GET";
        c[i]->path = "/v1/orders";
        c[i]->key = KEY_S;
        run_call(c[i]);
    }
    assert_int_equal(c[0]->status, 200);
    assert_int_equal(c[1]->status, 200);
    expect_error(c[2], 429, "rate_limited");
    assert_non_null(strstr(c[2]->head, "Retry-After: 1"));
    for (int i = 0; i < 3; i++)
        call_free(c[i]);
}

static void open_orders_per_account_are_capped(void **state)
{
    (void)state;
    /* gw_slow allows 2 open orders per account and 2 requests at once. */
    http_call *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = calloc(1, sizeof *c[i]);
        c[i]->port = slow_port;
        c[i]->method = "POST";
        c[i]->path = "/v1/orders?async=1";
        c[i]->key = KEY_S;
        c[i]->body = order_body("buy", "103.00", "1");
        run_call(c[i]);
        if (i < 2)
            testhost_run(host, 1100 * MS); /* one token a second */
    }
    assert_int_equal(c[0]->status, 202);
    assert_int_equal(c[1]->status, 202);
    expect_error(c[2], 429, "too_many_open_orders");
    for (int i = 0; i < 3; i++)
        call_free(c[i]);
}

static void unknown_route_is_404_and_wrong_method_405(void **state)
{
    (void)state;
    expect_gone(http("GET", "/v1/nothing", NULL, NULL), 404, "route_not_found");
    http_call *c = http("PUT", "/v1/orders", KEY_A, "{}");
    expect_error(c, 405, "method_not_allowed");
    assert_non_null(strstr(c->head, "Allow: POST, GET"));
    call_free(c);
    expect_gone(http("PATCH", "/v1/instruments", NULL, NULL), 405, "method_not_allowed");
}

static void full_matcher_queue_is_503(void **state)
{
    (void)state;
    /* Loop 0 (the matcher) is not run while the client posts, so the ring
     * from the gateway's loop fills up and publish says ARB_EFULL. */
    http_call *c = calloc(1, sizeof *c);
    c->port = port;
    c->method = "POST";
    c->path = "/v1/orders?async=1";
    c->key = KEY_A;
    int saw503 = 0;
    for (int i = 0; i < 2000 && !saw503; i++) {
        c->body = order_body("buy", "103.00", "1"); /* a new client_order_id each time */
        pthread_t th;
        pthread_create(&th, NULL, http_thread, c);
        pthread_join(th, NULL);
        if (c->status == 503) {
            json_t *j = body_json(c);
            assert_string_equal(error_code(j), "matcher_unavailable");
            json_decref(j);
            saw503 = 1;
        } else {
            assert_int_equal(c->status, 202);
        }
        free(c->resp);
        c->resp = NULL;
    }
    assert_true(saw503);
    call_free(c);
    testhost_run(host, 100 * MS); /* drain */
}

/* An idle connection and a request that never finishes are both closed. */
static void idle_and_slow_connections_are_closed(void **state)
{
    (void)state;
    int idle = connect_to(port), slow = connect_to(port);
    assert_true(idle >= 0 && slow >= 0);
    const char *partial = "GET /v1/instruments HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send_all(slow, partial, strlen(partial)), 0);
    struct pollfd p[2] = {{idle, POLLIN, 0}, {slow, POLLIN, 0}};
    int64_t deadline = 3000; /* idle_timeout_s is 1 */
    int closed = 0;
    while (closed < 2 && deadline > 0) {
        testhost_run(host, 50 * MS);
        deadline -= 50;
        if (poll(p, 2, 0) > 0)
            for (int i = 0; i < 2; i++)
                if (p[i].revents) {
                    char b[256];
                    if (recv(p[i].fd, b, sizeof b, MSG_DONTWAIT) <= 0) {
                        p[i].fd = -p[i].fd - 1;
                        closed++;
                    }
                }
    }
    assert_int_equal(closed, 2);
    close(idle);
    close(slow);
}

/* ---- reads ---- */

static void book_comes_from_the_matchers_snapshot(void **state)
{
    (void)state;
    http_call *c = http("GET", "/v1/book/XA/BTCUSD?depth=5", NULL, NULL);
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "bids"), 0), "price"), "99.00");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "asks"), 0), "qty"), "2.000");
    json_decref(j);
    call_free(c);
    expect_gone(http("GET", "/v1/book/XC/BTCUSD", NULL, NULL), 404, "unknown_instrument");
    expect_gone(http("GET", "/v1/book/XA/BTCUSD?depth=0", NULL, NULL), 400, "invalid_depth");
}

static void trades_and_pnl_follow_trade_executed(void **state)
{
    (void)state;
    http_call *f = http("POST", "/v1/orders", KEY_A, order_body("buy", "101.00", "2"));
    assert_int_equal(f->status, 200);
    call_free(f);
    http_call *c = http("GET", "/v1/trades?venue=XA&symbol=BTCUSD&limit=1", NULL, NULL);
    assert_int_equal(c->status, 200);
    json_t *j = body_json(c);
    json_t *trades = json_object_get(j, "trades");
    assert_int_equal(json_array_size(trades), 1);
    assert_string_equal(jstr(json_array_get(trades, 0), "price"), "101.00");
    json_decref(j);
    call_free(c);
    c = http("GET", "/v1/accounts", KEY_A, NULL);
    j = body_json(c);
    json_t *accounts = json_object_get(j, "accounts");
    assert_int_equal(json_array_size(accounts), 2);
    json_t *alice = json_array_get(accounts, 0), *mm = json_array_get(accounts, 1);
    assert_string_equal(jstr(alice, "name"), "alice");
    assert_string_equal(jstr(mm, "name"), "market-maker");
    json_t *pos = json_array_get(json_object_get(alice, "positions"), 0);
    assert_string_equal(jstr(pos, "position"), "2.000");
    /* Bought 1 at 100.50 and 1 at 101.00, marked at 101.00: +0.50. */
    assert_string_equal(jstr(alice, "pnl_total"), "0.50000");
    assert_string_equal(jstr(mm, "pnl_total"), "-0.50000");
    json_decref(j);
    call_free(c);
    expect_gone(http("GET", "/v1/trades?venue=XQ", NULL, NULL), 404, "unknown_instrument");
    expect_gone(http("GET", "/v1/trades?limit=0", NULL, NULL), 400, "invalid_limit");
}

static void instruments_list_the_config(void **state)
{
    (void)state;
    http_call *c = http("GET", "/v1/instruments", NULL, NULL);
    json_t *j = body_json(c);
    json_t *in = json_object_get(j, "instruments");
    assert_int_equal(json_array_size(in), 2);
    assert_string_equal(jstr(json_array_get(in, 0), "tick_size"), "0.05");
    assert_string_equal(jstr(json_array_get(in, 1), "venue"), "XB");
    json_decref(j);
    call_free(c);
}

static void served_openapi_is_the_repository_file(void **state)
{
    (void)state;
    http_call *c = http("GET", "/v1/openapi.json", NULL, NULL);
    assert_int_equal(c->status, 200);
    FILE *f = fopen("plugins/gateway/openapi.json", "rb");
    assert_non_null(f);
    char *file = malloc(c->resp_len + 16);
    size_t n = fread(file, 1, c->resp_len + 16, f);
    fclose(f);
    assert_int_equal(n, c->resp_len);
    assert_memory_equal(file, c->resp, n);
    free(file);
    call_free(c);
}

/* Each documented operation, called on the running gateway, reaches a
 * handler: never route_not_found or method_not_allowed. */
static void every_documented_operation_is_routed_by_the_server(void **state)
{
    (void)state;
    json_t *doc = json_load_file("plugins/gateway/openapi.json", 0, NULL);
    assert_non_null(doc);
    const char *path;
    json_t *item;
    int checked = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        char concrete[128];
        size_t j = 0;
        for (const char *p = path; *p && j < sizeof concrete - 8; p++) {
            if (*p == '{') {
                const char *fill = !strncmp(p, "{venue}", 7)    ? "XA"
                                   : !strncmp(p, "{symbol}", 8) ? "BTCUSD"
                                                                : "1";
                j += (size_t)snprintf(concrete + j, sizeof concrete - j, "%s", fill);
                p = strchr(p, '}');
            } else {
                concrete[j++] = *p;
            }
        }
        concrete[j] = 0;
        const char *methods[] = {"get", "post", "delete"};
        for (int m = 0; m < 3; m++) {
            if (!json_object_get(item, methods[m]) || !strcmp(path, "/v1/stream"))
                continue;
            char upper[8];
            size_t k = 0;
            for (; methods[m][k]; k++)
                upper[k] = (char)(methods[m][k] & ~0x20);
            upper[k] = 0;
            http_call *c = http(upper, concrete, KEY_A, m == 1 ? "{}" : NULL);
            if (c->status == 404 || c->status == 405) {
                json_t *e = body_json(c);
                assert_string_not_equal(error_code(e), "route_not_found");
                assert_string_not_equal(error_code(e), "method_not_allowed");
                json_decref(e);
            }
            call_free(c);
            checked++;
        }
    }
    assert_int_equal(checked, 14); /* fifteen operations; the stream has its own tests */
    json_decref(doc);
}

/* ---- the stream ---- */

typedef struct stream_reader {
    int fd;
    char buf[1 << 16];
    size_t len;
} stream_reader;

static int stream_open(stream_reader *s, const char *path)
{
    s->fd = connect_to(port);
    s->len = 0;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    return send_all(s->fd, req, (size_t)n);
}

/* Runs the host until `needle` shows up in what the stream sent. */
static int stream_wait_for(stream_reader *s, const char *needle, int64_t max_ms)
{
    for (int64_t t = 0; t < max_ms; t += 10) {
        ssize_t r;
        while (s->len < sizeof s->buf - 1 &&
               (r = recv(s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len, MSG_DONTWAIT)) > 0)
            s->len += (size_t)r;
        s->buf[s->len] = 0;
        if (strstr(s->buf, needle))
            return 1;
        testhost_run(host, 10 * MS);
    }
    return 0;
}

static void stream_sends_state_then_live_trades_and_heartbeats(void **state)
{
    (void)state;
    stream_reader *s = calloc(1, sizeof *s);
    assert_int_equal(stream_open(s, "/v1/stream?topics=trades,book,pnl"), 0);
    assert_true(stream_wait_for(s, "event: book", 2000));
    assert_non_null(strstr(s->buf, "Content-Type: text/event-stream"));
    assert_non_null(strstr(s->buf, "\"venue\":\"XA\""));
    assert_true(stream_wait_for(s, ": heartbeat", 2000));
    s->len = 0;
    http_call *f = http("POST", "/v1/orders", KEY_A, order_body("buy", "101.00", "2"));
    call_free(f);
    assert_true(stream_wait_for(s, "event: trade\r\n", 10) ||
                stream_wait_for(s, "\"price\":\"101.00\"", 2000));
    assert_non_null(strstr(s->buf, "event: trade"));
    assert_true(stream_wait_for(s, "event: pnl", 3000));
    close(s->fd);
    free(s);
}

static void stream_carries_ticks_and_market_events(void **state)
{
    (void)state;
    stream_reader *s = calloc(1, sizeof *s);
    assert_int_equal(stream_open(s, "/v1/stream?topics=ticks,market"), 0);
    assert_true(stream_wait_for(s, "retry:", 2000));
    uint8_t buf[ARB_MARKET_EVENT_LEN];
    arb_tick tk = {7, 1700000000000000000, 1700000000000000000, 10, ARB_TICK_SIM};
    arb_tick_encode(&tk, buf, sizeof buf);
    arb_publish(testhost_ctx(host), ARB_TOPIC_SYSTEM_TICKS, 0, buf, ARB_TICK_LEN);
    arb_market_event me;
    memset(&me, 0, sizeof me);
    me.kind = ARB_MEV_FAIR_VALUE;
    arb_fixstr_set(me.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    me.value = 10123;
    arb_market_event_encode(&me, buf, sizeof buf);
    arb_publish(testhost_ctx(host), ARB_TOPIC_MARKET_EVENTS, 0, buf, sizeof buf);
    assert_true(stream_wait_for(s, "event: tick", 2000));
    assert_true(stream_wait_for(s, "\"value\":\"101.23\"", 2000));
    assert_non_null(strstr(s->buf, "event: market"));
    assert_null(strstr(s->buf, "event: book")); /* not asked for */
    close(s->fd);
    free(s);
}

static void stream_rejects_unknown_topics(void **state)
{
    (void)state;
    expect_gone(http("GET", "/v1/stream?topics=trades,gossip", NULL, NULL), 400, "invalid_topics");
}

static void stream_count_is_bounded(void **state)
{
    (void)state;
    stream_reader *s = calloc(4, sizeof *s);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(stream_open(&s[i], "/v1/stream?topics=ticks"), 0);
        assert_true(stream_wait_for(&s[i], "retry:", 2000));
    }
    expect_gone(http("GET", "/v1/stream", NULL, NULL), 503, "too_many_streams");
    for (int i = 0; i < 4; i++)
        close(s[i].fd);
    testhost_run(host, 300 * MS); /* heartbeats find the closed sockets */
    http_call *c = calloc(1, sizeof *c);
    stream_reader *again = calloc(1, sizeof *again);
    assert_int_equal(stream_open(again, "/v1/stream?topics=ticks"), 0);
    assert_true(stream_wait_for(again, "retry:", 2000));
    close(again->fd);
    free(again);
    free(c);
    free(s);
}

/* A client that stops reading is cut off once its unsent output passes
 * stream_buffer_limit, so it cannot make the gateway hold more. */
static void slow_stream_reader_is_cut_off(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET /v1/stream?topics=trades HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send_all(fd, req, strlen(req)), 0);
    testhost_run(host, 50 * MS);
    /* Flood trades; the client reads nothing. */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 200; i++)
            publish_trade("XA", 10000, 1, 1, 2);
        testhost_run(host, 5 * MS);
    }
    testhost_run(host, 100 * MS);
    /* Now read: the server must have closed the connection (EOF), having
     * sent only a bounded amount. */
    size_t total = 0;
    int eof = 0;
    for (int t = 0; t < 300 && !eof; t++) {
        char b[65536];
        ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            eof = 1;
        else if (r > 0)
            total += (size_t)r;
        else
            testhost_run(host, 10 * MS);
    }
    close(fd);
    assert_true(eof);
    /* 10000 trades of ~200 bytes were published; far less reached us. */
    assert_true(total < 1000000);
}

/* ---- keep-alive ---- */

/* Requests written together on one keep-alive connection; the responses
 * are read back by their Content-Length. */
typedef struct pipelined {
    int port;
    const char *requests;
    int half_close; /* shutdown(SHUT_WR) once the requests are written */
    int expected;
    int got;
    int status[4];
    char body[4][4096];
    volatile int done;
} pipelined;

static void *pipelined_thread(void *arg)
{
    pipelined *p = arg;
    int fd = connect_to(p->port);
    if (fd < 0 || send_all(fd, p->requests, strlen(p->requests))) {
        p->done = 1;
        return NULL;
    }
    if (p->half_close)
        shutdown(fd, SHUT_WR);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static char buf[65536];
    size_t len = 0;
    while (p->got < p->expected) {
        buf[len] = 0;
        char *sep = strstr(buf, "\r\n\r\n");
        const char *cl = sep ? strstr(buf, "Content-Length: ") : NULL;
        if (sep && cl && cl < sep) {
            size_t head = (size_t)(sep + 4 - buf), n = strtoul(cl + 16, NULL, 10);
            if (len >= head + n && n < sizeof p->body[0]) {
                sscanf(buf, "HTTP/1.1 %d", &p->status[p->got]);
                memcpy(p->body[p->got], sep + 4, n);
                p->body[p->got][n] = 0;
                p->got++;
                memmove(buf, buf + head + n, len - head - n);
                len -= head + n;
                continue;
            }
        }
        ssize_t r = len < sizeof buf - 1 ? recv(fd, buf + len, sizeof buf - 1 - len, 0) : -1;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    p->done = 1;
    return NULL;
}

static int pipelined_done(void *user) { return ((pipelined *)user)->done; }

/* Writes `requests` on one connection (then half-closes it if asked) and
 * reads `expected` responses back; the caller frees the result. */
static pipelined *run_pipelined(const char *requests, int expected, int half_close)
{
    pipelined *p = calloc(1, sizeof *p);
    p->port = port;
    p->requests = requests;
    p->half_close = half_close;
    p->expected = expected;
    pthread_t th;
    pthread_create(&th, NULL, pipelined_thread, p);
    testhost_run_until(host, pipelined_done, p, 10000 * MS);
    pthread_join(th, NULL);
    return p;
}

/* The raw HTTP/1.1 text of an order from account A. */
static void order_request(char *out, size_t cap, const char *side, const char *price)
{
    char *body = order_body(side, price, "1");
    snprintf(out, cap,
             "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY_A
             "\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(body), body);
}

/* Answers leave as soon as they are ready (the gateway writes them itself
 * rather than waiting for the loop to report the socket writable); each
 * must still end its request properly so that the next request on the
 * same connection is read and answered, in order. */
static void keep_alive_connection_answers_each_request_in_turn(void **state)
{
    (void)state;
    char order_rests[512], order_rejected[512], requests[2048];
    order_request(order_rests, sizeof order_rests, "buy", "100.00");
    order_request(order_rejected, sizeof order_rejected, "sell", "102.00");
    snprintf(requests, sizeof requests, "%sGET /v1/instruments HTTP/1.1\r\nHost: x\r\n\r\n%s",
             order_rests, order_rejected);
    pipelined *p = run_pipelined(requests, 3, 0);
    assert_int_equal(p->got, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p->status[i], 200);
    assert_non_null(strstr(p->body[0], "\"status\":\"open\""));
    assert_non_null(strstr(p->body[1], "\"instruments\":["));
    assert_non_null(strstr(p->body[2], "\"status\":\"rejected\""));
    free(p);
}

/* Two large answers (hundreds of trades: the body spans many buffer chains)
 * in turn on one keep-alive connection: each arrives once, whole, and
 * nothing follows the second. (The gateway's own early write once sent the
 * start of such an answer twice.) */
typedef struct big_answers {
    int port;
    int ok[2];
    size_t len[2], extra;
    volatile int done;
} big_answers;

static void *big_answers_thread(void *arg)
{
    big_answers *b = arg;
    int fd = connect_to(b->port);
    static char buf[1 << 20];
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /v1/trades?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; fd >= 0 && i < 2 && !send_all(fd, req, sizeof req - 1); i++) {
        size_t len = 0, want = 0;
        for (;;) {
            buf[len] = 0;
            char *sep = strstr(buf, "\r\n\r\n");
            const char *cl = sep ? strstr(buf, "Content-Length: ") : NULL;
            if (sep && cl && cl < sep)
                want = (size_t)(sep + 4 - buf) + strtoul(cl + 16, NULL, 10);
            if (want && len >= want)
                break;
            ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
        }
        if (!want || len < want)
            break;
        b->extra += len - want;
        char *body = strstr(buf, "\r\n\r\n") + 4;
        json_t *j = json_loadb(body, want - (size_t)(body - buf), 0, NULL);
        b->ok[i] = j && json_array_size(json_object_get(j, "trades")) >= 400;
        b->len[i] = want;
        json_decref(j);
    }
    /* nothing more may come: a duplicate would be here */
    struct timeval shortwait = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &shortwait, sizeof shortwait);
    ssize_t more = fd >= 0 ? recv(fd, buf, sizeof buf, 0) : -1;
    if (more > 0)
        b->extra += (size_t)more;
    if (fd >= 0)
        close(fd);
    b->done = 1;
    return NULL;
}

static int big_answers_done(void *user) { return ((big_answers *)user)->done; }

static void large_answers_on_keep_alive_arrive_once_and_whole(void **state)
{
    (void)state;
    for (int i = 0; i < 400; i++)
        publish_trade("XA", 10000 + i, 1000, 1001, 1002);
    big_answers b = {.port = port};
    pthread_t th;
    pthread_create(&th, NULL, big_answers_thread, &b);
    testhost_run_until(host, big_answers_done, &b, 10000 * MS);
    pthread_join(th, NULL);
    assert_true(b.ok[0]);
    assert_true(b.ok[1]);
    assert_true(b.len[0] > 32768);
    assert_int_equal(b.extra, 0);
}

/* A client that closes its sending side once its order is written (as some
 * one-shot clients do) still gets the order's answer: the gateway watches
 * the socket for that close between requests and must not end the
 * connection early because of it. */
static void half_closed_client_still_gets_its_answer(void **state)
{
    (void)state;
    char request[1024];
    order_request(request, sizeof request, "buy", "100.00");
    pipelined *p = run_pipelined(request, 1, 1);
    assert_int_equal(p->got, 1);
    assert_int_equal(p->status[0], 200);
    assert_non_null(strstr(p->body[0], "\"status\":\"open\""));
    free(p);
}

static int64_t cpu_us(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (int64_t)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000 + r.ru_utime.tv_usec +
           r.ru_stime.tv_usec;
}

/* A client that resets its connection while its order waits for the matcher
 * costs the gateway nothing: its socket, readable with the reset while
 * evhttp is not reading it, must not be reported on every loop turn, which
 * would spin the gateway's thread until the order's timeout. */
static void reset_while_an_order_waits_does_not_spin(void **state)
{
    (void)state;
    char request[1024];
    order_request(request, sizeof request, "buy", "103.00"); /* never answered */
    int fd = connect_to(port);
    assert_int_equal(send_all(fd, request, strlen(request)), 0);
    testhost_run(host, 50 * MS); /* read, and waiting for the matcher (timeout 300 ms) */
    struct linger rst = {1, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst), 0);
    close(fd);
    int64_t before = cpu_us();
    testhost_run(host, 200 * MS);
    int64_t used = cpu_us() - before;
    assert_true(used < 100000);   /* a spinning thread would take all 200 ms */
    testhost_run(host, 200 * MS); /* past the order's timeout */
    http_call *c = http("GET", "/v1/instruments", NULL, NULL);
    assert_int_equal(c->status, 200);
    call_free(c);
}

/* A keep-alive connection that has served a request and then asks for the
 * stream becomes a stream: the gateway hands the connection's close
 * callback over to the stream, and closing it later frees both cleanly
 * (ASan runs this too) while the gateway goes on serving others. */
static void keep_alive_connection_can_become_a_stream(void **state)
{
    (void)state;
    stream_reader *s = calloc(1, sizeof *s);
    s->fd = connect_to(port);
    static const char two[] = "GET /v1/instruments HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /v1/stream?topics=ticks HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send_all(s->fd, two, sizeof two - 1), 0);
    assert_true(stream_wait_for(s, "\"instruments\":[", 5000));
    assert_true(stream_wait_for(s, "text/event-stream", 5000));
    assert_true(stream_wait_for(s, "retry: 2000", 5000));
    close(s->fd);
    testhost_run(host, 50 * MS);
    http_call *c = http("GET", "/v1/instruments", NULL, NULL);
    assert_int_equal(c->status, 200);
    call_free(c);
    free(s);
}

/* ---- privacy ---- */

/* Alice (1001) trades with the market maker (999, public_accounts): anyone
 * sees the market maker, only Alice's key sees Alice. */
static void accounts_without_a_key_show_only_public_accounts(void **state)
{
    (void)state;
    http_call *f = http("POST", "/v1/orders", KEY_A, order_body("buy", "101.00", "2"));
    assert_int_equal(f->status, 200);
    call_free(f);
    const char *keys[] = {NULL, KEY_B};
    for (int k = 0; k < 2; k++) {
        http_call *c = http("GET", "/v1/accounts", keys[k], NULL);
        assert_int_equal(c->status, 200);
        json_t *j = body_json(c);
        json_t *accounts = json_object_get(j, "accounts");
        assert_int_equal(json_array_size(accounts), 1);
        assert_string_equal(jstr(json_array_get(accounts, 0), "name"), "market-maker");
        assert_null(strstr(c->resp, "1001"));
        json_decref(j);
        call_free(c);
    }
}

static void accounts_with_a_wrong_key_is_401(void **state)
{
    (void)state;
    expect_gone(http("GET", "/v1/accounts", "no-such-key-0123456789", NULL), 401, "unauthorized");
}

/* The stream's PnL board is the public one. */
static void stream_pnl_board_shows_only_public_accounts(void **state)
{
    (void)state;
    http_call *f = http("POST", "/v1/orders", KEY_A, order_body("buy", "101.00", "2"));
    assert_int_equal(f->status, 200);
    call_free(f);
    stream_reader *s = calloc(1, sizeof *s);
    assert_int_equal(stream_open(s, "/v1/stream?topics=pnl"), 0);
    assert_true(stream_wait_for(s, "market-maker", 5000));
    assert_null(strstr(s->buf, "\"1001\""));
    assert_null(strstr(s->buf, "alice"));
    close(s->fd);
    free(s);
}

/* Another account's order id answers exactly as an id that was never
 * issued: same status, same body but for the number. */
static void anothers_order_answers_as_an_unknown_one(void **state)
{
    (void)state;
    char *path = place_resting(KEY_A);
    http_call *theirs = http("GET", path, KEY_B, NULL);
    http_call *unknown = http("GET", "/v1/orders/123", KEY_B, NULL);
    assert_int_equal(theirs->status, unknown->status);
    char *id = strrchr(path, '/') + 1;
    char expected[512];
    const char *at = strstr(unknown->resp, "123");
    assert_non_null(at);
    snprintf(expected, sizeof expected, "%.*s%s%s", (int)(at - unknown->resp), unknown->resp, id,
             at + 3);
    assert_string_equal(theirs->resp, expected);
    call_free(theirs);
    call_free(unknown);
    free(path);
}

/* An order of this gateway's id space whose events arrive though the
 * gateway never saw it placed (the matcher replayed it after a crash its
 * client got no answer from) is adopted: its owner reads and cancels it,
 * anyone else gets 404. */
static void replayed_order_of_ours_is_adopted_for_its_owner(void **state)
{
    (void)state;
    char *path = place_resting(KEY_A);
    uint64_t placed = strtoull(strrchr(path, '/') + 1, NULL, 10);
    arb_order_cmd c;
    memset(&c, 0, sizeof c);
    c.action = ARB_CMD_NEW;
    c.side = ARB_SIDE_BUY;
    c.type = ARB_ORD_LIMIT;
    c.tif = ARB_TIF_GTC;
    arb_fixstr_set(c.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    c.order_id = (placed >> 48) << 48 | 0xabcde;
    c.account = 1001;
    c.price = 9000;
    c.qty = 1000;
    publish_event(&c, ARB_EV_ACCEPTED, 0, c.qty, 0, 0, 0, ARB_EVF_LAST);
    if (n_book < 256)
        book[n_book++] = (resting){c.order_id, c.account, c.price, c.qty, c.side};
    testhost_run(host, 20 * MS);
    char mine[64];
    snprintf(mine, sizeof mine, "/v1/orders/%llu", (unsigned long long)c.order_id);
    http_call *owner = http("GET", mine, KEY_A, NULL);
    assert_int_equal(owner->status, 200);
    json_t *j = body_json(owner);
    assert_string_equal(jstr(j, "status"), "open");
    assert_string_equal(jstr(j, "price"), "90.00");
    json_decref(j);
    http_call *other = http("GET", mine, KEY_B, NULL);
    assert_int_equal(other->status, 404);
    http_call *cancel = http("DELETE", mine, KEY_A, NULL);
    assert_int_equal(cancel->status, 200);
    j = body_json(cancel);
    assert_string_equal(jstr(j, "status"), "cancelled");
    json_decref(j);
    call_free(owner);
    call_free(other);
    call_free(cancel);
    free(path);
}

/* ---- idempotent order entry ---- */

static void repeated_client_order_id_returns_the_first_order_and_sends_nothing(void **state)
{
    (void)state;
    http_call *a = http("POST", "/v1/orders", KEY_A, order_body_id("buy", "100.00", "1", "dup-1"));
    assert_int_equal(a->status, 200);
    uint64_t sent = commands_seen;
    http_call *b = http("POST", "/v1/orders", KEY_A, order_body_id("buy", "100.00", "1", "dup-1"));
    assert_int_equal(b->status, 200);
    testhost_run(host, 20 * MS);
    assert_int_equal(commands_seen, sent);
    json_t *ja = body_json(a), *jb = body_json(b);
    assert_string_equal(jstr(ja, "order_id"), jstr(jb, "order_id"));
    assert_non_null(strstr(b->head, "Idempotent-Replay: true"));
    json_decref(ja);
    json_decref(jb);
    call_free(a);
    call_free(b);
}

/* The retry of an order the matcher has not answered yet (the client gave
 * up after a 504) waits for the same order instead of placing another. */
static void retry_of_an_unanswered_order_waits_for_the_same_order(void **state)
{
    (void)state;
    http_call *a = http("POST", "/v1/orders", KEY_A, order_body_id("buy", "103.00", "1", "dup-2"));
    assert_int_equal(a->status, 504);
    uint64_t sent = commands_seen;
    http_call *b = http("POST", "/v1/orders", KEY_A, order_body_id("buy", "103.00", "1", "dup-2"));
    assert_int_equal(b->status, 504);
    assert_int_equal(commands_seen, sent);
    json_t *ja = body_json(a), *jb = body_json(b);
    assert_string_equal(jstr(json_object_get(ja, "error"), "order_id"),
                        jstr(json_object_get(jb, "error"), "order_id"));
    json_decref(ja);
    json_decref(jb);
    call_free(a);
    call_free(b);
}

static void reused_client_order_id_with_other_terms_is_409(void **state)
{
    (void)state;
    http_call *a = http("POST", "/v1/orders", KEY_A, order_body_id("buy", "100.00", "1", "dup-3"));
    assert_int_equal(a->status, 200);
    call_free(a);
    expect_gone(http("POST", "/v1/orders", KEY_A, order_body_id("buy", "100.00", "2", "dup-3")),
                409, "client_order_id_reused");
}

static void another_account_may_use_the_same_client_order_id(void **state)
{
    (void)state;
    http_call *a = http("POST", "/v1/orders", KEY_A, order_body_id("buy", "100.00", "1", "dup-4"));
    http_call *b = http("POST", "/v1/orders", KEY_B, order_body_id("buy", "100.00", "1", "dup-4"));
    assert_int_equal(a->status, 200);
    assert_int_equal(b->status, 200);
    json_t *ja = body_json(a), *jb = body_json(b);
    assert_string_not_equal(jstr(ja, "order_id"), jstr(jb, "order_id"));
    json_decref(ja);
    json_decref(jb);
    call_free(a);
    call_free(b);
}

/* ---- HTTP framing and evhttp's own errors ---- */

/* Raw bytes on a fresh connection; everything the server sends back until
 * it closes (or 5 s pass). */
typedef struct raw_call {
    int port;
    const char *bytes;
    size_t len;
    char *got;
    size_t got_len;
    int closed; /* the server closed the connection */
    volatile int done;
} raw_call;

static void *raw_thread(void *arg)
{
    raw_call *r = arg;
    int fd = connect_to(r->port);
    size_t cap = 1 << 16;
    r->got = calloc(1, cap + 1);
    if (fd < 0) {
        r->done = 1;
        return NULL;
    }
    send_all(fd, r->bytes, r->len);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        ssize_t n = r->got_len < cap ? recv(fd, r->got + r->got_len, cap - r->got_len, 0) : -1;
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            r->closed = 1;
        if (n <= 0)
            break;
        r->got_len += (size_t)n;
    }
    close(fd);
    r->done = 1;
    return NULL;
}

static int raw_done(void *user) { return ((raw_call *)user)->done; }

static raw_call *raw(const char *bytes, size_t len)
{
    raw_call *r = calloc(1, sizeof *r);
    r->port = port;
    r->bytes = bytes;
    r->len = len ? len : strlen(bytes);
    pthread_t th;
    pthread_create(&th, NULL, raw_thread, r);
    testhost_run_until(host, raw_done, r, 10000 * MS);
    pthread_join(th, NULL);
    return r;
}

static void raw_free(raw_call *r)
{
    free(r->got);
    free(r);
}

static int count_responses(const raw_call *r)
{
    int n = 0;
    for (const char *p = r->got; (p = strstr(p, "HTTP/1.1 ")); p++)
        n++;
    return n;
}

/* The one response is a JSON error with this status and code, and the
 * server closed the connection after it. */
static void expect_raw_error(raw_call *r, int status, const char *code)
{
    int got = 0;
    sscanf(r->got, "HTTP/1.1 %d", &got);
    if (got != status)
        fail_msg("expected %d %s, got: %s", status, code, r->got);
    assert_int_equal(count_responses(r), 1);
    assert_true(r->closed);
    const char *sep = strstr(r->got, "\r\n\r\n");
    assert_non_null(sep);
    assert_non_null(strstr(r->got, "Content-Type: application/json"));
    json_error_t e;
    json_t *j = json_loads(sep + 4, 0, &e);
    if (!j)
        fail_msg("body is not JSON: %s", sep + 4);
    assert_string_equal(error_code(j), code);
    json_decref(j);
    raw_free(r);
}

/* A body that is itself a request: if the gateway framed the first request
 * the lenient way, this would be served as a second one. */
#define SMUGGLED "GET /v1/instruments HTTP/1.1\r\nHost: x\r\n\r\n"

static void differing_content_lengths_are_rejected_and_close(void **state)
{
    (void)state;
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
             "Content-Length: %zu\r\n\r\n" SMUGGLED,
             strlen(SMUGGLED));
    expect_raw_error(raw(req, 0), 400, "duplicate_content_length");
}

static void repeated_equal_content_length_is_rejected(void **state)
{
    (void)state;
    expect_raw_error(raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                         "Content-Length: 2\r\n\r\n{}",
                         0),
                     400, "duplicate_content_length");
}

/* evhttp keeps "Content-Length " (space before the colon) as an unknown
 * header and reads no body: the body would be the next request. */
static void whitespace_before_colon_is_rejected_and_closes(void **state)
{
    (void)state;
    char req[512];
    snprintf(req, sizeof req,
             "POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length : %zu\r\n\r\n" SMUGGLED,
             strlen(SMUGGLED));
    expect_raw_error(raw(req, 0), 400, "invalid_header_name");
}

static void signed_content_length_is_rejected(void **state)
{
    (void)state;
    expect_raw_error(raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}", 0),
                     400, "invalid_content_length");
}

/* evhttp refuses a length that is not a number itself; the answer is
 * still the JSON format, and the connection is closed. */
static void non_digit_content_length_is_rejected(void **state)
{
    (void)state;
    expect_raw_error(
        raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}", 0), 400,
        "malformed_request");
}

static void transfer_encoding_other_than_chunked_is_rejected(void **state)
{
    (void)state;
    char req[512];
    /* evhttp reads no body for a coding other than "chunked" with no
     * Content-Length: the chunked body would be the next request. */
    snprintf(req, sizeof req,
             "POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n"
             "\r\n%zx\r\n" SMUGGLED "\r\n0\r\n\r\n",
             strlen(SMUGGLED));
    expect_raw_error(raw(req, 0), 400, "unsupported_transfer_encoding");
}

/* evhttp 2.1 refuses this pair itself (the gateway's own check, which
 * test_gateway_framing pins, would otherwise): JSON 400, closed. */
static void content_length_with_chunked_is_rejected(void **state)
{
    (void)state;
    expect_raw_error(raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         "Content-Length: 3\r\n\r\n0\r\n\r\n",
                         0),
                     400, "malformed_request");
}

/* An order from account A sent as one chunk then the last, each size line
 * followed by `ext` and `last_ext` (chunk extensions, or ""): the order is
 * served and rests. */
static void expect_chunked_order_served(const char *ext, const char *last_ext)
{
    char *body = order_body("buy", "100.00", "1");
    char req[1024];
    snprintf(req, sizeof req,
             "POST /v1/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Authorization: Bearer " KEY_A "\r\nTransfer-Encoding: chunked\r\n\r\n"
             "%zx%s\r\n%s\r\n0%s\r\n\r\n",
             strlen(body), ext, body, last_ext);
    raw_call *r = raw(req, 0);
    if (strncmp(r->got, "HTTP/1.1 200", 12))
        fail_msg("%s", r->got);
    assert_non_null(strstr(r->got, "\"status\":\"open\""));
    raw_free(r);
}

/* The control: a plain chunked body is still served. */
static void chunked_order_is_accepted(void **state)
{
    (void)state;
    expect_chunked_order_served("", "");
}

#define CHUNKED_HEAD                                                      \
    "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY_A \
    "\r\nTransfer-Encoding: chunked\r\n\r\n"

/* evhttp refuses a size that is not hex as if the body were too large
 * (413), and takes "0x5" as 5: both are malformed framing, 400. */
static void malformed_chunk_size_is_400(void **state)
{
    (void)state;
    expect_raw_error(raw(CHUNKED_HEAD "zz\r\nhello\r\n0\r\n\r\n", 0), 400, "invalid_chunk_size");
    expect_raw_error(raw(CHUNKED_HEAD "0x5\r\nhello\r\n0\r\n\r\n", 0), 400, "invalid_chunk_size");
    /* evhttp skips the missing CRLF after chunk data */
    expect_raw_error(raw(CHUNKED_HEAD "5\r\nhello0\r\n\r\n", 0), 400, "invalid_chunk");
    /* and answers a malformed trailer 413 */
    expect_raw_error(raw(CHUNKED_HEAD "0\r\nno colon\r\n\r\n", 0), 400, "invalid_trailer");
}

/* RFC 9112 section 7.1.1: an unrecognised chunk extension is ignored.
 * evhttp refuses "5;x=1" (413); the gateway serves it. */
static void chunk_extension_is_ignored_and_the_order_served(void **state)
{
    (void)state;
    expect_chunked_order_served(";ext=1", ";last=\"yes\"");
}

/* A chunk over max_body (1024) is refused at its size line, with no data
 * sent: evhttp's cap is 4 x max_body, and below it evhttp waited for the
 * data until the request deadline (5 s, 408). */
static void chunk_over_the_limit_is_413_at_once(void **state)
{
    (void)state;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    raw_call *r = raw(CHUNKED_HEAD "800\r\n{", 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    /* At once: well inside the 1 s idle timeout that would otherwise close it. */
    if (ms >= 500)
        fail_msg("answered after %lld ms", (long long)ms);
    expect_raw_error(r, 413, "body_too_large");
}

/* A request already read behind another is scanned when evhttp comes to
 * it: the first is served, the second refused. */
static void pipelined_request_with_a_bad_chunk_is_400(void **state)
{
    (void)state;
    raw_call *r = raw("GET /v1/instruments HTTP/1.1\r\nHost: x\r\n\r\n" CHUNKED_HEAD
                      "0x5\r\nhello\r\n0\r\n\r\n",
                      0);
    assert_int_equal(count_responses(r), 2);
    assert_true(r->closed);
    if (strncmp(r->got, "HTTP/1.1 200", 12) || !strstr(r->got, "HTTP/1.1 400") ||
        !strstr(r->got, "invalid_chunk_size"))
        fail_msg("%s", r->got);
    raw_free(r);
}

/* evhttp reads no body for HEAD or TRACE, whatever the head says: the body
 * declared on one would be read as the next request, which a proxy in
 * front forwards as this one's body (request smuggling). Refused: one 400,
 * closed (the answer to HEAD has no body to name the error), and what
 * followed never served. On GET evhttp reads the body (it
 * is ignored), so the bytes after it are not a request of their own. */
static void a_body_on_head_or_trace_is_400(void **state)
{
    (void)state;
    static const char *const methods[] = {"HEAD", "TRACE", "GET"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        char req[512];
        snprintf(req, sizeof req,
                 "%s /v1/instruments HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\n"
                 "GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
                 methods[i]);
        raw_call *r = raw(req, 0);
        int get = !strcmp(methods[i], "GET"), head = !strcmp(methods[i], "HEAD");
        if (count_responses(r) != 1 || strstr(r->got, "smuggled") ||
            (!get && (!r->closed || strncmp(r->got, "HTTP/1.1 400", 12) ||
                      (!head && !strstr(r->got, "unexpected_body")))) ||
            (get && strncmp(r->got, "HTTP/1.1 200", 12)))
            fail_msg("%s -> %s", methods[i], r->got);
        raw_free(r);
    }
}

static void malformed_request_line_gets_a_json_400(void **state)
{
    (void)state;
    expect_raw_error(raw("GARBAGE\r\n\r\n", 0), 400, "malformed_request");
}

/* evhttp would answer a request line or header block over its limit (16
 * KiB here) with 400 itself; the gateway's scan sees it first: 414 for a
 * request line (RFC 9112 section 3), 431 for header fields (RFC 6585). */
static void overlong_uri_gets_a_json_error(void **state)
{
    (void)state;
    size_t n = 20000;
    char *req = malloc(n + 64);
    memcpy(req, "GET /", 5);
    memset(req + 5, 'a', n);
    strcpy(req + 5 + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_raw_error(raw(req, 0), 414, "uri_too_long");
    free(req);
}

static void header_flood_gets_a_json_error(void **state)
{
    (void)state;
    size_t cap = 40000, len = 0;
    char *req = malloc(cap);
    len += (size_t)snprintf(req, cap, "GET /v1/instruments HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; len + 64 < cap; i++)
        len += (size_t)snprintf(req + len, cap - len, "X-Flood-%d: %032d\r\n", i, i);
    strcpy(req + len, "\r\n");
    expect_raw_error(raw(req, 0), 431, "headers_too_large");
    free(req);
}

/* max_body is 1024: evhttp refuses bodies past 4 x max_body itself. */
static void body_past_evhttps_cap_gets_a_json_413(void **state)
{
    (void)state;
    expect_raw_error(raw("POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY_A
                         "\r\nContent-Length: 100000\r\n\r\n",
                         0),
                     413, "request_too_large");
}

/* evhttp refuses HTTP/2 itself but takes HTTP/0.x and would answer in it. */
static void other_http_major_version_is_505_in_http_1_1(void **state)
{
    (void)state;
    raw_call *r = raw("GET /v1/instruments HTTP/0.9\r\nHost: x\r\n\r\n", 0);
    if (strncmp(r->got, "HTTP/1.1 505", 12))
        fail_msg("%s", r->got);
    expect_raw_error(r, 505, "http_version_not_supported");
}

/* Found by fuzz_gateway_http: an overflowing version then a malformed
 * header made evhttp's own error page start "HTTP/-1.1", which the JSON
 * rewrite did not recognise. */
static void evhttp_error_with_a_mangled_version_is_json(void **state)
{
    (void)state;
    expect_raw_error(raw("GET / HTTP/1111111111111111111111111.1\r\nno colon here\r\n\r\n", 0), 400,
                     "malformed_request");
}

static void head_on_a_get_route_has_the_headers_and_no_body(void **state)
{
    (void)state;
    http_call *get = http("GET", "/v1/instruments", NULL, NULL);
    http_call *head = http("HEAD", "/v1/instruments", NULL, NULL);
    assert_int_equal(head->status, 200);
    assert_int_equal(head->resp_len, 0);
    char want[64];
    snprintf(want, sizeof want, "Content-Length: %zu", get->resp_len);
    assert_non_null(strstr(head->head, want));
    assert_non_null(strstr(head->head, "Content-Type: application/json"));
    call_free(get);
    call_free(head);
}

static void head_is_served_by_every_get_route(void **state)
{
    (void)state;
    static const char *const paths[] = {"/",           "/v1/openapi.json", "/v1/instruments",
                                        "/v1/trades",  "/v1/accounts",     "/v1/services",
                                        "/v1/stream",  "/v1/orders",       "/v1/book/XA/BTCUSD",
                                        "/v1/orders/1"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        http_call *c = http("HEAD", paths[i], KEY_A, NULL);
        if (c->status == 405)
            fail_msg("HEAD %s answered 405", paths[i]);
        assert_int_equal(c->resp_len, 0);
        call_free(c);
    }
}

/* ---- deadlines and limits ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (driving the host) until the server closes fd; returns what it sent
 * meanwhile in buf, or -1 if it did not close within max_ms. Between polls
 * it sends `drip` every 100 ms, as a slow client would. */
static int wait_closed(int fd, const char *drip, int64_t max_ms, char *buf, size_t cap)
{
    size_t len = 0;
    for (int64_t t = 0; t < max_ms; t += 20) {
        if (drip && t % 100 == 0)
            send(fd, drip, strlen(drip), MSG_NOSIGNAL);
        for (;;) {
            ssize_t r = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno == ECONNRESET)) {
                buf[len] = 0;
                return (int)len;
            }
            if (r < 0)
                break;
            len += (size_t)r;
        }
        testhost_run(host, 20 * MS);
    }
    buf[len] = 0;
    return -1;
}

/* A metric's value as the host's /metrics would show it, or -1. */
static long long metric_value(const char *series)
{
    struct evbuffer *b = evbuffer_new();
    arbh_metrics_render(testhost_host(host), b);
    size_t len = evbuffer_get_length(b);
    char *text = malloc(len + 1);
    evbuffer_remove(b, text, len);
    text[len] = 0;
    evbuffer_free(b);
    const char *at = strstr(text, series);
    long long v = at ? atoll(at + strlen(series)) : -1;
    free(text);
    return v;
}

static int connect_port(int p)
{
    int fd = connect_to(p);
    assert_true(fd >= 0);
    return fd;
}

/* A client that sends a header line every 100 ms, forever (slowloris), is
 * closed at request_timeout_ms (300 ms on gw_slow) with a 408, although
 * each line would keep idle_timeout_s from ever firing. */
static void trickled_head_is_closed_at_the_request_deadline(void **state)
{
    (void)state;
    int fd = connect_port(slow_port);
    const char *head = "GET /v1/instruments HTTP/1.1\r\nHost: x\r\n";
    send_all(fd, head, strlen(head));
    char buf[4096];
    int64_t t0 = mono_ms();
    assert_true(wait_closed(fd, "X-Drip: 1\r\n", 3000, buf, sizeof buf) >= 0);
    assert_true(mono_ms() - t0 < 2000);
    /* The 408 is written before the close; a line dripped after it may turn
     * the close into a reset that discards it, so it is checked only if it
     * arrived. */
    if (buf[0] && strncmp(buf, "HTTP/1.1 408", 12))
        fail_msg("not a 408: %s", buf);
    close(fd);
}

static void trickled_body_is_closed_at_the_request_deadline(void **state)
{
    (void)state;
    int fd = connect_port(slow_port);
    const char *head = "POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY_S
                       "\r\nContent-Length: 1000\r\n\r\n{";
    send_all(fd, head, strlen(head));
    char buf[4096];
    int64_t t0 = mono_ms();
    assert_true(wait_closed(fd, " ", 3000, buf, sizeof buf) >= 0);
    assert_true(mono_ms() - t0 < 2000);
    assert_true(!buf[0] || !strncmp(buf, "HTTP/1.1 408", 12));
    close(fd);
}

/* gw_tight takes 3 connections from one address: the 4th is answered 503
 * and closed; once one closes, a new one is served. */
static void connections_per_address_are_capped(void **state)
{
    (void)state;
    int held[3];
    for (int i = 0; i < 3; i++)
        held[i] = connect_port(tight_port);
    testhost_run(host, 50 * MS);
    int extra = connect_port(tight_port);
    char buf[4096];
    assert_true(wait_closed(extra, NULL, 3000, buf, sizeof buf) >= 0);
    assert_non_null(strstr(buf, "HTTP/1.1 503"));
    assert_non_null(strstr(buf, "\"too_many_connections\""));
    close(extra);
    close(held[0]);
    testhost_run(host, 50 * MS);
    http_call *c = calloc(1, sizeof *c);
    c->port = tight_port;
    c->method = "GET";
    c->path = "/v1/instruments";
    c->key = KEY_S;
    run_call(c);
    assert_int_equal(c->status, 200);
    call_free(c);
    close(held[1]);
    close(held[2]);
}

static http_call *tight(const char *path, const char *key)
{
    http_call *c = calloc(1, sizeof *c);
    c->port = tight_port;
    c->method = "GET";
    c->path = path;
    c->key = key;
    run_call(c);
    return c;
}

/* gw_tight: 3 requests at once, then 1 a second, per address, for
 * requests without a key or with a wrong one; a valid key is not held to
 * it. */
static void unauthenticated_requests_are_rate_limited_per_address(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        http_call *c = tight("/v1/accounts", NULL);
        assert_int_equal(c->status, 200);
        call_free(c);
    }
    http_call *c = tight("/v1/accounts", NULL);
    expect_error(c, 429, "rate_limited");
    assert_non_null(strstr(c->head, "Retry-After: "));
    call_free(c);
    expect_gone(tight("/v1/orders", "wrong-key-0123456789"), 429, "rate_limited");
    c = tight("/v1/orders", KEY_S);
    assert_int_equal(c->status, 200);
    call_free(c);
}

static void failed_authentication_is_rate_limited_per_address(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        expect_gone(tight("/v1/orders", "wrong-key-0123456789"), 401, "unauthorized");
    expect_gone(tight("/v1/orders", "wrong-key-0123456789"), 429, "rate_limited");
}

static int open_stream_on(int p, const char *key)
{
    int fd = connect_port(p);
    char req[256];
    int n =
        snprintf(req, sizeof req, "GET /v1/stream?topics=ticks HTTP/1.1\r\nHost: x\r\n%s%s%s\r\n",
                 key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
    send_all(fd, req, (size_t)n);
    return fd;
}

/* Waits for the first answer on fd: 1 if it is the stream, 0 if an error. */
static int stream_answer(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (int t = 0; t < 300; t++) {
        ssize_t r = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
        if (r > 0)
            len += (size_t)r;
        buf[len] = 0;
        if (strstr(buf, "text/event-stream"))
            return 1;
        if (strstr(buf, "\r\n\r\n{"))
            return 0;
        testhost_run(host, 10 * MS);
    }
    return -1;
}

/* gw_slow: 3 streams per address, 1 per key. */
static void stream_slots_are_limited_per_address(void **state)
{
    (void)state;
    int fds[4];
    char buf[4096];
    for (int i = 0; i < 3; i++) {
        fds[i] = open_stream_on(slow_port, NULL);
        assert_int_equal(stream_answer(fds[i], buf, sizeof buf), 1);
    }
    fds[3] = open_stream_on(slow_port, NULL);
    assert_int_equal(stream_answer(fds[3], buf, sizeof buf), 0);
    assert_non_null(strstr(buf, "HTTP/1.1 429"));
    assert_non_null(strstr(buf, "\"too_many_streams\""));
    for (int i = 0; i < 4; i++)
        close(fds[i]);
}

static void stream_slots_are_limited_per_key(void **state)
{
    (void)state;
    char buf[4096];
    int a = open_stream_on(slow_port, KEY_S);
    assert_int_equal(stream_answer(a, buf, sizeof buf), 1);
    int b = open_stream_on(slow_port, KEY_S);
    assert_int_equal(stream_answer(b, buf, sizeof buf), 0);
    assert_non_null(strstr(buf, "\"too_many_streams\""));
    close(a);
    close(b);
}

/* gw_slow cuts a stream whose queue has not emptied for 300 ms, however
 * much memory it may still use (its buffer limit is 64 MiB): a reader that
 * stops is gone within bounded time. */
static void stalled_stream_reader_is_cut_off_in_bounded_time(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)slow_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET /v1/stream?topics=trades HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(send_all(fd, req, strlen(req)), 0);
    testhost_run(host, 50 * MS);
    /* Trades keep coming; once the kernel's buffers are full the gateway
     * queues them, and 300 ms later cuts the reader off: well before its
     * 64 MiB buffer limit (5 s of this is about 10 MB). The client cannot
     * see the close (the FIN waits behind the bytes it does not read), so
     * the gateway's own count of cut-offs says it. */
    int64_t t0 = mono_ms();
    int eof = 0;
    while (!eof && mono_ms() - t0 < 5000) {
        for (int i = 0; i < 200; i++)
            publish_trade("XA", 10000, 1, 1, 2);
        testhost_run(host, 20 * MS);
        eof = metric_value("gateway_stream_cutoffs_total{instance=\"gw_slow\"}") == 1;
    }
    close(fd);
    assert_true(eof);
}

/* While gw_tight refuses connections over its cap and slow clients hold
 * others, the host's admin endpoint (on another loop, with descriptors the
 * gateway's cap leaves free) still answers. */
static void admin_answers_while_the_gateway_is_flooded(void **state)
{
    (void)state;
    int fds[40];
    for (int i = 0; i < 40; i++) {
        fds[i] = connect_port(i % 2 ? tight_port : slow_port);
        send_all(fds[i], "GET /v1/instruments HTTP/1.1\r\n", 31);
    }
    /* until gw_tight has refused one (polled: a loaded machine is slow) */
    for (int64_t t0 = mono_ms();
         metric_value("gateway_connections_refused_total{instance=\"gw_tight\"}") <= 0 &&
         mono_ms() - t0 < 5000;)
        testhost_run(host, 10 * MS);
    assert_true(metric_value("gateway_connections_refused_total{instance=\"gw_tight\"}") > 0);
    const char *addr = testhost_host(host)->admin_addr;
    const char *r = testhost_http(host, atoi(strrchr(addr, ':') + 1),
                                  "GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n", 5000 * MS);
    assert_non_null(r);
    assert_non_null(strstr(r, " 200 "));
    for (int i = 0; i < 40; i++)
        close(fds[i]);
}

/* ---- many slow readers at once ---- */

enum { FANOUT_READERS = 32, FANOUT_LIMIT = 65536 };

/* A host of its own: one gateway that serves FANOUT_READERS streams to one
 * address (and requests without a key as fast as they come) and queues at
 * most FANOUT_LIMIT bytes for each. */
static int setup_fanout(void **state)
{
    (void)state;
    port = test_free_port();
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[host]\nthreads = 2\n"
             "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.05\nqty_decimals = 3\n"
             "[plugin gateway]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n"
             "max_streams = %d\nmax_streams_per_addr = %d\nanon_rate_limit = 100000\n"
             "anon_rate_burst = 100000\nstream_buffer_limit = %d\n",
             port, FANOUT_READERS, FANOUT_READERS, FANOUT_LIMIT);
    host = testhost_new(ini);
    return host && testhost_start(host) == 0 ? 0 : -1;
}

typedef struct latency_probe {
    volatile int stop;
    int answered, failed;
    int64_t worst_ms;
} latency_probe;

/* GET /v1/instruments, one after another, until told to stop. */
static void *probe_thread(void *arg)
{
    latency_probe *p = arg;
    while (!p->stop) {
        http_call c = {.port = port, .method = "GET", .path = "/v1/instruments"};
        int64_t t0 = mono_ms();
        http_thread(&c);
        int64_t ms = mono_ms() - t0;
        if (c.status == 200)
            p->answered++;
        else
            p->failed++;
        if (ms > p->worst_ms)
            p->worst_ms = ms;
        free(c.resp);
    }
    return NULL;
}

/* Readers that connect and never read are all cut off while trades pour in,
 * the memory they cost the process stays within the limit per reader (a
 * queued event used to keep a chain of 1 KiB or more), and a request on the
 * side is answered throughout (each event queued used to walk the whole
 * queue: 256 readers held the loop for seconds). */
static void
many_slow_readers_are_cut_off_within_their_memory_and_requests_still_answered(void **state)
{
    (void)state;
    int fds[FANOUT_READERS];
    const char *req = "GET /v1/stream?topics=trades HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < FANOUT_READERS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        int small = 4096;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(send_all(fds[i], req, strlen(req)), 0);
    }
    const char *streams = "gateway_streams{instance=\"gateway\"} ";
    for (int64_t t0 = mono_ms(); metric_value(streams) < FANOUT_READERS && mono_ms() - t0 < 2000;)
        testhost_run(host, 5 * MS);
    assert_int_equal(metric_value(streams), FANOUT_READERS);

    latency_probe probe = {0};
    pthread_t th;
    pthread_create(&th, NULL, probe_thread, &probe);
    size_t base = mallinfo2().uordblks, peak = base;
    const char *cutoffs = "gateway_stream_cutoffs_total{instance=\"gateway\"} ";
    for (int64_t t0 = mono_ms(); metric_value(cutoffs) < FANOUT_READERS && mono_ms() - t0 < 5000;) {
        for (int i = 0; i < 100; i++)
            publish_trade("XA", 10000, 1, 1, 2);
        testhost_run(host, 2 * MS);
        size_t now = mallinfo2().uordblks;
        if (now > peak)
            peak = now;
    }
    probe.stop = 1;
    pthread_join(th, NULL);
    for (int i = 0; i < FANOUT_READERS; i++)
        close(fds[i]);
    assert_int_equal(metric_value(cutoffs), FANOUT_READERS);
    assert_true(probe.answered > 0);
    assert_int_equal(probe.failed, 0);
    if (probe.worst_ms > 250)
        fail_msg("a request waited %lld ms while the readers were cut off",
                 (long long)probe.worst_ms);
    /* The queues, one tail chain each, and 2 MiB for everything else. */
    size_t bound = FANOUT_READERS * (FANOUT_LIMIT + 8192) + (2 << 20);
    fprintf(stderr, "fanout: %d requests answered, worst %lld ms; readers cost %zu bytes\n",
            probe.answered, (long long)probe.worst_ms, peak - base);
    if (peak - base > bound)
        fail_msg("the readers cost %zu bytes; at most %zu expected", peak - base, bound);
}

/* With the process out of descriptors, the gateway's accept fails with
 * EMFILE: accepting pauses and retries with a back-off (one episode in the
 * metrics however many retries fail; one log line), and once descriptors
 * are free the waiting connection is served. */
static void accept_out_of_descriptors_pauses_then_serves(void **state)
{
    (void)state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int top = dup(0);
    assert_true(top >= 0);
    close(top);
    struct rlimit low = {(rlim_t)top + 64, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fillers[128], n = 0;
    while (n < 128 && (fillers[n] = dup(0)) >= 0)
        n++;
    /* One descriptor for the client; none left for the gateway's accept. */
    close(fillers[--n]);
    int fd = connect_to(port);
    assert_true(fd >= 0);
    const char *req = "GET /v1/instruments HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send_all(fd, req, strlen(req)), 0);
    testhost_run(host, 300 * MS); /* 10 + 20 + 40 + 80 + 160 ms of retries */
    assert_int_equal(metric_value("gateway_accept_pauses_total{instance=\"gateway\"}"), 1);
    for (int i = 0; i < n; i++)
        close(fillers[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    char buf[4096];
    assert_true(wait_closed(fd, NULL, 3000, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    close(fd);
}

/* ---- hot reload ---- */

static void reload_keeps_serving_and_never_reuses_an_order_id(void **state)
{
    (void)state;
    http_call *a = http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "1"));
    json_t *ja = body_json(a);
    uint64_t before = strtoull(jstr(ja, "order_id"), NULL, 10);
    char err[256];
    assert_int_equal(testhost_reload(host, "gateway", NULL, err, sizeof err), 0);
    testhost_run(host, 50 * MS);
    http_call *b = http("POST", "/v1/orders", KEY_A, order_body("buy", "100.00", "1"));
    assert_int_equal(b->status, 200);
    json_t *jb = body_json(b);
    assert_true(strtoull(jstr(jb, "order_id"), NULL, 10) > before);
    json_decref(ja);
    json_decref(jb);
    call_free(a);
    call_free(b);
}

/* An order sent to the matcher and not yet answered when its gateway stops
 * (a reload, a reconfiguration) may still execute: it is answered 504 with
 * its id, never a 503 that a client would retry into a second order. */
static void order_in_flight_when_the_gateway_stops_is_504_with_its_id(void **state)
{
    (void)state;
    static char body[256];
    snprintf(body, sizeof body, "%s", order_body("buy", "103.00", "1")); /* no answer */
    http_call a = {
        .port = port, .method = "POST", .path = "/v1/orders", .key = KEY_A, .body = body};
    pthread_t th;
    uint64_t before = commands_seen;
    pthread_create(&th, NULL, http_thread, &a);
    testhost_run_until(host, command_count_passed, &before, 5000 * MS);
    assert_true(commands_seen > before);
    char err[256];
    assert_int_equal(testhost_reload(host, "gateway", NULL, err, sizeof err), 0);
    call_set cs = {&a, 1};
    testhost_run_until(host, all_done, &cs, 5000 * MS);
    pthread_join(th, NULL);
    assert_int_equal(a.status, 504);
    json_t *j = body_json(&a);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "gateway_stopped");
    assert_non_null(json_string_value(json_object_get(e, "order_id")));
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "GET /v1/orders/"));
    json_decref(j);
    free(a.resp);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    /* As arb-host does: a client gone before its answer is an error on
     * the write, not a signal that ends the process. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        T(resting_order_is_answered_open),
        T(crossing_order_is_answered_with_all_its_fills),
        T(rejected_order_is_answered_with_the_reason),
        T(silent_matcher_gives_504_naming_the_order),
        T(orders_sent_at_once_are_each_answered_with_their_own_result),
        T(answer_waits_for_the_commands_last_event),
        T(order_in_flight_when_the_gateway_stops_is_504_with_its_id),
        T(async_order_is_accepted_at_once),
        T(order_ids_increase_and_are_strings),
        T(account_sees_its_order_but_not_anothers),
        T(cancel_answers_cancelled_then_not_open),
        T(cancel_refused_by_the_matcher_is_409),
        T(open_orders_list_only_the_callers_live_orders),
        T(missing_or_bad_key_is_401),
        T(validation_failure_is_400_with_its_code),
        T(body_over_the_limit_is_413),
        T(rate_limited_key_gets_429_with_retry_after),
        T(open_orders_per_account_are_capped),
        T(unknown_route_is_404_and_wrong_method_405),
        T(full_matcher_queue_is_503),
        T(idle_and_slow_connections_are_closed),
        T(book_comes_from_the_matchers_snapshot),
        T(trades_and_pnl_follow_trade_executed),
        T(instruments_list_the_config),
        T(served_openapi_is_the_repository_file),
        T(every_documented_operation_is_routed_by_the_server),
        T(stream_sends_state_then_live_trades_and_heartbeats),
        T(stream_carries_ticks_and_market_events),
        T(stream_rejects_unknown_topics),
        T(stream_count_is_bounded),
        T(slow_stream_reader_is_cut_off),
        T(keep_alive_connection_answers_each_request_in_turn),
        T(large_answers_on_keep_alive_arrive_once_and_whole),
        T(half_closed_client_still_gets_its_answer),
        T(reset_while_an_order_waits_does_not_spin),
        T(keep_alive_connection_can_become_a_stream),
        T(reload_keeps_serving_and_never_reuses_an_order_id),
        T(accounts_without_a_key_show_only_public_accounts),
        T(accounts_with_a_wrong_key_is_401),
        T(stream_pnl_board_shows_only_public_accounts),
        T(anothers_order_answers_as_an_unknown_one),
        T(replayed_order_of_ours_is_adopted_for_its_owner),
        T(repeated_client_order_id_returns_the_first_order_and_sends_nothing),
        T(retry_of_an_unanswered_order_waits_for_the_same_order),
        T(reused_client_order_id_with_other_terms_is_409),
        T(another_account_may_use_the_same_client_order_id),
        T(trickled_head_is_closed_at_the_request_deadline),
        T(trickled_body_is_closed_at_the_request_deadline),
        T(connections_per_address_are_capped),
        T(unauthenticated_requests_are_rate_limited_per_address),
        T(failed_authentication_is_rate_limited_per_address),
        T(stream_slots_are_limited_per_address),
        T(stream_slots_are_limited_per_key),
        T(stalled_stream_reader_is_cut_off_in_bounded_time),
        cmocka_unit_test_setup_teardown(
            many_slow_readers_are_cut_off_within_their_memory_and_requests_still_answered,
            setup_fanout, teardown),
        T(accept_out_of_descriptors_pauses_then_serves),
        T(admin_answers_while_the_gateway_is_flooded),
        T(differing_content_lengths_are_rejected_and_close),
        T(repeated_equal_content_length_is_rejected),
        T(whitespace_before_colon_is_rejected_and_closes),
        T(signed_content_length_is_rejected),
        T(non_digit_content_length_is_rejected),
        T(transfer_encoding_other_than_chunked_is_rejected),
        T(content_length_with_chunked_is_rejected),
        T(chunked_order_is_accepted),
        T(malformed_chunk_size_is_400),
        T(chunk_extension_is_ignored_and_the_order_served),
        T(chunk_over_the_limit_is_413_at_once),
        T(pipelined_request_with_a_bad_chunk_is_400),
        T(a_body_on_head_or_trace_is_400),
        T(malformed_request_line_gets_a_json_400),
        T(overlong_uri_gets_a_json_error),
        T(header_flood_gets_a_json_error),
        T(body_past_evhttps_cap_gets_a_json_413),
        T(other_http_major_version_is_505_in_http_1_1),
        T(evhttp_error_with_a_mangled_version_is_json),
        T(head_on_a_get_route_has_the_headers_and_no_body),
        T(head_is_served_by_every_get_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
