/* test_capture_sqlite.c: golden tests for the SQLite capture DDL (files in
 * tests/unit/data/capture_sqlite; HERALD_UPDATE_GOLDEN=1 rewrites them from the output). */
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

static void check_golden(const char *name, const char *got)
{
    char path[512];
    snprintf(path, sizeof path, "data/capture_sqlite/%s", name);
    if (getenv("HERALD_UPDATE_GOLDEN")) {
        FILE *w = fopen(path, "wb");
        assert_non_null(w);
        fputs(got, w);
        fclose(w);
    }
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    hr_buf_t want = HR_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        hr_buf_append(&want, chunk, n);
    fclose(f);
    if (strcmp(got, want.data ? want.data : "") != 0)
        fprintf(stderr, "%s differs; got:\n%s\n", path, got);
    assert_string_equal(got, want.data ? want.data : "");
    hr_buf_free(&want);
}

/* Every operation's trigger, then the drops, as one file. */
static void check_table(const char *table, const hr_capture_col_t *cols, size_t n,
                        const char *golden)
{
    hr_buf_t src = HR_BUF_INIT, b = HR_BUF_INIT;
    hr_capture_source("public", table, &src);
    hr_buf_printf(&b, "-- source: %s\n", src.data);
    const unsigned ops[] = {HR_OP_INSERT, HR_OP_UPDATE, HR_OP_DELETE};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hr_capture_sqlite_create(table, src.data, cols, n, ops[i], &b), 0);
        hr_buf_puts(&b, ";\n");
    }
    for (int i = 0; i < 3; i++) {
        hr_buf_t name = HR_BUF_INIT;
        hr_capture_sqlite_name(table, ops[i], &name);
        hr_capture_sqlite_drop(name.data, &b);
        hr_buf_free(&name);
    }
    check_golden(golden, b.data);
    hr_buf_free(&b);
    hr_buf_free(&src);
}

static void plain_table(void **state)
{
    (void)state;
    const hr_capture_col_t cols[] = {{"id", 0}, {"status", 0}, {"total", 0}, {"meta", 1}};
    check_table("orders", cols, 4, "plain.sql");
}

static void awkward_names(void **state)
{
    (void)state;
    const hr_capture_col_t cols[] = {{"Id", 0}, {"it's", 0}, {"a \"quoted\" col", 1}, {"x.y", 0}};
    check_table("My \"Odd\" Table's.name", cols, 4, "awkward.sql");
}

/* More columns than one json_object call can take (63 pairs): json_set carries the rest, and
 * names holding '"' (which a JSON path cannot) go first. */
static void wide_table(void **state)
{
    (void)state;
    enum { N = 130 };
    hr_capture_col_t cols[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], i == N - 1 ? "q\"%d" : "c%d", i);
        cols[i].name = names[i];
        cols[i].json = 0;
    }
    hr_buf_t b = HR_BUF_INIT;
    assert_int_equal(hr_capture_sqlite_create("wide", "public.wide", cols, N, HR_OP_INSERT, &b), 0);
    hr_buf_putc(&b, '\n');
    check_golden("wide.sql", b.data);
    hr_buf_free(&b);
    /* Too many names with '"' for the json_object part: refused, nothing appended. */
    for (int i = 0; i < N; i++)
        snprintf(names[i], sizeof names[i], "\"%d", i);
    assert_int_equal(hr_capture_sqlite_create("wide", "public.wide", cols, N, HR_OP_INSERT, &b),
                     HR_EINVAL);
    assert_int_equal(b.len, 0);
    hr_buf_free(&b);
}

static void trigger_names(void **state)
{
    (void)state;
    hr_buf_t b = HR_BUF_INIT;
    hr_capture_sqlite_name("Orders", HR_OP_INSERT, &b);
    assert_string_equal(b.data, "herald_capture_insert_orders");
    hr_buf_reset(&b);
    hr_capture_sqlite_name("order items", HR_OP_UPDATE, &b);
    assert_non_null(strstr(b.data, "herald_capture_update_orderitems_"));
    assert_int_equal(strlen(b.data), strlen("herald_capture_update_orderitems_") + 8);
    /* Names that differ only by dropped characters get different hashes. */
    hr_buf_t c = HR_BUF_INIT;
    hr_capture_sqlite_name("order-items", HR_OP_UPDATE, &c);
    assert_string_not_equal(b.data, c.data);
    /* Case does not count: SQLite names are case-insensitive. */
    hr_buf_reset(&c);
    hr_capture_sqlite_name("ORDER ITEMS", HR_OP_UPDATE, &c);
    assert_string_equal(b.data, c.data);
    hr_buf_reset(&b);
    hr_capture_sqlite_name("\"\"", HR_OP_DELETE, &b);
    assert_int_equal(strlen(b.data), strlen("herald_capture_delete_") + 8);
    hr_buf_free(&b);
    hr_buf_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_table),
        cmocka_unit_test(awkward_names),
        cmocka_unit_test(wide_table),
        cmocka_unit_test(trigger_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
