/* payload.c: the Hasura-compatible request body of an event (see payload.h, HASURA-COMPAT.md).
 *
 * The body is written straight into the caller's buffer, member by member, with no white space
 * of its own. Strings (id, names, op, type) are escaped with hr_buf_put_json_string. The JSON
 * members of the event (old, new, session variables) are spliced in as the text the database
 * printed, without parsing or validation: that is the hot path, one copy per member (so the
 * body is exactly as compact as that text).
 *
 * With t->payload set, old and new keep only the listed columns. A small validating scanner
 * walks the top-level object and copies the listed members' key and value text, in the listed
 * order, dropping white space outside strings (jsonb prints {"a": 1}). A column absent from the
 * row is left out; a key repeated in the row counts by its last occurrence, as in jsonb and
 * jansson. Copying text instead of parsing and re-serialising with jansson keeps every value
 * exact: jansson rejects integers beyond 64 bits, which a PostgreSQL numeric holds happily. A
 * value that is not an object (a MANUAL or EMIT payload may be any JSON) is validated and
 * copied whole. Invalid JSON there is HR_EINVAL. Session variables are never filtered.
 *
 * On error nothing is left appended to the output buffer. */
#include "dispatch/payload.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/text.h"

/* Containers nested deeper than this in a filtered row are rejected (the scanner recurses). */
#define MAX_DEPTH 512

/* One member of the top-level object being filtered: spans into the source text. */
typedef struct member {
    const char *key; /* the key's JSON string literal, quotes included */
    size_t key_len;
    const char *val; /* the value's JSON text */
    size_t val_len;
} member_t;

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* p points at '"'. Returns the position after the closing quote, or NULL if invalid. */
static const char *scan_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p++;
        if (c == '"') return p;
        if (c < 0x20) return NULL;
        if (c != '\\') continue;
        if (p >= end) return NULL;
        c = (unsigned char)*p++;
        if (c == 'u') {
            if (end - p < 4) return NULL;
            for (int i = 0; i < 4; i++)
                if (!is_hex(p[i])) return NULL;
            p += 4;
        } else if (!memchr("\"\\/bfnrt", c, 8)) {
            return NULL;
        }
    }
    return NULL;
}

static const char *scan_digits(const char *p, const char *end)
{
    if (p >= end || !is_digit(*p)) return NULL;
    while (p < end && is_digit(*p))
        p++;
    return p;
}

static const char *scan_number(const char *p, const char *end)
{
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0')
        p++;
    else if (!(p = scan_digits(p, end)))
        return NULL;
    if (p < end && *p == '.' && !(p = scan_digits(p + 1, end))) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!(p = scan_digits(p, end))) return NULL;
    }
    return p;
}

static const char *scan_literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n)) return NULL;
    return p + n;
}

/* p points at a value (no leading space). Returns the position after it, or NULL if invalid. */
static const char *scan_value(const char *p, const char *end, int depth)
{
    if (p >= end) return NULL;
    switch (*p) {
    case '"':
        return scan_string(p, end);
    case 't':
        return scan_literal(p, end, "true");
    case 'f':
        return scan_literal(p, end, "false");
    case 'n':
        return scan_literal(p, end, "null");
    case '{':
    case '[': {
        int object = *p == '{';
        char close = object ? '}' : ']';
        if (depth >= MAX_DEPTH) return NULL;
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (object) {
                if (p >= end || *p != '"' || !(p = scan_string(p, end))) return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = skip_ws(p + 1, end);
            }
            if (!(p = scan_value(p, end, depth + 1))) return NULL;
            p = skip_ws(p, end);
            if (p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = skip_ws(p + 1, end);
        }
    }
    default:
        return scan_number(p, end);
    }
}

/* Splits the top-level object at p into members. Returns the count, or -1 if the text is not
 * exactly one valid object (surrounding white space allowed). *out is freed by the caller. */
static long scan_members(const char *p, const char *end, member_t **out)
{
    member_t *m = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    p = skip_ws(p + 1, end); /* past '{' */
    if (p < end && *p == '}') {
        p++;
        goto done;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            m = hr_xrealloc(m, cap * sizeof *m);
        }
        const char *k = p;
        if (p >= end || *p != '"' || !(p = scan_string(p, end))) goto fail;
        m[n].key = k;
        m[n].key_len = (size_t)(p - k);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') goto fail;
        const char *v = skip_ws(p + 1, end);
        if (!(p = scan_value(v, end, 1))) goto fail;
        m[n].val = v;
        m[n].val_len = (size_t)(p - v);
        n++;
        p = skip_ws(p, end);
        if (p >= end) goto fail;
        if (*p == '}') {
            p++;
            break;
        }
        if (*p != ',') goto fail;
        p = skip_ws(p + 1, end);
    }
done:
    if (skip_ws(p, end) != end) goto fail;
    *out = m;
    return (long)n;
fail:
    free(m);
    return -1;
}

/* 1 if the JSON string literal key (quotes included) decodes to name[0..name_len). */
static int key_equals(const member_t *m, const char *name, size_t name_len)
{
    const char *s = m->key + 1;
    size_t n = m->key_len - 2;
    if (!memchr(s, '\\', n)) return n == name_len && memcmp(s, name, n) == 0;
    /* Escaped keys are rare: let jansson decode them. */
    json_t *j = json_loadb(m->key, m->key_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int eq = j && json_is_string(j) && json_string_length(j) == name_len &&
             memcmp(json_string_value(j), name, name_len) == 0;
    json_decref(j);
    return eq;
}

/* Appends n bytes of valid JSON text without the white space outside strings. */
static int put_compact(hr_buf_t *out, const char *p, size_t n)
{
    const char *end = p + n, *run = p;
    int rc = 0, in_string = 0;
    for (; p < end && !rc; p++) {
        if (in_string) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            rc = hr_buf_append(out, run, (size_t)(p - run));
            run = p + 1;
        }
    }
    return rc ? rc : hr_buf_append(out, run, (size_t)(end - run));
}

/* Appends text (a row or payload) keeping only the members named in t->payload. */
static int put_filtered(hr_buf_t *out, const hr_trigger_def_t *t, const char *text)
{
    const char *end = text + strlen(text);
    const char *p = skip_ws(text, end);
    if (p >= end || *p != '{') {
        const char *q = scan_value(p, end, 0);
        if (!q || skip_ws(q, end) != end) return HR_EINVAL;
        return put_compact(out, p, (size_t)(q - p));
    }

    member_t *m;
    long n = scan_members(p, end, &m);
    if (n < 0) return HR_EINVAL;
    int rc = hr_buf_putc(out, '{');
    int first = 1;
    for (size_t i = 0; i < t->npayload && !rc; i++) {
        const char *name = t->payload[i];
        if (!name) continue;
        int repeated = 0;
        for (size_t j = 0; j < i && !repeated; j++)
            repeated = t->payload[j] && !strcmp(t->payload[j], name);
        if (repeated) continue;
        size_t name_len = strlen(name);
        const member_t *hit = NULL;
        for (long k = n - 1; k >= 0 && !hit; k--)
            if (key_equals(&m[k], name, name_len)) hit = &m[k];
        if (!hit) continue;
        if (!first) rc = hr_buf_putc(out, ',');
        first = 0;
        if (!rc) rc = hr_buf_append(out, hit->key, hit->key_len);
        if (!rc) rc = hr_buf_putc(out, ':');
        if (!rc) rc = put_compact(out, hit->val, hit->val_len);
    }
    if (!rc) rc = hr_buf_putc(out, '}');
    free(m);
    return rc;
}

/* Appends a row or payload: null, the text as is, or its selected columns. */
static int put_json(hr_buf_t *out, const hr_trigger_def_t *t, const char *text)
{
    if (!text) return hr_buf_puts(out, "null");
    if (t->payload) return put_filtered(out, t, text);
    return hr_buf_puts(out, text);
}

static int put_string(hr_buf_t *out, const char *s)
{
    return s ? hr_buf_put_json_string(out, s) : hr_buf_puts(out, "null");
}

/* The session as stored: JSON text, or (PostgreSQL, schema 3) the setting's text as the
 * application set it, which goes out as a JSON string when it is not JSON. */
static int put_session(hr_buf_t *out, const char *s)
{
    if (!s) return hr_buf_puts(out, "null");
    return hr_json_db_is_json(s) ? hr_buf_puts(out, s) : hr_buf_put_json_string(out, s);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((rc = (expr)) != 0) goto out;                                                          \
    } while (0)

int hr_payload_build(const hr_trigger_def_t *t, const hr_event_t *ev, int current_retry,
                     hr_buf_t *out)
{
    if (!t || !ev || !out) return HR_EINVAL;
    size_t start = out->len;
    int emitted = ev->op && !strcmp(ev->op, "EMIT");
    int rc;

    TRY(hr_buf_puts(out, "{\"id\":"));
    TRY(put_string(out, ev->id));
    TRY(hr_buf_puts(out, ",\"created_at\":"));
    TRY(put_string(out, ev->created_at));
    TRY(hr_buf_puts(out, ",\"trigger\":{\"name\":"));
    TRY(put_string(out, t->name));
    TRY(hr_buf_puts(out, "},\"table\":"));
    if (emitted || (!ev->schema && !ev->table)) {
        TRY(hr_buf_puts(out, "null"));
    } else {
        TRY(hr_buf_puts(out, "{\"schema\":"));
        TRY(put_string(out, ev->schema));
        TRY(hr_buf_puts(out, ",\"name\":"));
        TRY(put_string(out, ev->table));
        TRY(hr_buf_putc(out, '}'));
    }
    TRY(hr_buf_puts(out, ",\"event\":{\"op\":"));
    TRY(put_string(out, ev->op));
    if (emitted) {
        TRY(hr_buf_puts(out, ",\"type\":"));
        TRY(put_string(out, ev->type));
    }
    TRY(hr_buf_puts(out, ",\"data\":{\"old\":"));
    TRY(put_json(out, t, emitted ? NULL : ev->old_json));
    TRY(hr_buf_puts(out, ",\"new\":"));
    TRY(put_json(out, t, ev->new_json));
    TRY(hr_buf_puts(out, "},\"session_variables\":"));
    TRY(put_session(out, ev->session_json));
    TRY(hr_buf_printf(out,
                      ",\"trace_context\":null},\"delivery_info\":{\"max_retries\":%d,"
                      "\"current_retry\":%d}}",
                      t->retry.max_retries, current_retry));
out:
    if (rc) {
        out->len = start;
        if (out->data) out->data[start] = '\0';
    }
    return rc;
}

#undef TRY

/* ------------------------------------------------------------------------------------------ */
/* Scheduled events                                                                           */

/* The log row of a fire holds new = {"scheduled_time", "payload", "comment"} (one-off events
 * also "created_at"); this path is once a minute per schedule, not the hot path, so new is
 * parsed with jansson and the body written with it (keys in Hasura's order). */
int hr_payload_build_scheduled(const hr_trigger_def_t *t, const hr_event_t *ev, hr_buf_t *out)
{
    if (!t || !ev || !out || !ev->new_json) return HR_EINVAL;
    json_t *n = json_loads(ev->new_json, 0, NULL);
    if (!json_is_object(n)) {
        json_decref(n);
        return HR_EINVAL;
    }
    int one_off = ev->op && !strcmp(ev->op, "ONE_OFF");
    json_t *b = json_object();
    json_t *nul = json_null();
    json_object_set_new(b, "id", ev->id ? json_string(ev->id) : json_null());
    if (!one_off) json_object_set_new(b, "name", json_string(t->name));
    json_t *st = json_object_get(n, "scheduled_time");
    json_object_set(b, "scheduled_time", st ? st : nul);
    json_t *p = json_object_get(n, "payload");
    json_object_set(b, "payload", p ? p : nul);
    json_t *c = json_object_get(n, "comment");
    json_object_set(b, "comment", c ? c : nul);
    if (one_off) {
        json_t *ca = json_object_get(n, "created_at");
        json_object_set(b, "created_at", ca ? ca : nul);
    }
    char *text = json_dumps(b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = text ? hr_buf_puts(out, text) : HR_EINVAL;
    free(text);
    json_decref(b);
    json_decref(nul);
    json_decref(n);
    return rc;
}

int hr_payload_scheduled_time(const hr_event_t *ev, int64_t *unix_s)
{
    json_t *n = ev && ev->new_json ? json_loads(ev->new_json, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(n, "scheduled_time"));
    struct tm tm = {0};
    char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    int rc = HR_EINVAL;
    if (end) {
        if (*end == '.')
            for (end++; *end >= '0' && *end <= '9'; end++) {
            }
        if (*end == 'Z' && end[1] == '\0') {
            *unix_s = (int64_t)timegm(&tm);
            rc = 0;
        }
    }
    json_decref(n);
    return rc;
}

/* Seconds member key of o as milliseconds; def_ms when missing or not a positive number. */
static uint64_t ms_member(const json_t *o, const char *key, uint64_t def_ms)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v) || json_number_value(v) < 0) return def_ms;
    return (uint64_t)(json_number_value(v) * 1000.0 + 0.5);
}

int hr_payload_one_off_def(const hr_event_t *ev, hr_trigger_def_t *def)
{
    memset(def, 0, sizeof *def);
    json_t *n = ev && ev->new_json ? json_loads(ev->new_json, 0, NULL) : NULL;
    const char *url = json_string_value(json_object_get(n, "webhook"));
    if (!url) {
        json_decref(n);
        return HR_EINVAL;
    }
    hr_trigger_def_defaults(def);
    def->name = hr_xstrdup(HR_ONE_OFF_TRIGGER);
    def->webhook = hr_xstrdup(url);
    json_t *hs = json_object_get(n, "headers"), *h;
    size_t i;
    def->headers = hr_xcalloc(json_array_size(hs) + 1, sizeof *def->headers);
    json_array_foreach(hs, i, h)
    {
        const char *hn = json_string_value(json_object_get(h, "name"));
        const char *hv = json_string_value(json_object_get(h, "value"));
        if (!hn || !hv) continue;
        def->headers[def->nheaders].name = hr_xstrdup(hn);
        def->headers[def->nheaders].value = hr_xstrdup(hv);
        def->nheaders++;
    }
    json_t *r = json_object_get(n, "retry");
    json_t *nr = json_object_get(r, "num_retries");
    def->retry.max_retries =
        json_is_integer(nr) && json_integer_value(nr) >= 0 ? (int)json_integer_value(nr) : 0;
    def->retry.interval_ms = ms_member(r, "retry_interval_seconds", 10000);
    def->retry.max_interval_ms = def->retry.interval_ms;
    def->retry.backoff = HR_BACKOFF_FIXED;
    def->retry.timeout_ms = ms_member(r, "timeout_seconds", 60000);
    def->tolerance_ms = ms_member(r, "tolerance_seconds", 21600000);
    json_decref(n);
    return 0;
}
