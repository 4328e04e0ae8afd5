/* asgi — ASGI 3.0 apps (http, websocket, lifespan) on an asyncio loop.
 *
 * Each worker runs one asyncio loop (uvloop when installed) on a Python
 * thread of its own; the I/O thread never takes the GIL while serving. The
 * two meet in bridge.c: events for the loop (a request, body bytes, a
 * WebSocket message, the client leaving, the client draining) queue up and
 * wake it through an eventfd it watches with add_reader; what the app sends
 * queues the other way and wakes the I/O thread through another eventfd.
 * One wake-up carries everything queued.
 *
 * Files: asgi.c (the module, configuration, the handler's side on the I/O
 * thread), bridge.c (the queues and _tutti_asgi, the C module loop.py
 * calls), scope.c (scope dicts), loop.py (the loop thread's Python).
 */
#ifndef TT_ASGI_H
#define TT_ASGI_H

#include "config.h"
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <tutti/tutti.h>
#include <tutti/websocket.h>
#include "../python/pyhost.h"

extern const tt_api *asgi_api;
extern const tt_ws_api *asgi_ws;

typedef struct asgi_route asgi_route;
typedef struct asgi_req   asgi_req;

typedef struct {
    tt_py_conf   py;
    asgi_route  *routes;
} asgi_main;

#define ASGI_LIFESPAN_AUTO 0
#define ASGI_LIFESPAN_ON   1
#define ASGI_LIFESPAN_OFF  2

struct asgi_route {
    asgi_route   *next;
    asgi_main    *main;
    const char   *app_spec;
    const char   *file;
    unsigned      line, col;
    int           lifespan;
    const char   *root_path;    /* "" or "/mount", no trailing slash */
    size_t        root_path_len;
    PyObject     *app;          /* per worker */
};

/* One request (or WebSocket session) between the two threads. Owned by
 * the I/O thread; freed once the core is done with it (io_done) and the
 * app's task has ended (py_done). "bridge" fields are under the bridge's
 * lock. */
struct asgi_req {
    asgi_route   *route;
    tt_request   *r;            /* I/O thread; NULL once the request ended */
    tt_request    req;          /* a copy the loop thread builds the scope from */
    char         *copy;
    int           is_ws;

    /* bridge */
    size_t        inflight;     /* output the app sent that the client has not taken */
    int           send_wait;    /* the app waits for a drain event */

    /* I/O thread */
    tt_ws        *ws;
    int           io_done, py_done;
    size_t        unacked;      /* body bytes / messages the app has not received yet */
    int           paused;       /* reading from the client stopped for that */
    int           head_pending; /* http.response.start held for the first body */
    int           head_status;
    tt_header    *head;
    size_t        nhead;
    char         *head_mem;
    int           drain_armed;
};

/* what the I/O thread tells the loop (loop.py's EV_*) */
enum {
    ASGI_EV_HTTP, ASGI_EV_WS, ASGI_EV_BODY, ASGI_EV_GONE, ASGI_EV_DRAIN,
    ASGI_EV_WS_MSG, ASGI_EV_WS_CLOSE, ASGI_EV_STOP
};

/* what the app tells the I/O thread */
enum {
    ASGI_M_START, ASGI_M_BODY, ASGI_M_FILE, ASGI_M_ABORT, ASGI_M_FAIL, ASGI_M_DONE,
    ASGI_M_ACK, ASGI_M_WS_ACCEPT, ASGI_M_WS_SEND, ASGI_M_WS_CLOSE, ASGI_M_WS_DENY
};

typedef struct asgi_msg {
    struct asgi_msg *next;
    int              type;
    asgi_req        *q;
    int              a;         /* status, more_body, text/binary, close code */
    int              more;      /* M_START: more_body of the body that came with it */
    size_t           len;       /* data bytes, or ack count */
    size_t           nheaders;  /* headers first in data: n x (u32 name, u32 value, bytes) */
    char            *data;
} asgi_msg;

/* output queued past this makes send() wait for a drain */
#define ASGI_OUT_HIGH (256 * 1024)
#define ASGI_OUT_LOW  (64 * 1024)
/* request body read ahead of the app, and WebSocket messages */
#define ASGI_BODY_HIGH (256 * 1024)
#define ASGI_BODY_LOW  (64 * 1024)
#define ASGI_WS_HIGH   64
#define ASGI_WS_LOW    16

/* bridge.c */
int  asgi_bridge_start(asgi_main *m);   /* GIL held: module, loop thread, lifespan */
void asgi_bridge_stop(void);
void asgi_event(int type, asgi_req *q, const void *data, size_t len, int a);
void asgi_apply(asgi_msg *m);           /* asgi.c: a message on the I/O thread */
void asgi_msg_free(asgi_msg *m);
/* the client has pending bytes left: a waiting app goes on when low enough */
void asgi_credit_set(asgi_req *q, size_t pending);
int  asgi_credit_waiting(asgi_req *q);

/* scope.c (loop thread, GIL held) */
PyObject *asgi_scope_new(asgi_req *q);
int  asgi_scope_init(void);

/* asgi.c */
void asgi_req_release(asgi_req *q);     /* py_done: the app's task ended */

#endif
