/*
 * http_conn.c -- the gateway's HTTP layer under evhttp (see http_conn.h).
 */
#include "http_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
 * runs unchanged. MSG_NOSIGNAL: a client that has gone away is an error
 * here, not a SIGPIPE, whatever the host does with signals. */
static void write_now(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    size_t len = evbuffer_get_length(out);
    if (fd < 0 || len == 0)
        return;
    struct evbuffer_iovec vec[8];
    int n = evbuffer_peek(out, (ev_ssize_t)len, NULL, vec, 8);
    if (n <= 0)
        return;
    if (n > 8)
        n = 8;
    struct iovec iov[8];
    for (int i = 0; i < n; i++)
        iov[i] = (struct iovec){vec[i].iov_base, vec[i].iov_len};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent <= 0)
        return;
    evbuffer_drain(out, (size_t)sent);
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
} conn_hold;

static void hold_release(conn_hold *h)
{
    gw_map_del(&h->conns->holds, (uintptr_t)h->evcon);
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
}

void gw_conn_drop(gw_conns *c, struct evhttp_connection *evcon)
{
    conn_hold *h = evcon ? gw_map_get(&c->holds, (uintptr_t)evcon) : NULL;
    if (h) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        hold_release(h);
    }
}

void gw_conns_free(gw_conns *c)
{
    /* evhttp_free has freed every hold through the close callbacks; should
     * another libevent release skip one, it is freed here. */
    for (size_t i = 0; i < c->holds.cap; i++)
        if (c->holds.slots[i].key) {
            conn_hold *h = c->holds.slots[i].val;
            event_free(h->ev);
            free(h);
        }
    gw_map_free(&c->holds);
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
    (void)arg;
    if (info->n_deleted || info->n_added < EVHTTP_PAGE_LEN)
        return;
    size_t len = evbuffer_get_length(out), body = len - info->n_added;
    struct evbuffer_ptr at;
    char got[EVHTTP_PAGE_LEN];
    if (evbuffer_ptr_set(out, &at, body, EVBUFFER_PTR_SET) ||
        evbuffer_copyout_from(out, &at, got, EVHTTP_PAGE_LEN) != (ev_ssize_t)EVHTTP_PAGE_LEN ||
        memcmp(got, evhttp_page, EVHTTP_PAGE_LEN))
        return;
    /* The page's status line: the last one queued before its body. */
    struct evbuffer_ptr p = evbuffer_search(out, "HTTP/1.", 7, NULL), head = p;
    while (p.pos >= 0 && (size_t)p.pos < body) {
        head = p;
        if (evbuffer_ptr_set(out, &p, 1, EVBUFFER_PTR_ADD))
            break;
        p = evbuffer_search(out, "HTTP/1.", 7, &p);
    }
    if (head.pos < 0 || (size_t)head.pos >= body)
        return;
    char line[16] = {0};
    int status = 0;
    evbuffer_copyout_from(out, &head, line, sizeof line - 1);
    if (sscanf(line, "HTTP/1.%*d %d", &status) != 1)
        return;
    const char *reason, *code, *msg;
    error_for(status, &reason, &code, &msg);
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

static struct bufferevent *new_conn_bev(struct event_base *base, void *arg)
{
    (void)arg;
    /* What evhttp makes when given no callback, plus the output callback. */
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && !evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, NULL)) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

void gw_conns_json_errors(gw_conns *c, struct evhttp *http)
{
    evhttp_set_bevcb(http, new_conn_bev, c);
}

evutil_socket_t gw_http_listen(const char *addr, char *bound, size_t bound_cap)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen)) {
        errno = EINVAL;
        return -1;
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
