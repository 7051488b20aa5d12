/* validate.c: the specification's validation rules (graphql-js 16's specifiedRules), against
 * the schema.
 *
 * Pass 1 walks every operation and fragment once: type conditions, fields on their type (the
 * AST gets each field's definition, each spread its fragment), arguments (known, unique,
 * required, values of the correct type), directives (known, where allowed, unique), leaf and
 * composite selections, fragment spreads possible, variable definitions (unique, input types,
 * defaults), the introspection depth. Below an unknown field or type condition, what needs no
 * type is still checked (untyped_selections). Pass 2 works on the whole document: operation
 * names unique, a lone anonymous operation, one root field per subscription, fragment cycles,
 * per operation the variables it reaches through its fragments (defined, used, allowed where
 * used), unused fragments. Pass 3 checks that fields sharing a response key can merge, in
 * every selection set.
 *
 * Without interfaces and unions every selection set has exactly one object type, so a fragment
 * spread is possible only on its own type condition. Messages, locations and the cases each
 * rule reports are graphql-js's (tests/e2e/suites/gql_engine.test.js compares them, also on
 * invalid documents); errors stop at 100, as graphql-js's do. Work is bounded: grouping by
 * sorting, budgets where fragments could fan out, no suggestions once errors are full. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "gql/gql_int.h"

#define MAX_ERRORS 100
#define OVERLAP_BUDGET 200000

typedef struct usage {
    const char *name;
    const gql_tref_t *type;   /* expected where used; NULL when unknown */
    int has_default;          /* the position has a default value */
    const gql_stype_t *oneof; /* the @oneOf input object whose field this is, or NULL */
    int line, col;
} usage_t;

typedef struct vctx {
    const hr_gql_schema_t *s;
    gql_arena_t *a;
    gql_doc_t *doc;
    json_t *errors;
    int nerr;
    int stopped;
    unsigned walk; /* generation for gql_fragment_t.visit */
    long budget;
    usage_t *uses;
    size_t nuses, capuses;
} vctx_t;

static void verr(vctx_t *v, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verr(vctx_t *v, int line, int col, const char *fmt, ...)
{
    if (v->stopped) return;
    if (v->nerr >= MAX_ERRORS) {
        hr_gql_error_add(v->errors, 0, 0, GQL_VALIDATION,
                         "Too many validation errors, error limit reached. Validation aborted.");
        v->stopped = 1;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = hr_xvasprintf(fmt, ap);
    va_end(ap);
    hr_gql_error_add(v->errors, line, col, GQL_VALIDATION, "%s", msg);
    free(msg);
    v->nerr++;
}

/* No more errors will be kept: skip the costly part of reporting them (suggestions). */
static int full(const vctx_t *v)
{
    return v->stopped || v->nerr >= MAX_ERRORS;
}

/* Adds a location to the error just reported. */
static void vloc(vctx_t *v, int line, int col)
{
    if (v->stopped) return;
    json_t *e = json_array_get(v->errors, json_array_size(v->errors) - 1);
    json_t *locs = json_object_get(e, "locations");
    if (!locs) {
        locs = json_array();
        json_object_set_new(e, "locations", locs);
    }
    json_array_append_new(locs, json_pack("{s:i,s:i}", "line", line, "column", col));
}

/* ---- values ---- */

static void unique_input_fields(vctx_t *v, const gql_value_t *val)
{
    if (val->kind == V_LIST) {
        for (const gql_value_t *i = val->items; i; i = i->next)
            unique_input_fields(v, i);
    } else if (val->kind == V_OBJECT) {
        for (const gql_value_t *i = val->items; i; i = i->next) {
            for (const gql_value_t *j = val->items; j != i; j = j->next)
                if (strcmp(i->name, j->name) == 0) {
                    verr(v, j->name_line, j->name_col,
                         "There can be only one input field named \"%s\".", i->name);
                    vloc(v, i->name_line, i->name_col);
                    break;
                }
            unique_input_fields(v, i);
        }
    }
}

static void value_error(void *ud, int line, int col, const char *msg)
{
    verr(ud, line, col, "%s", msg);
}

static void check_value(vctx_t *v, const gql_tref_t *t, const gql_value_t *val)
{
    unique_input_fields(v, val);
    if (t && !full(v)) hr_gql_literal_check(t, val, value_error, v);
}

/* ---- arguments and directives ---- */

/* Arguments named twice (checked whether or not the field or directive exists). */
static void unique_args(vctx_t *v, const gql_arg_t *args)
{
    /* One error per name, at every argument of that name (graphql-js groups them). */
    for (const gql_arg_t *a = args; a; a = a->next) {
        const gql_arg_t *b = args;
        while (b != a && strcmp(a->name, b->name) != 0)
            b = b->next;
        if (b != a) continue; /* not the first of its name */
        int reported = 0;
        for (const gql_arg_t *c = a->next; c; c = c->next) {
            if (strcmp(a->name, c->name) != 0) continue;
            if (!reported) {
                verr(v, a->line, a->col, "There can be only one argument named \"%s\".", a->name);
                reported = 1;
            }
            vloc(v, c->line, c->col);
        }
    }
}

static void check_args(vctx_t *v, const gql_arg_t *args, const gql_sinput_t *defs, size_t ndefs,
                       const char *owner, int is_dir, int line, int col)
{
    unique_args(v, args);
    for (const gql_arg_t *a = args; a; a = a->next) {
        const gql_sinput_t *d = hr_gql_input_find(defs, ndefs, a->name);
        if (!d) {
            const char **opts = malloc((ndefs + 1) * sizeof *opts);
            for (size_t i = 0; i < ndefs; i++)
                opts[i] = defs[i].name;
            char sug[300] = "";
            if (!full(v)) hr_gql_suggest(NULL, a->name, opts, ndefs, sug, sizeof sug);
            free(opts);
            verr(v, a->line, a->col, "Unknown argument \"%s\" on %s \"%s\".%s", a->name,
                 is_dir ? "directive" : "field", owner, sug);
            unique_input_fields(v, a->value);
            continue;
        }
        check_value(v, d->type, a->value);
    }
    for (size_t i = 0; i < ndefs; i++) {
        if (defs[i].type->kind != TY_NONNULL || defs[i].def) continue;
        const gql_arg_t *a = args;
        while (a && strcmp(a->name, defs[i].name) != 0)
            a = a->next;
        if (a) continue;
        char tb[256];
        const char *dot = is_dir ? NULL : strrchr(owner, '.');
        verr(v, line, col,
             "%s \"%s\" argument \"%s\" of type \"%s\" is required, but it was not provided.",
             is_dir ? "Directive" : "Field", dot ? dot + 1 : owner, defs[i].name,
             hr_gql_tref_str(defs[i].type, tb, sizeof tb));
    }
}

static void check_dirs(vctx_t *v, const gql_directive_t *dirs, int loc)
{
    for (const gql_directive_t *d = dirs; d; d = d->next) {
        const gql_sdir_t *def = hr_gql_dir_find(v->s, d->name);
        if (!def) {
            verr(v, d->line, d->col, "Unknown directive \"@%s\".", d->name);
            unique_args(v, d->args);
            for (const gql_arg_t *a = d->args; a; a = a->next)
                unique_input_fields(v, a->value);
            continue;
        }
        if (!(def->locations & (1u << loc)))
            verr(v, d->line, d->col, "Directive \"@%s\" may not be used on %s.", d->name,
                 hr_gql_dl_names[loc]);
        if (!def->repeatable)
            for (const gql_directive_t *e = dirs; e != d; e = e->next)
                if (strcmp(e->name, d->name) == 0) {
                    verr(v, e->line, e->col,
                         "The directive \"@%s\" can only be used once at this location.", d->name);
                    vloc(v, d->line, d->col);
                    break;
                }
        char owner[300];
        snprintf(owner, sizeof owner, "@%s", d->name);
        check_args(v, d->args, def->args, def->nargs, owner, 1, d->line, d->col);
    }
}

/* ---- selections ---- */

/* The fragment of that name; with duplicates (an error of their own) the last one, as
 * graphql-js's map keeps. */
static gql_fragment_t *frag_find(gql_doc_t *doc, const char *name)
{
    gql_fragment_t *found = NULL;
    for (gql_fragment_t *f = doc->frags; f; f = f->next)
        if (strcmp(f->name, name) == 0) found = f;
    return found;
}

static void unknown_type(vctx_t *v, const char *name, int line, int col)
{
    const char **opts = malloc((v->s->ntypes + 1) * sizeof *opts);
    size_t n = 0;
    for (size_t i = 0; i < v->s->ntypes; i++)
        if (hr_gql_type_visible(v->s, v->s->types[i]->name)) opts[n++] = v->s->types[i]->name;
    char sug[300] = "";
    if (!full(v)) hr_gql_suggest(NULL, name, opts, n, sug, sizeof sug);
    free(opts);
    verr(v, line, col, "Unknown type \"%s\".%s", name, sug);
}

static void selections(vctx_t *v, gql_sel_t *sels, const gql_stype_t *parent);
static void untyped_selections(vctx_t *v, gql_sel_t *sels, int depth);

/* graphql-js's MaxIntrospectionDepthRule: below __schema or __type, no path may nest three of
 * the list fields fields, interfaces, possibleTypes and inputFields (fragments followed). This
 * returns the most such fields on one path below sels. */
static int intro_lists(vctx_t *v, const gql_sel_t *sels, int depth)
{
    int most = 0;
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        int n = 0;
        if (depth > GQL_MAX_NESTING) break;
        if (sel->kind == SEL_SPREAD) {
            gql_fragment_t *f = frag_find(v->doc, sel->name);
            if (!f || f->lists < 0) continue; /* unknown, or a cycle (reported elsewhere) */
            if (f->lists == 0) {
                f->lists = -1;
                f->lists = 1 + intro_lists(v, f->sels, depth + 1);
            }
            n = f->lists - 1;
        } else {
            if (sel->kind == SEL_FIELD &&
                (strcmp(sel->name, "fields") == 0 || strcmp(sel->name, "interfaces") == 0 ||
                 strcmp(sel->name, "possibleTypes") == 0 || strcmp(sel->name, "inputFields") == 0))
                n = 1;
            n += intro_lists(v, sel->sels, depth + 1);
        }
        if (n > most) most = n;
    }
    return most;
}

static void field(vctx_t *v, gql_sel_t *sel, const gql_stype_t *parent)
{
    check_dirs(v, sel->dirs, DL_FIELD);
    if ((strcmp(sel->name, "__schema") == 0 || strcmp(sel->name, "__type") == 0) &&
        intro_lists(v, sel->sels, 0) >= 3)
        verr(v, sel->line, sel->col, "Maximum introspection depth exceeded");
    const gql_sfield_t *f = hr_gql_field_find(v->s, parent, sel->name);
    if (!f) {
        const char **opts = malloc((parent->nfields + 1) * sizeof *opts);
        for (size_t i = 0; i < parent->nfields; i++)
            opts[i] = parent->fields[i].name;
        char sug[300] = "";
        if (!full(v)) hr_gql_suggest(NULL, sel->name, opts, parent->nfields, sug, sizeof sug);
        free(opts);
        verr(v, sel->line, sel->col, "Cannot query field \"%s\" on type \"%s\".%s", sel->name,
             parent->name, sug);
        /* What needs no type is still checked, below too. */
        unique_args(v, sel->args);
        for (const gql_arg_t *a = sel->args; a; a = a->next)
            unique_input_fields(v, a->value);
        untyped_selections(v, sel->sels, 0);
        return;
    }
    sel->def = f;
    const gql_stype_t *t = hr_gql_tref_named(f->type);
    char tb[256];
    int leaf = hr_gql_is_leaf(t);
    if (leaf && sel->has_sels) {
        verr(v, sel->ss_line, sel->ss_col,
             "Field \"%s\" must not have a selection since type \"%s\" has no subfields.",
             sel->name, hr_gql_tref_str(f->type, tb, sizeof tb));
        untyped_selections(v, sel->sels, 0);
    }
    if (!leaf && !sel->has_sels)
        verr(v, sel->line, sel->col,
             "Field \"%s\" of type \"%s\" must have a selection of subfields. Did you mean "
             "\"%s { ... }\"?",
             sel->name, hr_gql_tref_str(f->type, tb, sizeof tb), sel->name);
    char owner[300];
    snprintf(owner, sizeof owner, "%s.%s", parent->name, f->name);
    check_args(v, sel->args, f->args, f->nargs, owner, 0, sel->line, sel->col);
    if (!leaf && sel->has_sels) selections(v, sel->sels, t);
}

static void selections(vctx_t *v, gql_sel_t *sels, const gql_stype_t *parent)
{
    for (gql_sel_t *sel = sels; sel && !v->stopped; sel = sel->next) {
        if (sel->kind == SEL_FIELD) {
            field(v, sel, parent);
        } else if (sel->kind == SEL_SPREAD) {
            check_dirs(v, sel->dirs, DL_FRAGMENT_SPREAD);
            gql_fragment_t *f = frag_find(v->doc, sel->name);
            if (!f) {
                verr(v, sel->tc_line, sel->tc_col, "Unknown fragment \"%s\".", sel->name);
                continue;
            }
            sel->frag = f;
            f->used = 1;
            if (f->on && f->on != parent)
                verr(v, sel->line, sel->col,
                     "Fragment \"%s\" cannot be spread here as objects of type \"%s\" can never "
                     "be of type \"%s\".",
                     f->name, parent->name, f->on->name);
        } else {
            check_dirs(v, sel->dirs, DL_INLINE_FRAGMENT);
            const gql_stype_t *on = parent;
            if (sel->type_cond) {
                on = hr_gql_type_visible(v->s, sel->type_cond);
                if (!on) {
                    unknown_type(v, sel->type_cond, sel->tc_line, sel->tc_col);
                    untyped_selections(v, sel->sels, 0);
                    continue;
                }
                if (on->kind != K_OBJECT) {
                    verr(v, sel->tc_line, sel->tc_col,
                         "Fragment cannot condition on non composite type \"%s\".", on->name);
                    untyped_selections(v, sel->sels, 0);
                    continue;
                }
                /* Impossible here, but its fields are still checked against its type. */
                if (on != parent)
                    verr(v, sel->line, sel->col,
                         "Fragment cannot be spread here as objects of type \"%s\" can never be "
                         "of type \"%s\".",
                         parent->name, on->name);
            }
            sel->on = on;
            selections(v, sel->sels, on);
        }
    }
}

/* Selections whose parent type is unknown (an unknown field, a type condition that names
 * nothing or a leaf): what graphql-js checks without types — directives, arguments and input
 * fields given twice, fragments known (and linked, for the fragment rules) — and, below a type
 * condition that names an object type, everything again. */
static void untyped_selections(vctx_t *v, gql_sel_t *sels, int depth)
{
    for (gql_sel_t *sel = sels; sel && !v->stopped && depth <= GQL_MAX_NESTING; sel = sel->next) {
        if (sel->kind == SEL_FIELD) {
            check_dirs(v, sel->dirs, DL_FIELD);
            unique_args(v, sel->args);
            for (const gql_arg_t *a = sel->args; a; a = a->next)
                unique_input_fields(v, a->value);
            untyped_selections(v, sel->sels, depth + 1);
        } else if (sel->kind == SEL_SPREAD) {
            check_dirs(v, sel->dirs, DL_FRAGMENT_SPREAD);
            sel->frag = frag_find(v->doc, sel->name);
            if (!sel->frag)
                verr(v, sel->tc_line, sel->tc_col, "Unknown fragment \"%s\".", sel->name);
        } else {
            check_dirs(v, sel->dirs, DL_INLINE_FRAGMENT);
            const gql_stype_t *on =
                sel->type_cond ? hr_gql_type_visible(v->s, sel->type_cond) : NULL;
            if (sel->type_cond && !on) {
                unknown_type(v, sel->type_cond, sel->tc_line, sel->tc_col);
            } else if (on && on->kind != K_OBJECT) {
                verr(v, sel->tc_line, sel->tc_col,
                     "Fragment cannot condition on non composite type \"%s\".", on->name);
                on = NULL;
            }
            sel->on = on;
            if (on)
                selections(v, sel->sels, on);
            else
                untyped_selections(v, sel->sels, depth + 1);
        }
    }
}

/* ---- variables ---- */

static void use(vctx_t *v, const char *name, const gql_tref_t *t, int has_default,
                const gql_stype_t *oneof, int line, int col)
{
    if (v->nuses == v->capuses) {
        v->capuses = v->capuses ? v->capuses * 2 : 16;
        v->uses = hr_xrealloc(v->uses, v->capuses * sizeof *v->uses);
    }
    v->uses[v->nuses++] = (usage_t){name, t, has_default, oneof, line, col};
}

static void value_uses(vctx_t *v, const gql_value_t *val, const gql_tref_t *t, int has_default,
                       const gql_stype_t *oneof)
{
    if (val->kind == V_VAR) {
        use(v, val->s, t, has_default, oneof, val->line, val->col);
        return;
    }
    const gql_tref_t *u = t && t->kind == TY_NONNULL ? t->of : t;
    if (val->kind == V_LIST) {
        /* A list where no list is expected: graphql-js takes the type itself for its items. */
        for (const gql_value_t *i = val->items; i; i = i->next)
            value_uses(v, i, u && u->kind == TY_LIST ? u->of : u, 0, NULL);
    } else if (val->kind == V_OBJECT) {
        const gql_stype_t *in =
            u && u->kind == TY_NAMED && u->type->kind == K_INPUT ? u->type : NULL;
        for (const gql_value_t *i = val->items; i; i = i->next) {
            const gql_sinput_t *d = in ? hr_gql_input_find(in->inputs, in->ninputs, i->name) : NULL;
            /* graphql-js looks at the object's type as the position has it: a @oneOf type
             * behind a non-null wrapper escapes this rule there. */
            int is_oneof = in && in->oneof && t && t->kind == TY_NAMED;
            value_uses(v, i, d ? d->type : NULL, d && d->def, is_oneof ? in : NULL);
        }
    }
}

static void args_uses(vctx_t *v, const gql_arg_t *args, const gql_sinput_t *defs, size_t ndefs)
{
    for (const gql_arg_t *a = args; a; a = a->next) {
        const gql_sinput_t *d = hr_gql_input_find(defs, ndefs, a->name);
        value_uses(v, a->value, d ? d->type : NULL, d && d->def, NULL);
    }
}

static void dirs_uses(vctx_t *v, const gql_directive_t *dirs)
{
    for (const gql_directive_t *d = dirs; d; d = d->next) {
        const gql_sdir_t *def = hr_gql_dir_find(v->s, d->name);
        args_uses(v, d->args, def ? def->args : NULL, def ? def->nargs : 0);
    }
}

static void sels_uses(vctx_t *v, const gql_sel_t *sels)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        dirs_uses(v, sel->dirs);
        if (sel->kind == SEL_FIELD) {
            args_uses(v, sel->args, sel->def ? sel->def->args : NULL,
                      sel->def ? sel->def->nargs : 0);
            sels_uses(v, sel->sels);
        } else if (sel->kind == SEL_INLINE) {
            sels_uses(v, sel->sels);
        } else if (sel->frag && sel->frag->visit != v->walk) {
            sel->frag->visit = v->walk;
            dirs_uses(v, sel->frag->dirs);
            sels_uses(v, sel->frag->sels);
        }
    }
}

/* graphql-js's isTypeSubTypeOf without abstract types. */
static int subtype(const gql_tref_t *sub, const gql_tref_t *super)
{
    if (super->kind == TY_NONNULL) return sub->kind == TY_NONNULL && subtype(sub->of, super->of);
    if (sub->kind == TY_NONNULL) return subtype(sub->of, super);
    if (super->kind == TY_LIST) return sub->kind == TY_LIST && subtype(sub->of, super->of);
    if (sub->kind == TY_LIST) return 0;
    return sub->type == super->type;
}

/* The variable definitions (graphql-js visits them before the selection set). */
static void operation_var_defs(vctx_t *v, gql_operation_t *op)
{
    for (gql_vardef_t *d = op->vars; d; d = d->next) {
        /* One error per name, at every definition of it. */
        const gql_vardef_t *e = op->vars;
        while (e != d && strcmp(e->name, d->name) != 0)
            e = e->next;
        int reported = 0;
        for (const gql_vardef_t *f = d->next; f && e == d; f = f->next) {
            if (strcmp(f->name, d->name) != 0) continue;
            if (!reported) {
                verr(v, d->name_line, d->name_col, "There can be only one variable named \"$%s\".",
                     d->name);
                reported = 1;
            }
            vloc(v, f->name_line, f->name_col);
        }
        check_dirs(v, d->dirs, DL_VARIABLE_DEFINITION);
        const gql_type_t *n = d->type;
        while (n->kind != TY_NAMED)
            n = n->of;
        gql_stype_t *t = hr_gql_type_visible(v->s, n->name);
        if (!t) {
            unknown_type(v, n->name, n->line, n->col);
            continue;
        }
        if (!hr_gql_is_input(t)) {
            char tb[256];
            verr(v, d->type->line, d->type->col,
                 "Variable \"$%s\" cannot be non-input type \"%s\".", d->name,
                 hr_gql_type_str(d->type, tb, sizeof tb));
            continue;
        }
        if (d->defval) check_value(v, hr_gql_tref_resolve(v->s, v->a, d->type), d->defval);
    }
}

/* The variables' usages, through the fragments the operation reaches (graphql-js checks them
 * when it leaves the operation). */
static void operation_vars(vctx_t *v, gql_operation_t *op)
{
    v->nuses = 0;
    v->walk++;
    dirs_uses(v, op->dirs);
    sels_uses(v, op->sels);
    for (size_t i = 0; i < v->nuses; i++) {
        usage_t *u = &v->uses[i];
        /* The last definition of the name counts (graphql-js's map keeps the last). */
        gql_vardef_t *d = NULL;
        for (gql_vardef_t *e = op->vars; e; e = e->next)
            if (strcmp(e->name, u->name) == 0) d = e;
        if (!d) {
            if (op->name)
                verr(v, u->line, u->col, "Variable \"$%s\" is not defined by operation \"%s\".",
                     u->name, op->name);
            else
                verr(v, u->line, u->col, "Variable \"$%s\" is not defined.", u->name);
            vloc(v, op->line, op->col);
            continue;
        }
        for (gql_vardef_t *e = op->vars; e; e = e->next)
            if (strcmp(e->name, d->name) == 0) e->used = 1;
        gql_tref_t *vt = hr_gql_tref_resolve(v->s, v->a, d->type);
        if (!vt) continue;
        int ok = 1;
        if (u->type && u->type->kind == TY_NONNULL && vt->kind != TY_NONNULL) {
            int var_default = d->defval && d->defval->kind != V_NULL;
            ok = (var_default || u->has_default) && subtype(vt, u->type->of);
        } else if (u->type) {
            ok = subtype(vt, u->type);
        }
        char a[256], b[256];
        if (!ok) {
            verr(v, d->line, d->col,
                 "Variable \"$%s\" of type \"%s\" used in position expecting type \"%s\".", d->name,
                 hr_gql_tref_str(vt, a, sizeof a), hr_gql_tref_str(u->type, b, sizeof b));
            vloc(v, u->line, u->col);
        }
        if (u->oneof && vt->kind != TY_NONNULL) {
            verr(v, d->line, d->col,
                 "Variable \"$%s\" is of type \"%s\" but must be non-nullable to be used for "
                 "OneOf Input Object \"%s\".",
                 d->name, hr_gql_tref_str(vt, a, sizeof a), u->oneof->name);
            vloc(v, u->line, u->col);
        }
    }
    for (gql_vardef_t *d = op->vars; d; d = d->next)
        if (!d->used) {
            if (op->name)
                verr(v, d->line, d->col, "Variable \"$%s\" is never used in operation \"%s\".",
                     d->name, op->name);
            else
                verr(v, d->line, d->col, "Variable \"$%s\" is never used.", d->name);
        }
}

/* ---- fragments ---- */

/* graphql-js's NoFragmentCyclesRule, by fragment name (the last definition of a name is the
 * one spreads reach): a depth-first walk from each fragment over the spreads of its selection
 * set; a spread of a fragment already on the path closes a cycle, reported at the spreads
 * along it. Each name is walked once. */
typedef struct spreads {
    const gql_sel_t **s;
    size_t n, cap;
} spreads_t;

static void direct_spreads(const gql_sel_t *sels, spreads_t *out, int depth)
{
    for (const gql_sel_t *sel = sels; sel && depth <= GQL_MAX_NESTING; sel = sel->next) {
        if (sel->kind == SEL_SPREAD) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 8;
                out->s = hr_xrealloc(out->s, out->cap * sizeof *out->s);
            }
            out->s[out->n++] = sel;
        } else {
            direct_spreads(sel->sels, out, depth + 1);
        }
    }
}

/* Kept out of detect_cycles, which recurses once per fragment of a chain: its buffer would
 * cost every level. */
__attribute__((noinline)) static void report_cycle(vctx_t *v, const spreads_t *path, size_t from,
                                                   const char *name)
{
    char via[1024] = "";
    size_t at = 0;
    for (size_t k = from; k + 1 < path->n && at < sizeof via; k++)
        at += (size_t)snprintf(via + at, sizeof via - at, "%s\"%s\"", k == from ? " via " : ", ",
                               path->s[k]->name);
    verr(v, path->s[from]->line, path->s[from]->col,
         "Cannot spread fragment \"%s\" within itself%s.", name, via);
    for (size_t k = from + 1; k < path->n; k++)
        vloc(v, path->s[k]->line, path->s[k]->col);
}

static void detect_cycles(vctx_t *v, gql_fragment_t *f, spreads_t *path)
{
    gql_fragment_t *canon = frag_find(v->doc, f->name);
    if (canon->state) return; /* walked */
    canon->state = 1;
    spreads_t sp = {0};
    direct_spreads(f->sels, &sp, 0);
    canon->cycle_at = (int)path->n + 1;
    for (size_t i = 0; i < sp.n && !v->stopped; i++) {
        gql_fragment_t *target = frag_find(v->doc, sp.s[i]->name);
        if (path->n == path->cap) {
            path->cap = path->cap ? path->cap * 2 : 8;
            path->s = hr_xrealloc(path->s, path->cap * sizeof *path->s);
        }
        path->s[path->n++] = sp.s[i];
        if (target && !target->cycle_at) {
            detect_cycles(v, target, path);
        } else if (target) {
            report_cycle(v, path, (size_t)target->cycle_at - 1, sp.s[i]->name);
        }
        path->n--;
    }
    canon->cycle_at = 0;
    free(sp.s);
}

static void fragment_cycles(vctx_t *v)
{
    spreads_t path = {0};
    for (gql_fragment_t *f = v->doc->frags; f && !v->stopped; f = f->next)
        detect_cycles(v, f, &path);
    free(path.s);
}

/* ---- overlapping fields ---- */

/* graphql-js's OverlappingFieldsCanBeMergedRule. Every selection set of the document (not an
 * inline fragment's: its fields belong to the enclosing set) is checked once: the fields it
 * selects, fragments expanded, are compared pairwise within each response key. A pair conflicts
 * when the fields differ in name or arguments (unless their parent types are different object
 * types, which can never both apply), when their types differ in shape, or when their
 * sub-selections hold a conflicting pair. Fields reached through the same top-level fragment
 * are compared where that fragment is defined, not again here. A work budget bounds all this
 * when fragments fan out. */

typedef struct fent {
    const char *key;
    const gql_sel_t *sel;
    const gql_stype_t *ptype; /* the parent type (NULL: unknown) */
    const char *origin;       /* the top-level fragment it came through, or NULL */
} fent_t;

typedef struct fset {
    fent_t *e;
    size_t n, cap;
} fset_t;

static void collect(vctx_t *v, const gql_sel_t *sels, const gql_stype_t *type, const char *origin,
                    fset_t *out, int depth)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (--v->budget < 0 || depth > GQL_MAX_NESTING) return;
        if (sel->kind == SEL_FIELD) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 16;
                out->e = hr_xrealloc(out->e, out->cap * sizeof *out->e);
            }
            out->e[out->n++] = (fent_t){sel->alias ? sel->alias : sel->name, sel, type, origin};
        } else if (sel->kind == SEL_INLINE) {
            collect(v, sel->sels, sel->type_cond ? sel->on : type, origin, out, depth + 1);
        } else if (sel->frag && sel->frag->visit != v->walk) {
            sel->frag->visit = v->walk; /* each fragment once per collection */
            collect(v, sel->frag->sels, sel->frag->on, origin ? origin : sel->frag->name, out,
                    depth + 1);
        }
    }
}

static void fields_of(vctx_t *v, const gql_sel_t *sels, const gql_stype_t *type, fset_t *out)
{
    v->walk++;
    collect(v, sels, type, NULL, out, 0);
}

/* The fields of an fset grouped by response key: ord is (key, position) sorted, so each key's
 * fields are one run, in the order written; runs are listed in the order their keys first
 * appear. Sorting keeps a wide selection set at n log n. */
typedef struct keyed {
    const char *key;
    size_t idx; /* position in the fset */
} keyed_t;

typedef struct run {
    size_t start, end; /* ord[start, end) */
} run_t;

typedef struct groups {
    keyed_t *ord;
    size_t n;
    run_t *runs;
    size_t nruns;
} groups_t;

static int by_key(const void *x, const void *y)
{
    const keyed_t *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int by_first(const void *x, const void *y, void *ord)
{
    const run_t *a = x, *b = y;
    size_t ia = ((const keyed_t *)ord)[a->start].idx, ib = ((const keyed_t *)ord)[b->start].idx;
    return (ia > ib) - (ia < ib);
}

static void group(const fset_t *fs, groups_t *g)
{
    g->n = fs->n;
    g->ord = hr_xmalloc((fs->n ? fs->n : 1) * sizeof *g->ord);
    g->runs = hr_xmalloc((fs->n ? fs->n : 1) * sizeof *g->runs);
    g->nruns = 0;
    for (size_t i = 0; i < fs->n; i++)
        g->ord[i] = (keyed_t){fs->e[i].key, i};
    qsort(g->ord, fs->n, sizeof *g->ord, by_key);
    for (size_t i = 0; i < fs->n; i++) {
        if (i == 0 || strcmp(g->ord[i].key, g->ord[i - 1].key) != 0)
            g->runs[g->nruns++] = (run_t){i, i};
        g->runs[g->nruns - 1].end = i + 1;
    }
    qsort_r(g->runs, g->nruns, sizeof *g->runs, by_first, g->ord);
}

/* The run of key in g (binary search), or NULL. */
static const run_t *run_find(const groups_t *g, const char *key, run_t *out)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(g->ord[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == g->n || strcmp(g->ord[lo].key, key) != 0) return NULL;
    out->start = lo;
    out->end = lo;
    while (out->end < g->n && strcmp(g->ord[out->end].key, key) == 0)
        out->end++;
    return out;
}

static void groups_free(groups_t *g)
{
    free(g->ord);
    free(g->runs);
}

/* graphql-js compares arguments printed with object fields sorted. */
static void print_sorted(hr_buf_t *b, const gql_value_t *val)
{
    if (val->kind != V_OBJECT && val->kind != V_LIST) {
        char *p = hr_gql_print_value_str(val);
        hr_buf_puts(b, p);
        free(p);
        return;
    }
    if (val->kind == V_LIST) {
        hr_buf_putc(b, '[');
        for (const gql_value_t *i = val->items; i; i = i->next) {
            print_sorted(b, i);
            if (i->next) hr_buf_puts(b, ", ");
        }
        hr_buf_putc(b, ']');
        return;
    }
    size_t n = 0;
    for (const gql_value_t *i = val->items; i; i = i->next)
        n++;
    const gql_value_t **f = hr_xmalloc((n ? n : 1) * sizeof *f);
    n = 0;
    for (const gql_value_t *i = val->items; i; i = i->next) {
        size_t k = n++;
        while (k > 0 && strcmp(f[k - 1]->name, i->name) > 0) {
            f[k] = f[k - 1];
            k--;
        }
        f[k] = i;
    }
    hr_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        hr_buf_printf(b, "%s%s: ", i ? ", " : "", f[i]->name);
        print_sorted(b, f[i]);
    }
    hr_buf_putc(b, '}');
    free(f);
}

static int same_value(const gql_value_t *x, const gql_value_t *y)
{
    hr_buf_t a, b;
    hr_buf_init(&a, 0);
    hr_buf_init(&b, 0);
    print_sorted(&a, x);
    print_sorted(&b, y);
    int same = a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
    hr_buf_free(&a);
    hr_buf_free(&b);
    return same;
}

static int same_args(const gql_arg_t *a, const gql_arg_t *b)
{
    size_t na = 0, nb = 0;
    for (const gql_arg_t *x = a; x; x = x->next)
        na++;
    for (const gql_arg_t *x = b; x; x = x->next)
        nb++;
    if (na != nb) return 0;
    for (const gql_arg_t *x = a; x; x = x->next) {
        const gql_arg_t *y = b;
        while (y && strcmp(x->name, y->name) != 0)
            y = y->next;
        if (!y || !same_value(x->value, y->value)) return 0;
    }
    return 1;
}

/* graphql-js's doTypesConflict. */
static int types_conflict(const gql_tref_t *a, const gql_tref_t *b)
{
    if (a->kind == TY_LIST) return b->kind == TY_LIST ? types_conflict(a->of, b->of) : 1;
    if (b->kind == TY_LIST) return 1;
    if (a->kind == TY_NONNULL) return b->kind == TY_NONNULL ? types_conflict(a->of, b->of) : 1;
    if (b->kind == TY_NONNULL) return 1;
    if (hr_gql_is_leaf(a->type) || hr_gql_is_leaf(b->type)) return a->type != b->type;
    return 0;
}

typedef struct loc {
    int line, col;
} loc_t;

/* A conflict: why, and the fields of each side (the pair first, then those below it). */
typedef struct conflict {
    hr_buf_t reason;
    loc_t *l1, *l2;
    size_t n1, n2;
} conflict_t;

static void conflict_free(conflict_t *c)
{
    hr_buf_free(&c->reason);
    free(c->l1);
    free(c->l2);
}

static void locs_add(loc_t **l, size_t *n, int line, int col)
{
    *l = hr_xrealloc(*l, (*n + 1) * sizeof **l);
    (*l)[(*n)++] = (loc_t){line, col};
}

static int find_conflict(vctx_t *v, const fent_t *a, const fent_t *b, int exclusive,
                         conflict_t *out, int depth);

/* The conflicts between two sub-selections (cross pairs only), folded into out's reason as
 * graphql-js words them: subfields "x" conflict because … and subfields "y" conflict because …. */
static int sub_conflicts(vctx_t *v, const fent_t *a, const fent_t *b, int exclusive,
                         conflict_t *out, int depth)
{
    const gql_stype_t *ta = a->sel->def ? hr_gql_tref_named(a->sel->def->type) : NULL;
    const gql_stype_t *tb = b->sel->def ? hr_gql_tref_named(b->sel->def->type) : NULL;
    fset_t fa = {0}, fb = {0};
    fields_of(v, a->sel->sels, ta, &fa);
    fields_of(v, b->sel->sels, tb, &fb);
    groups_t ga, gb;
    group(&fa, &ga);
    group(&fb, &gb);
    int found = 0;
    for (size_t r = 0; r < ga.nruns && v->budget > 0; r++) {
        const run_t *ra = &ga.runs[r];
        run_t rbuf;
        const run_t *rb = run_find(&gb, ga.ord[ra->start].key, &rbuf);
        for (size_t i = ra->start; rb && i < ra->end && v->budget > 0; i++) {
            const fent_t *x = &fa.e[ga.ord[i].idx];
            for (size_t j = rb->start; j < rb->end && v->budget > 0; j++) {
                const fent_t *y = &fb.e[gb.ord[j].idx];
                if (x->origin && y->origin && strcmp(x->origin, y->origin) == 0) continue;
                conflict_t c = {0};
                hr_buf_init(&c.reason, 0);
                if (find_conflict(v, x, y, exclusive, &c, depth + 1)) {
                    hr_buf_printf(&out->reason, "%ssubfields \"%s\" conflict because %s",
                                  found ? " and " : "", x->key, c.reason.data);
                    for (size_t m = 0; m < c.n1; m++)
                        locs_add(&out->l1, &out->n1, c.l1[m].line, c.l1[m].col);
                    for (size_t m = 0; m < c.n2; m++)
                        locs_add(&out->l2, &out->n2, c.l2[m].line, c.l2[m].col);
                    found = 1;
                }
                conflict_free(&c);
            }
        }
    }
    groups_free(&ga);
    groups_free(&gb);
    free(fa.e);
    free(fb.e);
    return found;
}

static int find_conflict(vctx_t *v, const fent_t *a, const fent_t *b, int exclusive,
                         conflict_t *out, int depth)
{
    char ta[256], tb[256];
    if (--v->budget < 0 || depth > GQL_MAX_NESTING) return 0;
    exclusive = exclusive || (a->ptype && b->ptype && a->ptype != b->ptype);
    locs_add(&out->l1, &out->n1, a->sel->line, a->sel->col);
    locs_add(&out->l2, &out->n2, b->sel->line, b->sel->col);
    if (!exclusive && strcmp(a->sel->name, b->sel->name) != 0) {
        hr_buf_printf(&out->reason, "\"%s\" and \"%s\" are different fields", a->sel->name,
                      b->sel->name);
        return 1;
    }
    if (!exclusive && !same_args(a->sel->args, b->sel->args)) {
        hr_buf_puts(&out->reason, "they have differing arguments");
        return 1;
    }
    if (a->sel->def && b->sel->def && types_conflict(a->sel->def->type, b->sel->def->type)) {
        hr_buf_printf(&out->reason, "they return conflicting types \"%s\" and \"%s\"",
                      hr_gql_tref_str(a->sel->def->type, ta, sizeof ta),
                      hr_gql_tref_str(b->sel->def->type, tb, sizeof tb));
        return 1;
    }
    if (a->sel->sels && b->sel->sels) return sub_conflicts(v, a, b, exclusive, out, depth);
    return 0;
}

/* The conflicts within one selection set, reported. */
static void overlap_within(vctx_t *v, const gql_sel_t *sels, const gql_stype_t *type)
{
    fset_t fs = {0};
    fields_of(v, sels, type, &fs);
    groups_t g;
    group(&fs, &g);
    for (size_t r = 0; r < g.nruns && v->budget > 0 && !v->stopped; r++) {
        for (size_t i = g.runs[r].start; i < g.runs[r].end && v->budget > 0; i++) {
            for (size_t j = i + 1; j < g.runs[r].end && v->budget > 0 && !v->stopped; j++) {
                const fent_t *x = &fs.e[g.ord[i].idx], *y = &fs.e[g.ord[j].idx];
                if (x->origin && y->origin && strcmp(x->origin, y->origin) == 0) continue;
                conflict_t c = {0};
                hr_buf_init(&c.reason, 0);
                if (find_conflict(v, x, y, 0, &c, 0)) {
                    verr(v, c.l1[0].line, c.l1[0].col,
                         "Fields \"%s\" conflict because %s. Use different aliases on the fields "
                         "to fetch both if this was intentional.",
                         x->key, c.reason.data);
                    for (size_t k = 1; k < c.n1; k++)
                        vloc(v, c.l1[k].line, c.l1[k].col);
                    for (size_t k = 0; k < c.n2; k++)
                        vloc(v, c.l2[k].line, c.l2[k].col);
                }
                conflict_free(&c);
            }
        }
    }
    groups_free(&g);
    free(fs.e);
}

/* Every selection set below sels (fields' ones; inline fragments' fields belong to sels). */
static void overlap_walk(vctx_t *v, const gql_sel_t *sels, const gql_stype_t *type, int top,
                         int depth)
{
    if (depth > GQL_MAX_NESTING || v->budget <= 0) return;
    if (top) overlap_within(v, sels, type);
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (sel->kind == SEL_FIELD && sel->sels)
            overlap_walk(v, sel->sels, sel->def ? hr_gql_tref_named(sel->def->type) : NULL, 1,
                         depth + 1);
        else if (sel->kind == SEL_INLINE)
            overlap_walk(v, sel->sels, sel->type_cond ? sel->on : type, 0, depth + 1);
    }
}

/* graphql-js's KnownTypeNames on a type system definition inside a request: its types must
 * exist in the schema, be specified scalars, or be defined in the same document. */
static void sdl_type_name(vctx_t *v, const gql_type_t *t)
{
    static const char *const standard[] = {"String", "Int", "Float", "Boolean", "ID"};
    while (t->kind != TY_NAMED)
        t = t->of;
    if (hr_gql_type_visible(v->s, t->name)) return;
    for (size_t i = 0; i < 5; i++)
        if (strcmp(t->name, standard[i]) == 0) return;
    size_t n = 5;
    for (const gql_tdef_t *d = v->doc->tdefs; d; d = d->next) {
        if (d->name && d->kind != TD_DIRECTIVE && !d->extension && strcmp(d->name, t->name) == 0)
            return;
        n++;
    }
    const char **opts = malloc((n + v->s->ntypes) * sizeof *opts);
    size_t k = 0;
    for (size_t i = 0; i < 5; i++)
        opts[k++] = standard[i];
    for (size_t i = 0; i < v->s->ntypes; i++)
        if (hr_gql_type_visible(v->s, v->s->types[i]->name)) opts[k++] = v->s->types[i]->name;
    for (const gql_tdef_t *d = v->doc->tdefs; d; d = d->next)
        if (d->name && d->kind != TD_DIRECTIVE && !d->extension) opts[k++] = d->name;
    char sug[300] = "";
    if (!full(v)) hr_gql_suggest(NULL, t->name, opts, k, sug, sizeof sug);
    free(opts);
    verr(v, t->line, t->col, "Unknown type \"%s\".%s", t->name, sug);
}

/* ... and its directives must be known and allowed where they are. */
static void sdl_type_names(vctx_t *v, const gql_tdef_t *t)
{
    static const int type_loc[] = {
        [TD_OBJECT] = DL_OBJECT, [TD_INPUT] = DL_INPUT_OBJECT,  [TD_ENUM] = DL_ENUM,
        [TD_SCALAR] = DL_SCALAR, [TD_SCHEMA] = DL_SCHEMA,       [TD_DIRECTIVE] = DL_SCHEMA,
        [TD_UNION] = DL_UNION,   [TD_INTERFACE] = DL_INTERFACE,
    };
    static const int field_loc[] = {
        [TD_OBJECT] = DL_FIELD_DEFINITION, [TD_INPUT] = DL_INPUT_FIELD_DEFINITION,
        [TD_ENUM] = DL_ENUM_VALUE,         [TD_SCALAR] = DL_FIELD_DEFINITION,
        [TD_SCHEMA] = DL_SCHEMA,           [TD_DIRECTIVE] = DL_ARGUMENT_DEFINITION,
        [TD_UNION] = DL_FIELD_DEFINITION,  [TD_INTERFACE] = DL_FIELD_DEFINITION,
    };
    if (t->kind != TD_DIRECTIVE) check_dirs(v, t->dirs, type_loc[t->kind]);
    for (const gql_type_t *n = t->named; n; n = n->next)
        sdl_type_name(v, n);
    for (const gql_fdef_t *f = t->fields; f; f = f->next) {
        if (f->type) sdl_type_name(v, f->type);
        check_dirs(v, f->dirs, field_loc[t->kind]);
        for (const gql_fdef_t *a = f->args; a; a = a->next) {
            if (a->type) sdl_type_name(v, a->type);
            check_dirs(v, a->dirs, DL_ARGUMENT_DEFINITION);
        }
    }
}

/* ---- subscriptions ---- */

/* The root fields as graphql-js's collectFields gathers them for SingleFieldSubscriptionsRule:
 * @skip/@include applied (a variable counts as not given), fragments only on the root type
 * itself, each fragment once. */
static void root_fields(vctx_t *v, const gql_sel_t *sels, const gql_stype_t *root, fset_t *out,
                        int depth)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (--v->budget < 0 || depth > GQL_MAX_NESTING) return;
        if (!hr_gql_included(sel->dirs, NULL)) continue;
        if (sel->kind == SEL_FIELD) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 16;
                out->e = hr_xrealloc(out->e, out->cap * sizeof *out->e);
            }
            out->e[out->n++] = (fent_t){sel->alias ? sel->alias : sel->name, sel, root, NULL};
        } else if (sel->kind == SEL_INLINE) {
            if (sel->type_cond && hr_gql_type_visible(v->s, sel->type_cond) != root) continue;
            root_fields(v, sel->sels, root, out, depth + 1);
        } else {
            gql_fragment_t *f = frag_find(v->doc, sel->name);
            if (!f || f->visit == v->walk || f->on != root) continue;
            f->visit = v->walk;
            root_fields(v, f->sels, root, out, depth + 1);
        }
    }
}

static void single_root_field(vctx_t *v, const gql_operation_t *op)
{
    fset_t fs = {0};
    long budget = v->budget;
    v->walk++;
    root_fields(v, op->sels, v->s->subscription, &fs, 0);
    v->budget = budget;
    char who[300];
    if (op->name)
        snprintf(who, sizeof who, "Subscription \"%s\"", op->name);
    else
        snprintf(who, sizeof who, "Anonymous Subscription");
    /* Response keys in the order they first appear; the fields of every key after the first. */
    int reported = 0;
    for (size_t i = 0; i < fs.n; i++) {
        size_t first = 0;
        while (strcmp(fs.e[first].key, fs.e[i].key) != 0)
            first++;
        if (first == 0) continue; /* the first key */
        /* Listed group by group: the fields of this key when i is its first field. */
        if (first != i) continue;
        for (size_t j = i; j < fs.n; j++) {
            if (strcmp(fs.e[j].key, fs.e[i].key) != 0) continue;
            if (!reported) {
                verr(v, fs.e[j].sel->line, fs.e[j].sel->col,
                     "%s must select only one top level field.", who);
                reported = 1;
            } else {
                vloc(v, fs.e[j].sel->line, fs.e[j].sel->col);
            }
        }
    }
    for (size_t i = 0; i < fs.n; i++) {
        size_t first = 0;
        while (strcmp(fs.e[first].key, fs.e[i].key) != 0)
            first++;
        if (first != i || strncmp(fs.e[i].sel->name, "__", 2) != 0) continue;
        verr(v, fs.e[i].sel->line, fs.e[i].sel->col,
             "%s must not select an introspection top level field.", who);
        for (size_t j = i + 1; j < fs.n; j++)
            if (strcmp(fs.e[j].key, fs.e[i].key) == 0) vloc(v, fs.e[j].sel->line, fs.e[j].sel->col);
    }
    free(fs.e);
}

/* ---- the document ---- */

int hr_gql_validate(const hr_gql_schema_t *s, gql_arena_t *arena, gql_doc_t *doc, json_t *errors)
{
    vctx_t v = {.s = s, .a = arena, .doc = doc, .errors = errors, .budget = OVERLAP_BUDGET};
    size_t nops = 0;
    for (const gql_tdef_t *t = doc->tdefs; t; t = t->next) {
        if (t->kind == TD_SCHEMA)
            verr(&v, t->line, t->col, "The schema definition is not executable.");
        else
            verr(&v, t->line, t->col, "The \"%s\" definition is not executable.", t->name);
        sdl_type_names(&v, t);
    }
    for (gql_operation_t *op = doc->ops; op; op = op->next)
        nops++;
    /* Operations: names, roots, subscriptions. */
    for (gql_operation_t *op = doc->ops; op; op = op->next) {
        if (!op->name && nops > 1)
            verr(&v, op->line, op->col,
                 "This anonymous operation must be the only defined operation.");
        if (op->name)
            for (gql_operation_t *o = doc->ops; o != op; o = o->next)
                if (o->name && strcmp(o->name, op->name) == 0) {
                    verr(&v, o->name_line, o->name_col,
                         "There can be only one operation named \"%s\".", op->name);
                    vloc(&v, op->name_line, op->name_col);
                    break;
                }
    }
    /* Fragments: names and type conditions. */
    for (gql_fragment_t *f = doc->frags; f; f = f->next) {
        for (gql_fragment_t *g = doc->frags; g != f; g = g->next)
            if (strcmp(g->name, f->name) == 0) {
                verr(&v, g->name_line, g->name_col, "There can be only one fragment named \"%s\".",
                     f->name);
                vloc(&v, f->name_line, f->name_col);
                break;
            }
        const gql_stype_t *on = hr_gql_type_visible(s, f->type_cond);
        if (!on)
            unknown_type(&v, f->type_cond, f->tc_line, f->tc_col);
        else if (on->kind != K_OBJECT)
            verr(&v, f->tc_line, f->tc_col,
                 "Fragment \"%s\" cannot condition on non composite type \"%s\".", f->name,
                 on->name);
        else
            f->on = on;
    }
    for (gql_operation_t *op = doc->ops; op && !v.stopped; op = op->next) {
        static const int locs[] = {DL_QUERY, DL_MUTATION, DL_SUBSCRIPTION};
        static const char *const kinds[] = {"query", "mutation", "subscription"};
        operation_var_defs(&v, op);
        check_dirs(&v, op->dirs, locs[op->kind]);
        const gql_stype_t *root = op->kind == HR_GQL_QUERY      ? s->query
                                  : op->kind == HR_GQL_MUTATION ? s->mutation
                                                                : s->subscription;
        if (!root) {
            verr(&v, op->line, op->col, "Schema is not configured to execute %s operation.",
                 kinds[op->kind]);
            untyped_selections(&v, op->sels, 0);
            continue;
        }
        selections(&v, op->sels, root);
    }
    for (gql_fragment_t *f = doc->frags; f && !v.stopped; f = f->next) {
        check_dirs(&v, f->dirs, DL_FRAGMENT_DEFINITION);
        if (f->on)
            selections(&v, f->sels, f->on);
        else
            untyped_selections(&v, f->sels, 0);
    }
    /* Subscriptions: one root field, not an introspection one. */
    for (gql_operation_t *op = doc->ops; op && !v.stopped; op = op->next)
        if (op->kind == HR_GQL_SUBSCRIPTION) single_root_field(&v, op);
    /* Fragments: cycles. */
    fragment_cycles(&v);
    /* Variables, per operation (the walk also marks the fragments operations reach). */
    for (gql_operation_t *op = doc->ops; op && !v.stopped; op = op->next)
        operation_vars(&v, op);
    free(v.uses);
    for (gql_fragment_t *f = doc->frags; f; f = f->next) {
        /* Used by name: a duplicate of a used fragment counts as used. */
        int used = 0;
        for (gql_fragment_t *g = doc->frags; g && !used; g = g->next)
            used = g->visit && strcmp(g->name, f->name) == 0;
        if (!used) verr(&v, f->line, f->col, "Fragment \"%s\" is never used.", f->name);
    }
    /* Fields that share a response key, in operations and fragments. */
    for (gql_operation_t *op = doc->ops; op && !v.stopped; op = op->next) {
        const gql_stype_t *root = op->kind == HR_GQL_QUERY      ? s->query
                                  : op->kind == HR_GQL_MUTATION ? s->mutation
                                                                : s->subscription;
        overlap_walk(&v, op->sels, root, 1, 0);
    }
    for (gql_fragment_t *f = doc->frags; f && !v.stopped; f = f->next)
        overlap_walk(&v, f->sels, f->on, 1, 0);
    return v.nerr + v.stopped;
}
