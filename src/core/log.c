/* log.c: line-oriented logging to stderr (see log.h). */
#include "core/log.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

hr_log_level_t hr_log_threshold = HR_LOG_INFO;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void hr_log_write(hr_log_level_t level, const char *fmt, ...)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), hr_log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

int hr_log_level_parse(const char *s, hr_log_level_t *out)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (s && strcasecmp(s, names[i]) == 0) {
            *out = (hr_log_level_t)i;
            return 0;
        }
    }
    return HR_EINVAL;
}

const char *hr_log_level_name(hr_log_level_t level)
{
    return (unsigned)level < sizeof names / sizeof names[0] ? names[level] : "?";
}
