"""Markers for the services `make test` starts, and test-only database plumbing."""

from __future__ import annotations

import importlib
import os

import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as PostgresWrapper
from django.db.backends.sqlite3.base import DatabaseWrapper as SqliteWrapper

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
HOW_TO_GET_THEM = "run `make test`, which starts PostgreSQL and Redis on 127.0.0.1"


def _patch_flush() -> None:
    """Let transactional tests empty the append-only events table between tests.

    The triggers refuse TRUNCATE and DELETE of events; the test database's superuser may bypass
    them as any superuser could, which is exactly what tests of the triggers rely on too.
    """
    events = importlib.import_module("tracker.eventstore.migrations.0002_append_only")
    digests = importlib.import_module("tracker.eventstore.migrations.0004_ledgerdigest")

    postgres_flush = PostgresWrapper.ops_class.sql_flush
    sqlite_flush = SqliteWrapper.ops_class.sql_flush

    def postgres(self, style, tables, **kwargs):
        statements = postgres_flush(self, style, tables, **kwargs)
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else []

    def sqlite(self, style, tables, **kwargs):
        statements = sqlite_flush(self, style, tables, **kwargs)
        if not statements:
            return []
        return [
            *events.SQLITE_BACKWARD,
            *digests.SQLITE_BACKWARD,
            *statements,
            *events.SQLITE_FORWARD,
            *digests.SQLITE_FORWARD,
        ]

    PostgresWrapper.ops_class.sql_flush = postgres
    SqliteWrapper.ops_class.sql_flush = sqlite


_patch_flush()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "replica: needs the PostgreSQL replica started by `make test` (skipped without it "
        "unless REQUIRE_SERVICES=1)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") and connections["default"].vendor != "postgresql":
        message = f"needs PostgreSQL: {HOW_TO_GET_THEM}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (REQUIRE_SERVICES=1)")
        pytest.skip(message)
    if item.get_closest_marker("replica") and "replica" not in settings.DATABASES:
        message = (
            "needs the PostgreSQL replica (DATABASE_REPLICA_URL): run `make test`, which "
            "starts one beside PostgreSQL unless SERVICES_REPLICA=0"
        )
        if REQUIRE_SERVICES:
            pytest.fail(message + " (REQUIRE_SERVICES=1)")
        pytest.skip(message)
    if item.get_closest_marker("redis") and not os.environ.get("CELERY_BROKER_URL"):
        message = f"needs Redis: {HOW_TO_GET_THEM}"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (REQUIRE_SERVICES=1)")
        pytest.skip(message)
