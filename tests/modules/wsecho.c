/* A WebSocket echo endpoint in C, for the websocket module's protocol
 * tests without Python in the way. Route key `wsecho`. Every message comes
 * back as it came, except text commands:
 *   "close CODE REASON"  the server starts the closing handshake
 *   "big N"              a binary message of N bytes ('x')
 *   "pause MS"           stop reading for MS milliseconds
 * A reply that finds the client slow (send() returns 1) stops the reading
 * until on_drain: an echo never queues more than it was sent.
 * A plain GET answers "wsecho\n"; the subprotocol "chat" is chosen when
 * offered. */
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <tutti/tutti.h>
#include <tutti/websocket.h>

static const tt_api *api;
static const tt_ws_api *ws;
static const char *const wsecho_needs[] = { "websocket", NULL };

static int wsecho_load(const tt_api *a)
{
    api = a;
    return 0;
}

static int wsecho_configure(const tt_conf_node *node, void *main_conf,
                            void **route_conf, tt_errbuf *err)
{
    (void)node; (void)main_conf; (void)err;
    *route_conf = NULL;
    return 0;
}

static int wsecho_init(void *main_conf)
{
    (void)main_conf;
    ws = api->module_exports("websocket");
    if (ws == NULL || ws->version != TT_WS_API_VERSION) {
        api->log(TT_LOG_ERROR, "wsecho: the websocket module is not loaded");
        return -1;
    }
    return 0;
}

typedef struct {
    tt_ws        *s;
    struct event *resume;
} echo;

static void resume(evutil_socket_t fd, short what, void *arg)
{
    echo *e = arg;
    (void)fd; (void)what;
    if (e->s != NULL)
        ws->pause(e->s, 0);
}

/* the reply is queued, but the client is slow: read no more until it drains */
static void reply(tt_ws *s, int type, const void *data, size_t len)
{
    if (ws->send(s, type, data, len) == 1)
        ws->pause(s, 1);
}

static void on_drain(tt_ws *s, void *arg)
{
    (void)arg;
    ws->pause(s, 0);
}

static void on_message(tt_ws *s, int type, const char *data, size_t len, void *arg)
{
    echo *e = arg;
    char cmd[160];

    if (type == TT_WS_TEXT && len < sizeof(cmd)) {
        memcpy(cmd, data, len);
        cmd[len] = '\0';
        if (strncmp(cmd, "close ", 6) == 0) {
            char *reason;
            long code = strtol(cmd + 6, &reason, 10);
            if (*reason == ' ')
                reason++;
            ws->close(s, (int)code, reason, strlen(reason));
            return;
        }
        if (strncmp(cmd, "big ", 4) == 0) {
            size_t n = strtoul(cmd + 4, NULL, 10);
            char *buf = malloc(n ? n : 1);
            if (buf != NULL) {
                memset(buf, 'x', n);
                reply(s, TT_WS_BINARY, buf, n);
                free(buf);
            }
            return;
        }
        if (strncmp(cmd, "pause ", 6) == 0) {
            long ms = strtol(cmd + 6, NULL, 10);
            struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
            ws->pause(s, 1);
            evtimer_add(e->resume, &tv);
            return;
        }
    }
    reply(s, type, data, len);
}

static void on_close(tt_ws *s, int code, const char *reason, size_t len, void *arg)
{
    echo *e = arg;
    (void)s;
    api->log(TT_LOG_INFO, "wsecho: closed %d %.*s", code, (int)len, reason);
    e->s = NULL;
}

static const tt_ws_handler handler = { on_message, on_close, on_drain };

static void echo_free(tt_request *r, void *arg)
{
    echo *e = arg;
    (void)r;
    event_free(e->resume);
}

/* "chat" among the comma-separated tokens ("superchat" is not it) */
static int offered(const char *v, size_t len, const char *want)
{
    size_t wl = strlen(want), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - start == wl && memcmp(v + start, want, wl) == 0)
            return 1;
    }
    return 0;
}

static int wsecho_handle(tt_request *r, void *route_conf)
{
    const char *protos;
    size_t plen;
    (void)route_conf;

    int rc = ws->check(r, &protos, &plen);
    if (rc == TT_DECLINED)
        return api->respond(r, 200, "text/plain", "wsecho\n", 7) == 0 ? TT_OK : TT_ERROR;
    if (rc != 0)
        return ws->refuse(r, rc) == 0 ? TT_OK : TT_ERROR;

    echo *e = api->palloc(r, sizeof(*e));
    if (e == NULL || (e->resume = evtimer_new(api->event_base(), resume, e)) == NULL)
        return TT_ERROR;
    api->on_close(r, echo_free, e);
    const char *sub = protos != NULL && offered(protos, plen, "chat") ? "chat" : NULL;
    e->s = ws->accept(r, sub, NULL, 0, &handler, e);
    return e->s != NULL ? TT_OK : TT_ERROR;
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "wsecho",
    .version = "0.1.0",
    .needs = wsecho_needs,
    .route_key = "wsecho",
    .route_kind = TT_MODULE_HANDLER,
    .load = wsecho_load,
    .configure_route = wsecho_configure,
    .init_worker = wsecho_init,
    .handle = wsecho_handle,
};
