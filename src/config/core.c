/* The core's own keys: the YAML tree of tutti.yaml -> a validated tt_config.
 *
 * Loading is all or nothing. Everything lives in one arena that is destroyed
 * on the first error, modules are dlclose'd again, and the caller gets one
 * message that names the file, line and column and says what to write.
 *
 * Keys the core does not know belong to modules: a top-level key is a
 * module's main_key, a key inside a route is a module's route_key. The core
 * only finds the owner and hands it the node; when no loaded module owns a
 * key, the message says which module to add or to install, and only when no
 * module could own it does it become an unknown key with a suggestion.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config/config.h"
#include "module.h"

#define TT_ARENA_FIRST_BLOCK (16 * 1024)

/* Stand-ins for the bundled modules. They tell which module owns which key
 * when that module is not loaded ("add it to 'modules'" / "not installed"),
 * and they replace the real modules when a config is only checked without
 * loading anything (tt_config_load_text with load_modules = 0: unit tests
 * and the fuzzer). They have no functions: nothing configures their keys. */
static const char *const asgi_needs[] = {"websocket", NULL};

#define TT_STANDIN(n, rkey, kind, mkey, nd)                             \
    { .abi = TT_MODULE_ABI, .signature = TT_MODULE_SIGNATURE,           \
      .name = n, .version = "bundled", .needs = nd, .route_key = rkey,  \
      .route_kind = kind, .main_key = mkey }

static const tt_module tt_bundled[] = {
    TT_STANDIN("static",    "static",   TT_MODULE_HANDLER, NULL,        NULL),
    TT_STANDIN("wsgi",      "wsgi",     TT_MODULE_HANDLER, "python",    NULL),
    TT_STANDIN("asgi",      "asgi",     TT_MODULE_HANDLER, "python",    asgi_needs),
    TT_STANDIN("websocket", NULL,       0,                 "websocket", NULL),
    TT_STANDIN("proxy",     "proxy",    TT_MODULE_HANDLER, NULL,        NULL),
    TT_STANDIN("throttle",  "throttle", TT_MODULE_FILTER,  NULL,        NULL),
    { .abi = TT_MODULE_ABI, .signature = TT_MODULE_SIGNATURE, .name = "keepalive",
      .version = "bundled", .main_key = "keepalive", .server_key = "keepalive" },
    TT_STANDIN("status",    NULL,       0,                 NULL,        NULL),
    TT_STANDIN("hello",     "hello",    TT_MODULE_HANDLER, NULL,        NULL),
};
#define TT_NBUNDLED (sizeof(tt_bundled) / sizeof(tt_bundled[0]))

static const char *const core_keys[] = {
    "modules", "module_path", "workers", "worker_recycle", "daemon",
    "pid_file", "user", "shutdown_timeout", "error_log", "log_level",
    "access_log", "access_log_format", "limits", "servers", NULL
};
static const char *const server_keys[] = {
    "listen", "names", "limits", "tls", "redirect_http", "routes", NULL
};
static const char *const limits_keys[] = {
    "header_timeout", "body_timeout", "send_timeout", "max_header_size",
    "max_body_size", NULL
};
static const char *const match_keys[] = { "path", "methods", NULL };
static const char *const return_keys[] = {
    "status", "body", "headers", "location", NULL
};

/* Everything one load needs to carry around. */
typedef struct {
    tt_config          *cf;
    tt_errbuf          *err;
    const tt_module    *builtins;       /* stand-ins instead of dlopen, or NULL */
    size_t              nbuiltins;
    const tt_conf_node *modules_node;   /* the explicit `modules:` list, or NULL */
} tt_loader;

/* An address of one server, before equal addresses are merged. */
typedef struct {
    const char             *text;
    struct sockaddr_storage addr;
    socklen_t               addrlen;
    const tt_conf_node     *node;
    tt_server              *server;
} tt_pending_listen;

/* ---- small helpers ---- */

static int is_scalar(const tt_conf_node *n)
{
    return n != NULL && n->type == TT_CONF_SCALAR;
}

static int is_map(const tt_conf_node *n)
{
    return n != NULL && n->type == TT_CONF_MAP;
}

static int is_seq(const tt_conf_node *n)
{
    return n != NULL && n->type == TT_CONF_SEQ;
}

/* `key:` with nothing after it (or ~, null): the user commented out what
 * was below it, and means the defaults, as if the key were absent. */
static int is_null(const tt_conf_node *n)
{
    return is_scalar(n) && !n->quoted &&
           (n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0);
}

/* An optional key's value, NULL when absent or empty. */
static const tt_conf_node *get(const tt_conf_node *map, const char *key)
{
    const tt_conf_node *v = tt_conf_get(map, key);
    return is_null(v) ? NULL : v;
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list != NULL; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* An arena array with room for one more element; arrays here stay small,
 * so doubling and copying is all the policy they need. */
static void *grow(tt_arena *a, void *arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = tt_arena_alloc(a, ncap * size);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, arr, n * size);
    *cap = ncap;
    return p;
}

static int oom(tt_loader *ld, const tt_conf_node *at)
{
    tt_conf_error(ld->err, at, "out of memory");
    return -1;
}

/* A module's callback failed: make sure there is a message even when the
 * module forgot to write one. */
static int module_failed(tt_loader *ld, const tt_module *m, const tt_conf_node *at,
                         const char *key)
{
    if (ld->err->msg[0] == '\0')
        tt_conf_error(ld->err, at, "module '%s' rejected '%s' (it gave no reason)",
                      m->name, key);
    return -1;
}

/* ---- modules ---- */

static int module_available(const tt_loader *ld, const char *name)
{
    if (ld->builtins != NULL) {
        for (size_t i = 0; i < ld->nbuiltins; i++)
            if (strcmp(ld->builtins[i].name, name) == 0)
                return 1;
        return 0;
    }
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof(path), "%s/%s.so", ld->cf->module_path, name);
    return n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int load_module_list(tt_loader *ld, const tt_conf_node *list)
{
    tt_config *cf = ld->cf;

    if (!is_seq(list)) {
        tt_conf_error(ld->err, list, "'modules' is a list of module names, "
                      "such as modules: [static, wsgi]");
        return -1;
    }
    for (size_t i = 0; i < list->n; i++) {
        const tt_conf_node *item = list->items[i];
        if (!is_scalar(item)) {
            tt_conf_error(ld->err, item, "expected a module name, such as static");
            return -1;
        }
        int rc = tt_module_load_from(cf, item->value, item, ld->builtins,
                                     ld->nbuiltins, ld->err);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `modules:` absent: every module of the module path, in name order except
 * that a module comes after the ones it needs. */
static int load_all_modules(tt_loader *ld)
{
    tt_config *cf = ld->cf;
    char **names = NULL;
    size_t n;
    int rc = 0;

    if (ld->builtins != NULL) {
        names = calloc(ld->nbuiltins, sizeof(*names));
        if (names == NULL)
            return oom(ld, cf->root);
        for (size_t i = 0; i < ld->nbuiltins; i++)
            names[i] = (char *)ld->builtins[i].name;
        n = ld->nbuiltins;
        qsort(names, n, sizeof(*names), cmp_names);   /* as a directory scan gives */
    } else {
        n = tt_module_scan(cf->module_path, &names);
    }

    /* Load what can be loaded; retry the ones waiting for a module that is
     * still to come until a pass makes no progress (a cycle, or worse). */
    size_t left = n;
    while (left > 0) {
        size_t before = left;
        for (size_t i = 0; i < n; i++) {
            if (tt_module_find(cf, names[i]) != NULL)
                continue;
            rc = tt_module_load_from(cf, names[i], NULL, ld->builtins,
                                     ld->nbuiltins, ld->err);
            if (rc == TT_MODULE_NOT_YET)
                continue;
            if (rc != 0)
                goto done;
            left--;
        }
        if (left == before) {
            rc = -1;            /* err holds the last "needs" message */
            goto done;
        }
    }
    rc = 0;
done:
    if (ld->builtins != NULL)
        free(names);
    else
        tt_module_free_names(names, n);
    return rc;
}

static const tt_loaded_module *route_owner(const tt_config *cf, const char *key)
{
    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_module *m = cf->modules[i]->mod;
        if (m->route_key != NULL && strcmp(m->route_key, key) == 0)
            return cf->modules[i];
    }
    return NULL;
}

static int main_owned(const tt_config *cf, const char *key)
{
    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_module *m = cf->modules[i]->mod;
        if (m->main_key != NULL && strcmp(m->main_key, key) == 0)
            return 1;
    }
    return 0;
}

/* A key that no loaded module owns but a known module would: say which
 * module to add or to install. Returns -1 with err set if so, 0 if the key
 * is nobody's (the caller reports it as unknown). */
static int key_of_absent_module(tt_loader *ld, const tt_conf_node *key, int in_route)
{
    const char *owners[TT_NBUNDLED + 1];
    size_t nowners = 0;
    const char *avail[TT_NBUNDLED + 1];
    size_t navail = 0;

    for (size_t i = 0; i < TT_NBUNDLED; i++) {
        const char *k = in_route ? tt_bundled[i].route_key : tt_bundled[i].main_key;
        if (k != NULL && strcmp(k, key->value) == 0)
            owners[nowners++] = tt_bundled[i].name;
    }
    /* a third-party module names its key after itself, like hello */
    if (nowners == 0 && module_available(ld, key->value))
        owners[nowners++] = key->value;
    if (nowners == 0)
        return 0;
    for (size_t i = 0; i < nowners; i++)
        if (module_available(ld, owners[i]))
            avail[navail++] = owners[i];

    if (navail == 0) {
        if (nowners == 1)
            tt_conf_error(ld->err, key, "module '%s' is not installed in %s",
                          owners[0], ld->cf->module_path);
        else
            tt_conf_error(ld->err, key, "'%s' needs module '%s' or '%s', and neither "
                          "is installed in %s", key->value, owners[0], owners[1],
                          ld->cf->module_path);
        return -1;
    }
    if (in_route) {
        tt_conf_error(ld->err, ld->modules_node ? ld->modules_node : key,
                      "module '%s' is named in routes but not in 'modules'; "
                      "add it to 'modules'", avail[0]);
    } else if (navail == 1) {
        tt_conf_error(ld->err, key, "'%s' needs module '%s'; add it to 'modules'",
                      key->value, avail[0]);
    } else {
        tt_conf_error(ld->err, key, "'%s' needs module '%s' or '%s'; add one of "
                      "them to 'modules'", key->value, avail[0], avail[1]);
    }
    return -1;
}

static int not_supported_yet(tt_loader *ld, const tt_conf_node *key)
{
    tt_conf_error(ld->err, key, "'%s' is not supported yet; remove it", key->value);
    return -1;
}

/* A module cannot take over a key of the core: its node would never reach
 * it, or would reach both. */
static int check_module_keys(tt_loader *ld)
{
    const tt_config *cf = ld->cf;

    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_loaded_module *lm = cf->modules[i];
        const char *key = NULL;
        if (lm->mod->main_key != NULL && in_list(lm->mod->main_key, core_keys))
            key = lm->mod->main_key;
        else if (lm->mod->route_key != NULL && (strcmp(lm->mod->route_key, "match") == 0 ||
                                                strcmp(lm->mod->route_key, "return") == 0))
            key = lm->mod->route_key;
        if (key != NULL) {
            snprintf(ld->err->msg, sizeof(ld->err->msg), "%s: module '%s' uses the key "
                     "'%s', which is tutti's own; give the module another key",
                     lm->path, lm->mod->name, key);
            return -1;
        }
    }
    return 0;
}

/* The core's keys of a level, then the loaded modules' keys there (their
 * main_key at the top, their server_key in a server); NULL-terminated, in
 * the config's arena. NULL when out of memory. */
static const char **known_keys(tt_loader *ld, const char *const *core, int server)
{
    tt_config *cf = ld->cf;
    size_t ncore = 0;
    while (core[ncore] != NULL)
        ncore++;
    const char **known = tt_arena_alloc(cf->arena, (ncore + cf->nmodules + 1) *
                                        sizeof(*known));
    if (known == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < ncore; i++)
        known[n++] = core[i];
    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_module *m = cf->modules[i]->mod;
        const char *key = server ? m->server_key : m->main_key;
        if (key != NULL)
            known[n++] = key;
    }
    known[n] = NULL;
    return known;
}

/* Every top-level key is the core's, a loaded module's main_key, or wrong. */
static int check_top_keys(tt_loader *ld)
{
    tt_config *cf = ld->cf;
    const tt_conf_node *root = cf->root;

    for (size_t i = 0; i < root->n; i++) {
        const tt_conf_node *key = root->keys[i];
        if (strcmp(key->value, "worker_recycle") == 0)
            return not_supported_yet(ld, key);
        if (in_list(key->value, core_keys) || main_owned(cf, key->value))
            continue;
        if (key_of_absent_module(ld, key, 0) != 0)
            return -1;
    }

    /* what is left is unknown: let the accessor suggest the closest key */
    const char **known = known_keys(ld, core_keys, 0);
    if (known == NULL)
        return oom(ld, root);
    return tt_conf_check_keys(root, "the top level", known, ld->err) == 0 ? 0 : -1;
}

/* What a keepalive policy says about one connection, into limits (the
 * per-worker caps are the config's, see configure_mains). */
static void apply_keepalive(tt_limits *l, const tt_keepalive *ka)
{
    l->keepalive_timeout_ms = ka->timeout_ms;
    l->keepalive_max_requests = ka->max_requests;
}

static int configure_mains(tt_loader *ld)
{
    tt_config *cf = ld->cf;

    cf->main_confs = tt_arena_alloc(cf->arena, (cf->nmodules + 1) * sizeof(void *));
    if (cf->main_confs == NULL)
        return oom(ld, cf->root);
    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_module *m = cf->modules[i]->mod;
        if (m->main_key == NULL || m->configure_main == NULL)
            continue;
        /* called even when the key is absent, so the module sets defaults */
        const tt_conf_node *node = get(cf->root, m->main_key);
        ld->err->msg[0] = '\0';
        if (m->configure_main(node, &cf->main_confs[i], ld->err) != 0)
            return module_failed(ld, m, node ? node : cf->root, m->main_key);
        const tt_keepalive *ka = cf->main_confs[i];
        if ((m->flags & TT_MODULE_KEEPALIVE_POLICY) && ka != NULL) {
            apply_keepalive(&cf->limits, ka);
            cf->max_idle = ka->max_idle;
            cf->max_connections = ka->max_connections;
        }
    }
    return 0;
}

/* The keys of a server block that modules own (keepalive: {...}). */
static int configure_server_keys(tt_loader *ld, const tt_conf_node *node, tt_server *s)
{
    tt_config *cf = ld->cf;

    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_module *m = cf->modules[i]->mod;
        const tt_conf_node *v;
        if (m->server_key == NULL || (v = get(node, m->server_key)) == NULL ||
            m->configure_server == NULL)
            continue;
        void *server_conf = NULL;
        ld->err->msg[0] = '\0';
        if (m->configure_server(v, cf->main_confs[i], &server_conf, ld->err) != 0)
            return module_failed(ld, m, v, m->server_key);
        if ((m->flags & TT_MODULE_KEEPALIVE_POLICY) && server_conf != NULL)
            apply_keepalive(&s->limits, server_conf);
    }
    return 0;
}

/* Every key of a server is the core's, a loaded module's server_key, or
 * wrong (with the module to add when a known one owns it). */
static int check_server_keys(tt_loader *ld, const tt_conf_node *node)
{
    const char **known = known_keys(ld, server_keys, 1);
    if (known == NULL)
        return oom(ld, node);

    for (size_t i = 0; i < node->n; i++) {
        const tt_conf_node *key = node->keys[i];
        if (in_list(key->value, known))
            continue;
        if (key_of_absent_module(ld, key, 0) != 0)
            return -1;
    }
    return tt_conf_check_keys(node, "a server", known, ld->err) == 0 ? 0 : -1;
}

/* ---- the core's settings ---- */

static int parse_limits(tt_loader *ld, const tt_conf_node *node, tt_limits *l)
{
    if (node == NULL)
        return 0;
    if (!is_map(node)) {
        tt_conf_error(ld->err, node, "'limits' is a map, such as "
                      "limits: {max_body_size: 10MB}");
        return -1;
    }
    if (tt_conf_check_keys(node, "limits", limits_keys, ld->err) != 0)
        return -1;

    struct { const char *key; uint64_t *out; int size; } keys[] = {
        { "header_timeout",  &l->header_timeout_ms, 0 },
        { "body_timeout",    &l->body_timeout_ms,   0 },
        { "send_timeout",    &l->send_timeout_ms,   0 },
        { "max_header_size", &l->max_header_size,   1 },
        { "max_body_size",   &l->max_body_size,     1 },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const tt_conf_node *v = get(node, keys[i].key);
        uint64_t x;
        if (v == NULL)
            continue;
        if ((keys[i].size ? tt_conf_size(v, &x, ld->err)
                          : tt_conf_duration(v, &x, ld->err)) != 0)
            return -1;
        if (x == 0) {
            tt_conf_error(ld->err, v, "'%s: %s': must be more than 0, such as %s",
                          keys[i].key, v->value, keys[i].size ? "16KB" : "10s");
            return -1;
        }
        *keys[i].out = x;
    }
    return 0;
}

static int parse_workers(tt_loader *ld, const tt_conf_node *v)
{
    if (is_scalar(v) && strcmp(v->value, "auto") == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        ld->cf->workers = cpus > 0 ? (int)cpus : 1;
        return 0;
    }
    long n;
    if (tt_conf_int(v, 1, 1024, &n, ld->err) != 0)
        return -1;
    ld->cf->workers = (int)n;
    return 0;
}

static int parse_log_level(tt_loader *ld, const tt_conf_node *v)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    const char *s;

    if (tt_conf_string(v, &s, ld->err) != 0)
        return -1;
    for (int i = 0; levels[i] != NULL; i++)
        if (strcmp(s, levels[i]) == 0) {
            ld->cf->log_level = TT_LOG_DEBUG + i;
            return 0;
        }
    tt_conf_error(ld->err, v, "'log_level: %s': expected debug, info, warn or error", s);
    return -1;
}

/* A log destination: a keyword (stderr, stdout, off) or a path. */
static int parse_log_target(tt_loader *ld, const tt_conf_node *v,
                            const char *const *words, const char **out)
{
    const char *s;

    if (tt_conf_string(v, &s, ld->err) != 0)
        return -1;
    for (; *words != NULL; words++)
        if (strcmp(s, *words) == 0) {
            *out = strcmp(s, "off") == 0 ? NULL : *words;
            return 0;
        }
    return tt_conf_path(v, out, ld->err) == 0 ? 0 : -1;
}

static int parse_core_values(tt_loader *ld)
{
    static const char *const error_words[] = { "stderr", NULL };
    static const char *const access_words[] = { "off", "stdout", NULL };
    tt_config *cf = ld->cf;
    const tt_conf_node *root = cf->root, *v;
    const char *s;

    cf->workers = 1;
    cf->shutdown_timeout_ms = 30000;
    cf->error_log = "stderr";
    cf->log_level = TT_LOG_INFO;
    cf->access_log = "stdout";
    cf->access_log_format = TT_ACCESS_COMBINED;
    cf->limits = (tt_limits){
        .header_timeout_ms = 10000,
        .body_timeout_ms = 60000,
        .send_timeout_ms = 60000,
        .max_header_size = 16 * 1024,
        .max_body_size = 10 * 1024 * 1024,
        .keepalive_timeout_ms = 15000,
        .keepalive_max_requests = 1000,
    };
    cf->pid_file = tt_arena_printf(cf->arena, "%s/tutti.pid", cf->dir);
    if (cf->pid_file == NULL)
        return oom(ld, root);

    if ((v = get(root, "workers")) != NULL && parse_workers(ld, v) != 0)
        return -1;
    if ((v = get(root, "daemon")) != NULL &&
        tt_conf_bool(v, &cf->daemon, ld->err) != 0)
        return -1;
    if ((v = get(root, "pid_file")) != NULL &&
        tt_conf_path(v, &cf->pid_file, ld->err) != 0)
        return -1;
    if ((v = get(root, "user")) != NULL) {
        if (tt_conf_string(v, &s, ld->err) != 0)
            return -1;
        if (getpwnam(s) == NULL) {
            tt_conf_error(ld->err, v, "'user: %s': no such user on this system", s);
            return -1;
        }
        cf->user = s;
    }
    if ((v = get(root, "shutdown_timeout")) != NULL &&
        tt_conf_duration(v, &cf->shutdown_timeout_ms, ld->err) != 0)
        return -1;
    if ((v = get(root, "error_log")) != NULL &&
        parse_log_target(ld, v, error_words, &cf->error_log) != 0)
        return -1;
    if ((v = get(root, "log_level")) != NULL && parse_log_level(ld, v) != 0)
        return -1;
    if ((v = get(root, "access_log")) != NULL &&
        parse_log_target(ld, v, access_words, &cf->access_log) != 0)
        return -1;
    if ((v = get(root, "access_log_format")) != NULL) {
        if (tt_conf_string(v, &s, ld->err) != 0)
            return -1;
        if (strcmp(s, "combined") == 0) {
            cf->access_log_format = TT_ACCESS_COMBINED;
        } else if (strcmp(s, "json") == 0) {
            cf->access_log_format = TT_ACCESS_JSON;
        } else {
            tt_conf_error(ld->err, v, "'access_log_format: %s': expected combined or json", s);
            return -1;
        }
    }
    return parse_limits(ld, get(root, "limits"), &cf->limits);
}

/* ---- listen addresses ---- */

static int parse_port(const char *s, in_port_t *port)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = htons((in_port_t)v);
    return 0;
}

static int is_host_name(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

typedef struct {
    tt_pending_listen *items;
    size_t             n, cap;
} tt_pending;

static int pending_add(tt_loader *ld, tt_pending *p, const char *text,
                       const void *addr, socklen_t len,
                       const tt_conf_node *node, tt_server *s)
{
    /* the same address twice in one server (e.g. localhost and 127.0.0.1)
     * is still one listener */
    for (size_t i = 0; i < p->n; i++)
        if (p->items[i].server == s &&
            same_addr(&p->items[i].addr, (const struct sockaddr_storage *)addr))
            return 0;
    p->items = grow(ld->cf->arena, p->items, p->n, &p->cap, sizeof(*p->items));
    if (p->items == NULL)
        return oom(ld, node);
    tt_pending_listen *l = &p->items[p->n++];
    memset(&l->addr, 0, sizeof(l->addr));
    memcpy(&l->addr, addr, len);
    l->addrlen = len;
    l->text = text;
    l->node = node;
    l->server = s;
    return 0;
}

/* "127.0.0.1:8080", "[::1]:8080", "*:8080", "8080", "localhost:8080" */
static int parse_listen(tt_loader *ld, const char *text, const tt_conf_node *node,
                        tt_server *s, tt_pending *p)
{
    char host[256];
    const char *portstr;
    in_port_t port;

    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        size_t hlen = end ? (size_t)(end - text - 1) : 0;
        if (end == NULL || end[1] != ':' || hlen == 0 || hlen >= sizeof(host))
            goto bad;
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        portstr = end + 2;
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6 };
        if (parse_port(portstr, &port) != 0 ||
            inet_pton(AF_INET6, host, &sa6.sin6_addr) != 1)
            goto bad;
        sa6.sin6_port = port;
        return pending_add(ld, p, text, &sa6, sizeof(sa6), node, s);
    }

    const char *colon = strrchr(text, ':');
    size_t hlen = colon ? (size_t)(colon - text) : 0;
    portstr = colon ? colon + 1 : text;
    if (parse_port(portstr, &port) != 0 || hlen >= sizeof(host))
        goto bad;
    memcpy(host, text, hlen);
    host[hlen] = '\0';

    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = port };
    if (colon == NULL || strcmp(host, "*") == 0) {
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        return pending_add(ld, p, text, &sa, sizeof(sa), node, s);
    }
    if (inet_pton(AF_INET, host, &sa.sin_addr) == 1)
        return pending_add(ld, p, text, &sa, sizeof(sa), node, s);
    /* a dotted quad that inet_pton refused is a typo, not a host name */
    if (strspn(host, "0123456789.") == hlen || !is_host_name(host, hlen))
        goto bad;

    /* a host name listens on every address it resolves to, like nginx */
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_ADDRCONFIG | AI_NUMERICSERV,
    }, *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        tt_conf_error(ld->err, node, "'listen: %s': cannot resolve '%s' (%s); "
                      "write an address such as 127.0.0.1:%s", text, host,
                      gai_strerror(rc), portstr);
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (pending_add(ld, p, text, ai->ai_addr, ai->ai_addrlen, node, s) != 0) {
            freeaddrinfo(res);
            return -1;
        }
    }
    freeaddrinfo(res);
    return 0;

bad:
    tt_conf_error(ld->err, node, "'listen: %s': expected an address such as "
                  "127.0.0.1:8080 or [::1]:8080", text);
    return -1;
}

/* The name node of server s that equals `name`, for the message. */
static const tt_conf_node *name_node(const tt_server *s, const char *name)
{
    const tt_conf_node *names = get(s->node, "names");
    if (is_scalar(names))
        return names;
    for (size_t i = 0; names != NULL && i < names->n; i++)
        if (strcasecmp(names->items[i]->value, name) == 0)
            return names->items[i];
    return s->node;
}

/* Host-based routing cannot tell two servers apart by the same name. */
static int check_names(tt_loader *ld, const tt_listen *l)
{
    for (size_t i = 1; i < l->nservers; i++)
        for (size_t j = 0; j < i; j++)
            for (size_t a = 0; a < l->servers[i]->nnames; a++)
                for (size_t b = 0; b < l->servers[j]->nnames; b++) {
                    const char *name = l->servers[i]->names[a];
                    if (strcmp(name, l->servers[j]->names[b]) != 0)
                        continue;
                    const tt_conf_node *first = name_node(l->servers[j], name);
                    tt_conf_error(ld->err, name_node(l->servers[i], name),
                                  "server name '%s' on %s is already used by the server "
                                  "at line %u; a name belongs to one server per address",
                                  name, l->text, first->line);
                    return -1;
                }
    return 0;
}

/* One address speaks one protocol: HTTPS for all its servers or none. */
static int check_tls(tt_loader *ld, tt_listen *l)
{
    l->tls = l->servers[0]->tls != NULL;
    for (size_t i = 1; i < l->nservers; i++)
        if ((l->servers[i]->tls != NULL) != l->tls) {
            const tt_server *odd = l->servers[i];
            tt_conf_error(ld->err, odd->node, "this server shares %s with another that %s "
                          "'tls'; one address speaks HTTPS for all its servers or for none",
                          l->text, l->tls ? "has" : "has no");
            return -1;
        }
    return 0;
}

/* Equal addresses of several servers become one listener carrying all of
 * them, the first server being the default for unknown Host names. */
static int merge_listens(tt_loader *ld, tt_pending *p)
{
    tt_config *cf = ld->cf;
    size_t cap = 0;

    for (size_t i = 0; i < p->n; i++) {
        size_t j;
        for (j = 0; j < cf->nlistens; j++)
            if (same_addr(&cf->listens[j].addr, &p->items[i].addr))
                break;
        if (j == cf->nlistens) {
            cf->listens = grow(cf->arena, cf->listens, cf->nlistens, &cap,
                               sizeof(*cf->listens));
            if (cf->listens == NULL)
                return oom(ld, p->items[i].node);
            tt_listen *l = &cf->listens[cf->nlistens++];
            l->text = p->items[i].text;
            l->addr = p->items[i].addr;
            l->addrlen = p->items[i].addrlen;
            l->fd = -1;
            l->node = p->items[i].node;
        }
        cf->listens[j].nservers++;  /* counted now, filled below */
    }
    for (size_t j = 0; j < cf->nlistens; j++) {
        tt_listen *l = &cf->listens[j];
        l->servers = tt_arena_alloc(cf->arena, l->nservers * sizeof(*l->servers));
        if (l->servers == NULL)
            return oom(ld, l->node);
        l->nservers = 0;
    }
    for (size_t i = 0; i < p->n; i++)
        for (size_t j = 0; j < cf->nlistens; j++)
            if (same_addr(&cf->listens[j].addr, &p->items[i].addr)) {
                tt_listen *l = &cf->listens[j];
                l->servers[l->nservers++] = p->items[i].server;
                break;
            }
    for (size_t j = 0; j < cf->nlistens; j++)
        if (check_names(ld, &cf->listens[j]) != 0 || check_tls(ld, &cf->listens[j]) != 0)
            return -1;
    return 0;
}

/* ---- routes ---- */

static int is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!is_tchar(*s))
            return 0;
    return 1;
}

static int parse_path(tt_loader *ld, const tt_conf_node *v, tt_route *r)
{
    const char *s;

    if (tt_conf_string(v, &s, ld->err) != 0)
        return -1;
    if (s[0] != '/') {
        tt_conf_error(ld->err, v, "'match: %s': a path starts with '/', such as /static/", s);
        return -1;
    }
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '?' || *c == '#' || *c == 0x7f) {
            tt_conf_error(ld->err, v, "'match: %s': a path has no spaces, '?' or '#', "
                          "such as /static/", s);
            return -1;
        }
    r->prefix = s;
    r->prefix_len = strlen(s);
    return 0;
}

static int parse_methods(tt_loader *ld, const tt_conf_node *v, tt_route *r)
{
    const tt_conf_node *const *items = &v;
    size_t n = 1;

    if (is_seq(v)) {
        items = (const tt_conf_node *const *)v->items;
        n = v->n;
    }
    if (n == 0 || n > TT_METHODS_MAX - 1) {
        tt_conf_error(ld->err, v, "'methods' is a list of 1 to %d methods, such as "
                      "[GET, POST]", TT_METHODS_MAX - 1);
        return -1;
    }
    /* one spare slot: GET allows HEAD, as every server does */
    r->methods = tt_arena_alloc(ld->cf->arena, (n + 1) * sizeof(*r->methods));
    if (r->methods == NULL)
        return oom(ld, v);
    int get = 0, head = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s;
        if (tt_conf_string(items[i], &s, ld->err) != 0)
            return -1;
        if (!is_token(s)) {
            tt_conf_error(ld->err, items[i], "'methods: %s': expected an HTTP method "
                          "such as GET", s);
            return -1;
        }
        char *up = tt_arena_strdup(ld->cf->arena, s);
        if (up == NULL)
            return oom(ld, items[i]);
        for (char *c = up; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        for (size_t j = 0; j < r->nmethods; j++)
            if (strcmp(r->methods[j], up) == 0) {
                tt_conf_error(ld->err, items[i], "method '%s' is listed twice; list it once", up);
                return -1;
            }
        get |= strcmp(up, "GET") == 0;
        head |= strcmp(up, "HEAD") == 0;
        r->methods[r->nmethods++] = up;
    }
    if (get && !head)
        r->methods[r->nmethods++] = "HEAD";
    return 0;
}

static int parse_match(tt_loader *ld, const tt_conf_node *v, tt_route *r)
{
    if (is_scalar(v))
        return parse_path(ld, v, r);
    if (!is_map(v)) {
        tt_conf_error(ld->err, v, "'match' is a path such as /static/, or "
                      "{path: /api/, methods: [GET, POST]}");
        return -1;
    }
    if (tt_conf_check_keys(v, "match", match_keys, ld->err) != 0)
        return -1;
    const tt_conf_node *path = get(v, "path");
    const tt_conf_node *methods = get(v, "methods");
    if (path != NULL && parse_path(ld, path, r) != 0)
        return -1;
    if (methods != NULL && parse_methods(ld, methods, r) != 0)
        return -1;
    return 0;
}

static int header_value_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' && *s != '\t')
            return 0;
    return 1;
}

static int parse_return_headers(tt_loader *ld, const tt_conf_node *h,
                                const tt_conf_node *location, tt_return_conf *ret)
{
    size_t n = (h ? h->n : 0) + (location ? 1 : 0);

    if (h != NULL && !is_map(h)) {
        tt_conf_error(ld->err, h, "'headers' is a map, such as "
                      "headers: {Content-Type: text/plain}");
        return -1;
    }
    if (n == 0)
        return 0;
    ret->headers = tt_arena_alloc(ld->cf->arena, n * sizeof(*ret->headers));
    if (ret->headers == NULL)
        return oom(ld, h ? h : location);
    for (size_t i = 0; h != NULL && i < h->n; i++) {
        const tt_conf_node *k = h->keys[i];
        const char *val;
        if (!is_token(k->value)) {
            tt_conf_error(ld->err, k, "'%s' is not a header name; write one such as "
                          "Content-Type", k->value);
            return -1;
        }
        if (strcasecmp(k->value, "Content-Length") == 0 ||
            strcasecmp(k->value, "Transfer-Encoding") == 0) {
            tt_conf_error(ld->err, k, "'%s' is set by tutti from the body; remove it",
                          k->value);
            return -1;
        }
        if (location != NULL && strcasecmp(k->value, "Location") == 0) {
            tt_conf_error(ld->err, k, "Location is also set by 'location'; "
                          "set it in one place");
            return -1;
        }
        if (tt_conf_string(h->items[i], &val, ld->err) != 0)
            return -1;
        if (!header_value_ok(val)) {
            tt_conf_error(ld->err, h->items[i], "header '%s' has a control character "
                          "in its value; remove it", k->value);
            return -1;
        }
        ret->headers[ret->nheaders++] = (tt_header){
            k->value, k->len, val, strlen(val)
        };
    }
    if (location != NULL) {
        const char *val;
        if (tt_conf_string(location, &val, ld->err) != 0)
            return -1;
        if (*val == '\0' || !header_value_ok(val) || strchr(val, ' ') != NULL) {
            tt_conf_error(ld->err, location, "'location: %s': expected a URL such as "
                          "https://example.com/ or /new/path", val);
            return -1;
        }
        ret->headers[ret->nheaders++] = (tt_header){
            "Location", 8, val, strlen(val)
        };
    }
    return 0;
}

/* return: 404, or return: {status, body, headers, location} */
static int parse_return(tt_loader *ld, const tt_conf_node *v, tt_route *r)
{
    tt_return_conf *ret = tt_arena_alloc(ld->cf->arena, sizeof(*ret));
    const tt_conf_node *status = v;
    long code;

    if (ret == NULL)
        return oom(ld, v);
    if (is_map(v)) {
        if (tt_conf_check_keys(v, "return", return_keys, ld->err) != 0)
            return -1;
        status = get(v, "status");
        if (status == NULL) {
            tt_conf_error(ld->err, v, "'return' needs a status, such as "
                          "return: {status: 200, body: \"ok\\n\"}");
            return -1;
        }
    } else if (!is_scalar(v)) {
        tt_conf_error(ld->err, v, "'return' is a status such as 404, or "
                      "{status: 200, body: \"ok\\n\"}");
        return -1;
    }
    if (tt_conf_int(status, 100, 599, &code, ld->err) != 0)
        return -1;
    ret->status = (int)code;
    if (is_map(v)) {
        const tt_conf_node *body = get(v, "body");
        if (body != NULL) {
            if (tt_conf_string(body, &ret->body, ld->err) != 0)
                return -1;
            ret->body_len = body->len;
        }
        if (parse_return_headers(ld, get(v, "headers"),
                                 get(v, "location"), ret) != 0)
            return -1;
    }
    r->ret = ret;
    return 0;
}

/* Handler keys for "add one of ...": return, then the loaded modules'. */
static void handler_keys(const tt_config *cf, char *out, size_t len)
{
    size_t off = (size_t)snprintf(out, len, "return");
    for (size_t i = 0; i < cf->nmodules && off < len; i++) {
        const tt_module *m = cf->modules[i]->mod;
        if (m->route_key != NULL && m->route_kind == TT_MODULE_HANDLER)
            off += (size_t)snprintf(out + off, len - off, ", %s", m->route_key);
    }
}

static int route_unknown_key(tt_loader *ld, const tt_conf_node *route)
{
    tt_config *cf = ld->cf;
    const char **known = tt_arena_alloc(cf->arena, (cf->nmodules + 3) * sizeof(*known));
    size_t n = 0;

    if (known == NULL)
        return oom(ld, route);
    known[n++] = "match";
    known[n++] = "return";
    for (size_t i = 0; i < cf->nmodules; i++)
        if (cf->modules[i]->mod->route_key != NULL)
            known[n++] = cf->modules[i]->mod->route_key;
    known[n] = NULL;
    if (tt_conf_check_keys(route, "a route", known, ld->err) == 0)
        tt_conf_error(ld->err, route, "a route key is not known here");  /* unreachable */
    return -1;
}

static int cmp_filters(const void *a, const void *b)
{
    const tt_route_module *x = a, *y = b;
    return x->module->index - y->module->index;
}

static int load_route(tt_loader *ld, const tt_conf_node *node, tt_route *r)
{
    tt_config *cf = ld->cf;
    const tt_conf_node *handler_key = NULL;

    if (!is_map(node)) {
        tt_conf_error(ld->err, node, "a route is a map, such as "
                      "{match: /, return: 404}");
        return -1;
    }
    r->node = node;
    r->prefix = "/";
    r->prefix_len = 1;
    r->filters = tt_arena_alloc(cf->arena, (node->n + 1) * sizeof(*r->filters));
    if (r->filters == NULL)
        return oom(ld, node);

    for (size_t i = 0; i < node->n; i++) {
        const tt_conf_node *key = node->keys[i], *val = node->items[i];
        const tt_loaded_module *owner = NULL;
        int handler;

        if (strcmp(key->value, "match") == 0) {
            if (parse_match(ld, val, r) != 0)
                return -1;
            continue;
        }
        if (strcmp(key->value, "return") == 0) {
            handler = 1;
        } else if ((owner = route_owner(cf, key->value)) != NULL) {
            handler = owner->mod->route_kind == TT_MODULE_HANDLER;
        } else if (strcmp(key->value, "status") == 0) {
            return not_supported_yet(ld, key);
        } else if (key_of_absent_module(ld, key, 1) != 0) {
            return -1;
        } else {
            return route_unknown_key(ld, node);
        }

        if (handler && handler_key != NULL) {
            tt_conf_error(ld->err, key, "route has two handlers, '%s' and '%s'; "
                          "a route has exactly one", handler_key->value, key->value);
            return -1;
        }
        if (handler)
            handler_key = key;

        if (owner == NULL) {
            if (parse_return(ld, val, r) != 0)
                return -1;
            continue;
        }
        void *conf = NULL;
        if (owner->mod->configure_route != NULL) {
            ld->err->msg[0] = '\0';
            if (owner->mod->configure_route(val, cf->main_confs[owner->index],
                                            &conf, ld->err) != 0)
                return module_failed(ld, owner->mod, val, key->value);
        }
        if (handler)
            r->handler = (tt_route_module){ owner, conf };
        else
            r->filters[r->nfilters++] = (tt_route_module){ owner, conf };
    }

    if (handler_key == NULL) {
        char keys[512];
        handler_keys(cf, keys, sizeof(keys));
        tt_conf_error(ld->err, node, "route has no handler; add one of %s", keys);
        return -1;
    }
    /* filters run in the order of `modules`, whatever the order of keys */
    if (r->nfilters > 1)
        qsort(r->filters, r->nfilters, sizeof(*r->filters), cmp_filters);
    return 0;
}

/* ---- servers ---- */

static int parse_names(tt_loader *ld, const tt_conf_node *v, tt_server *s)
{
    const tt_conf_node *const *items = &v;
    size_t n = 1;

    if (is_seq(v)) {
        items = (const tt_conf_node *const *)v->items;
        n = v->n;
    }
    s->names = tt_arena_alloc(ld->cf->arena, (n + 1) * sizeof(*s->names));
    if (s->names == NULL)
        return oom(ld, v);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        if (tt_conf_string(items[i], &name, ld->err) != 0)
            return -1;
        size_t len = strlen(name);
        const char *host = name;
        if (len > 2 && name[0] == '*' && name[1] == '.')
            host += 2;
        if (!is_host_name(host, strlen(host)) || host[0] == '.' || host[0] == '-') {
            tt_conf_error(ld->err, items[i], "'names: %s': expected a host name without "
                          "port, such as example.com or *.example.com", name);
            return -1;
        }
        char *lower = tt_arena_strndup(ld->cf->arena, name, len);
        if (lower == NULL)
            return oom(ld, items[i]);
        for (char *c = lower; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        /* a trailing dot is the same host */
        if (len > 1 && lower[len - 1] == '.')
            lower[len - 1] = '\0';
        s->names[s->nnames++] = lower;
    }
    return 0;
}

/* A server's addresses; absent: the documented default 127.0.0.1:8080,
 * reported at the server should it ever fail. */
static int load_listens(tt_loader *ld, const tt_conf_node *server, tt_server *s,
                        tt_pending *p)
{
    const tt_conf_node *listen = get(server, "listen");
    const tt_conf_node *const *items = &listen;
    size_t n = 1;

    if (listen == NULL)
        return parse_listen(ld, "127.0.0.1:8080", server, s, p);
    if (is_seq(listen)) {
        items = (const tt_conf_node *const *)listen->items;
        n = listen->n;
        if (n == 0) {
            tt_conf_error(ld->err, listen, "'listen' is empty; write an address such "
                          "as 127.0.0.1:8080");
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_scalar(items[i])) {
            tt_conf_error(ld->err, items[i], "'listen' is an address or a list of "
                          "them, such as listen: 127.0.0.1:8080");
            return -1;
        }
        if (parse_listen(ld, items[i]->value, items[i], s, p) != 0)
            return -1;
    }
    return 0;
}

/* redirect_http: true (to https://host/...) or a port (https://host:PORT/...) */
static int parse_redirect(tt_loader *ld, const tt_conf_node *v, tt_server *s)
{
    if (s->tls != NULL) {
        tt_conf_error(ld->err, v, "'redirect_http' sends a plain-HTTP server's clients to "
                      "HTTPS; this server has 'tls' itself: put it on a server without");
        return -1;
    }
    if (is_scalar(v) && (strcmp(v->value, "true") == 0 || strcmp(v->value, "false") == 0)) {
        s->redirect_https = strcmp(v->value, "true") == 0 ? 443 : 0;
        return 0;
    }
    long port;
    if (tt_conf_int(v, 1, 65535, &port, ld->err) != 0) {
        tt_conf_error(ld->err, v, "'redirect_http: %s': expected true, false, or the HTTPS "
                      "port such as 8443", is_scalar(v) ? v->value : "...");
        return -1;
    }
    s->redirect_https = (int)port;
    return 0;
}

static int load_server(tt_loader *ld, const tt_conf_node *node, tt_server *s,
                       tt_pending *p)
{
    tt_config *cf = ld->cf;

    if (!is_map(node)) {
        tt_conf_error(ld->err, node, "a server is a map, such as "
                      "{listen: 127.0.0.1:8080, routes: [...]}");
        return -1;
    }
    s->node = node;
    if (check_server_keys(ld, node) != 0)
        return -1;
    const tt_conf_node *tls = get(node, "tls");
    if (tls != NULL && (s->tls = tt_tls_load(cf, tls, ld->err)) == NULL)
        return -1;
    const tt_conf_node *redirect = get(node, "redirect_http");
    if (redirect != NULL && parse_redirect(ld, redirect, s) != 0)
        return -1;
    if (load_listens(ld, node, s, p) != 0)
        return -1;

    const tt_conf_node *names = get(node, "names");
    if (names != NULL && parse_names(ld, names, s) != 0)
        return -1;

    s->limits = cf->limits;     /* then overridden key by key */
    if (parse_limits(ld, get(node, "limits"), &s->limits) != 0 ||
        configure_server_keys(ld, node, s) != 0)
        return -1;

    const tt_conf_node *routes = get(node, "routes");
    if (routes == NULL)
        return 0;               /* every request gets 404 */
    if (!is_seq(routes)) {
        tt_conf_error(ld->err, routes, "'routes' is a list of routes, such as "
                      "routes: [{match: /, static: {root: ./public}}]");
        return -1;
    }
    s->routes = tt_arena_alloc(cf->arena, (routes->n + 1) * sizeof(*s->routes));
    if (s->routes == NULL)
        return oom(ld, routes);
    for (size_t i = 0; i < routes->n; i++) {
        if (load_route(ld, routes->items[i], &s->routes[i]) != 0)
            return -1;
        s->nroutes++;
    }
    return 0;
}

static int load_servers(tt_loader *ld)
{
    tt_config *cf = ld->cf;
    const tt_conf_node *servers = tt_conf_get(cf->root, "servers");
    tt_pending pending = { NULL, 0, 0 };

    if (servers == NULL) {
        tt_conf_error(ld->err, cf->root, "'servers' is missing; add at least one, "
                      "such as servers: [{listen: 127.0.0.1:8080, routes: "
                      "[{match: /, return: 404}]}]");
        return -1;
    }
    if (!is_seq(servers) || servers->n == 0) {
        tt_conf_error(ld->err, servers, "'servers' is a non-empty list of servers, "
                      "such as servers: [{listen: 127.0.0.1:8080, routes: "
                      "[{match: /, return: 404}]}]");
        return -1;
    }
    cf->servers = tt_arena_alloc(cf->arena, servers->n * sizeof(*cf->servers));
    if (cf->servers == NULL)
        return oom(ld, servers);
    for (size_t i = 0; i < servers->n; i++) {
        if (load_server(ld, servers->items[i], &cf->servers[i], &pending) != 0)
            return -1;
        cf->nservers++;
    }
    return merge_listens(ld, &pending);
}

/* ---- loading ---- */

static int load_tree(tt_loader *ld)
{
    tt_config *cf = ld->cf;
    const tt_conf_node *v;

    if (!is_map(cf->root)) {
        tt_conf_error(ld->err, cf->root, "expected settings such as "
                      "'servers:' at the top of the file");
        return -1;
    }
    if ((v = get(cf->root, "module_path")) != NULL) {
        if (tt_conf_path(v, &cf->module_path, ld->err) != 0)
            return -1;
    } else {
        cf->module_path = TT_MODULE_DIR;
    }

    ld->modules_node = get(cf->root, "modules");
    if (ld->modules_node != NULL) {
        if (load_module_list(ld, ld->modules_node) != 0)
            return -1;
    } else if (load_all_modules(ld) != 0) {
        return -1;
    }

    if (check_module_keys(ld) != 0 ||
        check_top_keys(ld) != 0 || parse_core_values(ld) != 0 ||
        configure_mains(ld) != 0 || load_servers(ld) != 0)
        return -1;
    return 0;
}

/* Absolute directory of `file`, which need not exist (text configs). */
static char *config_dir(tt_arena *a, const char *file)
{
    const char *slash = strrchr(file, '/');
    char dir[PATH_MAX], real[PATH_MAX];

    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    if (realpath(dir, real) != NULL)
        return tt_arena_strdup(a, real);
    if (dir[0] == '/')
        return tt_arena_strdup(a, dir);
    if (getcwd(real, sizeof(real)) == NULL)
        return NULL;
    return tt_arena_printf(a, "%s/%s", real, dir);
}

static tt_config *load(const char *file, const char *text, size_t len,
                       int load_modules, tt_errbuf *err)
{
    tt_arena *a = tt_arena_create(TT_ARENA_FIRST_BLOCK);
    tt_config *cf = a ? tt_arena_alloc(a, sizeof(*cf)) : NULL;
    tt_loader ld = { .cf = cf, .err = err };

    err->msg[0] = '\0';
    if (cf == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", file);
        tt_arena_destroy(a);
        return NULL;
    }
    cf->arena = a;
    cf->file = tt_arena_strdup(a, file);
    cf->dir = config_dir(a, file);
    if (cf->file == NULL || cf->dir == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot find its directory", file);
        tt_arena_destroy(a);
        return NULL;
    }
    if (!load_modules) {
        ld.builtins = tt_bundled;
        ld.nbuiltins = TT_NBUNDLED;
    }
    /* modules' configure() allocate from, and resolve paths against, this */
    tt_conf_set_current(a, cf->dir);

    cf->root = text ? tt_yaml_load_string(a, file, text, len, err)
                    : tt_yaml_load(a, file, err);
    if (cf->root == NULL) {
        if (err->msg[0] == '\0')
            snprintf(err->msg, sizeof(err->msg), "%s: the file is empty; it needs at "
                     "least 'servers:'", file);
    } else if (load_tree(&ld) == 0) {
        tt_conf_set_current(NULL, NULL);
        return cf;
    }
    if (err->msg[0] == '\0')
        snprintf(err->msg, sizeof(err->msg), "%s: invalid configuration", file);
    tt_conf_set_current(NULL, NULL);
    tt_config_free(cf);
    return NULL;
}

tt_config *tt_config_load(const char *file, tt_errbuf *err)
{
    return load(file, NULL, 0, 1, err);
}

tt_config *tt_config_load_text(const char *name, const char *text, size_t len,
                               int load_modules, tt_errbuf *err)
{
    return load(name, text, len, load_modules, err);
}

void tt_config_free(tt_config *cf)
{
    if (cf == NULL)
        return;
    tt_module_unload_all(cf);
    tt_tls_free_all(cf);
    tt_arena_destroy(cf->arena);
}

const char *tt_config_default_file(void)
{
    static const char *const sys = TT_SYSCONFDIR "/tutti/tutti.yaml";

    if (access("tutti.yaml", F_OK) == 0)
        return "tutti.yaml";
    if (access(sys, F_OK) == 0)
        return sys;
    return "tutti.yaml";
}
