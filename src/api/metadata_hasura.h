/* metadata_hasura.h: Hasura's metadata shapes to herald's trigger definitions and back, and the
 * store's event and attempt JSON to Hasura's event and invocation log rows.
 *
 * Pure functions (no I/O, no logging), used by the metadata API (metadata.c) and golden-tested
 * by tests/unit/test_metadata.c. Readers are strict: an unknown field, a wrong type or a value
 * herald cannot express fails with Hasura's error code and the JSON path of the culprit, e.g.
 * parse-failed at "$.args.retry_conf.num_retries". How each Hasura field maps is written in
 * docs/api.md. */
#ifndef HR_METADATA_HASURA_H
#define HR_METADATA_HASURA_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define HR_MD_PATH_MAX 512

/* Why a metadata call failed, as Hasura's error envelope {"code", "error", "path"} says it. */
typedef struct hr_md_err {
    int status;                /* HTTP status: 400 for the client's mistakes, 401, 500 */
    const char *code;          /* "parse-failed", "validation-failed", "not-exists", ... */
    char path[HR_MD_PATH_MAX]; /* JSON path of the culprit in the request, "$" for the whole */
    char msg[1024];
} hr_md_err_t;

/* Fills e (which may be NULL) and returns -1. */
int hr_md_fail(hr_md_err_t *e, int status, const char *code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* path followed by a member: "$.args" + "name" is "$.args.name"; a key that is not an
 * identifier is written "$.args['x-y']". */
void hr_md_path_key(char *out, size_t n, const char *path, const char *key);
/* path followed by an index: "$.args[3]". */
void hr_md_path_index(char *out, size_t n, const char *path, size_t i);

/* Reads the args of pg_create_event_trigger (path names them, e.g. "$.args") into def and
 * *replace. On failure def is left cleared. The table and columns are not checked against the
 * database here: the store does that. */
int hr_md_trigger_from_create(const json_t *args, const char *path, hr_trigger_def_t *def,
                              int *replace, hr_md_err_t *e);

/* Reads a whole metadata document (export_metadata's answer, replace_metadata's args) into a
 * new array of definitions (*defs, *n; the caller clears each and frees the array; *defs may be
 * NULL when *n is 0). *has_custom is 1 when the document carries herald's extension "herald"
 * (triggers on custom events), 0 when it says nothing about them; *has_cron (may be NULL) 1 when
 * it has "cron_triggers" (read as schedules: definitions with cron set), 0 when it says nothing
 * about schedules. */
int hr_md_defs_from_metadata(const json_t *md, const char *path, hr_trigger_def_t **defs, size_t *n,
                             int *has_custom, int *has_cron, hr_md_err_t *e);

/* Hasura's metadata (version 3) holding defs: table triggers in sources[0] ("default", of the
 * given kind), triggers on custom events in herald's extension, schedules (cron set) in
 * cron_triggers (left out when there are none). A new reference. */
json_t *hr_md_metadata_from_defs(const hr_trigger_def_t *defs, size_t n, const char *kind);
/* One definition in the shape of an exported event trigger (for a trigger on custom events, the
 * shape of herald's extension; for a schedule, hr_md_cron_to_json's). A new reference. */
json_t *hr_md_trigger_to_json(const hr_trigger_def_t *def);

/* --- Cron triggers and one-off scheduled events (metadata_sched.c) --- */

/* Reads the args of create_cron_trigger into def (a schedule: cron set) and *replace: name,
 * webhook, schedule (validation-failed at ….schedule for a bad cron string), payload, headers,
 * retry_conf in the scheduled shape {num_retries (0), retry_interval_seconds (10),
 * timeout_seconds (60), tolerance_seconds (21600)} plus herald's backoff and
 * max_interval_seconds, include_in_metadata, comment, herald {secret, concurrency}. On failure
 * def is left cleared. */
int hr_md_cron_from_create(const json_t *args, const char *path, hr_trigger_def_t *def,
                           int *replace, hr_md_err_t *e);
/* The same for one entry of an exported cron_triggers (no replace). */
int hr_md_cron_from_export(const json_t *o, const char *path, hr_trigger_def_t *def,
                           hr_md_err_t *e);
/* A schedule as an entry of cron_triggers (also get_cron_triggers' entries): {name, webhook,
 * schedule, include_in_metadata: true, payload?, retry_conf, headers?, comment?, herald?}. */
json_t *hr_md_cron_to_json(const hr_trigger_def_t *def);

/* An RFC 3339 / ISO 8601 time, "2026-11-23T12:00:00Z", fraction and offset allowed ("+01:00",
 * "+0100", "Z"; none means UTC; a space may replace the T), as Unix microseconds: 0 or -1. */
int hr_md_parse_time(const char *s, int64_t *us);
/* Unix microseconds as "2026-11-23T12:00:00Z", with ".ffffff" when not whole seconds. */
void hr_md_format_time(int64_t us, char out[40]);
/* Reads the args of create_scheduled_event (webhook, schedule_at, payload, headers, retry_conf
 * in the scheduled shape, comment) into the log row's new (*new_json, caller frees):
 * {"webhook", "headers": [{"name","value"}], "retry": {"num_retries", "retry_interval_seconds",
 * "timeout_seconds", "tolerance_seconds"}, "payload", "comment", "scheduled_time", "created_at"}
 * with created_at = now_us, and *due_us = schedule_at. A bad schedule_at is parse-failed at
 * ….schedule_at. */
int hr_md_one_off_from_create(const json_t *args, const char *path, int64_t now_us, char **new_json,
                              int64_t *due_us, hr_md_err_t *e);

/* An event of the store (store.h's event shape) as a row of Hasura's event log, for trigger:
 * delivery is that trigger's entry of the event's "deliveries" (NULL: none yet). schema and
 * table name the trigger's table (NULL: read from the event's source). A new reference. */
json_t *hr_md_event_log(const json_t *event, const json_t *delivery, const char *trigger,
                        const char *schema, const char *table);
/* An attempt of the store as a row of Hasura's invocation log. A new reference. */
json_t *hr_md_invocation_log(const json_t *attempt);

#endif
