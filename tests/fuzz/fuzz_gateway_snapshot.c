/*
 * fuzz_gateway_snapshot.c -- libFuzzer target for the gateway's snapshots
 * of its read models (plugins/gateway/snapshot.c), the bytes a restart
 * reads back from Kafka or the journal. The first byte picks the mode:
 *   0  the rest as a snapshot
 *   1  the rest as records that build a model (order events and trades of
 *      two instruments), whose snapshot then gets one byte changed where the
 *      first two bytes say
 *   2  the rest as chunk records (a 16-bit length before each) put
 *      together, and what they make decoded
 * A decode must refuse, or yield a model whose snapshot decodes again and
 * encodes to the same bytes; nothing may crash or leak.
 * Not here: reading them from the transport (recover.c, its unit test).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/gateway/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static arb_instrument items[2];
static arb_instrument_table table = {items, 2};
static gw_snapshot_id id;

static void init(void)
{
    if (id.id_space)
        return;
    for (int i = 0; i < 2; i++) {
        char vf[ARB_VENUE_LEN], sf[ARB_SYMBOL_LEN];
        strcpy(items[i].venue, i ? "XB" : "XA");
        strcpy(items[i].symbol, "BTCUSD");
        arb_fixstr_set(vf, ARB_VENUE_LEN, items[i].venue);
        arb_fixstr_set(sf, ARB_SYMBOL_LEN, items[i].symbol);
        items[i].key = arb_instrument_key(vf, sf);
        items[i].price_decimals = 2;
        items[i].qty_decimals = 3;
    }
    id = (gw_snapshot_id){1, 7, gw_instruments_digest(&table), 8, 64};
}

/* A model from a snapshot: encoded, decoded and encoded again, the same. */
static void check(const uint8_t *bytes, size_t len)
{
    gw_read_model *rm;
    gw_marks ev, tr;
    char why[256];
    if (gw_snapshot_decode(bytes, len, &id, &table, &rm, &ev, &tr, why, sizeof why) != ARB_OK)
        return;
    uint8_t *a, *b;
    size_t alen, blen;
    if (gw_snapshot_encode(rm, &id, &ev, &tr, &a, &alen) != ARB_OK)
        abort();
    gw_read_model *again;
    gw_marks ev2, tr2;
    if (gw_snapshot_decode(a, alen, &id, &table, &again, &ev2, &tr2, why, sizeof why) != ARB_OK)
        abort();
    if (gw_snapshot_encode(again, &id, &ev2, &tr2, &b, &blen) != ARB_OK || alen != blen ||
        memcmp(a, b, alen))
        abort();
    free(a);
    free(b);
    gw_rm_free(rm);
    gw_rm_free(again);
    gw_marks_free(&ev);
    gw_marks_free(&tr);
    gw_marks_free(&ev2);
    gw_marks_free(&tr2);
}

/* Each 6 bytes: an order event or a trade, of one of 16 orders. */
static gw_read_model *build(const uint8_t *p, size_t n, gw_marks *ev, gw_marks *tr)
{
    gw_read_model *rm = gw_rm_new(&table, id.trade_history, id.order_history);
    if (!rm)
        abort();
    uint64_t seq = 0;
    for (size_t i = 0; i + 6 <= n; i += 6) {
        const uint8_t *r = p + i;
        int inst = r[1] & 1;
        if (r[0] & 0x80) {
            arb_trade t;
            memset(&t, 0, sizeof t);
            arb_fixstr_set(t.venue, ARB_VENUE_LEN, items[inst].venue);
            arb_fixstr_set(t.symbol, ARB_SYMBOL_LEN, items[inst].symbol);
            t.trade_id = i;
            t.price = 100 + r[2];
            t.qty = 1 + r[3];
            t.buy_account = r[4] & 7;
            t.sell_account = r[5] & 7;
            t.aggressor = (uint8_t)(1 + (r[1] >> 7));
            gw_rm_apply_trade(rm, &t);
            gw_marks_take(tr, 0, (int64_t)i);
            continue;
        }
        arb_order_event e;
        memset(&e, 0, sizeof e);
        e.kind = (uint8_t)(1 + r[0] % ARB_EV_KIND_MAX);
        e.side = (uint8_t)(1 + (r[1] >> 7));
        e.type = ARB_ORD_LIMIT;
        e.tif = ARB_TIF_GTC;
        arb_fixstr_set(e.venue, ARB_VENUE_LEN, items[inst].venue);
        arb_fixstr_set(e.symbol, ARB_SYMBOL_LEN, items[inst].symbol);
        e.order_id = (r[2] & 1 ? id.id_space : 3) << 48 | (r[2] >> 1);
        e.account = 1 + (r[3] & 3);
        e.price = 100 + r[4];
        e.qty = 10;
        e.leaves_qty = r[5] % 11;
        e.filled_qty = 10 - e.leaves_qty;
        e.last_qty = r[5] & 1;
        e.last_px = e.price;
        e.trade_id = i;
        e.seq = (r[1] & 0x40) ? seq : ++seq; /* now and then a repeat */
        e.ts = (int64_t)i * 1000;
        gw_order *o = gw_rm_order(rm, e.order_id);
        if (!o && e.order_id >> 48 == id.id_space) {
            gw_order_request rq;
            memset(&rq, 0, sizeof rq);
            rq.instrument = &items[inst];
            rq.side = e.side, rq.type = e.type, rq.tif = e.tif;
            rq.price = e.price, rq.qty = e.qty;
            gw_rm_order_add(rm, e.order_id, e.account, &rq, e.ts);
        }
        gw_rm_apply_event(rm, &e, &o);
        gw_marks_take(ev, r[1] & 3, (int64_t)i);
    }
    return rm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 3;
    data++, size--;
    if (mode == 0) {
        check(data, size);
    } else if (mode == 1 && size >= 3) {
        gw_marks ev = {0}, tr = {0};
        gw_read_model *rm = build(data + 3, size - 3, &ev, &tr);
        uint8_t *bytes;
        size_t len;
        if (gw_snapshot_encode(rm, &id, &ev, &tr, &bytes, &len) != ARB_OK)
            abort();
        check(bytes, len); /* untouched: it must decode */
        gw_read_model *back;
        gw_marks ev2, tr2;
        char why[256];
        if (gw_snapshot_decode(bytes, len, &id, &table, &back, &ev2, &tr2, why, sizeof why) !=
            ARB_OK)
            abort();
        gw_rm_free(back);
        gw_marks_free(&ev2);
        gw_marks_free(&tr2);
        bytes[(data[0] | (size_t)data[1] << 8) % len] ^= (uint8_t)(data[2] | 1);
        check(bytes, len);
        free(bytes);
        gw_rm_free(rm);
        gw_marks_free(&ev);
        gw_marks_free(&tr);
    } else if (mode == 2) {
        gw_snap_whole w = {0};
        while (size >= 2) {
            size_t n = data[0] | (size_t)data[1] << 8;
            data += 2, size -= 2;
            if (n > size)
                n = size;
            gw_snap_chunk c;
            if (gw_snap_chunk_get(data, n, &c) == ARB_OK && gw_snap_whole_add(&w, &c) == ARB_OK &&
                w.next == w.count) {
                if (w.len != w.total)
                    abort();
                check(w.bytes, w.len);
                break;
            }
            data += n, size -= n;
        }
        gw_snap_whole_free(&w);
    }
    return 0;
}
