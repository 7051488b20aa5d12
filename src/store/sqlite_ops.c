/* sqlite_ops.c: the operator, metadata and reporting operations of the SQLite backend (see
 * store.h for their contracts and JSON shapes; store_pg.c for the same on PostgreSQL).
 *
 * Each write is one IMMEDIATE transaction. Queuing an event for a trigger (invoke, redeliver,
 * replay) is an upsert of its herald_delayed row: due now, no attempts made, not dead; the
 * dispatcher's delayed-queue reader delivers it.
 *
 * The delivery state of an event for a trigger, in the reports:
 *   delayed row, dead            -> dead
 *   delayed row, attempts > 0    -> retrying (next_attempt_at = due_at)
 *   delayed row, no attempts     -> pending (queued by invoke, redeliver or replay)
 *   a 2xx attempt                -> delivered (delivered_at = its time)
 *   after the trigger's cursor   -> pending
 *   otherwise                    -> the trigger passed over it (it started later, or the column
 *                                   filter skipped it): not listed for that trigger. */
#include "store/sqlite_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define EVENT_COLS "l.seq, l.id, l.at, l.source, l.op, l.old, l.new, l.session"
#define DEFAULT_LIMIT 100

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

static int step_done(hr_store_t *st, sqlite3_stmt *s, hr_err_t *err, const char *what)
{
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
    }
    int rc = r == SQLITE_DONE ? 0 : hr_sq_fail(st, err, what);
    sqlite3_reset(s);
    return rc;
}

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
            rc = hr_err_set(err, HR_EDB, "trigger %s: the stored definition is invalid", name);
        json_decref(j);
    } else if (r == SQLITE_DONE) {
        rc = hr_err_set(err, HR_ENOTFOUND, "no trigger named %s", name);
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

/* Queues (trigger, event) for delivery now, as if no attempt had been made. */
static int queue_event(hr_store_t *st, const char *trigger, int64_t seq, const char *event_id,
                       hr_err_t *err)
{
    char now[32];
    hr_sq_format_time(hr_wall_us(), now);
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "INSERT INTO herald_delayed (trigger, seq, event_id, attempts,"
                                 " due_at, dead, last_error) VALUES (?1, ?2, ?3, 0, ?4, 0, NULL)"
                                 " ON CONFLICT (trigger, seq) DO UPDATE SET attempts = 0,"
                                 " due_at = excluded.due_at, dead = 0, last_error = NULL,"
                                 " updated_at = " HR_SQ_NOW,
                                 err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_text(s, 3, event_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, now, -1, SQLITE_TRANSIENT);
    return step_done(st, s, err, "queueing an event");
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(s, i);
}

/* JSON text as a value (any JSON), a string if it does not parse, null for SQL NULL. */
static json_t *json_value(const char *text)
{
    if (!text) return json_null();
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    return j ? j : json_string(text);
}

static json_t *text_or_null(const char *text)
{
    return text ? json_string(text) : json_null();
}

/* The event object of a row whose EVENT_COLS start at column c0. */
static json_t *event_json(sqlite3_stmt *s, int c0)
{
    json_t *data = json_pack("{s:o, s:o}", "old", json_value(col_text(s, c0 + 5)), "new",
                             json_value(col_text(s, c0 + 6)));
    return json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:o}", "id", text_or_null(col_text(s, c0 + 1)),
                     "seq", (json_int_t)sqlite3_column_int64(s, c0), "created_at",
                     text_or_null(col_text(s, c0 + 2)), "source", text_or_null(col_text(s, c0 + 3)),
                     "op", text_or_null(col_text(s, c0 + 4)), "data", data, "session_variables",
                     json_value(col_text(s, c0 + 7)));
}

/* Fills ev from a row (strings borrowed from the statement until its next step). */
static void row_event(sqlite3_stmt *s, const hr_trigger_def_t *t, hr_event_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->seq = sqlite3_column_int64(s, 0);
    ev->id = col_text(s, 1);
    ev->created_at = col_text(s, 2);
    ev->op = col_text(s, 4);
    if (ev->op && strcmp(ev->op, "EMIT") == 0) {
        ev->type = col_text(s, 3);
    } else {
        ev->schema = t->schema;
        ev->table = t->table;
    }
    ev->old_json = col_text(s, 5);
    ev->new_json = col_text(s, 6);
    ev->session_json = col_text(s, 7);
}

static int cursor_of(hr_store_t *st, const char *trigger, int64_t *seq, hr_err_t *err)
{
    *seq = INT64_MAX; /* no cursor: nothing counts as after it */
    sqlite3_stmt *s = hr_sq_stmt(st, "SELECT last_seq FROM herald_cursors WHERE trigger = ?1", err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) *seq = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? 0 : hr_sq_fail(st, err, "reading a cursor");
}

/* The delivery of event (seq, id) for trigger (see the table at the top); *out is NULL when the
 * trigger passed over the event. */
static int delivery_json(hr_store_t *st, const char *trigger, int64_t seq, const char *event_id,
                         int64_t cursor, json_t **out, hr_err_t *err)
{
    *out = NULL;
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "SELECT attempts, dead, due_at, last_error FROM herald_delayed"
                                 " WHERE trigger = ?1 AND seq = ?2",
                                 err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, seq);
    int r = sqlite3_step(s);
    int delayed = r == SQLITE_ROW, dead = 0, queued_attempts = 0;
    char *due = NULL, *delayed_error = NULL;
    if (delayed) {
        queued_attempts = sqlite3_column_int(s, 0);
        dead = sqlite3_column_int(s, 1);
        due = hr_xstrdup(col_text(s, 2));
        delayed_error = hr_xstrdup(col_text(s, 3));
    }
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE) return hr_sq_fail(st, err, "reading a delivery");
    s = hr_sq_stmt(st,
                   "SELECT count(*), max(CASE WHEN status BETWEEN 200 AND 299 THEN at END),"
                   " (SELECT error FROM herald_attempts WHERE trigger = ?1 AND event_id = ?2"
                   " ORDER BY id DESC LIMIT 1)"
                   " FROM herald_attempts WHERE trigger = ?1 AND event_id = ?2",
                   err);
    if (!s) {
        free(due);
        free(delayed_error);
        return HR_EDB;
    }
    sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, event_id, -1, SQLITE_TRANSIENT);
    r = sqlite3_step(s);
    int nattempts = r == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    char *delivered_at = r == SQLITE_ROW ? hr_xstrdup(col_text(s, 1)) : NULL;
    char *last_error = r == SQLITE_ROW ? hr_xstrdup(col_text(s, 2)) : NULL;
    sqlite3_reset(s);
    int rc = r == SQLITE_ROW ? 0 : hr_sq_fail(st, err, "reading attempts");
    const char *state = NULL;
    if (rc) goto out;
    if (delayed)
        state = dead ? "dead" : queued_attempts > 0 ? "retrying" : "pending";
    else if (delivered_at)
        state = "delivered";
    else if (seq > cursor || nattempts > 0)
        state = "pending";
    if (!state) goto out;
    int settled = !delayed && delivered_at;
    *out = json_pack(
        "{s:s, s:s, s:i, s:o, s:o, s:o}", "trigger", trigger, "state", state, "attempts", nattempts,
        "next_attempt_at", delayed && !dead ? text_or_null(due) : json_null(), "last_error",
        settled ? json_null() : text_or_null(delayed && delayed_error ? delayed_error : last_error),
        "delivered_at", settled ? text_or_null(delivered_at) : json_null());
out:
    free(due);
    free(delayed_error);
    free(delivered_at);
    free(last_error);
    return rc;
}

static json_t *attempt_json(sqlite3_stmt *s)
{
    return json_pack(
        "{s:I, s:o, s:o, s:I, s:i, s:o, s:o, s:f, s:o, s:o}", "id",
        (json_int_t)sqlite3_column_int64(s, 0), "trigger", text_or_null(col_text(s, 1)), "event_id",
        text_or_null(col_text(s, 2)), "seq", (json_int_t)sqlite3_column_int64(s, 3), "attempt",
        sqlite3_column_int(s, 4), "at", text_or_null(col_text(s, 5)), "status",
        sqlite3_column_type(s, 6) == SQLITE_NULL ? json_null()
                                                 : json_integer(sqlite3_column_int64(s, 6)),
        "latency_ms", sqlite3_column_double(s, 7), "error", text_or_null(col_text(s, 8)),
        "response", text_or_null(col_text(s, 9)));
}

#define ATTEMPT_COLS "id, trigger, event_id, seq, attempt, at, status, latency_ms, error, response"

/* ------------------------------------------------------------------------------------------ */
/* Metadata                                                                                   */

int hr_sq_put_trigger(hr_store_t *st, const hr_trigger_def_t *def, int replace, hr_err_t *err)
{
    hr_trigger_def_t *defs = NULL, old;
    size_t n = 0;
    int rc = hr_sq_begin(st, err), exists = 0, same = 0;
    if (rc) return rc;
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
        rc = hr_err_set(err, HR_EEXIST, "trigger %s exists already", def->name);
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
        rc = step_done(st, s, err, "storing a trigger definition");
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
    if (!yes) return hr_err_set(err, HR_ENOTFOUND, "no trigger named %s", name);
    if ((rc = hr_sq_begin(st, err))) return rc;
    if ((rc = load_def(st, name, &old, err))) goto fail;
    hr_trigger_def_clear(&old);
    static const char *const dels[] = {
        "DELETE FROM herald_triggers WHERE name = ?1",
        "DELETE FROM herald_cursors WHERE trigger = ?1",
        "DELETE FROM herald_delayed WHERE trigger = ?1",
    };
    for (int d = 0; d < 3 && !rc; d++) {
        sqlite3_stmt *s = hr_sq_stmt(st, dels[d], err);
        if (!s) {
            rc = HR_EDB;
            break;
        }
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        rc = step_done(st, s, err, "removing a trigger");
    }
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

/* Appends a log row; *seq and id_out get its seq and id. */
static int append_event(hr_store_t *st, const char *source, const char *op, const char *payload,
                        int64_t *seq, char id_out[40], hr_err_t *err)
{
    if (payload && !json_ok(st, payload))
        return hr_err_set(err, HR_EINVAL, "the payload is not valid JSON");
    sqlite3_stmt *s =
        hr_sq_stmt(st,
                   "INSERT INTO herald_log (source, op, new) VALUES (?1, ?2, json(?3))"
                   " RETURNING seq, id",
                   err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, source, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, op, -1, SQLITE_TRANSIENT);
    if (payload) sqlite3_bind_text(s, 3, payload, -1, SQLITE_TRANSIENT);
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
    if (!type || !*type) return hr_err_set(err, HR_EINVAL, "emit: the type must not be empty");
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
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
                        "trigger %s cannot be invoked by hand: add manual to its operations",
                        trigger);
    } else {
        hr_buf_t src = HR_BUF_INIT;
        hr_sq_source(&def, &src);
        int64_t seq = 0;
        rc = append_event(st, src.data, "MANUAL", payload_json, &seq, id_out, err);
        if (!rc) rc = queue_event(st, trigger, seq, id_out, err);
        hr_buf_free(&src);
    }
    hr_trigger_def_clear(&def);
    if (rc) goto fail;
    return hr_sq_commit(st, err);
fail:
    hr_sq_rollback(st);
    return rc;
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
        rc = hr_err_set(err, HR_ENOTFOUND, "no event with id %s", event_id);
        goto fail;
    }
    if (r != SQLITE_ROW) {
        rc = hr_sq_fail(st, err, "looking up the event");
        goto fail;
    }
    if (trigger) {
        hr_trigger_def_t def;
        if ((rc = load_def(st, trigger, &def, err))) goto fail;
        hr_trigger_def_clear(&def);
        if ((rc = queue_event(st, trigger, seq, event_id, err))) goto fail;
        *queued = 1;
        return hr_sq_commit(st, err);
    }
    s = hr_sq_stmt(st,
                   "SELECT name FROM herald_triggers WHERE name IN (SELECT trigger FROM"
                   " herald_attempts WHERE event_id = ?1 UNION SELECT trigger FROM herald_delayed"
                   " WHERE event_id = ?1) ORDER BY name",
                   err);
    if (!s) goto db;
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    char **names = NULL;
    size_t n = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        names = hr_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = hr_xstrdup(col_text(s, 0));
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "finding the event's triggers");
    for (size_t i = 0; i < n && !rc; i++)
        rc = queue_event(st, names[i], seq, event_id, err);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (!rc && n == 0)
        rc = hr_err_set(err, HR_ENOTFOUND,
                        "no trigger has attempted or queued event %s: name the trigger", event_id);
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
        if (hr_sq_parse_time(range->from_time, &us) != 0)
            return hr_err_set(err, HR_EINVAL, "invalid time %s (expected RFC 3339)",
                              range->from_time);
        hr_sq_format_time(us, from);
    }
    if (range && range->to_time) {
        if (hr_sq_parse_time(range->to_time, &us) != 0)
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
    hr_buf_t sql = HR_BUF_INIT;
    int np = 0;
    hr_buf_puts(&sql, "SELECT " EVENT_COLS " FROM herald_log l WHERE l.seq >= ?1 AND l.seq <= ?2"
                      " AND l.at >= ?3 AND l.at < ?4 AND ");
    hr_sq_filter_sql(&def, 5, &sql, &np);
    hr_buf_puts(&sql, " ORDER BY l.seq");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql.data, -1, &s, NULL) != SQLITE_OK) {
        rc = hr_sq_fail(st, err, "preparing the replay");
        goto out;
    }
    sqlite3_bind_int64(s, 1, range && range->from_seq > 0 ? range->from_seq : 0);
    sqlite3_bind_int64(s, 2, range && range->to_seq > 0 ? range->to_seq : INT64_MAX);
    sqlite3_bind_text(s, 3, from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, to, -1, SQLITE_TRANSIENT);
    hr_sq_filter_bind(s, &def, 5);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW && !rc) {
        hr_event_t ev;
        row_event(s, &def, &ev);
        if (!hr_event_matches(&def, &ev)) continue; /* e.g. the column filter */
        rc = queue_event(st, trigger, ev.seq, ev.id, err);
        if (!rc) (*queued)++;
    }
    if (!rc && r != SQLITE_DONE) rc = hr_sq_fail(st, err, "reading the log");
out:
    sqlite3_finalize(s);
    hr_buf_free(&sql);
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

/* Runs a query made of a fixed part, t's filter and a tail; binds ?1 = i1 then the filter. */
static sqlite3_stmt *filtered(hr_store_t *st, const hr_trigger_def_t *t, const char *head,
                              const char *tail, int64_t i1, hr_err_t *err)
{
    hr_buf_t sql = HR_BUF_INIT;
    int np = 0;
    hr_buf_puts(&sql, head);
    hr_sq_filter_sql(t, 2, &sql, &np);
    hr_buf_puts(&sql, tail);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql.data, -1, &s, NULL) != SQLITE_OK) {
        hr_sq_fail(st, err, "preparing a report");
        sqlite3_finalize(s);
        s = NULL;
    } else {
        sqlite3_bind_int64(s, 1, i1);
        hr_sq_filter_bind(s, t, 2);
    }
    hr_buf_free(&sql);
    return s;
}

static int status_one(hr_store_t *st, const hr_trigger_def_t *t, int64_t now, json_t *arr,
                      hr_err_t *err)
{
    int64_t cursor = 0;
    int rc = cursor_of(st, t->name, &cursor, err);
    if (rc) return rc;
    if (cursor == INT64_MAX) cursor = 0;
    json_int_t backlog = 0, delayed = 0, dead = 0;
    char *oldest = NULL, *last_delivery = NULL;
    sqlite3_stmt *s =
        filtered(st, t, "SELECT count(*), min(l.at) FROM herald_log l WHERE l.seq > ?1 AND ", "",
                 cursor, err);
    if (!s) return HR_EDB;
    if (sqlite3_step(s) == SQLITE_ROW) {
        backlog = sqlite3_column_int64(s, 0);
        oldest = col_text(s, 1) ? hr_xstrdup(col_text(s, 1)) : NULL;
    } else {
        rc = hr_sq_fail(st, err, "counting the backlog");
    }
    sqlite3_finalize(s);
    if (rc) return rc;
    s = hr_sq_stmt(st,
                   "SELECT coalesce(sum(d.dead = 0), 0), coalesce(sum(d.dead = 1), 0),"
                   " min(CASE WHEN d.dead = 0 THEN l.at END), (SELECT max(at) FROM herald_attempts"
                   " WHERE trigger = ?1 AND status BETWEEN 200 AND 299)"
                   " FROM herald_delayed d LEFT JOIN herald_log l ON l.seq = d.seq"
                   " WHERE d.trigger = ?1",
                   err);
    if (!s) {
        free(oldest);
        return HR_EDB;
    }
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW) {
        delayed = sqlite3_column_int64(s, 0);
        dead = sqlite3_column_int64(s, 1);
        const char *o = col_text(s, 2);
        if (o && (!oldest || strcmp(o, oldest) < 0)) {
            free(oldest);
            oldest = hr_xstrdup(o);
        }
        last_delivery = col_text(s, 3) ? hr_xstrdup(col_text(s, 3)) : NULL;
    } else {
        rc = hr_sq_fail(st, err, "counting retries");
    }
    sqlite3_reset(s);
    int64_t at = 0;
    json_t *lag = json_null();
    if (oldest && hr_sq_parse_time(oldest, &at) == 0) {
        json_decref(lag);
        lag = json_real(now > at ? (double)(now - at) / 1e6 : 0.0);
    }
    if (!rc)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}", "trigger", t->name,
                                             "backlog", backlog, "delayed", delayed, "dead", dead,
                                             "last_delivery_at", text_or_null(last_delivery),
                                             "lag_seconds", lag));
    else
        json_decref(lag);
    free(oldest);
    free(last_delivery);
    return rc;
}

int hr_sq_status(hr_store_t *st, json_t **out, hr_err_t *err)
{
    int yes = 0, rc = installed(st, &yes, err);
    if (rc) return rc;
    json_t *arr = json_array();
    if (yes) {
        hr_trigger_def_t *defs = NULL;
        size_t n = 0;
        int64_t now = hr_wall_us();
        if ((rc = hr_sq_exec(st, "BEGIN", err, "starting a read")) == 0) {
            rc = hr_sq_load_defs(st, &defs, &n, err);
            for (size_t i = 0; i < n && !rc; i++)
                rc = status_one(st, &defs[i], now, arr, err);
            sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
        }
        hr_sq_free_defs(defs, n);
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* The events of one trigger, newest first, per q (see the table at the top). */
static int events_of_trigger(hr_store_t *st, const hr_event_query_t *q, json_t *arr, hr_err_t *err)
{
    hr_trigger_def_t def;
    int rc = load_def(st, q->trigger, &def, err);
    if (rc) return rc;
    int64_t cursor = 0;
    if ((rc = cursor_of(st, def.name, &cursor, err))) {
        hr_trigger_def_clear(&def);
        return rc;
    }
    hr_buf_t sql = HR_BUF_INIT, tail = HR_BUF_INIT;
    int np = 0;
    /* ?1 is the trigger's name throughout. */
    hr_buf_puts(&sql, "SELECT " EVENT_COLS " FROM herald_log l WHERE ");
    if (q->dead_only) {
        hr_buf_puts(&sql,
                    "l.seq IN (SELECT seq FROM herald_delayed WHERE trigger = ?1 AND dead = 1)");
    } else {
        hr_buf_puts(&sql, "((");
        hr_sq_filter_sql(&def, 2, &sql, &np);
        hr_buf_printf(&sql, ")%s OR l.seq IN (SELECT seq FROM herald_delayed WHERE trigger = ?1%s)",
                      q->pending_only ? " AND l.seq > ?4" : "",
                      q->pending_only ? " AND dead = 0" : "");
        if (!q->pending_only)
            hr_buf_puts(&sql,
                        " OR l.id IN (SELECT event_id FROM herald_attempts WHERE trigger = ?1)");
        hr_buf_puts(&sql, ")");
    }
    hr_buf_puts(&sql, " ORDER BY l.seq DESC");
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, sql.data, -1, &s, NULL) != SQLITE_OK) {
        rc = hr_sq_fail(st, err, "preparing the event list");
        goto out;
    }
    sqlite3_bind_text(s, 1, def.name, -1, SQLITE_TRANSIENT);
    if (!q->dead_only) hr_sq_filter_bind(s, &def, 2);
    if (q->pending_only) sqlite3_bind_int64(s, 4, cursor);
    int limit = q->limit > 0 ? q->limit : DEFAULT_LIMIT, skip = q->offset > 0 ? q->offset : 0;
    int r;
    while ((int)json_array_size(arr) < limit && (r = sqlite3_step(s)) == SQLITE_ROW) {
        hr_event_t ev;
        row_event(s, &def, &ev);
        json_t *d = NULL;
        if ((rc = delivery_json(st, def.name, ev.seq, ev.id, cursor, &d, err))) break;
        if (!d) continue;
        const char *state = json_string_value(json_object_get(d, "state"));
        int keep = 1;
        /* An event not yet attempted after the cursor: only if the column filter lets it through.
         */
        if (strcmp(state, "pending") == 0 &&
            json_integer_value(json_object_get(d, "attempts")) == 0 && ev.seq > cursor &&
            strcmp(ev.op, "MANUAL") != 0 && !hr_event_matches(&def, &ev))
            keep = 0;
        if (q->pending_only && strcmp(state, "pending") != 0 && strcmp(state, "retrying") != 0)
            keep = 0;
        if (keep && skip > 0) {
            skip--;
            keep = 0;
        }
        if (!keep) {
            json_decref(d);
            continue;
        }
        json_t *e = event_json(s, 0);
        json_object_set_new(e, "deliveries", json_pack("[o]", d));
        json_array_append_new(arr, e);
    }
out:
    sqlite3_finalize(s);
    hr_buf_free(&sql);
    hr_buf_free(&tail);
    hr_trigger_def_clear(&def);
    return rc;
}

int hr_sq_events(hr_store_t *st, const hr_event_query_t *q, json_t **out, hr_err_t *err)
{
    if (q->pending_only && !q->trigger)
        return hr_err_set(err, HR_EINVAL, "listing pending events needs a trigger");
    int yes = 0, rc = installed(st, &yes, err);
    if (rc) return rc;
    if (!yes && q->trigger) return hr_err_set(err, HR_ENOTFOUND, "no trigger named %s", q->trigger);
    json_t *arr = json_array();
    if (!yes) {
        *out = arr;
        return 0;
    }
    if ((rc = hr_sq_exec(st, "BEGIN", err, "starting a read"))) {
        json_decref(arr);
        return rc;
    }
    if (q->trigger) {
        rc = events_of_trigger(st, q, arr, err);
    } else {
        sqlite3_stmt *s =
            q->dead_only
                ? hr_sq_stmt(st,
                             "SELECT " EVENT_COLS " FROM herald_log l WHERE l.seq IN (SELECT seq"
                             " FROM herald_delayed WHERE dead = 1) ORDER BY l.seq DESC"
                             " LIMIT ?1 OFFSET ?2",
                             err)
                : hr_sq_stmt(st,
                             "SELECT " EVENT_COLS " FROM herald_log l ORDER BY l.seq DESC"
                             " LIMIT ?1 OFFSET ?2",
                             err);
        if (!s) {
            rc = HR_EDB;
        } else {
            sqlite3_bind_int(s, 1, q->limit > 0 ? q->limit : DEFAULT_LIMIT);
            sqlite3_bind_int(s, 2, q->offset > 0 ? q->offset : 0);
            int r;
            while ((r = sqlite3_step(s)) == SQLITE_ROW)
                json_array_append_new(arr, event_json(s, 0));
            if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "listing events");
            sqlite3_reset(s);
        }
    }
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int hr_sq_event(hr_store_t *st, const char *event_id, int attempts_limit, int attempts_offset,
                json_t **out, hr_err_t *err)
{
    int yes = 0, rc = installed(st, &yes, err);
    if (rc) return rc;
    if (!yes) return hr_err_set(err, HR_ENOTFOUND, "no event with id %s", event_id);
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
    int64_t seq = 0;
    if (r == SQLITE_ROW) {
        e = event_json(s, 0);
        seq = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    if (r == SQLITE_DONE)
        rc = hr_err_set(err, HR_ENOTFOUND, "no event with id %s", event_id);
    else if (r != SQLITE_ROW)
        rc = hr_sq_fail(st, err, "reading the event");
    if (rc) goto out;
    s = hr_sq_stmt(st,
                   "SELECT trigger FROM herald_attempts WHERE event_id = ?1 UNION"
                   " SELECT trigger FROM herald_delayed WHERE event_id = ?1 ORDER BY 1",
                   err);
    if (!s) {
        rc = HR_EDB;
        goto out;
    }
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    char **names = NULL;
    size_t n = 0;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        names = hr_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = hr_xstrdup(col_text(s, 0));
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "reading deliveries");
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t cursor = 0;
        json_t *d = NULL;
        rc = cursor_of(st, names[i], &cursor, err);
        if (!rc) rc = delivery_json(st, names[i], seq, event_id, cursor, &d, err);
        if (d) json_array_append_new(deliveries, d);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
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
    int yes = 0, rc = installed(st, &yes, err);
    if (rc) return rc;
    json_t *arr = json_array();
    if (yes) {
        sqlite3_stmt *s = hr_sq_stmt(st,
                                     "SELECT " ATTEMPT_COLS " FROM herald_attempts WHERE"
                                     " (?1 IS NULL OR trigger = ?1) ORDER BY id DESC"
                                     " LIMIT ?2 OFFSET ?3",
                                     err);
        if (!s) {
            json_decref(arr);
            return HR_EDB;
        }
        if (trigger) sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 2, limit > 0 ? limit : DEFAULT_LIMIT);
        sqlite3_bind_int(s, 3, offset > 0 ? offset : 0);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW)
            json_array_append_new(arr, attempt_json(s));
        if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "listing attempts");
        sqlite3_reset(s);
    }
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
