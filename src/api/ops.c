/* ops.c: the operational endpoints, GET /healthz, /readyz and /metrics (docs/api.md).
 *
 * /healthz answers at once: the loop turns, so the process is alive. /readyz asks the store
 * (ops->ping: one query on PostgreSQL's async connection; SQLite answers through the loop)
 * whether the database answers and herald's schema is at this binary's version. Requests that
 * arrive while a check is under way wait for the same answer; a check slower than
 * READY_TIMEOUT_MS is answered 503 and left to finish on its own.
 *
 * /metrics writes the Prometheus text format (version 0.0.4) from three sources:
 *   - the dispatcher's per-trigger counters and histograms (hr_dispatcher_stats), on the loop;
 *   - the HTTP server's and the store's counters, on the loop;
 *   - the store's per-trigger status (backlog, delayed, dead). That query is synchronous and may
 *     take long on a big log, so it never runs on the loop: it runs in libuv's thread pool on a
 *     store of its own, opened from ctx->database_url by the worker and used by one refresh at
 *     a time. A scrape finding values older than STATUS_FRESH_US starts a refresh (at most one
 *     per STATUS_FRESH_US) and waits for it at most STATUS_WAIT_MS, then answers with whatever
 *     values it has; herald_status_age_seconds tells how old they are.
 *
 * Closing (hr_ops_close): waiting requests are answered (they are orphaned by then, so that
 * only frees them), then the state waits until no readiness check and no refresh is under way —
 * a check pending on the store ends at the latest when the store closes — closes its timers and
 * the worker's store, frees itself and calls done. */
#include "api/api.h"
#include "api/graphql_int.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"

#define READY_TIMEOUT_MS 5000
#define STATUS_FRESH_US (2 * 1000000ull)
#define STATUS_WAIT_MS 2000
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct hr_ops hr_ops_t;

/* A request waiting for a readiness check or a status refresh. */
typedef struct waiter {
    hr_request_t *req;
    struct waiter *next;
} waiter_t;

/* One readiness check; waiters is emptied when the check is answered by its timeout. */
typedef struct ping {
    hr_ops_t *o;
    waiter_t *waiters;
} ping_t;

struct hr_ops {
    hr_api_ctx_t *ctx;
    hr_server_t *srv;
    /* readiness */
    ping_t *ping;           /* the check new /readyz requests join; NULL when none */
    int pings;              /* checks whose store callback has not run yet */
    uv_timer_t ready_timer; /* bounds the wait of the current check */
    /* status gauges */
    uv_work_t work;
    int refreshing;     /* a refresh is in the thread pool */
    hr_store_t *wstore; /* the worker's store: touched by one refresh at a time, or on close */
    json_t *wresult;    /* the worker's answer, handed over in after_work */
    int wrc;
    char werr[256];
    json_t *status;          /* the last status array read; NULL before the first */
    uint64_t status_us;      /* hr_mono_us() when it was read */
    uint64_t refresh_us;     /* hr_mono_us() when the last refresh started; 0 never */
    uint64_t status_errors;  /* refreshes that failed */
    waiter_t *scrapes;       /* scrapes waiting for the refresh */
    uv_timer_t scrape_timer; /* bounds their wait */
    /* closing */
    int closing;
    int handles; /* loop handles still open */
    void (*done)(void *ud);
    void *done_ud;
};

static void maybe_finish(hr_ops_t *o);

static void send_text(hr_request_t *req, int status, const char *ct, const char *s)
{
    hr_response_send(req, status, ct, s, strlen(s));
}

static waiter_t *push(waiter_t *head, hr_request_t *req)
{
    waiter_t *w = hr_xcalloc(1, sizeof *w);
    w->req = req;
    w->next = head;
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* GET /healthz and GET /readyz                                                               */

static void on_healthz(hr_request_t *req, void *ud)
{
    (void)ud;
    send_text(req, 200, "application/json", "{\"status\":\"ok\"}");
}

/* Answers every waiter of p: 200, or 503 with the reason. */
static void answer_ready(ping_t *p, int rc, const char *why)
{
    if (!why || !*why) why = "the database did not answer";
    if (rc && p->waiters)
        hr_log(HR_LOG_DEBUG, "component=api msg=\"not ready\" reason=\"%s\"", why);
    for (waiter_t *w = p->waiters, *next; w; w = next) {
        next = w->next;
        json_t *body = json_pack("{s:s}", "status", rc == 0 ? "ok" : "unavailable");
        if (rc) {
            json_t *r = json_string(why);
            json_object_set_new(body, "reason", r ? r : json_string("(not UTF-8)"));
        }
        hr_api_send_json(w->req, rc == 0 ? 200 : 503, body);
        free(w);
    }
    p->waiters = NULL;
}

static void on_ping(void *ud, int rc, const char *errmsg)
{
    ping_t *p = ud;
    hr_ops_t *o = p->o;
    o->pings--;
    if (o->ping == p) {
        o->ping = NULL;
        uv_timer_stop(&o->ready_timer);
    }
    answer_ready(p, rc, errmsg);
    free(p);
    if (o->closing) maybe_finish(o);
}

static void on_defs_version(void *ud, int rc, int64_t version)
{
    (void)version;
    on_ping(ud, rc, rc ? "the database did not answer" : NULL);
}

static void on_ready_timeout(uv_timer_t *t)
{
    hr_ops_t *o = t->data;
    ping_t *p = o->ping;
    if (!p) return;
    o->ping = NULL; /* its callback still comes, and finds nobody waiting */
    answer_ready(p, HR_ETIMEOUT, "the database did not answer within 5 s");
}

static void on_readyz(hr_request_t *req, void *ud)
{
    hr_ops_t *o = ud;
    if (o->ping) {
        o->ping->waiters = push(o->ping->waiters, req);
        return;
    }
    ping_t *p = hr_xcalloc(1, sizeof *p);
    p->o = o;
    p->waiters = push(NULL, req);
    const hr_store_ops_t *ops = o->ctx->ops;
    int rc = ops->ping ? ops->ping(o->ctx->store, on_ping, p)
                       : ops->defs_version(o->ctx->store, on_defs_version, p);
    if (rc) {
        answer_ready(p, rc, hr_strerror(rc));
        free(p);
        return;
    }
    o->pings++;
    o->ping = p;
    uv_timer_start(&o->ready_timer, on_ready_timeout, READY_TIMEOUT_MS, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* The status gauges, refreshed in the thread pool                                            */

/* In a thread of the pool: nothing here touches the loop or ctx->store. */
static void refresh_work(uv_work_t *w)
{
    hr_ops_t *o = w->data;
    const hr_store_ops_t *ops = o->ctx->ops;
    hr_err_t err = {0};
    json_t *j = NULL;
    int rc = 0;
    if (!o->wstore) rc = ops->open(o->ctx->database_url, NULL, &o->wstore, &err);
    if (!rc) rc = ops->status(o->wstore, &j, &err);
    o->wrc = rc;
    o->wresult = rc ? NULL : j;
    snprintf(o->werr, sizeof o->werr, "%.*s", (int)sizeof o->werr - 1, rc ? err.msg : "");
}

static void write_metrics(hr_ops_t *o, hr_buf_t *b);

static void answer_scrapes(hr_ops_t *o)
{
    waiter_t *w = o->scrapes;
    o->scrapes = NULL;
    uv_timer_stop(&o->scrape_timer);
    if (!w) return;
    hr_buf_t b = HR_BUF_INIT;
    /* While closing, the server and the dispatcher may be gone: the waiting requests are
     * orphaned, and answering only releases them. */
    if (!o->closing) write_metrics(o, &b);
    for (waiter_t *next; w; w = next) {
        next = w->next;
        hr_response_send(w->req, 200, METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
        free(w);
    }
    hr_buf_free(&b);
}

static void refresh_done(uv_work_t *w, int status)
{
    hr_ops_t *o = w->data;
    (void)status;
    o->refreshing = 0;
    if (o->wrc == 0) {
        json_decref(o->status);
        o->status = o->wresult;
        o->status_us = hr_mono_us();
    } else {
        o->status_errors++;
        hr_log(HR_LOG_WARN,
               "component=api msg=\"reading the trigger status for /metrics failed\" "
               "error=\"%s\"",
               o->werr);
    }
    o->wresult = NULL;
    if (o->closing) {
        maybe_finish(o);
        return;
    }
    answer_scrapes(o);
}

static void on_scrape_timeout(uv_timer_t *t)
{
    answer_scrapes(t->data);
}

/* ------------------------------------------------------------------------------------------ */
/* GET /metrics                                                                               */

/* A row of the dispatcher's statistics, copied for sorting. */
typedef struct row {
    char *label; /* trigger="NAME", escaped */
    hr_trigger_stats_t st;
    int in_flight;
} row_t;

typedef struct rows {
    row_t *v;
    size_t n;
} rows_t;

static char *trigger_label(const char *name)
{
    hr_buf_t b = HR_BUF_INIT;
    hr_buf_puts(&b, "trigger=\"");
    for (const char *p = name; *p; p++) {
        if (*p == '\\' || *p == '"')
            hr_buf_printf(&b, "\\%c", *p);
        else if (*p == '\n')
            hr_buf_puts(&b, "\\n");
        else
            hr_buf_putc(&b, *p);
    }
    hr_buf_putc(&b, '"');
    return hr_buf_steal(&b, NULL);
}

static void collect(void *ud, const char *trigger, const hr_trigger_stats_t *st, int in_flight)
{
    rows_t *r = ud;
    r->v = hr_xrealloc(r->v, (r->n + 1) * sizeof *r->v);
    r->v[r->n].label = trigger_label(trigger);
    r->v[r->n].st = *st;
    r->v[r->n].in_flight = in_flight;
    r->n++;
}

static int by_label(const void *a, const void *b)
{
    return strcmp(((const row_t *)a)->label, ((const row_t *)b)->label);
}

static void family(hr_buf_t *b, const char *name, const char *type, const char *help)
{
    hr_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(hr_buf_t *b, const char *name, const char *label, const hr_histogram_t *h,
                      const double *bounds, size_t n)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += h->counts[i];
        hr_buf_printf(b, "%s_bucket{%s,le=\"%.9g\"} %" PRIu64 "\n", name, label, bounds[i], cum);
    }
    cum += h->counts[n];
    hr_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, label, cum);
    hr_buf_printf(b, "%s_sum{%s} %.9g\n", name, label, h->sum);
    hr_buf_printf(b, "%s_count{%s} %" PRIu64 "\n", name, label, h->count);
}

static void dispatcher_metrics(hr_buf_t *b, const rows_t *r)
{
    if (r->n == 0) return;
    family(b, "herald_events_read_total", "counter",
           "Events read from the log for a trigger (those of its table and operations, or of "
           "its event types), including pages read again after a failed settle.");
    for (size_t i = 0; i < r->n; i++)
        hr_buf_printf(b, "herald_events_read_total{%s} %" PRIu64 "\n", r->v[i].label,
                      r->v[i].st.events_read);
    family(b, "herald_deliveries_total", "counter",
           "Delivery attempts by outcome: success (2xx), failure (retried later) or dead "
           "(retries exhausted).");
    for (size_t i = 0; i < r->n; i++) {
        const hr_trigger_stats_t *s = &r->v[i].st;
        hr_buf_printf(b,
                      "herald_deliveries_total{%s,outcome=\"success\"} %" PRIu64 "\n"
                      "herald_deliveries_total{%s,outcome=\"failure\"} %" PRIu64 "\n"
                      "herald_deliveries_total{%s,outcome=\"dead\"} %" PRIu64 "\n",
                      r->v[i].label, s->success, r->v[i].label, s->failure, r->v[i].label, s->dead);
    }
    family(b, "herald_delivery_duration_seconds", "histogram",
           "Duration of each HTTP delivery attempt, from its submission to the response or the "
           "error.");
    for (size_t i = 0; i < r->n; i++)
        histogram(b, "herald_delivery_duration_seconds", r->v[i].label, &r->v[i].st.duration,
                  hr_stats_duration_bounds, hr_stats_duration_nbounds);
    family(b, "herald_delivery_lag_seconds", "histogram",
           "Time from an event's creation (its created_at, taken in the writing transaction) to "
           "its successful delivery.");
    for (size_t i = 0; i < r->n; i++)
        histogram(b, "herald_delivery_lag_seconds", r->v[i].label, &r->v[i].st.lag,
                  hr_stats_lag_bounds, hr_stats_lag_nbounds);
    family(b, "herald_deliveries_in_flight", "gauge", "Webhook requests of a trigger in flight.");
    for (size_t i = 0; i < r->n; i++)
        hr_buf_printf(b, "herald_deliveries_in_flight{%s} %d\n", r->v[i].label, r->v[i].in_flight);
    family(b, "herald_trigger_lease_held", "gauge",
           "1 while this process delivers the trigger (holds its lease when several herald "
           "processes share a PostgreSQL database), else 0.");
    for (size_t i = 0; i < r->n; i++)
        hr_buf_printf(b, "herald_trigger_lease_held{%s} %d\n", r->v[i].label,
                      r->v[i].st.lease_held);
}

static const json_t *member(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return v && json_is_number(v) ? v : NULL;
}

static void status_metrics(hr_ops_t *o, hr_buf_t *b)
{
    static const struct {
        const char *key, *name, *help;
    } gauges[] = {
        {"backlog", "herald_backlog_events",
         "Events a trigger matches that its cursor has not reached yet."},
        {"delayed", "herald_delayed_events", "Events of a trigger waiting for a retry."},
        {"dead", "herald_dead_events", "Events of a trigger whose retries are exhausted."},
        {"lag_seconds", "herald_backlog_oldest_age_seconds",
         "Age of the oldest event in a trigger's backlog; 0 when the backlog is empty."},
    };
    if (o->status && json_array_size(o->status) > 0) {
        for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
            family(b, gauges[g].name, "gauge", gauges[g].help);
            size_t i;
            json_t *row;
            json_array_foreach(o->status, i, row)
            {
                const json_t *t = json_object_get(row, "trigger");
                if (!json_is_string(t)) continue;
                const json_t *v = member(row, gauges[g].key);
                char *label = trigger_label(json_string_value(t));
                hr_buf_printf(b, "%s{%s} %.9g\n", gauges[g].name, label,
                              v ? json_number_value(v) : 0.0);
                free(label);
            }
        }
    }
    if (o->status_us) {
        family(b, "herald_status_age_seconds", "gauge",
               "Age of the values of herald_backlog_events, herald_delayed_events, "
               "herald_dead_events and herald_backlog_oldest_age_seconds.");
        hr_buf_printf(b, "herald_status_age_seconds %.3f\n",
                      (double)(hr_mono_us() - o->status_us) / 1e6);
    }
    family(b, "herald_status_refresh_failures_total", "counter",
           "Failed reads of the per-trigger status (the gauges keep their last values).");
    hr_buf_printf(b, "herald_status_refresh_failures_total %" PRIu64 "\n", o->status_errors);
}

static void write_metrics(hr_ops_t *o, hr_buf_t *b)
{
    hr_api_ctx_t *ctx = o->ctx;
    rows_t r = {0};
    if (ctx->dispatcher) hr_dispatcher_stats(ctx->dispatcher, collect, &r);
    if (r.n) qsort(r.v, r.n, sizeof *r.v, by_label);

    family(b, "herald_build_info", "gauge", "herald's version and storage backend; always 1.");
    hr_buf_printf(b, "herald_build_info{version=\"%s\",backend=\"%s\"} 1\n", HERALD_VERSION,
                  ctx->ops->name);
    family(b, "herald_triggers", "gauge", "Triggers this process delivers.");
    hr_buf_printf(b, "herald_triggers %zu\n", r.n);
    dispatcher_metrics(b, &r);
    status_metrics(o, b);
    family(b, "herald_database_reconnects_total", "counter",
           "Times the delivery connection to the database was re-established.");
    hr_buf_printf(b, "herald_database_reconnects_total %" PRIu64 "\n",
                  ctx->ops->reconnects ? ctx->ops->reconnects(ctx->store) : 0);

    hr_server_stats_t ss;
    hr_server_stats(o->srv, &ss);
    family(b, "herald_http_requests_total", "counter", "Requests received by the HTTP API.");
    hr_buf_printf(b, "herald_http_requests_total %" PRIu64 "\n", ss.requests);
    family(b, "herald_http_requests_in_flight", "gauge",
           "Requests of the HTTP API waiting for their answer, this scrape included.");
    hr_buf_printf(b, "herald_http_requests_in_flight %" PRIu64 "\n", ss.in_flight);
    family(b, "herald_http_request_timeouts_total", "counter",
           "Connections of the HTTP API closed because a request body arrived too slowly.");
    hr_buf_printf(b, "herald_http_request_timeouts_total %" PRIu64 "\n", ss.timeouts);
    family(b, "herald_websocket_sessions", "gauge", "WebSocket sessions open now.");
    hr_buf_printf(b, "herald_websocket_sessions %" PRIu64 "\n", ss.ws_open);
    family(b, "herald_websocket_upgrades_total", "counter",
           "WebSocket upgrade requests, by outcome (accepted, or refused with a 4xx/503).");
    hr_buf_printf(b, "herald_websocket_upgrades_total{outcome=\"accepted\"} %" PRIu64 "\n",
                  ss.ws_accepted);
    hr_buf_printf(b, "herald_websocket_upgrades_total{outcome=\"refused\"} %" PRIu64 "\n",
                  ss.ws_refused);
    family(b, "herald_websocket_slow_closes_total", "counter",
           "WebSocket sessions closed with 1008 because their client did not read.");
    hr_buf_printf(b, "herald_websocket_slow_closes_total %" PRIu64 "\n", ss.ws_slow);
    hr_gqlsvc_counts_t gc;
    hr_gqlsvc_counts(ctx->graphql, &gc);
    family(b, "herald_graphql_subscriptions", "gauge",
           "GraphQL subscriptions active now, by root field.");
    hr_buf_printf(b, "herald_graphql_subscriptions{kind=\"events_stream\"} %zu\n",
                  gc.events_stream);
    hr_buf_printf(b, "herald_graphql_subscriptions{kind=\"event\"} %zu\n", gc.event);
    hr_buf_printf(b, "herald_graphql_subscriptions{kind=\"stats\"} %zu\n", gc.stats);

    for (size_t i = 0; i < r.n; i++)
        free(r.v[i].label);
    free(r.v);
}

/* The admin secret in x-herald-admin-secret or x-hasura-admin-secret (hr_api_authorized), or
 * as "Authorization: Bearer SECRET", which is what Prometheus' scrape configuration sends. */
static int metrics_authorized(hr_ops_t *o, hr_request_t *req)
{
    const char *secret = o->ctx->admin_secret;
    if (hr_api_authorized(o->ctx, req)) return 1;
    const char *auth = hr_request_header(req, "authorization");
    if (!secret || !auth || strncasecmp(auth, "Bearer ", 7) != 0) return 0;
    const char *got = auth + 7;
    while (*got == ' ')
        got++;
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, strlen(secret), a);
    SHA256((const unsigned char *)got, strlen(got), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

static void on_metrics(hr_request_t *req, void *ud)
{
    hr_ops_t *o = ud;
    if (!metrics_authorized(o, req)) {
        hr_response_header(req, "WWW-Authenticate", "Bearer");
        hr_api_send_error(req, 401, "access-denied",
                          "missing or invalid admin secret (x-herald-admin-secret, or "
                          "Authorization: Bearer)",
                          NULL);
        return;
    }
    uint64_t now = hr_mono_us();
    int fresh = o->status_us && now - o->status_us < STATUS_FRESH_US;
    if (o->ctx->database_url && !fresh && !o->refreshing &&
        (!o->refresh_us || now - o->refresh_us >= STATUS_FRESH_US)) {
        o->work.data = o;
        if (uv_queue_work(o->ctx->loop, &o->work, refresh_work, refresh_done) == 0) {
            o->refreshing = 1;
            o->refresh_us = now;
        }
    }
    if (o->refreshing) {
        if (!o->scrapes) uv_timer_start(&o->scrape_timer, on_scrape_timeout, STATUS_WAIT_MS, 0);
        o->scrapes = push(o->scrapes, req);
        return;
    }
    hr_buf_t b = HR_BUF_INIT;
    write_metrics(o, &b);
    hr_response_send(req, 200, METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
    hr_buf_free(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* Registering and closing                                                                    */

int hr_ops_register(hr_server_t *srv, hr_api_ctx_t *ctx, hr_err_t *err)
{
    hr_ops_t *o = hr_xcalloc(1, sizeof *o);
    o->ctx = ctx;
    o->srv = srv;
    int rc;
    if ((rc = hr_server_route(srv, "GET", "/healthz", on_healthz, o)) ||
        (rc = hr_server_route(srv, "GET", "/readyz", on_readyz, o)) ||
        (rc = hr_server_route(srv, "GET", "/metrics", on_metrics, o))) {
        free(o);
        return hr_err_set(err, rc, "cannot route the operational endpoints: %s", hr_strerror(rc));
    }
    uv_timer_init(ctx->loop, &o->ready_timer);
    uv_timer_init(ctx->loop, &o->scrape_timer);
    o->ready_timer.data = o->scrape_timer.data = o;
    o->handles = 2;
    ctx->ops_state = o;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    hr_ops_t *o = h->data;
    if (--o->handles > 0) return;
    if (o->wstore) o->ctx->ops->close(o->wstore, NULL, NULL);
    json_decref(o->status);
    void (*done)(void *) = o->done;
    void *ud = o->done_ud;
    o->ctx->ops_state = NULL;
    free(o);
    if (done) done(ud);
}

static void maybe_finish(hr_ops_t *o)
{
    if (o->pings || o->refreshing || o->closing != 1) return;
    o->closing = 2;
    uv_close((uv_handle_t *)&o->ready_timer, on_handle_closed);
    uv_close((uv_handle_t *)&o->scrape_timer, on_handle_closed);
}

typedef struct later {
    uv_timer_t t;
    void (*done)(void *ud);
    void *ud;
} later_t;

static void later_closed(uv_handle_t *h)
{
    later_t *l = (later_t *)h;
    if (l->done) l->done(l->ud);
    free(l);
}

void hr_ops_close(hr_api_ctx_t *ctx, void (*done)(void *ud), void *ud)
{
    hr_ops_t *o = ctx->ops_state;
    if (!o) {
        later_t *l = hr_xcalloc(1, sizeof *l);
        l->done = done;
        l->ud = ud;
        uv_timer_init(ctx->loop, &l->t);
        uv_close((uv_handle_t *)&l->t, later_closed);
        return;
    }
    o->closing = 1;
    o->done = done;
    o->done_ud = ud;
    uv_timer_stop(&o->ready_timer);
    if (o->ping) {
        answer_ready(o->ping, HR_ECANCELED, "herald is stopping");
        o->ping = NULL;
    }
    answer_scrapes(o);
    maybe_finish(o);
}
