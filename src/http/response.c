/* The streaming response writer.
 *
 * A handler calls start (status + headers), then write / sendfile any number
 * of times, then finish. The core frames the body: Content-Length when the
 * handler knows it, chunked for HTTP/1.1 when it does not, and the end of the
 * connection for HTTP/1.0. HEAD drops the body but keeps its headers. A
 * handler never writes more than it declared. Everything goes to the
 * bufferevent's output buffer; the status line, headers and a small body
 * leave in one writev, and file ranges leave by sendfile.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include "http/request_impl.h"
#include "log.h"


/* File bytes read per refill of a spooled response, and the most of them
 * kept in the output at a time. */
#define TT_SPOOL_SLICE (64 * 1024)

/* A response body normally goes to the output buffer as it is written, and
 * a file range as a sendfile segment. Where sendfile cannot be used (a
 * connection under a speed limit: libevent's sendfile path writes a whole
 * segment whatever its bucket says; later TLS), the file is read into the
 * output a slice at a time as the client takes it, and what the handler
 * writes after it waits in the spool behind it, in order. */
struct tt_spool_piece {
    tt_spool_piece  *next;
    int              fd;            /* a file range; -1: memory */
    int              close_fd;
    int64_t          off, left;
    struct evbuffer *mem;
};

static tt_spool_piece *spool_append(tt_req *q)
{
    tt_spool_piece *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->fd = -1;
    if (q->spool_tail)
        q->spool_tail->next = p;
    else
        q->spool_head = p;
    q->spool_tail = p;
    return p;
}

static void spool_pop(tt_req *q)
{
    tt_spool_piece *p = q->spool_head;
    q->spool_head = p->next;
    if (q->spool_head == NULL)
        q->spool_tail = NULL;
    if (p->fd >= 0 && p->close_fd)
        close(p->fd);
    if (p->mem != NULL)
        evbuffer_free(p->mem);
    free(p);
}

void tt_spool_free(tt_req *q)
{
    while (q->spool_head != NULL)
        spool_pop(q);
    q->spool_bytes = 0;
}

int tt_spool_feed(tt_req *q)
{
    struct evbuffer *out = bufferevent_get_output(q->c->bev);
    size_t have;

    while (q->spool_head != NULL && (have = evbuffer_get_length(out)) < TT_SPOOL_SLICE) {
        tt_spool_piece *p = q->spool_head;
        if (p->fd < 0) {
            q->spool_bytes -= evbuffer_get_length(p->mem);
            evbuffer_add_buffer(out, p->mem);
            spool_pop(q);
            continue;
        }
        size_t want = TT_SPOOL_SLICE - have;
        if ((int64_t)want > p->left)
            want = (size_t)p->left;
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1)
            return -1;
        if (v.iov_len > want)
            v.iov_len = want;
        ssize_t n;
        do
            n = pread(p->fd, v.iov_base, v.iov_len, (off_t)p->off);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            evbuffer_commit_space(out, &v, 0);
            tt_log(TT_LOG_WARN, "reading the file for \"%s\": %s; closing the connection",
                   q->pub.target, n < 0 ? strerror(errno) : "it shrank while being sent");
            tt_spool_free(q);
            q->truncated = 1;
            return -1;
        }
        v.iov_len = (size_t)n;
        evbuffer_commit_space(out, &v, 1);
        p->off += n;
        p->left -= n;
        q->spool_bytes -= (uint64_t)n;
        if (p->left == 0)
            spool_pop(q);
    }
    return 0;
}

/* Body bytes for the client: to the output, or behind the spool. */
static int out_add(tt_req *q, const void *data, size_t len)
{
    if (q->spool_head == NULL)
        return evbuffer_add(bufferevent_get_output(q->c->bev), data, len);
    tt_spool_piece *p = q->spool_tail;
    if (p->fd >= 0) {
        if ((p = spool_append(q)) == NULL || (p->mem = evbuffer_new()) == NULL)
            return -1;
    }
    if (evbuffer_add(p->mem, data, len) != 0)
        return -1;
    q->spool_bytes += len;
    return 0;
}

static int spool_file(tt_req *q, int fd, int64_t off, int64_t len, int close_fd)
{
    tt_spool_piece *p = spool_append(q);
    if (p == NULL) {
        if (close_fd)
            close(fd);
        return -1;
    }
    p->fd = fd;
    p->close_fd = close_fd;
    p->off = off;
    p->left = len;
    q->spool_bytes += (uint64_t)len;
    return tt_spool_feed(q);
}

static int bodyless_status(int status)
{
    return status < 200 || status == 204 || status == 304;
}

static int header_is(const tt_header *h, const char *name, size_t n)
{
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* Header names and values go out verbatim: refuse anything that would let a
 * handler's data split the head (response splitting). */
static int header_safe(const tt_header *h)
{
    if (h->name_len == 0)
        return 0;
    for (size_t i = 0; i < h->name_len; i++) {
        unsigned char ch = (unsigned char)h->name[i];
        if (ch <= ' ' || ch == ':' || ch >= 0x7f)
            return 0;
    }
    for (size_t i = 0; i < h->value_len; i++) {
        unsigned char ch = (unsigned char)h->value[i];
        if ((ch < ' ' && ch != '\t') || ch == 0x7f)
            return 0;
    }
    return 1;
}

int tt_resp_start(tt_request *r, int status, const tt_header *headers,
                  size_t n, int64_t content_length)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || q->started || status < 100 || status > 999)
        return -1;
    q->started = 1;
    q->status = status;

    int has_server = 0;
    for (size_t i = 0; i < n; i++) {
        if (header_is(&headers[i], "Content-Length", 14) && content_length < 0) {
            /* a handler that sets the header itself means that length */
            char buf[24];
            size_t len = headers[i].value_len < sizeof(buf) - 1 ? headers[i].value_len
                                                                 : sizeof(buf) - 1;
            memcpy(buf, headers[i].value, len);
            buf[len] = '\0';
            char *end;
            long long v = strtoll(buf, &end, 10);
            if (end != buf && *end == '\0' && v >= 0)
                content_length = v;
        } else if (header_is(&headers[i], "Server", 6)) {
            has_server = 1;
        }
    }

    int bodyless = bodyless_status(status);
    q->out_length = bodyless ? 0 : content_length;
    if (!bodyless && content_length < 0 && !r->is_head) {
        if (r->version >= 11)
            q->chunked = 1;
        else
            q->until_close = 1;
    }
    /* the Nth response of max_requests is the last on this connection */
    const tt_limits *l = c->limits;
    q->keepalive = !c->closing && !q->until_close && l->keepalive_timeout_ms > 0 &&
                   (l->keepalive_max_requests == 0 ||
                    c->requests + 1 < l->keepalive_max_requests);

    struct evbuffer *out = bufferevent_get_output(c->bev);
    char head[1024];
    const char *reason = q->reason != NULL ? q->reason : tt_status_reason(status);
    /* built by hand: this runs for every response, and snprintf's format
     * parsing was a visible part of a small one */
    char *p = head;
    memcpy(p, "HTTP/1.1 ", 9);
    p += 9;
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    size_t rlen = strnlen(reason, 200);
    memcpy(p, reason, rlen);
    p += rlen;
    if (!has_server) {
        memcpy(p, "\r\nServer: tutti", 15);
        p += 15;
    }
    memcpy(p, "\r\nDate: ", 8);
    p += 8;
    memcpy(p, tt_http_date(), 29);
    p += 29;
    memcpy(p, "\r\n", 2);
    p += 2;
    evbuffer_add(out, head, (size_t)(p - head));
    int len;

    for (size_t i = 0; i < n; i++) {
        const tt_header *h = &headers[i];
        /* framing and connection management are the core's */
        if (header_is(h, "Content-Length", 14) || header_is(h, "Transfer-Encoding", 17) ||
            header_is(h, "Connection", 10) || header_is(h, "Keep-Alive", 10) ||
            header_is(h, "Date", 4))
            continue;
        if (!header_safe(h)) {
            tt_log(TT_LOG_WARN, "dropped an invalid response header from the handler of \"%s\"",
                   r->target);
            continue;
        }
        struct evbuffer_iovec v[4] = {
            { (void *)h->name, h->name_len }, { ": ", 2 },
            { (void *)h->value, h->value_len }, { "\r\n", 2 },
        };
        for (int k = 0; k < 4; k++)
            evbuffer_add(out, v[k].iov_base, v[k].iov_len);
    }

    p = head;
    if (!bodyless && content_length >= 0) {
        char digits[24];
        int nd = 0;
        int64_t v = content_length;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        memcpy(p, "Content-Length: ", 16);
        p += 16;
        while (nd > 0)
            *p++ = digits[--nd];
        memcpy(p, "\r\n", 2);
        p += 2;
    } else if (q->chunked) {
        memcpy(p, "Transfer-Encoding: chunked\r\n", 28);
        p += 28;
    }
    if (c->tls && q->server != NULL && q->server->tls != NULL && q->server->tls->hsts != NULL) {
        const char *hsts = q->server->tls->hsts;     /* under 100 bytes (tls.c) */
        size_t hl = strlen(hsts);
        memcpy(p, "Strict-Transport-Security: ", 27);
        p += 27;
        memcpy(p, hsts, hl);
        p += hl;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (!q->keepalive) {
        memcpy(p, "Connection: close\r\n", 19);
        p += 19;
    } else if (r->version == 10) {
        memcpy(p, "Connection: keep-alive\r\n", 24);
        p += 24;
    }
    memcpy(p, "\r\n", 2);
    p += 2;
    len = (int)(p - head);
    evbuffer_add(out, head, (size_t)len);
    tt_conn_output_added(c);
    return 0;
}

/* "101 Switching Protocols": the head of an upgrade, after which the
 * connection is a tunnel (conn.c). The handler's headers go out as given,
 * less the ones that belong to HTTP framing; Connection is ours. */
int tt_resp_upgrade(tt_request *r, const tt_header *headers, size_t n)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || q->started || r->has_body || r->version < 11)
        return -1;
    q->started = 1;
    q->status = 101;
    q->tunnel = 1;
    q->out_length = -1;
    q->keepalive = 0;

    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nServer: tutti\r\n"
                        "Date: %s\r\nConnection: Upgrade\r\n", tt_http_date());
    for (size_t i = 0; i < n; i++) {
        const tt_header *h = &headers[i];
        if (header_is(h, "Content-Length", 14) || header_is(h, "Transfer-Encoding", 17) ||
            header_is(h, "Connection", 10) || header_is(h, "Keep-Alive", 10) ||
            header_is(h, "Date", 4) || header_is(h, "Server", 6))
            continue;
        if (!header_safe(h)) {
            tt_log(TT_LOG_WARN, "dropped an invalid upgrade header from the handler of \"%s\"",
                   r->target);
            continue;
        }
        evbuffer_add(out, h->name, h->name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, h->value, h->value_len);
        evbuffer_add(out, "\r\n", 2);
    }
    evbuffer_add(out, "\r\n", 2);
    tt_conn_upgraded(c);
    tt_conn_output_added(c);
    return 0;
}

/* How much of len the declared Content-Length still allows. */
static size_t allowed(tt_req *q, size_t len)
{
    if (q->out_length < 0)
        return len;
    uint64_t left = (uint64_t)q->out_length - q->out_sent;
    if (len > left) {
        tt_log(TT_LOG_WARN, "handler of \"%s\" wrote more than its Content-Length %" PRId64
               "; the excess was dropped", q->pub.target, q->out_length);
        return (size_t)left;
    }
    return len;
}

int tt_resp_write(tt_request *r, const void *data, size_t len)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || !q->started || q->finished)
        return -1;
    len = allowed(q, len);
    if (len == 0)
        return 0;
    q->out_sent += len;
    if (!q->tunnel && (r->is_head || bodyless_status(q->status)))
        return 0;

    if (q->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        if (out_add(q, size, (size_t)n) != 0 || out_add(q, data, len) != 0 ||
            out_add(q, "\r\n", 2) != 0)
            return -1;
    } else if (out_add(q, data, len) != 0) {
        return -1;
    }
    tt_conn_output_added(c);
    return 0;
}

/* A file range for the client, owning fd when close_fd: by sendfile
 * (corked), or through the spool where sendfile would ignore the speed
 * limit or another spooled piece must go first. */
static int queue_file(tt_req *q, int fd, int64_t off, int64_t len, int close_fd)
{
    tt_conn *c = q->c;

    /* sendfile cannot encrypt: over TLS a file goes through memory too */
    if (c->rate_limited || c->tls || q->spool_head != NULL)
        return spool_file(q, fd, off, len, close_fd);
    struct evbuffer_file_segment *seg =
        evbuffer_file_segment_new(fd, off, len, close_fd ? EVBUF_FS_CLOSE_ON_FREE : 0);
    if (seg == NULL) {
        if (close_fd)
            close(fd);
        return -1;
    }
    tt_conn_cork(c);
    int rc = evbuffer_add_file_segment(bufferevent_get_output(c->bev), seg, 0, len);
    evbuffer_file_segment_free(seg);        /* the buffer holds its own reference */
    return rc;
}

int tt_resp_sendfile(tt_request *r, int fd, int64_t off, int64_t len, int close_fd)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || !q->started || q->finished || off < 0 || len < 0) {
        if (close_fd)
            close(fd);
        return -1;
    }
    len = (int64_t)allowed(q, (size_t)len);
    q->out_sent += (uint64_t)len;
    if (len == 0 || (!q->tunnel && (r->is_head || bodyless_status(q->status)))) {
        if (close_fd)
            close(fd);
        return 0;
    }

    int rc = 0;
    if (q->chunked) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%" PRIx64 "\r\n", len);
        rc = out_add(q, size, (size_t)n);
    }
    if (rc == 0)
        rc = queue_file(q, fd, off, len, close_fd);
    else if (close_fd)
        close(fd);
    if (rc == 0 && q->chunked)
        rc = out_add(q, "\r\n", 2);
    tt_conn_output_added(c);
    return rc;
}

int tt_resp_finish(tt_request *r)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (q->finished)
        return 0;
    if (c == NULL)
        return -1;
    if (!q->started && tt_resp_start(r, 200, NULL, 0, 0) != 0)
        return -1;
    q->finished = 1;
    if (q->chunked) {
        out_add(q, "0\r\n\r\n", 5);
        tt_conn_output_added(c);
    }
    if (q->out_length >= 0 && q->out_sent < (uint64_t)q->out_length && !r->is_head &&
        !bodyless_status(q->status)) {
        /* the client would wait for the missing bytes: only a close ends it */
        tt_log(TT_LOG_WARN, "handler of \"%s\" sent %" PRIu64 " of %" PRId64
               " declared bytes; closing the connection", r->target, q->out_sent, q->out_length);
        q->truncated = 1;
    }
    tt_conn_response_finished(c);
    return 0;
}

int tt_resp_respond(tt_request *r, int status, const char *content_type,
                    const void *body, size_t len)
{
    tt_header h = { "Content-Type", 12, content_type, content_type ? strlen(content_type) : 0 };
    if (tt_resp_start(r, status, &h, content_type ? 1 : 0, (int64_t)len) != 0)
        return -1;
    if (len > 0)
        tt_resp_write(r, body, len);
    return tt_resp_finish(r);
}

/* The reason phrase of the coming start(), as an app gave it ("299 Quite
 * Fine"): printable text only, so it can never split the head. */
int tt_resp_reason(tt_request *r, const char *reason, size_t len)
{
    tt_req *q = (tt_req *)r;

    if (q->started || len > 200)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)reason[i];
        if ((ch < ' ' && ch != '\t') || ch == 0x7f)
            return -1;
    }
    char *copy = tt_arena_strndup(q->pool, reason, len);
    if (copy == NULL)
        return -1;
    q->reason = copy;
    return 0;
}

size_t tt_resp_pending(const tt_request *r)
{
    const tt_req *q = (const tt_req *)r;
    if (q->c == NULL)
        return 0;
    return evbuffer_get_length(bufferevent_get_output(q->c->bev)) + q->spool_bytes;
}

void tt_resp_on_drain(tt_request *r, tt_request_cb cb, void *arg)
{
    tt_req *q = (tt_req *)r;
    q->drain_cb = cb;
    q->drain_arg = arg;
    if (q->c != NULL && cb != NULL && tt_resp_pending(r) == 0)
        bufferevent_trigger(q->c->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

int tt_resp_error(tt_req *q, int status, const tt_header *extra, size_t nextra)
{
    char body[128];
    int len = snprintf(body, sizeof(body), "%d %s\n", status, tt_status_reason(status));
    tt_header h[8];
    size_t n = 0;
    h[n++] = (tt_header){ "Content-Type", 12, "text/plain; charset=utf-8", 25 };
    for (size_t i = 0; i < nextra && n < 8; i++)
        h[n++] = extra[i];
    if (tt_resp_start(&q->pub, status, h, n, len) != 0)
        return -1;
    tt_resp_write(&q->pub, body, (size_t)len);
    return tt_resp_finish(&q->pub);
}
