/*
 * test_split_gateway_restart.c -- the split gateway host killed with SIGKILL
 * and started again, on the dev broker, with the matcher host running.
 *
 * The gateway host ([bus] consume = all, conf.d/split/gateway.ini) takes
 * every partition without joining a consumer group, so its restart waits for
 * no rebalance: it must accept an order again within 3 s of being started
 * (with a group it waited for the killed member's session to time out, 5-6 s
 * on the dev broker). And it must lose nothing: every order placed before
 * the kill reads back as it stood (status, filled and open quantity), and an
 * order from before the kill that trades after the restart shows the trade.
 * The gateway is killed after a snapshot of its read models (asked for on
 * its admin endpoint, and seen stored) and one more pair of orders: its
 * restart reads the snapshot and replays only that pair's records.
 *
 * The wait for the matcher's consumer group to settle is a TIMING wait, and
 * so is the 3 s bound (a loaded machine can be slower to start a process),
 * checked after every assertion about the orders, which are plain ones: a
 * retry (scripts/run-tests.sh) never skips them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "split_orders.h"
#include "splitrig.h"
#include "timing.h"

#define KEY SPLIT_KEY
#define SELLER SPLIT_SELLER
#define NPAIRS 8
#define ADMIN_TOKEN "gateway-restart-test-token"

static char dir[64];
static int http_port, gw_admin;

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

static pid_t start_gateway(int life)
{
    char log[128], listen[64], admin[64];
    snprintf(log, sizeof log, "%s/gateway-%d.log", dir, life);
    snprintf(listen, sizeof listen, "gateway.listen=127.0.0.1:%d", http_port);
    snprintf(admin, sizeof admin, "host.admin=127.0.0.1:%d", gw_admin);
    const char *sets[] = {listen,
                          admin,
                          "host.announce_ms=0",
                          "host.admin_token=" ADMIN_TOKEN,
                          "gateway.api_key.seller=" SELLER ":1002",
                          NULL};
    return rig_host("conf.d/split/gateway.ini", log, sets);
}

/* Whether every record of the first `sells` pairs reached the gateway: a
 * pair's events come on two partitions (each account's) and its trade on a
 * third, so the answer to the sell does not say the buy's fill or the trade
 * arrived. The tape shows every trade, and the buys' fills add up. */
static bool settled(char ids[][32], int sells)
{
    char body[65536], f[32];
    if (rig_http(http_port, "GET", "/v1/trades?venue=XA&symbol=BTCUSD&limit=100", KEY, NULL, body,
                 sizeof body) != 200)
        return false;
    int trades = 0;
    for (const char *p = body; (p = strstr(p, "\"trade_id\"")); p++)
        trades++;
    double filled = 0;
    for (int i = 0; i < 2 * sells; i += 2) {
        char path[96];
        snprintf(path, sizeof path, "/v1/orders/%s", ids[i]);
        if (rig_http(http_port, "GET", path, KEY, NULL, body, sizeof body) != 200 ||
            !split_field(body, "filled_qty", f, sizeof f))
            return false;
        filled += strtod(f, NULL);
    }
    return trades == sells && filled > sells * 0.001 - 1e-9;
}

static void wait_settled(char ids[][32], int sells)
{
    int64_t deadline = rig_mono_ns() + 10 * RIG_SEC;
    while (!settled(ids, sells)) {
        if (rig_mono_ns() > deadline)
            fail_msg("the gateway did not get every record of %d pairs in 10 s (logs in %s)", sells,
                     dir);
        usleep(5000);
    }
}

/* A number field's value ("name":N) of body, or -1. */
static long long number(const char *body, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = strstr(body, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* GET (or POST: take one now) /plugins/gateway/snapshot on the admin
 * endpoint. */
static int snapshot_state(const char *method, char *body, size_t cap)
{
    return rig_http(gw_admin, method, "/plugins/gateway/snapshot", ADMIN_TOKEN, NULL, body, cap);
}

static void a_killed_gateway_is_back_within_3_s_and_reads_every_order_back(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-gwrestart-XXXXXX");
    assert_non_null(mkdtemp(dir));
    rig_devbroker(dir, 4, NULL);
    char mlog[128], madmin[64];
    snprintf(mlog, sizeof mlog, "%s/matcher.log", dir);
    snprintf(madmin, sizeof madmin, "host.admin=127.0.0.1:%d", rig_free_port());
    const char *msets[] = {madmin, "host.announce_ms=0", NULL};
    rig_host("conf.d/split/matcher.ini", mlog, msets);
    http_port = rig_free_port();
    gw_admin = rig_free_port();
    pid_t gw = start_gateway(1);

    /* Trading begins once the matcher's group has settled. The probes are
     * IOCs on an empty book, so one answered late (504) leaves nothing
     * behind; the commands go through one partition in order, so once one
     * is answered every earlier one was taken. */
    char body[16384], ids[2 * NPAIRS + 2][32];
    split_wait_trading(http_port, "gateway restart", dir);
    split_place_pairs(http_port, NPAIRS, ids);
    /* A snapshot of all that, stored before anything else happens. */
    wait_settled(ids, NPAIRS);
    assert_int_equal(snapshot_state("POST", body, sizeof body), 200);
    assert_true(number(body, "taken") >= 1);
    int64_t deadline = rig_mono_ns() + 10 * RIG_SEC;
    while (snapshot_state("GET", body, sizeof body) != 200 || !strstr(body, "\"stored\":true")) {
        if (rig_mono_ns() > deadline)
            fail_msg("the snapshot was not stored within 10 s: %s (logs in %s)", body, dir);
        usleep(20000);
    }
    long long covered = number(body, "snapshot_position");
    /* Then one more pair: the records a restart replays after the snapshot. */
    split_place_pairs(http_port, 1, ids + 2 * NPAIRS);
    wait_settled(ids, NPAIRS + 1);
    char before[2 * NPAIRS + 2][96];
    for (int i = 0; i < 2 * NPAIRS + 2; i++) {
        split_order_state(http_port, ids[i], before[i], sizeof before[i], NULL, 0);
        assert_int_equal(strncmp(before[i], "200 ", 4), 0);
    }

    /* Killed, and started again at once (as supervise.sh does). */
    int st = rig_stop(gw, SIGKILL);
    assert_true(WIFSIGNALED(st));
    int64_t t0 = rig_mono_ns();
    start_gateway(2);
    char id[32];
    while (split_order(http_port, "buy", "gtc", "0.001", id, body, sizeof body) != 200) {
        if (rig_mono_ns() - t0 > 60 * RIG_SEC)
            fail_msg("gateway restart: no order accepted in 60 s (logs in %s)", dir);
        usleep(20000);
    }
    double secs = (double)(rig_mono_ns() - t0) / 1e9;
    printf("gateway restart: first order accepted %.2f s after the start\n", secs);

    /* From the snapshot, and only the last pair's records after it: each
     * order's acceptance (the matcher accepts every order first), the sell's
     * fill and the buy's, and their trade. */
    assert_int_equal(snapshot_state("GET", body, sizeof body), 200);
    long long tail = number(body, "order_events") + number(body, "trades");
    printf("gateway restart: from a snapshot at %lld stored records, then %lld after it\n", covered,
           tail);
    if (!strstr(body, "\"from_snapshot\":true") || number(body, "order_events") != 4 ||
        number(body, "trades") != 1)
        fail_msg("the restart did not read the snapshot and 5 records after it: %s (logs in %s)",
                 body, dir);
    assert_true(covered > tail);

    /* Nothing lost: every order reads back as it stood. */
    for (int i = 0; i < 2 * NPAIRS + 2; i++) {
        char now[96];
        split_order_state(http_port, ids[i], now, sizeof now, NULL, 0);
        if (strcmp(now, before[i]))
            fail_msg("order %s was \"%s\" before the kill and is \"%s\" after (logs in %s)", ids[i],
                     before[i], now, dir);
    }
    /* An order from before the kill that trades after the restart: the
     * oldest buy with quantity left takes this sell. */
    int oldest = -1;
    for (int i = 0; i < 2 * NPAIRS + 2 && oldest < 0; i += 2)
        if (strstr(before[i], " open ") || strstr(before[i], " partially_filled "))
            oldest = i;
    assert_true(oldest >= 0);
    assert_int_equal(split_order(http_port, "sell", "ioc", "0.001", NULL, body, sizeof body), 200);
    assert_non_null(strstr(body, "\"status\":\"filled\""));
    char now[96];
    split_order_state(http_port, ids[oldest], now, sizeof now, NULL, 0);
    if (!strcmp(now, before[oldest]))
        fail_msg("order %s did not take the trade after the restart: \"%s\" (logs in %s)",
                 ids[oldest], now, dir);
    /* The gateway joined no group: its log has no rebalance. */
    char path[128], line[2048];
    snprintf(path, sizeof path, "%s/gateway-2.log", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        assert_null(strstr(line, "rebalance"));
    fclose(f);
    /* The bound last: every assertion about the orders has run by now, so
     * a retry of this TIMING failure (scripts/run-tests.sh) hides none. */
    if (secs > 3.0)
        timing_fail("gateway restart: first order accepted after %.2f s (bound 3 s; logs in %s)\n",
                    secs, dir);
    rig_stop_all();
    rig_clean_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_killed_gateway_is_back_within_3_s_and_reads_every_order_back,
                                  kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
