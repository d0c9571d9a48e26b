/*
 * test_gateway_registry.c -- GET /v1/services and `arbctl services` against
 * the gateway in the real host (testhost).
 *
 * The host announces itself on service_registry as every arb-host does; the
 * test's own context plays a second host on another machine by publishing
 * announcements and tombstones for "remote-1". The gateway runs on its own
 * loop thread, so it answers HTTP while the test waits for arbctl.
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
#include <time.h>
#include <unistd.h>

#include "arb/wire.h"
#include "testhost.h"
#include "free_port.h"

#define MS 1000000LL

static testhost *host;
static int port;

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What the second host would publish: a matcher_b instance and, with an
 * account, an agent instance "remote_agent" trading on it. */
static void announce_remote_as(int status, int64_t started_at, uint64_t agent_account)
{
    uint8_t buf[ARB_SERVICE_LEN(2)];
    arb_service s;
    memset(&s, 0, sizeof s);
    s.status = (uint8_t)status;
    s.n_plugins = agent_account ? 2 : 1;
    s.pid = 777;
    arb_fixstr_set(s.host_id, ARB_SVC_ID_LEN, "remote-1");
    arb_fixstr_set(s.admin, ARB_SVC_ADDR_LEN, "10.1.2.3:9100");
    s.started_at = started_at;
    s.ts = wall_ns();
    uint32_t len = arb_service_encode(&s, buf, sizeof buf);
    arb_service_plugin p;
    memset(&p, 0, sizeof p);
    arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, "matcher_b");
    arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, "matcher");
    arb_fixstr_set(p.version, ARB_SVC_VER_LEN, "1.0.0");
    arb_service_put_plugin(buf, 0, &p);
    if (agent_account) {
        arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, "remote_agent");
        arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, "agent_mm");
        p.account = agent_account;
        arb_service_put_plugin(buf, 1, &p);
    }
    assert_int_equal(arb_publish(testhost_ctx(host), ARB_TOPIC_SERVICE_REGISTRY, 99, buf, len),
                     ARB_OK);
}

static void announce_remote(int status, int64_t started_at)
{
    announce_remote_as(status, started_at, 0);
}

/* GET /v1/services, parsed. */
static json_t *services(void)
{
    char req[128];
    snprintf(req, sizeof req, "GET /v1/services HTTP/1.0\r\nHost: x\r\n\r\n");
    const char *r = testhost_http(host, port, req, 5000 * MS);
    assert_non_null(r);
    if (strncmp(r, "HTTP/1.1 200", 12) && strncmp(r, "HTTP/1.0 200", 12))
        fail_msg("expected 200: %s", r);
    const char *body = strstr(r, "\r\n\r\n");
    assert_non_null(body);
    json_error_t e;
    json_t *j = json_loads(body + 4, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", body + 4);
    return j;
}

static json_t *find(json_t *j, const char *host_id)
{
    size_t i;
    json_t *svc;
    json_array_foreach(json_object_get(j, "services"), i, svc)
    {
        if (!strcmp(json_string_value(json_object_get(svc, "host_id")), host_id))
            return svc;
    }
    return NULL;
}

/* The liveness the gateway reports for host_id, after running the host
 * until it is `want` or 5 s pass ("" if the host is not listed). */
static char got[16];
static const char *liveness_becomes(const char *host_id, const char *want)
{
    for (int i = 0; i < 500; i++) {
        json_t *j = services();
        json_t *svc = find(j, host_id);
        snprintf(got, sizeof got, "%s",
                 svc ? json_string_value(json_object_get(svc, "liveness")) : "");
        json_decref(j);
        if (!strcmp(got, want))
            break;
        testhost_run(host, 10 * MS);
    }
    return got;
}

static int setup(void **state)
{
    (void)state;
    port = test_free_port();
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[host]\nid = gw-host\nthreads = 2\nannounce_ms = 50\n"
             "include = conf.d/instruments.ini\n"
             "[plugin gateway]\nload = gateway.so\nthread = 1\nlisten = 127.0.0.1:%d\n"
             "service_alive_ms = 400\nservice_dead_ms = 800\n",
             port);
    host = testhost_new(ini);
    if (!host || testhost_start(host))
        return -1;
    testhost_run(host, 20 * MS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testhost_free(host);
    host = NULL;
    return 0;
}

static void own_host_is_listed_alive_with_its_plugins(void **state)
{
    (void)state;
    assert_string_equal(liveness_becomes("gw-host", "alive"), "alive");
    json_t *j = services();
    json_t *svc = find(j, "gw-host");
    assert_int_equal(json_integer_value(json_object_get(svc, "pid")), getpid());
    /* ISO-8601 beside each ns time: 2026-12-07T14:30:55.562000000Z */
    const char *iso[] = {"started_time", "announced_time", "last_seen_time"};
    for (int i = 0; i < 3; i++) {
        const char *t = json_string_value(json_object_get(svc, iso[i]));
        assert_non_null(t);
        assert_int_equal(strlen(t), 30);
        assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[29] == 'Z');
    }
    json_t *p = json_array_get(json_object_get(svc, "plugins"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "instance")), "gateway");
    assert_string_equal(json_string_value(json_object_get(p, "version")), "1.0.0");
    assert_int_equal(json_integer_value(json_object_get(j, "alive_within_ms")), 400);
    json_decref(j);
}

static void second_announcer_shows_up_alive(void **state)
{
    (void)state;
    announce_remote(ARB_SVC_ALIVE, wall_ns());
    assert_string_equal(liveness_becomes("remote-1", "alive"), "alive");
    json_t *j = services();
    json_t *svc = find(j, "remote-1");
    assert_string_equal(json_string_value(json_object_get(svc, "admin")), "10.1.2.3:9100");
    assert_int_equal(json_integer_value(json_object_get(svc, "pid")), 777);
    json_t *p = json_array_get(json_object_get(svc, "plugins"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "instance")), "matcher_b");
    assert_string_equal(json_string_value(json_object_get(p, "plugin")), "matcher");
    json_decref(j);
}

static void tombstone_marks_the_service_gone(void **state)
{
    (void)state;
    int64_t started = wall_ns();
    announce_remote(ARB_SVC_ALIVE, started);
    assert_string_equal(liveness_becomes("remote-1", "alive"), "alive");
    announce_remote(ARB_SVC_TOMBSTONE, started);
    assert_string_equal(liveness_becomes("remote-1", "gone"), "gone");
}

static void silent_service_turns_stale_then_dead(void **state)
{
    (void)state;
    announce_remote(ARB_SVC_ALIVE, wall_ns());
    assert_string_equal(liveness_becomes("remote-1", "stale"), "stale");
    assert_string_equal(liveness_becomes("remote-1", "dead"), "dead");
}

/* Runs build/arbctl with args against the gateway; returns its output. */
static char *arbctl(const char *args, int *status)
{
    const char *b = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/arbctl services --url http://127.0.0.1:%d %s", b, port, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    static char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    *status = pclose(f);
    return out;
}

static void arbctl_services_prints_one_line_per_host(void **state)
{
    (void)state;
    announce_remote(ARB_SVC_ALIVE, wall_ns());
    assert_string_equal(liveness_becomes("remote-1", "alive"), "alive");
    int status;
    const char *out = arbctl("", &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "HOST"));
    const char *line = strstr(out, "\nremote-1 ");
    if (!line)
        fail_msg("no line for remote-1 in:\n%s", out);
    char row[256];
    snprintf(row, sizeof row, "%.*s", (int)strcspn(line + 1, "\n"), line + 1);
    assert_non_null(strstr(row, " alive "));
    assert_non_null(strstr(row, "10.1.2.3:9100"));
    assert_non_null(strstr(row, "matcher_b=matcher 1.0.0"));
    assert_non_null(strstr(out, "\ngw-host "));
}

static void arbctl_services_json_is_the_api_answer(void **state)
{
    (void)state;
    assert_string_equal(liveness_becomes("gw-host", "alive"), "alive");
    int status;
    const char *out = arbctl("--json", &status);
    assert_int_equal(status, 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", out);
    assert_non_null(find(j, "gw-host"));
    json_decref(j);
}

static void arbctl_services_finds_the_gateway_in_the_config(void **state)
{
    (void)state;
    assert_string_equal(liveness_becomes("gw-host", "alive"), "alive");
    char path[] = "/tmp/arb-test-registry-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char ini[256];
    int n = snprintf(ini, sizeof ini,
                     "[host]\nadmin = 127.0.0.1:1\n[plugin front]\nload = gateway.so\n"
                     "listen = 127.0.0.1:%d\n",
                     port);
    assert_int_equal(write(fd, ini, (size_t)n), n);
    close(fd);
    const char *b = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "env -u ARB_HTTP %s/arbctl -c %s services", b, path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    static char out[8192];
    size_t got_n = fread(out, 1, sizeof out - 1, f);
    out[got_n] = 0;
    int status = pclose(f);
    unlink(path);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "\ngw-host "));
}

static void arbctl_services_without_a_gateway_fails_with_2(void **state)
{
    (void)state;
    const char *b = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/arbctl services --url 127.0.0.1:%d 2>/dev/null", b,
             test_free_port());
    int status = system(cmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
}

/* An agent in another host (the split system) is named on the board by its
 * instance name, from the host's announcement, with no gateway config. */
static void a_remote_agent_is_named_on_the_board(void **state)
{
    (void)state;
    announce_remote_as(ARB_SVC_ALIVE, wall_ns(), 4242);
    assert_string_equal(liveness_becomes("remote-1", "alive"), "alive");
    arb_trade t;
    memset(&t, 0, sizeof t);
    arb_fixstr_set(t.venue, ARB_VENUE_LEN, "XA");
    arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, "BTCUSD");
    t.trade_id = 1, t.price = 9000, t.qty = 5, t.buy_account = 4242, t.sell_account = 77;
    t.buy_order_id = 1, t.sell_order_id = 2, t.ts = wall_ns(), t.seq = 1;
    t.aggressor = ARB_SIDE_BUY;
    uint8_t buf[ARB_TRADE_LEN];
    uint32_t len = arb_trade_encode(&t, buf, sizeof buf);
    assert_int_equal(arb_publish(testhost_ctx(host), ARB_TOPIC_TRADE_EXECUTED, 1, buf, len),
                     ARB_OK);
    const char *body = NULL;
    for (int i = 0; i < 300; i++) {
        testhost_run(host, 10 * MS);
        const char *r =
            testhost_http(host, port, "GET /v1/accounts HTTP/1.0\r\nHost: x\r\n\r\n", 5000 * MS);
        body = r ? strstr(r, "\r\n\r\n") : NULL;
        if (body && strstr(body, "\"4242\""))
            break;
    }
    if (!body || !strstr(body, "\"remote_agent\""))
        fail_msg("account 4242 is not named remote_agent: %s", body ? body : "(no answer)");
    /* The other side of the trade is nobody's agent: not public. */
    assert_null(strstr(body, "\"77\""));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(own_host_is_listed_alive_with_its_plugins),
        T(second_announcer_shows_up_alive),
        T(tombstone_marks_the_service_gone),
        T(silent_service_turns_stale_then_dead),
        T(arbctl_services_prints_one_line_per_host),
        T(arbctl_services_json_is_the_api_answer),
        T(arbctl_services_finds_the_gateway_in_the_config),
        T(arbctl_services_without_a_gateway_fails_with_2),
        T(a_remote_agent_is_named_on_the_board),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
