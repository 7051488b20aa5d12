/* store_pg.c: the PostgreSQL backend.
 *
 * Reading the log without a commit-order gap (DESIGN.md 3.2). A sequence number is taken when a
 * row is written, but becomes visible at commit, so "last seq seen" would skip a transaction that
 * took a small seq and committed late. A cursor therefore holds a range of two snapshots (lo, hi):
 * the events of the range are those whose xid is visible in hi and not in lo. Every transaction of
 * the range has committed, so the range is a closed set; it is read in (xid, seq) key order, pages
 * at a time, through the log's (xid, seq) index. When a range is exhausted, lo := hi and hi :=
 * pg_current_snapshot() (taken by the reading statement itself, so everything visible in hi is
 * visible to that statement).
 *
 * Cursor text, opaque to the dispatcher: "lo|hi|last_xid|last_seq|advance", where advance = 1
 * means the range is exhausted and the next read starts the next range. herald.cursors stores
 * lo, hi, last_xid, last_seq; a stored cursor is always continued (advance 0).
 *
 * Settling a page (herald.settle) writes attempts, delayed rows and the cursor in one statement,
 * hence one transaction: a crash replays at most the pages in flight, never skips.
 *
 * Administrative operations (apply, load_triggers, put_trigger, delete_trigger) use a separate
 * blocking connection, each in one transaction under the apply advisory lock. apply makes the
 * database match a whole configuration; put and delete change one trigger, computing the capture
 * the remaining set of stored definitions needs with the same steps (see "Definitions" below).
 * The operator operations (emit, invoke, redeliver, replay, status, events, ...) are in
 * pg_ops.c. */
#include "store/pg_int.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"
#include "core/log.h"
#include "core/text.h"

struct hr_store {
    char *url;
    PGconn *admin;          /* blocking connection, opened on first use */
    hr_pgconn_t *async;     /* NULL for CLI stores */
    hr_pg_stream_t *stream; /* GraphQL's stream horizon (pg_stream.c); NULL until used */
};

hr_pgconn_t *hr_pg_async(hr_store_t *st)
{
    return st->async;
}

hr_pg_stream_t **hr_pg_stream_slot(hr_store_t *st)
{
    return &st->stream;
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

static int pg_fail(hr_err_t *err, PGconn *conn, PGresult *res, const char *what)
{
    const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[1024];
    /* One line: the server's message and its detail, without "ERROR:" and the context. */
    if (primary && detail)
        snprintf(msg, sizeof msg, "%s (%s)", primary, detail);
    else if (primary)
        snprintf(msg, sizeof msg, "%s", primary);
    else
        snprintf(msg, sizeof msg, "%s", m && *m ? m : "unknown error");
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    /* Data exceptions (class 22) and RAISE EXCEPTION (P0001, herald.emit's checks) come from
     * the caller's input: a malformed JSON payload, uuid or time. */
    int code =
        state && (strncmp(state, "22", 2) == 0 || strcmp(state, "P0001") == 0) ? HR_EINVAL : HR_EDB;
    return hr_err_set(err, code, "%s: %s", what, msg);
}

PGresult *hr_pg_exec(PGconn *conn, const char *sql, int n, const char *const *params, hr_err_t *err,
                     const char *what)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_fail(err, conn, r, what);
        PQclear(r);
        return NULL;
    }
    return r;
}

int hr_pg_cmd(PGconn *conn, const char *sql, hr_err_t *err, const char *what)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) rc = pg_fail(err, conn, r, what);
    PQclear(r);
    return rc;
}

PGconn *hr_pg_admin(hr_store_t *st, hr_err_t *err)
{
    if (st->admin && PQstatus(st->admin) == CONNECTION_OK) return st->admin;
    if (st->admin) PQfinish(st->admin);
    st->admin = hr_pg_connect_blocking(st->url, err);
    return st->admin;
}

static int admin_conn(hr_store_t *st, hr_err_t *err)
{
    return hr_pg_admin(st, err) ? 0 : HR_EDB;
}

/* Appends s as a JSON string, invalid UTF-8 replaced: jsonb rejects invalid UTF-8, and one bad
 * response body must never make a settle fail forever. */
static void put_json_text(hr_buf_t *b, const char *s)
{
    char *clean = hr_utf8_clean(s);
    hr_buf_put_json_string(b, clean);
    free(clean);
}

/* ------------------------------------------------------------------------------------------ */
/* Open / close                                                                               */

static int pg_open(const char *url, uv_loop_t *loop, hr_store_t **out, hr_err_t *err)
{
    hr_store_t *st = hr_xcalloc(1, sizeof *st);
    st->url = hr_xstrdup(url);
    if (loop) {
        int rc = hr_pgconn_init(loop, url, &st->async, err);
        if (rc) {
            free(st->url);
            free(st);
            return rc;
        }
    }
    *out = st;
    return 0;
}

typedef struct close_ctx {
    hr_store_t *st;
    void (*done)(void *);
    void *ud;
} close_ctx_t;

static void pg_closed(void *ud)
{
    close_ctx_t *cc = ud;
    hr_pg_stream_free(cc->st->stream);
    free(cc->st->url);
    free(cc->st);
    if (cc->done) cc->done(cc->ud);
    free(cc);
}

static void pg_close(hr_store_t *st, void (*done)(void *ud), void *ud)
{
    if (st->admin) PQfinish(st->admin);
    st->admin = NULL;
    close_ctx_t *cc = hr_xcalloc(1, sizeof *cc);
    cc->st = st;
    cc->done = done;
    cc->ud = ud;
    if (st->async)
        hr_pgconn_close(st->async, pg_closed, cc);
    else
        pg_closed(cc);
}

static uint64_t pg_reconnects(hr_store_t *st)
{
    return st->async ? hr_pgconn_reconnects(st->async) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Schema                                                                                     */

/* herald.meta's value for key into out (n bytes), "" when there is none. */
static int meta_get(PGconn *conn, const char *key, char *out, size_t n, hr_err_t *err,
                    const char *what)
{
    const char *p[] = {key};
    PGresult *r = hr_pg_exec(conn, "SELECT value FROM herald.meta WHERE key = $1", 1, p, err, what);
    if (!r) return HR_EDB;
    snprintf(out, n, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return 0;
}

static int meta_set(PGconn *conn, const char *key, const char *value, hr_err_t *err,
                    const char *what)
{
    const char *p[] = {key, value};
    PGresult *r = hr_pg_exec(conn,
                             "INSERT INTO herald.meta VALUES ($1, $2)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                             2, p, err, what);
    if (!r) return HR_EDB;
    PQclear(r);
    return 0;
}

/* Reads herald.meta's schema_version: 0 when herald is not installed. */
static int schema_version(PGconn *conn, int *version, hr_err_t *err)
{
    PGresult *r = hr_pg_exec(conn, "SELECT to_regclass('herald.meta') IS NOT NULL", 0, NULL, err,
                             "reading herald's schema version");
    if (!r) return HR_EDB;
    int installed = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    *version = 0;
    if (!installed) return 0;
    char v[32];
    if (meta_get(conn, "schema_version", v, sizeof v, err, "reading herald's schema version"))
        return HR_EDB;
    *version = atoi(v);
    return 0;
}

static int check_known_version(int version, hr_err_t *err)
{
    if (version > hr_pg_schema_version)
        return hr_err_set(err, HR_ESCHEMA,
                          "the database's herald schema is version %d, newer than this herald "
                          "knows (%d): upgrade herald",
                          version, hr_pg_schema_version);
    return 0;
}

int hr_pg_require_schema(PGconn *conn, hr_err_t *err)
{
    int version = 0, rc;
    if ((rc = schema_version(conn, &version, err))) return rc;
    if (version == 0)
        return hr_err_set(err, HR_ESCHEMA,
                          "herald's schema is not installed in this database: run herald apply");
    if ((rc = check_known_version(version, err))) return rc;
    if (version < hr_pg_schema_version)
        return hr_err_set(
            err, HR_ESCHEMA,
            "herald's schema is at version %d, this herald needs %d: run herald apply", version,
            hr_pg_schema_version);
    return 0;
}

static int migrate(PGconn *conn, hr_store_report_fn report, void *ud, hr_err_t *err)
{
    int version = 0, rc;
    if ((rc = schema_version(conn, &version, err))) return rc;
    if ((rc = check_known_version(version, err))) return rc;
    if (version == hr_pg_schema_version) return 0;
    if ((rc = hr_pg_cmd(conn,
                        "CREATE SCHEMA IF NOT EXISTS herald;"
                        "CREATE TABLE IF NOT EXISTS herald.meta (key text PRIMARY KEY,"
                        " value text NOT NULL);"
                        "INSERT INTO herald.meta VALUES ('defs_version', '0')"
                        " ON CONFLICT DO NOTHING;",
                        err, "creating schema herald")))
        return rc;
    for (int v = version; v < hr_pg_schema_version; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating herald's schema to version %d", v + 1);
        if ((rc = hr_pg_cmd(conn, hr_pg_migrations[v], err, what))) return rc;
    }
    char vs[16];
    snprintf(vs, sizeof vs, "%d", hr_pg_schema_version);
    if (meta_set(conn, "schema_version", vs, err, "recording herald's schema version"))
        return HR_EDB;
    char line[128];
    if (version == 0)
        snprintf(line, sizeof line, "schema: installed version %d", hr_pg_schema_version);
    else
        snprintf(line, sizeof line, "schema: migrated from version %d to %d", version,
                 hr_pg_schema_version);
    report(ud, line);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Definitions: apply (a whole configuration) and put/delete (one trigger)                     */
/*                                                                                            */
/* Both are built from the same steps, each run inside the caller's transaction under the     */
/* apply lock: validate_trigger (tables and columns exist), sync_capture (capture triggers    */
/* match exactly what a set of definitions needs), store_definition / remove_definition, and  */
/* bump_defs_version. apply passes the file's definitions; put and delete pass the stored ones */
/* with the one trigger replaced, added or left out.                                          */

#define APPLY_LOCK "SELECT pg_advisory_xact_lock(7403927180542361)"

static void no_report(void *ud, const char *line)
{
    (void)ud;
    (void)line;
}

/* Checks that t's table and its columns/payload columns exist; appends one line per problem
 * to err. Returns 0, HR_ECONFIG or HR_EDB. */
static int validate_trigger(PGconn *conn, const hr_trigger_def_t *t, hr_err_t *err)
{
    int bad = 0;
    if (!t->table) return 0;
    const char *p[] = {t->schema, t->table};
    PGresult *r = hr_pg_exec(conn,
                             "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n"
                             " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                             2, p, err, "looking up tables");
    if (!r) return HR_EDB;
    if (PQntuples(r) == 0) {
        hr_err_append(err, HR_ECONFIG, "trigger %s: table %s.%s does not exist", t->name, t->schema,
                      t->table);
        bad = 1;
    } else if (strcmp(PQgetvalue(r, 0, 0), "r") != 0 && strcmp(PQgetvalue(r, 0, 0), "p") != 0) {
        hr_err_append(err, HR_ECONFIG, "trigger %s: %s.%s is not a table", t->name, t->schema,
                      t->table);
        bad = 1;
    }
    PQclear(r);
    if (bad) return HR_ECONFIG;
    for (int which = 0; which < 2; which++) {
        char **cols = which ? t->payload : t->columns;
        size_t n = which ? t->npayload : t->ncolumns;
        for (size_t k = 0; k < n; k++) {
            const char *q[] = {t->schema, t->table, cols[k]};
            r = hr_pg_exec(conn,
                           "SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                           " JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3"
                           " AND a.attnum > 0 AND NOT a.attisdropped",
                           3, q, err, "looking up columns");
            if (!r) return HR_EDB;
            if (PQntuples(r) == 0) {
                hr_err_append(err, HR_ECONFIG, "trigger %s: %s: column %s does not exist in %s.%s",
                              t->name, which ? "payload" : "columns", cols[k], t->schema, t->table);
                bad = 1;
            }
            PQclear(r);
        }
    }
    return bad ? HR_ECONFIG : 0;
}

/* Checks every trigger of a configuration; reports all problems at once. */
static int validate_tables(PGconn *conn, const hr_config_t *cfg, hr_err_t *err)
{
    int bad = 0;
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        int rc = validate_trigger(conn, &cfg->triggers[i], err);
        if (rc == HR_EDB) return rc;
        if (rc) bad = 1;
    }
    return bad ? HR_ECONFIG : 0;
}

typedef struct table_ops {
    char *schema, *table;
    unsigned want, have;
    unsigned stale;  /* of have: installed with another function or level than style's */
    int partitioned; /* a wanted table that is partitioned (relkind 'p') */
} table_ops_t;

static table_ops_t *find_table(table_ops_t *v, size_t n, const char *schema, const char *table)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].schema, schema) == 0 && strcmp(v[i].table, table) == 0) return &v[i];
    return NULL;
}

static table_ops_t *add_table(table_ops_t **v, size_t *n, const char *schema, const char *table)
{
    table_ops_t *e = find_table(*v, *n, schema, table);
    if (e) return e;
    *v = hr_xrealloc(*v, (*n + 1) * sizeof **v);
    e = &(*v)[(*n)++];
    e->schema = hr_xstrdup(schema);
    e->table = hr_xstrdup(table);
    e->want = e->have = e->stale = 0;
    e->partitioned = 0;
    return e;
}

static void ops_names(unsigned ops, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s%s%s", ops & HR_OP_INSERT ? "insert" : "",
             (ops & HR_OP_INSERT) && (ops & (HR_OP_UPDATE | HR_OP_DELETE)) ? ", " : "",
             ops & HR_OP_UPDATE ? "update" : "",
             (ops & HR_OP_UPDATE) && (ops & HR_OP_DELETE) ? ", " : "",
             ops & HR_OP_DELETE ? "delete" : "");
}

/* ---- capture mode (key capture; pgext/herald_capture.c) ---------------------------------- */

/* Whether herald.capture_native can be (re)created: the server loads the library and finds the
 * function (CREATE FUNCTION ... LANGUAGE C checks both), under a savepoint so that a failure
 * leaves the apply transaction usable. why gets the server's reason when it cannot. */
static int native_loadable(PGconn *conn, hr_err_t *why, hr_err_t *err)
{
    int rc = hr_pg_cmd(conn, "SAVEPOINT herald_native", err, "trying native capture");
    if (rc) return rc;
    if (hr_pg_cmd(conn,
                  "CREATE OR REPLACE FUNCTION herald.capture_native() RETURNS trigger"
                  " LANGUAGE C AS 'herald_capture', 'herald_capture'",
                  why, "creating herald.capture_native") == 0)
        return hr_pg_cmd(conn, "RELEASE SAVEPOINT herald_native", err, "trying native capture")
                   ? HR_EDB
                   : 1;
    rc = hr_pg_cmd(conn, "ROLLBACK TO SAVEPOINT herald_native", err, "trying native capture");
    return rc ? rc : 0;
}

/* The capture mode recorded in herald.meta by the last apply: 1 native, 0 PL/pgSQL, -1 none. */
static int recorded_capture(PGconn *conn, int *out, hr_err_t *err)
{
    char v[32];
    if (meta_get(conn, "capture", v, sizeof v, err, "reading the capture mode")) return HR_EDB;
    *out = v[0] ? strcmp(v, "native") == 0 : -1;
    return 0;
}

/* Resolves mode to native (1) or PL/pgSQL (0) inside the apply transaction, records it for the
 * metadata API's edits (which follow it: capture_for_edit) and reports a change of mode. */
static int resolve_capture(PGconn *conn, hr_capture_mode_t mode, int *native,
                           hr_store_report_fn report, void *ud, hr_err_t *err)
{
    hr_err_t why = {0};
    int rc = 0;
    *native = 0;
    if (mode != HR_CAPTURE_PLPGSQL) {
        rc = native_loadable(conn, &why, err);
        if (rc < 0) return rc;
        *native = rc;
        if (!*native && mode == HR_CAPTURE_NATIVE)
            return hr_err_set(err, HR_ECONFIG,
                              "capture: native: the server cannot load herald's module: %s; "
                              "install build/pgext/herald_capture.so into its library directory "
                              "(make install-pgext) or set capture: plpgsql",
                              why.msg);
    }
    int before;
    if ((rc = recorded_capture(conn, &before, err))) return rc;
    if (before == *native) return 0;
    if (meta_set(conn, "capture", *native ? "native" : "plpgsql", err,
                 "recording the capture mode"))
        return HR_EDB;
    char line[sizeof why.msg + 64];
    if (*native)
        snprintf(line, sizeof line, "capture: native (herald_capture)");
    else if (why.msg[0])
        snprintf(line, sizeof line, "capture: plpgsql (native capture unavailable: %s)", why.msg);
    else
        snprintf(line, sizeof line, "capture: plpgsql");
    report(ud, line);
    return 0;
}

/* The mode for an edit through the metadata API: PL/pgSQL when the last apply recorded it, else
 * auto — which, after a recorded native, checks that the server still loads the module rather
 * than create triggers whose function it cannot load (then PL/pgSQL, recorded, for every table). */
static int capture_for_edit(PGconn *conn, int *native, hr_err_t *err)
{
    int rc = recorded_capture(conn, native, err);
    if (rc || *native == 0) return rc;
    return resolve_capture(conn, HR_CAPTURE_AUTO, native, no_report, NULL, err);
}

static unsigned table_style(const table_ops_t *e, int native)
{
    return (native ? HR_CAPTURE_PG_NATIVE : 0) | (e->partitioned ? HR_CAPTURE_PG_ROW : 0);
}

/* Makes the installed capture triggers exactly what defs[0..n) need: per table, the union of
 * their row operations, each made in the table's style (capture.h: native, or PL/pgSQL per
 * statement, or per row on a partitioned table). Capture on tables no definition reads is
 * removed; a trigger of another style is replaced. */
static int sync_capture(PGconn *conn, const hr_trigger_def_t *defs, size_t ndefs, int native,
                        hr_store_report_fn report, void *ud, hr_err_t *err)
{
    const unsigned row_ops = HR_OP_INSERT | HR_OP_UPDATE | HR_OP_DELETE;
    const unsigned ops[] = {HR_OP_INSERT, HR_OP_UPDATE, HR_OP_DELETE};
    table_ops_t *v = NULL;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < ndefs; i++) {
        const hr_trigger_def_t *t = &defs[i];
        if (!t->table || !(t->ops & row_ops)) continue;
        add_table(&v, &n, t->schema, t->table)->want |= t->ops & row_ops;
    }
    for (size_t i = 0; i < n; i++) {
        const char *p[] = {v[i].schema, v[i].table};
        PGresult *k =
            hr_pg_exec(conn,
                       "SELECT c.relkind = 'p' FROM pg_class c JOIN pg_namespace n"
                       " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                       2, p, err, "looking up tables");
        if (!k) {
            rc = HR_EDB;
            goto out;
        }
        v[i].partitioned = PQntuples(k) == 1 && strcmp(PQgetvalue(k, 0, 0), "t") == 0;
        PQclear(k);
    }
    PGresult *r = hr_pg_exec(conn,
                             "SELECT n.nspname, c.relname, t.tgname, p.proname,"
                             " (t.tgtype & 1) = 1 FROM pg_trigger t"
                             " JOIN pg_class c ON c.oid = t.tgrelid"
                             " JOIN pg_namespace n ON n.oid = c.relnamespace"
                             " JOIN pg_proc p ON p.oid = t.tgfoid"
                             " WHERE t.tgname IN ('herald_capture_insert', 'herald_capture_update',"
                             " 'herald_capture_delete')"
                             /* Not the clones PostgreSQL makes of a partitioned table's row-level
                              * triggers on its partitions: they come and go with the parent's. */
                             " AND t.tgparentid = 0",
                             0, NULL, err, "listing capture triggers");
    if (!r) {
        rc = HR_EDB;
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *tg = PQgetvalue(r, i, 2);
        unsigned op = strcmp(tg, "herald_capture_insert") == 0   ? HR_OP_INSERT
                      : strcmp(tg, "herald_capture_update") == 0 ? HR_OP_UPDATE
                                                                 : HR_OP_DELETE;
        table_ops_t *e = add_table(&v, &n, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        e->have |= op;
        unsigned style = table_style(e, native);
        int row = strcmp(PQgetvalue(r, i, 4), "t") == 0;
        if (strcmp(PQgetvalue(r, i, 3), hr_capture_pg_function(op, style)) != 0 ||
            row != hr_capture_pg_row_level(op, style))
            e->stale |= op;
    }
    PQclear(r);
    hr_buf_t sql = HR_BUF_INIT;
    for (size_t i = 0; i < n && !rc; i++) {
        table_ops_t *e = &v[i];
        unsigned switched = e->stale & e->want;
        if (e->want == e->have && !switched) continue;
        hr_buf_reset(&sql);
        for (int k = 0; k < 3; k++) {
            if ((e->have & ops[k]) && (!(e->want & ops[k]) || (switched & ops[k])))
                hr_capture_pg_drop(e->schema, e->table, ops[k], &sql);
            if ((e->want & ops[k]) && (!(e->have & ops[k]) || (switched & ops[k])))
                hr_capture_pg_create(e->schema, e->table, ops[k], table_style(e, native), &sql);
        }
        rc = hr_pg_cmd(conn, sql.data, err, "installing capture");
        if (rc) break;
        char names[64], line[600];
        ops_names(e->want, names, sizeof names);
        const char *how = native ? "native" : "plpgsql";
        if (!e->have)
            snprintf(line, sizeof line, "capture: installed on %s.%s (%s; %s)", e->schema, e->table,
                     names, how);
        else if (!e->want)
            snprintf(line, sizeof line, "capture: removed from %s.%s", e->schema, e->table);
        else if (e->want == e->have)
            snprintf(line, sizeof line, "capture: switched to %s on %s.%s (%s)", how, e->schema,
                     e->table, names);
        else
            snprintf(line, sizeof line, "capture: changed on %s.%s (%s; %s)", e->schema, e->table,
                     names, how);
        report(ud, line);
    }
    hr_buf_free(&sql);
out:
    for (size_t i = 0; i < n; i++) {
        free(v[i].schema);
        free(v[i].table);
    }
    free(v);
    return rc;
}

/* The stored definitions, as read inside a transaction. */
typedef struct stored {
    char *name;
    json_t *json;         /* the stored canonical JSON; NULL when it does not parse */
    hr_trigger_def_t def; /* valid only when ok */
    int ok;
    char why[256]; /* why the definition is invalid */
} stored_t;

static void stored_free(stored_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        json_decref(v[i].json);
        if (v[i].ok) hr_trigger_def_clear(&v[i].def);
    }
    free(v);
}

static int load_stored(PGconn *conn, stored_t **out, size_t *nout, hr_err_t *err)
{
    PGresult *r =
        hr_pg_exec(conn, "SELECT name, definition::text FROM herald.triggers ORDER BY name", 0,
                   NULL, err, "reading trigger definitions");
    if (!r) return HR_EDB;
    size_t n = (size_t)PQntuples(r);
    stored_t *v = hr_xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        hr_err_t e1 = {0};
        v[i].name = hr_xstrdup(PQgetvalue(r, (int)i, 0));
        v[i].json = json_loads(PQgetvalue(r, (int)i, 1), 0, &je);
        if (!v[i].json)
            snprintf(v[i].why, sizeof v[i].why, "%.200s", je.text);
        else if (hr_trigger_def_from_json(v[i].json, &v[i].def, &e1) != 0)
            snprintf(v[i].why, sizeof v[i].why, "%.200s", e1.msg);
        else
            v[i].ok = 1;
    }
    PQclear(r);
    *out = v;
    *nout = n;
    return 0;
}

/* The stored definitions except `skip` (may be NULL), plus `add` (may be NULL), as a shallow
 * array for sync_capture. An invalid stored definition other than `skip` is an error: its
 * table is unknown, and dropping capture that it may need would lose events. */
static int defs_with(const stored_t *v, size_t n, const char *skip, const hr_trigger_def_t *add,
                     hr_trigger_def_t **out, size_t *nout, hr_err_t *err)
{
    hr_trigger_def_t *defs = hr_xcalloc(n + 2, sizeof *defs);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(v[i].name, skip) == 0) continue;
        if (!v[i].ok) {
            free(defs);
            return hr_err_set(err, HR_EDB,
                              "the stored definition of trigger %s is invalid (%s): replace it "
                              "or run herald apply",
                              v[i].name, v[i].why);
        }
        defs[k++] = v[i].def;
    }
    if (add) defs[k++] = *add;
    *out = defs;
    *nout = k;
    return 0;
}

/* Stores t. old is its stored JSON, NULL when t is new (then a cursor is created too). Sets
 * *changed when something was written. */
static int store_definition(PGconn *conn, const hr_trigger_def_t *t, const json_t *old, int exists,
                            hr_store_report_fn report, void *ud, int *changed, hr_err_t *err)
{
    json_t *j = hr_trigger_def_to_json(t);
    int rc = 0;
    if (old && json_equal(old, j)) goto out;
    char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    const char *p[] = {t->name, text};
    PGresult *u = hr_pg_exec(conn,
                             "INSERT INTO herald.triggers (name, definition) VALUES ($1, $2)"
                             " ON CONFLICT (name) DO UPDATE SET definition = excluded.definition,"
                             " updated_at = now()",
                             2, p, err, "storing a trigger definition");
    free(text);
    if (!u) {
        rc = HR_EDB;
        goto out;
    }
    PQclear(u);
    if (!exists) {
        /* A new trigger's cursor: an empty range at "now" (everything committed before this
         * transaction is skipped), or before the first transaction. */
        const char *q[] = {t->name, t->start_beginning ? "1" : "0"};
        u = hr_pg_exec(conn,
                       "INSERT INTO herald.cursors (trigger, lo, hi) SELECT $1, s, s FROM"
                       " (SELECT CASE WHEN $2 = '1' THEN '1:1:'::pg_snapshot"
                       " ELSE pg_current_snapshot() END AS s) x"
                       " ON CONFLICT (trigger) DO NOTHING",
                       2, q, err, "creating a cursor");
        if (!u) {
            rc = HR_EDB;
            goto out;
        }
        PQclear(u);
    }
    char line[256];
    snprintf(line, sizeof line, "trigger %s: %s", t->name, exists ? "updated" : "created");
    report(ud, line);
    *changed = 1;
out:
    json_decref(j);
    return rc;
}

/* Removes a trigger's definition, cursor and pending retries (never its events or attempts). */
static int remove_definition(PGconn *conn, const char *name, hr_store_report_fn report, void *ud,
                             hr_err_t *err)
{
    const char *p[] = {name};
    const char *const sql[] = {"DELETE FROM herald.triggers WHERE name = $1",
                               "DELETE FROM herald.cursors WHERE trigger = $1",
                               "DELETE FROM herald.delayed WHERE trigger = $1"};
    const char *const what[] = {"removing a trigger", "removing a cursor",
                                "removing pending retries"};
    for (int i = 0; i < 3; i++) {
        PGresult *u = hr_pg_exec(conn, sql[i], 1, p, err, what[i]);
        if (!u) return HR_EDB;
        PQclear(u);
    }
    char line[256];
    snprintf(line, sizeof line, "trigger %s: removed", name);
    report(ud, line);
    return 0;
}

static int bump_defs_version(PGconn *conn, hr_err_t *err)
{
    return hr_pg_cmd(conn,
                     "UPDATE herald.meta SET value = (value::bigint + 1)::text"
                     " WHERE key = 'defs_version'",
                     err, "bumping the definitions version");
}

static const stored_t *find_stored(const stored_t *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) return &v[i];
    return NULL;
}

static int sync_definitions(PGconn *conn, const hr_config_t *cfg, hr_store_report_fn report,
                            void *ud, hr_err_t *err)
{
    stored_t *v = NULL;
    size_t n = 0;
    int changed = 0;
    int rc = load_stored(conn, &v, &n, err);
    if (rc) return rc;
    for (size_t i = 0; i < cfg->ntriggers && !rc; i++) {
        const stored_t *s = find_stored(v, n, cfg->triggers[i].name);
        rc = store_definition(conn, &cfg->triggers[i], s ? s->json : NULL, s != NULL, report, ud,
                              &changed, err);
    }
    for (size_t k = 0; k < n && !rc; k++) {
        int keep = 0;
        for (size_t i = 0; i < cfg->ntriggers && !keep; i++)
            keep = strcmp(cfg->triggers[i].name, v[k].name) == 0;
        if (keep) continue;
        rc = remove_definition(conn, v[k].name, report, ud, err);
        changed = 1;
    }
    stored_free(v, n);
    if (!rc && changed) rc = bump_defs_version(conn, err);
    return rc;
}

static int pg_apply(hr_store_t *st, const hr_config_t *cfg, hr_store_report_fn report, void *ud,
                    hr_err_t *err)
{
    int rc = admin_conn(st, err);
    if (rc) return rc;
    PGconn *conn = st->admin;
    if ((rc = hr_pg_cmd(conn, "BEGIN", err, "starting the apply transaction"))) return rc;
    /* One apply at a time, whatever number of herald processes share the database. */
    if ((rc = hr_pg_cmd(conn, APPLY_LOCK, err, "waiting for other applies"))) goto out;
    if ((rc = validate_tables(conn, cfg, err))) goto out;
    if ((rc = migrate(conn, report, ud, err))) goto out;
    int native;
    if ((rc = resolve_capture(conn, cfg->capture, &native, report, ud, err))) goto out;
    if ((rc = sync_capture(conn, cfg->triggers, cfg->ntriggers, native, report, ud, err))) goto out;
    if ((rc = sync_definitions(conn, cfg, report, ud, err))) goto out;
    rc = hr_pg_cmd(conn, "COMMIT", err, "committing the apply transaction");
    return rc;
out:
    hr_pg_cmd(conn, "ROLLBACK", NULL, "rolling back");
    return rc;
}

static int pg_put_trigger(hr_store_t *st, const hr_trigger_def_t *def, int replace, hr_err_t *err)
{
    stored_t *v = NULL;
    hr_trigger_def_t *set = NULL, check;
    size_t n = 0, nset = 0;
    int changed = 0;
    /* The definition must be one that load_triggers can read back. */
    json_t *j = hr_trigger_def_to_json(def);
    int rc = hr_trigger_def_from_json(j, &check, err);
    json_decref(j);
    if (rc) return rc;
    hr_trigger_def_clear(&check);
    if ((rc = admin_conn(st, err))) return rc;
    PGconn *conn = st->admin;
    if ((rc = hr_pg_cmd(conn, "BEGIN", err, "starting a transaction"))) return rc;
    if ((rc = hr_pg_cmd(conn, APPLY_LOCK, err, "waiting for other applies"))) goto out;
    if ((rc = validate_trigger(conn, def, err))) goto out;
    if ((rc = migrate(conn, no_report, NULL, err))) goto out;
    if ((rc = load_stored(conn, &v, &n, err))) goto out;
    const stored_t *old = find_stored(v, n, def->name);
    if (old && !replace) {
        rc = hr_err_set(err, HR_EEXIST, "trigger %s already exists", def->name);
        goto out;
    }
    if ((rc = defs_with(v, n, def->name, def, &set, &nset, err))) goto out;
    int native;
    if ((rc = capture_for_edit(conn, &native, err))) goto out;
    if ((rc = sync_capture(conn, set, nset, native, no_report, NULL, err))) goto out;
    if ((rc = store_definition(conn, def, old ? old->json : NULL, old != NULL, no_report, NULL,
                               &changed, err)))
        goto out;
    if (changed && (rc = bump_defs_version(conn, err))) goto out;
    rc = hr_pg_cmd(conn, "COMMIT", err, "committing");
out:
    if (rc) hr_pg_cmd(conn, "ROLLBACK", NULL, "rolling back");
    free(set);
    stored_free(v, n);
    return rc;
}

static int pg_delete_trigger(hr_store_t *st, const char *name, hr_err_t *err)
{
    stored_t *v = NULL;
    hr_trigger_def_t *set = NULL;
    size_t n = 0, nset = 0;
    int version = 0;
    int rc = admin_conn(st, err);
    if (rc) return rc;
    PGconn *conn = st->admin;
    if ((rc = hr_pg_cmd(conn, "BEGIN", err, "starting a transaction"))) return rc;
    if ((rc = hr_pg_cmd(conn, APPLY_LOCK, err, "waiting for other applies"))) goto out;
    if ((rc = schema_version(conn, &version, err))) goto out;
    if (version == 0) {
        rc = hr_err_set(err, HR_ENOTFOUND, "trigger %s not found", name);
        goto out;
    }
    if ((rc = hr_pg_require_schema(conn, err))) goto out;
    if ((rc = load_stored(conn, &v, &n, err))) goto out;
    if (!find_stored(v, n, name)) {
        rc = hr_err_set(err, HR_ENOTFOUND, "trigger %s not found", name);
        goto out;
    }
    if ((rc = defs_with(v, n, name, NULL, &set, &nset, err))) goto out;
    int native;
    if ((rc = capture_for_edit(conn, &native, err))) goto out;
    if ((rc = sync_capture(conn, set, nset, native, no_report, NULL, err))) goto out;
    if ((rc = remove_definition(conn, name, no_report, NULL, err))) goto out;
    if ((rc = bump_defs_version(conn, err))) goto out;
    rc = hr_pg_cmd(conn, "COMMIT", err, "committing");
out:
    if (rc) hr_pg_cmd(conn, "ROLLBACK", NULL, "rolling back");
    free(set);
    stored_free(v, n);
    return rc;
}

int hr_pg_load_def(PGconn *conn, const char *name, int lock, hr_trigger_def_t *out, hr_err_t *err)
{
    const char *p[] = {name};
    PGresult *r = hr_pg_exec(conn,
                             lock ? "SELECT definition::text FROM herald.triggers WHERE name = $1"
                                    " FOR SHARE"
                                  : "SELECT definition::text FROM herald.triggers WHERE name = $1",
                             1, p, err, "reading a trigger definition");
    if (!r) return HR_EDB;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return hr_err_set(err, HR_ENOTFOUND, "trigger %s not found", name);
    }
    json_error_t je;
    json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, &je);
    PQclear(r);
    hr_err_t e1 = {0};
    int rc = j ? hr_trigger_def_from_json(j, out, &e1) : HR_EINVAL;
    json_decref(j);
    if (rc)
        return hr_err_set(err, HR_EDB, "the stored definition of trigger %s is invalid: %s", name,
                          j ? e1.msg : je.text);
    return 0;
}

static int pg_load_triggers(hr_store_t *st, hr_trigger_def_t **out, size_t *nout, hr_err_t *err)
{
    stored_t *v = NULL;
    size_t n = 0;
    int rc = admin_conn(st, err);
    if (rc) return rc;
    if ((rc = hr_pg_require_schema(st->admin, err))) return rc;
    if ((rc = load_stored(st->admin, &v, &n, err))) return rc;
    hr_trigger_def_t *defs = hr_xcalloc(n + 1, sizeof *defs);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].ok) {
            hr_log(HR_LOG_ERROR,
                   "trigger=%s msg=\"stored definition is invalid; skipped\" error=\"%s\"",
                   v[i].name, v[i].why);
            continue;
        }
        defs[ok++] = v[i].def; /* moved out of v */
        v[i].ok = 0;
    }
    stored_free(v, n);
    *out = defs;
    *nout = ok;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Asynchronous operations                                                                    */

typedef struct op_ctx {
    hr_store_t *st;
    const hr_trigger_def_t *t;
    size_t limit;
    hr_store_page_cb page_cb;
    hr_store_done_cb done_cb;
    void (*version_cb)(void *, int, int64_t);
    void *ud;
    char *cursor[4]; /* lo, hi, last_xid, last_seq */
    int advance;
} op_ctx_t;

static void op_free(op_ctx_t *c)
{
    for (int i = 0; i < 4; i++)
        free(c->cursor[i]);
    free(c);
}

static void free_result(void *p)
{
    PQclear(p);
}

static void on_version(void *ud, int rc, PGresult *res, const char *msg)
{
    op_ctx_t *c = ud;
    int64_t v = -1;
    if (!rc && PQntuples(res) == 1) v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (res) PQclear(res);
    c->version_cb(c->ud, rc, v);
    op_free(c);
}

static int pg_defs_version(hr_store_t *st, void (*cb)(void *, int, int64_t), void *ud)
{
    op_ctx_t *c = hr_xcalloc(1, sizeof *c);
    c->version_cb = cb;
    c->ud = ud;
    return hr_pgconn_query(st->async, "SELECT value FROM herald.meta WHERE key = 'defs_version'", 0,
                           NULL, on_version, c);
}

static void on_ping(void *ud, int rc, PGresult *res, const char *msg)
{
    op_ctx_t *c = ud;
    char why[160];
    if (!rc) {
        int v = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? atoi(PQgetvalue(res, 0, 0)) : 0;
        if (v != hr_pg_schema_version) {
            rc = HR_ESCHEMA;
            snprintf(why, sizeof why, "herald's schema is at version %d, this herald needs %d", v,
                     hr_pg_schema_version);
            msg = why;
        }
    }
    if (res) PQclear(res);
    c->done_cb(c->ud, rc, msg);
    op_free(c);
}

/* One query on the async connection: it fails when the database is unreachable (the connection
 * then re-establishes itself) or herald.meta is missing. */
static int pg_ping(hr_store_t *st, hr_store_done_cb cb, void *ud)
{
    if (!st->async) return HR_EINVAL;
    op_ctx_t *c = hr_xcalloc(1, sizeof *c);
    c->done_cb = cb;
    c->ud = ud;
    int rc =
        hr_pgconn_query(st->async, "SELECT value FROM herald.meta WHERE key = 'schema_version'", 0,
                        NULL, on_ping, c);
    if (rc) op_free(c);
    return rc;
}

/* The filter of a trigger's reads: table triggers match their source and operations; event
 * triggers match emitted types exactly or by prefix. Appends SQL using $6 and $7. */
void hr_pg_filter_params(const hr_trigger_def_t *t, hr_buf_t *p6, hr_buf_t *p7)
{
    if (t->cron) {
        /* A schedule's fires: source = its name, op CRON (no table or events trigger reads
         * op CRON, and a schedule reads no other op). */
        hr_buf_puts(p6, t->name);
        hr_buf_puts(p7, "{CRON}");
        return;
    }
    if (t->table) {
        hr_capture_source(t->schema, t->table, p6);
        /* MANUAL events are queued for their one trigger (invoke), never read from the log. */
        hr_buf_puts(p7, "{");
        const char *names[] = {"INSERT", "UPDATE", "DELETE"};
        int first = 1;
        for (int i = 0; i < 3; i++) {
            if (!(t->ops & (1u << i))) continue;
            hr_buf_printf(p7, "%s%s", first ? "" : ",", names[i]);
            first = 0;
        }
        hr_buf_puts(p7, "}");
        return;
    }
    /* Arrays of exact types ($6) and LIKE patterns ($7), as array literals. */
    hr_buf_puts(p6, "{");
    hr_buf_puts(p7, "{");
    int f6 = 1, f7 = 1;
    for (size_t i = 0; i < t->nevents; i++) {
        const char *e = t->events[i];
        size_t len = strlen(e);
        int prefix = len && e[len - 1] == '*';
        hr_buf_t *b = prefix ? p7 : p6;
        int *first = prefix ? &f7 : &f6;
        hr_buf_puts(b, *first ? "\"" : ",\"");
        *first = 0;
        for (size_t k = 0; k < (prefix ? len - 1 : len); k++) {
            char ch = e[k];
            if (prefix && (ch == '%' || ch == '_')) hr_buf_puts(b, "\\\\"); /* LIKE escape */
            if (ch == '"' || ch == '\\') hr_buf_putc(b, '\\');
            if (prefix && ch == '\\') hr_buf_puts(b, "\\\\");
            hr_buf_putc(b, ch);
        }
        if (prefix) hr_buf_putc(b, '%');
        hr_buf_putc(b, '"');
    }
    hr_buf_puts(p6, "}");
    hr_buf_puts(p7, "}");
}

#define EVENT_COLUMNS                                                                              \
    "e.seq, e.id::text, e.xid::text, to_char(e.at AT TIME ZONE 'UTC',"                             \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), e.source, e.op, e.old::text, e.new::text,"             \
    " e.session::text"

static const char *const read_sql_table =
    "WITH c AS (SELECT $1::pg_snapshot AS lo, coalesce($2::pg_snapshot, pg_current_snapshot()) AS "
    "hi)"
    " SELECT c.lo::text, c.hi::text, " EVENT_COLUMNS " FROM c LEFT JOIN LATERAL ("
    " SELECT l.* FROM herald.log l"
    " WHERE l.xid >= pg_snapshot_xmin(c.lo) AND l.xid < pg_snapshot_xmax(c.hi)"
    " AND (l.xid, l.seq) > ($3::xid8, $4::bigint)"
    " AND pg_visible_in_snapshot(l.xid, c.hi) AND NOT pg_visible_in_snapshot(l.xid, c.lo)"
    " AND l.source = $6 AND l.op = ANY ($7::text[])"
    " ORDER BY l.xid, l.seq LIMIT $5) e ON true ORDER BY e.xid, e.seq";

static const char *const read_sql_events =
    "WITH c AS (SELECT $1::pg_snapshot AS lo, coalesce($2::pg_snapshot, pg_current_snapshot()) AS "
    "hi)"
    " SELECT c.lo::text, c.hi::text, " EVENT_COLUMNS " FROM c LEFT JOIN LATERAL ("
    " SELECT l.* FROM herald.log l"
    " WHERE l.xid >= pg_snapshot_xmin(c.lo) AND l.xid < pg_snapshot_xmax(c.hi)"
    " AND (l.xid, l.seq) > ($3::xid8, $4::bigint)"
    " AND pg_visible_in_snapshot(l.xid, c.hi) AND NOT pg_visible_in_snapshot(l.xid, c.lo)"
    " AND l.op = 'EMIT' AND (l.source = ANY ($6::text[]) OR l.source LIKE ANY ($7::text[]))"
    " ORDER BY l.xid, l.seq LIMIT $5) e ON true ORDER BY e.xid, e.seq";

/* Fills ev from row i of res, where the event columns start at column c0. */
static void row_event(PGresult *res, int i, int c0, const hr_trigger_def_t *t, hr_event_t *ev)
{
#define COL(k) (PQgetisnull(res, i, c0 + (k)) ? NULL : PQgetvalue(res, i, c0 + (k)))
    ev->seq = strtoll(PQgetvalue(res, i, c0), NULL, 10);
    ev->id = COL(1);
    ev->created_at = COL(3);
    ev->op = COL(5);
    if (strcmp(ev->op, "EMIT") == 0) {
        ev->type = COL(4);
        ev->schema = ev->table = NULL;
    } else {
        ev->type = NULL;
        ev->schema = t->schema;
        ev->table = t->table;
    }
    ev->old_json = COL(6);
    ev->new_json = COL(7);
    ev->session_json = COL(8);
#undef COL
}

/* An empty page with room for one event per row of res (and their attempt counts). */
static hr_page_t *page_for(PGresult *res, int with_attempts)
{
    size_t rows = (size_t)PQntuples(res);
    hr_page_t *page = hr_xcalloc(1, sizeof *page);
    page->events = hr_xcalloc(rows + 1, sizeof *page->events);
    if (with_attempts) page->attempts = hr_xcalloc(rows + 1, sizeof *page->attempts);
    return page;
}

static void on_page(void *ud, int rc, PGresult *res, const char *msg)
{
    op_ctx_t *c = ud;
    if (rc) {
        c->page_cb(c->ud, rc, NULL, msg);
        op_free(c);
        return;
    }
    int rows = PQntuples(res);
    hr_page_t *page = page_for(res, 0);
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 2)) continue; /* the empty range's single row */
        row_event(res, i, 2, c->t, &page->events[page->nevents++]);
    }
    const char *lo = PQgetvalue(res, 0, 0), *hi = PQgetvalue(res, 0, 1);
    page->exhausted = page->nevents < c->limit;
    page->next_due_ms = -1;
    if (page->exhausted) {
        /* The whole range is read once this page settles: the next range starts at hi. */
        page->cursor_after = hr_xasprintf("%s|%s|0|0|1", hi, hi);
    } else {
        int last = rows - 1;
        page->cursor_after = hr_xasprintf("%s|%s|%s|%s|0", lo, hi, PQgetvalue(res, last, 4),
                                          PQgetvalue(res, last, 2));
    }
    page->backend_data = res;
    page->backend_free = free_result;
    c->page_cb(c->ud, 0, page, NULL);
    op_free(c);
}

/* The key the range's index scan starts after: (last_xid, last_seq), raised to (xmin(lo), 0)
 * when it lies below the range. Without that, a new range (last = 0, 0) makes PostgreSQL start
 * the scan at the very beginning of the (xid, seq) index and filter its way forward: every poll
 * would cost more as the log grows. */
static void scan_start(const char *lo, const char *last_xid, const char *last_seq, char *xid_out,
                       size_t xid_cap, const char **seq_out)
{
    unsigned long long xmin = strtoull(lo, NULL, 10); /* "xmin:xmax:xip,…" */
    unsigned long long last = strtoull(last_xid, NULL, 10);
    if (last >= xmin) {
        snprintf(xid_out, xid_cap, "%s", last_xid);
        *seq_out = last_seq;
    } else {
        snprintf(xid_out, xid_cap, "%llu", xmin);
        *seq_out = "0";
    }
}

static int send_read(op_ctx_t *c)
{
    hr_buf_t p6 = HR_BUF_INIT, p7 = HR_BUF_INIT;
    hr_pg_filter_params(c->t, &p6, &p7);
    char limit[24], xid[32];
    snprintf(limit, sizeof limit, "%zu", c->limit);
    const char *params[7];
    if (c->advance) {
        params[0] = c->cursor[1]; /* lo := hi */
        params[1] = NULL;         /* hi := pg_current_snapshot() */
        scan_start(c->cursor[1], "0", "0", xid, sizeof xid, &params[3]);
    } else {
        params[0] = c->cursor[0];
        params[1] = c->cursor[1];
        scan_start(c->cursor[0], c->cursor[2], c->cursor[3], xid, sizeof xid, &params[3]);
    }
    params[2] = xid;
    params[4] = limit;
    params[5] = p6.data;
    params[6] = p7.data;
    int rc = c->t->table || c->t->cron
                 ? hr_pgconn_query_stmt(c->st->async, "hr_read_table", read_sql_table, 7, params,
                                        on_page, c)
                 : hr_pgconn_query_stmt(c->st->async, "hr_read_events", read_sql_events, 7, params,
                                        on_page, c);
    hr_buf_free(&p6);
    hr_buf_free(&p7);
    return rc;
}

static void on_cursor_loaded(void *ud, int rc, PGresult *res, const char *msg)
{
    op_ctx_t *c = ud;
    if (!rc && PQntuples(res) != 1) {
        rc = HR_ENOTFOUND;
        msg = "the trigger has no cursor (was it removed?)";
    }
    if (rc) {
        if (res) PQclear(res);
        c->page_cb(c->ud, rc, NULL, msg);
        op_free(c);
        return;
    }
    for (int i = 0; i < 4; i++)
        c->cursor[i] = hr_xstrdup(PQgetvalue(res, 0, i));
    PQclear(res);
    c->advance = 0;
    rc = send_read(c);
    if (rc) {
        c->page_cb(c->ud, rc, NULL, "cannot send the read");
        op_free(c);
    }
}

/* Splits "lo|hi|xid|seq|adv" into c->cursor and c->advance. */
static int parse_cursor(const char *s, op_ctx_t *c)
{
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        const char *bar = strchr(p, '|');
        if (!bar) return HR_EINVAL;
        c->cursor[i] = hr_xstrndup(p, (size_t)(bar - p));
        p = bar + 1;
    }
    c->advance = strcmp(p, "1") == 0;
    return 0;
}

static int pg_read_page(hr_store_t *st, const hr_trigger_def_t *t, const char *cursor, size_t limit,
                        hr_store_page_cb cb, void *ud)
{
    op_ctx_t *c = hr_xcalloc(1, sizeof *c);
    c->st = st;
    c->t = t;
    c->limit = limit;
    c->page_cb = cb;
    c->ud = ud;
    int rc;
    if (!cursor) {
        const char *p[] = {t->name};
        rc = hr_pgconn_query_stmt(st->async, "hr_read_cursor",
                                  "SELECT lo::text, hi::text, last_xid::text, last_seq::text"
                                  " FROM herald.cursors WHERE trigger = $1",
                                  1, p, on_cursor_loaded, c);
    } else if ((rc = parse_cursor(cursor, c)) == 0) {
        rc = send_read(c);
    }
    if (rc) op_free(c);
    return rc;
}

static void on_due(void *ud, int rc, PGresult *res, const char *msg)
{
    op_ctx_t *c = ud;
    if (rc) {
        c->page_cb(c->ud, rc, NULL, msg);
        op_free(c);
        return;
    }
    int rows = PQntuples(res);
    hr_page_t *page = page_for(res, 1);
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 1)) continue;
        page->attempts[page->nevents] = atoi(PQgetvalue(res, i, 1));
        row_event(res, i, 2, c->t, &page->events[page->nevents++]);
    }
    /* NULL when nothing else is queued (greatest(0, NULL) would be 0: "due now", which made an
     * idle trigger read its delayed queue at every poll); negative when already due. */
    if (PQgetisnull(res, 0, 0)) {
        page->next_due_ms = -1;
    } else {
        long long ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        page->next_due_ms = ms < 0 ? 0 : ms;
    }
    page->exhausted = page->nevents < c->limit;
    page->backend_data = res;
    page->backend_free = free_result;
    c->page_cb(c->ud, 0, page, NULL);
    op_free(c);
}

static int pg_read_due(hr_store_t *st, const hr_trigger_def_t *t, size_t limit, hr_store_page_cb cb,
                       void *ud)
{
    op_ctx_t *c = hr_xcalloc(1, sizeof *c);
    c->st = st;
    c->t = t;
    c->limit = limit;
    c->page_cb = cb;
    c->ud = ud;
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *p[] = {t->name, lim};
    /* Next due is computed over the rows not returned here, so that the caller can sleep until
     * then; the due rows themselves are in flight after this read. */
    int rc = hr_pgconn_query_stmt(
        st->async, "hr_read_due",
        "WITH due AS (SELECT d.seq, d.attempts, d.due_at FROM herald.delayed d"
        "  WHERE d.trigger = $1 AND NOT d.dead AND d.due_at <= now()"
        "  ORDER BY d.due_at LIMIT $2::bigint),"
        " nxt AS (SELECT ceil(extract(epoch FROM min(d.due_at) - now()) * 1000)::bigint"
        "  AS ms FROM herald.delayed d WHERE d.trigger = $1 AND NOT d.dead"
        "  AND d.seq NOT IN (SELECT seq FROM due))"
        " SELECT nxt.ms, e.attempts, " EVENT_COLUMNS " FROM nxt LEFT JOIN LATERAL ("
        "  SELECT l.*, due.attempts, due.due_at FROM due JOIN herald.log l ON l.seq = due.seq) e"
        " ON true ORDER BY e.due_at",
        2, p, on_due, c);
    if (rc) op_free(c);
    return rc;
}

static void on_settled(void *ud, int rc, PGresult *res, const char *msg)
{
    op_ctx_t *c = ud;
    if (res) PQclear(res);
    c->done_cb(c->ud, rc, msg);
    op_free(c);
}

static int pg_settle(hr_store_t *st, const char *trigger, const char *cursor_after,
                     const hr_attempt_rec_t *recs, size_t n, int from_retry, hr_store_done_cb cb,
                     void *ud)
{
    op_ctx_t *c = hr_xcalloc(1, sizeof *c);
    c->st = st;
    c->done_cb = cb;
    c->ud = ud;
    if (cursor_after && parse_cursor(cursor_after, c) != 0) {
        op_free(c);
        return HR_EINVAL;
    }
    hr_buf_t j = HR_BUF_INIT;
    hr_buf_putc(&j, '[');
    for (size_t i = 0; i < n; i++) {
        const hr_attempt_rec_t *a = &recs[i];
        hr_buf_printf(&j, "%s{\"seq\":%" PRId64 ",\"event_id\":\"%s\",\"attempt\":%d,\"status\":",
                      i ? "," : "", a->seq, a->event_id, a->attempt);
        if (a->status)
            hr_buf_printf(&j, "%ld", a->status);
        else
            hr_buf_puts(&j, "null");
        hr_buf_printf(&j, ",\"latency_ms\":%.3f,\"error\":", a->latency_ms);
        if (a->error)
            put_json_text(&j, a->error);
        else
            hr_buf_puts(&j, "null");
        hr_buf_puts(&j, ",\"response\":");
        if (a->response)
            put_json_text(&j, a->response);
        else
            hr_buf_puts(&j, "null");
        hr_buf_printf(&j, ",\"settled\":%s,\"dead\":%s,\"delay_ms\":%llu}",
                      a->settled ? "true" : "false", a->dead ? "true" : "false",
                      (unsigned long long)a->delay_ms);
    }
    hr_buf_putc(&j, ']');
    /* An exhausted range is stored as the empty range at its end. */
    const char *lo = NULL, *hi = NULL, *xid = NULL, *seq = NULL;
    if (cursor_after) {
        lo = c->advance ? c->cursor[1] : c->cursor[0];
        hi = c->cursor[1];
        xid = c->advance ? "0" : c->cursor[2];
        seq = c->advance ? "0" : c->cursor[3];
    }
    const char *p[] = {trigger, lo, hi, xid, seq, j.data, from_retry ? "true" : "false"};
    int rc =
        hr_pgconn_query_stmt(st->async, "hr_settle",
                             "SELECT herald.settle($1, $2::pg_snapshot, $3::pg_snapshot, $4::xid8,"
                             " $5::bigint, $6::jsonb, $7::boolean)",
                             7, p, on_settled, c);
    hr_buf_free(&j);
    if (rc) op_free(c);
    return rc;
}

const hr_store_ops_t hr_store_pg_ops = {
    .name = "postgres",
    .open = pg_open,
    .apply = pg_apply,
    .load_triggers = pg_load_triggers,
    .defs_version = pg_defs_version,
    .ping = pg_ping,
    .read_page = pg_read_page,
    .read_due = pg_read_due,
    .settle = pg_settle,
    .put_trigger = pg_put_trigger,
    .delete_trigger = pg_delete_trigger,
    .emit = hr_pg_emit,
    .invoke = hr_pg_invoke,
    .redeliver = hr_pg_redeliver,
    .replay = hr_pg_replay,
    .status = hr_pg_status,
    .events = hr_pg_events,
    .event = hr_pg_event,
    .attempts = hr_pg_attempts,
    .fire = hr_pg_fire,
    .last_fire = hr_pg_last_fire,
    .schedule_one_off = hr_pg_schedule_one_off,
    .delete_scheduled = hr_pg_delete_scheduled,
    .one_offs = hr_pg_one_offs,
    .stream_horizon = hr_pg_stream_horizon,
    .stream_read = hr_pg_stream_read,
    .query_events = hr_pg_query_events,
    .change_token = hr_pg_change_token,
    .leases = hr_pg_leases,
    .reconnects = pg_reconnects,
    .close = pg_close,
};
