/*
 * ref_book.c -- the reference order book (see ref_book.h). Every rule of
 * plugins/matcher/book.h written as directly as possible: orders sit in one
 * array per book in no particular order; "the best order" is found by
 * scanning all of them; levels, top of book and open-order counts are
 * recomputed from the orders whenever they are needed. Shares no code with
 * the engine except the output containers and the wire structs.
 */
#include "ref_book.h"

#include <stdlib.h>
#include <string.h>

typedef struct ref_order {
    uint64_t id, account, client_ref;
    int64_t price, qty, leaves;
    uint64_t time; /* priority: smaller is older */
    uint8_t side, flags, stp;
} ref_order;

typedef struct ref_level_key {
    uint8_t side;
    int64_t price;
} ref_level_key;

typedef struct ref_book {
    const arb_fee_tiers *const *tiers; /* the engine's */
    arb_instrument inst;
    char venue[ARB_VENUE_LEN];
    char symbol[ARB_SYMBOL_LEN];
    ref_order *orders;
    size_t n, cap;
    uint64_t trade_seq, md_seq;
    uint64_t book_id; /* the n-th book added is book n */
    int64_t ref_price;
} ref_book;

struct ref_engine {
    book_config cfg;
    ref_book *books;
    size_t n_books;
    uint64_t event_seq;
    uint64_t clock;
    ref_level_key *touched;
    size_t n_touched, cap_touched;
    const arb_fee_tiers *tiers; /* the caller's, or NULL */
};

void ref_engine_set_fee_tiers(ref_engine *r, const arb_fee_tiers *tiers) { r->tiers = tiers; }

/* The fee rule of book.h, spelled out: the notional in price units times
 * the rate, as an exact fraction; a fee rounds up, a rebate's size down. */
static int64_t ref_fee(const ref_book *b, uint64_t account, int maker, int64_t px, int64_t q)
{
    int64_t mk, tk;
    arb_fee_rates(*b->tiers, &b->inst, account, &mk, &tk);
    int64_t rate = maker ? mk : tk;
    __int128 num = (__int128)px * q * rate, den = 1000000;
    for (int i = 0; i < b->inst.qty_decimals; i++)
        den *= 10;
    __int128 fl = num / den; /* truncates toward zero */
    if (num > 0 && fl * den != num)
        fl += 1;
    return (int64_t)fl;
}

ref_engine *ref_engine_new(const book_config *cfg)
{
    ref_engine *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.stp_default)
        r->cfg.stp_default = ARB_STP_CANCEL_RESTING;
    return r;
}

void ref_engine_free(ref_engine *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_books; i++)
        free(r->books[i].orders);
    free(r->books);
    free(r->touched);
    free(r);
}

int ref_engine_add_instrument(ref_engine *r, const arb_instrument *in)
{
    ref_book *grown = realloc(r->books, (r->n_books + 1) * sizeof *grown);
    if (!grown)
        return ARB_ENOMEM;
    r->books = grown;
    ref_book *b = &r->books[r->n_books++];
    memset(b, 0, sizeof *b);
    b->inst = *in;
    b->tiers = &r->tiers;
    arb_fixstr_set(b->venue, ARB_VENUE_LEN, in->venue);
    arb_fixstr_set(b->symbol, ARB_SYMBOL_LEN, in->symbol);
    b->ref_price = in->ref_price;
    b->book_id = r->n_books;
    return ARB_OK;
}

static ref_book *find_book(ref_engine *r, const char *venue, const char *symbol)
{
    for (size_t i = 0; i < r->n_books; i++)
        if (!memcmp(r->books[i].venue, venue, ARB_VENUE_LEN) &&
            !memcmp(r->books[i].symbol, symbol, ARB_SYMBOL_LEN))
            return &r->books[i];
    return NULL;
}

static ref_order *find_order(ref_book *b, uint64_t id)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->orders[i].id == id)
            return &b->orders[i];
    return NULL;
}

static void remove_order(ref_book *b, ref_order *o) { *o = b->orders[--b->n]; }

static uint32_t open_orders(const ref_engine *r, uint64_t account)
{
    uint32_t n = 0;
    for (size_t i = 0; i < r->n_books; i++)
        for (size_t k = 0; k < r->books[i].n; k++)
            if (r->books[i].orders[k].account == account)
                n++;
    return n;
}

uint32_t ref_engine_open_orders(const ref_engine *r, uint64_t account)
{
    return open_orders(r, account);
}

static void touch(ref_engine *r, uint8_t side, int64_t price)
{
    for (size_t i = 0; i < r->n_touched; i++)
        if (r->touched[i].side == side && r->touched[i].price == price)
            return;
    if (r->n_touched == r->cap_touched) {
        r->cap_touched = r->cap_touched ? r->cap_touched * 2 : 16;
        r->touched = realloc(r->touched, r->cap_touched * sizeof *r->touched);
    }
    r->touched[r->n_touched].side = side;
    r->touched[r->n_touched].price = price;
    r->n_touched++;
}

/* Is a better than b in time priority on side `side`? */
static int better(const ref_order *a, const ref_order *b)
{
    if (a->price != b->price)
        return a->side == ARB_SIDE_BUY ? a->price > b->price : a->price < b->price;
    return a->time < b->time;
}

/* Would a resting order at price p be acceptable to an incoming order on
 * side `side` with limit `limit`? */
static int acceptable(uint8_t side, int64_t limit, int64_t p)
{
    return side == ARB_SIDE_BUY ? p <= limit : p >= limit;
}

static ref_order *best_order(ref_book *b, uint8_t side)
{
    ref_order *best = NULL;
    for (size_t i = 0; i < b->n; i++)
        if (b->orders[i].side == side && (!best || better(&b->orders[i], best)))
            best = &b->orders[i];
    return best;
}

static void level_state(const ref_book *b, uint8_t side, int64_t price, int64_t *qty,
                        uint32_t *count)
{
    *qty = 0;
    *count = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->orders[i].side == side && b->orders[i].price == price) {
            *qty += b->orders[i].leaves;
            (*count)++;
        }
}

static void top(ref_book *b, arb_market_data *md)
{
    md->bid_px = md->bid_qty = md->ask_px = md->ask_qty = 0;
    ref_order *bid = best_order(b, ARB_SIDE_BUY), *ask = best_order(b, ARB_SIDE_SELL);
    uint32_t n;
    if (bid) {
        md->bid_px = bid->price;
        level_state(b, ARB_SIDE_BUY, bid->price, &md->bid_qty, &n);
    }
    if (ask) {
        md->ask_px = ask->price;
        level_state(b, ARB_SIDE_SELL, ask->price, &md->ask_qty, &n);
    }
}

/* ---- events ---- */

static arb_order_event *event(ref_engine *r, book_output *out, const char *venue,
                              const char *symbol)
{
    static arb_order_event lost;
    arb_order_event *ev = book_output_event(out);
    if (!ev)
        ev = &lost;
    memset(ev, 0, sizeof *ev);
    memcpy(ev->venue, venue, ARB_VENUE_LEN);
    memcpy(ev->symbol, symbol, ARB_SYMBOL_LEN);
    ev->seq = ++r->event_seq;
    return ev;
}

static void reject(ref_engine *r, book_output *out, const arb_order_cmd *c, uint8_t reason)
{
    arb_order_event *ev = event(r, out, c->venue, c->symbol);
    ev->kind = ARB_EV_REJECTED;
    ev->reason = reason;
    ev->side = c->side <= 2 ? c->side : 0;
    ev->type = c->type <= 2 ? c->type : 0;
    ev->tif = c->tif <= 3 ? c->tif : 0;
    ev->flags = c->flags & ARB_ORDF_POST_ONLY;
    ev->order_id = c->order_id;
    ev->account = c->account;
    ev->price = c->price;
    ev->qty = c->qty;
    ev->ts = c->ts;
    ev->client_ref = c->client_ref;
}

/* An order as events describe it (incoming or resting). */
typedef struct ref_view {
    uint64_t id, account, client_ref;
    int64_t price, qty, leaves;
    uint8_t side, type, tif, flags, stp;
} ref_view;

static arb_order_event *order_event(ref_engine *r, book_output *out, ref_book *b, const ref_view *v,
                                    uint8_t kind, uint8_t reason, int64_t leaves, int64_t last_px,
                                    int64_t last_qty, uint64_t trade_id, int64_t ts)
{
    arb_order_event *ev = event(r, out, b->venue, b->symbol);
    ev->kind = kind;
    ev->reason = reason;
    ev->side = v->side;
    ev->type = v->type;
    ev->tif = v->tif;
    ev->flags = v->flags;
    ev->order_id = v->id;
    ev->account = v->account;
    ev->price = v->price;
    ev->qty = v->qty;
    ev->leaves_qty = leaves;
    ev->filled_qty = v->qty - v->leaves;
    ev->last_px = last_px;
    ev->last_qty = last_qty;
    ev->trade_id = trade_id;
    ev->ts = ts;
    ev->client_ref = v->client_ref;
    return ev;
}

static ref_view resting_view(const ref_order *o)
{
    ref_view v = {o->id,   o->account,    o->client_ref, o->price, o->qty, o->leaves,
                  o->side, ARB_ORD_LIMIT, ARB_TIF_GTC,   o->flags, o->stp};
    return v;
}

/* ---- checks ---- */

static uint8_t check_price(const ref_book *b, int64_t price)
{
    if (price <= 0 || price > BOOK_MAX_PRICE)
        return ARB_R_BAD_PRICE;
    if (price % b->inst.tick != 0)
        return ARB_R_PRICE_OFF_TICK;
    return 0;
}

static uint8_t check_qty(const ref_book *b, int64_t qty)
{
    int64_t max = b->inst.max_qty < BOOK_MAX_QTY ? b->inst.max_qty : BOOK_MAX_QTY;
    if (qty <= 0)
        return ARB_R_BAD_QUANTITY;
    if (qty % b->inst.lot != 0)
        return ARB_R_QTY_OFF_LOT;
    if (qty < b->inst.min_qty)
        return ARB_R_QTY_BELOW_MIN;
    if (qty > max)
        return ARB_R_QTY_ABOVE_MAX;
    return 0;
}

static int outside_band(const ref_book *b, int64_t price)
{
    if (b->inst.band_bps <= 0 || b->ref_price <= 0)
        return 0;
    __int128 diff = (__int128)price - b->ref_price;
    if (diff < 0)
        diff = -diff;
    return diff > (__int128)b->ref_price * b->inst.band_bps / 10000;
}

static int would_cross(ref_book *b, uint8_t side, int64_t limit)
{
    ref_order *best = best_order(b, side == ARB_SIDE_BUY ? ARB_SIDE_SELL : ARB_SIDE_BUY);
    return best && acceptable(side, limit, best->price);
}

/* ---- matching ---- */

static int cmp_priority(const void *x, const void *y)
{
    const ref_order *a = x, *b = y;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static int fok_fillable(ref_book *b, const ref_view *t)
{
    uint8_t other = t->side == ARB_SIDE_BUY ? ARB_SIDE_SELL : ARB_SIDE_BUY;
    ref_order *list = malloc((b->n + 1) * sizeof *list);
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->orders[i].side == other && acceptable(t->side, t->price, b->orders[i].price))
            list[n++] = b->orders[i];
    qsort(list, n, sizeof *list, cmp_priority);
    int64_t got = 0;
    for (size_t i = 0; i < n && got < t->leaves; i++) {
        if (t->stp != ARB_STP_NONE && list[i].account == t->account) {
            if (t->stp == ARB_STP_CANCEL_INCOMING)
                break;
            continue;
        }
        got += list[i].leaves;
    }
    free(list);
    return got >= t->leaves;
}

/* Matches t; returns 1 if self-trade prevention stopped it. */
static int match(ref_engine *r, book_output *out, ref_book *b, ref_view *t, int64_t ts)
{
    uint8_t other = t->side == ARB_SIDE_BUY ? ARB_SIDE_SELL : ARB_SIDE_BUY;
    while (t->leaves > 0) {
        ref_order *o = best_order(b, other);
        if (!o || !acceptable(t->side, t->price, o->price))
            return 0;
        if (t->stp != ARB_STP_NONE && o->account == t->account) {
            if (t->stp == ARB_STP_CANCEL_INCOMING)
                return 1;
            touch(r, o->side, o->price);
            ref_view ov = resting_view(o);
            order_event(r, out, b, &ov, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 0, 0, 0, 0, ts);
            remove_order(b, o);
            continue;
        }
        touch(r, o->side, o->price);
        int64_t q = o->leaves < t->leaves ? o->leaves : t->leaves;
        int64_t px = o->price;
        uint64_t n = ++b->trade_seq;
        uint64_t id = b->book_id << BOOK_TRADE_BITS | n;
        o->leaves -= q;
        t->leaves -= q;
        ref_view ov = resting_view(o);
        int64_t mfee = ref_fee(b, o->account, 1, px, q), tfee = ref_fee(b, t->account, 0, px, q);
        arb_order_event *mev =
            order_event(r, out, b, &ov, o->leaves ? ARB_EV_PARTIAL : ARB_EV_FILLED, 0, o->leaves,
                        px, q, id, ts);
        mev->fee = mfee;
        mev->liquidity = ARB_LIQ_MAKER;
        arb_order_event *tev = order_event(r, out, b, t, t->leaves ? ARB_EV_PARTIAL : ARB_EV_FILLED,
                                           0, t->leaves, px, q, id, ts);
        tev->fee = tfee;
        tev->liquidity = ARB_LIQ_TAKER;
        static arb_trade lost;
        arb_trade *tr = book_output_trade(out);
        if (!tr)
            tr = &lost;
        memset(tr, 0, sizeof *tr);
        memcpy(tr->venue, b->venue, ARB_VENUE_LEN);
        memcpy(tr->symbol, b->symbol, ARB_SYMBOL_LEN);
        tr->trade_id = id;
        tr->seq = n;
        tr->price = px;
        tr->qty = q;
        tr->buy_order_id = t->side == ARB_SIDE_BUY ? t->id : o->id;
        tr->buy_account = t->side == ARB_SIDE_BUY ? t->account : o->account;
        tr->sell_order_id = t->side == ARB_SIDE_SELL ? t->id : o->id;
        tr->sell_account = t->side == ARB_SIDE_SELL ? t->account : o->account;
        tr->ts = ts;
        tr->aggressor = t->side;
        tr->buy_fee = t->side == ARB_SIDE_BUY ? tfee : mfee;
        tr->sell_fee = t->side == ARB_SIDE_SELL ? tfee : mfee;
        b->ref_price = px;
        if (o->leaves == 0)
            remove_order(b, o);
    }
    return 0;
}

static ref_order *add_order(ref_engine *r, ref_book *b, const ref_view *v)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->orders = realloc(b->orders, b->cap * sizeof *b->orders);
    }
    ref_order *o = &b->orders[b->n++];
    o->id = v->id;
    o->account = v->account;
    o->client_ref = v->client_ref;
    o->price = v->price;
    o->qty = v->qty;
    o->leaves = v->leaves;
    o->time = ++r->clock;
    o->side = v->side;
    o->flags = v->flags;
    o->stp = v->stp;
    touch(r, o->side, o->price);
    return o;
}

static void cmd_new(ref_engine *r, book_output *out, ref_book *b, const arb_order_cmd *c)
{
    uint8_t reason = 0;
    if (c->side < 1 || c->side > 2 || c->type < 1 || c->type > 2 || c->tif < 1 || c->tif > 3 ||
        (c->flags & ~ARB_ORDF_POST_ONLY) || c->stp > 3)
        reason = ARB_R_BAD_FIELD;
    else if (c->type == ARB_ORD_MARKET && c->tif == ARB_TIF_GTC)
        reason = ARB_R_BAD_FIELD;
    else if ((c->flags & ARB_ORDF_POST_ONLY) && (c->type != ARB_ORD_LIMIT || c->tif != ARB_TIF_GTC))
        reason = ARB_R_BAD_FIELD;
    if (!reason)
        reason = check_price(b, c->price);
    if (!reason)
        reason = check_qty(b, c->qty);
    if (!reason && outside_band(b, c->price))
        reason = ARB_R_PRICE_BAND;
    if (!reason && find_order(b, c->order_id))
        reason = ARB_R_DUPLICATE_ORDER_ID;
    if (!reason && c->tif == ARB_TIF_GTC && r->cfg.max_open_orders &&
        open_orders(r, c->account) >= r->cfg.max_open_orders)
        reason = ARB_R_MAX_OPEN_ORDERS;
    if (!reason && (c->flags & ARB_ORDF_POST_ONLY) && would_cross(b, c->side, c->price))
        reason = ARB_R_POST_ONLY_WOULD_TAKE;
    if (reason) {
        reject(r, out, c, reason);
        return;
    }
    ref_view t = {c->order_id,
                  c->account,
                  c->client_ref,
                  c->price,
                  c->qty,
                  c->qty,
                  c->side,
                  c->type,
                  c->tif,
                  c->flags,
                  c->stp ? c->stp : r->cfg.stp_default};
    order_event(r, out, b, &t, ARB_EV_ACCEPTED, 0, t.leaves, 0, 0, 0, c->ts);
    if (c->tif == ARB_TIF_FOK && !fok_fillable(b, &t)) {
        order_event(r, out, b, &t, ARB_EV_EXPIRED, ARB_R_FOK_NOT_FILLABLE, 0, 0, 0, 0, c->ts);
        return;
    }
    int stopped = match(r, out, b, &t, c->ts);
    if (t.leaves == 0)
        return;
    if (stopped)
        order_event(r, out, b, &t, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 0, 0, 0, 0, c->ts);
    else if (c->tif != ARB_TIF_GTC)
        order_event(r, out, b, &t, ARB_EV_EXPIRED, ARB_R_NO_LIQUIDITY, 0, 0, 0, 0, c->ts);
    else
        add_order(r, b, &t);
}

static void cmd_cancel(ref_engine *r, book_output *out, ref_book *b, const arb_order_cmd *c)
{
    ref_order *o = find_order(b, c->order_id);
    if (!o) {
        reject(r, out, c, ARB_R_UNKNOWN_ORDER);
        return;
    }
    if (o->account != c->account) {
        reject(r, out, c, ARB_R_NOT_OWNER);
        return;
    }
    ref_view v = resting_view(o);
    order_event(r, out, b, &v, ARB_EV_CANCELLED, ARB_R_USER_CANCEL, 0, 0, 0, 0, c->ts);
    touch(r, o->side, o->price);
    remove_order(b, o);
}

static void cmd_replace(ref_engine *r, book_output *out, ref_book *b, const arb_order_cmd *c)
{
    ref_order *o = find_order(b, c->order_id);
    uint8_t reason = 0;
    if (!o)
        reason = ARB_R_UNKNOWN_ORDER;
    else if (o->account != c->account)
        reason = ARB_R_NOT_OWNER;
    if (!reason)
        reason = check_price(b, c->price);
    if (!reason)
        reason = check_qty(b, c->qty);
    int64_t filled = o ? o->qty - o->leaves : 0;
    if (!reason && filled + c->qty > BOOK_MAX_TOTAL)
        reason = ARB_R_QTY_ABOVE_MAX;
    if (!reason && c->price != o->price && outside_band(b, c->price))
        reason = ARB_R_PRICE_BAND;
    if (!reason && c->price != o->price && (o->flags & ARB_ORDF_POST_ONLY) &&
        would_cross(b, o->side, c->price))
        reason = ARB_R_POST_ONLY_WOULD_TAKE;
    if (reason) {
        reject(r, out, c, reason);
        return;
    }
    o->client_ref = c->client_ref;
    if (c->price == o->price && c->qty <= o->leaves) {
        if (c->qty < o->leaves)
            touch(r, o->side, o->price);
        o->qty = filled + c->qty;
        o->leaves = c->qty;
        ref_view v = resting_view(o);
        order_event(r, out, b, &v, ARB_EV_REPLACED, 0, v.leaves, 0, 0, 0, c->ts);
        return;
    }
    /* The order leaves the book, then comes back as if new (keeping its id,
     * fills and policy). */
    touch(r, o->side, o->price);
    ref_order keep = *o;
    remove_order(b, o);
    keep.price = c->price;
    keep.leaves = c->qty;
    keep.qty = filled + c->qty;
    ref_view t = resting_view(&keep);
    order_event(r, out, b, &t, ARB_EV_REPLACED, 0, t.leaves, 0, 0, 0, c->ts);
    int stopped = match(r, out, b, &t, c->ts);
    if (t.leaves == 0)
        return;
    if (stopped)
        order_event(r, out, b, &t, ARB_EV_CANCELLED, ARB_R_SELF_TRADE, 0, 0, 0, 0, c->ts);
    else
        add_order(r, b, &t);
}

/* Distinct prices of one side, best first. */
static size_t side_prices(const ref_book *b, uint8_t side, int64_t *prices)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->orders[i].side != side)
            continue;
        size_t k = 0;
        while (k < n && prices[k] != b->orders[i].price)
            k++;
        if (k == n)
            prices[n++] = b->orders[i].price;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0; k--) {
            int swap = side == ARB_SIDE_BUY ? prices[k] > prices[k - 1] : prices[k] < prices[k - 1];
            if (!swap)
                break;
            int64_t x = prices[k];
            prices[k] = prices[k - 1];
            prices[k - 1] = x;
        }
    return n;
}

static book_md *md(book_output *out, ref_book *b, uint8_t kind, uint64_t seq, int64_t ts)
{
    book_md *m = book_output_md(out);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->head.kind = kind;
    memcpy(m->head.venue, b->venue, ARB_VENUE_LEN);
    memcpy(m->head.symbol, b->symbol, ARB_SYMBOL_LEN);
    m->head.book_seq = seq;
    m->head.ts = ts;
    top(b, &m->head);
    m->first_level = out->n_levels;
    return m;
}

static void add_level(book_output *out, book_md *m, const ref_book *b, uint8_t side, int64_t price)
{
    arb_md_level *l = book_output_level(out);
    if (!l)
        return;
    memset(l, 0, sizeof *l);
    l->side = side;
    l->price = price;
    level_state(b, side, price, &l->qty, &l->orders);
    m->head.n_levels++;
}

static void cmd_snapshot(book_output *out, ref_engine *r, ref_book *b, const arb_order_cmd *c)
{
    size_t per_side = ARB_MD_MAX_LEVELS / 2;
    if (r->cfg.snapshot_levels && r->cfg.snapshot_levels < per_side)
        per_side = r->cfg.snapshot_levels;
    book_md *m = md(out, b, ARB_MD_SNAPSHOT, b->md_seq, c->ts);
    int64_t *prices = malloc((b->n + 1) * sizeof *prices);
    for (uint8_t side = ARB_SIDE_BUY; m && side <= ARB_SIDE_SELL; side++) {
        size_t n = side_prices(b, side, prices);
        for (size_t i = 0; i < n && i < per_side; i++)
            add_level(out, m, b, side, prices[i]);
    }
    free(prices);
}

static int touched_order(const void *x, const void *y)
{
    const ref_level_key *a = x, *b = y;
    if (a->side != b->side)
        return a->side < b->side ? -1 : 1;
    if (a->price == b->price)
        return 0;
    /* best first: bids high to low, asks low to high */
    if (a->side == ARB_SIDE_BUY)
        return a->price > b->price ? -1 : 1;
    return a->price < b->price ? -1 : 1;
}

void ref_engine_process(ref_engine *r, const arb_order_cmd *c, book_output *out)
{
    ref_book *b = find_book(r, c->venue, c->symbol);
    if (!b) {
        reject(r, out, c, ARB_R_UNKNOWN_INSTRUMENT);
        return;
    }
    r->n_touched = 0;
    switch (c->action) {
    case ARB_CMD_NEW: cmd_new(r, out, b, c); break;
    case ARB_CMD_CANCEL: cmd_cancel(r, out, b, c); break;
    case ARB_CMD_REPLACE: cmd_replace(r, out, b, c); break;
    case ARB_CMD_SNAPSHOT: cmd_snapshot(out, r, b, c); break;
    default: reject(r, out, c, ARB_R_BAD_FIELD); break;
    }
    if (!r->n_touched)
        return;
    qsort(r->touched, r->n_touched, sizeof *r->touched, touched_order);
    book_md *m = NULL;
    for (size_t i = 0; i < r->n_touched; i++) {
        if (!m || m->head.n_levels == ARB_MD_MAX_LEVELS)
            m = md(out, b, ARB_MD_LEVEL, ++b->md_seq, c->ts);
        if (!m)
            return;
        add_level(out, m, b, r->touched[i].side, r->touched[i].price);
    }
}

size_t ref_engine_orders(const ref_engine *r, const char *venue, const char *symbol, int side,
                         book_order_view *out, size_t max)
{
    char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
    if (arb_fixstr_set(v, ARB_VENUE_LEN, venue) || arb_fixstr_set(s, ARB_SYMBOL_LEN, symbol))
        return 0;
    ref_book *b = find_book((ref_engine *)r, v, s);
    if (!b)
        return 0;
    ref_order *list = malloc((b->n + 1) * sizeof *list);
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->orders[i].side == side)
            list[n++] = b->orders[i];
    qsort(list, n, sizeof *list, cmp_priority);
    for (size_t i = 0; i < n && i < max; i++) {
        book_order_view *o = &out[i];
        memset(o, 0, sizeof *o);
        o->order_id = list[i].id;
        o->account = list[i].account;
        o->client_ref = list[i].client_ref;
        o->price = list[i].price;
        o->qty = list[i].qty;
        o->leaves = list[i].leaves;
        o->side = list[i].side;
        o->flags = list[i].flags;
        o->stp = list[i].stp;
    }
    free(list);
    return n;
}
