/* asgi — scope dicts, built on the loop thread from the request's copy. */
#include "asgi.h"
#include <string.h>
#include <strings.h>

static PyObject *asgi_info;     /* {"version": "3.0", "spec_version": "2.4"} */
static PyObject *s_http, *s_websocket, *s_http10, *s_http11;

int asgi_scope_init(void)
{
    asgi_info = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.4");
    s_http = PyUnicode_InternFromString("http");
    s_websocket = PyUnicode_InternFromString("websocket");
    s_http10 = PyUnicode_InternFromString("1.0");
    s_http11 = PyUnicode_InternFromString("1.1");
    return asgi_info && s_http && s_websocket && s_http10 && s_http11
           ? 0 : -1;
}

static int put(PyObject *d, const char *key, PyObject *v)
{
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *headers_list(const tt_request *r)
{
    PyObject *list = PyList_New((Py_ssize_t)r->nheaders);
    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const tt_header *h = &r->headers[i];
        PyObject *name = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)h->name_len);
        if (name == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        char *p = PyBytes_AS_STRING(name);
        for (size_t k = 0; k < h->name_len; k++) {
            char ch = h->name[k];
            p[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        PyObject *pair = Py_BuildValue("(Ny#)", name, h->value, (Py_ssize_t)h->value_len);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/* Sec-WebSocket-Protocol values, split at commas, in order. */
static PyObject *subprotocols(const tt_request *r)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < r->nheaders; i++) {
        const tt_header *h = &r->headers[i];
        if (h->name_len != 22 || strncasecmp(h->name, "Sec-WebSocket-Protocol", 22) != 0)
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            const char *s = p;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            const char *t = e;
            while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (t > s) {
                PyObject *v = PyUnicode_DecodeLatin1(s, t - s, NULL);
                if (v == NULL || PyList_Append(list, v) != 0) {
                    Py_XDECREF(v);
                    Py_CLEAR(list);
                    break;
                }
                Py_DECREF(v);
            }
            p = comma ? comma + 1 : end;
        }
    }
    return list;
}

PyObject *asgi_scope_new(asgi_req *q)
{
    const tt_request *r = &q->req;
    const asgi_route *rt = q->route;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;

    /* path is what follows root_path, as WSGI's PATH_INFO follows
     * SCRIPT_NAME (Starlette of Debian 12 routes on it); raw_path is the
     * whole path as sent */
    const char *path = r->path;
    size_t plen = r->path_len;
    if (rt->root_path_len > 0 && plen >= rt->root_path_len &&
        memcmp(path, rt->root_path, rt->root_path_len) == 0) {
        path += rt->root_path_len;
        plen -= rt->root_path_len;
    }
    int ws = q->is_ws;
    const char *scheme = ws ? (r->tls ? "wss" : "ws") : (r->tls ? "https" : "http");

    Py_INCREF(ws ? s_websocket : s_http);
    Py_INCREF(asgi_info);
    Py_INCREF(r->version >= 11 ? s_http11 : s_http10);
    if (put(d, "type", ws ? s_websocket : s_http) != 0 ||
        put(d, "asgi", asgi_info) != 0 ||
        put(d, "http_version", r->version >= 11 ? s_http11 : s_http10) != 0 ||
        put(d, "scheme", PyUnicode_FromString(scheme)) != 0 ||
        put(d, "path", PyUnicode_DecodeUTF8(plen ? path : "/", plen ? (Py_ssize_t)plen : 1,
                                            "replace")) != 0 ||
        put(d, "raw_path", PyBytes_FromStringAndSize(r->raw_path, (Py_ssize_t)r->raw_path_len)) != 0 ||
        put(d, "query_string", PyBytes_FromStringAndSize(r->query, (Py_ssize_t)r->query_len)) != 0 ||
        put(d, "root_path", PyUnicode_DecodeUTF8(rt->root_path, (Py_ssize_t)rt->root_path_len,
                                                 "replace")) != 0 ||
        put(d, "headers", headers_list(r)) != 0 ||
        put(d, "client", Py_BuildValue("(si)", r->remote_addr, r->remote_port)) != 0 ||
        put(d, "server", Py_BuildValue("(si)", r->local_addr, r->local_port)) != 0)
        goto fail;
    if (ws) {
        if (put(d, "subprotocols", subprotocols(r)) != 0)
            goto fail;
        /* a dict of its own per scope: an app may change it */
        if (put(d, "extensions", Py_BuildValue("{s:{}}", "websocket.http.response")) != 0)
            goto fail;
    } else {
        if (put(d, "method", PyUnicode_FromString(r->method)) != 0 ||
            put(d, "extensions", Py_BuildValue("{s:{}}", "http.response.pathsend")) != 0)
            goto fail;
    }
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}
