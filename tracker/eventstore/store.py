"""The event store's public interface: append to and read from event streams.

`append` is the only writer of events. Each function runs on the database `using` through the
recorder for its backend (`postgres.PostgresRecorder`, `sqlite.SqliteRecorder`, both keeping
the contract of `recorder.Recorder`); `recorder(using)` gives it for what these do not cover.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, connections

from .postgres import PostgresRecorder
from .recorder import EVENT_TABLE, STREAM_TABLE, Recorder
from .records import Appended, FeedPage, NewEvent, RecordedEvent, StreamHead
from .sqlite import SqliteRecorder
from .verify import Verification

__all__ = [
    "EVENT_TABLE",
    "STREAM_TABLE",
    "Appended",
    "FeedPage",
    "NewEvent",
    "RecordedEvent",
    "Recorder",
    "StreamHead",
    "Verification",
    "append",
    "iter_stream_ids",
    "read_all",
    "read_stream",
    "read_streams",
    "recorder",
    "stream_head",
    "stream_version",
    "verify_stream",
]

_BACKENDS: dict[str, type[Recorder]] = {
    "postgresql": PostgresRecorder,
    "sqlite": SqliteRecorder,
}
_recorders: dict[tuple[str, str], Recorder] = {}


def recorder(using: str = DEFAULT_DB_ALIAS) -> Recorder:
    """The recorder for the database `using`, built (with its statements) once per process."""
    vendor = connections[using].vendor
    found = _recorders.get((using, vendor))
    if found is None:
        if vendor not in _BACKENDS:
            raise NotImplementedError(f"the event store has no recorder for {vendor}")
        found = _recorders[using, vendor] = _BACKENDS[vendor](using)
    return found


def append(
    stream_id: UUID,
    events: Sequence[NewEvent],
    expected_version: int,
    *,
    actor: str = "",
    idempotency_key: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> Appended:
    """Append events to one stream atomically, as versions expected_version+1 onwards.

    Raises VersionConflict if the stream is not at `expected_version` (0: must not exist yet).
    With `idempotency_key`, a repeat of the same request returns what was stored the first time
    and appends nothing; the key used for a different request raises IdempotencyKeyReused.
    """
    return recorder(using).append(
        stream_id, events, expected_version, actor=actor, idempotency_key=idempotency_key
    )


def read_stream(
    stream_id: UUID,
    after_version: int = 0,
    *,
    limit: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[RecordedEvent]:
    """The stream's events with version > after_version, in version order."""
    return recorder(using).read_stream(stream_id, after_version, limit=limit)


def read_streams(
    stream_ids: Sequence[UUID], *, using: str = DEFAULT_DB_ALIAS
) -> dict[UUID, list[RecordedEvent]]:
    """Every event of these streams, in one query: {stream id: its events in version order}.
    A stream that does not exist maps to an empty list."""
    return recorder(using).read_streams(stream_ids)


def read_all(
    after: str | None = None, limit: int = 1000, *, using: str = DEFAULT_DB_ALIAS
) -> FeedPage:
    """Every stream's events in commit order, after the cursor `after` (None: from the start).

    Never skips an event that commits later with a smaller position; a long-running writing
    transaction delays the feed instead. Raises InvalidCursor for a cursor it did not issue.
    """
    return recorder(using).read_all(after, limit)


def stream_version(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """The stream's current version; 0 if it does not exist."""
    return recorder(using).stream_version(stream_id)


def stream_head(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> StreamHead | None:
    """The stream's version and head hash as its row records them; None if it does not exist."""
    return recorder(using).stream_head(stream_id)


def iter_stream_ids(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[UUID]:
    """Every stream's id, in order."""
    return recorder(using).iter_stream_ids()


def verify_stream(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> Verification:
    """Recompute the stream's hash chain and report the first version that does not match."""
    return recorder(using).verify_stream(stream_id)
