/*
 * digest.c -- a fingerprint of the trade_executed byte stream.
 *
 *   [plugin digest]
 *   load = digest.so
 *
 *   table = true                  the run's figures after the digest line
 *   report = FILE                 and as JSON in FILE (arbctl compare reads it)
 *   bucket_s = 10                 simulated seconds per bucket (Sharpe-like ratio)
 *
 * Hashes every trade_executed record, in delivery order, with 64-bit FNV-1a
 * over (length, bytes) and at stop prints one line on stdout:
 *   trade_digest=<16 hex digits> trades=<n>
 * Two runs of a deterministic config print the same line; any difference in
 * any trade (price, quantity, ids, timestamps, order) changes it. The digest
 * survives a hot reload of this plugin. Not a checksum for security.
 *
 * After the line, a short table of the run's figures per agent and venue
 * (sdk/arb/run_report.h, the same figures `arbctl report` reads from
 * PostgreSQL). Agents are named after the config's [plugin NAME] sections
 * that have an `account` (and `population`). The JSON report also carries
 * the market's fingerprint: a digest of market_events (the generator's
 * output, which no agent changes) and the run's seed, so `arbctl compare`
 * can say whether two runs traded the same market. The figures cover what
 * this instance saw: a hot reload of the digest starts them again.
 */
#include <arb/instrument.h>
#include <arb/plugin.h>
#include <arb/run_report.h>
#include <arb/wire.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* The run's figures. */
    int table;
    const char *report_path;
    uint64_t market_hash, market_events;
    arb_instrument_table instruments;
    arb_rr rr;
    uint64_t bad_records;
    /* The report's index of each instrument seen, by its wire fields: the
     * lookup runs for every order event. */
    struct {
        char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
        int index;
    } seen[ARB_RR_MAX_INSTR];
    int n_seen;
} trade_digest;

static uint64_t fnv_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * DIGEST_PRIME;
    return h;
}

static uint64_t fnv_record(uint64_t h, const arb_msg *m)
{
    uint8_t len[4];
    arb_put_u32(len, m->len);
    h = fnv_bytes(h, len, sizeof len);
    return fnv_bytes(h, m->data, m->len);
}

/* The report's index of a wire record's instrument (fixed-width fields). */
static int report_instrument(trade_digest *d, const char *venue_field, const char *symbol_field)
{
    for (int i = 0; i < d->n_seen; i++)
        if (!memcmp(d->seen[i].venue, venue_field, ARB_VENUE_LEN) &&
            !memcmp(d->seen[i].symbol, symbol_field, ARB_SYMBOL_LEN))
            return d->seen[i].index;
    char venue[ARB_VENUE_LEN + 1], symbol[ARB_SYMBOL_LEN + 1];
    snprintf(venue, sizeof venue, "%.*s", (int)ARB_VENUE_LEN, venue_field);
    snprintf(symbol, sizeof symbol, "%.*s", (int)ARB_SYMBOL_LEN, symbol_field);
    const arb_instrument *in = arb_instrument_find(&d->instruments, venue, symbol);
    int index =
        in ? arb_rr_instrument(&d->rr, venue, symbol, in->price_decimals, in->qty_decimals) : -1;
    if (d->n_seen < ARB_RR_MAX_INSTR) {
        memcpy(d->seen[d->n_seen].venue, venue_field, ARB_VENUE_LEN);
        memcpy(d->seen[d->n_seen].symbol, symbol_field, ARB_SYMBOL_LEN);
        d->seen[d->n_seen++].index = index;
    }
    return index;
}

static void on_trade(void *user, const arb_msg *m)
{
    trade_digest *d = user;
    d->hash = fnv_record(d->hash, m);
    d->trades++;
    arb_gauge_set(d->trades_metric, (int64_t)d->trades);
    arb_trade t;
    if (arb_trade_decode(m->data, m->len, &t) != 0) {
        d->bad_records++;
        return;
    }
    arb_rr_trade(&d->rr, report_instrument(d, t.venue, t.symbol), t.price, t.qty, t.ts);
}

static void on_order_event(void *user, const arb_msg *m)
{
    trade_digest *d = user;
    arb_order_event e;
    if (arb_order_event_decode(m->data, m->len, &e) != 0) {
        d->bad_records++;
        return;
    }
    /* e.fee: this fill's fee in price units (0 in version 1 records). */
    arb_rr_order_event(&d->rr, report_instrument(d, e.venue, e.symbol), e.order_id, e.account,
                       e.kind, e.side, e.price, e.leaves_qty, e.last_px, e.last_qty, e.fee, e.ts);
}

static void on_market_event(void *user, const arb_msg *m)
{
    trade_digest *d = user;
    d->market_hash = fnv_record(d->market_hash, m);
    d->market_events++;
}

/* Every [plugin NAME] section with an `account` is an agent. */
static int name_agent(void *user, const char *section, const char *unused)
{
    (void)unused;
    trade_digest *d = user;
    int64_t account = 0, population = 1;
    if (arb_cfg_int_in(d->ctx, section, "account", 0, 0, INT64_MAX, &account) != ARB_OK || !account)
        return 0;
    arb_cfg_int_in(d->ctx, section, "population", 1, 1, INT64_MAX, &population);
    arb_rr_agent_add(&d->rr, section + strlen("plugin "), (uint64_t)account, (uint64_t)population);
    return 0;
}

static int digest_create(arb_ctx *ctx, void **self)
{
    trade_digest *d = calloc(1, sizeof *d);
    if (!d)
        return ARB_ENOMEM;
    d->ctx = ctx;
    d->hash = DIGEST_OFFSET;
    d->market_hash = DIGEST_OFFSET;
    d->trades_metric =
        arb_gauge_new(ctx, "trade_digest_trades", NULL, "Trades hashed so far (count)");
    int64_t bucket_s = 10;
    int rc = arb_cfg_bool(ctx, "table", 1, &d->table);
    if (rc == ARB_OK)
        rc = arb_cfg_str(ctx, "report", "", &d->report_path);
    if (rc == ARB_OK)
        rc = arb_cfg_int(ctx, "bucket_s", 10, 1, 86400, &bucket_s);
    if (rc == ARB_OK)
        rc = arb_instruments_load(ctx, &d->instruments);
    if (rc != ARB_OK) {
        free(d);
        return rc;
    }
    arb_rr_init(&d->rr, bucket_s * 1000000000LL);
    arb_cfg_sections(ctx, "plugin ", name_agent, d);
    *self = d;
    return ARB_OK;
}

static int digest_start(void *self)
{
    trade_digest *d = self;
    int rc = arb_subscribe(d->ctx, ARB_TOPIC_TRADE_EXECUTED, on_trade, d);
    /* The figures only when they are printed or written. */
    if (rc >= 0 && (d->table || d->report_path[0]))
        rc = arb_subscribe(d->ctx, ARB_TOPIC_ORDER_EVENTS, on_order_event, d);
    /* The market's fingerprint is only in the JSON report. */
    if (rc >= 0 && d->report_path[0])
        rc = arb_subscribe(d->ctx, ARB_TOPIC_MARKET_EVENTS, on_market_event, d);
    return rc < 0 ? rc : ARB_OK;
}

static void write_report(trade_digest *d)
{
    arb_run_info run;
    arb_run(d->ctx, &run);
    char seed[64] = "";
    const char *sv = NULL;
    if (arb_cfg_str_in(d->ctx, "plugin generator", "seed", "", &sv) == ARB_OK && sv)
        snprintf(seed, sizeof seed, "%s", sv);
    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"source\":\"simulation\",\"run_id\":%lld,\"seed\":\"%s\","
             "\"market_digest\":\"%016llx\",\"market_events\":%llu,"
             "\"trade_digest\":\"%016llx\",\"trades\":%llu}",
             (long long)run.id, seed, (unsigned long long)d->market_hash,
             (unsigned long long)d->market_events, (unsigned long long)d->hash,
             (unsigned long long)d->trades);
    FILE *f = fopen(d->report_path, "w");
    if (!f) {
        arb_error(d->ctx, "report: cannot write %s", d->report_path);
        return;
    }
    arb_rr_print_json(&d->rr, f, meta);
    if (fclose(f) != 0)
        arb_error(d->ctx, "report: cannot write %s", d->report_path);
}

static void digest_stop(void *self)
{
    trade_digest *d = self;
    /* A reload saves, then stops the old instance: the new one prints. */
    if (d->saved && d->saved_at == d->trades)
        return;
    printf("trade_digest=%016llx trades=%llu\n", (unsigned long long)d->hash,
           (unsigned long long)d->trades);
    arb_rr_finish(&d->rr);
    if (d->table)
        arb_rr_print_table(&d->rr, stdout);
    fflush(stdout);
    if (d->report_path[0])
        write_report(d);
}

static void digest_destroy(void *self)
{
    trade_digest *d = self;
    arb_rr_free(&d->rr);
    arb_instruments_free(&d->instruments);
    free(d);
}

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
static const char *const digest_subscribes[] = {"trade_executed", "order_events", "market_events",
                                                NULL};

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
