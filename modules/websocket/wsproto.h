/* websocket — the pure rules of RFC 6455 and RFC 7692 that no frame
 * library does for us: the opening handshake's checks and accept key,
 * UTF-8 validation of text messages across fragments, and the
 * permessage-deflate negotiation. No I/O, no libevent: unit-tested in
 * tests/unit/websocket. (The module around them is issue 5's work.) */
#ifndef TT_WSPROTO_H
#define TT_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

/* ---- the opening handshake ---- */

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)),
 * 28 characters and a NUL into out. */
#define TT_WS_ACCEPT_LEN 28
int tt_ws_accept(const char *key, size_t len, char out[TT_WS_ACCEPT_LEN + 1]);

/* A Sec-WebSocket-Key is the base64 of 16 bytes: 24 characters, "==" last. */
int tt_ws_key_ok(const char *key, size_t len);

/* Whether a comma-separated header value (Connection, Upgrade) holds token,
 * case-insensitively: "keep-alive, Upgrade" holds "upgrade". */
int tt_ws_has_token(const char *value, size_t len, const char *token);

/* ---- UTF-8 in text messages ---- */

/* Validation that can stop anywhere, even inside a character, and go on
 * with the next fragment. Start with state 0. */
typedef struct {
    uint32_t need;              /* continuation bytes still expected */
    uint32_t lo, hi;            /* the range the next one must be in */
} tt_ws_utf8;

/* 0 while valid so far, -1 at the first invalid byte (RFC 6455: close 1007) */
int tt_ws_utf8_feed(tt_ws_utf8 *st, const uint8_t *p, size_t n);
/* At the end of the message: 1 when no character was left unfinished. */
int tt_ws_utf8_complete(const tt_ws_utf8 *st);

/* ---- permessage-deflate (RFC 7692) ---- */

typedef struct {
    int      server_no_context_takeover;
    int      client_no_context_takeover;
    unsigned server_max_window_bits;    /* 8..15 */
    unsigned client_max_window_bits;    /* 8..15 */
} tt_ws_deflate;

/* Pick the first permessage-deflate offer of a Sec-WebSocket-Extensions
 * value that we can accept, and write the response's extension into resp
 * (NUL-terminated). own_bits (9..15) caps the window of what the server
 * compresses, and of what the client compresses when its offer lets the
 * server choose (client_max_window_bits without a value): the memory each
 * connection costs; 15 or more: no cap. Returns 1 when one was accepted, 0 when none was offered
 * or none is acceptable (the connection goes on without compression), -1
 * when the header is malformed. */
int tt_ws_deflate_negotiate(const char *value, size_t len, unsigned own_bits,
                            tt_ws_deflate *out, char *resp, size_t resp_size);

#endif
