/*
 * split_orders.h -- orders through a split gateway's HTTP API, for the
 * restart tests (test_split_gateway_restart, test_split_matcher_restart):
 * limit orders on XA:BTCUSD at 90.00, buys from SPLIT_KEY's account and
 * sells from SPLIT_SELLER's (an order never trades with its own account's),
 * and an order read back as "code status filled_qty leaves_qty".
 */
#ifndef ARB_TESTS_SPLIT_ORDERS_H
#define ARB_TESTS_SPLIT_ORDERS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "splitrig.h"
#include "timing.h"

#define SPLIT_KEY "demo-key-change-me"
#define SPLIT_SELLER "seller-key-for-the-test"

/* A JSON string field's value ("name":"value") of body into out. */
static inline bool split_field(const char *body, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(body, pat);
    if (!p)
        return false;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return true;
}

/* POSTs an order; its status, the answer's order_id into id (if given). */
static inline int split_order(int port, const char *side, const char *tif, const char *qty,
                              char id[32], char *body, size_t cap)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"%s\",\"type\":\"limit\","
             "\"price\":\"90.00\",\"qty\":\"%s\",\"tif\":\"%s\"}",
             side, qty, tif);
    int st = rig_http(port, "POST", "/v1/orders", strcmp(side, "sell") ? SPLIT_KEY : SPLIT_SELLER,
                      json, body, cap);
    if (id && !split_field(body, "order_id", id, 32))
        id[0] = 0;
    return st;
}

/* Waits until the split system accepts an order: IOC probes on an empty
 * book, so one answered late (504) leaves nothing behind. A TIMING failure
 * after 90 s (`what` and the log directory in its line). Needs cmocka. */
static inline void split_wait_trading(int port, const char *what, const char *logs)
{
    char body[16384];
    int64_t deadline = rig_mono_ns() + 90 * RIG_SEC;
    while (split_order(port, "sell", "ioc", "0.001", NULL, body, sizeof body) != 200)
        if (rig_mono_ns() > deadline)
            timing_fail("%s: no order accepted in 90 s (logs in %s)\n", what, logs);
        else
            usleep(100000);
}

/* n resting buys of 0.002 (ids[2i]), each followed by an IOC sell of 0.001
 * (ids[2i + 1]) that trades with the oldest buy left: filled, partly filled
 * and open orders, and filled IOCs. Needs cmocka. */
static inline void split_place_pairs(int port, int n, char (*ids)[32])
{
    char body[16384];
    for (int i = 0; i < n; i++) {
        assert_int_equal(split_order(port, "buy", "gtc", "0.002", ids[2 * i], body, sizeof body),
                         200);
        assert_int_equal(
            split_order(port, "sell", "ioc", "0.001", ids[2 * i + 1], body, sizeof body), 200);
        if (!strstr(body, "\"status\":\"filled\""))
            fail_msg("the IOC sell did not fill: %s", body);
    }
}

/* An order as the gateway reads it back: "code status filled_qty
 * leaves_qty" into out; the answer's body into body (if given). Returns the
 * HTTP status. */
static inline int split_order_state(int port, const char *id, char *out, size_t cap, char *body,
                                    size_t bcap)
{
    char path[96], own[16384], st[32] = "?", f[32] = "?", l[32] = "?";
    if (!body) {
        body = own;
        bcap = sizeof own;
    }
    snprintf(path, sizeof path, "/v1/orders/%.40s", id);
    int code = rig_http(port, "GET", path, SPLIT_KEY, NULL, body, bcap);
    if (code == 404) /* a sell: its own key reads it */
        code = rig_http(port, "GET", path, SPLIT_SELLER, NULL, body, bcap);
    split_field(body, "status", st, sizeof st);
    split_field(body, "filled_qty", f, sizeof f);
    split_field(body, "leaves_qty", l, sizeof l);
    snprintf(out, cap, "%d %.24s %.24s %.24s", code, st, f, l);
    return code;
}

#endif
