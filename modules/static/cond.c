/* static — validators (ETag, Last-Modified) and the conditional request
 * headers that test them (RFC 9110 8.8, 13).
 *
 * Dates are formatted and parsed by hand, in UTC: strftime and strptime
 * follow the locale (day and month names) and the time zone, and an HTTP
 * date must do neither. Header values are not NUL-terminated: every scan
 * is bounded by its length. */
#include "cond.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- ETag ---- */

size_t tt_etag_format(char *buf, size_t cap, uint64_t size, int64_t mtime_sec,
                      long mtime_nsec, uint64_t ino, const char *suffix)
{
    /* Unsigned arithmetic: a time before 1970 wraps instead of being
     * undefined, and still gives one tag per instant. */
    uint64_t mtime_ns = (uint64_t)mtime_sec * UINT64_C(1000000000) + (uint64_t)mtime_nsec;
    int w;

    if (cap == 0)
        return 0;
    w = snprintf(buf, cap, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "%s%s\"",
                 size, mtime_ns, ino, suffix ? "-" : "", suffix ? suffix : "");
    if (w < 0 || (size_t)w >= cap) {    /* a cut tag would be a wrong tag */
        buf[0] = '\0';
        return 0;
    }
    return (size_t)w;
}

/* ---- calendar, proleptic Gregorian, UTC ---- */

static const char day_names[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const long_day_names[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"
};
static const char month_names[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

#define SECS_PER_DAY 86400
/* IMF-fixdate has a four-digit year: times outside 0001-01-01T00:00:00 ..
 * 9999-12-31T23:59:59 are written as the nearest end. */
#define FIRST_FORMATTABLE INT64_C(-62135596800)
#define LAST_FORMATTABLE  INT64_C(253402300799)

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a date. Counting in 400-year eras that start on
 * March 1st puts the leap day last in each year, so a year's day number
 * does not depend on whether it is a leap year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    if (m <= 2)
        y--;
    era = floor_div(y, 400);
    yoe = y - era * 400;                                    /* 0..399 */
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  /* 0..365, from March 1st */
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            /* 0..146096 */
    return era * 146097 + doe - 719468;     /* 719468: days from 0000-03-01 to 1970-01-01 */
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- formatting ---- */

static char *put2(char *p, int v)
{
    *p++ = (char)('0' + v / 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void tt_http_date_format(int64_t t, char *buf)
{
    int64_t days, secs, year;
    int month, day;
    char *p = buf;

    if (t < FIRST_FORMATTABLE)
        t = FIRST_FORMATTABLE;
    if (t > LAST_FORMATTABLE)
        t = LAST_FORMATTABLE;
    days = floor_div(t, SECS_PER_DAY);
    secs = t - days * SECS_PER_DAY;
    civil_from_days(days, &year, &month, &day);

    /* 1970-01-01 was a Thursday */
    memcpy(p, day_names[(days % 7 + 7 + 4) % 7], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, day);
    *p++ = ' ';
    memcpy(p, month_names[month - 1], 3);
    p += 3;
    *p++ = ' ';
    p = put2(p, (int)(year / 100));
    p = put2(p, (int)(year % 100));
    *p++ = ' ';
    p = put2(p, (int)(secs / 3600));
    *p++ = ':';
    p = put2(p, (int)(secs / 60 % 60));
    *p++ = ':';
    p = put2(p, (int)(secs % 60));
    memcpy(p, " GMT", 5);               /* with the NUL: 29 + 1 bytes */
}

/* ---- parsing ---- */

typedef struct {
    const char *p, *end;
} cursor;

static int eat_char(cursor *c, char ch)
{
    if (c->p == c->end || *c->p != ch)
        return 0;
    c->p++;
    return 1;
}

static int eat_str(cursor *c, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

/* Exactly n digits. */
static int eat_digits(cursor *c, int n, int *v)
{
    int i;

    if (c->end - c->p < n)
        return 0;
    *v = 0;
    for (i = 0; i < n; i++) {
        char ch = c->p[i];

        if (ch < '0' || ch > '9')
            return 0;
        *v = *v * 10 + (ch - '0');
    }
    c->p += n;
    return 1;
}

/* One of the names in a table; RFC 9110 5.6.7: HTTP-date is case-sensitive.
 * Which day it names is not checked against the date: a wrong weekday says
 * nothing useful, and the date alone decides. */
static int eat_day_name(cursor *c)
{
    int i;

    for (i = 0; i < 7; i++)
        if (eat_str(c, day_names[i]))
            return 1;
    return 0;
}

static int eat_long_day_name(cursor *c)
{
    int i;

    for (i = 0; i < 7; i++)
        if (eat_str(c, long_day_names[i]))
            return 1;
    return 0;
}

static int eat_month(cursor *c, int *month)
{
    int i;

    for (i = 0; i < 12; i++)
        if (eat_str(c, month_names[i])) {
            *month = i + 1;
            return 1;
        }
    return 0;
}

/* "HH:MM:SS". Second 60 is a leap second, which IMF allows. */
static int eat_time(cursor *c, int *h, int *m, int *s)
{
    return eat_digits(c, 2, h) && eat_char(c, ':') && eat_digits(c, 2, m) &&
           eat_char(c, ':') && eat_digits(c, 2, s) &&
           *h <= 23 && *m <= 59 && *s <= 60;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf(cursor c, int64_t *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int year;

    if (!(eat_day_name(&c) && eat_str(&c, ", ") && eat_digits(&c, 2, d) && eat_char(&c, ' ') &&
          eat_month(&c, mo) && eat_char(&c, ' ') && eat_digits(&c, 4, &year) &&
          eat_char(&c, ' ') && eat_time(&c, h, mi, s) && eat_str(&c, " GMT")))
        return 0;
    *y = year;
    return c.p == c.end;
}

/* RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the
 * most recent past year with those digits. Judged by the calendar year. */
static int64_t expand_two_digit_year(int yy)
{
    int64_t now = (int64_t)time(NULL), year, y;
    int m, d;

    civil_from_days(floor_div(now, SECS_PER_DAY), &year, &m, &d);
    y = year - year % 100 + yy;

    if (y > year + 50)
        y -= 100;
    else if (y + 100 <= year + 50)
        y += 100;
    return y;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT" */
static int parse_rfc850(cursor c, int64_t *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int yy;

    if (!(eat_long_day_name(&c) && eat_str(&c, ", ") && eat_digits(&c, 2, d) &&
          eat_char(&c, '-') && eat_month(&c, mo) && eat_char(&c, '-') &&
          eat_digits(&c, 2, &yy) && eat_char(&c, ' ') && eat_time(&c, h, mi, s) &&
          eat_str(&c, " GMT") && c.p == c.end))
        return 0;
    *y = expand_two_digit_year(yy);
    return 1;
}

/* "Sun Nov  6 08:49:37 1994": the day is two digits or a space and one. */
static int parse_asctime(cursor c, int64_t *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int year;

    if (!(eat_day_name(&c) && eat_char(&c, ' ') && eat_month(&c, mo) && eat_char(&c, ' ')))
        return 0;
    if (!(eat_char(&c, ' ') ? eat_digits(&c, 1, d) : eat_digits(&c, 2, d)))
        return 0;
    if (!(eat_char(&c, ' ') && eat_time(&c, h, mi, s) && eat_char(&c, ' ') &&
          eat_digits(&c, 4, &year)))
        return 0;
    *y = year;
    return c.p == c.end;
}

int tt_http_date_parse(const char *s, size_t len, int64_t *t)
{
    cursor c;
    int64_t year;
    int month, day, hour, min, sec;

    if (s == NULL)
        return -1;
    c.p = s;
    c.end = s + len;
    if (!parse_imf(c, &year, &month, &day, &hour, &min, &sec) &&
        !parse_rfc850(c, &year, &month, &day, &hour, &min, &sec) &&
        !parse_asctime(c, &year, &month, &day, &hour, &min, &sec))
        return -1;
    if (day < 1 || day > days_in_month(year, month))
        return -1;
    *t = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + min * 60 + sec;
    return 0;
}

/* ---- entity-tags ---- */

typedef struct {
    int         weak;
    const char *opaque;         /* from the opening quote to the closing one */
    size_t      len;
} entity_tag;

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* etagc = %x21 / %x23-7E / obs-text */
static int is_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, at c->p. */
static int eat_entity_tag(cursor *c, entity_tag *tag)
{
    const char *q;

    tag->weak = eat_str(c, "W/");
    if (c->p == c->end || *c->p != '"')
        return 0;
    for (q = c->p + 1; q < c->end && is_etagc((unsigned char)*q); q++)
        ;
    if (q == c->end || *q != '"')
        return 0;
    tag->opaque = c->p;
    tag->len = (size_t)(q + 1 - c->p);
    c->p = q + 1;
    return 1;
}

/* RFC 9110 8.8.3.2: strong comparison needs both tags strong; weak
 * comparison looks at the opaque tags only. */
static int tags_equal(const entity_tag *a, const entity_tag *b, int weak)
{
    if (!weak && (a->weak || b->weak))
        return 0;
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

static void skip_ows(cursor *c)
{
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
}

/* The whole value is one entity-tag, OWS around it allowed. */
static int parse_one_tag(const char *s, size_t len, entity_tag *tag)
{
    cursor c = { s, s + len };

    skip_ows(&c);
    if (!eat_entity_tag(&c, tag))
        return 0;
    skip_ows(&c);
    return c.p == c.end;
}

int tt_etag_match(const char *list, size_t len, const char *etag, size_t etag_len,
                  int weak)
{
    cursor c;
    entity_tag ours, theirs;

    if (list == NULL || etag == NULL)
        return 0;
    c.p = list;
    c.end = list + len;

    /* "*" stands for the whole field value, never for one list element */
    skip_ows(&c);
    if (eat_char(&c, '*')) {
        skip_ows(&c);
        if (c.p == c.end)
            return 1;
        c.p = list;
    }
    if (!parse_one_tag(etag, etag_len, &ours))
        return 0;

    while (c.p < c.end) {
        if (is_ows(*c.p) || *c.p == ',') {
            c.p++;
            continue;
        }
        if (eat_entity_tag(&c, &theirs)) {
            skip_ows(&c);
            if ((c.p == c.end || *c.p == ',') && tags_equal(&theirs, &ours, weak))
                return 1;
        }
        /* a malformed element matches nothing: on to the next comma */
        while (c.p < c.end && *c.p != ',')
            c.p++;
    }
    return 0;
}

/* ---- conditional requests ---- */

tt_cond_result tt_cond_evaluate(const tt_cond_headers *h, int get_or_head,
                                const char *etag, size_t etag_len,
                                int64_t last_modified)
{
    int64_t date;

    /* 1. and 2.: the preconditions a client sets to not act on a stale copy */
    if (h->if_match) {
        if (!tt_etag_match(h->if_match, h->if_match_len, etag, etag_len, 0))
            return TT_COND_FAILED;
    } else if (h->if_unmodified_since &&
               tt_http_date_parse(h->if_unmodified_since, h->if_unmodified_since_len,
                                  &date) == 0 &&
               last_modified > date) {
        return TT_COND_FAILED;
    }

    /* 3. and 4.: the cache validations */
    if (h->if_none_match) {
        if (tt_etag_match(h->if_none_match, h->if_none_match_len, etag, etag_len, 1))
            return get_or_head ? TT_COND_NOT_MODIFIED : TT_COND_FAILED;
    } else if (get_or_head && h->if_modified_since &&
               tt_http_date_parse(h->if_modified_since, h->if_modified_since_len,
                                  &date) == 0 &&
               last_modified <= date) {
        return TT_COND_NOT_MODIFIED;
    }
    return TT_COND_PROCEED;
}

int tt_cond_if_range(const char *value, size_t len, const char *etag, size_t etag_len,
                     int64_t last_modified)
{
    entity_tag theirs, ours;
    int64_t date;

    if (value == NULL || etag == NULL)
        return 0;
    /* An entity-tag starts with DQUOTE or W/; a date never does. */
    if ((len >= 1 && value[0] == '"') || (len >= 2 && value[0] == 'W' && value[1] == '/')) {
        return parse_one_tag(value, len, &theirs) &&
               parse_one_tag(etag, etag_len, &ours) &&
               tags_equal(&theirs, &ours, 0);
    }
    return tt_http_date_parse(value, len, &date) == 0 && date == last_modified;
}
