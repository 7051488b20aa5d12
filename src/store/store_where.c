/* store_where.c: GraphQL's `where` (events_bool_exp) and `order_by` as parameterised SQL.
 *
 * One translator serves both backends: values never enter the SQL text, they become parameters
 * ($n with a cast on PostgreSQL, ?n on SQLite). Values are normalised first so that both
 * backends compare the same way: times become herald's canonical text (UTC, microseconds,
 * "2026-11-23T12:00:00.123456Z", whose text order is time order, which is how SQLite stores
 * them), uuids lower case, seqs integers.
 *
 *   where    := { field: comparison, ..., "_and": [where], "_or": [where], "_not": where,
 *                 "deliveries": { "trigger": comparison, "state": comparison } }   (keys AND-ed)
 *   field    := seq (bigint) | id (uuid) | source | op (text) | created_at (timestamptz)
 *   comparison := { "_eq" | "_neq" | "_gt" | "_gte" | "_lt" | "_lte": value, "_in" | "_nin": [v] }
 *
 * Ordering comparisons apply to seq and created_at only (text order differs between the two
 * databases' collations). `deliveries` holds when one of the event's deliveries (a trigger that
 * attempted or queued it, as event(id) lists them) matches; its state is computed as store.h's
 * delivery state. */
#include "store/where_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/text.h"

enum { T_INT, T_UUID, T_TEXT, T_TIME, T_STATE };

typedef struct field {
    const char *name;
    int type;
    const char *col; /* the column of the log l (or of the delivery subquery) */
} field_t;

static const field_t fields[] = {
    {"seq", T_INT, "l.seq"}, {"id", T_UUID, "l.id"},         {"source", T_TEXT, "l.source"},
    {"op", T_TEXT, "l.op"},  {"created_at", T_TIME, "l.at"},
};

void hr_wsql_init(hr_wsql_t *w, int pg)
{
    memset(w, 0, sizeof *w);
    w->pg = pg;
    hr_buf_init(&w->sql, 0);
}

void hr_wsql_free(hr_wsql_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->p[i].s);
    free(w->p);
    hr_buf_free(&w->sql);
}

static hr_wparam_t *param(hr_wsql_t *w)
{
    w->p = hr_xrealloc(w->p, (w->n + 1) * sizeof *w->p);
    hr_wparam_t *p = &w->p[w->n++];
    memset(p, 0, sizeof *p);
    return p;
}

void hr_wsql_int(hr_wsql_t *w, int64_t v)
{
    hr_wparam_t *p = param(w);
    p->is_int = 1;
    p->i = v;
    p->s = hr_xasprintf("%" PRId64, v);
    hr_buf_printf(&w->sql, w->pg ? "$%zu::bigint" : "?%zu", w->n);
}

static void put_text(hr_wsql_t *w, char *s, int type)
{
    hr_wparam_t *p = param(w);
    p->s = s; /* takes it */
    const char *cast = type == T_UUID ? "::uuid" : type == T_TIME ? "::timestamptz" : "::text";
    if (w->pg)
        hr_buf_printf(&w->sql, "$%zu%s", w->n, cast);
    else
        hr_buf_printf(&w->sql, "?%zu", w->n);
}

static const char *const states[] = {"pending", "delivered", "retrying", "dead"};

/* Appends the parameter for v (of the field's type) or fails. */
static int value(hr_wsql_t *w, const json_t *v, int type, const char *path, hr_err_t *err)
{
    if (type == T_INT) {
        int64_t i;
        if (json_is_integer(v)) {
            i = json_integer_value(v);
        } else if (json_is_string(v)) {
            char *end = NULL;
            const char *s = json_string_value(v);
            long long ll = strtoll(s, &end, 10);
            if (!*s || !end || *end) goto bad;
            i = ll;
        } else {
            goto bad;
        }
        hr_wsql_int(w, i);
        return 0;
    }
    if (!json_is_string(v)) goto bad;
    const char *s = json_string_value(v);
    if (type == T_UUID) {
        if (!hr_is_uuid(s)) goto bad;
        char *low = hr_xstrdup(s);
        for (char *c = low; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        put_text(w, low, type);
    } else if (type == T_TIME) {
        int64_t us;
        char buf[40];
        if (hr_parse_rfc3339_us(s, &us) != 0) goto bad;
        hr_format_rfc3339_us(us, buf, sizeof buf);
        put_text(w, hr_xstrdup(buf), type);
    } else {
        if (type == T_STATE) {
            int ok = 0;
            for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
                ok |= strcmp(s, states[i]) == 0;
            if (!ok) goto bad;
        }
        put_text(w, hr_xstrdup(s), type);
    }
    return 0;
bad:;
    static const char *const names[] = {"an integer (bigint)", "a uuid", "a string",
                                        "an RFC 3339 time", "pending, delivered, retrying or dead"};
    return hr_err_set(err, HR_EINVAL, "%s: expected %s", path, names[type]);
}

/* Appends the comparison cmp (an object of operators) of column col. */
static int comparison(hr_wsql_t *w, const char *col, int type, const json_t *cmp, const char *path,
                      hr_err_t *err)
{
    if (!json_is_object(cmp))
        return hr_err_set(err, HR_EINVAL, "%s: expected an object of operators (_eq, _in, ...)",
                          path);
    static const struct {
        const char *name, *sql;
        int ordered;
    } ops[] = {{"_eq", "=", 0},   {"_neq", "<>", 0}, {"_gt", ">", 1},
               {"_gte", ">=", 1}, {"_lt", "<", 1},   {"_lte", "<=", 1}};
    const char *key;
    const json_t *v;
    int first = 1;
    hr_buf_putc(&w->sql, '(');
    json_object_foreach((json_t *)cmp, key, v)
    {
        char sub[256];
        if (json_is_null(v)) continue; /* an explicit null operator is no condition */
        snprintf(sub, sizeof sub, "%.190s.%.60s", path, key);
        if (!first) hr_buf_puts(&w->sql, " AND ");
        first = 0;
        size_t k = 0;
        while (k < sizeof ops / sizeof ops[0] && strcmp(ops[k].name, key) != 0)
            k++;
        if (k < sizeof ops / sizeof ops[0]) {
            if (ops[k].ordered && type != T_INT && type != T_TIME)
                return hr_err_set(err, HR_EINVAL,
                                  "%s: ordering comparisons apply to seq and created_at only", sub);
            hr_buf_printf(&w->sql, "%s %s ", col, ops[k].sql);
            int rc = value(w, v, type, sub, err);
            if (rc) return rc;
            continue;
        }
        int in = strcmp(key, "_in") == 0, nin = strcmp(key, "_nin") == 0;
        if (!in && !nin)
            return hr_err_set(err, HR_EINVAL,
                              "%s: unknown operator (supported: _eq, _neq, _gt, _gte, _lt, _lte,"
                              " _in, _nin)",
                              sub);
        if (!json_is_array(v)) return hr_err_set(err, HR_EINVAL, "%s: expected a list", sub);
        if (json_array_size(v) == 0) {
            hr_buf_puts(&w->sql, in ? "1 = 0" : "1 = 1");
            continue;
        }
        hr_buf_printf(&w->sql, "%s %sIN (", col, nin ? "NOT " : "");
        for (size_t i = 0; i < json_array_size(v); i++) {
            char item[300];
            snprintf(item, sizeof item, "%.250s[%zu]", sub, i);
            if (i) hr_buf_puts(&w->sql, ", ");
            int rc = value(w, json_array_get(v, i), type, item, err);
            if (rc) return rc;
        }
        hr_buf_putc(&w->sql, ')');
    }
    if (first) hr_buf_puts(&w->sql, "1 = 1");
    hr_buf_putc(&w->sql, ')');
    return 0;
}

/* The delivery state of trigger t.trigger for event l, with its delayed row d. */
#define STATE_SQL(P)                                                                               \
    "(CASE WHEN d.dead THEN 'dead' WHEN d.attempts > 0 THEN 'retrying'"                            \
    " WHEN d.seq IS NOT NULL THEN 'pending' WHEN EXISTS (SELECT 1 FROM " P "attempts z"            \
    " WHERE z.event_id = l.id AND z.trigger = t.trigger AND z.status BETWEEN 200 AND 299)"         \
    " THEN 'delivered' ELSE 'pending' END)"

static int deliveries(hr_wsql_t *w, const json_t *v, const char *path, hr_err_t *err)
{
    if (!json_is_object(v))
        return hr_err_set(err, HR_EINVAL, "%s: expected {trigger: …, state: …}", path);
    const char *pre = w->pg ? "herald." : "herald_";
    hr_buf_printf(&w->sql,
                  "EXISTS (SELECT 1 FROM (SELECT x.trigger FROM %sattempts x WHERE x.event_id ="
                  " l.id UNION SELECT y.trigger FROM %sdelayed y WHERE y.seq = l.seq) t"
                  " LEFT JOIN %sdelayed d ON d.trigger = t.trigger AND d.seq = l.seq WHERE 1 = 1",
                  pre, pre, pre);
    const char *key;
    const json_t *c;
    json_object_foreach((json_t *)v, key, c)
    {
        char sub[256];
        if (json_is_null(c)) continue;
        snprintf(sub, sizeof sub, "%.190s.%.60s", path, key);
        hr_buf_puts(&w->sql, " AND ");
        int rc;
        if (strcmp(key, "trigger") == 0)
            rc = comparison(w, "t.trigger", T_TEXT, c, sub, err);
        else if (strcmp(key, "state") == 0)
            rc = comparison(w, w->pg ? STATE_SQL("herald.") : STATE_SQL("herald_"), T_STATE, c, sub,
                            err);
        else
            return hr_err_set(err, HR_EINVAL, "%s: unknown field (deliveries: trigger, state)",
                              sub);
        if (rc) return rc;
    }
    hr_buf_putc(&w->sql, ')');
    return 0;
}

static int where_at(hr_wsql_t *w, const json_t *where, const char *path, int depth, hr_err_t *err)
{
    if (depth > 16) return hr_err_set(err, HR_EINVAL, "%s: nested too deeply", path);
    if (!where || json_is_null(where)) {
        hr_buf_puts(&w->sql, "1 = 1");
        return 0;
    }
    if (!json_is_object(where)) return hr_err_set(err, HR_EINVAL, "%s: expected an object", path);
    const char *key;
    const json_t *v;
    int first = 1;
    hr_buf_putc(&w->sql, '(');
    json_object_foreach((json_t *)where, key, v)
    {
        char sub[256];
        if (json_is_null(v)) continue; /* an explicit null field is no condition */
        snprintf(sub, sizeof sub, "%.190s.%.60s", path, key);
        if (!first) hr_buf_puts(&w->sql, " AND ");
        first = 0;
        int rc = 0;
        if (strcmp(key, "_and") == 0 || strcmp(key, "_or") == 0) {
            int and = key[1] == 'a';
            if (json_is_object(v)) {
                rc = where_at(w, v, sub, depth + 1, err);
            } else if (!json_is_array(v)) {
                return hr_err_set(err, HR_EINVAL, "%s: expected a list", sub);
            } else if (json_array_size(v) == 0) {
                hr_buf_puts(&w->sql, and? "1 = 1" : "1 = 0");
            } else {
                hr_buf_putc(&w->sql, '(');
                for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
                    char item[300];
                    snprintf(item, sizeof item, "%.250s[%zu]", sub, i);
                    if (i) hr_buf_puts(&w->sql, and? " AND " : " OR ");
                    rc = where_at(w, json_array_get(v, i), item, depth + 1, err);
                }
                hr_buf_putc(&w->sql, ')');
            }
        } else if (strcmp(key, "_not") == 0) {
            hr_buf_puts(&w->sql, "NOT ");
            rc = where_at(w, v, sub, depth + 1, err);
        } else if (strcmp(key, "deliveries") == 0) {
            rc = deliveries(w, v, sub, err);
        } else {
            size_t k = 0;
            while (k < sizeof fields / sizeof fields[0] && strcmp(fields[k].name, key) != 0)
                k++;
            if (k == sizeof fields / sizeof fields[0])
                return hr_err_set(err, HR_EINVAL,
                                  "%s: unknown field (events: seq, id, source, op, created_at,"
                                  " deliveries, _and, _or, _not)",
                                  sub);
            rc = comparison(w, fields[k].col, fields[k].type, v, sub, err);
        }
        if (rc) return rc;
    }
    if (first) hr_buf_puts(&w->sql, "1 = 1");
    hr_buf_putc(&w->sql, ')');
    return 0;
}

int hr_wsql_where(hr_wsql_t *w, const json_t *where, hr_err_t *err)
{
    return where_at(w, where, "where", 0, err);
}

static int order_list(hr_wsql_t *w, const json_t *list, int *has_seq, int *first, hr_err_t *err)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *o = json_array_get(list, i);
        if (!json_is_object(o))
            return hr_err_set(err, HR_EINVAL, "order_by[%zu]: expected an object", i);
        const char *key;
        const json_t *dir;
        json_object_foreach((json_t *)o, key, dir)
        {
            size_t k = 0;
            if (json_is_null(dir)) continue;
            while (k < sizeof fields / sizeof fields[0] && strcmp(fields[k].name, key) != 0)
                k++;
            if (k == sizeof fields / sizeof fields[0])
                return hr_err_set(err, HR_EINVAL,
                                  "order_by[%zu].%s: unknown field (seq, id, source, op,"
                                  " created_at)",
                                  i, key);
            const char *d = json_string_value(dir);
            int desc;
            if (d && strncmp(d, "asc", 3) == 0 && (!d[3] || strncmp(d + 3, "_nulls_", 7) == 0))
                desc = 0;
            else if (d && strncmp(d, "desc", 4) == 0 &&
                     (!d[4] || strncmp(d + 4, "_nulls_", 7) == 0))
                desc = 1;
            else
                return hr_err_set(err, HR_EINVAL, "order_by[%zu].%s: expected asc or desc", i, key);
            /* The columns are never null: the nulls_first/last variants change nothing. */
            hr_buf_printf(&w->sql, "%s%s %s", *first ? "" : ", ", fields[k].col,
                          desc ? "DESC" : "ASC");
            *first = 0;
            if (strcmp(key, "seq") == 0) *has_seq = 1;
        }
    }
    return 0;
}

int hr_wsql_order(hr_wsql_t *w, const json_t *order_by, hr_err_t *err)
{
    hr_buf_puts(&w->sql, " ORDER BY ");
    int has_seq = 0, first = 1, rc = 0;
    if (order_by && json_is_object(order_by)) {
        /* A single object stands for a list of one, as GraphQL's input coercion allows. */
        json_t *one = json_pack("[O]", order_by);
        rc = order_list(w, one, &has_seq, &first, err);
        json_decref(one);
    } else if (order_by && !json_is_null(order_by)) {
        if (!json_is_array(order_by))
            return hr_err_set(err, HR_EINVAL, "order_by: expected a list");
        rc = order_list(w, order_by, &has_seq, &first, err);
    }
    if (rc) return rc;
    if (!has_seq) hr_buf_printf(&w->sql, "%sl.seq ASC", first ? "" : ", ");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The same expression evaluated in C, on event objects already read (events_stream)          */

/* -1 / 0 / 1 comparing the event's value ev with the filter's value v of the field's type;
 * -1 when v is not of the type. */
static int cmp_value(const json_t *ev, const json_t *v, int type, int *out)
{
    if (type == T_INT) {
        int64_t a = json_integer_value(ev), b;
        if (json_is_integer(v)) {
            b = json_integer_value(v);
        } else if (json_is_string(v)) {
            char *end = NULL;
            const char *s = json_string_value(v);
            b = strtoll(s, &end, 10);
            if (!*s || !end || *end) return -1;
        } else {
            return -1;
        }
        *out = a < b ? -1 : a > b;
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *a = json_string_value(ev), *s = json_string_value(v);
    if (!a) a = "";
    if (type == T_UUID) {
        if (!hr_is_uuid(s)) return -1;
        *out = strcasecmp(a, s) == 0 ? 0 : 1;
        return 0;
    }
    if (type == T_TIME) {
        int64_t us;
        char buf[40];
        if (hr_parse_rfc3339_us(s, &us) != 0) return -1;
        hr_format_rfc3339_us(us, buf, sizeof buf);
        int c = strcmp(a, buf); /* herald's time text: text order is time order */
        *out = c < 0 ? -1 : c > 0;
        return 0;
    }
    *out = strcmp(a, s) == 0 ? 0 : 1;
    return 0;
}

static int match_cmp(const json_t *ev, int type, const json_t *cmp, const char *path, hr_err_t *err)
{
    if (!json_is_object(cmp))
        return hr_err_set(err, HR_EINVAL, "%s: expected an object of operators (_eq, _in, ...)",
                          path);
    const char *key;
    const json_t *v;
    int all = 1;
    json_object_foreach((json_t *)cmp, key, v)
    {
        int c = 0, ok;
        if (json_is_null(v)) continue;
        int ordered = strcmp(key, "_gt") == 0 || strcmp(key, "_gte") == 0 ||
                      strcmp(key, "_lt") == 0 || strcmp(key, "_lte") == 0;
        if (ordered && type != T_INT && type != T_TIME)
            return hr_err_set(err, HR_EINVAL,
                              "%s.%s: ordering comparisons apply to seq and created_at only", path,
                              key);
        if (strcmp(key, "_in") == 0 || strcmp(key, "_nin") == 0) {
            if (!json_is_array(v))
                return hr_err_set(err, HR_EINVAL, "%s.%s: expected a list", path, key);
            int found = 0;
            for (size_t i = 0; i < json_array_size(v); i++) {
                if (cmp_value(ev, json_array_get(v, i), type, &c) != 0)
                    return hr_err_set(err, HR_EINVAL, "%s.%s[%zu]: invalid value", path, key, i);
                found |= c == 0;
            }
            ok = key[1] == 'i' ? found : !found;
        } else if (ordered || strcmp(key, "_eq") == 0 || strcmp(key, "_neq") == 0) {
            if (cmp_value(ev, v, type, &c) != 0)
                return hr_err_set(err, HR_EINVAL, "%s.%s: invalid value", path, key);
            ok = strcmp(key, "_eq") == 0    ? c == 0
                 : strcmp(key, "_neq") == 0 ? c != 0
                 : strcmp(key, "_gt") == 0  ? c > 0
                 : strcmp(key, "_gte") == 0 ? c >= 0
                 : strcmp(key, "_lt") == 0  ? c < 0
                                            : c <= 0;
        } else {
            return hr_err_set(err, HR_EINVAL,
                              "%s.%s: unknown operator (supported: _eq, _neq, _gt, _gte, _lt,"
                              " _lte, _in, _nin)",
                              path, key);
        }
        all &= ok;
    }
    return all;
}

static int match_at(const json_t *where, const json_t *event, const char *path, int depth,
                    hr_err_t *err)
{
    if (depth > 16) return hr_err_set(err, HR_EINVAL, "%s: nested too deeply", path);
    if (!where || json_is_null(where)) return 1;
    if (!json_is_object(where)) return hr_err_set(err, HR_EINVAL, "%s: expected an object", path);
    const char *key;
    const json_t *v;
    int all = 1;
    json_object_foreach((json_t *)where, key, v)
    {
        char sub[256];
        if (json_is_null(v)) continue;
        snprintf(sub, sizeof sub, "%.190s.%.60s", path, key);
        int r;
        if (strcmp(key, "_and") == 0 || strcmp(key, "_or") == 0) {
            int and = key[1] == 'a';
            if (json_is_object(v)) {
                r = match_at(v, event, sub, depth + 1, err);
            } else if (!json_is_array(v)) {
                return hr_err_set(err, HR_EINVAL, "%s: expected a list", sub);
            } else {
                r = and;
                /* Every item is evaluated, so that an invalid one is reported whatever the
                 * event. */
                for (size_t i = 0; i < json_array_size(v); i++) {
                    char item[300];
                    snprintf(item, sizeof item, "%.250s[%zu]", sub, i);
                    int x = match_at(json_array_get(v, i), event, item, depth + 1, err);
                    if (x < 0) return x;
                    r = and? r && x : r || x;
                }
            }
        } else if (strcmp(key, "_not") == 0) {
            r = match_at(v, event, sub, depth + 1, err);
            if (r >= 0) r = !r;
        } else if (strcmp(key, "deliveries") == 0) {
            return hr_err_set(err, HR_EINVAL,
                              "%s: delivery filters do not apply to a stream of new events"
                              " (subscribe to event(id) to follow deliveries)",
                              sub);
        } else {
            size_t k = 0;
            while (k < sizeof fields / sizeof fields[0] && strcmp(fields[k].name, key) != 0)
                k++;
            if (k == sizeof fields / sizeof fields[0])
                return hr_err_set(err, HR_EINVAL,
                                  "%s: unknown field (events: seq, id, source, op, created_at,"
                                  " _and, _or, _not)",
                                  sub);
            const char *member = strcmp(key, "created_at") == 0 ? "created_at" : key;
            r = match_cmp(json_object_get(event, member), fields[k].type, v, sub, err);
        }
        if (r < 0) return r;
        all &= r;
    }
    return all;
}

int hr_store_where_match(const json_t *where, const json_t *event, hr_err_t *err)
{
    hr_err_t local = {0};
    return match_at(where, event, "where", 0, err ? err : &local);
}
