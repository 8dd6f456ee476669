"""The database itself refuses to change or remove events; tampering shows in verify_stream."""

from __future__ import annotations

from uuid import uuid4

import pytest
from django.db import DatabaseError, IntegrityError, connections, transaction

from tracker.eventstore.store import NewEvent, append, read_stream, verify_stream


def three_events(alias: str):
    stream = uuid4()
    append(
        stream,
        [NewEvent(type="NoteAdded", data={"text": str(n)}) for n in range(3)],
        0,
        using=alias,
    )
    return stream


def assert_refused(alias: str, sql: str, params=()) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(using=alias),
        connections[alias].cursor() as cursor,
    ):
        cursor.execute(sql, params)


@pytest.mark.postgres
@pytest.mark.django_db
class TestAppendOnlyOnPostgres:
    alias = "default"

    def test_update_delete_and_truncate_are_refused(self):
        stream = three_events(self.alias)
        assert_refused(self.alias, "UPDATE eventstore_event SET data = '{}'")
        assert_refused(self.alias, "DELETE FROM eventstore_event WHERE stream_id = %s", [stream])
        assert_refused(self.alias, "TRUNCATE eventstore_event CASCADE")
        assert [e.data["text"] for e in read_stream(stream)] == ["0", "1", "2"]

    def test_streams_are_never_removed(self):
        stream = three_events(self.alias)
        assert_refused(self.alias, "DELETE FROM eventstore_stream WHERE id = %s", [stream])
        assert_refused(self.alias, "TRUNCATE eventstore_stream CASCADE")
        assert len(read_stream(stream)) == 3

    def test_an_event_of_no_stream_is_refused(self):
        stream = three_events(self.alias)
        with (
            pytest.raises(IntegrityError, match="every event belongs to a stream"),
            transaction.atomic(using=self.alias),
            connections[self.alias].cursor() as cursor,
        ):
            # One row of a known stream and one of none: the whole statement goes.
            cursor.execute(
                "INSERT INTO eventstore_event (stream_id, version, event_id, type, "
                "schema_version, data, actor, recorded_at, prev_hash, hash) "
                "VALUES (%s, 4, %s, 'NoteAdded', 1, '{}', '', now(), '', ''), "
                "(%s, 1, %s, 'NoteAdded', 1, '{}', '', now(), '', '')",
                [stream, uuid4(), uuid4(), uuid4()],
            )
        assert len(read_stream(stream)) == 3

    def test_a_row_altered_with_triggers_disabled_is_caught_at_its_version(self):
        stream = three_events(self.alias)
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                'UPDATE eventstore_event SET data = \'{"text": "forged"}\' '
                "WHERE stream_id = %s AND version = 2",
                [stream],
            )
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        result = verify_stream(stream)
        assert result.valid is False
        assert result.first_bad_version == 2
        assert "contents" in result.reason

    def test_a_removed_row_is_caught(self):
        stream = three_events(self.alias)
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                "DELETE FROM eventstore_event WHERE stream_id = %s AND version = 3", [stream]
            )
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        result = verify_stream(stream)
        assert result.valid is False
        assert result.first_bad_version == 3


@pytest.mark.django_db(databases=["sqlite"])
class TestAppendOnlyOnSqlite:
    alias = "sqlite"

    def test_update_and_delete_are_refused(self):
        stream = three_events(self.alias)
        assert_refused(self.alias, "UPDATE eventstore_event SET type = 'X'")
        assert_refused(self.alias, "DELETE FROM eventstore_event")
        assert len(read_stream(stream, using=self.alias)) == 3

    def test_a_row_altered_behind_the_triggers_is_caught_at_its_version(self):
        stream = three_events(self.alias)
        with connections[self.alias].cursor() as cursor:
            cursor.execute("DROP TRIGGER event_refuse_update")
            cursor.execute(
                "UPDATE eventstore_event SET actor = 'mallory' WHERE version = 1 "
                "AND stream_id = %s",
                [stream.hex],
            )
        result = verify_stream(stream, using=self.alias)
        assert result.valid is False
        assert result.first_bad_version == 1
