/* websocket — the pure rules; see wsproto.h. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include "wsproto.h"

/* ---------------------------------------------------------------- handshake */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int tt_ws_accept(const char *key, size_t len, char out[TT_WS_ACCEPT_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, key, len) == 1 &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    /* 20 bytes -> 28 base64 characters and a NUL */
    return EVP_EncodeBlock((unsigned char *)out, digest, 20) == TT_WS_ACCEPT_LEN ? 0 : -1;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int tt_ws_key_ok(const char *key, size_t len)
{
    /* 16 bytes: 21 full characters, one that carries 2 bits (its low 4
     * bits zero: A, Q, g or w), then "==" */
    if (len != 24 || key[22] != '=' || key[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!b64_char(key[i]))
            return 0;
    return strchr("AQgw", key[21]) != NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int tt_ws_has_token(const char *v, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_space(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_space(v[end - 1]))
            end--;
        if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- UTF-8 */

int tt_ws_utf8_feed(tt_ws_utf8 *st, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if (st->need > 0) {
            if (b < st->lo || b > st->hi)
                return -1;
            st->need--;
            st->lo = 0x80;          /* only the first continuation is narrowed */
            st->hi = 0xBF;
            continue;
        }
        if (b < 0x80)
            continue;
        st->lo = 0x80;
        st->hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            st->need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            st->need = 2;
            if (b == 0xE0)
                st->lo = 0xA0;      /* no overlong forms */
            else if (b == 0xED)
                st->hi = 0x9F;      /* no UTF-16 surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            st->need = 3;
            if (b == 0xF0)
                st->lo = 0x90;
            else if (b == 0xF4)
                st->hi = 0x8F;      /* nothing past U+10FFFF */
        } else {
            return -1;              /* 80..C1, F5..FF never start a character */
        }
    }
    return 0;
}

int tt_ws_utf8_complete(const tt_ws_utf8 *st)
{
    return st->need == 0;
}

/* ---------------------------------------------------------------- permessage-deflate */

/* One parameter or extension name: a token, or for values a quoted string.
 * Advances *i past it; the text is copied into out. -1 on bad syntax. */
static int read_word(const char *v, size_t len, size_t *i, char *out, size_t size, int value)
{
    size_t n = 0;
    while (*i < len && is_space(v[*i]))
        (*i)++;
    if (value && *i < len && v[*i] == '"') {
        (*i)++;
        while (*i < len && v[*i] != '"') {
            if (v[*i] == '\\' && *i + 1 < len)
                (*i)++;
            if (n + 1 >= size)
                return -1;
            out[n++] = v[(*i)++];
        }
        if (*i >= len)
            return -1;              /* unterminated */
        (*i)++;
    } else {
        while (*i < len && !is_space(v[*i]) && v[*i] != ',' && v[*i] != ';' && v[*i] != '=' &&
               v[*i] != '"') {
            if (n + 1 >= size)
                return -1;
            out[n++] = v[(*i)++];
        }
    }
    while (*i < len && is_space(v[*i]))
        (*i)++;
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

static int window_bits(const char *s, unsigned *out)
{
    /* 8..15, digits only, no leading zero */
    if (s[0] < '1' || s[0] > '9' || (s[1] != '\0' && (s[1] < '0' || s[1] > '9' || s[2] != '\0')))
        return -1;
    unsigned v = (unsigned)(s[0] - '0');
    if (s[1] != '\0')
        v = v * 10 + (unsigned)(s[1] - '0');
    if (v < 8 || v > 15)
        return -1;
    *out = v;
    return 0;
}

enum { P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8, P_CMWB_VALUE = 16 };

/* One offer's parameters, up to the next ',' (or the end). Returns 1 when
 * acceptable, 0 when not, -1 on bad syntax. */
static int read_offer(const char *v, size_t len, size_t *i, tt_ws_deflate *d, unsigned *seen)
{
    int ok = 1;
    *seen = 0;
    d->server_no_context_takeover = d->client_no_context_takeover = 0;
    d->server_max_window_bits = d->client_max_window_bits = 15;
    while (*i < len && v[*i] == ';') {
        char name[64], val[16];
        int has_val = 0;
        (*i)++;
        if (read_word(v, len, i, name, sizeof(name), 0) != 0)
            return -1;
        if (*i < len && v[*i] == '=') {
            (*i)++;
            if (read_word(v, len, i, val, sizeof(val), 1) != 0)
                return -1;
            has_val = 1;
        }
        unsigned bit = strcmp(name, "server_no_context_takeover") == 0 ? P_SNCT
                     : strcmp(name, "client_no_context_takeover") == 0 ? P_CNCT
                     : strcmp(name, "server_max_window_bits") == 0 ? P_SMWB
                     : strcmp(name, "client_max_window_bits") == 0 ? P_CMWB : 0;
        if (bit == 0 || (*seen & bit)) {
            ok = 0;                 /* unknown or repeated: not this offer */
            continue;
        }
        *seen |= bit;
        switch (bit) {
        case P_SNCT:
        case P_CNCT:
            if (has_val)
                ok = 0;
            else if (bit == P_SNCT)
                d->server_no_context_takeover = 1;
            else
                d->client_no_context_takeover = 1;
            break;
        case P_SMWB:
            /* zlib cannot deflate with an 8-bit window: decline those */
            if (!has_val || window_bits(val, &d->server_max_window_bits) != 0 ||
                d->server_max_window_bits < 9)
                ok = 0;
            break;
        case P_CMWB:
            if (has_val) {
                if (window_bits(val, &d->client_max_window_bits) != 0)
                    ok = 0;
                else
                    *seen |= P_CMWB_VALUE;
            }
            break;
        }
    }
    if (*i < len && v[*i] != ',')
        return -1;
    return ok;
}

int tt_ws_deflate_negotiate(const char *v, size_t len, unsigned own_bits,
                            tt_ws_deflate *out, char *resp, size_t size)
{
    size_t i = 0;
    while (i < len) {
        char name[64];
        tt_ws_deflate d;
        unsigned seen;
        while (i < len && (is_space(v[i]) || v[i] == ','))
            i++;
        if (i >= len)
            break;
        if (read_word(v, len, &i, name, sizeof(name), 0) != 0)
            return -1;
        int rc = read_offer(v, len, &i, &d, &seen);
        if (rc < 0)
            return -1;
        if (rc == 0 || strcmp(name, "permessage-deflate") != 0)
            continue;
        /* our own window may be smaller than the client allows: RFC 7692
         * lets the answer say so even when the offer did not ask */
        if (own_bits >= 9 && own_bits < d.server_max_window_bits) {
            d.server_max_window_bits = own_bits;
            seen |= P_SMWB;
        }
        /* a client that lets us choose its window gets the same cap (what
         * we inflate with) */
        if (own_bits >= 9 && (seen & P_CMWB) && own_bits < d.client_max_window_bits) {
            d.client_max_window_bits = own_bits;
            seen |= P_CMWB_VALUE;
        }
        int n = snprintf(resp, size, "permessage-deflate%s%s",
                         d.server_no_context_takeover ? "; server_no_context_takeover" : "",
                         d.client_no_context_takeover ? "; client_no_context_takeover" : "");
        if (n > 0 && (seen & P_SMWB) && (size_t)n < size)
            n += snprintf(resp + n, size - (size_t)n, "; server_max_window_bits=%u",
                          d.server_max_window_bits);
        if (n > 0 && (seen & P_CMWB_VALUE) && (size_t)n < size)
            n += snprintf(resp + n, size - (size_t)n, "; client_max_window_bits=%u",
                          d.client_max_window_bits);
        if (n < 0 || (size_t)n >= size)
            return -1;
        *out = d;
        return 1;
    }
    return 0;
}
