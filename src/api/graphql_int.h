/* graphql_int.h: the two halves of /v1/graphql, private to src/api/.
 *
 *   transport (graphql_http.c, graphql_ws.c): GraphQL over HTTP (POST, GET) and the WebSocket
 *     subprotocols graphql-transport-ws and the legacy graphql-ws; the admin secret; request
 *     errors; one session per socket.
 *   service (graphql_svc.c, graphql_hub.c): herald's schema and resolvers over the store, and the
 *     subscriptions, driven by the dispatcher's progress.
 *
 * The transport never sees the schema; the service never sees a socket. Both run on the loop.
 *
 *   svc = ctx->graphql (made by hr_graphql_register)
 *   rc = hr_gqlsvc_prepare(svc, query, len, variables, operation_name, &op, &errors);
 *   kind = hr_gql_op_kind(op)
 *   query / mutation: result = hr_gqlsvc_execute(svc, op);  hr_gql_op_free(op);
 *   subscription:     hr_gqlsvc_subscribe(svc, op, &sink, &sub);  takes op
 *                     ... sink.next(ud, payload, len) for each result, sink.complete(ud, errors)
 *                     once at the end (the service's end), or hr_gqlsvc_unsubscribe(sub)
 *                     (the client's end: no callback runs after it). */
#ifndef HR_GRAPHQL_INT_H
#define HR_GRAPHQL_INT_H

#include <jansson.h>

#include "api/api.h"
#include "gql/gql.h"

typedef struct hr_gqlsvc hr_gqlsvc_t;
typedef struct hr_gqlsub hr_gqlsub_t;

/* Where a subscription's results go. */
typedef struct hr_gql_sink {
    /* One result: payload is the serialised execution result {"data": …} (with "errors" when
     * any), len bytes, borrowed for the call. The same string may be handed to many subscribers
     * (results are serialised once per distinct operation and batch), so the transport wraps it:
     * {"id":"<id>","type":"next","payload":<payload>}. */
    void (*next)(void *ud, const char *payload, size_t len);
    /* The subscription ended on the service's side: errors NULL (the stream is finished) or a
     * borrowed JSON array of error objects. The subscription is freed after this returns. */
    void (*complete)(void *ud, json_t *errors);
    void *ud;
    /* Optional (NULL: never behind). The bytes written to the subscription's socket but not yet
     * taken by its client. The service sends nothing more to a subscriber while this is above
     * HR_GQL_SLOW_QUEUED: a catch-up pauses, a subscriber at the tail leaves its group and
     * catches up on its own once its client reads again (docs/graphql.md, "Slow clients"). */
    size_t (*queued)(void *ud);
} hr_gql_sink_t;

/* The queued bytes above which a subscriber is held back (see hr_gql_sink_t.queued). */
#define HR_GQL_SLOW_QUEUED (1024u * 1024)
/* The most bytes one serialised query or mutation result may take (docs/api.md); a bigger one
 * is answered with a RESULT_TOO_LARGE error instead, over HTTP and WebSocket alike. */
#define HR_GQL_MAX_RESULT (16u * 1024 * 1024)

/* Active subscriptions by kind, for /metrics. */
typedef struct hr_gqlsvc_counts {
    size_t events_stream, event, stats;
} hr_gqlsvc_counts_t;

/* Made and freed by the service (graphql_svc.c). */
int hr_gqlsvc_new(hr_api_ctx_t *ctx, hr_gqlsvc_t **out, hr_err_t *err);
/* Ends every subscription (no sink callbacks) and frees svc. */
void hr_gqlsvc_free(hr_gqlsvc_t *svc);

/* Parses, validates, coerces variables (see hr_gql_prepare). On failure returns HR_EINVAL or
 * HR_E2BIG with *errors a new JSON array; the transport answers with a request error. */
int hr_gqlsvc_prepare(hr_gqlsvc_t *svc, const char *query, size_t len, json_t *variables,
                      const char *operation_name, hr_gql_op_t **op, json_t **errors);
/* Runs a query or mutation now (resolvers may run short store transactions on the loop).
 * Returns the new result object {"data": …, "errors"?: […]}. op stays the caller's. */
json_t *hr_gqlsvc_execute(hr_gqlsvc_t *svc, const hr_gql_op_t *op);
/* Starts a subscription; takes op (also on failure). The first result may be sent before
 * this returns. On failure (arguments the service refuses, e.g. a cursor in the future)
 * returns HR_EINVAL with *errors a new JSON array, and no sink callback runs. */
int hr_gqlsvc_subscribe(hr_gqlsvc_t *svc, hr_gql_op_t *op, const hr_gql_sink_t *sink,
                        hr_gqlsub_t **out, json_t **errors);
/* Ends a subscription from the client's side; no sink callback runs during or after it. Safe to
 * call from inside a sink callback only before complete. */
void hr_gqlsvc_unsubscribe(hr_gqlsub_t *sub);
/* The subscriptions active now (svc may be NULL: all zero). */
void hr_gqlsvc_counts(const hr_gqlsvc_t *svc, hr_gqlsvc_counts_t *out);

/* Inside the transport: graphql_http.c's hr_graphql_register adds the WebSocket subprotocols of
 * graphql_ws.c on the same path (ctx->graphql is set before). */
int hr_graphql_ws_register(hr_server_t *srv, hr_api_ctx_t *ctx, const char *path);
/* A query or mutation result (borrowed) serialised for the client: a new string of *len bytes,
 * or, past HR_GQL_MAX_RESULT bytes, {"errors":[…RESULT_TOO_LARGE…]} (graphql_http.c). */
char *hr_graphql_dump_result(json_t *result, size_t *len);

#endif
