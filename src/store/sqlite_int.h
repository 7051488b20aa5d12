/* sqlite_int.h: internals of the SQLite backend, shared by store_sqlite.c (connection, schema,
 * apply), sqlite_reader.c (the dispatcher's operations, wake-ups), sqlite_capture.c (capture
 * triggers) and sqlite_ops.c (operator and reporting operations). Nothing outside src/store/
 * includes this file. */
#ifndef HR_SQLITE_INT_H
#define HR_SQLITE_INT_H

#include <sqlite3.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/store.h"

/* herald's timestamps: RFC 3339 UTC with six fractional digits, so that text order is time
 * order. SQLite's clock has millisecond resolution: the last three digits it writes are 0. */
#define HR_SQ_NOW "(strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')"

/* A completed asynchronous operation waiting to be reported through the loop. */
typedef struct hr_sq_done hr_sq_done_t;

/* What the idle-poll shortcuts remember per trigger (see store_sqlite.c, "Waking up"). */
typedef struct hr_sq_memo {
    char *trigger;
    int64_t page_dv;   /* data_version and local_gen when page_cursor was read to the end; */
    uint64_t page_gen; /* page_cursor NULL: nothing remembered */
    char *page_cursor;
    int64_t due_dv; /* the same for the delayed queue: nothing was due, the next at due_us */
    uint64_t due_gen;
    int due_valid;
    int64_t due_us; /* wall-clock µs of the next due retry; -1 none */
    struct hr_sq_memo *next;
} hr_sq_memo_t;

struct hr_store {
    sqlite3 *db;
    char *path;       /* the database file */
    uv_loop_t *loop;  /* NULL for CLI stores */
    uv_timer_t defer; /* reports completed operations on the next loop iteration */
    hr_sq_done_t *done_head, *done_tail;
    int lock_fd;            /* serve's lock beside the database; -1 when not held */
    uint64_t busy_since_us; /* when the current wait for a lock began (busy handler) */
    /* Wake-ups (set_wakeup): a watch on the -wal file, coalesced by a 1 ms timer. */
    uv_fs_event_t wal_watch;
    int watching;
    uv_timer_t wake_timer;
    int wake_pending;
    int64_t wake_dv; /* data_version at the last wake-up */
    void (*wake_cb)(void *ud);
    void *wake_ud;
    sqlite3_stmt **stmts; /* prepared statements, cached by the address of their SQL text */
    const char **stmt_sql;
    size_t nstmts;
    /* Idle shortcuts: PRAGMA data_version changes when another connection commits; local_gen
     * when this one does. */
    int64_t dv_last;
    uint64_t local_gen;
    int64_t defs_dv; /* data_version and local_gen of the cached definitions version */
    uint64_t defs_gen;
    int64_t defs_version; /* -1: not cached */
    hr_sq_memo_t *memos;
};

/* --- store_sqlite.c --- */
/* Reports a completed asynchronous operation through the loop (on the next iteration). */
void hr_sq_report_page(hr_store_t *st, hr_store_page_cb cb, void *ud, int rc, hr_page_t *page,
                       const char *msg);
void hr_sq_report_done(hr_store_t *st, hr_store_done_cb cb, void *ud, int rc, const char *msg);
void hr_sq_report_version(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t version), void *ud,
                          int rc, int64_t version);
/* Steps a statement that returns no rows (or whose rows do not matter), then resets it. */
int hr_sq_step_done(hr_store_t *st, sqlite3_stmt *s, hr_err_t *err, const char *what);
/* Column i as a new string, NULL for SQL NULL. */
char *hr_sq_col_dup(sqlite3_stmt *s, int i);
/* Records an SQLite error of st->db (or of rc when the handle has no message) in err. */
int hr_sq_fail(hr_store_t *st, hr_err_t *err, const char *what);
/* Runs one or more statements without results. */
int hr_sq_exec(hr_store_t *st, const char *sql, hr_err_t *err, const char *what);
/* A cached prepared statement for sql (which must be a string constant: it is cached by its
 * address), reset and with its bindings cleared; NULL with err set when preparing fails. */
sqlite3_stmt *hr_sq_stmt(hr_store_t *st, const char *sql, hr_err_t *err);
/* BEGIN IMMEDIATE (takes the write lock at once, waiting up to the busy timeout) / COMMIT /
 * ROLLBACK. A committed write counts in st->local_gen. */
int hr_sq_begin(hr_store_t *st, hr_err_t *err);
int hr_sq_commit(hr_store_t *st, hr_err_t *err);
void hr_sq_rollback(hr_store_t *st);
/* herald's schema version in the file (0: not installed). */
int hr_sq_schema_version(hr_store_t *st, int *version, hr_err_t *err);
/* Installs or migrates herald's tables (inside the caller's transaction); report may be NULL. */
int hr_sq_migrate(hr_store_t *st, hr_store_report_fn report, void *ud, hr_err_t *err);
/* Refuses a schema that is missing, older or newer than this binary's (HR_ESCHEMA). */
int hr_sq_require_schema(hr_store_t *st, hr_err_t *err);
/* The schedules' operations (sqlite_fires.c; see store.h). */
int hr_sq_fire(hr_store_t *st, const char *name, int64_t fire_at_s, const char *new_json,
               int *written, hr_err_t *err);
int hr_sq_last_fire(hr_store_t *st, const char *name, int64_t *at_s, hr_err_t *err);
int hr_sq_schedule_one_off(hr_store_t *st, const char *new_json, int64_t due_us, char id_out[40],
                           hr_err_t *err);
int hr_sq_delete_scheduled(hr_store_t *st, int cron, const char *event_id, hr_err_t *err);
int hr_sq_one_offs(hr_store_t *st, json_t **out, hr_err_t *err);
/* Stored definitions, like load_triggers; invalid ones are logged and skipped. */
int hr_sq_load_defs(hr_store_t *st, hr_trigger_def_t **out, size_t *n, hr_err_t *err);
void hr_sq_free_defs(hr_trigger_def_t *defs, size_t n);
/* Checks a table trigger's table and columns; appends one line per problem to err and returns
 * HR_ECONFIG, or 0. */
int hr_sq_validate_def(hr_store_t *st, const hr_trigger_def_t *t, hr_err_t *err);
/* Adds 1 to the definitions version (inside a transaction). */
/* Deletes a trigger's definition, cursor and pending retries (its log rows and attempts stay). */
int hr_sq_remove_trigger_rows(hr_store_t *st, const char *name, hr_err_t *err);
int hr_sq_bump_defs(hr_store_t *st, hr_err_t *err);
/* Creates t's cursor if it has none (inside a transaction). */
int hr_sq_create_cursor(hr_store_t *st, const hr_trigger_def_t *t, hr_err_t *err);
/* The log's source for a table trigger ("public.orders"): what capture writes. */
void hr_sq_source(const hr_trigger_def_t *t, hr_buf_t *out);
/* Appends the WHERE condition selecting the log rows (alias l) that t reads, with its
 * parameters numbered from ?first: table triggers read their source and row operations, event
 * triggers their emitted types. *nparams gets the number of parameters it uses. */
void hr_sq_filter_sql(const hr_trigger_def_t *t, int first, hr_buf_t *sql, int *nparams);
/* Binds the parameters of hr_sq_filter_sql; the text is copied. */
void hr_sq_filter_bind(sqlite3_stmt *s, const hr_trigger_def_t *t, int first);
/* Unix µs as herald's timestamp text; out has room for 32 bytes. */
void hr_sq_format_time(int64_t us, char *out);

/* --- sqlite_reader.c: the dispatcher's operations of the ops table, and wake-ups --- */
int hr_sq_read_page(hr_store_t *st, const hr_trigger_def_t *t, const char *cursor, size_t limit,
                    hr_store_page_cb cb, void *ud);
int hr_sq_read_due(hr_store_t *st, const hr_trigger_def_t *t, size_t limit, hr_store_page_cb cb,
                   void *ud);
int hr_sq_settle(hr_store_t *st, const char *trigger, const char *cursor_after,
                 const hr_attempt_rec_t *recs, size_t n, int from_retry, hr_store_done_cb cb,
                 void *ud);
int hr_sq_ping(hr_store_t *st, hr_store_done_cb cb, void *ud);
int hr_sq_defs_version(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t version), void *ud);
void hr_sq_set_wakeup(hr_store_t *st, void (*cb)(void *ud), void *ud);

/* --- sqlite_capture.c --- */
/* Makes capture match defs: per table, the union of the row operations its triggers read,
 * triggers regenerated when the table's columns changed, capture no trigger needs dropped.
 * Inside the caller's transaction; report may be NULL. Tables that do not exist are skipped
 * (apply validates them first). */
int hr_sq_sync_capture(hr_store_t *st, const hr_trigger_def_t *defs, size_t n,
                       hr_store_report_fn report, void *ud, hr_err_t *err);
/* The table's name as SQLite spells it, looked up without regard to case; NULL if there is no
 * such table (views, virtual tables and herald's own tables do not count). Caller frees. */
char *hr_sq_table_name(hr_store_t *st, const char *table, hr_err_t *err);

/* --- sqlite_ops.c: the operator and reporting operations of the ops table --- */
int hr_sq_put_trigger(hr_store_t *st, const hr_trigger_def_t *def, int replace, hr_err_t *err);
int hr_sq_delete_trigger(hr_store_t *st, const char *name, hr_err_t *err);
int hr_sq_emit(hr_store_t *st, const char *type, const char *payload_json, char id_out[40],
               hr_err_t *err);
int hr_sq_invoke(hr_store_t *st, const char *trigger, const char *payload_json, char id_out[40],
                 hr_err_t *err);
int hr_sq_redeliver(hr_store_t *st, const char *event_id, const char *trigger, int *queued,
                    hr_err_t *err);
int hr_sq_replay(hr_store_t *st, const char *trigger, const hr_replay_range_t *range,
                 int64_t *queued, hr_err_t *err);
int hr_sq_status(hr_store_t *st, json_t **out, hr_err_t *err);
int hr_sq_events(hr_store_t *st, const hr_event_query_t *q, json_t **out, hr_err_t *err);
int hr_sq_event(hr_store_t *st, const char *event_id, int attempts_limit, int attempts_offset,
                json_t **out, hr_err_t *err);
int hr_sq_attempts(hr_store_t *st, const char *trigger, int limit, int offset, json_t **out,
                   hr_err_t *err);
/* The event object (store.h's shape) of a row whose columns from c0 on are l.seq, l.id, l.at,
 * l.source, l.op, l.old, l.new, l.session. */
json_t *hr_sq_event_json(sqlite3_stmt *s, int c0);

/* --- sqlite_stream.c: GraphQL's operations of the ops table (see store.h) --- */
int hr_sq_stream_horizon(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t horizon), void *ud);
int hr_sq_stream_read(hr_store_t *st, int64_t after, int64_t upto, size_t limit,
                      void (*cb)(void *ud, int rc, json_t *events, const char *errmsg), void *ud);
int hr_sq_query_events(hr_store_t *st, const json_t *where, const json_t *order_by, int limit,
                       int offset, json_t **out, hr_err_t *err);

#endif
