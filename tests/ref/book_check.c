/*
 * book_check.c -- random command streams, output comparison and property
 * checks for the order book tests (see book_check.h). Test code only.
 */
#include "book_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gen_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t below(book_gen *g, uint64_t n) { return n ? gen_rand(&g->rng) % n : 0; }
static int pct(book_gen *g, uint32_t p) { return below(g, 100) < p; }

size_t book_test_instruments(arb_instrument *out, size_t max)
{
    static const arb_instrument defs[] = {
        {.venue = "XA",
         .symbol = "BTCUSD",
         .price_decimals = 2,
         .qty_decimals = 3,
         .tick = 5,
         .lot = 1,
         .min_qty = 1,
         .max_qty = 1000,
         .ref_price = 100000,
         .band_bps = 500,
         .maker_fee_cbps = -25,
         .taker_fee_cbps = 750},
        {.venue = "XB",
         .symbol = "BTCUSD",
         .price_decimals = 2,
         .qty_decimals = 2,
         .tick = 1,
         .lot = 10,
         .min_qty = 10,
         .max_qty = 5000,
         .ref_price = 5000,
         .band_bps = 0,
         .maker_fee_cbps = 100,
         .taker_fee_cbps = 333},
        {.venue = "XA",
         .symbol = "ETHUSD",
         .price_decimals = 2,
         .qty_decimals = 0,
         .tick = 1,
         .lot = 1,
         .min_qty = 2,
         .max_qty = 500,
         .ref_price = 3000,
         .band_bps = 0},
    };
    size_t n = sizeof defs / sizeof defs[0];
    if (n > max)
        n = max;
    memcpy(out, defs, n * sizeof *out);
    return n;
}

void gen_init(book_gen *g, uint64_t seed, const gen_profile *p, const arb_instrument *inst,
              size_t n_inst)
{
    memset(g, 0, sizeof *g);
    g->rng = seed * 0x2545F4914F6CDD1Dull + 1;
    g->p = *p;
    if (!g->p.n_accounts)
        g->p.n_accounts = 1;
    if (!g->p.spread_ticks)
        g->p.spread_ticks = 10;
    if (!g->p.target_live)
        g->p.target_live = 200;
    g->inst = inst;
    g->n_inst = n_inst;
    g->next_id = 1;
}

static uint64_t fresh_id(book_gen *g)
{
    uint64_t n = g->next_id++;
    if (g->p.sparse_ids) {
        uint64_t s = n * 0xD1B54A32D192ED03ull;
        return gen_rand(&s);
    }
    return n;
}

static int64_t draw_price(book_gen *g, const arb_instrument *in, int64_t ref, int side,
                          int aggressive)
{
    int64_t ticks_ref = ref / in->tick;
    if (ticks_ref < g->p.spread_ticks + 2)
        ticks_ref = g->p.spread_ticks + 2;
    int64_t off;
    if (g->p.huge_prices && pct(g, 3))
        return (int64_t)(1 + below(g, (uint64_t)1 << 40)) * in->tick;
    off = (int64_t)below(g, (uint64_t)g->p.spread_ticks + 1);
    /* Passive orders sit on their own side of the reference; aggressive ones
     * reach across it. */
    int64_t t = side == ARB_SIDE_BUY ? (aggressive ? ticks_ref + off : ticks_ref - off)
                                     : (aggressive ? ticks_ref - off : ticks_ref + off);
    if (t < 1)
        t = 1;
    return t * in->tick;
}

static int64_t draw_qty(book_gen *g, const arb_instrument *in)
{
    int64_t lots = 1 + (int64_t)below(g, pct(g, 10) ? 60 : 8);
    int64_t q = lots * in->lot;
    if (q < in->min_qty)
        q = in->min_qty + (in->lot - in->min_qty % in->lot) % in->lot;
    return q;
}

static void set_book(arb_order_cmd *c, const arb_instrument *in)
{
    arb_fixstr_set(c->venue, ARB_VENUE_LEN, in->venue);
    arb_fixstr_set(c->symbol, ARB_SYMBOL_LEN, in->symbol);
}

/* Makes an otherwise good command bad in one way. */
static void spoil(book_gen *g, arb_order_cmd *c, const arb_instrument *in)
{
    switch (below(g, 12)) {
    case 0: arb_fixstr_set(c->venue, ARB_VENUE_LEN, "XC"); break;
    case 1: c->price += in->tick > 1 ? 1 : 0; break;
    case 2: c->qty = -(int64_t)below(g, 3); break;
    case 3: c->qty += in->lot > 1 ? 1 : 0; break;
    case 4: c->qty = in->max_qty + in->lot; break;
    case 5: c->price = -(int64_t)below(g, 2) * in->tick; break;
    case 6: c->action = (uint8_t)(pct(g, 50) ? 0 : 5 + below(g, 3)); break;
    case 7: c->side = (uint8_t)(pct(g, 50) ? 0 : 3); break;
    case 8: c->type = ARB_ORD_MARKET, c->tif = ARB_TIF_GTC; break;
    case 9: c->flags = (uint8_t)(pct(g, 50) ? 2 : ARB_ORDF_POST_ONLY), c->tif = ARB_TIF_IOC; break;
    case 10: c->stp = 4 + (uint8_t)below(g, 3); break;
    default: c->qty = in->min_qty > 1 ? in->min_qty - 1 : 0; break;
    }
}

void gen_next(book_gen *g, const int64_t *ref_prices, arb_order_cmd *c)
{
    memset(c, 0, sizeof *c);
    c->ts = ++g->ts;
    c->client_ref = gen_rand(&g->rng);
    uint32_t cancel_pct = g->n_live > g->p.target_live ? 45 : 15;
    uint64_t roll = below(g, 100);
    size_t bi = below(g, g->n_inst);
    if (g->n_live && roll < cancel_pct + 20) {
        const gen_live *l = &g->live[below(g, g->n_live)];
        const arb_instrument *in = &g->inst[l->book];
        set_book(c, in);
        c->order_id = l->id;
        c->account = pct(g, 95) ? l->account : 1 + below(g, g->p.n_accounts + 1);
        if (pct(g, 3))
            c->order_id = fresh_id(g); /* unknown */
        if (roll < cancel_pct) {
            c->action = ARB_CMD_CANCEL;
        } else {
            c->action = ARB_CMD_REPLACE;
            int64_t ref = ref_prices[l->book];
            c->price = pct(g, 40) ? l->price : draw_price(g, in, ref, l->side, pct(g, 20));
            c->qty = pct(g, 50) && l->leaves > in->lot ? l->leaves - in->lot : draw_qty(g, in);
            if (c->qty < in->min_qty)
                c->qty = l->leaves;
            if (pct(g, g->p.pct_bad))
                spoil(g, c, in);
        }
        return;
    }
    const arb_instrument *in = &g->inst[bi];
    set_book(c, in);
    if (pct(g, 1)) {
        c->action = ARB_CMD_SNAPSHOT;
        return;
    }
    c->action = ARB_CMD_NEW;
    c->side = (uint8_t)(1 + below(g, 2));
    c->account = 1 + below(g, g->p.n_accounts);
    c->order_id = g->n_live && pct(g, 2) ? g->live[below(g, g->n_live)].id : fresh_id(g);
    c->stp = pct(g, g->p.pct_stp) ? (uint8_t)(1 + below(g, 3)) : 0;
    uint64_t kind = below(g, 100);
    int aggressive = pct(g, 25);
    c->type = ARB_ORD_LIMIT;
    c->tif = ARB_TIF_GTC;
    if (kind < 12) {
        c->tif = ARB_TIF_IOC;
        aggressive = pct(g, 80);
    } else if (kind < 18) {
        c->tif = ARB_TIF_FOK;
        aggressive = 1;
    } else if (kind < 24) {
        c->type = ARB_ORD_MARKET;
        c->tif = pct(g, 80) ? ARB_TIF_IOC : ARB_TIF_FOK;
        aggressive = 1;
    } else if (kind < 30) {
        c->flags = ARB_ORDF_POST_ONLY;
    }
    c->price = draw_price(g, in, ref_prices[bi], c->side, aggressive);
    c->qty = draw_qty(g, in);
    if (pct(g, g->p.pct_bad))
        spoil(g, c, in);
}

static int find_live(const book_gen *g, uint32_t book, uint64_t id)
{
    for (uint32_t i = 0; i < g->n_live; i++)
        if (g->live[i].id == id && g->live[i].book == book)
            return (int)i;
    return -1;
}

void gen_observe(book_gen *g, const book_output *out, size_t first_event)
{
    for (size_t i = first_event; i < out->n_events; i++) {
        const arb_order_event *ev = &out->events[i];
        uint32_t book = UINT32_MAX;
        for (size_t k = 0; k < g->n_inst; k++)
            if (!strncmp(ev->venue, g->inst[k].venue, ARB_VENUE_LEN) &&
                !strncmp(ev->symbol, g->inst[k].symbol, ARB_SYMBOL_LEN))
                book = (uint32_t)k;
        if (book == UINT32_MAX || ev->kind == ARB_EV_REJECTED)
            continue;
        int at = find_live(g, book, ev->order_id);
        int alive = (ev->kind == ARB_EV_ACCEPTED && ev->tif == ARB_TIF_GTC) ||
                    ev->kind == ARB_EV_PARTIAL || ev->kind == ARB_EV_REPLACED;
        if (alive && ev->tif != ARB_TIF_GTC)
            alive = 0; /* IOC/FOK/market never rest */
        if (!alive) {
            if (at >= 0)
                g->live[at] = g->live[--g->n_live];
            continue;
        }
        if (at < 0) {
            if (g->n_live == GEN_MAX_LIVE)
                continue;
            at = (int)g->n_live++;
        }
        gen_live *l = &g->live[at];
        l->book = book;
        l->id = ev->order_id;
        l->account = ev->account;
        l->price = ev->price;
        l->leaves = ev->leaves_qty;
        l->side = ev->side;
    }
}

/* ---- comparison ---- */

#define DIFF(kind, i, field, fmt, a, b)                                                    \
    do {                                                                                   \
        if ((a) != (b)) {                                                                  \
            snprintf(msg, cap, "%s %zu: %s differs: engine " fmt ", reference " fmt, kind, \
                     (size_t)(i), #field, a, b);                                           \
            return msg;                                                                    \
        }                                                                                  \
    } while (0)
#define DIFF_U(kind, i, s, t, f) DIFF(kind, i, f, "%" PRIu64, (uint64_t)(s)->f, (uint64_t)(t)->f)
#define DIFF_I(kind, i, s, t, f) DIFF(kind, i, f, "%" PRId64, (int64_t)(s)->f, (int64_t)(t)->f)
#define DIFF_TEXT(kind, i, s, t, f)                                          \
    do {                                                                     \
        if (memcmp((s)->f, (t)->f, sizeof((s)->f))) {                        \
            snprintf(msg, cap, "%s %zu: %s differs", kind, (size_t)(i), #f); \
            return msg;                                                      \
        }                                                                    \
    } while (0)

const char *book_outputs_differ(const book_output *a, const book_output *b, char *msg, size_t cap)
{
    DIFF("output", 0, n_events, "%u", a->n_events, b->n_events);
    DIFF("output", 0, n_trades, "%u", a->n_trades, b->n_trades);
    DIFF("output", 0, n_md, "%u", a->n_md, b->n_md);
    DIFF("output", 0, n_levels, "%u", a->n_levels, b->n_levels);
    for (uint32_t i = 0; i < a->n_events; i++) {
        const arb_order_event *x = &a->events[i], *y = &b->events[i];
        DIFF_U("event", i, x, y, kind);
        DIFF_U("event", i, x, y, reason);
        DIFF_U("event", i, x, y, side);
        DIFF_U("event", i, x, y, type);
        DIFF_U("event", i, x, y, tif);
        DIFF_U("event", i, x, y, flags);
        DIFF_TEXT("event", i, x, y, venue);
        DIFF_TEXT("event", i, x, y, symbol);
        DIFF_U("event", i, x, y, order_id);
        DIFF_U("event", i, x, y, account);
        DIFF_I("event", i, x, y, price);
        DIFF_I("event", i, x, y, qty);
        DIFF_I("event", i, x, y, leaves_qty);
        DIFF_I("event", i, x, y, filled_qty);
        DIFF_I("event", i, x, y, last_px);
        DIFF_I("event", i, x, y, last_qty);
        DIFF_U("event", i, x, y, trade_id);
        DIFF_I("event", i, x, y, ts);
        DIFF_U("event", i, x, y, seq);
        DIFF_U("event", i, x, y, client_ref);
        DIFF_I("event", i, x, y, fee);
        DIFF_U("event", i, x, y, liquidity);
    }
    for (uint32_t i = 0; i < a->n_trades; i++) {
        const arb_trade *x = &a->trades[i], *y = &b->trades[i];
        DIFF_TEXT("trade", i, x, y, venue);
        DIFF_TEXT("trade", i, x, y, symbol);
        DIFF_U("trade", i, x, y, trade_id);
        DIFF_I("trade", i, x, y, price);
        DIFF_I("trade", i, x, y, qty);
        DIFF_U("trade", i, x, y, buy_order_id);
        DIFF_U("trade", i, x, y, sell_order_id);
        DIFF_U("trade", i, x, y, buy_account);
        DIFF_U("trade", i, x, y, sell_account);
        DIFF_I("trade", i, x, y, ts);
        DIFF_U("trade", i, x, y, seq);
        DIFF_U("trade", i, x, y, aggressor);
        DIFF_I("trade", i, x, y, buy_fee);
        DIFF_I("trade", i, x, y, sell_fee);
    }
    for (uint32_t i = 0; i < a->n_md; i++) {
        const book_md *x = &a->md[i], *y = &b->md[i];
        DIFF_U("md", i, x, y, head.kind);
        DIFF_U("md", i, x, y, head.n_levels);
        DIFF_TEXT("md", i, x, y, head.venue);
        DIFF_TEXT("md", i, x, y, head.symbol);
        DIFF_U("md", i, x, y, head.book_seq);
        DIFF_I("md", i, x, y, head.ts);
        DIFF_I("md", i, x, y, head.bid_px);
        DIFF_I("md", i, x, y, head.bid_qty);
        DIFF_I("md", i, x, y, head.ask_px);
        DIFF_I("md", i, x, y, head.ask_qty);
        DIFF_U("md", i, x, y, first_level);
    }
    for (uint32_t i = 0; i < a->n_levels; i++) {
        const arb_md_level *x = &a->levels[i], *y = &b->levels[i];
        DIFF_U("level", i, x, y, side);
        DIFF_U("level", i, x, y, orders);
        DIFF_I("level", i, x, y, price);
        DIFF_I("level", i, x, y, qty);
    }
    return NULL;
}

/* ---- properties ---- */

typedef struct level_sum {
    int64_t price, qty, prev_price;
    uint32_t count, levels, index;
    const arb_md_level *depth;
    uint32_t n_depth;
    const char *err;
    char *msg;
    size_t cap;
    int side;
} level_sum;

static int flush_level(level_sum *s)
{
    if (!s->count)
        return 0;
    if (s->index >= s->n_depth) {
        snprintf(s->msg, s->cap, "side %d: orders at price %" PRId64 " but no depth level", s->side,
                 s->price);
        return 1;
    }
    const arb_md_level *l = &s->depth[s->index++];
    if (l->price != s->price || l->qty != s->qty || l->orders != s->count) {
        snprintf(s->msg, s->cap,
                 "side %d level %" PRId64 ": depth says %" PRId64 " in %u orders, orders sum to "
                 "%" PRId64 " in %u",
                 s->side, s->price, l->qty, l->orders, s->qty, s->count);
        return 1;
    }
    return 0;
}

static int sum_order(void *user, const book_order_view *o)
{
    level_sum *s = user;
    if (o->leaves <= 0 || o->leaves > o->qty) {
        snprintf(s->msg, s->cap, "order %" PRIu64 " has leaves %" PRId64 " of %" PRId64,
                 o->order_id, o->leaves, o->qty);
        return 1;
    }
    if (s->count && o->price != s->price) {
        int worse = s->side == ARB_SIDE_BUY ? o->price < s->price : o->price > s->price;
        if (!worse) {
            snprintf(s->msg, s->cap, "side %d: price %" PRId64 " after %" PRId64, s->side, o->price,
                     s->price);
            return 1;
        }
        if (flush_level(s))
            return 1;
        s->count = 0;
        s->qty = 0;
    }
    s->price = o->price;
    s->qty += o->leaves;
    s->count++;
    return 0;
}

const char *book_check_properties(const book_engine *e, const order_book *b, const book_output *out,
                                  char *msg, size_t cap)
{
    order_book_stats st;
    order_book_get_stats(e, b, &st);
    if (st.bid_qty && st.ask_qty && st.bid_px >= st.ask_px) {
        snprintf(msg, cap, "book crossed: bid %" PRId64 " >= ask %" PRId64, st.bid_px, st.ask_px);
        return msg;
    }
    static arb_md_level depth[GEN_MAX_LIVE * 4];
    for (int side = ARB_SIDE_BUY; side <= ARB_SIDE_SELL; side++) {
        uint32_t n = order_book_depth(e, b, side, depth, sizeof depth / sizeof depth[0]);
        if (n != order_book_level_count(b, side)) {
            snprintf(msg, cap, "side %d: depth lists %u levels, the book counts %u", side, n,
                     order_book_level_count(b, side));
            return msg;
        }
        level_sum s = {.depth = depth, .n_depth = n, .msg = msg, .cap = cap, .side = side};
        if (order_book_each_order(e, b, side, sum_order, &s) || flush_level(&s))
            return msg;
        if (s.index != n) {
            snprintf(msg, cap, "side %d: %u depth levels but orders cover %u", side, n, s.index);
            return msg;
        }
    }
    for (uint32_t i = 0; i < out->n_events; i++) {
        const arb_order_event *ev = &out->events[i];
        if (ev->kind == ARB_EV_REJECTED)
            continue;
        int terminal = ev->kind == ARB_EV_CANCELLED || ev->kind == ARB_EV_EXPIRED;
        if (terminal ? ev->leaves_qty != 0 || ev->filled_qty > ev->qty
                     : ev->filled_qty + ev->leaves_qty != ev->qty) {
            snprintf(msg, cap, "event %u: qty %" PRId64 " filled %" PRId64 " leaves %" PRId64, i,
                     ev->qty, ev->filled_qty, ev->leaves_qty);
            return msg;
        }
        if ((ev->kind == ARB_EV_FILLED && ev->leaves_qty != 0) ||
            (ev->kind == ARB_EV_PARTIAL && ev->leaves_qty == 0)) {
            snprintf(msg, cap, "event %u: kind %u with leaves %" PRId64, i, ev->kind,
                     ev->leaves_qty);
            return msg;
        }
        if (ev->kind == ARB_EV_PARTIAL || ev->kind == ARB_EV_FILLED) {
            int worse =
                ev->side == ARB_SIDE_BUY ? ev->last_px > ev->price : ev->last_px < ev->price;
            if (worse || ev->last_qty <= 0) {
                snprintf(msg, cap,
                         "event %u: fill of %" PRId64 " at %" PRId64 " against limit %" PRId64, i,
                         ev->last_qty, ev->last_px, ev->price);
                return msg;
            }
        }
    }
    /* Each trade is announced by exactly its maker and taker fill events. */
    for (uint32_t t = 0; t < out->n_trades; t++) {
        const arb_trade *tr = &out->trades[t];
        int seen = 0;
        for (uint32_t i = 0; i < out->n_events; i++) {
            const arb_order_event *ev = &out->events[i];
            if ((ev->kind != ARB_EV_PARTIAL && ev->kind != ARB_EV_FILLED) ||
                ev->trade_id != tr->trade_id || memcmp(ev->symbol, tr->symbol, ARB_SYMBOL_LEN) ||
                memcmp(ev->venue, tr->venue, ARB_VENUE_LEN))
                continue;
            uint64_t want = ev->side == ARB_SIDE_BUY ? tr->buy_order_id : tr->sell_order_id;
            if (ev->order_id != want || ev->last_qty != tr->qty || ev->last_px != tr->price) {
                snprintf(msg, cap, "trade %" PRIu64 " disagrees with its fill event", tr->trade_id);
                return msg;
            }
            seen++;
        }
        if (seen != 2) {
            snprintf(msg, cap, "trade %" PRIu64 " has %d fill events", tr->trade_id, seen);
            return msg;
        }
    }
    return NULL;
}

typedef struct order_list {
    book_order_view *v;
    size_t n, cap;
} order_list;

static int collect(void *user, const book_order_view *o)
{
    order_list *l = user;
    if (l->n < l->cap)
        l->v[l->n] = *o;
    l->n++;
    return 0;
}

const char *book_states_differ(const book_engine *e, const ref_engine *r, char *msg, size_t cap)
{
    size_t max = BOOK_MAX_ORDERS / 64;
    book_order_view *mine = malloc(max * sizeof *mine), *theirs = malloc(max * sizeof *theirs);
    const char *bad = NULL;
    for (size_t bi = 0; !bad && bi < book_engine_book_count(e); bi++) {
        const order_book *b = book_engine_book_at(e, bi);
        const arb_instrument *in = order_book_instrument(b);
        for (int side = ARB_SIDE_BUY; !bad && side <= ARB_SIDE_SELL; side++) {
            order_list l = {mine, 0, max};
            order_book_each_order(e, b, side, collect, &l);
            size_t n = ref_engine_orders(r, in->venue, in->symbol, side, theirs, max);
            if (n != l.n) {
                snprintf(msg, cap, "%s:%s side %d: engine rests %zu orders, reference %zu",
                         in->venue, in->symbol, side, l.n, n);
                bad = msg;
                break;
            }
            for (size_t i = 0; i < n && i < max; i++) {
                const book_order_view *x = &mine[i], *y = &theirs[i];
                if (x->order_id != y->order_id || x->account != y->account ||
                    x->client_ref != y->client_ref || x->price != y->price || x->qty != y->qty ||
                    x->leaves != y->leaves || x->flags != y->flags || x->stp != y->stp) {
                    snprintf(msg, cap,
                             "%s:%s side %d position %zu: engine order %" PRIu64 " @%" PRId64
                             " x%" PRId64 ", reference %" PRIu64 " @%" PRId64 " x%" PRId64,
                             in->venue, in->symbol, side, i, x->order_id, x->price, x->leaves,
                             y->order_id, y->price, y->leaves);
                    bad = msg;
                    break;
                }
                if (book_engine_open_orders(e, x->account) !=
                    ref_engine_open_orders(r, x->account)) {
                    snprintf(msg, cap, "account %" PRIu64 ": open order counts differ", x->account);
                    bad = msg;
                    break;
                }
            }
        }
    }
    free(mine);
    free(theirs);
    return bad;
}

/* ---- FIFO ---- */

static fifo_entry *fifo_slot(fifo_tracker *t, uint32_t book, uint64_t id, int create)
{
    if (create && (t->used + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        fifo_entry *n = calloc(ncap, sizeof *n);
        for (size_t i = 0; i < t->cap; i++)
            if (t->e[i].used) {
                size_t h = (t->e[i].id * 0x9E3779B97F4A7C15ull + t->e[i].book) & (ncap - 1);
                while (n[h].used)
                    h = (h + 1) & (ncap - 1);
                n[h] = t->e[i];
            }
        free(t->e);
        t->e = n;
        t->cap = ncap;
    }
    if (!t->cap)
        return NULL;
    size_t h = (id * 0x9E3779B97F4A7C15ull + book) & (t->cap - 1);
    while (t->e[h].used) {
        if (t->e[h].id == id && t->e[h].book == book)
            return &t->e[h];
        h = (h + 1) & (t->cap - 1);
    }
    if (!create)
        return NULL;
    t->used++;
    t->e[h].used = 1;
    t->e[h].id = id;
    t->e[h].book = book;
    t->e[h].stamp = 0;
    t->e[h].traded = 0;
    return &t->e[h];
}

void fifo_tracker_free(fifo_tracker *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}

typedef struct fifo_walk {
    fifo_tracker *t;
    uint32_t book;
    int64_t price;
    uint64_t last_stamp;
    char *msg;
    size_t cap;
} fifo_walk;

static int fifo_visit(void *user, const book_order_view *o)
{
    fifo_walk *w = user;
    fifo_entry *en = fifo_slot(w->t, w->book, o->order_id, 1);
    if (!en->stamp)
        en->stamp = ++w->t->clock;
    en->price = o->price;
    en->leaves = o->leaves;
    if (o->price != w->price) {
        w->price = o->price;
        w->last_stamp = 0;
    }
    if (en->stamp <= w->last_stamp) {
        snprintf(w->msg, w->cap,
                 "order %" PRIu64 " at %" PRId64 " is ahead of an order that "
                 "gained priority before it",
                 o->order_id, o->price);
        return 1;
    }
    w->last_stamp = en->stamp;
    return 0;
}

const char *fifo_check(fifo_tracker *t, const book_engine *e, const order_book *b, uint32_t book,
                       const book_output *out, char *msg, size_t cap)
{
    const arb_instrument *in = order_book_instrument(b);
    for (uint32_t i = 0; i < out->n_events; i++) {
        const arb_order_event *ev = &out->events[i];
        if (strncmp(ev->venue, in->venue, ARB_VENUE_LEN) ||
            strncmp(ev->symbol, in->symbol, ARB_SYMBOL_LEN))
            continue;
        fifo_entry *en = fifo_slot(t, book, ev->order_id, 0);
        if (!en)
            continue;
        /* A new order (an id may come back after its order died) starts at
         * the back; so does a replace to a new price or a larger quantity. */
        if (ev->kind == ARB_EV_ACCEPTED ||
            (ev->kind == ARB_EV_REPLACED &&
             (ev->price != en->price || ev->leaves_qty > en->leaves)))
            en->stamp = 0;
    }
    for (int side = ARB_SIDE_BUY; side <= ARB_SIDE_SELL; side++) {
        fifo_walk w = {t, book, -1, 0, msg, cap};
        if (order_book_each_order(e, b, side, fifo_visit, &w))
            return msg;
    }
    return NULL;
}

static uint32_t book_number(const book_engine *e, const char *venue, const char *symbol)
{
    const order_book *b = book_engine_find(e, venue, symbol);
    return b ? (uint32_t)order_book_index(b) : UINT32_MAX;
}

const char *fills_check(fifo_tracker *t, const book_engine *e, const book_output *out, char *msg,
                        size_t cap)
{
    /* A new order starts its ledger at zero ... */
    for (uint32_t i = 0; i < out->n_events; i++) {
        const arb_order_event *ev = &out->events[i];
        if (ev->kind == ARB_EV_ACCEPTED) {
            fifo_entry *en = fifo_slot(t, book_number(e, ev->venue, ev->symbol), ev->order_id, 1);
            en->traded = 0;
            en->stamp = 0;
        }
    }
    /* ... every trade adds to both orders ... */
    for (uint32_t i = 0; i < out->n_trades; i++) {
        const arb_trade *tr = &out->trades[i];
        uint32_t book = book_number(e, tr->venue, tr->symbol);
        fifo_slot(t, book, tr->buy_order_id, 1)->traded += tr->qty;
        fifo_slot(t, book, tr->sell_order_id, 1)->traded += tr->qty;
    }
    /* ... and each order's last event of the command reports that sum. */
    for (uint32_t i = out->n_events; i-- > 0;) {
        const arb_order_event *ev = &out->events[i];
        if (ev->kind == ARB_EV_REJECTED)
            continue;
        int later = 0;
        for (uint32_t k = i + 1; k < out->n_events && !later; k++)
            later = out->events[k].order_id == ev->order_id &&
                    out->events[k].kind != ARB_EV_REJECTED &&
                    !memcmp(out->events[k].symbol, ev->symbol, ARB_SYMBOL_LEN) &&
                    !memcmp(out->events[k].venue, ev->venue, ARB_VENUE_LEN);
        if (later)
            continue;
        fifo_entry *en = fifo_slot(t, book_number(e, ev->venue, ev->symbol), ev->order_id, 1);
        if (ev->filled_qty != en->traded) {
            snprintf(msg, cap, "order %" PRIu64 " reports %" PRId64 " filled but traded %" PRId64,
                     ev->order_id, ev->filled_qty, en->traded);
            return msg;
        }
    }
    return NULL;
}
