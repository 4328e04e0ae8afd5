/* keepalive — how long and how much a connection may be kept open.
 *
 *   keepalive: {timeout: 15s, max_requests: 1000, max_idle: 512, max_connections: 10000}
 *   servers:
 *     - listen: ...
 *       keepalive: {timeout: 5s}       # per server: timeout and max_requests
 *
 * The core owns the connections, so it enforces the policy: this module
 * reads and checks the YAML and hands the core a tt_keepalive (its
 * descriptor says so with TT_MODULE_KEEPALIVE_POLICY). Without the module
 * the core keeps 15 s and 1000 requests and puts no cap on idle or open
 * connections. doc/keepalive.md is the user's side.
 */
#include <string.h>
#include <tutti/tutti.h>

static const tt_api *api;

static int keepalive_load(const tt_api *a)
{
    if (a->size < sizeof(tt_api))
        return -1;
    api = a;
    return 0;
}

/* `timeout` and `max_requests`, shared by both levels */
static int parse_common(const tt_conf_node *node, tt_keepalive *ka, tt_errbuf *err)
{
    const tt_conf_node *v;
    long n;

    if ((v = api->conf_get(node, "timeout")) != NULL &&
        api->conf_duration(v, &ka->timeout_ms, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "max_requests")) != NULL) {
        if (api->conf_int(v, 0, 100000000, &n, err) != 0)
            return -1;
        ka->max_requests = (uint32_t)n;
    }
    return 0;
}

static int is_empty(const tt_conf_node *node)
{
    return node->type == TT_CONF_SCALAR && node->len == 0 && !node->quoted;
}

static int keepalive_configure_main(const tt_conf_node *node, void **main_conf,
                                    tt_errbuf *err)
{
    static const char *const keys[] = {
        "timeout", "max_requests", "max_idle", "max_connections", NULL
    };
    tt_keepalive *ka = api->conf_alloc(sizeof(*ka));
    const tt_conf_node *v;
    long n;

    if (ka == NULL)
        return -1;
    /* CONFIG.md's defaults, also when the section is left out */
    *ka = (tt_keepalive){
        .timeout_ms = 15000, .max_requests = 1000, .max_idle = 512,
        .max_connections = 10000,
    };
    *main_conf = ka;
    if (node == NULL || is_empty(node))
        return 0;
    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'keepalive' is a map, such as "
                        "keepalive: {timeout: 15s, max_requests: 1000}");
        return -1;
    }
    if (api->conf_check_keys(node, "keepalive", keys, err) != 0 ||
        parse_common(node, ka, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "max_idle")) != NULL) {
        if (api->conf_int(v, 0, 10000000, &n, err) != 0)
            return -1;
        ka->max_idle = (uint32_t)n;
    }
    if ((v = api->conf_get(node, "max_connections")) != NULL) {
        if (api->conf_int(v, 0, 10000000, &n, err) != 0)
            return -1;
        ka->max_connections = (uint32_t)n;
    }
    return 0;
}

static int keepalive_configure_server(const tt_conf_node *node, void *main_conf,
                                      void **server_conf, tt_errbuf *err)
{
    static const char *const keys[] = { "timeout", "max_requests", NULL };
    const tt_keepalive *main = main_conf;
    tt_keepalive *ka = api->conf_alloc(sizeof(*ka));

    if (ka == NULL)
        return -1;
    *ka = *main;                /* what the server does not say, it inherits */
    *server_conf = ka;
    if (is_empty(node))
        return 0;
    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "a server's 'keepalive' is a map, such as "
                        "keepalive: {timeout: 5s, max_requests: 100}");
        return -1;
    }
    for (size_t i = 0; i < node->n; i++) {
        const char *k = node->keys[i]->value;
        if (strcmp(k, "max_idle") == 0 || strcmp(k, "max_connections") == 0) {
            api->conf_error(err, node->keys[i], "'%s' counts the whole worker, not "
                            "one server; set it in the top-level 'keepalive' section", k);
            return -1;
        }
    }
    if (api->conf_check_keys(node, "a server's keepalive", keys, err) != 0)
        return -1;
    return parse_common(node, ka, err);
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "keepalive",
    .version = "0.1.0",
    .flags = TT_MODULE_KEEPALIVE_POLICY,
    .main_key = "keepalive",
    .load = keepalive_load,
    .configure_main = keepalive_configure_main,
    .server_key = "keepalive",
    .configure_server = keepalive_configure_server,
};
