/*
 * bench_bus.c -- figures for the in-process bus and hot reload:
 *   throughput publish -> deliver with 1 and 4 subscribers on one loop,
 *   latency per record (TSC-stamped, p50/p99), the same across two loops,
 *   and the reload pause of a running instance (p50/p99).
 * The baseline, measured in the same run, is the floor for the same work
 * without a bus: copy the record and call the subscriber through a pointer.
 * Prints `bench: <name> <value> <unit>` lines only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "host.h"
#include "testhost.h"

#define MSG_BYTES 64

typedef struct sink {
    uint64_t count;
    uint64_t sum;
    uint64_t *lat; /* cycles, one per sampled record */
    size_t nlat, caplat;
} sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_msg(void *user, const arb_msg *m)
{
    sink *s = user;
    s->count++;
    s->sum += ((const uint8_t *)m->data)[8];
}

static void on_msg_lat(void *user, const arb_msg *m)
{
    uint64_t t1 = __rdtsc();
    sink *s = user;
    uint64_t t0;
    memcpy(&t0, m->data, sizeof t0);
    if (s->nlat < s->caplat)
        s->lat[s->nlat++] = t1 - t0;
    s->count++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cycles_per_ns(void)
{
    double t0 = now_s();
    uint64_t c0 = __rdtsc();
    while (now_s() - t0 < 0.2)
        ;
    return (double)(__rdtsc() - c0) / ((now_s() - t0) * 1e9);
}

/* A started test host; when it cannot start (a plugin not built, a bad
 * config), the reason and exit status 1: a bench that cannot set up has no
 * figure to print, and make bench must not go on as if it had. */
static testhost *started_host(const char *ini)
{
    testhost *t = testhost_new(ini);
    if (!t || testhost_start(t) != ARB_OK) {
        fprintf(stderr, "bench_bus: the test host did not start: %s\n", testhost_last_error());
        exit(1);
    }
    return t;
}

/* A figure that cannot be right (records lost): say which, exit 1. */
static _Noreturn void fail(const char *what)
{
    fprintf(stderr, "bench_bus: %s\n", what);
    exit(1);
}

/* The floor: what delivering costs with no bus at all. */
static void (*volatile direct_fn)(void *, const arb_msg *) = on_msg;

static double baseline_direct(uint64_t n)
{
    sink s = {0};
    uint8_t src[MSG_BYTES] = {0}, slot[MSG_BYTES];
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        src[8] = (uint8_t)i;
        memcpy(slot, src, sizeof slot);
        arb_msg m = {slot, MSG_BYTES, 7, 0, i, -1, -1};
        direct_fn(&s, &m);
    }
    double dt = now_s() - t0;
    if (s.count != n)
        fail("the direct-call baseline lost records");
    return (double)n / dt;
}

static double bus_throughput(int nsubs, uint64_t n)
{
    testhost *t = started_host("[host]\nid = bench\nlog_level = warn\n");
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "bench");
    sink s[4] = {{0}};
    for (int i = 0; i < nsubs; i++)
        arb_subscribe(ctx, topic, on_msg, &s[i]);
    uint8_t msg[MSG_BYTES] = {0};
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        msg[8] = (uint8_t)i;
        arb_publish(ctx, topic, i, msg, sizeof msg);
    }
    double dt = now_s() - t0;
    for (int i = 0; i < nsubs; i++)
        if (s[i].count != n)
            fail("a subscriber missed records");
    testhost_free(t);
    return (double)n / dt;
}

static void bus_latency(int nsubs, size_t n, double cpn, double *p50, double *p99)
{
    testhost *t = started_host("[host]\nid = bench\nlog_level = warn\n");
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "bench");
    sink s[4] = {{0}};
    s[0].lat = malloc(n * sizeof *s[0].lat);
    s[0].caplat = n;
    arb_subscribe(ctx, topic, on_msg_lat, &s[0]);
    for (int i = 1; i < nsubs; i++)
        arb_subscribe(ctx, topic, on_msg, &s[i]);
    uint8_t msg[MSG_BYTES] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t c = __rdtsc();
        memcpy(msg, &c, sizeof c);
        arb_publish(ctx, topic, i, msg, sizeof msg);
    }
    qsort(s[0].lat, s[0].nlat, sizeof *s[0].lat, cmp_u64);
    *p50 = (double)s[0].lat[s[0].nlat / 2] / cpn;
    *p99 = (double)s[0].lat[s[0].nlat * 99 / 100] / cpn;
    free(s[0].lat);
    testhost_free(t);
}

typedef struct xthread {
    sink s;
    uint64_t want;
} xthread;

static int xt_done(void *user)
{
    xthread *x = user;
    return __atomic_load_n(&x->s.count, __ATOMIC_RELAXED) >= x->want;
}

/* A subscriber on loop 1 (its own thread): the producer is the test's loop 0. */
/* Flood for throughput, then one record at a time for latency (a record that
 * waits behind a full queue measures the queue, not the bus). */
static double cross_thread(uint64_t n, uint64_t paced, double cpn, double *p50, double *p99)
{
    testhost *t = started_host("[host]\nid = bench\nlog_level = warn\nthreads = 2\n");
    arbh_host *h = testhost_host(t);
    arbh_instance *remote = arbh_host_add_pseudo(h, "remote");
    remote->loop = h->loops[1];
    arb_ctx *ctx = testhost_ctx(t);
    int topic = arb_topic(ctx, "bench");
    xthread x = {{0}, n};
    x.s.lat = malloc(n * sizeof *x.s.lat);
    x.s.caplat = n;
    arb_subscribe(&remote->ctx, topic, on_msg_lat, &x.s);
    uint8_t msg[MSG_BYTES] = {0};
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t c = __rdtsc();
        memcpy(msg, &c, sizeof c);
        while (arb_publish(ctx, topic, i, msg, sizeof msg) == ARB_EFULL)
            ;
    }
    if (!testhost_run_until(t, xt_done, &x, 10000000000LL))
        fail("the other loop did not receive every record within 10 s");
    double dt = now_s() - t0;
    x.s.nlat = 0;
    for (uint64_t i = 0; i < paced; i++) {
        uint64_t before = __atomic_load_n(&x.s.count, __ATOMIC_ACQUIRE);
        uint64_t c = __rdtsc();
        memcpy(msg, &c, sizeof c);
        arb_publish(ctx, topic, i, msg, sizeof msg);
        while (__atomic_load_n(&x.s.count, __ATOMIC_ACQUIRE) == before)
            ;
    }
    qsort(x.s.lat, x.s.nlat, sizeof *x.s.lat, cmp_u64);
    *p50 = (double)x.s.lat[x.s.nlat / 2] / cpn;
    *p99 = (double)x.s.lat[x.s.nlat * 99 / 100] / cpn;
    free(x.s.lat);
    testhost_free(t);
    return (double)n / dt;
}

static void reload_pause(int n, double *p50, double *p99, double *total_p50, double *total_p99)
{
    testhost *t = started_host("[host]\nid = bench\nlog_level = warn\n"
                               "[plugin p]\nload = tp_seq.so\nrole = producer\nburst = 100\n"
                               "interval_us = 100\n"
                               "[plugin c]\nload = tp_seq.so\nrole = consumer\n");
    double *d = malloc((size_t)n * sizeof *d), *tot = malloc((size_t)n * sizeof *tot);
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s", testhost_plugin_path("tp_seq"));
    for (int i = 0; i < n; i++) {
        testhost_run(t, 1000000);
        double t0 = now_s();
        if (testhost_reload(t, i % 2 ? "c" : "p", path, err, sizeof err) != ARB_OK) {
            fprintf(stderr, "bench_bus: reload of %s failed: %s\n", path, err);
            exit(1);
        }
        tot[i] = (now_s() - t0) * 1e6;
        d[i] = (double)testhost_host(t)->last_reload_pause_ns / 1e3;
    }
    qsort(d, (size_t)n, sizeof *d, cmp_double);
    qsort(tot, (size_t)n, sizeof *tot, cmp_double);
    *total_p50 = tot[n / 2];
    *total_p99 = tot[n * 99 / 100];
    free(tot);
    *p50 = d[n / 2];
    *p99 = d[n * 99 / 100];
    free(d);
    testhost_free(t);
}

int main(void)
{
    const uint64_t n = 50000000;
    double cpn = cycles_per_ns();
    double base = baseline_direct(n);
    double one = bus_throughput(1, n);
    double four = bus_throughput(4, n / 4);
    printf("bench: baseline_direct_call %.0f msgs/s\n", base);
    printf("bench: bus_1sub_throughput %.0f msgs/s\n", one);
    printf("bench: bus_1sub_ns_per_delivery %.2f ns\n", 1e9 / one);
    printf("bench: bus_1sub_vs_direct_call %.2f ratio\n", one / base);
    printf("bench: bus_4sub_throughput %.0f msgs/s\n", four);
    printf("bench: bus_4sub_ns_per_delivery %.2f ns\n", 1e9 / (four * 4));
    double p50, p99;
    bus_latency(1, 2000000, cpn, &p50, &p99);
    printf("bench: bus_1sub_latency_p50 %.1f ns\nbench: bus_1sub_latency_p99 %.1f ns\n", p50, p99);
    bus_latency(4, 2000000, cpn, &p50, &p99);
    printf("bench: bus_4sub_latency_p50 %.1f ns\nbench: bus_4sub_latency_p99 %.1f ns\n", p50, p99);
    double xt = cross_thread(5000000, 20000, cpn, &p50, &p99);
    printf("bench: bus_cross_thread_throughput %.0f msgs/s\n", xt);
    printf("bench: bus_cross_thread_latency_p50 %.1f ns\nbench: bus_cross_thread_latency_p99 %.1f "
           "ns\n",
           p50, p99);
    double tp50, tp99;
    reload_pause(200, &p50, &p99, &tp50, &tp99);
    printf("bench: reload_pause_p50 %.1f us\nbench: reload_pause_p99 %.1f us\n", p50, p99);
    printf("bench: reload_total_p50 %.1f us\nbench: reload_total_p99 %.1f us\n", tp50, tp99);
    return 0;
}
