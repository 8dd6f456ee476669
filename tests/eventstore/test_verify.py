"""Checking a chain: the first version that breaks it, and a stream row that disagrees."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from tracker.eventstore.canonical import GENESIS_HASH, chain_hash
from tracker.eventstore.records import RecordedEvent, StreamHead
from tracker.eventstore.verify import check_chain

STREAM = uuid4()


def chained(count: int) -> list[RecordedEvent]:
    events, prev = [], GENESIS_HASH
    for version in range(1, count + 1):
        draft = RecordedEvent(
            event_id=uuid4(),
            stream_id=STREAM,
            version=version,
            position=version,
            type="NoteAdded",
            schema_version=1,
            data={"text": str(version)},
            occurred=None,
            source=None,
            actor="alice",
            recorded_at=datetime(2025, 6, 1, tzinfo=UTC),
            prev_hash=prev,
            hash="",
        )
        prev = chain_hash(prev, draft.hashed_fields())
        events.append(draft._replace(hash=prev))
    return events


def head_of(events: list[RecordedEvent]) -> StreamHead:
    return StreamHead(STREAM, len(events), events[-1].hash)


class TestCheckChain:
    def test_a_whole_chain_ending_at_the_recorded_head_is_valid(self):
        events = chained(3)
        result = check_chain(STREAM, events, head_of(events))
        assert (result.valid, result.events, result.head) == (True, 3, events[-1].hash)

    def test_no_events_and_no_stream_row_is_an_empty_valid_stream(self):
        result = check_chain(STREAM, [], None)
        assert (result.valid, result.events, result.head) == (True, 0, GENESIS_HASH)

    def test_a_changed_event_fails_at_its_version(self):
        events = chained(3)
        events[1] = events[1]._replace(actor="mallory")
        result = check_chain(STREAM, events, head_of(events))
        assert (result.valid, result.first_bad_version) == (False, 2)
        assert result.reason == "hash does not match the event's contents"

    def test_a_missing_version_fails_where_it_should_be(self):
        events = chained(3)
        result = check_chain(STREAM, [events[0], events[2]], head_of(events))
        assert (result.valid, result.first_bad_version) == (False, 2)
        assert result.reason == "version 2 is missing"

    def test_a_stream_row_ahead_of_its_events_fails_after_the_last_event(self):
        events = chained(3)
        result = check_chain(STREAM, events[:2], head_of(events))
        assert (result.valid, result.first_bad_version, result.head) == (
            False,
            3,
            events[1].hash,
        )
        assert (
            result.reason == "the stream's recorded version or head hash does not match its events"
        )
