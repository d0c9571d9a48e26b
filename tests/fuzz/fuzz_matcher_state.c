/*
 * fuzz_matcher_state.c -- libFuzzer target for the matcher plugin's saved
 * state, the bytes a hot reload hands the new code: formats 1 to 3, each
 * partition's header, engine state and event fence, and the output backlog.
 * The matcher runs on the fake host of the agent tests. The first byte picks
 * the mode:
 *   0..2  the rest as a state of format 1, 2 or 3
 *   3     a valid state (the rest as a script of order commands through a
 *         matcher), one byte flipped where the input says
 *   4     a valid state whose partition gets the rest as its event fence
 * A restore must refuse, or yield a matcher whose state saves again and
 * restores into another to the same bytes; nothing may crash or leak.
 * Not here: the engine's own state (fuzz_book), snapshots read from Kafka
 * (the same engine restore).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arb/wire.h>

#include "../unit/test_agent_fakehost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const struct arb_plugin *arb_plugin_entry(void);

/* The saved state's layout (matcher_plugin.c): a 16-byte header, then per
 * partition a 104-byte header with its flags at +4 and its engine length at
 * +88, the engine, and with flag 8 the event fence. */
#define STATE_HDR 16u
#define PART_HDR 104u

typedef struct rig {
    fakehost *fh;
    fh_ctx *c;
    void *m;
} rig;

static void rig_new(rig *r)
{
    r->fh = fh_new();
    const char *secs[] = {"instrument XA:BTCUSD", "instrument XB:BTCUSD"};
    const char *keys[][2] = {{"price_decimals", "2"}, {"tick_size", "0.01"}, {"qty_decimals", "0"},
                             {"lot_size", "1"},       {"min_qty", "1"},      {"max_qty", "1000"},
                             {"ref_price", "100.00"}, {"band_bps", "5000"}};
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            fh_set(r->fh, secs[i], keys[k][0], keys[k][1]);
    r->c = fh_ctx_new(r->fh, "matcher");
    if (arb_plugin_entry()->create(&r->c->ctx, &r->m))
        abort();
}

static void rig_free(rig *r)
{
    const arb_plugin *p = arb_plugin_entry();
    p->stop(r->m);
    p->destroy(r->m);
    fh_free(r->fh);
    free(r->c);
}

/* Restores bytes of a format; on success the state must round-trip. */
static void check(const void *bytes, size_t len, uint32_t format)
{
    const arb_plugin *p = arb_plugin_entry();
    rig a;
    rig_new(&a);
    /* As a reload runs them: create, restore, start; a later reload saves. */
    if (p->restore(a.m, format, bytes, len) == ARB_OK) {
        void *s1, *s2;
        size_t l1, l2;
        if (p->start(a.m) || p->save(a.m, &s1, &l1))
            abort();
        rig b;
        rig_new(&b);
        if (p->restore(b.m, p->state_version, s1, l1) || p->start(b.m) || p->save(b.m, &s2, &l2))
            abort();
        if (l1 != l2 || memcmp(s1, s2, l1))
            abort();
        free(s1);
        free(s2);
        rig_free(&b);
    }
    rig_free(&a);
}

/* A matcher that ran the input as order commands; its saved state. */
static void *valid_state(const uint8_t *data, size_t size, size_t *len)
{
    const arb_plugin *p = arb_plugin_entry();
    rig r;
    rig_new(&r);
    if (p->start(r.m))
        abort();
    arb_ctx *ctx = &r.c->ctx;
    int topic = arb_topic(ctx, "order_commands");
    uint8_t buf[ARB_ORDER_CMD_LEN];
    for (size_t i = 0; i + 4 <= size && i < 4 * 64; i += 4) {
        const uint8_t *b = data + i;
        arb_order_cmd c = {.action = (uint8_t)(b[0] % 3 == 0 ? ARB_CMD_CANCEL : ARB_CMD_NEW),
                           .side = (uint8_t)(b[0] & 4 ? ARB_SIDE_SELL : ARB_SIDE_BUY),
                           .type = ARB_ORD_LIMIT,
                           .tif = (uint8_t)(b[0] & 8 ? ARB_TIF_IOC : ARB_TIF_GTC)};
        arb_fixstr_set(c.venue, ARB_VENUE_LEN, b[0] & 16 ? "XB" : "XA");
        arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
        c.order_id = 1 + b[1] % 32;
        c.account = 1 + (b[0] >> 5);
        c.price = 9990 + b[2] % 20;
        c.qty = 1 + b[3] % 5;
        c.ts = (int64_t)i + 1;
        uint32_t n = arb_order_cmd_encode(&c, buf, sizeof buf);
        arb_publish(ctx, topic, arb_instrument_key(c.venue, c.symbol), buf, n);
        fh_drain(r.fh);
    }
    void *bytes;
    if (p->save(r.m, &bytes, len))
        abort();
    rig_free(&r);
    return bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0] % 5;
    data++, size--;
    if (mode <= 2) {
        check(data, size, mode + 1u);
        return 0;
    }
    size_t len;
    uint8_t *s = valid_state(data, size, &len);
    if (mode == 3 && size >= 2) {
        s[(data[0] | (size_t)data[1] << 8) % len] ^= (uint8_t)(data[size - 1] | 1);
        check(s, len, arb_plugin_entry()->state_version);
    } else if (mode == 4 && len >= STATE_HDR + PART_HDR) {
        /* The first partition: flag 8, and the input as its event fence. */
        uint8_t *h = s + STATE_HDR;
        uint64_t eng = arb_get_u64(h + 88);
        size_t at = STATE_HDR + PART_HDR + (size_t)eng;
        if (at <= len) {
            uint8_t *t = malloc(len + size);
            memcpy(t, s, at);
            memcpy(t + at, data, size);
            memcpy(t + at + size, s + at, len - at);
            arb_put_u32(t + STATE_HDR + 4, arb_get_u32(h + 4) | 8u);
            check(t, len + size, arb_plugin_entry()->state_version);
            free(t);
        }
    }
    free(s);
    return 0;
}
