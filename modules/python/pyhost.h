/* The embedded interpreter as wsgi and asgi share it: the `python:`
 * section, starting Python in a worker, the I/O thread's GIL, stdout and
 * stderr into the error log, exceptions into it, importing apps.
 *
 * pyhost.c is compiled into each of the two modules, so each has its own
 * copy of the statics here; the interpreter itself is one per worker. The
 * first module whose init_worker runs starts it, the other finds it
 * running (tt_py_start is the same call for both). */
#ifndef TT_PYHOST_H
#define TT_PYHOST_H

#include "config.h"
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <tutti/tutti.h>

/* the `python:` section */
typedef struct {
    const char   *home;         /* a virtualenv, or NULL */
    const char  **path;         /* prepended to sys.path, in order */
    size_t        npath;
    const char  **env_names;    /* set before the interpreter starts */
    const char  **env_values;
    size_t        nenv;
    const char   *conf_dir;     /* the config file's directory: sys.path when `path` is absent */
} tt_py_conf;

/* node: the `python:` map, or NULL when absent */
int  tt_py_configure(const tt_api *api, const tt_conf_node *node, tt_py_conf *c,
                     tt_errbuf *err);
/* a route needs Python: the config's directory is the default sys.path */
int  tt_py_conf_dir(const tt_api *api, const tt_conf_node *at, tt_py_conf *c, tt_errbuf *err);
/* from the module's load(): libpython's symbols global, for C extensions */
int  tt_py_promote_libpython(const tt_api *api, const char *module);

/* In init_worker: start Python, or attach to the one the other module
 * started. The GIL is held on return (0). */
int  tt_py_start(const tt_api *api, const tt_py_conf *c);
void tt_py_gil_take(void);      /* on the I/O thread */
void tt_py_gil_drop(void);
void tt_py_keep(void);          /* a thread is stuck in an app: do not finalize */
void tt_py_stop(void);          /* atexit handlers, streams flushed; twice is harmless */

/* An app failed: what (printf), then "Type: message", then the traceback,
 * into the error log. Clears the exception. */
void tt_py_log_exception(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A start-up failure: "file:line:col: KIND app 'SPEC': why" (why from fmt,
 * or from the current exception with its traceback first). -1. */
int  tt_py_app_failed(const char *kind, const char *file, unsigned line, unsigned col,
                      const char *spec, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* "module:callable", "module:obj.attr", "module:factory()", imported once
 * per spec; a new reference, or NULL after tt_py_app_failed. */
PyObject *tt_py_load_app(const char *kind, const char *spec, const char *file,
                         unsigned line, unsigned col);

PyObject *tt_py_errors_stream(void);                    /* sys.stderr's log stream */
PyObject *tt_py_true(PyObject *self, PyObject *unused); /* METH_NOARGS answers */
PyObject *tt_py_false(PyObject *self, PyObject *unused);

#endif
