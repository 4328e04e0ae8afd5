/* static — the Range header (RFC 9110 14.1.2, 14.2): parse, clip, sort,
 * coalesce. No I/O and no heap: the worst case is TT_RANGE_MAX_SPECS ranges
 * in an array on the stack. */
#include "range.h"

/* One number as written: its significant digits (leading zeros skipped) and
 * its value, clamped to UINT64_MAX when it does not fit, so a huge number is
 * never wrapped into a small one. The digits are kept because two clamped
 * numbers still have to be compared exactly (last < first). */
typedef struct {
    const char *digits;
    size_t      ndigits;
    uint64_t    value;
} decimal;

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads 1*DIGIT at *p. 0 when there is no digit at all. */
static int read_decimal(const char **p, const char *end, decimal *d)
{
    const char *s = *p;

    if (s == end || !is_digit(*s))
        return 0;
    while (s + 1 < end && *s == '0' && is_digit(s[1]))
        s++;
    d->digits = s;
    d->value = 0;
    for (; s < end && is_digit(*s); s++) {
        uint64_t digit = (uint64_t)(*s - '0');

        if (d->value > (UINT64_MAX - digit) / 10)
            d->value = UINT64_MAX;
        else
            d->value = d->value * 10 + digit;
    }
    d->ndigits = (size_t)(s - d->digits);
    *p = s;
    return 1;
}

/* a < b on the numbers as written, not as clamped. */
static int decimal_less(const decimal *a, const decimal *b)
{
    size_t i;

    if (a->ndigits != b->ndigits)
        return a->ndigits < b->ndigits;
    for (i = 0; i < a->ndigits; i++)
        if (a->digits[i] != b->digits[i])
            return a->digits[i] < b->digits[i];
    return 0;
}

/* Does value start with the unit "bytes" (any case) and '='? No whitespace
 * is allowed on either side of the unit: RFC 9110 has none there. */
static int skip_bytes_unit(const char **p, const char *end)
{
    static const char unit[] = "bytes=";
    const char *s = *p;
    size_t i;

    if ((size_t)(end - s) < sizeof unit - 1)
        return 0;
    for (i = 0; i < sizeof unit - 1; i++) {
        char c = s[i];

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != unit[i])
            return 0;
    }
    *p = s + sizeof unit - 1;
    return 1;
}

typedef enum { SPEC_BAD, SPEC_INVALID_ORDER, SPEC_UNSATISFIABLE, SPEC_OK } spec_result;

/* One range-spec at *p: "first-", "first-last" or "-suffix". On SPEC_OK, r
 * holds it clipped to [0, size). Only digits and one '-' belong to a spec;
 * anything else in it is a syntax error for the caller to see. */
static spec_result read_spec(const char **p, const char *end, uint64_t size, tt_range *r)
{
    const char *s = *p;
    decimal first, last;

    if (s < end && *s == '-') {
        s++;
        if (!read_decimal(&s, end, &last))
            return SPEC_BAD;
        *p = s;
        /* "-0" asks for no bytes at all, and nothing of an empty file */
        if (last.value == 0 || size == 0)
            return SPEC_UNSATISFIABLE;
        r->first = last.value >= size ? 0 : size - last.value;
        r->last = size - 1;
        return SPEC_OK;
    }
    if (!read_decimal(&s, end, &first))
        return SPEC_BAD;
    if (s == end || *s != '-')
        return SPEC_BAD;
    s++;
    if (read_decimal(&s, end, &last)) {
        if (decimal_less(&last, &first))
            return SPEC_INVALID_ORDER;
    } else {
        last.value = UINT64_MAX;        /* "first-": to the end */
    }
    *p = s;
    if (first.value >= size)            /* also every clamped first */
        return SPEC_UNSATISFIABLE;
    r->first = first.value;
    r->last = last.value >= size ? size - 1 : last.value;
    return SPEC_OK;
}

/* Insertion sort by first: at most TT_RANGE_MAX_SPECS elements, usually 1. */
static void sort_by_first(tt_range *r, size_t n)
{
    size_t i, j;

    for (i = 1; i < n; i++) {
        tt_range key = r[i];

        for (j = i; j > 0 && r[j - 1].first > key.first; j--)
            r[j] = r[j - 1];
        r[j] = key;
    }
}

/* Merge sorted ranges in place; returns how many remain. Two ranges merge
 * when they overlap, touch, or the gap between them (the bytes after a.last
 * and before b.first: b.first - a.last - 1) is less than
 * TT_RANGE_COALESCE_GAP: so 0-9 and 89-99 (gap 79) merge, 0-9 and 90-99
 * (gap 80) stay apart. Written without a.last + GAP, which could overflow. */
static size_t coalesce(tt_range *r, size_t n)
{
    size_t out = 0, i;

    if (n == 0)
        return 0;
    for (i = 1; i < n; i++) {
        tt_range *cur = &r[out];

        if (r[i].first <= cur->last || r[i].first - cur->last - 1 < TT_RANGE_COALESCE_GAP) {
            if (r[i].last > cur->last)
                cur->last = r[i].last;
        } else {
            r[++out] = r[i];
        }
    }
    return out + 1;
}

tt_range_result tt_range_parse(const char *value, size_t len, uint64_t size,
                               tt_range *out, size_t max, size_t *n)
{
    tt_range found[TT_RANGE_MAX_SPECS];
    const char *p = value, *end;
    size_t specs = 0, nfound = 0, i;

    *n = 0;
    if (value == NULL)
        return TT_RANGE_NONE;
    end = value + len;
    if (!skip_bytes_unit(&p, end))
        return TT_RANGE_NONE;

    /* 1#range-spec with OWS around the commas; empty elements are allowed
     * (RFC 9110 5.6.1.2), but at least one spec must be there. */
    while (p < end) {
        tt_range r;
        spec_result sr;

        if (is_ows(*p) || *p == ',') {
            p++;
            continue;
        }
        if (++specs > TT_RANGE_MAX_SPECS)
            return TT_RANGE_NONE;
        sr = read_spec(&p, end, size, &r);
        if (sr == SPEC_BAD || sr == SPEC_INVALID_ORDER)
            return TT_RANGE_NONE;
        /* after a spec: OWS, then a comma or the end ("0-1x", "0-1-2",
         * "0 -1" and "0-1 2-3" are all wrong) */
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',')
            return TT_RANGE_NONE;
        if (sr == SPEC_OK)
            found[nfound++] = r;
    }
    if (specs == 0)
        return TT_RANGE_NONE;
    if (nfound == 0)
        return TT_RANGE_UNSATISFIABLE;

    sort_by_first(found, nfound);
    nfound = coalesce(found, nfound);
    if (nfound > max)
        return TT_RANGE_NONE;
    for (i = 0; i < nfound; i++)
        out[i] = found[i];
    *n = nfound;
    return TT_RANGE_OK;
}
