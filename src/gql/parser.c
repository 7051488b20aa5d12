/* parser.c: recursive descent from tokens to the AST of gql_int.h.
 *
 * Two languages share the grammar of values, types and directives:
 *   executable documents   operations (with variables, defaults, directives), fragments,
 *                          selections (fields with aliases and arguments, spreads, inline
 *                          fragments);
 *   the SDL subset         schema {}, type, input, enum, scalar and directive definitions, with
 *                          descriptions ("…" and """…"""), arguments, defaults and directives.
 * A syntax error stops the parse at once: it is recorded in graphql-js's words with the
 * offending token's line and column, and a longjmp returns to hr_gql_parse (everything built
 * so far lives in the arena, so nothing leaks). Recursion is capped at GQL_MAX_NESTING levels
 * (selection sets, list and object values, list types) so that no document can exhaust the
 * stack; the lexer caps the number of tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "gql/gql_int.h"

const char *const hr_gql_dl_names[DL_COUNT] = {
    "QUERY",
    "MUTATION",
    "SUBSCRIPTION",
    "FIELD",
    "FRAGMENT_DEFINITION",
    "FRAGMENT_SPREAD",
    "INLINE_FRAGMENT",
    "VARIABLE_DEFINITION",
    "SCHEMA",
    "SCALAR",
    "OBJECT",
    "FIELD_DEFINITION",
    "ARGUMENT_DEFINITION",
    "INTERFACE",
    "UNION",
    "ENUM",
    "ENUM_VALUE",
    "INPUT_OBJECT",
    "INPUT_FIELD_DEFINITION",
    "DIRECTIVE_DEFINITION",
};

typedef struct parser {
    gql_lexer_t lx;
    gql_token_t tok; /* the current token (one of lookahead) */
    gql_arena_t *a;
    int sdl;
    int depth; /* current nesting */
    json_t *errors;
    int rc;
    jmp_buf jb;
} parser_t;

static const char *kind_desc(gql_tok_kind_t k)
{
    switch (k) {
    case TK_EOF:
        return "<EOF>";
    case TK_BANG:
        return "\"!\"";
    case TK_DOLLAR:
        return "\"$\"";
    case TK_AMP:
        return "\"&\"";
    case TK_LPAREN:
        return "\"(\"";
    case TK_RPAREN:
        return "\")\"";
    case TK_SPREAD:
        return "\"...\"";
    case TK_COLON:
        return "\":\"";
    case TK_EQUALS:
        return "\"=\"";
    case TK_AT:
        return "\"@\"";
    case TK_LBRACKET:
        return "\"[\"";
    case TK_RBRACKET:
        return "\"]\"";
    case TK_LBRACE:
        return "\"{\"";
    case TK_PIPE:
        return "\"|\"";
    case TK_RBRACE:
        return "\"}\"";
    case TK_NAME:
        return "Name";
    case TK_INT:
        return "Int";
    case TK_FLOAT:
        return "Float";
    case TK_STRING:
        return "String";
    case TK_BLOCK_STRING:
        return "BlockString";
    }
    return "?";
}

/* A token as messages name it: Name "x", String "…" (a string past 1,000 bytes is cut short;
 * graphql-js quotes it whole). */
#define TOKEN_DESC 1100

static void tok_desc(const gql_token_t *t, char *buf, size_t n)
{
    if (t->kind >= TK_NAME)
        snprintf(buf, n, "%s \"%.*s\"", kind_desc(t->kind), t->len > 1000 ? 1000 : (int)t->len,
                 t->value);
    else
        snprintf(buf, n, "%s", kind_desc(t->kind));
}

static void die(parser_t *p, int line, int col, int limit, const char *fmt, ...)
    __attribute__((format(printf, 5, 6), noreturn));
static void die(parser_t *p, int line, int col, int limit, const char *fmt, ...)
{
    char msg[TOKEN_DESC + 200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hr_gql_error_add(p->errors, line, col, limit ? GQL_LIMIT : GQL_PARSE, "%s", msg);
    p->rc = limit ? HR_E2BIG : HR_EINVAL;
    longjmp(p->jb, 1);
}

static void advance(parser_t *p)
{
    if (hr_gql_lex(&p->lx, &p->tok))
        die(p, p->lx.err_line, p->lx.err_col, p->lx.err_limit, "Syntax Error: %s", p->lx.err);
}

static void unexpected(parser_t *p)
{
    char d[TOKEN_DESC];
    tok_desc(&p->tok, d, sizeof d);
    die(p, p->tok.line, p->tok.col, 0, "Syntax Error: Unexpected %s.", d);
}

static int peek_kind(parser_t *p, gql_tok_kind_t k)
{
    return p->tok.kind == k;
}

static int peek_keyword(parser_t *p, const char *kw)
{
    return p->tok.kind == TK_NAME && strcmp(p->tok.value, kw) == 0;
}

static void expect(parser_t *p, gql_tok_kind_t k)
{
    if (p->tok.kind != k) {
        char d[TOKEN_DESC];
        tok_desc(&p->tok, d, sizeof d);
        die(p, p->tok.line, p->tok.col, 0, "Syntax Error: Expected %s, found %s.", kind_desc(k), d);
    }
    advance(p);
}

static int skip(parser_t *p, gql_tok_kind_t k)
{
    if (p->tok.kind != k) return 0;
    advance(p);
    return 1;
}

static void expect_keyword(parser_t *p, const char *kw)
{
    if (!peek_keyword(p, kw)) {
        char d[TOKEN_DESC];
        tok_desc(&p->tok, d, sizeof d);
        die(p, p->tok.line, p->tok.col, 0, "Syntax Error: Expected \"%s\", found %s.", kw, d);
    }
    advance(p);
}

static const char *name(parser_t *p, int *line, int *col)
{
    if (line) *line = p->tok.line;
    if (col) *col = p->tok.col;
    const char *v = p->tok.value;
    expect(p, TK_NAME);
    return v;
}

static void enter(parser_t *p)
{
    if (++p->depth > GQL_MAX_NESTING)
        die(p, p->tok.line, p->tok.col, 1, "Document nests deeper than %d levels. Parsing aborted.",
            GQL_MAX_NESTING);
}

static gql_value_t *value(parser_t *p, int is_const)
{
    gql_value_t *v = hr_gql_alloc(p->a, sizeof *v);
    v->line = p->tok.line;
    v->col = p->tok.col;
    switch (p->tok.kind) {
    case TK_LBRACKET: {
        enter(p);
        advance(p);
        v->kind = V_LIST;
        gql_value_t **tail = &v->items;
        while (!skip(p, TK_RBRACKET)) {
            *tail = value(p, is_const);
            tail = &(*tail)->next;
        }
        p->depth--;
        return v;
    }
    case TK_LBRACE: {
        enter(p);
        advance(p);
        v->kind = V_OBJECT;
        gql_value_t **tail = &v->items;
        while (!skip(p, TK_RBRACE)) {
            int l, c;
            const char *n = name(p, &l, &c);
            expect(p, TK_COLON);
            *tail = value(p, is_const);
            (*tail)->name = n;
            (*tail)->name_line = l;
            (*tail)->name_col = c;
            tail = &(*tail)->next;
        }
        p->depth--;
        return v;
    }
    case TK_INT:
        v->kind = V_INT;
        v->s = p->tok.value;
        advance(p);
        return v;
    case TK_FLOAT:
        v->kind = V_FLOAT;
        v->s = p->tok.value;
        advance(p);
        return v;
    case TK_STRING:
    case TK_BLOCK_STRING:
        v->kind = V_STRING;
        v->s = p->tok.value;
        v->len = p->tok.len;
        advance(p);
        return v;
    case TK_NAME:
        if (strcmp(p->tok.value, "true") == 0 || strcmp(p->tok.value, "false") == 0) {
            v->kind = V_BOOL;
            v->b = p->tok.value[0] == 't';
        } else if (strcmp(p->tok.value, "null") == 0) {
            v->kind = V_NULL;
        } else {
            v->kind = V_ENUM;
            v->s = p->tok.value;
        }
        advance(p);
        return v;
    case TK_DOLLAR:
        if (!is_const) {
            advance(p);
            v->kind = V_VAR;
            v->s = name(p, NULL, NULL);
            return v;
        }
        advance(p);
        if (p->tok.kind == TK_NAME)
            die(p, v->line, v->col, 0,
                "Syntax Error: Unexpected variable \"$%s\" in constant value.", p->tok.value);
        die(p, v->line, v->col, 0, "Syntax Error: Unexpected \"$\".");
    default:
        unexpected(p);
    }
    return NULL;
}

static gql_type_t *type_ref(parser_t *p)
{
    gql_type_t *t = hr_gql_alloc(p->a, sizeof *t);
    t->line = p->tok.line;
    t->col = p->tok.col;
    if (skip(p, TK_LBRACKET)) {
        enter(p);
        t->kind = TY_LIST;
        t->of = type_ref(p);
        expect(p, TK_RBRACKET);
        p->depth--;
    } else {
        t->kind = TY_NAMED;
        t->name = name(p, NULL, NULL);
    }
    if (peek_kind(p, TK_BANG)) {
        gql_type_t *nn = hr_gql_alloc(p->a, sizeof *nn);
        nn->kind = TY_NONNULL;
        nn->of = t;
        nn->line = t->line;
        nn->col = t->col;
        advance(p);
        return nn;
    }
    return t;
}

static gql_arg_t *arguments(parser_t *p, int is_const)
{
    gql_arg_t *first = NULL, **tail = &first;
    if (!skip(p, TK_LPAREN)) return NULL;
    do {
        gql_arg_t *a = hr_gql_alloc(p->a, sizeof *a);
        a->name = name(p, &a->line, &a->col);
        expect(p, TK_COLON);
        a->value = value(p, is_const);
        *tail = a;
        tail = &a->next;
    } while (!skip(p, TK_RPAREN));
    return first;
}

static gql_directive_t *directives(parser_t *p, int is_const)
{
    gql_directive_t *first = NULL, **tail = &first;
    while (peek_kind(p, TK_AT)) {
        gql_directive_t *d = hr_gql_alloc(p->a, sizeof *d);
        d->line = p->tok.line;
        d->col = p->tok.col;
        advance(p);
        d->name = name(p, NULL, NULL);
        d->args = arguments(p, is_const);
        *tail = d;
        tail = &d->next;
    }
    return first;
}

static gql_sel_t *selection_set(parser_t *p);
static const char *description(parser_t *p);

static gql_sel_t *selection(parser_t *p)
{
    gql_sel_t *s = hr_gql_alloc(p->a, sizeof *s);
    s->line = p->tok.line;
    s->col = p->tok.col;
    if (skip(p, TK_SPREAD)) {
        if (peek_kind(p, TK_NAME) && !peek_keyword(p, "on")) {
            s->kind = SEL_SPREAD;
            s->name = name(p, &s->tc_line, &s->tc_col);
            s->dirs = directives(p, 0);
            return s;
        }
        s->kind = SEL_INLINE;
        if (peek_keyword(p, "on")) {
            advance(p);
            s->type_cond = name(p, &s->tc_line, &s->tc_col);
        }
        s->dirs = directives(p, 0);
        s->ss_line = p->tok.line;
        s->ss_col = p->tok.col;
        s->sels = selection_set(p);
        s->has_sels = 1;
        return s;
    }
    s->kind = SEL_FIELD;
    const char *n = name(p, NULL, NULL);
    if (skip(p, TK_COLON)) {
        s->alias = n;
        n = name(p, NULL, NULL);
    }
    s->name = n;
    s->args = arguments(p, 0);
    s->dirs = directives(p, 0);
    if (peek_kind(p, TK_LBRACE)) {
        s->ss_line = p->tok.line;
        s->ss_col = p->tok.col;
        s->sels = selection_set(p);
        s->has_sels = 1;
    }
    return s;
}

static gql_sel_t *selection_set(parser_t *p)
{
    enter(p);
    expect(p, TK_LBRACE);
    gql_sel_t *first = NULL, **tail = &first;
    do {
        *tail = selection(p);
        tail = &(*tail)->next;
    } while (!skip(p, TK_RBRACE));
    p->depth--;
    return first;
}

static gql_vardef_t *variable_definitions(parser_t *p)
{
    gql_vardef_t *first = NULL, **tail = &first;
    if (!skip(p, TK_LPAREN)) return NULL;
    do {
        gql_vardef_t *v = hr_gql_alloc(p->a, sizeof *v);
        v->line = p->tok.line;
        v->col = p->tok.col;
        description(p); /* graphql-js 16.12+: variables may have descriptions */
        expect(p, TK_DOLLAR);
        v->name = name(p, &v->name_line, &v->name_col);
        expect(p, TK_COLON);
        v->type = type_ref(p);
        if (skip(p, TK_EQUALS)) v->defval = value(p, 1);
        v->dirs = directives(p, 1);
        *tail = v;
        tail = &v->next;
    } while (!skip(p, TK_RPAREN));
    return first;
}

static gql_operation_t *operation(parser_t *p)
{
    gql_operation_t *o = hr_gql_alloc(p->a, sizeof *o);
    o->line = p->tok.line;
    o->col = p->tok.col;
    if (peek_kind(p, TK_LBRACE)) {
        o->kind = HR_GQL_QUERY;
        o->sels = selection_set(p);
        return o;
    }
    const char *kw = p->tok.value;
    if (strcmp(kw, "query") == 0)
        o->kind = HR_GQL_QUERY;
    else if (strcmp(kw, "mutation") == 0)
        o->kind = HR_GQL_MUTATION;
    else
        o->kind = HR_GQL_SUBSCRIPTION;
    advance(p);
    if (peek_kind(p, TK_NAME)) o->name = name(p, &o->name_line, &o->name_col);
    o->vars = variable_definitions(p);
    o->dirs = directives(p, 0);
    o->sels = selection_set(p);
    return o;
}

static gql_fragment_t *fragment(parser_t *p)
{
    gql_fragment_t *f = hr_gql_alloc(p->a, sizeof *f);
    f->line = p->tok.line;
    f->col = p->tok.col;
    expect_keyword(p, "fragment");
    if (peek_keyword(p, "on")) unexpected(p);
    f->name = name(p, &f->name_line, &f->name_col);
    expect_keyword(p, "on");
    f->type_cond = name(p, &f->tc_line, &f->tc_col);
    f->dirs = directives(p, 0);
    f->sels = selection_set(p);
    return f;
}

/* ---- SDL ---- */

static const char *description(parser_t *p)
{
    if (p->tok.kind != TK_STRING && p->tok.kind != TK_BLOCK_STRING) return NULL;
    const char *d = p->tok.value;
    advance(p);
    return d;
}

/* An argument or input field definition. */
static gql_fdef_t *input_value_def(parser_t *p)
{
    gql_fdef_t *f = hr_gql_alloc(p->a, sizeof *f);
    f->desc = description(p);
    f->name = name(p, &f->line, &f->col);
    expect(p, TK_COLON);
    f->type = type_ref(p);
    if (skip(p, TK_EQUALS)) f->defval = value(p, 1);
    f->dirs = directives(p, 1);
    return f;
}

static gql_fdef_t *argument_defs(parser_t *p)
{
    gql_fdef_t *first = NULL, **tail = &first;
    if (!skip(p, TK_LPAREN)) return NULL;
    do {
        *tail = input_value_def(p);
        tail = &(*tail)->next;
    } while (!skip(p, TK_RPAREN));
    return first;
}

static gql_fdef_t *field_def(parser_t *p)
{
    gql_fdef_t *f = hr_gql_alloc(p->a, sizeof *f);
    f->desc = description(p);
    f->name = name(p, &f->line, &f->col);
    f->args = argument_defs(p);
    expect(p, TK_COLON);
    f->type = type_ref(p);
    f->dirs = directives(p, 1);
    return f;
}

static gql_fdef_t *enum_value_def(parser_t *p)
{
    gql_fdef_t *f = hr_gql_alloc(p->a, sizeof *f);
    f->desc = description(p);
    if (peek_keyword(p, "true") || peek_keyword(p, "false") || peek_keyword(p, "null")) {
        char d[TOKEN_DESC];
        tok_desc(&p->tok, d, sizeof d);
        die(p, p->tok.line, p->tok.col, 0,
            "Syntax Error: %s is reserved and cannot be used for an enum value.", d);
    }
    f->name = name(p, &f->line, &f->col);
    f->dirs = directives(p, 1);
    return f;
}

/* { item+ } or nothing. */
static gql_fdef_t *braced(parser_t *p, gql_fdef_t *(*item)(parser_t *))
{
    gql_fdef_t *first = NULL, **tail = &first;
    if (!skip(p, TK_LBRACE)) return NULL;
    do {
        *tail = item(p);
        tail = &(*tail)->next;
    } while (!skip(p, TK_RBRACE));
    return first;
}

static gql_fdef_t *root_def(parser_t *p)
{
    gql_fdef_t *f = hr_gql_alloc(p->a, sizeof *f);
    f->line = p->tok.line;
    f->col = p->tok.col;
    /* Consumed before it is checked, as graphql-js does (an error lexing the next token comes
     * first). */
    f->name = name(p, NULL, NULL);
    if (strcmp(f->name, "query") != 0 && strcmp(f->name, "mutation") != 0 &&
        strcmp(f->name, "subscription") != 0)
        die(p, f->line, f->col, 0, "Syntax Error: Unexpected Name \"%s\".", f->name);
    expect(p, TK_COLON);
    f->type = hr_gql_alloc(p->a, sizeof *f->type);
    f->type->kind = TY_NAMED;
    f->type->name = name(p, &f->type->line, &f->type->col);
    return f;
}

static gql_type_t *named_type(parser_t *p)
{
    gql_type_t *t = hr_gql_alloc(p->a, sizeof *t);
    t->kind = TY_NAMED;
    t->name = name(p, &t->line, &t->col);
    return t;
}

/* delim? NamedType (delim NamedType)*: implemented interfaces (&), union members (|). */
static gql_type_t *named_types(parser_t *p, gql_tok_kind_t delim)
{
    gql_type_t *first = NULL, **tail = &first;
    skip(p, delim);
    do {
        *tail = named_type(p);
        tail = &(*tail)->next;
    } while (skip(p, delim));
    return first;
}

/* Herald's schemas have no interfaces, unions or extensions; requests may hold them (validation
 * refuses them there, as graphql-js does). */
static void schemas_lack(parser_t *p, const char *what)
{
    if (p->sdl) die(p, p->tok.line, p->tok.col, 0, "Syntax Error: %s are not supported.", what);
}

static void implements(parser_t *p, gql_tdef_t *t)
{
    if (!peek_keyword(p, "implements")) return;
    schemas_lack(p, "interfaces");
    advance(p);
    t->named = named_types(p, TK_AMP);
}

/* A type system definition, or with ext an extension (after "extend"), which must add
 * something. */
static gql_tdef_t *type_system_def(parser_t *p, const char *desc, int ext)
{
    gql_tdef_t *t = hr_gql_alloc(p->a, sizeof *t);
    t->desc = desc || ext ? desc : description(p);
    t->line = p->tok.line;
    t->col = p->tok.col;
    t->extension = ext;
    if (p->tok.kind != TK_NAME) unexpected(p);
    const char *kw = p->tok.value;
    if (!ext && strcmp(kw, "extend") == 0) {
        schemas_lack(p, "extensions");
        advance(p);
        gql_tdef_t *e = type_system_def(p, NULL, 1);
        e->line = t->line;
        e->col = t->col;
        return e;
    }
    int added = 1; /* an extension added something */
    if (strcmp(kw, "schema") == 0) {
        advance(p);
        t->kind = TD_SCHEMA;
        t->dirs = directives(p, 1);
        if (!ext && !peek_kind(p, TK_LBRACE)) expect(p, TK_LBRACE);
        t->fields = braced(p, root_def);
        added = t->dirs || t->fields;
    } else if (strcmp(kw, "type") == 0 || strcmp(kw, "interface") == 0) {
        if (kw[0] == 'i') schemas_lack(p, "interfaces");
        advance(p);
        t->kind = kw[0] == 'i' ? TD_INTERFACE : TD_OBJECT;
        t->name = name(p, NULL, NULL);
        implements(p, t);
        t->dirs = directives(p, 1);
        t->fields = braced(p, field_def);
        added = t->named || t->dirs || t->fields;
    } else if (strcmp(kw, "union") == 0) {
        schemas_lack(p, "unions");
        advance(p);
        t->kind = TD_UNION;
        t->name = name(p, NULL, NULL);
        t->dirs = directives(p, 1);
        if (skip(p, TK_EQUALS)) t->named = named_types(p, TK_PIPE);
        added = t->named || t->dirs;
    } else if (strcmp(kw, "input") == 0) {
        advance(p);
        t->kind = TD_INPUT;
        t->name = name(p, NULL, NULL);
        t->dirs = directives(p, 1);
        t->fields = braced(p, input_value_def);
        added = t->dirs || t->fields;
    } else if (strcmp(kw, "enum") == 0) {
        advance(p);
        t->kind = TD_ENUM;
        t->name = name(p, NULL, NULL);
        t->dirs = directives(p, 1);
        t->fields = braced(p, enum_value_def);
        added = t->dirs || t->fields;
    } else if (strcmp(kw, "scalar") == 0) {
        advance(p);
        t->kind = TD_SCALAR;
        t->name = name(p, NULL, NULL);
        t->dirs = directives(p, 1);
        added = t->dirs != NULL;
    } else if (!ext && strcmp(kw, "directive") == 0) {
        advance(p);
        t->kind = TD_DIRECTIVE;
        expect(p, TK_AT);
        t->name = name(p, NULL, NULL);
        t->fields = argument_defs(p);
        if (peek_keyword(p, "repeatable")) {
            t->repeatable = 1;
            advance(p);
        }
        expect_keyword(p, "on");
        skip(p, TK_PIPE);
        do {
            int l = p->tok.line, c = p->tok.col;
            const char *loc = name(p, NULL, NULL);
            int k;
            for (k = 0; k < DL_COUNT; k++)
                if (strcmp(loc, hr_gql_dl_names[k]) == 0) break;
            if (k == DL_COUNT) die(p, l, c, 0, "Syntax Error: Unexpected Name \"%s\".", loc);
            if (!(t->locations & (1u << k))) t->order[t->nlocations++] = (unsigned char)k;
            t->locations |= 1u << k;
        } while (skip(p, TK_PIPE));
    } else {
        unexpected(p);
    }
    if (ext && !added) unexpected(p);
    return t;
}

static int peek_type_system(parser_t *p)
{
    static const char *const kws[] = {"schema", "scalar", "type",      "interface", "union",
                                      "enum",   "input",  "directive", "extend"};
    for (size_t i = 0; i < sizeof kws / sizeof *kws; i++)
        if (peek_keyword(p, kws[i])) return 1;
    return 0;
}

/* In an executable document, type system definitions are parsed (validation refuses them, as
 * graphql-js does); operations and fragments may have descriptions (graphql-js 16.12+). */
static void definition(parser_t *p, gql_doc_t *doc, gql_operation_t ***otail,
                       gql_fragment_t ***ftail, gql_tdef_t ***ttail)
{
    if (p->sdl) {
        **ttail = type_system_def(p, NULL, 0);
        *ttail = &(**ttail)->next;
        return;
    }
    (void)doc;
    const char *desc = NULL;
    int dline = p->tok.line, dcol = p->tok.col;
    if (!peek_kind(p, TK_LBRACE) && (p->tok.kind == TK_STRING || p->tok.kind == TK_BLOCK_STRING)) {
        desc = description(p);
        if (peek_kind(p, TK_LBRACE))
            die(p, dline, dcol, 0,
                "Syntax Error: Unexpected description, descriptions are not supported on "
                "shorthand queries.");
    }
    /* A definition with a description starts at its description, as in graphql-js. */
    if (peek_type_system(p)) {
        if (desc && peek_keyword(p, "extend"))
            die(p, dline, dcol, 0,
                "Syntax Error: Unexpected description, only GraphQL definitions support "
                "descriptions.");
        **ttail = type_system_def(p, desc, 0);
        if (desc) (**ttail)->line = dline, (**ttail)->col = dcol;
        *ttail = &(**ttail)->next;
    } else if (peek_kind(p, TK_LBRACE) || peek_keyword(p, "query") || peek_keyword(p, "mutation") ||
               peek_keyword(p, "subscription")) {
        **otail = operation(p);
        if (desc) (**otail)->line = dline, (**otail)->col = dcol;
        *otail = &(**otail)->next;
    } else if (peek_keyword(p, "fragment")) {
        **ftail = fragment(p);
        if (desc) (**ftail)->line = dline, (**ftail)->col = dcol;
        *ftail = &(**ftail)->next;
    } else if (desc && p->tok.kind == TK_NAME) {
        die(p, dline, dcol, 0,
            "Syntax Error: Unexpected description, only GraphQL definitions support "
            "descriptions.");
    } else {
        unexpected(p);
    }
}

int hr_gql_parse(gql_arena_t *arena, const char *text, size_t len, int sdl, size_t max_tokens,
                 gql_doc_t *doc, json_t *errors)
{
    parser_t *p = hr_gql_alloc(arena, sizeof *p);
    hr_gql_lexer_init(&p->lx, arena, text, len, max_tokens);
    p->a = arena;
    p->sdl = sdl;
    p->errors = errors;
    memset(doc, 0, sizeof *doc);
    if (setjmp(p->jb)) return p->rc;
    gql_operation_t **otail = &doc->ops;
    gql_fragment_t **ftail = &doc->frags;
    gql_tdef_t **ttail = &doc->tdefs;
    advance(p);
    do {
        definition(p, doc, &otail, &ftail, &ttail);
    } while (!peek_kind(p, TK_EOF));
    return 0;
}
