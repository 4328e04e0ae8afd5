/* throttle — client addresses as binary keys, and trusted-proxy ranges.
 *
 * Text forms of one address ("::1" and "0:0:0:0:0:0:0:1", "::ffff:1.2.3.4"
 * and "1.2.3.4") become the same key, so a client cannot get a fresh bucket
 * by spelling its address another way, and a key has a fixed size whatever
 * a header said.
 */
#ifndef TT_THROTTLE_ADDR_H
#define TT_THROTTLE_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define TT_ADDR_NONE 0      /* not an address (a UNIX socket's peer) */
#define TT_ADDR_V4   4
#define TT_ADDR_V6   6

/* Compare with memcmp: every byte past the address is zero. */
typedef struct {
    uint8_t family;         /* TT_ADDR_V4, TT_ADDR_V6 or TT_ADDR_NONE */
    uint8_t bytes[16];      /* network order; IPv4 in the first 4 */
} tt_addr;

typedef struct {
    tt_addr  net;           /* the bits past the prefix are zero */
    unsigned prefix;        /* 0..32 for IPv4, 0..128 for IPv6 */
} tt_cidr;

/* Longest text an address can take: an IPv6 with an IPv4 tail. */
#define TT_ADDR_TEXT_MAX 46

/* An IPv4 or IPv6 address in text, exactly len bytes (no NUL needed), no
 * spaces, no brackets, no port. An IPv4-mapped IPv6 address becomes IPv4.
 * 0, or -1 when s is not an address (out is then zeroed). */
int tt_addr_parse(const char *s, size_t len, tt_addr *out);

/* text into buf (at least TT_ADDR_TEXT_MAX bytes); "-" for TT_ADDR_NONE */
const char *tt_addr_format(const tt_addr *a, char *buf, size_t size);

#define TT_CIDR_OK         0
#define TT_CIDR_BAD       -1    /* not an address or address/prefix */
#define TT_CIDR_HOST_BITS -2    /* 10.0.0.1/8: out->net holds 10.0.0.0 */

/* "10.0.0.0/8", "fd00::/8", or one address ("127.0.0.1" = /32, "::1" = /128). */
int tt_cidr_parse(const char *s, tt_cidr *out);

/* Is a inside c? Never for an address of the other family. */
int tt_cidr_match(const tt_cidr *c, const tt_addr *a);

#endif
