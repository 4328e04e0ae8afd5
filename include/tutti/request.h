/* tutti — one HTTP request as a handler sees it.
 *
 * The core owns the request: it is allocated when the head has been parsed
 * and freed when the response is finished and flushed, or when the client goes
 * away. Fields are read-only for modules. Memory from tt_api.palloc lives
 * exactly as long as the request.
 */
#ifndef TUTTI_REQUEST_H
#define TUTTI_REQUEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;           /* as received (case kept) */
    size_t      name_len;
    const char *value;          /* leading/trailing whitespace removed */
    size_t      value_len;
} tt_header;

typedef struct tt_request tt_request;

struct tt_request {
    const char *method;         /* "GET"; NUL-terminated */
    size_t      method_len;
    const char *target;         /* request-target exactly as received */
    size_t      target_len;
    const char *raw_path;       /* path part of the target, not decoded */
    size_t      raw_path_len;
    const char *path;           /* percent-decoded, dot segments removed */
    size_t      path_len;
    const char *query;          /* after '?', without it; "" when none */
    size_t      query_len;
    int         version;        /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
    int         is_head;        /* method is HEAD: the core drops the body */
    tt_header  *headers;
    size_t      nheaders;
    const char *host;           /* Host without port, lower-cased; "" when none */
    size_t      host_len;
    int64_t     content_length; /* -1 when the body is chunked or absent */
    int         has_body;       /* a body follows the head (length > 0 or chunked) */
    int         chunked;
    int         tls;            /* arrived on a TLS listener */
    const char *remote_addr;    /* "127.0.0.1" / "::1" */
    int         remote_port;
    const char *local_addr;
    int         local_port;
    const char *server_name;    /* first name of the chosen server, or "" */
    const char *route_prefix;   /* the `match` path of the chosen route */
    size_t      route_prefix_len;
    uint64_t    start_usec;     /* when the head was complete (wall clock, microseconds) */
    void       *ctx;            /* free for the handler */
};

/* Handler return values: a module's handle() returns one of these, or an
 * HTTP status >= 400 for the core to answer with its own short error page. */
#define TT_OK        0          /* handled: a response is (or will be) under way */
#define TT_ERROR    -1          /* failed: the core answers 500 if it still can */
#define TT_DECLINED -2          /* a filter lets the request go on */

#endif
