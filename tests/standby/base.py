"""PostgreSQL, for an alias that names a hot standby of the default database's server.

Django makes a test database for each alias the tests use and drops it at the end; on a
read-only standby `CREATE DATABASE` fails. Nor is one needed: a standby replicates the whole
cluster, so the test database made on the primary reaches it, migrated, under the same name.
So this backend's test database is only pointed at, once the standby has replayed it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.creation import DatabaseCreation

from . import wait_for_replay


class StandbyCreation(DatabaseCreation):
    def create_test_db(self, *args: Any, **kwargs: Any) -> str:
        # Runs after the default database's: tests/settings.py makes this alias depend on it.
        name = self._get_test_db_name()
        wait_for_replay(self.connection.alias)
        self.connection.close()
        settings.DATABASES[self.connection.alias]["NAME"] = name
        self.connection.settings_dict["NAME"] = name
        return name

    def destroy_test_db(
        self, old_database_name: str | None = None, *args: Any, **kwargs: Any
    ) -> None:
        # The primary drops the test database; the standby replays that.
        self.connection.close()
        if old_database_name is not None:
            settings.DATABASES[self.connection.alias]["NAME"] = old_database_name
            self.connection.settings_dict["NAME"] = old_database_name


class DatabaseWrapper(base.DatabaseWrapper):
    creation_class = StandbyCreation
