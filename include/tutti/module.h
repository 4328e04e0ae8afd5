/* tutti — the module interface.
 *
 * A module is a shared object that exports one descriptor named
 * `tt_module_entry`. The core checks `abi` before it reads anything else, then
 * `signature` (type sizes and build options), so a module built for another
 * tutti is refused with a clear message instead of crashing.
 *
 * Modules never link against the daemon: everything they may call comes in
 * the tt_api table handed to load(), the way redis hands out its module API.
 * The descriptor and the table keep spare slots so they can grow without an
 * ABI bump; new members only ever go at the end.
 */
#ifndef TUTTI_MODULE_H
#define TUTTI_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <tutti/conf.h>
#include <tutti/request.h>
#include <tutti/log.h>

#define TT_MODULE_ABI 1

#define TT_STR_(x) #x
#define TT_STR(x) TT_STR_(x)

/* Sizes and options that must agree between the daemon and a module. */
#define TT_MODULE_SIGNATURE                                             \
    "abi=" TT_STR(TT_MODULE_ABI)                                        \
    ",ptr=" TT_STR(__SIZEOF_POINTER__)                                  \
    ",long=" TT_STR(__SIZEOF_LONG__)                                    \
    ",req=" TT_STR(TT_REQUEST_FIELDS)                                   \
    ",api=" TT_STR(TT_API_SLOTS)

/* Bumped whenever a field is added to the public structs. */
#define TT_REQUEST_FIELDS 27
#define TT_API_SLOTS      39

#define TT_MODULE_HANDLER 1     /* route_key names the route's one handler */
#define TT_MODULE_FILTER  2     /* route_key names a filter run before it */

/* flags */
#define TT_MODULE_GLOBAL_SYMBOLS 0x1  /* dlopen with RTLD_GLOBAL (embeds CPython) */
#define TT_MODULE_KEEPALIVE_POLICY 0x2 /* main_conf and server_confs are tt_keepalive
                                        * policies the core enforces */

/* read_body() callback status */
#define TT_BODY_DATA   0        /* data, more follows */
#define TT_BODY_END    1        /* the last call; len may be 0 */
#define TT_BODY_ERROR -1        /* the body will not complete (client gone, timeout) */

struct event_base;

typedef struct tt_api tt_api;
typedef struct tt_module tt_module;

typedef void (*tt_body_cb)(tt_request *r, const char *data, size_t len,
                           int status, void *arg);
typedef void (*tt_request_cb)(tt_request *r, void *arg);

struct tt_api {
    uint32_t abi;               /* TT_MODULE_ABI of the daemon */
    uint32_t size;              /* sizeof(tt_api) in the daemon */

    /* logging: to the error log, with level and time */
    void (*log)(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

    /* configuration: every failing call fills err with "file:line:col: ..." */
    void (*conf_error)(tt_errbuf *err, const tt_conf_node *node,
                       const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    const tt_conf_node *(*conf_get)(const tt_conf_node *map, const char *key);
    int  (*conf_check_keys)(const tt_conf_node *map, const char *what,
                            const char *const *known, tt_errbuf *err);
    int  (*conf_string)(const tt_conf_node *n, const char **out, tt_errbuf *err);
    int  (*conf_bool)(const tt_conf_node *n, int *out, tt_errbuf *err);
    int  (*conf_int)(const tt_conf_node *n, long min, long max, long *out,
                     tt_errbuf *err);
    int  (*conf_size)(const tt_conf_node *n, uint64_t *out, tt_errbuf *err);
    int  (*conf_duration)(const tt_conf_node *n, uint64_t *ms, tt_errbuf *err);
    int  (*conf_rate)(const tt_conf_node *n, tt_rate *out, tt_errbuf *err);
    int  (*conf_path)(const tt_conf_node *n, const char **out, tt_errbuf *err);
    void *(*conf_alloc)(size_t n);  /* zeroed; lives as long as the config */

    /* the request */
    const char *(*header)(const tt_request *r, const char *name, size_t *len);
    void *(*palloc)(tt_request *r, size_t n);  /* zeroed; freed with r */

    /* the response: start, then write/sendfile any number of times, then
     * finish. content_length -1 lets the core choose chunked (HTTP/1.1) or
     * close-delimited (HTTP/1.0). The core adds Date, Server, Connection. */
    int  (*start)(tt_request *r, int status, const tt_header *headers,
                  size_t nheaders, int64_t content_length);
    int  (*write)(tt_request *r, const void *data, size_t len);
    int  (*sendfile)(tt_request *r, int fd, int64_t offset, int64_t len,
                     int close_fd);
    int  (*finish)(tt_request *r);
    int  (*respond)(tt_request *r, int status, const char *content_type,
                    const void *body, size_t len);
    size_t (*pending)(const tt_request *r);    /* bytes not yet sent */
    void (*on_drain)(tt_request *r, tt_request_cb cb, void *arg);

    /* the request body, streamed; sends "100 Continue" when it was asked */
    int  (*read_body)(tt_request *r, tt_body_cb cb, void *arg);
    void (*pause_body)(tt_request *r, int paused);

    /* called once just before r is freed, after a normal end or an abort;
     * every call adds a hook (filters and the handler may each have one),
     * and the last added runs first */
    void (*on_close)(tt_request *r, tt_request_cb cb, void *arg);

    struct event_base *(*event_base)(void);    /* this worker's loop */

    /* Speed limits for the rest of this request, in bytes per second on its
     * connection (0: unlimited); the first download_after bytes of the
     * response go at full speed. Lifted when the request ends. */
    int  (*set_rate)(tt_request *r, uint64_t download, uint64_t upload,
                     uint64_t download_after);
    /* worker processes of the running config (`workers:` resolved) */
    int  (*worker_count)(void);
    /* The response cannot be completed (its head is out, its body will not
     * be): what is queued is sent, then the connection closes without
     * ending the body, so the client sees a cut and never a complete-looking
     * answer. Like finish(), the close hooks run once the output is out. */
    void (*abort)(tt_request *r);
    /* The reason phrase for the coming start() instead of the standard one
     * (an app's "299 Quite Fine"); -1 if it has control characters or is
     * over 200 bytes, and the standard one stays. */
    int  (*reason)(tt_request *r, const char *reason, size_t len);
    /* Block this worker until no more than `below` bytes of output wait,
     * for at most timeout_ms (0: the server's send_timeout): only for a handler that must not return to
     * the loop mid-call (an app on the event loop). -1 when the client is
     * gone or too slow: abort then. Everyone else uses on_drain. */
    int  (*wait_drain)(tt_request *r, size_t below, uint64_t timeout_ms);

    /* Switch the connection to another protocol (WebSocket): "101 Switching
     * Protocols" goes out with these headers (Upgrade: and the protocol's
     * own; the core adds Connection: Upgrade), and from then on the
     * connection carries raw bytes both ways. read_body delivers what the
     * client sends, as it comes, and TT_BODY_END when it closes its side;
     * write sends bytes as they are; pending, on_drain and pause_body work
     * as before; finish (or abort) closes the connection once the output is
     * out. No read timeout applies: the protocol keeps its own. The
     * access log gets one line, status 101, when the connection ends.
     * -1 (nothing sent) if the response started, the request has a body or
     * is HTTP/1.0. */
    int  (*upgrade)(tt_request *r, const tt_header *headers, size_t n);
    /* The worker begins a graceful stop while r is under way (an upgraded
     * connection, a long stream): cb runs once, so the handler can wind
     * down (a WebSocket sends close 1001) before shutdown_timeout. One per
     * request; a later call replaces it. */
    void (*on_stop)(tt_request *r, tt_request_cb cb, void *arg);
    /* What the loaded module `name` exports to other modules (the exports
     * of its descriptor, e.g. websocket's tt_ws_api), or NULL when that
     * module is not loaded. In a worker, from init_worker on. */
    const void *(*module_exports)(const char *name);
    /* Add key=value to r's access-log line (combined: appended as
     * ` key=value`; json: a key), e.g. the proxy's upstream_addr. Set again,
     * the value is replaced. key is [a-z0-9_]+; -1 otherwise or on OOM. */
    int  (*log_field)(tt_request *r, const char *key, const char *value);

    void *spare[7];
};

struct tt_module {
    uint32_t            abi;        /* TT_MODULE_ABI; checked first */
    const char         *signature;  /* TT_MODULE_SIGNATURE */
    const char         *name;       /* "static"; the name used in `modules:` */
    const char         *version;
    uint32_t            flags;
    const char *const  *needs;      /* NULL-terminated: modules that must load first */
    const char         *route_key;  /* YAML key inside a route, or NULL */
    int                 route_kind; /* TT_MODULE_HANDLER or TT_MODULE_FILTER */
    const char         *main_key;   /* top-level YAML key, or NULL */

    /* right after the checks; keep the api pointer */
    int  (*load)(const tt_api *api);
    /* the top-level main_key node, or NULL when absent (set defaults) */
    int  (*configure_main)(const tt_conf_node *node, void **main_conf,
                           tt_errbuf *err);
    /* one route's route_key node */
    int  (*configure_route)(const tt_conf_node *node, void *main_conf,
                            void **route_conf, tt_errbuf *err);
    /* in every worker after fork, before it accepts; on failure log the
     * reason with api->log(TT_LOG_ERROR, ...): it becomes the start-up error */
    int  (*init_worker)(void *main_conf);
    /* a handler answers r; a filter returns TT_DECLINED to let it pass */
    int  (*handle)(tt_request *r, void *route_conf);
    /* in every worker before it exits */
    void (*exit_worker)(void *main_conf);

    /* a key the module owns inside each server block, or NULL; its node is
     * handed to configure_server when a server has it */
    const char         *server_key;
    int  (*configure_server)(const tt_conf_node *node, void *main_conf,
                             void **server_conf, tt_errbuf *err);

    /* an API for other modules, found with tt_api.module_exports(name);
     * its first member should be a version the user checks */
    const void         *exports;

    void *spare[5];
};

#define TT_MODULE_SYMBOL "tt_module_entry"

/* Use in the module's one file: TT_MODULE(hello) = { ... }; */
#define TT_MODULE_DEFINE __attribute__((visibility("default"))) tt_module tt_module_entry

#endif
