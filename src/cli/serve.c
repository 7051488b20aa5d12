/* serve.c: `herald serve` — open the store, start the dispatcher, stop cleanly on a signal.
 *
 * Start: config → store (on the loop) → stored definitions → dispatcher → "msg=ready".
 * Stop (SIGTERM or SIGINT): the dispatcher finishes the pages in flight within shutdown_grace,
 * then the store closes, then the signal handles, and the loop runs out. A second signal
 * during the grace period exits at once (events in flight are delivered again next start). */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/log.h"
#include "dispatch/dispatcher.h"
#include "store/store.h"

typedef struct server {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    const hr_store_ops_t *ops;
    hr_store_t *store;
    hr_dispatcher_t *dispatcher;
    uint64_t grace_ms;
    int signals;
} server_t;

static void on_store_closed(void *ud)
{
    server_t *s = ud;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
}

static void on_dispatcher_closed(void *ud)
{
    server_t *s = ud;
    s->dispatcher = NULL;
    s->ops->close(s->store, on_store_closed, s);
}

/* The store saw the database change (SQLite: another process wrote the file): read now. */
static void on_store_wakeup(void *ud)
{
    server_t *s = ud;
    hr_dispatcher_wake(s->dispatcher);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server_t *s = h->data;
    if (++s->signals > 1) {
        hr_log(HR_LOG_WARN, "msg=\"second signal: exiting now\"");
        exit(HR_EXIT_FAILURE);
    }
    hr_log(HR_LOG_INFO, "msg=\"signal received\" signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (s->ops->set_wakeup) s->ops->set_wakeup(s->store, NULL, NULL);
    hr_dispatcher_close(s->dispatcher, s->grace_ms, on_dispatcher_closed, s);
}

/* Warns when the file's triggers differ from the stored ones (apply not run). */
static void warn_drift(const hr_config_t *cfg, const hr_trigger_def_t *defs, size_t n)
{
    for (size_t i = 0; i < cfg->ntriggers; i++) {
        const hr_trigger_def_t *want = &cfg->triggers[i];
        const hr_trigger_def_t *have = NULL;
        for (size_t k = 0; k < n && !have; k++)
            if (strcmp(defs[k].name, want->name) == 0) have = &defs[k];
        json_t *a = hr_trigger_def_to_json(want), *b = have ? hr_trigger_def_to_json(have) : NULL;
        if (!b || !json_equal(a, b))
            hr_log(HR_LOG_WARN, "trigger=%s msg=\"%s in %s but not in the database: run herald apply\"",
                   want->name, b ? "changed" : "defined", cfg->path);
        json_decref(a);
        json_decref(b);
    }
}

int hr_cli_serve(const char *config_path)
{
    hr_config_t *cfg = NULL;
    hr_err_t err = {0};
    hr_trigger_def_t *defs = NULL;
    size_t ndefs = 0;
    int rc = HR_EXIT_OK;
    server_t s;
    memset(&s, 0, sizeof s);

    if (hr_config_load(config_path, &cfg, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return HR_EXIT_USAGE;
    }
    hr_log_threshold = cfg->log_level;
    s.grace_ms = cfg->shutdown_grace_ms;
    int defaulted = 0;
    char *url = hr_config_database_url(cfg, &defaulted);
    if (defaulted)
        hr_log(HR_LOG_INFO, "msg=\"no database configured: using the embedded default\" "
               "database=%s config=%s", url, config_path);
    s.ops = hr_store_ops_for_url(url);
    if (!s.ops) {
        fprintf(stderr, "herald: serve: unsupported database URL (expected postgres://… or "
                        "sqlite:PATH)\n");
        free(url);
        hr_config_free(cfg);
        return HR_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&s.loop);
    if (s.ops->open(url, &s.loop, &s.store, &err) != 0 ||
        s.ops->load_triggers(s.store, &defs, &ndefs, &err) != 0) {
        hr_log(HR_LOG_ERROR, "msg=\"cannot start\" error=\"%s\"", err.msg);
        fprintf(stderr, "herald: serve: %s\n", err.msg);
        rc = HR_EXIT_FAILURE;
        if (s.store) s.ops->close(s.store, NULL, NULL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        goto out;
    }
    warn_drift(cfg, defs, ndefs);
    if (hr_dispatcher_init(&s.loop, s.ops, s.store, defs, ndefs, NULL, &s.dispatcher, &err) != 0) {
        fprintf(stderr, "herald: serve: %s\n", err.msg);
        s.ops->close(s.store, NULL, NULL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        rc = HR_EXIT_FAILURE;
        goto out;
    }
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    if (s.ops->set_wakeup) s.ops->set_wakeup(s.store, on_store_wakeup, &s);
    hr_log(HR_LOG_INFO, "msg=ready version=%s backend=%s triggers=%zu", HERALD_VERSION, s.ops->name,
           ndefs);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    hr_log(HR_LOG_INFO, "msg=stopped");
out:
    free(url);
    uv_loop_close(&s.loop);
    for (size_t i = 0; i < ndefs; i++) hr_trigger_def_clear(&defs[i]);
    free(defs);
    hr_config_free(cfg);
    return rc;
}
