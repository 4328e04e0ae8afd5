/* static — files from a directory, as nginx serves them.
 *
 *   - match: /
 *     static: {root: ./public, expires: 1h, precompressed: true}
 *
 * This file is the module: its descriptor, the `static:` key, and the walk
 * from a request path to an answer (file, index file, listing, redirect,
 * fallback, or error). The open-file cache and safe opening are in cache.c,
 * the response for one file in send.c, the listing in autoindex.c, and the
 * pure HTTP logic (ranges, validators, types) in range.c, cond.c and mime.c.
 * doc/static.md is the user's side of it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "static.h"

const tt_api  *tt_static_api;
const tt_mime *tt_static_mime;

/* The caches this worker made, freed when it exits. */
static tt_fcache **worker_caches;
static size_t      worker_ncaches;

/* The process-wide type table's memory: every block on one list, so that
 * all of it goes back when the process exits (the table replaces its arrays
 * as it grows, and LeakSanitizer would count the old ones). */
typedef struct tt_block {
    struct tt_block *next;
    max_align_t      data[];
} tt_block;

static tt_block *mime_blocks;

static void *mime_alloc(size_t n)
{
    tt_block *b = calloc(1, sizeof(*b) + n);
    if (b == NULL)
        return NULL;
    b->next = mime_blocks;
    mime_blocks = b;
    return b->data;
}

__attribute__((destructor)) static void mime_free_all(void)
{
    while (mime_blocks != NULL) {
        tt_block *b = mime_blocks;
        mime_blocks = b->next;
        free(b);
    }
    tt_static_mime = NULL;
}

static int static_load(const tt_api *api)
{
    if (api->size < sizeof(tt_api))
        return -1;
    tt_static_api = api;
    if (tt_static_mime != NULL)
        return 0;               /* loaded before, by an earlier config */

    /* Once per process and never freed: the table is read-only and shared
     * by every config and worker. */
    tt_mime *m = tt_mime_new(mime_alloc);
    if (m == NULL)
        return -1;
    if (tt_mime_load_file(m, "/etc/mime.types") != 0 && errno != ENOENT)
        api->log(TT_LOG_WARN, "static: cannot read /etc/mime.types: %s; "
                 "using the built-in types", strerror(errno));
    if (tt_mime_add_builtin(m) != 0)
        return -1;
    tt_static_mime = m;
    return 0;
}

/* ---- configuration ---- */

static int conf_dir(const tt_conf_node *v, const char *key, const char **out, tt_errbuf *err)
{
    const tt_api *api = tt_static_api;
    struct stat st;

    if (api->conf_path(v, out, err) != 0)
        return -1;
    if (stat(*out, &st) != 0) {
        api->conf_error(err, v, "%s '%s': %s; create the directory or give an existing one",
                        key, *out, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        api->conf_error(err, v, "%s '%s' is not a directory; give the directory to serve",
                        key, *out);
        return -1;
    }
    return 0;
}

/* A file name for `index`: one path segment. */
static int conf_index(const tt_conf_node *v, tt_static_conf *conf, tt_errbuf *err)
{
    const tt_api *api = tt_static_api;
    size_t n = v->type == TT_CONF_SEQ ? v->n : 1;

    if (v->type == TT_CONF_MAP) {
        api->conf_error(err, v, "'index' is a list of file names, such as "
                        "index: [index.html, index.htm]");
        return -1;
    }
    conf->index = api->conf_alloc((n + 1) * sizeof(char *));
    if (conf->index == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const tt_conf_node *item = v->type == TT_CONF_SEQ ? v->items[i] : v;
        const char *name;
        if (api->conf_string(item, &name, err) != 0)
            return -1;
        if (name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
            strcmp(name, "..") == 0) {
            api->conf_error(err, item, "index '%s' is not a file name; write a name "
                            "such as index.html, without '/'", name);
            return -1;
        }
        conf->index[i] = name;
    }
    return 0;
}

static int conf_expires(const tt_conf_node *v, tt_static_conf *conf, tt_errbuf *err)
{
    const tt_api *api = tt_static_api;
    uint64_t ms;

    if (v->type == TT_CONF_SCALAR && !v->quoted &&
        (strcmp(v->value, "off") == 0 || strcmp(v->value, "false") == 0)) {
        conf->cache_control = NULL;
        return 0;
    }
    if (api->conf_duration(v, &ms, err) != 0) {
        api->conf_error(err, v, "'expires: %s': expected a duration such as 1h or 30d, "
                        "or off", v->value ? v->value : "");
        return -1;
    }
    char *cc = api->conf_alloc(32);
    if (cc == NULL)
        return -1;
    snprintf(cc, 32, "max-age=%llu", (unsigned long long)(ms / 1000));
    conf->cache_control = cc;
    return 0;
}

static int conf_fallback(const tt_conf_node *v, tt_static_conf *conf, tt_errbuf *err)
{
    const tt_api *api = tt_static_api;
    const char *p;

    if (api->conf_string(v, &p, err) != 0)
        return -1;
    int bad = p[0] != '/' || p[1] == '\0';
    for (const char *s = p; !bad && *s; s++)
        if (s[0] == '/' && s[1] == '.' &&
            (s[2] == '/' || s[2] == '\0' || (s[2] == '.' && (s[3] == '/' || s[3] == '\0'))))
            bad = 1;
    if (bad) {
        api->conf_error(err, v, "fallback '%s': expected a file path under the route's "
                        "directory, such as /index.html", p);
        return -1;
    }
    while (*p == '/')
        p++;
    conf->fallback = p;
    conf->fallback_len = strlen(p);
    return 0;
}

static int conf_type_value(const tt_conf_node *v, const char **out, tt_errbuf *err)
{
    const tt_api *api = tt_static_api;

    if (api->conf_string(v, out, err) != 0)
        return -1;
    const char *slash = strchr(*out, '/');
    int ok = slash != NULL && slash != *out && slash[1] != '\0' && strlen(*out) < 200;
    for (const char *s = *out; ok && *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            ok = 0;
    if (!ok) {
        api->conf_error(err, v, "'%s' is not a media type; write one such as "
                        "text/plain or application/wasm", *out);
        return -1;
    }
    return 0;
}

static int conf_types(const tt_conf_node *v, tt_static_conf *conf, tt_errbuf *err)
{
    const tt_api *api = tt_static_api;

    if (v->type != TT_CONF_MAP) {
        api->conf_error(err, v, "'types' maps extensions to media types, such as "
                        "types: {wasm: application/wasm}");
        return -1;
    }
    conf->types = tt_mime_new(api->conf_alloc);
    if (conf->types == NULL)
        return -1;
    for (size_t i = 0; i < v->n; i++) {
        const char *ext = v->keys[i]->value, *type;
        if (ext[0] == '.')
            ext++;
        if (ext[0] == '\0' || strchr(ext, '/') != NULL || strchr(ext, '.') != NULL) {
            api->conf_error(err, v->keys[i], "'%s' is not an extension; write it "
                            "without the dot, such as wasm", v->keys[i]->value);
            return -1;
        }
        if (conf_type_value(v->items[i], &type, err) != 0)
            return -1;
        if (tt_mime_set(conf->types, ext, type) != 0) {
            api->conf_error(err, v->keys[i], "'%s' is not an extension tutti can use; "
                            "write letters and digits, at most 63", v->keys[i]->value);
            return -1;
        }
    }
    return 0;
}

static int conf_cache(const tt_conf_node *v, tt_static_conf *conf, tt_errbuf *err)
{
    static const char *const keys[] = { "max", "valid", NULL };
    const tt_api *api = tt_static_api;
    const tt_conf_node *x;

    if (v->type == TT_CONF_SCALAR && !v->quoted &&
        (strcmp(v->value, "off") == 0 || strcmp(v->value, "false") == 0)) {
        conf->cache_max = 0;
        return 0;
    }
    if (v->type != TT_CONF_MAP) {
        api->conf_error(err, v, "'open_file_cache' is off or a map, such as "
                        "open_file_cache: {max: 1000, valid: 5s}");
        return -1;
    }
    if (api->conf_check_keys(v, "open_file_cache", keys, err) != 0)
        return -1;
    long max;
    if ((x = api->conf_get(v, "max")) != NULL) {
        if (api->conf_int(x, 0, 1000000, &max, err) != 0)
            return -1;
        conf->cache_max = (unsigned)max;
    }
    if ((x = api->conf_get(v, "valid")) != NULL &&
        api->conf_duration(x, &conf->cache_valid_ms, err) != 0)
        return -1;
    return 0;
}

static int static_configure(const tt_conf_node *node, void *main_conf,
                            void **route_conf, tt_errbuf *err)
{
    static const char *const keys[] = {
        "root", "alias", "index", "autoindex", "expires", "precompressed",
        "fallback", "follow_symlinks", "dotfiles", "types", "default_type",
        "open_file_cache", NULL
    };
    static const char *default_index[] = { "index.html", NULL };
    const tt_api *api = tt_static_api;
    const tt_conf_node *v, *root, *alias;
    tt_static_conf *conf = api->conf_alloc(sizeof(*conf));

    (void)main_conf;
    if (conf == NULL) {
        api->conf_error(err, node, "out of memory");
        return -1;
    }
    conf->index = default_index;
    conf->default_type = "application/octet-stream";
    conf->cache_max = 1000;
    conf->cache_valid_ms = 5000;

    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'static' is a map with the directory to serve, "
                        "such as static: {root: ./public}");
        return -1;
    }
    if (api->conf_check_keys(node, "static", keys, err) != 0)
        return -1;

    root = api->conf_get(node, "root");
    alias = api->conf_get(node, "alias");
    if (root != NULL && alias != NULL) {
        api->conf_error(err, alias, "'static' has both 'root' and 'alias'; keep one "
                        "(root: the URL path is appended; alias: the path after the "
                        "route's prefix is)");
        return -1;
    }
    if (root == NULL && alias == NULL) {
        api->conf_error(err, node, "'static' needs the directory to serve; add "
                        "root: ./public (or alias: ./public)");
        return -1;
    }
    conf->alias = alias != NULL;
    if (conf_dir(root ? root : alias, root ? "root" : "alias", &conf->dir, err) != 0)
        return -1;

    if ((v = api->conf_get(node, "index")) != NULL && conf_index(v, conf, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "autoindex")) != NULL &&
        api->conf_bool(v, &conf->autoindex, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "expires")) != NULL && conf_expires(v, conf, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "precompressed")) != NULL &&
        api->conf_bool(v, &conf->precompressed, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "fallback")) != NULL && conf_fallback(v, conf, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "follow_symlinks")) != NULL &&
        api->conf_bool(v, &conf->follow_symlinks, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "dotfiles")) != NULL) {
        if (v->type == TT_CONF_SCALAR && strcmp(v->value, "allow") == 0) {
            conf->dotfiles = 1;
        } else if (!(v->type == TT_CONF_SCALAR && strcmp(v->value, "deny") == 0)) {
            api->conf_error(err, v, "'dotfiles: %s': write deny (the default) or allow",
                            v->value ? v->value : "");
            return -1;
        }
    }
    if ((v = api->conf_get(node, "types")) != NULL && conf_types(v, conf, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "default_type")) != NULL &&
        conf_type_value(v, &conf->default_type, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "open_file_cache")) != NULL && conf_cache(v, conf, err) != 0)
        return -1;

    *route_conf = conf;
    return 0;
}

/* ---- requests ---- */

/* Does any segment of the path start with a dot? ".well-known" is served
 * anyway: ACME challenges and security.txt live there. */
static int has_dot_segment(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '.' || (i > 0 && p[i - 1] != '/'))
            continue;
        size_t end = i;
        while (end < len && p[end] != '/')
            end++;
        if (!(end - i == 11 && memcmp(p + i, ".well-known", 11) == 0))
            return 1;
    }
    return 0;
}

/* Does Accept-Encoding allow this coding (q > 0, by name or by "*")? */
static int accepts(const char *ae, size_t len, const char *coding)
{
    size_t clen = strlen(coding);
    int star = 0, named = -1;
    const char *p = ae, *end = ae + len;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        int q_zero = 0;
        while (p < end && *p != ',') {          /* parameters: only q matters */
            if ((*p == 'q' || *p == 'Q') && p + 1 < end && p[1] == '=') {
                const char *q = p + 2;
                q_zero = q < end && *q == '0';
                for (q++; q_zero && q < end && *q != ',' && *q != ';' && *q != ' '; q++)
                    if (*q != '.' && *q != '0')
                        q_zero = 0;
            }
            p++;
        }
        if (tlen == clen && strncasecmp(tok, coding, clen) == 0)
            named = !q_zero;
        else if (tlen == 1 && *tok == '*')
            star = !q_zero;
    }
    return named >= 0 ? named : star;
}

/* f is the file at key; send it, or a precompressed twin of it. */
static int serve_file(tt_request *r, tt_static_conf *conf, tt_sfile *f,
                      const char *key, size_t len)
{
    size_t ae_len;
    const char *ae;

    if (conf->precompressed && (ae = tt_static_api->header(r, "Accept-Encoding", &ae_len)) &&
        len + 4 < 4096) {
        static const struct { const char *coding, *ext; } twins[] = {
            { "br", ".br" }, { "gzip", ".gz" },
        };
        char twin[4096];
        for (size_t i = 0; i < 2; i++) {
            if (!accepts(ae, ae_len, twins[i].coding))
                continue;
            memcpy(twin, key, len);
            memcpy(twin + len, twins[i].ext, 4);
            tt_sfile *t = tt_fcache_get(conf->cache, r, twin, len + 3);
            if (t->kind == TT_SFILE_FILE)
                return tt_static_send(r, conf, t, key, len, twins[i].coding);
        }
    }
    return tt_static_send(r, conf, f, key, len, NULL);
}

/* 301 to the directory's URL with its slash: built from the decoded path
 * (re-encoded), never from the raw target, so "//evil.example/" cannot
 * become a redirect to another host. */
static int redirect_dir(tt_request *r, const tt_static_conf *conf)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t cap = r->path_len * 3 + 2 + (r->query_len ? r->query_len + 1 : 0) + 1;
    char *loc = tt_static_api->palloc(r, cap), *o = loc;

    if (loc == NULL)
        return TT_ERROR;
    for (size_t i = 0; i < r->path_len; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("/-._~!$&'()*+,;=:@", ch) != NULL) {
            *o++ = (char)ch;
        } else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o++ = '/';
    if (r->query_len > 0) {
        *o++ = '?';
        memcpy(o, r->query, r->query_len);
        o += r->query_len;
    }
    *o = '\0';
    return tt_static_error(r, conf, 301, "Location", loc);
}

static int not_found(tt_request *r, tt_static_conf *conf)
{
    if (conf->fallback == NULL)
        return tt_static_error(r, conf, 404, NULL, NULL);
    tt_sfile *f = tt_fcache_get(conf->cache, r, conf->fallback, conf->fallback_len);
    if (f->kind != TT_SFILE_FILE)
        return tt_static_error(r, conf, 404, NULL, NULL);
    return serve_file(r, conf, f, conf->fallback, conf->fallback_len);
}

static int failed(tt_request *r, tt_static_conf *conf, const tt_sfile *f,
                  const char *key, size_t len)
{
    switch (f->kind) {
    case TT_SFILE_MISSING:
        return not_found(r, conf);
    case TT_SFILE_FORBIDDEN:
        return tt_static_error(r, conf, 403, NULL, NULL);
    default:
        tt_static_api->log(TT_LOG_ERROR, "static: %s/%.*s: %s", conf->dir, (int)len, key,
                           strerror(f->err));
        return 500;
    }
}

static int serve_dir(tt_request *r, tt_static_conf *conf, const char *key, size_t len)
{
    char path[4096];

    for (const char **name = conf->index; *name != NULL; name++) {
        size_t nlen = strlen(*name);
        if (len + 1 + nlen >= sizeof(path))
            break;
        size_t plen = 0;
        if (len > 0) {
            memcpy(path, key, len);
            path[len] = '/';
            plen = len + 1;
        }
        memcpy(path + plen, *name, nlen);
        plen += nlen;
        tt_sfile *f = tt_fcache_get(conf->cache, r, path, plen);
        if (f->kind == TT_SFILE_FILE)
            return serve_file(r, conf, f, path, plen);
        if (f->kind == TT_SFILE_FORBIDDEN || f->kind == TT_SFILE_ERROR)
            return failed(r, conf, f, path, plen);
    }
    if (conf->autoindex)
        return tt_static_autoindex(r, conf, key, len);
    return tt_static_error(r, conf, 403, NULL, NULL);
}

static int static_handle(tt_request *r, void *route_conf)
{
    tt_static_conf *conf = route_conf;

    if (!(r->method_len == 3 && memcmp(r->method, "GET", 3) == 0) && !r->is_head)
        return tt_static_error(r, conf, 405, "Allow", "GET, HEAD");

    if (conf->cache == NULL) {          /* this worker's first request here */
        tt_fcache **grown = realloc(worker_caches, (worker_ncaches + 1) * sizeof(*grown));
        if (grown == NULL)
            return TT_ERROR;
        worker_caches = grown;
        if ((conf->cache = tt_fcache_new(conf)) == NULL)
            return TT_ERROR;
        worker_caches[worker_ncaches++] = conf->cache;
    }
    tt_fcache_begin(conf->cache);

    /* the path below the directory: all of it for root, what follows the
     * route's prefix for alias */
    const char *key = r->path;
    size_t len = r->path_len;
    if (conf->alias && r->route_prefix_len <= len) {
        key += r->route_prefix_len;
        len -= r->route_prefix_len;
    }
    while (len > 0 && *key == '/') {
        key++;
        len--;
    }
    int want_dir = r->path_len > 0 && r->path[r->path_len - 1] == '/';
    while (len > 0 && key[len - 1] == '/')
        len--;

    if (!conf->dotfiles && has_dot_segment(key, len))
        return tt_static_error(r, conf, 403, NULL, NULL);

    tt_sfile *f = tt_fcache_get(conf->cache, r, key, len);
    switch (f->kind) {
    case TT_SFILE_FILE:
        if (want_dir)                   /* "/a.css/": no such directory */
            return not_found(r, conf);
        return serve_file(r, conf, f, key, len);
    case TT_SFILE_DIR:
        if (!want_dir)
            return redirect_dir(r, conf);
        return serve_dir(r, conf, key, len);
    default:
        return failed(r, conf, f, key, len);
    }
}

static void static_exit_worker(void *main_conf)
{
    (void)main_conf;
    for (size_t i = 0; i < worker_ncaches; i++)
        tt_fcache_free(worker_caches[i]);
    free(worker_caches);
    worker_caches = NULL;
    worker_ncaches = 0;
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "static",
    .version = "0.1.0",
    .route_key = "static",
    .route_kind = TT_MODULE_HANDLER,
    .load = static_load,
    .configure_route = static_configure,
    .handle = static_handle,
    .exit_worker = static_exit_worker,
};
