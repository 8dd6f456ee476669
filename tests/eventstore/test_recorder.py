"""The recorder contract: what the event store does on every backend.

`RecorderContract` is run per backend by `TestSqliteRecorder` (test_sqlite.py) and
`TestPostgresRecorder` (test_postgres.py), which add what only their backend does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from django.db import IntegrityError, transaction

from tracker.eventstore.canonical import GENESIS_HASH
from tracker.eventstore.errors import (
    IdempotencyKeyReused,
    InvalidCursor,
    StaleHead,
    UnstorableValue,
    VersionConflict,
)
from tracker.eventstore.feed import decode_cursor
from tracker.eventstore.store import (
    NewEvent,
    StreamAppend,
    append,
    append_many,
    read_all,
    read_stream,
    read_streams,
    stream_version,
    verify_stream,
)

OCCURRED = {"date": "2025-06-01", "precision": "month"}
SOURCE = {"title": "Drone makers team up", "publisher": "unknown", "url": None}


def event(kind: str = "NoteAdded", **data: object) -> NewEvent:
    return NewEvent(type=kind, data=data or {"text": "x"}, occurred=OCCURRED, source=SOURCE)


class RecorderContract:
    alias: str

    def append(self, *args, **kwargs):
        return append(*args, using=self.alias, **kwargs)

    def test_append_many_appends_to_every_stream_chained_as_append_chains(self):
        moved, new = uuid4(), uuid4()
        self.append(moved, [event()], 0)

        appended = append_many(
            [StreamAppend(new, [event(), event()], 0), StreamAppend(moved, [event()], 1)],
            actor="importer",
            using=self.alias,
        )

        assert [(a.stream_id, a.version) for a in appended] == [(new, 2), (moved, 2)]
        assert [e.version for e in appended[0].events] == [1, 2]
        assert appended[0].events == tuple(read_stream(new, using=self.alias))
        assert appended[1].events == tuple(read_stream(moved, using=self.alias)[1:])
        assert {e.actor for a in appended for e in a.events} == {"importer"}
        assert verify_stream(new, using=self.alias).valid
        assert verify_stream(moved, using=self.alias).valid

    def test_append_many_stores_nothing_when_one_stream_has_moved_on(self):
        moved, other, later = uuid4(), uuid4(), uuid4()
        self.append(moved, [event(), event()], 0)

        with pytest.raises(VersionConflict) as raised:
            append_many(
                [
                    StreamAppend(other, [event()], 0),
                    StreamAppend(moved, [event()], 1),
                    StreamAppend(later, [event()], 0),
                ],
                using=self.alias,
            )

        assert raised.value.stream_id == moved
        assert raised.value.current_version == 2
        assert stream_version(other, using=self.alias) == 0
        assert stream_version(later, using=self.alias) == 0
        assert stream_version(moved, using=self.alias) == 2
        # The connection is usable, and the streams can be appended to as they stand.
        assert append_many([StreamAppend(other, [event()], 0)], using=self.alias)[0].version == 1

    def test_append_many_inside_a_transaction_rolls_back_to_its_own_savepoint(self):
        kept, moved = uuid4(), uuid4()
        self.append(moved, [event()], 0)

        with transaction.atomic(using=self.alias):
            self.append(kept, [event()], 0)
            with pytest.raises(VersionConflict):
                append_many([StreamAppend(moved, [event()], 0)], using=self.alias)

        assert stream_version(kept, using=self.alias) == 1

    def test_append_many_takes_each_stream_once(self):
        stream = uuid4()
        with pytest.raises(ValueError, match="each stream once"):
            append_many(
                [StreamAppend(stream, [event()], 0), StreamAppend(stream, [event()], 1)],
                using=self.alias,
            )
        assert append_many([], using=self.alias) == []

    def test_reads_many_streams_in_one_call_grouped_in_version_order(self):
        first, second, absent = uuid4(), uuid4(), uuid4()
        self.append(first, [event(), event()], 0)
        self.append(second, [event()], 0)
        self.append(first, [event()], 2)

        grouped = read_streams([second, absent, first], using=self.alias)

        assert list(grouped) == [second, absent, first]
        assert [e.version for e in grouped[first]] == [1, 2, 3]
        assert grouped[first] == read_stream(first, using=self.alias)
        assert grouped[second] == read_stream(second, using=self.alias)
        assert grouped[absent] == []
        assert read_streams([], using=self.alias) == {}

    def test_appends_events_with_consecutive_versions(self):
        stream = uuid4()
        first = self.append(stream, [event()], 0)
        second = self.append(stream, [event(), event()], 1)
        assert [e.version for e in first.events] == [1]
        assert [e.version for e in second.events] == [2, 3]
        assert second.version == 3
        assert stream_version(stream, using=self.alias) == 3
        stored = read_stream(stream, using=self.alias)
        assert [e.version for e in stored] == [1, 2, 3]
        assert [e.event_id for e in stored] == [e.event_id for e in (*first.events, *second.events)]

    def test_positions_increase_in_append_order(self):
        stream = uuid4()
        appended = self.append(stream, [event(), event(), event()], 0)
        positions = [e.position for e in appended.events]
        assert positions == sorted(positions)
        assert len(set(positions)) == 3

    def test_refuses_stale_expected_version_with_current_version(self):
        stream = uuid4()
        self.append(stream, [event(), event()], 0)
        with pytest.raises(VersionConflict, match="expected 1, current 2") as caught:
            self.append(stream, [event()], 1)
        assert caught.value.current_version == 2
        assert stream_version(stream, using=self.alias) == 2

    def test_an_expected_head_other_than_the_streams_last_event_is_refused(self):
        stream = uuid4()
        first, second = self.append(stream, [event(), event()], 0).events
        with pytest.raises(StaleHead):
            self.append(stream, [event()], 2, expected_head=first.hash)
        assert stream_version(stream, using=self.alias) == 2
        appended = self.append(stream, [event()], 2, expected_head=second.hash)
        assert appended.events[0].prev_hash == second.hash

    def test_expected_version_zero_means_the_stream_must_not_exist(self):
        stream = uuid4()
        self.append(stream, [event()], 0)
        with pytest.raises(VersionConflict, match="expected 0, current 1"):
            self.append(stream, [event()], 0)

    def test_refuses_expected_version_of_a_stream_that_does_not_exist(self):
        with pytest.raises(VersionConflict, match="expected 3, current 0"):
            self.append(uuid4(), [event()], 3)

    def test_a_refused_batch_stores_none_of_its_events(self):
        stream = uuid4()
        self.append(stream, [event()], 0)
        with pytest.raises(UnstorableValue, match=r"events\[1\].data.amount"):
            self.append(stream, [event(), event(amount=1.5)], 1)
        assert stream_version(stream, using=self.alias) == 1
        assert len(read_stream(stream, using=self.alias)) == 1

    def test_round_trips_unicode_decimals_and_dates_exactly(self):
        stream = uuid4()
        data = {
            "name": "TUSAŞ",
            "country": "Türkiye",
            "value": {"amount": "5400000000.00", "currency": "GBP"},
            "quantity": 20,
            "signed_on": "2025-06-01",
            "quote": 'the start of a "deep and meaningful" alliance\n',
        }
        self.append(stream, [NewEvent(type="Fact", data=data, occurred=OCCURRED)], 0)
        (stored,) = read_stream(stream, using=self.alias)
        assert stored.data == data
        assert stored.occurred == OCCURRED
        assert stored.source is None

    def test_records_actor_and_database_time(self):
        before = datetime.now(UTC).replace(microsecond=0)
        stream = uuid4()
        appended = self.append(stream, [event()], 0, actor="alice")
        (stored,) = read_stream(stream, using=self.alias)
        assert stored.actor == "alice"
        assert stored.recorded_at == appended.events[0].recorded_at
        assert stored.recorded_at.tzinfo is not None
        # Within a transaction opened by the test itself, the database clock may read earlier.
        assert abs((stored.recorded_at - before).total_seconds()) < 3600

    def test_idempotency_key_repeat_returns_the_first_events_and_appends_nothing(self):
        stream = uuid4()
        first = self.append(stream, [event(), event()], 0, idempotency_key="req-1")
        again = self.append(stream, [event(), event()], 0, idempotency_key="req-1")
        assert again.replayed is True
        assert first.replayed is False
        assert [e.event_id for e in again.events] == [e.event_id for e in first.events]
        assert [e.hash for e in again.events] == [e.hash for e in first.events]
        assert stream_version(stream, using=self.alias) == 2

    def test_idempotency_key_repeat_still_answers_after_the_stream_moved_on(self):
        stream = uuid4()
        first = self.append(stream, [event()], 0, idempotency_key="req-2")
        self.append(stream, [event()], 1)
        again = self.append(stream, [event()], 0, idempotency_key="req-2")
        assert again.version == 1
        assert again.events[0].event_id == first.events[0].event_id
        assert stream_version(stream, using=self.alias) == 2

    def test_idempotency_key_reused_for_another_body_is_refused(self):
        stream = uuid4()
        self.append(stream, [event(text="a")], 0, idempotency_key="req-3")
        with pytest.raises(IdempotencyKeyReused, match="req-3"):
            self.append(stream, [event(text="b")], 1, idempotency_key="req-3")
        with pytest.raises(IdempotencyKeyReused):
            self.append(uuid4(), [event(text="a")], 0, idempotency_key="req-3")
        assert stream_version(stream, using=self.alias) == 1

    def test_hash_chain_links_each_event_to_the_previous(self):
        stream = uuid4()
        self.append(stream, [event(), event()], 0)
        self.append(stream, [event()], 2)
        stored = read_stream(stream, using=self.alias)
        assert stored[0].prev_hash == GENESIS_HASH
        assert [e.prev_hash for e in stored[1:]] == [e.hash for e in stored[:-1]]
        result = verify_stream(stream, using=self.alias)
        assert result.valid is True
        assert result.events == 3
        assert result.head == stored[-1].hash

    def test_read_stream_after_version(self):
        stream = uuid4()
        self.append(stream, [event(), event(), event()], 0)
        assert [e.version for e in read_stream(stream, 1, using=self.alias)] == [2, 3]
        assert read_stream(uuid4(), using=self.alias) == []

    def test_read_all_pages_through_every_event_once(self):
        streams = [uuid4() for _ in range(3)]
        expected = []
        for stream in streams:
            expected += [e.event_id for e in self.append(stream, [event(), event()], 0).events]
        seen, cursor = [], None
        while True:
            page = read_all(after=cursor, limit=4, using=self.alias)
            if not page.events:
                break
            seen += [e.event_id for e in page.events]
            cursor = page.next
        assert [e for e in seen if e in expected] == expected
        assert read_all(after=cursor, using=self.alias).next == cursor

    def test_read_all_refuses_a_cursor_it_did_not_issue(self):
        with pytest.raises(InvalidCursor):
            read_all(after="not-a-cursor!", using=self.alias)
        with pytest.raises(InvalidCursor):
            decode_cursor("LTEuNQ")  # "-1.5"

    def test_an_event_id_used_before_is_refused_and_not_taken_for_a_conflict(self):
        first = self.append(uuid4(), [event()], 0).events[0]
        stream = uuid4()
        again = NewEvent(type="NoteAdded", data={"text": "x"}, event_id=first.event_id)
        with pytest.raises(IntegrityError), transaction.atomic(using=self.alias):
            self.append(stream, [again], 0)
        assert stream_version(stream, using=self.alias) == 0

    def test_unstorable_values_are_refused_with_their_path(self):
        for bad, reason in [
            ({"x": float("nan")}, "floats"),
            ({"x": "a\x00b"}, "NUL"),
            ({"x": "\ud800"}, "Unicode"),
            ({"x": 2**60}, "too large"),
        ]:
            with pytest.raises(UnstorableValue, match=reason):
                self.append(uuid4(), [NewEvent(type="T", data=bad)], 0)
