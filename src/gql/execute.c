/* execute.c: running a validated operation (the specification's ExecuteRequest).
 *
 *   execute_selection   collects the fields of a selection set (fragments and inline fragments
 *                       expanded, @skip/@include applied, same response keys merged) and
 *                       executes them in document order
 *   execute_field       coerces the arguments, calls the resolver (or takes the parent's member
 *                       of the same name, or asks introspect.c), then completes the value
 *   complete            checks the value against the field's type: lists, leaf serialisation,
 *                       enum values, objects (recursing), and non-null
 *
 * Errors are collected with their path. A failed position reports -1 upwards until a nullable
 * position turns it into null (the specification's null propagation); a failed non-null root
 * field makes "data" null. Everything runs synchronously, so a mutation's root fields run one
 * after the other in document order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "gql/gql_int.h"

typedef struct exec {
    const hr_gql_op_t *op;
    const hr_gql_schema_t *s;
    void *ctx;
    json_t *errors;
    json_t *path; /* the current response path */
    json_t *root; /* root_given: the root field's value */
    int root_given;
} exec_t;

/* A response key and the fields that share it. */
typedef struct group {
    const char *key;
    const gql_sel_t **fields;
    size_t n, cap;
} group_t;

typedef struct groups {
    group_t *g;
    size_t n, cap;
    const gql_fragment_t **seen; /* fragments already expanded in this selection set */
    size_t nseen, capseen;
} groups_t;

static void error_at(exec_t *ex, int line, int col, const char *code, const char *msg)
{
    hr_gql_error_add(ex->errors, line, col, code, "%s", msg);
    json_t *e = json_array_get(ex->errors, json_array_size(ex->errors) - 1);
    json_object_set_new(e, "path", json_deep_copy(ex->path));
}

static void field_error(exec_t *ex, const gql_sel_t *sel, const char *code, const char *msg)
{
    hr_gql_error_add(ex->errors, sel->line, sel->col, code, "%s", msg);
    json_t *e = json_array_get(ex->errors, json_array_size(ex->errors) - 1);
    json_object_set_new(e, "path", json_deep_copy(ex->path));
}

int hr_gql_included(const gql_directive_t *dirs, json_t *vars)
{
    for (const gql_directive_t *d = dirs; d; d = d->next) {
        int skip = strcmp(d->name, "skip") == 0;
        if (!skip && strcmp(d->name, "include") != 0) continue;
        const gql_arg_t *a = d->args;
        while (a && strcmp(a->name, "if") != 0)
            a = a->next;
        if (!a) continue;
        int val;
        if (a->value->kind == V_VAR)
            val = json_is_true(json_object_get(vars, a->value->s));
        else
            val = a->value->kind == V_BOOL && a->value->b;
        if (skip ? val : !val) return 0;
    }
    return 1;
}

json_t *hr_gql_coerce_args(const gql_sinput_t *defs, size_t ndefs, const gql_arg_t *args,
                           json_t *vars, char **msg, const gql_value_t **at)
{
    json_t *out = json_object();
    char tb[256];
    *at = NULL;
    *msg = NULL;
    for (size_t i = 0; i < ndefs; i++) {
        const gql_sinput_t *d = &defs[i];
        const gql_arg_t *a = args;
        while (a && strcmp(a->name, d->name) != 0)
            a = a->next;
        int nonnull = d->type->kind == TY_NONNULL;
        if (a) *at = a->value;
        if (a && a->value->kind == V_VAR && !json_object_get(vars, a->value->s)) {
            if (!d->def && nonnull) {
                *msg = hr_xasprintf(
                    "Argument \"%s\" of required type \"%s\" was provided the variable "
                    "\"$%s\" which was not provided a runtime value.",
                    d->name, hr_gql_tref_str(d->type, tb, sizeof tb), a->value->s);
                goto fail;
            }
            a = NULL; /* as if not given */
        }
        if (!a) {
            *at = NULL;
            if (d->def) {
                json_object_set(out, d->name, d->def);
            } else if (nonnull) {
                *msg = hr_xasprintf("Argument \"%s\" of required type \"%s\" was not provided.",
                                    d->name, hr_gql_tref_str(d->type, tb, sizeof tb));
                goto fail;
            }
            continue;
        }
        if (a->value->kind == V_VAR && nonnull &&
            json_is_null(json_object_get(vars, a->value->s))) {
            *msg = hr_xasprintf("Argument \"%s\" of non-null type \"%s\" must not be null.",
                                d->name, hr_gql_tref_str(d->type, tb, sizeof tb));
            goto fail;
        }
        json_t *v = NULL;
        char inner[512];
        if (hr_gql_coerce_literal(d->type, a->value, vars, &v, inner, sizeof inner)) {
            char *pv = hr_gql_print_value_str(a->value);
            *msg = hr_xasprintf("Argument \"%s\" has invalid value %s.", d->name, pv);
            free(pv);
            goto fail;
        }
        json_object_set_new(out, d->name, v ? v : json_null());
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* ---- field collection ---- */

static void add_field(groups_t *gs, const gql_sel_t *sel)
{
    const char *key = sel->alias ? sel->alias : sel->name;
    group_t *g = NULL;
    for (size_t i = 0; i < gs->n && !g; i++)
        if (strcmp(gs->g[i].key, key) == 0) g = &gs->g[i];
    if (!g) {
        if (gs->n == gs->cap) {
            gs->cap = gs->cap ? gs->cap * 2 : 8;
            gs->g = hr_xrealloc(gs->g, gs->cap * sizeof *gs->g);
        }
        g = &gs->g[gs->n++];
        memset(g, 0, sizeof *g);
        g->key = key;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 2;
        g->fields = hr_xrealloc(g->fields, g->cap * sizeof *g->fields);
    }
    g->fields[g->n++] = sel;
}

static void collect(exec_t *ex, const gql_sel_t *sels, groups_t *gs)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (!hr_gql_included(sel->dirs, ex->op->vars)) continue;
        if (sel->kind == SEL_FIELD) {
            add_field(gs, sel);
        } else if (sel->kind == SEL_INLINE) {
            collect(ex, sel->sels, gs);
        } else {
            const gql_fragment_t *f = sel->frag;
            int seen = 0;
            for (size_t i = 0; i < gs->nseen; i++)
                if (gs->seen[i] == f) seen = 1;
            if (seen || !f) continue;
            if (gs->nseen == gs->capseen) {
                gs->capseen = gs->capseen ? gs->capseen * 2 : 4;
                gs->seen = hr_xrealloc(gs->seen, gs->capseen * sizeof *gs->seen);
            }
            gs->seen[gs->nseen++] = f;
            collect(ex, f->sels, gs);
        }
    }
}

static void groups_free(groups_t *gs)
{
    for (size_t i = 0; i < gs->n; i++)
        free(gs->g[i].fields);
    free(gs->g);
    free(gs->seen);
}

/* ---- execution ---- */

static int execute_selection(exec_t *ex, const gql_stype_t *type, const gql_sel_t *const *sets,
                             size_t nsets, json_t *parent, json_t **out, int is_root);

static void path_pop(exec_t *ex)
{
    json_array_remove(ex->path, json_array_size(ex->path) - 1);
}

/* Completes value (borrowed) as type t; 0 with *out (new), or -1 after recording an error. */
static int complete(exec_t *ex, const gql_tref_t *t, const gql_stype_t *parent, const group_t *g,
                    json_t *value, json_t **out)
{
    const gql_sel_t *sel = g->fields[0];
    char msg[512];
    *out = NULL;
    if (t->kind == TY_NONNULL) {
        if (complete(ex, t->of, parent, g, value, out)) return -1;
        if (json_is_null(*out)) {
            json_decref(*out);
            *out = NULL;
            snprintf(msg, sizeof msg, "Cannot return null for non-nullable field %s.%s.",
                     parent->name, sel->def->name);
            field_error(ex, sel, GQL_INTERNAL, msg);
            return -1;
        }
        return 0;
    }
    if (!value || json_is_null(value)) {
        *out = json_null();
        return 0;
    }
    if (t->kind == TY_LIST) {
        if (!json_is_array(value)) {
            snprintf(msg, sizeof msg,
                     "Expected Iterable, but did not find one for field \"%s.%s\".", parent->name,
                     sel->def->name);
            field_error(ex, sel, GQL_INTERNAL, msg);
            return -1;
        }
        json_t *arr = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            json_t *c;
            json_array_append_new(ex->path, json_integer((json_int_t)i));
            int rc = complete(ex, t->of, parent, g, item, &c);
            path_pop(ex);
            if (rc) {
                if (t->of->kind == TY_NONNULL) {
                    json_decref(arr);
                    return -1;
                }
                c = json_null();
            }
            json_array_append_new(arr, c);
        }
        *out = arr;
        return 0;
    }
    const gql_stype_t *ty = t->type;
    if (ty->kind == K_SCALAR) {
        char *why = NULL;
        if (hr_gql_serialize_scalar(ty, value, out, &why)) {
            field_error(ex, sel, GQL_INTERNAL, why);
            free(why);
            return -1;
        }
        return 0;
    }
    if (ty->kind == K_ENUM) {
        if (!json_is_string(value) || !hr_gql_enum_find(ty, json_string_value(value))) {
            char *iv = hr_gql_inspect_str(value);
            char *why = hr_xasprintf("Enum \"%s\" cannot represent value: %s", ty->name, iv);
            field_error(ex, sel, GQL_INTERNAL, why);
            free(why);
            free(iv);
            return -1;
        }
        *out = json_incref(value);
        return 0;
    }
    /* An object: the sub-selections of every field of the group, merged. */
    const gql_sel_t **sets = hr_xmalloc(g->n * sizeof *sets);
    size_t nsets = 0;
    for (size_t i = 0; i < g->n; i++)
        if (g->fields[i]->sels) sets[nsets++] = g->fields[i]->sels;
    int rc = execute_selection(ex, ty, sets, nsets, value, out, 0);
    free(sets);
    return rc;
}

static int execute_field(exec_t *ex, const gql_stype_t *parent_type, const group_t *g,
                         json_t *parent, json_t **out, int is_root)
{
    const gql_sel_t *sel = g->fields[0];
    const gql_sfield_t *f = sel->def;
    json_t *value = NULL;
    int nullable = f->type->kind != TY_NONNULL;
    *out = NULL;
    if (f == &ex->s->typename_field) {
        *out = json_string(parent_type->name);
        return 0;
    }
    const gql_value_t *at;
    char *why;
    json_t *args = hr_gql_coerce_args(f->args, f->nargs, sel->args, ex->op->vars, &why, &at);
    if (!args) {
        error_at(ex, at ? at->line : sel->line, at ? at->col : sel->col, GQL_BAD_INPUT, why);
        free(why);
        goto failed;
    }
    if (is_root && ex->root_given) {
        value = json_incref(ex->root);
    } else if (f->meta || parent_type->builtin) {
        value = hr_gql_introspect(ex->s, parent_type, f, args, parent);
    } else if (f->fn) {
        char *err = NULL;
        hr_gql_resolve_info_t info = {parent_type->name, f->name, args, parent, ex->ctx};
        value = f->fn(&info, &err);
        if (!value && err) {
            field_error(ex, sel, GQL_INTERNAL, err);
            free(err);
            json_decref(args);
            goto failed;
        }
        free(err);
    } else if (json_is_object(parent)) {
        value = json_incref(json_object_get(parent, f->name));
    }
    json_decref(args);
    int rc = complete(ex, f->type, parent_type, g, value, out);
    json_decref(value);
    if (rc == 0) return 0;
failed:
    if (!nullable) return -1;
    *out = json_null();
    return 0;
}

static int execute_selection(exec_t *ex, const gql_stype_t *type, const gql_sel_t *const *sets,
                             size_t nsets, json_t *parent, json_t **out, int is_root)
{
    groups_t gs = {0};
    for (size_t i = 0; i < nsets; i++)
        collect(ex, sets[i], &gs);
    json_t *obj = json_object();
    int rc = 0;
    for (size_t i = 0; i < gs.n; i++) {
        json_t *v;
        json_array_append_new(ex->path, json_string(gs.g[i].key));
        rc = execute_field(ex, type, &gs.g[i], parent, &v, is_root);
        path_pop(ex);
        if (rc) break;
        json_object_set_new(obj, gs.g[i].key, v);
    }
    groups_free(&gs);
    if (rc) {
        json_decref(obj);
        *out = NULL;
        return -1;
    }
    *out = obj;
    return 0;
}

json_t *hr_gql_exec(const hr_gql_op_t *op, void *ctx, json_t *root_value, int root_given)
{
    exec_t ex = {op, op->schema, ctx, json_array(), json_array(), root_value, root_given};
    const gql_stype_t *root = op->op->kind == HR_GQL_QUERY      ? op->schema->query
                              : op->op->kind == HR_GQL_MUTATION ? op->schema->mutation
                                                                : op->schema->subscription;
    json_t *data = NULL;
    const gql_sel_t *set = op->op->sels;
    if (execute_selection(&ex, root, &set, 1, root_given ? NULL : root_value, &data, 1))
        data = json_null();
    json_t *result = json_object();
    if (json_array_size(ex.errors)) json_object_set(result, "errors", ex.errors);
    json_object_set_new(result, "data", data);
    json_decref(ex.errors);
    json_decref(ex.path);
    return result;
}

json_t *hr_gql_execute(const hr_gql_op_t *op, void *ctx)
{
    return hr_gql_exec(op, ctx, NULL, 0);
}

json_t *hr_gql_execute_root(const hr_gql_op_t *op, void *ctx, json_t *value)
{
    return hr_gql_exec(op, ctx, value, 1);
}
