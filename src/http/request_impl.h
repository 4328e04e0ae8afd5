/* What the core keeps about a connection and its current request.
 * Private to src/http: modules see only tt_request (the first member). */
#ifndef TT_REQUEST_IMPL_H
#define TT_REQUEST_IMPL_H

#include <stdint.h>
#include <netinet/in.h>
#include <event2/bufferevent.h>
#include <tutti/tutti.h>
#include "http/http.h"

typedef struct tt_conn tt_conn;

typedef union {
    struct sockaddr     sa;
    struct sockaddr_in  in;
    struct sockaddr_in6 in6;
} tt_sockaddr;
typedef struct tt_req  tt_req;

/* Output held back while a file is fed through memory (see response.c). */
typedef struct tt_spool_piece tt_spool_piece;

struct tt_close_hook {
    struct tt_close_hook *next;
    tt_request_cb         cb;
    void                 *arg;
};

struct tt_req {
    tt_request       pub;           /* first: modules get &pub */
    tt_conn         *c;             /* NULL once the connection is gone */
    tt_arena        *pool;
    const tt_server *server;
    const tt_route  *route;

    /* response state */
    int              status;
    unsigned         started:1;     /* head queued */
    unsigned         finished:1;    /* finish() called */
    unsigned         chunked:1;     /* we frame the body in chunks */
    unsigned         until_close:1; /* HTTP/1.0 with no length: body ends at close */
    unsigned         keepalive:1;   /* the connection stays open after this */
    unsigned         truncated:1;   /* fewer bytes than Content-Length: must close */
    int64_t          out_length;    /* declared Content-Length, -1 if none */
    const char      *reason;        /* the handler's reason phrase, or NULL */
    tt_spool_piece  *spool_head, *spool_tail;
    uint64_t         spool_bytes;   /* in the spool, not yet in the output */
    uint64_t         out_sent;      /* body bytes accepted from the handler */

    /* request body */
    tt_body_cb       body_cb;
    void            *body_arg;
    unsigned         body_reading:1;/* read_body() called */
    unsigned         body_paused:1;
    unsigned         body_done:1;   /* TT_BODY_END or TT_BODY_ERROR delivered */
    unsigned         continue_sent:1;
    uint64_t         body_received;

    tt_request_cb    drain_cb;
    void            *drain_arg;
    tt_request_cb    stop_cb;       /* on_stop: the worker stops gracefully */
    void            *stop_arg;
    unsigned         tunnel:1;      /* upgraded: raw bytes both ways */
    struct tt_close_hook *close_hooks;  /* on_close callbacks, newest first */
    struct tt_log_field  *log_fields;   /* log_field(), in the order first set */
};

enum tt_conn_state {
    TT_CONN_IDLE,                   /* keep-alive, waiting for a request */
    TT_CONN_HEAD,                   /* reading a request head */
    TT_CONN_ACTIVE,                 /* a request is being served */
    TT_CONN_DISCARD,                /* response done, dropping the unread body */
    TT_CONN_TUNNEL,                 /* upgraded (101): raw bytes both ways */
    TT_CONN_CLOSING                 /* flushing the last bytes, then close */
};

struct tt_conn {
    union {
        struct bufferevent *bev;        /* normally */
        struct event       *idle_ev;    /* compact: idle for a while, see conn.c */
    };
    tt_listen          *listen;
    tt_conn            *prev, *next;    /* every connection of the worker */
    tt_conn            *idle_prev, *idle_next; /* idle ones, oldest first (max_idle) */
    tt_parser          *parser;         /* only while a request is in flight */
    uint64_t            mark_ms;        /* HEAD: the head's deadline; IDLE: idle since (monotonic ms) */
    tt_req             *req;
    const tt_limits    *limits;         /* of the chosen server */
    enum tt_conn_state  state;
    unsigned            requests;       /* served on this connection */
    unsigned            closing:1;      /* no keep-alive after the current response */
    unsigned            in_input:1;     /* inside process_input: no re-entry */
    unsigned            peer_closed:1;  /* EOF seen from the client */
    unsigned            dead:1;         /* closed while in process_input */
    unsigned            lingering:1;    /* shut for writing, dropping input */
    unsigned            read_off:1;     /* EV_READ off: we cannot use more input */
    unsigned            compact:1;      /* idle_ev instead of bev */
    unsigned            corked:1;       /* TCP_CORK on while a file is sent */
    unsigned            rate_limited:1; /* a throttle's bucket is on the bufferevent */
    unsigned            on_idle_list:1;
    unsigned            tls:1;          /* an OpenSSL bufferevent (HTTPS) */
    /* binary, formatted per request: 56 bytes instead of 100 per idle
     * connection */
    tt_sockaddr         remote;
    tt_sockaddr         local;
};

/* response.c */
int    tt_resp_start(tt_request *r, int status, const tt_header *headers,
                     size_t n, int64_t content_length);
int    tt_resp_write(tt_request *r, const void *data, size_t len);
int    tt_resp_sendfile(tt_request *r, int fd, int64_t off, int64_t len, int close_fd);
int    tt_resp_finish(tt_request *r);
int    tt_resp_respond(tt_request *r, int status, const char *content_type,
                       const void *body, size_t len);
size_t tt_resp_pending(const tt_request *r);
void   tt_resp_on_drain(tt_request *r, tt_request_cb cb, void *arg);
int    tt_resp_reason(tt_request *r, const char *reason, size_t len);
/* the core's own short error page, with extra headers (Allow for 405) */
int    tt_resp_error(tt_req *q, int status, const tt_header *extra, size_t nextra);

/* Feed the spool into the output, up to a slice; -1 when a file could not
 * be read (the response cannot complete). Free it (request end). */
int    tt_spool_feed(tt_req *q);
void   tt_spool_free(tt_req *q);

/* conn.c, for response.c and api.c */
void   tt_conn_response_finished(tt_conn *c);   /* finish() was called */
void   tt_conn_output_added(tt_conn *c);         /* bytes queued for the client */
void   tt_conn_cork(tt_conn *c);                 /* a file follows: full segments only */
void   tt_conn_upgraded(tt_conn *c);             /* the 101 is queued: tunnel from now */
int    tt_resp_upgrade(tt_request *r, const tt_header *headers, size_t n);
void   tt_req_on_stop(tt_request *r, tt_request_cb cb, void *arg);
int    tt_body_read(tt_request *r, tt_body_cb cb, void *arg);
void   tt_body_pause(tt_request *r, int paused);
void   tt_req_on_close(tt_request *r, tt_request_cb cb, void *arg);
int    tt_req_log_field(tt_request *r, const char *key, const char *value);
void   tt_req_abort(tt_request *r);
int    tt_resp_wait_drain(tt_request *r, size_t below, uint64_t timeout_ms);
int    tt_req_set_rate(tt_request *r, uint64_t download, uint64_t upload,
                       uint64_t download_after);
const char *tt_req_header(const tt_request *r, const char *name, size_t *len);
void  *tt_req_palloc(tt_request *r, size_t n);

/* return.c */
int    tt_return_handle(tt_req *q, const tt_return_conf *rc);

#endif
