/* throttle's client table: lookups, LRU reuse order, a bounded count under
 * a flood of new keys, and entries with requests in flight never reused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "table.h"

/* 10.0.x.y for n = x * 256 + y; IPv6 2001:db8::n for v6 */
static tt_addr key4(unsigned n)
{
    tt_addr a;
    memset(&a, 0, sizeof(a));
    a.family = TT_ADDR_V4;
    a.bytes[0] = 10;
    a.bytes[1] = (uint8_t)(n >> 16);
    a.bytes[2] = (uint8_t)(n >> 8);
    a.bytes[3] = (uint8_t)n;
    return a;
}

static tt_addr key6(unsigned n)
{
    tt_addr a;
    memset(&a, 0, sizeof(a));
    a.family = TT_ADDR_V6;
    a.bytes[0] = 0x20;
    a.bytes[1] = 0x01;
    a.bytes[2] = 0x0d;
    a.bytes[3] = 0xb8;
    memcpy(a.bytes + 12, &n, sizeof(n));
    return a;
}

static tt_client *get(tt_clients *t, unsigned n, int expect_made)
{
    tt_addr k = key4(n);
    int made = -1;
    tt_client *e = tt_clients_get(t, &k, &made);
    assert_non_null(e);
    assert_int_equal(made, expect_made);
    assert_memory_equal(&e->key, &k, sizeof(k));
    return e;
}

static int present(const tt_clients *t, unsigned n)
{
    tt_addr k = key4(n);
    return tt_clients_find(t, &k) != NULL;
}

static void test_get_finds_what_it_made(void **state)
{
    tt_clients *t = tt_clients_new(100, 42);
    (void)state;
    assert_non_null(t);
    tt_client *a = get(t, 1, 1);
    tt_client *b = get(t, 2, 1);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(get(t, 1, 0), a);
    assert_ptr_equal(get(t, 2, 0), b);
    assert_int_equal(tt_clients_count(t), 2);
    assert_false(present(t, 3));
    /* the same bytes in another family are another client */
    tt_addr v6 = key6(1);
    int made;
    assert_non_null(tt_clients_get(t, &v6, &made));
    assert_int_equal(made, 1);
    tt_clients_free(t);
}

static void test_new_entries_start_zeroed(void **state)
{
    tt_clients *t = tt_clients_new(1, 7);
    (void)state;
    tt_client *e = get(t, 1, 1);
    e->bucket.units = 123;
    e->unlogged_429 = 9;
    e->logged = 1;
    /* reused for another client: nothing of the old one is left */
    tt_client *f = get(t, 2, 1);
    assert_ptr_equal(f, e);
    assert_int_equal(f->bucket.units, 0);
    assert_int_equal(f->unlogged_429, 0);
    assert_int_equal(f->logged, 0);
    assert_int_equal(f->inflight, 0);
    assert_false(present(t, 1));
    tt_clients_free(t);
}

static void test_lru_order(void **state)
{
    tt_clients *t = tt_clients_new(3, 1);
    (void)state;
    get(t, 1, 1);
    get(t, 2, 1);
    get(t, 3, 1);
    get(t, 1, 0);               /* 1 is now the most recent: 2 is the oldest */
    get(t, 4, 1);
    assert_false(present(t, 2));
    assert_true(present(t, 1) && present(t, 3) && present(t, 4));
    get(t, 5, 1);               /* then 3 */
    assert_false(present(t, 3));
    get(t, 6, 1);               /* then 1 */
    assert_false(present(t, 1));
    assert_true(present(t, 4) && present(t, 5) && present(t, 6));
    assert_int_equal(tt_clients_count(t), 3);
    tt_clients_free(t);
}

static void test_find_does_not_touch(void **state)
{
    tt_clients *t = tt_clients_new(2, 1);
    (void)state;
    get(t, 1, 1);
    get(t, 2, 1);
    assert_true(present(t, 1)); /* a find, not a use */
    get(t, 3, 1);
    assert_false(present(t, 1));
    tt_clients_free(t);
}

static void test_flood_stays_bounded(void **state)
{
    tt_clients *t = tt_clients_new(1000, 99);
    (void)state;
    /* 50,000 distinct clients through a table of 1,000 */
    for (unsigned i = 0; i < 50000; i++) {
        get(t, i, 1);
        assert_true(tt_clients_count(t) <= 1000);
    }
    assert_int_equal(tt_clients_count(t), 1000);
    /* the last 1,000 are the ones kept */
    for (unsigned i = 49000; i < 50000; i++)
        assert_true(present(t, i));
    assert_false(present(t, 48999));
    /* and IPv6 clients in one /64 fare the same */
    for (unsigned i = 0; i < 20000; i++) {
        tt_addr k = key6(i);
        int made;
        assert_non_null(tt_clients_get(t, &k, &made));
    }
    assert_int_equal(tt_clients_count(t), 1000);
    tt_clients_free(t);
}

static void test_busy_entries_are_not_reused(void **state)
{
    tt_clients *t = tt_clients_new(3, 5);
    (void)state;
    tt_client *a = get(t, 1, 1);
    get(t, 2, 1);
    get(t, 3, 1);
    tt_clients_hold(t, a);      /* 1 is the oldest, but busy */
    get(t, 4, 1);
    assert_true(present(t, 1));
    assert_false(present(t, 2));
    assert_ptr_equal(get(t, 1, 0), a);  /* a busy entry is still found */
    assert_int_equal(a->inflight, 1);

    /* released: back in the LRU as the most recent */
    tt_clients_release(t, a);
    assert_int_equal(a->inflight, 0);
    get(t, 5, 1);               /* 3 goes, not 1 */
    assert_false(present(t, 3));
    assert_true(present(t, 1));
    tt_clients_free(t);
}

static void test_all_busy_gives_null(void **state)
{
    tt_clients *t = tt_clients_new(2, 5);
    tt_addr k = key4(3);
    int made = -1;
    (void)state;
    tt_client *a = get(t, 1, 1), *b = get(t, 2, 1);
    tt_clients_hold(t, a);
    tt_clients_hold(t, b);
    tt_clients_hold(t, b);      /* two in flight */
    assert_null(tt_clients_get(t, &k, &made));
    assert_int_equal(made, 0);
    assert_true(present(t, 1) && present(t, 2));
    /* known clients are still found while the table is full */
    assert_ptr_equal(get(t, 1, 0), a);

    tt_clients_release(t, b);
    assert_null(tt_clients_get(t, &k, &made));  /* b still has one */
    tt_clients_release(t, b);
    assert_ptr_equal(get(t, 3, 1), b);          /* now it can go */
    assert_false(present(t, 2));
    /* a stray extra release does not wrap the count */
    tt_clients_release(t, b);
    assert_int_equal(b->inflight, 0);
    tt_clients_release(t, a);
    tt_clients_free(t);
}

static void test_free_with_busy_entries(void **state)
{
    tt_clients *t = tt_clients_new(10, 5);
    (void)state;
    /* a worker exiting with requests in flight: ASan checks nothing leaks */
    for (unsigned i = 0; i < 10; i++)
        tt_clients_hold(t, get(t, i, 1));
    tt_clients_free(t);
    tt_clients_free(NULL);
}

static void test_growth_keeps_everything(void **state)
{
    tt_clients *t = tt_clients_new(5000, 3);
    (void)state;
    /* the buckets double several times on the way; every entry survives */
    for (unsigned i = 0; i < 5000; i++)
        get(t, i * 7919, 1);
    for (unsigned i = 0; i < 5000; i++)
        assert_true(present(t, i * 7919));
    tt_clients_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_finds_what_it_made),
        cmocka_unit_test(test_new_entries_start_zeroed),
        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_find_does_not_touch),
        cmocka_unit_test(test_flood_stays_bounded),
        cmocka_unit_test(test_busy_entries_are_not_reused),
        cmocka_unit_test(test_all_busy_gives_null),
        cmocka_unit_test(test_free_with_busy_entries),
        cmocka_unit_test(test_growth_keeps_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
