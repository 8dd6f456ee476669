#!/usr/bin/env bash
# Start and stop a private PostgreSQL and Redis on 127.0.0.1, on free ports, in one directory.
#
#   scripts/services.sh start DIR [--durable|--fast]   start both; write their settings to DIR/env
#   scripts/services.sh stop DIR                       stop both
#   scripts/services.sh stop-postgres|start-postgres|stop-redis|start-redis DIR
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged system
# user (dealtracker, created if missing). --durable (the default) sets fsync, synchronous_commit
# and full_page_writes on, as production runs; --fast turns them off, for test runs only.
set -euo pipefail

command=${1:?usage: services.sh start|stop|... DIR}
dir=${2:?usage: services.sh start|stop|... DIR}
mode=${3:---durable}
service_user=dealtracker

pg_bindir() {
    for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && { echo "$candidate"; return 0; }
    done
    echo "PostgreSQL is not installed (apt-get install postgresql)" >&2
    return 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$service_user" -- "$@"
    else
        "$@"
    fi
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$service_user" >/dev/null 2>&1 \
        || useradd --system --no-create-home --shell /usr/sbin/nologin "$service_user"
}

start_postgres() {
    local bin port
    bin=$(pg_bindir)
    port=$PG_PORT
    as_owner "$bin/pg_ctl" -D "$dir/pg" -l "$dir/run/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket $PG_OPTIONS" start >/dev/null
}

stop_postgres() {
    local bin
    bin=$(pg_bindir)
    [ -f "$dir/pg/postmaster.pid" ] || return 0
    as_owner "$bin/pg_ctl" -D "$dir/pg" -m fast -w -t 60 stop >/dev/null || true
}

start_redis() {
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$dir" \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no \
        >/dev/null
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server did not answer on port $REDIS_PORT" >&2
    return 1
}

stop_redis() {
    [ -f "$dir/redis.pid" ] || return 0
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$dir/redis.pid"
}

load_env() {
    # shellcheck disable=SC1091
    set -a; . "$dir/env"; set +a
}

case $command in
start)
    mkdir -p "$dir"
    ensure_user
    bin=$(pg_bindir)
    command -v redis-server >/dev/null || { echo "Redis is not installed" >&2; exit 1; }
    PG_PORT=$(free_port)
    REDIS_PORT=$(free_port)
    case $mode in
    --durable) PG_OPTIONS="-c fsync=on -c synchronous_commit=on -c full_page_writes=on" ;;
    --fast) PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
    *)
        echo "unknown mode: $mode (--durable or --fast)" >&2
        exit 2
        ;;
    esac
    mkdir -p "$dir/pg" "$dir/socket" "$dir/run"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$service_user" "$dir/pg" "$dir/socket" "$dir/run"
    as_owner "$bin/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >"$dir/env" <<ENV
SERVICES_DIR=$dir
SERVICES_MODE=$mode
PG_BIN=$bin
PG_PORT=$PG_PORT
PG_OPTIONS="$PG_OPTIONS"
REDIS_PORT=$REDIS_PORT
DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/dealtracker
CELERY_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/1
ENV
    start_postgres || { cat "$dir/run/postgres.log" >&2; exit 1; }
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres dealtracker
    start_redis
    echo "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT ($dir)"
    ;;
stop)
    [ -f "$dir/env" ] || exit 0
    load_env
    stop_redis
    stop_postgres
    ;;
start-postgres) load_env; start_postgres ;;
stop-postgres) load_env; stop_postgres ;;
start-redis) load_env; start_redis ;;
stop-redis) load_env; stop_redis ;;
*)
    echo "unknown command: $command" >&2
    exit 2
    ;;
esac
