/* config_json.c: the canonical JSON of a trigger definition, as stored in the database.
 *
 * Both directions walk the key table of config.c over the trigger and retry sections, so the
 * JSON has exactly one member per key, named as the key except that durations are integers of
 * milliseconds named *_ms. Absent values are written as null (columns, payload, events, secret,
 * table), an events trigger has "operations": [], headers are an object, and "table" is
 * {"schema", "name"} holding the names as stored (already unquoted and folded). With
 * JSON_SORT_KEYS | JSON_COMPACT the dump is canonical: two definitions are equal iff their dumps
 * are. Reading validates with the same checks as herald.yaml; problems name the JSON key path
 * ("retry.interval_ms: expected a positive integer"), all of them, with code HR_EINVAL. */
#include "config/config_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const void *cat(const void *base, size_t off)
{
    return (const char *)base + off;
}

static void *at(void *base, size_t off)
{
    return (char *)base + off;
}

static const char *json_name(const hr_cfg_key_t *k)
{
    return k->json ? k->json : k->name;
}

/* A JSON string; the readers only store UTF-8, but a bad byte must not lose the member. */
static json_t *jstr(const char *s)
{
    json_t *v;
    if (!s) return json_null();
    v = json_string(s);
    return v ? v : json_string_nocheck(s);
}

static json_t *section_json(int sec, const void *base)
{
    json_t *o = json_object();
    for (int k = 0; k < HR_K_COUNT; k++) {
        const hr_cfg_key_t *key = &hr_cfg_keys[k];
        const void *field = cat(base, key->off);
        json_t *v = NULL;
        if (key->section != sec) continue;
        switch (key->type) {
        case HR_KT_STRING:
            v = jstr(*(char *const *)field);
            break;
        case HR_KT_ENUM: {
            int i;
            memcpy(&i, field, sizeof i);
            v = jstr(key->choices[i]);
            break;
        }
        case HR_KT_INT:
            v = json_integer(*(const int *)field);
            break;
        case HR_KT_DURATION:
            v = json_integer((json_int_t) * (const uint64_t *)field);
            break;
        case HR_KT_TABLE: {
            const char *table = *(char *const *)field,
                       *schema = *(char *const *)cat(base, key->off2);
            if (!table) {
                v = json_null();
                break;
            }
            v = json_object();
            json_object_set_new(v, "schema", jstr(schema));
            json_object_set_new(v, "name", jstr(table));
            break;
        }
        case HR_KT_LIST: {
            char *const *items = *(char **const *)field;
            size_t n = *(const size_t *)cat(base, key->off2);
            if (!items) {
                v = json_null();
                break;
            }
            v = json_array();
            for (size_t i = 0; i < n; i++)
                json_array_append_new(v, jstr(items[i]));
            break;
        }
        case HR_KT_FLAGS: {
            unsigned bits = *(const unsigned *)field;
            v = json_array();
            for (int i = 0; key->choices[i]; i++)
                if (bits & (1u << i)) json_array_append_new(v, jstr(key->choices[i]));
            break;
        }
        case HR_KT_HEADERS: {
            const hr_header_t *hs = *(hr_header_t *const *)field;
            size_t n = *(const size_t *)cat(base, key->off2);
            v = json_object();
            for (size_t i = 0; i < n; i++)
                json_object_set_new(v, hs[i].name, jstr(hs[i].value));
            break;
        }
        case HR_KT_SECTION:
            v = section_json(key->sub, field);
            break;
        case HR_KT_JSON: {
            const char *text = *(char *const *)field;
            v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
            if (!v) v = json_null();
            break;
        }
        default:
            continue; /* no triggers inside a trigger */
        }
        json_object_set_new(o, json_name(key), v);
    }
    return o;
}

json_t *hr_trigger_def_to_json(const hr_trigger_def_t *def)
{
    return section_json(def->cron ? HR_SEC_SCHEDULE : HR_SEC_TRIGGER, def);
}

/* A string member, or NULL after reporting why not. */
static const char *string_of(hr_cfg_scope_t *sc, int k, const char *sub, const json_t *v)
{
    if (!json_is_string(v)) {
        hr_cfg_problem(sc, k, 0, sub, "expected a string");
        return NULL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        hr_cfg_problem(sc, k, 0, sub, "must not contain NUL bytes");
        return NULL;
    }
    return json_string_value(v);
}

static void integer(hr_cfg_scope_t *sc, int k, const json_t *v, void *base)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;
    if (!json_is_integer(v) || i < key->min) {
        if (key->min == 1)
            hr_cfg_problem(sc, k, 0, NULL, "expected a positive integer");
        else if (key->min == 0)
            hr_cfg_problem(sc, k, 0, NULL, "expected a non-negative integer");
        else
            hr_cfg_problem(sc, k, 0, NULL, "expected an integer from %lld to %lld", key->min,
                           key->max);
    } else if (i > key->max) {
        hr_cfg_problem(sc, k, 0, NULL, "%lld is out of range (%lld to %lld)", (long long)i,
                       key->min, key->max);
    } else if (key->type == HR_KT_INT) {
        *(int *)at(base, key->off) = (int)i;
    } else {
        *(uint64_t *)at(base, key->off) = (uint64_t)i;
    }
}

static void table(hr_cfg_scope_t *sc, int k, json_t *v, void *base)
{
    static const char *const parts[2] = {"schema", "name"};
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    char *vals[2] = {NULL, NULL}, why[512], sub[160];
    const char *name;
    json_t *p;
    int nerr = sc->rep->nerr;
    if (!json_is_object(v)) {
        hr_cfg_problem(sc, k, 0, NULL, "expected an object with schema and name");
        return;
    }
    for (int i = 0; i < 2; i++) {
        const char *s;
        snprintf(sub, sizeof sub, ".%s", parts[i]);
        if (!(p = json_object_get(v, parts[i])))
            hr_cfg_problem(sc, k, 0, sub, "required key is missing");
        else if (!(s = string_of(sc, k, sub, p)))
            continue;
        else if (hr_cfg_check_ident(s, why, sizeof why))
            hr_cfg_problem(sc, k, 0, sub, "%s", why);
        else
            vals[i] = hr_xstrdup(s);
    }
    json_object_foreach(v, name, p)
    {
        if (strcmp(name, "schema") != 0 && strcmp(name, "name") != 0) {
            snprintf(sub, sizeof sub, ".%.150s", name);
            hr_cfg_problem(sc, k, 0, sub, "unknown key (expected one of: schema, name)");
        }
    }
    if (sc->rep->nerr != nerr) {
        free(vals[0]);
        free(vals[1]);
        return;
    }
    free(*(char **)at(base, key->off2));
    free(*(char **)at(base, key->off));
    *(char **)at(base, key->off2) = vals[0];
    *(char **)at(base, key->off) = vals[1];
}

static void section(hr_cfg_report_t *rep, int sec, json_t *obj, void *base, const char *path);

static void value(hr_cfg_scope_t *sc, int k, json_t *v, void *base)
{
    const hr_cfg_key_t *key = &hr_cfg_keys[k];
    const char *s, *name;
    char sub[160];
    json_t *item;
    size_t i;
    switch (key->type) {
    case HR_KT_STRING:
    case HR_KT_ENUM:
        if ((s = string_of(sc, k, NULL, v))) hr_cfg_set_reported(sc, k, 0, base, s);
        break;
    case HR_KT_INT:
    case HR_KT_DURATION:
        integer(sc, k, v, base);
        break;
    case HR_KT_TABLE:
        table(sc, k, v, base);
        break;
    case HR_KT_LIST:
    case HR_KT_FLAGS:
        if (!json_is_array(v)) {
            hr_cfg_problem(sc, k, 0, NULL, "expected an array of strings");
            break;
        }
        json_array_foreach(v, i, item)
        {
            snprintf(sub, sizeof sub, "[%zu]", i);
            if (!(s = string_of(sc, k, sub, item)))
                continue;
            else if (key->type == HR_KT_FLAGS)
                hr_cfg_flag_add(sc, k, 0, base, i, s);
            else
                hr_cfg_list_add(sc, k, 0, base, i, s);
        }
        if (json_array_size(v) == 0 && (key->flags & HR_KF_NONEMPTY))
            hr_cfg_problem(sc, k, 0, NULL, "must not be empty (use null instead)");
        break;
    case HR_KT_HEADERS:
        if (!json_is_object(v)) {
            hr_cfg_problem(sc, k, 0, NULL, "expected an object of strings");
            break;
        }
        json_object_foreach(v, name, item)
        {
            snprintf(sub, sizeof sub, ".%.150s", name);
            if ((s = string_of(sc, k, sub, item))) hr_cfg_header_add(sc, k, 0, base, name, s);
        }
        break;
    case HR_KT_SECTION:
        if (!json_is_object(v)) {
            hr_cfg_problem(sc, k, 0, NULL, "expected an object");
            break;
        }
        {
            char *path = hr_xasprintf("%s%s.", sc->path, json_name(key));
            section(sc->rep, key->sub, v, at(base, key->off), path);
            free(path);
        }
        break;
    case HR_KT_JSON:
        free(*(char **)at(base, key->off));
        *(char **)at(base, key->off) = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        break;
    default:
        break;
    }
}

static void section(hr_cfg_report_t *rep, int sec, json_t *obj, void *base, const char *path)
{
    hr_cfg_scope_t sc = {.rep = rep, .path = path};
    const char *name;
    json_t *v;
    char keys[512];
    json_object_foreach(obj, name, v)
    {
        if (hr_cfg_find_key(sec, name, 1) < 0)
            hr_cfg_problem(&sc, -1, 0, name, "unknown key (expected one of: %s)",
                           hr_cfg_key_list(sec, 1, keys, sizeof keys));
    }
    for (int k = 0; k < HR_K_COUNT; k++) {
        if (hr_cfg_keys[k].section != sec) continue;
        v = json_object_get(obj, json_name(&hr_cfg_keys[k]));
        if (!v || json_is_null(v)) continue;
        sc.present[k] = 1;
        value(&sc, k, v, base);
    }
    hr_cfg_check_section(sec, base, &sc);
}

int hr_trigger_def_from_json(const json_t *j, hr_trigger_def_t *out, hr_err_t *err)
{
    hr_cfg_report_t rep = {.file = NULL, .err = err, .code = HR_EINVAL};
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
    int sched = json_is_object(j) && json_object_get(j, "cron") != NULL;
    if (sched)
        hr_schedule_def_defaults(out);
    else
        hr_trigger_def_defaults(out);
    if (!json_is_object(j)) {
        hr_trigger_def_clear(out);
        return hr_err_set(err, HR_EINVAL, "expected a JSON object");
    }
    /* Reading does not modify j; jansson's iteration API just is not const. */
    section(&rep, sched ? HR_SEC_SCHEDULE : HR_SEC_TRIGGER, (json_t *)j, out, "");
    if (hr_cfg_report_flush(&rep)) {
        hr_trigger_def_clear(out);
        return rep.code;
    }
    return 0;
}
