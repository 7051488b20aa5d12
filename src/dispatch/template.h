/* template.h: {{VAR}} expansion in webhook URLs, header values and secrets.
 *
 * "{{NAME}}" (optional spaces inside the braces) is replaced by the value of NAME from lookup
 * (getenv by default). A missing variable is an error naming it; text without "{{" is copied. */
#ifndef HR_TEMPLATE_H
#define HR_TEMPLATE_H

#include "core/err.h"

typedef const char *(*hr_lookup_fn)(const char *name, void *ud);

/* *out is a new string the caller frees. lookup NULL means getenv. */
int hr_template_expand(const char *tmpl, hr_lookup_fn lookup, void *ud, char **out, hr_err_t *err);
/* 1 if s contains a {{VAR}} reference. */
int hr_template_has_vars(const char *s);

#endif
