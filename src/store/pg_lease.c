/* pg_lease.c: trigger leases on PostgreSQL (store.h, leases): which of several herald serve
 * processes sharing a database delivers each trigger.
 *
 * herald.leases (migration 4) has one row per trigger: its holder (an id each process makes at
 * start), the holder's backend (pg_backend_pid() and its backend_start) and expires_at. One
 * statement, sent every third of the lease's time to live, renews the leases a process holds
 * and takes those that are free:
 *
 *   - a trigger without a row is taken;
 *   - a row of ours is renewed;
 *   - a row of another holder is taken when it has expired (the holder stopped renewing: hung,
 *     cut off from the database), or at once when its backend is gone (the holder exited or
 *     crashed, and its connection with it): no row of pg_stat_activity has its pid and start.
 *     A backend_start that pg_stat_activity hides (another role without pg_read_all_stats)
 *     counts as alive; behind a pooler in transaction mode, the backend is the pool's and lives
 *     on, so such a lease is only taken once it has expired.
 *
 * Concurrent takers of one row serialise on it (INSERT … ON CONFLICT DO UPDATE locks it, and the
 * second re-checks the condition against the first's new row), so at most one holds a lease at
 * any time as the database sees it. The holder stops reading new pages on its own when it could
 * not renew within the time to live (dispatcher.c), never later than another may take the
 * lease by expiry, since its clock starts when the renewal is sent. A delivery in flight when a
 * lease moves may be made again by the new holder: at least once, as everywhere. */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

#define LEASE_SQL                                                                                  \
    "WITH want AS ("                                                                               \
    "  SELECT w.name, w.i FROM unnest($1::text[]) WITH ORDINALITY AS w(name, i)),"                 \
    " me AS (SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),"       \
    " got AS ("                                                                                    \
    "  INSERT INTO herald.leases AS l (trigger, owner, pid, backend_start, expires_at)"            \
    "  SELECT want.name, $2, me.pid, me.backend_start,"                                            \
    "   now() + $3::bigint * interval '1 millisecond' FROM want, me"                               \
    "  ON CONFLICT (trigger) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,"            \
    "   backend_start = excluded.backend_start, expires_at = excluded.expires_at"                  \
    "  WHERE l.owner = excluded.owner OR l.expires_at < now() OR NOT EXISTS ("                     \
    "   SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid"                                      \
    "    AND (a.backend_start IS NULL OR a.backend_start = l.backend_start))"                      \
    "  RETURNING l.trigger)"                                                                       \
    " SELECT (got.trigger IS NOT NULL)::int FROM want LEFT JOIN got ON got.trigger = want.name"    \
    " ORDER BY want.i"

typedef struct lease_op {
    size_t n;
    void (*cb)(void *ud, int rc, const unsigned char *held);
    void *ud;
} lease_op_t;

static void on_leases(void *ud, int rc, PGresult *res, const char *msg)
{
    (void)msg;
    lease_op_t *op = ud;
    unsigned char *held = NULL;
    if (!rc && (size_t)PQntuples(res) != op->n) rc = HR_EDB;
    if (!rc) {
        held = hr_xcalloc(op->n ? op->n : 1, 1);
        for (size_t i = 0; i < op->n; i++)
            held[i] = strcmp(PQgetvalue(res, (int)i, 0), "1") == 0;
    }
    op->cb(op->ud, rc, held);
    free(held);
    if (res) PQclear(res);
    free(op);
}

int hr_pg_leases(hr_store_t *st, const char *owner, const char *const *names, size_t n,
                 uint64_t ttl_ms, void (*cb)(void *ud, int rc, const unsigned char *held), void *ud)
{
    hr_pgconn_t *c = hr_pg_async(st);
    if (!c) return HR_EINVAL;
    hr_buf_t list = HR_BUF_INIT;
    hr_pg_text_array(names, n, &list);
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)ttl_ms);
    const char *params[3] = {list.data, owner, ttl};
    lease_op_t *op = hr_xcalloc(1, sizeof *op);
    op->n = n;
    op->cb = cb;
    op->ud = ud;
    int rc = hr_pgconn_query_stmt(c, "hr_leases", LEASE_SQL, 3, params, on_leases, op);
    hr_buf_free(&list);
    if (rc) free(op);
    return rc;
}
