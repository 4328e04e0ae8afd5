/* Request parser: strict framing, limits, pipelining, pausing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "http/http.h"

typedef struct {
    int  heads, dones;
    int  pause_after_head;
    char method[16], url[256], host[64];
    char body[8192];
    size_t body_len;
    int  version, chunked, expect;
    int64_t content_length;
} rec;

static int on_head(void *ctx, tt_http_head *h)
{
    rec *r = ctx;
    r->heads++;
    snprintf(r->method, sizeof(r->method), "%.*s", (int)h->method_len, h->buf + h->method_off);
    snprintf(r->url, sizeof(r->url), "%.*s", (int)h->url_len, h->buf + h->url_off);
    snprintf(r->host, sizeof(r->host), "%.*s", (int)h->host_len, h->buf + h->host_off);
    r->version = h->version;
    r->chunked = h->chunked;
    r->content_length = h->content_length;
    r->expect = h->expect_continue;
    return r->pause_after_head ? TT_PARSE_PAUSE : 0;
}

static void on_body(void *ctx, const char *p, size_t n)
{
    rec *r = ctx;
    assert_true(r->body_len + n <= sizeof(r->body));
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
}

static void on_done(void *ctx)
{
    ((rec *)ctx)->dones++;
}

static const tt_parser_cbs cbs = { on_head, on_body, on_done };

/* Feed all of s; returns the error status (0 if none) and consumed bytes. */
static int feed_all(tt_parser *p, const char *s, size_t len, size_t *used_out)
{
    int status = 0;
    size_t used = tt_parser_feed(p, s, len, &status);
    if (used_out)
        *used_out = used;
    return status;
}

static int status_of(const char *req)
{
    rec r = { 0 };
    tt_parser p;
    tt_parser_init(&p, &cbs, &r, 16384);
    int st = feed_all(&p, req, strlen(req), NULL);
    tt_parser_free(&p);
    return st;
}

static void test_simple_get(void **state)
{
    rec r = { 0 };
    tt_parser p;
    const char *req = "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t\r\n\r\n";
    tt_parser_init(&p, &cbs, &r, 16384);
    size_t used;
    assert_int_equal(feed_all(&p, req, strlen(req), &used), 0);
    assert_int_equal(used, strlen(req));
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.dones, 1);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.url, "/a/b?x=1");
    assert_string_equal(r.host, "Example.com:8080");
    assert_int_equal(r.version, 11);
    assert_int_equal(r.content_length, -1);
    size_t n;
    const char *ua = tt_head_get(&p.head, "user-agent", &n);
    assert_non_null(ua);
    assert_int_equal(n, 1);
    tt_parser_free(&p);
}

static void test_byte_by_byte(void **state)
{
    rec r = { 0 };
    tt_parser p;
    const char *req = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    tt_parser_init(&p, &cbs, &r, 16384);
    for (size_t i = 0; i < strlen(req); i++) {
        size_t used;
        assert_int_equal(feed_all(&p, req + i, 1, &used), 0);
        assert_int_equal(used, 1);
    }
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.chunked, 1);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(r.body, "hello world", 11);
    tt_parser_free(&p);
}

static void test_pipelined_stops_after_each(void **state)
{
    rec r = { 0 };
    tt_parser p;
    const char *one = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
    char req[256];
    snprintf(req, sizeof(req), "%sGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", one);
    tt_parser_init(&p, &cbs, &r, 16384);
    size_t used;
    assert_int_equal(feed_all(&p, req, strlen(req), &used), 0);
    assert_int_equal(used, strlen(one));
    assert_int_equal(r.dones, 1);
    assert_string_equal(r.url, "/1");
    /* nothing more until the first one is answered */
    assert_int_equal(feed_all(&p, req + used, strlen(req) - used, NULL), 0);
    assert_int_equal(r.heads, 1);
    tt_parser_next(&p);
    size_t used2;
    assert_int_equal(feed_all(&p, req + used, strlen(req) - used, &used2), 0);
    assert_int_equal(used2, strlen(req) - used);
    assert_int_equal(r.heads, 2);
    assert_string_equal(r.url, "/2");
    tt_parser_free(&p);
}

static void test_pause_after_head(void **state)
{
    rec r = { .pause_after_head = 1 };
    tt_parser p;
    const char *head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
    char req[256];
    snprintf(req, sizeof(req), "%sabcd", head);
    tt_parser_init(&p, &cbs, &r, 16384);
    size_t used;
    assert_int_equal(feed_all(&p, req, strlen(req), &used), 0);
    assert_int_equal(used, strlen(head));
    assert_int_equal(r.body_len, 0);
    assert_int_equal(r.expect, 1);
    assert_int_equal(r.content_length, 4);
    tt_parser_resume(&p);
    assert_int_equal(feed_all(&p, req + used, 4, &used), 0);
    assert_int_equal(used, 4);
    assert_int_equal(r.body_len, 4);
    assert_int_equal(r.dones, 1);
    tt_parser_free(&p);
}

static void test_smuggling_and_framing_errors(void **state)
{
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                               "Content-Length: 6\r\n\r\nhello!"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "zz\r\nhello\r\n0\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\r\n\r\n"), 400);            /* no Host */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.1\nHost: h\r\n\r\n"), 400);     /* bare LF, request line */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\n\n"), 400);     /* bare LF, end of head */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"), 400);
}

/* obs-fold must be refused however the bytes are split across reads */
static void test_obs_fold_split(void **state)
{
    const char *req = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n";
    rec r = { 0 };
    tt_parser p;
    tt_parser_init(&p, &cbs, &r, 16384);
    int st = 0;
    for (size_t i = 0; i < strlen(req) && st == 0; i++)
        st = feed_all(&p, req + i, 1, NULL);
    assert_int_equal(st, 400);
    tt_parser_free(&p);

    /* and a value split by a read boundary is still one value */
    const char *ok = "GET / HTTP/1.1\r\nHost: h\r\nX-A: abcdef\r\n\r\n";
    memset(&r, 0, sizeof(r));
    tt_parser_init(&p, &cbs, &r, 16384);
    size_t cut = strlen("GET / HTTP/1.1\r\nHost: h\r\nX-A: abc");
    assert_int_equal(feed_all(&p, ok, cut, NULL), 0);
    assert_int_equal(feed_all(&p, ok + cut, strlen(ok) - cut, NULL), 0);
    size_t n;
    const char *v = tt_head_get(&p.head, "X-A", &n);
    assert_non_null(v);
    assert_int_equal(n, 6);
    assert_memory_equal(v, "abcdef", 6);
    tt_parser_free(&p);
}

/* an Upgrade nobody takes over leaves the connection speaking HTTP */
static void test_upgrade_not_taken(void **state)
{
    rec r = { 0 };
    tt_parser p;
    const char *one = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    const char *two = "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    tt_parser_init(&p, &cbs, &r, 16384);
    size_t used;
    assert_int_equal(feed_all(&p, one, strlen(one), &used), 0);
    assert_int_equal(used, strlen(one));
    assert_int_equal(r.dones, 1);
    tt_parser_next(&p);
    assert_int_equal(feed_all(&p, two, strlen(two), &used), 0);
    assert_int_equal(used, strlen(two));
    assert_int_equal(r.heads, 2);
    assert_string_equal(r.url, "/2");
    tt_parser_free(&p);
}

static void test_status_mapping(void **state)
{
    assert_int_equal(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n"), 417);
    assert_int_equal(status_of("get / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/1.0\r\n\r\n"), 0);              /* 1.0 needs no Host */
}

static void test_limits(void **state)
{
    char big[4096];
    rec r = { 0 };
    tt_parser p;

    /* the request line alone over the limit: 414 */
    tt_parser_init(&p, &cbs, &r, 1024);
    snprintf(big, sizeof(big), "GET /%02000d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    assert_int_equal(feed_all(&p, big, strlen(big), NULL), 414);
    tt_parser_free(&p);

    /* headers over the limit: 431 */
    memset(&r, 0, sizeof(r));
    tt_parser_init(&p, &cbs, &r, 1024);
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %02000d\r\n\r\n", 0);
    assert_int_equal(feed_all(&p, big, strlen(big), NULL), 431);
    tt_parser_free(&p);
}

static void test_eof(void **state)
{
    rec r = { 0 };
    tt_parser p;
    tt_parser_init(&p, &cbs, &r, 16384);
    assert_int_equal(tt_parser_eof(&p), 0);
    feed_all(&p, "GET / HT", 8, NULL);
    assert_int_equal(tt_parser_eof(&p), 400);
    tt_parser_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_pipelined_stops_after_each),
        cmocka_unit_test(test_pause_after_head),
        cmocka_unit_test(test_smuggling_and_framing_errors),
        cmocka_unit_test(test_obs_fold_split),
        cmocka_unit_test(test_upgrade_not_taken),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_eof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
