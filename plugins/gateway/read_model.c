/*
 * read_model.c -- the gateway's read models (see read_model.h): applying
 * order_events, trade_executed and market_data, and the retention rules that
 * keep memory bounded (a ring of trades per instrument, a FIFO of finished
 * orders, books bounded by the matcher's own depth).
 */
#include "read_model.h"

#include <stdlib.h>
#include <string.h>

const char *gw_status_name(unsigned status)
{
    static const char *const names[] = {"pending",   "open",     "partially_filled", "filled",
                                        "cancelled", "rejected", "expired"};
    return status <= GW_ST_EXPIRED ? names[status] : "unknown";
}

gw_read_model *gw_rm_new(const arb_instrument_table *t, size_t trade_history, size_t order_history)
{
    gw_read_model *rm = calloc(1, sizeof *rm);
    if (!rm)
        return NULL;
    rm->instruments = t;
    rm->order_history = order_history;
    size_t n = t->count ? t->count : 1;
    rm->books = calloc(n, sizeof *rm->books);
    rm->trades = calloc(n, sizeof *rm->trades);
    if (!rm->books || !rm->trades)
        goto fail;
    if (trade_history < 1)
        trade_history = 1;
    rm->trade_history = trade_history;
    for (size_t i = 0; i < t->count; i++) {
        rm->trades[i].items = calloc(trade_history, sizeof(gw_trade_rec));
        rm->trades[i].cap = trade_history;
        if (!rm->trades[i].items ||
            gw_map_put(&rm->instrument_index, t->items[i].key, (void *)(uintptr_t)(i + 1)))
            goto fail;
    }
    return rm;
fail:
    gw_rm_free(rm);
    return NULL;
}

/* FNV-1a over the account's bytes and the client id: the by_client key. */
static uint64_t client_key(uint64_t account, const char *client_id)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((account >> (8 * i)) & 0xff)) * 1099511628211ull;
    for (; *client_id; client_id++)
        h = (h ^ (uint8_t)*client_id) * 1099511628211ull;
    return h ? h : 1;
}

static void order_free(gw_order *o)
{
    free(o->fills);
    free(o);
}

void gw_rm_free(gw_read_model *rm)
{
    if (!rm)
        return;
    for (size_t i = 0; i < rm->orders.cap; i++)
        if (rm->orders.slots[i].key)
            order_free(rm->orders.slots[i].val);
    gw_map_free(&rm->orders);
    gw_map_free(&rm->by_client);
    for (size_t i = 0; i < rm->n_accounts; i++) {
        free(rm->account_list[i]->positions);
        free(rm->account_list[i]);
    }
    free(rm->account_list);
    gw_map_free(&rm->accounts);
    if (rm->books)
        for (size_t i = 0; i < rm->instruments->count; i++) {
            free(rm->books[i].bids);
            free(rm->books[i].asks);
        }
    if (rm->trades)
        for (size_t i = 0; i < rm->instruments->count; i++)
            free(rm->trades[i].items);
    free(rm->books);
    free(rm->trades);
    gw_map_free(&rm->instrument_index);
    free(rm);
}

int gw_rm_instrument(const gw_read_model *rm, const char venue[ARB_VENUE_LEN],
                     const char symbol[ARB_SYMBOL_LEN])
{
    void *v = gw_map_get(&rm->instrument_index, arb_instrument_key(venue, symbol));
    return v ? (int)((uintptr_t)v - 1) : -1;
}

int gw_rm_instrument_by_name(const gw_read_model *rm, const char *venue, const char *symbol)
{
    char vf[ARB_VENUE_LEN], sf[ARB_SYMBOL_LEN];
    if (arb_fixstr_set(vf, ARB_VENUE_LEN, venue) || arb_fixstr_set(sf, ARB_SYMBOL_LEN, symbol))
        return -1;
    return gw_rm_instrument(rm, vf, sf);
}

gw_account *gw_rm_account(gw_read_model *rm, uint64_t id, int create)
{
    gw_account *a = gw_map_get(&rm->accounts, id);
    if (a || !create || id == 0)
        return a;
    if (rm->n_accounts == rm->cap_accounts) {
        size_t ncap = rm->cap_accounts ? rm->cap_accounts * 2 : 16;
        gw_account **grown = realloc(rm->account_list, ncap * sizeof *grown);
        if (!grown)
            return NULL;
        rm->account_list = grown;
        rm->cap_accounts = ncap;
    }
    a = calloc(1, sizeof *a);
    if (!a || gw_map_put(&rm->accounts, id, a)) {
        free(a);
        return NULL;
    }
    a->id = id;
    rm->account_list[rm->n_accounts++] = a;
    return a;
}

/* ---- orders ---- */

static void open_link(gw_account *a, gw_order *o)
{
    o->open_prev = NULL;
    o->open_next = a->open_head;
    if (a->open_head)
        a->open_head->open_prev = o;
    a->open_head = o;
    a->open_count++;
}

static void open_unlink(gw_account *a, gw_order *o)
{
    if (o->open_prev)
        o->open_prev->open_next = o->open_next;
    else
        a->open_head = o->open_next;
    if (o->open_next)
        o->open_next->open_prev = o->open_prev;
    o->open_prev = o->open_next = NULL;
    a->open_count--;
}

gw_order *gw_rm_order_add(gw_read_model *rm, uint64_t order_id, uint64_t account,
                          const gw_order_request *req, int64_t now)
{
    if (gw_map_get(&rm->orders, order_id))
        return NULL;
    gw_account *a = gw_rm_account(rm, account, 1);
    gw_order *o = calloc(1, sizeof *o);
    if (!a || !o || gw_map_put(&rm->orders, order_id, o)) {
        free(o);
        return NULL;
    }
    o->order_id = order_id;
    o->account = account;
    o->instrument = (uint32_t)(req->instrument - rm->instruments->items);
    o->side = req->side;
    o->type = req->type;
    o->tif = req->tif;
    o->flags = req->flags;
    o->status = GW_ST_PENDING;
    o->price = req->price;
    o->qty = req->qty;
    o->leaves_qty = req->qty;
    o->created_ts = o->updated_ts = now;
    memcpy(o->client_order_id, req->client_order_id, sizeof o->client_order_id);
    /* Without the index entry the order still stands; a retry of it would
     * then make a second one, as before client ids were looked up. */
    if (o->client_order_id[0])
        gw_map_put(&rm->by_client, client_key(account, o->client_order_id), o);
    open_link(a, o);
    return o;
}

gw_order *gw_rm_order_by_client(const gw_read_model *rm, uint64_t account, const char *client_id,
                                int64_t not_before)
{
    if (!client_id[0])
        return NULL;
    gw_order *o = gw_map_get(&rm->by_client, client_key(account, client_id));
    if (!o || o->account != account || strcmp(o->client_order_id, client_id) ||
        o->placed_ns < not_before)
        return NULL;
    return o;
}

gw_order *gw_rm_order(const gw_read_model *rm, uint64_t order_id)
{
    return gw_map_get(&rm->orders, order_id);
}

static void forget(gw_read_model *rm, gw_order *o)
{
    if (o->client_order_id[0]) {
        uint64_t k = client_key(o->account, o->client_order_id);
        if (gw_map_get(&rm->by_client, k) == o)
            gw_map_del(&rm->by_client, k);
    }
    gw_map_del(&rm->orders, o->order_id);
    order_free(o);
}

void gw_rm_order_drop(gw_read_model *rm, uint64_t order_id)
{
    gw_order *o = gw_map_get(&rm->orders, order_id);
    if (!o || o->status != GW_ST_PENDING)
        return;
    open_unlink(gw_rm_account(rm, o->account, 0), o);
    forget(rm, o);
}

/* A terminal order leaves its account's open list and joins the retention
 * FIFO; past order_history the oldest finished orders are forgotten. */
static void finish(gw_read_model *rm, gw_order *o)
{
    open_unlink(gw_rm_account(rm, o->account, 0), o);
    o->done_next = NULL;
    if (rm->done_tail)
        rm->done_tail->done_next = o;
    else
        rm->done_head = o;
    rm->done_tail = o;
    rm->done_count++;
    while (rm->done_count > rm->order_history && rm->done_head != o) {
        gw_order *old = rm->done_head;
        rm->done_head = old->done_next;
        rm->done_count--;
        forget(rm, old);
    }
}

gw_order *gw_rm_order_put(gw_read_model *rm, const gw_order *src, const gw_fill *fills)
{
    if (!src->order_id || !src->account || src->instrument >= rm->instruments->count ||
        src->n_fills > GW_MAX_FILLS || gw_map_get(&rm->orders, src->order_id))
        return NULL;
    gw_account *a = gw_rm_account(rm, src->account, 1);
    gw_order *o = malloc(sizeof *o);
    gw_fill *f = src->n_fills ? malloc(((size_t)src->n_fills + 3) / 4 * 4 * sizeof *f) : NULL;
    if (!a || !o || (src->n_fills && !f) || gw_map_put(&rm->orders, src->order_id, o)) {
        free(o);
        free(f);
        return NULL;
    }
    *o = *src;
    if (f)
        memcpy(f, fills, src->n_fills * sizeof *f);
    o->fills = f;
    o->open_prev = o->open_next = o->done_next = NULL;
    /* A snapshot carries no client ids (snapshot.h): nothing to index. */
    o->client_order_id[0] = 0;
    open_link(a, o);
    if (gw_status_terminal(o->status))
        finish(rm, o);
    return o;
}

static void add_fill(gw_order *o, const arb_order_event *ev)
{
    if (ev->last_qty <= 0 || o->n_fills >= GW_MAX_FILLS)
        return;
    /* Grow in small steps: most orders fill once or not at all. */
    if ((o->n_fills & 3) == 0) {
        gw_fill *grown = realloc(o->fills, (size_t)(o->n_fills + 4) * sizeof *grown);
        if (!grown)
            return;
        o->fills = grown;
    }
    o->fills[o->n_fills++] =
        (gw_fill){ev->trade_id, ev->last_px, ev->last_qty, ev->ts, ev->fee, ev->liquidity};
}

int gw_rm_apply_event(gw_read_model *rm, const arb_order_event *ev, gw_order **order)
{
    gw_order *o = gw_map_get(&rm->orders, ev->order_id);
    *order = o;
    if (!o || o->account != ev->account || gw_status_terminal(o->status))
        return GW_EFF_NONE;
    if (o->last_seq && ev->seq && ev->seq <= o->last_seq)
        return GW_EFF_NONE;
    if (!gw_order_answered(o))
        o->answered_ts = ev->ts;
    o->last_seq = ev->seq;
    o->updated_ts = ev->ts;
    if (ev->kind == ARB_EV_REJECTED && o->status != GW_ST_PENDING) {
        /* The order is live, so this refuses a later command (a cancel of
         * an order that just filled, say); the order itself is unchanged. */
        o->reason = ev->reason;
        return GW_EFF_CMD_REJECTED;
    }
    unsigned status = o->status;
    switch (ev->kind) {
    case ARB_EV_ACCEPTED:
    case ARB_EV_REPLACED: status = ev->filled_qty > 0 ? GW_ST_PARTIAL : GW_ST_OPEN; break;
    case ARB_EV_PARTIAL:
        add_fill(o, ev);
        status = GW_ST_PARTIAL;
        break;
    case ARB_EV_FILLED:
        add_fill(o, ev);
        status = GW_ST_FILLED;
        break;
    case ARB_EV_REJECTED: status = GW_ST_REJECTED; break;
    case ARB_EV_CANCELLED: status = GW_ST_CANCELLED; break;
    case ARB_EV_EXPIRED: status = GW_ST_EXPIRED; break;
    default: return GW_EFF_NONE;
    }
    if (ev->kind == ARB_EV_REPLACED) {
        o->price = ev->price;
        o->qty = ev->qty;
    }
    if (ev->kind != ARB_EV_REJECTED) {
        o->leaves_qty = ev->leaves_qty;
        o->filled_qty = ev->filled_qty;
    } else {
        o->leaves_qty = 0;
    }
    if (gw_status_terminal(status))
        o->leaves_qty = 0;
    o->reason = ev->reason;
    o->status = (uint8_t)status;
    if (gw_status_terminal(status))
        finish(rm, o);
    return GW_EFF_UPDATED;
}

/* ---- trades and positions ---- */

gw_position *gw_rm_positions(gw_read_model *rm, uint64_t account)
{
    gw_account *a = gw_rm_account(rm, account, 1);
    if (!a)
        return NULL;
    if (!a->positions)
        a->positions =
            calloc(rm->instruments->count ? rm->instruments->count : 1, sizeof *a->positions);
    return a->positions;
}

/* fee: price units (the trade's), booked in cash's units. */
static void position_apply(gw_read_model *rm, uint64_t account, int idx, int64_t signed_qty,
                           int64_t price, int64_t fee)
{
    gw_position *positions = gw_rm_positions(rm, account);
    if (!positions)
        return;
    gw_position *p = &positions[idx];
    p->position += signed_qty;
    __int128 f = fee;
    for (int k = 0; k < rm->instruments->items[idx].qty_decimals; k++)
        f *= 10;
    p->cash -= (__int128)signed_qty * price + f;
    p->fees += f;
    if (signed_qty > 0)
        p->bought += signed_qty;
    else
        p->sold -= signed_qty;
    p->trades++;
}

void gw_rm_trade_put(gw_read_model *rm, int idx, const gw_trade_rec *t)
{
    gw_trade_ring *r = &rm->trades[idx];
    r->items[r->head] = *t;
    r->head = (r->head + 1) % r->cap;
    if (r->count < r->cap)
        r->count++;
}

int gw_rm_apply_trade(gw_read_model *rm, const arb_trade *t)
{
    int idx = gw_rm_instrument(rm, t->venue, t->symbol);
    if (idx < 0)
        return -1;
    gw_rm_trade_put(rm, idx,
                    &(gw_trade_rec){t->trade_id, t->buy_order_id, t->sell_order_id, t->buy_account,
                                    t->sell_account, t->seq, t->price, t->qty, t->ts,
                                    t->aggressor});
    rm->trades[idx].last_px = t->price;
    if (t->buy_account)
        position_apply(rm, t->buy_account, idx, t->qty, t->price, t->buy_fee);
    if (t->sell_account)
        position_apply(rm, t->sell_account, idx, -t->qty, t->price, t->sell_fee);
    return idx;
}

/* ---- books ---- */

/* Position of `price` in a side sorted best first, or where it would go. */
static uint32_t level_find(const gw_level *lv, uint32_t n, int64_t price, int bids, int *found)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int before = bids ? lv[mid].price > price : lv[mid].price < price;
        if (before)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < n && lv[lo].price == price;
    return lo;
}

static void level_set(gw_book *b, int bids, int64_t price, int64_t qty, uint32_t orders)
{
    gw_level **lv = bids ? &b->bids : &b->asks;
    uint32_t *n = bids ? &b->n_bids : &b->n_asks;
    uint32_t *cap = bids ? &b->cap_bids : &b->cap_asks;
    int found;
    uint32_t i = level_find(*lv, *n, price, bids, &found);
    if (qty <= 0) {
        if (found) {
            memmove(*lv + i, *lv + i + 1, (*n - i - 1) * sizeof **lv);
            (*n)--;
        }
        return;
    }
    if (found) {
        (*lv)[i].qty = qty;
        (*lv)[i].orders = orders;
        return;
    }
    if (*n >= ARB_MD_MAX_LEVELS)
        return; /* the matcher never sends deeper books; refuse to grow */
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 16;
        gw_level *grown = realloc(*lv, ncap * sizeof *grown);
        if (!grown)
            return;
        *lv = grown;
        *cap = ncap;
    }
    memmove(*lv + i + 1, *lv + i, (*n - i) * sizeof **lv);
    (*lv)[i] = (gw_level){price, qty, orders};
    (*n)++;
}

int gw_rm_apply_market_data(gw_read_model *rm, const arb_market_data *md)
{
    int idx = gw_rm_instrument(rm, md->venue, md->symbol);
    if (idx < 0)
        return -1;
    gw_book *b = &rm->books[idx];
    /* Equal sequence numbers are allowed: a matcher may send the top and
     * the level changes of one command under one book sequence. */
    if (md->book_seq < b->book_seq)
        return -1;
    if (md->kind == ARB_MD_SNAPSHOT) {
        b->n_bids = b->n_asks = 0;
        b->have_depth = 1;
    }
    if (md->kind == ARB_MD_LEVEL)
        b->have_depth = 1;
    if (md->kind != ARB_MD_TOP)
        for (uint32_t i = 0; i < md->n_levels; i++) {
            arb_md_level l;
            arb_md_get_level(md, i, &l);
            level_set(b, l.side == ARB_SIDE_BUY, l.price, l.qty, l.orders);
        }
    b->bid_px = md->bid_px;
    b->bid_qty = md->bid_qty;
    b->ask_px = md->ask_px;
    b->ask_qty = md->ask_qty;
    b->book_seq = md->book_seq;
    b->ts = md->ts;
    b->version++;
    return idx;
}
