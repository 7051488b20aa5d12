/* store.h: herald's storage backends behind one operations table.
 *
 * A backend keeps the log, the cursors, the delayed queue, the attempts and the stored trigger
 * definitions. Nothing outside src/store/ sees libpq or sqlite3; everything else goes through
 * hr_store_ops_t. Two kinds of operation:
 *   - administrative ones (apply, load definitions, status) are synchronous: the CLI uses them,
 *     and `serve` only at start;
 *   - the dispatcher's ones (read a page, read due retries, settle) are asynchronous on the
 *     libuv loop: each calls its callback exactly once, unless it returned an error.
 *
 * Cursors are opaque strings owned by the backend (PostgreSQL: two snapshots and a key position;
 * see store_pg.c). The dispatcher only passes them back. */
#ifndef HR_STORE_H
#define HR_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "dispatch/event.h"

typedef struct hr_store hr_store_t;

/* A page of events read for one trigger. Owned by the caller after the callback; free it with
 * hr_page_free. events[i] strings point into backend memory kept alive by the page. */
typedef struct hr_page {
    hr_event_t *events;
    size_t nevents;
    int *attempts;       /* retries read from the delayed queue: attempts made so far; else NULL */
    char *cursor_after;  /* cursor to pass to the next read and to settle (log pages only) */
    int exhausted;       /* 1 when the read reached the end of what is visible now */
    int64_t next_due_ms; /* retry pages: ms until the next not-yet-due retry, -1 when none */
    void *backend_data;  /* freed with the page */
    void (*backend_free)(void *backend_data);
} hr_page_t;

void hr_page_free(hr_page_t *page);

/* The outcome of one delivery attempt, to be recorded by settle. */
typedef struct hr_attempt_rec {
    int64_t seq;
    const char *event_id;
    int attempt; /* 1-based number of this attempt */
    long status; /* 0 when no response */
    double latency_ms;
    const char *error;    /* NULL on a 2xx */
    const char *response; /* response body excerpt, may be NULL */
    /* What happens to the event next: */
    int settled;       /* 1: done (2xx); 0: retry later or dead */
    int dead;          /* 1: retries exhausted */
    uint64_t delay_ms; /* when not settled and not dead: time until the next attempt */
} hr_attempt_rec_t;

typedef void (*hr_store_page_cb)(void *ud, int rc, hr_page_t *page, const char *errmsg);
typedef void (*hr_store_done_cb)(void *ud, int rc, const char *errmsg);

/* One line of what apply changed, e.g. "trigger order_events: created". */
typedef void (*hr_store_report_fn)(void *ud, const char *line);

/* A range of the log for replay: by seq (inclusive bounds) or by time (RFC 3339, inclusive from,
 * exclusive to). Unset bounds are open: 0 / NULL. */
typedef struct hr_replay_range {
    int64_t from_seq, to_seq;
    const char *from_time, *to_time;
} hr_replay_range_t;

/* Which events to list (hr_store_ops_t.events). */
typedef struct hr_event_query {
    const char *trigger; /* NULL: all events of the log; else the events this trigger matches */
    int dead_only;       /* only events dead for `trigger` (or for any trigger when NULL) */
    int pending_only;    /* only events not yet delivered by `trigger` (requires trigger) */
    int limit;           /* default 100 */
    int offset;
} hr_event_query_t;

/* JSON shapes returned by the reporting operations, the same for every backend:
 *
 * event:   {"id": uuid, "seq": int, "created_at": RFC3339, "source": "public.orders" or the
 *           emitted type, "op": "INSERT"|"UPDATE"|"DELETE"|"MANUAL"|"EMIT"|"CRON",
 *           "data": {"old": json|null, "new": json|null}, "session_variables": json|null}
 *          and, when listed for one trigger (events with trigger set, or event()),
 *          "deliveries": [delivery, …]
 * delivery: {"trigger": name, "state": "pending"|"delivered"|"retrying"|"dead",
 *            "attempts": int, "next_attempt_at": RFC3339|null, "last_error": str|null,
 *            "delivered_at": RFC3339|null}
 * attempt: {"id": int, "trigger": name, "event_id": uuid, "seq": int, "attempt": int,
 *           "at": RFC3339, "status": int|null, "latency_ms": number, "error": str|null,
 *           "response": str|null}
 * status:  [{"trigger": name, "backlog": int (matching events after the cursor),
 *            "delayed": int, "dead": int, "last_delivery_at": RFC3339|null,
 *            "lag_seconds": number|null (age of the oldest undelivered event)}, …]
 * Times are UTC with microseconds, e.g. "2026-11-23T12:00:00.123456Z". */

typedef struct hr_store_ops {
    const char *name; /* "postgres" */

    /* --- synchronous, for the CLI and start-up --- */
    /* Opens a backend for url. loop may be NULL for CLI use (async operations then unavailable). */
    int (*open)(const char *url, uv_loop_t *loop, hr_store_t **out, hr_err_t *err);
    /* Makes the database match cfg in one transaction: schema migration, capture, definitions,
     * cursors. Reports each change; nothing changed reports nothing. HR_ECONFIG when the config
     * names a table or column that does not exist (then nothing is installed). */
    int (*apply)(hr_store_t *st, const hr_config_t *cfg, hr_store_report_fn report, void *ud,
                 hr_err_t *err);
    /* Loads the stored trigger definitions. *out is an array the caller frees with
     * hr_trigger_def_clear on each and free. HR_ESCHEMA when herald's schema is missing or newer.
     */
    int (*load_triggers)(hr_store_t *st, hr_trigger_def_t **out, size_t *n, hr_err_t *err);
    /* A number that changes whenever the stored definitions change (async, on the loop). */
    int (*defs_version)(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t version), void *ud);

    /* Optional (NULL when the backend has none): checks, without blocking the loop, that the
     * database answers and herald's schema is at this binary's version. cb(ud, 0, NULL) when it
     * is; else HR_EDB (unreachable, a failed query) or HR_ESCHEMA with the reason in errmsg. */
    int (*ping)(hr_store_t *st, hr_store_done_cb cb, void *ud);

    /* --- asynchronous, for the dispatcher --- */
    /* Reads up to limit events of trigger t after cursor (NULL: the stored cursor). */
    int (*read_page)(hr_store_t *st, const hr_trigger_def_t *t, const char *cursor, size_t limit,
                     hr_store_page_cb cb, void *ud);
    /* Reads up to limit retries of t that are due now. */
    int (*read_due)(hr_store_t *st, const hr_trigger_def_t *t, size_t limit, hr_store_page_cb cb,
                    void *ud);
    /* Records attempts and their consequences, and moves the cursor to cursor_after (NULL: the
     * cursor stays), all in one transaction. from_retry: the attempts came from the delayed queue.
     * With n == 0 it only persists the cursor. */
    int (*settle)(hr_store_t *st, const char *trigger, const char *cursor_after,
                  const hr_attempt_rec_t *recs, size_t n, int from_retry, hr_store_done_cb cb,
                  void *ud);

    /* --- operator and metadata operations (synchronous; also used by the API) --- */
    /* Creates (or with replace, updates) one trigger: validates its table and columns, installs
     * capture, stores the definition, creates its cursor, bumps the definitions version — in one
     * transaction, installing herald's schema first if needed. HR_EEXIST when it exists and
     * replace is 0; HR_ECONFIG for an unknown table or column (nothing changed). */
    int (*put_trigger)(hr_store_t *st, const hr_trigger_def_t *def, int replace, hr_err_t *err);
    /* Removes a trigger: definition, cursor, pending retries; capture no trigger needs any more.
     * Past events and attempts stay. HR_ENOTFOUND when it does not exist. */
    int (*delete_trigger)(hr_store_t *st, const char *name, hr_err_t *err);
    /* Appends a custom event (op EMIT, source = type) as herald.emit does. id_out gets the uuid. */
    int (*emit)(hr_store_t *st, const char *type, const char *payload_json, char id_out[40],
                hr_err_t *err);
    /* A manual event for one trigger (which must have HR_OP_MANUAL): appended to the log (op
     * MANUAL, source = the trigger's table, new = payload) and queued for that trigger only (a
     * delayed row due now, attempts 0). HR_ENOTFOUND: no such trigger; HR_EINVAL: manual not
     * enabled. */
    int (*invoke)(hr_store_t *st, const char *trigger, const char *payload_json, char id_out[40],
                  hr_err_t *err);
    /* Queues an event again (due now, attempts 0, not dead) for trigger, or when trigger is NULL
     * for every trigger that has attempts or a delayed row for it. *queued = triggers queued.
     * HR_ENOTFOUND when the event does not exist or no trigger applies. */
    int (*redeliver)(hr_store_t *st, const char *event_id, const char *trigger, int *queued,
                     hr_err_t *err);
    /* Queues every event of the range that the trigger matches (table, operations, update
     * columns; or event types) for delivery again, without touching other triggers.
     * *queued = number of events queued. HR_ENOTFOUND: no such trigger. */
    int (*replay)(hr_store_t *st, const char *trigger, const hr_replay_range_t *range,
                  int64_t *queued, hr_err_t *err);
    /* Reporting, in the JSON shapes above; *out is a new reference. */
    int (*status)(hr_store_t *st, json_t **out, hr_err_t *err);
    int (*events)(hr_store_t *st, const hr_event_query_t *q, json_t **out, hr_err_t *err);
    /* One event with "deliveries" for every trigger that has attempts or a delayed row for it,
     * and "attempts": [attempt, …] (newest first, limit/offset). HR_ENOTFOUND. */
    int (*event)(hr_store_t *st, const char *event_id, int attempts_limit, int attempts_offset,
                 json_t **out, hr_err_t *err);
    /* Attempts of one trigger (or all when NULL), newest first. */
    int (*attempts)(hr_store_t *st, const char *trigger, int limit, int offset, json_t **out,
                    hr_err_t *err);

    /* --- schedules (synchronous: one short statement, called by the scheduler on the loop) --- */
    /* Writes fire fire_at_s (Unix seconds) of schedule name to the log (op CRON, source = name,
     * new = new_json) exactly once: *written = 1 when this call wrote it, 0 when it was written
     * before (by this or another process). */
    int (*fire)(hr_store_t *st, const char *name, int64_t fire_at_s, const char *new_json,
                int *written, hr_err_t *err);
    /* Where catching up starts: the later of the schedule's latest recorded fire and the
     * creation of its definition, in Unix seconds. HR_ENOTFOUND when there is neither. */
    int (*last_fire)(hr_store_t *st, const char *name, int64_t *at_s, hr_err_t *err);

    /* Appends a one-off scheduled event (op ONE_OFF, source HR_ONE_OFF_TRIGGER, new = new_json:
     * {webhook, headers, retry, payload, comment, scheduled_time, created_at}) and queues it for
     * HR_ONE_OFF_TRIGGER (a delayed row due at due_us, Unix microseconds, attempts 0), in one
     * transaction. id_out gets the event's uuid. */
    int (*schedule_one_off)(hr_store_t *st, const char *new_json, int64_t due_us, char id_out[40],
                            hr_err_t *err);
    /* Cancels a scheduled event not yet delivered: a one-off event (cron 0) waiting in the
     * delayed queue of HR_ONE_OFF_TRIGGER, or a fire of a schedule (cron 1) waiting there for its
     * next retry. Its delayed row becomes dead with the error "cancelled by
     * delete_scheduled_event"; the log keeps the event. HR_ENOTFOUND when there is no such
     * event or it is not waiting (delivered, dead, or a fire not retried). */
    int (*delete_scheduled)(hr_store_t *st, int cron, const char *event_id, hr_err_t *err);
    /* The one-off events still to deliver (a live delayed row), by due time:
     * [{"id", "scheduled_time", "webhook", "comment", "attempts", "next_attempt_at"}, …]. */
    int (*one_offs)(hr_store_t *st, json_t **out, hr_err_t *err);

    /* --- GraphQL (src/api/graphql_*.c; docs/graphql.md) --- */
    /* Asynchronous, on the loop: the log's stable horizon, the highest seq H such that every
     * event with seq <= H is visible now or will never exist (SQLite: the largest seq, since
     * seq order is commit order; PostgreSQL: see pg_stream.c). cb(ud, 0, H) or cb(ud, rc, -1).
     * The horizon never goes back. */
    int (*stream_horizon)(hr_store_t *st, void (*cb)(void *ud, int rc, int64_t horizon), void *ud);
    /* Asynchronous, on the loop: the events with after < seq <= upto, by seq, at most limit, as
     * an array of event objects (the shape above, without deliveries), borrowed for the call.
     * Call it only with upto <= a horizon: then the answer is final. */
    int (*stream_read)(hr_store_t *st, int64_t after, int64_t upto, size_t limit,
                       void (*cb)(void *ud, int rc, json_t *events, const char *errmsg), void *ud);
    /* Synchronous: the events matching where, a Hasura-style boolean expression (JSON object:
     * {"seq": {"_gt": 5}, "source": {"_in": [...]}, "_and": [...], ...}; NULL: all), ordered by
     * order_by (JSON array of {"seq": "desc"}, ...; NULL: seq ascending), limit/offset. Event
     * objects without deliveries. HR_EINVAL with the reason for what cannot be translated. */
    int (*query_events)(hr_store_t *st, const json_t *where, const json_t *order_by, int limit,
                        int offset, json_t **out, hr_err_t *err);

    /* Optional (NULL when the backend has none): cb(ud) runs on the loop when the database may
     * hold new events (SQLite: another process wrote the file), so that the reader need not
     * wait for its next poll. A hint only: reads still poll. cb NULL stops it. */
    void (*set_wakeup)(hr_store_t *st, void (*cb)(void *ud), void *ud);

    /* Optional (NULL when the backend has none: SQLite wakes the reader through set_wakeup):
     * asynchronous, on the loop, one cheap statement for every trigger together. cb(ud, 0,
     * token) with a token, borrowed for the call, that differs from the previous call's whenever
     * a transaction that could have written to the log has ended in between (it may also change
     * for other reasons: a false alarm costs one read per trigger); cb(ud, rc, NULL) on failure.
     * PostgreSQL: pg_current_snapshot() as text (see pg_probe.c). */
    int (*change_token)(hr_store_t *st, void (*cb)(void *ud, int rc, const char *token), void *ud);

    /* Optional (NULL when one process has the database to itself: SQLite refuses a second
     * serve): asynchronous, on the loop, one statement. Renews the leases owner holds among
     * names[0..n) and takes those that are free, for ttl_ms; cb(ud, 0, held) with held[i] = 1
     * when owner holds names[i] (borrowed for the call), cb(ud, rc, NULL) on failure. A process
     * delivers only the triggers it holds (dispatcher.c, "Several processes"). PostgreSQL:
     * herald.leases (see pg_lease.c). */
    int (*leases)(hr_store_t *st, const char *owner, const char *const *names, size_t n,
                  uint64_t ttl_ms, void (*cb)(void *ud, int rc, const unsigned char *held),
                  void *ud);

    /* Number of times the async connection was re-established. */
    uint64_t (*reconnects)(hr_store_t *st);
    /* Cancels pending async work (callbacks run with HR_ECANCELED), closes loop handles, frees st;
     * done(ud) when everything is released (may be NULL for CLI stores). */
    void (*close)(hr_store_t *st, void (*done)(void *ud), void *ud);
} hr_store_ops_t;

/* The `where` of query_events evaluated on one event object (store.h's shape), for events
 * already read (store_where.c: one definition for both): 1 when it matches, 0 when not,
 * HR_EINVAL with the reason in err for an expression that cannot be evaluated (delivery
 * filters included: they need the database). A pure function. */
int hr_store_where_match(const json_t *where, const json_t *event, hr_err_t *err);

extern const hr_store_ops_t hr_store_pg_ops;
extern const hr_store_ops_t hr_store_sqlite_ops;

/* The backend for url (postgres:// or postgresql:// or a libpq key=value string; sqlite:PATH),
 * or NULL. */
const hr_store_ops_t *hr_store_ops_for_url(const char *url);

#endif
