/* wsgi.input: the request body as a binary stream. Reads wait, with the
 * GIL released, for the I/O thread to bring more (threads > 0); with
 * threads: 0 the body is all here before the app runs. At the end of the
 * request the stream is detached and reads return b"". */
#include "wsgi.h"      /* first: Python.h before the system headers */
#include <string.h>

typedef struct {
    PyObject_HEAD
    wsgi_job *job;
} wsgi_input;

PyObject *wsgi_input_new(wsgi_job *j)
{
    wsgi_input *in = PyObject_New(wsgi_input, &wsgi_input_type);
    if (in != NULL)
        in->job = j;
    return (PyObject *)in;
}

void wsgi_input_detach(PyObject *input)
{
    ((wsgi_input *)input)->job = NULL;
}

static PyObject *gone_error(void)
{
    PyErr_SetString(PyExc_OSError, "the request body did not arrive whole (the client left, "
                    "stopped sending, or sent more than max_body_size)");
    return NULL;
}

/* Up to n bytes into buf, as many as arrive before the end: fewer only at
 * the end of the body. With line, stops after a newline. */
static Py_ssize_t take(wsgi_job *j, char *buf, size_t n, int line, int *err)
{
    size_t got = 0;
    Py_BEGIN_ALLOW_THREADS
    while (got < n) {
        size_t k = wsgi_body_take(j, buf + got, n - got, line, err);
        if (k == 0)
            break;
        got += k;
        if (line && buf[got - 1] == '\n')
            break;
    }
    Py_END_ALLOW_THREADS
    return (Py_ssize_t)got;
}

/* read up to size bytes (size < 0: all), or a line when line is set */
static PyObject *read_some(wsgi_input *in, Py_ssize_t size, int line)
{
    if (in->job == NULL || size == 0)
        return PyBytes_FromStringAndSize("", 0);

    size_t cap = size > 0 && size < (1 << 16) ? (size_t)size : 1 << 16;
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    size_t len = 0;
    int err = 0;
    while (b != NULL) {
        size_t want = cap - len;
        if (size > 0 && len + want > (size_t)size)
            want = (size_t)size - len;
        Py_ssize_t got = take(in->job, PyBytes_AS_STRING(b) + len, want, line, &err);
        len += (size_t)got;
        if ((size_t)got < want || (size > 0 && len == (size_t)size) ||
            (line && len > 0 && PyBytes_AS_STRING(b)[len - 1] == '\n'))
            break;
        /* full: grow and go on */
        cap *= 2;
        if (size > 0 && cap > (size_t)size)
            cap = (size_t)size;
        if (_PyBytes_Resize(&b, (Py_ssize_t)cap) != 0)
            return NULL;
    }
    if (b == NULL)
        return NULL;
    if (err && len == 0) {
        Py_DECREF(b);
        return gone_error();
    }
    if (len != cap && _PyBytes_Resize(&b, (Py_ssize_t)len) != 0)
        return NULL;
    return b;
}

static int size_arg(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "expected at most one argument (a size)");
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    *size = PyLong_AsSsize_t(args[0]);
    return *size == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *input_read(wsgi_input *in, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    if (size_arg(args, nargs, &size) != 0)
        return NULL;
    return read_some(in, size, 0);
}

static PyObject *input_readline(wsgi_input *in, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    if (size_arg(args, nargs, &size) != 0)
        return NULL;
    return read_some(in, size, 1);
}

static PyObject *input_readlines(wsgi_input *in, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t hint, total = 0;
    if (size_arg(args, nargs, &hint) != 0)
        return NULL;
    PyObject *list = PyList_New(0);
    while (list != NULL) {
        PyObject *line = read_some(in, -1, 1);
        if (line == NULL) {
            Py_CLEAR(list);
            break;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n == 0) {
            Py_DECREF(line);
            break;
        }
        int rc = PyList_Append(list, line);
        Py_DECREF(line);
        if (rc != 0)
            Py_CLEAR(list);
        total += n;
        if (hint > 0 && total >= hint)
            break;
    }
    return list;
}

static PyObject *input_next(wsgi_input *in)
{
    PyObject *line = read_some(in, -1, 1);
    if (line != NULL && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL;            /* StopIteration */
    }
    return line;
}

static PyObject *input_close(PyObject *self, PyObject *unused)
{
    Py_RETURN_NONE;             /* the server owns the stream: closing it is a no-op */
}

static PyMethodDef input_methods[] = {
    { "read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
      "read(size=-1): up to size bytes of the body, fewer only at its end" },
    { "readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
      "readline(size=-1): one line, with its newline" },
    { "readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
      "readlines(hint=-1): the lines that are left" },
    { "readable", tt_py_true, METH_NOARGS, NULL },
    { "seekable", tt_py_false, METH_NOARGS, NULL },
    { "writable", tt_py_false, METH_NOARGS, NULL },
    { "close", input_close, METH_NOARGS, NULL },
    { NULL, NULL, 0, NULL }
};

static void input_dealloc(PyObject *self)
{
    Py_TYPE(self)->tp_free(self);
}

PyTypeObject wsgi_input_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tutti.Input",
    .tp_basicsize = sizeof(wsgi_input),
    .tp_dealloc = input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, streamed",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)input_next,
    .tp_methods = input_methods,
};
