/*
 * fuzz_agent_restore.c -- libFuzzer target for the simulation's parsers of
 * untrusted bytes: arb_agent_restore (hot-reload state), the market model's
 * mm_restore, the bandit's state, and the agent's handling of arbitrary
 * order_events and market data. The first byte picks the mode:
 *   0  raw bytes as an agent state
 *   1  raw bytes as a market-model state
 *   2  raw bytes as a bandit state
 *   3  raw bytes as a stream of order_events / market_data for an agent
 *   4  a valid agent state (built from the input as a script of orders and
 *      fills), with one byte flipped where the input says, restored
 * Restores must either refuse or yield an agent whose table is consistent
 * and whose state saves again; nothing may crash or leak.
 */
#include <stddef.h>
#include <stdint.h>

#include <arb/agent.h>

#include "../../plugins/agents/adaptive/bandit.h"
#include "../../plugins/generator/market_model.h"
#include "../unit/test_agent_fakehost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void make_agent(fakehost **fh, fh_ctx **c, arb_agent *a)
{
    *fh = fh_new();
    const char *secs[] = {"instrument XA:BTCUSD", "instrument XB:BTCUSD"};
    for (int i = 0; i < 2; i++) {
        fh_set(*fh, secs[i], "price_decimals", "2");
        fh_set(*fh, secs[i], "ref_price", "100.00");
    }
    *c = fh_ctx_new(*fh, "fuzz");
    fh_set_plugin(*fh, "fuzz", "account", "100");
    fh_set_plugin(*fh, "fuzz", "population", "3");
    fh_set_plugin(*fh, "fuzz", "instruments", "XA:BTCUSD XB:BTCUSD");
    fh_set_plugin(*fh, "fuzz", "fee_bps", "3");
    if (arb_agent_init(a, &(*c)->ctx))
        abort();
}

static void check_agent(arb_agent *a)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->cap; i++)
        if (a->slots[i].order_id) {
            n++;
            if (arb_agent_order_find(a, a->slots[i].order_id) != &a->slots[i])
                abort();
        }
    if (n != a->count)
        abort();
    void *bytes;
    size_t len;
    if (arb_agent_save(a, NULL, 0, &bytes, &len))
        abort();
    free(bytes);
}

static void restore_agent(const uint8_t *data, size_t size)
{
    fakehost *fh;
    fh_ctx *c;
    arb_agent a;
    make_agent(&fh, &c, &a);
    const void *x;
    size_t xl;
    if (arb_agent_restore(&a, data, size, &x, &xl) == ARB_OK) {
        if (xl && (const uint8_t *)x + xl != data + size)
            abort();
        check_agent(&a);
        arb_agent_cancel_expired(&a, INT64_MAX);
        arb_agent_total_pnl(&a);
    }
    arb_agent_free(&a);
    free(c);
    fh_free(fh);
}

static void restore_model(const uint8_t *data, size_t size)
{
    mm_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_assets = 2;
    cfg.n_venues = 2;
    snprintf(cfg.venues[0].name, sizeof cfg.venues[0].name, "XA");
    snprintf(cfg.venues[1].name, sizeof cfg.venues[1].name, "XB");
    cfg.venues[1].lag_ns = 30000000;
    for (int i = 0; i < 2; i++) {
        snprintf(cfg.assets[i].symbol, sizeof cfg.assets[i].symbol, "S%d", i);
        cfg.assets[i].start = 10000;
        cfg.assets[i].tick[0] = cfg.assets[i].tick[1] = 1;
        cfg.assets[i].volatility_bps = 10;
    }
    market_model m;
    const char *why;
    if (mm_init(&m, &cfg, &why))
        abort();
    if (mm_restore(&m, data, size) == ARB_OK) {
        void *bytes;
        size_t len;
        if (mm_save(&m, &bytes, &len))
            abort();
        free(bytes);
    }
    mm_free(&m);
}

static void restore_bandit(const uint8_t *data, size_t size)
{
    const int64_t arms[3] = {1, 2, 3};
    bandit b;
    bandit_init(&b, 3, arms);
    if (bandit_decode(&b, data, size) == ARB_OK) {
        arb_rng r;
        arb_rng_seed(&r, 1, NULL);
        if (bandit_choose(&b, &r, 500000) >= 3)
            abort();
    }
}

static void feed_events(const uint8_t *data, size_t size)
{
    fakehost *fh;
    fh_ctx *c;
    arb_agent a;
    make_agent(&fh, &c, &a);
    /* Some orders to hit: ids from the agent, so events can name them. */
    uint64_t ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = arb_agent_limit(&a, i & 1, i & 2 ? ARB_SIDE_SELL : ARB_SIDE_BUY, 10000, 10);
    /* Each 24-byte chunk: kind, side, order pick, account pick, px, qty... */
    for (size_t off = 0; off + 24 <= size; off += 24) {
        const uint8_t *p = data + off;
        if (p[0] & 0x80) {
            arb_market_data md;
            memset(&md, 0, sizeof md);
            memcpy(md.venue, a.instr[p[1] & 1].venue_f, ARB_VENUE_LEN);
            memcpy(md.symbol, a.instr[p[1] & 1].symbol_f, ARB_SYMBOL_LEN);
            md.book_seq = p[2];
            md.bid_px = (int64_t)arb_get_u32(p + 4);
            md.bid_qty = p[8];
            md.ask_px = (int64_t)arb_get_u32(p + 12);
            md.ask_qty = p[16];
            arb_agent_on_market_data(&a, &md);
            continue;
        }
        arb_order_event ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = (uint8_t)(p[0] % 8);
        ev.reason = p[1] % 19;
        ev.side = (uint8_t)(p[2] % 3);
        ev.order_id = p[3] < 200 ? ids[p[3] % 8] : arb_get_u64(p + 4);
        ev.account = 99 + p[12] % 5;
        ev.last_px = (int64_t)(int32_t)arb_get_u32(p + 13);
        ev.last_qty = (int8_t)p[17];
        ev.filled_qty = (int8_t)p[18];
        ev.leaves_qty = (int8_t)p[19];
        ev.price = (int64_t)(int32_t)arb_get_u32(p + 20);
        ev.qty = p[22];
        arb_agent_on_order_event(&a, &ev);
    }
    check_agent(&a);
    arb_agent_free(&a);
    free(c);
    fh_free(fh);
}

static void flip_and_restore(const uint8_t *data, size_t size)
{
    fakehost *fh;
    fh_ctx *c;
    arb_agent a;
    make_agent(&fh, &c, &a);
    for (size_t i = 2; i + 2 < size && i < 64; i += 3) {
        uint64_t id = arb_agent_limit(&a, data[i] & 1, data[i] & 2 ? ARB_SIDE_SELL : ARB_SIDE_BUY,
                                      10000 + data[i + 1], 1 + data[i + 2]);
        if (data[i] & 4) {
            arb_order_event ev;
            memset(&ev, 0, sizeof ev);
            ev.kind = ARB_EV_PARTIAL;
            ev.order_id = id;
            ev.account = 100;
            ev.last_px = 10000;
            ev.last_qty = ev.filled_qty = 1;
            ev.leaves_qty = data[i + 2];
            arb_agent_on_order_event(&a, &ev);
        }
    }
    void *bytes;
    size_t len;
    if (arb_agent_save(&a, data, size > 16 ? 16 : size, &bytes, &len))
        abort();
    if (size > 1)
        ((uint8_t *)bytes)[data[1] % len] ^= (uint8_t)(1u << (size % 8));
    restore_agent(bytes, len);
    free(bytes);
    arb_agent_free(&a);
    free(c);
    fh_free(fh);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 5) {
    case 0: restore_agent(data + 1, size - 1); break;
    case 1: restore_model(data + 1, size - 1); break;
    case 2: restore_bandit(data + 1, size - 1); break;
    case 3: feed_events(data + 1, size - 1); break;
    default: flip_and_restore(data, size); break;
    }
    return 0;
}
