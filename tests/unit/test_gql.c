/* test_gql.c: the GraphQL engine (src/gql) against golden cases in data/gql/.
 *
 * data/gql/schema.graphql is the test schema; the resolvers below serve a fixed log of three
 * events. Each case file holds an array of cases:
 *   {"name", "query", "variables"?, "operationName"?, "limits"?, "root"?, "expect"}
 * "expect" is what the engine answered: {"rc": "EINVAL"|"E2BIG", "errors": [...]} when
 * hr_gql_prepare refused the request, else the execution result ({"data", "errors"?}). A case
 * with "root" is a subscription: hr_gql_op_root is recorded under "expect.root" and the result
 * is hr_gql_execute_root's with that value. HERALD_UPDATE_GOLDEN=1 rewrites every "expect"
 * from the engine's answers (review the diff before committing it).
 *
 * Beyond the golden files: schemas that must be refused, documents nested 100,000 deep, caps,
 * and a fixed-seed fuzz loop over mutated case documents (no crash, errors well formed). The
 * working directory is tests/unit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gql/gql.h"

static const char *data_dir(void)
{
    const char *d = getenv("HERALD_TEST_DATA");
    return d ? d : "data";
}

static char *slurp(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gql/%s", data_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) fail_msg("cannot read %s", path);
    s[n] = '\0';
    fclose(f);
    return s;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* ---- the test resolvers ---- */

static json_t *events_data;

static json_t *find_event(const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(events_data, i, e)
    {
        if (id && strcmp(json_string_value(json_object_get(e, "id")), id) == 0) return e;
    }
    return NULL;
}

static json_t *r_hello(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    return json_sprintf("Hello, %s!", json_string_value(json_object_get(info->args, "name")));
}

static json_t *r_event(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    json_t *e = find_event(json_string_value(json_object_get(info->args, "id")));
    return e ? json_incref(e) : NULL;
}

static int status_in(json_t *e, json_t *list)
{
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (json_equal(s, json_object_get(e, "status"))) return 1;
    }
    return 0;
}

static json_t *r_events(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    json_t *out = json_array(), *e;
    json_int_t limit = json_integer_value(json_object_get(info->args, "limit"));
    json_t *status = json_object_get(info->args, "status");
    json_t *filter = json_object_get(info->args, "filter");
    size_t i;
    json_array_foreach(events_data, i, e)
    {
        if ((json_int_t)json_array_size(out) >= limit) break;
        if (status && !json_is_null(status) && !json_equal(status, json_object_get(e, "status")))
            continue;
        if (json_is_object(filter)) {
            json_t *t = json_object_get(filter, "trigger");
            json_t *st = json_object_get(filter, "status");
            json_t *min = json_object_get(filter, "minTries");
            if (json_is_string(t) && !json_equal(t, json_object_get(e, "trigger"))) continue;
            if (json_is_array(st) && !status_in(e, st)) continue;
            if (json_is_integer(min) &&
                json_integer_value(json_object_get(e, "tries")) < json_integer_value(min))
                continue;
        }
        json_array_append(out, e);
    }
    return out;
}

static json_t *r_echo(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    return json_incref(info->args);
}

static json_t *r_fail(const hr_gql_resolve_info_t *info, char **error)
{
    *error = strdup(strcmp(info->field, "fail") == 0 ? "boom" : "boom!");
    return NULL;
}

static json_t *r_const(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    const char *f = info->field;
    if (strcmp(f, "badInt") == 0) return json_integer(10000000000LL);
    if (strcmp(f, "badEnum") == 0) return json_string("NOPE");
    if (strcmp(f, "notList") == 0) return json_integer(5);
    if (strcmp(f, "nullItems") == 0) return json_pack("[i,n]", 1);
    if (strcmp(f, "nullableItems") == 0) return json_pack("[i,n,s]", 1, "x");
    if (strcmp(f, "old") == 0) return json_string("old");
    return NULL;
}

static json_t *r_trigger(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    return json_pack("{s:O}", "name", json_object_get(info->args, "name"));
}

static json_t *r_trigger_events(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(events_data, i, e)
    {
        if (json_equal(json_object_get(e, "trigger"), json_object_get(info->parent, "name")))
            json_array_append(out, e);
    }
    return out;
}

static json_t *r_attempts(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    json_int_t tries = json_integer_value(json_object_get(info->parent, "tries"));
    json_int_t last = json_integer_value(json_object_get(info->args, "last"));
    json_t *out = json_array();
    for (json_int_t n = tries - last + 1; n <= tries; n++)
        if (n >= 1)
            json_array_append_new(out, json_pack("{s:I,s:b,s:f}", "n", (json_int_t)n, "ok",
                                                 n == tries && tries == 1, "ms", 12.5 * (double)n));
    return out;
}

static json_t *r_next(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    char id[32];
    snprintf(id, sizeof id, "%d", atoi(json_string_value(json_object_get(info->parent, "id"))) + 1);
    json_t *e = find_event(id);
    return e ? json_incref(e) : NULL;
}

static json_t *r_redeliver(const hr_gql_resolve_info_t *info, char **error)
{
    json_t *e = find_event(json_string_value(json_object_get(info->args, "id")));
    if (!e) {
        *error = strdup("no such event");
        return NULL;
    }
    json_t *c = json_copy(e);
    json_object_set_new(c, "status", json_string("PENDING"));
    json_array_append_new(
        (json_t *)info->ctx,
        json_sprintf("redeliver %s", json_string_value(json_object_get(e, "id"))));
    return c;
}

static json_t *r_log(const hr_gql_resolve_info_t *info, char **error)
{
    (void)error;
    json_array_append(info->ctx, json_object_get(info->args, "msg"));
    return json_copy(info->ctx);
}

static const hr_gql_resolver_t resolvers[] = {
    {"Query", "hello", r_hello},
    {"Query", "event", r_event},
    {"Query", "events", r_events},
    {"Query", "echo", r_echo},
    {"Query", "fail", r_fail},
    {"Query", "failRequired", r_fail},
    {"Query", "badInt", r_const},
    {"Query", "badEnum", r_const},
    {"Query", "notList", r_const},
    {"Query", "nullItems", r_const},
    {"Query", "nullableItems", r_const},
    {"Query", "old", r_const},
    {"Query", "trigger", r_trigger},
    {"Query", "pick", r_echo},
    {"Trigger", "events", r_trigger_events},
    {"Event", "attempts", r_attempts},
    {"Event", "next", r_next},
    {"Mutation", "redeliver", r_redeliver},
    {"Mutation", "log", r_log},
};

static hr_gql_schema_t *schema;

static int setup(void **state)
{
    (void)state;
    events_data = json_loads(
        "[{\"id\":\"1\",\"trigger\":\"orders\",\"status\":\"DELIVERED\","
        "\"payload\":{\"op\":\"INSERT\",\"new\":{\"id\":7}},\"tries\":1},"
        "{\"id\":\"2\",\"trigger\":\"orders\",\"status\":\"FAILED\",\"payload\":null,\"tries\":3},"
        "{\"id\":\"3\",\"trigger\":\"users\",\"status\":\"PENDING\",\"payload\":[1,\"two\",3.5],"
        "\"tries\":0}]",
        0, NULL);
    char *sdl = slurp("schema.graphql");
    hr_err_t err = {0};
    if (hr_gql_schema_new(sdl, resolvers, sizeof resolvers / sizeof *resolvers, &schema, &err))
        fail_msg("schema: %s", err.msg);
    free(sdl);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hr_gql_schema_free(schema);
    json_decref(events_data);
    return 0;
}

/* ---- golden cases ---- */

static json_t *run_case(json_t *c)
{
    json_t *q = json_object_get(c, "query");
    json_t *lj = json_object_get(c, "limits");
    hr_gql_limits_t lim = {0};
    if (lj) {
        lim.max_document = (size_t)json_integer_value(json_object_get(lj, "max_document"));
        lim.max_tokens = (size_t)json_integer_value(json_object_get(lj, "max_tokens"));
        lim.max_depth = (int)json_integer_value(json_object_get(lj, "max_depth"));
        lim.max_selections = (size_t)json_integer_value(json_object_get(lj, "max_selections"));
    }
    hr_gql_op_t *op;
    json_t *errors;
    int rc = hr_gql_prepare(schema, lj ? &lim : NULL, json_string_value(q), json_string_length(q),
                            json_object_get(c, "variables"),
                            json_string_value(json_object_get(c, "operationName")), &op, &errors);
    if (rc) {
        assert_null(op);
        assert_true(json_is_array(errors) && json_array_size(errors) > 0);
        return json_pack("{s:s,s:o}", "rc", rc == HR_E2BIG ? "E2BIG" : "EINVAL", "errors", errors);
    }
    json_t *ctx = json_array();
    json_t *result;
    json_t *root = json_object_get(c, "root");
    if (root) {
        hr_gql_root_t r;
        hr_gql_op_root(op, &r);
        result = hr_gql_execute_root(op, ctx, root);
        json_object_set_new(result, "root",
                            json_pack("{s:s,s:s,s:O}", "field", r.field, "alias", r.alias, "args",
                                      r.args ? r.args : json_null()));
    } else {
        result = hr_gql_execute(op, ctx);
    }
    static const char *const kinds[] = {"query", "mutation", "subscription"};
    json_object_set_new(result, "kind", json_string(kinds[hr_gql_op_kind(op)]));
    if (json_array_size(ctx)) json_object_set(result, "log", ctx);
    json_decref(ctx);
    hr_gql_op_free(op);
    return result;
}

static void run_file(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/gql/%s", data_dir(), file);
    json_error_t je;
    json_t *cases = json_load_file(path, 0, &je);
    if (!cases) fail_msg("%s: %s (line %d)", path, je.text, je.line);
    int update = getenv("HERALD_UPDATE_GOLDEN") != NULL, changed = 0, failed = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *got = run_case(c);
        json_t *want = json_object_get(c, "expect");
        if (!want || !json_equal(want, got)) {
            if (update) {
                json_object_set(c, "expect", got);
                changed = 1;
            } else {
                char *a = want ? dump(want) : strdup("(none)"), *b = dump(got);
                print_error("%s: %s:\nwant %s\ngot  %s\n", file, name ? name : "?", a, b);
                free(a);
                free(b);
                failed++;
            }
        }
        json_decref(got);
    }
    if (changed && json_dump_file(cases, path, JSON_INDENT(2) | JSON_ENSURE_ASCII) == 0) {
        FILE *f = fopen(path, "a");
        if (f) {
            fputc('\n', f);
            fclose(f);
        }
    }
    json_decref(cases);
    if (failed) fail_msg("%s: %d case(s) differ", file, failed);
}

static void test_parse(void **state)
{
    (void)state;
    run_file("parse.json");
}

static void test_validate(void **state)
{
    (void)state;
    run_file("validate.json");
}

static void test_execute(void **state)
{
    (void)state;
    run_file("execute.json");
}

static void test_variables(void **state)
{
    (void)state;
    run_file("variables.json");
}

static void test_introspection(void **state)
{
    (void)state;
    run_file("introspection.json");
}

static void test_limits(void **state)
{
    (void)state;
    run_file("limits.json");
}

/* ---- schemas ---- */

static void test_schema_errors(void **state)
{
    (void)state;
    static const struct {
        const char *sdl, *want;
    } bad[] = {
        {"type Query { a: Int", "schema:1:20: Syntax Error: Expected Name, found <EOF>."},
        {"type Query { a: Nope }", "unknown type \"Nope\""},
        {"type Query { a: Int }\ntype Query { b: Int }", "type \"Query\" is defined twice"},
        {"type Query { a: Int a: Int }", "Query.a: defined twice"},
        {"type Query { a(x: Int, x: Int): Int }", "defined twice"},
        {"type Mutation { a: Int }", "no query root type"},
        {"type Query { a: In } input In { x: Int }", "is an input type"},
        {"type Query { a(x: Query): Int }", "is not an input type"},
        {"type Query { a(x: Int = \"s\"): Int }", "default value: Int cannot represent"},
        {"type Query { a(x: E = B): Int } enum E { A }", "Value \"B\" does not exist"},
        {"type Query { a: Int @foo }", "unknown directive \"@foo\""},
        {"type Query { a: Int @specifiedBy(url: \"x\") }", "may not be used on FIELD_DEFINITION"},
        {"type Query { __a: Int }", "reserved"},
        {"type __Q { a: Int } type Query { a: Int }", "reserved"},
        {"scalar Int type Query { a: Int }", "defined twice"},
        {"interface I { a: Int } type Query { a: Int }", "interfaces are not supported"},
        {"union U = A | B type Query { a: Int }", "unions are not supported"},
        {"type Query { a: Int } extend type Query { b: Int }", "extensions are not supported"},
        {"type Query implements I { a: Int }", "interfaces are not supported"},
        {"schema { query: Q } type Q { a: Int } schema { query: Q }", "schema is defined twice"},
        {"schema { query: In } input In { a: Int }", "not an object type"},
        {"type Query", "has no fields"},
        {"enum E { true } type Query { a: Int }", "reserved"},
        {"type Query { a(x: In): Int } input In { a: Int! @deprecated }", "cannot be deprecated"},
        {"", "Unexpected <EOF>"},
        {"type Query { a(__x: Int): Int }", "reserved"},
        {"type Query { a: E } enum E { __A }", "reserved"},
        {"type Query { a(x: In): Int } input In { __a: Int }", "reserved"},
        {"type Query { a(x: In): Int } input In @oneOf { a: Int! b: Int }", "must be nullable"},
        {"type Query { a(x: In): Int } input In @oneOf { a: Int = 1 b: Int }", "must be nullable"},
        {"type Query { a(x: A): Int } input A { b: B! } input B { a: A! }",
         "refers to itself through non-null fields"},
        {"type Query { a(x: A): Int } input A { a: A! }", "refers to itself"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hr_gql_schema_t *s = (void *)1;
        hr_err_t err = {0};
        int rc = hr_gql_schema_new(bad[i].sdl, NULL, 0, &s, &err);
        if (rc != HR_EINVAL) fail_msg("%s: accepted", bad[i].sdl);
        assert_null(s);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: want \"%s\" in \"%s\"", bad[i].sdl, bad[i].want, err.msg);
    }
    /* Resolvers naming nothing. */
    hr_gql_resolver_t r1[] = {{"Query", "nope", r_hello}};
    hr_gql_resolver_t r2[] = {{"Nope", "a", r_hello}};
    hr_gql_schema_t *s;
    hr_err_t err = {0};
    assert_int_equal(hr_gql_schema_new("type Query { a: Int }", r1, 1, &s, &err), HR_EINVAL);
    assert_non_null(strstr(err.msg, "resolver Query.nope"));
    assert_int_equal(hr_gql_schema_new("type Query { a: Int }", r2, 1, &s, &err), HR_EINVAL);
    assert_non_null(strstr(err.msg, "resolver Nope.a"));
    /* Cycles through nullable or list fields are fine. */
    assert_int_equal(hr_gql_schema_new("type Query { a(x: A): Int } input A { b: B, l: [A!]! } "
                                       "input B { a: A! }",
                                       NULL, 0, &s, &err),
                     0);
    hr_gql_schema_free(s);
    /* A specified scalar the schema never uses is unknown to requests (as in graphql-js). */
    assert_int_equal(hr_gql_schema_new("type Query { a(x: Int): Int }", NULL, 0, &s, &err), 0);
    {
        hr_gql_op_t *op;
        json_t *errors;
        const char *q = "query ($f: Float, $i: Int) { a(x: $i) ... on Float { a } }";
        assert_int_equal(hr_gql_prepare(s, NULL, q, strlen(q), NULL, NULL, &op, &errors),
                         HR_EINVAL);
        char *got = dump(errors);
        assert_non_null(strstr(got, "Unknown type \\\"Float\\\"."));
        /* $f's type, its use, the fragment, a(x:) against the fragment's a: as graphql-js */
        assert_int_equal(json_array_size(errors), 4);
        free(got);
        json_decref(errors);
        q = "{ __type(name: \"Float\") { name } i: __type(name: \"Int\") { name } }";
        assert_int_equal(hr_gql_prepare(s, NULL, q, strlen(q), NULL, NULL, &op, &errors), 0);
        json_t *res = hr_gql_execute(op, NULL);
        got = dump(res);
        assert_string_equal(got, "{\"data\":{\"__type\":null,\"i\":{\"name\":\"Int\"}}}");
        free(got);
        json_decref(res);
        hr_gql_op_free(op);
    }
    hr_gql_schema_free(s);
    /* schema {} with other root names. */
    assert_int_equal(hr_gql_schema_new("schema { query: Q mutation: M } type Q { a: Int } "
                                       "type M { b: Int }",
                                       NULL, 0, &s, &err),
                     0);
    hr_gql_op_t *op;
    json_t *errors;
    assert_int_equal(hr_gql_prepare(s, NULL, "mutation { b }", 14, NULL, NULL, &op, &errors), 0);
    json_t *res = hr_gql_execute(op, NULL);
    char *got = dump(res);
    assert_string_equal(got, "{\"data\":{\"b\":null}}");
    free(got);
    json_decref(res);
    hr_gql_op_free(op);
    hr_gql_schema_free(s);
    hr_gql_schema_free(NULL);
    hr_gql_op_free(NULL);
}

/* hr_gql_op_root for queries: the first root field left by @skip/@include, its arguments
 * NULL when they do not coerce. */
static void test_op_root(void **state)
{
    (void)state;
    static const struct {
        const char *query, *vars, *field, *alias, *args;
    } cases[] = {
        {"{ hello }", NULL, "hello", "hello", "{\"name\":\"world\"}"},
        {"query Q { a: hello @skip(if: true) b: events(limit: 2) { id } }", NULL, "events", "b",
         "{\"limit\":2}"},
        {"{ ... on Query { ...F } } fragment F on Query { e: event(id: 5) { id } }", NULL, "event",
         "e", "{\"id\":\"5\"}"},
        {"{ hello @skip(if: true) }", NULL, NULL, NULL, NULL},
        {"query ($id: ID = 1) { event(id: $id) { id } }", "{\"id\":null}", "event", "event", NULL},
        {"mutation { log(msg: \"m\") }", NULL, "log", "log", "{\"msg\":\"m\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hr_gql_op_t *op;
        json_t *errors;
        json_t *vars = cases[i].vars ? json_loads(cases[i].vars, 0, NULL) : NULL;
        if (hr_gql_prepare(schema, NULL, cases[i].query, strlen(cases[i].query), vars, NULL, &op,
                           &errors))
            fail_msg("%s: refused", cases[i].query);
        hr_gql_root_t r;
        hr_gql_op_root(op, &r);
        if (cases[i].field) {
            assert_non_null(r.field);
            assert_string_equal(r.field, cases[i].field);
            assert_string_equal(r.alias, cases[i].alias);
        } else {
            assert_null(r.field);
            assert_null(r.alias);
        }
        if (cases[i].args) {
            char *got = dump(r.args);
            assert_string_equal(got, cases[i].args);
            free(got);
        } else {
            assert_null(r.args);
        }
        if (strstr(cases[i].query, "query Q"))
            assert_string_equal(hr_gql_op_name(op), "Q");
        else
            assert_null(hr_gql_op_name(op));
        hr_gql_op_free(op);
        json_decref(vars);
    }
}

/* ---- hostile documents ---- */

static json_t *prepare_errors(const char *text, size_t len, int *rc)
{
    hr_gql_op_t *op = NULL;
    json_t *errors = NULL;
    *rc = hr_gql_prepare(schema, NULL, text, len, NULL, NULL, &op, &errors);
    if (*rc == 0) {
        json_t *r = hr_gql_execute(op, NULL);
        json_decref(r);
        hr_gql_op_free(op);
        return NULL;
    }
    return errors;
}

static void expect_error(const char *text, size_t len, int want_rc, const char *want)
{
    int rc;
    json_t *errors = prepare_errors(text, len, &rc);
    if (rc != want_rc) fail_msg("rc %d, want %d", rc, want_rc);
    const char *msg = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    if (!msg || !strstr(msg, want)) fail_msg("want \"%s\", got \"%s\"", want, msg ? msg : "");
    json_decref(errors);
}

static void test_deep(void **state)
{
    (void)state;
    size_t n = 100000;
    hr_gql_limits_t big = {.max_document = 4 * n + 100, .max_tokens = 4 * n};
    char *s = malloc(4 * n + 100);
    /* { a { a { a ... */
    size_t at = 0;
    s[at++] = '{';
    for (size_t i = 0; i < n; i++) {
        memcpy(s + at, "a{", 2);
        at += 2;
    }
    hr_gql_op_t *op;
    json_t *errors;
    assert_int_equal(hr_gql_prepare(schema, &big, s, at, NULL, NULL, &op, &errors), HR_E2BIG);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                           "nests deeper"));
    json_decref(errors);
    /* {{{{ */
    memset(s, '{', n);
    assert_int_equal(hr_gql_prepare(schema, &big, s, n, NULL, NULL, &op, &errors), HR_EINVAL);
    json_decref(errors);
    /* { echo(list: [[[[... */
    at = (size_t)sprintf(s, "{ echo(list: ");
    memset(s + at, '[', n);
    at += n;
    assert_int_equal(hr_gql_prepare(schema, &big, s, at, NULL, NULL, &op, &errors), HR_E2BIG);
    json_decref(errors);
    /* { echo(filter: {range: {range: ... */
    at = (size_t)sprintf(s, "{ echo(filter: ");
    for (size_t i = 0; i < n / 4; i++) {
        memcpy(s + at, "{a:", 3);
        at += 3;
    }
    assert_int_equal(hr_gql_prepare(schema, &big, s, at, NULL, NULL, &op, &errors), HR_E2BIG);
    json_decref(errors);
    /* query ($v: [[[[Int]]]]...) */
    at = (size_t)sprintf(s, "query ($v: ");
    memset(s + at, '[', n);
    at += n;
    assert_int_equal(hr_gql_prepare(schema, &big, s, at, NULL, NULL, &op, &errors), HR_E2BIG);
    json_decref(errors);
    /* A variable of a recursive input type nested 2,000 deep. */
    {
        hr_gql_schema_t *rs;
        hr_err_t err = {0};
        assert_int_equal(hr_gql_schema_new("type Query { a(x: In): Int } input In { n: In }", NULL,
                                           0, &rs, &err),
                         0);
        json_t *deep = json_object(), *cur = deep;
        for (int i = 0; i < 2000; i++) {
            json_t *next = json_object();
            json_object_set_new(cur, "n", next);
            cur = next;
        }
        json_t *vars = json_pack("{s:o}", "x", deep);
        const char *q = "query ($x: In) { a(x: $x) }";
        assert_int_equal(hr_gql_prepare(rs, NULL, q, strlen(q), vars, NULL, &op, &errors),
                         HR_EINVAL);
        assert_non_null(
            strstr(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                   "nests deeper than 256 levels"));
        json_decref(errors);
        json_decref(vars);
        hr_gql_schema_free(rs);
    }
    /* The default caps: the document's size and its tokens. */
    memset(s, ' ', 70000);
    s[0] = '{';
    expect_error(s, 70000, HR_E2BIG, "larger than 65536 bytes");
    at = 0;
    s[at++] = '{';
    for (int i = 0; i < 6000; i++) {
        memcpy(s + at, "a:hello ", 8);
        at += 8;
    }
    s[at++] = '}';
    expect_error(s, at, HR_E2BIG, "more than 10000 tokens");
    free(s);
}

/* Wide documents within the size and token caps: each is answered (quickly: every rule is at
 * most n log n in the document, or bounded by a budget). */
static void test_wide(void **state)
{
    (void)state;
    size_t cap = 64 * 1024;
    char *s = malloc(cap);
    size_t at;
    /* 3,000 fields: past the selection cap after validation merged them. */
    at = (size_t)sprintf(s, "{");
    for (int i = 0; i < 3000; i++)
        at += (size_t)sprintf(s + at, " a%d: hello", i);
    s[at++] = '}';
    expect_error(s, at, HR_E2BIG, "selects more than 2000 fields");
    /* 900 fragments each spreading the next twice: 2^900 fields if expanded. */
    at = (size_t)sprintf(s, "{ ...F0 }");
    for (int i = 0; i < 900; i++)
        at += (size_t)sprintf(s + at, " fragment F%d on Query { ...F%d ...F%d }", i, i + 1, i + 1);
    at += (size_t)sprintf(s + at, " fragment F900 on Query { hello }");
    expect_error(s, at, HR_E2BIG, "selects more than 2000 fields");
    /* The same, every field skipped, as a subscription. */
    at = (size_t)sprintf(s, "subscription { ...F0 }");
    for (int i = 0; i < 700; i++)
        at += (size_t)sprintf(s + at, " fragment F%d on Subscription { ...F%d ...F%d }", i, i + 1,
                              i + 1);
    at +=
        (size_t)sprintf(s + at, " fragment F700 on Subscription { events @skip(if: true) { id } }");
    {
        hr_gql_limits_t lim = {.max_selections = 1u << 30};
        hr_gql_op_t *op;
        json_t *errors;
        assert_int_equal(hr_gql_prepare(schema, &lim, s, at, NULL, NULL, &op, &errors), HR_E2BIG);
        assert_non_null(
            strstr(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                   "expands to more than"));
        json_decref(errors);
    }
    /* A chain of 1,200 fragments, each spreading the next: valid, and executed. */
    at = (size_t)sprintf(s, "{ ...F0 }");
    for (int i = 0; i < 1200; i++)
        at += (size_t)sprintf(s + at, " fragment F%d on Query { ...F%d }", i, i + 1);
    at += (size_t)sprintf(s + at, " fragment F1200 on Query { hello }");
    {
        int rc2;
        json_t *e2 = prepare_errors(s, at, &rc2);
        assert_int_equal(rc2, 0);
        assert_null(e2);
    }
    /* The same chain closed into a cycle. */
    at = (size_t)sprintf(s, "{ ...F0 }");
    for (int i = 0; i < 1200; i++)
        at += (size_t)sprintf(s + at, " fragment F%d on Query { ...F%d }", i, (i + 1) % 1200);
    expect_error(s, at, HR_EINVAL, "Cannot spread fragment \"F0\" within itself via");
    /* 1,900 operations. */
    at = 0;
    for (int i = 0; i < 1900; i++)
        at += (size_t)sprintf(s + at, "query Q%d { hello } ", i);
    expect_error(s, at, HR_EINVAL, "Must provide operation name");
    /* 2,000 variables, all used. */
    at = (size_t)sprintf(s, "query (");
    for (int i = 0; i < 1600; i++)
        at += (size_t)sprintf(s + at, "$v%d: Int ", i);
    at += (size_t)sprintf(s + at, ") { echo(list: [");
    for (int i = 0; i < 1600; i++)
        at += (size_t)sprintf(s + at, "$v%d ", i);
    at += (size_t)sprintf(s + at, "]) }");
    int rc;
    json_t *e = prepare_errors(s, at, &rc);
    assert_int_equal(rc, 0);
    assert_null(e);
    /* 600 unknown fields with long names: errors stop at 100. */
    at = (size_t)sprintf(s, "{");
    for (int i = 0; i < 600; i++)
        at += (size_t)sprintf(s + at, " x%090d%d", 0, i);
    s[at++] = '}';
    e = prepare_errors(s, at, &rc);
    assert_int_equal(rc, HR_EINVAL);
    assert_int_equal(json_array_size(e), 101);
    json_decref(e);
    free(s);
}

static void test_bytes(void **state)
{
    (void)state;
    expect_error("{ hello }\0", 10, HR_EINVAL, "Unexpected character: U+0000.");
    expect_error("{ hello(name: \"\xff\") }", 20, HR_EINVAL, "Invalid UTF-8");
    expect_error("{ hello(name: \"\xc3\") }", 20, HR_EINVAL, "Invalid UTF-8");
    expect_error("{ \xc3\xa9 }", 6, HR_EINVAL, "Unexpected character: U+00E9.");
    expect_error("", 0, HR_EINVAL, "Unexpected <EOF>");
    /* Not NUL-terminated: the engine reads len bytes only. */
    char *t = malloc(9);
    memcpy(t, "{ hello }", 9);
    int rc;
    json_t *e = prepare_errors(t, 9, &rc);
    assert_int_equal(rc, 0);
    assert_null(e);
    free(t);
    /* NULL text, empty variables object, variables not an object. */
    hr_gql_op_t *op;
    json_t *errors;
    assert_int_equal(hr_gql_prepare(schema, NULL, NULL, 0, NULL, NULL, &op, &errors), HR_EINVAL);
    json_decref(errors);
    json_t *vars = json_array();
    assert_int_equal(hr_gql_prepare(schema, NULL, "{ hello }", 9, vars, NULL, &op, &errors),
                     HR_EINVAL);
    json_decref(errors);
    json_decref(vars);
}

/* mulberry32, so that a failure reproduces. */
static uint32_t rnd_state = 0x6a09e667u;
static uint32_t rnd(void)
{
    uint32_t t = (rnd_state += 0x6d2b79f5u);
    t = (t ^ (t >> 15)) * (t | 1);
    t ^= t + (t ^ (t >> 7)) * (t | 61);
    return t ^ (t >> 14);
}

static void check_errors(json_t *errors, const char *doc)
{
    size_t i;
    json_t *e;
    if (!json_is_array(errors) || json_array_size(errors) == 0) fail_msg("no errors for %s", doc);
    json_array_foreach(errors, i, e)
    {
        if (!json_is_string(json_object_get(e, "message"))) fail_msg("no message for %s", doc);
        json_t *loc = json_array_get(json_object_get(e, "locations"), 0);
        if (loc && (json_integer_value(json_object_get(loc, "line")) < 1 ||
                    json_integer_value(json_object_get(loc, "column")) < 1))
            fail_msg("bad location for %s", doc);
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    static const char *const files[] = {"parse.json", "validate.json", "execute.json",
                                        "variables.json", "introspection.json"};
    static const char *const pieces[] = {"{",
                                         "}",
                                         "(",
                                         ")",
                                         "[",
                                         "]",
                                         "...",
                                         "$",
                                         "@",
                                         ":",
                                         "=",
                                         "!",
                                         "\"",
                                         "\"\"\"",
                                         "on",
                                         "#",
                                         "\\",
                                         "\n",
                                         "null",
                                         "-0",
                                         "1e999",
                                         "\xc3",
                                         "\xff",
                                         "\0",
                                         "fragment F on Query { hello }",
                                         "...F",
                                         "$x",
                                         "@skip(if: true)",
                                         "__typename",
                                         "query ($x: Int) "};
    json_t *docs = json_array();
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/gql/%s", data_dir(), files[f]);
        json_t *cases = json_load_file(path, 0, NULL);
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c)
        {
            json_array_append(docs, json_object_get(c, "query"));
        }
        json_decref(cases);
    }
    size_t ndocs = json_array_size(docs);
    assert_true(ndocs > 0);
    int ok = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        json_t *src = json_array_get(docs, rnd() % ndocs);
        size_t len = json_string_length(src);
        char *buf = malloc(len + 64 * 40 + 1);
        memcpy(buf, json_string_value(src), len);
        int edits = 1 + (int)(rnd() % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = len ? rnd() % (len + 1) : 0;
            switch (rnd() % 4) {
            case 0: /* delete a span */
                if (len) {
                    size_t n = 1 + rnd() % 8;
                    if (at + n > len) n = len - at;
                    memmove(buf + at, buf + at + n, len - at - n);
                    len -= n;
                }
                break;
            case 1: { /* insert a piece */
                const char *p = pieces[rnd() % (sizeof pieces / sizeof *pieces)];
                size_t n = *p ? strlen(p) : 1;
                memmove(buf + at + n, buf + at, len - at);
                memcpy(buf + at, p, n);
                len += n;
                break;
            }
            case 2: /* flip a byte */
                if (at < len) buf[at] = (char)(rnd() & 0xff);
                break;
            default: /* duplicate a span */
                if (len) {
                    size_t n = 1 + rnd() % 32;
                    if (at + n > len) n = len - at;
                    memmove(buf + at + n, buf + at, len - at);
                    len += n;
                }
            }
        }
        hr_gql_op_t *op;
        json_t *errors;
        json_t *vars = json_pack("{s:i,s:s}", "x", (int)(rnd() % 100), "id", "1");
        if (hr_gql_prepare(schema, NULL, buf, len, vars, NULL, &op, &errors) == 0) {
            json_t *ctx = json_array();
            json_t *r = hr_gql_op_kind(op) == HR_GQL_SUBSCRIPTION
                            ? hr_gql_execute_root(op, ctx, json_array_get(events_data, 0))
                            : hr_gql_execute(op, ctx);
            json_decref(r);
            json_decref(ctx);
            hr_gql_op_free(op);
            ok++;
        } else {
            char *d = strndup(buf, len);
            check_errors(errors, d);
            free(d);
            json_decref(errors);
            refused++;
        }
        json_decref(vars);
        free(buf);
    }
    json_decref(docs);
    /* Both outcomes must have been exercised. */
    assert_true(ok > 100);
    assert_true(refused > 100);
}

/* A random JSON value, nested at most depth deep, with the names inputs use as keys. */
static json_t *random_json(int depth)
{
    static const char *const keys[] = {"trigger", "status", "minTries", "range", "from",
                                       "to",      "id",     "nope",     "a",     "x"};
    static const char *const strings[] = {"PENDING", "DEAD", "NOPE",   "",      "1",
                                          "2.5",     "true", "\u00e9", "orders"};
    switch (rnd() % (depth > 0 ? 9 : 6)) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd() & 1);
    case 2: {
        static const json_int_t ints[] = {
            0, 1, -1, 2147483647, 2147483648LL, -2147483649LL, INT64_MAX, INT64_MIN};
        return json_integer(ints[rnd() % (sizeof ints / sizeof *ints)]);
    }
    case 3: {
        static const double reals[] = {0.5, -1.5, 4.0, 1e300, -1e-300, 3e9};
        return json_real(reals[rnd() % (sizeof reals / sizeof *reals)]);
    }
    case 4:
    case 5:
        return json_string(strings[rnd() % (sizeof strings / sizeof *strings)]);
    case 6:
    case 7: {
        json_t *a = json_array();
        for (uint32_t n = rnd() % 4; n > 0; n--)
            json_array_append_new(a, random_json(depth - 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t n = rnd() % 4; n > 0; n--)
            json_object_set_new(o, keys[rnd() % (sizeof keys / sizeof *keys)],
                                random_json(depth - 1));
        return o;
    }
    }
}

/* Requests of the golden cases with random variables: refused with well-formed errors, or
 * executed; never a crash (the ASan build runs this too). */
static void test_fuzz_variables(void **state)
{
    (void)state;
    static const char *const files[] = {"variables.json", "execute.json", "validate.json"};
    static const char *const names[] = {"i", "f",   "s",  "b", "id", "st", "l", "n", "fi",
                                        "j", "yes", "no", "a", "t",  "p",  "x", "v", "if"};
    int ok = 0, refused = 0;
    for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
        char path[512];
        snprintf(path, sizeof path, "%s/gql/%s", data_dir(), files[fi]);
        json_t *cases = json_load_file(path, 0, NULL);
        assert_non_null(cases);
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c)
        {
            json_t *q = json_object_get(c, "query");
            for (int round = 0; round < 30; round++) {
                json_t *vars = json_object();
                for (size_t k = 0; k < sizeof names / sizeof *names; k++)
                    if (rnd() % 3 == 0) json_object_set_new(vars, names[k], random_json(3));
                hr_gql_op_t *op;
                json_t *errors;
                if (hr_gql_prepare(schema, NULL, json_string_value(q), json_string_length(q), vars,
                                   NULL, &op, &errors) == 0) {
                    json_t *ctx = json_array();
                    json_t *root = random_json(3); /* borrowed by execute_root */
                    json_t *r = hr_gql_op_kind(op) == HR_GQL_SUBSCRIPTION
                                    ? hr_gql_execute_root(op, ctx, root)
                                    : hr_gql_execute(op, ctx);
                    json_decref(root);
                    assert_true(json_is_object(r));
                    json_decref(r);
                    json_decref(ctx);
                    hr_gql_op_free(op);
                    ok++;
                } else {
                    check_errors(errors, json_string_value(q));
                    json_decref(errors);
                    refused++;
                }
                json_decref(vars);
            }
        }
        json_decref(cases);
    }
    assert_true(ok > 100);
    assert_true(refused > 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_validate),
        cmocka_unit_test(test_execute),       cmocka_unit_test(test_variables),
        cmocka_unit_test(test_introspection), cmocka_unit_test(test_limits),
        cmocka_unit_test(test_schema_errors), cmocka_unit_test(test_deep),
        cmocka_unit_test(test_bytes),         cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_op_root),       cmocka_unit_test(test_fuzz_variables),
        cmocka_unit_test(test_wide),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
