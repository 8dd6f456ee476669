"""The recorder contract on SQLite, the embedded default."""

from __future__ import annotations

import pytest
from django.db import connections

from tracker.eventstore.sqlite import SqliteRecorder
from tracker.eventstore.store import recorder

from .test_recorder import RecorderContract


@pytest.mark.django_db(databases=["sqlite"])
class TestSqliteRecorder(RecorderContract):
    alias = "sqlite"

    def test_backend_is_sqlite(self):
        assert connections[self.alias].vendor == "sqlite"

    def test_the_store_appends_through_one_sqlite_recorder(self):
        assert type(recorder(self.alias)) is SqliteRecorder
        assert recorder(self.alias) is recorder(self.alias)
