/* test_metadata.c: Hasura's metadata shapes ⇄ herald's trigger definitions
 * (api/metadata_hasura.c), against golden cases in data/metadata/:
 *
 *   create.json    pg_create_event_trigger args -> the definition (the listed members of its
 *                  canonical JSON), or the error: code, path and a part of the message
 *   metadata.json  replace_metadata documents -> the definitions, or the error
 *   export.json    a definition (canonical JSON, missing members default) -> its exported shape
 *   logs.json      the store's events and attempts -> Hasura's event and invocation log rows
 *
 * Every definition read or exported must also survive export_metadata followed by
 * replace_metadata unchanged. The working directory is tests/unit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metadata_hasura.h"

static json_t *load(const char *name)
{
    char path[512];
    const char *dir = getenv("HERALD_TEST_DATA");
    snprintf(path, sizeof path, "%s/metadata/%s", dir ? dir : "data", name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s (line %d)", path, je.text, je.line);
    return j;
}

static char *dump(const json_t *j)
{
    return json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Every member of want equals the same member of got. */
static void assert_members(const char *name, const json_t *want, const json_t *got)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v)
    {
        json_t *g = json_object_get(got, k);
        if (!g || !json_equal(v, g)) {
            char *a = dump(v), *b = g ? dump(g) : strdup("(absent)"), *all = dump(got);
            fail_msg("%s: member %s: want %s, got %s\nwhole: %s", name, k, a, b, all);
        }
    }
}

static void assert_error(const char *name, const json_t *want, const hr_md_err_t *e)
{
    const char *code = json_string_value(json_object_get(want, "code"));
    const char *path = json_string_value(json_object_get(want, "path"));
    const char *msg = json_string_value(json_object_get(want, "message"));
    if (!e->code || strcmp(e->code, code) != 0 || strcmp(e->path, path) != 0 ||
        !strstr(e->msg, msg) || e->status != 400)
        fail_msg("%s: want %s at %s with \"%s\", got %s (%d) at %s: %s", name, code, path, msg,
                 e->code ? e->code : "(none)", e->status, e->path, e->msg);
}

static void assert_equal_json(const char *name, const json_t *want, const json_t *got)
{
    if (json_equal(want, got)) return;
    char *a = dump(want), *b = dump(got);
    fail_msg("%s:\nwant %s\ngot  %s", name, a, b);
}

/* export_metadata then replace_metadata gives back the same definitions. */
static void assert_round_trip(const char *name, const hr_trigger_def_t *defs, size_t n)
{
    json_t *md = hr_md_metadata_from_defs(defs, n, "postgres");
    /* Through text, as a client would send it. */
    char *text = dump(md);
    json_t *back = json_loads(text, 0, NULL);
    hr_trigger_def_t *got = NULL;
    size_t ngot = 0;
    int custom = 0;
    hr_md_err_t e = {0};
    if (hr_md_defs_from_metadata(back, "$.args", &got, &ngot, &custom, &e))
        fail_msg("%s: round trip failed: %s at %s: %s\n%s", name, e.code, e.path, e.msg, text);
    assert_int_equal(ngot, n);
    assert_true(custom);
    for (size_t i = 0; i < n; i++) {
        json_t *a = hr_trigger_def_to_json(&defs[i]);
        json_t *b = NULL;
        for (size_t k = 0; k < ngot && !b; k++)
            if (strcmp(got[k].name, defs[i].name) == 0) b = hr_trigger_def_to_json(&got[k]);
        if (!b) fail_msg("%s: round trip lost %s", name, defs[i].name);
        assert_equal_json(name, a, b);
        json_decref(a);
        json_decref(b);
    }
    for (size_t k = 0; k < ngot; k++)
        hr_trigger_def_clear(&got[k]);
    free(got);
    free(text);
    json_decref(back);
    json_decref(md);
}

static void test_create(void **state)
{
    (void)state;
    json_t *cases = load("create.json"), *c;
    size_t i;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        hr_trigger_def_t def;
        hr_md_err_t e = {0};
        int replace = -1;
        int rc =
            hr_md_trigger_from_create(json_object_get(c, "args"), "$.args", &def, &replace, &e);
        json_t *want_err = json_object_get(c, "error");
        if (want_err) {
            if (rc == 0) fail_msg("%s: accepted", name);
            assert_error(name, want_err, &e);
            assert_null(def.name); /* left cleared */
            continue;
        }
        if (rc) fail_msg("%s: %s at %s: %s", name, e.code, e.path, e.msg);
        json_t *r = json_object_get(c, "replace");
        if (r) assert_int_equal(replace, json_is_true(r));
        json_t *got = hr_trigger_def_to_json(&def);
        assert_members(name, json_object_get(c, "def"), got);
        json_decref(got);
        assert_round_trip(name, &def, 1);
        hr_trigger_def_clear(&def);
    }
    json_decref(cases);
}

static void test_metadata(void **state)
{
    (void)state;
    json_t *cases = load("metadata.json"), *c;
    size_t i;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        hr_trigger_def_t *defs = NULL;
        size_t n = 0;
        int custom = -1;
        hr_md_err_t e = {0};
        int rc = hr_md_defs_from_metadata(json_object_get(c, "metadata"), "$.args", &defs, &n,
                                          &custom, &e);
        json_t *want_err = json_object_get(c, "error");
        if (want_err) {
            if (rc == 0) fail_msg("%s: accepted", name);
            assert_error(name, want_err, &e);
            assert_null(defs);
            assert_int_equal(n, 0);
            continue;
        }
        if (rc) fail_msg("%s: %s at %s: %s", name, e.code, e.path, e.msg);
        json_t *want = json_object_get(c, "defs");
        assert_int_equal(n, json_array_size(want));
        assert_int_equal(custom, json_is_true(json_object_get(c, "has_custom")));
        for (size_t k = 0; k < n; k++) {
            json_t *got = hr_trigger_def_to_json(&defs[k]);
            assert_members(name, json_array_get(want, k), got);
            json_decref(got);
        }
        assert_round_trip(name, defs, n);
        for (size_t k = 0; k < n; k++)
            hr_trigger_def_clear(&defs[k]);
        free(defs);
    }
    json_decref(cases);
}

static void test_export(void **state)
{
    (void)state;
    json_t *cases = load("export.json"), *c;
    size_t i;
    hr_trigger_def_t all[16];
    size_t nall = 0;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        hr_trigger_def_t def;
        hr_err_t err = {0};
        if (hr_trigger_def_from_json(json_object_get(c, "def"), &def, &err))
            fail_msg("%s: bad golden definition: %s", name, err.msg);
        json_t *got = hr_md_trigger_to_json(&def);
        assert_equal_json(name, json_object_get(c, "export"), got);
        json_decref(got);
        assert_round_trip(name, &def, 1);
        assert_true(nall < 16);
        all[nall++] = def;
    }
    /* A schedule (cron trigger) is not an event trigger: it is left out. */
    hr_trigger_def_t *sched = &all[nall++];
    hr_schedule_def_defaults(sched);
    sched->name = strdup("nightly");
    sched->cron = strdup("0 3 * * *");
    sched->webhook = strdup("http://h/cron");
    /* The whole document: tables grouped and sorted, custom triggers in herald's extension. */
    json_t *md = hr_md_metadata_from_defs(all, nall, "sqlite");
    json_t *src = json_array_get(json_object_get(md, "sources"), 0);
    assert_int_equal(json_integer_value(json_object_get(md, "version")), 3);
    assert_string_equal(json_string_value(json_object_get(src, "name")), "default");
    assert_string_equal(json_string_value(json_object_get(src, "kind")), "sqlite");
    json_t *tables = json_object_get(src, "tables");
    assert_int_equal(json_array_size(tables), 3);
    const char *order[][2] = {{"public", "orders"}, {"public", "t"}, {"s", "My Table"}};
    for (size_t k = 0; k < 3; k++) {
        json_t *t = json_object_get(json_array_get(tables, k), "table");
        assert_string_equal(json_string_value(json_object_get(t, "schema")), order[k][0]);
        assert_string_equal(json_string_value(json_object_get(t, "name")), order[k][1]);
    }
    json_t *custom = json_object_get(json_object_get(md, "herald"), "event_triggers");
    assert_int_equal(json_array_size(custom), 1);
    char *text = dump(md);
    assert_null(strstr(text, "nightly"));
    free(text);
    json_decref(md);
    assert_round_trip("all", all, nall - 1);
    for (size_t k = 0; k < nall; k++)
        hr_trigger_def_clear(&all[k]);
    json_decref(cases);
}

static void test_logs(void **state)
{
    (void)state;
    json_t *cases = load("logs.json"), *c;
    size_t i;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *got;
        if (json_object_get(c, "event")) {
            json_t *d = json_object_get(c, "delivery");
            got = hr_md_event_log(json_object_get(c, "event"), json_is_null(d) ? NULL : d,
                                  json_string_value(json_object_get(c, "trigger")),
                                  json_string_value(json_object_get(c, "schema")),
                                  json_string_value(json_object_get(c, "table")));
            assert_equal_json(name, json_object_get(c, "row"), got);
        } else {
            got = hr_md_invocation_log(json_object_get(c, "attempt"));
            assert_equal_json(name, json_object_get(c, "invocation"), got);
        }
        json_decref(got);
    }
    json_decref(cases);
}

static void test_paths_and_ids(void **state)
{
    (void)state;
    char p[HR_MD_PATH_MAX];
    hr_md_path_key(p, sizeof p, "$.args", "retry_conf");
    assert_string_equal(p, "$.args.retry_conf");
    hr_md_path_key(p, sizeof p, "$", "X-Api-Key");
    assert_string_equal(p, "$['X-Api-Key']");
    hr_md_path_index(p, sizeof p, "$.args", 12);
    assert_string_equal(p, "$.args[12]");
    assert_true(hr_md_is_uuid("5c0e8e2c-8a6b-4f53-9d0b-1F3C1E7E2A10"));
    assert_false(hr_md_is_uuid("5c0e8e2c-8a6b-4f53-9d0b-1f3c1e7e2a1"));
    assert_false(hr_md_is_uuid("5c0e8e2c_8a6b-4f53-9d0b-1f3c1e7e2a10"));
    assert_false(hr_md_is_uuid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_export),        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_paths_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
