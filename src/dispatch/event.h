/* event.h: one log event as the dispatcher sees it, and trigger matching.
 *
 * All strings are borrowed (they usually point into a database result). JSON members are JSON
 * text exactly as the database printed it, or NULL for SQL NULL. */
#ifndef HR_EVENT_H
#define HR_EVENT_H

#include <stdint.h>

#include "config/config.h"

/* The built-in pseudo-trigger of one-off scheduled events (create_scheduled_event). It is never
 * in a configuration and never listed as a trigger ('@' is not allowed in trigger names). Its
 * events (op ONE_OFF, source "@one_off") reach it only through the delayed queue: the log reader
 * never reads them. */
#define HR_ONE_OFF_TRIGGER "@one_off"

typedef struct hr_event {
    int64_t seq;
    const char *id;           /* uuid text */
    const char *created_at;   /* RFC 3339 UTC, e.g. 2026-11-23T12:00:00.123456Z */
    const char *schema;       /* NULL for emitted (custom) events */
    const char *table;        /* NULL for emitted events */
    const char *op;           /* INSERT | UPDATE | DELETE | MANUAL | EMIT */
    const char *type;         /* emitted event type; NULL otherwise */
    const char *old_json;     /* row before (UPDATE, DELETE) */
    const char *new_json;     /* row after (INSERT, UPDATE), or the payload (MANUAL, EMIT) */
    const char *session_json; /* session variables object, or NULL */
} hr_event_t;

/* 1 if trigger t must deliver ev: table and op match (table triggers), or the type matches one
 * of t->events (a trailing '*' matches a prefix); an UPDATE with t->columns set matches only if
 * one of those columns differs between old and new (JSON equality). 0 otherwise. */
int hr_event_matches(const hr_trigger_def_t *t, const hr_event_t *ev);

#endif
