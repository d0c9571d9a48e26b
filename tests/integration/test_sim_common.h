/*
 * test_sim_common.h -- shared pieces of the simulation's integration tests:
 * the simulated market as INI text (instruments, clock, generator, matcher,
 * agents), which matcher to run, the trade digest the digest plugin prints,
 * and a collector of agent reports.
 *
 * The matcher is the production one (matcher.so) when it is built, else the
 * stub test plugin (sim_stub_matcher.so), so these tests pin the
 * simulation's own behaviour either way.
 */
#ifndef TEST_SIM_COMMON_H
#define TEST_SIM_COMMON_H

#include <arb/agent.h>
#include <arb/plugin.h>
#include <arb/wire.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testhost.h"

static inline const char *sim_build_dir(void)
{
    const char *b = getenv("ARB_BUILD");
    return b && *b ? b : "build";
}

/* 1 under AddressSanitizer: loops shrink there (it is 3-10x slower). */
static inline int sim_sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1;
#endif
#endif
    return getenv("ARB_TEST_SCALE") != NULL;
}

static inline const char *sim_matcher(void)
{
    static char name[32];
    char path[1024];
    struct stat st;
    const char *force = getenv("ARB_SIM_MATCHER");
    if (force && *force)
        return force;
    snprintf(path, sizeof path, "%s/plugins/matcher.so", sim_build_dir());
    snprintf(name, sizeof name, "%s", stat(path, &st) == 0 ? "matcher" : "sim_stub_matcher");
    return name;
}

#define SIM_INSTRUMENTS                                                                       \
    "[instrument XA:BTCUSD]\nprice_decimals = 2\ntick_size = 0.01\nqty_decimals = 3\n"        \
    "lot_size = 0.001\nmin_qty = 0.001\nmax_qty = 100\nref_price = 100.00\nband_bps = 2000\n" \
    "[instrument XB:BTCUSD]\nprice_decimals = 2\ntick_size = 0.01\nqty_decimals = 3\n"        \
    "lot_size = 0.001\nmin_qty = 0.001\nmax_qty = 100\nref_price = 100.00\nband_bps = 2000\n"

/* The whole market: clock at max speed (`ticks` 0: forever), generator,
 * matcher, two market makers, the arbitrageur, the adaptive agent and a
 * population of noise traders; every agent reports on "sim.reports".
 * `extra` is appended (more sections, or keys for the last one); a key set
 * here already is replaced by an override (testhost_new_with), not by extra. */
static inline char *sim_ini(long long seed, long long ticks, int noise_population,
                            const char *extra)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    fprintf(f,
            "[host]\nid = simtest\nlog_level = warn\n" SIM_INSTRUMENTS
            "[plugin clock]\nload = clock.so\nmode = sim\ninterval_ms = 10\nspeed = 0\n"
            "ticks = %lld\n"
            "[plugin generator]\nload = generator.so\nseed = %lld\nsymbols = BTCUSD\n"
            "venues = XA XB\nvolatility_bps = 10\njump_rate = 0.5\njump_bps = 10\n"
            "shock_rate = 0.05\nshock_bps = 80\nlag_ms = 0 40\nnoise_bps = 0.5 1\n"
            "[plugin matcher]\nload = %s.so\n"
            "[plugin mm_xa]\nload = agent_market_maker.so\naccount = 10\nseed = %lld\n"
            "instruments = XA:BTCUSD\nhalf_spread_ticks = 3\nqty = 500\nmax_position = 5000\n"
            "skew_ticks = 2\nreport_topic = sim.reports\n"
            "[plugin mm_xb]\nload = agent_market_maker.so\naccount = 11\nseed = %lld\n"
            "instruments = XB:BTCUSD\nhalf_spread_ticks = 3\nqty = 500\nmax_position = 5000\n"
            "skew_ticks = 2\nreport_topic = sim.reports\n"
            "[plugin arb]\nload = agent_arbitrageur.so\naccount = 20\nseed = %lld\n"
            "instruments = XA:BTCUSD XB:BTCUSD\nthreshold_ticks = 1\n"
            "max_qty = 300\nmax_position = 3000\nreport_topic = sim.reports\n"
            "[plugin adaptive]\nload = agent_adaptive.so\naccount = 30\nseed = %lld\n"
            "instruments = XB:BTCUSD\narms = 1 2 4 6\nepisode_ticks = 20\nqty = 200\n"
            "max_position = 2000\nreport_topic = sim.reports\n"
            "[plugin noise]\nload = agent_noise.so\naccount = 100000\npopulation = %d\n"
            "seed = %lld\ninstruments = XA:BTCUSD XB:BTCUSD\nrate_ppm = 20000\n"
            "take_ppm = 400000\nqty_min = 1\nqty_max = 200\noffset_ticks = 8\n"
            "max_position = 5000\nttl_ms = 300\nreport_topic = sim.reports\n"
            "%s",
            ticks, seed, sim_matcher(), seed, seed, seed, seed, noise_population, seed,
            extra ? extra : "");
    fclose(f);
    return s;
}

/* The digest plugin's hash: FNV-1a over (u32 length, bytes) per record. */
typedef struct sim_digest {
    uint64_t hash, trades;
} sim_digest;

static inline void sim_digest_on_trade(void *user, const arb_msg *m)
{
    sim_digest *d = user;
    uint8_t len[4];
    arb_put_u32(len, m->len);
    d->hash = arb_hash_bytes(d->hash, len, 4);
    d->hash = arb_hash_bytes(d->hash, m->data, m->len);
    d->trades++;
}

/* The latest report of each agent, by its first account. */
#define SIM_MAX_AGENTS 16
typedef struct sim_reports {
    arb_agent_report last[SIM_MAX_AGENTS];
    uint64_t count[SIM_MAX_AGENTS];
    int n;
    int bad;
} sim_reports;

static inline arb_agent_report *sim_report_of(sim_reports *r, uint64_t account)
{
    for (int i = 0; i < r->n; i++)
        if (r->last[i].account_base == account)
            return &r->last[i];
    return NULL;
}

static inline void sim_reports_on_msg(void *user, const arb_msg *m)
{
    sim_reports *r = user;
    arb_agent_report rep;
    if (arb_agent_report_decode(m->data, m->len, &rep)) {
        r->bad++;
        return;
    }
    for (int i = 0; i < r->n; i++)
        if (r->last[i].account_base == rep.account_base) {
            r->last[i] = rep;
            r->count[i]++;
            return;
        }
    if (r->n < SIM_MAX_AGENTS) {
        r->count[r->n] = 1;
        r->last[r->n++] = rep;
    }
}

#endif
