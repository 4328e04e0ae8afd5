/* One call of a WSGI app: start_response and write(), the result iterated
 * into the response, close() always, wsgi.file_wrapper to sendfile, and
 * failures turned into a 500 or a cut connection. Runs with the GIL held:
 * on a pool thread, or on the I/O thread for threads: 0. */
#include "wsgi.h"      /* first: Python.h before the system headers */
#include "spec.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define api wsgi_api

typedef struct {
    PyObject_HEAD
    wsgi_job  *job;             /* NULL once the request is over */
    PyObject  *status;          /* from start_response, NULL before */
    PyObject  *headers;
    int        code;
    int        head_sent;       /* handed to the core: start_response is final */
    int        declared;        /* the app set Content-Length */
    int64_t    declared_len;    /* its value, -1 if it is not a number */
    int        done;            /* no more output: the last piece went, or cannot */
    int        sent_last;       /* the final message went (threads: the job is the
                                 * I/O thread's again, never touch it after) */
    int        threaded;
    const char *spec;           /* the app, for the log */
    PyObject  *input;
    PyObject  *result;
    PyObject  *iter;            /* threads: 0 keeps it across a drain */
} wsgi_call;

/* ---------------------------------------------------------------- the head */

/* Latin-1 bytes of a str without a copy: 1-byte kind strings are stored
 * as latin-1. */
static int latin1_view(PyObject *s, const char **p, size_t *n, const char *what)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(s)->tp_name);
        return -1;
    }
    if (PyUnicode_READY(s) != 0)
        return -1;
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError, "%s %R is not latin-1", what, s);
        return -1;
    }
    *p = (const char *)PyUnicode_1BYTE_DATA(s);
    *n = (size_t)PyUnicode_GET_LENGTH(s);
    return 0;
}

/* The head in h, pointing into the call's str objects; hdrs has room for
 * 32 headers, more go in *heap (free it). */
static int head_make(wsgi_call *c, wsgi_head *h, tt_header *hdrs, tt_header **heap,
                     int64_t length)
{
    Py_ssize_t n = PyList_GET_SIZE(c->headers);
    tt_header *a = hdrs;

    *heap = NULL;
    if (n > 32) {
        a = *heap = PyMem_Malloc((size_t)n * sizeof(tt_header));
        if (a == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(c->headers, i);
        if (latin1_view(PyTuple_GET_ITEM(pair, 0), &a[i].name, &a[i].name_len,
                        "a header name") != 0 ||
            latin1_view(PyTuple_GET_ITEM(pair, 1), &a[i].value, &a[i].value_len,
                        "a header value") != 0) {
            PyMem_Free(*heap);
            *heap = NULL;
            return -1;
        }
    }
    h->status = c->code;
    /* "200 OK": the reason after the code and its space */
    Py_ssize_t slen;
    const char *st = PyUnicode_AsUTF8AndSize(c->status, &slen);
    h->reason = st != NULL && slen > 4 ? st + 4 : "";
    h->reason_len = st != NULL && slen > 4 ? (size_t)(slen - 4) : 0;
    h->headers = a;
    h->n = (size_t)n;
    /* the app's own Content-Length wins: the core reads it from the list */
    h->length = c->declared ? -1 : length;
    return 0;
}

static int no_status(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "the app returned a body before calling start_response()");
    return -1;
}

/* Every piece goes through here. The final one detaches wsgi.input first:
 * once the I/O thread has it, the job may be freed at any moment. */
static int out(wsgi_call *c, const wsgi_head *h, const struct iovec *iov, int niov, int flags)
{
    if (flags & (WSGI_OUT_END | WSGI_OUT_ABORT | WSGI_OUT_FAIL)) {
        c->done = 1;
        c->sent_last = 1;
        if (c->input != NULL)
            wsgi_input_detach(c->input);
    }
    return wsgi_out(c->job, h, iov, niov, flags);
}

/* Hand the core (or the I/O thread) the head, if not yet sent, then the
 * bytes, with flags. length is the whole body's, when known. Returns 0, 1
 * when over the output's high-water mark (threads: 0), -1 with an
 * exception set, or -2 when the client is gone. */
static int send(wsgi_call *c, const struct iovec *iov, int niov, int64_t length, int flags)
{
    wsgi_head h, *hp = NULL;
    tt_header hdrs[32], *heap = NULL;

    if (c->done)
        return -2;
    if (!c->head_sent) {
        if (c->status == NULL)
            return no_status();
        if (head_make(c, &h, hdrs, &heap, length) != 0)
            return -1;
        hp = &h;
        c->head_sent = 1;
    }
    int rc = out(c, hp, iov, niov, flags);
    PyMem_Free(heap);
    if (rc == -1)
        rc = -2;                /* the message could not go: as good as gone */
    return rc;
}

/* ---------------------------------------------------------------- start_response, write */

static PyObject *call_write(wsgi_call *c, PyObject *data);

static PyMethodDef write_def = {
    "write", (PyCFunction)call_write, METH_O, "write(data): send bytes now (legacy WSGI)"
};

/* The app's Content-Length value: -1 unless all digits. */
static int64_t length_value(PyObject *v)
{
    const char *s = PyUnicode_AsUTF8(v);
    char *end;
    long long n = s != NULL ? strtoll(s, &end, 10) : -1;
    PyErr_Clear();
    return s != NULL && end != s && *end == '\0' && n >= 0 ? n : -1;
}

/* A list of (str, str); whether it has a Content-Length, and its value. */
static int check_headers(PyObject *headers, int *declared, int64_t *declared_len)
{
    if (!PyList_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "response headers must be a list, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return -1;
    }
    *declared = 0;
    *declared_len = -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
            PyErr_Format(PyExc_TypeError, "response header %zd must be a (str, str) tuple, "
                         "not %R", i, pair);
            return -1;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        const char *n = PyUnicode_GET_LENGTH(name) == 14 ? PyUnicode_AsUTF8(name) : NULL;
        if (n != NULL && strcasecmp(n, "Content-Length") == 0) {
            *declared = 1;
            *declared_len = length_value(PyTuple_GET_ITEM(pair, 1));
        }
        PyErr_Clear();
    }
    return 0;
}

static int parse_status(PyObject *status)
{
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "status must be str such as '200 OK', not %.100s",
                     Py_TYPE(status)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(status, &len);
    if (s == NULL)
        return -1;
    int code = wsgi_status_code(s, (size_t)len);
    if (code < 0)
        PyErr_Format(PyExc_ValueError, "status %R is not a code and a reason such as '200 OK'",
                     status);
    return code;
}

/* start_response(status, headers, exc_info=None) -> write */
static PyObject *call_start(wsgi_call *c, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = { "status", "response_headers", "exc_info", NULL };
    PyObject *status, *headers, *exc_info = Py_None;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", kw,
                                     &status, &headers, &exc_info))
        return NULL;
    if (exc_info != Py_None) {
        if (c->head_sent) {
            /* too late to change the answer: re-raise the app's error */
            if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
                PyErr_SetString(PyExc_TypeError, "exc_info must be sys.exc_info()");
                return NULL;
            }
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb == Py_None ? (Py_DECREF(tb), NULL) : tb);
            return NULL;
        }
    } else if (c->status != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called a second time without "
                        "exc_info");
        return NULL;
    }
    int code = parse_status(status), declared;
    int64_t declared_len;
    if (code < 0 || check_headers(headers, &declared, &declared_len) != 0)
        return NULL;
    Py_INCREF(status);
    Py_XSETREF(c->status, status);
    Py_INCREF(headers);
    Py_XSETREF(c->headers, headers);
    c->code = code;
    c->declared = declared;
    c->declared_len = declared_len;
    return PyCFunction_New(&write_def, (PyObject *)c);
}

static PyObject *call_write(wsgi_call *c, PyObject *data)
{
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "write() takes bytes, not %.100s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    if (c->job == NULL || c->done) {
        PyErr_SetString(PyExc_OSError, "write() after the response ended");
        return NULL;
    }
    if (c->status == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() before start_response()");
        return NULL;
    }
    if (PyBytes_GET_SIZE(data) == 0)
        Py_RETURN_NONE;
    struct iovec v = { PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data) };
    int rc = send(c, &v, 1, -1, 0);
    if (rc == 1)                /* threads: 0 and the client is behind */
        rc = wsgi_out_wait(c->job);
    if (rc == -1)
        return NULL;
    if (rc == -2) {
        PyErr_SetString(PyExc_OSError, "the client disconnected");
        return NULL;
    }
    Py_RETURN_NONE;
}

static void call_dealloc(wsgi_call *c)
{
    Py_XDECREF(c->status);
    Py_XDECREF(c->headers);
    Py_XDECREF(c->input);
    Py_XDECREF(c->result);
    Py_XDECREF(c->iter);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

PyTypeObject wsgi_call_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tutti.StartResponse",
    .tp_basicsize = sizeof(wsgi_call),
    .tp_dealloc = (destructor)call_dealloc,
    .tp_call = (ternaryfunc)call_start,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "start_response(status, headers, exc_info=None)",
};

/* ---------------------------------------------------------------- wsgi.file_wrapper */

typedef struct {
    PyObject_HEAD
    PyObject  *filelike;
    Py_ssize_t blksize;
} file_wrapper;

static int fw_init(file_wrapper *w, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = { "filelike", "block_size", NULL };
    PyObject *f;
    Py_ssize_t blk = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", kw, &f, &blk))
        return -1;
    Py_INCREF(f);
    Py_XSETREF(w->filelike, f);
    w->blksize = blk > 0 ? blk : 8192;
    return 0;
}

static PyObject *fw_next(file_wrapper *w)
{
    PyObject *data = PyObject_CallMethod(w->filelike, "read", "n", w->blksize);
    if (data == NULL)
        return NULL;
    if (PyObject_Length(data) <= 0) {
        Py_DECREF(data);
        PyErr_Clear();
        return NULL;
    }
    return data;
}

static PyObject *fw_close(file_wrapper *w, PyObject *unused)
{
    if (w->filelike != NULL && PyObject_HasAttrString(w->filelike, "close"))
        return PyObject_CallMethod(w->filelike, "close", NULL);
    Py_RETURN_NONE;
}

static void fw_dealloc(file_wrapper *w)
{
    Py_XDECREF(w->filelike);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef fw_methods[] = {
    { "close", (PyCFunction)fw_close, METH_NOARGS, "close the file" },
    { NULL, NULL, 0, NULL }
};

PyTypeObject wsgi_file_wrapper_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tutti.FileWrapper",
    .tp_basicsize = sizeof(file_wrapper),
    .tp_dealloc = (destructor)fw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.file_wrapper(filelike, block_size=8192): a real file goes by sendfile",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)fw_next,
    .tp_methods = fw_methods,
    .tp_init = (initproc)fw_init,
    .tp_new = PyType_GenericNew,
};

/* ---------------------------------------------------------------- running the app */

/* result.close(), whatever happened; its own failure is logged */
static void close_result(wsgi_call *c)
{
    PyObject *res = c->result;
    if (res == NULL)
        return;
    c->result = NULL;
    Py_CLEAR(c->iter);
    if (PyObject_HasAttrString(res, "close")) {
        PyObject *rc = PyObject_CallMethod(res, "close", NULL);
        if (rc == NULL)
            tt_py_log_exception("wsgi app '%s': close() of the response failed", c->spec);
        Py_XDECREF(rc);
    }
    Py_DECREF(res);
}

/* The last word: a 500 (nothing was sent yet) or a cut (it was). */
static void fail(wsgi_call *c)
{
    wsgi_job *j = c->job;
    if (PyErr_Occurred())
        tt_py_log_exception("wsgi app '%s' failed on %s %s", j->route->app_spec,
                           j->req.method, j->req.target);
    close_result(c);
    if (!c->done)
        out(c, NULL, NULL, 0, c->head_sent ? WSGI_OUT_ABORT : WSGI_OUT_FAIL);
}

/* The end: close() first (a failing close still makes a 500 if it can),
 * then the last piece. */
static void finish(wsgi_call *c)
{
    close_result(c);
    if (PyErr_Occurred()) {
        fail(c);
        return;
    }
    send(c, NULL, 0, 0, WSGI_OUT_END);
    if (PyErr_Occurred())
        fail(c);
}

/* A list or tuple of bytes: one piece, with its length known. */
static int send_sequence(wsgi_call *c)
{
    PyObject *seq = c->result;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    struct iovec small[8], *iov = small;
    int64_t total = 0;

    if (n > 8 && (iov = PyMem_Malloc((size_t)n * sizeof(*iov))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyBytes_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "the app's response item %zd is %.100s, not bytes",
                         i, Py_TYPE(items[i])->tp_name);
            if (iov != small)
                PyMem_Free(iov);
            return -1;
        }
        iov[i].iov_base = PyBytes_AS_STRING(items[i]);
        iov[i].iov_len = (size_t)PyBytes_GET_SIZE(items[i]);
        total += (int64_t)iov[i].iov_len;
    }
    if (total == 0 && c->status == NULL) {
        if (iov != small)
            PyMem_Free(iov);
        return no_status();
    }
    /* an exact list or tuple has no close(): the last piece can carry it all */
    int rc = send(c, iov, (int)n, total, WSGI_OUT_END);
    if (iov != small)
        PyMem_Free(iov);
    Py_CLEAR(c->result);
    return rc == -1 ? -1 : 0;
}

/* A file_wrapper of a real file: from its position to its end, by
 * sendfile. Returns 1 when it is not one (iterate it instead). */
static int send_file(wsgi_call *c)
{
    file_wrapper *w = (file_wrapper *)c->result;
    PyObject *fno = PyObject_CallMethod(w->filelike, "fileno", NULL);
    if (fno == NULL) {
        PyErr_Clear();
        return 1;
    }
    int fd = (int)PyLong_AsLong(fno);
    Py_DECREF(fno);
    struct stat st;
    if (PyErr_Occurred() || fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        c->head_sent) {
        PyErr_Clear();
        return 1;
    }
    /* tell(), not lseek: a buffered reader's position is its own */
    PyObject *pos = PyObject_CallMethod(w->filelike, "tell", NULL);
    int64_t off = pos ? PyLong_AsLongLong(pos) : -1;
    Py_XDECREF(pos);
    if (PyErr_Occurred() || off < 0) {
        PyErr_Clear();
        off = lseek(fd, 0, SEEK_CUR);
        if (off < 0)
            return 1;
    }
    int64_t len = st.st_size > off ? st.st_size - off : 0;
    if (c->status == NULL)
        return no_status();
    if (c->declared_len >= 0 && c->declared_len < len)
        len = c->declared_len;  /* the app sends part of the file */

    int dupfd = dup(fd);
    if (dupfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    wsgi_head h;
    tt_header hdrs[32], *heap = NULL;
    if (head_make(c, &h, hdrs, &heap, len) != 0) {
        close(dupfd);
        return -1;
    }
    c->head_sent = 1;
    int rc = wsgi_out_file(c->job, &h, dupfd, off, len);
    PyMem_Free(heap);
    if (rc != 0) {
        c->done = 1;            /* the client is gone */
        close_result(c);
        return 0;
    }
    finish(c);
    return 0;
}

/* Iterate the result into the response. Returns 1 when paused for a drain
 * (threads: 0), 0 when done (the last piece sent or the call failed). */
static int iterate(wsgi_call *c)
{
    PyObject *chunk;

    if (c->iter == NULL && (c->iter = PyObject_GetIter(c->result)) == NULL) {
        fail(c);
        return 0;
    }
    while ((chunk = PyIter_Next(c->iter)) != NULL) {
        if (!PyBytes_Check(chunk)) {
            PyErr_Format(PyExc_TypeError, "the app yielded %.100s, not bytes",
                         Py_TYPE(chunk)->tp_name);
            Py_DECREF(chunk);
            break;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(chunk);
        if (n == 0) {           /* the head waits for a non-empty piece */
            Py_DECREF(chunk);
            continue;
        }
        struct iovec v = { PyBytes_AS_STRING(chunk), (size_t)n };
        int rc = send(c, &v, 1, -1, 0);
        Py_DECREF(chunk);
        if (rc == -1)
            break;
        if (rc == -2) {         /* the client left: stop, and close() */
            close_result(c);
            return 0;
        }
        if (rc == 1)
            return 1;
    }
    if (PyErr_Occurred()) {
        fail(c);
        return 0;
    }
    finish(c);
    return 0;
}

/* Whatever happened, the I/O thread gets a last message (threads: it
 * gives the job back). */
static void call_end(wsgi_call *c)
{
    wsgi_job *j = c->job;
    if (!c->sent_last)
        out(c, NULL, NULL, 0, WSGI_OUT_ABORT);
    c->job = NULL;
    if (!c->threaded)
        j->call = NULL;
    Py_DECREF(c);
}

void wsgi_run(wsgi_job *j)
{
    wsgi_call *c = PyObject_New(wsgi_call, &wsgi_call_type);
    if (c == NULL) {
        PyErr_Clear();
        wsgi_out(j, NULL, NULL, 0, WSGI_OUT_FAIL);
        return;
    }
    c->job = j;
    c->status = c->headers = c->result = c->iter = NULL;
    c->head_sent = c->declared = c->done = c->sent_last = 0;
    c->declared_len = -1;
    c->threaded = j->threaded;
    c->spec = j->route->app_spec;
    c->code = 0;
    c->input = wsgi_input_new(j);

    PyObject *env = c->input ? wsgi_environ_new(j, c->input) : NULL;
    if (env != NULL) {
        c->result = PyObject_CallFunctionObjArgs(j->route->app, env, (PyObject *)c, NULL);
        Py_DECREF(env);
    }
    if (c->result == NULL) {
        fail(c);
        call_end(c);
        return;
    }

    int rc;
    if (PyList_CheckExact(c->result) || PyTuple_CheckExact(c->result)) {
        rc = send_sequence(c);
    } else if (Py_TYPE(c->result) == &wsgi_file_wrapper_type &&
               (rc = send_file(c)) != 1) {
        /* sent by sendfile */
    } else {
        rc = iterate(c);
        if (rc == 1) {
            j->call = (PyObject *)c;    /* threads: 0, resumed on drain */
            return;
        }
        rc = 0;
    }
    if (rc != 0 || PyErr_Occurred())
        fail(c);
    call_end(c);
}

int wsgi_resume(wsgi_job *j)
{
    wsgi_call *c = (wsgi_call *)j->call;
    if (iterate(c) == 1)
        return 1;
    call_end(c);
    return 0;
}

void wsgi_cancel(wsgi_job *j)
{
    wsgi_call *c = (wsgi_call *)j->call;
    tt_py_gil_take();
    c->done = 1;
    close_result(c);
    PyErr_Clear();
    call_end(c);
    tt_py_gil_drop();
}
