/* backoff.c: retry delays and Retry-After parsing (pure; see backoff.h).
 *
 * Exponential backoff uses "full jitter": the ceiling for retry n is interval * 2^(n-1), capped
 * at max_interval (computed by comparing against max >> (n-1), so large n never overflows), and
 * the delay is rnd scaled into [0, ceiling] by a 64x64->128 multiply: rnd = 0 gives 0,
 * rnd = UINT64_MAX gives the ceiling, and the result is monotonic in rnd. A max_interval of 0
 * means "no ceiling" (the config default is 10 minutes; a zero ceiling would retry in a tight
 * loop). A Retry-After raises the delay to min(retry_after, max_interval) if that is larger.
 *
 * Retry-After (RFC 9110 10.2.3) is delta-seconds (capped at RETRY_AFTER_MAX_S) or an HTTP-date:
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994" forms. Names are
 * matched without regard to case; the weekday is not checked against the date. */
#include "dispatch/backoff.h"

#include <string.h>
#include <time.h>

/* Longest Retry-After honoured (one year); max_interval clamps it much further in practice. */
#define RETRY_AFTER_MAX_S INT64_C(31536000)

/* floor(a * b / 2^64) without a 128-bit type. */
static uint64_t mulhi64(uint64_t a, uint64_t b)
{
    uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
    uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
    uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    uint64_t mid = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi; /* cannot overflow */
    return hi_hi + (hi_lo >> 32) + (mid >> 32);
}

uint64_t hr_backoff_delay_ms(const hr_retry_t *r, int n, uint64_t rnd, int64_t retry_after_ms)
{
    uint64_t max = r->max_interval_ms ? r->max_interval_ms : UINT64_MAX;
    uint64_t delay;
    if (n < 1) n = 1;

    if (r->backoff == HR_BACKOFF_FIXED) {
        delay = r->interval_ms < max ? r->interval_ms : max;
    } else {
        unsigned shift = (unsigned)(n - 1);
        uint64_t ceiling;
        if (r->interval_ms == 0)
            ceiling = 0;
        else if (shift >= 64 || r->interval_ms > (max >> shift))
            ceiling = max;
        else
            ceiling = r->interval_ms << shift;
        /* Uniform in [0, ceiling]: scale rnd by ceiling + 1 (which overflows only at the top). */
        delay = ceiling == UINT64_MAX ? rnd : mulhi64(rnd, ceiling + 1);
    }

    if (retry_after_ms >= 0) {
        uint64_t ra = (uint64_t)retry_after_ms < max ? (uint64_t)retry_after_ms : max;
        if (ra > delay) delay = ra;
    }
    return delay;
}

static const char *const wkdays[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const weekdays[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Consumes word (any case) at *p. */
static int eat_word(const char **p, const char *word)
{
    size_t i = 0;
    for (; word[i]; i++)
        if (lower((unsigned char)(*p)[i]) != lower((unsigned char)word[i])) return 0;
    *p += i;
    return 1;
}

static int eat_char(const char **p, char c)
{
    if (**p != c) return 0;
    (*p)++;
    return 1;
}

/* Consumes one of the names in list; returns its index or -1. */
static int eat_name(const char **p, const char *const *list, int count)
{
    for (int i = 0; i < count; i++)
        if (eat_word(p, list[i])) return i;
    return -1;
}

/* Consumes exactly n digits. */
static int eat_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return 0;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 1;
}

/* "HH:MM:SS" */
static int eat_time(const char **p, struct tm *tm)
{
    return eat_digits(p, 2, &tm->tm_hour) && eat_char(p, ':') && eat_digits(p, 2, &tm->tm_min) &&
           eat_char(p, ':') && eat_digits(p, 2, &tm->tm_sec);
}

static int eat_month(const char **p, struct tm *tm)
{
    return (tm->tm_mon = eat_name(p, months, 12)) >= 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int parse_imf(const char *p, struct tm *tm)
{
    int year;
    if (eat_name(&p, wkdays, 7) < 0 || !eat_char(&p, ',') || !eat_char(&p, ' ') ||
        !eat_digits(&p, 2, &tm->tm_mday) || !eat_char(&p, ' ') || !eat_month(&p, tm) ||
        !eat_char(&p, ' ') || !eat_digits(&p, 4, &year) || !eat_char(&p, ' ') ||
        !eat_time(&p, tm) || !eat_char(&p, ' ') || !eat_word(&p, "GMT") || *p)
        return 0;
    tm->tm_year = year - 1900;
    return 1;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year more than 50 years ahead of now_year is
 * taken as the previous century's (RFC 9110 5.6.7). */
static int parse_rfc850(const char *p, struct tm *tm, int now_year)
{
    int yy;
    if (eat_name(&p, weekdays, 7) < 0 || !eat_char(&p, ',') || !eat_char(&p, ' ') ||
        !eat_digits(&p, 2, &tm->tm_mday) || !eat_char(&p, '-') || !eat_month(&p, tm) ||
        !eat_char(&p, '-') || !eat_digits(&p, 2, &yy) || !eat_char(&p, ' ') || !eat_time(&p, tm) ||
        !eat_char(&p, ' ') || !eat_word(&p, "GMT") || *p)
        return 0;
    int year = now_year - now_year % 100 + yy;
    if (year > now_year + 50) year -= 100;
    tm->tm_year = year - 1900;
    return 1;
}

/* "Sun Nov  6 08:49:37 1994" (day of month as two digits or space and digit) */
static int parse_asctime(const char *p, struct tm *tm)
{
    int year;
    if (eat_name(&p, wkdays, 7) < 0 || !eat_char(&p, ' ') || !eat_month(&p, tm) ||
        !eat_char(&p, ' '))
        return 0;
    if (!(eat_char(&p, ' ') ? eat_digits(&p, 1, &tm->tm_mday) : eat_digits(&p, 2, &tm->tm_mday)))
        return 0;
    if (!eat_char(&p, ' ') || !eat_time(&p, tm) || !eat_char(&p, ' ') ||
        !eat_digits(&p, 4, &year) || *p)
        return 0;
    tm->tm_year = year - 1900;
    return 1;
}

static int days_in_month(int year, int mon)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 1 && leap ? 29 : days[mon];
}

/* Parses an HTTP-date (the whole of s) into unix seconds. */
static int parse_http_date(const char *s, int64_t now_unix_s, int64_t *out)
{
    struct tm now_tm, tm;
    time_t now = (time_t)now_unix_s;
    int now_year = gmtime_r(&now, &now_tm) ? now_tm.tm_year + 1900 : 1970;

    memset(&tm, 0, sizeof tm);
    if (!parse_imf(s, &tm)) {
        memset(&tm, 0, sizeof tm);
        if (!parse_rfc850(s, &tm, now_year)) {
            memset(&tm, 0, sizeof tm);
            if (!parse_asctime(s, &tm)) return HR_EINVAL;
        }
    }
    if (tm.tm_mday < 1 || tm.tm_mday > days_in_month(tm.tm_year + 1900, tm.tm_mon) ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return HR_EINVAL;
    *out = (int64_t)timegm(&tm);
    return 0;
}

int hr_retry_after_parse(const char *value, int64_t now_unix_s, int64_t *out_ms)
{
    if (!value || !out_ms) return HR_EINVAL;

    /* Trim optional white space (and a stray CR/LF left by a header callback). */
    const char *s = value, *e = value + strlen(value);
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    if (s == e) return HR_EINVAL;

    if (*s >= '0' && *s <= '9') {
        int64_t secs = 0;
        for (const char *p = s; p < e; p++) {
            if (*p < '0' || *p > '9') return HR_EINVAL;
            if (secs < RETRY_AFTER_MAX_S) secs = secs * 10 + (*p - '0');
        }
        if (secs > RETRY_AFTER_MAX_S) secs = RETRY_AFTER_MAX_S;
        *out_ms = secs * 1000;
        return 0;
    }

    char date[64];
    size_t n = (size_t)(e - s);
    if (n >= sizeof date) return HR_EINVAL;
    memcpy(date, s, n);
    date[n] = '\0';
    int64_t at;
    if (parse_http_date(date, now_unix_s, &at)) return HR_EINVAL;
    int64_t secs;
    if (at <= now_unix_s)
        secs = 0;
    else if (now_unix_s < at - RETRY_AFTER_MAX_S)
        secs = RETRY_AFTER_MAX_S;
    else
        secs = at - now_unix_s;
    *out_ms = secs * 1000;
    return 0;
}
