/* Client addresses and trusted-proxy networks: IPv4, IPv6 and their
 * spellings, CIDR parsing and matching, and what is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "addr.h"

/* Parse a copy with no NUL after it, so ASan sees any read past len. */
static int parse(const char *s, tt_addr *out)
{
    size_t len = strlen(s);
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    int rc = tt_addr_parse(copy, len, out);
    free(copy);
    return rc;
}

static void expect_same(const char *a, const char *b)
{
    tt_addr x, y;
    if (parse(a, &x) != 0 || parse(b, &y) != 0)
        fail_msg("%s or %s did not parse", a, b);
    if (memcmp(&x, &y, sizeof(x)) != 0)
        fail_msg("%s and %s are different keys", a, b);
}

static void expect_not_addr(const char *s)
{
    tt_addr a, zero;
    memset(&zero, 0, sizeof(zero));
    if (parse(s, &a) != -1)
        fail_msg("'%s' parsed as an address", s);
    assert_memory_equal(&a, &zero, sizeof(a));     /* never half-filled */
}

static void expect_format(const char *in, const char *out)
{
    tt_addr a;
    char buf[TT_ADDR_TEXT_MAX];
    assert_int_equal(parse(in, &a), 0);
    assert_string_equal(tt_addr_format(&a, buf, sizeof(buf)), out);
}

static void test_v4(void **state)
{
    tt_addr a;
    (void)state;
    assert_int_equal(parse("192.0.2.7", &a), 0);
    assert_int_equal(a.family, TT_ADDR_V4);
    assert_memory_equal(a.bytes, "\xc0\x00\x02\x07", 4);
    for (size_t i = 4; i < 16; i++)
        assert_int_equal(a.bytes[i], 0);
    expect_format("192.0.2.7", "192.0.2.7");
    expect_format("0.0.0.0", "0.0.0.0");
    expect_format("255.255.255.255", "255.255.255.255");
}

static void test_v6_spellings_are_one_key(void **state)
{
    tt_addr a;
    (void)state;
    assert_int_equal(parse("2001:db8::1", &a), 0);
    assert_int_equal(a.family, TT_ADDR_V6);
    expect_same("::1", "0:0:0:0:0:0:0:1");
    expect_same("2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001");
    expect_same("2001:DB8::A", "2001:db8::a");
    expect_format("2001:0DB8:0:0::0001", "2001:db8::1");
}

static void test_v4_mapped_is_v4(void **state)
{
    tt_addr a;
    (void)state;
    /* what a dual-stack listener reports for an IPv4 client */
    assert_int_equal(parse("::ffff:192.0.2.7", &a), 0);
    assert_int_equal(a.family, TT_ADDR_V4);
    expect_same("::ffff:192.0.2.7", "192.0.2.7");
    expect_same("::FFFF:c000:0207", "192.0.2.7");
    /* the old IPv4-compatible form is not a mapping: it stays IPv6 */
    assert_int_equal(parse("::192.0.2.7", &a), 0);
    assert_int_equal(a.family, TT_ADDR_V6);
}

static void test_not_addresses(void **state)
{
    (void)state;
    expect_not_addr("");
    expect_not_addr(" 192.0.2.7");              /* callers trim */
    expect_not_addr("192.0.2.7 ");
    expect_not_addr("192.0.2");
    expect_not_addr("192.0.2.256");
    expect_not_addr("192.0.2.7.1");
    expect_not_addr("192.0.2.7:8080");
    expect_not_addr("[::1]");
    expect_not_addr("fe80::1%eth0");
    expect_not_addr("1::2::3");
    expect_not_addr("unknown");
    expect_not_addr("192.0.2.7, 10.0.0.1");
    expect_not_addr("0x7f.0.0.1");
    /* longer than any address: refused before it is copied anywhere */
    char big[300];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_not_addr(big);
    expect_not_addr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555");
}

static void test_length_is_respected(void **state)
{
    tt_addr a, b;
    (void)state;
    /* only len bytes count, whatever follows */
    assert_int_equal(tt_addr_parse("10.0.0.1junk", 8, &a), 0);
    assert_int_equal(parse("10.0.0.1", &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(tt_addr_parse("10.0.0.1", 0, &a), -1);
}

static void test_format_none(void **state)
{
    tt_addr a;
    char buf[TT_ADDR_TEXT_MAX];
    (void)state;
    memset(&a, 0, sizeof(a));
    assert_string_equal(tt_addr_format(&a, buf, sizeof(buf)), "-");
}

/* ---- CIDR ---- */

static int in(const char *cidr, const char *addr)
{
    tt_cidr c;
    tt_addr a;
    int rc = tt_cidr_parse(cidr, &c);
    if (rc != TT_CIDR_OK)
        fail_msg("%s: %d", cidr, rc);
    assert_int_equal(parse(addr, &a), 0);
    return tt_cidr_match(&c, &a);
}

static void test_cidr_v4(void **state)
{
    (void)state;
    assert_true(in("10.0.0.0/8", "10.0.0.1"));
    assert_true(in("10.0.0.0/8", "10.255.255.255"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_false(in("10.0.0.0/8", "9.255.255.255"));
    assert_true(in("192.168.4.0/22", "192.168.7.200"));
    assert_false(in("192.168.4.0/22", "192.168.8.0"));
    assert_false(in("192.168.4.0/22", "192.168.3.255"));
    assert_true(in("127.0.0.1", "127.0.0.1"));          /* a host: /32 */
    assert_false(in("127.0.0.1", "127.0.0.2"));
    assert_true(in("127.0.0.1/32", "127.0.0.1"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_true(in("10.0.0.0/8", "::ffff:10.1.2.3"));   /* mapped peers match */
}

static void test_cidr_v6(void **state)
{
    (void)state;
    assert_true(in("::1", "::1"));
    assert_false(in("::1", "::2"));
    assert_true(in("fd00::/8", "fd12:3456::1"));
    assert_false(in("fd00::/8", "fe80::1"));
    assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::1"));
    assert_true(in("2001:db8:0:8000::/49", "2001:db8:0:ffff::1"));
    assert_false(in("2001:db8:0:8000::/49", "2001:db8:0:7fff::1"));
    assert_true(in("::/0", "2001:db8::1"));
    assert_true(in("::ffff:10.0.0.0/104", "10.9.9.9"));  /* a mapped network is IPv4 */
    assert_false(in("::ffff:10.0.0.0/104", "11.0.0.1"));
}

static void test_cidr_families_never_mix(void **state)
{
    (void)state;
    assert_false(in("0.0.0.0/0", "::1"));
    assert_false(in("::/0", "127.0.0.1"));
    tt_cidr c;
    tt_addr none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(tt_cidr_parse("0.0.0.0/0", &c), TT_CIDR_OK);
    assert_false(tt_cidr_match(&c, &none));
}

static void test_cidr_host_bits(void **state)
{
    tt_cidr c;
    char buf[TT_ADDR_TEXT_MAX];
    (void)state;
    assert_int_equal(tt_cidr_parse("10.0.0.1/8", &c), TT_CIDR_HOST_BITS);
    assert_string_equal(tt_addr_format(&c.net, buf, sizeof(buf)), "10.0.0.0");
    assert_int_equal(c.prefix, 8);
    assert_int_equal(tt_cidr_parse("fd00::1/8", &c), TT_CIDR_HOST_BITS);
    assert_string_equal(tt_addr_format(&c.net, buf, sizeof(buf)), "fd00::");
    assert_int_equal(tt_cidr_parse("192.168.5.0/22", &c), TT_CIDR_HOST_BITS);
    assert_string_equal(tt_addr_format(&c.net, buf, sizeof(buf)), "192.168.4.0");
}

static void test_cidr_bad(void **state)
{
    static const char *const bad[] = {
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/8/8", "10.0.0.0/ 8", "10.0.0.0 /8", "10.0.0.0/0x8", "10.0.0.0/0008",
        "10.0.0.0/8 ", "localhost", "10.0.0/8", "::ffff:10.0.0.0/80", "*",
    };
    tt_cidr c;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tt_cidr_parse(bad[i], &c) != TT_CIDR_BAD)
            fail_msg("'%s' was accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4),
        cmocka_unit_test(test_v6_spellings_are_one_key),
        cmocka_unit_test(test_v4_mapped_is_v4),
        cmocka_unit_test(test_not_addresses),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_format_none),
        cmocka_unit_test(test_cidr_v4),
        cmocka_unit_test(test_cidr_v6),
        cmocka_unit_test(test_cidr_families_never_mix),
        cmocka_unit_test(test_cidr_host_bits),
        cmocka_unit_test(test_cidr_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
