/* wsgi — pure text rules; see spec.h. */
#include <ctype.h>
#include <string.h>
#include "spec.h"

int wsgi_app_spec_ok(const char *s)
{
    const char *colon = strchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0' || strchr(colon + 1, ':') != NULL)
        return 0;
    size_t len = strlen(s);
    size_t end = len >= 2 && strcmp(s + len - 2, "()") == 0 ? len - 2 : len;
    if (end <= (size_t)(colon - s) + 1)
        return 0;                       /* "mod:()" */
    for (const char *p = s; p < s + end; p++) {
        if (p == colon)
            continue;
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.'))
            return 0;
        /* every dotted name starts with a letter or _ */
        int starts = p == s || p[-1] == '.' || p[-1] == ':';
        if (starts && (*p == '.' || isdigit((unsigned char)*p)))
            return 0;
    }
    return s[end - 1] != '.' && colon[-1] != '.';
}

size_t wsgi_cgi_name(const char *name, size_t len, char *out, size_t n)
{
    if (len == 0 || len + 5 > n || memchr(name, '_', len) != NULL)
        return 0;
    memcpy(out, "HTTP_", 5);
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        out[5 + i] = ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    }
    return len + 5;
}

int wsgi_status_code(const char *s, size_t len)
{
    if (len < 3 || s[0] < '1' || s[0] > '9' || !isdigit((unsigned char)s[1]) ||
        !isdigit((unsigned char)s[2]) || (len > 3 && s[3] != ' '))
        return -1;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}
