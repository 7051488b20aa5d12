/* where_int.h: GraphQL's events_bool_exp and events_order_by as parameterised SQL, for both
 * backends (store_where.c; used by pg_stream.c and sqlite_stream.c). Private to src/store/. */
#ifndef HR_WHERE_INT_H
#define HR_WHERE_INT_H

#include <jansson.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* One parameter of the statement being built: an integer or a text. */
typedef struct hr_wparam {
    int is_int;
    int64_t i;
    char *s;
} hr_wparam_t;

/* A statement under construction. The log is aliased l. */
typedef struct hr_wsql {
    int pg;         /* 1: PostgreSQL ($n placeholders with casts, herald.*); 0: SQLite */
    hr_buf_t sql;   /* the text so far */
    hr_wparam_t *p; /* parameters; $n / ?n is p[n - 1] */
    size_t n;
} hr_wsql_t;

void hr_wsql_init(hr_wsql_t *w, int pg);
void hr_wsql_free(hr_wsql_t *w);
/* Appends the condition of where (NULL or {}: true). HR_EINVAL with the reason (and the path
 * of the offending key) for an unknown field or operator or a value of the wrong type. */
int hr_wsql_where(hr_wsql_t *w, const json_t *where, hr_err_t *err);
/* Appends " ORDER BY …" for order_by (NULL or []: seq ascending); seq is always the last key,
 * so the order is total. HR_EINVAL for an unknown field or direction. */
int hr_wsql_order(hr_wsql_t *w, const json_t *order_by, hr_err_t *err);
/* Appends a placeholder for an integer parameter. */
void hr_wsql_int(hr_wsql_t *w, int64_t v);

#endif
