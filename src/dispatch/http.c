/* http.c: asynchronous HTTP POST on the libuv loop, driven by curl's multi_socket API.
 *
 * One CURLM per hr_http_t. curl tells us which sockets to watch (on_curl_socket) and when to
 * wake it up (on_curl_timer); we watch with one uv_poll_t per socket and one uv_timer_t, and
 * hand readiness back with curl_multi_socket_action. After every such call, finished transfers
 * are collected with curl_multi_info_read and their callbacks run (collect_done).
 *
 * The life of a request (req_t):
 *
 *     free list --hr_http_post--> active --collect_done----> cb(result) --recycle--> free list
 *                                   |                                        |
 *                                   +--hr_http_close--> cb(HR_ECANCELED) --destroyed
 *
 * Invariants:
 *  1. A req is on exactly one of h->active (its easy handle is in the multi) or h->idle (its
 *     easy handle was reset and is not in the multi), or is being completed (on neither).
 *  2. The callback runs exactly once per accepted request, after the req left h->active, so a
 *     callback may call hr_http_post or hr_http_close.
 *  3. A socket has at most one uv_poll_t; it is stored with curl_multi_assign and closed on
 *     CURL_POLL_REMOVE, which curl sends before it closes the fd. A reused fd number therefore
 *     always gets a fresh uv_poll_t.
 *  4. h->handles counts uv handles not yet closed (the timer plus each poll); h is freed and
 *     done(ud) runs in the close callback that brings it to 0, which can only happen after
 *     hr_http_close. Close callbacks never run synchronously, so h stays valid until the loop
 *     runs again after hr_http_close.
 *
 * Keep-alive: connections live in the multi's pool, shared by all easy handles; easy handles
 * are recycled (curl_easy_reset keeps their DNS and session caches) to spare allocations. */
#include "dispatch/http.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#ifndef HERALD_VERSION
#define HERALD_VERSION "dev"
#endif

/* Parallel connections per host and pooled connections in total. */
#define MAX_HOST_CONNECTIONS 256
#define MAX_CONNECTS 512
/* Idle easy handles kept for reuse; more are cleaned up. */
#define MAX_IDLE_HANDLES 256
/* A connect takes at most this long, or the whole timeout when that is shorter. */
#define CONNECT_TIMEOUT_MS 10000
#define RETRY_AFTER_MAX 64

typedef struct req req_t;

/* A watched socket: curl's per-socket pointer (curl_multi_assign). */
typedef struct sock {
    uv_poll_t poll;
    hr_http_t *h;
    curl_socket_t fd;
    struct sock *prev, *next; /* h->socks, the polls not yet closing */
} sock_t;

struct req {
    CURL *easy;              /* kept across recycling */
    struct curl_slist *hdrs; /* "Expect:" plus the caller's headers, while active */
    hr_http_cb cb;           /* NULL while idle */
    void *ud;
    uint64_t start_us;   /* hr_mono_us at submission */
    size_t response_cap; /* bytes of body to keep */
    size_t received;     /* body bytes seen so far, kept or not */
    int cut;             /* 1 when our write callback aborted past HR_HTTP_DRAIN_MAX */
    hr_buf_t resp;       /* the kept body excerpt (allocation kept across recycling) */
    char retry_after[RETRY_AFTER_MAX]; /* trimmed Retry-After value, "" when none */
    int has_retry_after;
    char errbuf[CURL_ERROR_SIZE];
    req_t *prev, *next; /* h->active (doubly linked) or h->idle (next only) */
};

struct hr_http {
    uv_loop_t *loop;
    CURLM *multi;     /* NULL after hr_http_close */
    uv_timer_t timer; /* curl's timeout */
    req_t *active;    /* requests in the multi */
    req_t *idle;      /* recycled easy handles */
    size_t nidle;
    size_t in_flight; /* length of active */
    sock_t *socks;    /* open polls */
    size_t handles;   /* uv handles not yet closed (invariant 4) */
    int closing;      /* hr_http_close was called */
    void (*done)(void *ud);
    void *done_ud;
    hr_http_stats_t stats;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- uv handle bookkeeping -------------------------------------------------------------- */

static void handle_closed(hr_http_t *h)
{
    assert(h->handles > 0);
    if (--h->handles > 0 || !h->closing) return;
    void (*done)(void *) = h->done;
    void *ud = h->done_ud;
    free(h);
    if (done) done(ud);
}

static void on_timer_closed(uv_handle_t *handle)
{
    handle_closed(handle->data);
}

static void on_sock_closed(uv_handle_t *handle)
{
    sock_t *s = handle->data;
    hr_http_t *h = s->h;
    free(s);
    handle_closed(h);
}

static void sock_close(hr_http_t *h, sock_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    /* uv_close stops the poll and takes the fd out of epoll right now, so curl may close it
     * and the number may be reused by the next socket at once. */
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ---- completion ------------------------------------------------------------------------- */

static void active_unlink(hr_http_t *h, req_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->active = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->in_flight--;
}

static void req_destroy(req_t *r)
{
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    hr_buf_free(&r->resp);
    free(r);
}

/* Puts a completed request's easy handle back on the idle list (or frees it). */
static void recycle(hr_http_t *h, req_t *r)
{
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    r->cb = NULL;
    r->ud = NULL;
    if (h->closing || h->nidle >= MAX_IDLE_HANDLES) {
        req_destroy(r);
        return;
    }
    curl_easy_reset(r->easy);
    hr_buf_reset(&r->resp);
    r->next = h->idle;
    h->idle = r;
    h->nidle++;
}

/* Fills the result of a finished transfer (already out of the multi and h->active), runs the
 * callback and recycles the request. */
static void complete(hr_http_t *h, req_t *r, CURLcode result)
{
    hr_http_res_t res = {0};
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    long connects = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
        h->stats.connects += (uint64_t)connects;

    res.status = status;
    if (result == CURLE_OK || (result == CURLE_WRITE_ERROR && r->cut && status > 0)) {
        res.error = 0;
        h->stats.ok++;
    } else if (result == CURLE_OPERATION_TIMEDOUT) {
        res.error = HR_ETIMEOUT;
        h->stats.timeouts++;
    } else {
        res.error = HR_EIO;
        h->stats.failed++;
    }
    if (res.error) res.error_msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(result);
    res.body = r->resp.data ? r->resp.data : "";
    res.body_len = r->resp.len;
    res.latency_us = hr_mono_us() - r->start_us;
    res.retry_after = r->has_retry_after ? r->retry_after : NULL;

    r->cb(r->ud, &res);
    recycle(h, r);
}

/* Collects finished transfers and runs their callbacks. */
static void collect_done(hr_http_t *h)
{
    CURLMsg *msg;
    int pending;
    /* A callback may call hr_http_close, which cleans the multi up: check before each read. */
    while (!h->closing && (msg = curl_multi_info_read(h->multi, &pending))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result; /* msg dies with curl_multi_remove_handle */
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        req_t *r = (req_t *)priv;
        assert(r && r->easy == easy);
        curl_multi_remove_handle(h->multi, easy);
        active_unlink(h, r);
        complete(h, r, result);
    }
}

/* ---- curl <-> libuv ----------------------------------------------------------------------- */

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_t *s = poll->data;
    hr_http_t *h = s->h;
    int flags = 0;
    if (status < 0) {
        /* E.g. UV_EBADF after POLLERR; libuv has stopped the poll. curl fails the transfer. */
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    int running;
    /* s may be closed (not freed) inside this call; use only the copied fd. */
    curl_multi_socket_action(h->multi, s->fd, flags, &running);
    collect_done(h);
}

static void on_timer(uv_timer_t *timer)
{
    hr_http_t *h = timer->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_done(h);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms the uv timer, never calls into curl. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    hr_http_t *h = userp;
    if (h->closing) return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
        return 0;
    }
    /* 0 means "as soon as possible": let the loop turn once instead of recursing. */
    uv_timer_start(&h->timer, on_timer, timeout_ms == 0 ? 1 : (uint64_t)timeout_ms, 0);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: keeps one uv_poll_t per socket in step with what curl waits for. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    hr_http_t *h = userp;
    sock_t *s = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            sock_close(h, s);
            if (!h->closing) curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (h->closing) return 0;
    if (!s) {
        s = hr_xcalloc(1, sizeof *s);
        if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
            /* Nothing watches this socket; the transfer ends with its timeout. Returning -1
             * would make curl fail every transfer of this multi for good. */
            free(s);
            return 0;
        }
        s->poll.data = s;
        s->h = h;
        s->fd = fd;
        s->next = h->socks;
        if (h->socks) h->socks->prev = s;
        h->socks = s;
        h->handles++;
        curl_multi_assign(h->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    /* Cannot fail for a handle that uv_poll_init_socket accepted; if it did, the transfer
     * would end with its timeout. */
    (void)uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* ---- per-transfer curl callbacks ------------------------------------------------------- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    req_t *r = userp;
    size_t n = size * nmemb;
    r->received += n;
    if (r->resp.len < r->response_cap) {
        size_t keep = r->response_cap - r->resp.len;
        if (keep > n) keep = n;
        hr_buf_append(&r->resp, data, keep);
    }
    if (r->received > HR_HTTP_DRAIN_MAX) {
        r->cut = 1;
        return 0; /* CURLE_WRITE_ERROR, recognised in complete() */
    }
    return n;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userp)
{
    req_t *r = userp;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    size_t nlen = sizeof name - 1;

    /* A status line starts a new response (e.g. after "100 Continue"): forget the old one. */
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        r->has_retry_after = 0;
        r->retry_after[0] = '\0';
        return n;
    }
    if (n < nlen || strncasecmp(line, name, nlen) != 0) return n;
    const char *v = line + nlen, *end = line + n;
    while (v < end && isspace((unsigned char)*v))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= sizeof r->retry_after) len = sizeof r->retry_after - 1;
    memcpy(r->retry_after, v, len);
    r->retry_after[len] = '\0';
    r->has_retry_after = 1;
    return n;
}

/* ---- public API ------------------------------------------------------------------------- */

int hr_http_init(uv_loop_t *loop, hr_http_t **out, hr_err_t *err)
{
    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return hr_err_set(err, HR_EIO, "curl_global_init: %s", curl_easy_strerror(global_rc));

    hr_http_t *h = hr_xcalloc(1, sizeof *h);
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return hr_err_set(err, HR_EIO, "curl_multi_init failed");
    }
    int rc = uv_timer_init(loop, &h->timer);
    if (rc) {
        curl_multi_cleanup(h->multi);
        free(h);
        return hr_err_set(err, HR_EIO, "uv_timer_init: %s", uv_strerror(rc));
    }
    h->timer.data = h;
    h->handles = 1;

    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)MAX_HOST_CONNECTIONS);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CONNECTS);
    *out = h;
    return 0;
}

static int check_req(const hr_http_req_t *req)
{
    if (!req || !req->url || req->timeout_ms == 0) return HR_EINVAL;
    if (!req->body && req->body_len > 0) return HR_EINVAL;
    if (req->nheaders && !req->headers) return HR_EINVAL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *line = req->headers[i];
        if (!line || strpbrk(line, "\r\n") || !strchr(line, ':')) return HR_EINVAL;
    }
    return 0;
}

static struct curl_slist *slist_add(struct curl_slist *list, const char *line)
{
    struct curl_slist *l = curl_slist_append(list, line);
    if (!l) abort(); /* curl_slist_append fails only when out of memory */
    return l;
}

/* Sets every option of a fresh or reset easy handle for req. */
static void set_options(req_t *r, const hr_http_req_t *req)
{
    CURL *e = r->easy;
    long timeout = req->timeout_ms > LONG_MAX ? LONG_MAX : (long)req->timeout_ms;
    long connect_timeout = timeout < CONNECT_TIMEOUT_MS ? timeout : CONNECT_TIMEOUT_MS;

    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    /* Size first, so the copy is binary-safe; "" stands for an empty body. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body_len ? req->body : "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "herald/" HERALD_VERSION);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
}

int hr_http_post(hr_http_t *h, const hr_http_req_t *req, hr_http_cb cb, void *ud)
{
    if (h->closing) return HR_ECANCELED;
    if (!cb) return HR_EINVAL;
    int rc = check_req(req);
    if (rc) return rc;

    req_t *r = h->idle;
    if (r) {
        h->idle = r->next;
        h->nidle--;
        r->next = NULL;
    } else {
        r = hr_xcalloc(1, sizeof *r);
        r->easy = curl_easy_init();
        if (!r->easy) abort(); /* curl_easy_init fails only when out of memory */
        hr_buf_init(&r->resp, 0);
    }

    /* "Expect:" first: it turns off 100-continue even if a caller header asks for it. */
    struct curl_slist *hdrs = slist_add(NULL, "Expect:");
    for (size_t i = 0; i < req->nheaders; i++)
        hdrs = slist_add(hdrs, req->headers[i]);
    r->hdrs = hdrs;
    r->cb = cb;
    r->ud = ud;
    r->start_us = hr_mono_us();
    r->response_cap = req->response_cap;
    r->received = 0;
    r->cut = 0;
    r->retry_after[0] = '\0';
    r->has_retry_after = 0;
    r->errbuf[0] = '\0';
    hr_buf_reset(&r->resp);
    set_options(r, req);

    CURLMcode mrc = curl_multi_add_handle(h->multi, r->easy);
    if (mrc != CURLM_OK) {
        recycle(h, r);
        return HR_EIO;
    }
    r->prev = NULL;
    r->next = h->active;
    if (h->active) h->active->prev = r;
    h->active = r;
    h->in_flight++;
    h->stats.requests++;
    return 0;
}

size_t hr_http_in_flight(const hr_http_t *h)
{
    return h->in_flight;
}

void hr_http_stats(const hr_http_t *h, hr_http_stats_t *out)
{
    *out = h->stats;
}

void hr_http_close(hr_http_t *h, void (*done)(void *ud), void *ud)
{
    assert(!h->closing);
    h->closing = 1;
    h->done = done;
    h->done_ud = ud;

    /* Cancel: each request leaves the multi (curl closes its half-used connection and sends
     * CURL_POLL_REMOVE for it) before its callback runs. */
    while (h->active) {
        req_t *r = h->active;
        curl_multi_remove_handle(h->multi, r->easy);
        active_unlink(h, r);
        h->stats.canceled++;
        hr_http_res_t res = {0};
        res.error = HR_ECANCELED;
        res.error_msg = "canceled by shutdown";
        res.body = "";
        res.latency_us = hr_mono_us() - r->start_us;
        r->cb(r->ud, &res);
        req_destroy(r);
    }
    while (h->idle) {
        req_t *r = h->idle;
        h->idle = r->next;
        req_destroy(r);
    }
    h->nidle = 0;

    curl_multi_cleanup(h->multi); /* closes the pooled keep-alive connections */
    h->multi = NULL;
    while (h->socks)
        sock_close(h, h->socks);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
