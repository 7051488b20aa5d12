/* test_where.c: GraphQL's events_bool_exp and events_order_by (store/store_where.c) — the SQL
 * and parameters made for each backend, and the same expression evaluated in C on events
 * (hr_store_where_match), which must agree with the SQL's meaning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/where_int.h"

/* The SQL of where (JSON text) for one backend; params joined with '|'. */
static void sql_of(int pg, const char *where, const char *order, char *sql, size_t n, char *params,
                   size_t pn, int *rc)
{
    json_t *w = where ? json_loads(where, 0, NULL) : NULL;
    json_t *o = order ? json_loads(order, 0, NULL) : NULL;
    hr_wsql_t q;
    hr_err_t err = {0};
    hr_wsql_init(&q, pg);
    *rc = hr_wsql_where(&q, w, &err);
    if (!*rc && order) *rc = hr_wsql_order(&q, o, &err);
    snprintf(sql, n, "%s", *rc ? err.msg : q.sql.data);
    params[0] = '\0';
    for (size_t i = 0; i < q.n; i++) {
        strncat(params, i ? "|" : "", pn - strlen(params) - 1);
        strncat(params, q.p[i].s, pn - strlen(params) - 1);
    }
    hr_wsql_free(&q);
    json_decref(w);
    json_decref(o);
}

static void test_sql_postgres(void **state)
{
    char sql[1024], params[256];
    int rc;
    sql_of(1, "{\"seq\": {\"_gt\": 5, \"_lte\": \"9\"}, \"source\": {\"_in\": [\"a\", \"b\"]}}",
           NULL, sql, sizeof sql, params, sizeof params, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(sql, "((l.seq > $1::bigint AND l.seq <= $2::bigint) AND "
                             "(l.source IN ($3::text, $4::text)))");
    assert_string_equal(params, "5|9|a|b");
    sql_of(1, "{\"created_at\": {\"_gte\": \"2026-11-23T13:00:00+01:00\"}}", NULL, sql, sizeof sql,
           params, sizeof params, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(params, "2026-11-23T12:00:00.000000Z");
    sql_of(1, "{\"id\": {\"_eq\": \"0A3F5C6B-1111-4222-8333-444455556666\"}}", NULL, sql,
           sizeof sql, params, sizeof params, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(sql, "((l.id = $1::uuid))");
    assert_string_equal(params, "0a3f5c6b-1111-4222-8333-444455556666");
}

static void test_sql_sqlite_and_logic(void **state)
{
    char sql[2048], params[256];
    int rc;
    sql_of(0,
           "{\"_or\": [{\"op\": {\"_eq\": \"INSERT\"}}, {\"_not\": {\"seq\": {\"_nin\": []}}}],"
           " \"source\": null}",
           "[{\"created_at\": \"desc\"}]", sql, sizeof sql, params, sizeof params, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(sql, "((((l.op = ?1)) OR (NOT ((1 = 1))))) ORDER BY l.at DESC, l.seq ASC");
    assert_string_equal(params, "INSERT");
    sql_of(0, "{\"deliveries\": {\"trigger\": {\"_eq\": \"t\"}, \"state\": {\"_in\": [\"dead\"]}}}",
           NULL, sql, sizeof sql, params, sizeof params, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(sql, "EXISTS (SELECT 1 FROM (SELECT x.trigger FROM herald_attempts x"));
    assert_string_equal(params, "t|dead");
    sql_of(0, NULL, NULL, sql, sizeof sql, params, sizeof params, &rc);
    assert_string_equal(sql, "1 = 1");
}

static void test_sql_errors(void **state)
{
    static const struct {
        const char *where, *order, *msg;
    } cases[] = {
        {"{\"seq\": {\"_like\": 1}}", NULL, "where.seq._like: unknown operator"},
        {"{\"source\": {\"_gt\": \"a\"}}", NULL, "ordering comparisons"},
        {"{\"created_at\": {\"_gt\": \"yesterday\"}}", NULL, "RFC 3339"},
        {"{\"id\": {\"_eq\": \"x\"}}", NULL, "expected a uuid"},
        {"{\"seq\": {\"_eq\": 1.5}}", NULL, "expected an integer"},
        {"{\"nope\": {}}", NULL, "where.nope: unknown field"},
        {"{\"deliveries\": {\"state\": {\"_eq\": \"gone\"}}}", NULL, "pending, delivered"},
        {"{\"_and\": [{\"seq\": {\"_in\": [1, \"x\"]}}]}", NULL, "where._and[0].seq._in[1]"},
        {NULL, "[{\"seq\": \"sideways\"}]", "expected asc or desc"},
        {NULL, "[{\"data\": \"asc\"}]", "unknown field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sql[1024], params[256];
        int rc;
        sql_of(1, cases[i].where, cases[i].order, sql, sizeof sql, params, sizeof params, &rc);
        assert_int_equal(rc, HR_EINVAL);
        if (!strstr(sql, cases[i].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, sql, cases[i].msg);
    }
}

static int matches(const char *where, const char *event)
{
    json_t *w = json_loads(where, 0, NULL), *e = json_loads(event, 0, NULL);
    hr_err_t err = {0};
    int r = hr_store_where_match(w, e, &err);
    json_decref(w);
    json_decref(e);
    return r;
}

static void test_match(void **state)
{
    const char *ev = "{\"seq\": 7, \"id\": \"0a3f5c6b-1111-4222-8333-444455556666\","
                     " \"source\": \"public.orders\", \"op\": \"UPDATE\","
                     " \"created_at\": \"2026-11-23T12:00:00.500000Z\"}";
    assert_int_equal(matches("{}", ev), 1);
    assert_int_equal(matches("{\"seq\": {\"_gt\": 6, \"_lte\": \"7\"}}", ev), 1);
    assert_int_equal(matches("{\"seq\": {\"_gt\": 7}}", ev), 0);
    assert_int_equal(matches("{\"seq\": {\"_in\": [1, 7]}, \"op\": {\"_nin\": [\"DELETE\"]}}", ev),
                     1);
    assert_int_equal(matches("{\"id\": {\"_eq\": \"0A3F5C6B-1111-4222-8333-444455556666\"}}", ev),
                     1);
    assert_int_equal(matches("{\"created_at\": {\"_gt\": \"2026-11-23T12:00:00Z\"}}", ev), 1);
    assert_int_equal(matches("{\"created_at\": {\"_gte\": \"2026-11-23T13:00:01+01:00\"}}", ev), 0);
    assert_int_equal(matches("{\"created_at\": {\"_lt\": \"2026-11-24\"}}", ev), 1);
    assert_int_equal(matches("{\"_or\": [{\"op\": {\"_eq\": \"INSERT\"}}, {\"source\": {\"_eq\": "
                             "\"public.orders\"}}]}",
                             ev),
                     1);
    assert_int_equal(matches("{\"_not\": {\"source\": {\"_eq\": \"public.orders\"}}}", ev), 0);
    assert_int_equal(matches("{\"_and\": [], \"_or\": [{\"seq\": {\"_eq\": 7}}]}", ev), 1);
    assert_int_equal(matches("{\"source\": null, \"seq\": {\"_eq\": null}}", ev), 1);
    /* Errors are found whatever the event: every part is evaluated. */
    assert_int_equal(matches("{\"_or\": [{\"seq\": {\"_eq\": 7}}, {\"seq\": {\"_bad\": 1}}]}", ev),
                     HR_EINVAL);
    assert_int_equal(matches("{\"deliveries\": {\"trigger\": {\"_eq\": \"t\"}}}", ev), HR_EINVAL);
    assert_int_equal(matches("{\"op\": {\"_lt\": \"Z\"}}", ev), HR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_postgres),
        cmocka_unit_test(test_sql_sqlite_and_logic),
        cmocka_unit_test(test_sql_errors),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
