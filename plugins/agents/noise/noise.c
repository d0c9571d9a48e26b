/*
 * noise.c -- the noise trader plugin: a population of accounts that trade at
 * random around the generator's view of each venue, providing flow and some
 * resting liquidity. One instance runs `population` traders (accounts
 * account .. account+population-1), so a 5,000-trader market is one plugin.
 *
 *   [plugin noise]
 *   load = agent_noise.so
 *   account = 100000        ; first account
 *   population = 5000
 *   instruments = XA:BTCUSD XB:BTCUSD
 *   seed = 42
 *   rate_ppm = 2000         ; chance per trader per tick to act (1e6 = always)
 *   take_ppm = 300000       ; share of actions that are IOC takers
 *   qty_min = 1             ; lots
 *   qty_max = 5
 *   offset_ticks = 10       ; passive orders 1..N ticks behind, takers 0..N through
 *   max_position = 100      ; lots per trader and instrument
 *   ttl_ms = 500            ; passive orders are cancelled after this long
 *
 * Not here: the decision itself (noise_strategy.c), bookkeeping (arb/agent.h).
 */
#include <arb/agent.h>
#include <stddef.h>
#include <stdlib.h>

#include "noise_strategy.h"

#define NOISE_STATE_VERSION 1u

typedef struct noise_agent {
    arb_agent agent;
    noise_params p;
    uint32_t rate_ppm;
    /* rate as a threshold on a raw 64-bit draw: one compare per trader and
     * tick, which is most of this agent's cost at 5,000 traders */
    uint64_t rate_threshold;
} noise_agent;

/* A trader's drawn order, waiting for its position to be read. */
typedef struct noise_pending {
    uint32_t acct;
    int ix;
    noise_order o;
} noise_pending;

/* Sends the drawn order if it keeps the account within its limit. */
static void finish(noise_agent *n, const noise_pending *q)
{
    arb_agent *a = &n->agent;
    if (!noise_fits(&n->p, a->instr[q->ix].spec.lot, arb_agent_pos(a, q->acct, q->ix)->position,
                    &q->o))
        return;
    arb_agent_order_req r = {q->acct, q->ix,      q->o.side, ARB_ORD_LIMIT, q->o.tif,
                             0,       q->o.price, q->o.qty,  q->o.ttl_ns,   0};
    arb_agent_send(a, &r);
}

enum { NOISE_AHEAD = 8 }; /* a power of two */

static void on_tick(void *user, const arb_tick *tick)
{
    (void)tick;
    noise_agent *n = user;
    arb_agent *a = &n->agent;
    /* The draws run first and the position checks NOISE_AHEAD traders
     * behind them: a trader's position (one of thousands, 2 KB apart) is a
     * cache miss, so its line is fetched while the next traders draw. The
     * outcome is noise_decide's, trader by trader and in the same order: the
     * draws never depend on a position, and nothing a trader sends changes
     * a position or a reference before the tick ends (what is published is
     * delivered after this callback). The per-trader draw runs on a copy of
     * the generator that stays in registers; the state goes back to the
     * agent before anything else draws from it. */
    noise_pending q[NOISE_AHEAD];
    uint32_t head = 0, count = 0;
    arb_rng g = a->rng;
    for (uint32_t acct = 0; acct < a->n_accounts; acct++) {
        if (arb_rng_next(&g) >= n->rate_threshold && n->rate_ppm < 1000000)
            continue;
        a->rng = g;
        int ix = (int)arb_rng_below(&a->rng, a->n_instruments);
        const arb_instrument *spec = &a->instr[ix].spec;
        noise_pending *p = &q[(head + count) % NOISE_AHEAD];
        if (noise_draw(&a->rng, &n->p, arb_agent_reference(a, ix), spec->tick, spec->lot, &p->o)) {
            p->acct = acct;
            p->ix = ix;
            __builtin_prefetch(arb_agent_pos(a, acct, ix));
            if (++count > NOISE_AHEAD - 1) {
                finish(n, &q[head]);
                head = (head + 1) % NOISE_AHEAD;
                count--;
            }
        }
        g = a->rng;
    }
    a->rng = g;
    for (; count; count--, head = (head + 1) % NOISE_AHEAD)
        finish(n, &q[head]);
}

static int read_params(arb_ctx *ctx, noise_agent *n)
{
    int64_t rate, take, qmin, qmax, off, maxpos, ttl;
    int rc;
    if ((rc = arb_cfg_int(ctx, "rate_ppm", 2000, 0, 1000000, &rate)) ||
        (rc = arb_cfg_int(ctx, "take_ppm", 300000, 0, 1000000, &take)) ||
        (rc = arb_cfg_int(ctx, "qty_min", 1, 1, 1000000, &qmin)) ||
        (rc = arb_cfg_int(ctx, "qty_max", 5, 1, 1000000, &qmax)) ||
        (rc = arb_cfg_int(ctx, "offset_ticks", 10, 1, 100000, &off)) ||
        (rc = arb_cfg_int(ctx, "max_position", 100, 0, INT32_MAX, &maxpos)) ||
        (rc = arb_cfg_int(ctx, "ttl_ms", 500, 1, 86400000, &ttl)))
        return rc;
    if (qmax < qmin)
        return arb_cfg_reject(ctx, "qty_max", "qty_max is below qty_min");
    n->rate_ppm = (uint32_t)rate;
    n->rate_threshold = (uint64_t)rate * (UINT64_MAX / 1000000);
    n->p = (noise_params){(uint32_t)take, qmin, qmax, off, maxpos, ttl * 1000000};
    return ARB_OK;
}

/* The common keys (arb_agent_init), then the strategy's own. */
static int configure(arb_ctx *ctx, void *n) { return read_params(ctx, n); }

static int noise_create(arb_ctx *ctx, void **self)
{
    _Static_assert(offsetof(noise_agent, agent) == 0, "arb_agent must be the first member");
    return arb_agent_plugin_create(ctx, self, sizeof(noise_agent), configure);
}

static int noise_start(void *self)
{
    noise_agent *n = self;
    arb_agent_hooks h = {.on_tick = on_tick};
    return arb_agent_start(&n->agent, &h, n);
}

static void noise_stop(void *self) { arb_agent_stop(self); }

static void noise_destroy(void *self)
{
    noise_agent *n = self;
    arb_agent_free(&n->agent);
    free(n);
}

static int noise_save(void *self, void **bytes, size_t *len)
{
    noise_agent *n = self;
    return arb_agent_save(&n->agent, NULL, 0, bytes, len);
}

static int noise_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    noise_agent *n = self;
    const void *extra;
    size_t extra_len;
    if (version != NOISE_STATE_VERSION)
        return ARB_EREFUSED;
    return arb_agent_restore(&n->agent, bytes, len, &extra, &extra_len);
}

static const char *const noise_publishes[] = {"order_commands", NULL};
static const char *const noise_subscribes[] = {"system_ticks", "order_events", "market_data",
                                               "market_events", NULL};

static const arb_plugin noise_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "agent_noise",
    .version = "1.0.0",
    .state_version = NOISE_STATE_VERSION,
    .publishes = noise_publishes,
    .subscribes = noise_subscribes,
    .create = noise_create,
    .start = noise_start,
    .stop = noise_stop,
    .destroy = noise_destroy,
    .save = noise_save,
    .restore = noise_restore,
};

ARB_PLUGIN_DEFINE(noise_plugin)
