/* A request's way through the proxy: pick an upstream, connect or reuse,
 * send the head and stream the body, read the answer's head, stream its
 * body back, give the connection back to the pool.
 *
 * Failures before anything reached the client may go to the next upstream
 * (doc/proxy.md, "Balancing and failures"); after that, the client's
 * connection is cut so a partial answer never looks complete.
 *
 * Memory: the request's state is malloc'd and freed by the request's close
 * hook, or right after the call in which that hook ran: read_body and a
 * resumed body read client input at once, and bad input can end the
 * request inside them (x->busy, px_call_end). Upstream connections are
 * malloc'd too: they outlive requests in the pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include "relay.h"

#define PX_HEAD_MAX     (32 * 1024)     /* a bigger upstream head is a 502 */
#define PX_BODY_HIGH    (256 * 1024)    /* request bytes queued to the upstream */
#define PX_UNBUFFERED   (16 * 1024)     /* buffering: false read-ahead */

static void up_read(px_io *io, void *arg);
static void up_write(px_io *io, void *arg);
static void up_event(px_io *io, short what, void *arg);
static void start_attempt(px_req *x);
static void request_flushed(px_req *x);

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int idempotent(const tt_request *r)
{
    static const char *const m[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", NULL };
    for (int i = 0; m[i] != NULL; i++)
        if (strcmp(r->method, m[i]) == 0)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- the access log */

static void list_add(char *list, size_t cap, const char *item)
{
    size_t len = strlen(list);
    snprintf(list + len, cap - len, "%s%s", len ? ", " : "", item);
}

static void log_time(px_req *x)
{
    char t[32];
    uint64_t us = now_usec() - x->t_start;
    snprintf(t, sizeof(t), "%llu.%03llu", (unsigned long long)(us / 1000000),
             (unsigned long long)(us / 1000 % 1000));
    px_api->log_field(x->r, "upstream_time", t);
}

static void log_status(px_req *x, int status)
{
    char s[8];
    snprintf(s, sizeof(s), "%d", status);
    list_add(x->statuses, sizeof(x->statuses), s);
    px_api->log_field(x->r, "upstream_status", x->statuses);
}

/* ---------------------------------------------------------------- ending */

/* This attempt's connection is done with: back to the pool or closed. */
static void drop_conn(px_req *x, int reusable)
{
    if (x->up == NULL)
        return;
    x->peer->active--;
    if (reusable)
        px_conn_release(x->up, 1);
    else
        px_conn_close(x->up);
    x->up = NULL;
}

static void respond_error(px_req *x, int status)
{
    char body[64];
    int len = snprintf(body, sizeof(body), "%d %s\n", status,
                       status == 504 ? "Gateway Timeout" : "Bad Gateway");
    drop_conn(x, 0);
    log_time(x);
    x->done = 1;
    px_api->respond(x->r, status, "text/plain; charset=utf-8", body, (size_t)len);
}

/* The response head is out, its body will not complete. */
static void cut(px_req *x, const char *why)
{
    px_api->log(TT_LOG_ERROR, "proxy %s: %s after %llu bytes of the response (%s %s)",
                x->peer->name, why, (unsigned long long)x->body_out, x->r->method,
                x->r->target);
    drop_conn(x, 0);
    log_time(x);
    x->done = 1;
    px_api->abort(x->r);
}

static void response_done(px_req *x)
{
    /* reusable: the upstream keeps it open, the exchange is complete both
     * ways, nothing extra came */
    int reusable = !x->up_close && x->framing != PX_FRAME_CLOSE && !x->upgrade &&
                   (!x->r->has_body || x->body_done) &&
                   evbuffer_get_length(x->up->io.in) == 0;
    px_peer_ok(x->peer);
    drop_conn(x, reusable);
    log_time(x);
    x->done = 1;
    if (x->body_paused) {
        /* answered before the whole body came (a 413 of the upstream's):
         * let the core read and drop the rest, which body_cb now ignores */
        x->body_paused = 0;
        x->busy++;
        px_api->pause_body(x->r, 0);
        if (px_call_end(x) != 0)
            return;
    }
    px_api->finish(x->r);
}

/* A try failed before the client saw anything. kind is PX_NEXT_ERROR or
 * PX_NEXT_TIMEOUT (or a PX_NEXT_50x for a bad status); sent: the request
 * may have reached the upstream, so only a safe one goes elsewhere. */
static void attempt_failed(px_req *x, unsigned kind, int sent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void attempt_failed(px_req *x, unsigned kind, int sent, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);

    /* a connect that timed out is a 502, as the issue and doc/proxy.md
     * have it (nginx says 504): no upstream could be reached at all */
    int status = kind == PX_NEXT_TIMEOUT ? (x->connected ? 504 : 502)
               : kind == PX_NEXT_503 ? 503 : kind == PX_NEXT_504 ? 504 : 502;
    px_api->log(TT_LOG_ERROR, "proxy %s: %s (%s %s)", x->peer->name, why, x->r->method,
                x->r->target);
    /* a pooled connection that died under a request says nothing about
     * the upstream's health (it closed an idle connection, as it may) */
    int stale = kind == PX_NEXT_ERROR && x->up != NULL && x->up->reused && !x->got_bytes;
    if (!stale && (kind == PX_NEXT_ERROR || kind == PX_NEXT_TIMEOUT ||
                   (x->cf->next_upstream & kind)))
        px_peer_failed(x->peer);
    if (!(kind & (PX_NEXT_502 | PX_NEXT_503 | PX_NEXT_504)))
        log_status(x, status);
    /* a 502/503/504 the upstream sent goes to the client as 502 only if
     * no other upstream can answer: on_head passed it through otherwise */
    x->last_status = kind & (PX_NEXT_503 | PX_NEXT_504) ? 502 : status;
    drop_conn(x, 0);

    int safe = !sent || (idempotent(x->r) && x->body_consumed == 0);
    unsigned max = x->cf->tries ? x->cf->tries : (unsigned)x->cf->group.npeers;
    if ((x->cf->next_upstream & kind) && safe && x->tries < max) {
        start_attempt(x);
        return;
    }
    respond_error(x, status);
}

/* ---------------------------------------------------------------- the request */

static void send_body_bytes(px_req *x, const char *data, size_t len)
{
    struct evbuffer *out = x->up->io.out;
    if (x->r->chunked && !x->upgrade && len > 0) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        evbuffer_add(out, size, (size_t)n);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else if (len > 0) {
        evbuffer_add(out, data, len);
    }
}

static void body_cb(tt_request *r, const char *data, size_t len, int status, void *arg)
{
    px_req *x = arg;
    (void)r;

    if (status == TT_BODY_ERROR) {
        /* the client left or broke the body: the core answers it (408,
         * 413, 400) or is closing; this upstream exchange is void */
        x->body_error = 1;
        if (!x->done && x->up != NULL) {
            px_api->log(TT_LOG_INFO, "proxy %s: the client's body did not complete (%s %s)",
                        x->peer->name, x->r->method, x->r->target);
            drop_conn(x, 0);
        }
        x->done = 1;
        return;
    }
    x->body_consumed += len;
    if (x->up == NULL || x->done)
        return;                 /* answered already (an early response): drop */
    send_body_bytes(x, data, len);
    if (status == TT_BODY_END) {
        x->body_done = 1;
        if (x->r->chunked)
            evbuffer_add(x->up->io.out, "0\r\n\r\n", 5);
    }
    px_io_flush(&x->up->io);
    size_t queued = evbuffer_get_length(x->up->io.out);
    if (queued > PX_BODY_HIGH && !x->body_paused) {
        x->body_paused = 1;
        px_api->pause_body(x->r, 1);
    } else if (queued == 0 && x->body_done && !x->sent) {
        request_flushed(x);
    }
}

/* Everything of the request is written: from now on the upstream's
 * silence counts against read_timeout. */
static void request_flushed(px_req *x)
{
    x->sent = 1;
    px_io_timeouts(&x->up->io, x->cf->read_ms, x->cf->send_ms);
}

static void send_request(px_req *x)
{
    px_io *io = &x->up->io;
    struct evbuffer *out = io->out;

    x->up->requests++;
    /* no read timeout while the request is going out: a long upload is
     * not the upstream being slow; it starts once all of it is sent */
    px_io_timeouts(io, 0, x->cf->send_ms);
    px_io_read(io, 1);
    /* straight to the socket: on a pooled connection the kernel takes the
     * whole head, and no write event is armed */
    px_request_head(x->cf, x->r, x->peer, x->upgrade, out);
    px_io_flush(io);
    if (!x->r->has_body || x->upgrade) {
        if (evbuffer_get_length(out) == 0)
            request_flushed(x);
        return;
    }
    if (!x->body_started) {
        x->body_started = 1;
        x->busy++;
        px_api->read_body(x->r, body_cb, x);    /* may deliver at once */
        px_call_end(x);
    } else if (x->body_done && x->r->chunked) {
        /* a retry of a body that was empty */
        evbuffer_add(out, "0\r\n\r\n", 5);
    } else if (x->body_paused) {
        x->body_paused = 0;
        x->busy++;
        px_api->pause_body(x->r, 0);
        px_call_end(x);
    }
    /* x may be gone here */
}

/* The output to the upstream drained. */
static void up_write(px_io *io, void *arg)
{
    px_req *x = arg;
    (void)io;

    if (x->tunnel) {
        px_tunnel_drained(x);
        return;
    }
    if (x->body_paused && !x->body_error) {
        x->body_paused = 0;
        x->busy++;
        px_api->pause_body(x->r, 0);        /* may refill the output at once */
        if (px_call_end(x) != 0 || x->up == NULL || x->done)
            return;
    }
    if (!x->sent && (!x->r->has_body || x->upgrade || x->body_done) &&
        evbuffer_get_length(x->up->io.out) == 0)
        request_flushed(x);
}

/* ---------------------------------------------------------------- the response */

/* The upstream's headers as the client gets them. For a 101 (upgrade)
 * the protocol's own headers pass (Upgrade, Sec-WebSocket-*), the core
 * writes Connection: Upgrade, and response_headers are not applied: the
 * handshake's answer is the upstream's. */
size_t px_client_headers(px_req *x, const px_head *h, tt_header *out, size_t max, int upgrade)
{
    const char *conn = NULL;
    size_t clen = 0, n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        if (px_name_is(h->headers[i].name, h->headers[i].name_len, "Connection")) {
            conn = h->headers[i].value;     /* the first line is enough for the names */
            clen = h->headers[i].value_len;
            break;
        }
    for (size_t i = 0; i < h->nheaders && n < max; i++) {
        const tt_header *f = &h->headers[i];
        if (upgrade && px_name_is(f->name, f->name_len, "Upgrade")) {
            out[n++] = *f;
            continue;
        }
        if (px_hop_by_hop(f->name, f->name_len, conn, clen))
            continue;
        if (px_name_is(f->name, f->name_len, "Date") ||
            px_name_is(f->name, f->name_len, "Server") ||
            px_name_is(f->name, f->name_len, "Content-Length"))
            continue;
        if (upgrade ||
            !px_find_edit(x->cf->resp_edits, x->cf->nresp_edits, f->name, f->name_len))
            out[n++] = *f;
    }
    for (size_t k = 0; k < x->cf->nresp_edits && n < max && !upgrade; k++) {
        const px_edit *e = &x->cf->resp_edits[k];
        if (e->value == NULL)
            continue;
        size_t vlen = strlen(e->value);
        const char *v = e->has_vars ? px_expand(x->r, e->value, &vlen) : e->value;
        if (v != NULL)
            out[n++] = (tt_header){ e->name, e->name_len, v, vlen };
    }
    if (x->cf->via && n < max)
        out[n++] = (tt_header){ "Via", 3, "1.1 tutti", 9 };
    return n;
}

/* A complete head is at the front of in: answer the client with it. */
static int on_head(px_req *x, const px_head *h, struct evbuffer *in, long hlen)
{
    tt_request *r = x->r;

    log_status(x, h->status);
    unsigned kind = h->status == 502 ? PX_NEXT_502 : h->status == 503 ? PX_NEXT_503
                  : h->status == 504 ? PX_NEXT_504 : 0;
    unsigned max = x->cf->tries ? x->cf->tries : (unsigned)x->cf->group.npeers;
    if (kind != 0 && (x->cf->next_upstream & kind) && idempotent(r) &&
        x->body_consumed == 0 && x->tries < max && px_any_left(&x->cf->group, x->tried)) {
        attempt_failed(x, kind, 1, "answered %d", h->status);
        return -1;
    }

    if (h->status == 101) {
        if (!x->upgrade) {
            attempt_failed(x, PX_NEXT_ERROR, 1, "101 to a request that asked for no upgrade");
            return -1;
        }
        return px_tunnel_start(x, h, in, hlen);
    }

    /* on the stack: start() copies them out at once, and a 4 KiB piece of
     * the request's pool would cost a block of its own per request */
    tt_header hs[PX_MAX_HEADERS + 32];
    size_t n = px_client_headers(x, h, hs, PX_MAX_HEADERS + 32, 0);
    int64_t length = -1;
    if (r->is_head || h->status == 204 || h->status == 304) {
        x->framing = PX_FRAME_NONE;
        if (r->is_head && h->content_length >= 0)
            length = h->content_length;     /* HEAD: the length a GET would have */
    } else if (h->chunked) {
        x->framing = PX_FRAME_CHUNKED;
    } else if (h->other_coding || h->content_length < 0) {
        x->framing = PX_FRAME_CLOSE;
    } else {
        x->framing = PX_FRAME_LENGTH;
        x->left = (uint64_t)h->content_length;
        length = h->content_length;
    }
    /* the X-Accel-Buffering: no of nginx: the app knows it streams */
    for (size_t i = 0; i < h->nheaders; i++)
        if (px_name_is(h->headers[i].name, h->headers[i].name_len, "X-Accel-Buffering") &&
            px_name_is(h->headers[i].value, h->headers[i].value_len, "no"))
            x->unbuffered = 1;
    if (h->reason_len > 0)
        px_api->reason(r, h->reason, h->reason_len);    /* "299 Quite Fine" passes */
    if (px_api->start(r, h->status, hs, n, length) != 0) {
        /* the client is gone: the close hook cleans up */
        x->done = 1;
        drop_conn(x, 0);
        return -1;
    }
    x->head_done = 1;
    x->up_close = h->close;
    evbuffer_drain(in, (size_t)hlen);       /* h's pointers die here */
    if (x->framing == PX_FRAME_LENGTH && x->left == 0)
        x->framing = PX_FRAME_NONE;
    return 0;
}

/* Read-ahead allowed before a slow client pauses the upstream. */
static size_t read_ahead(const px_req *x)
{
    return x->cf->buffering && !x->unbuffered ? x->cf->buffer_size : PX_UNBUFFERED;
}

/* The slow client caught up: read the upstream again (a body or a tunnel). */
void px_relay_client_drained(tt_request *r, void *arg)
{
    px_req *x = arg;
    (void)r;
    if (x->done || x->up == NULL)
        return;
    px_io_read(&x->up->io, 1);
    up_read(&x->up->io, x);
}

/* Pass body bytes from in to the client; 1 when the body is complete,
 * -1 when it cannot be (the request was ended), 0 for more. */
static int relay_body(px_req *x, struct evbuffer *in)
{
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        const char *p = v.iov_base;
        size_t len = v.iov_len, used = len;
        const char *data = p;
        size_t dlen = len;

        if (x->framing == PX_FRAME_LENGTH) {
            if ((uint64_t)dlen > x->left)
                dlen = used = (size_t)x->left;
        } else if (x->framing == PX_FRAME_CHUNKED) {
            int rc = px_chunked_next(&x->chunk, p, len, &used, &data, &dlen);
            if (rc == PX_CHUNK_BAD) {
                cut(x, "a malformed chunk");
                return -1;
            }
            if (rc == PX_CHUNK_DONE) {
                evbuffer_drain(in, used);
                return 1;
            }
            if (rc == PX_CHUNK_MORE)
                dlen = 0;
        }
        if (dlen > 0) {
            if (px_api->write(x->r, data, dlen) != 0) {
                x->done = 1;            /* the client is gone */
                drop_conn(x, 0);
                return -1;
            }
            x->body_out += dlen;
        }
        evbuffer_drain(in, used);
        if (x->framing == PX_FRAME_LENGTH) {
            x->left -= dlen;
            if (x->left == 0)
                return 1;
        }
        if (px_api->pending(x->r) > read_ahead(x)) {
            /* a slow client: stop reading the upstream until it catches up */
            px_io_read(&x->up->io, 0);
            px_api->on_drain(x->r, px_relay_client_drained, x);
            return 0;
        }
    }
    return 0;
}

static void up_read(px_io *io, void *arg)
{
    px_req *x = arg;
    struct evbuffer *in = io->in;

    if (x->tunnel) {
        px_tunnel_up_read(x);
        return;
    }
    if (x->done)
        return;
    x->got_bytes = 1;
    while (!x->head_done) {
        px_head head;                       /* 3 KiB: on the stack, not in x */
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return;
        size_t look = len < PX_HEAD_MAX ? len : PX_HEAD_MAX;
        const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)look);
        const char *why;
        long hlen = px_parse_head(buf, look, &head, &why);
        if (hlen == PX_HEAD_BAD) {
            attempt_failed(x, PX_NEXT_ERROR, 1, "malformed response head: %s", why);
            return;
        }
        if (hlen == PX_HEAD_MORE) {
            if (look == PX_HEAD_MAX)
                attempt_failed(x, PX_NEXT_ERROR, 1, "response head over %d KiB",
                               PX_HEAD_MAX / 1024);
            return;
        }
        if (head.status < 200 && head.status != 101) {
            evbuffer_drain(in, (size_t)hlen);   /* 100 Continue, 103 Early Hints */
            continue;
        }
        if (on_head(x, &head, in, hlen) != 0)
            return;
        if (x->tunnel)
            return;
        if (x->framing == PX_FRAME_NONE) {
            response_done(x);
            return;
        }
    }
    int rc = relay_body(x, in);
    if (rc == 1)
        response_done(x);
}

static void up_event(px_io *io, short what, void *arg)
{
    px_req *x = arg;

    if (x->tunnel) {
        px_tunnel_up_event(x, what);
        return;
    }
    if (x->done)
        return;
    if (what & PX_IO_CONNECTED) {
        x->connected = 1;
        send_request(x);
        return;
    }
    int timeout = (what & PX_IO_TIMEOUT) != 0;
    int err = io->err;

    if (!x->connected) {
        if (timeout)
            attempt_failed(x, PX_NEXT_TIMEOUT, 0, "connect: timed out after %llu ms",
                           (unsigned long long)x->cf->connect_ms);
        else
            attempt_failed(x, PX_NEXT_ERROR, 0, "connect: %s", strerror(err));
        return;
    }
    if (!x->head_done) {
        /* An idle connection the upstream closed as we reused it: nothing
         * came back, so nothing was done; once, on a fresh connection. */
        if (!timeout && x->up->reused && !x->got_bytes && x->body_consumed == 0 &&
            !x->reuse_retried) {
            x->reuse_retried = 1;
            drop_conn(x, 0);
            x->peer->active++;
            int fresh;
            x->up = px_conn_get(&x->cf->group, x->peer, x->cf->connect_ms, 0, &fresh);
            if (x->up == NULL) {
                x->peer->active--;
                attempt_failed(x, PX_NEXT_ERROR, 0, "connect: %s", strerror(errno));
                return;
            }
            x->connected = 0;
            x->sent = 0;
            px_io_setcb(&x->up->io, up_read, up_write, up_event, x);
            return;
        }
        if (timeout && (what & PX_IO_WRITING))
            attempt_failed(x, PX_NEXT_TIMEOUT, 1, "send: timed out after %llu ms",
                           (unsigned long long)x->cf->send_ms);
        else if (timeout)
            attempt_failed(x, PX_NEXT_TIMEOUT, 1, "no response head within %llu ms",
                           (unsigned long long)x->cf->read_ms);
        else if (what & PX_IO_EOF)
            attempt_failed(x, PX_NEXT_ERROR, 1, "closed the connection before a whole "
                           "response head");
        else
            attempt_failed(x, PX_NEXT_ERROR, 1, "%s", strerror(err));
        return;
    }
    if ((what & PX_IO_EOF) && !timeout) {
        /* whatever is still buffered belongs to the body */
        struct evbuffer *in = io->in;
        if (evbuffer_get_length(in) > 0) {
            int rc = relay_body(x, in);
            if (rc == 1) {
                response_done(x);
                return;
            }
            if (rc < 0)
                return;
        }
        if (x->framing == PX_FRAME_CLOSE) {
            x->up_close = 1;
            response_done(x);
            return;
        }
        cut(x, "the upstream closed the connection");
        return;
    }
    if (timeout && (what & PX_IO_READING))
        cut(x, "read timed out");
    else if (timeout)
        cut(x, "send timed out");
    else
        cut(x, strerror(err));
}

/* ---------------------------------------------------------------- attempts */

static void start_attempt(px_req *x)
{
    px_group *g = &x->cf->group;
    px_peer *p = px_pick(g, x->r, x->tried, x->tries == 0);

    if (p == NULL) {
        if (x->tries == 0)
            px_api->log(TT_LOG_ERROR, "proxy: no upstream to try (%s %s)", x->r->method,
                        x->r->target);
        respond_error(x, x->last_status ? x->last_status : 502);
        return;
    }
    size_t i = (size_t)(p - g->peers);
    x->tried[i / 8] |= (unsigned char)(1u << (i % 8));
    x->tries++;
    x->peer = p;
    x->connected = 0;
    x->sent = 0;
    x->got_bytes = 0;
    x->head_done = 0;
    memset(&x->chunk, 0, sizeof(x->chunk));
    list_add(x->addrs, sizeof(x->addrs), p->name);
    px_api->log_field(x->r, "upstream_addr", x->addrs);

    p->active++;
    int fresh;
    x->up = px_conn_get(g, p, x->cf->connect_ms, 1, &fresh);
    if (x->up == NULL) {
        p->active--;
        attempt_failed(x, PX_NEXT_ERROR, 0, "connect: %s", strerror(errno));
        return;
    }
    px_io_setcb(&x->up->io, up_read, up_write, up_event, x);
    if (fresh)
        return;                         /* up_event: CONNECTED */
    x->connected = 1;
    send_request(x);
}

/* The request ends (answered, cut, or its client gone). */
static void on_request_close(tt_request *r, void *arg)
{
    px_req *x = arg;
    (void)r;
    x->done = 1;
    x->closed = 1;
    px_tunnel_free(x);
    drop_conn(x, 0);
    if (x->busy == 0)
        free(x);
}

int px_call_end(px_req *x)
{
    if (--x->busy == 0 && x->closed) {
        free(x);
        return -1;
    }
    return 0;
}

static int wants_upgrade(tt_request *r)
{
    size_t ul, cl;
    const char *u = px_api->header(r, "Upgrade", &ul);
    const char *c = px_api->header(r, "Connection", &cl);
    if (u == NULL || ul == 0 || c == NULL || r->version < 11 || r->has_body)
        return 0;
    /* several Connection lines: the core gives the first; good enough for
     * the upgrade token, which browsers send on one line */
    return px_has_token(c, cl, "upgrade");
}

int px_handle(tt_request *r, void *route_conf)
{
    px_req *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return TT_ERROR;
    x->r = r;
    x->cf = route_conf;
    x->t_start = now_usec();
    x->upgrade = wants_upgrade(r);
    px_api->on_close(r, on_request_close, x);
    start_attempt(x);
    return TT_OK;
}

/* for tunnel.c */
void px_relay_drop(px_req *x)
{
    drop_conn(x, 0);
}

void px_relay_log_time(px_req *x)
{
    log_time(x);
}

void px_relay_fail(px_req *x, const char *why)
{
    attempt_failed(x, PX_NEXT_ERROR, 1, "%s", why);
}
