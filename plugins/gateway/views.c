/*
 * views.c -- response rendering (see views.h). Everything is printed with
 * evbuffer_add_printf or small helpers; no JSON library is needed to write
 * these fixed shapes, and doing it by hand keeps the hot order path free of
 * allocations beyond the buffer itself.
 */
#include "views.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arb/fixed.h"
#include "decimal.h"
#include "arb/wire_json.h"

void gw_json_string(struct evbuffer *b, const char *s, size_t len)
{
    char out[512];
    size_t j = 0;
    out[j++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (j > sizeof out - 8) {
            evbuffer_add(b, out, j);
            j = 0;
        }
        if (c == '"' || c == '\\') {
            out[j++] = '\\';
            out[j++] = (char)c;
        } else if (c < 0x20) {
            j += (size_t)snprintf(out + j, 7, "\\u%04x", c);
        } else if (c >= 0x80) {
            out[j++] = '?';
        } else {
            out[j++] = (char)c;
        }
    }
    out[j++] = '"';
    evbuffer_add(b, out, j);
}

void gw_render_error(struct evbuffer *b, const char *code, const char *message)
{
    evbuffer_add_printf(b, "{\"error\":{\"code\":\"%s\",\"message\":", code);
    gw_json_string(b, message, strlen(message));
    evbuffer_add(b, "}}", 2);
}

#define dec gw_dec

int gw_format_i128(__int128 v, int decimals, char *buf, size_t cap)
{
    unsigned __int128 mag =
        v < 0 ? (unsigned __int128)0 - (unsigned __int128)v : (unsigned __int128)v;
    char digits[64];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(mag % 10));
        mag /= 10;
    } while (mag > 0 && n < 60);
    while (n <= decimals)
        digits[n++] = '0';
    size_t j = 0;
    char tmp[80];
    if (v < 0)
        tmp[j++] = '-';
    for (int i = n - 1; i >= 0; i--) {
        tmp[j++] = digits[i];
        if (i == decimals && decimals > 0)
            tmp[j++] = '.';
    }
    tmp[j] = 0;
    return snprintf(buf, cap, "%s", tmp);
}

static void instrument_fields(struct evbuffer *b, const arb_instrument *in)
{
    evbuffer_add(b, "\"venue\":", 8);
    gw_json_string(b, in->venue, strlen(in->venue));
    evbuffer_add(b, ",\"symbol\":", 10);
    gw_json_string(b, in->symbol, strlen(in->symbol));
}

/* A small output buffer flushed to the evbuffer in one piece: the order
 * view is on the hot path of every POST, where printf-style formatting was
 * a fifth of the gateway's instructions per request. */
typedef struct jbuf {
    struct evbuffer *b;
    size_t n;
    char s[1024];
} jbuf;

static void jb_flush(jbuf *j)
{
    evbuffer_add(j->b, j->s, j->n);
    j->n = 0;
}

static void jb_put(jbuf *j, const char *s, size_t len)
{
    if (j->n + len > sizeof j->s) {
        jb_flush(j);
        if (len > sizeof j->s) {
            evbuffer_add(j->b, s, len);
            return;
        }
    }
    memcpy(j->s + j->n, s, len);
    j->n += len;
}

#define JB_LIT(j, lit) jb_put((j), (lit), sizeof(lit) - 1)

static void jb_str(jbuf *j, const char *s) { jb_put(j, s, strlen(s)); }

static void jb_u64(jbuf *j, uint64_t v)
{
    char t[24];
    size_t n = 0;
    do {
        t[sizeof t - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jb_put(j, t + sizeof t - n, n);
}

static void jb_i64(jbuf *j, int64_t v)
{
    if (v < 0) {
        JB_LIT(j, "-");
        jb_u64(j, 0 - (uint64_t)v);
    } else {
        jb_u64(j, (uint64_t)v);
    }
}

/* Same text as arb_dec_format: sign, integer part, and exactly `decimals`
 * fractional digits. */
static void jb_dec(jbuf *j, int64_t v, int decimals)
{
    if (decimals < 0 || decimals > ARB_FIXED_MAX_DECIMALS)
        decimals = 0;
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char t[48];
    size_t n = 0;
    for (int k = 0; k < decimals; k++) {
        t[sizeof t - 1 - n++] = (char)('0' + mag % 10);
        mag /= 10;
    }
    if (decimals > 0)
        t[sizeof t - 1 - n++] = '.';
    do {
        t[sizeof t - 1 - n++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (v < 0)
        t[sizeof t - 1 - n++] = '-';
    jb_put(j, t + sizeof t - n, n);
}

static void jb_qdec(jbuf *j, int64_t v, int decimals)
{
    JB_LIT(j, "\"");
    jb_dec(j, v, decimals);
    JB_LIT(j, "\"");
}

size_t gw_iso8601(char *out, size_t cap, int64_t ns)
{
    int64_t secs = ns / 1000000000 - (ns % 1000000000 < 0);
    long frac = (long)(ns - secs * 1000000000);
    time_t tt = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || cap < GW_ISO8601_LEN + 1) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    return n + (size_t)snprintf(out + n, cap - n, ".%09ldZ", frac);
}

static void jb_iso(jbuf *j, int64_t ns)
{
    char t[GW_ISO8601_LEN + 1];
    gw_iso8601(t, sizeof t, ns);
    jb_put(j, "\"", 1);
    jb_str(j, t);
    jb_put(j, "\"", 1);
}

void gw_render_order(struct evbuffer *b, const gw_read_model *rm, const gw_order *o)
{
    const arb_instrument *in = &rm->instruments->items[o->instrument];
    int pd = in->price_decimals, qd = in->qty_decimals;
    jbuf j;
    j.b = b;
    j.n = 0;
    JB_LIT(&j, "{\"order_id\":\"");
    jb_u64(&j, o->order_id);
    JB_LIT(&j, "\",\"client_order_id\":");
    if (o->client_order_id[0]) {
        /* The charset was validated at parse: no escaping needed. */
        JB_LIT(&j, "\"");
        jb_str(&j, o->client_order_id);
        JB_LIT(&j, "\"");
    } else {
        JB_LIT(&j, "null");
    }
    JB_LIT(&j, ",\"account\":\"");
    jb_u64(&j, o->account);
    JB_LIT(&j, "\",");
    jb_flush(&j);
    instrument_fields(b, in);
    JB_LIT(&j, ",\"side\":\"");
    jb_str(&j, arb__jw_side(o->side));
    JB_LIT(&j, "\",\"type\":\"");
    jb_str(&j, arb__jw_ord_type(o->type));
    JB_LIT(&j, "\",\"tif\":\"");
    jb_str(&j, arb__jw_tif(o->tif));
    JB_LIT(&j, "\",\"post_only\":");
    jb_str(&j, (o->flags & ARB_ORDF_POST_ONLY) ? "true" : "false");
    JB_LIT(&j, ",\"price\":");
    if (o->price)
        jb_qdec(&j, o->price, pd);
    else
        JB_LIT(&j, "null");
    JB_LIT(&j, ",\"qty\":");
    jb_qdec(&j, o->qty, qd);
    JB_LIT(&j, ",\"status\":\"");
    jb_str(&j, gw_status_name(o->status));
    JB_LIT(&j, "\",\"reason\":");
    if (o->reason) {
        JB_LIT(&j, "\"");
        jb_str(&j, arb_reason_name(o->reason));
        JB_LIT(&j, "\"");
    } else {
        JB_LIT(&j, "null");
    }
    JB_LIT(&j, ",\"filled_qty\":");
    jb_qdec(&j, o->filled_qty, qd);
    JB_LIT(&j, ",\"leaves_qty\":");
    jb_qdec(&j, o->leaves_qty, qd);
    JB_LIT(&j, ",\"created_at\":");
    jb_i64(&j, o->created_ts);
    JB_LIT(&j, ",\"created_time\":");
    jb_iso(&j, o->created_ts);
    JB_LIT(&j, ",\"updated_at\":");
    jb_i64(&j, o->updated_ts);
    JB_LIT(&j, ",\"updated_time\":");
    jb_iso(&j, o->updated_ts);
    int64_t fees = 0;
    for (unsigned i = 0; i < o->n_fills; i++)
        fees += o->fills[i].fee;
    JB_LIT(&j, ",\"fees\":");
    jb_qdec(&j, fees, pd);
    JB_LIT(&j, ",\"fills\":[");
    for (unsigned i = 0; i < o->n_fills; i++) {
        const gw_fill *fl = &o->fills[i];
        if (i)
            JB_LIT(&j, ",");
        JB_LIT(&j, "{\"trade_id\":\"");
        jb_u64(&j, fl->trade_id);
        JB_LIT(&j, "\",\"price\":");
        jb_qdec(&j, fl->price, pd);
        JB_LIT(&j, ",\"qty\":");
        jb_qdec(&j, fl->qty, qd);
        JB_LIT(&j, ",\"ts\":");
        jb_i64(&j, fl->ts);
        JB_LIT(&j, ",\"time\":");
        jb_iso(&j, fl->ts);
        JB_LIT(&j, ",\"fee\":");
        jb_qdec(&j, fl->fee, pd);
        JB_LIT(&j, ",\"liquidity\":");
        if (fl->liquidity == ARB_LIQ_MAKER)
            JB_LIT(&j, "\"maker\"");
        else if (fl->liquidity == ARB_LIQ_TAKER)
            JB_LIT(&j, "\"taker\"");
        else
            JB_LIT(&j, "null");
        JB_LIT(&j, "}");
    }
    JB_LIT(&j, "]}");
    jb_flush(&j);
}

/* Exposed for the test that holds jb_dec to arb_dec_format. */
void gw_format_dec_fast(struct evbuffer *b, int64_t v, int decimals)
{
    jbuf j;
    j.b = b;
    j.n = 0;
    jb_dec(&j, v, decimals);
    jb_flush(&j);
}

void gw_render_open_orders(struct evbuffer *b, const gw_read_model *rm, const gw_account *a,
                           size_t limit)
{
    evbuffer_add(b, "{\"orders\":[", 11);
    size_t n = 0;
    for (const gw_order *o = a ? a->open_head : NULL; o && (limit == 0 || n < limit);
         o = o->open_next, n++) {
        if (n)
            evbuffer_add(b, ",", 1);
        gw_render_order(b, rm, o);
    }
    evbuffer_add(b, "]}", 2);
}

void gw_render_instruments(struct evbuffer *b, const arb_instrument_table *t)
{
    evbuffer_add(b, "{\"instruments\":[", 16);
    for (size_t i = 0; i < t->count; i++) {
        const arb_instrument *in = &t->items[i];
        int pd = in->price_decimals, qd = in->qty_decimals;
        char tk[48], lt[48], mn[48], mx[48], rf[48];
        evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
        instrument_fields(b, in);
        evbuffer_add_printf(b,
                            ",\"price_decimals\":%d,\"qty_decimals\":%d,\"tick_size\":\"%s\","
                            "\"lot_size\":\"%s\",\"min_qty\":\"%s\",\"max_qty\":\"%s\","
                            "\"ref_price\":\"%s\",\"band_bps\":%lld}",
                            pd, qd, dec(tk, in->tick, pd), dec(lt, in->lot, qd),
                            dec(mn, in->min_qty, qd), dec(mx, in->max_qty, qd),
                            dec(rf, in->ref_price, pd), (long long)in->band_bps);
    }
    evbuffer_add(b, "]}", 2);
}

static void levels(struct evbuffer *b, const gw_level *lv, uint32_t n, unsigned depth, int pd,
                   int qd)
{
    char p[48], q[48];
    for (uint32_t i = 0; i < n && i < depth; i++)
        evbuffer_add_printf(b, "%s{\"price\":\"%s\",\"qty\":\"%s\",\"orders\":%u}", i ? "," : "",
                            dec(p, lv[i].price, pd), dec(q, lv[i].qty, qd), lv[i].orders);
}

void gw_render_book(struct evbuffer *b, const gw_read_model *rm, int idx, unsigned depth)
{
    const arb_instrument *in = &rm->instruments->items[idx];
    const gw_book *bk = &rm->books[idx];
    int pd = in->price_decimals, qd = in->qty_decimals;
    char p[48], tm[GW_ISO8601_LEN + 1];
    evbuffer_add(b, "{", 1);
    instrument_fields(b, in);
    gw_iso8601(tm, sizeof tm, bk->ts);
    evbuffer_add_printf(b, ",\"book_seq\":\"%llu\",\"ts\":%lld,\"time\":\"%s\",\"last_price\":",
                        (unsigned long long)bk->book_seq, (long long)bk->ts, tm);
    int64_t last = rm->trades[idx].last_px;
    if (last)
        evbuffer_add_printf(b, "\"%s\"", dec(p, last, pd));
    else
        evbuffer_add(b, "null", 4);
    evbuffer_add(b, ",\"bids\":[", 9);
    if (bk->have_depth) {
        levels(b, bk->bids, bk->n_bids, depth, pd, qd);
        evbuffer_add(b, "],\"asks\":[", 10);
        levels(b, bk->asks, bk->n_asks, depth, pd, qd);
    } else {
        /* Only the top of book is known so far. */
        gw_level bid = {bk->bid_px, bk->bid_qty, 0}, ask = {bk->ask_px, bk->ask_qty, 0};
        levels(b, &bid, bk->bid_qty > 0 ? 1 : 0, depth, pd, qd);
        evbuffer_add(b, "],\"asks\":[", 10);
        levels(b, &ask, bk->ask_qty > 0 ? 1 : 0, depth, pd, qd);
    }
    evbuffer_add(b, "]}", 2);
}

void gw_render_trade(struct evbuffer *b, const gw_read_model *rm, int idx, const gw_trade_rec *t)
{
    const arb_instrument *in = &rm->instruments->items[idx];
    char p[48], q[48], tm[GW_ISO8601_LEN + 1];
    evbuffer_add_printf(b, "{\"trade_id\":\"%llu\",", (unsigned long long)t->trade_id);
    instrument_fields(b, in);
    gw_iso8601(tm, sizeof tm, t->ts);
    evbuffer_add_printf(b,
                        ",\"price\":\"%s\",\"qty\":\"%s\",\"aggressor\":\"%s\",\"ts\":%lld,"
                        "\"time\":\"%s\",\"seq\":\"%llu\"}",
                        dec(p, t->price, in->price_decimals), dec(q, t->qty, in->qty_decimals),
                        arb__jw_side(t->aggressor), (long long)t->ts, tm,
                        (unsigned long long)t->seq);
}

/* The k-th newest trade of a ring (k = 0 is the newest). */
static const gw_trade_rec *ring_at(const gw_trade_ring *r, size_t k)
{
    return &r->items[(r->head + r->cap - 1 - k) % r->cap];
}

void gw_render_trades(struct evbuffer *b, const gw_read_model *rm, int idx, const uint8_t *mask,
                      unsigned limit)
{
    evbuffer_add(b, "{\"trades\":[", 11);
    size_t n_inst = rm->instruments->count;
    if (idx >= 0) {
        const gw_trade_ring *r = &rm->trades[idx];
        for (size_t k = 0; k < r->count && k < limit; k++) {
            if (k)
                evbuffer_add(b, ",", 1);
            gw_render_trade(b, rm, idx, ring_at(r, k));
        }
    } else {
        /* Merge the rings newest first: one cursor per instrument. */
        size_t *cursor = calloc(n_inst ? n_inst : 1, sizeof *cursor);
        for (unsigned emitted = 0; cursor && emitted < limit; emitted++) {
            int best = -1;
            for (size_t i = 0; i < n_inst; i++) {
                const gw_trade_ring *r = &rm->trades[i];
                if ((mask && !mask[i]) || cursor[i] >= r->count)
                    continue;
                if (best < 0 ||
                    ring_at(r, cursor[i])->ts > ring_at(&rm->trades[best], cursor[best])->ts)
                    best = (int)i;
            }
            if (best < 0)
                break;
            if (emitted)
                evbuffer_add(b, ",", 1);
            gw_render_trade(b, rm, best, ring_at(&rm->trades[best], cursor[best]));
            cursor[best]++;
        }
        free(cursor);
    }
    evbuffer_add(b, "]}", 2);
}

static int64_t pow10_i64(int n)
{
    int64_t v = 1;
    while (n-- > 0)
        v *= 10;
    return v;
}

/* One account's entry: its positions per instrument and the total. */
static void account_entry(struct evbuffer *b, const gw_read_model *rm, const char *id,
                          const char *label, const gw_position *positions, int scale)
{
    const arb_instrument_table *t = rm->instruments;
    evbuffer_add_printf(b, "{\"account\":\"%s\",\"name\":", id);
    if (label)
        gw_json_string(b, label, strlen(label));
    else
        evbuffer_add(b, "null", 4);
    evbuffer_add(b, ",\"positions\":[", 14);
    __int128 total = 0;
    int pfirst = 1;
    for (size_t i = 0; i < t->count; i++) {
        const gw_position *p = &positions[i];
        if (!p->trades)
            continue;
        const arb_instrument *in = &t->items[i];
        int pd = in->price_decimals, qd = in->qty_decimals;
        int64_t last = rm->trades[i].last_px;
        __int128 pnl = gw_position_pnl(p, last);
        total += pnl * pow10_i64(scale - pd - qd);
        char pos[48], cash[80], pn[80], lp[48], bo[48], so[48], fe[80];
        gw_format_i128(p->cash, pd + qd, cash, sizeof cash);
        gw_format_i128(p->fees, pd + qd, fe, sizeof fe);
        gw_format_i128(pnl, pd + qd, pn, sizeof pn);
        evbuffer_add(b, pfirst ? "{" : ",{", pfirst ? 1 : 2);
        pfirst = 0;
        instrument_fields(b, in);
        evbuffer_add_printf(b,
                            ",\"position\":\"%s\",\"cash\":\"%s\",\"pnl\":\"%s\","
                            "\"last_price\":\"%s\",\"bought\":\"%s\",\"sold\":\"%s\","
                            "\"trades\":%llu,\"fees\":\"%s\"}",
                            dec(pos, p->position, qd), cash, pn, dec(lp, last, pd),
                            dec(bo, p->bought, qd), dec(so, p->sold, qd),
                            (unsigned long long)p->trades, fe);
    }
    char tot[80];
    gw_format_i128(total, scale, tot, sizeof tot);
    evbuffer_add_printf(b, "],\"pnl_total\":\"%s\"}", tot);
}

static uint64_t account_trades(const gw_account *a, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += a->positions[i].trades;
    return sum;
}

static int by_trades_desc(const void *x, const void *y, void *n)
{
    uint64_t a = account_trades(*(const gw_account *const *)x, *(size_t *)n);
    uint64_t b = account_trades(*(const gw_account *const *)y, *(size_t *)n);
    return a < b ? 1 : a > b ? -1 : 0;
}

void gw_render_accounts(struct evbuffer *b, const gw_read_model *rm, gw_account_name_fn name,
                        gw_account_visible_fn visible, void *user, size_t max_unnamed)
{
    const arb_instrument_table *t = rm->instruments;
    /* Totals are summed at the finest scale of any instrument, which
     * assumes one quote currency across instruments (true for the
     * cross-venue books this system trades). */
    int scale = 0;
    for (size_t i = 0; i < t->count; i++)
        if (t->items[i].price_decimals + t->items[i].qty_decimals > scale)
            scale = t->items[i].price_decimals + t->items[i].qty_decimals;
    evbuffer_add(b, "{\"accounts\":[", 13);
    int first = 1;
    /* Named accounts first, in order of first sight; then the busiest
     * unnamed ones; the rest (a noise population of thousands, say) are
     * summed into one "others" entry so the board stays small. */
    const gw_account **unnamed = calloc(rm->n_accounts + 1, sizeof *unnamed);
    size_t n_unnamed = 0;
    for (size_t a = 0; a < rm->n_accounts; a++) {
        const gw_account *acc = rm->account_list[a];
        if (!acc->positions || (visible && !visible(user, acc->id)))
            continue;
        const char *nm = name ? name(user, acc->id) : NULL;
        if (!nm && unnamed) {
            unnamed[n_unnamed++] = acc;
            continue;
        }
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)acc->id);
        if (!first)
            evbuffer_add(b, ",", 1);
        first = 0;
        account_entry(b, rm, id, nm, acc->positions, scale);
    }
    size_t n_inst = t->count;
    if (n_unnamed > max_unnamed)
        qsort_r(unnamed, n_unnamed, sizeof *unnamed, by_trades_desc, &n_inst);
    for (size_t k = 0; k < n_unnamed && k < max_unnamed; k++) {
        char id[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)unnamed[k]->id);
        if (!first)
            evbuffer_add(b, ",", 1);
        first = 0;
        account_entry(b, rm, id, NULL, unnamed[k]->positions, scale);
    }
    if (n_unnamed > max_unnamed) {
        gw_position *sum = calloc(n_inst ? n_inst : 1, sizeof *sum);
        if (sum) {
            for (size_t k = max_unnamed; k < n_unnamed; k++)
                for (size_t i = 0; i < n_inst; i++) {
                    const gw_position *p = &unnamed[k]->positions[i];
                    sum[i].position += p->position;
                    sum[i].cash += p->cash;
                    sum[i].fees += p->fees;
                    sum[i].bought += p->bought;
                    sum[i].sold += p->sold;
                    sum[i].trades += p->trades;
                }
            char label[48];
            snprintf(label, sizeof label, "others (%zu accounts)", n_unnamed - max_unnamed);
            if (!first)
                evbuffer_add(b, ",", 1);
            account_entry(b, rm, "others", label, sum, scale);
            free(sum);
        }
    }
    free(unnamed);
    evbuffer_add(b, "]}", 2);
}

void gw_render_services(struct evbuffer *b, const gw_services *s, int64_t now_ns, int64_t alive_ns,
                        int64_t dead_ns)
{
    evbuffer_add_printf(b, "{\"alive_within_ms\":%lld,\"dead_after_ms\":%lld,\"services\":[",
                        (long long)(alive_ns / 1000000), (long long)(dead_ns / 1000000));
    for (size_t i = 0; i < s->count; i++) {
        const gw_service *svc = &s->items[i];
        int64_t silent = now_ns - svc->seen_at;
        if (i)
            evbuffer_add(b, ",", 1);
        evbuffer_add(b, "{\"host_id\":", 11);
        gw_json_string(b, svc->host_id, strlen(svc->host_id));
        char t0[GW_ISO8601_LEN + 1], t1[GW_ISO8601_LEN + 1], t2[GW_ISO8601_LEN + 1];
        gw_iso8601(t0, sizeof t0, svc->started_at);
        gw_iso8601(t1, sizeof t1, svc->announced_at);
        gw_iso8601(t2, sizeof t2, svc->seen_at);
        evbuffer_add_printf(
            b,
            ",\"liveness\":\"%s\",\"pid\":%u,\"started_at\":%lld,\"started_time\":\"%s\","
            "\"announced_at\":%lld,\"announced_time\":\"%s\",\"last_seen\":%lld,"
            "\"last_seen_time\":\"%s\",\"silent_ms\":%lld,\"records\":%llu,\"admin\":",
            gw_liveness_name(gw_service_liveness(svc, now_ns, alive_ns, dead_ns)), svc->pid,
            (long long)svc->started_at, t0, (long long)svc->announced_at, t1,
            (long long)svc->seen_at, t2, (long long)(silent > 0 ? silent / 1000000 : 0),
            (unsigned long long)svc->records);
        if (svc->admin[0])
            gw_json_string(b, svc->admin, strlen(svc->admin));
        else
            evbuffer_add(b, "null", 4);
        evbuffer_add(b, ",\"plugins\":[", 12);
        for (size_t k = 0; k < svc->n_plugins; k++) {
            const gw_service_plugin *p = &svc->plugins[k];
            if (k)
                evbuffer_add(b, ",", 1);
            evbuffer_add(b, "{\"instance\":", 12);
            gw_json_string(b, p->instance, strlen(p->instance));
            evbuffer_add(b, ",\"plugin\":", 10);
            gw_json_string(b, p->plugin, strlen(p->plugin));
            evbuffer_add(b, ",\"version\":", 11);
            gw_json_string(b, p->version, strlen(p->version));
            evbuffer_add(b, "}", 1);
        }
        evbuffer_add(b, "]}", 2);
    }
    evbuffer_add(b, "]}", 2);
}

/* ---- the key's own fills and order events ---- */

static const char *liquidity_json(unsigned liq)
{
    return liq == ARB_LIQ_MAKER ? "\"maker\"" : liq == ARB_LIQ_TAKER ? "\"taker\"" : "null";
}

typedef struct fill_ref {
    const gw_order *order;
    const gw_fill *fill;
} fill_ref;

/* Newest first: by time, then trade id. */
static int fill_newer_first(const void *x, const void *y)
{
    const gw_fill *a = ((const fill_ref *)x)->fill, *b = ((const fill_ref *)y)->fill;
    if (a->ts != b->ts)
        return a->ts < b->ts ? 1 : -1;
    return a->trade_id < b->trade_id ? 1 : a->trade_id > b->trade_id ? -1 : 0;
}

static int add_fills(fill_ref **refs, size_t *n, size_t *cap, const gw_order *o)
{
    for (unsigned i = 0; i < o->n_fills; i++) {
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 64;
            fill_ref *g = realloc(*refs, c * sizeof *g);
            if (!g)
                return -1;
            *refs = g;
            *cap = c;
        }
        (*refs)[(*n)++] = (fill_ref){o, &o->fills[i]};
    }
    return 0;
}

int gw_render_fills(struct evbuffer *b, const gw_read_model *rm, uint64_t account, size_t limit,
                    int64_t before_ts, uint64_t before_trade)
{
    fill_ref *refs = NULL;
    size_t n = 0, cap = 0;
    const gw_account *a = gw_map_get(&rm->accounts, account);
    for (const gw_order *o = a ? a->open_head : NULL; o; o = o->open_next)
        if (add_fills(&refs, &n, &cap, o))
            goto oom;
    for (const gw_order *o = rm->done_head; o; o = o->done_next)
        if (o->account == account && add_fills(&refs, &n, &cap, o))
            goto oom;
    if (n > 1) /* qsort of a NULL array, even empty, is undefined */
        qsort(refs, n, sizeof *refs, fill_newer_first);
    evbuffer_add(b, "{\"fills\":[", 10);
    size_t shown = 0;
    const gw_fill *last = NULL;
    for (size_t i = 0; i < n && shown < limit; i++) {
        const gw_fill *f = refs[i].fill;
        /* The cursor: strictly older than the last fill of the previous page. */
        if (before_ts && (f->ts > before_ts || (f->ts == before_ts && f->trade_id >= before_trade)))
            continue;
        const gw_order *o = refs[i].order;
        const arb_instrument *in = &rm->instruments->items[o->instrument];
        char p[48], q[48], fee[48], t[GW_ISO8601_LEN + 1];
        gw_iso8601(t, sizeof t, f->ts);
        evbuffer_add_printf(b, "%s{\"order_id\":\"%llu\",\"trade_id\":\"%llu\",", shown ? "," : "",
                            (unsigned long long)o->order_id, (unsigned long long)f->trade_id);
        instrument_fields(b, in);
        evbuffer_add_printf(b,
                            ",\"side\":\"%s\",\"price\":\"%s\",\"qty\":\"%s\",\"fee\":\"%s\","
                            "\"liquidity\":%s,\"ts\":%lld,\"time\":\"%s\"}",
                            arb__jw_side(o->side), dec(p, f->price, in->price_decimals),
                            dec(q, f->qty, in->qty_decimals), dec(fee, f->fee, in->price_decimals),
                            liquidity_json(f->liquidity), (long long)f->ts, t);
        last = f;
        shown++;
    }
    /* A next page exists when fills were left after the limit. */
    int more = 0;
    for (size_t i = 0; last && i < n; i++) {
        const gw_fill *f = refs[i].fill;
        if (f->ts < last->ts || (f->ts == last->ts && f->trade_id < last->trade_id)) {
            more = 1;
            break;
        }
    }
    if (more)
        evbuffer_add_printf(b, "],\"next\":\"%lld.%llu\"}", (long long)last->ts,
                            (unsigned long long)last->trade_id);
    else
        evbuffer_add(b, "],\"next\":null}", 14);
    free(refs);
    return 0;
oom:
    free(refs);
    return -1;
}

/* An order event's opening: {"order_id":..., (the second id), "venue", "symbol";
 * its instrument's decimals and its time as ISO-8601 go to pd, qd and t. */
static void event_head(struct evbuffer *b, const gw_read_model *rm, const arb_order_event *e,
                       const char *second, uint64_t second_id, int *pd, int *qd, char *t, size_t tn)
{
    int idx = gw_rm_instrument(rm, e->venue, e->symbol);
    *pd = idx >= 0 ? rm->instruments->items[idx].price_decimals : 0;
    *qd = idx >= 0 ? rm->instruments->items[idx].qty_decimals : 0;
    char v[ARB_VENUE_LEN + 1], s[ARB_SYMBOL_LEN + 1];
    snprintf(v, sizeof v, "%.*s", (int)ARB_VENUE_LEN, e->venue);
    snprintf(s, sizeof s, "%.*s", (int)ARB_SYMBOL_LEN, e->symbol);
    gw_iso8601(t, tn, e->ts);
    evbuffer_add_printf(b, "{\"order_id\":\"%llu\",\"%s\":\"%llu\",\"venue\":",
                        (unsigned long long)e->order_id, second, (unsigned long long)second_id);
    gw_json_string(b, v, strlen(v));
    evbuffer_add(b, ",\"symbol\":", 10);
    gw_json_string(b, s, strlen(s));
}

void gw_render_order_event(struct evbuffer *b, const gw_read_model *rm, const arb_order_event *e)
{
    int pd, qd;
    char p[48], q[48], l[48], f[48], t[48];
    event_head(b, rm, e, "account", e->account, &pd, &qd, t, sizeof t);
    evbuffer_add_printf(b,
                        ",\"kind\":\"%s\",\"reason\":\"%s\",\"side\":\"%s\",\"price\":\"%s\","
                        "\"qty\":\"%s\",\"leaves_qty\":\"%s\",\"filled_qty\":\"%s\",\"ts\":%lld,"
                        "\"time\":\"%s\"}",
                        arb_event_kind_name(e->kind), e->reason ? arb_reason_name(e->reason) : "",
                        arb__jw_side(e->side), dec(p, e->price, pd), dec(q, e->qty, qd),
                        dec(l, e->leaves_qty, qd), dec(f, e->filled_qty, qd), (long long)e->ts, t);
}

void gw_render_fill_event(struct evbuffer *b, const gw_read_model *rm, const arb_order_event *e)
{
    int pd, qd;
    char p[48], q[48], fee[48], t[48];
    event_head(b, rm, e, "trade_id", e->trade_id, &pd, &qd, t, sizeof t);
    evbuffer_add_printf(b,
                        ",\"side\":\"%s\",\"price\":\"%s\",\"qty\":\"%s\",\"fee\":\"%s\","
                        "\"liquidity\":%s,\"ts\":%lld,\"time\":\"%s\"}",
                        arb__jw_side(e->side), dec(p, e->last_px, pd), dec(q, e->last_qty, qd),
                        dec(fee, e->fee, pd), liquidity_json(e->liquidity), (long long)e->ts, t);
}
