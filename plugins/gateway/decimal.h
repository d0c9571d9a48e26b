/*
 * decimal.h -- arb_dec_format with the precision clamped to what an
 * instrument may have, which also tells the compiler the printed width is
 * bounded (gcc's -Wformat-truncation cannot see that otherwise).
 */
#ifndef GW_DECIMAL_H
#define GW_DECIMAL_H

#include "arb/fixed.h"

/* buf must hold 48 bytes. Returns buf. */
static inline const char *gw_dec(char *buf, int64_t v, int decimals)
{
    if (decimals < 0 || decimals > ARB_FIXED_MAX_DECIMALS)
        decimals = 0;
    arb_dec_format(v, decimals, buf, 48);
    return buf;
}

#endif
