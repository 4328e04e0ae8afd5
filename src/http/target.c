/* Request-target normalisation: the one place a URL becomes a path.
 *
 * Everything that maps a request to a route or to a file looks at the path
 * this produces, so it has to be the only reading of the target there is:
 * decoded exactly once, dot segments gone, no encoded NUL or slash (which
 * would let "/a%2F..%2Fb" mean one thing to the router and another to the
 * file system or an upstream), no control bytes.
 *
 * Decoding, dot-segment removal (RFC 3986 5.2.4) and slash merging happen in
 * one pass over the target, writing into the caller's buffer: the output is
 * never longer than the input, so no allocation is needed.
 *
 * "//" is merged into "/", as nginx does with merge_slashes on (its default):
 * a route "/admin/" must not be bypassed by asking for "//admin/", and a file
 * system treats both the same anyway, so the router has to as well.
 */
#include <string.h>
#include <strings.h>
#include "http/http.h"

/* hex digit value, or -1; case-insensitive */
static const signed char tt_hexval[256] = {
    ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,
    ['5'] = 5,  ['6'] = 6,  ['7'] = 7,  ['8'] = 8,  ['9'] = 9,
    ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
    ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15,
};

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Bytes a request-target may never carry raw: controls, space, DEL, and '#'
 * (a fragment is the client's business and must not reach the server). */
static int is_forbidden(unsigned char c)
{
    return c < 0x21 || c == 0x7f || c == '#';
}

/* Close the segment that starts at out[seg] and ends at out[*n]: drop it when
 * it is ".", drop it and its parent when it is "..". The segments before it
 * are already normal, so one look back is enough. Returns -1 when ".." would
 * climb above the root. */
static int close_segment(char *out, size_t *n, size_t seg)
{
    size_t seglen = *n - seg;

    if (seglen == 1 && out[seg] == '.') {
        *n = seg;
        return 0;
    }
    if (seglen == 2 && out[seg] == '.' && out[seg + 1] == '.') {
        if (seg == 1)
            return -1;
        /* out[seg - 1] is the '/' before "..": find the one before that */
        size_t j = seg - 2;
        while (out[j] != '/')
            j--;
        *n = j + 1;
    }
    return 0;
}

/* Decode and normalise the path that starts at p (a '/') and ends at the
 * first '?' or at end. Writes the result to out (NUL not included) and
 * returns where the path ended, or NULL for a bad target. */
static const char *parse_path(const char *p, const char *end, char *out, size_t *outlen)
{
    size_t n = 1, seg = 1;

    out[0] = '/';
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '?')
            break;
        if (c == '/') {
            if (close_segment(out, &n, seg) < 0)
                return NULL;
            if (out[n - 1] != '/')      /* else an empty segment: merge */
                out[n++] = '/';
            seg = n;
            continue;
        }
        if (c == '%') {
            if (end - p < 3 || !is_hex((unsigned char)p[1]) || !is_hex((unsigned char)p[2]))
                return NULL;
            c = (unsigned char)(tt_hexval[(unsigned char)p[1]] << 4 | tt_hexval[(unsigned char)p[2]]);
            if (c == 0 || c == '/')
                return NULL;
            p += 2;
        } else if (is_forbidden(c)) {
            return NULL;
        }
        out[n++] = (char)c;
    }
    if (close_segment(out, &n, seg) < 0)
        return NULL;
    *outlen = n;
    return p;
}

/* Length of an "http://" or "https://" prefix (case-insensitive), else 0. */
static size_t scheme_len(const char *s, size_t len)
{
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0)
        return 7;
    if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
        return 8;
    return 0;
}

/* RFC 3986 host and port characters: unreserved, sub-delims, pct-encoded,
 * ':' and the brackets of an IP literal. No userinfo: RFC 9110 4.2.4 says
 * to treat an '@' here as an error. */
static int is_authority_char(unsigned char c)
{
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return 1;
    if (c >= '0' && c <= '9')
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+,;=%:[]", c) != NULL;
}

int tt_target_parse(const char *target, size_t len, int allow_asterisk,
                    tt_target *t, char *pathbuf)
{
    const char *p = target, *end = target + len;

    t->authority = NULL;
    t->authority_len = 0;
    t->query = "";
    t->query_len = 0;
    if (len == 0)
        return 400;

    if (*p == '*' && len == 1) {
        if (!allow_asterisk)
            return 400;
        t->raw_path = target;
        t->raw_path_len = 1;
        pathbuf[0] = '*';
        pathbuf[1] = '\0';
        t->path = pathbuf;
        t->path_len = 1;
        return 0;
    }

    if (*p != '/') {
        size_t skip = scheme_len(target, len);
        if (skip == 0)
            return 400;
        const char *a = target + skip;
        for (p = a; p < end && *p != '/' && *p != '?'; p++) {
            if (!is_authority_char((unsigned char)*p))
                return 400;
        }
        if (p == a)                     /* "http:///x": no host */
            return 400;
        t->authority = a;
        t->authority_len = (size_t)(p - a);
    }

    size_t n;
    if (p < end && *p == '/') {
        const char *path_end = parse_path(p, end, pathbuf, &n);
        if (path_end == NULL)
            return 400;
        t->raw_path = p;
        t->raw_path_len = (size_t)(path_end - p);
        p = path_end;
    } else {
        /* absolute-form without a path: "http://h" and "http://h?q" mean "/" */
        t->raw_path = "/";
        t->raw_path_len = 1;
        pathbuf[0] = '/';
        n = 1;
    }
    pathbuf[n] = '\0';
    t->path = pathbuf;
    t->path_len = n;

    if (p < end) {                      /* *p == '?': the query stays raw */
        const char *q = ++p;
        for (; p < end; p++) {
            if (is_forbidden((unsigned char)*p))
                return 400;
        }
        t->query = q;
        t->query_len = (size_t)(end - q);
    }
    return 0;
}
