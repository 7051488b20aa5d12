/* sqlite_writer.c: SQLite's pgbench for bench/sqlite.sh — application processes inserting rows.
 *
 *   sqlite_writer init DB
 *       creates bench_events (id INTEGER PRIMARY KEY, t_us INTEGER NOT NULL, payload TEXT)
 *   sqlite_writer run DB --clients C (--rows N | --rate R --seconds S) [--batch B] [--commits DIR]
 *       C processes (fork), each with its own connection, as separate application processes
 *       sharing the file with herald: N rows in all as fast as they can, or R rows/s in all for S
 *       seconds on a fixed schedule (like pgbench -R: a late insert does not shift the next ones).
 *       B rows per transaction (default 1). Each row's t_us is CLOCK_REALTIME just before its
 *       INSERT; with --commits, each process writes "id commit_us" lines (commit_us: just after
 *       its COMMIT returned) to DIR/commits.<n>, for commit -> receipt latency.
 *
 * Connections use SQLite's defaults for an application in WAL mode: synchronous=FULL (every
 * commit is flushed, as PostgreSQL's synchronous_commit=on) and a 60 s busy timeout: eight
 * processes writing at full speed can starve one another of SQLite's write lock for more than
 * the usual 5 s (measured here without herald running at all). Prints
 * "rows=… seconds=… tps=… busy_errors=…" and exits 1 if any statement failed (SQLITE_BUSY
 * included: herald must never cause one).
 *
 * Build: gcc -O2 bench/sqlite_writer.c $(pkg-config --cflags --libs sqlite3) -o sqlite_writer */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until(int64_t t)
{
    int64_t d = t - now_us();
    if (d <= 0) return;
    struct timespec ts = {.tv_sec = d / 1000000, .tv_nsec = (d % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "sqlite_writer: %s: %s\n", path, db ? sqlite3_errmsg(db) : "no memory");
        exit(1);
    }
    sqlite3_busy_timeout(db, 60000);
    return db;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    fprintf(stderr, "sqlite_writer: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

/* Counters shared by the processes (an anonymous shared mapping). */
typedef struct shared {
    long rows, errors, busy;
} shared_t;

typedef struct opts {
    const char *db, *commits;
    int clients, batch;
    long rows, rate;
    double seconds;
} opts_t;

static void client(const opts_t *o, int n, shared_t *sh)
{
    sqlite3 *db = open_db(o->db);
    sqlite3_stmt *ins = NULL;
    if (sqlite3_prepare_v2(db, "INSERT INTO bench_events (t_us, payload) VALUES (?1, 'x')", -1,
                           &ins, NULL) != SQLITE_OK) {
        fprintf(stderr, "sqlite_writer: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    FILE *commits = NULL;
    if (o->commits) {
        char path[4096];
        snprintf(path, sizeof path, "%s/commits.%d", o->commits, n);
        commits = fopen(path, "w");
        if (!commits) {
            perror(path);
            exit(1);
        }
    }
    /* Rows of this client: as fast as possible, or on the schedule t0 + k / (rate / clients). */
    long mine = o->rows ? o->rows / o->clients : (long)(o->rate * o->seconds / o->clients);
    double interval_us = o->rate ? 1e6 * o->clients / (double)o->rate : 0;
    int64_t t0 = now_us() + (o->rate ? (int64_t)(interval_us * n / o->clients) : 0);
    long done = 0, errors = 0, busy = 0;
    sqlite3_int64 *ids = calloc((size_t)o->batch, sizeof *ids);
    for (long k = 0; k < mine; k += o->batch) {
        if (o->rate) sleep_until(t0 + (int64_t)(interval_us * (double)k));
        int b = (int)(mine - k < o->batch ? mine - k : o->batch), ok = 1;
        if (b > 1 && exec(db, "BEGIN") != 0) ok = 0;
        for (int i = 0; ok && i < b; i++) {
            sqlite3_bind_int64(ins, 1, now_us());
            int rc = sqlite3_step(ins);
            sqlite3_reset(ins);
            if (rc != SQLITE_DONE) {
                fprintf(stderr, "sqlite_writer: insert: %s\n", sqlite3_errmsg(db));
                if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) busy++;
                ok = 0;
            } else {
                ids[i] = sqlite3_last_insert_rowid(db);
            }
        }
        if (ok && b > 1 && exec(db, "COMMIT") != 0) ok = 0;
        if (!ok) {
            errors++;
            if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            continue;
        }
        int64_t committed = now_us();
        for (int i = 0; commits && i < b; i++)
            fprintf(commits, "%lld %" PRId64 "\n", (long long)ids[i], committed);
        done += b;
    }
    free(ids);
    if (commits) fclose(commits);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    __atomic_add_fetch(&sh->rows, done, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&sh->errors, errors, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&sh->busy, busy, __ATOMIC_SEQ_CST);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "init") == 0) {
        sqlite3 *db = open_db(argv[2]);
        int rc = exec(db, "PRAGMA journal_mode = WAL;"
                          "CREATE TABLE IF NOT EXISTS bench_events (id INTEGER PRIMARY KEY,"
                          " t_us INTEGER NOT NULL, payload TEXT)");
        sqlite3_close(db);
        return rc ? 1 : 0;
    }
    opts_t o = {.clients = 1, .batch = 1};
    if (argc < 3 || strcmp(argv[1], "run") != 0) goto usage;
    o.db = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--clients")) o.clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rows")) o.rows = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate")) o.rate = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) o.seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) o.batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--commits")) o.commits = argv[i + 1];
        else goto usage;
    }
    if (o.clients < 1 || o.batch < 1 || (!o.rows && !(o.rate && o.seconds > 0))) goto usage;
    shared_t *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return 1;
    memset(sh, 0, sizeof *sh);
    int64_t start = now_us();
    for (int n = 0; n < o.clients; n++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            client(&o, n, sh);
            _exit(0);
        }
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    double secs = (double)(now_us() - start) / 1e6;
    printf("rows=%ld seconds=%.2f tps=%.0f errors=%ld busy_errors=%ld\n", sh->rows, secs,
           (double)sh->rows / secs, sh->errors, sh->busy);
    return failed || sh->errors ? 1 : 0;
usage:
    fprintf(stderr, "usage: sqlite_writer init DB | run DB --clients C (--rows N | --rate R "
                    "--seconds S) [--batch B] [--commits DIR]\n");
    return 2;
}
