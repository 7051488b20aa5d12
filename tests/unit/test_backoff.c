/* test_backoff.c: retry delays and Retry-After parsing (dispatch/backoff.c).
 *
 * Delays are deterministic because the caller passes the random value: rnd = 0 gives the
 * shortest delay, rnd = UINT64_MAX the ceiling, 2^63 about half of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/backoff.h"

#define MID (UINT64_C(1) << 63)
#define MINUTES(m) ((uint64_t)(m)*60 * 1000)

static hr_retry_t exp_policy(uint64_t interval_ms, uint64_t max_ms)
{
    hr_retry_t r = {.max_retries = 5,
                    .interval_ms = interval_ms,
                    .backoff = HR_BACKOFF_EXPONENTIAL,
                    .max_interval_ms = max_ms,
                    .timeout_ms = 30000};
    return r;
}

static void test_exponential_table(void **state)
{
    hr_retry_t r = exp_policy(1000, MINUTES(10));
    static const struct {
        int n;
        uint64_t rnd;
        uint64_t want;
    } cases[] = {
        {1, 0, 0},
        {1, UINT64_MAX, 1000},
        {1, MID, 500}, /* floor(2^63 * 1001 / 2^64) */
        {2, UINT64_MAX, 2000},
        {3, 0, 0},
        {3, UINT64_MAX, 4000},
        {3, MID, 2000},
        {10, UINT64_MAX, 512000},
        {11, UINT64_MAX, MINUTES(10)}, /* 1024 s > 600 s: capped */
        {11, MID, MINUTES(5)},
        {64, UINT64_MAX, MINUTES(10)},
        {65, UINT64_MAX, MINUTES(10)},
        {200, UINT64_MAX, MINUTES(10)},
        {200, 0, 0},
        {0, UINT64_MAX, 1000},  /* n < 1 is taken as the first retry */
        {-7, UINT64_MAX, 1000}, /* likewise */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t got = hr_backoff_delay_ms(&r, cases[i].n, cases[i].rnd, -1);
        if (got != cases[i].want)
            fail_msg("case %zu: n=%d got %llu want %llu", i, cases[i].n, (unsigned long long)got,
                     (unsigned long long)cases[i].want);
    }
}

/* The ceiling of retry n, computed the slow way. */
static uint64_t slow_ceiling(uint64_t interval, uint64_t max, int n)
{
    if (interval > max) return max;
    uint64_t c = interval;
    for (int i = 1; i < n; i++) {
        if (c > max / 2) return max; /* doubling would pass max */
        c *= 2;
    }
    return c;
}

static void test_exponential_bounds(void **state)
{
    static const uint64_t intervals[] = {1, 250, 1000, 2000, 10000, UINT64_C(1) << 40};
    static const uint64_t maxes[] = {1, 1000, MINUTES(10), UINT64_C(1) << 62, UINT64_MAX / 3};
    static const uint64_t rnds[] = {0, 1, 12345, MID - 1, MID, MID + 1, UINT64_MAX - 1, UINT64_MAX};
    for (size_t a = 0; a < sizeof intervals / sizeof intervals[0]; a++) {
        for (size_t b = 0; b < sizeof maxes / sizeof maxes[0]; b++) {
            hr_retry_t r = exp_policy(intervals[a], maxes[b]);
            for (int n = 1; n <= 200; n++) {
                uint64_t ceiling = slow_ceiling(intervals[a], maxes[b], n);
                uint64_t prev = 0;
                for (size_t k = 0; k < sizeof rnds / sizeof rnds[0]; k++) {
                    uint64_t d = hr_backoff_delay_ms(&r, n, rnds[k], -1);
                    if (d > ceiling || d < prev)
                        fail_msg("interval %llu max %llu n %d rnd %llu: %llu (ceiling %llu)",
                                 (unsigned long long)intervals[a], (unsigned long long)maxes[b], n,
                                 (unsigned long long)rnds[k], (unsigned long long)d,
                                 (unsigned long long)ceiling);
                    prev = d;
                }
                assert_int_equal(hr_backoff_delay_ms(&r, n, 0, -1), 0);
                assert_true(hr_backoff_delay_ms(&r, n, UINT64_MAX, -1) == ceiling);
            }
        }
    }
}

static void test_exponential_edges(void **state)
{
    /* Interval 0: never waits. */
    hr_retry_t zero = exp_policy(0, MINUTES(10));
    assert_int_equal(hr_backoff_delay_ms(&zero, 1, UINT64_MAX, -1), 0);
    assert_int_equal(hr_backoff_delay_ms(&zero, 100, UINT64_MAX, -1), 0);

    /* max_interval 0 means no ceiling: the delay saturates at UINT64_MAX, never wraps. */
    hr_retry_t open = exp_policy(1000, 0);
    assert_true(hr_backoff_delay_ms(&open, 1, UINT64_MAX, -1) == 1000);
    assert_true(hr_backoff_delay_ms(&open, 200, UINT64_MAX, -1) == UINT64_MAX);
    assert_true(hr_backoff_delay_ms(&open, 200, 42, -1) == 42);

    /* An interval so large that doubling it once overflows. */
    hr_retry_t huge = exp_policy(UINT64_MAX / 2 + 1, 0);
    assert_true(hr_backoff_delay_ms(&huge, 1, UINT64_MAX, -1) == UINT64_MAX / 2 + 1);
    assert_true(hr_backoff_delay_ms(&huge, 2, UINT64_MAX, -1) == UINT64_MAX);

    /* An interval above max_interval is capped from the first retry. */
    hr_retry_t capped = exp_policy(MINUTES(20), MINUTES(10));
    assert_true(hr_backoff_delay_ms(&capped, 1, UINT64_MAX, -1) == MINUTES(10));
}

static void test_fixed(void **state)
{
    hr_retry_t r = exp_policy(5000, MINUTES(10));
    r.backoff = HR_BACKOFF_FIXED;
    for (int n = 1; n <= 200; n++) {
        assert_int_equal(hr_backoff_delay_ms(&r, n, 0, -1), 5000);
        assert_int_equal(hr_backoff_delay_ms(&r, n, MID, -1), 5000);
        assert_int_equal(hr_backoff_delay_ms(&r, n, UINT64_MAX, -1), 5000);
    }
    r.interval_ms = MINUTES(30);
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, -1), MINUTES(10));
    r.max_interval_ms = 0;
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, -1), MINUTES(30));
}

static void test_retry_after_clamps(void **state)
{
    hr_retry_t r = exp_policy(1000, MINUTES(10));
    /* Raises a short delay... */
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, 3000), 3000);
    /* ...never lowers a longer one... */
    assert_int_equal(hr_backoff_delay_ms(&r, 3, UINT64_MAX, 1000), 4000);
    assert_int_equal(hr_backoff_delay_ms(&r, 3, UINT64_MAX, 0), 4000);
    /* ...and never goes past max_interval. */
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, 3600 * 1000), MINUTES(10));
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, INT64_MAX), MINUTES(10));
    /* Negative means no Retry-After. */
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, -1), 0);
    assert_int_equal(hr_backoff_delay_ms(&r, 1, 0, INT64_MIN), 0);

    hr_retry_t f = r;
    f.backoff = HR_BACKOFF_FIXED;
    f.interval_ms = 5000;
    assert_int_equal(hr_backoff_delay_ms(&f, 1, 0, 2000), 5000);
    assert_int_equal(hr_backoff_delay_ms(&f, 1, 0, 8000), 8000);
    assert_int_equal(hr_backoff_delay_ms(&f, 1, 0, 3600 * 1000), MINUTES(10));

    hr_retry_t open = exp_policy(1000, 0);
    assert_true(hr_backoff_delay_ms(&open, 1, 0, INT64_MAX) == (uint64_t)INT64_MAX);
}

/* 2015-10-21T07:28:00Z */
#define T_2015 INT64_C(1445412480)
/* 1994-11-06T08:49:37Z */
#define T_1994 INT64_C(784111777)
/* The cap on a Retry-After: one year. */
#define CAP_MS (INT64_C(31536000) * 1000)

static void test_retry_after_seconds(void **state)
{
    static const struct {
        const char *value;
        int64_t want_ms;
    } cases[] = {
        {"0", 0},
        {"1", 1000},
        {"120", 120000},
        {"007", 7000},
        {" 5 ", 5000},
        {"\t5", 5000},
        {"5\r\n", 5000},
        {"31536000", CAP_MS},
        {"31536001", CAP_MS},
        {"4294967296", CAP_MS},
        {"99999999999999999999999999999999999999", CAP_MS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        if (hr_retry_after_parse(cases[i].value, T_2015, &ms) != 0)
            fail_msg("case %zu (%s) rejected", i, cases[i].value);
        if (ms != cases[i].want_ms)
            fail_msg("case %zu (%s): %lld ms, want %lld", i, cases[i].value, (long long)ms,
                     (long long)cases[i].want_ms);
    }
}

static void test_retry_after_dates(void **state)
{
    static const struct {
        const char *value;
        int64_t now;
        int64_t want_ms;
    } cases[] = {
        /* IMF-fixdate */
        {"Wed, 21 Oct 2015 07:28:00 GMT", T_2015 - 90, 90000},
        {"Wed, 21 Oct 2015 07:28:00 GMT", T_2015, 0},
        {"Wed, 21 Oct 2015 07:28:00 GMT", T_2015 + 90, 0},
        {"Wed, 21 Oct 2015 07:28:00 GMT", T_2015 + 86400 * 365, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT", T_1994 - 10, 10000},
        {"wed, 21 oct 2015 07:28:00 gmt", T_2015 - 1, 1000},
        {"  Wed, 21 Oct 2015 07:28:00 GMT\r\n", T_2015 - 1, 1000},
        {"Mon, 29 Feb 2016 00:00:00 GMT", INT64_C(1456704000) - 60, 60000},
        {"Wed, 21 Oct 2015 07:28:60 GMT", T_2015, 60000}, /* leap second */
        {"Fri, 31 Dec 9999 23:59:59 GMT", T_2015, CAP_MS},
        {"Thu, 01 Jan 1970 00:00:00 GMT", T_2015, 0},
        /* RFC 850 */
        {"Wednesday, 21-Oct-15 07:28:00 GMT", T_2015 - 30, 30000},
        {"Sunday, 06-Nov-94 08:49:37 GMT", T_1994 - 10, 10000},
        {"Sunday, 06-Nov-94 08:49:37 GMT", T_2015, 0},        /* 1994, not 2094 */
        {"Monday, 01-Jan-80 00:00:00 GMT", T_2015, 0},        /* 2080 is > 50 years ahead */
        {"Thursday, 01-Jan-65 00:00:00 GMT", T_2015, CAP_MS}, /* 2065: far, capped */
        /* asctime */
        {"Wed Oct 21 07:28:00 2015", T_2015 - 5, 5000},
        {"Sun Nov  6 08:49:37 1994", T_1994 - 10, 10000},
        {"Sun Nov 06 08:49:37 1994", T_1994 - 10, 10000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        if (hr_retry_after_parse(cases[i].value, cases[i].now, &ms) != 0)
            fail_msg("case %zu (%s) rejected", i, cases[i].value);
        if (ms != cases[i].want_ms)
            fail_msg("case %zu (%s): %lld ms, want %lld", i, cases[i].value, (long long)ms,
                     (long long)cases[i].want_ms);
    }
}

static void test_retry_after_garbage(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "-1",
        "+5",
        "1.5",
        "5s",
        "5 5",
        "0x10",
        "soon",
        "Wed, 21 Oct 2015 07:28:00 UTC",
        "Wed, 21 Oct 2015 07:28:00",
        "Wed, 21 Oct 2015 07:28 GMT",
        "Wed, 21 Oct 15 07:28:00 GMT",
        "Wed, 1 Oct 2015 07:28:00 GMT",
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 00 Oct 2015 07:28:00 GMT",
        "Sun, 29 Feb 2015 07:28:00 GMT", /* not a leap year */
        "Thu, 31 Apr 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 24:00:00 GMT",
        "Wed, 21 Oct 2015 07:60:00 GMT",
        "Wed, 21 Oct 2015 07:28:61 GMT",
        "Wed, 21 Foo 2015 07:28:00 GMT",
        "Xyz, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMT extra",
        "Wed,21 Oct 2015 07:28:00 GMT",
        "Wed, 21-Oct-15 07:28:00 GMT",
        "Wednesday, 21 Oct 2015 07:28:00 GMT",
        "Wed Oct 21 07:28:00 2015 GMT",
        "Wed Oct  21 07:28:00 2015",
        "2015-10-21T07:28:00Z",
        "Wed, 21 Oct 2015 07:28:00 GMT Wed, 21 Oct 2015 07:28:00 GMT Wed, 21 Oct 2015",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 0;
        if (hr_retry_after_parse(bad[i], T_2015, &ms) != HR_EINVAL)
            fail_msg("case %zu (%s) accepted", i, bad[i]);
    }
    int64_t ms;
    assert_int_equal(hr_retry_after_parse(NULL, T_2015, &ms), HR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_table),  cmocka_unit_test(test_exponential_bounds),
        cmocka_unit_test(test_exponential_edges),  cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_retry_after_clamps), cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),  cmocka_unit_test(test_retry_after_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
