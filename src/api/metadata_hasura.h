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
 * (triggers on custom events), 0 when it says nothing about them. */
int hr_md_defs_from_metadata(const json_t *md, const char *path, hr_trigger_def_t **defs, size_t *n,
                             int *has_custom, hr_md_err_t *e);

/* Hasura's metadata (version 3) holding defs: table triggers in sources[0] ("default", of the
 * given kind), triggers on custom events in herald's extension; schedules (cron set) are left
 * out. A new reference. */
json_t *hr_md_metadata_from_defs(const hr_trigger_def_t *defs, size_t n, const char *kind);
/* One definition in the shape of an exported event trigger (for a trigger on custom events, the
 * shape of herald's extension). A new reference. */
json_t *hr_md_trigger_to_json(const hr_trigger_def_t *def);

/* An event of the store (store.h's event shape) as a row of Hasura's event log, for trigger:
 * delivery is that trigger's entry of the event's "deliveries" (NULL: none yet). schema and
 * table name the trigger's table (NULL: read from the event's source). A new reference. */
json_t *hr_md_event_log(const json_t *event, const json_t *delivery, const char *trigger,
                        const char *schema, const char *table);
/* An attempt of the store as a row of Hasura's invocation log. A new reference. */
json_t *hr_md_invocation_log(const json_t *attempt);

/* 1 if s is a UUID in its 8-4-4-4-12 hex form. */
int hr_md_is_uuid(const char *s);

#endif
