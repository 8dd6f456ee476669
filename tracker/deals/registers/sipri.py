"""Reader of SIPRI Arms Transfers Database trade-register exports.

Two formats are read: the current trade-register CSV (header `SIPRI AT Database ID,Supplier,...`)
and the older "deals and TIVs" text export (header `Deal ID;Seller;Buyer;...`). Both hold one row
per deal and delivery year, one row per line, after a preamble that names the query and the
edition's date.

`read_register` returns the rows it accepted and a `RowProblem` for each row it refused, with the
row's deal id when it could be read: an importer refuses those deals (`Register.refused_deals`)
and imports the others.

Pure: no Django, no event store, no I/O beyond decoding the bytes it is given.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from operator import attrgetter
from typing import Any

CSV = "csv"
TEXT = "text"


class RegisterFormatError(ValueError):
    """The whole file is unreadable as a trade register: not text, no header line, or columns
    missing, unknown or repeated."""

    code = "register_format"


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One row of the register: a deal, and one year of its deliveries if there were any.

    TIV is SIPRI's trend-indicator value, a volume unit, never money. An estimate flag left
    unknown in the file reads as False: the figure is not marked as estimated.
    """

    line: int  # 1-based physical line of the file, as an editor numbers it
    deal_id: str
    supplier: str
    recipient: str
    designation: str
    description: str
    category: str
    order_year: int | None
    order_year_estimate: bool
    delivered: int | None
    delivered_estimate: bool
    delivery_year: int | None
    delivery_year_estimate: bool
    status: str | None  # "new", "second_hand" or "second_hand_modernized"
    sipri_estimate: bool | Decimal | None
    tiv_unit: Decimal | None
    tiv_delivered: Decimal | None
    local_production: bool | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A refused row, one per row: `reason` names each bad cell, separated by "; ". `deal_id` is
    None when the row's deal id itself is unreadable."""

    line: int
    deal_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Register:
    """One export as read: its preamble, the rows accepted and the rows refused."""

    format: str  # CSV or TEXT
    edition: date | None
    preamble: tuple[str, ...]  # preamble[i] is physical line i + 1, unquoted
    rows: tuple[RegisterRow, ...]
    problems: tuple[RowProblem, ...]

    @property
    def refused_deals(self) -> frozenset[str]:
        """Deals with a refused row: their other rows are in `rows`, but are not the whole deal."""
        return frozenset(p.deal_id for p in self.problems if p.deal_id is not None)


class _Refused(Exception):
    """A cell does not hold what its column holds; the message follows "Column: 'cell' "."""


_UNKNOWN = frozenset({"", "..", ". ."})
_FLAGS = {"yes": True, "no": False}
_STATUSES = {
    "new": "new",
    "second hand": "second_hand",
    "second hand but modernized": "second_hand_modernized",
    "second hand but modernised": "second_hand_modernized",
}
_DECIMAL = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def _text(cell: str) -> str:
    return cell


def _deal_id(cell: str) -> str:
    if cell.isascii() and cell.isdigit():
        return cell
    raise _Refused("is not a deal id (digits)")


def _year(cell: str) -> int | None:
    if cell in _UNKNOWN:
        return None
    if not (cell.isascii() and cell.isdigit()):
        raise _Refused("is not a year")
    year = int(cell)
    if not 1900 <= year <= 2100:
        raise _Refused("is not a year between 1900 and 2100")
    return year


def _count(cell: str) -> int | None:
    if cell in _UNKNOWN:
        return None
    if cell.isascii() and cell.isdigit():
        return int(cell)
    raise _Refused("is not a whole number of at least 0")


def _flag(cell: str) -> bool | None:
    if cell in _UNKNOWN:
        return None
    try:
        return _FLAGS[cell.lower()]
    except KeyError:
        raise _Refused("is not Yes or No") from None


def _estimate(cell: str) -> bool:
    return _flag(cell) is True


def _decimal(cell: str) -> Decimal | None:
    if cell in _UNKNOWN:
        return None
    if _DECIMAL.fullmatch(cell):
        return Decimal(cell)
    if cell.startswith("-") and _DECIMAL.fullmatch(cell[1:]):
        raise _Refused("is negative")
    raise _Refused("is not a decimal number")


def _status(cell: str) -> str | None:
    if cell in _UNKNOWN:
        return None
    try:
        return _STATUSES[" ".join(cell.lower().split())]
    except KeyError:
        raise _Refused("is not New, Second hand or Second hand but modernized") from None


def _sipri_estimate(cell: str) -> bool | Decimal | None:
    # SIPRI does not document this column: keep a flag as a flag and a number as a number.
    flag = _FLAGS.get(cell.lower())
    if flag is not None:
        return flag
    try:
        return _decimal(cell)
    except _Refused:
        raise _Refused("is neither Yes, No nor a decimal number of at least 0") from None


# (RegisterRow field, CSV header, text-export header, parser of the stripped cell), in the order
# of RegisterRow's fields, so that parsed values can be passed to it positionally.
_COLUMNS: tuple[tuple[str, str, str, Callable[[str], Any]], ...] = (
    ("deal_id", "SIPRI AT Database ID", "Deal ID", _deal_id),
    ("supplier", "Supplier", "Seller", _text),
    ("recipient", "Recipient", "Buyer", _text),
    ("designation", "Designation", "Designation", _text),
    ("description", "Description", "Description", _text),
    ("category", "Armament category", "Armament category", _text),
    ("order_year", "Order date", "Order date", _year),
    ("order_year_estimate", "Order date is estimate", "Order date is estimate", _estimate),
    ("delivered", "Numbers delivered", "Numbers delivered", _count),
    (
        "delivered_estimate",
        "Numbers delivered is estimate",
        "Numbers delivered is estimate",
        _estimate,
    ),
    ("delivery_year", "Delivery year", "Delivery year", _year),
    (
        "delivery_year_estimate",
        "Delivery year is estimate",
        "Delivery year is estimate",
        _estimate,
    ),
    ("status", "Status", "Status", _status),
    ("sipri_estimate", "SIPRI estimate", "SIPRI estimate", _sipri_estimate),
    ("tiv_unit", "TIV deal unit", "TIV deal unit", _decimal),
    ("tiv_delivered", "TIV delivery values", "TIV delivery values", _decimal),
    ("local_production", "Local production", "Local production", _flag),
)

HEADERS: dict[str, tuple[str, ...]] = {
    CSV: tuple(column[1] for column in _COLUMNS),
    TEXT: tuple(column[2] for column in _COLUMNS),
}
"""The header of each format, in the order SIPRI writes the columns."""

# Within one deal, every row repeats these order-level columns; only the delivery columns vary.
_ORDER_FIELDS = (
    "supplier",
    "recipient",
    "designation",
    "description",
    "category",
    "order_year",
    "order_year_estimate",
    "status",
    "sipri_estimate",
    "tiv_unit",
    "local_production",
)

# The header is known by its first cell alone, so a file whose columns are wrong is still told
# apart from one with no header; the character after that cell is the file's delimiter.
_HEADER = re.compile(
    r'\s*"?(?P<name>SIPRI AT Database ID|Deal ID)"?\s*(?P<delimiter>[,;])', re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class _Layout:
    delimiter: str
    width: int
    # In RegisterRow's field order: (index of the cell, parser, the column's name in this file).
    columns: tuple[tuple[int, Callable[[str], Any], str], ...]
    names: dict[str, str]  # RegisterRow field -> the column's name in this file


def read_register(content: bytes | str) -> Register:
    """Read one trade-register export, in either format.

    Bytes are decoded as UTF-8 (with or without BOM); a file with no UTF-8 character at all is
    decoded as Windows-1252, else as Latin-1. In a UTF-8 file, a line holding a byte that is not
    UTF-8 is a problem of its own row. Raises RegisterFormatError if the file is not text, has
    no header line, its header lacks a column or has one it does not know, or its preamble or
    header holds a byte that is not UTF-8 in a UTF-8 file. Rows that break a rule are left out
    and reported in `problems`; see the module docstring.
    """
    lines = io.StringIO(_decode(content), newline="")
    raw_preamble: list[str] = []
    for raw in lines:
        found = _HEADER.match(raw)
        if found:
            break
        raw_preamble.append(raw)
    else:
        raise RegisterFormatError(
            "No header line: no line begins with 'SIPRI AT Database ID' or 'Deal ID'."
        )
    header_line = len(raw_preamble) + 1
    for number, line in enumerate([*raw_preamble, raw], start=1):
        if undecoded := _undecoded(line):
            raise RegisterFormatError(
                f"The file is UTF-8, but its line {number} holds bytes that are not UTF-8 "
                f"({undecoded}): a damaged file?"
            )
    delimiter = found["delimiter"]
    register_format = CSV if found["name"].lower() == "sipri at database id" else TEXT
    layout = _layout(_cells(raw, delimiter), register_format, delimiter, header_line)
    preamble = tuple(_preamble_line(line, delimiter) for line in raw_preamble)

    read, problems = _read_rows(lines, layout, header_line)
    rows, deal_problems = _check_deals(read, layout.names)
    return Register(
        format=register_format,
        edition=_edition(preamble),
        preamble=preamble,
        rows=tuple(rows),
        problems=tuple(sorted(problems + deal_problems, key=attrgetter("line"))),
    )


def deals(rows: Iterable[RegisterRow]) -> dict[str, list[RegisterRow]]:
    """The rows grouped by deal id, deals and rows in file order."""
    grouped: dict[str, list[RegisterRow]] = {}
    for row in rows:
        grouped.setdefault(row.deal_id, []).append(row)
    return grouped


# A byte UTF-8 refuses, as decoded with "surrogateescape": no valid UTF-8 decodes to these.
_UNDECODED = re.compile("[\udc80-\udcff]")
# A character a valid UTF-8 multibyte sequence decodes to: neither ASCII nor a refused byte.
_UTF8_CHARACTER = re.compile("[^\x00-\x7f\udc80-\udcff]")


def _decode(content: bytes | str) -> str:
    text = content.removeprefix("\ufeff") if isinstance(content, str) else _decoded(content)
    if "\x00" in text:
        raise RegisterFormatError(
            "Not a text export: the file holds NUL characters (a spreadsheet or UTF-16 file?)."
        )
    return text


def _decoded(content: bytes) -> str:
    """The file's text; in a UTF-8 file, each byte that is not UTF-8 kept as a lone surrogate
    (U+DC80 to U+DCFF), which `_undecoded` finds on its line."""
    text = content.decode("utf-8-sig", "surrogateescape")
    if not _UNDECODED.search(text):
        return text
    # A file with a BOM or a valid multibyte sequence is UTF-8, and a byte UTF-8 refuses in it
    # is damage (a download cut inside a character, a stray byte pasted in), not a sign of
    # another encoding: decoding the whole file again as Windows-1252 would silently change
    # every name beyond ASCII in it. The damaged line alone is refused, so that it refuses its
    # own deal only, as any malformed row does.
    if content.startswith(codecs.BOM_UTF8) or _UTF8_CHARACTER.search(text):
        return text
    # No UTF-8 character at all: an old export in Windows-1252, whose few undefined bytes are
    # Latin-1's.
    try:
        return content.decode("cp1252")
    except UnicodeDecodeError:
        return content.decode("latin-1")


def _undecoded(line: str) -> str | None:
    """The bytes of the line that are not UTF-8, as `0xC3, 0xFC`; None if there are none."""
    found = dict.fromkeys(_UNDECODED.findall(line))
    return ", ".join(f"0x{ord(char) - 0xDC00:02X}" for char in found) or None


def _cells(raw: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([raw], delimiter=delimiter), [])
    except csv.Error:
        return [raw]


def _trim(cells: list[str], delimiter: str, width: int) -> list[str]:
    """Drop what a stray separator at the end of a line leaves: in the CSV, some exports end each
    line with `;`; in either format, a trailing separator leaves an empty cell."""
    if delimiter != ";" and cells and cells[-1].endswith(";"):
        cells[-1] = cells[-1][:-1]
    while len(cells) > width and not cells[-1].strip():
        cells.pop()
    return cells


def _normalised(name: str) -> str:
    return " ".join(name.split()).lower()


def _layout(cells: list[str], register_format: str, delimiter: str, line: int) -> _Layout:
    headers = HEADERS[register_format]
    known = {_normalised(name) for name in headers}
    names = [cell.strip() for cell in _trim(cells, delimiter, 0)]
    position: dict[str, int] = {}
    unknown: list[str] = []
    for index, name in enumerate(names):
        key = _normalised(name)
        if key not in known:
            unknown.append(repr(name))
        elif key in position:
            raise RegisterFormatError(f"The header on line {line} has the column {name!r} twice.")
        else:
            position[key] = index
    missing = [repr(name) for name in headers if _normalised(name) not in position]
    if missing or unknown:
        faults = []
        if missing:
            faults.append(f"lacks the column(s) {', '.join(missing)}")
        if unknown:
            faults.append(f"has unknown column(s) {', '.join(unknown)}")
        raise RegisterFormatError(
            f"The {register_format} header on line {line} {' and '.join(faults)}."
        )
    return _Layout(
        delimiter=delimiter,
        width=len(names),
        columns=tuple(
            (position[_normalised(name)], column[3], name)
            for column, name in zip(_COLUMNS, headers, strict=True)
        ),
        names={column[0]: name for column, name in zip(_COLUMNS, headers, strict=True)},
    )


def _line_cells(raw: str, delimiter: str) -> tuple[list[str], str | None]:
    """The cells of one physical line, and why they cannot be read as a row, if a quote is
    left open or a cell is past the csv module's size limit.

    The register holds one row per line, so a line is read alone: a quote left open must not
    carry the row on into the next line, which is another row (often another deal's).
    """
    try:
        # Ended with exactly one "\n", an open quote shows: the reader keeps that "\n" inside
        # the open quoted cell when the input ends there, where a closed line ends its row.
        cells = next(csv.reader([raw.rstrip("\r\n") + "\n"], delimiter=delimiter), [])
    except csv.Error as error:
        # Split plainly, so that the deal id in the first cell still names whose row it was.
        return raw.split(delimiter), f"The row cannot be read as CSV: {error}."
    if cells and cells[-1].endswith("\n"):
        return cells, "A quote opened in the row is not closed on its line (a row is one line)."
    return cells, None


def _unreadable(raw: str, problem: str | None, cells: int, width: int) -> str | None:
    """Why the line's cells cannot be read as a row, if they cannot."""
    if undecoded := _undecoded(raw):
        return (
            f"The row holds bytes that are not UTF-8 ({undecoded}), in a file that is UTF-8 "
            "elsewhere: a damaged or truncated file?"
        )
    if problem is not None:
        return problem
    if cells != width:
        return f"The row has {cells} cells where the header has {width}."
    return None


def _read_rows(
    lines: Iterable[str], layout: _Layout, header_line: int
) -> tuple[list[RegisterRow], list[RowProblem]]:
    rows: list[RegisterRow] = []
    problems: list[RowProblem] = []
    deal_index = layout.columns[0][0]
    for line, raw in enumerate(lines, start=header_line + 1):
        cells, problem = _line_cells(raw, layout.delimiter)
        if problem is None and not "".join(cells).strip():
            continue
        cells = _trim(cells, layout.delimiter, layout.width)
        deal_id = None
        if deal_index < len(cells):
            candidate = cells[deal_index].strip()
            if candidate.isascii() and candidate.isdigit():
                deal_id = candidate
        unreadable = _unreadable(raw, problem, len(cells), layout.width)
        if unreadable:
            problems.append(RowProblem(line, deal_id, unreadable))
            continue
        values: list[Any] = []
        reasons: list[str] = []
        for index, parse, name in layout.columns:
            cell = cells[index].strip()
            try:
                values.append(parse(cell))
            except _Refused as refused:
                reasons.append(f"{name}: {cell!r} {refused}")
        if not reasons:
            row = RegisterRow(line, *values)
            if (row.delivery_year is None) == (row.delivered is None):
                rows.append(row)
                continue
            year, delivered = layout.names["delivery_year"], layout.names["delivered"]
            if row.delivered is None:
                reasons.append(f"{year}: {row.delivery_year} has no {delivered}")
            else:
                reasons.append(f"{delivered}: {row.delivered} has no {year}")
        # One problem per refused row, so that rows + problems counts the file's rows.
        problems.append(RowProblem(line, deal_id, "; ".join(reasons)))
    return rows, problems


# True == Decimal(1) in Python, but a SIPRI estimate of Yes is not one of 1: values are compared
# with their types.
def _compared(value: object) -> tuple[type, object]:
    return type(value), value


_order_level = attrgetter(*_ORDER_FIELDS)


def _order_key(row: RegisterRow) -> tuple[object, type]:
    return _order_level(row), type(row.sipri_estimate)


def _check_deals(
    rows: list[RegisterRow], names: dict[str, str]
) -> tuple[list[RegisterRow], list[RowProblem]]:
    """Refuse every row of a deal whose rows disagree on an order-level column, and a second row
    of a deal for the same delivery year."""
    problems: list[RowProblem] = []
    refused: set[int] = set()
    for deal_id, group in deals(rows).items():
        if len(group) == 1:
            continue
        first = group[0]
        key = _order_key(first)
        if any(_order_key(row) != key for row in group[1:]):
            disagreeing = [
                names[field]
                for field in _ORDER_FIELDS
                if any(
                    _compared(getattr(row, field)) != _compared(getattr(first, field))
                    for row in group[1:]
                )
            ]
            reason = f"Rows of deal {deal_id} disagree on {', '.join(disagreeing)}."
            problems.extend(RowProblem(row.line, deal_id, reason) for row in group)
            refused.update(row.line for row in group)
            continue
        first_line: dict[int | None, int] = {}
        for row in group:
            year = row.delivery_year
            if year not in first_line:
                first_line[year] = row.line
                continue
            delivery = f"a row for {year}" if year is not None else "a row without delivery"
            reason = (
                f"{names['delivery_year']}: deal {deal_id} already has {delivery} "
                f"on line {first_line[year]}."
            )
            problems.append(RowProblem(row.line, deal_id, reason))
            refused.add(row.line)
    return [row for row in rows if row.line not in refused], problems


def _preamble_line(raw: str, delimiter: str) -> str:
    cells = _cells(raw, delimiter)
    while cells and not cells[-1].strip():
        cells.pop()
    return delimiter.join(cells).strip()


_MONTHS = {
    name: number
    for number, month in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
    for name in (month, month[:3])
} | {"sept": 9}

_DATE = re.compile(
    r"\b(?:"
    r"(?P<iso_year>\d{4})-(?P<iso_month>\d{1,2})-(?P<iso_day>\d{1,2})"
    r"|(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})"
    r"|(?P<short_day>\d{1,2})-(?P<short_month>\d{1,2})-(?P<short_year>\d{2})"
    r"|(?P<named_day>\d{1,2})\s+(?P<month_name>[A-Za-z]+)\.?,?\s+(?P<named_year>\d{4})"
    r")\b"
)

# The line that dates the edition: "Information generated: ..." in the CSV, "(created: ...)" in
# the text export. Other preamble lines hold the query's years, which are not the edition.
_EDITION_LINE = re.compile(r"generated|created", re.IGNORECASE)


def _edition(preamble: tuple[str, ...]) -> date | None:
    for text in preamble:
        if not _EDITION_LINE.search(text):
            continue
        for found in _DATE.finditer(text):
            if found["iso_year"]:
                parts = (found["iso_year"], found["iso_month"], found["iso_day"])
            elif found["year"]:
                parts = (found["year"], found["month"], found["day"])
            elif found["short_year"]:
                # Two-digit years: every edition of the database postdates 2000.
                parts = ("20" + found["short_year"], found["short_month"], found["short_day"])
            elif found["month_name"].lower() in _MONTHS:
                month = _MONTHS[found["month_name"].lower()]
                parts = (found["named_year"], str(month), found["named_day"])
            else:
                continue
            try:
                return date(*(int(part) for part in parts))
            except ValueError:
                raise RegisterFormatError(
                    f"The preamble dates the edition {found[0]!r}, which is not a date."
                ) from None
    return None
