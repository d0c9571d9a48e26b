/*
 * test_split_matcher_restart.c -- the split matcher host killed with SIGKILL
 * and started again, on the dev broker, with the gateway host running.
 *
 * Alone, the matcher host (conf.d/split/matcher.ini, [bus] consume = all)
 * owns every partition without joining a consumer group, so its restart
 * waits for no rebalance: an order must be accepted again within 5 s of the
 * kill (in a group it waited for the killed member's session to time out
 * and for the dev broker's election, 6-13 s). And the books it restores
 * from its snapshots and the input after them must be exact:
 *  - every order placed before the kill reads back as it stood;
 *  - every order answered 504 while the matcher was down has a fate that
 *    GET /v1/orders/{id} gives once the matcher is back (it rests);
 *  - one IOC sell larger than everything resting at the price fills
 *    exactly the resting quantity: no resting order lost, none doubled.
 *
 * The wait for the first order to be accepted is a TIMING wait, and so is
 * the 5 s bound, checked after every assertion about the orders, which are
 * plain ones: a retry (scripts/run-tests.sh) never skips them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "split_orders.h"
#include "splitrig.h"
#include "timing.h"

#define NPAIRS 8
#define MAX_ORDERS 256

static char dir[64];
static int http_port;

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

static pid_t start_matcher(int life)
{
    char log[128], admin[64];
    snprintf(log, sizeof log, "%s/matcher-%d.log", dir, life);
    snprintf(admin, sizeof admin, "host.admin=127.0.0.1:%d", rig_free_port());
    const char *sets[] = {admin, "host.announce_ms=0", NULL};
    return rig_host("conf.d/split/matcher.ini", log, sets);
}

/* A quantity field in thousandths (the orders here are multiples of 0.001). */
static long milli(const char *body, const char *name)
{
    char v[32];
    if (!split_field(body, name, v, sizeof v))
        fail_msg("no %s in %s", name, body);
    return lround(strtod(v, NULL) * 1000);
}

static void a_killed_matcher_is_back_within_5_s_with_its_books_exact(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-mrestart-XXXXXX");
    assert_non_null(mkdtemp(dir));
    rig_devbroker(dir, 4, NULL);
    pid_t matcher = start_matcher(1);
    http_port = rig_free_port();
    char glog[128], listen[64], gadmin[64];
    snprintf(glog, sizeof glog, "%s/gateway.log", dir);
    snprintf(listen, sizeof listen, "gateway.listen=127.0.0.1:%d", http_port);
    snprintf(gadmin, sizeof gadmin, "host.admin=127.0.0.1:%d", rig_free_port());
    /* A short answer timeout: orders sent while the matcher is down are
     * answered 504 (and must still execute). */
    const char *gsets[] = {listen,
                           gadmin,
                           "host.announce_ms=0",
                           "gateway.timeout_ms=300",
                           "gateway.api_key.seller=" SPLIT_SELLER ":1002",
                           NULL};
    rig_host("conf.d/split/gateway.ini", glog, gsets);

    /* Trading begins once both hosts have their partitions. The probes are
     * IOCs on an empty book, so one answered late (504) leaves nothing. */
    char body[16384];
    static char ids[MAX_ORDERS][32], before[2 * NPAIRS][96];
    split_wait_trading(http_port, "matcher restart", dir);
    split_place_pairs(http_port, NPAIRS, ids);
    long resting = 0; /* thousandths resting at 90.00 */
    for (int i = 0; i < 2 * NPAIRS; i++) {
        assert_int_equal(
            split_order_state(http_port, ids[i], before[i], sizeof before[i], body, sizeof body),
            200);
        if (i % 2 == 0)
            resting += milli(body, "leaves_qty");
    }
    assert_int_equal(resting, NPAIRS * 1);

    /* Killed, and started again at once (as supervise.sh does, less its
     * back-off). Buys of 0.001 go in every 20 ms until one is accepted;
     * those answered 504 meanwhile are kept to check their fate. */
    int st = rig_stop(matcher, SIGKILL);
    assert_true(WIFSIGNALED(st));
    int64_t t0 = rig_mono_ns();
    start_matcher(2);
    int n = 2 * NPAIRS, late = 0, code;
    for (;;) {
        assert_true(n < MAX_ORDERS);
        code = split_order(http_port, "buy", "gtc", "0.001", ids[n], body, sizeof body);
        if (code != 200 && code != 504)
            fail_msg("a buy while the matcher restarts answered %d: %s", code, body);
        if (code == 504) {
            if (!ids[n][0])
                fail_msg("a 504 answer without the order id: %s", body);
            if (!strstr(body, "may still be processed"))
                fail_msg("a 504 answer that does not say the order may still be processed: %s",
                         body);
            late++;
        }
        n++;
        resting++;
        if (code == 200)
            break;
        if (rig_mono_ns() - t0 > 60 * RIG_SEC)
            fail_msg("matcher restart: no order accepted in 60 s (logs in %s)", dir);
        usleep(20000);
    }
    double secs = (double)(rig_mono_ns() - t0) / 1e9;
    printf("matcher restart: first order accepted %.2f s after the kill (%d answered 504)\n", secs,
           late);

    /* Nothing lost: every order reads back as it stood. */
    for (int i = 0; i < 2 * NPAIRS; i++) {
        char now[96];
        split_order_state(http_port, ids[i], now, sizeof now, body, sizeof body);
        if (strcmp(now, before[i]))
            fail_msg("order %s was \"%s\" before the kill and is \"%s\" after (logs in %s)", ids[i],
                     before[i], now, dir);
    }
    /* Each order answered 504 rests now: the matcher took it from
     * order_commands once back, and GET gives its fate. */
    for (int i = 2 * NPAIRS; i < n; i++) {
        char now[96];
        int64_t until = rig_mono_ns() + 10 * RIG_SEC;
        while (split_order_state(http_port, ids[i], now, sizeof now, body, sizeof body) != 200 ||
               strcmp(now, "200 open 0.000 0.001"))
            if (rig_mono_ns() > until)
                fail_msg("order %s, sent while the matcher restarted, reads \"%s\" (logs in %s)",
                         ids[i], now, dir);
            else
                usleep(20000);
    }
    /* The restored book holds each resting order once: an IOC sell of more
     * than rests at 90.00 fills exactly what rests. */
    char qty[32];
    snprintf(qty, sizeof qty, "%ld.%03ld", (resting + 5) / 1000, (resting + 5) % 1000);
    assert_int_equal(split_order(http_port, "sell", "ioc", qty, NULL, body, sizeof body), 200);
    if (milli(body, "filled_qty") != resting)
        fail_msg("an IOC sell of %s at 90.00 filled %ld thousandths; %ld rest there: %s", qty,
                 milli(body, "filled_qty"), resting, body);
    /* The matcher joined no group: its log has no rebalance. */
    char path[128], line[2048];
    snprintf(path, sizeof path, "%s/matcher-2.log", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        assert_null(strstr(line, "rebalance"));
    fclose(f);
    /* The bound last: every assertion about the orders has run by now, so
     * a retry of this TIMING failure (scripts/run-tests.sh) hides none. */
    if (secs > 5.0)
        timing_fail("matcher restart: first order accepted %.2f s after the kill (bound 5 s; logs "
                    "in %s)\n",
                    secs, dir);
    rig_stop_all();
    rig_clean_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_killed_matcher_is_back_within_5_s_with_its_books_exact,
                                  kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
