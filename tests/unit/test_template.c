/* test_template.c: {{VAR}} expansion (dispatch/template.c).
 *
 * Most cases use a table lookup; one checks the getenv default with setenv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch/template.h"

static const char *const vars[][2] = {
    {"HOST", "hooks.example.com"},
    {"PORT", "8443"},
    {"TOKEN", "s3cr{{t}}"}, /* a value is never expanded again */
    {"EMPTY", ""},
    {"_x1", "underscore"},
    {"lower", "ok"},
};

static const char *table_lookup(const char *name, void *ud)
{
    int *calls = ud;
    if (calls) (*calls)++;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (!strcmp(vars[i][0], name)) return vars[i][1];
    return NULL;
}

static void test_expand_table(void **state)
{
    static const struct {
        const char *tmpl;
        const char *want;
        int lookups;
    } cases[] = {
        {"", "", 0},
        {"https://plain.example.com/hook", "https://plain.example.com/hook", 0},
        {"{{HOST}}", "hooks.example.com", 1},
        {"https://{{HOST}}:{{PORT}}/x", "https://hooks.example.com:8443/x", 2},
        {"https://{{ HOST }}:{{  PORT}}/{{PORT }}", "https://hooks.example.com:8443/8443", 3},
        {"{{\tHOST\t}}", "hooks.example.com", 1},
        {"Bearer {{TOKEN}}", "Bearer s3cr{{t}}", 1},
        {"a{{EMPTY}}b", "ab", 1},
        {"{{_x1}}-{{lower}}", "underscore-ok", 2},
        {"{{HOST}}{{HOST}}", "hooks.example.comhooks.example.com", 2},
        {"single { and } braces, }} too", "single { and } braces, }} too", 0},
        {"{{HOST}}}", "hooks.example.com}", 1},
        {"x{y{{PORT}}", "x{y8443", 1},
        {"{{{PORT}}}", "{8443}", 1},
        {"{{{{PORT}}}}", "{{8443}}", 1},
        {"caf\xc3\xa9/{{PORT}}/\xe2\x82\xac", "caf\xc3\xa9/8443/\xe2\x82\xac", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        hr_err_t err = {0};
        int calls = 0;
        int rc = hr_template_expand(cases[i].tmpl, table_lookup, &calls, &out, &err);
        if (rc) fail_msg("case %zu (%s): %s", i, cases[i].tmpl, err.msg);
        assert_non_null(out);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(calls, cases[i].lookups);
        free(out);
    }
}

static void test_missing_variable(void **state)
{
    char *out = (char *)"sentinel";
    hr_err_t err = {0};
    assert_int_equal(
        hr_template_expand("https://{{HOST}}/{{ NOPE }}/", table_lookup, NULL, &out, &err),
        HR_EINVAL);
    assert_null(out);
    assert_int_equal(err.code, HR_EINVAL);
    assert_string_equal(err.msg, "environment variable NOPE is not set");
    /* Without an hr_err_t it still fails cleanly. */
    assert_int_equal(hr_template_expand("{{NOPE}}", table_lookup, NULL, &out, NULL), HR_EINVAL);
    assert_null(out);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "{{",      "https://{{HOST", "https://{{HOST}", "{{HOST}} then {{",
        "{{}}",    "{{ }}",          "{{1ABC}}",        "{{A-B}}",
        "{{A B}}", "{{HOST}x}}",     "{{ $HOST }}",     "{{{ HOST - }}}",
        "{{{",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        hr_err_t err = {0};
        if (hr_template_expand(bad[i], table_lookup, NULL, &out, &err) != HR_EINVAL)
            fail_msg("case %zu (%s) accepted", i, bad[i]);
        assert_null(out);
        assert_true(err.msg[0] != '\0');
    }
    /* The message names the problem but does not quote the template (it may be a secret). */
    char *out = NULL;
    hr_err_t err = {0};
    assert_int_equal(hr_template_expand("whsec_abc{{oops", table_lookup, NULL, &out, &err),
                     HR_EINVAL);
    assert_non_null(strstr(err.msg, "unterminated"));
    assert_null(strstr(err.msg, "whsec_abc"));
    assert_int_equal(hr_template_expand(NULL, table_lookup, NULL, &out, &err), HR_EINVAL);
}

static void test_getenv_default(void **state)
{
    char *out = NULL;
    hr_err_t err = {0};
    assert_int_equal(setenv("HERALD_TEST_TEMPLATE_VAR", "from-env", 1), 0);
    unsetenv("HERALD_TEST_TEMPLATE_UNSET");
    assert_int_equal(hr_template_expand("x={{ HERALD_TEST_TEMPLATE_VAR }}", NULL, NULL, &out, &err),
                     0);
    assert_string_equal(out, "x=from-env");
    free(out);
    assert_int_equal(hr_template_expand("{{HERALD_TEST_TEMPLATE_UNSET}}", NULL, NULL, &out, &err),
                     HR_EINVAL);
    assert_string_equal(err.msg, "environment variable HERALD_TEST_TEMPLATE_UNSET is not set");
    unsetenv("HERALD_TEST_TEMPLATE_VAR");
}

static void test_has_vars(void **state)
{
    assert_true(hr_template_has_vars("{{A}}"));
    assert_true(hr_template_has_vars("https://{{ HOST }}/x"));
    assert_true(hr_template_has_vars("{{ bad {{GOOD}}"));
    assert_true(hr_template_has_vars("{{{A}}}")); /* contains {{A}} */
    assert_false(hr_template_has_vars(NULL));
    assert_false(hr_template_has_vars(""));
    assert_false(hr_template_has_vars("https://example.com/hook"));
    assert_false(hr_template_has_vars("{{"));
    assert_false(hr_template_has_vars("{{}}"));
    assert_false(hr_template_has_vars("{{1A}}"));
    assert_false(hr_template_has_vars("{ {A} }"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_table), cmocka_unit_test(test_missing_variable),
        cmocka_unit_test(test_malformed),    cmocka_unit_test(test_getenv_default),
        cmocka_unit_test(test_has_vars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
