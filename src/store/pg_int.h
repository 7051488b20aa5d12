/* pg_int.h: internals of the PostgreSQL backend, shared by store_pg*.c only. */
#ifndef HR_PG_INT_H
#define HR_PG_INT_H

#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"

/* An asynchronous libpq connection on a libuv loop. Queries run one at a time, in FIFO order.
 * When the connection breaks, the query in progress and every queued one fail (callback with
 * HR_EDB), and the connection re-establishes itself with backoff (100 ms doubling to 5 s).
 * Queries submitted while waiting to reconnect fail at once, through the loop (never
 * re-entrantly); while a connection attempt is under way they wait for it. */
typedef struct hr_pgconn hr_pgconn_t;

/* The callback owns res (PQclear it); res is NULL when rc != 0. */
typedef void (*hr_pgconn_cb)(void *ud, int rc, PGresult *res, const char *errmsg);

int hr_pgconn_init(uv_loop_t *loop, const char *url, hr_pgconn_t **out, hr_err_t *err);
/* Sends sql with text parameters (NULL entries are SQL NULL); params are copied. The callback
 * receives the last result of the query: PGRES_TUPLES_OK or PGRES_COMMAND_OK give rc 0; any
 * other status gives HR_EDB with the server's message. */
int hr_pgconn_query(hr_pgconn_t *c, const char *sql, int nparams, const char *const *params,
                    hr_pgconn_cb cb, void *ud);
int hr_pgconn_ready(const hr_pgconn_t *c);
uint64_t hr_pgconn_reconnects(const hr_pgconn_t *c);
void hr_pgconn_close(hr_pgconn_t *c, void (*done)(void *ud), void *ud);

/* Blocking connection for the CLI: application_name herald. */
PGconn *hr_pg_connect_blocking(const char *url, hr_err_t *err);

/* The schema migrations, in order; version i+1 is hr_pg_migrations[i]. */
extern const char *const hr_pg_migrations[];
extern const int hr_pg_schema_version;

#endif
