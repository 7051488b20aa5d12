/* test_text.c: UTF-8 cleaning and lenient JSON from the database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/text.h"

static void clean_cases(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"plain ascii", "plain ascii"},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
        {"a\xFF"
         "b",
         "a\xEF\xBF\xBD"
         "b"},                                                                    /* never valid */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                                 /* overlong '/' */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* surrogate */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* > U+10FFFF */
        {"x\xE2\x82", "x\xEF\xBF\xBD\xEF\xBF\xBD"},                               /* cut short */
        {"\x80"
         "a",
         "\xEF\xBF\xBD"
         "a"}, /* stray continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = hr_utf8_clean(cases[i].in);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

static void json_cases(void **state)
{
    (void)state;
    json_t *j = hr_json_from_db(NULL);
    assert_true(json_is_null(j));
    json_decref(j);

    j = hr_json_from_db("{\"id\": 42, \"s\": \"12345678901234567890123\"}");
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "s")), "12345678901234567890123");
    json_decref(j);

    /* An integer beyond 64 bits becomes a real; the rest stays exact. */
    j = hr_json_from_db("{\"big\": 123456789012345678901234, \"n\": -7, \"t\": \"9e99\"}");
    assert_non_null(j);
    assert_true(json_is_real(json_object_get(j, "big")));
    assert_true(json_real_value(json_object_get(j, "big")) > 1.2e23);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), -7);
    assert_string_equal(json_string_value(json_object_get(j, "t")), "9e99");
    json_decref(j);

    j = hr_json_from_db("\"just a string\"");
    assert_string_equal(json_string_value(j), "just a string");
    json_decref(j);

    /* Not JSON: kept as a string rather than lost. */
    j = hr_json_from_db("not json {");
    assert_string_equal(json_string_value(j), "not json {");
    json_decref(j);
}

static void uuid_cases(void **state)
{
    (void)state;
    assert_true(hr_is_uuid("5c0e8e2c-8a6b-4f53-9d0b-1F3C1E7E2A10"));
    assert_true(hr_is_uuid("00000000-0000-0000-0000-000000000000"));
    assert_false(hr_is_uuid("5c0e8e2c-8a6b-4f53-9d0b-1f3c1e7e2a1"));   /* 35 characters */
    assert_false(hr_is_uuid("5c0e8e2c-8a6b-4f53-9d0b-1f3c1e7e2a100")); /* 37 */
    assert_false(hr_is_uuid("5c0e8e2c_8a6b-4f53-9d0b-1f3c1e7e2a10"));  /* a dash missing */
    assert_false(hr_is_uuid("5c0e8e2c-8a6b-4f53-9d0b-1f3c1e7e2g10"));  /* not hex */
    assert_false(hr_is_uuid("5c0e8e2c8a6b-4f53-9d0b-1f3c1e7e2a10-"));  /* dash misplaced */
    assert_false(hr_is_uuid(""));
    assert_false(hr_is_uuid(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(clean_cases),
        cmocka_unit_test(json_cases),
        cmocka_unit_test(uuid_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
