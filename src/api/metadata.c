/* metadata.c: POST /v1/metadata, the Hasura-compatible metadata API for event triggers.
 *
 * A request is {"type": T, "args": A}. The handler checks the admin secret, parses the body,
 * runs the query and answers at once: every store operation it calls is synchronous and short
 * (one transaction), so the loop is held only for that long. Shapes are converted by
 * metadata_hasura.c; this file does the work and maps the store's errors to Hasura's codes:
 *
 *   HR_EEXIST -> already-exists   HR_ENOTFOUND -> not-exists   HR_ECONFIG, HR_EINVAL ->
 *   validation-failed (unknown table or column)   anything else -> 500 unexpected
 *
 * Definition changes outside bulk go straight to the store: pg_create_event_trigger is one
 * put_trigger, pg_delete_event_trigger one delete_trigger, replace_metadata one apply (which
 * makes the stored triggers equal to the given set in one transaction). Inside bulk they are
 * staged instead: the session loads the stored definitions once, the items change that copy,
 * and the whole copy is applied in one transaction when the bulk ends, so a bulk's definition
 * changes are all or nothing. An item that acts on events (invoke, redeliver, the log reads)
 * needs the definitions in the database: the staged changes before it are applied first (such
 * a bulk is atomic only up to that item; docs/api.md). Before applying, the session checks
 * that nobody changed the stored definitions since it loaded them (409 conflict otherwise).
 *
 * Schedules (cron triggers, stored as triggers with cron set) share the triggers' names but are
 * not event triggers: the event trigger types neither see nor change them (a name taken by a
 * schedule is already-exists to create, not-exists to the others), and the cron trigger types
 * neither see nor change event triggers. export_metadata writes them as cron_triggers;
 * replace_metadata replaces them when its document has cron_triggers and keeps them otherwise.
 *
 * One-off scheduled events (create_scheduled_event) are no definitions: each is a log row queued
 * for the pseudo-trigger HR_ONE_OFF_TRIGGER, due at its time (store op schedule_one_off);
 * delete_scheduled_event cancels one that is still waiting (delete_scheduled). */
#include "api/api.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "api/metadata_hasura.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/text.h"

#define BULK_MAX 1000    /* items in one bulk */
#define BULK_DEPTH_MAX 4 /* bulk within bulk */
#define LIMIT_MAX 100000 /* largest limit of the log reads */
#define SCAN_CHUNK 1000  /* events read per step when filtering processed events */
#define SCAN_MAX 100     /* chunks read at most: processed events among the newest 100,000 */

/* Who last changed a staged definition: errors found when applying point there. */
typedef struct owner {
    char *name;
    char path[HR_MD_PATH_MAX];
} owner_t;

/* One request's state. */
typedef struct session {
    hr_api_ctx_t *ctx;
    int staging; /* inside bulk: definition changes go to defs */
    int depth;   /* bulk nesting */
    int loaded;  /* defs holds the stored definitions plus the staged changes */
    int dirty;   /* defs differ from the stored definitions */
    hr_trigger_def_t *defs;
    size_t ndefs;
    char *base; /* canonical text of the stored definitions when loaded */
    owner_t *owners;
    size_t nowners;
    int poke; /* something was queued: poke the dispatcher */
} session_t;

typedef int (*op_fn)(session_t *s, const json_t *args, const char *path, json_t **out,
                     hr_md_err_t *e);

static json_t *success(void)
{
    return json_pack("{s:s}", "message", "success");
}

static const char *first_line(char *msg)
{
    char *nl = strchr(msg, '\n');
    if (nl) *nl = '\0';
    return msg;
}

/* A store failure as Hasura's error; path names the args that caused it. */
static int store_fail(hr_md_err_t *e, int rc, hr_err_t *err, const char *path)
{
    const char *msg = err->msg[0] ? first_line(err->msg) : hr_strerror(rc);
    switch (rc) {
    case HR_ECONFIG:
    case HR_EINVAL:
        return hr_md_fail(e, 400, "validation-failed", path, "%s", msg);
    case HR_ENOTFOUND:
        return hr_md_fail(e, 400, "not-exists", path, "%s", msg);
    case HR_EEXIST:
        return hr_md_fail(e, 400, "already-exists", path, "%s", msg);
    case HR_ESCHEMA:
        /* Nothing was ever made in this database: whatever was named does not exist. */
        if (strstr(msg, "not installed")) return hr_md_fail(e, 400, "not-exists", path, "%s", msg);
        /* fall through */
    default:
        hr_log(HR_LOG_ERROR, "msg=\"metadata: database error\" error=\"%s\"", msg);
        return hr_md_fail(e, 500, "unexpected", "$", "database error: %s", msg);
    }
}

static int not_exists_trigger(hr_md_err_t *e, const char *path, const char *name)
{
    char p[HR_MD_PATH_MAX];
    hr_md_path_key(p, sizeof p, path, "name");
    return hr_md_fail(e, 400, "not-exists", p, "event trigger \"%s\" does not exist", name);
}

/* Strict reading of small args objects. */
static int args_object(const json_t *args, const char *path, const char *const *keys,
                       hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    const char *k;
    json_t *v;
    if (!json_is_object(args))
        return hr_md_fail(e, 400, "parse-failed", path, "expected an object");
    json_object_foreach((json_t *)args, k, v)
    {
        int known = 0;
        for (size_t i = 0; keys[i] && !known; i++)
            known = strcmp(keys[i], k) == 0;
        if (known) continue;
        char list[256];
        size_t off = 0;
        list[0] = '\0';
        for (size_t i = 0; keys[i] && off < sizeof list; i++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", keys[i]);
        hr_md_path_key(p, sizeof p, path, k);
        return hr_md_fail(e, 400, "parse-failed", p,
                          "unknown field \"%.100s\" (expected one of: %s)", k, list);
    }
    return 0;
}

static json_t *arg(const json_t *args, const char *key)
{
    json_t *v = json_object_get(args, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int arg_string(const json_t *args, const char *key, const char *path, int required,
                      const char **out, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    json_t *v = arg(args, key);
    *out = NULL;
    if (!v) {
        if (!required) return 0;
        return hr_md_fail(e, 400, "parse-failed", path, "key \"%s\" not found", key);
    }
    hr_md_path_key(p, sizeof p, path, key);
    if (!json_is_string(v)) return hr_md_fail(e, 400, "parse-failed", p, "expected a string");
    *out = json_string_value(v);
    return 0;
}

static int arg_int(const json_t *args, const char *key, const char *path, int def, int min, int max,
                   int *out, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    json_t *v = arg(args, key);
    *out = def;
    if (!v) return 0;
    hr_md_path_key(p, sizeof p, path, key);
    if (!json_is_integer(v)) return hr_md_fail(e, 400, "parse-failed", p, "expected an integer");
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return hr_md_fail(e, 400, "validation-failed", p,
                          "%" JSON_INTEGER_FORMAT " is out of range (%d to %d)", i, min, max);
    *out = (int)i;
    return 0;
}

/* source: only "default" (the database herald serves). */
static int arg_source(const json_t *args, const char *path, hr_md_err_t *e)
{
    const char *src;
    char p[HR_MD_PATH_MAX];
    if (arg_string(args, "source", path, 0, &src, e)) return -1;
    if (!src || strcmp(src, "default") == 0) return 0;
    hr_md_path_key(p, sizeof p, path, "source");
    return hr_md_fail(e, 400, "not-exists", p, "source with name \"%.100s\" does not exist", src);
}

/* ------------------------------------------------------------------------------------------ */
/* Staged definitions (bulk)                                                                  */

static void defs_free(hr_trigger_def_t *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hr_trigger_def_clear(&defs[i]);
    free(defs);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const hr_trigger_def_t *)a)->name, ((const hr_trigger_def_t *)b)->name);
}

/* The canonical text of a set of definitions, whatever their order. */
static char *canonical(hr_trigger_def_t *defs, size_t n)
{
    qsort(defs, n, sizeof *defs, by_name);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, hr_trigger_def_to_json(&defs[i]));
    char *text = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(a);
    return text;
}

/* The stored definitions (none when herald's schema is not installed yet). */
static int load_defs(session_t *s, hr_trigger_def_t **defs, size_t *n, hr_md_err_t *e)
{
    hr_err_t err = {0};
    *defs = NULL;
    *n = 0;
    int rc = s->ctx->ops->load_triggers(s->ctx->store, defs, n, &err);
    if (rc == HR_ESCHEMA && strstr(err.msg, "not installed")) return 0;
    if (rc) return store_fail(e, rc, &err, "$");
    return 0;
}

static int ensure_loaded(session_t *s, hr_md_err_t *e)
{
    if (s->loaded) return 0;
    if (load_defs(s, &s->defs, &s->ndefs, e)) return -1;
    free(s->base);
    s->base = canonical(s->defs, s->ndefs);
    s->loaded = 1;
    return 0;
}

static hr_trigger_def_t *find_in(hr_trigger_def_t *defs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0) return &defs[i];
    return NULL;
}

static hr_trigger_def_t *find_def(session_t *s, const char *name)
{
    return find_in(s->defs, s->ndefs, name);
}

/* path: of the culprit (the name of a create's args; a replace's document). */
static int schedule_named(hr_md_err_t *e, const char *path, const char *name)
{
    return hr_md_fail(e, 400, "already-exists", path,
                      "a schedule (cron trigger) is named \"%s\": triggers and schedules share "
                      "one namespace",
                      name);
}

/* What the stored definition named name is: 0 none, 1 an event trigger, 2 a schedule. */
static int stored_kind(session_t *s, const char *name, int *kind, hr_md_err_t *e)
{
    hr_trigger_def_t *defs;
    size_t n;
    if (load_defs(s, &defs, &n, e)) return -1;
    hr_trigger_def_t *d = find_in(defs, n, name);
    *kind = !d ? 0 : d->cron ? 2 : 1;
    defs_free(defs, n);
    return 0;
}

static void set_owner(session_t *s, const char *name, const char *path)
{
    owner_t *o = NULL;
    for (size_t i = 0; i < s->nowners && !o; i++)
        if (strcmp(s->owners[i].name, name) == 0) o = &s->owners[i];
    if (!o) {
        s->owners = hr_xrealloc(s->owners, (s->nowners + 1) * sizeof *s->owners);
        o = &s->owners[s->nowners++];
        o->name = hr_xstrdup(name);
    }
    snprintf(o->path, sizeof o->path, "%s", path);
}

/* Takes def over: adds it to the staged set or replaces the one of that name. */
static void stage_put(session_t *s, hr_trigger_def_t *def, const char *path)
{
    hr_trigger_def_t *old = find_def(s, def->name);
    set_owner(s, def->name, path);
    if (old) {
        hr_trigger_def_clear(old);
        *old = *def;
    } else {
        s->defs = hr_xrealloc(s->defs, (s->ndefs + 1) * sizeof *s->defs);
        s->defs[s->ndefs++] = *def;
    }
    memset(def, 0, sizeof *def);
    s->dirty = 1;
}

static void stage_remove(session_t *s, hr_trigger_def_t *def, const char *path)
{
    set_owner(s, def->name, path);
    size_t i = (size_t)(def - s->defs);
    hr_trigger_def_clear(def);
    memmove(&s->defs[i], &s->defs[i + 1], (s->ndefs - i - 1) * sizeof *s->defs);
    s->ndefs--;
    s->dirty = 1;
}

static void ignore_report(void *ud, const char *line)
{
    (void)ud;
    hr_log(HR_LOG_INFO, "msg=\"metadata: %s\"", line);
}

/* Makes the stored definitions equal to defs in one transaction (the store's apply). */
static int apply_defs(session_t *s, hr_trigger_def_t *defs, size_t n, const char *path,
                      hr_md_err_t *e)
{
    hr_config_t cfg = {0};
    hr_err_t err = {0};
    cfg.triggers = defs;
    cfg.ntriggers = n;
    int rc = s->ctx->ops->apply(s->ctx->store, &cfg, ignore_report, NULL, &err);
    if (!rc) return 0;
    /* A problem with one trigger reads "trigger NAME: ...": point at the item that made it. */
    for (size_t i = 0; i < s->nowners; i++) {
        size_t len = strlen(s->owners[i].name);
        if (strncmp(err.msg, "trigger ", 8) == 0 &&
            strncmp(err.msg + 8, s->owners[i].name, len) == 0 && err.msg[8 + len] == ':') {
            path = s->owners[i].path;
            break;
        }
    }
    return store_fail(e, rc, &err, path);
}

/* Applies the staged changes, if any. */
static int flush(session_t *s, const char *path, hr_md_err_t *e)
{
    if (!s->staging || !s->dirty) return 0;
    hr_trigger_def_t *now = NULL;
    size_t n = 0;
    if (load_defs(s, &now, &n, e)) return -1;
    char *text = canonical(now, n);
    int changed = strcmp(text ? text : "", s->base ? s->base : "") != 0;
    free(text);
    defs_free(now, n);
    if (changed)
        return hr_md_fail(e, 409, "conflict", path,
                          "the stored triggers changed while this bulk ran (herald apply or "
                          "another metadata call); none of its trigger changes were applied");
    if (apply_defs(s, s->defs, s->ndefs, path, e)) return -1;
    free(s->base);
    s->base = canonical(s->defs, s->ndefs);
    s->dirty = 0;
    return 0;
}

static void session_reset_stage(session_t *s)
{
    defs_free(s->defs, s->ndefs);
    s->defs = NULL;
    s->ndefs = 0;
    free(s->base);
    s->base = NULL;
    for (size_t i = 0; i < s->nowners; i++)
        free(s->owners[i].name);
    free(s->owners);
    s->owners = NULL;
    s->nowners = 0;
    s->loaded = s->dirty = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Trigger definitions                                                                        */

static int op_create(session_t *s, const json_t *args, const char *path, json_t **out,
                     hr_md_err_t *e)
{
    hr_trigger_def_t def;
    int replace;
    char p[HR_MD_PATH_MAX];
    if (hr_md_trigger_from_create(args, path, &def, &replace, e)) return -1;
    hr_md_path_key(p, sizeof p, path, "name");
    if (s->staging) {
        if (ensure_loaded(s, e)) goto fail;
        hr_trigger_def_t *old = find_def(s, def.name);
        if (old && old->cron) {
            schedule_named(e, p, def.name);
            goto fail;
        }
        if (old && !replace) {
            hr_md_fail(e, 400, "already-exists", p, "Event trigger with name \"%s\" already exists",
                       def.name);
            goto fail;
        }
        stage_put(s, &def, path);
        *out = success();
        return 0;
    }
    /* put_trigger would replace a schedule of that name too. */
    int kind = 0;
    if (replace && stored_kind(s, def.name, &kind, e)) goto fail;
    if (kind == 2) {
        schedule_named(e, p, def.name);
        goto fail;
    }
    hr_err_t err = {0};
    int rc = s->ctx->ops->put_trigger(s->ctx->store, &def, replace, &err);
    if (rc == HR_EEXIST && stored_kind(s, def.name, &kind, e) == 0 && kind == 2) {
        schedule_named(e, p, def.name);
    } else if (rc == HR_EEXIST) {
        hr_md_fail(e, 400, "already-exists", p, "Event trigger with name \"%s\" already exists",
                   def.name);
    } else if (rc == HR_ECONFIG && !strstr(err.msg, "column")) {
        /* The table does not exist (or is not a table). */
        hr_md_path_key(p, sizeof p, path, "table");
        store_fail(e, rc, &err, p);
    } else if (rc) {
        store_fail(e, rc, &err, path);
    } else {
        hr_log(HR_LOG_INFO, "trigger=%s msg=\"metadata: trigger %s\"", def.name,
               replace ? "created or replaced" : "created");
    }
    hr_trigger_def_clear(&def);
    if (rc) return -1;
    *out = success();
    return 0;
fail:
    hr_trigger_def_clear(&def);
    return -1;
}

static int not_exists_cron(hr_md_err_t *e, const char *path, const char *name);

/* Deletes the event trigger (cron 0) or cron trigger (cron 1) called name: staged inside a bulk,
 * at once otherwise. The two kinds share one namespace but never see each other. */
static int delete_named(session_t *s, const char *name, const char *path, int cron, json_t **out,
                        hr_md_err_t *e)
{
    int (*not_exists)(hr_md_err_t *, const char *, const char *) =
        cron ? not_exists_cron : not_exists_trigger;
    if (s->staging) {
        if (ensure_loaded(s, e)) return -1;
        hr_trigger_def_t *d = find_def(s, name);
        if (!d || !d->cron != !cron) return not_exists(e, path, name);
        stage_remove(s, d, path);
        *out = success();
        return 0;
    }
    int kind;
    if (stored_kind(s, name, &kind, e)) return -1;
    if (kind != (cron ? 2 : 1)) return not_exists(e, path, name);
    hr_err_t err = {0};
    int rc = s->ctx->ops->delete_trigger(s->ctx->store, name, &err);
    if (rc == HR_ENOTFOUND) return not_exists(e, path, name);
    if (rc) return store_fail(e, rc, &err, path);
    hr_log(HR_LOG_INFO, "trigger=%s msg=\"metadata: %s deleted\"", name,
           cron ? "cron trigger" : "trigger");
    *out = success();
    return 0;
}

static int op_delete(session_t *s, const json_t *args, const char *path, json_t **out,
                     hr_md_err_t *e)
{
    static const char *const keys[] = {"name", "source", NULL};
    const char *name;
    if (args_object(args, path, keys, e) || arg_string(args, "name", path, 1, &name, e) ||
        arg_source(args, path, e))
        return -1;
    return delete_named(s, name, path, 0, out, e);
}

static int op_export(session_t *s, const json_t *args, const char *path, json_t **out,
                     hr_md_err_t *e)
{
    static const char *const keys[] = {NULL};
    if (args && args_object(args, path, keys, e)) return -1;
    if (s->staging) {
        if (ensure_loaded(s, e)) return -1;
        *out = hr_md_metadata_from_defs(s->defs, s->ndefs, s->ctx->ops->name);
        return 0;
    }
    hr_trigger_def_t *defs;
    size_t n;
    if (load_defs(s, &defs, &n, e)) return -1;
    *out = hr_md_metadata_from_defs(defs, n, s->ctx->ops->name);
    defs_free(defs, n);
    return 0;
}

static int op_replace(session_t *s, const json_t *args, const char *path, json_t **out,
                      hr_md_err_t *e)
{
    static const char *const keys[] = {"metadata", "allow_inconsistent_metadata", "allow_warnings",
                                       NULL};
    const json_t *md = args;
    char mp[HR_MD_PATH_MAX];
    snprintf(mp, sizeof mp, "%s", path);
    /* Hasura's newer form: {"allow_inconsistent_metadata": …, "metadata": {…}}. */
    if (json_is_object(args) && json_is_object(json_object_get(args, "metadata"))) {
        if (args_object(args, path, keys, e)) return -1;
        md = json_object_get(args, "metadata");
        hr_md_path_key(mp, sizeof mp, path, "metadata");
    }
    hr_trigger_def_t *defs = NULL, *cur = NULL;
    size_t n = 0, ncur = 0;
    int has_custom, has_cron, rc = -1;
    if (hr_md_defs_from_metadata(md, mp, &defs, &n, &has_custom, &has_cron, e)) return -1;
    /* Without herald's extension, the document says nothing about triggers on custom events:
     * those stay as they are. */
    if (s->staging) {
        if (ensure_loaded(s, e)) goto out;
        cur = s->defs;
        ncur = s->ndefs;
    } else if (load_defs(s, &cur, &ncur, e)) {
        goto out;
    }
    for (size_t i = 0; i < ncur; i++) {
        /* Custom-event triggers and schedules stay unless the document has its own
         * ("herald", "cron_triggers"). */
        if (cur[i].table || (cur[i].cron ? has_cron : has_custom)) continue;
        if (find_in(defs, n, cur[i].name)) {
            if (!cur[i].cron) continue;
            schedule_named(e, mp, cur[i].name);
            goto out;
        }
        json_t *j = hr_trigger_def_to_json(&cur[i]);
        defs = hr_xrealloc(defs, (n + 1) * sizeof *defs);
        if (hr_trigger_def_from_json(j, &defs[n], NULL) == 0) n++;
        json_decref(j);
    }
    if (s->staging) {
        defs_free(s->defs, s->ndefs);
        s->defs = defs;
        s->ndefs = n;
        for (size_t i = 0; i < n; i++)
            set_owner(s, defs[i].name, mp);
        defs = NULL;
        n = 0;
        s->dirty = 1;
    } else {
        if (apply_defs(s, defs, n, mp, e)) goto out;
        hr_log(HR_LOG_INFO, "msg=\"metadata: replaced\" triggers=%zu", n);
    }
    *out = success();
    rc = 0;
out:
    if (!s->staging) defs_free(cur, ncur);
    defs_free(defs, n);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                     */

static int op_invoke(session_t *s, const json_t *args, const char *path, json_t **out,
                     hr_md_err_t *e)
{
    static const char *const keys[] = {"name", "source", "payload", NULL};
    const char *name;
    if (args_object(args, path, keys, e) || arg_string(args, "name", path, 1, &name, e) ||
        arg_source(args, path, e))
        return -1;
    json_t *payload = json_object_get(args, "payload");
    if (!payload) return hr_md_fail(e, 400, "parse-failed", path, "key \"payload\" not found");
    if (flush(s, path, e)) return -1;
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    char id[40] = "";
    hr_err_t err = {0};
    int rc = s->ctx->ops->invoke(s->ctx->store, name, text, id, &err);
    free(text);
    if (rc == HR_ENOTFOUND) return not_exists_trigger(e, path, name);
    if (rc == HR_EINVAL) {
        char p[HR_MD_PATH_MAX];
        hr_md_path_key(p, sizeof p, path, "name");
        return hr_md_fail(e, 400, "not-supported", p,
                          "manual mode is not enabled for event trigger \"%s\"", name);
    }
    if (rc) return store_fail(e, rc, &err, path);
    s->poke = 1;
    hr_log(HR_LOG_INFO, "trigger=%s event=%s msg=\"metadata: manual event queued\"", name, id);
    *out = json_pack("{s:s}", "event_id", id);
    return 0;
}

/* An event id the store can look up, in lower case as the store writes ids, into id[37]; else
 * Hasura's not-exists. */
static int event_id_arg(const json_t *args, const char *path, char id[37], const char *fmt,
                        hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    const char *s;
    if (arg_string(args, "event_id", path, 1, &s, e)) return -1;
    if (hr_is_uuid(s)) {
        for (int i = 0; i < 37; i++)
            id[i] = (char)tolower((unsigned char)s[i]);
        return 0;
    }
    hr_md_path_key(p, sizeof p, path, "event_id");
    return hr_md_fail(e, 400, "not-exists", p, fmt, s);
}

static int op_redeliver(session_t *s, const json_t *args, const char *path, json_t **out,
                        hr_md_err_t *e)
{
    static const char *const keys[] = {"event_id", "source", "trigger", NULL};
    const char *trigger;
    char id[37], p[HR_MD_PATH_MAX];
    if (args_object(args, path, keys, e) ||
        event_id_arg(args, path, id, "event not found (%.60s is not an event id)", e) ||
        arg_source(args, path, e) || arg_string(args, "trigger", path, 0, &trigger, e))
        return -1;
    if (flush(s, path, e)) return -1;
    hr_err_t err = {0};
    json_t *ev = NULL;
    hr_md_path_key(p, sizeof p, path, "event_id");
    int rc = s->ctx->ops->event(s->ctx->store, id, 1, 0, &ev, &err);
    json_decref(ev);
    if (rc == HR_ENOTFOUND) return hr_md_fail(e, 400, "not-exists", p, "event not found");
    if (rc) return store_fail(e, rc, &err, path);
    int queued = 0;
    rc = s->ctx->ops->redeliver(s->ctx->store, id, trigger, &queued, &err);
    if (rc == HR_ENOTFOUND && trigger) {
        hr_md_path_key(p, sizeof p, path, "trigger");
        return hr_md_fail(e, 400, "not-exists", p, "event trigger \"%s\" does not exist", trigger);
    }
    if (rc == HR_ENOTFOUND)
        return hr_md_fail(e, 400, "busy", p,
                          "event %s has not been attempted by any trigger yet (it is still "
                          "pending); name one in args.trigger to queue it anyway",
                          id);
    if (rc) return store_fail(e, rc, &err, path);
    s->poke = 1;
    hr_log(HR_LOG_INFO, "event=%s msg=\"metadata: redelivery queued\" triggers=%d", id, queued);
    *out = success();
    return 0;
}

/* The delivery of the trigger in an event of the store. */
static json_t *delivery_of(json_t *event, const char *trigger)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(event, "deliveries"), i, d)
    {
        const char *t = json_string_value(json_object_get(d, "trigger"));
        if (t && strcmp(t, trigger) == 0) return d;
    }
    return NULL;
}

static int op_event_logs(session_t *s, const json_t *args, const char *path, json_t **out,
                         hr_md_err_t *e)
{
    static const char *const keys[] = {"name", "source", "status", "limit", "offset", NULL};
    const char *name, *status;
    int limit, offset;
    char p[HR_MD_PATH_MAX];
    if (args_object(args, path, keys, e) || arg_string(args, "name", path, 1, &name, e) ||
        arg_source(args, path, e) || arg_string(args, "status", path, 0, &status, e) ||
        arg_int(args, "limit", path, 100, 1, LIMIT_MAX, &limit, e) ||
        arg_int(args, "offset", path, 0, 0, INT_MAX, &offset, e))
        return -1;
    if (!status) status = "all";
    int pending = strcmp(status, "pending") == 0, processed = strcmp(status, "processed") == 0;
    if (!pending && !processed && strcmp(status, "all") != 0) {
        hr_md_path_key(p, sizeof p, path, "status");
        return hr_md_fail(e, 400, "parse-failed", p,
                          "event logs status can only be one of the following: pending, "
                          "processed or all");
    }
    if (flush(s, path, e)) return -1;
    /* The trigger's table names the rows. */
    hr_trigger_def_t *defs, *def = NULL;
    size_t n;
    if (load_defs(s, &defs, &n, e)) return -1;
    for (size_t i = 0; i < n && !def; i++)
        if (strcmp(defs[i].name, name) == 0 && !defs[i].cron) def = &defs[i];
    if (!def) {
        defs_free(defs, n);
        return not_exists_trigger(e, path, name);
    }
    json_t *rows = json_array();
    hr_event_query_t q = {
        .trigger = name, .pending_only = pending, .limit = limit, .offset = offset};
    int skipped = 0, rc = 0;
    if (processed) {
        /* The store filters pending events, not processed ones: read on and skip. */
        q.limit = SCAN_CHUNK;
        q.offset = 0;
    }
    for (;;) {
        json_t *evs = NULL;
        hr_err_t err = {0};
        size_t i;
        json_t *ev;
        rc = s->ctx->ops->events(s->ctx->store, &q, &evs, &err);
        if (rc == HR_ENOTFOUND) {
            rc = not_exists_trigger(e, path, name);
            break;
        }
        if (rc) {
            rc = store_fail(e, rc, &err, path);
            break;
        }
        json_array_foreach(evs, i, ev)
        {
            json_t *d = delivery_of(ev, name);
            if (processed) {
                const char *st = json_string_value(json_object_get(d, "state"));
                if (!st || (strcmp(st, "delivered") != 0 && strcmp(st, "dead") != 0)) continue;
                if (skipped < offset) {
                    skipped++;
                    continue;
                }
                if ((int)json_array_size(rows) >= limit) break;
            }
            json_array_append_new(rows, hr_md_event_log(ev, d, name, def->schema, def->table));
        }
        size_t got = json_array_size(evs);
        json_decref(evs);
        if (!processed || (int)json_array_size(rows) >= limit || got < SCAN_CHUNK ||
            q.offset >= (SCAN_MAX - 1) * SCAN_CHUNK)
            break;
        q.offset += SCAN_CHUNK;
    }
    defs_free(defs, n);
    if (rc) {
        json_decref(rows);
        return -1;
    }
    *out = rows;
    return 0;
}

static int op_invocation_logs(session_t *s, const json_t *args, const char *path, json_t **out,
                              hr_md_err_t *e)
{
    static const char *const keys[] = {"name", "source", "limit", "offset", NULL};
    const char *name;
    int limit, offset;
    if (args_object(args, path, keys, e) || arg_string(args, "name", path, 1, &name, e) ||
        arg_source(args, path, e) || arg_int(args, "limit", path, 100, 1, LIMIT_MAX, &limit, e) ||
        arg_int(args, "offset", path, 0, 0, INT_MAX, &offset, e))
        return -1;
    if (flush(s, path, e)) return -1;
    /* Only for a trigger that exists, whatever attempts a removed one left. */
    hr_trigger_def_t *defs;
    size_t n;
    int found = 0;
    if (load_defs(s, &defs, &n, e)) return -1;
    for (size_t k = 0; k < n && !found; k++)
        found = strcmp(defs[k].name, name) == 0 && !defs[k].cron;
    defs_free(defs, n);
    if (!found) return not_exists_trigger(e, path, name);
    json_t *atts = NULL, *a;
    hr_err_t err = {0};
    size_t i;
    int rc = s->ctx->ops->attempts(s->ctx->store, name, limit, offset, &atts, &err);
    if (rc == HR_ENOTFOUND) return not_exists_trigger(e, path, name);
    if (rc) return store_fail(e, rc, &err, path);
    json_t *rows = json_array();
    json_array_foreach(atts, i, a) json_array_append_new(rows, hr_md_invocation_log(a));
    json_decref(atts);
    *out = rows;
    return 0;
}

static int op_event_by_id(session_t *s, const json_t *args, const char *path, json_t **out,
                          hr_md_err_t *e)
{
    static const char *const keys[] = {"event_id", "source", "invocation_log_limit",
                                       "invocation_log_offset", NULL};
    int limit, offset;
    char id[37], p[HR_MD_PATH_MAX];
    if (args_object(args, path, keys, e) ||
        event_id_arg(args, path, id, "event id %.60s does not exist", e) ||
        arg_source(args, path, e) ||
        arg_int(args, "invocation_log_limit", path, 100, 1, LIMIT_MAX, &limit, e) ||
        arg_int(args, "invocation_log_offset", path, 0, 0, INT_MAX, &offset, e))
        return -1;
    if (flush(s, path, e)) return -1;
    json_t *ev = NULL, *a;
    hr_err_t err = {0};
    size_t i;
    int rc = s->ctx->ops->event(s->ctx->store, id, limit, offset, &ev, &err);
    hr_md_path_key(p, sizeof p, path, "event_id");
    if (rc == HR_ENOTFOUND || (rc == HR_ESCHEMA && strstr(err.msg, "not installed")))
        return hr_md_fail(e, 400, "not-exists", p, "event id %s does not exist", id);
    if (rc) return store_fail(e, rc, &err, path);
    /* Hasura's event row belongs to one trigger; herald's event to every trigger that matched
     * it: the row names the first of them and carries the store's "deliveries" besides. */
    json_t *deliveries = json_object_get(ev, "deliveries"), *d = json_array_get(deliveries, 0);
    json_t *row =
        hr_md_event_log(ev, d, json_string_value(json_object_get(d, "trigger")), NULL, NULL);
    json_object_set_new(row, "deliveries",
                        json_is_array(deliveries) ? json_incref(deliveries) : json_array());
    json_t *inv = json_array();
    json_array_foreach(json_object_get(ev, "attempts"), i, a)
        json_array_append_new(inv, hr_md_invocation_log(a));
    json_decref(ev);
    *out = json_pack("{s:o,s:o}", "event", row, "invocations", inv);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Cron triggers and one-off scheduled events                                                 */

static int not_exists_cron(hr_md_err_t *e, const char *path, const char *name)
{
    char p[HR_MD_PATH_MAX];
    hr_md_path_key(p, sizeof p, path, "name");
    return hr_md_fail(e, 400, "not-exists", p, "cron trigger \"%s\" does not exist", name);
}

static int trigger_named(hr_md_err_t *e, const char *path, const char *name)
{
    return hr_md_fail(e, 400, "already-exists", path,
                      "an event trigger is named \"%s\": triggers and schedules share one "
                      "namespace",
                      name);
}

static int op_cron_create(session_t *s, const json_t *args, const char *path, json_t **out,
                          hr_md_err_t *e)
{
    hr_trigger_def_t def;
    int replace, kind = 0;
    char p[HR_MD_PATH_MAX];
    if (hr_md_cron_from_create(args, path, &def, &replace, e)) return -1;
    hr_md_path_key(p, sizeof p, path, "name");
    if (s->staging) {
        if (ensure_loaded(s, e)) goto fail;
        hr_trigger_def_t *old = find_def(s, def.name);
        kind = !old ? 0 : old->cron ? 2 : 1;
    } else if (stored_kind(s, def.name, &kind, e)) {
        goto fail;
    }
    if (kind == 1) {
        trigger_named(e, p, def.name);
        goto fail;
    }
    if (kind == 2 && !replace) {
        hr_md_fail(e, 400, "already-exists", p, "cron trigger with name \"%s\" already exists",
                   def.name);
        goto fail;
    }
    if (s->staging) {
        stage_put(s, &def, path);
        *out = success();
        return 0;
    }
    hr_err_t err = {0};
    int rc = s->ctx->ops->put_trigger(s->ctx->store, &def, replace, &err);
    if (rc == HR_EEXIST)
        hr_md_fail(e, 400, "already-exists", p, "cron trigger with name \"%s\" already exists",
                   def.name);
    else if (rc)
        store_fail(e, rc, &err, path);
    else
        hr_log(HR_LOG_INFO, "trigger=%s msg=\"metadata: cron trigger %s\"", def.name,
               kind ? "replaced" : "created");
    hr_trigger_def_clear(&def);
    if (rc) return -1;
    *out = success();
    return 0;
fail:
    hr_trigger_def_clear(&def);
    return -1;
}

static int op_cron_delete(session_t *s, const json_t *args, const char *path, json_t **out,
                          hr_md_err_t *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (args_object(args, path, keys, e) || arg_string(args, "name", path, 1, &name, e)) return -1;
    return delete_named(s, name, path, 1, out, e);
}

static int op_cron_get(session_t *s, const json_t *args, const char *path, json_t **out,
                       hr_md_err_t *e)
{
    static const char *const keys[] = {NULL};
    if (args && !json_is_null(args) && args_object(args, path, keys, e)) return -1;
    hr_trigger_def_t *defs = s->defs;
    size_t n = s->ndefs;
    if (s->staging) {
        if (ensure_loaded(s, e)) return -1;
        defs = s->defs;
        n = s->ndefs;
    } else if (load_defs(s, &defs, &n, e)) {
        return -1;
    }
    /* export_metadata's cron_triggers, which are sorted by name. */
    json_t *md = hr_md_metadata_from_defs(defs, n, s->ctx->ops->name);
    json_t *list = json_object_get(md, "cron_triggers");
    *out = list ? json_pack("{s:O}", "cron_triggers", list)
                : json_pack("{s:o}", "cron_triggers", json_array());
    json_decref(md);
    if (!s->staging) defs_free(defs, n);
    return 0;
}

static int op_sched_create(session_t *s, const json_t *args, const char *path, json_t **out,
                           hr_md_err_t *e)
{
    char *nj = NULL, id[40] = "";
    int64_t due;
    if (hr_md_one_off_from_create(args, path, hr_wall_us(), &nj, &due, e)) return -1;
    if (flush(s, path, e)) {
        free(nj);
        return -1;
    }
    hr_err_t err = {0};
    int rc = s->ctx->ops->schedule_one_off(s->ctx->store, nj, due, id, &err);
    free(nj);
    if (rc) return store_fail(e, rc, &err, path);
    s->poke = 1;
    hr_log(HR_LOG_INFO, "event=%s msg=\"metadata: one-off event scheduled\"", id);
    *out = json_pack("{s:s,s:s}", "message", "success", "event_id", id);
    return 0;
}

static int op_sched_delete(session_t *s, const json_t *args, const char *path, json_t **out,
                           hr_md_err_t *e)
{
    static const char *const keys[] = {"type", "event_id", NULL};
    const char *type;
    char id[37], p[HR_MD_PATH_MAX];
    if (args_object(args, path, keys, e) || arg_string(args, "type", path, 1, &type, e)) return -1;
    int cron = strcmp(type, "cron") == 0;
    if (!cron && strcmp(type, "one_off") != 0) {
        hr_md_path_key(p, sizeof p, path, "type");
        return hr_md_fail(e, 400, "parse-failed", p,
                          "scheduled event type can only be one of the following: one_off, cron");
    }
    if (event_id_arg(args, path, id, "scheduled event %.60s does not exist", e)) return -1;
    if (flush(s, path, e)) return -1;
    hr_err_t err = {0};
    int rc = s->ctx->ops->delete_scheduled(s->ctx->store, cron, id, &err);
    hr_md_path_key(p, sizeof p, path, "event_id");
    if (rc == HR_ENOTFOUND || (rc == HR_ESCHEMA && strstr(err.msg, "not installed")))
        return hr_md_fail(e, 400, "not-exists", p,
                          "scheduled event %s does not exist or is no longer pending", id);
    if (rc) return store_fail(e, rc, &err, path);
    hr_log(HR_LOG_INFO, "event=%s msg=\"metadata: scheduled event cancelled\"", id);
    *out = success();
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                   */

static int op_bulk(session_t *s, const json_t *args, const char *path, json_t **out,
                   hr_md_err_t *e);

static const struct {
    const char *type;
    op_fn fn;
    int args_required;
} types[] = {
    {"pg_create_event_trigger", op_create, 1},
    {"pg_delete_event_trigger", op_delete, 1},
    {"pg_invoke_event_trigger", op_invoke, 1},
    {"pg_redeliver_event", op_redeliver, 1},
    {"pg_get_event_logs", op_event_logs, 1},
    {"pg_get_event_invocation_logs", op_invocation_logs, 1},
    {"pg_get_event_by_id", op_event_by_id, 1},
    {"create_cron_trigger", op_cron_create, 1},
    {"delete_cron_trigger", op_cron_delete, 1},
    {"get_cron_triggers", op_cron_get, 0},
    {"create_scheduled_event", op_sched_create, 1},
    {"delete_scheduled_event", op_sched_delete, 1},
    {"export_metadata", op_export, 0},
    {"replace_metadata", op_replace, 1},
    {"bulk", op_bulk, 1},
};

static int run_query(session_t *s, const json_t *q, const char *path, json_t **out, hr_md_err_t *e)
{
    static const char *const keys[] = {"type", "args", "version", "resource_version", NULL};
    char p[HR_MD_PATH_MAX], shown[120];
    const char *type;
    int version;
    if (args_object(q, path, keys, e) || arg_string(q, "type", path, 1, &type, e) ||
        arg_int(q, "version", path, 1, 1, 2, &version, e))
        return -1;
    size_t k = 0, ntypes = sizeof types / sizeof types[0];
    while (k < ntypes && strcmp(types[k].type, type) != 0)
        k++;
    if (k == ntypes) {
        hr_md_path_key(p, sizeof p, path, "type");
        snprintf(shown, sizeof shown, "%.100s", type);
        return hr_md_fail(e, 400, "parse-failed", p,
                          "unknown metadata type \"%s\" (herald supports the event trigger "
                          "types, the cron trigger and scheduled event types, "
                          "export_metadata, replace_metadata and bulk)",
                          shown);
    }
    json_t *args = json_object_get(q, "args");
    if (!args && types[k].args_required)
        return hr_md_fail(e, 400, "parse-failed", path, "key \"args\" not found");
    hr_md_path_key(p, sizeof p, path, "args");
    json_t *res = NULL;
    if (types[k].fn(s, args, p, &res, e)) return -1;
    /* export_metadata with "version": 2 answers {"resource_version", "metadata"}. */
    if (version == 2 && types[k].fn == op_export)
        res = json_pack("{s:i,s:o}", "resource_version", 1, "metadata", res);
    *out = res;
    return 0;
}

static int op_bulk(session_t *s, const json_t *args, const char *path, json_t **out, hr_md_err_t *e)
{
    char p[HR_MD_PATH_MAX];
    size_t i;
    json_t *q;
    if (!json_is_array(args))
        return hr_md_fail(e, 400, "parse-failed", path, "expected an array of queries");
    if (json_array_size(args) > BULK_MAX)
        return hr_md_fail(e, 400, "validation-failed", path,
                          "a bulk holds at most %d queries, this one %zu", BULK_MAX,
                          json_array_size(args));
    if (s->depth >= BULK_DEPTH_MAX)
        return hr_md_fail(e, 400, "validation-failed", path, "bulk queries nest at most %d deep",
                          BULK_DEPTH_MAX);
    int outer = !s->staging;
    s->staging = 1;
    s->depth++;
    json_t *results = json_array();
    int rc = 0;
    json_array_foreach(args, i, q)
    {
        json_t *r = NULL;
        hr_md_path_index(p, sizeof p, path, i);
        if ((rc = run_query(s, q, p, &r, e))) break;
        json_array_append_new(results, r);
    }
    s->depth--;
    if (outer) {
        if (!rc) rc = flush(s, path, e);
        session_reset_stage(s);
        s->staging = 0;
    }
    if (rc) {
        json_decref(results);
        return -1;
    }
    *out = results;
    return 0;
}

static void on_metadata(hr_request_t *req, void *ud)
{
    hr_api_ctx_t *ctx = ud;
    if (!hr_api_authorized(ctx, req)) {
        int given = hr_request_header(req, "x-herald-admin-secret") ||
                    hr_request_header(req, "x-hasura-admin-secret");
        hr_log(HR_LOG_WARN, "peer=%s msg=\"metadata: %s admin secret\"", hr_request_peer(req),
               given ? "wrong" : "no");
        hr_api_send_error(req, 401, "access-denied",
                          given ? "invalid admin secret (x-herald-admin-secret or "
                                  "x-hasura-admin-secret)"
                                : "x-herald-admin-secret (or x-hasura-admin-secret) required, "
                                  "but not found",
                          "$");
        return;
    }
    size_t len;
    const char *body = hr_request_body(req, &len);
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        hr_api_send_error(req, 400, "invalid-json", msg, "$");
        return;
    }
    session_t s = {.ctx = ctx};
    hr_md_err_t e = {0};
    json_t *res = NULL;
    const char *type = json_string_value(json_object_get(root, "type"));
    char tshown[64];
    snprintf(tshown, sizeof tshown, "%s", type ? type : "?");
    for (char *c = tshown; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '"' || *c == 0x7f) *c = '?';
    int rc = run_query(&s, root, "$", &res, &e);
    for (char *c = e.path; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    session_reset_stage(&s);
    json_decref(root);
    if (s.poke && ctx->dispatcher) hr_dispatcher_poke(ctx->dispatcher);
    if (rc) {
        hr_log(e.status >= 500 ? HR_LOG_ERROR : HR_LOG_INFO,
               "msg=\"metadata: failed\" type=%s status=%d code=%s path=\"%s\"", tshown, e.status,
               e.code, e.path);
        hr_api_send_error(req, e.status, e.code, e.msg, e.path);
        return;
    }
    hr_log(HR_LOG_DEBUG, "msg=\"metadata: done\" type=%s", tshown);
    hr_api_send_json(req, 200, res);
}

int hr_metadata_register(hr_server_t *srv, hr_api_ctx_t *ctx, hr_err_t *err)
{
    int rc = hr_server_route(srv, "POST", "/v1/metadata", on_metadata, ctx);
    if (rc) return hr_err_set(err, rc, "cannot route POST /v1/metadata (%s)", hr_strerror(rc));
    return 0;
}
