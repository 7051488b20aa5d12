/* payload.h: the request body a trigger sends for an event (Hasura-compatible).
 *
 * {"id","created_at","trigger":{"name"},"table":{"schema","name"} (null for emitted events),
 *  "event":{"op","data":{"old","new"},"session_variables","trace_context":null[,"type"]},
 *  "delivery_info":{"max_retries","current_retry"}}
 * With t->payload set, old and new keep only those columns. Emitted events carry "type". */
#ifndef HR_PAYLOAD_H
#define HR_PAYLOAD_H

#include <stdint.h>

#include "core/buf.h"
#include "dispatch/event.h"

/* Appends the body to out. current_retry = attempts made before this one. */
int hr_payload_build(const hr_trigger_def_t *t, const hr_event_t *ev, int current_retry,
                     hr_buf_t *out);

/* The body of a scheduled event (HASURA-COMPAT.md, "Scheduled event request"): for a fire of
 * schedule t (op CRON) {"id","name","scheduled_time","payload","comment"}; for a one-off event
 * (op ONE_OFF) {"id","scheduled_time","payload","comment","created_at"}; the values come from
 * the event's new ({"scheduled_time","payload","comment"[,"created_at"]}), missing ones are
 * null. HR_EINVAL (nothing appended) when new is not a JSON object. */
int hr_payload_build_scheduled(const hr_trigger_def_t *t, const hr_event_t *ev, hr_buf_t *out);
/* The Unix time (seconds) of new.scheduled_time ("2026-11-23T12:00:00Z", fraction allowed), or
 * HR_EINVAL when it is missing or not in that form. */
int hr_payload_scheduled_time(const hr_event_t *ev, int64_t *unix_s);
/* The delivery settings a one-off event (op ONE_OFF) carries in its new: {"webhook",
 * "headers": [{"name","value"}], "retry": {"num_retries","retry_interval_seconds",
 * "timeout_seconds","tolerance_seconds"}} into def (name HR_ONE_OFF_TRIGGER, fixed backoff):
 * webhook, headers, retry and tolerance_ms; missing ones take Hasura's scheduled defaults (0
 * retries, 10 s, 60 s, 6 h). HR_EINVAL (def cleared) when new is not an object or has no
 * webhook. The caller clears def with hr_trigger_def_clear. */
int hr_payload_one_off_def(const hr_event_t *ev, hr_trigger_def_t *def);

#endif
