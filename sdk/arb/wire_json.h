/*
 * arb/wire_json.h -- render any wire record (arb/wire.h) as one JSON object.
 *
 * For the edges that show records to people and scripts: the gateway's event
 * stream, `arbctl decode` and `arbctl tail`. The record is decoded (so it is
 * validated) and printed with snprintf; no JSON library is involved, and this
 * header never parses JSON. Ids are strings (they do not fit a JavaScript
 * number); timestamps and counts are numbers. Prices and quantities are
 * strings: exact decimals when an instrument table is given and knows the
 * record's instrument, otherwise the integer wire units. Enums are names.
 *
 *   char buf[512];
 *   int n = arb_wire_json(rec, len, &instruments, buf, sizeof buf);
 *   if (n < 0) ... not a valid record (arb_wire_error() says why)
 *   else if ((size_t)n >= sizeof buf) ... truncated: n + 1 bytes are needed
 *
 * Pure code, header-only: no I/O, no host dependency.
 */
#ifndef ARB_WIRE_JSON_H
#define ARB_WIRE_JSON_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fixed.h"
#include "instrument.h"
#include "wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An snprintf-style appender: counts what the whole text needs even after
 * the buffer is full, so the caller can size a second attempt. */
typedef struct arb__jw {
    char *out;
    size_t cap;
    size_t len;
} arb__jw;

__attribute__((format(printf, 2, 3))) static inline void arb__jw_printf(arb__jw *w, const char *fmt,
                                                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = w->len < w->cap ? w->out + w->len : NULL;
    size_t room = w->len < w->cap ? w->cap - w->len : 0;
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n;
}

/* A fixed-width text field as a JSON string. Wire text is printable ASCII
 * (the decoder checked), so only '"' and '\\' need escaping. */
static inline void arb__jw_text(arb__jw *w, const char *key, const char *field, unsigned n)
{
    char s[2 * 64 + 1];
    unsigned j = 0;
    for (unsigned i = 0; i < n && i < 64 && field[i]; i++) {
        if (field[i] == '"' || field[i] == '\\')
            s[j++] = '\\';
        s[j++] = field[i];
    }
    s[j] = 0;
    arb__jw_printf(w, "\"%s\":\"%s\"", key, s);
}

static inline void arb__jw_dec(arb__jw *w, const char *key, int64_t v, int decimals)
{
    char num[48];
    /* The bound also tells the compiler the printed width is small. */
    if (decimals >= 0 && decimals <= ARB_FIXED_MAX_DECIMALS)
        arb_dec_format(v, decimals, num, sizeof num);
    else
        snprintf(num, sizeof num, "%lld", (long long)v);
    arb__jw_printf(w, ",\"%s\":\"%s\"", key, num);
}

static inline void arb__jw_id(arb__jw *w, const char *key, uint64_t v)
{
    arb__jw_printf(w, ",\"%s\":\"%llu\"", key, (unsigned long long)v);
}

static inline void arb__jw_int(arb__jw *w, const char *key, int64_t v)
{
    arb__jw_printf(w, ",\"%s\":%lld", key, (long long)v);
}

/* The instrument of a record, or NULL: decides decimal or raw units. */
static inline const arb_instrument *arb__jw_instrument(const arb_instrument_table *t,
                                                       const char venue[ARB_VENUE_LEN],
                                                       const char symbol[ARB_SYMBOL_LEN])
{
    if (!t)
        return NULL;
    char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
    return arb_instrument_find(t, arb_fixstr(v, venue, ARB_VENUE_LEN),
                               arb_fixstr(s, symbol, ARB_SYMBOL_LEN));
}

static inline const char *arb__jw_side(unsigned s)
{
    return s == ARB_SIDE_BUY ? "buy" : s == ARB_SIDE_SELL ? "sell" : "none";
}
static inline const char *arb__jw_ord_type(unsigned t)
{
    return t == ARB_ORD_LIMIT ? "limit" : t == ARB_ORD_MARKET ? "market" : "none";
}
static inline const char *arb__jw_tif(unsigned t)
{
    static const char *const names[] = {"none", "gtc", "ioc", "fok"};
    return t <= ARB_TIF_FOK ? names[t] : "none";
}
static inline const char *arb__jw_action(unsigned a)
{
    static const char *const names[] = {"?", "new", "cancel", "replace", "snapshot"};
    return a <= ARB_CMD_ACTION_MAX ? names[a] : "?";
}
static inline const char *arb__jw_stp(unsigned s)
{
    static const char *const names[] = {"default", "cancel_resting", "cancel_incoming", "none"};
    return s <= ARB_STP_NONE ? names[s] : "default";
}
static inline const char *arb__jw_md_kind(unsigned k)
{
    static const char *const names[] = {"?", "top", "level", "snapshot"};
    return k <= ARB_MD_KIND_MAX ? names[k] : "?";
}
static inline const char *arb__jw_mev_kind(unsigned k)
{
    static const char *const names[] = {"?", "fair_value", "venue_value", "shock"};
    return k <= ARB_MEV_KIND_MAX ? names[k] : "?";
}

/* Renders the record in buf[0..len) into out (NUL-terminated when cap > 0).
 * Returns the length of the complete text, or ARB_EBADMSG if the record does
 * not decode. */
static inline int arb_wire_json(const void *buf, size_t len, const arb_instrument_table *inst,
                                char *out, size_t cap)
{
    arb__jw w = {out, cap, 0};
    if (cap > 0)
        out[0] = 0;
    switch (arb_wire_type(buf, len)) {
    case ARB_MSG_ORDER_CMD: {
        arb_order_cmd m;
        if (arb_order_cmd_decode(buf, len, &m))
            return ARB_EBADMSG;
        const arb_instrument *in = arb__jw_instrument(inst, m.venue, m.symbol);
        arb__jw_printf(&w,
                       "{\"type\":\"order_cmd\",\"action\":\"%s\",\"side\":\"%s\","
                       "\"ord_type\":\"%s\",\"tif\":\"%s\",\"post_only\":%s,\"stp\":\"%s\",",
                       arb__jw_action(m.action), arb__jw_side(m.side), arb__jw_ord_type(m.type),
                       arb__jw_tif(m.tif), (m.flags & ARB_ORDF_POST_ONLY) ? "true" : "false",
                       arb__jw_stp(m.stp));
        arb__jw_text(&w, "venue", m.venue, ARB_VENUE_LEN);
        arb__jw_printf(&w, ",");
        arb__jw_text(&w, "symbol", m.symbol, ARB_SYMBOL_LEN);
        arb__jw_id(&w, "order_id", m.order_id);
        arb__jw_id(&w, "account", m.account);
        arb__jw_dec(&w, "price", m.price, in ? in->price_decimals : -1);
        arb__jw_dec(&w, "qty", m.qty, in ? in->qty_decimals : -1);
        arb__jw_int(&w, "ts", m.ts);
        arb__jw_id(&w, "client_ref", m.client_ref);
        break;
    }
    case ARB_MSG_ORDER_EVENT: {
        arb_order_event m;
        if (arb_order_event_decode(buf, len, &m))
            return ARB_EBADMSG;
        const arb_instrument *in = arb__jw_instrument(inst, m.venue, m.symbol);
        int pd = in ? in->price_decimals : -1, qd = in ? in->qty_decimals : -1;
        arb__jw_printf(&w,
                       "{\"type\":\"order_event\",\"kind\":\"%s\",\"reason\":\"%s\","
                       "\"side\":\"%s\",\"ord_type\":\"%s\",\"tif\":\"%s\",\"post_only\":%s,",
                       arb_event_kind_name(m.kind), arb_reason_name(m.reason), arb__jw_side(m.side),
                       arb__jw_ord_type(m.type), arb__jw_tif(m.tif),
                       (m.flags & ARB_ORDF_POST_ONLY) ? "true" : "false");
        arb__jw_text(&w, "venue", m.venue, ARB_VENUE_LEN);
        arb__jw_printf(&w, ",");
        arb__jw_text(&w, "symbol", m.symbol, ARB_SYMBOL_LEN);
        arb__jw_id(&w, "order_id", m.order_id);
        arb__jw_id(&w, "account", m.account);
        arb__jw_dec(&w, "price", m.price, pd);
        arb__jw_dec(&w, "qty", m.qty, qd);
        arb__jw_dec(&w, "leaves_qty", m.leaves_qty, qd);
        arb__jw_dec(&w, "filled_qty", m.filled_qty, qd);
        arb__jw_dec(&w, "last_px", m.last_px, pd);
        arb__jw_dec(&w, "last_qty", m.last_qty, qd);
        arb__jw_id(&w, "trade_id", m.trade_id);
        arb__jw_int(&w, "ts", m.ts);
        arb__jw_id(&w, "seq", m.seq);
        arb__jw_id(&w, "client_ref", m.client_ref);
        arb__jw_dec(&w, "fee", m.fee, pd);
        arb__jw_printf(&w, ",\"liquidity\":\"%s\"",
                       m.liquidity == ARB_LIQ_MAKER   ? "maker"
                       : m.liquidity == ARB_LIQ_TAKER ? "taker"
                                                      : "none");
        break;
    }
    case ARB_MSG_TRADE: {
        arb_trade m;
        if (arb_trade_decode(buf, len, &m))
            return ARB_EBADMSG;
        const arb_instrument *in = arb__jw_instrument(inst, m.venue, m.symbol);
        arb__jw_printf(&w, "{\"type\":\"trade\",");
        arb__jw_text(&w, "venue", m.venue, ARB_VENUE_LEN);
        arb__jw_printf(&w, ",");
        arb__jw_text(&w, "symbol", m.symbol, ARB_SYMBOL_LEN);
        arb__jw_id(&w, "trade_id", m.trade_id);
        arb__jw_dec(&w, "price", m.price, in ? in->price_decimals : -1);
        arb__jw_dec(&w, "qty", m.qty, in ? in->qty_decimals : -1);
        arb__jw_id(&w, "buy_order_id", m.buy_order_id);
        arb__jw_id(&w, "sell_order_id", m.sell_order_id);
        arb__jw_id(&w, "buy_account", m.buy_account);
        arb__jw_id(&w, "sell_account", m.sell_account);
        arb__jw_int(&w, "ts", m.ts);
        arb__jw_id(&w, "seq", m.seq);
        arb__jw_printf(&w, ",\"aggressor\":\"%s\"", arb__jw_side(m.aggressor));
        arb__jw_dec(&w, "buy_fee", m.buy_fee, in ? in->price_decimals : -1);
        arb__jw_dec(&w, "sell_fee", m.sell_fee, in ? in->price_decimals : -1);
        break;
    }
    case ARB_MSG_MARKET_DATA: {
        arb_market_data m;
        if (arb_market_data_decode(buf, len, &m))
            return ARB_EBADMSG;
        const arb_instrument *in = arb__jw_instrument(inst, m.venue, m.symbol);
        int pd = in ? in->price_decimals : -1, qd = in ? in->qty_decimals : -1;
        arb__jw_printf(&w, "{\"type\":\"market_data\",\"kind\":\"%s\",", arb__jw_md_kind(m.kind));
        arb__jw_text(&w, "venue", m.venue, ARB_VENUE_LEN);
        arb__jw_printf(&w, ",");
        arb__jw_text(&w, "symbol", m.symbol, ARB_SYMBOL_LEN);
        arb__jw_id(&w, "book_seq", m.book_seq);
        arb__jw_int(&w, "ts", m.ts);
        arb__jw_dec(&w, "bid_px", m.bid_px, pd);
        arb__jw_dec(&w, "bid_qty", m.bid_qty, qd);
        arb__jw_dec(&w, "ask_px", m.ask_px, pd);
        arb__jw_dec(&w, "ask_qty", m.ask_qty, qd);
        arb__jw_printf(&w, ",\"levels\":[");
        for (uint32_t i = 0; i < m.n_levels; i++) {
            arb_md_level l;
            arb_md_get_level(&m, i, &l);
            arb__jw_printf(&w, "%s{\"side\":\"%s\",\"orders\":%u", i ? "," : "",
                           arb__jw_side(l.side), (unsigned)l.orders);
            arb__jw_dec(&w, "price", l.price, pd);
            arb__jw_dec(&w, "qty", l.qty, qd);
            arb__jw_printf(&w, "}");
        }
        arb__jw_printf(&w, "]");
        break;
    }
    case ARB_MSG_TICK: {
        arb_tick m;
        if (arb_tick_decode(buf, len, &m))
            return ARB_EBADMSG;
        arb__jw_printf(&w, "{\"type\":\"tick\",\"mode\":\"%s\"",
                       m.mode == ARB_TICK_SIM ? "sim" : "wall");
        arb__jw_id(&w, "seq", m.seq);
        arb__jw_int(&w, "sim_ns", m.sim_ns);
        arb__jw_int(&w, "wall_ns", m.wall_ns);
        arb__jw_int(&w, "speed", m.speed);
        break;
    }
    case ARB_MSG_MARKET_EVENT: {
        arb_market_event m;
        if (arb_market_event_decode(buf, len, &m))
            return ARB_EBADMSG;
        /* An empty venue means every venue: take the decimals of any venue
         * that lists the symbol. */
        const arb_instrument *in = arb__jw_instrument(inst, m.venue, m.symbol);
        if (!in && inst && !m.venue[0]) {
            char s[ARB_SYMBOL_LEN + 1];
            arb_fixstr(s, m.symbol, ARB_SYMBOL_LEN);
            for (size_t i = 0; i < inst->count && !in; i++)
                if (!strcmp(inst->items[i].symbol, s))
                    in = &inst->items[i];
        }
        int pd = in ? in->price_decimals : -1;
        arb__jw_printf(&w, "{\"type\":\"market_event\",\"kind\":\"%s\",", arb__jw_mev_kind(m.kind));
        arb__jw_text(&w, "venue", m.venue, ARB_VENUE_LEN);
        arb__jw_printf(&w, ",");
        arb__jw_text(&w, "symbol", m.symbol, ARB_SYMBOL_LEN);
        arb__jw_dec(&w, "value", m.value, pd);
        arb__jw_dec(&w, "shock", m.shock, pd);
        arb__jw_int(&w, "ts", m.ts);
        arb__jw_id(&w, "seq", m.seq);
        break;
    }
    case ARB_MSG_SERVICE: {
        arb_service m;
        if (arb_service_decode(buf, len, &m))
            return ARB_EBADMSG;
        arb__jw_printf(&w, "{\"type\":\"service\",\"status\":\"%s\",\"pid\":%u,",
                       m.status == ARB_SVC_ALIVE ? "alive" : "tombstone", (unsigned)m.pid);
        arb__jw_text(&w, "host_id", m.host_id, ARB_SVC_ID_LEN);
        arb__jw_printf(&w, ",");
        arb__jw_text(&w, "admin", m.admin, ARB_SVC_ADDR_LEN);
        arb__jw_int(&w, "started_at", m.started_at);
        arb__jw_int(&w, "ts", m.ts);
        arb__jw_printf(&w, ",\"plugins\":[");
        for (uint32_t i = 0; i < m.n_plugins; i++) {
            arb_service_plugin sp;
            arb_service_get_plugin(&m, i, &sp);
            arb__jw_printf(&w, "%s{", i ? "," : "");
            arb__jw_text(&w, "instance", sp.instance, ARB_SVC_NAME_LEN);
            arb__jw_printf(&w, ",");
            arb__jw_text(&w, "plugin", sp.plugin, ARB_SVC_NAME_LEN);
            arb__jw_printf(&w, ",");
            arb__jw_text(&w, "version", sp.version, ARB_SVC_VER_LEN);
            if (sp.build_id[0]) {
                arb__jw_printf(&w, ",");
                arb__jw_text(&w, "build_id", sp.build_id, ARB_SVC_BUILD_LEN);
            }
            arb__jw_printf(&w, "}");
        }
        arb__jw_printf(&w, "]");
        break;
    }
    default: *arb__wire_err_slot() = "not a wire record (bad header or type)"; return ARB_EBADMSG;
    }
    arb__jw_printf(&w, "}");
    return w.len > (size_t)INT32_MAX ? ARB_EBADMSG : (int)w.len;
}

#ifdef __cplusplus
}
#endif
#endif /* ARB_WIRE_JSON_H */
