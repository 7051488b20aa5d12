#!/usr/bin/env bash
# bench/sqlite.sh: herald end to end on SQLite, row commit -> webhook receipt; the SQLite rows
# of `make bench` (bench/e2e.sh runs it after the PostgreSQL phases and appends its rows to the
# table; it also runs alone and prints them).
#
# The same phases as bench/e2e.sh, with bench/sqlite_writer.c in the place of pgbench (CLIENTS
# separate processes, each its own connection, synchronous=FULL and a 60 s busy timeout, as an
# application), herald on sqlite:bench.db and bench/receiver.c:
#   1. live throughput: N single-row transactions while herald delivers; events/s = rows /
#      (last receipt - earliest row's t_us); the writers' commit rate; commit -> receipt latency;
#   2. backlog drain: herald stopped, N rows written (10 per transaction), herald started again;
#      events/s = rows / (last receipt - first receipt);
#   3. latency at RATE events/s for LAT_S s: commit -> receipt p50/p99/max (commit time taken by
#      the writer right after its COMMIT returned), whole run and after its first second;
#   4. herald's peak RSS and idle CPU over IDLE_S s.
# Every statement of the writers must succeed: an SQLITE_BUSY fails the run.
#
# Environment: N (100000), CLIENTS (8), RATE (1000), LAT_S (15), IDLE_S (10), HERALD (default
# build/herald), RECEIVER (a built bench/receiver; built here when unset), DRAIN_TIMEOUT_S (60),
# KEEP (keep the work directory).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-100000}
CLIENTS=${CLIENTS:-8}
RATE=${RATE:-1000}
LAT_S=${LAT_S:-15}
IDLE_S=${IDLE_S:-10}
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-60}
HERALD=${HERALD:-$ROOT/build/herald}
CLK_TCK=$(getconf CLK_TCK)

log() { printf 'bench(sqlite): %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in gcc pkg-config; do command -v "$tool" >/dev/null || die "missing $tool"; done
[ -x "$HERALD" ] || die "$HERALD not found (make build)"

DIR=$(mktemp -d /tmp/herald-bench-sqlite.XXXXXX)
HERALD_PID='' RECV_PID='' HERALD_STARTS=0
cleanup() {
  local rc=$?
  set +e
  [ "$rc" != 0 ] && [ -s "$DIR/herald.log" ] && { log "last lines of herald's log:"; tail -n 20 "$DIR/herald.log" >&2; }
  [ -n "$HERALD_PID" ] && kill -TERM "$HERALD_PID" 2>/dev/null && wait "$HERALD_PID" 2>/dev/null
  [ -n "$RECV_PID" ] && kill -TERM "$RECV_PID" 2>/dev/null && wait "$RECV_PID" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then log "kept $DIR"; else rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
kv() { sed -n "s/^$1=//p" "$2"; }
calc() { awk "BEGIN { printf \"$2\", $1 }"; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
status_field() { tr ' ' '\n' <"$DIR/recv.status" 2>/dev/null | sed -n "s/^$1=//p"; }

wait_distinct() {
  local want=$1 got=0 prev=-1 still=0
  while :; do
    got=$(status_field distinct); got=${got:-0}
    [ "$got" -ge "$want" ] && return 0
    kill -0 "$HERALD_PID" 2>/dev/null || die "herald exited after delivering $got of $want rows"
    if [ "$got" = "$prev" ]; then still=$((still + 1)); else still=0; prev=$got; fi
    [ "$still" -ge $((DRAIN_TIMEOUT_S * 10)) ] && { log "herald delivered $got of $want rows and then nothing for ${DRAIN_TIMEOUT_S} s"; return 1; }
    sleep 0.1
  done
}
receiver_summary() {
  rm -f "$DIR/recv.out"
  kill -USR2 "$RECV_PID"
  for _ in $(seq 1 100); do [ -s "$DIR/recv.out" ] && return 0; sleep 0.05; done
  die "the receiver wrote no summary"
}
# Commit -> receipt in ms, "p50 / p99 / max" (nearest rank): the receiver's samples
# (arrival_us latency_us row_id) joined with the writers' "id commit_us" lines; with $1 = steady,
# only the samples that arrived more than a second after the phase's first.
commit_latency() {
  cat "$DIR"/commits/commits.* >"$DIR/commits.txt"
  awk -v steady="${1:-}" '
    FNR == NR { commit[$1] = $2; next }
    ($3 in commit) { n++; arr[n] = $1; d[n] = $1 - commit[$3]; if (first == "" || $1 < first) first = $1 }
    END {
      for (i = 1; i <= n; i++) if (steady == "" || arr[i] > first + 1000000) print d[i]
    }' "$DIR/commits.txt" "$DIR/samples.txt" | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "- / - / -"; exit }
      p50 = v[int((NR * 50 + 99) / 100)]; p99 = v[int((NR * 99 + 99) / 100)]
      printf "%.1f / %.1f / %.1f\n", p50 / 1000, p99 / 1000, v[NR] / 1000
    }'
}

start_herald() {
  touch "$DIR/herald.log"
  "$HERALD" serve -c "$DIR/herald.yaml" 2>>"$DIR/herald.log" &
  HERALD_PID=$!
  for _ in $(seq 1 300); do
    [ "$(grep -c 'msg=ready' "$DIR/herald.log" || true)" -gt "$HERALD_STARTS" ] && break
    kill -0 "$HERALD_PID" 2>/dev/null || die "herald exited before it was ready"
    sleep 0.05
  done
  HERALD_STARTS=$((HERALD_STARTS + 1))
}
stop_herald() {
  kill -TERM "$HERALD_PID"
  wait "$HERALD_PID" || die "herald exited with status $? on SIGTERM"
  HERALD_PID=''
}
writer() { "$DIR/sqlite_writer" run "$DIR/bench.db" "$@"; }

# ---------------------------------------------------------------------------------------------
log "workdir $DIR"
gcc -O2 -Wall -Wextra "$ROOT/bench/sqlite_writer.c" $(pkg-config --cflags --libs sqlite3) -o "$DIR/sqlite_writer"
RECV=${RECEIVER:-}
if [ -z "$RECV" ]; then
  gcc -O2 -Wall -Wextra "$ROOT/bench/receiver.c" $(pkg-config --cflags --libs libuv) -o "$DIR/receiver"
  RECV=$DIR/receiver
fi
RPORT=$(free_port)
"$DIR/sqlite_writer" init "$DIR/bench.db"
cat >"$DIR/herald.yaml" <<EOF
database: sqlite:bench.db
log_level: info
listen: off
triggers:
  - name: bench
    table: bench_events
    operations: [insert]
    webhook: http://127.0.0.1:$RPORT/hook
    start: now
EOF
"$RECV" --port "$RPORT" --out "$DIR/recv.out" --status "$DIR/recv.status" --samples "$DIR/samples.txt" 2>"$DIR/receiver.log" &
RECV_PID=$!
"$HERALD" apply -c "$DIR/herald.yaml" >"$DIR/apply.log" 2>&1 || { cat "$DIR/apply.log" >&2; die "herald apply failed"; }
start_herald
MISSING=" (INCOMPLETE: events missing)"
FAILED=0
mkdir -p "$DIR/commits"

# --- 1. live ----------------------------------------------------------------------------------
ROWS1=$(((N / CLIENTS) * CLIENTS))
log "phase 1: $ROWS1 single-row inserts from $CLIENTS processes while herald delivers"
kill -USR1 "$RECV_PID"
H0=$(cpu_ticks "$HERALD_PID")
MIN_US=$(now_us)
W1=$(writer --clients "$CLIENTS" --rows "$ROWS1" --commits "$DIR/commits") || die "writers failed: $W1"
NOTE1=''; wait_distinct "$ROWS1" || { FAILED=1; NOTE1=$MISSING; }
H1=$(cpu_ticks "$HERALD_PID")
receiver_summary; cp "$DIR/recv.out" "$DIR/phase1.out"
C1=$(commit_latency)
LAST1=$(kv last_us "$DIR/phase1.out")
DIST1=$(kv distinct "$DIR/phase1.out")
EPS1=$(calc "$DIST1 / (($LAST1 - $MIN_US) / 1e6)" %.0f)
TPS1=$(echo "$W1" | tr ' ' '\n' | sed -n 's/^tps=//p')
HCPU1=$(calc "$((H1 - H0)) / $CLK_TCK * 1e6 / $DIST1" %.0f)
HWM1_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$HERALD_PID/status")
log "phase 1: $EPS1 events/s (writers: $W1)"

# --- 2. drain -----------------------------------------------------------------------------------
stop_herald
rm -f "$DIR"/commits/*
log "phase 2: herald stopped; $ROWS1 rows written 10 per transaction"
kill -USR1 "$RECV_PID"
W2=$(writer --clients "$CLIENTS" --rows "$ROWS1" --batch 10) || die "writers failed: $W2"
START_US=$(now_us)
start_herald
H0=$(cpu_ticks "$HERALD_PID")
NOTE2=''; wait_distinct "$ROWS1" || { FAILED=1; NOTE2=$MISSING; }
H1=$(cpu_ticks "$HERALD_PID")
receiver_summary; cp "$DIR/recv.out" "$DIR/phase2.out"
DIST2=$(kv distinct "$DIR/phase2.out")
EPS2=$(calc "$DIST2 / (($(kv last_us "$DIR/phase2.out") - $(kv first_us "$DIR/phase2.out")) / 1e6)" %.0f)
FIRST_MS2=$(calc "($(kv first_us "$DIR/phase2.out") - $START_US) / 1e3" %.0f)
HCPU2=$(calc "$((H1 - H0)) / $CLK_TCK * 1e6 / $DIST2" %.0f)
log "phase 2: $EPS2 events/s"

# --- 3. latency at a steady rate -------------------------------------------------------------
log "phase 3: $RATE events/s for $LAT_S s"
kill -USR1 "$RECV_PID"
sleep 1 # a quiet second first: herald's poll has backed off, as after any real lull
W3=$(writer --clients 4 --rate "$RATE" --seconds "$LAT_S" --commits "$DIR/commits") || die "writers failed: $W3"
ROWS3=$(echo "$W3" | tr ' ' '\n' | sed -n 's/^rows=//p')
NOTE3=''; wait_distinct "$ROWS3" || { FAILED=1; NOTE3=$MISSING; }
receiver_summary; cp "$DIR/recv.out" "$DIR/phase3.out"
C3=$(commit_latency)
C3S=$(commit_latency steady)
TPS3=$(echo "$W3" | tr ' ' '\n' | sed -n 's/^tps=//p')
log "phase 3: commit -> receipt $C3 ms"

# --- 4. memory and idle CPU -------------------------------------------------------------------
sleep 1
I0=$(cpu_ticks "$HERALD_PID"); T0=$EPOCHREALTIME
sleep "$IDLE_S"
I1=$(cpu_ticks "$HERALD_PID"); T1=$EPOCHREALTIME
IDLE_PCT=$(calc "$((I1 - I0)) / $CLK_TCK / ($T1 - $T0) * 100" %.2f)
HWM2_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$HERALD_PID/status")
HWM_KB=$((HWM1_KB > HWM2_KB ? HWM1_KB : HWM2_KB))
DUPS=$(($(kv duplicates "$DIR/phase1.out") + $(kv duplicates "$DIR/phase2.out") + $(kv duplicates "$DIR/phase3.out")))
ERRORS=$(grep -c 'level=\(warn\|error\)' "$DIR/herald.log" || true)

echo "| **SQLite**: end-to-end throughput, live ($ROWS1 single-row transactions, $CLIENTS writer processes) | **$EPS1 events/s**$NOTE1 (writers' commit rate $TPS1 tx/s; commit → receipt p50 / p99 / max $C1 ms; herald $HCPU1 µs CPU per event) |"
echo "| **SQLite**: backlog drain after a restart ($DIST2 rows waiting) | **$EPS2 events/s**$NOTE2 (first delivery $FIRST_MS2 ms after start; herald $HCPU2 µs CPU per event) |"
echo "| **SQLite**: latency at $RATE events/s for $LAT_S s, commit → receipt, p50 / p99 / max: whole run; after its first second | **$C3 ms**$NOTE3; $C3S ms ($ROWS3 rows, writers $TPS3 tx/s) |"
echo "| **SQLite**: herald peak RSS; idle CPU over $IDLE_S s; redeliveries / warnings logged; SQLITE_BUSY seen by the writers | $(calc "$HWM_KB / 1024" %.1f) MiB; $IDLE_PCT % of one core; $DUPS / $ERRORS; 0 |"
[ "$FAILED" = 0 ] || { log "some events were not delivered"; exit 1; }
