/* libFuzzer harness for everything a client's bytes reach before a handler:
 * the request parser (llhttp glue) and the request-target normaliser.
 *
 *   (a) the whole input as a request-target: tt_target_parse must either
 *       refuse it or return a path with no way left to climb or hide
 *       ("/./", "/../", "//", NUL), inside the documented buffer size;
 *   (b) the input as a client's byte stream, cut into slices whose sizes
 *       come from the first input bytes (so the fuzzer explores the
 *       split points too), fed the way conn.c feeds it: one request at a
 *       time, tt_parser_next after each, until an error or the end.
 *
 * Any broken invariant aborts, which libFuzzer reports as a crash.
 *
 *   ./configure --enable-fuzz CC=clang && make tests/fuzz/fuzz_request
 *   tests/fuzz/fuzz_request -max_total_time=30 tests/fuzz/corpus/request
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* memmem */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http/http.h"

#define CHECK(cond, what)                                               \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", what,     \
                    __FILE__, __LINE__);                                \
            abort();                                                    \
        }                                                               \
    } while (0)

static int has(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* Parse a target from an exactly-sized copy and check what comes out. */
static void check_target(const char *target, size_t len, int allow_asterisk)
{
    char *in = malloc(len ? len : 1);
    char *pathbuf = malloc(len + 2);
    tt_target t;

    CHECK(in && pathbuf, "out of memory");
    memcpy(in, target, len);
    int rc = tt_target_parse(in, len, allow_asterisk, &t, pathbuf);
    CHECK(rc == 0 || rc == 400, "status is 0 or 400");
    if (rc == 0) {
        const char *p = t.path;
        size_t n = t.path_len;

        CHECK(p == pathbuf, "path is in pathbuf");
        CHECK(n >= 1 && n <= len + 1, "path length within the buffer");
        CHECK(p[n] == '\0', "path is NUL-terminated");
        CHECK(memchr(p, '\0', n) == NULL, "no NUL inside the path");
        if (n == 1 && p[0] == '*') {
            CHECK(allow_asterisk && len == 1, "\"*\" only when allowed");
        } else {
            CHECK(p[0] == '/', "path starts with /");
            CHECK(!has(p, n, "//"), "no // in the path");
            CHECK(!has(p, n, "/./"), "no /./ in the path");
            CHECK(!has(p, n, "/../"), "no /../ in the path");
            CHECK(!(n >= 2 && memcmp(p + n - 2, "/.", 2) == 0), "no trailing /.");
            CHECK(!(n >= 3 && memcmp(p + n - 3, "/..", 3) == 0), "no trailing /..");
        }
        CHECK(t.raw_path_len <= len, "raw path within the target");
        CHECK(t.query_len <= len, "query within the target");
        if (t.query_len)
            CHECK(t.query >= in && t.query + t.query_len <= in + len, "query points into target");
        if (t.authority)
            CHECK(t.authority >= in && t.authority + t.authority_len <= in + len,
                  "authority points into target");
    }
    free(in);
    free(pathbuf);
}

/* ---- (b) the parser ---- */

typedef struct {
    uint64_t body_bytes;        /* of the current message */
    int64_t  content_length;    /* announced by the current head */
    int      chunked;
    int      in_message;        /* head seen, done not yet */
    int      done;              /* done() since the last tt_parser_next */
    int      pause_heads;       /* answer some heads with TT_PARSE_PAUSE */
    int      paused;
    int      upgrade;           /* the last head asked for an Upgrade */
    unsigned heads;
} fuzz_ctx;

static int on_head(void *arg, tt_http_head *h)
{
    fuzz_ctx *c = arg;

    CHECK(!c->in_message, "one head per message");
    CHECK(h->len <= h->cap, "head buffer within its capacity");
    CHECK((size_t)h->method_off + h->method_len <= h->len, "method within the head");
    CHECK((size_t)h->url_off + h->url_len <= h->len, "target within the head");
    CHECK(h->nfields <= h->fields_cap, "fields within their capacity");
    for (size_t i = 0; i < h->nfields; i++) {
        const tt_head_field *f = &h->fields[i];
        CHECK((size_t)f->name_off + f->name_len <= h->len, "header name within the head");
        CHECK((size_t)f->value_off + f->value_len <= h->len, "header value within the head");
    }
    if (h->has_host)
        CHECK((size_t)h->host_off + h->host_len <= h->len, "Host within the head");
    CHECK(h->version == 10 || h->version == 11, "only HTTP/1.0 and 1.1 reach a handler");
    CHECK(!(h->chunked && h->content_length >= 0), "never both chunked and Content-Length");

    int options = h->method_len == 7 && memcmp(h->buf + h->method_off, "OPTIONS", 7) == 0;
    check_target(h->buf + h->url_off, h->url_len, options);
    size_t hlen;
    const char *host = tt_head_get(h, "host", &hlen);
    CHECK(!host || (host >= h->buf && host + hlen <= h->buf + h->len), "tt_head_get in the head");

    c->in_message = 1;
    c->body_bytes = 0;
    c->content_length = h->content_length;
    c->chunked = h->chunked;
    c->upgrade = h->upgrade;
    c->heads++;
    if (c->pause_heads && (c->heads & 1)) {
        c->paused = 1;
        return TT_PARSE_PAUSE;
    }
    return 0;
}

static void on_body(void *arg, const char *p, size_t n)
{
    fuzz_ctx *c = arg;

    CHECK(c->in_message, "body inside a message");
    CHECK(!c->paused, "no body while paused");
    CHECK(n > 0 && p != NULL, "a body piece has bytes");
    c->body_bytes += n;
    if (!c->chunked && c->content_length >= 0)
        CHECK(c->body_bytes <= (uint64_t)c->content_length, "no more body than Content-Length");
}

static void on_done(void *arg)
{
    fuzz_ctx *c = arg;

    CHECK(c->in_message, "done after a head");
    if (!c->chunked && c->content_length >= 0)
        CHECK(c->body_bytes == (uint64_t)c->content_length, "body is exactly Content-Length");
    c->in_message = 0;
    c->done = 1;
}

static const tt_parser_cbs fuzz_cbs = { on_head, on_body, on_done };

/* xorshift64*, seeded from the first input bytes: slice sizes that depend on
 * the input, so the fuzzer can reach every way of splitting a request */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void feed_stream(const uint8_t *data, size_t size)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size && i < 8; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ull;
    if (seed == 0)
        seed = 1;

    size_t max_head = 256 + (size_t)(next_rand(&seed) % 16384);
    fuzz_ctx c = { .content_length = -1, .pause_heads = (int)(next_rand(&seed) & 1) };
    tt_parser p;
    tt_parser_init(&p, &fuzz_cbs, &c, max_head);

    const char *in = (const char *)data;
    size_t pos = 0;
    int status = 0, stalls = 0;

    while (pos < size) {
        uint64_t r = next_rand(&seed);
        size_t slice = (r & 3) == 0 ? size - pos : 1 + (size_t)(r >> 8) % 64;
        if (slice > size - pos)
            slice = size - pos;

        size_t used = tt_parser_feed(&p, in + pos, slice, &status);
        CHECK(used <= slice, "consumed no more than given");
        pos += used;
        if (status) {
            CHECK(status >= 400 && status <= 599, "an error is an HTTP error status");
            /* an error is sticky: the connection is closed after it */
            int again = 0;
            CHECK(tt_parser_feed(&p, "x", 1, &again) == 0 && again == status, "error is sticky");
            break;
        }
        if (c.paused) {
            c.paused = 0;
            tt_parser_resume(&p);
            stalls = 0;
            continue;
        }
        if (c.done) {
            c.done = 0;
            if (r & 0x10000) {
                /* as an idle keep-alive connection: conn.c drops the parser
                 * and starts a fresh one for the next request */
                tt_parser_free(&p);
                tt_parser_init(&p, &fuzz_cbs, &c, max_head);
            } else {
                tt_parser_next(&p);
            }
            stalls = 0;
            continue;
        }
        /* neither progress nor a reason to stop: conn.c would spin or hang.
         * An Upgrade nobody took over is served as plain HTTP/1.1, so the
         * connection must go on parsing after it (RFC 9110 7.8). */
        if (used == 0)
            CHECK(++stalls < 2, c.upgrade ? "parser goes on after an Upgrade request"
                                          : "parser makes progress");
        else
            stalls = 0;
    }
    if (!status) {
        int eof = tt_parser_eof(&p);
        CHECK(eof == 0 || (eof >= 400 && eof <= 599), "eof gives 0 or an error status");
        CHECK(eof != 0 || !c.in_message, "a clean end is never inside a message");
    }
    tt_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_target((const char *)data, size, size == 1);
    feed_stream(data, size);
    return 0;
}
