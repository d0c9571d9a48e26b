/*
 * tp_reader.c -- a test plugin for the bus's keyed subscriptions
 * (arb_subscribe_keys): a participant (it publishes order_commands) that
 * reads market data and order events by key and tells the test what it got.
 *
 *   md_keys = XA:BTCUSD ...   a market_data subscription of these books'
 *                             keys ("*": a plain one, every key; "": none)
 *   md_keys2 = XB:BTCUSD ...  a second market_data subscription, the same way
 *   md_keys2_later = true     ... made when the first one gets its first record
 *                             (so another instance's subscription can sit
 *                             between the two in the bus's list)
 *   accounts = 100-109        an order_events subscription of these accounts
 *                             ("*": every account; "": none)
 *   command_account = 100     at start, one order command for this account
 *                             on XA:BTCUSD (so its link knows the account)
 *   out_topic = tp.seen
 *
 * Every record it gets is republished on out_topic as a tp_seen (its own
 * layout, host byte order: a test plugin talks only to its test): which
 * subscription got it, the topic, the key, the time it got it (arb_now) and
 * the record's book_seq (market data) or order id (order events).
 */
#include <arb/plugin.h>
#include <arb/wire.h>
#include <stdlib.h>
#include <string.h>

#include "tp_reader.h"

typedef struct tp_reader {
    arb_ctx *ctx;
    int out_topic;
    const char *md_keys[2];
    const char *accounts;
    int64_t command_account;
    int md_keys2_later;
    tp_seen_sub subs[3]; /* md, md2, events: what each callback reports as */
} tp_reader;

static int tp_create(arb_ctx *ctx, void **self)
{
    tp_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ARB_ENOMEM;
    r->ctx = ctx;
    const char *out;
    int rc = 0;
    rc |= arb_cfg_str(ctx, "md_keys", "", &r->md_keys[0]);
    rc |= arb_cfg_str(ctx, "md_keys2", "", &r->md_keys[1]);
    rc |= arb_cfg_bool(ctx, "md_keys2_later", 0, &r->md_keys2_later);
    rc |= arb_cfg_str(ctx, "accounts", "", &r->accounts);
    rc |= arb_cfg_int(ctx, "command_account", 0, 0, INT64_MAX, &r->command_account);
    rc |= arb_cfg_str(ctx, "out_topic", "tp.seen", &out);
    if (rc == ARB_OK && (r->out_topic = arb_topic(ctx, out)) < 0)
        rc = r->out_topic;
    if (rc != ARB_OK) {
        free(r);
        return rc;
    }
    *self = r;
    return ARB_OK;
}

static void tell(tp_seen_sub *s, const arb_msg *m, uint64_t id)
{
    tp_reader *r = s->reader;
    tp_seen seen = {s->which, m->topic, m->key, arb_now(r->ctx), id};
    arb_publish(r->ctx, r->out_topic, m->key, &seen, sizeof seen);
}

static int subscribe_md(tp_reader *r, int i);

static void on_md(void *user, const arb_msg *m)
{
    tp_seen_sub *s = user;
    arb_market_data md;
    if (arb_market_data_decode(m->data, m->len, &md) == ARB_OK)
        tell(s, m, md.book_seq);
    tp_reader *r = s->reader;
    if (s->which == 1 && r->md_keys2_later) {
        r->md_keys2_later = 0;
        subscribe_md(r, 1);
    }
}

static void on_event(void *user, const arb_msg *m)
{
    arb_order_event ev;
    if (arb_order_event_decode(m->data, m->len, &ev) == ARB_OK)
        tell(user, m, ev.order_id);
}

/* "XA:BTCUSD XB:ETHUSD" -> their keys; the count, or -1 on a bad name. */
static int book_keys(const char *list, arb_key_range *out, int cap)
{
    int n = 0;
    char name[64];
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, " ");
        if (len == 0) {
            p++;
            continue;
        }
        if (len >= sizeof name || n == cap)
            return -1;
        memcpy(name, p, len);
        name[len] = 0;
        char *colon = strchr(name, ':');
        if (!colon)
            return -1;
        *colon = 0;
        char venue[ARB_VENUE_LEN], symbol[ARB_SYMBOL_LEN];
        arb_fixstr_set(venue, ARB_VENUE_LEN, name);
        arb_fixstr_set(symbol, ARB_SYMBOL_LEN, colon + 1);
        uint64_t k = arb_instrument_key(venue, symbol);
        out[n++] = (arb_key_range){k, k};
        p += len;
    }
    return n;
}

static int subscribe_md(tp_reader *r, int i)
{
    const char *list = r->md_keys[i];
    r->subs[i] = (tp_seen_sub){r, (uint32_t)i + 1};
    if (!*list)
        return ARB_OK;
    if (!strcmp(list, "*"))
        return arb_subscribe(r->ctx, ARB_TOPIC_MARKET_DATA, on_md, &r->subs[i]);
    arb_key_range keys[16];
    int n = book_keys(list, keys, 16);
    if (n <= 0)
        return ARB_EINVAL;
    return arb_subscribe_keys(r->ctx, ARB_TOPIC_MARKET_DATA, keys, (size_t)n, on_md, &r->subs[i]);
}

static int subscribe_events(tp_reader *r)
{
    r->subs[2] = (tp_seen_sub){r, 3};
    if (!*r->accounts)
        return ARB_OK;
    if (!strcmp(r->accounts, "*"))
        return arb_subscribe(r->ctx, ARB_TOPIC_ORDER_EVENTS, on_event, &r->subs[2]);
    char *end;
    arb_key_range k;
    k.lo = strtoull(r->accounts, &end, 10);
    k.hi = *end == '-' ? strtoull(end + 1, &end, 10) : k.lo;
    if (*end)
        return ARB_EINVAL;
    return arb_subscribe_keys(r->ctx, ARB_TOPIC_ORDER_EVENTS, &k, 1, on_event, &r->subs[2]);
}

static int tp_start(void *self)
{
    tp_reader *r = self;
    int rc;
    if ((rc = subscribe_md(r, 0)) < 0 || (!r->md_keys2_later && (rc = subscribe_md(r, 1)) < 0) ||
        (rc = subscribe_events(r)) < 0)
        return rc;
    if (r->command_account) {
        arb_order_cmd c = {.action = ARB_CMD_NEW,
                           .side = ARB_SIDE_BUY,
                           .type = ARB_ORD_LIMIT,
                           .tif = ARB_TIF_GTC,
                           .order_id = 1,
                           .account = (uint64_t)r->command_account,
                           .price = 100,
                           .qty = 1};
        arb_fixstr_set(c.venue, ARB_VENUE_LEN, "XA");
        arb_fixstr_set(c.symbol, ARB_SYMBOL_LEN, "BTCUSD");
        uint8_t buf[ARB_ORDER_CMD_LEN];
        uint32_t len = arb_order_cmd_encode(&c, buf, sizeof buf);
        rc = arb_publish(r->ctx, ARB_TOPIC_ORDER_COMMANDS, c.account, buf, len);
        if (rc != ARB_OK)
            return rc;
    }
    return ARB_OK;
}

static void tp_stop(void *self) { (void)self; }
static void tp_destroy(void *self) { free(self); }

static const char *const tp_publishes[] = {"order_commands", "tp.seen", NULL};
static const char *const tp_subscribes[] = {"market_data", "order_events", NULL};

static const arb_plugin tp_desc = {
    .abi_version = ARB_ABI_VERSION,
    .size = sizeof(arb_plugin),
    .name = "tp_reader",
    .version = "1.0.0",
    .publishes = tp_publishes,
    .subscribes = tp_subscribes,
    .create = tp_create,
    .start = tp_start,
    .stop = tp_stop,
    .destroy = tp_destroy,
};

ARB_PLUGIN_DEFINE(tp_desc)
