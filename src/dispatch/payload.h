/* payload.h: the request body a trigger sends for an event (Hasura-compatible).
 *
 * {"id","created_at","trigger":{"name"},"table":{"schema","name"} (null for emitted events),
 *  "event":{"op","data":{"old","new"},"session_variables","trace_context":null[,"type"]},
 *  "delivery_info":{"max_retries","current_retry"}}
 * With t->payload set, old and new keep only those columns. Emitted events carry "type". */
#ifndef HR_PAYLOAD_H
#define HR_PAYLOAD_H

#include "core/buf.h"
#include "dispatch/event.h"

/* Appends the body to out. current_retry = attempts made before this one. */
int hr_payload_build(const hr_trigger_def_t *t, const hr_event_t *ev, int current_retry,
                     hr_buf_t *out);

#endif
