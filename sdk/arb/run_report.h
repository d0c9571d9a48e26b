/*
 * arb/run_report.h -- the figures of a run, from its order events and trades.
 *
 * One accumulator, fed the same records two ways: in process by the digest
 * plugin at the end of a simulation (from the bus), and by `arbctl report`
 * from PostgreSQL (the recorder's order_events and trades). So the table a
 * simulation prints and the report of the same run, recorded, agree.
 *
 * Per agent (a name over a range of accounts): PnL gross (cash plus positions
 * marked to each instrument's last trade) and net of fees, fees paid, volume
 * (base quantity) and notional (quote), fills, orders sent and the fill ratio
 * (orders with at least one fill / orders sent), the largest position (base
 * quantity, signed, and its instrument), the largest drawdown of the equity
 * (net PnL, measured after every fill and at every bucket end), PnL per
 * simulated hour, and a Sharpe-like ratio: mean / standard deviation of the
 * equity's change over fixed buckets of simulated time (`bucket_ns`), not
 * annualised. Per instrument (venue and symbol): trades, volume, the
 * time-weighted average spread while both sides had orders, and the time its
 * best bid stood above another venue's best ask of the same symbol
 * ("crossed"). The book is rebuilt from the order events (an order rests
 * from its accepted event with its leaves quantity until it is filled,
 * cancelled or expired), so it needs no market data, which is not recorded.
 *
 * Money is reported in the quote currency as double: a report, not an
 * account statement (the exact integers are in the tables). Fees are in
 * price units (10^-price_decimals of the quote), as the fee fields of the
 * wire and the recorder carry them (0 in records from before fees).
 *
 * Not here: reading PostgreSQL or the bus (the callers), and deciding which
 * accounts are agents (arb_rr_agent: the caller names them, from the
 * configuration's [plugin] sections with an `account`). Accounts in no
 * agent's range are summed in one row, "other".
 */
#ifndef ARB_RUN_REPORT_H
#define ARB_RUN_REPORT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arb/wire.h>

#define ARB_RR_MAX_AGENTS 64
#define ARB_RR_MAX_INSTR 32
#define ARB_RR_NAME_LEN 40

typedef struct arb_rr_level {
    int64_t price, qty;
} arb_rr_level;

typedef struct arb_rr_side {
    arb_rr_level *lv; /* sorted by price, ascending */
    uint32_t n, cap;
} arb_rr_side;

typedef struct arb_rr_instr {
    char venue[ARB_VENUE_LEN + 1], symbol[ARB_SYMBOL_LEN + 1];
    double px_scale, qty_scale; /* 10^-decimals */
    arb_rr_side bids, asks;
    int64_t last_px; /* last trade, price units */
    uint64_t trades;
    double volume;
    double spread_time; /* sum of spread x ns while both sides had orders */
    int64_t two_sided_ns, crossed_ns;
    double bucket_spread_time;
    int64_t bucket_two_sided_ns;
    double *spread_series; /* per bucket, NAN when one-sided all bucket */
} arb_rr_instr;

typedef struct arb_rr_agent {
    char name[ARB_RR_NAME_LEN];
    uint64_t first_account, n_accounts;
    double cash, fees, volume, notional;
    double pos[ARB_RR_MAX_INSTR];
    uint64_t fills, orders, filled_orders;
    double max_pos;
    int max_pos_instr;
    double peak, max_drawdown;
    int have_peak;
    double last_bucket_equity, sum_r, sum_r2;
    uint32_t n_r;
    double *equity_series, *position_series;
} arb_rr_agent;

/* An order the accumulator still follows: open addressing by id. */
typedef struct arb_rr_order {
    uint64_t id; /* 0: empty slot */
    int64_t price, leaves;
    int16_t agent, instr;
    uint8_t side, live, filled, seen;
} arb_rr_order;

typedef struct arb_rr_figures {
    double pnl_gross, pnl_net, fees, volume, notional, fill_ratio, max_position, max_drawdown,
        pnl_per_hour, sharpe;
    uint64_t fills, orders;
    const char *max_position_instrument; /* "VENUE:SYMBOL" or "-" */
} arb_rr_figures;

/* An agent's running totals at the split (a hot reload's time). */
typedef struct arb_rr_part {
    double equity, fees, volume;
    uint64_t fills, orders;
} arb_rr_part;

typedef struct arb_rr {
    int64_t bucket_ns;
    int64_t first_ts, last_ts, bucket_end;
    int started;
    arb_rr_instr instr[ARB_RR_MAX_INSTR];
    uint32_t n_instr;
    arb_rr_agent agent[ARB_RR_MAX_AGENTS + 1]; /* the last one used: "other" */
    uint32_t n_agents;
    arb_rr_order *orders;
    size_t order_cap, order_count;
    int64_t split_ts; /* 0: none; else figures before and after this time */
    int split_done;
    arb_rr_part before[ARB_RR_MAX_AGENTS + 1];
    int64_t *bucket_ts; /* end of each closed bucket */
    uint32_t n_buckets, bucket_cap;
    int oom;
} arb_rr;

static inline int arb_rr_init(arb_rr *r, int64_t bucket_ns)
{
    memset(r, 0, sizeof *r);
    r->bucket_ns = bucket_ns > 0 ? bucket_ns : 10000000000LL;
    return 0;
}

/* Names accounts [first, first + n) as one agent. Call before feeding. */
static inline int arb_rr_agent_add(arb_rr *r, const char *name, uint64_t first, uint64_t n)
{
    if (r->n_agents >= ARB_RR_MAX_AGENTS)
        return -1;
    arb_rr_agent *a = &r->agent[r->n_agents++];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->first_account = first;
    a->n_accounts = n ? n : 1;
    a->max_pos_instr = -1;
    return 0;
}

/* The index of an instrument, added on first sight; -1 when full. */
static inline int arb_rr_instrument(arb_rr *r, const char *venue, const char *symbol,
                                    int price_decimals, int qty_decimals)
{
    for (uint32_t i = 0; i < r->n_instr; i++)
        if (!strcmp(r->instr[i].venue, venue) && !strcmp(r->instr[i].symbol, symbol))
            return (int)i;
    if (r->n_instr >= ARB_RR_MAX_INSTR)
        return -1;
    arb_rr_instr *in = &r->instr[r->n_instr];
    snprintf(in->venue, sizeof in->venue, "%s", venue);
    snprintf(in->symbol, sizeof in->symbol, "%s", symbol);
    in->px_scale = pow(10.0, -price_decimals);
    in->qty_scale = pow(10.0, -qty_decimals);
    return (int)r->n_instr++;
}

static inline int arb__rr_agent_of(const arb_rr *r, uint64_t account)
{
    for (uint32_t i = 0; i < r->n_agents; i++)
        if (account >= r->agent[i].first_account &&
            account - r->agent[i].first_account < r->agent[i].n_accounts)
            return (int)i;
    return ARB_RR_MAX_AGENTS; /* "other" */
}

/* ---- the rebuilt book ---- */

static inline uint32_t arb__rr_find(const arb_rr_side *s, int64_t price)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->lv[mid].price < price)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static inline void arb__rr_level_add(arb_rr *r, arb_rr_side *s, int64_t price, int64_t qty)
{
    uint32_t i = arb__rr_find(s, price);
    if (i < s->n && s->lv[i].price == price) {
        s->lv[i].qty += qty;
        if (s->lv[i].qty <= 0) {
            memmove(&s->lv[i], &s->lv[i + 1], (s->n - i - 1) * sizeof *s->lv);
            s->n--;
        }
        return;
    }
    if (qty <= 0)
        return;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 64;
        arb_rr_level *g = (arb_rr_level *)realloc(s->lv, cap * sizeof *g);
        if (!g) {
            r->oom = 1;
            return;
        }
        s->lv = g;
        s->cap = cap;
    }
    memmove(&s->lv[i + 1], &s->lv[i], (s->n - i) * sizeof *s->lv);
    s->lv[i] = (arb_rr_level){price, qty};
    s->n++;
}

static inline int arb__rr_best(const arb_rr_instr *in, int64_t *bid, int64_t *ask)
{
    if (!in->bids.n || !in->asks.n)
        return 0;
    *bid = in->bids.lv[in->bids.n - 1].price;
    *ask = in->asks.lv[0].price;
    return 1;
}

/* ---- orders ---- */

static inline uint64_t arb__rr_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static inline arb_rr_order *arb__rr_order(arb_rr *r, uint64_t id, int create)
{
    if (!id)
        return NULL;
    if (create && (r->order_count + 1) * 2 > r->order_cap) {
        size_t cap = r->order_cap ? r->order_cap * 2 : 4096;
        arb_rr_order *g = (arb_rr_order *)calloc(cap, sizeof *g);
        if (!g) {
            r->oom = 1;
            return NULL;
        }
        for (size_t i = 0; i < r->order_cap; i++) {
            if (!r->orders[i].id)
                continue;
            size_t k = arb__rr_mix(r->orders[i].id) & (cap - 1);
            while (g[k].id)
                k = (k + 1) & (cap - 1);
            g[k] = r->orders[i];
        }
        free(r->orders);
        r->orders = g;
        r->order_cap = cap;
    }
    if (!r->order_cap)
        return NULL;
    size_t mask = r->order_cap - 1, k = arb__rr_mix(id) & mask;
    while (r->orders[k].id && r->orders[k].id != id)
        k = (k + 1) & mask;
    if (r->orders[k].id == id)
        return &r->orders[k];
    if (!create)
        return NULL;
    r->orders[k] = (arb_rr_order){.id = id};
    r->order_count++;
    return &r->orders[k];
}

/* Removes an order, shifting the probe chain back (no tombstones). */
static inline void arb__rr_order_drop(arb_rr *r, arb_rr_order *o)
{
    size_t mask = r->order_cap - 1, i = (size_t)(o - r->orders), j = i;
    r->orders[i].id = 0;
    r->order_count--;
    for (;;) {
        j = (j + 1) & mask;
        if (!r->orders[j].id)
            return;
        size_t k = arb__rr_mix(r->orders[j].id) & mask;
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            r->orders[i] = r->orders[j];
            r->orders[j].id = 0;
            i = j;
        }
    }
}

/* ---- time ---- */

static inline double arb__rr_equity(const arb_rr *r, const arb_rr_agent *a)
{
    double e = a->cash - a->fees;
    for (uint32_t i = 0; i < r->n_instr; i++)
        if (a->pos[i] != 0)
            e += a->pos[i] * (double)r->instr[i].last_px * r->instr[i].px_scale;
    return e;
}

static inline void arb__rr_drawdown(const arb_rr *r, arb_rr_agent *a)
{
    double e = arb__rr_equity(r, a);
    if (!a->have_peak || e > a->peak) {
        a->peak = e;
        a->have_peak = 1;
    }
    if (a->peak - e > a->max_drawdown)
        a->max_drawdown = a->peak - e;
}

static inline int arb__rr_grow(arb_rr *r, double **series, uint32_t cap)
{
    double *g = (double *)realloc(*series, cap * sizeof *g);
    if (!g) {
        r->oom = 1;
        return -1;
    }
    *series = g;
    return 0;
}

static inline void arb__rr_close_bucket(arb_rr *r)
{
    if (r->n_buckets == r->bucket_cap) {
        uint32_t cap = r->bucket_cap ? r->bucket_cap * 2 : 64;
        int64_t *g = (int64_t *)realloc(r->bucket_ts, cap * sizeof *g);
        if (!g) {
            r->oom = 1;
            return;
        }
        r->bucket_ts = g;
        for (uint32_t i = 0; i <= ARB_RR_MAX_AGENTS; i++)
            if (arb__rr_grow(r, &r->agent[i].equity_series, cap) ||
                arb__rr_grow(r, &r->agent[i].position_series, cap))
                return;
        for (uint32_t i = 0; i < ARB_RR_MAX_INSTR; i++)
            if (arb__rr_grow(r, &r->instr[i].spread_series, cap))
                return;
        r->bucket_cap = cap;
    }
    uint32_t k = r->n_buckets++;
    r->bucket_ts[k] = r->bucket_end;
    for (uint32_t i = 0; i <= ARB_RR_MAX_AGENTS; i++) {
        arb_rr_agent *a = &r->agent[i];
        double e = arb__rr_equity(r, a), pos = 0;
        for (uint32_t j = 0; j < r->n_instr; j++)
            pos += a->pos[j];
        a->equity_series[k] = e;
        a->position_series[k] = pos;
        double d = e - a->last_bucket_equity;
        a->last_bucket_equity = e;
        a->sum_r += d;
        a->sum_r2 += d * d;
        a->n_r++;
        arb__rr_drawdown(r, a);
    }
    for (uint32_t i = 0; i < r->n_instr; i++) {
        arb_rr_instr *in = &r->instr[i];
        in->spread_series[k] = in->bucket_two_sided_ns
                                   ? in->bucket_spread_time / (double)in->bucket_two_sided_ns
                                   : NAN;
        in->bucket_spread_time = 0;
        in->bucket_two_sided_ns = 0;
    }
}

/* Spreads and crossings held from the last record's time until `until`. */
static inline void arb__rr_accrue(arb_rr *r, int64_t until)
{
    int64_t dt = until - r->last_ts;
    if (dt <= 0)
        return;
    for (uint32_t i = 0; i < r->n_instr; i++) {
        arb_rr_instr *in = &r->instr[i];
        int64_t bid, ask;
        if (!arb__rr_best(in, &bid, &ask))
            continue;
        double spread = (double)(ask - bid) * in->px_scale;
        in->spread_time += spread * (double)dt;
        in->two_sided_ns += dt;
        in->bucket_spread_time += spread * (double)dt;
        in->bucket_two_sided_ns += dt;
        for (uint32_t j = 0; j < r->n_instr; j++) {
            int64_t b2, a2;
            if (j != i && !strcmp(r->instr[j].symbol, in->symbol) &&
                arb__rr_best(&r->instr[j], &b2, &a2) && bid > a2) {
                in->crossed_ns += dt;
                break;
            }
        }
    }
    r->last_ts = until;
}

static inline void arb__rr_take_split(arb_rr *r)
{
    for (uint32_t i = 0; i <= ARB_RR_MAX_AGENTS; i++) {
        const arb_rr_agent *a = &r->agent[i];
        r->before[i] = (arb_rr_part){arb__rr_equity(r, a), a->fees, a->volume, a->fills, a->orders};
    }
    r->split_done = 1;
}

static inline void arb__rr_advance(arb_rr *r, int64_t ts)
{
    if (r->split_ts && !r->split_done && ts >= r->split_ts)
        arb__rr_take_split(r);
    if (!r->started) {
        r->started = 1;
        r->first_ts = r->last_ts = ts;
        r->bucket_end = ts + r->bucket_ns;
        return;
    }
    if (ts < r->last_ts) /* out of order by a little: counts at the last time */
        return;
    while (ts >= r->bucket_end && !r->oom) {
        arb__rr_accrue(r, r->bucket_end);
        arb__rr_close_bucket(r);
        r->bucket_end += r->bucket_ns;
    }
    arb__rr_accrue(r, ts);
}

/* ---- feeding ---- */

/* One order event (arb_order_event's fields; kind is enum arb_event_kind,
 * side enum arb_side, fee in price units). */
static inline void arb_rr_order_event(arb_rr *r, int instr, uint64_t order_id, uint64_t account,
                                      unsigned kind, unsigned side, int64_t price, int64_t leaves,
                                      int64_t last_px, int64_t last_qty, int64_t fee, int64_t ts)
{
    if (instr < 0 || (uint32_t)instr >= r->n_instr)
        return;
    arb__rr_advance(r, ts);
    arb_rr_instr *in = &r->instr[instr];
    arb_rr_agent *a = &r->agent[arb__rr_agent_of(r, account)];
    arb_rr_order *o = arb__rr_order(r, order_id, 1);
    if (!o)
        return;
    if (!o->seen) {
        /* First sight: a new order. */
        o->seen = 1;
        o->agent = (int16_t)(a - r->agent);
        o->instr = (int16_t)instr;
        o->side = (uint8_t)side;
        if (kind == ARB_EV_ACCEPTED || kind == ARB_EV_REJECTED)
            a->orders++;
    }
    arb_rr_side *book = o->side == ARB_SIDE_BUY ? &in->bids : &in->asks;
    if (o->live)
        arb__rr_level_add(r, book, o->price, -o->leaves);
    o->live = 0;
    if ((kind == ARB_EV_PARTIAL || kind == ARB_EV_FILLED) && last_qty > 0) {
        double q = (double)last_qty * in->qty_scale, px = (double)last_px * in->px_scale;
        double sign = side == ARB_SIDE_BUY ? 1.0 : -1.0;
        a->pos[instr] += sign * q;
        a->cash -= sign * q * px;
        a->fees += (double)fee * in->px_scale;
        a->volume += q;
        a->notional += q * px;
        a->fills++;
        if (!o->filled) {
            o->filled = 1;
            a->filled_orders++;
        }
        if (fabs(a->pos[instr]) > fabs(a->max_pos)) {
            a->max_pos = a->pos[instr];
            a->max_pos_instr = instr;
        }
        in->last_px = last_px;
        arb__rr_drawdown(r, a);
    }
    if ((kind == ARB_EV_ACCEPTED || kind == ARB_EV_PARTIAL || kind == ARB_EV_REPLACED) &&
        leaves > 0) {
        o->live = 1;
        o->price = price;
        o->leaves = leaves;
        arb__rr_level_add(r, book, price, leaves);
    } else if (kind == ARB_EV_FILLED || kind == ARB_EV_CANCELLED || kind == ARB_EV_EXPIRED ||
               kind == ARB_EV_REJECTED) {
        arb__rr_order_drop(r, o);
    }
}

static inline void arb_rr_trade(arb_rr *r, int instr, int64_t price, int64_t qty, int64_t ts)
{
    if (instr < 0 || (uint32_t)instr >= r->n_instr)
        return;
    arb__rr_advance(r, ts);
    arb_rr_instr *in = &r->instr[instr];
    in->trades++;
    in->volume += (double)qty * in->qty_scale;
    in->last_px = price;
}

/* Closes the last (partial) bucket. */
static inline void arb_rr_finish(arb_rr *r)
{
    if (!r->started || r->oom)
        return;
    if (r->split_ts && !r->split_done) /* nothing after the split yet */
        arb__rr_take_split(r);
    /* Records at a bucket's end belong to the next bucket: the state after
     * the last of them counts for the drawdown even when no bucket follows. */
    for (uint32_t i = 0; i <= ARB_RR_MAX_AGENTS; i++)
        arb__rr_drawdown(r, &r->agent[i]);
    if (r->last_ts > r->bucket_end - r->bucket_ns) {
        r->bucket_end = r->last_ts;
        arb__rr_close_bucket(r);
    }
}

static inline void arb_rr_free(arb_rr *r)
{
    for (uint32_t i = 0; i < ARB_RR_MAX_INSTR; i++) {
        free(r->instr[i].bids.lv);
        free(r->instr[i].asks.lv);
        free(r->instr[i].spread_series);
    }
    for (uint32_t i = 0; i <= ARB_RR_MAX_AGENTS; i++) {
        free(r->agent[i].equity_series);
        free(r->agent[i].position_series);
    }
    free(r->orders);
    free(r->bucket_ts);
    memset(r, 0, sizeof *r);
}

/* ---- figures ---- */

static inline int64_t arb_rr_duration_ns(const arb_rr *r)
{
    return r->started ? r->last_ts - r->first_ts : 0;
}

/* Whether row i (0..n_agents-1, then ARB_RR_MAX_AGENTS for "other") did anything. */
static inline int arb_rr_agent_active(const arb_rr *r, uint32_t i)
{
    return r->agent[i].orders || r->agent[i].fills;
}

static inline void arb_rr_agent_figures(const arb_rr *r, uint32_t i, arb_rr_figures *f,
                                        char instr_name[ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2])
{
    const arb_rr_agent *a = &r->agent[i];
    memset(f, 0, sizeof *f);
    f->pnl_net = arb__rr_equity(r, a);
    f->fees = a->fees;
    f->pnl_gross = f->pnl_net + a->fees;
    f->volume = a->volume;
    f->notional = a->notional;
    f->fills = a->fills;
    f->orders = a->orders;
    f->fill_ratio = a->orders ? (double)a->filled_orders / (double)a->orders : 0;
    f->max_position = a->max_pos;
    f->max_drawdown = a->max_drawdown;
    double hours = (double)arb_rr_duration_ns(r) / 3.6e12;
    f->pnl_per_hour = hours > 0 ? f->pnl_net / hours : 0;
    if (a->n_r >= 2) {
        double mean = a->sum_r / a->n_r;
        double var = (a->sum_r2 - a->n_r * mean * mean) / (a->n_r - 1);
        f->sharpe = var > 1e-18 ? mean / sqrt(var) : 0;
    }
    if (a->max_pos_instr >= 0)
        snprintf(instr_name, ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2, "%s:%s",
                 r->instr[a->max_pos_instr].venue, r->instr[a->max_pos_instr].symbol);
    else
        snprintf(instr_name, ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2, "-");
    f->max_position_instrument = instr_name;
}

/* ---- output ---- */

/* The short table: one line per agent that did anything, one per instrument. */
static inline void arb_rr_print_table(const arb_rr *r, FILE *out)
{
    fprintf(out, "%-14s %12s %12s %9s %11s %7s %6s %18s %11s %11s %7s\n", "AGENT", "PNL_NET",
            "PNL_GROSS", "FEES", "VOLUME", "FILLS", "FILL%", "MAX_POSITION", "DRAWDOWN",
            "PNL/SIM_H", "SHARPE");
    for (uint32_t k = 0; k <= r->n_agents; k++) {
        uint32_t i = k < r->n_agents ? k : ARB_RR_MAX_AGENTS;
        if (!arb_rr_agent_active(r, i))
            continue;
        arb_rr_figures f;
        char in[ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2], pos[48];
        arb_rr_agent_figures(r, i, &f, in);
        snprintf(pos, sizeof pos, "%.3f %s", f.max_position, in);
        fprintf(out, "%-14s %12.2f %12.2f %9.2f %11.3f %7llu %5.1f%% %18s %11.2f %11.2f %7.3f\n",
                i == ARB_RR_MAX_AGENTS ? "other" : r->agent[i].name, f.pnl_net, f.pnl_gross, f.fees,
                f.volume, (unsigned long long)f.fills, 100.0 * f.fill_ratio, pos, f.max_drawdown,
                f.pnl_per_hour, f.sharpe);
        if (r->split_done) {
            const arb_rr_part *b = &r->before[i];
            fprintf(out, "  %-12s %12.2f %12.2f %9.2f %11.3f %7llu\n", "before split", b->equity,
                    b->equity + b->fees, b->fees, b->volume, (unsigned long long)b->fills);
            fprintf(out, "  %-12s %12.2f %12.2f %9.2f %11.3f %7llu\n", "after split",
                    f.pnl_net - b->equity, f.pnl_gross - b->equity - b->fees, f.fees - b->fees,
                    f.volume - b->volume, (unsigned long long)(f.fills - b->fills));
        }
    }
    fprintf(out, "%-14s %12s %12s %12s %12s\n", "VENUE", "TRADES", "VOLUME", "AVG_SPREAD",
            "CROSSED_S");
    for (uint32_t i = 0; i < r->n_instr; i++) {
        const arb_rr_instr *in = &r->instr[i];
        char name[ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2];
        snprintf(name, sizeof name, "%s:%s", in->venue, in->symbol);
        fprintf(out, "%-14s %12llu %12.3f %12.4f %12.3f\n", name, (unsigned long long)in->trades,
                in->volume, in->two_sided_ns ? in->spread_time / (double)in->two_sided_ns : 0.0,
                (double)in->crossed_ns / 1e9);
    }
}

static inline void arb__rr_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static inline void arb__rr_json_num(FILE *out, double v)
{
    if (isfinite(v))
        fprintf(out, "%.10g", v);
    else
        fputs("null", out);
}

/* The report as one JSON object: {"run": <run_json or null>, "duration_ns",
 * "bucket_ns", "agents": [...], "venues": [...], "series": {...}}. run_json
 * is inserted as given (the caller's JSON object, or NULL). */
static inline void arb_rr_print_json(const arb_rr *r, FILE *out, const char *run_json)
{
    fprintf(out,
            "{\"run\":%s,\"duration_ns\":%lld,\"bucket_ns\":%lld,\"first_ts\":%lld,"
            "\"split_ts\":%lld,",
            run_json ? run_json : "null", (long long)arb_rr_duration_ns(r), (long long)r->bucket_ns,
            (long long)r->first_ts, (long long)(r->split_done ? r->split_ts : 0));
    fputs("\"agents\":[", out);
    int first = 1;
    for (uint32_t k = 0; k <= r->n_agents; k++) {
        uint32_t i = k < r->n_agents ? k : ARB_RR_MAX_AGENTS;
        if (!arb_rr_agent_active(r, i))
            continue;
        arb_rr_figures f;
        char in[ARB_VENUE_LEN + ARB_SYMBOL_LEN + 2];
        arb_rr_agent_figures(r, i, &f, in);
        fputs(first ? "{\"name\":" : ",{\"name\":", out);
        first = 0;
        arb__rr_json_str(out, i == ARB_RR_MAX_AGENTS ? "other" : r->agent[i].name);
        fprintf(out, ",\"first_account\":%llu,\"accounts\":%llu",
                (unsigned long long)r->agent[i].first_account,
                (unsigned long long)r->agent[i].n_accounts);
        const struct {
            const char *key;
            double v;
        } nums[] = {{"pnl_net", f.pnl_net},
                    {"pnl_gross", f.pnl_gross},
                    {"fees", f.fees},
                    {"volume", f.volume},
                    {"notional", f.notional},
                    {"fill_ratio", f.fill_ratio},
                    {"max_position", f.max_position},
                    {"max_drawdown", f.max_drawdown},
                    {"pnl_per_sim_hour", f.pnl_per_hour},
                    {"sharpe", f.sharpe}};
        for (size_t n = 0; n < sizeof nums / sizeof nums[0]; n++) {
            fprintf(out, ",\"%s\":", nums[n].key);
            arb__rr_json_num(out, nums[n].v);
        }
        fprintf(out, ",\"fills\":%llu,\"orders\":%llu,\"max_position_instrument\":",
                (unsigned long long)f.fills, (unsigned long long)f.orders);
        arb__rr_json_str(out, in);
        if (r->split_done) {
            const arb_rr_part *b = &r->before[i];
            fprintf(out, ",\"before\":{\"pnl_net\":");
            arb__rr_json_num(out, b->equity);
            fprintf(out, ",\"fees\":");
            arb__rr_json_num(out, b->fees);
            fprintf(out, ",\"volume\":");
            arb__rr_json_num(out, b->volume);
            fprintf(out, ",\"fills\":%llu,\"orders\":%llu},\"after\":{\"pnl_net\":",
                    (unsigned long long)b->fills, (unsigned long long)b->orders);
            arb__rr_json_num(out, f.pnl_net - b->equity);
            fprintf(out, ",\"fees\":");
            arb__rr_json_num(out, f.fees - b->fees);
            fprintf(out, ",\"volume\":");
            arb__rr_json_num(out, f.volume - b->volume);
            fprintf(out, ",\"fills\":%llu,\"orders\":%llu}",
                    (unsigned long long)(f.fills - b->fills),
                    (unsigned long long)(f.orders - b->orders));
        }
        fputs(",\"equity\":[", out);
        for (uint32_t b = 0; b < r->n_buckets; b++) {
            fputs(b ? "," : "", out);
            arb__rr_json_num(out, r->agent[i].equity_series[b]);
        }
        fputs("],\"position\":[", out);
        for (uint32_t b = 0; b < r->n_buckets; b++) {
            fputs(b ? "," : "", out);
            arb__rr_json_num(out, r->agent[i].position_series[b]);
        }
        fputs("]}", out);
    }
    fputs("],\"venues\":[", out);
    for (uint32_t i = 0; i < r->n_instr; i++) {
        const arb_rr_instr *in = &r->instr[i];
        fputs(i ? ",{\"venue\":" : "{\"venue\":", out);
        arb__rr_json_str(out, in->venue);
        fputs(",\"symbol\":", out);
        arb__rr_json_str(out, in->symbol);
        fprintf(out, ",\"trades\":%llu,\"volume\":", (unsigned long long)in->trades);
        arb__rr_json_num(out, in->volume);
        fputs(",\"avg_spread\":", out);
        arb__rr_json_num(out, in->two_sided_ns ? in->spread_time / (double)in->two_sided_ns : NAN);
        fprintf(out, ",\"crossed_ns\":%lld,\"two_sided_ns\":%lld,\"spread\":[",
                (long long)in->crossed_ns, (long long)in->two_sided_ns);
        for (uint32_t b = 0; b < r->n_buckets; b++) {
            fputs(b ? "," : "", out);
            arb__rr_json_num(out, in->spread_series[b]);
        }
        fputs("]}", out);
    }
    fputs("],\"bucket_ts\":[", out);
    for (uint32_t b = 0; b < r->n_buckets; b++)
        fprintf(out, "%s%lld", b ? "," : "", (long long)r->bucket_ts[b]);
    fputs("]}\n", out);
}

#endif /* ARB_RUN_REPORT_H */
