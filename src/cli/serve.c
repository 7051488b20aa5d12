/* serve.c: `herald serve` — open the store, start the HTTP API and the dispatcher, stop cleanly
 * on a signal.
 *
 * Start: config → the listen address is allowed (no admin secret: loopback only; else exit 2)
 * → store (on the loop) → stored definitions → HTTP server and its routes (a busy port: exit 1)
 * → dispatcher → "msg=ready".
 * Stop (SIGTERM or SIGINT): the HTTP server closes at once (no new connections; requests still
 * waiting for an answer are orphaned) while the dispatcher finishes the pages in flight within
 * shutdown_grace; once both are done the store closes; once the store and the API's own state
 * (ops.c, which may wait for a readiness check the store cancels) are released, the signal
 * handles close and the loop runs out. A second signal during the grace period exits at once
 * (events in flight are delivered again next start). */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "api/api.h"
#include "config/config.h"
#include "core/log.h"
#include "dispatch/dispatcher.h"
#include "store/store.h"

/* Limits of the HTTP API (docs/api.md). Metadata bodies are small: a replace_metadata of a few
 * hundred triggers is well under the body cap. */
#define API_MAX_BODY (1024 * 1024)
#define API_MAX_HEADER (8 * 1024)      /* request line (URL) and headers together */
#define API_REQUEST_TIMEOUT_MS 10000   /* for the headers, then again for the body */
#define API_KEEPALIVE_TIMEOUT_MS 30000 /* an idle kept-alive connection is closed after */

typedef struct server {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    const hr_store_ops_t *ops;
    hr_store_t *store;
    hr_dispatcher_t *dispatcher;
    hr_server_t *http; /* NULL with listen: off, and once closing */
    hr_api_ctx_t api;
    uint64_t grace_ms;
    int signals;
    int before_store; /* the dispatcher and the HTTP server, until each has closed */
    int before_exit;  /* the store and the API's state, until each is released */
} server_t;

static void on_released(void *ud)
{
    server_t *s = ud;
    if (--s->before_exit > 0) return;
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
}

static void on_closed_before_store(void *ud)
{
    server_t *s = ud;
    if (--s->before_store > 0) return;
    s->ops->close(s->store, on_released, s);
}

static void on_dispatcher_closed(void *ud)
{
    server_t *s = ud;
    s->dispatcher = NULL;
    s->api.dispatcher = NULL;
    on_closed_before_store(s);
}

/* The HTTP server has closed (its WebSocket sessions ended): GraphQL's service goes next. */
static void on_http_closed(void *ud)
{
    server_t *s = ud;
    hr_graphql_close(&s->api);
    on_closed_before_store(s);
}

/* Stops the HTTP API: the server first (no handler runs after it), then the API's state. */
static void close_http(server_t *s)
{
    if (!s->http) return;
    hr_server_close(s->http, on_http_closed, s);
    s->http = NULL;
    hr_ops_close(&s->api, on_released, s);
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
    hr_log(HR_LOG_INFO, "msg=\"signal received\" signal=%s",
           signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (s->ops->set_wakeup) s->ops->set_wakeup(s->store, NULL, NULL);
    close_http(s);
    hr_dispatcher_close(s->dispatcher, s->grace_ms, on_dispatcher_closed, s);
}

/* 1 when the host of a listen address is a loopback one: 127.0.0.0/8, ::1 (also as
 * ::ffff:127.x.y.z) or localhost. A name other than localhost could resolve to anything. */
static int is_loopback(const char *listen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : 0;
    if (n >= 2 && listen[0] == '[' && listen[n - 1] == ']') {
        listen++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof host) return 0;
    memcpy(host, listen, n);
    host[n] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* Starts the HTTP API on cfg->listen (the caller checked it is allowed): HR_EIO when the address
 * cannot be bound, HR_EINVAL for an address the server cannot use. */
static int start_http(server_t *s, const hr_config_t *cfg, const char *url, hr_err_t *err)
{
    hr_server_opts_t o = {
        .listen = cfg->listen,
        .max_body = API_MAX_BODY,
        .max_header = API_MAX_HEADER,
        .request_timeout_ms = API_REQUEST_TIMEOUT_MS,
        .keepalive_timeout_ms = API_KEEPALIVE_TIMEOUT_MS,
    };
    s->api.loop = &s->loop;
    s->api.ops = s->ops;
    s->api.store = s->store;
    s->api.admin_secret = cfg->admin_secret;
    s->api.database_url = url;
    int rc = hr_server_init(&s->loop, &o, &s->http, err);
    if (rc) return rc;
    if ((rc = hr_ops_register(s->http, &s->api, err)) ||
        (rc = hr_metadata_register(s->http, &s->api, err)) ||
        (rc = hr_graphql_register(s->http, &s->api, err))) {
        close_http(s); /* calls the counters down: the caller runs the loop out */
        return rc;
    }
    return 0;
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
            hr_log(HR_LOG_WARN,
                   "trigger=%s msg=\"%s in %s but not in the database: run herald apply\"",
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
    int listening = strcasecmp(cfg->listen, "off") != 0;
    if (listening && !cfg->admin_secret && !is_loopback(cfg->listen)) {
        fprintf(stderr,
                "herald: serve: refusing to listen on %s without an admin secret: set "
                "HERALD_ADMIN_SECRET (or admin_secret in %s), or listen on a loopback address "
                "such as 127.0.0.1:8080\n",
                cfg->listen, config_path);
        hr_config_free(cfg);
        return HR_EXIT_USAGE;
    }
    int defaulted = 0;
    char *url = hr_config_database_url(cfg, &defaulted);
    if (defaulted)
        hr_log(HR_LOG_INFO,
               "msg=\"no database configured: using the embedded default\" "
               "database=%s config=%s",
               url, config_path);
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
    /* Until the signal handles exist, before_exit counts only what must be released. */
    s.before_store = 1 + listening;
    s.before_exit = 1 + listening;
    if (listening && (rc = start_http(&s, cfg, url, &err)) != 0) {
        fprintf(stderr, "herald: serve: %s%s\n", err.msg,
                strstr(err.msg, "in use") ? " (another process holds the port: stop it, or set "
                                            "listen or HERALD_LISTEN)"
                                          : "");
        hr_log(HR_LOG_ERROR, "msg=\"cannot start the HTTP API\" error=\"%s\"", err.msg);
        rc = rc == HR_EIO ? HR_EXIT_FAILURE : HR_EXIT_USAGE;
        if (s.http) close_http(&s);
        s.ops->close(s.store, NULL, NULL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        goto out;
    }
    if (hr_dispatcher_init(&s.loop, s.ops, s.store, defs, ndefs, NULL, &s.dispatcher, &err) != 0) {
        fprintf(stderr, "herald: serve: %s\n", err.msg);
        close_http(&s);
        s.ops->close(s.store, NULL, NULL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        rc = HR_EXIT_FAILURE;
        goto out;
    }
    s.api.dispatcher = s.dispatcher;
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    s.sigterm.data = s.sigint.data = &s;
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    if (s.ops->set_wakeup) s.ops->set_wakeup(s.store, on_store_wakeup, &s);
    char where[80] = "off";
    if (s.http) {
        /* The address with the port actually bound (listen: host:0 picks a free one). */
        const char *colon = strrchr(cfg->listen, ':');
        snprintf(where, sizeof where, "%.*s:%d", (int)(colon - cfg->listen), cfg->listen,
                 hr_server_port(s.http));
    }
    hr_log(HR_LOG_INFO, "msg=ready version=%s backend=%s triggers=%zu listen=%s", HERALD_VERSION,
           s.ops->name, ndefs, where);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    hr_log(HR_LOG_INFO, "msg=stopped");
out:
    free(url);
    uv_loop_close(&s.loop);
    for (size_t i = 0; i < ndefs; i++)
        hr_trigger_def_clear(&defs[i]);
    free(defs);
    hr_config_free(cfg);
    return rc;
}
