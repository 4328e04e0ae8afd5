/* hello — the example tutti module. Copy this file to start your own.
 *
 * It shows the whole life of a module in one small file:
 *
 *   1. the descriptor `tt_module_entry`, which tutti finds with dlsym() and
 *      checks (ABI number, then build signature) before it trusts anything;
 *   2. load(): tutti hands over its API table; a module calls tutti only
 *      through it and never links against the daemon;
 *   3. configure_route(): the YAML under the route key is checked and turned
 *      into a small struct, once, when the config is loaded (and again on
 *      every reload) — errors point at the file, line and column;
 *   4. handle(): called in a worker for every request the route matches; it
 *      answers at once, or starts a response and streams it.
 *
 * In tutti.yaml:
 *
 *   modules: [hello]
 *   servers:
 *     - listen: 127.0.0.1:8080
 *       routes:
 *         - match: /hello/
 *           hello: {greeting: Hi}       # GET /hello/bob -> "Hi, bob!"
 *         - match: /echo
 *           hello: {echo: true}         # POST /echo -> the body, streamed back
 *
 * Build it out of tree (see doc/modules.md):
 *
 *   gcc -shared -fPIC -O2 -I/usr/local/include -o hello.so hello.c
 */
#include <string.h>
#include <tutti/tutti.h>    /* the only header a module includes */

/* The API table. It stays valid as long as the module is loaded. */
static const tt_api *api;

/* What one `hello:` route key configures. Allocated with conf_alloc, so it
 * lives exactly as long as the config that holds it: no free() needed. */
typedef struct {
    const char *greeting;
    int         echo;
} hello_conf;

/* Echo mode pauses reading the client's body while this much of the
 * response is still waiting to be sent: memory per request stays bounded
 * however fast the client sends and however slowly it reads. */
#define HELLO_HIGH_WATER (256 * 1024)

static int hello_load(const tt_api *a)
{
    /* A table from a newer tutti is fine (it only grows at the end); an
     * older one may lack slots we call. */
    if (a->size < sizeof(tt_api))
        return -1;
    api = a;
    return 0;
}

/* ---- configuration ---- */

static int hello_configure(const tt_conf_node *node, void *main_conf,
                           void **route_conf, tt_errbuf *err)
{
    static const char *const keys[] = { "greeting", "echo", NULL };
    hello_conf *conf = api->conf_alloc(sizeof(*conf));

    (void)main_conf;            /* hello has no top-level key */

    if (conf == NULL) {
        api->conf_error(err, node, "out of memory");
        return -1;
    }
    conf->greeting = "Hello";
    conf->echo = 0;

    /* `hello:` with nothing after it means "all defaults" */
    if (node->type == TT_CONF_SCALAR && node->len == 0 && !node->quoted) {
        *route_conf = conf;
        return 0;
    }
    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'hello' is a map, such as "
                        "hello: {greeting: Hi, echo: false}");
        return -1;
    }
    /* Unknown keys are errors with a "did you mean" suggestion: a typo must
     * never be silently ignored. */
    if (api->conf_check_keys(node, "hello", keys, err) != 0)
        return -1;

    const tt_conf_node *v;
    if ((v = api->conf_get(node, "greeting")) != NULL &&
        api->conf_string(v, &conf->greeting, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "echo")) != NULL &&
        api->conf_bool(v, &conf->echo, err) != 0)
        return -1;

    *route_conf = conf;
    return 0;
}

/* ---- greeting mode: one answer, all at once ---- */

static int hello_greet(tt_request *r, const hello_conf *conf)
{
    /* The path below the route's prefix names who to greet: with
     * `match: /hello/`, GET /hello/bob greets "bob". */
    const char *who = "";
    size_t who_len = 0;
    if (r->path_len > r->route_prefix_len) {
        who = r->path + r->route_prefix_len;
        who_len = r->path_len - r->route_prefix_len;
    }
    while (who_len > 0 && *who == '/') {
        who++;
        who_len--;
    }
    if (who_len == 0) {
        who = "world";
        who_len = 5;
    }

    /* palloc memory belongs to the request and goes away with it */
    size_t glen = strlen(conf->greeting);
    size_t len = glen + 2 + who_len + 2;
    char *body = api->palloc(r, len);
    if (body == NULL)
        return TT_ERROR;        /* the core answers 500 */
    memcpy(body, conf->greeting, glen);
    memcpy(body + glen, ", ", 2);
    memcpy(body + glen + 2, who, who_len);
    memcpy(body + glen + 2 + who_len, "!\n", 2);

    /* respond() = start + write + finish for a body already in memory; the
     * core adds Content-Length, Date, Server and Connection, and drops the
     * body for HEAD. */
    if (api->respond(r, 200, "text/plain; charset=utf-8", body, len) != 0)
        return TT_ERROR;
    return TT_OK;
}

/* ---- echo mode: a streamed body in, a streamed body out ---- */

/* The state of one echo, in request memory (r->ctx is ours to use). */
typedef struct {
    int started;                /* response head sent */
} hello_echo;

static int echo_start(tt_request *r, hello_echo *e)
{
    size_t ctype_len;
    const char *ctype = api->header(r, "Content-Type", &ctype_len);
    tt_header h = {
        "Content-Type", 12,
        ctype ? ctype : "application/octet-stream",
        ctype ? ctype_len : 24,
    };
    /* Same length as the request when the client said it; otherwise -1
     * lets the core pick chunked encoding (or close-delimited for 1.0). */
    int64_t length = r->chunked ? -1 : r->content_length >= 0 ? r->content_length : 0;

    e->started = 1;
    return api->start(r, 200, &h, 1, length);
}

/* on_drain: the client caught up, so read more of its body */
static void echo_drained(tt_request *r, void *arg)
{
    (void)arg;
    api->pause_body(r, 0);
}

/* Called for every piece of the request body as it arrives (de-chunked by
 * the core), then once with TT_BODY_END, or once with TT_BODY_ERROR. */
static void echo_body(tt_request *r, const char *data, size_t len, int status,
                      void *arg)
{
    hello_echo *e = arg;

    if (status == TT_BODY_ERROR)
        return;                 /* the client is gone: the core cleans up */
    /* The head goes out on the first piece, not before read_body(): a client
     * that sent "Expect: 100-continue" must see 100 before a final status. */
    if (!e->started && echo_start(r, e) != 0)
        return;
    if (len > 0 && api->write(r, data, len) != 0)
        return;                 /* the connection failed; on_close follows */
    if (status == TT_BODY_END) {
        api->finish(r);
        return;
    }
    /* Backpressure: stop reading while the client reads more slowly than it
     * sends, and resume when what is queued has drained. */
    if (api->pending(r) > HELLO_HIGH_WATER) {
        api->pause_body(r, 1);
        api->on_drain(r, echo_drained, e);
    }
}

static int hello_echo_body(tt_request *r)
{
    hello_echo *e = api->palloc(r, sizeof(*e));
    if (e == NULL)
        return TT_ERROR;
    r->ctx = e;
    /* read_body() sends "100 Continue" if the client asked for it, then
     * calls echo_body as data arrives, possibly long after handle() has
     * returned. With no body at all it calls echo_body(TT_BODY_END) at once,
     * which answers an empty 200. */
    if (api->read_body(r, echo_body, e) != 0)
        return TT_ERROR;
    return TT_OK;               /* the response is under way */
}

static int hello_handle(tt_request *r, void *route_conf)
{
    const hello_conf *conf = route_conf;

    if (conf->echo)
        return hello_echo_body(r);
    return hello_greet(r, conf);
}

/* ---- the descriptor: the one symbol tutti looks for ---- */

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,               /* first, always: checked before the rest */
    .signature = TT_MODULE_SIGNATURE,   /* sizes and struct layouts it was built for */
    .name = "hello",                    /* must match the file name hello.so */
    .version = "0.1.0",
    .route_key = "hello",               /* routes say `hello: {...}` */
    .route_kind = TT_MODULE_HANDLER,    /* it answers requests (not a filter) */
    .load = hello_load,
    .configure_route = hello_configure,
    .handle = hello_handle,
};
