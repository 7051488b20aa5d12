/* store_sqlite.c: the SQLite backend (`database: sqlite:PATH`), the embedded default.
 *
 * herald's tables live in the application's own database file, beside its tables: SQLite
 * triggers cannot write to another file, and only there do a write and its event commit
 * together. They are herald_meta, herald_log, herald_triggers, herald_cursors, herald_delayed and
 * herald_attempts, with the columns and meanings of PostgreSQL's herald.* tables, plus the view
 * herald_emit through which SQL emits custom events (see the migration below).
 *
 * Reading the log. SQLite lets one writer at a time hold the database: a transaction takes the
 * write lock before its first change and keeps it until it commits or rolls back. The log's seq
 * (INTEGER PRIMARY KEY AUTOINCREMENT) is assigned under that lock, so every seq of a transaction
 * is larger than every seq of the transactions committed before it, and smaller than those of
 * the ones after: seq order is commit order. A reader that has seen the log up to seq N in one
 * snapshot will never see a smaller seq appear later. The cursor is therefore simply the last
 * settled seq ("N" as text), and herald_cursors stores it as last_seq. A read that reaches the
 * end returns as its cursor the largest seq of its snapshot, even if no row matched.
 *
 * Concurrency with the application. The file is put in WAL mode (a persistent property of the
 * file: the application's connections use it too), so readers never block the writer and the
 * writer never blocks readers. herald's writes are short: settling a page is one transaction
 * (attempts, delayed rows, cursor) of a few milliseconds, begun IMMEDIATE so that it never has to
 * upgrade a read lock (which can fail at once with SQLITE_BUSY). herald waits up to 5 s for the
 * write lock (busy_timeout). An application that sets a busy timeout of its own, as any
 * multi-process SQLite use should, therefore never sees SQLITE_BUSY because of herald under
 * ordinary load. herald's connection uses synchronous=NORMAL: after a power cut the last settled
 * pages may be rolled back together with their cursor, and are delivered again.
 *
 * The dispatcher's operations (read_page, read_due, settle) and the wake-ups are in
 * sqlite_reader.c; they run at once on the loop's thread and report through the loop (the queue
 * below). The operator and reporting operations are in sqlite_ops.c, capture in sqlite_capture.c.
 *
 * One instance per file: `serve` holds an exclusive flock on PATH-herald.lock (beside the
 * database) for its lifetime; a second serve on the same file is refused with a message. */
#include "store/sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/log.h"

#define BUSY_TIMEOUT_MS 5000

/* ------------------------------------------------------------------------------------------ */
/* Schema                                                                                     */

/* The migrations, in order; version i+1 is migrations[i]. Never edit a released one: add one. */
static const char *const migrations[] = {
    /* 1: log, definitions, cursors, delayed queue, attempts, the emit view. */
    "CREATE TABLE herald_log ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    /* A version 4 UUID made from randomblob, e.g. 5c0e8a1b-3f2d-4e6a-9b1c-0d2e3f4a5b6c. */
    "  id TEXT NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2)))"
    "    || '-4' || substr(lower(hex(randomblob(2))), 2) || '-'"
    "    || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2)"
    "    || '-' || lower(hex(randomblob(6)))),"
    "  at TEXT NOT NULL DEFAULT " HR_SQ_NOW ","
    "  source TEXT NOT NULL,"
    "  op TEXT NOT NULL,"
    "  old TEXT,"
    "  new TEXT,"
    "  session TEXT) STRICT;"
    "CREATE INDEX herald_log_id ON herald_log (id);"
    "CREATE TABLE herald_triggers ("
    "  name TEXT PRIMARY KEY,"
    "  definition TEXT NOT NULL,"
    "  created_at TEXT NOT NULL DEFAULT " HR_SQ_NOW ","
    "  updated_at TEXT NOT NULL DEFAULT " HR_SQ_NOW ") STRICT;"
    "CREATE TABLE herald_cursors ("
    "  trigger TEXT PRIMARY KEY,"
    "  last_seq INTEGER NOT NULL DEFAULT 0,"
    "  updated_at TEXT NOT NULL DEFAULT " HR_SQ_NOW ") STRICT;"
    "CREATE TABLE herald_delayed ("
    "  trigger TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL,"
    "  due_at TEXT NOT NULL,"
    "  dead INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  updated_at TEXT NOT NULL DEFAULT " HR_SQ_NOW ","
    "  PRIMARY KEY (trigger, seq)) STRICT;"
    "CREATE INDEX herald_delayed_due ON herald_delayed (trigger, due_at) WHERE dead = 0;"
    "CREATE INDEX herald_delayed_event ON herald_delayed (event_id);"
    "CREATE TABLE herald_attempts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  trigger TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at TEXT NOT NULL DEFAULT " HR_SQ_NOW ","
    "  status INTEGER,"
    "  latency_ms REAL,"
    "  error TEXT,"
    "  response TEXT) STRICT;"
    "CREATE INDEX herald_attempts_event ON herald_attempts (event_id);"
    "CREATE INDEX herald_attempts_trigger ON herald_attempts (trigger, id);"
    /* The outbox, SQLite's herald.emit: INSERT INTO herald_emit (type, payload) VALUES (…)
     * appends an EMIT event inside the caller's transaction. payload must be valid JSON text. */
    "CREATE VIEW herald_emit (type, payload) AS SELECT NULL, NULL WHERE 0;"
    "CREATE TRIGGER herald_emit_insert INSTEAD OF INSERT ON herald_emit BEGIN"
    "  SELECT RAISE(ABORT, 'herald_emit: type must not be empty')"
    "    WHERE NEW.type IS NULL OR NEW.type = '';"
    "  INSERT INTO herald_log (source, op, new) VALUES (NEW.type, 'EMIT', json(NEW.payload));"
    " END;",
    /* 2: schedules. One row per fire (Unix seconds); see sqlite_fires.c. */
    "CREATE TABLE herald_fires ("
    "  schedule TEXT NOT NULL,"
    "  fire_at INTEGER NOT NULL,"
    "  at TEXT NOT NULL DEFAULT " HR_SQ_NOW ","
    "  PRIMARY KEY (schedule, fire_at)) STRICT;",
};

static const int schema_version = (int)(sizeof migrations / sizeof migrations[0]);

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

int hr_sq_fail(hr_store_t *st, hr_err_t *err, const char *what)
{
    const char *m = st && st->db ? sqlite3_errmsg(st->db) : "cannot open the database";
    return hr_err_set(err, HR_EDB, "%s: %s", what, m);
}

int hr_sq_exec(hr_store_t *st, const char *sql, hr_err_t *err, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = hr_err_set(err, HR_EDB, "%s: %s", what, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

sqlite3_stmt *hr_sq_stmt(hr_store_t *st, const char *sql, hr_err_t *err)
{
    for (size_t i = 0; i < st->nstmts; i++) {
        if (st->stmt_sql[i] != sql) continue;
        sqlite3_reset(st->stmts[i]);
        sqlite3_clear_bindings(st->stmts[i]);
        return st->stmts[i];
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        hr_sq_fail(st, err, "preparing a query");
        return NULL;
    }
    st->stmts = hr_xrealloc(st->stmts, (st->nstmts + 1) * sizeof *st->stmts);
    st->stmt_sql = hr_xrealloc(st->stmt_sql, (st->nstmts + 1) * sizeof *st->stmt_sql);
    st->stmts[st->nstmts] = s;
    st->stmt_sql[st->nstmts++] = sql;
    return s;
}

int hr_sq_begin(hr_store_t *st, hr_err_t *err)
{
    return hr_sq_exec(st, "BEGIN IMMEDIATE", err, "starting a transaction");
}

int hr_sq_commit(hr_store_t *st, hr_err_t *err)
{
    int rc = hr_sq_exec(st, "COMMIT", err, "committing");
    if (rc)
        hr_sq_rollback(st);
    else
        st->local_gen++;
    return rc;
}

void hr_sq_rollback(hr_store_t *st)
{
    if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

int hr_sq_step_done(hr_store_t *st, sqlite3_stmt *s, hr_err_t *err, const char *what)
{
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
    }
    int rc = r == SQLITE_DONE ? 0 : hr_sq_fail(st, err, what);
    sqlite3_reset(s);
    return rc;
}

char *hr_sq_col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? hr_xstrdup((const char *)t) : NULL;
}

void hr_sq_format_time(int64_t us, char *out)
{
    hr_format_rfc3339_us(us, out, 32);
}

/* ------------------------------------------------------------------------------------------ */
/* Schema versions                                                                            */

int hr_sq_schema_version(hr_store_t *st, int *version, hr_err_t *err)
{
    *version = 0;
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "SELECT 1 FROM sqlite_master WHERE type = 'table' AND"
                                 " name = 'herald_meta'",
                                 err);
    if (!s) return HR_EDB;
    int r = sqlite3_step(s);
    sqlite3_reset(s);
    if (r == SQLITE_DONE) return 0;
    if (r != SQLITE_ROW) return hr_sq_fail(st, err, "reading herald's schema version");
    s = hr_sq_stmt(st, "SELECT value FROM herald_meta WHERE key = 'schema_version'", err);
    if (!s) return HR_EDB;
    r = sqlite3_step(s);
    if (r == SQLITE_ROW) *version = atoi((const char *)sqlite3_column_text(s, 0));
    sqlite3_reset(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return hr_sq_fail(st, err, "reading herald's schema version");
    return 0;
}

static int check_known_version(hr_store_t *st, int version, hr_err_t *err)
{
    if (version > schema_version)
        return hr_err_set(err, HR_ESCHEMA,
                          "herald's tables in %s are at schema version %d, newer than this "
                          "herald (version %d): upgrade herald",
                          st->path, version, schema_version);
    return 0;
}

int hr_sq_migrate(hr_store_t *st, hr_store_report_fn report, void *ud, hr_err_t *err)
{
    int version = 0, rc;
    if ((rc = hr_sq_schema_version(st, &version, err))) return rc;
    if ((rc = check_known_version(st, version, err))) return rc;
    if (version == schema_version) return 0;
    if ((rc = hr_sq_exec(st,
                         "CREATE TABLE IF NOT EXISTS herald_meta (key TEXT PRIMARY KEY,"
                         " value TEXT NOT NULL) STRICT;"
                         "INSERT OR IGNORE INTO herald_meta VALUES ('defs_version', '0');",
                         err, "creating herald_meta")))
        return rc;
    for (int v = version; v < schema_version; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating herald's schema to version %d", v + 1);
        if ((rc = hr_sq_exec(st, migrations[v], err, what))) return rc;
    }
    char *sql = hr_xasprintf("INSERT INTO herald_meta VALUES ('schema_version', '%d')"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             schema_version);
    rc = hr_sq_exec(st, sql, err, "recording herald's schema version");
    free(sql);
    if (rc) return rc;
    if (report) {
        char line[128];
        if (version == 0)
            snprintf(line, sizeof line, "schema: installed version %d", schema_version);
        else
            snprintf(line, sizeof line, "schema: migrated from version %d to %d", version,
                     schema_version);
        report(ud, line);
    }
    return 0;
}

int hr_sq_require_schema(hr_store_t *st, hr_err_t *err)
{
    int version = 0, rc;
    if ((rc = hr_sq_schema_version(st, &version, err))) return rc;
    if (version == 0)
        return hr_err_set(err, HR_ESCHEMA,
                          "herald's tables are not installed in %s: run herald apply", st->path);
    if ((rc = check_known_version(st, version, err))) return rc;
    if (version < schema_version)
        return hr_err_set(err, HR_ESCHEMA,
                          "herald's tables in %s are at schema version %d, this herald needs %d: "
                          "run herald apply",
                          st->path, version, schema_version);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Open / close                                                                               */

/* "sqlite:PATH" → PATH (the CLI has made a relative PATH absolute already). */
static const char *url_path(const char *url)
{
    return strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url;
}

/* Takes serve's lock beside the database: one herald instance per file. */
static int take_lock(hr_store_t *st, hr_err_t *err)
{
    char *lock = hr_xasprintf("%s-herald.lock", st->path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = hr_err_set(err, HR_EIO, "cannot open the lock file %s: %s", lock, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? hr_err_set(err, HR_EEXIST,
                              "another herald serve is running on %s (it holds %s); with SQLite "
                              "one herald serves a database file",
                              st->path, lock)
                 : hr_err_set(err, HR_EIO, "cannot lock %s: %s", lock, strerror(errno));
        close(fd);
    } else {
        st->lock_fd = fd;
    }
    free(lock);
    return rc;
}

static void on_defer(uv_timer_t *t);

/* herald's busy handler: like busy_timeout, but retrying every 100 µs to 1 ms instead of
 * SQLite's 1, 2, 5 … 100 ms, so that herald's short transactions are not starved by a busy
 * application's writers (each of them backing off the same way). Gives up after
 * BUSY_TIMEOUT_MS. */
static int on_busy(void *ud, int count)
{
    hr_store_t *st = ud;
    uint64_t now = hr_mono_us();
    if (count == 0) st->busy_since_us = now;
    if (now - st->busy_since_us >= (uint64_t)BUSY_TIMEOUT_MS * 1000) return 0;
    struct timespec ts = {0, (count < 20 ? 100 : count < 100 ? 300 : 1000) * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

static int sq_open(const char *url, uv_loop_t *loop, hr_store_t **out, hr_err_t *err)
{
    hr_store_t *st = hr_xcalloc(1, sizeof *st);
    st->path = hr_xstrdup(url_path(url));
    st->lock_fd = -1;
    st->defs_version = -1;
    st->dv_last = -1;
    int rc = 0;
    if (!*st->path) {
        rc = hr_err_set(err, HR_ECONFIG, "sqlite: the database path is empty");
        goto fail;
    }
    if (loop && (rc = take_lock(st, err))) goto fail;
    if (sqlite3_open_v2(st->path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = hr_err_set(err, HR_EDB, "cannot open %s: %s", st->path,
                        st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_handler(st->db, on_busy, st);
    /* WAL is a property of the file: set once, the application's connections use it too. */
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW) {
        rc = hr_sq_fail(st, err, "switching the database to WAL mode");
        sqlite3_finalize(s);
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(s, 0);
    if (!mode || strcmp(mode, "wal") != 0)
        hr_log(HR_LOG_WARN,
               "msg=\"the database is not in WAL mode; writers may wait for herald\" "
               "journal_mode=%s",
               mode ? mode : "?");
    sqlite3_finalize(s);
    if ((rc = hr_sq_exec(st, "PRAGMA synchronous = NORMAL", err, "configuring the connection")))
        goto fail;
    if (loop) {
        st->loop = loop;
        uv_timer_init(loop, &st->defer);
        uv_timer_init(loop, &st->wake_timer);
        st->defer.data = st->wake_timer.data = st;
        st->wake_dv = -1;
    }
    *out = st;
    return 0;
fail:
    if (st->db) sqlite3_close_v2(st->db);
    if (st->lock_fd >= 0) close(st->lock_fd);
    free(st->path);
    free(st);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reporting completed operations through the loop                                            */

enum { DONE_PAGE, DONE_SETTLE, DONE_VERSION };

struct hr_sq_done {
    hr_sq_done_t *next;
    int kind;
    hr_store_page_cb page_cb;
    hr_store_done_cb done_cb;
    void (*version_cb)(void *ud, int rc, int64_t version);
    void *ud;
    int rc;
    hr_page_t *page;
    int64_t version;
    char *msg;
};

static void defer(hr_store_t *st, hr_sq_done_t *d)
{
    if (st->done_tail)
        st->done_tail->next = d;
    else
        st->done_head = d;
    st->done_tail = d;
    if (!uv_is_active((uv_handle_t *)&st->defer)) uv_timer_start(&st->defer, on_defer, 0, 0);
}

static void run_done(hr_sq_done_t *d)
{
    switch (d->kind) {
    case DONE_PAGE:
        d->page_cb(d->ud, d->rc, d->page, d->msg);
        break;
    case DONE_SETTLE:
        d->done_cb(d->ud, d->rc, d->msg);
        break;
    default:
        d->version_cb(d->ud, d->rc, d->version);
        break;
    }
    free(d->msg);
    free(d);
}

/* Drains what was completed before this iteration; callbacks may queue more (for the next). */
static void on_defer(uv_timer_t *t)
{
    hr_store_t *st = t->data;
    hr_sq_done_t *d = st->done_head;
    st->done_head = st->done_tail = NULL;
    while (d) {
        hr_sq_done_t *next = d->next;
        run_done(d);
        d = next;
    }
}

static hr_sq_done_t *done_new(int kind, void *ud, int rc, const char *msg)
{
    hr_sq_done_t *d = hr_xcalloc(1, sizeof *d);
    d->kind = kind;
    d->ud = ud;
    d->rc = rc;
    d->msg = rc && msg ? hr_xstrdup(msg) : NULL;
    return d;
}

void hr_sq_report_page(hr_store_t *st, hr_store_page_cb cb, void *ud, int rc, hr_page_t *page,
                       const char *msg)
{
    hr_sq_done_t *d = done_new(DONE_PAGE, ud, rc, msg);
    d->page_cb = cb;
    d->page = page;
    defer(st, d);
}

void hr_sq_report_done(hr_store_t *st, hr_store_done_cb cb, void *ud, int rc, const char *msg)
{
    hr_sq_done_t *d = done_new(DONE_SETTLE, ud, rc, msg);
    d->done_cb = cb;
    defer(st, d);
}

void hr_sq_report_version(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t version), void *ud,
                          int rc, int64_t version)
{
    hr_sq_done_t *d = done_new(DONE_VERSION, ud, rc, NULL);
    d->version_cb = cb;
    d->version = version;
    defer(st, d);
}

typedef struct close_ctx {
    hr_store_t *st;
    void (*done)(void *);
    void *ud;
    int handles; /* loop handles still closing */
} close_ctx_t;

static void release(hr_store_t *st)
{
    for (size_t i = 0; i < st->nstmts; i++)
        sqlite3_finalize(st->stmts[i]);
    free(st->stmts);
    free(st->stmt_sql);
    if (st->db) sqlite3_close_v2(st->db);
    if (st->lock_fd >= 0) close(st->lock_fd);
    while (st->memos) {
        hr_sq_memo_t *m = st->memos;
        st->memos = m->next;
        free(m->trigger);
        free(m->page_cursor);
        free(m);
    }
    free(st->path);
    free(st);
}

/* The last of the store's loop handles closed: release everything. */
static void on_handle_closed(uv_handle_t *h)
{
    close_ctx_t *cc = h->data;
    if (--cc->handles > 0) return;
    release(cc->st);
    if (cc->done) cc->done(cc->ud);
    free(cc);
}

static void sq_close(hr_store_t *st, void (*done)(void *ud), void *ud)
{
    if (!st->loop) {
        release(st);
        if (done) done(ud);
        return;
    }
    /* Completed operations nobody will hear of now: their callbacks run, cancelled. */
    uv_timer_stop(&st->defer);
    while (st->done_head) {
        hr_sq_done_t *d = st->done_head;
        st->done_head = d->next;
        if (!st->done_head) st->done_tail = NULL;
        hr_page_free(d->page);
        d->page = NULL;
        d->rc = HR_ECANCELED;
        free(d->msg);
        d->msg = hr_xstrdup("the store is closing");
        run_done(d);
    }
    close_ctx_t *cc = hr_xcalloc(1, sizeof *cc);
    cc->st = st;
    cc->done = done;
    cc->ud = ud;
    cc->handles = 2 + st->watching;
    st->wake_cb = NULL;
    st->defer.data = st->wake_timer.data = st->wal_watch.data = cc;
    uv_close((uv_handle_t *)&st->defer, on_handle_closed);
    uv_close((uv_handle_t *)&st->wake_timer, on_handle_closed);
    if (st->watching) uv_close((uv_handle_t *)&st->wal_watch, on_handle_closed);
}

static uint64_t sq_reconnects(hr_store_t *st)
{
    (void)st;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Definitions, cursors, filters                                                              */

void hr_sq_source(const hr_trigger_def_t *t, hr_buf_t *out)
{
    hr_capture_source(t->schema, t->table, out);
}

int hr_sq_validate_def(hr_store_t *st, const hr_trigger_def_t *t, hr_err_t *err)
{
    if (!t->table) return 0;
    if (strcmp(t->schema, "public") != 0)
        return hr_err_append(err, HR_ECONFIG,
                             "trigger %s: table %s.%s: an SQLite database has no schemas: name "
                             "the table alone",
                             t->name, t->schema, t->table);
    hr_err_t e2 = {0};
    char *name = hr_sq_table_name(st, t->table, &e2);
    if (!name) {
        if (e2.code) return hr_err_append(err, e2.code, "%s", e2.msg);
        return hr_err_append(err, HR_ECONFIG, "trigger %s: table %s does not exist in %s", t->name,
                             t->table, st->path);
    }
    int bad = 0;
    for (int which = 0; which < 2; which++) {
        char **cols = which ? t->payload : t->columns;
        size_t n = which ? t->npayload : t->ncolumns;
        for (size_t k = 0; k < n; k++) {
            sqlite3_stmt *s = hr_sq_stmt(st,
                                         "SELECT name FROM pragma_table_xinfo(?1) WHERE name = ?2"
                                         " COLLATE NOCASE AND hidden <> 1",
                                         err);
            if (!s) {
                free(name);
                return HR_EDB;
            }
            sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, cols[k], -1, SQLITE_TRANSIENT);
            int r = sqlite3_step(s);
            char *spelt = r == SQLITE_ROW ? hr_sq_col_dup(s, 0) : NULL;
            sqlite3_reset(s);
            if (!spelt) {
                hr_err_append(err, HR_ECONFIG, "trigger %s: %s: column %s does not exist in %s",
                              t->name, which ? "payload" : "columns", cols[k], t->table);
                bad = 1;
            } else if (strcmp(spelt, cols[k]) != 0) {
                /* The row's JSON keys are spelt as the table declares them. */
                hr_err_append(err, HR_ECONFIG,
                              "trigger %s: %s: column %s is spelt %s in %s (name columns "
                              "exactly as the table does)",
                              t->name, which ? "payload" : "columns", cols[k], spelt, t->table);
                bad = 1;
            }
            free(spelt);
        }
    }
    free(name);
    return bad ? HR_ECONFIG : 0;
}

int hr_sq_remove_trigger_rows(hr_store_t *st, const char *name, hr_err_t *err)
{
    static const char *const dels[] = {
        "DELETE FROM herald_triggers WHERE name = ?1",
        "DELETE FROM herald_cursors WHERE trigger = ?1",
        "DELETE FROM herald_delayed WHERE trigger = ?1",
    };
    int rc = 0;
    for (int d = 0; d < 3 && !rc; d++) {
        sqlite3_stmt *s = hr_sq_stmt(st, dels[d], err);
        if (!s) return HR_EDB;
        sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
        rc = hr_sq_step_done(st, s, err, "removing a trigger");
    }
    return rc;
}

int hr_sq_bump_defs(hr_store_t *st, hr_err_t *err)
{
    return hr_sq_exec(st,
                      "UPDATE herald_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
                      " WHERE key = 'defs_version'",
                      err, "bumping the definitions version");
}

int hr_sq_create_cursor(hr_store_t *st, const hr_trigger_def_t *t, hr_err_t *err)
{
    /* start: now skips everything committed before this transaction; beginning reads it all. */
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "INSERT INTO herald_cursors (trigger, last_seq) SELECT ?1,"
                                 " CASE WHEN ?2 THEN 0 ELSE (SELECT coalesce(max(seq), 0)"
                                 " FROM herald_log) END WHERE 1 ON CONFLICT (trigger) DO NOTHING",
                                 err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 2, t->start_beginning);
    return hr_sq_step_done(st, s, err, "creating a cursor");
}

void hr_sq_filter_sql(const hr_trigger_def_t *t, int first, hr_buf_t *sql, int *nparams)
{
    *nparams = 2;
    if (t->cron) {
        /* A schedule's fires: op CRON and source = its name (exact: names are case-sensitive). */
        hr_buf_printf(sql, "(l.op = 'CRON' AND l.source = ?%d AND ?%d = 'CRON')", first, first + 1);
        return;
    }
    if (!t->table) {
        hr_buf_printf(sql,
                      "(l.op = 'EMIT' AND (l.source IN (SELECT value FROM json_each(?%d))"
                      " OR EXISTS (SELECT 1 FROM json_each(?%d) p"
                      " WHERE substr(l.source, 1, length(p.value)) = p.value)))",
                      first, first + 1);
        return;
    }
    /* Capture writes the source as SQLite spells the table; names are case-insensitive. */
    hr_buf_printf(sql, "(l.source = ?%d COLLATE NOCASE AND instr(?%d, ',' || l.op || ',') > 0",
                  first, first + 1);
    if (t->ncolumns) {
        /* An UPDATE counts when a listed column differs: json_quote keeps JSON types apart
         * (1 and "1"), and a column present on one side only differs. */
        hr_buf_printf(sql,
                      " AND (l.op <> 'UPDATE' OR EXISTS (SELECT 1 FROM json_each(?%d) k WHERE"
                      " (SELECT json_quote(o.value) FROM json_each(l.old) o WHERE o.key = k.value)"
                      " IS NOT (SELECT json_quote(n.value) FROM json_each(l.new) n"
                      " WHERE n.key = k.value)))",
                      first + 2);
        *nparams = 3;
    }
    hr_buf_putc(sql, ')');
}

void hr_sq_filter_bind(sqlite3_stmt *s, const hr_trigger_def_t *t, int first)
{
    hr_buf_t a = HR_BUF_INIT, b = HR_BUF_INIT;
    if (t->cron) {
        hr_buf_puts(&a, t->name);
        hr_buf_puts(&b, "CRON");
    } else if (t->table) {
        hr_sq_source(t, &a);
        /* MANUAL events are queued for their one trigger (invoke), never read from the log. */
        hr_buf_printf(&b, ",%s%s%s", t->ops & HR_OP_INSERT ? "INSERT," : "",
                      t->ops & HR_OP_UPDATE ? "UPDATE," : "",
                      t->ops & HR_OP_DELETE ? "DELETE," : "");
    } else {
        /* JSON arrays of exact types and of prefixes ("invoice.*" → "invoice."). */
        json_t *exact = json_array(), *prefix = json_array();
        for (size_t i = 0; i < t->nevents; i++) {
            const char *e = t->events[i];
            size_t len = strlen(e);
            if (len && e[len - 1] == '*')
                json_array_append_new(prefix, json_stringn(e, len - 1));
            else
                json_array_append_new(exact, json_string(e));
        }
        char *x = json_dumps(exact, JSON_COMPACT), *p = json_dumps(prefix, JSON_COMPACT);
        hr_buf_puts(&a, x);
        hr_buf_puts(&b, p);
        free(x);
        free(p);
        json_decref(exact);
        json_decref(prefix);
    }
    sqlite3_bind_text(s, first, a.data, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, first + 1, b.data, -1, SQLITE_TRANSIENT);
    /* The dispatcher's reader applies the column filter itself (hr_event_matches). */
    if (t->table && t->ncolumns && first + 2 <= sqlite3_bind_parameter_count(s)) {
        json_t *cols = json_array();
        for (size_t i = 0; i < t->ncolumns; i++)
            json_array_append_new(cols, json_string(t->columns[i]));
        char *c = json_dumps(cols, JSON_COMPACT);
        sqlite3_bind_text(s, first + 2, c, -1, free);
        json_decref(cols);
    }
    hr_buf_free(&a);
    hr_buf_free(&b);
}

int hr_sq_load_defs(hr_store_t *st, hr_trigger_def_t **out, size_t *nout, hr_err_t *err)
{
    sqlite3_stmt *s =
        hr_sq_stmt(st, "SELECT name, definition FROM herald_triggers ORDER BY name", err);
    if (!s) return HR_EDB;
    hr_trigger_def_t *defs = NULL;
    size_t n = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        json_error_t je;
        json_t *j = json_loads((const char *)sqlite3_column_text(s, 1), 0, &je);
        hr_err_t e1 = {0};
        defs = hr_xrealloc(defs, (n + 1) * sizeof *defs);
        if (!j || hr_trigger_def_from_json(j, &defs[n], &e1) != 0)
            hr_log(HR_LOG_ERROR,
                   "trigger=%s msg=\"stored definition is invalid; skipped\" "
                   "error=\"%s\"",
                   (const char *)sqlite3_column_text(s, 0), j ? e1.msg : je.text);
        else
            n++;
        json_decref(j);
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        hr_sq_free_defs(defs, n);
        return hr_sq_fail(st, err, "reading trigger definitions");
    }
    *out = defs ? defs : hr_xcalloc(1, sizeof *defs);
    *nout = n;
    return 0;
}

void hr_sq_free_defs(hr_trigger_def_t *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hr_trigger_def_clear(&defs[i]);
    free(defs);
}

static int sq_load_triggers(hr_store_t *st, hr_trigger_def_t **out, size_t *n, hr_err_t *err)
{
    int rc = hr_sq_require_schema(st, err);
    return rc ? rc : hr_sq_load_defs(st, out, n, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Apply                                                                                      */

static int sync_definitions(hr_store_t *st, const hr_config_t *cfg, hr_store_report_fn report,
                            void *ud, hr_err_t *err)
{
    int rc = 0, changed = 0;
    char line[256];
    hr_trigger_def_t *have = NULL;
    size_t nhave = 0;
    if ((rc = hr_sq_load_defs(st, &have, &nhave, err))) return rc;
    for (size_t i = 0; i < cfg->ntriggers && !rc; i++) {
        const hr_trigger_def_t *t = &cfg->triggers[i];
        json_t *j = hr_trigger_def_to_json(t);
        const hr_trigger_def_t *old = NULL;
        for (size_t k = 0; k < nhave && !old; k++)
            if (strcmp(have[k].name, t->name) == 0) old = &have[k];
        json_t *oj = old ? hr_trigger_def_to_json(old) : NULL;
        if (!oj || !json_equal(oj, j)) {
            char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
            sqlite3_stmt *s = hr_sq_stmt(st,
                                         "INSERT INTO herald_triggers (name, definition)"
                                         " VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET"
                                         " definition = excluded.definition,"
                                         " updated_at = " HR_SQ_NOW,
                                         err);
            if (!s) rc = HR_EDB;
            if (!rc) {
                sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(s, 2, text, -1, SQLITE_TRANSIENT);
                rc = hr_sq_step_done(st, s, err, "storing a trigger definition");
            }
            if (!rc && !old) rc = hr_sq_create_cursor(st, t, err);
            if (!rc) {
                snprintf(line, sizeof line, "trigger %s: %s", t->name, old ? "updated" : "created");
                report(ud, line);
                changed = 1;
            }
            free(text);
        }
        json_decref(oj);
        json_decref(j);
    }
    for (size_t k = 0; k < nhave && !rc; k++) {
        int keep = 0;
        for (size_t i = 0; i < cfg->ntriggers && !keep; i++)
            keep = strcmp(cfg->triggers[i].name, have[k].name) == 0;
        if (keep) continue;
        rc = hr_sq_remove_trigger_rows(st, have[k].name, err);
        if (!rc) {
            snprintf(line, sizeof line, "trigger %s: removed", have[k].name);
            report(ud, line);
            changed = 1;
        }
    }
    hr_sq_free_defs(have, nhave);
    if (!rc && changed) rc = hr_sq_bump_defs(st, err);
    return rc;
}

static int sq_apply(hr_store_t *st, const hr_config_t *cfg, hr_store_report_fn report, void *ud,
                    hr_err_t *err)
{
    int rc = hr_sq_begin(st, err);
    if (rc) return rc;
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        int r = hr_sq_validate_def(st, &cfg->triggers[i], err);
        if (r && (!rc || rc == HR_ECONFIG)) rc = r;
    }
    if (rc) goto fail;
    if ((rc = hr_sq_migrate(st, report, ud, err))) goto fail;
    if ((rc = hr_sq_sync_capture(st, cfg->triggers, cfg->ntriggers, report, ud, err))) goto fail;
    if ((rc = sync_definitions(st, cfg, report, ud, err))) goto fail;
    return hr_sq_commit(st, err);
fail:
    hr_sq_rollback(st);
    return rc;
}

const hr_store_ops_t hr_store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .apply = sq_apply,
    .load_triggers = sq_load_triggers,
    .defs_version = hr_sq_defs_version,
    .ping = hr_sq_ping,
    .read_page = hr_sq_read_page,
    .read_due = hr_sq_read_due,
    .settle = hr_sq_settle,
    .put_trigger = hr_sq_put_trigger,
    .delete_trigger = hr_sq_delete_trigger,
    .emit = hr_sq_emit,
    .invoke = hr_sq_invoke,
    .redeliver = hr_sq_redeliver,
    .replay = hr_sq_replay,
    .status = hr_sq_status,
    .events = hr_sq_events,
    .event = hr_sq_event,
    .attempts = hr_sq_attempts,
    .fire = hr_sq_fire,
    .last_fire = hr_sq_last_fire,
    .schedule_one_off = hr_sq_schedule_one_off,
    .delete_scheduled = hr_sq_delete_scheduled,
    .one_offs = hr_sq_one_offs,
    .stream_horizon = hr_sq_stream_horizon,
    .stream_read = hr_sq_stream_read,
    .query_events = hr_sq_query_events,
    .set_wakeup = hr_sq_set_wakeup,
    .reconnects = sq_reconnects,
    .close = sq_close,
};
