/*
 * api_keys.c -- API key table: parse config values, hash, look up in constant
 * time (see api_keys.h for the rules).
 */
#include "api_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arb/plugin.h"

int gw_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    /* Every byte is read and folded into one difference before it is
     * tested, a 64-bit word at a time (every request compares its key's
     * digest with every key's: this is on the order path), then the tail. */
    uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    for (; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    /* volatile: the compiler must not test the words one by one. */
    volatile uint64_t all = diff;
    return all == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_account(const char *s, uint64_t *out)
{
    if (!*s)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

int gw_keys_add(gw_key_table *t, const char *name, const char *spec, char *err, size_t errlen)
{
    gw_api_key k;
    memset(&k, 0, sizeof k);
    size_t nl = strlen(name);
    if (nl == 0 || nl > GW_KEY_NAME_MAX) {
        snprintf(err, errlen, "key name must be 1 to %d characters", GW_KEY_NAME_MAX);
        return ARB_EINVAL;
    }
    memcpy(k.name, name, nl);
    const char *colon = strrchr(spec, ':');
    if (!colon || parse_account(colon + 1, &k.account)) {
        snprintf(err, errlen,
                 "value must be <key>:<account> or sha256:<hex>:<account>, "
                 "with a positive decimal account");
        return ARB_EINVAL;
    }
    size_t keylen = (size_t)(colon - spec);
    if (keylen > 7 && !strncmp(spec, "sha256:", 7)) {
        const char *hex = spec + 7;
        if (keylen - 7 != 2 * GW_SHA256_LEN) {
            snprintf(err, errlen, "sha256: digest must be %d hex digits", 2 * GW_SHA256_LEN);
            return ARB_EINVAL;
        }
        for (int i = 0; i < GW_SHA256_LEN; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "sha256: digest has a character that is not hex");
                return ARB_EINVAL;
            }
            k.digest[i] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        if (keylen < GW_KEY_MIN_LEN) {
            snprintf(err, errlen, "key must be at least %d characters", GW_KEY_MIN_LEN);
            return ARB_EINVAL;
        }
        for (size_t i = 0; i < keylen; i++)
            if ((unsigned char)spec[i] < 0x21 || (unsigned char)spec[i] > 0x7e) {
                snprintf(err, errlen, "key must be printable ASCII without spaces");
                return ARB_EINVAL;
            }
        gw_sha256(spec, keylen, k.digest);
    }
    for (size_t i = 0; i < t->count; i++) {
        if (!strcmp(t->items[i].name, k.name)) {
            snprintf(err, errlen, "key name '%s' is used twice", k.name);
            return ARB_EINVAL;
        }
        if (gw_ct_equal(t->items[i].digest, k.digest, GW_SHA256_LEN)) {
            snprintf(err, errlen, "the same key is configured twice");
            return ARB_EINVAL;
        }
    }
    gw_api_key *grown = realloc(t->items, (t->count + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return ARB_ENOMEM;
    }
    t->items = grown;
    t->items[t->count++] = k;
    return ARB_OK;
}

void gw_keys_free(gw_key_table *t)
{
    free(t->items);
    t->items = NULL;
    t->count = 0;
}

gw_api_key *gw_keys_find(gw_key_table *t, const char *token, size_t len)
{
    uint8_t d[GW_SHA256_LEN];
    gw_sha256(token, len, d);
    /* Visit every entry: no early exit, so timing says nothing about where
     * (or whether) the key matched. Digests are distinct (checked at load). */
    gw_api_key *found = NULL;
    for (size_t i = 0; i < t->count; i++) {
        int eq = gw_ct_equal(t->items[i].digest, d, GW_SHA256_LEN);
        found = eq ? &t->items[i] : found;
    }
    return found;
}

int gw_bearer_token(const char *header, const char **token, size_t *len)
{
    if (!header)
        return -1;
    while (*header == ' ')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return -1;
    const char *p = header + 7;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (n == 0)
        return -1;
    *token = p;
    *len = n;
    return 0;
}
