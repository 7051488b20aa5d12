/* template.c: {{VAR}} expansion (see template.h).
 *
 * A reference is "{{", optional spaces or tabs, NAME ([A-Za-z_][A-Za-z0-9_]*), optional spaces
 * or tabs, "}}". Text outside references is copied byte for byte and values are inserted as
 * they are (never expanded again). Errors: a "{{" with no "}}" after it, a "{{ … }}" whose
 * inside is not a NAME, and a variable the lookup does not know. Messages name the variable or
 * the offset but never quote the template, which may be a secret. A '{' or '}' that is not part
 * of a reference is text, so "{{{NAME}}}" gives "{value}". */
#include "dispatch/template.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static const char *env_lookup(const char *name, void *ud)
{
    return getenv(name);
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* p points just past "{{". On success sets the name span and returns the position after "}}";
 * NULL if the inside is not a NAME (then *name_len is 0). */
static const char *scan_ref(const char *p, const char **name, size_t *name_len)
{
    *name_len = 0;
    p = skip_blank(p);
    if (!is_name_start(*p)) return NULL;
    const char *start = p;
    while (is_name_char(*p))
        p++;
    const char *stop = p;
    p = skip_blank(p);
    if (p[0] != '}' || p[1] != '}') return NULL;
    *name = start;
    *name_len = (size_t)(stop - start);
    return p + 2;
}

int hr_template_has_vars(const char *s)
{
    if (!s) return 0;
    for (const char *p = strstr(s, "{{"); p; p = strstr(p + 1, "{{")) {
        const char *name;
        size_t len;
        if (scan_ref(p + 2, &name, &len)) return 1;
    }
    return 0;
}

int hr_template_expand(const char *tmpl, hr_lookup_fn lookup, void *ud, char **out, hr_err_t *err)
{
    hr_buf_t b = HR_BUF_INIT;
    int rc = 0;
    if (out) *out = NULL;
    if (!tmpl || !out) return hr_err_set(err, HR_EINVAL, "no template to expand");
    if (!lookup) lookup = env_lookup;

    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            hr_buf_puts(&b, p);
            break;
        }
        hr_buf_append(&b, p, (size_t)(open - p));
        if (!strstr(open + 2, "}}")) {
            rc = hr_err_set(err, HR_EINVAL, "unterminated \"{{\" at offset %zu",
                            (size_t)(open - tmpl));
            goto out;
        }
        const char *name;
        size_t len;
        const char *next = scan_ref(open + 2, &name, &len);
        if (!next && open[2] == '{') {
            /* "{{{NAME}}": the first brace is text. */
            hr_buf_putc(&b, '{');
            p = open + 1;
            continue;
        }
        if (!next) {
            rc = hr_err_set(err, HR_EINVAL,
                            "invalid variable reference at offset %zu (expected {{NAME}})",
                            (size_t)(open - tmpl));
            goto out;
        }
        char *var = hr_xstrndup(name, len);
        const char *value = lookup(var, ud);
        if (!value) {
            rc = hr_err_set(err, HR_EINVAL, "environment variable %s is not set", var);
            free(var);
            goto out;
        }
        free(var);
        hr_buf_puts(&b, value);
        p = next;
    }
    *out = hr_buf_steal(&b, NULL);
out:
    hr_buf_free(&b);
    return rc;
}
