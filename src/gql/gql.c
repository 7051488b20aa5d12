/* gql.c: hr_gql_prepare, the pipeline from request text to a prepared operation.
 *
 *   size cap -> parse (token and nesting caps) -> validate -> pick the operation ->
 *   depth and selection caps (fragments expanded) -> coerce variables -> the first root
 *   field's arguments (hr_gql_op_root)
 *
 * Each step that fails fills *errors and stops the pipeline, so a request gets the errors of
 * one class only (syntax, validation, limits or variables), as graphql-js servers answer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/text.h"
#include "gql/gql_int.h"

#define DEFAULT_MAX_DOCUMENT (64 * 1024)
#define DEFAULT_MAX_TOKENS 10000
#define DEFAULT_MAX_DEPTH 12
#define DEFAULT_MAX_SELECTIONS 2000
/* Inside __schema and __type fields may nest this much deeper than max_depth: the standard
 * introspection query (graphql-js getIntrospectionQuery) nests 14 fields deep. */
#define INTROSPECTION_EXTRA_DEPTH 8
#define MAX_VARIABLE_ERRORS 50

void hr_gql_error_add(json_t *errors, int line, int col, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = hr_xvasprintf(fmt, ap);
    va_end(ap);
    json_t *e = json_object();
    json_t *m = json_string(msg);
    if (!m) {
        /* A message quoting bytes of the document that are not UTF-8. */
        char *clean = hr_utf8_clean(msg);
        m = json_string(clean);
        free(clean);
    }
    json_object_set_new(e, "message", m);
    free(msg);
    if (line > 0)
        json_object_set_new(e, "locations", json_pack("[{s:i,s:i}]", "line", line, "column", col));
    if (code) json_object_set_new(e, "extensions", json_pack("{s:s}", "code", code));
    json_array_append_new(errors, e);
}

/* Selections visited with fragments expanded (spreads and inline fragments included): bounds
 * the walk below when fragments fan out and max_selections is large. */
#define MAX_EXPANSION 1000000

typedef struct caps {
    size_t max_selections, nsel;
    int max_depth;
    long work;
    json_t *errors;
} caps_t;

/* Counts the fields of sels (fragments expanded) at depth; -1 when a cap is passed. */
static int count(caps_t *c, const gql_sel_t *sels, int depth, int introspection)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (++c->work > MAX_EXPANSION) {
            hr_gql_error_add(c->errors, sel->line, sel->col, GQL_LIMIT,
                             "The operation expands to more than %d selections.", MAX_EXPANSION);
            return -1;
        }
        if (sel->kind == SEL_FIELD) {
            if (++c->nsel > c->max_selections) {
                hr_gql_error_add(c->errors, sel->line, sel->col, GQL_LIMIT,
                                 "The operation selects more than %zu fields.", c->max_selections);
                return -1;
            }
            int intro = introspection || (sel->def && sel->def->meta);
            int cap = c->max_depth + (intro ? INTROSPECTION_EXTRA_DEPTH : 0);
            if (depth > cap) {
                hr_gql_error_add(c->errors, sel->line, sel->col, GQL_LIMIT,
                                 "The operation nests deeper than %d levels.", cap);
                return -1;
            }
            if (sel->sels && count(c, sel->sels, depth + 1, intro)) return -1;
        } else {
            const gql_sel_t *sub = sel->kind == SEL_INLINE ? sel->sels : sel->frag->sels;
            if (count(c, sub, depth, introspection)) return -1;
        }
    }
    return 0;
}

static int coerce_variables(hr_gql_op_t *op, json_t *given, json_t *errors)
{
    int nerr = 0;
    char msg[1024], tb[256];
    op->vars = json_object();
    if (given && !json_is_object(given)) {
        hr_gql_error_add(errors, 0, 0, GQL_BAD_INPUT,
                         "Variables must be provided as an Object where keys are variable names "
                         "and values are variable values.");
        return 1;
    }
    for (const gql_vardef_t *d = op->op->vars; d && nerr <= MAX_VARIABLE_ERRORS; d = d->next) {
        gql_tref_t *t = hr_gql_tref_resolve(op->schema, &op->arena, d->type);
        json_t *v = given ? json_object_get(given, d->name) : NULL;
        json_t *out = NULL;
        if (!v) {
            if (d->defval) {
                if (hr_gql_coerce_literal(t, d->defval, NULL, &out, msg, sizeof msg) == 0 && out)
                    json_object_set_new(op->vars, d->name, out);
            } else if (t->kind == TY_NONNULL) {
                hr_gql_error_add(errors, d->line, d->col, GQL_BAD_INPUT,
                                 "Variable \"$%s\" of required type \"%s\" was not provided.",
                                 d->name, hr_gql_tref_str(t, tb, sizeof tb));
                nerr++;
            }
            continue;
        }
        if (json_is_null(v) && t->kind == TY_NONNULL) {
            hr_gql_error_add(errors, d->line, d->col, GQL_BAD_INPUT,
                             "Variable \"$%s\" of non-null type \"%s\" must not be null.", d->name,
                             hr_gql_tref_str(t, tb, sizeof tb));
            nerr++;
            continue;
        }
        int n = hr_gql_coerce_json(t, v, &out, d->name, d->line, d->col, errors);
        if (n) {
            nerr += n;
            continue;
        }
        json_object_set_new(op->vars, d->name, out);
    }
    if (nerr > MAX_VARIABLE_ERRORS) {
        /* graphql-js keeps 50 errors and gives up at the 51st with this one. */
        while (json_array_size(errors) > MAX_VARIABLE_ERRORS)
            json_array_remove(errors, MAX_VARIABLE_ERRORS);
        hr_gql_error_add(errors, 0, 0, GQL_BAD_INPUT,
                         "Too many errors processing variables, error limit reached. Execution "
                         "aborted.");
    }
    return nerr;
}

/* A @skip or @include whose "if" is a variable given as null (graphql-js refuses it when
 * executing: "Boolean!" must not be null); each fragment is looked at once. */
static const gql_arg_t *null_condition(const gql_sel_t *sels, json_t *vars, unsigned stamp,
                                       int depth)
{
    for (const gql_sel_t *sel = sels; sel && depth <= GQL_MAX_NESTING; sel = sel->next) {
        for (const gql_directive_t *d = sel->dirs; d; d = d->next) {
            if (strcmp(d->name, "skip") != 0 && strcmp(d->name, "include") != 0) continue;
            for (const gql_arg_t *a = d->args; a; a = a->next)
                if (strcmp(a->name, "if") == 0 && a->value->kind == V_VAR &&
                    json_is_null(json_object_get(vars, a->value->s)))
                    return a;
        }
        const gql_sel_t *sub = sel->sels;
        if (sel->kind == SEL_SPREAD) {
            if (!sel->frag || sel->frag->visit == stamp) continue;
            sel->frag->visit = stamp;
            sub = sel->frag->sels;
        }
        const gql_arg_t *a = null_condition(sub, vars, stamp, depth + 1);
        if (a) return a;
    }
    return NULL;
}

/* The first root field that @skip/@include keep; *budget bounds the search (fragments spread
 * many times over, every field skipped). */
static const gql_sel_t *first_field(const gql_sel_t *sels, json_t *vars, int depth, long *budget)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (--*budget < 0) return NULL;
        if (!hr_gql_included(sel->dirs, vars)) continue;
        if (sel->kind == SEL_FIELD) return sel;
        if (depth > GQL_MAX_NESTING) continue;
        const gql_sel_t *sub = sel->kind == SEL_INLINE ? sel->sels : sel->frag->sels;
        const gql_sel_t *f = first_field(sub, vars, depth + 1, budget);
        if (f) return f;
    }
    return NULL;
}

/* A root field that @skip/@include keep whose response key differs from key (NULL: none). */
static const gql_sel_t *other_root_field(const gql_sel_t *sels, json_t *vars, const char *key,
                                         int depth, long *budget)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (--*budget < 0) return NULL;
        if (!hr_gql_included(sel->dirs, vars)) continue;
        if (sel->kind == SEL_FIELD) {
            if (strcmp(sel->alias ? sel->alias : sel->name, key) != 0) return sel;
            continue;
        }
        if (depth > GQL_MAX_NESTING) continue;
        const gql_sel_t *sub = sel->kind == SEL_INLINE ? sel->sels : sel->frag->sels;
        const gql_sel_t *f = other_root_field(sub, vars, key, depth + 1, budget);
        if (f) return f;
    }
    return NULL;
}

int hr_gql_prepare(const hr_gql_schema_t *schema, const hr_gql_limits_t *limits, const char *text,
                   size_t len, json_t *variables, const char *operation_name, hr_gql_op_t **out,
                   json_t **errors)
{
    hr_gql_limits_t lim = {0};
    if (limits) lim = *limits;
    if (!lim.max_document) lim.max_document = DEFAULT_MAX_DOCUMENT;
    if (!lim.max_tokens) lim.max_tokens = DEFAULT_MAX_TOKENS;
    if (lim.max_depth <= 0) lim.max_depth = DEFAULT_MAX_DEPTH;
    if (!lim.max_selections) lim.max_selections = DEFAULT_MAX_SELECTIONS;
    hr_gql_op_t *op = hr_xcalloc(1, sizeof *op);
    op->schema = schema;
    json_t *errs = json_array();
    int rc = HR_EINVAL;
    *out = NULL;
    *errors = NULL;
    if (!text) text = "";
    if (len > lim.max_document) {
        hr_gql_error_add(errs, 0, 0, GQL_LIMIT, "The document is larger than %zu bytes.",
                         lim.max_document);
        rc = HR_E2BIG;
        goto fail;
    }
    rc = hr_gql_parse(&op->arena, text, len, 0, lim.max_tokens, &op->doc, errs);
    if (rc) goto fail;
    rc = HR_EINVAL;
    if (hr_gql_validate(schema, &op->arena, &op->doc, errs)) goto fail;
    if (operation_name && *operation_name) {
        for (gql_operation_t *o = op->doc.ops; o && !op->op; o = o->next)
            if (o->name && strcmp(o->name, operation_name) == 0) op->op = o;
        if (!op->op) {
            hr_gql_error_add(errs, 0, 0, GQL_BAD_INPUT, "Unknown operation named \"%s\".",
                             operation_name);
            goto fail;
        }
    } else {
        if (op->doc.ops && op->doc.ops->next) {
            hr_gql_error_add(errs, 0, 0, GQL_BAD_INPUT,
                             "Must provide operation name if query contains multiple "
                             "operations.");
            goto fail;
        }
        op->op = op->doc.ops;
        if (!op->op) {
            hr_gql_error_add(errs, 0, 0, GQL_BAD_INPUT, "Must provide an operation.");
            goto fail;
        }
    }
    {
        caps_t c = {lim.max_selections, 0, lim.max_depth, 0, errs};
        if (count(&c, op->op->sels, 1, 0)) {
            rc = HR_E2BIG;
            goto fail;
        }
    }
    if (coerce_variables(op, variables, errs)) goto fail;
    {
        const gql_arg_t *a = null_condition(op->op->sels, op->vars, ~0u, 0);
        if (a) {
            hr_gql_error_add(errs, a->value->line, a->value->col, GQL_BAD_INPUT,
                             "Argument \"if\" of non-null type \"Boolean!\" must not be null.");
            goto fail;
        }
    }
    {
        long budget = 100000;
        const gql_sel_t *f = first_field(op->op->sels, op->vars, 0, &budget);
        /* Validation judged the subscription with its variables unknown; with their values,
         * @skip/@include may leave more than one root field. */
        const gql_sel_t *other = f && op->op->kind == HR_GQL_SUBSCRIPTION
                                     ? other_root_field(op->op->sels, op->vars,
                                                        f->alias ? f->alias : f->name, 0, &budget)
                                     : NULL;
        if (other) {
            if (op->op->name)
                hr_gql_error_add(errs, other->line, other->col, GQL_VALIDATION,
                                 "Subscription \"%s\" must select only one top level field.",
                                 op->op->name);
            else
                hr_gql_error_add(errs, other->line, other->col, GQL_VALIDATION,
                                 "Anonymous Subscription must select only one top level field.");
            goto fail;
        }
        if (f) {
            char *why;
            const gql_value_t *at;
            op->root_field = f->def->name;
            op->root_alias = f->alias ? f->alias : f->name;
            op->root_args =
                hr_gql_coerce_args(f->def->args, f->def->nargs, f->args, op->vars, &why, &at);
            if (!op->root_args && op->op->kind == HR_GQL_SUBSCRIPTION) {
                hr_gql_error_add(errs, at ? at->line : f->line, at ? at->col : f->col,
                                 GQL_BAD_INPUT, "%s", why);
                free(why);
                goto fail;
            }
            free(why);
        } else if (op->op->kind == HR_GQL_SUBSCRIPTION) {
            /* Nothing to subscribe to: @skip/@include left no root field. */
            hr_gql_error_add(errs, op->op->line, op->op->col, GQL_BAD_INPUT,
                             "The subscription selects no root field (@skip or @include left "
                             "none).");
            goto fail;
        }
    }
    json_decref(errs);
    *out = op;
    return 0;
fail:
    hr_gql_op_free(op);
    *errors = errs;
    return rc;
}

void hr_gql_op_free(hr_gql_op_t *op)
{
    if (!op) return;
    json_decref(op->vars);
    json_decref(op->root_args);
    hr_gql_arena_free(&op->arena);
    free(op);
}

hr_gql_kind_t hr_gql_op_kind(const hr_gql_op_t *op)
{
    return op->op->kind;
}

const char *hr_gql_op_name(const hr_gql_op_t *op)
{
    return op->op->name;
}

void hr_gql_op_root(const hr_gql_op_t *op, hr_gql_root_t *root)
{
    root->field = op->root_field;
    root->alias = op->root_alias;
    root->args = op->root_args;
}
