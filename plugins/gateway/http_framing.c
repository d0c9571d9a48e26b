/*
 * http_framing.c -- a request's framing headers checked for ambiguity
 * (see http_framing.h).
 */
#include <sys/queue.h>

#include "http_framing.h"

#include <stddef.h>
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

int gw_http_check_framing(const struct evkeyvalq *headers, gw_framing_error *err)
{
    int n_length = 0, n_coding = 0;
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
        } else if (!strcasecmp(h->key, "Transfer-Encoding")) {
            if (++n_coding > 1 || strcasecmp(h->value, "chunked"))
                return fail(err, "unsupported_transfer_encoding",
                            "the only Transfer-Encoding accepted is a single 'chunked'");
        }
    }
    if (n_length && n_coding)
        return fail(err, "conflicting_framing",
                    "a request must not carry both Content-Length and Transfer-Encoding");
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
