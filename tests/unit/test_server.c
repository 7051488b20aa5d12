/* test_server.c: hr_server on a real loop, driven by real HTTP clients.
 *
 * The server runs on the test's libuv loop in the main thread. Each test's client part runs in
 * a second thread (libcurl's easy interface, or a raw socket for malformed and slow requests)
 * and reports back through a uv_async, so the loop turns exactly while the client works. Every
 * test closes the server and checks that the loop is left without a handle. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "api/server.h"
#include "core/buf.h"
#include "core/err.h"

#define WATCHDOG_MS 60000

/* cmocka's assertions longjmp and must stay in the main thread; the client thread checks with
 * these, which print and abort. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: client check failed: %s\n", __FILE__, __LINE__, #c);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: client check failed: %s == %s (%lld != %lld)\n", __FILE__,     \
                    __LINE__, #a, #b, a_, b_);                                                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_NE(a, b) CHECK((a) != (b))
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || strcmp(a_, b_) != 0) {                                                          \
            fprintf(stderr, "%s:%d: client check failed: \"%s\" == \"%s\"\n", __FILE__, __LINE__,  \
                    a_ ? a_ : "(null)", b_);                                                       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- fixture: a loop, a server with test routes, a client thread ---------------------- */

typedef struct fx fx_t;
typedef void (*client_fn)(fx_t *fx);

struct fx {
    uv_loop_t loop;
    uv_async_t client_done;
    uv_timer_t watchdog;
    hr_server_t *srv;
    int port;
    char base[64];
    pthread_t thread;
    client_fn client;
    int closed;         /* hr_server_close's done ran */
    int close_calls;    /* close callbacks of orphaned requests */
    int late_sends;     /* async answers sent after the client left */
    int pending_closes; /* requests held until the server closes */
    hr_request_t *held; /* a request that is never answered before close */
    /* WebSocket endpoint /ws */
    int ws_opens, ws_closes, ws_full;
    char ws_token[64];    /* x-token of the last upgrade, seen at open */
    char ws_late_hdr[16]; /* "null" when hr_ws_header answered NULL after open */
    int held_fd;          /* a WebSocket client left open until the server closes */
};

/* Session counts of the last fixture, kept past fx_stop (which frees it). */
static int fx_ws_opens_seen, fx_ws_closes_seen;

/* An asynchronous answer: a timer that sends the response later. */
typedef struct later {
    uv_timer_t timer;
    hr_request_t *req;
    fx_t *fx;
    int closed; /* the connection closed first */
} later_t;

static void on_hello(hr_request_t *req, void *ud)
{
    char body[512];
    const char *name = hr_request_query_param(req, "name");
    int n = snprintf(body, sizeof body, "hello %s from %s query=%s", name ? name : "nobody",
                     hr_request_peer(req), hr_request_query(req));
    hr_response_header(req, "X-Test", "yes");
    hr_response_send(req, 200, "text/plain", body, (size_t)n);
}

/* Echoes the body; reflects a few request headers (looked up in odd cases) as response headers. */
static void on_echo(hr_request_t *req, void *ud)
{
    size_t len;
    const char *body = hr_request_body(req, &len);
    const char *ct = hr_request_header(req, "CONTENT-type");
    const char *custom = hr_request_header(req, "x-CUSTOM-header");
    const char *empty = hr_request_header(req, "X-Empty");
    const char *absent = hr_request_header(req, "X-Absent");
    hr_response_header(req, "X-Seen-Custom", custom ? custom : "(none)");
    hr_response_header(req, "X-Seen-Empty", empty ? (*empty ? empty : "(empty)") : "(absent)");
    hr_response_header(req, "X-Seen-Absent", absent ? absent : "(absent)");
    hr_response_header(req, "X-Method", hr_request_method(req));
    assert_int_equal(hr_response_header(req, "Bad\r\nName", "x"), HR_EINVAL);
    assert_int_equal(hr_response_header(req, "X-Bad", "a\r\nb"), HR_EINVAL);
    hr_response_send(req, 201, ct ? ct : "application/octet-stream", body, len);
}

static void on_later_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later_t *l = t->data;
    if (l->closed)
        l->fx->late_sends++;
    else
        assert_true(hr_request_is_open(l->req));
    hr_response_send(l->req, 200, "text/plain", "later", 5);
    uv_close((uv_handle_t *)t, on_later_timer_closed);
}

static void on_later_closed(hr_request_t *req, void *ud)
{
    later_t *l = ud;
    l->closed = 1;
    l->fx->close_calls++;
    assert_false(hr_request_is_open(req));
    assert_null(hr_request_header(req, "host"));
    assert_string_equal(hr_request_path(req), "/slow");
}

static void answer_later(hr_request_t *req, fx_t *fx, uint64_t ms)
{
    later_t *l = hr_xcalloc(1, sizeof *l);
    l->req = req;
    l->fx = fx;
    uv_timer_init(&fx->loop, &l->timer);
    l->timer.data = l;
    hr_request_on_close(req, on_later_closed, l);
    uv_timer_start(&l->timer, on_later, ms, 0);
}

static void on_async(hr_request_t *req, void *ud)
{
    answer_later(req, ud, 30);
}

static void on_slow(hr_request_t *req, void *ud)
{
    answer_later(req, ud, 1500);
}

/* Never answered while the server runs: the close must orphan it. */
static void on_held_closed(hr_request_t *req, void *ud)
{
    fx_t *fx = ud;
    fx->pending_closes++;
    fx->held = NULL;
    hr_response_send(req, 200, NULL, NULL, 0); /* only releases it */
}

static void on_hold(hr_request_t *req, void *ud)
{
    fx_t *fx = ud;
    fx->held = req;
    hr_request_on_close(req, on_held_closed, fx);
}

static void on_big(hr_request_t *req, void *ud)
{
    size_t n = 3 * 1024 * 1024;
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 26);
    hr_response_send(req, 200, "application/octet-stream", p, n);
    free(p);
}

static void on_client_done(uv_async_t *a)
{
    uv_stop(a->loop);
}

static void on_watchdog(uv_timer_t *t)
{
    fail_msg("watchdog: test did not finish in %d ms", WATCHDOG_MS);
}

static void *client_main(void *arg)
{
    fx_t *fx = arg;
    fx->client(fx);
    uv_async_send(&fx->client_done);
    return NULL;
}

/* /ws: "echo:" + each text message, with a few commands. */
static void ws_open(hr_ws_t *ws, void *ud)
{
    fx_t *fx = ud;
    fx->ws_opens++;
    const char *t = hr_ws_header(ws, "X-Token");
    if (t) snprintf(fx->ws_token, sizeof fx->ws_token, "%s", t);
    assert_string_equal(hr_ws_peer(ws), "127.0.0.1");
    hr_ws_set_data(ws, fx);
    hr_ws_send(ws, hr_ws_subprotocol(ws), strlen(hr_ws_subprotocol(ws)));
}

static void ws_message(hr_ws_t *ws, const char *data, size_t len, int binary, void *ud)
{
    fx_t *fx = ud;
    assert_ptr_equal(hr_ws_data(ws), fx);
    assert_int_equal(data[len], '\0');
    snprintf(fx->ws_late_hdr, sizeof fx->ws_late_hdr, "%s",
             hr_ws_header(ws, "X-Token") ? "set" : "null");
    if (binary) {
        hr_ws_close(ws, 4400, "binary");
        return;
    }
    if (!strcmp(data, "close")) {
        hr_ws_send(ws, "last", 4);
        hr_ws_close(ws, 4001, "bye");
        assert_false(hr_ws_is_open(ws));
        assert_int_equal(hr_ws_send(ws, "x", 1), HR_ECANCELED);
        hr_ws_close(ws, 4002, "again"); /* idempotent */
        return;
    }
    if (!strcmp(data, "long-reason")) {
        /* 130 bytes of two-byte characters: cut to 122 bytes, not inside a character. */
        char r[131];
        for (int i = 0; i < 130; i += 2) {
            r[i] = (char)0xC3;
            r[i + 1] = (char)0xA9;
        }
        r[130] = '\0';
        hr_ws_close(ws, 4003, r);
        return;
    }
    if (!strcmp(data, "timer")) {
        hr_ws_timer(ws, 5000);
        hr_ws_timer(ws, 50); /* replaces the first */
        return;
    }
    if (!strcmp(data, "flood")) {
        /* 1 MiB messages until the queue is full: the client does not read meanwhile. */
        size_t n = 1024 * 1024;
        char *big = malloc(n);
        memset(big, 'f', n);
        int rc = 0;
        for (int i = 0; i < 200 && rc == 0; i++)
            rc = hr_ws_send(ws, big, n);
        free(big);
        if (rc == HR_E2BIG) fx->ws_full++;
        return;
    }
    hr_ws_part_t parts[2] = {{"echo:", 5}, {data, len}};
    assert_int_equal(hr_ws_sendv(ws, parts, 2), 0);
}

static void ws_timer(hr_ws_t *ws, void *ud)
{
    hr_ws_send(ws, "tick", 4);
}

static void ws_closed(hr_ws_t *ws, void *ud)
{
    fx_t *fx = ud;
    fx->ws_closes++;
    assert_false(hr_ws_is_open(ws));
}

static const hr_ws_handlers_t ws_handlers = {ws_open, ws_message, ws_timer, ws_closed};

static fx_t *fx_start(const hr_server_opts_t *opts)
{
    fx_t *fx = hr_xcalloc(1, sizeof *fx);
    hr_err_t err = {0};
    hr_server_opts_t o = {.listen = "127.0.0.1:0"};
    if (opts) o = *opts;
    uv_loop_init(&fx->loop);
    uv_async_init(&fx->loop, &fx->client_done, on_client_done);
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_timer_start(&fx->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&fx->watchdog);
    int rc = hr_server_init(&fx->loop, &o, &fx->srv, &err);
    if (rc) fail_msg("hr_server_init: %s", err.msg);
    fx->port = hr_server_port(fx->srv);
    assert_true(fx->port > 0);
    snprintf(fx->base, sizeof fx->base, "http://127.0.0.1:%d", fx->port);
    assert_int_equal(hr_server_route(fx->srv, "GET", "/hello", on_hello, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "POST", "/echo", on_echo, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "PUT", "/echo", on_echo, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "GET", "/async", on_async, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "GET", "/slow", on_slow, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "GET", "/hold", on_hold, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "GET", "/big", on_big, fx), 0);
    assert_int_equal(hr_server_route(fx->srv, "GET", "/hello", on_hello, fx), HR_EEXIST);
    assert_int_equal(hr_server_route(fx->srv, "GET", "nope", on_hello, fx), HR_EINVAL);
    const char *protos[] = {"echo-a", "echo-b", NULL};
    assert_int_equal(hr_server_websocket(fx->srv, "/ws", protos, &ws_handlers, fx), 0);
    assert_int_equal(hr_server_websocket(fx->srv, "/ws", protos, &ws_handlers, fx), HR_EEXIST);
    const char *other[] = {"echo-b", "other", NULL};
    assert_int_equal(hr_server_websocket(fx->srv, "/ws2", other, &ws_handlers, fx), 0);
    const char *bad[] = {"http", NULL};
    assert_int_equal(hr_server_websocket(fx->srv, "/ws3", bad, &ws_handlers, fx), HR_EINVAL);
    const char *none[] = {NULL};
    assert_int_equal(hr_server_websocket(fx->srv, "/ws3", none, &ws_handlers, fx), HR_EINVAL);
    const char *many[] = {"p1", "p2", "p3", "p4", "p5", "p6", "p7", NULL};
    assert_int_equal(hr_server_websocket(fx->srv, "/ws3", many, &ws_handlers, fx), HR_E2BIG);
    return fx;
}

/* Runs fn in the client thread while the loop turns; returns when fn has returned. */
static void fx_client(fx_t *fx, client_fn fn)
{
    fx->client = fn;
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(fx->thread, NULL);
}

static void on_closed(void *ud)
{
    fx_t *fx = ud;
    fx->closed = 1;
}

/* Closes the server, runs the loop out, and checks that nothing is left on it. */
static void fx_stop(fx_t *fx)
{
    hr_server_close(fx->srv, on_closed, fx);
    assert_int_equal(fx->closed, 0); /* never from inside the call */
    uv_close((uv_handle_t *)&fx->client_done, NULL);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->closed, 1);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    fx_ws_opens_seen = fx->ws_opens;
    fx_ws_closes_seen = fx->ws_closes;
    free(fx);
}

/* ---- a small curl helper ------------------------------------------------------------------ */

typedef struct resp {
    long status;
    hr_buf_t body;
    hr_buf_t headers;
    CURLcode rc;
    long connects;
} resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    hr_buf_append(ud, p, size * n);
    return size * n;
}

static void resp_free(resp_t *r)
{
    hr_buf_free(&r->body);
    hr_buf_free(&r->headers);
}

/* One request on easy handle c (reused for keep-alive when the caller passes the same one). */
static void request(CURL *c, const char *method, const char *url, const char *body, size_t len,
                    struct curl_slist *hdrs, long timeout_ms, resp_t *r)
{
    memset(r, 0, sizeof *r);
    hr_buf_init(&r->body, 0);
    hr_buf_init(&r->headers, 0);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    if (method && !strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 20000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
}

static void simple(fx_t *fx, const char *method, const char *path, const char *body, size_t len,
                   struct curl_slist *hdrs, resp_t *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", fx->base, path);
    CURL *c = curl_easy_init();
    request(c, method, url, body, len, hdrs, 0, r);
    curl_easy_cleanup(c);
}

static int has_header(const resp_t *r, const char *line)
{
    return r->headers.data && strcasestr(r->headers.data, line) != NULL;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void raw_exchange(fx_t *fx, const char *s, size_t len, hr_buf_t *out);
static int raw_connect(fx_t *fx);
static void assert_still_serving(fx_t *fx);

static void client_routing(fx_t *fx)
{
    resp_t r;
    simple(fx, NULL, "/hello?name=ann%20b&x=1", NULL, 0, NULL, &r);
    CHECK_EQ(r.rc, CURLE_OK);
    CHECK_EQ(r.status, 200);
    CHECK_STR(r.body.data, "hello ann b from 127.0.0.1 query=name=ann b&x=1");
    CHECK(has_header(&r, "x-test: yes\r\n"));
    CHECK(has_header(&r, "content-type: text/plain\r\n"));
    CHECK(has_header(&r, "server: herald\r\n"));
    resp_free(&r);
    /* A decoded value may hold '&' and '=': parameters are kept one by one. */
    simple(fx, NULL, "/hello?x=1&name=a%26b%3Dc+d", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 200);
    CHECK_STR(r.body.data, "hello a&b=c d from 127.0.0.1 query=x=1&name=a&b=c d");
    resp_free(&r);

    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "X-Custom-Header: value 1");
    h = curl_slist_append(h, "X-Empty;");
    simple(fx, NULL, "/echo", "{\"a\":1}", 7, h, &r);
    CHECK_EQ(r.status, 201);
    CHECK_STR(r.body.data, "{\"a\":1}");
    CHECK(has_header(&r, "content-type: application/json\r\n"));
    CHECK(has_header(&r, "x-seen-custom: value 1\r\n"));
    CHECK(has_header(&r, "x-seen-empty: (empty)\r\n"));
    CHECK(has_header(&r, "x-seen-absent: (absent)\r\n"));
    CHECK(has_header(&r, "x-method: POST\r\n"));
    resp_free(&r);
    simple(fx, "PUT", "/echo", "put body", 8, h, &r);
    CHECK_EQ(r.status, 201);
    CHECK_STR(r.body.data, "put body");
    CHECK(has_header(&r, "x-method: PUT\r\n"));
    resp_free(&r);
    curl_slist_free_all(h);

    /* An empty POST body. */
    simple(fx, NULL, "/echo", "", 0, NULL, &r);
    CHECK_EQ(r.status, 201);
    CHECK_EQ(r.body.len, 0);
    resp_free(&r);

    simple(fx, NULL, "/nowhere", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 404);
    resp_free(&r);
    simple(fx, NULL, "/nowhere", "abc", 3, NULL, &r);
    CHECK_EQ(r.status, 404);
    resp_free(&r);

    simple(fx, "DELETE", "/echo", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 405);
    CHECK(has_header(&r, "allow: POST, PUT\r\n"));
    resp_free(&r);
    simple(fx, NULL, "/hello", "x", 1, NULL, &r); /* POST to a GET route */
    CHECK_EQ(r.status, 405);
    CHECK(has_header(&r, "allow: GET\r\n"));
    resp_free(&r);

    /* A HEAD request gets headers only (here a 404's). */
    simple(fx, "HEAD", "/nowhere", NULL, 0, NULL, &r);
    CHECK_EQ(r.rc, CURLE_OK);
    CHECK_EQ(r.status, 404);
    CHECK_EQ(r.body.len, 0);
    resp_free(&r);
}

static void test_routing(void **state)
{
    fx_t *fx = fx_start(NULL);
    fx_client(fx, client_routing);
    hr_server_stats_t st;
    hr_server_stats(fx->srv, &st);
    assert_true(st.requests >= 9);
    assert_int_equal(st.requests, st.responses);
    assert_int_equal(st.in_flight, 0);
    fx_stop(fx);
}

static void client_body_limits(fx_t *fx)
{
    resp_t r;
    size_t n = 3 * 1024 * 1024;
    char *big = malloc(n);
    memset(big, 'x', n);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:"); /* send the body at once */

    /* Just under the cap (64 KiB in this fixture) passes, just over gets 413 and the connection
     * stays usable (lws drains the modest body). */
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/echo", fx->base);
    request(c, NULL, url, big, 64 * 1024, h, 0, &r);
    CHECK_EQ(r.status, 201);
    CHECK_EQ(r.body.len, 64 * 1024);
    resp_free(&r);
    request(c, NULL, url, big, 64 * 1024 + 1, h, 0, &r);
    CHECK_EQ(r.status, 413);
    resp_free(&r);
    request(c, NULL, url, "ok", 2, h, 0, &r);
    CHECK_EQ(r.status, 201);
    resp_free(&r);
    curl_easy_cleanup(c);
    /* (curl drops a connection whose upload was answered early.) A raw client that waits for
     * the answer: the server reads and drops the rest of the body, answers 413, and serves
     * the next request on the same connection. */
    hr_buf_t raw, out;
    hr_buf_init(&raw, 0);
    hr_buf_printf(&raw, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                  64 * 1024 + 1);
    hr_buf_append(&raw, big, 64 * 1024 + 1);
    int fd = raw_connect(fx);
    CHECK_EQ(write(fd, raw.data, raw.len), (ssize_t)raw.len);
    char buf[1024];
    ssize_t got = read(fd, buf, sizeof buf - 1);
    CHECK(got > 12);
    buf[got] = '\0';
    CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
    CHECK(strcasestr(buf, "connection: close") == NULL);
    const char *next = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ(write(fd, next, strlen(next)), (ssize_t)strlen(next));
    got = read(fd, buf, sizeof buf - 1);
    CHECK(got > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0);
    close(fd);
    /* A request sent along before the answer (pipelining) is not served: the answer to the
     * first one says Connection: close. */
    hr_buf_puts(&raw, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_exchange(fx, raw.data, raw.len, &out);
    CHECK(strncmp(out.data, "HTTP/1.1 413", 12) == 0);
    CHECK(strcasestr(out.data, "connection: close") != NULL);
    CHECK(strstr(out.data, "HTTP/1.1 200") == NULL);
    hr_buf_free(&raw);
    hr_buf_free(&out);

    /* Far over the cap: 413 with Connection: close (with and without Expect: 100-continue). */
    simple(fx, NULL, "/echo", big, n, NULL, &r);
    CHECK_EQ(r.status, 413);
    CHECK(has_header(&r, "connection: close\r\n"));
    resp_free(&r);
    simple(fx, NULL, "/echo", big, n, h, &r);
    CHECK(r.status == 413 || r.rc == CURLE_SEND_ERROR || r.rc == CURLE_RECV_ERROR);
    resp_free(&r);

    /* Chunked request bodies are refused. */
    struct curl_slist *hc = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    simple(fx, NULL, "/echo", "abc", 3, hc, &r);
    CHECK_EQ(r.status, 411);
    resp_free(&r);
    curl_slist_free_all(hc);

    /* A large response goes out whole. */
    simple(fx, NULL, "/big", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body.len, 3 * 1024 * 1024);
    CHECK_EQ(r.body.data[26 * 1000], 'a');
    resp_free(&r);

    curl_slist_free_all(h);
    free(big);
}

/* ---- WebSocket ------------------------------------------------------------------------------ */

/* Sends an upgrade request for path offering protocols (NULL: no header); reads the answer's
 * head into head (NUL-terminated) and returns its status; fd stays open. */
static int ws_handshake(fx_t *fx, int fd, const char *path, const char *protocols,
                        const char *extra, char *head, size_t cap)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "%s%s%s%s\r\n",
                     path, protocols ? "Sec-WebSocket-Protocol: " : "", protocols ? protocols : "",
                     protocols ? "\r\n" : "", extra ? extra : "");
    CHECK_EQ(write(fd, req, (size_t)n), n);
    size_t len = 0;
    /* Byte by byte up to the end of the head: nothing after it is consumed. */
    while (len + 1 < cap) {
        ssize_t got = read(fd, head + len, 1);
        if (got <= 0) break;
        len++;
        if (len >= 4 && !memcmp(head + len - 4, "\r\n\r\n", 4)) break;
    }
    head[len] = '\0';
    CHECK(len > 12);
    return atoi(head + 9);
}

/* Reads the body of a non-101 answer (Content-Length bytes) so that the connection can be
 * used again. */
static void read_body(int fd, const char *head, char *body, size_t cap)
{
    const char *cl = strcasestr(head, "content-length:");
    CHECK(cl);
    size_t n = (size_t)atoi(cl + 15), got = 0;
    CHECK(n < cap);
    while (got < n) {
        ssize_t r = read(fd, body + got, n - got);
        CHECK(r > 0);
        got += (size_t)r;
    }
    body[got] = '\0';
}

static void read_all(int fd, void *p, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        CHECK(r > 0);
        got += (size_t)r;
    }
}

/* One masked client frame. */
static void ws_frame(int fd, int opcode, int fin, const void *data, size_t len)
{
    unsigned char h[14];
    size_t hl = 0;
    const unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
    h[hl++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *buf = malloc(hl + len);
    memcpy(buf, h, hl);
    for (size_t i = 0; i < len; i++)
        buf[hl + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    CHECK_EQ(write(fd, buf, hl + len), (ssize_t)(hl + len));
    free(buf);
}

static void ws_text(int fd, const char *s)
{
    ws_frame(fd, 1, 1, s, strlen(s));
}

/* Reads one server frame into out (NUL-terminated); returns its opcode, -1 at end of stream. */
static int ws_read(int fd, hr_buf_t *out)
{
    unsigned char h[2];
    hr_buf_reset(out);
    ssize_t r = read(fd, h, 1);
    if (r <= 0) return -1;
    read_all(fd, h + 1, 1);
    CHECK((h[1] & 0x80) == 0); /* servers do not mask */
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        unsigned char e[2];
        read_all(fd, e, 2);
        len = ((uint64_t)e[0] << 8) | e[1];
    } else if (len == 127) {
        unsigned char e[8];
        read_all(fd, e, 8);
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | e[i];
    }
    char *p = malloc(len + 1);
    read_all(fd, p, len);
    hr_buf_append(out, p, len);
    free(p);
    return h[0] & 0x0f;
}

/* Reads a text frame and checks it. */
static void ws_expect(int fd, const char *text)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    CHECK_EQ(ws_read(fd, &b), 1);
    CHECK_STR(b.data ? b.data : "", text);
    hr_buf_free(&b);
}

/* Reads a close frame: its code, and its reason into reason. */
static int ws_expect_close(int fd, char *reason, size_t cap)
{
    hr_buf_t b;
    hr_buf_init(&b, 0);
    CHECK_EQ(ws_read(fd, &b), 8);
    CHECK(b.len >= 2);
    int code = ((unsigned char)b.data[0] << 8) | (unsigned char)b.data[1];
    snprintf(reason, cap, "%.*s", (int)(b.len - 2), b.data + 2);
    hr_buf_free(&b);
    return code;
}

static void client_ws(fx_t *fx)
{
    char head[2048], reason[200];
    int fd = raw_connect(fx);
    /* The first name the server knows wins, in the client's order. */
    CHECK_EQ(
        ws_handshake(fx, fd, "/ws", "nope, echo-b,echo-a", "X-Token: t0k\r\n", head, sizeof head),
        101);
    CHECK(strcasestr(head, "sec-websocket-protocol: echo-b\r\n"));
    ws_expect(fd, "echo-b");
    ws_text(fd, "hi");
    ws_expect(fd, "echo:hi");
    /* A message in three frames, the middle one empty, with a ping between them. */
    ws_frame(fd, 1, 0, "frag", 4);
    ws_frame(fd, 9, 1, "p", 1);
    ws_frame(fd, 0, 0, "", 0);
    ws_frame(fd, 0, 1, "mented", 6);
    hr_buf_t b;
    hr_buf_init(&b, 0);
    CHECK_EQ(ws_read(fd, &b), 10); /* the pong */
    CHECK_EQ(b.len, 1);
    ws_expect(fd, "echo:fragmented");
    /* A message larger than lws' receive buffer arrives whole. */
    size_t n = 200 * 1000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    ws_text(fd, big);
    CHECK_EQ(ws_read(fd, &b), 1);
    CHECK_EQ(b.len, n + 5);
    CHECK(!memcmp(b.data, "echo:", 5) && !memcmp(b.data + 5, big, n));
    free(big);
    ws_text(fd, "timer");
    ws_expect(fd, "tick");
    /* hr_ws_close: what is queued goes first, then the close frame; the client answers it. */
    ws_text(fd, "close");
    ws_expect(fd, "last");
    CHECK_EQ(ws_expect_close(fd, reason, sizeof reason), 4001);
    CHECK_STR(reason, "bye");
    ws_frame(fd, 8, 1, "\x0f\xa1", 2);
    CHECK_EQ(ws_read(fd, &b), -1);
    close(fd);

    /* Binary messages reach the handler as such. */
    fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fd, "/ws", "echo-a", NULL, head, sizeof head), 101);
    ws_expect(fd, "echo-a");
    ws_frame(fd, 2, 1, "\x01\x02", 2);
    CHECK_EQ(ws_expect_close(fd, reason, sizeof reason), 4400);
    CHECK_STR(reason, "binary");
    close(fd);

    /* A long reason is cut at a character boundary. */
    fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fd, "/ws", "echo-a", NULL, head, sizeof head), 101);
    ws_expect(fd, "echo-a");
    ws_text(fd, "long-reason");
    CHECK_EQ(ws_expect_close(fd, reason, sizeof reason), 4003);
    CHECK_EQ(strlen(reason), 122);
    close(fd);

    /* A message over max_body (256 KiB here), in two frames: closed with 1009. */
    fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fd, "/ws", "echo-a", NULL, head, sizeof head), 101);
    ws_expect(fd, "echo-a");
    big = calloc(1, 300 * 1024 + 1);
    memset(big, 'x', 300 * 1024);
    ws_frame(fd, 1, 0, big, 200 * 1024);
    ws_frame(fd, 0, 1, big, 100 * 1024);
    free(big);
    CHECK_EQ(ws_expect_close(fd, reason, sizeof reason), 1009);
    close(fd);

    /* A second endpoint shares a name with the first. */
    fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fd, "/ws2", "other", NULL, head, sizeof head), 101);
    ws_expect(fd, "other");
    close(fd);
    hr_buf_free(&b);
}

static void test_ws(void **state)
{
    hr_server_opts_t o = {.listen = "127.0.0.1:0", .max_body = 256 * 1024};
    fx_t *fx = fx_start(&o);
    fx_client(fx, client_ws);
    assert_string_equal(fx->ws_token, "t0k");
    assert_string_equal(fx->ws_late_hdr, "null");
    fx_stop(fx);
    assert_int_equal(fx_ws_opens_seen, 5);
    assert_int_equal(fx_ws_closes_seen, 5);
}

/* Each refusal is a plain HTTP answer that closes the connection. */
static void refused(fx_t *fx, const char *path, const char *protocols, int status, char *body,
                    size_t cap)
{
    char head[2048];
    int fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fd, path, protocols, NULL, head, sizeof head), status);
    CHECK(strcasestr(head, "connection: close\r\n"));
    read_body(fd, head, body, cap);
    char c;
    CHECK_EQ(read(fd, &c, 1), 0);
    close(fd);
}

static void client_ws_refused(fx_t *fx)
{
    char body[512];
    refused(fx, "/hello", "echo-a", 404, body, sizeof body);
    CHECK(strstr(body, "no WebSocket endpoint"));
    refused(fx, "/ws", NULL, 400, body, sizeof body);
    CHECK_STR(body, "{\"error\":\"unsupported WebSocket subprotocol (expected echo-a or "
                    "echo-b)\"}\n");
    refused(fx, "/ws", "nope", 400, body, sizeof body);
    refused(fx, "/ws", "http, echo-a", 400, body, sizeof body); /* lws would pick "http" */
    refused(fx, "/ws", "other", 400, body, sizeof body);        /* another endpoint's */
    char longlist[300];
    memset(longlist, 'a', 200);
    strcpy(longlist + 200, ", echo-a");
    refused(fx, "/ws", longlist, 400, body, sizeof body);
    CHECK(strstr(body, "too long"));
    assert_still_serving(fx);
}

static void test_ws_refused(void **state)
{
    fx_t *fx = fx_start(NULL);
    fx_client(fx, client_ws_refused);
    hr_server_stats_t st;
    hr_server_stats(fx->srv, &st);
    assert_int_equal(st.ws_refused, 6);
    assert_int_equal(st.ws_accepted, 0);
    assert_int_equal(fx->ws_opens, 0);
    fx_stop(fx);
}

static void client_ws_idle_and_slow(fx_t *fx)
{
    char head[2048], reason[200];
    /* Idle past the keep-alive timeout (1 s here): still open. */
    int fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fd, "/ws", "echo-a", NULL, head, sizeof head), 101);
    ws_expect(fd, "echo-a");
    usleep(2500 * 1000);
    ws_text(fd, "still");
    ws_expect(fd, "echo:still");

    /* A client that does not read: the queue fills up and the session closes with 1008. */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    ws_text(fd, "flood");
    /* Then it reads: some of the flood, then the close (or the end of the stream). */
    hr_buf_t b;
    hr_buf_init(&b, 0);
    int op, texts = 0;
    while ((op = ws_read(fd, &b)) == 1)
        texts++;
    CHECK(texts < 200);
    if (op == 8) {
        CHECK(b.len >= 2);
        CHECK_EQ(((unsigned char)b.data[0] << 8) | (unsigned char)b.data[1], 1008);
    }
    hr_buf_free(&b);
    close(fd);
    (void)reason;
}

static void test_ws_idle_and_slow(void **state)
{
    hr_server_opts_t o = {.listen = "127.0.0.1:0", .keepalive_timeout_ms = 1000};
    fx_t *fx = fx_start(&o);
    fx_client(fx, client_ws_idle_and_slow);
    hr_server_stats_t st;
    hr_server_stats(fx->srv, &st);
    assert_int_equal(st.ws_slow, 1);
    assert_int_equal(fx->ws_full, 1);
    fx_stop(fx);
}

static void client_ws_hold(fx_t *fx)
{
    char head[2048];
    fx->held_fd = raw_connect(fx);
    CHECK_EQ(ws_handshake(fx, fx->held_fd, "/ws", "echo-a", NULL, head, sizeof head), 101);
    ws_expect(fx->held_fd, "echo-a");
}

/* Closing the server ends open sessions with 1001 (their closed callback runs), waiting at
 * most a second for clients that do not answer the close frame (this one does not read). */
static void test_ws_server_close(void **state)
{
    fx_t *fx = fx_start(NULL);
    fx_client(fx, client_ws_hold);
    int fd = fx->held_fd;
    assert_int_equal(fx->ws_opens, 1);
    fx_stop(fx);
    assert_int_equal(fx_ws_closes_seen, 1);
    unsigned char f[64];
    ssize_t n = read(fd, f, sizeof f);
    assert_true(n >= 4);
    assert_int_equal(f[0], 0x88);
    assert_int_equal((f[2] << 8) | f[3], 1001);
    assert_true(read(fd, f, sizeof f) <= 0);
    close(fd);
}

static void test_body_limits(void **state)
{
    hr_server_opts_t o = {.listen = "127.0.0.1:0", .max_body = 64 * 1024};
    fx_t *fx = fx_start(&o);
    fx_client(fx, client_body_limits);
    fx_stop(fx);
}

static void client_async(fx_t *fx)
{
    resp_t r;
    simple(fx, NULL, "/async", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 200);
    CHECK_STR(r.body.data, "later");
    resp_free(&r);

    /* The client gives up before the answer (1.5 s): the handler learns it within a second,
     * its late send is harmless, nothing spins meanwhile, and the server goes on serving. */
    char url[128];
    snprintf(url, sizeof url, "%s/slow", fx->base);
    CURL *c = curl_easy_init();
    request(c, NULL, url, NULL, 0, NULL, 100, &r);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    CHECK_EQ(r.rc, CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    curl_easy_cleanup(c);
    usleep(2000 * 1000);
    getrusage(RUSAGE_SELF, &ru1);
    long cpu_ms =
        (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) *
            1000L +
        (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
         ru0.ru_stime.tv_usec) /
            1000L;
    CHECK(cpu_ms < 300); /* the loop must not spin on the dead connection meanwhile */
    simple(fx, NULL, "/async", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 200);
    resp_free(&r);
}

static void test_async(void **state)
{
    fx_t *fx = fx_start(NULL);
    fx_client(fx, client_async);
    assert_int_equal(fx->close_calls, 1);
    assert_int_equal(fx->late_sends, 1);
    hr_server_stats_t st;
    hr_server_stats(fx->srv, &st);
    assert_int_equal(st.orphaned, 1);
    assert_int_equal(st.in_flight, 0);
    fx_stop(fx);
}

#define KEEPALIVE_N 500

static void client_keepalive(fx_t *fx)
{
    char url[128];
    CURL *c = curl_easy_init();
    long connects = 0;
    for (int i = 0; i < KEEPALIVE_N; i++) {
        resp_t r;
        char body[32];
        int n = snprintf(body, sizeof body, "request %d", i);
        /* POST /echo, GET /hello, and every 25th an asynchronous GET /async. */
        const char *path = i % 2 ? "echo" : i % 25 ? "hello" : "async";
        snprintf(url, sizeof url, "%s/%s", fx->base, path);
        request(c, NULL, url, i % 2 ? body : NULL, i % 2 ? (size_t)n : 0, NULL, 0, &r);
        CHECK_EQ(r.status, i % 2 ? 201 : 200);
        if (i % 2) CHECK_STR(r.body.data, body);
        connects += r.connects;
        resp_free(&r);
    }
    CHECK_EQ(connects, 1);
    curl_easy_cleanup(c);
}

static void test_keepalive(void **state)
{
    fx_t *fx = fx_start(NULL);
    fx_client(fx, client_keepalive);
    hr_server_stats_t st;
    hr_server_stats(fx->srv, &st);
    assert_int_equal(st.requests, KEEPALIVE_N);
    fx_stop(fx);
}

/* ---- raw sockets: malformed, oversized and slow requests ------------------------------------ */

static int raw_connect(fx_t *fx)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends s and reads until the server closes or 10 s pass; returns what was read. */
static void raw_exchange(fx_t *fx, const char *s, size_t len, hr_buf_t *out)
{
    int fd = raw_connect(fx);
    hr_buf_init(out, 0);
    hr_buf_puts(out, "");
    if (len) (void)!write(fd, s, len);
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        hr_buf_append(out, buf, (size_t)n);
    }
    close(fd);
}

static void assert_still_serving(fx_t *fx)
{
    resp_t r;
    simple(fx, NULL, "/hello", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 200);
    resp_free(&r);
}

static void client_malformed(fx_t *fx)
{
    static const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\n\r\nxyz",
        "GET /hello HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
        "\x01\x02\x03\x04\r\n\r\n",
        "GET hello HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hr_buf_t out;
        raw_exchange(fx, bad[i], strlen(bad[i]), &out);
        /* Either a 4xx (lws answers 403 to an unparsable request line) or a closed connection:
         * never a 2xx, never a hang. */
        CHECK(out.len == 0 || strncmp(out.data, "HTTP/1.1 4", 10) == 0 ||
              strncmp(out.data, "HTTP/1.0 4", 10) == 0);
        hr_buf_free(&out);
        assert_still_serving(fx);
    }

    /* Headers over the cap (8 KiB by default). */
    hr_buf_t req, out;
    hr_buf_init(&req, 0);
    hr_buf_puts(&req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (int i = 0; i < 10000; i++)
        hr_buf_putc(&req, 'b');
    hr_buf_puts(&req, "\r\n\r\n");
    raw_exchange(fx, req.data, req.len, &out);
    CHECK(out.len == 0 || strncmp(out.data, "HTTP/1.1 4", 10) == 0);
    hr_buf_free(&out);
    hr_buf_free(&req);
    /* A URL over the cap. */
    hr_buf_init(&req, 0);
    hr_buf_puts(&req, "GET /");
    for (int i = 0; i < 10000; i++)
        hr_buf_putc(&req, 'u');
    hr_buf_puts(&req, " HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_exchange(fx, req.data, req.len, &out);
    CHECK(out.len == 0 || strncmp(out.data, "HTTP/1.1 4", 10) == 0);
    hr_buf_free(&out);
    hr_buf_free(&req);
    assert_still_serving(fx);

    /* HTTP/1.0 without keep-alive: answered, then closed. */
    const char *h10 = "GET /hello HTTP/1.0\r\n\r\n";
    raw_exchange(fx, h10, strlen(h10), &out);
    CHECK(strncmp(out.data, "HTTP/1.0 200", 12) == 0);
    hr_buf_free(&out);

    /* Pipelining is not supported: the first of several requests in one write is answered with
     * Connection: close, the rest are dropped with the connection (clients send them again).
     * lws 4.1.6 would loop for ever on a pipelined request with a body; it must not. */
    static const char *pipelined[] = {
        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
        "GET /async HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /async HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok",
    };
    for (size_t i = 0; i < sizeof pipelined / sizeof pipelined[0]; i++) {
        raw_exchange(fx, pipelined[i], strlen(pipelined[i]), &out);
        CHECK(strncmp(out.data, "HTTP/1.1 ", 9) == 0);
        CHECK(strcasestr(out.data, "connection: close") != NULL);
        CHECK(strstr(out.data + 1, "HTTP/1.1") == NULL);
        hr_buf_free(&out);
        assert_still_serving(fx);
    }
    hr_buf_free(&out);
}

static void test_malformed(void **state)
{
    /* A header line without a colon keeps lws waiting for the rest: the timeout ends it. */
    hr_server_opts_t o = {.listen = "127.0.0.1:0", .request_timeout_ms = 2000};
    fx_t *fx = fx_start(&o);
    fx_client(fx, client_malformed);
    fx_stop(fx);
}

static void client_slow(fx_t *fx)
{
    /* A body that never completes is cut after the request timeout (1 s here). */
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    const char *partial = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    hr_buf_t out;
    raw_exchange(fx, partial, strlen(partial), &out);
    gettimeofday(&t1, NULL);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    CHECK(secs >= 0.9 && secs < 5);
    CHECK_EQ(out.len, 0);
    hr_buf_free(&out);

    /* A body dripped a byte at a time also meets the total deadline. */
    gettimeofday(&t0, NULL);
    int fd = raw_connect(fx);
    const char *head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    (void)!write(fd, head, strlen(head));
    int closed = 0;
    for (int i = 0; i < 40 && !closed; i++) {
        usleep(100 * 1000);
        if (write(fd, "x", 1) < 0) closed = 1;
        char c;
        if (recv(fd, &c, 1, MSG_DONTWAIT) == 0) closed = 1;
    }
    close(fd);
    gettimeofday(&t1, NULL);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    CHECK(closed);
    CHECK(secs < 3.5);

    /* Headers that never complete are cut too. */
    gettimeofday(&t0, NULL);
    const char *half = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    raw_exchange(fx, half, strlen(half), &out);
    gettimeofday(&t1, NULL);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_usec - t0.tv_usec) / 1e6;
    CHECK(secs < 5);
    hr_buf_free(&out);
    assert_still_serving(fx);
}

static void test_slow_clients(void **state)
{
    hr_server_opts_t o = {.listen = "127.0.0.1:0", .request_timeout_ms = 1000};
    fx_t *fx = fx_start(&o);
    fx_client(fx, client_slow);
    hr_server_stats_t st;
    hr_server_stats(fx->srv, &st);
    assert_true(st.timeouts >= 1);
    fx_stop(fx);
}

static void on_any(hr_request_t *req, void *ud)
{
    char body[512];
    const char *flag = hr_request_query_param(req, "flag");
    int n = snprintf(body, sizeof body, "%s %s flag=%s missing=%s", hr_request_method(req),
                     hr_request_path(req), flag ? (*flag ? flag : "(empty)") : "(absent)",
                     hr_request_query_param(req, "missing") ? "yes" : "no");
    hr_response_send(req, 202, "text/plain", body, (size_t)n);
}

static void client_fallback(fx_t *fx)
{
    resp_t r;
    simple(fx, "DELETE", "/any/where?flag", NULL, 0, NULL, &r);
    CHECK_EQ(r.status, 202);
    CHECK_STR(r.body.data, "DELETE /any/where flag=(empty) missing=no");
    resp_free(&r);
    simple(fx, NULL, "/hello?flag=x", "body", 4, NULL, &r); /* POST to a GET route */
    CHECK_EQ(r.status, 202);
    CHECK_STR(r.body.data, "POST /hello flag=x missing=no");
    resp_free(&r);
    simple(fx, NULL, "/hello", NULL, 0, NULL, &r); /* routes still win */
    CHECK_EQ(r.status, 200);
    resp_free(&r);
}

/* With a fallback handler, unrouted requests reach it instead of 404/405. */
static void test_fallback(void **state)
{
    fx_t *fx = fx_start(NULL);
    hr_server_fallback(fx->srv, on_any, fx);
    fx_client(fx, client_fallback);
    fx_stop(fx);
}

/* ---- closing with requests in flight; init errors ------------------------------------------ */

static void *hold_client(void *arg)
{
    fx_t *fx = arg;
    resp_t r;
    simple(fx, NULL, "/hold", NULL, 0, NULL, &r);
    /* The server closed the connection without an answer. */
    CHECK_NE(r.rc, CURLE_OK);
    resp_free(&r);
    return NULL;
}

static void on_poll_held(uv_timer_t *t)
{
    fx_t *fx = t->data;
    if (!fx->held) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    hr_server_close(fx->srv, on_closed, fx);
}

static void test_close_with_pending(void **state)
{
    fx_t *fx = fx_start(NULL);
    pthread_t th;
    uv_timer_t poll;
    uv_timer_init(&fx->loop, &poll);
    poll.data = fx;
    uv_timer_start(&poll, on_poll_held, 5, 5);
    assert_int_equal(pthread_create(&th, NULL, hold_client, fx), 0);
    uv_close((uv_handle_t *)&fx->client_done, NULL);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(fx->closed, 1);
    assert_int_equal(fx->pending_closes, 1);
    assert_null(fx->held);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
}

static void test_init_errors(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hr_server_t *srv = NULL, *second = NULL;
    hr_err_t err = {0};
    const char *bad[] = {"nope",   "127.0.0.1", "127.0.0.1:x",       "127.0.0.1:70000",
                         "::1:80", "[::1:80",   "example.invalid:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hr_server_opts_t o = {.listen = bad[i]};
        assert_int_equal(hr_server_init(&loop, &o, &srv, &err), HR_EINVAL);
        assert_null(srv);
    }
    /* An address that is not local. */
    hr_server_opts_t o = {.listen = "192.0.2.1:8080"};
    assert_int_equal(hr_server_init(&loop, &o, &srv, &err), HR_EIO);
    assert_non_null(strstr(err.msg, "192.0.2.1:8080"));

    /* A busy port. */
    o.listen = "127.0.0.1:0";
    assert_int_equal(hr_server_init(&loop, &o, &srv, &err), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", hr_server_port(srv));
    o.listen = addr;
    assert_int_equal(hr_server_init(&loop, &o, &second, &err), HR_EIO);
    assert_null(second);
    assert_non_null(strstr(err.msg, "in use"));
    /* IPv6 loopback, when the machine has it. */
    o.listen = "[::1]:0";
    if (hr_server_init(&loop, &o, &second, &err) == 0) {
        assert_true(hr_server_port(second) > 0);
        hr_server_close(second, NULL, NULL);
    }
    hr_server_close(srv, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_async),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_slow_clients),
        cmocka_unit_test(test_close_with_pending),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_ws),
        cmocka_unit_test(test_ws_refused),
        cmocka_unit_test(test_ws_idle_and_slow),
        cmocka_unit_test(test_ws_server_close),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
