/* sqlite_ops.c: the operator, metadata and reporting operations of the SQLite backend (see
 * store.h for their contracts and JSON shapes; pg_ops.c for the same on PostgreSQL, whose rules
 * these follow).
 *
 * Queuing. Invoke, redeliver and replay never move a cursor: they upsert herald_delayed rows
 * (attempts 0, not dead, due now; last_error stays for the record), which the dispatcher's
 * delayed-queue reader delivers with current_retry 0. Replayed rows are due one microsecond
 * apart in seq order, so that they go out in log order. Replay leaves the events after the
 * trigger's cursor to the reader (they would otherwise be delivered twice).
 *
 * Which events a trigger matches is decided in SQL (hr_sq_filter_sql): its table's source and
 * operations, and its columns filter for updates; or its event types. MANUAL events match no
 * filter: they belong to the one trigger invoke queued them for.
 *
 * Delivery state of an event for a trigger (events and event):
 *     dead       its delayed row is dead
 *     retrying   its delayed row is not dead and attempts > 0
 *     pending    its delayed row has attempts 0 (invoke, redeliver, replay), or it has no
 *                delayed row and no 2xx attempt (not read by the cursor yet)
 *     delivered  no delayed row and a 2xx attempt
 * "attempts" counts every recorded attempt of that trigger for the event; "last_error" is the
 * error of the latest attempt (null when it succeeded); "delivered_at" is the time of the latest
 * 2xx attempt, even when the event is queued again. A trigger's events are those it attempted or
 * queued, and those after its cursor that it matches. */
#include "store/sqlite_int.h"
#include "core/text.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define EVENT_COLS "l.seq, l.id, l.at, l.source, l.op, l.old, l.new, l.session"
#define DEFAULT_LIMIT 100

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

static int installed(hr_store_t *st, int *yes, hr_err_t *err)
{
    int version = 0, rc = hr_sq_schema_version(st, &version, err);
    *yes = version > 0;
    return rc;
}

/* Loads one stored definition; HR_ENOTFOUND when there is none. */
static int load_def(hr_store_t *st, const char *name, hr_trigger_def_t *def, hr_err_t *err)
{
    sqlite3_stmt *s = hr_sq_stmt(st, "SELECT definition FROM herald_triggers WHERE name = ?1", err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s), rc = 0;
    if (r == SQLITE_ROW) {
        json_t *j = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
        if (!j || hr_trigger_def_from_json(j, def, err) != 0)
            rc = hr_err_set(err, HR_EDB, "the stored definition of trigger %s is invalid", name);
        json_decref(j);
    } else if (r == SQLITE_DONE) {
        rc = hr_err_set(err, HR_ENOTFOUND, "trigger %s not found", name);
    } else {
        rc = hr_sq_fail(st, err, "reading a trigger definition");
    }
    sqlite3_reset(s);
    return rc;
}

/* 1 when text is valid JSON, per SQLite (which keeps integers of any size). */
static int json_ok(hr_store_t *st, const char *text)
{
    sqlite3_stmt *s = hr_sq_stmt(st, "SELECT json_valid(?1)", NULL);
    if (!s) return 0;
    sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT);
    int ok = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 1;
    sqlite3_reset(s);
    return ok;
}

/* Queues (trigger, event) for delivery at due_us, as if no attempt had been made. */
static int queue_event(hr_store_t *st, const char *trigger, int64_t seq, const char *event_id,
                       int64_t due_us, hr_err_t *err)
{
    char due[32];
    hr_sq_format_time(due_us, due);
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "INSERT INTO herald_delayed (trigger, seq, event_id, attempts,"
                                 " due_at, dead) VALUES (?1, ?2, ?3, 0, ?4, 0)"
                                 " ON CONFLICT (trigger, seq) DO UPDATE SET attempts = 0,"
                                 " due_at = excluded.due_at, dead = 0, updated_at = " HR_SQ_NOW,
                                 err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_text(s, 3, event_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, due, -1, SQLITE_TRANSIENT);
    return hr_sq_step_done(st, s, err, "queueing an event");
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

static json_t *text_or_null(sqlite3_stmt *s, int i)
{
    const char *t = col_text(s, i);
    return t ? json_string(t) : json_null();
}

/* The event object of a row whose EVENT_COLS start at column c0. */
json_t *hr_sq_event_json(sqlite3_stmt *s, int c0)
{
    json_t *e = json_object();
    json_object_set_new(e, "id", text_or_null(s, c0 + 1));
    json_object_set_new(e, "seq", json_integer(sqlite3_column_int64(s, c0)));
    json_object_set_new(e, "created_at", text_or_null(s, c0 + 2));
    json_object_set_new(e, "source", text_or_null(s, c0 + 3));
    json_object_set_new(e, "op", text_or_null(s, c0 + 4));
    json_t *data = json_object();
    json_object_set_new(data, "old", hr_json_from_db(col_text(s, c0 + 5)));
    json_object_set_new(data, "new", hr_json_from_db(col_text(s, c0 + 6)));
    json_object_set_new(e, "data", data);
    json_object_set_new(e, "session_variables", hr_json_from_db(col_text(s, c0 + 7)));
    return e;
}

/* The delivery columns for trigger ?1 of the event l, with its delayed row d (LEFT JOIN):
 * 0 state, 1 attempts, 2 next_attempt_at, 3 last_error, 4 delivered_at. */
#define OK_AT                                                                                      \
    "(SELECT max(x.at) FROM herald_attempts x WHERE x.event_id = l.id AND x.trigger = ?1"          \
    " AND x.status BETWEEN 200 AND 299)"
#define DELIVERY_COLS                                                                              \
    "CASE WHEN d.dead THEN 'dead' WHEN d.attempts > 0 THEN 'retrying'"                             \
    " WHEN d.seq IS NOT NULL THEN 'pending' WHEN " OK_AT " IS NOT NULL THEN 'delivered'"           \
    " ELSE 'pending' END,"                                                                         \
    " (SELECT count(*) FROM herald_attempts x WHERE x.event_id = l.id AND x.trigger = ?1),"        \
    " CASE WHEN d.seq IS NOT NULL AND NOT d.dead THEN d.due_at END,"                               \
    " (SELECT x.error FROM herald_attempts x WHERE x.event_id = l.id AND x.trigger = ?1"           \
    " ORDER BY x.id DESC LIMIT 1), " OK_AT
#define NEVENT_COLS 8

static json_t *delivery_json(const char *trigger, sqlite3_stmt *s, int c0)
{
    json_t *d = json_object();
    json_object_set_new(d, "trigger", json_string(trigger));
    json_object_set_new(d, "state", text_or_null(s, c0));
    json_object_set_new(d, "attempts", json_integer(sqlite3_column_int64(s, c0 + 1)));
    json_object_set_new(d, "next_attempt_at", text_or_null(s, c0 + 2));
    json_object_set_new(d, "last_error", text_or_null(s, c0 + 3));
    json_object_set_new(d, "delivered_at", text_or_null(s, c0 + 4));
    return d;
}

#define ATTEMPT_COLS "id, trigger, event_id, seq, attempt, at, status, latency_ms, error, response"

static json_t *attempt_json(sqlite3_stmt *s)
{
    json_t *a = json_object();
    json_object_set_new(a, "id", json_integer(sqlite3_column_int64(s, 0)));
    json_object_set_new(a, "trigger", text_or_null(s, 1));
    json_object_set_new(a, "event_id", text_or_null(s, 2));
    json_object_set_new(a, "seq", json_integer(sqlite3_column_int64(s, 3)));
    json_object_set_new(a, "attempt", json_integer(sqlite3_column_int64(s, 4)));
    json_object_set_new(a, "at", text_or_null(s, 5));
    json_object_set_new(a, "status",
                        sqlite3_column_type(s, 6) == SQLITE_NULL
                            ? json_null()
                            : json_integer(sqlite3_column_int64(s, 6)));
    /* Rounded to the microsecond, as PostgreSQL's report does. */
    json_object_set_new(
        a, "latency_ms",
        sqlite3_column_type(s, 7) == SQLITE_NULL
            ? json_null()
            : json_real((double)llround(sqlite3_column_double(s, 7) * 1000) / 1000));
    json_object_set_new(a, "error", text_or_null(s, 8));
    json_object_set_new(a, "response", text_or_null(s, 9));
    return a;
}

/* Prepares head + t's filter (parameters from ?first) + tail, binding the filter; NULL with err
 * set on failure. The caller binds the rest and finalizes. */
static sqlite3_stmt *filtered(hr_store_t *st, const hr_trigger_def_t *t, const char *head,
                              int first, const char *tail, hr_err_t *err)
{
    hr_buf_t sql = HR_BUF_INIT;
    int np = 0;
    hr_buf_puts(&sql, head);
    hr_sq_filter_sql(t, first, &sql, &np);
    hr_buf_puts(&sql, tail);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql.data, -1, &s, NULL) != SQLITE_OK) {
        hr_sq_fail(st, err, "preparing a query");
        sqlite3_finalize(s);
        s = NULL;
    } else {
        hr_sq_filter_bind(s, t, first);
    }
    hr_buf_free(&sql);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Metadata                                                                                   */

int hr_sq_put_trigger(hr_store_t *st, const hr_trigger_def_t *def, int replace, hr_err_t *err)
{
    hr_trigger_def_t *defs = NULL, old;
    size_t n = 0;
    int exists = 0, same = 0;
    /* The definition must be one that load_triggers can read back. */
    json_t *check = hr_trigger_def_to_json(def);
    int rc = hr_trigger_def_from_json(check, &old, err);
    json_decref(check);
    if (rc) return rc;
    hr_trigger_def_clear(&old);
    if ((rc = hr_sq_begin(st, err))) return rc;
    if ((rc = hr_sq_validate_def(st, def, err))) goto fail;
    if ((rc = hr_sq_migrate(st, NULL, NULL, err))) goto fail;
    hr_err_t e2 = {0};
    rc = load_def(st, def->name, &old, &e2);
    if (rc && rc != HR_ENOTFOUND) {
        hr_err_set(err, rc, "%s", e2.msg);
        goto fail;
    }
    exists = rc == 0;
    rc = 0;
    json_t *j = hr_trigger_def_to_json(def);
    if (exists) {
        json_t *oj = hr_trigger_def_to_json(&old);
        same = json_equal(oj, j);
        json_decref(oj);
        hr_trigger_def_clear(&old);
    }
    if (exists && !replace) {
        json_decref(j);
        rc = hr_err_set(err, HR_EEXIST, "trigger %s already exists", def->name);
        goto fail;
    }
    if (same) {
        json_decref(j);
        hr_sq_rollback(st);
        return 0;
    }
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "INSERT INTO herald_triggers (name, definition) VALUES (?1, ?2)"
                                 " ON CONFLICT (name) DO UPDATE SET definition ="
                                 " excluded.definition, updated_at = " HR_SQ_NOW,
                                 err);
    if (!s) rc = HR_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, def->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, text, -1, SQLITE_TRANSIENT);
        rc = hr_sq_step_done(st, s, err, "storing a trigger definition");
    }
    free(text);
    if (rc) goto fail;
    if (!exists && (rc = hr_sq_create_cursor(st, def, err))) goto fail;
    if ((rc = hr_sq_load_defs(st, &defs, &n, err))) goto fail;
    if ((rc = hr_sq_sync_capture(st, defs, n, NULL, NULL, err))) goto fail;
    if ((rc = hr_sq_bump_defs(st, err))) goto fail;
    hr_sq_free_defs(defs, n);
    return hr_sq_commit(st, err);
fail:
    hr_sq_free_defs(defs, n);
    hr_sq_rollback(st);
    return rc;
}

int hr_sq_delete_trigger(hr_store_t *st, const char *name, hr_err_t *err)
{
    hr_trigger_def_t *defs = NULL, old;
    size_t n = 0;
    int yes = 0, rc = installed(st, &yes, err);
    if (rc) return rc;
    if (!yes) return hr_err_set(err, HR_ENOTFOUND, "trigger %s not found", name);
    if ((rc = hr_sq_begin(st, err))) return rc;
    if ((rc = load_def(st, name, &old, err))) goto fail;
    hr_trigger_def_clear(&old);
    rc = hr_sq_remove_trigger_rows(st, name, err);
    if (rc) goto fail;
    if ((rc = hr_sq_load_defs(st, &defs, &n, err))) goto fail;
    if ((rc = hr_sq_sync_capture(st, defs, n, NULL, NULL, err))) goto fail;
    if ((rc = hr_sq_bump_defs(st, err))) goto fail;
    hr_sq_free_defs(defs, n);
    return hr_sq_commit(st, err);
fail:
    hr_sq_free_defs(defs, n);
    hr_sq_rollback(st);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Emit, invoke, redeliver, replay                                                            */

/* Appends a log row; *seq and id_out get its seq and id. A NULL payload is JSON null. */
static int append_event(hr_store_t *st, const char *source, const char *op, const char *payload,
                        int64_t *seq, char id_out[40], hr_err_t *err)
{
    if (!payload) payload = "null";
    if (!json_ok(st, payload)) return hr_err_set(err, HR_EINVAL, "the payload is not valid JSON");
    sqlite3_stmt *s =
        hr_sq_stmt(st,
                   "INSERT INTO herald_log (source, op, new) VALUES (?1, ?2, json(?3))"
                   " RETURNING seq, id",
                   err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, op, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, payload, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s), rc = 0;
    if (r == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        snprintf(id_out, 40, "%s", col_text(s, 1));
        r = sqlite3_step(s);
    }
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "appending to the log");
    sqlite3_reset(s);
    return rc;
}

int hr_sq_emit(hr_store_t *st, const char *type, const char *payload_json, char id_out[40],
               hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if (!type || !*type) return hr_err_set(err, HR_EINVAL, "the event type must not be empty");
    if ((rc = hr_sq_begin(st, err))) return rc;
    int64_t seq;
    if ((rc = append_event(st, type, "EMIT", payload_json, &seq, id_out, err))) {
        hr_sq_rollback(st);
        return rc;
    }
    return hr_sq_commit(st, err);
}

int hr_sq_invoke(hr_store_t *st, const char *trigger, const char *payload_json, char id_out[40],
                 hr_err_t *err)
{
    hr_trigger_def_t def;
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if ((rc = hr_sq_begin(st, err))) return rc;
    if ((rc = load_def(st, trigger, &def, err))) goto fail;
    if (!def.table || !(def.ops & HR_OP_MANUAL)) {
        rc = hr_err_set(err, HR_EINVAL,
                        "trigger %s does not allow manual events (operations: manual is not set)",
                        trigger);
    } else {
        hr_buf_t src = HR_BUF_INIT;
        hr_sq_source(&def, &src);
        int64_t seq = 0;
        rc = append_event(st, src.data, "MANUAL", payload_json, &seq, id_out, err);
        if (!rc) rc = queue_event(st, trigger, seq, id_out, hr_wall_us(), err);
        hr_buf_free(&src);
    }
    hr_trigger_def_clear(&def);
    if (rc) goto fail;
    return hr_sq_commit(st, err);
fail:
    hr_sq_rollback(st);
    return rc;
}

/* Queues event (seq, id) again for t, which must be a trigger that delivers it: its filter
 * matches, or it already has attempts or a delayed row for it (MANUAL events). */
static int redeliver_one(hr_store_t *st, const hr_trigger_def_t *t, int64_t seq, const char *id,
                         hr_err_t *err)
{
    sqlite3_stmt *s = filtered(st, t,
                               "SELECT 1 FROM herald_log l WHERE l.seq = ?2 AND (EXISTS (SELECT 1"
                               " FROM herald_attempts x WHERE x.event_id = l.id AND x.trigger = ?1)"
                               " OR EXISTS (SELECT 1 FROM herald_delayed y WHERE y.trigger = ?1"
                               " AND y.seq = l.seq) OR ",
                               3, ")", err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, seq);
    int r = sqlite3_step(s), rc = 0;
    sqlite3_finalize(s);
    if (r == SQLITE_DONE)
        rc =
            hr_err_set(err, HR_EINVAL, "event %s is not one that trigger %s delivers", id, t->name);
    else if (r != SQLITE_ROW)
        rc = hr_sq_fail(st, err, "checking the trigger");
    return rc ? rc : queue_event(st, t->name, seq, id, hr_wall_us(), err);
}

int hr_sq_redeliver(hr_store_t *st, const char *event_id, const char *trigger, int *queued,
                    hr_err_t *err)
{
    *queued = 0;
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if ((rc = hr_sq_begin(st, err))) return rc;
    sqlite3_stmt *s = hr_sq_stmt(st, "SELECT seq FROM herald_log WHERE id = ?1", err);
    if (!s) goto db;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s);
    int64_t seq = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (r == SQLITE_DONE) {
        rc = hr_err_set(err, HR_ENOTFOUND, "event %s not found", event_id);
        goto fail;
    }
    if (r != SQLITE_ROW) {
        rc = hr_sq_fail(st, err, "looking up the event");
        goto fail;
    }
    if (trigger) {
        hr_trigger_def_t def;
        if ((rc = load_def(st, trigger, &def, err))) goto fail;
        rc = redeliver_one(st, &def, seq, event_id, err);
        hr_trigger_def_clear(&def);
        if (rc) goto fail;
        *queued = 1;
        return hr_sq_commit(st, err);
    }
    /* Every existing trigger that has attempts or a delayed row for the event. */
    s = hr_sq_stmt(
        st,
        "SELECT name FROM (SELECT name FROM herald_triggers UNION ALL SELECT '" HR_ONE_OFF_TRIGGER
        "') WHERE name IN (SELECT trigger FROM"
        " herald_attempts WHERE event_id = ?1 UNION SELECT trigger FROM herald_delayed"
        " WHERE seq = ?2) ORDER BY name",
        err);
    if (!s) goto db;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, seq);
    char **names = NULL;
    size_t n = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        names = hr_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = hr_xstrdup(col_text(s, 0));
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "finding the event's triggers");
    int64_t now = hr_wall_us();
    for (size_t i = 0; i < n && !rc; i++)
        rc = queue_event(st, names[i], seq, event_id, now, err);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!rc && n == 0)
        rc = hr_err_set(err, HR_ENOTFOUND,
                        "no trigger has attempted or queued event %s yet: name one with --trigger",
                        event_id);
    if (rc) goto fail;
    *queued = (int)n;
    return hr_sq_commit(st, err);
db:
    rc = HR_EDB;
fail:
    hr_sq_rollback(st);
    return rc;
}

int hr_sq_replay(hr_store_t *st, const char *trigger, const hr_replay_range_t *range,
                 int64_t *queued, hr_err_t *err)
{
    *queued = 0;
    char from[32] = "", to[32] = "9999";
    int64_t us;
    if (range && range->from_time) {
        if (hr_parse_rfc3339_us(range->from_time, &us) != 0)
            return hr_err_set(err, HR_EINVAL, "invalid time %s (expected RFC 3339)",
                              range->from_time);
        hr_sq_format_time(us, from);
    }
    if (range && range->to_time) {
        if (hr_parse_rfc3339_us(range->to_time, &us) != 0)
            return hr_err_set(err, HR_EINVAL, "invalid time %s (expected RFC 3339)",
                              range->to_time);
        hr_sq_format_time(us, to);
    }
    hr_trigger_def_t def;
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if ((rc = hr_sq_begin(st, err))) return rc;
    if ((rc = load_def(st, trigger, &def, err))) {
        hr_sq_rollback(st);
        return rc;
    }
    /* ?1 trigger, ?2..?5 the range; events after the cursor are left to the reader. */
    sqlite3_stmt *s =
        filtered(st, &def,
                 "SELECT l.seq, l.id FROM herald_log l WHERE l.seq >= ?2"
                 " AND l.seq <= ?3 AND l.at >= ?4 AND l.at < ?5 AND NOT coalesce("
                 "l.seq > (SELECT last_seq FROM herald_cursors WHERE trigger = ?1), 0)"
                 " AND ",
                 6, " ORDER BY l.seq", err);
    if (!s) rc = HR_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, range && range->from_seq > 0 ? range->from_seq : 0);
        sqlite3_bind_int64(s, 3, range && range->to_seq > 0 ? range->to_seq : INT64_MAX);
        sqlite3_bind_text(s, 4, from, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 5, to, -1, SQLITE_TRANSIENT);
        int64_t now = hr_wall_us();
        int r;
        while (!rc && (r = sqlite3_step(s)) == SQLITE_ROW) {
            /* One microsecond apart: the delayed queue is read by due time, in log order. */
            rc = queue_event(st, trigger, sqlite3_column_int64(s, 0), col_text(s, 1),
                             now + 1 + *queued, err);
            if (!rc) (*queued)++;
        }
        if (!rc && r != SQLITE_DONE) rc = hr_sq_fail(st, err, "reading the log");
    }
    sqlite3_finalize(s);
    hr_trigger_def_clear(&def);
    if (rc) {
        *queued = 0;
        hr_sq_rollback(st);
        return rc;
    }
    return hr_sq_commit(st, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Reports                                                                                    */

static int status_one(hr_store_t *st, const hr_trigger_def_t *t, int64_t now, json_t *arr,
                      hr_err_t *err)
{
    sqlite3_stmt *s =
        filtered(st, t,
                 "SELECT (SELECT count(*) FROM herald_delayed WHERE trigger = ?1 AND dead = 0),"
                 " (SELECT count(*) FROM herald_delayed WHERE trigger = ?1 AND dead = 1),"
                 " (SELECT x.at FROM herald_attempts x WHERE x.trigger = ?1"
                 "  AND x.status BETWEEN 200 AND 299 ORDER BY x.id DESC LIMIT 1),"
                 " count(*), min(l.at) FROM herald_log l"
                 " WHERE l.seq > (SELECT last_seq FROM herald_cursors WHERE trigger = ?1) AND ",
                 2, "", err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
    int rc = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "trigger", json_string(t->name));
        json_object_set_new(o, "backlog", json_integer(sqlite3_column_int64(s, 3)));
        json_object_set_new(o, "delayed", json_integer(sqlite3_column_int64(s, 0)));
        json_object_set_new(o, "dead", json_integer(sqlite3_column_int64(s, 1)));
        json_object_set_new(o, "last_delivery_at", text_or_null(s, 2));
        int64_t at = 0;
        const char *oldest = col_text(s, 4);
        json_object_set_new(o, "lag_seconds",
                            oldest && hr_parse_rfc3339_us(oldest, &at) == 0
                                ? json_real((double)llround((double)(now - at) / 1000) / 1000)
                                : json_null());
        json_array_append_new(arr, o);
    } else {
        rc = hr_sq_fail(st, err, "computing the status");
    }
    sqlite3_finalize(s);
    return rc;
}

int hr_sq_status(hr_store_t *st, json_t **out, hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    json_t *arr = json_array();
    hr_trigger_def_t *defs = NULL;
    size_t n = 0;
    int64_t now = hr_wall_us();
    /* One snapshot for the whole report. */
    if ((rc = hr_sq_exec(st, "BEGIN", err, "starting a read")) == 0) {
        rc = hr_sq_load_defs(st, &defs, &n, err);
        for (size_t i = 0; i < n && !rc; i++)
            rc = status_one(st, &defs[i], now, arr, err);
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    }
    hr_sq_free_defs(defs, n);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int hr_sq_events(hr_store_t *st, const hr_event_query_t *q, json_t **out, hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if (q->pending_only && !q->trigger)
        return hr_err_set(err, HR_EINVAL, "listing pending events needs a trigger");
    hr_trigger_def_t def;
    int have_def = 0;
    sqlite3_stmt *s = NULL;
    char tail[160];
    snprintf(tail, sizeof tail, " ORDER BY l.seq DESC LIMIT %d OFFSET %d",
             q->limit > 0 ? q->limit : DEFAULT_LIMIT, q->offset > 0 ? q->offset : 0);
    if ((rc = hr_sq_exec(st, "BEGIN", err, "starting a read"))) return rc;
    if (q->trigger) {
        if ((rc = load_def(st, q->trigger, &def, err))) goto out;
        have_def = 1;
        /* The trigger's events: those it attempted or queued, and those after its cursor that
         * it will read (events before its start are not its own). */
        hr_buf_t t2 = HR_BUF_INIT;
        hr_buf_puts(&t2, "))");
        if (q->dead_only) hr_buf_puts(&t2, " AND d.dead = 1");
        if (q->pending_only)
            hr_buf_puts(&t2, " AND coalesce(d.dead, 0) = 0 AND (d.seq IS NOT NULL OR " OK_AT
                             " IS NULL)");
        hr_buf_puts(&t2, tail);
        s = filtered(st, &def,
                     "SELECT " EVENT_COLS ", " DELIVERY_COLS " FROM herald_log l"
                     " LEFT JOIN herald_delayed d ON d.trigger = ?1 AND d.seq = l.seq"
                     " WHERE (d.seq IS NOT NULL OR EXISTS (SELECT 1 FROM herald_attempts x"
                     " WHERE x.event_id = l.id AND x.trigger = ?1) OR (l.seq > (SELECT last_seq"
                     " FROM herald_cursors WHERE trigger = ?1) AND ",
                     2, t2.data, err);
        hr_buf_free(&t2);
        if (s) sqlite3_bind_text(s, 1, q->trigger, -1, SQLITE_TRANSIENT);
    } else {
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT " EVENT_COLS " FROM herald_log l%s%s",
                 q->dead_only ? " WHERE l.seq IN (SELECT seq FROM herald_delayed WHERE dead = 1)"
                              : "",
                 tail);
        if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
            hr_sq_fail(st, err, "listing events");
            sqlite3_finalize(s);
            s = NULL;
        }
    }
    if (!s) {
        rc = HR_EDB;
        goto out;
    }
    json_t *arr = json_array();
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *e = hr_sq_event_json(s, 0);
        if (q->trigger)
            json_object_set_new(e, "deliveries",
                                json_pack("[o]", delivery_json(q->trigger, s, NEVENT_COLS)));
        json_array_append_new(arr, e);
    }
    if (r != SQLITE_DONE) {
        rc = hr_sq_fail(st, err, "listing events");
        json_decref(arr);
    } else {
        *out = arr;
    }
out:
    sqlite3_finalize(s);
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (have_def) hr_trigger_def_clear(&def);
    return rc;
}

int hr_sq_event(hr_store_t *st, const char *event_id, int attempts_limit, int attempts_offset,
                json_t **out, hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if ((rc = hr_sq_exec(st, "BEGIN", err, "starting a read"))) return rc;
    json_t *e = NULL, *deliveries = json_array(), *attempts = json_array();
    sqlite3_stmt *s =
        hr_sq_stmt(st, "SELECT " EVENT_COLS " FROM herald_log l WHERE l.id = ?1", err);
    if (!s) {
        rc = HR_EDB;
        goto out;
    }
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) e = hr_sq_event_json(s, 0);
    sqlite3_reset(s);
    if (r == SQLITE_DONE)
        rc = hr_err_set(err, HR_ENOTFOUND, "event %s not found", event_id);
    else if (r != SQLITE_ROW)
        rc = hr_sq_fail(st, err, "reading the event");
    if (rc) goto out;
    /* A delivery for every trigger that has attempts or a delayed row for the event. */
    sqlite3_stmt *names = hr_sq_stmt(st,
                                     "SELECT trigger FROM herald_attempts WHERE event_id = ?1"
                                     " UNION SELECT trigger FROM herald_delayed WHERE event_id = ?1"
                                     " ORDER BY 1",
                                     err);
    if (!names) {
        rc = HR_EDB;
        goto out;
    }
    sqlite3_bind_text(names, 1, event_id, -1, SQLITE_TRANSIENT);
    char **v = NULL;
    size_t n = 0;
    while ((r = sqlite3_step(names)) == SQLITE_ROW) {
        v = hr_xrealloc(v, (n + 1) * sizeof *v);
        v[n++] = hr_xstrdup(col_text(names, 0));
    }
    sqlite3_reset(names);
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "reading deliveries");
    for (size_t i = 0; i < n && !rc; i++) {
        s = hr_sq_stmt(st,
                       "SELECT " DELIVERY_COLS " FROM herald_log l LEFT JOIN herald_delayed d"
                       " ON d.trigger = ?1 AND d.seq = l.seq WHERE l.id = ?2",
                       err);
        if (!s) {
            rc = HR_EDB;
            break;
        }
        sqlite3_bind_text(s, 1, v[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, event_id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) == SQLITE_ROW)
            json_array_append_new(deliveries, delivery_json(v[i], s, 0));
        else
            rc = hr_sq_fail(st, err, "reading a delivery");
        sqlite3_reset(s);
    }
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    if (rc) goto out;
    s = hr_sq_stmt(st,
                   "SELECT " ATTEMPT_COLS " FROM herald_attempts WHERE event_id = ?1"
                   " ORDER BY id DESC LIMIT ?2 OFFSET ?3",
                   err);
    if (!s) {
        rc = HR_EDB;
        goto out;
    }
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, attempts_limit > 0 ? attempts_limit : DEFAULT_LIMIT);
    sqlite3_bind_int(s, 3, attempts_offset > 0 ? attempts_offset : 0);
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(attempts, attempt_json(s));
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "reading attempts");
    sqlite3_reset(s);
out:
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc) {
        json_decref(e);
        json_decref(deliveries);
        json_decref(attempts);
        return rc;
    }
    json_object_set_new(e, "deliveries", deliveries);
    json_object_set_new(e, "attempts", attempts);
    *out = e;
    return 0;
}

int hr_sq_attempts(hr_store_t *st, const char *trigger, int limit, int offset, json_t **out,
                   hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    sqlite3_stmt *s =
        hr_sq_stmt(st,
                   "SELECT " ATTEMPT_COLS " FROM herald_attempts WHERE"
                   " (?1 IS NULL OR trigger = ?1) ORDER BY id DESC LIMIT ?2 OFFSET ?3",
                   err);
    if (!s) return HR_EDB;
    if (trigger) sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : DEFAULT_LIMIT);
    sqlite3_bind_int(s, 3, offset > 0 ? offset : 0);
    json_t *arr = json_array();
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(arr, attempt_json(s));
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "listing attempts");
    sqlite3_reset(s);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
