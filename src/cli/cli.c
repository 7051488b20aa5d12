/* cli.c: argument parsing and the short commands (version, help, check, apply); the operator
 * commands (status, events, event, redeliver, replay, emit) are in ops.c, serve in serve.c. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/store.h"

/* herald sink (sink.c): a local webhook receiver; argv[0] is "sink". */
int hr_cli_sink(int argc, char **argv);

static const char usage[] =
    "usage: herald <command> [options]\n"
    "\n"
    "commands:\n"
    "  check [-c] FILE     validate a configuration file; touches nothing\n"
    "  apply [-c] FILE     install or update herald's schema, capture and triggers in the\n"
    "                      database (idempotent; prints what changed)\n"
    "  serve [-c FILE]     capture and deliver events until SIGTERM or SIGINT\n"
    "  sink [--listen A]   a local webhook receiver for development and tests (sink --help)\n"
    "  version             print the version\n"
    "  help                print this help\n"
    "\n"
    "operator commands (read and queue directly in the database; serve need not run):\n"
    "  status              per trigger: backlog, delayed, dead, last delivery, lag\n"
    "  events [--trigger T] [--dead | --pending] [--limit N] [--offset N]\n"
    "                      list events, newest first (with --trigger: their delivery state)\n"
    "  event ID            one event, its deliveries and every attempt\n"
    "  redeliver ID [--trigger T]\n"
    "                      deliver an event again, retries counted from 0\n"
    "  replay TRIGGER --from SEQ|TIME [--to SEQ|TIME]\n"
    "                      deliver a range of the log again to one trigger (TIME: RFC 3339)\n"
    "  emit TYPE JSON      append a custom event to the log; prints its id\n"
    "  schedules           the schedules (cron triggers), their next fire times (UTC) and\n"
    "                      the pending one-off events\n"
    "  Each takes -c FILE (default ./herald.yaml when it exists) to find the database, and\n"
    "  --json to print JSON instead of a table.\n"
    "\n"
    "FILE defaults to ./herald.yaml. Environment: HERALD_DATABASE_URL, HERALD_LISTEN,\n"
    "HERALD_LOG_LEVEL override the file. Exit codes: 0 success, 1 runtime failure (including\n"
    "an unknown trigger or event), 2 usage or configuration error. Documentation:\n"
    "docs/cli.md, docs/config.md.\n";

/* Reads "[-c] FILE" (or nothing: ./herald.yaml) from the arguments after the command. */
static int config_arg(int argc, char **argv, const char **path)
{
    *path = NULL;
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            if (*path) return HR_EINVAL;
            *path = argv[++i];
        } else if (argv[i][0] != '-' && !*path) {
            *path = argv[i];
        } else {
            fprintf(stderr, "herald: %s: unexpected argument '%s'\n", argv[1], argv[i]);
            return HR_EINVAL;
        }
    }
    if (!*path) *path = "herald.yaml";
    return 0;
}

static int load(const char *path, hr_config_t **cfg)
{
    hr_err_t err = {0};
    if (hr_config_load(path, cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return HR_EXIT_USAGE;
    }
    return HR_EXIT_OK;
}

static int cmd_check(const char *path)
{
    hr_config_t *cfg = NULL;
    int rc = load(path, &cfg);
    if (rc) return rc;
    printf("ok: %s (%zu trigger%s)\n", path, cfg->ntriggers, cfg->ntriggers == 1 ? "" : "s");
    hr_config_free(cfg);
    return HR_EXIT_OK;
}

/* Collects apply's lines: they are printed once the apply transaction has committed, so that a
 * failed apply (rolled back) never reports changes it did not make. */
static void collect_line(void *ud, const char *line)
{
    hr_buf_t *out = ud;
    hr_buf_puts(out, line);
    hr_buf_putc(out, '\n');
}

static int cmd_apply(const char *path)
{
    hr_config_t *cfg = NULL;
    hr_store_t *st = NULL;
    hr_err_t err = {0};
    hr_buf_t lines = HR_BUF_INIT;
    int rc = load(path, &cfg), defaulted = 0;
    if (rc) return rc;
    char *url = hr_config_database_url(cfg, &defaulted);
    const hr_store_ops_t *ops = hr_store_ops_for_url(url);
    if (defaulted)
        fprintf(stderr, "herald: apply: no database configured in %s: using %s\n", path, url);
    if (!ops) {
        fprintf(stderr, "herald: apply: unsupported database URL (expected postgres://… or "
                        "sqlite:PATH)\n");
        rc = HR_EXIT_USAGE;
        goto out;
    }
    if (ops->open(url, NULL, &st, &err) != 0 ||
        ops->apply(st, cfg, collect_line, &lines, &err) != 0) {
        fprintf(stderr, "herald: apply: %s\n", err.msg);
        if (err.code == HR_ECONFIG) fprintf(stderr, "herald: apply: nothing was changed\n");
        rc = err.code == HR_ECONFIG ? HR_EXIT_USAGE : HR_EXIT_FAILURE;
        goto out;
    }
    fputs(lines.len ? lines.data : "no changes\n", stdout);
out:
    hr_buf_free(&lines);
    if (st) ops->close(st, NULL, NULL);
    free(url);
    hr_config_free(cfg);
    return rc;
}

int hr_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return HR_EXIT_USAGE;
    }
    const char *cmd = argv[1], *path = NULL;
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("herald %s\n", HERALD_VERSION);
        return HR_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return HR_EXIT_OK;
    }
    if (hr_cli_is_ops_command(cmd)) return hr_cli_ops(argc, argv);
    if (strcmp(cmd, "sink") == 0) return hr_cli_sink(argc - 1, argv + 1);
    int is_check = strcmp(cmd, "check") == 0, is_apply = strcmp(cmd, "apply") == 0;
    int is_serve = strcmp(cmd, "serve") == 0;
    if (!is_check && !is_apply && !is_serve) {
        fprintf(stderr, "herald: unknown command '%s'\n\n%s", cmd, usage);
        return HR_EXIT_USAGE;
    }
    if (config_arg(argc, argv, &path) != 0) return HR_EXIT_USAGE;
    if (is_check) return cmd_check(path);
    if (is_apply) return cmd_apply(path);
    return hr_cli_serve(path);
}
