/* A module that needs another (hello) loaded before it, for the loader's
 * dependency checks. Its route key `needy` answers "needy\n". */
#include <tutti/tutti.h>

static const tt_api *api;
static const char *const needy_needs[] = { "hello", NULL };

static int needy_load(const tt_api *a)
{
    api = a;
    return 0;
}

static int needy_configure(const tt_conf_node *node, void *main_conf,
                           void **route_conf, tt_errbuf *err)
{
    (void)node; (void)main_conf; (void)err;
    *route_conf = NULL;
    return 0;
}

static int needy_handle(tt_request *r, void *route_conf)
{
    (void)route_conf;
    return api->respond(r, 200, "text/plain", "needy\n", 6) == 0 ? TT_OK : TT_ERROR;
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "needy",
    .version = "0.1.0",
    .needs = needy_needs,
    .route_key = "needy",
    .route_kind = TT_MODULE_HANDLER,
    .load = needy_load,
    .configure_route = needy_configure,
    .handle = needy_handle,
};
