/* cli.h: herald's command line. Exit codes: 0 success, 1 runtime failure, 2 usage or
 * configuration error (docs/cli.md). */
#ifndef HR_CLI_H
#define HR_CLI_H

enum { HR_EXIT_OK = 0, HR_EXIT_FAILURE = 1, HR_EXIT_USAGE = 2 };

int hr_cli_main(int argc, char **argv);
/* The operator commands (ops.c): status, events, event, redeliver, replay, emit. */
int hr_cli_is_ops_command(const char *name);
/* Runs the operator command argv[1]; returns the exit code. */
int hr_cli_ops(int argc, char **argv);
/* herald serve: runs until SIGTERM/SIGINT. */
int hr_cli_serve(const char *config_path);

#endif
