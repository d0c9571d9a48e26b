/*
 * book_internal.h -- the engine's data structures, shared by book.c (matching)
 * and book_state.c (save, restore, reading the state). Not for the plugin or
 * tests: they use book.h.
 *
 * Layout, chosen for speed (see the README for the measurements):
 *   - Resting orders live in one engine-wide pool of 64-byte records, linked
 *     by 32-bit indices (0 is "none") into a FIFO per price level; freed
 *     records go on a free list, so steady-state matching never allocates.
 *   - Each book maps order ids to pool indices with a hash table of 64-byte
 *     buckets of seven (tag, index) lanes, compared all at once (SIMD where
 *     available): ids may be large and sparse, a lookup reads one cache line
 *     without a probe loop, and an entry never moves until the table grows
 *     (a resting order keeps its position, so a fill frees it by a store).
 *   - Each side of a book keeps its price levels in a window of consecutive
 *     ticks, indexed directly, with a two-level bitmap to find the next best
 *     level. Prices are "keys" in which better is larger on both sides (bid
 *     key = ticks, ask key = -ticks), so one code path serves both. The window
 *     slides and grows as prices move; levels that do not fit even at the
 *     largest width sit in a sorted overflow array, always worse than every
 *     window level, and move back when the window empties.
 */
#ifndef MATCHER_BOOK_INTERNAL_H
#define MATCHER_BOOK_INTERNAL_H

#include "book.h"

#define SIDE_BID 0
#define SIDE_ASK 1

typedef struct resting_order {
    uint64_t order_id;
    uint64_t account;
    uint64_t client_ref;
    int64_t ticks;      /* limit price / tick */
    int64_t qty;        /* total: filled + leaves */
    int64_t leaves;     /* open quantity */
    uint32_t next;      /* newer order at the same level; free-list link when free */
    uint32_t prev;      /* older order at the same level */
    uint32_t acct;      /* index into the engine's account records */
    uint32_t side : 1;  /* SIDE_BID or SIDE_ASK; bit 0, the one read most */
    uint32_t flags : 1; /* ARB_ORDF_POST_ONLY */
    uint32_t stp : 2;   /* resolved policy: ARB_STP_CANCEL_RESTING/_INCOMING/_NONE */
    /* Where the book's id map holds this order (bucket * 8 + lane), so a
     * fill or a self-trade cancel frees its lane without a lookup. The map
     * of a book holds at most BOOK_MAX_ORDERS ids: 2^21 buckets. */
    uint32_t id_pos : 28;
} resting_order;

typedef struct price_level {
    int64_t qty; /* sum of the orders' leaves */
    uint32_t head, tail;
    uint32_t count;
    uint32_t pad;
} price_level;

typedef struct far_level {
    int64_t key;
    price_level lv;
} far_level;

typedef struct book_side {
    price_level *slot;       /* slot[i] is the level of key lo + i */
    uint64_t *bits;          /* bit i: slot[i] has orders */
    uint64_t *summary;       /* bit j: bits[j] != 0 */
    price_level *spare_slot; /* zeroed twins, swapped in when the window slides */
    uint64_t *spare_bits;
    uint64_t *spare_summary;
    int64_t lo;
    int64_t best;      /* largest key with orders; valid when n_levels > 0 */
    uint32_t width;    /* power of two */
    uint32_t n_levels; /* levels with orders inside the window */
    far_level *far;    /* ascending keys, all below lo; empty when n_levels == 0 */
    uint32_t n_far, cap_far;
    /* The best level as every command's market data and matching read it,
     * kept by side_sync_top whenever best, the window or n_levels change:
     * its key (INT64_MIN when the side is empty, so "crosses" is one
     * compare), its price, and the level itself (`none` when empty). */
    int64_t top_key;
    int64_t top_px;
    price_level *top_lv;
    int64_t px_mul; /* price of a key: tick for bids, -tick for asks */
    price_level none;
} book_side;

/* Seven entries per 64-byte bucket: a lookup reads one cache line and
 * compares all its tags at once. tag[7] counts the entries whose home is
 * this bucket but which had to go to a later one (it was full). */
#define ID_LANES 7u
typedef struct id_bucket {
    uint32_t tag[8]; /* top bits of the id's hash, | 1; 0: empty lane */
    uint32_t idx[8]; /* record index */
} id_bucket;

typedef struct id_map {
    id_bucket *b; /* 64-byte aligned inside raw */
    void *raw;
    uint32_t mask; /* buckets - 1 */
    int shift;     /* 32 - log2(buckets): tag >> shift is the home bucket */
    uint32_t count;
    uint32_t limit; /* count that makes the map grow */
} id_map;

struct order_book {
    uint64_t k[3]; /* venue and symbol wire fields as three words */
    char venue[ARB_VENUE_LEN];
    char symbol[ARB_SYMBOL_LEN];
    int64_t tick, lot, min_qty, max_qty;
    int64_t band_bps;
    int64_t ref_price; /* band reference */
    int64_t band_lo, band_hi;
    /* Prices and quantities of a NEW that pass every check, as [lo, lo + n)
     * (update_band, set_qty_range): one compare each on the common path. */
    uint64_t fast_px_lo, fast_px_n, fast_qty_lo, fast_qty_n;
    uint64_t trade_seq;     /* trades so far; the next is trade_seq + 1 */
    uint64_t trade_id_base; /* book id << BOOK_TRADE_BITS */
    uint64_t md_seq;
    book_side side[2];
    id_map ids; /* order id -> pool index */
    uint32_t orders;
    uint32_t index; /* position in the engine's book list */
    int qty_decimals;
    int64_t maker_cbps, taker_cbps; /* the instrument's fee rates */
    arb_instrument inst;
};

typedef struct account_rec {
    uint64_t account;
    uint32_t open;
    uint32_t pad;
} account_rec;

/* A recently used account and its record index. */
#define HOT_ACCOUNT_BITS 8
typedef struct account_slot {
    uint64_t account;
    uint32_t idx; /* 0: empty */
    uint32_t pad;
} account_slot;

typedef struct touched_level {
    int64_t key;
    int side;
} touched_level;

struct book_engine {
    book_config cfg;
    /* cfg as the NEW path reads it: the open-order cap (UINT32_MAX when
     * there is none: one compare) and the policy of each stp byte (0: the
     * default; a load, not a select). */
    uint32_t open_cap;
    uint8_t stp_of[ARB_STP_NONE + 1];
    order_book *last_book; /* one-entry cache in front of the book table */
    resting_order *orders;
    uint32_t order_cap;  /* records in the pool, index 0 unused */
    uint32_t order_used; /* high-water mark of handed-out records */
    uint32_t free_head;
    uint64_t event_seq;
    touched_level *touched; /* touched[-1] is a sentinel */
    /* n_touched, touched_lost and slid are per-command state, 0 again at
     * the end of every command (book.c, finish_command). */
    uint32_t n_touched, cap_touched;
    int touched_lost;
    int slid; /* a window slid during this command (side_prepare) */
    order_book **books;
    uint32_t n_books, cap_books;
    uint32_t *book_slots; /* open addressing: book index + 1, 0 empty */
    uint32_t book_mask;
    account_rec *accts;
    uint32_t n_accts, cap_accts;
    id_map acct_ids; /* account -> index into accts */
    account_slot hot_accts[1u << HOT_ACCOUNT_BITS];
    book_output out;
    /* Where records go when an output array cannot grow: sequences still
     * advance, so what does get out stays numbered as the reference has it. */
    arb_order_event lost_event;
    arb_trade lost_trade;
    arb_fee_tiers tiers; /* accounts with rates of their own (a copy) */
};

/* Shared between book.c and book_state.c. */
int64_t book__side_next_key(const book_side *s, int64_t key, int *found);
const price_level *book__side_find(const book_side *s, int64_t key);
int book__rest_restored(book_engine *e, order_book *b, const book_order_view *v);
void book__set_counters(order_book *b, uint64_t trade_seq, uint64_t md_seq, int64_t ref_price);
uint32_t book__account_open(const book_engine *e, uint64_t account);
order_book *book__find(book_engine *e, const char *venue, const char *symbol);

#endif /* MATCHER_BOOK_INTERNAL_H */
