/* config_int.h: internals shared by config.c (YAML, defaults, docs), config_json.c (canonical
 * JSON) and config_check.c (value validators). Nothing outside src/config includes this file.
 *
 * The key table (hr_cfg_keys[], defined in config.c) has one entry per configuration key. Each
 * entry says which section the key lives in, its type, where the value is stored, its default
 * (written as it would be in herald.yaml and parsed by the same code), its bounds or choices,
 * an extra validator, and the one line of documentation that docs/config.md is generated from.
 * The YAML reader, the JSON reader and writer, the environment overrides and the docs generator
 * all walk this table; only the rules that tie several keys together (table versus events,
 * max_interval versus interval, unique trigger names) are written out by hand. */
#ifndef HR_CONFIG_INT_H
#define HR_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* The sections of the file: the top level, one trigger, a trigger's retry policy. */
enum { HR_SEC_TOP = 0, HR_SEC_TRIGGER, HR_SEC_RETRY, HR_SEC_SCHEDULE, HR_SEC_COUNT };

/* Every key, in table order (which is also the order of the docs and of "expected one of"). */
enum {
    HR_K_DATABASE = 0,
    HR_K_LISTEN,
    HR_K_ADMIN_SECRET,
    HR_K_LOG_LEVEL,
    HR_K_SHUTDOWN_GRACE,
    HR_K_CAPTURE,
    HR_K_TRIGGERS,
    HR_K_SCHEDULES,
    HR_K_NAME,
    HR_K_TABLE,
    HR_K_OPERATIONS,
    HR_K_COLUMNS,
    HR_K_PAYLOAD,
    HR_K_EVENTS,
    HR_K_WEBHOOK,
    HR_K_HEADERS,
    HR_K_RETRY,
    HR_K_SECRET,
    HR_K_START,
    HR_K_CONCURRENCY,
    HR_K_MAX_RETRIES,
    HR_K_INTERVAL,
    HR_K_BACKOFF,
    HR_K_MAX_INTERVAL,
    HR_K_TIMEOUT,
    HR_K_S_NAME,
    HR_K_S_CRON,
    HR_K_S_WEBHOOK,
    HR_K_S_PAYLOAD,
    HR_K_S_HEADERS,
    HR_K_S_RETRY,
    HR_K_S_SECRET,
    HR_K_S_TOLERANCE,
    HR_K_S_COMMENT,
    HR_K_COUNT
};

typedef enum {
    HR_KT_STRING,   /* char * at off */
    HR_KT_ENUM,     /* int at off: index into choices */
    HR_KT_INT,      /* int at off, between min and max */
    HR_KT_DURATION, /* uint64_t milliseconds at off, between min and max */
    HR_KT_TABLE,    /* [schema.]table: char * table at off, char * schema at off2 */
    HR_KT_LIST,     /* list of strings: char ** at off, size_t count at off2 */
    HR_KT_FLAGS,    /* list of choices: unsigned bits at off, choice i is bit 1 << i */
    HR_KT_HEADERS,  /* mapping of strings: hr_header_t * at off, size_t count at off2 */
    HR_KT_SECTION,  /* a nested section (sub) stored inline at off */
    HR_KT_TRIGGERS, /* list of trigger sections: hr_trigger_def_t * at off, size_t at off2 */
    HR_KT_JSON,     /* any JSON value: char * JSON text (compact) at off */
} hr_cfg_type_t;

/* Flags of a key. */
enum {
    HR_KF_REQUIRED = 1, /* an absent key is an error */
    HR_KF_UNIQUE = 2,   /* HR_KT_LIST: items must be distinct */
    HR_KF_NONEMPTY = 4, /* HR_KT_LIST: an empty list is an error (omit the key instead) */
    HR_KF_SECRET = 8,   /* never repeat the value in a message */
};

/* Validates one string value (or one list item). Returns 0, or -1 with the reason in why. */
typedef int (*hr_cfg_check_fn)(const char *s, char *why, size_t n);

typedef struct hr_cfg_key {
    int section;      /* HR_SEC_* holding the key */
    const char *name; /* key in herald.yaml */
    const char *json; /* key in the canonical JSON (durations end in _ms) */
    hr_cfg_type_t type;
    size_t off;                 /* offset of the value in the section's struct */
    size_t off2;                /* second field: list count, or schema for HR_KT_TABLE */
    const char *def;            /* default, as written in herald.yaml; NULL = none */
    long long min, max;         /* HR_KT_INT bounds; HR_KT_DURATION bounds in ms */
    const char *const *choices; /* HR_KT_ENUM, HR_KT_FLAGS: NULL-terminated names */
    hr_cfg_check_fn check;      /* extra validation of a string or of each list item */
    int sub;                    /* HR_KT_SECTION, HR_KT_TRIGGERS: the nested section */
    unsigned flags;             /* HR_KF_* */
    const char *env;            /* environment variable that overrides the key, or NULL */
    const char *type_doc;       /* how docs/config.md names the type, if not derived */
    const char *doc;            /* one line of documentation */
} hr_cfg_key_t;

extern const hr_cfg_key_t hr_cfg_keys[HR_K_COUNT];

/* Where problems go while one file or JSON document is read. Messages read
 * "file:line: key: message" when file is set (YAML) and "key: message" otherwise (JSON). */
typedef struct hr_cfg_report {
    const char *file; /* NULL in JSON mode */
    hr_err_t *err;    /* may be NULL */
    int code;         /* HR_ECONFIG for files, HR_EINVAL for JSON */
    int nerr;         /* problems reported so far */
    /* The messages, held back until hr_cfg_report_flush so they can be sorted by line. */
    struct hr_cfg_msg {
        int line;
        int seq; /* order of reporting, to keep the sort stable */
        char *text;
    } * msgs;
} hr_cfg_report_t;

/* Appends the messages of rep to rep->err in line order and frees them. Returns 0 if there were
 * none, else rep->code. */
int hr_cfg_report_flush(hr_cfg_report_t *rep);

/* One section being read: lets a check name a key and its line. */
typedef struct hr_cfg_scope {
    hr_cfg_report_t *rep;
    const char *path;         /* prefix of key paths, "" or "triggers[0]." */
    int line;                 /* line of the section (YAML), for problems of the whole section */
    int lines[HR_K_COUNT];    /* line of each key given (YAML) */
    char present[HR_K_COUNT]; /* 1 if the key was given with a non-null value */
    char bad[HR_K_COUNT];     /* 1 if a problem with the key was reported */
} hr_cfg_scope_t;

/* Reports a problem with key k of the scope (k < 0: the section itself); sub is appended to the
 * key path (e.g. "[2]" or ".X-Api-Key") and may be NULL. line 0 means the line of the key (or of
 * the section). */
void hr_cfg_problem(hr_cfg_scope_t *sc, int k, int line, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Sets a scalar-typed key (STRING, ENUM, INT, DURATION, TABLE) from its text form, as written in
 * herald.yaml, in an environment variable or as a default. Returns 0, or -1 with why filled. */
int hr_cfg_set_text(const hr_cfg_key_t *k, void *base, const char *s, char *why, size_t n);
/* Index of s among k->choices (case-insensitive), or -1. */
int hr_cfg_choice(const hr_cfg_key_t *k, const char *s);
/* Writes "a, b or c" for the choices of k into buf. */
const char *hr_cfg_choices_text(const hr_cfg_key_t *k, char *buf, size_t n);
/* Name of key k in the current mode: its herald.yaml name, or its JSON name. */
const char *hr_cfg_key_name(const hr_cfg_scope_t *sc, int k);
/* Writes the names of the keys of section sec, ", "-separated, into buf. */
const char *hr_cfg_key_list(int sec, int json, char *buf, size_t n);
/* Index of the key named name in section sec (json: by JSON name), or -1. */
int hr_cfg_find_key(int sec, const char *name, int json);

/* The readers of YAML and JSON hand list items and headers to these, which validate them and
 * store them in base; i is the item's index and line its line (0 if unknown). */
void hr_cfg_list_add(hr_cfg_scope_t *sc, int k, int line, void *base, size_t i, const char *s);
void hr_cfg_flag_add(hr_cfg_scope_t *sc, int k, int line, void *base, size_t i, const char *s);
void hr_cfg_header_add(hr_cfg_scope_t *sc, int k, int line, void *base, const char *name,
                       const char *value);
/* Sets a scalar key from text and reports a failure. */
void hr_cfg_set_reported(hr_cfg_scope_t *sc, int k, int line, void *base, const char *s);

/* Fills the keys of a section with their defaults (lists and strings without default: NULL). */
void hr_cfg_defaults(int sec, void *base);
/* Frees what the keys of a section own. */
void hr_cfg_free_section(int sec, void *base);
/* The checks that tie several keys of a section together. */
void hr_cfg_check_section(int sec, const void *base, hr_cfg_scope_t *sc);

/* Validators (config_check.c). */
int hr_cfg_check_name(const char *s, char *why, size_t n);
int hr_cfg_check_cron(const char *s, char *why, size_t n);
int hr_cfg_check_webhook(const char *s, char *why, size_t n);
int hr_cfg_check_secret(const char *s, char *why, size_t n);
int hr_cfg_check_event(const char *s, char *why, size_t n);
int hr_cfg_check_column(const char *s, char *why, size_t n);
int hr_cfg_check_listen(const char *s, char *why, size_t n);
int hr_cfg_check_admin_secret(const char *s, char *why, size_t n);
int hr_cfg_check_database(const char *s, char *why, size_t n);
int hr_cfg_check_header_name(const char *s, char *why, size_t n);
int hr_cfg_check_header_value(const char *s, char *why, size_t n);
/* Raw (already unquoted) schema or table name, as stored: 1 to 63 bytes. */
int hr_cfg_check_ident(const char *s, char *why, size_t n);
/* Splits "table", "schema.table" or "\"My Schema\".\"My Table\"" into its parts (unquoted names
 * are folded to lower case, as PostgreSQL does). *schema and *table are new strings. */
int hr_cfg_parse_table(const char *s, char **schema, char **table, char *why, size_t n);
/* Formats ms the shortest way it can be written in herald.yaml: "250ms", "2s", "10m", "1h". */
const char *hr_cfg_fmt_duration(uint64_t ms, char *buf, size_t n);
/* Quotes s for a message: control characters become '?', long values are cut with "...". */
const char *hr_cfg_show(const char *s, char *buf, size_t n);

#endif
