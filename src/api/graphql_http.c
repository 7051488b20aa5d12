/* graphql_http.c: GraphQL over HTTP on /v1/graphql (the GraphQL-over-HTTP specification), and
 * the registration of the whole endpoint (the WebSocket subprotocols are graphql_ws.c's).
 *
 *   POST  body {"query", "variables"?, "operationName"?, "extensions"?} (application/json)
 *   GET   ?query=…&variables=<JSON>&operationName=…&extensions=<JSON>; queries only
 *
 * A request goes: admin secret (401) → Accept (406) → the GraphQL request's shape (400) →
 * hr_gqlsvc_prepare (parse, validation, variables) → operation kind (GET mutation: 405,
 * subscription: a request error) → hr_gqlsvc_execute → 200.
 *
 * The answer's media type is negotiated from Accept: application/graphql-response+json unless
 * the client prefers application/json (by q-value; a tie, a wildcard or no Accept header picks
 * application/graphql-response+json). The two differ only in the status of requests that fail
 * before execution but are well-formed GraphQL requests (parse and validation errors, bad
 * variables, a subscription): 400 with application/graphql-response+json, 200 with
 * application/json, as the specification says. A body that is no GraphQL request at all is 400
 * with both. Every error answer carries {"errors": [{"message", "extensions": {"code"}}]}. */
#include "api/graphql_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GRAPHQL_PATH "/v1/graphql"
#define CT_GQL "application/graphql-response+json; charset=utf-8"
#define CT_JSON "application/json; charset=utf-8"
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

typedef enum { MEDIA_NONE, MEDIA_GQL, MEDIA_JSON } media_t;

/* ---- Accept -------------------------------------------------------------------------------- */

/* The q-value of one media range's parameters ("; q=0.5"); 1 when absent, -1 when malformed. */
static double q_of(const char *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (params[i] != ';') continue;
        size_t j = i + 1;
        while (j < n && (params[j] == ' ' || params[j] == '\t'))
            j++;
        if (j + 1 < n && (params[j] == 'q' || params[j] == 'Q') && params[j + 1] == '=') {
            char num[16];
            size_t k = 0;
            for (j += 2; j < n && k + 1 < sizeof num && params[j] != ';' && params[j] != ' '; j++)
                num[k++] = params[j];
            num[k] = '\0';
            char *end;
            double q = strtod(num, &end);
            return (!k || *end || q < 0 || q > 1) ? -1 : q;
        }
    }
    return 1;
}

/* Chooses the answer's media type from an Accept header (NULL: none). For each of our two types
 * the most specific matching range decides its q-value (RFC 9110 12.5.1). */
static media_t negotiate(const char *accept)
{
    if (!accept || !*accept) return MEDIA_GQL;
    static const char *const types[2] = {"application/graphql-response+json", "application/json"};
    double q[2] = {0, 0};
    int spec[2] = {0, 0}; /* 0 none, 1 * / *, 2 application/ *, 3 exact */
    for (const char *p = accept; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        size_t tlen = 0;
        while (tlen < n && p[tlen] != ';' && p[tlen] != ' ' && p[tlen] != '\t')
            tlen++;
        double rq = q_of(p + tlen, n - tlen);
        for (int t = 0; t < 2 && rq >= 0; t++) {
            int s = 0;
            if (tlen == strlen(types[t]) && strncasecmp(p, types[t], tlen) == 0)
                s = 3;
            else if (tlen == 13 && strncasecmp(p, "application/*", 13) == 0)
                s = 2;
            else if (tlen == 3 && strncmp(p, "*/*", 3) == 0)
                s = 1;
            if (s > spec[t]) {
                spec[t] = s;
                q[t] = rq;
            }
        }
        p += n;
    }
    if (q[0] > 0 && q[0] >= q[1]) return MEDIA_GQL;
    if (q[1] > 0) return MEDIA_JSON;
    return MEDIA_NONE;
}

/* ---- answers ------------------------------------------------------------------------------- */

/* {"errors": [{"message": msg, "extensions": {"code": code}}]} */
static json_t *error_body(const char *msg, const char *code)
{
    json_t *e =
        json_pack("{s:s%, s:{s:s}}", "message", msg, strlen(msg), "extensions", "code", code);
    return json_pack("{s:[o]}", "errors", e);
}

/* The text of a result being serialised, abandoned past HR_GQL_MAX_RESULT bytes. */
typedef struct capped {
    hr_buf_t b; /* limit HR_GQL_MAX_RESULT */
    int over;   /* the limit was reached */
} capped_t;

static int capped_put(const char *chunk, size_t n, void *ud)
{
    capped_t *c = ud;
    if (hr_buf_append(&c->b, chunk, n) == 0) return 0;
    c->over = 1;
    return -1;
}

char *hr_graphql_dump_result(json_t *result, size_t *len)
{
    capped_t c = {.over = 0};
    hr_buf_init(&c.b, HR_GQL_MAX_RESULT);
    if (json_dump_callback(result, capped_put, &c, DUMP_FLAGS) == 0 && c.b.data)
        return hr_buf_steal(&c.b, len);
    hr_buf_free(&c.b);
    if (!c.over) {
        *len = strlen("{\"errors\":[{\"message\":\"result not serialisable\"}]}");
        return hr_xstrdup("{\"errors\":[{\"message\":\"result not serialisable\"}]}");
    }
    char msg[128];
    snprintf(msg, sizeof msg, "the result is larger than %u bytes: ask for fewer fields or items",
             HR_GQL_MAX_RESULT);
    json_t *body = error_body(msg, "RESULT_TOO_LARGE");
    char *text = json_dumps(body, DUMP_FLAGS);
    json_decref(body);
    *len = strlen(text);
    return text;
}

/* Sends body (taken) as the negotiated media type (application/json for MEDIA_NONE). */
static void send_body(hr_request_t *req, int status, media_t media, json_t *body)
{
    size_t len = 0;
    char *text = hr_graphql_dump_result(body, &len);
    hr_response_send(req, status, media == MEDIA_GQL ? CT_GQL : CT_JSON, text, len);
    free(text);
    json_decref(body);
}

static void send_error(hr_request_t *req, int status, media_t media, const char *msg,
                       const char *code)
{
    send_body(req, status, media, error_body(msg, code));
}

/* ---- the request --------------------------------------------------------------------------- */

/* A GraphQL request's parts, borrowed from a parsed body or the query parameters. */
typedef struct gql_request {
    const char *query;
    size_t query_len;
    json_t *variables; /* an object or NULL */
    const char *operation_name;
    json_t *owned[2]; /* what to release (body, or GET's variables and extensions) */
} gql_request_t;

static void request_release(gql_request_t *r)
{
    json_decref(r->owned[0]);
    json_decref(r->owned[1]);
}

/* Checks that a POST body announces JSON (a missing Content-Type is taken as JSON). */
static int json_content(const char *ct)
{
    if (!ct) return 1;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Reads the request; on failure writes the reason into msg and returns -1. */
static int read_post(hr_request_t *req, gql_request_t *r, char *msg, size_t cap)
{
    size_t len;
    const char *body = hr_request_body(req, &len);
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (!doc) {
        snprintf(msg, cap, "the body is not JSON: %s", jerr.text);
        return -1;
    }
    r->owned[0] = doc;
    if (!json_is_object(doc)) {
        snprintf(msg, cap, "the body must be a JSON object");
        return -1;
    }
    json_t *q = json_object_get(doc, "query"), *v = json_object_get(doc, "variables");
    json_t *o = json_object_get(doc, "operationName"), *x = json_object_get(doc, "extensions");
    if (!json_is_string(q) || json_string_length(q) == 0) {
        snprintf(msg, cap, "\"query\" must be a non-empty string");
        return -1;
    }
    if (v && !json_is_null(v) && !json_is_object(v)) {
        snprintf(msg, cap, "\"variables\" must be an object");
        return -1;
    }
    if (o && !json_is_null(o) && !json_is_string(o)) {
        snprintf(msg, cap, "\"operationName\" must be a string");
        return -1;
    }
    if (x && !json_is_null(x) && !json_is_object(x)) {
        snprintf(msg, cap, "\"extensions\" must be an object");
        return -1;
    }
    r->query = json_string_value(q);
    r->query_len = json_string_length(q);
    r->variables = json_is_object(v) ? v : NULL;
    r->operation_name = json_is_string(o) ? json_string_value(o) : NULL;
    return 0;
}

/* A query parameter holding JSON text: an object, or empty/"null" for none. */
static int json_param(hr_request_t *req, const char *name, json_t **out, char *msg, size_t cap)
{
    const char *text = hr_request_query_param(req, name);
    *out = NULL;
    if (!text || !*text || !strcmp(text, "null")) return 0;
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!json_is_object(v)) {
        json_decref(v);
        snprintf(msg, cap, "the \"%s\" parameter must be a JSON object", name);
        return -1;
    }
    *out = v;
    return 0;
}

static int read_get(hr_request_t *req, gql_request_t *r, char *msg, size_t cap)
{
    const char *q = hr_request_query_param(req, "query");
    if (!q || !*q) {
        snprintf(msg, cap, "the \"query\" parameter is missing or empty");
        return -1;
    }
    if (json_param(req, "variables", &r->owned[0], msg, cap) ||
        json_param(req, "extensions", &r->owned[1], msg, cap))
        return -1;
    r->query = q;
    r->query_len = strlen(q);
    r->variables = r->owned[0];
    const char *o = hr_request_query_param(req, "operationName");
    r->operation_name = o && *o ? o : NULL;
    return 0;
}

static void on_graphql(hr_request_t *req, void *ud)
{
    hr_api_ctx_t *ctx = ud;
    media_t media = negotiate(hr_request_header(req, "accept"));
    if (!hr_api_authorized(ctx, req)) {
        send_error(req, 401, media, "invalid or missing x-herald-admin-secret", "access-denied");
        return;
    }
    if (media == MEDIA_NONE) {
        send_error(req, 406, MEDIA_JSON,
                   "cannot answer with any media type of Accept (answers are "
                   "application/graphql-response+json or application/json)",
                   "NOT_ACCEPTABLE");
        return;
    }
    if (!ctx->graphql) {
        send_error(req, 503, media, "the GraphQL service is not running", "INTERNAL");
        return;
    }
    int is_get = strcmp(hr_request_method(req), "GET") == 0;
    if (!is_get && !json_content(hr_request_header(req, "content-type"))) {
        send_error(req, 415, media, "the body must be application/json", "BAD_REQUEST");
        return;
    }
    gql_request_t r;
    memset(&r, 0, sizeof r);
    char msg[256];
    if ((is_get ? read_get(req, &r, msg, sizeof msg) : read_post(req, &r, msg, sizeof msg))) {
        request_release(&r);
        send_error(req, 400, media, msg, "BAD_REQUEST");
        return;
    }
    /* Errors of a well-formed request: 400 for graphql-response+json, 200 for json. */
    int request_error = media == MEDIA_GQL ? 400 : 200;
    hr_gql_op_t *op = NULL;
    json_t *errors = NULL;
    int rc = hr_gqlsvc_prepare(ctx->graphql, r.query, r.query_len, r.variables, r.operation_name,
                               &op, &errors);
    request_release(&r);
    if (rc) {
        if (!errors) errors = json_pack("[{s:s}]", "message", "invalid request");
        send_body(req, request_error, media, json_pack("{s:o}", "errors", errors));
        return;
    }
    hr_gql_kind_t kind = hr_gql_op_kind(op);
    if (kind == HR_GQL_SUBSCRIPTION) {
        hr_gql_op_free(op);
        send_error(req, request_error, media,
                   "subscriptions need a WebSocket (subprotocol graphql-transport-ws or "
                   "graphql-ws on this path)",
                   "BAD_REQUEST");
        return;
    }
    if (kind == HR_GQL_MUTATION && is_get) {
        hr_gql_op_free(op);
        hr_response_header(req, "Allow", "POST");
        send_error(req, 405, media, "mutations are only accepted with POST", "BAD_REQUEST");
        return;
    }
    json_t *result = hr_gqlsvc_execute(ctx->graphql, op);
    hr_gql_op_free(op);
    if (!result) result = error_body("the operation failed", "INTERNAL");
    send_body(req, 200, media, result);
}

/* ---- registration -------------------------------------------------------------------------- */

int hr_graphql_register(hr_server_t *srv, hr_api_ctx_t *ctx, hr_err_t *err)
{
    int rc = hr_gqlsvc_new(ctx, &ctx->graphql, err);
    if (rc) return rc;
    if ((rc = hr_server_route(srv, "POST", GRAPHQL_PATH, on_graphql, ctx)) ||
        (rc = hr_server_route(srv, "GET", GRAPHQL_PATH, on_graphql, ctx)) ||
        (rc = hr_graphql_ws_register(srv, ctx, GRAPHQL_PATH))) {
        /* The routes stay (a server is not unrouted) and answer 503 without the service. */
        hr_gqlsvc_free(ctx->graphql);
        ctx->graphql = NULL;
        return hr_err_set(err, rc, "%s: cannot register the routes: %s", GRAPHQL_PATH,
                          hr_strerror(rc));
    }
    return 0;
}

void hr_graphql_close(hr_api_ctx_t *ctx)
{
    if (!ctx->graphql) return;
    hr_gqlsvc_free(ctx->graphql);
    ctx->graphql = NULL;
}
