/* buf.h: a growable byte buffer with an optional size cap, for request bodies and response
 * excerpts. The data is always NUL-terminated (the NUL is not counted in len). */
#ifndef HR_BUF_H
#define HR_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct hr_buf {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes used, excluding the terminating NUL */
    size_t cap;   /* bytes allocated */
    size_t limit; /* 0 = unlimited; otherwise appends past limit fail with HR_E2BIG */
} hr_buf_t;

#define HR_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

void hr_buf_init(hr_buf_t *b, size_t limit);
void hr_buf_free(hr_buf_t *b);  /* releases data; the buffer may be reused after init */
void hr_buf_reset(hr_buf_t *b); /* len = 0, keeps the allocation */
/* Appends n bytes; on HR_E2BIG appends nothing. */
int hr_buf_append(hr_buf_t *b, const void *p, size_t n);
int hr_buf_puts(hr_buf_t *b, const char *s);
int hr_buf_putc(hr_buf_t *b, char c);
int hr_buf_printf(hr_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
int hr_buf_put_json_string(hr_buf_t *b, const char *s);
/* Takes the data out of the buffer (caller frees); the buffer is left empty. */
char *hr_buf_steal(hr_buf_t *b, size_t *len);

#endif
