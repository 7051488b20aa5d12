/* err.c: error recording and aborting allocators (see err.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hr_err_set(hr_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int hr_err_append(hr_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        size_t used = err->code ? strlen(err->msg) : 0;
        if (!err->code) {
            err->code = code;
            err->msg[0] = '\0';
        }
        if (used && used + 1 < sizeof err->msg) {
            err->msg[used++] = '\n';
            err->msg[used] = '\0';
        }
        if (used + 1 < sizeof err->msg) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err->msg + used, sizeof err->msg - used, fmt, ap);
            va_end(ap);
        }
    }
    return err && err->code ? err->code : code;
}

const char *hr_strerror(int code)
{
    switch (code) {
    case HR_OK:
        return "OK";
    case HR_EINVAL:
        return "EINVAL";
    case HR_EIO:
        return "EIO";
    case HR_EDB:
        return "EDB";
    case HR_ECONFIG:
        return "ECONFIG";
    case HR_ENOTFOUND:
        return "ENOTFOUND";
    case HR_EEXIST:
        return "EEXIST";
    case HR_ETIMEOUT:
        return "ETIMEOUT";
    case HR_ESCHEMA:
        return "ESCHEMA";
    case HR_ECANCELED:
        return "ECANCELED";
    case HR_E2BIG:
        return "E2BIG";
    default:
        return "EUNKNOWN";
    }
}

static void oom(void)
{
    fputs("herald: out of memory\n", stderr);
    abort();
}

void *hr_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom();
    return p;
}

void *hr_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) oom();
    return p;
}

void *hr_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom();
    return q;
}

char *hr_xstrdup(const char *s)
{
    if (!s) return NULL;
    char *p = strdup(s);
    if (!p) oom();
    return p;
}

char *hr_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p) oom();
    return p;
}

char *hr_xvasprintf(const char *fmt, va_list ap)
{
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0) oom();
    return out;
}

char *hr_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = hr_xvasprintf(fmt, ap);
    va_end(ap);
    return out;
}
