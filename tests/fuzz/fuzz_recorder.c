/*
 * fuzz_recorder.c -- libFuzzer target for the recorder's byte handling:
 *   first byte % 3 == 0: the rest is hot-reload state (handover.c): restore
 *     must refuse or adopt, and what it adopted must save and restore again
 *     to the same bytes;
 *   == 1 / == 2: the rest is the body of a trade / order event record, given
 *     a valid header and decoded as the bus would; every decodable record
 *     must format (copy_rows.c) into one well-formed COPY text line with the
 *     schema's column count, only valid escapes, and exact integers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/recorder/batcher.h"
#include "../../plugins/recorder/copy_rows.h"
#include "../../plugins/recorder/handover.h"
#include "../../plugins/recorder/schema.h"
#include "arb/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int columns_of(const char *list)
{
    int n = 1;
    for (; *list; list++)
        n += *list == ',';
    return n;
}

/* One COPY text line: `columns` fields, valid escapes, one final newline.
 * Returns the first field as 64 bits (trade ids are written signed, order
 * ids unsigned: numeric(20,0); strtoull takes both). */
static unsigned long long check_line(const char *line, size_t n, int columns)
{
    if (n == 0 || line[n - 1] != '\n')
        abort();
    int fields = 1;
    for (size_t i = 0; i + 1 < n; i++) {
        char ch = line[i];
        if (ch == '\n' || ch == '\r' || ch == 0)
            abort();
        if (ch == '\t') {
            fields++;
        } else if (ch == '\\') {
            char e = line[++i];
            int whole_null = e == 'N' && (i == 1 || line[i - 2] == '\t') &&
                             (line[i + 1] == '\t' || line[i + 1] == '\n');
            if (e != '\\' && e != 't' && e != 'n' && e != 'r' && !whole_null)
                abort();
        }
    }
    if (fields != columns)
        abort();
    return strtoull(line, NULL, 10);
}

static void fuzz_trade(const uint8_t *body, size_t size)
{
    uint8_t rec[ARB_TRADE_LEN] = {0};
    arb_wire_put_hdr(rec, ARB_MSG_TRADE, ARB_TRADE_LEN);
    arb_put_u16(rec + 2, ARB_TRADE_VERSION);
    memcpy(rec + ARB_WIRE_HDR, body,
           size < ARB_TRADE_LEN - ARB_WIRE_HDR ? size : ARB_TRADE_LEN - ARB_WIRE_HDR);
    arb_trade t;
    if (arb_trade_decode(rec, sizeof rec, &t))
        return;
    char line[REC_TRADE_ROW_MAX];
    int8_t d = size ? (int8_t)(body[0] % 14) - 1 : 0;
    size_t n = rec_trade_row(line, &t, (rec_scale){d, d});
    if (n > REC_TRADE_ROW_MAX)
        abort();
    if (check_line(line, n, columns_of(rec_trade_columns)) != t.trade_id)
        abort();
}

static void fuzz_order_event(const uint8_t *body, size_t size)
{
    uint8_t rec[ARB_ORDER_EVENT_LEN] = {0};
    arb_wire_put_hdr(rec, ARB_MSG_ORDER_EVENT, ARB_ORDER_EVENT_LEN);
    arb_put_u16(rec + 2, ARB_ORDER_EVENT_VERSION);
    size_t cap = ARB_ORDER_EVENT_LEN - ARB_WIRE_HDR;
    memcpy(rec + ARB_WIRE_HDR, body, size < cap ? size : cap);
    arb_order_event e;
    if (arb_order_event_decode(rec, sizeof rec, &e))
        return;
    char line[REC_ORDER_EVENT_ROW_MAX];
    size_t n = rec_order_event_row(line, &e, (rec_scale){-1, 12});
    if (n > REC_ORDER_EVENT_ROW_MAX)
        abort();
    if (check_line(line, n, columns_of(rec_order_event_columns)) != e.order_id)
        abort();
}

static void fuzz_handover(const uint8_t *bytes, size_t size)
{
    rec_batcher a, b;
    if (rec_batcher_init(&a, 3, 0) || rec_batcher_init(&b, 5, 0))
        abort();
    if (rec_handover_restore(&a, bytes, size, 1) == ARB_OK) {
        void *saved;
        size_t len;
        if (rec_handover_save(&a, &saved, &len) || rec_handover_restore(&b, saved, len, 2))
            abort();
        if (rec_batcher_pending(&a) != rec_batcher_pending(&b))
            abort();
        void *again;
        size_t len2;
        if (rec_handover_save(&b, &again, &len2) || len2 != len || memcmp(saved, again, len))
            abort();
        free(saved);
        free(again);
    } else if (rec_batcher_pending(&a) != 0) {
        abort(); /* a refused state left rows behind */
    }
    rec_batcher_free(&a);
    rec_batcher_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_handover(data + 1, size - 1); break;
    case 1: fuzz_trade(data + 1, size - 1); break;
    default: fuzz_order_event(data + 1, size - 1); break;
    }
    return 0;
}
