/* test_capture.c: golden tests for the capture DDL (files in tests/unit/data/capture). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/capture.h"
#include "config/config.h"

static char *read_golden(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "data/capture/%s", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void check_golden(const char *schema, const char *table, unsigned style, const char *golden)
{
    hr_buf_t b = HR_BUF_INIT;
    hr_buf_puts(&b, "-- source: ");
    hr_capture_source(schema, table, &b);
    hr_buf_putc(&b, '\n');
    const unsigned ops[] = {HR_OP_INSERT, HR_OP_UPDATE, HR_OP_DELETE};
    for (int i = 0; i < 3; i++)
        hr_capture_pg_create(schema, table, ops[i], style, &b);
    for (int i = 0; i < 3; i++)
        hr_capture_pg_drop(schema, table, ops[i], &b);
    const char *want = read_golden(golden);
    if (strcmp(b.data, want) != 0) fprintf(stderr, "got:\n%s\nwant:\n%s\n", b.data, want);
    assert_string_equal(b.data, want);
    hr_buf_free(&b);
}

static void plain_table(void **state)
{
    (void)state;
    check_golden("public", "orders", 0, "plain.sql");
    check_golden("public", "orders", HR_CAPTURE_PG_ROW, "plain_row.sql");
    check_golden("public", "orders", HR_CAPTURE_PG_NATIVE, "plain_native.sql");
    check_golden("public", "orders", HR_CAPTURE_PG_NATIVE | HR_CAPTURE_PG_ROW,
                 "plain_native_row.sql");
}

static void awkward_names(void **state)
{
    (void)state;
    check_golden("My \"Schema\"", "it's.a table", 0, "awkward.sql");
    check_golden("My \"Schema\"", "it's.a table", HR_CAPTURE_PG_NATIVE, "awkward_native.sql");
}

static void source_forms(void **state)
{
    (void)state;
    hr_buf_t b = HR_BUF_INIT;
    hr_capture_source("s", "Mixed Case", &b);
    assert_string_equal(b.data, "s.Mixed Case");
    hr_buf_reset(&b);
    hr_capture_source("a.b", "c", &b);
    assert_string_equal(b.data, "\"a.b\".\"c\"");
    hr_buf_reset(&b);
    hr_capture_source("a", "b.c", &b);
    assert_string_equal(b.data, "\"a\".\"b.c\"");
    hr_buf_free(&b);
    assert_null(hr_capture_trigger_name(HR_OP_MANUAL));
    assert_string_equal(hr_capture_pg_function(HR_OP_INSERT, 0), "capture_insert");
    assert_string_equal(hr_capture_pg_function(HR_OP_UPDATE, 0), "capture_row");
    assert_string_equal(hr_capture_pg_function(HR_OP_DELETE, 0), "capture_delete");
    assert_string_equal(hr_capture_pg_function(HR_OP_DELETE, HR_CAPTURE_PG_ROW), "capture_row");
    assert_string_equal(hr_capture_pg_function(HR_OP_UPDATE, HR_CAPTURE_PG_NATIVE),
                        "capture_native");
    assert_false(hr_capture_pg_row_level(HR_OP_INSERT, 0));
    assert_true(hr_capture_pg_row_level(HR_OP_UPDATE, 0));
    assert_true(hr_capture_pg_row_level(HR_OP_INSERT, HR_CAPTURE_PG_ROW));
    assert_false(hr_capture_pg_row_level(HR_OP_DELETE, HR_CAPTURE_PG_NATIVE));
    assert_true(hr_capture_pg_row_level(HR_OP_DELETE, HR_CAPTURE_PG_NATIVE | HR_CAPTURE_PG_ROW));
    assert_string_equal(
        hr_capture_pg_function(HR_OP_INSERT, HR_CAPTURE_PG_NATIVE | HR_CAPTURE_PG_ROW),
        "capture_native");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_table),
        cmocka_unit_test(awkward_names),
        cmocka_unit_test(source_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
