/* proxy — one request's state, shared by relay.c and tunnel.c. */
#ifndef TT_PROXY_RELAY_H
#define TT_PROXY_RELAY_H

#include <stdarg.h>
#include <time.h>
#include "proxy.h"

#define PX_FRAME_NONE    0      /* no body (HEAD, 204, 304) */
#define PX_FRAME_LENGTH  1
#define PX_FRAME_CHUNKED 2
#define PX_FRAME_CLOSE   3      /* until the upstream closes */

typedef struct {
    tt_request    *r;
    px_conf       *cf;
    px_conn       *up;          /* this try's connection, or NULL */
    px_peer       *peer;        /* this try's upstream */
    unsigned       tries;
    unsigned char  tried[256 / 8];
    int            last_status; /* of the last failed try */
    uint64_t       t_start;     /* monotonic usec of the first try */

    /* the request */
    unsigned       upgrade:1;       /* the client asked for an upgrade */
    unsigned       connected:1;
    unsigned       sent:1;          /* head and body all written */
    unsigned       body_started:1;  /* read_body() called */
    unsigned       body_done:1;     /* the client's body is complete */
    unsigned       body_paused:1;
    unsigned       body_error:1;
    unsigned       reuse_retried:1;
    uint64_t       body_consumed;   /* body bytes taken from the client */

    /* the response */
    unsigned       got_bytes:1;     /* this try's upstream sent something */
    unsigned       head_done:1;
    unsigned       unbuffered:1;    /* X-Accel-Buffering: no */
    unsigned       done:1;          /* answered or abandoned: ignore events */
    unsigned       tunnel:1;
    int            framing;
    uint64_t       left;            /* PX_FRAME_LENGTH */
    px_chunked     chunk;
    unsigned       up_close:1;      /* the upstream will close after this response */
    uint64_t       body_out;

    /* the tunnel after a 101 */
    struct event  *idle_ev;
    uint64_t       idle_ms;
    uint64_t       last_use_ms;
    unsigned       client_eof:1;
    unsigned       up_eof:1;

    int            busy;            /* inside a call that can end the request */
    unsigned       closed:1;        /* the request is gone: free when not busy */

    char           addrs[512];      /* upstream_addr */
    char           statuses[128];   /* upstream_status */
} px_req;

/* tunnel.c */
int  px_tunnel_start(px_req *x, const px_head *h, struct evbuffer *in, long hlen);
void px_tunnel_up_read(px_req *x);
void px_tunnel_up_event(px_req *x, short what);
void px_tunnel_drained(px_req *x);
void px_tunnel_free(px_req *x);

/* relay.c, for tunnel.c */
/* after x->busy++ and a call that may end the request: -1 if x is freed */
int  px_call_end(px_req *x);
void px_relay_drop(px_req *x);
void px_relay_client_drained(tt_request *r, void *arg);     /* an on_drain callback */
size_t px_client_headers(px_req *x, const px_head *h, tt_header *out, size_t max, int upgrade);
void px_relay_log_time(px_req *x);
void px_relay_fail(px_req *x, const char *why);

#endif
