/* Value parsers for the config: sizes, durations, rates, booleans, ${ENV}.
 *
 * All of them are strict: the whole string must be a value, with no spaces,
 * signs or fractions, and every overflow is an error.  A config that says
 * "10 MB" or "1.5GB" gets a clear message instead of a guess.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/config.h"

/* Reads the leading decimal digits of s into *out; returns how many there
 * were, or 0 when there were none or the number does not fit. */
static size_t parse_digits(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/* ---- sizes ---- */

typedef struct {
    const char *suffix;
    unsigned    shift;
} size_unit;

/* binary units throughout: "KB" means 1024 bytes, as in nginx */
static const size_unit size_units[] = {
    { "",    0 },  { "b",   0 },
    { "k",   10 }, { "kb",  10 }, { "kib", 10 },
    { "m",   20 }, { "mb",  20 }, { "mib", 20 },
    { "g",   30 }, { "gb",  30 }, { "gib", 30 },
    { "t",   40 }, { "tb",  40 }, { "tib", 40 },
};

/* Size with its unit; *has_unit tells a rate "512KB/s" (bytes) from
 * "20/s" (requests). */
static int parse_size_unit(const char *s, size_t len, uint64_t *out, int *has_unit)
{
    uint64_t v;
    size_t nd = parse_digits(s, &v);

    if (nd == 0 || nd > len)
        return -1;
    const char *unit = s + nd;
    size_t ulen = len - nd;
    for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
        const size_unit *u = &size_units[i];
        if (strlen(u->suffix) != ulen || strncasecmp(unit, u->suffix, ulen) != 0)
            continue;
        uint64_t bytes;
        if (mul_overflows(v, (uint64_t)1 << u->shift, &bytes))
            return -1;
        *out = bytes;
        if (has_unit != NULL)
            *has_unit = ulen > 0;
        return 0;
    }
    return -1;
}

int tt_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL)
        return -1;
    return parse_size_unit(s, strlen(s), out, NULL);
}

/* ---- durations ---- */

typedef struct {
    const char *suffix;
    uint64_t    ms;
} duration_unit;

/* longest suffix first where one is a prefix of another ("ms" before "m");
 * units are lower-case only, as in nginx, where "M" would be a month */
static const duration_unit duration_units[] = {
    { "d",  86400000 }, { "h", 3600000 }, { "ms", 1 }, { "m", 60000 }, { "s", 1000 },
};

/* "1h30m" is accepted; each part must use a smaller unit than the one
 * before it, so "30m1h" or "1m1m" (almost surely typos) are refused. */
int tt_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0, last_unit = UINT64_MAX;

    if (s == NULL || *s == '\0')
        return -1;
    while (*s != '\0') {
        uint64_t v, part;
        size_t nd = parse_digits(s, &v);
        if (nd == 0)
            return -1;
        s += nd;
        if (*s == '\0') {
            /* a bare number is seconds, but only on its own: "1h30" is unclear */
            if (last_unit != UINT64_MAX)
                return -1;
            uint64_t bare;
            if (mul_overflows(v, 1000, &bare))
                return -1;
            *ms = bare;
            return 0;
        }
        const duration_unit *u = NULL;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            size_t ul = strlen(duration_units[i].suffix);
            if (strncmp(s, duration_units[i].suffix, ul) == 0
                && !(s[ul] >= 'a' && s[ul] <= 'z')) {
                u = &duration_units[i];
                break;
            }
        }
        if (u == NULL || u->ms >= last_unit)
            return -1;
        if (mul_overflows(v, u->ms, &part) || __builtin_add_overflow(total, part, &total))
            return -1;
        last_unit = u->ms;
        s += strlen(u->suffix);
    }
    *ms = total;
    return 0;
}

/* ---- rates ---- */

int tt_parse_rate(const char *s, tt_rate *out)
{
    const char *slash;
    uint64_t amount;
    int has_unit = 0;
    double per;

    if (s == NULL || (slash = strchr(s, '/')) == NULL)
        return -1;
    if (parse_size_unit(s, (size_t)(slash - s), &amount, &has_unit) < 0)
        return -1;
    const char *unit = slash + 1;
    if (strcmp(unit, "s") == 0)
        per = 1;
    else if (strcmp(unit, "m") == 0)
        per = 60;
    else if (strcmp(unit, "h") == 0)
        per = 3600;
    else
        return -1;
    out->bytes = has_unit;
    out->per_sec = (double)amount / per;
    return 0;
}

/* ---- booleans ---- */

int tt_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = { "true", "yes", "on" };
    static const char *const no[] = { "false", "no", "off" };

    if (s == NULL)
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* ---- ${ENV} ---- */

typedef struct {
    char  *p;
    size_t len, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* The one reason the last call failed.  It names the variable, so it cannot
 * be a constant; a config is loaded by one thread, and the text is only valid
 * until the next call. */
static char env_why[600];

/* "$$" and a "$" not followed by "{" are copied as they are, so a password
 * like "pa$$word" or "pa$s" survives; "$$" also shields a following "{", so
 * "$${X}" stays "$${X}" and is no reference.  ${NAME:-default} uses the default when NAME is unset or empty, as
 * in sh; the default is taken literally, up to the first "}". */
char *tt_expand_env(const char *in, size_t *badoff, const char **why)
{
    strbuf out = { 0 };
    const char *p = in;

    if (sb_add(&out, "", 0) < 0)
        goto oom;
    while (*p != '\0') {
        const char *dollar = strchr(p, '$');
        if (dollar == NULL) {
            if (sb_add(&out, p, strlen(p)) < 0)
                goto oom;
            break;
        }
        if (sb_add(&out, p, (size_t)(dollar - p)) < 0)
            goto oom;
        if (dollar[1] == '$') {
            if (sb_add(&out, "$$", 2) < 0)
                goto oom;
            p = dollar + 2;
            continue;
        }
        if (dollar[1] != '{') {
            if (sb_add(&out, "$", 1) < 0)
                goto oom;
            p = dollar + 1;
            continue;
        }

        const char *name = dollar + 2, *q = name;
        const char *def = NULL;
        size_t deflen = 0;
        while (is_name_char(*q))
            q++;
        size_t namelen = (size_t)(q - name);
        if (strchr(q, '}') == NULL) {
            *badoff = (size_t)(dollar - in);
            *why = "'${' has no closing '}'; write ${NAME} or ${NAME:-default}";
            free(out.p);
            return NULL;
        }
        if (namelen == 0 || !is_name_start(*name)) {
            *badoff = (size_t)(dollar - in);
            *why = "'${' must be followed by a variable name, as in ${NAME} or ${NAME:-default}";
            free(out.p);
            return NULL;
        }
        if (q[0] == ':' && q[1] == '-') {
            def = q + 2;
            q = strchr(def, '}');
            deflen = (size_t)(q - def);
        } else if (q[0] != '}') {
            *badoff = (size_t)(dollar - in);
            *why = "a variable reference is ${NAME} or ${NAME:-default}; "
                   "a name has only letters, digits and '_'";
            free(out.p);
            return NULL;
        }

        char namebuf[256];
        if (namelen >= sizeof(namebuf)) {
            *badoff = (size_t)(dollar - in);
            *why = "environment variable name is too long";
            free(out.p);
            return NULL;
        }
        memcpy(namebuf, name, namelen);
        namebuf[namelen] = '\0';
        const char *val = getenv(namebuf);
        if (def != NULL && (val == NULL || *val == '\0')) {
            if (sb_add(&out, def, deflen) < 0)
                goto oom;
        } else if (val == NULL) {
            *badoff = (size_t)(dollar - in);
            snprintf(env_why, sizeof(env_why),
                     "environment variable %s is not set; set it or write ${%s:-default}",
                     namebuf, namebuf);
            *why = env_why;
            free(out.p);
            return NULL;
        } else if (sb_add(&out, val, strlen(val)) < 0) {
            goto oom;
        }
        p = q + 1;
    }
    return out.p;

oom:
    free(out.p);
    *badoff = (size_t)(p - in);
    *why = "out of memory";
    return NULL;
}

/* ---- suggestions ---- */

unsigned tt_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned small[64];
    unsigned *row = lb + 1 <= 64 ? small : malloc((lb + 1) * sizeof(*row));

    if (row == NULL)
        return UINT_MAX;
    /* one row of the Levenshtein matrix; `diag` carries the cell above-left */
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    unsigned d = row[lb];
    if (row != small)
        free(row);
    return d;
}

/* Close enough means at most max(2, len/3) edits, and fewer edits than
 * letters: "ab" is not a typo of "cd". The first of equally close words wins. */
const char *tt_suggest(const char *word, const char *const *known)
{
    size_t wl = strlen(word);
    unsigned limit = wl / 3 > 2 ? (unsigned)(wl / 3) : 2;
    const char *best = NULL;
    unsigned best_d = UINT_MAX;

    if (known == NULL)
        return NULL;
    for (size_t i = 0; known[i] != NULL; i++) {
        size_t kl = strlen(known[i]);
        size_t longer = kl > wl ? kl : wl;
        /* the length difference alone is a lower bound: skip hopeless words */
        if ((kl > wl ? kl - wl : wl - kl) > limit)
            continue;
        unsigned d = tt_edit_distance(word, known[i]);
        if (d <= limit && d < longer && d < best_d) {
            best = known[i];
            best_d = d;
        }
    }
    return best;
}
