/* websocket — one session on an upgraded connection.
 *
 * Bytes from the client go through wslay's frame parser (which unmasks and
 * rejects malformed frame headers); the rules of messages live here:
 * fragments, control frames between them, RSV1 for compressed messages
 * only, UTF-8 in text, max_message after inflating, close codes. The first
 * violation fails the connection with the RFC's code: a close frame, then
 * the TCP close. Frames out go through wslay's frame writer straight into
 * the connection's output. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/event.h>
#include "ws.h"

#define api ws_api

struct tt_ws {
    tt_request            *r;
    const ws_conf         *conf;
    const tt_ws_handler   *h;
    void                  *arg;
    wslay_frame_context_ptr fr;

    /* the piece of input being parsed (the core's, during a callback) */
    const uint8_t         *in;
    size_t                 in_len;
    uint8_t               *stash;       /* input kept while paused */
    size_t                 stash_len;

    /* the frame being received */
    int                    in_frame;
    int                    frame_op;
    uint64_t               frame_len, frame_off;

    /* the data message being assembled */
    int                    msg_op;      /* 0: none in progress */
    int                    msg_deflated;
    uint8_t               *msg;
    size_t                 msg_len, msg_cap;
    tt_ws_utf8             utf8;

    /* the control frame being received (at most 125 bytes) */
    uint8_t                ctl[128];
    size_t                 ctl_len;

    int                    deflate;     /* permessage-deflate negotiated */
    tt_ws_deflate          pmd;         /* its parameters */
    ws_zstream             zin, zout;   /* made on first use: ~11 and ~38 KiB */

    struct event          *timer;
    uint64_t               last_data_ms;/* a data message either way */
    uint64_t               ping_sent_ms;/* 0: none unanswered */
    uint64_t               close_sent_ms;

    unsigned               close_sent:1;
    unsigned               failed:1;    /* no more input is looked at */
    unsigned               done:1;      /* on_close delivered */
    unsigned               paused:1;
    unsigned               in_recv:1;
    unsigned               want_drain:1;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ws_close_code_ok(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return 1;
    /* 1004-1006 and 1015 are never sent; 1012-1014 are IANA-registered */
    return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

/* ---------------------------------------------------------------- frames out */

static ssize_t frame_out(const uint8_t *data, size_t len, int flags, void *user)
{
    tt_ws *ws = user;
    if (api->write(ws->r, data, len) != 0)
        return -1;
    return (ssize_t)len;
}

static ssize_t frame_in(uint8_t *buf, size_t len, int flags, void *user)
{
    tt_ws *ws = user;
    if (ws->in_len == 0)
        return -1;              /* wslay: want read */
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static int genmask(uint8_t *buf, size_t len, void *user)
{
    return -1;                  /* a server never masks */
}

static const struct wslay_frame_callbacks frame_cbs = { frame_out, frame_in, genmask };

static int send_frame(tt_ws *ws, int op, int rsv1, const void *data, size_t len)
{
    struct wslay_frame_iocb io = {
        .fin = 1, .rsv = rsv1 ? WSLAY_RSV1_BIT : 0, .opcode = (uint8_t)op, .mask = 0,
        .payload_length = len, .data = data, .data_length = len,
    };
    /* the output takes everything at once: one call writes the frame */
    ssize_t n = wslay_frame_send(ws->fr, &io);
    return n < 0 || (size_t)n != len ? -1 : 0;
}

static void send_close(tt_ws *ws, int code, const char *reason, size_t len)
{
    uint8_t p[125];
    size_t n = 0;

    if (ws->close_sent)
        return;
    ws->close_sent = 1;
    ws->close_sent_ms = now_ms();
    if (code != 0) {
        if (len > sizeof(p) - 2)
            len = sizeof(p) - 2;
        uint16_t be = htons((uint16_t)code);
        memcpy(p, &be, 2);
        if (len > 0)
            memcpy(p + 2, reason, len);
        n = 2 + len;
    }
    send_frame(ws, WSLAY_CONNECTION_CLOSE, 0, p, n);
}

/* ---------------------------------------------------------------- the end */

static void deliver_close(tt_ws *ws, int code, const char *reason, size_t len)
{
    if (ws->done)
        return;
    ws->done = 1;
    if (ws->h->on_close)
        ws->h->on_close(ws, code, reason, len, ws->arg);
}

/* The connection breaks off with a close code: the frame goes out (if ours
 * is not already), the handler hears of it, the TCP connection closes
 * once the output is written. */
static void fail(tt_ws *ws, int code, const char *why)
{
    if (ws->failed)
        return;
    ws->failed = 1;
    api->log(TT_LOG_INFO, "websocket %s:%d: closing with %d: %s", ws->r->remote_addr,
             ws->r->remote_port, code, why);
    send_close(ws, code, why, strlen(why));
    deliver_close(ws, code, why, strlen(why));
    api->finish(ws->r);
}

/* ---------------------------------------------------------------- messages in */

static int msg_append(tt_ws *ws, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (ws->msg_len + n > ws->msg_cap) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 4096;
        while (cap < ws->msg_len + n)
            cap *= 2;
        uint8_t *nb = realloc(ws->msg, cap);
        if (nb == NULL)
            return -1;
        ws->msg = nb;
        ws->msg_cap = cap;
    }
    memcpy(ws->msg + ws->msg_len, p, n);
    ws->msg_len += n;
    return 0;
}

static void msg_reset(tt_ws *ws)
{
    ws->msg_op = 0;
    ws->msg_len = 0;
    ws->msg_deflated = 0;
    memset(&ws->utf8, 0, sizeof(ws->utf8));
    if (ws->msg_cap > 256 * 1024) {         /* a big message's buffer goes */
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = 0;
    }
}

/* A frame header: the rules wslay leaves to us. 0, or the session failed. */
static int frame_start(tt_ws *ws, const struct wslay_frame_iocb *io)
{
    int op = io->opcode;
    int rsv1 = (io->rsv & WSLAY_RSV1_BIT) != 0;

    if (!io->mask) {
        fail(ws, 1002, "client frames must be masked");
        return -1;
    }
    if ((io->rsv & ~WSLAY_RSV1_BIT) != 0 || (rsv1 && !ws->deflate)) {
        fail(ws, 1002, "reserved bits set");
        return -1;
    }
    ws->in_frame = 1;
    ws->frame_op = op;
    ws->frame_len = io->payload_length;
    ws->frame_off = 0;
    switch (op) {
    case WSLAY_PING: case WSLAY_PONG: case WSLAY_CONNECTION_CLOSE:
        if (rsv1) {
            fail(ws, 1002, "a control frame cannot be compressed");
            return -1;
        }
        ws->ctl_len = 0;        /* wslay checked: <= 125 bytes, not fragmented */
        return 0;
    case WSLAY_TEXT_FRAME: case WSLAY_BINARY_FRAME:
        if (ws->msg_op != 0) {
            fail(ws, 1002, "a new message began inside a fragmented one");
            return -1;
        }
        ws->msg_op = op;
        ws->msg_deflated = rsv1;
        break;
    case WSLAY_CONTINUATION_FRAME:
        if (ws->msg_op == 0) {
            fail(ws, 1002, "a continuation frame without a message");
            return -1;
        }
        if (rsv1) {
            fail(ws, 1002, "RSV1 on a continuation frame");
            return -1;
        }
        break;
    default:
        fail(ws, 1002, "unknown opcode");
        return -1;
    }
    /* before reading a byte of it: a message too big for max_message */
    if (!ws->msg_deflated && ws->msg_len + io->payload_length > ws->conf->max_message) {
        fail(ws, 1009, "message too big");
        return -1;
    }
    return 0;
}

static int data_piece(tt_ws *ws, const uint8_t *p, size_t n, int last)
{
    if (ws->msg_deflated && !ws->zin.ready &&
        ws_inflate_init(&ws->zin, ws->pmd.client_max_window_bits,
                        ws->pmd.client_no_context_takeover) != 0) {
        fail(ws, 1011, "out of memory");
        return -1;
    }
    if (ws->msg_deflated) {
        int rc = ws_inflate(&ws->zin, p, n, last, &ws->msg, &ws->msg_len, &ws->msg_cap,
                            ws->conf->max_message);
        if (rc == -2) {
            fail(ws, 1009, "message too big");
            return -1;
        }
        if (rc != 0) {
            fail(ws, 1007, "corrupt compressed data");
            return -1;
        }
        return 0;
    }
    if (ws->msg_op == WSLAY_TEXT_FRAME && tt_ws_utf8_feed(&ws->utf8, p, n) != 0) {
        fail(ws, 1007, "invalid UTF-8 in a text message");
        return -1;
    }
    if (msg_append(ws, p, n) != 0) {
        fail(ws, 1011, "out of memory");
        return -1;
    }
    return 0;
}

static void message_done(tt_ws *ws)
{
    if (ws->msg_op == WSLAY_TEXT_FRAME) {
        if (ws->msg_deflated && tt_ws_utf8_feed(&ws->utf8, ws->msg, ws->msg_len) != 0) {
            fail(ws, 1007, "invalid UTF-8 in a text message");
            return;
        }
        if (!tt_ws_utf8_complete(&ws->utf8)) {
            fail(ws, 1007, "invalid UTF-8 in a text message");
            return;
        }
    }
    int type = ws->msg_op == WSLAY_TEXT_FRAME ? TT_WS_TEXT : TT_WS_BINARY;
    ws->last_data_ms = now_ms();
    if (!ws->close_sent && ws->h->on_message)
        ws->h->on_message(ws, type, ws->msg ? (const char *)ws->msg : "", ws->msg_len,
                          ws->arg);             /* never NULL, even when empty */
    msg_reset(ws);
}

static void control_done(tt_ws *ws)
{
    switch (ws->frame_op) {
    case WSLAY_PING:
        if (!ws->close_sent)
            send_frame(ws, WSLAY_PONG, 0, ws->ctl, ws->ctl_len);
        return;
    case WSLAY_PONG:
        ws->ping_sent_ms = 0;
        return;
    }
    /* a close frame: check it, answer it (echoing the code), end */
    unsigned code = 1005;
    const char *reason = "";
    size_t rlen = 0;
    if (ws->ctl_len == 1) {
        fail(ws, 1002, "a close frame of one byte");
        return;
    }
    if (ws->ctl_len >= 2) {
        code = (unsigned)ws->ctl[0] << 8 | ws->ctl[1];
        if (!ws_close_code_ok(code)) {
            fail(ws, 1002, "invalid close code");
            return;
        }
        tt_ws_utf8 st = { 0 };
        reason = (const char *)ws->ctl + 2;
        rlen = ws->ctl_len - 2;
        if (tt_ws_utf8_feed(&st, (const uint8_t *)reason, rlen) != 0 ||
            !tt_ws_utf8_complete(&st)) {
            fail(ws, 1007, "invalid UTF-8 in the close reason");
            return;
        }
    }
    ws->failed = 1;             /* nothing after a close frame counts */
    send_close(ws, code == 1005 ? 1000 : (int)code, "", 0);
    char copy[128];
    memcpy(copy, reason, rlen);
    deliver_close(ws, (int)code, copy, rlen);
    api->finish(ws->r);
}

/* Parse what ws->in holds until it is used up, the session pauses, or
 * fails. */
static void parse(tt_ws *ws)
{
    ws->in_recv = 1;
    while (!ws->failed && !ws->paused) {
        struct wslay_frame_iocb io;
        memset(&io, 0, sizeof(io));
        ssize_t n = wslay_frame_recv(ws->fr, &io);
        if (n == WSLAY_ERR_WANT_READ)
            break;
        if (n < 0) {
            fail(ws, 1002, n == WSLAY_ERR_PROTO ? "malformed frame" : "frame error");
            break;
        }
        if (!ws->in_frame && frame_start(ws, &io) != 0)
            break;
        ws->frame_off += io.data_length;
        int frame_end = ws->frame_off == ws->frame_len;
        if (ws->frame_op >= 8) {
            memcpy(ws->ctl + ws->ctl_len, io.data, io.data_length);
            ws->ctl_len += io.data_length;
        } else if (data_piece(ws, io.data, io.data_length, frame_end && io.fin) != 0) {
            break;
        }
        if (!frame_end)
            continue;
        ws->in_frame = 0;
        if (ws->frame_op >= 8)
            control_done(ws);
        else if (io.fin)
            message_done(ws);
    }
    ws->in_recv = 0;
}

/* Input left when the session paused mid-piece is kept for the resume. */
static void stash_rest(tt_ws *ws)
{
    if (ws->in_len == 0 || ws->failed)
        return;
    uint8_t *nb = realloc(ws->stash, ws->stash_len + ws->in_len);
    if (nb == NULL) {
        fail(ws, 1011, "out of memory");
        return;
    }
    memcpy(nb + ws->stash_len, ws->in, ws->in_len);
    ws->stash = nb;
    ws->stash_len += ws->in_len;
    ws->in_len = 0;
}

static void on_bytes(tt_request *r, const char *data, size_t len, int status, void *arg)
{
    tt_ws *ws = arg;

    if (status != TT_BODY_DATA) {
        /* the client closed the connection (or it failed) */
        if (!ws->done)
            deliver_close(ws, 1006, "", 0);
        ws->failed = 1;
        api->finish(r);
        return;
    }
    if (ws->failed)
        return;
    if (ws->paused) {           /* bytes the core had before our pause */
        ws->in = (const uint8_t *)data;
        ws->in_len = len;
        stash_rest(ws);
        return;
    }
    ws->in = (const uint8_t *)data;
    ws->in_len = len;
    parse(ws);
    stash_rest(ws);
}

/* ---------------------------------------------------------------- timers */

static void arm(tt_ws *ws, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    evtimer_add(ws->timer, &tv);
}

static void schedule(tt_ws *ws)
{
    uint64_t now = now_ms(), next = UINT64_MAX;

    if (ws->close_sent) {
        uint64_t at = ws->close_sent_ms + WS_CLOSE_WAIT_MS;
        next = at > now ? at - now : 1;
    } else {
        if (ws->conf->idle_ms > 0) {
            uint64_t at = ws->last_data_ms + ws->conf->idle_ms;
            next = at > now ? at - now : 1;
        }
        if (ws->conf->ping_ms > 0 && ws->conf->ping_ms < next)
            next = ws->conf->ping_ms;
    }
    if (next != UINT64_MAX)
        arm(ws, next);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    tt_ws *ws = arg;
    uint64_t now = now_ms();

    if (ws->close_sent) {
        if (now >= ws->close_sent_ms + WS_CLOSE_WAIT_MS) {
            /* the peer never answered our close */
            deliver_close(ws, 1006, "", 0);
            ws->failed = 1;
            api->finish(ws->r);
            return;
        }
    } else if (ws->conf->idle_ms > 0 && now >= ws->last_data_ms + ws->conf->idle_ms) {
        fail(ws, 1001, "idle timeout");
        return;
    } else if (ws->conf->ping_ms > 0 && now >= ws->ping_sent_ms + ws->conf->ping_ms) {
        if (ws->ping_sent_ms != 0) {
            fail(ws, 1011, "ping not answered");
            return;
        }
        ws->ping_sent_ms = now;
        send_frame(ws, WSLAY_PING, 0, "tutti", 5);
    }
    schedule(ws);
}

/* ---------------------------------------------------------------- life */

static void drained(tt_request *r, void *arg)
{
    tt_ws *ws = arg;
    if (!ws->want_drain || ws->done)
        return;
    if (api->pending(r) > WS_OUT_LOW) {
        api->on_drain(r, drained, ws);
        return;
    }
    ws->want_drain = 0;
    if (ws->h->on_drain)
        ws->h->on_drain(ws, ws->arg);
}

static void stopping(tt_request *r, void *arg)
{
    tt_ws *ws = arg;
    ws_session_close(ws, 1001, "server shutting down", 20);
}

static void closed(tt_request *r, void *arg)
{
    tt_ws *ws = arg;
    deliver_close(ws, 1006, "", 0);
    if (ws->timer)
        event_free(ws->timer);
    if (ws->fr)
        wslay_frame_context_free(ws->fr);
    ws_zstream_free(&ws->zin, 1);
    ws_zstream_free(&ws->zout, 0);
    free(ws->msg);
    free(ws->stash);
    free(ws);
}

tt_ws *ws_session_new(tt_request *r, const tt_ws_deflate *pmd, const tt_ws_handler *h,
                      void *arg)
{
    tt_ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL)
        return NULL;
    ws->r = r;
    ws->conf = ws_conf_running;
    ws->h = h;
    ws->arg = arg;
    ws->last_data_ms = now_ms();
    if (wslay_frame_context_init(&ws->fr, &frame_cbs, ws) != 0)
        goto fail;
    if (pmd != NULL) {
        ws->pmd = *pmd;
        ws->deflate = 1;
    }
    ws->timer = evtimer_new(api->event_base(), tick, ws);
    if (ws->timer == NULL)
        goto fail;
    api->on_close(r, closed, ws);       /* from here the request frees it */
    return ws;
fail:
    closed(r, ws);
    return NULL;
}

/* The 101 is out: hooks on, bytes in, timers running. */
int ws_session_start(tt_ws *ws)
{
    api->on_stop(ws->r, stopping, ws);
    schedule(ws);
    return api->read_body(ws->r, on_bytes, ws);
}

int ws_session_send(tt_ws *ws, int type, const void *data, size_t len)
{
    if (ws->close_sent || ws->done)
        return -1;
    int op = type == TT_WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME;
    int rc;
    /* small messages do not gain from compression; RFC 7692 lets each
     * message choose */
    if (ws->deflate && len >= 64 && !ws->zout.ready &&
        ws_deflate_init(&ws->zout, ws->pmd.server_max_window_bits,
                        ws->pmd.server_no_context_takeover) != 0)
        return -1;
    if (ws->deflate && len >= 64) {
        uint8_t *z;
        size_t zlen;
        if (ws_deflate(&ws->zout, data, len, &z, &zlen) != 0)
            return -1;
        rc = send_frame(ws, op, 1, z, zlen);
        free(z);
    } else {
        rc = send_frame(ws, op, 0, data, len);
    }
    if (rc != 0)
        return -1;
    ws->last_data_ms = now_ms();
    if (api->pending(ws->r) <= WS_OUT_HIGH)
        return 0;
    if (!ws->want_drain) {
        ws->want_drain = 1;
        api->on_drain(ws->r, drained, ws);
    }
    return 1;
}

int ws_session_close(tt_ws *ws, int code, const char *reason, size_t len)
{
    if (ws->close_sent || ws->done)
        return -1;
    if (len > 123)
        len = 123;
    send_close(ws, code, reason, len);
    /* go on reading for the peer's answer; on_close comes with it */
    schedule(ws);
    return 0;
}

void ws_session_pause(tt_ws *ws, int paused)
{
    if (ws->paused == !!paused || ws->done)
        return;
    ws->paused = !!paused;
    if (paused) {
        api->pause_body(ws->r, 1);
        return;
    }
    if (!ws->in_recv) {
        /* what was kept goes first, before the core delivers more; wslay
         * may hold whole frames read before the pause, so parse even when
         * nothing was kept */
        uint8_t *kept = ws->stash;
        size_t n = ws->stash_len;
        ws->stash = NULL;
        ws->stash_len = 0;
        ws->in = kept;
        ws->in_len = n;
        parse(ws);
        stash_rest(ws);
        free(kept);
        if (ws->paused || ws->done)
            return;
    }
    api->pause_body(ws->r, 0);
}

void ws_session_abandon(tt_ws *ws)
{
    ws->done = 1;               /* never started: the handler hears nothing */
    ws->failed = 1;
}

size_t ws_session_pending(const tt_ws *ws)
{
    return ws->done ? 0 : api->pending(ws->r);
}

tt_request *ws_session_request(tt_ws *ws)
{
    return ws->r;
}
