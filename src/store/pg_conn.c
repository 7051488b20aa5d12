/* pg_conn.c: an asynchronous libpq connection driven by libuv.
 *
 * The connection is a small state machine:
 *
 *     DOWN --start--> CONNECTING --PQconnectPoll OK--> READY --query--> BUSY --done--> READY
 *      ^                   |                             |                |
 *      +---- backoff timer-+---------- failure ----------+----------------+
 *
 * Exactly one uv_poll_t watches the socket; it is closed and replaced whenever libpq's socket
 * changes (connect, reset), because libuv asserts when one fd has two poll handles. Queries wait
 * in a FIFO and are sent one at a time with PQsendQueryParams; the callback gets the last result.
 * A query with a statement key (hr_pgconn_query_stmt) is sent with PQsendQueryPrepared instead;
 * if its key is not yet prepared on this connection, a PQsendPrepare goes first, as its own
 * round trip (c->preparing), and the query is sent once it succeeded. The set of prepared keys
 * belongs to one PGconn and is emptied whenever the connection is dropped.
 * On failure every pending query fails with HR_EDB (callbacks through the loop), and reconnection
 * starts after 100 ms, doubling up to 5 s.
 *
 * Invariants: (1) c->poll is NULL or watches PQsocket(c->conn); (2) only the head of the queue is
 * ever sent; (3) every query's callback runs exactly once; (4) c->prepared lists only keys
 * prepared on the current c->conn; (5) c->preparing implies state BUSY and that the head query's
 * key is being prepared. */
#include "store/pg_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum { DOWN, CONNECTING, READY, BUSY, CLOSING };

typedef struct query {
    struct query *next;
    char *sql;
    const char *key; /* prepared statement name (a literal), or NULL */
    int nparams;
    char **params;
    hr_pgconn_cb cb;
    void *ud;
    int failed; /* rc to report when failing through the loop */
    char *errmsg;
} query_t;

struct hr_pgconn {
    uv_loop_t *loop;
    char *url;
    PGconn *conn;
    int state;
    uv_poll_t *poll;
    int poll_fd;
    int poll_events;
    uv_timer_t retry_timer;
    uv_idle_t fail_idle; /* delivers failures outside the caller's stack */
    uint64_t backoff_ms;
    uint64_t reconnects;
    int ever_connected;
    query_t *head, *tail; /* pending queries; head is in progress when state == BUSY */
    query_t *failed_head, *failed_tail; /* failed queries awaiting their callbacks */
    PGresult *last;                     /* last result of the query in progress */
    int preparing;                      /* the BUSY round trip is the head query's PQsendPrepare */
    const char *prepared[HR_PGCONN_MAX_STMTS]; /* keys prepared on this conn */
    int nprepared;
    int handles_open;
    void (*done)(void *);
    void *done_ud;
};

static void start_connect(hr_pgconn_t *c);
static void on_poll(uv_poll_t *p, int status, int events);
static void drive_query(hr_pgconn_t *c);

static void query_free(query_t *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q->errmsg);
    free(q);
}

static void on_handle_closed(uv_handle_t *h)
{
    hr_pgconn_t *c = h->data;
    if (h != (uv_handle_t *)&c->retry_timer && h != (uv_handle_t *)&c->fail_idle) free(h);
    if (--c->handles_open == 0 && c->state == CLOSING) {
        void (*done)(void *) = c->done;
        void *ud = c->done_ud;
        free(c->url);
        free(c);
        if (done) done(ud);
    }
}

static void poll_stop(hr_pgconn_t *c)
{
    if (!c->poll) return;
    uv_poll_stop(c->poll);
    uv_close((uv_handle_t *)c->poll, on_handle_closed);
    c->poll = NULL;
    c->poll_fd = -1;
    c->poll_events = 0;
}

/* Watches libpq's current socket for events, replacing the handle if the socket changed. */
static void poll_want(hr_pgconn_t *c, int events)
{
    int fd = PQsocket(c->conn);
    if (c->poll && c->poll_fd != fd) poll_stop(c);
    if (fd < 0) return;
    if (!c->poll) {
        c->poll = hr_xcalloc(1, sizeof *c->poll);
        if (uv_poll_init(c->loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return;
        }
        c->poll->data = c;
        c->handles_open++;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (events != c->poll_events) {
        uv_poll_start(c->poll, events, on_poll);
        c->poll_events = events;
    }
}

static void on_fail_idle(uv_idle_t *h)
{
    hr_pgconn_t *c = h->data;
    uv_idle_stop(h);
    while (c->failed_head) {
        query_t *q = c->failed_head;
        c->failed_head = q->next;
        if (!c->failed_head) c->failed_tail = NULL;
        q->cb(q->ud, q->failed, NULL, q->errmsg ? q->errmsg : "database connection lost");
        query_free(q);
    }
}

static void fail_query(hr_pgconn_t *c, query_t *q, int rc, const char *msg)
{
    q->next = NULL;
    q->failed = rc;
    free(q->errmsg);
    q->errmsg = hr_xstrdup(msg);
    if (c->failed_tail)
        c->failed_tail->next = q;
    else
        c->failed_head = q;
    c->failed_tail = q;
    uv_idle_start(&c->fail_idle, on_fail_idle);
}

static void fail_all(hr_pgconn_t *c, int rc, const char *msg)
{
    while (c->head) {
        query_t *q = c->head;
        c->head = q->next;
        fail_query(c, q, rc, msg);
    }
    c->tail = NULL;
}

static void on_retry_timer(uv_timer_t *t)
{
    start_connect(t->data);
}

/* Drops the connection and schedules a reconnect. */
static void connection_lost(hr_pgconn_t *c, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", why && *why ? why : "connection lost");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    /* libpq's messages span lines ("…failed: Connection refused\n\tIs the server running…");
     * a log record is one line. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '"') *p = *p == '"' ? '\'' : ' ';
    hr_log(HR_LOG_WARN, "msg=\"database connection failed\" error=\"%s\" retry_in_ms=%llu", msg,
           (unsigned long long)c->backoff_ms);
    poll_stop(c);
    if (c->last) PQclear(c->last);
    c->last = NULL;
    if (c->conn) PQfinish(c->conn);
    c->conn = NULL;
    c->state = DOWN;
    c->preparing = 0;
    c->nprepared = 0; /* a new connection has none of them */
    fail_all(c, HR_EDB, msg);
    uv_timer_start(&c->retry_timer, on_retry_timer, c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > 5000 ? 5000 : c->backoff_ms * 2;
}

static void continue_connect(hr_pgconn_t *c)
{
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        poll_want(c, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        poll_want(c, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->conn, 1) != 0) {
            connection_lost(c, PQerrorMessage(c->conn));
            return;
        }
        c->state = READY;
        c->backoff_ms = 100;
        if (c->ever_connected) {
            c->reconnects++;
            hr_log(HR_LOG_INFO, "msg=\"database reconnected\" reconnects=%llu",
                   (unsigned long long)c->reconnects);
        }
        c->ever_connected = 1;
        poll_want(c, UV_READABLE);
        drive_query(c);
        break;
    default:
        connection_lost(c, PQerrorMessage(c->conn));
        break;
    }
}

static void start_connect(hr_pgconn_t *c)
{
    const char *keys[] = {"dbname", "application_name", "options", NULL};
    /* herald's own commits need not wait for the WAL flush: if the server crashes, a lost
     * settle only rolls the cursor back together with its attempts, and events are delivered
     * again (at least once still holds). */
    /* The prepared statements run with PostgreSQL's default plan_cache_mode (auto): after five
     * custom plans it keeps a generic plan only when that costs no more than they did. The
     * read's index quals take the actual parameters (the scan's start key) at execution in
     * either case. */
    const char *vals[] = {c->url, "herald", "-c synchronous_commit=off", NULL};
    c->conn = PQconnectStartParams(keys, vals, 1);
    if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
        connection_lost(c, c->conn ? PQerrorMessage(c->conn) : "out of memory");
        return;
    }
    c->state = CONNECTING;
    continue_connect(c);
}

static int is_prepared(const hr_pgconn_t *c, const char *key)
{
    for (int i = 0; i < c->nprepared; i++)
        if (strcmp(c->prepared[i], key) == 0) return 1;
    return 0;
}

/* Sends the head query when idle and connected: its prepare first when it has a key that this
 * connection has not prepared yet (on_readable sends the query itself when that succeeded). */
static void drive_query(hr_pgconn_t *c)
{
    if (c->state != READY || !c->head) return;
    query_t *q = c->head;
    int ok;
    if (q->key && !is_prepared(c, q->key) && c->nprepared < HR_PGCONN_MAX_STMTS) {
        ok = PQsendPrepare(c->conn, q->key, q->sql, q->nparams, NULL);
        c->preparing = ok;
    } else if (q->key && is_prepared(c, q->key)) {
        ok = PQsendQueryPrepared(c->conn, q->key, q->nparams, (const char *const *)q->params, NULL,
                                 NULL, 0);
    } else {
        ok = PQsendQueryParams(c->conn, q->sql, q->nparams, NULL, (const char *const *)q->params,
                               NULL, NULL, 0);
    }
    if (!ok) {
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
    c->state = BUSY;
    int f = PQflush(c->conn);
    if (f < 0) {
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
    poll_want(c, f == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void finish_query(hr_pgconn_t *c)
{
    query_t *q = c->head;
    c->head = q->next;
    if (!c->head) c->tail = NULL;
    PGresult *res = c->last;
    c->last = NULL;
    c->state = READY;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        q->cb(q->ud, 0, res, NULL);
    } else {
        char msg[1024];
        const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        /* The server lost our prepared statements (DISCARD ALL, a pooler): prepare again. */
        if (q->key && state && strcmp(state, "26000") == 0) c->nprepared = 0;
        snprintf(msg, sizeof msg, "%s", m && *m ? m : "query failed");
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            msg[--n] = '\0';
        if (res) PQclear(res);
        q->cb(q->ud, HR_EDB, NULL, msg);
    }
    query_free(q);
}

static void on_readable(hr_pgconn_t *c)
{
    if (!PQconsumeInput(c->conn)) {
        connection_lost(c, PQerrorMessage(c->conn));
        return;
    }
    /* Notifications are not used; drop any. */
    PGnotify *n;
    while ((n = PQnotifies(c->conn)) != NULL)
        PQfreemem(n);
    while (c->state == BUSY && !PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (!r && c->preparing) {
            /* The head query's prepare is done: on success send the query itself; on failure
             * the query fails with the prepare's error (finish_query), and is prepared again
             * the next time it is sent. */
            c->preparing = 0;
            const char *state = c->last ? PQresultErrorField(c->last, PG_DIAG_SQLSTATE) : NULL;
            if (c->last && (PQresultStatus(c->last) == PGRES_COMMAND_OK ||
                            (state && strcmp(state, "42P05") == 0))) { /* already prepared */
                PQclear(c->last);
                c->last = NULL;
                c->prepared[c->nprepared++] = c->head->key;
                c->state = READY;
                drive_query(c);
                continue;
            }
        }
        if (!r) {
            finish_query(c);
            if (c->state == READY) drive_query(c);
            return;
        }
        if (c->last) PQclear(c->last);
        c->last = r;
    }
    if (c->state == READY && PQstatus(c->conn) == CONNECTION_BAD)
        connection_lost(c, PQerrorMessage(c->conn));
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    hr_pgconn_t *c = p->data;
    if (c->state == CONNECTING) {
        continue_connect(c);
        return;
    }
    if (status < 0) {
        connection_lost(c, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        int f = PQflush(c->conn);
        if (f < 0) {
            connection_lost(c, PQerrorMessage(c->conn));
            return;
        }
        if (f == 0) poll_want(c, UV_READABLE);
    }
    if (events & UV_READABLE) on_readable(c);
}

int hr_pgconn_init(uv_loop_t *loop, const char *url, hr_pgconn_t **out, hr_err_t *err)
{
    hr_pgconn_t *c = hr_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->url = hr_xstrdup(url);
    c->poll_fd = -1;
    c->backoff_ms = 100;
    uv_timer_init(loop, &c->retry_timer);
    uv_idle_init(loop, &c->fail_idle);
    c->retry_timer.data = c->fail_idle.data = c;
    c->handles_open = 2;
    start_connect(c);
    *out = c;
    (void)err;
    return 0;
}

static int enqueue(hr_pgconn_t *c, const char *key, const char *sql, int nparams,
                   const char *const *params, hr_pgconn_cb cb, void *ud)
{
    if (c->state == CLOSING) return HR_ECANCELED;
    query_t *q = hr_xcalloc(1, sizeof *q);
    q->sql = hr_xstrdup(sql);
    q->key = key;
    q->nparams = nparams;
    q->params = hr_xcalloc((size_t)nparams + 1, sizeof *q->params);
    for (int i = 0; i < nparams; i++)
        q->params[i] = hr_xstrdup(params[i]);
    q->cb = cb;
    q->ud = ud;
    if (c->state == DOWN) {
        /* Waiting out a reconnect backoff would stall the caller's pipeline; fail fast and let
         * the caller retry on its next tick. While connecting, queries wait in the queue. */
        fail_query(c, q, HR_EDB, "database not connected");
        return 0;
    }
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    drive_query(c);
    return 0;
}

int hr_pgconn_query(hr_pgconn_t *c, const char *sql, int nparams, const char *const *params,
                    hr_pgconn_cb cb, void *ud)
{
    return enqueue(c, NULL, sql, nparams, params, cb, ud);
}

int hr_pgconn_query_stmt(hr_pgconn_t *c, const char *key, const char *sql, int nparams,
                         const char *const *params, hr_pgconn_cb cb, void *ud)
{
    return enqueue(c, key, sql, nparams, params, cb, ud);
}

int hr_pgconn_ready(const hr_pgconn_t *c)
{
    return c->state == READY || c->state == BUSY;
}

uint64_t hr_pgconn_reconnects(const hr_pgconn_t *c)
{
    return c->reconnects;
}

void hr_pgconn_close(hr_pgconn_t *c, void (*done)(void *ud), void *ud)
{
    if (c->state == BUSY && c->conn) {
        /* Ask the server to stop the query in progress; we do not wait for it. */
        PGcancel *cn = PQgetCancel(c->conn);
        char buf[256];
        if (cn) {
            PQcancel(cn, buf, sizeof buf);
            PQfreeCancel(cn);
        }
    }
    fail_all(c, HR_ECANCELED, "shutting down");
    on_fail_idle(&c->fail_idle);
    c->state = CLOSING;
    c->preparing = 0;
    c->nprepared = 0;
    c->done = done;
    c->done_ud = ud;
    poll_stop(c);
    if (c->last) PQclear(c->last);
    c->last = NULL;
    if (c->conn) PQfinish(c->conn);
    c->conn = NULL;
    uv_timer_stop(&c->retry_timer);
    uv_close((uv_handle_t *)&c->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->fail_idle, on_handle_closed);
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *hr_pg_connect_blocking(const char *url, hr_err_t *err)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {url, "herald", "10", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", conn ? PQerrorMessage(conn) : "out of memory");
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n')
            msg[--n] = '\0';
        for (char *p = msg; *p; p++) /* one line, for logs */
            if (*p == '\n' || *p == '\t') *p = ' ';
        hr_err_set(err, HR_EDB, "cannot connect to the database: %s", msg);
        if (conn) PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notices, NULL);
    return conn;
}
