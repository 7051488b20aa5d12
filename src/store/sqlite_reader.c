/* sqlite_reader.c: the SQLite backend's side of the dispatcher — reading the log (read_page), the
 * due retries (read_due), settling pages (settle), the definitions version and ping — and its
 * wake-ups. The connection, the schema and the reporting queue are in store_sqlite.c, whose first
 * lines explain the cursor (the last settled seq: seq order is commit order on SQLite).
 *
 * Every operation runs at once on the loop's thread and reports through the loop
 * (hr_sq_report_*): a callback never runs before the call returns, and runs exactly once.
 *
 * Idle costs nothing measurable. The dispatcher polls each trigger every millisecond while events
 * flow, backing off to 100 ms when idle. A poll first reads PRAGMA data_version, which changes
 * when another connection commits; with local_gen (this connection's commits), it tells whether
 * anything can have changed since a read reached the end of the log at the same cursor: if not,
 * the answer is the same empty page and no query runs (hr_sq_memo_t, per trigger). The delayed
 * queue (nothing due before a known time) and the definitions version are remembered the same
 * way. And the reader need not wait for its poll: set_wakeup watches the -wal file, which every
 * commit writes, and wakes the dispatcher within a millisecond when another connection
 * committed. */
#include "store/sqlite_int.h"
#include "core/text.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

/* ------------------------------------------------------------------------------------------ */
/* Idle shortcuts                                                                             */

/* PRAGMA data_version: changes whenever another connection commits to the file. */
static int data_version(hr_store_t *st, int64_t *out)
{
    sqlite3_stmt *s = hr_sq_stmt(st, "PRAGMA data_version", NULL);
    if (!s) return HR_EDB;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return r == SQLITE_ROW ? 0 : HR_EDB;
}

static hr_sq_memo_t *memo_for(hr_store_t *st, const char *trigger)
{
    for (hr_sq_memo_t *m = st->memos; m; m = m->next)
        if (strcmp(m->trigger, trigger) == 0) return m;
    hr_sq_memo_t *m = hr_xcalloc(1, sizeof *m);
    m->trigger = hr_xstrdup(trigger);
    m->next = st->memos;
    st->memos = m;
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* The dispatcher's operations                                                                */

/* The strings of a page's events, freed with the page. */
typedef struct page_strings {
    char **v;
    size_t n;
} page_strings_t;

static void free_strings(void *p)
{
    page_strings_t *ps = p;
    for (size_t i = 0; i < ps->n; i++)
        free(ps->v[i]);
    free(ps->v);
    free(ps);
}

static const char *keep(page_strings_t *ps, sqlite3_stmt *s, int col)
{
    char *v = hr_sq_col_dup(s, col);
    if (!v) return NULL;
    ps->v = hr_xrealloc(ps->v, (ps->n + 1) * sizeof *ps->v);
    ps->v[ps->n++] = v;
    return v;
}

/* Event columns, in this order, from column c0 on. */
#define EVENT_COLS "l.seq, l.id, l.at, l.source, l.op, l.old, l.new, l.session"

static void row_event(sqlite3_stmt *s, int c0, const hr_trigger_def_t *t, page_strings_t *ps,
                      hr_event_t *ev)
{
    ev->seq = sqlite3_column_int64(s, c0);
    ev->id = keep(ps, s, c0 + 1);
    ev->created_at = keep(ps, s, c0 + 2);
    ev->op = keep(ps, s, c0 + 4);
    if (ev->op && strcmp(ev->op, "EMIT") == 0) {
        ev->type = keep(ps, s, c0 + 3);
        ev->schema = ev->table = NULL;
    } else {
        ev->type = NULL;
        ev->schema = t->schema;
        ev->table = t->table;
    }
    ev->old_json = keep(ps, s, c0 + 5);
    ev->new_json = keep(ps, s, c0 + 6);
    ev->session_json = keep(ps, s, c0 + 7);
}

static hr_page_t *page_new(size_t limit, page_strings_t **ps)
{
    hr_page_t *page = hr_xcalloc(1, sizeof *page);
    page->events = hr_xcalloc(limit + 1, sizeof *page->events);
    page->next_due_ms = -1;
    *ps = hr_xcalloc(1, sizeof **ps);
    page->backend_data = *ps;
    page->backend_free = free_strings;
    return page;
}

static int stored_cursor(hr_store_t *st, const char *trigger, int64_t *seq, hr_err_t *err)
{
    sqlite3_stmt *s = hr_sq_stmt(st, "SELECT last_seq FROM herald_cursors WHERE trigger = ?1", err);
    if (!s) return HR_EDB;
    sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) *seq = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (r == SQLITE_DONE)
        return hr_err_set(err, HR_ENOTFOUND, "the trigger has no cursor (was it removed?)");
    return r == SQLITE_ROW ? 0 : hr_sq_fail(st, err, "reading a cursor");
}

static const char *const read_table_sql =
    "SELECT " EVENT_COLS " FROM herald_log l WHERE l.seq > ?1 AND l.source = ?3 COLLATE NOCASE"
    " AND instr(?4, ',' || l.op || ',') > 0 ORDER BY l.seq LIMIT ?2";
static const char *const read_cron_sql =
    "SELECT " EVENT_COLS " FROM herald_log l WHERE l.seq > ?1 AND l.op = 'CRON' AND l.source = ?3"
    " AND ?4 = 'CRON' ORDER BY l.seq LIMIT ?2";
static const char *const read_events_sql =
    "SELECT " EVENT_COLS " FROM herald_log l WHERE l.seq > ?1 AND l.op = 'EMIT'"
    " AND (l.source IN (SELECT value FROM json_each(?3)) OR EXISTS (SELECT 1 FROM json_each(?4) p"
    " WHERE substr(l.source, 1, length(p.value)) = p.value)) ORDER BY l.seq LIMIT ?2";

/* Reads the page in one read transaction, so that the end of the log is the page's snapshot. */
static int read_log(hr_store_t *st, const hr_trigger_def_t *t, int64_t after, size_t limit,
                    hr_page_t *page, page_strings_t *ps, int64_t *cursor_out, hr_err_t *err)
{
    int rc = hr_sq_exec(st, "BEGIN", err, "starting a read");
    if (rc) return rc;
    sqlite3_stmt *s = hr_sq_stmt(st,
                                 t->cron    ? read_cron_sql
                                 : t->table ? read_table_sql
                                            : read_events_sql,
                                 err);
    if (!s) {
        rc = HR_EDB;
        goto out;
    }
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
    hr_sq_filter_bind(s, t, 3);
    int r;
    int64_t last = after;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        row_event(s, 0, t, ps, &page->events[page->nevents++]);
        last = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    if (r != SQLITE_DONE) {
        rc = hr_sq_fail(st, err, "reading the log");
        goto out;
    }
    page->exhausted = page->nevents < limit;
    if (page->exhausted) {
        /* Every row up to the end of this snapshot was considered. */
        s = hr_sq_stmt(st, "SELECT coalesce(max(seq), 0) FROM herald_log", err);
        if (!s) {
            rc = HR_EDB;
            goto out;
        }
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) > last)
            last = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    *cursor_out = last;
out:
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int hr_sq_read_page(hr_store_t *st, const hr_trigger_def_t *t, const char *cursor, size_t limit,
                    hr_store_page_cb cb, void *ud)
{
    if (!st->loop) return HR_EINVAL;
    hr_err_t err = {0};
    int64_t after = 0, dv = -1;
    int rc = 0;
    hr_sq_memo_t *m = memo_for(st, t->name);
    if (cursor && data_version(st, &dv) == 0 && m->page_cursor && m->page_dv == dv &&
        m->page_gen == st->local_gen && strcmp(m->page_cursor, cursor) == 0) {
        /* Nobody committed since this cursor was read to the end: the same empty page. */
        page_strings_t *ps;
        hr_page_t *page = page_new(0, &ps);
        page->exhausted = 1;
        page->cursor_after = hr_xstrdup(cursor);
        hr_sq_report_page(st, cb, ud, 0, page, NULL);
        return 0;
    }
    uint64_t gen = st->local_gen;
    if (cursor) {
        char *end = NULL;
        after = strtoll(cursor, &end, 10);
        if (!end || *end || after < 0) return HR_EINVAL;
    } else if ((rc = stored_cursor(st, t->name, &after, &err))) {
        hr_sq_report_page(st, cb, ud, rc, NULL, err.msg);
        return 0;
    }
    page_strings_t *ps;
    hr_page_t *page = page_new(limit, &ps);
    int64_t next = after;
    if ((rc = read_log(st, t, after, limit, page, ps, &next, &err))) {
        hr_page_free(page);
        hr_sq_report_page(st, cb, ud, rc, NULL, err.msg);
        return 0;
    }
    page->cursor_after = hr_xasprintf("%" PRId64, next);
    free(m->page_cursor);
    m->page_cursor = NULL;
    if (page->exhausted && dv >= 0) {
        m->page_cursor = hr_xstrdup(page->cursor_after);
        m->page_dv = dv;
        m->page_gen = gen;
    }
    hr_sq_report_page(st, cb, ud, 0, page, NULL);
    return 0;
}

int hr_sq_read_due(hr_store_t *st, const hr_trigger_def_t *t, size_t limit, hr_store_page_cb cb,
                   void *ud)
{
    if (!st->loop) return HR_EINVAL;
    hr_err_t err = {0};
    int64_t dv = -1, now = hr_wall_us();
    hr_sq_memo_t *m = memo_for(st, t->name);
    page_strings_t *ps;
    if (data_version(st, &dv) == 0 && m->due_valid && m->due_dv == dv &&
        m->due_gen == st->local_gen && (m->due_us < 0 || now < m->due_us)) {
        hr_page_t *page = page_new(0, &ps);
        page->exhausted = 1;
        page->next_due_ms = m->due_us < 0 ? -1 : (m->due_us - now + 999) / 1000;
        hr_sq_report_page(st, cb, ud, 0, page, NULL);
        return 0;
    }
    uint64_t gen = st->local_gen;
    m->due_valid = 0;
    char nows[32];
    hr_sq_format_time(now, nows);
    hr_page_t *page = page_new(limit, &ps);
    page->attempts = hr_xcalloc(limit + 1, sizeof *page->attempts);
    int rc = hr_sq_exec(st, "BEGIN", &err, "starting a read");
    sqlite3_stmt *s = NULL;
    if (!rc)
        s = hr_sq_stmt(st,
                       "SELECT d.attempts, " EVENT_COLS " FROM herald_delayed d"
                       " JOIN herald_log l ON l.seq = d.seq WHERE d.trigger = ?1 AND d.dead = 0"
                       " AND d.due_at <= ?2 ORDER BY d.due_at LIMIT ?3",
                       &err);
    if (!rc && !s) rc = HR_EDB;
    int r = SQLITE_DONE;
    if (!rc) {
        sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, nows, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
            page->attempts[page->nevents] = sqlite3_column_int(s, 0);
            row_event(s, 1, t, ps, &page->events[page->nevents++]);
        }
        sqlite3_reset(s);
        if (r != SQLITE_DONE) rc = hr_sq_fail(st, &err, "reading due retries");
    }
    page->exhausted = page->nevents < limit;
    int64_t due_us = -1;
    if (!rc && page->exhausted) {
        s = hr_sq_stmt(st,
                       "SELECT min(due_at) FROM herald_delayed WHERE trigger = ?1 AND dead = 0"
                       " AND due_at > ?2",
                       &err);
        if (!s)
            rc = HR_EDB;
        else {
            sqlite3_bind_text(s, 1, t->name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 2, nows, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL &&
                hr_parse_rfc3339_us((const char *)sqlite3_column_text(s, 0), &due_us) != 0)
                due_us = now;
            sqlite3_reset(s);
        }
    }
    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc) {
        hr_page_free(page);
        hr_sq_report_page(st, cb, ud, rc, NULL, err.msg);
        return 0;
    }
    if (!page->exhausted)
        page->next_due_ms = 0;
    else
        page->next_due_ms = due_us < 0 ? -1 : (due_us > now ? (due_us - now + 999) / 1000 : 0);
    if (page->nevents == 0 && dv >= 0) {
        m->due_valid = 1;
        m->due_dv = dv;
        m->due_gen = gen;
        m->due_us = due_us;
    }
    hr_sq_report_page(st, cb, ud, 0, page, NULL);
    return 0;
}

static int settle_txn(hr_store_t *st, const char *trigger, const char *cursor_after,
                      const hr_attempt_rec_t *recs, size_t n, int from_retry, hr_err_t *err)
{
    int rc = hr_sq_begin(st, err);
    if (rc) return rc;
    sqlite3_stmt *s;
    if (cursor_after) {
        char *end = NULL;
        long long seq = strtoll(cursor_after, &end, 10);
        if (!end || *end) {
            rc = hr_err_set(err, HR_EINVAL, "invalid cursor");
            goto out;
        }
        s = hr_sq_stmt(st,
                       "UPDATE herald_cursors SET last_seq = ?2, updated_at = " HR_SQ_NOW
                       " WHERE trigger = ?1",
                       err);
        if (!s) goto db;
        sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, seq);
        if ((rc = hr_sq_step_done(st, s, err, "moving the cursor"))) goto out;
    }
    int64_t now = hr_wall_us();
    for (size_t i = 0; i < n; i++) {
        const hr_attempt_rec_t *a = &recs[i];
        s = hr_sq_stmt(st,
                       "INSERT INTO herald_attempts (trigger, seq, event_id, attempt, status,"
                       " latency_ms, error, response) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                       err);
        if (!s) goto db;
        char *errtext = a->error ? hr_utf8_clean(a->error) : NULL;
        char *resp = a->response ? hr_utf8_clean(a->response) : NULL;
        sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, a->seq);
        sqlite3_bind_text(s, 3, a->event_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 4, a->attempt);
        if (a->status) sqlite3_bind_int64(s, 5, a->status);
        sqlite3_bind_double(s, 6, a->latency_ms);
        if (errtext) sqlite3_bind_text(s, 7, errtext, -1, free);
        if (resp) sqlite3_bind_text(s, 8, resp, -1, free);
        if ((rc = hr_sq_step_done(st, s, err, "recording an attempt"))) goto out;
        if (a->settled) {
            if (!from_retry) continue;
            s = hr_sq_stmt(st, "DELETE FROM herald_delayed WHERE trigger = ?1 AND seq = ?2", err);
            if (!s) goto db;
            sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 2, a->seq);
            if ((rc = hr_sq_step_done(st, s, err, "removing a delivered retry"))) goto out;
            continue;
        }
        char due[32];
        hr_sq_format_time(now + (int64_t)a->delay_ms * 1000, due);
        s = hr_sq_stmt(st,
                       "INSERT INTO herald_delayed (trigger, seq, event_id, attempts, due_at, dead,"
                       " last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                       " ON CONFLICT (trigger, seq) DO UPDATE SET attempts = excluded.attempts,"
                       " due_at = excluded.due_at, dead = excluded.dead,"
                       " last_error = excluded.last_error, updated_at = " HR_SQ_NOW,
                       err);
        if (!s) goto db;
        sqlite3_bind_text(s, 1, trigger, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, a->seq);
        sqlite3_bind_text(s, 3, a->event_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 4, a->attempt);
        sqlite3_bind_text(s, 5, due, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 6, a->dead ? 1 : 0);
        errtext = a->error ? hr_utf8_clean(a->error) : NULL;
        if (errtext) sqlite3_bind_text(s, 7, errtext, -1, free);
        if ((rc = hr_sq_step_done(st, s, err, "queueing a retry"))) goto out;
    }
    return hr_sq_commit(st, err);
db:
    rc = HR_EDB;
out:
    hr_sq_rollback(st);
    return rc;
}

int hr_sq_settle(hr_store_t *st, const char *trigger, const char *cursor_after,
                 const hr_attempt_rec_t *recs, size_t n, int from_retry, hr_store_done_cb cb,
                 void *ud)
{
    if (!st->loop) return HR_EINVAL;
    hr_err_t err = {0};
    int rc = settle_txn(st, trigger, cursor_after, recs, n, from_retry, &err);
    hr_sq_report_done(st, cb, ud, rc, err.msg);
    return 0;
}

/* SQLite answers at once; the answer is reported through the loop like the other async ops. */
int hr_sq_ping(hr_store_t *st, hr_store_done_cb cb, void *ud)
{
    if (!st->loop) return HR_EINVAL;
    hr_err_t err = {0};
    int rc = hr_sq_require_schema(st, &err);
    hr_sq_report_done(st, cb, ud, rc, err.msg);
    return 0;
}

int hr_sq_defs_version(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t version), void *ud)
{
    if (!st->loop) return HR_EINVAL;
    int64_t dv = -1;
    int rc = 0;
    if (data_version(st, &dv) != 0 || st->defs_version < 0 || dv != st->defs_dv ||
        st->local_gen != st->defs_gen) {
        uint64_t gen = st->local_gen;
        sqlite3_stmt *s =
            hr_sq_stmt(st, "SELECT value FROM herald_meta WHERE key = 'defs_version'", NULL);
        int r = s ? sqlite3_step(s) : SQLITE_ERROR;
        if (r == SQLITE_ROW) {
            st->defs_version = sqlite3_column_int64(s, 0);
            st->defs_dv = dv;
            st->defs_gen = gen;
        } else {
            rc = HR_EDB;
            st->defs_version = -1;
        }
        if (s) sqlite3_reset(s);
    }
    hr_sq_report_version(st, cb, ud, rc, rc ? -1 : st->defs_version);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Wake-ups                                                                                   */

/* The coalesced wake-up: at most one per millisecond, and only when another connection
 * committed (herald's own settles write the WAL too). */
static void on_wake_timer(uv_timer_t *t)
{
    hr_store_t *st = t->data;
    int64_t dv = -1;
    st->wake_pending = 0;
    if (!st->wake_cb || (data_version(st, &dv) == 0 && dv == st->wake_dv)) return;
    st->wake_dv = dv;
    st->wake_cb(st->wake_ud);
}

static void on_wal_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)filename;
    (void)events;
    hr_store_t *st = h->data;
    if (status < 0 || !st->wake_cb || st->wake_pending) return;
    st->wake_pending = 1;
    uv_timer_start(&st->wake_timer, on_wake_timer, 1, 0);
}

/* Watches PATH-wal: every commit in WAL mode writes it, so a change wakes the reader at once
 * instead of at its next poll (up to 100 ms when idle). Without the watch (no inotify, no -wal
 * file yet) polling alone still finds everything. */
void hr_sq_set_wakeup(hr_store_t *st, void (*cb)(void *ud), void *ud)
{
    st->wake_cb = cb;
    st->wake_ud = ud;
    if (!cb || !st->loop || st->watching) return;
    char *wal = hr_xasprintf("%s-wal", st->path);
    uv_fs_event_init(st->loop, &st->wal_watch);
    st->wal_watch.data = st;
    int rc = uv_fs_event_start(&st->wal_watch, on_wal_event, wal, 0);
    if (rc == 0) {
        st->watching = 1;
    } else {
        hr_log(HR_LOG_DEBUG, "msg=\"cannot watch the WAL file; polling only\" file=%s error=%s",
               wal, uv_strerror(rc));
        uv_close((uv_handle_t *)&st->wal_watch, NULL);
    }
    free(wal);
}
