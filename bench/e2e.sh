#!/usr/bin/env bash
# bench/e2e.sh: herald end to end, PostgreSQL commit -> webhook receipt (run by `make bench`).
#
# Starts, in a temporary directory removed on exit: a throwaway PostgreSQL 15, herald (release
# build) and bench/receiver.c (a libuv HTTP receiver that records latencies), then measures
#   1. live throughput: N single-row INSERT transactions from CLIENTS pgbench clients while herald
#      delivers; events/s = rows / (last receipt - earliest row's t_us); pgbench's commit rate;
#   2. backlog drain: herald stopped (SIGTERM), N rows written (10 per transaction), herald
#      started again; events/s = rows / (last receipt - first receipt);
#   3. latency at a steady RATE (1,000) events/s for LAT_S seconds: p50/p99/max of receipt time
#      minus the row's commit time (track_commit_timestamp is on for this), and of receipt time
#      minus t_us (clock_timestamp() when the row was inserted, as the receiver sees it);
#   4. herald's peak RSS (VmHWM) and its CPU (and PostgreSQL's) over IDLE_S idle seconds;
#   2b. N rows committed in one INSERT ... SELECT while herald runs: commit -> last receipt, and
#      CPU seconds per 100,000 events;
#   3b. latency as in 3, at 80 % of phase 1's measured rate;
#   6. RSS of a fresh idle herald, then with 10,000 events in the delayed queue (a second trigger
#      towards `herald sink --status 503`, retried after an hour);
#   7. capture overhead, herald stopped: CAP_ROUNDS (6) alternating rounds of CAP_S (5) s of
#      pgbench single-row inserts from 16 clients plus a bulk INSERT ... SELECT of N rows, with
#      herald's capture triggers disabled (ALTER TABLE ... DISABLE TRIGGER USER), then applied
#      with capture: plpgsql, then with capture: native (when the module was built);
#   5. the same on SQLite (bench/sqlite.sh, once PostgreSQL is stopped; SQLITE=0 skips it);
# and prints a markdown table (also written to $OUT when set). See docs/benchmarks.md.
#
# Environment: N (100000), CLIENTS (8), RATE (1000), LAT_S (15), IDLE_S (10), CAP_ROUNDS, CAP_S, OUT,
# HERALD (path of the binary; default build/herald), PG_BIN (/usr/lib/postgresql/15/bin),
# DRAIN_TIMEOUT_S (60: seconds without progress before events are declared missing),
# PG_OPTS (more server options, e.g. "-c log_autovacuum_min_duration=0"),
# SAMPLES_DIR (keep every latency sample of each phase there), KEEP (keep the work directory),
# CAPTURE (auto: herald's capture key for phases 1-6; the server can load build/pgext's native
# module, or PGEXT=path's),
# TRIGGERS (1: the bench trigger; K > 1 adds K - 1 triggers on tables of their own that stay
# idle, so that phases 3 and 4 show what each running trigger costs), ONLY=latency (run phases 3
# and 4 only, and print their rows) or ONLY=capture (phase 7 only); by default every phase runs.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-100000}
CLIENTS=${CLIENTS:-8}
RATE=${RATE:-1000}
LAT_S=${LAT_S:-15}
IDLE_S=${IDLE_S:-10}
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-60}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
HERALD=${HERALD:-$ROOT/build/herald}
PGEXT=${PGEXT:-$(dirname "$HERALD")/pgext/herald_capture.so}
CAPTURE=${CAPTURE:-auto}
TRIGGERS=${TRIGGERS:-1}
ONLY=${ONLY:-}
case "$ONLY" in '' | latency | capture) ;; *) echo "bench: ONLY must be empty, latency or capture" >&2; exit 2 ;; esac
CLK_TCK=$(getconf CLK_TCK)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in gcc pkg-config pgbench psql "$PG_BIN/initdb" "$PG_BIN/pg_ctl"; do
  command -v "$tool" >/dev/null || die "missing $tool (make deps installs the dependencies)"
done
if [ ! -x "$HERALD" ]; then
  log "building herald (make build)"
  make -C "$ROOT" build >&2
fi

DIR=$(mktemp -d /tmp/herald-bench.XXXXXX)
HERALD_PID='' RECV_PID='' SINK_PID='' PG_STARTED=0 HERALD_STARTS=0

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ]; then
    [ -s "$DIR/herald.log" ] && { log "last lines of herald's log:"; tail -n 20 "$DIR/herald.log" >&2; }
    [ -s "$DIR/pg.log" ] && { log "last lines of PostgreSQL's log:"; tail -n 10 "$DIR/pg.log" >&2; }
  fi
  if [ -n "$HERALD_PID" ] && kill -0 "$HERALD_PID" 2>/dev/null; then
    kill -TERM "$HERALD_PID"
    for _ in $(seq 1 150); do kill -0 "$HERALD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$HERALD_PID" 2>/dev/null && { log "herald did not stop on SIGTERM within 15 s; killing it"; kill -KILL "$HERALD_PID"; }
    wait "$HERALD_PID" 2>/dev/null
  fi
  if [ -n "$RECV_PID" ] && kill -0 "$RECV_PID" 2>/dev/null; then
    kill -TERM "$RECV_PID"; wait "$RECV_PID" 2>/dev/null
  fi
  if [ -n "$SINK_PID" ]; then kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null; fi
  if [ "$PG_STARTED" = 1 ]; then
    as_pg "$PG_BIN/pg_ctl" stop -D "$DIR/pg" -m fast -w -t 30 >/dev/null 2>&1 ||
      as_pg "$PG_BIN/pg_ctl" stop -D "$DIR/pg" -m immediate -w -t 20 >/dev/null 2>&1
  fi
  if [ -n "${KEEP:-}" ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1 (nothing answers a connect).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port"
}

# utime+stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU of the whole PostgreSQL cluster in clock ticks: the postmaster with its reaped children
# (cutime/cstime) plus the children still running.
pg_ticks() {
  local pm kids t
  pm=$(head -n 1 "$DIR/pg/postmaster.pid")
  t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
  kids=$(pgrep -P "$pm" || true)
  for k in $kids; do t=$((t + $(cpu_ticks "$k" 2>/dev/null || echo 0))); done
  echo "$t"
}

# CPU ticks of herald's own PostgreSQL backends (application_name herald), found once per start.
herald_backends() { HB_PIDS=$(psql_q "SELECT pid FROM pg_stat_activity WHERE application_name = 'herald'" | tr '\n' ' '); }
hb_ticks() {
  local t=0 p
  for p in $HB_PIDS; do t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0))); done
  echo "$t"
}

psql_q() { psql -X -q -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d bench -v ON_ERROR_STOP=1 -c "$1"; }
kv() { sed -n "s/^$1=//p" "$2"; }
# calc EXPR FORMAT: floating-point arithmetic through awk.
calc() { awk "BEGIN { printf \"$2\", $1 }"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
pgbench_tps() { sed -n 's/^tps = \([0-9]*\)\.[0-9]* (without initial connection time)/\1/p' "$1"; }
# "busy total" jiffies of the whole machine, from /proc/stat (busy = all but idle and iowait).
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
status_field() { tr ' ' '\n' <"$DIR/recv.status" 2>/dev/null | sed -n "s/^$1=//p"; }

# Waits until the receiver has seen $1 distinct rows; fails when nothing new arrives for
# DRAIN_TIMEOUT_S seconds (events lost or herald stalled).
wait_distinct() {
  local want=$1 got=0 prev=-1 still=0
  while :; do
    got=$(status_field distinct); got=${got:-0}
    [ "$got" -ge "$want" ] && return 0
    kill -0 "$HERALD_PID" 2>/dev/null || die "herald (pid $HERALD_PID) exited during the run after delivering $got of $want rows"
    if [ "$got" = "$prev" ]; then still=$((still + 1)); else still=0; prev=$got; fi
    if [ "$still" -ge $((DRAIN_TIMEOUT_S * 10)) ]; then
      log "herald delivered $got of $want rows and nothing more for ${DRAIN_TIMEOUT_S} s"
      return 1
    fi
    sleep 0.1
  done
}

# Asks the receiver for a summary (SIGUSR2) and waits for the file.
receiver_summary() {
  rm -f "$DIR/recv.out"
  kill -USR2 "$RECV_PID"
  for _ in $(seq 1 100); do [ -s "$DIR/recv.out" ] && return 0; sleep 0.05; done
  die "the receiver wrote no summary"
}

# Joins the receiver's samples (arrival_us latency_us row_id) with the rows' commit timestamps
# (track_commit_timestamp) and prints three lines of "p50 / p99 / max" in ms:
#   commit -> receipt, all samples;
#   commit -> receipt, samples that arrived more than a second after the phase's first (the steady
#   state, without the wake-up from an idle poll interval);
#   insert (t_us) -> commit, all samples: PostgreSQL's share of the receiver's own figure.
commit_latency() {
  psql -X -q -A -t -h 127.0.0.1 -p "$PGPORT" -U postgres -d bench -v ON_ERROR_STOP=1 <<EOF_SQL
CREATE TEMP TABLE s (arrival_us bigint, lat_us bigint, row_id bigint);
\\copy s FROM '$DIR/samples.txt' WITH (DELIMITER ' ')
CREATE TEMP TABLE j AS
  SELECT s.arrival_us, b.t_us,
         (extract(epoch FROM pg_xact_commit_timestamp(b.xmin)) * 1e6)::bigint AS commit_us
  FROM s JOIN bench_events b ON b.id = s.row_id;
SELECT format('%s / %s / %s', round(percentile_disc(0.5) WITHIN GROUP (ORDER BY d) / 1000.0, 1),
              round(percentile_disc(0.99) WITHIN GROUP (ORDER BY d) / 1000.0, 1), round(max(d) / 1000.0, 1))
  FROM (SELECT arrival_us - commit_us AS d FROM j) x;
SELECT format('%s / %s / %s', round(percentile_disc(0.5) WITHIN GROUP (ORDER BY d) / 1000.0, 1),
              round(percentile_disc(0.99) WITHIN GROUP (ORDER BY d) / 1000.0, 1), round(max(d) / 1000.0, 1))
  FROM (SELECT arrival_us - commit_us AS d FROM j WHERE arrival_us > (SELECT min(arrival_us) FROM j) + 1000000) x;
SELECT format('%s / %s / %s', round(percentile_disc(0.5) WITHIN GROUP (ORDER BY d) / 1000.0, 1),
              round(percentile_disc(0.99) WITHIN GROUP (ORDER BY d) / 1000.0, 1), round(max(d) / 1000.0, 1))
  FROM (SELECT commit_us - t_us AS d FROM j) x;
EOF_SQL
}

# With SAMPLES_DIR set, keeps each phase's "arrival_us latency_us row_id" lines as phaseN.samples.
keep_samples() { if [ -n "${SAMPLES_DIR:-}" ]; then mkdir -p "$SAMPLES_DIR"; cp "$DIR/samples.txt" "$SAMPLES_DIR/phase$1.samples"; fi; }

start_herald() {
  touch "$DIR/herald.log"
  "$HERALD" serve -c "$DIR/herald.yaml" 2>>"$DIR/herald.log" &
  HERALD_PID=$!
  for _ in $(seq 1 300); do
    [ "$(grep -c 'msg=ready' "$DIR/herald.log" || true)" -gt "$HERALD_STARTS" ] && break
    kill -0 "$HERALD_PID" 2>/dev/null || die "herald exited before it was ready"
    sleep 0.05
  done
  [ "$(grep -c 'msg=ready' "$DIR/herald.log" || true)" -gt "$HERALD_STARTS" ] || die "herald was not ready within 15 s"
  HERALD_STARTS=$((HERALD_STARTS + 1))
  log "herald ready (pid $HERALD_PID)"
}

# Stops herald with SIGTERM; STOP_S = how long it took, in seconds.
stop_herald() {
  local t0=$EPOCHREALTIME
  kill -TERM "$HERALD_PID"
  for _ in $(seq 1 750); do kill -0 "$HERALD_PID" 2>/dev/null || break; sleep 0.02; done
  kill -0 "$HERALD_PID" 2>/dev/null && die "herald did not stop within 15 s of SIGTERM"
  local rc=0
  wait "$HERALD_PID" || rc=$?
  [ "$rc" = 0 ] || die "herald exited with status $rc on SIGTERM"
  HERALD_PID=''
  STOP_S=$(calc "$EPOCHREALTIME - $t0" %.2f)
}

# ---------------------------------------------------------------------------------------------
log "workdir $DIR"
if [ "$(id -u)" = 0 ]; then chown postgres "$DIR"; fi
PGPORT=$(free_port)
RPORT=$(free_port)
[ "$PGPORT" != "$RPORT" ] || RPORT=$(free_port)

log "building the receiver"
gcc -O2 -Wall -Wextra "$ROOT/bench/receiver.c" $(pkg-config --cflags --libs libuv) -o "$DIR/receiver"

read -r B0 T0 <<<"$(machine_ticks)"; sleep 2; read -r B1 T1 <<<"$(machine_ticks)"
BG_PCT=$(calc "100 * $((B1 - B0)) / $((T1 - T0))" %.0f)
log "background load: $BG_PCT % of the machine"

log "starting PostgreSQL 15 on port $PGPORT"
as_pg "$PG_BIN/initdb" -D "$DIR/pg" -A trust -U postgres -E UTF8 --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" start -D "$DIR/pg" -l "$DIR/pg.log" -w -t 60 \
  -o "-p $PGPORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=100 -c shared_buffers=256MB -c track_commit_timestamp=on ${PG_OPTS:-}" >/dev/null
PG_STARTED=1
# herald's native capture module, loadable by this server from the work directory.
NATIVE=0
if [ -f "$PGEXT" ]; then
  mkdir -p "$DIR/lib" && cp "$PGEXT" "$DIR/lib/herald_capture.so" && chmod 755 "$DIR/lib"
  psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres \
    -c "ALTER SYSTEM SET dynamic_library_path = '$DIR/lib:\$libdir'" -c "SELECT pg_reload_conf()" >/dev/null
  NATIVE=1
else
  log "no native capture module at $PGEXT: capture is PL/pgSQL, phase 7 measures it alone"
fi
psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c 'CREATE DATABASE bench' >/dev/null
psql_q "CREATE TABLE bench_events(id bigserial PRIMARY KEY,
          t_us bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
          payload text)" >/dev/null
echo "INSERT INTO bench_events(payload) VALUES ('x');" >"$DIR/insert.sql"

cat >"$DIR/herald.yaml" <<EOF
database: postgres://postgres@127.0.0.1:$PGPORT/bench
log_level: info
listen: off
capture: $CAPTURE
triggers:
  - name: bench
    table: public.bench_events
    operations: [insert]
    webhook: http://127.0.0.1:$RPORT/hook
    start: now
EOF
for k in $(seq 2 "$TRIGGERS"); do
  psql_q "CREATE TABLE bench_idle_$k(id bigserial PRIMARY KEY, payload text)" >/dev/null
  {
    echo "  - name: bench_idle_$k"
    echo "    table: public.bench_idle_$k"
    echo "    operations: [insert]"
    echo "    webhook: http://127.0.0.1:$RPORT/idle"
    echo "    start: now"
  } >>"$DIR/herald.yaml"
done

# --- 7. capture overhead, herald stopped --------------------------------------------------------
# The same table with its capture triggers disabled (ALTER TABLE ... DISABLE TRIGGER USER: no
# herald code runs on its writes), then applied with capture: plpgsql, then with capture: native
# (when the module is there), alternating: CAP_ROUNDS rounds of CAP_S seconds of pgbench
# single-row inserts from 16 clients (synchronous_commit on) per mode, each followed by a bulk
# INSERT ... SELECT of N rows. Ratios of the sums over the rounds, each mode against "off".
# Every timed step starts from the same state: a CHECKPOINT before it, and a VACUUM of the two
# tables after each bulk insert (untimed). Without them the checkpoint that the bulk inserts'
# WAL forces, and autovacuum of the 100,000 rows one bulk insert left, fell in whichever
# round came next, moving single rounds by up to 10 %.
# Prints its table rows; herald must not be running.
capture_phase() {
  CAP_ROUNDS=${CAP_ROUNDS:-6}
  CAP_S=${CAP_S:-5}
  CAP_MODES="off plpgsql"
  [ "$NATIVE" = 1 ] && CAP_MODES="off plpgsql native"
  log "phase 7: capture overhead, $CAP_ROUNDS alternating rounds of $CAP_S s, 16 clients: $CAP_MODES"
  local mode r t t0 t1
  declare -A TX BULK
  for mode in $CAP_MODES; do TX[$mode]=0; BULK[$mode]=0; done
  for r in $(seq 1 "$CAP_ROUNDS"); do
    for mode in $CAP_MODES; do
      if [ "$mode" = off ]; then
        psql_q "ALTER TABLE bench_events DISABLE TRIGGER USER" >/dev/null
      else
        psql_q "ALTER TABLE bench_events ENABLE TRIGGER USER" >/dev/null
        sed "s/^capture: .*/capture: $mode/" "$DIR/herald.yaml" >"$DIR/capture.yaml"
        "$HERALD" apply -c "$DIR/capture.yaml" >"$DIR/apply7.log" 2>&1 || { cat "$DIR/apply7.log" >&2; die "herald apply failed"; }
      fi
      psql_q "CHECKPOINT" >/dev/null
      pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -f "$DIR/insert.sql" -c 16 -j 2 -T "$CAP_S" \
        bench >"$DIR/pgbench7.log" 2>&1 || { cat "$DIR/pgbench7.log" >&2; die "pgbench failed"; }
      t=$(pgbench_tps "$DIR/pgbench7.log")
      TX[$mode]=$((TX[$mode] + t))
      psql_q "CHECKPOINT" >/dev/null
      t0=$(now_us)
      psql_q "INSERT INTO bench_events(payload) SELECT 'x' FROM generate_series(1, $N)" >/dev/null
      t1=$(now_us)
      BULK[$mode]=$((BULK[$mode] + t1 - t0))
      psql_q "VACUUM bench_events, herald.log" >/dev/null
      log "phase 7: round $r, capture $mode: $t tx/s; bulk insert $(calc "($t1 - $t0) / 1e3" %.0f) ms"
    done
  done
  psql_q "ALTER TABLE bench_events ENABLE TRIGGER USER" >/dev/null
  for mode in $CAP_MODES; do
    [ "$mode" = off ] && continue
    echo "| capture overhead ($mode), pgbench single-row inserts, 16 clients: TPS with capture ÷ without ($CAP_ROUNDS alternating rounds of $CAP_S s; mean tx/s) | **$(calc "${TX[$mode]} / ${TX[off]}" %.2f)** ($((TX[$mode] / CAP_ROUNDS)) / $((TX[off] / CAP_ROUNDS)) tx/s) |"
    echo "| capture overhead ($mode), bulk INSERT … SELECT of $N rows: time without ÷ time with capture (mean ms) | **$(calc "${BULK[off]} / ${BULK[$mode]}" %.2f)** ($((BULK[$mode] / CAP_ROUNDS / 1000)) / $((BULK[off] / CAP_ROUNDS / 1000)) ms) |"
  done
}

"$DIR/receiver" --port "$RPORT" --out "$DIR/recv.out" --status "$DIR/recv.status" \
  --samples "$DIR/samples.txt" 2>"$DIR/receiver.log" &
RECV_PID=$!

"$HERALD" apply -c "$DIR/herald.yaml" >"$DIR/apply.log" 2>&1 || { cat "$DIR/apply.log" >&2; die "herald apply failed"; }
if [ "$ONLY" = capture ]; then
  capture_phase >"$DIR/table.md"
  echo
  cat "$DIR/table.md"
  if [ -n "${OUT:-}" ]; then cp "$DIR/table.md" "$OUT"; fi
  exit 0
fi
start_herald

FAILED=0
MISSING=" (INCOMPLETE: events missing)"

HWM1_KB=0
if [ "$ONLY" != latency ]; then
# --- 1. throughput: live writes -------------------------------------------------------------
PER_CLIENT=$((N / CLIENTS))
ROWS1=$((PER_CLIENT * CLIENTS))
log "phase 1: $ROWS1 single-row inserts from $CLIENTS clients while herald delivers"
kill -USR1 "$RECV_PID"
BASE=$(psql_q "SELECT coalesce(max(id), 0) FROM bench_events")
herald_backends
H0=$(cpu_ticks "$HERALD_PID"); P0=$(pg_ticks); D0=$(hb_ticks); read -r B0 T0 <<<"$(machine_ticks)"
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -f "$DIR/insert.sql" -c "$CLIENTS" -j 2 \
  -t "$PER_CLIENT" bench >"$DIR/pgbench1.log" 2>&1 || { cat "$DIR/pgbench1.log" >&2; die "pgbench failed"; }
TPS1=$(pgbench_tps "$DIR/pgbench1.log")
NOTE1=''; wait_distinct "$ROWS1" || { FAILED=1; NOTE1=$MISSING; }
H1=$(cpu_ticks "$HERALD_PID"); P1=$(pg_ticks); D1=$(hb_ticks); read -r B1 T1 <<<"$(machine_ticks)"
receiver_summary; cp "$DIR/recv.out" "$DIR/phase1.out"; keep_samples 1
{ read -r C1_ALL; read -r C1_STEADY; read -r C1_INS; } < <(commit_latency) || true
[ -n "$C1_INS" ] || die "could not join the samples with commit timestamps"
read -r MIN_TUS MAX_TUS <<<"$(psql_q "SELECT min(t_us), max(t_us) FROM bench_events WHERE id > $BASE" | tr '|' ' ')"
DIST1=$(kv distinct "$DIR/phase1.out")
LAST1=$(kv last_us "$DIR/phase1.out")
EPS1=$(calc "$DIST1 / (($LAST1 - $MIN_TUS) / 1e6)" %.0f)
E2E_S1=$(calc "($LAST1 - $MIN_TUS) / 1e6" %.2f)
WRITE_S1=$(calc "($MAX_TUS - $MIN_TUS) / 1e6" %.2f)
TAIL1_MS=$(calc "($LAST1 - $MAX_TUS) / 1e3" %.1f)
HCPU_US=$(calc "$((H1 - H0)) / $CLK_TCK * 1e6 / $DIST1" %.0f)
PCPU_US=$(calc "$((P1 - P0)) / $CLK_TCK * 1e6 / $DIST1" %.0f)
DCPU_US=$(calc "$((D1 - D0)) / $CLK_TCK * 1e6 / $DIST1" %.0f)
BUSY1=$(calc "100 * $((B1 - B0)) / $((T1 - T0))" %.0f)
log "phase 1: $DIST1/$ROWS1 rows in $E2E_S1 s: $EPS1 events/s; pgbench $TPS1 tx/s"

# --- 2. backlog drain: herald stopped while rows pile up, then restarted ----------------------
HWM1_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$HERALD_PID/status")
stop_herald
log "phase 2: herald stopped (SIGTERM took $STOP_S s); $ROWS1 rows written while it is down"
kill -USR1 "$RECV_PID"
BASE=$(psql_q "SELECT coalesce(max(id), 0) FROM bench_events")
echo "INSERT INTO bench_events(payload) SELECT 'x' FROM generate_series(1, 10);" >"$DIR/insert10.sql"
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -f "$DIR/insert10.sql" -c "$CLIENTS" -j 2 \
  -t $((PER_CLIENT / 10)) bench >"$DIR/pgbench2.log" 2>&1 || { cat "$DIR/pgbench2.log" >&2; die "pgbench failed"; }
ROWS2=$(psql_q "SELECT count(*) FROM bench_events WHERE id > $BASE")
START_US=$(now_us)
start_herald
herald_backends
H0=$(cpu_ticks "$HERALD_PID"); D0=$(hb_ticks)
NOTE2=''; wait_distinct "$ROWS2" || { FAILED=1; NOTE2=$MISSING; }
H1=$(cpu_ticks "$HERALD_PID"); D1=$(hb_ticks)
receiver_summary; cp "$DIR/recv.out" "$DIR/phase2.out"; keep_samples 2
DIST2=$(kv distinct "$DIR/phase2.out")
FIRST2=$(kv first_us "$DIR/phase2.out")
LAST2=$(kv last_us "$DIR/phase2.out")
EPS2=$(calc "$DIST2 / (($LAST2 - $FIRST2) / 1e6)" %.0f)
DRAIN_S2=$(calc "($LAST2 - $START_US) / 1e6" %.2f)
FIRST_MS2=$(calc "($FIRST2 - $START_US) / 1e3" %.0f)
HCPU2_US=$(calc "$((H1 - H0)) / $CLK_TCK * 1e6 / $DIST2" %.0f)
DCPU2_US=$(calc "$((D1 - D0)) / $CLK_TCK * 1e6 / $DIST2" %.0f)
log "phase 2: $DIST2/$ROWS2 rows drained at $EPS2 events/s"
fi

# --- 3. latency at a steady rate ------------------------------------------------------------
log "phase 3: $RATE events/s for $LAT_S s"
kill -USR1 "$RECV_PID"
BASE=$(psql_q "SELECT coalesce(max(id), 0) FROM bench_events")
sleep 1 # a quiet second first: herald's poll has backed off, as after any real lull
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -f "$DIR/insert.sql" -c 4 -j 2 -R "$RATE" \
  -T "$LAT_S" bench >"$DIR/pgbench3.log" 2>&1 || { cat "$DIR/pgbench3.log" >&2; die "pgbench failed"; }
ROWS3=$(psql_q "SELECT count(*) FROM bench_events WHERE id > $BASE")
NOTE3=''; wait_distinct "$ROWS3" || { FAILED=1; NOTE3=$MISSING; }
receiver_summary; cp "$DIR/recv.out" "$DIR/phase3.out"; keep_samples 3
{ read -r C3_ALL; read -r C3_STEADY; read -r C3_INS; } < <(commit_latency) || true
[ -n "$C3_INS" ] || die "could not join the samples with commit timestamps"
DIST3=$(kv distinct "$DIR/phase3.out")
TPS3=$(pgbench_tps "$DIR/pgbench3.log")
log "phase 3: $DIST3/$ROWS3 rows; p50 $(kv lat_p50_ms "$DIR/phase3.out") ms, p99 $(kv lat_p99_ms "$DIR/phase3.out") ms"

# --- 4. memory and idle CPU -------------------------------------------------------------------
log "phase 4: herald idle for $IDLE_S s"
sleep 1
herald_backends
I0=$(cpu_ticks "$HERALD_PID"); D0=$(hb_ticks); P0=$(pg_ticks); read -r B0 T0 <<<"$(machine_ticks)"; W0=$EPOCHREALTIME
sleep "$IDLE_S"
I1=$(cpu_ticks "$HERALD_PID"); D1=$(hb_ticks); P1=$(pg_ticks); read -r B1 T1 <<<"$(machine_ticks)"; W1=$EPOCHREALTIME
IDLE_S_REAL=$(calc "$W1 - $W0" %.1f)
IDLE_PCT=$(calc "$((I1 - I0)) / $CLK_TCK / ($W1 - $W0) * 100" %.2f)
IDLE_PG_PCT=$(calc "$((D1 - D0)) / $CLK_TCK / ($W1 - $W0) * 100" %.2f)
BUSY4=$(calc "100 * $((B1 - B0)) / $((T1 - T0))" %.0f)
# The rest of this cluster (autovacuum after the writes, checkpointer, ...), as % of the machine.
PGREST4=$(calc "100 * ($((P1 - P0 - (D1 - D0)))) / $CLK_TCK / ($W1 - $W0) / $(nproc)" %.0f)
HWM2_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$HERALD_PID/status")
RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$HERALD_PID/status")
HWM_KB=$((HWM1_KB > HWM2_KB ? HWM1_KB : HWM2_KB))

if [ "$ONLY" = latency ]; then
  {
    echo "| figure ($TRIGGERS trigger(s)) | result |"
    echo "|---|---|"
    echo "| latency at $RATE events/s for $LAT_S s, commit → receipt, p50 / p99 / max: whole run | **$C3_ALL ms**$NOTE3 ($DIST3 rows, pgbench $TPS3 tx/s) |"
    echo "| the same after its first second (herald already awake) | $C3_STEADY ms |"
    echo "| the same run seen by the receiver alone, insert → receipt; of which insert → commit | $(kv lat_p50_ms "$DIR/phase3.out") / $(kv lat_p99_ms "$DIR/phase3.out") / $(kv lat_max_ms "$DIR/phase3.out") ms; $C3_INS ms |"
    echo "| idle CPU over $IDLE_S_REAL s: herald / its PostgreSQL backend answering the polls | $IDLE_PCT % / $IDLE_PG_PCT % of one core |"
    echo "| machine busy before the run / while herald idled (of which the rest of this PostgreSQL) | $BG_PCT % / $BUSY4 % ($PGREST4 %) of $(nproc) cores |"
  } >"$DIR/table.md"
  echo
  cat "$DIR/table.md"
  if [ -n "${OUT:-}" ]; then cp "$DIR/table.md" "$OUT"; fi
  [ "$FAILED" = 0 ] || { log "some events were not delivered: see the INCOMPLETE rows"; exit 1; }
  exit 0
fi

# --- 2b. bulk commit: N rows in one INSERT ... SELECT while herald runs -------------------------
log "phase 2b: $N rows committed in one INSERT ... SELECT while herald delivers"
kill -USR1 "$RECV_PID"
BASE=$(psql_q "SELECT coalesce(max(id), 0) FROM bench_events")
herald_backends
H0=$(cpu_ticks "$HERALD_PID"); D0=$(hb_ticks)
psql_q "INSERT INTO bench_events(payload) SELECT 'x' FROM generate_series(1, $N)" >/dev/null
NOTE2B=''; wait_distinct "$N" || { FAILED=1; NOTE2B=$MISSING; }
H1=$(cpu_ticks "$HERALD_PID"); D1=$(hb_ticks)
receiver_summary; cp "$DIR/recv.out" "$DIR/phase2b.out"
DIST2B=$(kv distinct "$DIR/phase2b.out")
LAST2B=$(kv last_us "$DIR/phase2b.out")
COMMIT2B=$(psql_q "SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1e6)::bigint FROM bench_events WHERE id > $BASE LIMIT 1")
EPS2B=$(calc "$DIST2B / (($LAST2B - $COMMIT2B) / 1e6)" %.0f)
S2B=$(calc "($LAST2B - $COMMIT2B) / 1e6" %.2f)
HCPU2B_S=$(calc "$((H1 - H0)) / $CLK_TCK * 100000 / $DIST2B" %.2f)
DCPU2B_S=$(calc "$((D1 - D0)) / $CLK_TCK * 100000 / $DIST2B" %.2f)
log "phase 2b: $DIST2B/$N rows, commit to last receipt $S2B s: $EPS2B events/s"

# --- 3b. latency at 80 % of the measured maximum ---------------------------------------------
# The maximum is the live rate of phase 1 (what PostgreSQL committed of single-row writes while
# herald kept up); 80 % of it, from CLIENTS clients.
RATE80=$(calc "$EPS1 * 0.8" %.0f)
log "phase 3b: $RATE80 events/s (80 % of $EPS1) for $LAT_S s"
kill -USR1 "$RECV_PID"
BASE=$(psql_q "SELECT coalesce(max(id), 0) FROM bench_events")
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -f "$DIR/insert.sql" -c "$CLIENTS" -j 2 -R "$RATE80" \
  -T "$LAT_S" bench >"$DIR/pgbench3b.log" 2>&1 || { cat "$DIR/pgbench3b.log" >&2; die "pgbench failed"; }
ROWS3B=$(psql_q "SELECT count(*) FROM bench_events WHERE id > $BASE")
NOTE3B=''; wait_distinct "$ROWS3B" || { FAILED=1; NOTE3B=$MISSING; }
receiver_summary; cp "$DIR/recv.out" "$DIR/phase3b.out"; keep_samples 3b
{ read -r C3B_ALL; read -r C3B_STEADY; read -r C3B_INS; } < <(commit_latency) || true
[ -n "$C3B_INS" ] || die "could not join the samples with commit timestamps"
DIST3B=$(kv distinct "$DIR/phase3b.out")
TPS3B=$(pgbench_tps "$DIR/pgbench3b.log")
log "phase 3b: $DIST3B/$ROWS3B rows; commit -> receipt $C3B_ALL ms"
DUPS2B=$(kv duplicates "$DIR/phase2b.out")
DUPS3B=$(kv duplicates "$DIR/phase3b.out")

DUPS=$(($(kv duplicates "$DIR/phase1.out") + $(kv duplicates "$DIR/phase2.out") + $(kv duplicates "$DIR/phase3.out") + DUPS2B + DUPS3B))
FAILED_ATTEMPTS=$(grep -c 'attempt failed' "$DIR/herald.log" || true)
ERRORS=$(grep -c 'level=error' "$DIR/herald.log" || true)
ms3() { echo "$(kv lat_p50_ms "$1") / $(kv lat_p99_ms "$1") / $(kv lat_max_ms "$1")"; }

# --- report ------------------------------------------------------------------------------------
{
  echo "| figure | result |"
  echo "|---|---|"
  echo "| end-to-end throughput, live ($ROWS1 single-row transactions, $CLIENTS clients) | **$EPS1 events/s**$NOTE1 (first insert to last receipt: $E2E_S1 s; last receipt $TAIL1_MS ms after the last insert) |"
  echo "| PostgreSQL commit rate of the same writes (pgbench) | $TPS1 tx/s |"
  echo "| latency under that full load, commit → receipt, p50 / p99 / max: whole run; after its first second | $C1_ALL ms; $C1_STEADY ms |"
  echo "| machine CPU busy during the live run (2 cores) | $BUSY1 % |"
  echo "| CPU per event during the live run: herald / its PostgreSQL backend / whole PostgreSQL (writes, capture, reads) | $HCPU_US / $DCPU_US / $PCPU_US µs |"
  echo "| backlog drain after a restart ($ROWS2 rows waiting) | **$EPS2 events/s**$NOTE2 (first delivery $FIRST_MS2 ms after start, all in $DRAIN_S2 s; CPU per event: herald $HCPU2_US µs, its backend $DCPU2_US µs) |"
  echo "| latency at $RATE events/s for $LAT_S s, commit → receipt, p50 / p99 / max: whole run | **$C3_ALL ms**$NOTE3 ($DIST3 rows, pgbench $TPS3 tx/s) |"
  echo "| the same after its first second (herald already awake) | $C3_STEADY ms |"
  echo "| the same run seen by the receiver alone, insert → receipt; of which insert → commit | $(ms3 "$DIR/phase3.out") ms; $C3_INS ms |"
  echo "| herald peak RSS (VmHWM) | $(calc "$HWM_KB / 1024" %.1f) MiB (RSS when idle $(calc "$RSS_KB / 1024" %.1f) MiB) |"
  echo "| idle CPU over $IDLE_S_REAL s: herald / its PostgreSQL backend answering the polls | $IDLE_PCT % / $IDLE_PG_PCT % of one core |"
  echo "| SIGTERM to exit, idle | $STOP_S s |"
  echo "| redeliveries / failed attempts / errors logged | $DUPS / $FAILED_ATTEMPTS / $ERRORS |"
  echo "| machine busy before the run / while herald idled (of which the rest of this PostgreSQL: autovacuum, ...) | $BG_PCT % / $BUSY4 % ($PGREST4 %) of $(nproc) cores |"
} >"$DIR/table.md"

# --- 6. RSS with 10,000 events in the delayed queue -------------------------------------------
# A second trigger on its own table, towards `herald sink` answering 503, retried after an hour:
# every event fails once and waits in herald.delayed. herald is restarted with it, so the first
# figure is a fresh process that has delivered nothing yet.
log "phase 6: 10000 events into the delayed queue (receiver answering 503)"
stop_herald
SPORT=$(free_port)
"$HERALD" sink --listen "127.0.0.1:$SPORT" --status 503 --quiet >"$DIR/sink.log" 2>&1 &
SINK_PID=$!
psql_q "CREATE TABLE bench_delayed(id bigserial PRIMARY KEY, payload text)" >/dev/null
{
  echo "  - name: bench_delayed"
  echo "    table: public.bench_delayed"
  echo "    operations: [insert]"
  echo "    webhook: http://127.0.0.1:$SPORT/hook"
  echo "    start: now"
  echo "    retry: {backoff: fixed, interval: 1h, max_interval: 1h}"
} >>"$DIR/herald.yaml"
"$HERALD" apply -c "$DIR/herald.yaml" >"$DIR/apply2.log" 2>&1 || { cat "$DIR/apply2.log" >&2; die "herald apply failed"; }
start_herald
sleep 2
RSS_IDLE0_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$HERALD_PID/status")
psql_q "INSERT INTO bench_delayed(payload) SELECT 'x' FROM generate_series(1, 10000)" >/dev/null
NDELAYED=0
for _ in $(seq 1 600); do
  NDELAYED=$(psql_q "SELECT count(*) FROM herald.delayed WHERE trigger = 'bench_delayed'")
  [ "$NDELAYED" -ge 10000 ] && break
  sleep 0.1
done
sleep 1
RSS_DELAYED_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$HERALD_PID/status")
HWM_DELAYED_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$HERALD_PID/status")
stop_herald
kill -TERM "$SINK_PID" 2>/dev/null; wait "$SINK_PID" 2>/dev/null || true

# --- 7. capture overhead, herald stopped (capture_phase, above) --------------------------------
capture_phase >"$DIR/capture_rows.md"

{
  echo "| bulk commit: $N rows in one INSERT … SELECT while herald runs, commit → last receipt | **$EPS2B events/s**$NOTE2B ($S2B s) |"
  echo "| CPU seconds per 100,000 events in that phase: herald / its PostgreSQL backend | $HCPU2B_S / $DCPU2B_S s |"
  echo "| latency at 80 % of the live maximum ($RATE80 events/s from $CLIENTS clients for $LAT_S s), commit → receipt, p50 / p99 / max: whole run; after its first second | **$C3B_ALL ms**$NOTE3B; $C3B_STEADY ms ($DIST3B rows, pgbench $TPS3B tx/s) |"
  echo "| herald RSS: a fresh process, idle; with $NDELAYED events in the delayed queue (its peak) | $(calc "$RSS_IDLE0_KB / 1024" %.1f) MiB; $(calc "$RSS_DELAYED_KB / 1024" %.1f) MiB ($(calc "$HWM_DELAYED_KB / 1024" %.1f) MiB) |"
  cat "$DIR/capture_rows.md"
} >>"$DIR/table.md"

# --- 5. the SQLite rows, with PostgreSQL and its herald stopped --------------------------------
if [ "${SQLITE:-1}" != 0 ]; then
  as_pg "$PG_BIN/pg_ctl" stop -D "$DIR/pg" -m fast -w -t 30 >/dev/null && PG_STARTED=0
  N=$N CLIENTS=$CLIENTS RATE=$RATE LAT_S=$LAT_S IDLE_S=$IDLE_S HERALD=$HERALD RECEIVER=$DIR/receiver \
    bash "$ROOT/bench/sqlite.sh" >>"$DIR/table.md" || FAILED=1
fi

echo
cat "$DIR/table.md"
if [ -n "${OUT:-}" ]; then cp "$DIR/table.md" "$OUT"; fi
if [ "$FAILED" = 1 ]; then
  log "some events were not delivered: see the INCOMPLETE rows"
  exit 1
fi
