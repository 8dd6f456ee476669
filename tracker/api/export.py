"""The offline-verifiable export of one stream: JSON Lines, described in docs/export-format.md.

Line 1 is a header naming the stream, its event count and head hash, read from the stream's row;
then one line per event, in version order, with every stored field, `prev_hash` and `hash`.
Every line is canonical JSON, so the bytes of an export of the same stream are the same apart
from `exported_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tracker.eventstore.canonical import canonical_json, format_timestamp
from tracker.eventstore.models import Stream
from tracker.eventstore.store import RecordedEvent, read_stream

FORMAT = "deal-tracker-export"
FORMAT_VERSION = 1
BATCH = 500


def stream_head(stream_id: UUID) -> tuple[int, str] | None:
    """The stream's (version, head hash), or None when it does not exist."""
    row = Stream.objects.filter(id=stream_id).values_list("version", "head_hash").first()
    return (row[0], row[1]) if row else None


def export_header(stream_id: UUID, events: int, head: str, exported_at: datetime) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "deal": str(stream_id),
        "events": events,
        "head": head,
        "exported_at": format_timestamp(exported_at),
    }


def export_record(event: RecordedEvent) -> dict[str, Any]:
    """The hashed fields (as hashed) plus position, prev_hash and hash."""
    return {
        **event.hashed_fields(),
        "position": event.position,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def export_lines(stream_id: UUID, version: int, head: str) -> Iterator[bytes]:
    """The export of versions 1..version, read in batches.

    Events are never changed or removed, so batches read one after another still give the
    stream as it stood at `version`, however many events are appended meanwhile.
    """
    yield _line(export_header(stream_id, version, head, datetime.now(UTC)))
    after = 0
    while after < version:
        events = read_stream(stream_id, after, limit=min(BATCH, version - after))
        if not events:
            return
        for event in events:
            yield _line(export_record(event))
        after = events[-1].version


def _line(value: dict[str, Any]) -> bytes:
    return (canonical_json(value) + "\n").encode("utf-8")
