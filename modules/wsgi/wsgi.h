/* wsgi — PEP 3333 apps on the CPython each worker embeds.
 *
 * Two ways to run an app, chosen per route by `threads`:
 *
 *   threads: 0   the app runs on the worker's I/O thread (the event loop),
 *                with the request body already read; the response iterator
 *                is paused while the client is slow and resumed on drain.
 *   threads: N   N Python threads per worker run the app. The I/O thread
 *                never takes the GIL: it hands requests over through a
 *                queue and applies what the threads send back (head, data,
 *                file, end) when an eventfd wakes it, many at a time. Python
 *                threads block, GIL released, for request body bytes and
 *                for room in the client's output (backpressure).
 *
 * Files: wsgi.c (the module, configuration), interp.c (the interpreter:
 * start, paths, logging, app import), environ.c (the environ dict),
 * input.c (wsgi.input), call.c (start_response, write, iterating the
 * result, wsgi.file_wrapper), hub.c (the threads, the queues, and the I/O
 * thread's side of them).
 */
#ifndef TT_WSGI_H
#define TT_WSGI_H

#include "config.h"
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <sys/uio.h>
#include <tutti/tutti.h>
#include "../python/pyhost.h"

extern const tt_api *wsgi_api;

typedef struct wsgi_route wsgi_route;
typedef struct wsgi_job   wsgi_job;
typedef struct wsgi_pool  wsgi_pool;

/* The `python:` section: one interpreter per worker, shared by every wsgi
 * route (and their apps share sys.modules). */
typedef struct {
    tt_py_conf    py;           /* the section itself (pyhost.h) */
    wsgi_route   *routes;       /* every wsgi route of this config */
} wsgi_main;

struct wsgi_route {
    wsgi_route   *next;
    wsgi_main    *main;
    const char   *app_spec;     /* "module:callable" or "module:factory()" */
    const char   *file;         /* where `app:` is written, for errors */
    unsigned      line, col;
    long          threads;      /* 0: on the event loop */
    const char   *script_name;  /* "" or "/mount", no trailing slash */
    size_t        script_name_len;

    /* per worker, after init */
    PyObject     *app;
    PyObject     *environ;      /* the constant keys, copied for each request */
    wsgi_pool    *pool;         /* threads > 0 */
};

/* A piece of the request body on its way to wsgi.input. */
typedef struct wsgi_chunk {
    struct wsgi_chunk *next;
    size_t             len;
    size_t             off;     /* bytes already taken */
    char               data[];
} wsgi_chunk;

/* One request on its way through Python. Owned by the I/O thread, which
 * frees it once both sides are done with it: the core has closed the
 * request (io_done) and Python has sent its last message (py_done). Fields
 * marked "hub" are read and written under the hub's lock. */
struct wsgi_job {
    wsgi_job       *next;       /* in a pool's queue */
    wsgi_route     *route;
    tt_request     *r;          /* I/O thread only; NULL once the request is gone */
    tt_request      req;        /* what Python reads: *r, or a copy (threads) */
    char           *copy;       /* the copy's strings and headers */
    int             threaded;

    /* hub */
    pthread_cond_t  cond;       /* the Python thread waits here */
    int             waiting;
    int             gone;       /* the client left, the connection failed */
    wsgi_chunk     *body_head, *body_tail;
    size_t          body_bytes; /* queued for wsgi.input */
    int             body_done;  /* the last byte is queued (or body_error) */
    int             body_error; /* the body will not complete */
    int             body_paused;/* the I/O thread stopped reading it */
    int             body_asked; /* a resume (or a start) is on its way */
    int             body_reading; /* read_body() called */
    size_t          unacked;    /* response bytes sent by Python, not yet drained */

    /* threads: 0, a body too big for memory, in an unlinked file */
    int             spool_fd;   /* -1: none */
    uint64_t        spool_size, spool_read;

    /* I/O thread only */
    size_t          owed;       /* written while over the high-water mark */
    int             io_done, py_done;
    PyObject       *call;       /* threads: 0, a response paused for drain */
};

/* response pieces, see wsgi_out() */
#define WSGI_OUT_END   0x1      /* the response is complete */
#define WSGI_OUT_ABORT 0x2      /* it cannot complete: close the connection */
#define WSGI_OUT_FAIL  0x4      /* nothing was sent: answer 500 */

/* The response head as Python gave it, in memory Python owns until the
 * call returns. */
typedef struct {
    int         status;
    const char *reason;         /* the app's reason phrase, may be "" */
    size_t      reason_len;
    tt_header  *headers;
    size_t      n;
    int64_t     length;         /* -1: Content-Length from headers, or none */
} wsgi_head;

/* High-water marks, per request: output queued for a slow client, body
 * queued for a slow app. */
#define WSGI_OUT_HIGH  (256 * 1024)
#define WSGI_BODY_HIGH (256 * 1024)
#define WSGI_BODY_LOW  (64 * 1024)
/* threads: 0 reads the whole body before the call: beyond this it goes to
 * a file (like nginx's client_body_buffer_size), never all in memory */
#define WSGI_BODY_MEM  (1024 * 1024)

/* interp.c: the interpreter (pyhost.c) plus wsgi's own types */
int  wsgi_interp_start(wsgi_main *m);
void wsgi_interp_stop(void);
int  wsgi_interp_load_app(wsgi_route *rt);

/* environ.c */
int  wsgi_environ_init(void);
PyObject *wsgi_environ_base(wsgi_route *rt);
PyObject *wsgi_environ_new(wsgi_job *j, PyObject *input);

/* input.c */
extern PyTypeObject wsgi_input_type;
PyObject *wsgi_input_new(wsgi_job *j);
void wsgi_input_detach(PyObject *input);

/* call.c */
extern PyTypeObject wsgi_call_type;
extern PyTypeObject wsgi_file_wrapper_type;
void wsgi_run(wsgi_job *j);                 /* call the app and send its answer */
int  wsgi_resume(wsgi_job *j);              /* threads: 0, more output after a drain */
void wsgi_cancel(wsgi_job *j);              /* threads: 0, the client left mid-response */

/* wsgi.c */
void wsgi_body_resume(wsgi_job *j);     /* I/O thread: the app wants (more) body */

/* hub.c */
int  wsgi_hub_start(void);
void wsgi_hub_stop(void);
int  wsgi_pool_start(wsgi_route *rt);
void wsgi_pool_dispatch(wsgi_pool *p, wsgi_job *j);
int  wsgi_out(wsgi_job *j, const wsgi_head *h, const struct iovec *iov, int niov, int flags);
int  wsgi_out_wait(wsgi_job *j);
int  wsgi_out_file(wsgi_job *j, const wsgi_head *h, int fd, int64_t off, int64_t len);
size_t wsgi_body_take(wsgi_job *j, char *buf, size_t n, int line, int *err);
void wsgi_job_free(wsgi_job *j);
void wsgi_hub_lock(void);
void wsgi_hub_unlock(void);

#endif
