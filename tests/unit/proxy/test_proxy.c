/* The proxy's pure parts: the upstream's response head, chunked bodies,
 * and the balancers (order, weights, failures). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "proxy.h"

/* balance.c logs when it leaves a peer out */
static void stub_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

static tt_api stub_api = { .log = stub_log };
const tt_api *px_api = &stub_api;

/* ---- response heads ---- */

static long parse(const char *s, px_head *h)
{
    const char *why;
    return px_parse_head(s, strlen(s), h, &why);
}

static void test_head_simple(void **state)
{
    (void)state;
    px_head h;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b \r\n\r\nhello";
    assert_int_equal(parse(s, &h), (long)(strlen(s) - 5));
    assert_int_equal(h.status, 200);
    assert_int_equal(h.version, 11);
    assert_int_equal(h.content_length, 5);
    assert_int_equal(h.nheaders, 2);
    assert_int_equal(h.headers[1].value_len, 1);    /* trailing space trimmed */
    assert_memory_equal(h.reason, "OK", 2);
    assert_false(h.close);
}

static void test_head_incomplete(void **state)
{
    (void)state;
    px_head h;
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Le", &h), PX_HEAD_MORE);
    assert_int_equal(parse("HTTP/1.", &h), PX_HEAD_MORE);
    assert_int_equal(parse("", &h), PX_HEAD_MORE);
}

static void test_head_framing(void **state)
{
    (void)state;
    px_head h;
    assert_true(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h) > 0);
    assert_true(h.chunked);
    assert_int_equal(h.content_length, -1);
    /* TE and CL: TE wins and the connection is not reused */
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                      &h) > 0);
    assert_true(h.chunked);
    assert_true(h.close);
    assert_true(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &h) > 0);
    assert_true(h.other_coding);
    /* HTTP/1.0 closes unless it says keep-alive */
    assert_true(parse("HTTP/1.0 200 OK\r\n\r\n", &h) > 0);
    assert_true(h.close);
    assert_true(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", &h) > 0);
    assert_false(h.close);
    assert_true(parse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                      "Upgrade: websocket\r\n\r\n", &h) > 0);
    assert_true(h.upgrade);
    /* the same length twice is fine, two different ones are not */
    assert_true(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &h) > 0);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                           &h), PX_HEAD_BAD);
}

static void test_head_bad(void **state)
{
    (void)state;
    px_head h;
    assert_int_equal(parse("SSH-2.0-OpenSSH\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("garbage that is long enough", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 2000 OK\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 OK\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/2.0 200 OK\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\n folded\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX A: b\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", &h), PX_HEAD_BAD);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n", &h), PX_HEAD_BAD);
}

static void test_head_reason(void **state)
{
    (void)state;
    px_head h;
    assert_true(parse("HTTP/1.1 299 Quite Fine\r\n\r\n", &h) > 0);
    assert_int_equal(h.reason_len, 10);
    assert_true(parse("HTTP/1.1 204\r\n\r\n", &h) > 0);     /* no reason at all */
    assert_int_equal(h.reason_len, 0);
    assert_true(parse("HTTP/1.1 200 OK\n\n", &h) > 0);      /* bare LF */
}

/* ---- chunked ---- */

/* Decode all of s, fed in pieces of `step` bytes; the body into out. */
static int decode(const char *s, size_t step, char *out, size_t *outlen)
{
    px_chunked st = { 0 };
    size_t len = strlen(s), pos = 0, o = 0, avail = 0;

    while (pos < len) {
        avail = avail + step > len - pos ? len - pos : avail + step;
        size_t used;
        const char *data;
        size_t dlen;
        int rc = px_chunked_next(&st, s + pos, avail, &used, &data, &dlen);
        if (rc == PX_CHUNK_BAD)
            return -1;
        if (dlen > 0) {
            memcpy(out + o, data, dlen);
            o += dlen;
        }
        pos += used;
        avail -= used;
        if (rc == PX_CHUNK_DONE) {
            *outlen = o;
            return (int)(len - pos);        /* bytes after the body */
        }
    }
    return -2;                              /* never done */
}

static void test_chunked(void **state)
{
    (void)state;
    const char *s = "5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\n\r\n";
    char out[64];
    size_t outlen;
    for (size_t step = 1; step < 8; step++) {
        assert_int_equal(decode(s, step, out, &outlen), 0);
        assert_int_equal(outlen, 22);
        assert_memory_equal(out, "hello, world0123456789", 22);
    }
    /* trailers are consumed, not passed */
    assert_int_equal(decode("3\r\nabc\r\n0\r\nX-T: 1\r\n\r\nNEXT", 3, out, &outlen), 4);
    assert_int_equal(outlen, 3);
    /* bare LFs */
    assert_int_equal(decode("3\nabc\n0\n\n", 2, out, &outlen), 0);
    assert_int_equal(outlen, 3);
}

static void test_chunked_bad(void **state)
{
    (void)state;
    char out[64];
    size_t outlen;
    assert_int_equal(decode("x\r\n", 1, out, &outlen), -1);
    assert_int_equal(decode("3\r\nabcX\r\n", 1, out, &outlen), -1);    /* no CRLF after data */
    assert_int_equal(decode("\r\n", 1, out, &outlen), -1);
    assert_int_equal(decode("fffffffffffffffffff\r\n", 4, out, &outlen), -1);
    assert_int_equal(decode("3\r\nab", 1, out, &outlen), -2);
}

/* ---- balancing ---- */

static px_peer peers[4];

static px_group *group(int balance, const int *weights, size_t n)
{
    static px_group g;
    static const char *names[] = { "a", "b", "c", "d" };
    memset(&g, 0, sizeof(g));
    memset(peers, 0, sizeof(peers));
    for (size_t i = 0; i < n; i++) {
        peers[i].weight = weights[i];
        peers[i].max_fails = 1;
        peers[i].fail_ms = 10000;
        peers[i].name = names[i];
    }
    g.peers = peers;
    g.npeers = g.nprimary = n;
    g.balance = balance;
    return &g;
}

static void test_smooth_round_robin(void **state)
{
    (void)state;
    int w[] = { 5, 1, 1 };
    px_group *g = group(PX_BALANCE_RR, w, 3);
    tt_request r = { .remote_addr = "127.0.0.1" };
    char order[15];
    for (int i = 0; i < 14; i++)
        order[i] = px_pick(g, &r, NULL, 1)->name[0];
    order[14] = '\0';
    assert_string_equal(order, "aabacaaaabacaa");
}

static void test_round_robin_equal(void **state)
{
    (void)state;
    int w[] = { 1, 1, 1 };
    px_group *g = group(PX_BALANCE_RR, w, 3);
    tt_request r = { .remote_addr = "127.0.0.1" };
    int count[3] = { 0 };
    for (int i = 0; i < 300; i++)
        count[px_pick(g, &r, NULL, 1) - peers]++;
    assert_int_equal(count[0], 100);
    assert_int_equal(count[1], 100);
    assert_int_equal(count[2], 100);
}

static void test_least_conn(void **state)
{
    (void)state;
    int w[] = { 1, 1 };
    px_group *g = group(PX_BALANCE_LEAST, w, 2);
    tt_request r = { .remote_addr = "127.0.0.1" };
    peers[0].active = 3;
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(px_pick(g, &r, NULL, 1), &peers[1]);
    peers[1].active = 3;
    /* equal: alternate */
    px_peer *x = px_pick(g, &r, NULL, 1), *y = px_pick(g, &r, NULL, 1);
    assert_ptr_not_equal(x, y);
}

static void test_ip_hash(void **state)
{
    (void)state;
    int w[] = { 1, 1, 1 };
    px_group *g = group(PX_BALANCE_HASH, w, 3);
    tt_request r = { .remote_addr = "10.1.2.3" };
    px_peer *first = px_pick(g, &r, NULL, 1);
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(px_pick(g, &r, NULL, 1), first);
    /* its peer out: another, stable too */
    first->down_until = px_now_ms() + 100000;
    px_peer *second = px_pick(g, &r, NULL, 1);
    assert_ptr_not_equal(second, first);
    assert_ptr_equal(px_pick(g, &r, NULL, 1), second);
}

static void test_failures_and_backup(void **state)
{
    (void)state;
    int w[] = { 1, 1, 1 };
    px_group *g = group(PX_BALANCE_RR, w, 3);
    g->nprimary = 2;                    /* c is a backup */
    peers[2].backup = 1;
    tt_request r = { .remote_addr = "127.0.0.1" };

    px_peer_failed(&peers[0]);          /* max_fails 1: out */
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(px_pick(g, &r, NULL, 1), &peers[1]);
    px_peer_failed(&peers[1]);
    assert_ptr_equal(px_pick(g, &r, NULL, 1), &peers[2]);      /* the backup */
    peers[2].max_fails = 1;
    px_peer_failed(&peers[2]);
    /* everything out: the primaries anyway, on a first try only */
    px_peer *p = px_pick(g, &r, NULL, 1);
    assert_true(p == &peers[0] || p == &peers[1]);
    unsigned char tried[1] = { 0 };
    assert_null(px_pick(g, &r, tried, 0));
    assert_false(px_any_left(g, tried));
    px_peer_ok(&peers[0]);
    assert_true(px_any_left(g, tried));
    tried[0] = 1;                       /* a tried: nothing else is up */
    assert_false(px_any_left(g, tried));

    /* max_fails 3: two failures keep it in */
    group(PX_BALANCE_RR, w, 2);
    peers[0].max_fails = 3;
    px_peer_failed(&peers[0]);
    px_peer_failed(&peers[0]);
    assert_int_equal(peers[0].down_until, 0);
    px_peer_failed(&peers[0]);
    assert_true(peers[0].down_until > px_now_ms());
}

static void test_hop_by_hop(void **state)
{
    (void)state;
    const char *conn = "keep-alive, X-Foo";
    assert_true(px_hop_by_hop("Keep-Alive", 10, NULL, 0));
    assert_true(px_hop_by_hop("transfer-encoding", 17, NULL, 0));
    assert_true(px_hop_by_hop("TE", 2, NULL, 0));
    assert_true(px_hop_by_hop("x-foo", 5, conn, strlen(conn)));
    assert_false(px_hop_by_hop("X-Foobar", 8, conn, strlen(conn)));
    assert_false(px_hop_by_hop("Content-Type", 12, conn, strlen(conn)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_simple),
        cmocka_unit_test(test_head_incomplete),
        cmocka_unit_test(test_head_framing),
        cmocka_unit_test(test_head_bad),
        cmocka_unit_test(test_head_reason),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_smooth_round_robin),
        cmocka_unit_test(test_round_robin_equal),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_ip_hash),
        cmocka_unit_test(test_failures_and_backup),
        cmocka_unit_test(test_hop_by_hop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
