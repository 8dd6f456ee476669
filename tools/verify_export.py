#!/usr/bin/env python3
"""Verify a deal-tracker export offline, as docs/export-format.md describes.

  verify_export.py [EXPORT.jsonl] [--expect-head HASH]
      one deal's export (`-` or nothing: standard input); with --expect-head, a head saved
      earlier (from /api/v1/deals/{id}/verify/) must be the hash of one of its events
  verify_export.py --ledger LEDGER.jsonl [--digest SAVED-DIGEST.json]
      a whole-ledger export (`manage.py export_ledger`), checked against a digest saved
      earlier if given

Checks every field's type and form, recomputes each event's hash from its fields and the
previous hash, and checks each header's event count and head hash; for a ledger, also
recomputes the chain of digests and checks that each stream's event at every version a digest
recorded has the hash it recorded. Exits 0 printing "OK ...", 1 printing "FAILED at line N: why"
for the first bad line whatever the file holds, 2 if a file cannot be read or the arguments are
wrong. Python standard library only, so it runs anywhere without this project.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from datetime import date, datetime
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
OCCURRED_FIELDS = frozenset({"date", "precision"})
# `estimate` is written only when true: a date the source gives as its estimate.
OCCURRED_ESTIMATED = OCCURRED_FIELDS | {"estimate"}
PRECISIONS = frozenset({"day", "month", "year"})
SOURCE_FIELDS = frozenset({"title", "publisher", "url", "published_on"})
# Fields a digest's hash covers, after its prev_digest.
DIGEST_HASHED = ("events", "feed_cursor", "heads_root", "sequence", "streams", "taken_at")
DIGEST_FIELDS = frozenset(DIGEST_HASHED) | {"format", "format_version", "prev_digest", "digest"}
# Integers a JSON reader in any language holds exactly (an IEEE double's integers).
MAX_SAFE_INTEGER = 2**53 - 1
# Deeper than any line the server writes, and shallow enough for any recursive JSON reader.
MAX_DEPTH = 100
# [0-9], not \d: \d also matches other scripts' digits.
HASH_RE = re.compile(r"[0-9a-f]{64}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TYPE_RE = re.compile(r"[A-Z][A-Za-z0-9]*")


class BadLine(Exception):
    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"line {number}: {reason}")
        self.number = number
        self.reason = reason


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Keys sorted by code point, no whitespace, non-ASCII as UTF-8, only required escapes."""
    return _ENCODER.encode(value)


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    body = {name: fields[name] for name in HASHED_FIELDS}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


# --- reading a line --------------------------------------------------------------------------


def _integer(text: str) -> int:
    digits = text.removeprefix("-")
    if len(digits) > len(str(MAX_SAFE_INTEGER)) or abs(int(text)) > MAX_SAFE_INTEGER:
        raise ValueError(f"integer {text[:40]} is beyond 2^53 - 1 in magnitude")
    if text == "-0":
        raise ValueError("-0 is not written; zero is 0")
    return int(text)


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text[:40]} is not an integer; exports hold no fractions")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


_DECODER = json.JSONDecoder(
    parse_int=_integer,
    parse_float=_refuse_float,
    parse_constant=_refuse_constant,
    object_pairs_hook=_unique_keys,
)


def shown(value: Any) -> str:
    """A value as JSON for a message, cut short; ASCII, so any terminal prints it."""
    text = json.dumps(value, ensure_ascii=True, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_line(raw: bytes, number: int) -> dict[str, Any]:
    """One line of an export (with its LF) as a JSON object the server could have written."""
    if not raw.endswith(b"\n"):
        raise BadLine(number, "the line does not end with LF (the file may be cut short)")
    raw = raw[:-1]
    if raw.endswith(b"\r"):
        raise BadLine(number, "the line ends with CR LF; lines end with LF alone")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadLine(number, f"not UTF-8 ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise BadLine(number, "empty line")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise BadLine(number, f"values nest more than {MAX_DEPTH} deep") from None
    except ValueError as error:
        raise BadLine(number, f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise BadLine(number, "not a JSON object")
    # U+0000 and surrogates can only come from \u escapes (the JSON reader refuses them raw,
    # the UTF-8 decoder encoded), and a line nests no deeper than its brackets: most lines
    # need no walk.
    if "\\u" in text or text.count("[") + text.count("{") > MAX_DEPTH:
        check_values(value, number)
    return value


def check_values(line: dict[str, Any], number: int) -> None:
    """Refuse nesting beyond MAX_DEPTH, and strings holding U+0000 or an unpaired surrogate.

    The server stores neither character, and a surrogate has no UTF-8 form to hash.
    """
    stack: list[tuple[Any, int, str]] = [(line, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise BadLine(number, f"values nest more than {MAX_DEPTH} deep")
            for key, item in value.items():
                check_text(key, number, f"a key in {path or 'the line'}")
                stack.append((item, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise BadLine(number, f"values nest more than {MAX_DEPTH} deep")
            stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            check_text(value, number, path)


def check_text(text: str, number: int, where: str) -> None:
    if "\x00" in text:
        raise BadLine(number, f"{where} holds U+0000")
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        raise BadLine(number, f"{where} holds an unpaired surrogate U+{code:04X}") from None


# --- forms -------------------------------------------------------------------------------------


def is_integer(value: Any) -> bool:
    # bool is an int in Python; `true` is not a number in JSON.
    return isinstance(value, int) and not isinstance(value, bool)


def is_count(value: Any) -> bool:
    return is_integer(value) and value >= 0


def is_hash(value: Any) -> bool:
    return isinstance(value, str) and HASH_RE.fullmatch(value) is not None


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def is_timestamp(value: Any) -> bool:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` naming a real moment (no 30 February, no 24:00)."""
    if not isinstance(value, str) or not TIMESTAMP_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def is_date(value: Any) -> bool:
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_format(record: dict[str, Any], number: int, expected: str) -> None:
    if record["format"] != expected:
        raise BadLine(number, f"format is {shown(record['format'])}, expected {shown(expected)}")
    if not is_integer(record["format_version"]) or record["format_version"] != FORMAT_VERSION:
        raise BadLine(number, f"format_version {shown(record['format_version'])} is not supported")


def check_header(header: dict[str, Any], number: int = 1) -> None:
    if set(header) != HEADER_FIELDS:
        raise BadLine(
            number, f"header fields are {sorted(header)}, expected {sorted(HEADER_FIELDS)}"
        )
    check_format(header, number, FORMAT)
    if not is_uuid(header["deal"]):
        raise BadLine(number, f"deal {shown(header['deal'])} is not a lowercase hyphenated UUID")
    if not is_count(header["events"]):
        raise BadLine(number, f"events {shown(header['events'])} is not a non-negative integer")
    if not is_hash(header["head"]):
        raise BadLine(number, f"head {shown(header['head'])} is not 64 lowercase hex digits")
    if header["events"] == 0 and header["head"] != GENESIS_HASH:
        raise BadLine(number, "the head of a stream without events is 64 zeros")
    if not is_timestamp(header["exported_at"]):
        raise BadLine(
            number,
            f"exported_at {shown(header['exported_at'])} is not a YYYY-MM-DDTHH:MM:SS.ffffffZ time",
        )


def check_occurred(value: Any) -> str | None:
    """Why `occurred` is not null or {"date": "YYYY-MM-DD", "precision": day|month|year}, with
    `"estimate": true` or without it."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) not in (OCCURRED_FIELDS, OCCURRED_ESTIMATED):
        return "is not null or an object of exactly date and precision (and estimate)"
    if "estimate" in value and value["estimate"] is not True:
        return "estimate is not true (it is written only when true)"
    if not is_date(value["date"]):
        return "date is not a real YYYY-MM-DD date"
    if not isinstance(value["precision"], str) or value["precision"] not in PRECISIONS:
        return 'precision is not "day", "month" or "year"'
    return None


def check_source(value: Any) -> str | None:
    """Why `source` is not null or {title, publisher, url, published_on} of the right types."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != SOURCE_FIELDS:
        return "is not null or an object of exactly title, publisher, url and published_on"
    for name in ("title", "publisher"):
        if not isinstance(value[name], str):
            return f"{name} is not a string"
    if value["url"] is not None and not isinstance(value["url"], str):
        return "url is not a string or null"
    if value["published_on"] is not None and not is_date(value["published_on"]):
        return "published_on is not a real YYYY-MM-DD date or null"
    return None


def check_event_fields(event: dict[str, Any], number: int) -> None:
    """Every field's type and form, as the table in docs/export-format.md gives them."""
    missing = EVENT_FIELDS - set(event)
    if missing:
        raise BadLine(number, f"missing fields {sorted(missing)}")
    extra = set(event) - EVENT_FIELDS
    if extra:
        raise BadLine(number, f"unexpected fields {sorted(extra)}")

    def refuse(name: str, why: str) -> BadLine:
        return BadLine(number, f"{name} {shown(event[name])} {why}")

    if not isinstance(event["actor"], str):
        raise refuse("actor", "is not a string")
    if not isinstance(event["data"], dict):
        raise refuse("data", "is not an object")
    if not is_uuid(event["event_id"]):
        raise refuse("event_id", "is not a lowercase hyphenated UUID")
    why = check_occurred(event["occurred"])
    if why:
        raise BadLine(number, f"occurred {why}")
    if not is_timestamp(event["recorded_at"]):
        raise refuse("recorded_at", "is not a real time written YYYY-MM-DDTHH:MM:SS.ffffffZ")
    if not is_integer(event["schema_version"]) or event["schema_version"] < 1:
        raise refuse("schema_version", "is not a positive integer")
    why = check_source(event["source"])
    if why:
        raise BadLine(number, f"source {why}")
    if not is_uuid(event["stream_id"]):
        raise refuse("stream_id", "is not a lowercase hyphenated UUID")
    if not isinstance(event["type"], str) or not TYPE_RE.fullmatch(event["type"]):
        raise refuse("type", "is not an event type name (ASCII letters and digits, A-Z first)")
    if not is_integer(event["version"]) or event["version"] < 1:
        raise refuse("version", "is not a positive integer")
    if not is_integer(event["position"]) or event["position"] < 1:
        raise refuse("position", "is not a positive integer")
    for name in ("prev_hash", "hash"):
        if not is_hash(event[name]):
            raise refuse(name, "is not 64 lowercase hex digits")


def check_event(
    event: dict[str, Any], number: int, deal: str, version: int, prev: str, seen: set[str]
) -> str:
    """The event's hash if it is the stream's event `version` following `prev`.

    `seen` holds the event ids met so far in the file; this one is added to it.
    """
    check_event_fields(event, number)
    if event["stream_id"] != deal:
        raise BadLine(number, f"stream_id {event['stream_id']} is not the header's deal")
    if event["version"] != version:
        raise BadLine(number, f"version is {event['version']}, expected {version}")
    if event["prev_hash"] != prev:
        raise BadLine(number, "prev_hash is not the previous event's hash")
    if event["event_id"] in seen:
        raise BadLine(number, f"event_id {event['event_id']} is on an earlier line too")
    seen.add(event["event_id"])
    digest = chain_hash(prev, event)
    if event["hash"] != digest:
        raise BadLine(number, f"hash does not match the event's contents (computed {digest})")
    return digest


def verify(stream: BinaryIO, expect_head: str | None = None) -> tuple[int, str, int | None]:
    """(event count, head hash, version of `expect_head`) of a valid export.

    Raises BadLine at the first problem, and when `expect_head` is given but is the hash of
    no event in the export (64 zeros, the head before any event, is version 0).
    """
    lines = iter(stream)
    first = next(lines, None)
    if first is None:
        raise BadLine(1, "the export is empty; expected a header line")
    header = parse_line(first, 1)
    check_header(header)
    prev = GENESIS_HASH
    expected_at = 0 if expect_head == GENESIS_HASH else None
    seen: set[str] = set()
    count = 0
    number = 1
    for number, raw in enumerate(lines, start=2):
        count += 1
        if count > header["events"]:
            raise BadLine(number, f"the header declares only {header['events']} events")
        event = parse_line(raw, number)
        prev = check_event(event, number, header["deal"], count, prev, seen)
        if prev == expect_head:
            expected_at = count
    if count < header["events"]:
        raise BadLine(
            number + 1, f"the header declares {header['events']} events but the export has {count}"
        )
    if prev != header["head"]:
        raise BadLine(1, "the header's head is not the last event's hash")
    if expect_head is not None and expected_at is None:
        raise BadLine(
            1,
            f"no event's hash is the expected head {expect_head}: the stream was rewritten "
            "up to it, or this is another deal's export",
        )
    return count, prev, expected_at


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
    check_format(digest, number, DIGEST_FORMAT)
    for name in ("sequence", "streams", "events"):
        if not is_count(digest[name]):
            raise BadLine(number, f"{name} {shown(digest[name])} is not a non-negative integer")
    if digest["sequence"] < 1:
        raise BadLine(number, "sequence is not a positive integer")
    for name in ("heads_root", "prev_digest", "digest"):
        if not is_hash(digest[name]):
            raise BadLine(number, f"{name} {shown(digest[name])} is not 64 lowercase hex digits")
    if not is_timestamp(digest["taken_at"]):
        raise BadLine(
            number,
            f"taken_at {shown(digest['taken_at'])} is not a YYYY-MM-DDTHH:MM:SS.ffffffZ time",
        )
    if not isinstance(digest["feed_cursor"], str):
        raise BadLine(number, f"feed_cursor {shown(digest['feed_cursor'])} is not a string")


def load_saved_digest(path: str) -> dict[str, Any]:
    """The digest an auditor saved (`GET /api/v1/ledger/digest/`), checked against itself."""
    with open(path, "rb") as stream:
        raw = stream.read()
    try:
        # A saved document is one JSON text, however it ends or is indented.
        digest = parse_line(raw.rstrip(b" \t\r\n") + b"\n", 1)
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


def check_ledger_header(header: dict[str, Any]) -> None:
    if set(header) != LEDGER_FIELDS:
        raise BadLine(1, f"header fields are {sorted(header)}, expected {sorted(LEDGER_FIELDS)}")
    check_format(header, 1, LEDGER_FORMAT)
    for name in ("streams", "events", "digests"):
        if not is_count(header[name]):
            raise BadLine(1, f"{name} {shown(header[name])} is not a non-negative integer")
    if not is_timestamp(header["exported_at"]):
        raise BadLine(
            1,
            f"exported_at {shown(header['exported_at'])} is not a YYYY-MM-DDTHH:MM:SS.ffffffZ time",
        )


def is_head_entry(item: Any) -> bool:
    return (
        isinstance(item, list)
        and len(item) == 3
        and is_uuid(item[0])
        and is_integer(item[1])
        and item[1] > 0
        and is_hash(item[2])
    )


def verify_ledger(stream: BinaryIO, saved: dict[str, Any] | None = None) -> tuple[int, int, int]:
    """(streams, events, digests) of a valid whole-ledger export; raises BadLine otherwise.

    The digests come first: each is checked for its sequence, link and hash, and its heads,
    merged into those of the digests before it, must give its heads_root. Every (stream,
    version, head) a digest holds is then checked against the events as their chains are
    recomputed. With `saved`, the export's digest of the same sequence must be that digest.
    """
    lines = numbered(stream)
    number, header = next_line(lines, 0, "a header")
    check_ledger_header(header)
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
            raise BadLine(number, f"sequence is {digest['sequence']}, expected {sequence}")
        if digest["prev_digest"] != prev_digest:
            raise BadLine(number, "prev_digest is not the previous digest's hash")
        if digest_hash(prev_digest, digest) != digest["digest"]:
            raise BadLine(number, "digest does not match the digest's fields")
        if not isinstance(digest["heads"], list):
            raise BadLine(number, "heads is not a list")
        for item in digest["heads"]:
            if not is_head_entry(item):
                raise BadLine(number, f"{shown(item)} is not a [stream_id, version, head] entry")
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
    seen: set[str] = set()
    for _ in range(header["streams"]):
        number, section = next_line(lines, number, "a stream's header")
        check_header(section, number)
        stream_id = section["deal"]
        if stream_id <= previous_stream:
            raise BadLine(number, "streams are not in ascending order of their ids")
        if section["events"] == 0:
            raise BadLine(number, "a stream without events is not exported")
        previous_stream = stream_id
        prev = GENESIS_HASH
        for version in range(1, section["events"] + 1):
            number, event = next_line(lines, number, f"version {version} of {stream_id}")
            prev = check_event(event, number, stream_id, version, prev, seen)
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


# --- command line ------------------------------------------------------------------------


def parse_args(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="verify_export.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("export", nargs="?", help="one deal's export; `-` or nothing: stdin")
    parser.add_argument(
        "--expect-head",
        metavar="HASH",
        help="a head saved from /api/v1/deals/{id}/verify/: some event must have this hash",
    )
    parser.add_argument("--ledger", metavar="FILE", help="a whole-ledger export instead")
    parser.add_argument("--digest", metavar="SAVED", help="with --ledger: a digest saved earlier")
    options = parser.parse_args(args)
    if options.ledger is not None and (options.export is not None or options.expect_head):
        parser.error("--ledger takes no deal export and no --expect-head (use --digest)")
    if options.digest is not None and options.ledger is None:
        parser.error("--digest goes with --ledger")
    if options.expect_head is not None:
        options.expect_head = options.expect_head.strip().lower()
        if not HASH_RE.fullmatch(options.expect_head):
            parser.error("--expect-head takes a hash: 64 hex digits")
    return options


def main(argv: list[str]) -> int:
    # Messages quote the file's contents; never let printing them fail.
    for output in (sys.stdout, sys.stderr):
        if hasattr(output, "reconfigure"):
            output.reconfigure(errors="backslashreplace")
    options = parse_args(argv[1:])
    if options.ledger is not None:
        return main_ledger(options.ledger, options.digest)
    return main_deal(options.export, options.expect_head)


def main_ledger(ledger: str, digest_path: str | None) -> int:
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


def main_deal(path: str | None, expect_head: str | None) -> int:
    try:
        if path is None or path == "-":
            count, head, expected_at = verify(sys.stdin.buffer, expect_head)
        else:
            with open(path, "rb") as stream:
                count, head, expected_at = verify(stream, expect_head)
    except BadLine as error:
        print(f"FAILED at {error}")
        return 1
    except OSError as error:
        print(f"cannot read the export: {error}", file=sys.stderr)
        return 2
    summary = f"OK {count} events, head {head}"
    if expect_head is not None:
        summary += f"; expected head is version {expected_at}"
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
