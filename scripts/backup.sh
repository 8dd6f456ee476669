#!/usr/bin/env bash
# Back up the ledger and its reference data: scripts/backup.sh FILE
#
# A pg_dump (custom format, one consistent snapshot) of the database named by DATABASE_URL,
# holding the event store (events, streams, idempotency keys, ledger digests), the deals'
# reference data (organisations and their history), and users, groups, permissions and API
# tokens. Read models (projections_*) are left out: scripts/restore.sh rebuilds them from the
# events. Any role that can read these tables may run it; it takes no lock that stops writers.
set -euo pipefail

file=${1:?usage: scripts/backup.sh FILE}
: "${DATABASE_URL:?DATABASE_URL must name the PostgreSQL database to back up}"

pg_bin=${PG_BIN:-}
if [ -z "$pg_bin" ]; then
    for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/pg_dump" ] && { pg_bin=$candidate; break; }
    done
fi
[ -x "$pg_bin/pg_dump" ] || { echo "pg_dump not found; set PG_BIN" >&2; exit 1; }

# Patterns match tables and their sequences; one that matches nothing (an app not installed)
# is skipped.
tables=(
    'public.eventstore_*'
    'public.deals_*'
    'public.auth_*'
    'public.knox_*'
    'public.pghistory_*'
    'public.django_content_type*'
    'public.django_admin_log*'
)
args=()
for pattern in "${tables[@]}"; do
    args+=(--table="$pattern")
done

# Written beside the target and renamed when complete, so FILE is never a partial dump.
partial="$file.partial.$$"
trap 'rm -f "$partial"' EXIT
"$pg_bin/pg_dump" --format=custom --no-owner --no-privileges "${args[@]}" \
    --file="$partial" --dbname="$DATABASE_URL"
mv "$partial" "$file"
trap - EXIT
echo "Backed up $("$pg_bin/pg_restore" --list "$file" | grep -c ' TABLE DATA ') tables to $file"
