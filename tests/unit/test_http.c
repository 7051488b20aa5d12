/* test_http.c: hr_http against a tiny HTTP/1.1 server running on the same libuv loop.
 *
 * The server listens on 127.0.0.1:<ephemeral>, reads request headers up to the blank line and a
 * Content-Length body, keeps connections alive, counts accepted connections and records the
 * last request. It answers by path: /ok 200 with a short body, /fail 503 with Retry-After: 7,
 * /fail-spaced 429 with an oddly cased, padded Retry-After, /big 200 with 5 MiB, /slow never,
 * /close drops the connection. Tests turn the loop until a condition holds, under a watchdog
 * timer, never sleeping. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasestr */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "dispatch/http.h"

#define WATCHDOG_MS 60000
#define BIG_BODY_LEN (5 * 1024 * 1024)
#define OK_BODY "hello from the test server\n"

/* The loop of the running test. State that a test waits for changes only in callbacks, and each
 * of them calls wake(): libuv 1.44 runs timers before polling, so a UV_RUN_ONCE whose timer
 * callback made the condition true would otherwise still block in the poll. */
static uv_loop_t *g_loop;

static void wake(void)
{
    uv_stop(g_loop);
}

/* ---- the test server -------------------------------------------------------------------- */

typedef struct srv srv_t;

typedef struct sconn {
    uv_tcp_t tcp;
    srv_t *srv;
    hr_buf_t in; /* bytes received and not yet parsed */
    int stalled; /* a /slow request arrived: answer nothing more */
    int closing;
    struct sconn *prev, *next;
} sconn_t;

struct srv {
    uv_tcp_t tcp;
    int port;
    int handles;        /* open uv handles: the listener plus each connection */
    int accepted;       /* connections accepted */
    int requests;       /* requests parsed */
    sconn_t *conns;     /* open connections */
    hr_buf_t last_head; /* request line and headers of the last request */
    hr_buf_t last_body;
    char last_path[64];
};

typedef struct wreq {
    uv_write_t req;
    char *data;
} wreq_t;

static void on_srv_handle_closed(uv_handle_t *handle)
{
    srv_t *srv = handle->data;
    srv->handles--;
}

static void on_conn_closed(uv_handle_t *handle)
{
    sconn_t *c = handle->data;
    c->srv->handles--;
    hr_buf_free(&c->in);
    wake();
    free(c);
}

static void conn_close(sconn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    srv_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    free(w->data);
    free(w);
}

/* Sends len bytes of data (takes ownership). */
static void conn_send(sconn_t *c, char *data, size_t len)
{
    wreq_t *w = hr_xmalloc(sizeof *w);
    w->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(data);
        free(w);
        conn_close(c);
    }
}

static void conn_send_str(sconn_t *c, const char *s)
{
    conn_send(c, hr_xstrdup(s), strlen(s));
}

/* Length of a Content-Length header in head (request line and headers), 0 when absent. */
static size_t content_length(const char *head, size_t len)
{
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
            return (size_t)strtoull(p + 15, NULL, 10);
        p = eol + 1;
    }
    return 0;
}

static void conn_process(sconn_t *c)
{
    srv_t *srv = c->srv;
    while (!c->closing && !c->stalled && c->in.len > 0) {
        char *blank = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        if (!blank) return;
        size_t head_len = (size_t)(blank - c->in.data) + 4;
        size_t body_len = content_length(c->in.data, head_len);
        if (c->in.len < head_len + body_len) return;

        char path[64] = "";
        const char *sp = memchr(c->in.data, ' ', head_len);
        if (sp) {
            const char *sp2 = memchr(sp + 1, ' ', head_len - (size_t)(sp + 1 - c->in.data));
            size_t n = sp2 ? (size_t)(sp2 - sp - 1) : 0;
            if (n >= sizeof path) n = sizeof path - 1;
            memcpy(path, sp + 1, n);
            path[n] = '\0';
        }
        srv->requests++;
        wake();
        hr_buf_reset(&srv->last_head);
        hr_buf_append(&srv->last_head, c->in.data, head_len);
        hr_buf_reset(&srv->last_body);
        hr_buf_append(&srv->last_body, c->in.data + head_len, body_len);
        snprintf(srv->last_path, sizeof srv->last_path, "%s", path);

        size_t used = head_len + body_len;
        memmove(c->in.data, c->in.data + used, c->in.len - used);
        c->in.len -= used;
        c->in.data[c->in.len] = '\0';

        if (strcmp(path, "/ok") == 0) {
            char *r = hr_xasprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                   "Content-Length: %zu\r\n\r\n%s",
                                   strlen(OK_BODY), OK_BODY);
            conn_send(c, r, strlen(r));
        } else if (strcmp(path, "/fail") == 0) {
            conn_send_str(c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
                             "Content-Length: 4\r\n\r\nbusy");
        } else if (strcmp(path, "/fail-spaced") == 0) {
            conn_send_str(c, "HTTP/1.1 429 Too Many Requests\r\nrEtRy-AfTeR: \t 120  \r\n"
                             "Content-Length: 0\r\n\r\n");
        } else if (strcmp(path, "/big") == 0) {
            const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n";
            size_t hl = strlen(head);
            char *r = hr_xmalloc(hl + BIG_BODY_LEN);
            memcpy(r, head, hl);
            memset(r + hl, 'x', BIG_BODY_LEN);
            memcpy(r + hl, "BIG", 3);
            conn_send(c, r, hl + BIG_BODY_LEN);
        } else if (strcmp(path, "/slow") == 0) {
            c->stalled = 1;
        } else if (strcmp(path, "/close") == 0) {
            conn_close(c);
        } else {
            conn_send_str(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    buf->base = hr_xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sconn_t *c = stream->data;
    if (nread > 0) {
        hr_buf_append(&c->in, buf->base, (size_t)nread);
        conn_process(c);
    } else if (nread < 0) {
        conn_close(c);
    }
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    srv_t *srv = server->data;
    if (status < 0) return;
    sconn_t *c = hr_xcalloc(1, sizeof *c);
    c->srv = srv;
    hr_buf_init(&c->in, 0);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    srv->handles++;
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    srv->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void srv_start(srv_t *srv, uv_loop_t *loop)
{
    memset(srv, 0, sizeof *srv);
    hr_buf_init(&srv->last_head, 0);
    hr_buf_init(&srv->last_body, 0);
    assert_int_equal(uv_tcp_init(loop, &srv->tcp), 0);
    srv->tcp.data = srv;
    srv->handles = 1;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->tcp, 1024, on_connection), 0);
    struct sockaddr_in bound;
    int len = sizeof bound;
    assert_int_equal(uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &len), 0);
    srv->port = ntohs(bound.sin_port);
}

static void srv_stop(srv_t *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
    uv_close((uv_handle_t *)&srv->tcp, on_srv_handle_closed);
    hr_buf_free(&srv->last_head);
    hr_buf_free(&srv->last_body);
}

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct fx {
    uv_loop_t loop;
    srv_t srv;
    hr_http_t *http; /* NULL once a test closed it */
    int http_done;   /* calls of the hr_http_close done callback */
    uv_timer_t watchdog;
    int expired;
} fx_t;

/* One request's outcome, copied in the callback. */
typedef struct result {
    int calls;
    long status;
    int error;
    char error_msg[256];
    char body[2048];
    size_t body_len;
    int has_retry_after;
    char retry_after[64];
    uint64_t latency_us;
    hr_http_t *repost; /* when set, the callback tries hr_http_post on it ... */
    int repost_rc;     /* ... and records what it returned */
    hr_http_t *close;  /* when set, the callback closes it */
    fx_t *fx;          /* for the close done callback */
} result_t;

static void on_http_done(void *ud)
{
    fx_t *fx = ud;
    fx->http_done++;
    wake();
}

static void on_result(void *ud, const hr_http_res_t *res)
{
    result_t *r = ud;
    r->calls++;
    wake();
    r->status = res->status;
    r->error = res->error;
    snprintf(r->error_msg, sizeof r->error_msg, "%s", res->error_msg ? res->error_msg : "");
    assert_non_null(res->body);
    assert_int_equal(res->body[res->body_len], '\0');
    r->body_len = res->body_len;
    size_t n = res->body_len < sizeof r->body - 1 ? res->body_len : sizeof r->body - 1;
    memcpy(r->body, res->body, n);
    r->body[n] = '\0';
    r->latency_us = res->latency_us;
    r->has_retry_after = res->retry_after != NULL;
    snprintf(r->retry_after, sizeof r->retry_after, "%s", res->retry_after ? res->retry_after : "");
    if (r->repost) {
        hr_http_req_t req = {.url = "http://127.0.0.1:1/ok", .timeout_ms = 1000};
        r->repost_rc = hr_http_post(r->repost, &req, on_result, r);
    }
    if (r->close) {
        hr_http_t *h = r->close;
        r->close = NULL;
        r->fx->http = NULL;
        hr_http_close(h, on_http_done, r->fx);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    fx_t *fx = t->data;
    fx->expired = 1;
    wake();
}

/* Turns the loop until cond holds; fails the test if the watchdog fires first. */
#define RUN_UNTIL(fx, cond)                                                                        \
    do {                                                                                           \
        (fx)->expired = 0;                                                                         \
        uv_timer_start(&(fx)->watchdog, on_watchdog, WATCHDOG_MS, 0);                              \
        while (!(cond) && !(fx)->expired)                                                          \
            uv_run(&(fx)->loop, UV_RUN_ONCE);                                                      \
        uv_timer_stop(&(fx)->watchdog);                                                            \
        assert_false((fx)->expired);                                                               \
    } while (0)

static int setup(void **state)
{
    fx_t *fx = hr_xcalloc(1, sizeof *fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    g_loop = &fx->loop;
    srv_start(&fx->srv, &fx->loop);
    hr_err_t err = {0};
    assert_int_equal(hr_http_init(&fx->loop, &fx->http, &err), 0);
    assert_non_null(fx->http);
    uv_timer_init(&fx->loop, &fx->watchdog);
    fx->watchdog.data = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->http) {
        int before = fx->http_done;
        hr_http_close(fx->http, on_http_done, fx);
        fx->http = NULL;
        assert_int_equal(fx->http_done, before); /* never from inside hr_http_close */
        RUN_UNTIL(fx, fx->http_done > before);
    }
    srv_stop(&fx->srv);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->srv.handles, 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

static char *url(fx_t *fx, const char *path)
{
    return hr_xasprintf("http://127.0.0.1:%d%s", fx->srv.port, path);
}

/* Posts a small body to path and runs the loop until the callback ran. */
static void post_and_wait(fx_t *fx, const char *path, uint64_t timeout_ms, size_t cap,
                          result_t *res)
{
    char *u = url(fx, path);
    hr_http_req_t req = {
        .url = u, .body = "{}", .body_len = 2, .timeout_ms = timeout_ms, .response_cap = cap};
    memset(res, 0, sizeof *res);
    assert_int_equal(hr_http_post(fx->http, &req, on_result, res), 0);
    assert_int_equal(hr_http_in_flight(fx->http), 1);
    free(u);
    RUN_UNTIL(fx, res->calls > 0);
    assert_int_equal(res->calls, 1);
    assert_int_equal(hr_http_in_flight(fx->http), 0);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_ok_body_capped(void **state)
{
    fx_t *fx = *state;
    result_t r;

    post_and_wait(fx, "/ok", 5000, 5, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.error, 0);
    assert_string_equal(r.error_msg, "");
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    assert_false(r.has_retry_after);

    post_and_wait(fx, "/ok", 5000, 1024, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, OK_BODY);
    assert_int_equal(r.body_len, strlen(OK_BODY));

    post_and_wait(fx, "/ok", 5000, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.body, "");

    /* Any status is a completed request (error 0); judging it is the caller's business. */
    post_and_wait(fx, "/nowhere", 5000, 64, &r);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.error, 0);

    hr_http_stats_t st;
    hr_http_stats(fx->http, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.ok, 4);
    assert_int_equal(st.failed + st.timeouts + st.canceled, 0);
}

static void test_retry_after(void **state)
{
    fx_t *fx = *state;
    result_t r;

    post_and_wait(fx, "/fail", 5000, 64, &r);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.error, 0);
    assert_string_equal(r.body, "busy");
    assert_true(r.has_retry_after);
    assert_string_equal(r.retry_after, "7");

    post_and_wait(fx, "/fail-spaced", 5000, 64, &r);
    assert_int_equal(r.status, 429);
    assert_true(r.has_retry_after);
    assert_string_equal(r.retry_after, "120");

    /* A reused handle does not carry the previous Retry-After over. */
    post_and_wait(fx, "/ok", 5000, 64, &r);
    assert_int_equal(r.status, 200);
    assert_false(r.has_retry_after);
}

static void test_timeout(void **state)
{
    fx_t *fx = *state;
    result_t r;
    post_and_wait(fx, "/slow", 300, 64, &r);
    assert_int_equal(r.error, HR_ETIMEOUT);
    assert_int_equal(r.status, 0);
    /* Only a lower bound (curl may fire up to 40 ms early); the machine may be slow. */
    assert_true(r.latency_us >= 200 * 1000);
    assert_true(strlen(r.error_msg) > 0);
    hr_http_stats_t st;
    hr_http_stats(fx->http, &st);
    assert_int_equal(st.timeouts, 1);
}

static void test_connection_refused(void **state)
{
    fx_t *fx = *state;
    /* A port that was just bound and released: nothing listens there. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);

    char *u = hr_xasprintf("http://127.0.0.1:%d/ok", ntohs(addr.sin_port));
    hr_http_req_t req = {.url = u, .body = "x", .body_len = 1, .timeout_ms = 5000};
    result_t r = {0};
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), 0);
    free(u);
    RUN_UNTIL(fx, r.calls > 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, HR_EIO);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error_msg) > 0);
}

static void test_closed_without_answer(void **state)
{
    fx_t *fx = *state;
    result_t r;
    post_and_wait(fx, "/close", 5000, 64, &r);
    assert_int_equal(r.error, HR_EIO);
    assert_int_equal(r.status, 0);

    /* The client is still usable afterwards. */
    post_and_wait(fx, "/ok", 5000, 64, &r);
    assert_int_equal(r.status, 200);
}

static void test_bad_scheme(void **state)
{
    fx_t *fx = *state;
    hr_http_req_t req = {.url = "ftp://127.0.0.1/x", .timeout_ms = 1000};
    result_t r = {0};
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), 0);
    RUN_UNTIL(fx, r.calls > 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.error, HR_EIO);
}

static void test_big_body_is_cut(void **state)
{
    fx_t *fx = *state;
    result_t r;
    post_and_wait(fx, "/big", 10000, 1024, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.body_len, 1024);
    assert_memory_equal(r.body, "BIGxxx", 6);

    /* The cut connection was not reused: the next request needed a new one. */
    post_and_wait(fx, "/ok", 5000, 64, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, OK_BODY);
    assert_int_equal(fx->srv.accepted, 2);
}

#define NPARALLEL 500

static int count_called(const result_t *rs, int n)
{
    int called = 0;
    for (int i = 0; i < n; i++)
        called += rs[i].calls > 0;
    return called;
}

static void test_parallel(void **state)
{
    fx_t *fx = *state;
    result_t *rs = hr_xcalloc(NPARALLEL, sizeof *rs);
    char *u = url(fx, "/ok");
    for (int i = 0; i < NPARALLEL; i++) {
        char body[32];
        int n = snprintf(body, sizeof body, "{\"i\":%d}", i);
        hr_http_req_t req = {
            .url = u, .body = body, .body_len = (size_t)n, .timeout_ms = 30000, .response_cap = 8};
        assert_int_equal(hr_http_post(fx->http, &req, on_result, &rs[i]), 0);
    }
    free(u);
    assert_int_equal(hr_http_in_flight(fx->http), NPARALLEL);

    RUN_UNTIL(fx, count_called(rs, NPARALLEL) == NPARALLEL);
    for (int i = 0; i < NPARALLEL; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].error, 0);
        assert_int_equal(rs[i].status, 200);
        assert_string_equal(rs[i].body, "hello fr");
    }
    assert_int_equal(hr_http_in_flight(fx->http), 0);
    assert_int_equal(fx->srv.requests, NPARALLEL);
    free(rs);
}

/* Sequential chain: each callback submits the next request. */
typedef struct chain {
    fx_t *fx;
    char *url;
    int left;
    int ok;
    int failed;
} chain_t;

static void on_chain(void *ud, const hr_http_res_t *res)
{
    chain_t *c = ud;
    wake();
    if (res->error == 0 && res->status == 200)
        c->ok++;
    else
        c->failed++;
    if (--c->left > 0) {
        hr_http_req_t req = {.url = c->url, .body = "ping", .body_len = 4, .timeout_ms = 5000};
        assert_int_equal(hr_http_post(c->fx->http, &req, on_chain, c), 0);
    }
}

static void test_keep_alive(void **state)
{
    fx_t *fx = *state;
    chain_t c = {.fx = fx, .url = url(fx, "/ok"), .left = 200};
    hr_http_req_t req = {.url = c.url, .body = "ping", .body_len = 4, .timeout_ms = 5000};
    assert_int_equal(hr_http_post(fx->http, &req, on_chain, &c), 0);
    RUN_UNTIL(fx, c.left == 0);
    free(c.url);
    assert_int_equal(c.ok, 200);
    assert_int_equal(c.failed, 0);
    assert_int_equal(fx->srv.requests, 200);
    assert_true(fx->srv.accepted <= 3);
    hr_http_stats_t st;
    hr_http_stats(fx->http, &st);
    assert_int_equal(st.requests, 200);
    assert_true(st.connects <= 3);
}

static void test_body_and_headers_intact(void **state)
{
    fx_t *fx = *state;
    /* 100 kB of every byte value, NULs included; big enough that curl would otherwise send
     * "Expect: 100-continue" and wait. */
    size_t len = 100 * 1000;
    char *body = hr_xmalloc(len);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)(i * 7 + 3);
    const char *headers[] = {"Content-Type: application/json", "X-Herald-Test: abc 123",
                             "webhook-id: msg_1"};
    char *u = url(fx, "/ok");
    hr_http_req_t req = {.url = u,
                         .headers = headers,
                         .nheaders = 3,
                         .body = body,
                         .body_len = len,
                         .timeout_ms = 5000,
                         .response_cap = 64};
    result_t r = {0};
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), 0);
    /* Both are borrowed for the call only. */
    memset(body, 0, len);
    free(u);
    RUN_UNTIL(fx, r.calls > 0);
    assert_int_equal(r.status, 200);

    srv_t *srv = &fx->srv;
    assert_string_equal(srv->last_path, "/ok");
    const char *head = srv->last_head.data;
    assert_true(strncmp(head, "POST /ok HTTP/1.1\r\n", 19) == 0);
    assert_non_null(strstr(head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(head, "\r\nX-Herald-Test: abc 123\r\n"));
    assert_non_null(strstr(head, "\r\nwebhook-id: msg_1\r\n"));
    assert_non_null(strstr(head, "\r\nContent-Length: 100000\r\n"));
    assert_null(strcasestr(head, "\r\nExpect:"));
    assert_int_equal(srv->last_body.len, len);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)(i * 7 + 3);
    assert_memory_equal(srv->last_body.data, body, len);
    free(body);

    /* An empty body is sent as Content-Length: 0. */
    u = url(fx, "/ok");
    hr_http_req_t empty = {.url = u, .timeout_ms = 5000};
    memset(&r, 0, sizeof r);
    assert_int_equal(hr_http_post(fx->http, &empty, on_result, &r), 0);
    free(u);
    RUN_UNTIL(fx, r.calls > 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(srv->last_head.data, "\r\nContent-Length: 0\r\n"));
    assert_int_equal(srv->last_body.len, 0);
}

static void test_invalid_args(void **state)
{
    fx_t *fx = *state;
    result_t r = {0};
    hr_http_req_t req = {.url = NULL, .timeout_ms = 1000};
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), HR_EINVAL);

    char *u = url(fx, "/ok");
    req.url = u;
    req.timeout_ms = 0;
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), HR_EINVAL);

    req.timeout_ms = 1000;
    req.body_len = 3; /* body NULL */
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), HR_EINVAL);
    req.body_len = 0;

    const char *injected[] = {"X-A: 1\r\nX-B: 2"};
    req.headers = injected;
    req.nheaders = 1;
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), HR_EINVAL);
    const char *no_colon[] = {"X-A 1"};
    req.headers = no_colon;
    assert_int_equal(hr_http_post(fx->http, &req, on_result, &r), HR_EINVAL);
    free(u);

    assert_int_equal(hr_http_in_flight(fx->http), 0);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0);
}

#define NCANCEL 10

static void test_close_cancels_in_flight(void **state)
{
    fx_t *fx = *state;
    hr_http_t *h = fx->http;
    result_t rs[NCANCEL];
    memset(rs, 0, sizeof rs);
    char *u = url(fx, "/slow");
    for (int i = 0; i < NCANCEL; i++) {
        hr_http_req_t req = {.url = u, .body = "x", .body_len = 1, .timeout_ms = 60000};
        rs[i].repost = h;
        assert_int_equal(hr_http_post(h, &req, on_result, &rs[i]), 0);
    }
    free(u);
    /* Wait until every request has reached the server, so connections are really open. */
    RUN_UNTIL(fx, fx->srv.requests == NCANCEL);
    assert_int_equal(hr_http_in_flight(h), NCANCEL);

    fx->http = NULL;
    hr_http_close(h, on_http_done, fx);
    for (int i = 0; i < NCANCEL; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].error, HR_ECANCELED);
        assert_int_equal(rs[i].status, 0);
        assert_int_equal(rs[i].repost_rc, HR_ECANCELED);
    }
    assert_int_equal(fx->http_done, 0);
    RUN_UNTIL(fx, fx->http_done > 0);
    assert_int_equal(fx->http_done, 1);
    for (int i = 0; i < NCANCEL; i++)
        assert_int_equal(rs[i].calls, 1);
    /* The server saw the client's connections go away. */
    RUN_UNTIL(fx, fx->srv.conns == NULL);
}

static void test_close_from_callback(void **state)
{
    fx_t *fx = *state;
    hr_http_t *h = fx->http;
    result_t slow = {0}, ok = {0};
    char *us = url(fx, "/slow"), *uo = url(fx, "/ok");
    hr_http_req_t rq_slow = {.url = us, .timeout_ms = 60000};
    hr_http_req_t rq_ok = {.url = uo, .timeout_ms = 60000};
    assert_int_equal(hr_http_post(h, &rq_slow, on_result, &slow), 0);
    ok.close = h;
    ok.fx = fx;
    assert_int_equal(hr_http_post(h, &rq_ok, on_result, &ok), 0);
    free(us);
    free(uo);
    RUN_UNTIL(fx, ok.calls > 0);
    assert_int_equal(ok.status, 200);
    assert_int_equal(slow.calls, 1);
    assert_int_equal(slow.error, HR_ECANCELED);
    RUN_UNTIL(fx, fx->http_done > 0);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(slow.calls, 1);
}

static void test_close_idle(void **state)
{
    fx_t *fx = *state;
    hr_http_t *h = fx->http;
    fx->http = NULL;
    hr_http_close(h, NULL, NULL);
    /* done may be NULL; the loop still ends with every handle closed (checked in teardown). */
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the server writes to connections the client cut */
    /* Talk to 127.0.0.1 directly whatever the environment says. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ok_body_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_without_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_scheme, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_body_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_and_headers_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_idle, setup, teardown),
    };
    if (getenv("HR_TEST_FILTER")) cmocka_set_test_filter(getenv("HR_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
