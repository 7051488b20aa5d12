/* graphql_ws.c: GraphQL over WebSocket on /v1/graphql — the subprotocol graphql-transport-ws
 * (the graphql-ws library's PROTOCOL.md) and the legacy graphql-ws (subscriptions-transport-ws'
 * PROTOCOL.md). One session per socket; its operations are a short list of ids.
 *
 *   upgrade ─► WAIT_INIT ──connection_init (secret ok)──► READY ──close──► (freed)
 *                 │ 3 s without connection_init: 4408      │ subscribe/start ─► op (query,
 *                 └ secret missing or wrong: 4403            mutation: next + complete at once;
 *                   (legacy: connection_error, then 4403)    subscription: hr_gqlsvc_subscribe,
 *                                                            sink.next ─► next/data, sink.complete
 *                                                            ─► complete or error)
 *
 * graphql-transport-ws close codes: 4400 invalid message (bad JSON, an unknown or misplaced
 * type, a binary frame), 4401 subscribe before connection_ack, 4403 forbidden, 4408 no
 * connection_init in time, 4409 an id already active, 4429 a second connection_init. The legacy
 * protocol has no close codes of its own: it answers bad messages with an "error" message and
 * goes on; it shares the 3 s initialisation deadline (4408) and ends a rejected connection_init
 * with 4403 after connection_error. After connection_ack it sends "ka" at once and every
 * KA_INTERVAL_MS.
 *
 * The admin secret (when one is set): connectionParams (the connection_init payload) holds it as
 * x-herald-admin-secret or x-hasura-admin-secret, at the top or inside a "headers" object (as
 * Hasura's console sends it), names compared without regard to case; without it there, the
 * upgrade request's own headers may carry it. Compared in constant time (hr_api_same_secret).
 *
 * Results reach the socket with one copy: a subscription's payload, serialised once by the
 * service for all its subscribers, is framed by the operation's prefix {"id":…,"type":"next",
 * "payload": and "}" (hr_ws_sendv). Invariants: (1) an operation is in its session's list from
 * subscribe until its end (the service's complete, the client's complete/stop, or the socket's
 * close), and hr_gqlsvc_unsubscribe is called exactly for those the client or the close ends;
 * (2) no sink callback reaches a freed operation: the service calls none after complete or
 * unsubscribe. */
#include "api/graphql_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

/* Time a client has from the upgrade to connection_init. */
#define INIT_TIMEOUT_MS 3000
/* Legacy protocol: keep-alive ("ka") period after connection_ack. */
#define KA_INTERVAL_MS 10000
/* Subscriptions one socket may hold at once; more get an error message. */
#define MAX_OPS_PER_SOCKET 1000
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

static const char *const subprotocols[] = {"graphql-transport-ws", "graphql-ws", NULL};

typedef struct session session_t;

/* One active operation (a subscription; queries and mutations finish within their message). */
typedef struct op {
    struct op *next;
    session_t *s;
    hr_gqlsub_t *sub;
    hr_gql_sink_t sink;
    int subscribing; /* inside hr_gqlsvc_subscribe */
    int ended;       /* the service completed it inside hr_gqlsvc_subscribe */
    size_t prefix_len;
    char *id;      /* the client's id */
    char prefix[]; /* {"id":<id>,"type":"next","payload":  (legacy: "data") */
} op_t;

struct session {
    hr_api_ctx_t *ctx;
    hr_ws_t *ws;
    int legacy;      /* subprotocol graphql-ws */
    int init_seen;   /* connection_init received */
    int acked;       /* connection_ack sent */
    int header_auth; /* the upgrade request carried the admin secret */
    op_t *ops;
    size_t nops; /* length of ops */
};

/* ---- the admin secret ---------------------------------------------------------------------- */

static int secret_set(const hr_api_ctx_t *ctx)
{
    return ctx->admin_secret && *ctx->admin_secret;
}

/* The secret's value in an object of connection parameters or headers, or NULL. */
static const char *secret_in(json_t *obj)
{
    const char *k;
    json_t *v;
    if (!json_is_object(obj)) return NULL;
    json_object_foreach(obj, k, v)
    {
        if ((!strcasecmp(k, "x-herald-admin-secret") || !strcasecmp(k, "x-hasura-admin-secret")) &&
            json_is_string(v))
            return json_string_value(v);
    }
    return NULL;
}

static int authorized(const session_t *s, json_t *params)
{
    if (!secret_set(s->ctx)) return 1;
    const char *got = secret_in(params);
    if (!got) got = secret_in(json_object_get(params, "headers"));
    if (!got) return s->header_auth;
    return hr_api_same_secret(s->ctx->admin_secret, got);
}

/* ---- sending --------------------------------------------------------------------------------- */

/* Sends msg (taken) as one text message. */
static void send_json(session_t *s, json_t *msg)
{
    char *text = json_dumps(msg, DUMP_FLAGS);
    json_decref(msg);
    if (!text) return;
    hr_ws_send(s->ws, text, strlen(text));
    free(text);
}

static void send_type(session_t *s, const char *type)
{
    send_json(s, json_pack("{s:s}", "type", type));
}

static void send_with_id(session_t *s, const char *id, const char *type)
{
    send_json(s, json_pack("{s:s,s:s}", "id", id, "type", type));
}

/* An "error" message for id with payload (taken): graphql-transport-ws sends the errors array,
 * the legacy protocol the same array (subscriptions-transport-ws' client takes its first). */
static void send_error(session_t *s, const char *id, json_t *payload)
{
    json_t *m = json_pack("{s:s,s:s,s:o}", "id", id, "type", "error", "payload", payload);
    send_json(s, m);
}

static json_t *errors_of(const char *message)
{
    return json_pack("[{s:s}]", "message", message);
}

/* The prefix of an operation's result messages; a new string, its length in *len. */
static char *result_prefix(const session_t *s, const char *id, size_t *len)
{
    json_t *jid = json_string(id);
    char *quoted = json_dumps(jid, JSON_ENCODE_ANY);
    json_decref(jid);
    if (!quoted) return NULL;
    const char *type = s->legacy ? "data" : "next";
    size_t n = strlen(quoted) + strlen(type) + 32;
    char *p = hr_xmalloc(n);
    *len = (size_t)snprintf(p, n, "{\"id\":%s,\"type\":\"%s\",\"payload\":", quoted, type);
    free(quoted);
    return p;
}

static void send_result(session_t *s, const char *prefix, size_t prefix_len, const char *payload,
                        size_t len)
{
    hr_ws_part_t parts[3] = {{prefix, prefix_len}, {payload, len}, {"}", 1}};
    hr_ws_sendv(s->ws, parts, 3);
}

/* ---- operations ------------------------------------------------------------------------------ */

static op_t *op_find(session_t *s, const char *id)
{
    for (op_t *o = s->ops; o; o = o->next)
        if (!strcmp(o->id, id)) return o;
    return NULL;
}

static void op_unlink(op_t *o)
{
    for (op_t **p = &o->s->ops; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            o->s->nops--;
            return;
        }
}

static void on_sink_next(void *ud, const char *payload, size_t len)
{
    op_t *o = ud;
    send_result(o->s, o->prefix, o->prefix_len, payload, len);
}

static size_t on_sink_queued(void *ud)
{
    op_t *o = ud;
    return hr_ws_queued(o->s->ws);
}

static void on_sink_complete(void *ud, json_t *errors)
{
    op_t *o = ud;
    if (errors)
        send_error(o->s, o->id, json_incref(errors));
    else
        send_with_id(o->s, o->id, "complete");
    o->sub = NULL; /* the service frees it after this returns */
    if (o->subscribing) {
        o->ended = 1;
        return;
    }
    op_unlink(o);
    free(o);
}

/* Ends an operation from the client's side (complete, stop, a replaced legacy id, the close). */
static void op_end(op_t *o)
{
    op_unlink(o);
    if (o->sub) hr_gqlsvc_unsubscribe(o->sub);
    free(o);
}

static op_t *op_new(session_t *s, const char *id)
{
    size_t plen = 0;
    char *prefix = result_prefix(s, id, &plen);
    if (!prefix) return NULL;
    size_t idlen = strlen(id);
    op_t *o = hr_xcalloc(1, sizeof *o + plen + 1 + idlen + 1);
    memcpy(o->prefix, prefix, plen + 1);
    free(prefix);
    o->prefix_len = plen;
    o->id = o->prefix + plen + 1;
    memcpy(o->id, id, idlen + 1);
    o->s = s;
    o->sink = (hr_gql_sink_t){
        .next = on_sink_next, .complete = on_sink_complete, .queued = on_sink_queued, .ud = o};
    return o;
}

/* Runs a subscribe (start) payload {query, variables?, operationName?} for id; payload is
 * valid (checked by the caller). */
static void run(session_t *s, const char *id, json_t *payload)
{
    hr_gqlsvc_t *svc = s->ctx->graphql;
    if (!svc) {
        send_error(s, id, errors_of("the GraphQL service is not running"));
        return;
    }
    json_t *q = json_object_get(payload, "query"), *v = json_object_get(payload, "variables");
    json_t *name = json_object_get(payload, "operationName");
    hr_gql_op_t *gop = NULL;
    json_t *errors = NULL;
    int rc = hr_gqlsvc_prepare(
        svc, json_string_value(q), json_string_length(q), json_is_object(v) ? v : NULL,
        json_is_string(name) ? json_string_value(name) : NULL, &gop, &errors);
    if (rc) {
        send_error(s, id, errors ? errors : errors_of("invalid request"));
        return;
    }
    if (hr_gql_op_kind(gop) != HR_GQL_SUBSCRIPTION) {
        json_t *result = hr_gqlsvc_execute(svc, gop);
        hr_gql_op_free(gop);
        size_t tlen = 0;
        char *text = result ? hr_graphql_dump_result(result, &tlen) : NULL;
        json_decref(result);
        if (!text) {
            send_error(s, id, errors_of("the operation failed"));
            return;
        }
        size_t plen = 0;
        char *prefix = result_prefix(s, id, &plen);
        if (prefix) send_result(s, prefix, plen, text, tlen);
        free(prefix);
        free(text);
        send_with_id(s, id, "complete");
        return;
    }
    if (s->nops >= MAX_OPS_PER_SOCKET) {
        hr_gql_op_free(gop);
        send_error(s, id, errors_of("too many subscriptions on this socket"));
        return;
    }
    op_t *o = op_new(s, id);
    if (!o) {
        hr_gql_op_free(gop);
        return;
    }
    o->next = s->ops;
    s->ops = o;
    s->nops++;
    o->subscribing = 1;
    rc = hr_gqlsvc_subscribe(svc, gop, &o->sink, &o->sub, &errors);
    o->subscribing = 0;
    if (rc) {
        op_unlink(o);
        free(o);
        send_error(s, id, errors ? errors : errors_of("the subscription could not start"));
        return;
    }
    if (o->ended) {
        op_unlink(o);
        free(o);
    }
}

/* ---- messages ------------------------------------------------------------------------------ */

/* The subscribe/start payload's shape; a reason when it is wrong. */
static const char *bad_payload(json_t *p)
{
    if (!json_is_object(p)) return "Invalid message 'payload' property";
    json_t *q = json_object_get(p, "query"), *v = json_object_get(p, "variables");
    json_t *n = json_object_get(p, "operationName"), *x = json_object_get(p, "extensions");
    if (!json_is_string(q)) return "Invalid message: 'query' must be a string";
    if (v && !json_is_null(v) && !json_is_object(v))
        return "Invalid message: 'variables' must be an object";
    if (n && !json_is_null(n) && !json_is_string(n))
        return "Invalid message: 'operationName' must be a string";
    if (x && !json_is_null(x) && !json_is_object(x))
        return "Invalid message: 'extensions' must be an object";
    return NULL;
}

static int optional_object(json_t *p)
{
    return !p || json_is_null(p) || json_is_object(p);
}

static void close_invalid(session_t *s, const char *reason)
{
    hr_ws_close(s->ws, 4400, reason);
}

/* graphql-transport-ws */
static void on_modern(session_t *s, json_t *msg, const char *type)
{
    json_t *payload = json_object_get(msg, "payload");
    json_t *jid = json_object_get(msg, "id");
    char reason[160];
    if (!strcmp(type, "connection_init")) {
        if (!optional_object(payload)) {
            close_invalid(s, "Invalid message 'payload' property");
            return;
        }
        if (s->init_seen) {
            hr_ws_close(s->ws, 4429, "Too many initialisation requests");
            return;
        }
        s->init_seen = 1;
        hr_ws_timer(s->ws, 0);
        if (!authorized(s, payload)) {
            hr_ws_close(s->ws, 4403, "Forbidden");
            return;
        }
        s->acked = 1;
        send_type(s, "connection_ack");
    } else if (!strcmp(type, "ping") || !strcmp(type, "pong")) {
        if (!optional_object(payload)) {
            close_invalid(s, "Invalid message 'payload' property");
            return;
        }
        if (type[1] == 'o') return; /* a pong: nothing to do */
        if (json_is_object(payload))
            send_json(s, json_pack("{s:s,s:O}", "type", "pong", "payload", payload));
        else
            send_type(s, "pong");
    } else if (!strcmp(type, "subscribe")) {
        if (!json_is_string(jid) || json_string_length(jid) == 0) {
            close_invalid(s, "Invalid message 'id' property");
            return;
        }
        const char *bad = bad_payload(payload);
        if (bad) {
            close_invalid(s, bad);
            return;
        }
        if (!s->acked) {
            hr_ws_close(s->ws, 4401, "Unauthorized");
            return;
        }
        const char *id = json_string_value(jid);
        if (op_find(s, id)) {
            snprintf(reason, sizeof reason, "Subscriber for %s already exists", id);
            hr_ws_close(s->ws, 4409, reason);
            return;
        }
        run(s, id, payload);
    } else if (!strcmp(type, "complete")) {
        if (!json_is_string(jid) || json_string_length(jid) == 0) {
            close_invalid(s, "Invalid message 'id' property");
            return;
        }
        op_t *o = op_find(s, json_string_value(jid));
        if (o) op_end(o);
    } else if (!strcmp(type, "connection_ack") || !strcmp(type, "next") || !strcmp(type, "error")) {
        snprintf(reason, sizeof reason, "Unexpected message of type %s received", type);
        close_invalid(s, reason);
    } else {
        snprintf(reason, sizeof reason, "Invalid message 'type' property \"%.80s\"", type);
        close_invalid(s, reason);
    }
}

/* A legacy "error" message without an operation, or for id. */
static void legacy_error(session_t *s, const char *id, const char *message)
{
    json_t *m = json_pack("{s:s,s:{s:s}}", "type", "error", "payload", "message", message);
    if (id) json_object_set_new(m, "id", json_string(id));
    send_json(s, m);
}

/* graphql-ws (subscriptions-transport-ws) */
static void on_legacy(session_t *s, json_t *msg, const char *type)
{
    json_t *payload = json_object_get(msg, "payload");
    json_t *jid = json_object_get(msg, "id");
    const char *id = json_is_string(jid) ? json_string_value(jid) : NULL;
    if (!strcmp(type, "connection_init")) {
        s->init_seen = 1;
        if (!authorized(s, json_is_object(payload) ? payload : NULL)) {
            hr_ws_timer(s->ws, 0);
            send_json(s, json_pack("{s:s,s:{s:s}}", "type", "connection_error", "payload",
                                   "message", "Forbidden: invalid or missing admin secret"));
            hr_ws_close(s->ws, 4403, "Forbidden");
            return;
        }
        s->acked = 1;
        send_type(s, "connection_ack");
        send_type(s, "ka");
        hr_ws_timer(s->ws, KA_INTERVAL_MS);
    } else if (!strcmp(type, "start")) {
        if (!id || !*id) {
            legacy_error(s, NULL, "Invalid message: 'id' must be a string");
            return;
        }
        const char *bad = bad_payload(payload);
        if (bad) {
            legacy_error(s, id, bad);
            return;
        }
        if (!s->acked) {
            send_error(s, id, errors_of("connection_init must come first"));
            return;
        }
        op_t *o = op_find(s, id);
        if (o) op_end(o); /* as subscriptions-transport-ws' server: the new one replaces it */
        run(s, id, payload);
    } else if (!strcmp(type, "stop")) {
        op_t *o = id ? op_find(s, id) : NULL;
        if (!o) return;
        op_end(o);
        send_with_id(s, id, "complete");
    } else if (!strcmp(type, "connection_terminate")) {
        hr_ws_close(s->ws, 1000, "");
    } else {
        legacy_error(s, id, "Invalid message type!");
    }
}

/* ---- the session's life -------------------------------------------------------------------- */

static void on_open(hr_ws_t *ws, void *ud)
{
    hr_api_ctx_t *ctx = ud;
    session_t *s = hr_xcalloc(1, sizeof *s);
    s->ctx = ctx;
    s->ws = ws;
    s->legacy = strcmp(hr_ws_subprotocol(ws), "graphql-ws") == 0;
    if (secret_set(ctx)) {
        const char *got = hr_ws_header(ws, "x-herald-admin-secret");
        if (!got) got = hr_ws_header(ws, "x-hasura-admin-secret");
        s->header_auth = got && hr_api_same_secret(ctx->admin_secret, got);
    }
    hr_ws_set_data(ws, s);
    hr_ws_timer(ws, INIT_TIMEOUT_MS);
}

static void on_message(hr_ws_t *ws, const char *data, size_t len, int binary, void *ud)
{
    session_t *s = hr_ws_data(ws);
    if (binary) {
        close_invalid(s, "Binary messages are not supported");
        return;
    }
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, 0, &jerr);
    json_t *jtype = json_object_get(msg, "type");
    if (!json_is_string(jtype)) {
        const char *why = !msg ? "Message is not valid JSON" : "Invalid message 'type' property";
        if (s->legacy)
            legacy_error(s, NULL, why);
        else
            close_invalid(s, why);
        json_decref(msg);
        return;
    }
    if (s->legacy)
        on_legacy(s, msg, json_string_value(jtype));
    else
        on_modern(s, msg, json_string_value(jtype));
    json_decref(msg);
}

static void on_timer(hr_ws_t *ws, void *ud)
{
    session_t *s = hr_ws_data(ws);
    if (!s->init_seen) {
        hr_ws_close(ws, 4408, "Connection initialisation timeout");
        return;
    }
    if (s->legacy && s->acked) {
        send_type(s, "ka");
        hr_ws_timer(ws, KA_INTERVAL_MS);
    }
}

static void on_closed(hr_ws_t *ws, void *ud)
{
    session_t *s = hr_ws_data(ws);
    if (!s) return;
    while (s->ops)
        op_end(s->ops);
    free(s);
}

int hr_graphql_ws_register(hr_server_t *srv, hr_api_ctx_t *ctx, const char *path)
{
    static const hr_ws_handlers_t handlers = {
        .open = on_open, .message = on_message, .timer = on_timer, .closed = on_closed};
    return hr_server_websocket(srv, path, subprotocols, &handlers, ctx);
}
