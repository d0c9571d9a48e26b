/*
 * http_conn.h -- the gateway's HTTP layer under evhttp: the listening
 * socket, sending an answer, and keeping each keep-alive connection's work in
 * the kernel to one read and one write per request.
 *
 * evhttp left to itself costs a loaded server several system calls per
 * request beyond the read and the write: it formats the Date header each
 * time, it waits a loop turn for the socket to be reported writable, and it
 * stops and restarts reading around every request, which libevent turns into
 * epoll_ctl calls. This file takes those away without changing what evhttp
 * does with the request (see http_conn.c for each). It knows nothing of
 * orders or routes: the gateway and make bench's HTTP floor
 * (tests/bench/http_floor_plugin.c) use it alike.
 *
 * One gw_conns per evhttp instance, used on the loop that runs it.
 */
#ifndef GW_HTTP_CONN_H
#define GW_HTTP_CONN_H

#include <event2/http.h>
#include <event2/util.h>
#include <stddef.h>
#include <time.h>

#include "u64map.h"

typedef struct gw_conns {
    struct event_base *base;
    gw_u64map holds; /* connection -> its hold (see gw_conn_wait) */
    time_t date_sec; /* second the cached Date header was made for */
    char date[40];
} gw_conns;

void gw_conns_init(gw_conns *c, struct event_base *base);
/* After evhttp_free: frees any hold a connection left. */
void gw_conns_free(gw_conns *c);

/* A request was handed to the application: evhttp has just stopped reading
 * the connection. Call first thing in the request callback. */
void gw_conn_wait(gw_conns *c, struct evhttp_connection *evcon);
/* The connection becomes a stream and sets its own close callback. */
void gw_conn_drop(gw_conns *c, struct evhttp_connection *evcon);

/* Answers req with status and whatever is in its output buffer: adds Date
 * and Content-Type, sends, and writes the bytes now. req is freed by the
 * time this returns (evhttp frees a finished request). */
void gw_conn_send(gw_conns *c, struct evhttp_request *req, int status, const char *content_type);

/* Makes the answers evhttp sends by itself (a malformed request, a request
 * line, header block or body over evhttp's limits) JSON errors
 * {"error":{"code","message"}} with the same status, instead of evhttp's
 * HTML page. Call once, after evhttp_new. */
void gw_conns_json_errors(gw_conns *c, struct evhttp *http);

/* A non-blocking TCP listening socket for "address:port" with SO_REUSEADDR,
 * SO_REUSEPORT and TCP_NODELAY (inherited by accepted sockets), or -1 with
 * errno set. bound gets the address actually bound ("127.0.0.1:8080").
 * SO_REUSEPORT lets a hot-reloaded instance listen before the old one closes
 * its socket (the kernel then spreads new connections over both until the
 * old one closes; two gateways configured on one port would share it the
 * same way, so give each instance its own). */
evutil_socket_t gw_http_listen(const char *addr, char *bound, size_t bound_cap);

#endif
