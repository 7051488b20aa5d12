/* pg_fires.c: the schedules' operations of the PostgreSQL backend (fire, last_fire; store.h).
 *
 * herald.fires has one row per (schedule, fire time), its primary key. A fire inserts that row
 * and, only when the insert did not conflict, the log event, in one statement: with several
 * herald processes on one database each fire reaches the log exactly once, whichever process
 * (or how many of them) wrote it. Both run on the blocking admin connection: one short
 * statement per fire, at most once a minute per schedule. */
#include <stdio.h>
#include <stdlib.h>

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
                             " SELECT $1, 'CRON', $3::jsonb FROM f",
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
