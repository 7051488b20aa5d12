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
    size_t page_size;         /* events read per page; default 500 */
    uint64_t poll_min_us;     /* fastest poll while events keep coming; default 1 ms */
    uint64_t poll_max_us;     /* slowest idle poll; default 100 ms */
    uint64_t defs_check_ms;   /* how often stored definitions are checked for changes; 1 s */
} hr_dispatch_opts_t;

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
/* Graceful stop: no new reads; pages in flight finish and settle within grace_ms, after which
 * outstanding requests are cancelled (their events are delivered again on the next start).
 * Closes the loop handles, frees d, then calls done(ud). The store is not closed. */
void hr_dispatcher_close(hr_dispatcher_t *d, uint64_t grace_ms, void (*done)(void *ud), void *ud);

#endif
