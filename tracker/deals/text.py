"""One rule for every free text the project stores, and the catalogue's text types.

Django-free (an import-linter contract keeps it so): the catalogue's fields use the types, and
reference data (organisation names) uses `text_problem` through a model validator.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

MULTILINE = "x-multiline"
"""Marks text of several lines in a type's JSON Schema, so that a form picks a text area."""

# One rule for every free-text field of the catalogue (and for any other text the project
# stores, through `text_problem`): text is kept verbatim, Turkish, Arabic, CJK, emoji with
# their zero-width joiners and non-breaking spaces alike, except what can only deceive a
# reader or a terminal:
# - control characters (C0, DEL, C1), so no ANSI escape sequence (ESC [ ...) reaches a log or
#   a terminal; multi-line fields keep TAB, LF and CR;
# - line breaks (LF, CR, U+2028, U+2029) and TAB in one-line fields, which must not forge a
#   second line in a list, a log or a CSV export;
# - the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which
#   make text display in another order than it is stored ("Trojan Source", CVE-2021-42574);
#   the marks U+200E, U+200F and U+061C, which Arabic and Hebrew text needs, stay;
# - lone surrogates (a "\ud800" escape in JSON), which are not text in any encoding;
# - text with nothing visible: only format characters (category Cf: U+200B, U+2060, ...),
#   spaces, combining marks or the Hangul and Braille blanks.

_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BIDI = "\u202a-\u202e\u2066-\u2069"
_SURROGATES = "\ud800-\udfff"
_SURROGATE = re.compile(f"[{_SURROGATES}]")
_REFUSED_IN_TEXT = re.compile(f"[{_CONTROLS}{_BIDI}{_SURROGATES}]")
_REFUSED_IN_LINE = re.compile(f"[{_CONTROLS}{_BIDI}{_SURROGATES}\t\n\r\u2028\u2029]")
_INVISIBLE_CATEGORIES = frozenset(("Cf", "Cc", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"))
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def text_problem(value: str, *, one_line: bool) -> str | None:
    """Why `value` may not be stored as text (see above), or None if it may.

    An empty string is left to the field's own minimum length.
    """
    refused = (_REFUSED_IN_LINE if one_line else _REFUSED_IN_TEXT).search(value)
    if refused:
        char = refused.group()
        code = f"U+{ord(char):04X}"
        if char in "\t\n\r\u2028\u2029" and one_line:
            return f"must be one line: it contains {_NAMES.get(char, code)}"
        if "\ud800" <= char <= "\udfff":
            return f"contains {code}, half of a surrogate pair on its own, which is not text"
        if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
            return (
                f"contains the bidirectional control {code}, which shows text in another "
                "order than it is stored"
            )
        return f"contains the control character {_NAMES.get(char, code)}"
    if value and not any(_visible(char) for char in value):
        return "has no visible character"
    return None


_NAMES = {
    "\t": "a tab (U+0009)",
    "\n": "a line feed (U+000A)",
    "\r": "a carriage return (U+000D)",
    "\x1b": "ESC (U+001B), which starts terminal escape sequences",
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
}


def _visible(char: str) -> bool:
    return unicodedata.category(char) not in _INVISIBLE_CATEGORIES and char not in _BLANK_LETTERS


def _one_line(value: str) -> str:
    problem = text_problem(value, one_line=True)
    if problem:
        raise PydanticCustomError("text", problem)
    return value


def _multi_line(value: str) -> str:
    problem = text_problem(value, one_line=False)
    if problem:
        raise PydanticCustomError("text", problem)
    return value


def _whole_characters(value: Any) -> Any:
    # pydantic refuses a lone surrogate before any rule runs, saying only that the input is
    # not a valid string; this says which character and why.
    if isinstance(value, str):
        surrogate = _SURROGATE.search(value)
        if surrogate:
            raise PydanticCustomError("text", text_problem(surrogate.group(), one_line=False))
    return value


def _text(*, max_length: int, one_line: bool, required: bool = True) -> Any:
    return Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1 if required else None, max_length=max_length
        ),
        # A before-validator runs before the constraints wherever it is placed; placed first,
        # it would make pydantic check the length before stripping.
        BeforeValidator(_whole_characters),
        AfterValidator(_one_line if one_line else _multi_line),
        Field(json_schema_extra=None if one_line else {MULTILINE: True}),
    ]


# Names, titles, roles, items: one line. Reasons, notes, quotes, summaries: several.
ShortText = _text(max_length=300, one_line=True)
OptionalShortText = _text(max_length=300, one_line=True, required=False)
Title = _text(max_length=2000, one_line=True)
Text = _text(max_length=2000, one_line=False)
OptionalText = _text(max_length=10000, one_line=False, required=False)
