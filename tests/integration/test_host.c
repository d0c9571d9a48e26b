/*
 * test_host.c -- the host with real plugins (tests/plugins/tp_*.so): loader,
 * bus, hot reload, SIGHUP reconfiguration and the admin endpoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arb/wire.h>

#include "host.h"
#include "testhost.h"

#define MS 1000000LL

/* ---- helpers ---- */

typedef struct seq_sink {
    uint64_t next;   /* next expected number */
    uint64_t errors; /* gaps, duplicates, reordering */
    uint64_t count;
} seq_sink;

static void on_seq(void *user, const arb_msg *m)
{
    seq_sink *s = user;
    uint64_t n;
    assert_int_equal(m->len, sizeof n);
    memcpy(&n, m->data, sizeof n);
    if (n != s->next)
        s->errors++;
    s->next = n + 1;
    s->count++;
}

typedef struct until_count {
    seq_sink *sink;
    uint64_t want;
} until_count;

static int reached(void *user)
{
    until_count *u = user;
    return u->sink->count >= u->want;
}

/* Calls an instance's admin route directly (white-box) and returns its body. */
static char *host_route_body(arbh_host *h, const char *instance, const char *path)
{
    for (size_t i = 0; i < h->nroutes; i++) {
        arbh_route *r = h->routes[i];
        if (r->active && !strcmp(r->instance, instance) && !strcmp(r->path, path)) {
            struct evbuffer *b = evbuffer_new();
            int status = r->fn(r->user, "GET", path, NULL, b);
            assert_int_equal(status, 200);
            size_t n = evbuffer_get_length(b);
            char *s = calloc(1, n + 1);
            evbuffer_remove(b, s, n);
            evbuffer_free(b);
            return s;
        }
    }
    fail_msg("no route %s/%s", instance, path);
    return NULL;
}

static char *route_body(testhost *t, const char *instance, const char *path)
{
    return host_route_body(testhost_host(t), instance, path);
}

static uint64_t json_u64(const char *body, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    assert_non_null(p);
    return strtoull(p + strlen(pat), NULL, 10);
}

static void expect_new_fails(const char *ini, const char *needle1, const char *needle2)
{
    testhost *t = testhost_new(ini);
    if (t)
        testhost_free(t);
    assert_null(t);
    const char *err = testhost_last_error();
    if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
        fail_msg("error '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
}

/* ---- loader ---- */

static void good_plugin_loads_and_plan_lists_topics(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin a]\nload = tp_seq.so\nrole = producer\n"
                               "[plugin b]\nload = tp_seq.so\nrole = consumer\n");
    assert_non_null(t);
    char *plan = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&plan, &len);
    arbh_host_print_plan(testhost_host(t), f);
    fclose(f);
    assert_non_null(strstr(plan, "instance a: plugin tp_seq 1.0.0"));
    assert_non_null(strstr(plan, "instance b: plugin tp_seq 1.0.0"));
    assert_non_null(strstr(plan, "publishes  test.seq"));
    free(plan);
    testhost_free(t);
}

static void missing_so_names_file_and_line(void **state)
{
    (void)state;
    expect_new_fails("[plugin a]\nrole = idle\nload = nothere.so\n", "<test config>:3",
                     "not found");
}

static void missing_entry_symbol_is_refused(void **state)
{
    (void)state;
    expect_new_fails("[plugin a]\nload = tp_noentry.so\n", "<test config>:2",
                     "missing entry symbol arb_plugin_entry");
}

static void abi_mismatch_is_refused(void **state)
{
    (void)state;
    expect_new_fails("[plugin a]\nload = tp_badabi.so\n", "ABI mismatch", "ABI 42");
}

static void plugin_rejecting_its_config_names_the_key_line(void **state)
{
    (void)state;
    expect_new_fails("[plugin a]\nload = tp_seq.so\n\npositive = -3\n", "<test config>:4",
                     "positive: must be greater than zero");
}

static void bad_typed_value_names_the_key_line(void **state)
{
    (void)state;
    expect_new_fails("[plugin a]\nload = tp_seq.so\nburst = lots\n", "<test config>:3",
                     "expected an integer");
}

static void unknown_key_in_plugin_section_is_an_error(void **state)
{
    (void)state;
    expect_new_fails("[plugin a]\nload = tp_seq.so\nrole = idle\nbrust = 5\n", "<test config>:4",
                     "unknown key 'brust'");
}

/* A plugin that walks its section (the gateway takes api_key.NAME keys by
 * pattern) does not make every key in it known. */
static void unknown_key_in_a_walked_section_is_an_error(void **state)
{
    (void)state;
    expect_new_fails("[plugin gw]\nload = gateway.so\nlisten = 127.0.0.1:1\n"
                     "api_key.a = key-a-0123456789abcdef:1\npublic_read = false\n",
                     "<test config>:5", "unknown key 'public_read'");
}

static void unknown_host_key_and_section_are_errors(void **state)
{
    (void)state;
    expect_new_fails("[host]\nid = x\nadmn = 1\n", "<test config>:3", "unknown key 'admn'");
    expect_new_fails("[hots]\nid = x\n", "<test config>:2", "unknown section [hots]");
}

static void start_failure_is_reported_and_nothing_runs(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin a]\nload = tp_seq.so\nrole = producer\n"
                               "[plugin b]\nload = tp_seq.so\nfail_start = true\n");
    assert_non_null(t);
    assert_int_not_equal(testhost_start(t), ARB_OK);
    assert_non_null(strstr(testhost_last_error(), "[plugin b] start failed"));
    arbh_host *h = testhost_host(t);
    assert_int_equal(arbh_host_find(h, "a")->state, INST_STOPPED);
    testhost_free(t);
}

static void one_so_runs_as_several_instances(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin c1]\nload = tp_seq.so\nrole = consumer\nout_topic = o1\n"
                               "[plugin c2]\nload = tp_seq.so\nrole = consumer\nout_topic = o2\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink s1 = {0}, s2 = {0};
    arb_subscribe(ctx, arb_topic(ctx, "o1"), on_seq, &s1);
    arb_subscribe(ctx, arb_topic(ctx, "o2"), on_seq, &s2);
    int topic = arb_topic(ctx, "test.seq");
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(arb_publish(ctx, topic, i, &i, sizeof i), ARB_OK);
    assert_int_equal(s1.count, 1000);
    assert_int_equal(s2.count, 1000);
    assert_int_equal(s1.errors + s2.errors, 0);
    testhost_free(t);
}

/* ---- bus ---- */

static void fan_out_reaches_every_subscriber_in_order(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nid = bus\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "fan");
    seq_sink s[4] = {{0}};
    for (int i = 0; i < 4; i++)
        assert_true(arb_subscribe(ctx, topic, on_seq, &s[i]) > 0);
    for (uint64_t i = 0; i < 100000; i++)
        assert_int_equal(arb_publish(ctx, topic, 0, &i, sizeof i), ARB_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s[i].count, 100000);
        assert_int_equal(s[i].errors, 0);
    }
    testhost_free(t);
}

static void unsubscribed_callback_gets_nothing_more(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nid = bus\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "u");
    seq_sink s = {0};
    int sub = arb_subscribe(ctx, topic, on_seq, &s);
    uint64_t v = 0;
    arb_publish(ctx, topic, 0, &v, sizeof v);
    assert_int_equal(arb_unsubscribe(ctx, sub), ARB_OK);
    v = 1;
    arb_publish(ctx, topic, 0, &v, sizeof v);
    assert_int_equal(s.count, 1);
    assert_int_equal(arb_unsubscribe(ctx, sub), ARB_ENOENT);
    testhost_free(t);
}

typedef struct relay {
    arb_ctx *ctx;
    int topic;
    int depth, max_depth;
    uint64_t seen, limit;
} relay;

static void on_relay(void *user, const arb_msg *m)
{
    relay *r = user;
    uint64_t n;
    memcpy(&n, m->data, sizeof n);
    if (++r->depth > r->max_depth)
        r->max_depth = r->depth;
    assert_int_equal(n, r->seen);
    r->seen++;
    if (n < r->limit) {
        n++;
        assert_int_equal(arb_publish(r->ctx, r->topic, 0, &n, sizeof n), ARB_OK);
    }
    r->depth--;
}

static void publish_inside_a_callback_is_queued_not_recursive(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nid = bus\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    relay r = {ctx, arb_topic(ctx, "chain"), 0, 0, 0, 200000};
    arb_subscribe(ctx, r.topic, on_relay, &r);
    uint64_t zero = 0;
    assert_int_equal(arb_publish(ctx, r.topic, 0, &zero, sizeof zero), ARB_OK);
    /* 200001 deliveries, each publishing the next, never nested. */
    assert_int_equal(r.seen, 200001);
    assert_int_equal(r.max_depth, 1);
    testhost_free(t);
}

/* arb_batch: what the publishes inside fn reach, and when. */
typedef struct batch_run {
    arb_ctx *ctx;
    int topic;
    uint64_t n;
    const seq_sink *near;
    uint64_t near_seen_inside;
} batch_run;

static void publish_in_batch(void *user)
{
    batch_run *b = user;
    for (uint64_t i = 0; i < b->n; i++)
        assert_int_equal(arb_publish(b->ctx, b->topic, 0, &i, sizeof i), ARB_OK);
    b->near_seen_inside = b->near->count;
}

static uint64_t wakes_sent(arbh_host *h, int loop)
{
    return atomic_load(&h->loops[loop]->wakes.value);
}

static int loop1_idle(void *user)
{
    arbh_host *h = user;
    return atomic_load(&h->loops[1]->waiting) == 1;
}

static void a_batch_wakes_another_loop_once_and_delivers_here_after_it(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin far]\nload = tp_seq.so\nrole = consumer\nthread = 1\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arbh_host *h = testhost_host(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink near = {0}, far = {0};
    int topic = arb_topic(ctx, "test.seq");
    arb_subscribe(ctx, topic, on_seq, &near);
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &far);
    /* Outside any callback: each publish wakes the idle far loop. */
    for (uint64_t i = 0; i < 3; i++) {
        uint64_t w = wakes_sent(h, 0);
        assert_int_equal(arb_publish(ctx, topic, 0, &i, sizeof i), ARB_OK);
        assert_int_equal(wakes_sent(h, 0) - w, 1);
        until_count u = {&far, i + 1};
        assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
        assert_true(testhost_run_until(t, loop1_idle, h, 5000 * MS));
    }
    /* In a batch: 1,000 records, one wake, none delivered here before the
     * batch ends, all of them in order after it. */
    near = (seq_sink){0};
    far = (seq_sink){0};
    batch_run b = {ctx, topic, 1000, &near, UINT64_MAX};
    assert_true(testhost_run_until(t, loop1_idle, h, 5000 * MS));
    uint64_t w = wakes_sent(h, 0);
    assert_int_equal(arb_batch(ctx, publish_in_batch, &b), ARB_OK);
    assert_int_equal(b.near_seen_inside, 0);
    assert_int_equal(near.count, 1000);
    assert_int_equal(near.errors, 0);
    assert_int_equal(wakes_sent(h, 0) - w, 1);
    until_count u = {&far, 1000};
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    testhost_free(t);
}

typedef struct flood {
    arb_ctx *ctx;
    int topic;
    uint64_t accepted, refused;
    int flooded;
} flood;

static void on_flood_trigger(void *user, const arb_msg *m)
{
    (void)m;
    flood *f = user;
    if (f->flooded++)
        return;
    /* Inside a callback every publish queues; the 64 KiB queue fills up. */
    for (uint64_t i = 0; i < 100000; i++) {
        int rc = arb_publish(f->ctx, f->topic, 0, &f->accepted, sizeof f->accepted);
        if (rc == ARB_OK)
            f->accepted++;
        else {
            assert_int_equal(rc, ARB_EFULL);
            f->refused++;
        }
    }
}

static void full_queue_refuses_whole_publishes_and_loses_nothing_accepted(void **state)
{
    (void)state;
    testhost *t = testhost_new("[bus]\nqueue_bytes = 64K\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    flood f = {ctx, arb_topic(ctx, "flood"), 0, 0, 0};
    seq_sink s = {0};
    int trigger = arb_topic(ctx, "trigger");
    arb_subscribe(ctx, trigger, on_flood_trigger, &f);
    arb_subscribe(ctx, f.topic, on_seq, &s);
    uint64_t one = 1;
    assert_int_equal(arb_publish(ctx, trigger, 0, &one, sizeof one), ARB_OK);
    assert_true(f.accepted > 1000);
    assert_true(f.refused > 0);
    assert_int_equal(f.accepted + f.refused, 100000);
    /* Every accepted record was delivered, in order, once. */
    assert_int_equal(s.count, f.accepted);
    assert_int_equal(s.errors, 0);
    arbh_host *h = testhost_host(t);
    assert_int_equal(atomic_load(&h->topics[f.topic]->stats[0].rejected.value), f.refused);
    testhost_free(t);
}

static void paused_subscriber_holds_records_and_publishers_see_full(void **state)
{
    (void)state;
    testhost *t = testhost_new("[bus]\nqueue_bytes = 64K\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "held");
    seq_sink s = {0};
    arb_subscribe(ctx, topic, on_seq, &s);
    assert_int_equal(arb_pause(ctx, 1), ARB_OK);
    uint64_t accepted = 0;
    int rc;
    while ((rc = arb_publish(ctx, topic, 0, &accepted, sizeof accepted)) == ARB_OK)
        accepted++;
    /* Nothing was delivered while paused; the queue filled and then refused. */
    assert_int_equal(rc, ARB_EFULL);
    assert_true(accepted > 100);
    testhost_run(t, 20 * MS);
    assert_int_equal(s.count, 0);
    /* Resumed: every accepted record arrives once, in order. */
    assert_int_equal(arb_pause(ctx, 0), ARB_OK);
    testhost_run(t, 20 * MS);
    assert_int_equal(s.count, accepted);
    assert_int_equal(s.errors, 0);
    assert_int_equal(arb_publish(ctx, topic, 0, &accepted, sizeof accepted), ARB_OK);
    assert_int_equal(s.count, accepted + 1);
    testhost_free(t);
}

static void cross_thread_delivery_keeps_order(void **state)
{
    (void)state;
    /* Producer on loop 1, consumer on loop 2, the test on loop 0. */
    testhost *t = testhost_new("[plugin p]\nload = tp_seq.so\nrole = producer\nburst = 100\n"
                               "interval_us = 200\nthread = 1\n"
                               "[plugin c]\nload = tp_seq.so\nrole = consumer\nthread = 2\n");
    assert_non_null(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink s = {0};
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &s); /* before the first record */
    assert_int_equal(testhost_start(t), ARB_OK);
    until_count u = {&s, 200000};
    assert_true(testhost_run_until(t, reached, &u, 20000 * MS));
    assert_int_equal(s.errors, 0);
    testhost_free(t);
}

static void oversized_record_is_refused(void **state)
{
    (void)state;
    testhost *t = testhost_new("[bus]\nqueue_bytes = 64K\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    static char big[32768];
    seq_sink s = {0};
    int topic = arb_topic(ctx, "big");
    arb_subscribe(ctx, topic, on_seq, &s);
    assert_int_equal(arb_publish(ctx, topic, 0, big, sizeof big), ARB_EINVAL);
    assert_int_equal(arb_publish(ctx, 63, 0, big, 8), ARB_EINVAL);
    testhost_free(t);
}

/* ---- records from an external transport ---- */

static void count_done(void *token) { (*(int *)token)++; }

typedef struct inject_inside {
    arbh_host *h;
    int done;
    int done_seen_inside;
} inject_inside;

static void on_trigger_inject(void *user, const arb_msg *m)
{
    (void)m;
    inject_inside *x = user;
    uint64_t v = 0;
    assert_int_equal(
        arbh_bus_inject(x->h, "test.seq", -1, -1, 0, &v, sizeof v, count_done, &x->done), ARB_OK);
    /* Still inside a callback: the record is queued, not handled. */
    x->done_seen_inside = x->done;
}

static int all_done(void *user) { return *(int *)user >= 1000; }
static int one_done(void *user) { return *(int *)user >= 1; }

static void injected_records_are_done_only_once_handled_everywhere(void **state)
{
    (void)state;
    testhost *t = testhost_new("[plugin far]\nload = tp_seq.so\nrole = consumer\nthread = 1\n"
                               "[plugin near]\nload = tp_seq.so\nrole = consumer\n"
                               "out_topic = near.out\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arbh_host *h = testhost_host(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink far = {0};
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &far);
    int done = 0;
    for (uint64_t i = 0; i < 1000; i++)
        assert_int_equal(arbh_bus_inject(h, "test.seq", -1, -1, i, &i, sizeof i, count_done, &done),
                         ARB_OK);
    assert_true(testhost_run_until(t, all_done, &done, 5000 * MS));
    assert_int_equal(h->ninflight, 0);
    until_count u = {&far, 1000};
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    assert_int_equal(far.errors, 0);
    /* Injected from inside a callback: not done until that callback returns. */
    inject_inside x = {h, 0, -1};
    int trig = arb_topic(ctx, "trigger");
    arb_subscribe(ctx, trig, on_trigger_inject, &x);
    uint64_t one = 1;
    arb_publish(ctx, trig, 0, &one, sizeof one);
    assert_int_equal(x.done_seen_inside, 0);
    assert_true(testhost_run_until(t, one_done, &x.done, 5000 * MS));
    assert_int_equal(x.done, 1);
    testhost_free(t);
}

/* ---- shutdown ---- */

static void a_host_stopped_at_once_still_stops(void **state)
{
    (void)state;
    /* Stop can come before a worker thread has entered its loop. */
    for (int i = 0; i < 50; i++) {
        testhost *t = testhost_new("[host]\nthreads = 3\nannounce_ms = 0\n"
                                   "[plugin a]\nload = tp_seq.so\nthread = 2\n");
        assert_non_null(t);
        assert_int_equal(testhost_start(t), ARB_OK);
        testhost_free(t);
    }
}

/* ---- reload ---- */

static const char *reload_ini = "[plugin p]\nload = tp_seq.so\nrole = producer\nburst = 200\n"
                                "interval_us = 100\nthread = 1\n"
                                "[plugin c]\nload = tp_seq.so\nrole = consumer\n";

static void reload_keeps_state_and_runs_new_code(void **state)
{
    (void)state;
    testhost *t = testhost_new(reload_ini);
    assert_non_null(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink s = {0};
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &s); /* before the first record */
    assert_int_equal(testhost_start(t), ARB_OK);
    until_count u = {&s, 2000};
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    char err[1024];
    assert_int_equal(testhost_reload(t, "c", testhost_plugin_path("tp_seq_v2"), err, sizeof err),
                     ARB_OK);
    char *body = route_body(t, "c", "state");
    assert_non_null(strstr(body, "\"variant\":\"2.0.0\""));
    assert_true(json_u64(body, "next") >= 2000); /* the count survived */
    free(body);
    u.want = s.count + 2000;
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    assert_int_equal(s.errors, 0);
    assert_int_equal(arbh_host_find(testhost_host(t), "c")->reloads, 1);
    testhost_free(t);
}

static void refused_state_leaves_the_old_instance_serving(void **state)
{
    (void)state;
    testhost *t = testhost_new(reload_ini);
    assert_non_null(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink s = {0};
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &s); /* before the first record */
    assert_int_equal(testhost_start(t), ARB_OK);
    until_count u = {&s, 1000};
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    arbh_instance *before = arbh_host_find(testhost_host(t), "c");
    char err[1024];
    assert_int_not_equal(
        testhost_reload(t, "c", testhost_plugin_path("tp_seq_refuse"), err, sizeof err), ARB_OK);
    assert_non_null(strstr(err, "refused"));
    assert_ptr_equal(arbh_host_find(testhost_host(t), "c"), before);
    assert_int_equal(before->state, INST_RUNNING);
    u.want = s.count + 1000;
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    assert_int_equal(s.errors, 0);
    testhost_free(t);
}

static void broken_new_build_leaves_the_old_instance_serving(void **state)
{
    (void)state;
    testhost *t = testhost_new(reload_ini);
    assert_non_null(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink s = {0};
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &s); /* before the first record */
    assert_int_equal(testhost_start(t), ARB_OK);
    char err[1024];
    const char *broken[] = {"tp_noentry", "tp_badabi", "/nonexistent/plugin.so", "/etc/hostname"};
    const char *why[] = {"missing entry symbol", "ABI mismatch", "cannot open", "not an ELF file"};
    for (int i = 0; i < 4; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s",
                 broken[i][0] == '/' ? broken[i] : testhost_plugin_path(broken[i]));
        assert_int_not_equal(testhost_reload(t, "p", path, err, sizeof err), ARB_OK);
        if (!strstr(err, why[i]))
            fail_msg("reload of %s: '%s' lacks '%s'", path, err, why[i]);
    }
    assert_int_equal(testhost_reload(t, "nobody", NULL, err, sizeof err), ARB_ENOENT);
    until_count u = {&s, 1000};
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    assert_int_equal(s.errors, 0);
    assert_int_equal(arbh_host_find(testhost_host(t), "p")->reloads, 0);
    testhost_free(t);
}

static void hundred_reloads_under_load_lose_and_double_nothing(void **state)
{
    (void)state;
    testhost *t = testhost_new(reload_ini);
    assert_non_null(t);
    arb_ctx *ctx = testhost_ctx(t);
    seq_sink s = {0};
    arb_subscribe(ctx, arb_topic(ctx, "test.out"), on_seq, &s); /* before the first record */
    assert_int_equal(testhost_start(t), ARB_OK);
    char err[1024];
    char paths[2][1024];
    snprintf(paths[0], sizeof paths[0], "%s", testhost_plugin_path("tp_seq"));
    snprintf(paths[1], sizeof paths[1], "%s", testhost_plugin_path("tp_seq_v2"));
    for (int i = 0; i < 100; i++) {
        testhost_run(t, 2 * MS);
        /* Alternate producer (on loop 1) and consumer (loop 0), and builds. */
        const char *who = i % 2 ? "c" : "p";
        if (testhost_reload(t, who, paths[(i / 2) % 2], err, sizeof err) != ARB_OK)
            fail_msg("reload %d of %s: %s", i, who, err);
    }
    uint64_t before = s.count;
    until_count u = {&s, before + 5000};
    assert_true(testhost_run_until(t, reached, &u, 5000 * MS));
    assert_true(s.count > 10000);
    assert_int_equal(s.errors, 0);
    char *body = route_body(t, "c", "state");
    assert_int_equal(json_u64(body, "errors"), 0);
    free(body);
    arbh_host *h = testhost_host(t);
    assert_int_equal(arbh_host_find(h, "p")->reloads + arbh_host_find(h, "c")->reloads, 100);
    assert_true(atomic_load(&h->reload_pause->count) >= 100);
    testhost_free(t);
}

/* ---- SIGHUP ---- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sighup_adds_removes_restarts_and_leaves_the_rest(void **state)
{
    (void)state;
    char dir[] = "/tmp/arb-test-hup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/host.ini", dir);
    write_text(path, "[plugin keep]\nload = tp_seq.so\nrole = consumer\nout_topic = o.keep\n"
                     "[plugin change]\nload = tp_seq.so\nrole = idle\n"
                     "[plugin drop]\nload = tp_seq.so\nrole = idle\n");
    const char *files[] = {path};
    char err[1024];
    char dirs[1024];
    snprintf(dirs, sizeof dirs, "%s/tests/plugins",
             getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build");
    setenv("ARB_PLUGIN_DIR", dirs, 1);
    arbh_host *h = arbh_host_new(files, 1, NULL, NULL, 0, err, sizeof err);
    assert_non_null(h);
    assert_int_equal(arbh_host_start(h, err, sizeof err), ARB_OK);
    arbh_host_install_signals(h);
    arbh_instance *keep = arbh_host_find(h, "keep");
    assert_int_equal(arbh_host_find(h, "change")->ntimers, 0); /* idle */
    write_text(path, "[plugin keep]\nload = tp_seq.so\nrole = consumer\nout_topic = o.keep\n"
                     "[plugin change]\nload = tp_seq.so\nrole = producer\n"
                     "[plugin added]\nload = tp_seq.so\nrole = idle\n");
    raise(SIGHUP);
    struct timeval tv = {0, 50000};
    event_base_loopexit(h->loops[0]->base, &tv);
    event_base_loop(h->loops[0]->base, 0);
    assert_ptr_equal(arbh_host_find(h, "keep"), keep);
    /* Restarted with its new settings: now a producer, with its timer. */
    assert_non_null(arbh_host_find(h, "change"));
    assert_int_equal(arbh_host_find(h, "change")->ntimers, 1);
    assert_null(arbh_host_find(h, "drop"));
    assert_non_null(arbh_host_find(h, "added"));
    assert_int_equal(arbh_host_find(h, "added")->state, INST_RUNNING);
    /* A broken edit is refused as a whole and changes nothing. */
    write_text(path, "[plugin keep]\nload = tp_seq.so\nbogus line\n");
    assert_int_not_equal(arbh_host_reconfigure(h, err, sizeof err), ARB_OK);
    assert_non_null(strstr(err, "host.ini:3"));
    assert_ptr_equal(arbh_host_find(h, "keep"), keep);
    /* So is a typo in [host]: refused whole, nothing changed. */
    write_text(path, "[host]\nadmn = 1\n[plugin keep]\nload = tp_seq.so\nrole = consumer\n"
                     "out_topic = o.keep\n");
    assert_int_not_equal(arbh_host_reconfigure(h, err, sizeof err), ARB_OK);
    assert_non_null(strstr(err, "unknown key 'admn' in [host]"));
    assert_ptr_equal(arbh_host_find(h, "keep"), keep);
    assert_non_null(arbh_host_find(h, "added"));
    arbh_host_stop(h);
    arbh_host_free(h);
    unlink(path);
    rmdir(dir);
}

/* An instance that listed sections by prefix (the digest lists "plugin "
 * to name agents; the gateway too) is changed when a section is added under
 * that prefix; the others are not. */
static void sighup_adding_a_section_changes_the_instances_that_list_them(void **state)
{
    (void)state;
    char dir[] = "/tmp/arb-test-hup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/host.ini", dir);
    write_text(path, "[plugin lister]\nload = digest.so\ntable = false\n"
                     "[plugin keep]\nload = tp_seq.so\nrole = idle\n");
    const char *files[] = {path};
    char err[1024], dirs[1024];
    snprintf(dirs, sizeof dirs, "%s/tests/plugins",
             getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build");
    /* The digest from the build's plugins, the test plugin from the tests'. */
    snprintf(dirs + strlen(dirs), sizeof dirs - strlen(dirs), ":%s/plugins",
             getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build");
    setenv("ARB_PLUGIN_DIR", dirs, 1);
    arbh_host *h = arbh_host_new(files, 1, NULL, NULL, 0, err, sizeof err);
    if (!h)
        fail_msg("%s", err);
    assert_int_equal(arbh_host_start(h, err, sizeof err), ARB_OK);
    arbh_instance *lister = arbh_host_find(h, "lister"), *keep = arbh_host_find(h, "keep");
    write_text(path, "[plugin lister]\nload = digest.so\ntable = false\n"
                     "[plugin keep]\nload = tp_seq.so\nrole = idle\n"
                     "[plugin agent]\nload = tp_seq.so\nrole = idle\naccount = 40\n");
    assert_int_equal(arbh_host_reconfigure(h, err, sizeof err), ARB_OK);
    assert_ptr_equal(arbh_host_find(h, "keep"), keep);
    assert_ptr_not_equal(arbh_host_find(h, "lister"), lister);
    assert_non_null(arbh_host_find(h, "agent"));
    /* The same set of sections again: nothing changes. */
    lister = arbh_host_find(h, "lister");
    assert_int_equal(arbh_host_reconfigure(h, err, sizeof err), ARB_OK);
    assert_ptr_equal(arbh_host_find(h, "lister"), lister);
    arbh_host_stop(h);
    arbh_host_free(h);
    unlink(path);
    rmdir(dir);
}

/* A running host from a config file (SIGHUP re-reads it): a producer on
 * loop 1 and a consumer on loop 0 that checks the numbers arrive in order. */
typedef struct hup_rig {
    char dir[64], path[256];
    arbh_host *h;
    seq_sink sink;
} hup_rig;

static const char *hup_base =
    "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 200\nburst = 50\n"
    "thread = 1\n"
    "[plugin c]\nload = tp_seq.so\nrole = consumer\n";

static void hup_run_until_count(hup_rig *r, uint64_t want)
{
    for (int i = 0; i < 5000 && r->sink.count < want; i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(r->h->loops[0]->base, &tv);
        event_base_loop(r->h->loops[0]->base, 0);
    }
    assert_true(r->sink.count >= want);
}

static void hup_start(hup_rig *r, const char *ini)
{
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "/tmp/arb-test-hup-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->path, sizeof r->path, "%s/host.ini", r->dir);
    write_text(r->path, ini);
    const char *files[] = {r->path};
    char err[1024], dirs[1024];
    snprintf(dirs, sizeof dirs, "%s/tests/plugins",
             getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build");
    setenv("ARB_PLUGIN_DIR", dirs, 1);
    r->h = arbh_host_new(files, 1, NULL, NULL, 0, err, sizeof err);
    if (!r->h)
        fail_msg("%s", err);
    arbh_instance *self = arbh_host_add_pseudo(r->h, "test");
    arbh_bus_subscribe(self, arbh_bus_topic(r->h, "test.out"), on_seq, &r->sink);
    assert_int_equal(arbh_host_start(r->h, err, sizeof err), ARB_OK);
    hup_run_until_count(r, 500);
}

static void hup_free(hup_rig *r)
{
    arbh_host_stop(r->h);
    arbh_host_free(r->h);
    unlink(r->path);
    rmdir(r->dir);
}

/* A refused SIGHUP: the same instances (pointers), still running, the
 * consumer's count carried on without a gap, and the refusal kept. */
static void expect_refused_unchanged(hup_rig *r, const char *ini, const char *needle1,
                                     const char *needle2)
{
    arbh_instance *p = arbh_host_find(r->h, "p"), *c = arbh_host_find(r->h, "c");
    size_t n = r->h->ninstances;
    write_text(r->path, ini);
    char err[1024];
    assert_int_not_equal(arbh_host_reconfigure(r->h, err, sizeof err), ARB_OK);
    if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
        fail_msg("refusal '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
    assert_false(r->h->last_reconfig.ok);
    assert_string_equal(r->h->last_reconfig.message, err);
    assert_ptr_equal(arbh_host_find(r->h, "p"), p);
    assert_ptr_equal(arbh_host_find(r->h, "c"), c);
    assert_int_equal(r->h->ninstances, n);
    assert_int_equal(p->state, INST_RUNNING);
    assert_int_equal(c->state, INST_RUNNING);
    hup_run_until_count(r, r->sink.count + 500);
    assert_int_equal(r->sink.errors, 0);
}

static void sighup_with_a_bad_value_changes_nothing(void **state)
{
    (void)state;
    hup_rig r;
    hup_start(&r, hup_base);
    /* A valid change to p, a bad value in c: neither is applied. */
    expect_refused_unchanged(&r,
                             "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 300\n"
                             "thread = 1\n"
                             "[plugin c]\nload = tp_seq.so\nrole = consumer\nburst = banana\n",
                             "host.ini:9: [plugin c] burst = 'banana'", NULL);
    hup_free(&r);
}

static void sighup_with_a_missing_so_changes_nothing(void **state)
{
    (void)state;
    hup_rig r;
    hup_start(&r, hup_base);
    expect_refused_unchanged(
        &r,
        "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 300\n"
        "thread = 1\n"
        "[plugin c]\nload = tp_seq.so\nrole = consumer\n"
        "[plugin extra]\nload = not_built.so\n",
        "host.ini:10: [plugin extra] load = not_built.so: plugin file not found", NULL);
    assert_null(arbh_host_find(r.h, "extra"));
    hup_free(&r);
}

static void sighup_with_a_partly_valid_file_changes_nothing(void **state)
{
    (void)state;
    hup_rig r;
    hup_start(&r, hup_base);
    /* The first sections are a valid edit; line 8 is not INI. */
    expect_refused_unchanged(&r,
                             "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 300\n"
                             "thread = 1\n"
                             "[plugin c]\nload = tp_seq.so\nrole = consumer\n"
                             "this line is not ini\n[plugin extra]\nload = tp_seq.so\n",
                             "host.ini:9", NULL);
    assert_null(arbh_host_find(r.h, "extra"));
    hup_free(&r);
}

static void sighup_that_cannot_start_an_instance_changes_nothing(void **state)
{
    (void)state;
    hup_rig r;
    hup_start(&r, hup_base);
    /* start() fails (as a listener on a taken address would): p's valid
     * change and the removal of nothing else are not applied either. */
    expect_refused_unchanged(&r,
                             "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 300\n"
                             "thread = 1\n"
                             "[plugin c]\nload = tp_seq.so\nrole = consumer\n"
                             "[plugin extra]\nload = tp_seq.so\nfail_start = true\n",
                             "[plugin extra] not started", "fail_start is set: refusing to start");
    hup_free(&r);
}

/* [latency] is read at start: a running host with one takes a SIGHUP
 * (it once refused every one as "unknown section [latency]"), and a changed
 * [latency] is ignored until a restart, the rest applied. */
static void sighup_on_a_host_with_latency_applies_and_leaves_latency_to_a_restart(void **state)
{
    (void)state;
    char base[512];
    snprintf(base, sizeof base, "%s[latency]\nseed = 1\nXA = constant 1ms\n", hup_base);
    hup_rig r;
    hup_start(&r, base);
    char err[1024];
    assert_int_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    assert_true(r.h->last_reconfig.ok);
    char changed[512];
    snprintf(changed, sizeof changed,
             "%s[plugin extra]\nload = tp_seq.so\nrole = consumer\n"
             "[latency]\nseed = 2\nXA = constant 5ms\n",
             hup_base);
    write_text(r.path, changed);
    assert_int_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    assert_true(r.h->last_reconfig.ok);
    assert_non_null(arbh_host_find(r.h, "extra"));
    hup_free(&r);
}

static void sighup_keeps_a_changed_instance_state(void **state)
{
    (void)state;
    hup_rig r;
    hup_start(&r, hup_base);
    arbh_instance *c = arbh_host_find(r.h, "c");
    /* c changes (a key it reads); the numbers it expects carry over. */
    write_text(r.path, "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 200\n"
                       "burst = 50\nthread = 1\n"
                       "[plugin c]\nload = tp_seq.so\nrole = consumer\nlimit = 7\n");
    char err[1024];
    assert_int_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    assert_true(r.h->last_reconfig.ok);
    assert_int_equal(r.h->last_reconfig.changed, 1);
    assert_int_equal(r.h->last_reconfig.unchanged, 1);
    assert_string_equal(r.h->last_reconfig.state_dropped, "");
    assert_ptr_not_equal(arbh_host_find(r.h, "c"), c);
    uint64_t before = r.sink.count;
    hup_run_until_count(&r, before + 500);
    char *body = host_route_body(r.h, "c", "state");
    assert_int_equal(json_u64(body, "errors"), 0); /* no restart from 0 */
    assert_true(json_u64(body, "next") >= before + 500);
    free(body);
    assert_int_equal(r.sink.errors, 0);
    hup_free(&r);
}

/* The matcher never starts empty on a SIGHUP: a change its resting orders
 * do not fit (the tick of their instrument) is refused whole, and the order
 * still rests and trades afterwards. */
static int count_records(void *user, const arb_msg *m)
{
    (void)m;
    ++*(int *)user;
    return 0;
}

static void on_count(void *user, const arb_msg *m) { count_records(user, m); }

/* A limit order of 1 on XA:BTCUSD at `price` (cents), from account 7
 * (buy) or 8 (sell). */
static void publish_order_at(arbh_instance *self, uint64_t id, uint8_t side, uint8_t tif,
                             int64_t price)
{
    arb_order_cmd c;
    memset(&c, 0, sizeof c);
    memcpy(c.venue, "XA", 2);
    memcpy(c.symbol, "BTCUSD", 6);
    c.action = ARB_CMD_NEW;
    c.side = side;
    c.type = ARB_ORD_LIMIT;
    c.tif = tif;
    c.order_id = id;
    c.account = side == ARB_SIDE_BUY ? 7 : 8;
    c.price = price;
    c.qty = 1;
    uint8_t buf[ARB_ORDER_CMD_LEN];
    uint32_t n = arb_order_cmd_encode(&c, buf, sizeof buf);
    assert_int_equal(arbh_bus_publish(self, ARB_TOPIC_ORDER_COMMANDS, c.account, buf, n), ARB_OK);
}

static void publish_order(arbh_instance *self, uint64_t id, uint8_t side, uint8_t tif)
{
    publish_order_at(self, id, side, tif, 10003); /* 100.03: on the 0.01 tick, not on 0.05 */
}

static void run_until_int(arbh_host *h, const int *v, int want)
{
    for (int i = 0; i < 5000 && *v < want; i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(h->loops[0]->base, &tv);
        event_base_loop(h->loops[0]->base, 0);
    }
    assert_true(*v >= want);
}

/* A host with the matcher on one book (XA:BTCUSD at `tick`) and the
 * plugin sections in `extra`, written to a file of its own so that a test
 * can rewrite it and SIGHUP; `self` publishes and subscribes. */
typedef struct book_rig {
    char dir[64], path[300];
    int journal; /* the run in a journal in dir: an agent's cold start reads it back */
    arbh_host *h;
    arbh_instance *self;
} book_rig;

static void book_rig_write(book_rig *r, const char *tick, const char *extra)
{
    const char *b = getenv("ARB_BUILD") ? getenv("ARB_BUILD") : "build";
    char ini[1536], bus[128] = "";
    if (r->journal)
        snprintf(bus, sizeof bus, "[bus]\njournal = %s/journal\n", r->dir);
    snprintf(ini, sizeof ini,
             "[host]\nplugin_dir = %s/plugins\n%s[instrument XA:BTCUSD]\nprice_decimals = 2\n"
             "tick_size = %s\nqty_decimals = 0\nlot_size = 1\nmin_qty = 1\nmax_qty = 100\n"
             "ref_price = 100.00\nband_bps = 2000\n[plugin matcher]\nload = matcher.so\n%s",
             b, bus, tick, extra);
    write_text(r->path, ini);
}

/* Makes the host; the caller subscribes through r->self, then starts it. */
static void book_rig_new(book_rig *r, const char *tick, const char *extra)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/arb-test-hup-book-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    snprintf(r->path, sizeof r->path, "%s/host.ini", r->dir);
    book_rig_write(r, tick, extra);
    const char *files[] = {r->path};
    char err[1024];
    r->h = arbh_host_new(files, 1, NULL, NULL, 0, err, sizeof err);
    if (!r->h)
        fail_msg("%s", err);
    r->self = arbh_host_add_pseudo(r->h, "test");
}

static void book_rig_start(book_rig *r)
{
    char err[1024];
    assert_int_equal(arbh_host_start(r->h, err, sizeof err), ARB_OK);
}

static void book_rig_free(book_rig *r)
{
    arbh_host_stop(r->h);
    arbh_host_free(r->h);
    unlink(r->path);
    if (r->journal) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s/journal", r->dir);
        assert_int_equal(system(cmd), 0);
    }
    rmdir(r->dir);
}

static void sighup_never_drops_the_matchers_books(void **state)
{
    (void)state;
    book_rig r;
    book_rig_new(&r, "0.01", "");
    int events = 0, trades = 0;
    arbh_bus_subscribe(r.self, ARB_TOPIC_ORDER_EVENTS, on_count, &events);
    arbh_bus_subscribe(r.self, ARB_TOPIC_TRADE_EXECUTED, on_count, &trades);
    book_rig_start(&r);
    publish_order(r.self, 1, ARB_SIDE_BUY, ARB_TIF_GTC);
    run_until_int(r.h, &events, 1);
    arbh_instance *matcher = arbh_host_find(r.h, "matcher");

    book_rig_write(&r, "0.05", "");
    char err[1024];
    assert_int_not_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    if (!strstr(err, "[plugin matcher]") || !strstr(err, "state not carried over"))
        fail_msg("refusal '%s' does not name the matcher and its state", err);
    assert_false(r.h->last_reconfig.ok);
    assert_ptr_equal(arbh_host_find(r.h, "matcher"), matcher);

    /* The resting buy is still there: a crossing IOC sell trades with it. */
    publish_order(r.self, 2, ARB_SIDE_SELL, ARB_TIF_IOC);
    run_until_int(r.h, &trades, 1);
    assert_int_equal(trades, 1);
    book_rig_free(&r);
}

/* An agent whose successor refuses its state (here its account changed)
 * starts empty, and its old open orders are not left on the book with
 * nobody managing them: the old instance cancels them as it stops. */
typedef struct mm_watch {
    int accepted, cancelled; /* account 10's */
} mm_watch;

static void on_mm_event(void *user, const arb_msg *m)
{
    mm_watch *w = user;
    arb_order_event ev;
    if (arb_order_event_decode(m->data, m->len, &ev) || ev.account != 10)
        return;
    w->accepted += ev.kind == ARB_EV_ACCEPTED;
    w->cancelled += ev.kind == ARB_EV_CANCELLED;
}

/* Gives the market maker of book_rig a value and a tick: it quotes. */
static void mm_quote_once(book_rig *r, mm_watch *w)
{
    arb_market_event me = {.kind = ARB_MEV_VENUE_VALUE, .value = 10000, .ts = 1, .seq = 1};
    memcpy(me.venue, "XA", 2);
    memcpy(me.symbol, "BTCUSD", 6);
    uint8_t buf[ARB_MARKET_EVENT_LEN];
    uint32_t n = arb_market_event_encode(&me, buf, sizeof buf);
    assert_int_equal(arbh_bus_publish(r->self, ARB_TOPIC_MARKET_EVENTS,
                                      arb_instrument_key(me.venue, me.symbol), buf, n),
                     ARB_OK);
    arb_tick t = {1, 1000000, 1000000, 1, ARB_TICK_SIM};
    n = arb_tick_encode(&t, buf, sizeof buf);
    assert_int_equal(arbh_bus_publish(r->self, ARB_TOPIC_SYSTEM_TICKS, 0, buf, n), ARB_OK);
    run_until_int(r->h, &w->accepted, 2); /* its bid and its ask rest */
}

/* A SIGHUP that is refused changes nothing in the market. Here the market
 * maker's change makes it refuse its state (a second account), so the new
 * instance, prepared while the old one trades, reads the run back from the
 * journal and finds the old one's quotes open; another instance of the same
 * change fails to start, so the SIGHUP is refused. The quotes must still be
 * there: the prepared instance's cancels of them, and its own stop's, once
 * went out anyway (found by a fault probe). */
static void refused_sighup_leaves_the_agents_orders(void **state)
{
    (void)state;
    book_rig r = {.journal = 1};
    book_rig_new(&r, "0.01",
                 "[plugin mm]\nload = agent_market_maker.so\naccount = 10\ninstruments = "
                 "XA:BTCUSD\n");
    mm_watch w = {0};
    int trades = 0;
    arbh_bus_subscribe(r.self, ARB_TOPIC_ORDER_EVENTS, on_mm_event, &w);
    arbh_bus_subscribe(r.self, ARB_TOPIC_TRADE_EXECUTED, on_count, &trades);
    book_rig_start(&r);
    mm_quote_once(&r, &w);

    book_rig_write(&r, "0.01",
                   "[plugin mm]\nload = agent_market_maker.so\naccount = 10\npopulation = 2\n"
                   "instruments = XA:BTCUSD\n[plugin bad]\nload = tp_seq.so\nrole = consumer\n"
                   "fail_start = true\n");
    char err[1024];
    assert_int_not_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    if (!strstr(err, "[plugin bad]"))
        fail_msg("%s", err);

    /* The bid still rests: a sell IOC far below it trades with it. */
    publish_order_at(r.self, 77, ARB_SIDE_SELL, ARB_TIF_IOC, 8100);
    run_until_int(r.h, &trades, 1);
    assert_int_equal(w.cancelled, 0);
    book_rig_free(&r);
}

static void sighup_an_agent_refuses_cancels_the_orders_it_left(void **state)
{
    (void)state;
    static const char mm[] =
        "[plugin mm]\nload = agent_market_maker.so\naccount = %d\ninstruments = XA:BTCUSD\n";
    char extra[256];
    snprintf(extra, sizeof extra, mm, 10);
    book_rig r;
    book_rig_new(&r, "0.01", extra);
    mm_watch w = {0};
    arbh_bus_subscribe(r.self, ARB_TOPIC_ORDER_EVENTS, on_mm_event, &w);
    book_rig_start(&r);
    mm_quote_once(&r, &w);

    snprintf(extra, sizeof extra, mm, 12);
    book_rig_write(&r, "0.01", extra);
    char err[1024];
    assert_int_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    assert_string_equal(r.h->last_reconfig.state_dropped, "mm");
    run_until_int(r.h, &w.cancelled, 2);
    assert_int_equal(w.cancelled, 2);
    book_rig_free(&r);
}

/* Two agents on overlapping accounts (a noise population over a market
 * maker's account) would each count the other's fills as its own: refused
 * at start, and a SIGHUP that adds one is refused whole. */
static void agents_on_overlapping_accounts_are_refused(void **state)
{
    (void)state;
    static const char mm[] =
        "[plugin mm]\nload = agent_market_maker.so\naccount = 10\ninstruments = XA:BTCUSD\n";
    static const char noise[] = "[plugin noise]\nload = agent_noise.so\naccount = 5\n"
                                "population = %d\ninstruments = XA:BTCUSD\n";
    char extra[512], err[1024];
    snprintf(extra, sizeof extra, "%s%s", mm, noise);
    snprintf(extra + strlen(mm), sizeof extra - strlen(mm), noise, 6); /* 5..10 */
    book_rig r;
    snprintf(r.dir, sizeof r.dir, "/tmp/arb-test-claims-XXXXXX");
    assert_non_null(mkdtemp(r.dir));
    snprintf(r.path, sizeof r.path, "%s/host.ini", r.dir);
    book_rig_write(&r, "0.01", extra);
    const char *files[] = {r.path};
    assert_null(arbh_host_new(files, 1, NULL, NULL, 0, err, sizeof err));
    if (!strstr(err, "[plugin noise] account 5..10 overlaps [plugin mm]'s 10..10"))
        fail_msg("%s", err);
    unlink(r.path);
    rmdir(r.dir);

    book_rig_new(&r, "0.01", mm);
    book_rig_start(&r);
    arbh_instance *running = arbh_host_find(r.h, "mm");
    book_rig_write(&r, "0.01", extra);
    assert_int_not_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    if (!strstr(err, "overlaps"))
        fail_msg("%s", err);
    assert_ptr_equal(arbh_host_find(r.h, "mm"), running);
    assert_null(arbh_host_find(r.h, "noise"));
    snprintf(extra + strlen(mm), sizeof extra - strlen(mm), noise, 5); /* 5..9: apart */
    book_rig_write(&r, "0.01", extra);
    assert_int_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    assert_non_null(arbh_host_find(r.h, "noise"));
    book_rig_free(&r);
}

static void sighup_whose_plugin_refuses_the_state_starts_it_empty_and_says_so(void **state)
{
    (void)state;
    hup_rig r;
    hup_start(&r, hup_base);
    write_text(r.path, "[plugin p]\nload = tp_seq.so\nrole = producer\ninterval_us = 200\n"
                       "thread = 1\n"
                       "[plugin c]\nload = tp_seq_refuse.so\nrole = consumer\n");
    char err[1024];
    assert_int_equal(arbh_host_reconfigure(r.h, err, sizeof err), ARB_OK);
    assert_true(r.h->last_reconfig.ok);
    assert_string_equal(r.h->last_reconfig.state_dropped, "c");
    arbh_instance *c = arbh_host_find(r.h, "c");
    assert_int_equal(c->state, INST_RUNNING);
    assert_string_equal(c->desc->version, "9.9.9-refuse");
    hup_free(&r);
}

/* ---- service registry ---- */

typedef struct registry_sink {
    int alive, tombstones;
    char host[ARB_SVC_ID_LEN + 1];
    char first_plugin[ARB_SVC_NAME_LEN + 1];
    unsigned plugins;
} registry_sink;

static void on_registry(void *user, const arb_msg *m)
{
    registry_sink *r = user;
    arb_service s = {0};
    assert_int_equal(arb_service_decode(m->data, m->len, &s), ARB_OK);
    arb_fixstr(r->host, s.host_id, ARB_SVC_ID_LEN);
    r->plugins = s.n_plugins;
    if (s.n_plugins) {
        arb_service_plugin p;
        arb_service_get_plugin(&s, 0, &p);
        arb_fixstr(r->first_plugin, p.instance, ARB_SVC_NAME_LEN);
    }
    if (s.status == ARB_SVC_ALIVE)
        r->alive++;
    else
        r->tombstones++;
}

static int three_alive(void *user) { return ((registry_sink *)user)->alive >= 3; }

static void host_announces_itself_and_leaves_a_tombstone(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nid = reg-1\nannounce_ms = 5\n"
                               "[plugin idle]\nload = tp_seq.so\n");
    assert_non_null(t);
    registry_sink r = {0};
    arb_subscribe(testhost_ctx(t), ARB_TOPIC_SERVICE_REGISTRY, on_registry, &r);
    assert_int_equal(testhost_start(t), ARB_OK);
    assert_true(testhost_run_until(t, three_alive, &r, 5000 * MS));
    assert_string_equal(r.host, "reg-1");
    assert_int_equal(r.plugins, 1);
    assert_string_equal(r.first_plugin, "idle");
    assert_int_equal(r.tombstones, 0);
    testhost_free(t);
    assert_int_equal(r.tombstones, 1);
}

static void reserved_or_odd_instance_names_are_refused(void **state)
{
    (void)state;
    expect_new_fails("[plugin host]\nload = tp_seq.so\n", "<test config>:2", "instance names");
    expect_new_fails("[plugin a b]\nload = tp_seq.so\n", "<test config>:2", "instance names");
}

/* ---- admin ---- */

static const char *http_with(testhost *t, const char *method, const char *path, const char *token,
                             const char *extra)
{
    static char req[2048];
    const char *addr = testhost_host(t)->admin_addr;
    snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n%s%s%s%s\r\n",
             method, path, token ? "Authorization: Bearer " : "", token ? token : "",
             token ? "\r\n" : "", extra ? extra : "");
    const char *r = testhost_http(t, atoi(strrchr(addr, ':') + 1), req, 5000 * MS);
    assert_non_null(r);
    return r;
}

static const char *http(testhost *t, const char *method, const char *path, const char *token)
{
    return http_with(t, method, path, token, NULL);
}

/* The token the host made or read (no admin_token configured). */
static const char *host_token(testhost *t) { return testhost_host(t)->admin_token; }

static void admin_serves_health_metrics_plugins_and_reload(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nid = adm\nadmin = 127.0.0.1:0\n"
                               "[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "test.seq");
    for (uint64_t i = 0; i < 100; i++)
        arb_publish(ctx, topic, 0, &i, sizeof i);
    const char *r = http(t, "GET", "/healthz", NULL);
    assert_non_null(strstr(r, "200 OK"));
    assert_non_null(strstr(r, "\"status\":\"ok\""));
    r = http(t, "GET", "/metrics", NULL);
    assert_non_null(strstr(r, "arb_bus_published_total{topic=\"test.seq\"} 100"));
    assert_non_null(strstr(r, "arb_bus_delivered_total{topic=\"test.seq\"} 100"));
    assert_non_null(strstr(r, "# TYPE arb_bus_latency_ns histogram"));
    r = http(t, "GET", "/plugins", NULL);
    assert_non_null(strstr(r, "\"instance\":\"c\""));
    assert_non_null(strstr(r, "\"reloads\":0"));
    r = http(t, "POST", "/plugins/c/reload", host_token(t));
    assert_non_null(strstr(r, "\"ok\":true"));
    r = http(t, "GET", "/plugins/c/state", NULL);
    assert_non_null(strstr(r, "\"next\":100"));
    r = http(t, "GET", "/plugins/zzz/reload", NULL);
    assert_non_null(strstr(r, "405"));
    r = http(t, "POST", "/plugins/zzz/reload", host_token(t));
    assert_non_null(strstr(r, "404"));
    r = http(t, "GET", "/nope", NULL);
    assert_non_null(strstr(r, "404"));
    testhost_free(t);
}

static void admin_token_is_required_when_set(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nadmin = 127.0.0.1:0\nadmin_token = s3cret\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    assert_non_null(strstr(http(t, "GET", "/plugins", NULL), "401"));
    assert_non_null(strstr(http(t, "GET", "/plugins", "wrong!"), "401"));
    assert_non_null(strstr(http(t, "GET", "/plugins", "s3cret"), "200 OK"));
    testhost_free(t);
}

/* The reload a web page could send (no token, a "simple" cross-origin
 * POST) is refused before anything is loaded. */
static const char *admin_ini = "[host]\nadmin = 127.0.0.1:0\n"
                               "[plugin c]\nload = tp_seq.so\nrole = consumer\n";

static void post_without_the_token_is_refused_and_reloads_nothing(void **state)
{
    (void)state;
    testhost *t = testhost_new(admin_ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    assert_non_null(strstr(http(t, "POST", "/plugins/c/reload", NULL), "401"));
    assert_non_null(strstr(http(t, "POST", "/plugins/c/reload", "wrong!"), "401"));
    assert_int_equal(arbh_host_find(testhost_host(t), "c")->reloads, 0);
    testhost_free(t);
}

static void request_from_another_origin_is_refused_even_with_the_token(void **state)
{
    (void)state;
    testhost *t = testhost_new(admin_ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    const char *r = http_with(t, "POST", "/plugins/c/reload", host_token(t),
                              "Origin: http://evil.example\r\nContent-Type: text/plain\r\n");
    assert_non_null(strstr(r, "403"));
    assert_non_null(strstr(r, "forbidden_origin"));
    assert_int_equal(arbh_host_find(testhost_host(t), "c")->reloads, 0);
    char own[160];
    snprintf(own, sizeof own, "Origin: http://%s\r\n", testhost_host(t)->admin_addr);
    assert_non_null(
        strstr(http_with(t, "POST", "/plugins/c/reload", host_token(t), own), "\"ok\":true"));
    testhost_free(t);
}

/* Found by fuzz_admin: evhttp answered HTTP/0.1 requests as "HTTP/0.1". */
static void admin_answers_another_http_version_with_505_in_1_1(void **state)
{
    (void)state;
    testhost *t = testhost_new(admin_ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    const char *addr = testhost_host(t)->admin_addr;
    const char *r = testhost_http(t, atoi(strrchr(addr, ':') + 1),
                                  "GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n", 5000 * MS);
    assert_non_null(r);
    assert_true(!strncmp(r, "HTTP/1.1 505", 12));
    assert_non_null(strstr(r, "http_version_not_supported"));
    testhost_free(t);
}

static void health_and_metrics_stay_open_on_loopback(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nadmin = 127.0.0.1:0\nadmin_token = s3cret\n");
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    assert_non_null(strstr(http(t, "GET", "/healthz", NULL), "200 OK"));
    assert_non_null(strstr(http(t, "GET", "/metrics", NULL), "200 OK"));
    testhost_free(t);
}

static void token_file_is_made_owner_only_and_read_back(void **state)
{
    (void)state;
    char dir[] = "/tmp/arb-token-XXXXXX", ini[1024], file[600];
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/sub/admin.token", dir);
    snprintf(ini, sizeof ini, "[host]\nadmin = 127.0.0.1:0\nadmin_token_file = %s\n", file);
    testhost *t = testhost_new(ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    char first[256];
    snprintf(first, sizeof first, "%s", host_token(t));
    assert_int_equal(strlen(first), 64);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    testhost_free(t);
    /* A second start reads the same token. */
    t = testhost_new(ini);
    assert_int_equal(testhost_start(t), ARB_OK);
    assert_string_equal(host_token(t), first);
    testhost_free(t);
    /* A file others may read is refused. */
    chmod(file, 0644);
    t = testhost_new(ini);
    assert_int_not_equal(testhost_start(t), ARB_OK);
    assert_non_null(strstr(testhost_last_error(), "chmod 600"));
    testhost_free(t);
    unlink(file);
    snprintf(file, sizeof file, "%s/sub", dir);
    rmdir(file);
    rmdir(dir);
}

/* A copy of a good plugin outside every plugin and config directory. */
static void copy_plugin(const char *to)
{
    FILE *in = fopen(testhost_plugin_path("tp_seq_v2"), "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
}

static void reload_path_outside_the_plugin_dirs_is_refused(void **state)
{
    (void)state;
    char dir[] = "/tmp/arb-evil-XXXXXX", so[600];
    assert_non_null(mkdtemp(dir));
    snprintf(so, sizeof so, "%s/evil.so", dir);
    copy_plugin(so);
    testhost *t = testhost_new(admin_ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    char path[700];
    snprintf(path, sizeof path, "/plugins/c/reload?path=%s", so);
    const char *r = http(t, "POST", path, host_token(t));
    assert_non_null(strstr(r, "403"));
    assert_non_null(strstr(r, "path_not_allowed"));
    assert_int_equal(arbh_host_find(testhost_host(t), "c")->reloads, 0);
    testhost_free(t);
    unlink(so);
    rmdir(dir);
}

static void reload_any_path_lets_a_developer_load_from_anywhere(void **state)
{
    (void)state;
    char dir[] = "/tmp/arb-dev-XXXXXX", so[600], ini[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(so, sizeof so, "%s/dev.so", dir);
    copy_plugin(so);
    snprintf(ini, sizeof ini,
             "[host]\nadmin = 127.0.0.1:0\nreload_any_path = true\n"
             "[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    testhost *t = testhost_new(ini);
    assert_non_null(t);
    assert_int_equal(testhost_start(t), ARB_OK);
    char path[700];
    snprintf(path, sizeof path, "/plugins/c/reload?path=%s", so);
    assert_non_null(strstr(http(t, "POST", path, host_token(t)), "\"ok\":true"));
    testhost_free(t);
    unlink(so);
    rmdir(dir);
}

static void admin_off_loopback_without_token_is_refused(void **state)
{
    (void)state;
    testhost *t = testhost_new("[host]\nadmin = 0.0.0.0:0\n");
    assert_non_null(t);
    assert_int_not_equal(testhost_start(t), ARB_OK);
    assert_non_null(strstr(testhost_last_error(), "admin_token"));
    testhost_free(t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_plugin_loads_and_plan_lists_topics),
        cmocka_unit_test(missing_so_names_file_and_line),
        cmocka_unit_test(missing_entry_symbol_is_refused),
        cmocka_unit_test(abi_mismatch_is_refused),
        cmocka_unit_test(plugin_rejecting_its_config_names_the_key_line),
        cmocka_unit_test(bad_typed_value_names_the_key_line),
        cmocka_unit_test(unknown_key_in_plugin_section_is_an_error),
        cmocka_unit_test(unknown_key_in_a_walked_section_is_an_error),
        cmocka_unit_test(unknown_host_key_and_section_are_errors),
        cmocka_unit_test(start_failure_is_reported_and_nothing_runs),
        cmocka_unit_test(one_so_runs_as_several_instances),
        cmocka_unit_test(fan_out_reaches_every_subscriber_in_order),
        cmocka_unit_test(unsubscribed_callback_gets_nothing_more),
        cmocka_unit_test(publish_inside_a_callback_is_queued_not_recursive),
        cmocka_unit_test(a_batch_wakes_another_loop_once_and_delivers_here_after_it),
        cmocka_unit_test(full_queue_refuses_whole_publishes_and_loses_nothing_accepted),
        cmocka_unit_test(paused_subscriber_holds_records_and_publishers_see_full),
        cmocka_unit_test(cross_thread_delivery_keeps_order),
        cmocka_unit_test(oversized_record_is_refused),
        cmocka_unit_test(injected_records_are_done_only_once_handled_everywhere),
        cmocka_unit_test(a_host_stopped_at_once_still_stops),
        cmocka_unit_test(reload_keeps_state_and_runs_new_code),
        cmocka_unit_test(refused_state_leaves_the_old_instance_serving),
        cmocka_unit_test(broken_new_build_leaves_the_old_instance_serving),
        cmocka_unit_test(hundred_reloads_under_load_lose_and_double_nothing),
        cmocka_unit_test(sighup_adds_removes_restarts_and_leaves_the_rest),
        cmocka_unit_test(sighup_adding_a_section_changes_the_instances_that_list_them),
        cmocka_unit_test(sighup_with_a_bad_value_changes_nothing),
        cmocka_unit_test(sighup_with_a_missing_so_changes_nothing),
        cmocka_unit_test(sighup_with_a_partly_valid_file_changes_nothing),
        cmocka_unit_test(sighup_that_cannot_start_an_instance_changes_nothing),
        cmocka_unit_test(sighup_keeps_a_changed_instance_state),
        cmocka_unit_test(sighup_whose_plugin_refuses_the_state_starts_it_empty_and_says_so),
        cmocka_unit_test(sighup_an_agent_refuses_cancels_the_orders_it_left),
        cmocka_unit_test(agents_on_overlapping_accounts_are_refused),
        cmocka_unit_test(refused_sighup_leaves_the_agents_orders),
        cmocka_unit_test(sighup_never_drops_the_matchers_books),
        cmocka_unit_test(sighup_on_a_host_with_latency_applies_and_leaves_latency_to_a_restart),
        cmocka_unit_test(host_announces_itself_and_leaves_a_tombstone),
        cmocka_unit_test(reserved_or_odd_instance_names_are_refused),
        cmocka_unit_test(admin_serves_health_metrics_plugins_and_reload),
        cmocka_unit_test(admin_token_is_required_when_set),
        cmocka_unit_test(post_without_the_token_is_refused_and_reloads_nothing),
        cmocka_unit_test(request_from_another_origin_is_refused_even_with_the_token),
        cmocka_unit_test(health_and_metrics_stay_open_on_loopback),
        cmocka_unit_test(admin_answers_another_http_version_with_505_in_1_1),
        cmocka_unit_test(token_file_is_made_owner_only_and_read_back),
        cmocka_unit_test(reload_path_outside_the_plugin_dirs_is_refused),
        cmocka_unit_test(reload_any_path_lets_a_developer_load_from_anywhere),
        cmocka_unit_test(admin_off_loopback_without_token_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
