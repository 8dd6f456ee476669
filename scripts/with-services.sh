#!/usr/bin/env bash
# Run a command with a private PostgreSQL and Redis started for it, and stop them afterwards,
# whatever the command's outcome. Their addresses reach the command as DATABASE_URL,
# CELERY_BROKER_URL and REDIS_URL. If they cannot start, REQUIRE_SERVICES=1 fails the run;
# otherwise the command runs without them (tests that need them skip, saying why).
# PostgreSQL runs with fsync off unless SERVICES_MODE=--durable (for measurements).
# A hot-standby replica of it (DATABASE_REPLICA_URL) starts too unless SERVICES_REPLICA=0; by
# default measurements (--durable) run without one, so that streaming WAL to it does not
# share the machine with what they measure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/dealtracker-services.XXXXXX")
cleanup() {
    "$here/services.sh" stop "$dir" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if "$here/services.sh" start "$dir" "${SERVICES_MODE:---fast}"; then
    set -a
    # shellcheck disable=SC1091
    . "$dir/env"
    set +a
    mode=${SERVICES_MODE:---fast}
    if [ "${SERVICES_REPLICA:-$([ "$mode" = --durable ] && echo 0 || echo 1)}" = 1 ]; then
        if "$here/services.sh" start-replica "$dir"; then
            set -a
            # shellcheck disable=SC1091
            . "$dir/env"
            set +a
            echo "PostgreSQL replica (hot standby) on 127.0.0.1:$REPLICA_PORT"
        elif [ "${REQUIRE_SERVICES:-0}" = 1 ]; then
            echo "The PostgreSQL replica could not start, and REQUIRE_SERVICES=1: failing." >&2
            exit 1
        else
            echo "The PostgreSQL replica could not start: tests that need it will be skipped." >&2
        fi
    fi
elif [ "${REQUIRE_SERVICES:-0}" = 1 ]; then
    echo "PostgreSQL and Redis could not start, and REQUIRE_SERVICES=1: failing." >&2
    exit 1
else
    echo "PostgreSQL and Redis could not start: tests that need them will be skipped." >&2
fi

"$@"
