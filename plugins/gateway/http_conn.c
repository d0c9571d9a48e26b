/*
 * http_conn.c -- the gateway's HTTP layer under evhttp (see http_conn.h).
 */
#include "http_conn.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void guarded_remove(gw_conns *c);

void gw_conns_init(gw_conns *c, struct event_base *base)
{
    memset(c, 0, sizeof *c);
    c->base = base;
}

/* The Date header, formatted once per second: evhttp would format it for
 * every response, which costs about a third of a small request's time. */
static const char *date_header(gw_conns *c)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME_COARSE, &now);
    if (now.tv_sec != c->date_sec) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        strftime(c->date, sizeof c->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        c->date_sec = now.tv_sec;
    }
    return c->date;
}

/* Writes a response evhttp has just queued on the connection now, rather
 * than when the loop next reports the socket writable. evhttp_send_reply
 * only queues the bytes and asks for a write event: left to itself that is
 * an epoll_ctl to watch for EPOLLOUT, a loop turn to be told the socket is
 * writable (a loopback socket nearly always is), the write, and another
 * epoll_ctl to stop watching. Written here, the watch is added and removed
 * within this turn, which the loop's epoll changelist folds away, and the
 * answer leaves a turn earlier. When everything is written the bufferevent's
 * write callback is run as if the loop had written it, so evhttp finishes
 * the request exactly as it would have (frees it, reads the next request or
 * closes the connection). Whatever cannot be written now (a full socket
 * buffer, an error) stays queued for evhttp's own write path, which then
 * runs unchanged. The write is libevent's own (evbuffer_write: writev of
 * the chains, drained as written), as evhttp's path does it; a sendmsg of
 * peeked chains written here before sent the start of a large answer twice
 * on a keep-alive connection (test_gateway_http checks it). A client gone
 * away is an error, not a SIGPIPE: the host ignores SIGPIPE. */
static void write_now(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0 || evbuffer_get_length(out) == 0)
        return;
    /* libevent's own writer: writev of the chains, drained as written. */
    if (evbuffer_write(out, fd) <= 0)
        return;
    if (evbuffer_get_length(out) == 0)
        bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
}

/* Keeps a keep-alive socket's read interest registered with epoll for the
 * connection's whole life. evhttp stops reading once a request is read and
 * starts again once it is answered; when the answer comes in a later loop
 * turn (an order waits for the matcher) and nothing else watches the socket,
 * libevent turns that into EPOLL_CTL_DEL and then EPOLL_CTL_ADD, ~1 us per
 * order together. A hold is a second, persistent read event on the socket:
 * with it the socket's registration never changes, and libevent's changelist
 * has nothing to tell the kernel.
 *
 * While evhttp reads, the hold's reports are evhttp's too and it ignores
 * them. While a request waits for its answer, evhttp is not reading, so a
 * socket that stays readable (a pipelined request, the peer's FIN, an RST:
 * epoll reports all of them to libevent as EV_READ) would be reported on
 * every loop turn: on the second report in a row the hold stops watching
 * until the answer is sent, and evhttp finds the data or the close when it
 * reads again, as it always did. (The first is let pass: it can be the
 * report of the request evhttp has just read in the same loop turn.)
 *
 * A hold is freed in evhttp's close callback, which evhttp runs for every
 * incoming connection before it closes the socket; a connection that becomes
 * a stream, which sets its own close callback, gives its hold up first. */
typedef struct conn_hold {
    gw_conns *conns;
    struct evhttp_connection *evcon;
    struct event *ev;
    uint8_t waiting; /* a request is with the application, not yet answered */
    uint8_t reports; /* readable reports while waiting */
    uint8_t counted; /* guarded: in n_conns and per_addr */
    /* Guarded connections only (gw_conns_guard): */
    struct bufferevent *bev;
    struct event *deadline; /* request_timeout_ms */
    uint64_t addr;          /* client address key */
    struct conn_hold *admit_next;
    /* The scan of the request being read (gw_conn_limits.max_head): */
    gw_http_scan scan;
    size_t scanned;   /* bytes at the input's front already scanned */
    uint8_t patching; /* the input is being rewritten by patch_space */
    int req_status;   /* the scan's verdict on the request handed over */
    gw_framing_error req_err;
} conn_hold;

static void on_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg);
static void on_output_added(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg);

static int scanning(const gw_conns *c) { return c->limits.max_head && c->limits.max_body; }

static void uncount(conn_hold *h)
{
    gw_conns *c = h->conns;
    size_t per = (size_t)(uintptr_t)gw_map_get(&c->per_addr, h->addr);
    if (per <= 1)
        gw_map_del(&c->per_addr, h->addr);
    else
        gw_map_put(&c->per_addr, h->addr, (void *)(uintptr_t)(per - 1));
    c->n_conns--;
    h->counted = 0;
}

static void hold_release(conn_hold *h)
{
    gw_map_del(&h->conns->holds, (uintptr_t)h->evcon);
    if (h->counted)
        uncount(h);
    if (h->bev) {
        evbuffer_remove_cb(bufferevent_get_input(h->bev), on_input_added, h);
        evbuffer_remove_cb(bufferevent_get_output(h->bev), on_output_added, h);
    }
    if (h->deadline)
        event_free(h->deadline);
    if (h->ev)
        event_free(h->ev);
    free(h);
}

static void on_hold_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    hold_release(arg);
}

static void on_hold_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_hold *h = arg;
    if (h->waiting && ++h->reports >= 2)
        event_del(h->ev);
}

/* The request deadline runs from the connection's admission for its first
 * request and from the first byte of each later one; it stops when the
 * request reaches the application. */
static void arm_deadline(conn_hold *h)
{
    if (h->deadline && h->conns->limits.request_timeout_ms > 0)
        evtimer_add(h->deadline, &h->conns->deadline_tv);
}

/* evhttp reads a chunk size up to the first byte that is not a hex digit
 * and takes the line only if that byte is a space (whatever follows it is
 * ignored), so an extension ("5;x=1", "5\t;x") is refused. The byte at off,
 * the first after the size, is made a space: evhttp then reads the size and
 * ignores the extension, as RFC 9112 section 7.1.1 asks. An evbuffer is
 * changed only at its ends, so the input is taken out and put back around
 * the byte (its chains are moved, not copied). */
static void patch_space(conn_hold *h, struct evbuffer *in, size_t off)
{
    struct evbuffer *rest = evbuffer_new();
    if (!rest)
        return; /* evhttp refuses the line: answered 400 (see on_output_added) */
    h->patching = 1;
    evbuffer_remove_buffer(in, rest, evbuffer_get_length(in));
    evbuffer_remove_buffer(rest, in, off);
    evbuffer_drain(rest, 1);
    evbuffer_add(in, " ", 1);
    evbuffer_add_buffer(in, rest);
    h->patching = 0;
    evbuffer_free(rest);
}

/* Scans what has arrived since the last call, before evhttp reads it. */
static void scan_input(conn_hold *h, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    while (h->scanned < len && h->scan.state < GW_SCAN_DONE) {
        struct evbuffer_ptr at;
        struct evbuffer_iovec v[8];
        if (evbuffer_ptr_set(in, &at, h->scanned, EVBUFFER_PTR_SET))
            return;
        int nv = evbuffer_peek(in, (ev_ssize_t)(len - h->scanned), &at, v, 8);
        for (int i = 0; i < nv && i < 8 && h->scan.state < GW_SCAN_DONE; i++) {
            size_t took = gw_http_scan_feed(&h->scan, v[i].iov_base, v[i].iov_len);
            h->scanned += took;
            if (h->scan.patch_at != UINT64_MAX) {
                patch_space(h, in, h->scanned - (size_t)(h->scan.fed - h->scan.patch_at));
                break; /* the chains have moved: peek again */
            }
        }
    }
    /* Answered now, unless evhttp has the request (gw_conn_request_error
     * then tells the gateway) or answers it itself in this turn. */
    if (h->scan.state == GW_SCAN_FAILED && !h->waiting && h->deadline)
        event_active(h->deadline, EV_TIMEOUT, 1);
}

static void on_input_added(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    conn_hold *h = arg;
    if (h->patching)
        return;
    if (info->n_deleted) /* evhttp reads from the front */
        h->scanned = info->n_deleted < h->scanned ? h->scanned - info->n_deleted : 0;
    if (!info->n_added)
        return;
    if (!h->waiting && h->deadline && !evtimer_pending(h->deadline, NULL))
        arm_deadline(h);
    if (scanning(h->conns) && h->scan.state < GW_SCAN_DONE)
        scan_input(h, in);
    else if (h->scan.state == GW_SCAN_FAILED && !h->waiting && h->deadline)
        event_active(h->deadline, EV_TIMEOUT, 1); /* a pipelined request (gw_conn_wait) */
}

void gw_conn_wait(gw_conns *c, struct evhttp_connection *evcon)
{
    if (!evcon)
        return;
    conn_hold *h = gw_map_get(&c->holds, (uintptr_t)evcon);
    if (!h) {
        evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
        if (fd < 0 || !(h = calloc(1, sizeof *h)))
            return;
        h->conns = c;
        h->evcon = evcon;
        h->ev = event_new(c->base, fd, EV_READ | EV_PERSIST, on_hold_ready, h);
        if (!h->ev || event_add(h->ev, NULL) || gw_map_put(&c->holds, (uintptr_t)evcon, h)) {
            if (h->ev)
                event_free(h->ev);
            free(h);
            return;
        }
        evhttp_connection_set_closecb(evcon, on_hold_closed, h);
    }
    h->waiting = 1;
    h->reports = 0;
    if (h->deadline)
        evtimer_del(h->deadline);
    /* evhttp has read this request to its end: the next one starts at the
     * input's front, where the scan starts again. */
    h->req_status = h->scan.state == GW_SCAN_FAILED ? h->scan.status : 0;
    h->req_err = h->scan.err;
    if (scanning(c)) {
        gw_http_scan_start(&h->scan, c->limits.max_head, c->limits.max_body);
        h->scanned = 0;
        /* A pipelined request already here is scanned now; a fault in it
         * is answered when evhttp reads it (on_output_added, the gateway),
         * or when more of it arrives, or at its deadline (on_deadline). */
        if (h->bev && evbuffer_get_length(bufferevent_get_input(h->bev)))
            scan_input(h, bufferevent_get_input(h->bev));
    }
}

int gw_conn_request_error(gw_conns *c, struct evhttp_connection *evcon, gw_framing_error *err)
{
    conn_hold *h = evcon ? gw_map_get(&c->holds, (uintptr_t)evcon) : NULL;
    if (!h || !h->req_status)
        return 0;
    *err = h->req_err;
    return h->req_status;
}

/* The answer is about to be sent: evhttp reads again once it is. */
static void hold_answered(gw_conns *c, struct evhttp_connection *evcon)
{
    conn_hold *h = evcon ? gw_map_get(&c->holds, (uintptr_t)evcon) : NULL;
    if (!h)
        return;
    h->waiting = 0;
    if (!event_pending(h->ev, EV_READ, NULL))
        event_add(h->ev, NULL);
    /* A pipelined request is already here: its clock runs now. */
    if (h->bev && evbuffer_get_length(bufferevent_get_input(h->bev)))
        arm_deadline(h);
}

void gw_conn_drop(gw_conns *c, struct evhttp_connection *evcon)
{
    conn_hold *h = evcon ? gw_map_get(&c->holds, (uintptr_t)evcon) : NULL;
    if (h) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        hold_release(h);
    }
    /* evhttp writes no error page of its own on a connection whose answer
     * has begun (it reads nothing while it writes), and the look for one
     * (removed by hold_release on a guarded connection, here otherwise)
     * walks the output buffer's chains to the added bytes: on a stream,
     * whose queue can hold thousands of events, that was a walk of the
     * whole queue for every event queued, which held the loop for seconds
     * while many slow readers filled up. */
    if (evcon)
        evbuffer_remove_cb(bufferevent_get_output(evhttp_connection_get_bufferevent(evcon)),
                           on_output_added, NULL);
}

void gw_conns_free(gw_conns *c)
{
    /* evhttp_free has freed every hold through the close callbacks; should
     * another libevent release skip one, it is freed here. */
    for (size_t i = 0; i < c->holds.cap; i++)
        if (c->holds.slots[i].key) {
            conn_hold *h = c->holds.slots[i].val;
            if (h->deadline)
                event_free(h->deadline);
            event_free(h->ev);
            free(h);
        }
    gw_map_free(&c->holds);
    gw_map_free(&c->per_addr);
    while (c->admitting) {
        conn_hold *h = c->admitting;
        c->admitting = h->admit_next;
        free(h);
    }
    if (c->listener)
        guarded_remove(c);
    c->listener = NULL;
    if (c->admit_ev)
        event_free(c->admit_ev);
    if (c->resume_ev)
        event_free(c->resume_ev);
    c->admit_ev = c->resume_ev = NULL;
}

void gw_conn_send(gw_conns *c, struct evhttp_request *req, int status, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Date", date_header(c));
    evhttp_add_header(h, "Content-Type", content_type);
    /* Taken first: the request may be freed by the time send returns. */
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    hold_answered(c, evcon);
    evhttp_send_reply(req, status, NULL, NULL);
    if (evcon)
        write_now(evcon);
}

/* The port of an address, 0 for anything else. */
static int addr_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return 0;
}

/* True if this process already has a listening TCP socket on ss's port (a
 * gateway being reloaded or reconfigured in place), found among our own
 * file descriptors. */
static bool held_by_this_process(const struct sockaddr_storage *ss)
{
    int port = addr_port(ss);
    DIR *d = port ? opendir("/proc/self/fd") : NULL;
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        int listening = 0, type = 0;
        socklen_t ll = sizeof listening, tl = sizeof type;
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d) ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) || !listening ||
            getsockname(fd, (struct sockaddr *)&got, &gl) || got.ss_family != ss->ss_family)
            continue;
        found = addr_port(&got) == port;
    }
    closedir(d);
    return found;
}

/* ---- evhttp's own error pages, in the gateway's JSON ----
 *
 * evhttp answers some requests itself, before the gateway sees them: a
 * request line or header block over its limit or malformed, a body over its
 * cap, with a small HTML page ("<HTML><HEAD>\n<TITLE>413 ..."). libevent
 * 2.1 has no callback for those answers (evhttp_set_errorcb came in 2.2), so
 * the page is replaced where it is written: every connection's output
 * buffer has a callback, run as bytes are added, which recognises the page
 * evhttp_send_error has just queued (its body is added in one piece after
 * its head) and replaces the whole response, status line to body, with the
 * JSON error format. evhttp closes such a connection once the reply is
 * written, as before. Answers the gateway writes itself never begin with
 * that page, so they pass with one length comparison or a 20-byte copy. */

static const char evhttp_page[] = "<HTML><HEAD>\n<TITLE>";
#define EVHTTP_PAGE_LEN (sizeof evhttp_page - 1)

static void error_for(int status, const char **reason, const char **code, const char **msg)
{
    switch (status) {
    case 400:
        *reason = "Bad Request";
        *code = "malformed_request";
        *msg = "the request line or a header is malformed, or the request line and headers "
               "are longer than the gateway's limit";
        return;
    case 413:
        *reason = "Payload Too Large";
        *code = "request_too_large";
        *msg = "the request line, the headers or the body exceed the gateway's limits";
        return;
    case 414:
        *reason = "URI Too Long";
        *code = "uri_too_long";
        *msg = "the request line is longer than the gateway takes";
        return;
    case 431:
        *reason = "Request Header Fields Too Large";
        *code = "headers_too_large";
        *msg = "the request's header fields are larger than the gateway takes";
        return;
    case 501:
        *reason = "Not Implemented";
        *code = "not_implemented";
        *msg = "the gateway does not implement this request";
        return;
    }
    *reason = "Error";
    *code = "http_error";
    *msg = "the request could not be served";
}

static void on_output_added(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    conn_hold *h = arg; /* a guarded connection's, else NULL */
    if (info->n_deleted || info->n_added < EVHTTP_PAGE_LEN)
        return;
    size_t len = evbuffer_get_length(out), body = len - info->n_added;
    struct evbuffer_ptr at;
    char got[EVHTTP_PAGE_LEN];
    if (evbuffer_ptr_set(out, &at, body, EVBUFFER_PTR_SET) ||
        evbuffer_copyout_from(out, &at, got, EVHTTP_PAGE_LEN) != (ev_ssize_t)EVHTTP_PAGE_LEN ||
        memcmp(got, evhttp_page, EVHTTP_PAGE_LEN))
        return;
    /* The page's status line: the last one queued before its body. It
     * carries the client's version, whatever that was ("HTTP/-1.1"). */
    struct evbuffer_ptr p = evbuffer_search(out, "HTTP/", 5, NULL), head = p;
    while (p.pos >= 0 && (size_t)p.pos < body) {
        head = p;
        if (evbuffer_ptr_set(out, &p, 1, EVBUFFER_PTR_ADD))
            break;
        p = evbuffer_search(out, "HTTP/", 5, &p);
    }
    if (head.pos < 0 || (size_t)head.pos >= body)
        return;
    char line[64] = {0};
    int status = 0;
    evbuffer_copyout_from(out, &head, line, sizeof line - 1);
    if (sscanf(line, "HTTP/%*[^ ] %d", &status) != 1)
        return;
    const char *reason, *code, *msg;
    /* evhttp's status is not always the right one: it answers 413 to a
     * malformed chunk line or trailer, and 400 to a head over its limit.
     * The scan saw the bytes first and knows which fault it was. */
    if (h && h->scan.state == GW_SCAN_FAILED) {
        status = h->scan.status;
        error_for(status, &reason, &code, &msg);
        code = h->scan.err.code;
        msg = h->scan.err.message;
    } else if (h && status == 413 && h->scan.state == GW_SCAN_CHUNK_SIZE) {
        /* A line the scan took and evhttp refused: one whose extension
         * could not be blanked (no memory). Not the client's size. */
        status = 400;
        error_for(status, &reason, &code, &msg);
        code = "invalid_chunk_size";
        msg = "the chunk size line could not be read";
    } else {
        error_for(status, &reason, &code, &msg);
    }
    char json[256];
    int n =
        snprintf(json, sizeof json, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    struct evbuffer *before = evbuffer_new();
    if (!before)
        return;
    /* The nested calls of this callback these changes make see a deletion
     * or an addition that is not the page, and return. */
    evbuffer_remove_buffer(out, before, (size_t)head.pos);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_add_buffer(out, before);
    evbuffer_free(before);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                        status, reason, n, json);
}

/* ---- the guard: admission, request deadlines, accept back-off ---- */

uint64_t gw_addr_key(const struct sockaddr *sa)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    if (sa->sa_family == AF_INET) {
        b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    } else if (sa->sa_family == AF_INET6) {
        b = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        n = 16;
        /* An IPv4 client on a dual-stack socket is that IPv4 address. */
        if (IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
            b += 12;
            n = 4;
        }
    }
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h ? h : 1;
}

uint64_t gw_conn_addr(gw_conns *c, struct evhttp_connection *evcon)
{
    conn_hold *h = evcon ? gw_map_get(&c->holds, (uintptr_t)evcon) : NULL;
    return h ? h->addr : 0;
}

static void say(gw_conns *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(gw_conns *c, const char *fmt, ...)
{
    if (!c->log)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->log(c->log_user, line);
}

/* An answer written straight to a socket that evhttp has nothing queued on,
 * before the connection is closed: what the client has sent is read and
 * dropped first, so that the close does not reset the connection and lose
 * the answer. */
static void answer_and_close(evutil_socket_t fd, int status, const char *reason, const char *code,
                             const char *msg)
{
    char body[320], text[512];
    int b =
        snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    int n = snprintf(text, sizeof text,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, reason, b, body);
    char sink[4096];
    for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    if (n > 0 && (size_t)n < sizeof text)
        (void)!send(fd, text, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
}

/* The request deadline passed, or the scan refused the request's bytes
 * (made active by scan_input). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_hold *h = arg;
    int queued = evbuffer_get_length(bufferevent_get_output(h->bev)) > 0;
    if (h->scan.state == GW_SCAN_FAILED && !h->waiting) {
        /* evhttp refused the bytes itself in the same turn: its answer,
         * with the scan's status (see on_output_added), is queued, and
         * evhttp closes the connection once it is written. */
        if (queued)
            return;
        const char *reason, *code, *msg;
        error_for(h->scan.status, &reason, &code, &msg);
        answer_and_close(bufferevent_getfd(h->bev), h->scan.status, reason, h->scan.err.code,
                         h->scan.err.message);
        evhttp_connection_free(h->evcon);
        return;
    }
    h->conns->stats.timed_out++;
    /* Answered only if nothing of an earlier answer is still queued. */
    if (!queued)
        answer_and_close(bufferevent_getfd(h->bev), 408, "Request Timeout", "request_timeout",
                         "the request did not arrive whole in time");
    /* The close callback frees h. */
    evhttp_connection_free(h->evcon);
}

static void refuse(conn_hold *h, struct evhttp_connection *evcon, evutil_socket_t fd)
{
    h->conns->stats.refused++;
    answer_and_close(fd, 503, "Service Unavailable", "too_many_connections",
                     "the gateway has as many connections as it takes from this address or "
                     "in all; retry later");
    evbuffer_remove_cb(bufferevent_get_input(h->bev), on_input_added, h);
    evbuffer_remove_cb(bufferevent_get_output(h->bev), on_output_added, h);
    evhttp_connection_free(evcon);
    free(h);
}

/* Runs once per loop turn in which connections were accepted, after evhttp
 * has set each one up (its bufferevent's callback argument is then the
 * evhttp_connection) and before it has read anything from it. */
static void admit(gw_conns *c, conn_hold *h)
{
    void *cbarg = NULL;
    bufferevent_getcb(h->bev, NULL, NULL, NULL, &cbarg);
    struct evhttp_connection *evcon = cbarg;
    evutil_socket_t fd = bufferevent_getfd(h->bev);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    h->addr = fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0
                  ? gw_addr_key((struct sockaddr *)&ss)
                  : 1;
    size_t per = (size_t)(uintptr_t)gw_map_get(&c->per_addr, h->addr);
    if ((c->limits.max_conns && c->n_conns >= c->limits.max_conns) ||
        (c->limits.max_conns_per_addr && per >= c->limits.max_conns_per_addr)) {
        refuse(h, evcon, fd);
        return;
    }
    h->evcon = evcon;
    h->ev = event_new(c->base, fd, EV_READ | EV_PERSIST, on_hold_ready, h);
    h->deadline = evtimer_new(c->base, on_deadline, h);
    if (!h->ev || !h->deadline || event_add(h->ev, NULL) ||
        gw_map_put(&c->per_addr, h->addr, (void *)(uintptr_t)(per + 1))) {
        if (h->ev)
            event_free(h->ev);
        if (h->deadline)
            event_free(h->deadline);
        h->ev = h->deadline = NULL;
        refuse(h, evcon, fd);
        return;
    }
    h->counted = 1;
    c->n_conns++;
    if (gw_map_put(&c->holds, (uintptr_t)evcon, h)) {
        uncount(h);
        event_free(h->ev);
        event_free(h->deadline);
        h->ev = h->deadline = NULL;
        refuse(h, evcon, fd);
        return;
    }
    evhttp_connection_set_closecb(evcon, on_hold_closed, h);
    arm_deadline(h);
}

static void on_admit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_conns *c = arg;
    conn_hold *list = c->admitting;
    c->admitting = NULL;
    while (list) {
        conn_hold *h = list;
        list = h->admit_next;
        admit(c, h);
    }
}

/* The guarded servers by listener. libevent 2.1 calls a listener's error
 * callback with the listener's own argument, which evhttp has made its
 * struct evhttp, so the callback finds its gw_conns here. Keyed by
 * listener, it serves any number of instances and reloads; the lock is for
 * instances on different loop threads. */
static pthread_mutex_t guarded_mu = PTHREAD_MUTEX_INITIALIZER;
static gw_conns *guarded;

static gw_conns *guarded_find(struct evconnlistener *l)
{
    pthread_mutex_lock(&guarded_mu);
    gw_conns *c = guarded;
    while (c && c->listener != l)
        c = c->next_guarded;
    pthread_mutex_unlock(&guarded_mu);
    return c;
}

static void guarded_remove(gw_conns *c)
{
    pthread_mutex_lock(&guarded_mu);
    for (gw_conns **p = &guarded; *p; p = &(*p)->next_guarded)
        if (*p == c) {
            *p = c->next_guarded;
            break;
        }
    pthread_mutex_unlock(&guarded_mu);
}

/* accept() failed with the process or system out of descriptors (or
 * memory): libevent would retry on every loop turn, spinning and, without
 * this callback, logging each failure. Accepting pauses instead, and the
 * kernel keeps queueing connections in the backlog meanwhile. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg; /* evhttp's */
    int e = EVUTIL_SOCKET_ERROR();
    gw_conns *c = guarded_find(l);
    if (!c)
        return;
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
        return;
    c->failed_accepts++;
    if (!c->backoff_ms) {
        c->stats.accept_pauses++;
        c->backoff_ms = 10;
        say(c,
            "cannot accept connections: %s; accepting pauses, retrying after 10 ms to 1 s, until "
            "descriptors free up",
            strerror(e));
    } else if ((c->backoff_ms *= 2) > 1000) {
        c->backoff_ms = 1000;
    }
    evconnlistener_disable(l);
    struct timeval tv = {(time_t)(c->backoff_ms / 1000),
                         (suseconds_t)(c->backoff_ms % 1000 * 1000)};
    evtimer_add(c->resume_ev, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_conns *c = arg;
    evconnlistener_enable(c->listener);
}

static struct bufferevent *new_conn_bev(struct event_base *base, void *arg)
{
    gw_conns *c = arg;
    /* What evhttp makes when given no callback, plus the output callback
     * (given the hold on a guarded connection, for the scan's verdict). */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && !c->admit_ev &&
        !evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, NULL)) {
        bufferevent_free(bev);
        return NULL;
    }
    if (!bev || !c->admit_ev)
        return bev;
    if (c->backoff_ms) {
        say(c, "accepting connections again after %llu failed accepts",
            (unsigned long long)c->failed_accepts);
        c->backoff_ms = 0;
        c->failed_accepts = 0;
    }
    conn_hold *h = calloc(1, sizeof *h);
    if (!h || !evbuffer_add_cb(bufferevent_get_input(bev), on_input_added, h) ||
        !evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, h)) {
        free(h);
        bufferevent_free(bev);
        return NULL;
    }
    h->conns = c;
    h->bev = bev;
    gw_http_scan_start(&h->scan, c->limits.max_head, c->limits.max_body);
    h->admit_next = c->admitting;
    c->admitting = h;
    event_active(c->admit_ev, EV_TIMEOUT, 0);
    return bev;
}

void gw_conns_json_errors(gw_conns *c, struct evhttp *http)
{
    evhttp_set_bevcb(http, new_conn_bev, c);
}

int gw_conns_guard(gw_conns *c, struct evhttp *http, struct evhttp_bound_socket *bound,
                   const gw_conn_limits *limits, gw_conn_log_fn log, void *log_user)
{
    c->limits = *limits;
    c->log = log;
    c->log_user = log_user;
    /* Armed and disarmed around every request, always with this duration:
     * as a libevent common timeout that is a queue append, not a heap
     * insertion (same expiry). */
    int64_t ms = limits->request_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    const struct timeval *common = event_base_init_common_timeout(c->base, &tv);
    c->deadline_tv = common ? *common : tv;
    c->admit_ev = event_new(c->base, -1, 0, on_admit, c);
    c->resume_ev = evtimer_new(c->base, on_resume, c);
    c->listener = evhttp_bound_socket_get_listener(bound);
    if (!c->admit_ev || !c->resume_ev || !c->listener)
        return -1;
    pthread_mutex_lock(&guarded_mu);
    c->next_guarded = guarded;
    guarded = c;
    pthread_mutex_unlock(&guarded_mu);
    evconnlistener_set_error_cb(c->listener, on_accept_error);
    gw_conns_json_errors(c, http);
    return 0;
}

evutil_socket_t gw_http_listen(const char *addr, char *bound, size_t bound_cap)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen)) {
        errno = EINVAL;
        return -1;
    }
    /* One listener, one owner. SO_REUSEPORT lets a reloaded gateway bind
     * before the old one closes, but on its own it would also let a second
     * arb-host of the same user bind the port and silently take a share of
     * the connections. So the port is shared only inside this process: if
     * the address is taken (a bind without SO_REUSEPORT fails) and none of
     * our own sockets listens on it, another process holds it and we refuse
     * with EADDRINUSE. Every arb-host applies the same rule, so whichever
     * host binds first owns the port. (Two hosts probing in the same
     * microseconds could both find it free; the rule is for the real case,
     * a host started while another serves.) */
    if (addr_port(&ss) != 0) {
        evutil_socket_t probe = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -1;
        int on = 1;
        setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        int taken =
            bind(probe, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 && errno == EADDRINUSE;
        close(probe);
        if (taken && !held_by_this_process(&ss)) {
            errno = EADDRINUSE;
            return -1;
        }
    }
    evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* Accepted sockets inherit it: a response never waits on Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) || listen(fd, 1024)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (bound_cap && getsockname(fd, (struct sockaddr *)&got, &gl) == 0) {
        char host[INET6_ADDRSTRLEN] = "?";
        if (got.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&got;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            snprintf(bound, bound_cap, "%s:%d", host, ntohs(a->sin_port));
        } else {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&got;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            snprintf(bound, bound_cap, "[%s]:%d", host, ntohs(a->sin6_port));
        }
    }
    return fd;
}
