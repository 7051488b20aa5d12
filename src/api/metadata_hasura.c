/* metadata_hasura.c: Hasura's event trigger metadata ⇄ hr_trigger_def_t (see metadata_hasura.h).
 *
 * Reading walks the JSON by hand, one small reader per Hasura type (table, operation spec,
 * retry_conf, headers, herald's extension), each given the JSON path of its value so that every
 * failure names exactly where it is. Every object is checked against its list of known fields
 * first. The mapping, in short (docs/api.md has the full table):
 *
 *   insert / update / delete      operations insert / update / delete
 *   enable_manual                 operation manual
 *   update.columns [..]           columns (an UPDATE fires only when one of them changed)
 *   <op>.payload [..]             payload: herald keeps one list for every operation, so the
 *                                 operations given must agree (all columns, or the same list)
 *   insert/delete.columns         accepted and ignored (Hasura ignores them too)
 *   retry_conf                    retry: max_retries, interval, timeout; backoff fixed (Hasura's
 *                                 rule) unless herald's backoff / max_interval_sec are given
 *   webhook / webhook_from_env    webhook ("{{VAR}}" for webhook_from_env: VAR)
 *   headers value_from_env        header value "{{VAR}}"
 *   herald {secret, start,        herald's own trigger keys, absent from Hasura
 *           concurrency}
 *
 * Writing is the inverse, so that export_metadata followed by replace_metadata changes
 * nothing. Reading and writing share the defaults below. */
#include "api/metadata_hasura.h"
#include "api/metadata_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

/* Hasura's retry_conf defaults, and the bounds of herald's retry keys (config.c). */
#define DEF_NUM_RETRIES 0
#define DEF_INTERVAL_MS 10000
#define DEF_TIMEOUT_MS 60000
#define MIN_MAX_INTERVAL_MS 600000 /* herald's default max_interval: 10m */
#define MAX_RETRIES 1000
#define MAX_INTERVAL_MS (168LL * 3600000)
#define MAX_TIMEOUT_MS 3600000LL
#define NAME_MAX_LEN 64
#define IDENT_MAX 63
#define CONCURRENCY_MAX 1024

/* ------------------------------------------------------------------------------------------ */
/* Errors and paths                                                                           */

int hr_md_fail(hr_md_err_t *e, int status, const char *code, const char *path, const char *fmt, ...)
{
    if (!e) return -1;
    va_list ap;
    e->status = status;
    e->code = code;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "$");
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_ident(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

/* A path only names a place in an error message: one longer than the buffer ends in "...". */
static void mark_cut(char *out, size_t n, int written)
{
    if (written >= 0 && (size_t)written >= n && n > 4) memcpy(out + n - 4, "...", 4);
}

void hr_md_path_key(char *out, size_t n, const char *path, const char *key)
{
    if (is_ident(key)) {
        mark_cut(out, n, snprintf(out, n, "%s.%s", path, key));
        return;
    }
    /* $.a['it''s'] would be ambiguous; Hasura writes such keys with single quotes as-is. */
    mark_cut(out, n, snprintf(out, n, "%s['%s']", path, key));
}

void hr_md_path_index(char *out, size_t n, const char *path, size_t i)
{
    mark_cut(out, n, snprintf(out, n, "%s[%zu]", path, i));
}

#define PF(e, path, ...) hr_md_fail(e, 400, "parse-failed", path, __VA_ARGS__)
#define VF(e, path, ...) hr_md_fail(e, 400, "validation-failed", path, __VA_ARGS__)

static const char *kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A quoted value for a message, cut and with control characters as '?'. */
static const char *show(const char *s, char *buf, size_t n)
{
    size_t o = 0, i = 0;
    if (n < 8) return "";
    buf[o++] = '"';
    for (; s[i] && o < n - 6; i++)
        buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    /* Do not cut a UTF-8 sequence in two. */
    if (s[i])
        while (o > 1 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;
    if (s[i] && o > 1 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0) o--;
    if (s[i]) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Readers of JSON values                                                                     */

static int need_object(const json_t *v, const char *path, hr_md_err_t *e)
{
    if (json_is_object(v)) return 0;
    return PF(e, path, "expected an object, got %s", kind(v));
}

/* Fails on the first member of o whose key is not in keys (NULL-terminated). */
static int check_keys(const json_t *o, const char *path, const char *const *keys, hr_md_err_t *e)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int known = 0;
        for (size_t i = 0; keys[i] && !known; i++)
            known = strcmp(keys[i], k) == 0;
        if (known) continue;
        char p[HR_MD_PATH_MAX], list[512];
        size_t off = 0;
        list[0] = '\0';
        for (size_t i = 0; keys[i] && off < sizeof list; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", keys[i]);
        char shown[80];
        hr_md_path_key(p, sizeof p, path, k);
        return PF(e, p, "unknown field %s (expected one of: %s)", show(k, shown, sizeof shown),
                  list);
    }
    return 0;
}

/* A member, with null treated as absent (as Hasura's optional fields do). */
static json_t *member(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int missing(const char *path, const char *key, hr_md_err_t *e)
{
    return PF(e, path, "key \"%s\" not found", key);
}

/* A string member: *out NULL when absent and not required. */
static int get_string(const json_t *o, const char *key, const char *path, int required,
                      const char **out, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    json_t *v = member(o, key);
    *out = NULL;
    if (!v) return required ? missing(path, key, e) : 0;
    hr_md_path_key(p, sizeof p, path, key);
    if (!json_is_string(v)) return PF(e, p, "expected a string, got %s", kind(v));
    *out = json_string_value(v);
    return 0;
}

static int get_bool(const json_t *o, const char *key, const char *path, int def, int *out,
                    hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    json_t *v = member(o, key);
    *out = def;
    if (!v) return 0;
    hr_md_path_key(p, sizeof p, path, key);
    if (!json_is_boolean(v)) return PF(e, p, "expected a boolean, got %s", kind(v));
    *out = json_is_true(v);
    return 0;
}

/* An integer member in [min, max]: a wrong type is parse-failed, a value out of range
 * validation-failed. */
static int get_int(const json_t *o, const char *key, const char *path, long long def, long long min,
                   long long max, long long *out, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    json_t *v = member(o, key);
    *out = def;
    if (!v) return 0;
    hr_md_path_key(p, sizeof p, path, key);
    if (!json_is_integer(v)) return PF(e, p, "expected an integer, got %s", kind(v));
    long long i = json_integer_value(v);
    if (i < min || i > max) return VF(e, p, "%lld is out of range (%lld to %lld)", i, min, max);
    *out = i;
    return 0;
}

/* A number of seconds (fractions allowed: herald's extension), as milliseconds in
 * [min_ms, max_ms]. */
static int get_seconds(const json_t *o, const char *key, const char *path, long long def_ms,
                       long long min_ms, long long max_ms, long long *out, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    json_t *v = member(o, key);
    *out = def_ms;
    if (!v) return 0;
    hr_md_path_key(p, sizeof p, path, key);
    if (!json_is_number(v)) return PF(e, p, "expected a number of seconds, got %s", kind(v));
    double s = json_number_value(v);
    if (!isfinite(s) || s <= 0) return VF(e, p, "must be greater than 0");
    if (s * 1000.0 > (double)max_ms + 0.5)
        return VF(e, p, "%g is out of range (at most %lld seconds)", s, max_ms / 1000);
    long long ms = llround(s * 1000.0);
    if (ms < min_ms) return VF(e, p, "must be at least %g seconds", (double)min_ms / 1000.0);
    *out = ms;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Values                                                                                     */

static int valid_env_name(const char *s)
{
    return *s && is_ident(s);
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* herald's trigger name rule; Hasura's names may also hold '-', which herald refuses with a
 * message that says so (docs/api.md). */
static int read_name(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    const char *s;
    char p[HR_MD_PATH_MAX], shown[96];
    if (get_string(o, "name", path, 1, &s, e)) return -1;
    hr_md_path_key(p, sizeof p, path, "name");
    size_t len = strlen(s);
    int ok = len >= 1 && len <= NAME_MAX_LEN, dash = 0;
    for (size_t i = 0; ok && i < len; i++) {
        if (s[i] == '-')
            dash = 1;
        else
            ok = isalnum((unsigned char)s[i]) || s[i] == '_';
    }
    if (ok && dash) {
        char *alt = hr_xstrdup(s);
        for (char *q = alt; *q; q++)
            if (*q == '-') *q = '_';
        VF(e, p,
           "invalid event trigger name %s: herald trigger names hold only letters, digits and "
           "underscores (no '-'); use e.g. \"%s\"",
           show(s, shown, sizeof shown), alt);
        free(alt);
        return -1;
    }
    if (!ok)
        return PF(e, p, "invalid event trigger name %s: use 1 to %d letters, digits or underscores",
                  show(s, shown, sizeof shown), NAME_MAX_LEN);
    def->name = hr_xstrdup(s);
    return 0;
}

static int check_ident(const char *s, const char *path, const char *what, hr_md_err_t *e)
{
    char shown[96];
    size_t len = strlen(s);
    if (len >= 1 && len <= IDENT_MAX) return 0;
    return VF(e, path, "invalid %s name %s (must be 1 to %d bytes)", what,
              show(s, shown, sizeof shown), IDENT_MAX);
}

/* Hasura's QualifiedTable: {"schema": s, "name": t} (schema defaults to public) or "t". */
static int read_table(const json_t *v, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"schema", "name", NULL};
    const char *schema = "public", *name;
    char p[HR_MD_PATH_MAX];
    if (json_is_string(v)) {
        name = json_string_value(v);
        if (check_ident(name, path, "table", e)) return -1;
    } else {
        if (need_object(v, path, e) || check_keys(v, path, keys, e)) return -1;
        if (get_string(v, "name", path, 1, &name, e)) return -1;
        hr_md_path_key(p, sizeof p, path, "name");
        if (check_ident(name, p, "table", e)) return -1;
        const char *s;
        if (get_string(v, "schema", path, 0, &s, e)) return -1;
        if (s) {
            hr_md_path_key(p, sizeof p, path, "schema");
            if (check_ident(s, p, "schema", e)) return -1;
            schema = s;
        }
    }
    def->schema = hr_xstrdup(schema);
    def->table = hr_xstrdup(name);
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* "*" (*star = 1) or a non-empty array of distinct column names. */
static int read_columns(const json_t *v, const char *path, const char *what, int *star, char ***out,
                        size_t *nout, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX], shown[96];
    size_t i;
    json_t *c;
    *star = 0;
    *out = NULL;
    *nout = 0;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "*") == 0) {
            *star = 1;
            return 0;
        }
        return PF(e, path, "expected \"*\" or an array of column names, got %s",
                  show(json_string_value(v), shown, sizeof shown));
    }
    if (!json_is_array(v))
        return PF(e, path, "expected \"*\" or an array of column names, got %s", kind(v));
    if (json_array_size(v) == 0) return PF(e, path, "found empty %s specification", what);
    char **cols = hr_xcalloc(json_array_size(v), sizeof *cols);
    size_t n = 0;
    json_array_foreach(v, i, c)
    {
        hr_md_path_index(p, sizeof p, path, i);
        if (!json_is_string(c)) {
            PF(e, p, "expected a column name, got %s", kind(c));
            goto fail;
        }
        const char *s = json_string_value(c);
        if (strlen(s) < 1 || strlen(s) > IDENT_MAX || has_control(s)) {
            VF(e, p, "invalid column name %s (must be 1 to %d bytes, no control characters)",
               show(s, shown, sizeof shown), IDENT_MAX);
            goto fail;
        }
        for (size_t k = 0; k < n; k++)
            if (strcmp(cols[k], s) == 0) {
                VF(e, p, "duplicate column %s", show(s, shown, sizeof shown));
                goto fail;
            }
        cols[n++] = hr_xstrdup(s);
    }
    *out = cols;
    *nout = n;
    return 0;
fail:
    free_list(cols, n);
    return -1;
}

/* One operation spec {columns, payload?} as read, before the operations are merged. */
typedef struct opspec {
    int given;
    char path[HR_MD_PATH_MAX]; /* of the spec */
    int cols_star;             /* columns "*" */
    char **cols;               /* columns as listed */
    size_t ncols;
    int payload_all; /* payload absent or "*" */
    char **payload;  /* payload as listed */
    size_t npayload;
} opspec_t;

static void opspec_free(opspec_t *s)
{
    free_list(s->cols, s->ncols);
    free_list(s->payload, s->npayload);
}

static int read_opspec(const json_t *o, const char *key, const char *path, opspec_t *s,
                       hr_md_err_t *e)
{
    static const char *const keys[] = {"columns", "payload", NULL};
    char p[HR_MD_PATH_MAX];
    json_t *v = member(o, key);
    memset(s, 0, sizeof *s);
    s->payload_all = 1;
    if (!v) return 0;
    s->given = 1;
    hr_md_path_key(s->path, sizeof s->path, path, key);
    if (need_object(v, s->path, e) || check_keys(v, s->path, keys, e)) return -1;
    json_t *c = member(v, "columns");
    if (!c) return missing(s->path, "columns", e);
    hr_md_path_key(p, sizeof p, s->path, "columns");
    if (read_columns(c, p, "column", &s->cols_star, &s->cols, &s->ncols, e)) return -1;
    json_t *pl = member(v, "payload");
    if (pl) {
        int star;
        hr_md_path_key(p, sizeof p, s->path, "payload");
        if (read_columns(pl, p, "payload", &star, &s->payload, &s->npayload, e)) return -1;
        s->payload_all = star;
    }
    return 0;
}

static int same_set(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++) {
        int found = 0;
        for (size_t k = 0; k < nb && !found; k++)
            found = strcmp(a[i], b[k]) == 0;
        if (!found) return 0;
    }
    return 1;
}

static char **copy_list(char **v, size_t n)
{
    char **c = hr_xcalloc(n ? n : 1, sizeof *c);
    for (size_t i = 0; i < n; i++)
        c[i] = hr_xstrdup(v[i]);
    return c;
}

/* insert / update / delete / enable_manual of o (the create args, or an exported trigger's
 * definition) into def's operations, columns and payload. */
static int read_ops(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const names[3] = {"insert", "update", "delete"};
    static const unsigned bits[3] = {HR_OP_INSERT, HR_OP_UPDATE, HR_OP_DELETE};
    opspec_t s[3];
    int manual = 0, rc = -1;
    const opspec_t *first_payload = NULL;
    memset(s, 0, sizeof s);
    for (int i = 0; i < 3; i++)
        if (read_opspec(o, names[i], path, &s[i], e)) goto out;
    if (get_bool(o, "enable_manual", path, 0, &manual, e)) goto out;
    if (!s[0].given && !s[1].given && !s[2].given && !manual) {
        PF(e, path, "at least one of insert, update, delete or enable_manual must be given");
        goto out;
    }
    /* herald keeps one payload list for every operation: the operations given must agree. */
    for (int i = 0; i < 3; i++) {
        if (!s[i].given) continue;
        if (!first_payload) {
            first_payload = &s[i];
            continue;
        }
        int same = first_payload->payload_all == s[i].payload_all &&
                   (s[i].payload_all || same_set(first_payload->payload, first_payload->npayload,
                                                 s[i].payload, s[i].npayload));
        if (!same) {
            char p[HR_MD_PATH_MAX];
            hr_md_path_key(p, sizeof p, s[i].path, "payload");
            VF(e, p,
               "herald sends the same payload columns for every operation: the payload of %s "
               "differs from that of %s (give every operation the same payload, or none)",
               names[i], names[first_payload - s]);
            goto out;
        }
    }
    for (int i = 0; i < 3; i++)
        if (s[i].given) def->ops |= bits[i];
    if (manual) def->ops |= HR_OP_MANUAL;
    if (s[1].given && !s[1].cols_star) {
        def->columns = copy_list(s[1].cols, s[1].ncols);
        def->ncolumns = s[1].ncols;
    }
    if (first_payload && !first_payload->payload_all) {
        def->payload = copy_list(first_payload->payload, first_payload->npayload);
        def->npayload = first_payload->npayload;
    }
    rc = 0;
out:
    for (int i = 0; i < 3; i++)
        opspec_free(&s[i]);
    return rc;
}

static int read_webhook(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    const char *url, *env;
    char p[HR_MD_PATH_MAX], shown[96];
    if (get_string(o, "webhook", path, 0, &url, e) ||
        get_string(o, "webhook_from_env", path, 0, &env, e))
        return -1;
    if (url && env) return PF(e, path, "only one of webhook or webhook_from_env should be given");
    if (!url && !env) return PF(e, path, "must provide webhook or webhook_from_env");
    if (env) {
        hr_md_path_key(p, sizeof p, path, "webhook_from_env");
        if (!valid_env_name(env))
            return VF(e, p, "invalid environment variable name %s", show(env, shown, sizeof shown));
        def->webhook = hr_xasprintf("{{%s}}", env);
        return 0;
    }
    hr_md_path_key(p, sizeof p, path, "webhook");
    if (has_control(url))
        return VF(e, p, "invalid webhook URL %s (control characters are not allowed)",
                  show(url, shown, sizeof shown));
    if (!(strncmp(url, "{{", 2) == 0 || (strncasecmp(url, "http://", 7) == 0 && url[7]) ||
          (strncasecmp(url, "https://", 8) == 0 && url[8])))
        return VF(e, p, "invalid webhook URL %s (must start with http:// or https://, or {{VAR}})",
                  show(url, shown, sizeof shown));
    def->webhook = hr_xstrdup(url);
    return 0;
}

static int is_token(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s))) return 0;
    return 1;
}

/* Hasura's headers: [{"name", "value"} or {"name", "value_from_env"}]. */
static int read_headers(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"name", "value", "value_from_env", NULL};
    char p[HR_MD_PATH_MAX], ip[HR_MD_PATH_MAX], shown[96];
    json_t *v = member(o, "headers"), *h;
    size_t i;
    if (!v) return 0;
    hr_md_path_key(p, sizeof p, path, "headers");
    if (!json_is_array(v)) return PF(e, p, "expected an array of headers, got %s", kind(v));
    json_array_foreach(v, i, h)
    {
        const char *name, *value, *env;
        hr_md_path_index(ip, sizeof ip, p, i);
        if (need_object(h, ip, e) || check_keys(h, ip, keys, e)) return -1;
        if (get_string(h, "name", ip, 1, &name, e) || get_string(h, "value", ip, 0, &value, e) ||
            get_string(h, "value_from_env", ip, 0, &env, e))
            return -1;
        char np[HR_MD_PATH_MAX];
        hr_md_path_key(np, sizeof np, ip, "name");
        if (!is_token(name))
            return VF(e, np, "invalid header name %s (must be an HTTP token)",
                      show(name, shown, sizeof shown));
        for (size_t k = 0; k < def->nheaders; k++)
            if (strcasecmp(def->headers[k].name, name) == 0)
                return VF(e, np, "duplicate header %s (names are case-insensitive)",
                          show(name, shown, sizeof shown));
        if (value && env) return PF(e, ip, "only one of value or value_from_env should be given");
        if (!value && !env) return PF(e, ip, "must provide value or value_from_env");
        char vp[HR_MD_PATH_MAX];
        hr_md_path_key(vp, sizeof vp, ip, value ? "value" : "value_from_env");
        if (env && !valid_env_name(env))
            return VF(e, vp, "invalid environment variable name %s",
                      show(env, shown, sizeof shown));
        if (value && strpbrk(value, "\r\n"))
            return VF(e, vp, "a header value must not contain CR or LF");
        def->headers = hr_xrealloc(def->headers, (def->nheaders + 1) * sizeof *def->headers);
        def->headers[def->nheaders].name = hr_xstrdup(name);
        def->headers[def->nheaders].value = value ? hr_xstrdup(value) : hr_xasprintf("{{%s}}", env);
        def->nheaders++;
    }
    return 0;
}

static uint64_t default_max_interval(uint64_t interval_ms)
{
    return interval_ms > MIN_MAX_INTERVAL_MS ? interval_ms : MIN_MAX_INTERVAL_MS;
}

/* retry_conf {num_retries, interval_sec, timeout_sec} plus herald's backoff and
 * max_interval_sec; absent: Hasura's defaults (0 retries, 10 s, 60 s), backoff fixed. */
static int read_retry(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"num_retries", "interval_sec",     "timeout_sec",
                                       "backoff",     "max_interval_sec", NULL};
    char p[HR_MD_PATH_MAX];
    long long retries, interval, timeout, max_interval;
    const char *backoff = NULL;
    json_t *v = member(o, "retry_conf");
    json_t *none = NULL;
    hr_md_path_key(p, sizeof p, path, "retry_conf");
    if (!v) v = none = json_object();
    int rc = -1;
    if (need_object(v, p, e) || check_keys(v, p, keys, e)) goto out;
    if (get_int(v, "num_retries", p, DEF_NUM_RETRIES, 0, MAX_RETRIES, &retries, e) ||
        get_seconds(v, "interval_sec", p, DEF_INTERVAL_MS, 1, MAX_INTERVAL_MS, &interval, e) ||
        get_seconds(v, "timeout_sec", p, DEF_TIMEOUT_MS, 1, MAX_TIMEOUT_MS, &timeout, e) ||
        get_string(v, "backoff", p, 0, &backoff, e))
        goto out;
    if (get_seconds(v, "max_interval_sec", p, (long long)default_max_interval((uint64_t)interval),
                    1, MAX_INTERVAL_MS, &max_interval, e))
        goto out;
    char bp[HR_MD_PATH_MAX];
    if (backoff && strcmp(backoff, "fixed") != 0 && strcmp(backoff, "exponential") != 0) {
        char shown[64];
        hr_md_path_key(bp, sizeof bp, p, "backoff");
        VF(e, bp, "invalid value %s (expected fixed or exponential)",
           show(backoff, shown, sizeof shown));
        goto out;
    }
    if (max_interval < interval) {
        hr_md_path_key(bp, sizeof bp, p, "max_interval_sec");
        VF(e, bp, "%g is less than interval_sec (%g)", (double)max_interval / 1000.0,
           (double)interval / 1000.0);
        goto out;
    }
    def->retry.max_retries = (int)retries;
    def->retry.interval_ms = (uint64_t)interval;
    def->retry.timeout_ms = (uint64_t)timeout;
    def->retry.max_interval_ms = (uint64_t)max_interval;
    def->retry.backoff =
        backoff && strcmp(backoff, "exponential") == 0 ? HR_BACKOFF_EXPONENTIAL : HR_BACKOFF_FIXED;
    rc = 0;
out:
    json_decref(none);
    return rc;
}

/* herald's extension {secret, start, concurrency}: trigger keys Hasura does not have. */
static int read_herald(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"secret", "start", "concurrency", NULL};
    char p[HR_MD_PATH_MAX], sp[HR_MD_PATH_MAX], shown[64];
    json_t *v = member(o, "herald");
    if (!v) return 0;
    hr_md_path_key(p, sizeof p, path, "herald");
    if (need_object(v, p, e) || check_keys(v, p, keys, e)) return -1;
    const char *secret, *start;
    long long conc;
    if (get_string(v, "secret", p, 0, &secret, e) || get_string(v, "start", p, 0, &start, e) ||
        get_int(v, "concurrency", p, def->concurrency, 1, CONCURRENCY_MAX, &conc, e))
        return -1;
    if (start) {
        if (strcmp(start, "now") != 0 && strcmp(start, "beginning") != 0) {
            hr_md_path_key(sp, sizeof sp, p, "start");
            return VF(e, sp, "invalid value %s (expected now or beginning)",
                      show(start, shown, sizeof shown));
        }
        def->start_beginning = strcmp(start, "beginning") == 0;
    }
    if (secret) {
        free(def->secret);
        def->secret = hr_xstrdup(secret);
    }
    def->concurrency = (int)conc;
    return 0;
}

/* Hasura fields herald has no use for: transforms change the request and are refused; the
 * clean-up schedule and trigger_on_replication are accepted and ignored (docs/api.md). */
static int read_unsupported(const json_t *o, const char *path, hr_md_err_t *e)
{
    static const char *const refused[] = {"request_transform", "response_transform"};
    char p[HR_MD_PATH_MAX];
    for (int i = 0; i < 2; i++)
        if (member(o, refused[i])) {
            hr_md_path_key(p, sizeof p, path, refused[i]);
            return hr_md_fail(e, 400, "not-supported", p, "%s is not supported by herald",
                              refused[i]);
        }
    json_t *v = member(o, "cleanup_config");
    hr_md_path_key(p, sizeof p, path, "cleanup_config");
    if (v && need_object(v, p, e)) return -1;
    int b;
    return get_bool(o, "trigger_on_replication", path, 0, &b, e);
}

/* The fields every kind of trigger shares: webhook, headers, retry_conf, herald, the ignored
 * ones. */
static int read_common(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    if (read_webhook(o, path, def, e) || read_headers(o, path, def, e) ||
        read_retry(o, path, def, e) || read_herald(o, path, def, e) || read_unsupported(o, path, e))
        return -1;
    return 0;
}

/* The definition must be one herald itself accepts (config/config_json.c checks it as the
 * store will). */
static int final_check(const hr_trigger_def_t *def, const char *path, hr_md_err_t *e)
{
    hr_trigger_def_t check;
    hr_err_t err = {0};
    json_t *j = hr_trigger_def_to_json(def);
    int rc = hr_trigger_def_from_json(j, &check, &err);
    json_decref(j);
    if (rc) {
        char *nl = strchr(err.msg, '\n');
        if (nl) *nl = '\0';
        return VF(e, path, "%s", err.msg);
    }
    hr_trigger_def_clear(&check);
    return 0;
}

static int finish(int rc, hr_trigger_def_t *def)
{
    if (rc) hr_trigger_def_clear(def);
    return rc;
}

int hr_md_trigger_from_create(const json_t *args, const char *path, hr_trigger_def_t *def,
                              int *replace, hr_md_err_t *e)
{
    static const char *const keys[] = {"name",
                                       "table",
                                       "source",
                                       "webhook",
                                       "webhook_from_env",
                                       "insert",
                                       "update",
                                       "delete",
                                       "enable_manual",
                                       "retry_conf",
                                       "headers",
                                       "replace",
                                       "herald",
                                       "request_transform",
                                       "response_transform",
                                       "cleanup_config",
                                       "trigger_on_replication",
                                       NULL};
    char p[HR_MD_PATH_MAX], shown[96];
    const char *source;
    hr_trigger_def_defaults(def);
    *replace = 0;
    if (need_object(args, path, e) || check_keys(args, path, keys, e)) return finish(-1, def);
    if (read_name(args, path, def, e)) return finish(-1, def);
    if (get_string(args, "source", path, 0, &source, e)) return finish(-1, def);
    if (source && strcmp(source, "default") != 0) {
        hr_md_path_key(p, sizeof p, path, "source");
        return finish(hr_md_fail(e, 400, "not-exists", p, "source with name %s does not exist",
                                 show(source, shown, sizeof shown)),
                      def);
    }
    json_t *t = member(args, "table");
    if (!t) return finish(missing(path, "table", e), def);
    hr_md_path_key(p, sizeof p, path, "table");
    if (read_table(t, p, def, e) || read_ops(args, path, def, e) || read_common(args, path, def, e))
        return finish(-1, def);
    if (get_bool(args, "replace", path, 0, replace, e)) return finish(-1, def);
    return finish(final_check(def, path, e), def);
}

/* An event trigger as exported under sources[].tables[].event_triggers[]. */
static int trigger_from_export(const json_t *o, const char *path, const char *schema,
                               const char *table, hr_trigger_def_t *def, hr_md_err_t *e)
{
    static const char *const keys[] = {"name",
                                       "definition",
                                       "retry_conf",
                                       "webhook",
                                       "webhook_from_env",
                                       "headers",
                                       "herald",
                                       "request_transform",
                                       "response_transform",
                                       "cleanup_config",
                                       "trigger_on_replication",
                                       NULL};
    static const char *const def_keys[] = {"enable_manual", "insert", "update", "delete", NULL};
    char p[HR_MD_PATH_MAX];
    hr_trigger_def_defaults(def);
    if (need_object(o, path, e) || check_keys(o, path, keys, e)) return finish(-1, def);
    if (read_name(o, path, def, e)) return finish(-1, def);
    json_t *d = member(o, "definition");
    if (!d) return finish(missing(path, "definition", e), def);
    hr_md_path_key(p, sizeof p, path, "definition");
    if (need_object(d, p, e) || check_keys(d, p, def_keys, e) || read_ops(d, p, def, e))
        return finish(-1, def);
    def->schema = hr_xstrdup(schema);
    def->table = hr_xstrdup(table);
    if (read_common(o, path, def, e)) return finish(-1, def);
    return finish(final_check(def, path, e), def);
}

/* A trigger on custom events, in herald's extension: name, events, and the common fields. */
static int trigger_from_custom(const json_t *o, const char *path, hr_trigger_def_t *def,
                               hr_md_err_t *e)
{
    static const char *const keys[] = {
        "name", "events", "retry_conf", "webhook", "webhook_from_env", "headers", "herald", NULL};
    char p[HR_MD_PATH_MAX], ip[HR_MD_PATH_MAX], shown[96];
    size_t i;
    json_t *ev;
    hr_trigger_def_defaults(def);
    if (need_object(o, path, e) || check_keys(o, path, keys, e)) return finish(-1, def);
    if (read_name(o, path, def, e)) return finish(-1, def);
    json_t *v = member(o, "events");
    if (!v) return finish(missing(path, "events", e), def);
    hr_md_path_key(p, sizeof p, path, "events");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return finish(PF(e, p, "expected a non-empty array of event types, got %s",
                         json_is_array(v) ? "an empty array" : kind(v)),
                      def);
    def->events = hr_xcalloc(json_array_size(v), sizeof *def->events);
    json_array_foreach(v, i, ev)
    {
        hr_md_path_index(ip, sizeof ip, p, i);
        if (!json_is_string(ev))
            return finish(PF(e, ip, "expected an event type, got %s", kind(ev)), def);
        const char *s = json_string_value(ev);
        for (size_t k = 0; k < def->nevents; k++)
            if (strcmp(def->events[k], s) == 0)
                return finish(VF(e, ip, "duplicate event type %s", show(s, shown, sizeof shown)),
                              def);
        def->events[def->nevents++] = hr_xstrdup(s);
    }
    if (read_common(o, path, def, e)) return finish(-1, def);
    return finish(final_check(def, path, e), def);
}

/* ------------------------------------------------------------------------------------------ */
/* Whole documents                                                                            */

typedef struct defs {
    hr_trigger_def_t *v;
    size_t n;
    char **paths; /* where each was read, for duplicate names */
} defs_t;

static void defs_free(defs_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        hr_trigger_def_clear(&d->v[i]);
        free(d->paths[i]);
    }
    free(d->v);
    free(d->paths);
    memset(d, 0, sizeof *d);
}

/* Adds def (taken over) unless its name is taken. */
static int defs_add(defs_t *d, hr_trigger_def_t *def, const char *path, hr_md_err_t *e)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->v[i].name, def->name) == 0) {
            char p[HR_MD_PATH_MAX], shown[96];
            hr_md_path_key(p, sizeof p, path, "name");
            VF(e, p, "event trigger name %s is used twice (also at %s)",
               show(def->name, shown, sizeof shown), d->paths[i]);
            hr_trigger_def_clear(def);
            return -1;
        }
    }
    d->v = hr_xrealloc(d->v, (d->n + 1) * sizeof *d->v);
    d->paths = hr_xrealloc(d->paths, (d->n + 1) * sizeof *d->paths);
    d->v[d->n] = *def;
    d->paths[d->n] = hr_xstrdup(path);
    d->n++;
    memset(def, 0, sizeof *def);
    return 0;
}

/* tables[]: {"table": …, "event_triggers": [...]}; other table metadata is ignored. With
 * defs NULL, only fails if a table has event triggers (a source herald does not serve). */
static int read_tables(const json_t *tables, const char *path, defs_t *d, const char *source,
                       hr_md_err_t *e)
{
    char tp[HR_MD_PATH_MAX], p[HR_MD_PATH_MAX], ep[HR_MD_PATH_MAX], shown[96];
    size_t i, k;
    json_t *t, *et;
    if (!json_is_array(tables))
        return PF(e, path, "expected an array of tables, got %s", kind(tables));
    json_array_foreach(tables, i, t)
    {
        hr_md_path_index(tp, sizeof tp, path, i);
        if (need_object(t, tp, e)) return -1;
        json_t *ets = member(t, "event_triggers");
        hr_md_path_key(p, sizeof p, tp, "event_triggers");
        if (ets && !json_is_array(ets))
            return PF(e, p, "expected an array of event triggers, got %s", kind(ets));
        if (!d) {
            if (ets && json_array_size(ets) > 0)
                return hr_md_fail(e, 400, "not-exists", path,
                                  "source with name %s does not exist (herald serves one "
                                  "database, the source \"default\")",
                                  show(source, shown, sizeof shown));
            continue;
        }
        hr_trigger_def_t tab = {0};
        json_t *tv = member(t, "table");
        if (!tv) return missing(tp, "table", e);
        char tabp[HR_MD_PATH_MAX];
        hr_md_path_key(tabp, sizeof tabp, tp, "table");
        if (read_table(tv, tabp, &tab, e)) return -1;
        int rc = 0;
        json_array_foreach(ets, k, et)
        {
            hr_trigger_def_t def;
            hr_md_path_index(ep, sizeof ep, p, k);
            if ((rc = trigger_from_export(et, ep, tab.schema, tab.table, &def, e))) break;
            if ((rc = defs_add(d, &def, ep, e))) break;
        }
        free(tab.schema);
        free(tab.table);
        if (rc) return -1;
    }
    return 0;
}

static int read_custom(const json_t *md, const char *path, defs_t *d, int *has_custom,
                       hr_md_err_t *e)
{
    static const char *const keys[] = {"event_triggers", NULL};
    char p[HR_MD_PATH_MAX], lp[HR_MD_PATH_MAX], ip[HR_MD_PATH_MAX];
    size_t i;
    json_t *v = member(md, "herald"), *t;
    *has_custom = 0;
    if (!v) return 0;
    *has_custom = 1;
    hr_md_path_key(p, sizeof p, path, "herald");
    if (need_object(v, p, e) || check_keys(v, p, keys, e)) return -1;
    json_t *list = member(v, "event_triggers");
    if (!list) return 0;
    hr_md_path_key(lp, sizeof lp, p, "event_triggers");
    if (!json_is_array(list))
        return PF(e, lp, "expected an array of event triggers, got %s", kind(list));
    json_array_foreach(list, i, t)
    {
        hr_trigger_def_t def;
        hr_md_path_index(ip, sizeof ip, lp, i);
        if (trigger_from_custom(t, ip, &def, e) || defs_add(d, &def, ip, e)) return -1;
    }
    return 0;
}

int hr_md_defs_from_metadata(const json_t *md, const char *path, hr_trigger_def_t **out,
                             size_t *nout, int *has_custom, int *has_cron, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX], sp[HR_MD_PATH_MAX], np[HR_MD_PATH_MAX];
    defs_t d = {0};
    long long version;
    size_t i;
    json_t *s;
    *out = NULL;
    *nout = 0;
    *has_custom = 0;
    if (has_cron) *has_cron = 0;
    if (need_object(md, path, e)) return -1;
    if (get_int(md, "version", path, 3, 1, 3, &version, e)) return -1;
    if (version == 1) {
        hr_md_path_key(p, sizeof p, path, "version");
        return PF(e, p, "metadata version 1 is not supported (use 2 or 3)");
    }
    if (version == 2) {
        json_t *tables = member(md, "tables");
        hr_md_path_key(p, sizeof p, path, "tables");
        if (tables && read_tables(tables, p, &d, "default", e)) goto fail;
    } else {
        json_t *sources = member(md, "sources");
        hr_md_path_key(p, sizeof p, path, "sources");
        if (sources && !json_is_array(sources)) {
            PF(e, p, "expected an array of sources, got %s", kind(sources));
            goto fail;
        }
        json_array_foreach(sources, i, s)
        {
            const char *name;
            hr_md_path_index(sp, sizeof sp, p, i);
            if (need_object(s, sp, e) || get_string(s, "name", sp, 1, &name, e)) goto fail;
            json_t *tables = member(s, "tables");
            hr_md_path_key(np, sizeof np, sp, "tables");
            if (!tables) continue;
            if (read_tables(tables, np, strcmp(name, "default") == 0 ? &d : NULL, name, e))
                goto fail;
        }
    }
    if (read_custom(md, path, &d, has_custom, e)) goto fail;
    json_t *cron = member(md, "cron_triggers");
    if (cron) {
        hr_md_path_key(p, sizeof p, path, "cron_triggers");
        if (!json_is_array(cron)) {
            PF(e, p, "expected an array of cron triggers, got %s", kind(cron));
            goto fail;
        }
        if (has_cron) *has_cron = 1;
        json_array_foreach(cron, i, s)
        {
            hr_trigger_def_t def;
            hr_md_path_index(sp, sizeof sp, p, i);
            if (hr_md_cron_from_export(s, sp, &def, e) || defs_add(&d, &def, sp, e)) goto fail;
        }
    }
    for (i = 0; i < d.n; i++)
        free(d.paths[i]);
    free(d.paths);
    *out = d.v;
    *nout = d.n;
    return 0;
fail:
    defs_free(&d);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                    */

static json_t *str_list(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* A duration as Hasura's seconds: an integer when whole. */
static json_t *seconds(uint64_t ms)
{
    if (ms % 1000 == 0) return json_integer((json_int_t)(ms / 1000));
    return json_real((double)ms / 1000.0);
}

/* VAR when s is exactly "{{VAR}}", else NULL (a new string). */
static char *env_ref(const char *s)
{
    size_t n = strlen(s);
    if (n < 5 || strncmp(s, "{{", 2) != 0 || strcmp(s + n - 2, "}}") != 0) return NULL;
    char *name = hr_xstrndup(s + 2, n - 4);
    if (valid_env_name(name)) return name;
    free(name);
    return NULL;
}

static json_t *opspec_json(const hr_trigger_def_t *def, int update)
{
    json_t *o = json_object();
    json_object_set_new(o, "columns",
                        update && def->columns ? str_list(def->columns, def->ncolumns)
                                               : json_string("*"));
    if (def->payload) json_object_set_new(o, "payload", str_list(def->payload, def->npayload));
    return o;
}

static void common_json(const hr_trigger_def_t *def, json_t *o)
{
    json_t *r = json_object();
    json_object_set_new(r, "num_retries", json_integer(def->retry.max_retries));
    json_object_set_new(r, "interval_sec", seconds(def->retry.interval_ms));
    json_object_set_new(r, "timeout_sec", seconds(def->retry.timeout_ms));
    if (def->retry.backoff == HR_BACKOFF_EXPONENTIAL)
        json_object_set_new(r, "backoff", json_string("exponential"));
    if (def->retry.max_interval_ms != default_max_interval(def->retry.interval_ms))
        json_object_set_new(r, "max_interval_sec", seconds(def->retry.max_interval_ms));
    json_object_set_new(o, "retry_conf", r);
    hr_mdi_webhook_json(def, o);
    if (def->nheaders) json_object_set_new(o, "headers", hr_mdi_headers_json(def));
    hr_mdi_herald_json(def, o);
}

void hr_mdi_webhook_json(const hr_trigger_def_t *def, json_t *o)
{
    char *env = env_ref(def->webhook ? def->webhook : "");
    if (env)
        json_object_set_new(o, "webhook_from_env", json_string(env));
    else
        json_object_set_new(o, "webhook", json_string(def->webhook ? def->webhook : ""));
    free(env);
}

json_t *hr_mdi_headers_json(const hr_trigger_def_t *def)
{
    json_t *hs = json_array();
    for (size_t i = 0; i < def->nheaders; i++) {
        json_t *h = json_object();
        json_object_set_new(h, "name", json_string(def->headers[i].name));
        char *venv = env_ref(def->headers[i].value);
        if (venv)
            json_object_set_new(h, "value_from_env", json_string(venv));
        else
            json_object_set_new(h, "value", json_string(def->headers[i].value));
        free(venv);
        json_array_append_new(hs, h);
    }
    return hs;
}

void hr_mdi_herald_json(const hr_trigger_def_t *def, json_t *o)
{
    hr_trigger_def_t dflt;
    hr_trigger_def_defaults(&dflt);
    json_t *x = json_object();
    if (def->secret) json_object_set_new(x, "secret", json_string(def->secret));
    if (def->start_beginning) json_object_set_new(x, "start", json_string("beginning"));
    if (def->concurrency != dflt.concurrency)
        json_object_set_new(x, "concurrency", json_integer(def->concurrency));
    hr_trigger_def_clear(&dflt);
    if (json_object_size(x))
        json_object_set_new(o, "herald", x);
    else
        json_decref(x);
}

json_t *hr_md_trigger_to_json(const hr_trigger_def_t *def)
{
    if (def->cron) return hr_md_cron_to_json(def); /* never as an event trigger */
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(def->name));
    if (def->table) {
        json_t *d = json_object();
        json_object_set_new(d, "enable_manual", json_boolean(def->ops & HR_OP_MANUAL));
        if (def->ops & HR_OP_INSERT) json_object_set_new(d, "insert", opspec_json(def, 0));
        if (def->ops & HR_OP_UPDATE) json_object_set_new(d, "update", opspec_json(def, 1));
        if (def->ops & HR_OP_DELETE) json_object_set_new(d, "delete", opspec_json(def, 0));
        json_object_set_new(o, "definition", d);
    } else {
        json_object_set_new(o, "events", str_list(def->events, def->nevents));
    }
    common_json(def, o);
    return o;
}

static int by_table(const void *a, const void *b)
{
    const hr_trigger_def_t *x = *(const hr_trigger_def_t *const *)a,
                           *y = *(const hr_trigger_def_t *const *)b;
    int c = strcmp(x->schema, y->schema);
    if (!c) c = strcmp(x->table, y->table);
    return c ? c : strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
    const hr_trigger_def_t *x = *(const hr_trigger_def_t *const *)a,
                           *y = *(const hr_trigger_def_t *const *)b;
    return strcmp(x->name, y->name);
}

json_t *hr_md_metadata_from_defs(const hr_trigger_def_t *defs, size_t n, const char *kind_name)
{
    const hr_trigger_def_t **tab = hr_xcalloc(n ? n : 1, sizeof *tab),
                           **cus = hr_xcalloc(n ? n : 1, sizeof *cus);
    size_t nt = 0, nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (defs[i].cron) continue; /* schedules are not event triggers */
        if (defs[i].table)
            tab[nt++] = &defs[i];
        else
            cus[nc++] = &defs[i];
    }
    qsort(tab, nt, sizeof *tab, by_table);
    qsort(cus, nc, sizeof *cus, by_name);
    json_t *tables = json_array(), *cur = NULL, *ets = NULL;
    for (size_t i = 0; i < nt; i++) {
        if (!cur || strcmp(tab[i]->schema, tab[i - 1]->schema) != 0 ||
            strcmp(tab[i]->table, tab[i - 1]->table) != 0) {
            cur = json_object();
            json_t *t = json_object();
            json_object_set_new(t, "schema", json_string(tab[i]->schema));
            json_object_set_new(t, "name", json_string(tab[i]->table));
            json_object_set_new(cur, "table", t);
            ets = json_array();
            json_object_set_new(cur, "event_triggers", ets);
            json_array_append_new(tables, cur);
        }
        json_array_append_new(ets, hr_md_trigger_to_json(tab[i]));
    }
    json_t *src = json_object();
    json_object_set_new(src, "name", json_string("default"));
    json_object_set_new(src, "kind", json_string(kind_name ? kind_name : "postgres"));
    json_object_set_new(src, "tables", tables);
    json_t *sources = json_array();
    json_array_append_new(sources, src);
    json_t *custom = json_array();
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(custom, hr_md_trigger_to_json(cus[i]));
    json_t *ext = json_object();
    json_object_set_new(ext, "event_triggers", custom);
    json_t *md = json_object();
    json_object_set_new(md, "version", json_integer(3));
    json_object_set_new(md, "sources", sources);
    /* Schedules as Hasura's cron_triggers, by name; left out when there are none. */
    const hr_trigger_def_t **crs = hr_xcalloc(n ? n : 1, sizeof *crs);
    size_t ncr = 0;
    for (size_t i = 0; i < n; i++)
        if (defs[i].cron) crs[ncr++] = &defs[i];
    qsort(crs, ncr, sizeof *crs, by_name);
    if (ncr) {
        json_t *crons = json_array();
        for (size_t i = 0; i < ncr; i++)
            json_array_append_new(crons, hr_md_cron_to_json(crs[i]));
        json_object_set_new(md, "cron_triggers", crons);
    }
    free(crs);
    json_object_set_new(md, "herald", ext);
    free(tab);
    free(cus);
    return md;
}

/* ------------------------------------------------------------------------------------------ */
/* Log rows                                                                                   */

static json_t *copy_or_null(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v ? json_deep_copy(v) : json_null();
}

/* One part of a log source: a quoted identifier ("" for ") or text up to the next '.'. */
static const char *source_part(const char *s, char **out)
{
    hr_buf_t b = HR_BUF_INIT;
    if (*s == '"') {
        for (s++; *s; s++) {
            if (*s == '"') {
                if (s[1] != '"') {
                    s++;
                    break;
                }
                s++;
            }
            hr_buf_putc(&b, *s);
        }
    } else {
        for (; *s && *s != '.'; s++)
            hr_buf_putc(&b, *s);
    }
    if (!b.data) hr_buf_puts(&b, "");
    *out = hr_buf_steal(&b, NULL);
    return s;
}

json_t *hr_md_event_log(const json_t *event, const json_t *delivery, const char *trigger,
                        const char *schema, const char *table)
{
    const char *op = json_string_value(json_object_get(event, "op"));
    const char *source = json_string_value(json_object_get(event, "source"));
    int emitted = op && strcmp(op, "EMIT") == 0;
    char *sch = NULL, *tab = NULL;
    if (!emitted && (!schema || !table) && source) {
        const char *rest = source_part(source, &sch);
        if (*rest == '.')
            source_part(rest + 1, &tab);
        else {
            free(sch);
            sch = NULL;
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", copy_or_null(event, "id"));
    json_object_set_new(o, "schema_name",
                        emitted           ? json_null()
                        : schema && table ? json_string(schema)
                        : sch             ? json_string(sch)
                                          : json_null());
    json_object_set_new(o, "table_name",
                        emitted           ? json_null()
                        : schema && table ? json_string(table)
                        : tab             ? json_string(tab)
                                          : json_null());
    json_object_set_new(o, "trigger_name", trigger ? json_string(trigger) : json_null());
    json_t *payload = json_object();
    json_object_set_new(payload, "op", copy_or_null(event, "op"));
    json_object_set_new(payload, "data", copy_or_null(event, "data"));
    json_object_set_new(payload, "session_variables", copy_or_null(event, "session_variables"));
    json_object_set_new(payload, "trace_context", json_null());
    if (emitted) json_object_set_new(payload, "type", copy_or_null(event, "source"));
    json_object_set_new(o, "payload", payload);
    const char *state = delivery ? json_string_value(json_object_get(delivery, "state")) : NULL;
    json_t *attempts = delivery ? json_object_get(delivery, "attempts") : NULL;
    json_object_set_new(o, "delivered", json_boolean(state && strcmp(state, "delivered") == 0));
    json_object_set_new(o, "error", json_boolean(state && strcmp(state, "dead") == 0));
    json_object_set_new(o, "tries",
                        json_integer(json_is_integer(attempts) ? json_integer_value(attempts) : 0));
    json_object_set_new(o, "created_at", copy_or_null(event, "created_at"));
    json_object_set_new(o, "locked", json_null());
    json_object_set_new(o, "next_retry_at",
                        delivery ? copy_or_null(delivery, "next_attempt_at") : json_null());
    json_object_set_new(o, "archived", json_false());
    free(sch);
    free(tab);
    return o;
}

json_t *hr_md_invocation_log(const json_t *a)
{
    json_t *o = json_object(), *id = json_object_get(a, "id");
    json_t *status = json_object_get(a, "status");
    char num[32];
    if (json_is_integer(id)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        json_object_set_new(o, "id", json_string(num));
    } else {
        json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null());
    }
    json_object_set_new(o, "trigger_name", copy_or_null(a, "trigger"));
    json_object_set_new(o, "event_id", copy_or_null(a, "event_id"));
    json_object_set_new(o, "http_status",
                        json_is_integer(status) ? json_deep_copy(status) : json_null());
    /* herald keeps no copy of the request it sent. */
    json_t *req = json_object();
    json_object_set_new(req, "payload", json_null());
    json_object_set_new(req, "headers", json_array());
    json_object_set_new(req, "version", json_string("2"));
    json_object_set_new(o, "request", req);
    json_t *resp = json_object(), *data = json_object();
    if (json_is_integer(status)) {
        json_t *body = json_object_get(a, "response");
        json_object_set_new(resp, "type", json_string("webhook_response"));
        json_object_set_new(data, "status", json_deep_copy(status));
        json_object_set_new(data, "body",
                            json_is_string(body) ? json_deep_copy(body) : json_string(""));
        json_object_set_new(data, "headers", json_array());
    } else {
        json_object_set_new(resp, "type", json_string("client_error"));
        json_object_set_new(data, "message", copy_or_null(a, "error"));
    }
    json_object_set_new(resp, "data", data);
    json_object_set_new(resp, "version", json_string("2"));
    json_object_set_new(o, "response", resp);
    json_object_set_new(o, "created_at", copy_or_null(a, "at"));
    /* herald's own: which attempt, how long, what went wrong. */
    json_object_set_new(o, "attempt", copy_or_null(a, "attempt"));
    json_object_set_new(o, "latency_ms", copy_or_null(a, "latency_ms"));
    json_object_set_new(o, "error", copy_or_null(a, "error"));
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared with metadata_sched.c (metadata_int.h)                                              */

const char *hr_mdi_kind(const json_t *v)
{
    return kind(v);
}

int hr_mdi_need_object(const json_t *v, const char *path, hr_md_err_t *e)
{
    return need_object(v, path, e);
}

int hr_mdi_check_keys(const json_t *o, const char *path, const char *const *keys, hr_md_err_t *e)
{
    return check_keys(o, path, keys, e);
}

int hr_mdi_get_string(const json_t *o, const char *key, const char *path, int required,
                      const char **out, hr_md_err_t *e)
{
    return get_string(o, key, path, required, out, e);
}

int hr_mdi_get_bool(const json_t *o, const char *key, const char *path, int def, int *out,
                    hr_md_err_t *e)
{
    return get_bool(o, key, path, def, out, e);
}

int hr_mdi_get_int(const json_t *o, const char *key, const char *path, long long def, long long min,
                   long long max, long long *out, hr_md_err_t *e)
{
    return get_int(o, key, path, def, min, max, out, e);
}

int hr_mdi_get_seconds(const json_t *o, const char *key, const char *path, long long def_ms,
                       long long min_ms, long long max_ms, long long *out, hr_md_err_t *e)
{
    return get_seconds(o, key, path, def_ms, min_ms, max_ms, out, e);
}

int hr_mdi_read_name(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    return read_name(o, path, def, e);
}

int hr_mdi_read_webhook(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    return read_webhook(o, path, def, e);
}

int hr_mdi_read_headers(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    return read_headers(o, path, def, e);
}

int hr_mdi_read_herald(const json_t *o, const char *path, hr_trigger_def_t *def, hr_md_err_t *e)
{
    return read_herald(o, path, def, e);
}

int hr_mdi_read_unsupported(const json_t *o, const char *path, hr_md_err_t *e)
{
    return read_unsupported(o, path, e);
}

int hr_mdi_final_check(const hr_trigger_def_t *def, const char *path, hr_md_err_t *e)
{
    return final_check(def, path, e);
}

json_t *hr_mdi_seconds(uint64_t ms)
{
    return seconds(ms);
}
