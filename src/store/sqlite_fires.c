/* sqlite_fires.c: the schedules' operations of the SQLite backend (fire, last_fire, and the
 * one-off events: schedule_one_off, delete_scheduled, one_offs; store.h).
 *
 * herald_fires has one row per (schedule, fire time in Unix seconds), its primary key. A fire
 * inserts that row and, only when it was new, the log event, in one transaction. SQLite serves
 * one herald process, but the key still makes a fire idempotent across restarts.
 *
 * A one-off event's log row (op ONE_OFF) and its delayed row for the pseudo-trigger
 * HR_ONE_OFF_TRIGGER, due at its time, commit in one transaction. */
#include "store/sqlite_int.h"

#include <stdio.h>
#include <string.h>

int hr_sq_fire(hr_store_t *st, const char *name, int64_t fire_at_s, const char *new_json,
               int *written, hr_err_t *err)
{
    int rc = hr_sq_begin(st, err);
    if (rc) return rc;
    sqlite3_stmt *s = hr_sq_stmt(
        st, "INSERT INTO herald_fires (schedule, fire_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        err);
    if (!s) {
        rc = HR_EDB;
        goto fail;
    }
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, fire_at_s);
    if ((rc = hr_sq_step_done(st, s, err, "recording a fire"))) goto fail;
    *written = sqlite3_changes(st->db) > 0;
    if (*written) {
        s = hr_sq_stmt(st, "INSERT INTO herald_log (source, op, new) VALUES (?1, 'CRON', json(?2))",
                       err);
        if (!s) {
            rc = HR_EDB;
            goto fail;
        }
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, new_json, -1, SQLITE_TRANSIENT);
        if ((rc = hr_sq_step_done(st, s, err, "appending a fire to the log"))) goto fail;
    }
    return hr_sq_commit(st, err);
fail:
    hr_sq_rollback(st);
    return rc;
}

int hr_sq_last_fire(hr_store_t *st, const char *name, int64_t *at_s, hr_err_t *err)
{
    /* A schedule deleted and created again starts over from its new creation. */
    sqlite3_stmt *s =
        hr_sq_stmt(st,
                   "SELECT (SELECT max(fire_at) FROM herald_fires WHERE schedule = ?1),"
                   " (SELECT CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER)"
                   " FROM herald_triggers WHERE name = ?1)",
                   err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s), rc = 0;
    if (r != SQLITE_ROW) {
        rc = hr_sq_fail(st, err, "reading the last fire");
    } else if (sqlite3_column_type(s, 0) == SQLITE_NULL &&
               sqlite3_column_type(s, 1) == SQLITE_NULL) {
        rc = hr_err_set(err, HR_ENOTFOUND, "schedule %s not found", name);
    } else {
        int64_t a = sqlite3_column_int64(s, 0), b = sqlite3_column_int64(s, 1);
        *at_s = a > b ? a : b;
    }
    sqlite3_reset(s);
    return rc;
}

int hr_sq_schedule_one_off(hr_store_t *st, const char *new_json, int64_t due_us, char id_out[40],
                           hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if ((rc = hr_sq_begin(st, err))) return rc;
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "INSERT INTO herald_log (source, op, new) VALUES (?1, 'ONE_OFF',"
                                 " json(?2)) RETURNING seq, id",
                                 err);
    if (!s) {
        rc = HR_EDB;
        goto fail;
    }
    sqlite3_bind_text(s, 1, HR_ONE_OFF_TRIGGER, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, new_json, -1, SQLITE_TRANSIENT);
    int64_t seq = 0;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        seq = sqlite3_column_int64(s, 0);
        snprintf(id_out, 40, "%s", (const char *)sqlite3_column_text(s, 1));
        r = sqlite3_step(s);
    }
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "appending the one-off event");
    sqlite3_reset(s);
    if (rc) goto fail;
    char due[32];
    hr_sq_format_time(due_us, due);
    s = hr_sq_stmt(st,
                   "INSERT INTO herald_delayed (trigger, seq, event_id, attempts, due_at, dead)"
                   " VALUES (?1, ?2, ?3, 0, ?4, 0)",
                   err);
    if (!s) {
        rc = HR_EDB;
        goto fail;
    }
    sqlite3_bind_text(s, 1, HR_ONE_OFF_TRIGGER, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, seq);
    sqlite3_bind_text(s, 3, id_out, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 4, due, -1, SQLITE_TRANSIENT);
    if ((rc = hr_sq_step_done(st, s, err, "queueing the one-off event"))) goto fail;
    return hr_sq_commit(st, err);
fail:
    hr_sq_rollback(st);
    return rc;
}

int hr_sq_delete_scheduled(hr_store_t *st, int cron, const char *event_id, hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    if ((rc = hr_sq_begin(st, err))) return rc;
    sqlite3_stmt *s = hr_sq_stmt(
        st,
        "UPDATE herald_delayed SET dead = 1, last_error = 'cancelled by delete_scheduled_event',"
        " updated_at = " HR_SQ_NOW " WHERE dead = 0 AND (trigger, seq) IN (SELECT CASE WHEN"
        " l.op = 'CRON' THEN l.source ELSE ?3 END, l.seq FROM herald_log l WHERE l.id = ?1"
        " AND l.op = ?2)",
        err);
    if (!s) {
        rc = HR_EDB;
        goto fail;
    }
    sqlite3_bind_text(s, 1, event_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, cron ? "CRON" : "ONE_OFF", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, HR_ONE_OFF_TRIGGER, -1, SQLITE_STATIC);
    if ((rc = hr_sq_step_done(st, s, err, "cancelling the scheduled event"))) goto fail;
    if (sqlite3_changes(st->db) == 0) {
        rc = hr_err_set(err, HR_ENOTFOUND, "scheduled event %s not found (or not pending)",
                        event_id);
        goto fail;
    }
    return hr_sq_commit(st, err);
fail:
    hr_sq_rollback(st);
    return rc;
}

int hr_sq_one_offs(hr_store_t *st, json_t **out, hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    sqlite3_stmt *s = hr_sq_stmt(
        st,
        "SELECT l.id, json_extract(l.new, '$.scheduled_time'), json_extract(l.new, '$.webhook'),"
        " json_extract(l.new, '$.comment'), d.attempts, d.due_at FROM herald_delayed d"
        " JOIN herald_log l ON l.seq = d.seq WHERE d.trigger = ?1 AND d.dead = 0"
        " ORDER BY d.due_at, d.seq",
        err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, HR_ONE_OFF_TRIGGER, -1, SQLITE_STATIC);
    json_t *a = json_array();
    int r;
#define TXT(i)                                                                                     \
    (sqlite3_column_type(s, i) == SQLITE_NULL                                                      \
         ? json_null()                                                                             \
         : json_string((const char *)sqlite3_column_text(s, i)))
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(a,
                              json_pack("{s:o,s:o,s:o,s:o,s:i,s:o}", "id", TXT(0), "scheduled_time",
                                        TXT(1), "webhook", TXT(2), "comment", TXT(3), "attempts",
                                        sqlite3_column_int(s, 4), "next_attempt_at", TXT(5)));
#undef TXT
    if (r != SQLITE_DONE) rc = hr_sq_fail(st, err, "listing one-off events");
    sqlite3_reset(s);
    if (rc) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}
