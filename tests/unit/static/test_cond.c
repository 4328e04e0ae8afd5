/* Validators and conditional requests: the ETag format, HTTP dates in all
 * three forms, entity-tag lists, the RFC 9110 13.2.2 evaluation order and
 * If-Range. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "cond.h"

/* Header values are not NUL-terminated: every one is passed as a heap copy
 * of exactly its length, so ASan catches a read past it. */
static char *copy_of(const char *s, size_t len)
{
    char *c = malloc(len ? len : 1);

    assert_non_null(c);
    memcpy(c, s, len);
    return c;
}

static int parse_date(const char *s, int64_t *t)
{
    size_t len = strlen(s);
    char *c = copy_of(s, len);
    int rc = tt_http_date_parse(c, len, t);

    free(c);
    return rc;
}

static void expect_date(const char *s, int64_t want)
{
    int64_t t = -12345;

    if (parse_date(s, &t) != 0)
        fail_msg("\"%s\": did not parse, expected %lld", s, (long long)want);
    if (t != want)
        fail_msg("\"%s\": got %lld, expected %lld", s, (long long)t, (long long)want);
}

static void expect_bad_date(const char *s)
{
    int64_t t = -12345;

    if (parse_date(s, &t) != -1)
        fail_msg("\"%s\": parsed as %lld, expected -1", s, (long long)t);
    assert_int_equal(t, -12345);        /* untouched */
}

static int match(const char *list, const char *etag, int weak)
{
    size_t llen = strlen(list), elen = strlen(etag);
    char *l = copy_of(list, llen), *e = copy_of(etag, elen);
    int rc = tt_etag_match(l, llen, e, elen, weak);

    free(l);
    free(e);
    return rc;
}

/* ---- ETag ---- */

static void test_etag_format(void **state)
{
    char buf[TT_ETAG_MAX];

    (void)state;
    assert_int_equal(tt_etag_format(buf, sizeof buf, 1234, 1700000000, 123456789, 42, NULL),
                     strlen("\"4d2-17979cfe3d85cd15-2a\""));
    assert_string_equal(buf, "\"4d2-17979cfe3d85cd15-2a\"");

    assert_int_equal(tt_etag_format(buf, sizeof buf, 1234, 1700000000, 123456789, 42, "br"),
                     strlen("\"4d2-17979cfe3d85cd15-2a-br\""));
    assert_string_equal(buf, "\"4d2-17979cfe3d85cd15-2a-br\"");
    tt_etag_format(buf, sizeof buf, 1234, 1700000000, 123456789, 42, "gz");
    assert_string_equal(buf, "\"4d2-17979cfe3d85cd15-2a-gz\"");

    tt_etag_format(buf, sizeof buf, 0, 0, 0, 0, NULL);
    assert_string_equal(buf, "\"0-0-0\"");
    tt_etag_format(buf, sizeof buf, 0, 0, 0, 0, "");
    assert_string_equal(buf, "\"0-0-0-\"");

    /* lower-case hex; before 1970 wraps as unsigned 64 bits */
    tt_etag_format(buf, sizeof buf, 0xABCDEF, -1, 0, 0xFEDC, NULL);
    assert_string_equal(buf, "\"abcdef-ffffffffc4653600-fedc\"");
    tt_etag_format(buf, sizeof buf, 1, -86400, 5, 1, NULL);
    assert_string_equal(buf, "\"1-ffffb16b6eb10005-1\"");

    /* the longest one fits in TT_ETAG_MAX */
    {
        size_t n = tt_etag_format(buf, sizeof buf, UINT64_MAX, INT64_MAX / 1000000000,
                                  999999999, UINT64_MAX, "br");

        assert_int_equal(n, strlen(buf));
    }
    assert_true(strlen(buf) < TT_ETAG_MAX);
    assert_int_equal(buf[0], '"');
    assert_int_equal(buf[strlen(buf) - 1], '"');
    assert_memory_equal(buf, "\"ffffffffffffffff-", 18);

    /* same file, different nanoseconds: different tags */
    {
        char other[TT_ETAG_MAX];

        tt_etag_format(buf, sizeof buf, 10, 1000, 1, 7, NULL);
        tt_etag_format(other, sizeof other, 10, 1000, 2, 7, NULL);
        assert_string_not_equal(buf, other);
    }
}

static void test_etag_format_small_buffer(void **state)
{
    char buf[8];

    (void)state;
    memset(buf, 'x', sizeof buf);
    assert_int_equal(tt_etag_format(buf, sizeof buf, 1234, 1700000000, 0, 42, NULL), 0);
    assert_string_equal(buf, "");
    /* exactly enough: "\"1-0-2\"" is 7 bytes and a NUL */
    assert_int_equal(tt_etag_format(buf, sizeof buf, 1, 0, 0, 2, NULL), 7);
    assert_string_equal(buf, "\"1-0-2\"");
    assert_int_equal(tt_etag_format(buf, 7, 1, 0, 0, 2, NULL), 0);
    assert_int_equal(tt_etag_format(buf, 0, 1, 0, 0, 2, NULL), 0);
}

/* ---- dates ---- */

static void expect_format(int64_t t, const char *want)
{
    char buf[TT_HTTP_DATE_LEN + 1];

    memset(buf, 'x', sizeof buf);
    tt_http_date_format(t, buf);
    assert_string_equal(buf, want);
    assert_int_equal(strlen(buf), TT_HTTP_DATE_LEN);
}

static void test_date_format(void **state)
{
    (void)state;
    expect_format(784111777, "Sun, 06 Nov 1994 08:49:37 GMT");
    expect_format(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    expect_format(-1, "Wed, 31 Dec 1969 23:59:59 GMT");
    expect_format(951782400, "Tue, 29 Feb 2000 00:00:00 GMT");
    expect_format(951868800, "Wed, 01 Mar 2000 00:00:00 GMT");
    expect_format(4107542399, "Sun, 28 Feb 2100 23:59:59 GMT");     /* 2100: no leap day */
    expect_format(4107542400, "Mon, 01 Mar 2100 00:00:00 GMT");
    expect_format(2147483647, "Tue, 19 Jan 2038 03:14:07 GMT");
    expect_format(2147483648, "Tue, 19 Jan 2038 03:14:08 GMT");
    expect_format(-2208988800, "Mon, 01 Jan 1900 00:00:00 GMT");
    expect_format(1709210096, "Thu, 29 Feb 2024 12:34:56 GMT");
    /* four-digit years only: the ends of the range are kept */
    expect_format(INT64_C(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
    expect_format(INT64_C(253402300800), "Fri, 31 Dec 9999 23:59:59 GMT");
    expect_format(INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT");
    expect_format(INT64_C(-62135596800), "Mon, 01 Jan 0001 00:00:00 GMT");
    expect_format(INT64_MIN, "Mon, 01 Jan 0001 00:00:00 GMT");
}

static void test_date_three_forms(void **state)
{
    (void)state;
    expect_date("Sun, 06 Nov 1994 08:49:37 GMT", 784111777);
    expect_date("Sunday, 06-Nov-94 08:49:37 GMT", 784111777);
    expect_date("Sun Nov  6 08:49:37 1994", 784111777);
    expect_date("Wed Nov 16 08:49:37 1994", 784111777 + 10 * 86400);
    expect_date("Thu, 01 Jan 1970 00:00:00 GMT", 0);
    expect_date("Wed, 31 Dec 1969 23:59:59 GMT", -1);
    expect_date("Tue, 29 Feb 2000 00:00:00 GMT", 951782400);
    expect_date("Mon, 01 Jan 0001 00:00:00 GMT", INT64_C(-62135596800));
    expect_date("Fri, 31 Dec 9999 23:59:59 GMT", INT64_C(253402300799));
    expect_date("Sat, 01 Jan 0000 00:00:00 GMT", INT64_C(-62167219200));
    /* every day name, every month */
    expect_date("Monday, 01-Jan-01 00:00:00 GMT", 978307200);
    expect_date("Tuesday, 01-Feb-11 00:00:00 GMT", 1296518400);
    expect_date("Wednesday, 01-Mar-23 00:00:00 GMT", 1677628800);
    expect_date("Thursday, 01-Apr-21 00:00:00 GMT", 1617235200);
    expect_date("Friday, 01-May-20 00:00:00 GMT", 1588291200);
    expect_date("Saturday, 01-Jun-19 00:00:00 GMT", 1559347200);
    expect_date("Sunday, 01-Jul-18 00:00:00 GMT", 1530403200);
    expect_date("Tue Aug  1 00:00:00 2017", 1501545600);
    expect_date("Thu Sep  1 00:00:00 2016", 1472688000);
    expect_date("Thu Oct  1 00:00:00 2015", 1443657600);
    expect_date("Sat Nov  1 00:00:00 2014", 1414800000);
    expect_date("Sun Dec  1 00:00:00 2013", 1385856000);
    /* the weekday is not checked against the date */
    expect_date("Mon, 06 Nov 1994 08:49:37 GMT", 784111777);
    expect_date("Friday, 06-Nov-94 08:49:37 GMT", 784111777);
    expect_date("Sat Nov  6 08:49:37 1994", 784111777);
    /* a leap second is the next second */
    expect_date("Sat, 31 Dec 2016 23:59:60 GMT", 1483228800);
}

/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the past */
static void test_date_two_digit_year(void **state)
{
    time_t now = time(NULL);
    struct tm *tm = gmtime(&now);
    int year = tm->tm_year + 1900;
    static const int ahead[] = { 0, 1, 10, 49, 50, 51, 60, 99, -1, -10, -49, -50 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ahead / sizeof ahead[0]; i++) {
        int target = year + ahead[i];
        int want = ahead[i] > 50 ? target - 100 : ahead[i] < -49 ? target + 100 : target;
        char rfc850[64], imf[64];
        int64_t a, b;

        snprintf(rfc850, sizeof rfc850, "Sunday, 15-Jun-%02d 12:00:00 GMT", target % 100);
        snprintf(imf, sizeof imf, "Sun, 15 Jun %04d 12:00:00 GMT", want);
        assert_int_equal(parse_date(rfc850, &a), 0);
        assert_int_equal(parse_date(imf, &b), 0);
        if (a != b)
            fail_msg("%s: %lld, expected the year %d (%lld)", rfc850, (long long)a, want,
                     (long long)b);
    }
}

static void test_date_invalid(void **state)
{
    (void)state;
    expect_bad_date("");
    expect_bad_date("garbage");
    expect_bad_date("0");
    expect_bad_date("784111777");
    /* IMF-fixdate, one thing wrong at a time */
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 UTC");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 gmt");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMT ");
    expect_bad_date(" Sun, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMTx");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMT; length=100");
    expect_bad_date("sun, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("SUN, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nux 1994 08:49:37 GMT");
    expect_bad_date("Snu, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sunday, 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun 06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun,06 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 6 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun,  6 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 94 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 01994 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 8:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 08:49 GMT");
    expect_bad_date("Sun, 06 Nov 1994 08-49-37 GMT");
    expect_bad_date("Sun, 06  Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 0x Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, +6 Nov 1994 08:49:37 GMT");
    /* out of range */
    expect_bad_date("Sun, 00 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 31 Nov 1994 08:49:37 GMT");
    expect_bad_date("Sun, 32 Jan 1994 08:49:37 GMT");
    expect_bad_date("Sun, 29 Feb 1995 08:49:37 GMT");
    expect_bad_date("Sun, 29 Feb 1900 08:49:37 GMT");
    expect_date("Sun, 29 Feb 1996 08:49:37 GMT", 825583777);
    expect_bad_date("Sun, 30 Feb 2000 08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 24:00:00 GMT");
    expect_bad_date("Sun, 06 Nov 1994 23:60:00 GMT");
    expect_bad_date("Sun, 06 Nov 1994 23:59:61 GMT");
    /* RFC 850 */
    expect_bad_date("Sun, 06-Nov-94 08:49:37 GMT");
    expect_bad_date("Sunday, 06-Nov-1994 08:49:37 GMT");
    expect_bad_date("Sunday, 06 Nov 94 08:49:37 GMT");
    expect_bad_date("sunday, 06-Nov-94 08:49:37 GMT");
    expect_bad_date("Sunday, 06-Nov-94 08:49:37");
    expect_bad_date("Sunday, 31-Apr-94 08:49:37 GMT");
    /* asctime */
    expect_bad_date("Sun Nov 6 08:49:37 1994");
    expect_bad_date("Sun Nov 06 08:49:37 1994 ");
    expect_bad_date("Sun Nov  6 08:49:37 94");
    expect_bad_date("Sun Nov  6 08:49:37 1994 GMT");
    expect_bad_date("Sun Nov   6 08:49:37 1994");
    expect_bad_date("Sun Nov  0 08:49:37 1994");
    expect_bad_date("Sunday Nov  6 08:49:37 1994");
    /* control bytes and high bytes */
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    expect_bad_date("Sun, 06 Nov 1994\t08:49:37 GMT");
    expect_bad_date("Sun, 06 Nov 1994 08:49:37 GM\xd4");
}

/* Every cut-short date fails, and none is read past its end (ASan). */
static void test_date_truncated(void **state)
{
    static const char *const full[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    };
    size_t i, len;

    (void)state;
    for (i = 0; i < 3; i++) {
        for (len = 0; len < strlen(full[i]); len++) {
            char *c = copy_of(full[i], len);
            int64_t t;

            if (tt_http_date_parse(c, len, &t) != -1)
                fail_msg("\"%.*s\" parsed", (int)len, full[i]);
            free(c);
        }
    }
    assert_int_equal(tt_http_date_parse(NULL, 0, &(int64_t){ 0 }), -1);
}

/* format and gmtime agree, and every form parses back to the same second */
static void test_date_round_trip(void **state)
{
    const int64_t lo = INT64_C(-62135596800), hi = INT64_C(253402300799);
    const int64_t step = (hi - lo) / 200000 + 7;
    int64_t t;

    (void)state;
    for (t = lo; t <= hi; t += step) {
        char imf[TT_HTTP_DATE_LEN + 1], asc[64];
        int64_t back;

        tt_http_date_format(t, imf);
        if (sizeof(time_t) == 8) {
            time_t tt = (time_t)t;
            struct tm *tm = gmtime(&tt);
            static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
            static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
            char want[64];

            assert_non_null(tm);
            snprintf(want, sizeof want, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                     wd[tm->tm_wday], tm->tm_mday, mon[tm->tm_mon], tm->tm_year + 1900,
                     tm->tm_hour, tm->tm_min, tm->tm_sec);
            assert_string_equal(imf, want);
        }
        back = -1;
        assert_int_equal(parse_date(imf, &back), 0);
        assert_int_equal(back, t);

        /* the same instant as asctime: "Www Mmm dd hh:mm:ss yyyy", day padded */
        snprintf(asc, sizeof asc, "%.3s %.3s %c%c %.8s %.4s", imf, imf + 8,
                 imf[5] == '0' ? ' ' : imf[5], imf[6], imf + 17, imf + 12);
        back = -1;
        if (parse_date(asc, &back) != 0)
            fail_msg("\"%s\" did not parse", asc);
        assert_int_equal(back, t);
    }
}

/* ---- entity-tag lists ---- */

static void test_etag_match_strong(void **state)
{
    (void)state;
    assert_true(match("\"abc\"", "\"abc\"", 0));
    assert_true(match("\"x\", \"abc\"", "\"abc\"", 0));
    assert_true(match("\"x\",\"abc\",\"y\"", "\"abc\"", 0));
    assert_true(match("\"x\" \t,\t \"abc\"", "\"abc\"", 0));
    assert_true(match("  \"abc\"  ", "\"abc\"", 0));
    assert_true(match(",,\"abc\",,", "\"abc\"", 0));
    assert_false(match("\"abd\"", "\"abc\"", 0));
    assert_false(match("\"ab\"", "\"abc\"", 0));
    assert_false(match("\"abcd\"", "\"abc\"", 0));
    assert_false(match("\"ABC\"", "\"abc\"", 0));           /* case matters */
    /* weak tags never match strongly, on either side */
    assert_false(match("W/\"abc\"", "\"abc\"", 0));
    assert_false(match("\"abc\"", "W/\"abc\"", 0));
    assert_false(match("W/\"abc\"", "W/\"abc\"", 0));
    assert_true(match("W/\"abc\", \"abc\"", "\"abc\"", 0));
    /* the tags as tt_etag_format writes them */
    assert_true(match("\"4d2-17979cfe3d85cd15-2a\"", "\"4d2-17979cfe3d85cd15-2a\"", 0));
    assert_false(match("\"4d2-17979cfe3d85cd15-2a\"", "\"4d2-17979cfe3d85cd15-2a-br\"", 0));
}

static void test_etag_match_weak(void **state)
{
    (void)state;
    assert_true(match("\"abc\"", "\"abc\"", 1));
    assert_true(match("W/\"abc\"", "\"abc\"", 1));
    assert_true(match("\"abc\"", "W/\"abc\"", 1));
    assert_true(match("W/\"abc\"", "W/\"abc\"", 1));
    assert_true(match("\"x\", W/\"abc\"", "\"abc\"", 1));
    assert_false(match("W/\"abd\"", "\"abc\"", 1));
    assert_false(match("w/\"abc\"", "\"abc\"", 1));        /* "W/" is case-sensitive */
    assert_false(match("W /\"abc\"", "\"abc\"", 1));
    assert_false(match("W/ \"abc\"", "\"abc\"", 1));
}

static void test_etag_match_star(void **state)
{
    (void)state;
    assert_true(match("*", "\"abc\"", 0));
    assert_true(match("*", "\"abc\"", 1));
    assert_true(match(" * ", "\"abc\"", 0));
    assert_true(match("*", "W/\"abc\"", 0));
    assert_false(match("**", "\"abc\"", 0));
    assert_false(match("\"*\"", "\"abc\"", 0));
    assert_true(match("\"*\"", "\"*\"", 0));                /* a tag whose text is * */
    /* "*" in a list is not the field value "*": it matches nothing itself */
    assert_false(match("*, \"x\"", "\"abc\"", 0));
    assert_true(match("*, \"abc\"", "\"abc\"", 0));
}

static void test_etag_match_malformed(void **state)
{
    (void)state;
    assert_false(match("", "\"abc\"", 1));
    assert_false(match(" ", "\"abc\"", 1));
    assert_false(match(",", "\"abc\"", 1));
    assert_false(match("abc", "\"abc\"", 1));               /* unquoted */
    assert_false(match("\"abc", "\"abc\"", 1));             /* unterminated */
    assert_false(match("abc\"", "\"abc\"", 1));
    assert_false(match("\"", "\"abc\"", 1));
    assert_false(match("W/", "\"abc\"", 1));
    assert_false(match("W", "\"abc\"", 1));
    assert_false(match("\"abc\"x", "\"abc\"", 1));          /* junk after the tag */
    assert_false(match("\"abc\" \"abc\"", "\"abc\"", 1));   /* no comma */
    assert_false(match("\"a\tc\"", "\"a\tc\"", 1));         /* no controls in a tag */
    assert_false(match("\"a c\"", "\"a c\"", 1));           /* nor spaces */
    /* a bad element is skipped, the rest still count */
    assert_true(match("abc, \"abc\"", "\"abc\"", 1));
    /* a broken tag ends at the next comma, even one it seemed to quote */
    assert_true(match("\"abc, \"abc\"", "\"abc\"", 1));
    assert_true(match("\"x\"y, \"abc\"", "\"abc\"", 1));
    assert_true(match("W/x, \"abc\"", "\"abc\"", 1));
    /* commas are etagc: inside quotes they are part of the tag */
    assert_true(match("\"a,b\"", "\"a,b\"", 0));
    assert_false(match("\"a,b\"", "\"a\"", 0));
    assert_false(match("\"a,b\"", "\"b\"", 0));
    /* obs-text is allowed, and compared byte for byte */
    assert_true(match("\"caf\xc3\xa9\"", "\"caf\xc3\xa9\"", 0));
    /* empty opaque tags are tags */
    assert_true(match("\"\"", "\"\"", 0));
    assert_false(match("\"\"", "\"abc\"", 0));
    /* our own tag unparsable: nothing matches it but "*" */
    assert_false(match("abc", "abc", 1));
    assert_true(match("*", "abc", 1));
    assert_false(tt_etag_match(NULL, 0, "\"abc\"", 5, 1));
}

/* Every prefix of a list, without a NUL after it: no read past the end */
static void test_etag_match_bounds(void **state)
{
    static const char list[] = "W/\"abc\" , \"def\",\"abc\"";
    size_t len;

    (void)state;
    for (len = 0; len <= sizeof list - 1; len++) {
        char *c = copy_of(list, len);
        int weak = tt_etag_match(c, len, "\"abc\"", 5, 1);
        int strong = tt_etag_match(c, len, "\"abc\"", 5, 0);

        /* weakly it matches as soon as W/"abc" is whole */
        assert_int_equal(weak, len >= 7);
        assert_int_equal(strong, len == sizeof list - 1);
        free(c);
    }
}

/* ---- tt_cond_evaluate ---- */

#define TAG      "\"4d2-17979cfe3d85cd15-2a\""
#define LM       784111777                              /* Sun, 06 Nov 1994 08:49:37 GMT */
#define AT_LM    "Sun, 06 Nov 1994 08:49:37 GMT"
#define BEFORE   "Sun, 06 Nov 1994 08:49:36 GMT"
#define AFTER    "Sun, 06 Nov 1994 08:49:38 GMT"

/* A header set whose values are heap copies without a NUL */
typedef struct {
    tt_cond_headers h;
    char *bufs[4];
} req;

static void set(req *r, int which, const char *v)
{
    size_t len = strlen(v);
    char *c = copy_of(v, len);

    r->bufs[which] = c;
    switch (which) {
    case 0: r->h.if_match = c; r->h.if_match_len = len; break;
    case 1: r->h.if_none_match = c; r->h.if_none_match_len = len; break;
    case 2: r->h.if_modified_since = c; r->h.if_modified_since_len = len; break;
    default: r->h.if_unmodified_since = c; r->h.if_unmodified_since_len = len; break;
    }
}

enum { IM, INM, IMS, IUS };

/* Evaluate against TAG / LM; NULL means the header is absent. */
static tt_cond_result eval(const char *im, const char *inm, const char *ims, const char *ius,
                           int get_or_head)
{
    req r;
    tt_cond_result res;
    int i;

    memset(&r, 0, sizeof r);
    if (im)
        set(&r, IM, im);
    if (inm)
        set(&r, INM, inm);
    if (ims)
        set(&r, IMS, ims);
    if (ius)
        set(&r, IUS, ius);
    res = tt_cond_evaluate(&r.h, get_or_head, TAG, strlen(TAG), LM);
    for (i = 0; i < 4; i++)
        free(r.bufs[i]);
    return res;
}

static void test_evaluate_none(void **state)
{
    (void)state;
    assert_int_equal(eval(NULL, NULL, NULL, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, NULL, NULL, 0), TT_COND_PROCEED);
}

static void test_evaluate_if_match(void **state)
{
    (void)state;
    assert_int_equal(eval(TAG, NULL, NULL, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval("*", NULL, NULL, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval("\"x\", " TAG, NULL, NULL, NULL, 0), TT_COND_PROCEED);
    assert_int_equal(eval("\"x\"", NULL, NULL, NULL, 1), TT_COND_FAILED);
    assert_int_equal(eval("\"x\"", NULL, NULL, NULL, 0), TT_COND_FAILED);
    assert_int_equal(eval("W/" TAG, NULL, NULL, NULL, 1), TT_COND_FAILED);   /* strong */
    assert_int_equal(eval("", NULL, NULL, NULL, 1), TT_COND_FAILED);
    assert_int_equal(eval("garbage", NULL, NULL, NULL, 1), TT_COND_FAILED);
    /* If-Match decides; If-Unmodified-Since is then not looked at */
    assert_int_equal(eval(TAG, NULL, NULL, BEFORE, 1), TT_COND_PROCEED);
    assert_int_equal(eval("\"x\"", NULL, NULL, AFTER, 1), TT_COND_FAILED);
}

static void test_evaluate_if_unmodified_since(void **state)
{
    (void)state;
    assert_int_equal(eval(NULL, NULL, NULL, AT_LM, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, NULL, AFTER, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, NULL, BEFORE, 1), TT_COND_FAILED);
    assert_int_equal(eval(NULL, NULL, NULL, BEFORE, 0), TT_COND_FAILED);
    assert_int_equal(eval(NULL, NULL, NULL, "Sunday, 06-Nov-94 08:49:36 GMT", 1),
                     TT_COND_FAILED);
    assert_int_equal(eval(NULL, NULL, NULL, "Sun Nov  6 08:49:36 1994", 1), TT_COND_FAILED);
    /* a date that does not parse is ignored */
    assert_int_equal(eval(NULL, NULL, NULL, "yesterday", 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, NULL, "", 1), TT_COND_PROCEED);
}

static void test_evaluate_if_none_match(void **state)
{
    (void)state;
    assert_int_equal(eval(NULL, TAG, NULL, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(NULL, TAG, NULL, NULL, 0), TT_COND_FAILED);
    assert_int_equal(eval(NULL, "W/" TAG, NULL, NULL, 1), TT_COND_NOT_MODIFIED);  /* weak */
    assert_int_equal(eval(NULL, "\"x\", W/" TAG, NULL, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(NULL, "*", NULL, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(NULL, "*", NULL, NULL, 0), TT_COND_FAILED);
    assert_int_equal(eval(NULL, "\"x\"", NULL, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, "\"x\"", NULL, NULL, 0), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, "", NULL, NULL, 1), TT_COND_PROCEED);
    /* present, If-Modified-Since is ignored, whichever way it would go */
    assert_int_equal(eval(NULL, "\"x\"", AFTER, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, "\"x\"", AT_LM, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, "", AT_LM, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, TAG, BEFORE, NULL, 1), TT_COND_NOT_MODIFIED);
}

static void test_evaluate_if_modified_since(void **state)
{
    (void)state;
    assert_int_equal(eval(NULL, NULL, AT_LM, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(NULL, NULL, AFTER, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(NULL, NULL, BEFORE, NULL, 1), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, "Sunday, 06-Nov-94 08:49:37 GMT", NULL, 1),
                     TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(NULL, NULL, "Sun Nov  6 08:49:37 1994", NULL, 1),
                     TT_COND_NOT_MODIFIED);
    /* GET and HEAD only */
    assert_int_equal(eval(NULL, NULL, AT_LM, NULL, 0), TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, AFTER, NULL, 0), TT_COND_PROCEED);
    /* a date that does not parse is ignored */
    assert_int_equal(eval(NULL, NULL, "Sun, 06 Nov 1994 08:49:37 GMT ", NULL, 1),
                     TT_COND_PROCEED);
    assert_int_equal(eval(NULL, NULL, "0", NULL, 1), TT_COND_PROCEED);
}

static void test_evaluate_order(void **state)
{
    (void)state;
    /* a failed precondition wins over a cache hit */
    assert_int_equal(eval("\"x\"", TAG, NULL, NULL, 1), TT_COND_FAILED);
    assert_int_equal(eval(NULL, TAG, NULL, BEFORE, 1), TT_COND_FAILED);
    assert_int_equal(eval(NULL, NULL, AT_LM, BEFORE, 1), TT_COND_FAILED);
    /* preconditions met: then the cache validators */
    assert_int_equal(eval(TAG, TAG, NULL, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(TAG, TAG, NULL, NULL, 0), TT_COND_FAILED);
    assert_int_equal(eval(NULL, NULL, AT_LM, AT_LM, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval("*", NULL, AFTER, NULL, 1), TT_COND_NOT_MODIFIED);
    assert_int_equal(eval(TAG, "\"x\"", AT_LM, AFTER, 1), TT_COND_PROCEED);
    /* all four, all passing, If-None-Match not matching: proceed */
    assert_int_equal(eval(TAG, "\"x\"", AFTER, AT_LM, 1), TT_COND_PROCEED);
}

/* ---- If-Range ---- */

static int if_range(const char *v)
{
    size_t len = strlen(v);
    char *c = copy_of(v, len);
    int rc = tt_cond_if_range(c, len, TAG, strlen(TAG), LM);

    free(c);
    return rc;
}

static void test_if_range(void **state)
{
    (void)state;
    assert_int_equal(if_range(TAG), 1);
    assert_int_equal(if_range("W/" TAG), 0);                /* never a weak tag */
    assert_int_equal(if_range("\"x\""), 0);
    assert_int_equal(if_range("\"4d2-17979cfe3d85cd15-2a-br\""), 0);
    assert_int_equal(if_range(TAG ", \"x\""), 0);           /* one tag, not a list */
    assert_int_equal(if_range(TAG "x"), 0);
    assert_int_equal(if_range("\"4d2-17979cfe3d85cd15-2a"), 0);
    assert_int_equal(if_range("\""), 0);
    assert_int_equal(if_range("W/"), 0);
    assert_int_equal(if_range("*"), 0);
    assert_int_equal(if_range(""), 0);
    /* a date must be exactly Last-Modified */
    assert_int_equal(if_range(AT_LM), 1);
    assert_int_equal(if_range("Sunday, 06-Nov-94 08:49:37 GMT"), 1);
    assert_int_equal(if_range("Sun Nov  6 08:49:37 1994"), 1);
    assert_int_equal(if_range(BEFORE), 0);
    assert_int_equal(if_range(AFTER), 0);
    assert_int_equal(if_range("Sun, 06 Nov 1994 08:49:37 GMT x"), 0);
    assert_int_equal(if_range("tomorrow"), 0);
    assert_int_equal(tt_cond_if_range(NULL, 0, TAG, strlen(TAG), LM), 0);
}

/* Every prefix of an If-Range value: only the whole one honours the Range */
static void test_if_range_bounds(void **state)
{
    static const char *const values[] = { TAG, AT_LM };
    size_t i, len;

    (void)state;
    for (i = 0; i < 2; i++) {
        size_t full = strlen(values[i]);

        for (len = 0; len <= full; len++) {
            char *c = copy_of(values[i], len);

            assert_int_equal(tt_cond_if_range(c, len, TAG, strlen(TAG), LM), len == full);
            free(c);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_format),
        cmocka_unit_test(test_etag_format_small_buffer),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_date_three_forms),
        cmocka_unit_test(test_date_two_digit_year),
        cmocka_unit_test(test_date_invalid),
        cmocka_unit_test(test_date_truncated),
        cmocka_unit_test(test_date_round_trip),
        cmocka_unit_test(test_etag_match_strong),
        cmocka_unit_test(test_etag_match_weak),
        cmocka_unit_test(test_etag_match_star),
        cmocka_unit_test(test_etag_match_malformed),
        cmocka_unit_test(test_etag_match_bounds),
        cmocka_unit_test(test_evaluate_none),
        cmocka_unit_test(test_evaluate_if_match),
        cmocka_unit_test(test_evaluate_if_unmodified_since),
        cmocka_unit_test(test_evaluate_if_none_match),
        cmocka_unit_test(test_evaluate_if_modified_since),
        cmocka_unit_test(test_evaluate_order),
        cmocka_unit_test(test_if_range),
        cmocka_unit_test(test_if_range_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
