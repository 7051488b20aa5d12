/* dispatcher.h: reads each trigger's events and delivers them, on one libuv loop. */
#ifndef HR_DISPATCHER_H
#define HR_DISPATCHER_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/err.h"
#include "store/store.h"

typedef struct hr_dispatcher hr_dispatcher_t;

typedef struct hr_dispatch_opts {
    size_t page_size;     /* events read per page; default 500 */
    uint64_t poll_min_us; /* fastest poll while events keep coming; default 1 ms */
    uint64_t poll_max_us; /* slowest idle poll; default 100 ms */
    /* While idle, how often the store's change token (hr_store_ops_t.change_token, when the
     * store has one) is checked between polls; a changed token reads at once. Default 10 ms. */
    uint64_t probe_us;
    uint64_t defs_check_ms; /* how often stored definitions are checked for changes; 1 s */
} hr_dispatch_opts_t;

/* A histogram with fixed upper bounds (Prometheus' "le"), filled without allocation. */
#define HR_HIST_MAX_BOUNDS 16
typedef struct hr_histogram {
    uint64_t counts[HR_HIST_MAX_BOUNDS + 1]; /* per bucket, not cumulative; [nbounds] is +Inf */
    uint64_t count;                          /* observations */
    double sum;                              /* sum of the observed values */
} hr_histogram_t;

/* Upper bounds in seconds of the two histograms below, ascending. */
extern const double hr_stats_duration_bounds[];
extern const size_t hr_stats_duration_nbounds;
extern const double hr_stats_lag_bounds[];
extern const size_t hr_stats_lag_nbounds;

/* What one trigger did since it started running in this process (counters start at 0 when herald
 * starts and when a trigger is made again under the same name). */
typedef struct hr_trigger_stats {
    uint64_t events_read; /* events of the log pages read for the trigger (table/op filter) */
    uint64_t success;     /* attempts answered with a 2xx */
    uint64_t failure;     /* failed attempts followed by a retry */
    uint64_t dead;        /* failed attempts after which the event is dead */
    /* Seconds of each HTTP attempt, from its submission to the response or the error: */
    hr_histogram_t duration;
    hr_histogram_t lag; /* seconds from the event's created_at to its 2xx */
    int lease_held;     /* hr_dispatcher_stats: 1 while this process delivers the trigger */
} hr_trigger_stats_t;

typedef void (*hr_dispatcher_stats_fn)(void *ud, const char *trigger, const hr_trigger_stats_t *st,
                                       int in_flight);

/* Starts delivering. The store must have been opened on loop. defs are copied. */
int hr_dispatcher_init(uv_loop_t *loop, const hr_store_ops_t *ops, hr_store_t *store,
                       const hr_trigger_def_t *defs, size_t ndefs, const hr_dispatch_opts_t *opts,
                       hr_dispatcher_t **out, hr_err_t *err);
/* Asks every trigger to look at its delayed queue and the log now rather than at its next poll
 * (after invoke, redeliver or replay made something due). Cheap; safe to call any time. */
void hr_dispatcher_poke(hr_dispatcher_t *d);
/* New events may be in the log (a hint, e.g. the database file changed): read now instead of at
 * the next poll, and poll at the fastest rate again. Cheaper than poke: retries wait their turn. */
void hr_dispatcher_wake(hr_dispatcher_t *d);
/* Calls fn once per running trigger, in no particular order, with its name, its statistics and
 * its requests in flight now; everything passed is borrowed for the call only. */
void hr_dispatcher_stats(const hr_dispatcher_t *d, hr_dispatcher_stats_fn fn, void *ud);
/* What the dispatcher tells its observer (hr_dispatcher_observe); borrowed for the call. */
typedef enum hr_dispatch_note_kind {
    HR_NOTE_READ,    /* a log read of `trigger` found events, the largest seq being last_seq */
    HR_NOTE_SETTLED, /* a settle of `trigger` committed the attempts recs[0..n) */
} hr_dispatch_note_kind_t;

typedef struct hr_dispatch_note {
    hr_dispatch_note_kind_t kind;
    const char *trigger;
    int64_t last_seq;             /* HR_NOTE_READ */
    const hr_attempt_rec_t *recs; /* HR_NOTE_SETTLED: event ids, seqs and outcomes */
    size_t n;
} hr_dispatch_note_t;

typedef void (*hr_dispatcher_observe_fn)(void *ud, const hr_dispatch_note_t *note);

/* Sets the one observer (fn NULL removes it): fn runs on the loop after each log read that found
 * events and after each settle that committed attempts, so that live views (GraphQL
 * subscriptions) follow delivery without polling the database. fn must not call into d. */
void hr_dispatcher_observe(hr_dispatcher_t *d, hr_dispatcher_observe_fn fn, void *ud);
/* Graceful stop: no new reads; pages in flight finish and settle within grace_ms, after which
 * outstanding requests are cancelled (their events are delivered again on the next start).
 * Closes the loop handles, frees d, then calls done(ud). The store is not closed. */
void hr_dispatcher_close(hr_dispatcher_t *d, uint64_t grace_ms, void (*done)(void *ud), void *ud);

#endif
