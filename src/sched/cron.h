/* cron.h: 5-field cron expressions and their next fire time in UTC (pure).
 *
 * An expression is "minute hour day-of-month month day-of-week", fields separated by any run of
 * spaces or tabs (leading and trailing ones are ignored):
 *
 *   field          values
 *   minute         0-59
 *   hour           0-23
 *   day-of-month   1-31
 *   month          1-12 or JAN-DEC
 *   day-of-week    0-7 or SUN-SAT (0 and 7 are both Sunday)
 *
 * Names are three letters, matched without regard to case. A field is a comma-separated list of
 * items; an item is "*", a value, or a range "a-b", optionally followed by a step "/n" (1 <= n <=
 * the field's maximum): "*" + "/n" is every n-th value from the field's minimum, "a-b/n" every
 * n-th from a up to b, and "a/n" means "a-max/n" (as in Vixie cron and cronie). Lists may
 * overlap ("1-5,3"). The macros @yearly (= @annually), @monthly, @weekly, @daily (= @midnight)
 * and @hourly stand alone, in any case; @reboot is rejected, since a schedule fires at clock
 * times, not when herald starts. Control characters (a newline) are rejected, not separators.
 *
 * The day rule (POSIX and Vixie): when both day fields are restricted, a day matches if EITHER
 * matches; when one of them is unrestricted, the other one decides. A day field is unrestricted
 * only when it is exactly "*" (as in the npm package cron-parser 5, herald's cross-check oracle).
 * Vixie cron differs for fields that begin with "*" but say more (a stepped star, "*" then
 * "/2", or "*,5"): it counts them as unrestricted, herald counts them as restricted. So with
 * day-of-month "*" "/2" and day-of-week "1", herald and cron-parser fire on odd days OR Mondays,
 * Vixie cron on odd-numbered Mondays only. A field that happens to list every value ("1-31",
 * "0-7") is restricted too, for both herald and Vixie cron. */
#ifndef HR_CRON_H
#define HR_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

/* A parsed expression: one bit per value a field allows. */
typedef struct hr_cron {
    uint64_t minute; /* bit m: minute m (0-59) */
    uint32_t hour;   /* bit h: hour h (0-23) */
    uint32_t dom;    /* bit d: day of month d (1-31); bit 0 is never set */
    uint16_t month;  /* bit m: month m (1-12); bit 0 is never set */
    uint8_t dow;     /* bit d: day of week d (0-6, 0 = Sunday); a 7 in the text is stored as 0 */
    bool dom_star;   /* the day-of-month field was exactly "*" (unrestricted for the day rule) */
    bool dow_star;   /* the day-of-week field was exactly "*" */
} hr_cron_t;

/* Parses expr into *out. Returns 0, or HR_EINVAL with a message in err naming the expression,
 * the field and the offending text, e.g.
 *   cron "61 * * * *": minute: 61 is out of range 0-59
 * On failure *out is left unchanged. An expression that parses may still never fire
 * ("0 0 31 2 *"): hr_cron_next reports that. */
int hr_cron_parse(const char *expr, hr_cron_t *out, hr_err_t *err);

/* Writes to *next_unix_s the first fire time strictly after after_unix_s (a whole minute, UTC).
 * Returns 0; HR_ENOTFOUND if the expression can never fire (every day it names is impossible,
 * such as 30 or 31 February); HR_EINVAL if after_unix_s is outside the years 0001-9999. Any
 * expression that can fire does so within 8 years (29 February skips 2100), the search bound. */
int hr_cron_next(const hr_cron_t *c, int64_t after_unix_s, int64_t *next_unix_s);

#endif
