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


def check_storable(value: Any, path: str = "data") -> None:
    """Raise UnstorableValue unless `value` has one exact canonical JSON form."""
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
            check_storable(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_storable(item, f"{path}[{index}]")
        return
    raise UnstorableValue(path=path, reason=f"{type(value).__name__} is not a JSON value")


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise UnstorableValue(path=path, reason="NUL characters are not allowed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UnstorableValue(path=path, reason="text is not valid Unicode") from None


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: the only form a timestamp takes inside a hash."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hashed_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: fields[name] for name in HASHED_FIELDS}


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """sha256 over the previous hash (hex) followed by the canonical JSON of the event."""
    payload = prev_hash + canonical_json(hashed_body(fields))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def split_at_recorded_at(fields: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical JSON of the hashed fields, less `recorded_at`, split where its value goes.

    `prefix + format_timestamp(t) + suffix == canonical_json(fields | {"recorded_at": t})`,
    which lets the database stamp the time and hash the event in the same statement.
    """
    before = {name: fields[name] for name in HASHED_FIELDS if name < "recorded_at"}
    after = {name: fields[name] for name in HASHED_FIELDS if name > "recorded_at"}
    prefix = canonical_json(before)[:-1] + ',"recorded_at":"'
    suffix = '",' + canonical_json(after)[1:]
    return prefix, suffix
