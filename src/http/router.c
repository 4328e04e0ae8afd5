/* Routing: which server answers a Host, and which of its routes a path.
 *
 * Servers and routes are few (a handful per listener), so a linear scan in
 * config order is both the fastest thing in practice and the easiest rule
 * for a user to predict: "first match in this order wins".
 */
#include <string.h>
#include <strings.h>
#include "http/http.h"

/* Does host end in ".example.com" for the wildcard "*.example.com", with at
 * least one byte before the dot? Like nginx, "*.example.com" also covers
 * deeper names ("a.b.example.com"), but never "example.com" itself. */
static int wildcard_match(const char *name, size_t nlen, const char *host, size_t hlen)
{
    const char *suffix = name + 1;      /* ".example.com" */
    size_t slen = nlen - 1;

    return hlen > slen && strncasecmp(host + hlen - slen, suffix, slen) == 0;
}

tt_server *tt_route_server(const tt_listen *l, const char *host, size_t host_len)
{
    if (l->nservers == 0)
        return NULL;
    if (host == NULL || host_len == 0)
        return l->servers[0];

    /* exact names win over wildcards wherever they are */
    for (size_t i = 0; i < l->nservers; i++) {
        const tt_server *s = l->servers[i];
        for (size_t j = 0; j < s->nnames; j++) {
            const char *name = s->names[j];
            if (strlen(name) == host_len && strncasecmp(name, host, host_len) == 0)
                return l->servers[i];
        }
    }

    /* then the longest matching wildcard, as nginx does; the first on a tie */
    tt_server *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < l->nservers; i++) {
        const tt_server *s = l->servers[i];
        for (size_t j = 0; j < s->nnames; j++) {
            const char *name = s->names[j];
            if (name[0] != '*' || name[1] != '.')
                continue;
            size_t nlen = strlen(name);
            if (nlen > best_len && wildcard_match(name, nlen, host, host_len)) {
                best = l->servers[i];
                best_len = nlen;
            }
        }
    }
    return best ? best : l->servers[0];
}

int tt_route_prefix_match(const char *prefix, size_t plen, const char *path, size_t len)
{
    if (plen == 0)
        return 1;
    if (plen > len || memcmp(prefix, path, plen) != 0)
        return 0;
    /* the prefix must end where a segment ends: "/api" is not "/apix" */
    return plen == len || prefix[plen - 1] == '/' || path[plen] == '/';
}

static int method_listed(const tt_route *r, const char *method)
{
    for (size_t i = 0; i < r->nmethods; i++) {
        if (strcmp(r->methods[i], method) == 0)
            return 1;
    }
    return 0;
}

/* Method names are case-sensitive (RFC 9110 9.1). HEAD goes wherever GET
 * does: the core answers it with GET's headers and no body. */
static int method_allowed(const tt_route *r, const char *method)
{
    if (r->methods == NULL)
        return 1;
    if (method_listed(r, method))
        return 1;
    return strcmp(method, "HEAD") == 0 && method_listed(r, "GET");
}

#define TT_ALLOW_MAX 64

/* Append one method to the "Allow" list unless it is there already. */
static void allow_add(const char **list, size_t *n, const char *m)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i], m) == 0)
            return;
    }
    if (*n < TT_ALLOW_MAX)
        list[(*n)++] = m;
}

static void allow_write(const char *const *list, size_t n, char *out, size_t outlen)
{
    size_t len = 0;

    if (out == NULL || outlen == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t mlen = strlen(list[i]), sep = i ? 2 : 0;
        if (len + sep + mlen + 1 > outlen)
            break;                      /* never a half-written method */
        memcpy(out + len, ", ", sep);
        memcpy(out + len + sep, list[i], mlen);
        len += sep + mlen;
        out[len] = '\0';
    }
}

const tt_route *tt_route_find(const tt_server *s, const char *path, size_t len,
                              const char *method, int *status,
                              char *allow, size_t allowlen)
{
    const char *list[TT_ALLOW_MAX];
    size_t n = 0;
    int path_matched = 0;

    for (size_t i = 0; i < s->nroutes; i++) {
        const tt_route *r = &s->routes[i];
        if (!tt_route_prefix_match(r->prefix, r->prefix_len, path, len))
            continue;
        if (method_allowed(r, method)) {
            *status = 0;
            if (allow && allowlen)
                allow[0] = '\0';
            return r;
        }
        path_matched = 1;
        for (size_t j = 0; j < r->nmethods; j++) {
            allow_add(list, &n, r->methods[j]);
            if (strcmp(r->methods[j], "GET") == 0)
                allow_add(list, &n, "HEAD");
        }
    }

    if (!path_matched) {
        *status = 404;
        if (allow && allowlen)
            allow[0] = '\0';
        return NULL;
    }
    *status = 405;
    allow_write(list, n, allow, allowlen);
    return NULL;
}
