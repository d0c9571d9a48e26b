/*
 * arb/fixed.h -- exact conversion between decimal strings and integers.
 *
 * Prices and quantities are integers on the wire: a count of 10^-decimals
 * units. At the edges (HTTP JSON, config, CLI) they are decimal strings, and
 * the conversion is exact: a string with more significant fractional digits
 * than the instrument allows is an error, never rounded. Pure code.
 */
#ifndef ARB_FIXED_H
#define ARB_FIXED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ARB_FIXED_MAX_DECIMALS 12

/* Parses "[-]digits[.digits]" (no exponent, no spaces, no '+', at least one
 * digit) into value * 10^decimals. Trailing zeros past `decimals` are
 * accepted ("1.500" with 2 decimals is 150); a non-zero digit past them is
 * ARB_EINVAL, as is overflow of int64 and any other character. */
static inline int arb_dec_parse(const char *s, size_t len, int decimals, int64_t *out)
{
    if (decimals < 0 || decimals > ARB_FIXED_MAX_DECIMALS || len == 0)
        return ARB_EINVAL;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
    }
    uint64_t v = 0;
    const uint64_t limit = (uint64_t)INT64_MAX + (uint64_t)neg;
    int digits = 0, frac = -1;
    for (; i < len; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (frac >= 0)
                return ARB_EINVAL;
            frac = 0;
            continue;
        }
        if (ch < '0' || ch > '9')
            return ARB_EINVAL;
        digits++;
        if (frac >= 0) {
            if (frac >= decimals) {
                if (ch != '0')
                    return ARB_EINVAL; /* not representable: never round */
                continue;
            }
            frac++;
        }
        unsigned d = (unsigned)(ch - '0');
        if (v > (limit - d) / 10)
            return ARB_EINVAL;
        v = v * 10 + d;
    }
    if (digits == 0 || frac == 0) /* "", "-", ".", "5." */
        return ARB_EINVAL;
    if (s[neg] == '.') /* ".5" */
        return ARB_EINVAL;
    for (int k = frac < 0 ? 0 : frac; k < decimals; k++) {
        if (v > limit / 10)
            return ARB_EINVAL;
        v *= 10;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return ARB_OK;
}

static inline int arb_dec_parse_cstr(const char *s, int decimals, int64_t *out)
{
    return arb_dec_parse(s, strlen(s), decimals, out);
}

/* Formats value / 10^decimals with exactly `decimals` fractional digits
 * ("-0.005"). Returns the length, or -1 if cap is too small (32 bytes always
 * suffice). */
static inline int arb_dec_format(int64_t value, int decimals, char *buf, size_t cap)
{
    char rev[40];
    int n = 0;
    uint64_t mag = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    if (decimals < 0 || decimals > ARB_FIXED_MAX_DECIMALS)
        return -1;
    for (int k = 0; k < decimals; k++, mag /= 10)
        rev[n++] = (char)('0' + mag % 10);
    if (decimals)
        rev[n++] = '.';
    do {
        rev[n++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (value < 0)
        rev[n++] = '-';
    if ((size_t)n + 1 > cap)
        return -1;
    for (int i = 0; i < n; i++)
        buf[i] = rev[n - 1 - i];
    buf[n] = 0;
    return n;
}

#ifdef __cplusplus
}
#endif
#endif /* ARB_FIXED_H */
