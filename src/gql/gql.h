/* gql.h: herald's GraphQL engine — a pure module: no I/O, no loop, no logging.
 *
 *   schema = hr_gql_schema_new(sdl, resolvers, nresolvers, &err);        once, at start
 *   rc = hr_gql_prepare(schema, NULL, text, len, variables, operation_name, &op, &errors);
 *        parse + validate + coerce variables; on failure *errors is the request's "errors"
 *   switch (hr_gql_op_kind(op)):
 *     query, mutation:  result = hr_gql_execute(op, ctx);               {"data": …, "errors": […]}
 *     subscription:     hr_gql_op_root(op, &root) names the single root field and its coerced
 *                       arguments; the caller produces source values (an event, a batch) and
 *                       for each one: result = hr_gql_execute_root(op, ctx, value);
 *   hr_gql_op_free(op); ... hr_gql_schema_free(schema);
 *
 * The schema is written in GraphQL SDL (type, input, enum, scalar, descriptions, `!`, lists,
 * default values); the engine answers introspection (__schema, __type, __typename) from it.
 * Values crossing the resolver boundary are jansson values. A field with no resolver takes the
 * parent object's member of the same name (missing: null). Built-in scalars are checked and
 * coerced (Int is 32-bit, as the spec says); a custom scalar (e.g. `bigint`, `jsonb`,
 * `timestamptz`) passes any JSON value through, on input and output. Enum values are JSON
 * strings.
 *
 * Errors follow the spec's shape: {"message", "locations": [{"line", "column"}], "path": […],
 * "extensions": {"code": "…"}} with codes "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED",
 * "BAD_USER_INPUT" (variables), "LIMIT_EXCEEDED" (caps) and "INTERNAL" (a resolver failed).
 * A resolver error nulls its field and propagates to the nearest nullable parent, as the spec
 * says; the other fields still resolve.
 *
 * Memory: each prepared operation owns one arena (the AST, names, the coerced variables' keys)
 * freed at once by hr_gql_op_free. The engine never keeps a pointer into the caller's text.
 *
 * Details (the files of src/gql/ say how):
 *   - Messages are graphql-js 16's wherever graphql-js has one (tests/e2e/suites/gql_engine.test.js
 *     compares them). Locations are 1-based; a column counts Unicode code points (graphql-js
 *     counts UTF-16 units: they differ only after a character outside the BMP on the line).
 *   - Codes beyond the list above: an unknown or missing operationName and bad variables are
 *     BAD_USER_INPUT; at execution, an argument that does not coerce (a variable's null in a
 *     non-null argument) is BAD_USER_INPUT on that field, and a value a resolver returned that
 *     does not fit its type (Int out of range, unknown enum value, null for non-null) INTERNAL.
 *   - Caps: max_depth counts the fields on a path (a root field is 1; fragments expanded, inline
 *     fragments add nothing); inside __schema and __type fields may nest 8 deeper (the standard
 *     introspection query needs 14). max_selections counts fields, fragments expanded,
 *     @skip/@include not applied. The parser's recursion is capped at 256 levels whatever the
 *     limits (LIMIT_EXCEEDED, HR_E2BIG).
 *   - The SDL subset has no interfaces, unions or extensions. Directives declared in the SDL are
 *     known to validation but do nothing at execution.
 *   - A Float literal beyond a double is refused (graphql-js takes it as Infinity). An
 *     operation whose root type the schema lacks is a validation error, and a variable given as
 *     null to @skip/@include's "if" a BAD_USER_INPUT error of hr_gql_prepare (graphql-js 16
 *     reports both when executing, with "data": null).
 *   - hr_gql_execute on a subscription runs it once like a query (its root resolver is called). */
#ifndef HR_GQL_H
#define HR_GQL_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

typedef struct hr_gql_schema hr_gql_schema_t;
typedef struct hr_gql_op hr_gql_op_t;

typedef enum hr_gql_kind {
    HR_GQL_QUERY,
    HR_GQL_MUTATION,
    HR_GQL_SUBSCRIPTION,
} hr_gql_kind_t;

/* Caps on what one request may cost; 0 takes the default. */
typedef struct hr_gql_limits {
    size_t max_document;   /* bytes of the document; default 64 KiB */
    size_t max_tokens;     /* lexical tokens; default 10,000 */
    int max_depth;         /* nesting of selection sets, fragments expanded; default 12 */
    size_t max_selections; /* fields of the executed operation, fragments expanded; 2,000 */
} hr_gql_limits_t;

/* What a resolver is given; everything is borrowed for the call. */
typedef struct hr_gql_resolve_info {
    const char *parent_type; /* "Query", "Event", … */
    const char *field;       /* the field's name in the schema (not its alias) */
    json_t *args;            /* the coerced arguments: an object, defaults filled in */
    json_t *parent;          /* the parent's value; NULL for root fields */
    void *ctx;               /* the ctx given to hr_gql_execute */
} hr_gql_resolve_info_t;

/* Returns a new reference to the field's value (NULL means null). On failure returns NULL and
 * sets *error to a message allocated with malloc (the engine frees it). */
typedef json_t *(*hr_gql_resolve_fn)(const hr_gql_resolve_info_t *info, char **error);

typedef struct hr_gql_resolver {
    const char *type;  /* "Query", "Mutation", "Event", … */
    const char *field; /* "events" */
    hr_gql_resolve_fn fn;
} hr_gql_resolver_t;

/* Builds a schema from SDL text and a resolver table (both copied). The root types are named
 * Query, Mutation and Subscription (the latter two optional). HR_EINVAL with the reason (line and
 * column for syntax errors; the type and field for a resolver naming nothing, an unknown type,
 * a duplicate definition). */
int hr_gql_schema_new(const char *sdl, const hr_gql_resolver_t *resolvers, size_t nresolvers,
                      hr_gql_schema_t **out, hr_err_t *err);
void hr_gql_schema_free(hr_gql_schema_t *schema);

/* Parses text (len bytes, need not be NUL-terminated), picks the operation (operation_name may
 * be NULL when the document holds one), validates it against the schema and coerces variables
 * (a JSON object or NULL). limits may be NULL. On success *op is the prepared operation and
 * returns 0. Otherwise returns HR_EINVAL (or HR_E2BIG for a cap), *op is NULL and *errors is a
 * new JSON array of error objects (each with a message; parse and validation errors with
 * "locations"). A subscription must select exactly one root field (not an introspection one). */
int hr_gql_prepare(const hr_gql_schema_t *schema, const hr_gql_limits_t *limits, const char *text,
                   size_t len, json_t *variables, const char *operation_name, hr_gql_op_t **out,
                   json_t **errors);
void hr_gql_op_free(hr_gql_op_t *op);

hr_gql_kind_t hr_gql_op_kind(const hr_gql_op_t *op);
/* The operation's name or NULL. */
const char *hr_gql_op_name(const hr_gql_op_t *op);

/* A subscription's root field. Borrowed from op. */
typedef struct hr_gql_root {
    const char *field; /* name in the schema, e.g. "events_stream" */
    const char *alias; /* response key (the alias, or the name) */
    json_t *args;      /* coerced arguments with defaults */
} hr_gql_root_t;

/* Fills *root for a subscription (and for queries and mutations: their first root field).
 * Root fields left out by @skip/@include do not count. A subscription always has one with
 * coerced args (hr_gql_prepare refuses it otherwise); for a query or mutation field and alias
 * are NULL when @skip/@include left no root field, and args NULL when they do not coerce
 * (hr_gql_execute then reports it). */
void hr_gql_op_root(const hr_gql_op_t *op, hr_gql_root_t *root);

/* Executes a query or mutation: root fields through their resolvers (a mutation's one after the
 * other, in document order). Returns a new {"data": …} object, with "errors" when any. */
json_t *hr_gql_execute(const hr_gql_op_t *op, void *ctx);

/* Executes a subscription's selection with value as the root field's resolved value (its
 * resolver is not called); nested fields resolve as usual. Returns {"data": {alias: …}} with
 * "errors" when any. value is borrowed. */
json_t *hr_gql_execute_root(const hr_gql_op_t *op, void *ctx, json_t *value);

#endif
