/* api.h: what the HTTP API's modules share (health and metrics, the metadata API, later GraphQL).
 *
 * All handlers run on the dispatcher's loop. The store's synchronous operations block the loop
 * for the duration of one short transaction; that is accepted for the metadata API, whose calls
 * are rare, and never used on a delivery path. */
#ifndef HR_API_H
#define HR_API_H

#include <jansson.h>

#include "api/server.h"
#include "dispatch/dispatcher.h"
#include "store/store.h"

typedef struct hr_api_ctx {
    uv_loop_t *loop;
    const hr_store_ops_t *ops;
    hr_store_t *store;
    hr_dispatcher_t *dispatcher; /* may be NULL (tests); poke it after queueing work */
    const char *admin_secret;    /* NULL: no secret (then herald listens on loopback only) */
    /* The store's URL: /metrics reads the per-trigger status (backlog, delayed, dead) on a
     * connection of its own in a worker thread, never on the loop. NULL: no such gauges. */
    const char *database_url;
    struct hr_ops *ops_state; /* /healthz, /readyz and /metrics (ops.c); NULL before */
    struct hr_gqlsvc *graphql; /* /v1/graphql's service (graphql_int.h); NULL before */
} hr_api_ctx_t;

/* 1 when req carries the admin secret in x-herald-admin-secret (or x-hasura-admin-secret),
 * compared in constant time; always 1 when no secret is configured. */
int hr_api_authorized(const hr_api_ctx_t *ctx, hr_request_t *req);
/* 1 when got equals want, compared in constant time (api_util.c). */
int hr_api_same_secret(const char *want, const char *got);
/* Sends body as compact JSON with Content-Type application/json; takes the reference. */
void hr_api_send_json(hr_request_t *req, int status, json_t *body);
/* Sends Hasura's error envelope {"code","error","path"} (path "$" when NULL). */
void hr_api_send_error(hr_request_t *req, int status, const char *code, const char *error,
                       const char *path);

/* Registers POST /v1/metadata. */
int hr_metadata_register(hr_server_t *srv, hr_api_ctx_t *ctx, hr_err_t *err);
/* Registers POST and GET /v1/graphql and the WebSocket subprotocols graphql-transport-ws and
 * graphql-ws on the same path; sets ctx->graphql. */
int hr_graphql_register(hr_server_t *srv, hr_api_ctx_t *ctx, hr_err_t *err);
/* Ends every subscription and frees ctx->graphql; call after hr_server_close. */
void hr_graphql_close(hr_api_ctx_t *ctx);
/* Registers GET /healthz, /readyz and /metrics (see docs/api.md); sets ctx->ops_state. ctx must
 * outlive the server and hr_ops_close. */
int hr_ops_register(hr_server_t *srv, hr_api_ctx_t *ctx, hr_err_t *err);
/* Releases ctx->ops_state once its pending work (a readiness check, a status refresh) has ended —
 * which, for a readiness check, may take until the store is closed — then calls done(ud) from
 * the loop (never from inside the call). Call it after hr_server_close; the server must not
 * serve requests any more. Without ops_state it only calls done (through the loop). */
void hr_ops_close(hr_api_ctx_t *ctx, void (*done)(void *ud), void *ud);

#endif
