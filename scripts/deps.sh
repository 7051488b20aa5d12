#!/usr/bin/env bash
# deps.sh: make sure the Debian packages (and npm modules) herald's build and tests need are present.
# Idempotent and quiet when everything is installed. As root it installs what is missing with
# apt-get; otherwise it prints exactly the command that would.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --build  only what building herald needs
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libuv1-dev libpq-dev libsqlite3-dev
  libcurl4-openssl-dev libwebsockets-dev libwebsockets-evlib-uv libjansson-dev libfyaml-dev libssl-dev)
# postgresql-server-dev-15: the headers of the native capture module (pgext/), which the
# PostgreSQL end-to-end tests load into their servers.
test_pkgs=(libcmocka-dev postgresql postgresql-contrib postgresql-server-dev-15 sqlite3 nodejs npm
  util-linux procps)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--build" ] || want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  # nodejs/npm may come from outside Debian's packages (Node 20 on this machine): accept the commands.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent on a fresh machine; update once, quietly.
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/herald-deps.log 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/herald-deps.log 2>&1 || {
    cat /tmp/herald-deps.log >&2
    exit 1
  }
fi
# Installing the postgresql package may start a system cluster; herald's tests never use it.
echo "deps: done"
