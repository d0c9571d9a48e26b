/*
 * market_model.c -- the jump-diffusion fair values and the venues' lagged,
 * noisy views of them. See market_model.h for the model; this file is pure.
 */
#include "market_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MM_STATE_MAGIC 0x4c45444f4d4b4d41ull /* "AMKMODEL" */
#define MM_STATE_VERSION 1u
#define Q32 4294967296.0

/* A fraction (e.g. 1e-4) in Q32, saturating at 1.0. */
static int64_t frac_q32(double f)
{
    if (!(f > 0))
        return 0;
    if (f >= 1.0)
        return (int64_t)1 << 32;
    return (int64_t)(f * Q32);
}

/* x * q32 * z32 / 2^64 without overflow: x up to 2^62, |q| <= 2^32,
 * |z| <= 6 x 2^32. */
static int64_t scale2(int64_t x, int64_t q, int64_t z)
{
    __int128 t = ((__int128)x * q) >> 32;
    return (int64_t)((t * z) >> 32);
}

static int64_t round_to_tick(int64_t v, int64_t tick)
{
    int64_t r = arb_agent_round_down(v + tick / 2, tick);
    return r < tick ? tick : r;
}

static int64_t fp_to_units(int64_t fp)
{
    return (fp + ((int64_t)1 << (MM_FP_SHIFT - 1))) >> MM_FP_SHIFT;
}

int mm_init(market_model *m, const mm_config *cfg, const char **why)
{
    memset(m, 0, sizeof *m);
    if (cfg->n_assets == 0 || cfg->n_assets > MM_MAX_ASSETS) {
        *why = "need 1 to 32 assets";
        return ARB_EINVAL;
    }
    if (cfg->n_venues == 0 || cfg->n_venues > MM_MAX_VENUES) {
        *why = "need 1 to 16 venues";
        return ARB_EINVAL;
    }
    m->cfg = *cfg;
    m->cfg.stream = NULL;
    for (size_t v = 0; v < cfg->n_venues; v++) {
        if (arb_fixstr_set(m->venue_f[v], ARB_VENUE_LEN, cfg->venues[v].name)) {
            *why = "a venue name is not 1-8 printable characters";
            return ARB_EINVAL;
        }
        if (cfg->venues[v].lag_ns < 0 || !(cfg->venues[v].noise_bps >= 0)) {
            *why = "lag and noise must not be negative";
            return ARB_EINVAL;
        }
        if (cfg->venues[v].lag_ns > m->max_lag_ns)
            m->max_lag_ns = cfg->venues[v].lag_ns;
    }
    for (size_t i = 0; i < cfg->n_assets; i++) {
        const mm_asset_config *ac = &cfg->assets[i];
        mm_asset *a = &m->assets[i];
        if (arb_fixstr_set(a->symbol_f, ARB_SYMBOL_LEN, ac->symbol)) {
            *why = "a symbol is not 1-16 printable characters";
            return ARB_EINVAL;
        }
        if (ac->start <= 0 || ac->start > ((int64_t)1 << (62 - MM_FP_SHIFT))) {
            *why = "every asset needs a positive start price (the instrument's ref_price)";
            return ARB_EINVAL;
        }
        for (size_t v = 0; v < cfg->n_venues; v++)
            if (ac->tick[v] <= 0) {
                *why = "every tick size must be positive";
                return ARB_EINVAL;
            }
        if (!(ac->volatility_bps >= 0) || !(ac->jump_rate >= 0) || !(ac->jump_bps >= 0) ||
            !(ac->shock_rate >= 0) || !(ac->shock_bps >= 0)) {
            *why = "volatility, rates and sizes must not be negative";
            return ARB_EINVAL;
        }
        a->fair_fp = ac->start << MM_FP_SHIFT;
        /* A fair value never falls below 1% of where it started. */
        a->floor_fp = (ac->start << MM_FP_SHIFT) / 100;
        if (a->floor_fp < ((int64_t)1 << MM_FP_SHIFT))
            a->floor_fp = (int64_t)1 << MM_FP_SHIFT;
    }
    arb_rng_seed(&m->rng, cfg->seed, cfg->stream);
    return ARB_OK;
}

void mm_free(market_model *m)
{
    for (size_t i = 0; i < m->cfg.n_assets; i++) {
        free(m->assets[i].hist);
        m->assets[i].hist = NULL;
    }
}

int64_t mm_fair(const market_model *m, size_t asset)
{
    return fp_to_units(m->assets[asset].fair_fp);
}

static mm_sample *hist_at(mm_asset *a, size_t k) /* k = 0: oldest */
{
    return &a->hist[(a->hist_head + k) & (a->hist_cap - 1)];
}

static int hist_push(market_model *m, mm_asset *a, int64_t at, int64_t value)
{
    if (a->hist_n == a->hist_cap) {
        size_t ncap = a->hist_cap ? a->hist_cap * 2 : 16;
        mm_sample *nh = malloc(ncap * sizeof *nh);
        if (!nh)
            return ARB_ENOMEM;
        for (size_t k = 0; k < a->hist_n; k++)
            nh[k] = *hist_at(a, k);
        free(a->hist);
        a->hist = nh;
        a->hist_cap = ncap;
        a->hist_head = 0;
    }
    a->hist[(a->hist_head + a->hist_n) & (a->hist_cap - 1)] = (mm_sample){at, value};
    a->hist_n++;
    /* Keep one sample at or before the longest lag, and everything after. */
    while (a->hist_n > 1 && hist_at(a, 1)->at <= at - m->max_lag_ns) {
        a->hist_head = (a->hist_head + 1) & (a->hist_cap - 1);
        a->hist_n--;
    }
    return ARB_OK;
}

/* The fair value as it was at time `t`: the latest sample not after it
 * (the oldest one if the history does not reach back that far). */
static int64_t hist_value_at(mm_asset *a, int64_t t)
{
    for (size_t k = a->hist_n; k-- > 0;)
        if (hist_at(a, k)->at <= t)
            return hist_at(a, k)->value;
    return hist_at(a, 0)->value;
}

/* True with probability rate x dt (dt in ns), capped at 1. */
static int poisson_hit(market_model *m, double rate, int64_t dt)
{
    if (!(rate > 0))
        return 0;
    uint64_t p = (uint64_t)frac_q32(rate * ((double)dt / 1e9));
    return (arb_rng_next(&m->rng) >> 32) < p;
}

static void emit_event(market_model *m, mm_emit_fn emit, void *user, int kind, const char *venue_f,
                       const char *symbol_f, int64_t value, int64_t shock, int64_t now)
{
    arb_market_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = (uint8_t)kind;
    if (venue_f)
        memcpy(ev.venue, venue_f, ARB_VENUE_LEN);
    memcpy(ev.symbol, symbol_f, ARB_SYMBOL_LEN);
    ev.value = value;
    ev.shock = shock;
    ev.ts = now;
    ev.seq = ++m->seq;
    emit(user, &ev);
}

static void emit_venues(market_model *m, size_t i, int64_t now, mm_emit_fn emit, void *user)
{
    mm_asset *a = &m->assets[i];
    const mm_asset_config *ac = &m->cfg.assets[i];
    for (size_t v = 0; v < m->cfg.n_venues; v++) {
        int64_t seen = hist_value_at(a, now - m->cfg.venues[v].lag_ns);
        int64_t noise_q32 = frac_q32(m->cfg.venues[v].noise_bps / 1e4);
        int64_t noisy =
            seen + (noise_q32 ? scale2(seen, noise_q32, arb_rng_gauss_q32(&m->rng)) : 0);
        a->venue_value[v] = round_to_tick(noisy, ac->tick[v]);
        emit_event(m, emit, user, ARB_MEV_VENUE_VALUE, m->venue_f[v], a->symbol_f,
                   a->venue_value[v], 0, now);
    }
}

int mm_step(market_model *m, int64_t now, mm_emit_fn emit, void *user)
{
    if (m->started && now <= m->last_ns)
        return ARB_OK;
    int64_t dt = m->started ? now - m->last_ns : 0;
    for (size_t i = 0; i < m->cfg.n_assets; i++) {
        mm_asset *a = &m->assets[i];
        const mm_asset_config *ac = &m->cfg.assets[i];
        int64_t shock_units = 0;
        if (dt > 0) {
            /* sigma x sqrt(dt): IEEE sqrt and products are exactly rounded. */
            int64_t sigma = frac_q32(ac->volatility_bps / 1e4 * sqrt((double)dt / 1e9));
            int64_t d = sigma ? scale2(a->fair_fp, sigma, arb_rng_gauss_q32(&m->rng)) : 0;
            if (poisson_hit(m, ac->jump_rate, dt)) {
                d += scale2(a->fair_fp, frac_q32(ac->jump_bps / 1e4), arb_rng_gauss_q32(&m->rng));
                a->jumps++;
            }
            if (poisson_hit(m, ac->shock_rate, dt)) {
                /* Size uniform in [0.5, 1.5) x shock_bps, either direction. */
                uint64_t r = arb_rng_next(&m->rng);
                int64_t mag = frac_q32(ac->shock_bps / 1e4);
                int64_t size =
                    (int64_t)(((__int128)mag * (int64_t)((r >> 32) + (1ull << 31))) >> 32);
                int64_t s = (int64_t)(((__int128)a->fair_fp * size) >> 32);
                if (r & 1)
                    s = -s;
                int64_t before = fp_to_units(a->fair_fp + d);
                d += s;
                shock_units = fp_to_units(a->fair_fp + d) - before;
                a->shocks++;
            }
            a->fair_fp += d;
            if (a->fair_fp < a->floor_fp)
                a->fair_fp = a->floor_fp;
            if (a->fair_fp > ((int64_t)1 << 62))
                a->fair_fp = (int64_t)1 << 62;
        }
        int64_t fair = fp_to_units(a->fair_fp);
        if (hist_push(m, a, now, fair))
            return ARB_ENOMEM;
        if (shock_units)
            emit_event(m, emit, user, ARB_MEV_SHOCK, NULL, a->symbol_f, fair, shock_units, now);
        emit_event(m, emit, user, ARB_MEV_FAIR_VALUE, NULL, a->symbol_f, fair, 0, now);
        emit_venues(m, i, now, emit, user);
    }
    m->started = 1;
    m->last_ns = now;
    m->steps++;
    return ARB_OK;
}

/* ---- save / restore ---- */

int mm_save(const market_model *m, void **bytes, size_t *len)
{
    size_t n = 8 + 4 + 4 + 4 + 32 + 8 + 8 + 8 + 4;
    for (size_t i = 0; i < m->cfg.n_assets; i++)
        n += ARB_SYMBOL_LEN + 8 * 3 + 8 * m->cfg.n_venues + 4 + 16 * m->assets[i].hist_n;
    uint8_t *buf = malloc(n), *p = buf;
    if (!buf)
        return ARB_ENOMEM;
    arb_put_u64(p, MM_STATE_MAGIC);
    arb_put_u32(p + 8, MM_STATE_VERSION);
    arb_put_u32(p + 12, (uint32_t)m->cfg.n_assets);
    arb_put_u32(p + 16, (uint32_t)m->cfg.n_venues);
    for (int k = 0; k < 4; k++)
        arb_put_u64(p + 20 + 8 * k, m->rng.s[k]);
    arb_put_i64(p + 52, m->last_ns);
    arb_put_u64(p + 60, m->seq);
    arb_put_u64(p + 68, m->steps);
    arb_put_u32(p + 76, (uint32_t)m->started);
    p += 80;
    for (size_t i = 0; i < m->cfg.n_assets; i++) {
        const mm_asset *a = &m->assets[i];
        memcpy(p, a->symbol_f, ARB_SYMBOL_LEN);
        p += ARB_SYMBOL_LEN;
        arb_put_i64(p, a->fair_fp);
        arb_put_u64(p + 8, a->jumps);
        arb_put_u64(p + 16, a->shocks);
        p += 24;
        for (size_t v = 0; v < m->cfg.n_venues; v++, p += 8)
            arb_put_i64(p, a->venue_value[v]);
        arb_put_u32(p, (uint32_t)a->hist_n);
        p += 4;
        for (size_t k = 0; k < a->hist_n; k++, p += 16) {
            const mm_sample *s = &a->hist[(a->hist_head + k) & (a->hist_cap - 1)];
            arb_put_i64(p, s->at);
            arb_put_i64(p + 8, s->value);
        }
    }
    *bytes = buf;
    *len = n;
    return ARB_OK;
}

int mm_restore(market_model *m, const void *bytes, size_t len)
{
    const uint8_t *p = bytes, *end = p + len;
    if (len < 80 || arb_get_u64(p) != MM_STATE_MAGIC || arb_get_u32(p + 8) != MM_STATE_VERSION ||
        arb_get_u32(p + 12) != m->cfg.n_assets || arb_get_u32(p + 16) != m->cfg.n_venues)
        return ARB_EREFUSED;
    market_model n = *m;
    for (size_t i = 0; i < n.cfg.n_assets; i++) {
        n.assets[i].hist = NULL;
        n.assets[i].hist_cap = n.assets[i].hist_n = n.assets[i].hist_head = 0;
    }
    for (int k = 0; k < 4; k++)
        n.rng.s[k] = arb_get_u64(p + 20 + 8 * k);
    n.last_ns = arb_get_i64(p + 52);
    n.seq = arb_get_u64(p + 60);
    n.steps = arb_get_u64(p + 68);
    n.started = arb_get_u32(p + 76) != 0;
    p += 80;
    int rc = ARB_EREFUSED;
    for (size_t i = 0; i < n.cfg.n_assets; i++) {
        mm_asset *a = &n.assets[i];
        size_t need = ARB_SYMBOL_LEN + 24 + 8 * n.cfg.n_venues + 4;
        if ((size_t)(end - p) < need || memcmp(p, a->symbol_f, ARB_SYMBOL_LEN))
            goto fail;
        p += ARB_SYMBOL_LEN;
        a->fair_fp = arb_get_i64(p);
        a->jumps = arb_get_u64(p + 8);
        a->shocks = arb_get_u64(p + 16);
        p += 24;
        for (size_t v = 0; v < n.cfg.n_venues; v++, p += 8)
            a->venue_value[v] = arb_get_i64(p);
        uint32_t hn = arb_get_u32(p);
        p += 4;
        if ((size_t)(end - p) / 16 < hn || a->fair_fp < a->floor_fp)
            goto fail;
        for (uint32_t k = 0; k < hn; k++, p += 16)
            if (hist_push(&n, a, arb_get_i64(p), arb_get_i64(p + 8))) {
                rc = ARB_ENOMEM;
                goto fail;
            }
        if (n.started && a->hist_n == 0)
            goto fail;
    }
    if (p != end)
        goto fail;
    mm_free(m);
    *m = n;
    return ARB_OK;
fail:
    mm_free(&n);
    return rc;
}
