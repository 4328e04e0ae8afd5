/* The PEP 3333 environ of a request. Keys, methods and the common header
 * names are made once per worker; per request the dict starts as a copy of
 * the route's constant keys and gets only what varies. Strings are "native
 * strings": bytes as latin-1, as the PEP says. */
#include "wsgi.h"      /* first: Python.h before the system headers */
#include "spec.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define api wsgi_api

static PyObject *k_method, *k_script_name, *k_path_info, *k_query, *k_uri,
                *k_content_type, *k_content_length, *k_server_name, *k_server_port,
                *k_protocol, *k_remote_addr, *k_remote_port, *k_scheme, *k_input;
static PyObject *v_http10, *v_http11, *v_http, *v_https, *v_empty;

static struct { const char *name; PyObject *str; } methods[] = {
    { "GET", NULL }, { "POST", NULL }, { "HEAD", NULL }, { "PUT", NULL },
    { "DELETE", NULL }, { "PATCH", NULL }, { "OPTIONS", NULL },
};

/* the header names nearly every request has, as their environ keys */
static struct { const char *name; size_t len; PyObject *key; } common[] = {
#define H(n) { n, sizeof(n) - 1, NULL }
    H("Host"), H("User-Agent"), H("Accept"), H("Accept-Encoding"), H("Accept-Language"),
    H("Connection"), H("Cookie"), H("Referer"), H("Cache-Control"), H("Origin"),
    H("Authorization"), H("If-None-Match"), H("If-Modified-Since"), H("X-Forwarded-For"),
    H("X-Forwarded-Proto"), H("X-Requested-With"), H("Upgrade-Insecure-Requests"),
#undef H
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

/* The environ key of a header; NULL (and no error) for a name that gets
 * none (see wsgi_cgi_name) */
static PyObject *header_key(const char *name, size_t len)
{
    char buf[256];
    size_t n = wsgi_cgi_name(name, len, buf, sizeof(buf));
    return n > 0 ? PyUnicode_DecodeLatin1(buf, (Py_ssize_t)n, NULL) : NULL;
}

int wsgi_environ_init(void)
{
    k_method = intern("REQUEST_METHOD");
    k_script_name = intern("SCRIPT_NAME");
    k_path_info = intern("PATH_INFO");
    k_query = intern("QUERY_STRING");
    k_uri = intern("REQUEST_URI");
    k_content_type = intern("CONTENT_TYPE");
    k_content_length = intern("CONTENT_LENGTH");
    k_server_name = intern("SERVER_NAME");
    k_server_port = intern("SERVER_PORT");
    k_protocol = intern("SERVER_PROTOCOL");
    k_remote_addr = intern("REMOTE_ADDR");
    k_remote_port = intern("REMOTE_PORT");
    k_scheme = intern("wsgi.url_scheme");
    k_input = intern("wsgi.input");
    v_http10 = intern("HTTP/1.0");
    v_http11 = intern("HTTP/1.1");
    v_http = intern("http");
    v_https = intern("https");
    v_empty = intern("");
    for (size_t i = 0; i < NELEMS(methods); i++)
        if ((methods[i].str = intern(methods[i].name)) == NULL)
            return -1;
    for (size_t i = 0; i < NELEMS(common); i++) {
        common[i].key = header_key(common[i].name, common[i].len);
        if (common[i].key == NULL)
            return -1;
        PyUnicode_InternInPlace(&common[i].key);
    }
    return PyErr_Occurred() ? -1 : 0;
}

static int set_item(PyObject *d, const char *key, PyObject *v)
{
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

/* What every request of the route shares. */
PyObject *wsgi_environ_base(wsgi_route *rt)
{
    PyObject *d = PyDict_New();
    int workers = api->worker_count();

    if (d == NULL)
        return NULL;
    if (set_item(d, "SCRIPT_NAME", PyUnicode_DecodeLatin1(rt->script_name,
                                                          (Py_ssize_t)rt->script_name_len,
                                                          NULL)) != 0 ||
        set_item(d, "SERVER_SOFTWARE", PyUnicode_FromString("tutti/" PACKAGE_VERSION)) != 0 ||
        set_item(d, "wsgi.version", Py_BuildValue("(ii)", 1, 0)) != 0 ||
        set_item(d, "wsgi.multithread", PyBool_FromLong(rt->threads > 1)) != 0 ||
        set_item(d, "wsgi.multiprocess", PyBool_FromLong(workers > 1)) != 0 ||
        set_item(d, "wsgi.run_once", PyBool_FromLong(0)) != 0 ||
        set_item(d, "wsgi.input_terminated", PyBool_FromLong(1)) != 0 ||
        PyDict_SetItemString(d, "wsgi.errors", tt_py_errors_stream()) != 0 ||
        PyDict_SetItemString(d, "wsgi.file_wrapper", (PyObject *)&wsgi_file_wrapper_type) != 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static int put(PyObject *d, PyObject *key, PyObject *v)
{
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(d, key, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *latin1(const char *p, size_t n)
{
    if (n == 0) {
        Py_INCREF(v_empty);
        return v_empty;
    }
    return PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
}

static PyObject *number(long v)
{
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%ld", v);
    return PyUnicode_FromStringAndSize(buf, n);
}

static PyObject *method_str(const tt_request *r)
{
    for (size_t i = 0; i < NELEMS(methods); i++)
        if (strcmp(r->method, methods[i].name) == 0) {
            Py_INCREF(methods[i].str);
            return methods[i].str;
        }
    return latin1(r->method, r->method_len);
}

/* One header into the dict; a repeated header joins the earlier value
 * (", ", or "; " for cookies, which is how they combine). */
static int add_header(PyObject *d, const tt_header *h)
{
    PyObject *key = NULL;
    int owned = 0;

    if (h->name_len == 12 && strncasecmp(h->name, "Content-Type", 12) == 0) {
        key = k_content_type;
    } else if (h->name_len == 14 && strncasecmp(h->name, "Content-Length", 14) == 0) {
        key = k_content_length;
    } else {
        for (size_t i = 0; i < NELEMS(common); i++)
            if (common[i].len == h->name_len &&
                strncasecmp(common[i].name, h->name, h->name_len) == 0) {
                key = common[i].key;
                break;
            }
        if (key == NULL) {
            key = header_key(h->name, h->name_len);
            if (key == NULL)
                return PyErr_Occurred() ? -1 : 0;
            owned = 1;
        }
    }
    PyObject *v = latin1(h->value, h->value_len);
    PyObject *old = v ? PyDict_GetItemWithError(d, key) : NULL;      /* borrowed */
    if (old != NULL) {
        int cookie = h->name_len == 6 && strncasecmp(h->name, "Cookie", 6) == 0;
        PyObject *joined = PyUnicode_FromFormat("%U%s%U", old, cookie ? "; " : ",", v);
        Py_DECREF(v);
        v = joined;
    }
    int rc = v != NULL && !PyErr_Occurred() ? put(d, key, v) : (Py_XDECREF(v), -1);
    if (owned)
        Py_DECREF(key);
    return rc;
}

/* PATH_INFO is the path below script_name when the request is under it;
 * otherwise the whole path, with an empty SCRIPT_NAME. */
static int add_paths(PyObject *d, const wsgi_route *rt, const tt_request *r)
{
    const char *path = r->path;
    size_t len = r->path_len;
    size_t sn = rt->script_name_len;

    if (sn > 0) {
        if (len >= sn && memcmp(path, rt->script_name, sn) == 0 &&
            (len == sn || path[sn] == '/')) {
            path += sn;
            len -= sn;
        } else if (PyDict_SetItem(d, k_script_name, v_empty) != 0) {
            return -1;
        }
    }
    return put(d, k_path_info, latin1(path, len));
}

PyObject *wsgi_environ_new(wsgi_job *j, PyObject *input)
{
    const tt_request *r = &j->req;
    PyObject *d = PyDict_Copy(j->route->environ);
    if (d == NULL)
        return NULL;

    const char *server = r->host_len > 0 ? r->host
                       : r->server_name && *r->server_name ? r->server_name
                       : r->local_addr ? r->local_addr : "";
    if (put(d, k_method, method_str(r)) != 0 ||
        add_paths(d, j->route, r) != 0 ||
        put(d, k_query, latin1(r->query, r->query_len)) != 0 ||
        put(d, k_uri, latin1(r->target, r->target_len)) != 0 ||
        PyDict_SetItem(d, k_protocol, r->version >= 11 ? v_http11 : v_http10) != 0 ||
        put(d, k_server_name, latin1(server, r->host_len > 0 ? r->host_len : strlen(server))) != 0 ||
        put(d, k_server_port, number(r->local_port)) != 0 ||
        put(d, k_remote_addr, latin1(r->remote_addr ? r->remote_addr : "",
                                     r->remote_addr ? strlen(r->remote_addr) : 0)) != 0 ||
        put(d, k_remote_port, number(r->remote_port)) != 0 ||
        PyDict_SetItem(d, k_scheme, r->tls ? v_https : v_http) != 0 ||
        PyDict_SetItem(d, k_input, input) != 0)
        goto fail;
    for (size_t i = 0; i < r->nheaders; i++)
        if (add_header(d, &r->headers[i]) != 0)
            goto fail;
    return d;

fail:
    Py_DECREF(d);
    return NULL;
}
