/* err.h: herald's error convention.
 *
 * A fallible function returns int: 0 on success or a negative HR_E* code. When the caller passes
 * an hr_err_t, the function also writes a human-readable message there. Out-of-memory is not an
 * error code: the hr_x* allocators abort, because no caller can do anything better. */
#ifndef HR_ERR_H
#define HR_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum {
    HR_OK = 0,
    HR_EINVAL = -1,    /* bad input: arguments, config, request bodies */
    HR_EIO = -2,       /* a system call or the network failed */
    HR_EDB = -3,       /* the database answered with an error or went away */
    HR_ECONFIG = -4,   /* the configuration is invalid */
    HR_ENOTFOUND = -5, /* the named thing does not exist */
    HR_EEXIST = -6,    /* the named thing exists already */
    HR_ETIMEOUT = -7,  /* an operation ran out of time */
    HR_ESCHEMA = -8,   /* the database schema is newer than this binary, or not installed */
    HR_ECANCELED = -9, /* the operation was cancelled by shutdown */
    HR_E2BIG = -10,    /* input exceeded a size cap */
};

/* Detail for a failed call. msg may hold several lines (one per problem found). */
typedef struct hr_err {
    int code;
    char msg[2048];
} hr_err_t;

/* Records code and a printf-style message in err (which may be NULL); returns code. */
int hr_err_set(hr_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends a line to err->msg (keeps the first code); returns code. */
int hr_err_append(hr_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Short name of a code, e.g. "EINVAL". */
const char *hr_strerror(int code);

/* Allocation that aborts on out-of-memory. */
void *hr_xmalloc(size_t n);
void *hr_xcalloc(size_t count, size_t n);
void *hr_xrealloc(void *p, size_t n);
char *hr_xstrdup(const char *s); /* NULL stays NULL */
char *hr_xstrndup(const char *s, size_t n);
char *hr_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *hr_xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
