"""The PostgreSQL hot standby of the test services, as the tests see it: the `replica` alias.

`base` is its database backend in tests (tests/settings.py says why); `wait_for_replay` waits
until the standby has replayed every commit the primary has made.
"""

from __future__ import annotations

import time

from django.db import DEFAULT_DB_ALIAS, connections, transaction

REPLICA = "replica"


def primary_wal_position() -> str:
    """The primary's WAL position once every commit so far is written out.

    The test cluster runs with synchronous_commit off: the WAL of a commit may still be in the
    primary's buffers, neither in the position it reports nor sent to a standby. A commit made
    with synchronous_commit on writes out the WAL before it, if it wrote WAL itself (a
    transaction that only took an id commits asynchronously whatever the setting): here, a
    logical decoding message, which nothing reads.
    """
    primary = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic(using=DEFAULT_DB_ALIAS), primary.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = on")
        cursor.execute("SELECT pg_logical_emit_message(true, 'tests.standby', 'flush')")
    with primary.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def wait_for_replay(alias: str = REPLICA, timeout: float = 30.0) -> None:
    """Wait until the standby `alias` has replayed every commit the primary has made."""
    target = primary_wal_position()
    deadline = time.monotonic() + timeout
    # On the standby's `postgres` database: the test database may not have reached it yet.
    with connections[alias]._nodb_cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica did not replay the primary's WAL up to {target}")
            time.sleep(0.02)
