/* server.h: herald's HTTP server on the caller's libuv loop (libwebsockets underneath, never
 * visible here).
 *
 *   hr_server_init(loop, &opts, &srv, &err);            listens at once
 *   hr_server_route(srv, "POST", "/v1/metadata", on_metadata, app);
 *   ...handler(req, ud): read method, path, headers, body; answer now or later with
 *      hr_response_header(req, "x-a", "b"); hr_response_send(req, 200, "application/json", p, n);
 *   hr_server_close(srv, done, ud);                     done(ud) once every loop handle is gone
 *
 * Routing is by exact path. An unknown path gets 404; a known path with another method gets 405
 * with an Allow header. The body is read completely before the handler runs; requests that
 * declare more than max_body bytes get 413, POST/PUT/PATCH without Content-Length (and any
 * chunked request body) get 411. The server's own 404/405/413 come after the announced body
 * has been read and dropped, unless it is over 8 × max_body: then at once, and the connection
 * closes. Malformed requests are refused by libwebsockets' parser (403 for an unparsable
 * request line, a closed connection for headers or a URL over the cap); headers and then the
 * body must each arrive within request_timeout_ms. HTTP/1.1 keep-alive is supported, pipelining
 * is not: a request sent before the previous answer arrived is dropped with the connection,
 * whose last answer says Connection: close (clients send such requests again).
 *
 * WebSocket: hr_server_websocket(srv, "/v1/graphql", subprotocols, &handlers, ud) serves
 * upgrades of that path that offer one of the subprotocols (RFC 6455; chosen in the client's
 * order of preference). Any other upgrade gets a plain HTTP answer (404 for a path without a
 * WebSocket endpoint, 400 for a missing or unsupported subprotocol, with Connection: close).
 * A session (hr_ws_t) lives from handlers.open to handlers.closed:
 *
 *   open(ws)         the handshake is done; the upgrade request's headers are readable here only
 *   message(ws, …)   one whole message (fragments gathered; over max_body bytes: closed, 1009)
 *   hr_ws_send(ws, text, len) / hr_ws_sendv(ws, iov, n)   queued (one copy), written when the
 *                    socket is writeable; over HR_WS_MAX_QUEUED bytes waiting: closed, 1008
 *   hr_ws_timer(ws, ms)   handlers.timer(ws) once after ms (one timer per session)
 *   hr_ws_close(ws, code, reason)   the queue is written, then the close frame
 *   closed(ws)       the connection is gone (client, hr_ws_close, server close); ws is freed
 *                    when it returns. Runs once per open, never from inside an hr_ws_* call.
 *
 * A session is not bound by the keep-alive or request timeouts; the server pings its client
 * (a WebSocket ping frame) 30 s after the last pong and closes the connection when no pong came
 * within 60 s of a ping (clients answer pings by themselves). Every callback runs on the loop.
 *
 * Ownership of a request: the hr_request_t passed to a handler belongs to the handler until it
 * calls hr_response_send, exactly once, now or from a later loop callback; the call gives it
 * back. If the client goes away first (noticed within about a second) or the server closes,
 * the request becomes "orphaned": the close callback registered with hr_request_on_close (if
 * any) runs, hr_request_is_open returns 0, header lookups return NULL, and hr_response_send
 * only releases it. Method, path, query, body and peer stay readable until then. A handler
 * that gives up on an orphaned request calls hr_response_send from its close callback.
 */
#ifndef HR_SERVER_H
#define HR_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"

typedef struct hr_server hr_server_t;
typedef struct hr_request hr_request_t;

typedef struct hr_server_opts {
    const char *listen; /* "host:port", "[v6]:port"; port 0 picks a free port */
    size_t max_body;    /* request body cap in bytes; 0 = 1 MiB */
    size_t max_header;  /* request line + headers cap in bytes (≤ 65535); 0 = 8 KiB */
    uint64_t
        request_timeout_ms; /* headers, then the body, must each arrive within this; 0 = 30 s */
    uint64_t keepalive_timeout_ms; /* an idle kept-alive connection is closed after; 0 = 60 s */
    const char *server_name;       /* value of the Server header; NULL = "herald" */
} hr_server_opts_t;

#define HR_SERVER_MAX_BODY_DEFAULT (1024 * 1024)

typedef void (*hr_handler_fn)(hr_request_t *req, void *ud);
typedef void (*hr_request_close_fn)(hr_request_t *req, void *ud);

/* Starts listening. HR_EINVAL for a bad listen address or option, HR_EIO when the address cannot
 * be bound. On failure *out is NULL and nothing is left on the loop. */
int hr_server_init(uv_loop_t *loop, const hr_server_opts_t *opts, hr_server_t **out, hr_err_t *err);
/* Adds a route (method and path are copied; method is upper case, e.g. "GET"). HR_EEXIST when
 * the same method and path are routed already, HR_EINVAL for a path not starting with '/'.
 * Add routes before the loop runs: a request keeps a pointer to its route. */
int hr_server_route(hr_server_t *srv, const char *method, const char *path, hr_handler_fn fn,
                    void *ud);
/* Handles every request that no route matches, whatever its method and path, instead of the
 * 404/405 answers (the size limits still apply). Routes must be added before serving starts. */
void hr_server_fallback(hr_server_t *srv, hr_handler_fn fn, void *ud);
/* The port actually bound (useful with port 0). */
int hr_server_port(const hr_server_t *srv);

/* ---- WebSocket ---- */

typedef struct hr_ws hr_ws_t;

typedef struct hr_ws_handlers {
    void (*open)(hr_ws_t *ws, void *ud);
    /* data is len bytes, borrowed for the call (NUL-terminated, the NUL not counted); binary is
     * 1 for a binary message. */
    void (*message)(hr_ws_t *ws, const char *data, size_t len, int binary, void *ud);
    void (*timer)(hr_ws_t *ws, void *ud); /* may be NULL when hr_ws_timer is never used */
    void (*closed)(hr_ws_t *ws, void *ud);
} hr_ws_handlers_t;

/* Bytes a session may have waiting to be written before it is closed with 1008. */
#define HR_WS_MAX_QUEUED (16u * 1024 * 1024)
/* Distinct subprotocol names one server can serve (each at most 63 bytes). */
#define HR_WS_MAX_SUBPROTOCOLS 8

/* Serves WebSocket upgrades of path (copied) for the NULL-terminated subprotocol names (copied;
 * at least one); handlers is copied. HR_EEXIST when path has a WebSocket endpoint already,
 * HR_EINVAL for a bad path or name, HR_E2BIG past HR_WS_MAX_SUBPROTOCOLS names. Add it before
 * the loop runs. */
int hr_server_websocket(hr_server_t *srv, const char *path, const char *const *subprotocols,
                        const hr_ws_handlers_t *handlers, void *ud);

/* The subprotocol chosen (one of the endpoint's names). */
const char *hr_ws_subprotocol(const hr_ws_t *ws);
/* A header of the upgrade request by case-insensitive name, as hr_request_header; only during
 * handlers.open (NULL afterwards). The string lives until the session is freed. */
const char *hr_ws_header(hr_ws_t *ws, const char *name);
const char *hr_ws_peer(const hr_ws_t *ws); /* client IP address */
/* The caller's pointer for this session (NULL until set). */
void hr_ws_set_data(hr_ws_t *ws, void *data);
void *hr_ws_data(const hr_ws_t *ws);
/* Queues one text message of len bytes (copied). Returns 0; HR_ECANCELED once the session is
 * closing (nothing queued); HR_E2BIG when the queue would exceed HR_WS_MAX_QUEUED bytes: the
 * queue is dropped and the session closes with 1008 "send queue full" (closed follows later). */
int hr_ws_send(hr_ws_t *ws, const char *text, size_t len);
/* The same for a message made of n parts, copied once into the queue, in order. */
typedef struct hr_ws_part {
    const void *data;
    size_t len;
} hr_ws_part_t;
int hr_ws_sendv(hr_ws_t *ws, const hr_ws_part_t *parts, size_t n);
/* The bytes queued and not yet written to the socket (0 once the connection is gone). */
size_t hr_ws_queued(const hr_ws_t *ws);
/* Calls handlers.timer once after ms milliseconds, replacing a pending timer; ms 0 cancels. */
void hr_ws_timer(hr_ws_t *ws, uint64_t ms);
/* Writes what is queued, then closes with code (1000..4999) and reason (cut to 123 bytes at a
 * UTF-8 boundary). Messages that arrive meanwhile are dropped; later sends return HR_ECANCELED.
 * A client that does not read its queue within 5 s is disconnected. Idempotent. */
void hr_ws_close(hr_ws_t *ws, int code, const char *reason);
/* 1 until hr_ws_close or the connection's end. */
int hr_ws_is_open(const hr_ws_t *ws);

/* Counters since hr_server_init. */
typedef struct hr_server_stats {
    uint64_t requests;    /* requests whose headers were read */
    uint64_t responses;   /* responses written (handlers' and the server's own 4xx) */
    uint64_t orphaned;    /* requests whose connection closed before their response */
    uint64_t timeouts;    /* connections closed because a request body was too slow */
    uint64_t in_flight;   /* requests waiting for their handler's response now */
    uint64_t ws_open;     /* WebSocket sessions open now */
    uint64_t ws_accepted; /* WebSocket upgrades accepted */
    uint64_t ws_refused;  /* WebSocket upgrades answered with 4xx */
    uint64_t ws_slow;     /* sessions closed because their client did not read (1008) */
} hr_server_stats_t;

void hr_server_stats(const hr_server_t *srv, hr_server_stats_t *out);

/* Closes open WebSocket sessions with 1001 "server shutting down" and gives their clients up to
 * a second to answer (requests are still served meanwhile, upgrades get 503); then stops
 * listening, closes every connection (pending requests are orphaned: their close callbacks
 * run), releases libwebsockets' loop handles and frees srv; then calls done(ud)
 * (done may be NULL) from a later loop iteration. Never calls done from inside the call. Safe
 * to call from a handler. Call it once. */
void hr_server_close(hr_server_t *srv, void (*done)(void *ud), void *ud);

/* ---- the request, valid as described above ---- */

const char *hr_request_method(const hr_request_t *req); /* "GET", "POST", ... */
const char *hr_request_path(const hr_request_t *req);   /* percent-decoded, without the query */
/* The query string after '?', with each parameter percent-decoded, parameters joined by '&';
 * "" when there is none. */
const char *hr_request_query(const hr_request_t *req);
/* The (decoded) value of query parameter name, or NULL. */
const char *hr_request_query_param(hr_request_t *req, const char *name);
/* A request header by case-insensitive name, or NULL. Repeated headers are joined with ",".
 * The string lives as long as the request; NULL once the request is orphaned. */
const char *hr_request_header(hr_request_t *req, const char *name);
/* The whole body, NUL-terminated (the NUL is not counted in *len); "" when there is none. */
const char *hr_request_body(const hr_request_t *req, size_t *len);
const char *hr_request_peer(const hr_request_t *req); /* client IP address */
/* 1 while no response has been sent and the client is connected as far as the server knows (a
 * client that leaves is noticed within about a second). */
int hr_request_is_open(const hr_request_t *req);
/* Registers cb(req, ud) to run if the connection closes before the response is sent; the request
 * stays valid in the callback and until hr_response_send (which the callback may call). */
void hr_request_on_close(hr_request_t *req, hr_request_close_fn cb, void *ud);

/* ---- the response ---- */

/* Adds a response header (copied). HR_EINVAL when name or value holds CR, LF or NUL, or name
 * is empty or holds ':'. Call before hr_response_send. */
int hr_response_header(hr_request_t *req, const char *name, const char *value);
/* Sends the response (body copied; content_type may be NULL) and gives the request back: req
 * must not be used after the call. On an orphaned request it only releases req. */
void hr_response_send(hr_request_t *req, int status, const char *content_type, const void *body,
                      size_t len);

#endif
