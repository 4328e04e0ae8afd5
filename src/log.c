/* Error log and access log.
 *
 * Both are plain file descriptors written with one write(2) per line: no
 * stdio buffer to lose in a crash or to flush before fork, and with O_APPEND
 * a line from one worker never lands in the middle of another's. Lines are
 * built on the stack; the access log, written once per request, allocates
 * nothing.
 *
 * Error log:  2026/11/22 10:00:00 [error] 1234#worker 1: message
 * Access log: nginx's "combined" plus $request_time, or one JSON object per line.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* dup3, tm_gmtoff */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

#define TT_LOG_LINE_MAX    4096     /* an error-log line; longer messages are cut */
#define TT_ACCESS_LINE_MAX 8192     /* an access-log line */

/* A log that is a file is reopened by path on USR1; stderr and stdout are not. */
typedef struct {
    int   fd;                       /* -1: off */
    char *path;                     /* NULL: stderr / stdout / off */
    const char *what;               /* "error log", for messages */
} tt_logfile;

static tt_logfile tt_errlog = { STDERR_FILENO, NULL, "error log" };
static tt_logfile tt_acclog = { -1, NULL, "access log" };
static int  tt_log_min = TT_LOG_INFO;
static int  tt_acc_format = TT_ACCESS_COMBINED;
static char tt_log_ident[32] = "tutti";

static const char *const tt_level_names[] = { "debug", "info", "warn", "error" };

int tt_log_level_from(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, tt_level_names[i]) == 0)
            return i;
    }
    return -1;
}

void tt_log_set_ident(const char *ident)
{
    snprintf(tt_log_ident, sizeof(tt_log_ident), "%s", ident);
}

/* write all of buf, retrying short writes and EINTR; a log that cannot be
 * written is dropped rather than allowed to stop the server */
static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void file_close(tt_logfile *f)
{
    if (f->path != NULL && f->fd >= 0)
        close(f->fd);
    free(f->path);
    f->path = NULL;
}

/* ---- error log ---- */

/* The last error-level message, so a worker whose module failed to start
 * can hand the reason to the master (init_worker returns only a status). */
static char tt_last_error[512];

const char *tt_log_last_error(void)
{
    return tt_last_error[0] ? tt_last_error : NULL;
}

void tt_vlog(int level, const char *fmt, va_list ap)
{
    char line[TT_LOG_LINE_MAX];
    int saved = errno;                  /* callers log, then look at errno */
    struct tm tm;
    time_t now;

    if (level < TT_LOG_DEBUG || level > TT_LOG_ERROR)
        level = TT_LOG_ERROR;
    if (level == TT_LOG_ERROR) {
        va_list copy;
        va_copy(copy, ap);
        vsnprintf(tt_last_error, sizeof(tt_last_error), fmt, copy);
        va_end(copy);
        errno = saved;
    }
    if (level < tt_log_min || tt_errlog.fd < 0)
        return;

    now = time(NULL);
    localtime_r(&now, &tm);
    int n = snprintf(line, sizeof(line), "%04d/%02d/%02d %02d:%02d:%02d [%s] %ld#%s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec,
                     tt_level_names[level], (long)getpid(), tt_log_ident);
    size_t len = (size_t)n;
    errno = saved;                      /* so %m works */
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    if (n > 0)
        len += (size_t)n;
    if (len > sizeof(line) - 1)         /* cut: vsnprintf stopped at the end */
        len = sizeof(line) - 1;
    while (len > 0 && line[len - 1] == '\n')
        len--;
    line[len++] = '\n';
    write_all(tt_errlog.fd, line, len);
    errno = saved;
}

void tt_log(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tt_vlog(level, fmt, ap);
    va_end(ap);
}

/* ---- opening and reopening ---- */

/* "stderr"/"stdout" name the process's own streams, NULL means off. */
static int file_open(tt_logfile *f, const char *spec, int std_fd, const char *std_name,
                     tt_errbuf *err)
{
    f->path = NULL;
    if (spec == NULL) {
        f->fd = -1;
        return 0;
    }
    if (strcmp(spec, std_name) == 0) {
        f->fd = std_fd;
        return 0;
    }
    f->fd = open_log(spec);
    if (f->fd < 0) {
        if (err)
            snprintf(err->msg, sizeof(err->msg), "cannot open %s %s: %s",
                     f->what, spec, strerror(errno));
        return -1;
    }
    f->path = strdup(spec);
    if (f->path == NULL) {
        close(f->fd);
        f->fd = -1;
        if (err)
            snprintf(err->msg, sizeof(err->msg), "cannot open %s %s: out of memory",
                     f->what, spec);
        return -1;
    }
    return 0;
}

/* Opens both logs before it touches the current ones: after a failure (say,
 * on reload) the old logs are still the ones in use. */
int tt_log_open(const tt_config *cf, tt_errbuf *err)
{
    tt_logfile e = { -1, NULL, "error log" }, a = { -1, NULL, "access log" };

    if (file_open(&e, cf->error_log ? cf->error_log : "stderr", STDERR_FILENO,
                  "stderr", err) < 0)
        return -1;
    if (file_open(&a, cf->access_log, STDOUT_FILENO, "stdout", err) < 0) {
        file_close(&e);
        return -1;
    }
    file_close(&tt_errlog);
    file_close(&tt_acclog);
    tt_errlog = e;
    tt_acclog = a;
    tt_log_min = cf->log_level;
    tt_acc_format = cf->access_log_format;
    return 0;
}

/* Reopen a file by path onto the same descriptor number (dup3 swaps it in
 * atomically, so a thread writing at that moment writes to one file or the
 * other, never to a closed fd). */
static void file_reopen(tt_logfile *f)
{
    if (f->path == NULL)
        return;
    int fd = open_log(f->path);
    if (fd < 0) {
        tt_log(TT_LOG_ERROR, "cannot reopen %s %s: %s; still writing to the old file",
               f->what, f->path, strerror(errno));
        return;
    }
    if (dup3(fd, f->fd, O_CLOEXEC) < 0)
        tt_log(TT_LOG_ERROR, "cannot reopen %s %s: %s; still writing to the old file",
               f->what, f->path, strerror(errno));
    close(fd);
}

void tt_log_reopen(void)
{
    file_reopen(&tt_errlog);
    file_reopen(&tt_acclog);
}

void tt_log_close(void)
{
    file_close(&tt_errlog);
    file_close(&tt_acclog);
    tt_errlog.fd = STDERR_FILENO;
    tt_acclog.fd = -1;
    tt_log_min = TT_LOG_INFO;
}

/* ---- access log ---- */

/* A bounded writer: it stops at `end` and never writes half an escape. */
typedef struct {
    char *p, *end;
} tt_out;

static void out_mem(tt_out *o, const char *s, size_t n)
{
    if ((size_t)(o->end - o->p) < n)
        n = (size_t)(o->end - o->p);
    memcpy(o->p, s, n);
    o->p += n;
}

static void out_str(tt_out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_char(tt_out *o, char c)
{
    if (o->p < o->end)
        *o->p++ = c;
}

static void out_u64(tt_out *o, uint64_t v)
{
    char tmp[24], *t = tmp + sizeof(tmp);

    do {
        *--t = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    out_mem(o, t, (size_t)(tmp + sizeof(tmp) - t));
}

static const char tt_hex[] = "0123456789ABCDEF";
static const char tt_hexl[] = "0123456789abcdef";

/* A cut string ends in "..." (as much of it as fits before stop). */
static void out_ellipsis(tt_out *o, const char *stop)
{
    size_t n = (size_t)(stop - o->p) < 3 ? (size_t)(stop - o->p) : 3;
    memcpy(o->p, "...", n);
    o->p += n;
}

static char *out_stop(const tt_out *o, size_t max)
{
    return (size_t)(o->end - o->p) > max ? o->p + max : o->end;
}

/* combined: like nginx, '"', '\' and bytes outside printable ASCII become
 * \xHH, so a line can always be split on spaces and quotes. At most max
 * bytes of output; a cut string ends in "...". */
static void out_log_escaped(tt_out *o, const char *s, size_t max)
{
    char *stop = out_stop(o, max);

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int esc = c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
        /* while more follows, keep room to say that it was cut */
        size_t need = (esc ? 4 : 1) + (s[1] ? 3 : 0);
        if ((size_t)(stop - o->p) < need) {
            out_ellipsis(o, stop);
            return;
        }
        if (esc) {
            o->p[0] = '\\';
            o->p[1] = 'x';
            o->p[2] = tt_hex[c >> 4];
            o->p[3] = tt_hex[c & 15];
            o->p += 4;
        } else {
            *o->p++ = (char)c;
        }
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when s does not
 * start one: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];

    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80
               && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* JSON: a string body (without its quotes). Valid UTF-8 passes through;
 * a byte that is not part of valid UTF-8 becomes \u00XX, so the line is
 * always valid JSON. A cut string ends in "...". */
static void out_json_escaped(tt_out *o, const char *str, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    char *stop = out_stop(o, max);
    char esc[6];

    while (*s) {
        const char *put = esc;
        size_t n, adv = 1;
        unsigned char c = *s;

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            put = (const char *)s;
            n = 1;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            n = 2;
        } else if (c >= 0x80 && (adv = utf8_len(s)) != 0) {
            put = (const char *)s;
            n = adv;
        } else {
            memcpy(esc, "\\u00", 4);
            esc[4] = tt_hexl[c >> 4];
            esc[5] = tt_hexl[c & 15];
            n = 6;
            adv = 1;
        }
        if ((size_t)(stop - o->p) < n + (s[adv] ? 3 : 0)) {
            out_ellipsis(o, stop);
            return;
        }
        memcpy(o->p, put, n);
        o->p += n;
        s += adv;
    }
}

static const char tt_mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Local time both ways, cached per second and per thread: one localtime_r
 * per second instead of one per request. */
typedef struct {
    time_t when;
    char   clf[64];                     /* 22/Nov/2026:10:00:00 +0000 */
    char   iso[64];                     /* 2026-11-22T10:00:00+00:00 */
} tt_logtime;

static __thread tt_logtime tt_ltime = { (time_t)-1, "", "" };

static const tt_logtime *log_time(uint64_t usec)
{
    time_t t = (time_t)(usec / 1000000);
    struct tm tm;

    if (t == tt_ltime.when)
        return &tt_ltime;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;       /* minutes east of UTC */
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    int oh = (int)(off / 60 % 100), om = (int)(off % 60);
    snprintf(tt_ltime.clf, sizeof(tt_ltime.clf), "%02d/%s/%04d:%02d:%02d:%02d %c%02d%02d",
             tm.tm_mday, tt_mon[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec, sign, oh, om);
    snprintf(tt_ltime.iso, sizeof(tt_ltime.iso), "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, sign, oh, om);
    tt_ltime.when = t;
    return &tt_ltime;
}

/* seconds with millisecond precision, as nginx's $request_time: 0.001 */
static void out_duration(tt_out *o, uint64_t usec)
{
    uint64_t ms = usec / 1000;
    char frac[4] = { (char)('0' + ms % 1000 / 100), (char)('0' + ms % 100 / 10),
                     (char)('0' + ms % 10), '\0' };

    out_u64(o, ms / 1000);
    out_char(o, '.');
    out_mem(o, frac, 3);
}

static void out_protocol(tt_out *o, int version)
{
    if (version <= 0)
        return;
    out_str(o, "HTTP/");
    out_u64(o, (uint64_t)(version / 10));
    out_char(o, '.');
    out_u64(o, (uint64_t)(version % 10));
}

static void format_combined(tt_out *o, const tt_access_entry *e, size_t budget)
{
    out_log_escaped(o, e->remote_addr ? e->remote_addr : "-", 64);
    out_str(o, " - - [");
    out_str(o, log_time(e->time_usec)->clf);
    out_str(o, "] \"");
    if (e->method == NULL && e->target == NULL) {
        out_char(o, '-');               /* nothing readable came in */
    } else {
        out_log_escaped(o, e->method ? e->method : "-", 64);
        out_char(o, ' ');
        out_log_escaped(o, e->target ? e->target : "-", budget / 2);
        if (e->version > 0) {
            out_char(o, ' ');
            out_protocol(o, e->version);
        }
    }
    out_str(o, "\" ");
    out_u64(o, (uint64_t)(e->status > 0 ? e->status : 0));
    out_char(o, ' ');
    out_u64(o, e->bytes_sent);
    out_str(o, " \"");
    out_log_escaped(o, e->referer ? e->referer : "-", budget / 8);
    out_str(o, "\" \"");
    out_log_escaped(o, e->user_agent ? e->user_agent : "-", budget / 8);
    out_str(o, "\" ");
    out_duration(o, e->duration_usec);
    for (const tt_log_field *f = e->fields; f != NULL; f = f->next) {
        out_char(o, ' ');
        out_str(o, f->key);
        out_char(o, '=');
        /* a value with a space (a list of upstreams) is quoted, so the
         * line still splits into fields */
        int quote = f->value[0] == '\0' || strchr(f->value, ' ') != NULL;
        if (quote)
            out_char(o, '"');
        out_log_escaped(o, f->value, budget / 8);
        if (quote)
            out_char(o, '"');
    }
}

static void json_key(tt_out *o, const char *key, int first)
{
    if (!first)
        out_char(o, ',');
    out_char(o, '"');
    out_str(o, key);
    out_str(o, "\":");
}

static void json_string(tt_out *o, const char *key, const char *v, size_t max)
{
    json_key(o, key, 0);
    out_char(o, '"');
    if (v)
        out_json_escaped(o, v, max);
    out_char(o, '"');
}

static void format_json(tt_out *o, const tt_access_entry *e, size_t budget)
{
    char proto[16];
    tt_out po = { proto, proto + sizeof(proto) - 1 };

    out_protocol(&po, e->version);
    *po.p = '\0';

    out_char(o, '{');
    json_key(o, "time", 1);
    out_char(o, '"');
    out_str(o, log_time(e->time_usec)->iso);
    out_char(o, '"');
    json_string(o, "remote_addr", e->remote_addr, 64);
    json_string(o, "method", e->method, 64);
    json_string(o, "target", e->target, budget / 2);
    json_string(o, "protocol", proto, sizeof(proto));
    json_key(o, "status", 0);
    out_u64(o, (uint64_t)(e->status > 0 ? e->status : 0));
    json_key(o, "bytes", 0);
    out_u64(o, e->bytes_sent);
    json_string(o, "referer", e->referer, budget / 8);
    json_string(o, "user_agent", e->user_agent, budget / 8);
    json_string(o, "host", e->host, budget / 16);
    json_key(o, "request_time", 0);
    out_duration(o, e->duration_usec);
    for (const tt_log_field *f = e->fields; f != NULL; f = f->next)
        json_string(o, f->key, f->value, budget / 8);
    out_char(o, '}');
}

/* The fixed parts of a line (numbers, time, keys) take well under this. */
#define TT_ACCESS_FIXED 384

size_t tt_access_format(const tt_access_entry *e, int format, char *buf, size_t len)
{
    if (len < 2) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    /* keep room for the newline and a NUL */
    tt_out o = { buf, buf + len - 2 };
    size_t budget = len > TT_ACCESS_FIXED + 2 ? len - TT_ACCESS_FIXED - 2 : 0;

    if (format == TT_ACCESS_JSON)
        format_json(&o, e, budget);
    else
        format_combined(&o, e, budget);
    *o.p++ = '\n';
    *o.p = '\0';
    return (size_t)(o.p - buf);
}

int tt_access_log_on(void)
{
    return tt_acclog.fd >= 0;
}

void tt_access_log(const tt_access_entry *e)
{
    char line[TT_ACCESS_LINE_MAX];

    if (tt_acclog.fd < 0)
        return;
    size_t n = tt_access_format(e, tt_acc_format, line, sizeof(line));
    write_all(tt_acclog.fd, line, n);
}
