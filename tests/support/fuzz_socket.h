/*
 * fuzz_socket.h -- what the HTTP fuzzers (fuzz_gateway_http, fuzz_admin)
 * share: an evhttp that also accepts on a Unix socket (the same handlers,
 * without TCP's handshake and TIME_WAIT per input), and one input written on
 * a fresh connection, half-closed, with the server's loop run until it
 * closes the connection. Header-only: each fuzzer is built from its own
 * list of sources.
 */
#ifndef FUZZ_SOCKET_H
#define FUZZ_SOCKET_H

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* http accepts on a Unix socket at /tmp/arb-fuzz-NAME-PID.sock too; its path
 * goes to path (108 bytes). Aborts on failure. */
static inline void fuzz_socket_listen(struct evhttp *http, const char *name, char *path)
{
    snprintf(path, 108, "/tmp/arb-fuzz-%s-%d.sock", name, (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64) ||
        !evhttp_accept_socket_with_handle(http, fd))
        abort();
}

/* Writes data on a new connection to path, half-closes it, and runs base
 * until the server closes it; what came back goes to out (up to cap bytes).
 * Aborts if the server holds the connection more than 5 s. */
static inline size_t fuzz_socket_exchange(struct event_base *base, const char *path,
                                          const uint8_t *data, size_t size, char *out, size_t cap)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a))
        abort();
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
                half = 1; /* the server closed first */
            if (sent == size && !half) {
                shutdown(fd, SHUT_WR);
                half = 1;
            }
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (;;) {
            ssize_t r = recv(fd, out + got, cap - got, 0);
            if (r > 0 && (got += (size_t)r) < cap)
                continue;
            if (r == 0 || (r < 0 && errno != EAGAIN))
                closed = 1;
            break;
        }
        /* Nothing more from the server yet: wait for its next event (our
         * bytes or close reaching its socket, a timer). */
        if (!closed && half)
            event_base_loop(base, EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 5)
            abort(); /* the server never closed the connection */
    }
    close(fd);
    return got;
}

#endif
