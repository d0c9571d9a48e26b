/*
 * market_model.h -- the simulated market's "truth": per asset a fair value
 * following a seeded jump-diffusion, and what each venue sees of it.
 *
 * Each step (one per tick) moves every asset's fair value by a Gaussian
 * diffusion scaled by sqrt(dt), plus Poisson jumps and rarer news shocks.
 * Each venue sees the fair value as it was `lag` ago plus its own noise,
 * rounded to its tick, so cross-venue gaps open (a jump reaches the fast
 * venue first) and close (the slow one catches up). Values are integer price
 * units of the instruments; the model runs on integers except one sqrt per
 * step of IEEE doubles, which is correctly rounded and so bit-identical on
 * every machine: the same config and seed give the same values everywhere.
 *
 * Pure: no I/O, no host. The plugin (generator.c) feeds it ticks and
 * publishes what it emits.
 */
#ifndef MARKET_MODEL_H
#define MARKET_MODEL_H

#include <arb/agent.h>
#include <arb/wire.h>
#include <stddef.h>
#include <stdint.h>

#define MM_MAX_ASSETS 32
#define MM_MAX_VENUES 16
/* Fair values carry this many fractional bits internally, so small moves
 * accumulate instead of rounding away each step. */
#define MM_FP_SHIFT 16

typedef struct mm_venue_config {
    char name[ARB_VENUE_LEN + 1];
    int64_t lag_ns;
    double noise_bps; /* std of the venue's noise around the lagged value */
} mm_venue_config;

typedef struct mm_asset_config {
    char symbol[ARB_SYMBOL_LEN + 1];
    int64_t start;                /* price units */
    int64_t tick[MM_MAX_VENUES];  /* price units per tick on each venue */
    double volatility_bps;        /* diffusion std per sqrt(second) */
    double jump_rate, jump_bps;   /* jumps per simulated second, std of a jump */
    double shock_rate, shock_bps; /* news: per second, typical size */
} mm_asset_config;

typedef struct mm_config {
    uint64_t seed;
    const char *stream; /* mixed into the seed: the instance name */
    size_t n_assets, n_venues;
    mm_asset_config assets[MM_MAX_ASSETS];
    mm_venue_config venues[MM_MAX_VENUES];
} mm_config;

typedef struct mm_sample {
    int64_t at;    /* sim ns */
    int64_t value; /* price units */
} mm_sample;

typedef struct mm_asset {
    char symbol_f[ARB_SYMBOL_LEN];
    int64_t fair_fp; /* price units << MM_FP_SHIFT */
    int64_t floor_fp;
    mm_sample *hist; /* ring of past fair values, for lagged venues */
    size_t hist_cap, hist_head, hist_n;
    int64_t venue_value[MM_MAX_VENUES];
    uint64_t jumps, shocks;
} mm_asset;

typedef struct market_model {
    mm_config cfg;
    mm_asset assets[MM_MAX_ASSETS];
    char venue_f[MM_MAX_VENUES][ARB_VENUE_LEN];
    int64_t max_lag_ns;
    arb_rng rng;
    int64_t last_ns;
    uint64_t seq;
    uint64_t steps;
    int started;
} market_model;

/* Called for each event a step produces, in a fixed order: per asset, its
 * shock (if any), its fair value, then each venue's value. */
typedef void (*mm_emit_fn)(void *user, const arb_market_event *ev);

/* Validates and copies cfg; ARB_EINVAL with *why set on a bad config. */
int mm_init(market_model *m, const mm_config *cfg, const char **why);
void mm_free(market_model *m);
/* Advances the model to `now` (sim ns) and emits what changed. The first
 * call only publishes the starting values. A `now` not after the last one
 * emits nothing. Returns ARB_OK or ARB_ENOMEM. */
int mm_step(market_model *m, int64_t now, mm_emit_fn emit, void *user);
/* Fair value of asset i in price units. */
int64_t mm_fair(const market_model *m, size_t asset);

/* Hot reload: the evolving state (PRNG, fair values, history) as bytes. */
int mm_save(const market_model *m, void **bytes, size_t *len);
/* Refuses (ARB_EREFUSED) state for other assets or venues. */
int mm_restore(market_model *m, const void *bytes, size_t len);

#endif
