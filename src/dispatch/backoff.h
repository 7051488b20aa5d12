/* backoff.h: when to try an event again (pure).
 *
 * Exponential: the delay before retry n (n = 1 for the first retry) is uniform in
 * [0, min(max_interval, interval * 2^(n-1))] ("full jitter"). Fixed: exactly interval (capped at
 * max_interval). A Retry-After from a 429 or 503 raises the delay to at least that value, but
 * never above max_interval. Whether a retry happens at all is decided by max_retries. */
#ifndef HR_BACKOFF_H
#define HR_BACKOFF_H

#include <stdint.h>

#include "config/config.h"

/* Delay before retry number n (>= 1). rnd is a uniformly random 64-bit value (the caller's RNG,
 * so tests are deterministic). retry_after_ms < 0 means none given. */
uint64_t hr_backoff_delay_ms(const hr_retry_t *r, int n, uint64_t rnd, int64_t retry_after_ms);
/* Parses a Retry-After value: delta seconds or an HTTP date (relative to now_unix_s).
 * Writes the delay in ms (a date in the past gives 0). Returns 0 or HR_EINVAL. */
int hr_retry_after_parse(const char *value, int64_t now_unix_s, int64_t *out_ms);

#endif
