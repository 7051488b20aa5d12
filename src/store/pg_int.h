/* pg_int.h: internals of the PostgreSQL backend, shared by store_pg*.c only. */
#ifndef HR_PG_INT_H
#define HR_PG_INT_H

#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/store.h"

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
/* The same as a prepared statement named key (a string literal, unique per sql text, that
 * outlives the connection): prepared once per connection (PQsendPrepare) the first time it is
 * sent, again after a reconnect, then executed with PQsendQueryPrepared, which spares the server
 * parsing and planning the text on every call. A prepare that fails fails this query with the
 * server's message (as the unprepared query would) and is tried again next time. For the hot
 * path (reads, settles); more than HR_PGCONN_MAX_STMTS keys fall back to hr_pgconn_query. */
#define HR_PGCONN_MAX_STMTS 16
int hr_pgconn_query_stmt(hr_pgconn_t *c, const char *key, const char *sql, int nparams,
                         const char *const *params, hr_pgconn_cb cb, void *ud);
int hr_pgconn_ready(const hr_pgconn_t *c);
uint64_t hr_pgconn_reconnects(const hr_pgconn_t *c);
void hr_pgconn_close(hr_pgconn_t *c, void (*done)(void *ud), void *ud);

/* Blocking connection for the CLI: application_name herald. */
PGconn *hr_pg_connect_blocking(const char *url, hr_err_t *err);

/* The schema migrations, in order; version i+1 is hr_pg_migrations[i]. */
extern const char *const hr_pg_migrations[];
extern const int hr_pg_schema_version;

/* --- Shared by store_pg.c and pg_ops.c: the blocking admin connection ------------------- */

/* The admin connection of st, (re)connected on demand; NULL with err set when unreachable. */
PGconn *hr_pg_admin(hr_store_t *st, hr_err_t *err);
/* Runs one statement with text parameters; its result (caller clears) or NULL with err set.
 * Errors are HR_EDB, except data exceptions (SQLSTATE class 22: invalid JSON, uuid, time...)
 * and RAISE EXCEPTION in herald's functions, which are the caller's input: HR_EINVAL. */
PGresult *hr_pg_exec(PGconn *conn, const char *sql, int n, const char *const *params, hr_err_t *err,
                     const char *what);
/* Runs parameterless statements (simple query protocol); 0 or an error as hr_pg_exec. */
int hr_pg_cmd(PGconn *conn, const char *sql, hr_err_t *err, const char *what);
/* 0 when herald's schema is installed at this binary's version; HR_ESCHEMA otherwise. */
int hr_pg_require_schema(PGconn *conn, hr_err_t *err);
/* Loads one stored definition; HR_ENOTFOUND ("trigger NAME not found") when absent. With
 * lock, the row is locked FOR SHARE until the end of the transaction (no concurrent delete). */
int hr_pg_load_def(PGconn *conn, const char *name, int lock, hr_trigger_def_t *out, hr_err_t *err);
/* The read filter of t as two text parameters: table triggers get their source and an array of
 * their row operations; events triggers an array of exact types and one of LIKE patterns. */
void hr_pg_filter_params(const hr_trigger_def_t *t, hr_buf_t *p6, hr_buf_t *p7);

/* The operator operations of hr_store_pg_ops (pg_ops.c); see store.h. */
int hr_pg_emit(hr_store_t *st, const char *type, const char *payload_json, char id_out[40],
               hr_err_t *err);
int hr_pg_invoke(hr_store_t *st, const char *trigger, const char *payload_json, char id_out[40],
                 hr_err_t *err);
int hr_pg_redeliver(hr_store_t *st, const char *event_id, const char *trigger, int *queued,
                    hr_err_t *err);
int hr_pg_replay(hr_store_t *st, const char *trigger, const hr_replay_range_t *range,
                 int64_t *queued, hr_err_t *err);
int hr_pg_fire(hr_store_t *st, const char *name, int64_t fire_at_s, const char *new_json,
               int *written, hr_err_t *err);
int hr_pg_last_fire(hr_store_t *st, const char *name, int64_t *at_s, hr_err_t *err);
int hr_pg_schedule_one_off(hr_store_t *st, const char *new_json, int64_t due_us, char id_out[40],
                           hr_err_t *err);
int hr_pg_delete_scheduled(hr_store_t *st, int cron, const char *event_id, hr_err_t *err);
int hr_pg_one_offs(hr_store_t *st, json_t **out, hr_err_t *err);
int hr_pg_status(hr_store_t *st, json_t **out, hr_err_t *err);
int hr_pg_events(hr_store_t *st, const hr_event_query_t *q, json_t **out, hr_err_t *err);
int hr_pg_event(hr_store_t *st, const char *event_id, int attempts_limit, int attempts_offset,
                json_t **out, hr_err_t *err);
int hr_pg_attempts(hr_store_t *st, const char *trigger, int limit, int offset, json_t **out,
                   hr_err_t *err);
/* The event object (store.h's shape) of row `row` of r, whose columns from c0 on are l.seq,
 * l.id::text, created_at as herald's time text, l.source, l.op, l.old::text, l.new::text,
 * l.session::text. */
json_t *hr_pg_event_json(PGresult *r, int row, int c0);

/* The dispatcher's idle change probe (pg_probe.c; see store.h). */
int hr_pg_change_token(hr_store_t *st, void (*cb)(void *ud, int rc, const char *token), void *ud);
/* Appends a PostgreSQL text[] literal of v[0..n) (for a $n::text[] parameter). */
void hr_pg_text_array(const char *const *v, size_t n, hr_buf_t *out);
int hr_pg_leases(hr_store_t *st, const char *owner, const char *const *names, size_t n,
                 uint64_t ttl_ms, void (*cb)(void *ud, int rc, const unsigned char *held),
                 void *ud);

/* --- GraphQL's operations (pg_stream.c; see store.h) ------------------------------------ */
/* The store's asynchronous connection (NULL for CLI stores). */
hr_pgconn_t *hr_pg_async(hr_store_t *st);
/* The state of the stream horizon, kept by the store: made on first use, freed with the store. */
typedef struct hr_pg_stream hr_pg_stream_t;
hr_pg_stream_t **hr_pg_stream_slot(hr_store_t *st);
void hr_pg_stream_free(hr_pg_stream_t *s);
int hr_pg_stream_horizon(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t horizon), void *ud);
int hr_pg_stream_read(hr_store_t *st, int64_t after, int64_t upto, size_t limit,
                      void (*cb)(void *ud, int rc, json_t *events, const char *errmsg), void *ud);
int hr_pg_query_events(hr_store_t *st, const json_t *where, const json_t *order_by, int limit,
                       int offset, json_t **out, hr_err_t *err);

#endif
