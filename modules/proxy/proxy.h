/* proxy — shared declarations of the reverse-proxy module.
 *
 * proxy.c      the descriptor and a request's way through the module
 * conf.c       the `proxy:` route key
 * balance.c    picking an upstream; passive health
 * io.c         an upstream connection's socket, events and buffers
 * pool.c       upstream connections: connect, keep-alive pool, reuse checks
 * reqhead.c    the request head sent upstream
 * http1.c      the upstream's response head and chunked bodies (pure)
 * relay.c      streaming both ways, retries, errors
 * tunnel.c     bytes both ways after a 101
 */
#ifndef TT_PROXY_H
#define TT_PROXY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <tutti/tutti.h>
#include "config.h"

#include <event2/event_struct.h>

struct event_base;
struct evbuffer;

extern const tt_api *px_api;

#define PX_BALANCE_RR    0
#define PX_BALANCE_LEAST 1
#define PX_BALANCE_HASH  2

/* next_upstream conditions */
#define PX_NEXT_ERROR   0x01
#define PX_NEXT_TIMEOUT 0x02
#define PX_NEXT_502     0x04
#define PX_NEXT_503     0x08
#define PX_NEXT_504     0x10

#define PX_HOST_PASS     0
#define PX_HOST_UPSTREAM 1
#define PX_HOST_LITERAL  2

typedef union {
    struct sockaddr     sa;
    struct sockaddr_in  in;
    struct sockaddr_in6 in6;
    struct sockaddr_un  un;
} px_sockaddr;

typedef struct px_conn px_conn;
typedef struct px_group px_group;

/* One upstream address. Its counters belong to the worker (the config
 * memory is copied at fork). */
typedef struct {
    px_sockaddr  addr;
    socklen_t    addr_len;
    const char  *name;          /* "127.0.0.1:9000", "[::1]:9000", "unix:/run/a.sock" */
    const char  *host;          /* for host: upstream ("127.0.0.1:9000", "localhost") */
    int          weight;
    int          max_fails;
    uint64_t     fail_ms;       /* fail_timeout */
    int          backup;

    /* per worker */
    int          current;       /* smooth weighted round robin */
    unsigned     active;        /* requests in flight to it */
    unsigned     fails;         /* within the window */
    uint64_t     fail_since;    /* first failure of the window (monotonic ms) */
    uint64_t     down_until;    /* left out until then */
} px_peer;

/* A header edit: set (value != NULL) or remove. */
typedef struct {
    const char *name;
    size_t      name_len;
    const char *value;          /* may hold $variables; NULL: remove */
    int         has_vars;
} px_edit;

/* The upstreams of one route and their pool of idle connections. */
struct px_group {
    px_peer     *peers;
    size_t       npeers;
    size_t       nprimary;      /* peers[0..nprimary) are not backups */
    int          balance;
    unsigned     rr_next;       /* ties and ip_hash probing */

    unsigned     keepalive;     /* idle connections kept */
    uint64_t     keepalive_ms;
    unsigned     keepalive_requests;

    /* per worker: idle connections, oldest first */
    px_conn     *idle_head, *idle_tail;
    unsigned     nidle;
    px_group    *next_used;     /* groups this worker used (freed at exit) */
    int          used;
};

typedef struct {
    px_group     group;
    uint64_t     connect_ms, read_ms, send_ms;
    unsigned     next_upstream; /* PX_NEXT_* */
    unsigned     tries;         /* 0: each upstream once */
    int          host_mode;
    const char  *host;          /* PX_HOST_LITERAL */
    const char  *path;          /* replaces the route prefix, or NULL */
    size_t       path_len;
    px_edit     *req_edits;
    size_t       nreq_edits;
    px_edit     *resp_edits;
    size_t       nresp_edits;
    int          forwarded;
    int          via;
    int          buffering;
    uint64_t     buffer_size;
} px_conf;

/* ---- conf.c */
int  px_configure_route(const tt_conf_node *node, void *main_conf, void **route_conf,
                        tt_errbuf *err);
/* parse one address into peers (a name may give several); pure enough to
 * test: returns the count, or -1 with msg set */
int  px_parse_address(const char *s, px_peer *out, size_t max, char *msg, size_t msglen);

/* ---- balance.c */
uint64_t px_now_ms(void);
/* the peer for the next try, skipping those in tried[] (bitmap over
 * peers); NULL when none is left. first: no try yet, so when every peer is
 * out the primaries are tried anyway */
px_peer *px_pick(px_group *g, const tt_request *r, const unsigned char *tried, int first);
/* is an untried peer up? (no side effects, unlike px_pick) */
int      px_any_left(px_group *g, const unsigned char *tried);
void     px_peer_failed(px_peer *p);
void     px_peer_ok(px_peer *p);

/* ---- io.c: a connection's bytes (a lean bufferevent) */
#define PX_IO_READING   0x01
#define PX_IO_WRITING   0x02
#define PX_IO_EOF       0x10
#define PX_IO_ERROR     0x20
#define PX_IO_TIMEOUT   0x40
#define PX_IO_CONNECTED 0x80

typedef struct px_io px_io;
typedef void (*px_io_cb)(px_io *io, void *arg);
typedef void (*px_io_event_cb)(px_io *io, short what, void *arg);

struct px_io {
    int              fd;
    struct event     rev, wev;
    struct evbuffer *in, *out;
    px_io_cb         readcb, writecb;   /* writecb: the output is all written */
    px_io_event_cb   eventcb;
    void            *arg;
    uint64_t         read_ms, write_ms; /* timeouts, 0 = none */
    size_t           rsize;             /* the next read's size */
    int              err;               /* errno of an ERROR */
    unsigned         assigned:1, reading:1, writing:1, connecting:1;
};

/* socket + non-blocking connect; PX_IO_CONNECTED or an error follows */
int  px_io_connect(px_io *io, const struct sockaddr *sa, socklen_t len, uint64_t connect_ms);
void px_io_close(px_io *io);
void px_io_setcb(px_io *io, px_io_cb readcb, px_io_cb writecb, px_io_event_cb eventcb,
                 void *arg);
void px_io_read(px_io *io, int on);
void px_io_timeouts(px_io *io, uint64_t read_ms, uint64_t write_ms);
void px_io_flush(px_io *io);

/* ---- pool.c: an upstream connection */
struct px_conn {
    px_io          io;
    px_peer       *peer;
    px_group      *group;
    unsigned       requests;    /* sent on it so far */
    int            reused;      /* came from the pool */
    uint64_t       idle_since;  /* monotonic ms it went into the pool */
    px_conn       *prev, *next; /* the idle list */
};

/* A connection to p: from the pool (after a liveness check; not when
 * allow_idle is 0) or a new one (connect under way: BEV_EVENT_CONNECTED or
 * an error follows). */
px_conn *px_conn_get(px_group *g, px_peer *p, uint64_t connect_ms, int allow_idle,
                     int *fresh);
/* Give a connection back after a complete exchange: kept idle or closed. */
void     px_conn_release(px_conn *c, int reusable);
void     px_conn_close(px_conn *c);
void     px_group_close_idle(px_group *g);
void     px_groups_close_all(void);

/* ---- reqhead.c */
/* Append the request head for r to out. upgrade: the client asked for one. */
int  px_request_head(const px_conf *cf, tt_request *r, const px_peer *peer, int upgrade,
                     struct evbuffer *out);
/* the edit of `headers:`/`response_headers:` naming this header, or NULL */
const px_edit *px_find_edit(const px_edit *e, size_t n, const char *name, size_t len);
/* Is name (len) hop-by-hop, or one of the tokens of the Connection value? */
int  px_hop_by_hop(const char *name, size_t len, const char *connection, size_t clen);
/* Is a header name (len bytes) lit, in any case? (http1.c) */
int  px_name_is(const char *name, size_t len, const char *lit);
/* Does a Connection value have this token? */
int  px_has_token(const char *list, size_t len, const char *token);
/* $variables of an edit's value, expanded for r */
const char *px_expand(tt_request *r, const char *value, size_t *len);

/* ---- http1.c: the upstream's answer */
#define PX_MAX_HEADERS 100

typedef struct {
    int         version;        /* 10 or 11 */
    int         status;
    const char *reason;
    size_t      reason_len;
    tt_header   headers[PX_MAX_HEADERS];
    size_t      nheaders;
    int64_t     content_length; /* -1: none */
    int         chunked;        /* Transfer-Encoding ends in chunked */
    int         other_coding;   /* another Transfer-Encoding: read until close */
    int         close;          /* Connection: close, or HTTP/1.0 without keep-alive */
    int         upgrade;        /* Connection: upgrade */
} px_head;

#define PX_HEAD_MORE  0         /* the head is not complete yet */
#define PX_HEAD_BAD  -1

/* Parse a response head at the start of buf: the head's length when it is
 * complete, PX_HEAD_MORE, or PX_HEAD_BAD with *why set. Pointers in h point
 * into buf. */
long px_parse_head(const char *buf, size_t len, px_head *h, const char **why);

typedef struct {
    int      state;
    uint64_t left;              /* data bytes left in the current chunk */
} px_chunked;

#define PX_CHUNK_MORE  0        /* consumed *used bytes of framing; need more */
#define PX_CHUNK_DATA  1        /* *data, *dlen is body; *used includes it */
#define PX_CHUNK_DONE  2        /* the last chunk and trailers are consumed */
#define PX_CHUNK_BAD  -1

int  px_chunked_next(px_chunked *st, const char *p, size_t len, size_t *used,
                     const char **data, size_t *dlen);

/* ---- relay.c */
int  px_handle(tt_request *r, void *route_conf);

#endif
