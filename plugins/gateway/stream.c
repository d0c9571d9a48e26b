/*
 * stream.c -- the gateway's event stream, GET /v1/stream: Server-Sent Events
 * to each client that asked for a topic, the current state first, coalesced
 * books, ticks and PnL on a timer, heartbeats, and the limits that keep a
 * slow or greedy reader from holding the gateway's memory or slots (see
 * gateway_internal.h). Not here: routing and authentication
 * (gateway_plugin.c), the JSON of each event (views.c).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "arb/wire_json.h"
#include "gateway_internal.h"
#include "views.h"

static void stream_free(gateway *gw, stream_client *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        gw->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    gw->n_streams--;
    arb_gauge_set(gw->m_streams, (int64_t)gw->n_streams);
    free(s);
}

/* The client went away or timed out: evhttp has detached the request from
 * the dying connection, and ending the reply is what frees it. */
static void on_stream_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    stream_client *s = arg;
    gateway *gw = s->gw;
    if (evhttp_request_get_connection(s->req) == NULL)
        evhttp_send_reply_end(s->req);
    stream_free(gw, s);
}

/* Drops a client whose unsent output passed the limit: frees its connection
 * (and the buffered bytes with it) at once. */
static void stream_cut(gateway *gw, stream_client *s)
{
    arb_counter_add(gw->m_stream_cut, 1);
    /* One line per 10 s at most: a mass cut-off (256 readers at once) was
     * 256 identical lines. The metric counts each. */
    int64_t now = gw_mono_ns();
    if (gw->cut_logged_ns && now - gw->cut_logged_ns < 10 * 1000000000LL) {
        gw->cuts_unlogged++;
    } else {
        arb_warn(gw->ctx,
                 "stream client cut off: more than %lld bytes unread, or unread for %lld ms "
                 "(%llu more cut off since the last such line)",
                 (long long)gw->stream_limit, (long long)gw->stream_stall_ms,
                 (unsigned long long)gw->cuts_unlogged);
        gw->cut_logged_ns = now;
        gw->cuts_unlogged = 0;
    }
    struct evhttp_connection *evcon = s->evcon;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    stream_free(gw, s);
    evhttp_connection_free(evcon);
}

/* A client is cut off when its unsent output passes stream_buffer_limit
 * (memory: at most max_streams x stream_buffer_limit, plus what the kernel
 * buffers per socket) or has not once been fully written for stream_stall_ms
 * (time). Returns -1 if the client was cut off. */
static int stream_check(gateway *gw, stream_client *s, int64_t now)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    size_t queued = evbuffer_get_length(bufferevent_get_output(bev));
    if (!queued) {
        s->backlog_since = 0;
        return 0;
    }
    if (!s->backlog_since)
        s->backlog_since = now;
    if ((int64_t)queued > gw->stream_limit ||
        now - s->backlog_since > gw->stream_stall_ms * 1000000LL) {
        stream_cut(gw, s);
        return -1;
    }
    return 0;
}

/* Queues text for one client; returns -1 if the client was cut off.
 *
 * The text is copied into the connection's output buffer here, framed as
 * evhttp_send_reply_chunk frames it (a chunk when the reply is chunked, the
 * bare text to an HTTP/1.0 client). evhttp_send_reply_chunk moves the caller's buffer in chain by
 * chain, so each queued event kept a chain of its own, 1 KiB at least for a
 * 300-byte trade: a queue at stream_buffer_limit held three to four times the
 * limit in memory. Copied, the events fill the tail chain (chains grow to
 * 4 KiB), and a queue holds its length plus one chain. The bufferevent
 * writes what is added (evhttp_send_reply_start enabled writing). An empty
 * chunk would end the reply, so empty text is not sent. */
static int stream_send(gateway *gw, stream_client *s, const void *data, size_t len)
{
    if (!len)
        return 0;
    struct evbuffer *out = bufferevent_get_output(evhttp_connection_get_bufferevent(s->evcon));
    if (s->chunked) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        evbuffer_add(out, size, (size_t)n);
    }
    evbuffer_add(out, data, len);
    if (s->chunked)
        evbuffer_add(out, "\r\n", 2);
    return stream_check(gw, s, gw_mono_ns());
}

/* Sends one rendered event to every client that asked for the topic. */
void gw_stream_broadcast(gateway *gw, unsigned topic, struct evbuffer *event)
{
    size_t len = evbuffer_get_length(event);
    const void *data = evbuffer_pullup(event, (ev_ssize_t)len);
    for (stream_client *s = gw->streams, *next; s; s = next) {
        next = s->next;
        if (s->topics & topic)
            stream_send(gw, s, data, len);
    }
}

void gw_stream_to_account(gateway *gw, unsigned topic, uint64_t account, struct evbuffer *event)
{
    size_t len = evbuffer_get_length(event);
    const void *data = evbuffer_pullup(event, (ev_ssize_t)len);
    for (stream_client *s = gw->streams, *next; s; s = next) {
        next = s->next;
        if ((s->topics & topic) && s->key && s->key->account == account)
            stream_send(gw, s, data, len);
    }
}

int gw_stream_wanted_by(gateway *gw, unsigned topic, uint64_t account)
{
    for (stream_client *s = gw->streams; s; s = s->next)
        if ((s->topics & topic) && s->key && s->key->account == account)
            return 1;
    return 0;
}

int gw_stream_wanted(gateway *gw, unsigned topic)
{
    for (stream_client *s = gw->streams; s; s = s->next)
        if (s->topics & topic)
            return 1;
    return 0;
}

static void event_book(gateway *gw, struct evbuffer *ev, int idx)
{
    evbuffer_add(ev, "event: book\ndata: ", 18);
    gw_render_book(ev, gw->rm, idx, (unsigned)gw->stream_depth);
    evbuffer_add(ev, "\n\n", 2);
}

static void event_pnl(gateway *gw, struct evbuffer *ev)
{
    evbuffer_add(ev, "event: pnl\ndata: ", 17);
    board_view anyone = {gw, 0};
    gw_render_accounts(ev, gw->rm, gw_account_label, gw_account_visible, &anyone,
                       (size_t)gw->board_unnamed);
    evbuffer_add(ev, "\n\n", 2);
}

/* Records are rendered by arb/wire_json.h; the buffer fits any tick or
 * market event with room to spare. */
void gw_stream_event_record(struct evbuffer *ev, const char *name, const void *rec, size_t len,
                            const arb_instrument_table *t)
{
    char text[1024];
    int n = arb_wire_json(rec, len, t, text, sizeof text);
    if (n < 0 || (size_t)n >= sizeof text)
        return;
    evbuffer_add_printf(ev, "event: %s\ndata: ", name);
    evbuffer_add(ev, text, (size_t)n);
    evbuffer_add(ev, "\n\n", 2);
}

/* Coalesced topics: each changed book, the last tick and the PnL board are
 * sent at most once per stream interval (PnL once a second), so a fast
 * market costs the stream a bounded rate whatever the matcher publishes. */
void gw_stream_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    gw_sync_conn_stats(gw);
    /* A stalled reader is cut off even while nothing new is sent to it. */
    int64_t now = gw_mono_ns();
    for (stream_client *s = gw->streams, *next; s; s = next) {
        next = s->next;
        stream_check(gw, s, now);
    }
    if (!gw->streams)
        return;
    struct evbuffer *ev = evbuffer_new();
    if (!ev)
        return;
    if (gw_stream_wanted(gw, ST_BOOK))
        for (size_t i = 0; i < gw->instruments.count; i++) {
            if (gw->rm->books[i].version == gw->book_sent[i])
                continue;
            gw->book_sent[i] = gw->rm->books[i].version;
            evbuffer_drain(ev, evbuffer_get_length(ev));
            event_book(gw, ev, (int)i);
            gw_stream_broadcast(gw, ST_BOOK, ev);
        }
    if (gw->tick_dirty) {
        gw->tick_dirty = 0;
        evbuffer_drain(ev, evbuffer_get_length(ev));
        gw_stream_event_record(ev, "tick", gw->tick_rec, sizeof gw->tick_rec, &gw->instruments);
        gw_stream_broadcast(gw, ST_TICKS, ev);
    }
    now = gw_mono_ns();
    if (gw->pnl_dirty && now - gw->pnl_last_ns >= 1000000000LL) {
        gw->pnl_dirty = 0;
        gw->pnl_last_ns = now;
        evbuffer_drain(ev, evbuffer_get_length(ev));
        event_pnl(gw, ev);
        gw_stream_broadcast(gw, ST_PNL, ev);
    }
    evbuffer_free(ev);
}

void gw_stream_on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gateway *gw = arg;
    char line[64];
    int n = snprintf(line, sizeof line, ": heartbeat %lld\n\n", (long long)arb_now(gw->ctx));
    for (stream_client *s = gw->streams, *next; s; s = next) {
        next = s->next;
        stream_send(gw, s, line, (size_t)n);
    }
}

static int authenticate_stream(gateway *gw, struct evhttp_request *req)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *token;
    size_t tlen;
    if (auth && gw_bearer_token(auth, &token, &tlen) == 0 && gw_keys_find(&gw->keys, token, tlen))
        return 1;
    gw_reply_error(gw, req, 401, "unauthorized",
                   "the orders and fills topics are the key's own: send Authorization: Bearer KEY");
    return 0;
}

static int parse_topics(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"trades", ST_TRADES}, {"book", ST_BOOK}, {"ticks", ST_TICKS},
                 {"market", ST_MARKET}, {"pnl", ST_PNL},   {"orders", ST_ORDERS},
                 {"fills", ST_FILLS}};
    unsigned topics = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        size_t i = 0;
        while (i < sizeof names / sizeof *names &&
               (strlen(names[i].name) != n || strncmp(names[i].name, s, n)))
            i++;
        if (i == sizeof names / sizeof *names)
            return -1;
        topics |= names[i].bit;
        s += n;
        if (*s == ',')
            s++;
    }
    if (!topics)
        return -1;
    *out = topics;
    return 0;
}

void gw_stream_handle(gateway *gw, struct evhttp_request *req)
{
    if (!gw_allow_read(gw, req))
        return;
    gw_query_args q;
    unsigned topics = ST_ALL;
    int bad = gw_query_parse(&q, req) != 0;
    const char *t = bad ? NULL : gw_query_get(&q, "topics");
    if (t && parse_topics(t, &topics))
        bad = 1;
    gw_query_free(&q);
    if (bad) {
        gw_reply_error(gw, req, 400, "invalid_topics",
                       "topics is a comma-separated list of trades, book, ticks, market, pnl, "
                       "orders, fills");
        return;
    }
    /* The private topics: the key's own orders and fills, so a valid key. */
    if ((topics & (ST_ORDERS | ST_FILLS)) && !authenticate_stream(gw, req))
        return;
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Cache-Control", "no-cache");
        gw_reply(gw, req, 200, "text/event-stream");
        return;
    }
    if (gw->n_streams >= (size_t)gw->max_streams) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        gw_reply_error(gw, req, 503, "too_many_streams", "the gateway serves %lld streams at most",
                       (long long)gw->max_streams);
        return;
    }
    /* Slots per client address and per key, so that one client cannot
     * take them all. The key is the one presented, if it is valid. */
    uint64_t addr = gw_conn_addr(&gw->conns, evhttp_request_get_connection(req));
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *token;
    size_t tlen;
    const gw_api_key *key = auth && gw_bearer_token(auth, &token, &tlen) == 0
                                ? gw_keys_find(&gw->keys, token, tlen)
                                : NULL;
    int64_t by_addr = 0, by_key = 0;
    for (stream_client *o = gw->streams; o; o = o->next) {
        by_addr += addr && o->addr == addr;
        by_key += key && o->key == key;
    }
    if (by_addr >= gw->max_streams_per_addr || by_key >= gw->max_streams_per_key) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        gw_reply_error(gw, req, 429, "too_many_streams",
                       "at most %lld streams per client address and %lld per key",
                       (long long)gw->max_streams_per_addr, (long long)gw->max_streams_per_key);
        return;
    }
    stream_client *s = calloc(1, sizeof *s);
    if (!s) {
        gw_reply_error(gw, req, 503, "out_of_memory", "try again");
        return;
    }
    s->gw = gw;
    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    s->topics = topics;
    s->addr = addr;
    s->key = key;
    s->next = gw->streams;
    if (gw->streams)
        gw->streams->prev = s;
    gw->streams = s;
    gw->n_streams++;
    arb_gauge_set(gw->m_streams, (int64_t)gw->n_streams);
    gw_count_status(gw, 200);

    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(req, 200, "OK");
    /* evhttp chunks the reply (HTTP/1.1) or ends it by closing (1.0). */
    const char *te = evhttp_find_header(h, "Transfer-Encoding");
    s->chunked = te && !strcmp(te, "chunked");
    gw_conn_drop(&gw->conns, s->evcon);
    evhttp_connection_set_closecb(s->evcon, on_stream_closed, s);
    /* A stream only writes: no read timeout (the client sends nothing), but
     * a write that makes no progress for idle_timeout_s ends it. */
    struct timeval wtv = {(time_t)gw->idle_s, 0};
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    bufferevent_set_timeouts(bev, NULL, &wtv);
    /* The kernel's share of a reader that stopped: left to autotuning, a
     * socket's send buffer grows to tcp_wmem's maximum (4 MiB), so 256 such
     * readers held about 1 GiB of kernel memory and the gateway began to
     * queue, and so to cut them off, only a minute later. Capped at
     * stream_buffer_limit (the kernel doubles it for its bookkeeping), the
     * kernel holds at most about the gateway's own limit again, still far
     * more than a stream sends in a round trip. */
    int sndbuf = (int)gw->stream_limit;
    setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    /* The current state first, so a page renders before the next change. */
    struct evbuffer *ev = evbuffer_new();
    if (!ev)
        return;
    evbuffer_add_printf(ev, "retry: 2000\n\n");
    if (topics & ST_BOOK)
        for (size_t i = 0; i < gw->instruments.count; i++)
            event_book(gw, ev, (int)i);
    if (topics & ST_PNL)
        event_pnl(gw, ev);
    if (topics & ST_TRADES) {
        /* The recent tape, oldest first. */
        for (size_t i = 0; i < gw->instruments.count; i++) {
            const gw_trade_ring *r = &gw->rm->trades[i];
            size_t n = r->count < 20 ? r->count : 20;
            for (size_t k = n; k-- > 0;) {
                evbuffer_add(ev, "event: trade\ndata: ", 19);
                gw_render_trade(ev, gw->rm, (int)i, &r->items[(r->head + r->cap - 1 - k) % r->cap]);
                evbuffer_add(ev, "\n\n", 2);
            }
        }
    }
    size_t len = evbuffer_get_length(ev);
    stream_send(gw, s, evbuffer_pullup(ev, (ev_ssize_t)len), len);
    evbuffer_free(ev);
}

void gw_streams_close_all(gateway *gw)
{
    while (gw->streams) {
        stream_client *s = gw->streams;
        struct evhttp_connection *evcon = s->evcon;
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        stream_free(gw, s);
        evhttp_connection_free(evcon);
    }
}
