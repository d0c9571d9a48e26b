/*
 * rate_limit.h -- a token bucket per API key, in integer nanoseconds.
 *
 * A key may spend `burst` requests at once and then `rate` requests per
 * second. Pure arithmetic on a caller-supplied clock so it can be tested
 * without sleeping; it knows nothing of HTTP or of which key it belongs to.
 */
#ifndef GW_RATE_LIMIT_H
#define GW_RATE_LIMIT_H

#include <stdint.h>

typedef struct gw_token_bucket {
    int64_t rate;        /* tokens per second; 0: unlimited */
    int64_t burst;       /* bucket size in tokens */
    int64_t nano_tokens; /* tokens * 1e9, so refills need no division */
    int64_t last_ns;     /* clock at the last refill */
} gw_token_bucket;

/* A full bucket. rate 0 disables limiting; burst < 1 is taken as 1. */
void gw_bucket_init(gw_token_bucket *b, int64_t rate, int64_t burst, int64_t now_ns);

/* Takes one token. Returns 1 if the request may proceed; 0 if not, and then
 * *retry_after_ms (if not NULL) says when the next token is due. */
int gw_bucket_take(gw_token_bucket *b, int64_t now_ns, int64_t *retry_after_ms);

#endif
