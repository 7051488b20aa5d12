/* clock.c: time helpers (see clock.h). */
#include "core/clock.h"

#include <stdio.h>
#include <time.h>

int64_t hr_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t hr_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void hr_format_rfc3339_us(int64_t unix_us, char *out, size_t cap)
{
    time_t s = (time_t)(unix_us / 1000000);
    long us = (long)(unix_us % 1000000);
    if (us < 0) {
        us += 1000000;
        s -= 1;
    }
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
}
