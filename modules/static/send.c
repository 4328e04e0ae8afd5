/* static — one file as a response: validators, conditional requests, ranges.
 *
 * The order is RFC 9110's: the preconditions first (304 or 412), then Range
 * (206, multipart/byteranges, or 416), else the whole file. A small file
 * leaves from the cache's copy in memory, so its headers and body go out in
 * one write; a big one by sendfile on a dup() of the cached descriptor, so
 * the response holds a reference to the file and never its bytes, and the
 * cache may drop the entry whenever it likes.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "range.h"
#include "static.h"

/* Parts in one multipart/byteranges answer; past that (after merging) the
 * whole file is sent, as for any Range we will not honour. */
#define TT_STATIC_MAX_PARTS 32

static const char *reason(int status)
{
    switch (status) {
    case 301: return "Moved Permanently";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    default:  return "Internal Server Error";
    }
}

static size_t add(tt_header *h, size_t n, const char *name, const char *value, size_t len)
{
    h[n] = (tt_header){ name, strlen(name), value, len };
    return n + 1;
}

int tt_static_error(tt_request *r, const tt_static_conf *conf, int status,
                    const char *hname, const char *hvalue)
{
    const tt_api *api = tt_static_api;
    char body[64];
    int len = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
    tt_header h[3];
    size_t n = 0;

    n = add(h, n, "Content-Type", "text/plain; charset=utf-8", 25);
    if (hname != NULL)
        n = add(h, n, hname, hvalue, strlen(hvalue));
    /* on a precompressed route even an error may depend on the encoding
     * (a 416 counts the .gz's bytes): caches must keep them apart */
    if (conf != NULL && conf->precompressed)
        n = add(h, n, "Vary", "Accept-Encoding", 15);
    if (api->start(r, status, h, n, len) != 0)
        return TT_ERROR;
    api->write(r, body, (size_t)len);
    api->finish(r);
    return TT_OK;
}

static const char *content_type(const tt_static_conf *conf, const char *name, size_t len)
{
    const char *type = NULL;
    if (conf->types != NULL)
        type = tt_mime_lookup(conf->types, name, len);
    if (type == NULL && tt_static_mime != NULL)
        type = tt_mime_lookup(tt_static_mime, name, len);
    return type != NULL ? type : conf->default_type;
}

/* Queue bytes [off, off + len) of f. */
static int body(tt_request *r, const tt_sfile *f, uint64_t off, uint64_t len)
{
    const tt_api *api = tt_static_api;

    if (r->is_head || len == 0)
        return 0;
    if (f->data != NULL)
        return api->write(r, f->data + off, (size_t)len);
    int fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    return api->sendfile(r, fd, (int64_t)off, (int64_t)len, 1);
}

/* A boundary no file is likely to contain: random per worker, numbered per
 * response. */
static const char *boundary(void)
{
    static char prefix[17];
    static uint64_t counter;
    static char b[40];

    if (prefix[0] == '\0') {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
        snprintf(prefix, sizeof(prefix), "%016" PRIx64, seed);
    }
    snprintf(b, sizeof(b), "tutti-%s-%" PRIu64, prefix, ++counter);
    return b;
}

static int part_head(char *buf, size_t cap, const char *bnd, const char *type,
                     const tt_range *rg, uint64_t size)
{
    return snprintf(buf, cap, "\r\n--%s\r\nContent-Type: %s\r\n"
                    "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                    bnd, type, rg->first, rg->last, size);
}

static int send_multipart(tt_request *r, const tt_sfile *f, tt_header *h, size_t n,
                          const char *type, const tt_range *rg, size_t nr)
{
    const tt_api *api = tt_static_api;
    const char *bnd = boundary();
    char ctype[96], head[512], tail[64];

    int tail_len = snprintf(tail, sizeof(tail), "\r\n--%s--\r\n", bnd);
    uint64_t total = (uint64_t)tail_len;
    for (size_t i = 0; i < nr; i++) {
        int hl = part_head(head, sizeof(head), bnd, type, &rg[i], f->size);
        if (hl < 0 || (size_t)hl >= sizeof(head))
            return TT_ERROR;
        total += (uint64_t)hl + rg[i].last - rg[i].first + 1;
    }
    int cl = snprintf(ctype, sizeof(ctype), "multipart/byteranges; boundary=%s", bnd);
    n = add(h, n, "Content-Type", ctype, (size_t)cl);
    if (api->start(r, 206, h, n, (int64_t)total) != 0)
        return TT_ERROR;
    for (size_t i = 0; i < nr && !r->is_head; i++) {
        int hl = part_head(head, sizeof(head), bnd, type, &rg[i], f->size);
        if (api->write(r, head, (size_t)hl) != 0 ||
            body(r, f, rg[i].first, rg[i].last - rg[i].first + 1) != 0)
            return TT_ERROR;
    }
    if (!r->is_head)
        api->write(r, tail, (size_t)tail_len);
    api->finish(r);
    return TT_OK;
}

int tt_static_send(tt_request *r, const tt_static_conf *conf, const tt_sfile *f,
                   const char *name, size_t name_len, const char *encoding)
{
    const tt_api *api = tt_static_api;
    tt_header h[12];
    size_t n = 0;

    /* each encoding is its own representation with its own tag */
    char etag_buf[TT_ETAG_MAX];
    const char *etag = f->etag;
    size_t etag_len = f->etag_len;
    if (encoding != NULL) {
        etag_len = tt_etag_format(etag_buf, sizeof(etag_buf), f->size, f->mtime,
                                  f->mtime_nsec, (uint64_t)f->ino,
                                  encoding[0] == 'b' ? "br" : "gz");
        etag = etag_buf;
    }

    /* headers a 304 carries as well (RFC 9110 15.4.5) */
    n = add(h, n, "ETag", etag, etag_len);
    n = add(h, n, "Last-Modified", f->last_modified, TT_HTTP_DATE_LEN);
    if (conf->cache_control != NULL)
        n = add(h, n, "Cache-Control", conf->cache_control, strlen(conf->cache_control));
    if (conf->precompressed)
        n = add(h, n, "Vary", "Accept-Encoding", 15);

    tt_cond_headers ch;
    ch.if_match = api->header(r, "If-Match", &ch.if_match_len);
    ch.if_none_match = api->header(r, "If-None-Match", &ch.if_none_match_len);
    ch.if_modified_since = api->header(r, "If-Modified-Since", &ch.if_modified_since_len);
    ch.if_unmodified_since = api->header(r, "If-Unmodified-Since",
                                         &ch.if_unmodified_since_len);
    switch (tt_cond_evaluate(&ch, 1, etag, etag_len, f->mtime)) {
    case TT_COND_NOT_MODIFIED:
        if (api->start(r, 304, h, n, -1) != 0)
            return TT_ERROR;
        api->finish(r);
        return TT_OK;
    case TT_COND_FAILED:
        return tt_static_error(r, conf, 412, NULL, NULL);
    case TT_COND_PROCEED:
        break;
    }

    const char *type = content_type(conf, name, name_len);
    if (encoding != NULL)
        n = add(h, n, "Content-Encoding", encoding, strlen(encoding));
    n = add(h, n, "Accept-Ranges", "bytes", 5);

    size_t range_len, if_range_len;
    const char *range = api->header(r, "Range", &range_len);
    const char *if_range = api->header(r, "If-Range", &if_range_len);
    if (range != NULL && (if_range == NULL ||
                          tt_cond_if_range(if_range, if_range_len, etag, etag_len, f->mtime))) {
        tt_range rg[TT_STATIC_MAX_PARTS];
        size_t nr = 0;
        char cr[80];
        int cl;

        switch (tt_range_parse(range, range_len, f->size, rg, TT_STATIC_MAX_PARTS, &nr)) {
        case TT_RANGE_UNSATISFIABLE:
            snprintf(cr, sizeof(cr), "bytes */%" PRIu64, f->size);
            return tt_static_error(r, conf, 416, "Content-Range", cr);
        case TT_RANGE_OK:
            if (nr > 1)
                return send_multipart(r, f, h, n, type, rg, nr);
            cl = snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                          rg[0].first, rg[0].last, f->size);
            n = add(h, n, "Content-Range", cr, (size_t)cl);
            n = add(h, n, "Content-Type", type, strlen(type));
            if (api->start(r, 206, h, n, (int64_t)(rg[0].last - rg[0].first + 1)) != 0 ||
                body(r, f, rg[0].first, rg[0].last - rg[0].first + 1) != 0)
                return TT_ERROR;
            api->finish(r);
            return TT_OK;
        case TT_RANGE_NONE:
            break;
        }
    }

    n = add(h, n, "Content-Type", type, strlen(type));
    if (api->start(r, 200, h, n, (int64_t)f->size) != 0 || body(r, f, 0, f->size) != 0)
        return TT_ERROR;
    api->finish(r);
    return TT_OK;
}
