/*
 * test_sim_stub_matcher.c -- a deliberately small matcher, built as a test
 * plugin (sim_stub_matcher.so), so the simulation's integration tests can
 * run the clock, generator and agents against a real exchange loop over the
 * real host while the production matcher (plugins/matcher) is elsewhere.
 * It speaks only the wire contract: order_commands in; order_events (keyed
 * by account), trade_executed and market_data TOP (keyed by instrument) out.
 *
 * Price-time priority in sorted arrays with linear searches: correct and
 * deterministic, not fast. Limit orders only, GTC and IOC; cancel; replace
 * (loses priority; qty is the new total). Self-trades are allowed. Not the
 * matcher: no bands, lots, ticks, STP, FOK, snapshots or metrics.
 */
#include <arb/plugin.h>
#include <arb/wire.h>
#include <stdlib.h>
#include <string.h>

#define STUB_BOOKS 32

typedef struct stub_order {
    uint64_t id, account, client_ref;
    int64_t price, qty, filled;
    uint8_t side, tif;
} stub_order;

typedef struct stub_side {
    stub_order *o; /* best first */
    size_t n, cap;
} stub_side;

typedef struct stub_book {
    uint64_t key;
    char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
    stub_side bids, asks;
    uint64_t seq;
} stub_book;

typedef struct stub_matcher {
    arb_ctx *ctx;
    stub_book books[STUB_BOOKS];
    size_t nbooks;
    uint64_t out_seq, trade_seq;
} stub_matcher;

static stub_book *book_for(stub_matcher *m, const arb_order_cmd *c, uint64_t key)
{
    for (size_t i = 0; i < m->nbooks; i++)
        if (m->books[i].key == key)
            return &m->books[i];
    if (m->nbooks == STUB_BOOKS)
        return NULL;
    stub_book *b = &m->books[m->nbooks++];
    memset(b, 0, sizeof *b);
    b->key = key;
    memcpy(b->venue, c->venue, ARB_VENUE_LEN);
    memcpy(b->symbol, c->symbol, ARB_SYMBOL_LEN);
    return b;
}

static void emit_event(stub_matcher *m, const stub_book *b, const stub_order *o, int kind,
                       int reason, int64_t last_px, int64_t last_qty, uint64_t trade_id)
{
    arb_order_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = (uint8_t)kind;
    ev.reason = (uint8_t)reason;
    ev.side = o->side;
    ev.type = ARB_ORD_LIMIT;
    ev.tif = o->tif;
    memcpy(ev.venue, b->venue, ARB_VENUE_LEN);
    memcpy(ev.symbol, b->symbol, ARB_SYMBOL_LEN);
    ev.order_id = o->id;
    ev.account = o->account;
    ev.price = o->price;
    ev.qty = o->qty;
    ev.filled_qty = o->filled;
    ev.leaves_qty = kind == ARB_EV_CANCELLED || kind == ARB_EV_EXPIRED || kind == ARB_EV_REJECTED
                        ? 0
                        : o->qty - o->filled;
    ev.last_px = last_px;
    ev.last_qty = last_qty;
    ev.trade_id = trade_id;
    ev.ts = arb_now(m->ctx);
    ev.seq = ++m->out_seq;
    ev.client_ref = o->client_ref;
    uint8_t buf[ARB_ORDER_EVENT_LEN];
    arb_publish(m->ctx, ARB_TOPIC_ORDER_EVENTS, o->account, buf,
                arb_order_event_encode(&ev, buf, sizeof buf));
}

static void emit_top(stub_matcher *m, stub_book *b)
{
    arb_market_data md;
    memset(&md, 0, sizeof md);
    md.kind = ARB_MD_TOP;
    memcpy(md.venue, b->venue, ARB_VENUE_LEN);
    memcpy(md.symbol, b->symbol, ARB_SYMBOL_LEN);
    md.book_seq = ++b->seq;
    md.ts = arb_now(m->ctx);
    if (b->bids.n) {
        md.bid_px = b->bids.o[0].price;
        for (size_t i = 0; i < b->bids.n && b->bids.o[i].price == md.bid_px; i++)
            md.bid_qty += b->bids.o[i].qty - b->bids.o[i].filled;
    }
    if (b->asks.n) {
        md.ask_px = b->asks.o[0].price;
        for (size_t i = 0; i < b->asks.n && b->asks.o[i].price == md.ask_px; i++)
            md.ask_qty += b->asks.o[i].qty - b->asks.o[i].filled;
    }
    uint8_t buf[ARB_MD_FIXED_LEN];
    arb_publish(m->ctx, ARB_TOPIC_MARKET_DATA, b->key, buf,
                arb_market_data_encode(&md, buf, sizeof buf));
}

static int better(uint8_t side, int64_t a, int64_t b)
{
    return side == ARB_SIDE_BUY ? a > b : a < b;
}

static void rest(stub_side *s, const stub_order *o)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->o = realloc(s->o, s->cap * sizeof *s->o);
    }
    size_t at = s->n;
    while (at > 0 && better(o->side, o->price, s->o[at - 1].price))
        at--;
    memmove(&s->o[at + 1], &s->o[at], (s->n - at) * sizeof *s->o);
    s->o[at] = *o;
    s->n++;
}

static void remove_at(stub_side *s, size_t i)
{
    memmove(&s->o[i], &s->o[i + 1], (s->n - i - 1) * sizeof *s->o);
    s->n--;
}

static void execute(stub_matcher *m, stub_book *b, stub_order *in)
{
    stub_side *opp = in->side == ARB_SIDE_BUY ? &b->asks : &b->bids;
    while (in->filled < in->qty && opp->n) {
        stub_order *r = &opp->o[0];
        if (in->side == ARB_SIDE_BUY ? r->price > in->price : r->price < in->price)
            break;
        int64_t q = in->qty - in->filled;
        if (r->qty - r->filled < q)
            q = r->qty - r->filled;
        in->filled += q;
        r->filled += q;
        arb_trade t;
        memset(&t, 0, sizeof t);
        memcpy(t.venue, b->venue, ARB_VENUE_LEN);
        memcpy(t.symbol, b->symbol, ARB_SYMBOL_LEN);
        t.trade_id = ++m->trade_seq;
        t.price = r->price;
        t.qty = q;
        t.buy_order_id = in->side == ARB_SIDE_BUY ? in->id : r->id;
        t.sell_order_id = in->side == ARB_SIDE_BUY ? r->id : in->id;
        t.buy_account = in->side == ARB_SIDE_BUY ? in->account : r->account;
        t.sell_account = in->side == ARB_SIDE_BUY ? r->account : in->account;
        t.ts = arb_now(m->ctx);
        t.seq = b->seq;
        t.aggressor = in->side;
        uint8_t buf[ARB_TRADE_LEN];
        arb_publish(m->ctx, ARB_TOPIC_TRADE_EXECUTED, b->key, buf,
                    arb_trade_encode(&t, buf, sizeof buf));
        emit_event(m, b, r, r->filled == r->qty ? ARB_EV_FILLED : ARB_EV_PARTIAL, 0, r->price, q,
                   t.trade_id);
        emit_event(m, b, in, in->filled == in->qty ? ARB_EV_FILLED : ARB_EV_PARTIAL, 0, r->price, q,
                   t.trade_id);
        if (r->filled == r->qty)
            remove_at(opp, 0);
    }
    if (in->filled < in->qty) {
        if (in->tif == ARB_TIF_GTC)
            rest(in->side == ARB_SIDE_BUY ? &b->bids : &b->asks, in);
        else
            emit_event(m, b, in, ARB_EV_EXPIRED, ARB_R_NO_LIQUIDITY, 0, 0, 0);
    }
}

static stub_order *find(stub_book *b, uint64_t id, stub_side **side, size_t *at)
{
    stub_side *sides[2] = {&b->bids, &b->asks};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sides[k]->n; i++)
            if (sides[k]->o[i].id == id) {
                *side = sides[k];
                *at = i;
                return &sides[k]->o[i];
            }
    return NULL;
}

static void on_command(void *user, const arb_msg *msg)
{
    stub_matcher *m = user;
    arb_order_cmd c;
    if (arb_order_cmd_decode(msg->data, msg->len, &c))
        return;
    stub_book *b = book_for(m, &c, arb_instrument_key(c.venue, c.symbol));
    if (!b)
        return;
    stub_order in = {c.order_id, c.account, c.client_ref, c.price, c.qty, 0, c.side, c.tif};
    stub_side *side;
    size_t at;
    stub_order *o;
    switch (c.action) {
    case ARB_CMD_NEW:
        if (c.qty <= 0 || c.price <= 0 || c.type != ARB_ORD_LIMIT ||
            (c.tif != ARB_TIF_GTC && c.tif != ARB_TIF_IOC)) {
            emit_event(m, b, &in, ARB_EV_REJECTED, ARB_R_BAD_FIELD, 0, 0, 0);
            return;
        }
        emit_event(m, b, &in, ARB_EV_ACCEPTED, 0, 0, 0, 0);
        execute(m, b, &in);
        break;
    case ARB_CMD_CANCEL:
        if (!(o = find(b, c.order_id, &side, &at)) || o->account != c.account) {
            emit_event(m, b, &in, ARB_EV_REJECTED, ARB_R_UNKNOWN_ORDER, 0, 0, 0);
            return;
        }
        in = *o;
        remove_at(side, at);
        emit_event(m, b, &in, ARB_EV_CANCELLED, ARB_R_USER_CANCEL, 0, 0, 0);
        break;
    case ARB_CMD_REPLACE:
        if (!(o = find(b, c.order_id, &side, &at)) || o->account != c.account || c.price <= 0 ||
            c.qty <= o->filled) {
            emit_event(m, b, &in, ARB_EV_REJECTED, o ? ARB_R_BAD_FIELD : ARB_R_UNKNOWN_ORDER, 0, 0,
                       0);
            return;
        }
        in = *o;
        remove_at(side, at);
        in.price = c.price;
        in.qty = c.qty;
        in.client_ref = c.client_ref;
        emit_event(m, b, &in, ARB_EV_REPLACED, 0, 0, 0, 0);
        execute(m, b, &in);
        break;
    default: return;
    }
    emit_top(m, b);
}

static int stub_create(arb_ctx *ctx, void **self)
{
    stub_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return ARB_ENOMEM;
    m->ctx = ctx;
    *self = m;
    return ARB_OK;
}

static int stub_start(void *self)
{
    stub_matcher *m = self;
    int rc = arb_subscribe(m->ctx, ARB_TOPIC_ORDER_COMMANDS, on_command, m);
    return rc < 0 ? rc : ARB_OK;
}

static void stub_stop(void *self) { (void)self; }

static void stub_destroy(void *self)
{
    stub_matcher *m = self;
    for (size_t i = 0; i < m->nbooks; i++) {
        free(m->books[i].bids.o);
        free(m->books[i].asks.o);
    }
    free(m);
}

static const arb_plugin stub_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "sim_stub_matcher",
    .version = "0.1.0",
    .create = stub_create,
    .start = stub_start,
    .stop = stub_stop,
    .destroy = stub_destroy,
};

ARB_PLUGIN_DEFINE(stub_plugin)
