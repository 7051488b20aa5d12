/* text.c: UTF-8 cleaning and lenient JSON from the database (see text.h). */
#include "core/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

/* Length of the valid UTF-8 sequence at p, or 0 when it is not one. */
static int utf8_len(const unsigned char *p)
{
    int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    if (len == 2 && *p < 0xC2) return 0; /* overlong */
    if (len == 3) {
        unsigned cp = ((p[0] & 0xFu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    }
    if (len == 4) {
        unsigned cp =
            ((p[0] & 0x7u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
        if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    }
    return len;
}

char *hr_utf8_clean(const char *s)
{
    hr_buf_t clean = HR_BUF_INIT;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = utf8_len(p);
        if (len) {
            hr_buf_append(&clean, p, (size_t)len);
            p += len;
        } else {
            hr_buf_puts(&clean, "\xEF\xBF\xBD");
            p++;
        }
    }
    if (!clean.data) return hr_xstrdup("");
    return hr_buf_steal(&clean, NULL);
}

/* s with every integer token that does not fit in 64 bits turned into a real (".0" appended);
 * strings are left alone. */
static char *big_ints_as_reals(const char *s)
{
    hr_buf_t b = HR_BUF_INIT;
    int in_string = 0;
    for (const char *p = s; *p;) {
        if (in_string) {
            if (*p == '\\' && p[1])
                hr_buf_putc(&b, *p++);
            else if (*p == '"')
                in_string = 0;
            hr_buf_putc(&b, *p++);
            continue;
        }
        if (*p == '"') {
            in_string = 1;
            hr_buf_putc(&b, *p++);
            continue;
        }
        if (*p != '-' && (*p < '0' || *p > '9')) {
            hr_buf_putc(&b, *p++);
            continue;
        }
        const char *start = p;
        int integer = 1;
        while (*p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E' ||
               (*p >= '0' && *p <= '9')) {
            if (*p == '.' || *p == 'e' || *p == 'E') integer = 0;
            p++;
        }
        hr_buf_append(&b, start, (size_t)(p - start));
        if (integer) {
            errno = 0;
            (void)strtoll(start, NULL, 10);
            if (errno == ERANGE) hr_buf_puts(&b, ".0");
        }
    }
    return hr_buf_steal(&b, NULL);
}

/* s parsed as JSON, its too-big integers read as reals; NULL if it is not JSON. */
static json_t *parse_db(const char *s)
{
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    if (!j) {
        char *t = big_ints_as_reals(s);
        j = json_loads(t, JSON_DECODE_ANY, NULL);
        free(t);
    }
    return j;
}

int hr_json_db_is_json(const char *s)
{
    if (!s) return 0;
    json_t *j = parse_db(s);
    json_decref(j);
    return j != NULL;
}

json_t *hr_json_from_db(const char *s)
{
    if (!s) return json_null();
    json_t *j = parse_db(s);
    if (!j) j = json_string(s);
    if (!j) {
        char *c = hr_utf8_clean(s);
        j = json_string(c);
        free(c);
    }
    return j;
}

int hr_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}
