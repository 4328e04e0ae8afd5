/* websocket — the module's insides.
 *
 * Files: ws.c (the module, the `websocket:` section, the handshake),
 * session.c (a session on an upgraded connection: frames in through
 * wslay's frame parser, messages assembled and checked here, frames out,
 * the closing handshake, timers), deflate.c (permessage-deflate with zlib),
 * wsproto.c (pure rules: accept key, tokens, UTF-8, the extension offer).
 *
 * Why wslay's frame layer and not its event layer: the event layer answers
 * a frame-level protocol error (a control frame over 125 bytes or
 * fragmented, a non-minimal length) with a close frame without a status
 * code instead of 1002, checks max_message against the compressed size
 * only, and copies every message twice. Its frame layer parses and
 * unmasks frames and reports those errors, and the rules above it live
 * here. */
#ifndef TT_WS_H
#define TT_WS_H

#include "config.h"
#include <stdint.h>
#include <zlib.h>
#include <wslay/wslay.h>
#include <tutti/tutti.h>
#include <tutti/websocket.h>
#include "wsproto.h"

extern const tt_api *ws_api;

typedef struct {
    uint64_t max_message;       /* bytes, after inflating */
    uint64_t idle_ms;           /* no data message either way: close 1001; 0 = never */
    uint64_t ping_ms;           /* ping this often; unanswered by the next: 1011 */
    int      compression;       /* accept permessage-deflate offers */
} ws_conf;

extern const ws_conf *ws_conf_running;

/* output over this waits for on_drain (send returns 1) */
#define WS_OUT_HIGH (256 * 1024)
#define WS_OUT_LOW  (64 * 1024)
/* What the server compresses with: a 4 KiB window and zlib's memLevel 5,
 * about 32 KiB per connection instead of ~260 KiB with zlib's defaults
 * (the `websockets` library makes the same trade) */
#define WS_DEFLATE_BITS 12
#define WS_DEFLATE_MEMLEVEL 5
/* how long the peer has to answer our close frame */
#define WS_CLOSE_WAIT_MS 5000

/* deflate.c: one direction of permessage-deflate */
typedef struct {
    z_stream z;
    int      ready;
    int      no_takeover;       /* reset after every message */
} ws_zstream;

int  ws_inflate_init(ws_zstream *s, unsigned window_bits, int no_takeover);
int  ws_deflate_init(ws_zstream *s, unsigned window_bits, int no_takeover);
void ws_zstream_free(ws_zstream *s, int inflating);
/* Inflate a piece of a message, appending to *buf (grown with realloc);
 * last: the message's final piece (the RFC 7692 tail is added). -1 on a
 * corrupt stream, -2 when the result would pass max bytes. */
int  ws_inflate(ws_zstream *s, const uint8_t *in, size_t n, int last,
                uint8_t **buf, size_t *len, size_t *cap, uint64_t max);
/* Compress a whole message into *out (malloc'ed, caller frees). */
int  ws_deflate(ws_zstream *s, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen);

/* session.c */
tt_ws *ws_session_new(tt_request *r, const tt_ws_deflate *pmd, const tt_ws_handler *h,
                      void *arg);
int    ws_session_start(tt_ws *ws);    /* after the 101 is queued */
void   ws_session_abandon(tt_ws *ws);  /* the upgrade failed */
int    ws_session_send(tt_ws *ws, int type, const void *data, size_t len);
int    ws_session_close(tt_ws *ws, int code, const char *reason, size_t len);
void   ws_session_pause(tt_ws *ws, int paused);
size_t ws_session_pending(const tt_ws *ws);
tt_request *ws_session_request(tt_ws *ws);
/* a close code a peer may send (RFC 6455 7.4) */
int    ws_close_code_ok(unsigned code);

#endif
