/* pg_ops.c: the operator operations of the PostgreSQL backend (emit, invoke, redeliver, replay,
 * status, events, event, attempts; see store.h). All run on the blocking admin connection; each
 * write is one transaction.
 *
 * Queuing. Invoke, redeliver and replay never move a cursor: they upsert rows of herald.delayed
 * (attempts 0, not dead, due now), which the dispatcher's retry pipeline delivers with
 * current_retry 0. An idle trigger looks at its delayed queue every second, so a running
 * `herald serve` picks them up without being told. Replayed rows are due one microsecond apart
 * in seq order, so that the dispatcher (which reads due rows by due_at) sends them in log order.
 *
 * Which events a trigger "matches" is decided in SQL, the same way the dispatcher decides:
 *   - table triggers: source = the table's source string and op among its INSERT/UPDATE/DELETE;
 *     with columns set, an UPDATE only when one of them differs between old and new
 *     (old->c IS DISTINCT FROM new->c: absent on both sides is unchanged);
 *   - events triggers: op EMIT and the type equal to an entry, or LIKE an entry's prefix.
 *   - schedules: op CRON and source = the schedule's name.
 * MANUAL events match no filter: they belong to the one trigger invoke queued them for.
 *
 * "After the cursor" is the reader's snapshot-range rule (store_pg.c): an event whose xid is not
 * visible in lo and (not visible in hi, or (xid, seq) > (last_xid, last_seq)). Those events are
 * still to be read by the trigger; replay leaves them to the reader (they would otherwise be
 * delivered twice), status counts them as backlog.
 *
 * Delivery state of an event for a trigger (events and event):
 *     dead       its delayed row is dead
 *     retrying   its delayed row is not dead and attempts > 0
 *     pending    its delayed row has attempts 0 (invoke, redeliver, replay), or it has no
 *                delayed row and no 2xx attempt (not read by the cursor yet)
 *     delivered  no delayed row and a 2xx attempt
 * "attempts" counts every recorded attempt of that trigger for the event; "last_error" is the
 * error of the latest attempt (null when it succeeded); "delivered_at" is the time of the latest
 * 2xx attempt, even when the event is queued again.
 *
 * JSON. Rows are turned into jansson values here. old, new and session are parsed one by one.
 * jansson cannot hold integers beyond 64 bits (a numeric column can): such an integer is read
 * as a real (lossy, only that number; every other integer stays exact). Non-integer numbers are
 * doubles. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"
#include "store/pg_int.h"
#include "core/text.h"

#define TS(x) "to_char(" x " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The event columns, alias l: 0 seq, 1 id, 2 created_at, 3 source, 4 op, 5 old, 6 new,
 * 7 session. */
#define EVENT_COLS                                                                                 \
    "l.seq, l.id::text, " TS("l.at") ", l.source, l.op, l.old::text, l.new::text, l.session::text"
#define NEVENT_COLS 8

/* The delivery columns for one trigger, from the delayed row d and the attempts summary a:
 * 0 state, 1 attempts, 2 next_attempt_at, 3 last_error, 4 delivered_at. */
#define DELIVERY_COLS                                                                              \
    "CASE WHEN d.dead THEN 'dead' WHEN d.attempts > 0 THEN 'retrying'"                             \
    " WHEN d.seq IS NOT NULL THEN 'pending' WHEN a.ok_at IS NOT NULL THEN 'delivered'"             \
    " ELSE 'pending' END, coalesce(a.n, 0),"                                                       \
    " CASE WHEN d.seq IS NOT NULL AND NOT d.dead THEN " TS("d.due_at") " END,"                     \
                                                                       " a.last_error, " TS(       \
                                                                           "a.ok_at")

/* The attempts summary a of trigger T (an SQL expression) for the event l. */
#define ATTEMPTS_OF(T)                                                                             \
    "LEFT JOIN LATERAL (SELECT count(*) AS n,"                                                     \
    " max(x.at) FILTER (WHERE x.status BETWEEN 200 AND 299) AS ok_at,"                             \
    " (array_agg(x.error ORDER BY x.id DESC))[1] AS last_error"                                    \
    " FROM herald.attempts x WHERE x.event_id = l.id AND x.trigger = " T ") a ON true"

/* Events of the log l after the cursor c (a row of herald.cursors). NULL when c is NULL. */
#define AFTER_CURSOR                                                                               \
    "(l.xid >= pg_snapshot_xmin(c.lo) AND NOT pg_visible_in_snapshot(l.xid, c.lo)"                 \
    " AND (NOT pg_visible_in_snapshot(l.xid, c.hi) OR (l.xid, l.seq) > (c.last_xid, c.last_seq)))"

/* An upsert of delayed rows: due now, attempts 0, alive. last_error stays for the record. */
#define REQUEUE                                                                                    \
    " ON CONFLICT (trigger, seq) DO UPDATE SET attempts = 0, due_at = excluded.due_at,"            \
    " dead = false, updated_at = now()"

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

/* Text parameters of a statement under construction; $n is index n - 1. */
typedef struct params {
    char *v[16];
    int n;
} params_t;

static int padd(params_t *p, const char *s)
{
    if (p->n >= (int)(sizeof p->v / sizeof p->v[0])) abort(); /* a bug, never input */
    p->v[p->n++] = hr_xstrdup(s);
    return p->n;
}

static void pfree(params_t *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->v[i]);
    p->n = 0;
}

static PGresult *pexec(PGconn *conn, const hr_buf_t *sql, const params_t *p, hr_err_t *err,
                       const char *what)
{
    return hr_pg_exec(conn, sql->data, p->n, (const char *const *)p->v, err, what);
}

void hr_pg_text_array(const char *const *v, size_t n, hr_buf_t *out)
{
    hr_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        hr_buf_puts(out, i ? ",\"" : "\"");
        for (const char *s = v[i]; *s; s++) {
            if (*s == '"' || *s == '\\') hr_buf_putc(out, '\\');
            hr_buf_putc(out, *s);
        }
        hr_buf_putc(out, '"');
    }
    hr_buf_putc(out, '}');
}

/* Appends the condition "event l is one that t delivers" (see the top of this file). */
static void filter_sql(const hr_trigger_def_t *t, params_t *p, hr_buf_t *sql)
{
    hr_buf_t a = HR_BUF_INIT, b = HR_BUF_INIT;
    hr_pg_filter_params(t, &a, &b);
    int ia = padd(p, a.data), ib = padd(p, b.data);
    hr_buf_free(&a);
    hr_buf_free(&b);
    if (!t->table && !t->cron) {
        hr_buf_printf(sql,
                      "(l.op = 'EMIT' AND (l.source = ANY ($%d::text[])"
                      " OR l.source LIKE ANY ($%d::text[])))",
                      ia, ib);
        return;
    }
    hr_buf_printf(sql, "(l.source = $%d AND l.op = ANY ($%d::text[])", ia, ib);
    if (t->ncolumns) {
        hr_buf_t c = HR_BUF_INIT;
        hr_pg_text_array((const char *const *)t->columns, t->ncolumns, &c);
        int ic = padd(p, c.data);
        hr_buf_free(&c);
        hr_buf_printf(sql,
                      " AND (l.op <> 'UPDATE' OR EXISTS (SELECT 1 FROM unnest($%d::text[]) k(c)"
                      " WHERE (l.old -> k.c)::jsonb IS DISTINCT FROM (l.new -> k.c)::jsonb))",
                      ic);
    }
    hr_buf_putc(sql, ')');
}

static json_t *str_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static json_t *int_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null()
                                    : json_integer(strtoll(PQgetvalue(r, row, col), NULL, 10));
}

static json_t *real_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null()
                                    : json_real(strtod(PQgetvalue(r, row, col), NULL));
}

/* The event object of row `row`, whose event columns start at c0. */
json_t *hr_pg_event_json(PGresult *r, int row, int c0)
{
#define V(k) (PQgetisnull(r, row, c0 + (k)) ? NULL : PQgetvalue(r, row, c0 + (k)))
    json_t *e = json_object();
    json_object_set_new(e, "id", str_or_null(r, row, c0 + 1));
    json_object_set_new(e, "seq", int_or_null(r, row, c0));
    json_object_set_new(e, "created_at", str_or_null(r, row, c0 + 2));
    json_object_set_new(e, "source", str_or_null(r, row, c0 + 3));
    json_object_set_new(e, "op", str_or_null(r, row, c0 + 4));
    json_t *data = json_object();
    json_object_set_new(data, "old", hr_json_from_db(V(5)));
    json_object_set_new(data, "new", hr_json_from_db(V(6)));
    json_object_set_new(e, "data", data);
    json_object_set_new(e, "session_variables", hr_json_from_db(V(7)));
#undef V
    return e;
}

/* The delivery object for trigger `name` from DELIVERY_COLS starting at column c0. */
static json_t *delivery_json(const char *name, PGresult *r, int row, int c0)
{
    json_t *d = json_object();
    json_object_set_new(d, "trigger", json_string(name));
    json_object_set_new(d, "state", json_string(PQgetvalue(r, row, c0)));
    json_object_set_new(d, "attempts", int_or_null(r, row, c0 + 1));
    json_object_set_new(d, "next_attempt_at", str_or_null(r, row, c0 + 2));
    json_object_set_new(d, "last_error", str_or_null(r, row, c0 + 3));
    json_object_set_new(d, "delivered_at", str_or_null(r, row, c0 + 4));
    return d;
}

/* Attempt rows: 0 id, 1 trigger, 2 event_id, 3 seq, 4 attempt, 5 at, 6 status, 7 latency_ms,
 * 8 error, 9 response. */
#define ATTEMPT_COLS                                                                               \
    "x.id, x.trigger, x.event_id::text, x.seq, x.attempt, " TS(                                    \
        "x.at") ", x.status, round(x.latency_ms::numeric, 3), x.error, x.response"

static json_t *attempt_json(PGresult *r, int row)
{
    json_t *a = json_object();
    json_object_set_new(a, "id", int_or_null(r, row, 0));
    json_object_set_new(a, "trigger", json_string(PQgetvalue(r, row, 1)));
    json_object_set_new(a, "event_id", json_string(PQgetvalue(r, row, 2)));
    json_object_set_new(a, "seq", int_or_null(r, row, 3));
    json_object_set_new(a, "attempt", int_or_null(r, row, 4));
    json_object_set_new(a, "at", str_or_null(r, row, 5));
    json_object_set_new(a, "status", int_or_null(r, row, 6));
    json_object_set_new(a, "latency_ms", real_or_null(r, row, 7));
    json_object_set_new(a, "error", str_or_null(r, row, 8));
    json_object_set_new(a, "response", str_or_null(r, row, 9));
    return a;
}

/* Every public function works with err == NULL: it then records into a local one. */
#define ERR_LOCAL                                                                                  \
    hr_err_t err_local_ = {0};                                                                     \
    if (!err) err = &err_local_

/* Opens the admin connection and checks herald's schema. */
static PGconn *ready(hr_store_t *st, hr_err_t *err, int *rc)
{
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) {
        *rc = HR_EDB;
        return NULL;
    }
    *rc = hr_pg_require_schema(conn, err);
    return *rc ? NULL : conn;
}

static int begin(PGconn *conn, hr_err_t *err)
{
    return hr_pg_cmd(conn, "BEGIN", err, "starting a transaction");
}

static int finish(PGconn *conn, int rc, hr_err_t *err)
{
    if (rc) {
        hr_pg_cmd(conn, "ROLLBACK", NULL, "rolling back");
        return rc;
    }
    return hr_pg_cmd(conn, "COMMIT", err, "committing");
}

static int clamp_limit(int limit)
{
    return limit > 0 ? limit : 100;
}

/* ------------------------------------------------------------------------------------------ */
/* Writes                                                                                     */

int hr_pg_emit(hr_store_t *st, const char *type, const char *payload_json, char id_out[40],
               hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    if (!type || !*type) return hr_err_set(err, HR_EINVAL, "the event type must not be empty");
    const char *p[] = {type, payload_json ? payload_json : "null"};
    PGresult *r = hr_pg_exec(conn, "SELECT herald.emit($1, $2::jsonb)::text", 2, p, err,
                             "emitting the event");
    if (!r) return err->code;
    snprintf(id_out, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int hr_pg_invoke(hr_store_t *st, const char *trigger, const char *payload_json, char id_out[40],
                 hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    hr_trigger_def_t t;
    int have_def = 0;
    hr_buf_t src = HR_BUF_INIT;
    if ((rc = begin(conn, err))) return rc;
    if ((rc = hr_pg_load_def(conn, trigger, 1, &t, err))) goto out;
    have_def = 1;
    if (!t.table || !(t.ops & HR_OP_MANUAL)) {
        rc = hr_err_set(err, HR_EINVAL,
                        "trigger %s does not allow manual events (operations: "
                        "manual is not set)",
                        trigger);
        goto out;
    }
    hr_capture_source(t.schema, t.table, &src);
    const char *p[] = {src.data, payload_json ? payload_json : "null", trigger};
    PGresult *r =
        hr_pg_exec(conn,
                   "WITH e AS (INSERT INTO herald.log (source, op, new)"
                   " VALUES ($1, 'MANUAL', $2::json) RETURNING seq, id)"
                   " INSERT INTO herald.delayed (trigger, seq, event_id, attempts, due_at)"
                   " SELECT $3::text, seq, id, 0, now() FROM e RETURNING event_id::text",
                   3, p, err, "queuing the manual event");
    if (!r) {
        rc = err->code;
        goto out;
    }
    snprintf(id_out, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
out:
    hr_buf_free(&src);
    if (have_def) hr_trigger_def_clear(&t);
    return finish(conn, rc, err);
}

/* Queues event (seq, id) again for trigger t, which must be one that delivers it: its filter
 * matches, or it already has attempts or a delayed row for it (MANUAL events). */
static int redeliver_one(PGconn *conn, const hr_trigger_def_t *t, const char *seq, const char *id,
                         hr_err_t *err)
{
    params_t p = {0};
    hr_buf_t sql = HR_BUF_INIT;
    int is = padd(&p, seq), it = padd(&p, t->name);
    hr_buf_printf(&sql,
                  "INSERT INTO herald.delayed (trigger, seq, event_id, attempts, due_at, dead)"
                  " SELECT $%d::text, l.seq, l.id, 0, now(), false FROM herald.log l"
                  " WHERE l.seq = $%d::bigint AND (EXISTS (SELECT 1 FROM herald.attempts x"
                  " WHERE x.event_id = l.id AND x.trigger = $%d) OR EXISTS (SELECT 1 FROM"
                  " herald.delayed y WHERE y.trigger = $%d AND y.seq = l.seq) OR ",
                  it, is, it, it);
    filter_sql(t, &p, &sql);
    hr_buf_puts(&sql, ")" REQUEUE);
    PGresult *r = pexec(conn, &sql, &p, err, "queuing the event");
    int rc = r ? 0 : err->code;
    if (r && strcmp(PQcmdTuples(r), "0") == 0)
        rc =
            hr_err_set(err, HR_EINVAL, "event %s is not one that trigger %s delivers", id, t->name);
    PQclear(r);
    pfree(&p);
    hr_buf_free(&sql);
    return rc;
}

int hr_pg_redeliver(hr_store_t *st, const char *event_id, const char *trigger, int *queued,
                    hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    *queued = 0;
    if ((rc = begin(conn, err))) return rc;
    const char *p[] = {event_id};
    PGresult *r = hr_pg_exec(conn, "SELECT seq::text FROM herald.log WHERE id = $1::uuid", 1, p,
                             err, "looking up the event");
    char seq[32] = "";
    if (!r) {
        rc = err->code;
        goto out;
    }
    if (PQntuples(r) == 0)
        rc = hr_err_set(err, HR_ENOTFOUND, "event %s not found", event_id);
    else
        snprintf(seq, sizeof seq, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (rc) goto out;
    if (trigger) {
        hr_trigger_def_t t;
        if ((rc = hr_pg_load_def(conn, trigger, 1, &t, err))) goto out;
        rc = redeliver_one(conn, &t, seq, event_id, err);
        hr_trigger_def_clear(&t);
        if (!rc) *queued = 1;
        goto out;
    }
    /* Every existing trigger that has attempts or a delayed row for the event. */
    const char *q[] = {event_id, seq};
    r = hr_pg_exec(conn,
                   "INSERT INTO herald.delayed (trigger, seq, event_id, attempts, due_at, dead)"
                   " SELECT t.name, $2::bigint, $1::uuid, 0, now(), false FROM (SELECT name FROM"
                   " herald.triggers UNION ALL SELECT '" HR_ONE_OFF_TRIGGER "') t"
                   " WHERE t.name IN (SELECT trigger FROM herald.attempts WHERE event_id = $1::uuid"
                   " UNION SELECT trigger FROM herald.delayed WHERE seq = $2::bigint)" REQUEUE,
                   2, q, err, "queuing the event");
    if (!r) {
        rc = err->code;
        goto out;
    }
    *queued = atoi(PQcmdTuples(r));
    PQclear(r);
    if (*queued == 0)
        rc = hr_err_set(err, HR_ENOTFOUND,
                        "no trigger has attempted or queued event %s yet: name one with --trigger",
                        event_id);
out:
    if (rc) *queued = 0;
    return finish(conn, rc, err);
}

int hr_pg_replay(hr_store_t *st, const char *trigger, const hr_replay_range_t *range,
                 int64_t *queued, hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    *queued = 0;
    hr_trigger_def_t t;
    int have_def = 0;
    params_t p = {0};
    hr_buf_t sql = HR_BUF_INIT;
    if ((rc = begin(conn, err))) return rc;
    if ((rc = hr_pg_load_def(conn, trigger, 1, &t, err))) goto out;
    have_def = 1;
    int it = padd(&p, trigger);
    hr_buf_printf(&sql,
                  "INSERT INTO herald.delayed (trigger, seq, event_id, attempts, due_at, dead)"
                  " SELECT $%d::text, l.seq, l.id, 0,"
                  " now() + row_number() OVER (ORDER BY l.seq) * interval '1 microsecond', false"
                  " FROM herald.log l LEFT JOIN herald.cursors c ON c.trigger = $%d WHERE ",
                  it, it);
    filter_sql(&t, &p, &sql);
    hr_buf_puts(&sql, " AND NOT coalesce(" AFTER_CURSOR ", false)");
    char num[32];
    if (range->from_seq > 0) {
        snprintf(num, sizeof num, "%" PRId64, range->from_seq);
        hr_buf_printf(&sql, " AND l.seq >= $%d::bigint", padd(&p, num));
    }
    if (range->to_seq > 0) {
        snprintf(num, sizeof num, "%" PRId64, range->to_seq);
        hr_buf_printf(&sql, " AND l.seq <= $%d::bigint", padd(&p, num));
    }
    if (range->from_time)
        hr_buf_printf(&sql, " AND l.at >= $%d::timestamptz", padd(&p, range->from_time));
    if (range->to_time)
        hr_buf_printf(&sql, " AND l.at < $%d::timestamptz", padd(&p, range->to_time));
    hr_buf_puts(&sql, REQUEUE);
    PGresult *r = pexec(conn, &sql, &p, err, "queuing the range");
    if (!r) {
        rc = err->code;
        goto out;
    }
    *queued = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
out:
    if (have_def) hr_trigger_def_clear(&t);
    pfree(&p);
    hr_buf_free(&sql);
    if (rc) *queued = 0;
    return finish(conn, rc, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Reports                                                                                    */

/* Loads every valid stored definition (invalid ones are skipped: they deliver nothing). */
static int load_all(PGconn *conn, hr_trigger_def_t **out, size_t *nout, hr_err_t *err)
{
    PGresult *r = hr_pg_exec(conn, "SELECT definition::text FROM herald.triggers ORDER BY name", 0,
                             NULL, err, "reading trigger definitions");
    if (!r) return HR_EDB;
    size_t n = (size_t)PQntuples(r), k = 0;
    hr_trigger_def_t *defs = hr_xcalloc(n + 1, sizeof *defs);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_loads(PQgetvalue(r, (int)i, 0), 0, NULL);
        if (j && hr_trigger_def_from_json(j, &defs[k], NULL) == 0) k++;
        json_decref(j);
    }
    PQclear(r);
    *out = defs;
    *nout = k;
    return 0;
}

static void free_defs(hr_trigger_def_t *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hr_trigger_def_clear(&defs[i]);
    free(defs);
}

/* One row of the status report. */
static int status_of(PGconn *conn, const hr_trigger_def_t *t, json_t *out, hr_err_t *err)
{
    params_t p = {0};
    hr_buf_t sql = HR_BUF_INIT;
    int it = padd(&p, t->name);
    hr_buf_printf(
        &sql,
        "SELECT (SELECT count(*) FROM herald.delayed WHERE trigger = $%d AND NOT dead),"
        " (SELECT count(*) FROM herald.delayed WHERE trigger = $%d AND dead),"
        " (SELECT " TS(
            "x.at") " FROM herald.attempts x WHERE x.trigger = $%d"
                    "  AND x.status BETWEEN 200 AND 299 ORDER BY x.id DESC LIMIT 1),"
                    " b.n, round(extract(epoch FROM now() - b.oldest)::numeric, 3)"
                    " FROM (SELECT count(*) AS n, min(l.at) AS oldest FROM herald.cursors c"
                    "  JOIN herald.log l ON " AFTER_CURSOR " AND ",
        it, it, it);
    filter_sql(t, &p, &sql);
    hr_buf_printf(&sql, " WHERE c.trigger = $%d) b", it);
    PGresult *r = pexec(conn, &sql, &p, err, "computing the status");
    pfree(&p);
    hr_buf_free(&sql);
    if (!r) return HR_EDB;
    json_t *o = json_object();
    json_object_set_new(o, "trigger", json_string(t->name));
    json_object_set_new(o, "backlog", int_or_null(r, 0, 3));
    json_object_set_new(o, "delayed", int_or_null(r, 0, 0));
    json_object_set_new(o, "dead", int_or_null(r, 0, 1));
    json_object_set_new(o, "last_delivery_at", str_or_null(r, 0, 2));
    json_object_set_new(o, "lag_seconds", real_or_null(r, 0, 4));
    json_array_append_new(out, o);
    PQclear(r);
    return 0;
}

int hr_pg_status(hr_store_t *st, json_t **out, hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    hr_trigger_def_t *defs = NULL;
    size_t n = 0;
    json_t *arr = json_array();
    /* One snapshot for the whole report. */
    if ((rc = hr_pg_cmd(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
                        "starting a transaction")))
        goto done;
    if ((rc = load_all(conn, &defs, &n, err))) goto out;
    for (size_t i = 0; i < n && !rc; i++)
        rc = status_of(conn, &defs[i], arr, err);
out:
    rc = finish(conn, rc, err);
done:
    free_defs(defs, n);
    if (rc)
        json_decref(arr);
    else
        *out = arr;
    return rc;
}

int hr_pg_events(hr_store_t *st, const hr_event_query_t *q, json_t **out, hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    if (q->pending_only && !q->trigger)
        return hr_err_set(err, HR_EINVAL, "listing pending events needs a trigger");
    hr_trigger_def_t t;
    int have_def = 0;
    params_t p = {0};
    hr_buf_t sql = HR_BUF_INIT;
    PGresult *r = NULL;
    char num[24];
    if (q->trigger) {
        if ((rc = hr_pg_load_def(conn, q->trigger, 0, &t, err))) return rc;
        have_def = 1;
        int it = padd(&p, q->trigger);
        /* The trigger's events: those it attempted or queued, and those after its cursor that
         * it will read (events before its start are not its own). */
        hr_buf_printf(
            &sql,
            "SELECT " EVENT_COLS ", " DELIVERY_COLS " FROM herald.log l"
            " LEFT JOIN herald.cursors c ON c.trigger = $%d"
            " LEFT JOIN herald.delayed d ON d.trigger = $%d AND d.seq = l.seq " ATTEMPTS_OF(
                "$%d") " WHERE (d.seq IS NOT NULL OR a.n > 0 OR (" AFTER_CURSOR " AND ",
            it, it, it);
        filter_sql(&t, &p, &sql);
        hr_buf_puts(&sql, "))");
        if (q->dead_only) hr_buf_puts(&sql, " AND d.dead");
        if (q->pending_only)
            hr_buf_puts(&sql, " AND NOT coalesce(d.dead, false)"
                              " AND (d.seq IS NOT NULL OR a.ok_at IS NULL)");
    } else {
        hr_buf_puts(&sql, "SELECT " EVENT_COLS " FROM herald.log l");
        if (q->dead_only)
            hr_buf_puts(&sql, " WHERE l.seq IN (SELECT seq FROM herald.delayed WHERE dead)");
    }
    snprintf(num, sizeof num, "%d", clamp_limit(q->limit));
    int il = padd(&p, num);
    snprintf(num, sizeof num, "%d", q->offset > 0 ? q->offset : 0);
    int io = padd(&p, num);
    hr_buf_printf(&sql, " ORDER BY l.seq DESC LIMIT $%d::bigint OFFSET $%d::bigint", il, io);
    r = pexec(conn, &sql, &p, err, "listing events");
    if (!r) {
        rc = err->code;
        goto out;
    }
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *e = hr_pg_event_json(r, i, 0);
        if (q->trigger) {
            json_t *ds = json_array();
            json_array_append_new(ds, delivery_json(q->trigger, r, i, NEVENT_COLS));
            json_object_set_new(e, "deliveries", ds);
        }
        json_array_append_new(arr, e);
    }
    PQclear(r);
    *out = arr;
out:
    if (have_def) hr_trigger_def_clear(&t);
    pfree(&p);
    hr_buf_free(&sql);
    return rc;
}

int hr_pg_event(hr_store_t *st, const char *event_id, int attempts_limit, int attempts_offset,
                json_t **out, hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    json_t *e = NULL;
    PGresult *r = NULL;
    if ((rc = hr_pg_cmd(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err,
                        "starting a transaction")))
        return rc;
    const char *p[] = {event_id};
    r = hr_pg_exec(conn, "SELECT " EVENT_COLS " FROM herald.log l WHERE l.id = $1::uuid", 1, p, err,
                   "looking up the event");
    if (!r) {
        rc = err->code;
        goto out;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        rc = hr_err_set(err, HR_ENOTFOUND, "event %s not found", event_id);
        goto out;
    }
    e = hr_pg_event_json(r, 0, 0);
    char seq[32];
    snprintf(seq, sizeof seq, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);

    const char *q[] = {event_id, seq};
    r = hr_pg_exec(
        conn,
        "SELECT t.trigger, " DELIVERY_COLS " FROM (SELECT trigger FROM herald.attempts"
        " WHERE event_id = $1::uuid UNION SELECT trigger FROM herald.delayed"
        " WHERE seq = $2::bigint) t"
        " JOIN herald.log l ON l.seq = $2::bigint"
        " LEFT JOIN herald.delayed d ON d.trigger = t.trigger AND d.seq = l.seq " ATTEMPTS_OF(
            "t.trigger") " ORDER BY t.trigger",
        2, q, err, "reading the event's deliveries");
    if (!r) {
        rc = err->code;
        goto out;
    }
    json_t *ds = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(ds, delivery_json(PQgetvalue(r, i, 0), r, i, 1));
    json_object_set_new(e, "deliveries", ds);
    PQclear(r);

    char lim[24], off[24];
    snprintf(lim, sizeof lim, "%d", clamp_limit(attempts_limit));
    snprintf(off, sizeof off, "%d", attempts_offset > 0 ? attempts_offset : 0);
    const char *a[] = {event_id, lim, off};
    r = hr_pg_exec(conn,
                   "SELECT " ATTEMPT_COLS " FROM herald.attempts x WHERE x.event_id = $1::uuid"
                   " ORDER BY x.id DESC LIMIT $2::bigint OFFSET $3::bigint",
                   3, a, err, "reading the event's attempts");
    if (!r) {
        rc = err->code;
        goto out;
    }
    json_t *as = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(as, attempt_json(r, i));
    json_object_set_new(e, "attempts", as);
    PQclear(r);
out:
    rc = finish(conn, rc, err);
    if (rc)
        json_decref(e);
    else
        *out = e;
    return rc;
}

int hr_pg_attempts(hr_store_t *st, const char *trigger, int limit, int offset, json_t **out,
                   hr_err_t *err)
{
    ERR_LOCAL;
    int rc;
    PGconn *conn = ready(st, err, &rc);
    if (!conn) return rc;
    if (trigger) {
        hr_trigger_def_t t;
        if ((rc = hr_pg_load_def(conn, trigger, 0, &t, err))) return rc;
        hr_trigger_def_clear(&t);
    }
    char lim[24], off[24];
    snprintf(lim, sizeof lim, "%d", clamp_limit(limit));
    snprintf(off, sizeof off, "%d", offset > 0 ? offset : 0);
    const char *p[] = {lim, off, trigger};
    PGresult *r = hr_pg_exec(conn,
                             "SELECT " ATTEMPT_COLS " FROM herald.attempts x"
                             " WHERE $3::text IS NULL OR x.trigger = $3"
                             " ORDER BY x.id DESC LIMIT $1::bigint OFFSET $2::bigint",
                             3, p, err, "listing attempts");
    if (!r) return err->code;
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(arr, attempt_json(r, i));
    PQclear(r);
    *out = arr;
    return 0;
}
