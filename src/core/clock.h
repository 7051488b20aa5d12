/* clock.h: wall-clock and monotonic time helpers. */
#ifndef HR_CLOCK_H
#define HR_CLOCK_H

#include <stddef.h>
#include <stdint.h>

int64_t hr_wall_us(void);  /* microseconds since the Unix epoch */
uint64_t hr_mono_us(void); /* monotonic microseconds */
/* Formats unix microseconds as "2026-11-23T12:00:00.123456Z" into out (at least 32 bytes). */
void hr_format_rfc3339_us(int64_t unix_us, char *out, size_t cap);
/* Unix microseconds of an RFC 3339 time: "2026-11-23", "2026-11-23T12:00", "…T12:00:05.5Z",
 * "…+02:00" ('T', 't' or a space between date and time; digits past microseconds are dropped; no
 * zone is UTC). 0, or -1 when s is not such a time (then *us is untouched). */
int hr_parse_rfc3339_us(const char *s, int64_t *us);

#endif
