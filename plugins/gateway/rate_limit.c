/*
 * rate_limit.c -- token bucket arithmetic (see rate_limit.h). Tokens are kept
 * in billionths so that a refill is elapsed_ns * rate with no division and no
 * rounding drift; elapsed time is clamped first so the product cannot
 * overflow however long a key stayed idle.
 */
#include "rate_limit.h"

#define NANO 1000000000LL

void gw_bucket_init(gw_token_bucket *b, int64_t rate, int64_t burst, int64_t now_ns)
{
    if (rate < 0)
        rate = 0;
    if (burst < 1)
        burst = 1;
    /* Keep burst * 1e9 far from INT64_MAX. */
    if (burst > 1000000000LL)
        burst = 1000000000LL;
    if (rate > 1000000000LL)
        rate = 1000000000LL;
    b->rate = rate;
    b->burst = burst;
    b->nano_tokens = burst * NANO;
    b->last_ns = now_ns;
}

int gw_bucket_take(gw_token_bucket *b, int64_t now_ns, int64_t *retry_after_ms)
{
    if (b->rate == 0)
        return 1;
    const int64_t cap = b->burst * NANO;
    if (now_ns > b->last_ns) {
        int64_t elapsed = now_ns - b->last_ns;
        /* Time to refill from empty to full, plus one: more adds nothing. */
        int64_t full = cap / b->rate + 1;
        if (elapsed > full)
            elapsed = full;
        b->nano_tokens += elapsed * b->rate;
        if (b->nano_tokens > cap)
            b->nano_tokens = cap;
        b->last_ns = now_ns;
    }
    if (b->nano_tokens >= NANO) {
        b->nano_tokens -= NANO;
        return 1;
    }
    if (retry_after_ms) {
        int64_t missing = NANO - b->nano_tokens;             /* nano-tokens */
        int64_t wait_ns = (missing + b->rate - 1) / b->rate; /* ns */
        *retry_after_ms = (wait_ns + 999999) / 1000000;
    }
    return 0;
}
