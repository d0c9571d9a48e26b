/*
 * bench_gateway.c -- `make bench` entry for the gateway. First the cost of
 * parsing the benchmark's order body, whole (gw_order_parse: JSON, fields,
 * instrument rules) and jansson's part of it (json_loadb and json_decref of
 * the same bytes), in the same run so their ratio means something on a
 * noisy machine. Then it runs scripts/bench-gateway.sh (wrk against the
 * running monolith, an nginx baseline and the HTTP floor), which prints the
 * HTTP `bench:` lines.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../plugins/gateway/order_json.h"

/* The body tests/bench/bench_gateway.lua sends for a buy. */
static const char body[] = "{\"venue\":\"XA\",\"symbol\":\"BTCUSD\",\"side\":\"buy\",\"type\":"
                           "\"limit\",\"price\":\"100.00\",\"qty\":\"0.001\",\"tif\":\"gtc\"}";

enum { ROUNDS = 5, PER_ROUND = 200000 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_whole(const arb_instrument_table *t)
{
    gw_order_request rq;
    gw_error err;
    return gw_order_parse(body, sizeof body - 1, t, &rq, &err);
}

static int parse_jansson(void)
{
    json_error_t e;
    /* The flags gw_order_parse loads with. */
    json_t *j = json_loadb(body, sizeof body - 1, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        return -1;
    json_decref(j);
    return 0;
}

/* The fastest of ROUNDS rounds, in ns per parse (the least disturbed one),
 * or -1 if the body does not parse: timing the error path would measure
 * something else. */
static double best_ns(int (*whole)(const arb_instrument_table *), const arb_instrument_table *t)
{
    double best = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_s();
        for (int i = 0; i < PER_ROUND; i++)
            if (whole ? whole(t) : parse_jansson())
                return -1;
        double ns = (now_s() - t0) * 1e9 / PER_ROUND;
        if (r == 0 || ns < best)
            best = ns;
    }
    return best;
}

int main(void)
{
    /* XA:BTCUSD as conf.d/instruments.ini has it: 0.01 ticks, 0.001 lots,
     * 0.001 to 100. */
    arb_instrument xa = {.venue = "XA",
                         .symbol = "BTCUSD",
                         .price_decimals = 2,
                         .qty_decimals = 3,
                         .tick = 1,
                         .lot = 1,
                         .min_qty = 1,
                         .max_qty = 100000};
    arb_instrument_table table = {&xa, 1};
    double whole = best_ns(parse_whole, &table);
    double jansson = best_ns(NULL, NULL);
    if (whole > 0 && jansson > 0) {
        printf("bench: gateway_order_parse %.0f ns\n", whole);
        printf("bench: gateway_order_parse_jansson %.0f ns\n", jansson);
        printf("bench: gateway_order_parse_jansson_share %.2f ratio\n", jansson / whole);
        fflush(stdout);
    } else {
        /* The HTTP figures do not depend on it: they still run. */
        fprintf(stderr, "bench_gateway: the benchmark's order body no longer parses; "
                        "no parse figures\n");
    }

    const char *build = getenv("ARB_BUILD");
    execlp("bash", "bash", "scripts/bench-gateway.sh", build ? build : "build", (char *)NULL);
    perror("bench_gateway: cannot run scripts/bench-gateway.sh");
    return 1;
}
