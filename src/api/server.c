/* server.c: the HTTP server of server.h on libwebsockets 4.1.6 with its libuv event library
 * running on a foreign (the caller's) loop.
 *
 * One lws context with one vhost; our protocol "http" sits at index 0, so every HTTP request
 * reaches callback() (no mounts). A request is an hr_request_t hung on the connection's wsi
 * with lws_set_opaque_user_data (lws' per-session data is re-allocated per transaction, the
 * opaque pointer is ours). Its life:
 *
 *   LWS_CALLBACK_HTTP ─┬─ no body ────────────────────────────────────────► HANDLER
 *                      ├─ body announced ─► READING ─BODY_COMPLETION──────► HANDLER
 *                      │                      ├─ a 404/405/413: body dropped ─► RESPONDING
 *                      │                      └─ deadline (lws sul): connection killed
 *                      └─ 400, 411, 404/405/413 without or with a huge body ──► RESPONDING
 *   HANDLER ─hr_response_send─► RESPONDING ─HTTP_WRITEABLE: one lws_write─► freed; then
 *      │                                      lws_http_transaction_completed, or close
 *      └─ connection closed ─► ORPHANED (close callback; hr_response_send only frees)
 *
 * Invariants: (1) the wsi's opaque pointer is the request, or NULL between requests; (2) a
 * request in HANDLER or ORPHANED state is owned by the handler until hr_response_send; every
 * other state is owned by the connection and freed by detach() when the connection closes;
 * (3) lws_write is only called from LWS_CALLBACK_HTTP_WRITEABLE.
 *
 * Headers and body go out in one lws_write: on HTTP/1 lws writes LWS_WRITE_HTTP_FINAL data
 * raw, so the header block built by lws_add_http_* and lws_finalize_http_header is followed by
 * the body in the same buffer (this also sidesteps lws_finalize_write_http_header, which does
 * not rewind the write pointer). HTTP/2 is not offered (no TLS, no h2c), so this holds.
 *
 * No pipelining. lws 4.1.6 mishandles input read beyond the current request (it lands in the
 * connection's "buflist"): after a body it repeats BODY_COMPLETION until the answer is written,
 * and a request with a body parsed from that buffer takes header bytes for the body and then
 * loops for ever inside lws_http_action. So (1) the server's own early answers wait until the
 * announced body is read, so that a well-behaved client's next request cannot arrive along with
 * it; (2) before lws_http_transaction_completed, lws_service_adjust_timeout tells whether any
 * connection holds such input; if so the answer carries Connection: close and the connection
 * closes instead; (3) a BODY/BODY_COMPLETION callback without a request closes the connection.
 *
 * While a handler works, reading the connection is paused (lws_rx_flow_control): lws 4.1.6
 * would otherwise spin on a readable socket (a client that left) that it does not read in that
 * state. It also skips POLLOUT while reading is paused, so hr_response_send resumes reading
 * before asking to write. A client that leaves meanwhile is therefore not seen by lws: a sweep
 * once a second peeks at the sockets of waiting requests and closes the dead ones, which
 * orphans their requests.
 *
 * WebSocket sessions are server_ws.c's: upgrades reach it through
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE here, sessions through their own protocols' callback.
 *
 * Closing: lws_context_destroy on a foreign libuv loop closes every connection and then lws'
 * own handles asynchronously, but never finishes by itself (its last close callback only
 * finalises internal loops). A 1 ms timer of ours watches the loop until no handle belonging
 * to the context is left, calls lws_context_destroy a second time to free it, closes itself
 * and then calls done. */
#include "api/server_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

#define DEFAULT_MAX_HEADER 8192
#define DEFAULT_REQUEST_TIMEOUT_MS 30000
#define DEFAULT_KEEPALIVE_TIMEOUT_MS 60000
/* Room for the status line, Server, Content-Type, Content-Length and Connection headers. */
#define HEADER_ROOM 512
/* A body announced this much over the cap is not drained: 413 and close. */
#define DRAIN_FACTOR 8
/* Close watchdog: give up waiting for lws' handles after this many 1 ms ticks. */
#define CLOSE_TICKS_MAX 10000
/* Closing: how long open WebSocket sessions get to exchange close frames (1001) first, in ms. */
#define GOAWAY_MS 1000

/* ---- logging --------------------------------------------------------------------------- */

/* lws' own errors are ours to report, not herald's failures: errors become warnings, warnings
 * (mostly about malformed client input) become debug lines. */
static void lws_emit(int level, const char *line)
{
    hr_log_level_t l = (level & LLL_ERR) ? HR_LOG_WARN : HR_LOG_DEBUG;
    if (l < hr_log_threshold) return;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    /* lws prefixes a timestamp "[2026/11/23 12:00:00:0000] W: "; keep the text after it. */
    const char *p = line;
    if (*p == '[') {
        const char *q = memchr(p, ']', n);
        if (q && q[1] == ' ' && q[2] && q[3] == ':' && q[4] == ' ') p = q + 5;
    }
    hr_log_write(l, "component=lws msg=\"%.*s\"", (int)(n - (size_t)(p - line)), p);
}

/* ---- requests --------------------------------------------------------------------------- */

static void req_free(hr_request_t *req)
{
    lws_sul_cancel(&req->deadline);
    while (req->hvals) {
        hval_t *h = req->hvals;
        req->hvals = h->next;
        free(h);
    }
    free(req->path);
    free(req->query);
    free(req->qparams);
    free(req->body);
    free(req->ctype);
    free(req->out_body);
    free(req->resp_headers);
    free(req);
}

/* Takes a request out of HANDLER state's bookkeeping. */
static void unwait(hr_request_t *req)
{
    hr_server_t *srv = req->srv;
    if (!srv) return;
    if (req->prev)
        req->prev->next = req->next;
    else
        srv->waiting = req->next;
    if (req->next) req->next->prev = req->prev;
    req->prev = req->next = NULL;
    srv->stats.in_flight--;
    if (!srv->waiting) uv_timer_stop(&srv->sweep_timer);
}

/* The connection of wsi is closing or gone: release or orphan its request. Idempotent. */
static void detach(struct lws *wsi)
{
    hr_request_t *req = lws_get_opaque_user_data(wsi);
    if (!req) return;
    lws_set_opaque_user_data(wsi, NULL);
    req->wsi = NULL;
    if (req->state != REQ_HANDLER) {
        req_free(req);
        return;
    }
    req->state = REQ_ORPHANED;
    if (req->srv) {
        req->srv->stats.orphaned++;
        unwait(req);
        req->srv = NULL;
    }
    if (req->on_close) req->on_close(req, req->on_close_ud);
}

/* While a handler works, lws does not read the connection (see dispatch), so a client that
 * went away would only be noticed when the answer is written. Once a second, peek at the
 * sockets of waiting requests: end of stream or an error closes the connection (which orphans
 * the request and runs its close callback). A client that half-closes its side while waiting
 * (legal in HTTP/1.1, done by no browser, curl or Node client) is treated as gone. */
static void on_sweep(uv_timer_t *t)
{
    hr_server_t *srv = t->data;
    for (hr_request_t *req = srv->waiting, *next; req; req = next) {
        next = req->next;
        int fd = lws_get_socket_fd(req->wsi);
        char c;
        ssize_t n = fd >= 0 ? recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) : 0;
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
            continue;
        hr_log(HR_LOG_DEBUG,
               "component=server peer=%s path=%s msg=\"client left before the "
               "response\"",
               req->peer, req->path);
        /* Not inside any lws callback here, so a synchronous close is allowed. */
        lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
    }
}

static void on_deadline(lws_sorted_usec_list_t *sul)
{
    hr_request_t *req = lws_container_of(sul, hr_request_t, deadline);
    if (!req->wsi) return;
    if (req->srv) req->srv->stats.timeouts++;
    hr_log(HR_LOG_DEBUG, "component=server peer=%s msg=\"request body too slow: closing\"",
           req->peer);
    lws_set_timeout(req->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
}

/* Builds the whole response (status line, headers, body) after LWS_PRE bytes of headroom into
 * a new buffer; *len is its length after the headroom. NULL when the headers do not fit. */
unsigned char *hr_srv_build_response(hr_request_t *req, int status, const char *ctype,
                                     const char *body, size_t blen, size_t *len)
{
    struct lws *wsi = req->wsi;
    size_t room = HEADER_ROOM + req->resp_headers_len * 2 + (ctype ? strlen(ctype) : 0);
    if (req->srv) room += strlen(req->srv->server_name);
    size_t send_len = req->is_head ? 0 : blen;
    unsigned char *out = hr_xmalloc(LWS_PRE + room + send_len);
    unsigned char *start = out + LWS_PRE, *p = start, *end = start + room;

    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, (lws_filepos_t)blen, &p, end))
        goto fail;
    for (size_t off = 0; off < req->resp_headers_len;) {
        const char *name = req->resp_headers + off;
        const char *value = name + strlen(name) + 1;
        off += strlen(name) + 1 + strlen(value) + 1;
        char lname[256];
        snprintf(lname, sizeof lname, "%s:", name);
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)lname,
                                        (const unsigned char *)value, (int)strlen(value), &p, end))
            goto fail;
    }
    if (req->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end))
        goto fail;
    if (lws_finalize_http_header(wsi, &p, end)) goto fail;
    if (send_len) memcpy(p, body, send_len);
    *len = (size_t)(p - start) + send_len;
    return out;
fail:
    free(out);
    return NULL;
}

/* Keeps the response and asks lws for a writeable callback. */
static void respond(hr_request_t *req, int status, const char *content_type, const void *body,
                    size_t len)
{
    req->state = REQ_RESPONDING;
    req->status = status;
    req->ctype = hr_xstrdup(content_type);
    req->out_len = req->is_head ? 0 : len;
    req->out_body = hr_xmalloc(req->out_len + 1);
    if (req->out_len) memcpy(req->out_body, body, req->out_len);
    req->out_len = len; /* Content-Length, also for HEAD */
    lws_callback_on_writable(req->wsi);
}

/* A response of the server's own (404, 405, 411, 413). */
static void respond_error(hr_request_t *req, int status, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", msg);
    respond(req, status, "application/json", body, (size_t)n);
}

static void dispatch(hr_request_t *req, const route_t *route)
{
    hr_server_t *srv = req->srv;
    lws_sul_cancel(&req->deadline);
    /* The handler may take its time: no lws timeout while it works. */
    lws_set_timeout(req->wsi, NO_PENDING_TIMEOUT, 0);
    if (!req->body) req->body = hr_xstrdup("");
    req->state = REQ_HANDLER;
    srv->stats.in_flight++;
    req->next = srv->waiting;
    if (srv->waiting) srv->waiting->prev = req;
    srv->waiting = req;
    if (!uv_is_active((uv_handle_t *)&srv->sweep_timer))
        uv_timer_start(&srv->sweep_timer, on_sweep, 1000, 1000);
    struct lws *wsi = req->wsi;
    route->fn(req, route->ud);
    /* Not answered yet: stop reading the connection until the answer, or lws would spin on a
     * readable socket (a closed client) that it does not read in this state. (lws 4.1.6 also
     * skips POLLOUT while rx is paused: hr_response_send resumes before asking to write.) */
    if (lws_get_opaque_user_data(wsi) == req && req->state == REQ_HANDLER) {
        req->paused = 1;
        lws_rx_flow_control(wsi, 0);
    }
}

/* ---- parsing a new request ----------------------------------------------------------- */

static const struct {
    enum lws_token_indexes tok;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
    {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},     {WSI_TOKEN_CONNECT, "CONNECT"},
};

/* Whether a known header is present, even with an empty value (lws_hdr_simple_ptr is not
 * exported by 4.1.6; copying fragment 0 fails only when the header is absent). */
static int hdr_present(struct lws *wsi, enum lws_token_indexes tok)
{
    char c;
    return lws_hdr_total_length(wsi, tok) > 0 || lws_hdr_copy_fragment(wsi, &c, 1, tok, 0) == 0;
}

static const char *method_of(struct lws *wsi)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0) return methods[i].name;
    return NULL;
}

/* The query parameters as lws split and decoded them: joined with '&' into req->query, and
 * each kept on its own in req->qparams (a decoded value may hold '&' or '='). */
static void query_of(struct lws *wsi, hr_request_t *req)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total <= 0) return;
    char *q = hr_xmalloc((size_t)total + 2);
    size_t len = 0;
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, q + len + (len ? 1 : 0), total + 2 - (int)len - 1,
                                      WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) break;
        if (len) q[len] = '&';
        len += (len ? 1 : 0) + (size_t)n;
        req->nqparams++;
    }
    q[len] = '\0';
    req->query = q;
    req->qparams = hr_xmalloc(len + 1);
    size_t off = 0;
    for (size_t i = 0; i < req->nqparams; i++) {
        int n = lws_hdr_copy_fragment(wsi, req->qparams + off, (int)(len + 1 - off),
                                      WSI_TOKEN_HTTP_URI_ARGS, (int)i);
        if (n < 0) {
            req->nqparams = i;
            break;
        }
        off += (size_t)n + 1;
    }
}

/* Parses a Content-Length value; -1 when malformed. */
static long long parse_length(const char *s)
{
    if (!*s) return -1;
    long long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s) || v > (1LL << 50)) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int on_http(hr_server_t *srv, struct lws *wsi, const char *uri, size_t uri_len)
{
    hr_request_t *req = hr_xcalloc(1, sizeof *req);
    req->srv = srv;
    req->wsi = wsi;
    req->state = REQ_READING;
    lws_set_opaque_user_data(wsi, req);
    srv->stats.requests++;

    req->method = method_of(wsi);
    req->is_head = req->method && strcmp(req->method, "HEAD") == 0;
    req->path = hr_xstrndup(uri, uri_len);
    query_of(wsi, req);
    lws_get_peer_simple(wsi, req->peer, sizeof req->peer);

    if (!req->method) {
        req->close_after = 1;
        respond_error(req, 400, "unsupported method");
        return 0;
    }

    /* Body framing: Content-Length only. */
    long long clen = 0;
    int has_clen = hdr_present(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (has_clen) {
        char v[32];
        if (lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
            (clen = parse_length(v)) < 0) {
            req->close_after = 1;
            respond_error(req, 400, "invalid Content-Length");
            return 0;
        }
    }
    int needs_len = !strcmp(req->method, "POST") || !strcmp(req->method, "PUT") ||
                    !strcmp(req->method, "PATCH");
    if (hdr_present(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) || (needs_len && !has_clen)) {
        req->close_after = 1;
        respond_error(req, 411, "a request body needs a Content-Length (chunked is not supported)");
        return 0;
    }
    req->body_expect = (size_t)clen;

    /* Routing. */
    const route_t *route = NULL;
    int path_known = 0;
    for (size_t i = 0; i < srv->nroutes; i++) {
        if (strcmp(srv->routes[i].path, req->path) != 0) continue;
        path_known = 1;
        if (strcmp(srv->routes[i].method, req->method) == 0) route = &srv->routes[i];
    }
    if (!route && path_known && !srv->fallback.fn) {
        char allow[256] = "";
        size_t n = 0;
        for (size_t i = 0; i < srv->nroutes && n < sizeof allow - 16; i++)
            if (strcmp(srv->routes[i].path, req->path) == 0)
                n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "",
                                      srv->routes[i].method);
        hr_response_header(req, "Allow", allow);
    }
    if (!route && srv->fallback.fn) route = &srv->fallback;
    /* lws calls BODY and BODY_COMPLETION for any announced body, even an explicit zero-length
     * one on a POST. */
    int has_body = clen > 0 || (has_clen && !strcmp(req->method, "POST"));
    if (!route || (size_t)clen > srv->max_body) {
        req->err_status = !route ? (path_known ? 405 : 404) : 413;
        req->err_msg =
            !route ? (path_known ? "method not allowed" : "not found") : "request body too large";
        /* A modest body is read and dropped before the answer, so that the client's next
         * request never arrives while this one's body is still being read (see on_writeable);
         * a big one is not worth reading: answer now and close. */
        if (!has_body || (size_t)clen > srv->max_body * DRAIN_FACTOR) {
            if (has_body) req->close_after = 1;
            respond_error(req, req->err_status, req->err_msg);
            return 0;
        }
    } else {
        req->route = route;
        if (has_body) {
            req->body = hr_xmalloc((size_t)clen + 1);
            req->body[0] = '\0';
        }
    }
    if (has_body) {
        lws_sul_schedule(lws_get_context(wsi), 0, &req->deadline, on_deadline,
                         (lws_usec_t)srv->request_timeout_ms * 1000);
        return 0;
    }
    dispatch(req, route);
    return 0;
}

static int on_writeable(struct lws *wsi)
{
    hr_request_t *req = lws_get_opaque_user_data(wsi);
    if (!req || req->state != REQ_RESPONDING) return 0;
    hr_server_t *srv = req->srv;
    /* Data read beyond this request (a pipelining client) would be parsed by lws after
     * lws_http_transaction_completed, and lws 4.1.6 mishandles a request with a body parsed
     * from that buffer (it takes header bytes for the body, then loops for ever). So when any
     * connection holds such data, answer with Connection: close and close instead. */
    if (!req->close_after && lws_service_adjust_timeout(lws_get_context(wsi), 1, 0) == 0)
        req->close_after = 1;
    size_t len = 0;
    unsigned char *out =
        hr_srv_build_response(req, req->status, req->ctype, req->out_body, req->out_len, &len);
    if (!out) {
        hr_log(HR_LOG_WARN, "component=server status=%d msg=\"response headers too large\"",
               req->status);
        req->resp_headers_len = 0;
        req->close_after = 1;
        out = hr_srv_build_response(req, 500, NULL, NULL, 0, &len);
    }
    int rc = 0;
    if (!out || lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < (int)len) rc = -1;
    free(out);
    int close_after = req->close_after;
    if (srv) srv->stats.responses++;
    lws_set_opaque_user_data(wsi, NULL);
    req_free(req);
    if (rc || close_after) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    hr_request_t *req;
    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        hr_server_t *srv = lws_context_user(lws_get_context(wsi));
        detach(wsi); /* defensive: a previous request must be gone */
        return on_http(srv, wsi, in, len);
    }
    case LWS_CALLBACK_HTTP_BODY:
        req = lws_get_opaque_user_data(wsi);
        if (!req) return -1; /* no request: lws lost track of the input (see on_writeable) */
        if (req->state != REQ_READING) return 0; /* a body we answered without reading */
        if (len && !req->err_status) {
            if (req->body_len + len > req->body_expect) return -1; /* cannot happen with lws */
            memcpy(req->body + req->body_len, in, len);
            req->body_len += len;
            req->body[req->body_len] = '\0';
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        req = lws_get_opaque_user_data(wsi);
        /* lws repeats the completion (consuming nothing) while input that arrived after the
         * body waits and the response is not written yet; on_writeable then closes. Without
         * a request lws has lost track of the input: close rather than loop. */
        if (!req) return -1;
        if (req->state != REQ_READING) return 0;
        lws_sul_cancel(&req->deadline);
        if (req->err_status)
            respond_error(req, req->err_status, req->err_msg);
        else
            dispatch(req, req->route);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writeable(wsi);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return hr_srv_confirm_upgrade(lws_context_user(lws_get_context(wsi)), wsi, in);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return -1; /* an upgrade bound to "http" itself: confirm_upgrade refused it already */
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        detach(wsi);
        return 0;
    default:
        return 0;
    }
}

/* ---- the request API ----------------------------------------------------------------------- */

const char *hr_request_method(const hr_request_t *req)
{
    return req->method;
}

const char *hr_request_path(const hr_request_t *req)
{
    return req->path;
}

const char *hr_request_query(const hr_request_t *req)
{
    return req->query ? req->query : "";
}

const char *hr_request_query_param(hr_request_t *req, const char *name)
{
    size_t n = strlen(name);
    const char *p = req->qparams;
    for (size_t i = 0; i < req->nqparams; i++, p += strlen(p) + 1) {
        if (strncmp(p, name, n) != 0) continue;
        if (p[n] == '=') return p + n + 1;
        if (p[n] == '\0') return "";
    }
    return NULL;
}

const char *hr_srv_header(struct lws *wsi, const char *name, hval_t **list)
{
    if (!wsi || !name) return NULL;
    char key[128];
    size_t n = strlen(name);
    if (n == 0 || n + 2 > sizeof key) return NULL;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[n] = ':';
    key[n + 1] = '\0';

    int vlen = -1, tok = -1;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const unsigned char *s = lws_token_to_string((enum lws_token_indexes)t);
        if (s && strcmp((const char *)s, key) == 0) {
            tok = t;
            break;
        }
    }
    if (tok >= 0) {
        if (!hdr_present(wsi, (enum lws_token_indexes)tok)) return NULL;
        vlen = lws_hdr_total_length(wsi, (enum lws_token_indexes)tok);
    } else {
        vlen = lws_hdr_custom_length(wsi, key, (int)n + 1);
    }
    if (vlen < 0) return NULL;
    hval_t *h = hr_xmalloc(sizeof *h + (size_t)vlen + 1);
    int got = tok >= 0 ? lws_hdr_copy(wsi, h->s, vlen + 1, (enum lws_token_indexes)tok)
                       : lws_hdr_custom_copy(wsi, h->s, vlen + 1, key, (int)n + 1);
    if (got < 0) {
        free(h);
        return NULL;
    }
    h->next = *list;
    *list = h;
    return h->s;
}

const char *hr_request_header(hr_request_t *req, const char *name)
{
    return hr_srv_header(req->wsi, name, &req->hvals);
}

const char *hr_request_body(const hr_request_t *req, size_t *len)
{
    if (len) *len = req->body ? req->body_len : 0;
    return req->body ? req->body : "";
}

const char *hr_request_peer(const hr_request_t *req)
{
    return req->peer;
}

int hr_request_is_open(const hr_request_t *req)
{
    return req->state == REQ_HANDLER && req->wsi != NULL;
}

void hr_request_on_close(hr_request_t *req, hr_request_close_fn cb, void *ud)
{
    req->on_close = cb;
    req->on_close_ud = ud;
}

static int bad_header_text(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n') return 1;
    return 0;
}

int hr_response_header(hr_request_t *req, const char *name, const char *value)
{
    if (!name || !value || !*name || strlen(name) > 200 || strchr(name, ':') || strchr(name, ' ') ||
        bad_header_text(name) || bad_header_text(value))
        return HR_EINVAL;
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    req->resp_headers = hr_xrealloc(req->resp_headers, req->resp_headers_len + nl + vl);
    memcpy(req->resp_headers + req->resp_headers_len, name, nl);
    memcpy(req->resp_headers + req->resp_headers_len + nl, value, vl);
    req->resp_headers_len += nl + vl;
    return 0;
}

void hr_response_send(hr_request_t *req, int status, const char *content_type, const void *body,
                      size_t len)
{
    if (req->state == REQ_ORPHANED || !req->wsi) {
        req_free(req);
        return;
    }
    if (req->state != REQ_HANDLER) {
        /* A second send, or a send from outside a handler: a bug in the caller. */
        hr_log(HR_LOG_ERROR, "component=server msg=\"hr_response_send on a request not owned by "
                             "a handler\"");
        return;
    }
    unwait(req);
    if (req->paused) lws_rx_flow_control(req->wsi, 1);
    req->paused = 0;
    if (status < 100 || status > 999) status = 500;
    respond(req, status, content_type, body, len);
}

/* ---- the server ---------------------------------------------------------------------------- */

/* Splits "host:port" / "[v6]:port". Port 0..65535. */
static int parse_listen(const char *s, char *host, size_t hostcap, int *port, int *v6)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || !colon[1] || strlen(colon + 1) > 5) return HR_EINVAL;
    for (const char *p = colon + 1; *p; p++)
        if (!isdigit((unsigned char)*p)) return HR_EINVAL;
    *port = atoi(colon + 1);
    if (*port > 65535) return HR_EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    *v6 = 0;
    if (hl && h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']') return HR_EINVAL;
        h++;
        hl -= 2;
        *v6 = 1;
    } else if (memchr(h, ':', hl)) {
        return HR_EINVAL;
    }
    if (hl >= hostcap) return HR_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    return 0;
}

/* Binds a throwaway socket to the address first: lws reports an address that is not local
 * only by waiting for it to appear, and a busy port only as a failed context. */
static int probe_bind(const char *host, int port, int v6, hr_err_t *err, const char *listen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (*host && inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return hr_err_set(err, HR_EINVAL, "listen %s: not an IPv6 address", listen);
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (*host && inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return hr_err_set(err, HR_EINVAL,
                              "listen %s: host must be an IP address, localhost or *", listen);
        sl = sizeof *a;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return hr_err_set(err, HR_EIO, "listen %s: socket: %s", listen, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = bind(fd, (struct sockaddr *)&ss, sl);
    int e = errno;
    close(fd);
    if (rc != 0) return hr_err_set(err, HR_EIO, "listen %s: %s", listen, strerror(e));
    return 0;
}

int hr_server_init(uv_loop_t *loop, const hr_server_opts_t *opts, hr_server_t **out, hr_err_t *err)
{
    char host[128];
    int port = 0, v6 = 0;
    *out = NULL;
    const char *listen = opts && opts->listen ? opts->listen : "127.0.0.1:8080";
    if (parse_listen(listen, host, sizeof host, &port, &v6) != 0)
        return hr_err_set(err, HR_EINVAL, "invalid listen address %s (expected host:port)", listen);
    if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
    if (!strcmp(host, "*") || !strcmp(host, "0.0.0.0")) host[0] = '\0';
    if (opts && opts->max_header > 65535)
        return hr_err_set(err, HR_EINVAL, "max_header must be at most 65535 bytes");
    int rc = probe_bind(host, port, v6, err, listen);
    if (rc) return rc;

    hr_server_t *srv = hr_xcalloc(1, sizeof *srv);
    srv->loop = loop;
    srv->max_body = opts && opts->max_body ? opts->max_body : HR_SERVER_MAX_BODY_DEFAULT;
    srv->request_timeout_ms =
        opts && opts->request_timeout_ms ? opts->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    uint64_t ka_ms = opts && opts->keepalive_timeout_ms ? opts->keepalive_timeout_ms
                                                        : DEFAULT_KEEPALIVE_TIMEOUT_MS;
    srv->server_name = hr_xstrdup(opts && opts->server_name ? opts->server_name : "herald");
    srv->iface = *host ? hr_xstrdup(host) : NULL;
    srv->protocols[0].name = "http";
    srv->protocols[0].callback = callback;
    srv->protocols[0].tx_packet_size = 256 * 1024;

    /* lws' logging is process-wide; route errors and warnings to ours. */
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {loop};
    info.options = LWS_SERVER_OPTION_LIBUV;
    if (!v6) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = loops;
    info.port = port;
    info.iface = srv->iface;
    info.protocols = srv->protocols;
    info.user = srv;
    info.pcontext = &srv->ctx;
    info.server_string = srv->server_name;
    info.max_http_header_data =
        (unsigned short)(opts && opts->max_header ? opts->max_header : DEFAULT_MAX_HEADER);
    unsigned secs = (unsigned)((srv->request_timeout_ms + 999) / 1000);
    info.timeout_secs = secs;
    info.timeout_secs_ah_idle = secs;
    info.keepalive_timeout = (int)((ka_ms + 999) / 1000);
    info.pt_serv_buf_size = 16384;
    hr_srv_ws_setup(srv, &info);

    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        /* lws has already released what it set up (its handles close on the loop). */
        free(srv->server_name);
        free(srv->iface);
        free(srv);
        return hr_err_set(err, HR_EIO, "listen %s: the HTTP server could not start", listen);
    }
    srv->vhost = lws_get_vhost_by_name(srv->ctx, "default");
    srv->port = srv->vhost ? lws_get_vhost_listen_port(srv->vhost) : port;
    uv_timer_init(loop, &srv->close_timer);
    srv->close_timer.data = srv;
    uv_timer_init(loop, &srv->sweep_timer);
    srv->sweep_timer.data = srv;
    *out = srv;
    return 0;
}

int hr_server_route(hr_server_t *srv, const char *method, const char *path, hr_handler_fn fn,
                    void *ud)
{
    if (!method || !*method || !path || path[0] != '/' || !fn) return HR_EINVAL;
    for (size_t i = 0; i < srv->nroutes; i++)
        if (!strcmp(srv->routes[i].method, method) && !strcmp(srv->routes[i].path, path))
            return HR_EEXIST;
    srv->routes = hr_xrealloc(srv->routes, (srv->nroutes + 1) * sizeof *srv->routes);
    srv->routes[srv->nroutes++] =
        (route_t){.method = hr_xstrdup(method), .path = hr_xstrdup(path), .fn = fn, .ud = ud};
    return 0;
}

void hr_server_fallback(hr_server_t *srv, hr_handler_fn fn, void *ud)
{
    srv->fallback = (route_t){.method = NULL, .path = NULL, .fn = fn, .ud = ud};
}

int hr_server_port(const hr_server_t *srv)
{
    return srv->port;
}

void hr_server_stats(const hr_server_t *srv, hr_server_stats_t *out)
{
    *out = srv->stats;
}

static void on_close_timer_closed(uv_handle_t *h)
{
    hr_server_t *srv = h->data;
    void (*done)(void *) = srv->done;
    void *ud = srv->done_ud;
    for (size_t i = 0; i < srv->nroutes; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].path);
    }
    free(srv->routes);
    hr_srv_ws_free(srv);
    free(srv->server_name);
    free(srv->iface);
    free(srv);
    if (done) done(ud);
}

static void on_sweep_timer_closed(uv_handle_t *h)
{
    hr_server_t *srv = h->data;
    uv_close((uv_handle_t *)&srv->close_timer, on_close_timer_closed);
}

typedef struct walk {
    void *ctx;
    int found;
} walk_t;

static void count_ctx_handles(uv_handle_t *h, void *arg)
{
    walk_t *w = arg;
    if (h->data == w->ctx) w->found++;
}

static void on_close_tick(uv_timer_t *t)
{
    hr_server_t *srv = t->data;
    if (srv->close_phase == -1) {
        /* Sessions first: a close frame each (after what is queued), then wait for them to
         * end, at most GOAWAY_MS. */
        if (srv->close_ticks == 0) hr_srv_ws_goaway(srv);
        if (srv->sessions && ++srv->close_ticks < GOAWAY_MS) return;
        srv->close_ticks = 0;
        srv->close_phase = 0;
    }
    if (srv->close_phase == 0) {
        srv->close_phase = 1;
        if (srv->ctx) lws_context_destroy(srv->ctx);
        return;
    }
    if (srv->ctx) {
        walk_t w = {srv->ctx, 0};
        uv_walk(srv->loop, count_ctx_handles, &w);
        if (w.found && ++srv->close_ticks < CLOSE_TICKS_MAX) return;
        if (w.found) {
            hr_log(HR_LOG_ERROR, "component=server msg=\"HTTP server did not release its loop "
                                 "handles in time; leaking it\"");
            srv->ctx = NULL;
        } else {
            lws_context_destroy(srv->ctx); /* second call: frees it, NULLs srv->ctx */
            srv->ctx = NULL;
        }
    }
    uv_timer_stop(t);
    uv_close((uv_handle_t *)&srv->sweep_timer, on_sweep_timer_closed);
}

void hr_server_close(hr_server_t *srv, void (*done)(void *ud), void *ud)
{
    if (srv->closing) return;
    srv->closing = 1;
    srv->done = done;
    srv->done_ud = ud;
    srv->close_phase = srv->sessions ? -1 : 0;
    /* Never destroy the context from inside one of its callbacks: start from the loop. */
    uv_timer_start(&srv->close_timer, on_close_tick, 0, 1);
}
