/*
 * fuzz_http_scan.c -- libFuzzer target for the gateway's scan of a
 * request's bytes (gw_http_scan, plugins/gateway/http_framing.c), the
 * parser that reads chunk framing and head sizes before evhttp does.
 * Differential: the bytes fed at once and fed in pieces (sizes from the
 * input's first byte, as reads from a socket would split them) reach the
 * same state, verdict and error code, with every chunk-extension patch
 * applied as the connection layer applies it. A verdict is one of the four
 * statuses with a code. Never a crash or an out-of-bounds read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/gateway/http_framing.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Feeds buf (patched in place where the scan asks) in pieces of at most
 * `piece` bytes (0: all at once); returns the bytes taken. */
static size_t feed(gw_http_scan *s, char *buf, size_t n, unsigned piece, unsigned seed)
{
    size_t pos = 0;
    while (pos < n && s->state < GW_SCAN_DONE) {
        size_t len = n - pos;
        if (piece) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % piece;
            len = want < len ? want : len;
        }
        size_t took = gw_http_scan_feed(s, buf + pos, len);
        if (took > len)
            abort();
        pos += took;
        if (s->patch_at != UINT64_MAX) {
            if (s->patch_at >= n)
                abort();
            buf[s->patch_at] = ' ';
        }
    }
    return pos;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 2 || size > 1 << 16)
        return 0;
    unsigned piece = data[0] % 17, seed = data[0];
    size_t n = size - 1;
    char *a = malloc(n), *b = malloc(n);
    memcpy(a, data + 1, n);
    memcpy(b, data + 1, n);
    gw_http_scan x, y;
    gw_http_scan_start(&x, 1024, 4096);
    gw_http_scan_start(&y, 1024, 4096);
    /* Past its verdict or the end of the request a feed takes the rest of
     * what it was given, so the bytes taken differ by the pieces; the
     * verdict and the patches may not. */
    size_t ta = feed(&x, a, n, 0, seed), tb = feed(&y, b, n, piece, seed);
    if (x.state != y.state || memcmp(a, b, ta < tb ? ta : tb))
        abort();
    if (x.state == GW_SCAN_FAILED) {
        if (x.status != y.status || !x.err.code || !y.err.code || strcmp(x.err.code, y.err.code))
            abort();
        if (x.status != 400 && x.status != 413 && x.status != 414 && x.status != 431)
            abort();
    }
    free(a);
    free(b);
    return 0;
}
