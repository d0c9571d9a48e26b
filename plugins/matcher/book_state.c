/*
 * book_state.c -- reading the engine's state, and saving/restoring it as
 * bytes (hot reload of the matcher plugin; later, moving books between
 * processes). Not the hot path: matching is in book.c.
 *
 * Saved format (BOOK_STATE_VERSION 1), little-endian, independent of the
 * in-memory layout:
 *   header  "ARBBOOK1" | u32 version | u32 n_books | u64 event_seq
 *   book    venue[8] | symbol[16] | u64 trade_seq | u64 md_seq |
 *           i64 ref_price | u32 n_orders | u32 zero
 *   order   u64 order_id | u64 account | u64 client_ref | i64 price |
 *           i64 qty | i64 leaves | u8 side | u8 flags | u8 stp | 5 x zero
 * Orders are listed bids then asks, each side in priority order, so
 * restoring them by appending rebuilds every FIFO exactly.
 */
#include "book_internal.h"

#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "ARBBOOK1"
#define STATE_HDR_LEN 24u
#define STATE_BOOK_LEN 56u
#define STATE_ORDER_LEN 56u

size_t book_engine_book_count(const book_engine *e) { return e->n_books; }

const order_book *book_engine_book_at(const book_engine *e, size_t i)
{
    return i < e->n_books ? e->books[i] : NULL;
}

const arb_instrument *order_book_instrument(const order_book *b) { return &b->inst; }

size_t order_book_index(const order_book *b) { return b->index; }

uint32_t order_book_level_count(const order_book *b, int side)
{
    const book_side *s = &b->side[side == ARB_SIDE_SELL];
    return s->n_levels + s->n_far;
}

int order_book_each_order(const book_engine *e, const order_book *b, int side, book_order_fn fn,
                          void *user)
{
    int six = side == ARB_SIDE_SELL;
    const book_side *s = &b->side[six];
    if (!s->n_levels)
        return 0;
    int found = 1;
    for (int64_t key = s->best; found; key = book__side_next_key(s, key, &found)) {
        const price_level *lv = book__side_find(s, key);
        for (uint32_t oi = lv->head; oi; oi = e->orders[oi].next) {
            const resting_order *o = &e->orders[oi];
            book_order_view v = {
                .order_id = o->order_id,
                .account = o->account,
                .client_ref = o->client_ref,
                .price = o->ticks * b->tick,
                .qty = o->qty,
                .leaves = o->leaves,
                .side = (uint8_t)(six + 1),
                .flags = o->flags,
                .stp = o->stp,
            };
            int rc = fn(user, &v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void order_book_get_stats(const book_engine *e, const order_book *b, order_book_stats *st)
{
    arb_md_level top;
    memset(st, 0, sizeof *st);
    st->trades = b->trade_seq;
    st->md_seq = b->md_seq;
    st->ref_price = b->ref_price;
    st->orders = b->orders;
    if (order_book_depth(e, b, ARB_SIDE_BUY, &top, 1))
        st->bid_px = top.price, st->bid_qty = top.qty;
    if (order_book_depth(e, b, ARB_SIDE_SELL, &top, 1))
        st->ask_px = top.price, st->ask_qty = top.qty;
}

/* Orders resting in all the engine's books. */
static uint64_t live_orders(const book_engine *e)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < e->n_books; i++)
        n += e->books[i]->orders;
    return n;
}

void book_engine_get_stats(const book_engine *e, book_engine_stats *st)
{
    st->event_seq = e->event_seq;
    st->books = e->n_books;
    st->orders = live_orders(e);
    st->accounts = e->n_accts;
    st->order_capacity = e->order_cap - 1;
}

uint32_t book_engine_open_orders(const book_engine *e, uint64_t account)
{
    return book__account_open(e, account);
}

/* ---- save ---- */

typedef struct state_writer {
    uint8_t *p;
} state_writer;

static int write_order(void *user, const book_order_view *v)
{
    state_writer *w = user;
    uint8_t *p = w->p;
    arb_put_u64(p, v->order_id);
    arb_put_u64(p + 8, v->account);
    arb_put_u64(p + 16, v->client_ref);
    arb_put_i64(p + 24, v->price);
    arb_put_i64(p + 32, v->qty);
    arb_put_i64(p + 40, v->leaves);
    p[48] = v->side, p[49] = v->flags, p[50] = v->stp;
    memset(p + 51, 0, 5);
    w->p += STATE_ORDER_LEN;
    return 0;
}

int book_engine_save(const book_engine *e, const char *venue, const char *symbol, void **bytes,
                     size_t *len)
{
    const order_book *only = NULL;
    *bytes = NULL;
    *len = 0;
    if (venue) {
        char v[ARB_VENUE_LEN], s[ARB_SYMBOL_LEN];
        if (!symbol || arb_fixstr_set(v, ARB_VENUE_LEN, venue) ||
            arb_fixstr_set(s, ARB_SYMBOL_LEN, symbol) || !(only = book_engine_find(e, v, s)))
            return ARB_ENOENT;
    }
    size_t n_books = only ? 1 : e->n_books;
    size_t total = STATE_HDR_LEN;
    for (size_t i = 0; i < e->n_books; i++)
        if (!only || e->books[i] == only)
            total += STATE_BOOK_LEN + (size_t)e->books[i]->orders * STATE_ORDER_LEN;
    uint8_t *buf = malloc(total);
    if (!buf)
        return ARB_ENOMEM;
    memcpy(buf, STATE_MAGIC, 8);
    arb_put_u32(buf + 8, BOOK_STATE_VERSION);
    arb_put_u32(buf + 12, (uint32_t)n_books);
    arb_put_u64(buf + 16, e->event_seq);
    state_writer w = {buf + STATE_HDR_LEN};
    for (size_t i = 0; i < e->n_books; i++) {
        const order_book *b = e->books[i];
        if (only && b != only)
            continue;
        uint8_t *p = w.p;
        memcpy(p, b->venue, ARB_VENUE_LEN);
        memcpy(p + 8, b->symbol, ARB_SYMBOL_LEN);
        arb_put_u64(p + 24, b->trade_seq);
        arb_put_u64(p + 32, b->md_seq);
        arb_put_i64(p + 40, b->ref_price);
        arb_put_u32(p + 48, b->orders);
        arb_put_u32(p + 52, 0);
        w.p += STATE_BOOK_LEN;
        order_book_each_order(e, b, ARB_SIDE_BUY, write_order, &w);
        order_book_each_order(e, b, ARB_SIDE_SELL, write_order, &w);
    }
    *bytes = buf;
    *len = total;
    return ARB_OK;
}

/* ---- restore ---- */

static void read_order(const uint8_t *p, book_order_view *v)
{
    v->order_id = arb_get_u64(p);
    v->account = arb_get_u64(p + 8);
    v->client_ref = arb_get_u64(p + 16);
    v->price = arb_get_i64(p + 24);
    v->qty = arb_get_i64(p + 32);
    v->leaves = arb_get_i64(p + 40);
    v->side = p[48], v->flags = p[49], v->stp = p[50];
}

static int order_valid(const order_book *b, const uint8_t *p, const book_order_view *v)
{
    for (int i = 51; i < 56; i++)
        if (p[i])
            return 0;
    return (v->side == ARB_SIDE_BUY || v->side == ARB_SIDE_SELL) &&
           !(v->flags & ~ARB_ORDF_POST_ONLY) && v->stp >= ARB_STP_CANCEL_RESTING &&
           v->stp <= ARB_STP_NONE && v->price > 0 && v->price <= BOOK_MAX_PRICE &&
           v->price % b->tick == 0 && v->leaves > 0 && v->leaves <= BOOK_MAX_QTY &&
           v->qty >= v->leaves && v->qty <= BOOK_MAX_TOTAL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks one saved book; returns its length in bytes, or 0 if it is not
 * acceptable. `ids` has room for the book's order ids. */
static size_t check_book(book_engine *e, const uint8_t *p, size_t avail, order_book **out,
                         uint64_t **ids, size_t *ids_cap)
{
    if (avail < STATE_BOOK_LEN || arb_get_u32(p + 52) != 0)
        return 0;
    char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
    if (arb__wire_get_text(p, ARB_VENUE_LEN, venue, 1) ||
        arb__wire_get_text(p + 8, ARB_SYMBOL_LEN, symbol, 1))
        return 0;
    order_book *b = book__find(e, venue, symbol);
    uint32_t n = arb_get_u32(p + 48);
    if (!b || b->orders || n > BOOK_MAX_ORDERS || arb_get_i64(p + 40) < 0 ||
        (avail - STATE_BOOK_LEN) / STATE_ORDER_LEN < n)
        return 0;
    if (n > *ids_cap) {
        uint64_t *grown = realloc(*ids, (size_t)n * sizeof *grown);
        if (!grown)
            return 0;
        *ids = grown;
        *ids_cap = n;
    }
    int64_t best_bid = 0, best_ask = INT64_MAX;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *op = p + STATE_BOOK_LEN + (size_t)i * STATE_ORDER_LEN;
        book_order_view v;
        read_order(op, &v);
        if (!order_valid(b, op, &v))
            return 0;
        if (v.side == ARB_SIDE_BUY && v.price > best_bid)
            best_bid = v.price;
        if (v.side == ARB_SIDE_SELL && v.price < best_ask)
            best_ask = v.price;
        (*ids)[i] = v.order_id;
    }
    if (best_bid >= best_ask) /* a crossed book is not a state we could have saved */
        return 0;
    if (n > 1)
        qsort(*ids, n, sizeof **ids, cmp_u64);
    for (uint32_t i = 1; i < n; i++)
        if ((*ids)[i] == (*ids)[i - 1])
            return 0;
    *out = b;
    return STATE_BOOK_LEN + (size_t)n * STATE_ORDER_LEN;
}

int book_engine_restore(book_engine *e, const void *bytes, size_t len)
{
    const uint8_t *p = bytes;
    if (len < STATE_HDR_LEN || memcmp(p, STATE_MAGIC, 8) ||
        arb_get_u32(p + 8) != BOOK_STATE_VERSION)
        return ARB_EREFUSED;
    uint32_t n_books = arb_get_u32(p + 12);
    if (n_books > e->n_books)
        return ARB_EREFUSED;
    order_book **seen = calloc(n_books ? n_books : 1, sizeof *seen);
    uint64_t *ids = NULL;
    size_t ids_cap = 0;
    int rc = seen ? ARB_OK : ARB_ENOMEM;
    size_t off = STATE_HDR_LEN;
    uint64_t total_orders = live_orders(e);
    for (uint32_t i = 0; i < n_books && rc == ARB_OK; i++) {
        order_book *b = NULL;
        size_t used = check_book(e, p + off, len - off, &b, &ids, &ids_cap);
        if (!used) {
            rc = ARB_EREFUSED;
            break;
        }
        for (uint32_t j = 0; j < i; j++)
            if (seen[j] == b)
                rc = ARB_EREFUSED;
        seen[i] = b;
        total_orders += arb_get_u32(p + off + 48);
        off += used;
    }
    if (rc == ARB_OK && (off != len || total_orders > BOOK_MAX_ORDERS))
        rc = ARB_EREFUSED;
    free(ids);
    if (rc) {
        free(seen);
        return rc;
    }
    uint64_t event_seq = arb_get_u64(p + 16);
    if (event_seq > e->event_seq)
        e->event_seq = event_seq;
    off = STATE_HDR_LEN;
    for (uint32_t i = 0; i < n_books && rc == ARB_OK; i++) {
        const uint8_t *bp = p + off;
        order_book *b = seen[i];
        uint32_t n = arb_get_u32(bp + 48);
        book__set_counters(b, arb_get_u64(bp + 24), arb_get_u64(bp + 32), arb_get_i64(bp + 40));
        for (uint32_t k = 0; k < n && rc == ARB_OK; k++) {
            book_order_view v;
            read_order(bp + STATE_BOOK_LEN + (size_t)k * STATE_ORDER_LEN, &v);
            rc = book__rest_restored(e, b, &v);
        }
        off += STATE_BOOK_LEN + (size_t)n * STATE_ORDER_LEN;
    }
    free(seen);
    return rc;
}
