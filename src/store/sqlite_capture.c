/* sqlite_capture.c: installing, regenerating and removing the SQLite capture triggers.
 *
 * The wanted state is computed from the trigger definitions: for each table, the union of the
 * row operations its triggers read, and for each of those operations the trigger text generated
 * from the table's current columns (capture_sqlite.c). The present state is every trigger in
 * sqlite_master named herald_capture_*, with the text SQLite kept. A present trigger whose name
 * and text are wanted stays untouched; one whose text differs (the table's columns changed) is
 * dropped and created again; one no longer wanted is dropped. Everything runs inside the
 * caller's transaction, so capture changes commit with the definitions that need them.
 *
 * The log's source of a table is hr_capture_source("public", name as SQLite spells it): SQLite
 * has no schemas, and "public", the configuration's default schema, keeps the payload's
 * table.schema and the log's source the same on both backends. */
#include "store/sqlite_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"

char *hr_sq_table_name(hr_store_t *st, const char *table, hr_err_t *err)
{
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "SELECT name FROM sqlite_master WHERE type = 'table'"
                                 " AND name = ?1 COLLATE NOCASE AND sql NOT LIKE 'CREATE VIRTUAL%'"
                                 " AND name NOT IN ('herald_meta', 'herald_log', 'herald_triggers',"
                                 " 'herald_cursors', 'herald_delayed', 'herald_attempts')"
                                 " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                                 err);
    if (!s) return NULL;
    sqlite3_bind_text(s, 1, table, -1, SQLITE_TRANSIENT);
    char *name = NULL;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        name = hr_xstrdup((const char *)sqlite3_column_text(s, 0));
    else if (r != SQLITE_DONE)
        hr_sq_fail(st, err, "looking up a table");
    sqlite3_reset(s);
    return name;
}

typedef struct want {
    char *table;  /* as SQLite spells it */
    unsigned ops; /* HR_OP_INSERT | HR_OP_UPDATE | HR_OP_DELETE */
    int had;      /* present herald triggers on the table */
    int changed;  /* created or dropped one */
} want_t;

typedef struct present {
    char *name, *table, *sql;
    int wanted;
} present_t;

static void ops_names(unsigned ops, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s%s%s", ops & HR_OP_INSERT ? "insert" : "",
             (ops & HR_OP_INSERT) && (ops & (HR_OP_UPDATE | HR_OP_DELETE)) ? ", " : "",
             ops & HR_OP_UPDATE ? "update" : "",
             (ops & HR_OP_UPDATE) && (ops & HR_OP_DELETE) ? ", " : "",
             ops & HR_OP_DELETE ? "delete" : "");
}

/* The declared type says JSON ("JSON", "jsonb", "TEXT JSON"…): embed valid JSON as JSON. */
static int is_json_type(const char *type)
{
    for (const char *p = type; p && *p; p++)
        if (strncasecmp(p, "json", 4) == 0) return 1;
    return 0;
}

/* The generated CREATE TRIGGER text of op on table; NULL with err set on failure. */
static char *trigger_sql(hr_store_t *st, const char *table, unsigned op, hr_err_t *err)
{
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "SELECT name, type FROM pragma_table_xinfo(?1) WHERE hidden <> 1"
                                 " ORDER BY cid",
                                 err);
    if (!s) return NULL;
    sqlite3_bind_text(s, 1, table, -1, SQLITE_TRANSIENT);
    hr_capture_col_t *cols = NULL;
    size_t n = 0;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        cols = hr_xrealloc(cols, (n + 1) * sizeof *cols);
        cols[n].name = hr_xstrdup((const char *)sqlite3_column_text(s, 0));
        cols[n].json = is_json_type((const char *)sqlite3_column_text(s, 1));
        n++;
    }
    sqlite3_reset(s);
    char *sql = NULL;
    if (r != SQLITE_DONE) {
        hr_sq_fail(st, err, "reading a table's columns");
    } else {
        hr_buf_t src = HR_BUF_INIT, b = HR_BUF_INIT;
        hr_capture_source("public", table, &src);
        if (hr_capture_sqlite_create(table, src.data, cols, n, op, &b) != 0)
            hr_err_set(err, HR_ECONFIG,
                       "table %s: cannot be captured (more than 63 column names hold '\"')", table);
        else
            sql = hr_buf_steal(&b, NULL);
        hr_buf_free(&b);
        hr_buf_free(&src);
    }
    for (size_t i = 0; i < n; i++)
        free((char *)cols[i].name);
    free(cols);
    return sql;
}

static int drop_trigger(hr_store_t *st, const char *name, hr_err_t *err)
{
    hr_buf_t b = HR_BUF_INIT;
    hr_capture_sqlite_drop(name, &b);
    int rc = hr_sq_exec(st, b.data, err, "removing capture");
    hr_buf_free(&b);
    return rc;
}

int hr_sq_sync_capture(hr_store_t *st, const hr_trigger_def_t *defs, size_t n,
                       hr_store_report_fn report, void *ud, hr_err_t *err)
{
    const unsigned row_ops = HR_OP_INSERT | HR_OP_UPDATE | HR_OP_DELETE;
    want_t *w = NULL;
    present_t *p = NULL;
    size_t nw = 0, np = 0;
    int rc = 0;

    for (size_t i = 0; i < n && !rc; i++) {
        const hr_trigger_def_t *t = &defs[i];
        if (!t->table || !(t->ops & row_ops)) continue;
        hr_err_t e2 = {0};
        char *name = hr_sq_table_name(st, t->table, &e2);
        if (!name) {
            if (e2.code) rc = hr_err_set(err, e2.code, "%s", e2.msg);
            continue; /* a table that no longer exists cannot be captured */
        }
        size_t k = 0;
        while (k < nw && strcmp(w[k].table, name) != 0)
            k++;
        if (k == nw) {
            w = hr_xrealloc(w, (nw + 1) * sizeof *w);
            memset(&w[nw], 0, sizeof *w);
            w[nw++].table = name;
        } else {
            free(name);
        }
        w[k].ops |= t->ops & row_ops;
    }
    if (rc) goto out;

    sqlite3_stmt *s =
        hr_sq_stmt(st,
                   "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
                   " AND name LIKE 'herald\\_capture\\_%' ESCAPE '\\'",
                   err);
    if (!s) {
        rc = HR_EDB;
        goto out;
    }
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        p = hr_xrealloc(p, (np + 1) * sizeof *p);
        p[np].name = hr_xstrdup((const char *)sqlite3_column_text(s, 0));
        p[np].table = hr_xstrdup((const char *)sqlite3_column_text(s, 1));
        p[np].sql = hr_xstrdup((const char *)sqlite3_column_text(s, 2));
        p[np++].wanted = 0;
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        rc = hr_sq_fail(st, err, "listing capture triggers");
        goto out;
    }
    for (size_t k = 0; k < nw; k++)
        for (size_t i = 0; i < np; i++)
            if (strcasecmp(p[i].table, w[k].table) == 0) w[k].had++;

    /* Create what is missing or different. */
    static const unsigned ops[] = {HR_OP_INSERT, HR_OP_UPDATE, HR_OP_DELETE};
    for (size_t k = 0; k < nw && !rc; k++) {
        for (int o = 0; o < 3 && !rc; o++) {
            if (!(w[k].ops & ops[o])) continue;
            char *sql = trigger_sql(st, w[k].table, ops[o], err);
            if (!sql) {
                rc = err && err->code ? err->code : HR_EDB;
                break;
            }
            hr_buf_t name = HR_BUF_INIT;
            hr_capture_sqlite_name(w[k].table, ops[o], &name);
            present_t *same = NULL;
            for (size_t i = 0; i < np && !same; i++)
                if (strcasecmp(p[i].name, name.data) == 0) same = &p[i];
            if (same && strcmp(same->sql, sql) == 0 && strcmp(same->table, w[k].table) == 0) {
                same->wanted = 1;
            } else {
                if (same) {
                    rc = drop_trigger(st, same->name, err);
                    same->wanted = 1; /* replaced here, not to be dropped again */
                }
                if (!rc) rc = hr_sq_exec(st, sql, err, "installing capture");
                w[k].changed = 1;
            }
            hr_buf_free(&name);
            free(sql);
        }
    }
    /* Drop what no trigger needs, and report. */
    for (size_t i = 0; i < np && !rc; i++) {
        if (p[i].wanted) continue;
        rc = drop_trigger(st, p[i].name, err);
        size_t k = 0;
        while (k < nw && strcasecmp(w[k].table, p[i].table) != 0)
            k++;
        if (k < nw) {
            w[k].changed = 1;
        } else if (!rc && report) {
            /* Report a table once, at its first dropped trigger. */
            int first = 1;
            for (size_t j = 0; j < i && first; j++)
                if (!p[j].wanted && strcasecmp(p[j].table, p[i].table) == 0) first = 0;
            if (first) {
                hr_buf_t src = HR_BUF_INIT;
                hr_capture_source("public", p[i].table, &src);
                char *line = hr_xasprintf("capture: removed from %s", src.data);
                report(ud, line);
                free(line);
                hr_buf_free(&src);
            }
        }
    }
    for (size_t k = 0; k < nw && !rc && report; k++) {
        if (!w[k].changed) continue;
        char names[64];
        ops_names(w[k].ops, names, sizeof names);
        hr_buf_t src = HR_BUF_INIT;
        hr_capture_source("public", w[k].table, &src);
        char *line = hr_xasprintf("capture: %s %s (%s)", w[k].had ? "changed on" : "installed on",
                                  src.data, names);
        report(ud, line);
        free(line);
        hr_buf_free(&src);
    }
out:
    for (size_t k = 0; k < nw; k++)
        free(w[k].table);
    for (size_t i = 0; i < np; i++) {
        free(p[i].name);
        free(p[i].table);
        free(p[i].sql);
    }
    free(w);
    free(p);
    return rc;
}
