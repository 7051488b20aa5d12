/* pg_fires.c: the schedules' operations of the PostgreSQL backend (fire, last_fire, and the
 * one-off events: schedule_one_off, delete_scheduled, one_offs; store.h).
 *
 * herald.fires has one row per (schedule, fire time), its primary key. A fire inserts that row
 * and, only when the insert did not conflict, the log event, in one statement: with several
 * herald processes on one database each fire reaches the log exactly once, whichever process
 * (or how many of them) wrote it. Both run on the blocking admin connection: one short
 * statement per fire, at most once a minute per schedule.
 *
 * A one-off event is one statement too: its log row (op ONE_OFF) and its delayed row for the
 * pseudo-trigger HR_ONE_OFF_TRIGGER, due at its time, commit together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

int hr_pg_fire(hr_store_t *st, const char *name, int64_t fire_at_s, const char *new_json,
               int *written, hr_err_t *err)
{
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) return HR_EDB;
    char at[32];
    snprintf(at, sizeof at, "%lld", (long long)fire_at_s);
    const char *p[] = {name, at, new_json};
    PGresult *r = hr_pg_exec(conn,
                             "WITH f AS (INSERT INTO herald.fires (schedule, fire_at)"
                             " VALUES ($1, to_timestamp($2::bigint)) ON CONFLICT DO NOTHING"
                             " RETURNING 1)"
                             " INSERT INTO herald.log (source, op, new)"
                             " SELECT $1, 'CRON', $3::json FROM f",
                             3, p, err, "recording a fire");
    if (!r) return err && err->code ? err->code : HR_EDB;
    *written = atoi(PQcmdTuples(r)) > 0;
    PQclear(r);
    return 0;
}

int hr_pg_last_fire(hr_store_t *st, const char *name, int64_t *at_s, hr_err_t *err)
{
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) return HR_EDB;
    const char *p[] = {name};
    /* A schedule deleted and created again starts over from its new creation. */
    PGresult *r = hr_pg_exec(conn,
                             "SELECT floor(extract(epoch FROM greatest("
                             " (SELECT max(fire_at) FROM herald.fires WHERE schedule = $1),"
                             " (SELECT created_at FROM herald.triggers WHERE name = $1))))::bigint",
                             1, p, err, "reading the last fire");
    if (!r) return err && err->code ? err->code : HR_EDB;
    int rc = 0;
    if (PQgetisnull(r, 0, 0))
        rc = hr_err_set(err, HR_ENOTFOUND, "schedule %s not found", name);
    else
        *at_s = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

int hr_pg_schedule_one_off(hr_store_t *st, const char *new_json, int64_t due_us, char id_out[40],
                           hr_err_t *err)
{
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) return HR_EDB;
    int rc = hr_pg_require_schema(conn, err);
    if (rc) return rc;
    char due[32];
    snprintf(due, sizeof due, "%lld", (long long)due_us);
    const char *p[] = {HR_ONE_OFF_TRIGGER, new_json, due};
    PGresult *r =
        hr_pg_exec(conn,
                   "WITH e AS (INSERT INTO herald.log (source, op, new)"
                   " VALUES ($1, 'ONE_OFF', $2::json) RETURNING seq, id)"
                   " INSERT INTO herald.delayed (trigger, seq, event_id, attempts, due_at)"
                   " SELECT $1, seq, id, 0, to_timestamp($3::bigint / 1e6) FROM e"
                   " RETURNING event_id::text",
                   3, p, err, "scheduling the event");
    if (!r) return err && err->code ? err->code : HR_EDB;
    snprintf(id_out, 40, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int hr_pg_delete_scheduled(hr_store_t *st, int cron, const char *event_id, hr_err_t *err)
{
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) return HR_EDB;
    int rc = hr_pg_require_schema(conn, err);
    if (rc) return rc;
    const char *p[] = {event_id, cron ? "CRON" : "ONE_OFF", HR_ONE_OFF_TRIGGER};
    PGresult *r = hr_pg_exec(conn,
                             "UPDATE herald.delayed d SET dead = true, updated_at = now(),"
                             " last_error = 'cancelled by delete_scheduled_event'"
                             " FROM herald.log l WHERE l.id = $1::uuid AND l.op = $2"
                             " AND d.seq = l.seq AND NOT d.dead"
                             " AND d.trigger = CASE WHEN $2 = 'CRON' THEN l.source ELSE $3 END",
                             3, p, err, "cancelling the scheduled event");
    if (!r) return err && err->code ? err->code : HR_EDB;
    if (strcmp(PQcmdTuples(r), "0") == 0)
        rc = hr_err_set(err, HR_ENOTFOUND, "scheduled event %s not found (or not pending)",
                        event_id);
    PQclear(r);
    return rc;
}

int hr_pg_one_offs(hr_store_t *st, json_t **out, hr_err_t *err)
{
    PGconn *conn = hr_pg_admin(st, err);
    if (!conn) return HR_EDB;
    int rc = hr_pg_require_schema(conn, err);
    if (rc) return rc;
    const char *p[] = {HR_ONE_OFF_TRIGGER};
    PGresult *r = hr_pg_exec(
        conn,
        "SELECT coalesce(json_agg(json_build_object('id', l.id, 'scheduled_time',"
        " l.new->'scheduled_time', 'webhook', l.new->'webhook', 'comment', l.new->'comment',"
        " 'attempts', d.attempts, 'next_attempt_at',"
        " to_char(d.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
        " ORDER BY d.due_at, d.seq), '[]')::text"
        " FROM herald.delayed d JOIN herald.log l ON l.seq = d.seq"
        " WHERE d.trigger = $1 AND NOT d.dead",
        1, p, err, "listing one-off events");
    if (!r) return err && err->code ? err->code : HR_EDB;
    *out = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    PQclear(r);
    if (!*out) return hr_err_set(err, HR_EDB, "listing one-off events: invalid JSON");
    return 0;
}
