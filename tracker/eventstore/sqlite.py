"""The SQLite recorder: the embedded default, chained in Python, one writer at a time."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS

from .canonical import canonical_json, chain_hash
from .recorder import COLUMNS, EVENT_TABLE, STREAM_TABLE, Batch, Recorder, to_utc, to_uuid
from .records import RecordedEvent

_EVENT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


class SqliteRecorder(Recorder):
    """Chains and inserts under the stream's row, which SQLite's single writer makes a lock.

    SQLite runs one writing transaction at a time, so positions are handed out in commit
    order and the feed reads in position order.
    """

    now_sql = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')"
    # SQLite has no row locks; its one write lock serves, taken at BEGIN by the IMMEDIATE
    # transactions config/settings.py asks for, before the stream's row is read.
    lock_sql = ""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS) -> None:
        super().__init__(alias)
        self.insert_events = (
            f"INSERT INTO {EVENT_TABLE} (stream_id, version, event_id, type, schema_version, "
            "data, occurred, source, actor, recorded_at, prev_hash, hash) VALUES "
        )
        self.move_stream = (
            f"UPDATE {STREAM_TABLE} SET version = %s, head_hash = %s, updated_at = %s WHERE id = %s"
        )
        self.select_feed = (
            f"SELECT {COLUMNS} FROM {EVENT_TABLE} WHERE position > %s ORDER BY position LIMIT %s"
        )
        self.select_snapshot = (
            f"SELECT NULL, '0', (SELECT max(position) FROM {EVENT_TABLE}), s.id, s.version, "
            f"s.head_hash FROM (SELECT 1) AS one LEFT JOIN {STREAM_TABLE} AS s ON s.version > 0"
        )

    def _write(
        self, cursor: Any, batch: Batch, head: str, now: datetime
    ) -> tuple[RecordedEvent, ...]:
        recorded = _chain(batch, head, now)
        stream = self.id_param(batch.stream_id)
        when = self.connection.ops.adapt_datetimefield_value(now)
        params: list[Any] = []
        for event in recorded:
            params += [
                stream,
                event.version,
                self.id_param(event.event_id),
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
        rows = ", ".join([_EVENT_ROW] * len(recorded))
        cursor.execute(f"{self.insert_events}{rows} RETURNING version, position", params)
        positions = dict(cursor.fetchall())
        last = recorded[-1]
        cursor.execute(self.move_stream, [last.version, last.hash, when, stream])
        return tuple(event._replace(position=positions[event.version]) for event in recorded)

    def _fetch_events(self, sql: str, params: list[Any]) -> list[RecordedEvent]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [_event_from_row(row) for row in cursor.fetchall()]

    def _read_feed(
        self, txid: int, position: int, limit: int
    ) -> tuple[tuple[RecordedEvent, ...], int]:
        return tuple(self._fetch_events(self.select_feed, [position, limit])), 0

    def queue_on(self, table: str) -> None:
        # One writer at a time already.
        return

    def id_param(self, value: UUID) -> str:
        return value.hex


def _chain(batch: Batch, head: str, now: datetime) -> list[RecordedEvent]:
    """The events as the versions after `batch.expected_version`, each hashed onto the last."""
    recorded = []
    prev = head
    for offset, (event, body) in enumerate(zip(batch.events, batch.bodies, strict=True), start=1):
        draft = RecordedEvent(
            event_id=event.event_id,
            stream_id=batch.stream_id,
            version=batch.expected_version + offset,
            position=0,
            type=body["type"],
            schema_version=body["schema_version"],
            data=body["data"],
            occurred=body["occurred"],
            source=body["source"],
            actor=batch.actor,
            recorded_at=now,
            prev_hash=prev,
            hash="",
        )
        digest = chain_hash(prev, draft.hashed_fields())
        recorded.append(draft._replace(hash=digest))
        prev = digest
    return recorded


def _json_param(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else canonical_json(value)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _event_from_row(row: Sequence[Any]) -> RecordedEvent:
    """A row of COLUMNS as Django's cursor gives it: JSON as text, UUIDs as text."""
    return RecordedEvent(
        event_id=to_uuid(row[0]),
        stream_id=to_uuid(row[1]),
        version=row[2],
        position=row[3],
        type=row[4],
        schema_version=row[5],
        data=_json(row[6]),
        occurred=_json(row[7]),
        source=_json(row[8]),
        actor=row[9],
        recorded_at=to_utc(row[10]),
        prev_hash=row[11],
        hash=row[12],
    )
