/*
 * copy_rows.c -- COPY text rows for trades and order events (see
 * copy_rows.h). Hand-rolled integer formatting because this runs once per
 * recorded row on the hot path and snprintf dominates otherwise.
 *
 * COPY text format: columns separated by a tab, rows ended by '\n', NULL
 * written as \N, and a backslash, tab, newline or carriage return inside a
 * value escaped with a backslash. Wire text fields are printable ASCII, so
 * only the backslash can occur, but the escaper handles all four anyway.
 */
#include "copy_rows.h"

#include <string.h>

static size_t put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t put_i64(char *out, int64_t v)
{
    if (v >= 0)
        return put_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + put_u64(out + 1, 0 - (uint64_t)v);
}

/* Trade ids and accounts are unsigned on the wire and bigint in the
 * database: the same 64 bits (they stay below 2^63 in practice). Order ids
 * are numeric(20,0) (migration 7) and written unsigned, as the API shows them. */
static size_t put_id(char *out, uint64_t v) { return put_i64(out, (int64_t)v); }
static size_t put_order_id(char *out, uint64_t v) { return put_u64(out, v); }

static size_t put_null(char *out)
{
    out[0] = '\\';
    out[1] = 'N';
    return 2;
}

/* A fixed-width wire text field (NUL padded), escaped; empty becomes NULL. */
static size_t put_text_field(char *out, const char *field, unsigned width)
{
    size_t n = 0;
    for (unsigned i = 0; i < width && field[i]; i++) {
        char ch = field[i];
        switch (ch) {
        case '\\': out[n++] = '\\', out[n++] = '\\'; break;
        case '\t': out[n++] = '\\', out[n++] = 't'; break;
        case '\n': out[n++] = '\\', out[n++] = 'n'; break;
        case '\r': out[n++] = '\\', out[n++] = 'r'; break;
        default: out[n++] = ch;
        }
    }
    return n ? n : put_null(out);
}

static size_t put_cstr(char *out, const char *s)
{
    if (!s)
        return put_null(out);
    size_t n = strlen(s);
    memcpy(out, s, n);
    return n;
}

static size_t put_decimals(char *out, int8_t d)
{
    return d < 0 ? put_null(out) : put_u64(out, (uint64_t)d);
}

static void put2(char *out, unsigned v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm): exact
 * integer arithmetic over the proleptic Gregorian calendar. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t rec_format_timestamp(char *out, int64_t ns)
{
    /* Floor division so that times before 1970 keep a non-negative
     * microsecond and second of day. */
    int64_t us = ns / 1000 - (ns % 1000 < 0);
    int64_t secs = us / 1000000 - (us % 1000000 < 0);
    unsigned frac = (unsigned)(us - secs * 1000000);
    int64_t days = secs / 86400 - (secs % 86400 < 0);
    unsigned sod = (unsigned)(secs - days * 86400);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    /* int64 ns spans the years 1677..2262: always four digits. */
    unsigned yy = (unsigned)y;
    out[0] = (char)('0' + yy / 1000);
    out[1] = (char)('0' + yy / 100 % 10);
    out[2] = (char)('0' + yy / 10 % 10);
    out[3] = (char)('0' + yy % 10);
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = ' ';
    put2(out + 11, sod / 3600);
    out[13] = ':';
    put2(out + 14, sod / 60 % 60);
    out[16] = ':';
    put2(out + 17, sod % 60);
    out[19] = '.';
    for (int i = 25; i >= 20; i--) {
        out[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    memcpy(out + 26, "+00", 3);
    return REC_TIMESTAMP_LEN;
}

const char *rec_side_name(unsigned side)
{
    return side == ARB_SIDE_BUY ? "buy" : side == ARB_SIDE_SELL ? "sell" : NULL;
}

const char *rec_ord_type_name(unsigned type)
{
    return type == ARB_ORD_LIMIT ? "limit" : type == ARB_ORD_MARKET ? "market" : NULL;
}

const char *rec_tif_name(unsigned tif)
{
    switch (tif) {
    case ARB_TIF_GTC: return "gtc";
    case ARB_TIF_IOC: return "ioc";
    case ARB_TIF_FOK: return "fok";
    default: return NULL;
    }
}

#define TAB(p) (*(p)++ = '\t')

size_t rec_trade_row(char *out, const arb_trade *t, rec_scale sc)
{
    char *p = out;
    p += put_id(p, t->trade_id), TAB(p);
    p += put_text_field(p, t->venue, ARB_VENUE_LEN), TAB(p);
    p += put_text_field(p, t->symbol, ARB_SYMBOL_LEN), TAB(p);
    p += rec_format_timestamp(p, t->ts), TAB(p);
    p += put_i64(p, t->ts), TAB(p);
    p += put_i64(p, t->price), TAB(p);
    p += put_i64(p, t->qty), TAB(p);
    p += put_decimals(p, sc.price_decimals), TAB(p);
    p += put_decimals(p, sc.qty_decimals), TAB(p);
    p += put_cstr(p, rec_side_name(t->aggressor)), TAB(p);
    p += put_order_id(p, t->buy_order_id), TAB(p);
    p += put_order_id(p, t->sell_order_id), TAB(p);
    p += put_id(p, t->buy_account), TAB(p);
    p += put_id(p, t->sell_account), TAB(p);
    p += put_id(p, t->seq), TAB(p);
    p += put_i64(p, t->buy_fee), TAB(p);
    p += put_i64(p, t->sell_fee);
    *p++ = '\n';
    return (size_t)(p - out);
}

size_t rec_order_event_row(char *out, const arb_order_event *e, rec_scale sc)
{
    char *p = out;
    p += put_order_id(p, e->order_id), TAB(p);
    p += put_id(p, e->seq), TAB(p);
    p += put_text_field(p, e->venue, ARB_VENUE_LEN), TAB(p);
    p += put_text_field(p, e->symbol, ARB_SYMBOL_LEN), TAB(p);
    p += put_id(p, e->account), TAB(p);
    p += rec_format_timestamp(p, e->ts), TAB(p);
    p += put_i64(p, e->ts), TAB(p);
    p += put_cstr(p, arb_event_kind_name(e->kind)), TAB(p);
    p += put_cstr(p, e->reason ? arb_reason_name(e->reason) : NULL), TAB(p);
    p += put_cstr(p, rec_side_name(e->side)), TAB(p);
    p += put_cstr(p, rec_ord_type_name(e->type)), TAB(p);
    p += put_cstr(p, rec_tif_name(e->tif)), TAB(p);
    *p++ = (e->flags & ARB_ORDF_POST_ONLY) ? 't' : 'f', TAB(p);
    p += put_i64(p, e->price), TAB(p);
    p += put_i64(p, e->qty), TAB(p);
    p += put_i64(p, e->leaves_qty), TAB(p);
    p += put_i64(p, e->filled_qty), TAB(p);
    p += put_i64(p, e->last_px), TAB(p);
    p += put_i64(p, e->last_qty), TAB(p);
    p += put_decimals(p, sc.price_decimals), TAB(p);
    p += put_decimals(p, sc.qty_decimals), TAB(p);
    p += e->trade_id ? put_id(p, e->trade_id) : put_null(p), TAB(p);
    p += put_id(p, e->client_ref), TAB(p);
    p += put_i64(p, e->fee), TAB(p);
    p += put_cstr(p, e->liquidity == ARB_LIQ_MAKER   ? "maker"
                     : e->liquidity == ARB_LIQ_TAKER ? "taker"
                                                     : NULL);
    *p++ = '\n';
    return (size_t)(p - out);
}
