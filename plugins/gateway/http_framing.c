/*
 * http_framing.c -- a request's framing headers checked for ambiguity
 * (see http_framing.h).
 */
#include <sys/queue.h>

#include "http_framing.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 section 5.6.2: tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return 1;
    }
    return 0;
}

static int is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* 1 to 18 digits: no sign, no space, no list, and never past INT64_MAX. */
static int is_length(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < '0' || s[n] > '9')
            return 0;
    return n >= 1 && n <= 18;
}

static int fail(gw_framing_error *err, const char *code, const char *message)
{
    err->code = code;
    err->message = message;
    return -1;
}

int gw_http_check_framing(const struct evkeyvalq *headers, int body_allowed, gw_framing_error *err)
{
    int n_length = 0, n_coding = 0, declared = 0;
    const struct evkeyval *h;
    TAILQ_FOREACH(h, headers, next)
    {
        if (!is_token(h->key))
            return fail(err, "invalid_header_name",
                        "a header name must be a token with no whitespace before its colon");
        if (!strcasecmp(h->key, "Content-Length")) {
            if (++n_length > 1)
                return fail(err, "duplicate_content_length", "Content-Length must appear once");
            if (!is_length(h->value))
                return fail(err, "invalid_content_length",
                            "Content-Length must be a decimal number of 1 to 18 digits");
            declared |= strspn(h->value, "0") != strlen(h->value);
        } else if (!strcasecmp(h->key, "Transfer-Encoding")) {
            if (++n_coding > 1 || strcasecmp(h->value, "chunked"))
                return fail(err, "unsupported_transfer_encoding",
                            "the only Transfer-Encoding accepted is a single 'chunked'");
        }
    }
    if (n_length && n_coding)
        return fail(err, "conflicting_framing",
                    "a request must not carry both Content-Length and Transfer-Encoding");
    if (!body_allowed && (declared || n_coding))
        return fail(err, "unexpected_body", "this method takes no body");
    return 0;
}

int gw_http_check_host(const struct evkeyvalq *headers, int http11, gw_framing_error *err)
{
    int n = 0;
    const struct evkeyval *h;
    TAILQ_FOREACH(h, headers, next)
    {
        if (strcasecmp(h->key, "Host"))
            continue;
        if (++n > 1)
            return fail(err, "duplicate_host", "Host must appear once");
        for (const char *c = h->value; *c; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '/' || *c == '@')
                return fail(err, "invalid_host", "Host must be a host name or address, and port");
    }
    if (!n && http11)
        return fail(err, "missing_host", "an HTTP/1.1 request must carry a Host header");
    return 0;
}

/* ---- the request's bytes (see http_framing.h) ---- */

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static size_t skip_bws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

static size_t skip_token(const char *s, size_t i, size_t len)
{
    while (i < len && is_tchar((unsigned char)s[i]))
        i++;
    return i;
}

/* RFC 9110 section 5.6.4: quoted-string from the opening quote at i; the
 * offset past the closing one, or 0 if it is not one. */
static size_t skip_quoted(const char *s, size_t i, size_t len)
{
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (++i >= len)
                return 0;
            c = (unsigned char)s[i];
            if (c != '\t' && (c < ' ' || c == 0x7f))
                return 0;
        } else if (c != '\t' && (c < ' ' || c == 0x7f)) {
            return 0;
        }
    }
    return 0;
}

int gw_http_chunk_line(const char *line, size_t len, uint64_t *size, size_t *ext_at,
                       gw_framing_error *err)
{
    size_t i = 0;
    uint64_t v = 0;
    for (; i < len && is_hex((unsigned char)line[i]); i++) {
        unsigned char c = (unsigned char)line[i];
        unsigned d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        v = v > (UINT64_MAX - d) / 16 ? UINT64_MAX : v * 16 + d;
    }
    if (i == 0)
        return fail(err, "invalid_chunk_size", "a chunk size must be hexadecimal digits");
    *size = v;
    *ext_at = i;
    /* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
    while (i < len) {
        i = skip_bws(line, i, len);
        if (i >= len || line[i] != ';')
            return fail(err, "invalid_chunk_size",
                        "a chunk size must be hexadecimal digits, then only extensions");
        i = skip_bws(line, i + 1, len);
        size_t name = i;
        if ((i = skip_token(line, i, len)) == name)
            return fail(err, "invalid_chunk_extension", "a chunk extension must be named");
        size_t j = skip_bws(line, i, len);
        if (j < len && line[j] == '=') {
            j = skip_bws(line, j + 1, len);
            if (j < len && line[j] == '"')
                i = skip_quoted(line, j, len);
            else
                i = skip_token(line, j, len) > j ? skip_token(line, j, len) : 0;
            if (!i)
                return fail(err, "invalid_chunk_extension",
                            "a chunk extension's value must be a token or a quoted string");
        }
    }
    return 0;
}

void gw_http_scan_start(gw_http_scan *s, size_t max_head, uint64_t max_body)
{
    memset(s, 0, offsetof(gw_http_scan, line));
    s->max_head = max_head;
    s->max_body = max_body;
    s->patch_at = UINT64_MAX;
}

static void scan_fail(gw_http_scan *s, int status, const char *code, const char *message)
{
    s->state = GW_SCAN_FAILED;
    s->status = status;
    fail(&s->err, code, message);
}

/* A head line, complete (without LF; a CR before it is in line). The
 * evhttp rules each one mirrors are in http_framing.h. */
static void head_line(gw_http_scan *s, size_t kept)
{
    size_t len = kept;
    if (len && s->line[len - 1] == '\r' && s->line_len == kept)
        len--;
    if (s->state == GW_SCAN_REQUEST_LINE) {
        s->no_body = (len >= 5 && !memcmp(s->line, "HEAD ", 5)) ||
                     (len >= 6 && !memcmp(s->line, "TRACE ", 6));
        s->state = GW_SCAN_FIELDS;
        return;
    }
    if (s->state == GW_SCAN_TRAILER) {
        /* evhttp answers a malformed trailer line 413, as if too large.
         * RFC 9112 section 5.2 lets a server refuse obs-fold: done here. */
        if (s->line_len <= 1 && len == 0)
            s->state = GW_SCAN_DONE;
        else if (s->line[0] == ' ' || s->line[0] == '\t' || !memchr(s->line, ':', kept))
            scan_fail(s, 400, "invalid_trailer", "a trailer field must be name: value");
        return;
    }
    if (s->line_len <= 1 && len == 0) { /* the empty line: the head's end */
        s->state = s->chunked && !s->no_body && !s->folded ? GW_SCAN_CHUNK_SIZE : GW_SCAN_DONE;
        return;
    }
    if (s->line[0] == ' ' || s->line[0] == '\t') {
        s->folded = 1;
        return;
    }
    static const char te[] = "transfer-encoding:";
    if (s->seen_coding || len < sizeof te - 1 || strncasecmp(s->line, te, sizeof te - 1))
        return;
    s->seen_coding = 1;
    if (s->line_len != kept) { /* longer than kept: not followed */
        s->folded = 1;
        return;
    }
    /* evhttp's value: leading spaces (not tabs) skipped, trailing spaces
     * and tabs trimmed. */
    size_t a = sizeof te - 1, b = len;
    while (a < b && s->line[a] == ' ')
        a++;
    while (b > a && (s->line[b - 1] == ' ' || s->line[b - 1] == '\t'))
        b--;
    s->chunked = b - a == 7 && !strncasecmp(s->line + a, "chunked", 7);
}

static void chunk_line(gw_http_scan *s, uint64_t line_start)
{
    size_t len = s->line_len;
    if (len > GW_SCAN_LINE_MAX) {
        scan_fail(s, 400, "invalid_chunk_size", "a chunk line is longer than the gateway takes");
        return;
    }
    if (len < 1 || s->line[len - 1] != '\r') {
        scan_fail(s, 400, "invalid_chunk_size", "a chunk size line must end with CRLF");
        return;
    }
    uint64_t size;
    size_t ext_at;
    if (gw_http_chunk_line(s->line, len - 1, &size, &ext_at, &s->err)) {
        scan_fail(s, 400, s->err.code, s->err.message);
        return;
    }
    if (size > s->max_body - s->body) {
        scan_fail(s, 413, "body_too_large", "the chunked body is larger than the gateway takes");
        return;
    }
    s->body += size;
    if (ext_at < len - 1 && s->line[ext_at] != ' ')
        s->patch_at = line_start + ext_at;
    s->left = size;
    s->state = size ? GW_SCAN_CHUNK_DATA : GW_SCAN_TRAILER;
}

size_t gw_http_scan_feed(gw_http_scan *s, const char *p, size_t n)
{
    size_t i = 0;
    s->patch_at = UINT64_MAX;
    while (i < n && s->state < GW_SCAN_DONE) {
        if (s->state == GW_SCAN_CHUNK_DATA) {
            size_t take = s->left < n - i ? (size_t)s->left : n - i;
            s->left -= take;
            i += take;
            if (!s->left)
                s->state = GW_SCAN_CHUNK_END;
            continue;
        }
        if (s->state == GW_SCAN_CHUNK_END) {
            char want = s->cr ? '\n' : '\r';
            if (p[i++] != want) {
                scan_fail(s, 400, "invalid_chunk", "chunk data must be followed by CRLF");
                break;
            }
            if ((s->cr = !s->cr) == 0)
                s->state = GW_SCAN_CHUNK_SIZE;
            continue;
        }
        /* A line: the request line, a field, a chunk size or a trailer. */
        const char *lf = memchr(p + i, '\n', n - i);
        size_t take = lf ? (size_t)(lf - (p + i)) : n - i;
        if (s->line_len < GW_SCAN_LINE_MAX) {
            size_t room = GW_SCAN_LINE_MAX - s->line_len;
            memcpy(s->line + s->line_len, p + i, take < room ? take : room);
        }
        s->line_len += take;
        i += take + (lf != NULL);
        int in_head = s->state != GW_SCAN_CHUNK_SIZE;
        if (in_head && (s->head += take + (lf != NULL)) > s->max_head) {
            if (s->state == GW_SCAN_REQUEST_LINE)
                scan_fail(s, 414, "uri_too_long",
                          "the request line is longer than the gateway takes");
            else
                scan_fail(s, 431, "headers_too_large",
                          "the request's header fields are larger than the gateway takes");
            break;
        }
        if (!in_head && s->line_len > GW_SCAN_LINE_MAX + 1) {
            chunk_line(s, 0); /* refused for its length */
            break;
        }
        if (!lf)
            continue;
        size_t kept = s->line_len < GW_SCAN_LINE_MAX ? s->line_len : GW_SCAN_LINE_MAX;
        if (in_head) {
            head_line(s, kept);
        } else {
            chunk_line(s, s->fed + i - 1 - s->line_len);
        }
        s->line_len = 0;
        if (s->patch_at != UINT64_MAX) {
            s->fed += i;
            return i;
        }
    }
    s->fed += n;
    return n;
}
