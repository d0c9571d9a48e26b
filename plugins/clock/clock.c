/*
 * clock.c -- the clock plugin: owns time and publishes system_ticks.
 *
 *   [plugin clock]
 *   load = clock.so
 *   mode = sim            ; sim: simulated time; wall: a tick every interval
 *   interval_ms = 10      ; simulated (sim) or real (wall) time between ticks
 *   speed = 0             ; sim only: N x real time, 0 = as fast as possible
 *   ticks = 0             ; stop the host (exit 0) after this many ticks
 *   start_time = 1704067200 ; sim only: seconds since the epoch of tick 1
 *
 * In sim mode the clock sets the host's simulated time (arb_set_time) before
 * each tick, so arb_now() everywhere is the tick's time: tick k is at
 * start_time + (k-1) x interval. In wall mode sim_ns is the wall clock and
 * the host's time is left alone (arb_now() stays the wall clock).
 *
 * As fast as possible means "the next tick once the previous tick's work is
 * done". The clock publishes each tick from a one-shot zero-delay timer; a
 * publish outside any callback makes the in-process bus deliver at once and
 * drain everything that delivery publishes in turn (generator -> agents ->
 * matcher -> agents ...) on this loop before publish returns. So the next
 * timer fires only after the cascade settled. That holds for instances on
 * the clock's loop; a deterministic run puts every sim instance on one loop
 * (conf.d/sim.ini does). Instances on other loops still get every tick in
 * order, they just may lag.
 *
 * Paced modes (wall, and sim at N x) run off a repeating timer of one tick
 * period, but an event loop's timers can be coarser than that (libevent
 * rounds to its clock, often 1-4 ms). So each firing publishes every tick
 * that is due by the real time elapsed since start (at least one, at most
 * 1024), and the long-run rate is right whatever the timer resolution.
 *
 * A wall clock that starts cold in a run the transport stores (Kafka, the
 * journal) goes on from the newest stored tick instead of starting again at
 * 1: subscribers drop a tick whose number they have seen (a redelivery), so
 * after a restart of the clock's host, a clock counting from 1 had every
 * agent ignore its ticks until the count passed the old clock's, minutes of
 * silence while the market moved. A sim clock keeps counting from 1: its
 * ticks are its simulated time.
 *
 * Not here: what anyone does with a tick. This file reads the wall clock
 * (wall mode, and the informational wall_ns field); nothing else in the
 * simulation does.
 */
#include <arb/plugin.h>
#include <arb/wire.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLOCK_STATE_VERSION 1u
#define CLOCK_STATE_LEN 24u

typedef struct sim_clock {
    arb_ctx *ctx;
    int mode;            /* ARB_TICK_WALL or ARB_TICK_SIM */
    int64_t interval_ns; /* between ticks, simulated (sim) or real (wall) */
    uint32_t speed;      /* sim: N x real time, 0: max */
    uint64_t limit;      /* ticks, 0: unlimited */
    int64_t start_ns;    /* sim time of tick 1 */
    uint64_t seq;        /* last tick published */
    int timer;
    int finished;
    int64_t paced_from; /* monotonic ns when pacing started */
    uint64_t paced_seq; /* seq at that moment */
    arb_counter *ticks_metric;
    arb_counter *refused_metric;
} sim_clock;

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_timer(void *user);

/* Publishes tick seq+1. Returns 0 if it went out, or the bus's refusal
 * (then the same tick is retried at the next timer). */
static int publish_tick(sim_clock *c)
{
    arb_tick t;
    memset(&t, 0, sizeof t);
    t.seq = c->seq + 1;
    t.mode = (uint8_t)c->mode;
    t.speed = c->speed;
    t.wall_ns = wall_ns();
    if (c->mode == ARB_TICK_SIM) {
        t.sim_ns = c->start_ns + (int64_t)(t.seq - 1) * c->interval_ns;
        arb_set_time(c->ctx, t.sim_ns);
    } else {
        t.sim_ns = t.wall_ns;
    }
    uint8_t buf[ARB_TICK_LEN];
    uint32_t n = arb_tick_encode(&t, buf, sizeof buf);
    /* Count first: the delivery below may run a whole tick's work, and a
     * reload of the clock from inside it must see this tick as sent. */
    c->seq = t.seq;
    int rc = arb_publish(c->ctx, ARB_TOPIC_SYSTEM_TICKS, 0, buf, n);
    if (rc) {
        c->seq--;
        arb_counter_add(c->refused_metric, 1);
        return rc;
    }
    arb_counter_add(c->ticks_metric, 1);
    return ARB_OK;
}

/* Ticks due in a paced mode by the real time elapsed (>= 1 per firing). */
static uint64_t ticks_due(const sim_clock *c)
{
    __int128 elapsed = mono_ns() - c->paced_from;
    uint64_t scale = c->mode == ARB_TICK_SIM ? c->speed : 1;
    uint64_t due = c->paced_seq + (uint64_t)(elapsed * scale / c->interval_ns);
    uint64_t n = due > c->seq ? due - c->seq : 1;
    return n > 1024 ? 1024 : n;
}

static void on_timer(void *user)
{
    sim_clock *c = user;
    if (c->finished)
        return;
    uint64_t n = c->mode == ARB_TICK_SIM && c->speed == 0 ? 1 : ticks_due(c);
    for (uint64_t k = 0; k < n && !(c->limit && c->seq >= c->limit); k++)
        if (publish_tick(c))
            break;
    if (c->limit && c->seq >= c->limit) {
        c->finished = 1;
        if (c->timer >= 0 && (c->mode == ARB_TICK_WALL || c->speed))
            arb_timer_stop(c->ctx, c->timer);
        c->timer = -1;
        arb_info(c->ctx, "%llu ticks done, stopping the host", (unsigned long long)c->seq);
        arb_shutdown(c->ctx, 0);
        return;
    }
    if (c->mode == ARB_TICK_SIM && c->speed == 0)
        c->timer = arb_timer_start(c->ctx, 0, 0, on_timer, c);
}

static int clock_create(arb_ctx *ctx, void **self)
{
    const char *mode;
    int64_t interval_ms, speed, ticks, start_s;
    int rc;
    if ((rc = arb_cfg_str(ctx, "mode", "sim", &mode)) ||
        (rc = arb_cfg_int(ctx, "interval_ms", 10, 1, 86400000, &interval_ms)) ||
        (rc = arb_cfg_int(ctx, "speed", 0, 0, 1000000, &speed)) ||
        (rc = arb_cfg_int(ctx, "ticks", 0, 0, INT64_MAX, &ticks)) ||
        (rc = arb_cfg_int(ctx, "start_time", 1704067200, 1, 9000000000, &start_s)))
        return rc;
    int m;
    if (!strcmp(mode, "sim"))
        m = ARB_TICK_SIM;
    else if (!strcmp(mode, "wall"))
        m = ARB_TICK_WALL;
    else
        return arb_cfg_reject(ctx, "mode", "'%s': expected sim or wall", mode);
    if (m == ARB_TICK_WALL && speed)
        return arb_cfg_reject(ctx, "speed",
                              "wall mode runs at real time; drop speed or use "
                              "mode = sim");
    sim_clock *c = calloc(1, sizeof *c);
    if (!c)
        return ARB_ENOMEM;
    c->ctx = ctx;
    c->mode = m;
    c->interval_ns = interval_ms * 1000000;
    c->speed = (uint32_t)speed;
    c->limit = (uint64_t)ticks;
    c->start_ns = start_s * 1000000000;
    c->timer = -1;
    c->ticks_metric = arb_counter_new(ctx, "clock_ticks_total", NULL, "Ticks published");
    c->refused_metric =
        arb_counter_new(ctx, "clock_ticks_refused_total", NULL, "Ticks the bus refused (retried)");
    *self = c;
    return ARB_OK;
}

/* The newest tick the transport stores, read once at a cold start of a wall
 * clock, so the numbers go on rising across restarts of its host. */
static void resume_from_stored(sim_clock *c)
{
    const arb_host_api *api = c->ctx->api;
    if (api->size < offsetof(arb_host_api, partition_of) + sizeof api->partition_of ||
        !api->read_last || !api->partition_of)
        return; /* a host (or a test's fake) that stores nothing */
    int32_t part = 0;
    void *bytes = NULL;
    size_t len = 0;
    int64_t offset = -1;
    int rc = arb_partition_of(c->ctx, ARB_TOPIC_SYSTEM_TICKS, 0, 5 * 1000000000ll, &part);
    if (rc == ARB_OK)
        rc = arb_read_last(c->ctx, ARB_TOPIC_SYSTEM_TICKS, part, 5 * 1000000000ll, &bytes, &len,
                           &offset);
    arb_tick t;
    if (rc == ARB_OK && arb_tick_decode(bytes, len, &t) == ARB_OK && t.seq > c->seq) {
        c->seq = t.seq;
        arb_info(c->ctx, "resuming after the stored tick %llu", (unsigned long long)t.seq);
    } else if (rc != ARB_OK && rc != ARB_ENOENT) {
        arb_warn(c->ctx,
                 "could not read the newest stored tick (%d): counting from 1, and subscribers "
                 "that saw higher numbers ignore ticks until the count passes them",
                 rc);
    }
    free(bytes);
}

static int clock_start(void *self)
{
    sim_clock *c = self;
    if (c->mode == ARB_TICK_WALL && c->seq == 0)
        resume_from_stored(c);
    if (c->limit && c->seq >= c->limit)
        return ARB_OK; /* restored after the last tick: nothing left to do */
    c->paced_from = mono_ns();
    c->paced_seq = c->seq;
    if (c->mode == ARB_TICK_SIM) {
        /* Until tick 1, "now" is already simulated: anything a plugin
         * stamps before it is reproducible too. */
        if (c->seq == 0)
            arb_set_time(c->ctx, c->start_ns);
        if (c->speed == 0)
            c->timer = arb_timer_start(c->ctx, 0, 0, on_timer, c);
        else
            c->timer = arb_timer_start(c->ctx,
                                       (uint64_t)(c->interval_ns / c->speed) < 1000
                                           ? 1000
                                           : (uint64_t)(c->interval_ns / c->speed),
                                       1, on_timer, c);
    } else {
        c->timer = arb_timer_start(c->ctx, (uint64_t)c->interval_ns, 1, on_timer, c);
    }
    return c->timer < 0 ? c->timer : ARB_OK;
}

static void clock_stop(void *self)
{
    sim_clock *c = self;
    c->timer = -1; /* the host removes the timer */
}

static void clock_destroy(void *self) { free(self); }

/* State: the last tick's number, so a reloaded clock neither repeats nor
 * skips a tick; the interval travels along to refuse a reconfigured one. */
static int clock_save(void *self, void **bytes, size_t *len)
{
    sim_clock *c = self;
    uint8_t *p = malloc(CLOCK_STATE_LEN);
    if (!p)
        return ARB_ENOMEM;
    arb_put_u64(p, c->seq);
    arb_put_i64(p + 8, c->start_ns);
    arb_put_i64(p + 16, c->interval_ns);
    *bytes = p;
    *len = CLOCK_STATE_LEN;
    return ARB_OK;
}

static int clock_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    sim_clock *c = self;
    const uint8_t *p = bytes;
    if (version != CLOCK_STATE_VERSION || len != CLOCK_STATE_LEN)
        return ARB_EREFUSED;
    if (arb_get_i64(p + 8) != c->start_ns || arb_get_i64(p + 16) != c->interval_ns) {
        arb_warn(c->ctx, "refusing state: start_time or interval changed");
        return ARB_EREFUSED;
    }
    c->seq = arb_get_u64(p);
    return ARB_OK;
}

static const char *const clock_publishes[] = {"system_ticks", NULL};
static const char *const clock_subscribes[] = {NULL};

static const arb_plugin clock_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "clock",
    .version = "1.0.0",
    .state_version = CLOCK_STATE_VERSION,
    .publishes = clock_publishes,
    .subscribes = clock_subscribes,
    .create = clock_create,
    .start = clock_start,
    .stop = clock_stop,
    .destroy = clock_destroy,
    .save = clock_save,
    .restore = clock_restore,
};

ARB_PLUGIN_DEFINE(clock_plugin)
