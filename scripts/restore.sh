#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh: scripts/restore.sh FILE
#
# Into the database named by DATABASE_URL, which must be migrated (`manage.py migrate`, same
# code version as the backup) and hold no events. In one transaction: the backed-up tables are
# emptied (migrate creates groups, content types and permissions; the backup's rows replace
# them, so ids match), their rows are loaded, and each event's transaction id is set to the
# restoring transaction's. Then the read models are rebuilt (`rebuild_projections --drop`) and
# the ledger checked (`verify_ledger`): the script exits non-zero if either fails.
#
# Why the role must be a superuser: events and digests are append-only by triggers, and on
# PostgreSQL a trigger stamps each new event's recorded_at with the inserting transaction's
# time, which would change every restored hash. The load runs with
# session_replication_role = replica, which skips those triggers (and foreign-key checks,
# while rows arrive in any order); setting it needs a superuser, or on PostgreSQL 15+ a role
# granted `GRANT SET ON PARAMETER session_replication_role` that owns the tables.
#
# Why transaction ids are reset: the feed reads events below the oldest running transaction
# id (tracker/eventstore/store.py, read_all). Ids from the backed-up cluster may be far above
# this cluster's, which would hide the restored events from the feed until this cluster's ids
# caught up. Setting them to the restoring transaction's id keeps every restored event below
# every later one, ordered by position among themselves. Feed cursors issued before a restore
# are therefore not valid after it: readers start again from the beginning.
set -euo pipefail

file=${1:?usage: scripts/restore.sh FILE}
: "${DATABASE_URL:?DATABASE_URL must name the migrated, empty PostgreSQL database to restore into}"
[ -r "$file" ] || { echo "cannot read $file" >&2; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3

pg_bin=${PG_BIN:-}
if [ -z "$pg_bin" ]; then
    for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/pg_restore" ] && { pg_bin=$candidate; break; }
    done
fi
[ -x "$pg_bin/pg_restore" ] || { echo "pg_restore not found; set PG_BIN" >&2; exit 1; }

psql() { "$pg_bin/psql" -X -v ON_ERROR_STOP=1 -q --dbname="$DATABASE_URL" "$@"; }

events=$(psql -At -c "SELECT count(*) FROM eventstore_event")
if [ "$events" != 0 ]; then
    echo "refusing to restore: the target already holds $events events" >&2
    exit 1
fi

# TOC lines look like: `3401; 0 16420 TABLE DATA public eventstore_event postgres`.
tables=$("$pg_bin/pg_restore" --list "$file" \
    | awk '$4 == "TABLE" && $5 == "DATA" { printf "%s\"%s\".\"%s\"", sep, $6, $7; sep = ", " }')
[ -n "$tables" ] || { echo "$file holds no table data" >&2; exit 1; }

{
    echo "SET session_replication_role = replica;"
    echo "TRUNCATE $tables CASCADE;"
    "$pg_bin/pg_restore" --data-only --no-owner --no-privileges --file=- "$file"
    echo "UPDATE public.eventstore_event SET txid = pg_catalog.pg_current_xact_id();"
} | psql --single-transaction
echo "Restored $file"

cd "$here"
"$python" manage.py rebuild_projections --drop
"$python" manage.py verify_ledger
