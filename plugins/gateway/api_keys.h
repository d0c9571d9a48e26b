/*
 * api_keys.h -- the table of API keys that map a bearer token to an account.
 *
 * Keys come from config as `api_key.<name> = <key>:<account>` (the key in
 * clear, hashed at load and then forgotten) or `sha256:<64 hex>:<account>`
 * (only the digest ever appears in config). The table keeps SHA-256 digests
 * only, and a lookup hashes the presented token and compares it with every
 * entry in constant time, so neither the memory of the process nor the
 * timing of a lookup reveals a key. Each key has its own token bucket.
 * This file does not parse HTTP beyond the Authorization header value.
 */
#ifndef GW_API_KEYS_H
#define GW_API_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "rate_limit.h"
#include "sha256.h"

#define GW_KEY_NAME_MAX 32
#define GW_KEY_MIN_LEN 16

typedef struct gw_api_key {
    char name[GW_KEY_NAME_MAX + 1];
    uint8_t digest[GW_SHA256_LEN];
    uint64_t account;
    gw_token_bucket bucket;
} gw_api_key;

typedef struct gw_key_table {
    gw_api_key *items;
    size_t count;
} gw_key_table;

/* Adds a key from its config value. On error writes a sentence to err and
 * returns ARB_EINVAL (bad spec) or ARB_ENOMEM. */
int gw_keys_add(gw_key_table *t, const char *name, const char *spec, char *err, size_t errlen);
void gw_keys_free(gw_key_table *t);

/* The entry whose key is `token`, or NULL. Time does not depend on which
 * entry matched or how many bytes of a digest agreed. */
gw_api_key *gw_keys_find(gw_key_table *t, const char *token, size_t len);

/* Extracts the token of an "Authorization: Bearer <token>" value. Returns 0
 * and sets the token and its length, or -1 if the header is missing or not a bearer. */
int gw_bearer_token(const char *header, const char **token, size_t *len);

/* 1 if the two buffers are equal; reads all n bytes whatever they hold. */
int gw_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
