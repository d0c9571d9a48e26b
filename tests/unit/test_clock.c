/*
 * test_clock.c -- the clock plugin against the fake host: tick numbering and
 * simulated time, max speed (one tick per zero-delay timer), N x speed and
 * wall mode timers, `ticks = N` shutting the host down, retries when the bus
 * refuses, config errors, and save/restore across a reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arb/plugin.h>
#include <arb/wire.h>

#include "test_agent_fakehost.h"

const arb_plugin *arb_plugin_entry(void);

#define START_S 1704067200ll
#define NS 1000000000ll

typedef struct fixture {
    fakehost *fh;
    fh_ctx *ctx;
    const arb_plugin *p;
    void *self;
} fixture;

static fixture *make(const char *const *kv)
{
    fixture *f = calloc(1, sizeof *f);
    f->fh = fh_new();
    f->ctx = fh_ctx_new(f->fh, "clock");
    for (; kv && kv[0]; kv += 2)
        fh_set_plugin(f->fh, "clock", kv[0], kv[1]);
    f->p = arb_plugin_entry();
    return f;
}

static void destroy(fixture *f)
{
    if (f->self) {
        f->p->stop(f->self);
        f->p->destroy(f->self);
    }
    fh_free(f->fh);
    free(f->ctx);
    free(f);
}

static arb_tick tick_at(fixture *f, size_t k)
{
    fh_msg *m = fh_nth(f->fh, ARB_TOPIC_SYSTEM_TICKS, k);
    assert_non_null(m);
    arb_tick t;
    assert_int_equal(arb_tick_decode(m->data, m->len, &t), ARB_OK);
    return t;
}

static void fire_next(fixture *f)
{
    int id = fh_next_timer(f->fh);
    assert_true(id >= 0);
    fh_fire(f->fh, id);
}

static void max_speed_publishes_one_tick_per_zero_delay_timer(void **state)
{
    (void)state;
    const char *kv[] = {"interval_ms", "5", NULL};
    fixture *f = make(kv);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_OK);
    assert_int_equal(f->p->start(f->self), ARB_OK);
    /* Before tick 1, now is already the simulated start. */
    assert_int_equal(f->fh->now, START_S * NS);
    int id = fh_next_timer(f->fh);
    assert_int_equal(f->fh->timers[id].interval_ns, 0);
    assert_int_equal(f->fh->timers[id].repeat, 0);
    for (int i = 0; i < 3; i++)
        fire_next(f);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_SYSTEM_TICKS), 3);
    for (size_t k = 0; k < 3; k++) {
        arb_tick t = tick_at(f, k);
        assert_int_equal(t.seq, k + 1);
        assert_int_equal(t.sim_ns, START_S * NS + (int64_t)k * 5000000);
        assert_int_equal(t.mode, ARB_TICK_SIM);
        assert_int_equal(t.speed, 0);
    }
    assert_int_equal(f->fh->now, START_S * NS + 2 * 5000000);
    destroy(f);
}

static void tick_limit_shuts_the_host_down_after_the_last_tick(void **state)
{
    (void)state;
    const char *kv[] = {"ticks", "4", NULL};
    fixture *f = make(kv);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_OK);
    assert_int_equal(f->p->start(f->self), ARB_OK);
    for (int i = 0; i < 3; i++)
        fire_next(f);
    assert_int_equal(f->fh->shutdown_called, 0);
    fire_next(f);
    assert_int_equal(f->fh->shutdown_called, 1);
    assert_int_equal(f->fh->shutdown_code, 0);
    assert_int_equal(fh_next_timer(f->fh), -1); /* no fifth tick */
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_SYSTEM_TICKS), 4);
    destroy(f);
}

static void speed_n_ticks_on_a_timer_of_interval_over_n(void **state)
{
    (void)state;
    const char *kv[] = {"interval_ms", "10", "speed", "100", "ticks", "2", NULL};
    fixture *f = make(kv);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_OK);
    assert_int_equal(f->p->start(f->self), ARB_OK);
    int id = fh_next_timer(f->fh);
    assert_int_equal(f->fh->timers[id].interval_ns, 100000);
    assert_int_equal(f->fh->timers[id].repeat, 1);
    fh_fire(f->fh, id);
    fh_fire(f->fh, id);
    assert_int_equal(tick_at(f, 1).sim_ns, START_S * NS + 10000000);
    assert_int_equal(tick_at(f, 1).speed, 100);
    assert_int_equal(f->fh->shutdown_called, 1);
    assert_false(f->fh->timers[id].active); /* the repeating timer was stopped */
    destroy(f);
}

static void wall_mode_ticks_in_real_time_and_leaves_now_alone(void **state)
{
    (void)state;
    const char *kv[] = {"mode", "wall", "interval_ms", "250", NULL};
    fixture *f = make(kv);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_OK);
    assert_int_equal(f->p->start(f->self), ARB_OK);
    int id = fh_next_timer(f->fh);
    assert_int_equal(f->fh->timers[id].interval_ns, 250000000);
    assert_int_equal(f->fh->timers[id].repeat, 1);
    fh_fire(f->fh, id);
    arb_tick t = tick_at(f, 0);
    assert_int_equal(t.mode, ARB_TICK_WALL);
    assert_int_equal(t.sim_ns, t.wall_ns);
    assert_true(t.wall_ns > START_S * NS);
    assert_false(f->fh->time_set);
    destroy(f);
}

static void refused_tick_is_retried_with_the_same_number(void **state)
{
    (void)state;
    fixture *f = make(NULL);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_OK);
    assert_int_equal(f->p->start(f->self), ARB_OK);
    f->fh->publish_fails = 1;
    fire_next(f);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_SYSTEM_TICKS), 0);
    fire_next(f);
    assert_int_equal(tick_at(f, 0).seq, 1);
    destroy(f);
}

static void bad_mode_and_wall_speed_are_rejected(void **state)
{
    (void)state;
    const char *kv1[] = {"mode", "lunar", NULL};
    fixture *f = make(kv1);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_EINVAL);
    assert_non_null(strstr(f->fh->last_error, "mode"));
    destroy(f);
    const char *kv2[] = {"mode", "wall", "speed", "3", NULL};
    f = make(kv2);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_EINVAL);
    assert_non_null(strstr(f->fh->last_error, "speed"));
    destroy(f);
}

static void reloaded_clock_continues_the_sequence(void **state)
{
    (void)state;
    const char *kv[] = {"ticks", "5", NULL};
    fixture *f = make(kv);
    assert_int_equal(f->p->create(&f->ctx->ctx, &f->self), ARB_OK);
    assert_int_equal(f->p->start(f->self), ARB_OK);
    fire_next(f);
    fire_next(f);
    void *bytes;
    size_t len;
    assert_int_equal(f->p->save(f->self, &bytes, &len), ARB_OK);
    void *nw;
    assert_int_equal(f->p->create(&f->ctx->ctx, &nw), ARB_OK);
    assert_int_equal(f->p->restore(nw, f->p->state_version, bytes, len), ARB_OK);
    /* The old instance goes away with its timer, as the host does it. */
    f->p->stop(f->self);
    f->p->destroy(f->self);
    for (int i = 0; i < f->fh->ntimers; i++)
        f->fh->timers[i].active = 0;
    f->self = nw;
    assert_int_equal(f->p->start(nw), ARB_OK);
    fire_next(f);
    assert_int_equal(tick_at(f, 2).seq, 3);
    fire_next(f);
    fire_next(f);
    assert_int_equal(f->fh->shutdown_called, 1);
    assert_int_equal(fh_count(f->fh, ARB_TOPIC_SYSTEM_TICKS), 5);
    /* A clock with another interval refuses the state. */
    fh_set_plugin(f->fh, "clock", "interval_ms", "7");
    void *other;
    assert_int_equal(f->p->create(&f->ctx->ctx, &other), ARB_OK);
    assert_int_equal(f->p->restore(other, f->p->state_version, bytes, len), ARB_EREFUSED);
    assert_int_equal(f->p->restore(other, 99, bytes, len), ARB_EREFUSED);
    f->p->destroy(other);
    free(bytes);
    destroy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(max_speed_publishes_one_tick_per_zero_delay_timer),
        cmocka_unit_test(tick_limit_shuts_the_host_down_after_the_last_tick),
        cmocka_unit_test(speed_n_ticks_on_a_timer_of_interval_over_n),
        cmocka_unit_test(wall_mode_ticks_in_real_time_and_leaves_now_alone),
        cmocka_unit_test(refused_tick_is_retried_with_the_same_number),
        cmocka_unit_test(bad_mode_and_wall_speed_are_rejected),
        cmocka_unit_test(reloaded_clock_continues_the_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
