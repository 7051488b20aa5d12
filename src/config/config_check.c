/* config_check.c: validation of single configuration values.
 *
 * Each hr_cfg_check_* function looks at one string (a key's value or one item of a list) and
 * either accepts it or writes why not, without the "file:line: key:" prefix, which the caller
 * adds. The same functions serve herald.yaml, the environment overrides and the canonical JSON
 * of stored triggers, so a definition is judged the same way whichever path it came in by.
 * Messages never repeat a secret or a database URL, which may hold a password. This file also
 * holds the duration parser and the splitting of [schema.]table names. */
#include "config/config_int.h"
#include "sched/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IDENT_MAX 63  /* PostgreSQL's NAMEDATALEN - 1 */
#define EVENT_MAX 255 /* longest custom event type or pattern */

const char *hr_cfg_show(const char *s, char *buf, size_t n)
{
    size_t o = 0, i = 0, keep = n > 8 ? n - 6 : 1; /* room for the quotes, "..." and NUL */
    if (n < 4) return "";
    buf[o++] = '"';
    for (; s[i] && o < keep; i++)
        buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i]) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

const char *hr_cfg_fmt_duration(uint64_t ms, char *buf, size_t n)
{
    if (ms == 0)
        snprintf(buf, n, "0s");
    else if (ms % 3600000 == 0)
        snprintf(buf, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, n, "%llums", (unsigned long long)ms);
    return buf;
}

/* Digits, an optional fraction of up to 9 digits, an optional unit; no sign, no spaces. The
 * result is rounded to the nearest millisecond. */
int hr_duration_parse(const char *s, uint64_t *out_ms)
{
    uint64_t whole = 0, frac = 0, scale = 1, unit = 1000, ms;
    const char *p = s;
    if (!s || !isdigit((unsigned char)*p)) return HR_EINVAL;
    for (; isdigit((unsigned char)*p); p++)
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, (uint64_t)(*p - '0'), &whole))
            return HR_EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return HR_EINVAL;
        for (int nd = 0; isdigit((unsigned char)*p); p++, nd++) {
            if (nd == 9) return HR_EINVAL;
            frac = frac * 10 + (uint64_t)(*p - '0');
            scale *= 10;
        }
    }
    if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0 || *p == '\0')
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60000;
    else if (strcmp(p, "h") == 0)
        unit = 3600000;
    else
        return HR_EINVAL;
    /* frac < 10^9 and unit <= 3.6e6, so frac * unit cannot overflow. */
    if (__builtin_mul_overflow(whole, unit, &ms) ||
        __builtin_add_overflow(ms, (frac * unit + scale / 2) / scale, &ms))
        return HR_EINVAL;
    if (out_ms) *out_ms = ms;
    return 0;
}

int hr_cfg_check_name(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);
    int ok = len >= 1 && len <= 64;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '_';
    if (ok) return 0;
    char shown[96];
    snprintf(why, n, "invalid name %s (use 1 to 64 letters, digits or underscores)",
             hr_cfg_show(s, shown, sizeof shown));
    return -1;
}

int hr_cfg_check_cron(const char *s, char *why, size_t n)
{
    hr_cron_t c;
    hr_err_t err = {0};
    int64_t next;
    if (hr_cron_parse(s, &c, &err)) {
        snprintf(why, n, "%s", err.msg);
        return -1;
    }
    /* Any time after 1970 will do: an expression that can fire does so within 8 years. */
    if (hr_cron_next(&c, 0, &next) == HR_ENOTFOUND) {
        char shown[96];
        snprintf(why, n, "cron %s never fires (no month has the day it names)",
                 hr_cfg_show(s, shown, sizeof shown));
        return -1;
    }
    return 0;
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

int hr_cfg_check_webhook(const char *s, char *why, size_t n)
{
    char shown[96];
    if (has_control(s)) {
        snprintf(why, n, "invalid webhook URL %s (control characters are not allowed)",
                 hr_cfg_show(s, shown, sizeof shown));
        return -1;
    }
    /* After a leading {{VAR}} the scheme is only known at delivery. */
    if (strncmp(s, "{{", 2) == 0) return 0;
    if ((strncasecmp(s, "http://", 7) == 0 && s[7]) || (strncasecmp(s, "https://", 8) == 0 && s[8]))
        return 0;
    snprintf(why, n, "invalid webhook URL %s (must start with http:// or https://)",
             hr_cfg_show(s, shown, sizeof shown));
    return -1;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* 1 if s is non-empty standard-alphabet base64, as the signer (dispatch/sign.c) decodes it: at
 * most two '=' of padding, which may be left out, and no impossible length. */
static int is_base64(const char *s)
{
    size_t n = strlen(s), data = 0, pad = 0;
    while (data < n && b64val((unsigned char)s[data]) >= 0)
        data++;
    while (data + pad < n && s[data + pad] == '=')
        pad++;
    if (data + pad != n || data == 0 || pad > 2) return 0;
    if (pad && n % 4) return 0;
    return data % 4 != 1;
}

int hr_cfg_check_secret(const char *s, char *why, size_t n)
{
    if (strstr(s, "{{")) return 0; /* read from the environment at delivery */
    if (strncmp(s, "whsec_", 6) == 0 && is_base64(s + 6)) return 0;
    snprintf(why, n, "invalid secret (expected whsec_ followed by base64, or a {{VAR}} reference)");
    return -1;
}

int hr_cfg_check_event(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);
    int ok = len >= 1 && len <= EVENT_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)s[i]) || strchr("._-:", s[i]) || (s[i] == '*' && i == len - 1);
    if (ok) return 0;
    char shown[96];
    snprintf(why, n,
             "invalid event type %s (use letters, digits, '.', '_', '-' or ':', with an optional "
             "trailing '*')",
             hr_cfg_show(s, shown, sizeof shown));
    return -1;
}

int hr_cfg_check_ident(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);
    if (len >= 1 && len <= IDENT_MAX) return 0;
    char shown[96];
    snprintf(why, n, "invalid name %s (must be 1 to %d bytes)", hr_cfg_show(s, shown, sizeof shown),
             IDENT_MAX);
    return -1;
}

int hr_cfg_check_column(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);
    if (len >= 1 && len <= IDENT_MAX && !has_control(s)) return 0;
    char shown[96];
    snprintf(why, n, "invalid column name %s (must be 1 to %d bytes, no control characters)",
             hr_cfg_show(s, shown, sizeof shown), IDENT_MAX);
    return -1;
}

int hr_cfg_check_listen(const char *s, char *why, size_t n)
{
    if (strcasecmp(s, "off") == 0) return 0; /* no HTTP server */
    const char *colon = strrchr(s, ':'), *host_end = colon;
    int ok = colon && colon > s && colon[1] && strlen(colon + 1) <= 5 && !has_control(s);
    for (const char *p = colon ? colon + 1 : s; ok && *p; p++)
        ok = isdigit((unsigned char)*p);
    if (ok) ok = atoi(colon + 1) <= 65535; /* 0: any free port */
    /* An IPv6 host is bracketed: [::1]:8080. */
    if (ok && s[0] == '[') ok = host_end[-1] == ']' && host_end - s > 2;
    if (ok && s[0] != '[') ok = memchr(s, ':', (size_t)(colon - s)) == NULL;
    if (ok) return 0;
    char shown[96];
    snprintf(why, n, "invalid listen address %s (expected host:port, e.g. 127.0.0.1:8080, or off)",
             hr_cfg_show(s, shown, sizeof shown));
    return -1;
}

int hr_cfg_check_admin_secret(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);
    /* Never quoted back: messages must not repeat a secret. A header value loses its outer
     * spaces on the way, so a secret with them could never match. */
    if (len == 0 || has_control(s) || isspace((unsigned char)s[0]) ||
        isspace((unsigned char)s[len - 1])) {
        snprintf(why, n,
                 "invalid admin secret (must be non-empty, without control characters "
                 "or leading and trailing spaces)");
        return -1;
    }
    return 0;
}

int hr_cfg_check_database(const char *s, char *why, size_t n)
{
    if (!has_control(s) && ((strncmp(s, "postgres://", 11) == 0 && s[11]) ||
                            (strncmp(s, "postgresql://", 13) == 0 && s[13]) ||
                            (strncmp(s, "sqlite:", 7) == 0 && s[7])))
        return 0;
    snprintf(why, n,
             "invalid database URL (expected postgres://..., postgresql://... or "
             "sqlite:PATH)");
    return -1;
}

int hr_cfg_check_header_name(const char *s, char *why, size_t n)
{
    /* RFC 9110 token characters. */
    int ok = *s != '\0';
    for (const char *p = s; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p);
    if (ok) return 0;
    char shown[96];
    snprintf(why, n, "invalid header name %s (must be an HTTP token)",
             hr_cfg_show(s, shown, sizeof shown));
    return -1;
}

int hr_cfg_check_header_value(const char *s, char *why, size_t n)
{
    if (!strpbrk(s, "\r\n")) return 0;
    snprintf(why, n, "header value must not contain CR or LF");
    return -1;
}

/* One part of a table name, from s to e; quoted parts are unquoted ("" stands for "), unquoted
 * parts are checked and folded to lower case. Returns a new string or NULL with why filled. */
static char *ident_part(const char *s, const char *e, char *why, size_t n)
{
    char *out;
    size_t len = (size_t)(e - s), o = 0;
    if (len >= 2 && s[0] == '"' && e[-1] == '"') {
        out = hr_xmalloc(len);
        for (const char *p = s + 1; p < e - 1; p++) {
            if (*p == '"' && (p + 1 >= e - 1 || *++p != '"')) {
                snprintf(why, n, "misplaced double quote (write \"\" for a quote inside a name)");
                goto fail;
            }
            out[o++] = *p;
        }
        out[o] = '\0';
        if (o == 0) {
            snprintf(why, n, "empty quoted name");
            goto fail;
        }
    } else {
        if (len == 0 || isdigit((unsigned char)s[0])) {
            snprintf(why, n, len ? "a name must not start with a digit" : "empty name");
            return NULL;
        }
        out = hr_xmalloc(len + 1);
        for (const char *p = s; p < e; p++) {
            if (!isalnum((unsigned char)*p) && *p != '_' && *p != '$') {
                snprintf(why, n,
                         "unquoted names may hold only letters, digits, '_' and '$' (quote "
                         "other names with double quotes)");
                goto fail;
            }
            out[o++] = (char)tolower((unsigned char)*p);
        }
        out[o] = '\0';
    }
    if (o > IDENT_MAX) {
        snprintf(why, n, "a name is longer than %d bytes", IDENT_MAX);
        goto fail;
    }
    return out;
fail:
    free(out);
    return NULL;
}

int hr_cfg_parse_table(const char *s, char **schema, char **table, char *why, size_t n)
{
    const char *dot = NULL, *p;
    char reason[200];
    int inq = 0, rc = -1;
    char *sch = NULL, *tab = NULL;
    for (p = s; *p; p++) {
        if (*p == '"') {
            if (inq && p[1] == '"')
                p++;
            else
                inq = !inq;
        } else if (*p == '.' && !inq) {
            if (dot) {
                snprintf(reason, sizeof reason, "too many dots (use table or schema.table)");
                goto out;
            }
            dot = p;
        }
    }
    if (inq) {
        snprintf(reason, sizeof reason, "unterminated quoted name");
        goto out;
    }
    if (dot) {
        if (!(sch = ident_part(s, dot, reason, sizeof reason))) goto out;
        if (!(tab = ident_part(dot + 1, p, reason, sizeof reason))) goto out;
    } else {
        sch = hr_xstrdup("public");
        if (!(tab = ident_part(s, p, reason, sizeof reason))) goto out;
    }
    rc = 0;
out:
    if (rc) {
        char shown[96];
        snprintf(why, n, "invalid table %s: %s", hr_cfg_show(s, shown, sizeof shown), reason);
        free(sch);
        free(tab);
        sch = tab = NULL;
    }
    *schema = sch;
    *table = tab;
    return rc;
}
