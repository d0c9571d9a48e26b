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
 * The gateway also has it guard the server (gw_conns_guard): which
 * connections are admitted, how long a request may take to arrive, what
 * happens when accept runs out of descriptors, and evhttp's own error
 * answers rewritten as JSON. Each hold is then made when the connection is
 * accepted rather than at its first request.
 *
 * One gw_conns per evhttp instance, used on the loop that runs it.
 */
#ifndef GW_HTTP_CONN_H
#define GW_HTTP_CONN_H

#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "http_framing.h"
#include "u64map.h"

/* What a connection may cost (see gw_conns_guard). 0 turns a limit off. */
typedef struct gw_conn_limits {
    int64_t request_timeout_ms; /* a request's head and body must have arrived this long
                                   after the connection opened or the request's first
                                   byte (later requests on a keep-alive connection) */
    size_t max_conns;           /* open HTTP connections (streams are counted apart) */
    size_t max_conns_per_addr;  /* of them, from one client address */
    /* The request's bytes are scanned as they arrive (gw_http_scan, see
     * http_framing.h) when both are set: */
    size_t max_head;   /* request line and header fields (and a trailer), line
                          ends included: past it 414 or 431. At most evhttp's
                          max_headers_size, which counts without line ends, so
                          the scan always sees it first. */
    uint64_t max_body; /* chunk data in all: past it 413 at the chunk's size line */
} gw_conn_limits;

/* What the guard did, for metrics: counts since start. */
typedef struct gw_conn_stats {
    uint64_t refused;       /* connections over a limit, answered 503 and closed */
    uint64_t timed_out;     /* requests over request_timeout_ms, answered 408 and closed */
    uint64_t accept_pauses; /* episodes of accept failing for lack of descriptors */
} gw_conn_stats;

/* A line for the log, at warning level. */
typedef void (*gw_conn_log_fn)(void *user, const char *message);

typedef struct gw_conns {
    struct event_base *base;
    gw_u64map holds; /* connection -> its hold (see gw_conn_wait) */
    time_t date_sec; /* second the cached Date header was made for */
    char date[40];
    /* The guard (gw_conns_guard); all zero without it. */
    gw_conn_limits limits;
    struct timeval deadline_tv; /* request_timeout_ms, as a common timeout */
    gw_conn_stats stats;
    gw_conn_log_fn log;
    void *log_user;
    size_t n_conns;              /* admitted and open */
    gw_u64map per_addr;          /* client address key -> open connections */
    struct conn_hold *admitting; /* accepted, not yet looked at (see on_admit) */
    struct event *admit_ev;      /* runs on_admit */
    struct evconnlistener *listener;
    struct event *resume_ev;       /* re-enables accepting after a pause */
    int64_t backoff_ms;            /* 0: accepting normally */
    uint64_t failed_accepts;       /* in the current pause episode */
    struct gw_conns *next_guarded; /* see guarded in http_conn.c */
} gw_conns;

void gw_conns_init(gw_conns *c, struct event_base *base);
/* After evhttp_free: frees any hold a connection left. */
void gw_conns_free(gw_conns *c);

/* A request was handed to the application: evhttp has just stopped reading
 * the connection. Call first thing in the request callback. */
void gw_conn_wait(gw_conns *c, struct evhttp_connection *evcon);
/* After gw_conn_wait: 0 if the request's bytes were fine, or the status
 * (400, 413, 414 or 431) and *err for the fault the scan found in a request
 * evhttp took anyway (a chunk size "0x5", chunk data not ended by CRLF, a
 * head over max_head but within evhttp's limit). Answer it and close the
 * connection: what evhttp read after the fault is not to be trusted. */
int gw_conn_request_error(gw_conns *c, struct evhttp_connection *evcon, gw_framing_error *err);
/* The connection becomes a stream and sets its own close callback; its
 * output is no longer looked at for evhttp's error pages (see
 * gw_conns_json_errors), which cannot come once the answer has begun. */
void gw_conn_drop(gw_conns *c, struct evhttp_connection *evcon);

/* Answers req with status and whatever is in its output buffer: adds Date
 * and Content-Type, sends, and writes the bytes now. req is freed by the
 * time this returns (evhttp frees a finished request). */
void gw_conn_send(gw_conns *c, struct evhttp_request *req, int status, const char *content_type);

/* Guards the server: every accepted connection is admitted or refused
 * against the limits (503 JSON and closed), each request must arrive whole
 * within request_timeout_ms (else 408 JSON and closed), a request whose
 * bytes the scan refuses (max_head, max_body) is answered at once with the
 * scan's status and closed, or, if evhttp refused it first, evhttp's answer
 * carries the scan's status instead of evhttp's, and accept failing
 * for lack of file descriptors pauses accepting with a back-off (10 ms
 * doubling to 1 s) instead of retrying on every loop turn, logged once when
 * the episode starts and once when it ends. Includes gw_conns_json_errors.
 * Call once, after binding (bound: what evhttp_accept_socket_with_handle
 * returned). 0, or -1 (no memory). */
int gw_conns_guard(gw_conns *c, struct evhttp *http, struct evhttp_bound_socket *bound,
                   const gw_conn_limits *limits, gw_conn_log_fn log, void *log_user);
/* The client address key of an admitted connection (a hash of its IP
 * address, never 0), or 0 if the connection is not guarded. */
uint64_t gw_conn_addr(gw_conns *c, struct evhttp_connection *evcon);
/* The same key for an address. */
uint64_t gw_addr_key(const struct sockaddr *sa);

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
 * same way, so give each instance its own). An address another process
 * listens on is refused (EADDRINUSE): the port is shared only within one
 * process. */
evutil_socket_t gw_http_listen(const char *addr, char *bound, size_t bound_cap);

#endif
