/* graphql_hub.c: /v1/graphql's subscriptions, driven by herald's own progress.
 *
 * Three kinds (docs/graphql.md):
 *
 *   events_stream  the log in seq order from a cursor, in batches, without gaps or repeats;
 *   event(id)      one event, pushed when first found and again whenever its serialised form
 *                  changes (its delivery state, attempts...);
 *   stats          the per-trigger statistics, recomputed at most once a second, pushed when
 *                  they change.
 *
 * events_stream: one shared reader. The hub keeps the tail T, the seq up to which every
 * subscriber "at the tail" has been served, and the store's stable horizon H (stream_horizon:
 * every seq <= H is visible or never will be). When H > T it reads (T, H] once (stream_read,
 * pages of TAIL_PAGE), and hands each page to every group of tail subscribers: the group's
 * `where` filters it, the matches are cut into batch_size chunks, and each chunk is executed
 * and serialised once per group, the same string going to every member. A group is the set of
 * subscribers that sent the same document, operation name and variables (graphql_svc.c). A
 * subscriber whose cursor is behind T catches up on its own (reads of (pos, T], CATCHUP_PAGE at
 * a time) and joins its group when pos == T, which is where the tail's next read starts: no
 * event is sent twice or skipped. A cursor ahead of T waits until T reaches it.
 *
 *     new subscriber --pos < T--> BEHIND --catch-up reads--> pos == T --> TAIL (in a group)
 *                    --pos == T-----------------------------------------^
 *                    --pos > T--> AHEAD --T reaches pos-----------------^
 *
 * Slow clients (backpressure). The transport reports how many bytes wait in a subscriber's
 * socket (sink.queued). Above HR_GQL_SLOW_QUEUED a BEHIND subscriber is not read for (it stays
 * where it is and is looked at again at each tick, TICK_HELD_MS apart at most), and a TAIL
 * subscriber leaves its group before the next page is handed out, with pos = T (the last seq it
 * was sent): it is BEHIND from then on and rejoins when its catch-up reaches the tail. So a client
 * that does not read holds at most the threshold plus one page, and the others do not wait for
 * it. At most MAX_CATCHUP_READS catch-up reads are in flight at once, each of one page; the
 * subscriber served goes to the back of the list, so the BEHIND subscribers take turns and one
 * loop iteration handles at most MAX_CATCHUP_READS pages of catch-up.
 *
 *     TAIL --queued > threshold at a tail page--> BEHIND (pos = T)
 *     BEHIND --queued > threshold--> held (no read) --queued <= threshold--> BEHIND
 *
 * Invariants:
 *   1. One tail read at a time, always from T; T only moves when its page has been handed out.
 *   2. A subscriber is in a group iff it is at the tail; its next event is the first > T.
 *   3. One catch-up read per subscriber at a time; pos only moves when its page was sent; at most
 *      MAX_CATCHUP_READS catch-up reads at a time.
 *   4. No sink runs after unsubscribe: a subscriber unsubscribed while the hub calls sinks or
 *      while its read is in flight is marked dead and freed at the next sweep.
 *
 * Waking up. One timer (tick) probes the horizon while there are stream subscribers — one cheap
 * query per tick for all of them — every TICK_FAST_MS while events flow and TICK_IDLE_MS when
 * idle; the dispatcher's observer (hr_dispatcher_observe) makes it probe at once when a trigger
 * read new events. With no trigger, the dispatcher reads nothing and the tick alone finds new
 * events. The observer also names the events whose attempts a settle committed: the event(id)
 * subscribers of those (and of the events a mutation touched) are re-read and re-pushed through
 * a zero timer (kick), which batches everything noted in one loop iteration.
 *
 * stats run the store's status op, which counts a trigger's backlog and may take long on a big
 * log, in libuv's thread pool on a store of its own (opened from ctx->database_url, as /metrics
 * does in ops.c), never on the loop; without a database URL, on the loop.
 *
 * Freeing (hr_gqlhub_free) ends every subscription without calling sinks; the memory waits for
 * the store operations in flight and the worker (their callbacks run, cancelled at the latest
 * when the store closes) and for the timers' close callbacks. */
#include "api/graphql_svc_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"

#define TICK_IDLE_MS 100
#define TICK_FAST_MS 5
#define TICK_HELD_MS 20 /* while a subscriber is held back by its socket */
#define MAX_CATCHUP_READS 8
#define FAST_FOR_US (300 * 1000ull) /* fast ticks for this long after activity */
#define TAIL_PAGE 1000
#define CATCHUP_PAGE 500
#define MAX_BATCH_SIZE 10000
#define STATS_EVERY_US (1000 * 1000ull)
#define UNFOUND_EVERY_US (500 * 1000ull) /* events not found yet are looked for again */

enum { SUB_STREAM, SUB_EVENT, SUB_STATS };

typedef struct group group_t;

struct hr_gqlsub {
    hr_gqlhub_t *h;
    int kind;
    hr_gql_op_t *op;
    hr_gql_sink_t sink;
    int dead; /* unsubscribed: freed at the next sweep (invariant 4) */
    hr_gqlsub_t *prev, *next;
    /* events_stream */
    char *key;
    json_t *where;  /* borrowed from op's arguments */
    size_t batch;   /* batch_size */
    group_t *group; /* at the tail: its group; NULL otherwise */
    int64_t pos;    /* not at the tail: the last seq sent (or the cursor) */
    int reading;    /* a catch-up read is in flight */
    /* event(id) and stats */
    char *event_id; /* lower case */
    int dirty;      /* to be read again and pushed if changed */
    int found;      /* the event was found at least once */
    char *last;     /* the last payload sent */
};

struct group {
    char *key;
    hr_gqlsub_t **members;
    size_t n, cap;
    group_t *next;
};

struct hr_gqlhub {
    hr_gqlsvc_t *svc;
    hr_api_ctx_t *ctx;
    hr_gqlsub_t *subs;
    size_t nstream, nevent, nstats;
    group_t *groups;
    hr_dispatcher_t *observed; /* the dispatcher our observer is set on */
    uv_timer_t tick, kick;
    int closing, handles; /* freeing: handles still open */
    int inflight;         /* store operations and worker jobs not called back yet */
    int calling;          /* depth of sink calls: unsubscribes only mark */
    int need_sweep;
    uint64_t active_us; /* last activity: fast ticks until active_us + FAST_FOR_US */
    /* the stream */
    int tail_known;
    int64_t tail, horizon;
    int probing, tail_reading;
    int catchup_reads; /* catch-up reads in flight (invariant 3) */
    size_t ntail;      /* stream subscribers in a group (at the tail) */
    int held;          /* a subscriber was held back by its socket at the last look */
    /* event(id) */
    uint64_t unfound_at_us;
    int unfound_due;
    /* stats */
    int stats_busy;
    uint64_t stats_at_us;
    json_t *stats; /* the latest statistics */
    uv_work_t work;
    hr_store_t *wstore; /* the worker's store */
    json_t *wresult;
    char *werror;
};

static void schedule_tick(hr_gqlhub_t *h, uint64_t ms);
static void on_kick(uv_timer_t *t);
static void catch_up_all(hr_gqlhub_t *h);
static void advance(hr_gqlhub_t *h);

/* ------------------------------------------------------------------------------------------ */
/* Subscribers and groups                                                                     */

static void sub_free(hr_gqlsub_t *s)
{
    hr_gql_op_free(s->op);
    free(s->key);
    free(s->event_id);
    free(s->last);
    free(s);
}

static void group_remove(hr_gqlhub_t *h, hr_gqlsub_t *s)
{
    group_t *g = s->group;
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        if (g->members[i] != s) continue;
        memmove(g->members + i, g->members + i + 1, (g->n - i - 1) * sizeof *g->members);
        g->n--;
        h->ntail--;
        break;
    }
    s->group = NULL;
    if (g->n) return;
    for (group_t **pp = &h->groups; *pp; pp = &(*pp)->next) {
        if (*pp != g) continue;
        *pp = g->next;
        break;
    }
    free(g->key);
    free(g->members);
    free(g);
}

static void group_join(hr_gqlhub_t *h, hr_gqlsub_t *s)
{
    group_t *g = h->groups;
    while (g && (!s->key || strcmp(g->key, s->key) != 0))
        g = g->next;
    if (!g) {
        g = hr_xcalloc(1, sizeof *g);
        /* A subscriber without a key shares with nobody: its group is keyed by its address. */
        g->key = s->key ? hr_xstrdup(s->key) : hr_xasprintf("#%p", (void *)s);
        g->next = h->groups;
        h->groups = g;
        hr_log(HR_LOG_DEBUG, "msg=\"graphql: events_stream group made\" tail=%" PRId64, h->tail);
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 4;
        g->members = hr_xrealloc(g->members, g->cap * sizeof *g->members);
    }
    g->members[g->n++] = s;
    s->group = g;
    h->ntail++;
}

/* Unlinks and frees s (never while a read of it is in flight or sinks are being called). */
static void sub_drop(hr_gqlhub_t *h, hr_gqlsub_t *s)
{
    group_remove(h, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    if (s->kind == SUB_STREAM) h->nstream--;
    if (s->kind == SUB_EVENT) h->nevent--;
    if (s->kind == SUB_STATS) h->nstats--;
    sub_free(s);
}

static void sweep(hr_gqlhub_t *h)
{
    if (h->calling || !h->need_sweep) return;
    h->need_sweep = 0;
    for (hr_gqlsub_t *s = h->subs, *next; s; s = next) {
        next = s->next;
        if (s->dead && !s->reading) sub_drop(h, s);
    }
}

/* Sends payload to s unless it is gone. */
static void push_to(hr_gqlsub_t *s, const char *payload, size_t len)
{
    if (s->dead) return;
    s->h->calling++;
    s->sink.next(s->sink.ud, payload, len);
    s->h->calling--;
}

/* The bytes waiting in s's socket. */
static size_t queued_of(const hr_gqlsub_t *s)
{
    return s->sink.queued ? s->sink.queued(s->sink.ud) : 0;
}

/* Moves s to the end of the list of subscribers (catch-up turns). */
static void sub_to_back(hr_gqlhub_t *h, hr_gqlsub_t *s)
{
    if (!s->next) return;
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    s->next->prev = s->prev;
    hr_gqlsub_t *last = s->next;
    while (last->next)
        last = last->next;
    last->next = s;
    s->prev = last;
    s->next = NULL;
}

/* Executes op on value once and returns the serialised result (caller frees). */
static char *execute(hr_gqlhub_t *h, hr_gql_op_t *op, json_t *value, size_t *len)
{
    json_t *res = hr_gql_execute_root(op, h->svc, value);
    char *s = json_dumps(res, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(res);
    if (!s) s = hr_xstrdup("{\"data\":null,\"errors\":[{\"message\":\"cannot serialise\"}]}");
    *len = strlen(s);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* events_stream                                                                              */

/* Hands events (ascending) to one group, or to one subscriber when g is NULL: filtered by the
 * where, in chunks of batch_size, each executed and serialised once. */
static void deliver(hr_gqlhub_t *h, group_t *g, hr_gqlsub_t *one, json_t *events)
{
    hr_gqlsub_t *first = g ? NULL : one;
    if (g)
        for (size_t i = 0; i < g->n && !first; i++)
            if (!g->members[i]->dead) first = g->members[i];
    if (!first) return;
    json_t *matches = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (!first->where || hr_store_where_match(first->where, e, NULL) == 1)
            json_array_append(matches, e);
    }
    size_t n = json_array_size(matches);
    for (size_t from = 0; from < n; from += first->batch) {
        json_t *chunk = json_array();
        for (size_t k = from; k < n && k < from + first->batch; k++)
            json_array_append(chunk, json_array_get(matches, k));
        size_t len;
        char *payload = execute(h, first->op, chunk, &len);
        json_decref(chunk);
        if (g) {
            /* Members unsubscribed meanwhile are only marked (invariant 4): push_to skips them. */
            for (size_t k = 0; k < g->n; k++)
                push_to(g->members[k], payload, len);
        } else {
            push_to(one, payload, len);
        }
        free(payload);
    }
    json_decref(matches);
}

typedef struct read_op {
    hr_gqlhub_t *h;
    hr_gqlsub_t *sub; /* NULL: the tail read */
    int64_t upto;
    size_t limit;
} read_op_t;

static void maybe_release(hr_gqlhub_t *h);

static void on_tail(void *ud, int rc, json_t *events, const char *msg)
{
    read_op_t *r = ud;
    hr_gqlhub_t *h = r->h;
    h->inflight--;
    h->tail_reading = 0;
    if (h->closing) {
        free(r);
        maybe_release(h);
        return;
    }
    if (rc) {
        if (rc != HR_ECANCELED)
            hr_log(HR_LOG_WARN,
                   "msg=\"graphql: reading the log for events_stream failed\""
                   " error=\"%s\"",
                   msg ? msg : "");
        free(r);
        return; /* T did not move: the next tick reads the same range again */
    }
    size_t n = json_array_size(events);
    hr_log(HR_LOG_DEBUG, "msg=\"graphql: tail read\" after=%" PRId64 " upto=%" PRId64 " n=%zu",
           h->tail, r->upto, n);
    int64_t upto = n == r->limit
                       ? json_integer_value(json_object_get(json_array_get(events, n - 1), "seq"))
                       : r->upto;
    free(r);
    if (n) {
        h->active_us = hr_mono_us();
        /* Members whose socket is full leave their group before this page: they catch up from
         * T on their own (the file's opening comment). */
        for (group_t *g = h->groups, *gnext; g; g = gnext) {
            gnext = g->next;
            for (size_t k = g->n; k-- > 0;) {
                hr_gqlsub_t *m = g->members[k];
                if (m->dead || queued_of(m) <= HR_GQL_SLOW_QUEUED) continue;
                hr_log(HR_LOG_DEBUG,
                       "msg=\"graphql: events_stream subscriber behind, leaves its group\""
                       " pos=%" PRId64,
                       h->tail);
                m->pos = h->tail;
                int last = g->n == 1;
                group_remove(h, m); /* frees g with its last member */
                h->held = 1;
                if (last) break;
            }
        }
        /* While sinks run, unsubscribes only mark (invariant 4): groups stay as they are. */
        h->calling++;
        for (group_t *g = h->groups; g; g = g->next)
            deliver(h, g, NULL, events);
        h->calling--;
    }
    h->tail = upto;
    sweep(h);
    advance(h);
}

static void on_catchup(void *ud, int rc, json_t *events, const char *msg)
{
    read_op_t *r = ud;
    hr_gqlhub_t *h = r->h;
    hr_gqlsub_t *s = r->sub;
    h->inflight--;
    h->catchup_reads--;
    if (h->closing) { /* s was freed with the hub's subscribers */
        free(r);
        maybe_release(h);
        return;
    }
    s->reading = 0;
    if (rc || s->dead) {
        if (rc && rc != HR_ECANCELED)
            hr_log(HR_LOG_WARN, "msg=\"graphql: catching up events_stream failed\" error=\"%s\"",
                   msg ? msg : "");
        free(r);
        if (s->dead) {
            h->need_sweep = 1;
            sweep(h);
        }
        return; /* pos did not move: tried again at the next tick */
    }
    size_t n = json_array_size(events);
    int64_t pos = n == r->limit
                      ? json_integer_value(json_object_get(json_array_get(events, n - 1), "seq"))
                      : r->upto;
    free(r);
    h->calling++;
    deliver(h, NULL, s, events);
    h->calling--;
    s->pos = pos;
    sub_to_back(h, s); /* the others' turn first */
    sweep(h);
    catch_up_all(h);
}

/* Moves every stream subscriber that is not at the tail one step: joins, reads or waits. */
static void catch_up_all(hr_gqlhub_t *h)
{
    if (!h->tail_known || h->closing) return;
    h->held = 0;
    if (h->ntail == h->nstream) return; /* everyone at the tail: the common case costs nothing */
    for (hr_gqlsub_t *s = h->subs, *next; s; s = next) {
        next = s->next;
        if (s->kind != SUB_STREAM || s->dead || s->group || s->reading) continue;
        if (s->pos == h->tail) {
            group_join(h, s);
        } else if (s->pos < h->tail) {
            if (queued_of(s) > HR_GQL_SLOW_QUEUED) {
                h->held = 1; /* its client reads first; looked at again at the next tick */
                continue;
            }
            if (h->catchup_reads >= MAX_CATCHUP_READS) continue; /* its turn comes */
            read_op_t *r = hr_xcalloc(1, sizeof *r);
            r->h = h;
            r->sub = s;
            r->upto = h->tail;
            r->limit = CATCHUP_PAGE;
            s->reading = 1;
            h->inflight++;
            h->catchup_reads++;
            if (h->ctx->ops->stream_read(h->ctx->store, s->pos, r->upto, r->limit, on_catchup, r) !=
                0) {
                s->reading = 0;
                h->inflight--;
                h->catchup_reads--;
                free(r);
            }
        }
        /* pos > tail: waits until the tail reaches it. */
    }
}

/* Reads the next tail page if the horizon is ahead of the tail (invariant 1). */
static void advance(hr_gqlhub_t *h)
{
    if (h->closing || !h->tail_known) return;
    if (!h->tail_reading && h->horizon > h->tail) {
        if (!h->groups) {
            h->tail = h->horizon; /* nobody at the tail: the others read on their own */
        } else {
            read_op_t *r = hr_xcalloc(1, sizeof *r);
            r->h = h;
            r->upto = h->horizon;
            r->limit = TAIL_PAGE;
            h->tail_reading = 1;
            h->inflight++;
            if (h->ctx->ops->stream_read(h->ctx->store, h->tail, r->upto, r->limit, on_tail, r) !=
                0) {
                h->tail_reading = 0;
                h->inflight--;
                free(r);
            }
        }
    }
    catch_up_all(h);
}

static void on_horizon(void *ud, int rc, int64_t horizon)
{
    hr_gqlhub_t *h = ud;
    h->inflight--;
    h->probing = 0;
    if (h->closing) {
        maybe_release(h);
        return;
    }
    if (rc || h->nstream == 0) return;
    if (!h->tail_known) {
        h->tail_known = 1;
        h->tail = h->horizon = horizon;
    }
    if (horizon > h->horizon) {
        hr_log(HR_LOG_DEBUG, "msg=\"graphql: horizon\" horizon=%" PRId64, horizon);
        h->horizon = horizon;
        h->active_us = hr_mono_us();
    }
    advance(h);
}

static void probe(hr_gqlhub_t *h)
{
    if (h->probing || h->closing || !h->ctx->ops->stream_horizon) return;
    h->probing = 1;
    h->inflight++;
    if (h->ctx->ops->stream_horizon(h->ctx->store, on_horizon, h) != 0) {
        h->probing = 0;
        h->inflight--;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* event(id)                                                                                  */

/* Reads every dirty event(id) subscriber's event once and pushes what changed. */

/* Live event(id) and stats: executes value for s and pushes the result only when it differs from
 * what s was sent last. */
static void push_if_changed(hr_gqlhub_t *h, hr_gqlsub_t *s, json_t *value)
{
    size_t len;
    char *payload = execute(h, s->op, value, &len);
    if (s->last && strcmp(s->last, payload) == 0) {
        free(payload);
        return;
    }
    free(s->last);
    s->last = payload;
    push_to(s, payload, len);
}

static void refresh_events(hr_gqlhub_t *h)
{
    json_t *cache = json_object(); /* id -> event or null, for this pass */
    h->calling++;
    for (hr_gqlsub_t *s = h->subs; s; s = s->next) {
        if (s->kind != SUB_EVENT || s->dead || !s->dirty) continue;
        s->dirty = 0;
        json_t *e = json_object_get(cache, s->event_id);
        if (!e) {
            int notfound = 0;
            char *error = NULL;
            e = hr_gqlsvc_load_event(h->svc, s->event_id, &notfound, &error);
            if (!e && !notfound) {
                hr_log(HR_LOG_WARN,
                       "event=%s msg=\"graphql: reading the event failed\""
                       " error=\"%s\"",
                       s->event_id, error ? error : "");
                free(error);
                s->dirty = 1; /* looked at again with the unfound ones */
                continue;
            }
            json_object_set_new(cache, s->event_id, e ? e : json_null());
            e = json_object_get(cache, s->event_id);
        }
        if (json_is_null(e)) continue; /* not there yet: nothing is pushed (docs/graphql.md) */
        s->found = 1;
        push_if_changed(h, s, e);
    }
    h->calling--;
    json_decref(cache);
    sweep(h);
}

static void mark_event(hr_gqlhub_t *h, const char *id)
{
    int any = 0;
    for (hr_gqlsub_t *s = h->subs; s; s = s->next)
        if (s->kind == SUB_EVENT && !s->dead && strcasecmp(s->event_id, id) == 0)
            s->dirty = any = 1;
    if (any && !uv_is_active((uv_handle_t *)&h->kick)) uv_timer_start(&h->kick, on_kick, 0, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* stats                                                                                      */

static void push_stats(hr_gqlhub_t *h)
{
    if (!h->stats) return;
    h->calling++;
    for (hr_gqlsub_t *s = h->subs; s; s = s->next) {
        if (s->kind != SUB_STATS || s->dead) continue;
        push_if_changed(h, s, h->stats);
    }
    h->calling--;
    sweep(h);
}

static void stats_work(uv_work_t *w)
{
    hr_gqlhub_t *h = w->data;
    const hr_store_ops_t *ops = hr_store_ops_for_url(h->ctx->database_url);
    hr_err_t err = {0};
    h->wresult = NULL;
    h->werror = NULL;
    if (!ops) {
        h->werror = hr_xstrdup("unknown database URL");
        return;
    }
    if (!h->wstore && ops->open(h->ctx->database_url, NULL, &h->wstore, &err) != 0) {
        h->wstore = NULL;
        h->werror = hr_xstrdup(err.msg);
        return;
    }
    h->wresult = hr_gqlsvc_load_stats(ops, h->wstore, &err);
    if (!h->wresult) h->werror = hr_xstrdup(err.msg);
}

static void stats_done(uv_work_t *w, int status)
{
    hr_gqlhub_t *h = w->data;
    h->inflight--;
    h->stats_busy = 0;
    h->stats_at_us = hr_mono_us();
    json_t *res = h->wresult;
    h->wresult = NULL;
    if (h->closing) {
        json_decref(res);
        free(h->werror);
        h->werror = NULL;
        maybe_release(h);
        return;
    }
    if (!res) {
        hr_log(HR_LOG_WARN, "msg=\"graphql: computing the statistics failed\" error=\"%s\"",
               h->werror ? h->werror : (status ? "cancelled" : ""));
        free(h->werror);
        h->werror = NULL;
        return;
    }
    json_decref(h->stats);
    h->stats = res;
    push_stats(h);
}

static void refresh_stats(hr_gqlhub_t *h)
{
    if (h->stats_busy || h->closing) return;
    if (!h->ctx->database_url) {
        hr_err_t err = {0};
        json_t *res = hr_gqlsvc_load_stats(h->ctx->ops, h->ctx->store, &err);
        h->stats_at_us = hr_mono_us();
        if (!res) {
            hr_log(HR_LOG_WARN, "msg=\"graphql: computing the statistics failed\" error=\"%s\"",
                   err.msg);
            return;
        }
        json_decref(h->stats);
        h->stats = res;
        push_stats(h);
        return;
    }
    h->stats_busy = 1;
    h->inflight++;
    h->work.data = h;
    if (uv_queue_work(h->ctx->loop, &h->work, stats_work, stats_done) != 0) {
        h->stats_busy = 0;
        h->inflight--;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Waking up                                                                                  */

static void on_note(void *ud, const hr_dispatch_note_t *note)
{
    hr_gqlhub_t *h = ud;
    if (h->closing) return;
    if (note->kind == HR_NOTE_READ) {
        h->active_us = hr_mono_us();
        if (h->nstream && note->last_seq > h->horizon) schedule_tick(h, 0);
        if (h->nevent) h->unfound_due = 1;
        return;
    }
    if (h->nevent)
        for (size_t i = 0; i < note->n; i++)
            if (note->recs[i].event_id) mark_event(h, note->recs[i].event_id);
}

static void observe(hr_gqlhub_t *h)
{
    hr_dispatcher_t *d = h->ctx->dispatcher;
    if (d == h->observed) return;
    if (d) hr_dispatcher_observe(d, on_note, h);
    h->observed = d;
}

static void on_kick(uv_timer_t *t)
{
    hr_gqlhub_t *h = t->data;
    if (h->closing) return;
    refresh_events(h);
    if (h->nstats) push_stats(h); /* new subscribers get the latest values at once */
}

static void on_tick(uv_timer_t *t)
{
    hr_gqlhub_t *h = t->data;
    if (h->closing) return;
    observe(h);
    uint64_t now = hr_mono_us();
    if (h->nstream) probe(h);
    if (h->nevent && (h->unfound_due || now - h->unfound_at_us >= UNFOUND_EVERY_US)) {
        int any = 0;
        h->unfound_due = 0;
        h->unfound_at_us = now;
        for (hr_gqlsub_t *s = h->subs; s; s = s->next)
            if (s->kind == SUB_EVENT && !s->found && !s->dead) s->dirty = any = 1;
        if (any) refresh_events(h);
    }
    if (h->nstats && now - h->stats_at_us >= STATS_EVERY_US) refresh_stats(h);
    if (h->nstream || h->nevent || h->nstats)
        schedule_tick(h, now - h->active_us < FAST_FOR_US ? TICK_FAST_MS
                         : h->held                        ? TICK_HELD_MS
                                                          : TICK_IDLE_MS);
}

static void schedule_tick(hr_gqlhub_t *h, uint64_t ms)
{
    if (h->closing) return;
    if (uv_is_active((uv_handle_t *)&h->tick) && uv_timer_get_due_in(&h->tick) <= ms) return;
    uv_timer_start(&h->tick, on_tick, ms, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                 */

hr_gqlhub_t *hr_gqlhub_new(hr_gqlsvc_t *svc)
{
    hr_gqlhub_t *h = hr_xcalloc(1, sizeof *h);
    h->svc = svc;
    h->ctx = svc->ctx;
    uv_timer_init(h->ctx->loop, &h->tick);
    uv_timer_init(h->ctx->loop, &h->kick);
    h->tick.data = h->kick.data = h;
    h->handles = 2;
    return h;
}

static void maybe_release(hr_gqlhub_t *h)
{
    if (!h->closing || h->handles || h->inflight) return;
    if (h->wstore) {
        const hr_store_ops_t *ops = hr_store_ops_for_url(h->ctx->database_url);
        if (ops) ops->close(h->wstore, NULL, NULL);
    }
    json_decref(h->stats);
    free(h);
}

static void on_closed(uv_handle_t *handle)
{
    hr_gqlhub_t *h = handle->data;
    h->handles--;
    maybe_release(h);
}

void hr_gqlhub_free(hr_gqlhub_t *h)
{
    if (!h) return;
    h->closing = 1;
    if (h->observed && h->ctx->dispatcher == h->observed)
        hr_dispatcher_observe(h->observed, NULL, NULL);
    while (h->subs) {
        hr_gqlsub_t *s = h->subs;
        h->subs = s->next;
        group_remove(h, s);
        sub_free(s); /* reads in flight only look at the hub once it is closing */
    }
    uv_close((uv_handle_t *)&h->tick, on_closed);
    uv_close((uv_handle_t *)&h->kick, on_closed);
}

/* ------------------------------------------------------------------------------------------ */
/* Subscribing                                                                                */

static int refuse(json_t **errors, const char *msg)
{
    *errors = json_pack("[{s:s, s:{s:s}}]", "message", msg, "extensions", "code", "BAD_USER_INPUT");
    return HR_EINVAL;
}

/* The cursor and batch size of an events_stream subscription. */
static int stream_args(hr_gqlsub_t *s, json_t *args, json_t **errors)
{
    json_t *cursor = json_object_get(args, "cursor");
    if (json_is_array(cursor)) {
        if (json_array_size(cursor) != 1)
            return refuse(errors, "cursor: exactly one cursor (on seq) is supported");
        cursor = json_array_get(cursor, 0);
    }
    const char *ordering = json_string_value(json_object_get(cursor, "ordering"));
    if (ordering && strcmp(ordering, "ASC") != 0)
        return refuse(errors, "cursor.ordering: only ASC is supported (a stream of new events"
                              " goes forward)");
    json_t *seq = json_object_get(json_object_get(cursor, "initial_value"), "seq");
    if (json_is_integer(seq)) {
        s->pos = json_integer_value(seq);
    } else if (json_is_string(seq)) {
        char *end = NULL;
        s->pos = strtoll(json_string_value(seq), &end, 10);
        if (!*json_string_value(seq) || *end)
            return refuse(errors, "cursor.initial_value.seq: expected an integer");
    } else if (!seq || json_is_null(seq)) {
        s->pos = 0;
    } else {
        return refuse(errors, "cursor.initial_value.seq: expected an integer");
    }
    if (s->pos < 0) return refuse(errors, "cursor.initial_value.seq: expected 0 or more");
    json_t *bs = json_object_get(args, "batch_size");
    if (!json_is_integer(bs) || json_integer_value(bs) < 1 ||
        json_integer_value(bs) > MAX_BATCH_SIZE)
        return refuse(errors, "batch_size: expected 1 to 10000");
    s->batch = (size_t)json_integer_value(bs);
    json_t *where = json_object_get(args, "where");
    if (where && !json_is_null(where)) {
        /* Checked once on a sample event: the expression is evaluated whole, so a bad part
         * fails here rather than on some event later. */
        json_t *sample = json_pack("{s:I, s:s, s:s, s:s, s:s}", "seq", (json_int_t)0, "id",
                                   "00000000-0000-0000-0000-000000000000", "source", "", "op", "",
                                   "created_at", "1970-01-01T00:00:00.000000Z");
        hr_err_t err = {0};
        int rc = hr_store_where_match(where, sample, &err);
        json_decref(sample);
        if (rc < 0) return refuse(errors, err.msg);
        s->where = where;
    }
    return 0;
}

int hr_gqlhub_subscribe(hr_gqlhub_t *h, hr_gql_op_t *op, char *key, const hr_gql_sink_t *sink,
                        hr_gqlsub_t **out, json_t **errors)
{
    hr_gql_root_t root;
    hr_gql_op_root(op, &root);
    hr_gqlsub_t *s = hr_xcalloc(1, sizeof *s);
    s->h = h;
    s->op = op;
    s->key = key;
    s->sink = *sink;
    int rc = 0;
    if (strcmp(root.field, "events_stream") == 0) {
        s->kind = SUB_STREAM;
        if (!h->ctx->ops->stream_read || !h->ctx->ops->stream_horizon)
            rc = refuse(errors, "events_stream: this store cannot stream");
        else
            rc = stream_args(s, root.args, errors);
    } else if (strcmp(root.field, "event") == 0) {
        s->kind = SUB_EVENT;
        const char *id = json_string_value(json_object_get(root.args, "id"));
        int ok = id && strlen(id) == 36;
        for (size_t i = 0; ok && i < 36; i++)
            ok = (i == 8 || i == 13 || i == 18 || i == 23)
                     ? id[i] == '-'
                     : strchr("0123456789abcdefABCDEF", id[i]) != NULL;
        if (!ok) {
            rc = refuse(errors, "id: not a uuid");
        } else {
            s->event_id = hr_xstrdup(id);
            for (char *c = s->event_id; *c; c++)
                if (*c >= 'A' && *c <= 'F') *c = (char)(*c - 'A' + 'a');
            s->dirty = 1;
        }
    } else if (strcmp(root.field, "stats") == 0) {
        s->kind = SUB_STATS;
    } else {
        rc = refuse(errors, "unknown subscription field");
    }
    if (rc) {
        sub_free(s);
        return rc;
    }
    s->next = h->subs;
    if (h->subs) h->subs->prev = s;
    h->subs = s;
    observe(h);
    if (s->kind == SUB_STREAM) {
        h->nstream++;
        h->active_us = hr_mono_us();
        if (h->tail_known)
            catch_up_all(h);
        else
            schedule_tick(h, 0); /* the first probe sets the tail */
    } else if (s->kind == SUB_EVENT) {
        h->nevent++;
        uv_timer_start(&h->kick, on_kick, 0, 0); /* the first push, after this returns */
    } else {
        h->nstats++;
        if (h->stats) uv_timer_start(&h->kick, on_kick, 0, 0);
        schedule_tick(h, 0); /* recomputed now if older than a second */
    }
    schedule_tick(h, TICK_IDLE_MS);
    *out = s;
    return 0;
}

void hr_gqlhub_unsubscribe(hr_gqlsub_t *s)
{
    if (!s || s->dead) return;
    hr_gqlhub_t *h = s->h;
    s->dead = 1; /* push_to() skips it from now on; freed by the sweep (invariant 4) */
    h->need_sweep = 1;
    sweep(h);
}

void hr_gqlhub_event_changed(hr_gqlhub_t *h, const char *id)
{
    if (h && !h->closing && h->nevent) mark_event(h, id);
}

void hr_gqlhub_counts(const hr_gqlhub_t *h, hr_gqlsvc_counts_t *out)
{
    out->events_stream = h->nstream;
    out->event = h->nevent;
    out->stats = h->nstats;
}
