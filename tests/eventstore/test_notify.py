"""The notification `append` sends on PostgreSQL once its events commit, seen by a real LISTEN
connection of its own (tracker.eventstore.notify)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from uuid import UUID, uuid4

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction

from tracker.eventstore import store
from tracker.eventstore.notify import CHANNEL, connection_params, read_feed
from tracker.eventstore.store import NewEvent, append, stream_version

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

QUIET = 0.5
"""Seconds without a notification that count as none sent."""


class Rollback(Exception):
    pass


def note(text: str = "n") -> list[NewEvent]:
    return [NewEvent(type="NoteAdded", data={"text": text})]


@pytest.fixture(autouse=True)
def settled() -> Iterator[None]:
    """No notification of another test's appends arrives during this one, nor this one's after."""
    assert store.settle_announcements()
    yield
    assert store.settle_announcements()


@pytest.fixture
def notifications() -> Iterator[Callable[[float], int]]:
    """A connection LISTENing on the channel; yields `count(seconds)`: the notifications that
    arrive within `seconds` once every one asked for is sent (or had arrived since the last
    call)."""
    with psycopg.connect(**connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")

        def count(seconds: float = QUIET) -> int:
            # Whatever was asked for is sent first: a count of none is then not a late thread.
            assert store.settle_announcements()
            return sum(1 for _ in listener.notifies(timeout=seconds))

        yield count


def append_and_roll_back(stream: UUID) -> None:
    with transaction.atomic():
        append(stream, note(), 0)
        raise Rollback


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


class TestAnnouncedAfterCommit:
    def test_an_append_outside_a_transaction_is_announced_once_it_returns(self, notifications):
        append(uuid4(), note(), 0)
        assert notifications() == 1

    def test_nothing_is_announced_while_the_appending_transaction_is_open(self, notifications):
        stream = uuid4()
        with transaction.atomic():
            append(stream, note(), 0)
            assert notifications() == 0
        assert notifications() == 1
        assert stream_version(stream) == 1

    def test_a_woken_follower_finds_the_events_in_the_feed(self, notifications):
        appended = append(uuid4(), note(), 0)
        assert notifications() == 1
        assert [e.event.event_id for e in read_feed().entries] == [appended.events[0].event_id]

    def test_a_transaction_of_many_appends_is_announced_once(self, notifications):
        with transaction.atomic():
            for _ in range(3):
                append(uuid4(), note(), 0)
        assert notifications() == 1

    def test_an_insert_that_bypasses_append_is_not_announced(self, notifications):
        """Nothing announces from inside the appending transaction (migration 0008 dropped
        0007's trigger): a writer that bypasses `append` sends the notification itself."""
        stream = uuid4()
        append(stream, note(), 0)
        assert notifications() == 1
        raw_insert(stream, 2)
        assert notifications() == 0


def raw_insert(stream: UUID, version: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO eventstore_event (stream_id, version, event_id, type, schema_version, "
            "data, actor, recorded_at, prev_hash, hash) "
            "VALUES (%s, %s, %s, 'T', 1, '{}', '', now(), '', '')",
            [stream, version, uuid4()],
        )


def test_migration_0008_drops_the_trigger_and_going_back_restores_it(notifications):
    stream = uuid4()
    append(stream, note(), 0)
    assert notifications() == 1
    call_command("migrate", "eventstore", "0007", verbosity=0)
    try:
        raw_insert(stream, 2)
        assert notifications() == 1
    finally:
        call_command("migrate", "eventstore", verbosity=0)
    raw_insert(stream, 3)
    assert notifications() == 0


class TestNotAnnounced:
    def test_a_rolled_back_transaction_is_not_announced_and_does_not_silence_the_next(
        self, notifications
    ):
        stream = uuid4()
        with pytest.raises(Rollback):
            append_and_roll_back(stream)
        assert notifications() == 0
        assert stream_version(stream) == 0
        with transaction.atomic():
            append(stream, note(), 0)
        assert notifications() == 1

    def test_a_savepoint_rolled_back_does_not_silence_a_later_append_of_the_transaction(
        self, notifications
    ):
        kept = uuid4()
        with transaction.atomic():
            with pytest.raises(Rollback):
                append_and_roll_back(uuid4())  # a savepoint
            append(kept, note(), 0)
        assert notifications() == 1
        assert stream_version(kept) == 1

    def test_a_savepoint_released_keeps_the_announcement_of_its_append(self, notifications):
        with transaction.atomic():
            with transaction.atomic():
                append(uuid4(), note(), 0)
            append(uuid4(), note(), 0)
        assert notifications() == 1

    def test_a_repeat_under_an_idempotency_key_appends_nothing_and_is_not_announced(
        self, notifications
    ):
        stream = uuid4()
        first = append(stream, note("once"), 0, idempotency_key="key-1")
        assert notifications() == 1
        again = append(stream, note("once"), 0, idempotency_key="key-1")
        assert again.replayed is True
        assert again.events == first.events
        assert notifications() == 0


class TestManualTransactions:
    def test_with_autocommit_off_the_append_is_announced_when_the_transaction_commits(
        self, notifications
    ):
        connection.set_autocommit(False)
        try:
            append(uuid4(), note(), 0)
            assert notifications() == 0
            connection.commit()
        finally:
            connection.set_autocommit(True)
        assert notifications() == 1

    def test_with_autocommit_off_a_rollback_is_not_announced(self, notifications):
        connection.set_autocommit(False)
        try:
            append(uuid4(), note(), 0)
            connection.rollback()
        finally:
            connection.set_autocommit(True)
        assert notifications() == 0


class TestAFailedAnnouncement:
    def test_is_logged_does_not_fail_the_append_and_the_next_is_sent(
        self, notifications, caplog, monkeypatch
    ):
        """The notification's statement fails in the announcer's thread, tried twice."""
        stream = uuid4()
        caplog.set_level(logging.WARNING, logger="tracker.eventstore.store")
        monkeypatch.setattr(store, "_NOTIFY", "SELECT pg_notify('eventstore_appended', 1/0)")

        append(stream, note(), 0)
        assert store.settle_announcements()

        assert notifications() == 0
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "notification was not sent" in warnings[0]
        assert stream_version(stream) == 1
        monkeypatch.undo()
        append(stream, note(), 1)
        assert notifications() == 1

    def test_a_connection_the_server_closed_while_idle_is_replaced_at_once(
        self, notifications, caplog, settings
    ):
        settings.EVENT_NOTIFY_IDLE_SECONDS = 30.0
        caplog.set_level(logging.WARNING, logger="tracker.eventstore.store")
        with psycopg.connect(**connection_params(), autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            append(uuid4(), note(), 0)
            announcer_pid = next(listener.notifies(timeout=5)).pid
            assert store.settle_announcements()
            listener.execute("SELECT pg_terminate_backend(%s, 5000)", [announcer_pid])

            append(uuid4(), note(), 0)
            again = next(listener.notifies(timeout=5))

        assert again.pid != announcer_pid
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
        settings.EVENT_NOTIFY_IDLE_SECONDS = 0.0
        append(uuid4(), note(), 0)  # lets the thread give its connection back
        assert store.settle_announcements()
        assert notifications() >= 1


class TestSentFromAThreadOfItsOwn:
    def test_not_on_the_appending_connection(self, notifications):
        with psycopg.connect(**connection_params(), autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            append(uuid4(), note(), 0)
            sent = next(listener.notifies(timeout=5))
        assert sent.pid != backend_pid()
        assert notifications() == 1

    def test_a_burst_of_appends_is_announced_by_fewer_notifications_the_last_one_included(
        self, notifications, settings
    ):
        settings.EVENT_NOTIFY_INTERVAL_SECONDS = 0.2
        streams = [uuid4() for _ in range(20)]
        for stream in streams:
            append(stream, note(), 0)
        assert store.settle_announcements()
        count = notifications()
        assert 1 <= count < len(streams)
        # The last append's notification came after its commit: nothing is left to announce.
        assert notifications() == 0
