"""The event catalogue: one closed, frozen pydantic model per event type, plus upcasters.

Django-free (an import-linter contract keeps it so). Values that JSON cannot carry exactly travel
as strings: Decimals ("5400000000"), dates ("2025-06-01") and UUIDs. Validation is strict: a
JSON number where a decimal string belongs is refused rather than rounded, and no type is coerced
into another in a way that could lose information.

A type that changes shape gets a new `schema_version` and an upcaster from the previous one
(`register_upcaster`); stored events are never rewritten, they are upcast when read.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from datetime import date as Date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import FieldError, InvalidEvent, UnknownEventType
from .text import OptionalShortText, OptionalText, ShortText, Text, Title
from .values import COUNTRY_CODES, CURRENCY_CODES

DEAL_KINDS = ("mou", "joint_venture", "contract", "acquisition", "budget", "support", "other")
STAGES = (
    "announced",
    "mou_signed",
    "negotiating",
    "agreed",
    "active",
    "completed",
    "terminated",
)
CHANGEABLE_STAGES = ("negotiating", "active", "completed", "terminated")
FINAL_STAGES = ("completed", "terminated")
PRECISIONS = ("day", "month", "year")

DealKind = Literal["mou", "joint_venture", "contract", "acquisition", "budget", "support", "other"]
Precision = Literal["day", "month", "year"]

# --- field types -----------------------------------------------------------------------------

# What a string is, beyond its syntax, said in each type's JSON Schema so that a form can pick
# its input from the schema alone: `format` "decimal", "date", "country" or "currency"; text
# of several lines marked MULTILINE; and an id's `format` stays "uuid" while REFERS_TO names
# what it identifies ("organisation", "event").
REFERS_TO = "x-refers-to"

_DECIMAL = re.compile(r"[+-]?[0-9]{1,30}(\.[0-9]{1,20})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PydanticCustomError("decimal_finite", "must be a finite number")
        return value
    if isinstance(value, bool | int | float):
        raise PydanticCustomError(
            "decimal_string",
            'must be a decimal string such as "5400000000", not a JSON number, so that '
            "nothing is rounded",
        )
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise PydanticCustomError(
                "decimal_string", 'must be a decimal string such as "5400000000" or "12.5"'
            )
        return Decimal(value)
    raise PydanticCustomError("decimal_string", 'must be a decimal string such as "5400000000"')


def _decimal_text(value: Decimal) -> str:
    # Fixed-point text, so Decimal("5.4E+9") from Python code is stored as "5400000000".
    return format(value, "f")


EARLIEST_DATE = Date(1900, 1, 1)
"""No fact happened, and no source was published, before this day.

The tracker records aerospace and defence partnerships from news and published registers:
powered flight dates from 1903 and SIPRI's arms-transfer records start in 1950, so 1900 leaves
room for any company history a deal may cite, while 0001-01-01 or 0202-06-01 (a typing error)
is refused rather than stored and shown on a timeline two thousand years long.
"""
FUTURE_TOLERANCE_DAYS = 1
"""How far past today (UTC) a publication date may be when the caller gives no latest date:
the default of the DEAL_FUTURE_TOLERANCE_DAYS setting, for sources dated in another time zone."""


def latest_date(tolerance_days: int = FUTURE_TOLERANCE_DAYS) -> Date:
    """The latest date accepted today: today in UTC plus the tolerance."""
    return datetime.now(UTC).date() + timedelta(days=tolerance_days)


def _not_too_early(value: Date) -> None:
    if value < EARLIEST_DATE:
        raise PydanticCustomError(
            "date_too_early",
            "{date} is before {earliest}, the earliest date the tracker records",
            {"date": value.isoformat(), "earliest": EARLIEST_DATE.isoformat()},
        )


def _date(value: Any) -> Date:
    if isinstance(value, Date) and type(value) is Date:
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return Date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("date", "is not a date of the calendar") from None
    raise PydanticCustomError("date", 'must be a date written "YYYY-MM-DD"')


def _uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise PydanticCustomError("uuid", "must be a UUID string")


def _country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise PydanticCustomError(
            "country", "must be an ISO 3166-1 alpha-2 country code in capitals, such as IT"
        )
    return value


def _currency(value: str) -> str:
    if value not in CURRENCY_CODES:
        raise PydanticCustomError(
            "currency", "must be an ISO 4217 currency code in capitals, such as EUR"
        )
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    # isprintable() is False for every control, format character, lone surrogate and space
    # but " ", none of which an address holds unencoded.
    printable = value.isprintable() and " " not in value
    if parts.scheme not in ("http", "https") or not parts.netloc or not printable:
        raise PydanticCustomError("url", "must be an http or https URL")
    return value


DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    PlainSerializer(_decimal_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "decimal", "pattern": f"^{_DECIMAL.pattern}$"}),
]
DateString = Annotated[
    Date, BeforeValidator(_date), WithJsonSchema({"type": "string", "format": "date"})
]
OrganisationId = Annotated[
    UUID,
    BeforeValidator(_uuid),
    WithJsonSchema({"type": "string", "format": "uuid", REFERS_TO: "organisation"}),
]
EventId = Annotated[
    UUID,
    BeforeValidator(_uuid),
    WithJsonSchema({"type": "string", "format": "uuid", REFERS_TO: "event"}),
]
CountryCode = Annotated[
    str,
    AfterValidator(_country),
    WithJsonSchema({"type": "string", "format": "country", "pattern": "^[A-Z]{2}$"}),
]
CurrencyCode = Annotated[
    str,
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "format": "currency", "pattern": "^[A-Z]{3}$"}),
]
Url = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_url)]
Quantity = Annotated[int, Field(gt=0, le=2**53 - 1)]


class Closed(BaseModel):
    """Frozen, closed to unknown fields, and strict about types."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# --- value objects ---------------------------------------------------------------------------


class Money(Closed):
    """An exact amount in one ISO 4217 currency; never a float, never converted."""

    amount: DecimalString
    currency: CurrencyCode

    def to_json(self) -> dict[str, str]:
        return {"amount": _decimal_text(self.amount), "currency": self.currency}


class Occurred(Closed):
    """When a fact happened, to the precision it is known: a day, a month or a year.

    The date of a month (year) is the first of that month (year), so no day is ever invented:
    `Occurred(date(2025, 6, 1), "month")` is "some day in June 2025". `estimate` says the
    source itself gives the date as its estimate (a register's "Order date is estimate"); it
    is not `uncertain`, which is about a date inside a period, and it appears in JSON only when
    true, so dates recorded before it existed keep their bytes and hashes.
    """

    date: DateString
    precision: Precision
    estimate: bool = Field(
        default=False,
        exclude_if=lambda value: not value,
        description="The source gives this date as an estimate.",
    )

    def __init__(self, date: Any = None, precision: Any = None, /, **data: Any) -> None:
        if date is not None:
            data["date"] = date
        if precision is not None:
            data["precision"] = precision
        super().__init__(**data)

    @field_validator("date")
    @classmethod
    def _in_range(cls, value: Date) -> Date:
        # The future is the services' to judge: their tolerance is a setting.
        _not_too_early(value)
        return value

    @model_validator(mode="after")
    def _first_of_period(self) -> Occurred:
        if self.precision == "month" and self.date.day != 1:
            raise ValueError("a month-precision date must be the first of its month")
        if self.precision == "year" and (self.date.month, self.date.day) != (1, 1):
            raise ValueError("a year-precision date must be the 1st of January")
        return self

    @property
    def start(self) -> Date:
        return self.date

    @property
    def end(self) -> Date:
        """The last day of the period."""
        return period_end(self.date, self.precision)

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"date": self.date.isoformat(), "precision": self.precision}
        if self.estimate:
            found["estimate"] = True
        return found


def period_end(start: Date, precision: str) -> Date:
    if precision == "year":
        return Date(start.year, 12, 31)
    if precision == "month":
        return Date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
    return start


class Source(Closed):
    """Where a fact was reported. The publisher may be "unknown" but is never empty.

    `published_on` is on or after EARLIEST_DATE and not after the latest date accepted today:
    the validation context's "latest" (a date) if given, else `latest_date()`.
    """

    title: Title
    publisher: ShortText = "unknown"
    url: Url | None = None
    published_on: DateString | None = None

    @field_validator("published_on")
    @classmethod
    def _in_range(cls, value: Date | None, info: ValidationInfo) -> Date | None:
        if value is None:
            return value
        _not_too_early(value)
        latest = (info.context or {}).get("latest") or latest_date()
        if value > latest:
            raise PydanticCustomError(
                "date_in_future",
                "{date} is in the future (the latest date accepted today is {latest})",
                {"date": value.isoformat(), "latest": latest.isoformat()},
            )
        return value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- the catalogue ---------------------------------------------------------------------------


class EventData(Closed):
    """The `data` of one event type. Subclasses are registered in EVENT_TYPES by class name."""

    schema_version: ClassVar[int] = 1
    # Paths of the organisation ids in `data`, checked against the Organisation table by the
    # services: "buyer", "parties[*]" (each item), "shares[*].organisation".
    organisation_paths: ClassVar[tuple[str, ...]] = ()

    def problems(self) -> list[tuple[str, str]]:
        """Rules that span several fields: (path inside data, message)."""
        return []

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PartyRef(Closed):
    organisation: OrganisationId
    role: ShortText


ExternalId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z][A-Z0-9_-]{0,19}:[A-Za-z0-9._/-]{1,100}$"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[A-Z][A-Z0-9_-]{0,19}:[A-Za-z0-9._/-]{1,100}$",
            "description": "A register's own key for the deal, e.g. SIPRI:60123.",
        }
    ),
]


class DealOpened(EventData):
    """Version 2 added `external_ids`: the keys published registers give the deal."""

    schema_version = 2
    title: ShortText
    kind: DealKind
    summary: OptionalText = ""
    parties: list[PartyRef] = Field(min_length=1)
    external_ids: list[ExternalId] = Field(default_factory=list, max_length=20)
    organisation_paths = ("parties[*].organisation",)

    @field_validator("parties")
    @classmethod
    def _distinct(cls, parties: list[PartyRef]) -> list[PartyRef]:
        _refuse_duplicates([p.organisation for p in parties], "an organisation")
        return parties

    @field_validator("external_ids")
    @classmethod
    def _distinct_ids(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("an external id appears twice")
        return ids


class PartyAdded(EventData):
    organisation: OrganisationId
    role: ShortText
    organisation_paths = ("organisation",)


class PartyRemoved(EventData):
    organisation: OrganisationId
    reason: Text
    organisation_paths = ("organisation",)


class MouSigned(EventData):
    parties: list[OrganisationId] = Field(min_length=2)
    scope: OptionalText = ""
    organisation_paths = ("parties[*]",)

    @field_validator("parties")
    @classmethod
    def _distinct(cls, parties: list[UUID]) -> list[UUID]:
        _refuse_duplicates(parties, "a party")
        return parties


class Share(Closed):
    organisation: OrganisationId
    percent: DecimalString

    @field_validator("percent")
    @classmethod
    def _in_range(cls, percent: Decimal) -> Decimal:
        if not Decimal(0) < percent <= Decimal(100):
            raise ValueError("a share must be more than 0 and at most 100 percent")
        return percent


class JointVentureFormed(EventData):
    venture: OrganisationId
    shares: list[Share] = Field(min_length=1)
    headquarters_country: CountryCode
    scope: OptionalText = ""
    organisation_paths = ("venture", "shares[*].organisation")

    @field_validator("shares")
    @classmethod
    def _sum_to_100(cls, shares: list[Share]) -> list[Share]:
        _refuse_duplicates([s.organisation for s in shares], "a shareholder")
        total = sum((s.percent for s in shares), Decimal(0))
        if total != Decimal(100):
            raise ValueError(f"shares must sum to exactly 100, not {_decimal_text(total)}")
        return shares


WEAPON_STATUSES = ("new", "second_hand", "second_hand_modernized")


class Weapon(Closed):
    """What a contract orders, as arms-transfer registers describe it (SIPRI's columns)."""

    designation: ShortText
    description: OptionalShortText = ""
    category: OptionalShortText = Field(default="", description="e.g. Aircraft, Missiles.")
    status: Literal["new", "second_hand", "second_hand_modernized"] | None = None
    local_production: bool | None = Field(
        default=None, description="Produced or assembled in the recipient's country."
    )


TIV_MEANS = "SIPRI trend-indicator value: a volume of arms transferred, never money."


class ContractAwarded(EventData):
    """Version 2: `value` may be unknown (registers publish volumes, not prices), the quantity
    may be an estimate, and the weapon ordered may be described, with its TIV per unit."""

    schema_version = 2
    buyer: OrganisationId
    supplier: OrganisationId
    item: ShortText
    quantity: Quantity | None = None
    quantity_estimate: bool = False
    value: Money | None = None
    weapon: Weapon | None = None
    tiv_unit: DecimalString | None = Field(default=None, description=f"Per item. {TIV_MEANS}")
    organisation_paths = ("buyer", "supplier")

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.value is not None and self.value.amount <= 0:
            found.append(("value.amount", "the contract value must be more than 0"))
        if self.tiv_unit is not None and self.tiv_unit < 0:
            found.append(("tiv_unit", "must be 0 or more"))
        if self.quantity_estimate and self.quantity is None:
            found.append(("quantity_estimate", "is about the quantity: give the quantity too"))
        return found


class DeliveryRecorded(EventData):
    """Items delivered under a contract of the deal; `occurred` says when (a year, for a
    register). The total delivered never exceeds a known ordered quantity (rules.py)."""

    contract: EventId = Field(description="The ContractAwarded event delivered under.")
    quantity: Quantity
    quantity_estimate: bool = False
    tiv: DecimalString | None = Field(default=None, description=f"Of this delivery. {TIV_MEANS}")

    def problems(self) -> list[tuple[str, str]]:
        if self.tiv is not None and self.tiv < 0:
            return [("tiv", "must be 0 or more")]
        return []


class Earmark(Closed):
    purpose: ShortText
    amount: Money


class BudgetAllocated(EventData):
    authority: OrganisationId
    purpose: ShortText
    amount: Money
    earmarks: list[Earmark] = Field(default_factory=list)
    organisation_paths = ("authority",)

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.amount.amount <= 0:
            found.append(("amount.amount", "the allocated amount must be more than 0"))
        for index, earmark in enumerate(self.earmarks):
            if earmark.amount.currency != self.amount.currency:
                found.append(
                    (
                        f"earmarks[{index}].amount.currency",
                        f"earmark in {earmark.amount.currency} but the allocation is in "
                        f"{self.amount.currency}; currencies are never converted",
                    )
                )
            if earmark.amount.amount <= 0:
                found.append((f"earmarks[{index}].amount.amount", "must be more than 0"))
        if not found:
            earmarked = sum((e.amount.amount for e in self.earmarks), Decimal(0))
            if earmarked > self.amount.amount:
                found.append(
                    (
                        "earmarks",
                        f"earmarks sum to {_decimal_text(earmarked)}, more than the allocated "
                        f"{_decimal_text(self.amount.amount)}",
                    )
                )
        return found


class SupportAgreed(EventData):
    provider: OrganisationId
    recipient: OrganisationId
    programme: ShortText
    scope: OptionalText = ""
    organisation_paths = ("provider", "recipient")


class StageChanged(EventData):
    stage: Literal["negotiating", "active", "completed", "terminated"]
    reason: Text


class QuoteRecorded(EventData):
    speaker: ShortText
    speaker_role: OptionalShortText = ""
    organisation: OrganisationId | None = None
    text: Text
    organisation_paths = ("organisation",)


class NoteAdded(EventData):
    text: Text


class FactRetracted(EventData):
    event_id: EventId
    reason: Text


class FactCorrected(EventData):
    """Replaces the data and/or the `occurred` of an earlier event; the latest correction wins.

    `data` is the whole new data of the corrected event, valid for its type at
    `data_schema_version` (filled in by the services with the type's current version).
    """

    event_id: EventId
    data: dict[str, Any] | None = None
    occurred: Occurred | None = None
    reason: OptionalText = ""
    data_schema_version: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> FactCorrected:
        if self.data is None and self.occurred is None:
            raise ValueError("a correction must give new data, a new occurred, or both")
        return self

    def problems(self) -> list[tuple[str, str]]:
        # Whether the version is the corrected type's current one is a rule (rules.py): the
        # type is that of the event named, which only the stream knows.
        if self.data is None and self.data_schema_version is not None:
            return [("data_schema_version", "is the version of new data: give it with data")]
        return []


def _refuse_duplicates(ids: list[UUID], what: str) -> None:
    seen: set[UUID] = set()
    for value in ids:
        if value in seen:
            raise ValueError(f"{what} appears twice: {value}")
        seen.add(value)


# --- registry and upcasting ------------------------------------------------------------------

E = TypeVar("E", bound=type[EventData])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

EVENT_TYPES: dict[str, type[EventData]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}
META_TYPES = ("FactRetracted", "FactCorrected")
"""Types that act on other events rather than state a fact about the deal."""


def register_event_type(cls: E, *, name: str | None = None) -> E:
    """Add a type to the catalogue under its class name (usable as a decorator)."""
    EVENT_TYPES[name or cls.__name__] = cls
    return cls


def unregister_event_type(name: str) -> None:
    """Remove a type and its upcasters (for test-only types)."""
    EVENT_TYPES.pop(name, None)
    for key in [key for key in _UPCASTERS if key[0] == name]:
        del _UPCASTERS[key]


def register_upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register `fn(data) -> data` that turns `type_name` data of `from_version` into the next.

    `@register_upcaster("JointVentureFormed", 1)` on `upcast_v1_v2(data)`. Upcasters must be
    pure and must not mutate their argument.
    """

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(type_name, from_version)] = fn
        return fn

    return register


def schema_for(type_name: str) -> type[EventData]:
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise UnknownEventType(type_name) from None


def upcast(type_name: str, schema_version: int, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Bring stored data up to the type's current schema version: (data, latest version)."""
    latest = schema_for(type_name).schema_version
    if schema_version == latest:
        return data, latest
    if schema_version > latest:
        raise ValueError(f"{type_name} v{schema_version} is newer than this code (v{latest})")
    for version in range(schema_version, latest):
        try:
            step = _UPCASTERS[(type_name, version)]
        except KeyError:
            raise LookupError(f"no upcaster for {type_name} from v{version}") from None
        data = step(data)
    return data, latest


@functools.cache
def json_schemas() -> dict[str, dict[str, Any]]:
    """Each type's current schema version and the JSON Schema of its `data`.

    Built once per process (pydantic takes tens of milliseconds for the catalogue) and shared:
    callers copy before they change anything.
    """
    return {
        name: {"schema_version": cls.schema_version, "schema": cls.model_json_schema()}
        for name, cls in sorted(EVENT_TYPES.items())
    }


# --- parsing with readable errors ------------------------------------------------------------


def parse_data(type_name: str, data: Any, *, prefix: str = "data") -> EventData:
    """Validate `data` for `type_name` (current version). Raises InvalidEvent naming each field."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise InvalidEvent.single("type", f"unknown event type {type_name[:100]!r}")
    model = _validate(cls, data, prefix)
    problems = model.problems()
    if problems:
        raise InvalidEvent(
            [FieldError(join_path(prefix, path), message) for path, message in problems]
        )
    return model


def parse_occurred(value: Any, *, prefix: str = "occurred") -> Occurred:
    if isinstance(value, Occurred):
        return value
    return _validate(Occurred, value, prefix)


def parse_source(value: Any, *, prefix: str = "source", latest: Date | None = None) -> Source:
    """Validate a source; `latest` is the latest publication date accepted (see Source)."""
    if isinstance(value, Source):
        return value
    if value is None:
        raise InvalidEvent.single(prefix, "every fact must cite its source")
    return _validate(Source, value, prefix, context={"latest": latest} if latest else None)


M = TypeVar("M", bound=BaseModel)


def _validate(cls: type[M], value: Any, prefix: str, context: dict[str, Any] | None = None) -> M:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise InvalidEvent.single(prefix, "must be a JSON object")
    try:
        return cls.model_validate(dict(value), context=context)
    except ValidationError as error:
        raise InvalidEvent(field_errors(error, prefix)) from None


def field_errors(error: ValidationError, prefix: str) -> list[FieldError]:
    """Translate pydantic's errors into FieldErrors with paths like "data.shares[0].percent"."""
    found = []
    for detail in error.errors(include_url=False):
        path = prefix
        for part in detail["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else join_path(path, str(part))
        params = detail.get("ctx", {})
        # A rule's ValueError: its own words, without pydantic's "Value error, " in front.
        message = str(params["error"]) if detail["type"] == "value_error" else detail["msg"]
        found.append(FieldError(path, message, detail["type"], params))
    return found


def join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return f"{prefix}.{path}" if path else prefix


def organisation_refs(model: EventData) -> Iterator[tuple[str, UUID]]:
    """Every organisation id in the event's data, with its path inside data."""
    for spec in model.organisation_paths:
        yield from _walk(model, spec.split("."), "")


def _walk(value: Any, parts: list[str], path: str) -> Iterator[tuple[str, UUID]]:
    if value is None:
        return
    if not parts:
        yield path, value
        return
    head, rest = parts[0], parts[1:]
    each = head.endswith("[*]")
    name = head[:-3] if each else head
    child = getattr(value, name)
    child_path = join_path(path, name)
    if each:
        for index, item in enumerate(child):
            yield from _walk(item, rest, f"{child_path}[{index}]")
    else:
        yield from _walk(child, rest, child_path)


for _cls in (
    DealOpened,
    PartyAdded,
    PartyRemoved,
    MouSigned,
    JointVentureFormed,
    ContractAwarded,
    DeliveryRecorded,
    BudgetAllocated,
    SupportAgreed,
    StageChanged,
    QuoteRecorded,
    NoteAdded,
    FactRetracted,
    FactCorrected,
):
    register_event_type(_cls)


@register_upcaster("DealOpened", 1)
def _deal_opened_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 data is valid version 2 data: a deal opened before external ids had none,
    # which the default says, so the data is shown as it was stored.
    return dict(data)


@register_upcaster("ContractAwarded", 1)
def _contract_awarded_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 always had a value and no weapon: nothing to convert, only to copy.
    return dict(data)
