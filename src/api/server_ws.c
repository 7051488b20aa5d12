/* server_ws.c: WebSocket sessions (hr_ws_t of server.h) on the server's lws context.
 *
 * lws binds an upgrade to the first protocol of the vhost named in the client's
 * Sec-WebSocket-Protocol list and drops the connection without an answer when none matches, so
 * upgrades are judged earlier, in LWS_CALLBACK_HTTP_CONFIRM_UPGRADE (protocol "http", server.c
 * calls hr_srv_confirm_upgrade): the path must have an endpoint and the subprotocol lws is going
 * to choose must be one of the endpoint's; otherwise a 404/400 is written there and the
 * connection closes. The vhost's protocol table is fixed when the context is made (in
 * hr_server_init), before any endpoint exists: it holds HR_WS_MAX_SUBPROTOCOLS entries whose
 * names point into srv->pnames, empty (matching no token) until hr_server_websocket fills them
 * in. lws copies the table but not the strings, so the names it compares are ours. A session:
 *
 *   ESTABLISHED ─ open ─► OPEN ─hr_ws_close─► CLOSING ─queue written, close frame─► (lws)
 *        RECEIVE: fragments gathered in rx, one message callback per message
 *        SERVER_WRITEABLE: queued messages written while the socket takes them
 *   CLOSED / WSI_DESTROY (any state) ─► closed callback, session freed
 *
 * Invariants: (1) a WebSocket wsi's opaque pointer is its hr_ws_t until CLOSED/WSI_DESTROY;
 * (2) ws->queued is the sum of the queue's message lengths and never exceeds HR_WS_MAX_QUEUED;
 * (3) closed runs once, from an lws callback, never from an hr_ws_* call; (4) a session is in
 * srv->sessions from ESTABLISHED until its closed callback. */
#include "api/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/log.h"

/* Close timeout of a session that still has a queue to write (lws_set_timeout seconds). */
#define WS_CLOSE_FLUSH_SECS 5
/* Messages written per writeable callback at most, so that one busy session cannot hold the
 * loop while others wait. */
#define WS_WRITES_PER_CALLBACK 32
/* lws 4.1.6 keeps LWS_WRITE_CLOSE private (its public enum leaves the ABI slot 4 for it);
 * lws_write frames it as a close frame like any other control frame. */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)
/* lws pings a WebSocket client this long after its last pong (or the handshake), and hangs up
 * when no pong came WS_HANGUP_SECS after it: dead peers go, proxies see traffic. */
#define WS_PING_SECS 30
#define WS_HANGUP_SECS 90
/* lws' receive buffer per WebSocket session (client messages are small; bigger ones arrive in
 * several reads), and the most one send() may take (the kernel takes what fits). */
#define WS_RX_BUFFER 1024
#define WS_TX_PACKET (256 * 1024)
/* lws reads the Sec-WebSocket-Protocol header into a 128-byte buffer and drops the connection
 * when it is longer: refused with 400 first. */
#define WS_PROTOCOL_HEADER_MAX 127

/* Written messages are kept for the next ones, up to this much together and each at most
 * WS_POOL_MSG_MAX: a fan-out queues the same few MB on every page and frees them once written,
 * and without reuse malloc hands that memory back to the system and faults it in again (about a
 * tenth of herald's CPU with 1,000 subscribers). */
#define WS_POOL_MAX (8u * 1024 * 1024)
#define WS_POOL_MSG_MAX (256u * 1024)

/* One queued outbound message: LWS_PRE bytes of headroom, then the text. */
typedef struct ws_msg {
    struct ws_msg *next;
    size_t len;
    size_t cap;          /* room for this many bytes of text */
    unsigned char buf[]; /* LWS_PRE + cap */
} ws_msg_t;

struct hr_ws {
    hr_server_t *srv;
    struct lws *wsi; /* NULL once the connection is gone */
    const ws_endpoint_t *ep;
    const char *subprotocol;
    void *data;
    int in_open;    /* inside handlers.open: headers readable */
    int closing;    /* hr_ws_close called (or the queue overflowed, or the client closes) */
    int close_sent; /* our close frame is written */
    int close_code;
    char close_reason[124];
    size_t close_reason_len;
    ws_msg_t *head, *tail; /* outbound queue */
    size_t queued;         /* bytes in the queue */
    hr_buf_t rx;           /* the message being gathered, capped at the server's max_body */
    int rx_binary;
    lws_sorted_usec_list_t timer;
    hval_t *hvals;        /* header values handed out during open */
    hr_ws_t *prev, *next; /* in srv->sessions */
    char peer[64];
};

static const ws_endpoint_t *endpoint_of(const hr_server_t *srv, const char *path)
{
    for (size_t i = 0; i < srv->nendpoints; i++)
        if (strcmp(srv->endpoints[i].path, path) == 0) return &srv->endpoints[i];
    return NULL;
}

/* The vhost protocol lws will bind for a Sec-WebSocket-Protocol list: the first listed name
 * that is one (see lws_process_ws_upgrade). Returns "http", a slot name, or NULL. */
static const char *protocol_lws_picks(const hr_server_t *srv, const char *list)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t n = (size_t)(end - start);
        if (n == 4 && strncmp(start, "http", 4) == 0) return "http";
        for (size_t i = 0; i < srv->npnames; i++)
            if (strlen(srv->pnames[i]) == n && strncmp(srv->pnames[i], start, n) == 0)
                return srv->pnames[i];
    }
    return NULL;
}

/* Writes a refusal of an upgrade as a plain HTTP answer with Connection: close (lws closes a
 * connection whose request said Connection: Upgrade once the transaction completes). */
static int refuse_upgrade(hr_server_t *srv, struct lws *wsi, int status, const char *msg)
{
    hr_request_t tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.srv = srv;
    tmp.wsi = wsi;
    tmp.close_after = 1;
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", msg);
    size_t len = 0;
    unsigned char *out =
        hr_srv_build_response(&tmp, status, "application/json", body, (size_t)n, &len);
    /* No writeable callback exists for this state; lws writes its own refusals the same way
     * (lws_return_http_status) and keeps what the socket does not take for later. */
    int rc = out && lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) == (int)len ? 1 : -1;
    free(out);
    srv->stats.ws_refused++;
    srv->stats.responses++;
    return rc;
}

int hr_srv_confirm_upgrade(hr_server_t *srv, struct lws *wsi, const char *upgrade)
{
    char path[1024], list[WS_PROTOCOL_HEADER_MAX + 1];
    srv->stats.requests++;
    if (srv->closing) return refuse_upgrade(srv, wsi, 503, "the server is shutting down");
    if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
        return refuse_upgrade(srv, wsi, 400, "unsupported upgrade");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 ||
        lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0)
        return refuse_upgrade(srv, wsi, 400, "a WebSocket upgrade is a GET request");
    const ws_endpoint_t *ep = endpoint_of(srv, path);
    if (!ep) return refuse_upgrade(srv, wsi, 404, "no WebSocket endpoint at this path");
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);
    if (n > WS_PROTOCOL_HEADER_MAX)
        return refuse_upgrade(srv, wsi, 400, "Sec-WebSocket-Protocol too long");
    list[0] = '\0';
    if (n > 0 && lws_hdr_copy(wsi, list, sizeof list, WSI_TOKEN_PROTOCOL) < 0) list[0] = '\0';
    const char *pick = protocol_lws_picks(srv, list);
    for (size_t i = 0; pick && i < ep->nnames; i++)
        if (ep->names[i] == pick) return 0;
    char msg[200];
    size_t off = (size_t)snprintf(msg, sizeof msg, "unsupported WebSocket subprotocol (expected");
    for (size_t i = 0; i < ep->nnames && off < sizeof msg; i++)
        off +=
            (size_t)snprintf(msg + off, sizeof msg - off, "%s%s", i ? " or " : " ", ep->names[i]);
    if (off < sizeof msg) snprintf(msg + off, sizeof msg - off, ")");
    return refuse_upgrade(srv, wsi, 400, msg);
}

/* A message buffer for len bytes of text, from the pool when one fits. */
static ws_msg_t *msg_get(hr_server_t *srv, size_t len)
{
    ws_msg_t *m = srv->ws_pool;
    if (m) {
        srv->ws_pool = m->next;
        srv->ws_pool_bytes -= m->cap;
    }
    if (!m || m->cap < len) {
        m = hr_xrealloc(m, sizeof *m + LWS_PRE + len);
        m->cap = len;
    }
    m->next = NULL;
    m->len = len;
    return m;
}

/* Gives a written or dropped message back (to the pool or to malloc). */
static void msg_put(hr_server_t *srv, ws_msg_t *m)
{
    if (m->cap > WS_POOL_MSG_MAX || m->cap > WS_POOL_MAX - srv->ws_pool_bytes) {
        free(m);
        return;
    }
    m->next = srv->ws_pool;
    srv->ws_pool = m;
    srv->ws_pool_bytes += m->cap;
}

static void ws_queue_free(hr_ws_t *ws)
{
    while (ws->head) {
        ws_msg_t *m = ws->head;
        ws->head = m->next;
        msg_put(ws->srv, m);
    }
    ws->tail = NULL;
    ws->queued = 0;
}

static void ws_on_timer(lws_sorted_usec_list_t *sul)
{
    hr_ws_t *ws = lws_container_of(sul, hr_ws_t, timer);
    if (ws->wsi && !ws->closing && ws->ep->h.timer) ws->ep->h.timer(ws, ws->ep->ud);
}

static void ws_free_hvals(hr_ws_t *ws)
{
    while (ws->hvals) {
        hval_t *h = ws->hvals;
        ws->hvals = h->next;
        free(h);
    }
}

static int ws_established(hr_server_t *srv, struct lws *wsi)
{
    char path[1024];
    const struct lws_protocols *pcol = lws_get_protocol(wsi);
    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0 || !pcol) return -1;
    const ws_endpoint_t *ep = endpoint_of(srv, path);
    if (!ep) return -1; /* confirm_upgrade let it through: cannot happen */
    hr_ws_t *ws = hr_xcalloc(1, sizeof *ws);
    ws->srv = srv;
    ws->wsi = wsi;
    ws->ep = ep;
    ws->subprotocol = pcol->name;
    hr_buf_init(&ws->rx, srv->max_body);
    lws_get_peer_simple(wsi, ws->peer, sizeof ws->peer);
    lws_set_opaque_user_data(wsi, ws);
    ws->next = srv->sessions;
    if (srv->sessions) srv->sessions->prev = ws;
    srv->sessions = ws;
    /* Sessions live as long as their client wants: no lws timeout. */
    lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    srv->stats.ws_accepted++;
    srv->stats.ws_open++;
    ws->in_open = 1;
    ep->h.open(ws, ep->ud);
    ws->in_open = 0;
    ws_free_hvals(ws);
    return 0;
}

/* The connection is gone: the closed callback, then the session is freed. Idempotent. */
static void ws_detach(struct lws *wsi)
{
    hr_ws_t *ws = lws_get_opaque_user_data(wsi);
    if (!ws) return;
    lws_set_opaque_user_data(wsi, NULL);
    ws->wsi = NULL;
    ws->closing = 1;
    lws_sul_cancel(&ws->timer);
    ws->srv->stats.ws_open--;
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        ws->srv->sessions = ws->next;
    if (ws->next) ws->next->prev = ws->prev;
    ws->ep->h.closed(ws, ws->ep->ud);
    ws_queue_free(ws);
    ws_free_hvals(ws);
    hr_buf_free(&ws->rx);
    free(ws);
}

static int ws_receive(hr_ws_t *ws, struct lws *wsi, const void *in, size_t len)
{
    if (ws->closing) return 0;
    if (!ws->rx.len) ws->rx_binary = lws_frame_is_binary(wsi);
    if (hr_buf_append(&ws->rx, in, len) != 0) {
        hr_buf_free(&ws->rx);
        hr_ws_close(ws, 1009, "message too big");
        return 0;
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return 0;
    /* A whole message: hand it over, then let the buffer go (idle sessions hold none). */
    size_t mlen;
    char *msg = hr_buf_steal(&ws->rx, &mlen);
    ws->ep->h.message(ws, msg, mlen, ws->rx_binary, ws->ep->ud);
    free(msg);
    return 0;
}

static int ws_writeable(hr_ws_t *ws, struct lws *wsi)
{
    for (int n = 0; ws->head && n < WS_WRITES_PER_CALLBACK; n++) {
        if (n && lws_send_pipe_choked(wsi)) break;
        ws_msg_t *m = ws->head;
        /* lws keeps what the socket does not take and calls back only once it is written. */
        if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len) return -1;
        ws->head = m->next;
        if (!ws->head) ws->tail = NULL;
        ws->queued -= m->len;
        msg_put(ws->srv, m);
    }
    if (ws->head) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (ws->closing && !ws->close_sent) {
        /* The close frame, written here rather than by lws_close_reason and a -1: with the
         * libuv event library a debug build of lws (Debian's) closes every connection twice
         * ("uv repeat test"), and the second close kills it before the frame goes out. */
        unsigned char buf[LWS_PRE + 2 + sizeof ws->close_reason];
        buf[LWS_PRE] = (unsigned char)(ws->close_code >> 8);
        buf[LWS_PRE + 1] = (unsigned char)ws->close_code;
        memcpy(buf + LWS_PRE + 2, ws->close_reason, ws->close_reason_len);
        ws->close_sent = 1;
        if (lws_write(wsi, buf + LWS_PRE, 2 + ws->close_reason_len, WS_WRITE_CLOSE) < 0) return -1;
        /* The client answers with its close frame (then we hang up), or is cut off. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, WS_CLOSE_FLUSH_SECS);
    }
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    hr_ws_t *ws;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 0; /* judged in confirm_upgrade */
    case LWS_CALLBACK_ESTABLISHED:
        return ws_established(lws_context_user(lws_get_context(wsi)), wsi);
    case LWS_CALLBACK_RECEIVE:
        ws = lws_get_opaque_user_data(wsi);
        return ws ? ws_receive(ws, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        ws = lws_get_opaque_user_data(wsi);
        return ws ? ws_writeable(ws, wsi) : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* The answer to our close frame: hang up. Otherwise lws echoes the client's close. */
        ws = lws_get_opaque_user_data(wsi);
        if (ws) ws->closing = 1;
        return ws && ws->close_sent ? -1 : 0;
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        ws_detach(wsi);
        return 0;
    default:
        return 0;
    }
}

void hr_srv_ws_setup(hr_server_t *srv, struct lws_context_creation_info *info)
{
    for (size_t i = 0; i < HR_WS_MAX_SUBPROTOCOLS; i++) {
        srv->protocols[1 + i].name = srv->pnames[i];
        srv->protocols[1 + i].callback = ws_callback;
        srv->protocols[1 + i].rx_buffer_size = WS_RX_BUFFER;
        /* lws limits each send() to tx_packet_size, or else to rx_buffer_size: a message
         * beyond it would go out in pieces, the rest copied to lws' own buffer first. */
        srv->protocols[1 + i].tx_packet_size = WS_TX_PACKET;
    }
    /* Only WebSocket sessions use it (HTTP/1 connections have no keep-alive probe in lws). */
    static const uint32_t backoff_ms[] = {1000};
    static const lws_retry_bo_t ws_idle = {.retry_ms_table = backoff_ms,
                                           .retry_ms_table_count = 1,
                                           .conceal_count = 1,
                                           .secs_since_valid_ping = WS_PING_SECS,
                                           .secs_since_valid_hangup = WS_HANGUP_SECS};
    info->retry_and_idle_policy = &ws_idle;
}

void hr_srv_ws_goaway(hr_server_t *srv)
{
    for (hr_ws_t *ws = srv->sessions; ws; ws = ws->next)
        hr_ws_close(ws, 1001, "server shutting down");
}

void hr_srv_ws_free(hr_server_t *srv)
{
    while (srv->ws_pool) {
        ws_msg_t *m = srv->ws_pool;
        srv->ws_pool = m->next;
        free(m);
    }
    srv->ws_pool_bytes = 0;
    for (size_t i = 0; i < srv->nendpoints; i++)
        free(srv->endpoints[i].path);
    free(srv->endpoints);
}

int hr_server_websocket(hr_server_t *srv, const char *path, const char *const *subprotocols,
                        const hr_ws_handlers_t *handlers, void *ud)
{
    if (!path || path[0] != '/' || strlen(path) >= 1024 || !subprotocols || !subprotocols[0] ||
        !handlers || !handlers->open || !handlers->message || !handlers->closed)
        return HR_EINVAL;
    if (endpoint_of(srv, path)) return HR_EEXIST;
    ws_endpoint_t ep = {.h = *handlers, .ud = ud};
    size_t fresh = 0, count = 0;
    for (size_t i = 0; subprotocols[i]; i++, count++) {
        const char *name = subprotocols[i];
        size_t n = strlen(name);
        if (n == 0 || n > WS_NAME_MAX || !strcmp(name, "http") ||
            strpbrk(name, " \t,\"()/:;<=>?@[]{}\\"))
            return HR_EINVAL;
        int known = 0;
        for (size_t k = 0; k < srv->npnames && !known; k++)
            known = !strcmp(srv->pnames[k], name);
        for (size_t k = 0; k < i && !known; k++)
            known = !strcmp(subprotocols[k], name);
        if (!known) fresh++;
    }
    if (count > HR_WS_MAX_SUBPROTOCOLS || srv->npnames + fresh > HR_WS_MAX_SUBPROTOCOLS)
        return HR_E2BIG;
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k < srv->npnames && strcmp(srv->pnames[k], subprotocols[i]) != 0)
            k++;
        if (k == srv->npnames)
            snprintf(srv->pnames[srv->npnames++], WS_NAME_MAX + 1, "%s", subprotocols[i]);
        int dup = 0;
        for (size_t j = 0; j < ep.nnames; j++)
            dup |= ep.names[j] == srv->pnames[k];
        if (!dup) ep.names[ep.nnames++] = srv->pnames[k];
    }
    ep.path = hr_xstrdup(path);
    srv->endpoints = hr_xrealloc(srv->endpoints, (srv->nendpoints + 1) * sizeof *srv->endpoints);
    srv->endpoints[srv->nendpoints++] = ep;
    return 0;
}

const char *hr_ws_subprotocol(const hr_ws_t *ws)
{
    return ws->subprotocol;
}

const char *hr_ws_header(hr_ws_t *ws, const char *name)
{
    return ws->in_open ? hr_srv_header(ws->wsi, name, &ws->hvals) : NULL;
}

const char *hr_ws_peer(const hr_ws_t *ws)
{
    return ws->peer;
}

void hr_ws_set_data(hr_ws_t *ws, void *data)
{
    ws->data = data;
}

void *hr_ws_data(const hr_ws_t *ws)
{
    return ws->data;
}

int hr_ws_is_open(const hr_ws_t *ws)
{
    return ws->wsi && !ws->closing;
}

int hr_ws_sendv(hr_ws_t *ws, const hr_ws_part_t *parts, size_t n)
{
    if (!ws->wsi || ws->closing) return HR_ECANCELED;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    if (len > HR_WS_MAX_QUEUED - ws->queued) {
        ws->srv->stats.ws_slow++;
        hr_log(HR_LOG_INFO,
               "component=server peer=%s queued=%zu msg=\"WebSocket client does not read: "
               "closing\"",
               ws->peer, ws->queued);
        ws_queue_free(ws);
        hr_ws_close(ws, 1008, "send queue full");
        return HR_E2BIG;
    }
    ws_msg_t *m = msg_get(ws->srv, len);
    unsigned char *p = m->buf + LWS_PRE;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len) memcpy(p, parts[i].data, parts[i].len);
        p += parts[i].len;
    }
    if (ws->tail)
        ws->tail->next = m;
    else
        ws->head = m;
    ws->tail = m;
    ws->queued += len;
    lws_callback_on_writable(ws->wsi);
    return 0;
}

size_t hr_ws_queued(const hr_ws_t *ws)
{
    return ws->wsi ? ws->queued : 0;
}

int hr_ws_send(hr_ws_t *ws, const char *text, size_t len)
{
    hr_ws_part_t part = {text, len};
    return hr_ws_sendv(ws, &part, 1);
}

void hr_ws_timer(hr_ws_t *ws, uint64_t ms)
{
    if (!ws->wsi) return;
    if (!ms) {
        lws_sul_cancel(&ws->timer);
        return;
    }
    lws_sul_schedule(lws_get_context(ws->wsi), 0, &ws->timer, ws_on_timer, (lws_usec_t)ms * 1000);
}

void hr_ws_close(hr_ws_t *ws, int code, const char *reason)
{
    if (!ws->wsi || ws->closing) return;
    ws->closing = 1;
    ws->close_code = code >= 1000 && code <= 4999 ? code : 1011;
    size_t n = reason ? strlen(reason) : 0;
    if (n > sizeof ws->close_reason - 1) {
        n = sizeof ws->close_reason - 1;
        while (n && ((unsigned char)reason[n] & 0xC0) == 0x80) /* not inside a character */
            n--;
    }
    if (n) memcpy(ws->close_reason, reason, n);
    ws->close_reason_len = n;
    lws_sul_cancel(&ws->timer);
    lws_set_timeout(ws->wsi, PENDING_TIMEOUT_CLOSE_SEND, WS_CLOSE_FLUSH_SECS);
    lws_callback_on_writable(ws->wsi);
}
