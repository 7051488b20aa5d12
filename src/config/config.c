/* config.c: the key table of herald.yaml and everything driven by it.
 *
 * hr_cfg_keys[] lists every key once (pgbouncer's CF_ABS table and redis' configs[] are the
 * models): its section, type, storage, default, bounds or choices, validator, environment
 * variable and documentation line. From that table this file
 *
 *   - fills defaults (hr_cfg_defaults: each default is parsed by the same code as the file),
 *   - sets a key from text (hr_cfg_set_text: YAML scalars, environment variables, defaults),
 *   - validates and stores list items and headers for both readers (hr_cfg_list_add, ...),
 *   - frees what the keys own (hr_cfg_free_section),
 *   - reports problems as "file:line: key: message" (hr_cfg_problem), and
 *   - writes the reference part of docs/config.md (hr_config_write_docs).
 *
 * The readers are config_yaml.c (herald.yaml) and config_json.c (the canonical JSON of a stored
 * trigger); single values are validated in config_check.c. Rules tying several keys together
 * are in hr_cfg_check_section, the only hand-written validation here. */
#include "config/config_int.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Enum keys are stored through an int. */
_Static_assert(sizeof(hr_log_level_t) == sizeof(int), "log level enum is not int-sized");
_Static_assert(sizeof(hr_backoff_kind_t) == sizeof(int), "backoff enum is not int-sized");
_Static_assert(sizeof(hr_capture_mode_t) == sizeof(int), "capture enum is not int-sized");

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const backoffs[] = {"exponential", "fixed", NULL};
static const char *const starts[] = {"now", "beginning", NULL};
/* In the order of hr_capture_mode_t. */
static const char *const captures[] = {"auto", "native", "plpgsql", NULL};
/* Choice i is bit 1 << i, which matches HR_OP_INSERT, HR_OP_UPDATE, HR_OP_DELETE, HR_OP_MANUAL. */
static const char *const operations[] = {"insert", "update", "delete", "manual", NULL};
_Static_assert(HR_OP_INSERT == 1 && HR_OP_UPDATE == 2 && HR_OP_DELETE == 4 && HR_OP_MANUAL == 8,
               "operation bits do not match the choices");

#define H 3600000LL /* one hour in ms */
#define TOP(f) offsetof(hr_config_t, f)
#define TRG(f) offsetof(hr_trigger_def_t, f)
#define RTY(f) offsetof(hr_retry_t, f)

const hr_cfg_key_t hr_cfg_keys[HR_K_COUNT] = {
    /* The top level. */
    [HR_K_DATABASE] = {.section = HR_SEC_TOP,
                       .name = "database",
                       .type = HR_KT_STRING,
                       .off = TOP(database),
                       .check = hr_cfg_check_database,
                       .flags = HR_KF_SECRET,
                       .env = "HERALD_DATABASE_URL",
                       .type_doc = "URL",
                       .doc =
                           "Database holding the event log and the delivery state: "
                           "`postgres://user@host:port/db` (or `postgresql://...`), or "
                           "`sqlite:PATH`, a file relative to this file's directory. Absent: "
                           "`sqlite:herald.db` beside this file (herald says so when it starts); "
                           "a relative path in the variable is relative to the working "
                           "directory."},
    [HR_K_LISTEN] = {.section = HR_SEC_TOP,
                     .name = "listen",
                     .type = HR_KT_STRING,
                     .off = TOP(listen),
                     .def = "127.0.0.1:8080",
                     .check = hr_cfg_check_listen,
                     .env = "HERALD_LISTEN",
                     .type_doc = "host:port",
                     .doc = "Address of the HTTP API (health, metrics, metadata; see "
                            "[api.md](api.md)); an IPv6 host goes in brackets: `[::1]:8080`. "
                            "Port 0 picks a free port (logged at start as `listen=`); `off` runs "
                            "no HTTP server. Without an admin secret herald refuses any address "
                            "but a loopback one (127.0.0.0/8, `[::1]`, `localhost`)."},
    [HR_K_ADMIN_SECRET] = {.section = HR_SEC_TOP,
                           .name = "admin_secret",
                           .type = HR_KT_STRING,
                           .off = TOP(admin_secret),
                           .check = hr_cfg_check_admin_secret,
                           .flags = HR_KF_SECRET,
                           .env = "HERALD_ADMIN_SECRET",
                           .doc = "Secret that requests to `/v1/metadata` and `/metrics` must "
                                  "carry in the header `x-herald-admin-secret` (or "
                                  "`x-hasura-admin-secret`; `/metrics` also takes "
                                  "`Authorization: Bearer`). Absent: no secret is asked, and "
                                  "herald listens on loopback addresses only. Prefer the "
                                  "variable to writing the secret in the file."},
    [HR_K_LOG_LEVEL] = {.section = HR_SEC_TOP,
                        .name = "log_level",
                        .type = HR_KT_ENUM,
                        .off = TOP(log_level),
                        .def = "info",
                        .choices = log_levels,
                        .env = "HERALD_LOG_LEVEL",
                        .doc = "Least severe level of the log lines written to stderr."},
    [HR_K_SHUTDOWN_GRACE] = {.section = HR_SEC_TOP,
                             .name = "shutdown_grace",
                             .type = HR_KT_DURATION,
                             .off = TOP(shutdown_grace_ms),
                             .def = "10s",
                             .min = 0,
                             .max = 24 * H,
                             .doc = "On SIGTERM, how long requests in flight may take to finish "
                                    "before herald exits."},
    [HR_K_CAPTURE] = {.section = HR_SEC_TOP,
                      .name = "capture",
                      .type = HR_KT_ENUM,
                      .off = TOP(capture),
                      .def = "auto",
                      .choices = captures,
                      .doc = "How `herald apply` captures PostgreSQL tables. `native`: with the "
                             "trigger function of herald's PostgreSQL module `herald_capture` "
                             "(built as `build/pgext/herald_capture.so`; `make install-pgext` "
                             "copies it into the server's library directory), which writes the "
                             "log row without going through SQL; `herald apply` fails when the "
                             "server cannot load it, and creating a C function needs a "
                             "superuser. `plpgsql`: with PL/pgSQL functions, which any database "
                             "(managed ones included) can run. `auto`: `native` when the server "
                             "can load the module, else `plpgsql`; apply says which. Both write "
                             "the same log rows; native capture slows the application's writes "
                             "less ([benchmarks.md](benchmarks.md) has the figures). "
                             "SQLite ignores this key."},
    [HR_K_TRIGGERS] = {.section = HR_SEC_TOP,
                       .name = "triggers",
                       .type = HR_KT_TRIGGERS,
                       .off = TOP(triggers),
                       .off2 = TOP(ntriggers),
                       .sub = HR_SEC_TRIGGER,
                       .doc = "The triggers; each sends the changes of one table, or some custom "
                              "events, to one webhook. Absent: no triggers."},
    [HR_K_SCHEDULES] = {.section = HR_SEC_TOP,
                        .name = "schedules",
                        .type = HR_KT_TRIGGERS,
                        .off = TOP(schedules),
                        .off2 = TOP(nschedules),
                        .sub = HR_SEC_SCHEDULE,
                        .doc = "The schedules (cron triggers); each POSTs an event to one webhook "
                               "at every fire time of a cron expression, through the same log, "
                               "retries and dead events as triggers. A schedule and a trigger "
                               "cannot share a name. Absent: no schedules."},

    /* One trigger. */
    [HR_K_NAME] = {.section = HR_SEC_TRIGGER,
                   .name = "name",
                   .type = HR_KT_STRING,
                   .off = TRG(name),
                   .check = hr_cfg_check_name,
                   .flags = HR_KF_REQUIRED,
                   .doc = "Unique name of the trigger: 1 to 64 letters, digits or underscores."},
    [HR_K_TABLE] = {.section = HR_SEC_TRIGGER,
                    .name = "table",
                    .type = HR_KT_TABLE,
                    .off = TRG(table),
                    .off2 = TRG(schema),
                    .type_doc = "[schema.]table",
                    .doc = "Table whose changes fire the trigger: `orders` (schema `public`), "
                           "`shop.orders`, or names in double quotes: "
                           "`'\"My Schema\".\"My Table\"'`. Unquoted names are folded to lower "
                           "case, as PostgreSQL does. SQLite has no schemas: name the table "
                           "alone (its schema reads `public`). A trigger has either `table` or "
                           "`events`."},
    [HR_K_OPERATIONS] = {.section = HR_SEC_TRIGGER,
                         .name = "operations",
                         .type = HR_KT_FLAGS,
                         .off = TRG(ops),
                         .choices = operations,
                         .doc = "The changes that fire the trigger (case-insensitive); `manual` "
                                "lets it also be invoked by hand. Required with `table`."},
    [HR_K_COLUMNS] = {.section = HR_SEC_TRIGGER,
                      .name = "columns",
                      .type = HR_KT_LIST,
                      .off = TRG(columns),
                      .off2 = TRG(ncolumns),
                      .check = hr_cfg_check_column,
                      .flags = HR_KF_UNIQUE | HR_KF_NONEMPTY,
                      .type_doc = "list of columns",
                      .doc = "Only with `table`: an UPDATE fires the trigger only if one of these "
                             "columns changed. Absent: any UPDATE does."},
    [HR_K_PAYLOAD] = {.section = HR_SEC_TRIGGER,
                      .name = "payload",
                      .type = HR_KT_LIST,
                      .off = TRG(payload),
                      .off2 = TRG(npayload),
                      .check = hr_cfg_check_column,
                      .flags = HR_KF_UNIQUE | HR_KF_NONEMPTY,
                      .type_doc = "list of columns",
                      .doc = "Only with `table`: the columns included in `old` and `new`. "
                             "Absent: all columns."},
    [HR_K_EVENTS] = {.section = HR_SEC_TRIGGER,
                     .name = "events",
                     .type = HR_KT_LIST,
                     .off = TRG(events),
                     .off2 = TRG(nevents),
                     .check = hr_cfg_check_event,
                     .flags = HR_KF_UNIQUE | HR_KF_NONEMPTY,
                     .type_doc = "list of event types",
                     .doc = "In place of `table`: the custom event types (emitted with the SQL "
                            "function `herald.emit`, or on SQLite an INSERT into the view "
                            "`herald_emit`) that fire the trigger: `order.placed`, a "
                            "prefix pattern such as `invoice.*`, or `*` for all."},
    [HR_K_WEBHOOK] = {.section = HR_SEC_TRIGGER,
                      .name = "webhook",
                      .type = HR_KT_STRING,
                      .off = TRG(webhook),
                      .check = hr_cfg_check_webhook,
                      .flags = HR_KF_REQUIRED,
                      .type_doc = "URL",
                      .doc = "URL the events are POSTed to, `http://` or `https://`. "
                             "`{{VAR}}` is replaced by the environment variable VAR at each "
                             "delivery, not when the file is read."},
    [HR_K_HEADERS] = {.section = HR_SEC_TRIGGER,
                      .name = "headers",
                      .type = HR_KT_HEADERS,
                      .off = TRG(headers),
                      .off2 = TRG(nheaders),
                      .doc = "Extra HTTP headers of each request, `Name: value`; values may hold "
                             "`{{VAR}}`."},
    [HR_K_RETRY] = {.section = HR_SEC_TRIGGER,
                    .name = "retry",
                    .type = HR_KT_SECTION,
                    .off = TRG(retry),
                    .sub = HR_SEC_RETRY,
                    .doc = "When failed deliveries are tried again (keys below)."},
    [HR_K_SECRET] = {.section = HR_SEC_TRIGGER,
                     .name = "secret",
                     .type = HR_KT_STRING,
                     .off = TRG(secret),
                     .check = hr_cfg_check_secret,
                     .flags = HR_KF_SECRET,
                     .doc = "Key of the Standard Webhooks signature: `whsec_` followed by base64, "
                            "or a `{{VAR}}` reference. Absent: requests are not signed."},
    [HR_K_START] = {.section = HR_SEC_TRIGGER,
                    .name = "start",
                    .type = HR_KT_ENUM,
                    .off = TRG(start_beginning),
                    .def = "now",
                    .choices = starts,
                    .doc = "Where a new trigger starts reading the event log: `now` (events from "
                           "now on) or `beginning` (every event still stored)."},
    [HR_K_CONCURRENCY] = {.section = HR_SEC_TRIGGER,
                          .name = "concurrency",
                          .type = HR_KT_INT,
                          .off = TRG(concurrency),
                          .def = "64",
                          .min = 1,
                          .max = 1024,
                          .doc = "Most requests to the webhook in flight at once."},

    /* A trigger's retry policy. */
    [HR_K_MAX_RETRIES] = {.section = HR_SEC_RETRY,
                          .name = "max_retries",
                          .type = HR_KT_INT,
                          .off = RTY(max_retries),
                          .def = "5",
                          .min = 0,
                          .max = 1000,
                          .doc = "Retries after the first attempt; 0 never retries."},
    [HR_K_INTERVAL] = {.section = HR_SEC_RETRY,
                       .name = "interval",
                       .json = "interval_ms",
                       .type = HR_KT_DURATION,
                       .off = RTY(interval_ms),
                       .def = "2s",
                       .min = 1,
                       .max = 168 * H,
                       .doc = "Delay before the first retry (with `exponential`, its upper "
                              "bound)."},
    [HR_K_BACKOFF] = {.section = HR_SEC_RETRY,
                      .name = "backoff",
                      .type = HR_KT_ENUM,
                      .off = RTY(backoff),
                      .def = "exponential",
                      .choices = backoffs,
                      .doc = "`exponential`: retry n waits a random time up to "
                             "`interval * 2^(n-1)`, capped at `max_interval`; `fixed`: always "
                             "`interval`."},
    [HR_K_MAX_INTERVAL] = {.section = HR_SEC_RETRY,
                           .name = "max_interval",
                           .json = "max_interval_ms",
                           .type = HR_KT_DURATION,
                           .off = RTY(max_interval_ms),
                           .def = "10m",
                           .min = 1,
                           .max = 168 * H,
                           .doc = "Ceiling of any retry delay, a receiver's Retry-After "
                                  "included; at least `interval`."},
    [HR_K_TIMEOUT] = {.section = HR_SEC_RETRY,
                      .name = "timeout",
                      .json = "timeout_ms",
                      .type = HR_KT_DURATION,
                      .off = RTY(timeout_ms),
                      .def = "30s",
                      .min = 1,
                      .max = H,
                      .doc = "Time limit of each HTTP attempt."},

    /* One schedule (stored as a trigger with cron set). */
    [HR_K_S_NAME] = {.section = HR_SEC_SCHEDULE,
                     .name = "name",
                     .type = HR_KT_STRING,
                     .off = TRG(name),
                     .check = hr_cfg_check_name,
                     .flags = HR_KF_REQUIRED,
                     .doc = "Unique name of the schedule (shared with the triggers' names): 1 to "
                            "64 letters, digits or underscores. Sent as `name`."},
    [HR_K_S_CRON] = {.section = HR_SEC_SCHEDULE,
                     .name = "cron",
                     .type = HR_KT_STRING,
                     .off = TRG(cron),
                     .check = hr_cfg_check_cron,
                     .flags = HR_KF_REQUIRED,
                     .type_doc = "cron expression",
                     .doc = "When it fires, in UTC: five fields `minute hour day-of-month month "
                            "day-of-week` with lists, ranges, steps and names (`JAN`, `MON`), "
                            "or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`. When "
                            "both day fields are restricted, either one matching suffices."},
    [HR_K_S_WEBHOOK] = {.section = HR_SEC_SCHEDULE,
                        .name = "webhook",
                        .type = HR_KT_STRING,
                        .off = TRG(webhook),
                        .check = hr_cfg_check_webhook,
                        .flags = HR_KF_REQUIRED,
                        .type_doc = "URL",
                        .doc = "URL each fire is POSTed to (`{{VAR}}` as for triggers)."},
    [HR_K_S_PAYLOAD] = {.section = HR_SEC_SCHEDULE,
                        .name = "payload",
                        .type = HR_KT_JSON,
                        .off = TRG(cron_payload),
                        .type_doc = "any JSON",
                        .doc = "Sent as `payload` in every request. Absent: `null`."},
    [HR_K_S_HEADERS] = {.section = HR_SEC_SCHEDULE,
                        .name = "headers",
                        .type = HR_KT_HEADERS,
                        .off = TRG(headers),
                        .off2 = TRG(nheaders),
                        .doc = "Extra HTTP headers, as for triggers."},
    [HR_K_S_RETRY] = {.section = HR_SEC_SCHEDULE,
                      .name = "retry",
                      .type = HR_KT_SECTION,
                      .off = TRG(retry),
                      .sub = HR_SEC_RETRY,
                      .doc = "Retry policy, the same keys and defaults as a trigger's."},
    [HR_K_S_SECRET] = {.section = HR_SEC_SCHEDULE,
                       .name = "secret",
                       .type = HR_KT_STRING,
                       .off = TRG(secret),
                       .check = hr_cfg_check_secret,
                       .flags = HR_KF_SECRET,
                       .doc = "Standard Webhooks signing key, as for triggers."},
    [HR_K_S_TOLERANCE] = {.section = HR_SEC_SCHEDULE,
                          .name = "tolerance",
                          .json = "tolerance_ms",
                          .type = HR_KT_DURATION,
                          .off = TRG(tolerance_ms),
                          .def = "6h",
                          .min = 1000,
                          .max = 720 * H,
                          .doc = "A fire whose first attempt would start later than this after "
                                 "its time (herald was down) is not sent: it is recorded dead "
                                 "with the reason."},
    [HR_K_S_COMMENT] = {.section = HR_SEC_SCHEDULE,
                        .name = "comment",
                        .type = HR_KT_STRING,
                        .off = TRG(comment),
                        .doc = "Free text, sent as `comment`."},
};

/* Titles and introductions of the sections in docs/config.md. */
static const struct {
    const char *title;
    const char *intro;
} sections[HR_SEC_COUNT] = {
    [HR_SEC_TOP] = {"Top-level keys", NULL},
    [HR_SEC_TRIGGER] = {"Trigger keys (`triggers[]`)",
                        "Each item of `triggers` is a mapping with these keys. A trigger has "
                        "either `table` (with `operations`) or `events`, never both."},
    [HR_SEC_RETRY] = {"Retry keys (`triggers[].retry`, `schedules[].retry`)",
                      "Every key is optional; `retry: {max_retries: 10}` keeps the other "
                      "defaults."},
    [HR_SEC_SCHEDULE] = {"Schedule keys (`schedules[]`)",
                         "Each item of `schedules` is a mapping with these keys. Each fire is "
                         "written to the log once (even with several herald processes on one "
                         "PostgreSQL database) and delivered as "
                         "`{\"id\", \"name\", \"scheduled_time\", \"payload\", \"comment\"}`. "
                         "Fires missed while herald was down are caught up at start (the latest "
                         "100 per schedule); see [guarantees.md](guarantees.md)."},
};

static void *at(void *base, size_t off)
{
    return (char *)base + off;
}

const char *hr_cfg_key_name(const hr_cfg_scope_t *sc, int k)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    return !sc->rep->file && key->json ? key->json : key->name;
}

int hr_cfg_find_key(int sec, const char *name, int json)
{
    for (int k = 0; k < HR_K_COUNT; k++) {
        const hr_cfg_key_t *key = &hr_cfg_keys[k];
        if (key->section == sec && strcmp(json && key->json ? key->json : key->name, name) == 0)
            return k;
    }
    return -1;
}

const char *hr_cfg_key_list(int sec, int json, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int k = 0; k < HR_K_COUNT && o < n; k++) {
        const hr_cfg_key_t *key = &hr_cfg_keys[k];
        if (key->section != sec) continue;
        o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? ", " : "",
                              json && key->json ? key->json : key->name);
    }
    return buf;
}

int hr_cfg_choice(const hr_cfg_key_t *k, const char *s)
{
    for (int i = 0; k->choices[i]; i++)
        if (strcasecmp(k->choices[i], s) == 0) return i;
    return -1;
}

const char *hr_cfg_choices_text(const hr_cfg_key_t *k, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; k->choices[i] && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", k->choices[i]);
    return buf;
}

void hr_cfg_problem(hr_cfg_scope_t *sc, int k, int line, const char *sub, const char *fmt, ...)
{
    hr_cfg_report_t *rep = sc->rep;
    char key[512], msg[1024];
    va_list ap;
    int n = snprintf(key, sizeof key, "%s%s%s", sc->path, k >= 0 ? hr_cfg_key_name(sc, k) : "",
                     sub ? sub : "");
    /* The section itself: "triggers[0]." names "triggers[0]". */
    if (n > 0 && (size_t)n < sizeof key && key[n - 1] == '.') key[n - 1] = '\0';
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line per problem, whatever the values quoted in it hold. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    for (char *p = key; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    if (!line) line = k >= 0 && sc->lines[k] ? sc->lines[k] : sc->line;
    if (k >= 0) sc->bad[k] = 1;
    struct hr_cfg_msg *m;
    rep->msgs = hr_xrealloc(rep->msgs, (size_t)(rep->nerr + 1) * sizeof *rep->msgs);
    m = &rep->msgs[rep->nerr];
    m->line = rep->file ? line : 0;
    m->seq = rep->nerr++;
    if (rep->file && *key)
        m->text = hr_xasprintf("%s:%d: %s: %s", rep->file, line, key, msg);
    else if (rep->file)
        m->text = hr_xasprintf("%s:%d: %s", rep->file, line, msg);
    else if (*key)
        m->text = hr_xasprintf("%s: %s", key, msg);
    else
        m->text = hr_xstrdup(msg);
}

static int by_line(const void *a, const void *b)
{
    const struct hr_cfg_msg *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int hr_cfg_report_flush(hr_cfg_report_t *rep)
{
    if (rep->nerr) qsort(rep->msgs, (size_t)rep->nerr, sizeof *rep->msgs, by_line);
    for (int i = 0; i < rep->nerr; i++) {
        hr_err_append(rep->err, rep->code, "%s", rep->msgs[i].text);
        free(rep->msgs[i].text);
    }
    free(rep->msgs);
    rep->msgs = NULL;
    return rep->nerr ? rep->code : 0;
}

int hr_cfg_set_text(const hr_cfg_key_t *k, void *base, const char *s, char *why, size_t n)
{
    char shown[96], list[256], lo[32], hi[32];
    void *field = at(base, k->off);
    switch (k->type) {
    case HR_KT_STRING:
        if (k->check && k->check(s, why, n)) return -1;
        free(*(char **)field);
        *(char **)field = hr_xstrdup(s);
        return 0;
    case HR_KT_ENUM: {
        int i = hr_cfg_choice(k, s);
        if (i < 0) {
            snprintf(why, n, "invalid value %s (expected one of: %s)",
                     hr_cfg_show(s, shown, sizeof shown),
                     hr_cfg_choices_text(k, list, sizeof list));
            return -1;
        }
        memcpy(field, &i, sizeof i);
        return 0;
    }
    case HR_KT_INT: {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (!(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))) || *end ||
            v < -1000000000LL || v > 1000000000LL) {
            snprintf(why, n, "invalid value %s (expected an integer from %lld to %lld)",
                     hr_cfg_show(s, shown, sizeof shown), k->min, k->max);
            return -1;
        }
        if (v < k->min || v > k->max) {
            snprintf(why, n, "%lld is out of range (%lld to %lld)", v, k->min, k->max);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case HR_KT_DURATION: {
        uint64_t ms;
        if (hr_duration_parse(s, &ms)) {
            snprintf(why, n, "invalid duration %s (use 250ms, 2s, 10m, 1h or seconds)",
                     hr_cfg_show(s, shown, sizeof shown));
            return -1;
        }
        if (ms == 0 && k->min > 0) {
            snprintf(why, n, "must be greater than 0");
            return -1;
        }
        if (ms < (uint64_t)k->min || ms > (uint64_t)k->max) {
            snprintf(why, n, "%s is out of range (%s to %s)", s,
                     hr_cfg_fmt_duration((uint64_t)k->min, lo, sizeof lo),
                     hr_cfg_fmt_duration((uint64_t)k->max, hi, sizeof hi));
            return -1;
        }
        *(uint64_t *)field = ms;
        return 0;
    }
    case HR_KT_TABLE: {
        char *schema, *table;
        if (hr_cfg_parse_table(s, &schema, &table, why, n)) return -1;
        free(*(char **)field);
        free(*(char **)at(base, k->off2));
        *(char **)field = table;
        *(char **)at(base, k->off2) = schema;
        return 0;
    }
    default:
        assert(!"not a scalar key");
        return -1;
    }
}

void hr_cfg_set_reported(hr_cfg_scope_t *sc, int k, int line, void *base, const char *s)
{
    char why[512];
    if (hr_cfg_set_text(&hr_cfg_keys[k], base, s, why, sizeof why))
        hr_cfg_problem(sc, k, line, NULL, "%s", why);
}

void hr_cfg_list_add(hr_cfg_scope_t *sc, int k, int line, void *base, size_t i, const char *s)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    char ***items = at(base, key->off), sub[32], why[512], shown[96];
    size_t *n = at(base, key->off2);
    snprintf(sub, sizeof sub, "[%zu]", i);
    if (key->check && key->check(s, why, sizeof why)) {
        hr_cfg_problem(sc, k, line, sub, "%s", why);
        return;
    }
    for (size_t j = 0; (key->flags & HR_KF_UNIQUE) && j < *n; j++) {
        if (strcmp((*items)[j], s) == 0) {
            hr_cfg_problem(sc, k, line, sub, "duplicate %s", hr_cfg_show(s, shown, sizeof shown));
            return;
        }
    }
    *items = hr_xrealloc(*items, (*n + 1) * sizeof **items);
    (*items)[(*n)++] = hr_xstrdup(s);
}

void hr_cfg_flag_add(hr_cfg_scope_t *sc, int k, int line, void *base, size_t i, const char *s)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    char sub[32], shown[96], list[256];
    int c = hr_cfg_choice(key, s);
    snprintf(sub, sizeof sub, "[%zu]", i);
    if (c < 0)
        hr_cfg_problem(sc, k, line, sub, "invalid value %s (expected one of: %s)",
                       hr_cfg_show(s, shown, sizeof shown),
                       hr_cfg_choices_text(key, list, sizeof list));
    else
        *(unsigned *)at(base, key->off) |= 1u << c;
}

void hr_cfg_header_add(hr_cfg_scope_t *sc, int k, int line, void *base, const char *name,
                       const char *value)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    hr_header_t **hs = at(base, key->off);
    size_t *n = at(base, key->off2);
    char why[512], sub[160];
    snprintf(sub, sizeof sub, ".%.150s", name);
    if (hr_cfg_check_header_name(name, why, sizeof why) ||
        hr_cfg_check_header_value(value, why, sizeof why)) {
        hr_cfg_problem(sc, k, line, sub, "%s", why);
        return;
    }
    for (size_t j = 0; j < *n; j++) {
        if (strcasecmp((*hs)[j].name, name) == 0) {
            hr_cfg_problem(sc, k, line, sub, "duplicate header (names are case-insensitive)");
            return;
        }
    }
    *hs = hr_xrealloc(*hs, (*n + 1) * sizeof **hs);
    (*hs)[*n].name = hr_xstrdup(name);
    (*hs)[*n].value = hr_xstrdup(value);
    (*n)++;
}

void hr_cfg_defaults(int sec, void *base)
{
    for (int k = 0; k < HR_K_COUNT; k++) {
        const hr_cfg_key_t *key = &hr_cfg_keys[k];
        char why[256];
        if (key->section != sec) continue;
        if (key->type == HR_KT_SECTION) {
            hr_cfg_defaults(key->sub, at(base, key->off));
        } else if (key->def) {
            int rc = hr_cfg_set_text(key, base, key->def, why, sizeof why);
            assert(rc == 0 && "a default in the key table does not validate");
            (void)rc;
        }
    }
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void hr_cfg_free_section(int sec, void *base)
{
    for (int k = 0; k < HR_K_COUNT; k++) {
        const hr_cfg_key_t *key = &hr_cfg_keys[k];
        void *field = at(base, key->off);
        if (key->section != sec) continue;
        switch (key->type) {
        case HR_KT_STRING:
        case HR_KT_JSON:
            free(*(char **)field);
            break;
        case HR_KT_TABLE:
            free(*(char **)field);
            free(*(char **)at(base, key->off2));
            break;
        case HR_KT_LIST:
            free_strings(*(char ***)field, *(size_t *)at(base, key->off2));
            break;
        case HR_KT_HEADERS: {
            hr_header_t *hs = *(hr_header_t **)field;
            for (size_t i = 0; i < *(size_t *)at(base, key->off2); i++) {
                free(hs[i].name);
                free(hs[i].value);
            }
            free(hs);
            break;
        }
        case HR_KT_SECTION:
            hr_cfg_free_section(key->sub, field);
            break;
        case HR_KT_TRIGGERS: {
            hr_trigger_def_t *ts = *(hr_trigger_def_t **)field;
            for (size_t i = 0; i < *(size_t *)at(base, key->off2); i++)
                hr_trigger_def_clear(&ts[i]);
            free(ts);
            break;
        }
        default:
            break;
        }
    }
}

static void check_trigger(const hr_trigger_def_t *d, hr_cfg_scope_t *sc)
{
    int yaml = sc->rep->file != NULL;
    int has_table = sc->present[HR_K_TABLE], has_events = sc->present[HR_K_EVENTS];
    if (has_table && has_events)
        hr_cfg_problem(sc, HR_K_EVENTS, 0, NULL,
                       "cannot be combined with table (a trigger has either table or events)");
    else if (!has_table && !has_events)
        hr_cfg_problem(sc, -1, 0, NULL, "needs either table (with operations) or events");
    if (has_table && d->ops == 0 && !sc->bad[HR_K_OPERATIONS]) {
        if (sc->present[HR_K_OPERATIONS])
            hr_cfg_problem(sc, HR_K_OPERATIONS, 0, NULL, "must not be empty");
        else
            hr_cfg_problem(sc, HR_K_OPERATIONS, 0, NULL,
                           "required with table (a list of insert, update, delete, manual)");
    }
    if (!has_table && has_events) {
        /* The canonical JSON of an events trigger says "operations": []. */
        if (d->ops || (yaml && sc->present[HR_K_OPERATIONS]))
            hr_cfg_problem(sc, HR_K_OPERATIONS, 0, NULL, "only allowed with table");
        if (sc->present[HR_K_COLUMNS])
            hr_cfg_problem(sc, HR_K_COLUMNS, 0, NULL, "only allowed with table");
        if (sc->present[HR_K_PAYLOAD])
            hr_cfg_problem(sc, HR_K_PAYLOAD, 0, NULL, "only allowed with table");
    }
}

static void check_retry(const hr_retry_t *r, hr_cfg_scope_t *sc)
{
    char a[32], b[32];
    int yaml = sc->rep->file != NULL;
    /* A bad value has been reported already; comparing it would only add noise. */
    if (sc->bad[HR_K_INTERVAL] || sc->bad[HR_K_MAX_INTERVAL] ||
        r->max_interval_ms >= r->interval_ms)
        return;
    if (yaml) {
        hr_cfg_fmt_duration(r->max_interval_ms, a, sizeof a);
        hr_cfg_fmt_duration(r->interval_ms, b, sizeof b);
    } else {
        snprintf(a, sizeof a, "%llu", (unsigned long long)r->max_interval_ms);
        snprintf(b, sizeof b, "%llu", (unsigned long long)r->interval_ms);
    }
    if (sc->present[HR_K_MAX_INTERVAL] || !sc->present[HR_K_INTERVAL])
        hr_cfg_problem(sc, HR_K_MAX_INTERVAL, 0, NULL, "%s is less than %s (%s)", a,
                       hr_cfg_key_name(sc, HR_K_INTERVAL), b);
    else
        hr_cfg_problem(sc, HR_K_INTERVAL, 0, NULL, "%s is greater than %s (%s)", b,
                       hr_cfg_key_name(sc, HR_K_MAX_INTERVAL), a);
}

/* A schedule and a trigger share one namespace (both are stored as triggers). */
static void check_top(const hr_config_t *c, hr_cfg_scope_t *sc)
{
    char sub[48];
    for (size_t i = 0; i < c->nschedules; i++) {
        for (size_t j = 0; c->schedules[i].name && j < c->ntriggers; j++) {
            if (!c->triggers[j].name || strcmp(c->triggers[j].name, c->schedules[i].name)) continue;
            snprintf(sub, sizeof sub, "[%zu].name", i);
            hr_cfg_problem(sc, HR_K_SCHEDULES, 0, sub,
                           "\"%s\" is also the name of a trigger (triggers[%zu])",
                           c->schedules[i].name, j);
        }
    }
}

void hr_cfg_check_section(int sec, const void *base, hr_cfg_scope_t *sc)
{
    for (int k = 0; k < HR_K_COUNT; k++)
        if (hr_cfg_keys[k].section == sec && (hr_cfg_keys[k].flags & HR_KF_REQUIRED) &&
            !sc->present[k])
            hr_cfg_problem(sc, k, 0, NULL, "required key is missing");
    if (sec == HR_SEC_TRIGGER) check_trigger(base, sc);
    if (sec == HR_SEC_RETRY) check_retry(base, sc);
    if (sec == HR_SEC_TOP) check_top(base, sc);
}

void hr_trigger_def_defaults(hr_trigger_def_t *def)
{
    memset(def, 0, sizeof *def);
    hr_cfg_defaults(HR_SEC_TRIGGER, def);
}

void hr_schedule_def_defaults(hr_trigger_def_t *def)
{
    hr_trigger_def_defaults(def);
    hr_cfg_defaults(HR_SEC_SCHEDULE, def);
}

void hr_trigger_def_clear(hr_trigger_def_t *def)
{
    if (!def) return;
    /* The schedule keys share their fields with the trigger keys, but for these three. */
    hr_cfg_free_section(HR_SEC_TRIGGER, def);
    free(def->cron);
    free(def->cron_payload);
    free(def->comment);
    memset(def, 0, sizeof *def);
}

/* The type column of docs/config.md. */
static const char *type_doc(const hr_cfg_key_t *k, char *buf, size_t n)
{
    char lo[32], hi[32];
    size_t o = 0;
    if (k->type_doc) return k->type_doc;
    switch (k->type) {
    case HR_KT_STRING:
        return "string";
    case HR_KT_INT:
        snprintf(buf, n, "integer, %lld to %lld", k->min, k->max);
        return buf;
    case HR_KT_DURATION:
        snprintf(buf, n, "duration, %s to %s", hr_cfg_fmt_duration((uint64_t)k->min, lo, sizeof lo),
                 hr_cfg_fmt_duration((uint64_t)k->max, hi, sizeof hi));
        return buf;
    case HR_KT_ENUM:
    case HR_KT_FLAGS:
        o = (size_t)snprintf(buf, n, "%s", k->type == HR_KT_FLAGS ? "list of " : "");
        for (int i = 0; k->choices[i] && o < n; i++)
            o += (size_t)snprintf(buf + o, n - o, "%s`%s`",
                                  i == 0              ? ""
                                  : k->choices[i + 1] ? ", "
                                                      : " or ",
                                  k->choices[i]);
        return buf;
    case HR_KT_LIST:
        return "list of strings";
    case HR_KT_HEADERS:
        return "mapping of strings";
    case HR_KT_SECTION:
        return "mapping";
    case HR_KT_TRIGGERS:
        return "list of mappings";
    case HR_KT_JSON:
        return "any JSON";
    default:
        return "";
    }
}

int hr_config_write_docs(FILE *f)
{
    char buf[256];
    fputs("<!-- BEGIN GENERATED by hr_config_write_docs() from the key table in "
          "src/config/config.c; do not edit by hand -->\n",
          f);
    for (int sec = 0; sec < HR_SEC_COUNT; sec++) {
        fprintf(f, "\n## %s\n\n", sections[sec].title);
        if (sections[sec].intro) fprintf(f, "%s\n\n", sections[sec].intro);
        fputs("| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n", f);
        for (int k = 0; k < HR_K_COUNT; k++) {
            const hr_cfg_key_t *key = &hr_cfg_keys[k];
            if (key->section != sec) continue;
            fprintf(f, "| `%s` | %s | ", key->name, type_doc(key, buf, sizeof buf));
            if (key->def)
                fprintf(f, "`%s`", key->def);
            else if (key->type == HR_KT_SECTION)
                fputs("see below", f);
            else
                fputs(key->flags & HR_KF_REQUIRED ? "required" : "none", f);
            fprintf(f, " | %s", key->doc);
            if (key->env) fprintf(f, " The environment variable `%s` overrides it.", key->env);
            fputs(" |\n", f);
        }
    }
    fputs("\n<!-- END GENERATED -->\n", f);
    return fflush(f) || ferror(f) ? HR_EIO : 0;
}
