/* test_config_db.c: which database herald opens (hr_config_database_url). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char cwd[PATH_MAX];

static void check(const hr_config_t *cfg, const char *want, int want_default)
{
    int defaulted = -1;
    char *url = hr_config_database_url(cfg, &defaulted);
    assert_string_equal(url, want);
    assert_int_equal(defaulted, want_default);
    free(url);
}

static void relative_to_the_file(void **state)
{
    (void)state;
    hr_config_t cfg = {.path = "/nonexistent/conf/herald.yaml", .database = "sqlite:data/app.db"};
    check(&cfg, "sqlite:/nonexistent/conf/data/app.db", 0);
    cfg.database = "sqlite:/srv/app.db";
    check(&cfg, "sqlite:/srv/app.db", 0);
    cfg.database = "postgres://u@h/db";
    check(&cfg, "postgres://u@h/db", 0);
    /* A file in the working directory: its directory is the working directory. */
    cfg.path = "herald.yaml";
    cfg.database = "sqlite:app.db";
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "sqlite:%s/app.db", cwd);
    check(&cfg, want, 0);
}

static void environment_is_relative_to_the_cwd(void **state)
{
    (void)state;
    hr_config_t cfg = {.path = "/nonexistent/conf/herald.yaml",
                       .database = "sqlite:env.db",
                       .database_from_env = 1};
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "sqlite:%s/env.db", cwd);
    check(&cfg, want, 0);
    /* No configuration file: the variable alone, else the default in the working directory. */
    setenv("HERALD_DATABASE_URL", "sqlite:x/e.db", 1);
    snprintf(want, sizeof want, "sqlite:%s/x/e.db", cwd);
    check(NULL, want, 0);
    unsetenv("HERALD_DATABASE_URL");
    snprintf(want, sizeof want, "sqlite:%s/herald.db", cwd);
    check(NULL, want, 1);
}

static void default_beside_the_file(void **state)
{
    (void)state;
    hr_config_t cfg = {.path = "/nonexistent/conf/herald.yaml"};
    check(&cfg, "sqlite:/nonexistent/conf/herald.db", 1);
    cfg.path = "/herald.yaml";
    check(&cfg, "sqlite:/herald.db", 1);
}

int main(void)
{
    if (!getcwd(cwd, sizeof cwd)) return 1;
    unsetenv("HERALD_DATABASE_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(relative_to_the_file),
        cmocka_unit_test(environment_is_relative_to_the_cwd),
        cmocka_unit_test(default_beside_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
