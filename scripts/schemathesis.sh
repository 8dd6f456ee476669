#!/usr/bin/env bash
# Fuzz the live API with schemathesis against its own /api/schema/: once with an editor's token
# and once with an auditor's. A response that is a 5xx (other than the documented 503) or that
# breaks the schema fails the run.
#
# Needs DATABASE_URL naming a PostgreSQL database (scripts/with-services.sh exports one). The
# script migrates it, loads the demo data, creates the two users, serves the project with
# gunicorn on a free 127.0.0.1 port, runs both passes and stops the server whatever happens.
#
#   scripts/with-services.sh scripts/schemathesis.sh
#
# SCHEMATHESIS_EXAMPLES (default 40) bounds the examples per operation and SCHEMATHESIS_PHASES
# (default examples,fuzzing) picks the phases: both passes together stay under two minutes.
# The coverage phase (boundary values of every keyword) takes minutes; run it on demand with
# SCHEMATHESIS_PHASES=examples,coverage,fuzzing. SCHEMATHESIS_ROLES (default "editor auditor")
# and SCHEMATHESIS_SEED reproduce one pass.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="${VENV_BIN:-$root/.venv/bin}"
examples="${SCHEMATHESIS_EXAMPLES:-40}"
seed="${SCHEMATHESIS_SEED:-}"

case "${DATABASE_URL:-}" in
postgres://* | postgresql://*) ;;
*)
    echo "schemathesis.sh: DATABASE_URL must name a PostgreSQL database" >&2
    exit 2
    ;;
esac

export DJANGO_SETTINGS_MODULE=config.settings
export DEBUG=0 SECRET_KEY=schemathesis-only-not-secret SECURE_SSL_REDIRECT=0
export ALLOWED_HOSTS=127.0.0.1,localhost
export API_THROTTLE_USER=10000000/min API_THROTTLE_ANON=10000000/min
# Projections are applied in the request that appends (no worker here), so the lists and
# details the fuzzer reads reflect what it wrote.
unset CELERY_BROKER_URL
export LOG_LEVEL="${LOG_LEVEL:-WARNING}"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$root"
"$bin/python" manage.py migrate --no-input -v0
"$bin/python" manage.py seed_demo >/dev/null
editor_token=$("$bin/python" manage.py create_api_user schemathesis-editor --role editor 2>/dev/null)
auditor_token=$("$bin/python" manage.py create_api_user schemathesis-auditor --role auditor 2>/dev/null)

port=$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$bin/gunicorn" config.wsgi:application --bind "127.0.0.1:$port" --workers 2 --threads 4 \
    --timeout 60 --log-level warning --error-logfile "$workdir/gunicorn.log" &
server_pid=$!

for _ in $(seq 1 100); do
    if "$bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
        "$base/health/" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "schemathesis.sh: gunicorn exited" >&2
        cat "$workdir/gunicorn.log" >&2
        exit 1
    fi
    sleep 0.1
done

status=0
for role in ${SCHEMATHESIS_ROLES:-editor auditor}; do
    token_var="${role}_token"
    echo "== schemathesis as $role ==" >&2
    args=(
        run "$base/api/schema/"
        --header "Authorization: Token ${!token_var}"
        --checks not_a_server_error,response_schema_conformance
        --max-examples "$examples"
        # One worker: schemathesis 4.32 compiles patterns in threads and can fail with
        # "AST constructor recursion depth mismatch" on CPython 3.11 with more.
        --workers "${SCHEMATHESIS_WORKERS:-1}"
        --phases "${SCHEMATHESIS_PHASES:-examples,fuzzing}"
        --generation-database none
        --request-timeout 20
        --no-color
        --suppress-health-check all
        # /health/ answers 503 by design when the database is down; the export streams JSON
        # Lines that no JSON Schema describes. The event streams never end (server-sent
        # events); tests/api/test_event_stream.py checks them on a real ASGI server.
        --exclude-path /health/
        --exclude-path-regex '/stream/$'
    )
    if [ -n "$seed" ]; then
        args+=(--seed "$seed")
    fi
    if ! "$bin/schemathesis" "${args[@]}"; then
        status=1
    fi
done

if [ "$status" -ne 0 ] && [ -s "$workdir/gunicorn.log" ]; then
    echo "== gunicorn log ==" >&2
    tail -n 100 "$workdir/gunicorn.log" >&2
fi
exit "$status"
