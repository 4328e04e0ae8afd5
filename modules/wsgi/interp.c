/* wsgi's side of the interpreter: pyhost.c starts (or joins) it, then the
 * types wsgi hands to apps are readied and the environ's constants made. */
#include "wsgi.h"      /* first: Python.h before the system headers */

#define api wsgi_api

int wsgi_interp_start(wsgi_main *m)
{
    if (tt_py_start(api, &m->py) != 0)
        return -1;
    if (PyType_Ready(&wsgi_input_type) != 0 || PyType_Ready(&wsgi_call_type) != 0 ||
        PyType_Ready(&wsgi_file_wrapper_type) != 0 || wsgi_environ_init() != 0) {
        tt_py_log_exception("wsgi: cannot set up Python");
        return -1;
    }
    return 0;
}

void wsgi_interp_stop(void)
{
    tt_py_stop();
}

int wsgi_interp_load_app(wsgi_route *rt)
{
    rt->app = tt_py_load_app("wsgi", rt->app_spec, rt->file, rt->line, rt->col);
    return rt->app != NULL ? 0 : -1;
}
