/*
 * u64map.h -- an open-addressing hash map from a non-zero 64-bit id to a
 * pointer: orders by order id, accounts by account, instruments by key.
 * Linear probing with backward-shift deletion, so there are no tombstones and
 * lookups stay short however many orders come and go. A key and its value
 * share one 16-byte slot, so a lookup in a table much larger than the cache
 * (the orders) costs one cache miss, not two. Owns only its slots, never the
 * values. Not for anything that needs ordered iteration.
 */
#ifndef GW_U64MAP_H
#define GW_U64MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_u64slot {
    uint64_t key; /* 0: empty slot */
    void *val;
} gw_u64slot;

typedef struct gw_u64map {
    gw_u64slot *slots;
    size_t cap; /* power of two, or 0 before the first put */
    size_t count;
} gw_u64map;

void *gw_map_get(const gw_u64map *m, uint64_t key);
/* Inserts or replaces. key must be non-zero. Returns 0 or -1 (no memory). */
int gw_map_put(gw_u64map *m, uint64_t key, void *val);
/* Removes and returns the value, or NULL if absent. */
void *gw_map_del(gw_u64map *m, uint64_t key);
void gw_map_free(gw_u64map *m);

#endif
