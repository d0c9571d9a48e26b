/*
 * ref_book.h -- the reference order book: the rules of plugins/matcher/book.h
 * implemented the slow, obvious way (one unsorted array of orders per book,
 * linear scans for everything, a clock for time priority). It exists only so
 * the differential test and the fuzzer can hold the real engine to identical
 * output. Not for production use and not fast: do not optimise it.
 */
#ifndef TESTS_REF_BOOK_H
#define TESTS_REF_BOOK_H

#include "../../plugins/matcher/book.h"

typedef struct ref_engine ref_engine;

/* Only stp_default, max_open_orders and snapshot_levels of cfg matter. */
ref_engine *ref_engine_new(const book_config *cfg);
void ref_engine_free(ref_engine *r);
int ref_engine_add_instrument(ref_engine *r, const arb_instrument *in);
/* Fee tiers the reference reads (not copied: they outlive the engine). */
void ref_engine_set_fee_tiers(ref_engine *r, const arb_fee_tiers *tiers);
void ref_engine_process(ref_engine *r, const arb_order_cmd *cmd, book_output *out);

/* The resting orders of one side of a book in priority order (best price,
 * then oldest). Returns how many there are; writes up to max. */
size_t ref_engine_orders(const ref_engine *r, const char *venue, const char *symbol, int side,
                         book_order_view *out, size_t max);
uint32_t ref_engine_open_orders(const ref_engine *r, uint64_t account);

#endif
