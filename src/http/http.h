/* HTTP/1.1 pieces that are pure functions: parser glue, request-target
 * normalisation, routing, status reasons, the Date cache. conn.c ties them to
 * sockets. Everything here is unit-tested and fuzzed without a socket. */
#ifndef TT_HTTP_H
#define TT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <llhttp.h>
#include "config/config.h"

/* ---- parse.c: llhttp (strict) -> one request head at a time ---- */

typedef struct {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len;
} tt_head_field;

typedef struct {
    char          *buf;             /* method, target, names and values */
    size_t         len, cap;
    uint32_t       method_off, method_len;
    uint32_t       url_off, url_len;
    tt_head_field *fields;
    size_t         nfields, fields_cap;
    int            version;         /* 10 or 11 */
    int            keepalive;       /* llhttp_should_keep_alive() */
    int            chunked;
    int64_t        content_length;  /* -1 when absent */
    int            expect_continue; /* Expect: 100-continue */
    int            upgrade;         /* Connection: upgrade + Upgrade: */
    int            has_host;
    uint32_t       host_off, host_len; /* Host header value */
} tt_http_head;

typedef struct {
    /* head complete: return 0 to go on, TT_PARSE_PAUSE to stop right after
     * the head (the body waits until tt_parser_resume), or an HTTP status
     * (4xx/5xx) to fail */
    int (*head)(void *ctx, tt_http_head *h);
    /* a piece of body (already de-chunked). llhttp cannot pause inside a
     * body span, so the caller bounds what it feeds per call instead. */
    void (*body)(void *ctx, const char *p, size_t n);
    /* the message ended; the parser stops until tt_parser_next() */
    void (*done)(void *ctx);
} tt_parser_cbs;

typedef struct {
    llhttp_t             llh;
    const tt_parser_cbs *cbs;
    void                *ctx;
    tt_http_head         head;
    size_t               max_head;  /* max_header_size */
    size_t               head_bytes;/* bytes of head seen so far */
    int                  in_head;   /* between message begin and headers complete */
    int                  status;    /* error status, 0 while fine */
    int                  field_state;
    int                  message_done;
    int                  started;   /* first byte of a message seen */
    int                  paused;    /* stopped after a head, see tt_parser_resume */
    const char          *feed_start, *feed_end;  /* the bytes of this feed call */
    const char          *span_end;  /* end of the last value span in this feed */
    int                  span_cont; /* the last feed ended inside a value span */
    int                  scan_active;   /* checking line ends of this head */
    int                  scan_cr;       /* the previous head byte was CR */
    unsigned             scan_lines;    /* head lines completed */
    size_t               scan_line_len; /* bytes in the current head line */
    int                  value_open;/* a value span was seen for this field */
} tt_parser;

void   tt_parser_init(tt_parser *p, const tt_parser_cbs *cbs, void *ctx, size_t max_head);
void   tt_parser_free(tt_parser *p);
/* Feed bytes; returns how many were consumed. Stops early after a message
 * completes (the rest is the next pipelined request) or on error; on error
 * *status is the HTTP status to answer with (400, 413, 414, 431, 501, 505)
 * and the connection must close after it. */
size_t tt_parser_feed(tt_parser *p, const char *data, size_t len, int *status);
/* after done(): get ready for the next request on the connection */
void   tt_parser_next(tt_parser *p);
/* after head() returned TT_PARSE_PAUSE: go on with the body */
void   tt_parser_resume(tt_parser *p);

#define TT_PARSE_PAUSE (-1)
/* the peer closed: 0 if that is a clean end, else an HTTP status */
int    tt_parser_eof(tt_parser *p);
/* a header of the current head (case-insensitive), or NULL */
const char *tt_head_get(const tt_http_head *h, const char *name, size_t *len);

/* ---- target.c: request-target -> path + query ---- */

typedef struct {
    const char *raw_path;   size_t raw_path_len;   /* points into the target */
    const char *query;      size_t query_len;      /* points into the target */
    char       *path;       size_t path_len;       /* decoded + normalised, in caller's buffer */
    const char *authority;  size_t authority_len;  /* absolute-form only, else NULL */
} tt_target;

/* Accepts origin-form ("/a/b?q") and absolute-form ("http://h/a?q"); the
 * asterisk-form "*" only when allow_asterisk (OPTIONS). pathbuf must hold
 * len + 2 bytes. Returns 0, or 400 for: empty, other forms, a bad or
 * encoded-NUL (%00) or encoded-slash (%2F) escape, a raw control byte or
 * space, a path climbing above "/". */
int tt_target_parse(const char *target, size_t len, int allow_asterisk,
                    tt_target *t, char *pathbuf);

/* ---- router.c ---- */

/* The server for a Host (already without port, lower-cased) on a listener:
 * exact name, then "*.example.com" wildcards, else servers[0]. */
tt_server *tt_route_server(const tt_listen *l, const char *host, size_t host_len);
/* 1 if prefix matches path at a segment boundary: "/api" and "/api/" both
 * match "/api/x"; "/api" matches "/api" but not "/apix"; "/" matches all. */
int tt_route_prefix_match(const char *prefix, size_t plen, const char *path, size_t len);
/* First route matching path and method. NULL when none: *status is 404, or
 * 405 when some route matched the path but not the method, with the allowed
 * methods written to allow ("GET, HEAD") */
const tt_route *tt_route_find(const tt_server *s, const char *path, size_t len,
                              const char *method, int *status,
                              char *allow, size_t allowlen);

/* ---- status.c, date.c ---- */

const char *tt_status_reason(int status);            /* "Not Found"; "Unknown" */
/* "Sun, 06 Nov 1994 08:49:37 GMT" for now, cached per second; 29 chars */
const char *tt_http_date(void);
size_t      tt_http_date_format(int64_t t, char *buf); /* buf >= 30 */

#endif
