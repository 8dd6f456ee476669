#!/usr/bin/env python3
"""Verify a deal-tracker export offline: `verify_export.py EXPORT.jsonl` (or `-`/nothing: stdin).

Recomputes each event's hash from its fields and the previous hash, as docs/export-format.md
describes, and checks the header's event count and head hash. Exits 0 printing
"OK <n> events, head <hash>", or 1 printing the first bad line's number and why.
Python standard library only, so it runs anywhere without this project.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from typing import Any, BinaryIO

FORMAT = "deal-tracker-export"
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


def check_header(header: dict[str, Any]) -> None:
    if set(header) != HEADER_FIELDS:
        raise BadLine(1, f"header fields are {sorted(header)}, expected {sorted(HEADER_FIELDS)}")
    if header["format"] != FORMAT:
        raise BadLine(1, f"format is {header['format']!r}, expected {FORMAT!r}")
    if header["format_version"] != FORMAT_VERSION:
        raise BadLine(1, f"format_version {header['format_version']!r} is not supported")
    if not isinstance(header["deal"], str) or not UUID_RE.fullmatch(header["deal"]):
        raise BadLine(1, "deal is not a lowercase hyphenated UUID")
    events = header["events"]
    if not isinstance(events, int) or isinstance(events, bool) or events < 0:
        raise BadLine(1, "events is not a non-negative integer")
    if not isinstance(header["head"], str) or not HASH_RE.fullmatch(header["head"]):
        raise BadLine(1, "head is not 64 lowercase hex digits")


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


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in {"-h", "--help"}):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        if len(argv) == 1 or argv[1] == "-":
            count, head = verify(sys.stdin.buffer)
        else:
            with open(argv[1], "rb") as stream:
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
