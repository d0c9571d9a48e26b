/*
 * sha256.h -- SHA-256 (FIPS 180-4), for hashing API keys at rest.
 *
 * Why a hand-written hash: the libraries this project may link (libevent,
 * jansson, inih, librdkafka, libpq, cmocka) expose no general-purpose
 * cryptographic hash, and storing API keys in clear would let anyone who reads
 * the gateway's memory or a core dump act as any account. This file is only
 * the digest; comparing digests in constant time is api_keys.c's job. It is
 * not an HMAC, not a password KDF and not for anything but short secrets.
 */
#ifndef GW_SHA256_H
#define GW_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define GW_SHA256_LEN 32

typedef struct gw_sha256 {
    uint32_t state[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in block */
} gw_sha256_ctx;

void gw_sha256_init(gw_sha256_ctx *h);
void gw_sha256_update(gw_sha256_ctx *h, const void *data, size_t len);
void gw_sha256_final(gw_sha256_ctx *h, uint8_t out[GW_SHA256_LEN]);
/* One call: out = SHA-256(data). */
void gw_sha256(const void *data, size_t len, uint8_t out[GW_SHA256_LEN]);

#endif
