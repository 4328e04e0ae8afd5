/* The table of functions modules call: they never link against the daemon.
 * Slots are only ever appended; `size` lets a module see what exists. */
#include <stdarg.h>
#include <stdio.h>
#include "config/config.h"
#include "http/request_impl.h"
#include "log.h"
#include "module.h"
#include "worker.h"

static void api_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tt_vlog(level, fmt, ap);
    va_end(ap);
}

static void api_conf_error(tt_errbuf *err, const tt_conf_node *node, const char *fmt, ...)
{
    char msg[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tt_conf_error(err, node, "%s", msg);
}

static struct event_base *api_event_base(void)
{
    return tt_worker_base;
}

static int api_worker_count(void)
{
    return tt_worker_count();
}

/* The running worker's modules: what one exports to the others. */
static const void *api_module_exports(const char *name)
{
    const tt_config *cf = tt_worker_config();
    const tt_loaded_module *lm = cf != NULL ? tt_module_find(cf, name) : NULL;
    return lm != NULL ? lm->mod->exports : NULL;
}

const tt_api tt_module_api = {
    .abi = TT_MODULE_ABI,
    .size = sizeof(tt_api),
    .log = api_log,
    .conf_error = api_conf_error,
    .conf_get = tt_conf_get,
    .conf_check_keys = tt_conf_check_keys,
    .conf_string = tt_conf_string,
    .conf_bool = tt_conf_bool,
    .conf_int = tt_conf_int,
    .conf_size = tt_conf_size,
    .conf_duration = tt_conf_duration,
    .conf_rate = tt_conf_rate,
    .conf_path = tt_conf_path,
    .conf_alloc = tt_conf_alloc,
    .header = tt_req_header,
    .palloc = tt_req_palloc,
    .start = tt_resp_start,
    .write = tt_resp_write,
    .sendfile = tt_resp_sendfile,
    .finish = tt_resp_finish,
    .respond = tt_resp_respond,
    .pending = tt_resp_pending,
    .on_drain = tt_resp_on_drain,
    .read_body = tt_body_read,
    .pause_body = tt_body_pause,
    .on_close = tt_req_on_close,
    .event_base = api_event_base,
    .set_rate = tt_req_set_rate,
    .worker_count = api_worker_count,
    .abort = tt_req_abort,
    .reason = tt_resp_reason,
    .wait_drain = tt_resp_wait_drain,
    .upgrade = tt_resp_upgrade,
    .on_stop = tt_req_on_stop,
    .module_exports = api_module_exports,
    .log_field = tt_req_log_field,
};
