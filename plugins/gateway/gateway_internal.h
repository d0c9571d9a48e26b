/*
 * gateway_internal.h -- what the gateway's own files share: the instance's
 * state (struct gateway) and the helpers gateway_plugin.c (configuration,
 * routing, authentication, orders, the bus) and stream.c (the event
 * stream) call in each other. Not for anything outside plugins/gateway/.
 */
#ifndef GW_GATEWAY_INTERNAL_H
#define GW_GATEWAY_INTERNAL_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "api_keys.h"
#include "arb/instrument.h"
#include "arb/plugin.h"
#include "arb/wire.h"
#include "http_conn.h"
#include "read_model.h"
#include "recover.h"
#include "services.h"
#include "u64map.h"

/* Topics a stream client may ask for. */
enum {
    ST_TRADES = 1u << 0,
    ST_BOOK = 1u << 1,
    ST_TICKS = 1u << 2,
    ST_MARKET = 1u << 3,
    ST_PNL = 1u << 4,
    ST_ALL = (1u << 5) - 1, /* the public topics: the default */
    /* Private: the key's own account only, and only with a key. */
    ST_ORDERS = 1u << 5,
    ST_FILLS = 1u << 6,
};

typedef struct gateway gateway;

/* A POST or DELETE waiting for the matcher's answer. */
enum { P_NEW = 1, P_CANCEL = 2 };
typedef struct pending {
    struct evhttp_request *req;
    uint64_t order_id;
    uint8_t kind;
    uint8_t ready;               /* on the ready list */
    uint8_t cmd_rejected;        /* the matcher refused this cancel */
    int64_t deadline;            /* monotonic ns */
    int64_t started;             /* monotonic ns, for the latency histogram */
    struct pending *prev, *next; /* deadline order (all share one timeout) */
    struct pending *order_next;  /* others waiting on the same order */
    struct pending *ready_next;
} pending;

/* An order command waiting for the end of this loop turn (see send_batch). */
typedef struct batched_cmd {
    struct evhttp_request *req;
    arb_order_cmd cmd;
    uint8_t async;
} batched_cmd;
#define GW_BATCH_MAX 256

typedef struct stream_client {
    gateway *gw;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    unsigned topics;
    uint64_t addr;         /* client address key (gw_conn_addr), 0 if unknown */
    const gw_api_key *key; /* the key it presented, or NULL */
    int64_t backlog_since; /* monotonic ns its queue last went from empty to not, or 0 */
    int chunked;           /* the reply is HTTP/1.1 chunked (stream_send frames) */
    struct stream_client *prev, *next;
} stream_client;

typedef struct account_name {
    uint64_t account;
    char *name;
} account_name;

struct gateway {
    arb_ctx *ctx;

    /* config */
    const char *listen;
    int64_t timeout_ms, max_body, rate, burst, idle_s, stream_limit, max_streams, max_pending;
    int64_t heartbeat_ms, stream_ms, stream_depth, trade_history, order_history, board_unnamed;
    int64_t max_open, svc_alive_ms, svc_dead_ms, max_services, client_window_s;
    int64_t request_timeout_ms, max_conns, max_conns_per_addr, anon_rate, anon_burst;
    int64_t stream_stall_ms, max_streams_per_addr, max_streams_per_key;
    int public_reads;
    const char *runs_dir;        /* run report pages under /runs/, "": off */
    const char *snap_topic_name; /* snapshots of the read models, "": off */
    int64_t snap_records, snap_interval_ms;
    uint64_t id_space;
    arb_instrument_table instruments;
    gw_key_table keys;
    account_name *names;
    size_t n_names;
    uint64_t *public_ids; /* public_accounts */
    size_t n_public;
    int public_agents; /* the config's agents join the public accounts */

    /* state */
    uint64_t next_seq; /* low 48 bits of the next order id */
    gw_read_model *rm;
    gw_recovery recovery; /* what the rebuild at start took (skipped when delivered) */
    gw_services services; /* from service_registry */
    struct event_base *base;
    struct evhttp *http;
    gw_conns conns;
    gw_conn_stats conn_stats_seen; /* what the metrics have counted */
    gw_u64map anon_buckets;        /* client address key -> gw_token_bucket */
    char bound_addr[64];
    struct event *flush_ev, *deadline_ev, *heartbeat_ev, *stream_ev;
    gw_u64map pending_by_order; /* order id -> first pending */
    pending *p_head, *p_tail;
    size_t n_pending;
    pending *ready_head;
    batched_cmd *batch; /* commands of this loop turn, sent together */
    size_t n_batch;
    struct event *batch_ev;
    stream_client *streams;
    size_t n_streams;
    uint64_t *book_sent; /* book version last streamed, per instrument */
    uint8_t tick_rec[ARB_TICK_LEN];
    int tick_dirty, pnl_dirty;
    int64_t pnl_last_ns;

    /* metrics */
    arb_counter *m_2xx, *m_4xx, *m_5xx, *m_orders, *m_stream_cut, *m_timeouts;
    int64_t cut_logged_ns;  /* the last "cut off" line (stream.c, stream_cut) */
    uint64_t cuts_unlogged; /* cut-offs since it, not logged one by one */
    arb_counter *m_conn_refused, *m_req_timeouts, *m_accept_pauses, *m_anon_limited;
    arb_histogram *m_order_latency;
    arb_gauge *m_streams, *m_pending;
    arb_counter *m_snapshots;
    arb_gauge *m_snap_bytes, *m_rebuild_events, *m_rebuild_trades, *m_rebuild_from_snap;
    arb_histogram *m_snap_encode;
};

/* Who reads the PnL board: anyone (viewer 0) sees the public accounts, a
 * key's holder those and its own account. */
typedef struct board_view {
    gateway *gw;
    uint64_t viewer;
} board_view;

static inline int64_t gw_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- gateway_plugin.c ---- */

void gw_count_status(gateway *gw, int status);
/* Sends whatever the handler wrote into the request's output buffer. */
void gw_reply(gateway *gw, struct evhttp_request *req, int status, const char *content_type);
void gw_reply_json(gateway *gw, struct evhttp_request *req, int status);
/* {"error":{"code","message"}} with the status. */
__attribute__((format(printf, 5, 6))) void gw_reply_error(gateway *gw, struct evhttp_request *req,
                                                          int status, const char *code,
                                                          const char *fmt, ...);
/* Market data routes: public unless public_reads = false; 0 after answering. */
int gw_allow_read(gateway *gw, struct evhttp_request *req);
typedef struct gw_query_args {
    struct evkeyvalq kv;
    int parsed;
} gw_query_args;
int gw_query_parse(gw_query_args *q, struct evhttp_request *req);
const char *gw_query_get(gw_query_args *q, const char *key);
void gw_query_free(gw_query_args *q);
/* For gw_render_accounts, with a board_view as user. */
const char *gw_account_label(void *user, uint64_t account);
int gw_account_visible(void *user, uint64_t account);
/* The connection guard's counts into the metrics. */
void gw_sync_conn_stats(gateway *gw);

/* ---- stream.c ---- */

void gw_stream_handle(gateway *gw, struct evhttp_request *req);

/* run_pages.c: /runs/ (the index) and /runs/NAME.html from runs_dir. */
void gw_run_pages_index(gateway *gw, struct evhttp_request *req);
void gw_run_page(gateway *gw, struct evhttp_request *req, const char *name, size_t n);
/* Sends one rendered event to every client that asked for the topic. */
void gw_stream_broadcast(gateway *gw, unsigned topic, struct evbuffer *event);
/* To the streams of keys of `account` that asked for the (private) topic. */
void gw_stream_to_account(gateway *gw, unsigned topic, uint64_t account, struct evbuffer *event);
int gw_stream_wanted_by(gateway *gw, unsigned topic, uint64_t account);
/* Whether any client asked for the topic. */
int gw_stream_wanted(gateway *gw, unsigned topic);
/* A wire record as an event named name (arb/wire_json.h). */
void gw_stream_event_record(struct evbuffer *ev, const char *name, const void *rec, size_t len,
                            const arb_instrument_table *t);
/* Timers: coalesced topics every stream_interval_ms, heartbeats. */
void gw_stream_on_timer(evutil_socket_t fd, short what, void *arg);
void gw_stream_on_heartbeat(evutil_socket_t fd, short what, void *arg);
/* Ends every stream and frees its connection (the gateway stops). */
void gw_streams_close_all(gateway *gw);

#endif
