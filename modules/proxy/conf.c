/* The `proxy:` route key (doc/proxy.md):
 *
 *   proxy: 127.0.0.1:9000
 *   proxy: {upstreams: [a:1, {address: b:2, weight: 2}], balance: least_conn, ...}
 *
 * Host names are resolved here, once, as nginx does at start: a request
 * never waits on DNS, and a name that does not resolve is a config error
 * the user sees before the daemon starts.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "proxy.h"

#define PX_MAX_PEERS 256

static char *conf_strdup(const char *s, size_t len)
{
    char *d = px_api->conf_alloc(len + 1);
    if (d != NULL)
        memcpy(d, s, len);
    return d;
}

static void peer_defaults(px_peer *p)
{
    p->weight = 1;
    p->max_fails = 1;
    p->fail_ms = 10000;
}

int px_parse_address(const char *s, px_peer *out, size_t max, char *msg, size_t msglen)
{
    char host[256];
    const char *port;

    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    else if (strstr(s, "://") != NULL) {
        snprintf(msg, msglen, "only http:// upstreams are supported (TLS to upstreams is not)");
        return -1;
    }
    size_t slen = strlen(s);
    if (slen > 0 && s[slen - 1] == '/')
        slen--;                             /* "http://a:1/" */
    if (max == 0)
        return 0;

    if (strncmp(s, "unix:", 5) == 0) {
        px_peer *p = &out[0];
        size_t plen = slen - 5;
        if (plen == 0 || s[5] != '/' || plen >= sizeof(p->addr.un.sun_path)) {
            snprintf(msg, msglen, "a unix socket is unix:/absolute/path (at most %zu bytes)",
                     sizeof(p->addr.un.sun_path) - 1);
            return -1;
        }
        memset(&p->addr, 0, sizeof(p->addr));
        p->addr.un.sun_family = AF_UNIX;
        memcpy(p->addr.un.sun_path, s + 5, plen);
        p->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
        return 1;
    }

    if (s[0] == '[') {
        const char *close = memchr(s, ']', slen);
        if (close == NULL || close[1] != ':') {
            snprintf(msg, msglen, "an IPv6 upstream is [address]:port, such as [::1]:9000");
            return -1;
        }
        size_t hlen = (size_t)(close - s - 1);
        if (hlen >= sizeof(host)) {
            snprintf(msg, msglen, "the address is too long");
            return -1;
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        port = close + 2;
    } else {
        const char *colon = memchr(s, ':', slen);
        if (colon == NULL || memchr(colon + 1, ':', (size_t)(s + slen - colon - 1)) != NULL) {
            snprintf(msg, msglen, "an upstream is host:port, [v6]:port or unix:/path, "
                     "such as 127.0.0.1:9000");
            return -1;
        }
        size_t hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof(host)) {
            snprintf(msg, msglen, "an upstream is host:port, such as 127.0.0.1:9000");
            return -1;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        port = colon + 1;
    }
    size_t portlen = (size_t)(s + slen - port);
    char portbuf[8];
    if (portlen == 0 || portlen > 5 || strspn(port, "0123456789") < portlen) {
        snprintf(msg, msglen, "the port must be a number from 1 to 65535");
        return -1;
    }
    memcpy(portbuf, port, portlen);
    portbuf[portlen] = '\0';
    long pn = strtol(portbuf, NULL, 10);
    if (pn < 1 || pn > 65535) {
        snprintf(msg, msglen, "the port must be a number from 1 to 65535");
        return -1;
    }

    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portbuf, &hints, &res);
    if (rc != 0) {
        snprintf(msg, msglen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(out[n].addr))
            continue;
        int dup = 0;                    /* getaddrinfo repeats an address per protocol */
        for (size_t k = 0; k < n; k++)
            if (out[k].addr_len == ai->ai_addrlen &&
                memcmp(&out[k].addr, ai->ai_addr, ai->ai_addrlen) == 0)
                dup = 1;
        if (dup)
            continue;
        memset(&out[n].addr, 0, sizeof(out[n].addr));
        memcpy(&out[n].addr, ai->ai_addr, ai->ai_addrlen);
        out[n].addr_len = (socklen_t)ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    if (n == 0) {
        snprintf(msg, msglen, "'%s' has no usable address", host);
        return -1;
    }
    return (int)n;
}

/* "127.0.0.1:9000", "[::1]:9000", "unix:/run/a.sock" */
static const char *peer_name(const px_peer *p)
{
    char buf[160], ip[INET6_ADDRSTRLEN];

    if (p->addr.sa.sa_family == AF_UNIX)
        snprintf(buf, sizeof(buf), "unix:%s", p->addr.un.sun_path);
    else if (p->addr.sa.sa_family == AF_INET6)
        snprintf(buf, sizeof(buf), "[%s]:%u",
                 inet_ntop(AF_INET6, &p->addr.in6.sin6_addr, ip, sizeof(ip)),
                 ntohs(p->addr.in6.sin6_port));
    else
        snprintf(buf, sizeof(buf), "%s:%u",
                 inet_ntop(AF_INET, &p->addr.in.sin_addr, ip, sizeof(ip)),
                 ntohs(p->addr.in.sin_port));
    return conf_strdup(buf, strlen(buf));
}

/* What host: upstream sends: the address as written (a name stays a name). */
static const char *peer_host(const char *written)
{
    if (strncmp(written, "http://", 7) == 0)
        written += 7;
    if (strncmp(written, "unix:", 5) == 0)
        return "localhost";
    size_t len = strlen(written);
    if (len > 0 && written[len - 1] == '/')
        len--;
    return conf_strdup(written, len);
}

static int conf_peer(const tt_conf_node *node, px_peer *peers, size_t *n, tt_errbuf *err)
{
    static const char *const keys[] = {
        "address", "weight", "max_fails", "fail_timeout", "backup", NULL
    };
    px_peer proto;
    const tt_conf_node *addr = node;

    memset(&proto, 0, sizeof(proto));
    peer_defaults(&proto);
    if (node->type == TT_CONF_MAP) {
        if (px_api->conf_check_keys(node, "upstream", keys, err) != 0)
            return -1;
        addr = px_api->conf_get(node, "address");
        if (addr == NULL) {
            px_api->conf_error(err, node, "an upstream map needs 'address', such as "
                               "{address: 127.0.0.1:9000, weight: 2}");
            return -1;
        }
        const tt_conf_node *v;
        long l;
        if ((v = px_api->conf_get(node, "weight")) != NULL) {
            if (px_api->conf_int(v, 1, 1000, &l, err) != 0)
                return -1;
            proto.weight = (int)l;
        }
        if ((v = px_api->conf_get(node, "max_fails")) != NULL) {
            if (px_api->conf_int(v, 0, 1000, &l, err) != 0)
                return -1;
            proto.max_fails = (int)l;
        }
        if ((v = px_api->conf_get(node, "fail_timeout")) != NULL &&
            px_api->conf_duration(v, &proto.fail_ms, err) != 0)
            return -1;
        if ((v = px_api->conf_get(node, "backup")) != NULL &&
            px_api->conf_bool(v, &proto.backup, err) != 0)
            return -1;
    } else if (node->type != TT_CONF_SCALAR) {
        px_api->conf_error(err, node, "an upstream is an address such as 127.0.0.1:9000, "
                           "or a map such as {address: 127.0.0.1:9000, weight: 2}");
        return -1;
    }
    const char *s;
    if (px_api->conf_string(addr, &s, err) != 0)
        return -1;
    char msg[256];
    px_peer found[16];
    int got = px_parse_address(s, found, 16, msg, sizeof(msg));
    if (got < 0) {
        px_api->conf_error(err, addr, "upstream '%s': %s", s, msg);
        return -1;
    }
    for (int i = 0; i < got; i++) {
        if (*n == PX_MAX_PEERS) {
            px_api->conf_error(err, addr, "more than %d upstreams in one route", PX_MAX_PEERS);
            return -1;
        }
        px_peer *p = &peers[(*n)++];
        *p = proto;
        p->addr = found[i].addr;
        p->addr_len = found[i].addr_len;
        p->name = peer_name(p);
        p->host = peer_host(s);
        if (p->name == NULL || p->host == NULL)
            return -1;
    }
    return 0;
}

static int conf_upstreams(const tt_conf_node *node, px_group *g, tt_errbuf *err)
{
    px_peer *tmp = calloc(PX_MAX_PEERS, sizeof(*tmp));
    size_t n = 0;
    int rc = -1;

    if (tmp == NULL)
        return -1;
    if (node->type == TT_CONF_SEQ) {
        if (node->n == 0) {
            px_api->conf_error(err, node, "'upstreams' is empty; name at least one, "
                               "such as upstreams: [127.0.0.1:9000]");
            goto out;
        }
        for (size_t i = 0; i < node->n; i++)
            if (conf_peer(node->items[i], tmp, &n, err) != 0)
                goto out;
    } else if (conf_peer(node, tmp, &n, err) != 0) {
        goto out;
    }
    /* primaries first: the balancers look at peers[0..nprimary) */
    g->peers = px_api->conf_alloc(n * sizeof(px_peer));
    if (g->peers == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (!tmp[i].backup)
            g->peers[g->npeers++] = tmp[i];
    g->nprimary = g->npeers;
    for (size_t i = 0; i < n; i++)
        if (tmp[i].backup)
            g->peers[g->npeers++] = tmp[i];
    if (g->nprimary == 0) {
        px_api->conf_error(err, node, "every upstream is a backup; at least one must not be");
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

static int is_null(const tt_conf_node *v)
{
    if (v->type != TT_CONF_SCALAR)
        return 0;
    if (v->len == 0)
        return 1;
    return !v->quoted && (strcmp(v->value, "null") == 0 || strcmp(v->value, "~") == 0);
}

static int conf_edits(const tt_conf_node *node, const char *what, px_edit **out,
                      size_t *nout, tt_errbuf *err)
{
    if (node->type != TT_CONF_MAP) {
        px_api->conf_error(err, node, "'%s' is a map of header: value (null removes), "
                           "such as %s: {X-Frame-Options: DENY, X-Powered-By: null}",
                           what, what);
        return -1;
    }
    px_edit *e = px_api->conf_alloc((node->n ? node->n : 1) * sizeof(*e));
    if (e == NULL)
        return -1;
    for (size_t i = 0; i < node->n; i++) {
        const tt_conf_node *k = node->keys[i], *v = node->items[i];
        for (size_t j = 0; j < k->len; j++) {
            unsigned char c = (unsigned char)k->value[j];
            if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c) != NULL) {
                px_api->conf_error(err, k, "'%s' is not a header name", k->value);
                return -1;
            }
        }
        e[i].name = k->value;
        e[i].name_len = k->len;
        if (is_null(v)) {
            e[i].value = NULL;
            continue;
        }
        if (v->type != TT_CONF_SCALAR) {
            px_api->conf_error(err, v, "the value of '%s' is one line of text", k->value);
            return -1;
        }
        for (size_t j = 0; j < v->len; j++) {
            unsigned char c = (unsigned char)v->value[j];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                px_api->conf_error(err, v, "the value of '%s' has a control character",
                                   k->value);
                return -1;
            }
        }
        e[i].value = v->value;
        e[i].has_vars = strchr(v->value, '$') != NULL;
        if (e[i].has_vars) {
            static const char *const vars[] = {
                "remote_addr", "remote_port", "host", "scheme", "server_port",
                "request_uri", NULL
            };
            for (const char *d = strchr(v->value, '$'); d != NULL; d = strchr(d + 1, '$')) {
                int known = 0;
                for (int m = 0; vars[m] != NULL; m++) {
                    size_t ml = strlen(vars[m]);
                    if (strncmp(d + 1, vars[m], ml) == 0 &&
                        !(d[1 + ml] == '_' || (d[1 + ml] >= 'a' && d[1 + ml] <= 'z')))
                        known = 1;
                }
                if (!known && d[1] != '$') {
                    px_api->conf_error(err, v, "'%s': unknown variable; use $remote_addr, "
                                       "$remote_port, $host, $scheme, $server_port or "
                                       "$request_uri ($$ for a dollar sign)", v->value);
                    return -1;
                }
                if (d[1] == '$')
                    d++;
            }
        }
    }
    *out = e;
    *nout = node->n;
    return 0;
}

static int conf_next_upstream(const tt_conf_node *node, unsigned *out, tt_errbuf *err)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        { "error", PX_NEXT_ERROR }, { "timeout", PX_NEXT_TIMEOUT },
        { "http_502", PX_NEXT_502 }, { "http_503", PX_NEXT_503 }, { "http_504", PX_NEXT_504 },
    };
    *out = 0;
    if (node->type == TT_CONF_SCALAR && (strcmp(node->value, "off") == 0 ||
                                         strcmp(node->value, "false") == 0))
        return 0;
    size_t n = node->type == TT_CONF_SEQ ? node->n : 1;
    for (size_t i = 0; i < n; i++) {
        const tt_conf_node *v = node->type == TT_CONF_SEQ ? node->items[i] : node;
        const char *s;
        if (px_api->conf_string(v, &s, err) != 0)
            return -1;
        size_t k;
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (strcmp(s, names[k].name) == 0)
                break;
        if (k == sizeof(names) / sizeof(names[0])) {
            px_api->conf_error(err, v, "'next_upstream: %s': expected a list of error, "
                               "timeout, http_502, http_503, http_504, or off", s);
            return -1;
        }
        *out |= names[k].bit;
    }
    return 0;
}

static int conf_path_rewrite(const tt_conf_node *v, px_conf *cf, tt_errbuf *err)
{
    const char *s;
    if (px_api->conf_string(v, &s, err) != 0)
        return -1;
    if (strcmp(s, "strip") == 0)
        s = "/";
    if (s[0] != '/' || strpbrk(s, "?# \t") != NULL) {
        px_api->conf_error(err, v, "'path: %s': give the prefix that replaces the route's "
                           "match, starting with /, such as path: /v2/ (path: / strips it)", s);
        return -1;
    }
    cf->path = s;
    cf->path_len = strlen(s);
    return 0;
}

static int conf_map(const tt_conf_node *node, px_conf *cf, tt_errbuf *err)
{
    static const char *const keys[] = {
        "upstreams", "balance", "keepalive", "keepalive_timeout", "keepalive_requests",
        "connect_timeout", "read_timeout", "send_timeout", "next_upstream",
        "next_upstream_tries", "host", "path", "headers", "response_headers", "forwarded",
        "via", "buffering", "buffer_size", NULL
    };
    const tt_conf_node *v;
    long l;

    if (px_api->conf_check_keys(node, "proxy", keys, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "upstreams")) == NULL) {
        px_api->conf_error(err, node, "'proxy' needs 'upstreams', such as "
                           "upstreams: [127.0.0.1:9000]");
        return -1;
    }
    if (conf_upstreams(v, &cf->group, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "balance")) != NULL) {
        const char *s;
        if (px_api->conf_string(v, &s, err) != 0)
            return -1;
        if (strcmp(s, "round_robin") == 0)
            cf->group.balance = PX_BALANCE_RR;
        else if (strcmp(s, "least_conn") == 0)
            cf->group.balance = PX_BALANCE_LEAST;
        else if (strcmp(s, "ip_hash") == 0)
            cf->group.balance = PX_BALANCE_HASH;
        else {
            px_api->conf_error(err, v, "'balance: %s': expected round_robin, least_conn "
                               "or ip_hash", s);
            return -1;
        }
    }
    if ((v = px_api->conf_get(node, "keepalive")) != NULL) {
        if (px_api->conf_int(v, 0, 10000, &l, err) != 0)
            return -1;
        cf->group.keepalive = (unsigned)l;
    }
    if ((v = px_api->conf_get(node, "keepalive_timeout")) != NULL &&
        px_api->conf_duration(v, &cf->group.keepalive_ms, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "keepalive_requests")) != NULL) {
        if (px_api->conf_int(v, 1, 1000000000, &l, err) != 0)
            return -1;
        cf->group.keepalive_requests = (unsigned)l;
    }
    struct { const char *key; uint64_t *ms; } durations[] = {
        { "connect_timeout", &cf->connect_ms }, { "read_timeout", &cf->read_ms },
        { "send_timeout", &cf->send_ms },
    };
    for (size_t i = 0; i < 3; i++) {
        if ((v = px_api->conf_get(node, durations[i].key)) == NULL)
            continue;
        if (px_api->conf_duration(v, durations[i].ms, err) != 0)
            return -1;
        if (*durations[i].ms == 0) {
            px_api->conf_error(err, v, "'%s: %s': give a duration above zero, such as 30s",
                               durations[i].key, v->value);
            return -1;
        }
    }
    if ((v = px_api->conf_get(node, "next_upstream")) != NULL &&
        conf_next_upstream(v, &cf->next_upstream, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "next_upstream_tries")) != NULL) {
        if (px_api->conf_int(v, 0, 100, &l, err) != 0)
            return -1;
        cf->tries = (unsigned)l;
    }
    if ((v = px_api->conf_get(node, "host")) != NULL) {
        const char *s;
        if (px_api->conf_string(v, &s, err) != 0)
            return -1;
        if (strcmp(s, "pass") == 0) {
            cf->host_mode = PX_HOST_PASS;
        } else if (strcmp(s, "upstream") == 0) {
            cf->host_mode = PX_HOST_UPSTREAM;
        } else if (*s == '\0' || strpbrk(s, " \t/\\@?#") != NULL) {
            px_api->conf_error(err, v, "'host: %s': expected pass, upstream, or a host name "
                               "such as api.internal", s);
            return -1;
        } else {
            cf->host_mode = PX_HOST_LITERAL;
            cf->host = s;
        }
    }
    if ((v = px_api->conf_get(node, "path")) != NULL && conf_path_rewrite(v, cf, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "headers")) != NULL &&
        conf_edits(v, "headers", &cf->req_edits, &cf->nreq_edits, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "response_headers")) != NULL &&
        conf_edits(v, "response_headers", &cf->resp_edits, &cf->nresp_edits, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "forwarded")) != NULL &&
        px_api->conf_bool(v, &cf->forwarded, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "via")) != NULL &&
        px_api->conf_bool(v, &cf->via, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "buffering")) != NULL &&
        px_api->conf_bool(v, &cf->buffering, err) != 0)
        return -1;
    if ((v = px_api->conf_get(node, "buffer_size")) != NULL) {
        if (px_api->conf_size(v, &cf->buffer_size, err) != 0)
            return -1;
        if (cf->buffer_size < 4096 || cf->buffer_size > 64 * 1024 * 1024) {
            px_api->conf_error(err, v, "'buffer_size: %s': give a size from 4KB to 64MB",
                               v->value);
            return -1;
        }
    }
    return 0;
}

int px_configure_route(const tt_conf_node *node, void *main_conf, void **route_conf,
                       tt_errbuf *err)
{
    (void)main_conf;
    px_conf *cf = px_api->conf_alloc(sizeof(*cf));
    if (cf == NULL)
        return -1;
    cf->group.balance = PX_BALANCE_RR;
    cf->group.keepalive = 32;
    cf->group.keepalive_ms = 60000;
    cf->group.keepalive_requests = 1000;
    cf->connect_ms = 5000;
    cf->read_ms = 60000;
    cf->send_ms = 60000;
    cf->next_upstream = PX_NEXT_ERROR | PX_NEXT_TIMEOUT;
    cf->host_mode = PX_HOST_PASS;
    cf->forwarded = 1;
    cf->buffering = 1;
    cf->buffer_size = 256 * 1024;

    if (node->type == TT_CONF_SCALAR) {         /* proxy: 127.0.0.1:9000 */
        if (conf_upstreams(node, &cf->group, err) != 0)
            return -1;
    } else if (node->type == TT_CONF_MAP) {
        if (conf_map(node, cf, err) != 0)
            return -1;
    } else {
        px_api->conf_error(err, node, "'proxy' is an upstream address or a map, such as "
                           "proxy: {upstreams: [127.0.0.1:9000]}");
        return -1;
    }
    *route_conf = cf;
    return 0;
}
