/*
 * test_split_agents.c -- the market host of the split system (clock,
 * generator, agents: conf.d/split/market.ini) killed with SIGKILL while its
 * agents trade through a matcher host over the dev broker, and started again.
 *
 * The agents drop a tick whose number they have already seen (a redelivery).
 * A restarted clock used to count from 1 again, so the restarted agents,
 * having first taken the old clock's last ticks from Kafka, ignored every new
 * tick until the count passed the old one: no decision for as long as the
 * old clock had run (minutes in a fault probe), while the market moved. The
 * clock now goes on from the newest stored tick. Here the first clock runs
 * 1,000 ticks (25 s at 25 ms), and the agents must trade again within a few
 * seconds of their host consuming again.
 *
 * The waits for a consumer group to settle are TIMING waits; the bound on
 * trading again is the behaviour under test and is a plain assertion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "splitrig.h"
#include "timing.h"

#define FIRST_TICKS 1000
#define TRADE_AGAIN_NS (8 * RIG_SEC)

static char dir[64];

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

static pid_t start_market(int admin_port, int n)
{
    char log[128], admin[64];
    snprintf(log, sizeof log, "%s/market-%d.log", dir, n);
    snprintf(admin, sizeof admin, "host.admin=127.0.0.1:%d", admin_port);
    const char *const sets[] = {"host.id=agents-market",
                                admin,
                                "bus.group=arb-agents-market",
                                "clock.interval_ms=25",
                                "noise.population=100",
                                "host.announce_ms=0",
                                NULL};
    return rig_host("conf.d/split/market.ini", log, sets);
}

/* Polls until metric >= at_least or the deadline; the value last read. */
static long long wait_metric(int port, const char *name, long long at_least, int64_t deadline)
{
    long long v;
    while ((v = rig_metric(port, name)) < at_least && rig_mono_ns() < deadline)
        usleep(50000);
    return v;
}

static void agents_trade_again_soon_after_their_host_is_killed(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-agents-XXXXXX");
    assert_non_null(mkdtemp(dir));
    pid_t broker = rig_devbroker(dir, 4, NULL);
    char mlog[128];
    snprintf(mlog, sizeof mlog, "%s/matcher.log", dir);
    const char *const msets[] = {"host.id=agents-matcher", "host.admin=127.0.0.1:0",
                                 "host.announce_ms=0", NULL};
    rig_host("conf.d/split/matcher.ini", mlog, msets);
    int port = rig_free_port();
    pid_t market = start_market(port, 1);

    /* The first market trades for 1,000 ticks. */
    int64_t deadline = rig_mono_ns() + 120 * RIG_SEC;
    if (wait_metric(port, "agent_fills_total{instance=\"mm_xa\"}", 1, deadline) < 1)
        timing_fail("agents: the first market host never traded (logs in %s)", dir);
    if (wait_metric(port, "clock_ticks_total{instance=\"clock\"}", FIRST_TICKS, deadline) <
        FIRST_TICKS)
        timing_fail("agents: the first clock did not reach %d ticks", FIRST_TICKS);

    int st = rig_stop(market, SIGKILL);
    assert_true(WIFSIGNALED(st));
    market = start_market(port, 2);

    /* Not ready while the old member's session runs out: the admin
     * endpoint's first answer says "starting", and why. */
    char body[8192];
    int status = 0;
    deadline = rig_mono_ns() + 60 * RIG_SEC;
    while (!(status = rig_http_get(port, "/readyz", body, sizeof body)) && rig_mono_ns() < deadline)
        usleep(20000);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "\"state\":\"starting\""));
    assert_non_null(strstr(body, "partitions not assigned"));

    /* Consuming again: the group gave the new member its partitions. */
    deadline = rig_mono_ns() + 90 * RIG_SEC;
    if (wait_metric(port, "arb_kafka_assigned_partitions", 1, deadline) < 1)
        timing_fail("agents: the restarted market host got no partitions (logs in %s)", dir);
    long long mm0 = rig_metric(port, "agent_fills_total{instance=\"mm_xa\"}");
    long long noise0 = rig_metric(port, "agent_orders_total{instance=\"noise\"}");
    assert_true(mm0 >= 0 && noise0 >= 0);

    /* Deciding again within seconds: the noise traders send new orders and
     * the market maker's new quotes are filled. */
    int64_t t0 = rig_mono_ns();
    long long noise = wait_metric(port, "agent_orders_total{instance=\"noise\"}", noise0 + 50,
                                  t0 + TRADE_AGAIN_NS);
    long long mm =
        wait_metric(port, "agent_fills_total{instance=\"mm_xa\"}", mm0 + 1, t0 + TRADE_AGAIN_NS);
    fprintf(stderr,
            "agents: after the restart, noise orders %lld -> %lld, mm_xa fills %lld -> %lld in "
            "%.1f s\n",
            noise0, noise, mm0, mm, (double)(rig_mono_ns() - t0) / 1e9);
    assert_true(noise >= noise0 + 50);
    assert_true(mm >= mm0 + 1);

    /* Ready once consuming (the first fetches settle). */
    deadline = rig_mono_ns() + 30 * RIG_SEC;
    while ((status = rig_http_get(port, "/readyz", body, sizeof body)) != 200 &&
           rig_mono_ns() < deadline)
        usleep(100000);
    if (status != 200)
        timing_fail("agents: the restarted market host not ready: %s", body);
    assert_non_null(strstr(body, "\"state\":\"ready\""));

    /* The broker gone: not ready, saying why, within seconds. */
    rig_stop(broker, SIGKILL);
    int64_t t1 = rig_mono_ns();
    while (!((status = rig_http_get(port, "/readyz", body, sizeof body)) == 503 &&
             strstr(body, "broker unreachable")) &&
           rig_mono_ns() < t1 + 15 * RIG_SEC)
        usleep(100000);
    fprintf(stderr, "agents: broker killed, /readyz %d after %.1f s\n", status,
            (double)(rig_mono_ns() - t1) / 1e9);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "broker unreachable"));
    assert_non_null(strstr(body, "\"state\":\"degraded\""));

    rig_stop_all();
    rig_clean_dir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(agents_trade_again_soon_after_their_host_is_killed,
                                  kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
