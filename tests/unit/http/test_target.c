/* tt_target_parse: what path, query and authority a request-target becomes,
 * and every kind of target that must be refused with 400. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http/http.h"

/* Parse a copy of target that has no NUL after it, into a path buffer of
 * exactly the documented size (len + 2), so ASan sees any read or write
 * past either one. */
typedef struct {
    int       rc;
    tt_target t;
    char     *in;
    char     *pathbuf;
} parsed;

static parsed parse_n(const char *target, size_t len, int allow_asterisk)
{
    parsed r;

    r.in = malloc(len ? len : 1);
    r.pathbuf = malloc(len + 2);
    assert_non_null(r.in);
    assert_non_null(r.pathbuf);
    memcpy(r.in, target, len);
    r.rc = tt_target_parse(r.in, len, allow_asterisk, &r.t, r.pathbuf);
    return r;
}

static parsed parse(const char *target)
{
    return parse_n(target, strlen(target), 0);
}

static void done(parsed *r)
{
    free(r->in);
    free(r->pathbuf);
}

static void expect_path(const char *target, const char *path)
{
    parsed r = parse(target);

    if (r.rc != 0)
        fail_msg("%s: got %d, expected path %s", target, r.rc, path);
    assert_string_equal(r.t.path, path);            /* NUL-terminated */
    assert_int_equal(r.t.path_len, strlen(path));
    assert_ptr_equal(r.t.path, r.pathbuf);
    done(&r);
}

static void expect_400(const char *target)
{
    parsed r = parse(target);

    if (r.rc != 400)
        fail_msg("%s: got %d, expected 400", target, r.rc);
    done(&r);
}

static void test_plain_paths(void **state)
{
    (void)state;
    expect_path("/", "/");
    expect_path("/index.html", "/index.html");
    expect_path("/a/b/c", "/a/b/c");
    expect_path("/a/b/", "/a/b/");
    expect_path("/caf\xc3\xa9", "/caf\xc3\xa9");    /* raw UTF-8 passes */
    expect_path("/a;b=c,d", "/a;b=c,d");
    expect_path("/~user/", "/~user/");
}

static void test_percent_decoding(void **state)
{
    (void)state;
    expect_path("/%41%62%63", "/Abc");
    expect_path("/%4a%4A", "/JJ");                  /* hex digits in either case */
    expect_path("/a%20b", "/a b");
    expect_path("/%e2%82%AC", "/\xe2\x82\xac");
    expect_path("/100%25", "/100%");
    expect_path("/%3F%23", "/?#");                  /* encoded, they are just bytes */
    /* decoded once only: %2541 is "%41", not "A" */
    expect_path("/%2541", "/%41");
}

static void test_dot_segments(void **state)
{
    (void)state;
    expect_path("/a/./b/../c", "/a/c");
    expect_path("/a/b/c/./../../g", "/a/g");
    expect_path("/a/b/..", "/a/");
    expect_path("/a/b/.", "/a/b/");
    expect_path("/a/..", "/");
    expect_path("/.", "/");
    expect_path("/./", "/");
    expect_path("/a/../b/../c/", "/c/");
    /* names that merely contain dots are names */
    expect_path("/...", "/...");
    expect_path("/.a/..b/a../a.b", "/.a/..b/a../a.b");
    expect_path("/.well-known/x", "/.well-known/x");
}

static void test_encoded_dots(void **state)
{
    (void)state;
    expect_path("/a/%2e%2E/b", "/b");
    expect_path("/a/%2E/b", "/a/b");
    expect_path("/a/b/.%2e", "/a/");
    expect_path("/a/b/%2e.", "/a/");
    expect_path("/a/%2e%2e%2e", "/a/...");
}

static void test_merged_slashes(void **state)
{
    (void)state;
    expect_path("//", "/");
    expect_path("/a//b///c", "/a/b/c");
    expect_path("//admin/", "/admin/");
    expect_path("/a/.//../b", "/b");
    expect_path("/a//..", "/");
}

static void test_query(void **state)
{
    (void)state;
    parsed r = parse("/a/../b?x=%2F&y=../z?w");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.t.path, "/b");
    /* raw and undecoded; dots in the query are not path segments */
    assert_int_equal(r.t.query_len, strlen("x=%2F&y=../z?w"));
    assert_memory_equal(r.t.query, "x=%2F&y=../z?w", r.t.query_len);
    assert_int_equal(r.t.raw_path_len, strlen("/a/../b"));
    assert_memory_equal(r.t.raw_path, "/a/../b", r.t.raw_path_len);
    assert_ptr_equal(r.t.raw_path, r.in);           /* points into the target */
    assert_ptr_equal(r.t.query, r.in + 8);
    assert_null(r.t.authority);
    done(&r);

    r = parse("/p?");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.t.path, "/p");
    assert_int_equal(r.t.query_len, 0);
    done(&r);

    r = parse("/p");
    assert_int_equal(r.rc, 0);
    assert_non_null(r.t.query);
    assert_int_equal(r.t.query_len, 0);
    done(&r);

    /* %-escapes in the query are not checked: the application decodes it */
    r = parse("/p?a=%zz&b=%00");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.t.query_len, strlen("a=%zz&b=%00"));
    done(&r);
}

static void test_absolute_form(void **state)
{
    (void)state;
    parsed r = parse("http://Example.com:8080/p/../q?z=1");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.t.authority_len, strlen("Example.com:8080"));
    assert_memory_equal(r.t.authority, "Example.com:8080", r.t.authority_len);
    assert_string_equal(r.t.path, "/q");
    assert_int_equal(r.t.raw_path_len, strlen("/p/../q"));
    assert_memory_equal(r.t.raw_path, "/p/../q", r.t.raw_path_len);
    assert_int_equal(r.t.query_len, 3);
    assert_memory_equal(r.t.query, "z=1", 3);
    done(&r);

    r = parse("https://h");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.t.authority_len, 1);
    assert_memory_equal(r.t.authority, "h", 1);
    assert_string_equal(r.t.path, "/");
    assert_int_equal(r.t.raw_path_len, 1);
    assert_memory_equal(r.t.raw_path, "/", 1);
    assert_int_equal(r.t.query_len, 0);
    done(&r);

    r = parse("HTTP://h?q");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.t.path, "/");
    assert_int_equal(r.t.query_len, 1);
    assert_memory_equal(r.t.query, "q", 1);
    done(&r);

    r = parse("http://[::1]:80//x/./y");
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.t.authority_len, strlen("[::1]:80"));
    assert_memory_equal(r.t.authority, "[::1]:80", r.t.authority_len);
    assert_string_equal(r.t.path, "/x/y");
    done(&r);

    expect_400("http:///x");            /* no host */
    expect_400("http://");
    expect_400("http://user@h/");       /* userinfo: RFC 9110 4.2.4 */
    expect_400("http://h\"x/");
    expect_400("ftp://h/");
    expect_400("http:/h/");
    expect_400("http://h/../x");        /* climbs above root */
}

static void test_asterisk(void **state)
{
    (void)state;
    parsed r = parse_n("*", 1, 1);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.t.path, "*");
    assert_int_equal(r.t.path_len, 1);
    done(&r);

    r = parse_n("*", 1, 0);             /* only OPTIONS may ask for "*" */
    assert_int_equal(r.rc, 400);
    done(&r);

    r = parse_n("*x", 2, 1);
    assert_int_equal(r.rc, 400);
    done(&r);
}

static void test_other_forms(void **state)
{
    (void)state;
    expect_400("");
    expect_400("a/b");
    expect_400("example.com:443");      /* authority-form (CONNECT) */
    expect_400("?q");
    expect_400("../x");
}

static void test_bad_escapes(void **state)
{
    (void)state;
    expect_400("/%G1");
    expect_400("/%1G");
    expect_400("/%zz");
    expect_400("/%4");
    expect_400("/%");
    expect_400("/a%");
    expect_400("/%4?x");                /* the escape may not run into the query */
    expect_400("/%%41");
    expect_400("/% 1");
}

static void test_encoded_nul_and_slash(void **state)
{
    (void)state;
    expect_400("/%00");
    expect_400("/a%00.html");
    expect_400("/a%2Fb");
    expect_400("/a%2fb");
    expect_400("/%2e%2e%2fetc/passwd");
}

static void test_raw_bytes(void **state)
{
    (void)state;
    expect_400("/a b");
    expect_400("/a\tb");
    expect_400("/a\rb");
    expect_400("/a\nb");
    expect_400("/a\x01");
    expect_400("/a\x1f");
    expect_400("/a\x7f");
    expect_400("/a#frag");
    expect_400("/a?q#frag");            /* the query is checked too */
    expect_400("/a?q x");
    expect_400("/a?q\x7f");

    /* a raw NUL inside the given length is refused, not a string end */
    parsed r = parse_n("/a\0b", 4, 0);
    assert_int_equal(r.rc, 400);
    done(&r);
    r = parse_n("/a?\0", 4, 0);
    assert_int_equal(r.rc, 400);
    done(&r);
}

static void test_above_root(void **state)
{
    (void)state;
    expect_400("/..");
    expect_400("/../etc/passwd");
    expect_400("/%2e%2e/etc/passwd");
    expect_400("/.%2E/x");
    expect_400("/a/../../b");
    expect_400("/a/b/../../..");
    expect_400("//../x");
    expect_400("/./..");
}

/* Long and deep targets: output stays inside len + 2 bytes (ASan watches). */
static void test_long_targets(void **state)
{
    (void)state;
    size_t depth = 2000;
    char *s = malloc(depth * 5 + 8), *p = s;
    assert_non_null(s);

    *p++ = '/';
    for (size_t i = 0; i < depth; i++) {
        memcpy(p, "a/", 2);
        p += 2;
    }
    for (size_t i = 0; i < depth; i++) {
        memcpy(p, "../", 3);
        p += 3;
    }
    parsed r = parse_n(s, (size_t)(p - s), 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.t.path, "/");
    done(&r);

    memcpy(p, "../", 3);                /* one more: above the root */
    r = parse_n(s, (size_t)(p - s) + 3, 0);
    assert_int_equal(r.rc, 400);
    done(&r);

    memset(s, '/', depth);
    r = parse_n(s, depth, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.t.path, "/");
    done(&r);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_paths),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_dot_segments),
        cmocka_unit_test(test_encoded_dots),
        cmocka_unit_test(test_merged_slashes),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_asterisk),
        cmocka_unit_test(test_other_forms),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_encoded_nul_and_slash),
        cmocka_unit_test(test_raw_bytes),
        cmocka_unit_test(test_above_root),
        cmocka_unit_test(test_long_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
