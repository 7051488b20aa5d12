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
#include "dispatch/payload.h"

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
    if (hr_md_defs_from_metadata(back, "$.args", &got, &ngot, &custom, NULL, &e))
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
                                          &custom, NULL, &e);
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
    /* A schedule (cron trigger) is not an event trigger: it goes to cron_triggers. */
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
    /* The schedule is a cron trigger, never an event trigger. */
    char *text = dump(json_object_get(md, "sources"));
    assert_null(strstr(text, "nightly"));
    free(text);
    text = dump(custom);
    assert_null(strstr(text, "nightly"));
    free(text);
    json_t *crons = json_object_get(md, "cron_triggers");
    assert_int_equal(json_array_size(crons), 1);
    json_t *want = json_loads("{\"name\":\"nightly\",\"webhook\":\"http://h/cron\","
                              "\"schedule\":\"0 3 * * *\",\"include_in_metadata\":true,"
                              "\"retry_conf\":{\"num_retries\":5,\"retry_interval_seconds\":2,"
                              "\"timeout_seconds\":30,\"tolerance_seconds\":21600,"
                              "\"backoff\":\"exponential\"}}",
                              0, NULL);
    assert_non_null(want);
    json_t *one = hr_md_trigger_to_json(sched);
    if (!json_equal(want, json_array_get(crons, 0)) || !json_equal(want, one)) {
        char *g = dump(json_array_get(crons, 0));
        fail_msg("cron trigger export: %s", g);
    }
    json_decref(one);
    json_decref(want);
    json_decref(md);
    assert_round_trip("all", all, nall);
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
}

/* Cron triggers and one-off events: Hasura's args to herald's shapes and back (sched.json). */
static void test_sched(void **state)
{
    (void)state;
    json_t *cases = load("sched.json"), *c;
    size_t i;
    json_array_foreach(cases, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *want_err = json_object_get(c, "error"), *args;
        hr_md_err_t e = {0};
        if ((args = json_object_get(c, "cron"))) {
            hr_trigger_def_t def;
            int replace = -1;
            int rc = hr_md_cron_from_create(args, "$.args", &def, &replace, &e);
            if (want_err) {
                if (!rc) fail_msg("%s: accepted", name);
                assert_error(name, want_err, &e);
                continue;
            }
            if (rc) fail_msg("%s: %s at %s: %s", name, e.code, e.path, e.msg);
            assert_int_equal(replace, json_is_true(json_object_get(c, "replace")));
            json_t *got = hr_md_cron_to_json(&def);
            assert_equal_json(name, json_object_get(c, "want"), got);
            /* The export reads back to the same definition. */
            hr_trigger_def_t back;
            if (hr_md_cron_from_export(got, "$", &back, &e))
                fail_msg("%s: export does not read back: %s at %s: %s", name, e.code, e.path,
                         e.msg);
            json_t *a = hr_trigger_def_to_json(&def), *b = hr_trigger_def_to_json(&back);
            assert_equal_json(name, a, b);
            json_decref(a);
            json_decref(b);
            json_decref(got);
            hr_trigger_def_clear(&def);
            hr_trigger_def_clear(&back);
            continue;
        }
        args = json_object_get(c, "one_off");
        int64_t now = 0, due = -1, want_due = 0;
        const char *now_s = json_string_value(json_object_get(c, "now"));
        assert_int_equal(hr_md_parse_time(now_s ? now_s : "2026-01-01T00:00:00Z", &now), 0);
        char *nj = NULL;
        int rc = hr_md_one_off_from_create(args, "$.args", now, &nj, &due, &e);
        if (want_err) {
            if (!rc) fail_msg("%s: accepted", name);
            assert_null(nj);
            assert_error(name, want_err, &e);
            continue;
        }
        if (rc) fail_msg("%s: %s at %s: %s", name, e.code, e.path, e.msg);
        assert_int_equal(hr_md_parse_time(json_string_value(json_object_get(c, "due")), &want_due),
                         0);
        assert_int_equal(due, want_due);
        json_t *got = json_loads(nj, 0, NULL);
        assert_equal_json(name, json_object_get(c, "want"), got);
        /* What the dispatcher reads back from the log row. */
        hr_event_t ev = {.op = "ONE_OFF", .new_json = nj};
        hr_trigger_def_t od;
        assert_int_equal(hr_payload_one_off_def(&ev, &od), 0);
        json_t *r = json_object_get(got, "retry");
        assert_string_equal(od.webhook, json_string_value(json_object_get(got, "webhook")));
        assert_int_equal(od.retry.max_retries,
                         json_integer_value(json_object_get(r, "num_retries")));
        assert_int_equal(
            od.tolerance_ms,
            (uint64_t)(json_number_value(json_object_get(r, "tolerance_seconds")) * 1000));
        assert_int_equal(od.nheaders, json_array_size(json_object_get(got, "headers")));
        hr_trigger_def_clear(&od);
        json_decref(got);
        free(nj);
    }
    json_decref(cases);
    /* Times: formatting is the inverse of parsing. */
    char out[40];
    int64_t us;
    assert_int_equal(hr_md_parse_time("1970-01-01T00:00:00Z", &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(hr_md_parse_time("2026-11-23T12:00:00.123456789-02:30", &us), 0);
    hr_md_format_time(us, out);
    assert_string_equal(out, "2026-11-23T14:30:00.123456Z");
    assert_int_equal(hr_md_parse_time("2024-02-29T00:00:00Z", &us), 0);
    assert_int_equal(hr_md_parse_time("2026-11-23T12:00:00Zx", &us), -1);
    assert_int_equal(hr_md_parse_time("2026-11-23T12:00", &us), -1);
    assert_int_equal(hr_md_parse_time("2026-11-23T12:00:00.Z", &us), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_export),        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_paths_and_ids), cmocka_unit_test(test_sched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
