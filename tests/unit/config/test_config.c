/* The config loader as a user meets it: YAML in, a validated tt_config or
 * exactly one message "file:line:col: what is wrong; what to write" out.
 *
 * Most configs are checked from text with the bundled modules stood in for
 * (load_modules = 0). The module loader is tested with real shared objects:
 * modules/hello and the broken-on-purpose ones in tests/modules, linked into
 * a temporary module directory per case.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config/config.h"
#include "module.h"

#define HELLO_SO  TT_TEST_BUILDDIR "/modules/hello/.libs/hello.so"
#define TEST_LIBS TT_TEST_BUILDDIR "/tests/modules/.libs"

static char tmpdir[256];
static char cwd[PATH_MAX];

/* ---- helpers ---- */

static tt_config *text(const char *yaml, tt_errbuf *err)
{
    return tt_config_load_text("tutti.yaml", yaml, strlen(yaml), 0, err);
}

static void expect_text_error(const char *yaml, const char *msg)
{
    tt_errbuf err = {{0}};
    tt_config *cf = text(yaml, &err);
    if (cf != NULL) {
        tt_config_free(cf);
        fail_msg("config loaded, expected: %s", msg);
    }
    assert_string_equal(err.msg, msg);
}

static tt_config *text_ok(const char *yaml)
{
    tt_errbuf err = {{0}};
    tt_config *cf = text(yaml, &err);
    if (cf == NULL)
        fail_msg("config refused: %s", err.msg);
    return cf;
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* A module directory `name` under tmpdir holding the given modules (hello
 * from modules/hello, the rest from tests/modules), as symlinks. */
static const char *module_dir(const char *name, ...)
{
    static char dir[PATH_MAX];
    va_list ap;

    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    va_start(ap, name);
    for (const char *m; (m = va_arg(ap, const char *)) != NULL;) {
        char target[PATH_MAX], link[PATH_MAX + 16];
        if (strcmp(m, "hello") == 0)
            snprintf(target, sizeof(target), "%s", HELLO_SO);
        else
            snprintf(target, sizeof(target), "%s/%s.so", TEST_LIBS, m);
        snprintf(link, sizeof(link), "%s/%s.so", dir, m);
        unlink(link);
        assert_int_equal(symlink(target, link), 0);
    }
    va_end(ap);
    return dir;
}

/* Write tmpdir/tutti.yaml: "module_path: DIR\n" then body, and load it. */
static tt_config *file_config(const char *dir, const char *body, tt_errbuf *err,
                              char *file, size_t filelen)
{
    char yaml[8192];
    snprintf(file, filelen, "%s/tutti.yaml", tmpdir);
    snprintf(yaml, sizeof(yaml), "module_path: %s\n%s", dir, body);
    write_file(file, yaml);
    return tt_config_load(file, err);
}

/* The file's error, with the file name replaced by "F" for comparison. */
static void expect_file_error(const char *dir, const char *body, const char *fmt, ...)
{
    char file[PATH_MAX], want[2048], got[2048];
    tt_errbuf err = {{0}};
    va_list ap;

    tt_config *cf = file_config(dir, body, &err, file, sizeof(file));
    if (cf != NULL) {
        tt_config_free(cf);
        fail_msg("config loaded, expected an error like: %s", fmt);
    }
    va_start(ap, fmt);
    vsnprintf(want, sizeof(want), fmt, ap);
    va_end(ap);
    size_t flen = strlen(file);
    if (strncmp(err.msg, file, flen) == 0)
        snprintf(got, sizeof(got), "F%s", err.msg + flen);
    else
        snprintf(got, sizeof(got), "%s", err.msg);
    assert_string_equal(got, want);
}

static tt_config *file_ok(const char *dir, const char *body)
{
    char file[PATH_MAX];
    tt_errbuf err = {{0}};
    tt_config *cf = file_config(dir, body, &err, file, sizeof(file));
    if (cf == NULL)
        fail_msg("config refused: %s", err.msg);
    return cf;
}

static void expect_addr(const tt_listen *l, int family, const char *ip, int port)
{
    char buf[INET6_ADDRSTRLEN];
    assert_int_equal(l->addr.ss_family, family);
    if (family == AF_INET) {
        const struct sockaddr_in *sa = (const void *)&l->addr;
        inet_ntop(AF_INET, &sa->sin_addr, buf, sizeof(buf));
        assert_int_equal(ntohs(sa->sin_port), port);
        assert_int_equal(l->addrlen, sizeof(*sa));
    } else {
        const struct sockaddr_in6 *sa = (const void *)&l->addr;
        inet_ntop(AF_INET6, &sa->sin6_addr, buf, sizeof(buf));
        assert_int_equal(ntohs(sa->sin6_port), port);
        assert_int_equal(l->addrlen, sizeof(*sa));
    }
    assert_string_equal(buf, ip);
    assert_int_equal(l->fd, -1);
}

/* ---- a valid config and what it becomes ---- */

static void test_defaults(void **state)
{
    (void)state;
    tt_config *cf = text_ok("servers:\n  - routes: [{return: 204}]\n");
    char want[PATH_MAX + 16];

    assert_string_equal(cf->file, "tutti.yaml");
    assert_string_equal(cf->dir, cwd);
    assert_string_equal(cf->module_path, TT_MODULE_DIR);
    assert_int_equal(cf->workers, 1);
    assert_int_equal(cf->daemon, 0);
    snprintf(want, sizeof(want), "%s/tutti.pid", cwd);
    assert_string_equal(cf->pid_file, want);
    assert_null(cf->user);
    assert_int_equal(cf->shutdown_timeout_ms, 30000);
    assert_string_equal(cf->error_log, "stderr");
    assert_int_equal(cf->log_level, TT_LOG_INFO);
    assert_string_equal(cf->access_log, "stdout");
    assert_int_equal(cf->access_log_format, TT_ACCESS_COMBINED);
    assert_int_equal(cf->limits.header_timeout_ms, 10000);
    assert_int_equal(cf->limits.body_timeout_ms, 60000);
    assert_int_equal(cf->limits.send_timeout_ms, 60000);
    assert_int_equal(cf->limits.max_header_size, 16 * 1024);
    assert_int_equal(cf->limits.max_body_size, 10 * 1024 * 1024);

    /* no listen: 127.0.0.1:8080; no match: "/" */
    assert_int_equal(cf->nlistens, 1);
    expect_addr(&cf->listens[0], AF_INET, "127.0.0.1", 8080);
    assert_int_equal(cf->nservers, 1);
    assert_int_equal(cf->servers[0].nnames, 0);
    assert_int_equal(cf->servers[0].nroutes, 1);
    const tt_route *r = &cf->servers[0].routes[0];
    assert_string_equal(r->prefix, "/");
    assert_int_equal(r->prefix_len, 1);
    assert_null(r->methods);
    assert_null(r->handler.module);
    assert_int_equal(r->ret->status, 204);
    assert_null(r->ret->body);
    assert_int_equal(r->ret->nheaders, 0);

    /* no `modules`: every bundled module, each after the ones it needs */
    assert_int_equal(cf->nmodules, 9);
    const tt_loaded_module *asgi = tt_module_find(cf, "asgi");
    const tt_loaded_module *ws = tt_module_find(cf, "websocket");
    assert_non_null(asgi);
    assert_non_null(ws);
    assert_true(ws->index < asgi->index);
    assert_string_equal(cf->modules[0]->mod->name, "hello");
    tt_config_free(cf);
}

static const char full_config[] =
    "workers: 3\n"
    "daemon: true\n"
    "pid_file: run/tutti.pid\n"
    "user: root\n"
    "shutdown_timeout: 5s\n"
    "error_log: logs/error.log\n"
    "log_level: warn\n"
    "access_log: \"off\"\n"
    "access_log_format: json\n"
    "limits:\n"
    "  header_timeout: 2s\n"
    "  max_body_size: 1MB\n"
    "keepalive: {timeout: 5s}\n"
    "servers:\n"
    "  - listen: [\"127.0.0.1:8080\", \"[::1]:8081\"]\n"
    "    names: [Example.COM, \"*.example.com\"]\n"
    "    limits: {max_body_size: 100MB}\n"
    "    routes:\n"
    "      - match: /static/\n"
    "        static: {root: ./public}\n"
    "      - match: {path: /api/, methods: [get, POST]}\n"
    "        wsgi: {app: api.wsgi:application}\n"
    "        throttle: {download: 512KB/s}\n"
    "      - match: /healthz\n"
    "        return: {status: 200, body: \"ok\\n\", headers: {Content-Type: text/plain}}\n"
    "      - match: /old\n"
    "        return: {status: 301, location: /new}\n"
    "  - listen: 127.0.0.1:8080\n"
    "    names: [other.org]\n"
    "    routes: [{return: 404}]\n"
    "  - listen: \"9090\"\n"
    "    routes: [{match: /, return: 200}]\n";

static void test_full(void **state)
{
    (void)state;
    tt_config *cf = text_ok(full_config);
    char want[PATH_MAX + 32];

    assert_int_equal(cf->workers, 3);
    assert_int_equal(cf->daemon, 1);
    snprintf(want, sizeof(want), "%s/run/tutti.pid", cwd);
    assert_string_equal(cf->pid_file, want);
    assert_string_equal(cf->user, "root");
    assert_int_equal(cf->shutdown_timeout_ms, 5000);
    snprintf(want, sizeof(want), "%s/logs/error.log", cwd);
    assert_string_equal(cf->error_log, want);
    assert_int_equal(cf->log_level, TT_LOG_WARN);
    assert_null(cf->access_log);
    assert_int_equal(cf->access_log_format, TT_ACCESS_JSON);

    /* limits: top level over defaults, then a server's over those */
    assert_int_equal(cf->limits.header_timeout_ms, 2000);
    assert_int_equal(cf->limits.max_body_size, 1024 * 1024);
    assert_int_equal(cf->limits.body_timeout_ms, 60000);
    const tt_server *s0 = &cf->servers[0];
    assert_int_equal(s0->limits.max_body_size, 100 * 1024 * 1024);
    assert_int_equal(s0->limits.header_timeout_ms, 2000);
    assert_int_equal(s0->limits.max_header_size, 16 * 1024);
    assert_int_equal(cf->servers[1].limits.max_body_size, 1024 * 1024);

    assert_int_equal(s0->nnames, 2);
    assert_string_equal(s0->names[0], "example.com");
    assert_string_equal(s0->names[1], "*.example.com");

    /* one listener per address; 127.0.0.1:8080 carries two servers, the
     * first to name it being the default */
    assert_int_equal(cf->nservers, 3);
    assert_int_equal(cf->nlistens, 3);
    expect_addr(&cf->listens[0], AF_INET, "127.0.0.1", 8080);
    assert_string_equal(cf->listens[0].text, "127.0.0.1:8080");
    assert_int_equal(cf->listens[0].nservers, 2);
    assert_ptr_equal(cf->listens[0].servers[0], &cf->servers[0]);
    assert_ptr_equal(cf->listens[0].servers[1], &cf->servers[1]);
    expect_addr(&cf->listens[1], AF_INET6, "::1", 8081);
    assert_int_equal(cf->listens[1].nservers, 1);
    expect_addr(&cf->listens[2], AF_INET, "0.0.0.0", 9090);
    assert_ptr_equal(cf->listens[2].servers[0], &cf->servers[2]);

    assert_int_equal(s0->nroutes, 4);
    const tt_route *r = &s0->routes[0];
    assert_string_equal(r->prefix, "/static/");
    assert_int_equal(r->prefix_len, 8);
    assert_string_equal(r->handler.module->mod->name, "static");
    assert_int_equal(r->nfilters, 0);

    r = &s0->routes[1];
    assert_string_equal(r->prefix, "/api/");
    assert_int_equal(r->nmethods, 3);       /* GET brings HEAD */
    assert_string_equal(r->methods[0], "GET");
    assert_string_equal(r->methods[1], "POST");
    assert_string_equal(r->methods[2], "HEAD");
    assert_string_equal(r->handler.module->mod->name, "wsgi");
    assert_int_equal(r->nfilters, 1);
    assert_string_equal(r->filters[0].module->mod->name, "throttle");
    assert_null(r->ret);

    r = &s0->routes[2];
    assert_null(r->handler.module);
    assert_int_equal(r->ret->status, 200);
    assert_int_equal(r->ret->body_len, 3);
    assert_memory_equal(r->ret->body, "ok\n", 3);
    assert_int_equal(r->ret->nheaders, 1);
    assert_string_equal(r->ret->headers[0].name, "Content-Type");
    assert_string_equal(r->ret->headers[0].value, "text/plain");

    r = &s0->routes[3];
    assert_int_equal(r->ret->status, 301);
    assert_int_equal(r->ret->nheaders, 1);
    assert_string_equal(r->ret->headers[0].name, "Location");
    assert_string_equal(r->ret->headers[0].value, "/new");
    tt_config_free(cf);
}

static void test_listen_forms(void **state)
{
    (void)state;
    tt_config *cf = text_ok(
        "servers:\n"
        "  - listen: [8080, \"*:8081\", \"[::]:8082\", \"localhost:8083\", \"10.1.2.3:8084\"]\n"
        "    routes: [{return: 404}]\n");
    assert_int_equal(cf->nlistens, 5);
    expect_addr(&cf->listens[0], AF_INET, "0.0.0.0", 8080);
    expect_addr(&cf->listens[1], AF_INET, "0.0.0.0", 8081);
    expect_addr(&cf->listens[2], AF_INET6, "::", 8082);
    /* whatever localhost resolves to here, it is loopback on 8083 */
    const tt_listen *l = &cf->listens[3];
    if (l->addr.ss_family == AF_INET)
        expect_addr(l, AF_INET, "127.0.0.1", 8083);
    else
        expect_addr(l, AF_INET6, "::1", 8083);
    assert_string_equal(l->text, "localhost:8083");
    expect_addr(&cf->listens[cf->nlistens - 1], AF_INET, "10.1.2.3", 8084);
    tt_config_free(cf);
}

static void test_workers_auto(void **state)
{
    (void)state;
    tt_config *cf = text_ok("workers: auto\nservers: [{routes: [{return: 404}]}]\n");
    assert_int_equal(cf->workers, (int)sysconf(_SC_NPROCESSORS_ONLN));
    tt_config_free(cf);
}

static void test_filters_in_module_order(void **state)
{
    (void)state;
    /* throttle is a filter whatever the order of the keys; the handler is
     * the one handler key */
    tt_config *cf = text_ok(
        "servers:\n"
        "  - routes:\n"
        "      - throttle: {requests: 20/s}\n"
        "        proxy: {upstreams: [\"127.0.0.1:9000\"]}\n"
        "        match: /legacy\n");
    const tt_route *r = &cf->servers[0].routes[0];
    assert_string_equal(r->prefix, "/legacy");
    assert_string_equal(r->handler.module->mod->name, "proxy");
    assert_int_equal(r->nfilters, 1);
    assert_string_equal(r->filters[0].module->mod->name, "throttle");
    tt_config_free(cf);
}

static void test_env_and_empty_keys(void **state)
{
    (void)state;
    setenv("TT_TEST_WORKERS", "4", 1);
    tt_config *cf = text_ok(
        "workers: ${TT_TEST_WORKERS}\n"
        "limits:\n"
        "servers: [{routes: [{return: 404}]}]\n");
    assert_int_equal(cf->workers, 4);
    assert_int_equal(cf->limits.max_body_size, 10 * 1024 * 1024);
    tt_config_free(cf);
    unsetenv("TT_TEST_WORKERS");
}

/* ---- the errors of CONFIG.md, exactly ---- */

static void test_two_handlers(void **state)
{
    (void)state;
    expect_text_error(
        "# tutti.yaml\n"
        "servers:\n"
        "  - listen: 127.0.0.1:8080\n"
        "    routes:\n"
        "      - match: /a/\n"
        "        return: 200\n"
        "      - match: /b/\n"
        "        return: 204\n"
        "      - match: /c/\n"
        "        return: 404\n"
        "      - return: 410\n"
        "      - match: /static/\n"
        "        static: {root: ./public}\n"
        "        wsgi: {app: api:app}\n",
        "tutti.yaml:14:9: route has two handlers, 'static' and 'wsgi'; "
        "a route has exactly one");
}

static void test_named_in_routes(void **state)
{
    (void)state;
    expect_text_error(
        "# tutti.yaml\n"
        "modules:\n"
        "  - static\n"
        "  - wsgi\n"
        "servers:\n"
        "  - routes:\n"
        "      - match: /ws/\n"
        "        asgi: {app: chat:app}\n",
        "tutti.yaml:3:3: module 'asgi' is named in routes but not in 'modules'; "
        "add it to 'modules'");
}

static void test_bad_size(void **state)
{
    (void)state;
    char yaml[2048] = "";
    for (int i = 1; i <= 20; i++)
        strcat(yaml, "# padding\n");
    strcat(yaml, "limits:\n"
                 " max_body_size: 10 MB\n"
                 "servers: [{routes: [{return: 404}]}]\n");
    expect_text_error(yaml, "tutti.yaml:22:17: 'max_body_size: 10 MB': "
                      "expected a size such as 10MB");
}

/* ---- the core's own errors ---- */

static void test_bad_listen(void **state)
{
    (void)state;
    expect_text_error(
        "servers:\n"
        "  - listen: 127.0.0.1:99999\n",
        "tutti.yaml:2:13: 'listen: 127.0.0.1:99999': expected an address such as "
        "127.0.0.1:8080 or [::1]:8080");
    expect_text_error(
        "servers:\n"
        "  - listen: [\"127.0.0.1:80\", \"::1:8080\"]\n",
        "tutti.yaml:2:30: 'listen: ::1:8080': expected an address such as "
        "127.0.0.1:8080 or [::1]:8080");
    expect_text_error(
        "servers:\n"
        "  - listen: 300.1.2.3:80\n",
        "tutti.yaml:2:13: 'listen: 300.1.2.3:80': expected an address such as "
        "127.0.0.1:8080 or [::1]:8080");
    expect_text_error(
        "servers:\n"
        "  - listen: \"[::1]8080\"\n",
        "tutti.yaml:2:13: 'listen: [::1]8080': expected an address such as "
        "127.0.0.1:8080 or [::1]:8080");
    expect_text_error(
        "servers:\n"
        "  - listen: localhost\n",
        "tutti.yaml:2:13: 'listen: localhost': expected an address such as "
        "127.0.0.1:8080 or [::1]:8080");
}

static void test_no_handler(void **state)
{
    (void)state;
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - match: /x/\n"
        "        throttle: {requests: 1/s}\n",
        "tutti.yaml:3:9: route has no handler; add one of return, hello, proxy, "
        "static, wsgi, asgi");
    expect_text_error(
        "modules: [static]\n"
        "servers:\n"
        "  - routes:\n"
        "      - match: /x/\n",
        "tutti.yaml:4:9: route has no handler; add one of return, static");
}

static void test_not_supported_yet(void **state)
{
    (void)state;
    expect_text_error(
        "worker_recycle:\n"
        "  requests: 1000\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:1: 'worker_recycle' is not supported yet; remove it");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - match: /metrics\n"
        "        status: {format: prometheus}\n",
        "tutti.yaml:4:9: 'status' is not supported yet; remove it");
    /* tls is supported now: its errors point into the block */
    expect_text_error(
        "servers:\n"
        "  - listen: 127.0.0.1:8443\n"
        "    tls: {cert: a.pem}\n",
        "tutti.yaml:3:10: 'tls' needs 'cert' (the certificate chain, PEM) and 'key' "
        "(its private key), such as tls: {cert: site.pem, key: site.key}");
    expect_text_error(
        "servers:\n"
        "  - listen: 127.0.0.1:8443\n"
        "    tls: {cert: a.pem, key: a.key, protocols: [TLSv1.1]}\n",
        "tutti.yaml:3:48: 'TLSv1.1' is broken and not offered; use TLSv1.2 and TLSv1.3");
}

static void test_module_keys(void **state)
{
    (void)state;
    expect_text_error(
        "modules: [static]\n"
        "keepalive: {timeout: 5s}\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:2:1: 'keepalive' needs module 'keepalive'; add it to 'modules'");
    expect_text_error(
        "modules: [static]\n"
        "python: {path: [./apps]}\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:2:1: 'python' needs module 'wsgi' or 'asgi'; add one of them "
        "to 'modules'");
    expect_text_error(
        "modules: [websocket, asgi, wsgi, asgi]\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:34: module 'asgi' is listed twice in 'modules'; list it once");
    expect_text_error(
        "modules: [static, statc]\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:19: module 'statc' not found in " TT_MODULE_DIR
        "; did you mean 'static'?");
    expect_text_error(
        "modules: [asgi, websocket]\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:11: module 'asgi' needs module 'websocket'; add 'websocket' "
        "before 'asgi' in 'modules'");
    expect_text_error(
        "modules: [Static]\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:11: 'Static' is not a module name; write the name alone, "
        "such as static (letters a-z, digits, _)");
    expect_text_error(
        "modules: static\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:10: 'modules' is a list of module names, such as "
        "modules: [static, wsgi]");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_text_error(
        "wokers: 2\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:1: unknown key 'wokers' in the top level; did you mean 'workers'?");
    /* a loaded module's main key is a known key */
    expect_text_error(
        "keepalve: {timeout: 5s}\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:1: unknown key 'keepalve' in the top level; "
        "did you mean 'keepalive'?");
    expect_text_error(
        "servers:\n"
        "  - listn: 8080\n",
        "tutti.yaml:2:5: unknown key 'listn' in a server; did you mean 'listen'?");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - match: /\n"
        "        statc: {root: .}\n",
        "tutti.yaml:4:9: unknown key 'statc' in a route; did you mean 'static'?");
    expect_text_error(
        "limits: {max_body_sise: 1MB}\n"
        "servers: [{routes: [{return: 404}]}]\n",
        "tutti.yaml:1:10: unknown key 'max_body_sise' in limits; "
        "did you mean 'max_body_size'?");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - match: {path: /, method: [GET]}\n"
        "        return: 200\n",
        "tutti.yaml:3:26: unknown key 'method' in match; did you mean 'methods'?");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - return: {status: 200, bdy: hi}\n",
        "tutti.yaml:3:31: unknown key 'bdy' in return; did you mean 'body'?");
}

static void test_servers_required(void **state)
{
    (void)state;
    expect_text_error("workers: 2\n",
        "tutti.yaml:1:1: 'servers' is missing; add at least one, such as servers: "
        "[{listen: 127.0.0.1:8080, routes: [{match: /, return: 404}]}]");
    expect_text_error("",
        "tutti.yaml:1:1: 'servers' is missing; add at least one, such as servers: "
        "[{listen: 127.0.0.1:8080, routes: [{match: /, return: 404}]}]");
    expect_text_error("servers: []\n",
        "tutti.yaml:1:10: 'servers' is a non-empty list of servers, such as servers: "
        "[{listen: 127.0.0.1:8080, routes: [{match: /, return: 404}]}]");
    expect_text_error("- a\n- b\n",
        "tutti.yaml:1:1: expected settings such as 'servers:' at the top of the file");
}

static void test_value_errors(void **state)
{
    (void)state;
    expect_text_error("workers: 0\nservers: [{}]\n",
        "tutti.yaml:1:10: 'workers: 0': expected a whole number from 1 to 1024");
    expect_text_error("log_level: verbose\nservers: [{}]\n",
        "tutti.yaml:1:12: 'log_level: verbose': expected debug, info, warn or error");
    expect_text_error("access_log_format: apache\nservers: [{}]\n",
        "tutti.yaml:1:20: 'access_log_format: apache': expected combined or json");
    expect_text_error("daemon: maybe\nservers: [{}]\n",
        "tutti.yaml:1:9: 'daemon: maybe': expected true or false");
    expect_text_error("shutdown_timeout: soon\nservers: [{}]\n",
        "tutti.yaml:1:19: 'shutdown_timeout: soon': expected a duration such as "
        "10s, 500ms, 5m");
    expect_text_error("user: no-such-user-here\nservers: [{}]\n",
        "tutti.yaml:1:7: 'user: no-such-user-here': no such user on this system");
    expect_text_error("limits: {header_timeout: 0s}\nservers: [{}]\n",
        "tutti.yaml:1:26: 'header_timeout: 0s': must be more than 0, such as 10s");
    expect_text_error(
        "servers:\n"
        "  - names: [\"example.com:80\"]\n",
        "tutti.yaml:2:13: 'names: example.com:80': expected a host name without port, "
        "such as example.com or *.example.com");
    expect_text_error(
        "servers:\n"
        "  - names: [a.example]\n"
        "  - names: [b.example, A.example]\n",
        "tutti.yaml:3:24: server name 'a.example' on 127.0.0.1:8080 is already used "
        "by the server at line 2; a name belongs to one server per address");
}

static void test_route_errors(void **state)
{
    (void)state;
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - match: static/\n"
        "        return: 200\n",
        "tutti.yaml:3:16: 'match: static/': a path starts with '/', such as /static/");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - match: {path: /, methods: [\"GE T\"]}\n"
        "        return: 200\n",
        "tutti.yaml:3:36: 'methods: GE T': expected an HTTP method such as GET");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - return: 700\n",
        "tutti.yaml:3:17: 'return: 700': expected a whole number from 100 to 599");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - return: {body: hi}\n",
        "tutti.yaml:3:17: 'return' needs a status, such as return: "
        "{status: 200, body: \"ok\\n\"}");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - return: {status: 200, headers: {\"Bad Name\": x}}\n",
        "tutti.yaml:3:41: 'Bad Name' is not a header name; write one such as "
        "Content-Type");
    expect_text_error(
        "servers:\n"
        "  - routes:\n"
        "      - return: {status: 200, headers: {Content-Length: 5}}\n",
        "tutti.yaml:3:41: 'Content-Length' is set by tutti from the body; remove it");
    expect_text_error(
        "servers:\n"
        "  - routes: {match: /}\n",
        "tutti.yaml:2:13: 'routes' is a list of routes, such as routes: "
        "[{match: /, static: {root: ./public}}]");
}

/* ---- modules from files ---- */

static void test_hello_module(void **state)
{
    (void)state;
    const char *dir = module_dir("mods-hello", "hello", NULL);
    tt_config *cf = file_ok(dir,
        "modules: [hello]\n"
        "servers:\n"
        "  - routes:\n"
        "      - match: /hello/\n"
        "        hello: {greeting: Hi}\n"
        "      - match: /echo\n"
        "        hello: {echo: true}\n"
        "      - hello:\n");
    assert_int_equal(cf->nmodules, 1);
    const tt_loaded_module *hello = tt_module_find(cf, "hello");
    assert_non_null(hello);
    assert_non_null(hello->handle);
    assert_string_equal(hello->mod->version, "0.1.0");
    const tt_server *s = &cf->servers[0];
    assert_int_equal(s->nroutes, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(s->routes[i].handler.module, hello);
        assert_non_null(s->routes[i].handler.conf);
    }
    /* the module's own struct, as hello.c lays it out */
    struct { const char *greeting; int echo; } *c = s->routes[0].handler.conf;
    assert_string_equal(c->greeting, "Hi");
    assert_int_equal(c->echo, 0);
    c = s->routes[1].handler.conf;
    assert_string_equal(c->greeting, "Hello");
    assert_int_equal(c->echo, 1);
    c = s->routes[2].handler.conf;
    assert_string_equal(c->greeting, "Hello");
    tt_config_free(cf);

    /* the module's errors read like the core's */
    expect_file_error(dir,
        "modules: [hello]\n"
        "servers:\n"
        "  - routes:\n"
        "      - hello: {greting: Hi}\n",
        "F:5:17: unknown key 'greting' in hello; did you mean 'greeting'?");
    expect_file_error(dir,
        "modules: [hello]\n"
        "servers:\n"
        "  - routes:\n"
        "      - hello: {echo: maybe}\n",
        "F:5:23: 'echo: maybe': expected true or false");
}

static void test_module_path_scan(void **state)
{
    (void)state;
    /* no `modules`: every NAME.so of the module path, in name order */
    const char *dir = module_dir("mods-scan", "needy", "hello", NULL);
    char **names;
    size_t n = tt_module_scan(dir, &names);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "hello");
    assert_string_equal(names[1], "needy");
    tt_module_free_names(names, n);

    tt_config *cf = file_ok(dir,
        "servers:\n"
        "  - routes: [{needy: {}}]\n");
    assert_int_equal(cf->nmodules, 2);
    assert_string_equal(cf->modules[0]->mod->name, "hello");
    assert_string_equal(cf->modules[1]->mod->name, "needy");
    assert_string_equal(cf->servers[0].routes[0].handler.module->mod->name, "needy");
    tt_config_free(cf);
}

static void test_module_errors(void **state)
{
    (void)state;
    const char *dir = module_dir("mods-all", "hello", "needy", "badabi", "badsig", NULL);
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s", dir);
    expect_file_error(path,
        "modules: [hello, needy, hello]\n"
        "servers: [{}]\n",
        "F:2:25: module 'hello' is listed twice in 'modules'; list it once");
    expect_file_error(path,
        "modules: [helo]\n"
        "servers: [{}]\n",
        "F:2:11: module 'helo' not found in %s; did you mean 'hello'?", path);
    expect_file_error(path,
        "modules: [needy, hello]\n"
        "servers: [{}]\n",
        "F:2:11: module 'needy' needs module 'hello'; add 'hello' before 'needy' "
        "in 'modules'");
    expect_file_error(path,
        "modules: [hello, badabi]\n"
        "servers: [{}]\n",
        "%s/badabi.so: module ABI 999, this tutti speaks ABI %d; rebuild the module",
        path, TT_MODULE_ABI);
    expect_file_error(path,
        "modules: [badsig]\n"
        "servers: [{}]\n",
        "%s/badsig.so: module built as 'bogus', this tutti is '%s'; rebuild the module",
        path, TT_MODULE_SIGNATURE);
    /* installed, used in a route, missing from an explicit list */
    expect_file_error(path,
        "modules:\n"
        "  - hello\n"
        "servers:\n"
        "  - routes: [{needy: {}}]\n",
        "F:3:3: module 'needy' is named in routes but not in 'modules'; "
        "add it to 'modules'");
    /* a scan of a directory with a broken module fails on it */
    expect_file_error(path,
        "servers: [{}]\n",
        "%s/badabi.so: module ABI 999, this tutti speaks ABI %d; rebuild the module",
        path, TT_MODULE_ABI);

    /* bundled modules that are not installed in this module path */
    const char *hello_only = module_dir("mods-hello", "hello", NULL);
    snprintf(path, sizeof(path), "%s", hello_only);
    expect_file_error(path,
        "servers:\n"
        "  - routes:\n"
        "      - static: {root: .}\n",
        "F:4:9: module 'static' is not installed in %s", path);
    expect_file_error(path,
        "keepalive: {timeout: 5s}\n"
        "servers: [{}]\n",
        "F:2:1: module 'keepalive' is not installed in %s", path);
    expect_file_error(path,
        "modules: [hello, needy]\n"
        "servers: [{}]\n",
        "F:2:18: module 'needy' not found in %s", path);
}

static void test_needs_satisfied(void **state)
{
    (void)state;
    const char *dir = module_dir("mods-needy", "hello", "needy", NULL);
    tt_config *cf = file_ok(dir,
        "modules: [hello, needy]\n"
        "servers:\n"
        "  - routes:\n"
        "      - match: /n\n"
        "        needy: {}\n"
        "      - hello: {}\n");
    assert_int_equal(cf->nmodules, 2);
    assert_int_equal(tt_module_find(cf, "needy")->index, 1);
    assert_string_equal(cf->servers[0].routes[0].handler.module->mod->name, "needy");
    tt_config_free(cf);
}

static void test_describe(void **state)
{
    (void)state;
    char out[1024], want[1024];

    assert_int_equal(tt_module_describe(HELLO_SO, out, sizeof(out)), 0);
    assert_string_equal(out, "hello 0.1.0");
    assert_int_equal(tt_module_describe(TEST_LIBS "/badabi.so", out, sizeof(out)), -1);
    snprintf(want, sizeof(want), "%s/badabi.so: module ABI 999, this tutti speaks "
             "ABI %d; rebuild the module", TEST_LIBS, TT_MODULE_ABI);
    assert_string_equal(out, want);
    assert_int_equal(tt_module_describe(TEST_LIBS "/badsig.so", out, sizeof(out)), -1);
    snprintf(want, sizeof(want), "%s/badsig.so: module built as 'bogus', this tutti "
             "is '%s'; rebuild the module", TEST_LIBS, TT_MODULE_SIGNATURE);
    assert_string_equal(out, want);
}

/* What the registry checks about descriptors, with descriptors made here */
static void test_registry_checks(void **state)
{
    (void)state;
    static const tt_module mods[] = {
        { .abi = TT_MODULE_ABI, .signature = TT_MODULE_SIGNATURE, .name = "first",
          .route_key = "shared", .route_kind = TT_MODULE_HANDLER },
        { .abi = TT_MODULE_ABI, .signature = TT_MODULE_SIGNATURE, .name = "second",
          .route_key = "shared", .route_kind = TT_MODULE_FILTER },
        { .abi = TT_MODULE_ABI, .signature = TT_MODULE_SIGNATURE, .name = "kindless",
          .route_key = "kindless" },
    };
    tt_config cf = { .module_path = "/mods" };
    tt_errbuf err = {{0}};

    cf.arena = tt_arena_create(4096);
    assert_non_null(cf.arena);
    assert_int_equal(tt_module_load_from(&cf, "first", NULL, mods, 3, &err), 0);
    assert_int_equal(tt_module_load_from(&cf, "second", NULL, mods, 3, &err), -1);
    assert_string_equal(err.msg, "/mods/second.so: module 'second' handles the route "
                        "key 'shared', which module 'first' already handles; load only "
                        "one of them");
    assert_int_equal(tt_module_load_from(&cf, "kindless", NULL, mods, 3, &err), -1);
    assert_string_equal(err.msg, "/mods/kindless.so: module 'kindless' has a route key "
                        "but its route_kind is neither TT_MODULE_HANDLER nor "
                        "TT_MODULE_FILTER; fix the module");
    assert_int_equal(cf.nmodules, 1);
    assert_int_equal(cf.modules[0]->index, 0);
    assert_null(cf.modules[0]->handle);
    tt_arena_destroy(cf.arena);
}

static void test_relative_paths(void **state)
{
    (void)state;
    /* relative paths resolve against the config file's directory, not the
     * current one */
    const char *dir = module_dir("mods-hello", "hello", NULL);
    char file[PATH_MAX], want[PATH_MAX + 32];
    tt_errbuf err = {{0}};
    (void)dir;
    snprintf(file, sizeof(file), "%s/rel.yaml", tmpdir);
    write_file(file,
        "module_path: mods-hello\n"
        "pid_file: tutti.pid\n"
        "access_log: logs/access.log\n"
        "servers: [{routes: [{hello: {}}]}]\n");
    tt_config *cf = tt_config_load(file, &err);
    if (cf == NULL)
        fail_msg("%s", err.msg);
    snprintf(want, sizeof(want), "%s/mods-hello", tmpdir);
    assert_string_equal(cf->module_path, want);
    snprintf(want, sizeof(want), "%s/tutti.pid", tmpdir);
    assert_string_equal(cf->pid_file, want);
    snprintf(want, sizeof(want), "%s/logs/access.log", tmpdir);
    assert_string_equal(cf->access_log, want);
    assert_string_equal(cf->dir, tmpdir);
    tt_config_free(cf);
}

static void test_missing_file(void **state)
{
    (void)state;
    tt_errbuf err = {{0}};
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/none.yaml", tmpdir);
    assert_null(tt_config_load(file, &err));
    assert_non_null(strstr(err.msg, file));
}

/* ---- setup ---- */

static int remove_tree(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/tt-test-config-XXXXXX";
    char real[PATH_MAX];
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, real) == NULL ||
        strlen(real) >= sizeof(tmpdir))
        return -1;
    strcpy(tmpdir, real);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return remove_tree(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_workers_auto),
        cmocka_unit_test(test_filters_in_module_order),
        cmocka_unit_test(test_env_and_empty_keys),
        cmocka_unit_test(test_two_handlers),
        cmocka_unit_test(test_named_in_routes),
        cmocka_unit_test(test_bad_size),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_no_handler),
        cmocka_unit_test(test_not_supported_yet),
        cmocka_unit_test(test_module_keys),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_servers_required),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_hello_module),
        cmocka_unit_test(test_module_path_scan),
        cmocka_unit_test(test_module_errors),
        cmocka_unit_test(test_needs_satisfied),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_registry_checks),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
