/* scheduler.c: fires the schedules on the loop (see scheduler.h).
 *
 *   sync() ──new schedule──► catch_up(): last_fire .. now, the latest HR_SCHED_CATCHUP_MAX fires
 *      │                                      │ fire_one() each
 *      └──────► arm(): one timer to the earliest next fire ◄──┘
 *                         │ on_timer(): fire_one() every schedule whose next fire is due
 *                         └──► arm()
 *
 * Invariants:
 *   1. A fire is written through ops->fire, which writes each (schedule, time) to the log at
 *      most once; so firing again after a restart or from a second process is harmless.
 *   2. next_s only moves past a fire once that fire was written; when writing fails (the
 *      database is down) the same fire is tried again a second later.
 *   3. The store calls are synchronous: one short statement per fire, at most a few a minute.
 *
 * Times are Unix seconds on the schedules' clock (hr_sched_now_us), which tests shift with
 * HERALD_TEST_CLOCK_OFFSET. */
#include "sched/scheduler.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "sched/cron.h"

#define RETRY_MS 1000
/* Re-arm at least this often, so that a jump of the wall clock is noticed. */
#define MAX_SLEEP_MS 60000

typedef struct sched {
    char *name;
    char *cron_text;
    char *payload; /* JSON text or NULL */
    char *comment;
    hr_cron_t cron;
    int64_t next_s; /* next fire; INT64_MAX when it never fires */
    int seen;       /* marked by sync */
    struct sched *next;
} sched_t;

struct hr_scheduler {
    uv_loop_t *loop;
    const hr_store_ops_t *ops;
    hr_store_t *store;
    uv_timer_t timer;
    sched_t *list;
    void (*fired)(void *ud);
    void *ud;
    void (*done)(void *ud);
    void *done_ud;
};

int64_t hr_sched_now_us(void)
{
    /* Read once: the environment does not change while herald runs. */
    static int64_t offset_us = -1;
    static int known = 0;
    if (!known) {
        const char *v = getenv("HERALD_TEST_CLOCK_OFFSET");
        offset_us = v && *v ? strtoll(v, NULL, 10) * 1000000 : 0;
        known = 1;
    }
    return hr_wall_us() + offset_us;
}

static void fmt_time(int64_t s, char out[32])
{
    hr_format_rfc3339_us(s * 1000000, out, 32);
    /* Whole minutes: "2026-11-23T12:00:00Z" rather than ".000000Z". */
    char *dot = strchr(out, '.');
    if (dot) strcpy(dot, "Z");
}

char *hr_sched_fire_json(const hr_trigger_def_t *def, int64_t fire_at_s)
{
    char at[32];
    fmt_time(fire_at_s, at);
    json_t *o = json_object();
    json_object_set_new(o, "scheduled_time", json_string(at));
    json_t *p = def->cron_payload ? json_loads(def->cron_payload, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "payload", p ? p : json_null());
    json_object_set_new(o, "comment", def->comment ? json_string(def->comment) : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static int64_t next_after(const sched_t *e, int64_t after_s)
{
    int64_t n;
    return hr_cron_next(&e->cron, after_s, &n) == 0 ? n : INT64_MAX;
}

/* Writes fire at_s of e; 0 or an error (logged). */
static int fire_one(hr_scheduler_t *s, sched_t *e, int64_t at_s)
{
    hr_trigger_def_t def = {.cron_payload = e->payload, .comment = e->comment};
    char *json = hr_sched_fire_json(&def, at_s), when[32];
    hr_err_t err = {0};
    int written = 0;
    int rc = s->ops->fire(s->store, e->name, at_s, json, &written, &err);
    free(json);
    fmt_time(at_s, when);
    if (rc) {
        hr_log(HR_LOG_WARN,
               "schedule=%s msg=\"recording a fire failed; trying again\" at=%s "
               "error=\"%s\"",
               e->name, when, err.msg);
        return rc;
    }
    hr_log(written ? HR_LOG_INFO : HR_LOG_DEBUG, "schedule=%s msg=\"%s\" at=%s", e->name,
           written ? "fired" : "fire already recorded", when);
    if (written && s->fired) s->fired(s->ud);
    return 0;
}

/* Fires every fire of e from after_s (exclusive) up to now, the latest HR_SCHED_CATCHUP_MAX
 * of them; leaves e->next_s at the first one not written. */
static void catch_up(hr_scheduler_t *s, sched_t *e, int64_t after_s, int64_t now_s)
{
    int64_t ring[HR_SCHED_CATCHUP_MAX];
    uint64_t total = 0;
    for (int64_t t = next_after(e, after_s); t <= now_s; t = next_after(e, t))
        ring[total++ % HR_SCHED_CATCHUP_MAX] = t;
    uint64_t keep = total < HR_SCHED_CATCHUP_MAX ? total : HR_SCHED_CATCHUP_MAX;
    if (total > keep)
        hr_log(HR_LOG_WARN,
               "schedule=%s msg=\"missed fires not caught up (only the latest %d "
               "are)\" skipped=%" PRIu64,
               e->name, HR_SCHED_CATCHUP_MAX, total - keep);
    else if (total)
        hr_log(HR_LOG_INFO, "schedule=%s msg=\"catching up missed fires\" count=%" PRIu64, e->name,
               total);
    for (uint64_t k = total - keep; k < total; k++) {
        int64_t t = ring[k % HR_SCHED_CATCHUP_MAX];
        if (fire_one(s, e, t)) {
            e->next_s = t; /* the timer tries again, and continues from there */
            return;
        }
    }
    e->next_s = next_after(e, now_s);
}

static void on_timer(uv_timer_t *t);

static void arm(hr_scheduler_t *s)
{
    int64_t now_us = hr_sched_now_us(), first = INT64_MAX;
    for (sched_t *e = s->list; e; e = e->next)
        if (e->next_s < first) first = e->next_s;
    uint64_t ms = MAX_SLEEP_MS;
    if (first != INT64_MAX) {
        int64_t d = first * 1000 - now_us / 1000;
        ms = d <= 0 ? 0 : (uint64_t)d < ms ? (uint64_t)d : ms;
    }
    uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t)
{
    hr_scheduler_t *s = t->data;
    int64_t now_s = hr_sched_now_us() / 1000000;
    int failed = 0;
    for (sched_t *e = s->list; e; e = e->next) {
        /* Normally one fire is due; after a suspend of the machine, catch up. */
        if (e->next_s > now_s) continue;
        if (next_after(e, e->next_s) <= now_s) {
            catch_up(s, e, e->next_s - 1, now_s);
            failed |= e->next_s <= now_s;
        } else if (fire_one(s, e, e->next_s) == 0) {
            e->next_s = next_after(e, e->next_s);
        } else {
            failed = 1;
        }
    }
    if (failed)
        uv_timer_start(&s->timer, on_timer, RETRY_MS, 0);
    else
        arm(s);
}

static void sched_free(sched_t *e)
{
    free(e->name);
    free(e->cron_text);
    free(e->payload);
    free(e->comment);
    free(e);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static void set_def(sched_t *e, const hr_trigger_def_t *d)
{
    hr_err_t err = {0};
    free(e->cron_text);
    free(e->payload);
    free(e->comment);
    e->cron_text = hr_xstrdup(d->cron);
    e->payload = d->cron_payload ? hr_xstrdup(d->cron_payload) : NULL;
    e->comment = d->comment ? hr_xstrdup(d->comment) : NULL;
    if (hr_cron_parse(d->cron, &e->cron, &err)) {
        /* Validated when stored; a definition from a newer herald might still say more. */
        hr_log(HR_LOG_ERROR, "schedule=%s msg=\"invalid cron; not firing\" error=\"%s\"", d->name,
               err.msg);
        memset(&e->cron, 0, sizeof e->cron);
    }
}

hr_scheduler_t *hr_scheduler_new(uv_loop_t *loop, const hr_store_ops_t *ops, hr_store_t *store,
                                 void (*fired)(void *ud), void *ud)
{
    hr_scheduler_t *s = hr_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->ops = ops;
    s->store = store;
    s->fired = fired;
    s->ud = ud;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    return s;
}

void hr_scheduler_sync(hr_scheduler_t *s, const hr_trigger_def_t *defs, size_t n)
{
    if (!s->ops->fire || !s->ops->last_fire) return;
    int64_t now_s = hr_sched_now_us() / 1000000;
    for (sched_t *e = s->list; e; e = e->next)
        e->seen = 0;
    for (size_t i = 0; i < n; i++) {
        const hr_trigger_def_t *d = &defs[i];
        if (!d->cron) continue;
        sched_t *e = s->list;
        while (e && strcmp(e->name, d->name))
            e = e->next;
        if (e) {
            e->seen = 1;
            if (same(e->cron_text, d->cron) && same(e->payload, d->cron_payload) &&
                same(e->comment, d->comment))
                continue;
            /* A changed schedule affects future fires only. */
            set_def(e, d);
            e->next_s = next_after(e, now_s);
            hr_log(HR_LOG_INFO, "schedule=%s msg=\"definition updated\" cron=\"%s\"", e->name,
                   e->cron_text);
            continue;
        }
        e = hr_xcalloc(1, sizeof *e);
        e->name = hr_xstrdup(d->name);
        e->seen = 1;
        set_def(e, d);
        e->next = s->list;
        s->list = e;
        int64_t last = now_s;
        hr_err_t err = {0};
        int rc = s->ops->last_fire(s->store, e->name, &last, &err);
        if (rc && rc != HR_ENOTFOUND)
            hr_log(HR_LOG_WARN,
                   "schedule=%s msg=\"cannot read its last fire; not catching up\" "
                   "error=\"%s\"",
                   e->name, err.msg);
        if (rc) last = now_s;
        catch_up(s, e, last, now_s);
        char when[32] = "never";
        if (e->next_s != INT64_MAX) fmt_time(e->next_s, when);
        hr_log(HR_LOG_INFO, "schedule=%s msg=scheduling cron=\"%s\" next=%s", e->name, e->cron_text,
               when);
    }
    for (sched_t **pp = &s->list; *pp;) {
        sched_t *e = *pp;
        if (e->seen) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        hr_log(HR_LOG_INFO, "schedule=%s msg=\"stopped (definition removed)\"", e->name);
        sched_free(e);
    }
    arm(s);
}

static void on_closed(uv_handle_t *h)
{
    hr_scheduler_t *s = h->data;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    while (s->list) {
        sched_t *e = s->list;
        s->list = e->next;
        sched_free(e);
    }
    free(s);
    if (done) done(ud);
}

void hr_scheduler_close(hr_scheduler_t *s, void (*done)(void *ud), void *ud)
{
    s->done = done;
    s->done_ud = ud;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_closed);
}
