/* pg_stream.c: the PostgreSQL side of GraphQL — the stream horizon, stream reads, and events
 * filtered by a `where` (store.h).
 *
 * The stable horizon. A seq is taken (nextval) when a log row is written and becomes visible at
 * commit, so a lower seq can appear after a higher one (DESIGN.md 3.2): a stream that said "I
 * have everything up to 11" could later see 10. The horizon H is the highest seq such that
 * every seq <= H is visible or will never exist; a stream reads only up to H, so it never skips
 * and never repeats. It is computed the way pgq closes its ticks, from probes, each one
 * statement that returns the sequence's last value L (non-transactional: it counts transactions
 * still running) and the xmin and xmax of a snapshot:
 *
 *   probe k:    (L_k, xmin_k, xmax_k)
 *   candidate:  L_k, with the bound B = xmax_{k+1} of the *next* probe
 *   stable:     when a later probe has xmin >= B, every transaction that held an xid when probe
 *               k+1 was taken has ended; H := L_k.
 *
 * A transaction that took a seq <= L_k did so before probe k read L_k, so before probe k+1
 * began; it had an xid by then unless it stalled between nextval and the assignment of its xid
 * for the whole interval between two probes. That is the window left open: a log row's seq and
 * its xid come from two default expressions of the same INSERT (and capture runs after the
 * application's own write, which already assigned the xid), so only herald.emit or invoke as
 * the very first write of a transaction, descheduled between those two expressions for longer
 * than a probe interval (>= 5 ms), could be streamed late — never lost: a stream reading later
 * than that never sees it. The dispatcher's snapshot-range reader has no such window.
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

/* Candidates waiting to become the horizon; more are merged into the last (a later L with a
 * later bound is still safe, only later). */
#define MAX_CANDIDATES 8

typedef struct candidate {
    int64_t seq;    /* L_k */
    uint64_t bound; /* xmax of the probe after k; 0 until that probe answered */
} candidate_t;

struct hr_pg_stream {
    int64_t horizon;
    candidate_t q[MAX_CANDIDATES];
    size_t n;
};

void hr_pg_stream_free(hr_pg_stream_t *s)
{
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
        uint64_t xmin = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
        uint64_t xmax = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
        /* This probe's xmax bounds the previous candidate. */
        if (s->n && s->q[s->n - 1].bound == 0) s->q[s->n - 1].bound = xmax;
        /* Candidates whose bound every running transaction has passed are stable. */
        size_t k = 0;
        while (k < s->n && s->q[k].bound && xmin >= s->q[k].bound) {
            if (s->q[k].seq > s->horizon) s->horizon = s->q[k].seq;
            k++;
        }
        memmove(s->q, s->q + k, (s->n - k) * sizeof s->q[0]);
        s->n -= k;
        int64_t top = s->n ? s->q[s->n - 1].seq : s->horizon;
        if (last > top) {
            /* Full: the new candidate replaces the last one (larger and bounded later, so the
             * last one's events wait for it: later, never unsafe). */
            if (s->n == MAX_CANDIDATES) s->n--;
            s->q[s->n++] = (candidate_t){.seq = last, .bound = 0};
        }
    }
    if (res) PQclear(res);
    p->cb(p->ud, rc, rc ? -1 : s->horizon);
    free(p);
}

int hr_pg_stream_horizon(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t horizon), void *ud)
{
    hr_pgconn_t *c = hr_pg_async(st);
    if (!c) return HR_EINVAL;
    probe_t *p = hr_xcalloc(1, sizeof *p);
    p->st = st;
    p->cb = cb;
    p->ud = ud;
    int rc = hr_pgconn_query_stmt(
        c, "hr_stream_probe",
        "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('herald.log', 'seq')"
        "::regclass), 0), pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text"
        " FROM pg_current_snapshot() s",
        0, NULL, on_probe, p);
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
