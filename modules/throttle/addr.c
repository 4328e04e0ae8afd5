/* throttle — address parsing and matching (see addr.h). */
#include <arpa/inet.h>
#include <string.h>
#include "addr.h"

/* ::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4 client */
static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int tt_addr_parse(const char *s, size_t len, tt_addr *out)
{
    char text[TT_ADDR_TEXT_MAX];

    memset(out, 0, sizeof(*out));
    /* inet_pton wants a C string; anything longer is no address */
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';

    if (inet_pton(AF_INET, text, out->bytes) == 1) {
        out->family = TT_ADDR_V4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->bytes) != 1) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    if (memcmp(out->bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        out->family = TT_ADDR_V4;
        return 0;
    }
    out->family = TT_ADDR_V6;
    return 0;
}

const char *tt_addr_format(const tt_addr *a, char *buf, size_t size)
{
    int af = a->family == TT_ADDR_V4 ? AF_INET : a->family == TT_ADDR_V6 ? AF_INET6 : 0;

    if (size == 0)
        return buf;
    if (af == 0 || inet_ntop(af, a->bytes, buf, (socklen_t)size) == NULL) {
        buf[0] = size > 1 ? '-' : '\0';
        if (size > 1)
            buf[1] = '\0';
    }
    return buf;
}

/* Zero the bits of a past the first prefix; 1 when any was set. */
static int clear_host_bits(tt_addr *a, unsigned prefix)
{
    int had = 0;
    for (unsigned i = 0; i < 16; i++) {
        unsigned first_bit = i * 8;
        uint8_t keep;
        if (prefix >= first_bit + 8)
            keep = 0xff;
        else if (prefix <= first_bit)
            keep = 0;
        else
            keep = (uint8_t)(0xff << (8 - (prefix - first_bit)));
        if (a->bytes[i] & (uint8_t)~keep)
            had = 1;
        a->bytes[i] &= keep;
    }
    return had;
}

int tt_cidr_parse(const char *s, tt_cidr *out)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    int v6_text = memchr(s, ':', alen) != NULL;

    memset(out, 0, sizeof(*out));
    if (tt_addr_parse(s, alen, &out->net) != 0)
        return TT_CIDR_BAD;

    unsigned max = v6_text ? 128 : 32;
    unsigned prefix = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        /* 1 to 3 plain digits: no sign, no spaces, no "0x" */
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || nd > 3 || d[nd] != '\0')
            return TT_CIDR_BAD;
        prefix = 0;
        for (size_t i = 0; i < nd; i++)
            prefix = prefix * 10 + (unsigned)(d[i] - '0');
        if (prefix > max)
            return TT_CIDR_BAD;
    }
    /* ::ffff:10.0.0.0/104 was turned into IPv4 by tt_addr_parse: its prefix
     * counts the 96 bits of the mapping too */
    if (v6_text && out->net.family == TT_ADDR_V4) {
        if (prefix < 96)
            return TT_CIDR_BAD;
        prefix -= 96;
    }
    out->prefix = prefix;
    return clear_host_bits(&out->net, prefix) ? TT_CIDR_HOST_BITS : TT_CIDR_OK;
}

int tt_cidr_match(const tt_cidr *c, const tt_addr *a)
{
    if (a->family != c->net.family || a->family == TT_ADDR_NONE)
        return 0;
    unsigned whole = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(a->bytes, c->net.bytes, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a->bytes[whole] & mask) == c->net.bytes[whole];
}
