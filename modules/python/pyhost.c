/* The worker's interpreter, shared by wsgi and asgi (each module has its
 * own copy of this file, see pyhost.h): started after fork with the daemon
 * keeping its signals, sys.path from the `python:` section, stdout and
 * stderr into the error log, and the apps imported once. */
#include "pyhost.h"     /* first: Python.h before the system headers */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const tt_api *api;

static PyThreadState *main_ts;      /* the I/O thread's, while it lacks the GIL */
static PyObject *apps;              /* "module:callable" -> the app, one import per spec */
static PyObject *format_exception;  /* traceback.format_exception */
static PyObject *stderr_stream;
static PyObject *stdout_stream;
static int finalize_ok = 1;

void tt_py_gil_take(void)
{
    /* the other module's copy may have started Python and saved the I/O
     * thread's state: it is this thread's, wherever it was saved */
    if (main_ts == NULL)
        main_ts = PyGILState_GetThisThreadState();
    PyEval_RestoreThread(main_ts);
}

void tt_py_gil_drop(void)
{
    main_ts = PyEval_SaveThread();
}

PyObject *tt_py_errors_stream(void)
{
    return stderr_stream;
}

/* ---------------------------------------------------------------- stdout, stderr -> the error log */

/* A text stream that logs one line per entry at a level: print() and
 * tracebacks land in the error log with a time and the worker's pid,
 * instead of on a terminal nobody reads. Each thread has its own partial
 * line, so two requests printing at once never splice their lines. */
#define LOG_LINE_MAX 8192       /* a longer "line" is logged in pieces */
#define LOG_THREADS  16         /* partial lines kept apart; more share the last */

typedef struct {
    unsigned long thread;       /* PyThread_get_thread_ident(), 0: free */
    char  *buf;
    size_t len, cap;
} log_line;

typedef struct {
    PyObject_HEAD
    int      level;
    log_line lines[LOG_THREADS];
} log_stream;

static PyTypeObject log_stream_type;

static void stream_emit(log_stream *s, log_line *l)
{
    api->log(s->level, "%.*s", (int)l->len, l->buf);
    l->len = 0;
}

/* this thread's partial line (the GIL makes this safe) */
static log_line *line_of(log_stream *s)
{
    unsigned long me = PyThread_get_thread_ident();
    log_line *empty = NULL;
    for (int i = 0; i < LOG_THREADS; i++) {
        if (s->lines[i].thread == me)
            return &s->lines[i];
        if (empty == NULL && s->lines[i].len == 0)
            empty = &s->lines[i];
    }
    if (empty == NULL)
        empty = &s->lines[LOG_THREADS - 1];
    else
        empty->thread = me;
    return empty;
}

static int stream_add(log_stream *s, const char *p, size_t n)
{
    log_line *l = line_of(s);
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (l->len + take > LOG_LINE_MAX)
            take = LOG_LINE_MAX - l->len;
        if (l->len + take > l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 256;
            while (cap < l->len + take)
                cap *= 2;
            char *b = realloc(l->buf, cap);
            if (b == NULL)
                return -1;
            l->buf = b;
            l->cap = cap;
        }
        memcpy(l->buf + l->len, p, take);
        l->len += take;
        p += take;
        n -= take;
        if (nl != NULL && p == nl) {
            p++;
            n--;
            stream_emit(s, l);
        } else if (l->len == LOG_LINE_MAX) {
            stream_emit(s, l);
        }
    }
    return 0;
}

static PyObject *stream_write(log_stream *s, PyObject *arg)
{
    Py_ssize_t n;
    const char *p;

    if (PyUnicode_Check(arg)) {
        p = PyUnicode_AsUTF8AndSize(arg, &n);
        if (p == NULL)
            return NULL;
        if (stream_add(s, p, (size_t)n) != 0)
            return PyErr_NoMemory();
        return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
    }
    PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                 Py_TYPE(arg)->tp_name);
    return NULL;
}

static PyObject *stream_writelines(log_stream *s, PyObject *lines)
{
    PyObject *it = PyObject_GetIter(lines), *line;
    if (it == NULL)
        return NULL;
    while ((line = PyIter_Next(it)) != NULL) {
        PyObject *rc = stream_write(s, line);
        Py_DECREF(line);
        if (rc == NULL) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(rc);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* An entry is a line: flush() keeps a partial line for its newline (a
 * wrapper such as colorama's, which Django installs, flushes after every
 * piece it writes). What is left is logged at exit. */
static PyObject *stream_flush(log_stream *s, PyObject *unused)
{
    Py_RETURN_NONE;
}

/* One of ours, or the other module's copy of it: each copy has its own
 * type object, so the name and the size tell, not the pointer. */
static int is_log_stream(PyObject *o)
{
    return o != NULL && strcmp(Py_TYPE(o)->tp_name, log_stream_type.tp_name) == 0 &&
           Py_TYPE(o)->tp_basicsize == (Py_ssize_t)sizeof(log_stream);
}

static void stream_drain(PyObject *o)
{
    log_stream *s = (log_stream *)o;
    if (!is_log_stream(o))
        return;
    for (int i = 0; i < LOG_THREADS; i++)
        if (s->lines[i].len > 0)
            stream_emit(s, &s->lines[i]);
}

/* METH_NOARGS answers for the stream methods (readable(), isatty(), ...)
 * of tutti's file-like objects */
PyObject *tt_py_false(PyObject *self, PyObject *unused)
{
    Py_RETURN_FALSE;
}

PyObject *tt_py_true(PyObject *self, PyObject *unused)
{
    Py_RETURN_TRUE;
}

static void stream_dealloc(log_stream *s)
{
    for (int i = 0; i < LOG_THREADS; i++) {
        if (s->lines[i].len > 0)
            stream_emit(s, &s->lines[i]);
        free(s->lines[i].buf);
    }
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *stream_encoding(PyObject *s, void *unused)
{
    return PyUnicode_FromString("utf-8");
}

static PyMethodDef stream_methods[] = {
    { "write", (PyCFunction)stream_write, METH_O, "log text, one entry per line" },
    { "writelines", (PyCFunction)stream_writelines, METH_O, NULL },
    { "flush", (PyCFunction)stream_flush, METH_NOARGS, NULL },
    { "isatty", tt_py_false, METH_NOARGS, NULL },
    { "readable", tt_py_false, METH_NOARGS, NULL },
    { "seekable", tt_py_false, METH_NOARGS, NULL },
    { "writable", tt_py_true, METH_NOARGS, NULL },
    { NULL, NULL, 0, NULL }
};

static PyGetSetDef stream_getset[] = {
    { "encoding", stream_encoding, NULL, NULL, NULL },
    { NULL, NULL, NULL, NULL, NULL }
};

static PyTypeObject log_stream_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tutti.ErrorLog",
    .tp_basicsize = sizeof(log_stream),
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a text stream into tutti's error log",
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
};

static PyObject *stream_new(int level)
{
    log_stream *s = PyObject_New(log_stream, &log_stream_type);
    if (s == NULL)
        return NULL;
    s->level = level;
    memset(s->lines, 0, sizeof(s->lines));
    return (PyObject *)s;
}

/* ---------------------------------------------------------------- exceptions */

/* "ExceptionType: message" of the current exception, without clearing it. */
static void exception_summary(char *out, size_t size)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    const char *name = type ? ((PyTypeObject *)type)->tp_name : "Exception";
    const char *dot = strrchr(name, '.');
    PyObject *msg = value ? PyObject_Str(value) : NULL;
    const char *m = msg ? PyUnicode_AsUTF8(msg) : NULL;
    if (m != NULL && *m)
        snprintf(out, size, "%s: %s", dot ? dot + 1 : name, m);
    else
        snprintf(out, size, "%s", dot ? dot + 1 : name);
    Py_XDECREF(msg);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

/* The traceback of the current exception, one error-log entry per line;
 * clears the exception. */
static void log_traceback(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *lines = NULL;
    if (format_exception != NULL && type != NULL)
        lines = PyObject_CallFunctionObjArgs(format_exception, type,
                                             value ? value : Py_None,
                                             tb ? tb : Py_None, NULL);
    if (lines != NULL) {
        PyObject *sep = PyUnicode_FromString("");
        PyObject *text = sep ? PyUnicode_Join(sep, lines) : NULL;
        Py_XDECREF(sep);
        const char *t = text ? PyUnicode_AsUTF8(text) : NULL;
        while (t != NULL && *t) {
            const char *nl = strchr(t, '\n');
            size_t n = nl ? (size_t)(nl - t) : strlen(t);
            if (n > 0)
                api->log(TT_LOG_ERROR, "%.*s", (int)n, t);
            t += n + (nl != NULL);
        }
        Py_XDECREF(text);
        Py_DECREF(lines);
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* An app failed: what, then the traceback. Clears the exception. */
void tt_py_log_exception(const char *fmt, ...)
{
    char what[512], summary[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    exception_summary(summary, sizeof(summary));
    api->log(TT_LOG_ERROR, "%s: %s", what, summary);
    log_traceback();
}

/* Start-up failures end with the one line the master shows: the traceback
 * first, then "file:line:col: wsgi app 'x': Error: message". */
int tt_py_app_failed(const char *kind, const char *file, unsigned line, unsigned col,
                     const char *spec, const char *fmt, ...)
{
    char why[512];
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        PyErr_Clear();
    } else {
        exception_summary(why, sizeof(why));
        log_traceback();
    }
    api->log(TT_LOG_ERROR, "%s:%u:%u: %s app '%s': %s", file, line, col, kind, spec, why);
    return -1;
}

/* ---------------------------------------------------------------- the python: section */

static int conf_dir(const tt_conf_node *at, const char **out, tt_errbuf *err)
{
    /* "." resolved the way every relative path of the config is */
    tt_conf_node dot = { .type = TT_CONF_SCALAR, .file = at->file, .line = at->line,
                         .col = at->col, .value = ".", .len = 1 };
    return api->conf_path(&dot, out, err);
}

static int conf_path_list(const tt_conf_node *n, tt_py_conf *m, tt_errbuf *err)
{
    if (n->type == TT_CONF_SCALAR) {
        m->path = api->conf_alloc(sizeof(char *));
        m->npath = 1;
        return m->path == NULL ? -1 : api->conf_path(n, &m->path[0], err);
    }
    if (n->type != TT_CONF_SEQ) {
        api->conf_error(err, n, "'path' is a list of directories, such as path: [./apps]");
        return -1;
    }
    m->path = api->conf_alloc((n->n + 1) * sizeof(char *));
    if (m->path == NULL)
        return -1;
    for (size_t i = 0; i < n->n; i++)
        if (api->conf_path(n->items[i], &m->path[i], err) != 0)
            return -1;
    m->npath = n->n;
    return 0;
}

static int conf_env(const tt_conf_node *n, tt_py_conf *m, tt_errbuf *err)
{
    if (n->type != TT_CONF_MAP) {
        api->conf_error(err, n, "'env' is a map of variables, such as "
                        "env: {DJANGO_SETTINGS_MODULE: mysite.settings}");
        return -1;
    }
    m->env_names = api->conf_alloc((n->n + 1) * sizeof(char *));
    m->env_values = api->conf_alloc((n->n + 1) * sizeof(char *));
    if (m->env_names == NULL || m->env_values == NULL)
        return -1;
    for (size_t i = 0; i < n->n; i++) {
        const tt_conf_node *k = n->keys[i], *v = n->items[i];
        if (k->len == 0 || strchr(k->value, '=') != NULL) {
            api->conf_error(err, k, "'%s' is not an environment variable name", k->value);
            return -1;
        }
        if (v->type != TT_CONF_SCALAR) {
            api->conf_error(err, v, "the value of '%s' is a string, such as %s: value",
                            k->value, k->value);
            return -1;
        }
        m->env_names[i] = k->value;
        m->env_values[i] = v->value;
    }
    m->nenv = n->n;
    return 0;
}

int tt_py_configure(const tt_api *a, const tt_conf_node *node, tt_py_conf *m, tt_errbuf *err)
{
    static const char *const keys[] = { "home", "path", "env", NULL };
    const tt_conf_node *v;

    api = a;
    if (node == NULL)
        return 0;
    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'python' is a map, such as python: {path: [./apps]}");
        return -1;
    }
    if (api->conf_check_keys(node, "python", keys, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "home")) != NULL) {
        struct stat st;
        if (api->conf_path(v, &m->home, err) != 0)
            return -1;
        if (stat(m->home, &st) != 0 || !S_ISDIR(st.st_mode)) {
            api->conf_error(err, v, "python home '%s' is not a directory; give a virtualenv's "
                            "directory, such as home: ./venv", m->home);
            return -1;
        }
        /* a venv of another Python has lib/pythonX.Y of its own version */
        char site[4096];
        snprintf(site, sizeof(site), "%s/lib/python%s/site-packages", m->home,
                 TT_PYTHON_VERSION);
        if (stat(site, &st) != 0 || !S_ISDIR(st.st_mode)) {
            api->conf_error(err, v, "python home '%s' has no lib/python%s/site-packages: tutti "
                            "runs Python %s, and a virtualenv works only with the Python that "
                            "made it; make one with /usr/bin/python%s -m venv "
                            "--system-site-packages %s", m->home, TT_PYTHON_VERSION,
                            TT_PYTHON_VERSION, TT_PYTHON_VERSION, m->home);
            return -1;
        }
    }
    if ((v = api->conf_get(node, "path")) != NULL && conf_path_list(v, m, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "env")) != NULL && conf_env(v, m, err) != 0)
        return -1;
    return conf_dir(node, &m->conf_dir, err);
}

/* The config's directory, the default sys.path entry, when a route is
 * configured and `python:` was absent. */
int tt_py_conf_dir(const tt_api *a, const tt_conf_node *at, tt_py_conf *c, tt_errbuf *err)
{
    api = a;
    if (c->conf_dir != NULL)
        return 0;
    return conf_dir(at, &c->conf_dir, err);
}

/* The C extensions Python imports (_json, _ssl, uvloop, ...) are not
 * linked against libpython and expect its symbols to be global (DESIGN.md,
 * pitfalls). Promote libpython alone to RTLD_GLOBAL: promoting the module
 * would make its tt_module_entry global too, where it clashes with every
 * other module's. */
int tt_py_promote_libpython(const tt_api *a, const char *module)
{
    Dl_info info;

    api = a;
    if (dladdr((void *)Py_Initialize, &info) == 0 || info.dli_fname == NULL ||
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL) == NULL) {
        const char *why = dlerror();
        api->log(TT_LOG_ERROR, "%s: cannot make libpython's symbols global: %s", module,
                 why ? why : "not found");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- start, stop */

static int sys_path_insert(PyObject *path, Py_ssize_t at, const char *dir)
{
    PyObject *s = PyUnicode_DecodeFSDefault(dir);
    if (s == NULL)
        return -1;
    int rc = PyList_Insert(path, at, s);
    Py_DECREF(s);
    return rc;
}

/* sys.path: python.path (or the config's directory), then the
 * virtualenv's site-packages with its .pth files, then the rest. */
static int set_paths(const tt_py_conf *m)
{
    PyObject *path = PySys_GetObject("path");      /* borrowed */
    Py_ssize_t at = 0;

    if (path == NULL || !PyList_Check(path))
        return -1;
    if (m->npath == 0 && m->conf_dir != NULL) {
        if (sys_path_insert(path, at++, m->conf_dir) != 0)
            return -1;
    }
    for (size_t i = 0; i < m->npath; i++)
        if (sys_path_insert(path, at++, m->path[i]) != 0)
            return -1;
    if (m->home == NULL)
        return 0;

    char site[4096];
    snprintf(site, sizeof(site), "%s/lib/python%s/site-packages", m->home, TT_PYTHON_VERSION);
    if (sys_path_insert(path, at, site) != 0)
        return -1;
    PyObject *mod = PyImport_ImportModule("site");
    if (mod == NULL)
        return -1;
    PyObject *rc = PyObject_CallMethod(mod, "addsitedir", "s", site);
    Py_DECREF(mod);
    Py_XDECREF(rc);
    return rc == NULL ? -1 : 0;
}

static int set_streams(void)
{
    PyObject *out = stream_new(TT_LOG_INFO);
    PyObject *err = stream_new(TT_LOG_WARN);
    int rc = -1;
    if (out != NULL && err != NULL &&
        PySys_SetObject("stdout", out) == 0 && PySys_SetObject("stderr", err) == 0 &&
        PySys_SetObject("__stdout__", out) == 0 && PySys_SetObject("__stderr__", err) == 0) {
        stderr_stream = err;
        Py_INCREF(err);
        stdout_stream = out;
        Py_INCREF(out);
        rc = 0;
    }
    Py_XDECREF(out);
    Py_XDECREF(err);
    return rc;
}

/* This copy's handles on what the interpreter already has. */
static int attach(void)
{
    PyObject *tb = PyImport_ImportModule("traceback");
    if (tb != NULL) {
        format_exception = PyObject_GetAttrString(tb, "format_exception");
        Py_DECREF(tb);
    }
    /* __stdout__, not stdout: an app the other module imported may have
     * wrapped sys.stdout, and stream_drain must find the log stream */
    stdout_stream = PySys_GetObject("__stdout__");
    stderr_stream = PySys_GetObject("__stderr__");
    Py_XINCREF(stdout_stream);
    Py_XINCREF(stderr_stream);
    if (format_exception == NULL || (apps = PyDict_New()) == NULL) {
        PyErr_Clear();
        api->log(TT_LOG_ERROR, "cannot set up Python");
        return -1;
    }
    return 0;
}

int tt_py_start(const tt_api *a, const tt_py_conf *m)
{
    api = a;
    if (Py_IsInitialized()) {
        /* the other Python module of this worker started it */
        tt_py_gil_take();
        return attach();
    }
    /* before Python starts, so os.environ has them */
    if (m->home != NULL)
        setenv("VIRTUAL_ENV", m->home, 1);
    for (size_t i = 0; i < m->nenv; i++)
        setenv(m->env_names[i], m->env_values[i], 1);

#ifdef TT_SANITIZERS
    /* every object from malloc, none from pymalloc's mmap'ed arenas, so
     * LeakSanitizer sees what refers to what */
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    PyStatus pst = Py_PreInitialize(&pre);
    if (PyStatus_Exception(pst)) {
        api->log(TT_LOG_ERROR, "cannot start Python: %s", pst.err_msg ? pst.err_msg : "?");
        return -1;
    }
#endif
    PyConfig c;
    PyConfig_InitPythonConfig(&c);
    c.install_signal_handlers = 0;      /* signals stay the daemon's */
    c.parse_argv = 0;
    /* the prefix comes from where this libpython is installed, never from
     * whatever `python3` comes first on PATH */
    PyStatus st = PyConfig_SetBytesString(&c, &c.program_name,
                                          TT_PYTHON_PREFIX "/bin/python" TT_PYTHON_VERSION);
    char *argv[] = { "tutti", NULL };
    if (!PyStatus_Exception(st))
        st = PyConfig_SetBytesArgv(&c, 1, argv);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&c);
    PyConfig_Clear(&c);
    if (PyStatus_Exception(st)) {
        api->log(TT_LOG_ERROR, "cannot start Python: %s",
                 st.err_msg ? st.err_msg : "unknown error");
        return -1;
    }
    main_ts = NULL;

    PyObject *tb = PyImport_ImportModule("traceback");
    if (tb != NULL) {
        format_exception = PyObject_GetAttrString(tb, "format_exception");
        Py_DECREF(tb);
    }
    if (format_exception == NULL || PyType_Ready(&log_stream_type) != 0 ||
        set_streams() != 0 || (apps = PyDict_New()) == NULL) {
        char why[512];
        exception_summary(why, sizeof(why));
        PyErr_Clear();
        api->log(TT_LOG_ERROR, "cannot set up Python: %s", why);
        return -1;
    }
    if (set_paths(m) != 0) {
        char why[512];
        exception_summary(why, sizeof(why));
        log_traceback();
        api->log(TT_LOG_ERROR, "python: cannot set sys.path: %s", why);
        return -1;
    }
    return 0;
}

/* A thread is still inside the app at exit: leave Python alone. */
void tt_py_keep(void)
{
    finalize_ok = 0;
    /* the other module has its own copy of this file: tell it through the
     * process, so its tt_py_stop does not wait for a GIL a stuck thread
     * may hold */
    setenv("TUTTI_PYTHON_STUCK", "1", 1);
}

static void flush_streams(void)
{
    PyObject *out = PySys_GetObject("stdout"), *err = PySys_GetObject("stderr");
    if (out != NULL)
        Py_XDECREF(PyObject_CallMethod(out, "flush", NULL));
    if (err != NULL)
        Py_XDECREF(PyObject_CallMethod(err, "flush", NULL));
    PyErr_Clear();
    stream_drain(stdout_stream);
    stream_drain(stderr_stream);
}

/* The worker is about to exit: the app's atexit handlers run (logging
 * flushes its handlers there), the streams are flushed, and the process
 * ends without Py_FinalizeEx, which would wait for any non-daemon thread
 * the app started and tear down objects the exit frees anyway. */
void tt_py_stop(void)
{
    if (!Py_IsInitialized() || !finalize_ok || getenv("TUTTI_PYTHON_STUCK") != NULL)
        return;
    tt_py_gil_take();
    PyObject *mod = PyImport_ImportModule("atexit");
    PyObject *rc = mod ? PyObject_CallMethod(mod, "_run_exitfuncs", NULL) : NULL;
    if (rc == NULL)
        tt_py_log_exception("python: an atexit handler failed");
    Py_XDECREF(rc);
    Py_XDECREF(mod);
    flush_streams();
    tt_py_gil_drop();
}

/* ---------------------------------------------------------------- the app */

static PyObject *resolve(const char *spec)
{
    const char *colon = strchr(spec, ':');
    char mod[512];
    size_t mlen = (size_t)(colon - spec);
    if (mlen >= sizeof(mod)) {
        PyErr_SetString(PyExc_ValueError, "module name too long");
        return NULL;
    }
    memcpy(mod, spec, mlen);
    mod[mlen] = '\0';

    PyObject *obj = PyImport_ImportModule(mod);
    const char *p = colon + 1;
    while (obj != NULL && *p && *p != '(') {
        const char *end = p + strcspn(p, ".(");
        PyObject *name = PyUnicode_FromStringAndSize(p, end - p);
        PyObject *next = name ? PyObject_GetAttr(obj, name) : NULL;
        Py_XDECREF(name);
        Py_DECREF(obj);
        obj = next;
        p = *end == '.' ? end + 1 : end;
    }
    if (obj != NULL && *p == '(') {         /* module:factory() */
        PyObject *made = PyObject_CallNoArgs(obj);
        Py_DECREF(obj);
        obj = made;
    }
    return obj;
}

PyObject *tt_py_load_app(const char *kind, const char *spec, const char *file,
                         unsigned line, unsigned col)
{
    PyObject *app = PyDict_GetItemString(apps, spec);      /* borrowed */
    if (app != NULL) {
        Py_INCREF(app);
        return app;
    }
    app = resolve(spec);
    if (app == NULL) {
        tt_py_app_failed(kind, file, line, col, spec, NULL);
        return NULL;
    }
    if (!PyCallable_Check(app)) {
        tt_py_app_failed(kind, file, line, col, spec, "it is a %s, not a callable; name the "
                         "%s callable (module:callable)", Py_TYPE(app)->tp_name,
                         strcmp(kind, "asgi") == 0 ? "ASGI" : "WSGI");
        Py_DECREF(app);
        return NULL;
    }
    if (PyDict_SetItemString(apps, spec, app) != 0) {
        Py_DECREF(app);
        tt_py_app_failed(kind, file, line, col, spec, NULL);
        return NULL;
    }
    return app;
}
