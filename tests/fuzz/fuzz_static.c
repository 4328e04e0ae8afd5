/* libFuzzer harness for the static module's header logic.
 *
 * The same bytes are read as a Range value, an HTTP-date, an entity-tag list,
 * an If-Range value and a file name. Beyond "no crash, no read past len",
 * it checks the promises send.c builds on: ranges come back sorted,
 * separate, inside the file and never adding up to more than it (no
 * amplification), and every date that parses formats back to itself.
 *
 *   ./configure --enable-fuzz CC=clang && make tests/fuzz/fuzz_static
 *   ./tests/fuzz/fuzz_static -max_total_time=60 tests/fuzz/corpus/static
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "cond.h"
#include "mime.h"
#include "range.h"

#define TT_YEAR_1     -62135596800LL    /* 0001-01-01: the formatter's range */
#define TT_YEAR_9999  253402300799LL

static void *zalloc(size_t n)
{
    return calloc(1, n);
}

static void check_ranges(const char *v, size_t len, uint64_t size)
{
    tt_range out[TT_RANGE_MAX_SPECS];
    size_t n = 12345;
    uint64_t total = 0;

    if (tt_range_parse(v, len, size, out, TT_RANGE_MAX_SPECS, &n) != TT_RANGE_OK) {
        if (n != 0)
            abort();
        return;
    }
    if (n == 0 || n > TT_RANGE_MAX_SPECS)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (out[i].first > out[i].last || out[i].last >= size)
            abort();
        if (i > 0 && out[i].first <= out[i - 1].last + 1)
            abort();                    /* unsorted, or overlapping and not merged */
        total += out[i].last - out[i].first + 1;
    }
    if (total > size)
        abort();
}

static void check_date(const char *v, size_t len)
{
    int64_t t, back;
    char buf[TT_HTTP_DATE_LEN + 1];

    if (tt_http_date_parse(v, len, &t) != 0 || t < TT_YEAR_1 || t > TT_YEAR_9999)
        return;
    tt_http_date_format(t, buf);
    if (tt_http_date_parse(buf, TT_HTTP_DATE_LEN, &back) != 0 || back != t)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tt_mime *types;
    static const uint64_t file_sizes[] = { 0, 1, 1000, 1u << 20, UINT64_MAX };
    static const char etag[] = "\"400-18ea45807a6a98e5-a82451\"";

    if (types == NULL) {
        types = tt_mime_new(zalloc);    /* once; lives for the whole run */
        tt_mime_add_builtin(types);
    }
    /* an exact-size copy, so ASan sees any read past len */
    char *v = malloc(size ? size : 1);
    memcpy(v, data, size);

    for (size_t i = 0; i < sizeof(file_sizes) / sizeof(file_sizes[0]); i++)
        check_ranges(v, size, file_sizes[i]);
    check_date(v, size);
    tt_etag_match(v, size, etag, sizeof(etag) - 1, 0);
    tt_etag_match(v, size, etag, sizeof(etag) - 1, 1);
    tt_cond_if_range(v, size, etag, sizeof(etag) - 1, 784111777);
    tt_mime_lookup(types, v, size);

    tt_cond_headers h = { v, size, v, size, v, size, v, size };
    tt_cond_evaluate(&h, 1, etag, sizeof(etag) - 1, 784111777);
    free(v);
    return 0;
}
