/* static — validators and conditional requests (RFC 9110 8.8, 13).
 *
 * Pure logic, no I/O: unit-tested in tests/unit/static/test_cond.c. */
#ifndef TT_STATIC_COND_H
#define TT_STATIC_COND_H

#include <stddef.h>
#include <stdint.h>

#define TT_ETAG_MAX       64    /* room for any ETag tt_etag_format writes */
#define TT_HTTP_DATE_LEN  29    /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* A strong ETag from the file's identity: "\"<size>-<mtime>-<inode>\"" in
 * lower-case hex, mtime in nanoseconds, and "-<suffix>" inside the quotes
 * when suffix is not NULL (the precompressed variants: "br", "gz"), so each
 * encoding has its own. Returns the length written (NUL-terminated). */
size_t tt_etag_format(char *buf, size_t cap, uint64_t size, int64_t mtime_sec,
                      long mtime_nsec, uint64_t ino, const char *suffix);

/* IMF-fixdate, for Last-Modified. buf has TT_HTTP_DATE_LEN + 1 bytes. */
void tt_http_date_format(int64_t t, char *buf);

/* An HTTP-date in any of the three forms RFC 9110 5.6.7 says a recipient
 * must accept (IMF-fixdate, RFC 850, asctime). 0 and *t on success, -1 for
 * anything else. */
int tt_http_date_parse(const char *s, size_t len, int64_t *t);

/* Does an If-Match / If-None-Match list (or "*") contain etag? weak = 1 uses
 * the weak comparison (W/ prefixes ignored), weak = 0 the strong one (a weak
 * tag never matches). etag is the full quoted tag, as tt_etag_format writes. */
int tt_etag_match(const char *list, size_t len, const char *etag, size_t etag_len,
                  int weak);

typedef struct {                /* NULL when the header is absent */
    const char *if_match;             size_t if_match_len;
    const char *if_none_match;        size_t if_none_match_len;
    const char *if_modified_since;    size_t if_modified_since_len;
    const char *if_unmodified_since;  size_t if_unmodified_since_len;
} tt_cond_headers;

typedef enum {
    TT_COND_PROCEED,            /* send the representation (or its ranges) */
    TT_COND_NOT_MODIFIED,       /* 304 */
    TT_COND_FAILED              /* 412 */
} tt_cond_result;

/* RFC 9110 13.2.2, in its order: If-Match (strong), else If-Unmodified-Since;
 * then If-None-Match (weak; a match is 304 for GET/HEAD, 412 otherwise), else
 * If-Modified-Since (GET/HEAD only). A date that does not parse is ignored;
 * so is If-Modified-Since when If-None-Match is present. */
tt_cond_result tt_cond_evaluate(const tt_cond_headers *h, int get_or_head,
                                const char *etag, size_t etag_len,
                                int64_t last_modified);

/* If-Range (RFC 9110 13.1.5): 1 when the Range header should be honoured, 0
 * when the whole representation must be sent instead. An entity-tag matches
 * by strong comparison; an HTTP-date matches only when it equals
 * last_modified exactly. */
int tt_cond_if_range(const char *value, size_t len, const char *etag, size_t etag_len,
                     int64_t last_modified);

#endif
