/*
 * adaptive.c -- the adaptive agent: a market maker that learns, while it
 * trades, which quoting half-spread pays best. Time is cut into episodes of
 * `episode_ticks`; each episode quotes with one arm's half-spread, and its
 * reward is the PnL made over the episode (exact, marked to market) minus a
 * penalty for the inventory it ends with. An epsilon-greedy bandit
 * (bandit.c) picks the next arm. What it learned (pulls and reward sums per
 * arm) and where it is in the episode survive a hot reload.
 *
 *   [plugin adaptive]
 *   load = agent_adaptive.so
 *   account = 30
 *   instruments = XB:BTCUSD     ; quotes every listed book with the same arm
 *   arms = 1 2 3 5 8            ; half-spreads in ticks, one arm each
 *   episode_ticks = 50
 *   epsilon_ppm = 100000        ; explore 10% of episodes
 *   qty = 2                     ; lots per quote
 *   max_position = 20           ; lots per instrument
 *   inventory_penalty_ticks = 1 ; reward -= this x tick x |position| at episode end
 */
#include <arb/agent.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bandit.h"

#define ADAPTIVE_STATE_VERSION 1u
#define ADAPTIVE_EXTRA_FIXED 32u

typedef struct adaptive {
    arb_agent agent;
    bandit model;
    uint32_t epsilon_ppm;
    int64_t episode_ticks, qty, max_position, penalty_ticks;
    /* the episode under way */
    uint32_t arm;
    int64_t ticks_in_episode;
    int64_t pnl_at_start;
    uint64_t bid_id[ARB_AGENT_MAX_INSTRUMENTS], ask_id[ARB_AGENT_MAX_INSTRUMENTS];
} adaptive;

static int64_t episode_reward(adaptive *s)
{
    arb_agent *a = &s->agent;
    __int128 r = (__int128)arb_agent_total_pnl(a) - s->pnl_at_start;
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        int64_t pos = a->tot[i].position;
        r -= (__int128)s->penalty_ticks * a->instr[i].spec.tick * (pos < 0 ? -pos : pos);
    }
    return r > INT64_MAX ? INT64_MAX : r < INT64_MIN ? INT64_MIN : (int64_t)r;
}

static void quote(adaptive *s)
{
    arb_agent *a = &s->agent;
    int64_t half = s->model.value[s->arm];
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        const arb_instrument *spec = &a->instr[i].spec;
        int64_t ref = arb_agent_reference(a, (int)i);
        int64_t center = arb_agent_round_down(ref + spec->tick / 2, spec->tick);
        int64_t pos = a->tot[i].position, limit = s->max_position * spec->lot;
        int64_t size = s->qty * spec->lot;
        int64_t bid = ref ? center - half * spec->tick : 0;
        int64_t ask = ref ? center + half * spec->tick : 0;
        arb_agent_keep_quote(a, (int)i, ARB_SIDE_BUY, &s->bid_id[i], bid,
                             pos + size <= limit ? size : 0, s->arm);
        arb_agent_keep_quote(a, (int)i, ARB_SIDE_SELL, &s->ask_id[i], ask,
                             pos - size >= -limit ? size : 0, s->arm);
    }
}

static void on_tick(void *user, const arb_tick *tick)
{
    (void)tick;
    adaptive *s = user;
    if (++s->ticks_in_episode >= s->episode_ticks) {
        bandit_update(&s->model, s->arm, episode_reward(s));
        s->arm = bandit_choose(&s->model, &s->agent.rng, s->epsilon_ppm);
        s->ticks_in_episode = 0;
        s->pnl_at_start = arb_agent_total_pnl(&s->agent);
    }
    quote(s);
}

static void report(void *user, uint64_t out[4])
{
    adaptive *s = user;
    out[0] = s->model.episodes;
    out[1] = s->arm;
    out[2] = bandit_fingerprint(&s->model);
    out[3] = bandit_best(&s->model);
}

typedef struct arm_list {
    int64_t v[BANDIT_MAX_ARMS];
    uint32_t n;
    int bad;
} arm_list;

static int add_arm(void *u, const char *tok)
{
    arm_list *l = u;
    char *end;
    long long x = strtoll(tok, &end, 10);
    if (*end || end == tok || x < 1 || x > 100000 || l->n == BANDIT_MAX_ARMS) {
        l->bad = 1;
        return 1;
    }
    l->v[l->n++] = x;
    return 0;
}

static int read_params(arb_ctx *ctx, adaptive *s)
{
    const char *arms;
    int64_t ep, eps, qty, maxpos, pen;
    int rc;
    if ((rc = arb_cfg_str(ctx, "arms", "1 2 3 5 8", &arms)) ||
        (rc = arb_cfg_int(ctx, "episode_ticks", 50, 1, 100000000, &ep)) ||
        (rc = arb_cfg_int(ctx, "epsilon_ppm", 100000, 0, 1000000, &eps)) ||
        (rc = arb_cfg_int(ctx, "qty", 2, 1, 1000000, &qty)) ||
        (rc = arb_cfg_int(ctx, "max_position", 20, 1, INT32_MAX, &maxpos)) ||
        (rc = arb_cfg_int(ctx, "inventory_penalty_ticks", 1, 0, 1000000, &pen)))
        return rc;
    arm_list l = {{0}, 0, 0};
    arb_agent_split(arms, add_arm, &l);
    if (l.bad || l.n < 2)
        return arb_cfg_reject(ctx, "arms", "'%s': expected 2 to %d half-spreads in ticks", arms,
                              BANDIT_MAX_ARMS);
    bandit_init(&s->model, l.n, l.v);
    s->episode_ticks = ep;
    s->epsilon_ppm = (uint32_t)eps;
    s->qty = qty;
    s->max_position = maxpos;
    s->penalty_ticks = pen;
    return ARB_OK;
}

/* The common keys (arb_agent_init), then the strategy's own. */
static int configure(arb_ctx *ctx, void *s) { return read_params(ctx, s); }

static int adaptive_create(arb_ctx *ctx, void **self)
{
    _Static_assert(offsetof(adaptive, agent) == 0, "arb_agent must be the first member");
    return arb_agent_plugin_create(ctx, self, sizeof(adaptive), configure);
}

static int adaptive_start(void *self)
{
    adaptive *s = self;
    arb_agent_hooks h = {.on_tick = on_tick, .report = report};
    return arb_agent_start(&s->agent, &h, s);
}

static void adaptive_stop(void *self) { arb_agent_stop(self); }

static void adaptive_destroy(void *self)
{
    adaptive *s = self;
    arb_agent_free(&s->agent);
    free(s);
}

/* Extra state: arm u32, pad u32, ticks_in_episode, pnl_at_start, n u64,
 * then n x (bid_id, ask_id), then the bandit. */
static int adaptive_save(void *self, void **bytes, size_t *len)
{
    adaptive *s = self;
    uint32_t n = s->agent.n_instruments;
    uint8_t extra[ADAPTIVE_EXTRA_FIXED + ARB_AGENT_MAX_INSTRUMENTS * 16 +
                  BANDIT_STATE_LEN(BANDIT_MAX_ARMS)];
    arb_put_u32(extra, s->arm);
    arb_put_u32(extra + 4, 0);
    arb_put_i64(extra + 8, s->ticks_in_episode);
    arb_put_i64(extra + 16, s->pnl_at_start);
    arb_put_u64(extra + 24, n);
    uint8_t *p = extra + ADAPTIVE_EXTRA_FIXED;
    for (uint32_t i = 0; i < n; i++, p += 16) {
        arb_put_u64(p, s->bid_id[i]);
        arb_put_u64(p + 8, s->ask_id[i]);
    }
    bandit_encode(&s->model, p);
    p += BANDIT_STATE_LEN(s->model.n_arms);
    return arb_agent_save(&s->agent, extra, (size_t)(p - extra), bytes, len);
}

static int adaptive_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    adaptive *s = self;
    const uint8_t *x;
    size_t xlen;
    if (version != ADAPTIVE_STATE_VERSION)
        return ARB_EREFUSED;
    int rc = arb_agent_restore(&s->agent, bytes, len, (const void **)&x, &xlen);
    if (rc)
        return rc;
    uint32_t n = s->agent.n_instruments;
    if (xlen != ADAPTIVE_EXTRA_FIXED + 16u * n + BANDIT_STATE_LEN(s->model.n_arms) ||
        arb_get_u64(x + 24) != n || arb_get_u32(x) >= s->model.n_arms)
        return ARB_EREFUSED;
    /* Different arms in the new config: what was learned does not apply. */
    if (bandit_decode(&s->model, x + ADAPTIVE_EXTRA_FIXED + 16u * n,
                      BANDIT_STATE_LEN(s->model.n_arms)))
        return ARB_EREFUSED;
    s->arm = arb_get_u32(x);
    s->ticks_in_episode = arb_get_i64(x + 8);
    s->pnl_at_start = arb_get_i64(x + 16);
    for (uint32_t i = 0; i < n; i++) {
        s->bid_id[i] = arb_get_u64(x + ADAPTIVE_EXTRA_FIXED + 16 * i);
        s->ask_id[i] = arb_get_u64(x + ADAPTIVE_EXTRA_FIXED + 16 * i + 8);
    }
    return ARB_OK;
}

static const char *const adaptive_publishes[] = {"order_commands", NULL};
static const char *const adaptive_subscribes[] = {"system_ticks", "order_events", "market_data",
                                                  "market_events", NULL};

static const arb_plugin adaptive_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "agent_adaptive",
    .version = "1.0.0",
    .state_version = ADAPTIVE_STATE_VERSION,
    .publishes = adaptive_publishes,
    .subscribes = adaptive_subscribes,
    .create = adaptive_create,
    .start = adaptive_start,
    .stop = adaptive_stop,
    .destroy = adaptive_destroy,
    .save = adaptive_save,
    .restore = adaptive_restore,
};

ARB_PLUGIN_DEFINE(adaptive_plugin)
