/* wsgi — pure text rules, without Python: what an `app:` value may look
 * like, how a header name becomes its environ key, and where the reason
 * phrase of a WSGI status starts. Unit-tested in tests/unit/wsgi. */
#ifndef TT_WSGI_SPEC_H
#define TT_WSGI_SPEC_H

#include <stddef.h>

/* "pkg.mod:attr.attr", optionally ending in "()" (a factory to call) */
int wsgi_app_spec_ok(const char *spec);

/* "X-Forwarded-For" -> "HTTP_X_FORWARDED_FOR" into out (room for n bytes),
 * returning its length; 0 for a name with an underscore (it could pose as
 * the dashed one, so nginx drops them, and so do we) or one too long. */
size_t wsgi_cgi_name(const char *name, size_t len, char *out, size_t n);

/* The status code of a WSGI status ("200 OK" -> 200), or -1 unless it is
 * three digits, the first 1-9, then the end or a space. */
int wsgi_status_code(const char *status, size_t len);

#endif
