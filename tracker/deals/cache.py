"""A per-process cache of deal streams as last read: their events and the state they fold to.

Checking a new event needs the stream's current state, and replaying the whole stream on every
append made each one cost more than the last. The cache needs no invalidation, because a stream
is append-only and hash-chained: its first v events never change, and the hash of event v covers
every event up to it. A reader holding v events asks the store for the events from version v on
(`Snapshot.continued_by`); if the first one returned is version v with the cached hash, the
cached events are still the stream's first v and only the rest is new. Anything else (the
database emptied and filled again, as tests do; events read inside a transaction that then
rolled back) shows as a missing or different event v, and the stream is read whole.

Only events the store has returned are cached: those read, and those an append outside any
transaction has just stored and committed (`replay.remember`), never drafts of events not yet
stored, whose hashes are not known until the store has chained them and whose transaction may
still roll back.

A writer whose client expects the version cached decides on the cached stream without reading
it, and names the cached head's hash to the store, which refuses the append under the stream's
lock if that is not the stored head (`services._append_onto_cached`): the cache saves the read,
never the check.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

from tracker.eventstore.store import RecordedEvent

from .reducer import Deal

FoldKey = tuple[int, str, int]
"""`replay.fold_key`: where a fact sits in a replay's fold."""

MAX_STREAMS = 256
MAX_EVENTS = 50_000
"""Events held across every stream. An event takes about 1.5 KB in memory, so at most about
75 MB per process (settings.DEAL_STREAM_CACHE_EVENTS changes it; 0 turns the cache off). A
stream longer than this is not cached at all."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stream's events as read, in version order, and what checking a new event needs of
    them; `replay.snapshot` makes one and `replay.fold_on` grows it."""

    events: tuple[RecordedEvent, ...]
    state: Deal | None
    """`replay.replay_events(events).state`."""
    last_fact: FoldKey | None
    """The largest fold key any fact among `events` has, as recorded or as corrected since."""
    named: frozenset[UUID]
    """The events that the retractions and corrections among `events` act on."""
    history: dict[UUID, RecordedEvent]
    """`events` by id. Shared by every reader, so never changed: add to it through a
    ChainMap."""

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

    def put(
        self,
        stream_id: UUID,
        snapshot: Snapshot,
        *,
        using: str = DEFAULT_DB_ALIAS,
        unless_later: bool = False,
    ) -> None:
        """Keep `snapshot` as the stream's latest; one of no events or too many is not kept.
        With `unless_later`, a snapshot already held at a later version stays."""
        key = (using, stream_id)
        size = len(snapshot.events)
        with self._lock:
            held = self._entries.get(key)
            if unless_later and held is not None and held.version > snapshot.version:
                return
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

    @property
    def size(self) -> tuple[int, int]:
        """(streams, events) held."""
        with self._lock:
            return len(self._entries), self._events


streams = StreamCache(max_events=getattr(settings, "DEAL_STREAM_CACHE_EVENTS", MAX_EVENTS))
"""The process's cache of deal streams, shared by its threads."""
