/* coerce.c: input values and their printing.
 *
 *   literal -> JSON      arguments and defaults (hr_gql_coerce_literal), and the same walk in
 *                        check mode for validation's "Values of Correct Type" (literal_check)
 *   JSON -> JSON         variables (hr_gql_coerce_json): graphql-js's coerceInputValue
 *   JSON -> JSON         leaf results (hr_gql_serialize_scalar): the scalars' serialize
 *   printing             a literal (print), a JSON value as a literal of a type (astFromValue,
 *                        for introspection's defaultValue), a JSON value in messages (inspect)
 *   suggestions          graphql-js's suggestionList and didYouMean
 * Messages are graphql-js 16's. Numbers are printed as JavaScript prints them, since that is
 * what a client compares against. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "gql/gql_int.h"

/* ---- printing ---- */

/* A double as JavaScript's String(number). */
static void js_number(double d, char *buf, size_t n)
{
    if (isnan(d)) {
        snprintf(buf, n, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, n, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(buf, n, "%.0f", d);
        if (strcmp(buf, "-0") == 0) snprintf(buf, n, "0");
        return;
    }
    char tmp[80];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* C writes 1e-07 where JavaScript writes 1e-7; JavaScript uses exponents only below 1e-6
     * and from 1e21. */
    char *e = strchr(tmp, 'e');
    double ad = fabs(d);
    if (e && ad >= 1e-6 && ad < 1e21) {
        /* Print without exponent. */
        snprintf(tmp, sizeof tmp, "%.17f", d);
        for (int prec = 0; prec <= 20; prec++) {
            char t2[64];
            snprintf(t2, sizeof t2, "%.*f", prec, d);
            if (strtod(t2, NULL) == d) {
                snprintf(tmp, sizeof tmp, "%s", t2);
                break;
            }
        }
        e = NULL;
    }
    if (e) {
        int ex = atoi(e + 1);
        char exp[16];
        snprintf(exp, sizeof exp, "e%s%d", ex < 0 ? "-" : "+", abs(ex));
        memcpy(e, exp, strlen(exp) + 1);
    }
    size_t l = strlen(tmp);
    if (l >= n) l = n - 1;
    memcpy(buf, tmp, l);
    buf[l] = '\0';
}

/* graphql-js's printString. */
static void put_gql_string(hr_buf_t *b, const char *s, size_t len)
{
    hr_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            hr_buf_puts(b, "\\\"");
            break;
        case '\\':
            hr_buf_puts(b, "\\\\");
            break;
        case '\b':
            hr_buf_puts(b, "\\b");
            break;
        case '\f':
            hr_buf_puts(b, "\\f");
            break;
        case '\n':
            hr_buf_puts(b, "\\n");
            break;
        case '\r':
            hr_buf_puts(b, "\\r");
            break;
        case '\t':
            hr_buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                hr_buf_printf(b, "\\u%04X", c);
            else if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
                     (unsigned char)s[i + 1] <= 0x9F)
                hr_buf_printf(b, "\\u%04X", (unsigned char)s[++i]);
            else
                hr_buf_putc(b, (char)c);
        }
    }
    hr_buf_putc(b, '"');
}

static void print_value(hr_buf_t *b, const gql_value_t *v)
{
    switch (v->kind) {
    case V_VAR:
        hr_buf_printf(b, "$%s", v->s);
        break;
    case V_INT:
    case V_FLOAT:
    case V_ENUM:
        hr_buf_puts(b, v->s);
        break;
    case V_STRING:
        put_gql_string(b, v->s, v->len);
        break;
    case V_BOOL:
        hr_buf_puts(b, v->b ? "true" : "false");
        break;
    case V_NULL:
        hr_buf_puts(b, "null");
        break;
    case V_LIST:
        hr_buf_putc(b, '[');
        for (const gql_value_t *i = v->items; i; i = i->next) {
            print_value(b, i);
            if (i->next) hr_buf_puts(b, ", ");
        }
        hr_buf_putc(b, ']');
        break;
    case V_OBJECT:
        hr_buf_putc(b, '{');
        for (const gql_value_t *i = v->items; i; i = i->next) {
            hr_buf_printf(b, "%s: ", i->name);
            print_value(b, i);
            if (i->next) hr_buf_puts(b, ", ");
        }
        hr_buf_putc(b, '}');
        break;
    }
}

char *hr_gql_print_value_str(const gql_value_t *v)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    print_value(&b, v);
    if (!b.data) hr_buf_puts(&b, "");
    return hr_buf_steal(&b, NULL);
}

void hr_gql_print_value(const gql_value_t *v, char *buf, size_t n)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    print_value(&b, v);
    snprintf(buf, n, "%s", b.data ? b.data : "");
    hr_buf_free(&b);
}

static void inspect(hr_buf_t *b, json_t *v, int depth)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        hr_buf_puts(b, s);
        free(s);
        break;
    }
    case JSON_INTEGER:
        hr_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        js_number(json_real_value(v), num, sizeof num);
        hr_buf_puts(b, num);
        break;
    case JSON_TRUE:
        hr_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        hr_buf_puts(b, "false");
        break;
    case JSON_NULL:
        hr_buf_puts(b, "null");
        break;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (n == 0) {
            hr_buf_puts(b, "[]");
            break;
        }
        if (depth >= 2) { /* graphql-js's inspect shows two levels */
            hr_buf_puts(b, "[Array]");
            break;
        }
        hr_buf_putc(b, '[');
        for (size_t i = 0; i < n && i < 10; i++) {
            if (i) hr_buf_puts(b, ", ");
            inspect(b, json_array_get(v, i), depth + 1);
        }
        if (n > 10) hr_buf_printf(b, ", ... %zu more item%s", n - 10, n - 10 > 1 ? "s" : "");
        hr_buf_putc(b, ']');
        break;
    }
    case JSON_OBJECT: {
        if (json_object_size(v) == 0) {
            hr_buf_puts(b, "{}");
            break;
        }
        if (depth >= 2) {
            hr_buf_puts(b, "[Object]");
            break;
        }
        hr_buf_puts(b, "{ ");
        const char *k;
        json_t *m;
        int first = 1;
        json_object_foreach(v, k, m)
        {
            if (!first) hr_buf_puts(b, ", ");
            first = 0;
            hr_buf_printf(b, "%s: ", k);
            inspect(b, m, depth + 1);
        }
        hr_buf_puts(b, " }");
        break;
    }
    }
}

char *hr_gql_inspect_str(json_t *v)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    inspect(&b, v, 0);
    if (!b.data) hr_buf_puts(&b, "");
    return hr_buf_steal(&b, NULL);
}

void hr_gql_inspect(json_t *v, char *buf, size_t n)
{
    char *s = hr_gql_inspect_str(v);
    snprintf(buf, n, "%s", s);
    if (strlen(s) >= n && n > 4) memcpy(buf + n - 4, "...", 4);
    free(s);
}

static int is_int_text(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

static void print_json_literal(hr_buf_t *b, const gql_tref_t *t, json_t *v)
{
    if (t->kind == TY_NONNULL) {
        print_json_literal(b, t->of, v);
        return;
    }
    if (!v || json_is_null(v)) {
        hr_buf_puts(b, "null");
        return;
    }
    if (t->kind == TY_LIST) {
        if (!json_is_array(v)) {
            print_json_literal(b, t->of, v);
            return;
        }
        hr_buf_putc(b, '[');
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if (i) hr_buf_puts(b, ", ");
            print_json_literal(b, t->of, m);
        }
        hr_buf_putc(b, ']');
        return;
    }
    const gql_stype_t *ty = t->type;
    if (ty->kind == K_INPUT && json_is_object(v)) {
        hr_buf_putc(b, '{');
        int first = 1;
        for (size_t i = 0; i < ty->ninputs; i++) {
            json_t *m = json_object_get(v, ty->inputs[i].name);
            if (!m) continue;
            if (!first) hr_buf_puts(b, ", ");
            first = 0;
            hr_buf_printf(b, "%s: ", ty->inputs[i].name);
            print_json_literal(b, ty->inputs[i].type, m);
        }
        hr_buf_putc(b, '}');
        return;
    }
    if (ty->kind == K_ENUM && json_is_string(v)) {
        hr_buf_puts(b, json_string_value(v));
        return;
    }
    char num[64];
    switch (json_typeof(v)) {
    case JSON_TRUE:
        hr_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        hr_buf_puts(b, "false");
        break;
    case JSON_INTEGER:
        hr_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        js_number(json_real_value(v), num, sizeof num);
        hr_buf_puts(b, num);
        break;
    case JSON_STRING:
        if (ty->scalar == SC_ID && is_int_text(json_string_value(v)))
            hr_buf_puts(b, json_string_value(v));
        else
            put_gql_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_ARRAY: {
        /* A custom scalar's list: printed untyped. */
        hr_buf_putc(b, '[');
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if (i) hr_buf_puts(b, ", ");
            print_json_literal(b, t, m);
        }
        hr_buf_putc(b, ']');
        break;
    }
    case JSON_OBJECT: {
        hr_buf_putc(b, '{');
        const char *k;
        json_t *m;
        int first = 1;
        json_object_foreach(v, k, m)
        {
            if (!first) hr_buf_puts(b, ", ");
            first = 0;
            hr_buf_printf(b, "%s: ", k);
            print_json_literal(b, t, m);
        }
        hr_buf_putc(b, '}');
        break;
    }
    default:
        hr_buf_puts(b, "null");
    }
}

char *hr_gql_print_json_literal(const gql_tref_t *t, json_t *v)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    print_json_literal(&b, t, v);
    return hr_buf_steal(&b, NULL);
}

/* ---- suggestions ---- */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* graphql-js's LexicalDistance.measure: -1 when above threshold. */
static int distance(const char *input, const char *option, int threshold)
{
    if (strcmp(input, option) == 0) return 0;
    size_t la = strlen(option), lb = strlen(input);
    int same = la == lb;
    for (size_t i = 0; same && i < la; i++)
        if (lower(option[i]) != lower(input[i])) same = 0;
    if (same) return 1;
    const char *a = option, *b = input;
    if (la < lb) {
        const char *t = a;
        a = b, b = t;
        size_t tl = la;
        la = lb, lb = tl;
    }
    if ((int)(la - lb) > threshold || la > 100) return -1;
    int rows[3][101];
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int *up = rows[(i - 1) % 3], *cur = rows[i % 3];
        int smallest = cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            int c = up[j] + 1;
            if (cur[j - 1] + 1 < c) c = cur[j - 1] + 1;
            if (up[j - 1] + cost < c) c = up[j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                int dbl = rows[(i - 2) % 3][j - 2];
                if (dbl + 1 < c) c = dbl + 1;
            }
            if (c < smallest) smallest = c;
            cur[j] = c;
        }
        if (smallest > threshold) return -1;
    }
    int d = rows[la % 3][lb];
    return d <= threshold ? d : -1;
}

void hr_gql_suggest(const char *sub, const char *name, const char *const *options, size_t n,
                    char *buf, size_t bufsz)
{
    int threshold = (int)(strlen(name) * 4 / 10) + 1;
    const char *best[5];
    int bestd[5];
    size_t nbest = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int d = distance(name, options[i], threshold);
        if (d < 0) continue;
        int dup = 0; /* graphql-js keys its candidates by name */
        for (size_t k = 0; k < nbest && !dup; k++)
            dup = strcmp(best[k], options[i]) == 0;
        if (dup) continue;
        /* Insertion into the five best, by distance then name. */
        size_t at = nbest;
        while (at > 0 &&
               (bestd[at - 1] > d || (bestd[at - 1] == d && strcmp(best[at - 1], options[i]) > 0)))
            at--;
        if (at >= 5) continue;
        size_t end = nbest < 5 ? nbest : 4;
        for (size_t k = end; k > at; k--) {
            best[k] = best[k - 1];
            bestd[k] = bestd[k - 1];
        }
        best[at] = options[i];
        bestd[at] = d;
        if (nbest < 5) nbest++;
    }
    if (!nbest) return;
    size_t at = (size_t)snprintf(buf, bufsz, " Did you mean %s%s", sub ? sub : "", sub ? " " : "");
    for (size_t i = 0; i < nbest && at < bufsz; i++) {
        const char *sep = i == 0 ? "" : (i + 1 == nbest ? (nbest == 2 ? " or " : ", or ") : ", ");
        at += (size_t)snprintf(buf + at, bufsz - at, "%s\"%s\"", sep, best[i]);
    }
    if (at < bufsz) snprintf(buf + at, bufsz - at, "?");
}

static void suggest_inputs(const gql_stype_t *t, const char *name, char *buf, size_t n)
{
    const char **opts = malloc((t->ninputs + 1) * sizeof *opts);
    for (size_t i = 0; i < t->ninputs; i++)
        opts[i] = t->inputs[i].name;
    hr_gql_suggest(NULL, name, opts, t->ninputs, buf, n);
    free(opts);
}

static void suggest_enum(const gql_stype_t *t, const char *name, char *buf, size_t n)
{
    const char **opts = malloc((t->nvalues + 1) * sizeof *opts);
    for (size_t i = 0; i < t->nvalues; i++)
        opts[i] = t->values[i].name;
    hr_gql_suggest("the enum value", name, opts, t->nvalues, buf, n);
    free(opts);
}

/* ---- literals ---- */

/* One walk serves two purposes. Coercing (execution, defaults): a literal becomes JSON and the
 * first error stops the walk. Checking (validation): every error is reported, in the order and
 * words of graphql-js's ValuesOfCorrectTypeRule, and variables are accepted as they are. */
typedef struct lit {
    json_t *vars; /* coerced variables; NULL: none given */
    int check;
    hr_gql_lit_report_fn report; /* check mode */
    void *ud;
    int nerr;
    char *msg; /* coerce mode: the error */
    size_t msgsz;
} lit_t;

static int lfail(lit_t *l, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int lfail(lit_t *l, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *buf = hr_xvasprintf(fmt, ap);
    va_end(ap);
    l->nerr++;
    if (l->check) {
        if (l->report) l->report(l->ud, line, col, buf);
    } else {
        snprintf(l->msg, l->msgsz, "%s", buf);
    }
    free(buf);
    return -1;
}

/* lfail with v printed (whole) where the format's one %s is. */
static int lfail_printed(lit_t *l, const gql_value_t *v, const char *fmt)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    print_value(&b, v);
    if (!b.data) hr_buf_puts(&b, "");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    lfail(l, v->line, v->col, fmt, b.data);
#pragma GCC diagnostic pop
    hr_buf_free(&b);
    return -1;
}

static json_t *number_or_null(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

/* A custom scalar's literal, untyped (graphql-js valueFromASTUntyped). */
static json_t *untyped(const gql_value_t *v, json_t *vars)
{
    switch (v->kind) {
    case V_VAR: {
        json_t *x = vars ? json_object_get(vars, v->s) : NULL;
        return x ? json_incref(x) : json_null();
    }
    case V_INT: {
        errno = 0;
        long long x = strtoll(v->s, NULL, 10);
        if (errno == ERANGE) return number_or_null(strtod(v->s, NULL));
        return json_integer(x);
    }
    case V_FLOAT:
        return number_or_null(strtod(v->s, NULL));
    case V_STRING:
        return json_stringn(v->s, v->len);
    case V_ENUM:
        return json_string(v->s);
    case V_BOOL:
        return json_boolean(v->b);
    case V_NULL:
        return json_null();
    case V_LIST: {
        json_t *a = json_array();
        for (const gql_value_t *i = v->items; i; i = i->next)
            json_array_append_new(a, untyped(i, vars));
        return a;
    }
    case V_OBJECT: {
        json_t *o = json_object();
        for (const gql_value_t *i = v->items; i; i = i->next)
            json_object_set_new(o, i->name, untyped(i, vars));
        return o;
    }
    }
    return json_null();
}

/* Coerces or checks v as type t; loc is the type the position expects as a whole (for "Expected
 * value of type" messages, graphql-js names it). Returns 0 (and *out when coercing), 1 for a
 * variable that was not given, -1 on error. */
static int lit(lit_t *l, const gql_tref_t *t, const gql_tref_t *loc, const gql_value_t *v,
               json_t **out)
{
    char tb[256];
    if (out) *out = NULL;
    if (v->kind == V_VAR) {
        if (l->check) return 0;
        json_t *x = l->vars ? json_object_get(l->vars, v->s) : NULL;
        if (!x) return 1;
        if (t->kind == TY_NONNULL && json_is_null(x))
            return lfail(l, v->line, v->col, "Expected non-nullable type \"%s\" not to be null.",
                         hr_gql_tref_str(t, tb, sizeof tb));
        *out = json_incref(x);
        return 0;
    }
    if (t->kind == TY_NONNULL) {
        if (v->kind == V_NULL)
            return lfail(l, v->line, v->col, "Expected value of type \"%s\", found null.",
                         hr_gql_tref_str(t, tb, sizeof tb));
        return lit(l, t->of, loc, v, out);
    }
    if (v->kind == V_NULL) {
        if (!l->check) *out = json_null();
        return 0;
    }
    if (t->kind == TY_LIST) {
        if (v->kind != V_LIST) {
            /* One value where a list is expected: a list of one. */
            json_t *item = NULL;
            int rc = lit(l, t->of, loc, v, l->check ? NULL : &item);
            if (rc < 0) return rc;
            if (!l->check) {
                *out = json_array();
                json_array_append_new(*out, rc == 1 ? json_null() : item);
            }
            return 0;
        }
        json_t *a = l->check ? NULL : json_array();
        int bad = 0;
        for (const gql_value_t *i = v->items; i; i = i->next) {
            json_t *item = NULL;
            int rc = lit(l, t->of, t->of, i, l->check ? NULL : &item);
            if (rc < 0) {
                bad = 1;
                if (l->check) continue;
                json_decref(a);
                return rc;
            }
            if (rc == 1) {
                /* A list item's variable that was not given is null. */
                if (t->of->kind == TY_NONNULL) {
                    json_decref(a);
                    return lfail(l, i->line, i->col,
                                 "Expected non-nullable type \"%s\" not to be null.",
                                 hr_gql_tref_str(t->of, tb, sizeof tb));
                }
                item = json_null();
            }
            if (a) json_array_append_new(a, item);
        }
        if (!l->check) *out = a;
        return bad ? -1 : 0;
    }
    const gql_stype_t *ty = t->type;
    if (v->kind == V_LIST) loc = t; /* graphql-js names a list's item type, without its "!" */
    if (ty->kind == K_INPUT) {
        if (v->kind != V_OBJECT) {
            char *fmt = hr_xasprintf("Expected value of type \"%s\", found %%s.",
                                     hr_gql_tref_str(loc, tb, sizeof tb));
            lfail_printed(l, v, fmt);
            free(fmt);
            return -1;
        }
        int bad = 0;
        /* Required fields first, then @oneOf, then each field (graphql-js's order). */
        for (size_t i = 0; i < ty->ninputs && l->check; i++) {
            const gql_sinput_t *fd = &ty->inputs[i];
            const gql_value_t *f = v->items;
            while (f && strcmp(f->name, fd->name) != 0)
                f = f->next;
            if (!f && fd->type->kind == TY_NONNULL && !fd->def)
                bad = lfail(l, v->line, v->col,
                            "Field \"%s.%s\" of required type \"%s\" was not provided.", ty->name,
                            fd->name, hr_gql_tref_str(fd->type, tb, sizeof tb));
        }
        if (ty->oneof) {
            size_t n = 0; /* distinct names: graphql-js keys the fields by name */
            for (const gql_value_t *f = v->items; f; f = f->next) {
                const gql_value_t *g = v->items;
                while (g != f && strcmp(g->name, f->name) != 0)
                    g = g->next;
                n += g == f;
            }
            if (n != 1)
                bad = lfail(l, v->line, v->col,
                            "OneOf Input Object \"%s\" must specify exactly one key.", ty->name);
            else if (v->items->kind == V_NULL)
                bad = lfail(l, v->line, v->col, "Field \"%s.%s\" must be non-null.", ty->name,
                            v->items->name);
            if (bad && !l->check) return -1;
        }
        /* Each field in the order written: unknown, or its value checked. */
        for (const gql_value_t *f = v->items; f; f = f->next) {
            const gql_sinput_t *fd = hr_gql_input_find(ty->inputs, ty->ninputs, f->name);
            if (!fd) {
                char sug[300] = "";
                if (l->nerr < 100) suggest_inputs(ty, f->name, sug, sizeof sug);
                bad =
                    lfail(l, f->name_line, f->name_col,
                          "Field \"%s\" is not defined by type \"%s\".%s", f->name, ty->name, sug);
                if (!l->check) return -1;
            } else if (l->check && lit(l, fd->type, fd->type, f, NULL) < 0) {
                bad = 1;
            }
        }
        if (l->check) return bad ? -1 : 0;
        json_t *o = json_object();
        for (size_t i = 0; i < ty->ninputs; i++) {
            const gql_sinput_t *fd = &ty->inputs[i];
            const gql_value_t *f = v->items;
            while (f && strcmp(f->name, fd->name) != 0)
                f = f->next;
            json_t *x = NULL;
            int rc = f ? lit(l, fd->type, fd->type, f, &x) : 1;
            if (rc < 0) {
                json_decref(o);
                return rc;
            }
            if (rc == 1) {
                if (fd->def) {
                    x = json_incref(fd->def);
                } else if (fd->type->kind == TY_NONNULL) {
                    json_decref(o);
                    if (f) /* a variable that was not given */
                        return lfail(l, f->line, f->col,
                                     "Expected non-nullable type \"%s\" not to be null.",
                                     hr_gql_tref_str(fd->type, tb, sizeof tb));
                    return lfail(l, v->line, v->col,
                                 "Field \"%s.%s\" of required type \"%s\" was not provided.",
                                 ty->name, fd->name, hr_gql_tref_str(fd->type, tb, sizeof tb));
                } else {
                    continue;
                }
            }
            json_object_set_new(o, fd->name, x);
        }
        if (ty->oneof) {
            /* Variables inside may have left no key, or a null one. */
            json_t *only =
                json_object_size(o) == 1 ? json_object_iter_value(json_object_iter(o)) : NULL;
            if (!only || json_is_null(only)) {
                json_decref(o);
                return lfail(l, v->line, v->col,
                             "Within OneOf Input Object \"%s\", exactly one field must be "
                             "specified, and the value for that field must be non-null.",
                             ty->name);
            }
        }
        *out = o;
        return 0;
    }
    if (ty->kind == K_ENUM) {
        if (v->kind != V_ENUM) {
            char sug[300] = "";
            hr_buf_t pv;
            hr_buf_init(&pv, 0);
            print_value(&pv, v);
            if (!pv.data) hr_buf_puts(&pv, "");
            if (l->nerr < 100) suggest_enum(ty, pv.data, sug, sizeof sug); /* quotes too */
            lfail(l, v->line, v->col, "Enum \"%s\" cannot represent non-enum value: %s.%s",
                  ty->name, pv.data, sug);
            hr_buf_free(&pv);
            return -1;
        }
        if (!hr_gql_enum_find(ty, v->s)) {
            char sug[300] = "";
            if (l->nerr < 100) suggest_enum(ty, v->s, sug, sizeof sug);
            return lfail(l, v->line, v->col, "Value \"%s\" does not exist in \"%s\" enum.%s", v->s,
                         ty->name, sug);
        }
        if (!l->check) *out = json_string(v->s);
        return 0;
    }
    switch (ty->scalar) {
    case SC_INT: {
        if (v->kind != V_INT)
            return lfail_printed(l, v, "Int cannot represent non-integer value: %s");
        errno = 0;
        long long x = strtoll(v->s, NULL, 10);
        if (errno == ERANGE || x > INT32_MAX || x < INT32_MIN)
            return lfail(l, v->line, v->col,
                         "Int cannot represent non 32-bit signed integer value: %s", v->s);
        if (!l->check) *out = json_integer(x);
        return 0;
    }
    case SC_FLOAT:
        /* graphql-js takes 1e400 as Infinity; JSON has no such number, so herald refuses it. */
        if ((v->kind != V_INT && v->kind != V_FLOAT) || !isfinite(strtod(v->s, NULL)))
            return lfail_printed(l, v, "Float cannot represent non numeric value: %s");
        if (!l->check) {
            double d = strtod(v->s, NULL);
            /* Keep integers integers, as JavaScript would print them. */
            if (d == floor(d) && fabs(d) < 9007199254740992.0)
                *out = json_integer((json_int_t)d);
            else
                *out = json_real(d);
        }
        return 0;
    case SC_STRING:
        if (v->kind != V_STRING)
            return lfail_printed(l, v, "String cannot represent a non string value: %s");
        if (!l->check) *out = json_stringn(v->s, v->len);
        return 0;
    case SC_BOOLEAN:
        if (v->kind != V_BOOL)
            return lfail_printed(l, v, "Boolean cannot represent a non boolean value: %s");
        if (!l->check) *out = json_boolean(v->b);
        return 0;
    case SC_ID:
        if (v->kind != V_STRING && v->kind != V_INT)
            return lfail_printed(l, v,
                                 "ID cannot represent a non-string and non-integer value: %s");
        if (!l->check) *out = json_stringn(v->s, v->kind == V_STRING ? v->len : strlen(v->s));
        return 0;
    case SC_CUSTOM:
        if (!l->check) *out = untyped(v, l->vars);
        return 0;
    }
    return 0;
}

int hr_gql_coerce_literal(const gql_tref_t *t, const gql_value_t *v, json_t *vars, json_t **out,
                          char *msg, size_t msgsz)
{
    lit_t l = {.vars = vars, .msg = msg, .msgsz = msgsz};
    int rc = lit(&l, t, t, v, out);
    if (rc == 1) *out = NULL; /* a variable not given: the caller decides */
    return rc < 0 ? -1 : 0;
}

int hr_gql_literal_check(const gql_tref_t *t, const gql_value_t *v, hr_gql_lit_report_fn report,
                         void *ud)
{
    lit_t l = {.check = 1, .report = report, .ud = ud};
    lit(&l, t, t, v, NULL);
    return l.nerr;
}

/* ---- variables ---- */

/* graphql-js's coerceInputValue: every error of the value is reported (list items, fields),
 * each as 'Variable "$v" got invalid value X at "v.path"; reason'. */
typedef struct jc {
    json_t *errors; /* where errors go */
    const char *var;
    int line, col; /* the variable's definition */
    int nerr;
    int depth;     /* of the value being coerced */
    hr_buf_t path; /* e.g. ".a[0]" */
} jc_t;

static int jfail(jc_t *c, json_t *bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int jfail(jc_t *c, json_t *bad, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *inner = hr_xvasprintf(fmt, ap);
    va_end(ap);
    char *iv = hr_gql_inspect_str(bad);
    if (c->path.len)
        hr_gql_error_add(c->errors, c->line, c->col, GQL_BAD_INPUT,
                         "Variable \"$%s\" got invalid value %s at \"%s%s\"; %s", c->var, iv,
                         c->var, c->path.data, inner);
    else
        hr_gql_error_add(c->errors, c->line, c->col, GQL_BAD_INPUT,
                         "Variable \"$%s\" got invalid value %s; %s", c->var, iv, inner);
    free(iv);
    free(inner);
    c->nerr++;
    return -1;
}

/* jfail with the inspected value at the end of the reason ("Int cannot represent …: 1.5"). */
static int jfail_value(jc_t *c, json_t *bad, const char *reason)
{
    char *iv = hr_gql_inspect_str(bad);
    jfail(c, bad, "%s%s", reason, iv);
    free(iv);
    return -1;
}

static void path_push(jc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_push(jc_t *c, const char *fmt, ...)
{
    char seg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(seg, sizeof seg, fmt, ap);
    va_end(ap);
    hr_buf_puts(&c->path, seg);
}

static void path_pop(jc_t *c, size_t mark)
{
    c->path.len = mark;
    if (c->path.data) c->path.data[mark] = '\0';
}

/* Returns 0 and *out (new), or -1 after reporting (*out NULL). A recursive input type can
 * take a value nested as deep as JSON allows: past GQL_MAX_NESTING levels it is refused. */
static int coerce_json(jc_t *c, const gql_tref_t *t, json_t *in, json_t **out)
{
    char tb[256];
    *out = NULL;
    if (c->depth > GQL_MAX_NESTING)
        return jfail(c, in, "Value nests deeper than %d levels.", GQL_MAX_NESTING);
    if (t->kind == TY_NONNULL) {
        if (json_is_null(in))
            return jfail(c, in, "Expected non-nullable type \"%s\" not to be null.",
                         hr_gql_tref_str(t, tb, sizeof tb));
        return coerce_json(c, t->of, in, out);
    }
    if (json_is_null(in)) {
        *out = json_null();
        return 0;
    }
    if (t->kind == TY_LIST) {
        if (!json_is_array(in)) {
            json_t *item;
            if (coerce_json(c, t->of, in, &item)) return -1;
            *out = json_array();
            json_array_append_new(*out, item);
            return 0;
        }
        json_t *a = json_array();
        int bad = 0;
        size_t i;
        json_t *m;
        json_array_foreach(in, i, m)
        {
            size_t mark = c->path.len;
            path_push(c, "[%zu]", i);
            json_t *item;
            c->depth++;
            if (coerce_json(c, t->of, m, &item))
                bad = 1;
            else
                json_array_append_new(a, item);
            c->depth--;
            path_pop(c, mark);
        }
        if (bad) {
            json_decref(a);
            return -1;
        }
        *out = a;
        return 0;
    }
    const gql_stype_t *ty = t->type;
    if (ty->kind == K_INPUT) {
        if (!json_is_object(in))
            return jfail(c, in, "Expected type \"%s\" to be an object.", ty->name);
        json_t *o = json_object();
        int bad = 0;
        for (size_t i = 0; i < ty->ninputs; i++) {
            const gql_sinput_t *fd = &ty->inputs[i];
            json_t *m = json_object_get(in, fd->name);
            if (!m) {
                if (fd->def)
                    json_object_set(o, fd->name, fd->def);
                else if (fd->type->kind == TY_NONNULL)
                    bad = jfail(c, in, "Field \"%s\" of required type \"%s\" was not provided.",
                                fd->name, hr_gql_tref_str(fd->type, tb, sizeof tb));
                continue;
            }
            size_t mark = c->path.len;
            path_push(c, ".%s", fd->name);
            json_t *x;
            c->depth++;
            if (coerce_json(c, fd->type, m, &x))
                bad = 1;
            else
                json_object_set_new(o, fd->name, x);
            c->depth--;
            path_pop(c, mark);
        }
        const char *k;
        json_t *m;
        json_object_foreach(in, k, m)
        {
            if (!hr_gql_input_find(ty->inputs, ty->ninputs, k)) {
                char sug[300];
                suggest_inputs(ty, k, sug, sizeof sug);
                bad =
                    jfail(c, in, "Field \"%s\" is not defined by type \"%s\".%s", k, ty->name, sug);
            }
        }
        if (ty->oneof) {
            /* graphql-js counts the defined fields given (also those that failed), then looks
             * at the first of them whatever the count. */
            size_t n = 0;
            const char *first = NULL;
            for (size_t i = 0; i < ty->ninputs; i++)
                if (json_object_get(in, ty->inputs[i].name) && n++ == 0) first = ty->inputs[i].name;
            if (n != 1)
                bad = jfail(c, in, "Exactly one key must be specified for OneOf type \"%s\".",
                            ty->name);
            if (first && json_is_null(json_object_get(in, first))) {
                size_t mark = c->path.len;
                path_push(c, ".%s", first);
                bad = jfail(c, json_null(), "Field \"%s\" must be non-null.", first);
                path_pop(c, mark);
            }
        }
        if (bad) {
            json_decref(o);
            return -1;
        }
        *out = o;
        return 0;
    }
    if (ty->kind == K_ENUM) {
        if (!json_is_string(in)) {
            char sug[300];
            char *iv = hr_gql_inspect_str(in);
            suggest_enum(ty, iv, sug, sizeof sug); /* graphql-js suggests from inspect() */
            jfail(c, in, "Enum \"%s\" cannot represent non-string value: %s.%s", ty->name, iv, sug);
            free(iv);
            return -1;
        }
        if (!hr_gql_enum_find(ty, json_string_value(in))) {
            char sug[300];
            suggest_enum(ty, json_string_value(in), sug, sizeof sug);
            return jfail(c, in, "Value \"%s\" does not exist in \"%s\" enum.%s",
                         json_string_value(in), ty->name, sug);
        }
        *out = json_incref(in);
        return 0;
    }
    switch (ty->scalar) {
    case SC_INT:
        if (json_is_integer(in)) {
            json_int_t x = json_integer_value(in);
            if (x > INT32_MAX || x < INT32_MIN)
                return jfail_value(c, in, "Int cannot represent non 32-bit signed integer value: ");
            *out = json_incref(in);
            return 0;
        }
        if (json_is_real(in) && json_real_value(in) == floor(json_real_value(in))) {
            double d = json_real_value(in);
            if (d > INT32_MAX || d < INT32_MIN)
                return jfail_value(c, in, "Int cannot represent non 32-bit signed integer value: ");
            *out = json_integer((json_int_t)d);
            return 0;
        }
        return jfail_value(c, in, "Int cannot represent non-integer value: ");
    case SC_FLOAT:
        if (!json_is_number(in))
            return jfail_value(c, in, "Float cannot represent non numeric value: ");
        *out = json_incref(in);
        return 0;
    case SC_STRING:
        if (!json_is_string(in))
            return jfail_value(c, in, "String cannot represent a non string value: ");
        *out = json_incref(in);
        return 0;
    case SC_BOOLEAN:
        if (!json_is_boolean(in))
            return jfail_value(c, in, "Boolean cannot represent a non boolean value: ");
        *out = json_incref(in);
        return 0;
    case SC_ID:
        if (json_is_string(in)) {
            *out = json_incref(in);
            return 0;
        }
        if (json_is_integer(in)) {
            *out = json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(in));
            return 0;
        }
        if (json_is_real(in) && json_real_value(in) == floor(json_real_value(in))) {
            char num[64]; /* JavaScript's Number.isInteger: 1e300 is an integer */
            js_number(json_real_value(in), num, sizeof num);
            *out = json_string(num);
            return 0;
        }
        return jfail_value(c, in, "ID cannot represent value: ");
    case SC_CUSTOM:
        *out = json_incref(in);
        return 0;
    }
    return 0;
}

int hr_gql_coerce_json(const gql_tref_t *t, json_t *in, json_t **out, const char *var, int line,
                       int col, json_t *errors)
{
    jc_t c = {errors, var, line, col, 0, 0, HR_BUF_INIT};
    hr_buf_init(&c.path, 0);
    coerce_json(&c, t, in, out);
    hr_buf_free(&c.path);
    return c.nerr;
}

/* ---- results ---- */

int hr_gql_serialize_scalar(const gql_stype_t *t, json_t *v, json_t **out, char **msg)
{
    char num[64];
    char *iv;
    *out = NULL;
    switch (t->scalar) {
    case SC_CUSTOM:
        *out = json_incref(v);
        return 0;
    case SC_INT: {
        double d;
        if (json_is_boolean(v)) {
            *out = json_integer(json_is_true(v));
            return 0;
        }
        if (json_is_integer(v)) {
            json_int_t x = json_integer_value(v);
            if (x <= INT32_MAX && x >= INT32_MIN) {
                *out = json_incref(v);
                return 0;
            }
            goto int_range;
        }
        if (json_is_real(v))
            d = json_real_value(v);
        else if (json_is_string(v) && json_string_length(v) > 0) {
            char *end;
            d = strtod(json_string_value(v), &end);
            if (*end) goto int_bad;
        } else
            goto int_bad;
        if (d != floor(d)) goto int_bad;
        if (d > INT32_MAX || d < INT32_MIN) goto int_range;
        *out = json_integer((json_int_t)d);
        return 0;
    int_bad:
        iv = hr_gql_inspect_str(v);
        *msg = hr_xasprintf("Int cannot represent non-integer value: %s", iv);
        free(iv);
        return -1;
    int_range:
        iv = hr_gql_inspect_str(v);
        *msg = hr_xasprintf("Int cannot represent non 32-bit signed integer value: %s", iv);
        free(iv);
        return -1;
    }
    case SC_FLOAT:
        if (json_is_boolean(v)) {
            *out = json_integer(json_is_true(v));
            return 0;
        }
        if (json_is_number(v)) {
            *out = json_incref(v);
            return 0;
        }
        if (json_is_string(v) && json_string_length(v) > 0) {
            char *end;
            double d = strtod(json_string_value(v), &end);
            if (!*end && isfinite(d)) {
                *out = json_real(d);
                return 0;
            }
        }
        iv = hr_gql_inspect_str(v);
        *msg = hr_xasprintf("Float cannot represent non numeric value: %s", iv);
        free(iv);
        return -1;
    case SC_STRING:
        if (json_is_string(v)) {
            *out = json_incref(v);
            return 0;
        }
        if (json_is_boolean(v)) {
            *out = json_string(json_is_true(v) ? "true" : "false");
            return 0;
        }
        if (json_is_integer(v)) {
            *out = json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            return 0;
        }
        if (json_is_real(v)) {
            js_number(json_real_value(v), num, sizeof num);
            *out = json_string(num);
            return 0;
        }
        iv = hr_gql_inspect_str(v);
        *msg = hr_xasprintf("String cannot represent value: %s", iv);
        free(iv);
        return -1;
    case SC_BOOLEAN:
        if (json_is_boolean(v)) {
            *out = json_incref(v);
            return 0;
        }
        if (json_is_number(v)) {
            *out = json_boolean(json_number_value(v) != 0);
            return 0;
        }
        iv = hr_gql_inspect_str(v);
        *msg = hr_xasprintf("Boolean cannot represent a non boolean value: %s", iv);
        free(iv);
        return -1;
    case SC_ID:
        if (json_is_string(v)) {
            *out = json_incref(v);
            return 0;
        }
        if (json_is_integer(v)) {
            *out = json_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            return 0;
        }
        if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
            js_number(json_real_value(v), num, sizeof num);
            *out = json_string(num);
            return 0;
        }
        iv = hr_gql_inspect_str(v);
        *msg = hr_xasprintf("ID cannot represent value: %s", iv);
        free(iv);
        return -1;
    }
    return -1;
}
