/* Routing: the server chosen for a Host, the route chosen for a path and a
 * method, and the 404 / 405 (with its Allow list) when none fits. The config
 * structs are built by hand, as the config loader would fill them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "http/http.h"

/* a route for any method, and one for the methods of an array */
#define ANY(p)       { .prefix = (p), .prefix_len = sizeof(p) - 1 }
#define ROUTE(p, m)  { .prefix = (p), .prefix_len = sizeof(p) - 1, .methods = (m), \
                       .nmethods = sizeof(m) / sizeof((m)[0]) }

static int prefix(const char *pre, const char *path)
{
    return tt_route_prefix_match(pre, strlen(pre), path, strlen(path));
}

static void test_prefix_boundaries(void **state)
{
    (void)state;
    assert_true(prefix("/api", "/api"));
    assert_true(prefix("/api", "/api/"));
    assert_true(prefix("/api", "/api/x"));
    assert_false(prefix("/api", "/apix"));
    assert_false(prefix("/api", "/ap"));
    assert_false(prefix("/api", "/"));

    assert_true(prefix("/api/", "/api/"));
    assert_true(prefix("/api/", "/api/x/y"));
    assert_false(prefix("/api/", "/api"));          /* the prefix is longer */
    assert_false(prefix("/api/", "/apix/"));

    assert_true(prefix("/", "/"));
    assert_true(prefix("/", "/anything/at/all"));

    /* exact file-like prefixes end at a segment too */
    assert_true(prefix("/healthz", "/healthz"));
    assert_false(prefix("/healthz", "/healthzz"));
    assert_true(prefix("/healthz", "/healthz/deep"));

    /* paths are case-sensitive, like nginx on Linux */
    assert_false(prefix("/API", "/api"));
}

static const char *get_post[] = { "GET", "POST" };
static const char *put_only[] = { "PUT" };
static const char *post_only[] = { "POST" };
static const char *delete_get[] = { "DELETE", "GET" };

static void test_first_match_wins(void **state)
{
    (void)state;
    tt_route routes[] = {
        ANY("/static/"),
        ROUTE("/api/", get_post),
        ANY("/"),
    };
    tt_server s = { .routes = routes, .nroutes = 3 };
    char allow[64];
    int status = -1;

    const tt_route *r = tt_route_find(&s, "/static/a.css", 13, "GET", &status, allow, sizeof(allow));
    assert_ptr_equal(r, &routes[0]);
    assert_int_equal(status, 0);

    r = tt_route_find(&s, "/api/users", 10, "POST", &status, allow, sizeof(allow));
    assert_ptr_equal(r, &routes[1]);

    /* the API refuses DELETE, but "/" takes everything: first match in order
     * that accepts the method wins */
    r = tt_route_find(&s, "/api/users", 10, "DELETE", &status, allow, sizeof(allow));
    assert_ptr_equal(r, &routes[2]);

    r = tt_route_find(&s, "/staticx", 8, "GET", &status, allow, sizeof(allow));
    assert_ptr_equal(r, &routes[2]);
}

static void test_not_found(void **state)
{
    (void)state;
    tt_route routes[] = { ANY("/static/"), ROUTE("/api", get_post) };
    tt_server s = { .routes = routes, .nroutes = 2 };
    char allow[64] = "junk";
    int status = -1;

    assert_null(tt_route_find(&s, "/other", 6, "GET", &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);
    assert_string_equal(allow, "");

    assert_null(tt_route_find(&s, "/apix", 5, "GET", &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);

    tt_server empty = { .routes = NULL, .nroutes = 0 };
    assert_null(tt_route_find(&empty, "/", 1, "GET", &status, allow, sizeof(allow)));
    assert_int_equal(status, 404);
}

static void test_methods_and_head(void **state)
{
    (void)state;
    tt_route routes[] = { ROUTE("/api", get_post), ROUTE("/up", put_only) };
    tt_server s = { .routes = routes, .nroutes = 2 };
    char allow[64];
    int status = -1;

    assert_ptr_equal(tt_route_find(&s, "/api", 4, "GET", &status, allow, sizeof(allow)), &routes[0]);
    /* HEAD goes wherever GET does */
    assert_ptr_equal(tt_route_find(&s, "/api/x", 6, "HEAD", &status, allow, sizeof(allow)), &routes[0]);
    assert_int_equal(status, 0);
    /* but not where GET is not allowed */
    assert_null(tt_route_find(&s, "/up", 3, "HEAD", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "PUT");
    /* method names are case-sensitive */
    assert_null(tt_route_find(&s, "/api", 4, "get", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
}

static void test_405_allow_union(void **state)
{
    (void)state;
    tt_route routes[] = {
        ROUTE("/api/", get_post),
        ROUTE("/api/admin/", delete_get),
        ROUTE("/api/admin/", post_only),
        ROUTE("/other/", put_only),     /* does not match the path: not in Allow */
    };
    tt_server s = { .routes = routes, .nroutes = 4 };
    char allow[128];
    int status = -1;

    assert_null(tt_route_find(&s, "/api/admin/x", 12, "PATCH", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    /* each method once, in route order, HEAD beside GET */
    assert_string_equal(allow, "GET, HEAD, POST, DELETE");

    assert_null(tt_route_find(&s, "/api/x", 6, "PUT", &status, allow, sizeof(allow)));
    assert_int_equal(status, 405);
    assert_string_equal(allow, "GET, HEAD, POST");

    /* too small a buffer holds whole methods only */
    char small[12];
    assert_null(tt_route_find(&s, "/api/x", 6, "PUT", &status, small, sizeof(small)));
    assert_int_equal(status, 405);
    assert_string_equal(small, "GET, HEAD");

    /* no buffer at all is fine */
    assert_null(tt_route_find(&s, "/api/x", 6, "PUT", &status, NULL, 0));
    assert_int_equal(status, 405);
}

/* ---- servers by Host ---- */

static const char *names_a[] = { "example.com", "www.example.com" };
static const char *names_b[] = { "*.example.com" };
static const char *names_c[] = { "api.example.com", "other.org" };
static const char *names_d[] = { "*.eu.example.com" };

static void test_server_by_host(void **state)
{
    (void)state;
    tt_server a = { .names = names_a, .nnames = 2 };
    tt_server b = { .names = names_b, .nnames = 1 };
    tt_server c = { .names = names_c, .nnames = 2 };
    tt_server d = { .names = names_d, .nnames = 1 };
    tt_server *servers[] = { &a, &b, &c, &d };
    tt_listen l = { .servers = servers, .nservers = 4 };

#define HOST(h) tt_route_server(&l, (h), strlen(h))
    assert_ptr_equal(HOST("example.com"), &a);
    assert_ptr_equal(HOST("www.example.com"), &a);
    assert_ptr_equal(HOST("other.org"), &c);
    /* an exact name beats a wildcard listed before it */
    assert_ptr_equal(HOST("api.example.com"), &c);
    /* wildcards: one label or more, never the bare domain */
    assert_ptr_equal(HOST("a.example.com"), &b);
    assert_ptr_equal(HOST("a.b.example.com"), &b);
    assert_ptr_equal(HOST("example.com"), &a);
    /* the longest wildcard wins, as in nginx */
    assert_ptr_equal(HOST("x.eu.example.com"), &d);
    assert_ptr_equal(HOST("eu.example.com"), &b);
    /* not a suffix at a dot */
    assert_ptr_equal(HOST("badexample.com"), &a);
    /* case-insensitive */
    assert_ptr_equal(HOST("OTHER.org"), &c);
    assert_ptr_equal(HOST("A.Example.COM"), &b);
    /* anything else, or no Host, gets the default (first) server */
    assert_ptr_equal(HOST("unknown.net"), &a);
    assert_ptr_equal(HOST(""), &a);
    assert_ptr_equal(tt_route_server(&l, NULL, 0), &a);
    /* a prefix of a name is not the name */
    assert_ptr_equal(HOST("other.or"), &a);
    assert_ptr_equal(HOST("other.orgx"), &a);
#undef HOST
}

static void test_default_server(void **state)
{
    (void)state;
    tt_server only = { .names = NULL, .nnames = 0 };
    tt_server named = { .names = names_c, .nnames = 2 };
    tt_server *servers[] = { &only, &named };
    tt_listen l = { .servers = servers, .nservers = 2 };

    assert_ptr_equal(tt_route_server(&l, "x.org", 5), &only);
    assert_ptr_equal(tt_route_server(&l, "other.org", 9), &named);

    tt_listen none = { .servers = NULL, .nservers = 0 };
    assert_null(tt_route_server(&none, "x.org", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_boundaries),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_methods_and_head),
        cmocka_unit_test(test_405_allow_union),
        cmocka_unit_test(test_server_by_host),
        cmocka_unit_test(test_default_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
