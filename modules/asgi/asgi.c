/* asgi — the module: the `asgi:` route key, the worker's loop, and the
 * I/O thread's side of every request: it copies the request for the loop,
 * streams the body to it with backpressure, and applies what the app sends
 * (response head and body, files, WebSocket accept/send/close). */
#include "asgi.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

const tt_api *asgi_api;
const tt_ws_api *asgi_ws;
static asgi_main *running;

#define api asgi_api

static const char *const asgi_needs[] = { "websocket", NULL };

static int asgi_load(const tt_api *a)
{
    asgi_api = a;
    return tt_py_promote_libpython(a, "asgi");
}

/* ---------------------------------------------------------------- configuration */

static int asgi_configure_main(const tt_conf_node *node, void **main_conf, tt_errbuf *err)
{
    asgi_main *m = api->conf_alloc(sizeof(*m));
    if (m == NULL)
        return -1;
    *main_conf = m;
    return tt_py_configure(api, node, &m->py, err);
}

static int conf_app(const tt_conf_node *v, asgi_route *rt, tt_errbuf *err)
{
    if (api->conf_string(v, &rt->app_spec, err) != 0)
        return -1;
    const char *colon = strchr(rt->app_spec, ':');
    if (colon == NULL || colon == rt->app_spec || colon[1] == '\0') {
        api->conf_error(err, v, "asgi app '%s': expected module:callable, such as main:app",
                        rt->app_spec);
        return -1;
    }
    rt->file = v->file;
    rt->line = v->line;
    rt->col = v->col;
    return 0;
}

static int asgi_configure_route(const tt_conf_node *node, void *main_conf, void **route_conf,
                                tt_errbuf *err)
{
    static const char *const keys[] = { "app", "lifespan", "root_path", NULL };
    asgi_main *m = main_conf;
    asgi_route *rt = api->conf_alloc(sizeof(*rt));
    if (rt == NULL)
        return -1;
    rt->main = m;
    rt->root_path = "";
    if (node->type == TT_CONF_SCALAR) {             /* asgi: main:app */
        if (conf_app(node, rt, err) != 0)
            return -1;
    } else if (node->type == TT_CONF_MAP) {
        if (api->conf_check_keys(node, "asgi", keys, err) != 0)
            return -1;
        const tt_conf_node *v = api->conf_get(node, "app");
        if (v == NULL) {
            api->conf_error(err, node, "'asgi' needs 'app', such as app: main:app");
            return -1;
        }
        if (conf_app(v, rt, err) != 0)
            return -1;
        if ((v = api->conf_get(node, "lifespan")) != NULL) {
            const char *s;
            if (api->conf_string(v, &s, err) != 0)
                return -1;
            if (strcmp(s, "auto") == 0)
                rt->lifespan = ASGI_LIFESPAN_AUTO;
            else if (strcmp(s, "on") == 0)
                rt->lifespan = ASGI_LIFESPAN_ON;
            else if (strcmp(s, "off") == 0)
                rt->lifespan = ASGI_LIFESPAN_OFF;
            else {
                api->conf_error(err, v, "'lifespan: %s': expected on, off or auto", s);
                return -1;
            }
        }
        if ((v = api->conf_get(node, "root_path")) != NULL) {
            if (api->conf_string(v, &rt->root_path, err) != 0)
                return -1;
            size_t n = strlen(rt->root_path);
            if (n > 0 && rt->root_path[0] != '/') {
                api->conf_error(err, v, "'root_path: %s': give a path such as /api", rt->root_path);
                return -1;
            }
            while (n > 0 && rt->root_path[n - 1] == '/')
                n--;
            rt->root_path_len = n;
        }
    } else {
        api->conf_error(err, node, "'asgi' is an app (main:app) or a map, such as "
                        "asgi: {app: main:app, lifespan: auto}");
        return -1;
    }
    if (tt_py_conf_dir(api, node, &m->py, err) != 0)
        return -1;
    rt->next = m->routes;
    m->routes = rt;
    *route_conf = rt;
    return 0;
}

/* ---------------------------------------------------------------- the worker */

static int asgi_init_worker(void *main_conf)
{
    asgi_main *m = main_conf;
    running = m;
    if (m->routes == NULL)
        return 0;               /* loaded, but no route runs an ASGI app */
    asgi_ws = api->module_exports("websocket");
    if (asgi_ws == NULL || asgi_ws->version != TT_WS_API_VERSION) {
        api->log(TT_LOG_ERROR, "asgi: the websocket module (API %d) is not loaded",
                 TT_WS_API_VERSION);
        return -1;
    }
    if (tt_py_start(api, &m->py) != 0)
        return -1;
    int rc = 0;
    /* routes were prepended: import in the config's order */
    asgi_route *order[256];
    size_t n = 0;
    for (asgi_route *rt = m->routes; rt != NULL && n < 256; rt = rt->next)
        order[n++] = rt;
    while (rc == 0 && n > 0) {
        asgi_route *rt = order[--n];
        rt->app = tt_py_load_app("asgi", rt->app_spec, rt->file, rt->line, rt->col);
        if (rt->app == NULL)
            rc = -1;
    }
    if (rc == 0)
        rc = asgi_bridge_start(m);
    tt_py_gil_drop();
    return rc;
}

static void asgi_exit_worker(void *main_conf)
{
    asgi_main *m = main_conf;
    if (m->routes == NULL || !Py_IsInitialized())
        return;
    asgi_bridge_stop();
    tt_py_stop();
}

/* ---------------------------------------------------------------- a request */

static size_t str_room(const char *s, size_t n)
{
    return s != NULL ? n + 1 : 0;
}

static const char *str_put(char **at, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *p = *at;
    memcpy(p, s, n);
    p[n] = '\0';
    *at += n + 1;
    return p;
}

/* The loop thread reads the request after the I/O thread may have freed
 * it: it gets a copy, strings and headers in one block. */
static int snapshot(asgi_req *q, const tt_request *r)
{
    size_t need = r->nheaders * sizeof(tt_header);
    need += str_room(r->method, r->method_len) + str_room(r->target, r->target_len) +
            str_room(r->raw_path, r->raw_path_len) + str_room(r->path, r->path_len) +
            str_room(r->query, r->query_len) + str_room(r->host, r->host_len) +
            str_room(r->remote_addr, strlen(r->remote_addr)) +
            str_room(r->local_addr, strlen(r->local_addr));
    for (size_t i = 0; i < r->nheaders; i++)
        need += r->headers[i].name_len + r->headers[i].value_len + 2;
    q->copy = malloc(need ? need : 1);
    if (q->copy == NULL)
        return -1;
    q->req = *r;
    q->req.headers = (tt_header *)q->copy;
    char *at = q->copy + r->nheaders * sizeof(tt_header);
    q->req.method = str_put(&at, r->method, r->method_len);
    q->req.target = str_put(&at, r->target, r->target_len);
    q->req.raw_path = str_put(&at, r->raw_path, r->raw_path_len);
    q->req.path = str_put(&at, r->path, r->path_len);
    q->req.query = str_put(&at, r->query, r->query_len);
    q->req.host = str_put(&at, r->host, r->host_len);
    q->req.remote_addr = str_put(&at, r->remote_addr, strlen(r->remote_addr));
    q->req.local_addr = str_put(&at, r->local_addr, strlen(r->local_addr));
    for (size_t i = 0; i < r->nheaders; i++) {
        tt_header *h = &q->req.headers[i];
        *h = r->headers[i];
        h->name = str_put(&at, r->headers[i].name, r->headers[i].name_len);
        h->value = str_put(&at, r->headers[i].value, r->headers[i].value_len);
    }
    return 0;
}

static void req_free(asgi_req *q)
{
    free(q->head);              /* a head that never went out (a failed pathsend) */
    free(q->head_mem);
    free(q->copy);
    free(q);
}

/* the app's task ended (M_DONE) */
void asgi_req_release(asgi_req *q)
{
    q->py_done = 1;
    if (q->io_done)
        req_free(q);
}

static void req_closed(tt_request *r, void *arg)
{
    asgi_req *q = arg;
    q->r = NULL;
    q->ws = NULL;
    q->io_done = 1;
    if (q->py_done) {
        req_free(q);
        return;
    }
    asgi_event(ASGI_EV_GONE, q, NULL, 0, 0);
}

static void body_in(tt_request *r, const char *data, size_t len, int status, void *arg)
{
    asgi_req *q = arg;
    if (status == TT_BODY_ERROR)
        return;                 /* the request ends: req_closed tells the app */
    asgi_event(ASGI_EV_BODY, q, data, len, status == TT_BODY_DATA);
    q->unacked += len;
    if (status == TT_BODY_DATA && q->unacked > ASGI_BODY_HIGH && !q->paused) {
        q->paused = 1;          /* the app is behind: stop reading the client */
        api->pause_body(r, 1);
    }
}

/* A graceful stop (QUIT, a reload) while the response streams (server-sent
 * events): the app hears http.disconnect, so it ends the stream and the
 * client reconnects to a new worker, instead of holding this one until
 * shutdown_timeout. */
static void stopping(tt_request *r, void *arg)
{
    asgi_event(ASGI_EV_STOP, arg, NULL, 0, 0);
}

static int asgi_handle(tt_request *r, void *route_conf)
{
    asgi_route *rt = route_conf;
    const char *protos;
    size_t plen;

    int ws = asgi_ws->check(r, &protos, &plen);
    if (ws != 0 && ws != TT_DECLINED)
        return asgi_ws->refuse(r, ws) == 0 ? TT_OK : TT_ERROR;

    asgi_req *q = calloc(1, sizeof(*q));
    if (q == NULL || snapshot(q, r) != 0) {
        free(q);
        return 503;
    }
    q->route = rt;
    q->r = r;
    q->is_ws = ws == 0;
    api->on_close(r, req_closed, q);
    asgi_event(q->is_ws ? ASGI_EV_WS : ASGI_EV_HTTP, q, NULL, 0, r->has_body);
    if (q->is_ws)
        return TT_OK;           /* the websocket module handles its stop */
    api->on_stop(r, stopping, q);
    if (r->has_body)
        api->read_body(r, body_in, q);
    return TT_OK;
}

/* ---------------------------------------------------------------- what the app sends */

/* Headers of a message: "extra" bytes first (m->len), then pairs. */
static tt_header *headers_of(asgi_msg *m, char **mem)
{
    tt_header *h = calloc(m->nheaders ? m->nheaders : 1, sizeof(*h));
    if (h == NULL)
        return NULL;
    const char *p = m->data + m->len;
    for (size_t i = 0; i < m->nheaders; i++) {
        uint32_t n;
        memcpy(&n, p, 4);
        h[i].name = p + 4;
        h[i].name_len = n;
        p += 4 + n;
        memcpy(&n, p, 4);
        h[i].value = p + 4;
        h[i].value_len = n;
        p += 4 + n;
    }
    *mem = m->data;             /* the headers point into it: keep it */
    m->data = NULL;
    return h;
}

static int64_t declared_length(const asgi_req *q)
{
    for (size_t i = 0; i < q->nhead; i++) {
        const tt_header *h = &q->head[i];
        if (h->name_len == 14 && strncasecmp(h->name, "Content-Length", 14) == 0)
            return -2;          /* the core takes the app's */
    }
    return -1;
}

/* The held head goes out: with the body's length when this body is all. */
static int head_out(asgi_req *q, int64_t whole)
{
    if (!q->head_pending)
        return 0;
    q->head_pending = 0;
    int64_t len = declared_length(q) == -2 ? -1 : whole;
    int rc = api->start(q->r, q->head_status, q->head, q->nhead, len);
    free(q->head);
    q->head = NULL;
    return rc;
}

static void drained(tt_request *r, void *arg)
{
    asgi_req *q = arg;
    q->drain_armed = 0;
    size_t pending = api->pending(r);
    if (pending > ASGI_OUT_LOW) {
        q->drain_armed = 1;
        api->on_drain(r, drained, q);
        return;
    }
    asgi_credit_set(q, pending);
}

/* After output was queued: the app's credit is what the client has not
 * taken yet; over the high-water mark a drain watch wakes the app later. */
static void watch_output(asgi_req *q)
{
    if (q->r == NULL)
        return;
    size_t pending = api->pending(q->r);
    if (pending <= ASGI_OUT_HIGH) {
        asgi_credit_set(q, pending);
        return;
    }
    if (!q->drain_armed) {
        q->drain_armed = 1;
        api->on_drain(q->r, drained, q);
    }
}

static void send_file(asgi_req *q, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        api->log(TT_LOG_ERROR, "asgi app '%s': http.response.pathsend '%s': %s",
                 q->route->app_spec, path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        if (q->head_pending) {
            q->head_pending = 0;
            api->respond(q->r, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
        } else {
            api->abort(q->r);
        }
        return;
    }
    head_out(q, st.st_size);
    api->sendfile(q->r, fd, 0, st.st_size, 1);
    api->finish(q->r);
}

/* WebSocket session callbacks, on the I/O thread */
static void ws_message(tt_ws *ws, int type, const char *data, size_t len, void *arg)
{
    asgi_req *q = arg;
    asgi_event(ASGI_EV_WS_MSG, q, data, len, type);
    if (++q->unacked > ASGI_WS_HIGH && !q->paused) {
        q->paused = 1;
        asgi_ws->pause(ws, 1);
    }
}

static void ws_closed(tt_ws *ws, int code, const char *reason, size_t len, void *arg)
{
    asgi_req *q = arg;
    q->ws = NULL;
    asgi_event(ASGI_EV_WS_CLOSE, q, reason, len, code);
}

static void ws_drained(tt_ws *ws, void *arg)
{
    asgi_req *q = arg;
    asgi_credit_set(q, asgi_ws->pending(ws));
}

static const tt_ws_handler ws_handler = { ws_message, ws_closed, ws_drained };

static void apply_ws(asgi_msg *m, asgi_req *q)
{
    switch (m->type) {
    case ASGI_M_WS_ACCEPT: {
        char *mem = NULL;
        char sub[256];
        size_t slen = m->len < sizeof(sub) - 1 ? m->len : sizeof(sub) - 1;
        if (slen > 0)
            memcpy(sub, m->data, slen);
        sub[slen] = '\0';
        tt_header *h = headers_of(m, &mem);
        q->ws = asgi_ws->accept(q->r, slen ? sub : NULL, h, h ? m->nheaders : 0,
                                &ws_handler, q);
        free(h);
        free(mem);
        if (q->ws == NULL) {
            api->respond(q->r, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
            return;
        }
        return;
    }
    case ASGI_M_WS_SEND:
        if (q->ws == NULL)
            return;
        if (asgi_ws->send(q->ws, m->a, m->data, m->len) == 1)
            return;             /* ws_drained credits it back */
        asgi_credit_set(q, asgi_ws->pending(q->ws));
        return;
    case ASGI_M_WS_CLOSE:
        if (q->ws != NULL)
            asgi_ws->close(q->ws, m->a, m->data, m->len);
        return;
    case ASGI_M_WS_DENY:
        /* closed before accept: the handshake is refused */
        api->respond(q->r, 403, "text/plain; charset=utf-8", "403 Forbidden\n", 14);
        return;
    }
}

void asgi_apply(asgi_msg *m)
{
    asgi_req *q = m->q;

    if (m->type == ASGI_M_DONE) {
        asgi_req_release(q);
        asgi_msg_free(m);
        return;
    }
    if (q->r == NULL) {         /* the client left: nothing to send to */
        asgi_msg_free(m);
        return;
    }
    switch (m->type) {
    case ASGI_M_START: {
        /* the head, held for the body that came with it: when that body
         * is all of it, its length is the Content-Length */
        char *mem = NULL;
        q->head = headers_of(m, &mem);
        q->head_mem = mem;
        q->nhead = q->head ? m->nheaders : 0;
        q->head_status = m->a;
        q->head_pending = 1;
        if (m->more && m->len == 0)
            break;              /* pathsend, or an empty first piece: later */
        if (head_out(q, m->more ? -1 : (int64_t)m->len) != 0) {
            api->abort(q->r);
            break;
        }
        if (m->len > 0)
            api->write(q->r, mem, m->len);
        if (!m->more)
            api->finish(q->r);
        watch_output(q);
        break;
    }
    case ASGI_M_BODY:
        if (q->head_pending && head_out(q, m->a ? -1 : (int64_t)m->len) != 0) {
            api->abort(q->r);
            break;
        }
        if (m->len > 0)
            api->write(q->r, m->data, m->len);
        if (!m->a)
            api->finish(q->r);
        watch_output(q);
        break;
    case ASGI_M_FILE:
        send_file(q, m->data);
        break;
    case ASGI_M_ABORT:
        api->abort(q->r);
        break;
    case ASGI_M_FAIL:
        api->respond(q->r, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
        break;
    case ASGI_M_ACK:
        q->unacked = m->len > q->unacked ? 0 : q->unacked - m->len;
        if (q->paused && q->unacked <= (q->is_ws ? ASGI_WS_LOW : ASGI_BODY_LOW)) {
            q->paused = 0;
            if (q->ws != NULL)
                asgi_ws->pause(q->ws, 0);
            else if (!q->is_ws)
                api->pause_body(q->r, 0);
        }
        break;
    default:
        apply_ws(m, q);
        break;
    }
    asgi_msg_free(m);
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "asgi",
    .version = PACKAGE_VERSION,
    .needs = asgi_needs,
    .route_key = "asgi",
    .route_kind = TT_MODULE_HANDLER,
    .main_key = "python",
    .load = asgi_load,
    .configure_main = asgi_configure_main,
    .configure_route = asgi_configure_route,
    .init_worker = asgi_init_worker,
    .handle = asgi_handle,
    .exit_worker = asgi_exit_worker,
};
