/* pg_stream.c: the PostgreSQL side of GraphQL — the stream horizon, stream reads, and events
 * filtered by a `where` (store.h).
 *
 * The stable horizon. A seq is taken (nextval) when a log row is written and becomes visible at
 * commit, so a lower seq can appear after a higher one (DESIGN.md 3.2): a stream that said "I
 * have everything up to 11" could later see 10. The horizon H is the highest seq such that
 * every seq <= H is visible or will never exist; a stream reads only up to H, so it never skips
 * and never repeats. It is computed from probes, one statement each, that return the
 * sequence's last value L (non-transactional: it counts transactions still running) and the
 * set of transaction ids running now (each transaction that has an xid holds an exclusive lock
 * on it: pg_locks), and tell whether any xid of a given set still runs:
 *
 *   probe k:    L_k > H becomes the candidate
 *   probe k+1:  the candidate's set V := the xids running now
 *   probe m:    when no xid of V runs any more, H := L_k (and the next candidate starts)
 *
 * A transaction that took a seq <= L_k did so before probe k read L_k, so before probe k+1; it
 * is in V unless it has ended (then its rows are visible, or rolled back for good) or it had no
 * xid yet at probe k+1. That is the window left open: a log row's seq and its xid come from two
 * default expressions of one INSERT (and capture runs after the application's own write, which
 * already assigned the xid), so only herald.emit or invoke as the very first write of a
 * transaction, descheduled between those two expressions for longer than a probe interval
 * (>= 5 ms), could be streamed late — then streams already past it skip it; delivery never
 * does (the dispatcher's snapshot ranges have no such window). Prepared transactions keep their
 * lock and count as running.
 *
 * Why not snapshots (pgq's xmin/xmax): a snapshot's xmax is the latest completed xid + 1, not
 * the next xid to assign, and running xids at or above it are in neither xip nor xmin — a
 * transaction can hold a seq and be invisible to every snapshot's bookkeeping (measured here:
 * a 100-row emit transaction in flight, a probe saw xmin = xmax = its own xid). Read-only
 * transactions have no xid and hold the horizon back for nobody.
 *
 * The probes run on the store's asynchronous connection (the dispatcher's): one query per tick
 * for every subscriber together, and the reads are primary-key range scans, small beside the
 * dispatcher's own traffic, which a second connection would not make cheaper. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"
#include "store/where_int.h"

/* The columns of hr_pg_event_json. */
#define EVENT_COLS                                                                                 \
    "l.seq, l.id::text, to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"    \
    " l.source, l.op, l.old::text, l.new::text, l.session::text"

struct hr_pg_stream {
    int64_t horizon;
    int64_t candidate; /* the next horizon once `running` has ended; 0: none */
    char *running;     /* text[] literal of the xids running after the candidate was read;
                          NULL until the probe after it answered */
};

void hr_pg_stream_free(hr_pg_stream_t *s)
{
    if (!s) return;
    free(s->running);
    free(s);
}

typedef struct probe {
    hr_store_t *st;
    void (*cb)(void *ud, int rc, int64_t horizon);
    void (*read_cb)(void *ud, int rc, json_t *events, const char *errmsg);
    void *ud;
} probe_t;

static void on_probe(void *ud, int rc, PGresult *res, const char *msg)
{
    (void)msg;
    probe_t *p = ud;
    hr_pg_stream_t **slot = hr_pg_stream_slot(p->st);
    if (!*slot) *slot = hr_xcalloc(1, sizeof **slot);
    hr_pg_stream_t *s = *slot;
    if (!rc && PQntuples(res) == 1) {
        int64_t last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        const char *now_running = PQgetvalue(res, 0, 1);
        int still = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
        if (s->candidate && s->running && !still) {
            /* Every transaction that could hold a seq <= candidate has ended. */
            if (s->candidate > s->horizon) s->horizon = s->candidate;
            s->candidate = 0;
            free(s->running);
            s->running = NULL;
        } else if (s->candidate && !s->running) {
            s->running = hr_xstrdup(now_running);
        }
        if (!s->candidate && last > s->horizon) s->candidate = last; /* set on the next probe */
    }
    if (res) PQclear(res);
    p->cb(p->ud, rc, rc ? -1 : s->horizon);
    free(p);
}

int hr_pg_stream_horizon(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t horizon), void *ud)
{
    hr_pgconn_t *c = hr_pg_async(st);
    if (!c) return HR_EINVAL;
    hr_pg_stream_t *s = *hr_pg_stream_slot(st);
    probe_t *p = hr_xcalloc(1, sizeof *p);
    p->st = st;
    p->cb = cb;
    p->ud = ud;
    const char *params[] = {s && s->candidate ? s->running : NULL};
    int rc = hr_pgconn_query_stmt(
        c, "hr_stream_probe",
        "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('herald.log', 'seq')"
        "::regclass), 0),"
        " (SELECT coalesce(array_agg(transactionid::text), '{}') FROM pg_locks"
        "  WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted"
        "  AND pid IS DISTINCT FROM pg_backend_pid())::text,"
        " $1::text[] IS NOT NULL AND EXISTS (SELECT 1 FROM pg_locks"
        "  WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted"
        "  AND transactionid::text = ANY ($1::text[]))",
        1, params, on_probe, p);
    if (rc) free(p);
    return rc;
}

static void on_read(void *ud, int rc, PGresult *res, const char *msg)
{
    probe_t *p = ud;
    json_t *arr = NULL;
    if (!rc) {
        arr = json_array();
        for (int i = 0; i < PQntuples(res); i++)
            json_array_append_new(arr, hr_pg_event_json(res, i, 0));
    }
    if (res) PQclear(res);
    p->read_cb(p->ud, rc, arr, rc ? msg : NULL);
    json_decref(arr);
    free(p);
}

int hr_pg_stream_read(hr_store_t *st, int64_t after, int64_t upto, size_t limit,
                      void (*cb)(void *ud, int rc, json_t *events, const char *errmsg), void *ud)
{
    hr_pgconn_t *c = hr_pg_async(st);
    if (!c) return HR_EINVAL;
    probe_t *p = hr_xcalloc(1, sizeof *p);
    p->st = st;
    p->read_cb = cb;
    p->ud = ud;
    char a[24], u[24], l[24];
    snprintf(a, sizeof a, "%" PRId64, after);
    snprintf(u, sizeof u, "%" PRId64, upto);
    snprintf(l, sizeof l, "%zu", limit);
    const char *params[] = {a, u, l};
    int rc = hr_pgconn_query_stmt(c, "hr_stream_read",
                                  "SELECT " EVENT_COLS " FROM herald.log l WHERE l.seq > $1::bigint"
                                  " AND l.seq <= $2::bigint ORDER BY l.seq LIMIT $3::bigint",
                                  3, params, on_read, p);
    if (rc) free(p);
    return rc;
}

int hr_pg_query_events(hr_store_t *st, const json_t *where, const json_t *order_by, int limit,
                       int offset, json_t **out, hr_err_t *err)
{
    hr_err_t local = {0};
    if (!err) err = &local;
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) return HR_EDB;
    int rc = hr_pg_require_schema(conn, err);
    if (rc) return rc;
    hr_wsql_t w;
    hr_wsql_init(&w, 1);
    hr_buf_puts(&w.sql, "SELECT " EVENT_COLS " FROM herald.log l WHERE ");
    if ((rc = hr_wsql_where(&w, where, err)) || (rc = hr_wsql_order(&w, order_by, err))) goto out;
    hr_buf_puts(&w.sql, " LIMIT ");
    hr_wsql_int(&w, limit);
    hr_buf_puts(&w.sql, " OFFSET ");
    hr_wsql_int(&w, offset > 0 ? offset : 0);
    const char **params = hr_xcalloc(w.n + 1, sizeof *params);
    for (size_t i = 0; i < w.n; i++)
        params[i] = w.p[i].s;
    PGresult *r = hr_pg_exec(conn, w.sql.data, (int)w.n, params, err, "listing events");
    free(params);
    if (!r) {
        rc = err->code;
        goto out;
    }
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(arr, hr_pg_event_json(r, i, 0));
    PQclear(r);
    *out = arr;
out:
    hr_wsql_free(&w);
    return rc;
}
