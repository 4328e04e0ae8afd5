/* The request head tutti sends upstream (doc/proxy.md, "What is sent").
 *
 * The client's headers pass in their order, less what belongs to the
 * client's connection (RFC 9110 7.6.1: Connection and every header it
 * names, and the known hop-by-hop ones), less what tutti writes itself
 * (Host, framing, the X-Forwarded-* set, which a client must not be able to
 * forge), less what `headers:` replaces or removes.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <event2/buffer.h>
#include "proxy.h"

int px_hop_by_hop(const char *name, size_t len, const char *connection, size_t clen)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", NULL
    };
    for (int i = 0; hop[i] != NULL; i++)
        if (px_name_is(name, len, hop[i]))
            return 1;
    if (connection == NULL || len == 0 || len > 64)
        return 0;
    char token[65];
    memcpy(token, name, len);
    token[len] = '\0';
    return px_has_token(connection, clen, token);
}

/* Every Connection header of r, joined (a client may send several). */
static const char *connection_value(tt_request *r, size_t *len)
{
    size_t total = 0, n = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (px_name_is(r->headers[i].name, r->headers[i].name_len, "Connection")) {
            total += r->headers[i].value_len + 1;
            n++;
        }
    *len = 0;
    if (n == 0)
        return NULL;
    char *v = px_api->palloc(r, total + 1), *p = v;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (px_name_is(r->headers[i].name, r->headers[i].name_len, "Connection")) {
            if (p != v)
                *p++ = ',';
            memcpy(p, r->headers[i].value, r->headers[i].value_len);
            p += r->headers[i].value_len;
        }
    *len = (size_t)(p - v);
    return v;
}

const px_edit *px_find_edit(const px_edit *e, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (px_name_is(name, len, e[i].name))
            return &e[i];
    return NULL;
}

const char *px_expand(tt_request *r, const char *value, size_t *len)
{
    char port[8], sport[8];
    size_t cap = 0;

    snprintf(port, sizeof(port), "%d", r->remote_port);
    snprintf(sport, sizeof(sport), "%d", r->local_port);
    struct { const char *name; const char *v; size_t vlen; } vars[] = {
        { "remote_addr", r->remote_addr, strlen(r->remote_addr) },
        { "remote_port", port, strlen(port) },
        { "host", r->host, r->host_len },
        { "scheme", r->tls ? "https" : "http", r->tls ? 5 : 4 },
        { "server_port", sport, strlen(sport) },
        { "request_uri", r->target, r->target_len },
    };
    size_t nvars = sizeof(vars) / sizeof(vars[0]);

    /* two passes: measure, then write */
    for (int pass = 0; pass < 2; pass++) {
        char *out = pass ? px_api->palloc(r, cap + 1) : NULL;
        size_t o = 0;
        if (pass && out == NULL)
            return NULL;
        for (const char *s = value; *s;) {
            if (*s != '$') {
                if (pass)
                    out[o] = *s;
                o++;
                s++;
                continue;
            }
            if (s[1] == '$') {
                if (pass)
                    out[o] = '$';
                o++;
                s += 2;
                continue;
            }
            size_t k;
            for (k = 0; k < nvars; k++) {
                size_t nl = strlen(vars[k].name);
                if (strncmp(s + 1, vars[k].name, nl) == 0 && s[1 + nl] != '_' &&
                    !(s[1 + nl] >= 'a' && s[1 + nl] <= 'z'))
                    break;
            }
            if (k == nvars) {                   /* checked at config time */
                if (pass)
                    out[o] = '$';
                o++;
                s++;
                continue;
            }
            for (size_t j = 0; j < vars[k].vlen; j++) {
                /* a client's Host or target must not end the header line */
                char c = vars[k].v[j];
                if (pass)
                    out[o] = (c == '\r' || c == '\n') ? ' ' : c;
                o++;
            }
            s += 1 + strlen(vars[k].name);
        }
        if (pass) {
            out[o] = '\0';
            *len = o;
            return out;
        }
        cap = o;
    }
    return NULL;
}

/* The head is put together in a buffer on the stack and handed to the
 * evbuffer in one piece (or a few, for a head over 8 KiB): forty small
 * evbuffer_add calls per request were a visible part of the proxy's time. */
typedef struct {
    struct evbuffer *dst;
    size_t           n;
    char             buf[8192];
} px_out;

static void out_flush(px_out *o)
{
    if (o->n > 0)
        evbuffer_add(o->dst, o->buf, o->n);
    o->n = 0;
}

static void put(px_out *o, const void *p, size_t len)
{
    if (o->n + len > sizeof(o->buf)) {
        out_flush(o);
        if (len > sizeof(o->buf)) {
            evbuffer_add(o->dst, p, len);
            return;
        }
    }
    memcpy(o->buf + o->n, p, len);
    o->n += len;
}

static void add_header(px_out *out, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    put(out, name, nlen);
    put(out, ": ", 2);
    put(out, value, vlen);
    put(out, "\r\n", 2);
}

#define ADD(out, lit) put(out, lit, sizeof(lit) - 1)

/* The path sent upstream: the route's prefix replaced by `path:` when it
 * is set, otherwise the target's path exactly as the client sent it. */
static void add_target(const px_conf *cf, tt_request *r, px_out *out)
{
    if (r->target_len == 1 && r->target[0] == '*') {
        ADD(out, "*");
        return;
    }
    const char *path = r->raw_path;
    size_t len = r->raw_path_len;
    if (cf->path != NULL) {
        size_t plen = r->route_prefix_len;
        /* the prefix as written in match; the raw path may spell it with
         * escapes, then the decoded path is what matched */
        if (len >= plen && memcmp(path, r->route_prefix, plen) == 0) {
            path += plen;
            len -= plen;
        } else if (r->path_len >= plen && memcmp(r->path, r->route_prefix, plen) == 0) {
            path = r->path + plen;
            len = r->path_len - plen;
        } else {
            plen = 0;
        }
        /* "/api/" + "x" or "/api" + "/x": one slash between them */
        size_t rl = cf->path_len;
        if (rl > 0 && cf->path[rl - 1] == '/' && len > 0 && path[0] == '/')
            rl--;
        put(out, cf->path, rl);
        if (rl > 0 && cf->path[rl - 1] != '/' && len > 0 && path[0] != '/')
            ADD(out, "/");
    }
    put(out, path, len);
    if (memchr(r->target, '?', r->target_len) != NULL) {
        ADD(out, "?");
        put(out, r->query, r->query_len);
    }
}

int px_request_head(const px_conf *cf, tt_request *r, const px_peer *peer, int upgrade,
                    struct evbuffer *dst)
{
    px_out o, *out = &o;
    o.dst = dst;
    o.n = 0;
    size_t clen;
    const char *conn = connection_value(r, &clen);
    const char *xff = NULL;
    size_t xff_len = 0;

    put(out, r->method, r->method_len);
    ADD(out, " ");
    add_target(cf, r, out);
    ADD(out, " HTTP/1.1\r\n");

    /* Host first, as clients send it */
    size_t hlen = 0;
    const char *host = px_api->header(r, "Host", &hlen);
    if (cf->host_mode == PX_HOST_LITERAL)
        add_header(out, "Host", 4, cf->host, strlen(cf->host));
    else if (cf->host_mode == PX_HOST_PASS && host != NULL && hlen > 0)
        add_header(out, "Host", 4, host, hlen);
    else
        add_header(out, "Host", 4, peer->host, strlen(peer->host));

    for (size_t i = 0; i < r->nheaders; i++) {
        const tt_header *h = &r->headers[i];
        if (px_hop_by_hop(h->name, h->name_len, conn, clen) ||
            px_name_is(h->name, h->name_len, "Host") ||
            px_name_is(h->name, h->name_len, "Content-Length") ||
            px_name_is(h->name, h->name_len, "Expect"))    /* tutti answers 100-continue */
            continue;
        if (cf->forwarded) {
            if (px_name_is(h->name, h->name_len, "X-Forwarded-For")) {
                if (xff == NULL) {
                    xff = h->value;
                    xff_len = h->value_len;
                } else {                        /* several lines: one list */
                    char *j = px_api->palloc(r, xff_len + 2 + h->value_len);
                    if (j != NULL) {
                        memcpy(j, xff, xff_len);
                        memcpy(j + xff_len, ", ", 2);
                        memcpy(j + xff_len + 2, h->value, h->value_len);
                        xff = j;
                        xff_len += 2 + h->value_len;
                    }
                }
                continue;
            }
            if (px_name_is(h->name, h->name_len, "X-Forwarded-Proto") ||
                px_name_is(h->name, h->name_len, "X-Forwarded-Host") ||
                px_name_is(h->name, h->name_len, "X-Real-IP"))
                continue;
        }
        if (px_find_edit(cf->req_edits, cf->nreq_edits, h->name, h->name_len) != NULL)
            continue;
        add_header(out, h->name, h->name_len, h->value, h->value_len);
    }

    if (r->has_body && r->content_length >= 0) {
        char n[32];
        int l = snprintf(n, sizeof(n), "%lld", (long long)r->content_length);
        add_header(out, "Content-Length", 14, n, (size_t)l);
    } else if (r->has_body) {
        ADD(out, "Transfer-Encoding: chunked\r\n");
    } else if (r->content_length == 0) {
        ADD(out, "Content-Length: 0\r\n");
    }

    if (upgrade) {
        size_t ulen;
        const char *u = px_api->header(r, "Upgrade", &ulen);
        if (u != NULL)
            add_header(out, "Upgrade", 7, u, ulen);
        ADD(out, "Connection: upgrade\r\n");
    } else if (cf->group.keepalive == 0) {
        ADD(out, "Connection: close\r\n");
    }

    if (cf->forwarded) {
        /* a `headers:` edit of one of these wins over tutti's own */
#define EDITED(n) (px_find_edit(cf->req_edits, cf->nreq_edits, n, sizeof(n) - 1) != NULL)
        if (!EDITED("X-Forwarded-For")) {
            ADD(out, "X-Forwarded-For: ");
            if (xff != NULL && xff_len > 0) {
                put(out, xff, xff_len);
                ADD(out, ", ");
            }
            put(out, r->remote_addr, strlen(r->remote_addr));
            ADD(out, "\r\n");
        }
        if (!EDITED("X-Forwarded-Proto")) {
            if (r->tls)
                ADD(out, "X-Forwarded-Proto: https\r\n");
            else
                ADD(out, "X-Forwarded-Proto: http\r\n");
        }
        if (host != NULL && hlen > 0 && !EDITED("X-Forwarded-Host"))
            add_header(out, "X-Forwarded-Host", 16, host, hlen);
        if (!EDITED("X-Real-IP"))
            add_header(out, "X-Real-IP", 9, r->remote_addr, strlen(r->remote_addr));
#undef EDITED
    }
    if (cf->via)
        ADD(out, "Via: 1.1 tutti\r\n");

    for (size_t i = 0; i < cf->nreq_edits; i++) {
        const px_edit *e = &cf->req_edits[i];
        if (e->value == NULL)
            continue;
        size_t vlen = strlen(e->value);
        const char *v = e->has_vars ? px_expand(r, e->value, &vlen) : e->value;
        if (v != NULL)
            add_header(out, e->name, e->name_len, v, vlen);
    }
    ADD(out, "\r\n");
    out_flush(out);
    return 0;
}
