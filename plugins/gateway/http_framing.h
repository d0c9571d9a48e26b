/*
 * http_framing.h -- the gateway's own check of a request's message framing
 * (RFC 9112 section 6), made on the header list evhttp has parsed.
 *
 * evhttp's framing is lenient in ways that let a request be read two ways:
 * it takes the first of several Content-Length headers, accepts a sign
 * ("+4"), treats any Transfer-Encoding other than "chunked" as absent and
 * then frames by Content-Length, and keeps a header whose name carries the
 * whitespace before its colon ("Content-Length : 4" becomes the unknown
 * header "Content-Length "), so the body it carries is read as the next
 * request. A proxy in front of the gateway may frame the same bytes the
 * other way: that difference is request smuggling. evhttp has no hook
 * before it frames the body, so the check runs when the request reaches the
 * gateway, and a request that fails it is answered 400 and its connection
 * closed: whatever evhttp read as a following request is never served.
 *
 * Pure code: no I/O. Not here: limits on sizes (evhttp's, see http_conn.h).
 */
#ifndef GW_HTTP_FRAMING_H
#define GW_HTTP_FRAMING_H

#include <event2/keyvalq_struct.h>

typedef struct gw_framing_error {
    const char *code;    /* stable, for the JSON error */
    const char *message; /* for a person */
} gw_framing_error;

/* 0 if headers frame the request one way only; -1 with *err set if a header
 * name is not an RFC 9110 token, Content-Length is repeated or is not 1 to
 * 18 digits, Transfer-Encoding is repeated or is anything but "chunked", or
 * both are present. */
int gw_http_check_framing(const struct evkeyvalq *headers, gw_framing_error *err);

/* RFC 9112 section 3.2: 0 if the request names its host once (an HTTP/1.0
 * one may leave it out); -1 with *err set if Host is missing from an
 * HTTP/1.1 request, repeated, or not a host[:port] (whitespace, a control
 * character, '/' or '@'). Such a request is answered 400 (the RFC's MUST). */
int gw_http_check_host(const struct evkeyvalq *headers, int http11, gw_framing_error *err);

#endif
