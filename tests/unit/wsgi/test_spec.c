/* The wsgi module's text rules: which `app:` values are accepted, how
 * header names become environ keys, and which WSGI statuses parse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "spec.h"

static void test_app_specs_accepted(void **state)
{
    const char *good[] = {
        "app:application", "mysite.wsgi:application", "pkg.sub.mod:obj.attr",
        "m:make_app()", "_private:_app", "m2:app3", "a.b:c.d()",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(wsgi_app_spec_ok(good[i]));
}

static void test_app_specs_refused(void **state)
{
    const char *bad[] = {
        "", "app", ":app", "app:", "app application", "app:app:app", "1app:app",
        "app:1x", ".app:x", "app.:x", "app:x.", "app:.x", "a..b:x", "app:x(", "app:()",
        "app:x()()", "app/x:y", "app:x-y", "app:x ()",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (wsgi_app_spec_ok(bad[i]))
            fail_msg("'%s' was accepted", bad[i]);
    }
}

static void check_name(const char *name, const char *want)
{
    char out[64];
    size_t n = wsgi_cgi_name(name, strlen(name), out, sizeof(out));
    if (want == NULL) {
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
}

static void test_header_names(void **state)
{
    check_name("Host", "HTTP_HOST");
    check_name("x-forwarded-for", "HTTP_X_FORWARDED_FOR");
    check_name("X-Custom-9", "HTTP_X_CUSTOM_9");
    check_name("X_Forwarded_For", NULL);        /* could pose as X-Forwarded-For */
    check_name("", NULL);
    /* too long for the buffer: refused, not cut */
    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    check_name(longname, NULL);
}

static void test_status_codes(void **state)
{
    assert_int_equal(wsgi_status_code("200 OK", 6), 200);
    assert_int_equal(wsgi_status_code("299 Quite Fine", 14), 299);
    assert_int_equal(wsgi_status_code("404", 3), 404);
    assert_int_equal(wsgi_status_code("599 ", 4), 599);
    assert_int_equal(wsgi_status_code("OK", 2), -1);
    assert_int_equal(wsgi_status_code("20 OK", 5), -1);
    assert_int_equal(wsgi_status_code("2000 OK", 7), -1);
    assert_int_equal(wsgi_status_code("099 x", 5), -1);
    assert_int_equal(wsgi_status_code("2x0 OK", 6), -1);
    /* only len bytes are read: "200" followed by garbage beyond len */
    assert_int_equal(wsgi_status_code("200junk", 3), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_specs_accepted),
        cmocka_unit_test(test_app_specs_refused),
        cmocka_unit_test(test_header_names),
        cmocka_unit_test(test_status_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
