/*
 * read_model.h -- what the gateway knows without asking the matcher.
 *
 * Built only from the matcher's output topics, so every read endpoint is
 * answered locally:
 *   orders     placed through this gateway, by id, with their fills and a
 *              per-account list of the open ones (order_events);
 *   books      per instrument, depth from market_data (snapshots and level
 *              updates) plus the top of book every record carries;
 *   trades     the most recent trades per instrument (trade_executed);
 *   accounts   position, cash and PnL per account and instrument, derived
 *              from trade_executed for every account (agents included) and
 *              marked to the instrument's last trade price.
 * Money is integer: cash is in price units x quantity units, kept in 128 bits
 * so a long run cannot overflow it. Pure code: no I/O, no host, no HTTP.
 */
#ifndef GW_READ_MODEL_H
#define GW_READ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "arb/instrument.h"
#include "arb/wire.h"
#include "order_json.h"
#include "u64map.h"

enum gw_order_status {
    GW_ST_PENDING = 0, /* sent to the matcher, no answer yet */
    GW_ST_OPEN,        /* accepted, resting, nothing filled */
    GW_ST_PARTIAL,     /* resting, partly filled */
    GW_ST_FILLED,
    GW_ST_CANCELLED,
    GW_ST_REJECTED,
    GW_ST_EXPIRED,
};
const char *gw_status_name(unsigned status);
static inline int gw_status_terminal(unsigned s) { return s >= GW_ST_FILLED; }

/* Fills kept per order for the API; filled_qty stays exact beyond this. */
#define GW_MAX_FILLS 64

typedef struct gw_fill {
    uint64_t trade_id;
    int64_t price, qty, ts;
    int64_t fee;       /* price units, negative: a rebate */
    uint8_t liquidity; /* enum arb_liquidity */
} gw_fill;

typedef struct gw_order {
    uint64_t order_id;
    uint64_t account;
    uint32_t instrument; /* index into the instrument table */
    uint8_t side, type, tif, flags;
    uint8_t status, reason;
    uint16_t n_fills;
    int64_t price, qty, leaves_qty, filled_qty;
    int64_t created_ts, updated_ts;
    int64_t answered_ts; /* the time of the first event applied: what a rebuild
                            from the events calls created_ts (snapshot.c) */
    uint64_t last_seq;   /* matcher sequence of the last event applied */
    char client_order_id[GW_CLIENT_ID_MAX + 1];
    int64_t placed_ns;                      /* the gateway's monotonic time of the POST, for the
                          client_order_id window (see gw_rm_order_by_client) */
    gw_fill *fills;                         /* n_fills entries, grown on demand */
    struct gw_order *open_prev, *open_next; /* account's open list */
    struct gw_order *done_next;             /* retention FIFO of terminal orders */
} gw_order;

typedef struct gw_position {
    int64_t position;     /* quantity units, signed */
    __int128 cash;        /* price units x quantity units, signed, net of fees */
    __int128 fees;        /* price units x quantity units paid, net of rebates */
    int64_t bought, sold; /* quantity units */
    uint64_t trades;
} gw_position;

typedef struct gw_account {
    uint64_t id;
    gw_order *open_head; /* open orders placed through this gateway */
    size_t open_count;
    gw_position *positions; /* one per instrument, or NULL until a trade */
} gw_account;

typedef struct gw_level {
    int64_t price, qty;
    uint32_t orders;
} gw_level;

typedef struct gw_book {
    gw_level *bids, *asks; /* best first */
    uint32_t n_bids, n_asks, cap_bids, cap_asks;
    int have_depth;                           /* a snapshot or level update arrived */
    int64_t bid_px, bid_qty, ask_px, ask_qty; /* top of book from the last record */
    uint64_t book_seq;
    int64_t ts;
    uint64_t version; /* bumped on every change, for stream coalescing */
} gw_book;

typedef struct gw_trade_rec {
    uint64_t trade_id, buy_order_id, sell_order_id, buy_account, sell_account, seq;
    int64_t price, qty, ts;
    uint8_t aggressor;
} gw_trade_rec;

typedef struct gw_trade_ring {
    gw_trade_rec *items;
    size_t cap, count, head; /* head: next write position */
    int64_t last_px;         /* 0 until the first trade */
} gw_trade_ring;

typedef struct gw_read_model {
    const arb_instrument_table *instruments; /* borrowed; outlives the model */
    gw_u64map instrument_index;              /* instrument key -> index + 1 */
    gw_book *books;                          /* one per instrument */
    gw_trade_ring *trades;                   /* one per instrument */
    gw_u64map orders;                        /* order id -> gw_order */
    gw_u64map by_client;                     /* hash of account and client_order_id -> gw_order */
    gw_u64map accounts;                      /* account -> gw_account */
    gw_account **account_list;               /* in order of first sight */
    size_t n_accounts, cap_accounts;
    gw_order *done_head, *done_tail; /* terminal orders, oldest first */
    size_t done_count, order_history;
    size_t trade_history; /* each ring's capacity */
} gw_read_model;

/* trade_history: trades kept per instrument; order_history: terminal orders
 * kept for GET /v1/orders/{id} before the oldest are forgotten. */
gw_read_model *gw_rm_new(const arb_instrument_table *t, size_t trade_history, size_t order_history);
void gw_rm_free(gw_read_model *rm);

/* Index of an instrument by its wire fields, or -1. */
int gw_rm_instrument(const gw_read_model *rm, const char venue[ARB_VENUE_LEN],
                     const char symbol[ARB_SYMBOL_LEN]);
int gw_rm_instrument_by_name(const gw_read_model *rm, const char *venue, const char *symbol);

/* Records an order this gateway is about to send (status pending). NULL on
 * no memory or a duplicate id. */
gw_order *gw_rm_order_add(gw_read_model *rm, uint64_t order_id, uint64_t account,
                          const gw_order_request *req, int64_t now);
gw_order *gw_rm_order(const gw_read_model *rm, uint64_t order_id);
/* The order the account placed with this client_order_id, if the model still
 * holds it (every open order, and the order_history most recent finished
 * ones) and it was placed at or after not_before (placed_ns); else NULL.
 * The latest order with an id wins. An empty client_order_id is never
 * found. */
gw_order *gw_rm_order_by_client(const gw_read_model *rm, uint64_t account, const char *client_id,
                                int64_t not_before);
/* Forgets a pending order whose command could not be sent. */
void gw_rm_order_drop(gw_read_model *rm, uint64_t order_id);
/* Whether the matcher's answer reached the order: an event was applied to
 * it (events carry seq 1 and up). An order without one is known only to
 * the process that sent it; a rebuild from the events would not have it. */
static inline int gw_order_answered(const gw_order *o)
{
    return o->status != GW_ST_PENDING || o->last_seq != 0;
}
/* An order as a snapshot recorded it (snapshot.c): o's fields but its links,
 * with o->n_fills of `fills`, linked where gw_rm_apply_event leaves such an
 * order: a live one at the head of its account's open list, a finished one
 * at the tail of the retention FIFO (forgetting the oldest past
 * order_history). NULL on no memory, a known id, an id or account of 0, an
 * unknown instrument or too many fills. */
gw_order *gw_rm_order_put(gw_read_model *rm, const gw_order *o, const gw_fill *fills);

/* What applying an order event did, for the caller's pending requests. */
enum gw_event_effect {
    GW_EFF_NONE = 0,     /* not one of ours, or stale */
    GW_EFF_UPDATED,      /* the order's state changed */
    GW_EFF_CMD_REJECTED, /* a cancel or replace for a live order was refused */
};
int gw_rm_apply_event(gw_read_model *rm, const arb_order_event *ev, gw_order **order);
/* Returns the instrument index, or -1 if the trade's instrument is unknown. */
int gw_rm_apply_trade(gw_read_model *rm, const arb_trade *t);
/* A trade into instrument idx's ring of recent trades (as the newest),
 * without touching positions: a snapshot's ring, restored. */
void gw_rm_trade_put(gw_read_model *rm, int idx, const gw_trade_rec *t);
/* The account's positions, one per instrument (created, zeroed, with the
 * account if need be); NULL on no memory or account 0. */
gw_position *gw_rm_positions(gw_read_model *rm, uint64_t account);
/* Returns the instrument index, or -1 (unknown instrument or stale). */
int gw_rm_apply_market_data(gw_read_model *rm, const arb_market_data *md);

gw_account *gw_rm_account(gw_read_model *rm, uint64_t id, int create);

/* Unrealised plus realised PnL of one position, marked at last_px: in price
 * units x quantity units. */
static inline __int128 gw_position_pnl(const gw_position *p, int64_t last_px)
{
    return p->cash + (__int128)p->position * last_px;
}

#endif
