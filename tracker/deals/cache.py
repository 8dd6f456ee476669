"""A per-process cache of deal streams as last read: their events and the state they fold to.

Checking a new event needs the stream's current state, and replaying the whole stream on every
append made each one cost more than the last. The cache needs no invalidation, because a stream
is append-only and hash-chained: its first v events never change, and the hash of event v covers
every event up to it. A reader holding v events asks the store for the events from version v on
(`Snapshot.continued_by`); if the first one returned is version v with the cached hash, the
cached events are still the stream's first v and only the rest is new. Anything else (the
database emptied and filled again, as tests do; events read inside a transaction that then
rolled back) shows as a missing or different event v, and the stream is read whole.

Only events read from the store are cached, never drafts of events not yet stored: their hashes
are not known until the store has chained them, and their transaction may still roll back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS

from tracker.eventstore.store import RecordedEvent

from .events import META_TYPES, upcast
from .reducer import Deal, apply
from .replay import fold_key

FoldKey = tuple[int, str, int]

MAX_STREAMS = 256
MAX_EVENTS = 50_000
"""Events held across every stream: a few kilobytes each, so tens of megabytes per process.
A stream longer than this is not cached at all."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stream's events as read, in version order, with what checking a new event needs."""

    events: tuple[RecordedEvent, ...]
    state: Deal | None
    """`replay.replay_events(events).state`."""
    last_fact: FoldKey | None
    """The largest fold key any fact among `events` has, as recorded or as corrected since."""
    named: frozenset[UUID]
    """The events that the retractions and corrections among `events` act on."""
    history: dict[UUID, RecordedEvent]
    """`events` by id; shared by every reader, so never changed (read it through a ChainMap
    to add to it)."""

    @classmethod
    def of(cls, events: Sequence[RecordedEvent], state: Deal | None) -> Snapshot:
        """`events` with `state`, the replay of them, already computed by the caller."""
        last, named, history = _latest_fact(events)
        return cls(tuple(events), state, last, named, history)

    @property
    def version(self) -> int:
        return self.events[-1].version if self.events else 0

    def continued_by(self, rows: Sequence[RecordedEvent]) -> bool:
        """Whether `rows`, read from this snapshot's version on, start with its last event.

        Equal hashes at version v mean equal streams up to v: the chain hashes every earlier
        event into each one.
        """
        if not self.events or not rows:
            return False
        head, first = self.events[-1], rows[0]
        return first.version == head.version and first.hash == head.hash

    def fold_on(self, new: Sequence[RecordedEvent]) -> Snapshot | None:
        """The snapshot with `new` (the events after it) added, each folded on as the latest
        fact; None when one of them would not fold last in a replay, which must then replay.

        DOMAIN.md's replay folds facts by (period start, version) after applying retractions
        and corrections. A fact that sorts after every fact already folded, under its original
        date and any corrected one, and that no earlier retraction or correction names, is
        folded last: one `apply` gives the replay's state. `last_fact` includes dates that a
        correction moved a fact to, so a new fact dated between the two still replays.
        """
        if not new:
            return self
        state, last = self.state, self.last_fact
        for event in new:
            key = fold_key(event)
            if (
                state is None
                or event.type in META_TYPES
                or event.type == "DealOpened"
                or event.event_id in self.named
                or (last is not None and key <= last)
            ):
                return None
            state = apply(state, event)
            last = key
        history = {**self.history, **{event.event_id: event for event in new}}
        return Snapshot((*self.events, *new), state, last, self.named, history)


def _latest_fact(
    events: Sequence[RecordedEvent],
) -> tuple[FoldKey | None, frozenset[UUID], dict[UUID, RecordedEvent]]:
    """The largest fold key of the facts among `events`, the events named by the others, and
    `events` by id.

    A correction may move a fact to another date; the key of the fact at that date counts too,
    whether the correction is still in force or not, so the result is never below the key of
    any fact a replay folds.
    """
    last: FoldKey | None = None
    named: set[UUID] = set()
    by_id: dict[UUID, RecordedEvent] = {}
    for event in events:
        by_id[event.event_id] = event
        if event.type not in META_TYPES:
            key = fold_key(event)
        else:
            body, _ = upcast(event.type, event.schema_version, event.data)
            target = by_id.get(UUID(body["event_id"]))
            named.add(UUID(body["event_id"]))
            moved = body.get("occurred") if event.type == "FactCorrected" else None
            if not moved or target is None or target.type in META_TYPES:
                continue
            key = (0 if target.type == "DealOpened" else 1, moved["date"], target.version)
        if last is None or key > last:
            last = key
    return last, frozenset(named), by_id


class StreamCache:
    """Snapshots of the streams read last, by database alias and stream id; safe across threads.

    Bounded twice: at most `max_streams` streams and `max_events` events in all, the least
    recently used going first. Snapshots are immutable, so one handed out stays valid for its
    reader whatever the cache does next.
    """

    def __init__(self, max_streams: int = MAX_STREAMS, max_events: int = MAX_EVENTS) -> None:
        self.max_streams = max_streams
        self.max_events = max_events
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, UUID], Snapshot] = OrderedDict()
        self._events = 0

    def get(self, stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> Snapshot | None:
        with self._lock:
            found = self._entries.get((using, stream_id))
            if found is not None:
                self._entries.move_to_end((using, stream_id))
            return found

    def put(self, stream_id: UUID, snapshot: Snapshot, *, using: str = DEFAULT_DB_ALIAS) -> None:
        """Keep `snapshot` as the stream's latest; one of no events or too many is not kept."""
        key = (using, stream_id)
        size = len(snapshot.events)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._events -= len(old.events)
            if size == 0 or size > self.max_events:
                return
            self._entries[key] = snapshot
            self._events += size
            while len(self._entries) > self.max_streams or self._events > self.max_events:
                _, evicted = self._entries.popitem(last=False)
                self._events -= len(evicted.events)

    def discard(self, stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> None:
        with self._lock:
            old = self._entries.pop((using, stream_id), None)
            if old is not None:
                self._events -= len(old.events)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._events = 0

    @property
    def size(self) -> tuple[int, int]:
        """(streams, events) held."""
        with self._lock:
            return len(self._entries), self._events


streams = StreamCache()
"""The process's cache of deal streams, shared by its threads."""
