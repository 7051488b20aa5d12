/* gql_int.h: the GraphQL engine's internals, shared by the files of src/gql/ and nothing else.
 *
 *   arena.c      a bump allocator: every AST node and every name of one document lives in it
 *   lexer.c      source text -> tokens (one token of lookahead, positions as line and column)
 *   parser.c     tokens -> AST, for executable documents and for the SDL subset of schemas
 *   schema.c     SDL AST -> the type system (hr_gql_schema_t), checked, resolvers bound
 *   coerce.c     input values: literals and JSON variables -> JSON by type; literal printing
 *   validate.c   the specification's validation rules; annotates the AST with field definitions
 *   execute.c    field collection, resolvers, result coercion, non-null propagation
 *   introspect.c __schema, __type and the __Type/__Field/... objects they return
 *   gql.c        hr_gql_prepare: the pipeline, operation selection, caps, variables
 *
 * Errors are collected as JSON objects in the shape of the specification (see gql.h) by
 * hr_gql_error_add. Locations are 1-based lines and columns; a column counts Unicode code
 * points (graphql-js counts UTF-16 units: the two differ only after a character outside the
 * Basic Multilingual Plane on the same line). */
#ifndef HR_GQL_INT_H
#define HR_GQL_INT_H

#include <jansson.h>
#include <setjmp.h>
#include <stddef.h>

#include "gql/gql.h"

/* ---- arena ---- */

typedef struct gql_chunk gql_chunk_t;
typedef struct gql_arena {
    gql_chunk_t *head; /* newest chunk first */
} gql_arena_t;

/* Zeroed memory that lives until hr_gql_arena_free; aborts on out-of-memory. */
void *hr_gql_alloc(gql_arena_t *a, size_t n);
char *hr_gql_strndup(gql_arena_t *a, const char *s, size_t n);
void hr_gql_arena_free(gql_arena_t *a);

/* ---- errors ---- */

#define GQL_PARSE "GRAPHQL_PARSE_FAILED"
#define GQL_VALIDATION "GRAPHQL_VALIDATION_FAILED"
#define GQL_BAD_INPUT "BAD_USER_INPUT"
#define GQL_LIMIT "LIMIT_EXCEEDED"
#define GQL_INTERNAL "INTERNAL"

/* Appends {"message", "locations": [{line, column}] (when line > 0), "extensions": {code}} to
 * the array errors. */
void hr_gql_error_add(json_t *errors, int line, int col, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- lexer ---- */

typedef enum gql_tok_kind {
    TK_EOF,
    TK_BANG,
    TK_DOLLAR,
    TK_AMP,
    TK_LPAREN,
    TK_RPAREN,
    TK_SPREAD,
    TK_COLON,
    TK_EQUALS,
    TK_AT,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_LBRACE,
    TK_PIPE,
    TK_RBRACE,
    TK_NAME,
    TK_INT,
    TK_FLOAT,
    TK_STRING,
    TK_BLOCK_STRING,
} gql_tok_kind_t;

typedef struct gql_token {
    gql_tok_kind_t kind;
    int line, col;
    char *value; /* names and numbers: their text; strings: the decoded value (arena) */
    size_t len;  /* bytes of value (a string may hold NUL) */
} gql_token_t;

typedef struct gql_lexer {
    const char *src;
    size_t len;
    size_t pos;     /* next byte to read */
    size_t mark;    /* position up to which line and col are known */
    int line, col;  /* of mark */
    size_t ntokens; /* tokens read so far */
    size_t max_tokens;
    gql_arena_t *arena;
    /* On a lexical error: the message (without "Syntax Error: ") and its position. */
    char err[256];
    int err_line, err_col;
    int err_limit; /* the error is the token cap */
} gql_lexer_t;

void hr_gql_lexer_init(gql_lexer_t *lx, gql_arena_t *arena, const char *src, size_t len,
                       size_t max_tokens);
/* Reads the next token; returns -1 with lx->err set on a lexical error. */
int hr_gql_lex(gql_lexer_t *lx, gql_token_t *tok);
/* The block string value of the specification (common indentation removed). */
char *hr_gql_block_string_value(gql_arena_t *a, const char *raw, size_t n, size_t *outlen);

/* ---- AST ---- */

typedef enum gql_value_kind {
    V_VAR,
    V_INT,
    V_FLOAT,
    V_STRING,
    V_BOOL,
    V_NULL,
    V_ENUM,
    V_LIST,
    V_OBJECT,
} gql_value_kind_t;

typedef struct gql_value {
    gql_value_kind_t kind;
    int line, col;
    const char *name;        /* an object field's name (the value is a member of V_OBJECT) */
    const char *s;           /* V_VAR: the name without $; V_INT/V_FLOAT: text; V_STRING; V_ENUM */
    size_t len;              /* bytes of s for V_STRING */
    int b;                   /* V_BOOL */
    int name_line, name_col; /* an object field's name */
    struct gql_value *items; /* V_LIST items; V_OBJECT fields (each with name) */
    struct gql_value *next;
} gql_value_t;

typedef enum gql_type_kind { TY_NAMED, TY_LIST, TY_NONNULL } gql_type_kind_t;

/* A type as written: String, [Int!]! */
typedef struct gql_type {
    gql_type_kind_t kind;
    const char *name; /* TY_NAMED */
    struct gql_type *of;
    int line, col;
    struct gql_type *next; /* in a list of implemented interfaces or union members */
} gql_type_t;

typedef struct gql_arg {
    const char *name;
    gql_value_t *value;
    int line, col;
    struct gql_arg *next;
} gql_arg_t;

typedef struct gql_directive {
    const char *name;
    gql_arg_t *args;
    int line, col;
    struct gql_directive *next;
} gql_directive_t;

struct gql_sfield;
struct gql_stype;

typedef enum gql_sel_kind { SEL_FIELD, SEL_SPREAD, SEL_INLINE } gql_sel_kind_t;

typedef struct gql_sel {
    gql_sel_kind_t kind;
    const char *alias;     /* SEL_FIELD: the alias or NULL */
    const char *name;      /* SEL_FIELD: the field; SEL_SPREAD: the fragment */
    const char *type_cond; /* SEL_INLINE: "on T" or NULL */
    int tc_line, tc_col;   /* SEL_INLINE: where T is; SEL_SPREAD: where the name is */
    gql_arg_t *args;       /* SEL_FIELD */
    gql_directive_t *dirs;
    struct gql_sel *sels; /* the selection set (first selection) or NULL */
    int has_sels;         /* a selection set was written (it is never empty) */
    int ss_line, ss_col;  /* where the selection set starts */
    int line, col;
    struct gql_sel *next;
    /* Set by validation: */
    const struct gql_sfield *def; /* SEL_FIELD: the field's definition */
    struct gql_fragment *frag;    /* SEL_SPREAD: the fragment */
    const struct gql_stype *on;   /* SEL_INLINE: the type condition's type (or NULL) */
} gql_sel_t;

typedef struct gql_vardef {
    const char *name; /* without $ */
    int name_line, name_col;
    gql_type_t *type;
    gql_value_t *defval;
    gql_directive_t *dirs;
    int line, col;
    int used; /* validation: referenced by the operation */
    struct gql_vardef *next;
} gql_vardef_t;

typedef struct gql_operation {
    hr_gql_kind_t kind;
    const char *name; /* NULL when anonymous */
    int name_line, name_col;
    gql_vardef_t *vars;
    gql_directive_t *dirs;
    gql_sel_t *sels;
    int line, col;
    struct gql_operation *next;
} gql_operation_t;

typedef struct gql_fragment {
    const char *name;
    int name_line, name_col;
    const char *type_cond;
    int tc_line, tc_col; /* where the type condition is */
    gql_directive_t *dirs;
    gql_sel_t *sels;
    int line, col;
    int used;                   /* validation: spread somewhere */
    int state;                  /* validation: walked for cycles (by name) */
    int cycle_at;               /* validation: 1 + its place on the spread path, 0 when off it */
    unsigned visit;             /* validation: the last walk that entered it */
    int lists;                  /* validation: introspection list depth (0 unknown, -1 busy) */
    const struct gql_stype *on; /* validation: the type condition's type */
    struct gql_fragment *next;
} gql_fragment_t;

/* SDL: a field, an argument, an input field, an enum value or a schema root (name = the
 * operation, type = the root type). */
typedef struct gql_fdef {
    const char *name;
    const char *desc;
    struct gql_fdef *args;
    gql_type_t *type;
    gql_value_t *defval;
    gql_directive_t *dirs;
    int line, col;
    struct gql_fdef *next;
} gql_fdef_t;

/* Directive locations, in the order of the specification's __DirectiveLocation. */
enum {
    DL_QUERY,
    DL_MUTATION,
    DL_SUBSCRIPTION,
    DL_FIELD,
    DL_FRAGMENT_DEFINITION,
    DL_FRAGMENT_SPREAD,
    DL_INLINE_FRAGMENT,
    DL_VARIABLE_DEFINITION,
    DL_SCHEMA,
    DL_SCALAR,
    DL_OBJECT,
    DL_FIELD_DEFINITION,
    DL_ARGUMENT_DEFINITION,
    DL_INTERFACE,
    DL_UNION,
    DL_ENUM,
    DL_ENUM_VALUE,
    DL_INPUT_OBJECT,
    DL_INPUT_FIELD_DEFINITION,
    DL_DIRECTIVE_DEFINITION,
    DL_COUNT
};
typedef enum gql_tdef_kind {
    TD_OBJECT,
    TD_INPUT,
    TD_ENUM,
    TD_SCALAR,
    TD_SCHEMA,
    TD_DIRECTIVE,
    TD_INTERFACE, /* requests only: herald's schemas have none */
    TD_UNION,     /* requests only */
} gql_tdef_kind_t;

typedef struct gql_tdef {
    gql_tdef_kind_t kind;
    const char *name;
    const char *desc;
    gql_fdef_t *fields; /* fields, input fields, enum values, roots, a directive's arguments */
    gql_directive_t *dirs;
    gql_type_t *named;             /* implemented interfaces, union members (requests only) */
    int extension;                 /* an "extend" (requests only) */
    unsigned locations;            /* TD_DIRECTIVE: 1 << DL_* */
    unsigned char order[DL_COUNT]; /* TD_DIRECTIVE: the locations as written */
    int nlocations;
    int repeatable;
    int line, col;
    struct gql_tdef *next;
} gql_tdef_t;

typedef struct gql_doc {
    gql_operation_t *ops;
    gql_fragment_t *frags;
    gql_tdef_t *tdefs; /* SDL only */
} gql_doc_t;

extern const char *const hr_gql_dl_names[DL_COUNT];

/* Hard cap on the parser's recursion (selection sets, list and object values, list types). */
#define GQL_MAX_NESTING 256

/* Parses text into *doc (in arena). sdl selects the schema language. On failure returns
 * HR_EINVAL (syntax) or HR_E2BIG (the token cap, the nesting cap) and appends one error to
 * errors. */
int hr_gql_parse(gql_arena_t *arena, const char *text, size_t len, int sdl, size_t max_tokens,
                 gql_doc_t *doc, json_t *errors);

/* ---- the type system ---- */

typedef enum gql_kind {
    K_SCALAR,
    K_OBJECT,
    K_INPUT,
    K_ENUM,
} gql_kind_t;

typedef enum gql_scalar {
    SC_CUSTOM,
    SC_INT,
    SC_FLOAT,
    SC_STRING,
    SC_BOOLEAN,
    SC_ID,
} gql_scalar_t;

/* A resolved type reference: the named type, or a list or non-null wrapper. */
typedef struct gql_tref {
    gql_type_kind_t kind;
    struct gql_stype *type; /* TY_NAMED */
    struct gql_tref *of;
} gql_tref_t;

typedef struct gql_sinput {
    const char *name;
    const char *desc;
    gql_tref_t *type;
    json_t *def;            /* the coerced default value (borrowed from the schema) or NULL */
    const char *def_text;   /* the default as a GraphQL literal (introspection's defaultValue) */
    const char *deprecated; /* the deprecation reason or NULL */
} gql_sinput_t;

typedef struct gql_sfield {
    const char *name;
    const char *desc;
    gql_sinput_t *args;
    size_t nargs;
    gql_tref_t *type;
    const char *deprecated;
    hr_gql_resolve_fn fn;
    int meta; /* __typename, __schema, __type */
} gql_sfield_t;

typedef struct gql_senum {
    const char *name;
    const char *desc;
    const char *deprecated;
} gql_senum_t;

typedef struct gql_stype {
    gql_kind_t kind;
    const char *name;
    const char *desc;
    gql_scalar_t scalar;      /* K_SCALAR */
    const char *specified_by; /* K_SCALAR: @specifiedBy(url:) */
    gql_sfield_t *fields;     /* K_OBJECT */
    size_t nfields;
    gql_sinput_t *inputs; /* K_INPUT */
    size_t ninputs;
    gql_senum_t *values; /* K_ENUM */
    size_t nvalues;
    int oneof;      /* K_INPUT: @oneOf */
    int builtin;    /* a specified scalar or an introspection type */
    int referenced; /* a specified scalar some field, argument or input field uses */
} gql_stype_t;

typedef struct gql_sdir {
    const char *name;
    const char *desc;
    gql_sinput_t *args;
    size_t nargs;
    unsigned locations;         /* 1 << DL_* */
    const unsigned char *order; /* the locations as written */
    int nlocations;
    int repeatable;
} gql_sdir_t;

struct hr_gql_schema {
    gql_arena_t arena;
    gql_stype_t **types; /* every type, user types first in SDL order, then the built-in ones */
    size_t ntypes;
    gql_sdir_t *dirs;
    size_t ndirs;
    gql_stype_t *query, *mutation, *subscription;
    const char *desc;
    json_t *owned; /* an array holding the default values' references */
    gql_sfield_t typename_field, schema_field, type_field;
};

gql_stype_t *hr_gql_type_find(const hr_gql_schema_t *s, const char *name);
/* A type as requests see it: a specified scalar nothing in the schema uses does not exist (as
 * in graphql-js, whose schema holds only the scalars it references). */
gql_stype_t *hr_gql_type_visible(const hr_gql_schema_t *s, const char *name);
const gql_sdir_t *hr_gql_dir_find(const hr_gql_schema_t *s, const char *name);
/* A field of an object type, the meta fields included (__schema and __type on the query root
 * only); NULL when there is none. */
const gql_sfield_t *hr_gql_field_find(const hr_gql_schema_t *s, const gql_stype_t *t,
                                      const char *name);
const gql_sinput_t *hr_gql_input_find(const gql_sinput_t *v, size_t n, const char *name);
const gql_senum_t *hr_gql_enum_find(const gql_stype_t *t, const char *name);
/* The named type under the wrappers. */
gql_stype_t *hr_gql_tref_named(const gql_tref_t *t);
/* "[Int!]!" into buf. */
const char *hr_gql_tref_str(const gql_tref_t *t, char *buf, size_t n);
const char *hr_gql_type_str(const gql_type_t *t, char *buf, size_t n);
/* Resolves a written type against the schema; NULL when a name is unknown. */
gql_tref_t *hr_gql_tref_resolve(const hr_gql_schema_t *s, gql_arena_t *a, const gql_type_t *t);
int hr_gql_is_input(const gql_stype_t *t);
int hr_gql_is_leaf(const gql_stype_t *t);

/* ---- coercion (coerce.c) ---- */

/* A literal to JSON by type (variables taken from vars, which holds coerced values; a variable
 * absent from vars counts as not given). 0 and a new reference in *out, or -1 with a message in
 * msg. Validation has run on execution-time literals; schema defaults are checked here. */
int hr_gql_coerce_literal(const gql_tref_t *t, const gql_value_t *v, json_t *vars, json_t **out,
                          char *msg, size_t msgsz);
/* A variable's JSON value by type (graphql-js's coerceInputValue): 0 and a new reference in
 * *out; or the number of errors appended to errors (every one in the value, each
 * 'Variable "$var" got invalid value … at "var.a[0]"; …', at line:col) and *out NULL. */
int hr_gql_coerce_json(const gql_tref_t *t, json_t *in, json_t **out, const char *var, int line,
                       int col, json_t *errors);
/* The specification's "Values of Correct Type" rule for a literal: every error is reported
 * (message and position) through report; variables inside are accepted. Returns the number of
 * errors. */
typedef void (*hr_gql_lit_report_fn)(void *ud, int line, int col, const char *msg);
int hr_gql_literal_check(const gql_tref_t *t, const gql_value_t *v, hr_gql_lit_report_fn report,
                         void *ud);
/* Prints a literal as graphql-js does (print()): into buf (cut short), or malloc'd whole. */
void hr_gql_print_value(const gql_value_t *v, char *buf, size_t n);
char *hr_gql_print_value_str(const gql_value_t *v);
/* Prints a coerced JSON value as a GraphQL literal of type t (graphql-js astFromValue + print);
 * returns a malloc'd string. */
char *hr_gql_print_json_literal(const gql_tref_t *t, json_t *v);
/* graphql-js's inspect() of a JSON value: into buf (cut short with "..."), or malloc'd whole. */
void hr_gql_inspect(json_t *v, char *buf, size_t n);
char *hr_gql_inspect_str(json_t *v);
/* Coerces one scalar result (serialize); -1 with a message (malloc'd, the caller frees) when it
 * cannot. */
int hr_gql_serialize_scalar(const gql_stype_t *t, json_t *v, json_t **out, char **msg);

/* ---- validation, execution, introspection ---- */

/* Runs the validation rules over doc; appends errors (GRAPHQL_VALIDATION_FAILED); returns the
 * number of errors. */
int hr_gql_validate(const hr_gql_schema_t *s, gql_arena_t *arena, gql_doc_t *doc, json_t *errors);

/* The "Did you mean" suffix of graphql-js (" Did you mean \"a\" or \"b\"?", with sub after
 * "mean" when not NULL) for name among options, into buf (empty when nothing is close). */
void hr_gql_suggest(const char *sub, const char *name, const char *const *options, size_t n,
                    char *buf, size_t bufsz);

struct hr_gql_op {
    gql_arena_t arena;
    const hr_gql_schema_t *schema;
    gql_doc_t doc;
    gql_operation_t *op;
    json_t *vars;      /* coerced variables */
    json_t *root_args; /* coerced arguments of the first root field (NULL when none) */
    const char *root_field, *root_alias;
};

/* Executes op. root_given: the root field's value is root_value (its resolver is not called);
 * otherwise root_value (may be NULL) is the parent value of the root fields. */
json_t *hr_gql_exec(const hr_gql_op_t *op, void *ctx, json_t *root_value, int root_given);
/* graphql-js's CoerceArgumentValues: the arguments of a field or directive as a new JSON
 * object (defaults filled in), or NULL with a message (malloc'd, the caller frees) and, in *at,
 * the argument's value the error is about (NULL: a missing argument, the field's place). */
json_t *hr_gql_coerce_args(const gql_sinput_t *defs, size_t ndefs, const gql_arg_t *args,
                           json_t *vars, char **msg, const gql_value_t **at);
/* @skip and @include, with the coerced variables. */
int hr_gql_included(const gql_directive_t *dirs, json_t *vars);

/* Resolves a field of an introspection type (parent_type starts with "__") or a meta field
 * (__schema, __type). Returns a new reference or NULL (null). */
json_t *hr_gql_introspect(const hr_gql_schema_t *s, const gql_stype_t *parent_type,
                          const gql_sfield_t *field, json_t *args, json_t *parent);

#endif
