/* buf.c: growable capped byte buffer (see buf.h). */
#include "core/buf.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hr_buf_init(hr_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

void hr_buf_free(hr_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void hr_buf_reset(hr_buf_t *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

static int reserve(hr_buf_t *b, size_t extra)
{
    if (b->limit && b->len + extra > b->limit) return HR_E2BIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = hr_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int hr_buf_append(hr_buf_t *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int hr_buf_puts(hr_buf_t *b, const char *s)
{
    return hr_buf_append(b, s, strlen(s));
}

int hr_buf_putc(hr_buf_t *b, char c)
{
    return hr_buf_append(b, &c, 1);
}

int hr_buf_printf(hr_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return HR_EINVAL;
    if ((size_t)n < sizeof small) return hr_buf_append(b, small, (size_t)n);
    int rc = reserve(b, (size_t)n);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int hr_buf_put_json_string(hr_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = hr_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        switch (*p) {
        case '"':
            rc = hr_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = hr_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = hr_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = hr_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = hr_buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
                rc = hr_buf_append(b, esc, 6);
            } else {
                rc = hr_buf_putc(b, (char)*p);
            }
        }
    }
    return rc ? rc : hr_buf_putc(b, '"');
}

char *hr_buf_steal(hr_buf_t *b, size_t *len)
{
    char *d = b->data ? b->data : hr_xstrdup("");
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
