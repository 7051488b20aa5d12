/* dispatcher.c: the delivery loop.
 *
 * Each trigger runs two pipelines that share its cap on requests in flight:
 *   - the log pipeline reads a page of new events after the trigger's cursor, delivers every
 *     matching event, then settles the page: attempts, delayed rows and the new cursor commit in
 *     one transaction (store ops settle);
 *   - the retry pipeline reads the delayed events that are due, delivers them, and settles them.
 *
 * The life of one event in a page:
 *
 *     PENDING --launch()--> IN_FLIGHT --on_response()--> DONE --(all done) settle()--> freed
 *        |                                                  (2xx: settled; else delayed or dead)
 *        +--(no match: column filter)--> SKIPPED ------------------------------------^
 *
 *   | transition              | function      |
 *   |-------------------------|---------------|
 *   | page read               | on_log_page   |
 *   | PENDING -> IN_FLIGHT    | launch        |
 *   | IN_FLIGHT -> DONE       | on_response   |
 *   | page settled            | on_settled    |
 *
 * Invariants:
 *   1. A trigger's cursor only moves when a whole page is settled, so an event is never skipped.
 *   2. A page is settled at most once; if settling fails the cursor is reloaded from the store
 *      and the page is read (and delivered) again: at least once, never lost.
 *   3. At most def.concurrency requests of a trigger are in flight.
 *   4. While stopping, no page is read; pages in flight finish within the grace period.
 *   5. Read-ahead: while a full log page delivers, the next page is read (at most one, from that
 *      page's cursor_after, which is where the next read would start once it settles). It is
 *      only delivered after the current page settled, so pages still settle one at a time and
 *      in order, and invariant 1 holds. If the settle fails (the cursor is reloaded), the
 *      trigger stops, is removed or its definition changes, the page read ahead is dropped
 *      unread: it is read again later from the stored cursor. While a read-ahead is in flight
 *      no other log read of the trigger starts.
 *
 * Waking up: one timer (tick) polls idle triggers, every poll_min while events keep coming and
 * backing off to poll_max when idle. A page that was full is followed by the next read at once.
 * A store that can tell when the database changed (SQLite's WAL watch) calls hr_dispatcher_wake.
 * A store with a change token (PostgreSQL: pg_current_snapshot(), which every commit changes;
 * see pg_probe.c) is asked for it by a second timer (probe) every probe_us (10 ms), one
 * statement for all triggers, whenever the tick is due later than that (after the first few
 * polls of a lull): a token different from the previous answer is handled as
 * hr_dispatcher_wake, so the first events after a lull wait ~probe_us instead of up to
 * poll_max. The probe only ever brings a poll forward; the tick's backoff schedule is unchanged
 * and remains the safety net (a failed probe forgets the token and waits for the next answer,
 * polls go on meanwhile). At most one probe is in flight; closing waits for it (db_busy).
 *
 * Scheduled events. The scheduler (src/sched/scheduler.c) runs on this loop and writes each
 * fire of a schedule to the log (op CRON); a schedule is a trigger with cron set, so its fires
 * take the same two pipelines. Two small differences, both in launch():
 *   - tolerance: a CRON event read from the log (not from the delayed queue: a redelivery or a
 *     replay is deliberate) whose scheduled_time is more than def.tolerance_ms in the past is not
 *     sent; it goes PENDING -> DONE at once as a dead attempt "missed by …" (missed_fire);
 *   - the body is Hasura's scheduled-event shape (hr_payload_build_scheduled).
 *
 * One-off scheduled events (create_scheduled_event) belong to a built-in pseudo-trigger,
 * HR_ONE_OFF_TRIGGER ("@one_off"), that every dispatcher runs whether or not user triggers exist
 * (trig_one_off). It has no log pipeline: its events (op ONE_OFF) are queued only through the
 * delayed queue, due at their time, so only its retry pipeline runs, and that pipeline sleeps
 * until the next due row (with the usual recheck within a second): a one-off event fires within
 * milliseconds of its time on an idle herald. Its events carry their own delivery settings in
 * the log row (hr_payload_one_off_def), which is the one special case here:
 *   - launch() takes the webhook, headers and timeout from the event, not from tr->def, and
 *     builds the ONE_OFF body of hr_payload_build_scheduled;
 *   - record() takes the retry policy (num_retries, fixed retry_interval_seconds) from it;
 *   - missed_fire() applies the event's tolerance_seconds to its first attempt (attempts 0),
 *     against the real clock (the delayed queue's due time is the database's).
 *
 * Observer (hr_dispatcher_observe): one callback, for GraphQL's live views, told after a log
 * read that found events (on_log_page) and after a settle committed attempts (on_settled), with
 * the outcomes it committed. It only records and schedules; it never calls back into the
 * dispatcher.
 *
 * Several processes (a store with leases: PostgreSQL). Several herald serve processes may share
 * one database; each trigger (and the one-off pseudo-trigger) is delivered by the one process
 * that holds its lease (pg_lease.c). One statement for all triggers takes the free leases and
 * renews those held: every LEASE_RETRY_MS while a trigger is not held, else every third of
 * LEASE_TTL_MS. A trigger is read (log pages, read-ahead, due retries) only while it is held,
 * the last successful statement was sent less than LEASE_TTL_MS ago (a process that cannot
 * renew stops reading before another can take the lease by expiry) and ran on the current
 * connection (a reconnect ends the session the lease names, which lets another process take it
 * at once: the next statement, sent within LEASE_RETRY_MS, says whether it is still held). Pages
 * already read finish and settle. A lease taken (again) reloads the stored cursor before the next
 * log read, since another process may have moved it. Without leases (SQLite) every trigger is held.
 *
 * Statistics (hr_dispatcher_stats): each trigger counts the events it read and the outcome of
 * every attempt (record), and fills two fixed-bucket histograms, the duration of each HTTP
 * attempt (on_response) and the lag from an event's created_at to its 2xx (record); nothing is
 * allocated for them on the delivery path. */
#include "dispatch/dispatcher.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "dispatch/backoff.h"
#include "dispatch/http.h"
#include "dispatch/payload.h"
#include "dispatch/sign.h"
#include "dispatch/template.h"
#include "sched/scheduler.h"

#define RESPONSE_CAP 1024
/* How often an idle trigger looks at its delayed queue anyway: redeliver, replay and invoke
 * from another process add due rows that this process was not told about. */
#define RETRY_SAFETY_RECHECK_US (1 * 1000000ull)
/* Leases (see "Several processes"): their time to live, and how often a process that lacks
 * one tries to take it. */
#define LEASE_TTL_MS 10000u
#define LEASE_RETRY_MS 1000u

enum { PENDING = 0, IN_FLIGHT, DONE, SKIPPED };
enum { IDLE = 0, READING, DELIVERING, SETTLING };

typedef struct trig trig_t;

/* A page being delivered: from the log (cursor moves) or from the delayed queue. */
typedef struct batch {
    trig_t *tr;
    int from_retry;
    hr_page_t *page;
    unsigned char *state;   /* per event: PENDING, IN_FLIGHT, DONE, SKIPPED */
    hr_attempt_rec_t *recs; /* per event, filled when DONE */
    size_t next;            /* next event index to consider launching */
    size_t open;            /* events not yet DONE or SKIPPED */
} batch_t;

/* One request in flight. */
typedef struct flight {
    batch_t *b;
    size_t i;
    int attempts_before;
} flight_t;

struct trig {
    hr_dispatcher_t *d;
    hr_trigger_def_t def;
    char *cursor;  /* NULL: load the stored cursor on the next read */
    int log_phase; /* IDLE, READING, DELIVERING, SETTLING */
    batch_t *log;
    int ahead_reading; /* a read-ahead (invariant 5) has not called back yet */
    int ahead_stale;   /* ... and its page is to be dropped when it does */
    int ahead_wanted;  /* ... and the log pipeline waits for it (log_phase READING) */
    hr_page_t *ahead;  /* the page read ahead, waiting for the current one to settle */
    int retry_phase;
    batch_t *retry;
    uint64_t retry_due_us; /* monotonic time of the next due check */
    int inflight;
    int removed;                   /* its definition was deleted: free when idle */
    int one_off;                   /* the pseudo-trigger HR_ONE_OFF_TRIGGER: retry pipeline only */
    hr_trigger_def_t *pending_def; /* a changed definition, applied when idle */
    int leased;                    /* this process holds the trigger's lease */
    int lease_known;               /* ... as a lease statement answered (for the log lines) */
    unsigned lease_gen;            /* times the lease was taken */
    unsigned cursor_gen;           /* lease_gen when the cursor was last loaded */
    hr_trigger_stats_t stats;
    trig_t *next;
};

struct hr_dispatcher {
    uv_loop_t *loop;
    const hr_store_ops_t *ops;
    hr_store_t *store;
    hr_http_t *http;
    hr_dispatch_opts_t opts;
    trig_t *trigs;
    uv_timer_t tick;
    uv_timer_t grace;
    uv_timer_t probe; /* the change probe (see "Waking up"); running only with change_token */
    int probing;      /* a change_token call has not called back yet */
    char *token;      /* the last change token; NULL: none known (start, failed probe) */
    uint64_t poll_us;
    int activity; /* a read since the last tick found events */
    int stopping;
    int http_closed;
    int handles_closing;
    int handles_open;
    int64_t defs_version; /* -1 until known */
    int defs_checking;
    uint64_t defs_checked_us;
    uint64_t rng;
    hr_buf_t body;
    hr_scheduler_t *sched; /* fires the schedules (cron triggers) into the log */
    char owner[128];       /* this process's id in herald.leases */
    int leasing;           /* a lease statement has not called back yet */
    int lease_failing;     /* ... and the last one failed */
    char **lease_names;    /* ... and the trigger names it was sent for */
    size_t lease_n;
    uint64_t lease_sent_us;            /* when it was sent */
    uint64_t lease_ok_us;              /* when the last successful one was sent; 0: none yet */
    uint64_t lease_checked_us;         /* when the last one was sent */
    uint64_t lease_epoch;              /* the store's reconnect count when the last one succeeded */
    hr_dispatcher_observe_fn observer; /* hr_dispatcher_observe; NULL: none */
    void *observer_ud;
    void (*done)(void *);
    void *done_ud;
};

static void pump(trig_t *tr);
static void start_reads(hr_dispatcher_t *d);
static int holds(const trig_t *tr);
static void on_log_page(void *ud, int rc, hr_page_t *page, const char *msg);
static void on_ahead_page(void *ud, int rc, hr_page_t *page, const char *msg);
static void drop_ahead(trig_t *tr);
static void maybe_finish(hr_dispatcher_t *d);
static void on_fired(void *ud);

/* Upper bounds of the histograms, in seconds. */
const double hr_stats_duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,    2.5,   5,    10,  30};
const size_t hr_stats_duration_nbounds =
    sizeof hr_stats_duration_bounds / sizeof hr_stats_duration_bounds[0];
const double hr_stats_lag_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                      2.5,   5,    10,    30,   60,  300,  900, 3600};
const size_t hr_stats_lag_nbounds = sizeof hr_stats_lag_bounds / sizeof hr_stats_lag_bounds[0];
_Static_assert(sizeof hr_stats_duration_bounds / sizeof(double) <= HR_HIST_MAX_BOUNDS &&
                   sizeof hr_stats_lag_bounds / sizeof(double) <= HR_HIST_MAX_BOUNDS,
               "too many histogram bounds");

static void observe(hr_histogram_t *h, const double *bounds, size_t n, double v)
{
    size_t i = 0;
    while (i < n && v > bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

static uint64_t next_rand(hr_dispatcher_t *d)
{
    /* xorshift64*: jitter only needs to be spread, not secret. */
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return d->rng * 2685821657736338717ull;
}

/* ------------------------------------------------------------------------------------------ */
/* Batches                                                                                    */

static batch_t *batch_new(trig_t *tr, hr_page_t *page, int from_retry)
{
    batch_t *b = hr_xcalloc(1, sizeof *b);
    b->tr = tr;
    b->page = page;
    b->from_retry = from_retry;
    b->state = hr_xcalloc(page->nevents + 1, 1);
    b->recs = hr_xcalloc(page->nevents + 1, sizeof *b->recs);
    for (size_t i = 0; i < page->nevents; i++) {
        /* The store filtered by table and operation; the column filter is applied here. */
        if (!from_retry && !hr_event_matches(&tr->def, &page->events[i]))
            b->state[i] = SKIPPED;
        else
            b->open++;
    }
    return b;
}

static void batch_free(batch_t *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->page->nevents; i++) {
        free((char *)b->recs[i].error);
        free((char *)b->recs[i].response);
    }
    hr_page_free(b->page);
    free(b->state);
    free(b->recs);
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* Settling                                                                                   */

static void on_settled(void *ud, int rc, const char *msg)
{
    batch_t *b = ud;
    trig_t *tr = b->tr;
    hr_dispatcher_t *d = tr->d;
    if (b->from_retry) {
        tr->retry = NULL;
        tr->retry_phase = IDLE;
        if (rc) {
            hr_log(HR_LOG_WARN,
                   "trigger=%s msg=\"settling retries failed; they will be retried\" "
                   "error=\"%s\"",
                   tr->def.name, msg ? msg : "");
            tr->retry_due_us = hr_mono_us() + 1000000;
        } else if (!b->page->exhausted) {
            tr->retry_due_us = 0; /* more are due now */
        }
    } else {
        tr->log = NULL;
        tr->log_phase = IDLE;
        if (rc) {
            hr_log(HR_LOG_WARN,
                   "trigger=%s msg=\"settling a page failed; it will be delivered "
                   "again\" error=\"%s\"",
                   tr->def.name, msg ? msg : "");
            free(tr->cursor);
            tr->cursor = NULL;
        } else {
            free(tr->cursor);
            tr->cursor = hr_xstrdup(b->page->cursor_after);
        }
    }
    if (!rc && d->observer) {
        /* Live views follow the outcomes just committed. */
        hr_attempt_rec_t *done = hr_xcalloc(b->page->nevents + 1, sizeof *done);
        size_t n = 0;
        for (size_t i = 0; i < b->page->nevents; i++)
            if (b->state[i] == DONE) done[n++] = b->recs[i];
        if (n) {
            hr_dispatch_note_t note = {
                .kind = HR_NOTE_SETTLED, .trigger = tr->def.name, .recs = done, .n = n};
            d->observer(d->observer_ud, &note);
        }
        free(done);
    }
    /* Failed events just joined the delayed queue: check it when the earliest is due. */
    if (!rc) {
        uint64_t now = hr_mono_us();
        for (size_t i = 0; i < b->page->nevents; i++) {
            const hr_attempt_rec_t *a = &b->recs[i];
            if (b->state[i] != DONE || a->settled || a->dead) continue;
            uint64_t due = now + a->delay_ms * 1000;
            if (due < tr->retry_due_us) tr->retry_due_us = due;
        }
    }
    int more = !rc && !b->from_retry && !b->page->exhausted;
    int from_retry = b->from_retry;
    batch_free(b);
    if (!from_retry && (!more || tr->pending_def || tr->removed || d->stopping)) drop_ahead(tr);
    if (d->stopping) {
        maybe_finish(d);
        return;
    }
    if (more && tr->ahead && !tr->pending_def && !tr->removed) {
        /* The next page was read while this one delivered: deliver it now (invariant 5). */
        hr_page_t *page = tr->ahead;
        tr->ahead = NULL;
        tr->log_phase = READING;
        on_log_page(tr, 0, page, NULL);
        return;
    }
    if (more && tr->ahead_reading && !tr->ahead_stale && !tr->pending_def && !tr->removed) {
        tr->log_phase = READING; /* on_ahead_page hands the page to on_log_page */
        tr->ahead_wanted = 1;
        return;
    }
    if (more) {
        d->activity = 1;
        start_reads(d); /* a full page: read the next one now */
    }
}

static void settle(batch_t *b)
{
    trig_t *tr = b->tr;
    hr_dispatcher_t *d = tr->d;
    size_t n = 0;
    hr_attempt_rec_t *recs = hr_xcalloc(b->page->nevents + 1, sizeof *recs);
    for (size_t i = 0; i < b->page->nevents; i++)
        if (b->state[i] == DONE) recs[n++] = b->recs[i];
    if (b->from_retry)
        tr->retry_phase = SETTLING;
    else
        tr->log_phase = SETTLING;
    int rc = d->ops->settle(d->store, tr->def.name, b->from_retry ? NULL : b->page->cursor_after,
                            recs, n, b->from_retry, on_settled, b);
    free(recs);
    if (rc) on_settled(b, rc, "cannot start settling");
}

/* ------------------------------------------------------------------------------------------ */
/* Delivery                                                                                   */

static void finish_event(batch_t *b, size_t i)
{
    b->state[i] = DONE;
    b->open--;
    if (b->open == 0) settle(b);
}

static int is_retry_after_status(long status)
{
    return status == 429 || status == 503;
}

/* Records the outcome of attempt number attempts_before + 1 and decides what follows. */
static void record(batch_t *b, size_t i, int attempts_before, long status, uint64_t latency_us,
                   const char *error, const char *response, const char *retry_after)
{
    trig_t *tr = b->tr;
    const hr_event_t *ev = &b->page->events[i];
    hr_attempt_rec_t *a = &b->recs[i];
    a->seq = ev->seq;
    a->event_id = ev->id;
    a->attempt = attempts_before + 1;
    a->status = status;
    a->latency_ms = (double)latency_us / 1000.0;
    a->response = response ? hr_xstrdup(response) : NULL;
    a->settled = status >= 200 && status < 300 && !error;
    if (a->settled) {
        int64_t at_us;
        tr->stats.success++;
        if (hr_parse_rfc3339_us(ev->created_at, &at_us) == 0) {
            double lag = (double)(hr_wall_us() - at_us) / 1e6;
            observe(&tr->stats.lag, hr_stats_lag_bounds, hr_stats_lag_nbounds, lag > 0 ? lag : 0);
        }
        hr_log(HR_LOG_DEBUG, "trigger=%s event=%s msg=delivered status=%ld attempt=%d",
               tr->def.name, ev->id, status, a->attempt);
        return;
    }
    a->error = error ? hr_xstrdup(error) : hr_xasprintf("HTTP status %ld", status);
    hr_retry_t retry = tr->def.retry;
    if (tr->one_off) {
        hr_trigger_def_t od;
        if (hr_payload_one_off_def(ev, &od) == 0) retry = od.retry;
        hr_trigger_def_clear(&od);
    }
    if (attempts_before >= retry.max_retries) {
        a->dead = 1;
        tr->stats.dead++;
        hr_log(HR_LOG_WARN, "trigger=%s event=%s msg=dead attempts=%d error=\"%s\"", tr->def.name,
               ev->id, a->attempt, a->error);
        return;
    }
    int64_t ra = -1;
    if (retry_after && is_retry_after_status(status) &&
        hr_retry_after_parse(retry_after, (int64_t)time(NULL), &ra) != 0)
        ra = -1;
    a->delay_ms = hr_backoff_delay_ms(&retry, a->attempt, next_rand(tr->d), ra);
    tr->stats.failure++;
    hr_log(HR_LOG_INFO,
           "trigger=%s event=%s msg=\"attempt failed\" attempt=%d error=\"%s\" "
           "retry_in_ms=%" PRIu64,
           tr->def.name, ev->id, a->attempt, a->error, a->delay_ms);
}

static void on_response(void *ud, const hr_http_res_t *res)
{
    flight_t *f = ud;
    batch_t *b = f->b;
    trig_t *tr = b->tr;
    tr->inflight--;
    if (res->error == HR_ECANCELED) {
        /* Shutdown cut it off: the event stays where it was and is delivered again later. */
        b->state[f->i] = PENDING;
        free(f);
        return;
    }
    observe(&tr->stats.duration, hr_stats_duration_bounds, hr_stats_duration_nbounds,
            (double)res->latency_us / 1e6);
    char err[300];
    const char *e = NULL;
    if (res->error) {
        snprintf(err, sizeof err, "%s: %s",
                 res->error == HR_ETIMEOUT ? "timeout" : "connection error",
                 res->error_msg ? res->error_msg : "");
        e = err;
    }
    record(b, f->i, f->attempts_before, res->status, res->latency_us, e,
           res->body_len ? res->body : NULL, res->retry_after);
    size_t i = f->i;
    free(f);
    finish_event(b, i);
    if (!tr->d->stopping || tr->log || tr->retry) pump(tr);
}

/* "2h", "10m12s", "45s". */
static void fmt_secs(int64_t secs, char *out, size_t n)
{
    int64_t h = secs / 3600, m = secs % 3600 / 60, sec = secs % 60;
    int o = 0;
    if (h) o += snprintf(out + o, n - (size_t)o, "%" PRId64 "h", h);
    if (m) o += snprintf(out + o, n - (size_t)o, "%" PRId64 "m", m);
    if (sec || !o) snprintf(out + o, n - (size_t)o, "%" PRId64 "s", sec);
}

/* The tolerance check of a schedule's fire or of a one-off event's first attempt (see the top
 * of this file): 1 when event i was recorded dead instead of being sent. def: the settings the
 * event is delivered with (tr->def, or the one-off event's own). */
static int missed_fire(batch_t *b, size_t i, const hr_trigger_def_t *def, int attempts_before)
{
    trig_t *tr = b->tr;
    const hr_event_t *ev = &b->page->events[i];
    int64_t at, now_s;
    if (tr->one_off) {
        if (attempts_before != 0 || strcmp(ev->op, "ONE_OFF") != 0) return 0;
        now_s = hr_wall_us() / 1000000;
    } else {
        if (b->from_retry || !tr->def.cron || strcmp(ev->op, "CRON") != 0) return 0;
        now_s = hr_sched_now_us() / 1000000;
    }
    if (hr_payload_scheduled_time(ev, &at) != 0) return 0;
    int64_t late = now_s - at;
    if (late * 1000 <= (int64_t)def->tolerance_ms) return 0;
    char a[32], t[32];
    fmt_secs(late, a, sizeof a);
    fmt_secs((int64_t)(def->tolerance_ms / 1000), t, sizeof t);
    hr_attempt_rec_t *rec = &b->recs[i];
    rec->seq = ev->seq;
    rec->event_id = ev->id;
    rec->attempt = 1;
    rec->error = hr_xasprintf("missed by %s, beyond the %s tolerance", a, t);
    rec->dead = 1;
    tr->stats.dead++;
    hr_log(HR_LOG_WARN, "trigger=%s event=%s msg=dead error=\"%s\"", tr->def.name, ev->id,
           rec->error);
    b->state[i] = IN_FLIGHT; /* finish_event expects a started event */
    finish_event(b, i);
    return 1;
}

/* Starts the request for event i of batch b, or records why it could not start. */
static void launch(batch_t *b, size_t i)
{
    trig_t *tr = b->tr;
    hr_dispatcher_t *d = tr->d;
    const hr_event_t *ev = &b->page->events[i];
    int attempts_before = b->from_retry ? b->page->attempts[i] : 0;
    hr_err_t err = {0};
    char *url = NULL, *secret = NULL;
    char **lines = NULL;
    size_t nl = 0;
    int rc;
    /* What the event is delivered with: the trigger's definition, or a one-off event's own. */
    hr_trigger_def_t own = {0};
    const hr_trigger_def_t *def = &tr->def;
    if (tr->one_off) {
        if (hr_payload_one_off_def(ev, &own) != 0) {
            hr_err_set(&err, HR_EINVAL, "invalid one-off event in the log (no webhook)");
            goto fail;
        }
        def = &own;
    }
    lines = hr_xcalloc(def->nheaders + 6, sizeof *lines);
    if (missed_fire(b, i, def, attempts_before)) goto out;
    hr_buf_reset(&d->body);
    rc = def->cron || tr->one_off ? hr_payload_build_scheduled(def, ev, &d->body)
                                  : hr_payload_build(def, ev, attempts_before, &d->body);
    if (rc) {
        hr_err_set(&err, rc, "cannot build the request body (invalid JSON in the log?)");
        goto fail;
    }
    if ((rc = hr_template_expand(def->webhook, NULL, NULL, &url, &err))) goto fail;
    int64_t ts = (int64_t)time(NULL);
    lines[nl++] = hr_xstrdup("Content-Type: application/json");
    lines[nl++] = hr_xstrdup("User-Agent: herald/" HERALD_VERSION);
    lines[nl++] = hr_xasprintf("webhook-id: %s", ev->id);
    lines[nl++] = hr_xasprintf("webhook-timestamp: %" PRId64, ts);
    if (def->secret) {
        char sig[128];
        if ((rc = hr_template_expand(def->secret, NULL, NULL, &secret, &err))) goto fail;
        if ((rc = hr_sign_webhook(secret, ev->id, ts, d->body.data, d->body.len, sig, sizeof sig,
                                  &err)))
            goto fail;
        lines[nl++] = hr_xasprintf("webhook-signature: %s", sig);
    }
    for (size_t k = 0; k < def->nheaders; k++) {
        char *v = NULL;
        if ((rc = hr_template_expand(def->headers[k].value, NULL, NULL, &v, &err))) goto fail;
        lines[nl++] = hr_xasprintf("%s: %s", def->headers[k].name, v);
        free(v);
    }
    hr_http_req_t req = {
        .url = url,
        .headers = (const char *const *)lines,
        .nheaders = nl,
        .body = d->body.data,
        .body_len = d->body.len,
        .timeout_ms = def->retry.timeout_ms,
        .response_cap = RESPONSE_CAP,
    };
    flight_t *f = hr_xcalloc(1, sizeof *f);
    f->b = b;
    f->i = i;
    f->attempts_before = attempts_before;
    if ((rc = hr_http_post(d->http, &req, on_response, f))) {
        free(f);
        hr_err_set(&err, rc, "cannot start the request to %s", url);
        goto fail;
    }
    b->state[i] = IN_FLIGHT;
    tr->inflight++;
    goto out;
fail:
    /* A configuration problem at delivery time (say, an unset variable) is a failed attempt:
     * it is retried with backoff, so fixing the environment and restarting recovers. */
    record(b, i, attempts_before, 0, 0, err.msg, NULL, NULL);
    b->state[i] = IN_FLIGHT; /* finish_event expects a started event */
    finish_event(b, i);
out:
    for (size_t k = 0; k < nl; k++)
        free(lines[k]);
    free(lines);
    free(url);
    free(secret);
    hr_trigger_def_clear(&own);
}

/* Launches pending events while the trigger is under its concurrency cap. */
static void pump(trig_t *tr)
{
    batch_t *order[2] = {tr->log, tr->retry};
    for (int k = 0; k < 2; k++) {
        batch_t *b = order[k];
        while (b && tr->inflight < tr->def.concurrency && b->next < b->page->nevents) {
            size_t i = b->next++;
            if (b->state[i] != PENDING) continue;
            /* launch may settle and free b when its last event fails at once. */
            int last = b->open == 1;
            launch(b, i);
            if (last) break;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                    */

static void deliver_page(trig_t *tr, batch_t *b)
{
    if (b->open == 0) {
        settle(b); /* nothing to deliver, but the cursor still moves */
        return;
    }
    pump(tr);
}

static void on_log_page(void *ud, int rc, hr_page_t *page, const char *msg)
{
    trig_t *tr = ud;
    hr_dispatcher_t *d = tr->d;
    if (rc || d->stopping || tr->removed) {
        if (rc && rc != HR_ECANCELED)
            hr_log(HR_LOG_WARN, "trigger=%s msg=\"reading the log failed\" error=\"%s\"",
                   tr->def.name, msg ? msg : "");
        if (rc == HR_ENOTFOUND) tr->removed = 1;
        hr_page_free(page);
        tr->log_phase = IDLE;
        if (rc) {
            free(tr->cursor);
            tr->cursor = NULL;
        }
        maybe_finish(d);
        return;
    }
    if (page->nevents == 0) {
        /* An empty range: keep the advanced cursor in memory only (no write while idle). */
        free(tr->cursor);
        tr->cursor = hr_xstrdup(page->cursor_after);
        hr_page_free(page);
        tr->log_phase = IDLE;
        return;
    }
    d->activity = 1;
    tr->stats.events_read += page->nevents;
    if (d->observer) {
        /* PostgreSQL pages are in (xid, seq) order: the largest seq may be anywhere. */
        hr_dispatch_note_t note = {.kind = HR_NOTE_READ, .trigger = tr->def.name};
        for (size_t i = 0; i < page->nevents; i++)
            if (page->events[i].seq > note.last_seq) note.last_seq = page->events[i].seq;
        d->observer(d->observer_ud, &note);
    }
    tr->log_phase = DELIVERING;
    tr->log = batch_new(tr, page, 0);
    /* A full page: read the next one while this one delivers (invariant 5). Before delivering,
     * so that the read is queued ahead of this page's settle. */
    if (!page->exhausted && !tr->ahead_reading && !tr->ahead && !tr->pending_def && holds(tr)) {
        tr->ahead_reading = 1;
        tr->ahead_stale = 0;
        tr->ahead_wanted = 0;
        if (d->ops->read_page(d->store, &tr->def, page->cursor_after, d->opts.page_size,
                              on_ahead_page, tr) != 0)
            tr->ahead_reading = 0;
    }
    deliver_page(tr, tr->log);
}

/* The page read ahead (invariant 5) arrived: delivered at once if the log pipeline waits for it,
 * kept until the current page settles otherwise, dropped if it went stale meanwhile. */
static void on_ahead_page(void *ud, int rc, hr_page_t *page, const char *msg)
{
    trig_t *tr = ud;
    hr_dispatcher_t *d = tr->d;
    int wanted = tr->ahead_wanted;
    int stale = tr->ahead_stale;
    tr->ahead_reading = 0;
    tr->ahead_wanted = 0;
    tr->ahead_stale = 0;
    if (wanted) {
        on_log_page(tr, rc, page, msg); /* log_phase is READING: as any read */
        return;
    }
    if (rc || stale || d->stopping || tr->removed || tr->pending_def) {
        hr_page_free(page);
        maybe_finish(d);
        return;
    }
    tr->ahead = page;
}

/* Forgets the read-ahead: the page is freed, or dropped when its read calls back. */
static void drop_ahead(trig_t *tr)
{
    hr_page_free(tr->ahead);
    tr->ahead = NULL;
    if (tr->ahead_reading) {
        tr->ahead_stale = 1;
        tr->ahead_wanted = 0;
    }
}

static void on_retry_page(void *ud, int rc, hr_page_t *page, const char *msg)
{
    trig_t *tr = ud;
    hr_dispatcher_t *d = tr->d;
    uint64_t now = hr_mono_us();
    if (rc || d->stopping || tr->removed) {
        if (rc && rc != HR_ECANCELED)
            hr_log(HR_LOG_WARN, "trigger=%s msg=\"reading due retries failed\" error=\"%s\"",
                   tr->def.name, msg ? msg : "");
        hr_page_free(page);
        tr->retry_phase = IDLE;
        tr->retry_due_us = now + 1000000;
        maybe_finish(d);
        return;
    }
    /* Sleep until the next retry is due, but look again within a second anyway: another process
     * may have queued something (redeliver, replay, invoke). */
    uint64_t wait = RETRY_SAFETY_RECHECK_US;
    if (page->next_due_ms >= 0 && (uint64_t)page->next_due_ms * 1000 < wait)
        wait = (uint64_t)page->next_due_ms * 1000;
    tr->retry_due_us = now + wait;
    if (page->nevents == 0) {
        hr_page_free(page);
        tr->retry_phase = IDLE;
        return;
    }
    tr->retry_phase = DELIVERING;
    tr->retry = batch_new(tr, page, 1);
    deliver_page(tr, tr->retry);
}

static void apply_pending_def(trig_t *tr)
{
    if (!tr->pending_def || tr->log_phase != IDLE || tr->retry_phase != IDLE || tr->inflight ||
        tr->ahead_reading)
        return;
    drop_ahead(tr);
    hr_trigger_def_clear(&tr->def);
    tr->def = *tr->pending_def;
    free(tr->pending_def);
    tr->pending_def = NULL;
    hr_log(HR_LOG_INFO, "trigger=%s msg=\"definition updated\"", tr->def.name);
}

static void start_reads(hr_dispatcher_t *d)
{
    uint64_t now = hr_mono_us();
    for (trig_t *tr = d->trigs; tr; tr = tr->next) {
        if (tr->removed) continue;
        apply_pending_def(tr);
        if (!holds(tr)) continue;
        if (tr->log_phase == IDLE && !tr->one_off && !tr->ahead_reading) {
            drop_ahead(tr); /* an idle pipeline has no current page to follow */
            if (tr->cursor_gen != tr->lease_gen) {
                /* Taken (again): another process may have moved the stored cursor. */
                free(tr->cursor);
                tr->cursor = NULL;
                tr->cursor_gen = tr->lease_gen;
            }
            tr->log_phase = READING;
            int rc = d->ops->read_page(d->store, &tr->def, tr->cursor, d->opts.page_size,
                                       on_log_page, tr);
            if (rc) tr->log_phase = IDLE;
        }
        if (tr->retry_phase == IDLE && now >= tr->retry_due_us) {
            tr->retry_phase = READING;
            int rc = d->ops->read_due(d->store, &tr->def, d->opts.page_size, on_retry_page, tr);
            if (rc) tr->retry_phase = IDLE;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Leases (see "Several processes")                                                           */

/* Whether tr may be read now: held, and renewed recently enough. */
static int holds(const trig_t *tr)
{
    const hr_dispatcher_t *d = tr->d;
    if (!d->ops->leases) return 1;
    return tr->leased && d->lease_ok_us && hr_mono_us() - d->lease_ok_us < LEASE_TTL_MS * 1000ull &&
           d->ops->reconnects(d->store) == d->lease_epoch;
}

static void free_lease_names(hr_dispatcher_t *d)
{
    for (size_t i = 0; i < d->lease_n; i++)
        free(d->lease_names[i]);
    free(d->lease_names);
    d->lease_names = NULL;
    d->lease_n = 0;
}

static void on_leases(void *ud, int rc, const unsigned char *held)
{
    hr_dispatcher_t *d = ud;
    d->leasing = 0;
    if (d->stopping) {
        free_lease_names(d);
        maybe_finish(d);
        return;
    }
    if (rc) {
        /* Once per outage: the statement is tried again every second meanwhile. */
        if (!d->lease_failing)
            hr_log(HR_LOG_WARN,
                   "msg=\"taking or renewing trigger leases failed; this process "
                   "stops reading once its leases would expire\" rc=%d",
                   rc);
        d->lease_failing = 1;
        free_lease_names(d);
        return;
    }
    if (d->lease_failing) hr_log(HR_LOG_INFO, "msg=\"trigger leases renewed again\"");
    d->lease_failing = 0;
    int taken = 0;
    for (size_t i = 0; i < d->lease_n; i++) {
        trig_t *tr = d->trigs;
        while (tr && (tr->removed || strcmp(tr->def.name, d->lease_names[i]) != 0))
            tr = tr->next;
        if (!tr) continue;
        int now_held = held[i] != 0;
        if (now_held && !tr->leased) {
            tr->lease_gen++;
            tr->retry_due_us = 0;
            taken = 1;
            hr_log(HR_LOG_INFO, "trigger=%s msg=\"lease taken: this process delivers it\"",
                   tr->def.name);
        } else if (!now_held && (tr->leased || !tr->lease_known)) {
            hr_log(tr->leased ? HR_LOG_WARN : HR_LOG_INFO, "trigger=%s msg=\"%s\"", tr->def.name,
                   tr->leased ? "lease lost: another process delivers it"
                              : "another process holds the lease and delivers it");
        }
        tr->leased = now_held;
        tr->lease_known = 1;
    }
    d->lease_ok_us = d->lease_sent_us;
    d->lease_epoch = d->ops->reconnects(d->store);
    free_lease_names(d);
    if (taken) hr_dispatcher_wake(d);
}

/* Sends the lease statement when due: at once at start, every LEASE_RETRY_MS while some
 * trigger is not held, else every third of LEASE_TTL_MS. */
static void renew_leases(hr_dispatcher_t *d, uint64_t now)
{
    if (!d->ops->leases || d->leasing) return;
    /* Most ticks (every poll_min while events flow) end here, before looking at any trigger. */
    if (d->lease_checked_us && now - d->lease_checked_us < LEASE_RETRY_MS * 1000ull) return;
    int all_held = d->lease_ok_us != 0;
    size_t n = 0;
    for (trig_t *tr = d->trigs; tr; tr = tr->next) {
        if (tr->removed) continue;
        n++;
        if (!tr->leased) all_held = 0;
    }
    /* After a reconnect the leases are confirmed on the new session before anything is read:
     * the old session's end lets another process take them at once. */
    if (d->ops->reconnects(d->store) != d->lease_epoch) all_held = 0;
    uint64_t every_ms = all_held ? LEASE_TTL_MS / 3 : LEASE_RETRY_MS;
    if (d->lease_checked_us && now - d->lease_checked_us < every_ms * 1000ull) return;
    d->lease_names = hr_xcalloc(n ? n : 1, sizeof *d->lease_names);
    for (trig_t *tr = d->trigs; tr; tr = tr->next)
        if (!tr->removed) d->lease_names[d->lease_n++] = hr_xstrdup(tr->def.name);
    d->lease_checked_us = d->lease_sent_us = now;
    d->leasing = 1;
    if (d->ops->leases(d->store, d->owner, (const char *const *)d->lease_names, d->lease_n,
                       LEASE_TTL_MS, on_leases, d) != 0) {
        d->leasing = 0;
        free_lease_names(d);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Definitions                                                                                */

static trig_t *trig_new(hr_dispatcher_t *d, const hr_trigger_def_t *def)
{
    trig_t *tr = hr_xcalloc(1, sizeof *tr);
    tr->d = d;
    json_t *j = hr_trigger_def_to_json(def);
    hr_err_t err = {0};
    int rc = hr_trigger_def_from_json(j, &tr->def, &err); /* a deep copy */
    json_decref(j);
    if (rc) {
        hr_log(HR_LOG_ERROR, "trigger=%s msg=\"invalid definition\" error=\"%s\"", def->name,
               err.msg);
        free(tr);
        return NULL;
    }
    tr->retry_due_us = 0; /* check the delayed queue at start */
    tr->next = d->trigs;
    d->trigs = tr;
    hr_log(HR_LOG_INFO, "trigger=%s msg=\"delivering\" webhook=\"%s\"", tr->def.name,
           tr->def.webhook);
    return tr;
}

/* The pseudo-trigger of one-off events (see the top of this file): every event it delivers
 * carries its own webhook, headers and retry policy. */
static void trig_one_off(hr_dispatcher_t *d)
{
    trig_t *tr = hr_xcalloc(1, sizeof *tr);
    tr->d = d;
    hr_trigger_def_defaults(&tr->def);
    tr->def.name = hr_xstrdup(HR_ONE_OFF_TRIGGER);
    tr->one_off = 1;
    tr->next = d->trigs;
    d->trigs = tr;
}

static void trig_free(trig_t *tr)
{
    batch_free(tr->log);
    batch_free(tr->retry);
    hr_page_free(tr->ahead);
    hr_trigger_def_clear(&tr->def);
    if (tr->pending_def) {
        hr_trigger_def_clear(tr->pending_def);
        free(tr->pending_def);
    }
    free(tr->cursor);
    free(tr);
}

/* Frees triggers whose definitions were removed, once they are idle. */
static void reap_removed(hr_dispatcher_t *d)
{
    for (trig_t **pp = &d->trigs; *pp;) {
        trig_t *tr = *pp;
        if (tr->removed && tr->log_phase == IDLE && tr->retry_phase == IDLE && !tr->inflight &&
            !tr->ahead_reading) {
            *pp = tr->next;
            hr_log(HR_LOG_INFO, "trigger=%s msg=\"stopped (definition removed)\"", tr->def.name);
            trig_free(tr);
        } else {
            pp = &tr->next;
        }
    }
}

/* Brings the running triggers in line with the stored definitions; 0 or an error. */
static int reload_defs(hr_dispatcher_t *d)
{
    hr_trigger_def_t *defs = NULL;
    size_t n = 0;
    hr_err_t err = {0};
    int rc = d->ops->load_triggers(d->store, &defs, &n, &err);
    if (rc) {
        hr_log(HR_LOG_WARN, "msg=\"reloading trigger definitions failed\" error=\"%s\"", err.msg);
        return rc;
    }
    hr_scheduler_sync(d->sched, defs, n);
    for (trig_t *tr = d->trigs; tr; tr = tr->next) {
        if (tr->one_off) continue;
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(defs[i].name, tr->def.name) == 0;
        if (!found) tr->removed = 1;
    }
    for (size_t i = 0; i < n; i++) {
        trig_t *tr = d->trigs;
        while (tr && (tr->removed || tr->one_off || strcmp(tr->def.name, defs[i].name) != 0))
            tr = tr->next;
        if (!tr) {
            trig_new(d, &defs[i]);
            hr_trigger_def_clear(&defs[i]);
            continue;
        }
        json_t *a = hr_trigger_def_to_json(&tr->def), *b = hr_trigger_def_to_json(&defs[i]);
        if (!json_equal(a, b)) {
            if (tr->pending_def) {
                hr_trigger_def_clear(tr->pending_def);
                free(tr->pending_def);
            }
            tr->pending_def = hr_xcalloc(1, sizeof *tr->pending_def);
            *tr->pending_def = defs[i];
        } else {
            hr_trigger_def_clear(&defs[i]);
        }
        json_decref(a);
        json_decref(b);
    }
    free(defs);
    return 0;
}

static void on_defs_version(void *ud, int rc, int64_t version)
{
    hr_dispatcher_t *d = ud;
    d->defs_checking = 0;
    if (rc || d->stopping) {
        maybe_finish(d);
        return;
    }
    /* The first answer reloads too, closing the gap between start-up and this check; a reload
     * that changes nothing is cheap. A failed reload keeps the old version, so that the next
     * check tries again. */
    if (version != d->defs_version && reload_defs(d) != 0) return;
    d->defs_version = version;
}

/* ------------------------------------------------------------------------------------------ */
/* Timer, start and stop                                                                      */

static void on_tick(uv_timer_t *t)
{
    hr_dispatcher_t *d = t->data;
    if (d->stopping) return;
    uint64_t now = hr_mono_us();
    if (!d->defs_checking && now - d->defs_checked_us >= d->opts.defs_check_ms * 1000) {
        d->defs_checked_us = now;
        d->defs_checking = 1;
        if (d->ops->defs_version(d->store, on_defs_version, d) != 0) d->defs_checking = 0;
    }
    reap_removed(d);
    renew_leases(d, now);
    if (d->activity)
        d->poll_us = d->opts.poll_min_us;
    else if (d->poll_us < d->opts.poll_max_us)
        d->poll_us *= 2;
    if (d->poll_us > d->opts.poll_max_us) d->poll_us = d->opts.poll_max_us;
    d->activity = 0;
    start_reads(d);
    /* Wake earlier when a retry comes due before the next poll. */
    uint64_t wait = d->poll_us;
    now = hr_mono_us();
    int unleased = 0;
    for (trig_t *tr = d->trigs; tr; tr = tr->next) {
        if (tr->retry_phase == IDLE && tr->retry_due_us > now && tr->retry_due_us - now < wait)
            wait = tr->retry_due_us - now;
        unleased |= !tr->removed && !tr->leased;
    }
    if (unleased && d->ops->leases && !d->leasing) {
        /* ... and for the next lease statement, when some trigger waits for its lease. */
        uint64_t due = d->lease_checked_us + LEASE_RETRY_MS * 1000ull;
        uint64_t in = due > now ? due - now : 0;
        if (in < wait) wait = in;
    }
    uint64_t ms = (wait + 999) / 1000;
    uv_timer_start(&d->tick, on_tick, ms ? ms : 1, 0);
}

static void on_token(void *ud, int rc, const char *token)
{
    hr_dispatcher_t *d = ud;
    d->probing = 0;
    if (d->stopping) {
        maybe_finish(d);
        return;
    }
    if (rc) {
        /* The database may be restarting: polls go on; the next answer only records. */
        free(d->token);
        d->token = NULL;
        return;
    }
    int changed = d->token && strcmp(d->token, token) != 0;
    free(d->token);
    d->token = hr_xstrdup(token);
    if (changed) hr_dispatcher_wake(d);
}

/* The change probe's timer: asks for the token unless a poll is due within probe_us anyway. */
static void on_probe_timer(uv_timer_t *t)
{
    hr_dispatcher_t *d = t->data;
    if (d->stopping || d->probing) return;
    if (uv_timer_get_due_in(&d->tick) * 1000 <= d->opts.probe_us) return;
    d->probing = 1;
    if (d->ops->change_token(d->store, on_token, d) != 0) d->probing = 0;
}

int hr_dispatcher_init(uv_loop_t *loop, const hr_store_ops_t *ops, hr_store_t *store,
                       const hr_trigger_def_t *defs, size_t ndefs, const hr_dispatch_opts_t *opts,
                       hr_dispatcher_t **out, hr_err_t *err)
{
    hr_dispatcher_t *d = hr_xcalloc(1, sizeof *d);
    d->loop = loop;
    d->ops = ops;
    d->store = store;
    d->opts.page_size = opts && opts->page_size ? opts->page_size : 500;
    d->opts.poll_min_us = opts && opts->poll_min_us ? opts->poll_min_us : 1000;
    d->opts.poll_max_us = opts && opts->poll_max_us ? opts->poll_max_us : 100000;
    d->opts.defs_check_ms = opts && opts->defs_check_ms ? opts->defs_check_ms : 1000;
    d->opts.probe_us = opts && opts->probe_us ? opts->probe_us : 10000;
    d->poll_us = d->opts.poll_min_us;
    d->defs_version = -1;
    d->defs_checked_us = hr_mono_us() - d->opts.defs_check_ms * 1000;
    d->rng = (uint64_t)hr_wall_us() ^ ((uint64_t)(uintptr_t)d << 17) ^ 0x9E3779B97F4A7C15ull;
    {
        char host[64] = "";
        if (gethostname(host, sizeof host) != 0) host[0] = '\0';
        host[sizeof host - 1] = '\0';
        uint64_t r = d->rng ^ ((uint64_t)getpid() << 32) ^ hr_mono_us();
        snprintf(d->owner, sizeof d->owner, "%s:%ld:%016" PRIx64, host, (long)getpid(), r);
    }
    hr_buf_init(&d->body, 0);
    int rc = hr_http_init(loop, &d->http, err);
    if (rc) {
        free(d);
        return rc;
    }
    trig_one_off(d);
    for (size_t i = 0; i < ndefs; i++)
        trig_new(d, &defs[i]);
    uv_timer_init(loop, &d->tick);
    uv_timer_init(loop, &d->grace);
    uv_timer_init(loop, &d->probe);
    d->tick.data = d->grace.data = d->probe.data = d;
    d->sched = hr_scheduler_new(loop, ops, store, on_fired, d);
    hr_scheduler_sync(d->sched, defs, ndefs);
    d->handles_open = 4; /* tick, grace, probe and the scheduler's timer */
    uv_timer_start(&d->tick, on_tick, 0, 0);
    if (ops->change_token) {
        uint64_t ms = (d->opts.probe_us + 999) / 1000;
        uv_timer_start(&d->probe, on_probe_timer, ms, ms);
    }
    *out = d;
    return 0;
}

/* The scheduler wrote a fire: read it now rather than at the next poll. */
static void on_fired(void *ud)
{
    hr_dispatcher_wake(ud);
}

void hr_dispatcher_poke(hr_dispatcher_t *d)
{
    if (!d || d->stopping) return;
    for (trig_t *tr = d->trigs; tr; tr = tr->next)
        tr->retry_due_us = 0;
    d->activity = 1;
    uv_timer_start(&d->tick, on_tick, 0, 0);
}

void hr_dispatcher_wake(hr_dispatcher_t *d)
{
    if (!d || d->stopping) return;
    d->activity = 1;
    if (uv_timer_get_due_in(&d->tick) > 0) uv_timer_start(&d->tick, on_tick, 0, 0);
}

void hr_dispatcher_observe(hr_dispatcher_t *d, hr_dispatcher_observe_fn fn, void *ud)
{
    d->observer = fn;
    d->observer_ud = ud;
}

void hr_dispatcher_stats(const hr_dispatcher_t *d, hr_dispatcher_stats_fn fn, void *ud)
{
    for (const trig_t *tr = d->trigs; tr; tr = tr->next) {
        if (tr->removed || tr->one_off) continue;
        hr_trigger_stats_t st = tr->stats;
        st.lease_held = holds(tr);
        fn(ud, tr->def.name, &st, tr->inflight);
    }
}

static void handle_closed(hr_dispatcher_t *d)
{
    if (--d->handles_open > 0) return;
    void (*done)(void *) = d->done;
    void *ud = d->done_ud;
    while (d->trigs) {
        trig_t *tr = d->trigs;
        d->trigs = tr->next;
        trig_free(tr);
    }
    hr_buf_free(&d->body);
    free(d->token);
    free(d);
    if (done) done(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_sched_closed(void *ud)
{
    handle_closed(ud);
}

/* 1 while a store operation of d has not called back yet. */
static int db_busy(const hr_dispatcher_t *d)
{
    if (d->defs_checking || d->probing || d->leasing) return 1;
    for (const trig_t *tr = d->trigs; tr; tr = tr->next)
        if (tr->log_phase == READING || tr->log_phase == SETTLING || tr->retry_phase == READING ||
            tr->retry_phase == SETTLING || tr->ahead_reading)
            return 1;
    return 0;
}

/* The last step of closing: once HTTP is closed and no store callback is pending. */
static void finalize(hr_dispatcher_t *d)
{
    if (!d->http_closed || d->handles_closing || db_busy(d)) return;
    d->handles_closing = 1;
    uv_close((uv_handle_t *)&d->tick, on_handle_closed);
    uv_close((uv_handle_t *)&d->grace, on_handle_closed);
    uv_close((uv_handle_t *)&d->probe, on_handle_closed);
    hr_scheduler_close(d->sched, on_sched_closed, d);
    d->sched = NULL;
}

static void on_http_closed(void *ud)
{
    hr_dispatcher_t *d = ud;
    d->http_closed = 1;
    finalize(d);
}

static int busy(const hr_dispatcher_t *d)
{
    if (db_busy(d)) return 1;
    for (const trig_t *tr = d->trigs; tr; tr = tr->next)
        if (tr->log_phase != IDLE || tr->retry_phase != IDLE || tr->inflight) return 1;
    return 0;
}

/* While stopping: once nothing is in flight, release everything. */
static void maybe_finish(hr_dispatcher_t *d)
{
    if (d->stopping == 2) {
        finalize(d);
        return;
    }
    if (!d->stopping || busy(d)) return;
    d->stopping = 2;
    uv_timer_stop(&d->grace);
    hr_http_close(d->http, on_http_closed, d);
}

static void on_grace(uv_timer_t *t)
{
    hr_dispatcher_t *d = t->data;
    hr_log(HR_LOG_WARN, "msg=\"grace period over; cancelling requests in flight (they will be "
                        "delivered again)\"");
    /* Cut-off pages are dropped unsettled: their cursor does not move, so they are read again. */
    for (trig_t *tr = d->trigs; tr; tr = tr->next) {
        for (int k = 0; k < 2; k++) {
            batch_t **bp = k ? &tr->retry : &tr->log;
            if (*bp && (k ? tr->retry_phase : tr->log_phase) == DELIVERING) {
                (*bp)->open = (size_t)-1; /* never reaches zero: no settle */
                (*bp)->next = (*bp)->page->nevents;
            }
        }
    }
    d->stopping = 2;
    hr_http_close(d->http, on_http_closed, d);
}

void hr_dispatcher_close(hr_dispatcher_t *d, uint64_t grace_ms, void (*done)(void *ud), void *ud)
{
    d->done = done;
    d->done_ud = ud;
    d->stopping = 1;
    uv_timer_stop(&d->tick);
    uv_timer_stop(&d->probe);
    hr_log(HR_LOG_INFO, "msg=\"stopping: finishing pages in flight\" grace_ms=%" PRIu64, grace_ms);
    uv_timer_start(&d->grace, on_grace, grace_ms ? grace_ms : 1, 0);
    maybe_finish(d);
}
