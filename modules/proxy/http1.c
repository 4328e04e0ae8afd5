/* The upstream's side of HTTP/1.1: its response head and chunked bodies.
 *
 * Pure functions over bytes (unit-tested in tests/unit/proxy). An upstream
 * is trusted more than a client, but not blindly: a head that could be read
 * two ways (two different Content-Lengths, obs-fold, a bare CR, a space
 * before the colon) is refused with a 502 rather than guessed at, because
 * a guess that differs from the next hop's is how responses get smuggled.
 */
#include <string.h>
#include "proxy.h"

static int is_tchar(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        return 1;
    if (c >= 'A' && c <= 'Z')
        return 1;
    if (c >= '0' && c <= '9')
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Is a header name (len bytes) this one, in any case? */
int px_name_is(const char *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && strncasecmp(name, lit, n) == 0;
}

/* Case-insensitive: is token one of the comma-separated elements of list? */
int px_has_token(const char *list, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;

    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(list + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

/* The last element of a Transfer-Encoding list. */
static int last_coding_is_chunked(const char *v, size_t len)
{
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    size_t start = len;
    while (start > 0 && v[start - 1] != ',')
        start--;
    while (start < len && (v[start] == ' ' || v[start] == '\t'))
        start++;
    return len - start == 7 && strncasecmp(v + start, "chunked", 7) == 0;
}

static int parse_length(const char *v, size_t len, int64_t *out)
{
    int64_t n = 0;

    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    *out = n;
    return 0;
}

/* One line ending at LF (CR LF or a lone LF); NULL when the buffer has none. */
static const char *line_end(const char *p, const char *end)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    return lf;
}

static long bad(const char **why, const char *msg)
{
    *why = msg;
    return PX_HEAD_BAD;
}

long px_parse_head(const char *buf, size_t len, px_head *h, const char **why)
{
    const char *p = buf, *end = buf + len;

    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    *why = NULL;

    /* status line: HTTP/1.x SP 3DIGIT [SP reason] */
    const char *lf = line_end(p, end);
    if (lf == NULL)
        return len > 8 && memcmp(buf, "HTTP/1.", len < 7 ? len : 7) != 0
               ? bad(why, "not an HTTP/1.x response") : PX_HEAD_MORE;
    const char *le = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
    if (le - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        return bad(why, "not an HTTP/1.x status line");
    h->version = p[7] == '1' ? 11 : 10;
    if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return bad(why, "no three-digit status");
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (le - p > 12) {
        if (p[12] != ' ')
            return bad(why, "no space after the status");
        h->reason = p + 13;
        h->reason_len = (size_t)(le - (p + 13));
        for (size_t i = 0; i < h->reason_len; i++) {
            unsigned char c = (unsigned char)h->reason[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(why, "a control character in the reason phrase");
        }
    } else {
        h->reason = "";
    }
    p = lf + 1;

    int has_length = 0, keep_alive = 0;
    for (;;) {
        lf = line_end(p, end);
        if (lf == NULL)
            return PX_HEAD_MORE;
        le = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
        if (le == p)
            break;                          /* the empty line: the head ends */
        if (*p == ' ' || *p == '\t')
            return bad(why, "a folded header line");
        const char *colon = p;
        while (colon < le && is_tchar((unsigned char)*colon))
            colon++;
        if (colon == p || colon == le || *colon != ':')
            return bad(why, "a header line without a name and a colon");
        const char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *q = v; q < ve; q++) {
            unsigned char c = (unsigned char)*q;
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(why, "a control character in a header value");
        }
        if (h->nheaders == PX_MAX_HEADERS)
            return bad(why, "more than 100 header lines");
        tt_header *f = &h->headers[h->nheaders++];
        f->name = p;
        f->name_len = (size_t)(colon - p);
        f->value = v;
        f->value_len = (size_t)(ve - v);

        if (px_name_is(f->name, f->name_len, "Content-Length")) {
            int64_t n;
            if (parse_length(f->value, f->value_len, &n) != 0)
                return bad(why, "an invalid Content-Length");
            if (has_length && n != h->content_length)
                return bad(why, "two different Content-Lengths");
            has_length = 1;
            h->content_length = n;
        } else if (px_name_is(f->name, f->name_len, "Transfer-Encoding")) {
            /* several lines form one list: only the last element counts */
            h->chunked = last_coding_is_chunked(f->value, f->value_len);
            h->other_coding = !h->chunked;
        } else if (px_name_is(f->name, f->name_len, "Connection")) {
            if (px_has_token(f->value, f->value_len, "close"))
                h->close = 1;
            if (px_has_token(f->value, f->value_len, "keep-alive"))
                keep_alive = 1;
            if (px_has_token(f->value, f->value_len, "upgrade"))
                h->upgrade = 1;
        }
        p = lf + 1;
    }
    if (h->version == 10 && !keep_alive)
        h->close = 1;
    if (h->chunked || h->other_coding) {
        /* RFC 9112 6.3: Transfer-Encoding overrides Content-Length, and such
         * a message must not leave the connection reusable */
        if (has_length)
            h->close = 1;
        h->content_length = -1;
    }
    return (long)(lf + 1 - buf);
}

enum {
    CH_SIZE = 0,    /* the first hex digit */
    CH_SIZE_MORE,   /* more hex digits */
    CH_EXT,         /* ;extensions up to the line end */
    CH_SIZE_LF,     /* after CR of the size line */
    CH_DATA,
    CH_DATA_CR,     /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER,     /* start of a trailer line (or the final empty line) */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,  /* after CR at the start of a line: the final LF */
    CH_DONE
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int px_chunked_next(px_chunked *st, const char *p, size_t len, size_t *used,
                    const char **data, size_t *dlen)
{
    size_t i = 0;

    *data = NULL;
    *dlen = 0;
    while (i < len) {
        char c = p[i];
        switch (st->state) {
        case CH_SIZE:                           /* a size line starts with a digit */
        case CH_SIZE_MORE: {
            int v = hexval(c);
            if (v >= 0) {
                if (st->left >> 59)
                    return PX_CHUNK_BAD;        /* over 2^63 */
                st->left = st->left * 16 + (uint64_t)v;
                st->state = CH_SIZE_MORE;
            } else if (st->state == CH_SIZE) {
                return PX_CHUNK_BAD;
            } else if (c == ';' || c == ' ' || c == '\t') {
                st->state = CH_EXT;
            } else if (c == '\r') {
                st->state = CH_SIZE_LF;
            } else if (c == '\n') {
                st->state = st->left == 0 ? CH_TRAILER : CH_DATA;
            } else {
                return PX_CHUNK_BAD;
            }
            i++;
            continue;
        }
        case CH_EXT:
            if (c == '\r')
                st->state = CH_SIZE_LF;
            else if (c == '\n')
                st->state = st->left == 0 ? CH_TRAILER : CH_DATA;
            else if ((unsigned char)c < 0x20 && c != '\t')
                return PX_CHUNK_BAD;
            i++;
            continue;
        case CH_SIZE_LF:
            if (c != '\n')
                return PX_CHUNK_BAD;
            i++;
            st->state = st->left == 0 ? CH_TRAILER : CH_DATA;
            continue;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > st->left)
                n = (size_t)st->left;
            *data = p + i;
            *dlen = n;
            st->left -= n;
            if (st->left == 0)
                st->state = CH_DATA_CR;
            *used = i + n;
            return PX_CHUNK_DATA;
        }
        case CH_DATA_CR:
            if (c == '\r') {
                st->state = CH_DATA_LF;
            } else if (c == '\n') {
                st->state = CH_SIZE;
            } else {
                return PX_CHUNK_BAD;
            }
            i++;
            continue;
        case CH_DATA_LF:
            if (c != '\n')
                return PX_CHUNK_BAD;
            st->state = CH_SIZE;
            i++;
            continue;
        case CH_TRAILER:
            if (c == '\r') {
                st->state = CH_TRAILER_LF;
            } else if (c == '\n') {
                st->state = CH_DONE;
                *used = i + 1;
                return PX_CHUNK_DONE;
            } else {
                st->state = CH_TRAILER_LINE;    /* trailers are dropped */
            }
            i++;
            continue;
        case CH_TRAILER_LINE:
            if (c == '\n')
                st->state = CH_TRAILER;
            i++;
            continue;
        case CH_TRAILER_LF:
            if (c != '\n')
                return PX_CHUNK_BAD;
            st->state = CH_DONE;
            *used = i + 1;
            return PX_CHUNK_DONE;
        default:
            *used = i;
            return PX_CHUNK_DONE;
        }
    }
    *used = i;
    return st->state == CH_DONE ? PX_CHUNK_DONE : PX_CHUNK_MORE;
}
