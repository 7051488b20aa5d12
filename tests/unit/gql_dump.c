/* gql_dump.c: runs GraphQL requests through herald's engine (src/gql), for the end-to-end
 * cross-check against graphql-js (tests/e2e/suites/gql_engine.test.js). Built by CMake, not
 * run by ctest.
 *
 *   gql_dump SCHEMA.graphql < requests.jsonl
 *
 * Each input line is a JSON object {"query", "variables"?, "operationName"?, "root"?}; each
 * output line is the JSON answer: {"errors": [...]} when hr_gql_prepare refuses the request,
 * else the execution result. There are no resolvers: root fields take the members of "root"
 * (a JSON object) and nested fields the members of their parent. A schema that does not build
 * prints {"schema_error": "..."} once and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gql/gql_int.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t n;
    while ((n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) s = realloc(s, cap *= 2);
    }
    fclose(f);
    s[len] = '\0';
    return s;
}

static void print(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gql_dump SCHEMA.graphql < requests.jsonl\n");
        return 2;
    }
    char *sdl = slurp(argv[1]);
    if (!sdl) {
        fprintf(stderr, "gql_dump: cannot read %s\n", argv[1]);
        return 2;
    }
    hr_gql_schema_t *schema;
    hr_err_t err = {0};
    if (hr_gql_schema_new(sdl, NULL, 0, &schema, &err)) {
        json_t *o = json_pack("{s:s}", "schema_error", err.msg);
        print(o);
        json_decref(o);
        free(sdl);
        return 1;
    }
    free(sdl);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n <= 1) continue;
        json_error_t je;
        json_t *req = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je);
        if (!req) {
            json_t *o = json_pack("{s:s}", "input_error", je.text);
            print(o);
            json_decref(o);
            continue;
        }
        json_t *q = json_object_get(req, "query");
        hr_gql_op_t *op;
        json_t *errors;
        json_t *res;
        if (hr_gql_prepare(schema, NULL, json_string_value(q), json_string_length(q),
                           json_object_get(req, "variables"),
                           json_string_value(json_object_get(req, "operationName")), &op,
                           &errors)) {
            res = json_pack("{s:o}", "errors", errors);
        } else {
            res = hr_gql_exec(op, NULL, json_object_get(req, "root"), 0);
            hr_gql_op_free(op);
        }
        print(res);
        json_decref(res);
        json_decref(req);
    }
    free(line);
    hr_gql_schema_free(schema);
    return 0;
}
