/*
 * book.h -- the matching engine: price-time priority order books for many
 * instruments, driven by order commands, producing order events, trades and
 * market data. Pure code: no I/O, no clock, no host calls. The matcher plugin
 * (matcher_plugin.c) wraps it with the bus; tests drive it directly.
 *
 * This header is also the rulebook. tests/ref/ref_book.c implements the same
 * rules the slow, obvious way, and the differential test holds the two to
 * identical output, field by field.
 *
 * Units. Prices and quantities are the wire integers of arb/wire.h (price
 * units and quantity units of the instrument). A price must be a multiple of
 * the instrument's tick and a quantity a multiple of its lot.
 *
 * Commands (arb_order_cmd) and what they produce, in this order:
 *   - Unknown venue/symbol: REJECTED(unknown_instrument), for every action.
 *   - An action outside 1..4: REJECTED(bad_field).
 *   - NEW is checked in this order, the first failure rejecting it:
 *       side, type, tif not set or out of range, flags other than post-only,
 *       stp out of range, MARKET with GTC, post-only unless LIMIT GTC
 *                                         -> bad_field
 *       price <= 0 or > BOOK_MAX_PRICE      -> bad_price (market orders carry
 *                                             their protection price here)
 *       price not a multiple of tick        -> price_off_tick
 *       qty <= 0                            -> bad_quantity
 *       qty not a multiple of lot           -> qty_off_lot
 *       qty < min_qty / > min(max_qty, BOOK_MAX_QTY) -> qty_below_min / qty_above_max
 *       price outside the band              -> price_band
 *       order id resting in this book       -> duplicate_order_id
 *       GTC limit and the account already has max_open_orders resting orders,
 *       or the engine is out of capacity    -> max_open_orders
 *       post-only that would cross          -> post_only_would_take
 *     Otherwise ACCEPTED, then:
 *       FOK that cannot fill completely (see self-trade prevention below):
 *         EXPIRED(fok_not_fillable), nothing else changes.
 *       Matching against the opposite side, best price first, oldest first
 *       within a price, while the resting price is at or better than the
 *       limit (a market order's limit is its protection price). Each fill
 *       trades at the resting order's price and emits, in order, the resting
 *       order's event, the incoming order's event (PARTIAL, or FILLED when
 *       nothing is left) and one trade.
 *       The remainder of a GTC limit rests at the back of its price level;
 *       of IOC and market orders it expires: EXPIRED(no_liquidity).
 *   - Self-trade prevention: when the next resting order to match belongs to
 *     the incoming order's account, the order's policy decides (cmd.stp, or
 *     the engine default when 0, fixed when the order is accepted):
 *       cancel_resting: CANCELLED(self_trade) for the resting order, matching
 *         goes on; cancel_incoming: matching stops and the incoming remainder
 *         is CANCELLED(self_trade); none: they trade.
 *     A FOK counts only what it could take before such a stop, and never
 *     the quantity of its own account's orders.
 *   - CANCEL: unknown_order if the id does not rest in this book, not_owner
 *     if cmd.account is not the order's; else CANCELLED(user_cancel).
 *   - REPLACE: price and qty are the new limit and the new open (leaves)
 *     quantity. Checked: unknown_order, not_owner, bad_price,
 *     price_off_tick, bad_quantity, qty_off_lot, qty_below_min,
 *     qty_above_max (also when filled + qty exceeds BOOK_MAX_TOTAL),
 *     price_band (only if the price changes), post_only_would_take (only if
 *     the price changes). Then REPLACED with the order's new state. Same
 *     price and qty not above the old open quantity: the order keeps its
 *     place. Otherwise it leaves its level, matches like an incoming limit
 *     order of its own policy if the new price crosses, and rests at the back
 *     of its new level. The order's client_ref becomes the command's.
 *   - SNAPSHOT: one ARB_MD_SNAPSHOT of the book (no order event).
 *   - REJECTED events echo the command (enums out of range become 0). Other
 *     events describe the order after the event: price is its limit, qty its
 *     total quantity (filled + open), leaves_qty its open quantity (0 once
 *     cancelled or expired), filled_qty its cumulative fills, and client_ref
 *     the order's (from its NEW or last REPLACE). Resting orders are LIMIT GTC.
 *
 * Fees: every fill's two order events carry the fee each account pays
 * (fee, liquidity maker for the resting order, taker for the incoming one)
 * and the trade carries both (buy_fee, sell_fee): arb_fee_of(price, qty,
 * qty_decimals, rate), the rate being the account's fee tier's on this
 * venue if it has one, else the instrument's maker or taker rate. Every
 * other event has fee 0 and liquidity none.
 *
 * Price band: with band_bps > 0 and a reference price r > 0, a limit or
 * protection price p is accepted when |p - r| <= floor(r * band_bps / 10000).
 * r starts at the instrument's ref_price and becomes the price of each trade.
 *
 * Sequences and ids: order events carry an engine-wide output sequence.
 * Each book numbers its trades n = 1, 2, 3 ... (the trade's seq) and a
 * trade's id is book_id << BOOK_TRADE_BITS | n: a pure function of the
 * book's input, so a replay yields the same ids, and unique across books as
 * long as every process gives a book the same book id (the matcher plugin
 * uses the instrument's position in the shared instrument table). Market
 * data records carry the book's own sequence.
 *
 * Market data: after every command that added, removed or changed a resting
 * order, one ARB_MD_LEVEL record: the top of book after the command and the
 * final state (qty, order count; qty 0 = gone) of every price level the
 * command touched, bids before asks, best price first. More than
 * ARB_MD_MAX_LEVELS levels spill into further records, each with its own
 * sequence. A SNAPSHOT record repeats the current sequence (it is not a
 * change) and lists up to snapshot_levels levels per side, best first.
 *
 * Ownership: the engine owns everything it returns; output arrays live until
 * the next book_output_clear() or book_engine_process(). One thread at a time.
 */
#ifndef MATCHER_BOOK_H
#define MATCHER_BOOK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arb/instrument.h>
#include <arb/wire.h>

/* Limits that keep every sum inside int64: at most BOOK_MAX_ORDERS resting
 * orders of at most BOOK_MAX_QTY each. */
#define BOOK_MAX_PRICE (INT64_C(1) << 52)
#define BOOK_MAX_QTY (INT64_C(1) << 40)
#define BOOK_MAX_TOTAL (INT64_C(1) << 61)
#define BOOK_MAX_ORDERS (UINT32_C(1) << 22)

/* Trade ids: book id in the high bits, the book's trade count in the low
 * BOOK_TRADE_BITS; ids stay below 2^63 (a signed bigint downstream). */
#define BOOK_TRADE_BITS 40
#define BOOK_MAX_ID ((UINT32_C(1) << 22) - 1)

/* Format of book_engine_save() bytes. */
#define BOOK_STATE_VERSION 1u

typedef struct book_config {
    uint8_t stp_default;      /* ARB_STP_CANCEL_RESTING (default), _INCOMING or _NONE */
    uint32_t max_open_orders; /* resting orders per account; 0: no limit */
    uint32_t snapshot_levels; /* per side in a SNAPSHOT; 0: as many as fit */
    /* Price levels are kept in a window of consecutive ticks per side that
     * grows from window_init up to window_max (powers of two); levels beyond
     * it live in a sorted overflow list. 0 picks the defaults (256, 65536).
     * Tests use small windows to exercise the overflow path. */
    uint32_t window_init;
    uint32_t window_max;
    uint32_t order_capacity; /* resting orders to allocate up front */
} book_config;

/* One market data record: the fixed part, and its levels at
 * levels[first_level .. first_level + head.n_levels) of the output. */
typedef struct book_md {
    arb_market_data head; /* head.levels is unused (NULL) */
    uint32_t first_level;
} book_md;

/* What commands produced, in order within each array, until cleared. The
 * four counts sit together so that clearing them, once per command, is one
 * wide store. */
typedef struct book_output {
    uint32_t n_events, n_trades, n_md, n_levels;
    arb_order_event *events;
    uint32_t cap_events, cap_trades, cap_md, cap_levels;
    arb_trade *trades;
    book_md *md;
    arb_md_level *levels;
    uint64_t dropped; /* records lost because an output array could not grow */
} book_output;

static inline void book_output_clear(book_output *o)
{
    memset(o, 0, offsetof(book_output, events));
}

/* Appends, growing the arrays; return NULL (and count a drop) when out of
 * memory. The reference book uses these too: they are containers, not rules. */
arb_order_event *book_output_event(book_output *o);
arb_trade *book_output_trade(book_output *o);
book_md *book_output_md(book_output *o);
arb_md_level *book_output_level(book_output *o);
void book_output_free(book_output *o);

typedef struct book_engine book_engine;
typedef struct order_book order_book;

/* Creates an empty engine (no instruments). cfg may be NULL for defaults.
 * Returns ARB_EINVAL for a bad config, ARB_ENOMEM. */
int book_engine_new(const book_config *cfg, book_engine **out);
void book_engine_free(book_engine *e);

/* Adds a book whose trade ids carry book_id (1..BOOK_MAX_ID). ARB_EINVAL
 * if the instrument is malformed, or it or the id is already there. */
int book_engine_add_instrument_id(book_engine *e, const arb_instrument *in, uint32_t book_id);
/* The same with book_id = the number of books so far + 1. */
int book_engine_add_instrument(book_engine *e, const arb_instrument *in);

/* Applies one command; its output is appended to book_engine_output(e). */
void book_engine_process(book_engine *e, const arb_order_cmd *cmd);

book_output *book_engine_output(book_engine *e);

/* Fee tiers (arb/instrument.h), copied: accounts they name pay their rates
 * instead of the instrument's. ARB_ENOMEM leaves the old tiers. */
int book_engine_set_fee_tiers(book_engine *e, const arb_fee_tiers *tiers);

/* ---- reading the state (tests, snapshots, the admin endpoint) ---- */

typedef struct book_order_view {
    uint64_t order_id, account, client_ref;
    int64_t price, qty, leaves;
    uint8_t side, flags, stp;
} book_order_view;

typedef int (*book_order_fn)(void *user, const book_order_view *o);

size_t book_engine_book_count(const book_engine *e);
const order_book *book_engine_book_at(const book_engine *e, size_t i);
const order_book *book_engine_find(const book_engine *e, const char venue[ARB_VENUE_LEN],
                                   const char symbol[ARB_SYMBOL_LEN]);
const arb_instrument *order_book_instrument(const order_book *b);
/* The book's position for book_engine_book_at() (stable: books are never removed). */
size_t order_book_index(const order_book *b);

/* Up to max levels of one side (ARB_SIDE_BUY/SELL), best first, with
 * total quantity and order count. Returns the number written. */
uint32_t order_book_depth(const book_engine *e, const order_book *b, int side, arb_md_level *out,
                          uint32_t max);
/* Number of price levels on one side. */
uint32_t order_book_level_count(const order_book *b, int side);
/* Calls fn for every resting order of one side in priority order (best
 * price first, oldest first); stops early when fn returns non-zero. */
int order_book_each_order(const book_engine *e, const order_book *b, int side, book_order_fn fn,
                          void *user);

typedef struct order_book_stats {
    uint64_t trades;   /* trade sequence: trades so far */
    uint64_t md_seq;   /* last market data sequence */
    int64_t ref_price; /* band reference: last trade price or the configured one */
    uint32_t orders;   /* resting orders */
    int64_t bid_px, bid_qty, ask_px, ask_qty; /* qty 0: that side is empty */
} order_book_stats;
void order_book_get_stats(const book_engine *e, const order_book *b, order_book_stats *st);

typedef struct book_engine_stats {
    uint64_t event_seq;
    uint32_t books, orders, accounts;
    uint32_t order_capacity;
} book_engine_stats;
void book_engine_get_stats(const book_engine *e, book_engine_stats *st);

/* Resting orders of an account across all books. */
uint32_t book_engine_open_orders(const book_engine *e, uint64_t account);

/* ---- state ---- */

/* Serializes the books (all of them, or only venue/symbol when venue is not
 * NULL) and the engine's output sequence into malloc'd bytes the caller
 * frees. Format BOOK_STATE_VERSION, little-endian, independent of the
 * in-memory layout. */
int book_engine_save(const book_engine *e, const char *venue, const char *symbol, void **bytes,
                     size_t *len);

/* Loads saved books into this engine. Every book in the bytes must be
 * configured here and hold no orders yet; every order must be valid for the
 * configured instrument. Validation happens before anything changes:
 * ARB_EREFUSED (bytes not acceptable, engine untouched) or ARB_ENOMEM. */
int book_engine_restore(book_engine *e, const void *bytes, size_t len);

#endif /* MATCHER_BOOK_H */
