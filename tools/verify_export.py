#!/usr/bin/env python3
"""Verify a deal-tracker export offline, as docs/export-format.md describes.

  verify_export.py EXPORT.jsonl          one deal's export (`-` or nothing: standard input)
  verify_export.py --ledger LEDGER.jsonl [--digest SAVED-DIGEST.json]
                                         a whole-ledger export (`manage.py export_ledger`),
                                         checked against a digest saved earlier if given

Recomputes each event's hash from its fields and the previous hash and checks each header's
event count and head hash; for a ledger, also recomputes the chain of digests and checks that
each stream's event at every version a digest recorded has the hash it recorded. Exits 0
printing "OK ...", 1 printing the first bad line's number and why, 2 if a file cannot be read.
Python standard library only, so it runs anywhere without this project.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

FORMAT = "deal-tracker-export"
LEDGER_FORMAT = "deal-tracker-ledger-export"
DIGEST_FORMAT = "deal-tracker-ledger-digest"
FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "actor",
    "data",
    "event_id",
    "occurred",
    "recorded_at",
    "schema_version",
    "source",
    "stream_id",
    "type",
    "version",
)
EVENT_FIELDS = frozenset(HASHED_FIELDS) | {"position", "prev_hash", "hash"}
HEADER_FIELDS = frozenset({"format", "format_version", "deal", "events", "head", "exported_at"})
LEDGER_FIELDS = frozenset(
    {"format", "format_version", "streams", "events", "digests", "exported_at"}
)
# Fields a digest's hash covers, after its prev_digest.
DIGEST_HASHED = ("events", "feed_cursor", "heads_root", "sequence", "streams", "taken_at")
DIGEST_FIELDS = frozenset(DIGEST_HASHED) | {"format", "format_version", "prev_digest", "digest"}
HASH_RE = re.compile(r"[0-9a-f]{64}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


class BadLine(Exception):
    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"line {number}: {reason}")
        self.number = number
        self.reason = reason


def canonical_json(value: Any) -> str:
    """Keys sorted by code point, no whitespace, non-ASCII as UTF-8, only required escapes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    body = {name: fields[name] for name in HASHED_FIELDS}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer; exports hold no fractions")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_line(raw: bytes, number: int) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadLine(number, f"not UTF-8 ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise BadLine(number, "empty line")
    try:
        value = json.loads(
            text,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except ValueError as error:
        raise BadLine(number, f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BadLine(number, "not a JSON object")
    return value


def check_header(header: dict[str, Any], number: int = 1) -> None:
    if set(header) != HEADER_FIELDS:
        raise BadLine(
            number, f"header fields are {sorted(header)}, expected {sorted(HEADER_FIELDS)}"
        )
    if header["format"] != FORMAT:
        raise BadLine(number, f"format is {header['format']!r}, expected {FORMAT!r}")
    if header["format_version"] != FORMAT_VERSION:
        raise BadLine(number, f"format_version {header['format_version']!r} is not supported")
    if not isinstance(header["deal"], str) or not UUID_RE.fullmatch(header["deal"]):
        raise BadLine(number, "deal is not a lowercase hyphenated UUID")
    if not is_count(header["events"]):
        raise BadLine(number, "events is not a non-negative integer")
    if not is_hash(header["head"]):
        raise BadLine(number, "head is not 64 lowercase hex digits")


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_hash(value: Any) -> bool:
    return isinstance(value, str) and HASH_RE.fullmatch(value) is not None


def check_event(event: dict[str, Any], number: int, deal: str, version: int, prev: str) -> str:
    """The event's hash if it is the stream's event `version` following `prev`."""
    missing = EVENT_FIELDS - set(event)
    if missing:
        raise BadLine(number, f"missing fields {sorted(missing)}")
    extra = set(event) - EVENT_FIELDS
    if extra:
        raise BadLine(number, f"unexpected fields {sorted(extra)}")
    if event["stream_id"] != deal:
        raise BadLine(number, f"stream_id {event['stream_id']!r} is not the header's deal")
    if event["version"] != version or isinstance(event["version"], bool):
        raise BadLine(number, f"version is {event['version']!r}, expected {version}")
    if event["prev_hash"] != prev:
        raise BadLine(number, "prev_hash is not the previous event's hash")
    if not isinstance(event["recorded_at"], str) or not TIMESTAMP_RE.fullmatch(
        event["recorded_at"]
    ):
        raise BadLine(number, "recorded_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    digest = chain_hash(prev, event)
    if event["hash"] != digest:
        raise BadLine(number, f"hash does not match the event's contents (computed {digest})")
    return digest


def verify(stream: BinaryIO) -> tuple[int, str]:
    """(event count, head hash) of a valid export; raises BadLine at the first problem."""
    lines = iter(stream)
    first = next(lines, None)
    if first is None:
        raise BadLine(1, "the export is empty; expected a header line")
    header = parse_line(first, 1)
    check_header(header)
    prev = GENESIS_HASH
    count = 0
    number = 1
    for number, raw in enumerate(lines, start=2):
        count += 1
        if count > header["events"]:
            raise BadLine(number, f"the header declares only {header['events']} events")
        event = parse_line(raw, number)
        prev = check_event(event, number, header["deal"], count, prev)
    if count < header["events"]:
        raise BadLine(
            number + 1, f"the header declares {header['events']} events but the export has {count}"
        )
    if prev != header["head"]:
        raise BadLine(1, "the header's head is not the last event's hash")
    return count, prev


# --- whole-ledger exports ---------------------------------------------------------------


class BadDigest(Exception):
    """The saved digest file itself is unusable."""


def digest_hash(prev_digest: str, body: dict[str, Any]) -> str:
    fields = {name: body[name] for name in DIGEST_HASHED}
    return hashlib.sha256((prev_digest + canonical_json(fields)).encode("utf-8")).hexdigest()


def heads_root(heads: dict[str, tuple[int, str]]) -> str:
    """sha256 over `<stream_id> <version> <head>\\n` per stream, sorted by stream id."""
    hasher = hashlib.sha256()
    for stream_id in sorted(heads):
        version, head = heads[stream_id]
        hasher.update(f"{stream_id} {version} {head}\n".encode("ascii"))
    return hasher.hexdigest()


def check_digest_fields(digest: dict[str, Any], number: int) -> None:
    """Types of a digest's documented fields (not its hash: that needs the previous one)."""
    if digest["format"] != DIGEST_FORMAT:
        raise BadLine(number, f"format is {digest['format']!r}, expected {DIGEST_FORMAT!r}")
    if digest["format_version"] != FORMAT_VERSION:
        raise BadLine(number, f"format_version {digest['format_version']!r} is not supported")
    for name in ("sequence", "streams", "events"):
        if not is_count(digest[name]):
            raise BadLine(number, f"{name} is not a non-negative integer")
    for name in ("heads_root", "prev_digest", "digest"):
        if not is_hash(digest[name]):
            raise BadLine(number, f"{name} is not 64 lowercase hex digits")
    if not isinstance(digest["taken_at"], str) or not TIMESTAMP_RE.fullmatch(digest["taken_at"]):
        raise BadLine(number, "taken_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    if not isinstance(digest["feed_cursor"], str):
        raise BadLine(number, "feed_cursor is not a string")


def load_saved_digest(path: str) -> dict[str, Any]:
    """The digest an auditor saved (`GET /api/v1/ledger/digest/`), checked against itself."""
    with open(path, "rb") as stream:
        raw = stream.read()
    try:
        digest = parse_line(raw, 1)
        missing = DIGEST_FIELDS - set(digest)
        if missing:
            raise BadLine(1, f"missing fields {sorted(missing)}")
        check_digest_fields(digest, 1)
    except BadLine as error:
        raise BadDigest(f"the saved digest is not one: {error.reason}") from None
    if digest_hash(digest["prev_digest"], digest) != digest["digest"]:
        raise BadDigest("the saved digest's hash does not match its own fields")
    return digest


def numbered(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    return enumerate(stream, start=1)


def next_line(lines: Iterator[tuple[int, bytes]], last: int, what: str) -> tuple[int, dict]:
    item = next(lines, None)
    if item is None:
        raise BadLine(last + 1, f"the export ends where {what} was expected")
    number, raw = item
    return number, parse_line(raw, number)


def verify_ledger(stream: BinaryIO, saved: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """(streams, events, digests) of a valid whole-ledger export; raises BadLine otherwise.

    The digests come first: each is checked for its sequence, link and hash, and its heads,
    merged into those of the digests before it, must give its heads_root. Every (stream,
    version, head) a digest holds is then checked against the events as their chains are
    recomputed. With `saved`, the export's digest of the same sequence must be that digest.
    """
    lines = numbered(stream)
    number, header = next_line(lines, 0, "a header")
    if set(header) != LEDGER_FIELDS:
        raise BadLine(1, f"header fields are {sorted(header)}, expected {sorted(LEDGER_FIELDS)}")
    if header["format"] != LEDGER_FORMAT:
        raise BadLine(1, f"format is {header['format']!r}, expected {LEDGER_FORMAT!r}")
    if header["format_version"] != FORMAT_VERSION:
        raise BadLine(1, f"format_version {header['format_version']!r} is not supported")
    for name in ("streams", "events", "digests"):
        if not is_count(header[name]):
            raise BadLine(1, f"{name} is not a non-negative integer")
    if saved is not None and saved["sequence"] > header["digests"]:
        raise BadLine(
            1, f"the export holds {header['digests']} digests, not digest {saved['sequence']}"
        )

    known: dict[str, tuple[int, str]] = {}
    claims: dict[tuple[str, int], tuple[str, int]] = {}
    prev_digest = GENESIS_HASH
    for sequence in range(1, header["digests"] + 1):
        number, digest = next_line(lines, number, f"digest {sequence}")
        fields = set(digest) - {"heads"}
        if "heads" not in digest or fields != DIGEST_FIELDS:
            raise BadLine(number, f"a digest line has fields {sorted(digest)}")
        check_digest_fields(digest, number)
        if digest["sequence"] != sequence:
            raise BadLine(number, f"sequence is {digest['sequence']!r}, expected {sequence}")
        if digest["prev_digest"] != prev_digest:
            raise BadLine(number, "prev_digest is not the previous digest's hash")
        if digest_hash(prev_digest, digest) != digest["digest"]:
            raise BadLine(number, "digest does not match the digest's fields")
        if not isinstance(digest["heads"], list):
            raise BadLine(number, "heads is not a list")
        for item in digest["heads"]:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and UUID_RE.fullmatch(item[0])
                and is_count(item[1])
                and item[1] > 0
                and is_hash(item[2])
            ):
                raise BadLine(number, f"{item!r} is not a [stream_id, version, head] entry")
            stream_id, version, head = item
            known[stream_id] = (version, head)
            claims.setdefault((stream_id, version), (head, sequence))
        if heads_root(known) != digest["heads_root"]:
            raise BadLine(number, "the heads up to this digest do not give its heads_root")
        if (digest["streams"], digest["events"]) != (
            len(known),
            sum(version for version, _ in known.values()),
        ):
            raise BadLine(number, "streams or events do not match the heads up to this digest")
        if saved is not None and sequence == saved["sequence"]:
            for name in sorted(DIGEST_FIELDS):
                if digest[name] != saved[name]:
                    raise BadLine(number, f"{name} differs from the saved digest's")
        prev_digest = digest["digest"]

    events = 0
    previous_stream = ""
    for _ in range(header["streams"]):
        number, section = next_line(lines, number, "a stream's header")
        check_header(section, number)
        stream_id = section["deal"]
        if stream_id <= previous_stream:
            raise BadLine(number, "streams are not in ascending order of their ids")
        previous_stream = stream_id
        prev = GENESIS_HASH
        for version in range(1, section["events"] + 1):
            number, event = next_line(lines, number, f"version {version} of {stream_id}")
            prev = check_event(event, number, stream_id, version, prev)
            claim = claims.pop((stream_id, version), None)
            if claim is not None and claim[0] != prev:
                raise BadLine(
                    number, f"version {version}'s hash is not the one digest {claim[1]} recorded"
                )
        if prev != section["head"]:
            raise BadLine(number, "the stream header's head is not its last event's hash")
        events += section["events"]
    extra = next(lines, None)
    if extra is not None:
        raise BadLine(extra[0], "a line after the last stream the header declares")
    if events != header["events"]:
        raise BadLine(1, f"the header declares {header['events']} events; the export has {events}")
    if claims:
        (stream_id, version), (_, sequence) = min(claims.items(), key=lambda item: item[1][1])
        raise BadLine(
            1, f"digest {sequence} recorded version {version} of {stream_id}, not in the export"
        )
    return header["streams"], events, header["digests"]


def main(argv: list[str]) -> int:
    args = argv[1:]
    if not args or args[0] != "--ledger":
        return main_deal(args)
    ledger, digest_path = None, None
    try:
        ledger = args[1]
        if len(args) == 4 and args[2] == "--digest":
            digest_path = args[3]
        elif len(args) != 2:
            raise IndexError
    except IndexError:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        saved = load_saved_digest(digest_path) if digest_path else None
        with open(ledger, "rb") as stream:
            streams, events, digests = verify_ledger(stream, saved)
    except BadDigest as error:
        print(f"FAILED: {error}")
        return 1
    except BadLine as error:
        print(f"FAILED at {error}")
        return 1
    except OSError as error:
        print(f"cannot read a file: {error}", file=sys.stderr)
        return 2
    summary = f"OK {streams} streams, {events} events, {digests} digests"
    if saved is not None:
        summary += f"; digest {saved['sequence']} {saved['digest']} matches"
    print(summary)
    return 0


def main_deal(args: list[str]) -> int:
    if len(args) > 1 or (args and args[0] in {"-h", "--help"}):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        if not args or args[0] == "-":
            count, head = verify(sys.stdin.buffer)
        else:
            with open(args[0], "rb") as stream:
                count, head = verify(stream)
    except BadLine as error:
        print(f"FAILED at {error}")
        return 1
    except OSError as error:
        print(f"cannot read the export: {error}", file=sys.stderr)
        return 2
    print(f"OK {count} events, head {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
