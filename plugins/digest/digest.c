/*
 * digest.c -- a fingerprint of the trade_executed byte stream.
 *
 *   [plugin digest]
 *   load = digest.so
 *
 * Hashes every trade_executed record, in delivery order, with 64-bit FNV-1a
 * over (length, bytes) and at stop prints one line on stdout:
 *   trade_digest=<16 hex digits> trades=<n>
 * Two runs of a deterministic config print the same line; any difference in
 * any trade (price, quantity, ids, timestamps, order) changes it. The digest
 * survives a hot reload of this plugin. Not a checksum for security, and it
 * does not decode or judge the trades.
 */
#include <arb/plugin.h>
#include <arb/wire.h>
#include <stdio.h>
#include <stdlib.h>

#define DIGEST_STATE_VERSION 1u
#define DIGEST_OFFSET 1469598103934665603ull
#define DIGEST_PRIME 1099511628211ull

typedef struct trade_digest {
    arb_ctx *ctx;
    uint64_t hash;
    uint64_t trades;
    uint64_t saved_at; /* trades when save() ran: a reload is replacing us */
    int saved;
    arb_gauge *trades_metric;
} trade_digest;

static uint64_t fnv_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * DIGEST_PRIME;
    return h;
}

static void on_trade(void *user, const arb_msg *m)
{
    trade_digest *d = user;
    uint8_t len[4];
    arb_put_u32(len, m->len);
    d->hash = fnv_bytes(d->hash, len, sizeof len);
    d->hash = fnv_bytes(d->hash, m->data, m->len);
    d->trades++;
    arb_gauge_set(d->trades_metric, (int64_t)d->trades);
}

static int digest_create(arb_ctx *ctx, void **self)
{
    trade_digest *d = calloc(1, sizeof *d);
    if (!d)
        return ARB_ENOMEM;
    d->ctx = ctx;
    d->hash = DIGEST_OFFSET;
    d->trades_metric = arb_gauge_new(ctx, "trade_digest_trades", NULL, "Trades hashed so far");
    *self = d;
    return ARB_OK;
}

static int digest_start(void *self)
{
    trade_digest *d = self;
    int rc = arb_subscribe(d->ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, d);
    return rc < 0 ? rc : ARB_OK;
}

static void digest_stop(void *self)
{
    trade_digest *d = self;
    /* A reload saves, then stops the old instance: the new one prints. */
    if (d->saved && d->saved_at == d->trades)
        return;
    printf("trade_digest=%016llx trades=%llu\n", (unsigned long long)d->hash,
           (unsigned long long)d->trades);
    fflush(stdout);
}

static void digest_destroy(void *self) { free(self); }

static int digest_save(void *self, void **bytes, size_t *len)
{
    trade_digest *d = self;
    uint8_t *p = malloc(16);
    if (!p)
        return ARB_ENOMEM;
    arb_put_u64(p, d->hash);
    arb_put_u64(p + 8, d->trades);
    d->saved = 1;
    d->saved_at = d->trades;
    *bytes = p;
    *len = 16;
    return ARB_OK;
}

static int digest_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    trade_digest *d = self;
    if (version != DIGEST_STATE_VERSION || len != 16)
        return ARB_EREFUSED;
    d->hash = arb_get_u64(bytes);
    d->trades = arb_get_u64((const uint8_t *)bytes + 8);
    return ARB_OK;
}

static const char *const digest_publishes[] = {NULL};
static const char *const digest_subscribes[] = {"trade_executed", NULL};

static const arb_plugin digest_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "digest",
    .version = "1.0.0",
    .state_version = DIGEST_STATE_VERSION,
    .publishes = digest_publishes,
    .subscribes = digest_subscribes,
    .create = digest_create,
    .start = digest_start,
    .stop = digest_stop,
    .destroy = digest_destroy,
    .save = digest_save,
    .restore = digest_restore,
};

ARB_PLUGIN_DEFINE(digest_plugin)
