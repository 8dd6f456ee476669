#!/usr/bin/env bash
# Install the Debian packages the test and demo commands need, when they are missing:
# PostgreSQL 15 and Redis (and chromium when the first argument is "browser").
set -uo pipefail

missing=()
pg_bindir() {
    for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}
pg_bindir >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ "${1:-}" = browser ]; then
    [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo -n"; else
        echo "Not root and no sudo: install ${missing[*]} yourself (apt-get install ${missing[*]})." >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null \
    && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
