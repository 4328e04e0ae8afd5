/* One client connection: the HTTP/1.1 state machine on a bufferevent.
 *
 *   IDLE --first byte--> HEAD --head parsed--> ACTIVE --response flushed-->
 *        IDLE (keep-alive) | DISCARD (unread body, then IDLE) | close
 *
 * One request is served at a time; pipelined requests wait in the input
 * buffer, and update_reading() stops reading from the socket once a little
 * is buffered, so a client can never make us hold more than a bounded
 * amount. Responses are written straight to the socket (conn_write_now);
 * the bufferevent's own writing only takes over when the socket is full.
 * Nothing here calls itself back: the parser, handlers and libevent
 * callbacks only set state, and process_input() moves the connection on
 * from the outermost frame. A connection idle for a while is parked without
 * its bufferevent (compact()).
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include <event2/bufferevent_ssl.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include "http/conn.h"
#include "http/request_impl.h"
#include "log.h"
#include "module.h"

#define TT_LINGER_MS              2000    /* read and drop after an error response */
#define TT_READ_HIGH_WATER        (64 * 1024) /* input held while we cannot use it */
#define TT_BODY_SLICE             (16 * 1024) /* body bytes fed per parser call */
#define TT_POOL_CACHE             64
#define TT_COMPACT_AFTER_MS       500     /* idle this long: drop the bufferevent */
#define TT_SWEEP_MS               250
#define TT_TRIM_AFTER             256     /* parked since the last trim: return memory */

static tt_conn *tt_conns;
static size_t   tt_nconns;
static tt_conn *tt_idle_head, *tt_idle_tail;   /* idle keep-alive, oldest first */
static size_t   tt_nidle;
static uint32_t tt_max_idle;                   /* keepalive max_idle; 0: no limit */
static int      tt_graceful;
static void   (*tt_closed_cb)(void);

static struct event *tt_sweep;      /* finds connections idle long enough */

static tt_arena *pool_cache[TT_POOL_CACHE];
static size_t    pool_cached;

static void process_input(tt_conn *c);
static void conn_advance(tt_conn *c);
static void conn_close(tt_conn *c);
static void conn_finish_close(tt_conn *c);
static const tt_parser_cbs parser_cbs;

/* ---------------------------------------------------------------- pools */

static tt_arena *pool_get(void)
{
    if (pool_cached > 0)
        return pool_cache[--pool_cached];
    return tt_arena_create(4096);
}

static void pool_put(tt_arena *a)
{
    if (pool_cached < TT_POOL_CACHE && !tt_graceful) {
        tt_arena_reset(a);
        pool_cache[pool_cached++] = a;
        return;
    }
    tt_arena_destroy(a);
}

/* ---------------------------------------------------------------- timers */

/* One timeout per direction, both the bufferevent's own: no timer event of
 * our own per connection (memory per idle connection). The read timeout
 * means, by state: IDLE the keep-alive timeout, HEAD what is left of
 * header_timeout, ACTIVE/DISCARD body_timeout while body bytes are due,
 * lingering the linger time. The write timeout is always send_timeout
 * (libevent counts it only while output is pending). */
static void set_read_timeout(tt_conn *c, uint64_t rms)
{
    uint64_t wms = c->limits->send_timeout_ms;
    struct timeval r = { (time_t)(rms / 1000), (suseconds_t)(rms % 1000) * 1000 };
    struct timeval w = { (time_t)(wms / 1000), (suseconds_t)(wms % 1000) * 1000 };
    bufferevent_set_timeouts(c->bev, rms ? &r : NULL, &w);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* header_timeout bounds the whole head, not the gap between two reads, or
 * a client sending a byte a second would hold the connection forever. */
static void start_head_deadline(tt_conn *c)
{
    c->mark_ms = now_ms() + c->limits->header_timeout_ms;
    set_read_timeout(c, c->limits->header_timeout_ms);
}

/* what is left until the monotonic time `at`; never 0, which means "no
 * timeout" to set_read_timeout */
static uint64_t ms_until(uint64_t at)
{
    uint64_t now = now_ms();
    return at > now ? at - now : 1;
}

static void rearm_head_deadline(tt_conn *c)
{
    set_read_timeout(c, ms_until(c->mark_ms));
}

/* ---------------------------------------------------------------- parser */

static tt_parser *parser_get(tt_conn *c)
{
    if (c->parser == NULL) {
        c->parser = malloc(sizeof(*c->parser));
        if (c->parser != NULL)
            tt_parser_init(c->parser, &parser_cbs, c, c->limits->max_header_size);
    }
    return c->parser;
}

static void parser_drop(tt_conn *c)
{
    if (c->parser == NULL)
        return;
    tt_parser_free(c->parser);
    free(c->parser);
    c->parser = NULL;
}

/* ---------------------------------------------------------------- requests */

static uint64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void set_host(tt_req *q, const char *h, size_t n)
{
    /* "Example.COM:8080" -> "example.com"; "[::1]:8080" -> "[::1]" */
    size_t end = n;
    if (n > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        end = rb ? (size_t)(rb - h) + 1 : n;
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon)
            end = (size_t)(colon - h);
    }
    char *host = tt_arena_alloc(q->pool, end + 1);
    for (size_t i = 0; i < end; i++) {
        char ch = h[i];
        host[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    q->pub.host = host;
    q->pub.host_len = end;
}

static const char *addr_text(tt_arena *pool, const tt_sockaddr *a, int *port)
{
    char buf[INET6_ADDRSTRLEN];

    buf[0] = '\0';
    *port = 0;
    if (a->sa.sa_family == AF_INET) {
        evutil_inet_ntop(AF_INET, &a->in.sin_addr, buf, sizeof(buf));
        *port = ntohs(a->in.sin_port);
    } else if (a->sa.sa_family == AF_INET6) {
        evutil_inet_ntop(AF_INET6, &a->in6.sin6_addr, buf, sizeof(buf));
        *port = ntohs(a->in6.sin6_port);
    }
    return tt_arena_strdup(pool, buf);
}

static void addr_copy(tt_sockaddr *dst, const struct sockaddr *sa, socklen_t len)
{
    if (len > sizeof(*dst))
        len = sizeof(*dst);
    memcpy(dst, sa, len);
}

/* A request for the access log and error pages even when the head was bad. */
static tt_req *req_new(tt_conn *c)
{
    tt_arena *pool = pool_get();
    if (pool == NULL)
        return NULL;
    tt_req *q = tt_arena_alloc(pool, sizeof(*q));
    q->pool = pool;
    q->c = c;
    q->out_length = -1;
    q->pub.method = "-";
    q->pub.target = "-";
    q->pub.path = "";
    q->pub.raw_path = "";
    q->pub.query = "";
    q->pub.host = "";
    q->pub.server_name = "";
    q->pub.route_prefix = "";
    q->pub.version = 11;
    q->pub.content_length = -1;
    q->pub.tls = c->tls;
    q->pub.remote_addr = addr_text(pool, &c->remote, &q->pub.remote_port);
    q->pub.local_addr = addr_text(pool, &c->local, &q->pub.local_port);
    q->pub.start_usec = now_usec();
    c->req = q;
    return q;
}

/* Fill the public request from the parsed head; 0 or an error status. */
static int req_fill(tt_req *q, tt_http_head *h)
{
    tt_request *r = &q->pub;
    tt_arena *pool = q->pool;

    r->method = tt_arena_strndup(pool, h->buf + h->method_off, h->method_len);
    r->method_len = h->method_len;
    r->target = tt_arena_strndup(pool, h->buf + h->url_off, h->url_len);
    r->target_len = h->url_len;
    r->version = h->version;
    r->is_head = h->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    r->content_length = h->content_length;
    r->chunked = h->chunked;
    r->has_body = h->chunked || h->content_length > 0;

    r->headers = tt_arena_alloc(pool, (h->nfields ? h->nfields : 1) * sizeof(tt_header));
    for (size_t i = 0; i < h->nfields; i++) {
        tt_header *d = &r->headers[i];
        d->name = h->buf + h->fields[i].name_off;
        d->name_len = h->fields[i].name_len;
        d->value = h->buf + h->fields[i].value_off;
        d->value_len = h->fields[i].value_len;
    }
    r->nheaders = h->nfields;

    int is_options = h->method_len == 7 && memcmp(r->method, "OPTIONS", 7) == 0;
    char *pathbuf = tt_arena_alloc(pool, r->target_len + 2);
    tt_target t;
    int status = tt_target_parse(r->target, r->target_len, is_options, &t, pathbuf);
    if (status)
        return status;
    r->raw_path = t.raw_path;
    r->raw_path_len = t.raw_path_len;
    r->path = t.path;
    r->path_len = t.path_len;
    r->query = t.query ? t.query : "";
    r->query_len = t.query ? t.query_len : 0;

    /* absolute-form names the host itself and wins over Host (RFC 9112 3.2.2) */
    if (t.authority != NULL)
        set_host(q, t.authority, t.authority_len);
    else if (h->has_host)
        set_host(q, h->buf + h->host_off, h->host_len);
    return 0;
}

/* The end of a request: log it, tell the handler, give the memory back. */
static void req_end(tt_conn *c)
{
    tt_req *q = c->req;
    if (q == NULL)
        return;
    c->req = NULL;
    q->c = NULL;

    if (q->body_reading && !q->body_done) {
        q->body_done = 1;
        q->body_cb(&q->pub, NULL, 0, TT_BODY_ERROR, q->body_arg);
    }

    size_t reflen = 0, ualen = 0;
    const char *ref = tt_req_header(&q->pub, "Referer", &reflen);
    const char *ua = tt_req_header(&q->pub, "User-Agent", &ualen);
    uint64_t now = now_usec();
    tt_access_entry e = {
        .remote_addr = q->pub.remote_addr,
        .method = q->pub.method,
        .target = q->pub.target,
        .version = q->pub.version,
        /* 499: the client left before the response began (nginx's code) */
        .status = q->started ? q->status : 499,
        .bytes_sent = q->pub.is_head ? 0 : q->out_sent,
        .referer = ref ? tt_arena_strndup(q->pool, ref, reflen) : NULL,
        .user_agent = ua ? tt_arena_strndup(q->pool, ua, ualen) : NULL,
        .host = q->pub.host,
        .duration_usec = now - q->pub.start_usec,
        .time_usec = now,
        .fields = q->log_fields,
    };
    tt_access_log(&e);

    tt_spool_free(q);
    for (struct tt_close_hook *h = q->close_hooks; h != NULL; h = h->next)
        h->cb(&q->pub, h->arg);
    if (c->rate_limited && !c->compact) {
        /* the next request on this connection may be on another route */
        bufferevent_set_rate_limit(c->bev, NULL);
        c->rate_limited = 0;
    }
    pool_put(q->pool);
}

/* ---------------------------------------------------------------- dispatch */

static int run_module(tt_req *q, const tt_route_module *m)
{
    return m->module->mod->handle(&q->pub, m->conf);
}

/* redirect_http: the same URL on https (ACME's http-01 challenges, under
 * /.well-known/acme-challenge/, are still served: certificates get
 * renewed through them). */
static int redirect_https(tt_req *q, const tt_server *s)
{
    tt_request *r = &q->pub;
    const char *host = r->host_len > 0 ? r->host : s->nnames > 0 ? s->names[0] : r->local_addr;
    size_t hlen = r->host_len > 0 ? r->host_len : strlen(host);
    const char *target = r->target;
    size_t tlen = r->target_len;
    int add_query = 0;
    if (tlen == 0 || target[0] != '/') {            /* absolute-form or '*' */
        target = r->raw_path;
        tlen = r->raw_path_len;
        add_query = 1;
    }
    int v6 = memchr(host, ':', hlen) != NULL;
    char port[8] = "";
    if (s->redirect_https != 443)
        snprintf(port, sizeof(port), ":%d", s->redirect_https);
    size_t len = 8 + hlen + 2 + strlen(port) + tlen + 1 + r->query_len + 1;
    char *loc = tt_arena_alloc(q->pool, len);
    if (loc == NULL)
        return 500;
    int n = snprintf(loc, len, "https://%s%.*s%s%s%.*s", v6 ? "[" : "", (int)hlen, host,
                     v6 ? "]" : "", port, (int)tlen, target);
    if (add_query && r->query_len > 0)
        n += snprintf(loc + n, len - (size_t)n, "?%.*s", (int)r->query_len, r->query);
    tt_header location = { "Location", 8, loc, (size_t)n };
    tt_resp_error(q, 301, &location, 1);        /* the core's short page, and Location */
    return 0;
}

/* Route the request and run its filters and handler. Returns 0 when a
 * response is under way (or will be), or a status for the core to answer. */
static int dispatch(tt_conn *c, tt_req *q)
{
    tt_request *r = &q->pub;
    const tt_server *s = tt_route_server(c->listen, r->host, r->host_len);

    q->server = s;
    c->limits = &s->limits;
    r->server_name = s->nnames > 0 ? s->names[0] : "";

    if (s->redirect_https != 0 && !c->tls &&
        !(r->path_len >= 28 && memcmp(r->path, "/.well-known/acme-challenge/", 28) == 0))
        return redirect_https(q, s);

    if (r->content_length > 0 && (uint64_t)r->content_length > s->limits.max_body_size)
        return 413;

    char allow[256];
    int status = 404;
    const tt_route *rt = tt_route_find(s, r->path, r->path_len, r->method,
                                       &status, allow, sizeof(allow));
    if (rt == NULL) {
        if (status == 405) {
            tt_header h = { "Allow", 5, allow, strlen(allow) };
            tt_resp_error(q, 405, &h, 1);
            return 0;
        }
        return status;
    }
    q->route = rt;
    r->route_prefix = rt->prefix;
    r->route_prefix_len = rt->prefix_len;

    for (size_t i = 0; i < rt->nfilters; i++) {
        int rc = run_module(q, &rt->filters[i]);
        if (rc == TT_DECLINED)
            continue;
        if (rc == TT_OK)
            return 0;
        return rc == TT_ERROR ? 500 : rc;
    }

    int rc;
    if (rt->handler.module == NULL)
        rc = tt_return_handle(q, rt->ret);
    else
        rc = run_module(q, &rt->handler);
    if (rc == TT_OK)
        return 0;
    if (rc == TT_DECLINED)
        return 404;
    if (rc == TT_ERROR) {
        tt_log(TT_LOG_ERROR, "handler of route %s failed for \"%s %s\"",
               rt->prefix, r->method, r->target);
        return 500;
    }
    return rc;
}

/* ---------------------------------------------------------------- parser callbacks */

static int on_head(void *ctx, tt_http_head *h)
{
    tt_conn *c = ctx;
    tt_req *q = req_new(c);
    if (q == NULL)
        return 500;

    set_read_timeout(c, 0);         /* the head is in: header_timeout is met */
    c->state = TT_CONN_ACTIVE;

    int status = req_fill(q, h);
    if (status)
        return status;
    if (!h->keepalive || tt_graceful)
        c->closing = 1;

    status = dispatch(c, q);
    if (status) {
        if (q->started)
            return status;          /* too late for an error page: fail */
        c->closing = c->closing || q->pub.has_body;
        tt_resp_error(q, status, NULL, 0);
    }
    if (q->pub.has_body && !q->body_reading)
        return TT_PARSE_PAUSE;      /* the body waits for read_body() */
    return 0;
}

static void on_body(void *ctx, const char *p, size_t n)
{
    tt_conn *c = ctx;
    tt_req *q = c->req;

    if (q == NULL || !q->body_reading || q->body_done)
        return;                     /* DISCARD, or after an error: drop */
    q->body_received += n;
    if (q->body_received > c->limits->max_body_size) {
        /* a chunked body grew past the limit: the handler never sees it */
        q->body_done = 1;
        q->body_cb(&q->pub, NULL, 0, TT_BODY_ERROR, q->body_arg);
        c->parser->status = 413;
        return;
    }
    q->body_cb(&q->pub, p, n, TT_BODY_DATA, q->body_arg);
}

static void on_done(void *ctx)
{
    tt_conn *c = ctx;
    tt_req *q = c->req;

    if (q == NULL || q->tunnel || !q->body_reading || q->body_done)
        return;
    q->body_done = 1;
    set_read_timeout(c, 0);
    q->body_cb(&q->pub, NULL, 0, TT_BODY_END, q->body_arg);
}

static const tt_parser_cbs parser_cbs = { on_head, on_body, on_done };

/* ---------------------------------------------------------------- errors */

/* Answer a bad request with its status and close; mid-response, just close. */
static void conn_fail(tt_conn *c, int status)
{
    tt_req *q = c->req;

    c->closing = 1;
    if (q == NULL) {
        q = req_new(c);
        if (q == NULL) {
            conn_close(c);
            return;
        }
        tt_http_head *h = &c->parser->head;
        if (h->method_len > 0)
            q->pub.method = tt_arena_strndup(q->pool, h->buf + h->method_off, h->method_len);
        if (h->url_len > 0 && status != 414)
            q->pub.target = tt_arena_strndup(q->pool, h->buf + h->url_off, h->url_len);
    }
    if (q->started) {
        conn_close(c);
        return;
    }
    c->state = TT_CONN_ACTIVE;
    set_read_timeout(c, 0);
    tt_resp_error(q, status, NULL, 0);
}

/* ---------------------------------------------------------------- the machine */

static int output_empty(tt_conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
           (c->req == NULL || c->req->spool_head == NULL);
}

/* A spooled response (response.c) takes its next slice when the output
 * runs low; a file that cannot be read ends the connection. */
static int feed_spool(tt_conn *c)
{
    if (c->req == NULL || c->req->spool_head == NULL || tt_spool_feed(c->req) == 0)
        return 0;
    conn_close(c);
    return -1;
}

/* While a response with a file goes out, the socket is corked (nginx's
 * tcp_nopush): the head and the first of the file share full-sized
 * segments instead of the head leaving alone in a small one, and sendfile's
 * pieces are not pushed one by one. Uncorked as soon as everything queued
 * has been written, which sends the tail at once. */
void tt_conn_cork(tt_conn *c)
{
    int one = 1;
    if (c->corked)
        return;
    if (setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_CORK, &one, sizeof(one)) == 0)
        c->corked = 1;
}

static void uncork(tt_conn *c)
{
    int zero = 0;
    if (!c->corked)
        return;
    setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
    c->corked = 0;
}

/* Flush what is queued, then close; after an error the client may still be
 * sending, so read and drop for a moment rather than reset the connection
 * under our own response (nginx's lingering close). */
static void conn_close_after_flush(tt_conn *c)
{
    c->state = TT_CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    if (output_empty(c))
        conn_finish_close(c);
}

static void idle_remove(tt_conn *c)
{
    if (!c->on_idle_list)
        return;
    if (c->idle_prev) c->idle_prev->idle_next = c->idle_next; else tt_idle_head = c->idle_next;
    if (c->idle_next) c->idle_next->idle_prev = c->idle_prev; else tt_idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    c->on_idle_list = 0;
    tt_nidle--;
}

/* An idle keep-alive connection joins the end of the idle list; beyond
 * max_idle the one idle the longest goes (a client reconnects, as after a
 * keep-alive timeout). */
static void idle_add(tt_conn *c)
{
    c->idle_prev = tt_idle_tail;
    c->idle_next = NULL;
    if (tt_idle_tail) tt_idle_tail->idle_next = c; else tt_idle_head = c;
    tt_idle_tail = c;
    c->on_idle_list = 1;
    tt_nidle++;
    while (tt_max_idle > 0 && tt_nidle > tt_max_idle && tt_idle_head != c) {
        tt_conn *oldest = tt_idle_head;
        idle_remove(oldest);
        conn_close(oldest);
    }
}

/* The response is done: wait for the next request. The keep-alive timeout
 * is that of the server which answered; the next head is read under the
 * listener's first server's limits until routing picks one. */
static void next_request(tt_conn *c)
{
    c->requests++;
    parser_drop(c);                 /* an idle connection holds no parser */
    c->state = TT_CONN_IDLE;
    c->mark_ms = now_ms();
    set_read_timeout(c, c->limits->keepalive_timeout_ms);
    idle_add(c);
}

static void conn_advance(tt_conn *c)
{
    tt_req *q = c->req;

    if (c->state == TT_CONN_CLOSING)
        return;
    if (q != NULL) {
        if (!q->finished || !output_empty(c))
            return;
        int keep = q->keepalive && !q->truncated && !c->closing && !tt_graceful;
        int body_pending = !c->parser->message_done;
        /* asked for 100-continue, never got it: the client may or may not
         * send the body now, so the connection cannot be read further */
        int unanswered_continue = c->parser->head.expect_continue && !q->body_reading;
        req_end(c);
        if (!keep || (body_pending && unanswered_continue)) {
            conn_close_after_flush(c);
            return;
        }
        if (body_pending) {
            /* the handler did not read the whole body: drop the rest */
            c->state = TT_CONN_DISCARD;
            tt_parser_resume(c->parser);
            set_read_timeout(c, c->limits->body_timeout_ms);
            return;
        }
        next_request(c);
        return;
    }
    if (c->state == TT_CONN_DISCARD && c->parser->message_done)
        next_request(c);
}

/* Write what is queued straight to the socket. Returns 1 when the output
 * is now empty. Only when the socket is full does the bufferevent's write
 * side take over (and with it an EPOLLOUT registration): arming and
 * disarming that for every response cost two epoll_ctl calls a request. */
static int conn_write_now(tt_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int n = 1;

    if (feed_spool(c) != 0)
        return 0;
    if (c->tls) {
        /* only OpenSSL may write the socket: the bufferevent does */
        size_t len = evbuffer_get_length(out);
        if (len == 0) {
            if (c->req != NULL && c->req->spool_head != NULL) {
                bufferevent_enable(c->bev, EV_WRITE);
                return 0;
            }
            return 1;
        }
        /* libevent hands OpenSSL one buffer chain per SSL_write, and each
         * becomes a record and a send(): a head and a small body in one
         * chain leave as one record (up to the 16 KiB a record holds) */
        evbuffer_pullup(out, (ev_ssize_t)(len < 16384 ? len : 16384));
        bufferevent_enable(c->bev, EV_WRITE);
        return 0;
    }
    if (c->rate_limited && evbuffer_get_length(out) > 0) {
        /* only the bufferevent's own writing honours the speed limit */
        bufferevent_enable(c->bev, EV_WRITE);
        return 0;
    }

    /* a socket bufferevent freezes the start of its output so that only it
     * drains it: thaw it for our write */
    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) > 0 && n > 0) {
        errno = 0;
        n = evbuffer_write(out, bufferevent_getfd(c->bev));
    }
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) == 0) {
        if (c->req != NULL && c->req->spool_head != NULL) {
            bufferevent_enable(c->bev, EV_WRITE);   /* write_cb feeds the next slice */
            return 0;
        }
        uncork(c);
        return 1;
    }
    if (n == 0 && errno == 0) {
        /* sendfile wrote nothing and failed with nothing (libevent turns
         * its EAGAIN into 0 too, but then errno says so): the file ended
         * before the range queued did (see event_cb) */
        tt_log(TT_LOG_WARN, "a file being sent shrank; closing the connection");
        conn_close(c);
        return 0;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(c);              /* reset or broken pipe: the client left */
        return 0;
    }
    bufferevent_enable(c->bev, EV_WRITE);
    return 0;
}

/* An upgraded connection: what the client sends goes to the handler as it
 * is, no parser, for as long as it reads; its end is TT_BODY_END. */
static void tunnel_input(tt_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    tt_req *q = c->req;

    while (q != NULL && q == c->req && q->body_reading && !q->body_done &&
           !q->body_paused && !c->dead) {
        struct evbuffer_iovec v;
        /* (an emptied buffer may still peek one chain of 0 bytes) */
        if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1) {
            if (!c->peer_closed)
                return;
            q->body_done = 1;
            q->body_cb(&q->pub, NULL, 0, TT_BODY_END, q->body_arg);
            return;
        }
        size_t n = v.iov_len < TT_BODY_SLICE ? v.iov_len : TT_BODY_SLICE;
        q->body_received += n;
        /* the handler must not touch the input: it is drained after */
        q->body_cb(&q->pub, v.iov_base, n, TT_BODY_DATA, q->body_arg);
        evbuffer_drain(in, n);
    }
}

/* One step of reading: run the parser over what has arrived until it must
 * wait (for the response, the handler, or more bytes). */
static void parse_available(tt_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    for (;;) {
        conn_advance(c);
        if (c->dead || c->state == TT_CONN_CLOSING)
            break;
        if (c->state == TT_CONN_TUNNEL) {
            tunnel_input(c);
            break;
        }
        if (evbuffer_get_length(in) == 0)
            break;
        if (c->state == TT_CONN_IDLE) {
            idle_remove(c);
            c->state = TT_CONN_HEAD;
            c->limits = &c->listen->servers[0]->limits;
            start_head_deadline(c);
        }
        if (parser_get(c) == NULL) {
            conn_close(c);
            break;
        }
        if (c->parser->message_done || c->parser->paused)
            break;                  /* the current request is still being served */
        if (c->req && c->req->body_paused)
            break;

        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len;
        if (c->state == TT_CONN_ACTIVE && n > TT_BODY_SLICE)
            n = TT_BODY_SLICE;      /* so a pause takes effect soon */
        int status;
        size_t used = tt_parser_feed(c->parser, v.iov_base, n, &status);
        evbuffer_drain(in, used);
        if (status == 0)
            status = c->parser->status;      /* set by on_body: 413 */
        if (status) {
            conn_fail(c, status);
            if (c->dead || c->state == TT_CONN_CLOSING || (c->req && c->req->finished))
                break;
            continue;
        }
        if (c->dead || used == 0)
            break;
    }
    if (!c->dead && c->state == TT_CONN_HEAD && c->parser != NULL && c->parser->started)
        rearm_head_deadline(c);     /* part of a head came: keep the deadline absolute */
}

/* Read only what we can use: while the request being served holds the
 * parser (its response is not done, or its handler paused the body), stop
 * reading once a little is buffered, so a client cannot make us hold more
 * than TT_READ_HIGH_WATER however much it sends or pipelines. */
static void update_reading(tt_conn *c)
{
    tt_req *q = c->req;
    int blocked = c->parser != NULL &&
                  (c->parser->message_done || c->parser->paused ||
                   (q != NULL && q->body_paused));
    if (c->state == TT_CONN_TUNNEL)
        blocked = q == NULL || !q->body_reading || q->body_paused || q->body_done;
    int full = evbuffer_get_length(bufferevent_get_input(c->bev)) >= TT_READ_HIGH_WATER;
    int want = !(blocked && full) && c->state != TT_CONN_CLOSING;

    if (want == !c->read_off)
        return;
    c->read_off = !want;
    if (want)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
}

static void process_input(tt_conn *c)
{
    if (c->in_input)
        return;
    c->in_input = 1;

    for (;;) {
        parse_available(c);
        if (c->dead)
            break;
        if (!conn_write_now(c) || c->dead)
            break;                  /* the bufferevent finishes the write */
        tt_req *q = c->req;
        if (q != NULL && q->drain_cb != NULL) {
            tt_request_cb cb = q->drain_cb;
            q->drain_cb = NULL;
            cb(&q->pub, q->drain_arg);
            continue;               /* the handler may have written more */
        }
        /* the output is flushed: loop if that lets the connection move on
         * (a finished response ends, the next pipelined request starts) */
        if (c->state == TT_CONN_CLOSING || q == NULL || !q->finished)
            break;
    }
    c->in_input = 0;
    if (c->dead) {
        conn_close(c);
        return;
    }
    if (c->state == TT_CONN_CLOSING) {
        if (output_empty(c))
            conn_finish_close(c);
        return;
    }
    update_reading(c);
}

/* ---------------------------------------------------------------- libevent callbacks */

static void read_cb(struct bufferevent *bev, void *arg)
{
    process_input(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    tt_conn *c = arg;

    if (feed_spool(c) != 0)
        return;
    if (output_empty(c)) {
        bufferevent_disable(bev, EV_WRITE);     /* direct writes again */
        uncork(c);
    }

    if (c->state == TT_CONN_CLOSING) {
        if (output_empty(c))
            conn_finish_close(c);
        return;
    }
    /* This callback also runs on a trigger, to write what a handler added
     * (tt_conn_output_added): a handler waiting for the drain hears of it
     * only when the output is really out, or it would pile up without
     * bound behind a slow client (process_input calls it once it is). */
    tt_req *q = c->req;
    if (q != NULL && q->drain_cb != NULL && output_empty(c)) {
        tt_request_cb cb = q->drain_cb;
        q->drain_cb = NULL;
        cb(&q->pub, q->drain_arg);
        if (c->req != q)
            return;
    }
    process_input(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    tt_conn *c = arg;
    tt_req *q = c->req;

    if (what == BEV_EVENT_CONNECTED)
        return;                     /* TLS: the handshake is done */

    if (what & BEV_EVENT_TIMEOUT) {
        if (what & BEV_EVENT_READING) {
            if (c->state == TT_CONN_HEAD && c->parser != NULL && c->parser->started) {
                conn_fail(c, 408);  /* slowloris: the head did not arrive in time */
                return;
            }
            if (c->state == TT_CONN_ACTIVE && q != NULL && !q->started) {
                conn_fail(c, 408);  /* the body stopped coming */
                return;
            }
            if (q != NULL && q->body_reading && !q->body_done) {
                q->body_done = 1;
                q->body_cb(&q->pub, NULL, 0, TT_BODY_ERROR, q->body_arg);
            }
        }
        conn_close(c);              /* idle keep-alive, silent client, stuck writes */
        return;
    }
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_WRITING) && !c->tls) {
        /* libevent's writer saw a write of 0 bytes. Its sendfile path
         * reports EAGAIN that way (errno tells): write again when the
         * socket lets us. Otherwise sendfile found its file shorter than
         * the range queued (truncated since it was opened): the response
         * cannot be completed, and nothing else would drain the buffer. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            bufferevent_enable(bev, EV_WRITE);
            return;
        }
        tt_log(TT_LOG_WARN, "a file being sent to %s shrank; closing the connection",
               q != NULL ? q->pub.remote_addr : "a client");
        conn_close(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && c->state == TT_CONN_TUNNEL) {
        /* the client closed its side: what it sent before still goes to
         * the handler, then TT_BODY_END; the handler closes ours */
        c->peer_closed = 1;
        bufferevent_disable(bev, EV_READ);
        c->read_off = 1;
        process_input(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->peer_closed = 1;
        int body_missing = q != NULL && q->pub.has_body && !c->parser->message_done;
        if (q == NULL || body_missing || c->state != TT_CONN_ACTIVE) {
            conn_close(c);
            return;
        }
        /* the client half-closed after a whole request: answer, then close */
        c->closing = 1;
        return;
    }
    conn_close(c);                  /* BEV_EVENT_ERROR: reset, EPIPE, ... */
}

/* ---------------------------------------------------------------- closing */

static void linger_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
    tt_conn *c = arg;
    bufferevent_free(c->bev);
    c->bev = NULL;
    conn_close(c);
}

/* Output is flushed: close, lingering when the client may still send. */
static void conn_finish_close(tt_conn *c)
{
    if (c->lingering)
        return;
    if (c->bev == NULL) {
        conn_close(c);
        return;
    }
    int unread = (c->parser != NULL && (c->parser->started || !c->parser->message_done)) ||
                 evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
    if (!unread || c->peer_closed || c->tls) {
        conn_close(c);
        return;
    }
    req_end(c);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    shutdown(fd, SHUT_WR);
    bufferevent_setcb(c->bev, linger_read, NULL, linger_event, c);
    set_read_timeout(c, TT_LINGER_MS);      /* linger_event closes on it */
    bufferevent_enable(c->bev, EV_READ);
    linger_read(c->bev, c);
    c->state = TT_CONN_CLOSING;
    c->lingering = 1;
}

static void conn_close(tt_conn *c)
{
    if (c->in_input) {
        c->dead = 1;            /* process_input() frees it on its way out */
        return;
    }
    req_end(c);
    idle_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        tt_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    tt_nconns--;

    if (c->compact) {
        evutil_socket_t fd = event_get_fd(c->idle_ev);
        event_free(c->idle_ev);
        evutil_closesocket(fd);
    } else if (c->bev) {
        if (c->tls) {
            /* freeing the bufferevent would not say goodbye: close_notify
             * first (best effort, the socket is non-blocking) */
            SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
            if (ssl != NULL && SSL_is_init_finished(ssl))
                SSL_shutdown(ssl);
        }
        bufferevent_free(c->bev);
    }
    parser_drop(c);
    free(c);
    if (tt_closed_cb)
        tt_closed_cb();
}

/* ---------------------------------------------------------------- for response.c and api.c */

void tt_conn_output_added(tt_conn *c)
{
    /* Inside process_input the output is flushed on the way out. From
     * anywhere else (a handler's callback: an app's response from another
     * thread) the write callback runs at the end of this turn of the loop
     * and writes straight to the socket: arming EV_WRITE instead would cost
     * two epoll_ctl calls per response, and many responses made in one
     * turn share the one deferred queue. */
    if (!c->in_input)
        bufferevent_trigger(c->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void tt_conn_response_finished(tt_conn *c)
{
    if (output_empty(c))
        bufferevent_trigger(c->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* The 101 is queued: from here the connection is a tunnel. Timeouts are
 * the protocol's (a WebSocket pings and has its own idle timeout); only
 * send_timeout stays, against a client that stops reading. */
void tt_conn_upgraded(tt_conn *c)
{
    c->state = TT_CONN_TUNNEL;
    c->closing = 1;
    set_read_timeout(c, 0);
}

int tt_body_read(tt_request *r, tt_body_cb cb, void *arg)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || q->body_reading || cb == NULL)
        return -1;
    q->body_cb = cb;
    q->body_arg = arg;
    q->body_reading = 1;
    if (q->tunnel) {
        process_input(c);       /* bytes that came with the head */
        return 0;
    }
    if (!r->has_body) {
        q->body_done = 1;
        cb(r, NULL, 0, TT_BODY_END, arg);
        return 0;
    }
    if (c->parser->head.expect_continue && !q->started && !q->continue_sent) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        q->continue_sent = 1;
        bufferevent_write(c->bev, cont, sizeof(cont) - 1);
        tt_conn_output_added(c);
    }
    set_read_timeout(c, c->limits->body_timeout_ms);
    tt_parser_resume(c->parser);
    process_input(c);
    return 0;
}

void tt_body_pause(tt_request *r, int paused)
{
    tt_req *q = (tt_req *)r;

    if (q->c == NULL || q->body_paused == !!paused)
        return;
    q->body_paused = !!paused;
    if (!paused)
        process_input(q->c);
}

void tt_req_on_stop(tt_request *r, tt_request_cb cb, void *arg)
{
    tt_req *q = (tt_req *)r;
    q->stop_cb = cb;
    q->stop_arg = arg;
}

/* Every module on the request's way (filters, then the handler) may want
 * to hear of its end: the hooks stack up, and the last one added runs
 * first, so a handler cleans up before the filters that let it run. */
void tt_req_on_close(tt_request *r, tt_request_cb cb, void *arg)
{
    tt_req *q = (tt_req *)r;
    struct tt_close_hook *h = tt_arena_alloc(q->pool, sizeof(*h));
    if (h == NULL) {
        tt_log(TT_LOG_ERROR, "out of memory registering a close hook for \"%s\"",
               r->target);
        return;
    }
    h->cb = cb;
    h->arg = arg;
    h->next = q->close_hooks;
    q->close_hooks = h;
}

/* A module's key=value for this request's access line: set again, the
 * value is replaced and the field keeps its place. Both are copied. */
int tt_req_log_field(tt_request *r, const char *key, const char *value)
{
    tt_req *q = (tt_req *)r;
    struct tt_log_field **link = &q->log_fields;

    if (*key == '\0' || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(key))
        return -1;                  /* a key must not break the line's syntax */
    if (!tt_access_log_on())
        return 0;                   /* access_log: off: nobody reads it */
    for (; *link != NULL; link = &(*link)->next)
        if (strcmp((*link)->key, key) == 0)
            break;
    char *v = tt_arena_strndup(q->pool, value, strlen(value));
    if (v == NULL)
        return -1;
    if (*link != NULL) {
        (*link)->value = v;
        return 0;
    }
    struct tt_log_field *f = tt_arena_alloc(q->pool, sizeof(*f));
    char *k = tt_arena_strndup(q->pool, key, strlen(key));
    if (f == NULL || k == NULL)
        return -1;
    f->next = NULL;
    f->key = k;
    f->value = v;
    *link = f;
    return 0;
}

/* The response cannot complete (an app failed after its head went out):
 * what is queued still goes out, then the connection closes instead of
 * ending the body (no last chunk), so the client sees a cut, never a false
 * end. It ends like a finished response otherwise: the close hooks run
 * once the output is flushed. */
void tt_req_abort(tt_request *r)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || q->finished)
        return;
    if (!q->started)
        q->status = 500;            /* for the access log: nothing was sent */
    q->started = 1;
    q->finished = 1;
    q->truncated = 1;               /* no keep-alive after it */
    c->closing = 1;
    tt_conn_response_finished(c);
}

/* Write the output out until no more than `below` bytes wait, blocking this
 * worker (poll) for at most timeout_ms (0: send_timeout): for a handler that runs on the
 * event loop and cannot give it back mid-call (a WSGI app's write() with
 * threads: 0). The throttle's bucket is honoured and charged. -1 when the
 * client is gone or too slow: the caller aborts; the loop sees the rest. */
int tt_resp_wait_drain(tt_request *r, size_t below, uint64_t timeout_ms)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || c->bev == NULL)
        return -1;
    if (c->tls) {
        /* Only OpenSSL may write a TLS socket, and only the loop drives it:
         * the output is left to grow here (an app on the loop calling the
         * legacy write() over HTTPS holds its body in memory). */
        return 0;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint64_t until = now_ms() + (timeout_ms > 0 ? timeout_ms : c->limits->send_timeout_ms);

    while (tt_resp_pending(r) > below) {
        if (evbuffer_get_length(out) == 0) {
            if (q->spool_head == NULL || tt_spool_feed(q) != 0)
                return -1;
            continue;
        }
        ev_ssize_t room = -1;
        if (c->rate_limited && (room = bufferevent_get_max_to_write(c->bev)) <= 0) {
            struct timespec tick = { 0, 10 * 1000 * 1000 };     /* the bucket refills */
            nanosleep(&tick, NULL);
            if (now_ms() >= until)
                return -1;
            continue;
        }
        /* the bufferevent froze its output's start: thaw it for this write */
        evbuffer_unfreeze(out, 1);
        errno = 0;
        int n = evbuffer_write_atmost(out, fd, room);
        evbuffer_freeze(out, 1);
        if (n == 0 && errno == 0)
            return -1;              /* a file in the output ended early */
        if (n > 0) {
            if (c->rate_limited)
                bufferevent_decrement_write_limit(c->bev, n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        uint64_t now = now_ms();
        if (now >= until)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, (int)(until - now)) < 0 && errno != EINTR)
            return -1;
        if (p.revents & (POLLERR | POLLHUP))
            return -1;
    }
    return 0;
}

const char *tt_req_header(const tt_request *r, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const tt_header *h = &r->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0) {
            if (len)
                *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

void *tt_req_palloc(tt_request *r, size_t n)
{
    return tt_arena_alloc(((tt_req *)r)->pool, n);
}

/* ---------------------------------------------------------------- idle compaction */

/* A keep-alive connection idle for half a second gives up its bufferevent and
 * buffers (about 950 bytes in libevent) and waits for its next request on a
 * bare read event; the first byte brings the bufferevent back. Busy
 * connections never pay for this, and many idle ones cost little: this is
 * what keeps memory per idle connection near nginx's. */
static int attach_bev(tt_conn *c, struct event_base *base, evutil_socket_t fd)
{
    if (c->listen != NULL && c->listen->tls) {
        /* HTTPS: OpenSSL between the socket and the buffers. The server
         * of the first name is the default; the SNI callback (tls.c) moves
         * the connection to the context of the name the client asks for. */
        SSL *ssl = SSL_new(c->listen->servers[0]->tls->ctx);
        if (ssl == NULL)
            return -1;
        SSL_set_app_data(ssl, c->listen);
        c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            SSL_free(ssl);
            return -1;
        }
        /* a client that closes without close_notify is an EOF, not an
         * error (libevent 2.1 + OpenSSL 3 report it as SSL_ERROR_SSL) */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = 1;
    } else {
        c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL)
            return -1;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    /* bufferevents start with writing on; ours writes directly (see
     * conn_write_now) and turns it on only when the socket is full, or for
     * TLS when a whole response is queued (OpenSSL still writes its
     * handshake by itself) */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    c->read_off = 0;
    return 0;
}

static void compact_wake(evutil_socket_t fd, short what, void *arg)
{
    tt_conn *c = arg;
    struct event_base *base = event_get_base(c->idle_ev);

    event_free(c->idle_ev);
    c->compact = 0;
    c->bev = NULL;
    if ((what & EV_TIMEOUT) || attach_bev(c, base, fd) != 0) {
        evutil_closesocket(fd);     /* keep-alive timeout, or out of memory */
        conn_close(c);
        return;
    }
    set_read_timeout(c, ms_until(c->mark_ms + c->limits->keepalive_timeout_ms));
}

static void compact(tt_conn *c)
{
    struct event_base *base = bufferevent_get_base(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    struct event *ev = event_new(base, fd, EV_READ, compact_wake, c);
    if (ev == NULL)
        return;
    bufferevent_setfd(c->bev, -1);  /* so freeing it does not close the socket */
    bufferevent_free(c->bev);
    c->idle_ev = ev;
    c->compact = 1;
    uint64_t left = ms_until(c->mark_ms + c->limits->keepalive_timeout_ms);
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    event_add(ev, &tv);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t now = now_ms();
    size_t compacted = 0;

    for (tt_conn *c = tt_conns; c != NULL; c = c->next) {
        /* (a TLS connection keeps its bufferevent: the session lives in it) */
        if (c->compact || c->tls || c->state != TT_CONN_IDLE ||
            now - c->mark_ms < TT_COMPACT_AFTER_MS)
            continue;
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 || !output_empty(c))
            continue;
        compact(c);
        compacted++;
    }
    /* Freed memory stays in the process until the allocator gives the pages
     * back. Ask it to after a large batch (its cost grows with the heap, so
     * not for every handful), and once more when parking has settled. */
    static size_t untrimmed;
    untrimmed += compacted;
    if (untrimmed >= TT_TRIM_AFTER || (compacted == 0 && untrimmed > 0)) {
        malloc_trim(0);
        untrimmed = 0;
    }
}

static void sweep_stop(void)
{
    if (tt_sweep != NULL) {
        event_free(tt_sweep);
        tt_sweep = NULL;
    }
}

/* ---------------------------------------------------------------- the worker's view */

void tt_conn_accept(struct event_base *base, const tt_config *cf, tt_listen *l,
                    evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    tt_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->listen = l;
    if (attach_bev(c, base, fd) != 0) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    if (tt_sweep == NULL && !tt_graceful) {
        struct timeval tv = { 0, TT_SWEEP_MS * 1000 };
        tt_sweep = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
        if (tt_sweep != NULL)
            event_add(tt_sweep, &tv);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    c->listen = l;
    c->limits = &l->servers[0]->limits;
    addr_copy(&c->remote, sa, (socklen_t)salen);
    struct sockaddr_storage local;
    socklen_t locallen = sizeof(local);
    if (getsockname(fd, (struct sockaddr *)&local, &locallen) == 0)
        addr_copy(&c->local, (struct sockaddr *)&local, locallen);

    c->next = tt_conns;
    if (tt_conns)
        tt_conns->prev = c;
    tt_conns = c;
    tt_nconns++;
    tt_max_idle = cf->max_idle;

    c->state = TT_CONN_HEAD;
    start_head_deadline(c);     /* from accept: a silent client is cut off too */
}

size_t tt_conn_active(void)
{
    return tt_nconns;
}

void tt_conn_graceful(void)
{
    tt_graceful = 1;
    sweep_stop();
    tt_conn *c = tt_conns;
    while (c != NULL) {
        tt_conn *next = c->next;
        /* Idle keep-alive connections close now (clients retry those, as
         * with nginx). A connection accepted but not yet read may carry a
         * request already on its way: serve that one, then close. */
        if (c->state == TT_CONN_IDLE) {
            conn_close(c);
        } else {
            c->closing = 1;
            tt_req *q = c->req;
            if (q != NULL && q->stop_cb != NULL) {
                /* a tunnel or a long stream would hold the stop until
                 * shutdown_timeout: its handler winds it down */
                tt_request_cb cb = q->stop_cb;
                q->stop_cb = NULL;
                cb(&q->pub, q->stop_arg);
            }
        }
        c = next;
    }
    while (pool_cached > 0)
        tt_arena_destroy(pool_cache[--pool_cached]);
}

void tt_conn_close_all(void)
{
    sweep_stop();
    while (tt_conns != NULL)
        conn_close(tt_conns);
    while (pool_cached > 0)
        tt_arena_destroy(pool_cache[--pool_cached]);
}

void tt_conn_on_closed(void (*cb)(void))
{
    tt_closed_cb = cb;
}
