/* test_clock.c: RFC 3339 formatting and parsing (core/clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/clock.h"

static int64_t parsed(const char *s)
{
    int64_t us = 42;
    return hr_parse_rfc3339_us(s, &us) == 0 ? us : -42;
}

static void parse_cases(void **state)
{
    (void)state;
    /* 2026-11-23T12:00:00Z */
    const int64_t noon = 1795435200LL * 1000000;
    assert_int_equal(parsed("2026-11-23T12:00:00Z"), noon);
    assert_int_equal(parsed("2026-11-23t12:00:00z"), noon);
    assert_int_equal(parsed("2026-11-23 12:00:00"), noon); /* no zone: UTC */
    assert_int_equal(parsed("2026-11-23T12:00"), noon);
    assert_int_equal(parsed("2026-11-23"), noon - 12LL * 3600 * 1000000);
    assert_int_equal(parsed("2026-11-23T12:00:00.5Z"), noon + 500000);
    assert_int_equal(parsed("2026-11-23T12:00:00.123456789Z"), noon + 123456);
    assert_int_equal(parsed("2026-11-23T14:30:00+02:30"), noon);
    assert_int_equal(parsed("2026-11-23T10:00:00-02:00"), noon);
    /* Not times: *us untouched. */
    const char *bad[] = {"",
                         "2026-11-23T",
                         "2026-11-23T12",
                         "2026-11-23T12:00:00.Z",
                         "2026-13-01",
                         "2026-11-32",
                         "2026-11-23T24:00:00Z",
                         "2026-11-23T12:00:00+2:00",
                         "2026-11-23T12:00:00Zjunk",
                         "yesterday",
                         "26-11-23"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us = 42;
        assert_int_equal(hr_parse_rfc3339_us(bad[i], &us), -1);
        assert_int_equal(us, 42);
    }
    int64_t us = 42;
    assert_int_equal(hr_parse_rfc3339_us(NULL, &us), -1);
}

static void round_trip(void **state)
{
    (void)state;
    const int64_t samples[] = {0, 1, 999999, 1795435200123456LL, -1, 4102444799999999LL};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char text[32];
        hr_format_rfc3339_us(samples[i], text, sizeof text);
        assert_int_equal(parsed(text), samples[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_cases),
        cmocka_unit_test(round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
