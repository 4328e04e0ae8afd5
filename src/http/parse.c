/* Request parser: llhttp in strict mode, collecting one head at a time.
 *
 * llhttp hands us spans that may be split across reads; we copy them into one
 * growable buffer per head and keep offsets, so a head costs one allocation
 * that is reused for every request on the connection. Nothing lenient is
 * switched on: conflicting Content-Length / Transfer-Encoding, bare CR,
 * obs-fold and bad chunk sizes are all errors, so no request can be read two
 * ways (request smuggling).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http/http.h"

#define TT_MAX_FIELDS      128      /* header lines per request; beyond: 431 */
#define TT_LINE_OVERHEAD   4        /* ": " + CRLF, counted against max_head */

enum { FIELD_NONE, FIELD_NAME, FIELD_VALUE };

static tt_parser *parser_of(llhttp_t *l)
{
    return l->data;
}

/* Grow the head buffer by n bytes of data, within max_head. */
static int head_append(tt_parser *p, const char *at, size_t n, int status_over)
{
    tt_http_head *h = &p->head;

    p->head_bytes += n;
    if (p->head_bytes > p->max_head) {
        p->status = status_over;
        return -1;
    }
    if (h->len + n > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        while (cap < h->len + n)
            cap *= 2;
        char *buf = realloc(h->buf, cap);
        if (buf == NULL) {
            p->status = 500;
            return -1;
        }
        h->buf = buf;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, at, n);
    h->len += n;
    return 0;
}

static int on_message_begin(llhttp_t *l)
{
    tt_parser *p = parser_of(l);
    tt_http_head *h = &p->head;

    h->len = 0;
    h->nfields = 0;
    h->method_off = h->method_len = 0;
    h->url_off = h->url_len = 0;
    h->has_host = 0;
    h->expect_continue = 0;
    p->head_bytes = 0;
    p->field_state = FIELD_NONE;
    p->in_head = 1;
    p->started = 1;
    p->message_done = 0;
    return 0;
}

/* The method and the target each arrive as one or more spans. */
static int head_span(tt_parser *p, uint32_t *off, uint32_t *len, const char *at,
                     size_t n, int status_over)
{
    if (*len == 0)
        *off = (uint32_t)p->head.len;
    *len += (uint32_t)n;
    return head_append(p, at, n, status_over);
}

static int on_method(llhttp_t *l, const char *at, size_t n)
{
    tt_parser *p = parser_of(l);
    return head_span(p, &p->head.method_off, &p->head.method_len, at, n, 400);
}

static int on_url(llhttp_t *l, const char *at, size_t n)
{
    tt_parser *p = parser_of(l);
    /* a request line alone over the limit is "URI Too Long" */
    return head_span(p, &p->head.url_off, &p->head.url_len, at, n, 414);
}

static int on_header_field(llhttp_t *l, const char *at, size_t n)
{
    tt_parser *p = parser_of(l);
    tt_http_head *h = &p->head;

    if (p->field_state != FIELD_NAME) {
        if (h->nfields == TT_MAX_FIELDS) {
            p->status = 431;
            return -1;
        }
        if (h->nfields == h->fields_cap) {
            size_t cap = h->fields_cap ? h->fields_cap * 2 : 16;
            tt_head_field *f = realloc(h->fields, cap * sizeof(*f));
            if (f == NULL) {
                p->status = 500;
                return -1;
            }
            h->fields = f;
            h->fields_cap = cap;
        }
        p->value_open = 0;
        tt_head_field *f = &h->fields[h->nfields++];
        f->name_off = (uint32_t)h->len;
        f->name_len = 0;
        f->value_off = (uint32_t)h->len;
        f->value_len = 0;
        p->field_state = FIELD_NAME;
        p->head_bytes += TT_LINE_OVERHEAD;
    }
    h->fields[h->nfields - 1].name_len += (uint32_t)n;
    /* llhttp 8.1 takes "Host : x" as a field named "Host "; RFC 9112 5.1
     * says whitespace before the colon must be answered with 400 */
    for (size_t i = 0; i < n; i++) {
        if (at[i] == ' ' || at[i] == '\t') {
            p->status = 400;
            return -1;
        }
    }
    return head_append(p, at, n, 431);
}

static int on_header_value(llhttp_t *l, const char *at, size_t n)
{
    tt_parser *p = parser_of(l);
    tt_http_head *h = &p->head;
    tt_head_field *f = &h->fields[h->nfields - 1];

    /* llhttp 8.1 accepts obs-fold ("a\r\n b") and reports it as a second
     * span of the same value. Spans of one value are contiguous unless a
     * feed boundary split them, so a gap means a fold: RFC 9112 5.2 lets us
     * answer 400, and we must, or a proxy behind us could read it apart. */
    int contiguous = p->span_end != NULL && at == p->span_end;
    int continued = p->span_end == NULL && at == p->feed_start && p->span_cont;
    if (p->value_open && !contiguous && !continued) {
        p->status = 400;
        return -1;
    }
    p->value_open = 1;
    p->span_end = at + n;
    /* llhttp 8.1 lets a bare CR through inside a value (CVE-2023-30589);
     * no control byte but HTAB belongs in a field value (RFC 9110 5.5) */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            p->status = 400;
            return -1;
        }
    }
    f->value_len += (uint32_t)n;
    return head_append(p, at, n, 431);
}

static int on_header_value_complete(llhttp_t *l)
{
    tt_parser *p = parser_of(l);
    tt_http_head *h = &p->head;
    tt_head_field *f = &h->fields[h->nfields - 1];

    /* llhttp drops leading whitespace; trailing OWS is ours to drop */
    while (f->value_len > 0) {
        char c = h->buf[f->value_off + f->value_len - 1];
        if (c != ' ' && c != '\t')
            break;
        f->value_len--;
    }
    p->field_state = FIELD_NONE;
    return 0;
}

static int on_header_field_complete(llhttp_t *l)
{
    tt_parser *p = parser_of(l);
    /* an empty value never calls on_header_value: keep the state machine right */
    p->field_state = FIELD_VALUE;
    tt_http_head *h = &p->head;
    h->fields[h->nfields - 1].value_off = (uint32_t)h->len;
    return 0;
}

static int name_is(const tt_http_head *h, const tt_head_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(h->buf + f->name_off, name, n) == 0;
}

/* Every transfer coding must be one we can undo: only "chunked" exists here. */
static int transfer_codings_known(const tt_http_head *h)
{
    for (size_t i = 0; i < h->nfields; i++) {
        const tt_head_field *f = &h->fields[i];
        if (!name_is(h, f, "transfer-encoding"))
            continue;
        const char *s = h->buf + f->value_off, *end = s + f->value_len;
        while (s < end) {
            while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
                s++;
            const char *tok = s;
            while (s < end && *s != ',' && *s != ' ' && *s != '\t' && *s != ';')
                s++;
            if (s > tok && !((size_t)(s - tok) == 7 && strncasecmp(tok, "chunked", 7) == 0))
                return 0;
            while (s < end && *s != ',')
                s++;
        }
    }
    return 1;
}

static int on_headers_complete(llhttp_t *l)
{
    tt_parser *p = parser_of(l);
    tt_http_head *h = &p->head;

    p->in_head = 0;
    h->version = l->http_major * 10 + l->http_minor;
    h->keepalive = llhttp_should_keep_alive(l);
    h->chunked = (l->flags & F_CHUNKED) != 0;
    h->content_length = (l->flags & F_CONTENT_LENGTH) ? (int64_t)l->content_length : -1;
    h->upgrade = l->upgrade;
    /* Until a module takes a connection over, an Upgrade request is a plain
     * request: clear llhttp's flag, or it would stop at HPE_PAUSED_UPGRADE
     * after this message and never parse the next one. */
    l->upgrade = 0;

    if (l->http_major != 1) {
        p->status = 505;
        return -1;
    }
    if (!transfer_codings_known(h)) {
        p->status = 501;
        return -1;
    }
    for (size_t i = 0; i < h->nfields; i++) {
        tt_head_field *f = &h->fields[i];
        if (name_is(h, f, "host")) {
            if (h->has_host) {          /* two Hosts: which one would route? */
                p->status = 400;
                return -1;
            }
            h->has_host = 1;
            h->host_off = f->value_off;
            h->host_len = f->value_len;
        } else if (name_is(h, f, "expect")) {
            if (f->value_len == 12 && strncasecmp(h->buf + f->value_off, "100-continue", 12) == 0)
                h->expect_continue = 1;
            else {
                p->status = 417;
                return -1;
            }
        }
    }
    if (h->version == 11 && !h->has_host) {
        p->status = 400;
        return -1;
    }

    int rc = p->cbs->head(p->ctx, h);
    if (rc > 0) {
        p->status = rc;
        return -1;
    }
    if (rc == TT_PARSE_PAUSE) {
        p->paused = 1;
        return HPE_PAUSED;
    }
    /* Upgrade requests are served as plain requests until a module takes
     * the connection over; their body (if any) is parsed normally. */
    return 0;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    tt_parser *p = parser_of(l);
    p->cbs->body(p->ctx, at, n);
    return 0;
}

static int on_message_complete(llhttp_t *l)
{
    tt_parser *p = parser_of(l);
    p->message_done = 1;
    p->started = 0;
    p->cbs->done(p->ctx);
    /* one request at a time: pipelined requests wait in the input buffer */
    return HPE_PAUSED;
}

/* Returns the offset of the first bad byte, or len.
 *
 * llhttp 8.1 takes a bare LF as the end of the request line and of the
 * head. RFC 9112 2.2 permits that, but an intermediary that disagrees would
 * frame the request differently, so every head line must end in CRLF. This
 * runs before llhttp sees the bytes, so a bad head never reaches a handler.
 * It stops at the blank line that ends the head: bodies are not scanned. */
static size_t head_line_ends_ok(tt_parser *p, const char *data, size_t len)
{
    for (size_t i = 0; i < len && p->scan_active; i++) {
        char ch = data[i];
        if (p->scan_cr) {
            if (ch != '\n')
                return i;                   /* bare CR */
            p->scan_cr = 0;
            if (p->scan_line_len == 0 && p->scan_lines > 0)
                p->scan_active = 0;         /* the blank line: head ends */
            if (p->scan_line_len > 0)
                p->scan_lines++;
            p->scan_line_len = 0;
        } else if (ch == '\r') {
            p->scan_cr = 1;
        } else if (ch == '\n') {
            return i;                       /* bare LF */
        } else {
            p->scan_line_len++;
        }
    }
    return len;
}

static void head_scan_start(tt_parser *p)
{
    p->scan_active = 1;
    p->scan_cr = 0;
    p->scan_lines = 0;
    p->scan_line_len = 0;
}

/* One callback table for every connection: it is 200 bytes we need not
 * hold per idle connection. */
static llhttp_settings_t tt_parser_settings;
static int               tt_parser_settings_ready;

static const llhttp_settings_t *parser_settings(void)
{
    if (tt_parser_settings_ready)
        return &tt_parser_settings;
    llhttp_settings_t *s = &tt_parser_settings;
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_method = on_method;
    s->on_url = on_url;
    s->on_header_field = on_header_field;
    s->on_header_field_complete = on_header_field_complete;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
    tt_parser_settings_ready = 1;
    return s;
}

void tt_parser_init(tt_parser *p, const tt_parser_cbs *cbs, void *ctx, size_t max_head)
{
    memset(p, 0, sizeof(*p));
    /* llhttp only reads the settings; the cast drops a const it lacks */
    llhttp_init(&p->llh, HTTP_REQUEST, (llhttp_settings_t *)parser_settings());
    p->llh.data = p;
    p->cbs = cbs;
    p->ctx = ctx;
    p->max_head = max_head;
    head_scan_start(p);
}

void tt_parser_free(tt_parser *p)
{
    free(p->head.buf);
    free(p->head.fields);
    p->head.buf = NULL;
    p->head.fields = NULL;
    p->head.cap = p->head.fields_cap = 0;
}

/* Map an llhttp error to the status the client gets. */
static int status_for(tt_parser *p, llhttp_errno_t e)
{
    if (p->status)
        return p->status;
    switch (e) {
    case HPE_INVALID_VERSION:
        return 505;
    case HPE_INVALID_METHOD: {
        /* a well-formed token we do not know is "not implemented" */
        tt_http_head *h = &p->head;
        if (h->method_len == 0)
            return 400;
        for (uint32_t i = 0; i < h->method_len; i++) {
            char c = h->buf[h->method_off + i];
            if (c < 'A' || c > 'Z')
                return 400;
        }
        return 501;
    }
    case HPE_INVALID_TRANSFER_ENCODING:
        return transfer_codings_known(&p->head) ? 400 : 501;
    default:
        return 400;
    }
}

size_t tt_parser_feed(tt_parser *p, const char *data, size_t len, int *status)
{
    *status = 0;
    if (p->status) {
        *status = p->status;
        return 0;
    }
    if (p->message_done || p->paused)
        return 0;

    size_t bad = len;
    if (p->scan_active && (bad = head_line_ends_ok(p, data, len)) < len) {
        /* let llhttp read up to the bad byte, so the access log still gets
         * the method and target, then fail */
        if (bad > 0)
            llhttp_execute(&p->llh, data, bad);
        if (p->status == 0)
            p->status = 400;
        *status = p->status;
        return bad;
    }
    p->feed_start = data;
    p->feed_end = data + len;
    p->span_end = NULL;
    llhttp_errno_t e = llhttp_execute(&p->llh, data, len);
    p->span_cont = p->span_end != NULL && p->span_end == p->feed_end;
    if (e == HPE_OK)
        return len;
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        const char *pos = llhttp_get_error_pos(&p->llh);
        size_t used = pos ? (size_t)(pos - data) : len;
        return used > len ? len : used;
    }
    p->status = status_for(p, e);
    *status = p->status;
    const char *pos = llhttp_get_error_pos(&p->llh);
    return pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
}

void tt_parser_next(tt_parser *p)
{
    head_scan_start(p);
    p->message_done = 0;
    p->paused = 0;
    if (llhttp_get_errno(&p->llh) == HPE_PAUSED_UPGRADE)
        llhttp_resume_after_upgrade(&p->llh);
    else
        llhttp_resume(&p->llh);
}

void tt_parser_resume(tt_parser *p)
{
    if (!p->paused)
        return;
    p->paused = 0;
    if (llhttp_get_errno(&p->llh) == HPE_PAUSED)
        llhttp_resume(&p->llh);
}

int tt_parser_eof(tt_parser *p)
{
    if (!p->started)
        return 0;
    return p->status ? p->status : 400;
}

const char *tt_head_get(const tt_http_head *h, const char *name, size_t *len)
{
    for (size_t i = 0; i < h->nfields; i++) {
        if (name_is(h, &h->fields[i], name)) {
            if (len)
                *len = h->fields[i].value_len;
            return h->buf + h->fields[i].value_off;
        }
    }
    return NULL;
}
