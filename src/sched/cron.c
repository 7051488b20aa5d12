/* cron.c: cron expression parsing and next-fire computation in UTC (pure; see cron.h).
 *
 * Parsing is a hand-written scanner: the expression is trimmed, a leading '@' selects a macro
 * (which is rewritten to its five fields and parsed like any other expression), otherwise it is
 * split into fields at runs of spaces and tabs, each field into items at commas, and each item
 * is read as  ( "*" | value [ "-" value ] ) [ "/" step ].  Every item sets bits in the field's
 * bitset; the first problem found ends the parse with a message naming the field and the text.
 *
 * hr_cron_next works on the civil date (year, month, day, hour, minute) of the first whole
 * minute after `after`, and walks forward by the largest unit that fails to match: a month not
 * in the set jumps to the next month that is, a day that fails the day rule moves to the next
 * day, an hour or minute jumps straight to the next set bit. Each step resets the smaller units
 * to their start, so the loop visits at most a few hundred states per year searched. Dates are
 * converted with the proleptic Gregorian day-count algorithms of Howard Hinnant's
 * "chrono-Compatible Low-Level Date Algorithms" (days_from_civil / civil_from_days).
 *
 * Invariants of the search loop:
 *   1. (y, mo, d, h, mi) is never before the first candidate minute; every move goes forward.
 *   2. When a unit changes, every smaller unit is at its minimum (day 1, hour 0, minute 0).
 *   3. d may exceed the month's length or h exceed 23 transiently; the next pass carries them. */
#include "sched/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The search gives up after this many years: the longest gap between two fires of an
 * expression that fires at all is 29 February 2096 to 29 February 2104. */
#define SEARCH_YEARS 8
/* hr_cron_next accepts `after` in 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
#define AFTER_MIN INT64_C(-62135596800)
#define AFTER_MAX INT64_C(253402300799)
/* Longest stretch of the expression quoted in an error message. */
#define QUOTE_MAX 200

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, NFIELDS };

static const char *const MONTH_NAMES[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const DOW_NAMES[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* three-letter names for the values names_base, names_base+1, … */
    int nnames;
    int names_base;
    const char *names_hint; /* how the names read in an error, e.g. "JAN-DEC" */
} FIELDS[NFIELDS] = {
    [F_MINUTE] = {"minute", 0, 59, NULL, 0, 0, NULL},
    [F_HOUR] = {"hour", 0, 23, NULL, 0, 0, NULL},
    [F_DOM] = {"day-of-month", 1, 31, NULL, 0, 0, NULL},
    [F_MONTH] = {"month", 1, 12, MONTH_NAMES, 12, 1, "JAN-DEC"},
    [F_DOW] = {"day-of-week", 0, 7, DOW_NAMES, 7, 0, "SUN-SAT"},
};

static const struct macro {
    const char *name;
    const char *fields;
} MACROS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* The text being parsed and where messages go. */
typedef struct pctx {
    const char *expr; /* the expression as the caller gave it, quoted in every message */
    hr_err_t *err;
} pctx_t;

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int upper(char c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* Writes the expression into out for a message: at most QUOTE_MAX bytes of it, then "..." if
 * there is more; a tab as \t and other control characters as \xHH, so the message stays one
 * line. out holds at least QUOTE_MAX * 4 + 4 bytes. */
static void quote_expr(const char *s, char *out)
{
    size_t i = 0, o = 0;
    for (; s[i] && i < QUOTE_MAX; i++) {
        unsigned char u = (unsigned char)s[i];
        if (u == '\t')
            o += (size_t)sprintf(out + o, "\\t");
        else if (u < 0x20 || u == 0x7f)
            o += (size_t)sprintf(out + o, "\\x%02X", u);
        else
            out[o++] = (char)u;
    }
    if (s[i]) o += (size_t)sprintf(out + o, "...");
    out[o] = '\0';
}

/* Records HR_EINVAL with the message 'cron "EXPR": ' followed by fmt. */
static int fail(const pctx_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const pctx_t *p, const char *fmt, ...)
{
    char detail[1024], quoted[QUOTE_MAX * 4 + 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    quote_expr(p->expr, quoted);
    return hr_err_set(p->err, HR_EINVAL, "cron \"%s\": %s", quoted, detail);
}

/* One character quoted for a message: "x", or "\xHH" when it is not printable ASCII (a byte of a
 * UTF-8 sequence; control characters are rejected before fields are read). */
static const char *quote_char(char c, char buf[8])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(buf, 8, "\"%c\"", c);
    else
        snprintf(buf, 8, "\"\\x%02X\"", u);
    return buf;
}

/* An item of field f: the bounds of the item's text for messages. */
typedef struct item {
    const pctx_t *p;
    int f;
    const char *s; /* item text (not NUL-terminated) */
    int len;
} item_t;

static int item_fail_unexpected(const item_t *it, const char *at)
{
    char q[8];
    return fail(it->p, "%s: unexpected %s in \"%.*s\"", FIELDS[it->f].name, quote_char(*at, q),
                it->len, it->s);
}

/* Reads a number or a name at *pp (before end) into *v, checked against the field's bounds. */
static int read_value(const item_t *it, const char **pp, const char *end, int *v)
{
    const struct field_def *fd = &FIELDS[it->f];
    const char *s = *pp, *q = s;
    int whole = 0; /* the token is the whole item, so the message need not repeat the item */

    if (q < end && is_digit(*q)) {
        long n = 0;
        while (q < end && is_digit(*q)) {
            if (n < 1000000) n = n * 10 + (*q - '0');
            q++;
        }
        whole = s == it->s && q == it->s + it->len;
        if (n < fd->min || n > fd->max) {
            if (whole)
                return fail(it->p, "%s: %.*s is out of range %d-%d", fd->name, (int)(q - s), s,
                            fd->min, fd->max);
            return fail(it->p, "%s: %.*s in \"%.*s\" is out of range %d-%d", fd->name, (int)(q - s),
                        s, it->len, it->s, fd->min, fd->max);
        }
        *v = (int)n;
        *pp = q;
        return 0;
    }
    if (q < end && is_alpha(*q)) {
        while (q < end && is_alpha(*q))
            q++;
        int n = (int)(q - s);
        if (!fd->names) return fail(it->p, "%s: \"%.*s\" is not a number", fd->name, n, s);
        for (int i = 0; n == 3 && i < fd->nnames; i++) {
            const char *name = fd->names[i];
            if (upper(s[0]) == name[0] && upper(s[1]) == name[1] && upper(s[2]) == name[2]) {
                *v = fd->names_base + i;
                *pp = q;
                return 0;
            }
        }
        return fail(it->p, "%s: unknown name \"%.*s\" (expected %s or %d-%d)", fd->name, n, s,
                    fd->names_hint, fd->min, fd->max);
    }
    if (q == end) return fail(it->p, "%s: incomplete range \"%.*s\"", fd->name, it->len, it->s);
    return item_fail_unexpected(it, q);
}

/* Parses one list item and sets its bits. */
static int parse_item(const item_t *it, uint64_t *bits)
{
    const struct field_def *fd = &FIELDS[it->f];
    const char *q = it->s, *end = it->s + it->len;
    int lo, hi, step = 1, rc;
    int single = 0; /* a lone value: "a/n" then means "a-max/n" */

    if (*q == '*') {
        lo = fd->min;
        hi = fd->max;
        q++;
    } else {
        if ((rc = read_value(it, &q, end, &lo))) return rc;
        hi = lo;
        single = 1;
        if (q < end && *q == '-') {
            const char *dash = q++;
            if ((rc = read_value(it, &q, end, &hi))) return rc;
            if (lo > hi)
                return fail(it->p, "%s: range \"%.*s\" is backwards (%.*s > %.*s)", fd->name,
                            it->len, it->s, (int)(dash - it->s), it->s, (int)(q - dash - 1),
                            dash + 1);
            single = 0;
        }
    }
    if (q < end && *q == '/') {
        const char *num = ++q;
        long n = 0;
        while (q < end && is_digit(*q)) {
            if (n < 1000000) n = n * 10 + (*q - '0');
            q++;
        }
        if (q == num) {
            if (q == end)
                return fail(it->p, "%s: missing step after \"/\" in \"%.*s\"", fd->name, it->len,
                            it->s);
            return item_fail_unexpected(it, q);
        }
        if (n < 1 || n > fd->max)
            return fail(it->p, "%s: step %.*s in \"%.*s\" is out of range 1-%d", fd->name,
                        (int)(q - num), num, it->len, it->s, fd->max);
        step = (int)n;
        if (single) hi = fd->max;
    }
    if (q < end) return item_fail_unexpected(it, q);
    for (int v = lo; v <= hi; v += step)
        *bits |= UINT64_C(1) << v;
    return 0;
}

/* Parses field f from the text [s, s+len) into *bits. */
static int parse_field(const pctx_t *p, int f, const char *s, int len, uint64_t *bits)
{
    const char *end = s + len;
    *bits = 0;
    for (const char *q = s;;) {
        const char *comma = memchr(q, ',', (size_t)(end - q));
        const char *stop = comma ? comma : end;
        if (stop == q) return fail(p, "%s: empty list item in \"%.*s\"", FIELDS[f].name, len, s);
        item_t it = {p, f, q, (int)(stop - q)};
        int rc = parse_item(&it, bits);
        if (rc) return rc;
        if (!comma) break;
        q = comma + 1;
    }
    if (f == F_DOW && (*bits & (1u << 7))) *bits = (*bits & ~(UINT64_C(1) << 7)) | 1u;
    return 0;
}

/* Parses the five fields in text (a macro's expansion or the caller's trimmed expression). */
static int parse_fields(const pctx_t *p, const char *text, const char *text_end, hr_cron_t *out)
{
    const char *fs[NFIELDS + 2];
    int fl[NFIELDS + 2];
    int n = 0;
    for (const char *q = text; q < text_end;) {
        while (q < text_end && is_blank(*q))
            q++;
        if (q == text_end) break;
        const char *start = q;
        while (q < text_end && !is_blank(*q))
            q++;
        if (n < NFIELDS + 2) {
            fs[n] = start;
            fl[n] = (int)(q - start);
        }
        n++;
    }
    if (n == 0)
        return fail(p, "empty expression (expected 5 fields: minute hour day-of-month month "
                       "day-of-week)");
    if (n != NFIELDS)
        return fail(p, "expected 5 fields (minute hour day-of-month month day-of-week), found %d%s",
                    n, n == 6 ? "; a seconds field is not supported" : "");

    uint64_t bits[NFIELDS];
    for (int f = 0; f < NFIELDS; f++) {
        int rc = parse_field(p, f, fs[f], fl[f], &bits[f]);
        if (rc) return rc;
    }
    out->minute = bits[F_MINUTE];
    out->hour = (uint32_t)bits[F_HOUR];
    out->dom = (uint32_t)bits[F_DOM];
    out->month = (uint16_t)bits[F_MONTH];
    out->dow = (uint8_t)bits[F_DOW];
    out->dom_star = fl[F_DOM] == 1 && fs[F_DOM][0] == '*';
    out->dow_star = fl[F_DOW] == 1 && fs[F_DOW][0] == '*';
    return 0;
}

int hr_cron_parse(const char *expr, hr_cron_t *out, hr_err_t *err)
{
    pctx_t p = {expr ? expr : "", err};
    const char *s = p.expr, *end = s + strlen(s);
    while (s < end && is_blank(*s))
        s++;
    while (end > s && is_blank(end[-1]))
        end--;

    for (const char *q = s; q < end; q++) {
        unsigned char u = (unsigned char)*q;
        if ((u < 0x20 && u != '\t') || u == 0x7f)
            return fail(&p,
                        "control character \\x%02X at position %d (only spaces and tabs "
                        "separate fields)",
                        u, (int)(q - p.expr) + 1);
    }

    if (s < end && *s == '@') {
        const char *q = s;
        while (q < end && !is_blank(*q))
            q++;
        int n = (int)(q - s);
        const char *rest = q;
        while (rest < end && is_blank(*rest))
            rest++;
        if (n == 7 && strncasecmp(s, "@reboot", 7) == 0)
            return fail(&p, "@reboot is not supported: a schedule fires at clock times, not when "
                            "herald starts");
        for (size_t i = 0; i < sizeof MACROS / sizeof MACROS[0]; i++) {
            if ((int)strlen(MACROS[i].name) != n || strncasecmp(s, MACROS[i].name, (size_t)n))
                continue;
            if (rest < end)
                return fail(&p, "%.*s stands alone, found \"%.*s\" after it", n, s,
                            (int)(end - rest), rest);
            hr_cron_t tmp;
            int rc = parse_fields(&p, MACROS[i].fields, MACROS[i].fields + strlen(MACROS[i].fields),
                                  &tmp);
            if (rc == 0) *out = tmp;
            return rc;
        }
        return fail(&p,
                    "unknown macro \"%.*s\" (expected @yearly, @annually, @monthly, @weekly, "
                    "@daily, @midnight or @hourly)",
                    n, s);
    }

    hr_cron_t tmp;
    int rc = parse_fields(&p, s, end, &tmp);
    if (rc == 0) *out = tmp;
    return rc;
}

/* ---- Next fire time ---------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int len[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m];
}

/* The lowest set bit of mask at position >= from, or -1. */
static int next_bit(uint64_t mask, int from)
{
    if (from >= 64) return -1;
    mask &= ~UINT64_C(0) << from;
    return mask ? __builtin_ctzll(mask) : -1;
}

static int day_matches(const hr_cron_t *c, int64_t y, int m, int d)
{
    int64_t z = days_from_civil(y, m, d) + 4; /* 1970-01-01 was a Thursday */
    int wd = (int)(z - floor_div(z, 7) * 7);
    int dom_ok = (c->dom >> d) & 1;
    int dow_ok = (c->dow >> wd) & 1;
    if (c->dom_star || c->dow_star) return dom_ok && dow_ok;
    return dom_ok || dow_ok;
}

/* 1 if some day-of-month the expression allows exists in some month it allows. */
static int dom_exists(const hr_cron_t *c)
{
    static const int longest[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++)
        if (((c->month >> m) & 1) && (c->dom & (((uint32_t)2 << longest[m]) - 2))) return 1;
    return 0;
}

/* 0 if the expression names no day that exists. Every weekday occurs in every month, so that
 * can only happen when day-of-month alone decides (day-of-week is "*") and each day it allows is
 * longer than each month allowed: 30 February, 31 April. */
static int can_fire(const hr_cron_t *c)
{
    if (c->dom_star && c->dow_star) return c->dom && c->dow;
    if (c->dom_star) return c->dow != 0;
    if (c->dow_star) return dom_exists(c);
    return c->dow != 0 || dom_exists(c);
}

int hr_cron_next(const hr_cron_t *c, int64_t after_unix_s, int64_t *next_unix_s)
{
    if (after_unix_s < AFTER_MIN || after_unix_s > AFTER_MAX) return HR_EINVAL;
    if (!c->minute || !c->hour || !c->month || !can_fire(c)) return HR_ENOTFOUND;

    int64_t t = floor_div(after_unix_s, 60) * 60 + 60;
    int64_t days = floor_div(t, 86400);
    int secs = (int)(t - days * 86400);
    int64_t y;
    int mo, d, h = secs / 3600, mi = secs % 3600 / 60;
    civil_from_days(days, &y, &mo, &d);
    int64_t last_year = y + SEARCH_YEARS;

    for (;;) {
        if (y > last_year) return HR_ENOTFOUND;
        int m2 = next_bit(c->month, mo);
        if (m2 < 0) {
            y++;
            mo = 1, d = 1, h = 0, mi = 0;
            continue;
        }
        if (m2 != mo) mo = m2, d = 1, h = 0, mi = 0;

        int dim = days_in_month(y, mo);
        while (d <= dim && !day_matches(c, y, mo, d))
            d++, h = 0, mi = 0;
        if (d > dim) {
            if (++mo > 12) y++, mo = 1;
            d = 1, h = 0, mi = 0;
            continue;
        }

        int h2 = next_bit(c->hour, h);
        if (h2 < 0) {
            d++, h = 0, mi = 0;
            continue;
        }
        if (h2 != h) h = h2, mi = 0;

        int mi2 = next_bit(c->minute, mi);
        if (mi2 < 0) {
            h++, mi = 0;
            continue;
        }
        *next_unix_s = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi2 * 60;
        return 0;
    }
}
