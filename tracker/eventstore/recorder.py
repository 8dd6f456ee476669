"""The recorder contract: what every backend's recorder does, and the parts they share.

A recorder appends to and reads from the event streams of one database alias. One subclass per
backend (`postgres.PostgresRecorder`, `sqlite.SqliteRecorder`) builds its statements once, in
`__init__`, and supplies what differs: how events are chained and inserted, how rows are read,
and how the feed stays gap-safe. Version checks, idempotency keys and stream lookups are here.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from .canonical import GENESIS_HASH, canonical_json, check_storable
from .errors import IdempotencyKeyReused, StaleHead, VersionConflict
from .feed import START, decode_cursor, encode_cursor
from .records import (
    Appended,
    FeedPage,
    LedgerSnapshot,
    NewEvent,
    RecordedEvent,
    StreamAppend,
    StreamHead,
)
from .verify import Verification, check_chain

EVENT_TABLE = "eventstore_event"
STREAM_TABLE = "eventstore_stream"
KEY_TABLE = "eventstore_idempotencykey"
# In the order of RecordedEvent's fields, so a typed row is its arguments as they stand.
COLUMNS = (
    "event_id, stream_id, version, position, type, schema_version, data, occurred, source, "
    "actor, recorded_at, prev_hash, hash"
)
_HASH_BATCH = 500

Body = dict[str, Any]
"""An event's stored fields bar its place: type, schema_version, data, occurred, source."""


@dataclass(frozen=True, slots=True)
class Batch:
    """One append's events, their bodies checked as storable, and where they go."""

    stream_id: UUID
    events: Sequence[NewEvent]
    bodies: list[Body]
    expected_version: int
    actor: str
    expected_head: str | None = None
    """The hash the stream's event `expected_version` must have, if the caller names one."""


class Recorder(ABC):
    """Appends to and reads from event streams on the database `alias`.

    Holds no connection: each call takes the alias's connection for the current thread, as
    Django hands them out.
    """

    now_sql: ClassVar[str]
    """The database's clock, as text usable in a statement run through Django's cursor."""
    lock_sql: ClassVar[str]
    """What to add to a SELECT of a stream's row to lock it until the transaction ends."""
    select_snapshot: str
    """Time, feed cursor (txid, position) and every stream's head, in one statement; built by
    each backend's `__init__`."""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        self.alias = alias
        now = self.now_sql
        self.select_events = (
            f"SELECT {COLUMNS} FROM {EVENT_TABLE} WHERE stream_id = %s AND version > %s "
            "ORDER BY version"
        )
        self.select_some_events = self.select_events + " LIMIT %s"
        self.select_version = f"SELECT version FROM {STREAM_TABLE} WHERE id = %s"
        self.select_head = f"SELECT id, version, head_hash FROM {STREAM_TABLE} WHERE id = %s"
        self.select_heads = (
            f"SELECT id, version, head_hash FROM {STREAM_TABLE} WHERE version > 0 ORDER BY id"
        )
        self.select_stream_ids = f"SELECT id FROM {STREAM_TABLE} ORDER BY id"
        self.create_stream = (
            f"INSERT INTO {STREAM_TABLE} (id, version, head_hash, updated_at) "
            f"VALUES (%s, 0, %s, {now}) ON CONFLICT (id) DO NOTHING "
            f"RETURNING version, head_hash, {now}"
        )
        self.lock_stream = (
            f"SELECT version, head_hash, {now} FROM {STREAM_TABLE} WHERE id = %s{self.lock_sql}"
        )
        self.select_key = (
            f"SELECT stream_id, fingerprint, first_version, last_version FROM {KEY_TABLE} "
            "WHERE key = %s"
        )
        self.insert_key = (
            f"INSERT INTO {KEY_TABLE} (key, stream_id, fingerprint, first_version, last_version, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING "
            "RETURNING key"
        )

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.alias]

    # --- appending ---------------------------------------------------------------------------

    def append(
        self,
        stream_id: UUID,
        events: Sequence[NewEvent],
        expected_version: int,
        *,
        actor: str = "",
        idempotency_key: str | None = None,
        expected_head: str | None = None,
    ) -> Appended:
        """Append events to one stream atomically, as versions expected_version+1 onwards.

        Raises VersionConflict if the stream is not at `expected_version` (0: must not exist
        yet). With `idempotency_key`, a repeat of the same request returns what was stored the
        first time and appends nothing; the key used for a different request raises
        IdempotencyKeyReused. With `expected_head`, StaleHead if the stream's event
        `expected_version` does not have that hash (checked under the same lock as the
        version).
        """
        batch = self._batch(stream_id, events, expected_version, actor, expected_head)
        try:
            if idempotency_key:
                return self._append_once(batch, idempotency_key)
            return self._append_unkeyed(batch)
        except IntegrityError as error:
            # The row lock makes a clash on (stream, version) unreachable for well-behaved
            # writers; one here means another writer got the version first by some other path.
            # Any other violation (an event_id used before) is the caller's error, kept as is.
            if not _is_version_clash(error):
                raise
            raise VersionConflict(
                stream_id=stream_id,
                expected_version=expected_version,
                current_version=self.stream_version(stream_id),
            ) from error

    def append_many(self, appends: Sequence[StreamAppend], *, actor: str = "") -> list[Appended]:
        """Append to several streams in one transaction: every append, or none of them.

        Each stream is checked as `append` checks it; the first one not at its expected version
        raises VersionConflict and rolls the whole call back (inside a caller's transaction, to
        a savepoint of its own).
        """
        batches = [
            self._batch(item.stream_id, item.events, item.expected_version, actor)
            for item in appends
        ]
        if len({batch.stream_id for batch in batches}) != len(batches):
            raise ValueError("append_many takes each stream once")
        if not batches:
            return []
        # Streams locked in one order by every writer of many: two such writers cannot each
        # hold a stream the other waits for.
        ordered = sorted(batches, key=lambda batch: batch.stream_id)
        try:
            with transaction.atomic(using=self.alias):
                appended = {a.stream_id: a for a in self._append_batches(ordered)}
            return [appended[batch.stream_id] for batch in batches]
        except VersionConflict as conflict:
            raise self._first_moved(batches) or conflict from None
        except IntegrityError as error:
            if not _is_version_clash(error):
                raise
            raise self._first_moved(batches) or VersionConflict(
                stream_id=batches[0].stream_id,
                expected_version=batches[0].expected_version,
                current_version=self.stream_version(batches[0].stream_id),
            ) from error

    def _first_moved(self, batches: Sequence[Batch]) -> VersionConflict | None:
        """The conflict of the first stream not at its expected version, read after the
        refused transaction is rolled back (only a refusal pays for these reads)."""
        for batch in batches:
            current = self.stream_version(batch.stream_id)
            if current != batch.expected_version:
                return VersionConflict(
                    stream_id=batch.stream_id,
                    expected_version=batch.expected_version,
                    current_version=current,
                )
        return None

    def _append_batches(self, batches: Sequence[Batch]) -> list[Appended]:
        """Every batch, in the caller's transaction; a backend may do it in one round trip."""
        return [self._append_unkeyed(batch) for batch in batches]

    def _batch(
        self,
        stream_id: UUID,
        events: Sequence[NewEvent],
        expected_version: int,
        actor: str,
        expected_head: str | None = None,
    ) -> Batch:
        if not events:
            raise ValueError("append needs at least one event")
        if expected_version < 0:
            raise ValueError("expected_version must be >= 0")
        bodies = [_storable_body(event, index) for index, event in enumerate(events)]
        return Batch(stream_id, events, bodies, expected_version, actor, expected_head)

    def _append_unkeyed(self, batch: Batch) -> Appended:
        """An append without an idempotency key; a backend may do it in fewer round trips."""
        return self._append_locked(batch)

    def _append_once(self, batch: Batch, key: str) -> Appended:
        """An append under an idempotency key: the same request twice stores its events once.

        The key is looked up under the stream's row lock, so a repeat sent to the same stream
        waits for the first to commit and then finds its key. A request with the same key to
        another stream holds another lock and gets past the lookup; the key's primary key lets
        only one of them store it. The other gets `_KeyTaken`, which rolls its events back, and
        answers as a repeat would: the stored events if the requests match, else
        IdempotencyKeyReused.
        """
        fingerprint = _fingerprint(batch)
        try:
            return self._append_locked(batch, key, fingerprint)
        except _KeyTaken:
            with self.connection.cursor() as cursor:
                earlier = self._find_key(cursor, key)
            if earlier is None:  # pragma: no cover - the clash proves the row committed
                raise IdempotencyKeyReused(key=key) from None
            return self._replay_key(earlier, key, fingerprint)

    def _append_locked(
        self, batch: Batch, key: str | None = None, fingerprint: str = ""
    ) -> Appended:
        # Why the stream's row is locked: the version check and the write must act as one, or
        # two writers at the same expected version would both pass it. The lock (taken by
        # creating the row for a new stream) queues writers to one stream, and a writer that
        # waited reads the version the other left and is refused; writers to different
        # streams never wait, as they would on a table lock. The row also holds the head hash
        # the new events chain onto. The unique (stream, version) index is the backstop.
        with transaction.atomic(using=self.alias), self.connection.cursor() as cursor:
            current, head, now = self._lock_stream(cursor, batch.stream_id, batch.expected_version)
            if key:
                earlier = self._find_key(cursor, key)
                if earlier is not None:
                    return self._replay_key(earlier, key, fingerprint)
            if current != batch.expected_version:
                raise VersionConflict(
                    stream_id=batch.stream_id,
                    expected_version=batch.expected_version,
                    current_version=current,
                )
            if batch.expected_head is not None and head != batch.expected_head:
                raise StaleHead(stream_id=batch.stream_id, expected_version=current)
            recorded = self._write(cursor, batch, head, now)
            if key:
                self._store_key(cursor, key, batch.stream_id, fingerprint, recorded)
        return Appended(stream_id=batch.stream_id, version=recorded[-1].version, events=recorded)

    def _lock_stream(
        self, cursor: Any, stream_id: UUID, expected_version: int
    ) -> tuple[int, str, datetime]:
        """Lock the stream's row (creating it for a new stream): version, head hash, now."""
        stream = self.id_param(stream_id)
        if expected_version == 0:
            cursor.execute(self.create_stream, [stream, GENESIS_HASH])
            row = cursor.fetchone()
            if row is not None:
                return row[0], row[1], to_utc(row[2])
        cursor.execute(self.lock_stream, [stream])
        row = cursor.fetchone()
        if row is None:
            raise VersionConflict(
                stream_id=stream_id, expected_version=expected_version, current_version=0
            )
        return row[0], row[1], to_utc(row[2])

    @abstractmethod
    def _write(
        self, cursor: Any, batch: Batch, head: str, now: datetime
    ) -> tuple[RecordedEvent, ...]:
        """Chain the events onto `head`, stamped `now`, insert them and move the stream's row
        on. Called under the stream's lock, once it is at `batch.expected_version`."""

    def _find_key(self, cursor: Any, key: str) -> tuple[UUID, str, int, int] | None:
        cursor.execute(self.select_key, [key])
        row = cursor.fetchone()
        if row is None:
            return None
        return to_uuid(row[0]), row[1], row[2], row[3]

    def _replay_key(
        self, earlier: tuple[UUID, str, int, int], key: str, fingerprint: str
    ) -> Appended:
        stream_id, stored_fingerprint, first, last = earlier
        if stored_fingerprint != fingerprint:
            raise IdempotencyKeyReused(key=key)
        events = self.read_stream(stream_id, first - 1, limit=last - first + 1)
        return Appended(stream_id=stream_id, version=last, events=tuple(events), replayed=True)

    def _store_key(
        self,
        cursor: Any,
        key: str,
        stream_id: UUID,
        fingerprint: str,
        recorded: Sequence[RecordedEvent],
    ) -> None:
        cursor.execute(
            self.insert_key,
            [
                key,
                self.id_param(stream_id),
                fingerprint,
                recorded[0].version,
                recorded[-1].version,
                self.connection.ops.adapt_datetimefield_value(recorded[0].recorded_at),
            ],
        )
        if cursor.fetchone() is None:
            raise _KeyTaken

    # --- reading -----------------------------------------------------------------------------

    def read_stream(
        self, stream_id: UUID, after_version: int = 0, *, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with version > after_version, in version order."""
        params: list[Any] = [self.id_param(stream_id), after_version]
        if limit is None:
            return self._fetch_events(self.select_events, params)
        return self._fetch_events(self.select_some_events, [*params, limit])

    def read_streams(self, stream_ids: Sequence[UUID]) -> dict[UUID, list[RecordedEvent]]:
        """Every event of these streams in one query, grouped by stream in version order; a
        stream with no events maps to an empty list."""
        grouped: dict[UUID, list[RecordedEvent]] = {stream_id: [] for stream_id in stream_ids}
        if grouped:
            sql, params = self.select_streams([self.id_param(i) for i in grouped])
            for event in self._fetch_events(sql, params):
                grouped[event.stream_id].append(event)
        return grouped

    def select_streams(self, ids: list[Any]) -> tuple[str, list[Any]]:
        placeholders = ", ".join(["%s"] * len(ids))
        return (
            f"SELECT {COLUMNS} FROM {EVENT_TABLE} WHERE stream_id IN ({placeholders}) "
            "ORDER BY stream_id, version",
            ids,
        )

    def read_all(self, after: str | None = None, limit: int = 1000) -> FeedPage:
        """Every stream's events in commit order, after the cursor `after` (None: from the start).

        Never skips an event that commits later with a smaller position.
        """
        if limit < 1:
            raise ValueError("limit must be >= 1")
        txid, position = decode_cursor(after) if after else START
        events, last_txid = self._read_feed(txid, position, limit)
        if not events:
            return FeedPage(events=(), next=encode_cursor(txid, position))
        return FeedPage(events=events, next=encode_cursor(last_txid, events[-1].position))

    def stream_version(self, stream_id: UUID) -> int:
        """The stream's current version; 0 if it does not exist."""
        row = self._fetch_one(self.select_version, [self.id_param(stream_id)])
        return row[0] if row else 0

    def stream_head(self, stream_id: UUID) -> StreamHead | None:
        """The stream's version and head hash as its row records them; None if it does not exist."""
        row = self._fetch_one(self.select_head, [self.id_param(stream_id)])
        return StreamHead(to_uuid(row[0]), row[1], row[2]) if row else None

    def stream_heads(self) -> list[StreamHead]:
        """Every stream with at least one event, by id."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.select_heads)
            return [StreamHead(to_uuid(row[0]), row[1], row[2]) for row in cursor.fetchall()]

    def iter_stream_ids(self) -> Iterator[UUID]:
        with self.connection.cursor() as cursor:
            cursor.execute(self.select_stream_ids)
            rows = cursor.fetchall()
        for (value,) in rows:
            yield to_uuid(value)

    def verify_stream(self, stream_id: UUID) -> Verification:
        """Recompute the stream's hash chain and report the first version that does not match."""
        events = self.read_stream(stream_id)
        return check_chain(stream_id, events, self.stream_head(stream_id))

    def event_hashes(self, stream_id: UUID, versions: Sequence[int]) -> dict[int, str]:
        """{version: hash} of the stream's events at `versions` (those that exist)."""
        stream = self.id_param(stream_id)
        stored: dict[int, str] = {}
        with self.connection.cursor() as cursor:
            for start in range(0, len(versions), _HASH_BATCH):
                batch = list(versions[start : start + _HASH_BATCH])
                marks = ", ".join(["%s"] * len(batch))
                cursor.execute(
                    f"SELECT version, hash FROM {EVENT_TABLE} "
                    f"WHERE stream_id = %s AND version IN ({marks})",
                    [stream, *batch],
                )
                stored.update(cursor.fetchall())
        return stored

    @abstractmethod
    def _fetch_events(self, sql: str, params: list[Any]) -> list[RecordedEvent]:
        """Run a SELECT of COLUMNS; its rows as events."""

    @abstractmethod
    def _read_feed(
        self, txid: int, position: int, limit: int
    ) -> tuple[tuple[RecordedEvent, ...], int]:
        """Up to `limit` events after (txid, position) in feed order, and the last one's txid."""

    def _fetch_one(self, sql: str, params: list[Any]) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    # --- ledger digests ----------------------------------------------------------------------

    def ledger_snapshot(self) -> LedgerSnapshot:
        """Every stream's head and the feed cursor they cover, from one statement's snapshot.

        In that snapshot each append's events and its stream row are both visible or both not.
        """
        with self.connection.cursor() as cursor:
            cursor.execute(self.select_snapshot)
            rows = cursor.fetchall()
        # Rows of (time, feed txid, feed position, stream id, version, head), the first three
        # alike on every row; the LEFT JOIN gives one row of NULL heads when there are none.
        taken_at = rows[0][0] or datetime.now(UTC)
        cursor = encode_cursor(int(rows[0][1] or 0), int(rows[0][2] or 0))
        heads = tuple(
            StreamHead(to_uuid(stream_id), version, head)
            for _, _, _, stream_id, version, head in rows
            if stream_id is not None
        )
        return LedgerSnapshot(taken_at=to_utc(taken_at), feed_cursor=cursor, heads=heads)

    # --- conversions -------------------------------------------------------------------------

    @abstractmethod
    def queue_on(self, table: str) -> None:
        """Make other callers for `table` wait until this transaction ends."""

    @abstractmethod
    def id_param(self, value: UUID) -> Any:
        """A UUID as this backend's driver takes it in a statement."""


class _KeyTaken(Exception):
    """The idempotency key was stored by a transaction that committed after this one began."""


def _storable_body(event: NewEvent, index: int) -> Body:
    body = {
        "type": event.type,
        "schema_version": event.schema_version,
        "data": dict(event.data),
        "occurred": dict(event.occurred) if event.occurred is not None else None,
        "source": dict(event.source) if event.source is not None else None,
    }
    check_storable(body, f"events[{index}]")
    return body


def _fingerprint(batch: Batch) -> str:
    """What a repeat of the request must match to be answered from its idempotency key."""
    request = {
        "stream_id": str(batch.stream_id),
        "expected_version": batch.expected_version,
        "events": batch.bodies,
    }
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


def _is_version_clash(error: IntegrityError) -> bool:
    constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
    if constraint is not None:
        return constraint == "event_stream_version_uniq"
    return "eventstore_event.version" in str(error)


def to_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def to_utc(value: Any) -> datetime:
    """A timestamp as a driver returns it (aware, naive UTC, or ISO text), aware in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
