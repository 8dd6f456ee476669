#!/usr/bin/env bash
# Start and stop a private PostgreSQL and Redis on 127.0.0.1, on free ports, in one directory.
#
#   scripts/services.sh start DIR [--durable|--fast] [--replica]
#                                  start both (and a replica); write their settings to DIR/env
#   scripts/services.sh stop DIR   stop them all
#   scripts/services.sh start-replica DIR   a hot standby of the primary, made on first use
#   scripts/services.sh stop-postgres|start-postgres|stop-replica|stop-redis|start-redis DIR
#
# PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged system
# user (dealtracker, created if missing). --durable (the default) sets fsync, synchronous_commit
# and full_page_writes on, as production runs; --fast turns them off, for test runs only.
#
# The replica (--replica, or SERVICES_REPLICA=1) is a streaming-replication hot standby on
# another free port, made by `pg_basebackup -R` of the primary, with a replication slot (so the
# primary keeps the WAL it has not replayed yet): initdb's defaults already give
# the primary what it needs (wal_level=replica, max_wal_senders=10, and pg_hba's `host
# replication all 127.0.0.1/32 trust`). Its URL reaches DIR/env as DATABASE_REPLICA_URL, with
# no database: it holds the primary's, and the settings read the one DATABASE_URL names.
# Starting it waits until it has replayed the primary's WAL as of its start, for at most
# SERVICES_REPLICA_TIMEOUT seconds (30), and fails saying so otherwise. stop-replica first has
# the primary checkpoint and the replica replay it, so that starting it again is immediate.
set -euo pipefail

command=${1:?usage: services.sh start|stop|... DIR}
dir=${2:?usage: services.sh start|stop|... DIR}
mode=--durable
with_replica=${SERVICES_REPLICA:-0}
for option in "${@:3}"; do
    case $option in
    --replica) with_replica=1 ;;
    *) mode=$option ;;
    esac
done
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

# The last line `psql` prints for these commands on the server at port $1; nothing if it does
# not answer.
ask() {
    local port=$1 args=()
    shift
    for command in "$@"; do args+=(-c "$command"); done
    "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtq "${args[@]}" \
        2>/dev/null | tail -n 1 || true
}

# The primary's WAL position once all of it is written out: with synchronous_commit off (--fast)
# the last commits may be in its buffers, not yet in the position it reports nor sent to a
# standby, until a commit that wrote WAL itself waits for them (a logical message nothing reads).
primary_position() {
    ask "$PG_PORT" "BEGIN" "SET LOCAL synchronous_commit = on" \
        "SELECT pg_logical_emit_message(true, 'services.sh', 'catch-up')" "COMMIT" \
        "SELECT pg_current_wal_lsn()"
}

create_replica() {
    REPLICA_PORT=$(free_port)
    mkdir -p "$dir/replica"
    chmod 700 "$dir/replica"
    [ "$(id -u)" = 0 ] && chown "$service_user" "$dir/replica"
    # -c fast: checkpoint at once rather than spread over minutes; -R: standby.signal and
    # primary_conninfo, so it starts as a standby streaming from the primary; -C -S: a
    # replication slot, so the primary keeps the WAL the replica has not received yet. Without
    # one a replica that falls behind a burst of writes (or is stopped through one) asks for
    # segments a checkpoint of the primary has removed, and never catches up.
    as_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$dir/replica" \
        -R -C -S dealtracker_replica -c fast -X stream --no-sync \
        >"$dir/run/basebackup.log" 2>&1 \
        || { cat "$dir/run/basebackup.log" >&2; return 1; }
    cat >>"$dir/env" <<ENV
REPLICA_PORT=$REPLICA_PORT
DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:$REPLICA_PORT
ENV
}

start_replica() {
    local timeout
    timeout=${SERVICES_REPLICA_TIMEOUT:-30}
    if [ ! -d "$dir/replica" ]; then
        # A copy that failed may have made its slot: dropped, or it would keep the primary's
        # WAL for good and refuse the next attempt's.
        create_replica || {
            ask "$PG_PORT" "SELECT pg_drop_replication_slot('dealtracker_replica')
                FROM pg_replication_slots WHERE slot_name = 'dealtracker_replica'" >/dev/null
            rm -rf "$dir/replica"
            return 1
        }
    fi
    # The same options as the primary (a standby needs settings such as max_connections at
    # least as high as its primary's), on its own port.
    as_owner "$PG_BIN/pg_ctl" -D "$dir/replica" -l "$dir/run/replica.log" -w -t "$timeout" \
        -o "-c listen_addresses=127.0.0.1 -p $REPLICA_PORT -k $dir/socket $PG_OPTIONS" \
        start >/dev/null || { tail -n 20 "$dir/run/replica.log" >&2; return 1; }
    await_replay "$timeout"
}

# Waits until the replica has replayed every commit the primary has made, for at most $1 s.
await_replay() {
    local timeout=$1 target replayed deadline
    target=$(primary_position)
    [ -n "$target" ] || { echo "the primary on port $PG_PORT does not answer" >&2; return 1; }
    deadline=$((SECONDS + timeout))
    while [ $SECONDS -lt $deadline ]; do
        replayed=$(ask "$REPLICA_PORT" \
            "SELECT pg_last_wal_replay_lsn() >= '$target' AND pg_is_in_recovery()")
        [ "$replayed" = t ] && return 0
        sleep 0.1
    done
    echo "the replica on port $REPLICA_PORT did not replay the primary's WAL up to $target" \
        "within ${timeout}s (SERVICES_REPLICA_TIMEOUT); its log:" >&2
    tail -n 20 "$dir/run/replica.log" >&2
    return 1
}

stop_replica() {
    [ -f "$dir/replica/postmaster.pid" ] || return 0
    as_owner "$PG_BIN/pg_ctl" -D "$dir/replica" -m fast -w -t 60 stop >/dev/null || true
}

# A stopped standby starts again from its last restartpoint, which is the last checkpoint of the
# primary it replayed, and accepts connections only once it has replayed from there to where it
# stopped: after minutes of writes, gigabytes, which took more than 30 s on a busy machine. A
# checkpoint of the primary, replayed before the stop, leaves the restart almost nothing to do.
stop_replica_for_restart() {
    [ -f "$dir/replica/postmaster.pid" ] || return 0
    ask "$PG_PORT" "CHECKPOINT" >/dev/null
    await_replay "${SERVICES_REPLICA_TIMEOUT:-30}" || true
    stop_replica
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
    PG_BIN=$bin
    PG_PORT=$(free_port)
    REDIS_PORT=$(free_port)
    case $mode in
    --durable) PG_OPTIONS="-c fsync=on -c synchronous_commit=on -c full_page_writes=on" ;;
    --fast) PG_OPTIONS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
    *)
        echo "unknown mode: $mode (--durable, --fast or --replica)" >&2
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
    if [ "$with_replica" = 1 ]; then
        start_replica
        echo "PostgreSQL replica (hot standby) on 127.0.0.1:$REPLICA_PORT"
    fi
    ;;
stop)
    [ -f "$dir/env" ] || exit 0
    load_env
    stop_redis
    stop_replica
    stop_postgres
    ;;
start-postgres) load_env; start_postgres ;;
stop-postgres) load_env; stop_postgres ;;
start-replica) load_env; start_replica ;;
stop-replica) load_env; stop_replica_for_restart ;;
start-redis) load_env; start_redis ;;
stop-redis) load_env; stop_redis ;;
*)
    echo "unknown command: $command" >&2
    exit 2
    ;;
esac
