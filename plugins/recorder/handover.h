/*
 * handover.h -- the bytes one recorder instance hands the next at hot
 * reload: the rows it holds and the position they continue from, so the new
 * build writes them and numbers later rows exactly as the old one would.
 *
 *   magic "ARBREC\0" | u8 version | u8 position_known | 7 zero bytes |
 *   per topic: u64 committed position | u32 rows | u64 bytes | COPY text
 *
 * Pure: no I/O, no host. Restore never trusts the bytes (they may come from
 * another build): it validates everything before touching the batcher.
 */
#ifndef REC_HANDOVER_H
#define REC_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "batcher.h"

#define REC_HANDOVER_VERSION 1u

/* Encodes what b holds (oldest first) into malloc'd bytes the caller frees. */
int rec_handover_save(const rec_batcher *b, void **bytes, size_t *len);

/* Adopts saved rows into b (which should hold nothing yet). ARB_EREFUSED if
 * the bytes are malformed (b untouched), ARB_ENOMEM if memory ran out. */
int rec_handover_restore(rec_batcher *b, const void *bytes, size_t len, int64_t now_ns);

#endif
