#!/usr/bin/env bash
# promtool.sh: prints the path of a promtool binary (to validate /metrics), fetching it once.
#
# promtool ships in Debian's prometheus package, but installing that package starts a Prometheus
# server listening on all interfaces. So the package is only downloaded (apt-get download) and
# unpacked (dpkg-deb -x) into a cache directory, never installed: $PROMTOOL_CACHE, by default
# tests/e2e/.tmp/promtool (ignored by git). $PROMTOOL, or a promtool on PATH, is used as it is.
# The package lists are refreshed (apt-get update, as root) only when apt does not know the
# package yet, as on a fresh CI machine. Progress goes to stderr; stdout is the path alone.
set -euo pipefail

if [[ -n "${PROMTOOL:-}" ]]; then
  echo "$PROMTOOL"
  exit 0
fi
if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PROMTOOL_CACHE:-$root/tests/e2e/.tmp/promtool}
bin=$cache/promtool
if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$(dirname "$cache")"
# Test files run in parallel: one fetches, the others wait for it.
exec 9>"$cache.lock"
flock 9
if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi

die() {
  echo "promtool.sh: $*" >&2
  exit 1
}
command -v apt-get >/dev/null || die "apt-get not found (Debian or Ubuntu needed); set PROMTOOL to a promtool binary"

tmp=$(mktemp -d "${cache}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
download() { (cd "$tmp" && apt-get download prometheus) >&2; }
if ! download; then
  [[ $(id -u) -eq 0 ]] || die "apt-get download prometheus failed; as root this script would run apt-get update first"
  echo "promtool.sh: refreshing the package lists (apt-get update)" >&2
  apt-get update >&2 || die "apt-get update failed"
  download || die "apt-get download prometheus failed"
fi
deb=$(ls "$tmp"/prometheus_*.deb 2>/dev/null | head -n1)
[[ -n $deb ]] || die "apt-get download left no prometheus_*.deb"
dpkg-deb -x "$deb" "$tmp/x" >&2
[[ -x $tmp/x/usr/bin/promtool ]] || die "$deb holds no usr/bin/promtool"
mkdir -p "$cache"
mv "$tmp/x/usr/bin/promtool" "$bin.new"
"$bin.new" --version >/dev/null 2>&1 || die "the extracted promtool does not run"
mv "$bin.new" "$bin"
echo "promtool.sh: $("$bin" --version 2>&1 | head -n1) in $cache" >&2
echo "$bin"
