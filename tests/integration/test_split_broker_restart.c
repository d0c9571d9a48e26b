/*
 * test_split_broker_restart.c -- the dev broker killed with SIGKILL under a
 * trading split system (a matcher host, a market host: clock, generator,
 * agents) and started again on the same ports, empty. Before that, partition
 * leaders move (arb_runs' among them): the hosts go on in their run.
 *
 * The new broker holds no history: by the run rules (host/run.c) that is a
 * new run. Before, every host went on in the old run against empty topics
 * (the gateway's orders timed out, /healthz said ok). Now each host finds
 * its start record gone from arb_runs, says so, and stops with status 75;
 * started again (as supervise.sh and the systemd unit do), the hosts agree
 * on a new run and trade again.
 *
 * The waits for a consumer group to settle and for the first trades are
 * TIMING waits; the exit status, the log's reason, the new run and trading
 * in it are plain assertions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "splitrig.h"
#include "timing.h"

static char dir[64];

static int kill_children(void **state)
{
    (void)state;
    rig_stop_all();
    return 0;
}

static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Three free consecutive ports: the dev broker's, on both of its lives. */
static int free_port_base(void)
{
    for (int i = 0; i < 50; i++) {
        int p = rig_free_port();
        if (p < 65000 && port_free(p + 1) && port_free(p + 2))
            return p;
    }
    rig_die("free ports", "no three consecutive free ports");
}

static pid_t start_host(const char *svc, int admin_port, int life)
{
    char conf[128], log[128], admin[64];
    snprintf(conf, sizeof conf, "conf.d/split/%s.ini", svc);
    snprintf(log, sizeof log, "%s/%s-%d.log", dir, svc, life);
    snprintf(admin, sizeof admin, "host.admin=127.0.0.1:%d", admin_port);
    const char *sets[] = {admin, "host.announce_ms=0", "clock.interval_ms=25",
                          "noise.population=20", NULL};
    if (strcmp(svc, "market"))
        sets[2] = NULL; /* the market's plugins only */
    return rig_host(conf, log, sets);
}

/* The run a host's log names ("run 0123456789abcdef, new (epoch 0)"), and
 * whether it was new; 0 when the log has no such line (yet). */
static int log_run(const char *svc, int life, char id[17], bool *is_new)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/%s-%d.log", dir, svc, life);
    FILE *f = fopen(path, "r");
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *p = strstr(line, "[host] run ");
        if (!p)
            continue;
        snprintf(id, 17, "%.16s", p + 11);
        *is_new = strstr(p, ", new (") != NULL;
        found = 1;
    }
    if (f)
        fclose(f);
    return found;
}

static bool log_has(const char *svc, int life, const char *what)
{
    char path[128], line[2048];
    snprintf(path, sizeof path, "%s/%s-%d.log", dir, svc, life);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return found;
}

static long long wait_metric(int port, const char *name, long long at_least, int64_t deadline)
{
    long long v;
    while ((v = rig_metric(port, name)) < at_least && rig_mono_ns() < deadline)
        usleep(50000);
    return v;
}

static void wait_ready(int port, const char *who)
{
    char body[8192];
    int64_t deadline = rig_mono_ns() + 90 * RIG_SEC;
    while (rig_http_get(port, "/readyz", body, sizeof body) != 200 && rig_mono_ns() < deadline)
        usleep(100000);
    if (!strstr(body, "\"state\":\"ready\""))
        timing_fail("broker restart: %s not ready: %s (logs in %s)\n", who, body, dir);
}

static void hosts_stop_with_status_75_and_begin_a_new_run_after_an_empty_broker(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/arb-brestart-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char base[16], fifo[128];
    snprintf(base, sizeof base, "%d", free_port_base());
    snprintf(fifo, sizeof fifo, "%s/control", dir);
    const char *const pin[] = {"--port-base", base, "--control-fifo", fifo, NULL};
    pid_t broker = rig_devbroker(dir, 4, pin);
    int control = -1;
    for (int i = 0; i < 100 && control < 0; i++)
        if ((control = open(fifo, O_WRONLY | O_NONBLOCK)) < 0)
            usleep(50000);
    assert_true(control >= 0);
    int mport = rig_free_port(), kport = rig_free_port();
    pid_t matcher = start_host("matcher", mport, 1);
    pid_t market = start_host("market", kport, 1);

    /* The first run trades. */
    wait_ready(mport, "matcher");
    wait_ready(kport, "market");
    if (wait_metric(kport, "agent_fills_total{instance=\"mm_xa\"}", 1,
                    rig_mono_ns() + 120 * RIG_SEC) < 1)
        timing_fail("broker restart: the first run never traded (logs in %s)\n", dir);
    char run1[17] = "";
    bool is_new = false;
    assert_true(log_run("matcher", 1, run1, &is_new));

    /* A leader move (what a real cluster does when a broker restarts) is
     * not a lost run: the hosts keep trading in it, and stay ready. */
    const char moves[] = "leader arb_runs 0 2\nleader order_commands 0 3\nleader trade_executed 0 "
                         "2\n";
    assert_int_equal(write(control, moves, sizeof moves - 1), (ssize_t)(sizeof moves - 1));
    close(control);
    long long fills = rig_metric(kport, "agent_fills_total{instance=\"mm_xa\"}");
    if (wait_metric(kport, "agent_fills_total{instance=\"mm_xa\"}", fills + 20,
                    rig_mono_ns() + 60 * RIG_SEC) < fills + 20)
        timing_fail("broker restart: no trading after the leader moves (logs in %s)\n", dir);
    assert_int_equal(rig_wait_exit(matcher, 0), -1);
    assert_int_equal(rig_wait_exit(market, 0), -1);
    wait_ready(mport, "matcher");
    wait_ready(kport, "market");

    /* The broker dies and comes back empty on the same ports. */
    int st = rig_stop(broker, SIGKILL);
    assert_true(WIFSIGNALED(st));
    broker = rig_devbroker(dir, 4, pin);

    /* Each host notices within seconds, says why and what comes next, and
     * stops with status 75 instead of trading on in a run that is gone. */
    int64_t deadline = rig_mono_ns() + 60 * RIG_SEC;
    int sm = rig_wait_exit(matcher, deadline), sk = rig_wait_exit(market, deadline);
    assert_true(sm != -1 && WIFEXITED(sm));
    assert_int_equal(WEXITSTATUS(sm), 75);
    assert_true(sk != -1 && WIFEXITED(sk));
    assert_int_equal(WEXITSTATUS(sk), 75);
    assert_true(log_has("matcher", 1, "the broker no longer holds it"));
    assert_true(log_has("market", 1, "a restart begins the new run"));

    /* Restarted (as the supervisor does), they agree on one new run and
     * trade in it. */
    matcher = start_host("matcher", mport, 2);
    market = start_host("market", kport, 2);
    wait_ready(mport, "matcher");
    wait_ready(kport, "market");
    char run2m[17] = "", run2k[17] = "";
    bool new_m = false, new_k = false;
    assert_true(log_run("matcher", 2, run2m, &new_m));
    assert_true(log_run("market", 2, run2k, &new_k));
    assert_string_equal(run2m, run2k);
    assert_string_not_equal(run2m, run1);
    assert_true(new_m || new_k);
    if (wait_metric(kport, "agent_fills_total{instance=\"mm_xa\"}", 1,
                    rig_mono_ns() + 120 * RIG_SEC) < 1)
        timing_fail("broker restart: the new run never traded (logs in %s)\n", dir);

    rig_stop_all();
    rig_clean_dir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            hosts_stop_with_status_75_and_begin_a_new_run_after_an_empty_broker, kill_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
