#!/usr/bin/env bash
# run-quickstart.sh: what `make run` runs. herald on the embedded SQLite default with
# examples/quickstart (an orders table, a trigger on it, one for custom events), and a local
# receiver, `herald sink`, that prints one line per delivery. Ctrl-C (or SIGTERM) stops both.
#
# Steps: create the orders table (schema.sql, through the sqlite3 shell; safe to repeat),
# `herald apply`, start `herald sink` and `herald serve`, wait until both are ready, then say
# what to type in a second terminal. A second run reuses the database and first lists the events
# of the previous runs. Without a terminal (CI=true, output to a pipe) it does the same, without
# colour.
#
# Environment: HERALD_BIN (default build/herald), QUICKSTART_DIR (default examples/quickstart;
# herald.db is created there), SINK_LISTEN (default 127.0.0.1:9000, where the example's webhooks
# point). HERALD_DATABASE_URL is ignored: the quickstart uses its own database.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${HERALD_BIN:-$root/build/herald}
dir=${QUICKSTART_DIR:-$root/examples/quickstart}
listen=${SINK_LISTEN:-127.0.0.1:9000}
config=$dir/herald.yaml
db=$dir/herald.db
# The quickstart's database is its own, whatever the environment names.
unset HERALD_DATABASE_URL

if [ -t 1 ] && [ -z "${CI:-}" ] && [ -z "${NO_COLOR:-}" ]; then
  bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
else
  bold='' dim='' off=''
fi
say() { printf '%s\n' "$*"; }
die() {
  printf 'run: %s\n' "$*" >&2
  exit 1
}

# Paths as the user would type them from here.
rel() {
  local r
  r=$(realpath --relative-to=. "$1" 2>/dev/null) || r=$1
  case $r in ../*) realpath "$1" ;; *) printf '%s' "$r" ;; esac
}

command -v sqlite3 >/dev/null 2>&1 ||
  die "the sqlite3 command is missing: apt-get install sqlite3 (scripts/deps.sh installs it)"
[ -x "$bin" ] || die "$bin not found: build herald first (make build)"
[ -f "$config" ] || die "$config not found"

seen_before=0
[ -s "$db" ] && seen_before=1
sqlite3 -bail -cmd '.timeout 5000' "$db" <"$dir/schema.sql" || die "cannot create the orders table in $db"
"$bin" apply "$config" >/dev/null || die "herald apply $config failed"

logs=$(mktemp -d "${TMPDIR:-/tmp}/herald-quickstart.XXXXXX")
sink_pid='' serve_pid=''
stop() {
  trap - INT TERM
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null
  [ -n "$sink_pid" ] && kill -TERM "$sink_pid" 2>/dev/null
  [ -n "$serve_pid" ] && wait "$serve_pid" 2>/dev/null
  [ -n "$sink_pid" ] && wait "$sink_pid" 2>/dev/null
  rm -rf "$logs"
}
on_signal() {
  say ""
  say "${dim}stopping herald and the receiver…${off}"
  stop
  say "stopped. The events stay in $(rel "$db"); make run again to see them."
  exit 0
}
trap on_signal INT TERM

# Waits up to 15 s for a line matching $2 in the log file $1 while process $3 lives.
wait_ready() {
  for _ in $(seq 150); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Job control puts sink and serve in process groups of their own: Ctrl-C reaches this script
# alone, which stops them with one SIGTERM each (serve takes a second signal as "exit now").
set -m
# Both write their log lines to the terminal and to a file the readiness checks read.
"$bin" sink --listen "$listen" 2> >(tee "$logs/sink.log" >&2) &
sink_pid=$!
if ! wait_ready "$logs/sink.log" 'msg=ready' "$sink_pid"; then
  stop
  die "herald sink could not listen on $listen (in use? SINK_LISTEN=127.0.0.1:9001 make run, and change the webhooks in $(rel "$config"))"
fi
"$bin" serve -c "$config" 2> >(tee "$logs/serve.log" >&2) &
serve_pid=$!
if ! wait_ready "$logs/serve.log" 'msg=ready' "$serve_pid"; then
  stop
  die "herald serve did not start (see its messages above)"
fi

q=$(rel "$db")
c=$(rel "$config")
say ""
say "${bold}herald is running${off} on ${bold}$q${off} (SQLite), delivering to herald sink on $listen."
say "  trigger orders        insert, update, delete on table orders -> http://$listen/orders"
say "  trigger order_events  custom events order.*                   -> http://$listen/order-events"
if [ "$seen_before" = 1 ]; then
  say ""
  say "Events of earlier runs (herald events --limit 10 -c $c):"
  "$bin" events --limit 10 -c "$config" 2>&1 | sed 's/^/  /'
fi
say ""
say "In a second terminal, change the table and watch the deliveries appear here:"
say "  ${bold}sqlite3 $q \"INSERT INTO orders (customer, total, items) VALUES ('ada', 42.5, '[\\\"tea\\\"]')\"${off}"
say "  sqlite3 $q \"UPDATE orders SET status = 'paid' WHERE customer = 'ada'\""
say "  sqlite3 $q \"INSERT INTO herald_emit (type, payload) VALUES ('order.shipped', '{\\\"id\\\": 1}')\""
say "Then look at:"
say "  $(rel "$bin") events --limit 10 -c $c    the log, newest first (--trigger orders: delivery states)"
say "  $(rel "$bin") status -c $c               backlog, retries and dead events per trigger"
say "  $c, docs/config.md, docs/guarantees.md (SQLite: section 6)"
say "Ctrl-C stops herald and the receiver."
say ""

# Runs until a signal, or until one of the two exits on its own.
wait -n "$serve_pid" "$sink_pid"
code=$?
say "run: $( kill -0 "$serve_pid" 2>/dev/null && echo 'herald sink' || echo 'herald serve') exited (code $code)" >&2
stop
exit "$code"
