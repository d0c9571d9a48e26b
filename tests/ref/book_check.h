/*
 * book_check.h -- tools the differential test and the fuzzer share: a random
 * command stream generator that reacts to what the books hold, a field-by-
 * field comparison of two outputs, and property checks on the engine's state
 * after a command. Test code only.
 */
#ifndef TESTS_BOOK_CHECK_H
#define TESTS_BOOK_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "../../plugins/matcher/book.h"
#include "ref_book.h"

/* ---- random streams ---- */

typedef struct gen_profile {
    uint32_t n_accounts;  /* 1.. */
    int64_t spread_ticks; /* prices drawn within +- spread of the reference */
    int huge_prices;      /* sometimes draw prices anywhere in 1..2^40 ticks */
    int sparse_ids;       /* order ids are random 64-bit numbers */
    uint32_t target_live; /* cancel harder above this many resting orders */
    uint32_t pct_bad;     /* percent of deliberately bad commands */
    uint32_t pct_stp;     /* percent of orders with an explicit stp policy */
} gen_profile;

#define GEN_MAX_LIVE 4096

typedef struct gen_live {
    uint32_t book;
    uint64_t id, account;
    int64_t price, leaves;
    uint8_t side;
} gen_live;

typedef struct book_gen {
    uint64_t rng;
    gen_profile p;
    const arb_instrument *inst;
    size_t n_inst;
    uint64_t next_id;
    int64_t ts;
    gen_live live[GEN_MAX_LIVE];
    uint32_t n_live;
} book_gen;

uint64_t gen_rand(uint64_t *state);
void gen_init(book_gen *g, uint64_t seed, const gen_profile *p, const arb_instrument *inst,
              size_t n_inst);
/* Next command; ref_prices[i] is the band reference of instrument i now. */
void gen_next(book_gen *g, const int64_t *ref_prices, arb_order_cmd *c);
/* Learns which orders rest from the events of the last command. */
void gen_observe(book_gen *g, const book_output *out, size_t first_event);

/* ---- comparison and properties: return NULL when fine, else a message ---- */

/* Compares out[a_first..] with ref[b_first..] record by record. */
const char *book_outputs_differ(const book_output *a, const book_output *b, char *msg, size_t cap);

/* Checks after a command on book b: not crossed; each level's quantity and
 * count equal the sums over its orders; levels strictly ordered; the
 * command's events keep filled + leaves == qty, fills never worse than the
 * limit; each trade matches its two fill events. */
const char *book_check_properties(const book_engine *e, const order_book *b, const book_output *out,
                                  char *msg, size_t cap);

/* Compares the engine's resting orders of every book with the reference's. */
const char *book_states_differ(const book_engine *e, const ref_engine *r, char *msg, size_t cap);

/* FIFO within a level, checked independently of the reference: the tracker
 * stamps each order when it first rests or loses priority (REPLACED to a
 * new price or a larger quantity) and checks stamps rise along every level.
 * `book` is any stable number for b. */
typedef struct fifo_entry {
    uint64_t id, stamp;
    int64_t price, leaves;
    int64_t traded; /* sum of this order's trades */
    uint32_t book;
    int used;
} fifo_entry;
typedef struct fifo_tracker {
    fifo_entry *e;
    size_t cap, used;
    uint64_t clock;
} fifo_tracker;
const char *fifo_check(fifo_tracker *t, const book_engine *e, const order_book *b, uint32_t book,
                       const book_output *out, char *msg, size_t cap);
void fifo_tracker_free(fifo_tracker *t);

/* Quantity conservation, on the same tracker: every order's filled_qty in
 * the command's events equals the sum of its trades so far. */
const char *fills_check(fifo_tracker *t, const book_engine *e, const book_output *out, char *msg,
                        size_t cap);

/* Standard test instruments: XA:BTCUSD (tick 5, band 5%), XB:BTCUSD (tick 1,
 * lot 10, no band), XA:ETHUSD (tick 1, lot 1, min 2, max 500). */
size_t book_test_instruments(arb_instrument *out, size_t max);

#endif
