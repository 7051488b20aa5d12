/* sqlite_fires.c: the schedules' operations of the SQLite backend (fire, last_fire; store.h).
 *
 * herald_fires has one row per (schedule, fire time in Unix seconds), its primary key. A fire
 * inserts that row and, only when it was new, the log event, in one transaction. SQLite serves
 * one herald process, but the key still makes a fire idempotent across restarts. */
#include "store/sqlite_int.h"

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
