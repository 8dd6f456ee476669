"""Checking one stream's hash chain against its events and its recorded head."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from .canonical import GENESIS_HASH, chain_hash
from .records import RecordedEvent, StreamHead


@dataclass(frozen=True, slots=True)
class Verification:
    stream_id: UUID
    valid: bool
    events: int
    head: str
    first_bad_version: int | None = None
    reason: str | None = None


def check_chain(
    stream_id: UUID, events: Sequence[RecordedEvent], recorded: StreamHead | None
) -> Verification:
    """Recompute the chain of `events` (the whole stream, in version order) and compare its end
    with the stream's `recorded` head (None: no stream row). Reports the first bad version."""
    prev = GENESIS_HASH
    for expected_version, event in enumerate(events, start=1):
        problem = None
        if event.version != expected_version:
            problem = f"version {expected_version} is missing"
        elif event.prev_hash != prev:
            problem = "prev_hash does not match the previous event's hash"
        elif chain_hash(prev, event.hashed_fields()) != event.hash:
            problem = "hash does not match the event's contents"
        if problem:
            return Verification(
                stream_id=stream_id,
                valid=False,
                events=len(events),
                head=events[-1].hash,
                first_bad_version=expected_version,
                reason=problem,
            )
        prev = event.hash
    recorded_version, recorded_head = (
        (recorded.version, recorded.hash) if recorded else (0, GENESIS_HASH)
    )
    if (recorded_version, recorded_head) != (len(events), prev):
        return Verification(
            stream_id=stream_id,
            valid=False,
            events=len(events),
            head=prev,
            first_bad_version=min(recorded_version, len(events)) + 1,
            reason="the stream's recorded version or head hash does not match its events",
        )
    return Verification(stream_id=stream_id, valid=True, events=len(events), head=prev)
