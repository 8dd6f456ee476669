"""The offline-verifiable exports, as JSON Lines: one stream, or the whole ledger.

The one writer of both formats in docs/export-format.md; `tools/verify_export.py` checks them
with the standard library only. Every line is canonical JSON, so two exports of the same stream
differ only in `exported_at`, and each stream's section of the ledger export is that stream's
own export. Callers (the API's export view, the back office, `manage.py export_ledger`) only
send the lines on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS

from .canonical import canonical_json, format_timestamp
from .digest import digest_document, latest_digest
from .errors import StreamNotFound
from .models import LedgerDigest
from .records import RecordedEvent
from .store import read_stream, recorder, stream_head

FORMAT = "deal-tracker-export"
LEDGER_FORMAT = "deal-tracker-ledger-export"
FORMAT_VERSION = 1
BATCH = 500


def export_lines(stream_id: UUID, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[bytes]:
    """The stream's export as it stands now: a header line, then one line per event.

    The stream's head is read at once, so an unknown stream raises StreamNotFound here and
    not half-way through a download; the events are read as the lines are consumed.
    """
    head = stream_head(stream_id, using=using)
    if head is None:
        raise StreamNotFound(stream_id=stream_id)
    exported_at = format_timestamp(datetime.now(UTC))
    return _stream_lines(stream_id, head.version, head.hash, exported_at, using)


def export_ledger_lines(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[bytes]:
    """The whole ledger: a header, every digest, then every stream's export.

    Digests come first so a verifier knows which (stream, version) heads to check while it
    reads the events once. Consistent without one long transaction: the digests are read up to
    the last one committed before the streams' versions are read, so every head a digest
    records is inside the export.
    """
    last = latest_digest(using=using)
    last_sequence = last.sequence if last else 0
    heads = recorder(using).stream_heads()
    streams = sorted((str(head.stream_id), head.version, head.hash) for head in heads)
    exported_at = format_timestamp(datetime.now(UTC))
    yield _line(
        {
            "format": LEDGER_FORMAT,
            "format_version": FORMAT_VERSION,
            "streams": len(streams),
            "events": sum(version for _, version, _ in streams),
            "digests": last_sequence,
            "exported_at": exported_at,
        }
    )
    digests = LedgerDigest.objects.using(using).filter(sequence__lte=last_sequence)
    for row in digests.order_by("sequence").iterator():
        yield _line({**digest_document(row), "heads": row.heads})
    for stream_id, version, head in streams:
        yield from _stream_lines(UUID(stream_id), version, head, exported_at, using)


def _stream_lines(
    stream_id: UUID, version: int, head: str, exported_at: str, using: str
) -> Iterator[bytes]:
    """The export of versions 1..version of the stream whose hash at `version` is `head`.

    Events are never changed or removed, so batches read one after another still give the
    stream as it stood at `version`, however many events are appended meanwhile.
    """
    yield _line(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "deal": str(stream_id),
            "events": version,
            "head": head,
            "exported_at": exported_at,
        }
    )
    after = 0
    while after < version:
        events = read_stream(stream_id, after, limit=min(BATCH, version - after), using=using)
        if not events:
            return
        for event in events:
            yield _line(export_record(event))
        after = events[-1].version


def export_record(event: RecordedEvent) -> dict[str, Any]:
    """An event's line: the hashed fields (as hashed) plus position, prev_hash and hash."""
    return {
        **event.hashed_fields(),
        "position": event.position,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _line(value: dict[str, Any]) -> bytes:
    return (canonical_json(value) + "\n").encode("utf-8")
