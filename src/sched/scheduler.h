/* scheduler.h: turns the schedules' cron expressions into log events, exactly once per fire.
 *
 * The scheduler runs on the dispatcher's loop with one timer, armed for the earliest next fire
 * across schedules. At each fire it writes the event through the store's fire operation (op
 * CRON, source = the schedule's name; herald.fires makes the write happen once even when
 * several herald processes run the same schedule), then the dispatcher delivers it like any
 * other event. A schedule seen for the first time (at start, or created while running) first
 * catches up: the fires after its latest recorded fire (or its creation) up to now, at most
 * HR_SCHED_CATCHUP_MAX of them, the latest ones; older missed fires are only counted in a log
 * line. Whether a late fire is still sent is the dispatcher's tolerance check, not ours. */
#ifndef HR_SCHEDULER_H
#define HR_SCHEDULER_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "store/store.h"

#define HR_SCHED_CATCHUP_MAX 100

typedef struct hr_scheduler hr_scheduler_t;

/* A new scheduler with no schedules; fired(ud) runs after each fire written (may be NULL). */
hr_scheduler_t *hr_scheduler_new(uv_loop_t *loop, const hr_store_ops_t *ops, hr_store_t *store,
                                 void (*fired)(void *ud), void *ud);
/* Makes the running schedules those of defs[0..n) that have cron set (others are ignored): a
 * new one catches up, then fires; a changed one (cron, payload or comment) fires from now on
 * by its new definition; a missing one stops. defs are borrowed. */
void hr_scheduler_sync(hr_scheduler_t *s, const hr_trigger_def_t *defs, size_t n);
/* Stops the timer, closes it and frees s; done(ud) afterwards (on the loop). */
void hr_scheduler_close(hr_scheduler_t *s, void (*done)(void *ud), void *ud);

/* The clock of schedules: wall-clock time plus HERALD_TEST_CLOCK_OFFSET seconds (a testing aid,
 * an integer that may be negative; unset: 0), so that tests need not wait for real minutes. */
int64_t hr_sched_now_us(void);
/* The log event's new for fire fire_at_s of def: {"scheduled_time","payload","comment"}. A new
 * string. */
char *hr_sched_fire_json(const hr_trigger_def_t *def, int64_t fire_at_s);

#endif
