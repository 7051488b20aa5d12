/* schema.c: the type system, built from SDL text (hr_gql_schema_new).
 *
 * The built-in part (the specified scalars, directives and introspection types, written in SDL
 * in introspect.c) is parsed first, then the caller's SDL, into one arena owned by the schema:
 *   1. every type definition becomes a gql_stype_t (duplicates and "__" names refused);
 *   2. fields, arguments and input fields get their types resolved (outputs must be output
 *      types, inputs input types), their defaults coerced to JSON and printed back as GraphQL
 *      literals, and @deprecated / @specifiedBy / @oneOf applied;
 *   3. the root types are taken from `schema {}` or the names Query, Mutation, Subscription;
 *   4. the resolver table is bound to fields (a resolver naming nothing is an error).
 * Lookups are linear: a schema has tens of types and a type tens of fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "gql/gql_int.h"

gql_stype_t *hr_gql_type_find(const hr_gql_schema_t *s, const char *name)
{
    for (size_t i = 0; i < s->ntypes; i++)
        if (strcmp(s->types[i]->name, name) == 0) return s->types[i];
    return NULL;
}

gql_stype_t *hr_gql_type_visible(const hr_gql_schema_t *s, const char *name)
{
    gql_stype_t *t = hr_gql_type_find(s, name);
    return t && t->builtin && t->kind == K_SCALAR && !t->referenced ? NULL : t;
}

const gql_sdir_t *hr_gql_dir_find(const hr_gql_schema_t *s, const char *name)
{
    for (size_t i = 0; i < s->ndirs; i++)
        if (strcmp(s->dirs[i].name, name) == 0) return &s->dirs[i];
    return NULL;
}

const gql_sfield_t *hr_gql_field_find(const hr_gql_schema_t *s, const gql_stype_t *t,
                                      const char *name)
{
    if (!t || t->kind != K_OBJECT) return NULL;
    if (name[0] == '_' && name[1] == '_') {
        if (strcmp(name, "__typename") == 0) return &s->typename_field;
        if (t == s->query && strcmp(name, "__schema") == 0) return &s->schema_field;
        if (t == s->query && strcmp(name, "__type") == 0) return &s->type_field;
    }
    for (size_t i = 0; i < t->nfields; i++)
        if (strcmp(t->fields[i].name, name) == 0) return &t->fields[i];
    return NULL;
}

const gql_sinput_t *hr_gql_input_find(const gql_sinput_t *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) return &v[i];
    return NULL;
}

const gql_senum_t *hr_gql_enum_find(const gql_stype_t *t, const char *name)
{
    for (size_t i = 0; i < t->nvalues; i++)
        if (strcmp(t->values[i].name, name) == 0) return &t->values[i];
    return NULL;
}

gql_stype_t *hr_gql_tref_named(const gql_tref_t *t)
{
    while (t->kind != TY_NAMED)
        t = t->of;
    return t->type;
}

static void tref_str(const gql_tref_t *t, char *buf, size_t n, size_t *at)
{
    const char *pre = "", *post = "";
    if (t->kind == TY_LIST) pre = "[", post = "]";
    if (t->kind == TY_NONNULL) post = "!";
    if (*at < n) *at += (size_t)snprintf(buf + *at, n - *at, "%s", pre);
    if (t->kind == TY_NAMED) {
        if (*at < n) *at += (size_t)snprintf(buf + *at, n - *at, "%s", t->type->name);
    } else {
        tref_str(t->of, buf, n, at);
    }
    if (*at < n) *at += (size_t)snprintf(buf + *at, n - *at, "%s", post);
}

const char *hr_gql_tref_str(const gql_tref_t *t, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    tref_str(t, buf, n, &at);
    return buf;
}

static void type_str(const gql_type_t *t, char *buf, size_t n, size_t *at)
{
    const char *pre = "", *post = "";
    if (t->kind == TY_LIST) pre = "[", post = "]";
    if (t->kind == TY_NONNULL) post = "!";
    if (*at < n) *at += (size_t)snprintf(buf + *at, n - *at, "%s", pre);
    if (t->kind == TY_NAMED) {
        if (*at < n) *at += (size_t)snprintf(buf + *at, n - *at, "%s", t->name);
    } else {
        type_str(t->of, buf, n, at);
    }
    if (*at < n) *at += (size_t)snprintf(buf + *at, n - *at, "%s", post);
}

const char *hr_gql_type_str(const gql_type_t *t, char *buf, size_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    type_str(t, buf, n, &at);
    return buf;
}

gql_tref_t *hr_gql_tref_resolve(const hr_gql_schema_t *s, gql_arena_t *a, const gql_type_t *t)
{
    gql_tref_t *r = hr_gql_alloc(a, sizeof *r);
    r->kind = t->kind;
    if (t->kind == TY_NAMED) {
        r->type = hr_gql_type_find(s, t->name);
        return r->type ? r : NULL;
    }
    r->of = hr_gql_tref_resolve(s, a, t->of);
    return r->of ? r : NULL;
}

int hr_gql_is_input(const gql_stype_t *t)
{
    return t->kind == K_SCALAR || t->kind == K_ENUM || t->kind == K_INPUT;
}

int hr_gql_is_leaf(const gql_stype_t *t)
{
    return t->kind == K_SCALAR || t->kind == K_ENUM;
}

/* ---- building ---- */

extern const char hr_gql_builtin_sdl[];

typedef struct build {
    hr_gql_schema_t *s;
    hr_err_t *err;
    const char *what; /* "schema" or "built-in schema", for messages */
    int builtin;      /* building the built-in part (its names may start with __) */
} build_t;

static int reserved(const build_t *b, const char *name)
{
    return !b->builtin && name[0] == '_' && name[1] == '_';
}

static int parse_sdl(build_t *b, const char *sdl, gql_doc_t *doc)
{
    json_t *errors = json_array();
    int rc = hr_gql_parse(&b->s->arena, sdl, strlen(sdl), 1, 0, doc, errors);
    if (rc) {
        json_t *e = json_array_get(errors, 0);
        json_t *loc = json_array_get(json_object_get(e, "locations"), 0);
        hr_err_set(b->err, HR_EINVAL, "%s:%d:%d: %s", b->what,
                   (int)json_integer_value(json_object_get(loc, "line")),
                   (int)json_integer_value(json_object_get(loc, "column")),
                   json_string_value(json_object_get(e, "message")));
        rc = HR_EINVAL;
    }
    json_decref(errors);
    return rc;
}

static const gql_directive_t *dir_get(const gql_directive_t *d, const char *name)
{
    for (; d; d = d->next)
        if (strcmp(d->name, name) == 0) return d;
    return NULL;
}

static const gql_value_t *dir_arg(const gql_directive_t *d, const char *name)
{
    for (const gql_arg_t *a = d->args; a; a = a->next)
        if (strcmp(a->name, name) == 0) return a->value;
    return NULL;
}

/* Checks the directives on an SDL element: known, allowed here, arguments of the right type. */
static int check_dirs(build_t *b, const gql_directive_t *dirs, int loc, const char *where)
{
    for (const gql_directive_t *d = dirs; d; d = d->next) {
        const gql_sdir_t *def = hr_gql_dir_find(b->s, d->name);
        if (!def)
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: unknown directive \"@%s\"",
                              d->line, d->col, where, d->name);
        if (!(def->locations & (1u << loc)))
            return hr_err_set(b->err, HR_EINVAL,
                              "schema:%d:%d: %s: directive \"@%s\" may not be used on %s", d->line,
                              d->col, where, d->name, hr_gql_dl_names[loc]);
        for (const gql_arg_t *a = d->args; a; a = a->next) {
            const gql_sinput_t *ad = hr_gql_input_find(def->args, def->nargs, a->name);
            char msg[512];
            json_t *v = NULL;
            if (!ad)
                return hr_err_set(b->err, HR_EINVAL,
                                  "schema:%d:%d: %s: unknown argument \"%s\" on \"@%s\"", a->line,
                                  a->col, where, a->name, d->name);
            if (hr_gql_coerce_literal(ad->type, a->value, NULL, &v, msg, sizeof msg))
                return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: @%s(%s:): %s", a->line,
                                  a->col, where, d->name, a->name, msg);
            json_decref(v);
        }
        for (size_t i = 0; i < def->nargs; i++)
            if (def->args[i].type->kind == TY_NONNULL && !def->args[i].def &&
                !dir_arg(d, def->args[i].name))
                return hr_err_set(b->err, HR_EINVAL,
                                  "schema:%d:%d: %s: @%s needs the argument \"%s\"", d->line,
                                  d->col, where, d->name, def->args[i].name);
    }
    return 0;
}

static const char *deprecation(build_t *b, const gql_directive_t *dirs)
{
    const gql_directive_t *d = dir_get(dirs, "deprecated");
    if (!d) return NULL;
    const gql_value_t *r = dir_arg(d, "reason");
    if (r && r->kind == V_STRING) return r->s;
    if (r && r->kind == V_NULL) return NULL;
    (void)b;
    return "No longer supported";
}

static int input_values(build_t *b, const gql_fdef_t *defs, gql_sinput_t **out, size_t *nout,
                        int loc, const char *owner)
{
    size_t n = 0;
    for (const gql_fdef_t *f = defs; f; f = f->next)
        n++;
    gql_sinput_t *v = hr_gql_alloc(&b->s->arena, (n ? n : 1) * sizeof *v);
    size_t i = 0;
    for (const gql_fdef_t *f = defs; f; f = f->next, i++) {
        char where[300];
        snprintf(where, sizeof where, "%s(%s:)", owner, f->name);
        if (hr_gql_input_find(v, i, f->name))
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: defined twice", f->line, f->col,
                              where);
        if (reserved(b, f->name))
            return hr_err_set(b->err, HR_EINVAL,
                              "schema:%d:%d: %s: names starting with \"__\" are reserved", f->line,
                              f->col, where);
        v[i].name = f->name;
        v[i].desc = f->desc;
        v[i].type = hr_gql_tref_resolve(b->s, &b->s->arena, f->type);
        if (!v[i].type) {
            char t[256];
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: unknown type \"%s\"",
                              f->type->line, f->type->col, where,
                              hr_gql_type_str(f->type, t, sizeof t));
        }
        if (!hr_gql_is_input(hr_gql_tref_named(v[i].type)))
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: \"%s\" is not an input type",
                              f->type->line, f->type->col, where,
                              hr_gql_tref_named(v[i].type)->name);
        if (check_dirs(b, f->dirs, loc, where)) return HR_EINVAL;
        v[i].deprecated = deprecation(b, f->dirs);
        if (v[i].deprecated && v[i].type->kind == TY_NONNULL && !f->defval)
            return hr_err_set(b->err, HR_EINVAL,
                              "schema:%d:%d: %s: a required input cannot be deprecated", f->line,
                              f->col, where);
    }
    *out = v;
    *nout = n;
    return 0;
}

typedef struct first_error {
    char *msg;
    size_t n;
    int seen;
} first_error_t;

static void first_error(void *ud, int line, int col, const char *msg)
{
    first_error_t *fe = ud;
    (void)line;
    (void)col;
    if (!fe->seen++) snprintf(fe->msg, fe->n, "%s", msg);
}

/* Coerces the defaults once every type is known (an input's default may name enum values of
 * a type defined later). */
static int defaults(build_t *b, const gql_fdef_t *defs, gql_sinput_t *v, const char *owner)
{
    size_t i = 0;
    for (const gql_fdef_t *f = defs; f; f = f->next, i++) {
        if (!f->defval) continue;
        char msg[512];
        json_t *j = NULL;
        first_error_t fe = {msg, sizeof msg, 0};
        if (hr_gql_literal_check(v[i].type, f->defval, first_error, &fe) ||
            hr_gql_coerce_literal(v[i].type, f->defval, NULL, &j, msg, sizeof msg))
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s(%s:): default value: %s",
                              f->defval->line, f->defval->col, owner, f->name, msg);
        json_array_append_new(b->s->owned, j);
        v[i].def = j;
        char *text = hr_gql_print_json_literal(v[i].type, j);
        v[i].def_text = hr_gql_strndup(&b->s->arena, text, strlen(text));
        free(text);
    }
    return 0;
}

static int add_types(build_t *b, const gql_doc_t *doc, int builtin)
{
    for (const gql_tdef_t *t = doc->tdefs; t; t = t->next) {
        if (t->kind == TD_SCHEMA || t->kind == TD_DIRECTIVE) continue;
        if (hr_gql_type_find(b->s, t->name))
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: type \"%s\" is defined twice",
                              t->line, t->col, t->name);
        if (!builtin && t->name[0] == '_' && t->name[1] == '_')
            return hr_err_set(b->err, HR_EINVAL,
                              "schema:%d:%d: type \"%s\": names starting with \"__\" are "
                              "reserved",
                              t->line, t->col, t->name);
        gql_stype_t *st = hr_gql_alloc(&b->s->arena, sizeof *st);
        st->name = t->name;
        st->desc = t->desc;
        st->builtin = builtin;
        switch (t->kind) {
        case TD_OBJECT:
            st->kind = K_OBJECT;
            break;
        case TD_INPUT:
            st->kind = K_INPUT;
            break;
        case TD_ENUM:
            st->kind = K_ENUM;
            break;
        default:
            st->kind = K_SCALAR;
            break;
        }
        if (st->kind == K_SCALAR && builtin) {
            static const char *const names[] = {"", "Int", "Float", "String", "Boolean", "ID"};
            for (int k = 1; k < 6; k++)
                if (strcmp(names[k], t->name) == 0) st->scalar = (gql_scalar_t)k;
        }
        if (st->kind != K_SCALAR && !t->fields)
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: type \"%s\" has no %s", t->line,
                              t->col, t->name, st->kind == K_ENUM ? "values" : "fields");
        b->s->types = hr_xrealloc(b->s->types, (b->s->ntypes + 1) * sizeof *b->s->types);
        b->s->types[b->s->ntypes++] = st;
    }
    return 0;
}

static int add_directives(build_t *b, const gql_doc_t *doc)
{
    for (const gql_tdef_t *t = doc->tdefs; t; t = t->next) {
        if (t->kind != TD_DIRECTIVE) continue;
        if (hr_gql_dir_find(b->s, t->name))
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: directive \"@%s\" is defined twice",
                              t->line, t->col, t->name);
        b->s->dirs = hr_xrealloc(b->s->dirs, (b->s->ndirs + 1) * sizeof *b->s->dirs);
        gql_sdir_t *d = &b->s->dirs[b->s->ndirs];
        memset(d, 0, sizeof *d);
        d->name = t->name;
        d->desc = t->desc;
        d->locations = t->locations;
        d->order = t->order;
        d->nlocations = t->nlocations;
        d->repeatable = t->repeatable;
        char where[300];
        snprintf(where, sizeof where, "@%s", t->name);
        if (input_values(b, t->fields, &d->args, &d->nargs, DL_ARGUMENT_DEFINITION, where))
            return HR_EINVAL;
        b->s->ndirs++;
        if (defaults(b, t->fields, d->args, where)) return HR_EINVAL;
    }
    return 0;
}

static int fill_type(build_t *b, const gql_tdef_t *t)
{
    gql_stype_t *st = hr_gql_type_find(b->s, t->name);
    static const int locs[] = {[K_SCALAR] = DL_SCALAR,
                               [K_OBJECT] = DL_OBJECT,
                               [K_INPUT] = DL_INPUT_OBJECT,
                               [K_ENUM] = DL_ENUM};
    if (check_dirs(b, t->dirs, locs[st->kind], t->name)) return HR_EINVAL;
    if (st->kind == K_SCALAR) {
        const gql_directive_t *d = dir_get(t->dirs, "specifiedBy");
        const gql_value_t *u = d ? dir_arg(d, "url") : NULL;
        if (u && u->kind == V_STRING) st->specified_by = u->s;
        return 0;
    }
    if (st->kind == K_INPUT) {
        st->oneof = dir_get(t->dirs, "oneOf") != NULL;
        if (input_values(b, t->fields, &st->inputs, &st->ninputs, DL_INPUT_FIELD_DEFINITION,
                         t->name))
            return HR_EINVAL;
        size_t i = 0;
        for (const gql_fdef_t *f = t->fields; f && st->oneof; f = f->next, i++)
            if (st->inputs[i].type->kind == TY_NONNULL || f->defval)
                return hr_err_set(b->err, HR_EINVAL,
                                  "schema:%d:%d: %s.%s: the fields of a @oneOf input must be "
                                  "nullable and without a default",
                                  f->line, f->col, t->name, f->name);
        return 0;
    }
    size_t n = 0;
    for (const gql_fdef_t *f = t->fields; f; f = f->next)
        n++;
    if (st->kind == K_ENUM) {
        st->values = hr_gql_alloc(&b->s->arena, n * sizeof *st->values);
        size_t i = 0;
        for (const gql_fdef_t *f = t->fields; f; f = f->next, i++) {
            char where[300];
            snprintf(where, sizeof where, "%s.%s", t->name, f->name);
            if (hr_gql_enum_find(st, f->name))
                return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: defined twice", f->line,
                                  f->col, where);
            if (reserved(b, f->name))
                return hr_err_set(b->err, HR_EINVAL,
                                  "schema:%d:%d: %s: names starting with \"__\" are reserved",
                                  f->line, f->col, where);
            if (check_dirs(b, f->dirs, DL_ENUM_VALUE, where)) return HR_EINVAL;
            st->values[i].name = f->name;
            st->values[i].desc = f->desc;
            st->values[i].deprecated = deprecation(b, f->dirs);
            st->nvalues = i + 1;
        }
        return 0;
    }
    st->fields = hr_gql_alloc(&b->s->arena, n * sizeof *st->fields);
    size_t i = 0;
    for (const gql_fdef_t *f = t->fields; f; f = f->next, i++) {
        char where[300];
        snprintf(where, sizeof where, "%s.%s", t->name, f->name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(st->fields[k].name, f->name) == 0)
                return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: defined twice", f->line,
                                  f->col, where);
        if (reserved(b, f->name))
            return hr_err_set(b->err, HR_EINVAL,
                              "schema:%d:%d: %s: names starting with \"__\" are reserved", f->line,
                              f->col, where);
        gql_sfield_t *sf = &st->fields[i];
        sf->name = f->name;
        sf->desc = f->desc;
        sf->type = hr_gql_tref_resolve(b->s, &b->s->arena, f->type);
        if (!sf->type) {
            char ts[256];
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: %s: unknown type \"%s\"",
                              f->type->line, f->type->col, where,
                              hr_gql_type_str(f->type, ts, sizeof ts));
        }
        if (hr_gql_tref_named(sf->type)->kind == K_INPUT)
            return hr_err_set(
                b->err, HR_EINVAL, "schema:%d:%d: %s: \"%s\" is an input type, not an output type",
                f->type->line, f->type->col, where, hr_gql_tref_named(sf->type)->name);
        if (check_dirs(b, f->dirs, DL_FIELD_DEFINITION, where)) return HR_EINVAL;
        sf->deprecated = deprecation(b, f->dirs);
        if (input_values(b, f->args, &sf->args, &sf->nargs, DL_ARGUMENT_DEFINITION, where))
            return HR_EINVAL;
        st->nfields = i + 1;
    }
    return 0;
}

static int fill_defaults(build_t *b, const gql_tdef_t *t)
{
    gql_stype_t *st = hr_gql_type_find(b->s, t->name);
    if (st->kind == K_INPUT) return defaults(b, t->fields, st->inputs, t->name);
    if (st->kind != K_OBJECT) return 0;
    size_t i = 0;
    for (const gql_fdef_t *f = t->fields; f; f = f->next, i++) {
        char where[300];
        snprintf(where, sizeof where, "%s.%s", t->name, f->name);
        if (defaults(b, f->args, st->fields[i].args, where)) return HR_EINVAL;
    }
    return 0;
}

static void mark_tref(const gql_tref_t *t)
{
    hr_gql_tref_named(t)->referenced = 1;
}

/* An input object that needs itself through non-null fields can never be given (graphql-js's
 * assertValidSchema refuses it). state: 0 unseen, 1 on the path, 2 done. */
static int input_cycle(build_t *b, gql_stype_t *t, unsigned char *state, size_t depth)
{
    size_t idx = 0;
    while (b->s->types[idx] != t)
        idx++;
    if (state[idx] == 2) return 0;
    if (state[idx] == 1)
        return hr_err_set(b->err, HR_EINVAL,
                          "schema: input object \"%s\" refers to itself through non-null fields",
                          t->name);
    state[idx] = 1;
    for (size_t i = 0; i < t->ninputs && depth < 1000; i++) {
        const gql_tref_t *f = t->inputs[i].type;
        if (f->kind == TY_NONNULL && f->of->kind == TY_NAMED && f->of->type->kind == K_INPUT &&
            input_cycle(b, f->of->type, state, depth + 1))
            return HR_EINVAL;
    }
    state[idx] = 2;
    return 0;
}

static int roots(build_t *b, const gql_doc_t *doc)
{
    hr_gql_schema_t *s = b->s;
    const gql_tdef_t *sd = NULL;
    for (const gql_tdef_t *t = doc->tdefs; t; t = t->next) {
        if (t->kind != TD_SCHEMA) continue;
        if (sd)
            return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: schema is defined twice", t->line,
                              t->col);
        sd = t;
    }
    if (sd) {
        s->desc = sd->desc;
        if (check_dirs(b, sd->dirs, DL_SCHEMA, "schema")) return HR_EINVAL;
        for (const gql_fdef_t *f = sd->fields; f; f = f->next) {
            gql_stype_t *t = hr_gql_type_find(s, f->type->name);
            if (!t || t->kind != K_OBJECT)
                return hr_err_set(b->err, HR_EINVAL,
                                  "schema:%d:%d: the %s root \"%s\" is not an object type", f->line,
                                  f->col, f->name, f->type->name);
            gql_stype_t **slot = f->name[0] == 'q'   ? &s->query
                                 : f->name[0] == 'm' ? &s->mutation
                                                     : &s->subscription;
            if (*slot)
                return hr_err_set(b->err, HR_EINVAL, "schema:%d:%d: the %s root is given twice",
                                  f->line, f->col, f->name);
            *slot = t;
        }
    } else {
        static const char *const names[] = {"Query", "Mutation", "Subscription"};
        gql_stype_t **slots[] = {&s->query, &s->mutation, &s->subscription};
        for (int k = 0; k < 3; k++) {
            gql_stype_t *t = hr_gql_type_find(s, names[k]);
            if (t && t->kind != K_OBJECT)
                return hr_err_set(b->err, HR_EINVAL, "schema: %s is not an object type", names[k]);
            *slots[k] = t;
        }
    }
    if (!s->query) return hr_err_set(b->err, HR_EINVAL, "schema: no query root type (Query)");
    return 0;
}

int hr_gql_schema_new(const char *sdl, const hr_gql_resolver_t *resolvers, size_t nresolvers,
                      hr_gql_schema_t **out, hr_err_t *err)
{
    hr_gql_schema_t *s = hr_xcalloc(1, sizeof *s);
    s->owned = json_array();
    build_t b = {s, err, "built-in schema", 0};
    gql_doc_t bdoc, udoc;
    int rc = HR_EINVAL;
    *out = NULL;
    if (!sdl) sdl = "";
    if (parse_sdl(&b, hr_gql_builtin_sdl, &bdoc)) goto out;
    b.what = "schema";
    if (parse_sdl(&b, sdl, &udoc)) goto out;
    /* Types: the caller's in SDL order, then the built-in ones. */
    if (add_types(&b, &bdoc, 1)) goto out;
    {
        size_t nbuiltin = s->ntypes;
        if (add_types(&b, &udoc, 0)) goto out;
        /* Rotate so that user types come first. */
        gql_stype_t **t = hr_xmalloc(s->ntypes * sizeof *t);
        memcpy(t, s->types + nbuiltin, (s->ntypes - nbuiltin) * sizeof *t);
        memcpy(t + s->ntypes - nbuiltin, s->types, nbuiltin * sizeof *t);
        free(s->types);
        s->types = t;
    }
    /* Directives: the caller's first, then the specified ones (graphql-js's order). */
    if (add_directives(&b, &udoc)) goto out;
    b.builtin = 1;
    if (add_directives(&b, &bdoc)) goto out;
    b.builtin = 0;
    b.builtin = 1;
    for (const gql_tdef_t *t = bdoc.tdefs; t; t = t->next)
        if (t->kind != TD_SCHEMA && t->kind != TD_DIRECTIVE && fill_type(&b, t)) goto out;
    b.builtin = 0;
    for (const gql_tdef_t *t = udoc.tdefs; t; t = t->next)
        if (t->kind != TD_SCHEMA && t->kind != TD_DIRECTIVE && fill_type(&b, t)) goto out;
    for (const gql_tdef_t *t = bdoc.tdefs; t; t = t->next)
        if (t->kind != TD_SCHEMA && t->kind != TD_DIRECTIVE && fill_defaults(&b, t)) goto out;
    for (const gql_tdef_t *t = udoc.tdefs; t; t = t->next)
        if (t->kind != TD_SCHEMA && t->kind != TD_DIRECTIVE && fill_defaults(&b, t)) goto out;
    {
        unsigned char *state = hr_xcalloc(s->ntypes, 1);
        int bad = 0;
        for (size_t i = 0; i < s->ntypes && !bad; i++)
            if (s->types[i]->kind == K_INPUT) bad = input_cycle(&b, s->types[i], state, 0);
        free(state);
        if (bad) goto out;
    }
    if (roots(&b, &udoc)) goto out;
    /* Which specified scalars are in use (String and Boolean always are, by introspection). */
    for (size_t i = 0; i < s->ntypes; i++) {
        gql_stype_t *t = s->types[i];
        for (size_t k = 0; k < t->nfields; k++) {
            mark_tref(t->fields[k].type);
            for (size_t a = 0; a < t->fields[k].nargs; a++)
                mark_tref(t->fields[k].args[a].type);
        }
        for (size_t k = 0; k < t->ninputs; k++)
            mark_tref(t->inputs[k].type);
    }
    for (size_t i = 0; i < s->ndirs; i++)
        for (size_t a = 0; a < s->dirs[i].nargs; a++)
            mark_tref(s->dirs[i].args[a].type);
    /* The meta fields. */
    {
        gql_type_t str = {.kind = TY_NAMED, .name = "String"};
        gql_type_t strnn = {.kind = TY_NONNULL, .of = &str};
        gql_type_t sch = {.kind = TY_NAMED, .name = "__Schema"};
        gql_type_t schnn = {.kind = TY_NONNULL, .of = &sch};
        gql_type_t typ = {.kind = TY_NAMED, .name = "__Type"};
        s->typename_field.name = "__typename";
        s->typename_field.desc = "The name of the current Object type at runtime.";
        s->typename_field.type = hr_gql_tref_resolve(s, &s->arena, &strnn);
        s->typename_field.meta = 1;
        s->schema_field.name = "__schema";
        s->schema_field.desc = "Access the current type schema of this server.";
        s->schema_field.type = hr_gql_tref_resolve(s, &s->arena, &schnn);
        s->schema_field.meta = 1;
        s->type_field.name = "__type";
        s->type_field.desc = "Request the type information of a single type.";
        s->type_field.type = hr_gql_tref_resolve(s, &s->arena, &typ);
        s->type_field.meta = 1;
        s->type_field.args = hr_gql_alloc(&s->arena, sizeof *s->type_field.args);
        s->type_field.args[0].name = "name";
        s->type_field.args[0].type = hr_gql_tref_resolve(s, &s->arena, &strnn);
        s->type_field.nargs = 1;
    }
    for (size_t i = 0; i < nresolvers; i++) {
        const hr_gql_resolver_t *r = &resolvers[i];
        gql_stype_t *t = r->type ? hr_gql_type_find(s, r->type) : NULL;
        if (!t || t->kind != K_OBJECT || t->builtin) {
            hr_err_set(err, HR_EINVAL, "resolver %s.%s: no object type \"%s\"",
                       r->type ? r->type : "(null)", r->field ? r->field : "(null)",
                       r->type ? r->type : "(null)");
            goto out;
        }
        gql_sfield_t *f = NULL;
        for (size_t k = 0; k < t->nfields && r->field; k++)
            if (strcmp(t->fields[k].name, r->field) == 0) f = &t->fields[k];
        if (!f) {
            hr_err_set(err, HR_EINVAL, "resolver %s.%s: type %s has no field \"%s\"", r->type,
                       r->field ? r->field : "(null)", r->type, r->field ? r->field : "(null)");
            goto out;
        }
        f->fn = r->fn;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    hr_gql_schema_free(s);
    return rc;
}

void hr_gql_schema_free(hr_gql_schema_t *s)
{
    if (!s) return;
    hr_gql_arena_free(&s->arena);
    free(s->types);
    free(s->dirs);
    json_decref(s->owned);
    free(s);
}
