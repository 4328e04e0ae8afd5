/* tutti — WebSocket sessions (RFC 6455, RFC 7692) for other modules.
 *
 * The websocket module does the protocol: the opening handshake, framing,
 * fragments, masking rules, ping/pong, the closing handshake, UTF-8 checks,
 * permessage-deflate, max_message, idle_timeout and ping_interval from the
 * `websocket:` section. A module that serves WebSocket endpoints (asgi)
 * finds its API by name and sees whole messages:
 *
 *     const tt_ws_api *ws = api->module_exports("websocket");
 *     if (ws == NULL || ws->version != TT_WS_API_VERSION) ...
 *
 * Everything runs on the worker's I/O thread. Members are only ever
 * appended.
 */
#ifndef TUTTI_WEBSOCKET_H
#define TUTTI_WEBSOCKET_H

#include <stddef.h>
#include <stdint.h>
#include <tutti/request.h>

#define TT_WS_API_VERSION 1

#define TT_WS_TEXT   1
#define TT_WS_BINARY 2

typedef struct tt_ws tt_ws;

typedef struct {
    /* A whole message: fragments joined, inflated, a text one checked as
     * UTF-8. data is valid during the call only. */
    void (*on_message)(tt_ws *ws, int type, const char *data, size_t len, void *arg);
    /* The session is over, once: code is the close code the peer sent
     * (1005 when its close frame had none), the one the server failed the
     * connection with (1002, 1007, 1009, 1011, 1001 on idle), or 1006 when
     * the connection ended without a closing handshake. ws must not be
     * used after this returns. */
    void (*on_close)(tt_ws *ws, int code, const char *reason, size_t len, void *arg);
    /* The output fell below the low-water mark after send() returned 1. */
    void (*on_drain)(tt_ws *ws, void *arg);
} tt_ws_handler;

typedef struct {
    uint32_t version;           /* TT_WS_API_VERSION */

    /* Is r a WebSocket opening handshake? 0: yes, and its offered
     * subprotocols are in *protocols (the Sec-WebSocket-Protocol value, or
     * NULL). TT_DECLINED: not an upgrade to websocket at all (a plain
     * request). Otherwise an HTTP status to refuse it with: 400 for a bad
     * handshake, 426 for another version (answer with refuse()). */
    int  (*check)(tt_request *r, const char **protocols, size_t *protocols_len);
    /* The refusal check() asked for, with Sec-WebSocket-Version: 13 on 426. */
    int  (*refuse)(tt_request *r, int status);

    /* Accept: 101 with the accept key, subprotocol (NULL for none; it must
     * be one the client offered), permessage-deflate when offered and
     * `compression` is on, and the extra headers. NULL on failure (the
     * request is then still a plain one the caller answers). */
    tt_ws *(*accept)(tt_request *r, const char *subprotocol, const tt_header *extra,
                     size_t nextra, const tt_ws_handler *h, void *arg);

    /* Queue a message. 0: queued; 1: queued, but the client is slow (over
     * the high-water mark): send more after on_drain; -1: the session is
     * closing or closed, nothing was queued. */
    int  (*send)(tt_ws *ws, int type, const void *data, size_t len);
    /* Begin the closing handshake (code 1000..4999, reason <= 123 bytes of
     * UTF-8); on_close follows when the peer answers, or after 5 s. */
    int  (*close)(tt_ws *ws, int code, const char *reason, size_t len);
    /* Stop (1) or resume (0) delivering messages; while stopped the client
     * is not read, so TCP pushes back on it. */
    void (*pause)(tt_ws *ws, int paused);
    /* bytes queued for the client */
    size_t (*pending)(const tt_ws *ws);
    /* the request the session was accepted on */
    tt_request *(*request)(tt_ws *ws);
    /* The `websocket:` section's idle_timeout in ms (0 = never), for a
     * module that passes WebSocket bytes without framing them (proxy). */
    uint64_t (*idle_timeout_ms)(void);
} tt_ws_api;

#endif
