#!/usr/bin/env bash
# The demo on the production stack: a private PostgreSQL and Redis, gunicorn (2 workers), uvicorn
# for the event streams (on DEMO_STREAM_PORT, default DEMO_PORT + 1), a Celery worker and beat,
# with production settings. Ctrl-C stops everything it started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin="$root/.venv/bin"
port=${DEMO_PORT:-8000}
stream_port=${DEMO_STREAM_PORT:-$((port + 1))}
dir=$(mktemp -d "${TMPDIR:-/tmp}/dealtracker-stack.XXXXXX")
# PostgreSQL runs as an unprivileged user who must reach its data directory inside.
chmod 755 "$dir"
pids=()

cleanup() {
    trap - EXIT INT TERM
    echo "Stopping..."
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$here/services.sh" stop "$dir/services" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$here/services.sh" start "$dir/services"
set -a
# shellcheck disable=SC1091
. "$dir/services/env"
DEBUG=0
SECRET_KEY=${SECRET_KEY:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')}
SECURE_SSL_REDIRECT=0
ALLOWED_HOSTS=127.0.0.1,localhost
LOG_LEVEL=${LOG_LEVEL:-WARNING}
set +a

cd "$root"
"$bin/python" manage.py migrate --no-input -v0
"$bin/python" manage.py collectstatic --no-input -v0
"$bin/python" manage.py demo_setup --base-url "http://127.0.0.1:$port"
"$bin/gunicorn" config.wsgi:application --bind "127.0.0.1:$port" --workers 2 &
pids+=($!)
# Server-sent events from an ASGI process of their own (docker/entrypoint.sh: stream).
CONN_MAX_AGE=0 "$bin/uvicorn" config.asgi:application --host 127.0.0.1 --port "$stream_port" \
    --timeout-graceful-shutdown 3 --no-access-log &
pids+=($!)
"$bin/celery" -A config worker --loglevel=WARNING --concurrency 2 &
pids+=($!)
"$bin/celery" -A config beat --loglevel=WARNING --schedule "$dir/celerybeat-schedule" &
pids+=($!)
echo "PostgreSQL, Redis, gunicorn, uvicorn, a Celery worker and beat are running; Ctrl-C stops them."
echo "The feed as it commits (server-sent events), with a token printed above:"
echo "  curl -N -H 'Authorization: Token <token>' http://127.0.0.1:$stream_port/api/v1/events/stream/"
wait
