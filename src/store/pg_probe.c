/* pg_probe.c: the change token of the PostgreSQL backend (store.h, change_token), which lets an
 * idle dispatcher look for new events with one cheap statement for all its triggers instead of
 * one log read per trigger.
 *
 * The token is pg_current_snapshot() as text, "xmin:xmax:xip,...". Every transaction that writes
 * a log row has an xid (the row stores it), and its end, commit or rollback, changes the
 * snapshot: if its xid was the highest completed one, xmax advances; otherwise it was below
 * xmax and running, so it was in xip and leaves it. Nothing can bring an older snapshot back:
 * xmax never decreases, and while it stays the same xip only shrinks (new xids are >= xmax). So
 * "the token differs from the previous one" holds after every commit, including a long
 * transaction that ends below xmax, which xmax alone would miss.
 *
 * The snapshot is the cluster's: commits in other databases of the cluster and herald's own
 * settles change it too. Those are false alarms, each costing one read per trigger; read-only
 * statements (herald's polls, GraphQL's probes) have no xid and change nothing.
 *
 * The statement runs prepared on the store's asynchronous connection, behind whatever is
 * queued there (the connection answers in FIFO order). */
#include <stdlib.h>

#include "store/pg_int.h"

typedef struct probe {
    void (*cb)(void *ud, int rc, const char *token);
    void *ud;
} probe_t;

static void on_token(void *ud, int rc, PGresult *res, const char *msg)
{
    (void)msg;
    probe_t *p = ud;
    const char *token = NULL;
    if (!rc && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        token = PQgetvalue(res, 0, 0);
    else if (!rc)
        rc = HR_EDB;
    p->cb(p->ud, rc, token);
    if (res) PQclear(res);
    free(p);
}

int hr_pg_change_token(hr_store_t *st, void (*cb)(void *ud, int rc, const char *token), void *ud)
{
    hr_pgconn_t *c = hr_pg_async(st);
    if (!c) return HR_EINVAL;
    probe_t *p = hr_xcalloc(1, sizeof *p);
    p->cb = cb;
    p->ud = ud;
    int rc = hr_pgconn_query_stmt(c, "hr_change_token", "SELECT pg_current_snapshot()::text", 0,
                                  NULL, on_token, p);
    if (rc) free(p);
    return rc;
}
