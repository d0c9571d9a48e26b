/*
 * arb/agent.h -- helpers that keep a trading agent short.
 *
 * An agent embeds an arb_agent and gets, from the topics it subscribes to:
 * its open orders and fills (from order_events), position, cash, fees and
 * PnL per account and instrument (exact integers), the top of book of the
 * instruments it watches (market_data) and what the generator says they are
 * worth (market_events), ticks with gap/duplicate detection (system_ticks),
 * order sending (new, IOC, cancel, replace, with an optional time to live),
 * versioned save/restore of all of it for hot reload, and per-agent metrics.
 * It also holds arb_rng, the seeded PRNG every simulation part uses, so a
 * run is reproducible from its config alone.
 *
 * Units: prices are price units and quantities quantity units of the
 * instrument (arb/instrument.h); cash, fees and PnL are price units x
 * quantity units (e.g. 0.01 x 0.001). All money math is integer and exact.
 *
 * Accounts: one instance trades `population` accounts, numbered from the
 * configured `account`; account_ix 0..population-1 addresses them. Order ids
 * are (28-bit hash of host id and instance name) << 36 | sequence, so ids of
 * different agents and hosts do not collide in practice and a restored agent
 * continues its own sequence.
 *
 * Not here: strategies (plugins/agents/), the wire codecs (arb/wire.h).
 * Pure code over the host API table: tests drive it with a fake table.
 */
#ifndef ARB_AGENT_H
#define ARB_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instrument.h"
#include "plugin.h"
#include "replay.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- deterministic randomness ---- */

/* xoshiro256** seeded through splitmix64. Never use rand(): every instance
 * owns one of these, seeded from config mixed with its name. */
typedef struct arb_rng {
    uint64_t s[4];
} arb_rng;

static inline uint64_t arb_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* FNV-1a of a C string: stable names -> numbers (seeds, id prefixes). */
static inline uint64_t arb_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* FNV-1a continued over a byte range. */
static inline uint64_t arb_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* `stream` separates instances sharing one seed (pass the instance name). */
static inline void arb_rng_seed(arb_rng *r, uint64_t seed, const char *stream)
{
    uint64_t x = seed ^ (stream ? arb_hash_str(stream) : 0);
    for (int i = 0; i < 4; i++)
        r->s[i] = arb_splitmix64(&x);
}

static inline uint64_t arb__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t arb_rng_next(arb_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = arb__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = arb__rotl(s[3], 45);
    return out;
}

/* Uniform in [0, n), unbiased (Lemire); n == 0 yields 0. */
static inline uint64_t arb_rng_below(arb_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    unsigned __int128 m = (unsigned __int128)arb_rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t floor = (0 - n) % n;
        while (lo < floor) {
            m = (unsigned __int128)arb_rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

/* Uniform in [lo, hi] (inclusive); lo > hi yields lo. */
static inline int64_t arb_rng_range(arb_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)arb_rng_below(r, (uint64_t)hi - (uint64_t)lo + 1);
}

/* True with probability ppm / 1e6. */
static inline int arb_rng_chance_ppm(arb_rng *r, uint32_t ppm)
{
    return arb_rng_below(r, 1000000) < ppm;
}

/* A standard normal in Q32 fixed point (1.0 == 2^32), integer only and so
 * bit-identical everywhere: the Irwin-Hall sum of twelve 32-bit uniforms
 * minus their mean (exact variance 1, tails cut at +-6). */
static inline int64_t arb_rng_gauss_q32(arb_rng *r)
{
    int64_t sum = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t x = arb_rng_next(r);
        sum += (int64_t)(x >> 32) + (int64_t)(x & 0xffffffffu);
    }
    return sum - 6 * ((int64_t)1 << 32);
}

/* ---- the agent ---- */

#define ARB_AGENT_MAX_INSTRUMENTS 16
#define ARB_AGENT_MAX_POPULATION 1000000
#define ARB_AGENT_STATE_MAGIC 0x544e454741425241ull /* "ARBAGENT" */
#define ARB_AGENT_STATE_VERSION 1u
/* An agent's order id: a 28-bit prefix (the host id and instance name
 * hashed) | 36 bits of sequence. The sequence starts each start of the host
 * at its run epoch << ARB_AGENT_ID_EPOCH_SHIFT (arb_run_info), so a host
 * restarted within a run never reuses an id of an earlier start: each start
 * has 2^28 ids to itself, and 256 starts of a host fit in one run before
 * the sequence comes round (a simulation is one start: epoch 0, as before). */
#define ARB_AGENT_ID_SEQ_BITS 36
#define ARB_AGENT_ID_EPOCH_SHIFT 28

/* What the agent knows about one watched instrument's market. A zero
 * quantity means that side is empty; a zero value means "not seen yet". */
typedef struct arb_agent_top {
    int64_t bid_px, bid_qty;
    int64_t ask_px, ask_qty;
    uint64_t book_seq;
    int64_t ts;
    int64_t venue_value; /* the generator's view of this venue (market_events) */
    int64_t fair_value;  /* the generator's fair value of the symbol */
    int64_t last_fill_px;
} arb_agent_top;

typedef struct arb_agent_instrument {
    arb_instrument spec;         /* tick, lot, limits from [instrument ...] */
    char venue_f[ARB_VENUE_LEN]; /* padded wire fields */
    char symbol_f[ARB_SYMBOL_LEN];
    uint64_t key;      /* bus key of the book */
    uint64_t fair_key; /* bus key of the symbol's fair value (empty venue) */
    /* What the venue charges this agent's first account, in hundredths of
     * a bp: its [fee_tier] on the venue if it has one, else the
     * instrument's rates. Strategies decide with these; the fills' own
     * fees (from the matcher) are what the books are charged. */
    int64_t maker_fee_cbps, taker_fee_cbps;
    arb_agent_top top;
} arb_agent_instrument;

/* Per account and instrument. Position in quantity units (signed), money in
 * price units x quantity units; cash is net of fees. */
typedef struct arb_agent_position {
    int64_t position;
    int64_t cash;
    int64_t fees;
    int64_t volume; /* quantity traded, both sides */
    int64_t fills;
} arb_agent_position;

enum arb_agent_order_state {
    ARB_AO_PENDING = 1, /* sent, not yet acknowledged */
    ARB_AO_OPEN = 2,    /* accepted by the matcher, resting or being filled */
};

typedef struct arb_agent_order {
    uint64_t order_id; /* 0: empty slot */
    uint64_t client_ref;
    int64_t price, qty, leaves, filled;
    int64_t req_price;          /* the price last asked for (new or replace) */
    int64_t sent_at, expire_at; /* expire_at 0: no time to live */
    uint32_t account_ix;
    uint16_t instrument;
    uint8_t side, tif, state;
    uint8_t cancel_sent;
} arb_agent_order;

/* Counters that survive reload; the metrics mirror them. */
typedef struct arb_agent_stats {
    uint64_t orders_sent, cancels_sent, replaces_sent, send_failures;
    uint64_t events, fills, rejects, cancels, expiries;
    uint64_t unknown_events, dup_fills, gap_fills, overflows;
    uint64_t ticks, first_tick, last_tick, tick_gaps, tick_dups;
    uint64_t md_updates, market_events;
} arb_agent_stats;
#define ARB_AGENT_STATS_N (sizeof(arb_agent_stats) / sizeof(uint64_t))

/* Strategy callbacks; any may be NULL. They run after the agent's state has
 * taken the message in, on the instance's thread. */
typedef struct arb_agent_hooks {
    void (*on_tick)(void *user, const arb_tick *tick);
    /* fill_qty and fill_px of this fill; o is still in the table (leaves 0
     * if it completed) and is removed after the hook. */
    void (*on_fill)(void *user, const arb_agent_order *o, int64_t fill_px, int64_t fill_qty);
    /* The order left the book unfilled or partly filled: rejected,
     * cancelled or expired (ev->kind says which). */
    void (*on_order_done)(void *user, const arb_agent_order *o, const arb_order_event *ev);
    void (*on_top)(void *user, int instrument);
    void (*on_market_event)(void *user, int instrument, const arb_market_event *ev);
    /* Up to 4 numbers the strategy wants in its report (see below). */
    void (*report)(void *user, uint64_t out[4]);
} arb_agent_hooks;

typedef struct arb_agent_metrics {
    arb_gauge *pnl, *fees, *position[ARB_AGENT_MAX_INSTRUMENTS];
    arb_gauge *open_orders;
    arb_counter *orders, *fills, *rejects, *cancels;
} arb_agent_metrics;

typedef struct arb_agent {
    arb_ctx *ctx;
    char name[64];
    uint64_t account_base;
    uint32_t n_accounts;
    uint32_t n_instruments;
    arb_agent_instrument instr[ARB_AGENT_MAX_INSTRUMENTS];
    arb_agent_position *pos; /* [account_ix * n_instruments + instrument] */
    arb_agent_position tot[ARB_AGENT_MAX_INSTRUMENTS]; /* sum over accounts */
    int64_t fee_bps; /* charged on fills whose event carries no fee (version 1) */

    /* Open orders: open addressing on order id, linear probing, backward
     * shift on delete (no tombstones), capacity a power of two. */
    arb_agent_order *slots;
    uint32_t cap, count;
    uint32_t open_n;   /* orders in state ARB_AO_OPEN */
    uint64_t open_sum; /* sum of their ids, mod 2^64 (for reports) */
    /* Orders with a time to live: a min-heap on (expire_at, order_id). */
    struct arb_agent_expiry {
        int64_t at;
        uint64_t order_id;
    } * heap;
    uint32_t heap_n, heap_cap;

    uint64_t id_prefix, next_seq;
    int64_t now; /* simulated time of the last tick */
    arb_rng rng;
    arb_agent_stats st;
    arb_agent_hooks hooks;
    void *user;
    int report_topic; /* -1: no reports */
    arb_agent_metrics m;
    /* A cold start's rebuild from the stored order_events (arb_agent_start):
     * how far it read, so deliveries it covered are skipped. */
    arb_replay replay;
    /* The orders a cold start found open (arb__agent_recover), cancelled
     * by a timer once the instance is live: a SIGHUP prepares the instance
     * while the one it replaces still trades, and may yet be refused. */
    uint64_t *leftover;
    uint32_t n_leftover;
    uint8_t restored; /* state came from a hot reload: nothing to rebuild */
} arb_agent;

/* ---- small helpers ---- */

static inline int64_t arb_agent_round_down(int64_t v, int64_t step)
{
    int64_t q = v / step;
    if (v % step < 0)
        q--;
    return q * step;
}

static inline int64_t arb_agent_round_up(int64_t v, int64_t step)
{
    return -arb_agent_round_down(-v, step);
}

/* A price on the instrument's tick grid: down for bids, up for asks, so a
 * rounded quote is never more aggressive than asked. */
static inline int64_t arb_agent_tick_px(const arb_agent *a, int ix, int side, int64_t px)
{
    int64_t t = a->instr[ix].spec.tick;
    return side == ARB_SIDE_BUY ? arb_agent_round_down(px, t) : arb_agent_round_up(px, t);
}

/* A quantity on the lot grid within [min_qty, max_qty]; 0 if below min. */
static inline int64_t arb_agent_lot_qty(const arb_agent *a, int ix, int64_t qty)
{
    const arb_instrument *s = &a->instr[ix].spec;
    if (qty > s->max_qty)
        qty = s->max_qty;
    qty = arb_agent_round_down(qty, s->lot);
    return qty < s->min_qty ? 0 : qty;
}

static inline arb_agent_position *arb_agent_pos(arb_agent *a, uint32_t account_ix, int ix)
{
    return &a->pos[(size_t)account_ix * a->n_instruments + (size_t)ix];
}

static inline const arb_agent_top *arb_agent_top_of(const arb_agent *a, int ix)
{
    return &a->instr[ix].top;
}

/* Instrument index of a book key, or -1. */
static inline int arb_agent_find_key(const arb_agent *a, uint64_t key)
{
    for (uint32_t i = 0; i < a->n_instruments; i++)
        if (a->instr[i].key == key)
            return (int)i;
    return -1;
}

/* The price an instrument is marked at: the mid (rounded down to a price
 * unit) if both sides are quoted, else the venue value, else the last fill. */
static inline int64_t arb_agent_mark(const arb_agent *a, int ix)
{
    const arb_agent_top *t = &a->instr[ix].top;
    if (t->bid_qty > 0 && t->ask_qty > 0)
        return arb_agent_round_down(t->bid_px + t->ask_px, 2) / 2;
    if (t->venue_value)
        return t->venue_value;
    return t->last_fill_px;
}

/* Saturating so that a runaway strategy shows up as a pinned number (and
 * st.overflows), never as undefined behaviour. */
static inline int64_t arb__sat128(arb_agent *a, __int128 v)
{
    if (v > INT64_MAX || v < -INT64_MAX) {
        a->st.overflows++;
        return v > 0 ? INT64_MAX : -INT64_MAX;
    }
    return (int64_t)v;
}

/* PnL of one account in one instrument: cash + position x mark. */
static inline int64_t arb_agent_pnl_of(arb_agent *a, const arb_agent_position *p, int ix)
{
    return arb__sat128(a, (__int128)p->cash + (__int128)p->position * arb_agent_mark(a, ix));
}

static inline int64_t arb_agent_pnl(arb_agent *a, uint32_t account_ix, int ix)
{
    return arb_agent_pnl_of(a, arb_agent_pos(a, account_ix, ix), ix);
}

/* PnL of all accounts over all instruments. */
static inline int64_t arb_agent_total_pnl(arb_agent *a)
{
    __int128 sum = 0;
    for (uint32_t i = 0; i < a->n_instruments; i++)
        sum += arb_agent_pnl_of(a, &a->tot[i], (int)i);
    return arb__sat128(a, sum);
}

/* ---- open orders ---- */

static inline uint32_t arb__agent_slot(const arb_agent *a, uint64_t id)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (a->cap - 1);
}

static inline arb_agent_order *arb_agent_order_find(const arb_agent *a, uint64_t id)
{
    if (!a->cap || !id)
        return NULL;
    for (uint32_t i = arb__agent_slot(a, id);; i = (i + 1) & (a->cap - 1)) {
        if (a->slots[i].order_id == id)
            return &a->slots[i];
        if (!a->slots[i].order_id)
            return NULL;
    }
}

static inline int arb__agent_grow(arb_agent *a)
{
    uint32_t ncap = a->cap ? a->cap * 2 : 64;
    arb_agent_order *ns = (arb_agent_order *)calloc(ncap, sizeof *ns);
    if (!ns)
        return ARB_ENOMEM;
    for (uint32_t i = 0; i < a->cap; i++) {
        if (!a->slots[i].order_id)
            continue;
        uint32_t j = (uint32_t)((a->slots[i].order_id * 0x9e3779b97f4a7c15ull) >> 32) & (ncap - 1);
        while (ns[j].order_id)
            j = (j + 1) & (ncap - 1);
        ns[j] = a->slots[i];
    }
    free(a->slots);
    a->slots = ns;
    a->cap = ncap;
    return ARB_OK;
}

/* Inserts a copy of o; ARB_EINVAL if the id is 0 or already present. */
static inline int arb__agent_order_add(arb_agent *a, const arb_agent_order *o)
{
    if (!o->order_id || arb_agent_order_find(a, o->order_id))
        return ARB_EINVAL;
    if ((a->count + 1) * 2 > a->cap && arb__agent_grow(a))
        return ARB_ENOMEM;
    uint32_t i = arb__agent_slot(a, o->order_id);
    while (a->slots[i].order_id)
        i = (i + 1) & (a->cap - 1);
    a->slots[i] = *o;
    a->count++;
    if (o->state == ARB_AO_OPEN)
        a->open_n++, a->open_sum += o->order_id;
    return ARB_OK;
}

static inline void arb__agent_mark_open(arb_agent *a, arb_agent_order *o)
{
    if (o->state != ARB_AO_OPEN) {
        o->state = ARB_AO_OPEN;
        a->open_n++;
        a->open_sum += o->order_id;
    }
}

static inline void arb__agent_order_del(arb_agent *a, arb_agent_order *o)
{
    uint32_t mask = a->cap - 1, i = (uint32_t)(o - a->slots), j = i;
    if (o->state == ARB_AO_OPEN)
        a->open_n--, a->open_sum -= o->order_id;
    a->slots[i].order_id = 0;
    a->count--;
    for (;;) {
        j = (j + 1) & mask;
        if (!a->slots[j].order_id)
            return;
        uint32_t home = arb__agent_slot(a, a->slots[j].order_id);
        /* Move j back into the hole at i unless its home lies in (i, j]. */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            a->slots[i] = a->slots[j];
            a->slots[j].order_id = 0;
            i = j;
        }
    }
}

/* Calls fn for every open order; fn must not send or cancel (collect ids
 * first). Iteration order is the table's, not submission order. */
static inline void arb_agent_orders_each(arb_agent *a, void (*fn)(void *u, arb_agent_order *o),
                                         void *u)
{
    for (uint32_t i = 0; i < a->cap; i++)
        if (a->slots[i].order_id)
            fn(u, &a->slots[i]);
}

static inline void arb__heap_swap(struct arb_agent_expiry *h, uint32_t i, uint32_t j)
{
    struct arb_agent_expiry t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static inline int arb__heap_less(const struct arb_agent_expiry *x, const struct arb_agent_expiry *y)
{
    return x->at < y->at || (x->at == y->at && x->order_id < y->order_id);
}

static inline int arb__agent_heap_push(arb_agent *a, int64_t at, uint64_t id)
{
    if (a->heap_n == a->heap_cap) {
        uint32_t ncap = a->heap_cap ? a->heap_cap * 2 : 64;
        void *nh = realloc(a->heap, ncap * sizeof *a->heap);
        if (!nh)
            return ARB_ENOMEM;
        a->heap = (struct arb_agent_expiry *)nh;
        a->heap_cap = ncap;
    }
    uint32_t i = a->heap_n++;
    a->heap[i].at = at;
    a->heap[i].order_id = id;
    while (i && arb__heap_less(&a->heap[i], &a->heap[(i - 1) / 2])) {
        arb__heap_swap(a->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return ARB_OK;
}

static inline void arb__agent_heap_pop(arb_agent *a)
{
    a->heap[0] = a->heap[--a->heap_n];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < a->heap_n && arb__heap_less(&a->heap[l], &a->heap[m]))
            m = l;
        if (r < a->heap_n && arb__heap_less(&a->heap[r], &a->heap[m]))
            m = r;
        if (m == i)
            return;
        arb__heap_swap(a->heap, i, m);
        i = m;
    }
}

/* ---- metrics ---- */

static inline void arb__counter_set(arb_counter *c, uint64_t v)
{
    if (c)
        atomic_store_explicit(&c->value, v, memory_order_relaxed);
}

static inline void arb__gauge_set(arb_gauge *g, int64_t v)
{
    if (g)
        arb_gauge_set(g, v);
}

/* Publishes the agent's numbers to its metrics (each tick, and on demand). */
static inline void arb_agent_update_metrics(arb_agent *a)
{
    arb__gauge_set(a->m.pnl, arb_agent_total_pnl(a));
    int64_t fees = 0;
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        arb__gauge_set(a->m.position[i], a->tot[i].position);
        fees = arb__sat128(a, (__int128)fees + a->tot[i].fees);
    }
    arb__gauge_set(a->m.fees, fees);
    arb__gauge_set(a->m.open_orders, (int64_t)a->count);
    arb__counter_set(a->m.orders, a->st.orders_sent);
    arb__counter_set(a->m.fills, a->st.fills);
    arb__counter_set(a->m.rejects, a->st.rejects);
    arb__counter_set(a->m.cancels, a->st.cancels_sent);
}

/* ---- configuration ---- */

typedef struct arb__agent_cfg_walk {
    arb_agent *a;
    const arb_instrument_table *table;
    int rc;
} arb__agent_cfg_walk;

/* Splits a list on spaces and commas, calling fn(user, token) for each;
 * stops at the first non-zero return and returns it. */
static inline int arb_agent_split(const char *list, int (*fn)(void *u, const char *tok), void *u)
{
    char tok[128];
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ' ' && p[n] != ',' && p[n] != '\t')
            n++;
        if (!n)
            break;
        if (n >= sizeof tok)
            return ARB_ERROR;
        memcpy(tok, p, n);
        tok[n] = 0;
        int rc = fn(u, tok);
        if (rc)
            return rc;
        p += n;
    }
    return ARB_OK;
}

static inline int arb__agent_add_instrument(void *u, const char *name)
{
    arb__agent_cfg_walk *w = (arb__agent_cfg_walk *)u;
    arb_agent *a = w->a;
    char vf[ARB_VENUE_LEN], sf[ARB_SYMBOL_LEN], v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
    if (arb_instrument_parse_name(name, vf, sf))
        return arb_cfg_reject(a->ctx, "instruments", "'%s' is not VENUE:SYMBOL", name);
    const arb_instrument *spec = arb_instrument_find(w->table, arb_fixstr(v, vf, ARB_VENUE_LEN),
                                                     arb_fixstr(s, sf, ARB_SYMBOL_LEN));
    if (!spec)
        return arb_cfg_reject(a->ctx, "instruments", "no [instrument %s] section", name);
    if (a->n_instruments == ARB_AGENT_MAX_INSTRUMENTS)
        return arb_cfg_reject(a->ctx, "instruments", "at most %d instruments per agent",
                              ARB_AGENT_MAX_INSTRUMENTS);
    if (arb_agent_find_key(a, spec->key) >= 0)
        return arb_cfg_reject(a->ctx, "instruments", "'%s' is listed twice", name);
    arb_agent_instrument *in = &a->instr[a->n_instruments++];
    memset(in, 0, sizeof *in);
    in->spec = *spec;
    memcpy(in->venue_f, vf, ARB_VENUE_LEN);
    memcpy(in->symbol_f, sf, ARB_SYMBOL_LEN);
    in->key = spec->key;
    char nov[ARB_VENUE_LEN];
    memset(nov, 0, sizeof nov);
    in->fair_key = arb_instrument_key(nov, sf);
    return ARB_OK;
}

static inline void arb__agent_metrics(arb_agent *a)
{
    arb_ctx *c = a->ctx;
    /* The unit is in the HELP text: a gauge holds an integer, and a PnL in
     * the quote currency is a decimal. */
    a->m.pnl = arb_gauge_new(c, "agent_pnl", NULL,
                             "PnL of all accounts net of fees, unit: price units x quantity "
                             "units, i.e. 10^-(price_decimals+qty_decimals) of the quote currency");
    a->m.fees = arb_gauge_new(c, "agent_fees", NULL,
                              "Fees paid by all accounts net of rebates, in the unit of agent_pnl "
                              "(PnL and cash are net of them)");
    a->m.open_orders = arb_gauge_new(c, "agent_open_orders", NULL, "Orders not yet done (count)");
    a->m.orders = arb_counter_new(c, "agent_orders_total", NULL, "New orders sent");
    a->m.fills = arb_counter_new(c, "agent_fills_total", NULL, "Fills received");
    a->m.rejects = arb_counter_new(c, "agent_rejects_total", NULL, "Orders rejected");
    a->m.cancels = arb_counter_new(c, "agent_cancels_total", NULL, "Cancels sent");
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "instrument=\"%s:%s\"", a->instr[i].spec.venue,
                 a->instr[i].spec.symbol);
        a->m.position[i] = arb_gauge_new(c, "agent_position", labels,
                                         "Net position of all accounts, unit: quantity units, i.e. "
                                         "10^-qty_decimals of the base asset");
    }
}

/* Reads the keys every agent has, from the instance's own section:
 *   account = 1000            first account id (required, > 0)
 *   population = 1            accounts this instance trades
 *   instruments = XA:BTCUSD   watched/traded books (required); each needs
 *                             an [instrument ...] section
 *   seed = 1                  PRNG seed (mixed with the instance name)
 *   fee_bps = 0               fee charged on a fill whose order event carries none
 *                             (a version 1 record, before the matcher charged
 *                             fees), floor(px*qty*bps/1e4); other fills are
 *                             charged the fee the matcher put on them
 *   report_topic =            if set, a report record each tick (tests, tools)
 * and registers the per-agent metrics. On error the agent is left empty
 * (arb_agent_free is still safe) and the error was reported. */
static inline int arb_agent_init(arb_agent *a, arb_ctx *ctx)
{
    memset(a, 0, sizeof *a);
    a->ctx = ctx;
    a->report_topic = -1;
    snprintf(a->name, sizeof a->name, "%s", arb_instance_name(ctx));
    int64_t account, population, seed, fee;
    const char *list, *report;
    int rc;
    if ((rc = arb_cfg_int(ctx, "account", 0, 0, INT64_MAX, &account)) ||
        (rc = arb_cfg_int(ctx, "population", 1, 1, ARB_AGENT_MAX_POPULATION, &population)) ||
        (rc = arb_cfg_int(ctx, "seed", 1, INT64_MIN, INT64_MAX, &seed)) ||
        (rc = arb_cfg_int(ctx, "fee_bps", 0, 0, 10000, &fee)) ||
        (rc = arb_cfg_str(ctx, "instruments", "", &list)) ||
        (rc = arb_cfg_str(ctx, "report_topic", "", &report)))
        return rc;
    if (account <= 0)
        return arb_cfg_reject(ctx, "account", "every agent needs a positive account id");
    if ((rc = arb_claim(ctx, "account", (uint64_t)account, (uint64_t)population)))
        return rc;
    if (!list[0])
        return arb_cfg_reject(ctx, "instruments", "list the VENUE:SYMBOL books to trade");
    a->account_base = (uint64_t)account;
    a->n_accounts = (uint32_t)population;
    a->fee_bps = fee;
    arb_rng_seed(&a->rng, (uint64_t)seed, a->name);

    arb_instrument_table table;
    if ((rc = arb_instruments_load(ctx, &table)))
        return rc;
    arb__agent_cfg_walk w = {a, &table, ARB_OK};
    rc = arb_agent_split(list, arb__agent_add_instrument, &w);
    arb_instruments_free(&table);
    if (rc) {
        a->n_instruments = 0;
        return rc == ARB_EINVAL ? rc : arb_cfg_reject(ctx, "instruments", "bad list");
    }
    arb_fee_tiers tiers;
    if ((rc = arb_fee_tiers_load(ctx, &tiers)))
        return rc;
    for (uint32_t i = 0; i < a->n_instruments; i++)
        arb_fee_rates(&tiers, &a->instr[i].spec, a->account_base, &a->instr[i].maker_fee_cbps,
                      &a->instr[i].taker_fee_cbps);
    arb_fee_tiers_free(&tiers);
    a->pos = (arb_agent_position *)calloc((size_t)a->n_accounts * a->n_instruments, sizeof *a->pos);
    if (!a->pos)
        return ARB_ENOMEM;
    uint64_t mix = arb_host_id(ctx) ^ arb_hash_str(a->name);
    a->id_prefix = (arb_splitmix64(&mix) >> (64 - (64 - ARB_AGENT_ID_SEQ_BITS))) | 1u;
    a->next_seq = 1; /* arb_agent_start moves it to the run epoch's range */
    if (report[0] && (a->report_topic = arb_topic(ctx, report)) < 0)
        return arb_cfg_reject(ctx, "report_topic", "cannot use topic '%s'", report);
    arb__agent_metrics(a);
    return ARB_OK;
}

static inline void arb_agent_free(arb_agent *a)
{
    arb_replay_free(&a->replay);
    free(a->leftover);
    a->leftover = NULL;
    a->n_leftover = 0;
    free(a->pos);
    free(a->slots);
    free(a->heap);
    a->pos = NULL;
    a->slots = NULL;
    a->heap = NULL;
    a->cap = a->count = a->heap_n = a->heap_cap = a->open_n = 0;
    a->open_sum = 0;
}

/* ---- sending ---- */

typedef struct arb_agent_order_req {
    uint32_t account_ix;
    int instrument;
    uint8_t side, type, tif, flags;
    int64_t price, qty;
    int64_t ttl_ns; /* >0: cancelled by the agent once this much time passed */
    uint64_t client_ref;
} arb_agent_order_req;

static inline uint64_t arb__agent_next_id(arb_agent *a)
{
    uint64_t seq = a->next_seq++ & ((1ull << ARB_AGENT_ID_SEQ_BITS) - 1);
    return (a->id_prefix << ARB_AGENT_ID_SEQ_BITS) | seq;
}

static inline int arb__agent_publish(arb_agent *a, const arb_order_cmd *cmd, int ix)
{
    uint8_t buf[ARB_ORDER_CMD_LEN];
    uint32_t n = arb_order_cmd_encode(cmd, buf, sizeof buf);
    int rc = arb_publish(a->ctx, ARB_TOPIC_ORDER_COMMANDS, a->instr[ix].key, buf, n);
    if (rc)
        a->st.send_failures++;
    return rc;
}

static inline void arb__agent_cmd(const arb_agent *a, arb_order_cmd *cmd, int ix)
{
    memset(cmd, 0, sizeof *cmd);
    memcpy(cmd->venue, a->instr[ix].venue_f, ARB_VENUE_LEN);
    memcpy(cmd->symbol, a->instr[ix].symbol_f, ARB_SYMBOL_LEN);
    cmd->ts = arb_now(a->ctx);
}

/* Sends a new order and tracks it. Returns its id, or 0 if nothing was sent
 * (bad request, or the bus refused: st.send_failures counts those). */
static inline uint64_t arb_agent_send(arb_agent *a, const arb_agent_order_req *r)
{
    if (r->instrument < 0 || (uint32_t)r->instrument >= a->n_instruments ||
        r->account_ix >= a->n_accounts || r->qty <= 0 ||
        (r->side != ARB_SIDE_BUY && r->side != ARB_SIDE_SELL))
        return 0;
    arb_order_cmd cmd;
    arb__agent_cmd(a, &cmd, r->instrument);
    cmd.action = ARB_CMD_NEW;
    cmd.side = r->side;
    cmd.type = r->type ? r->type : ARB_ORD_LIMIT;
    cmd.tif = r->tif ? r->tif : ARB_TIF_GTC;
    cmd.flags = r->flags;
    cmd.order_id = arb__agent_next_id(a);
    cmd.account = a->account_base + r->account_ix;
    cmd.price = r->price;
    cmd.qty = r->qty;
    cmd.client_ref = r->client_ref;
    arb_agent_order o;
    memset(&o, 0, sizeof o);
    o.order_id = cmd.order_id;
    o.client_ref = r->client_ref;
    o.price = o.req_price = r->price;
    o.qty = o.leaves = r->qty;
    o.sent_at = a->now;
    o.expire_at = r->ttl_ns > 0 ? a->now + r->ttl_ns : 0;
    o.account_ix = r->account_ix;
    o.instrument = (uint16_t)r->instrument;
    o.side = r->side;
    o.tif = cmd.tif;
    o.state = ARB_AO_PENDING;
    if (arb__agent_order_add(a, &o))
        return 0;
    if (arb__agent_publish(a, &cmd, r->instrument)) {
        arb__agent_order_del(a, arb_agent_order_find(a, o.order_id));
        return 0;
    }
    if (o.expire_at && arb__agent_heap_push(a, o.expire_at, o.order_id))
        a->st.overflows++; /* no memory: the order just lives without a TTL */
    a->st.orders_sent++;
    return o.order_id;
}

static inline uint64_t arb_agent_limit(arb_agent *a, int ix, int side, int64_t px, int64_t qty)
{
    arb_agent_order_req r = {0, ix, (uint8_t)side, ARB_ORD_LIMIT, ARB_TIF_GTC, 0, px, qty, 0, 0};
    return arb_agent_send(a, &r);
}

static inline uint64_t arb_agent_ioc(arb_agent *a, int ix, int side, int64_t px, int64_t qty)
{
    arb_agent_order_req r = {0, ix, (uint8_t)side, ARB_ORD_LIMIT, ARB_TIF_IOC, 0, px, qty, 0, 0};
    return arb_agent_send(a, &r);
}

/* Asks the matcher to cancel an open order (once; repeats are no-ops). */
static inline int arb_agent_cancel(arb_agent *a, uint64_t order_id)
{
    arb_agent_order *o = arb_agent_order_find(a, order_id);
    if (!o)
        return ARB_ENOENT;
    if (o->cancel_sent)
        return ARB_OK;
    arb_order_cmd cmd;
    arb__agent_cmd(a, &cmd, o->instrument);
    cmd.action = ARB_CMD_CANCEL;
    cmd.side = o->side;
    cmd.order_id = order_id;
    cmd.account = a->account_base + o->account_ix;
    cmd.client_ref = o->client_ref;
    int rc = arb__agent_publish(a, &cmd, o->instrument);
    if (rc)
        return rc;
    o->cancel_sent = 1;
    a->st.cancels_sent++;
    return ARB_OK;
}

/* Amends price and quantity of an open order; the matcher's REPLACED event
 * updates the tracked order. */
static inline int arb_agent_replace(arb_agent *a, uint64_t order_id, int64_t price, int64_t qty,
                                    uint64_t client_ref)
{
    arb_agent_order *o = arb_agent_order_find(a, order_id);
    if (!o)
        return ARB_ENOENT;
    if (o->cancel_sent || qty <= 0)
        return ARB_ESTATE;
    arb_order_cmd cmd;
    arb__agent_cmd(a, &cmd, o->instrument);
    cmd.action = ARB_CMD_REPLACE;
    cmd.side = o->side;
    cmd.type = ARB_ORD_LIMIT;
    cmd.tif = o->tif;
    cmd.order_id = order_id;
    cmd.account = a->account_base + o->account_ix;
    cmd.price = price;
    cmd.qty = qty;
    cmd.client_ref = client_ref;
    int rc = arb__agent_publish(a, &cmd, o->instrument);
    if (rc)
        return rc;
    o->req_price = price;
    a->st.replaces_sent++;
    return ARB_OK;
}

/* Cancels every order whose time to live ran out by `now`. */
static inline void arb_agent_cancel_expired(arb_agent *a, int64_t now)
{
    while (a->heap_n && a->heap[0].at <= now) {
        uint64_t id = a->heap[0].order_id;
        arb__agent_heap_pop(a);
        arb_agent_cancel(a, id);
    }
}

/* Cancels every open order of one account (all accounts: account_ix < 0). */
static inline void arb_agent_cancel_all(arb_agent *a, int64_t account_ix)
{
    for (uint32_t i = 0; i < a->cap; i++) {
        arb_agent_order *o = &a->slots[i];
        if (o->order_id && !o->cancel_sent &&
            (account_ix < 0 || o->account_ix == (uint64_t)account_ix))
            arb_agent_cancel(a, o->order_id);
    }
}

/* The price a strategy anchors on: the generator's view of the venue if it
 * has one, else the mark (mid, last fill). 0: nothing known yet. */
static inline int64_t arb_agent_reference(const arb_agent *a, int ix)
{
    const arb_agent_top *t = &a->instr[ix].top;
    return t->venue_value ? t->venue_value : arb_agent_mark(a, ix);
}

/* Keeps at most one resting GTC order of account 0 on one side of one book
 * at `px` for `qty`: sends it if there is none, replaces it if the price
 * moved, cancels it if qty or px is 0. `*slot` is the caller's memory of the
 * order id (0: none). A fully filled quote is simply sent again. */
static inline void arb_agent_keep_quote(arb_agent *a, int ix, int side, uint64_t *slot, int64_t px,
                                        int64_t qty, uint64_t client_ref)
{
    arb_agent_order *o = *slot ? arb_agent_order_find(a, *slot) : NULL;
    if (!o)
        *slot = 0;
    if (qty <= 0 || px <= 0) {
        if (o)
            arb_agent_cancel(a, o->order_id);
        return;
    }
    if (!o) {
        arb_agent_order_req r = {0,   ix, (uint8_t)side, ARB_ORD_LIMIT, ARB_TIF_GTC, 0, px,
                                 qty, 0,  client_ref};
        *slot = arb_agent_send(a, &r);
        return;
    }
    if (!o->cancel_sent && o->req_price != px)
        arb_agent_replace(a, o->order_id, px, qty, client_ref);
}

/* ---- taking messages in ---- */

/* ev: the fill's event. Its fee is in price units; the books keep price
 * units x quantity units. */
static inline void arb__agent_apply_fill(arb_agent *a, arb_agent_order *o, int64_t px, int64_t qty,
                                         const arb_order_event *ev)
{
    __int128 notional = (__int128)px * qty;
    int64_t fee;
    if (ev->liquidity != ARB_LIQ_NONE) {
        __int128 f = ev->fee;
        for (int i = 0; i < a->instr[o->instrument].spec.qty_decimals; i++)
            f *= 10;
        fee = arb__sat128(a, f);
    } else {
        fee = a->fee_bps ? arb__sat128(a, notional * a->fee_bps / 10000) : 0;
    }
    int64_t dq = o->side == ARB_SIDE_BUY ? qty : -qty;
    __int128 dcash = (o->side == ARB_SIDE_BUY ? -notional : notional) - fee;
    arb_agent_position *ps[2] = {arb_agent_pos(a, o->account_ix, o->instrument),
                                 &a->tot[o->instrument]};
    for (int k = 0; k < 2; k++) {
        arb_agent_position *p = ps[k];
        p->position = arb__sat128(a, (__int128)p->position + dq);
        p->cash = arb__sat128(a, (__int128)p->cash + dcash);
        p->fees = arb__sat128(a, (__int128)p->fees + fee);
        p->volume = arb__sat128(a, (__int128)p->volume + qty);
        p->fills++;
    }
    a->instr[o->instrument].top.last_fill_px = px;
}

/* Takes in one order_events record. Events of other accounts are ignored
 * (cheaply, by the bus key, when delivered through arb_agent_start). */
static inline void arb_agent_on_order_event(arb_agent *a, const arb_order_event *ev)
{
    if (ev->account < a->account_base || ev->account - a->account_base >= a->n_accounts)
        return;
    a->st.events++;
    arb_agent_order *o = arb_agent_order_find(a, ev->order_id);
    if (!o || o->account_ix != ev->account - a->account_base) {
        a->st.unknown_events++;
        return;
    }
    int done = 0;
    switch (ev->kind) {
    case ARB_EV_ACCEPTED: arb__agent_mark_open(a, o); break;
    case ARB_EV_PARTIAL:
    case ARB_EV_FILLED: {
        arb__agent_mark_open(a, o);
        /* Cumulative filled_qty makes a replayed fill harmless. */
        int64_t fill = ev->filled_qty - o->filled;
        if (fill <= 0) {
            a->st.dup_fills++;
            return;
        }
        if (fill != ev->last_qty)
            a->st.gap_fills++;
        o->filled = ev->filled_qty;
        o->leaves = ev->leaves_qty;
        a->st.fills++;
        arb__agent_apply_fill(a, o, ev->last_px, fill, ev);
        done = ev->kind == ARB_EV_FILLED || ev->leaves_qty <= 0;
        if (a->hooks.on_fill)
            a->hooks.on_fill(a->user, o, ev->last_px, fill);
        break;
    }
    case ARB_EV_REPLACED:
        arb__agent_mark_open(a, o);
        o->price = ev->price;
        o->qty = ev->qty;
        o->leaves = ev->leaves_qty;
        o->filled = ev->filled_qty;
        o->client_ref = ev->client_ref;
        break;
    case ARB_EV_REJECTED:
        /* A reject of a new order ends it; a reject of a cancel or replace
         * of a live order leaves it live, unless the matcher no longer
         * knows the order. */
        if (o->state == ARB_AO_PENDING || ev->reason == ARB_R_UNKNOWN_ORDER) {
            a->st.rejects++;
            done = 1;
        } else {
            o->cancel_sent = 0;
            o->req_price = o->price; /* a refused replace: ask again later */
        }
        break;
    case ARB_EV_CANCELLED:
        a->st.cancels++;
        done = 1;
        break;
    case ARB_EV_EXPIRED:
        a->st.expiries++;
        done = 1;
        break;
    default: return;
    }
    if (done) {
        if (ev->kind != ARB_EV_PARTIAL && ev->kind != ARB_EV_FILLED && a->hooks.on_order_done)
            a->hooks.on_order_done(a->user, o, ev);
        arb__agent_order_del(a, o);
    }
}

static inline void arb_agent_on_market_data(arb_agent *a, const arb_market_data *md)
{
    /* The padded fields compared, not hashed to a key: the hash is a chain
     * of 24 multiplies, and this runs for every book update. */
    int ix = -1;
    for (uint32_t i = 0; i < a->n_instruments && ix < 0; i++)
        if (!memcmp(a->instr[i].venue_f, md->venue, ARB_VENUE_LEN) &&
            !memcmp(a->instr[i].symbol_f, md->symbol, ARB_SYMBOL_LEN))
            ix = (int)i;
    if (ix < 0)
        return;
    arb_agent_top *t = &a->instr[ix].top;
    if (t->book_seq && md->book_seq && md->book_seq < t->book_seq)
        return; /* older than what we have */
    t->bid_px = md->bid_px;
    t->bid_qty = md->bid_qty;
    t->ask_px = md->ask_px;
    t->ask_qty = md->ask_qty;
    t->book_seq = md->book_seq;
    t->ts = md->ts;
    a->st.md_updates++;
    if (a->hooks.on_top)
        a->hooks.on_top(a->user, ix);
}

static inline void arb_agent_on_market_event(arb_agent *a, const arb_market_event *ev)
{
    int any = 0;
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        arb_agent_instrument *in = &a->instr[i];
        if (memcmp(in->symbol_f, ev->symbol, ARB_SYMBOL_LEN))
            continue;
        int venue_empty = ev->venue[0] == 0;
        if (!venue_empty && memcmp(in->venue_f, ev->venue, ARB_VENUE_LEN))
            continue;
        if (ev->kind == ARB_MEV_FAIR_VALUE)
            in->top.fair_value = ev->value;
        else if (ev->kind == ARB_MEV_VENUE_VALUE)
            in->top.venue_value = ev->value;
        any = 1;
        if (a->hooks.on_market_event)
            a->hooks.on_market_event(a->user, (int)i, ev);
    }
    if (any)
        a->st.market_events++;
}

/* ---- reports: the agent's numbers as a record, for tests and tools ---- */

#define ARB_AGENT_REPORT_MAGIC 0x50524741u /* "AGRP" */
#define ARB_AGENT_REPORT_FIXED 136u
#define ARB_AGENT_REPORT_LEN(n) (ARB_AGENT_REPORT_FIXED + (uint32_t)(n)*16u)

typedef struct arb_agent_report {
    uint32_t n_instruments;
    uint64_t account_base;
    uint64_t events, fills, dup_fills, orders_sent;
    uint64_t ticks, first_tick, last_tick, tick_gaps, tick_dups;
    uint64_t open_orders; /* accepted and not done */
    uint64_t open_id_sum; /* sum of their ids, mod 2^64 */
    uint64_t strategy[4]; /* from hooks.report */
    int64_t position[ARB_AGENT_MAX_INSTRUMENTS];
    int64_t cash[ARB_AGENT_MAX_INSTRUMENTS];
} arb_agent_report;

static inline void arb_agent_report_fill(arb_agent *a, arb_agent_report *r)
{
    memset(r, 0, sizeof *r);
    r->n_instruments = a->n_instruments;
    r->account_base = a->account_base;
    r->events = a->st.events;
    r->fills = a->st.fills;
    r->dup_fills = a->st.dup_fills;
    r->orders_sent = a->st.orders_sent;
    r->ticks = a->st.ticks;
    r->first_tick = a->st.first_tick;
    r->last_tick = a->st.last_tick;
    r->tick_gaps = a->st.tick_gaps;
    r->tick_dups = a->st.tick_dups;
    r->open_orders = a->open_n;
    r->open_id_sum = a->open_sum;
    if (a->hooks.report)
        a->hooks.report(a->user, r->strategy);
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        r->position[i] = a->tot[i].position;
        r->cash[i] = a->tot[i].cash;
    }
}

static inline uint32_t arb_agent_report_encode(const arb_agent_report *r, uint8_t *buf, size_t cap)
{
    uint32_t len = ARB_AGENT_REPORT_LEN(r->n_instruments);
    if (r->n_instruments > ARB_AGENT_MAX_INSTRUMENTS || cap < len)
        return 0;
    const uint64_t f[16] = {r->account_base, r->events,      r->fills,       r->dup_fills,
                            r->orders_sent,  r->ticks,       r->first_tick,  r->last_tick,
                            r->tick_gaps,    r->tick_dups,   r->open_orders, r->open_id_sum,
                            r->strategy[0],  r->strategy[1], r->strategy[2], r->strategy[3]};
    arb_put_u32(buf, ARB_AGENT_REPORT_MAGIC);
    arb_put_u32(buf + 4, r->n_instruments);
    for (int i = 0; i < 16; i++)
        arb_put_u64(buf + 8 + 8 * i, f[i]);
    for (uint32_t i = 0; i < r->n_instruments; i++) {
        arb_put_i64(buf + ARB_AGENT_REPORT_FIXED + 16 * i, r->position[i]);
        arb_put_i64(buf + ARB_AGENT_REPORT_FIXED + 16 * i + 8, r->cash[i]);
    }
    return len;
}

static inline int arb_agent_report_decode(const void *data, size_t len, arb_agent_report *r)
{
    const uint8_t *p = (const uint8_t *)data;
    memset(r, 0, sizeof *r);
    if (len < ARB_AGENT_REPORT_FIXED || arb_get_u32(p) != ARB_AGENT_REPORT_MAGIC)
        return ARB_EBADMSG;
    r->n_instruments = arb_get_u32(p + 4);
    if (r->n_instruments > ARB_AGENT_MAX_INSTRUMENTS ||
        len != ARB_AGENT_REPORT_LEN(r->n_instruments))
        return ARB_EBADMSG;
    uint64_t *const f[16] = {&r->account_base, &r->events,      &r->fills,       &r->dup_fills,
                             &r->orders_sent,  &r->ticks,       &r->first_tick,  &r->last_tick,
                             &r->tick_gaps,    &r->tick_dups,   &r->open_orders, &r->open_id_sum,
                             &r->strategy[0],  &r->strategy[1], &r->strategy[2], &r->strategy[3]};
    for (int i = 0; i < 16; i++)
        *f[i] = arb_get_u64(p + 8 + 8 * i);
    for (uint32_t i = 0; i < r->n_instruments; i++) {
        r->position[i] = arb_get_i64(p + ARB_AGENT_REPORT_FIXED + 16 * i);
        r->cash[i] = arb_get_i64(p + ARB_AGENT_REPORT_FIXED + 16 * i + 8);
    }
    return ARB_OK;
}

static inline void arb_agent_publish_report(arb_agent *a)
{
    if (a->report_topic < 0)
        return;
    arb_agent_report r;
    uint8_t buf[ARB_AGENT_REPORT_LEN(ARB_AGENT_MAX_INSTRUMENTS)];
    arb_agent_report_fill(a, &r);
    uint32_t n = arb_agent_report_encode(&r, buf, sizeof buf);
    arb_publish(a->ctx, a->report_topic, a->account_base, buf, n);
}

/* A tick: time moves on, expired orders are cancelled, the strategy runs,
 * metrics and the report follow. A repeated tick is counted and skipped. */
static inline void arb_agent_on_tick(arb_agent *a, const arb_tick *t)
{
    if (a->st.ticks) {
        if (t->seq <= a->st.last_tick) {
            a->st.tick_dups++;
            return;
        }
        a->st.tick_gaps += t->seq - a->st.last_tick - 1;
    } else {
        a->st.first_tick = t->seq;
    }
    a->st.ticks++;
    a->st.last_tick = t->seq;
    a->now = t->sim_ns;
    arb_agent_cancel_expired(a, a->now);
    if (a->hooks.on_tick)
        a->hooks.on_tick(a->user, t);
    arb_agent_update_metrics(a);
    arb_agent_publish_report(a);
}

/* ---- subscriptions ---- */

static inline void arb__agent_tick_cb(void *u, const arb_msg *m)
{
    arb_tick t;
    if (arb_tick_decode(m->data, m->len, &t) == ARB_OK)
        arb_agent_on_tick((arb_agent *)u, &t);
}

static inline void arb__agent_event_cb(void *u, const arb_msg *m)
{
    arb_agent *a = (arb_agent *)u;
    arb_order_event ev;
    /* order_events are keyed by account: skip others before decoding. */
    if (m->key - a->account_base >= a->n_accounts || arb_replay_seen(&a->replay, m))
        return;
    if (arb_order_event_decode(m->data, m->len, &ev) == ARB_OK)
        arb_agent_on_order_event(a, &ev);
}

static inline void arb__agent_md_cb(void *u, const arb_msg *m)
{
    arb_agent *a = (arb_agent *)u;
    arb_market_data md;
    if (arb_agent_find_key(a, m->key) < 0)
        return;
    if (arb_market_data_decode(m->data, m->len, &md) == ARB_OK)
        arb_agent_on_market_data(a, &md);
}

static inline void arb__agent_mev_cb(void *u, const arb_msg *m)
{
    arb_market_event ev;
    if (arb_market_event_decode(m->data, m->len, &ev) == ARB_OK)
        arb_agent_on_market_event((arb_agent *)u, &ev);
}

/* One stored order event during a cold start's rebuild: events of this
 * agent's own orders (its accounts, its id prefix) rebuild the open orders,
 * positions, cash and fees, with no strategy hook called. */
static inline int arb__agent_recover_cb(void *u, const arb_msg *m)
{
    arb_agent *a = (arb_agent *)u;
    arb_order_event ev;
    if (m->key - a->account_base >= a->n_accounts ||
        arb_order_event_decode(m->data, m->len, &ev) != ARB_OK ||
        ev.order_id >> ARB_AGENT_ID_SEQ_BITS != a->id_prefix)
        return ARB_OK;
    uint64_t seq = ev.order_id & ((1ull << ARB_AGENT_ID_SEQ_BITS) - 1);
    if (seq >= a->next_seq) /* never reuse an id the stored events show */
        a->next_seq = seq + 1;
    if (!arb_agent_order_find(a, ev.order_id)) {
        int ix = arb_agent_find_key(a, arb_instrument_key(ev.venue, ev.symbol));
        if (ix < 0 || ev.account - a->account_base >= a->n_accounts)
            return ARB_OK;
        arb_agent_order o;
        memset(&o, 0, sizeof o);
        o.order_id = ev.order_id;
        o.client_ref = ev.client_ref;
        o.price = o.req_price = ev.price;
        o.qty = o.leaves = ev.qty;
        o.account_ix = (uint32_t)(ev.account - a->account_base);
        o.instrument = (uint16_t)ix;
        o.side = ev.side;
        o.tif = ev.tif;
        o.state = ARB_AO_PENDING;
        if (arb__agent_order_add(a, &o) != ARB_OK)
            return ARB_OK;
    }
    arb_agent_on_order_event(a, &ev);
    return ARB_OK;
}

/* The leftover orders still open, cancelled: the first thing the instance
 * does once live (a timer: a staged instance's timers wait for the commit,
 * and an abandoned one's never run). */
static inline void arb__agent_cancel_leftover(void *u)
{
    arb_agent *a = (arb_agent *)u;
    uint32_t sent = 0;
    for (uint32_t i = 0; i < a->n_leftover; i++) {
        const arb_agent_order *o = arb_agent_order_find(a, a->leftover[i]);
        if (o && !o->cancel_sent && arb_agent_cancel(a, o->order_id) == ARB_OK)
            sent++;
    }
    if (a->n_leftover)
        arb_info(a->ctx, "cancels sent for %u of the %u orders the last run's process left open",
                 sent, a->n_leftover);
    free(a->leftover);
    a->leftover = NULL;
    a->n_leftover = 0;
}

/* A cold start of a run that has stored order_events (a restart, not a hot
 * reload): rebuild from them, then cancel the orders the previous process
 * left open, since the strategy that placed them did not survive it (its
 * quotes would stand beside the new ones), once this instance is live
 * (arb__agent_cancel_leftover). Positions, cash and fees carry on. Nothing
 * happens where the transport stores no order_events. */
static inline void arb__agent_recover(arb_agent *a)
{
    if (a->restored)
        return;
    arb_run_info run;
    arb_run(a->ctx, &run); /* an old host: epoch 0 */
    uint64_t first = ((uint64_t)(run.epoch & 0xffu) << ARB_AGENT_ID_EPOCH_SHIFT) + 1;
    if (first > a->next_seq)
        a->next_seq = first;
    int rc = arb_replay_read(a->ctx, ARB_TOPIC_ORDER_EVENTS, 30 * 1000000000ll,
                             arb__agent_recover_cb, a, &a->replay);
    if (rc == ARB_ENOENT)
        return;
    if (rc != ARB_OK)
        arb_warn(a->ctx,
                 "could not read the stored order events back (%d): positions start from "
                 "what was read",
                 rc);
    uint32_t open = a->count;
    a->leftover = open ? (uint64_t *)malloc(open * sizeof *a->leftover) : NULL;
    for (uint32_t i = 0; a->leftover && i < a->cap; i++)
        if (a->slots[i].order_id)
            a->leftover[a->n_leftover++] = a->slots[i].order_id;
    if (open && (!a->leftover || arb_timer_start(a->ctx, 1, 0, arb__agent_cancel_leftover, a) < 0))
        arb_warn(a->ctx,
                 "cannot schedule the cancels of the %u orders the last run's process "
                 "left open: they stay until this instance stops",
                 open);
    if (a->replay.records)
        arb_info(a->ctx,
                 "resumed from %llu stored order events: %u open orders of the last run's "
                 "process (cancelled once live), next order id seq %llu",
                 (unsigned long long)a->replay.records, open, (unsigned long long)a->next_seq);
}

/* Subscribes to ticks, order events, market data and market events and
 * routes them through the agent's bookkeeping to the hooks. Call from the
 * plugin's start(); the host removes the subscriptions at stop/reload. On a
 * cold start over a transport that stores order_events (the journal, Kafka)
 * it first rebuilds the agent's orders and positions from them.
 * Order events and market data are subscribed by key (arb_subscribe_keys):
 * only its accounts' events and its instruments' books, which are all the
 * bookkeeping reads, so the bus neither delivers nor holds on the agent's
 * latency links what it would ignore. A subscription of the plugin's own
 * to those topics reads what it asks for, as ever. */
static inline int arb_agent_start(arb_agent *a, const arb_agent_hooks *hooks, void *user)
{
    arb__agent_recover(a);
    a->hooks = *hooks;
    a->user = user;
    arb_ctx *c = a->ctx;
    arb_key_range accounts = {a->account_base, a->account_base + a->n_accounts - 1};
    arb_key_range books[ARB_AGENT_MAX_INSTRUMENTS];
    for (uint32_t i = 0; i < a->n_instruments; i++)
        books[i] = (arb_key_range){a->instr[i].key, a->instr[i].key};
    int rc;
    if ((rc = a->n_accounts
                  ? arb_subscribe_keys(c, ARB_TOPIC_ORDER_EVENTS, &accounts, 1, arb__agent_event_cb,
                                       a)
                  : arb_subscribe(c, ARB_TOPIC_ORDER_EVENTS, arb__agent_event_cb, a)) < 0 ||
        (rc = a->n_instruments
                  ? arb_subscribe_keys(c, ARB_TOPIC_MARKET_DATA, books, a->n_instruments,
                                       arb__agent_md_cb, a)
                  : arb_subscribe(c, ARB_TOPIC_MARKET_DATA, arb__agent_md_cb, a)) < 0 ||
        (rc = arb_subscribe(c, ARB_TOPIC_MARKET_EVENTS, arb__agent_mev_cb, a)) < 0 ||
        (rc = arb_subscribe(c, ARB_TOPIC_SYSTEM_TICKS, arb__agent_tick_cb, a)) < 0)
        return rc;
    arb_agent_update_metrics(a);
    return ARB_OK;
}

/* ---- save / restore ---- */

/* Layout (little-endian): magic u64, version u32, n_instruments u32,
 * n_accounts u32, n_stats u32, account_base, id_prefix, next_seq, now,
 * rng[4], stats[n_stats], fee_bps; per instrument: venue[8] symbol[16]
 * top (9 x i64) tot (5 x i64); per account x instrument: 5 x i64;
 * n_orders u32 then orders (ARB__AGENT_ORDER_LEN each); extra_len u32 and
 * the strategy's own bytes. */
#define ARB__AGENT_ORDER_LEN 80u
#define ARB__AGENT_HDR_LEN (24u + 8u * 8u)
#define ARB__AGENT_INSTR_LEN (24u + 9u * 8u + 5u * 8u)
#define ARB__AGENT_POS_LEN 40u

static inline size_t arb__agent_state_len(const arb_agent *a, size_t extra)
{
    return ARB__AGENT_HDR_LEN + ARB_AGENT_STATS_N * 8u + 8u +
           (size_t)a->n_instruments * ARB__AGENT_INSTR_LEN +
           (size_t)a->n_accounts * a->n_instruments * ARB__AGENT_POS_LEN + 4u +
           (size_t)a->count * ARB__AGENT_ORDER_LEN + 4u + extra;
}

static inline uint8_t *arb__put_pos(uint8_t *p, const arb_agent_position *ps)
{
    arb_put_i64(p, ps->position);
    arb_put_i64(p + 8, ps->cash);
    arb_put_i64(p + 16, ps->fees);
    arb_put_i64(p + 24, ps->volume);
    arb_put_i64(p + 32, ps->fills);
    return p + ARB__AGENT_POS_LEN;
}

static inline const uint8_t *arb__get_pos(const uint8_t *p, arb_agent_position *ps)
{
    ps->position = arb_get_i64(p);
    ps->cash = arb_get_i64(p + 8);
    ps->fees = arb_get_i64(p + 16);
    ps->volume = arb_get_i64(p + 24);
    ps->fills = arb_get_i64(p + 32);
    return p + ARB__AGENT_POS_LEN;
}

/* Serialises everything the agent tracks plus `extra` (the strategy's own
 * state, e.g. learned parameters) into malloc'd bytes the caller frees
 * (the host frees what save() returns). No side effects: whether the open
 * orders then belong to a successor is the host's to say, at stop
 * (arb_agent_stop). */
static inline int arb_agent_save(const arb_agent *a, const void *extra, size_t extra_len,
                                 void **bytes, size_t *len)
{
    if (extra_len > UINT32_MAX)
        return ARB_EINVAL;
    size_t n = arb__agent_state_len(a, extra_len);
    uint8_t *buf = (uint8_t *)malloc(n), *p = buf;
    if (!buf)
        return ARB_ENOMEM;
    arb_put_u64(p, ARB_AGENT_STATE_MAGIC);
    arb_put_u32(p + 8, ARB_AGENT_STATE_VERSION);
    arb_put_u32(p + 12, a->n_instruments);
    arb_put_u32(p + 16, a->n_accounts);
    arb_put_u32(p + 20, (uint32_t)ARB_AGENT_STATS_N);
    arb_put_u64(p + 24, a->account_base);
    arb_put_u64(p + 32, a->id_prefix);
    arb_put_u64(p + 40, a->next_seq);
    arb_put_i64(p + 48, a->now);
    for (int i = 0; i < 4; i++)
        arb_put_u64(p + 56 + 8 * i, a->rng.s[i]);
    p += ARB__AGENT_HDR_LEN;
    const uint64_t *st = (const uint64_t *)&a->st;
    for (size_t i = 0; i < ARB_AGENT_STATS_N; i++, p += 8)
        arb_put_u64(p, st[i]);
    arb_put_i64(p, a->fee_bps);
    p += 8;
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        const arb_agent_instrument *in = &a->instr[i];
        memcpy(p, in->venue_f, ARB_VENUE_LEN);
        memcpy(p + 8, in->symbol_f, ARB_SYMBOL_LEN);
        const int64_t t[9] = {in->top.bid_px,      in->top.bid_qty,           in->top.ask_px,
                              in->top.ask_qty,     (int64_t)in->top.book_seq, in->top.ts,
                              in->top.venue_value, in->top.fair_value,        in->top.last_fill_px};
        for (int k = 0; k < 9; k++)
            arb_put_i64(p + 24 + 8 * k, t[k]);
        p = arb__put_pos(p + 24 + 72, &a->tot[i]);
    }
    for (size_t i = 0; i < (size_t)a->n_accounts * a->n_instruments; i++)
        p = arb__put_pos(p, &a->pos[i]);
    arb_put_u32(p, a->count);
    p += 4;
    for (uint32_t i = 0; i < a->cap; i++) {
        const arb_agent_order *o = &a->slots[i];
        if (!o->order_id)
            continue;
        arb_put_u64(p, o->order_id);
        arb_put_u64(p + 8, o->client_ref);
        arb_put_i64(p + 16, o->price);
        arb_put_i64(p + 24, o->qty);
        arb_put_i64(p + 32, o->leaves);
        arb_put_i64(p + 40, o->filled);
        arb_put_i64(p + 48, o->sent_at);
        arb_put_i64(p + 56, o->expire_at);
        arb_put_i64(p + 64, o->req_price);
        arb_put_u32(p + 72, o->account_ix);
        arb_put_u16(p + 76, o->instrument);
        p[78] = o->side;
        p[79] = (uint8_t)(o->tif | (o->state << 3) | (o->cancel_sent << 6));
        p += ARB__AGENT_ORDER_LEN;
    }
    arb_put_u32(p, (uint32_t)extra_len);
    p += 4;
    if (extra_len)
        memcpy(p, extra, extra_len);
    *bytes = buf;
    *len = n;
    return ARB_OK;
}

/* Adopts a saved state into a freshly initialised agent (same config). It
 * refuses (ARB_EREFUSED, agent unchanged) bytes of another format, another
 * account range or another instrument list, and anything malformed. On
 * success *extra points at the strategy's bytes inside `bytes`. */
static inline int arb_agent_restore(arb_agent *a, const void *bytes, size_t len, const void **extra,
                                    size_t *extra_len)
{
    const uint8_t *p = (const uint8_t *)bytes, *end = p + len;
    if (len < ARB__AGENT_HDR_LEN || arb_get_u64(p) != ARB_AGENT_STATE_MAGIC ||
        arb_get_u32(p + 8) != ARB_AGENT_STATE_VERSION || arb_get_u32(p + 12) != a->n_instruments ||
        arb_get_u32(p + 16) != a->n_accounts || arb_get_u32(p + 20) != ARB_AGENT_STATS_N ||
        arb_get_u64(p + 24) != a->account_base)
        return ARB_EREFUSED;
    /* The fixed part: everything but the orders and the extra bytes. */
    if (len < arb__agent_state_len(
                  &(arb_agent){.n_instruments = a->n_instruments, .n_accounts = a->n_accounts}, 0))
        return ARB_EREFUSED;
    arb_agent n;
    memcpy(&n, a, sizeof n);
    n.slots = NULL;
    n.heap = NULL;
    n.cap = n.count = n.heap_n = n.heap_cap = n.open_n = 0;
    n.open_sum = 0;
    n.pos = (arb_agent_position *)calloc((size_t)a->n_accounts * a->n_instruments, sizeof *n.pos);
    if (!n.pos)
        return ARB_ENOMEM;
    n.id_prefix = arb_get_u64(p + 32);
    n.next_seq = arb_get_u64(p + 40);
    n.now = arb_get_i64(p + 48);
    for (int i = 0; i < 4; i++)
        n.rng.s[i] = arb_get_u64(p + 56 + 8 * i);
    p += ARB__AGENT_HDR_LEN;
    uint64_t *st = (uint64_t *)&n.st;
    for (size_t i = 0; i < ARB_AGENT_STATS_N; i++, p += 8)
        st[i] = arb_get_u64(p);
    n.fee_bps = arb_get_i64(p);
    p += 8;
    int rc = ARB_EREFUSED;
    for (uint32_t i = 0; i < a->n_instruments; i++) {
        arb_agent_instrument *in = &n.instr[i];
        if (memcmp(p, in->venue_f, ARB_VENUE_LEN) || memcmp(p + 8, in->symbol_f, ARB_SYMBOL_LEN))
            goto fail;
        int64_t t[9];
        for (int k = 0; k < 9; k++)
            t[k] = arb_get_i64(p + 24 + 8 * k);
        in->top.bid_px = t[0], in->top.bid_qty = t[1], in->top.ask_px = t[2];
        in->top.ask_qty = t[3], in->top.book_seq = (uint64_t)t[4], in->top.ts = t[5];
        in->top.venue_value = t[6], in->top.fair_value = t[7], in->top.last_fill_px = t[8];
        p = arb__get_pos(p + 24 + 72, &n.tot[i]);
    }
    for (size_t i = 0; i < (size_t)a->n_accounts * a->n_instruments; i++)
        p = arb__get_pos(p, &n.pos[i]);
    uint32_t n_orders = arb_get_u32(p);
    p += 4;
    if ((size_t)(end - p) < (size_t)n_orders * ARB__AGENT_ORDER_LEN + 4u)
        goto fail;
    for (uint32_t i = 0; i < n_orders; i++, p += ARB__AGENT_ORDER_LEN) {
        arb_agent_order o;
        memset(&o, 0, sizeof o);
        o.order_id = arb_get_u64(p);
        o.client_ref = arb_get_u64(p + 8);
        o.price = arb_get_i64(p + 16);
        o.qty = arb_get_i64(p + 24);
        o.leaves = arb_get_i64(p + 32);
        o.filled = arb_get_i64(p + 40);
        o.sent_at = arb_get_i64(p + 48);
        o.expire_at = arb_get_i64(p + 56);
        o.req_price = arb_get_i64(p + 64);
        o.account_ix = arb_get_u32(p + 72);
        o.instrument = arb_get_u16(p + 76);
        o.side = p[78];
        o.tif = p[79] & 7u;
        o.state = (uint8_t)((p[79] >> 3) & 7u);
        o.cancel_sent = (uint8_t)(p[79] >> 6);
        if (o.account_ix >= a->n_accounts || o.instrument >= a->n_instruments ||
            (o.side != ARB_SIDE_BUY && o.side != ARB_SIDE_SELL) || o.tif > ARB_TIF_FOK ||
            (o.state != ARB_AO_PENDING && o.state != ARB_AO_OPEN) || o.cancel_sent > 1)
            goto fail;
        if ((rc = arb__agent_order_add(&n, &o)) != ARB_OK) {
            rc = rc == ARB_ENOMEM ? rc : ARB_EREFUSED;
            goto fail;
        }
        rc = ARB_EREFUSED;
        if (o.expire_at && !o.cancel_sent && arb__agent_heap_push(&n, o.expire_at, o.order_id)) {
            rc = ARB_ENOMEM;
            goto fail;
        }
    }
    uint32_t xlen = arb_get_u32(p);
    p += 4;
    if ((size_t)(end - p) != xlen)
        goto fail;
    *extra = xlen ? p : NULL;
    *extra_len = xlen;
    free(a->pos);
    free(a->slots);
    free(a->heap);
    *a = n;
    a->restored = 1;
    arb_agent_update_metrics(a);
    return ARB_OK;
fail:
    free(n.pos);
    free(n.slots);
    free(n.heap);
    return rc;
}

/* ---- a whole plugin from a strategy ---- */

/* The plugin hooks of an agent whose state is its arb_agent (a strategy
 * struct with `arb_agent agent` as its first member). Used by
 * ARB_AGENT_PLUGIN; strategies with state of their own write the
 * descriptor themselves and call arb_agent_save/restore with `extra`. */
static inline int arb_agent_plugin_create(arb_ctx *ctx, void **self, size_t size,
                                          int (*configure)(arb_ctx *, void *))
{
    arb_agent *a = (arb_agent *)calloc(1, size);
    if (!a)
        return ARB_ENOMEM;
    int rc = arb_agent_init(a, ctx);
    if (rc == ARB_OK && configure)
        rc = configure(ctx, a);
    if (rc) {
        arb_agent_free(a);
        free(a);
        return rc;
    }
    *self = a;
    return ARB_OK;
}

/* An agent that stops with no instance taking its orders over cancels
 * them: left on the book, they would go on filling with nobody managing
 * them. That is every stop but one whose successor adopted the saved state
 * (arb_state_adopted): removed by a SIGHUP, the process stopping, or a
 * successor that refused the state (a changed config it cannot carry over)
 * and starts empty. Call it from the plugin's stop. */
static inline void arb_agent_stop(arb_agent *a)
{
    if (!a->count || arb_state_adopted(a->ctx))
        return;
    uint32_t open = a->count;
    arb_agent_cancel_all(a, -1);
    arb_info(a->ctx, "stopping with no successor: cancels sent for its %u open orders", open);
}

static inline void arb_agent_plugin_stop(void *self) { arb_agent_stop((arb_agent *)self); }

static inline void arb_agent_plugin_destroy(void *self)
{
    arb_agent_free((arb_agent *)self);
    free(self);
}

static inline int arb_agent_plugin_save(void *self, void **bytes, size_t *len)
{
    return arb_agent_save((arb_agent *)self, NULL, 0, bytes, len);
}

static inline int arb_agent_plugin_restore(void *self, uint32_t version, const void *bytes,
                                           size_t len)
{
    const void *extra;
    size_t extra_len;
    if (version != ARB_AGENT_STATE_VERSION)
        return ARB_EREFUSED;
    int rc = arb_agent_restore((arb_agent *)self, bytes, len, &extra, &extra_len);
    return rc ? rc : extra_len ? ARB_EREFUSED : ARB_OK;
}

/* Defines the plugin of an agent in one line:
 *   ARB_AGENT_PLUGIN("value_taker", "1.0", value_taker, configure, .on_tick = on_tick)
 * TYPE is a struct whose first member is `arb_agent agent`; CONFIGURE is
 * int configure(arb_ctx *, TYPE *) reading the strategy's own keys (after
 * the common ones, arb_agent_init); the rest initialises arb_agent_hooks.
 * The hooks get the TYPE * as `user`. Save/restore carry the arb_agent. */
#define ARB_AGENT_PLUGIN(NAME, VERSION, TYPE, CONFIGURE, ...)                                   \
    _Static_assert(offsetof(TYPE, agent) == 0, "arb_agent must be the first member");           \
    static int arb__agent_configure(arb_ctx *c, void *s) { return CONFIGURE(c, (TYPE *)s); }    \
    static int arb__agent_create(arb_ctx *c, void **s)                                          \
    {                                                                                           \
        return arb_agent_plugin_create(c, s, sizeof(TYPE), arb__agent_configure);               \
    }                                                                                           \
    static int arb__agent_start(void *s)                                                        \
    {                                                                                           \
        static const arb_agent_hooks hooks = {__VA_ARGS__};                                     \
        return arb_agent_start((arb_agent *)s, &hooks, s);                                      \
    }                                                                                           \
    /* What arb_agent_start subscribes to and what the agent sends, for --check. */             \
    static const char *const arb__agent_publishes[] = {"order_commands", NULL};                 \
    static const char *const arb__agent_subscribes[] = {"order_events", "market_data",          \
                                                        "market_events", "system_ticks", NULL}; \
    static const arb_plugin arb__agent_plugin = {                                               \
        .abi_version = ARB_ABI_VERSION,                                                         \
        .size = sizeof(arb_plugin),                                                             \
        .name = NAME,                                                                           \
        .version = VERSION,                                                                     \
        .state_version = ARB_AGENT_STATE_VERSION,                                               \
        .publishes = arb__agent_publishes,                                                      \
        .subscribes = arb__agent_subscribes,                                                    \
        .create = arb__agent_create,                                                            \
        .start = arb__agent_start,                                                              \
        .stop = arb_agent_plugin_stop,                                                          \
        .destroy = arb_agent_plugin_destroy,                                                    \
        .save = arb_agent_plugin_save,                                                          \
        .restore = arb_agent_plugin_restore,                                                    \
    };                                                                                          \
    ARB_PLUGIN_DEFINE(arb__agent_plugin)

#ifdef __cplusplus
}
#endif
#endif /* ARB_AGENT_H */
