"""The database router used when a read replica (the alias `replica`) is configured.

A router cannot see the request, so it cannot tell a read that may be a little stale (a list of
deals) from one that must not be (a token just revoked, the stream a write is about to check).
It therefore sends nothing to the replica by itself: the reads that may go there say so with
`using=` (tracker.api.replica decides, per request). What it does here is keep everything else
on the primary: writes of any model, including one read from the replica, and migrations, which
a read-only standby refuses (and receives from its primary anyway).
"""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"
"""The alias of the replica in settings.DATABASES."""


class PrimaryRouter:
    def db_for_read(self, model: type, **hints: Any) -> str | None:
        # None: Django's default, the primary, or the database an instance given as a hint
        # was read from (so a related object of a row read on the replica is read there too).
        return None

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        # A row read from the replica is written to the primary; otherwise Django's default
        # (the primary, or the database of the instance written).
        instance = hints.get("instance")
        if instance is not None and instance._state.db == REPLICA:
            return DEFAULT_DB_ALIAS
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # The same rows on both: an object read from the replica may be related to one read
        # from the primary.
        both = {obj1._state.db, obj2._state.db}
        return True if both <= {DEFAULT_DB_ALIAS, REPLICA} else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # No table is created, flushed or migrated on the standby: `migrate` and `flush`
        # leave it alone, and its tables come from the primary by replication.
        return False if db == REPLICA else None
