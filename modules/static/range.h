/* static — the Range header (RFC 9110 14.2).
 *
 * Pure logic, no I/O: unit-tested in tests/unit/static/test_range.c. */
#ifndef TT_STATIC_RANGE_H
#define TT_STATIC_RANGE_H

#include <stddef.h>
#include <stdint.h>

/* More range-specs than this in one header and the header is ignored (the
 * whole file is sent), as nginx's max_ranges does: a list that long is an
 * attack on the server, not a download manager. */
#define TT_RANGE_MAX_SPECS 100

/* Ranges closer than this are merged into one part: a gap smaller than a
 * multipart part's own head costs less to send than to describe. */
#define TT_RANGE_COALESCE_GAP 80

typedef struct {
    uint64_t first;             /* inclusive */
    uint64_t last;              /* inclusive, < size */
} tt_range;

typedef enum {
    TT_RANGE_NONE,              /* no usable Range header: send everything (200) */
    TT_RANGE_OK,                /* *n ranges in out, sorted and coalesced (206) */
    TT_RANGE_UNSATISFIABLE      /* none overlaps the file (416) */
} tt_range_result;

/* Parse a Range value against a representation of `size` bytes.
 *
 * - a unit other than "bytes" (case-insensitive), a syntax error, or a spec
 *   with last < first: TT_RANGE_NONE (RFC 9110 says such a header is ignored);
 * - more than TT_RANGE_MAX_SPECS specs: TT_RANGE_NONE;
 * - "a-b", "a-" and "-n" (suffix); OWS around commas and empty list elements
 *   are allowed; numbers too large for 64 bits are clamped, never wrapped;
 * - specs that start at or past the end, and "-0", are unsatisfiable; if no
 *   spec is satisfiable: TT_RANGE_UNSATISFIABLE (also for any range of an
 *   empty file);
 * - satisfiable ranges are clipped to the file, sorted, and merged when they
 *   overlap or are less than TT_RANGE_COALESCE_GAP bytes apart; if more than
 *   `max` remain: TT_RANGE_NONE.
 * The total length of the ranges in out never exceeds size. */
tt_range_result tt_range_parse(const char *value, size_t len, uint64_t size,
                               tt_range *out, size_t max, size_t *n);

#endif
