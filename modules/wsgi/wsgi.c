/* wsgi — the module: the `python:` section, the `wsgi:` route key, and the
 * way from a request to the Python that answers it. See wsgi.h. */
#include "wsgi.h"      /* first: Python.h before the system headers */
#include "spec.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const tt_api *wsgi_api;
#define api wsgi_api

/* threads per route: more than this is a mistake, not a tuning */
#define WSGI_MAX_THREADS 256

static int wsgi_load(const tt_api *a)
{
    if (a->size < sizeof(tt_api))
        return -1;
    wsgi_api = a;
    return tt_py_promote_libpython(a, "wsgi");
}

/* the `python:` section (pyhost.c) */
static int wsgi_configure_main(const tt_conf_node *node, void **main_conf, tt_errbuf *err)
{
    wsgi_main *m = api->conf_alloc(sizeof(*m));
    if (m == NULL)
        return -1;
    *main_conf = m;
    return tt_py_configure(api, node, &m->py, err);
}

/* ---------------------------------------------------------------- the wsgi: route key */

static int conf_app(const tt_conf_node *v, wsgi_route *rt, tt_errbuf *err)
{
    if (api->conf_string(v, &rt->app_spec, err) != 0)
        return -1;
    if (!wsgi_app_spec_ok(rt->app_spec)) {
        api->conf_error(err, v, "'app: %s': expected module:callable, such as "
                        "app: mysite.wsgi:application (or module:factory() to call a factory)",
                        rt->app_spec);
        return -1;
    }
    rt->file = v->file;
    rt->line = v->line;
    rt->col = v->col;
    return 0;
}

static int conf_script_name(const tt_conf_node *v, wsgi_route *rt, tt_errbuf *err)
{
    const char *s;
    if (api->conf_string(v, &s, err) != 0)
        return -1;
    size_t n = strlen(s);
    if (n > 0 && s[0] != '/') {
        api->conf_error(err, v, "'script_name: %s' is a path prefix that starts with /, "
                        "such as script_name: /app (or \"\" for none)", s);
        return -1;
    }
    while (n > 0 && s[n - 1] == '/')     /* "/app/" mounts at "/app" */
        n--;
    rt->script_name = s;
    rt->script_name_len = n;
    return 0;
}

static int wsgi_configure_route(const tt_conf_node *node, void *main_conf, void **route_conf,
                                tt_errbuf *err)
{
    static const char *const keys[] = { "app", "threads", "script_name", NULL };
    wsgi_main *m = main_conf;
    wsgi_route *rt = api->conf_alloc(sizeof(*rt));
    const tt_conf_node *v;

    if (rt == NULL)
        return -1;
    rt->main = m;
    rt->threads = 4;
    rt->script_name = "";

    if (node->type == TT_CONF_SCALAR) {
        /* wsgi: mysite.wsgi:application */
        if (conf_app(node, rt, err) != 0)
            return -1;
    } else if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'wsgi' is a map, such as wsgi: {app: mysite.wsgi:application}");
        return -1;
    } else {
        if (api->conf_check_keys(node, "wsgi", keys, err) != 0)
            return -1;
        if ((v = api->conf_get(node, "app")) == NULL) {
            api->conf_error(err, node, "wsgi route has no 'app'; add app: module:callable, "
                            "such as app: mysite.wsgi:application");
            return -1;
        }
        if (conf_app(v, rt, err) != 0)
            return -1;
        if ((v = api->conf_get(node, "threads")) != NULL &&
            api->conf_int(v, 0, WSGI_MAX_THREADS, &rt->threads, err) != 0)
            return -1;
        if ((v = api->conf_get(node, "script_name")) != NULL &&
            conf_script_name(v, rt, err) != 0)
            return -1;
    }
    if (tt_py_conf_dir(api, node, &m->py, err) != 0)
        return -1;
    rt->next = m->routes;
    m->routes = rt;
    *route_conf = rt;
    return 0;
}

/* ---------------------------------------------------------------- workers */

static int wsgi_init_worker(void *main_conf)
{
    wsgi_main *m = main_conf;

    if (m == NULL || m->routes == NULL)
        return 0;               /* loaded, but no route runs Python: no interpreter */
    if (wsgi_interp_start(m) != 0)
        return -1;
    for (wsgi_route *rt = m->routes; rt != NULL; rt = rt->next) {
        if (wsgi_interp_load_app(rt) != 0 || (rt->environ = wsgi_environ_base(rt)) == NULL) {
            tt_py_gil_drop();
            return -1;
        }
    }
    /* the threads start waiting for the GIL, which the I/O thread gives up
     * for good here: it only takes it back for threads: 0 routes */
    tt_py_gil_drop();
    if (wsgi_hub_start() != 0)
        return -1;
    for (wsgi_route *rt = m->routes; rt != NULL; rt = rt->next)
        if (rt->threads > 0 && wsgi_pool_start(rt) != 0)
            return -1;
    return 0;
}

static void wsgi_exit_worker(void *main_conf)
{
    wsgi_main *m = main_conf;

    if (m == NULL || m->routes == NULL)
        return;
    wsgi_hub_stop();
    wsgi_interp_stop();
}

/* ---------------------------------------------------------------- requests */

/* The core closed the request: normal end, client gone, or our abort. */
static void job_closed(tt_request *r, void *arg)
{
    wsgi_job *j = arg;

    j->r = NULL;
    if (j->threaded) {
        wsgi_hub_lock();
        j->gone = 1;
        if (j->waiting)
            pthread_cond_signal(&j->cond);
        wsgi_hub_unlock();
    } else if (j->call != NULL && j->py_done) {
        wsgi_cancel(j);         /* a paused response: close() the app's iterable */
    }
    j->io_done = 1;
    if (j->py_done)
        wsgi_job_free(j);
}

static void inline_drained(tt_request *r, void *arg);

/* After a turn of the app on this thread: a response paused over the
 * high-water mark goes on when the client has taken it. */
static void inline_after(wsgi_job *j)
{
    j->py_done = 1;
    if (j->io_done) {
        if (j->call != NULL)
            wsgi_cancel(j);     /* the client left during this very turn */
        wsgi_job_free(j);
        return;
    }
    if (j->call != NULL && j->r != NULL)
        api->on_drain(j->r, inline_drained, j);
}

/* One turn of the app on this thread, the GIL taken for it: the call
 * itself, or more of a response that was paused. */
static void inline_turn(wsgi_job *j)
{
    j->py_done = 0;
    tt_py_gil_take();
    if (j->call != NULL)
        wsgi_resume(j);
    else
        wsgi_run(j);
    tt_py_gil_drop();
    inline_after(j);
}

static void inline_drained(tt_request *r, void *arg)
{
    wsgi_job *j = arg;
    if (j->call != NULL)
        inline_turn(j);
}

static int body_append(wsgi_job *j, const char *data, size_t len)
{
    wsgi_chunk *c = malloc(sizeof(*c) + len);
    if (c == NULL)
        return -1;
    c->next = NULL;
    c->len = len;
    c->off = 0;
    memcpy(c->data, data, len);
    if (j->body_tail)
        j->body_tail->next = c;
    else
        j->body_head = c;
    j->body_tail = c;
    j->body_bytes += len;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The body so far into an unlinked file in $TMPDIR (or /tmp), and the rest
 * after it. */
static int spool_start(wsgi_job *j)
{
    const char *dir = getenv("TMPDIR");
    int fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        api->log(TT_LOG_ERROR, "wsgi: cannot make a file for a request body in %s: %m",
                 dir && *dir ? dir : "/tmp");
        return -1;
    }
    for (wsgi_chunk *c = j->body_head; c != NULL; c = c->next) {
        if (write_all(fd, c->data, c->len) != 0) {
            api->log(TT_LOG_ERROR, "wsgi: writing a request body to a file: %m");
            close(fd);
            return -1;
        }
    }
    while (j->body_head != NULL) {
        wsgi_chunk *next = j->body_head->next;
        free(j->body_head);
        j->body_head = next;
    }
    j->body_tail = NULL;
    j->spool_fd = fd;
    j->spool_size = j->body_bytes;
    return 0;
}

static int inline_add(wsgi_job *j, const char *data, size_t len)
{
    if (j->spool_fd < 0 && j->body_bytes + len > WSGI_BODY_MEM && spool_start(j) != 0)
        return -1;
    if (j->spool_fd < 0)
        return body_append(j, data, len);
    if (write_all(j->spool_fd, data, len) != 0) {
        api->log(TT_LOG_ERROR, "wsgi: writing a request body to a file: %m");
        return -1;
    }
    j->spool_size += len;
    j->body_bytes += len;
    return 0;
}

static void inline_body(tt_request *r, const char *data, size_t len, int status, void *arg)
{
    wsgi_job *j = arg;

    if (status == TT_BODY_ERROR || j->body_done)
        return;                 /* the request is going away; job_closed cleans up */
    if (len > 0 && inline_add(j, data, len) != 0) {
        j->body_done = 1;       /* no more of it: the 500 is the answer */
        api->respond(r, 500, "text/plain; charset=utf-8", "500 Internal Server Error\n", 26);
        return;
    }
    if (status == TT_BODY_END) {
        j->body_done = 1;
        inline_turn(j);
    }
}

/* The threads' body feed: queue, wake the reader, and stop reading the
 * client while the app is behind. */
static void thread_body(tt_request *r, const char *data, size_t len, int status, void *arg)
{
    wsgi_job *j = arg;
    int pause = 0;

    wsgi_hub_lock();
    if (len > 0 && body_append(j, data, len) != 0)
        status = TT_BODY_ERROR;
    if (status == TT_BODY_END) {
        j->body_done = 1;
    } else if (status == TT_BODY_ERROR) {
        j->body_done = 1;
        j->body_error = 1;
    } else if (j->body_bytes > WSGI_BODY_HIGH && !j->body_paused) {
        j->body_paused = 1;
        pause = 1;
    }
    if (j->waiting)
        pthread_cond_signal(&j->cond);
    wsgi_hub_unlock();
    if (pause)
        api->pause_body(r, 1);
}

/* Called by hub.c for a resume message: start or resume the body. */
void wsgi_body_resume(wsgi_job *j)
{
    if (j->r == NULL)
        return;
    wsgi_hub_lock();
    int started = j->body_reading;
    j->body_reading = 1;
    j->body_paused = 0;
    j->body_asked = 0;
    wsgi_hub_unlock();
    if (!started) {
        api->read_body(j->r, thread_body, j);
        return;
    }
    api->pause_body(j->r, 0);
}

/* Python threads read the request after the core may have freed it: give
 * them a copy of what they need, in one allocation. */
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

static int snapshot(wsgi_job *j, const tt_request *r)
{
    size_t room = r->nheaders * sizeof(tt_header);
    room += str_room(r->method, r->method_len) + str_room(r->target, r->target_len) +
            str_room(r->path, r->path_len) + str_room(r->query, r->query_len) +
            str_room(r->host, r->host_len);
    const char *strs[] = { r->remote_addr, r->local_addr, r->server_name };
    for (size_t i = 0; i < 3; i++)
        room += strs[i] ? strlen(strs[i]) + 1 : 0;
    for (size_t i = 0; i < r->nheaders; i++)
        room += r->headers[i].name_len + r->headers[i].value_len + 2;

    char *p = malloc(room ? room : 1);
    if (p == NULL)
        return -1;
    j->copy = p;
    j->req = *r;
    tt_header *h = (tt_header *)(void *)p;
    p += r->nheaders * sizeof(tt_header);
    for (size_t i = 0; i < r->nheaders; i++) {
        h[i].name_len = r->headers[i].name_len;
        h[i].value_len = r->headers[i].value_len;
        h[i].name = str_put(&p, r->headers[i].name, h[i].name_len);
        h[i].value = str_put(&p, r->headers[i].value, h[i].value_len);
    }
    j->req.headers = h;
    j->req.method = str_put(&p, r->method, r->method_len);
    j->req.target = str_put(&p, r->target, r->target_len);
    j->req.path = str_put(&p, r->path, r->path_len);
    j->req.query = str_put(&p, r->query, r->query_len);
    j->req.host = str_put(&p, r->host, r->host_len);
    j->req.remote_addr = str_put(&p, r->remote_addr, r->remote_addr ? strlen(r->remote_addr) : 0);
    j->req.local_addr = str_put(&p, r->local_addr, r->local_addr ? strlen(r->local_addr) : 0);
    j->req.server_name = str_put(&p, r->server_name, r->server_name ? strlen(r->server_name) : 0);
    j->req.raw_path = NULL;         /* Python reads target instead */
    j->req.route_prefix = NULL;
    j->req.ctx = NULL;
    return 0;
}

static int wsgi_handle(tt_request *r, void *route_conf)
{
    wsgi_route *rt = route_conf;
    wsgi_job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return TT_ERROR;
    j->route = rt;
    j->r = r;
    j->spool_fd = -1;
    j->threaded = rt->threads > 0;
    j->py_done = !j->threaded;
    if (j->threaded) {
        if (snapshot(j, r) != 0 || pthread_cond_init(&j->cond, NULL) != 0) {
            free(j->copy);
            free(j);
            return TT_ERROR;
        }
    } else {
        j->req = *r;
    }
    api->on_close(r, job_closed, j);

    if (!j->threaded) {
        if (!r->has_body) {
            j->body_done = 1;
            inline_turn(j);
            return TT_OK;
        }
        return api->read_body(r, inline_body, j) == 0 ? TT_OK : TT_ERROR;
    }

    if (!r->has_body) {
        j->body_done = 1;
    } else if (api->header(r, "Expect", NULL) == NULL) {
        /* read ahead while the app starts; with 100-continue the app's first
         * read asks for it, so an app that refuses the body never invites it */
        j->body_reading = 1;
        api->read_body(r, thread_body, j);
    }
    wsgi_pool_dispatch(rt->pool, j);
    return TT_OK;
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "wsgi",
    .version = "0.1.0",
    .route_key = "wsgi",
    .route_kind = TT_MODULE_HANDLER,
    .main_key = "python",
    .load = wsgi_load,
    .configure_main = wsgi_configure_main,
    .configure_route = wsgi_configure_route,
    .init_worker = wsgi_init_worker,
    .handle = wsgi_handle,
    .exit_worker = wsgi_exit_worker,
};
