/* The Date header (IMF-fixdate, RFC 9110 5.6.7). Every response carries one,
 * so the string is cached and rebuilt only when the second changes. Formatted
 * by hand: strftime() would follow the locale and costs more. */
#include <string.h>
#include <time.h>
#include "http/http.h"

static const char tt_wday[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char tt_month[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static char *put2(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

static char *put3(char *p, const char *s)
{
    *p++ = s[0];
    *p++ = s[1];
    *p++ = s[2];
    return p;
}

size_t tt_http_date_format(int64_t t, char *buf)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char *p = buf;

    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        tt = 0;                         /* out of range: the epoch rather than garbage */
        gmtime_r(&tt, &tm);
    }
    int year = tm.tm_year + 1900;

    p = put3(p, tt_wday[tm.tm_wday]);
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, tm.tm_mday);
    *p++ = ' ';
    p = put3(p, tt_month[tm.tm_mon]);
    *p++ = ' ';
    p = put2(p, year / 100);
    p = put2(p, year % 100);
    *p++ = ' ';
    p = put2(p, tm.tm_hour);
    *p++ = ':';
    p = put2(p, tm.tm_min);
    *p++ = ':';
    p = put2(p, tm.tm_sec);
    memcpy(p, " GMT", 5);              /* with its NUL */
    p += 4;
    return (size_t)(p - buf);
}

/* Per thread, so a Python thread that asks for the date never races the
 * I/O thread's copy. */
static __thread time_t tt_date_when = (time_t)-1;
static __thread char   tt_date_buf[32];

const char *tt_http_date(void)
{
    time_t now = time(NULL);

    if (now != tt_date_when) {
        tt_http_date_format((int64_t)now, tt_date_buf);
        tt_date_when = now;
    }
    return tt_date_buf;
}
