/*
 * market_maker.c -- the inventory-aware market maker plugin: on every tick
 * it keeps one bid and one ask per instrument around the generator's view
 * of the venue, leaning against its position (mm_quote.c), replacing quotes
 * as the reference moves. A venue that charges makers (its instrument's
 * maker_fee_bps, or the account's fee tier) gets quotes wider by the fee.
 *
 *   [plugin mm_xa]
 *   load = agent_market_maker.so
 *   account = 10
 *   instruments = XA:BTCUSD
 *   half_spread_ticks = 2
 *   qty = 5                 ; lots per quote
 *   max_position = 50       ; lots per instrument
 *   skew_ticks = 2          ; how far quotes lean at a full position
 *
 * Build variants (used by the hot-reload test, and a pattern for yours):
 *   -DMM_EXTRA_TICKS=N      quote N ticks wider than configured
 *   -DMM_VARIANT=N          tag every quote's client_ref with N << 32
 *   -DMM_STATE_VERSION=N    a state format the current build cannot read:
 *                           restore refuses other versions
 * Not here: quote arithmetic (mm_quote.c), bookkeeping (arb/agent.h).
 */
#include <arb/agent.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mm_quote.h"

#ifndef MM_EXTRA_TICKS
#define MM_EXTRA_TICKS 0
#endif
#ifndef MM_VARIANT
#define MM_VARIANT 0
#endif
#ifndef MM_STATE_VERSION
#define MM_STATE_VERSION 1u
#endif
#define MM_STR2(x) #x
#define MM_STR(x) MM_STR2(x)

typedef struct market_maker {
    arb_agent agent;
    mm_params p;
    uint64_t bid_id[ARB_AGENT_MAX_INSTRUMENTS];
    uint64_t ask_id[ARB_AGENT_MAX_INSTRUMENTS];
} market_maker;

static void on_tick(void *user, const arb_tick *tick)
{
    (void)tick;
    market_maker *m = user;
    arb_agent *a = &m->agent;
    uint64_t tag = ((uint64_t)MM_VARIANT << 32) | (uint64_t)m->p.half_spread_ticks;
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        const arb_instrument *spec = &a->instr[i].spec;
        int64_t ref = arb_agent_reference(a, (int)i);
        mm_params p = m->p;
        /* A positive maker fee (the venue's, for this account) widens the
         * quote by whole ticks until each fill still earns the configured
         * half spread; a rebate leaves it as configured. */
        p.half_spread_ticks += mm_fee_ticks(ref, spec->tick, a->instr[i].maker_fee_cbps);
        mm_quote q;
        mm_quote_compute(&p, ref, spec->tick, spec->lot, a->tot[i].position, &q);
        arb_agent_keep_quote(a, (int)i, ARB_SIDE_BUY, &m->bid_id[i], q.bid_px, q.bid_qty, tag);
        arb_agent_keep_quote(a, (int)i, ARB_SIDE_SELL, &m->ask_id[i], q.ask_px, q.ask_qty, tag);
    }
}

static void report(void *user, uint64_t out[4])
{
    market_maker *m = user;
    out[0] = MM_VARIANT;
    out[1] = (uint64_t)m->p.half_spread_ticks;
}

static int read_params(arb_ctx *ctx, market_maker *m)
{
    int64_t hs, qty, maxpos, skew;
    int rc;
    if ((rc = arb_cfg_int(ctx, "half_spread_ticks", 2, 1, 1000000, &hs)) ||
        (rc = arb_cfg_int(ctx, "qty", 5, 1, 1000000, &qty)) ||
        (rc = arb_cfg_int(ctx, "max_position", 50, 1, INT32_MAX, &maxpos)) ||
        (rc = arb_cfg_int(ctx, "skew_ticks", 2, 0, 1000000, &skew)))
        return rc;
    m->p = (mm_params){hs + MM_EXTRA_TICKS, qty, maxpos, skew};
    return ARB_OK;
}

/* The common keys (arb_agent_init), then the strategy's own. */
static int configure(arb_ctx *ctx, void *m) { return read_params(ctx, m); }

static int mm_create(arb_ctx *ctx, void **self)
{
    _Static_assert(offsetof(market_maker, agent) == 0, "arb_agent must be the first member");
    return arb_agent_plugin_create(ctx, self, sizeof(market_maker), configure);
}

static int mm_start(void *self)
{
    market_maker *m = self;
    arb_agent_hooks h = {.on_tick = on_tick, .report = report};
    return arb_agent_start(&m->agent, &h, m);
}

static void mm_stop(void *self) { arb_agent_stop(self); }

static void mm_destroy(void *self)
{
    market_maker *m = self;
    arb_agent_free(&m->agent);
    free(m);
}

/* The strategy's own state: which resting orders are its quotes. */
static int mm_save(void *self, void **bytes, size_t *len)
{
    market_maker *m = self;
    uint8_t extra[ARB_AGENT_MAX_INSTRUMENTS * 16];
    for (uint32_t i = 0; i < m->agent.n_instruments; i++) {
        arb_put_u64(extra + 16 * i, m->bid_id[i]);
        arb_put_u64(extra + 16 * i + 8, m->ask_id[i]);
    }
    return arb_agent_save(&m->agent, extra, 16u * m->agent.n_instruments, bytes, len);
}

static int mm_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    market_maker *m = self;
    const void *extra;
    size_t extra_len;
    if (version != MM_STATE_VERSION) {
        arb_warn(m->agent.ctx, "refusing state version %u (this build reads %u)", version,
                 (unsigned)MM_STATE_VERSION);
        return ARB_EREFUSED;
    }
    /* A refusal leaves only this new instance half-restored; the host then
     * drops it and the old one trades on. */
    size_t need = 16u * m->agent.n_instruments;
    int rc = arb_agent_restore(&m->agent, bytes, len, &extra, &extra_len);
    if (rc)
        return rc;
    if (extra_len != need)
        return ARB_EREFUSED;
    for (uint32_t i = 0; i < m->agent.n_instruments; i++) {
        m->bid_id[i] = arb_get_u64((const uint8_t *)extra + 16 * i);
        m->ask_id[i] = arb_get_u64((const uint8_t *)extra + 16 * i + 8);
    }
    return ARB_OK;
}

static const char *const mm_publishes[] = {"order_commands", NULL};
static const char *const mm_subscribes[] = {"system_ticks", "order_events", "market_data",
                                            "market_events", NULL};

static const arb_plugin market_maker_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "agent_market_maker",
    .version = "1.0.0+v" MM_STR(MM_VARIANT),
    .state_version = MM_STATE_VERSION,
    .publishes = mm_publishes,
    .subscribes = mm_subscribes,
    .create = mm_create,
    .start = mm_start,
    .stop = mm_stop,
    .destroy = mm_destroy,
    .save = mm_save,
    .restore = mm_restore,
};

ARB_PLUGIN_DEFINE(market_maker_plugin)
