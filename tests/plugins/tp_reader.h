/*
 * tp_reader.h -- what tp_reader.c tells its test about each record it got:
 * the layout of its out_topic records, shared by the plugin and the test.
 */
#ifndef TP_READER_H
#define TP_READER_H

#include <stdint.h>

/* One record a tp_reader subscription got. */
typedef struct tp_seen {
    uint32_t which; /* 1: md_keys, 2: md_keys2, 3: accounts */
    uint32_t topic; /* ARB_TOPIC_MARKET_DATA or ARB_TOPIC_ORDER_EVENTS */
    uint64_t key;   /* the bus key */
    int64_t at;     /* arb_now() in the callback */
    uint64_t id;    /* market data: book_seq; order event: order_id */
} tp_seen;

/* A subscription's callback argument (the plugin's own). */
typedef struct tp_seen_sub {
    struct tp_reader *reader;
    uint32_t which;
} tp_seen_sub;

#endif
