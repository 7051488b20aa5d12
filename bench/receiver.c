/* receiver.c: a fast webhook receiver for bench/e2e.sh, on libuv.
 *
 * It speaks just enough HTTP/1.1 for herald: keep-alive connections, requests read as headers
 * up to "\r\n\r\n" plus a Content-Length body (pipelined requests are handled in order), every
 * request answered "200 ok". "Expect: 100-continue" gets its interim answer; a chunked body is
 * refused with 411 and counted as an error.
 *
 * For every request it looks in the body for the row's `"t_us": <digits>` (the row's insert time,
 * µs since the epoch, CLOCK_REALTIME on the same machine) and for the row id (the first `"id":`
 * after `"new":`), and records
 *   - latency = arrival time (CLOCK_REALTIME, when the whole body has arrived) - t_us;
 *   - the row id in a bitmap, to tell distinct rows from redeliveries (at-least-once).
 *
 * Usage: receiver --port P --out FILE [--status FILE] [--expect N] [--samples FILE]
 *   --out     the summary (key=value lines, see write_summary) is written here, atomically
 *             (tmp + rename), when --expect distinct rows have arrived, on SIGUSR2, and on
 *             SIGTERM/SIGINT (then the receiver exits).
 *   --status  if given, "requests=… distinct=… last_us=…" is rewritten every 100 ms while it
 *             changes: cheap progress for the script to poll (no sorting).
 *   --expect  distinct rows that complete a phase; 0 = never write on its own.
 *   --samples with every summary, also writes "arrival_us latency_us row_id" per request to this
 *             file (bench/e2e.sh joins it with commit timestamps; also for plots).
 *   SIGUSR1   resets every counter and sample: the start of a new phase.
 *
 * Build: gcc -O2 bench/receiver.c $(pkg-config --cflags --libs libuv) -o receiver */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#define HEADER_CAP (16 * 1024)     /* a request's headers may not exceed this */
#define BODY_CAP (8 * 1024 * 1024) /* nor its body this */
#define READ_CHUNK (64 * 1024)

static const char RESP_OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static const char RESP_CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char RESP_411[] =
    "HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
static const char RESP_413[] =
    "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* One client connection and its unparsed input. */
typedef struct conn {
    uv_tcp_t tcp;
    char *buf;     /* bytes received and not yet consumed */
    size_t len;    /* bytes in buf */
    size_t cap;    /* allocated size of buf */
    int continued; /* a "100 Continue" was already sent for the request at the head of buf */
    int closing;
} conn_t;

/* A write that could not complete at once: owns a copy of the bytes. */
typedef struct wreq {
    uv_write_t req;
    uv_buf_t b;
} wreq_t;

/* Everything measured in the current phase. */
static struct {
    uint64_t requests; /* requests answered, redeliveries included */
    uint64_t distinct; /* distinct row ids seen */
    uint64_t dups;     /* requests for a row id seen before in this phase */
    uint64_t no_tus;   /* requests without a parsable t_us (not in the latency figures) */
    uint64_t no_id;    /* requests without a parsable row id */
    uint64_t errors;   /* malformed or refused requests */
    int64_t first_us;  /* arrival of the first request; 0 = none yet */
    int64_t last_us;   /* arrival of the request that brought the latest new row id */
    int64_t *lat;      /* latency samples, µs */
    int64_t *arr;      /* arrival time of each latency sample, µs since the epoch */
    int64_t *ids;      /* row id of each latency sample; -1 if none was found */
    size_t nlat, caplat;
    uint8_t *seen; /* bitmap of row ids */
    size_t seen_bytes;
    int expect_written;       /* the --expect summary was written for this phase */
    uint64_t status_requests; /* requests at the last status write */
} st;

static uint64_t expect_rows;
static const char *out_path;
static const char *status_path;
static const char *samples_path;
static uv_loop_t *loop;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "receiver: out of memory\n");
        abort();
    }
    return q;
}

static void reset_phase(void)
{
    free(st.lat);
    free(st.arr);
    free(st.ids);
    free(st.seen);
    memset(&st, 0, sizeof st);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in ms. */
static double pct_ms(const int64_t *s, size_t n, double p)
{
    if (n == 0) return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)s[rank - 1] / 1000.0;
}

static void write_file_atomic(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "receiver: %s: %s\n", tmp, strerror(errno));
        return;
    }
    fputs(text, f);
    fclose(f);
    if (rename(tmp, path) != 0) fprintf(stderr, "receiver: rename %s: %s\n", path, strerror(errno));
}

static void write_summary(void)
{
    if (!out_path) return;
    int64_t *s = NULL;
    if (st.nlat) {
        s = xrealloc(NULL, st.nlat * sizeof *s);
        memcpy(s, st.lat, st.nlat * sizeof *s);
        qsort(s, st.nlat, sizeof *s, cmp_i64);
    }
    char text[1024];
    snprintf(text, sizeof text,
             "requests=%" PRIu64 "\ndistinct=%" PRIu64 "\nduplicates=%" PRIu64 "\nno_t_us=%" PRIu64
             "\nno_id=%" PRIu64 "\nerrors=%" PRIu64 "\nfirst_us=%" PRId64 "\nlast_us=%" PRId64
             "\nsamples=%zu\nlat_p50_ms=%.3f\nlat_p90_ms=%.3f"
             "\nlat_p99_ms=%.3f\nlat_max_ms=%.3f\nlat_min_ms=%.3f\n",
             st.requests, st.distinct, st.dups, st.no_tus, st.no_id, st.errors, st.first_us,
             st.last_us, st.nlat, pct_ms(s, st.nlat, 50), pct_ms(s, st.nlat, 90),
             pct_ms(s, st.nlat, 99), st.nlat ? (double)s[st.nlat - 1] / 1000.0 : 0.0,
             st.nlat ? (double)s[0] / 1000.0 : 0.0);
    free(s);
    if (samples_path) {
        FILE *f = fopen(samples_path, "w");
        if (f) {
            for (size_t i = 0; i < st.nlat; i++)
                fprintf(f, "%" PRId64 " %" PRId64 " %" PRId64 "\n", st.arr[i], st.lat[i],
                        st.ids[i]);
            fclose(f);
        } else {
            fprintf(stderr, "receiver: %s: %s\n", samples_path, strerror(errno));
        }
    }
    write_file_atomic(out_path, text);
}

/* Parses the digits after `key` (optionally followed by spaces) in [p, end). */
static int find_int_after(const char *p, const char *end, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    const char *k = memmem(p, (size_t)(end - p), key, klen);
    if (!k) return -1;
    const char *q = k + klen;
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    int neg = 0;
    if (q < end && *q == '-') neg = 1, q++;
    if (q >= end || *q < '0' || *q > '9') return -1;
    int64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9')
        v = v * 10 + (*q++ - '0');
    *out = neg ? -v : v;
    return 0;
}

static void record(const char *body, size_t n)
{
    int64_t t = now_us();
    const char *end = body + n;
    st.requests++;
    if (!st.first_us) st.first_us = t;

    const char *nw = memmem(body, n, "\"new\":", 6);
    int64_t id;
    if (!nw || find_int_after(nw, end, "\"id\":", &id) != 0 || id < 0) id = -1;

    int64_t tus;
    if (find_int_after(body, end, "\"t_us\":", &tus) == 0) {
        if (st.nlat == st.caplat) {
            st.caplat = st.caplat ? st.caplat * 2 : 65536;
            st.lat = xrealloc(st.lat, st.caplat * sizeof *st.lat);
            st.arr = xrealloc(st.arr, st.caplat * sizeof *st.arr);
            st.ids = xrealloc(st.ids, st.caplat * sizeof *st.ids);
        }
        st.arr[st.nlat] = t;
        st.ids[st.nlat] = id;
        st.lat[st.nlat++] = t - tus;
    } else {
        st.no_tus++;
    }

    if (id >= 0) {
        size_t byte = (size_t)id >> 3;
        if (byte >= st.seen_bytes) {
            size_t nb = st.seen_bytes ? st.seen_bytes : 1 << 16;
            while (nb <= byte)
                nb *= 2;
            st.seen = xrealloc(st.seen, nb);
            memset(st.seen + st.seen_bytes, 0, nb - st.seen_bytes);
            st.seen_bytes = nb;
        }
        uint8_t bit = (uint8_t)(1u << (id & 7));
        if (st.seen[byte] & bit) {
            st.dups++;
        } else {
            st.seen[byte] |= bit;
            st.distinct++;
            st.last_us = t;
        }
    } else {
        st.no_id++;
        st.last_us = t;
    }

    if (expect_rows && !st.expect_written && st.distinct >= expect_rows) {
        st.expect_written = 1;
        write_summary();
    }
}

static void on_close(uv_handle_t *h)
{
    conn_t *c = h->data;
    free(c->buf);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_written(uv_write_t *req, int status)
{
    wreq_t *w = (wreq_t *)req;
    (void)status;
    free(w->b.base);
    free(w);
}

/* Sends bytes: at once if the socket takes them, else through a queued write that owns a copy. */
static void send_bytes(conn_t *c, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == (int)n) return;
    if (r < 0 && r != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t done = r > 0 ? (size_t)r : 0;
    wreq_t *w = xrealloc(NULL, sizeof *w);
    w->b.len = n - done;
    w->b.base = xrealloc(NULL, w->b.len);
    memcpy(w->b.base, p + done, w->b.len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->b, 1, on_written) != 0) {
        free(w->b.base);
        free(w);
        conn_close(c);
    }
}

/* Finds header `name` (case-insensitive, at a line start) in [h, h+n); returns its value. */
static const char *header_value(const char *h, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = h + n;
    const char *line = memchr(h, '\n', n); /* skip the request line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) eol = end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}

/* Consumes every complete request at the head of c->buf. */
static void process(conn_t *c)
{
    size_t off = 0;
    while (!c->closing) {
        const char *p = c->buf + off;
        size_t avail = c->len - off;
        const char *hend = memmem(p, avail, "\r\n\r\n", 4);
        if (!hend) {
            if (avail > HEADER_CAP) {
                st.errors++;
                send_bytes(c, RESP_413, sizeof RESP_413 - 1);
                conn_close(c);
            }
            break;
        }
        size_t hlen = (size_t)(hend - p) + 4;
        size_t vlen;
        const char *v = header_value(p, hlen, "Transfer-Encoding", &vlen);
        if (v) {
            st.errors++;
            fprintf(stderr, "receiver: chunked request bodies are not supported\n");
            send_bytes(c, RESP_411, sizeof RESP_411 - 1);
            conn_close(c);
            break;
        }
        size_t blen = 0;
        v = header_value(p, hlen, "Content-Length", &vlen);
        if (v) blen = (size_t)strtoull(v, NULL, 10);
        if (blen > BODY_CAP) {
            st.errors++;
            send_bytes(c, RESP_413, sizeof RESP_413 - 1);
            conn_close(c);
            break;
        }
        if (avail < hlen + blen) {
            if (!c->continued && header_value(p, hlen, "Expect", &vlen)) {
                c->continued = 1;
                send_bytes(c, RESP_CONTINUE, sizeof RESP_CONTINUE - 1);
            }
            break;
        }
        record(p + hlen, blen);
        send_bytes(c, RESP_OK, sizeof RESP_OK - 1);
        c->continued = 0;
        off += hlen + blen;
    }
    if (off && !c->closing) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn_t *c = h->data;
    (void)suggested;
    if (c->cap - c->len < READ_CHUNK) {
        c->cap = c->cap ? c->cap * 2 : 2 * READ_CHUNK;
        while (c->cap - c->len < READ_CHUNK)
            c->cap *= 2;
        c->buf = xrealloc(c->buf, c->cap);
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = s->data;
    (void)b;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    process(c);
    /* Keep an idle connection's buffer small. */
    if (!c->closing && c->len == 0 && c->cap > 4 * READ_CHUNK) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_status_timer(uv_timer_t *t)
{
    (void)t;
    if (!status_path || st.requests == st.status_requests) return;
    st.status_requests = st.requests;
    char text[256];
    snprintf(text, sizeof text, "requests=%" PRIu64 " distinct=%" PRIu64 " last_us=%" PRId64 "\n",
             st.requests, st.distinct, st.last_us);
    write_file_atomic(status_path, text);
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)h;
    if (sig == SIGUSR1) {
        reset_phase();
        if (status_path) write_file_atomic(status_path, "requests=0 distinct=0 last_us=0\n");
    } else if (sig == SIGUSR2) {
        write_summary();
    } else {
        write_summary();
        exit(0);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: receiver --port P --out FILE [--status FILE] [--expect N] [--samples FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--out") == 0)
            out_path = argv[++i];
        else if (strcmp(argv[i], "--status") == 0)
            status_path = argv[++i];
        else if (strcmp(argv[i], "--samples") == 0)
            samples_path = argv[++i];
        else if (strcmp(argv[i], "--expect") == 0)
            expect_rows = strtoull(argv[++i], NULL, 10);
        else
            usage();
    }
    if (port <= 0 || port > 65535 || !out_path) usage();

    loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &server);
    int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (r != 0) {
        fprintf(stderr, "receiver: listen 127.0.0.1:%d: %s\n", port, uv_strerror(r));
        return 1;
    }

    static uv_signal_t sigs[4];
    int signums[4] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, signums[i]);
    }
    uv_timer_t status_timer;
    uv_timer_init(loop, &status_timer);
    uv_timer_start(&status_timer, on_status_timer, 100, 100);

    fprintf(stderr, "receiver: listening on 127.0.0.1:%d\n", port);
    return uv_run(loop, UV_RUN_DEFAULT);
}
