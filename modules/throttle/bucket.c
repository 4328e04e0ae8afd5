/* throttle — token bucket arithmetic (see bucket.h). */
#include <time.h>
#include "bucket.h"

void tt_bucket_cfg_set(tt_bucket_cfg *cfg, double per_sec, unsigned long burst,
                       unsigned workers)
{
    if (workers == 0)
        workers = 1;
    if (burst == 0)
        burst = 1;
    /* units per ms = per_sec / workers * TOKEN / 1000; rounded to nearest,
     * and never 0, which would be a bucket that never refills */
    double rate = per_sec / workers * (double)(TT_BUCKET_TOKEN / 1000);
    cfg->rate = rate < 1.0 ? 1 : (uint64_t)(rate + 0.5);
    unsigned long tokens = (burst + workers - 1) / workers;
    cfg->capacity = (uint64_t)(tokens > 0 ? tokens : 1) * TT_BUCKET_TOKEN;
}

unsigned long tt_bucket_default_burst(double per_sec)
{
    if (per_sec <= 1.0)
        return 1;
    if (per_sec >= (double)TT_BUCKET_MAX_BURST)
        return TT_BUCKET_MAX_BURST;
    unsigned long whole = (unsigned long)per_sec;    /* rounded down */
    return (double)whole < per_sec ? whole + 1 : whole;
}

void tt_bucket_fill(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now_ms)
{
    b->units = cfg->capacity;
    b->last_ms = now_ms;
}

void tt_bucket_refill(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;                 /* same millisecond (or a clock that stepped back) */
    uint64_t elapsed = now_ms - b->last_ms;
    uint64_t room = b->units < cfg->capacity ? cfg->capacity - b->units : 0;

    b->last_ms = now_ms;
    /* elapsed * rate may not fit in 64 bits after a long idle time: compare
     * by division first. elapsed <= room / rate implies elapsed * rate <= room. */
    if (elapsed > room / cfg->rate) {
        b->units = cfg->capacity;
        return;
    }
    b->units += elapsed * cfg->rate;
}

int tt_bucket_take(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now_ms)
{
    tt_bucket_refill(b, cfg, now_ms);
    if (b->units < TT_BUCKET_TOKEN)
        return 0;
    b->units -= TT_BUCKET_TOKEN;
    return 1;
}

uint64_t tt_bucket_ms_until_token(tt_bucket *b, const tt_bucket_cfg *cfg,
                                  uint64_t now_ms)
{
    tt_bucket_refill(b, cfg, now_ms);
    if (b->units >= TT_BUCKET_TOKEN)
        return 0;
    uint64_t missing = TT_BUCKET_TOKEN - b->units;
    return (missing + cfg->rate - 1) / cfg->rate;
}

uint64_t tt_bucket_retry_after(tt_bucket *b, const tt_bucket_cfg *cfg,
                               uint64_t now_ms)
{
    uint64_t ms = tt_bucket_ms_until_token(b, cfg, now_ms);
    uint64_t s = (ms + 999) / 1000;
    return s > 0 ? s : 1;
}

uint64_t tt_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
