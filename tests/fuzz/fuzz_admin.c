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

#include "fuzz_socket.h"
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
    fuzz_socket_listen(testhost_host(fuzz_host)->admin, "admin", fuzz_path);
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
    static char out[1 << 20];
    size_t got = fuzz_socket_exchange(base, fuzz_path, data, size, out, sizeof out);
    check_responses(out, got);
    return 0;
}
