/*
 * latency_dist.c -- the links' delay distributions (see latency.h): parsing
 * "constant 1ms" and the rest, and seeded draws. Pure: no host, no I/O,
 * so the unit test and the fuzzer take it alone. Floating point is fine
 * here: it decides when a record arrives, never an amount of money.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"

#define LAT_MAX_DELAY_NS (INT64_C(60) * 1000000000)

uint64_t arbh_lat_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* (0, 1): never 0, so a log is always finite. */
static double unit_open(uint64_t *rng)
{
    return ((double)(arbh_lat_splitmix(rng) >> 11) + 0.5) / 0x1p53;
}

static int parse_duration(const char *s, char **end, int64_t *ns)
{
    errno = 0;
    double v = strtod(s, end);
    if (*end == s || errno || v < 0)
        return -1;
    double scale;
    const char *u = *end;
    if (!strncmp(u, "ns", 2))
        scale = 1, *end += 2;
    else if (!strncmp(u, "us", 2))
        scale = 1e3, *end += 2;
    else if (!strncmp(u, "ms", 2))
        scale = 1e6, *end += 2;
    else if (u[0] == 's')
        scale = 1e9, *end += 1;
    else
        return -1;
    double x = v * scale;
    if (x > (double)LAT_MAX_DELAY_NS)
        return -1;
    *ns = (int64_t)llround(x);
    return 0;
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* The standard normal's quantile function (Acklam's rational
 * approximation, relative error below 1.2e-9). */
static double probit(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double e[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (p < 0.02425) {
        double q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1);
    }
    if (p > 1 - 0.02425)
        return -probit(1 - p);
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

void arbh_lat_dist_free(arbh_lat_dist *d)
{
    if (!d->inv_borrowed)
        free(d->inv);
    d->inv = NULL;
}

int arbh_lat_dist_parse(const char *s, arbh_lat_dist *d, char *err, size_t n)
{
    memset(d, 0, sizeof *d);
    s = skip_space(s);
    char *end;
    if (!strncmp(s, "constant ", 9)) {
        d->kind = ARBH_LAT_CONST;
        if (parse_duration(skip_space(s + 9), &end, &d->a) || *skip_space(end))
            goto bad;
        return 0;
    }
    if (!strncmp(s, "uniform ", 8) || !strncmp(s, "lognormal ", 10)) {
        int logn = s[0] == 'l';
        d->kind = logn ? ARBH_LAT_LOGNORMAL : ARBH_LAT_UNIFORM;
        if (parse_duration(skip_space(s + (logn ? 10 : 8)), &end, &d->a) ||
            parse_duration(skip_space(end), &end, &d->b) || *skip_space(end) || d->b < d->a)
            goto bad;
        if (logn) {
            if (d->a <= 0)
                goto bad;
            /* median e^mu; p99 e^(mu + 2.326 sigma). */
            d->mu = log((double)d->a);
            d->sigma = log((double)d->b / (double)d->a) / 2.3263478740408408;
            /* A draw is a lookup: the inverse CDF at k / ARBH_LAT_INV
             * (the ends a quarter step in), interpolated between. */
            if (!(d->inv = malloc((ARBH_LAT_INV + 1) * sizeof *d->inv))) {
                snprintf(err, n, "out of memory");
                return -1;
            }
            for (int k = 0; k <= ARBH_LAT_INV; k++) {
                double p = (double)k / ARBH_LAT_INV;
                p = p < 0.25 / ARBH_LAT_INV       ? 0.25 / ARBH_LAT_INV
                    : p > 1 - 0.25 / ARBH_LAT_INV ? 1 - 0.25 / ARBH_LAT_INV
                                                  : p;
                /* At most 60 s, as every other draw: a wide p99 puts the
                 * table's far end beyond it. */
                double v = exp(d->mu + d->sigma * probit(p));
                d->inv[k] = v > (double)LAT_MAX_DELAY_NS ? (double)LAT_MAX_DELAY_NS : v;
            }
        }
        return 0;
    }
    if (!strncmp(s, "quantiles ", 10)) {
        d->kind = ARBH_LAT_TABLE;
        const char *p = skip_space(s + 10);
        while (*p) {
            if (d->nq == 16)
                goto bad;
            errno = 0;
            double q = strtod(p, &end);
            if (end == p || *end != ':' || errno || q < 0 || q > 1 ||
                (d->nq && q <= d->qp[d->nq - 1]))
                goto bad;
            int64_t v;
            if (parse_duration(end + 1, &end, &v) || (d->nq && (double)v < d->qv[d->nq - 1]))
                goto bad;
            d->qp[d->nq] = q;
            d->qv[d->nq++] = (double)v;
            p = skip_space(end);
        }
        if (d->nq < 2 || d->qp[0] != 0 || d->qp[d->nq - 1] != 1)
            goto bad;
        return 0;
    }
bad:
    snprintf(err, n,
             "'%s': expected constant D, uniform MIN MAX, lognormal MEDIAN P99 or quantiles "
             "0:D ... 1:D (durations in ns, us, ms or s, at most 60s)",
             s);
    return -1;
}

int64_t arbh_lat_dist_draw(const arbh_lat_dist *d, uint64_t *rng)
{
    double x;
    switch (d->kind) {
    case ARBH_LAT_CONST: return d->a;
    case ARBH_LAT_UNIFORM:
        return d->a + (int64_t)(arbh_lat_splitmix(rng) % (uint64_t)(d->b - d->a + 1));
    case ARBH_LAT_LOGNORMAL: {
        /* The top 10 bits pick the table's step, the next 43 the point in it. */
        uint64_t r = arbh_lat_splitmix(rng);
        unsigned k = (unsigned)(r >> 54);
        double f = (double)((r >> 11) & ((UINT64_C(1) << 43) - 1)) * 0x1p-43;
        x = d->inv[k] + f * (d->inv[k + 1] - d->inv[k]);
        return (int64_t)(x + 0.5);
    }
    case ARBH_LAT_TABLE: {
        double u = unit_open(rng);
        int i = 1;
        while (i < d->nq - 1 && d->qp[i] < u)
            i++;
        double f = (u - d->qp[i - 1]) / (d->qp[i] - d->qp[i - 1]);
        x = d->qv[i - 1] + f * (d->qv[i] - d->qv[i - 1]);
        break;
    }
    default: return 0;
    }
    if (!(x >= 0))
        return 0;
    return x > (double)LAT_MAX_DELAY_NS ? LAT_MAX_DELAY_NS : (int64_t)llround(x);
}
