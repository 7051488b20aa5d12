/* config_yaml.c: reading herald.yaml.
 *
 * libfyaml builds the document tree (anchors and aliases resolved; duplicate keys and syntax
 * errors are collected by a quiet diag object, never printed). The tree is then walked section
 * by section against the key table of config.c: each key is looked up in its section, its YAML
 * type checked, its value handed to the same setters the JSON reader and the environment
 * overrides use, and its line remembered so that every problem reads "file:line: key: message".
 * Walking goes on after a problem, so one run reports everything wrong with a file; a failed
 * parse returns no config.
 *
 * A plain null (an empty value, ~ or null) means the key is not set, so its default applies.
 * Lines in libfyaml marks are 0-based; messages use 1-based lines, as editors do. */
#include "config/config_int.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (16u << 20) /* a config file larger than this is surely a mistake */

static void *at(void *base, size_t off)
{
    return (char *)base + off;
}

/* 1-based line where node n starts (for a collection: its first scalar), or fallback. */
static int node_line(struct fy_node *n, int fallback)
{
    void *it = NULL;
    if (!n) return fallback;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        struct fy_token *t = fy_node_get_scalar_token(n);
        const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
        return m ? m->line + 1 : fallback;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
        return p ? node_line(fy_node_pair_key(p), fallback) : fallback;
    }
    case FYNT_SEQUENCE:
        return node_line(fy_node_sequence_iterate(n, &it), fallback);
    }
    return fallback;
}

static int is_null(struct fy_node *n)
{
    size_t len = 0;
    const char *s;
    if (!n) return 1;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN) return 0;
    s = fy_node_get_scalar(n, &len);
    return !s || len == 0 || (len == 1 && *s == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* A new copy of scalar n, or NULL if it holds a NUL byte (which C strings cannot carry). */
static char *scalar_text(struct fy_node *n)
{
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s) return hr_xstrdup("");
    if (memchr(s, '\0', len)) return NULL;
    return hr_xstrndup(s, len);
}

/* What n is, for "expected X, got Y". */
static const char *kind(struct fy_node *n, char *buf, size_t sz)
{
    if (is_null(n)) return "null";
    switch (fy_node_get_type(n)) {
    case FYNT_SEQUENCE:
        return "a list";
    case FYNT_MAPPING:
        return "a mapping";
    default: {
        char *s = scalar_text(n);
        if (!s) return "a string holding a NUL byte";
        hr_cfg_show(s, buf, sz);
        free(s);
        return buf;
    }
    }
}

static const char *expected(const hr_cfg_key_t *k)
{
    switch (k->type) {
    case HR_KT_INT:
        return "an integer";
    case HR_KT_DURATION:
        return "a duration";
    case HR_KT_LIST:
        return "a list of strings";
    case HR_KT_FLAGS:
        return "a list";
    case HR_KT_HEADERS:
        return "a mapping of header names to values";
    case HR_KT_SECTION:
        return "a mapping";
    case HR_KT_TRIGGERS:
        return "a list of triggers";
    default:
        return "a string";
    }
}

static void section(hr_cfg_report_t *rep, int sec, struct fy_node *map, void *base,
                    const char *path, int line, hr_cfg_scope_t *out);

/* A list of strings or of choices. */
static void list(hr_cfg_scope_t *sc, int k, struct fy_node *v, void *base, int kline)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    struct fy_node *item;
    void *it = NULL;
    size_t i = 0;
    char sub[32], got[96];
    for (; (item = fy_node_sequence_iterate(v, &it)); i++) {
        int line = node_line(item, kline);
        char *s = NULL;
        snprintf(sub, sizeof sub, "[%zu]", i);
        if (!fy_node_is_scalar(item) || is_null(item))
            hr_cfg_problem(sc, k, line, sub, "expected a string, got %s",
                           kind(item, got, sizeof got));
        else if (!(s = scalar_text(item)))
            hr_cfg_problem(sc, k, line, sub, "must not contain NUL bytes");
        else if (key->type == HR_KT_FLAGS)
            hr_cfg_flag_add(sc, k, line, base, i, s);
        else
            hr_cfg_list_add(sc, k, line, base, i, s);
        free(s);
    }
    if (i == 0 && (key->flags & HR_KF_NONEMPTY))
        hr_cfg_problem(sc, k, 0, NULL, "must not be empty (leave the key out instead)");
}

static void headers(hr_cfg_scope_t *sc, int k, struct fy_node *v, void *base, int kline)
{
    struct fy_node_pair *pair;
    void *it = NULL;
    char got[96], sub[160];
    while ((pair = fy_node_mapping_iterate(v, &it))) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        int line = node_line(kn, kline);
        char *name = fy_node_is_scalar(kn) && !is_null(kn) ? scalar_text(kn) : NULL, *value;
        if (!name) {
            hr_cfg_problem(sc, k, line, NULL, "header names must be strings");
            continue;
        }
        snprintf(sub, sizeof sub, ".%.150s", name);
        if (!fy_node_is_scalar(vn) || is_null(vn))
            hr_cfg_problem(sc, k, line, sub, "expected a string, got %s",
                           kind(vn, got, sizeof got));
        else if (!(value = scalar_text(vn)))
            hr_cfg_problem(sc, k, line, sub, "must not contain NUL bytes");
        else {
            hr_cfg_header_add(sc, k, line, base, name, value);
            free(value);
        }
        free(name);
    }
}

static void triggers(hr_cfg_scope_t *sc, int k, struct fy_node *v, void *base, int kline)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    size_t n = (size_t)fy_node_sequence_item_count(v), i = 0;
    hr_trigger_def_t *ts = n ? hr_xcalloc(n, sizeof *ts) : NULL;
    int *name_lines = hr_xcalloc(n, sizeof *name_lines);
    struct fy_node *item;
    void *it = NULL;
    char sub[32], got[96];
    int kname = hr_cfg_find_key(key->sub, "name", 0);
    *(hr_trigger_def_t **)at(base, key->off) = ts;
    *(size_t *)at(base, key->off2) = n;
    for (; i < n && (item = fy_node_sequence_iterate(v, &it)); i++) {
        int line = node_line(item, kline);
        if (key->sub == HR_SEC_SCHEDULE)
            hr_schedule_def_defaults(&ts[i]);
        else
            hr_trigger_def_defaults(&ts[i]);
        snprintf(sub, sizeof sub, "[%zu]", i);
        if (!fy_node_is_mapping(item)) {
            hr_cfg_problem(sc, k, line, sub, "expected a mapping (one %s), got %s",
                           key->sub == HR_SEC_SCHEDULE ? "schedule" : "trigger",
                           kind(item, got, sizeof got));
            continue;
        }
        char *path = hr_xasprintf("%s%s[%zu].", sc->path, key->name, i);
        hr_cfg_scope_t tsc;
        section(sc->rep, key->sub, item, &ts[i], path, line, &tsc);
        name_lines[i] = tsc.lines[kname];
        for (size_t j = 0; ts[i].name && j < i; j++) {
            if (ts[j].name && strcmp(ts[j].name, ts[i].name) == 0) {
                hr_cfg_problem(&tsc, kname, 0, NULL,
                               "duplicate %s name \"%s\" (first defined at line %d)",
                               key->sub == HR_SEC_SCHEDULE ? "schedule" : "trigger", ts[i].name,
                               name_lines[j]);
                break;
            }
        }
        free(path);
    }
    free(name_lines);
}

/* Any YAML value as compact JSON text, through libfyaml's JSON emitter and jansson (which
 * checks it and makes it canonical: "kind: nightly" becomes {"kind":"nightly"}). */
static void json_value(hr_cfg_scope_t *sc, int k, struct fy_node *v, void *base)
{
    char *text = fy_emit_node_to_string(v, FYECF_MODE_JSON_TP | FYECF_NO_ENDING_NEWLINE);
    json_error_t je;
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, &je) : NULL;
    if (!j) {
        hr_cfg_problem(sc, k, 0, NULL, "cannot be written as JSON%s%s", text ? ": " : "",
                       text ? je.text : "");
    } else {
        free(*(char **)at(base, hr_cfg_keys[k].off));
        *(char **)at(base, hr_cfg_keys[k].off) = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    json_decref(j);
    free(text);
}

static void value(hr_cfg_scope_t *sc, int k, struct fy_node *v, void *base, int kline)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    char got[96];
    int want_seq =
        key->type == HR_KT_LIST || key->type == HR_KT_FLAGS || key->type == HR_KT_TRIGGERS;
    int want_map = key->type == HR_KT_HEADERS || key->type == HR_KT_SECTION;
    if (key->type == HR_KT_JSON) {
        json_value(sc, k, v, base);
        return;
    }
    if (want_seq   ? !fy_node_is_sequence(v)
        : want_map ? !fy_node_is_mapping(v)
                   : !fy_node_is_scalar(v)) {
        hr_cfg_problem(sc, k, 0, NULL, "expected %s, got %s", expected(key),
                       kind(v, got, sizeof got));
        return;
    }
    switch (key->type) {
    case HR_KT_LIST:
    case HR_KT_FLAGS:
        list(sc, k, v, base, kline);
        break;
    case HR_KT_HEADERS:
        headers(sc, k, v, base, kline);
        break;
    case HR_KT_TRIGGERS:
        triggers(sc, k, v, base, kline);
        break;
    case HR_KT_SECTION: {
        char *path = hr_xasprintf("%s%s.", sc->path, key->name);
        section(sc->rep, key->sub, v, at(base, key->off), path, node_line(v, kline), NULL);
        free(path);
        break;
    }
    default: {
        char *s = scalar_text(v);
        if (!s)
            hr_cfg_problem(sc, k, 0, NULL, "must not contain NUL bytes");
        else
            hr_cfg_set_reported(sc, k, 0, base, s);
        free(s);
        break;
    }
    }
}

/* Reads the mapping map as section sec into base. out, if set, receives the scope (which key
 * was given, on which line). */
static void section(hr_cfg_report_t *rep, int sec, struct fy_node *map, void *base,
                    const char *path, int line, hr_cfg_scope_t *out)
{
    hr_cfg_scope_t sc = {.rep = rep, .path = path, .line = line};
    struct fy_node_pair *pair;
    void *it = NULL;
    char keys[512];
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *kn = fy_node_pair_key(pair), *vn = fy_node_pair_value(pair);
        int kline = node_line(kn, line), k;
        char *name = kn && fy_node_is_scalar(kn) && !is_null(kn) ? scalar_text(kn) : NULL;
        if (!name) {
            hr_cfg_problem(&sc, -1, kline, NULL, "keys must be strings");
            continue;
        }
        k = hr_cfg_find_key(sec, name, 0);
        if (k < 0) {
            hr_cfg_problem(&sc, -1, kline, name, "unknown key (expected one of: %s)",
                           hr_cfg_key_list(sec, 0, keys, sizeof keys));
            free(name);
            continue;
        }
        free(name);
        sc.lines[k] = kline;
        if (is_null(vn)) continue;
        sc.present[k] = 1;
        value(&sc, k, vn, base, kline);
    }
    hr_cfg_check_section(sec, base, &sc);
    if (out) *out = sc;
}

/* Reports the errors libfyaml collected (top NULL: only counts them). Returns their number. */
static int syntax_errors(hr_cfg_scope_t *top, struct fy_diag *diag)
{
    struct fy_diag_error *e;
    void *it = NULL;
    int n = 0;
    while ((e = fy_diag_errors_iterate(diag, &it))) {
        if (e->type < FYET_ERROR) continue;
        if (top)
            hr_cfg_problem(top, -1, e->line > 0 ? e->line : 1, NULL, "YAML syntax error: %s",
                           e->msg ? e->msg : "invalid YAML");
        n++;
    }
    return n;
}

static void discard(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

static void oom(void)
{
    fputs("herald: out of memory\n", stderr);
    abort();
}

int hr_config_parse(const char *text, size_t len, const char *name, hr_config_t **out,
                    hr_err_t *err)
{
    hr_cfg_report_t rep = {.file = name ? name : "<config>", .err = err, .code = HR_ECONFIG};
    hr_cfg_scope_t top = {.rep = &rep, .path = "", .line = 1};
    hr_config_t *cfg = hr_xcalloc(1, sizeof *cfg);
    struct fy_diag_cfg dcfg;
    struct fy_parse_cfg pcfg = {0};
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    struct fy_document *doc = NULL, *extra = NULL;
    struct fy_node *root;
    char got[96];

    *out = NULL;
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    cfg->path = hr_xstrdup(rep.file);
    hr_cfg_defaults(HR_SEC_TOP, cfg);
    if (len == 0) goto out; /* an empty file: all defaults, no triggers */
    /* libfyaml would take a NUL byte for the end of the input and ignore the rest. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        hr_cfg_problem(&top, -1, line, NULL, "a NUL byte; this is not a text file");
        goto out;
    }

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = discard;
    dcfg.colorize = false;
    if (!(diag = fy_diag_create(&dcfg))) oom();
    fy_diag_set_collect_errors(diag, true);
    pcfg.flags = FYPCF_QUIET | FYPCF_COLLECT_DIAG | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = diag;
    if (!(fyp = fy_parser_create(&pcfg))) oom();
    if (fy_parser_set_string(fyp, text, len)) oom();
    /* fy_diag_got_error() does not see collected errors, so they are counted here. */
    doc = fy_parse_load_document(fyp);
    if (doc && !syntax_errors(NULL, diag)) extra = fy_parse_load_document(fyp);
    if (syntax_errors(&top, diag)) goto out;
    if (extra) {
        hr_cfg_problem(&top, -1, node_line(fy_document_root(extra), 1), NULL,
                       "a second YAML document (\"---\"); the file must hold one");
        goto out;
    }
    root = doc ? fy_document_root(doc) : NULL;
    if (root && !is_null(root)) {
        if (!fy_node_is_mapping(root))
            hr_cfg_problem(&top, -1, node_line(root, 1), NULL,
                           "expected a mapping of keys at the top level, got %s",
                           kind(root, got, sizeof got));
        else
            section(&rep, HR_SEC_TOP, root, cfg, "", node_line(root, 1), NULL);
    }
out:
    /* Schedules are stored and delivered as triggers: they go to the end of the list. */
    if (cfg->nschedules) {
        cfg->triggers =
            hr_xrealloc(cfg->triggers, (cfg->ntriggers + cfg->nschedules) * sizeof *cfg->triggers);
        memcpy(cfg->triggers + cfg->ntriggers, cfg->schedules,
               cfg->nschedules * sizeof *cfg->schedules);
        cfg->ntriggers += cfg->nschedules;
    }
    free(cfg->schedules);
    cfg->schedules = NULL;
    cfg->nschedules = 0;
    if (extra) fy_parse_document_destroy(fyp, extra);
    if (doc) fy_parse_document_destroy(fyp, doc);
    if (fyp) fy_parser_destroy(fyp);
    if (diag) fy_diag_destroy(diag);
    if (hr_cfg_report_flush(&rep)) {
        hr_config_free(cfg);
        return rep.code;
    }
    *out = cfg;
    return 0;
}

/* Reads all of path into a new NUL-terminated buffer. */
static int read_file(const char *path, char **out, size_t *out_len, hr_err_t *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    int rc = 0;
    if (!f) return hr_err_set(err, HR_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
    do {
        if (cap - len < 4096) buf = hr_xrealloc(buf, cap = cap ? cap * 2 : 8192);
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (len > FILE_MAX) {
            rc = hr_err_set(err, HR_ECONFIG, "%s: cannot read: larger than %u MiB", path,
                            FILE_MAX >> 20);
            goto out;
        }
    } while (n > 0);
    if (ferror(f)) {
        rc = hr_err_set(err, HR_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    buf[len] = '\0';
out:
    fclose(f);
    if (rc) {
        free(buf);
        buf = NULL;
    }
    *out = buf;
    *out_len = len;
    return rc;
}

/* Applies the environment variables of the key table to cfg; an empty variable counts as unset.
 * Returns 0 or HR_ECONFIG with one line per bad variable appended to err. */
static int apply_env(hr_config_t *cfg, hr_err_t *err)
{
    int rc = 0;
    for (int k = 0; k < HR_K_COUNT; k++) {
        const hr_cfg_key_t *key = &hr_cfg_keys[k];
        const char *v = key->env ? getenv(key->env) : NULL;
        char why[512];
        if (key->section != HR_SEC_TOP || !v || !*v) continue;
        if (hr_cfg_set_text(key, cfg, v, why, sizeof why))
            rc = hr_err_append(err, HR_ECONFIG, "%s: %s", key->env, why);
        else if (k == HR_K_DATABASE)
            cfg->database_from_env = 1;
    }
    return rc ? HR_ECONFIG : 0;
}

int hr_config_load(const char *path, hr_config_t **out, hr_err_t *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc, env_rc;
    *out = NULL;
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    rc = read_file(path, &text, &len, err);
    if (rc == 0) rc = hr_config_parse(text, len, path, out, err);
    free(text);
    if (*out) {
        env_rc = apply_env(*out, err);
    } else {
        /* Report bad variables too, so that one run shows every problem. */
        hr_config_t scratch = {0};
        hr_cfg_defaults(HR_SEC_TOP, &scratch);
        env_rc = apply_env(&scratch, err);
        hr_cfg_free_section(HR_SEC_TOP, &scratch);
    }
    if (rc == 0 && env_rc) {
        hr_config_free(*out);
        *out = NULL;
        rc = env_rc;
    }
    return rc;
}

void hr_config_free(hr_config_t *cfg)
{
    if (!cfg) return;
    hr_cfg_free_section(HR_SEC_TOP, cfg);
    free(cfg->path);
    free(cfg);
}
