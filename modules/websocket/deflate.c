/* websocket — permessage-deflate (RFC 7692) with zlib: raw deflate streams,
 * each message ending in a sync flush whose 00 00 ff ff tail is left off
 * the wire and put back before inflating. */
#include <stdlib.h>
#include <string.h>
#include "ws.h"

static const uint8_t ws_tail[4] = { 0x00, 0x00, 0xff, 0xff };

int ws_inflate_init(ws_zstream *s, unsigned window_bits, int no_takeover)
{
    memset(s, 0, sizeof(*s));
    /* negative bits: a raw stream, no zlib header */
    if (inflateInit2(&s->z, -(int)window_bits) != Z_OK)
        return -1;
    s->ready = 1;
    s->no_takeover = no_takeover;
    return 0;
}

int ws_deflate_init(ws_zstream *s, unsigned window_bits, int no_takeover)
{
    memset(s, 0, sizeof(*s));
    /* zlib refuses a raw window of 8 bits; 9 is what it writes for 8 */
    if (window_bits < 9)
        window_bits = 9;
    if (deflateInit2(&s->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)window_bits,
                     WS_DEFLATE_MEMLEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    s->ready = 1;
    s->no_takeover = no_takeover;
    return 0;
}

void ws_zstream_free(ws_zstream *s, int inflating)
{
    if (!s->ready)
        return;
    if (inflating)
        inflateEnd(&s->z);
    else
        deflateEnd(&s->z);
    s->ready = 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need)
        ncap *= 2;
    uint8_t *nb = realloc(*buf, ncap);
    if (nb == NULL)
        return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

static int inflate_some(ws_zstream *s, const uint8_t *in, size_t n, uint8_t **buf,
                        size_t *len, size_t *cap, uint64_t max)
{
    s->z.next_in = (Bytef *)in;
    s->z.avail_in = (uInt)n;
    while (s->z.avail_in > 0) {
        /* room for at most max + 1 bytes: one more than allowed tells */
        if (grow(buf, cap, *len + 16384) != 0)
            return -1;
        size_t room = *cap - *len;
        if (*len + room > max + 1)
            room = (size_t)(max + 1 - *len);
        s->z.next_out = *buf + *len;
        s->z.avail_out = (uInt)room;
        uInt in_before = s->z.avail_in;
        int rc = inflate(&s->z, Z_SYNC_FLUSH);
        size_t made = room - s->z.avail_out;
        *len += made;
        if (*len > max)
            return -2;
        if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
            return -1;
        if (made == 0 && s->z.avail_in == in_before)
            return -1;          /* input and room, yet no progress: corrupt */
        if (rc == Z_STREAM_END && s->z.avail_in > 0)
            return -1;          /* a final block, then more: not what RFC 7692 sends */
    }
    return 0;
}

int ws_inflate(ws_zstream *s, const uint8_t *in, size_t n, int last,
               uint8_t **buf, size_t *len, size_t *cap, uint64_t max)
{
    int rc = inflate_some(s, in, n, buf, len, cap, max);
    if (rc == 0 && last) {
        rc = inflate_some(s, ws_tail, sizeof(ws_tail), buf, len, cap, max);
        if (s->no_takeover)
            inflateReset(&s->z);
    }
    return rc;
}

int ws_deflate(ws_zstream *s, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
    size_t cap = deflateBound(&s->z, n) + 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    s->z.next_in = (Bytef *)in;
    s->z.avail_in = (uInt)n;
    do {
        if (cap - len < 64) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        s->z.next_out = buf + len;
        s->z.avail_out = (uInt)(cap - len);
        int rc = deflate(&s->z, Z_SYNC_FLUSH);
        len = cap - s->z.avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            return -1;
        }
    } while (s->z.avail_in > 0 || s->z.avail_out == 0);
    /* the sync flush ends in 00 00 ff ff: the wire leaves it off */
    if (len >= 4 && memcmp(buf + len - 4, ws_tail, 4) == 0)
        len -= 4;
    if (s->no_takeover)
        deflateReset(&s->z);
    *out = buf;
    *outlen = len;
    return 0;
}
