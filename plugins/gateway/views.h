/*
 * views.h -- JSON text of the API's responses, rendered from the read model
 * into libevent buffers. Ids are strings, prices and quantities exact decimal
 * strings in the instrument's precision, timestamps integer nanoseconds.
 * Knows the response shapes (they match openapi.json) and nothing of routing,
 * authentication or sockets.
 */
#ifndef GW_VIEWS_H
#define GW_VIEWS_H

#include <stddef.h>
#include <stdint.h>

#include "read_model.h"
#include "services.h"

struct evbuffer;

/* Appends s as a JSON string literal (quotes included). Control characters
 * are escaped and bytes outside ASCII become '?', so the output is always
 * valid JSON whatever a client sent. */
void gw_json_string(struct evbuffer *b, const char *s, size_t len);

/* {"error":{"code":...,"message":...}} */
void gw_render_error(struct evbuffer *b, const char *code, const char *message);

void gw_render_order(struct evbuffer *b, const gw_read_model *rm, const gw_order *o);
/* {"orders":[...]} of an account's open orders, newest first; limit 0: all. */
void gw_render_open_orders(struct evbuffer *b, const gw_read_model *rm, const gw_account *a,
                           size_t limit);
void gw_render_instruments(struct evbuffer *b, const arb_instrument_table *t);
/* depth levels per side; the top of book when no depth has arrived yet. */
void gw_render_book(struct evbuffer *b, const gw_read_model *rm, int idx, unsigned depth);
/* One trade object. */
void gw_render_trade(struct evbuffer *b, const gw_read_model *rm, int idx, const gw_trade_rec *t);
/* {"trades":[...]} newest first. idx >= 0: that instrument; idx -1 merges
 * by time the instruments whose mask byte is set (mask NULL: all). */
void gw_render_trades(struct evbuffer *b, const gw_read_model *rm, int idx, const uint8_t *mask,
                      unsigned limit);

typedef const char *(*gw_account_name_fn)(void *user, uint64_t account);
/* Whether the reader may see an account's data at all. */
typedef int (*gw_account_visible_fn)(void *user, uint64_t account);
/* {"accounts":[...]}: position, cash and PnL per account and instrument, for
 * the accounts visible says the reader may see (all when visible is NULL);
 * the others are left out entirely, from the sums too. Every named visible
 * account is listed; of the unnamed ones the max_unnamed with the most
 * trades, and the rest summed into one entry with account "others". */
void gw_render_accounts(struct evbuffer *b, const gw_read_model *rm, gw_account_name_fn name,
                        gw_account_visible_fn visible, void *user, size_t max_unnamed);

/* {"alive_within_ms","dead_after_ms","services":[...]}: every known host,
 * sorted by host id, with its liveness at now_ns (see services.h). */
void gw_render_services(struct evbuffer *b, const gw_services *s, int64_t now_ns, int64_t alive_ns,
                        int64_t dead_ns);

/* The order view's own decimal formatter (no printf), exposed so a test can
 * hold it to arb_dec_format. */
/* A time in ns since the epoch as ISO-8601 UTC with nanoseconds
 * ("2026-12-07T11:30:38.042123456Z"), written beside every integer ns field
 * of an answer. Returns the length, 0 when cap is too small. */
#define GW_ISO8601_LEN 30
size_t gw_iso8601(char *out, size_t cap, int64_t ns);
void gw_format_dec_fast(struct evbuffer *b, int64_t v, int decimals);

/* A signed 128-bit amount with `decimals` fractional digits. */
int gw_format_i128(__int128 v, int decimals, char *buf, size_t cap);

/* GET /v1/fills: the account's fills held in the read model (orders placed
 * through this gateway: open ones and the order_history latest finished),
 * newest first, at most limit, older than the cursor (before_ts, 0: none;
 * before_trade) and with "next", the cursor of the following page, or null.
 * -1 when out of memory. */
int gw_render_fills(struct evbuffer *b, const gw_read_model *rm, uint64_t account, size_t limit,
                    int64_t before_ts, uint64_t before_trade);
/* The private stream's events: an order event, and a fill (its last_px and
 * last_qty), of the key's own account. */
void gw_render_order_event(struct evbuffer *b, const gw_read_model *rm, const arb_order_event *e);
void gw_render_fill_event(struct evbuffer *b, const gw_read_model *rm, const arb_order_event *e);

#endif
