"""The API's JSON parser: stricter than DRF's, so hostile bodies are refused before any view runs.

Bodies are UTF-8, as API.md says: a `charset` parameter naming anything else, or nothing Python
knows, is 415 `unsupported_media_type` (DRF would decode UTF-16 into a 500 and read an unknown
charset as UTF-8 without a word). DRF's `JSONParser` already refuses `NaN` and `Infinity`.
This one also refuses, as 400 `malformed_request`:

- bytes that are not UTF-8;
- an object with the same key twice: `json` keeps the last one silently, so two readers of
  the same bytes (a proxy that logs the first, this API that stores the last) could disagree;
- nesting deeper than `MAX_DEPTH`: no request of the API goes past about 8 levels, and Python's
  decoder and every recursive walk after it (validation, canonical JSON) would otherwise meet
  the recursion limit, a 500;
- text that is not Unicode (a lone surrogate such as `"\\ud800"`), which could not be stored
  or even written back in an error message;

and, as 422 `invalid_event` naming the field, any string or key over `MAX_STRING_LENGTH`
characters, whatever the field's own limit (the catalogue's are lower).

Numbers with a fraction or an exponent are read as `float`, as by DRF: every place of the API
that takes a decimal wants a string, and the catalogue and the event store refuse a float with
a message naming the field. Reading them as `Decimal` would keep digits that are about to be
refused, but the catalogue accepts a `Decimal` (Python callers pass them), so money sent as a
JSON number would then be stored instead of refused.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import IO, Any

from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.request import Request

MAX_DEPTH = 32
MAX_STRING_LENGTH = 20_000


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str) -> Any:
    """Parse JSON text as the API accepts it; raises ParseError or ValidationError."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_refuse_constant,
        )
    except _DuplicateKey as duplicate:
        key = str(duplicate)
        raise ParseError(f"The JSON has the key {_shown(key)} twice in one object.") from None
    except RecursionError:
        raise ParseError(f"The JSON is nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as error:
        # json.JSONDecodeError says where ("line 1 column 9"), never echoing the body.
        raise ParseError(f"The body is not valid JSON: {error}") from None
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    """Depth, Unicode and string lengths, walked without recursion (the depth is unbounded)."""
    too_long: dict[str, list[str]] = {}
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            _check_text(item, path, too_long)
        elif isinstance(item, Mapping | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"The JSON is nested deeper than {MAX_DEPTH} levels.")
            if isinstance(item, Mapping):
                for key, child in item.items():
                    _check_text(key, (*path, key), too_long, is_key=True)
                    stack.append((child, depth + 1, (*path, key)))
            else:
                stack.extend((child, depth + 1, (*path, i)) for i, child in enumerate(item))
    if too_long:
        raise drf_serializers.ValidationError(too_long)


def _check_text(
    text: str, path: tuple[str | int, ...], too_long: dict[str, list[str]], *, is_key: bool = False
) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("The JSON holds text that is not Unicode (a lone surrogate).") from None
    if len(text) > MAX_STRING_LENGTH:
        what = "key" if is_key else "text"
        too_long[_dotted(path)] = [
            f"{what} of {len(text)} characters; at most {MAX_STRING_LENGTH} are accepted"
        ]


def _dotted(path: tuple[str | int, ...]) -> str:
    """`events[0].data.text`, as the API names fields in errors."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            shown = part if len(part) <= 100 else part[:100] + "…"
            out += f".{shown}" if out else shown
    return out


def _shown(key: str) -> str:
    return repr(key if len(key) <= 100 else key[:100] + "…")


def _check_charset(media_type: str | None) -> None:
    """Refuse a `charset` other than UTF-8 (under any of its names) as 415."""
    _, params = parse_header_parameters(media_type or "")
    charset = params.get("charset")
    if charset is None:
        return
    try:
        utf8 = codecs.lookup(charset).name == "utf-8"
    except LookupError:
        utf8 = False
    if not utf8:
        raise UnsupportedMediaType(
            media_type,
            detail=f"The body must be UTF-8; charset {_shown(charset)} is not accepted.",
        )


class StrictJSONParser(parsers.JSONParser):
    """DRF's JSON parser with the refusals above; the API's only parser."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        _check_charset(media_type)
        try:
            text = codecs.getreader("utf-8")(stream).read()
        except UnicodeDecodeError:
            raise ParseError("The body is not valid UTF-8 text.") from None
        return loads(text)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyRequired:
    """For views whose writes take a JSON object: an empty body is 400 `malformed_request`.

    DRF never hands an empty body to a parser; it reads it as `{}`, which would make a request
    without a body look like an object missing every field (422). API.md calls a body that is
    not JSON a malformed request. Checked after authentication and permissions, so an anonymous
    client still gets 401.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        # DRF's own test for an empty body (no or zero Content-Length): then no stream.
        if request.method in WRITE_METHODS and request.stream is None:
            raise ParseError("The request body is empty; a JSON object is expected.")
