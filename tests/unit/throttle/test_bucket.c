/* The token bucket behind throttle's `requests:`: refill over time, the
 * burst cap, rates below one a second, Retry-After, the split between
 * workers, and long idle times. Time is a plain number here: the bucket
 * takes it as an argument, so these tests are the fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "bucket.h"

/* Take tokens at one instant until the bucket refuses; how many it gave. */
static unsigned drain(tt_bucket *b, const tt_bucket_cfg *cfg, uint64_t now)
{
    unsigned n = 0;
    while (tt_bucket_take(b, cfg, now))
        if (++n > 10000000)
            fail_msg("the bucket never ran dry");
    return n;
}

static void test_full_at_start_then_empty(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    tt_bucket_cfg_set(&cfg, 5, 5, 1);           /* requests: 5/s, burst: 5 */
    tt_bucket_fill(&b, &cfg, 1000);
    assert_int_equal(drain(&b, &cfg, 1000), 5);
    assert_int_equal(tt_bucket_take(&b, &cfg, 1000), 0);
}

static void test_refill_over_time(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    tt_bucket_cfg_set(&cfg, 5, 5, 1);           /* a token every 200 ms */
    tt_bucket_fill(&b, &cfg, 0);
    drain(&b, &cfg, 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 199), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 200), 1);
    assert_int_equal(tt_bucket_take(&b, &cfg, 200), 0);
    /* a failed take spends nothing: the next token is still due at 400 */
    assert_int_equal(tt_bucket_take(&b, &cfg, 300), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 400), 1);
    /* one second later: five more */
    assert_int_equal(drain(&b, &cfg, 1400), 5);
}

static void test_many_small_steps_add_up(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    /* 7/s is a token every 142.857 ms: taking every ms must not lose the
     * fractions (burst 2, so that a full bucket does not drop them) */
    tt_bucket_cfg_set(&cfg, 7, 2, 1);
    tt_bucket_fill(&b, &cfg, 0);
    drain(&b, &cfg, 0);
    unsigned got = 0;
    for (uint64_t t = 1; t <= 10000; t++)
        got += (unsigned)tt_bucket_take(&b, &cfg, t);
    assert_int_equal(got, 70);                  /* 7/s for 10 s */
}

static void test_burst_caps_the_bucket(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    tt_bucket_cfg_set(&cfg, 20, 40, 1);
    tt_bucket_fill(&b, &cfg, 0);
    assert_int_equal(drain(&b, &cfg, 0), 40);
    /* an hour idle fills it to 40, not to 72000 */
    assert_int_equal(drain(&b, &cfg, 3600 * 1000), 40);
}

static void test_per_minute_rate(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    /* 600/m = 10/s: a token every 100 ms */
    tt_bucket_cfg_set(&cfg, 600.0 / 60, 1, 1);
    tt_bucket_fill(&b, &cfg, 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 0), 1);
    assert_int_equal(tt_bucket_take(&b, &cfg, 99), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 100), 1);

    /* 1/m: a token every minute */
    tt_bucket_cfg_set(&cfg, 1.0 / 60, 1, 1);
    tt_bucket_fill(&b, &cfg, 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 0), 1);
    assert_int_equal(tt_bucket_take(&b, &cfg, 59999), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 60000), 1);

    /* 1/h with 4 workers: each gets one per 4 h, and still refills */
    tt_bucket_cfg_set(&cfg, 1.0 / 3600, 1, 4);
    assert_true(cfg.rate >= 1);
    tt_bucket_fill(&b, &cfg, 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 0), 1);
    assert_int_equal(tt_bucket_take(&b, &cfg, 4 * 3600 * 1000 - 60000), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 4 * 3600 * 1000 + 60000), 1);
}

static void test_default_burst(void **state)
{
    (void)state;
    assert_int_equal(tt_bucket_default_burst(20), 20);
    assert_int_equal(tt_bucket_default_burst(2.5), 3);     /* rounded up */
    assert_int_equal(tt_bucket_default_burst(10), 10);     /* 600/m */
    assert_int_equal(tt_bucket_default_burst(1.0 / 60), 1);
    assert_int_equal(tt_bucket_default_burst(1), 1);
    assert_int_equal(tt_bucket_default_burst(1e12), TT_BUCKET_MAX_BURST);
}

static void test_split_between_workers(void **state)
{
    tt_bucket_cfg one, two, three;
    (void)state;

    tt_bucket_cfg_set(&one, 20, 40, 1);
    tt_bucket_cfg_set(&two, 20, 40, 2);
    assert_int_equal(two.rate * 2, one.rate);
    assert_int_equal(two.capacity, 20 * TT_BUCKET_TOKEN);
    /* ceil(5 / 3) = 2 each */
    tt_bucket_cfg_set(&three, 5, 5, 3);
    assert_int_equal(three.capacity, 2 * TT_BUCKET_TOKEN);
    /* a burst smaller than the workers still leaves room for one */
    tt_bucket_cfg_set(&three, 1, 1, 3);
    assert_int_equal(three.capacity, TT_BUCKET_TOKEN);
    /* workers 0 is taken as 1 rather than divided by */
    tt_bucket_cfg_set(&three, 20, 40, 0);
    assert_int_equal(three.rate, one.rate);
}

static void test_retry_after(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    tt_bucket_cfg_set(&cfg, 5, 5, 1);           /* 200 ms a token */
    tt_bucket_fill(&b, &cfg, 0);
    drain(&b, &cfg, 0);
    assert_int_equal(tt_bucket_ms_until_token(&b, &cfg, 0), 200);
    assert_int_equal(tt_bucket_ms_until_token(&b, &cfg, 150), 50);
    /* under a second still says 1, never 0 */
    assert_int_equal(tt_bucket_retry_after(&b, &cfg, 0), 1);
    assert_int_equal(tt_bucket_retry_after(&b, &cfg, 199), 1);
    /* a token in the bucket: 0 ms, but Retry-After is at least 1 */
    assert_int_equal(tt_bucket_ms_until_token(&b, &cfg, 200), 0);
    assert_int_equal(tt_bucket_retry_after(&b, &cfg, 200), 1);

    /* 6/m is a token every 10 s; 2.5 s in, 7.5 s are left: 8 */
    tt_bucket_cfg_set(&cfg, 6.0 / 60, 1, 1);
    tt_bucket_fill(&b, &cfg, 0);
    drain(&b, &cfg, 0);
    assert_int_equal(tt_bucket_ms_until_token(&b, &cfg, 2500), 7500);
    assert_int_equal(tt_bucket_retry_after(&b, &cfg, 2500), 8);
    assert_int_equal(tt_bucket_retry_after(&b, &cfg, 9000), 1);
    /* exactly whole: 10 s, not 11 */
    tt_bucket_fill(&b, &cfg, 0);
    drain(&b, &cfg, 0);
    assert_int_equal(tt_bucket_retry_after(&b, &cfg, 0), 10);
}

static void test_retry_after_is_enough(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    /* a client that waits exactly Retry-After seconds gets through */
    for (unsigned per_min = 1; per_min <= 600; per_min += 37) {
        tt_bucket_cfg_set(&cfg, per_min / 60.0, 1, 1);
        tt_bucket_fill(&b, &cfg, 5000);
        drain(&b, &cfg, 5000);
        uint64_t s = tt_bucket_retry_after(&b, &cfg, 5000);
        assert_int_equal(tt_bucket_take(&b, &cfg, 5000 + s * 1000), 1);
    }
}

static void test_no_overflow_after_long_idle(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    /* the highest rate and burst, idle for most of 2^64 ms */
    tt_bucket_cfg_set(&cfg, TT_BUCKET_MAX_RATE, TT_BUCKET_MAX_BURST, 1);
    tt_bucket_fill(&b, &cfg, 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 0), 1);
    tt_bucket_refill(&b, &cfg, UINT64_MAX - 1);
    assert_int_equal(b.units, cfg.capacity);
    tt_bucket_refill(&b, &cfg, UINT64_MAX);
    assert_int_equal(b.units, cfg.capacity);

    /* and at the lowest rate */
    tt_bucket_cfg_set(&cfg, 1.0 / 3600, 1, 64);
    tt_bucket_fill(&b, &cfg, 0);
    drain(&b, &cfg, 0);
    tt_bucket_refill(&b, &cfg, UINT64_MAX);
    assert_int_equal(b.units, cfg.capacity);
}

static void test_clock_going_back_adds_nothing(void **state)
{
    tt_bucket_cfg cfg;
    tt_bucket b;
    (void)state;

    tt_bucket_cfg_set(&cfg, 1, 1, 1);
    tt_bucket_fill(&b, &cfg, 10000);
    drain(&b, &cfg, 10000);
    assert_int_equal(tt_bucket_take(&b, &cfg, 5000), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 10999), 0);
    assert_int_equal(tt_bucket_take(&b, &cfg, 11000), 1);
}

static void test_monotonic_clock(void **state)
{
    (void)state;
    uint64_t a = tt_monotonic_ms(), b = tt_monotonic_ms();
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_at_start_then_empty),
        cmocka_unit_test(test_refill_over_time),
        cmocka_unit_test(test_many_small_steps_add_up),
        cmocka_unit_test(test_burst_caps_the_bucket),
        cmocka_unit_test(test_per_minute_rate),
        cmocka_unit_test(test_default_burst),
        cmocka_unit_test(test_split_between_workers),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_retry_after_is_enough),
        cmocka_unit_test(test_no_overflow_after_long_idle),
        cmocka_unit_test(test_clock_going_back_adds_nothing),
        cmocka_unit_test(test_monotonic_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
