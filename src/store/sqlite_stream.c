/* sqlite_stream.c: the SQLite side of GraphQL — the stream horizon, stream reads, and events
 * filtered by a `where` (store.h).
 *
 * SQLite serialises writers and assigns seq under the write lock, so seq order is commit order
 * (store_sqlite.c): the stable horizon is simply the largest seq visible. Both asynchronous
 * operations run at once on the loop's thread (a read of a few rows through the seq primary
 * key) and report through the loop, like the dispatcher's. */
#include "store/sqlite_int.h"
#include "store/where_int.h"

#include <stdlib.h>
#include <string.h>

#define EVENT_COLS "l.seq, l.id, l.at, l.source, l.op, l.old, l.new, l.session"

int hr_sq_stream_horizon(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t horizon), void *ud)
{
    if (!st->loop) return HR_EINVAL;
    sqlite3_stmt *s = hr_sq_stmt(st, "SELECT coalesce(max(seq), 0) FROM herald_log", NULL);
    int64_t h = -1;
    int rc = HR_EDB;
    if (s) {
        if (sqlite3_step(s) == SQLITE_ROW) {
            h = sqlite3_column_int64(s, 0);
            rc = 0;
        }
        sqlite3_reset(s);
    }
    hr_sq_report_version(st, cb, ud, rc, h);
    return 0;
}

/* The answer of a read travels through the report queue as a page whose backend data is the
 * array; a closing store frees the page (and the array) and reports HR_ECANCELED. */
typedef struct read_ctx {
    void (*cb)(void *ud, int rc, json_t *events, const char *errmsg);
    void *ud;
} read_ctx_t;

static void free_json(void *p)
{
    json_decref(p);
}

static void on_reported(void *ud, int rc, hr_page_t *page, const char *msg)
{
    read_ctx_t *c = ud;
    c->cb(c->ud, rc, rc || !page ? NULL : page->backend_data, rc ? msg : NULL);
    hr_page_free(page);
    free(c);
}

int hr_sq_stream_read(hr_store_t *st, int64_t after, int64_t upto, size_t limit,
                      void (*cb)(void *ud, int rc, json_t *events, const char *errmsg), void *ud)
{
    if (!st->loop) return HR_EINVAL;
    hr_err_t err = {0};
    int rc = 0;
    json_t *arr = json_array();
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 "SELECT " EVENT_COLS " FROM herald_log l WHERE l.seq > ?1"
                                 " AND l.seq <= ?2 ORDER BY l.seq LIMIT ?3",
                                 &err);
    if (!s) {
        rc = HR_EDB;
    } else {
        sqlite3_bind_int64(s, 1, after);
        sqlite3_bind_int64(s, 2, upto);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW)
            json_array_append_new(arr, hr_sq_event_json(s, 0));
        if (r != SQLITE_DONE) rc = hr_sq_fail(st, &err, "reading the log");
        sqlite3_reset(s);
    }
    read_ctx_t *c = hr_xcalloc(1, sizeof *c);
    c->cb = cb;
    c->ud = ud;
    hr_page_t *page = NULL;
    if (rc) {
        json_decref(arr);
    } else {
        page = hr_xcalloc(1, sizeof *page);
        page->backend_data = arr;
        page->backend_free = free_json;
    }
    hr_sq_report_page(st, on_reported, c, rc, page, err.msg);
    return 0;
}

int hr_sq_query_events(hr_store_t *st, const json_t *where, const json_t *order_by, int limit,
                       int offset, json_t **out, hr_err_t *err)
{
    hr_err_t local = {0};
    if (!err) err = &local;
    int rc = hr_sq_require_schema(st, err);
    if (rc) return rc;
    hr_wsql_t w;
    hr_wsql_init(&w, 0);
    hr_buf_puts(&w.sql, "SELECT " EVENT_COLS " FROM herald_log l WHERE ");
    sqlite3_stmt *s = NULL;
    if ((rc = hr_wsql_where(&w, where, err)) || (rc = hr_wsql_order(&w, order_by, err))) goto out;
    hr_buf_puts(&w.sql, " LIMIT ");
    hr_wsql_int(&w, limit);
    hr_buf_puts(&w.sql, " OFFSET ");
    hr_wsql_int(&w, offset > 0 ? offset : 0);
    if (sqlite3_prepare_v2(st->db, w.sql.data, -1, &s, NULL) != SQLITE_OK) {
        rc = hr_sq_fail(st, err, "listing events");
        goto out;
    }
    for (size_t i = 0; i < w.n; i++) {
        if (w.p[i].is_int)
            sqlite3_bind_int64(s, (int)i + 1, w.p[i].i);
        else
            sqlite3_bind_text(s, (int)i + 1, w.p[i].s, -1, SQLITE_TRANSIENT);
    }
    json_t *arr = json_array();
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(arr, hr_sq_event_json(s, 0));
    if (r != SQLITE_DONE) {
        rc = hr_sq_fail(st, err, "listing events");
        json_decref(arr);
        goto out;
    }
    *out = arr;
out:
    sqlite3_finalize(s);
    hr_wsql_free(&w);
    return rc;
}
