"""Canonical JSON and the per-stream hash chain.

Canonical JSON is RFC 8785 (JSON Canonicalization Scheme) restricted to what events hold:
objects with keys sorted, no insignificant whitespace, strings as UTF-8 with only the escapes
JSON requires, integers, booleans and null. Floats are refused: Decimals and dates travel as
strings, so the same bytes come out in any language. `docs/export-format.md` states the rules
precisely; `tools/verify_export.py` re-implements them with the standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .errors import UnstorableValue

GENESIS_HASH = "0" * 64
# Fields of an event that the chain covers, in the order documented in docs/export-format.md.
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
_MAX_SAFE_INTEGER = 2**53 - 1
# Field names are plain ASCII, so they need no escaping inside the JSON they name.
_BEFORE_RECORDED_AT = tuple(name for name in HASHED_FIELDS if name < "recorded_at")
_AFTER_RECORDED_AT = tuple(name for name in HASHED_FIELDS if name > "recorded_at")


def check_storable(value: Any, path: str = "data") -> None:
    """Raise UnstorableValue unless `value` has one exact canonical JSON form."""
    # Every append runs this over every event: a quick yes/no walk without paths goes first,
    # and only a value it doubts is walked again to name the problem and where it is.
    if not _plainly_storable(value):
        _check_closely(value, path)


def _plainly_storable(value: Any) -> bool:
    """True for plain JSON values (exact dicts, lists, str, int, bool, None) that are storable."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str or not _plain_text(key):
                return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is str:
        return _plain_text(value)
    elif kind is int:
        return -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER
    else:
        return value is None or kind is bool
    # Strings, the commonest leaves, are checked here rather than in a call of their own.
    for item in items:
        if not (_plain_text(item) if type(item) is str else _plainly_storable(item)):
            return False
    return True


def _plain_text(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_closely(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise UnstorableValue(path=path, reason="integer too large; send it as a string")
        return
    if isinstance(value, float):
        raise UnstorableValue(path=path, reason="floats are not stored; send a decimal string")
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnstorableValue(path=path, reason="object keys must be strings")
            _check_text(key, path)
            _check_closely(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_closely(item, f"{path}[{index}]")
        return
    raise UnstorableValue(path=path, reason=f"{type(value).__name__} is not a JSON value")


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise UnstorableValue(path=path, reason="NUL characters are not allowed")
    if not _plain_text(text):
        raise UnstorableValue(path=path, reason="text is not valid Unicode")


# One encoder for every call: json.dumps with options builds a new encoder each time.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def canonical_json(value: Any) -> str:
    return _ENCODER.encode(value)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: the only form a timestamp takes inside a hash."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hashed_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: fields[name] for name in HASHED_FIELDS}


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256 over the previous hash (hex) followed by the canonical JSON of the event."""
    payload = prev_hash + canonical_json(hashed_body(fields))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def split_at_recorded_at(encoded: Mapping[str, str]) -> tuple[str, str]:
    """The canonical JSON of an event less `recorded_at`, split where its value goes.

    `encoded` maps each hashed field (bar `recorded_at`) to its canonical JSON, so a caller
    that already encoded `data` for storage does not encode it again. Then
    `prefix + format_timestamp(t) + suffix == canonical_json(fields | {"recorded_at": t})`,
    which lets the database stamp the time and hash the event in the same statement.
    """
    before = ",".join(f'"{name}":{encoded[name]}' for name in _BEFORE_RECORDED_AT)
    after = ",".join(f'"{name}":{encoded[name]}' for name in _AFTER_RECORDED_AT)
    return "{" + before + ',"recorded_at":"', '",' + after + "}"
