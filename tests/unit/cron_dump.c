/* cron_dump.c: prints the next fire times of cron expressions, for the end-to-end cross-check
 * against the npm package cron-parser (tests/e2e/suites/cron.test.js). Built by CMake, not run
 * by ctest.
 *
 * Reads lines "EXPR<TAB>AFTER_UNIX_SECONDS" on stdin and writes one line per input line:
 *   the next 5 fire times in Unix seconds separated by spaces, each one after the one before;
 *   "none" in place of the remaining times when hr_cron_next answers HR_ENOTFOUND;
 *   "error: MESSAGE" when the expression does not parse or the line is malformed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/cron.h"

#define FIRES 5

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    (void)argc;
    (void)argv;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *tab = strrchr(line, '\t');
        if (!tab) {
            printf("error: line without a tab\n");
            continue;
        }
        *tab = '\0';
        char *end;
        int64_t t = strtoll(tab + 1, &end, 10);
        if (end == tab + 1 || *end) {
            printf("error: bad time \"%s\"\n", tab + 1);
            continue;
        }
        hr_cron_t c;
        hr_err_t err = {0};
        if (hr_cron_parse(line, &c, &err)) {
            printf("error: %s\n", err.msg);
            continue;
        }
        for (int i = 0; i < FIRES; i++) {
            int rc = hr_cron_next(&c, t, &t);
            if (rc == HR_ENOTFOUND) {
                printf("%snone", i ? " " : "");
                break;
            }
            if (rc) {
                printf("%serror: %s", i ? " " : "", hr_strerror(rc));
                break;
            }
            printf("%s%" PRId64, i ? " " : "", t);
        }
        printf("\n");
    }
    free(line);
    return ferror(stdout) ? 1 : 0;
}
