"""Ledger digests: chained commitments to the head hash of every stream, and their checks.

A stream's hash chain shows that its events were not changed *unless* whoever changed one also
recomputed the hashes after it and the stream's row, which anyone who can write the database can
do. A digest closes that gap: it commits to every stream's (version, head hash) at one moment,
digests are chained to each other, and a digest kept outside the database (an auditor's saved
copy) pins every event up to the versions it recorded. `verify_ledger` checks the database
against its own digests; `tools/verify_export.py --ledger --digest` checks an export against a
saved one. docs/export-format.md states the formats.

Each row stores only the heads that changed since the previous digest (every `FULL_EVERY`th row
stores all of them), so the table grows with activity rather than with the number of streams
times the number of digests; the full set is the previous set updated with the row's heads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS, transaction

from .canonical import GENESIS_HASH, canonical_json, format_timestamp
from .models import LedgerDigest
from .store import iter_stream_ids, recorder, verify_stream

DIGEST_FORMAT = "deal-tracker-ledger-digest"
FORMAT_VERSION = 1
# Fields of a digest that its hash covers (with prev_digest in front), as documented.
DIGEST_FIELDS = ("events", "feed_cursor", "heads_root", "sequence", "streams", "taken_at")
FULL_EVERY = 100

Head = tuple[str, int, str]
"""(stream id as a lowercase hyphenated UUID, version, hash of that version)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One failure found by `verify_ledger`: a stream at a version, or a digest, and why."""

    reason: str
    stream_id: UUID | None = None
    version: int | None = None
    sequence: int | None = None

    def __str__(self) -> str:
        where = []
        if self.sequence is not None:
            where.append(f"digest {self.sequence}")
        if self.stream_id is not None:
            where.append(f"stream {self.stream_id}")
        if self.version is not None:
            where.append(f"version {self.version}")
        return f"{', '.join(where)}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LedgerVerification:
    streams: int
    events: int
    digests: int
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


# --- hashing -------------------------------------------------------------------------------


def heads_root(heads: Iterable[Head]) -> str:
    """sha256 over one line `<stream_id> <version> <head>\\n` per stream, sorted by stream id."""
    hasher = hashlib.sha256()
    for stream_id, version, head in sorted(heads):
        hasher.update(f"{stream_id} {version} {head}\n".encode("ascii"))
    return hasher.hexdigest()


def digest_hash(prev_digest: str, body: Mapping[str, Any]) -> str:
    """sha256 over the previous digest (hex) followed by the canonical JSON of the body."""
    fields = {name: body[name] for name in DIGEST_FIELDS}
    return hashlib.sha256((prev_digest + canonical_json(fields)).encode("utf-8")).hexdigest()


def digest_document(digest: LedgerDigest) -> dict[str, Any]:
    """The digest as an auditor saves it (and `GET /ledger/digest/` serves it), without heads."""
    return {
        "format": DIGEST_FORMAT,
        "format_version": FORMAT_VERSION,
        "sequence": digest.sequence,
        "taken_at": format_timestamp(digest.taken_at),
        "feed_cursor": digest.feed_cursor,
        "streams": digest.streams,
        "events": digest.events,
        "heads_root": digest.heads_root,
        "prev_digest": digest.prev_digest,
        "digest": digest.digest,
    }


# --- taking a digest -----------------------------------------------------------------------


def take_digest(*, using: str = DEFAULT_DB_ALIAS) -> LedgerDigest:
    """Store the next digest of the ledger as it stands now, and return it.

    Every stream's version and head come from one statement, hence one snapshot, in which each
    append's events and its stream row are both visible or both not: the heads are exactly the
    events counted. Digest takers queue on a table lock (readers and appends do not), so
    sequences have no gaps and each digest links to the one before it.
    """
    store = recorder(using)
    with transaction.atomic(using=using):
        # Taken before the snapshot below, so the latest digest read after it is the last one.
        store.queue_on(LedgerDigest._meta.db_table)
        previous = LedgerDigest.objects.using(using).order_by("-sequence").first()
        snapshot = store.ledger_snapshot()
        current = [(str(head.stream_id), head.version, head.hash) for head in snapshot.heads]
        sequence = previous.sequence + 1 if previous else 1
        full = previous is None or sequence % FULL_EVERY == 1
        if full:
            stored = sorted(current)
        else:
            known = _heads_at(previous.sequence, using=using)
            stored = sorted(head for head in current if known.get(head[0]) != head[1:])
        body = {
            "sequence": sequence,
            "taken_at": format_timestamp(snapshot.taken_at),
            "feed_cursor": snapshot.feed_cursor,
            "streams": len(current),
            "events": sum(version for _, version, _ in current),
            "heads_root": heads_root(current),
        }
        prev_digest = previous.digest if previous else GENESIS_HASH
        return LedgerDigest.objects.using(using).create(
            sequence=sequence,
            taken_at=snapshot.taken_at,
            feed_cursor=body["feed_cursor"],
            streams=body["streams"],
            events=body["events"],
            heads_root=body["heads_root"],
            heads=[list(head) for head in stored],
            full=full,
            prev_digest=prev_digest,
            digest=digest_hash(prev_digest, body),
        )


def latest_digest(*, using: str = DEFAULT_DB_ALIAS) -> LedgerDigest | None:
    return LedgerDigest.objects.using(using).order_by("-sequence").first()


def _heads_at(sequence: int, *, using: str) -> dict[str, tuple[int, str]]:
    """Every stream's (version, head) at digest `sequence`, from the last full row before it."""
    digests = LedgerDigest.objects.using(using).filter(sequence__lte=sequence)
    start = digests.filter(full=True).order_by("-sequence").values_list("sequence", flat=True)
    first = start.first() or 1
    known: dict[str, tuple[int, str]] = {}
    rows = digests.filter(sequence__gte=first).order_by("sequence").values_list("heads", flat=True)
    for heads in rows.iterator():
        for stream_id, version, head in heads:
            known[stream_id] = (version, head)
    return known


# --- verifying the ledger ------------------------------------------------------------------


def verify_ledger(*, using: str = DEFAULT_DB_ALIAS) -> LedgerVerification:
    """Recompute every stream's chain and check every stored digest against the events.

    A digest is checked for its sequence and link to the previous one, its own hash, that the
    heads it holds (merged into those before it) give its heads_root, stream and event counts,
    and that each stream's event at the recorded version still has the recorded hash. So a
    rewritten event whose stream was re-hashed passes `verify_stream` but fails here, at every
    digest taken after the original event was recorded.
    """
    problems: list[Problem] = []
    streams = events = 0
    for stream_id in iter_stream_ids(using=using):
        result = verify_stream(stream_id, using=using)
        streams += 1
        events += result.events
        if not result.valid:
            problems.append(
                Problem(
                    reason=result.reason or "invalid",
                    stream_id=stream_id,
                    version=result.first_bad_version,
                )
            )
    digests, claims = _check_digest_chain(using, problems)
    _check_claims(claims, using, problems)
    return LedgerVerification(
        streams=streams, events=events, digests=digests, problems=tuple(problems)
    )


def _check_digest_chain(
    using: str, problems: list[Problem]
) -> tuple[int, dict[str, dict[int, tuple[str, int]]]]:
    """Check each digest's link, hash, root and counts; collect the heads to check in events.

    Returns the number of digests and, per stream, {version: (head, first digest claiming it)}.
    """
    known: dict[str, tuple[int, str]] = {}
    claims: dict[str, dict[int, tuple[str, int]]] = {}
    prev_digest = GENESIS_HASH
    count = 0
    rows = LedgerDigest.objects.using(using).order_by("sequence")
    for count, row in enumerate(rows.iterator(), start=1):
        if row.sequence != count:
            problems.append(Problem(reason=f"expected digest {count} here", sequence=row.sequence))
            return count, claims
        body = digest_document(row)
        if row.prev_digest != prev_digest:
            problems.append(
                Problem(reason="prev_digest is not the previous digest", sequence=row.sequence)
            )
        if digest_hash(row.prev_digest, body) != row.digest:
            problems.append(
                Problem(reason="digest does not match its contents", sequence=row.sequence)
            )
        for stream_id, version, head in row.heads:
            known[stream_id] = (version, head)
            claims.setdefault(stream_id, {}).setdefault(version, (head, row.sequence))
        recomputed = heads_root((stream_id, v, h) for stream_id, (v, h) in known.items())
        if recomputed != row.heads_root:
            problems.append(
                Problem(reason="its heads do not give its heads_root", sequence=row.sequence)
            )
        if (row.streams, row.events) != (len(known), sum(v for v, _ in known.values())):
            problems.append(
                Problem(
                    reason="stream or event count does not match its heads", sequence=row.sequence
                )
            )
        prev_digest = row.digest
    return count, claims


def _check_claims(
    claims: dict[str, dict[int, tuple[str, int]]], using: str, problems: list[Problem]
) -> None:
    """Each recorded (stream, version, head) must be that stream's stored event and hash."""
    store = recorder(using)
    for stream_id, by_version in sorted(claims.items()):
        stream = UUID(stream_id)
        stored = store.event_hashes(stream, sorted(by_version))
        for version in sorted(by_version):
            head, sequence = by_version[version]
            if version not in stored:
                reason = "the event the digest recorded is missing"
            elif stored[version] != head:
                reason = "the event's hash is not the one the digest recorded"
            else:
                continue
            problems.append(
                Problem(reason=reason, stream_id=stream, version=version, sequence=sequence)
            )
