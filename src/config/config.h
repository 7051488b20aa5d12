/* config.h: herald.yaml and stored trigger definitions.
 *
 * One key table in config.c drives parsing, defaults, validation and docs/config.md. Errors read
 * "file:line: key: message", one line per problem (key paths like triggers[0].retry.interval).
 * Unknown keys are errors. Environment overrides (HERALD_DATABASE_URL, HERALD_LISTEN,
 * HERALD_ADMIN_SECRET, HERALD_LOG_LEVEL) are applied by hr_config_load after the file is read. */
#ifndef HR_CONFIG_H
#define HR_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/log.h"

typedef enum { HR_BACKOFF_EXPONENTIAL = 0, HR_BACKOFF_FIXED } hr_backoff_kind_t;
/* How herald apply captures a PostgreSQL table (key capture): the native module when the server
 * can load it, else PL/pgSQL (auto); the module or an error (native); PL/pgSQL always. */
typedef enum { HR_CAPTURE_AUTO = 0, HR_CAPTURE_NATIVE, HR_CAPTURE_PLPGSQL } hr_capture_mode_t;

typedef struct hr_retry {
    int max_retries;           /* retries after the first attempt; default 5 */
    uint64_t interval_ms;      /* first retry delay (ceiling of the jittered delay); default 2s */
    hr_backoff_kind_t backoff; /* default exponential */
    uint64_t max_interval_ms;  /* ceiling for any delay, Retry-After included; default 10m */
    uint64_t timeout_ms;       /* per-attempt HTTP timeout; default 30s */
} hr_retry_t;

typedef struct hr_header {
    char *name;
    char *value; /* may hold {{VAR}}, expanded at delivery */
} hr_header_t;

/* Operation bits of a trigger. */
enum { HR_OP_INSERT = 1, HR_OP_UPDATE = 2, HR_OP_DELETE = 4, HR_OP_MANUAL = 8 };

typedef struct hr_trigger_def {
    char *name;     /* [A-Za-z0-9_]{1,64} */
    char *schema;   /* table triggers: schema (default "public"); NULL for event triggers */
    char *table;    /* table triggers: table name; NULL for event triggers */
    unsigned ops;   /* HR_OP_* bits; table triggers only */
    char **columns; /* UPDATE fires only if one of these changed; NULL = any column */
    size_t ncolumns;
    char **payload; /* columns kept in old/new; NULL = all */
    size_t npayload;
    char **events; /* custom event types ("order.placed", "invoice.*"); NULL for table triggers */
    size_t nevents;
    char *webhook; /* URL, may hold {{VAR}} */
    hr_header_t *headers;
    size_t nheaders;
    hr_retry_t retry;
    char *secret;        /* whsec_… key or {{VAR}}; NULL = unsigned */
    int start_beginning; /* 1: a new cursor starts at the beginning of the log; 0: now */
    int concurrency;     /* max requests in flight; default 64 */
    /* Schedules (cron triggers: `schedules:` in herald.yaml) have cron set, and neither table
     * nor events. Their events are op CRON with source = the name (see src/sched/scheduler.c). */
    char *cron;            /* 5-field cron expression (UTC), validated by hr_cron_parse */
    char *cron_payload;    /* JSON text of the schedule's payload (any JSON); NULL = null */
    uint64_t tolerance_ms; /* a fire later than this past its time is dead; default 6h */
    char *comment;         /* free text, sent as "comment"; NULL = null */
} hr_trigger_def_t;

typedef struct hr_config {
    char *path;     /* the file read, for messages */
    char *database; /* connection URL (postgres://… or sqlite:PATH) as written; NULL if unset */
    int database_from_env; /* database came from HERALD_DATABASE_URL */
    char *listen;          /* host:port (port 0: any free port) or "off"; default 127.0.0.1:8080 */
    char *admin_secret;    /* key admin_secret or HERALD_ADMIN_SECRET; NULL = none */
    hr_log_level_t log_level;   /* default info */
    uint64_t shutdown_grace_ms; /* key shutdown_grace; default 10s */
    hr_capture_mode_t capture;  /* key capture; default auto */
    hr_trigger_def_t *triggers; /* triggers, then the schedules (cron set) */
    size_t ntriggers;
    hr_trigger_def_t *schedules; /* only while parsing: moved to the end of triggers */
    size_t nschedules;
} hr_config_t;

/* Reads and validates a config file; applies environment overrides. */
int hr_config_load(const char *path, hr_config_t **out, hr_err_t *err);
/* The same from memory; name is used in messages in place of a file name. No env overrides. */
int hr_config_parse(const char *text, size_t len, const char *name, hr_config_t **out,
                    hr_err_t *err);
void hr_config_free(hr_config_t *cfg);

/* The database to open for cfg (NULL: no configuration file), as a new string: the configured
 * URL, a relative sqlite:PATH made absolute against the configuration file's directory (or, when
 * it came from HERALD_DATABASE_URL or there is no file, the working directory). With no database
 * configured at all: sqlite:herald.db in that same directory, and *defaulted = 1 (else 0). */
char *hr_config_database_url(const hr_config_t *cfg, int *defaulted);

/* Parses "250ms", "2s", "10m", "1h" or plain (possibly fractional) seconds. */
int hr_duration_parse(const char *s, uint64_t *out_ms);
/* Fills def with the documented defaults (everything else zero/NULL). */
void hr_trigger_def_defaults(hr_trigger_def_t *def);
/* The same for a schedule: a trigger's defaults plus the schedule keys' (tolerance 6h). */
void hr_schedule_def_defaults(hr_trigger_def_t *def);
/* Frees the members of def (not def itself). */
void hr_trigger_def_clear(hr_trigger_def_t *def);
/* Canonical JSON of a definition, as stored in the database (keys sorted; durations in ms).
 * Two definitions are equal iff their canonical JSON is equal. Returns a new reference. */
json_t *hr_trigger_def_to_json(const hr_trigger_def_t *def);
/* Reads a definition from its canonical JSON; validates as the YAML path does. A schedule's
 * canonical JSON is the one with a "cron" key. */
int hr_trigger_def_from_json(const json_t *j, hr_trigger_def_t *out, hr_err_t *err);

/* Writes the reference of every key (generated from the key table) as markdown, between
 * "<!-- BEGIN GENERATED" and "<!-- END GENERATED -->" lines: the generated part of
 * docs/config.md. Returns 0 or HR_EIO. */
int hr_config_write_docs(FILE *f);

/* Notes on the functions above: a file that cannot be read gives "FILE: cannot read: REASON" and
 * HR_ECONFIG, as do problems in the file and bad environment variables ("HERALD_LOG_LEVEL:
 * invalid value ..."); err is reset first. hr_trigger_def_from_json fails with HR_EINVAL and
 * leaves out cleared (nothing to free); out need not be initialised. */

#endif
