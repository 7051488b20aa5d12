/* ops.c: the operator commands — status, events, event, redeliver, replay, emit.
 *
 * They talk to the database directly through the store's synchronous operations (store.h), so
 * they work whether or not `herald serve` runs; redeliver, replay (and the API's invoke) only
 * queue rows in herald.delayed, which a running serve picks up within a second.
 *
 * Every command: parse the arguments (any problem: exit 2 before touching anything), find the
 * database as apply and serve do (-c FILE, else ./herald.yaml when it exists; HERALD_DATABASE_URL
 * overrides; the default sqlite:herald.db only when that file exists; none: exit 2), open the
 * store, run, print. Output is an aligned
 * table by default and the store's JSON shapes with --json. Exit codes (docs/cli.md): 0 done;
 * 1 the database failed, herald's schema is missing, or the named trigger or event does not
 * exist ("... not found"); 2 bad arguments or configuration, or input the database rejected
 * (invalid JSON, a time it cannot read).
 *
 * JSON numbers are printed with 15 significant digits, so that a column value 0.1 shows as 0.1
 * rather than as its nearest double 0.10000000000000001; integers of up to 64 bits are exact. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/text.h"
#include "sched/cron.h"
#include "sched/scheduler.h"
#include "store/store.h"

#define JSON_OUT_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(15))
#define LIMIT_MAX 1000000
#define CELL_MAX 60 /* longer cells (error messages) are cut in tables */

/* Options; each command accepts a subset (cmd_t.flags). -c/--config and --json: every one. */
enum {
    O_TRIGGER = 1 << 0,
    O_DEAD = 1 << 1,
    O_PENDING = 1 << 2,
    O_LIMIT = 1 << 3,
    O_OFFSET = 1 << 4,
    O_FROM = 1 << 5,
    O_TO = 1 << 6,
    O_CONFIG = 1 << 7,
    O_JSON = 1 << 8,
};

typedef struct ctx ctx_t;

typedef struct cmd {
    const char *name;
    unsigned flags;          /* options allowed besides -c and --json */
    int npos;                /* positional arguments, all required */
    const char *pos_name[2]; /* for messages */
    int (*run)(ctx_t *c);
} cmd_t;

struct ctx {
    const cmd_t *cmd;
    unsigned seen; /* options given */
    const char *config, *trigger, *from, *to;
    int json, dead, pending, limit, offset;
    const char *pos[2];
    int npos;
    const hr_store_ops_t *ops;
    hr_store_t *st;
};

static const struct opt {
    const char *name, *alias;
    unsigned bit;
    int value; /* takes a value */
} opts[] = {
    {"--config", "-c", O_CONFIG, 1},   {"--json", NULL, O_JSON, 0},
    {"--trigger", NULL, O_TRIGGER, 1}, {"--dead", NULL, O_DEAD, 0},
    {"--pending", NULL, O_PENDING, 0}, {"--limit", NULL, O_LIMIT, 1},
    {"--offset", NULL, O_OFFSET, 1},   {"--from", NULL, O_FROM, 1},
    {"--to", NULL, O_TO, 1},
};

/* ------------------------------------------------------------------------------------------ */
/* Messages and exit codes                                                                    */

static int fail(const ctx_t *c, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const ctx_t *c, int exit_code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "herald: %s: ", c->cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return exit_code;
}

/* The exit code of a store error: the caller's input (2) or the database or a name (1). */
static int store_fail(const ctx_t *c, const hr_err_t *err)
{
    int code = err->code == HR_EINVAL || err->code == HR_ECONFIG ? HR_EXIT_USAGE : HR_EXIT_FAILURE;
    return fail(c, code, "%s", err->msg[0] ? err->msg : hr_strerror(err->code));
}

static void print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_OUT_FLAGS);
    fputc('\n', stdout);
}

/* ------------------------------------------------------------------------------------------ */
/* Argument checks                                                                            */

/* A decimal integer in [min, max]; 0 or -1. */
static int parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!*s) return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* n digits at s; their value or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* An RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't', 'z' and a space
 * for 'T' are allowed (RFC 3339, 5.6). */
static int is_rfc3339(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) < 20) return 0;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || s[4] != '-' || mo < 1 || mo > 12 || s[7] != '-' || d < 1 || d > mdays[mo - 1])
        return 0;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return 0;
    if (!strchr("Tt ", s[10]) || h < 0 || h > 23 || s[13] != ':' || mi < 0 || mi > 59 ||
        s[16] != ':' || se < 0 || se > 60)
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        if (!isdigit((unsigned char)p[1])) return 0;
        for (p++; isdigit((unsigned char)*p);)
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') return 1;
    if (*p != '+' && *p != '-') return 0;
    int oh = digits(p + 1, 2), om = digits(p + 4, 2);
    return oh >= 0 && oh <= 23 && p[3] == ':' && om >= 0 && om <= 59 && p[6] == '\0';
}

/* Reads the arguments after the command into c; prints the problem and returns 2 on error. */
static int parse_args(ctx_t *c, int argc, char **argv)
{
    int only_pos = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (c->npos >= c->cmd->npos)
                return fail(c, HR_EXIT_USAGE, "unexpected argument '%s'", a);
            c->pos[c->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        /* --name=value or --name value */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct opt *o = NULL;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !o; k++)
            if ((strlen(opts[k].name) == len && strncmp(opts[k].name, a, len) == 0) ||
                (opts[k].alias && strcmp(opts[k].alias, a) == 0))
                o = &opts[k];
        if (!o || !((c->cmd->flags | O_CONFIG | O_JSON) & o->bit))
            return fail(c, HR_EXIT_USAGE, "unknown option '%.*s'", (int)len, a);
        if (c->seen & o->bit) return fail(c, HR_EXIT_USAGE, "option '%s' given twice", o->name);
        c->seen |= o->bit;
        const char *v = NULL;
        if (o->value) {
            if (eq)
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return fail(c, HR_EXIT_USAGE, "option '%s' needs a value", o->name);
        } else if (eq) {
            return fail(c, HR_EXIT_USAGE, "option '%s' takes no value", o->name);
        }
        long long n = 0;
        switch (o->bit) {
        case O_CONFIG:
            c->config = v;
            break;
        case O_JSON:
            c->json = 1;
            break;
        case O_TRIGGER:
            if (!*v) return fail(c, HR_EXIT_USAGE, "--trigger: the trigger name is empty");
            c->trigger = v;
            break;
        case O_DEAD:
            c->dead = 1;
            break;
        case O_PENDING:
            c->pending = 1;
            break;
        case O_LIMIT:
            if (parse_int(v, 1, LIMIT_MAX, &n))
                return fail(c, HR_EXIT_USAGE, "--limit: expected an integer from 1 to %d, got '%s'",
                            LIMIT_MAX, v);
            c->limit = (int)n;
            break;
        case O_OFFSET:
            if (parse_int(v, 0, INT_MAX, &n))
                return fail(c, HR_EXIT_USAGE, "--offset: expected a non-negative integer, got '%s'",
                            v);
            c->offset = (int)n;
            break;
        case O_FROM:
            c->from = v;
            break;
        case O_TO:
            c->to = v;
            break;
        }
    }
    if (c->npos < c->cmd->npos)
        return fail(c, HR_EXIT_USAGE, "missing %s (usage: see herald help)",
                    c->cmd->pos_name[c->npos]);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Tables                                                                                     */

typedef struct table {
    size_t ncols;
    const char *const *head;
    const char *right; /* per column: 'r' right-aligned (numbers), else left */
    char **cells;      /* row-major, owned */
    size_t nrows;
} table_t;

/* Display width of UTF-8 text: code points, not bytes. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

/* A cell: s (NULL shows as "-"), cut to CELL_MAX code points, control characters as spaces. */
static char *cell(const char *s)
{
    if (!s) return hr_xstrdup("-");
    hr_buf_t b = HR_BUF_INIT;
    size_t w = 0;
    for (const char *p = s; *p; p++) {
        int lead = ((unsigned char)*p & 0xC0) != 0x80;
        if (lead && w == CELL_MAX - 1 && width(p) > 1) {
            hr_buf_puts(&b, "\xE2\x80\xA6"); /* … */
            break;
        }
        if (lead) w++;
        hr_buf_putc(&b, (unsigned char)*p < 0x20 ? ' ' : *p);
    }
    if (!b.data) hr_buf_puts(&b, "");
    return hr_buf_steal(&b, NULL);
}

static void table_row(table_t *t, ...)
{
    va_list ap;
    va_start(ap, t);
    t->cells = hr_xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = cell(va_arg(ap, const char *));
    t->nrows++;
    va_end(ap);
}

static void table_print(table_t *t, const char *indent)
{
    size_t *w = hr_xcalloc(t->ncols, sizeof *w);
    for (size_t i = 0; i < t->ncols; i++)
        w[i] = width(t->head[i]);
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t cw = width(t->cells[r * t->ncols + i]);
            if (cw > w[i]) w[i] = cw;
        }
    for (size_t r = 0; r <= t->nrows; r++) {
        fputs(indent, stdout);
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = r == 0 ? t->head[i] : t->cells[(r - 1) * t->ncols + i];
            size_t pad = w[i] - width(s);
            int last = i + 1 == t->ncols;
            if (t->right[i] == 'r')
                printf("%*s%s", (int)pad, "", s);
            else
                printf("%s%*s", s, last ? 0 : (int)pad, "");
            if (!last) fputs("  ", stdout);
        }
        fputc('\n', stdout);
    }
    for (size_t k = 0; k < t->nrows * t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    free(w);
}

/* Members of the store's JSON, as text for a cell. */
static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static const char *num(json_t *o, const char *key, char *buf, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%.1f", json_real_value(v));
    else
        return NULL;
    return buf;
}

/* A duration for humans: 4.2s, 3m05s, 2h07m, 3d04h. */
static const char *duration(json_t *v, char *buf, size_t n)
{
    if (!json_is_number(v)) return NULL;
    double s = json_number_value(v);
    long long t = (long long)s;
    if (s < 60)
        snprintf(buf, n, "%.1fs", s);
    else if (t < 3600)
        snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, n, "%lldh%02lldm", t / 3600, t % 3600 / 60);
    else
        snprintf(buf, n, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Commands                                                                                   */

static int run_status(ctx_t *c)
{
    json_t *j = NULL;
    hr_err_t err = {0};
    if (c->ops->status(c->st, &j, &err) != 0) return store_fail(c, &err);
    if (c->json) {
        print_json(j);
    } else if (json_array_size(j) == 0) {
        printf("no triggers\n");
    } else {
        static const char *const head[] = {"TRIGGER", "BACKLOG",       "DELAYED",
                                           "DEAD",    "LAST DELIVERY", "LAG"};
        table_t t = {.ncols = 6, .head = head, .right = "lrrrll"};
        size_t i;
        json_t *o;
        json_array_foreach(j, i, o)
        {
            char b1[32], b2[32], b3[32], b4[32];
            table_row(&t, str(o, "trigger"), num(o, "backlog", b1, sizeof b1),
                      num(o, "delayed", b2, sizeof b2), num(o, "dead", b3, sizeof b3),
                      str(o, "last_delivery_at"),
                      duration(json_object_get(o, "lag_seconds"), b4, sizeof b4));
        }
        table_print(&t, "");
    }
    json_decref(j);
    return HR_EXIT_OK;
}

static int run_events(ctx_t *c)
{
    if (c->dead && c->pending)
        return fail(c, HR_EXIT_USAGE, "--dead and --pending exclude each other");
    if (c->pending && !c->trigger)
        return fail(c, HR_EXIT_USAGE, "--pending needs --trigger (pending is per trigger)");
    hr_event_query_t q = {.trigger = c->trigger,
                          .dead_only = c->dead,
                          .pending_only = c->pending,
                          .limit = c->limit ? c->limit : 100,
                          .offset = c->offset};
    json_t *j = NULL;
    hr_err_t err = {0};
    if (c->ops->events(c->st, &q, &j, &err) != 0) return store_fail(c, &err);
    if (c->json) {
        print_json(j);
        json_decref(j);
        return HR_EXIT_OK;
    }
    if (json_array_size(j) == 0) {
        printf("no events\n");
        json_decref(j);
        return HR_EXIT_OK;
    }
    static const char *const head[] = {"SEQ", "ID",    "CREATED",  "SOURCE",
                                       "OP",  "STATE", "ATTEMPTS", "LAST ERROR"};
    table_t t = {.ncols = c->trigger ? 8 : 5, .head = head, .right = "rlllllrl"};
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        char b1[32], b2[32];
        json_t *d = json_array_get(json_object_get(e, "deliveries"), 0);
        table_row(&t, num(e, "seq", b1, sizeof b1), str(e, "id"), str(e, "created_at"),
                  str(e, "source"), str(e, "op"), d ? str(d, "state") : NULL,
                  d ? num(d, "attempts", b2, sizeof b2) : NULL, d ? str(d, "last_error") : NULL);
    }
    table_print(&t, "");
    json_decref(j);
    return HR_EXIT_OK;
}

static void print_field(const char *name, const char *value)
{
    printf("  %-11s %s\n", name, value ? value : "-");
}

static void print_json_field(const char *name, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    print_field(name, s);
    free(s);
}

static int run_event(ctx_t *c)
{
    const char *id = c->pos[0];
    if (!hr_is_uuid(id)) return fail(c, HR_EXIT_USAGE, "'%s' is not an event id (a UUID)", id);
    json_t *j = NULL;
    hr_err_t err = {0};
    if (c->ops->event(c->st, id, INT_MAX, 0, &j, &err) != 0) return store_fail(c, &err);
    if (c->json) {
        print_json(j);
        json_decref(j);
        return HR_EXIT_OK;
    }
    char b1[32], b2[32], b3[32];
    json_t *data = json_object_get(j, "data");
    printf("event %s\n", str(j, "id"));
    print_field("seq", num(j, "seq", b1, sizeof b1));
    print_field("created_at", str(j, "created_at"));
    print_field("source", str(j, "source"));
    print_field("op", str(j, "op"));
    print_json_field("old", json_object_get(data, "old"));
    print_json_field("new", json_object_get(data, "new"));
    print_json_field("session", json_object_get(j, "session_variables"));

    size_t i;
    json_t *o;
    json_t *ds = json_object_get(j, "deliveries"), *as = json_object_get(j, "attempts");
    printf("\ndeliveries\n");
    if (json_array_size(ds) == 0) {
        printf("  none: no trigger has attempted or queued this event yet\n");
    } else {
        static const char *const head[] = {"TRIGGER",      "STATE",        "ATTEMPTS",
                                           "NEXT ATTEMPT", "DELIVERED AT", "LAST ERROR"};
        table_t t = {.ncols = 6, .head = head, .right = "llrlll"};
        json_array_foreach(ds, i, o)
        {
            table_row(&t, str(o, "trigger"), str(o, "state"), num(o, "attempts", b1, sizeof b1),
                      str(o, "next_attempt_at"), str(o, "delivered_at"), str(o, "last_error"));
        }
        table_print(&t, "  ");
    }
    printf("\nattempts (newest first)\n");
    if (json_array_size(as) == 0) {
        printf("  none\n");
    } else {
        static const char *const head[] = {"TRIGGER", "ATTEMPT", "AT",      "STATUS",
                                           "LATENCY", "ERROR",   "RESPONSE"};
        table_t t = {.ncols = 7, .head = head, .right = "lrlrrll"};
        json_array_foreach(as, i, o)
        {
            json_t *lat = json_object_get(o, "latency_ms");
            if (json_is_number(lat)) snprintf(b3, sizeof b3, "%.1fms", json_number_value(lat));
            table_row(&t, str(o, "trigger"), num(o, "attempt", b1, sizeof b1), str(o, "at"),
                      num(o, "status", b2, sizeof b2), json_is_number(lat) ? b3 : NULL,
                      str(o, "error"), str(o, "response"));
        }
        table_print(&t, "  ");
    }
    json_decref(j);
    return HR_EXIT_OK;
}

static int run_redeliver(ctx_t *c)
{
    const char *id = c->pos[0];
    if (!hr_is_uuid(id)) return fail(c, HR_EXIT_USAGE, "'%s' is not an event id (a UUID)", id);
    int queued = 0;
    hr_err_t err = {0};
    if (c->ops->redeliver(c->st, id, c->trigger, &queued, &err) != 0) return store_fail(c, &err);
    if (c->json) {
        json_t *j = json_pack("{s:s, s:i}", "event_id", id, "queued", queued);
        print_json(j);
        json_decref(j);
    } else {
        printf("queued event %s for %d trigger%s\n", id, queued, queued == 1 ? "" : "s");
    }
    return HR_EXIT_OK;
}

/* Reads a --from/--to bound: a seq (digits) or an RFC 3339 time. */
static int bound(ctx_t *c, const char *opt, const char *v, int64_t *seq, const char **time)
{
    long long n;
    if (all_digits(v)) {
        if (parse_int(v, 1, LLONG_MAX, &n))
            return fail(c, HR_EXIT_USAGE, "%s: a seq must be from 1 to %lld, got '%s'", opt,
                        LLONG_MAX, v);
        *seq = n;
        return 0;
    }
    if (!is_rfc3339(v))
        return fail(c, HR_EXIT_USAGE,
                    "%s: expected a seq (a number) or an RFC 3339 time such as "
                    "2026-11-23T12:00:00Z, got '%s'",
                    opt, v);
    *time = v;
    return 0;
}

static int run_replay(ctx_t *c)
{
    hr_replay_range_t r = {0};
    if (!c->from) return fail(c, HR_EXIT_USAGE, "missing --from (a seq or an RFC 3339 time)");
    int rc = bound(c, "--from", c->from, &r.from_seq, &r.from_time);
    if (!rc && c->to) rc = bound(c, "--to", c->to, &r.to_seq, &r.to_time);
    if (rc) return rc;
    if (r.from_seq && r.to_seq && r.from_seq > r.to_seq)
        return fail(c, HR_EXIT_USAGE, "--from %lld is after --to %lld", (long long)r.from_seq,
                    (long long)r.to_seq);
    int64_t queued = 0;
    hr_err_t err = {0};
    if (c->ops->replay(c->st, c->pos[0], &r, &queued, &err) != 0) return store_fail(c, &err);
    if (c->json) {
        json_t *j = json_pack("{s:s, s:I}", "trigger", c->pos[0], "queued", (json_int_t)queued);
        print_json(j);
        json_decref(j);
    } else {
        printf("queued %lld event%s for trigger %s\n", (long long)queued, queued == 1 ? "" : "s",
               c->pos[0]);
    }
    return HR_EXIT_OK;
}

static int run_emit(ctx_t *c)
{
    const char *type = c->pos[0], *payload = c->pos[1];
    if (!*type) return fail(c, HR_EXIT_USAGE, "the event type is empty");
    /* Syntax is checked here, so that a typo never needs a database; numbers too large for
     * jansson (PostgreSQL takes them) are left to the database. */
    json_error_t je;
    json_t *j = json_loads(payload, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
    if (!j && !strstr(je.text, "overflow") && !strstr(je.text, "too big"))
        return fail(c, HR_EXIT_USAGE, "invalid JSON payload: %s (line %d, column %d)", je.text,
                    je.line, je.column);
    json_decref(j);
    char id[40];
    hr_err_t err = {0};
    if (c->ops->emit(c->st, type, payload, id, &err) != 0) return store_fail(c, &err);
    if (c->json) {
        json_t *o = json_pack("{s:s}", "event_id", id);
        print_json(o);
        json_decref(o);
    } else {
        printf("%s\n", id);
    }
    return HR_EXIT_OK;
}

/* herald schedules: every schedule with its next fire time (on the schedules' clock, see
 * src/sched/scheduler.h), read from the stored definitions, then the one-off events still to
 * deliver (store op one_offs) with the time of their next attempt (the real clock). */
static int run_schedules(ctx_t *c)
{
    hr_trigger_def_t *defs = NULL;
    size_t n = 0;
    hr_err_t err = {0};
    if (c->ops->load_triggers(c->st, &defs, &n, &err) != 0) return store_fail(c, &err);
    json_t *j = json_array();
    int64_t now_s = hr_sched_now_us() / 1000000;
    for (size_t i = 0; i < n; i++) {
        const hr_trigger_def_t *d = &defs[i];
        if (!d->cron) continue;
        hr_cron_t cron;
        int64_t next;
        char at[40] = "";
        if (hr_cron_parse(d->cron, &cron, NULL) == 0 && hr_cron_next(&cron, now_s, &next) == 0) {
            hr_format_rfc3339_us(next * 1000000, at, sizeof at);
            char *dot = strchr(at, '.');
            if (dot) strcpy(dot, "Z");
        }
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(d->name));
        json_object_set_new(o, "cron", json_string(d->cron));
        json_object_set_new(o, "webhook", json_string(d->webhook));
        json_object_set_new(o, "next_fire_at", *at ? json_string(at) : json_null());
        json_object_set_new(o, "tolerance_seconds",
                            json_integer((json_int_t)(d->tolerance_ms / 1000)));
        json_object_set_new(o, "comment", d->comment ? json_string(d->comment) : json_null());
        json_array_append_new(j, o);
    }
    for (size_t i = 0; i < n; i++)
        hr_trigger_def_clear(&defs[i]);
    free(defs);
    json_t *once = NULL, *o;
    size_t i;
    if (c->ops->one_offs(c->st, &once, &err) != 0) {
        json_decref(j);
        return store_fail(c, &err);
    }
    size_t nsched = json_array_size(j);
    json_array_foreach(once, i, o)
    {
        json_t *e = json_pack(
            "{s:b,s:O,s:O,s:O,s:O,s:O,s:O}", "one_off", 1, "id", json_object_get(o, "id"),
            "next_fire_at", json_object_get(o, "next_attempt_at"), "scheduled_time",
            json_object_get(o, "scheduled_time"), "webhook", json_object_get(o, "webhook"),
            "attempts", json_object_get(o, "attempts"), "comment", json_object_get(o, "comment"));
        json_array_append_new(j, e);
    }
    json_decref(once);
    if (c->json) {
        print_json(j);
    } else if (json_array_size(j) == 0) {
        printf("no schedules\n");
    } else {
        static const char *const head[] = {"SCHEDULE", "CRON", "NEXT FIRE", "WEBHOOK"};
        table_t t = {.ncols = 4, .head = head, .right = "llll"};
        json_array_foreach(j, i, o)
        {
            if (i >= nsched) break;
            const char *next = str(o, "next_fire_at");
            table_row(&t, str(o, "name"), str(o, "cron"), next ? next : "never", str(o, "webhook"));
        }
        if (nsched) table_print(&t, "");
        static const char *const head1[] = {"ONE-OFF EVENT", "DUE", "WEBHOOK", "ATTEMPTS"};
        table_t t1 = {.ncols = 4, .head = head1, .right = "lllr"};
        json_array_foreach(j, i, o)
        {
            if (i < nsched) continue;
            char att[24];
            snprintf(att, sizeof att, "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(o, "attempts")));
            table_row(&t1, str(o, "id"), str(o, "next_fire_at"), str(o, "webhook"), att);
        }
        if (json_array_size(j) > nsched) {
            if (nsched) printf("\n");
            table_print(&t1, "");
        }
    }
    json_decref(j);
    return HR_EXIT_OK;
}

static const cmd_t cmds[] = {
    {"status", 0, 0, {NULL, NULL}, run_status},
    {"events", O_TRIGGER | O_DEAD | O_PENDING | O_LIMIT | O_OFFSET, 0, {NULL, NULL}, run_events},
    {"event", 0, 1, {"EVENT_ID", NULL}, run_event},
    {"redeliver", O_TRIGGER, 1, {"EVENT_ID", NULL}, run_redeliver},
    {"replay", O_FROM | O_TO, 1, {"TRIGGER", NULL}, run_replay},
    {"emit", 0, 2, {"TYPE", "JSON"}, run_emit},
    {"schedules", 0, 0, {NULL, NULL}, run_schedules},
};

/* ------------------------------------------------------------------------------------------ */
/* Entry                                                                                      */

int hr_cli_is_ops_command(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmds[i].name, name) == 0) return 1;
    return 0;
}

/* Opens the store named by -c FILE, ./herald.yaml or HERALD_DATABASE_URL, resolved as apply
 * and serve do (hr_config_database_url). A SQLite file that does not exist is a missing
 * database: reporting on it must not create an empty one. */
static int open_store(ctx_t *c)
{
    const char *path = c->config;
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};
    int rc = HR_EXIT_OK, defaulted = 0;
    if (!path && access("herald.yaml", F_OK) == 0) path = "herald.yaml";
    if (path && hr_config_load(path, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return HR_EXIT_USAGE;
    }
    char *url = hr_config_database_url(cfg, &defaulted);
    const char *file = strncmp(url, "sqlite:", 7) == 0 ? url + 7 : NULL;
    if (file && access(file, F_OK) != 0) {
        if (defaulted && path)
            rc = fail(c, HR_EXIT_USAGE,
                      "no database configured: set 'database' in %s or HERALD_DATABASE_URL (the "
                      "default %s does not exist)",
                      path, url);
        else if (defaulted)
            rc = fail(c, HR_EXIT_USAGE,
                      "no database configured: pass -c FILE, create ./herald.yaml, or set "
                      "HERALD_DATABASE_URL (the default %s does not exist)",
                      url);
        else
            rc = fail(c, HR_EXIT_USAGE, "the database %s does not exist: run herald apply first",
                      url);
        goto out;
    }
    c->ops = hr_store_ops_for_url(url);
    if (!c->ops) {
        rc = fail(c, HR_EXIT_USAGE,
                  "unsupported database URL (expected postgres://… or sqlite:PATH)");
        goto out;
    }
    if (c->ops->open(url, NULL, &c->st, &err) != 0) rc = store_fail(c, &err);
out:
    free(url);
    hr_config_free(cfg);
    return rc;
}

int hr_cli_ops(int argc, char **argv)
{
    ctx_t c = {0};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0] && !c.cmd; i++)
        if (strcmp(cmds[i].name, argv[1]) == 0) c.cmd = &cmds[i];
    if (!c.cmd) return HR_EXIT_USAGE;
    int rc = parse_args(&c, argc, argv);
    if (rc) return rc;
    if ((rc = open_store(&c))) return rc;
    rc = c.cmd->run(&c);
    fflush(stdout);
    c.ops->close(c.st, NULL, NULL);
    return rc;
}
