"""Errors raised by the event store. Each has a stable `code`; none knows about HTTP."""

from __future__ import annotations

from uuid import UUID


class EventStoreError(Exception):
    code = "event_store_error"


class VersionConflict(EventStoreError):
    """The stream is not at the version the caller expected."""

    code = "version_conflict"

    def __init__(self, *, stream_id: UUID, expected_version: int, current_version: int) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.current_version = current_version
        super().__init__(
            f"stream {stream_id}: expected {expected_version}, current {current_version}"
        )


class IdempotencyKeyReused(EventStoreError):
    """The idempotency key was first used for a different request."""

    code = "idempotency_key_reused"

    def __init__(self, *, key: str) -> None:
        self.key = key
        super().__init__(f"idempotency key {key!r} was already used for a different request")


class UnstorableValue(EventStoreError):
    """A value cannot be stored losslessly (float, NUL character, lone surrogate, ...)."""

    code = "unstorable_value"

    def __init__(self, *, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class InvalidCursor(EventStoreError):
    """A feed cursor that this store did not issue."""

    code = "invalid_cursor"

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        super().__init__(f"not a feed cursor: {cursor[:80]!r}")


class StreamNotFound(EventStoreError):
    """No stream has this id."""

    code = "stream_not_found"

    def __init__(self, *, stream_id: UUID) -> None:
        self.stream_id = stream_id
        super().__init__(f"no stream {stream_id}")


class StaleHead(EventStoreError):
    """The stream is at the expected version, but its last event is not the one the caller
    named: what the caller read of it is not what is stored (a cache of a stream that was
    rolled back, or of a database emptied and filled again)."""

    code = "stale_head"

    def __init__(self, *, stream_id: UUID, expected_version: int) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        super().__init__(f"stream {stream_id}: event {expected_version} is not the one expected")
