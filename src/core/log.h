/* log.h: the one global of herald, the logger.
 *
 * hr_log(level, fmt, ...) tests the level before formatting anything. Write one line per event
 * as key=value pairs, ids first: hr_log(HR_LOG_INFO, "trigger=%s event=%s msg=delivered", ...).
 * Lines go to stderr prefixed with an RFC 3339 UTC time and the level. Pure modules never log. */
#ifndef HR_LOG_H
#define HR_LOG_H

typedef enum {
    HR_LOG_DEBUG = 0,
    HR_LOG_INFO,
    HR_LOG_WARN,
    HR_LOG_ERROR,
    HR_LOG_OFF
} hr_log_level_t;

extern hr_log_level_t hr_log_threshold;

#define hr_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) >= hr_log_threshold) hr_log_write((level), __VA_ARGS__);                       \
    } while (0)

void hr_log_write(hr_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses debug|info|warn|error|off; returns 0 or HR_EINVAL. */
int hr_log_level_parse(const char *s, hr_log_level_t *out);
const char *hr_log_level_name(hr_log_level_t level);

#endif
