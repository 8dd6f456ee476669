"""The PostgreSQL backend's health check: no round trip for a healthy idle connection, and
Django's `SELECT 1` whenever the socket has something to say (config/postgresql/base.py)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from tracker.eventstore.notify import connection_params

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_backend_is_this_projects() -> None:
    assert connection.settings_dict["ENGINE"] == "config.postgresql"
    assert connection.vendor == "postgresql"


def test_a_healthy_idle_connection_is_usable_without_a_query(monkeypatch) -> None:
    connection.ensure_connection()
    asked: list[str] = []
    monkeypatch.setattr(DjangoWrapper, "is_usable", lambda self: asked.append("SELECT 1") or True)

    assert connection.is_usable() is True
    assert asked == []


def test_a_connection_the_server_has_ended_is_not_usable() -> None:
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and connection.is_usable():
        time.sleep(0.01)

    assert connection.is_usable() is False
    connection.close()
    connection.ensure_connection()
    assert connection.is_usable() is True


def test_something_unasked_on_the_socket_is_checked_with_a_query(monkeypatch) -> None:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("LISTEN config_postgresql_test")
    with psycopg.connect(**connection_params(), autocommit=True) as other:
        other.execute("NOTIFY config_postgresql_test")
    asked: list[str] = []
    real = DjangoWrapper.is_usable

    def spy(self) -> bool:
        asked.append("SELECT 1")
        return real(self)

    monkeypatch.setattr(DjangoWrapper, "is_usable", spy)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not asked:
        connection.is_usable()
        time.sleep(0.01)

    assert asked
    assert connection.is_usable() is True
    with connection.cursor() as cursor:
        cursor.execute("UNLISTEN *")
