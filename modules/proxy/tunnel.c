/* After the upstream's 101: bytes both ways, unchanged, until a side closes
 * or nothing passes for the websocket section's idle_timeout.
 *
 * tutti does not parse the frames of a proxied WebSocket: the upstream
 * speaks the protocol, and a proxy that re-framed would only add a copy and
 * a second idea of the rules. Backpressure is the same as for bodies: a
 * slow client stops the upstream read, a slow upstream stops the client
 * read. A side's FIN is passed on as a FIN (half-close), the way TCP
 * proxies do, so a protocol that closes one way at a time still works.
 */
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <tutti/websocket.h>
#include "relay.h"

#define PX_TUNNEL_HIGH (256 * 1024)

static void touch(px_req *x)
{
    x->last_use_ms = px_now_ms();
}

/* Both sides are done, or the tunnel failed: the client connection closes
 * once its output is out; the close hook closes the upstream. */
static void tunnel_end(px_req *x)
{
    if (x->done)
        return;
    x->done = 1;
    px_relay_drop(x);
    px_relay_log_time(x);
    px_api->finish(x->r);
}

static void idle_check(evutil_socket_t fd, short what, void *arg)
{
    px_req *x = arg;
    (void)fd;
    (void)what;
    uint64_t idle = px_now_ms() - x->last_use_ms;
    if (idle >= x->idle_ms) {
        px_api->log(TT_LOG_INFO, "proxy %s: tunnel idle for %llu ms, closed (%s)",
                    x->peer->name, (unsigned long long)idle, x->r->target);
        tunnel_end(x);
        return;
    }
    uint64_t rest = x->idle_ms - idle;
    struct timeval tv = { (time_t)(rest / 1000), (suseconds_t)(rest % 1000) * 1000 };
    evtimer_add(x->idle_ev, &tv);
}

/* Upstream -> client. */
void px_tunnel_up_read(px_req *x)
{
    if (x->done || x->up == NULL)
        return;
    struct evbuffer *in = x->up->io.in;
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (px_api->write(x->r, v.iov_base, v.iov_len) != 0) {
            tunnel_end(x);
            return;
        }
        evbuffer_drain(in, v.iov_len);
        touch(x);
    }
    if (px_api->pending(x->r) > PX_TUNNEL_HIGH) {
        px_io_read(&x->up->io, 0);
        px_api->on_drain(x->r, px_relay_client_drained, x);
    }
}

/* Client -> upstream. */
static void client_data(tt_request *r, const char *data, size_t len, int status, void *arg)
{
    px_req *x = arg;
    (void)r;

    if (x->done || x->up == NULL)
        return;
    if (status == TT_BODY_ERROR) {
        tunnel_end(x);
        return;
    }
    struct evbuffer *out = x->up->io.out;
    if (len > 0) {
        evbuffer_add(out, data, len);
        px_io_flush(&x->up->io);
        touch(x);
    }
    if (status == TT_BODY_END) {
        x->client_eof = 1;
        if (x->up_eof) {
            tunnel_end(x);
            return;
        }
        if (evbuffer_get_length(out) == 0)
            shutdown(x->up->io.fd, SHUT_WR);
        return;
    }
    if (evbuffer_get_length(out) > PX_TUNNEL_HIGH && !x->body_paused) {
        x->body_paused = 1;
        px_api->pause_body(x->r, 1);
    }
}

void px_tunnel_drained(px_req *x)
{
    if (x->done || x->up == NULL)
        return;
    if (x->client_eof) {
        shutdown(x->up->io.fd, SHUT_WR);
        return;
    }
    if (x->body_paused) {
        x->body_paused = 0;
        x->busy++;
        px_api->pause_body(x->r, 0);
        px_call_end(x);
    }
}

void px_tunnel_up_event(px_req *x, short what)
{
    if (x->done)
        return;
    if ((what & PX_IO_EOF) && !(what & PX_IO_ERROR)) {
        px_tunnel_up_read(x);
        if (x->done)
            return;
        x->up_eof = 1;
        /* the upstream is done talking; the client gets the rest and a
         * close (a WebSocket's closing handshake has happened by now) */
        tunnel_end(x);
        return;
    }
    if (what & PX_IO_TIMEOUT) {
        /* a write to the upstream stalled for send_timeout */
        px_api->log(TT_LOG_ERROR, "proxy %s: tunnel: the upstream took nothing for %llu ms "
                    "(%s)", x->peer->name, (unsigned long long)x->cf->send_ms, x->r->target);
    }
    tunnel_end(x);
}

int px_tunnel_start(px_req *x, const px_head *h, struct evbuffer *in, long hlen)
{
    tt_header hs[PX_MAX_HEADERS + 8];
    size_t n = px_client_headers(x, h, hs, PX_MAX_HEADERS + 8, 1);
    if (px_api->upgrade(x->r, hs, n) != 0) {
        px_relay_fail(x, "the client's connection cannot be upgraded");
        return -1;
    }
    evbuffer_drain(in, (size_t)hlen);
    x->tunnel = 1;
    x->head_done = 1;
    px_peer_ok(x->peer);

    const tt_ws_api *ws = px_api->module_exports("websocket");
    x->idle_ms = ws != NULL && ws->version == TT_WS_API_VERSION && ws->idle_timeout_ms != NULL
                 ? ws->idle_timeout_ms() : 120 * 1000;
    touch(x);
    if (x->idle_ms > 0) {
        x->idle_ev = evtimer_new(px_api->event_base(), idle_check, x);
        if (x->idle_ev != NULL) {
            struct timeval tv = { (time_t)(x->idle_ms / 1000),
                                  (suseconds_t)(x->idle_ms % 1000) * 1000 };
            evtimer_add(x->idle_ev, &tv);
        }
    }
    /* no read timeout: the protocol keeps its own; send_timeout stays */
    px_io_timeouts(&x->up->io, 0, x->cf->send_ms);
    px_io_read(&x->up->io, 1);

    /* bytes the upstream sent behind its 101 go first */
    px_tunnel_up_read(x);
    if (x->done)
        return 0;
    x->busy++;
    px_api->read_body(x->r, client_data, x);    /* may deliver at once */
    px_call_end(x);
    return 1;                   /* x may be gone */
}

void px_tunnel_free(px_req *x)
{
    if (x->idle_ev != NULL) {
        event_free(x->idle_ev);
        x->idle_ev = NULL;
    }
}
