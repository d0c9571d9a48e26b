/*
 * generator.c -- the market generator plugin: on every system tick it steps
 * the market model and publishes market_events (fair values, each venue's
 * view, news shocks), keyed by venue/symbol.
 *
 *   [plugin generator]
 *   load = generator.so
 *   seed = 42
 *   symbols = BTCUSD ETHUSD     ; assets; each needs [instrument VENUE:SYMBOL]
 *   venues = XA XB              ;   for every venue listed here
 *   volatility_bps = 10         ; diffusion std per sqrt(simulated second)
 *   jump_rate = 0.2             ; jumps per simulated second
 *   jump_bps = 15               ; std of a jump
 *   shock_rate = 0.01           ; news shocks per simulated second
 *   shock_bps = 150             ; typical shock size (0.5x to 1.5x, either way)
 *   lag_ms = 0 30               ; per venue: how late it sees the fair value
 *   noise_bps = 0.5 1           ; per venue: std of its noise
 * Per-asset keys take one value for all assets or one per asset; per-venue
 * keys one for all venues or one per venue. An asset starts at the ref_price
 * of its first venue's instrument; every venue of an asset must use the same
 * price_decimals. Values are price units on each venue's tick grid.
 *
 * Not here: the model itself (market_model.c).
 */
#include <arb/agent.h>
#include <arb/instrument.h>
#include <arb/plugin.h>
#include <arb/wire.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "market_model.h"

#define GEN_STATE_VERSION 1u

typedef struct generator {
    arb_ctx *ctx;
    market_model model;
    arb_counter *events_metric, *refused_metric, *shocks_metric;
    arb_gauge *fair_metric[MM_MAX_ASSETS];
} generator;

/* ---- config ---- */

typedef struct name_list {
    char names[MM_MAX_ASSETS][ARB_SYMBOL_LEN + 1];
    size_t n, max;
    int bad;
} name_list;

static int add_name(void *u, const char *tok)
{
    name_list *l = u;
    if (l->n == l->max || strlen(tok) > ARB_SYMBOL_LEN) {
        l->bad = 1;
        return 1;
    }
    snprintf(l->names[l->n++], sizeof l->names[0], "%s", tok);
    return 0;
}

typedef struct num_list {
    double v[MM_MAX_ASSETS];
    size_t n;
    int bad;
} num_list;

static int add_num(void *u, const char *tok)
{
    num_list *l = u;
    char *end;
    double x = strtod(tok, &end);
    if (*end || end == tok || l->n == MM_MAX_ASSETS || !(x >= 0) || x > 1e9) {
        l->bad = 1;
        return 1;
    }
    l->v[l->n++] = x;
    return 0;
}

/* Reads `key` as one non-negative number for all, or exactly `count`. */
static int read_numbers(arb_ctx *ctx, const char *key, const char *def, size_t count, double *out)
{
    const char *s;
    int rc = arb_cfg_str(ctx, key, def, &s);
    if (rc)
        return rc;
    num_list l = {{0}, 0, 0};
    arb_agent_split(s, add_num, &l);
    if (l.bad || (l.n != 1 && l.n != count))
        return arb_cfg_reject(ctx, key, "'%s': expected one non-negative number, or %zu of them", s,
                              count);
    for (size_t i = 0; i < count; i++)
        out[i] = l.v[l.n == 1 ? 0 : i];
    return ARB_OK;
}

static int read_names(arb_ctx *ctx, const char *key, size_t max, name_list *l)
{
    const char *s;
    int rc = arb_cfg_str(ctx, key, "", &s);
    if (rc)
        return rc;
    memset(l, 0, sizeof *l);
    l->max = max;
    arb_agent_split(s, add_name, l);
    if (l->bad || l->n == 0)
        return arb_cfg_reject(ctx, key, "'%s': expected 1 to %zu names", s, max);
    return ARB_OK;
}

static int read_config(arb_ctx *ctx, mm_config *cfg)
{
    name_list syms, vens;
    int64_t seed;
    int rc;
    memset(cfg, 0, sizeof *cfg);
    if ((rc = arb_cfg_int(ctx, "seed", 1, INT64_MIN, INT64_MAX, &seed)) ||
        (rc = read_names(ctx, "symbols", MM_MAX_ASSETS, &syms)) ||
        (rc = read_names(ctx, "venues", MM_MAX_VENUES, &vens)))
        return rc;
    cfg->seed = (uint64_t)seed;
    cfg->stream = arb_instance_name(ctx);
    cfg->n_assets = syms.n;
    cfg->n_venues = vens.n;
    double vol[MM_MAX_ASSETS], jr[MM_MAX_ASSETS], jb[MM_MAX_ASSETS], sr[MM_MAX_ASSETS],
        sb[MM_MAX_ASSETS], lag[MM_MAX_ASSETS], noise[MM_MAX_ASSETS];
    if ((rc = read_numbers(ctx, "volatility_bps", "10", syms.n, vol)) ||
        (rc = read_numbers(ctx, "jump_rate", "0.2", syms.n, jr)) ||
        (rc = read_numbers(ctx, "jump_bps", "15", syms.n, jb)) ||
        (rc = read_numbers(ctx, "shock_rate", "0.01", syms.n, sr)) ||
        (rc = read_numbers(ctx, "shock_bps", "150", syms.n, sb)) ||
        (rc = read_numbers(ctx, "lag_ms", "0", vens.n, lag)) ||
        (rc = read_numbers(ctx, "noise_bps", "0", vens.n, noise)))
        return rc;
    for (size_t v = 0; v < vens.n; v++) {
        if (strlen(vens.names[v]) > ARB_VENUE_LEN)
            return arb_cfg_reject(ctx, "venues", "'%s' is longer than %u characters", vens.names[v],
                                  ARB_VENUE_LEN);
        snprintf(cfg->venues[v].name, sizeof cfg->venues[v].name, "%s", vens.names[v]);
        cfg->venues[v].lag_ns = (int64_t)(lag[v] * 1e6);
        cfg->venues[v].noise_bps = noise[v];
    }
    arb_instrument_table table;
    if ((rc = arb_instruments_load(ctx, &table)))
        return rc;
    for (size_t i = 0; i < syms.n && rc == ARB_OK; i++) {
        mm_asset_config *a = &cfg->assets[i];
        snprintf(a->symbol, sizeof a->symbol, "%s", syms.names[i]);
        a->volatility_bps = vol[i];
        a->jump_rate = jr[i], a->jump_bps = jb[i];
        a->shock_rate = sr[i], a->shock_bps = sb[i];
        int decimals = -1;
        for (size_t v = 0; v < vens.n; v++) {
            const arb_instrument *in = arb_instrument_find(&table, vens.names[v], a->symbol);
            if (!in) {
                rc = arb_cfg_reject(ctx, "symbols", "no [instrument %s:%s] section", vens.names[v],
                                    a->symbol);
                break;
            }
            if (decimals >= 0 && in->price_decimals != decimals) {
                rc = arb_cfg_reject(ctx, "symbols",
                                    "%s trades with different price_decimals on different venues",
                                    a->symbol);
                break;
            }
            if (decimals < 0) {
                decimals = in->price_decimals;
                a->start = in->ref_price;
                if (a->start <= 0)
                    rc = arb_cfg_reject(ctx, "symbols",
                                        "[instrument %s:%s] needs a ref_price to start from",
                                        vens.names[v], a->symbol);
            }
            a->tick[v] = in->tick;
        }
    }
    arb_instruments_free(&table);
    return rc;
}

/* ---- plugin ---- */

static void publish_event(void *user, const arb_market_event *ev)
{
    generator *g = user;
    uint8_t buf[ARB_MARKET_EVENT_LEN];
    uint32_t n = arb_market_event_encode(ev, buf, sizeof buf);
    uint64_t key = arb_instrument_key(ev->venue, ev->symbol);
    if (arb_publish(g->ctx, ARB_TOPIC_MARKET_EVENTS, key, buf, n))
        arb_counter_add(g->refused_metric, 1);
    else
        arb_counter_add(g->events_metric, 1);
    if (ev->kind == ARB_MEV_SHOCK)
        arb_counter_add(g->shocks_metric, 1);
}

static void on_tick(void *user, const arb_msg *m)
{
    generator *g = user;
    arb_tick t;
    if (arb_tick_decode(m->data, m->len, &t))
        return;
    if (mm_step(&g->model, t.sim_ns, publish_event, g))
        arb_error(g->ctx, "out of memory stepping the market model");
    for (size_t i = 0; i < g->model.cfg.n_assets; i++)
        arb_gauge_set(g->fair_metric[i], mm_fair(&g->model, i));
}

static int gen_create(arb_ctx *ctx, void **self)
{
    generator *g = calloc(1, sizeof *g);
    if (!g)
        return ARB_ENOMEM;
    g->ctx = ctx;
    mm_config cfg;
    const char *why;
    int rc = read_config(ctx, &cfg);
    if (rc == ARB_OK && (rc = mm_init(&g->model, &cfg, &why)))
        rc = arb_cfg_reject(ctx, "symbols", "%s", why);
    if (rc) {
        mm_free(&g->model);
        free(g);
        return rc;
    }
    g->events_metric =
        arb_counter_new(ctx, "generator_events_total", NULL, "Market events published");
    g->refused_metric = arb_counter_new(ctx, "generator_events_refused_total", NULL,
                                        "Market events the bus refused");
    g->shocks_metric = arb_counter_new(ctx, "generator_shocks_total", NULL, "News shocks");
    for (size_t i = 0; i < cfg.n_assets; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "symbol=\"%s\"", cfg.assets[i].symbol);
        g->fair_metric[i] = arb_gauge_new(
            ctx, "generator_fair_value", labels,
            "Fair value, unit: price units (10^-price_decimals of the quote currency)");
    }
    *self = g;
    return ARB_OK;
}

static int gen_start(void *self)
{
    generator *g = self;
    int rc = arb_subscribe(g->ctx, ARB_TOPIC_SYSTEM_TICKS, on_tick, g);
    return rc < 0 ? rc : ARB_OK;
}

static void gen_stop(void *self) { (void)self; }

static void gen_destroy(void *self)
{
    generator *g = self;
    mm_free(&g->model);
    free(g);
}

static int gen_save(void *self, void **bytes, size_t *len)
{
    generator *g = self;
    return mm_save(&g->model, bytes, len);
}

static int gen_restore(void *self, uint32_t version, const void *bytes, size_t len)
{
    generator *g = self;
    if (version != GEN_STATE_VERSION)
        return ARB_EREFUSED;
    return mm_restore(&g->model, bytes, len);
}

static const char *const gen_publishes[] = {"market_events", NULL};
static const char *const gen_subscribes[] = {"system_ticks", NULL};

static const arb_plugin generator_plugin = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "generator",
    .version = "1.0.0",
    .state_version = GEN_STATE_VERSION,
    .publishes = gen_publishes,
    .subscribes = gen_subscribes,
    .create = gen_create,
    .start = gen_start,
    .stop = gen_stop,
    .destroy = gen_destroy,
    .save = gen_save,
    .restore = gen_restore,
};

ARB_PLUGIN_DEFINE(generator_plugin)
