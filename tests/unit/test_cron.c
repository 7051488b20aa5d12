/* test_cron.c: cron parsing and next fire times (sched/cron.c).
 *
 * Tables of expressions: rejected ones with their exact messages, accepted ones with the bitsets
 * they produce, and next-fire sequences written as UTC date-times (checked by hand against a
 * calendar) across month ends, leap days, year ends, the day-of-month/day-of-week rule, Sunday
 * as 0 and 7, names, steps and macros. The e2e suite cross-checks thousands more against the
 * npm package cron-parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sched/cron.h"

#define ALL_MINUTES ((UINT64_C(1) << 60) - 1)
#define ALL_HOURS ((UINT32_C(1) << 24) - 1)
#define ALL_DOM UINT32_C(0xFFFFFFFE)
#define ALL_MONTHS 0x1FFE
#define ALL_DOW 0x7F

/* "YYYY-MM-DD HH:MM[:SS]" in UTC to Unix seconds. */
static int64_t ts(const char *s)
{
    struct tm tm = {0};
    int n = sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec);
    if (n < 5) fail_msg("bad date-time in the test table: %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static const char *fmt_ts(int64_t t, char buf[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *expr;
        const char *msg;
    } cases[] = {
        {"61 * * * *", "cron \"61 * * * *\": minute: 61 is out of range 0-59"},
        {"* 24 * * *", "cron \"* 24 * * *\": hour: 24 is out of range 0-23"},
        {"* * 0 * *", "cron \"* * 0 * *\": day-of-month: 0 is out of range 1-31"},
        {"* * 32 * *", "cron \"* * 32 * *\": day-of-month: 32 is out of range 1-31"},
        {"* * * 13 *", "cron \"* * * 13 *\": month: 13 is out of range 1-12"},
        {"* * * 0 *", "cron \"* * * 0 *\": month: 0 is out of range 1-12"},
        {"* * * * 8", "cron \"* * * * 8\": day-of-week: 8 is out of range 0-7"},
        {"10-61 * * * *", "cron \"10-61 * * * *\": minute: 61 in \"10-61\" is out of range 0-59"},
        {"99999999999 * * * *",
         "cron \"99999999999 * * * *\": minute: 99999999999 is out of range 0-59"},
        {"", "cron \"\": empty expression (expected 5 fields: minute hour day-of-month month "
             "day-of-week)"},
        {" \t ", "cron \" \\t \": empty expression (expected 5 fields: minute hour day-of-month "
                 "month day-of-week)"},
        {"* * * *", "cron \"* * * *\": expected 5 fields (minute hour day-of-month month "
                    "day-of-week), found 4"},
        {"0 0 12 * * *", "cron \"0 0 12 * * *\": expected 5 fields (minute hour day-of-month "
                         "month day-of-week), found 6; a seconds field is not supported"},
        {"0 0 12 * * ? 2030", "cron \"0 0 12 * * ? 2030\": expected 5 fields (minute hour "
                              "day-of-month month day-of-week), found 7"},
        {"@reboot", "cron \"@reboot\": @reboot is not supported: a schedule fires at clock "
                    "times, not when herald starts"},
        {"@often", "cron \"@often\": unknown macro \"@often\" (expected @yearly, @annually, "
                   "@monthly, @weekly, @daily, @midnight or @hourly)"},
        {"@", "cron \"@\": unknown macro \"@\" (expected @yearly, @annually, @monthly, @weekly, "
              "@daily, @midnight or @hourly)"},
        {"@daily 0", "cron \"@daily 0\": @daily stands alone, found \"0\" after it"},
        {"* * * FOO *",
         "cron \"* * * FOO *\": month: unknown name \"FOO\" (expected JAN-DEC or 1-12)"},
        {"* * * JANUARY *",
         "cron \"* * * JANUARY *\": month: unknown name \"JANUARY\" (expected JAN-DEC or 1-12)"},
        {"* * * * MONDAY",
         "cron \"* * * * MONDAY\": day-of-week: unknown name \"MONDAY\" (expected SUN-SAT or 0-7)"},
        {"* * * * L", "cron \"* * * * L\": day-of-week: unknown name \"L\" (expected SUN-SAT or "
                      "0-7)"},
        {"MON * * * *", "cron \"MON * * * *\": minute: \"MON\" is not a number"},
        {"* * L * *", "cron \"* * L * *\": day-of-month: \"L\" is not a number"},
        {"* * 15W * *", "cron \"* * 15W * *\": day-of-month: unexpected \"W\" in \"15W\""},
        {"1,,2 * * * *", "cron \"1,,2 * * * *\": minute: empty list item in \"1,,2\""},
        {",1 * * * *", "cron \",1 * * * *\": minute: empty list item in \",1\""},
        {"* 1, * * *", "cron \"* 1, * * *\": hour: empty list item in \"1,\""},
        {"30-10 * * * *", "cron \"30-10 * * * *\": minute: range \"30-10\" is backwards (30 > 10)"},
        {"* * * * FRI-MON",
         "cron \"* * * * FRI-MON\": day-of-week: range \"FRI-MON\" is backwards (FRI > MON)"},
        {"*/0 * * * *", "cron \"*/0 * * * *\": minute: step 0 in \"*/0\" is out of range 1-59"},
        {"*/60 * * * *", "cron \"*/60 * * * *\": minute: step 60 in \"*/60\" is out of range 1-59"},
        {"* * * 1-12/13 *",
         "cron \"* * * 1-12/13 *\": month: step 13 in \"1-12/13\" is out of range 1-12"},
        {"* * * * */8", "cron \"* * * * */8\": day-of-week: step 8 in \"*/8\" is out of range 1-7"},
        {"*/ * * * *", "cron \"*/ * * * *\": minute: missing step after \"/\" in \"*/\""},
        {"*/x * * * *", "cron \"*/x * * * *\": minute: unexpected \"x\" in \"*/x\""},
        {"1- * * * *", "cron \"1- * * * *\": minute: incomplete range \"1-\""},
        {"*-5 * * * *", "cron \"*-5 * * * *\": minute: unexpected \"-\" in \"*-5\""},
        {"1-2-3 * * * *", "cron \"1-2-3 * * * *\": minute: unexpected \"-\" in \"1-2-3\""},
        {"5/2/3 * * * *", "cron \"5/2/3 * * * *\": minute: unexpected \"/\" in \"5/2/3\""},
        {"-5 * * * *", "cron \"-5 * * * *\": minute: unexpected \"-\" in \"-5\""},
        {"? * * * *", "cron \"? * * * *\": minute: unexpected \"?\" in \"?\""},
        {"5x * * * *", "cron \"5x * * * *\": minute: unexpected \"x\" in \"5x\""},
        {"** * * * *", "cron \"** * * * *\": minute: unexpected \"*\" in \"**\""},
        {"* * * * 5#3", "cron \"* * * * 5#3\": day-of-week: unexpected \"#\" in \"5#3\""},
        {"* * * * 1\x01", "cron \"* * * * 1\\x01\": control character \\x01 at position 10 (only "
                          "spaces and tabs separate fields)"},
        {"0 0 * *\n*", "cron \"0 0 * *\\x0A*\": control character \\x0A at position 8 (only "
                       "spaces and tabs separate fields)"},
        {"@daily\r\n", "cron \"@daily\\x0D\\x0A\": control character \\x0D at position 7 (only "
                       "spaces and tabs separate fields)"},
        {"0 0 1 1 *\x7f", "cron \"0 0 1 1 *\\x7F\": control character \\x7F at position 10 (only "
                          "spaces and tabs separate fields)"},
        {"* * * * ＳＵＮ",
         "cron \"* * * * ＳＵＮ\": day-of-week: unexpected \"\\xEF\" in \"ＳＵＮ\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_cron_t c = {.minute = 42};
        hr_err_t err = {0};
        int rc = hr_cron_parse(cases[i].expr, &c, &err);
        if (rc != HR_EINVAL) fail_msg("case %zu (%s): rc %d, want HR_EINVAL", i, cases[i].expr, rc);
        if (err.code != HR_EINVAL) fail_msg("case %zu: err.code %d", i, err.code);
        if (strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, err.msg, cases[i].msg);
        if (c.minute != 42) fail_msg("case %zu: *out was written on failure", i);
        /* err is optional. */
        assert_int_equal(hr_cron_parse(cases[i].expr, &c, NULL), HR_EINVAL);
    }
}

static void test_parse_error_edges(void **state)
{
    hr_cron_t c;
    hr_err_t err = {0};
    assert_int_equal(hr_cron_parse(NULL, &c, &err), HR_EINVAL);
    assert_string_equal(err.msg, "cron \"\": empty expression (expected 5 fields: minute hour "
                                 "day-of-month month day-of-week)");

    /* A long expression is quoted up to 200 bytes, then "...". */
    char expr[400];
    memset(expr, '1', sizeof expr - 1);
    expr[sizeof expr - 1] = '\0';
    char want[512];
    snprintf(want, sizeof want,
             "cron \"%.200s...\": expected 5 fields (minute hour "
             "day-of-month month day-of-week), found 1",
             expr);
    assert_int_equal(hr_cron_parse(expr, &c, &err), HR_EINVAL);
    assert_string_equal(err.msg, want);
}

static void test_parse_bitsets(void **state)
{
    static const struct {
        const char *expr;
        uint64_t minute;
        uint32_t hour, dom;
        uint16_t month;
        uint8_t dow;
        bool dom_star, dow_star;
    } cases[] = {
        {"* * * * *", ALL_MINUTES, ALL_HOURS, ALL_DOM, ALL_MONTHS, ALL_DOW, true, true},
        {"*/15 */6 * * *", 1 | 1 << 15 | UINT64_C(1) << 30 | UINT64_C(1) << 45,
         1 | 1 << 6 | 1 << 12 | 1 << 18, ALL_DOM, ALL_MONTHS, ALL_DOW, true, true},
        {"5/20 1/10 2/10 feb/5 *", UINT64_C(1) << 5 | UINT64_C(1) << 25 | UINT64_C(1) << 45,
         1 << 1 | 1 << 11 | 1 << 21, 1 << 2 | 1 << 12 | 1 << 22, 1 << 2 | 1 << 7 | 1 << 12, ALL_DOW,
         false, true},
        {"10-20/5 0-3 1,15,31 JAN-MAR,oct,Dec 1-5",
         UINT64_C(1) << 10 | UINT64_C(1) << 15 | UINT64_C(1) << 20, 0xF,
         1u << 1 | 1u << 15 | 1u << 31, 0xE | 1 << 10 | 1 << 12, 0x3E, false, false},
        {"0 0 * * 0", 1, 1, ALL_DOM, ALL_MONTHS, 1, true, false},
        {"0 0 * * 7", 1, 1, ALL_DOM, ALL_MONTHS, 1, true, false},
        {"0 0 * * sun", 1, 1, ALL_DOM, ALL_MONTHS, 1, true, false},
        {"0 0 * * 5-7", 1, 1, ALL_DOM, ALL_MONTHS, 1 | 1 << 5 | 1 << 6, true, false},
        {"0 0 * * mon/2", 1, 1, ALL_DOM, ALL_MONTHS, 1 | 1 << 1 | 1 << 3 | 1 << 5, true, false},
        {"0 0 * * */2", 1, 1, ALL_DOM, ALL_MONTHS, 1 | 1 << 2 | 1 << 4 | 1 << 6, true, false},
        {"0 0 * * 0-7", 1, 1, ALL_DOM, ALL_MONTHS, ALL_DOW, true,
         false}, /* every day, yet not "*" */
        {"0 0 1-31 * *", 1, 1, ALL_DOM, ALL_MONTHS, ALL_DOW, false, true},
        {"0 0 */1 * *", 1, 1, ALL_DOM, ALL_MONTHS, ALL_DOW, false, true},
        {"0 0 *,5 * *", 1, 1, ALL_DOM, ALL_MONTHS, ALL_DOW, false, true},
        {"1,1,1-3,2 * * * *", 0xE, ALL_HOURS, ALL_DOM, ALL_MONTHS, ALL_DOW, true, true},
        {"59 23 31 12 6", UINT64_C(1) << 59, 1u << 23, 1u << 31, 1 << 12, 1 << 6, false, false},
        {"007 08 09 010 00", 1 << 7, 1 << 8, 1 << 9, 1 << 10, 1, false, false}, /* leading zeros */
        {" \t0\t\t0  1 1  *  \t", 1, 1, 1 << 1, 1 << 1, ALL_DOW, false, true},
        {"@yearly", 1, 1, 1 << 1, 1 << 1, ALL_DOW, false, true},
        {"@annually", 1, 1, 1 << 1, 1 << 1, ALL_DOW, false, true},
        {"@monthly", 1, 1, 1 << 1, ALL_MONTHS, ALL_DOW, false, true},
        {"@weekly", 1, 1, ALL_DOM, ALL_MONTHS, 1, true, false},
        {"@daily", 1, 1, ALL_DOM, ALL_MONTHS, ALL_DOW, true, true},
        {"@midnight", 1, 1, ALL_DOM, ALL_MONTHS, ALL_DOW, true, true},
        {"  @Hourly\t", 1, ALL_HOURS, ALL_DOM, ALL_MONTHS, ALL_DOW, true, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_cron_t c;
        hr_err_t err = {0};
        if (hr_cron_parse(cases[i].expr, &c, &err) != 0)
            fail_msg("case %zu (%s): %s", i, cases[i].expr, err.msg);
        if (c.minute != cases[i].minute || c.hour != cases[i].hour || c.dom != cases[i].dom ||
            c.month != cases[i].month || c.dow != cases[i].dow || c.dom_star != cases[i].dom_star ||
            c.dow_star != cases[i].dow_star)
            fail_msg("case %zu (%s): minute %#llx hour %#x dom %#x month %#x dow %#x stars %d %d",
                     i, cases[i].expr, (unsigned long long)c.minute, c.hour, c.dom, c.month, c.dow,
                     c.dom_star, c.dow_star);
    }
}

/* Each case: an expression, the time to search after, and the next fire times in order (each
 * found by searching after the one before). NULL ends the list early. */
static const struct next_case {
    const char *expr;
    const char *after;
    const char *want[4];
} NEXT_CASES[] = {
    /* Month ends: the 31st skips short months. */
    {"0 0 1 * *", "2024-01-31 12:00", {"2024-02-01 00:00", "2024-03-01 00:00", "2024-04-01 00:00"}},
    {"30 23 31 * *",
     "2024-01-31 23:30",
     {"2024-03-31 23:30", "2024-05-31 23:30", "2024-07-31 23:30", "2024-08-31 23:30"}},
    {"0 0 30 * *", "2023-01-30 00:00", {"2023-03-30 00:00", "2023-04-30 00:00"}},
    {"@monthly", "2024-01-31 00:00", {"2024-02-01 00:00", "2024-03-01 00:00"}},
    /* Leap years: 29 February every four years, but not in 2100. */
    {"0 12 29 2 *",
     "2023-03-01 00:00",
     {"2024-02-29 12:00", "2028-02-29 12:00", "2032-02-29 12:00"}},
    {"0 0 29 2 *", "2096-02-29 00:00", {"2104-02-29 00:00", "2108-02-29 00:00"}},
    {"0 0 29 feb *", "2099-12-31 23:59", {"2104-02-29 00:00"}},
    {"0 0 29 2 *", "2000-01-01 00:00", {"2000-02-29 00:00", "2004-02-29 00:00"}}, /* 2000: /400 */
    {"0 0 * feb *", "2024-02-28 00:00", {"2024-02-29 00:00", "2025-02-01 00:00"}},
    {"0 0 * feb *", "2023-02-28 00:00", {"2024-02-01 00:00"}},
    {"@daily", "2024-02-28 23:59:59", {"2024-02-29 00:00", "2024-03-01 00:00"}},
    /* Year ends. */
    {"59 23 31 12 *", "2024-12-31 23:59", {"2025-12-31 23:59", "2026-12-31 23:59"}},
    {"59 23 31 12 *", "2024-12-31 23:58:59", {"2024-12-31 23:59", "2025-12-31 23:59"}},
    {"* * * * *", "2024-12-31 23:59:30", {"2025-01-01 00:00", "2025-01-01 00:01"}},
    {"@yearly", "2024-06-01 00:00", {"2025-01-01 00:00", "2026-01-01 00:00"}},
    {"@annually", "2024-12-31 23:59:59", {"2025-01-01 00:00"}},
    {"@hourly", "2024-12-31 23:00", {"2025-01-01 00:00", "2025-01-01 01:00"}},
    {"0 0 1 1 *", "1969-12-31 23:59:59", {"1970-01-01 00:00", "1971-01-01 00:00"}},
    {"* * * * *", "1969-12-31 23:58:30", {"1969-12-31 23:59", "1970-01-01 00:00"}},
    /* The day rule: both restricted, either matches (Friday the 13th fires on every Friday and
     * every 13th); one of them "*", the other decides. */
    {"0 0 13 * 5",
     "2024-09-01 00:00",
     {"2024-09-06 00:00", "2024-09-13 00:00", "2024-09-20 00:00", "2024-09-27 00:00"}},
    {"0 0 13 * 5",
     "2024-09-27 00:00",
     {"2024-10-04 00:00", "2024-10-11 00:00", "2024-10-13 00:00"}},
    {"0 0 13 * *", "2024-09-01 00:00", {"2024-09-13 00:00", "2024-10-13 00:00"}},
    {"0 0 * * 5", "2024-09-01 00:00", {"2024-09-06 00:00", "2024-09-13 00:00"}},
    {"0 0 1-7 * 1", "2024-04-07 12:00", {"2024-04-08 00:00", "2024-04-15 00:00"}},
    {"0 0 31 2 1", "2024-01-01 00:00", {"2024-02-05 00:00", "2024-02-12 00:00"}}, /* Mondays */
    {"0 0 29 2 1", "2024-02-27 00:00", {"2024-02-29 00:00", "2025-02-03 00:00"}},
    {"0 0 * 2 1", "2025-02-24 00:00", {"2026-02-02 00:00", "2026-02-09 00:00"}},
    /* A stepped star counts as restricted (as in cron-parser; Vixie would AND these). */
    {"0 0 */2 * 1",
     "2024-12-31 23:59",
     {"2025-01-01 00:00", "2025-01-03 00:00", "2025-01-05 00:00", "2025-01-06 00:00"}},
    {"0 0 15 * */3",
     "2024-12-31 23:59",
     {"2025-01-01 00:00", "2025-01-04 00:00", "2025-01-05 00:00", "2025-01-08 00:00"}},
    /* A field that lists every value is still restricted: every day matches day-of-week. */
    {"0 0 1-31 * 1", "2024-06-01 00:00", {"2024-06-02 00:00", "2024-06-03 00:00"}},
    {"0 0 15 * 0-7", "2024-06-01 00:00", {"2024-06-02 00:00", "2024-06-03 00:00"}},
    /* Sunday as 0, 7 and SUN; 2024-03-03 was a Sunday. */
    {"0 0 * * 0", "2024-03-01 00:00", {"2024-03-03 00:00", "2024-03-10 00:00"}},
    {"0 0 * * 7", "2024-03-01 00:00", {"2024-03-03 00:00", "2024-03-10 00:00"}},
    {"0 0 * * SUN", "2024-03-01 00:00", {"2024-03-03 00:00", "2024-03-10 00:00"}},
    {"@weekly", "2024-06-01 00:00", {"2024-06-02 00:00", "2024-06-09 00:00"}},
    {"0 0 * * 5-7",
     "2024-03-01 00:00",
     {"2024-03-02 00:00", "2024-03-03 00:00", "2024-03-08 00:00"}},
    {"0 0 * * mon/2",
     "2024-03-01 00:00",
     {"2024-03-03 00:00", "2024-03-04 00:00", "2024-03-06 00:00"}},
    /* Names, in any case. */
    {"0 9 * JAN,jul mon-FRI",
     "2024-01-31 10:00",
     {"2024-07-01 09:00", "2024-07-02 09:00", "2024-07-03 09:00", "2024-07-04 09:00"}},
    {"0 9 * Jan,JUL Mon-fri", "2024-07-31 09:00", {"2025-01-01 09:00", "2025-01-02 09:00"}},
    /* Steps: "*" + "/n", "a/n" (= a-max/n), "a-b/n". */
    {"*/15 * * * *", "2024-06-01 10:50", {"2024-06-01 11:00", "2024-06-01 11:15"}},
    {"5/15 * * * *", "2024-06-01 10:50", {"2024-06-01 11:05", "2024-06-01 11:20"}},
    {"10-20/5 */6 * * *",
     "2024-06-01 23:20",
     {"2024-06-02 00:10", "2024-06-02 00:15", "2024-06-02 00:20", "2024-06-02 06:10"}},
    {"0 0 1 */5 *", "2024-06-01 00:00", {"2024-11-01 00:00", "2025-01-01 00:00"}},
    /* Strictly after, to the minute. */
    {"30 12 * * *", "2024-06-01 12:30:00", {"2024-06-02 12:30"}},
    {"30 12 * * *", "2024-06-01 12:29:59", {"2024-06-01 12:30"}},
    {"30 12 * * *", "2024-06-01 12:30:01", {"2024-06-02 12:30"}},
    /* Never fires: no day it names exists. */
    {"0 0 31 2 *", "2024-01-01 00:00", {NULL}},
    {"0 0 30 feb *", "2024-01-01 00:00", {NULL}},
    {"0 0 30,31 2 *", "2024-01-01 00:00", {NULL}},
    {"0 0 31 4,6,9,11 *", "2024-01-01 00:00", {NULL}},
    {"0 0 30-31 Feb *", "2024-01-01 00:00", {NULL}},
};

static void test_next_table(void **state)
{
    for (size_t i = 0; i < sizeof NEXT_CASES / sizeof NEXT_CASES[0]; i++) {
        const struct next_case *nc = &NEXT_CASES[i];
        hr_cron_t c;
        hr_err_t err = {0};
        if (hr_cron_parse(nc->expr, &c, &err) != 0) fail_msg("case %zu: %s", i, err.msg);
        int64_t t = ts(nc->after), got;
        char b1[32], b2[32];
        for (int k = 0; k < 4 && nc->want[k]; k++) {
            int rc = hr_cron_next(&c, t, &got);
            if (rc != 0)
                fail_msg("case %zu (%s after %s) fire %d: rc %d, want %s", i, nc->expr,
                         fmt_ts(t, b1), k, rc, nc->want[k]);
            if (got != ts(nc->want[k]))
                fail_msg("case %zu (%s after %s) fire %d: got %s, want %s", i, nc->expr,
                         fmt_ts(t, b1), k, fmt_ts(got, b2), nc->want[k]);
            t = got;
        }
        if (!nc->want[0]) {
            int rc = hr_cron_next(&c, t, &got);
            if (rc != HR_ENOTFOUND)
                fail_msg("case %zu (%s): rc %d (%s), want HR_ENOTFOUND", i, nc->expr, rc,
                         rc == 0 ? fmt_ts(got, b1) : "");
        }
    }
}

/* The search goes day by day at most, never minute by minute: the longest possible gap (eight
 * years between leap days) and a sweep of every minute of a day for an expression that fires
 * once a year stay fast even in the sanitizer build. */
static void test_next_is_not_brute_force(void **state)
{
    hr_cron_t c;
    assert_int_equal(hr_cron_parse("59 23 29 2 *", &c, NULL), 0);
    clock_t start = clock();
    int64_t t = ts("2096-03-01 00:00"), got = 0;
    for (int i = 0; i < 2000; i++)
        assert_int_equal(hr_cron_next(&c, t + i * 60, &got), 0);
    assert_int_equal(got, ts("2104-02-29 23:59"));
    double secs = (double)(clock() - start) / CLOCKS_PER_SEC;
    if (secs > 5) fail_msg("2000 eight-year searches took %.2f s", secs);
}

static void test_next_bounds(void **state)
{
    hr_cron_t c;
    int64_t got = 0;
    assert_int_equal(hr_cron_parse("* * * * *", &c, NULL), 0);
    /* Years 0001-9999 are accepted as the start; the answer may fall in year 10000. */
    assert_int_equal(hr_cron_next(&c, INT64_C(253402300799), &got), 0);
    assert_int_equal(got, INT64_C(253402300800));
    assert_int_equal(hr_cron_next(&c, INT64_C(253402300800), &got), HR_EINVAL);
    assert_int_equal(hr_cron_next(&c, INT64_C(-62135596801), &got), HR_EINVAL);
    assert_int_equal(hr_cron_next(&c, INT64_MAX, &got), HR_EINVAL);
    assert_int_equal(hr_cron_next(&c, INT64_MIN, &got), HR_EINVAL);

    assert_int_equal(hr_cron_parse("0 0 1 1 *", &c, NULL), 0);
    assert_int_equal(hr_cron_next(&c, INT64_C(-62135596800), &got), 0); /* 0001-01-01 00:00 */
    assert_int_equal(got, INT64_C(-62135596800) + 365 * 86400);         /* 0002-01-01 00:00 */

    /* A hand-built expression with an empty field never fires. */
    hr_cron_t empty = {0};
    assert_int_equal(hr_cron_next(&empty, 0, &got), HR_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_error_edges),
        cmocka_unit_test(test_parse_bitsets),
        cmocka_unit_test(test_next_table),
        cmocka_unit_test(test_next_is_not_brute_force),
        cmocka_unit_test(test_next_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
