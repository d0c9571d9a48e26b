/*
 * fuzz_admin.c -- libFuzzer target for the host's admin endpoint
 * (host/admin.c): raw bytes in through a socket, as a client sends them.
 *
 * A real host (tests/support/testhost.c) with an admin endpoint and its
 * token, whose evhttp also accepts on a Unix socket (the same request
 * handler, without TCP's handshake and TIME_WAIT per input). Each input is
 * written on a fresh connection, which is then half-closed, and loop 0 (the
 * admin's loop) runs until the host closes it. Checked besides ASan and
 * UBSan: every answer has an HTTP status line, the endpoint's own errors
 * are JSON, and the host closes every connection in bounded time. The
 * token is configured (and in the seeds) so that the paths behind it, the
 * reload path check included, are reached too.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "host.h"
#include "testhost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static testhost *fuzz_host;
static char fuzz_path[108];

static void fuzz_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    fuzz_host = testhost_new("[host]\nadmin = 127.0.0.1:0\nadmin_token = fuzz-admin-token\n"
                             "log_level = error\n");
    if (!fuzz_host || testhost_start(fuzz_host))
        abort();
    snprintf(fuzz_path, sizeof fuzz_path, "/tmp/arb-fuzz-admin-%d.sock", (int)getpid());
    unlink(fuzz_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", fuzz_path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64) ||
        !evhttp_accept_socket_with_handle(testhost_host(fuzz_host)->admin, fd))
        abort();
}

static void check_responses(const char *out, size_t len)
{
    if (getenv("FUZZ_LOG"))
        fprintf(stderr, "answered:\n%.*s\n", (int)len, out);
    size_t at = 0;
    while (at < len) {
        const char *r = out + at;
        const char *end = memmem(r, len - at, "\r\n\r\n", 4);
        /* HTTP/1.x, except on evhttp's own error pages, which repeat the
         * client's version however mangled ("HTTP/-1.1"). */
        int status = 0;
        if (!end || len - at < 12 || memcmp(r, "HTTP/", 5) ||
            sscanf(r, "HTTP/%*[^ ] %3d", &status) != 1 || status < 100 || status > 599)
            abort();
        size_t head = (size_t)(end - r) + 4;
        char h[4096];
        size_t hl = head < sizeof h ? head : sizeof h - 1;
        memcpy(h, r, hl);
        h[hl] = 0;
        /* evhttp's own pages (a malformed request) are HTML here: the admin
         * endpoint is for tools, and only its own errors are JSON. */
        int evhttp_page = strstr(h, "Content-Type: text/html") != NULL;
        if ((status >= 400 && !evhttp_page && !strstr(h, "Content-Type: application/json")) ||
            (!evhttp_page && memcmp(r, "HTTP/1.", 7)))
            abort();
        const char *cl = strstr(h, "Content-Length: ");
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : len - at - head;
        if (at + head + body > len)
            body = len - at - head; /* the answer to a HEAD, or a close */
        at += head + body;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_host)
        fuzz_start();
    struct event_base *base = testhost_host(fuzz_host)->loops[0]->base;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", fuzz_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
        abort();
    static char out[1 << 20];
    size_t sent = 0, got = 0;
    int closed = 0, half = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!closed) {
        if (!half) {
            ssize_t w = size > sent ? send(fd, data + sent, size - sent, MSG_NOSIGNAL) : 0;
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                half = 1;
            if (sent == size && !half) {
                shutdown(fd, SHUT_WR);
                half = 1;
            }
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (;;) {
            ssize_t r = recv(fd, out + got, sizeof out - got, 0);
            if (r > 0 && (got += (size_t)r) < sizeof out)
                continue;
            if (r == 0 || (r < 0 && errno != EAGAIN))
                closed = 1;
            break;
        }
        if (!closed && half)
            event_base_loop(base, EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 5)
            abort(); /* the host never closed the connection */
    }
    close(fd);
    check_responses(out, got);
    return 0;
}
