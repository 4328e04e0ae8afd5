/* proxy — a reverse proxy to HTTP/1.1 upstreams, the job of nginx's
 * proxy_pass (doc/proxy.md):
 *
 *   - match: /api/
 *     proxy: {upstreams: [127.0.0.1:9000, 127.0.0.1:9001], keepalive: 32}
 *
 * This file is the descriptor. A request's way is in relay.c (and
 * tunnel.c after a 101); the key's parsing in conf.c.
 */
#include "proxy.h"

const tt_api *px_api;

static int proxy_load(const tt_api *api)
{
    if (api->size < sizeof(tt_api))
        return -1;              /* a daemon without log_field */
    px_api = api;
    return 0;
}

/* Idle upstream connections end with the worker. */
static void proxy_exit_worker(void *main_conf)
{
    (void)main_conf;
    px_groups_close_all();
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "proxy",
    .version = PACKAGE_VERSION,
    .route_key = "proxy",
    .route_kind = TT_MODULE_HANDLER,
    .load = proxy_load,
    .configure_route = px_configure_route,
    .handle = px_handle,
    .exit_worker = proxy_exit_worker,
};
