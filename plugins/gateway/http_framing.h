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
 * The checks above see only what evhttp has parsed, and evhttp parses a
 * chunked body and the size of a request's head wrongly for us, so the
 * bytes themselves are also scanned as they arrive (gw_http_scan, below).
 *
 * Pure code: no I/O.
 */
#ifndef GW_HTTP_FRAMING_H
#define GW_HTTP_FRAMING_H

#include <event2/keyvalq_struct.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_framing_error {
    const char *code;    /* stable, for the JSON error */
    const char *message; /* for a person */
} gw_framing_error;

/* 0 if headers frame the request one way only; -1 with *err set if a header
 * name is not an RFC 9110 token, Content-Length is repeated or is not 1 to
 * 18 digits, Transfer-Encoding is repeated or is anything but "chunked", or
 * both are present; or, when !body_allowed, a body is declared at all
 * (Transfer-Encoding, or a Content-Length other than 0). evhttp reads no
 * body for HEAD or TRACE: the declared body would be read as the next
 * request (smuggling), so on those it is refused. */
int gw_http_check_framing(const struct evkeyvalq *headers, int body_allowed, gw_framing_error *err);

/* RFC 9112 section 3.2: 0 if the request names its host once (an HTTP/1.0
 * one may leave it out); -1 with *err set if Host is missing from an
 * HTTP/1.1 request, repeated, or not a host[:port] (whitespace, a control
 * character, '/' or '@'). Such a request is answered 400 (the RFC's MUST). */
int gw_http_check_host(const struct evkeyvalq *headers, int http11, gw_framing_error *err);

/* ---- the request's bytes, scanned as they arrive ----
 *
 * evhttp 2.1 gets these wrong, and has no hook before it acts on them:
 *  - a chunk-size line: it reads the size with strtoll, so "0x5", "+5" and
 *    " 5" are taken as 5 and anything after a space is ignored ("5 junk"),
 *    and it refuses a chunk extension ("5;x=1", legal: RFC 9112 section
 *    7.1.1) and a size that is not hex as if the body were too large (413);
 *  - the CRLF after chunk data: it skips any number of empty lines there,
 *    or none ("5\r\nhello0\r\n");
 *  - a head over its limit: answered 400 like a malformed one (RFC 6585
 *    says 431, RFC 9112 section 3 says 414 for a request line);
 *  - a chunk over the gateway's max_body: evhttp's own cap is higher (see
 *    gateway_plugin.c), so it waits for the data instead of refusing.
 * The scanner follows a request's bytes from its first one and stops with
 * a verdict (status and error) at the first of these, before evhttp acts
 * on the bytes. It follows only framing it is sure evhttp reads the same
 * way: a request line, header lines ending in LF or CRLF, as evhttp reads
 * them, and for a chunked body exactly evhttp's rule (the first
 * Transfer-Encoding is "chunked", the method may have a body); a header
 * folded onto the next line ends the scan without a verdict (the framing
 * check refuses such a request anyway if it matters). It stops, satisfied,
 * at the end of the head of a request that is not chunked and after the
 * trailer of one that is: the caller restarts it where evhttp starts the
 * next request. A chunk line is held to RFC 9112 section 7.1 exactly (hex
 * digits, extensions, CRLF); an extension is accepted and ignored. */

enum {
    GW_SCAN_REQUEST_LINE,
    GW_SCAN_FIELDS,
    GW_SCAN_CHUNK_SIZE,
    GW_SCAN_CHUNK_DATA,
    GW_SCAN_CHUNK_END, /* the CRLF after chunk data */
    GW_SCAN_TRAILER,
    GW_SCAN_DONE,   /* the request's framing is fine, or not ours to follow */
    GW_SCAN_FAILED, /* status and err say why */
};

#define GW_SCAN_LINE_MAX 256 /* a chunk line longer than this is refused */

typedef struct gw_http_scan {
    uint8_t state;
    uint8_t chunked;      /* the head's first Transfer-Encoding is "chunked" */
    uint8_t seen_coding;  /* a Transfer-Encoding has been seen */
    uint8_t no_body;      /* HEAD or TRACE: evhttp reads no body */
    uint8_t folded;       /* an obs-fold line: not followed */
    uint8_t cr;           /* GW_SCAN_CHUNK_END: the CR has been seen */
    size_t max_head;      /* request line, fields and trailer, line ends included */
    uint64_t max_body;    /* chunk data in all */
    size_t head;          /* bytes of the head (and trailer) so far */
    uint64_t body;        /* chunk data declared so far */
    uint64_t left;        /* of the current chunk's data */
    size_t line_len;      /* of the line being read, all of it */
    uint64_t fed;         /* bytes fed since start */
    uint64_t patch_at;    /* see gw_http_scan_feed; UINT64_MAX: none */
    int status;           /* GW_SCAN_FAILED: 400, 413, 414 or 431 */
    gw_framing_error err; /* GW_SCAN_FAILED */
    char line[GW_SCAN_LINE_MAX];
} gw_http_scan;

/* Starts (or restarts) a scan at a request's first byte. */
void gw_http_scan_start(gw_http_scan *s, size_t max_head, uint64_t max_body);

/* Feeds the next n bytes; returns how many were taken, n unless it stops
 * early because patch_at was set: the byte at that offset (counted like
 * fed, from the start) must then be replaced by a space before evhttp reads
 * it, and the rest fed again. That byte is the first after a chunk size
 * that carries an extension, where evhttp stops at anything but a space.
 * Past GW_SCAN_DONE or GW_SCAN_FAILED the bytes are taken and ignored. */
size_t gw_http_scan_feed(gw_http_scan *s, const char *p, size_t n);

/* RFC 9112 section 7.1: 0 if line (without its CRLF) is a chunk size, with
 * any extensions, setting *size (saturated at UINT64_MAX) and *ext_at (the
 * offset of the first byte after the digits, len if none); -1 with *err
 * set otherwise. */
int gw_http_chunk_line(const char *line, size_t len, uint64_t *size, size_t *ext_at,
                       gw_framing_error *err);

#endif
