/* test_payload.c: trigger matching (dispatch/event.c) and request bodies (dispatch/payload.c).
 *
 * Bodies are golden-tested: each case gives the event and the exact expected body. Every body
 * is also parsed back with jansson and compared with json_equal, and checked to be compact (no
 * white space outside strings). To keep the tables readable, JSON in them is written with '
 * for " and converted before use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "dispatch/event.h"
#include "dispatch/payload.h"

#define ID "85558393-c75d-4d2f-9c15-e80591b83894"
#define TS "2018-09-05T07:14:21.601701Z"

/* A copy of s with every ' turned into ". NULL stays NULL. */
static char *dq(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; *p; p++)
        if (*p == '\'') *p = '"';
    return d;
}

/* 1 if text has no white space outside JSON strings. */
static int is_compact(const char *text)
{
    int in_string = 0;
    for (const char *p = text; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_string = 0;
        } else if (*p == '"') {
            in_string = 1;
        } else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
            return 0;
        }
    }
    return 1;
}

/* Parses a body; integers beyond 64 bits are read as reals (the exact text is compared too). */
static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) j = json_loads(text, JSON_DECODE_INT_AS_REAL, &e);
    if (!j) fail_msg("invalid JSON (%s at %d): %s", e.text, e.position, text);
    return j;
}

/* Checks body: valid, compact, and semantically equal to want (a JSON value). */
static void check_json(const char *what, const char *body, json_t *want)
{
    json_t *got = parse(body);
    if (!json_equal(got, want)) {
        char *w = json_dumps(want, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fail_msg("%s: body differs\n got: %s\nwant: %s", what, body, w);
    }
    if (!is_compact(body)) fail_msg("%s: body is not compact: %s", what, body);
    json_decref(got);
}

static hr_trigger_def_t table_trigger(const char *name, unsigned ops)
{
    hr_trigger_def_t t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.schema = "public";
    t.table = "users";
    t.ops = ops;
    t.retry.max_retries = 5;
    t.retry.interval_ms = 2000;
    t.retry.max_interval_ms = 600000;
    t.retry.timeout_ms = 30000;
    t.concurrency = 64;
    return t;
}

static hr_event_t row_event(const char *op, const char *old_json, const char *new_json)
{
    hr_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.seq = 1;
    ev.id = ID;
    ev.created_at = TS;
    ev.schema = "public";
    ev.table = "users";
    ev.op = op;
    ev.old_json = old_json;
    ev.new_json = new_json;
    return ev;
}

static hr_event_t emit_event(const char *type, const char *payload)
{
    hr_event_t ev = row_event("EMIT", NULL, payload);
    ev.schema = ev.table = NULL;
    ev.type = type;
    return ev;
}

/* ---- matching: table triggers ---- */

static void test_match_table(void **state)
{
    hr_trigger_def_t t = table_trigger("t", HR_OP_INSERT | HR_OP_UPDATE);
    hr_event_t ev = row_event("INSERT", NULL, "{}");
    assert_true(hr_event_matches(&t, &ev));
    ev.op = "UPDATE";
    assert_true(hr_event_matches(&t, &ev));
    ev.op = "DELETE";
    assert_false(hr_event_matches(&t, &ev));
    ev.op = "MANUAL";
    assert_false(hr_event_matches(&t, &ev));
    t.ops |= HR_OP_MANUAL | HR_OP_DELETE;
    assert_true(hr_event_matches(&t, &ev));
    ev.op = "DELETE";
    assert_true(hr_event_matches(&t, &ev));
    ev.op = "TRUNCATE";
    assert_false(hr_event_matches(&t, &ev));
    ev.op = "insert"; /* ops are upper case */
    assert_false(hr_event_matches(&t, &ev));
    ev.op = NULL;
    assert_false(hr_event_matches(&t, &ev));

    /* Schema and table are compared exactly. */
    ev = row_event("INSERT", NULL, "{}");
    ev.table = "Users";
    assert_false(hr_event_matches(&t, &ev));
    ev.table = "users2";
    assert_false(hr_event_matches(&t, &ev));
    ev.table = "users";
    ev.schema = "private";
    assert_false(hr_event_matches(&t, &ev));
    ev.schema = NULL;
    assert_false(hr_event_matches(&t, &ev));

    /* A table trigger never matches an emitted event, whatever its fields say. */
    ev = row_event("EMIT", NULL, "{}");
    ev.type = "users";
    assert_false(hr_event_matches(&t, &ev));
    t.ops = ~0u;
    assert_false(hr_event_matches(&t, &ev));

    assert_false(hr_event_matches(NULL, &ev));
    assert_false(hr_event_matches(&t, NULL));
}

static void test_match_update_columns(void **state)
{
    static char *cols[] = {"name", "email"};
    hr_trigger_def_t t = table_trigger("t", HR_OP_INSERT | HR_OP_UPDATE);
    t.columns = cols;
    t.ncolumns = 2;
    static const struct {
        const char *old_json, *new_json;
        int want;
    } cases[] = {
        {"{'id':1,'name':'a','age':3}", "{'id':1,'name':'b','age':3}", 1},
        {"{'id':1,'name':'a','age':3}", "{'id':1,'name':'a','age':4}", 0},
        {"{'id':1,'name':'a','email':null}", "{'id':1,'name':'a','email':'x@y'}", 1},
        {"{'id':1,'name':'a'}", "{'id':1,'name':'a','email':'x@y'}", 1},      /* appears */
        {"{'id':1,'name':'a','email':'x@y'}", "{'id':1,'name':'a'}", 1},      /* disappears */
        {"{'id':1}", "{'id':2}", 0},                                          /* absent on both */
        {"{'name':{'a':1,'b':[1,2]}}", "{'name': {'b': [1, 2], 'a': 1}}", 0}, /* same value */
        {"{'name':{'a':1,'b':[1,2]}}", "{'name':{'a':1,'b':[2,1]}}", 1},
        {"{'name':'a','email':'e'}", "{'email':'e','name':'a'}", 0}, /* key order */
        {"{'name':1}", "{'name':'1'}", 1},
        {"{'name':null}", "{'name':false}", 1},
        /* Rows that cannot be compared deliver (a safe default). */
        {NULL, "{'name':'a'}", 1},
        {"{'name':'a'}", NULL, 1},
        {"not json", "{'name':'a'}", 1},
        {"[1]", "{'name':'a'}", 1},
        {"{'name':'a','n':123456789012345678901234567890}",
         "{'name':'a','n':123456789012345678901234567890}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = dq(cases[i].old_json), *n = dq(cases[i].new_json);
        hr_event_t ev = row_event("UPDATE", o, n);
        if (hr_event_matches(&t, &ev) != cases[i].want)
            fail_msg("case %zu: %s -> %s should %smatch", i, cases[i].old_json, cases[i].new_json,
                     cases[i].want ? "" : "not ");
        /* The column filter is about UPDATE only. */
        ev.op = "INSERT";
        assert_true(hr_event_matches(&t, &ev));
        free(o);
        free(n);
    }

    /* An empty column list: no listed column can change. */
    t.ncolumns = 0;
    hr_event_t ev = row_event("UPDATE", "{\"name\":\"a\"}", "{\"name\":\"b\"}");
    assert_false(hr_event_matches(&t, &ev));
    /* No column list: every update. */
    t.columns = NULL;
    ev = row_event("UPDATE", "{\"name\":\"a\"}", "{\"name\":\"a\"}");
    assert_true(hr_event_matches(&t, &ev));
}

/* ---- matching: events triggers ---- */

static void test_match_events(void **state)
{
    static char *types[] = {"order.placed", "invoice.*"};
    hr_trigger_def_t t = table_trigger("t", 0);
    t.schema = t.table = NULL;
    t.events = types;
    t.nevents = 2;
    static const struct {
        const char *type;
        int want;
    } cases[] = {
        {"order.placed", 1},  {"order.placed.v2", 0},
        {"order.place", 0},   {"Order.placed", 0},
        {"invoice.paid", 1},  {"invoice.", 1},
        {"invoice", 0},       {"invoices.paid", 0},
        {"invoice.a.b.c", 1}, {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_event_t ev = emit_event(cases[i].type, "{}");
        if (hr_event_matches(&t, &ev) != cases[i].want)
            fail_msg("case %zu: type '%s' should %smatch", i, cases[i].type,
                     cases[i].want ? "" : "not ");
    }
    hr_event_t ev = emit_event(NULL, "{}");
    assert_false(hr_event_matches(&t, &ev));

    /* An events trigger never matches row events, even with a table on the trigger. */
    t.schema = "public";
    t.table = "users";
    t.ops = ~0u;
    ev = row_event("INSERT", NULL, "{}");
    ev.type = "order.placed";
    assert_false(hr_event_matches(&t, &ev));
    ev.op = "MANUAL";
    assert_false(hr_event_matches(&t, &ev));

    /* "*" alone takes every emitted event. */
    static char *all[] = {"*"};
    t.events = all;
    t.nevents = 1;
    ev = emit_event("anything.at.all", "{}");
    assert_true(hr_event_matches(&t, &ev));
    ev = emit_event("", "{}");
    assert_true(hr_event_matches(&t, &ev));
    ev = row_event("INSERT", NULL, "{}");
    assert_false(hr_event_matches(&t, &ev));

    /* An empty list matches nothing. */
    t.nevents = 0;
    ev = emit_event("order.placed", "{}");
    assert_false(hr_event_matches(&t, &ev));
}

/* ---- payload goldens ---- */

static char *sel_name_id[] = {"name", "id", "missing"};
static char *sel_meta_tags[] = {"meta", "tags"};
static char *sel_nothing[] = {"nope"};
static char *sel_repeat[] = {"a", "a", "b"};
static char *sel_escaped[] = {"a\"b", "caf\xc3\xa9", "x\\y"};
static char *sel_big[] = {"id", "f", "neg", "s"};

typedef struct golden {
    const char *what;
    const char *op, *schema, *table, *type;
    const char *old_json, *new_json, *session_json; /* ' for " */
    char **payload;
    size_t npayload;
    int max_retries, current_retry;
    const char *want; /* ' for " */
} golden_t;

#define HEAD "{'id':'" ID "','created_at':'" TS "','trigger':{'name':'insert_user_trigger'},"
#define USERS "'table':{'schema':'public','name':'users'},"

static const golden_t goldens[] = {
    {"insert with session variables", "INSERT", "public", "users", NULL, NULL,
     "{'id':42,'name':'john doe'}", "{'x-hasura-role':'admin','x-hasura-user-id':'1'}", NULL, 0, 5,
     0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{'id':42,'name':'john doe'}},"
                "'session_variables':{'x-hasura-role':'admin','x-hasura-user-id':'1'},"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"update without session variables", "UPDATE", "public", "users", NULL,
     "{'id':42,'name':'john'}", "{'id':42,'name':'john doe'}", NULL, NULL, 0, 5, 2,
     HEAD USERS "'event':{'op':'UPDATE','data':{'old':{'id':42,'name':'john'},"
                "'new':{'id':42,'name':'john doe'}},'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':2}}"},
    {"delete", "DELETE", "public", "users", NULL, "{'id':42}", NULL, "{'x-hasura-role':'admin'}",
     NULL, 0, 0, 0,
     HEAD USERS "'event':{'op':'DELETE','data':{'old':{'id':42},'new':null},"
                "'session_variables':{'x-hasura-role':'admin'},'trace_context':null},"
                "'delivery_info':{'max_retries':0,'current_retry':0}}"},
    {"emit", "EMIT", NULL, NULL, "order.placed", NULL, "{'order_id':7,'total':12.5}",
     "{'x-hasura-role':'user'}", NULL, 0, 3, 1,
     HEAD "'table':null,'event':{'op':'EMIT','type':'order.placed','data':{'old':null,"
          "'new':{'order_id':7,'total':12.5}},'session_variables':{'x-hasura-role':'user'},"
          "'trace_context':null},'delivery_info':{'max_retries':3,'current_retry':1}}"},
    {"emit ignores old", "EMIT", NULL, NULL, "x", "{'stale':1}", "[1,'two',null]", NULL, NULL, 0, 3,
     3,
     HEAD "'table':null,'event':{'op':'EMIT','type':'x','data':{'old':null,"
          "'new':[1,'two',null]},'session_variables':null,"
          "'trace_context':null},'delivery_info':{'max_retries':3,'current_retry':3}}"},
    {"session that is not JSON goes out as a JSON string", "INSERT", "public", "users", NULL, NULL,
     "{'id':1}", "admin {x", NULL, 0, 5, 0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{'id':1}},"
                "'session_variables':'admin {x','trace_context':null},"
                "'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"session that is JSON stays that JSON, big integers exact", "INSERT", "public", "users", NULL,
     NULL, "{'id':1}", "12345678901234567890123", NULL, 0, 5, 0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{'id':1}},"
                "'session_variables':12345678901234567890123,'trace_context':null},"
                "'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"manual", "MANUAL", "public", "users", NULL, NULL, "{'any':['payload',1]}", NULL, NULL, 0, 5,
     0,
     HEAD USERS "'event':{'op':'MANUAL','data':{'old':null,'new':{'any':['payload',1]}},"
                "'session_variables':null,'trace_context':null},"
                "'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"update, payload columns", "UPDATE", "public", "users", NULL,
     "{'id':1,'name':'a','secret':'x'}", "{'id':1,'name':'b','secret':'y'}", NULL, sel_name_id, 3,
     5, 0,
     HEAD USERS "'event':{'op':'UPDATE','data':{'old':{'name':'a','id':1},"
                "'new':{'name':'b','id':1}},'session_variables':null,'trace_context':null},"
                "'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"insert, payload columns from jsonb text", "INSERT", "public", "users", NULL, NULL,
     "{'id': 1, 'pw': 'x', 'meta': {'k': 'v w', 'n': [1, 2]}, 'tags': ['a b', 'c']}",
     "{'x-hasura-role':'admin'}", sel_meta_tags, 2, 5, 0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{'meta':{'k':'v w','n':[1,2]},"
                "'tags':['a b','c']}},'session_variables':{'x-hasura-role':'admin'},"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"payload columns, none present", "DELETE", "public", "users", NULL, "{'id':1}", NULL, NULL,
     sel_nothing, 1, 5, 0,
     HEAD USERS "'event':{'op':'DELETE','data':{'old':{},'new':null},'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"payload columns, empty row", "INSERT", "public", "users", NULL, NULL, " { } ", NULL,
     sel_name_id, 3, 5, 0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{}},'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"payload columns, repeated keys", "INSERT", "public", "users", NULL, NULL,
     "{'a':1,'b':2,'a':3}", NULL, sel_repeat, 3, 5, 0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{'a':3,'b':2}},"
                "'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"payload columns, escaped keys", "INSERT", "public", "users", NULL, NULL,
     "{'a\\'b':1,'caf\\u00e9':2,'plain':3,'caf\\u00e9x':4,'x\\\\y':5,'x\\\\\\\\y':6}", NULL,
     sel_escaped, 3, 5, 0,
     HEAD USERS "'event':{'op':'INSERT','data':{'old':null,'new':{'a\\'b':1,'caf\\u00e9':2,"
                "'x\\\\y':5}},'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"payload columns on a non-object payload", "MANUAL", "public", "users", NULL, NULL,
     " [1, 2, {'a': 3}] ", NULL, sel_name_id, 3, 5, 0,
     HEAD USERS "'event':{'op':'MANUAL','data':{'old':null,'new':[1,2,{'a':3}]},"
                "'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
    {"payload columns keep numbers exact", "UPDATE", "public", "users", NULL,
     "{'id':123456789012345678901234567890,'f':1.50e+3,'neg':-0,'s':'\\u00e9\\n'}",
     "{'id':-1E-7,'f':0.10000000000000000000001,'neg':true,'s':false,'z':0}", NULL, sel_big, 4, 5,
     0,
     HEAD USERS "'event':{'op':'UPDATE','data':{'old':{'id':123456789012345678901234567890,"
                "'f':1.50e+3,'neg':-0,'s':'\\u00e9\\n'},'new':{'id':-1E-7,"
                "'f':0.10000000000000000000001,'neg':true,'s':false}},'session_variables':null,"
                "'trace_context':null},'delivery_info':{'max_retries':5,'current_retry':0}}"},
};

static void test_payload_goldens(void **state)
{
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        const golden_t *g = &goldens[i];
        hr_trigger_def_t t = table_trigger("insert_user_trigger", ~0u);
        t.payload = g->payload;
        t.npayload = g->npayload;
        t.retry.max_retries = g->max_retries;
        char *o = dq(g->old_json), *n = dq(g->new_json), *s = dq(g->session_json);
        char *want = dq(g->want);
        hr_event_t ev = row_event(g->op, o, n);
        ev.schema = g->schema;
        ev.table = g->table;
        ev.type = g->type;
        ev.session_json = s;

        hr_buf_t out = HR_BUF_INIT;
        int rc = hr_payload_build(&t, &ev, g->current_retry, &out);
        if (rc) fail_msg("%s: rc %d", g->what, rc);
        if (strcmp(out.data, want))
            fail_msg("%s: body differs\n got: %s\nwant: %s", g->what, out.data, want);
        json_t *w = parse(want);
        check_json(g->what, out.data, w);
        json_decref(w);

        hr_buf_free(&out);
        free(o);
        free(n);
        free(s);
        free(want);
    }
}

/* Without payload columns the event's JSON is spliced exactly as the database printed it. */
static void test_payload_hot_path_verbatim(void **state)
{
    hr_trigger_def_t t = table_trigger("t", HR_OP_INSERT);
    const char *row = "{\"n\": 123456789012345678901234567890, \"x\": 1.50}";
    hr_event_t ev = row_event("INSERT", NULL, row);
    ev.session_json = "{\"x-hasura-role\": \"admin\"}";
    hr_buf_t out = HR_BUF_INIT;
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), 0);
    assert_non_null(strstr(out.data, "\"new\":{\"n\": 123456789012345678901234567890, "
                                     "\"x\": 1.50}},\"session_variables\":{\"x-hasura-role\": "
                                     "\"admin\"},"));
    hr_buf_free(&out);
}

/* Odd names: quotes, backslashes, control characters, non-ASCII. The expected body is built
 * with jansson from the raw strings. */
static void test_payload_escaping(void **state)
{
    static const struct {
        const char *name, *schema, *table, *id, *op, *type;
    } cases[] = {
        {"we\"ird\\name", "sch\xc3\xa9ma \xf0\x9f\x98\x80", "t\x01\b\f\n\r\t/\x7f \x1f", "id-\"1\"",
         "INSERT", NULL},
        {"\\\\\"\"", "\"", "\\", "\xe2\x80\xa8\xe2\x80\xa9", "UPDATE", NULL},
        {"n", NULL, NULL, "</script>", "EMIT", "we\"ird.type\\\x02"},
        {"", "", "", "", "DELETE", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hr_trigger_def_t t = table_trigger(cases[i].name, ~0u);
        hr_event_t ev = row_event(cases[i].op, "{\"k\":\"v\"}", "{\"k\":\"\\u0001\"}");
        ev.id = cases[i].id;
        ev.schema = cases[i].schema;
        ev.table = cases[i].table;
        ev.type = cases[i].type;
        int emitted = !strcmp(cases[i].op, "EMIT");

        json_t *data =
            json_pack("{s:o,s:{s:s}}", "old", emitted ? json_null() : json_pack("{s:s}", "k", "v"),
                      "new", "k", "\x01");
        json_t *event = json_pack("{s:s,s:o,s:n,s:n}", "op", cases[i].op, "data", data,
                                  "session_variables", "trace_context");
        if (emitted) json_object_set_new(event, "type", json_string(cases[i].type));
        json_t *table =
            emitted ? json_null()
                    : json_pack("{s:s,s:s}", "schema", cases[i].schema, "name", cases[i].table);
        json_t *want =
            json_pack("{s:s,s:s,s:{s:s},s:o,s:o,s:{s:i,s:i}}", "id", cases[i].id, "created_at", TS,
                      "trigger", "name", cases[i].name, "table", table, "event", event,
                      "delivery_info", "max_retries", 5, "current_retry", 4);
        assert_non_null(want);

        hr_buf_t out = HR_BUF_INIT;
        assert_int_equal(hr_payload_build(&t, &ev, 4, &out), 0);
        check_json("escaping", out.data, want);
        for (const unsigned char *p = (const unsigned char *)out.data; *p; p++)
            assert_true(*p >= 0x20);
        json_decref(want);
        hr_buf_free(&out);
    }
}

static void test_payload_null_members(void **state)
{
    hr_trigger_def_t t = table_trigger(NULL, ~0u);
    t.retry.max_retries = 0;
    hr_event_t ev = row_event("INSERT", NULL, NULL);
    ev.id = ev.created_at = NULL;
    ev.schema = ev.table = NULL;
    hr_buf_t out = HR_BUF_INIT;
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), 0);
    char *want = dq("{'id':null,'created_at':null,'trigger':{'name':null},'table':null,"
                    "'event':{'op':'INSERT','data':{'old':null,'new':null},"
                    "'session_variables':null,'trace_context':null},"
                    "'delivery_info':{'max_retries':0,'current_retry':0}}");
    assert_string_equal(out.data, want);
    free(want);
    hr_buf_free(&out);
}

/* The body is appended after whatever the buffer holds. */
static void test_payload_appends(void **state)
{
    hr_trigger_def_t t = table_trigger("t", ~0u);
    hr_event_t ev = row_event("INSERT", NULL, "{}");
    hr_buf_t out = HR_BUF_INIT;
    hr_buf_puts(&out, "prefix:");
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), 0);
    assert_memory_equal(out.data, "prefix:{\"id\":", 13);
    json_t *j = parse(out.data + 7);
    json_decref(j);
    hr_buf_free(&out);
}

static void test_payload_errors(void **state)
{
    static char *sel[] = {"a"};
    hr_trigger_def_t t = table_trigger("t", ~0u);
    t.payload = sel;
    t.npayload = 1;
    hr_buf_t out = HR_BUF_INIT;

    /* Invalid JSON with payload columns: HR_EINVAL and the buffer as it was. */
    hr_buf_puts(&out, "prefix");
    hr_event_t ev = row_event("UPDATE", "{\"a\":1}", "{\"a\":1,}");
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), HR_EINVAL);
    assert_int_equal(out.len, 6);
    assert_string_equal(out.data, "prefix");
    ev = row_event("UPDATE", "{\"a\":", "{\"a\":1}");
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), HR_EINVAL);
    assert_string_equal(out.data, "prefix");
    hr_buf_free(&out);

    /* A size cap: HR_E2BIG, nothing appended. */
    hr_buf_init(&out, 64);
    ev = row_event("INSERT", NULL, "{\"a\":1}");
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), HR_E2BIG);
    assert_int_equal(out.len, 0);
    t.payload = NULL;
    assert_int_equal(hr_payload_build(&t, &ev, 0, &out), HR_E2BIG);
    assert_int_equal(out.len, 0);
    hr_buf_free(&out);

    assert_int_equal(hr_payload_build(NULL, &ev, 0, &out), HR_EINVAL);
    assert_int_equal(hr_payload_build(&t, NULL, 0, &out), HR_EINVAL);
    assert_int_equal(hr_payload_build(&t, &ev, 0, NULL), HR_EINVAL);
}

/* The scanner behind payload columns accepts exactly what jansson accepts (for valid UTF-8). */
static void test_payload_validation_matches_jansson(void **state)
{
    static const char *const texts[] = {
        "{}",
        "{'a':1}",
        " {'a' : 1 , 'b' : [ ] } ",
        "{'a':{}}",
        "{'a':[{},[],'',0]}",
        "{'a':-0.0e-0}",
        "{'a':1E+2}",
        "{'a':'\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\\\\''}",
        "{'a':true,'b':false,'c':null}",
        "[]",
        "1",
        "'s'",
        "null",
        "-5",
        "{'':1}",
        /* invalid */
        "",
        " ",
        "{",
        "}",
        "{'a'}",
        "{'a':}",
        "{'a':1,}",
        "{,}",
        "{'a' 1}",
        "{'a':1 'b':2}",
        "{a:1}",
        "{'a':01}",
        "{'a':1.}",
        "{'a':.5}",
        "{'a':-}",
        "{'a':+1}",
        "{'a':1e}",
        "{'a':0x10}",
        "{'a':tru}",
        "{'a':truee}",
        "{'a':nul}",
        "{'a':'x\\q'}",
        "{'a':'\\u12'}",
        "{'a':'\\u12g4'}",
        "{'a':'tab\there'}",
        "{'a':'nl\nhere'}",
        "{'a':1} x",
        "{'a':1}{}",
        "{'a':[1,2}",
        "{'a':[1,2,]}",
        "{'a':[,1]}",
        "{'a':'unterminated}",
        "{1:2}",
        "{'a':NaN}",
        "{'a':Infinity}",
        "'",
        "[1] [2]",
    };
    static char *sel[] = {"a"};
    hr_trigger_def_t t = table_trigger("t", ~0u);
    t.payload = sel;
    t.npayload = 1;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *text = dq(texts[i]);
        json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        hr_event_t ev = row_event("INSERT", NULL, text);
        hr_buf_t out = HR_BUF_INIT;
        int rc = hr_payload_build(&t, &ev, 0, &out);
        if ((j != NULL) != (rc == 0))
            fail_msg("case %zu [%s]: jansson %s, payload rc %d", i, text, j ? "accepts" : "rejects",
                     rc);
        if (!rc) json_decref(parse(out.data));
        json_decref(j);
        hr_buf_free(&out);
        free(text);
    }
}

static void test_payload_deep_nesting(void **state)
{
    static char *sel[] = {"a"};
    hr_trigger_def_t t = table_trigger("t", ~0u);
    t.payload = sel;
    t.npayload = 1;
    for (int depth = 100; depth <= 100000; depth *= 1000) {
        size_t len = 6 + 2 * (size_t)depth + 2;
        char *text = malloc(len);
        assert_non_null(text);
        char *p = text;
        memcpy(p, "{\"a\":", 5);
        p += 5;
        memset(p, '[', (size_t)depth);
        p += depth;
        memset(p, ']', (size_t)depth);
        p += depth;
        *p++ = '}';
        *p = '\0';
        hr_event_t ev = row_event("INSERT", NULL, text);
        hr_buf_t out = HR_BUF_INIT;
        int rc = hr_payload_build(&t, &ev, 0, &out);
        /* 100 levels are fine; 100000 are refused rather than overflowing the stack. */
        assert_int_equal(rc, depth == 100 ? 0 : HR_EINVAL);
        hr_buf_free(&out);
        free(text);
    }
}

/* Scheduled events: Hasura's scheduled-event body, built from the fire's new. */
static void test_payload_scheduled(void **state)
{
    (void)state;
    static const struct {
        const char *op, *new_json, *body;
    } cases[] = {
        {"CRON",
         "{'scheduled_time': '2026-11-23T12:00:00Z', 'payload': {'k': [1, 2]}, "
         "'comment': 'c'}",
         "{'id':'" ID "','name':'nightly','scheduled_time':'2026-11-23T12:00:00Z',"
         "'payload':{'k':[1,2]},'comment':'c'}"},
        {"CRON", "{'scheduled_time': '2026-11-23T12:00:00Z'}",
         "{'id':'" ID "','name':'nightly','scheduled_time':'2026-11-23T12:00:00Z',"
         "'payload':null,'comment':null}"},
        {"ONE_OFF",
         "{'scheduled_time': '2026-11-23T12:00:00Z', 'payload': 'x', 'comment': null, "
         "'created_at': '" TS "', 'webhook': 'http://h/'}",
         "{'id':'" ID "','scheduled_time':'2026-11-23T12:00:00Z','payload':'x','comment':null,"
         "'created_at':'" TS "'}"},
    };
    hr_trigger_def_t t = {.name = "nightly", .cron = "* * * * *"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *nj = dq(cases[i].new_json), *want = dq(cases[i].body);
        hr_event_t ev = {.seq = 1, .id = ID, .created_at = TS, .op = cases[i].op, .new_json = nj};
        hr_buf_t out = HR_BUF_INIT;
        assert_int_equal(hr_payload_build_scheduled(&t, &ev, &out), 0);
        assert_string_equal(out.data, want);
        int64_t at = 0;
        assert_int_equal(hr_payload_scheduled_time(&ev, &at), 0);
        assert_int_equal(at, 1795435200);
        hr_buf_free(&out);
        free(nj);
        free(want);
    }
    /* Not an object, or no usable scheduled_time. */
    hr_event_t bad = {.id = ID, .op = "CRON", .new_json = "[1]"};
    hr_buf_t out = HR_BUF_INIT;
    int64_t at;
    assert_int_equal(hr_payload_build_scheduled(&t, &bad, &out), HR_EINVAL);
    assert_int_equal(out.len, 0);
    bad.new_json = "{\"scheduled_time\": \"2026-11-23 12:00\"}";
    assert_int_equal(hr_payload_scheduled_time(&bad, &at), HR_EINVAL);
    /* A schedule matches its fires only, and no other trigger matches them. */
    hr_event_t fire = {.id = ID, .op = "CRON", .new_json = "{}"};
    assert_true(hr_event_matches(&t, &fire));
    hr_trigger_def_t table = {.name = "t", .schema = "public", .table = "nightly", .ops = 15};
    assert_false(hr_event_matches(&table, &fire));
    hr_event_t row = {.id = ID, .op = "INSERT", .schema = "public", .table = "nightly"};
    assert_false(hr_event_matches(&t, &row));
    hr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_match_update_columns),
        cmocka_unit_test(test_match_events),
        cmocka_unit_test(test_payload_goldens),
        cmocka_unit_test(test_payload_hot_path_verbatim),
        cmocka_unit_test(test_payload_escaping),
        cmocka_unit_test(test_payload_null_members),
        cmocka_unit_test(test_payload_appends),
        cmocka_unit_test(test_payload_errors),
        cmocka_unit_test(test_payload_validation_matches_jansson),
        cmocka_unit_test(test_payload_deep_nesting),
        cmocka_unit_test(test_payload_scheduled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
