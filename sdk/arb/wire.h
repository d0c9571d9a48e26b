/*
 * arb/wire.h -- the binary records that travel on the seven topics.
 *
 * Every record is a fixed-layout, little-endian byte string: an 8-byte header
 *   u16 type | u16 version | u32 length (whole record, header included)
 * then the body at fixed offsets (SBE-like). The same bytes travel through the
 * in-process bus and as Kafka values, so a record can be replayed anywhere.
 * Records with a repeating group (market data levels, registry plugins) carry
 * the count in the fixed part and the entries after it.
 *
 * Encoders write into a caller buffer and return the record length (0 if the
 * buffer is too small). Decoders never trust the bytes: they check length,
 * type, version, enum ranges and string padding, and return ARB_OK or
 * ARB_EBADMSG with a reason through arb_wire_error(). Semantic checks (is the
 * quantity positive, is the price on tick) belong to the consumer, which can
 * answer with a reason code. Pure code: no I/O, no host dependency.
 */
#ifndef ARB_WIRE_H
#define ARB_WIRE_H

#include <stdint.h>
#include <string.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARB_WIRE_HDR 8u
#define ARB_VENUE_LEN 8u
#define ARB_SYMBOL_LEN 16u

enum arb_msg_type {
    ARB_MSG_ORDER_CMD = 1,
    ARB_MSG_ORDER_EVENT = 2,
    ARB_MSG_TRADE = 3,
    ARB_MSG_MARKET_DATA = 4,
    ARB_MSG_TICK = 5,
    ARB_MSG_MARKET_EVENT = 6,
    ARB_MSG_SERVICE = 7,
    ARB_MSG_TYPE_MAX = 7,
};

/* Current version of each record type that has not moved on its own:
 * order_events and trade_executed are at version 2 (fees), service_registry
 * at version 2 (build ids). A decoder reads every older version. */
#define ARB_WIRE_VERSION 1u
#define ARB_ORDER_EVENT_VERSION 2u
#define ARB_TRADE_VERSION 2u

enum arb_side { ARB_SIDE_NONE = 0, ARB_SIDE_BUY = 1, ARB_SIDE_SELL = 2 };
enum arb_ord_type { ARB_ORD_NONE = 0, ARB_ORD_LIMIT = 1, ARB_ORD_MARKET = 2 };
enum arb_tif { ARB_TIF_NONE = 0, ARB_TIF_GTC = 1, ARB_TIF_IOC = 2, ARB_TIF_FOK = 3 };
enum arb_ord_flags { ARB_ORDF_POST_ONLY = 1u };
/* An order event's flags are its order's (ARB_ORDF_*) plus this one: the
 * last event the matcher produced for this order in answer to one command
 * (after it, the order's state is final until another command or a fill
 * against it). Whoever answers a command waits for it, because a transport
 * may hand one command's events over in more than one delivery. Records
 * written before it existed never carry it. */
#define ARB_EVF_LAST 0x80u
enum arb_stp {
    ARB_STP_DEFAULT = 0, /* the matcher's configured policy */
    ARB_STP_CANCEL_RESTING = 1,
    ARB_STP_CANCEL_INCOMING = 2,
    ARB_STP_NONE = 3, /* allow self trades */
};

enum arb_cmd_action {
    ARB_CMD_NEW = 1,
    ARB_CMD_CANCEL = 2,
    ARB_CMD_REPLACE = 3,  /* price and qty are the new values */
    ARB_CMD_SNAPSHOT = 4, /* ask for a full depth snapshot on market_data */
    ARB_CMD_ACTION_MAX = 4,
};

enum arb_event_kind {
    ARB_EV_ACCEPTED = 1,
    ARB_EV_REJECTED = 2,
    ARB_EV_PARTIAL = 3,
    ARB_EV_FILLED = 4,
    ARB_EV_CANCELLED = 5,
    ARB_EV_REPLACED = 6,
    ARB_EV_EXPIRED = 7, /* IOC/market remainder, FOK not fillable */
    ARB_EV_KIND_MAX = 7,
};

/* Why an order was rejected, cancelled or expired. Stable: numbers never move. */
enum arb_reason {
    ARB_R_NONE = 0,
    ARB_R_UNKNOWN_INSTRUMENT = 1,
    ARB_R_PRICE_OFF_TICK = 2,
    ARB_R_BAD_QUANTITY = 3, /* zero or negative */
    ARB_R_QTY_OFF_LOT = 4,
    ARB_R_QTY_BELOW_MIN = 5,
    ARB_R_QTY_ABOVE_MAX = 6,
    ARB_R_PRICE_BAND = 7,
    ARB_R_UNKNOWN_ORDER = 8,
    ARB_R_NOT_OWNER = 9,
    ARB_R_POST_ONLY_WOULD_TAKE = 10,
    ARB_R_FOK_NOT_FILLABLE = 11,
    ARB_R_MAX_OPEN_ORDERS = 12,
    ARB_R_SELF_TRADE = 13,
    ARB_R_DUPLICATE_ORDER_ID = 14,
    ARB_R_BAD_FIELD = 15, /* side/type/tif combination not allowed */
    ARB_R_USER_CANCEL = 16,
    ARB_R_NO_LIQUIDITY = 17, /* IOC/market remainder with nothing to take */
    ARB_R_BAD_PRICE = 18,    /* zero or negative limit price */
    ARB_R_REASON_MAX = 18,
};

enum arb_md_kind { ARB_MD_TOP = 1, ARB_MD_LEVEL = 2, ARB_MD_SNAPSHOT = 3, ARB_MD_KIND_MAX = 3 };
enum arb_tick_mode { ARB_TICK_WALL = 1, ARB_TICK_SIM = 2 };
enum arb_mev_kind {
    ARB_MEV_FAIR_VALUE = 1,  /* an asset's fair value moved */
    ARB_MEV_VENUE_VALUE = 2, /* what one venue sees: lagged, noisy */
    ARB_MEV_SHOCK = 3,       /* news: a jump */
    ARB_MEV_KIND_MAX = 3,
};
enum arb_service_status { ARB_SVC_ALIVE = 1, ARB_SVC_TOMBSTONE = 2 };
/* Which side of a fill an order was on (order event version 2). */
enum arb_liquidity { ARB_LIQ_NONE = 0, ARB_LIQ_MAKER = 1, ARB_LIQ_TAKER = 2 };

/* order_commands */
typedef struct arb_order_cmd {
    uint8_t action, side, type, tif, flags, stp;
    char venue[ARB_VENUE_LEN];
    char symbol[ARB_SYMBOL_LEN];
    uint64_t order_id;
    uint64_t account;
    int64_t price; /* ticks; for market orders the protection price */
    int64_t qty;   /* lots */
    int64_t ts;
    uint64_t client_ref; /* opaque to the matcher, echoed in events */
} arb_order_cmd;
#define ARB_ORDER_CMD_LEN (ARB_WIRE_HDR + 80u)

/* order_events. Version 2 adds the fill's fee and liquidity: fee is what
 * this order's account paid on this fill in price units of the instrument
 * (the smallest unit of the quote currency), negative for a rebate, 0 on
 * events that are not fills and on every version 1 record. */
typedef struct arb_order_event {
    uint8_t kind, reason, side, type, tif, flags;
    char venue[ARB_VENUE_LEN];
    char symbol[ARB_SYMBOL_LEN];
    uint64_t order_id;
    uint64_t account;
    int64_t price;      /* the order's limit price */
    int64_t qty;        /* the order's total quantity */
    int64_t leaves_qty; /* still open */
    int64_t filled_qty; /* cumulative */
    int64_t last_px;    /* this fill, if any */
    int64_t last_qty;
    uint64_t trade_id;
    int64_t ts;
    uint64_t seq; /* matcher output sequence */
    uint64_t client_ref;
    int64_t fee;       /* version 2: price units, negative = rebate */
    uint8_t liquidity; /* version 2: enum arb_liquidity of this fill */
} arb_order_event;
#define ARB_ORDER_EVENT_LEN_V1 (ARB_WIRE_HDR + 128u)
#define ARB_ORDER_EVENT_LEN (ARB_WIRE_HDR + 136u)

/* trade_executed. Version 2 adds both sides' fees (price units, negative
 * = rebate; 0 in a version 1 record). */
typedef struct arb_trade {
    char venue[ARB_VENUE_LEN];
    char symbol[ARB_SYMBOL_LEN];
    uint64_t trade_id;
    int64_t price;
    int64_t qty;
    uint64_t buy_order_id;
    uint64_t sell_order_id;
    uint64_t buy_account;
    uint64_t sell_account;
    int64_t ts;
    uint64_t seq; /* per-book sequence */
    uint8_t aggressor;
    int64_t buy_fee, sell_fee; /* version 2 */
} arb_trade;
#define ARB_TRADE_LEN_V1 (ARB_WIRE_HDR + 104u)
#define ARB_TRADE_LEN (ARB_WIRE_HDR + 120u)

/* market_data: fixed part, then n_levels entries of ARB_MD_LEVEL_LEN bytes */
typedef struct arb_md_level {
    uint8_t side;
    uint32_t orders;
    int64_t price;
    int64_t qty; /* 0: the level is gone */
} arb_md_level;
typedef struct arb_market_data {
    uint8_t kind;
    uint32_t n_levels;
    char venue[ARB_VENUE_LEN];
    char symbol[ARB_SYMBOL_LEN];
    uint64_t book_seq;
    int64_t ts;
    int64_t bid_px, bid_qty; /* bid_qty 0: no bid */
    int64_t ask_px, ask_qty; /* ask_qty 0: no ask */
    const uint8_t *levels;   /* decode: points into the record */
} arb_market_data;
#define ARB_MD_FIXED_LEN (ARB_WIRE_HDR + 80u)
#define ARB_MD_LEVEL_LEN 24u
#define ARB_MD_MAX_LEVELS 4096u
#define ARB_MD_LEN(n) (ARB_MD_FIXED_LEN + (uint32_t)(n)*ARB_MD_LEVEL_LEN)

/* system_ticks */
typedef struct arb_tick {
    uint64_t seq;
    int64_t sim_ns;
    int64_t wall_ns;
    uint32_t speed; /* N x real time; 0: as fast as possible */
    uint8_t mode;
} arb_tick;
#define ARB_TICK_LEN (ARB_WIRE_HDR + 32u)

/* market_events */
typedef struct arb_market_event {
    uint8_t kind;
    char venue[ARB_VENUE_LEN]; /* empty: every venue */
    char symbol[ARB_SYMBOL_LEN];
    int64_t value; /* ticks */
    int64_t shock; /* ticks, signed; SHOCK only */
    int64_t ts;
    uint64_t seq;
} arb_market_event;
#define ARB_MARKET_EVENT_LEN (ARB_WIRE_HDR + 64u)

/* service_registry: fixed part, then n_plugins entries. Record version 2
 * adds each plugin image's build id (a GNU build id in hex, or
 * "sha256:" and the file's digest); version 3 each instance's account (its
 * [plugin NAME] account, 0 for none), so a gateway in another process
 * names the agents on its board, and its configuration's digest (FNV-1a 64
 * of its [plugin NAME] section and the host's market sections: every
 * section but [host], [bus], [kafka*] and the other plugins'), so two runs
 * can be told to trade the same market. Older records (journals and Kafka
 * logs written before) are still read, with an empty build id, account 0
 * and config digest 0 (unknown). */
#define ARB_SVC_ID_LEN 32u
#define ARB_SVC_ADDR_LEN 64u
#define ARB_SVC_NAME_LEN 32u
#define ARB_SVC_VER_LEN 16u
#define ARB_SVC_BUILD_LEN 72u
#define ARB_SERVICE_VERSION 3u
typedef struct arb_service_plugin {
    char instance[ARB_SVC_NAME_LEN];
    char plugin[ARB_SVC_NAME_LEN];
    char version[ARB_SVC_VER_LEN];
    char build_id[ARB_SVC_BUILD_LEN]; /* all zero in a version 1 record */
    uint64_t account;                 /* 0: none, or a version 1-2 record */
    uint64_t config_digest;           /* 0: unknown (a version 1-2 record) */
} arb_service_plugin;
typedef struct arb_service {
    uint8_t version; /* record version; encode: 0 means ARB_SERVICE_VERSION */
    uint8_t status;
    uint16_t n_plugins;
    uint32_t pid;
    char host_id[ARB_SVC_ID_LEN];
    char admin[ARB_SVC_ADDR_LEN];
    int64_t started_at;
    int64_t ts;
    const uint8_t *plugins; /* decode: points into the record */
} arb_service;
#define ARB_SERVICE_FIXED_LEN (ARB_WIRE_HDR + 120u)
#define ARB_SERVICE_PLUGIN_LEN_V1 80u
#define ARB_SERVICE_PLUGIN_LEN_V2 (ARB_SERVICE_PLUGIN_LEN_V1 + ARB_SVC_BUILD_LEN)
#define ARB_SERVICE_PLUGIN_LEN (ARB_SERVICE_PLUGIN_LEN_V2 + 16u)
/* One plugin entry's length in a record of version v. */
#define ARB_SERVICE_PLUGIN_LEN_OF(v)        \
    ((v) == 1   ? ARB_SERVICE_PLUGIN_LEN_V1 \
     : (v) == 2 ? ARB_SERVICE_PLUGIN_LEN_V2 \
                : ARB_SERVICE_PLUGIN_LEN)
#define ARB_SERVICE_MAX_PLUGINS 256u
#define ARB_SERVICE_LEN(n) (ARB_SERVICE_FIXED_LEN + (uint32_t)(n)*ARB_SERVICE_PLUGIN_LEN)
#define ARB_SERVICE_LEN_V(v, n) (ARB_SERVICE_FIXED_LEN + (uint32_t)(n)*ARB_SERVICE_PLUGIN_LEN_OF(v))

/* Largest record on any topic, for stack buffers. */
#define ARB_WIRE_MAX ARB_MD_LEN(ARB_MD_MAX_LEVELS)

/* ---- little-endian primitives ---- */

static inline void arb_put_u8(uint8_t *p, uint8_t v) { *p = v; }
static inline void arb_put_u16(uint8_t *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    memcpy(p, &v, 2);
}
static inline void arb_put_u32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(p, &v, 4);
}
static inline void arb_put_u64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}
static inline void arb_put_i64(uint8_t *p, int64_t v) { arb_put_u64(p, (uint64_t)v); }
static inline uint16_t arb_get_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    return v;
}
static inline uint32_t arb_get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    return v;
}
static inline uint64_t arb_get_u64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}
static inline int64_t arb_get_i64(const uint8_t *p) { return (int64_t)arb_get_u64(p); }

/* ---- header and validation helpers ---- */

/* The reason the last decode on this thread failed (static string). */
static inline const char **arb__wire_err_slot(void)
{
    static _Thread_local const char *err;
    return &err;
}
static inline const char *arb_wire_error(void) { return *arb__wire_err_slot(); }
static inline int arb__wire_fail(const char *why)
{
    *arb__wire_err_slot() = why;
    return ARB_EBADMSG;
}

static inline void arb_wire_put_hdr(uint8_t *p, uint16_t type, uint32_t len)
{
    arb_put_u16(p, type);
    arb_put_u16(p + 2, ARB_WIRE_VERSION);
    arb_put_u32(p + 4, len);
}

/* Type of a record, or 0 if the header itself is malformed. */
static inline unsigned arb_wire_type(const void *buf, size_t len)
{
    const uint8_t *p = (const uint8_t *)buf;
    if (len < ARB_WIRE_HDR || arb_get_u32(p + 4) != len)
        return 0;
    unsigned t = arb_get_u16(p);
    return t >= 1 && t <= ARB_MSG_TYPE_MAX ? t : 0;
}

/* A header of `type` at a version from 1 to max_version. */
static inline int arb__wire_check_hdr_v(const uint8_t *p, size_t len, uint16_t type, size_t min,
                                        unsigned max_version)
{
    if (len < ARB_WIRE_HDR)
        return arb__wire_fail("shorter than the header");
    if (arb_get_u16(p) != type)
        return arb__wire_fail("wrong record type");
    if (arb_get_u16(p + 2) < 1 || arb_get_u16(p + 2) > max_version)
        return arb__wire_fail("unsupported version");
    if (arb_get_u32(p + 4) != len)
        return arb__wire_fail("length field does not match the record");
    if (len < min)
        return arb__wire_fail("record too short for its type");
    return ARB_OK;
}

static inline int arb__wire_check_hdr(const uint8_t *p, size_t len, uint16_t type, size_t min)
{
    return arb__wire_check_hdr_v(p, len, type, min, ARB_WIRE_VERSION);
}

/* A fixed text field: printable ASCII, then only NUL padding. `required`
 * demands at least one character. Copies into out (no terminator added:
 * fields are fixed width; use arb_fixstr to print). */
static inline int arb__wire_get_text(const uint8_t *p, unsigned n, char *out, int required)
{
    unsigned i = 0;
    if (n % 8 == 0) {
        /* Eight bytes at a time (venue and symbol are 8 and 16 wide, and
         * every record names one): the same answers, and the same errors,
         * as the byte loop below. The text runs to the first NUL and its
         * bytes lie in 0x21..0x7e; what follows is NUL. */
        const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
        uint64_t pad = 0;
        for (unsigned w = 0; w < n; w += 8) {
            uint64_t x = arb_get_u64(p + w);
            if (i < w) { /* the text ended in an earlier word */
                pad |= x;
                continue;
            }
            /* The lowest flagged byte is the first NUL (no borrow reaches
             * it from below); k bytes of text precede it in this word. */
            uint64_t nul = (x - ones) & ~x & high;
            unsigned k = nul ? (unsigned)__builtin_ctzll(nul) / 8 : 8;
            uint64_t text = k == 8 ? ~0ull : (1ull << (8 * k)) - 1;
            /* The text bytes, the others made 'A': any byte below 0x21,
             * any above 0x7e. */
            uint64_t t = (x & text) | (0x4141414141414141ull & ~text);
            if ((((t - 0x21 * ones) & ~t) | (t + ones) | t) & high)
                return arb__wire_fail("text field has a non-printable character");
            i = w + k;
            pad |= x & ~text;
        }
        if (required && i == 0)
            return arb__wire_fail("required text field is empty");
        if (pad)
            return arb__wire_fail("text field padding is not zero");
        memcpy(out, p, n);
        return ARB_OK;
    }
    while (i < n && p[i] != 0) {
        if (p[i] < 0x21 || p[i] > 0x7e)
            return arb__wire_fail("text field has a non-printable character");
        i++;
    }
    if (required && i == 0)
        return arb__wire_fail("required text field is empty");
    for (unsigned j = i; j < n; j++)
        if (p[j] != 0)
            return arb__wire_fail("text field padding is not zero");
    memcpy(out, p, n);
    return ARB_OK;
}

static inline void arb__wire_put_text(uint8_t *p, const char *s, unsigned n)
{
    unsigned i = 0;
    for (; i < n && s[i]; i++)
        p[i] = (uint8_t)s[i];
    for (; i < n; i++)
        p[i] = 0;
}

/* Set a fixed-width text field from a C string; returns ARB_EINVAL if the
 * string does not fit or has a character the wire does not allow. */
static inline int arb_fixstr_set(char *field, unsigned n, const char *s)
{
    size_t l = strlen(s);
    if (l > n)
        return ARB_EINVAL;
    for (size_t i = 0; i < l; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return ARB_EINVAL;
    memset(field, 0, n);
    memcpy(field, s, l);
    return ARB_OK;
}

/* Copy a fixed-width field into a NUL-terminated buffer of n+1 bytes. */
static inline const char *arb_fixstr(char *dst, const char *field, unsigned n)
{
    memcpy(dst, field, n);
    dst[n] = 0;
    return dst;
}

/* FNV-1a over venue and symbol: the bus/Kafka key of an instrument. */
static inline uint64_t arb_instrument_key(const char venue[ARB_VENUE_LEN],
                                          const char symbol[ARB_SYMBOL_LEN])
{
    uint64_t h = 1469598103934665603ull;
    for (unsigned i = 0; i < ARB_VENUE_LEN; i++)
        h = (h ^ (uint8_t)venue[i]) * 1099511628211ull;
    for (unsigned i = 0; i < ARB_SYMBOL_LEN; i++)
        h = (h ^ (uint8_t)symbol[i]) * 1099511628211ull;
    return h;
}

/* ---- order_commands ---- */

static inline uint32_t arb_order_cmd_encode(const arb_order_cmd *m, void *buf, size_t cap)
{
    if (cap < ARB_ORDER_CMD_LEN)
        return 0;
    uint8_t *p = (uint8_t *)buf;
    arb_wire_put_hdr(p, ARB_MSG_ORDER_CMD, ARB_ORDER_CMD_LEN);
    p += ARB_WIRE_HDR;
    p[0] = m->action, p[1] = m->side, p[2] = m->type, p[3] = m->tif, p[4] = m->flags, p[5] = m->stp,
    p[6] = 0, p[7] = 0;
    arb__wire_put_text(p + 8, m->venue, ARB_VENUE_LEN);
    arb__wire_put_text(p + 16, m->symbol, ARB_SYMBOL_LEN);
    arb_put_u64(p + 32, m->order_id);
    arb_put_u64(p + 40, m->account);
    arb_put_i64(p + 48, m->price);
    arb_put_i64(p + 56, m->qty);
    arb_put_i64(p + 64, m->ts);
    arb_put_u64(p + 72, m->client_ref);
    return ARB_ORDER_CMD_LEN;
}

static inline int arb_order_cmd_decode(const void *buf, size_t len, arb_order_cmd *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = arb__wire_check_hdr(p, len, ARB_MSG_ORDER_CMD, ARB_ORDER_CMD_LEN);
    if (rc)
        return rc;
    if (len != ARB_ORDER_CMD_LEN)
        return arb__wire_fail("order command has the wrong length");
    p += ARB_WIRE_HDR;
    m->action = p[0], m->side = p[1], m->type = p[2], m->tif = p[3], m->flags = p[4], m->stp = p[5];
    if (m->action < 1 || m->action > ARB_CMD_ACTION_MAX)
        return arb__wire_fail("order command action out of range");
    if (m->side > ARB_SIDE_SELL || m->type > ARB_ORD_MARKET || m->tif > ARB_TIF_FOK ||
        m->stp > ARB_STP_NONE || (m->flags & ~ARB_ORDF_POST_ONLY) || p[6] || p[7])
        return arb__wire_fail("order command enum out of range");
    if (m->action == ARB_CMD_NEW && (!m->side || !m->type || !m->tif))
        return arb__wire_fail("new order needs side, type and time in force");
    if ((rc = arb__wire_get_text(p + 8, ARB_VENUE_LEN, m->venue, 1)) ||
        (rc = arb__wire_get_text(p + 16, ARB_SYMBOL_LEN, m->symbol, 1)))
        return rc;
    m->order_id = arb_get_u64(p + 32);
    m->account = arb_get_u64(p + 40);
    m->price = arb_get_i64(p + 48);
    m->qty = arb_get_i64(p + 56);
    m->ts = arb_get_i64(p + 64);
    m->client_ref = arb_get_u64(p + 72);
    return ARB_OK;
}

/* ---- order_events ---- */

static inline uint32_t arb_order_event_encode(const arb_order_event *m, void *buf, size_t cap)
{
    if (cap < ARB_ORDER_EVENT_LEN)
        return 0;
    uint8_t *p = (uint8_t *)buf;
    arb_wire_put_hdr(p, ARB_MSG_ORDER_EVENT, ARB_ORDER_EVENT_LEN);
    arb_put_u16(p + 2, ARB_ORDER_EVENT_VERSION);
    p += ARB_WIRE_HDR;
    p[0] = m->kind, p[1] = m->reason, p[2] = m->side, p[3] = m->type, p[4] = m->tif,
    p[5] = m->flags, p[6] = m->liquidity, p[7] = 0;
    arb__wire_put_text(p + 8, m->venue, ARB_VENUE_LEN);
    arb__wire_put_text(p + 16, m->symbol, ARB_SYMBOL_LEN);
    arb_put_u64(p + 32, m->order_id);
    arb_put_u64(p + 40, m->account);
    arb_put_i64(p + 48, m->price);
    arb_put_i64(p + 56, m->qty);
    arb_put_i64(p + 64, m->leaves_qty);
    arb_put_i64(p + 72, m->filled_qty);
    arb_put_i64(p + 80, m->last_px);
    arb_put_i64(p + 88, m->last_qty);
    arb_put_u64(p + 96, m->trade_id);
    arb_put_i64(p + 104, m->ts);
    arb_put_u64(p + 112, m->seq);
    arb_put_u64(p + 120, m->client_ref);
    arb_put_i64(p + 128, m->fee);
    return ARB_ORDER_EVENT_LEN;
}

static inline int arb_order_event_decode(const void *buf, size_t len, arb_order_event *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = arb__wire_check_hdr_v(p, len, ARB_MSG_ORDER_EVENT, ARB_ORDER_EVENT_LEN_V1,
                                   ARB_ORDER_EVENT_VERSION);
    if (rc)
        return rc;
    unsigned v = arb_get_u16(p + 2);
    if (len != (v == 1 ? ARB_ORDER_EVENT_LEN_V1 : ARB_ORDER_EVENT_LEN))
        return arb__wire_fail("order event has the wrong length");
    p += ARB_WIRE_HDR;
    m->kind = p[0], m->reason = p[1], m->side = p[2], m->type = p[3], m->tif = p[4],
    m->flags = p[5], m->liquidity = p[6];
    if (m->kind < 1 || m->kind > ARB_EV_KIND_MAX || m->reason > ARB_R_REASON_MAX ||
        m->side > ARB_SIDE_SELL || m->type > ARB_ORD_MARKET || m->tif > ARB_TIF_FOK ||
        (m->flags & ~(ARB_ORDF_POST_ONLY | ARB_EVF_LAST)) || m->liquidity > ARB_LIQ_TAKER || p[7])
        return arb__wire_fail("order event enum out of range");
    /* A reject of an unknown instrument still names what was asked for, but
     * the venue may be empty if the command itself was unreadable. */
    if ((rc = arb__wire_get_text(p + 8, ARB_VENUE_LEN, m->venue, 0)) ||
        (rc = arb__wire_get_text(p + 16, ARB_SYMBOL_LEN, m->symbol, 0)))
        return rc;
    m->order_id = arb_get_u64(p + 32);
    m->account = arb_get_u64(p + 40);
    m->price = arb_get_i64(p + 48);
    m->qty = arb_get_i64(p + 56);
    m->leaves_qty = arb_get_i64(p + 64);
    m->filled_qty = arb_get_i64(p + 72);
    m->last_px = arb_get_i64(p + 80);
    m->last_qty = arb_get_i64(p + 88);
    m->trade_id = arb_get_u64(p + 96);
    m->ts = arb_get_i64(p + 104);
    m->seq = arb_get_u64(p + 112);
    m->client_ref = arb_get_u64(p + 120);
    m->fee = v == 1 ? 0 : arb_get_i64(p + 128);
    if (m->fee && !m->liquidity)
        return arb__wire_fail("order event has a fee but no fill liquidity");
    return ARB_OK;
}

/* ---- trade_executed ---- */

static inline uint32_t arb_trade_encode(const arb_trade *m, void *buf, size_t cap)
{
    if (cap < ARB_TRADE_LEN)
        return 0;
    uint8_t *p = (uint8_t *)buf;
    arb_wire_put_hdr(p, ARB_MSG_TRADE, ARB_TRADE_LEN);
    arb_put_u16(p + 2, ARB_TRADE_VERSION);
    p += ARB_WIRE_HDR;
    arb__wire_put_text(p, m->venue, ARB_VENUE_LEN);
    arb__wire_put_text(p + 8, m->symbol, ARB_SYMBOL_LEN);
    arb_put_u64(p + 24, m->trade_id);
    arb_put_i64(p + 32, m->price);
    arb_put_i64(p + 40, m->qty);
    arb_put_u64(p + 48, m->buy_order_id);
    arb_put_u64(p + 56, m->sell_order_id);
    arb_put_u64(p + 64, m->buy_account);
    arb_put_u64(p + 72, m->sell_account);
    arb_put_i64(p + 80, m->ts);
    arb_put_u64(p + 88, m->seq);
    p[96] = m->aggressor;
    memset(p + 97, 0, 7);
    arb_put_i64(p + 104, m->buy_fee);
    arb_put_i64(p + 112, m->sell_fee);
    return ARB_TRADE_LEN;
}

static inline int arb_trade_decode(const void *buf, size_t len, arb_trade *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = arb__wire_check_hdr_v(p, len, ARB_MSG_TRADE, ARB_TRADE_LEN_V1, ARB_TRADE_VERSION);
    if (rc)
        return rc;
    unsigned v = arb_get_u16(p + 2);
    if (len != (v == 1 ? ARB_TRADE_LEN_V1 : ARB_TRADE_LEN))
        return arb__wire_fail("trade has the wrong length");
    p += ARB_WIRE_HDR;
    if ((rc = arb__wire_get_text(p, ARB_VENUE_LEN, m->venue, 1)) ||
        (rc = arb__wire_get_text(p + 8, ARB_SYMBOL_LEN, m->symbol, 1)))
        return rc;
    m->trade_id = arb_get_u64(p + 24);
    m->price = arb_get_i64(p + 32);
    m->qty = arb_get_i64(p + 40);
    m->buy_order_id = arb_get_u64(p + 48);
    m->sell_order_id = arb_get_u64(p + 56);
    m->buy_account = arb_get_u64(p + 64);
    m->sell_account = arb_get_u64(p + 72);
    m->ts = arb_get_i64(p + 80);
    m->seq = arb_get_u64(p + 88);
    m->aggressor = p[96];
    if (m->aggressor < ARB_SIDE_BUY || m->aggressor > ARB_SIDE_SELL)
        return arb__wire_fail("trade aggressor side out of range");
    for (int i = 97; i < 104; i++)
        if (p[i])
            return arb__wire_fail("trade padding is not zero");
    if (m->qty <= 0 || m->price <= 0)
        return arb__wire_fail("trade price and quantity must be positive");
    m->buy_fee = v == 1 ? 0 : arb_get_i64(p + 104);
    m->sell_fee = v == 1 ? 0 : arb_get_i64(p + 112);
    return ARB_OK;
}

/* ---- market_data ---- */

/* Encodes the fixed part with n_levels; then write each level with
 * arb_md_put_level(buf, i, &level). Returns ARB_MD_LEN(n_levels) or 0. */
static inline uint32_t arb_market_data_encode(const arb_market_data *m, void *buf, size_t cap)
{
    if (m->n_levels > ARB_MD_MAX_LEVELS || cap < ARB_MD_LEN(m->n_levels))
        return 0;
    uint8_t *p = (uint8_t *)buf;
    uint32_t len = ARB_MD_LEN(m->n_levels);
    arb_wire_put_hdr(p, ARB_MSG_MARKET_DATA, len);
    p += ARB_WIRE_HDR;
    p[0] = m->kind, p[1] = p[2] = p[3] = 0;
    arb_put_u32(p + 4, m->n_levels);
    arb__wire_put_text(p + 8, m->venue, ARB_VENUE_LEN);
    arb__wire_put_text(p + 16, m->symbol, ARB_SYMBOL_LEN);
    arb_put_u64(p + 32, m->book_seq);
    arb_put_i64(p + 40, m->ts);
    arb_put_i64(p + 48, m->bid_px);
    arb_put_i64(p + 56, m->bid_qty);
    arb_put_i64(p + 64, m->ask_px);
    arb_put_i64(p + 72, m->ask_qty);
    return len;
}

static inline void arb_md_put_level(void *buf, uint32_t i, const arb_md_level *l)
{
    uint8_t *p = (uint8_t *)buf + ARB_MD_FIXED_LEN + (size_t)i * ARB_MD_LEVEL_LEN;
    p[0] = l->side, p[1] = p[2] = p[3] = 0;
    arb_put_u32(p + 4, l->orders);
    arb_put_i64(p + 8, l->price);
    arb_put_i64(p + 16, l->qty);
}

/* Level i of a decoded record (i < n_levels; validated by the decoder). */
static inline void arb_md_get_level(const arb_market_data *m, uint32_t i, arb_md_level *l)
{
    const uint8_t *p = m->levels + (size_t)i * ARB_MD_LEVEL_LEN;
    l->side = p[0];
    l->orders = arb_get_u32(p + 4);
    l->price = arb_get_i64(p + 8);
    l->qty = arb_get_i64(p + 16);
}

static inline int arb_market_data_decode(const void *buf, size_t len, arb_market_data *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = arb__wire_check_hdr(p, len, ARB_MSG_MARKET_DATA, ARB_MD_FIXED_LEN);
    if (rc)
        return rc;
    const uint8_t *b = p + ARB_WIRE_HDR;
    m->kind = b[0];
    if (m->kind < 1 || m->kind > ARB_MD_KIND_MAX || b[1] || b[2] || b[3])
        return arb__wire_fail("market data kind out of range");
    m->n_levels = arb_get_u32(b + 4);
    if (m->n_levels > ARB_MD_MAX_LEVELS || len != ARB_MD_LEN(m->n_levels))
        return arb__wire_fail("market data level count does not match the length");
    if ((rc = arb__wire_get_text(b + 8, ARB_VENUE_LEN, m->venue, 1)) ||
        (rc = arb__wire_get_text(b + 16, ARB_SYMBOL_LEN, m->symbol, 1)))
        return rc;
    m->book_seq = arb_get_u64(b + 32);
    m->ts = arb_get_i64(b + 40);
    m->bid_px = arb_get_i64(b + 48);
    m->bid_qty = arb_get_i64(b + 56);
    m->ask_px = arb_get_i64(b + 64);
    m->ask_qty = arb_get_i64(b + 72);
    if (m->bid_qty < 0 || m->ask_qty < 0)
        return arb__wire_fail("market data quantity is negative");
    m->levels = p + ARB_MD_FIXED_LEN;
    for (uint32_t i = 0; i < m->n_levels; i++) {
        const uint8_t *l = m->levels + (size_t)i * ARB_MD_LEVEL_LEN;
        if (l[0] < ARB_SIDE_BUY || l[0] > ARB_SIDE_SELL || l[1] || l[2] || l[3])
            return arb__wire_fail("market data level side out of range");
        if (arb_get_i64(l + 16) < 0)
            return arb__wire_fail("market data level quantity is negative");
    }
    return ARB_OK;
}

/* ---- system_ticks ---- */

static inline uint32_t arb_tick_encode(const arb_tick *m, void *buf, size_t cap)
{
    if (cap < ARB_TICK_LEN)
        return 0;
    uint8_t *p = (uint8_t *)buf;
    arb_wire_put_hdr(p, ARB_MSG_TICK, ARB_TICK_LEN);
    p += ARB_WIRE_HDR;
    arb_put_u64(p, m->seq);
    arb_put_i64(p + 8, m->sim_ns);
    arb_put_i64(p + 16, m->wall_ns);
    arb_put_u32(p + 24, m->speed);
    p[28] = m->mode, p[29] = p[30] = p[31] = 0;
    return ARB_TICK_LEN;
}

static inline int arb_tick_decode(const void *buf, size_t len, arb_tick *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = arb__wire_check_hdr(p, len, ARB_MSG_TICK, ARB_TICK_LEN);
    if (rc)
        return rc;
    if (len != ARB_TICK_LEN)
        return arb__wire_fail("tick has the wrong length");
    p += ARB_WIRE_HDR;
    m->seq = arb_get_u64(p);
    m->sim_ns = arb_get_i64(p + 8);
    m->wall_ns = arb_get_i64(p + 16);
    m->speed = arb_get_u32(p + 24);
    m->mode = p[28];
    if (m->mode < ARB_TICK_WALL || m->mode > ARB_TICK_SIM || p[29] || p[30] || p[31])
        return arb__wire_fail("tick mode out of range");
    return ARB_OK;
}

/* ---- market_events ---- */

static inline uint32_t arb_market_event_encode(const arb_market_event *m, void *buf, size_t cap)
{
    if (cap < ARB_MARKET_EVENT_LEN)
        return 0;
    uint8_t *p = (uint8_t *)buf;
    arb_wire_put_hdr(p, ARB_MSG_MARKET_EVENT, ARB_MARKET_EVENT_LEN);
    p += ARB_WIRE_HDR;
    p[0] = m->kind;
    memset(p + 1, 0, 7);
    arb__wire_put_text(p + 8, m->venue, ARB_VENUE_LEN);
    arb__wire_put_text(p + 16, m->symbol, ARB_SYMBOL_LEN);
    arb_put_i64(p + 32, m->value);
    arb_put_i64(p + 40, m->shock);
    arb_put_i64(p + 48, m->ts);
    arb_put_u64(p + 56, m->seq);
    return ARB_MARKET_EVENT_LEN;
}

static inline int arb_market_event_decode(const void *buf, size_t len, arb_market_event *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = arb__wire_check_hdr(p, len, ARB_MSG_MARKET_EVENT, ARB_MARKET_EVENT_LEN);
    if (rc)
        return rc;
    if (len != ARB_MARKET_EVENT_LEN)
        return arb__wire_fail("market event has the wrong length");
    p += ARB_WIRE_HDR;
    m->kind = p[0];
    if (m->kind < 1 || m->kind > ARB_MEV_KIND_MAX)
        return arb__wire_fail("market event kind out of range");
    for (int i = 1; i < 8; i++)
        if (p[i])
            return arb__wire_fail("market event padding is not zero");
    if ((rc = arb__wire_get_text(p + 8, ARB_VENUE_LEN, m->venue, 0)) ||
        (rc = arb__wire_get_text(p + 16, ARB_SYMBOL_LEN, m->symbol, 1)))
        return rc;
    m->value = arb_get_i64(p + 32);
    m->shock = arb_get_i64(p + 40);
    m->ts = arb_get_i64(p + 48);
    m->seq = arb_get_u64(p + 56);
    return ARB_OK;
}

/* ---- service_registry ---- */

/* Encodes the fixed part; then write each plugin with arb_service_put_plugin. */
static inline uint32_t arb_service_encode(const arb_service *m, void *buf, size_t cap)
{
    unsigned v = m->version ? m->version : ARB_SERVICE_VERSION;
    if (v > ARB_SERVICE_VERSION || m->n_plugins > ARB_SERVICE_MAX_PLUGINS ||
        cap < ARB_SERVICE_LEN_V(v, m->n_plugins))
        return 0;
    uint8_t *p = (uint8_t *)buf;
    uint32_t len = ARB_SERVICE_LEN_V(v, m->n_plugins);
    arb_wire_put_hdr(p, ARB_MSG_SERVICE, len);
    arb_put_u16(p + 2, (uint16_t)v);
    p += ARB_WIRE_HDR;
    p[0] = m->status, p[1] = 0;
    arb_put_u16(p + 2, m->n_plugins);
    arb_put_u32(p + 4, m->pid);
    arb__wire_put_text(p + 8, m->host_id, ARB_SVC_ID_LEN);
    arb__wire_put_text(p + 40, m->admin, ARB_SVC_ADDR_LEN);
    arb_put_i64(p + 104, m->started_at);
    arb_put_i64(p + 112, m->ts);
    return len;
}

/* Plugin i of a record arb_service_encode wrote (at its version). */
static inline void arb_service_put_plugin(void *buf, uint32_t i, const arb_service_plugin *sp)
{
    unsigned v = arb_get_u16((uint8_t *)buf + 2);
    uint8_t *p = (uint8_t *)buf + ARB_SERVICE_FIXED_LEN + (size_t)i * ARB_SERVICE_PLUGIN_LEN_OF(v);
    arb__wire_put_text(p, sp->instance, ARB_SVC_NAME_LEN);
    arb__wire_put_text(p + 32, sp->plugin, ARB_SVC_NAME_LEN);
    arb__wire_put_text(p + 64, sp->version, ARB_SVC_VER_LEN);
    if (v >= 2)
        arb__wire_put_text(p + 80, sp->build_id, ARB_SVC_BUILD_LEN);
    if (v >= 3) {
        arb_put_u64(p + ARB_SERVICE_PLUGIN_LEN_V2, sp->account);
        arb_put_u64(p + ARB_SERVICE_PLUGIN_LEN_V2 + 8, sp->config_digest);
    }
}

static inline void arb_service_get_plugin(const arb_service *m, uint32_t i, arb_service_plugin *sp)
{
    const uint8_t *p = m->plugins + (size_t)i * ARB_SERVICE_PLUGIN_LEN_OF(m->version);
    memcpy(sp->instance, p, ARB_SVC_NAME_LEN);
    memcpy(sp->plugin, p + 32, ARB_SVC_NAME_LEN);
    memcpy(sp->version, p + 64, ARB_SVC_VER_LEN);
    if (m->version >= 2)
        memcpy(sp->build_id, p + 80, ARB_SVC_BUILD_LEN);
    else
        memset(sp->build_id, 0, ARB_SVC_BUILD_LEN);
    sp->account = m->version >= 3 ? arb_get_u64(p + ARB_SERVICE_PLUGIN_LEN_V2) : 0;
    sp->config_digest = m->version >= 3 ? arb_get_u64(p + ARB_SERVICE_PLUGIN_LEN_V2 + 8) : 0;
}

static inline int arb_service_decode(const void *buf, size_t len, arb_service *m)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc =
        arb__wire_check_hdr_v(p, len, ARB_MSG_SERVICE, ARB_SERVICE_FIXED_LEN, ARB_SERVICE_VERSION);
    if (rc)
        return rc;
    m->version = (uint8_t)arb_get_u16(p + 2);
    const uint8_t *b = p + ARB_WIRE_HDR;
    m->status = b[0];
    if (m->status < ARB_SVC_ALIVE || m->status > ARB_SVC_TOMBSTONE || b[1])
        return arb__wire_fail("service status out of range");
    m->n_plugins = arb_get_u16(b + 2);
    if (m->n_plugins > ARB_SERVICE_MAX_PLUGINS ||
        len != ARB_SERVICE_LEN_V(m->version, m->n_plugins))
        return arb__wire_fail("service plugin count does not match the length");
    m->pid = arb_get_u32(b + 4);
    if ((rc = arb__wire_get_text(b + 8, ARB_SVC_ID_LEN, m->host_id, 1)) ||
        (rc = arb__wire_get_text(b + 40, ARB_SVC_ADDR_LEN, m->admin, 0)))
        return rc;
    m->started_at = arb_get_i64(b + 104);
    m->ts = arb_get_i64(b + 112);
    m->plugins = p + ARB_SERVICE_FIXED_LEN;
    char tmp[ARB_SVC_BUILD_LEN];
    size_t stride = ARB_SERVICE_PLUGIN_LEN_OF(m->version);
    for (uint32_t i = 0; i < m->n_plugins; i++) {
        const uint8_t *e = m->plugins + (size_t)i * stride;
        if ((rc = arb__wire_get_text(e, ARB_SVC_NAME_LEN, tmp, 1)) ||
            (rc = arb__wire_get_text(e + 32, ARB_SVC_NAME_LEN, tmp, 1)) ||
            (rc = arb__wire_get_text(e + 64, ARB_SVC_VER_LEN, tmp, 0)) ||
            (m->version >= 2 && (rc = arb__wire_get_text(e + 80, ARB_SVC_BUILD_LEN, tmp, 0))))
            return rc;
    }
    return ARB_OK;
}

/* Names for logs and JSON edges. */
static inline const char *arb_reason_name(unsigned r)
{
    static const char *const names[] = {
        "none",
        "unknown_instrument",
        "price_off_tick",
        "bad_quantity",
        "qty_off_lot",
        "qty_below_min",
        "qty_above_max",
        "price_band",
        "unknown_order",
        "not_owner",
        "post_only_would_take",
        "fok_not_fillable",
        "max_open_orders",
        "self_trade",
        "duplicate_order_id",
        "bad_field",
        "user_cancel",
        "no_liquidity",
        "bad_price",
    };
    return r <= ARB_R_REASON_MAX ? names[r] : "unknown";
}

static inline const char *arb_event_kind_name(unsigned k)
{
    static const char *const names[] = {"?",      "accepted",  "rejected", "partially_filled",
                                        "filled", "cancelled", "replaced", "expired"};
    return k <= ARB_EV_KIND_MAX ? names[k] : "?";
}

#ifdef __cplusplus
}
#endif
#endif /* ARB_WIRE_H */
