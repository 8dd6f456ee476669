"""The PostgreSQL recorder: appends in one round trip, a feed bounded by the snapshot's xmin."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.json import set_json_loads

from .canonical import canonical_json, split_at_recorded_at
from .errors import StaleHead, VersionConflict
from .recorder import COLUMNS, EVENT_TABLE, STREAM_TABLE, Batch, Recorder, to_utc
from .records import Appended, RecordedEvent

# Argument types of `eventstore_append` after stream, expected version and actor, one array
# each: event ids, types, schema versions, data, occurred, source, hash prefixes and suffixes;
# then the expected head's hash (NULL: not checked).
_APPEND_ARRAY_TYPES = ("uuid", "text", "integer", "text", "text", "text", "text", "text")


def _append_sql(array: str) -> str:
    """The call of `eventstore_append`, its per-event arguments bound as `array` says."""
    # Parameters go in binary (%b): psycopg's text form of an array escapes each element with
    # a regular expression, which costs more than the whole append for a batch of events.
    arrays = ", ".join(array.format(type=name) for name in _APPEND_ARRAY_TYPES)
    return (
        "SELECT o_version, o_position, o_prev_hash, o_hash, o_recorded_at "
        f"FROM eventstore_append(%b, %b, %b, {arrays}, %b::text)"
    )


class PostgresRecorder(Recorder):
    """Appends through the `eventstore_append` database function (migrations 0003 and 0009),
    which locks the stream's row, checks the version (and the head's hash, if asked), chains,
    inserts and moves the stream on in one round trip; reads rows in binary, already typed."""

    now_sql = "now()"
    lock_sql = " FOR UPDATE"

    def __init__(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        super().__init__(alias)
        self.call_append = _append_sql("%b::{type}[]")
        # One event: scalars, which bind for a fraction of what an array costs.
        self.call_append_one = _append_sql("ARRAY[%b::{type}]")
        # Why the feed reads below pg_snapshot_xmin: positions come from a sequence, so a
        # transaction can commit an event with a smaller position after a reader has passed a
        # larger one, and a reader paging by position alone would skip it for good. Serialising
        # writers (a table or advisory lock) would close that gap at the cost of most of the
        # throughput of concurrent appends. Instead each event stores the id of the transaction
        # that wrote it (`txid xid8 DEFAULT pg_current_xact_id()`), the feed is read in
        # (txid, position) order, and only below the oldest transaction still running: every
        # transaction below that mark has ended, and any that starts later gets a larger id, so
        # nothing can appear behind the cursor. A long-running writing transaction delays the
        # feed; it never makes it skip.
        # The transaction id goes out as a bigint named feed_txid: a column named txid would
        # be what ORDER BY txid sorts by, which no index serves (and, as text, sorts wrongly).
        self.select_feed = (
            f"SELECT {COLUMNS}, txid::text::bigint AS feed_txid FROM {EVENT_TABLE} "
            "WHERE (txid, position) > (%s::text::xid8, %s) "
            "AND txid < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY txid, position LIMIT %s"
        )
        # The feed cursor a digest covers is the last event below the same mark, read in the
        # statement that reads the heads: every event up to it in the feed belongs to a
        # transaction that ended before the snapshot, so the heads cover it (and maybe more).
        self.select_snapshot = (
            f"WITH last AS (SELECT txid, position FROM {EVENT_TABLE} "
            "WHERE txid < pg_snapshot_xmin(pg_current_snapshot()) "
            "ORDER BY txid DESC, position DESC LIMIT 1) "
            "SELECT statement_timestamp(), (SELECT txid::text FROM last), "
            "(SELECT position FROM last), s.id, s.version, s.head_hash "
            f"FROM (SELECT 1) AS one LEFT JOIN {STREAM_TABLE} AS s ON s.version > 0"
        )

    def _append_unkeyed(self, batch: Batch) -> Appended:
        connection = self.connection
        # One statement is atomic by itself; inside a caller's transaction a savepoint keeps a
        # refused append from aborting the rest of it.
        with transaction.atomic(using=self.alias) if connection.in_atomic_block else nullcontext():
            recorded = self._call_append(batch)
        return Appended(stream_id=batch.stream_id, version=recorded[-1].version, events=recorded)

    def _write(
        self, cursor: Any, batch: Batch, head: str, now: datetime
    ) -> tuple[RecordedEvent, ...]:
        # The function takes the lock this transaction already holds, and stamps its own time.
        return self._call_append(batch)

    def _call_append(self, batch: Batch) -> tuple[RecordedEvent, ...]:
        """Lock, check, chain, insert and move the stream on, in one round trip."""
        sql, params = self._statement(batch)
        connection = self.connection
        try:
            # Bound on the server rather than quoted into the text as Django's cursor does:
            # quoting arrays of JSON costs more than the append itself. The wrapper still turns
            # driver errors into Django's.
            with connection.wrap_database_errors, psycopg.Cursor(native(connection)) as cursor:
                cursor.execute(sql, params, prepare=True, binary=True)
                rows = cursor.fetchall()
        except DatabaseError as error:
            conflict = _conflict(error, batch)
            if conflict is None:
                raise
            raise conflict from None
        return _recorded(batch, rows)

    def _append_batches(self, batches: Sequence[Batch]) -> list[Appended]:
        """Every stream's `eventstore_append` in one round trip: psycopg's pipeline mode sends
        them all before reading any answer, inside the caller's transaction."""
        connection = self.connection
        session = native(connection)
        cursors: list[psycopg.Cursor[Any]] = []
        try:
            with connection.wrap_database_errors:
                with session.pipeline():
                    for batch in batches:
                        sql, params = self._statement(batch)
                        cursor = psycopg.Cursor(session)
                        cursors.append(cursor)
                        cursor.execute(sql, params, prepare=True, binary=True)
                # Read once the block has synced: the answers are in, or the first error
                # raised as the block ended (whichever statement failed: the caller finds the
                # stream that moved on once the transaction is rolled back).
                answers = [cursor.fetchall() for cursor in cursors]
        except DatabaseError as error:
            conflict = _conflict(error, batches[0])
            if conflict is None:
                raise
            raise conflict from None
        finally:
            for cursor in cursors:
                cursor.close()
        return [
            Appended(
                stream_id=batch.stream_id,
                version=batch.expected_version + len(rows),
                events=_recorded(batch, rows),
            )
            for batch, rows in zip(batches, answers, strict=True)
        ]

    def _statement(self, batch: Batch) -> tuple[str, list[Any]]:
        """The call of `eventstore_append` for `batch`, and its parameters."""
        stream_id, events, bodies = batch.stream_id, batch.events, batch.bodies
        expected_version, actor = batch.expected_version, batch.actor
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
            # Why split: the hash covers `recorded_at`, which only the database decides (the
            # transaction's time, one for the whole append, no client clock trusted). So the
            # canonical JSON goes as the text before and after that value, and the function
            # hashes prefix + its own formatted timestamp + suffix: the chain is computed in
            # the same round trip and equals `canonical.chain_hash` of the stored row.
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
            return self.call_append_one, [
                stream_id,
                expected_version,
                actor,
                *(array[0] for array in arrays),
                batch.expected_head,
            ]
        return self.call_append, [stream_id, expected_version, actor, *arrays, batch.expected_head]

    def _fetch_events(self, sql: str, params: list[Any]) -> list[RecordedEvent]:
        return [RecordedEvent(*row) for row in self._fetch_typed(sql, params)]

    def _read_feed(
        self, txid: int, position: int, limit: int
    ) -> tuple[tuple[RecordedEvent, ...], int]:
        rows = self._fetch_typed(self.select_feed, [str(txid), position, limit])
        if not rows:
            return (), txid
        return tuple(RecordedEvent(*row[:-1]) for row in rows), rows[-1][-1]

    def _fetch_typed(self, sql: str, params: list[Any]) -> list[Any]:
        """Rows in binary, every value already its Python type.

        Django's cursor asks for text and leaves JSON as text for the model layer to parse;
        events are read in bulk (feeds, replays, exports), so here the driver loads each value
        from its binary form and orjson parses the JSON, which together read rows faster than
        plain psycopg.
        """
        connection = self.connection
        with connection.wrap_database_errors, psycopg.Cursor(native(connection)) as cursor:
            set_json_loads(orjson.loads, cursor)
            cursor.execute(sql, params, prepare=True, binary=True)
            return cursor.fetchall()

    def queue_on(self, table: str) -> None:
        # SHARE ROW EXCLUSIVE conflicts with itself and not with readers.
        with self.connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    def select_streams(self, ids: list[Any]) -> tuple[str, list[Any]]:
        # One array parameter: one prepared statement whatever the number of streams.
        return (
            f"SELECT {COLUMNS} FROM {EVENT_TABLE} WHERE stream_id = ANY(%s) "
            "ORDER BY stream_id, version",
            [ids],
        )

    def id_param(self, value: UUID) -> UUID:
        return value


def native(connection: BaseDatabaseWrapper) -> psycopg.Connection[Any]:
    """The psycopg connection under Django's, for statements Django's cursor would slow down.

    Checked first as Django checks a connection before its own cursors (CONN_HEALTH_CHECKS,
    once a request): a connection the server dropped while it sat idle, as a restart of
    PostgreSQL drops them all, is replaced here instead of failing the request with 503. A
    request whose token is kept and whose stream is cached reaches the database only here.
    """
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    return connection.connection


def _conflict(error: DatabaseError, batch: Batch) -> VersionConflict | StaleHead | None:
    """VersionConflict for `batch` when the function's version check refused it (DT409, the
    current version as detail), StaleHead when its head check did (DT412); None for any other
    error."""
    cause = error.__cause__
    state = getattr(cause, "sqlstate", None)
    if state == "DT412":
        return StaleHead(stream_id=batch.stream_id, expected_version=batch.expected_version)
    if state != "DT409":
        return None
    return VersionConflict(
        stream_id=batch.stream_id,
        expected_version=batch.expected_version,
        current_version=int(cause.diag.message_detail),
    )


def _recorded(batch: Batch, rows: list[Any]) -> tuple[RecordedEvent, ...]:
    """The batch's events as stored, from the function's rows (version, position, hashes,
    time), whatever order they came in."""
    stream_id, actor = batch.stream_id, batch.actor
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
            recorded_at=to_utc(recorded_at),
            prev_hash=prev_hash,
            hash=digest,
        )
        for event, body, (version, position, prev_hash, digest, recorded_at) in zip(
            batch.events, batch.bodies, sorted(rows), strict=True
        )
    )
