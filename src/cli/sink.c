/* sink.c: `herald sink` — a local webhook receiver for development, tests and benchmarks.
 *
 * It answers every request, whatever its method and path, on herald's own HTTP server
 * (api/server.h): 200 {"ok":true}, or the failure status on demand (--status, --fail-rate),
 * after an optional --delay. With --secret it checks Standard Webhooks signatures first and
 * answers 401 to a missing, stale or wrong one. Each request prints one line to stdout:
 *
 *   2026-11-23T12:00:00.123Z status=200 event=5c0e… trigger=orders op=INSERT attempt=1 path=/o
 *
 * (Hasura-shaped bodies; CloudEvents print type, anything else method, path and size). Lines
 * are buffered and written once per loop iteration, so a busy sink makes one write per batch.
 * --count prints totals once a second and at exit. SIGINT/SIGTERM: answer the delayed requests
 * at once, close the server, print the final total, exit 0. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "api/server.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "dispatch/sign.h"

#define TOLERANCE_S 300 /* Standard Webhooks timestamp tolerance */
#define SIG_CAP 64

static const char sink_usage[] =
    "usage: herald sink [--listen HOST:PORT] [--status CODE] [--fail-rate F] [--delay DURATION]\n"
    "                   [--secret whsec_...] [--quiet] [--count]\n"
    "\n"
    "A local webhook receiver: prints one line per request and answers 200, or fails on demand.\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:9000; port 0 picks one)\n"
    "  --status CODE       failure status (200-599, default 503); alone, every request gets it\n"
    "  --fail-rate F       fraction of requests (0 to 1, random) answered with the failure status\n"
    "  --delay DURATION    answer every request after DURATION (250ms, 2s, ...)\n"
    "  --secret SECRET     verify Standard Webhooks signatures; answer 401 to bad ones\n"
    "  --quiet             print nothing per request\n"
    "  --count             print running totals once a second, and a final total\n";

typedef struct sink {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_check_t flush; /* writes the lines of one loop iteration at once */
    uv_timer_t tick;  /* --count: once a second */
    hr_server_t *srv;
    /* options */
    const char *listen;
    int fail_status;
    double fail_rate; /* -1: not given */
    int status_given;
    uint64_t delay_ms;
    const char *secret;
    int quiet, count;
    /* state */
    uint64_t rng;
    uint64_t total, ok, failed, rejected, last_total;
    int dirty; /* stdout has unflushed lines */
    int stopping;
    struct delayed *delayed; /* requests waiting for --delay */
} sink_t;

/* A request answered after --delay. */
typedef struct delayed {
    uv_timer_t timer;
    sink_t *sink;
    hr_request_t *req;
    int status;
    struct delayed *prev, *next;
} delayed_t;

/* ---- options -------------------------------------------------------------------------------- */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("herald sink: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(herald sink --help for usage)\n", stderr);
    va_end(ap);
    return HR_EXIT_USAGE;
}

/* Takes the value of option argv[*i] ("--x v" or "--x=v"). */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    *missing = 0;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int is_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

static int parse_args(sink_t *s, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int missing = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(sink_usage, stdout);
            exit(HR_EXIT_OK);
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            s->quiet = 1;
        } else if (!strcmp(a, "--count")) {
            s->count = 1;
        } else if (is_opt(a, "--listen")) {
            v = opt_value(argc, argv, &i, "--listen", &missing);
            if (!missing) s->listen = v;
        } else if (is_opt(a, "--status")) {
            v = opt_value(argc, argv, &i, "--status", &missing);
            if (!missing) {
                char *end;
                long st = strtol(v, &end, 10);
                if (!*v || *end || st < 200 || st > 599)
                    return usage_error(
                        "--status: expected an HTTP status from 200 to 599, got '%s'", v);
                s->fail_status = (int)st;
                s->status_given = 1;
            }
        } else if (is_opt(a, "--fail-rate")) {
            v = opt_value(argc, argv, &i, "--fail-rate", &missing);
            if (!missing) {
                char *end;
                errno = 0;
                double r = strtod(v, &end);
                if (!*v || *end || errno || !(r >= 0 && r <= 1))
                    return usage_error("--fail-rate: expected a number from 0 to 1, got '%s'", v);
                s->fail_rate = r;
            }
        } else if (is_opt(a, "--delay")) {
            v = opt_value(argc, argv, &i, "--delay", &missing);
            if (!missing && hr_duration_parse(v, &s->delay_ms) != 0)
                return usage_error("--delay: expected a duration (250ms, 2s, 1m), got '%s'", v);
        } else if (is_opt(a, "--secret")) {
            v = opt_value(argc, argv, &i, "--secret", &missing);
            if (!missing) {
                char sig[SIG_CAP];
                hr_err_t err = {0};
                if (hr_sign_webhook(v, "probe", 0, "", 0, sig, sizeof sig, &err) != 0)
                    return usage_error("--secret: %s", err.msg);
                s->secret = v;
            }
        } else {
            return usage_error("unknown argument '%s'", a);
        }
        if (missing) return usage_error("%s needs a value", a);
    }
    return 0;
}

/* ---- output -----------------------------------------------------------------------------------
 */

/* "2026-11-23T12:00:00.123Z" into out (at least 32 bytes). */
static void now_rfc3339_ms(char *out, size_t cap)
{
    hr_format_rfc3339_us(hr_wall_us(), out, cap);
    char *dot = strchr(out, '.');
    if (dot && strlen(dot) >= 5) memcpy(dot + 4, "Z", 2);
}

/* Prints s with control characters and spaces replaced, so a line stays one line of words. */
static void put_word(const char *s, size_t max)
{
    size_t n = 0;
    for (; *s && n < max; s++, n++)
        fputc((unsigned char)*s <= ' ' || *s == 0x7f ? '_' : *s, stdout);
    if (*s) fputs("...", stdout);
}

static void print_request(sink_t *s, hr_request_t *req, int status, const char *why)
{
    char ts[40];
    size_t len;
    const char *body = hr_request_body(req, &len);
    now_rfc3339_ms(ts, sizeof ts);
    printf("%s status=%d", ts, status);

    json_t *j = len && body[0] == '{' ? json_loadb(body, len, 0, NULL) : NULL;
    const char *id = j ? json_string_value(json_object_get(j, "id")) : NULL;
    json_t *trigger = j ? json_object_get(j, "trigger") : NULL;
    json_t *event = j ? json_object_get(j, "event") : NULL;
    json_t *info = j ? json_object_get(j, "delivery_info") : NULL;
    const char *ce_type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    if (id && json_is_object(trigger) && json_is_object(event)) {
        /* Hasura-compatible payload. */
        const char *name = json_string_value(json_object_get(trigger, "name"));
        const char *op = json_string_value(json_object_get(event, "op"));
        json_t *retry = json_is_object(info) ? json_object_get(info, "current_retry") : NULL;
        fputs(" event=", stdout);
        put_word(id, 64);
        fputs(" trigger=", stdout);
        put_word(name ? name : "?", 64);
        fputs(" op=", stdout);
        put_word(op ? op : "?", 32);
        if (json_is_integer(retry))
            printf(" attempt=%" JSON_INTEGER_FORMAT, json_integer_value(retry) + 1);
        fputs(" path=", stdout);
        put_word(hr_request_path(req), 200);
    } else if (id && ce_type && json_object_get(j, "specversion")) {
        /* CloudEvents (structured). */
        fputs(" event=", stdout);
        put_word(id, 64);
        fputs(" type=", stdout);
        put_word(ce_type, 64);
        fputs(" path=", stdout);
        put_word(hr_request_path(req), 200);
    } else {
        printf(" method=%s path=", hr_request_method(req));
        put_word(hr_request_path(req), 200);
        printf(" bytes=%zu", len);
    }
    json_decref(j);
    if (why) printf(" reject=\"%s\"", why);
    fputc('\n', stdout);
    s->dirty = 1;
}

static void on_flush(uv_check_t *h)
{
    sink_t *s = h->data;
    if (!s->dirty) return;
    s->dirty = 0;
    fflush(stdout);
}

static void print_counts(sink_t *s, const char *first)
{
    printf("%s=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64 " rejected=%" PRIu64, first, s->total,
           s->ok, s->failed, s->rejected);
}

static void on_tick(uv_timer_t *t)
{
    sink_t *s = t->data;
    char ts[40];
    now_rfc3339_ms(ts, sizeof ts);
    printf("%s ", ts);
    print_counts(s, "count");
    printf(" rate=%" PRIu64 "/s\n", s->total - s->last_total);
    s->last_total = s->total;
    fflush(stdout); /* timers run before the poll: the flush check would wait a whole tick */
    s->dirty = 0;
}

/* ---- verification ------------------------------------------------------------------------- */

/* Returns NULL when the request carries a valid signature, else why not. */
static const char *verify(sink_t *s, hr_request_t *req)
{
    const char *id = hr_request_header(req, "webhook-id");
    const char *ts = hr_request_header(req, "webhook-timestamp");
    const char *sigs = hr_request_header(req, "webhook-signature");
    if (!id || !*id) return "missing webhook-id header";
    if (!ts || !*ts) return "missing webhook-timestamp header";
    if (!sigs || !*sigs) return "missing webhook-signature header";
    char *end;
    errno = 0;
    long long t = strtoll(ts, &end, 10);
    if (*end || errno || t < 0) return "webhook-timestamp is not a number";
    long long now = (long long)(hr_wall_us() / 1000000);
    if (t < now - TOLERANCE_S) return "webhook-timestamp too old (more than 5 minutes)";
    if (t > now + TOLERANCE_S) return "webhook-timestamp too far in the future";

    size_t len;
    const char *body = hr_request_body(req, &len);
    char expect[SIG_CAP];
    if (hr_sign_webhook(s->secret, id, (int64_t)t, body, len, expect, sizeof expect, NULL) != 0)
        return "cannot compute the signature";
    size_t elen = strlen(expect);
    /* A space-separated list of "v1,<base64>"; other versions are skipped. */
    int match = 0, v1 = 0;
    for (const char *p = sigs; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        if (n > 3 && strncmp(p, "v1,", 3) == 0) {
            v1 = 1;
            if (n == elen && CRYPTO_memcmp(p, expect, elen) == 0) match = 1;
        }
        p = e;
    }
    OPENSSL_cleanse(expect, sizeof expect);
    if (match) return NULL;
    return v1 ? "signature mismatch" : "no v1 signature in webhook-signature";
}

/* ---- answering ------------------------------------------------------------------------------ */

static const char OK_BODY[] = "{\"ok\":true}\n";

static void answer(hr_request_t *req, int status, const char *why)
{
    char body[256];
    if (status >= 200 && status < 300) {
        hr_response_send(req, status, "application/json", OK_BODY, sizeof OK_BODY - 1);
        return;
    }
    int n = snprintf(body, sizeof body, "{\"ok\":false,\"error\":\"%s\"}\n",
                     why ? why : "failure requested by herald sink");
    hr_response_send(req, status, "application/json", body, (size_t)n);
}

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void delayed_unlink(delayed_t *d)
{
    sink_t *s = d->sink;
    if (d->prev)
        d->prev->next = d->next;
    else
        s->delayed = d->next;
    if (d->next) d->next->prev = d->prev;
}

static void on_delay(uv_timer_t *t)
{
    delayed_t *d = t->data;
    delayed_unlink(d);
    answer(d->req, d->status, NULL);
    uv_close((uv_handle_t *)t, on_delayed_closed);
}

/* xorshift64*: fast, good enough to pick which requests fail. */
static double rnd(sink_t *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void on_request(hr_request_t *req, void *ud)
{
    sink_t *s = ud;
    const char *why = s->secret ? verify(s, req) : NULL;
    int status = 200;
    if (why)
        status = 401;
    else if (s->fail_rate >= 0 ? rnd(s) < s->fail_rate : s->status_given)
        status = s->fail_status;

    s->total++;
    if (status == 401 && why)
        s->rejected++;
    else if (status >= 200 && status < 300)
        s->ok++;
    else
        s->failed++;
    if (!s->quiet) print_request(s, req, status, why);

    if (!s->delay_ms || s->stopping) {
        answer(req, status, why);
        return;
    }
    delayed_t *d = hr_xcalloc(1, sizeof *d);
    d->sink = s;
    d->req = req;
    d->status = status;
    d->next = s->delayed;
    if (s->delayed) s->delayed->prev = d;
    s->delayed = d;
    uv_timer_init(&s->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_delay, s->delay_ms, 0);
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void on_server_closed(void *ud)
{
    sink_t *s = ud;
    s->srv = NULL;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->flush, NULL);
    if (s->count) uv_close((uv_handle_t *)&s->tick, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sink_t *s = h->data;
    if (s->stopping) return;
    s->stopping = 1;
    /* Answer what waits for --delay now, then close. */
    while (s->delayed) {
        delayed_t *d = s->delayed;
        delayed_unlink(d);
        uv_timer_stop(&d->timer);
        answer(d->req, d->status, NULL);
        uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
    }
    hr_server_close(s->srv, on_server_closed, s);
}

int hr_cli_sink(int argc, char **argv)
{
    sink_t s;
    memset(&s, 0, sizeof s);
    s.listen = "127.0.0.1:9000";
    s.fail_status = 503;
    s.fail_rate = -1;
    int rc = parse_args(&s, argc, argv);
    if (rc) return rc;
    if (s.fail_rate >= 0 && !s.status_given) s.fail_status = 503;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    s.rng = (uint64_t)hr_wall_us() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    if (!s.rng) s.rng = 1;

    uv_loop_init(&s.loop);
    hr_err_t err = {0};
    hr_server_opts_t opts = {.listen = s.listen, .server_name = "herald-sink"};
    if (hr_server_init(&s.loop, &opts, &s.srv, &err) != 0) {
        fprintf(stderr, "herald sink: %s\n", err.msg);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        uv_loop_close(&s.loop);
        return err.code == HR_EINVAL ? HR_EXIT_USAGE : HR_EXIT_FAILURE;
    }
    hr_server_fallback(s.srv, on_request, &s);

    uv_signal_init(&s.loop, &s.sigint);
    uv_signal_init(&s.loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    uv_check_init(&s.loop, &s.flush);
    s.flush.data = &s;
    uv_check_start(&s.flush, on_flush);
    if (s.count) {
        uv_timer_init(&s.loop, &s.tick);
        s.tick.data = &s;
        uv_timer_start(&s.tick, on_tick, 1000, 1000);
    }

    char fail[64] = "none";
    if (s.fail_rate >= 0)
        snprintf(fail, sizeof fail, "%g:%d", s.fail_rate, s.fail_status);
    else if (s.status_given)
        snprintf(fail, sizeof fail, "all:%d", s.fail_status);
    /* The URL to paste into a webhook: the listen host (loopback for a wildcard), real port. */
    char host[128];
    const char *colon = strrchr(s.listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - s.listen), s.listen);
    if (!host[0] || !strcmp(host, "*") || !strcmp(host, "0.0.0.0"))
        snprintf(host, sizeof host, "127.0.0.1");
    if (!strcmp(host, "[::]")) snprintf(host, sizeof host, "[::1]");
    hr_log(HR_LOG_INFO, "msg=ready url=http://%s:%d/ fail=%s delay_ms=%" PRIu64 " verify=%s", host,
           hr_server_port(s.srv), fail, s.delay_ms, s.secret ? "on" : "off");
    uv_run(&s.loop, UV_RUN_DEFAULT);

    if (s.count) {
        print_counts(&s, "total");
        fputc('\n', stdout);
    }
    fflush(stdout);
    uv_loop_close(&s.loop);
    return HR_EXIT_OK;
}
