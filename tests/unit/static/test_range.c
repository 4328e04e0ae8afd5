/* tt_range_parse: which Range headers give which parts of a file, which are
 * ignored (200), and which cannot be satisfied (416). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "range.h"

#define OUT_MAX 16

/* Parse a copy of value with no NUL after it, so ASan sees any read past
 * len. */
static tt_range_result parse_max(const char *value, uint64_t size, size_t max,
                                 tt_range *out, size_t *n)
{
    size_t len = strlen(value);
    char *copy = malloc(len ? len : 1);
    tt_range_result r;

    assert_non_null(copy);
    memcpy(copy, value, len);
    *n = 12345;
    r = tt_range_parse(copy, len, size, out, max, n);
    free(copy);
    return r;
}

static void expect_none(const char *value, uint64_t size)
{
    tt_range out[OUT_MAX];
    size_t n;
    tt_range_result r = parse_max(value, size, OUT_MAX, out, &n);

    if (r != TT_RANGE_NONE)
        fail_msg("\"%s\" (size %llu): got %d, expected NONE", value,
                 (unsigned long long)size, (int)r);
    assert_int_equal(n, 0);
}

static void expect_416(const char *value, uint64_t size)
{
    tt_range out[OUT_MAX];
    size_t n;
    tt_range_result r = parse_max(value, size, OUT_MAX, out, &n);

    if (r != TT_RANGE_UNSATISFIABLE)
        fail_msg("\"%s\" (size %llu): got %d, expected UNSATISFIABLE", value,
                 (unsigned long long)size, (int)r);
    assert_int_equal(n, 0);
}

/* expected: "first-last first-last ..." */
static void expect_ranges(const char *value, uint64_t size, const char *expected)
{
    tt_range out[OUT_MAX];
    size_t n, i;
    char got[1024] = "";
    tt_range_result r = parse_max(value, size, OUT_MAX, out, &n);
    uint64_t total = 0;

    if (r != TT_RANGE_OK)
        fail_msg("\"%s\" (size %llu): got %d, expected OK %s", value,
                 (unsigned long long)size, (int)r, expected);
    assert_true(n >= 1 && n <= OUT_MAX);
    for (i = 0; i < n; i++) {
        size_t used = strlen(got);

        snprintf(got + used, sizeof got - used, "%s%llu-%llu", i ? " " : "",
                 (unsigned long long)out[i].first, (unsigned long long)out[i].last);
        /* invariants: inside the file, in order, apart */
        assert_true(out[i].first <= out[i].last);
        assert_true(out[i].last < size);
        if (i > 0)
            assert_true(out[i].first > out[i - 1].last + 1);
        total += out[i].last - out[i].first + 1;
    }
    assert_true(total <= size);
    if (strcmp(got, expected) != 0)
        fail_msg("\"%s\" (size %llu): got %s, expected %s", value,
                 (unsigned long long)size, got, expected);
}

static void test_single(void **state)
{
    (void)state;
    expect_ranges("bytes=0-499", 10000, "0-499");
    expect_ranges("bytes=500-999", 10000, "500-999");
    expect_ranges("bytes=0-0", 10000, "0-0");
    expect_ranges("bytes=9999-9999", 10000, "9999-9999");
    expect_ranges("bytes=0-9999", 10000, "0-9999");
    expect_ranges("bytes=5-5", 6, "5-5");
}

static void test_last_clipped(void **state)
{
    (void)state;
    expect_ranges("bytes=0-10000", 10000, "0-9999");
    expect_ranges("bytes=9990-20000", 10000, "9990-9999");
    expect_ranges("bytes=0-18446744073709551615", 10, "0-9");
}

static void test_open_ended(void **state)
{
    (void)state;
    expect_ranges("bytes=9500-", 10000, "9500-9999");
    expect_ranges("bytes=0-", 10000, "0-9999");
    expect_ranges("bytes=9999-", 10000, "9999-9999");
    expect_ranges("bytes=0-", 1, "0-0");
}

static void test_suffix(void **state)
{
    (void)state;
    expect_ranges("bytes=-500", 10000, "9500-9999");
    expect_ranges("bytes=-1", 10000, "9999-9999");
    expect_ranges("bytes=-10000", 10000, "0-9999");
    expect_ranges("bytes=-20000", 10000, "0-9999");     /* longer than the file */
    expect_ranges("bytes=-1", 1, "0-0");
    expect_ranges("bytes=-99999999999999999999999", 10, "0-9");
}

static void test_unsatisfiable(void **state)
{
    (void)state;
    expect_416("bytes=10000-", 10000);
    expect_416("bytes=10000-10001", 10000);
    expect_416("bytes=20000-30000", 10000);
    expect_416("bytes=-0", 10000);
    expect_416("bytes=-0000", 10000);
    expect_416("bytes=10000-,-0,99999-", 10000);
    /* one good spec among bad ones is enough */
    expect_ranges("bytes=-0,0-0", 10000, "0-0");
    expect_ranges("bytes=20000-,5-6", 10000, "5-6");
}

static void test_empty_file(void **state)
{
    (void)state;
    expect_416("bytes=0-", 0);
    expect_416("bytes=0-0", 0);
    expect_416("bytes=-1", 0);
    expect_416("bytes=-0", 0);
    expect_416("bytes=0-10,-5", 0);
    /* still a syntax check first */
    expect_none("bytes=5-1", 0);
    expect_none("bytes=x", 0);
    expect_none("items=0-", 0);
}

static void test_multi(void **state)
{
    (void)state;
    expect_ranges("bytes=0-99,1000-1099", 10000, "0-99 1000-1099");
    expect_ranges("bytes=0-0,-1", 10000, "0-0 9999-9999");
    expect_ranges("bytes=0-99,1000-1099,5000-", 10000, "0-99 1000-1099 5000-9999");
}

static void test_unsorted(void **state)
{
    (void)state;
    expect_ranges("bytes=5000-5099,0-99,1000-1099", 10000, "0-99 1000-1099 5000-5099");
    expect_ranges("bytes=-100,0-9", 10000, "0-9 9900-9999");
}

static void test_overlap_and_adjacent(void **state)
{
    (void)state;
    expect_ranges("bytes=0-499,200-999", 10000, "0-999");
    expect_ranges("bytes=200-999,0-499", 10000, "0-999");
    expect_ranges("bytes=0-999,100-200", 10000, "0-999");           /* contained */
    expect_ranges("bytes=0-499,500-999", 10000, "0-999");           /* touching */
    expect_ranges("bytes=0-0,0-0,0-0", 10000, "0-0");
    expect_ranges("bytes=0-,-500", 10000, "0-9999");
    expect_ranges("bytes=-500,9000-", 10000, "9000-9999");
}

/* The gap is the bytes between two ranges: next.first - cur.last - 1.
 * Merged when it is less than TT_RANGE_COALESCE_GAP (80). */
static void test_coalesce_gap(void **state)
{
    (void)state;
    assert_int_equal(TT_RANGE_COALESCE_GAP, 80);
    expect_ranges("bytes=0-9,89-99", 10000, "0-99");                /* gap 79 */
    expect_ranges("bytes=0-9,90-99", 10000, "0-9 90-99");           /* gap 80 */
    expect_ranges("bytes=0-9,50-59,100-109", 10000, "0-109");       /* chained */
    expect_ranges("bytes=0-9,50-59,140-149", 10000, "0-59 140-149");
    /* near the top of the 64-bit range: no overflow in the gap test */
    expect_ranges("bytes=18446744073709551610-18446744073709551612,"
                  "18446744073709551613-", UINT64_MAX,
                  "18446744073709551610-18446744073709551614");
    expect_ranges("bytes=0-0,18446744073709551614-", UINT64_MAX,
                  "0-0 18446744073709551614-18446744073709551614");
}

static void test_whitespace_and_empty_elements(void **state)
{
    (void)state;
    expect_ranges("bytes=0-1, 500-600", 10000, "0-1 500-600");
    expect_ranges("bytes=0-1 ,\t500-600", 10000, "0-1 500-600");
    expect_ranges("bytes=0-1 \t , \t 500-600", 10000, "0-1 500-600");
    expect_ranges("bytes=0-1,,,500-600", 10000, "0-1 500-600");
    expect_ranges("bytes=,0-1", 10000, "0-1");
    expect_ranges("bytes=0-1,", 10000, "0-1");
    expect_ranges("bytes=0-1 ", 10000, "0-1");
    expect_ranges("bytes= 0-1", 10000, "0-1");
    expect_ranges("bytes=, ,\t, 0-1 , , ", 10000, "0-1");
}

static void test_unit(void **state)
{
    (void)state;
    expect_ranges("BYTES=0-1", 10000, "0-1");
    expect_ranges("Bytes=0-1", 10000, "0-1");
    expect_ranges("bYtEs=0-1", 10000, "0-1");
    expect_none("items=0-1", 10000);
    expect_none("byte=0-1", 10000);
    expect_none("bytesx=0-1", 10000);
    expect_none("bytes 0-1", 10000);
    expect_none("bytes =0-1", 10000);
    expect_none(" bytes=0-1", 10000);
    expect_none("bytes:0-1", 10000);
    expect_none("bytes", 10000);
    expect_none("", 10000);
    {
        tt_range out[1];
        size_t n = 7;

        assert_int_equal(tt_range_parse(NULL, 0, 10000, out, 1, &n), TT_RANGE_NONE);
        assert_int_equal(n, 0);
    }
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_none("bytes=", 10000);
    expect_none("bytes=,", 10000);
    expect_none("bytes= , ", 10000);
    expect_none("bytes=-", 10000);
    expect_none("bytes=--1", 10000);
    expect_none("bytes=1", 10000);
    expect_none("bytes=a-b", 10000);
    expect_none("bytes=0x10-0x20", 10000);
    expect_none("bytes=+1-2", 10000);
    expect_none("bytes=1-+2", 10000);
    expect_none("bytes=-+2", 10000);
    expect_none("bytes=1 -2", 10000);
    expect_none("bytes=1- 2", 10000);
    expect_none("bytes=- 2", 10000);
    expect_none("bytes=1-2-3", 10000);
    expect_none("bytes=1-2x", 10000);
    expect_none("bytes=1-2;3-4", 10000);
    expect_none("bytes=1-2 3-4", 10000);
    expect_none("bytes=0-1,x", 10000);              /* one bad spec spoils all */
    expect_none("bytes=1.5-2", 10000);
    expect_none("bytes=1-2\r\n", 10000);
    expect_none("bytes=\xff", 10000);
}

static void test_last_before_first(void **state)
{
    (void)state;
    expect_none("bytes=5-4", 10000);
    expect_none("bytes=0-1,5-4", 10000);            /* one invalid spec: ignored */
    expect_none("bytes=20000-10000", 10000);
    expect_ranges("bytes=4-4", 10000, "4-4");
    /* compared as written, not after clamping to 64 bits */
    expect_none("bytes=99999999999999999999-99999999999999999998", 10000);
    expect_none("bytes=99999999999999999999-5", 10000);
    expect_416("bytes=99999999999999999998-99999999999999999999", 10000);
    expect_416("bytes=000099999999999999999999-99999999999999999999", 10000);
}

static void test_huge_numbers(void **state)
{
    (void)state;
    /* UINT64_MAX itself and beyond: clamped, never wrapped to something small */
    expect_416("bytes=18446744073709551615-", 10000);
    expect_416("bytes=18446744073709551616-", 10000);   /* 2^64 would wrap to 0 */
    expect_416("bytes=36893488147419103232-", 10000);   /* 2^65 */
    expect_416("bytes=99999999999999999999999999999999-", UINT64_MAX);
    expect_ranges("bytes=0-18446744073709551616", 10000, "0-9999");
    expect_ranges("bytes=0-99999999999999999999999999", 10000, "0-9999");
    expect_ranges("bytes=-18446744073709551616", 10000, "0-9999");
    /* leading zeros are just zeros */
    expect_ranges("bytes=000000000000000000000000005-000000000000000000000000000007",
                  10000, "5-7");
    /* a file as large as 64 bits allows */
    expect_ranges("bytes=-1", UINT64_MAX, "18446744073709551614-18446744073709551614");
    expect_ranges("bytes=18446744073709551614-", UINT64_MAX,
                  "18446744073709551614-18446744073709551614");
    expect_416("bytes=18446744073709551615-", UINT64_MAX);
}

static void test_too_many_specs(void **state)
{
    char buf[4096];
    size_t len = 0;
    int i;

    (void)state;
    /* exactly TT_RANGE_MAX_SPECS, all merging into one: fine */
    len = (size_t)snprintf(buf, sizeof buf, "bytes=");
    for (i = 0; i < TT_RANGE_MAX_SPECS; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d-%d", i ? "," : "", i, i);
    expect_ranges(buf, 10000, "0-99");
    /* one more: the whole header is ignored */
    snprintf(buf + len, sizeof buf - len, ",%d-%d", i, i);
    expect_none(buf, 10000);
    /* empty elements are not specs */
    len = (size_t)snprintf(buf, sizeof buf, "bytes=");
    for (i = 0; i < TT_RANGE_MAX_SPECS; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "0-0,,");
    expect_ranges(buf, 10000, "0-0");
    /* unsatisfiable specs count too */
    len = (size_t)snprintf(buf, sizeof buf, "bytes=");
    for (i = 0; i <= TT_RANGE_MAX_SPECS; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s-0", i ? "," : "");
    expect_none(buf, 10000);
}

static void test_over_max(void **state)
{
    tt_range out[4];
    size_t n;

    (void)state;
    /* four parts apart: more than three is NONE */
    assert_int_equal(parse_max("bytes=0-0,1000-1000,2000-2000,3000-3000", 10000, 3, out, &n),
                     TT_RANGE_NONE);
    assert_int_equal(n, 0);
    assert_int_equal(parse_max("bytes=0-0,1000-1000,2000-2000,3000-3000", 10000, 4, out, &n),
                     TT_RANGE_OK);
    assert_int_equal(n, 4);
    /* counted after merging: four specs, two parts */
    assert_int_equal(parse_max("bytes=0-0,1-1,3000-3000,3001-3001", 10000, 2, out, &n),
                     TT_RANGE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].first, 0);
    assert_int_equal(out[0].last, 1);
    assert_int_equal(out[1].first, 3000);
    assert_int_equal(out[1].last, 3001);
    /* max 1: a single range only */
    assert_int_equal(parse_max("bytes=0-0,5000-5000", 10000, 1, out, &n), TT_RANGE_NONE);
    assert_int_equal(parse_max("bytes=0-0", 10000, 1, out, &n), TT_RANGE_OK);
    assert_int_equal(n, 1);
    /* unsatisfiable is not affected by max */
    assert_int_equal(parse_max("bytes=20000-", 10000, 1, out, &n), TT_RANGE_UNSATISFIABLE);
}

static void test_out_untouched_past_n(void **state)
{
    tt_range out[3];
    size_t n;

    (void)state;
    memset(out, 0xab, sizeof out);
    assert_int_equal(parse_max("bytes=10-20", 100, 1, out, &n), TT_RANGE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].first, 10);
    assert_int_equal(out[0].last, 20);
    assert_int_equal(out[1].first, UINT64_C(0xabababababababab));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_last_clipped),
        cmocka_unit_test(test_open_ended),
        cmocka_unit_test(test_suffix),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_unsorted),
        cmocka_unit_test(test_overlap_and_adjacent),
        cmocka_unit_test(test_coalesce_gap),
        cmocka_unit_test(test_whitespace_and_empty_elements),
        cmocka_unit_test(test_unit),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_last_before_first),
        cmocka_unit_test(test_huge_numbers),
        cmocka_unit_test(test_too_many_specs),
        cmocka_unit_test(test_over_max),
        cmocka_unit_test(test_out_untouched_past_n),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
