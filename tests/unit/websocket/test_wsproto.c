/* The pure rules of RFC 6455 / RFC 7692: handshake checks and accept key,
 * UTF-8 validation across fragments, permessage-deflate negotiation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "wsproto.h"

/* ---- handshake ---- */

static void test_accept_key_of_rfc_6455(void **state)
{
    char out[TT_WS_ACCEPT_LEN + 1];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";     /* RFC 6455 section 1.3 */
    assert_int_equal(tt_ws_accept(key, strlen(key), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_keys(void **state)
{
    assert_true(tt_ws_key_ok("dGhlIHNhbXBsZSBub25jZQ==", 24));
    assert_true(tt_ws_key_ok("AAAAAAAAAAAAAAAAAAAAAA==", 24));
    assert_false(tt_ws_key_ok("dGhlIHNhbXBsZSBub25jZQ=", 23));      /* short */
    assert_false(tt_ws_key_ok("dGhlIHNhbXBsZSBub25jZQ==x", 25));
    assert_false(tt_ws_key_ok("dGhlIHNhbXBsZSBub25jZR==", 24));     /* not 16 bytes exactly */
    assert_false(tt_ws_key_ok("dGhlIHNhbXBsZSBub25j*Q==", 24));
    assert_false(tt_ws_key_ok("dGhlIHNhbXBsZSBub25jZQAA", 24));     /* no padding */
    assert_false(tt_ws_key_ok("", 0));
}

static int has(const char *v, const char *token)
{
    return tt_ws_has_token(v, strlen(v), token);
}

static void test_tokens(void **state)
{
    assert_true(has("Upgrade", "upgrade"));
    assert_true(has("keep-alive, Upgrade", "upgrade"));      /* Firefox sends this */
    assert_true(has("keep-alive,upgrade ", "upgrade"));
    assert_true(has("  UPGRADE\t,close", "upgrade"));
    assert_false(has("upgrades", "upgrade"));
    assert_false(has("keep-alive", "upgrade"));
    assert_false(has("", "upgrade"));
    assert_false(has("up grade", "upgrade"));
    assert_true(has("h2c, websocket", "websocket"));
}

/* ---- UTF-8 ---- */

static int valid_whole(const char *s, size_t n)
{
    tt_ws_utf8 st = { 0 };
    return tt_ws_utf8_feed(&st, (const uint8_t *)s, n) == 0 && tt_ws_utf8_complete(&st);
}

/* Every split into two fragments gives the same verdict as the whole. */
static int valid_split(const char *s, size_t n)
{
    int want = valid_whole(s, n);
    for (size_t k = 0; k <= n; k++) {
        tt_ws_utf8 st = { 0 };
        int ok = tt_ws_utf8_feed(&st, (const uint8_t *)s, k) == 0 &&
                 tt_ws_utf8_feed(&st, (const uint8_t *)s + k, n - k) == 0 &&
                 tt_ws_utf8_complete(&st);
        if (ok != want)
            fail_msg("split at %zu of %zu gave %d, whole gave %d", k, n, ok, want);
    }
    return want;
}

#define V(s) valid_split(s, sizeof(s) - 1)

static void test_utf8_valid(void **state)
{
    assert_true(V(""));
    assert_true(V("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"));
    assert_true(V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));    /* kosme */
    assert_true(V("\x7f"));
    assert_true(V("\xc2\x80"));
    assert_true(V("\xdf\xbf"));
    assert_true(V("\xe0\xa0\x80"));
    assert_true(V("\xed\x9f\xbf"));                  /* U+D7FF, last before surrogates */
    assert_true(V("\xee\x80\x80"));                  /* U+E000 */
    assert_true(V("\xef\xbf\xbf"));
    assert_true(V("\xf0\x90\x80\x80"));
    assert_true(V("\xf4\x8f\xbf\xbf"));              /* U+10FFFF */
    assert_true(valid_split("a\0b", 3));             /* NUL is a character */
}

static void test_utf8_invalid(void **state)
{
    assert_false(V("\x80"));                          /* lone continuation */
    assert_false(V("\xbf"));
    assert_false(V("\xc0\xaf"));                      /* overlong '/' */
    assert_false(V("\xc1\xbf"));
    assert_false(V("\xe0\x80\xaf"));                  /* overlong */
    assert_false(V("\xe0\x9f\xbf"));
    assert_false(V("\xf0\x80\x80\xaf"));
    assert_false(V("\xf0\x8f\xbf\xbf"));
    assert_false(V("\xed\xa0\x80"));                  /* U+D800 */
    assert_false(V("\xed\xbf\xbf"));                  /* U+DFFF */
    assert_false(V("\xf4\x90\x80\x80"));              /* U+110000 */
    assert_false(V("\xf5\x80\x80\x80"));
    assert_false(V("\xfe"));
    assert_false(V("\xff"));
    assert_false(V("\xc2"));                          /* cut short at the end */
    assert_false(V("\xe2\x82"));
    assert_false(V("\xf0\x9f\x98"));
    assert_false(V("\xc2\x41"));                      /* continuation missing */
    assert_false(V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited"));
}

static void test_utf8_fails_at_the_first_bad_byte(void **state)
{
    /* a fragment that is bad is bad before the message ends (fail fast) */
    tt_ws_utf8 st = { 0 };
    assert_int_equal(tt_ws_utf8_feed(&st, (const uint8_t *)"ok \xce", 4), 0);
    assert_false(tt_ws_utf8_complete(&st));
    assert_int_equal(tt_ws_utf8_feed(&st, (const uint8_t *)"\xba", 1), 0);
    assert_true(tt_ws_utf8_complete(&st));
    assert_int_equal(tt_ws_utf8_feed(&st, (const uint8_t *)"\xf4\x90", 2), -1);
}

/* ---- permessage-deflate ---- */

static int negotiate(const char *offer, tt_ws_deflate *d, char *resp, size_t size)
{
    return tt_ws_deflate_negotiate(offer, strlen(offer), 15, d, resp, size);
}

/* the server caps its own window: said in the answer even unasked, never
 * above what the client allows */
static void test_deflate_own_window_cap(void **state)
{
    tt_ws_deflate d;
    char resp[256];
    const char *o = "permessage-deflate";
    assert_int_equal(tt_ws_deflate_negotiate(o, strlen(o), 12, &d, resp, sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate; server_max_window_bits=12");
    assert_int_equal(d.server_max_window_bits, 12);
    o = "permessage-deflate; server_max_window_bits=10";
    assert_int_equal(tt_ws_deflate_negotiate(o, strlen(o), 12, &d, resp, sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate; server_max_window_bits=10");
    assert_int_equal(d.server_max_window_bits, 10);
    o = "permessage-deflate; client_max_window_bits";
    assert_int_equal(tt_ws_deflate_negotiate(o, strlen(o), 12, &d, resp, sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate; server_max_window_bits=12; "
                        "client_max_window_bits=12");
    assert_int_equal(d.client_max_window_bits, 12);
}

static void test_deflate_plain_offer(void **state)
{
    tt_ws_deflate d;
    char resp[256];
    assert_int_equal(negotiate("permessage-deflate", &d, resp, sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate");
    assert_int_equal(d.server_max_window_bits, 15);
    assert_int_equal(d.client_max_window_bits, 15);
    assert_false(d.server_no_context_takeover);
}

static void test_deflate_browser_offer(void **state)
{
    /* what Chrome and Firefox send */
    tt_ws_deflate d;
    char resp[256];
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits", &d, resp,
                               sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate");
    assert_int_equal(d.client_max_window_bits, 15);
}

static void test_deflate_parameters(void **state)
{
    tt_ws_deflate d;
    char resp[256];
    assert_int_equal(negotiate("permessage-deflate; server_no_context_takeover; "
                               "client_no_context_takeover; server_max_window_bits=10; "
                               "client_max_window_bits=\"12\"", &d, resp, sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover; server_max_window_bits=10; "
                        "client_max_window_bits=12");
    assert_true(d.server_no_context_takeover && d.client_no_context_takeover);
    assert_int_equal(d.server_max_window_bits, 10);
    assert_int_equal(d.client_max_window_bits, 12);
}

static void test_deflate_falls_back_to_the_next_offer(void **state)
{
    tt_ws_deflate d;
    char resp[256];
    /* an 8-bit server window (zlib cannot), an unknown parameter, a
     * repeated one, a value where none belongs: each offer is declined and
     * the next acceptable one wins */
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits=8, "
                               "permessage-deflate; foo, "
                               "permessage-deflate; server_no_context_takeover; "
                               "server_no_context_takeover, "
                               "permessage-deflate; client_no_context_takeover=1, "
                               "x-webkit-deflate-frame, "
                               "permessage-deflate; server_max_window_bits=9",
                               &d, resp, sizeof(resp)), 1);
    assert_string_equal(resp, "permessage-deflate; server_max_window_bits=9");
}

static void test_deflate_nothing_acceptable(void **state)
{
    tt_ws_deflate d;
    char resp[256];
    assert_int_equal(negotiate("", &d, resp, sizeof(resp)), 0);
    assert_int_equal(negotiate("x-webkit-deflate-frame", &d, resp, sizeof(resp)), 0);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits=16", &d, resp,
                               sizeof(resp)), 0);
    assert_int_equal(negotiate("permessage-deflate; server_max_window_bits", &d, resp,
                               sizeof(resp)), 0);
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits=07", &d, resp,
                               sizeof(resp)), 0);
}

static void test_deflate_malformed(void **state)
{
    tt_ws_deflate d;
    char resp[256];
    assert_int_equal(negotiate("permessage-deflate; client_max_window_bits=\"12", &d, resp,
                               sizeof(resp)), -1);          /* unterminated quote */
    assert_int_equal(negotiate("permessage-deflate;", &d, resp, sizeof(resp)), -1);
    assert_int_equal(negotiate("=x", &d, resp, sizeof(resp)), -1);
    assert_int_equal(negotiate("permessage-deflate x", &d, resp, sizeof(resp)), -1);
    /* and a response buffer too small is an error, never a cut header */
    char tiny[10];
    assert_int_equal(negotiate("permessage-deflate", &d, tiny, sizeof(tiny)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key_of_rfc_6455),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_utf8_fails_at_the_first_bad_byte),
        cmocka_unit_test(test_deflate_plain_offer),
        cmocka_unit_test(test_deflate_own_window_cap),
        cmocka_unit_test(test_deflate_browser_offer),
        cmocka_unit_test(test_deflate_parameters),
        cmocka_unit_test(test_deflate_falls_back_to_the_next_offer),
        cmocka_unit_test(test_deflate_nothing_acceptable),
        cmocka_unit_test(test_deflate_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
