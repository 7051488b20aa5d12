/* validate.c: the specification's validation rules, against the schema.
 *
 * Pass 1 walks every operation and fragment once: type conditions, fields on their type
 * (the AST gets each field's definition, each spread its fragment), arguments (known, unique,
 * required, values of the correct type), directives (known, where allowed, unique), leaf and
 * composite selections, fragment spreads possible, variable definitions (unique, input types,
 * defaults). Pass 2 works on the whole document: operation names unique, a lone anonymous
 * operation, one root field per subscription, fragments used and without cycles, and per
 * operation the variables each one reaches (through its fragments): defined, used, and of a
 * type allowed where they are used. Pass 3, only when all else is clean, checks that fields
 * sharing a response key can merge (same field, same arguments), with a work budget so that
 * fragment fan-out cannot make it slow; the selection cap of hr_gql_prepare bounds the rest.
 *
 * Without interfaces and unions every selection set has exactly one object type, so a fragment
 * spread is possible only on its own type condition. Messages are graphql-js 16's; errors stop
 * at 100, as graphql-js's do. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hr_gql_error_add(v->errors, line, col, GQL_VALIDATION, "%s", msg);
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

static void check_args(vctx_t *v, const gql_arg_t *args, const gql_sinput_t *defs, size_t ndefs,
                       const char *owner, int is_dir, int line, int col)
{
    for (const gql_arg_t *a = args; a; a = a->next) {
        for (const gql_arg_t *b = args; b != a; b = b->next)
            if (strcmp(a->name, b->name) == 0) {
                verr(v, b->line, b->col, "There can be only one argument named \"%s\".", a->name);
                vloc(v, a->line, a->col);
                break;
            }
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

static gql_fragment_t *frag_find(gql_doc_t *doc, const char *name)
{
    for (gql_fragment_t *f = doc->frags; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
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
        /* The arguments' values are still checked for duplicate input fields. */
        for (const gql_arg_t *a = sel->args; a; a = a->next)
            unique_input_fields(v, a->value);
        return;
    }
    sel->def = f;
    const gql_stype_t *t = hr_gql_tref_named(f->type);
    char tb[256];
    int leaf = hr_gql_is_leaf(t);
    if (leaf && sel->has_sels)
        verr(v, sel->ss_line, sel->ss_col,
             "Field \"%s\" must not have a selection since type \"%s\" has no subfields.",
             sel->name, hr_gql_tref_str(f->type, tb, sizeof tb));
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
                verr(v, sel->line + 0, sel->col + 3, "Unknown fragment \"%s\".", sel->name);
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
                    continue;
                }
                if (on->kind != K_OBJECT) {
                    verr(v, sel->tc_line, sel->tc_col,
                         "Fragment cannot condition on non composite type \"%s\".", on->name);
                    continue;
                }
                if (on != parent) {
                    verr(v, sel->line, sel->col,
                         "Fragment cannot be spread here as objects of type \"%s\" can never be "
                         "of type \"%s\".",
                         parent->name, on->name);
                    continue;
                }
            }
            sel->on = on;
            selections(v, sel->sels, on);
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
        for (const gql_value_t *i = val->items; i; i = i->next)
            value_uses(v, i, u && u->kind == TY_LIST ? u->of : NULL, 0, NULL);
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
        for (gql_vardef_t *e = op->vars; e != d; e = e->next)
            if (strcmp(e->name, d->name) == 0) {
                verr(v, e->line + 0, e->col + 1, "There can be only one variable named \"$%s\".",
                     d->name);
                vloc(v, d->line, d->col + 1);
                break;
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
        gql_vardef_t *d = op->vars;
        while (d && strcmp(d->name, u->name) != 0)
            d = d->next;
        if (!d) {
            if (op->name)
                verr(v, u->line, u->col, "Variable \"$%s\" is not defined by operation \"%s\".",
                     u->name, op->name);
            else
                verr(v, u->line, u->col, "Variable \"$%s\" is not defined.", u->name);
            vloc(v, op->line, op->col);
            continue;
        }
        for (gql_vardef_t *e = d; e; e = e->next)
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

typedef struct spread_stack {
    const gql_sel_t *spread;
    struct spread_stack *up;
} spread_stack_t;

static void cycles_sels(vctx_t *v, gql_fragment_t *root, spread_stack_t *stack,
                        const gql_sel_t *sels)
{
    for (const gql_sel_t *sel = sels; sel && !v->stopped; sel = sel->next) {
        if (sel->kind != SEL_SPREAD) {
            cycles_sels(v, root, stack, sel->sels);
            continue;
        }
        gql_fragment_t *f = sel->frag;
        if (!f) continue;
        spread_stack_t top = {sel, stack};
        if (f == root) {
            /* The path from root back to itself. */
            char via[512] = "";
            size_t at = 0, n = 0;
            const spread_stack_t *path[64];
            for (const spread_stack_t *s = stack; s && n < 64; s = s->up)
                path[n++] = s;
            for (size_t i = n; i-- > 0;)
                if (at < sizeof via)
                    at += (size_t)snprintf(via + at, sizeof via - at, "%s\"%s\"",
                                           i == n - 1 ? " via " : ", ", path[i]->spread->name);
            verr(v, n ? path[n - 1]->spread->line : sel->line,
                 n ? path[n - 1]->spread->col : sel->col,
                 "Cannot spread fragment \"%s\" within itself%s.", root->name, via);
            for (size_t i = n - 1; n && i-- > 0;)
                vloc(v, path[i]->spread->line, path[i]->spread->col);
            if (n) vloc(v, sel->line, sel->col);
            continue;
        }
        if (f->state != 0) continue; /* on the stack (a cycle not through root) or done */
        f->state = 1;
        cycles_sels(v, root, &top, f->sels);
    }
}

static void fragment_cycles(vctx_t *v)
{
    /* For each fragment, look for a path back to it through fragments not checked yet (so each
     * cycle is reported once, from its first fragment in document order). */
    for (gql_fragment_t *root = v->doc->frags; root && !v->stopped; root = root->next) {
        for (gql_fragment_t *f = v->doc->frags; f; f = f->next)
            if (f->state == 1) f->state = 0;
        root->state = 1;
        cycles_sels(v, root, NULL, root->sels);
        root->state = 2;
    }
}

/* ---- overlapping fields ---- */

/* A field in a merged selection set; parent is the field whose selection set it came from. */
typedef struct fent {
    const char *key;
    const gql_sel_t *sel;
    const struct fent *parent;
} fent_t;

typedef struct fset {
    fent_t *e;
    size_t n, cap;
} fset_t;

static void collect(vctx_t *v, const gql_sel_t *sels, const fent_t *parent, fset_t *out, int depth)
{
    for (const gql_sel_t *sel = sels; sel; sel = sel->next) {
        if (--v->budget < 0 || depth > GQL_MAX_NESTING) return;
        if (sel->kind == SEL_FIELD) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 16;
                out->e = hr_xrealloc(out->e, out->cap * sizeof *out->e);
            }
            out->e[out->n++] = (fent_t){sel->alias ? sel->alias : sel->name, sel, parent};
        } else if (sel->kind == SEL_INLINE) {
            collect(v, sel->sels, parent, out, depth + 1);
        } else if (sel->frag) {
            collect(v, sel->frag->sels, parent, out, depth + 1);
        }
    }
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
        if (!y) return 0;
        char p1[512], p2[512];
        hr_gql_print_value(x->value, p1, sizeof p1);
        hr_gql_print_value(y->value, p2, sizeof p2);
        if (strcmp(p1, p2) != 0) return 0;
    }
    return 1;
}

/* Reports a conflict between a and b as graphql-js words it: from the outermost pair of
 * different fields whose sub-selections led to it ("Fields "e" conflict because subfields "x"
 * conflict because …"), with the locations of each side's chain. */
static void report_conflict(vctx_t *v, const fent_t *a, const fent_t *b, const char *reason)
{
    const fent_t *ca[GQL_MAX_NESTING + 2], *cb[GQL_MAX_NESTING + 2];
    size_t n = 0;
    for (const fent_t *x = a, *y = b; x && y && x != y && n < GQL_MAX_NESTING + 2;
         x = x->parent, y = y->parent) {
        ca[n] = x;
        cb[n] = y;
        n++;
    }
    char msg[1024];
    size_t at =
        (size_t)snprintf(msg, sizeof msg, "Fields \"%s\" conflict because ", ca[n - 1]->key);
    for (size_t i = n - 1; i-- > 0 && at < sizeof msg;)
        at += (size_t)snprintf(msg + at, sizeof msg - at, "subfields \"%s\" conflict because ",
                               ca[i]->key);
    if (at < sizeof msg)
        snprintf(msg + at, sizeof msg - at,
                 "%s. Use different aliases on the fields to fetch both if this was intentional.",
                 reason);
    verr(v, ca[n - 1]->sel->line, ca[n - 1]->sel->col, "%s", msg);
    for (size_t i = n - 1; i-- > 0;)
        vloc(v, ca[i]->sel->line, ca[i]->sel->col);
    for (size_t i = n; i-- > 0;)
        vloc(v, cb[i]->sel->line, cb[i]->sel->col);
}

typedef struct keyed {
    const char *key;
    size_t idx; /* in the fset */
} keyed_t;

static int by_key(const void *x, const void *y)
{
    const keyed_t *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* A run of fields sharing a response key: ord[start, end); first is where the key is first
 * written. */
typedef struct run {
    size_t start, end, first;
} run_t;

static int by_first(const void *x, const void *y)
{
    const run_t *a = x, *b = y;
    return (a->first > b->first) - (a->first < b->first);
}

/* Checks the fields of the given selection sets (merged, as execution merges them). Fields are
 * grouped by response key by sorting, so a wide selection set costs n log n, not n². */
static void overlap(vctx_t *v, const gql_sel_t *const *sets, const fent_t *const *parents,
                    size_t nsets, int depth)
{
    fset_t fs = {0};
    for (size_t i = 0; i < nsets; i++)
        collect(v, sets[i], parents[i], &fs, 0);
    if (!fs.n) return;
    keyed_t *ord = hr_xmalloc(fs.n * sizeof *ord);
    for (size_t i = 0; i < fs.n; i++)
        ord[i] = (keyed_t){fs.e[i].key, i};
    qsort(ord, fs.n, sizeof *ord, by_key);
    run_t *runs = hr_xmalloc(fs.n * sizeof *runs);
    size_t nruns = 0;
    for (size_t i = 0; i < fs.n; i++) {
        if (i == 0 || strcmp(ord[i].key, ord[i - 1].key) != 0)
            runs[nruns++] = (run_t){i, i, ord[i].idx};
        runs[nruns - 1].end = i + 1;
    }
    qsort(runs, nruns, sizeof *runs, by_first); /* conflicts reported in document order */
    for (size_t r = 0; r < nruns && v->budget > 0 && !v->stopped; r++) {
        const fent_t *a = &fs.e[ord[runs[r].start].idx];
        const gql_sel_t **subs = NULL;
        const fent_t **subp = NULL;
        size_t nsubs = 0;
        int conflict = 0;
        for (size_t k = runs[r].start; k < runs[r].end; k++) {
            const fent_t *b = &fs.e[ord[k].idx];
            v->budget--;
            if (b != a && !conflict) {
                char reason[512];
                if (strcmp(a->sel->name, b->sel->name) != 0) {
                    snprintf(reason, sizeof reason, "\"%s\" and \"%s\" are different fields",
                             a->sel->name, b->sel->name);
                    report_conflict(v, a, b, reason);
                    conflict = 1;
                } else if (!same_args(a->sel->args, b->sel->args)) {
                    report_conflict(v, a, b, "they have differing arguments");
                    conflict = 1;
                }
            }
            if (b->sel->sels) {
                subs = hr_xrealloc(subs, (nsubs + 1) * sizeof *subs);
                subp = hr_xrealloc(subp, (nsubs + 1) * sizeof *subp);
                subs[nsubs] = b->sel->sels;
                subp[nsubs++] = b;
            }
        }
        if (!conflict && nsubs && depth < GQL_MAX_NESTING) overlap(v, subs, subp, nsubs, depth + 1);
        free(subs);
        free(subp);
    }
    free(runs);
    free(ord);
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
            continue;
        }
        selections(&v, op->sels, root);
    }
    for (gql_fragment_t *f = doc->frags; f && !v.stopped; f = f->next) {
        check_dirs(&v, f->dirs, DL_FRAGMENT_DEFINITION);
        if (f->on) selections(&v, f->sels, f->on);
    }
    /* Subscriptions: one root field, not an introspection one (fragments followed). */
    for (gql_operation_t *op = doc->ops; op && !v.stopped; op = op->next) {
        if (op->kind != HR_GQL_SUBSCRIPTION) continue;
        fset_t fs = {0};
        long budget = v.budget;
        collect(&v, op->sels, NULL, &fs, 0);
        v.budget = budget;
        /* More than one response key? (No need to count them.) */
        size_t other = 0;
        for (size_t i = 1; i < fs.n && !other; i++)
            if (strcmp(fs.e[i].key, fs.e[0].key) != 0) other = i;
        char who[300];
        if (op->name)
            snprintf(who, sizeof who, "Subscription \"%s\"", op->name);
        else
            snprintf(who, sizeof who, "Anonymous Subscription");
        if (other)
            verr(&v, fs.e[other].sel->line, fs.e[other].sel->col,
                 "%s must select only one top level field.", who);
        for (size_t i = 0; i < fs.n; i++)
            if (strncmp(fs.e[i].sel->name, "__", 2) == 0) {
                verr(&v, fs.e[i].sel->line, fs.e[i].sel->col,
                     "%s must not select an introspection top level field.", who);
                break;
            }
        free(fs.e);
    }
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
    /* Fields that share a response key. */
    if (v.nerr == 0) {
        for (gql_operation_t *op = doc->ops; op && !v.stopped; op = op->next) {
            const gql_sel_t *set = op->sels;
            const fent_t *none = NULL;
            overlap(&v, &set, &none, 1, 0);
        }
    }
    return v.nerr + v.stopped;
}
