/* The configuration: YAML tree, value parsers, and the validated result.
 *
 * Loading is all-or-nothing: tt_config_load() either returns a complete
 * config with its modules loaded and configured, or NULL with one message
 * "file:line:col: what is wrong, what to write" in err.
 */
#ifndef TT_CONFIG_H
#define TT_CONFIG_H

#include <stdint.h>
#include <sys/socket.h>
#include <tutti/tutti.h>
#include "arena.h"

/* ---- values.c: pure parsers, unit-tested ---- */

/* "512", "8KB", "10MB", "1GB" (binary units, also K/M/G and KiB...) */
int tt_parse_size(const char *s, uint64_t *out);
/* "500ms", "10s", "5m", "1h", "1d"; a bare number is seconds */
int tt_parse_duration(const char *s, uint64_t *ms);
/* "512KB/s" (bytes), "20/s", "600/m", "3600/h" (requests) */
int tt_parse_rate(const char *s, tt_rate *out);
/* "true/false/yes/no/on/off" */
int tt_parse_bool(const char *s, int *out);
/* ${NAME} and ${NAME:-default}; returns NULL with *badoff the offset of the
 * offending '${' and *why the reason (valid until the next call) on a
 * malformed reference or an unset variable without default.  "$$" and a lone
 * "$" stay as they are.  Result is malloc'ed. */
char *tt_expand_env(const char *in, size_t *badoff, const char **why);
/* Levenshtein distance, for "did you mean" */
unsigned tt_edit_distance(const char *a, const char *b);
/* closest of known[] (NULL-terminated) to word, or NULL if none is close */
const char *tt_suggest(const char *word, const char *const *known);

/* ---- yaml.c: libyaml -> tt_conf_node tree (env already expanded) ---- */

tt_conf_node *tt_yaml_load(tt_arena *a, const char *file, tt_errbuf *err);
tt_conf_node *tt_yaml_load_string(tt_arena *a, const char *name,
                                  const char *text, size_t len, tt_errbuf *err);
/* The key node a value stands under in its map, or NULL (root, list items,
 * keys).  The loader allocates every node inside a private wrapper whose
 * first member is the tt_conf_node, so only pass nodes that came from
 * tt_yaml_load*; accessors use it to quote "key: value" in messages. */
const tt_conf_node *tt_yaml_key_of(const tt_conf_node *n);

/* ---- access.c: node accessors; these fill the tt_api conf_* slots ---- */

void tt_conf_error(tt_errbuf *err, const tt_conf_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const tt_conf_node *tt_conf_get(const tt_conf_node *map, const char *key);
int tt_conf_check_keys(const tt_conf_node *map, const char *what,
                       const char *const *known, tt_errbuf *err);
int tt_conf_string(const tt_conf_node *n, const char **out, tt_errbuf *err);
int tt_conf_bool(const tt_conf_node *n, int *out, tt_errbuf *err);
int tt_conf_int(const tt_conf_node *n, long min, long max, long *out, tt_errbuf *err);
int tt_conf_size(const tt_conf_node *n, uint64_t *out, tt_errbuf *err);
int tt_conf_duration(const tt_conf_node *n, uint64_t *ms, tt_errbuf *err);
int tt_conf_rate(const tt_conf_node *n, tt_rate *out, tt_errbuf *err);
int tt_conf_path(const tt_conf_node *n, const char **out, tt_errbuf *err);
void *tt_conf_alloc(size_t n);
/* the arena and base directory conf_alloc/conf_path use while loading */
void tt_conf_set_current(tt_arena *a, const char *dir);

/* ---- core.c: the validated config ---- */

typedef struct {
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t max_header_size;
    uint64_t max_body_size;
    uint64_t keepalive_timeout_ms;      /* module keepalive, or the built-in 15 s */
    uint32_t keepalive_max_requests;    /* 0: no limit */
} tt_limits;

typedef struct tt_loaded_module tt_loaded_module;   /* module.h */

typedef struct {
    const tt_loaded_module *module;
    void                   *conf;
} tt_route_module;

typedef struct {
    int         status;
    const char *body;
    size_t      body_len;
    tt_header  *headers;
    size_t      nheaders;
} tt_return_conf;

#define TT_METHODS_MAX 16

typedef struct {
    const char     *prefix;         /* "/static/" */
    size_t          prefix_len;
    const char    **methods;        /* NULL = any */
    size_t          nmethods;
    tt_route_module handler;        /* module == NULL: the core's `return` */
    tt_return_conf *ret;
    tt_route_module *filters;
    size_t          nfilters;
    const tt_conf_node *node;
} tt_route;

typedef struct tt_listen tt_listen;

/* A server's `tls:` (tls.c): its OpenSSL context (an SSL_CTX). */
typedef struct tt_tls {
    void               *ctx;        /* SSL_CTX *, made before the workers fork */
    const char         *hsts;       /* Strict-Transport-Security value, or NULL */
    unsigned char      *ocsp;       /* the stapled OCSP response (DER), or NULL */
    size_t              ocsp_len;
    struct tt_tls      *next;       /* every context of the config, to free */
} tt_tls;

typedef struct tt_server {
    const char    **names;          /* lower-cased */
    size_t          nnames;
    tt_limits       limits;
    tt_route       *routes;
    size_t          nroutes;
    tt_tls         *tls;            /* NULL: plain HTTP */
    int             redirect_https; /* redirect_http: the HTTPS port, 0 = off */
    const tt_conf_node *node;
} tt_server;

struct tt_listen {
    const char             *text;   /* "127.0.0.1:8080" as written */
    struct sockaddr_storage addr;
    socklen_t               addrlen;
    int                     fd;     /* bound by the master; -1 before */
    tt_server             **servers;/* servers on this address; [0] is default */
    size_t                  nservers;
    int                     tls;    /* its servers speak HTTPS (all or none) */
    const tt_conf_node     *node;
};

#define TT_ACCESS_COMBINED 0
#define TT_ACCESS_JSON     1

typedef struct tt_config {
    tt_arena       *arena;
    const char     *file;           /* as given */
    const char     *dir;            /* its directory, absolute */
    tt_conf_node   *root;

    const char     *module_path;
    tt_loaded_module **modules;     /* in load order */
    size_t          nmodules;
    void          **main_confs;     /* [i] for modules[i] */

    int             workers;        /* resolved: `auto` -> cores */
    int             daemon;
    const char     *pid_file;       /* absolute, or NULL */
    const char     *user;           /* or NULL */
    uint64_t        shutdown_timeout_ms;
    const char     *error_log;      /* "stderr" or an absolute path */
    int             log_level;
    const char     *access_log;     /* NULL = off; "stdout"; or an absolute path */
    int             access_log_format;
    tt_limits       limits;
    uint32_t        max_idle;       /* module keepalive; 0: no limit */
    uint32_t        max_connections;

    tt_server      *servers;
    size_t          nservers;
    tt_listen      *listens;        /* unique addresses over all servers */
    size_t          nlistens;
    tt_tls         *tls_list;       /* the SSL_CTXs to free with the config */
} tt_config;

/* ---- tls.c ---- */
/* A server's tls: block, its files read and checked, or NULL with err. */
tt_tls *tt_tls_load(tt_config *cf, const tt_conf_node *node, tt_errbuf *err);
void    tt_tls_free_all(tt_config *cf);

/* ---- tickets.c: session-ticket keys shared by the workers ---- */
int      tt_tickets_init(void);          /* shared memory, before the first fork */
void     tt_tickets_attach(void *ssl_ctx);
void     tt_tickets_tick(uint64_t now_ms); /* the master (CLOCK_MONOTONIC ms): rotate when due */
uint64_t tt_tickets_next_ms(void);       /* monotonic ms of the next rotation */

/* Load and validate everything, modules included. check_only: -t. */
tt_config *tt_config_load(const char *file, tt_errbuf *err);
/* The same from text in memory; `name` stands for the file in messages and
 * relative paths resolve against its directory. load_modules = 0: nothing is
 * dlopen'ed; route and top-level keys are checked against stand-ins for the
 * bundled modules (static, wsgi, asgi, websocket, proxy, throttle, keepalive,
 * status, hello), loaded but configured by nobody. For tests and the fuzzer. */
tt_config *tt_config_load_text(const char *name, const char *text, size_t len,
                               int load_modules, tt_errbuf *err);
void       tt_config_free(tt_config *cf);
/* the default file: ./tutti.yaml, then SYSCONFDIR/tutti/tutti.yaml */
const char *tt_config_default_file(void);

#endif
