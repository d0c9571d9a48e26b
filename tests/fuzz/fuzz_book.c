/*
 * fuzz_book.c -- libFuzzer target for the order book. The first byte picks
 * what the rest of the input is:
 *   0..199  a command sequence: 12 bytes per command, mapped onto fields
 *           near the interesting values (a few ids, accounts and prices
 *           around the reference, odd enums now and then). The engine and
 *           the reference book (tests/ref) run it side by side; any output
 *           difference or broken property aborts. Halfway through, the
 *           engine is saved and restored into a fresh one that carries on.
 *   200..249 raw order command records, decoded as the plugin does and
 *           applied (the decoder's and the engine's robustness).
 *   250..255 the bytes are a saved state for book_engine_restore(); an
 *           accepted state must be a sound book and must save back to the
 *           same bytes.
 * Not run by make test; built by make fuzz.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ref/book_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static arb_instrument inst[4];
static size_t n_inst;

static book_engine *fresh(const book_config *cfg)
{
    book_engine *e;
    if (book_engine_new(cfg, &e))
        abort();
    for (size_t i = 0; i < n_inst; i++)
        if (book_engine_add_instrument(e, &inst[i]))
            abort();
    return e;
}

static void die(const char *what, const char *msg, size_t at)
{
    fprintf(stderr, "fuzz_book: %s at command %zu: %s\n", what, at, msg);
    abort();
}

static void check_all(book_engine *e, const book_output *o, size_t at)
{
    char msg[512];
    for (size_t k = 0; k < book_engine_book_count(e); k++) {
        const char *bad = book_check_properties(e, book_engine_book_at(e, k), o, msg, sizeof msg);
        if (bad)
            die("property", bad, at);
    }
}

/* 12 bytes -> one command, biased toward values that interact. */
static void make_command(const uint8_t *p, arb_order_cmd *c, int64_t ts)
{
    memset(c, 0, sizeof *c);
    uint8_t k = p[0];
    c->action = k < 150   ? ARB_CMD_NEW
                : k < 195 ? ARB_CMD_CANCEL
                : k < 250 ? ARB_CMD_REPLACE
                : k < 253 ? ARB_CMD_SNAPSHOT
                          : (uint8_t)(k - 250);
    uint8_t f = p[1];
    c->side = (uint8_t)(1 + (f & 1));
    c->type = (f & 0x0e) == 0x0e ? ARB_ORD_MARKET : ARB_ORD_LIMIT;
    c->tif = (uint8_t)(1 + ((f >> 4) % 3));
    if (c->type == ARB_ORD_MARKET && c->tif == ARB_TIF_GTC)
        c->tif = ARB_TIF_IOC;
    c->flags = (f & 0xc0) == 0xc0 ? ARB_ORDF_POST_ONLY : 0;
    uint8_t odd = p[2];
    if (odd == 0xff)
        c->side = (uint8_t)(p[3] & 3);
    if (odd == 0xfe)
        c->tif = (uint8_t)(p[3] & 3);
    if (odd == 0xfd)
        c->flags = p[3];
    c->stp = odd < 0xc0 ? 0 : (uint8_t)(odd & 3);
    const arb_instrument *in = &inst[p[4] % (n_inst + 1) % n_inst];
    arb_fixstr_set(c->venue, ARB_VENUE_LEN, p[4] == 0xff ? "XQ" : in->venue);
    arb_fixstr_set(c->symbol, ARB_SYMBOL_LEN, in->symbol);
    c->order_id = p[5] % 32;
    if (p[5] >= 0xf0)
        c->order_id = ((uint64_t)p[6] << 56) | p[7];
    c->account = 1 + (p[6] % 4);
    int64_t ticks = in->ref_price / in->tick + (int8_t)p[7] % 40;
    c->price = ticks * in->tick;
    if (p[8] == 0xff)
        c->price = (int64_t)p[9] - 128;
    else if (p[8] == 0xfe)
        c->price += 1;
    else if (p[8] == 0xfd)
        c->price = (int64_t)p[9] << 45;
    c->qty = in->lot * (1 + p[10] % 12);
    if (c->qty < in->min_qty)
        c->qty = in->min_qty;
    if (p[11] == 0xff)
        c->qty = -(int64_t)p[10];
    else if (p[11] == 0xfe)
        c->qty = (int64_t)p[10] << 40;
    c->ts = ts;
    c->client_ref = p[11];
}

static void run_commands(const uint8_t *data, size_t size)
{
    book_config cfg = {.stp_default = (uint8_t)(1 + data[0] % 3),
                       .max_open_orders = data[0] % 7 == 0 ? 6 : 0,
                       .snapshot_levels = data[0] % 5,
                       .window_init = 64,
                       .window_max = data[0] % 2 ? 64 : 512};
    data++, size--;
    book_engine *e = fresh(&cfg);
    ref_engine *r = ref_engine_new(&cfg);
    for (size_t i = 0; i < n_inst; i++)
        ref_engine_add_instrument(r, &inst[i]);
    book_output ro = {0};
    char msg[512];
    size_t n = size / 12;
    for (size_t i = 0; i < n; i++) {
        arb_order_cmd c;
        make_command(data + 12 * i, &c, (int64_t)i);
        book_output *eo = book_engine_output(e);
        book_output_clear(eo);
        book_output_clear(&ro);
        book_engine_process(e, &c);
        ref_engine_process(r, &c, &ro);
        const char *bad = book_outputs_differ(eo, &ro, msg, sizeof msg);
        if (bad)
            die("engine and reference differ", bad, i);
        check_all(e, eo, i);
        if (i == n / 2) {
            void *bytes;
            size_t len;
            if (book_engine_save(e, NULL, NULL, &bytes, &len))
                abort();
            book_engine *b = fresh(&cfg);
            if (book_engine_restore(b, bytes, len))
                die("restore", "a saved state was refused", i);
            free(bytes);
            book_engine_free(e);
            e = b;
        }
    }
    const char *bad = book_states_differ(e, r, msg, sizeof msg);
    if (bad)
        die("final state", bad, n);
    book_output_free(&ro);
    ref_engine_free(r);
    book_engine_free(e);
}

static void run_records(const uint8_t *data, size_t size)
{
    book_engine *e = fresh(NULL);
    for (size_t off = 0; off + ARB_ORDER_CMD_LEN <= size; off += ARB_ORDER_CMD_LEN) {
        arb_order_cmd c;
        uint8_t rec[ARB_ORDER_CMD_LEN];
        memcpy(rec, data + off, sizeof rec);
        arb_wire_put_hdr(rec, ARB_MSG_ORDER_CMD, ARB_ORDER_CMD_LEN);
        if (arb_order_cmd_decode(rec, sizeof rec, &c))
            continue;
        book_output *o = book_engine_output(e);
        book_output_clear(o);
        book_engine_process(e, &c);
        check_all(e, o, off / ARB_ORDER_CMD_LEN);
    }
    book_engine_free(e);
}

static void run_restore(const uint8_t *data, size_t size)
{
    book_engine *e = fresh(NULL);
    if (book_engine_restore(e, data, size) == ARB_OK) {
        book_output none = {0};
        check_all(e, &none, 0);
        /* Accepted bytes describe a book; saving it gives a state that
         * restores again to the same book. */
        void *a, *b;
        size_t la, lb;
        if (book_engine_save(e, NULL, NULL, &a, &la))
            abort();
        book_engine *f = fresh(NULL);
        if (book_engine_restore(f, a, la))
            die("restore", "a re-saved state was refused", 0);
        if (book_engine_save(f, NULL, NULL, &b, &lb) || la != lb || memcmp(a, b, la))
            die("restore", "state does not survive a second round trip", 0);
        free(a);
        free(b);
        book_engine_free(f);
    }
    book_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n_inst)
        n_inst = book_test_instruments(inst, 4);
    if (size < 1)
        return 0;
    if (data[0] < 200)
        run_commands(data, size);
    else if (data[0] < 250)
        run_records(data + 1, size - 1);
    else
        run_restore(data + 1, size - 1);
    return 0;
}
