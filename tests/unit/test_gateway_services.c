/*
 * test_gateway_services.c -- the service registry read model
 * (plugins/gateway/services.c) and its JSON view, fed decoded
 * service_registry records directly: no host, no HTTP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <string.h>

#include "../../plugins/gateway/services.h"
#include "../../plugins/gateway/views.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)

/* One encoded record, decoded again as the gateway gets it from the bus. */
typedef struct record {
    uint8_t buf[ARB_SERVICE_LEN(2)];
    arb_service svc;
} record;

static const arb_service *make(record *r, const char *host, int status, int64_t started_at,
                               int64_t ts, unsigned n_plugins)
{
    arb_service s;
    memset(&s, 0, sizeof s);
    s.status = (uint8_t)status;
    s.n_plugins = (uint16_t)n_plugins;
    s.pid = 4242;
    arb_fixstr_set(s.host_id, ARB_SVC_ID_LEN, host);
    arb_fixstr_set(s.admin, ARB_SVC_ADDR_LEN, "10.0.0.7:9100");
    s.started_at = started_at;
    s.ts = ts;
    uint32_t len = arb_service_encode(&s, r->buf, sizeof r->buf);
    assert_true(len > 0);
    const char *names[2][3] = {{"matcher", "matcher", "1.2.0"}, {"mm_xa", "agent_mm", "0.9"}};
    for (unsigned i = 0; i < n_plugins; i++) {
        arb_service_plugin p;
        memset(&p, 0, sizeof p);
        arb_fixstr_set(p.instance, ARB_SVC_NAME_LEN, names[i][0]);
        arb_fixstr_set(p.plugin, ARB_SVC_NAME_LEN, names[i][1]);
        arb_fixstr_set(p.version, ARB_SVC_VER_LEN, names[i][2]);
        arb_service_put_plugin(r->buf, i, &p);
    }
    assert_int_equal(arb_service_decode(r->buf, len, &r->svc), ARB_OK);
    return &r->svc;
}

static int liveness(const gw_services *s, const char *host, int64_t now)
{
    const gw_service *svc = gw_services_find(s, host);
    assert_non_null(svc);
    return gw_service_liveness(svc, now, 6 * SEC, 20 * SEC);
}

static void announcement_is_kept_with_its_plugins(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    assert_int_equal(gw_services_apply(&s, make(&r, "matcher-1", ARB_SVC_ALIVE, T0, T0, 2), T0),
                     GW_SVC_TAKEN);
    const gw_service *svc = gw_services_find(&s, "matcher-1");
    assert_non_null(svc);
    assert_string_equal(svc->admin, "10.0.0.7:9100");
    assert_int_equal(svc->pid, 4242);
    assert_int_equal(svc->n_plugins, 2);
    assert_string_equal(svc->plugins[1].instance, "mm_xa");
    assert_string_equal(svc->plugins[1].plugin, "agent_mm");
    assert_string_equal(svc->plugins[1].version, "0.9");
    assert_int_equal(svc->records, 1);
    gw_services_free(&s);
}

static void liveness_follows_silence_alive_stale_dead(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    gw_services_apply(&s, make(&r, "h", ARB_SVC_ALIVE, T0, T0, 0), T0);
    assert_int_equal(liveness(&s, "h", T0 + 5 * SEC), GW_LIVE_ALIVE);
    assert_int_equal(liveness(&s, "h", T0 + 6 * SEC), GW_LIVE_STALE);
    assert_int_equal(liveness(&s, "h", T0 + 19 * SEC), GW_LIVE_STALE);
    assert_int_equal(liveness(&s, "h", T0 + 20 * SEC), GW_LIVE_DEAD);
    /* A later announcement brings it back. */
    gw_services_apply(&s, make(&r, "h", ARB_SVC_ALIVE, T0, T0 + 30 * SEC, 0), T0 + 30 * SEC);
    assert_int_equal(liveness(&s, "h", T0 + 31 * SEC), GW_LIVE_ALIVE);
    assert_int_equal(gw_services_find(&s, "h")->records, 2);
    gw_services_free(&s);
}

static void tombstone_marks_the_service_gone(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    gw_services_apply(&s, make(&r, "h", ARB_SVC_ALIVE, T0, T0, 1), T0);
    gw_services_apply(&s, make(&r, "h", ARB_SVC_TOMBSTONE, T0, T0 + SEC, 1), T0 + SEC);
    assert_int_equal(liveness(&s, "h", T0 + SEC), GW_LIVE_GONE);
    assert_string_equal(gw_liveness_name(GW_LIVE_GONE), "gone");
    gw_services_free(&s);
}

static void restarted_host_is_alive_again_after_its_tombstone(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    gw_services_apply(&s, make(&r, "h", ARB_SVC_TOMBSTONE, T0, T0 + SEC, 0), T0 + SEC);
    gw_services_apply(&s, make(&r, "h", ARB_SVC_ALIVE, T0 + 2 * SEC, T0 + 2 * SEC, 0),
                      T0 + 2 * SEC);
    assert_int_equal(liveness(&s, "h", T0 + 2 * SEC), GW_LIVE_ALIVE);
    assert_int_equal(gw_services_find(&s, "h")->started_at, T0 + 2 * SEC);
    gw_services_free(&s);
}

static void record_of_an_earlier_run_changes_nothing(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    gw_services_apply(&s, make(&r, "h", ARB_SVC_ALIVE, T0 + 5 * SEC, T0 + 5 * SEC, 0),
                      T0 + 5 * SEC);
    assert_int_equal(
        gw_services_apply(&s, make(&r, "h", ARB_SVC_TOMBSTONE, T0, T0 + 6 * SEC, 0), T0 + 6 * SEC),
        GW_SVC_OUTDATED);
    assert_int_equal(gw_services_apply(&s,
                                       make(&r, "h", ARB_SVC_ALIVE, T0 + 5 * SEC, T0 + 4 * SEC, 0),
                                       T0 + 6 * SEC),
                     GW_SVC_OUTDATED);
    assert_int_equal(liveness(&s, "h", T0 + 6 * SEC), GW_LIVE_ALIVE);
    assert_int_equal(gw_services_find(&s, "h")->records, 1);
    gw_services_free(&s);
}

static void replayed_old_announcement_counts_at_its_own_time(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    int64_t now = T0 + 3600 * SEC;
    gw_services_apply(&s, make(&r, "old", ARB_SVC_ALIVE, T0, T0, 0), now);
    assert_int_equal(liveness(&s, "old", now), GW_LIVE_DEAD);
    /* A sender whose clock is a little behind still counts on arrival. */
    gw_services_apply(&s, make(&r, "skewed", ARB_SVC_ALIVE, now - 8 * SEC, now - 8 * SEC, 0), now);
    assert_int_equal(liveness(&s, "skewed", now), GW_LIVE_ALIVE);
    gw_services_free(&s);
}

static void full_registry_forgets_the_longest_silent_host(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 2, 20 * SEC);
    record r;
    gw_services_apply(&s, make(&r, "b", ARB_SVC_ALIVE, T0, T0, 0), T0);
    gw_services_apply(&s, make(&r, "a", ARB_SVC_ALIVE, T0, T0 + SEC, 0), T0 + SEC);
    gw_services_apply(&s, make(&r, "c", ARB_SVC_ALIVE, T0, T0 + 2 * SEC, 0), T0 + 2 * SEC);
    assert_int_equal(s.count, 2);
    assert_null(gw_services_find(&s, "b"));
    assert_string_equal(s.items[0].host_id, "a");
    assert_string_equal(s.items[1].host_id, "c");
    gw_services_free(&s);
}

static void view_lists_hosts_sorted_with_liveness_and_plugins(void **state)
{
    (void)state;
    gw_services s;
    gw_services_init(&s, 16, 20 * SEC);
    record r;
    gw_services_apply(&s, make(&r, "zeta", ARB_SVC_TOMBSTONE, T0, T0, 0), T0);
    gw_services_apply(&s, make(&r, "alpha", ARB_SVC_ALIVE, T0, T0, 2), T0);
    struct evbuffer *b = evbuffer_new();
    gw_render_services(b, &s, T0 + 1500 * MS, 6 * SEC, 20 * SEC);
    size_t n = evbuffer_get_length(b);
    json_error_t e;
    json_t *j = json_loadb((const char *)evbuffer_pullup(b, (ev_ssize_t)n), n, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", e.text);
    assert_int_equal(json_integer_value(json_object_get(j, "alive_within_ms")), 6000);
    assert_int_equal(json_integer_value(json_object_get(j, "dead_after_ms")), 20000);
    json_t *list = json_object_get(j, "services");
    assert_int_equal(json_array_size(list), 2);
    json_t *a = json_array_get(list, 0), *z = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(a, "host_id")), "alpha");
    assert_string_equal(json_string_value(json_object_get(a, "liveness")), "alive");
    assert_string_equal(json_string_value(json_object_get(a, "admin")), "10.0.0.7:9100");
    assert_int_equal(json_integer_value(json_object_get(a, "started_at")), T0);
    assert_int_equal(json_integer_value(json_object_get(a, "silent_ms")), 1500);
    json_t *p = json_array_get(json_object_get(a, "plugins"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "plugin")), "matcher");
    assert_string_equal(json_string_value(json_object_get(p, "version")), "1.2.0");
    assert_string_equal(json_string_value(json_object_get(z, "liveness")), "gone");
    assert_int_equal(json_array_size(json_object_get(z, "plugins")), 0);
    json_decref(j);
    evbuffer_free(b);
    gw_services_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(announcement_is_kept_with_its_plugins),
        cmocka_unit_test(liveness_follows_silence_alive_stale_dead),
        cmocka_unit_test(tombstone_marks_the_service_gone),
        cmocka_unit_test(restarted_host_is_alive_again_after_its_tombstone),
        cmocka_unit_test(record_of_an_earlier_run_changes_nothing),
        cmocka_unit_test(replayed_old_announcement_counts_at_its_own_time),
        cmocka_unit_test(full_registry_forgets_the_longest_silent_host),
        cmocka_unit_test(view_lists_hosts_sorted_with_liveness_and_plugins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
