/* test_config.c: herald.yaml parsing, validation messages, durations, canonical JSON, the
 * environment overrides and docs/config.md.
 *
 * Most cases are tables: a YAML text and what it must parse to, or the exact message it must
 * fail with. The working directory is tests/unit, so repository files are reached via ../../.
 * HERALD_UPDATE_DOCS=1 rewrites the generated part of docs/config.md instead of comparing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

#define DOCS_PATH "../../docs/config.md"
#define EXAMPLE_PATH "../../examples/herald.yaml"

/* The example of the config format, in full. */
static const char full_yaml[] =
    "database: postgres://app@127.0.0.1:5432/app\n"
    "listen: 0.0.0.0:9090\n"
    "log_level: debug\n"
    "shutdown_grace: 1.5\n"
    "capture: plpgsql\n"
    "triggers:\n"
    "  - name: order_events\n"
    "    table: public.orders\n"
    "    operations: [insert, UPDATE, delete]\n"
    "    columns: [status, total]\n"
    "    payload: [id, status, total]\n"
    "    webhook: http://127.0.0.1:3000/orders\n"
    "    headers: { X-Api-Key: \"{{ORDERS_KEY}}\", X-Team: billing }\n"
    "    retry: { max_retries: 7, interval: 250ms, backoff: fixed, max_interval: 1h, timeout: 3 }\n"
    "    secret: \"{{ORDERS_SECRET}}\"\n"
    "    start: beginning\n"
    "    concurrency: 8\n"
    "  - name: invoices\n"
    "    events: [order.placed, \"invoice.*\"]\n"
    "    webhook: https://example.com/invoices\n";

static hr_config_t *parse_ok(const char *yaml)
{
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};
    int rc = hr_config_parse(yaml, strlen(yaml), "herald.yaml", &cfg, &err);
    if (rc != 0) fail_msg("unexpected failure (%d):\n%s\nfor:\n%s", rc, err.msg, yaml);
    assert_non_null(cfg);
    return cfg;
}

static void test_full_example(void **state)
{
    (void)state;
    hr_config_t *cfg = parse_ok(full_yaml);
    assert_string_equal(cfg->path, "herald.yaml");
    assert_string_equal(cfg->database, "postgres://app@127.0.0.1:5432/app");
    assert_string_equal(cfg->listen, "0.0.0.0:9090");
    assert_int_equal(cfg->log_level, HR_LOG_DEBUG);
    assert_int_equal(cfg->capture, HR_CAPTURE_PLPGSQL);
    assert_int_equal(cfg->shutdown_grace_ms, 1500);
    assert_int_equal(cfg->ntriggers, 2);

    const hr_trigger_def_t *t = &cfg->triggers[0];
    assert_string_equal(t->name, "order_events");
    assert_string_equal(t->schema, "public");
    assert_string_equal(t->table, "orders");
    assert_int_equal(t->ops, HR_OP_INSERT | HR_OP_UPDATE | HR_OP_DELETE);
    assert_int_equal(t->ncolumns, 2);
    assert_string_equal(t->columns[0], "status");
    assert_string_equal(t->columns[1], "total");
    assert_int_equal(t->npayload, 3);
    assert_string_equal(t->payload[2], "total");
    assert_null(t->events);
    assert_string_equal(t->webhook, "http://127.0.0.1:3000/orders");
    assert_int_equal(t->nheaders, 2);
    assert_string_equal(t->headers[0].name, "X-Api-Key");
    assert_string_equal(t->headers[0].value, "{{ORDERS_KEY}}"); /* not expanded */
    assert_string_equal(t->headers[1].name, "X-Team");
    assert_string_equal(t->headers[1].value, "billing");
    assert_int_equal(t->retry.max_retries, 7);
    assert_int_equal(t->retry.interval_ms, 250);
    assert_int_equal(t->retry.backoff, HR_BACKOFF_FIXED);
    assert_int_equal(t->retry.max_interval_ms, 3600000);
    assert_int_equal(t->retry.timeout_ms, 3000);
    assert_string_equal(t->secret, "{{ORDERS_SECRET}}");
    assert_int_equal(t->start_beginning, 1);
    assert_int_equal(t->concurrency, 8);

    t = &cfg->triggers[1];
    assert_string_equal(t->name, "invoices");
    assert_null(t->schema);
    assert_null(t->table);
    assert_int_equal(t->ops, 0);
    assert_int_equal(t->nevents, 2);
    assert_string_equal(t->events[0], "order.placed");
    assert_string_equal(t->events[1], "invoice.*");
    assert_string_equal(t->webhook, "https://example.com/invoices");
    hr_config_free(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    hr_config_t *cfg = parse_ok("triggers:\n"
                                "  - name: all\n"
                                "    events: ['*']\n"
                                "    webhook: '{{HOOK_URL}}'\n"
                                "    retry: {max_retries: 0}\n"
                                "    secret: ~\n");
    assert_null(cfg->database);
    assert_string_equal(cfg->listen, "127.0.0.1:8080");
    assert_null(cfg->admin_secret);
    assert_int_equal(cfg->log_level, HR_LOG_INFO);
    assert_int_equal(cfg->capture, HR_CAPTURE_AUTO);
    assert_int_equal(cfg->shutdown_grace_ms, 10000);
    assert_int_equal(cfg->ntriggers, 1);
    const hr_trigger_def_t *t = &cfg->triggers[0];
    assert_string_equal(t->webhook, "{{HOOK_URL}}");
    assert_int_equal(t->retry.max_retries, 0);
    assert_int_equal(t->retry.interval_ms, 2000);
    assert_int_equal(t->retry.backoff, HR_BACKOFF_EXPONENTIAL);
    assert_int_equal(t->retry.max_interval_ms, 600000);
    assert_int_equal(t->retry.timeout_ms, 30000);
    assert_null(t->secret);
    assert_int_equal(t->start_beginning, 0);
    assert_int_equal(t->concurrency, 64);
    assert_null(t->columns);
    assert_null(t->payload);
    assert_null(t->headers);
    assert_int_equal(t->nheaders, 0);
    hr_config_free(cfg);

    /* hr_trigger_def_defaults fills the same values. */
    hr_trigger_def_t d;
    memset(&d, 0xab, sizeof d);
    hr_trigger_def_defaults(&d);
    assert_null(d.name);
    assert_null(d.webhook);
    assert_int_equal(d.retry.max_retries, 5);
    assert_int_equal(d.retry.interval_ms, 2000);
    assert_int_equal(d.retry.max_interval_ms, 600000);
    assert_int_equal(d.retry.timeout_ms, 30000);
    assert_int_equal(d.concurrency, 64);
    assert_int_equal(d.start_beginning, 0);
    hr_trigger_def_clear(&d);
    hr_trigger_def_clear(NULL);
    hr_config_free(NULL);
}

static void test_empty_configs(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",
        "\n",
        "# nothing here\n",
        "triggers:\n",
        "triggers: []\n",
        "---\n",
        "~\n",
        "database: sqlite:/var/lib/herald.db\ntriggers: ~\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        hr_config_t *cfg = parse_ok(texts[i]);
        assert_int_equal(cfg->ntriggers, 0);
        assert_string_equal(cfg->listen, "127.0.0.1:8080");
        hr_config_free(cfg);
    }
}

static void test_table_names(void **state)
{
    (void)state;
    static const struct {
        const char *yaml_value, *schema, *table;
    } cases[] = {
        {"orders", "public", "orders"},
        {"public.orders", "public", "orders"},
        {"shop.order_items", "shop", "order_items"},
        {"Shop.Orders", "shop", "orders"}, /* unquoted names fold, as in PostgreSQL */
        {"'\"My Schema\".\"My Table\"'", "My Schema", "My Table"},
        {"'\"a.b\".c'", "a.b", "c"},
        {"'\"Orders\"'", "public", "Orders"},
        {"'\"say \"\"hi\"\"\".t$1'", "say \"hi\"", "t$1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = hr_xasprintf("triggers:\n"
                                  "  - name: t\n"
                                  "    table: %s\n"
                                  "    operations: [insert]\n"
                                  "    webhook: http://h/\n",
                                  cases[i].yaml_value);
        hr_config_t *cfg = parse_ok(yaml);
        assert_string_equal(cfg->triggers[0].schema, cases[i].schema);
        assert_string_equal(cfg->triggers[0].table, cases[i].table);
        hr_config_free(cfg);
        free(yaml);
    }
}

/* Trigger prefixes for the error cases. */
#define T0 "triggers:\n  - name: a\n"
#define EV "    events: [x]\n"
#define WH "    webhook: http://h/\n"

static const struct {
    const char *yaml;
    const char *msg; /* the whole of err.msg */
} error_cases[] = {
    /* Unknown keys, at each level. */
    {"colour: red\n",
     "herald.yaml:1: colour: unknown key (expected one of: database, listen, admin_secret, "
     "log_level, shutdown_grace, capture, triggers, schedules)"},
    {T0 EV WH "    colour: red\n",
     "herald.yaml:5: triggers[0].colour: unknown key (expected one of: name, table, operations, "
     "columns, payload, events, webhook, headers, retry, secret, start, concurrency)"},
    {T0 EV WH "    retry:\n      intervl: 2s\n",
     "herald.yaml:6: triggers[0].retry.intervl: unknown key (expected one of: max_retries, "
     "interval, backoff, max_interval, timeout)"},
    /* Durations. */
    {T0 EV WH "    retry:\n      interval: 2x\n",
     "herald.yaml:6: triggers[0].retry.interval: invalid duration \"2x\" (use 250ms, 2s, 10m, 1h "
     "or seconds)"},
    {T0 EV WH "    retry: {interval: 0}\n",
     "herald.yaml:5: triggers[0].retry.interval: must be greater than 0"},
    {T0 EV WH "    retry: {timeout: 2h}\n",
     "herald.yaml:5: triggers[0].retry.timeout: 2h is out of range (1ms to 1h)"},
    {T0 EV WH "    retry:\n      interval: 5s\n      max_interval: 1s\n",
     "herald.yaml:7: triggers[0].retry.max_interval: 1s is less than interval (5s)"},
    {T0 EV WH "    retry:\n      interval: 1h\n",
     "herald.yaml:6: triggers[0].retry.interval: 1h is greater than max_interval (10m)"},
    {"shutdown_grace: -1s\n",
     "herald.yaml:1: shutdown_grace: invalid duration \"-1s\" (use 250ms, 2s, 10m, 1h or "
     "seconds)"},
    {T0 EV WH "    retry: {max_retries: 1001}\n",
     "herald.yaml:5: triggers[0].retry.max_retries: 1001 is out of range (0 to 1000)"},
    /* Names. */
    {T0 EV WH "  - name: b\n" EV WH "  - name: a\n" EV WH,
     "herald.yaml:8: triggers[2].name: duplicate trigger name \"a\" (first defined at line 2)"},
    {"triggers:\n  - name: a-b\n" EV WH,
     "herald.yaml:2: triggers[0].name: invalid name \"a-b\" (use 1 to 64 letters, digits or "
     "underscores)"},
    {"triggers:\n  - name: "
     "a1234567890123456789012345678901234567890123456789012345678901234\n" EV WH,
     "herald.yaml:2: triggers[0].name: invalid name "
     "\"a1234567890123456789012345678901234567890123456789012345678901234\" (use 1 to 64 "
     "letters, digits or underscores)"},
    {"triggers:\n  - events: [x]\n" WH, "herald.yaml:2: triggers[0].name: required key is missing"},
    /* The webhook. */
    {T0 EV, "herald.yaml:2: triggers[0].webhook: required key is missing"},
    {T0 EV "    webhook: ftp://h/\n",
     "herald.yaml:4: triggers[0].webhook: invalid webhook URL \"ftp://h/\" (must start with "
     "http:// or https://)"},
    /* Table or events. */
    {T0 "    table: t\n    operations: [insert]\n" EV WH,
     "herald.yaml:5: triggers[0].events: cannot be combined with table (a trigger has either "
     "table or events)"},
    {T0 WH, "herald.yaml:2: triggers[0]: needs either table (with operations) or events"},
    {T0 "    table: t\n" WH,
     "herald.yaml:2: triggers[0].operations: required with table (a list of insert, update, "
     "delete, manual)"},
    {T0 "    table: t\n    operations: []\n" WH,
     "herald.yaml:4: triggers[0].operations: must not be empty"},
    {T0 "    table: t\n    operations:\n      - insert\n      - upsert\n" WH,
     "herald.yaml:6: triggers[0].operations[1]: invalid value \"upsert\" (expected one of: "
     "insert, update, delete, manual)"},
    {T0 EV "    operations: [insert]\n" WH,
     "herald.yaml:4: triggers[0].operations: only allowed with table"},
    {T0 EV "    columns: [a]\n" WH, "herald.yaml:4: triggers[0].columns: only allowed with table"},
    {T0 "    table: t\n    operations: [update]\n    columns: []\n" WH,
     "herald.yaml:5: triggers[0].columns: must not be empty (leave the key out instead)"},
    {T0 "    table: t\n    operations: [update]\n    payload: [id, id]\n" WH,
     "herald.yaml:5: triggers[0].payload[1]: duplicate \"id\""},
    {T0 "    table: a.b.c\n    operations: [insert]\n" WH,
     "herald.yaml:3: triggers[0].table: invalid table \"a.b.c\": too many dots (use table or "
     "schema.table)"},
    {T0 "    table: '\"open.t'\n    operations: [insert]\n" WH,
     "herald.yaml:3: triggers[0].table: invalid table \"\"open.t\": unterminated quoted name"},
    {T0 "    table: my-table\n    operations: [insert]\n" WH,
     "herald.yaml:3: triggers[0].table: invalid table \"my-table\": unquoted names may hold only "
     "letters, digits, '_' and '$' (quote other names with double quotes)"},
    {T0 "    events: ['a*b']\n" WH,
     "herald.yaml:3: triggers[0].events[0]: invalid event type \"a*b\" (use letters, digits, "
     "'.', '_', '-' or ':', with an optional trailing '*')"},
    /* Enumerations and numbers. */
    {T0 EV WH "    retry: {backoff: linear}\n",
     "herald.yaml:5: triggers[0].retry.backoff: invalid value \"linear\" (expected one of: "
     "exponential, fixed)"},
    {T0 EV WH "    start: later\n",
     "herald.yaml:5: triggers[0].start: invalid value \"later\" (expected one of: now, "
     "beginning)"},
    {T0 EV WH "    concurrency: 0\n",
     "herald.yaml:5: triggers[0].concurrency: 0 is out of range (1 to 1024)"},
    {T0 EV WH "    concurrency: 2000\n",
     "herald.yaml:5: triggers[0].concurrency: 2000 is out of range (1 to 1024)"},
    {T0 EV WH "    concurrency: lots\n",
     "herald.yaml:5: triggers[0].concurrency: invalid value \"lots\" (expected an integer from 1 "
     "to 1024)"},
    {"capture: fast\n",
     "herald.yaml:1: capture: invalid value \"fast\" (expected one of: auto, native, plpgsql)"},
    {"log_level: loud\n",
     "herald.yaml:1: log_level: invalid value \"loud\" (expected one of: debug, info, warn, "
     "error)"},
    {"listen: localhost\n",
     "herald.yaml:1: listen: invalid listen address \"localhost\" (expected host:port, e.g. "
     "127.0.0.1:8080, or off)"},
    {"listen: 127.0.0.1:65536\n",
     "herald.yaml:1: listen: invalid listen address \"127.0.0.1:65536\" (expected host:port, "
     "e.g. 127.0.0.1:8080, or off)"},
    {"admin_secret: \" hunter2\"\n",
     "herald.yaml:1: admin_secret: invalid admin secret (must be non-empty, without control "
     "characters or leading and trailing spaces)"},
    {"admin_secret: \"\"\n",
     "herald.yaml:1: admin_secret: invalid admin secret (must be non-empty, without control "
     "characters or leading and trailing spaces)"},
    {"database: mysql://root:hunter2@db/app\n",
     "herald.yaml:1: database: invalid database URL (expected postgres://..., postgresql://... "
     "or sqlite:PATH)"},
    /* Secrets: a literal must be whsec_ + base64; the value is never repeated. */
    {T0 EV WH "    secret: whsec_not*base64\n",
     "herald.yaml:5: triggers[0].secret: invalid secret (expected whsec_ followed by base64, or "
     "a {{VAR}} reference)"},
    {T0 EV WH "    secret: MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
     "herald.yaml:5: triggers[0].secret: invalid secret (expected whsec_ followed by base64, or "
     "a {{VAR}} reference)"},
    /* Headers. */
    {T0 EV WH "    headers:\n      X Key: v\n",
     "herald.yaml:6: triggers[0].headers.X Key: invalid header name \"X Key\" (must be an HTTP "
     "token)"},
    {T0 EV WH "    headers:\n      X-Key: [v]\n",
     "herald.yaml:6: triggers[0].headers.X-Key: expected a string, got a list"},
    {T0 EV WH "    headers:\n      X-Key: a\n      x-key: b\n",
     "herald.yaml:7: triggers[0].headers.x-key: duplicate header (names are case-insensitive)"},
    /* Wrong types. */
    {T0 EV "    webhook: [http://h/]\n",
     "herald.yaml:4: triggers[0].webhook: expected a string, got a list"},
    {T0 "    table: t\n    operations: insert\n" WH,
     "herald.yaml:4: triggers[0].operations: expected a list, got \"insert\""},
    {T0 EV WH "    retry: 5\n", "herald.yaml:5: triggers[0].retry: expected a mapping, got \"5\""},
    {T0 EV WH "    concurrency: {n: 1}\n",
     "herald.yaml:5: triggers[0].concurrency: expected an integer, got a mapping"},
    {"triggers:\n  name: a\n", "herald.yaml:1: triggers: expected a list of triggers, got a "
                               "mapping"},
    {"triggers:\n  - just a string\n",
     "herald.yaml:2: triggers[0]: expected a mapping (one trigger), got \"just a string\""},
    {"- database\n", "herald.yaml:1: expected a mapping of keys at the top level, got a list"},
    {T0 "    events: [x, [y]]\n" WH,
     "herald.yaml:3: triggers[0].events[1]: expected a string, got a list"},
    /* Schedules. */
    {"schedules:\n  - name: s\n    cron: \"61 * * * *\"\n    webhook: http://h/\n",
     "herald.yaml:3: schedules[0].cron: cron \"61 * * * *\": minute: 61 is out of range 0-59"},
    {"schedules:\n  - name: s\n    cron: \"0 0 30 2 *\"\n    webhook: http://h/\n",
     "herald.yaml:3: schedules[0].cron: cron \"0 0 30 2 *\" never fires (no month has the day "
     "it names)"},
    {"schedules:\n  - name: s\n    webhook: http://h/\n",
     "herald.yaml:2: schedules[0].cron: required key is missing"},
    {"schedules:\n  - name: s\n    cron: \"@daily\"\n    webhook: http://h/\n    table: t\n",
     "herald.yaml:5: schedules[0].table: unknown key (expected one of: name, cron, webhook, "
     "payload, headers, retry, secret, tolerance, comment)"},
    {"schedules:\n  - name: s\n    cron: \"@daily\"\n    webhook: http://h/\n    tolerance: 0\n",
     "herald.yaml:5: schedules[0].tolerance: must be greater than 0"},
    {T0 EV WH "schedules:\n  - name: a\n    cron: \"@daily\"\n    webhook: http://h/\n",
     "herald.yaml:5: schedules[0].name: \"a\" is also the name of a trigger (triggers[0])"},
    {"schedules:\n  - name: s\n    cron: \"@daily\"\n    webhook: http://h/\n"
     "  - name: s\n    cron: \"@daily\"\n    webhook: http://h/\n",
     "herald.yaml:5: schedules[1].name: duplicate schedule name \"s\" (first defined at line 2)"},
    /* YAML itself. */
    {"database: sqlite:x\ntriggers:\n  - name: \"a\n",
     "herald.yaml:3: YAML syntax error: double-quoted scalar without closing quote"},
    {"listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
     "herald.yaml:2: YAML syntax error: duplicate key"},
    {"listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
     "herald.yaml:3: a second YAML document (\"---\"); the file must hold one"},
    {"database: *nowhere\n", "herald.yaml:1: YAML syntax error: invalid alias"},
    {"listen: \"\xff\"\n",
     "herald.yaml:1: YAML syntax error: double-quoted scalar is malformed UTF8"},
};

static void test_errors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        hr_config_t *cfg = (hr_config_t *)1;
        hr_err_t err = {0};
        const char *yaml = error_cases[i].yaml;
        int rc = hr_config_parse(yaml, strlen(yaml), "herald.yaml", &cfg, &err);
        if (rc != HR_ECONFIG || cfg != NULL || err.code != HR_ECONFIG ||
            strcmp(err.msg, error_cases[i].msg) != 0) {
            print_error("case %zu:\n%s\nexpected: %s\n     got: %s (rc %d)\n", i, yaml,
                        error_cases[i].msg, err.msg, rc);
            failures++;
        }
        hr_config_free(rc == 0 ? cfg : NULL);
    }
    assert_int_equal(failures, 0);
}

/* A NUL byte would end libfyaml's input early; the file is refused instead. */
static void test_nul_byte(void **state)
{
    (void)state;
    static const char text[] = "listen: 127.0.0.1:1\ntriggers: []\n\0garbage: [\n";
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};
    assert_int_equal(hr_config_parse(text, sizeof text - 1, "herald.yaml", &cfg, &err), HR_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.msg, "herald.yaml:3: a NUL byte; this is not a text file");
}

/* Every problem is reported, one line each, in line order. */
static void test_all_errors_collected(void **state)
{
    (void)state;
    const char *yaml = "listen: nowhere\n"
                       "triggers:\n"
                       "  - name: a\n"
                       "    table: t\n"
                       "    operations: [insert, upsert]\n"
                       "    webhook: ftp://h/\n"
                       "    retry: {interval: soon, backoff: linear}\n"
                       "  - name: a\n"
                       "    events: [x]\n"
                       "    webhook: http://h/\n"
                       "log_level: chatty\n";
    const char *expected =
        "herald.yaml:1: listen: invalid listen address \"nowhere\" (expected host:port, e.g. "
        "127.0.0.1:8080, or off)\n"
        "herald.yaml:5: triggers[0].operations[1]: invalid value \"upsert\" (expected one of: "
        "insert, update, delete, manual)\n"
        "herald.yaml:6: triggers[0].webhook: invalid webhook URL \"ftp://h/\" (must start with "
        "http:// or https://)\n"
        "herald.yaml:7: triggers[0].retry.interval: invalid duration \"soon\" (use 250ms, 2s, 10m, "
        "1h or seconds)\n"
        "herald.yaml:7: triggers[0].retry.backoff: invalid value \"linear\" (expected one of: "
        "exponential, fixed)\n"
        "herald.yaml:8: triggers[1].name: duplicate trigger name \"a\" (first defined at line 3)\n"
        "herald.yaml:11: log_level: invalid value \"chatty\" (expected one of: debug, info, warn, "
        "error)";
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};
    assert_int_equal(hr_config_parse(yaml, strlen(yaml), "herald.yaml", &cfg, &err), HR_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.msg, expected);
}

static void test_duration_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
        uint64_t ms;
    } cases[] = {
        {"250ms", 1, 250},
        {"2s", 1, 2000},
        {"10m", 1, 600000},
        {"1h", 1, 3600000},
        {"3", 1, 3000},
        {"1.5", 1, 1500},
        {"0.25s", 1, 250},
        {"1.5m", 1, 90000},
        {"0", 1, 0},
        {"0.0005", 1, 1}, /* rounded to the nearest millisecond */
        {"1.0004", 1, 1000},
        {"90000ms", 1, 90000},
        {"", 0, 0},
        {"s", 0, 0},
        {"2x", 0, 0},
        {"-1s", 0, 0},
        {"+1s", 0, 0},
        {" 1s", 0, 0},
        {"1s ", 0, 0},
        {"1 s", 0, 0},
        {".5", 0, 0},
        {"5.", 0, 0},
        {"1.2.3", 0, 0},
        {"1d", 0, 0},
        {"1sec", 0, 0},
        {"1e3", 0, 0},
        {"0.1234567891", 0, 0},
        {"99999999999999999999", 0, 0},
        {"9999999999999999h", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 12345;
        int rc = hr_duration_parse(cases[i].s, &ms);
        if (cases[i].ok) {
            if (rc != 0) fail_msg("\"%s\" should parse", cases[i].s);
            if (ms != cases[i].ms)
                fail_msg("\"%s\": %llu != %llu", cases[i].s, (unsigned long long)ms,
                         (unsigned long long)cases[i].ms);
        } else if (rc != HR_EINVAL) {
            fail_msg("\"%s\" should be rejected", cases[i].s);
        }
    }
    assert_int_equal(hr_duration_parse(NULL, NULL), HR_EINVAL);
}

static void test_secrets(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int ok;
    } cases[] = {
        {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1},
        {"whsec_c2VjcmV0", 1},
        {"whsec_c2VjcmV0MQ==", 1},
        {"whsec_c2VjcmV0MTI=", 1},
        {"'{{ORDERS_SECRET}}'", 1},
        {"'{{ ORDERS_SECRET }}'", 1},
        {"whsec_c2VjcmV0MQ", 1}, /* padding may be left out, as the signer allows */
        {"whsec_", 0},
        {"whsec_c2VjcmV0M", 0}, /* no base64 has this length */
        {"whsec_c2VjcmV0M===", 0},
        {"whsec_c2VjcmV0MQ=", 0}, /* partial padding */
        {"whsec_c2Vj=mV0", 0},
        {"whsec_c2Vj cmV0", 0},
        {"whsec_c2VjcmV0!!!!", 0},
        {"c2VjcmV0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *yaml = hr_xasprintf(T0 EV WH "    secret: %s\n", cases[i].value);
        hr_config_t *cfg = NULL;
        hr_err_t err = {0};
        int rc = hr_config_parse(yaml, strlen(yaml), "herald.yaml", &cfg, &err);
        if ((rc == 0) != cases[i].ok)
            fail_msg("secret %s: rc %d (%s)", cases[i].value, rc, err.msg);
        if (!cases[i].ok && strlen(cases[i].value) > 8)
            assert_null(strstr(err.msg, cases[i].value));
        hr_config_free(cfg);
        free(yaml);
    }
}

static void test_listen_and_admin_secret(void **state)
{
    (void)state;
    /* off (any case) runs no server; port 0 picks a free one. */
    static const char *const listens[] = {"off", "OFF", "127.0.0.1:0", "[::1]:0", "0.0.0.0:65535"};
    for (size_t i = 0; i < sizeof listens / sizeof listens[0]; i++) {
        char *yaml = hr_xasprintf("listen: \"%s\"\n", listens[i]);
        hr_config_t *cfg = parse_ok(yaml);
        assert_string_equal(cfg->listen, listens[i]);
        hr_config_free(cfg);
        free(yaml);
    }
    hr_config_t *cfg = parse_ok("listen: off\n"); /* plain, as people write it */
    assert_string_equal(cfg->listen, "off");
    hr_config_free(cfg);
    cfg = parse_ok("admin_secret: \"s3cr3t with inner spaces\"\n");
    assert_string_equal(cfg->admin_secret, "s3cr3t with inner spaces");
    hr_config_free(cfg);
    /* A rejected secret is never quoted back. */
    const char *yaml = "admin_secret: \"hunter2-hunter2\\n\"\n";
    hr_err_t err = {0};
    assert_int_equal(hr_config_parse(yaml, strlen(yaml), "herald.yaml", &cfg, &err), HR_ECONFIG);
    assert_null(strstr(err.msg, "hunter2"));
}

static char *dump(const hr_trigger_def_t *d)
{
    json_t *j = hr_trigger_def_to_json(d);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return s;
}

static void test_json_canonical(void **state)
{
    (void)state;
    hr_config_t *cfg = parse_ok(full_yaml);
    char *a = dump(&cfg->triggers[0]), *b = dump(&cfg->triggers[1]);
    assert_string_equal(
        a, "{\"columns\":[\"status\",\"total\"],\"concurrency\":8,\"events\":null,\"headers\":{"
           "\"X-Api-Key\":\"{{ORDERS_KEY}}\",\"X-Team\":\"billing\"},\"name\":\"order_events\","
           "\"operations\":[\"insert\",\"update\",\"delete\"],\"payload\":[\"id\",\"status\","
           "\"total\"],\"retry\":{\"backoff\":\"fixed\",\"interval_ms\":250,\"max_interval_ms\":"
           "3600000,\"max_retries\":7,\"timeout_ms\":3000},\"secret\":\"{{ORDERS_SECRET}}\","
           "\"start\":\"beginning\",\"table\":{\"name\":\"orders\",\"schema\":\"public\"},"
           "\"webhook\":\"http://127.0.0.1:3000/orders\"}");
    assert_string_equal(
        b, "{\"columns\":null,\"concurrency\":64,\"events\":[\"order.placed\",\"invoice.*\"],"
           "\"headers\":{},\"name\":\"invoices\",\"operations\":[],\"payload\":null,\"retry\":{"
           "\"backoff\":\"exponential\",\"interval_ms\":2000,\"max_interval_ms\":600000,"
           "\"max_retries\":5,\"timeout_ms\":30000},\"secret\":null,\"start\":\"now\",\"table\":"
           "null,\"webhook\":\"https://example.com/invoices\"}");
    free(a);
    free(b);
    hr_config_free(cfg);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    hr_config_t *cfg = parse_ok(full_yaml);
    hr_config_t *quoted = parse_ok("triggers:\n"
                                   "  - name: q\n"
                                   "    table: '\"My Schema\".\"My \"\"T\"\" able\"'\n"
                                   "    operations: [manual, delete]\n"
                                   "    webhook: '{{BASE}}/hook'\n"
                                   "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
    const hr_trigger_def_t *defs[] = {&cfg->triggers[0], &cfg->triggers[1], &quoted->triggers[0]};
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        json_t *j = hr_trigger_def_to_json(defs[i]);
        hr_trigger_def_t back;
        hr_err_t err = {0};
        if (hr_trigger_def_from_json(j, &back, &err)) fail_msg("from_json: %s", err.msg);
        char *a = dump(defs[i]), *b = dump(&back);
        assert_string_equal(a, b);
        /* The fields themselves, too. */
        assert_string_equal(back.name, defs[i]->name);
        assert_int_equal(back.ops, defs[i]->ops);
        assert_int_equal(back.ncolumns, defs[i]->ncolumns);
        assert_int_equal(back.nevents, defs[i]->nevents);
        assert_int_equal(back.nheaders, defs[i]->nheaders);
        assert_memory_equal(&back.retry, &defs[i]->retry, sizeof back.retry);
        assert_int_equal(back.start_beginning, defs[i]->start_beginning);
        assert_int_equal(back.concurrency, defs[i]->concurrency);
        if (defs[i]->table) {
            assert_string_equal(back.table, defs[i]->table);
            assert_string_equal(back.schema, defs[i]->schema);
        } else {
            assert_null(back.table);
            assert_null(back.schema);
        }
        free(a);
        free(b);
        hr_trigger_def_clear(&back);
        json_decref(j);
    }
    assert_string_equal(quoted->triggers[0].schema, "My Schema");
    assert_string_equal(quoted->triggers[0].table, "My \"T\" able");
    hr_config_free(quoted);
    hr_config_free(cfg);
}

static const struct {
    const char *json;
    const char *msg;
} json_error_cases[] = {
    {"[]", "expected a JSON object"},
    {"{\"events\":[\"x\"]}", "name: required key is missing\nwebhook: required key is missing"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"retry\":{\"interval_ms\":0}}",
     "retry.interval_ms: expected a positive integer"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"retry\":{\"interval_ms\":"
     "\"2s\"}}",
     "retry.interval_ms: expected a positive integer"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"retry\":{\"interval\":2000}}",
     "retry.interval: unknown key (expected one of: max_retries, interval_ms, backoff, "
     "max_interval_ms, timeout_ms)"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"retry\":{\"timeout_ms\":"
     "3600001}}",
     "retry.timeout_ms: 3600001 is out of range (1 to 3600000)"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"retry\":{\"interval_ms\":"
     "5000,\"max_interval_ms\":1000}}",
     "retry.max_interval_ms: 1000 is less than interval_ms (5000)"},
    {"{\"name\":\"a b\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"colour\":1}",
     "colour: unknown key (expected one of: name, table, operations, columns, payload, events, "
     "webhook, headers, retry, secret, start, concurrency)\n"
     "name: invalid name \"a b\" (use 1 to 64 letters, digits or underscores)"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"table\":{\"schema\":\"public\",\"name\":\"t\"},"
     "\"operations\":[]}",
     "operations: must not be empty"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"table\":{\"schema\":\"public\",\"name\":\"\"},"
     "\"operations\":[\"insert\"]}",
     "table.name: invalid name \"\" (must be 1 to 63 bytes)"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/"
     "\",\"table\":\"public.t\",\"operations\":[\"insert\"]}",
     "table: expected an object with schema and name"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"table\":{\"schema\":\"s\",\"name\":\"t\"},"
     "\"operations\":[\"insert\",\"truncate\"],\"events\":[\"x\"]}",
     "operations[1]: invalid value \"truncate\" (expected one of: insert, update, delete, "
     "manual)\n"
     "events: cannot be combined with table (a trigger has either table or events)"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"operations\":[\"insert\"]}",
     "operations: only allowed with table"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[],\"secret\":\"nope\",\"concurrency\":"
     "1.5}",
     "events: must not be empty (use null instead)\n"
     "secret: invalid secret (expected whsec_ followed by base64, or a {{VAR}} reference)\n"
     "concurrency: expected a positive integer"},
    {"{\"name\":\"a\",\"webhook\":\"http://h/\",\"events\":[\"x\"],\"headers\":{\"X-A\":1},"
     "\"start\":\"end\"}",
     "headers.X-A: expected a string\n"
     "start: invalid value \"end\" (expected one of: now, beginning)"},
};

static void test_json_errors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof json_error_cases / sizeof json_error_cases[0]; i++) {
        json_error_t jerr;
        json_t *j = json_loads(json_error_cases[i].json, 0, &jerr);
        hr_trigger_def_t d;
        hr_err_t err = {0};
        if (!j) fail_msg("case %zu: bad test JSON: %s", i, jerr.text);
        int rc = hr_trigger_def_from_json(j, &d, &err);
        if (rc != HR_EINVAL || strcmp(err.msg, json_error_cases[i].msg) != 0) {
            print_error("json case %zu: %s\nexpected: %s\n     got: %s (rc %d)\n", i,
                        json_error_cases[i].json, json_error_cases[i].msg, err.msg, rc);
            failures++;
        }
        /* On failure the definition is left cleared. */
        if (rc == 0) hr_trigger_def_clear(&d);
        assert_null(d.name);
        assert_null(d.webhook);
        json_decref(j);
    }
    assert_int_equal(failures, 0);
}

/* Writes text to a new temporary file; returns its path (caller unlinks and frees). */
static char *temp_file(const char *text)
{
    char *path = hr_xstrdup("/tmp/herald-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_env_overrides(void **state)
{
    (void)state;
    char *path = temp_file("database: postgres://file@127.0.0.1/db\n"
                           "listen: 127.0.0.1:1111\n"
                           "log_level: warn\n");
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};

    /* The file alone; hr_config_parse never looks at the environment. */
    unsetenv("HERALD_DATABASE_URL");
    unsetenv("HERALD_LISTEN");
    unsetenv("HERALD_LOG_LEVEL");
    unsetenv("HERALD_ADMIN_SECRET");
    assert_int_equal(hr_config_load(path, &cfg, &err), 0);
    assert_string_equal(cfg->path, path);
    assert_string_equal(cfg->database, "postgres://file@127.0.0.1/db");
    assert_string_equal(cfg->listen, "127.0.0.1:1111");
    assert_int_equal(cfg->log_level, HR_LOG_WARN);
    hr_config_free(cfg);

    setenv("HERALD_DATABASE_URL", "postgres://env@10.0.0.1:5433/other", 1);
    setenv("HERALD_LISTEN", "[::1]:9000", 1);
    setenv("HERALD_LOG_LEVEL", "DEBUG", 1);
    setenv("HERALD_ADMIN_SECRET", "from-the-environment", 1);
    assert_int_equal(hr_config_load(path, &cfg, &err), 0);
    assert_string_equal(cfg->database, "postgres://env@10.0.0.1:5433/other");
    assert_string_equal(cfg->admin_secret, "from-the-environment");
    unsetenv("HERALD_ADMIN_SECRET");
    assert_string_equal(cfg->listen, "[::1]:9000");
    assert_int_equal(cfg->log_level, HR_LOG_DEBUG);
    hr_config_free(cfg);

    const char *text = "log_level: warn\n";
    assert_int_equal(hr_config_parse(text, strlen(text), "x.yaml", &cfg, &err), 0);
    assert_int_equal(cfg->log_level, HR_LOG_WARN);
    assert_null(cfg->database);
    hr_config_free(cfg);

    /* A bad variable is an error naming it; an empty one counts as unset. */
    setenv("HERALD_LOG_LEVEL", "loud", 1);
    setenv("HERALD_LISTEN", "", 1);
    cfg = (hr_config_t *)1;
    assert_int_equal(hr_config_load(path, &cfg, &err), HR_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.msg, "HERALD_LOG_LEVEL: invalid value \"loud\" (expected one of: "
                                 "debug, info, warn, error)");

    /* Problems in the file and in the environment are reported together. */
    setenv("HERALD_DATABASE_URL", "mysql://x", 1);
    char *bad = temp_file("listen: nowhere\n");
    assert_int_equal(hr_config_load(bad, &cfg, &err), HR_ECONFIG);
    char *expected = hr_xasprintf(
        "%s:1: listen: invalid listen address \"nowhere\" (expected host:port, e.g. "
        "127.0.0.1:8080, or off)\n"
        "HERALD_DATABASE_URL: invalid database URL (expected postgres://..., postgresql://... or "
        "sqlite:PATH)\n"
        "HERALD_LOG_LEVEL: invalid value \"loud\" (expected one of: debug, info, warn, error)",
        bad);
    assert_string_equal(err.msg, expected);
    free(expected);

    unsetenv("HERALD_DATABASE_URL");
    unsetenv("HERALD_LISTEN");
    unsetenv("HERALD_LOG_LEVEL");
    unlink(bad);
    free(bad);
    unlink(path);
    free(path);
}

static void test_load_errors(void **state)
{
    (void)state;
    hr_config_t *cfg = (hr_config_t *)1;
    hr_err_t err = {0};
    assert_int_equal(hr_config_load("/nonexistent/herald.yaml", &cfg, &err), HR_ECONFIG);
    assert_null(cfg);
    assert_int_equal(err.code, HR_ECONFIG);
    assert_string_equal(err.msg,
                        "/nonexistent/herald.yaml: cannot read: No such file or directory");
    assert_int_equal(hr_config_load("/", &cfg, &err), HR_ECONFIG);
    assert_string_equal(err.msg, "/: cannot read: Is a directory");

    /* A syntax error in a file names the file. */
    char *path = temp_file("triggers:\n  - name: [a\n");
    assert_int_equal(hr_config_load(path, &cfg, &err), HR_ECONFIG);
    char *prefix = hr_xasprintf("%s:3: YAML syntax error: ", path);
    assert_true(strncmp(err.msg, prefix, strlen(prefix)) == 0);
    assert_null(strchr(err.msg, '\n'));
    free(prefix);
    unlink(path);
    free(path);
}

static void test_example_file_is_valid(void **state)
{
    (void)state;
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};
    unsetenv("HERALD_DATABASE_URL");
    unsetenv("HERALD_LISTEN");
    unsetenv("HERALD_LOG_LEVEL");
    if (hr_config_load(EXAMPLE_PATH, &cfg, &err)) fail_msg("%s", err.msg);
    assert_string_equal(cfg->database, "postgres://herald@127.0.0.1:5432/herald");
    assert_int_equal(cfg->ntriggers, 2);
    assert_string_equal(cfg->triggers[0].schema, "public");
    assert_string_equal(cfg->triggers[0].table, "orders");
    assert_non_null(cfg->triggers[1].events);
    hr_config_free(cfg);
}

/* docs/config.md holds exactly what hr_config_write_docs prints, between its markers. */
static void test_docs_up_to_date(void **state)
{
    (void)state;
    char *gen = NULL, *file = NULL;
    size_t gen_len = 0, file_len = 0;
    FILE *f = open_memstream(&gen, &gen_len);
    assert_non_null(f);
    assert_int_equal(hr_config_write_docs(f), 0);
    fclose(f);

    f = fopen(DOCS_PATH, "rb");
    if (!f) fail_msg("cannot open %s (run the test from tests/unit)", DOCS_PATH);
    FILE *m = open_memstream(&file, &file_len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);

    const char *end_marker = "<!-- END GENERATED -->\n";
    char *begin = strstr(file, "<!-- BEGIN GENERATED");
    char *end = begin ? strstr(begin, end_marker) : NULL;
    if (!begin || !end) fail_msg("%s lacks the generated-section markers", DOCS_PATH);
    end += strlen(end_marker);
    size_t old_len = (size_t)(end - begin);
    int same = old_len == gen_len && memcmp(begin, gen, gen_len) == 0;

    if (!same && getenv("HERALD_UPDATE_DOCS")) {
        f = fopen(DOCS_PATH, "wb");
        assert_non_null(f);
        fwrite(file, 1, (size_t)(begin - file), f);
        fwrite(gen, 1, gen_len, f);
        fwrite(end, 1, file_len - (size_t)(end - file), f);
        assert_int_equal(fclose(f), 0);
        same = 1;
    }
    if (!same)
        fail_msg("%s is out of date with the key table; run this test with HERALD_UPDATE_DOCS=1 "
                 "to regenerate it",
                 DOCS_PATH);
    free(gen);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_configs),
        cmocka_unit_test(test_table_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_listen_and_admin_secret),
        cmocka_unit_test(test_json_canonical),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_example_file_is_valid),
        cmocka_unit_test(test_docs_up_to_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
