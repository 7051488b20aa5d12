/* metadata_int.h: the readers and writers that metadata_hasura.c shares with metadata_sched.c
 * (cron triggers and one-off scheduled events). Private to src/api/metadata_*.c. Each fails as
 * metadata_hasura.h says: Hasura's code and the JSON path of the culprit in e, -1 returned. */
#ifndef HR_METADATA_INT_H
#define HR_METADATA_INT_H

#include "api/metadata_hasura.h"

/* "an object", "a string", ... for messages. */
const char *hr_mdi_kind(const json_t *v);
int hr_mdi_need_object(const json_t *v, const char *path, hr_md_err_t *e);
/* Fails on the first member of o whose key is not in keys (NULL-terminated). */
int hr_mdi_check_keys(const json_t *o, const char *path, const char *const *keys, hr_md_err_t *e);
/* A string member (null is absent): *out NULL when absent and not required. */
int hr_mdi_get_string(const json_t *o, const char *key, const char *path, int required,
                      const char **out, hr_md_err_t *e);
int hr_mdi_get_bool(const json_t *o, const char *key, const char *path, int def, int *out,
                    hr_md_err_t *e);
int hr_mdi_get_int(const json_t *o, const char *key, const char *path, long long def, long long min,
                   long long max, long long *out, hr_md_err_t *e);
/* Seconds (fractions allowed) as milliseconds in [min_ms, max_ms]. */
int hr_mdi_get_seconds(const json_t *o, const char *key, const char *path, long long def_ms,
                       long long min_ms, long long max_ms, long long *out, hr_md_err_t *e);
/* name (herald's trigger name rule), webhook / webhook_from_env, headers, herald {secret,
 * concurrency}, the refused transforms: into def. */
int hr_mdi_read_name(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e);
int hr_mdi_read_webhook(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e);
int hr_mdi_read_headers(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e);
int hr_mdi_read_herald(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e);
int hr_mdi_read_unsupported(const json_t *o, const char *path, hr_md_err_t *e);
/* The definition must be one herald itself accepts (validation-failed at path otherwise). */
int hr_mdi_final_check(const hr_trigger_def_t *def, const char *path, hr_md_err_t *e);
/* Writers: a duration as Hasura's seconds (an integer when whole); headers as Hasura's list
 * ({"name", "value"} or {"name", "value_from_env"}); the webhook as "webhook" or
 * "webhook_from_env" of o; herald's extension {secret, concurrency} of o when not default. */
json_t *hr_mdi_seconds(uint64_t ms);
json_t *hr_mdi_headers_json(const hr_trigger_def_t *def);
void hr_mdi_webhook_json(const hr_trigger_def_t *def, json_t *o);
void hr_mdi_herald_json(const hr_trigger_def_t *def, json_t *o);

#endif
