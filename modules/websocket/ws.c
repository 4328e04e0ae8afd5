/* websocket — the module: the `websocket:` section, the opening handshake,
 * and the API other modules find with api->module_exports("websocket"). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "ws.h"

const tt_api *ws_api;
const ws_conf *ws_conf_running;

#define api ws_api

static int ws_load(const tt_api *a)
{
    ws_api = a;
    return 0;
}

/* ---------------------------------------------------------------- the websocket: section */

static int ws_configure_main(const tt_conf_node *node, void **main_conf, tt_errbuf *err)
{
    static const char *const keys[] = {
        "max_message", "idle_timeout", "ping_interval", "compression", NULL
    };
    ws_conf *c = api->conf_alloc(sizeof(*c));
    if (c == NULL)
        return -1;
    c->max_message = 1024 * 1024;
    c->idle_ms = 120 * 1000;
    c->ping_ms = 30 * 1000;
    c->compression = 1;
    *main_conf = c;
    if (node == NULL)
        return 0;
    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'websocket' is a map, such as websocket: {max_message: 1MB}");
        return -1;
    }
    if (api->conf_check_keys(node, "websocket", keys, err) != 0)
        return -1;
    const tt_conf_node *v;
    if ((v = api->conf_get(node, "max_message")) != NULL) {
        if (api->conf_size(v, &c->max_message, err) != 0)
            return -1;
        if (c->max_message == 0 || c->max_message > (uint64_t)1 << 31) {
            api->conf_error(err, v, "'max_message: %s': give a size from 1 to 2GB, such as 1MB",
                            v->value);
            return -1;
        }
    }
    if ((v = api->conf_get(node, "idle_timeout")) != NULL &&
        api->conf_duration(v, &c->idle_ms, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "ping_interval")) != NULL &&
        api->conf_duration(v, &c->ping_ms, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "compression")) != NULL &&
        api->conf_bool(v, &c->compression, err) != 0)
        return -1;
    return 0;
}

static int ws_init_worker(void *main_conf)
{
    ws_conf_running = main_conf;
    return 0;
}

/* ---------------------------------------------------------------- the handshake */

static int ws_check(tt_request *r, const char **protocols, size_t *protocols_len)
{
    size_t len;
    const char *v = api->header(r, "Upgrade", &len);

    *protocols = NULL;
    *protocols_len = 0;
    if (v == NULL || !tt_ws_has_token(v, len, "websocket"))
        return TT_DECLINED;
    if (strcmp(r->method, "GET") != 0 || r->version < 11 || r->has_body)
        return 400;
    v = api->header(r, "Connection", &len);
    if (v == NULL || !tt_ws_has_token(v, len, "upgrade"))
        return 400;
    v = api->header(r, "Sec-WebSocket-Version", &len);
    if (v == NULL || len != 2 || memcmp(v, "13", 2) != 0)
        return 426;
    v = api->header(r, "Sec-WebSocket-Key", &len);
    if (v == NULL || !tt_ws_key_ok(v, len))
        return 400;
    *protocols = api->header(r, "Sec-WebSocket-Protocol", protocols_len);
    return 0;
}

static int ws_refuse(tt_request *r, int status)
{
    char body[96];
    tt_header h[2];
    size_t n = 0;
    int len;

    h[n++] = (tt_header){ "Content-Type", 12, "text/plain; charset=utf-8", 25 };
    if (status == 426) {
        h[n++] = (tt_header){ "Sec-WebSocket-Version", 21, "13", 2 };
        len = snprintf(body, sizeof(body), "426 Upgrade Required: WebSocket version 13 only\n");
    } else {
        len = snprintf(body, sizeof(body), "%d Bad WebSocket handshake\n", status);
    }
    if (api->start(r, status, h, n, len) != 0)
        return -1;
    api->write(r, body, (size_t)len);
    return api->finish(r);
}

static tt_ws *ws_accept(tt_request *r, const char *subprotocol, const tt_header *extra,
                        size_t nextra, const tt_ws_handler *h, void *arg)
{
    size_t klen, elen;
    const char *key = api->header(r, "Sec-WebSocket-Key", &klen);
    char accept[TT_WS_ACCEPT_LEN + 1];

    if (key == NULL || ws_conf_running == NULL || tt_ws_accept(key, klen, accept) != 0)
        return NULL;

    tt_ws_deflate pmd;
    char ext[256];
    int deflate = 0;
    const char *offer = api->header(r, "Sec-WebSocket-Extensions", &elen);
    if (offer != NULL && ws_conf_running->compression)
        deflate = tt_ws_deflate_negotiate(offer, elen, WS_DEFLATE_BITS, &pmd, ext,
                                          sizeof(ext)) == 1;

    /* RFC 6455 4.2.2: only a subprotocol the client offered; a client
     * fails the connection on any other, so leave it out and say why */
    size_t plen;
    const char *offer_p = api->header(r, "Sec-WebSocket-Protocol", &plen);
    if (subprotocol != NULL && *subprotocol &&
        (offer_p == NULL || !tt_ws_has_token(offer_p, plen, subprotocol))) {
        api->log(TT_LOG_WARN, "websocket: subprotocol '%s' was not offered by the client of "
                 "\"%s\"; accepting without one", subprotocol, r->target);
        subprotocol = NULL;
    }

    tt_header hs[32];
    size_t n = 0;
    hs[n++] = (tt_header){ "Upgrade", 7, "websocket", 9 };
    hs[n++] = (tt_header){ "Sec-WebSocket-Accept", 20, accept, TT_WS_ACCEPT_LEN };
    if (subprotocol != NULL && *subprotocol)
        hs[n++] = (tt_header){ "Sec-WebSocket-Protocol", 22, subprotocol, strlen(subprotocol) };
    if (deflate)
        hs[n++] = (tt_header){ "Sec-WebSocket-Extensions", 24, ext, strlen(ext) };
    for (size_t i = 0; i < nextra && n < sizeof(hs) / sizeof(hs[0]); i++)
        hs[n++] = extra[i];

    tt_ws *ws = ws_session_new(r, deflate ? &pmd : NULL, h, arg);
    if (ws == NULL)
        return NULL;
    if (api->upgrade(r, hs, n) != 0) {
        api->log(TT_LOG_ERROR, "websocket: cannot upgrade \"%s\"", r->target);
        ws_session_abandon(ws);     /* freed with the request */
        return NULL;
    }
    if (ws_session_start(ws) != 0) {
        api->finish(r);
        return NULL;
    }
    return ws;
}

static uint64_t ws_idle_timeout_ms(void)
{
    return ws_conf_running != NULL ? ws_conf_running->idle_ms : 120 * 1000;
}

static const tt_ws_api ws_exports = {
    .version = TT_WS_API_VERSION,
    .check = ws_check,
    .refuse = ws_refuse,
    .accept = ws_accept,
    .send = ws_session_send,
    .close = ws_session_close,
    .pause = ws_session_pause,
    .pending = ws_session_pending,
    .request = ws_session_request,
    .idle_timeout_ms = ws_idle_timeout_ms,
};

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "websocket",
    .version = PACKAGE_VERSION,
    .main_key = "websocket",
    .load = ws_load,
    .configure_main = ws_configure_main,
    .init_worker = ws_init_worker,
    .exports = &ws_exports,
};
