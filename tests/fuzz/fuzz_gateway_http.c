/*
 * fuzz_gateway_http.c -- libFuzzer target for the gateway's HTTP request
 * path: raw bytes in through a socket, as a client sends them.
 *
 * The real gateway plugin (gateway_plugin.c, included here to reach its
 * evhttp) runs on the fake host of the agent tests, on an event loop this
 * file drives; besides its TCP listener it accepts on a Unix socket (the
 * same evhttp, the same connection guard, framing check, routing, handlers
 * and error rewriting, without TCP's handshake and TIME_WAIT per input).
 * Each input is written on a fresh connection, which is then half-closed,
 * and the loop runs until the gateway closes it. Checked besides ASan and
 * UBSan: every answer has an HTTP/1.1 status line (1.0 for a 1.0 client), every error
 * (4xx, 5xx) is JSON, and the gateway closes every connection in bounded
 * time (a hang aborts).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/un.h>

#include "../../plugins/gateway/gateway_plugin.c"
#include "../unit/test_agent_fakehost.h"
#include "fuzz_socket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *fuzz_base;
static fakehost *fuzz_fh;
static gateway *fuzz_gw;
static char fuzz_path[108];

static struct event_base *fuzz_event_base(arb_ctx *c)
{
    (void)c;
    return fuzz_base;
}

static void fuzz_quiet(arb_ctx *c, int level, const char *fmt, va_list ap)
{
    (void)c, (void)level, (void)fmt, (void)ap;
}

static void fuzz_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    fuzz_base = event_base_new();
    fuzz_fh = fh_new();
    fuzz_fh->api.event_base = fuzz_event_base;
    if (!getenv("FUZZ_LOG"))
        fuzz_fh->api.vlog = fuzz_quiet;
    fh_set(fuzz_fh, "instrument XA:BTCUSD", "price_decimals", "2");
    fh_set(fuzz_fh, "instrument XA:BTCUSD", "qty_decimals", "3");
    fh_set(fuzz_fh, "instrument XA:BTCUSD", "tick_size", "0.05");
    fh_set(fuzz_fh, "instrument XA:BTCUSD", "lot_size", "0.001");
    /* A free port for its TCP listener (evutil refuses port 0). */
    char listen_at[32];
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (probe < 0 || bind(probe, (struct sockaddr *)&sin, sizeof sin) ||
        getsockname(probe, (struct sockaddr *)&sin, &sl))
        abort();
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", ntohs(sin.sin_port));
    close(probe);
    fh_set_plugin(fuzz_fh, "gateway", "listen", listen_at);
    static const char *const kv[][2] = {
        {"api_key.fuzz", "fuzz-key-0123456789:1001"},
        {"public_accounts", "1001"},
        {"timeout_ms", "1"},
        {"max_body", "1024"},
        {"request_timeout_ms", "50"},
        {"max_streams", "0"},
        {"max_open_orders", "1000"},
        {"anon_rate_limit", "0"},
        {"rate_limit", "0"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        fh_set_plugin(fuzz_fh, "gateway", kv[i][0], kv[i][1]);
    fh_ctx *ctx = fh_ctx_new(fuzz_fh, "gateway");
    void *self = NULL;
    const arb_plugin *p = arb_plugin_entry();
    int rc = p->create(&ctx->ctx, &self);
    if (rc || (rc = p->start(self))) {
        fprintf(stderr, "fuzz_gateway_http: the gateway did not start (%d)\n", rc);
        abort();
    }
    fuzz_gw = self;
    fuzz_socket_listen(fuzz_gw->http, "gw", fuzz_path);
}

/* Every response in out: a status line HTTP/1.1 NNN, and JSON if NNN is an
 * error. Responses are found by their status lines at the start of out and
 * after each body (Content-Length); a chunked stream is never opened here
 * (max_streams = 0). */
static void check_responses(const char *out, size_t len)
{
    if (getenv("FUZZ_LOG"))
        fprintf(stderr, "answered:\n%.*s\n", (int)len, out);
    size_t at = 0;
    while (at < len) {
        const char *r = out + at;
        const char *end = memmem(r, len - at, "\r\n\r\n", 4);
        if (!end)
            abort(); /* a truncated head */
        int status = 0;
        /* HTTP/1.0 for a 1.0 client, which evhttp answers in its version. */
        if (len - at < 12 || (memcmp(r, "HTTP/1.1 ", 9) && memcmp(r, "HTTP/1.0 ", 9)) ||
            sscanf(r + 9, "%3d", &status) != 1 || status < 100 || status > 599)
            abort();
        size_t head = (size_t)(end - r) + 4;
        char h[4096];
        size_t hl = head < sizeof h ? head : sizeof h - 1;
        memcpy(h, r, hl);
        h[hl] = 0;
        if (status >= 400 && !strstr(h, "Content-Type: application/json"))
            abort();
        /* Without a Content-Length (an HTTP/1.0 answer) the close ends the body. */
        const char *cl = strstr(h, "Content-Length: ");
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : len - at - head;
        /* The answer to a HEAD has the GET's Content-Length and no body:
         * it ends where the next answer, or the output, starts. */
        if (at + head == len || (len - at - head >= 7 && !memcmp(r + head, "HTTP/1.", 7)))
            body = 0;
        if (at + head + body > len)
            abort(); /* a truncated body */
        if (status >= 400 && body && r[head] != '{')
            abort();
        at += head + body;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_base)
        fuzz_start();
    static char out[1 << 20];
    size_t got = fuzz_socket_exchange(fuzz_base, fuzz_path, data, size, out, sizeof out);
    check_responses(out, got);
    fh_clear_log(fuzz_fh);
    return 0;
}
