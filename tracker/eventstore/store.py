"""Append to and read from event streams.

`append` is the only writer of events. It locks the stream's row (not a table), so writers to
different streams never wait for each other; the feed stays gap-safe by reading in the order of
the writing transaction's id below the oldest running transaction (see `read_all`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import orjson
import psycopg
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.json import set_json_loads

from .canonical import (
    GENESIS_HASH,
    canonical_json,
    chain_hash,
    check_storable,
    format_timestamp,
    split_at_recorded_at,
)
from .errors import IdempotencyKeyReused, InvalidCursor, VersionConflict

EVENT_TABLE = "eventstore_event"
STREAM_TABLE = "eventstore_stream"
KEY_TABLE = "eventstore_idempotencykey"
# In the order of RecordedEvent's fields, so a typed row is its arguments as they stand.
_COLUMNS = (
    "event_id, stream_id, version, position, type, schema_version, data, occurred, source, "
    "actor, recorded_at, prev_hash, hash"
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `event_id` is generated when not given."""

    type: str
    data: Mapping[str, Any]
    occurred: Mapping[str, Any] | None = None
    source: Mapping[str, Any] | None = None
    schema_version: int = 1
    event_id: UUID = field(default_factory=uuid4)


class RecordedEvent(NamedTuple):
    """An event as stored: what it said, where it sits, when and by whom it was recorded.

    A named tuple rather than a frozen dataclass: as immutable, and built five times faster,
    which shows when a feed page or a replay makes thousands of them.
    """

    event_id: UUID
    stream_id: UUID
    version: int
    position: int
    type: str
    schema_version: int
    data: dict[str, Any]
    occurred: dict[str, Any] | None
    source: dict[str, Any] | None
    actor: str
    recorded_at: datetime
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "data": self.data,
            "event_id": str(self.event_id),
            "occurred": self.occurred,
            "recorded_at": format_timestamp(self.recorded_at),
            "schema_version": self.schema_version,
            "source": self.source,
            "stream_id": str(self.stream_id),
            "type": self.type,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class Appended:
    stream_id: UUID
    version: int
    events: tuple[RecordedEvent, ...]
    replayed: bool = False
    """True when an idempotency key matched an earlier append: nothing new was stored."""


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: tuple[RecordedEvent, ...]
    next: str
    """Opaque cursor to pass back as `after`; equal to the input cursor when nothing is new."""


@dataclass(frozen=True, slots=True)
class Verification:
    stream_id: UUID
    valid: bool
    events: int
    head: str
    first_bad_version: int | None = None
    reason: str | None = None


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
    if not events:
        raise ValueError("append needs at least one event")
    if expected_version < 0:
        raise ValueError("expected_version must be >= 0")
    bodies = [_storable_body(event, index) for index, event in enumerate(events)]
    fingerprint = _fingerprint(stream_id, expected_version, bodies) if idempotency_key else ""
    connection = connections[using]
    postgres = connection.vendor == "postgresql"
    try:
        if postgres and not idempotency_key:
            # One statement is atomic by itself; inside a caller's transaction a savepoint
            # keeps a refused append from aborting the rest of it.
            with transaction.atomic(using=using) if connection.in_atomic_block else nullcontext():
                recorded = _append_in_database(
                    connection, stream_id, events, bodies, expected_version, actor
                )
            return Appended(stream_id=stream_id, version=recorded[-1].version, events=recorded)
        with transaction.atomic(using=using), connection.cursor() as cursor:
            current, head, now = _lock_stream(connection, cursor, stream_id, expected_version)
            if idempotency_key:
                earlier = _find_key(connection, cursor, idempotency_key)
                if earlier is not None:
                    return _replay_key(connection, earlier, idempotency_key, fingerprint)
            if current != expected_version:
                raise VersionConflict(
                    stream_id=stream_id,
                    expected_version=expected_version,
                    current_version=current,
                )
            if postgres:
                recorded = _append_in_database(
                    connection, stream_id, events, bodies, expected_version, actor
                )
            else:
                recorded = _chain(stream_id, events, bodies, current, head, now, actor)
                recorded = _insert(connection, cursor, stream_id, recorded, now)
            if idempotency_key:
                _store_key(connection, cursor, idempotency_key, stream_id, fingerprint, recorded)
    except _KeyTaken:
        # A concurrent request with the same key committed first (to another stream, or this
        # one by a path the row lock did not cover). This transaction is rolled back; the
        # answer is that request's, or IdempotencyKeyReused if it was a different one.
        with connection.cursor() as cursor:
            earlier = _find_key(connection, cursor, idempotency_key)
        if earlier is None:  # pragma: no cover - the clash proves the row committed
            raise IdempotencyKeyReused(key=idempotency_key) from None
        return _replay_key(connection, earlier, idempotency_key, fingerprint)
    except IntegrityError as error:
        # The row lock makes a clash on (stream, version) unreachable for well-behaved writers;
        # one here means another writer got the version first by some other path. Any other
        # violation (an event_id used before) is the caller's error and stays as it is.
        if not _is_version_clash(error):
            raise
        raise VersionConflict(
            stream_id=stream_id,
            expected_version=expected_version,
            current_version=stream_version(stream_id, using=using),
        ) from error
    return Appended(stream_id=stream_id, version=recorded[-1].version, events=recorded)


def read_stream(
    stream_id: UUID,
    after_version: int = 0,
    *,
    limit: int | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> list[RecordedEvent]:
    """The stream's events with version > after_version, in version order."""
    connection = connections[using]
    sql = (
        f"SELECT {_COLUMNS} FROM {EVENT_TABLE} WHERE stream_id = %s AND version > %s "
        "ORDER BY version"
    )
    params: list[Any] = [_uuid_param(connection, stream_id), after_version]
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    if connection.vendor == "postgresql":
        return [RecordedEvent(*row) for row in _fetch_typed(connection, sql, params)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [_event_from_row(row) for row in cursor.fetchall()]


def stream_version(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """The stream's current version; 0 if it does not exist."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT version FROM {STREAM_TABLE} WHERE id = %s",
            [_uuid_param(connection, stream_id)],
        )
        row = cursor.fetchone()
    return row[0] if row else 0


# The transaction id goes out as a bigint named feed_txid: a column named txid would be what
# ORDER BY txid sorts by, which no index serves (and, as text, sorts wrongly).
FEED_SQL = (
    f"SELECT {_COLUMNS}, txid::text::bigint AS feed_txid FROM {EVENT_TABLE} "
    "WHERE (txid, position) > (%s::text::xid8, %s) "
    "AND txid < pg_snapshot_xmin(pg_current_snapshot()) "
    "ORDER BY txid, position LIMIT %s"
)


def read_all(
    after: str | None = None, limit: int = 1000, *, using: str = DEFAULT_DB_ALIAS
) -> FeedPage:
    """Every stream's events in commit order, after the cursor `after` (None: from the start).

    Never skips an event that commits later with a smaller position. On PostgreSQL each event
    carries the id of the transaction that wrote it, and a page holds only events of
    transactions below `pg_snapshot_xmin(pg_current_snapshot())`: all of those have ended,
    and any transaction still to commit has a larger id, so it sorts after the cursor. A
    long-running writing transaction therefore delays the feed; it never makes it skip.
    SQLite has one writer at a time, so position order is commit order there.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    txid, position = decode_cursor(after) if after else (0, 0)
    connection = connections[using]
    if connection.vendor == "postgresql":
        rows = _fetch_typed(connection, FEED_SQL, [str(txid), position, limit])
        if not rows:
            return FeedPage(events=(), next=encode_cursor(txid, position))
        events = tuple(RecordedEvent(*row[:-1]) for row in rows)
        return FeedPage(events=events, next=encode_cursor(rows[-1][-1], events[-1].position))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_COLUMNS} FROM {EVENT_TABLE} WHERE position > %s ORDER BY position LIMIT %s",
            [position, limit],
        )
        rows = cursor.fetchall()
    if not rows:
        return FeedPage(events=(), next=encode_cursor(txid, position))
    events = tuple(_event_from_row(row) for row in rows)
    return FeedPage(events=events, next=encode_cursor(0, events[-1].position))


def verify_stream(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> Verification:
    """Recompute the stream's hash chain and report the first version that does not match."""
    events = read_stream(stream_id, using=using)
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
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT version, head_hash FROM {STREAM_TABLE} WHERE id = %s",
            [_uuid_param(connection, stream_id)],
        )
        row = cursor.fetchone()
    recorded_version, recorded_head = row if row else (0, GENESIS_HASH)
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


def iter_stream_ids(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[UUID]:
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {STREAM_TABLE} ORDER BY id")
        for (value,) in cursor.fetchall():
            yield _uuid(value)


def encode_cursor(txid: int, position: int) -> str:
    raw = f"{txid}.{position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        txid_text, position_text = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii").split(".")
        )
        txid, position = int(txid_text), int(position_text)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidCursor(cursor) from None
    if txid < 0 or position < 0 or txid >= 2**64 or position >= 2**63:
        raise InvalidCursor(cursor)
    return txid, position


# --- inside append -----------------------------------------------------------------------


def _storable_body(event: NewEvent, index: int) -> dict[str, Any]:
    body = {
        "type": event.type,
        "schema_version": event.schema_version,
        "data": dict(event.data),
        "occurred": dict(event.occurred) if event.occurred is not None else None,
        "source": dict(event.source) if event.source is not None else None,
    }
    check_storable(body, f"events[{index}]")
    return body


def _fingerprint(stream_id: UUID, expected_version: int, bodies: list[dict[str, Any]]) -> str:
    request = {
        "stream_id": str(stream_id),
        "expected_version": expected_version,
        "events": bodies,
    }
    return hashlib.sha256(canonical_json(request).encode("utf-8")).hexdigest()


# Parameters go in binary (%b): psycopg's text form of an array escapes each element with a
# regular expression, which costs more than the whole append for a batch of events.
_APPEND_ARRAY_TYPES = ("uuid", "text", "integer", "text", "text", "text", "text", "text")


def _append_sql(array: str) -> str:
    """The call of `eventstore_append`, its per-event arguments bound as `array` says."""
    arrays = ", ".join(array.format(type=name) for name in _APPEND_ARRAY_TYPES)
    return (
        "SELECT o_version, o_position, o_prev_hash, o_hash, o_recorded_at "
        f"FROM eventstore_append(%b, %b, %b, {arrays})"
    )


_APPEND_SQL = _append_sql("%b::{type}[]")
# One event: scalars, which bind for a fraction of what an array costs.
_APPEND_ONE_SQL = _append_sql("ARRAY[%b::{type}]")


def _append_in_database(
    connection: BaseDatabaseWrapper,
    stream_id: UUID,
    events: Sequence[NewEvent],
    bodies: list[dict[str, Any]],
    expected_version: int,
    actor: str,
) -> tuple[RecordedEvent, ...]:
    """PostgreSQL: lock, check, chain, insert and move the stream on in one round trip."""
    prefixes, suffixes, data, occurred, source = [], [], [], [], []
    actor_json = canonical_json(actor)
    stream_json = f'"{stream_id}"'
    for offset, (event, body) in enumerate(zip(events, bodies, strict=True), start=1):
        # Each part is encoded once: it is both stored and hashed.
        encoded = {
            "actor": actor_json,
            "data": canonical_json(body["data"]),
            "event_id": f'"{event.event_id}"',
            "occurred": canonical_json(body["occurred"]),
            "schema_version": canonical_json(body["schema_version"]),
            "source": canonical_json(body["source"]),
            "stream_id": stream_json,
            "type": canonical_json(body["type"]),
            "version": str(expected_version + offset),
        }
        prefix, suffix = split_at_recorded_at(encoded)
        prefixes.append(prefix)
        suffixes.append(suffix)
        data.append(encoded["data"])
        occurred.append(None if body["occurred"] is None else encoded["occurred"])
        source.append(None if body["source"] is None else encoded["source"])
    arrays = [
        [event.event_id for event in events],
        [body["type"] for body in bodies],
        [body["schema_version"] for body in bodies],
        data,
        occurred,
        source,
        prefixes,
        suffixes,
    ]
    if len(events) == 1:
        sql, params = _APPEND_ONE_SQL, [stream_id, expected_version, actor, *(a[0] for a in arrays)]
    else:
        sql, params = _APPEND_SQL, [stream_id, expected_version, actor, *arrays]
    connection.ensure_connection()
    try:
        # Bound on the server rather than quoted into the text as Django's cursor does: quoting
        # arrays of JSON costs more than the append itself. The wrapper still turns driver
        # errors into Django's.
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True, binary=True)
            rows = sorted(cursor.fetchall())
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) != "DT409":
            raise
        raise VersionConflict(
            stream_id=stream_id,
            expected_version=expected_version,
            current_version=int(error.__cause__.diag.message_detail),
        ) from None
    return tuple(
        RecordedEvent(
            event_id=event.event_id,
            stream_id=stream_id,
            version=version,
            position=position,
            type=body["type"],
            schema_version=body["schema_version"],
            data=body["data"],
            occurred=body["occurred"],
            source=body["source"],
            actor=actor,
            recorded_at=_timestamp(recorded_at),
            prev_hash=prev_hash,
            hash=digest,
        )
        for event, body, (version, position, prev_hash, digest, recorded_at) in zip(
            events, bodies, rows, strict=True
        )
    )


def _lock_stream(
    connection: BaseDatabaseWrapper, cursor: Any, stream_id: UUID, expected_version: int
) -> tuple[int, str, datetime]:
    """Lock the stream's row (creating it for a new stream): version, head hash, database now."""
    stream = _uuid_param(connection, stream_id)
    postgres = connection.vendor == "postgresql"
    now_sql = "now()" if postgres else "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"
    if expected_version == 0:
        cursor.execute(
            f"INSERT INTO {STREAM_TABLE} (id, version, head_hash, updated_at) "
            f"VALUES (%s, 0, %s, {now_sql}) ON CONFLICT (id) DO NOTHING "
            f"RETURNING version, head_hash, {now_sql}",
            [stream, GENESIS_HASH],
        )
        row = cursor.fetchone()
        if row is not None:
            return row[0], row[1], _timestamp(row[2])
    lock = " FOR UPDATE" if postgres else ""
    cursor.execute(
        f"SELECT version, head_hash, {now_sql} FROM {STREAM_TABLE} WHERE id = %s{lock}",
        [stream],
    )
    row = cursor.fetchone()
    if row is None:
        raise VersionConflict(
            stream_id=stream_id, expected_version=expected_version, current_version=0
        )
    return row[0], row[1], _timestamp(row[2])


def _chain(
    stream_id: UUID,
    events: Sequence[NewEvent],
    bodies: list[dict[str, Any]],
    current: int,
    head: str,
    now: datetime,
    actor: str,
) -> list[RecordedEvent]:
    recorded = []
    prev = head
    for offset, (event, body) in enumerate(zip(events, bodies, strict=True), start=1):
        draft = RecordedEvent(
            event_id=event.event_id,
            stream_id=stream_id,
            version=current + offset,
            position=0,
            type=body["type"],
            schema_version=body["schema_version"],
            data=body["data"],
            occurred=body["occurred"],
            source=body["source"],
            actor=actor,
            recorded_at=now,
            prev_hash=prev,
            hash="",
        )
        digest = chain_hash(prev, draft.hashed_fields())
        recorded.append(draft._replace(hash=digest))
        prev = digest
    return recorded


def _insert(
    connection: BaseDatabaseWrapper,
    cursor: Any,
    stream_id: UUID,
    recorded: list[RecordedEvent],
    now: datetime,
) -> tuple[RecordedEvent, ...]:
    """SQLite: insert the chained events and move the stream on."""
    stream = _uuid_param(connection, stream_id)
    when = connection.ops.adapt_datetimefield_value(now)
    params: list[Any] = []
    for event in recorded:
        params += [
            stream,
            event.version,
            _uuid_param(connection, event.event_id),
            event.type,
            event.schema_version,
            canonical_json(event.data),
            _json_param(event.occurred),
            _json_param(event.source),
            event.actor,
            when,
            event.prev_hash,
            event.hash,
        ]
    row_sql = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    cursor.execute(
        f"INSERT INTO {EVENT_TABLE} (stream_id, version, event_id, type, schema_version, data, "
        "occurred, source, actor, recorded_at, prev_hash, hash) VALUES "
        + ", ".join([row_sql] * len(recorded))
        + " RETURNING version, position",
        params,
    )
    positions = dict(cursor.fetchall())
    last = recorded[-1]
    cursor.execute(
        f"UPDATE {STREAM_TABLE} SET version = %s, head_hash = %s, updated_at = %s WHERE id = %s",
        [last.version, last.hash, when, stream],
    )
    return tuple(event._replace(position=positions[event.version]) for event in recorded)


def _find_key(
    connection: BaseDatabaseWrapper, cursor: Any, key: str
) -> tuple[UUID, str, int, int] | None:
    cursor.execute(
        f"SELECT stream_id, fingerprint, first_version, last_version FROM {KEY_TABLE} "
        "WHERE key = %s",
        [key],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return _uuid(row[0]), row[1], row[2], row[3]


def _replay_key(
    connection: BaseDatabaseWrapper,
    earlier: tuple[UUID, str, int, int],
    key: str,
    fingerprint: str,
) -> Appended:
    stream_id, stored_fingerprint, first, last = earlier
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReused(key=key)
    events = read_stream(stream_id, first - 1, limit=last - first + 1, using=connection.alias)
    return Appended(stream_id=stream_id, version=last, events=tuple(events), replayed=True)


def _store_key(
    connection: BaseDatabaseWrapper,
    cursor: Any,
    key: str,
    stream_id: UUID,
    fingerprint: str,
    recorded: list[RecordedEvent],
) -> None:
    cursor.execute(
        f"INSERT INTO {KEY_TABLE} (key, stream_id, fingerprint, first_version, last_version, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING RETURNING key",
        [
            key,
            _uuid_param(connection, stream_id),
            fingerprint,
            recorded[0].version,
            recorded[-1].version,
            connection.ops.adapt_datetimefield_value(recorded[0].recorded_at),
        ],
    )
    if cursor.fetchone() is None:
        raise _KeyTaken


class _KeyTaken(Exception):
    """The idempotency key was stored by a transaction that committed after this one began."""


# --- conversions ---------------------------------------------------------------------------


def _is_version_clash(error: IntegrityError) -> bool:
    constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
    if constraint is not None:
        return constraint == "event_stream_version_uniq"
    return "eventstore_event.version" in str(error)


def _uuid_param(connection: BaseDatabaseWrapper, value: UUID) -> Any:
    return value if connection.features.has_native_uuid_field else value.hex


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _json_param(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else canonical_json(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _event_from_row(row: Sequence[Any]) -> RecordedEvent:
    """A row of `_COLUMNS` as Django's cursor gives it: JSON as text, UUIDs maybe as text."""
    return RecordedEvent(
        event_id=_uuid(row[0]),
        stream_id=_uuid(row[1]),
        version=row[2],
        position=row[3],
        type=row[4],
        schema_version=row[5],
        data=_json(row[6]),
        occurred=_json(row[7]),
        source=_json(row[8]),
        actor=row[9],
        recorded_at=_timestamp(row[10]),
        prev_hash=row[11],
        hash=row[12],
    )


def _fetch_typed(connection: BaseDatabaseWrapper, sql: str, params: list[Any]) -> list[Any]:
    """PostgreSQL: rows in binary, every value already its Python type.

    Django's cursor asks for text and leaves JSON as text for the model layer to parse; events
    are read in bulk (feeds, replays, exports), so here the driver loads each value from its
    binary form and orjson parses the JSON, which together read rows faster than plain psycopg.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        set_json_loads(orjson.loads, cursor)
        cursor.execute(sql, params, prepare=True, binary=True)
        return cursor.fetchall()
