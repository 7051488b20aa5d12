/* metadata_sched.c: Hasura's cron triggers and one-off scheduled events to herald's shapes and
 * back (pure, like metadata_hasura.c, whose readers it shares through metadata_int.h).
 *
 * A cron trigger is a schedule: a trigger definition with cron set (config.h). Hasura's
 * scheduled retry_conf names differ from event triggers': num_retries, retry_interval_seconds,
 * timeout_seconds, tolerance_seconds, with Hasura's defaults (0, 10 s, 60 s, 6 h) and fixed
 * intervals; herald adds backoff and max_interval_seconds (written only when not the default).
 *
 * A one-off event is not a definition: create_scheduled_event's args become the new of its log
 * row (op ONE_OFF), which carries everything its delivery needs (hr_payload_one_off_def reads
 * it back in the dispatcher). Times are normalised to UTC "…Z". */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/metadata_int.h"
#include "sched/cron.h"

#define PF(e, path, ...) hr_md_fail(e, 400, "parse-failed", path, __VA_ARGS__)
#define VF(e, path, ...) hr_md_fail(e, 400, "validation-failed", path, __VA_ARGS__)

#define DEF_NUM_RETRIES 0
#define DEF_INTERVAL_MS 10000
#define DEF_TIMEOUT_MS 60000
#define DEF_TOLERANCE_MS 21600000LL
#define MIN_MAX_INTERVAL_MS 600000
#define MAX_RETRIES 1000
#define MAX_INTERVAL_MS (168LL * 3600000)
#define MAX_TIMEOUT_MS 3600000LL
#define MAX_TOLERANCE_MS (3650LL * 86400000)

static uint64_t default_max_interval(uint64_t interval_ms)
{
    return interval_ms > MIN_MAX_INTERVAL_MS ? interval_ms : MIN_MAX_INTERVAL_MS;
}

/* The scheduled retry_conf into def->retry and def->tolerance_ms. */
static int read_retry(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"num_retries",
                                       "retry_interval_seconds",
                                       "timeout_seconds",
                                       "tolerance_seconds",
                                       "backoff",
                                       "max_interval_seconds",
                                       NULL};
    char p[HR_MD_PATH_MAX], bp[HR_MD_PATH_MAX];
    long long retries, interval, timeout, tolerance, max_interval;
    const char *backoff;
    json_t *v = json_object_get(o, "retry_conf"), *none = NULL;
    if (json_is_null(v)) v = NULL;
    hr_md_path_key(p, sizeof p, path, "retry_conf");
    if (!v) v = none = json_object();
    int rc = -1;
    if (hr_mdi_need_object(v, p, e) || hr_mdi_check_keys(v, p, keys, e) ||
        hr_mdi_get_int(v, "num_retries", p, DEF_NUM_RETRIES, 0, MAX_RETRIES, &retries, e) ||
        hr_mdi_get_seconds(v, "retry_interval_seconds", p, DEF_INTERVAL_MS, 1, MAX_INTERVAL_MS,
                           &interval, e) ||
        hr_mdi_get_seconds(v, "timeout_seconds", p, DEF_TIMEOUT_MS, 1, MAX_TIMEOUT_MS, &timeout,
                           e) ||
        hr_mdi_get_seconds(v, "tolerance_seconds", p, DEF_TOLERANCE_MS, 1, MAX_TOLERANCE_MS,
                           &tolerance, e) ||
        hr_mdi_get_string(v, "backoff", p, 0, &backoff, e) ||
        hr_mdi_get_seconds(v, "max_interval_seconds", p,
                           (long long)default_max_interval((uint64_t)interval), 1, MAX_INTERVAL_MS,
                           &max_interval, e))
        goto out;
    if (backoff && strcmp(backoff, "fixed") != 0 && strcmp(backoff, "exponential") != 0) {
        hr_md_path_key(bp, sizeof bp, p, "backoff");
        VF(e, bp, "invalid value \"%.40s\" (expected fixed or exponential)", backoff);
        goto out;
    }
    if (max_interval < interval) {
        hr_md_path_key(bp, sizeof bp, p, "max_interval_seconds");
        VF(e, bp, "%g is less than retry_interval_seconds (%g)", (double)max_interval / 1000.0,
           (double)interval / 1000.0);
        goto out;
    }
    def->retry.max_retries = (int)retries;
    def->retry.interval_ms = (uint64_t)interval;
    def->retry.timeout_ms = (uint64_t)timeout;
    def->retry.max_interval_ms = (uint64_t)max_interval;
    def->retry.backoff =
        backoff && strcmp(backoff, "exponential") == 0 ? HR_BACKOFF_EXPONENTIAL : HR_BACKOFF_FIXED;
    def->tolerance_ms = (uint64_t)tolerance;
    rc = 0;
out:
    json_decref(none);
    return rc;
}

static json_t *retry_json(const hr_trigger_def_t *def)
{
    json_t *r = json_object();
    json_object_set_new(r, "num_retries", json_integer(def->retry.max_retries));
    json_object_set_new(r, "retry_interval_seconds", hr_mdi_seconds(def->retry.interval_ms));
    json_object_set_new(r, "timeout_seconds", hr_mdi_seconds(def->retry.timeout_ms));
    json_object_set_new(r, "tolerance_seconds", hr_mdi_seconds(def->tolerance_ms));
    if (def->retry.backoff == HR_BACKOFF_EXPONENTIAL)
        json_object_set_new(r, "backoff", json_string("exponential"));
    if (def->retry.max_interval_ms != default_max_interval(def->retry.interval_ms))
        json_object_set_new(r, "max_interval_seconds", hr_mdi_seconds(def->retry.max_interval_ms));
    return r;
}

/* payload (any JSON, kept as text) and comment (a string). */
static int read_payload_comment(const json_t *o, const char *path, char **payload, char **comment,
                                hr_md_err_t *e)
{
    const char *c;
    json_t *pl = json_object_get(o, "payload");
    if (hr_mdi_get_string(o, "comment", path, 0, &c, e)) return -1;
    if (pl && !json_is_null(pl)) *payload = json_dumps(pl, JSON_COMPACT | JSON_ENCODE_ANY);
    if (c) *comment = hr_xstrdup(c);
    return 0;
}

static int cron_fail(hr_trigger_def_t *def)
{
    hr_trigger_def_clear(def);
    return -1;
}

static int read_cron(const json_t *o, const char *path, const char *const *keys,
                     hr_trigger_def_t *def, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    const char *sched;
    int include;
    hr_schedule_def_defaults(def);
    if (hr_mdi_need_object(o, path, e) || hr_mdi_check_keys(o, path, keys, e) ||
        hr_mdi_read_name(o, path, def, e) || hr_mdi_read_webhook(o, path, def, e) ||
        hr_mdi_get_string(o, "schedule", path, 1, &sched, e))
        return cron_fail(def);
    hr_md_path_key(p, sizeof p, path, "schedule");
    hr_cron_t c;
    hr_err_t err = {0};
    if (hr_cron_parse(sched, &c, &err) != 0) {
        VF(e, p, "%s", err.msg);
        return cron_fail(def);
    }
    def->cron = hr_xstrdup(sched);
    if (read_payload_comment(o, path, &def->cron_payload, &def->comment, e) ||
        hr_mdi_read_headers(o, path, def, e) || read_retry(o, path, def, e) ||
        hr_mdi_read_herald(o, path, def, e) || hr_mdi_read_unsupported(o, path, e) ||
        hr_mdi_get_bool(o, "include_in_metadata", path, 1, &include, e))
        return cron_fail(def);
    if (hr_mdi_final_check(def, path, e)) return cron_fail(def);
    return 0;
}

int hr_md_cron_from_create(const json_t *args, const char *path, hr_trigger_def_t *def,
                           int *replace, hr_md_err_t *e)
{
    static const char *const keys[] = {"name",    "webhook",           "schedule",
                                       "payload", "headers",           "retry_conf",
                                       "comment", "replace",           "include_in_metadata",
                                       "herald",  "request_transform", "response_transform",
                                       NULL};
    *replace = 0;
    if (read_cron(args, path, keys, def, e)) return -1;
    if (hr_mdi_get_bool(args, "replace", path, 0, replace, e)) return cron_fail(def);
    return 0;
}

int hr_md_cron_from_export(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"name",
                                       "webhook",
                                       "schedule",
                                       "payload",
                                       "headers",
                                       "retry_conf",
                                       "comment",
                                       "include_in_metadata",
                                       "herald",
                                       "request_transform",
                                       "response_transform",
                                       NULL};
    return read_cron(o, path, keys, def, e);
}

json_t *hr_md_cron_to_json(const hr_trigger_def_t *def)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(def->name));
    /* Hasura's cron webhook is a string that may hold {{VAR}}: no webhook_from_env. */
    json_object_set_new(o, "webhook", json_string(def->webhook ? def->webhook : ""));
    json_object_set_new(o, "schedule", json_string(def->cron ? def->cron : ""));
    json_object_set_new(o, "include_in_metadata", json_true());
    json_t *pl = def->cron_payload ? json_loads(def->cron_payload, JSON_DECODE_ANY, NULL) : NULL;
    if (pl) json_object_set_new(o, "payload", pl);
    json_object_set_new(o, "retry_conf", retry_json(def));
    if (def->nheaders) json_object_set_new(o, "headers", hr_mdi_headers_json(def));
    if (def->comment) json_object_set_new(o, "comment", json_string(def->comment));
    hr_mdi_herald_json(def, o);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Times                                                                                      */

/* n digits at *p into *out; 0 or -1. */
static int digits(const char **p, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p)) return -1;
        *out = *out * 10 + (**p - '0');
    }
    return 0;
}

int hr_md_parse_time(const char *s, int64_t *us)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    const char *p = s;
    if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; isdigit((unsigned char)*p); p++, n++)
            if (n < 6) frac = frac * 10 + (*p - '0');
        if (n == 0) return -1;
        for (; n < 6; n++)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (digits(&p, 2, &oh)) return -1;
        if (*p == ':') p++;
        if (digits(&p, 2, &om) || oh > 23 || om > 59) return -1;
    }
    if (*p) return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) return -1; /* 31 April, 29 February 2026 */
    t -= (time_t)sign * (oh * 3600 + om * 60);
    *us = (int64_t)t * 1000000 + frac;
    return 0;
}

void hr_md_format_time(int64_t us, char out[40])
{
    time_t t = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    int64_t frac = us - (int64_t)t * 1000000;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac)
        snprintf(out + n, 40 - n, ".%06lldZ", (long long)frac);
    else
        snprintf(out + n, 40 - n, "Z");
}

/* ------------------------------------------------------------------------------------------ */
/* One-off events                                                                             */

int hr_md_one_off_from_create(const json_t *args, const char *path, int64_t now_us, char **new_json,
                              int64_t *due_us, hr_md_err_t *e)
{
    static const char *const keys[] = {"webhook",    "schedule_at", "payload", "headers",
                                       "retry_conf", "comment",     NULL};
    char p[HR_MD_PATH_MAX], at[40], created[40];
    const char *when;
    hr_trigger_def_t def;
    char *payload = NULL, *comment = NULL;
    int rc = -1;
    *new_json = NULL;
    hr_trigger_def_defaults(&def);
    if (hr_mdi_need_object(args, path, e) || hr_mdi_check_keys(args, path, keys, e) ||
        hr_mdi_read_webhook(args, path, &def, e) ||
        hr_mdi_get_string(args, "schedule_at", path, 1, &when, e))
        goto out;
    hr_md_path_key(p, sizeof p, path, "schedule_at");
    if (hr_md_parse_time(when, due_us) != 0) {
        PF(e, p,
           "invalid time \"%.60s\" (expected RFC 3339 / ISO 8601, e.g. "
           "\"2026-11-23T12:00:00Z\")",
           when);
        goto out;
    }
    if (read_payload_comment(args, path, &payload, &comment, e) ||
        hr_mdi_read_headers(args, path, &def, e) || read_retry(args, path, &def, e))
        goto out;
    if (def.retry.backoff != HR_BACKOFF_FIXED) {
        hr_md_path_key(p, sizeof p, path, "retry_conf");
        VF(e, p, "one-off events retry at fixed intervals (backoff is for cron triggers)");
        goto out;
    }
    hr_md_format_time(*due_us, at);
    hr_md_format_time(now_us, created);
    json_t *hs = json_array();
    for (size_t i = 0; i < def.nheaders; i++)
        json_array_append_new(
            hs, json_pack("{s:s,s:s}", "name", def.headers[i].name, "value", def.headers[i].value));
    json_t *r = json_object();
    json_object_set_new(r, "num_retries", json_integer(def.retry.max_retries));
    json_object_set_new(r, "retry_interval_seconds", hr_mdi_seconds(def.retry.interval_ms));
    json_object_set_new(r, "timeout_seconds", hr_mdi_seconds(def.retry.timeout_ms));
    json_object_set_new(r, "tolerance_seconds", hr_mdi_seconds(def.tolerance_ms));
    json_t *pl = payload ? json_loads(payload, JSON_DECODE_ANY, NULL) : NULL;
    json_t *n = json_object();
    json_object_set_new(n, "webhook", json_string(def.webhook));
    json_object_set_new(n, "headers", hs);
    json_object_set_new(n, "retry", r);
    json_object_set_new(n, "payload", pl ? pl : json_null());
    json_object_set_new(n, "comment", comment ? json_string(comment) : json_null());
    json_object_set_new(n, "scheduled_time", json_string(at));
    json_object_set_new(n, "created_at", json_string(created));
    *new_json = json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(n);
    rc = 0;
out:
    free(payload);
    free(comment);
    hr_trigger_def_clear(&def);
    return rc;
}
