/* throttle — the token bucket behind `requests:`, as pure arithmetic.
 *
 * Time comes in as an argument (milliseconds on a clock that never goes
 * back), so the module passes tt_monotonic_ms() and the unit tests pass
 * whatever instant they want to check.
 *
 * Amounts are integers in trillionths of a request: a rate of 600/m is
 * 10^10 units per millisecond, 1/h with four workers is 69,444 (off by
 * 6 ppm), and no floating point drift piles up over a long run. The largest
 * bucket (TT_BUCKET_MAX_BURST requests) is 10^18 units, under 2^64.
 */
#ifndef TT_THROTTLE_BUCKET_H
#define TT_THROTTLE_BUCKET_H

#include <stdint.h>

#define TT_BUCKET_TOKEN 1000000000000ull   /* one request, in bucket units */

/* Highest `requests` and `burst` the config accepts: keeps every product
 * in tt_bucket_cfg_set far from 2^64. */
#define TT_BUCKET_MAX_RATE  1000000.0   /* requests per second */
#define TT_BUCKET_MAX_BURST 1000000ul

typedef struct {
    uint64_t rate;          /* units per millisecond, at least 1 */
    uint64_t capacity;      /* units, a whole number of requests, at least one */
} tt_bucket_cfg;

typedef struct {
    uint64_t units;         /* what is in the bucket, at most capacity */
    uint64_t last_ms;       /* when units was last brought up to date */
} tt_bucket;

/* A limit of per_sec requests per second with room for burst requests,
 * shared out between `workers` processes that cannot see each other: each
 * refills at per_sec / workers and holds ceil(burst / workers), at least one.
 * per_sec in (0, TT_BUCKET_MAX_RATE], burst in [1, TT_BUCKET_MAX_BURST]. */
void tt_bucket_cfg_set(tt_bucket_cfg *cfg, double per_sec, unsigned long burst,
                       unsigned workers);

/* The default burst for a rate: one second's worth rounded up, at least 1. */
unsigned long tt_bucket_default_burst(double per_sec);

/* A new client starts with a full bucket. */
void tt_bucket_fill(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now_ms);

/* Add what accrued since the last call, up to the capacity. */
void tt_bucket_refill(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now_ms);

/* Take one request's token: 1 when there was one, 0 when the client is over
 * its limit (the bucket is left as it was). */
int tt_bucket_take(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now_ms);

/* Milliseconds until a whole token is in the bucket; 0 when one is now. */
uint64_t tt_bucket_ms_until_token(tt_bucket *b, const tt_bucket_cfg *cfg,
                                  uint64_t now_ms);

/* The same in whole seconds for Retry-After: rounded up, at least 1, so a
 * client that waits that long is sure to get through. */
uint64_t tt_bucket_retry_after(tt_bucket *b, const tt_bucket_cfg *cfg,
                               uint64_t now_ms);

/* Milliseconds on CLOCK_MONOTONIC_COARSE: cheap (no system call), a few ms
 * coarse, which is plenty for request rates. */
uint64_t tt_monotonic_ms(void);

#endif
