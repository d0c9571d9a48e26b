/*
 * copy_rows.h -- one decoded trade or order event -> one line of PostgreSQL
 * COPY text format, in the column order of schema.h.
 *
 * Pure formatting: no I/O, no libpq, no host. Values stay exact: prices and
 * quantities are written as the integer units of the wire together with the
 * instrument's decimals, never as floating point. This file does not decide
 * what a batch is (batcher.h) nor how rows reach the database (pg_writer.h).
 */
#ifndef REC_COPY_ROWS_H
#define REC_COPY_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "arb/wire.h"

/* The most bytes one row can take, newline included. Callers reserve this
 * much before formatting; the unit tests pin that the worst case fits. */
#define REC_TRADE_ROW_MAX 384u
#define REC_ORDER_EVENT_ROW_MAX 512u

/* An instrument's scale as the recorder knows it; -1 means unknown (the
 * instrument is not in the recorder's config) and is stored as NULL. */
typedef struct rec_scale {
    int8_t price_decimals;
    int8_t qty_decimals;
} rec_scale;

/* "YYYY-MM-DD HH:MM:SS.ffffff+00" for ns since the epoch (UTC, truncated
 * to microseconds, which is what timestamptz keeps). Writes 29 bytes, no
 * terminator; returns 29. Valid for the whole int64 range. */
#define REC_TIMESTAMP_LEN 29u
size_t rec_format_timestamp(char *out, int64_t ns);

/* Each writes one full line ending in '\n' into out (at least the matching
 * *_ROW_MAX bytes) and returns its length. */
size_t rec_trade_row(char *out, const arb_trade *t, rec_scale sc);
size_t rec_order_event_row(char *out, const arb_order_event *e, rec_scale sc);

/* Names stored for enum fields; NULL where the wire value means "none". */
const char *rec_side_name(unsigned side);
const char *rec_ord_type_name(unsigned type);
const char *rec_tif_name(unsigned tif);

#endif
